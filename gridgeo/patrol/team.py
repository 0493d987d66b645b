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

from gridgeo.errors import UsageError
from gridgeo.patrol.options import PatrolOptions
from gridgeo.patrol.plan import DayPlan, PatrolProblem, plan_rounds
from gridgeo.patrol.stops import CST

__all__ = ["MAX_WORKERS", "plan_team"]

_DEFAULT = PatrolOptions()
#: most workers on one grid's day (a grid of several hundred households has two or three)
MAX_WORKERS = 10


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
    return plan_rounds(problem, day, workers, budget_min=budget_min, start_time=start_time, tz=tz, seed=seed,
                       time_limit=time_limit, strict=strict)
