"""cli: exit codes, --json shape, one-line errors (in-process and through the console script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest

from gridgeo.cli import main
from tests.catalogue import clean, overlap


def _write(gdf, path: Path) -> Path:
    pyogrio.write_dataframe(gdf, path)
    return path


def test_check_clean_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(clean().gdf, tmp_path / "clean.geojson")
    assert main(["check", str(path), "--id", "code", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["features"] == 5 and doc["repaired"] == [] and doc["problems"] == []
    assert doc["crs"] == "EPSG:4326" and doc["usable"] is True


def test_check_unusable_exits_1_naming_feature(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(overlap().gdf, tmp_path / "overlap.geojson")
    assert main(["check", str(path), "--id", "code"]) == 1
    cap = capsys.readouterr()
    assert "NOT usable" in cap.out
    (line,) = cap.err.strip().splitlines()
    assert str(path) in line and "feature A" in line and "overlap" in line


def test_check_writes_repaired_output(tmp_path: Path) -> None:
    from tests.catalogue import bow_tie

    path = _write(bow_tie().gdf, tmp_path / "tie.geojson")
    out = tmp_path / "fixed.gpkg"
    assert main(["check", str(path), "--id", "code", "-o", str(out), "-q"]) == 0
    fixed = pyogrio.read_dataframe(out)
    assert fixed.geometry.is_valid.all() and len(fixed) == 2


@pytest.mark.parametrize(
    "argv",
    [["check"], ["check", "x.geojson", "--area-tol", "-3"], ["nosuch"], ["check", "x.geojson", "--datum", "wgs72"], []],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2


@pytest.mark.parametrize(
    ("name", "content"),
    [("trunc.geojson", '{"type":"FeatureCollection","features":[{'), ("missing.shp", None), ("x.txt", "hello")],
)
def test_bad_files_exit_1_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                   content: str | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "Traceback" not in err[0]


def test_unknown_layer_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.gpkg"
    pyogrio.write_dataframe(clean().gdf, path, layer="villages")
    assert main(["check", str(path), "--layer", "grids"]) == 1
    assert "no layer 'grids'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["check", "adjacency", "blocks"])
def test_unusable_layer_exits_1_the_same_way(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command that refuses an unusable layer: exit 1, one line naming the file, the feature, the problem."""
    path = _write(overlap().gdf, tmp_path / "overlap.geojson")
    argv = [command, str(path), "--id", "code", *(["-o", str(tmp_path / "b.geojson")] if command == "blocks" else [])]
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("gridgeo: error: ") and str(path) in line
    assert "feature A: overlap" in line
    assert not (tmp_path / "b.geojson").exists()


def test_every_subcommand_registered_from_one_place() -> None:
    """Each subcommand is a module with ``register`` and ``run``, listed once in ``COMMANDS``."""
    from gridgeo.cli.main import COMMANDS, build_parser

    names = {m.__name__.rsplit(".", 1)[1] for m in COMMANDS}
    assert names == {"check", "adjacency", "synth", "convert", "blocks", "patrol", "build", "audit", "export", "merge",
                     "pair", "serve", "users", "load", "reports", "diff"}
    assert all(callable(m.register) and callable(m.run) for m in COMMANDS)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == names  # type: ignore[arg-type]
    for name, parser in sub.choices.items():  # type: ignore[union-attr]
        assert parser.get_default("func").__module__ == f"gridgeo.cli.{name}"


def test_adjacency_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(clean().gdf, tmp_path / "clean.geojson")
    out = tmp_path / "adj.json"
    assert main(["adjacency", str(path), "--id", "code", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {(e["a"], e["b"]) for e in doc["edges"]} == {("A", "B"), ("A", "E"), ("B", "C"), ("B", "E")}
    assert doc["islands"] == ["D"]
    assert "1 islands" in capsys.readouterr().out


@pytest.mark.shared
def test_console_script_taipei(taipei: Path) -> None:
    """The acceptance command of the issue, through a real process."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "gridgeo.cli", "check", str(taipei), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["features"] == 456
    assert len(doc["repaired"]) == 2
    assert {"id", "kind", "message"} <= set(doc["problems"][0])
    assert doc["crs"] == "EPSG:4326"
