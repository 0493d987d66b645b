"""Campaign mode (扫楼敲门): every household of a grid visited once over N days.

A campaign is not a daily round of due visits: each household, whatever its
colour or last visit, is to be seen once within ``days`` days. The days are
planned together as one **team orienteering** problem on the solver
(:func:`gridgeo.routing.orienteering` with ``routes = days``): ``days`` rounds
from the same start, each within the daily budget, no household on two of them,
every household worth the same prize (1: the campaign counts households, not
colours). When the budget allows, the rounds together cover every household
exactly once; the households that do not fit are the last day's missed
visits, each with its reason. Time windows are kept as on a daily round
(:mod:`gridgeo.patrol.windows`: repair over all the days' rounds).

Why all days at once and not one day after another: a greedy first day takes
the households nearest the start and leaves the far ones scattered over the
later days; solved together, each day takes one part of the grid.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from gridgeo.errors import UsageError
from gridgeo.patrol.options import PatrolOptions
from gridgeo.patrol.plan import (
    DayPlan,
    Missed,
    PatrolProblem,
    _Due,
    _end_point,
    _fmt_h,
    _label,
    _miss_reason,
    _sec,
    _solve,
    _walk,
    window_clock,
)
from gridgeo.patrol.stops import CST
from gridgeo.patrol.windows import repair

__all__ = ["plan_campaign"]

_DEFAULT = PatrolOptions()


def plan_campaign(
    problem: PatrolProblem,
    first_day: dt.date,
    days: int,
    *,
    budget_min: float = _DEFAULT.budget_min,
    start_time: dt.time = _DEFAULT.start_time,
    tz: dt.tzinfo = CST,
    seed: int = _DEFAULT.seed,
    time_limit: float = _DEFAULT.time_limit,
) -> list[DayPlan]:
    """Plan a campaign: ``days`` rounds from ``first_day`` that together visit every household once.

    Parameters
    ----------
    problem
        From :func:`~gridgeo.patrol.prepare` on the grid's every household
        (:meth:`County.grid_stops` with ``every_household=True``); other stops are ignored.
    first_day, days
        The campaign's first day and its length.
    budget_min, start_time, tz
        Each day's budget and start (as :func:`~gridgeo.patrol.plan_day`).
    seed, time_limit
        The solver's seed; its safety cap is ``time_limit`` per day of the campaign.

    Returns
    -------
    list of DayPlan
        One per day (a day may have no visit); each day's ``due`` is its visits, the last day's
        also the households left out, which are its ``missed`` with their reasons.
    """
    if days < 1:
        raise UsageError(f"campaign days must be >= 1, got {days}")
    service = problem.service_min()
    round_trip = problem.round_trip_min()
    homes = [k for k, s in enumerate(problem.grid.stops, start=1) if s.kind == "household"]
    todo = _Due(homes, dict.fromkeys(homes, 0), dict.fromkeys(homes, 1.0))
    clock = window_clock(problem, todo, service, start_time=start_time, budget_min=budget_min)
    feasible = [k for k in homes if round_trip[k] <= budget_min + 1e-9 and k not in todo.reasons]
    routes, solver = _solve(problem, feasible, todo, service, budget_min=budget_min, seed=seed,
                            time_limit=time_limit * days, routes=days)
    if clock is not None:
        routes = repair(clock, routes, todo.prize, feasible)
    ready = None if clock is None else clock.ready()
    plans = [_day(problem, route, service, day=first_day + dt.timedelta(days=i), start_time=start_time, tz=tz,
                  budget_min=budget_min, days=days, ready=ready, solver=solver, todo=todo)
             for i, route in enumerate(routes)]
    on = {k for r in routes for k in r[1:-1]}
    missed = [Missed(problem.grid.stops[k - 1], plans[-1].date,
                     todo.reasons.get(k) or _why(problem, k, round_trip, budget_min, days))
              for k in homes if k not in on]
    plans[-1].missed = missed
    plans[-1].due += len(missed)
    return plans


def _day(problem: PatrolProblem, route: list[int], service: np.ndarray, *, day: dt.date, start_time: dt.time,
         tz: dt.tzinfo, budget_min: float, days: int, ready: np.ndarray | None, solver: dict[str, object],
         todo: _Due) -> DayPlan:
    """One campaign day walked: its visits, times and geometry."""
    g = problem.grid
    start = dt.datetime.combine(day, start_time, tzinfo=tz)
    walk = _walk(problem, route, service, start, todo, ready=ready)
    return DayPlan(
        grid=g.grid, date=day, start=start, end=_sec(start + dt.timedelta(minutes=walk.minutes)),
        budget_min=budget_min, speed_kmh=problem.speed_kmh, mode=problem.network.mode, crs=problem.network.crs,
        station=(float(problem.snap_xy[0, 0]), float(problem.snap_xy[0, 1])), visits=walk.visits, missed=[],
        coords=walk.coords, distance_m=walk.metres, duration_min=walk.minutes, score=float(len(walk.visits)),
        due=len(walk.visits), synthetic_priorities=g.synthetic_priorities, synthetic_last_visits=False,
        solver=dict(solver), end_point=_end_point(problem), campaign_days=days,
    )


def _why(problem: PatrolProblem, k: int, round_trip: np.ndarray, budget_min: float, days: int) -> str:
    """Why household ``k`` is on none of the campaign's days."""
    alone = (problem.snap_m[k] > problem.max_snap or not np.isfinite(round_trip[k]) or round_trip[k] > budget_min
             or problem.rule(k).window is not None)
    if alone:
        return _miss_reason(problem, k, round_trip, budget_min=budget_min, best_visited=0.0)
    return (f"{_label(problem.grid.stops[k - 1])}: the campaign's {days} day{'s' if days != 1 else ''} of "
            f"{_fmt_h(budget_min)} are full")
