"""Daily and periodic patrol plans for grid workers (巡查): stops, days, routes, GeoJSON, GPX, CLI.

A grid worker (网格员) walks a round from the grid's station every day within
a time budget (default 4 h) and visits households marked red, orange or
yellow (红/橙/黄: how closely they must be followed), risk points and grid
points. Each kind of stop has a visit frequency, a service time and a weight
(:data:`DEFAULT_RULES`). A day's plan is an orienteering problem on the street
network (:func:`gridgeo.routing.orienteering`): the prize of a stop is what
visiting it *today* is worth, the length of a route is minutes (walking at
``speed_kmh`` along the streets, plus service time, plus the walk from the
street to the door and back).

Prizes, and why
---------------
* A stop is **due** when the days since its last visit reach its frequency;
  a stop that is not due has no prize (an early visit is not worth a
  detour that a due visit needs).
* A due stop's prize is ``weight * (1 + days overdue)``: red 100, orange 10,
  yellow 1 by default, so red ≫ orange ≫ yellow and older debts come first.
* An **overdue red** household (a daily visit already missed) gets a prize
  larger than all other prizes of the day together, times its days
  overdue: the solver never trades it for any number of lesser visits.

Where the county has no household points with priorities (the generated
county has buildings with ``households`` only), the stops are **synthetic**:
each household of each building in the grid is drawn red/orange/yellow/none
with :data:`SYNTHETIC_SHARES` from a generator seeded by ``seed`` and the
grid code, grid points are one per about 50 households, risk points are the
grid's POIs, and last visits are staggered over each frequency. Every output
says so (``"synthetic_priorities": true``, ``"synthetic_last_visits": true``).

Stops far from every street (more than ``max_snap`` metres, default 1000; the walk from
the street to the door and back is counted in the visit's time) and
stops whose round trip alone exceeds the budget are *missed with a reason*,
not errors: one unreachable household must not stop a grid's plan. The
station itself being far from the streets is an error, and so is a budget
below the shortest round trip to every stop (nothing could ever be visited).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import logging
import math
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo.errors import (
    InfeasibleError,
    InputError,
    NotFoundError,
    UsageError,
)
from gridgeo.patrol.network import Network, StopPaths, build_network, load_network
from gridgeo.routing import orienteering

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RULES",
    "SYNTHETIC_SHARES",
    "County",
    "DayPlan",
    "GridStops",
    "Missed",
    "PatrolProblem",
    "Stop",
    "Visit",
    "VisitRule",
    "parse_budget",
    "plan_day",
    "plan_period",
    "prepare",
    "route_geojson",
    "route_gpx",
    "write_geojson",
    "write_gpx",
]

#: China Standard Time: arrival times are local, GPX times UTC.
CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class VisitRule:
    """How often a kind of stop must be visited, how long a visit takes, what it is worth.

    Attributes
    ----------
    frequency_days
        A visit is due when this many days have passed since the last one.
    service_min
        Minutes spent at the stop.
    weight
        Prize of a due visit (times ``1 + days overdue``).
    label
        Chinese label used in GPX waypoint names.
    """

    frequency_days: int
    service_min: float
    weight: float
    label: str = ""


#: Default rules per priority: red daily (10 min), orange every 3 days and yellow weekly (5 min),
#: risk points every 3 days (5 min), grid points weekly (3 min). Weights 100 / 10 / 1.
DEFAULT_RULES: dict[str, VisitRule] = {
    "red": VisitRule(1, 10.0, 100.0, "红"),
    "orange": VisitRule(3, 5.0, 10.0, "橙"),
    "yellow": VisitRule(7, 5.0, 1.0, "黄"),
    "risk": VisitRule(3, 5.0, 10.0, "风险点"),
    "grid_point": VisitRule(7, 3.0, 1.0, "网格点"),
}
#: Shares of households drawn red / orange / yellow when the data has no priorities (the rest: none).
SYNTHETIC_SHARES: dict[str, float] = {"red": 0.03, "orange": 0.07, "yellow": 0.15}
_HOUSEHOLDS_PER_POINT = 50
_PRIORITY_ALIASES = {"红": "red", "橙": "orange", "黄": "yellow", "r": "red", "o": "orange", "y": "yellow"}


@dataclass(frozen=True)
class Stop:
    """A place to visit.

    Attributes
    ----------
    id
        Unique within the grid.
    kind
        ``household``, ``risk`` or ``grid_point``.
    priority
        Key into the rules (``red``, ``orange``, ``yellow``, ``risk``, ``grid_point``).
    x, y
        Location in the network's metric CRS (the door, not the street).
    name
        For people.
    last_visit
        Date of the last visit, or None (never: due at once).
    """

    id: str
    kind: str
    priority: str
    x: float
    y: float
    name: str = ""
    last_visit: dt.date | None = None


@dataclass
class GridStops:
    """The stops of one grid and its station (start and end of every round)."""

    grid: str
    station: tuple[float, float]
    stops: list[Stop]
    synthetic_priorities: bool = False
    synthetic_last_visits: bool = False
    name: str = ""
    station_given: bool = True  # False: the grid's inner point, snapped to the nearest street whatever the distance


@dataclass
class PatrolProblem:
    """A grid's stops snapped to the network with their street distances (computed once for all days).

    ``index 0`` of the matrices is the station, ``1..k`` the stops in order.
    """

    grid: GridStops
    network: Network
    rules: dict[str, VisitRule]
    speed_kmh: float
    max_snap: float
    paths: StopPaths
    snap_m: NDArray[np.float64]
    snap_xy: NDArray[np.float64]

    @property
    def metres_per_min(self) -> float:
        """Walking (or driving) speed in metres per minute."""
        return self.speed_kmh * 1000.0 / 60.0

    def service_min(self) -> NDArray[np.float64]:
        """Minutes at each node: the visit plus the walk from the street to the door and back."""
        s = np.zeros(len(self.grid.stops) + 1)
        for k, stop in enumerate(self.grid.stops, start=1):
            s[k] = self.rules[stop.priority].service_min + 2.0 * self.snap_m[k] / self.metres_per_min
        return s

    def round_trip_min(self) -> NDArray[np.float64]:
        """Minutes of the round trip station -> stop -> station alone (service included); ``inf`` unreachable."""
        d = self.paths.distance
        rt = (d[0, :] + d[:, 0]) / self.metres_per_min + self.service_min()
        rt[0] = 0.0
        rt[1:][self.snap_m[1:] > self.max_snap] = np.inf
        return rt


@dataclass(frozen=True)
class Visit:
    """One stop on a day's route."""

    stop: Stop
    order: int
    arrival: dt.datetime
    departure: dt.datetime
    xy: tuple[float, float]  # snapped point on the street
    snap_m: float


