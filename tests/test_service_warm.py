"""Reading a served county file into the page cache at start-up (service/warm.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gridgeo.service import warm

pytest_plugins = ("tests.service_county",)


def test_read_through_reads_every_byte(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    data = bytes(range(256)) * 1000 + b"tail"
    f.write_bytes(data)
    assert warm.read_through(f, chunk=4096) == len(data)  # several chunks and a short last one


def test_a_file_is_warmed_and_reported(tmp_path: Path) -> None:
    f = tmp_path / "county.gpkg"
    f.write_bytes(b"x" * 3 * 2**20)
    w = warm.Warmer(f).start()
    w.join(60)
    assert w.health() == {"file": "county.gpkg", "state": "warm", "mib": 3, "seconds": round(w.seconds, 1)}


def test_a_file_too_big_for_the_memory_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "county.gpkg"
    f.write_bytes(b"x" * 1024)
    caplog.set_level("INFO", logger="gridgeo.service.warm")
    w = warm.Warmer(f, share=0.0).start()
    assert w.health() == {"file": "county.gpkg", "state": "skipped"}
    assert "not warmed" in caplog.text and str(f) in caplog.text


def test_an_unreadable_file_is_a_warning_not_a_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "a_directory.gpkg"  # stat works, open fails
    d.mkdir()
    w = warm.Warmer(d).start()
    w.join(60)
    assert w.state == "failed"
    assert "reading" in caplog.text and "served without warming" in caplog.text


def test_available_memory_is_known_here() -> None:
    free = warm.available_memory()
    assert free is not None and free > 0


@pytest.mark.parametrize(("lazy_at", "warm_on", "expected"), [(0, True, "warm"), (0, False, None), (None, True, None)])
def test_served_county_warms_only_when_a_layer_is_read_from_the_file(
        county_path: Path, tmp_path: Path, lazy_at: int | None, warm_on: bool, expected: str | None) -> None:
    from gridgeo.service import create_app

    served = tmp_path / "county.gpkg"
    shutil.copy(county_path, served)
    app = create_app({"COUNTY": str(served), "TESTING": True, "LAZY_AT": lazy_at, "WARM": warm_on})
    w = app.extensions.get("warm")
    if w is not None:
        w.join(120)
    health = app.test_client().get("/health").get_json()
    if expected is None:
        assert w is None and "page_cache" not in health
    else:
        assert health["page_cache"]["state"] == expected
        assert health["page_cache"]["mib"] == round(served.stat().st_size / 2**20)


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-warm"], False)])
def test_serve_passes_warm_to_the_app(monkeypatch: pytest.MonkeyPatch, flags: list[str], expected: bool) -> None:
    import gridgeo.service as svc

    from gridgeo.cli.main import main

    seen: dict[str, object] = {}

    class StopError(Exception):
        pass

    def fake(config: dict[str, object]) -> None:
        seen.update(config)
        raise StopError

    monkeypatch.setattr(svc, "create_app", fake)
    assert main(["serve", "county.gpkg", "--port", "0", *flags]) != 0  # stopped in the app, an internal error
    assert seen["WARM"] is expected
