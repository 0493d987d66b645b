"""The walk-time check of a built county: each grid's due visits of a day, planned by the route solver, against the
budget, and why a grid's do not fit.

Why after the estimate: the partition sizes grids with an estimate (:mod:`gridgeo.patrol.walktime`), which knows
households and areas, not the streets; only the route solver on the real network says whether a grid's day fits.
Each grid (and exclusive grid) is planned exactly as ``gridgeo patrol --all`` plans it
(:func:`gridgeo.patrol.plan_grid`, one day), and a grid **fits** when no due visit of the day is missed. A grid
that does not fit gets every reason its missed visits have, counted, and its main one, the first of
:data:`REASONS` it has:

``station``
    The station (or the round's end) is farther than ``max_snap`` from every street: no round can start.
``start_far``
    The round starts far outside the grid (a start place, or a station on a street far from a grid with none),
    and some stop's round trip is over the budget or has no path: the walk there is the problem, not the grid.
``off_network``
    Due households farther than ``max_snap`` from every street.
``unreachable``
    Due stops the network does not join to the station within a budget's walk (a network gap, a street piece
    joined to the rest only far away).
``single_stop``
    A due stop whose round trip alone (there, the visit, back) exceeds the budget.
``window``
    Visit windows the round cannot hold.
``too_many``
    Every due visit fits alone, but not all together: more households than the budget holds. ``needed_min`` is
    what the round of every due visit that fits alone takes (solved with no budget), so the excess is known.

The reasons of missed visits are read from the planner's own words (:class:`gridgeo.patrol.Missed`, as
``bench/bench_patrol.py`` reads them), so the check and ``gridgeo patrol`` never disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.errors import InfeasibleError, InputError
from gridgeo.patrol.county import County
from gridgeo.patrol.options import PatrolOptions
from gridgeo.patrol.plan import DayPlan, plan_grid, prepare
from gridgeo.patrol.stops import due
from gridgeo.routing import orienteering

log = logging.getLogger(__name__)

__all__ = ["REASONS", "GridCheck", "WalkCheck", "check_grid", "check_walk"]

#: Why a grid's due visits do not fit, in the order the main reason is chosen (see the module docstring).
REASONS: dict[str, str] = {
    "station": "the station is off the street network",
    "start_far": "the round starts far outside the grid",
    "off_network": "due households far from every street",
    "unreachable": "due stops the network does not join to the station within the budget",
    "single_stop": "a due stop whose round trip alone exceeds the budget",
    "window": "visit windows the round cannot hold",
    "too_many": "more due visits than the budget holds",
}


@dataclass(frozen=True)
class GridCheck:
    """One grid's day against the budget.

    ``reason`` is empty when the grid fits; ``reasons`` counts the missed visits by reason (``station`` and an
    infeasible budget count 1); ``detail`` says it in words (the planner's, for the first visit of the main reason).
    """

    grid: str
    name: str
    households: int
    area_m2: float
    due: int
    made: int
    missed: int
    duration_min: float
    budget_min: float
    reason: str = ""
    reasons: dict[str, int] = field(default_factory=dict)
    needed_min: float | None = None
    detail: str = ""

    @property
    def fits(self) -> bool:
        """No due visit of the day missed."""
        return not self.reason

    def row(self) -> dict[str, Any]:
        """The grid's row of the ``walk_check`` table."""
        return {"grid": self.grid, "name": self.name, "households": self.households,
                "area_m2": round(self.area_m2, 1), "due": self.due, "made": self.made, "missed": self.missed,
                "duration_min": round(self.duration_min, 1), "budget_min": round(self.budget_min, 1),
                "needed_min": None if self.needed_min is None else round(self.needed_min, 1), "fits": self.fits,
                "reason": self.reason, "reasons": json.dumps(self.reasons, ensure_ascii=False),
                "detail": self.detail}


@dataclass
class WalkCheck:
    """Every grid's check for one day (:func:`check_walk`)."""

    date: dt.date
    budget_min: float
    grids: list[GridCheck]
    seconds: float = 0.0

    def table(self) -> pd.DataFrame:
        """The ``walk_check`` table: one row per grid (no geometry), in the county's grid order."""
        cols = list(GridCheck("", "", 0, 0.0, 0, 0, 0, 0.0, 0.0).row())
        return pd.DataFrame([g.row() for g in self.grids], columns=cols)

    def summary(self) -> dict[str, Any]:
        """Counts: grids, those that fit and their share, grids per main reason, the first few that do not fit."""
        bad = [g for g in self.grids if not g.fits]
        return {"date": self.date.isoformat(), "budget_min": round(self.budget_min, 1), "grids": len(self.grids),
                "fit": len(self.grids) - len(bad),
                "fit_share": round(1 - len(bad) / len(self.grids), 4) if self.grids else 1.0,
                "by_reason": dict(Counter(g.reason for g in bad).most_common()),
                "not_fitting": [{"grid": g.grid, "reason": g.reason, "detail": g.detail} for g in bad[:20]],
                "seconds": round(self.seconds, 2)}


def _kind(reason: str) -> str:
    """The reason of a missed visit as the planner words it (:func:`gridgeo.patrol.plan._miss_reason`, windows)."""
    if "from the nearest street" in reason:
        return "off_network"
    if "not reachable" in reason:
        return "unreachable"
    if "round trip alone" in reason:
        return "single_stop"
    if "budget exhausted" in reason:
        return "too_many"
    return "window"  # the rest are the window reasons (gridgeo.patrol.windows, "visit window")


def _main(reasons: Counter[str], start_far: bool) -> str:
    """The main reason: the first of :data:`REASONS` present; far stops from a far start are the start's fault."""
    if start_far and (reasons["single_stop"] or reasons["unreachable"]):
        return "start_far"
    return next((r for r in REASONS if reasons[r]), "")


def check_grid(county: County, code: str, *, day: dt.date, options: PatrolOptions) -> GridCheck:
    """Plan grid ``code``'s day as ``gridgeo patrol`` does and say whether its due visits fit, and if not why."""
    row = county.check_grid(code)
    geom = county.grids.geometry.iloc[row]
    base = GridCheck(code, str(county.grids["name"].iloc[row]) if "name" in county.grids.columns else "",
                     _households(county, row), float(geom.area), 0, 0, 0, 0.0, options.budget_min)
    try:
        plans = plan_grid(county, code, day=day, days=1, options=replace(options, campaign_days=None))
    except InputError as err:  # the station or the end far from the streets
        return replace(base, reason="station", reasons={"station": 1}, detail=str(err))
    except InfeasibleError as err:  # the budget below every round trip
        kind = "unreachable" if "no stop is reachable" in str(err) or "no path" in str(err) else "single_stop"
        far = _start_far(county, row, None, options)
        return replace(base, reason="start_far" if far else kind, reasons={kind: 1}, detail=str(err))
    missed = [m for p in plans for m in p.missed]
    made = sum(len(p.visits) for p in plans)
    out = replace(base, due=made + len(missed), made=made, missed=len(missed),
                  duration_min=max(p.duration_min for p in plans))
    if not missed:
        return out
    reasons = Counter(_kind(m.reason) for m in missed)
    main = _main(reasons, _start_far(county, row, plans[0], options))
    first = next((m.reason for m in missed if _kind(m.reason) == main), missed[0].reason)
    needed = _needed_min(county, code, plans[0], day, options) if main == "too_many" else None
    detail = (f"{out.due} due visits need {needed:.0f} min > {options.budget_min:.0f} min budget "
              f"({made} made)" if needed is not None else first)
    return replace(out, reason=main, reasons=dict(reasons), needed_min=needed, detail=detail)


def _households(county: County, row: int) -> int:
    """The grid's households (the built layer's count; 0 where the layer has none)."""
    if "households" not in county.grids.columns:
        return 0
    v = county.grids["households"].iloc[row]
    return 0 if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _start_far(county: County, row: int, plan: DayPlan | None, options: PatrolOptions) -> bool:
    """Whether the round starts farther than ``max_snap`` outside the grid (its snapped start: the plan's, else the
    options' place or the grid's station)."""
    geom = county.grids.geometry.iloc[row]
    if plan is not None:
        xy = plan.station
    else:
        place = options.home if options.start == "home" else options.start
        if isinstance(place, tuple):
            tr = pyproj.Transformer.from_crs("EPSG:4326", county.network.crs, always_xy=True)
            xy = tr.transform(*place)
        else:
            rp = shapely.point_on_surface(geom)
            xy = (rp.x, rp.y)
        snapped = county.network.snap(np.array([xy], dtype=float)).xy[0]
        xy = (float(snapped[0]), float(snapped[1]))
    return bool(shapely.distance(geom, shapely.Point(xy)) > options.max_snap)


def _needed_min(county: County, code: str, plan: DayPlan, day: dt.date, options: PatrolOptions) -> float:
    """Minutes of the round through every due stop that fits alone, solved with no budget (what ``too_many`` lacks)."""
    gs = county.round_stops(code, day, station=plan.station, rules=options.rules)
    problem = prepare(county.network, gs, rules=options.rules, special=options.special,
                      speed_kmh=plan.speed_kmh, max_snap=options.max_snap, budget_min=options.budget_min)
    rt = problem.round_trip_min()
    nodes = [k for k, s in enumerate(gs.stops, start=1)
             if due(s, problem.rule(k), day)[0] and rt[k] <= options.budget_min]
    keep = [0, *nodes]
    d = problem.paths.distance[np.ix_(keep, keep)] / problem.metres_per_min
    service = problem.service_min()[keep]
    budget = float(len(keep) * np.max(d[np.isfinite(d)]) + service.sum() + 1.0)
    res = orienteering(np.where(np.isfinite(d), d, budget), np.r_[0.0, np.ones(len(nodes))], budget, start=0, end=0,
                       seed=options.seed, time_limit=options.time_limit * 5, service=service)
    return float(res.lengths[0])


def check_walk(county: County, *, day: dt.date, options: PatrolOptions | None = None,
               codes: Sequence[str] | None = None) -> WalkCheck:
    """Check every grid (or ``codes``) of ``county`` for ``day``: :func:`check_grid` each, in the county's order."""
    opts = PatrolOptions() if options is None else options
    t0 = time.perf_counter()
    grids = [check_grid(county, c, day=day, options=opts) for c in (county.codes if codes is None else codes)]
    out = WalkCheck(day, opts.budget_min, grids, time.perf_counter() - t0)
    log.info("walk check %s: %d/%d grids fit %s", day, out.summary()["fit"], len(grids), out.summary()["by_reason"])
    return out