@dataclass(frozen=True)
class Missed:
    """A due visit not made, and why."""

    stop: Stop
    date: dt.date
    reason: str
    days_overdue: int = 0


@dataclass
class DayPlan:
    """A day's route for one grid.

    Attributes
    ----------
    coords
        The street geometry of the whole round, metric CRS, ``(m, 2)``.
    distance_m
        Metres walked along the streets (plus the walks to the doors).
    duration_min
        Minutes from leaving the station to returning, service included (``<= budget_min``).
    score
        Sum of the prizes collected.
    """

    grid: str
    date: dt.date
    start: dt.datetime
    end: dt.datetime
    budget_min: float
    speed_kmh: float
    mode: str
    crs: pyproj.CRS
    station: tuple[float, float]
    visits: list[Visit]
    missed: list[Missed]
    coords: NDArray[np.float64]
    distance_m: float
    duration_min: float
    score: float
    due: int
    synthetic_priorities: bool = False
    synthetic_last_visits: bool = False
    solver: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Figures of the day as plain JSON values."""
        red_due = sum(1 for v in self.visits if v.stop.priority == "red") + sum(
            1 for m in self.missed if m.stop.priority == "red"
        )
        red_met = sum(1 for v in self.visits if v.stop.priority == "red")
        return {
            "grid": self.grid,
            "date": self.date.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "mode": self.mode,
            "budget_min": round(self.budget_min, 1),
            "speed_kmh": self.speed_kmh,
            "distance_m": round(self.distance_m, 1),
            "duration_min": round(self.duration_min, 1),
            "score": round(self.score, 2),
            "visits_due": self.due,
            "visits_made": len(self.visits),
            "visits_missed": len(self.missed),
            "red_due": red_due,
            "red_met": red_met,
            "missed": [
                {"stop": m.stop.id, "name": m.stop.name, "priority": m.stop.priority, "date": m.date.isoformat(),
                 "days_overdue": m.days_overdue, "reason": m.reason}
                for m in self.missed
            ],
            "synthetic_priorities": self.synthetic_priorities,
            "synthetic_last_visits": self.synthetic_last_visits,
        }


# ---------------------------------------------------------------------------------- budget
_BUDGET = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*(?:m|min))?\s*$", re.IGNORECASE)


def parse_budget(text: str | float) -> float:
    """Minutes from ``"4h"``, ``"90min"``, ``"3h30m"``, ``"1.5h"`` or a bare number of minutes (``"240"``).

    Raises
    ------
    UsageError
        For anything else, or a budget that is not positive.
    """
    if isinstance(text, int | float):
        minutes = float(text)
    else:
        s = str(text).strip()
        try:
            minutes = float(s)
        except ValueError:
            m = _BUDGET.match(s)
            if not m or not (m.group(1) or m.group(2)):
                raise UsageError(f"budget {text!r}: expected e.g. 4h, 90min, 3h30m or 240 (minutes)") from None
            minutes = float(m.group(1) or 0) * 60.0 + float(m.group(2) or 0)
    if not (math.isfinite(minutes) and minutes > 0):
        raise UsageError(f"budget must be positive, got {text!r}")
    return minutes


def _fmt_h(minutes: float) -> str:
    return f"{minutes / 60.0:.1f} h" if minutes >= 60 else f"{minutes:.0f} min"


# ---------------------------------------------------------------------------------- planning
def prepare(
    network: Network,
    grid: GridStops,
    *,
    rules: Mapping[str, VisitRule] | None = None,
    speed_kmh: float = 4.5,
    max_snap: float = 1000.0,
    budget_min: float = 240.0,
) -> PatrolProblem:
    """Snap a grid's station and stops and compute their street distances once.

    Parameters
    ----------
    network
        The street network (its CRS is the stops' CRS).
    grid
        Station and stops.
    rules
        Visit rules per priority (default :data:`DEFAULT_RULES`).
    speed_kmh
        Walking (or driving) speed.
    max_snap
        Metres: a stop farther from every street is missed ("too far from
        the streets"); the station farther than this is an error.
    budget_min
        The longest budget the problem will be used with: paths longer than
        it are not searched.

    Raises
    ------
    InputError
        The station is farther than ``max_snap`` from the network.
    UsageError
        A stop's priority has no rule, or the speed is not positive.
    """
    rules = dict(DEFAULT_RULES if rules is None else rules)
    if not (speed_kmh > 0 and math.isfinite(speed_kmh)):
        raise UsageError(f"speed must be positive km/h, got {speed_kmh!r}")
    for s in grid.stops:
        if s.priority not in rules:
            raise UsageError(f"grid {grid.grid}: stop {s.id} has priority {s.priority!r} without a visit rule; "
                             f"rules exist for {', '.join(rules)}")
    xy = np.array([grid.station, *[(s.x, s.y) for s in grid.stops]], dtype=float).reshape(-1, 2)
    snap = network.snap(xy)
    if not grid.station_given:
        log.debug("grid %s: station snapped %.0f m from the grid's inner point", grid.grid, snap.distance[0])
    elif snap.distance[0] > max_snap:
        raise InputError(
            f"grid {grid.grid}: the station is {snap.distance[0]:.0f} m from the nearest {network.mode} street "
            f"(more than {max_snap:g} m): unreachable", path=network.source or None)
    limit = budget_min * speed_kmh * 1000.0 / 60.0
    paths = network.stop_paths(snap, limit=limit)
    return PatrolProblem(grid, network, rules, float(speed_kmh), float(max_snap), paths, snap.distance, snap.xy)


def _sec(t: dt.datetime) -> dt.datetime:
    """Round to the second (ISO 8601 output without fractions)."""
    return (t + dt.timedelta(microseconds=500_000)).replace(microsecond=0)


def _due(stop: Stop, rule: VisitRule, day: dt.date) -> tuple[bool, int]:
    if stop.last_visit is None:
        return True, 0
    since = (day - stop.last_visit).days
    return since >= rule.frequency_days, max(0, since - rule.frequency_days)


def plan_day(
    problem: PatrolProblem,
    day: dt.date,
    *,
    budget_min: float = 240.0,
    start_time: dt.time = dt.time(8, 30),
    tz: dt.tzinfo = CST,
    seed: int = 0,
    time_limit: float = 1.0,
    strict: bool = False,
) -> DayPlan:
    """Plan one day: the most priority-weighted due visits within the budget.

    Parameters
    ----------
    problem
        From :func:`prepare`; its stops' ``last_visit`` decide what is due.
    day
        The date planned.
    budget_min
        Minutes from leaving the station to returning, service included.
    start_time, tz
        When the round starts (arrival times are local to ``tz``, default UTC+8).
    seed, time_limit
        Passed to :func:`gridgeo.routing.orienteering`.
    strict
        Raise :class:`InfeasibleError` when there are due visits and the
        budget is below the round trip to every one of them.

    Returns
    -------
    DayPlan
    """
    g = problem.grid
    rules = problem.rules
    mpm = problem.metres_per_min
    service = problem.service_min()
    round_trip = problem.round_trip_min()
    due_idx: list[int] = []
    overdue: dict[int, int] = {}
    prize_of: dict[int, float] = {}
    for k, stop in enumerate(g.stops, start=1):
        rule = rules[stop.priority]
        is_due, late = _due(stop, rule, day)
        if is_due:
            due_idx.append(k)
            overdue[k] = late
            prize_of[k] = rule.weight * (1 + late)
    # overdue reds dominate everything else
    others = sum(p for k, p in prize_of.items() if not (g.stops[k - 1].priority == "red" and overdue[k] > 0))
    for k in due_idx:
        if g.stops[k - 1].priority == "red" and overdue[k] > 0:
            prize_of[k] = (others + 1.0) * rules["red"].weight * (1 + overdue[k])
    feasible = [k for k in due_idx if round_trip[k] <= budget_min + 1e-9]
    if strict and due_idx and not feasible:
        best = min(due_idx, key=lambda k: round_trip[k])
        s = g.stops[best - 1]
        raise InfeasibleError(
            f"grid {g.grid}: the budget {_fmt_h(budget_min)} is below the shortest round trip to any due stop "
            f"({_fmt_h(round_trip[best])} to {s.kind} {s.id}, {s.priority})")
    nodes = [0, *feasible]
    d = problem.paths.distance[np.ix_(nodes, nodes)] / mpm
    prize = np.array([0.0, *[prize_of[k] for k in feasible]])
    visited_local: list[int] = []
    solver: dict[str, Any] = {}
    if feasible:
        res = orienteering(d, prize, budget_min, start=0, end=0, routes=1, time_limit=time_limit, seed=seed,
                           service=service[nodes])
        visited_local = res.routes[0][1:-1]
        solver = {"iterations": res.iterations, "runtime_s": round(res.runtime, 4), "stopped_by": res.stopped_by}
    route = [0, *[nodes[i] for i in visited_local], 0]
    start = dt.datetime.combine(day, start_time, tzinfo=tz)
    t = 0.0
    metres = 0.0
    visits: list[Visit] = []
    coords: list[NDArray[np.float64]] = []
    full = problem.paths.distance
    for pos, (a, b) in enumerate(itertools.pairwise(route), start=1):
        leg = float(full[a, b])
        t += leg / mpm
        metres += leg
        if len(route) > 2:
            c = problem.paths.path_coords(a, b)
            coords.append(c if not coords else c[1:])
        if b != 0:
            arrival = t
            t += service[b]
            metres += 2.0 * problem.snap_m[b]
            stop = g.stops[b - 1]
            visits.append(Visit(stop, pos, _sec(start + dt.timedelta(minutes=arrival)),
                                _sec(start + dt.timedelta(minutes=t)),
                                (float(problem.snap_xy[b, 0]), float(problem.snap_xy[b, 1])),
                                float(problem.snap_m[b])))
    if not coords:
        p = problem.snap_xy[0]
        coords = [np.array([p, p])]
    visited = {v.stop.id for v in visits}
    best_visited = max((rules[v.stop.priority].weight for v in visits), default=0.0)
    missed: list[Missed] = []
    for k in due_idx:
        stop = g.stops[k - 1]
        if stop.id in visited:
            continue
        label = f"{stop.priority} household {stop.id}" if stop.kind == "household" else f"{stop.kind} {stop.id}"
        if problem.snap_m[k] > problem.max_snap:
            reason = (f"{label}: {problem.snap_m[k]:.0f} m from the nearest street "
                      f"(more than {problem.max_snap:g} m)")
        elif not np.isfinite(round_trip[k]):
            reason = f"{label}: not reachable from the station within the budget on the network"
        elif round_trip[k] > budget_min:
            reason = f"{label}: round trip alone is {_fmt_h(round_trip[k])} > {_fmt_h(budget_min)} budget"
        elif best_visited > rules[stop.priority].weight:
            reason = f"{label}: budget exhausted by higher priorities"
        else:
            reason = f"{label}: budget exhausted by visits of the same priority"
        missed.append(Missed(stop, day, reason, overdue[k]))
    score = float(sum(prize_of[g.stops.index(v.stop) + 1] for v in visits))
    return DayPlan(
        grid=g.grid, date=day, start=start, end=_sec(start + dt.timedelta(minutes=t)), budget_min=budget_min,
        speed_kmh=problem.speed_kmh, mode=problem.network.mode, crs=problem.network.crs,
        station=(float(problem.snap_xy[0, 0]), float(problem.snap_xy[0, 1])), visits=visits, missed=missed,
        coords=np.concatenate(coords), distance_m=metres, duration_min=t, score=score, due=len(due_idx),
        synthetic_priorities=g.synthetic_priorities, synthetic_last_visits=g.synthetic_last_visits, solver=solver,
    )


def plan_period(
    problem: PatrolProblem,
    first_day: dt.date,
    days: int = 7,
    **kwargs: Any,
) -> list[DayPlan]:
    """Plan ``days`` consecutive days, each from the last visits the previous days left.

    Keyword arguments go to :func:`plan_day`. The problem's stops are not
    modified (each day works on an updated copy).
    """
    if days < 1:
        raise UsageError(f"days must be >= 1, got {days}")
    plans: list[DayPlan] = []
    stops = list(problem.grid.stops)
    for i in range(days):
        day = first_day + dt.timedelta(days=i)
        current = replace(problem, grid=replace(problem.grid, stops=stops))
        plan = plan_day(current, day, **{**kwargs, "strict": kwargs.get("strict", False) and i == 0})
        plans.append(plan)
        seen = {v.stop.id for v in plan.visits}
        stops = [replace(s, last_visit=day) if s.id in seen else s for s in stops]
    return plans


def check_budget(problem: PatrolProblem, budget_min: float) -> None:
    """Raise :class:`InfeasibleError` when the budget is below the round trip to every stop."""
    rt = problem.round_trip_min()[1:]
    if len(rt) == 0 or (rt <= budget_min + 1e-9).any():
        return
    k = int(np.argmin(rt))
    s = problem.grid.stops[k]
    what = f"{_fmt_h(rt[k])} to {s.kind} {s.id}, {s.priority}" if np.isfinite(rt[k]) else "no stop is reachable"
    raise InfeasibleError(
        f"grid {problem.grid.grid}: the budget {_fmt_h(budget_min)} is below the shortest round trip to any stop "
        f"({what})")


def period_summary(plans: Sequence[DayPlan]) -> dict[str, Any]:
    """Totals over days, and the visits that could not be met with their reasons."""
    if not plans:
        return {}
    first = plans[0]
    red_due = sum(p.summary()["red_due"] for p in plans)
    red_met = sum(p.summary()["red_met"] for p in plans)
    return {
        "grid": first.grid,
        "first_date": first.date.isoformat(),
        "days": len(plans),
        "mode": first.mode,
        "budget_min": round(first.budget_min, 1),
        "speed_kmh": first.speed_kmh,
        "distance_m": round(sum(p.distance_m for p in plans), 1),
        "duration_min": round(sum(p.duration_min for p in plans), 1),
        "score": round(sum(p.score for p in plans), 2),
        "visits_due": sum(p.due for p in plans),
        "visits_made": sum(len(p.visits) for p in plans),
        "visits_missed": sum(len(p.missed) for p in plans),
        "red_due": red_due,
        "red_met": red_met,
        "red_met_share": round(red_met / red_due, 4) if red_due else 1.0,
        "missed": [m for p in plans for m in p.summary()["missed"]],
        "days_detail": [{k: v for k, v in p.summary().items() if k != "missed"} for p in plans],
        "synthetic_priorities": any(p.synthetic_priorities for p in plans),
        "synthetic_last_visits": any(p.synthetic_last_visits for p in plans),
    }


# ---------------------------------------------------------------------------------- outputs
@functools.lru_cache(maxsize=8)
def _transformer(wkt: str) -> pyproj.Transformer:
    # building a Transformer costs ~70 ms: once per CRS, not once per route
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), "EPSG:4326", always_xy=True)


def _to_lonlat(crs: pyproj.CRS) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    tr = _transformer(crs.to_wkt())

    def conv(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.asarray(np.round(np.c_[lon, lat], 7), dtype=np.float64)

    return conv


def _plans(plan: DayPlan | Sequence[DayPlan]) -> list[DayPlan]:
    return [plan] if isinstance(plan, DayPlan) else list(plan)


def route_geojson(plan: DayPlan | Sequence[DayPlan]) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection of one or several days' routes.

    Per day: a ``route`` LineString along the streets (with the day's
    figures), a ``station`` Point, and one ``stop`` Point per visit in order
    (the snapped point on the street; the door is in ``location``) with ISO
    8601 ``arrival``/``departure``. The summary (of the period, when several
    days are given) is the collection's top-level ``properties`` member.
    EPSG:4326 lon/lat, no ``crs`` member.
    """
    plans = _plans(plan)
    features: list[dict[str, Any]] = []
    for p in plans:
        conv = _to_lonlat(p.crs)
        line = conv(p.coords).tolist()
        props = {k: v for k, v in p.summary().items() if k != "missed"}
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                         "properties": {"kind": "route", **props}})
        st = conv(np.array([p.station]))[0].tolist()
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": st},
                         "properties": {"kind": "station", "grid": p.grid, "date": p.date.isoformat(),
                                        "departure": p.start.isoformat(), "arrival": p.end.isoformat()}})
        for v in p.visits:
            at = conv(np.array([v.xy]))[0].tolist()
            door = conv(np.array([(v.stop.x, v.stop.y)]))[0].tolist()
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": at},
                "properties": {
                    "kind": "stop", "grid": p.grid, "date": p.date.isoformat(), "order": v.order,
                    "stop": v.stop.id, "name": v.stop.name, "stop_kind": v.stop.kind, "priority": v.stop.priority,
                    "arrival": v.arrival.isoformat(), "departure": v.departure.isoformat(),
                    "snap_m": round(v.snap_m, 1), "location": door,
                },
            })
    summary = period_summary(plans) if len(plans) > 1 else (plans[0].summary() if plans else {})
    return {"type": "FeatureCollection", "properties": summary, "features": features}


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def route_gpx(plan: DayPlan | Sequence[DayPlan], *, name: str | None = None) -> str:
    """GPX 1.1 text: metadata, one ``wpt`` per visit (in order, with UTC arrival time), then one ``trk``
    per day with the street geometry in one ``trkseg`` (the schema's order: metadata, wpt, rte, trk).
    """
    plans = _plans(plan)
    title = name or (f"gridgeo patrol {plans[0].grid}" if plans else "gridgeo patrol")
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<gpx version="1.1" creator="gridgeo" xmlns="http://www.topografix.com/GPX/1/1" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">',
           f"  <metadata><name>{escape(title)}</name>"
           + (f"<time>{_utc(plans[0].start)}</time>" if plans else "") + "</metadata>"]
    for p in plans:
        conv = _to_lonlat(p.crs)
        for v in p.visits:
            lon, lat = conv(np.array([v.xy]))[0]
            label = DEFAULT_RULES[v.stop.priority].label if v.stop.priority in DEFAULT_RULES else v.stop.priority
            nm = f"{p.date.isoformat()} #{v.order} {label} {v.stop.name or v.stop.id}"
            desc = (f"{v.stop.kind} {v.stop.id}, arrive {v.arrival.strftime('%H:%M')}, "
                    f"leave {v.departure.strftime('%H:%M')}")
            out.append(f'  <wpt lat="{lat:.7f}" lon="{lon:.7f}"><time>{_utc(v.arrival)}</time>'
                       f"<name>{escape(nm)}</name><desc>{escape(desc)}</desc><type>{escape(v.stop.kind)}</type></wpt>")
    for p in plans:
        conv = _to_lonlat(p.crs)
        out.append(f"  <trk><name>{escape(p.grid)} {p.date.isoformat()}</name><trkseg>")
        out.extend(f'    <trkpt lat="{lat:.7f}" lon="{lon:.7f}"/>' for lon, lat in conv(p.coords))
        out.append("  </trkseg></trk>")
    out.append("</gpx>")
    return "\n".join(out) + "\n"


