"""Daily and periodic patrol plans for grid workers (巡查): what is due, what is worth most, the route.

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
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo.data.quantities import format_window
from gridgeo.errors import InfeasibleError, InputError, UsageError
from gridgeo.patrol._offnet import OffNetworkLeg, off_network, off_network_json
from gridgeo.patrol.itinerary import with_register
from gridgeo.patrol.network import Network, StopPaths
from gridgeo.patrol.options import SPEED_KMH, PatrolOptions
from gridgeo.patrol.stops import CST, DEFAULT_RULES, CategoryRule, GridStops, Stop, VisitRule, due, effective_rule
from gridgeo.patrol.windows import Clock, repair, unreachable
from gridgeo.routing import orienteering

if TYPE_CHECKING:
    from gridgeo.patrol.county import County

log = logging.getLogger(__name__)

__all__ = [
    "DayPlan",
    "Missed",
    "OffNetworkLeg",
    "PatrolProblem",
    "Visit",
    "check_budget",
    "period_summary",
    "plan_day",
    "plan_grid",
    "plan_period",
    "prepare",
]

_DEFAULT = PatrolOptions()


@dataclass
class PatrolProblem:
    """A grid's stops snapped to the network with their street distances (computed once for all days).

    ``index 0`` of the matrices is the station (the start), ``1..k`` the stops in order, and ``end`` the node
    rounds end at (0: back at the start; else ``k + 1``, a separate end point).
    """

    grid: GridStops
    network: Network
    rules: dict[str, VisitRule]
    speed_kmh: float
    max_snap: float
    paths: StopPaths
    snap_m: NDArray[np.float64]
    snap_xy: NDArray[np.float64]
    # -- issue 13 item 4 (visit policy): the end node and each stop's rule (its colour's and categories')
    end: int = 0
    stop_rules: list[VisitRule] = field(default_factory=list)

    def rule(self, k: int) -> VisitRule:
        """The rule stop ``k`` (``1..k``) is visited by (:func:`~gridgeo.patrol.stops.effective_rule`)."""
        if self.stop_rules:
            return self.stop_rules[k - 1]
        return self.rules[self.grid.stops[k - 1].priority]
    # -- end issue 13 item 4

    @property
    def metres_per_min(self) -> float:
        """Walking (or driving) speed in metres per minute."""
        return self.speed_kmh * 1000.0 / 60.0

    def service_min(self) -> NDArray[np.float64]:
        """Minutes at each node: the visit plus the walk from the street to the door and back."""
        s = np.zeros(self.paths.distance.shape[0])
        for k in range(1, len(self.grid.stops) + 1):
            s[k] = self.rule(k).service_min + 2.0 * self.snap_m[k] / self.metres_per_min
        return s

    def round_trip_min(self) -> NDArray[np.float64]:
        """Minutes of the round trip start -> stop -> end alone (service included); ``inf`` unreachable."""
        d = self.paths.distance
        k = len(self.grid.stops)
        rt = (d[0, :] + d[:, self.end]) / self.metres_per_min + self.service_min()
        rt[0] = rt[self.end] = 0.0
        rt[1:k + 1][self.snap_m[1:k + 1] > self.max_snap] = np.inf
        return rt


@dataclass(frozen=True)
class Visit:
    """One stop on a day's route: where the worker leaves the street, when at the door, what is due.

    ``arrival`` and ``departure`` are at the door (``stop.x, stop.y``), the walk from the street
    point ``xy`` (``snap_m`` metres each way) before and after; the route's geometry walks that leg.
    """

    stop: Stop
    order: int
    arrival: dt.datetime
    departure: dt.datetime
    xy: tuple[float, float]  # snapped point on the street
    snap_m: float
    # -- what a person reads (issue 13 item 5): the rule the visit was due under, where known the address
    rule: VisitRule | None = None
    days_overdue: int = 0
    address: str = ""  # a register's address; empty where unknown or withheld (County(names=False))
    special: str = ""  # a register's special-care categories; as private as the address


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
        The geometry of the whole round, metric CRS, ``(m, 2)``: along the streets, and from the street
        to each door and back (so its length is ``distance_m``).
    distance_m
        Metres walked along the streets plus the walks to the doors (what the solver optimised).
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
    end_point: tuple[float, float] | None = None  # issue 13 item 4: where the round ends when not at the station
    campaign_days: int | None = None  # issue 13 item 4: a day of a campaign (every household once) of this many days
    off_network: list[OffNetworkLeg] = field(default_factory=list)  # legs off the streets > 50 m
    worker: int | None = None  # which of a team's rounds (gridgeo.patrol.team), None: the grid's one worker

    def summary(self) -> dict[str, Any]:
        """Figures of the day as plain JSON values."""
        red_due = sum(1 for v in self.visits if v.stop.priority == "red") + sum(
            1 for m in self.missed if m.stop.priority == "red"
        )
        red_met = sum(1 for v in self.visits if v.stop.priority == "red")
        return {
            "grid": self.grid,
            **({"worker": self.worker} if self.worker is not None else {}),
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
            "off_network": off_network_json(self.off_network, self.crs),
            "synthetic_priorities": self.synthetic_priorities,
            "synthetic_last_visits": self.synthetic_last_visits,
            **({"campaign_days": self.campaign_days} if self.campaign_days else {}),
        }


def _fmt_h(minutes: float) -> str:
    return f"{minutes / 60.0:.1f} h" if minutes >= 60 else f"{minutes:.0f} min"


# ---------------------------------------------------------------------------------- planning
def prepare(
    network: Network,
    grid: GridStops,
    *,
    rules: Mapping[str, VisitRule] | None = None,
    speed_kmh: float = SPEED_KMH["walk"],
    max_snap: float = _DEFAULT.max_snap,
    budget_min: float = _DEFAULT.budget_min,
    special: Mapping[str, CategoryRule] | None = None,
    end: tuple[float, float] | None = None,
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
    special
        Rules per special-care category; each stop takes the most demanding of its colour's and its
        categories' (:func:`~gridgeo.patrol.stops.effective_rule`).
    end
        Where rounds end, in the network's CRS, when not back at the station (the worker's home, a point).

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
    xy = np.array([grid.station, *[(s.x, s.y) for s in grid.stops], *([end] if end is not None else [])],
                  dtype=float).reshape(-1, 2)
    snap = network.snap(xy)
    if not grid.station_given:
        log.debug("grid %s: station snapped %.0f m from the grid's inner point", grid.grid, snap.distance[0])
    elif snap.distance[0] > max_snap:
        raise InputError(
            f"grid {grid.grid}: the station is {snap.distance[0]:.0f} m from the nearest {network.mode} street "
            f"(more than {max_snap:g} m): unreachable", path=network.source or None)
    if end is not None and snap.distance[-1] > max_snap:  # issue 13 item 4: a separate end point
        raise InputError(
            f"grid {grid.grid}: the end point is {snap.distance[-1]:.0f} m from the nearest {network.mode} street "
            f"(more than {max_snap:g} m): unreachable", path=network.source or None)
    limit = budget_min * speed_kmh * 1000.0 / 60.0
    paths = network.stop_paths(snap, limit=limit)
    stop_rules = [effective_rule(s, rules, special or {}) for s in grid.stops]  # issue 13 item 4
    return PatrolProblem(grid, network, rules, float(speed_kmh), float(max_snap), paths, snap.distance, snap.xy,
                         end=len(grid.stops) + 1 if end is not None else 0, stop_rules=stop_rules)


def _sec(t: dt.datetime) -> dt.datetime:
    """Round to the second (ISO 8601 output without fractions)."""
    return (t + dt.timedelta(microseconds=500_000)).replace(microsecond=0)

@dataclass
class _Due:
    """The stops due on a day: their node indices (``1..k``, in stop order), days overdue and prizes."""

    nodes: list[int]
    overdue: dict[int, int]
    prize: dict[int, float]
    reasons: dict[int, str] = field(default_factory=dict)  # issue 13 item 4: left out before solving, and why


@dataclass
class _Walk:
    """A route walked from the station: the visits with their times, the street geometry, metres, minutes."""

    visits: list[Visit]
    coords: NDArray[np.float64]
    metres: float
    minutes: float


def _due_prizes(problem: PatrolProblem, day: dt.date) -> _Due:
    """What visiting each due stop today is worth (see the module docstring: overdue reds dominate)."""
    g = problem.grid
    rules = problem.rules
    due_idx: list[int] = []
    overdue: dict[int, int] = {}
    prize_of: dict[int, float] = {}
    for k, stop in enumerate(g.stops, start=1):
        rule = problem.rule(k)
        is_due, late = due(stop, rule, day)
        if is_due:
            due_idx.append(k)
            overdue[k] = late
            prize_of[k] = rule.weight * (1 + late)
    # overdue reds dominate everything else
    others = sum(p for k, p in prize_of.items() if not (g.stops[k - 1].priority == "red" and overdue[k] > 0))
    for k in due_idx:
        if g.stops[k - 1].priority == "red" and overdue[k] > 0:
            prize_of[k] = (others + 1.0) * rules["red"].weight * (1 + overdue[k])
    return _Due(due_idx, overdue, prize_of)


def _feasible(
    problem: PatrolProblem, todo: _Due, round_trip: NDArray[np.float64], *, budget_min: float, strict: bool
) -> list[int]:
    """The due stops whose round trip alone fits the budget (strict: raise when there are none)."""
    feasible = [k for k in todo.nodes if round_trip[k] <= budget_min + 1e-9 and k not in todo.reasons]
    if strict and todo.nodes and not feasible:
        best = min(todo.nodes, key=lambda k: round_trip[k])
        s = problem.grid.stops[best - 1]
        raise InfeasibleError(
            f"grid {problem.grid.grid}: the budget {_fmt_h(budget_min)} is below the shortest round trip to any "
            f"due stop ({_fmt_h(round_trip[best])} to {s.kind} {s.id}, {s.priority})")
    return feasible


def _solve(
    problem: PatrolProblem,
    feasible: list[int],
    todo: _Due,
    service: NDArray[np.float64],
    *,
    budget_min: float,
    seed: int,
    time_limit: float,
    routes: int = 1,
) -> tuple[list[list[int]], dict[str, Any]]:
    """The rounds as node indices ``[0, ..., end]`` (orienteering in minutes, ``routes`` of them: team
    orienteering, as a campaign's days are), and the solver's figures."""
    nodes = [0, *feasible]
    prize = np.array([0.0, *[todo.prize[k] for k in feasible]])
    visited_local: list[list[int]] = [[] for _ in range(routes)]
    solver: dict[str, Any] = {}
    if feasible:
        end = len(nodes) if problem.end else 0  # issue 13 item 4: the end node, last
        nodes_e = nodes + ([problem.end] if problem.end else [])
        d = problem.paths.distance[np.ix_(nodes_e, nodes_e)] / problem.metres_per_min
        res = orienteering(d, np.append(prize, [0.0] * (len(nodes_e) - len(nodes))), budget_min, start=0, end=end,
                           routes=routes, time_limit=time_limit, seed=seed, service=service[nodes_e])
        visited_local = [r[1:-1] for r in res.routes]
        solver = {"iterations": res.iterations, "runtime_s": round(res.runtime, 4), "stopped_by": res.stopped_by}
    return [[0, *[nodes[i] for i in r], problem.end] for r in visited_local], solver


def _door_leg(problem: PatrolProblem, k: int) -> NDArray[np.float64]:
    """Street point -> door -> street point of stop ``k``, after the street path that reached it.

    The walk to the door and back is counted in ``distance_m`` and the minutes (:meth:`PatrolProblem.service_min`),
    so it is drawn too: the line's length is the distance walked. A door on the street adds nothing.
    """
    if problem.snap_m[k] <= 1e-3:
        return np.zeros((0, 2))
    door = problem.grid.stops[k - 1]
    return np.array([(door.x, door.y), problem.snap_xy[k]], dtype=float)


def _walk(
    problem: PatrolProblem, route: list[int], service: NDArray[np.float64], start: dt.datetime, todo: _Due,
    *, ready: NDArray[np.float64] | None = None,
) -> _Walk:
    """Walk ``route`` leg by leg from ``start``: times at the doors, the geometry (street and door legs), metres.

    ``ready``: minutes after ``start`` before which a stop's visit cannot begin (its window); the worker waits.
    """
    mpm = problem.metres_per_min
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
        if 0 < b <= len(problem.grid.stops):  # issue 13 item 4: the end node is no visit; windows wait
            t = max(t, float(ready[b])) if ready is not None else t
            door_min = float(problem.snap_m[b]) / mpm
            arrival = t + door_min
            t += service[b]
            metres += 2.0 * problem.snap_m[b]
            coords.append(_door_leg(problem, b))
            stop = problem.grid.stops[b - 1]
            visits.append(Visit(stop, pos, _sec(start + dt.timedelta(minutes=arrival)),
                                _sec(start + dt.timedelta(minutes=t - door_min)),
                                (float(problem.snap_xy[b, 0]), float(problem.snap_xy[b, 1])),
                                float(problem.snap_m[b]), problem.rule(b), todo.overdue.get(b, 0)))
    if not coords:
        p = problem.snap_xy[0]
        coords = [np.array([p, p])]
    return _Walk(visits, np.concatenate(coords), metres, t)


# -- issue 13 item 4: time windows (gridgeo.patrol.windows says how)
def _label(stop: Stop) -> str:
    return f"{stop.priority} household {stop.id}" if stop.kind == "household" else f"{stop.kind} {stop.id}"


def window_clock(
    problem: PatrolProblem, todo: _Due, service: NDArray[np.float64], *, start_time: dt.time, budget_min: float
) -> Clock | None:
    """The day's :class:`~gridgeo.patrol.windows.Clock` when a due stop has a visit window (else None); due stops
    whose window cannot hold their visit in the round get their reason in ``todo.reasons``."""
    windows = [None, *[problem.rule(k).window for k in range(1, len(problem.grid.stops) + 1)]]
    if not any(windows[k] is not None for k in todo.nodes):
        return None
    windows += [None] * (problem.paths.distance.shape[0] - len(windows))
    clock = Clock.of(problem.paths.distance / problem.metres_per_min, service, windows=windows, start=start_time,
                     budget=budget_min, end=problem.end)
    for k in todo.nodes:
        w = windows[k]
        why = unreachable(clock, k, w, start_time) if w is not None else None
        if why is not None:
            todo.reasons[k] = f"{_label(problem.grid.stops[k - 1])}: {why}"
    return clock
# -- end issue 13 item 4


def _miss_reason(
    problem: PatrolProblem, k: int, round_trip: NDArray[np.float64], *, budget_min: float, best_visited: float
) -> str:
    """Why due stop ``k`` was not visited, in words."""
    stop = problem.grid.stops[k - 1]
    label = f"{stop.priority} household {stop.id}" if stop.kind == "household" else f"{stop.kind} {stop.id}"
    if problem.snap_m[k] > problem.max_snap:
        return (f"{label}: {problem.snap_m[k]:.0f} m from the nearest street "
                f"(more than {problem.max_snap:g} m)")
    if not np.isfinite(round_trip[k]):
        return f"{label}: not reachable from the station within the budget on the network"
    if round_trip[k] > budget_min:
        return f"{label}: round trip alone is {_fmt_h(round_trip[k])} > {_fmt_h(budget_min)} budget"
    window = problem.rule(k).window
    if window is not None:  # issue 13 item 4
        return f"{label}: no room for it inside its visit window {format_window(window)}"
    if best_visited > problem.rule(k).weight:
        return f"{label}: budget exhausted by higher priorities"
    return f"{label}: budget exhausted by visits of the same priority"


def _missed(
    problem: PatrolProblem, todo: _Due, visits: Sequence[Visit], round_trip: NDArray[np.float64], *,
    budget_min: float, day: dt.date,
) -> list[Missed]:
    """The due stops on no round (``visits``: every round's), each with its reason."""
    visited = {v.stop.id for v in visits}
    index = {s.id: k for k, s in enumerate(problem.grid.stops, start=1)}
    best_visited = max((problem.rule(index[v.stop.id]).weight for v in visits), default=0.0)
    missed: list[Missed] = []
    for k in todo.nodes:
        stop = problem.grid.stops[k - 1]
        if stop.id in visited:
            continue
        reason = todo.reasons.get(k) or _miss_reason(problem, k, round_trip, budget_min=budget_min,
                                                      best_visited=best_visited)
        missed.append(Missed(stop, day, reason, todo.overdue[k]))
    return missed


def plan_day(
    problem: PatrolProblem,
    day: dt.date,
    *,
    budget_min: float = _DEFAULT.budget_min,
    start_time: dt.time = _DEFAULT.start_time,
    tz: dt.tzinfo = CST,
    seed: int = _DEFAULT.seed,
    time_limit: float = _DEFAULT.time_limit,
    strict: bool = False,
) -> DayPlan:
    """Plan one day: the most priority-weighted due visits within the budget.

    Stages: prize the due stops, keep those whose round trip fits, solve the
    orienteering problem, walk the route for times and geometry, give each
    due stop left out its reason.

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
    return plan_rounds(problem, day, 1, budget_min=budget_min, start_time=start_time, tz=tz, seed=seed,
                       time_limit=time_limit, strict=strict)[0]


def plan_rounds(problem: PatrolProblem, day: dt.date, workers: int, *, budget_min: float, start_time: dt.time,
                tz: dt.tzinfo, seed: int, time_limit: float, strict: bool) -> list[DayPlan]:
    """The day's ``workers`` rounds (one: :func:`plan_day`; more: a team, :mod:`gridgeo.patrol.team`).

    Stages: prize the due stops, keep those whose round trip fits, solve (team) orienteering (the cap is
    ``time_limit`` per round), keep time windows by repair, walk each round, give each due stop no round
    takes its reason: the first round's ``missed``, so that each due visit counts once.
    """
    g = problem.grid
    service = problem.service_min()
    round_trip = problem.round_trip_min()
    todo = _due_prizes(problem, day)
    clock = window_clock(problem, todo, service, start_time=start_time, budget_min=budget_min)  # issue 13 item 4
    feasible = _feasible(problem, todo, round_trip, budget_min=budget_min, strict=strict)
    routes, solver = _solve(problem, feasible, todo, service, budget_min=budget_min, seed=seed,
                            time_limit=time_limit * workers, routes=workers)
    if clock is not None:  # issue 13 item 4: windows kept by repair on the solver's routes
        routes = repair(clock, routes, todo.prize, feasible)
    start = dt.datetime.combine(day, start_time, tzinfo=tz)
    ready = None if clock is None else clock.ready()
    walks = [_walk(problem, r, service, start, todo, ready=ready) for r in routes]
    missed = _missed(problem, todo, [v for w in walks for v in w.visits], round_trip, budget_min=budget_min,
                     day=day)
    plans = []
    for i, (route, walk) in enumerate(zip(routes, walks, strict=True)):
        score = float(sum(todo.prize[g.stops.index(v.stop) + 1] for v in walk.visits))
        plans.append(DayPlan(
            grid=g.grid, date=day, start=start, end=_sec(start + dt.timedelta(minutes=walk.minutes)),
            budget_min=budget_min, speed_kmh=problem.speed_kmh, mode=problem.network.mode,
            crs=problem.network.crs, station=(float(problem.snap_xy[0, 0]), float(problem.snap_xy[0, 1])),
            visits=walk.visits, missed=missed if i == 0 else [], coords=walk.coords, distance_m=walk.metres,
            duration_min=walk.minutes, score=score,
            due=len(todo.nodes) if workers == 1 else len(walk.visits) + (len(missed) if i == 0 else 0),
            synthetic_priorities=g.synthetic_priorities, synthetic_last_visits=g.synthetic_last_visits,
            solver=dict(solver), end_point=_end_point(problem), off_network=off_network(problem, route),
            worker=i + 1 if workers > 1 else None))
    return plans


def _end_point(problem: PatrolProblem) -> tuple[float, float] | None:
    """The snapped end point of the rounds, None when they end at the station (issue 13 item 4)."""
    return (float(problem.snap_xy[problem.end, 0]), float(problem.snap_xy[problem.end, 1])) if problem.end else None


def plan_period(
    problem: PatrolProblem,
    first_day: dt.date,
    days: int = 7,
    **kwargs: Any,
) -> list[DayPlan]:
    """Plan ``days`` consecutive days, each from the last visits the previous days left.

    Keyword arguments go to :func:`plan_day`; ``workers`` (> 1) plans each day for a team
    (:func:`gridgeo.patrol.team.plan_team`: one plan per worker and day). The problem's stops are not
    modified (each day works on an updated copy).
    """
    if days < 1:
        raise UsageError(f"days must be >= 1, got {days}")
    workers = int(kwargs.pop("workers", 1))
    plans: list[DayPlan] = []
    stops = list(problem.grid.stops)
    for i in range(days):
        day = first_day + dt.timedelta(days=i)
        current = replace(problem, grid=replace(problem.grid, stops=stops))
        kw = {**kwargs, "strict": kwargs.get("strict", False) and i == 0}
        if workers != 1:  # a team: one round each (gridgeo.patrol.team; it refuses fewer than 1)
            from gridgeo.patrol.team import plan_team

            today = plan_team(current, day, workers, **kw)
        else:
            today = [plan_day(current, day, **kw)]
        plans += today
        seen = {v.stop.id for p in today for v in p.visits}
        stops = [replace(s, last_visit=day) if s.id in seen else s for s in stops]
    return plans


def check_budget(problem: PatrolProblem, budget_min: float) -> None:
    """Raise :class:`InfeasibleError` when the budget is below the round trip to every stop (or, ending
    elsewhere than the start, below the walk from the start to the end alone)."""
    if problem.end:  # issue 13 item 4: a separate end point
        direct = float(problem.paths.distance[0, problem.end]) / problem.metres_per_min
        if not direct <= budget_min + 1e-9:
            raise InfeasibleError(
                f"grid {problem.grid.grid}: the budget {_fmt_h(budget_min)} is below the walk from the start to the "
                f"end alone ({_fmt_h(direct) if np.isfinite(direct) else 'no path on the network'})")
    rt = problem.round_trip_min()[1:len(problem.grid.stops) + 1]
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
        "days": len({p.date for p in plans}),
        **({"workers": max(p.worker or 1 for p in plans)} if any(p.worker for p in plans) else {}),
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
        "off_network": [leg for p in plans for leg in p.summary()["off_network"]],
        "days_detail": [{k: v for k, v in p.summary().items() if k not in ("missed", "off_network")} for p in plans],
        "synthetic_priorities": any(p.synthetic_priorities for p in plans),
        "synthetic_last_visits": any(p.synthetic_last_visits for p in plans),
    }


def plan_grid(
    county: County,
    code: str,
    *,
    day: dt.date,
    days: int = 1,
    options: PatrolOptions | None = None,
    station_lonlat: tuple[float, float] | None = None,
) -> list[DayPlan]:
    """Plan ``days`` days of grid ``code`` from ``day``: the one planning sequence of the CLI and the service.

    Grid stops as of ``day`` (:meth:`County.grid_stops`), snapped and measured once
    (:func:`prepare`), the budget checked against every round trip
    (:func:`check_budget`), then each day in turn (:func:`plan_period`); household visits get their
    register's address where the county has one and was opened with names
    (:func:`gridgeo.patrol.itinerary.with_register`).

    Parameters
    ----------
    county
        The county opened for planning (its network and synthetic-stop seed).
    code
        The grid.
    day, days
        The first day planned and how many.
    options
        Budget, speed, start time, snapping, solver seed and cap (default :class:`PatrolOptions`).
    station_lonlat
        The station as WGS84 lon/lat; by default the street point nearest the grid's inner point.

    Raises
    ------
    NotFoundError
        No grid ``code``.
    InfeasibleError
        The budget is below the round trip to every stop.
    """
    opts = _DEFAULT if options is None else options
    # -- issue 13 item 4: the start and end places, the rules per colour and category, campaigns
    station = _metric(county, station_lonlat) if station_lonlat is not None else None
    start = _place_xy(county, code, opts.start, opts, station)
    end = None if opts.end == opts.start else _place_xy(county, code, opts.end, opts, station, fill=True)
    gs = county.round_stops(code, day, station=start, rules=opts.rules,
                           every_household=opts.campaign_days is not None)
    problem = prepare(county.network, gs, rules=opts.rules, special=opts.special,
                      speed_kmh=opts.speed(county.network.mode), max_snap=opts.max_snap, budget_min=opts.budget_min,
                      end=end)
    check_budget(problem, opts.budget_min)
    kw: dict[str, Any] = {"budget_min": opts.budget_min, "start_time": opts.start_time, "seed": opts.seed,
                          "time_limit": opts.time_limit}
    workers = county.workers_of(code) if opts.workers is None else opts.workers
    if workers != 1 and opts.campaign_days is None:
        kw["workers"] = workers
    if opts.campaign_days is not None:
        from gridgeo.patrol.campaign import plan_campaign

        return with_register(county, plan_campaign(problem, day, opts.campaign_days, **kw))
    # addresses for the list people read (none where names are withheld)
    return with_register(county, plan_period(problem, day, days, **kw))


def _metric(county: County, lonlat: tuple[float, float]) -> tuple[float, float]:
    """WGS84 lon/lat in the network's CRS."""
    tr = pyproj.Transformer.from_crs("EPSG:4326", county.network.crs, always_xy=True)
    x, y = tr.transform(*lonlat)
    return (float(x), float(y))


def _place_xy(county: County, code: str, place: str | tuple[float, float], opts: PatrolOptions,
              station: tuple[float, float] | None, *, fill: bool = False) -> tuple[float, float] | None:
    """A start or end place in the network's CRS: the station (None: the grid's default, unless ``fill``), the
    worker's home, or a point.

    Raises
    ------
    UsageError
        ``home`` without a home given.
    """
    if place == "home":
        if opts.home is None:
            raise UsageError("start or end at home needs the worker's home (--home LON,LAT, or home= in a request)")
        return _metric(county, opts.home)
    if isinstance(place, tuple):
        return _metric(county, place)
    if station is not None or not fill:
        return station
    rp = shapely.point_on_surface(county.grids.geometry.iloc[county.check_grid(code.split(",")[0])])
    return (float(rp.x), float(rp.y))
# -- end issue 13 item 4
