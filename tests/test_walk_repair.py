"""The walk bound through a real build: grids drawn within the estimate, checked on the streets, re-drawn
where their day does not fit (gridgeo.county._walk_repair), the rest named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gridgeo.county._walk_repair import tighter_bounds, walk_repaired
from gridgeo.county.build import build_county
from gridgeo.county.rules import load_county_rules

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"

WALK = f"""
[inputs]
county = "{SAMPLE.as_posix()}"
[grids]
groups = "merge"
walk_check = true
[bounds.rural]
grid = {{ households = [30, 300], walk = "4h" }}
[bounds.urban]
grid = {{ households = [100, 500], walk = "4h" }}
[patrol]
budget = "4h"
"""


def _layers(reason: str, needed: float | None) -> dict[str, pd.DataFrame]:
    return {"walk_check": pd.DataFrame({"grid": ["36990000100101", "36990000100102", "36990000100199Z"],
                                        "households": [120, 40, 30], "budget_min": [240.0] * 3,
                                        "needed_min": [needed, None, 500.0], "fits": [False, True, False],
                                        "reason": [reason, "", "too_many"]}),
            "grids": pd.DataFrame({"code": ["36990000100101", "36990000100102"],
                                   "parent": ["369900001001"] * 2}),
            "villages": pd.DataFrame({"code": ["369900001001"], "kind": ["rural"], "township": ["369900001"]})}


@pytest.mark.parametrize(("reason", "needed", "cap"), [
    ("too_many", 320.0, 81),  # 120 households x 0.9 x 240 / 320
    ("single_stop", None, 60),  # halved: a smaller grid has its station nearer
    ("too_many", 241.0, 107),
])
def test_tighter_bounds_scale_the_failing_grid(tmp_path: Path, reason: str, needed: float | None, cap: int) -> None:
    (tmp_path / "r.toml").write_text("[grids]\ngroups = \"merge\"\n", encoding="utf-8")
    rules = load_county_rules(tmp_path / "r.toml")
    got, changes = tighter_bounds(_layers(reason, needed), rules)
    assert got == {"369900001001": {"grid": (0.0, cap), "point": (min(10, cap // 2 // 2), min(40, cap // 2))}}
    assert changes == [{"village": "369900001001", "max_before": 300.0, "max_after": cap}]


@pytest.mark.parametrize("reason", ["unreachable", "off_network", "start_far", "station", "window"])
def test_tighter_bounds_leave_what_no_smaller_grid_cures(tmp_path: Path, reason: str) -> None:
    (tmp_path / "r.toml").write_text("[grids]\ngroups = \"merge\"\n", encoding="utf-8")
    assert tighter_bounds(_layers(reason, 300.0), load_county_rules(tmp_path / "r.toml")) == ({}, [])


def test_tighter_bounds_only_where_grids_are_drawn(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text("[grids]\ngroups = \"one\"\n", encoding="utf-8")  # the groups are the grids
    assert tighter_bounds(_layers("too_many", 300.0), load_county_rules(tmp_path / "r.toml")) == ({}, [])


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("walk")
    (d / "rules.toml").write_text(WALK, encoding="utf-8")
    return build_county(load_county_rules(d / "rules.toml"), workers=2)


@pytest.mark.slow
def test_sample_walk_bound_fits_every_grid_the_network_allows(walked: Any) -> None:
    rep, check = walked.report, walked.layers["walk_check"]
    assert rep["walk_limit"]["fit"]["samples"] > 100 and 0 < rep["walk_limit"]["fit"]["k"] < 5
    first = rep["walk_repair"][0]["walk_check"]
    assert first["fit_share"] < 1.0 and rep["walk_repair"][0]["villages"]  # the estimate alone leaves some
    bad = check[~check["fits"].astype(bool)]
    # what is left, if anything, is what no smaller grid cures (a stop off the network, unreachable, ...)
    assert bad["reason"].isin(["station", "start_far", "off_network", "unreachable", "window"]).all(), bad
    assert rep["walk_check"]["fit_share"] == pytest.approx(1 - len(bad) / len(check))
    assert len(check) == len(walked.layers["grids"]) + len(walked.layers["exclusive"])
    repaired = {v["village"] for r in rep["walk_repair"] for v in r["villages"]}
    grids = walked.layers["grids"]
    # within the lowered maximum, but where one street block alone holds more
    assert grids[grids["parent"].isin(repaired)]["within_bounds"].mean() > 0.9


class _Res:
    def __init__(self, layers: dict[str, pd.DataFrame], report: dict[str, Any]) -> None:
        self.layers, self.report = layers, report


def test_a_round_that_cures_nothing_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridgeo.county._walk_repair as wr

    monkeypatch.setattr(wr, "write_layers", lambda layers, path: Path(path).touch())  # tables only: no GeoPackage
    (tmp_path / "r.toml").write_text("[grids]\ngroups = \"merge\"\n", encoding="utf-8")
    rules = load_county_rules(tmp_path / "r.toml")
    first = _Res(_layers("too_many", 320.0), {"walk_check": {"fit": 1}})
    calls: list[Any] = []

    def rebuild(r: Any, path: Path) -> _Res:  # a re-draw after which the same grid is still too long
        calls.append(r.village_bounds)
        return _Res(_layers("too_many", 300.0), {"walk_check": {"fit": 1}})

    got = walk_repaired(first, rules, rebuild)
    assert got is first and len(calls) == 1 and "369900001001" in calls[0]
    assert got.report["walk_repair"][-1]["undone"][0]["village"] == "369900001001"
