"""Villages re-drawn where the route check finds grids whose day does not fit (private to the build).

The walk bound (``[bounds.KIND] grid = {walk = "4h"}``) is turned into households by an estimate
(:mod:`gridgeo.patrol.walktime`); the estimate is an average and a grid whose households are spread
over hills, or whose station is far from one house, can still need more than the budget. The build's
route check (:mod:`gridgeo.county.walk_check`) names them. Where the grids are drawn (``[grids]
groups = "merge"`` or ``"draw"``), each such village's maximum is lowered to what its failing grid's
day allows -- its households scaled by budget / needed minutes, or halved when a single stop's round
trip alone is over the budget (a smaller grid has its station nearer), and at least one household
fewer; its minimum gives way -- and the village is re-drawn
(the others are taken unchanged from the first pass, by their fingerprints). Grids that no
re-drawing helps (a stop off the network, unreachable, a far start) are left to the report.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd

from gridgeo.county.rules import CountyRules
from gridgeo.data.io import write_layers

log = logging.getLogger(__name__)

__all__ = ["REPAIRABLE", "WALK_REPAIRS", "Fitted", "tighter_bounds", "walk_repaired"]

#: Rounds of re-drawing at most (each re-checks every grid on the streets); the rounds also stop as soon as
#: one cures no grid. Why only 2: a village's maximum is lowered village-wide after its worst grid, so every
#: round makes the whole village's grids smaller; on the 150,000-household county 4 rounds took the county
#: from 1,559 to 4,114 grids and exclusive grids to cure 5 more (2 rounds: 2,192)
WALK_REPAIRS = 2


@dataclass
class Fitted:
    """What a walk bound fits once per ``build_county`` (every re-draw round reads the same county and rules):
    the walking network (:class:`gridgeo.patrol.network.Network`; the route checks walk it too), the walk
    limit on it (:data:`gridgeo.county.policy.WalkLimit`) and the fit's report."""

    network: Any = None
    limit: Callable[[float, float], float] | None = None
    report: dict[str, Any] | None = None


class _Built(Protocol):
    layers: dict[str, Any]
    report: dict[str, Any]


B = TypeVar("B", bound=_Built)


def walk_repaired(res: B, rules: CountyRules, rebuild: Callable[[CountyRules, Path], B]) -> B:
    """``res``, or the county re-built (``rebuild(rules, first)``, the first build's file as ``--previous``, so
    only the villages re-drawn change) until no grid a smaller one cures is too long, at most
    :data:`WALK_REPAIRS` times and only while each round cures some; the report's ``walk_repair`` lists each
    round's villages and check. A round that cures nothing is undone (the county before it is returned)."""
    for _ in range(WALK_REPAIRS):
        tighter, changes = tighter_bounds(res.layers, rules)
        if not tighter:
            break
        before = res
        log.info("walk check: %d village(s) re-drawn with a lower grid maximum", len(tighter))
        rules = replace(rules, village_bounds={**rules.village_bounds, **tighter})
        repairs = [*res.report.get("walk_repair", []), {"villages": changes, "walk_check": res.report["walk_check"]}]
        with tempfile.TemporaryDirectory(prefix="gridgeo-walk-") as tmp:
            first = Path(tmp) / "first.gpkg"
            write_layers(res.layers, first)
            res = rebuild(rules, first)
        res.report["walk_repair"] = repairs
        if _curable(res) >= _curable(before):
            log.info("walk check: the re-draw cured no grid; the county before it is kept")
            before.report["walk_repair"] = [*repairs, {"villages": [], "undone": changes,
                                                       "walk_check": res.report["walk_check"]}]
            return before
    return res


def _curable(res: _Built) -> int:
    """Grids whose day a smaller grid could make fit (:data:`REPAIRABLE`) that are still too long."""
    check = res.layers.get("walk_check")
    if check is None:
        return 0
    return int(((~check["fits"].astype(bool)) & check["reason"].isin(REPAIRABLE)).sum())

#: The route check's reasons a smaller grid can cure (:data:`gridgeo.patrol.walkcheck.REASONS`).
REPAIRABLE: tuple[str, ...] = ("too_many", "single_stop")
#: A margin under the scaled maximum: the estimate of the re-drawn grid is no closer than the first one's.
MARGIN = 0.9


def tighter_bounds(layers: Mapping[str, pd.DataFrame], rules: CountyRules) -> tuple[dict[str, dict[str, Any]],
                                                                                    list[dict[str, Any]]]:
    """Village code -> its override with a lower grid maximum, for every village holding a base grid the
    route check found too long for a reason a smaller grid cures; and what was changed, for the report."""
    if not (rules.use_groups is False or rules.merge_groups) or "walk_check" not in layers:
        return {}, []
    check = layers["walk_check"]
    bad = check[(~check["fits"].astype(bool)) & check["reason"].isin(REPAIRABLE)]
    grids = layers["grids"].set_index("code")
    vil = layers["villages"].set_index("code")
    caps: dict[str, float] = {}
    needed = pd.to_numeric(bad["needed_min"], errors="coerce").astype(float).tolist()
    for grid, hh, budget, need in zip(bad["grid"].astype(str).tolist(), bad["households"].astype(float).tolist(),
                                      bad["budget_min"].astype(float).tolist(), needed, strict=True):
        if grid not in grids.index:  # an exclusive grid: its site, not the partition, decides its size
            continue
        village = str(grids.at[grid, "parent"])
        scale = MARGIN * budget / need if math.isfinite(need) and need > 0 else 0.5
        cap = min(math.floor(hh * scale), hh - 1)  # at least one household fewer: each round makes progress
        if cap >= 1:
            caps[village] = min(caps.get(village, math.inf), cap)
    out: dict[str, dict[str, Any]] = {}
    changes = []
    for village, cap in sorted(caps.items()):
        kind = str(vil.at[village, "kind"]) if "kind" in vil.columns else None
        town = str(vil.at[village, "township"]) if "township" in vil.columns else ""
        b = rules.bounds_of_village(kind, village=[village], township=[town])
        hi = b.grid[1]
        cap = min(cap, hi)
        # the minimum gives way (to none): a minimum is what makes the engine merge a small group into a grid
        # above the maximum, and in a village where the walk decides a small grid is what a worker can patrol
        # and a grid point's maximum to half the grid's: a street block above it is split between its
        # buildings (gridgeo.county.split), so a grid of one big block can still be cut
        plo, phi = b.point
        pmax = max(1.0, min(phi, math.floor(cap / 2)))
        out[village] = {**rules.village_bounds.get(village, {}), "grid": (0.0, cap),
                        "point": (min(plo, math.floor(pmax / 2)), pmax)}
        changes.append({"village": village, "max_before": hi, "max_after": cap})
    return out, changes