def write_geojson(plan: DayPlan | Sequence[DayPlan], path: str | Path) -> None:
    """Write :func:`route_geojson` atomically."""
    from gridgeo.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(route_geojson(plan), ensure_ascii=False), encoding="utf-8")


def write_gpx(plan: DayPlan | Sequence[DayPlan], path: str | Path) -> None:
    """Write :func:`route_gpx` atomically."""
    from gridgeo.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(route_gpx(plan), encoding="utf-8")


# ---------------------------------------------------------------------------------- county
def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(code.encode("utf-8"))])


def _priority(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    s = str(value).strip().lower()
    s = _PRIORITY_ALIASES.get(s, s)
    return s if s in ("red", "orange", "yellow") else None


class County:
    """A county GeoPackage opened for patrol planning: grids, stops and the street network.

    Grids come from the ``grids`` layer if there is one, else from
    ``villager_groups`` (a grid is often one villager group; logged). Stops:
    a ``households`` point layer with ``priority`` (red/orange/yellow or
    红/橙/黄) and optionally ``last_visit``, if present; else synthetic
    priorities on the household counts of ``buildings``, or of the
    ``households`` assignment a build writes (see the module docstring). Grid points
    from a ``points`` layer (``parent`` = grid code) if present, else
    synthetic. Risk points from a ``risk_points`` layer, else the ``pois``.
    The network is ``network`` (a file) or the county's ``roads`` layer.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        network: str | Path | Network | None = None,
        mode: str = "walk",
        seed: int = 0,
    ) -> None:
        from gridgeo.data import io

        self.path = Path(path)
        self.seed = int(seed)
        names = io.list_layers(self.path)
        self.layers = names
        if isinstance(network, Network):
            self.network = network
        elif network is not None:
            self.network = load_network(network, mode=mode)
        else:
            if "roads" not in names:
                raise InputError("no 'roads' layer and no --network given", path=self.path)
            roads = io.read_layer(self.path, layer="roads")
            self.network = build_network(roads, mode=mode, source=f"{self.path}:roads")
        crs = self.network.crs
        if "grids" in names:
            grid_layer = "grids"
        elif "villager_groups" in names:
            grid_layer = "villager_groups"
            log.info("%s: no 'grids' layer; using 'villager_groups' as grids", self.path)
        else:
            raise InputError("no 'grids' or 'villager_groups' layer", path=self.path)
        grids = io.read_layer(self.path, layer=grid_layer)
        id_col = "code" if "code" in grids.columns else None
        if id_col is None:
            raise InputError(f"layer {grid_layer!r} has no 'code' column", path=self.path)
        self.grids = grids.to_crs(crs).reset_index(drop=True)
        self.grids["code"] = self.grids["code"].astype(str)
        self.codes: list[str] = self.grids["code"].tolist()
        self._row = {c: i for i, c in enumerate(self.codes)}
        self.grid_layer = grid_layer
        tree = shapely.STRtree(self.grids.geometry.values)

        def locate(gdf: gpd.GeoDataFrame) -> NDArray[np.int64]:
            pts = shapely.point_on_surface(gdf.geometry.values)
            pi, gi = tree.query(pts, predicate="within")
            out = np.full(len(gdf), -1, dtype=np.int64)
            out[pi[::-1]] = gi[::-1]
            return out

        self.households: gpd.GeoDataFrame | None = None
        self.buildings: gpd.GeoDataFrame | None = None
        counted: gpd.GeoDataFrame | None = None  # a build's household assignment: counts, no priorities
        if "households" in names:
            hh = io.read_layer(self.path, layer="households").to_crs(crs)
            if "priority" in hh.columns:
                hh["_grid"] = locate(hh)
                self.households = hh
            elif "households" in hh.columns:
                counted = hh
        if self.households is None and ("buildings" in names or counted is not None):
            b = io.read_layer(self.path, layer="buildings").to_crs(crs) if "buildings" in names else counted
            assert b is not None
            b = b[b["households"].fillna(0).astype(int) > 0] if "households" in b.columns else b.iloc[:0]
            b = b.reset_index(drop=True)
            b["_grid"] = locate(b)
            self.buildings = b
        self.points: gpd.GeoDataFrame | None = None
        if "points" in names:
            pts = io.read_layer(self.path, layer="points").to_crs(crs)
            if "parent" in pts.columns:
                self.points = pts
        risk_layer = "risk_points" if "risk_points" in names else ("pois" if "pois" in names else None)
        self.risk: gpd.GeoDataFrame | None = None
        if risk_layer is not None:
            r = io.read_layer(self.path, layer=risk_layer).to_crs(crs).reset_index(drop=True)
            r["_grid"] = locate(r)
            self.risk = r

    def check_grid(self, code: str) -> int:
        """Row of grid ``code``.

        Raises
        ------
        NotFoundError
            Naming the id and a few valid ones.
        """
        row = self._row.get(str(code))
        if row is None:
            few = ", ".join(self.codes[:5]) + (" ..." if len(self.codes) > 5 else "")
            raise NotFoundError(f"no grid {code!r} in layer {self.grid_layer!r} ({len(self.codes)} grids: {few})",
                                path=self.path)
        return row

    def grid_stops(
        self,
        code: str,
        day: dt.date,
        *,
        station: tuple[float, float] | None = None,
        rules: Mapping[str, VisitRule] | None = None,
    ) -> GridStops:
        """The stops of grid ``code`` with their last visits as of ``day`` (synthetic where the data has none).

        ``station`` is in the network's CRS; by default the grid's representative point.
        """
        rules = dict(DEFAULT_RULES if rules is None else rules)
        row = self.check_grid(code)
        poly = self.grids.geometry.iloc[row]
        name = str(self.grids["name"].iloc[row]) if "name" in self.grids.columns else ""
        rng = _rng(self.seed, code)
        stops: list[Stop] = []
        synthetic_p = False
        synthetic_lv = False
        if self.households is not None:
            hh = self.households[self.households["_grid"] == row]
            xy = np.asarray(shapely.get_coordinates(shapely.point_on_surface(hh.geometry.values))).reshape(-1, 2)
            has_lv = "last_visit" in hh.columns
            for i, (idx, r) in enumerate(hh.iterrows()):
                pr = _priority(r["priority"])
                if pr is None:
                    continue
                lv = None
                if has_lv and r["last_visit"] is not None and str(r["last_visit"]) not in ("", "nan", "NaT", "<NA>"):
                    lv = dt.date.fromisoformat(str(r["last_visit"])[:10])
                sid = str(r["id"]) if "id" in hh.columns else f"h{idx}"
                stops.append(Stop(sid, "household", pr, float(xy[i, 0]), float(xy[i, 1]),
                                  str(r.get("name") or sid), lv))
        elif self.buildings is not None:
            synthetic_p = True
            b = self.buildings[self.buildings["_grid"] == row]
            xy = np.asarray(shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))).reshape(-1, 2)
            counts = b["households"].fillna(0).astype(int).to_numpy()
            colours = ["red", "orange", "yellow"]
            probs = [SYNTHETIC_SHARES[c] for c in colours]
            for i, (idx, h) in enumerate(zip(b.index, counts, strict=True)):
                draws = rng.random(h)
                edges = np.cumsum(probs)
                for j, u in enumerate(draws):
                    c = int(np.searchsorted(edges, u, side="right"))
                    if c < 3:
                        sid = f"b{idx}-{j + 1}"
                        stops.append(Stop(sid, "household", colours[c], float(xy[i, 0]), float(xy[i, 1]),
                                          f"{name} 建筑{idx} 第{j + 1}户"))
        # grid points
        if self.points is not None:
            p = self.points[self.points["parent"].astype(str) == code]
            xy = np.asarray(shapely.get_coordinates(shapely.point_on_surface(p.geometry.values))).reshape(-1, 2)
            for i, (idx, r) in enumerate(p.iterrows()):
                sid = str(r["code"]) if "code" in p.columns else f"p{idx}"
                stops.append(Stop(sid, "grid_point", "grid_point", float(xy[i, 0]), float(xy[i, 1]),
                                  str(r.get("name") or sid)))
        elif self.buildings is not None:
            b = self.buildings[self.buildings["_grid"] == row]
            if len(b):
                xy = np.asarray(shapely.get_coordinates(shapely.point_on_surface(b.geometry.values))).reshape(-1, 2)
                hh_b = b["households"].fillna(0).astype(int).to_numpy()
                k = max(1, round(int(hh_b.sum()) / _HOUSEHOLDS_PER_POINT))
                c = xy.mean(axis=0)
                order = np.argsort(np.arctan2(xy[:, 1] - c[1], xy[:, 0] - c[0]), kind="stable")
                for n, chunk in enumerate(np.array_split(order, k), start=1):
                    if len(chunk) == 0:
                        continue
                    m = chunk[np.argmin(np.hypot(*(xy[chunk] - xy[chunk].mean(axis=0)).T))]
                    stops.append(Stop(f"{code}-P{n:03d}", "grid_point", "grid_point", float(xy[m, 0]),
                                      float(xy[m, 1]), f"{name} 网格点{n}"))
        if self.risk is not None:
            r = self.risk[self.risk["_grid"] == row]
            xy = np.asarray(shapely.get_coordinates(shapely.point_on_surface(r.geometry.values))).reshape(-1, 2)
            for i, idx in enumerate(r.index):
                nm = str(r["name"].loc[idx]) if "name" in r.columns else f"r{idx}"
                stops.append(Stop(f"r{idx}", "risk", "risk", float(xy[i, 0]), float(xy[i, 1]), nm))
        # last visits where the data has none: staggered over each frequency
        out: list[Stop] = []
        for s in stops:
            if s.last_visit is None:
                synthetic_lv = True
                f = rules[s.priority].frequency_days if s.priority in rules else 1
                s = replace(s, last_visit=day - dt.timedelta(days=int(rng.integers(1, f + 1))))
            out.append(s)
        given = station is not None
        if station is None:
            rp = shapely.point_on_surface(poly)
            station = (float(rp.x), float(rp.y))
        return GridStops(code, station, out, synthetic_p, synthetic_lv, name, station_given=given)
