"""Teams: a grid with several workers gets one round each that together cover the day's due visits.

The day's due stops are solved as one **team orienteering** problem
(:func:`gridgeo.routing.orienteering` with ``routes = workers``): ``workers``
rounds from the grid's station, each within the daily budget, no stop on two
of them, prizes as on a one-worker day (overdue red first). Each round is a
:class:`~gridgeo.patrol.plan.DayPlan` with its ``worker`` (1, 2, ...); the
due stops no round takes are the first worker's ``missed``, each with its
reason, so that a team's day counts each due visit once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gridgeo.errors import UsageError
from gridgeo.patrol.options import PatrolOptions
from gridgeo.patrol.plan import (
    DayPlan,
    PatrolProblem,
    Visit,
    _due_prizes,
    _end_point,
    _feasible,
    _missed,
    _sec,
    _solve,
    _walk,
    off_network,
    window_clock,
)
from gridgeo.patrol.stops import CST
from gridgeo.patrol.windows import repair

__all__ = ["MAX_WORKERS", "plan_team"]

_DEFAULT = PatrolOptions()
#: most workers on one grid's day (a grid of several hundred households has two or three)
MAX_WORKERS = 10


@dataclass
class _Visits:
    """What :func:`~gridgeo.patrol.plan._missed` needs of a walk: the visits (of every round here)."""

    visits: list[Visit] = field(default_factory=list)


def plan_team(
    problem: PatrolProblem,
    day: dt.date,
    workers: int,
    *,
    budget_min: float = _DEFAULT.budget_min,
    start_time: dt.time = _DEFAULT.start_time,
    tz: dt.tzinfo = CST,
    seed: int = _DEFAULT.seed,
    time_limit: float = _DEFAULT.time_limit,
    strict: bool = False,
) -> list[DayPlan]:
    """Plan one day of grid ``problem`` for ``workers`` workers: one round each (see the module notes).

    Parameters are those of :func:`~gridgeo.patrol.plan_day`; the solver's cap is ``time_limit`` per worker.

    Raises
    ------
    UsageError
        ``workers`` below 1 or above :data:`MAX_WORKERS`.
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"workers must be 1 to {MAX_WORKERS}, got {workers}")
    service = problem.service_min()
    round_trip = problem.round_trip_min()
    todo = _due_prizes(problem, day)
    clock = window_clock(problem, todo, service, start_time=start_time, budget_min=budget_min)
    feasible = _feasible(problem, todo, round_trip, budget_min=budget_min, strict=strict)
    routes, solver = _solve(problem, feasible, todo, service, budget_min=budget_min, seed=seed,
                            time_limit=time_limit * workers, routes=workers)
    if clock is not None:
        routes = repair(clock, routes, todo.prize, feasible)
    start = dt.datetime.combine(day, start_time, tzinfo=tz)
    ready = None if clock is None else clock.ready()
    walks = [_walk(problem, r, service, start, todo, ready=ready) for r in routes]
    everyone = _Visits([v for w in walks for v in w.visits])
    missed = _missed(problem, todo, everyone, round_trip, budget_min=budget_min, day=day)  # type: ignore[arg-type]
    g = problem.grid
    plans = []
    for i, (route, walk) in enumerate(zip(routes, walks, strict=True), start=1):
        score = float(sum(todo.prize[g.stops.index(v.stop) + 1] for v in walk.visits))
        plans.append(DayPlan(
            grid=g.grid, date=day, start=start, end=_sec(start + dt.timedelta(minutes=walk.minutes)),
            budget_min=budget_min, speed_kmh=problem.speed_kmh, mode=problem.network.mode,
            crs=problem.network.crs, station=(float(problem.snap_xy[0, 0]), float(problem.snap_xy[0, 1])),
            visits=walk.visits, missed=missed if i == 1 else [], coords=walk.coords, distance_m=walk.metres,
            duration_min=walk.minutes, score=score, due=len(walk.visits) + (len(missed) if i == 1 else 0),
            synthetic_priorities=g.synthetic_priorities, synthetic_last_visits=g.synthetic_last_visits,
            solver=dict(solver), end_point=_end_point(problem), off_network=off_network(problem, route), worker=i))
    return plans
