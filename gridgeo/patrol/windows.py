"""Time windows on a day's rounds: waiting at the door, checking, and repair by removal and insertion.

A household may be reachable only at certain hours (a ``visit_window`` such as
"18:00-21:00", or a special-care category's rule). The solver
(:func:`gridgeo.routing.orienteering`) knows route lengths, not clocks, so windows
are kept here, in the planning layer, on the solver's routes:

1. **Before solving**, a due stop whose window cannot hold its visit in the
   round at all (it closes before the stop can be reached from the start, or
   opens too late to make the visit and reach the end within the budget) is
   left out, with its reason (:func:`unreachable`).
2. **Walking** a route, a worker who arrives before a window opens waits at the
   door; a visit that would end after the window closes breaks it
   (:func:`finish`). Waiting counts in the day's minutes.
3. **Repair by removal.** While a route breaks a window, the first stop that
   breaks it is removed; while a route (waits included) is longer than the
   budget, the stop of the smallest prize is removed (ties: the one whose
   removal shortens the route most). Removing a stop never makes a later
   arrival later (shortest-path distances keep the triangle inequality), so
   the repair ends, with every route feasible.
4. **Repair by insertion.** Every candidate stop left out (by the solver or
   by step 3), largest prize first, is tried at every position of every route
   and goes where the route stays feasible and grows least: a stop removed for
   arriving too early or too late comes back where its window fits.

When no due stop has a window nothing here runs and a plan is the solver's.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gridgeo.data.quantities import format_window

__all__ = ["Clock", "finish", "repair", "unreachable"]

_EPS = 1e-9


@dataclass(frozen=True)
class Clock:
    """A day's rounds in minutes after their start: travel, service and each node's window.

    Attributes
    ----------
    travel
        Minutes between nodes (the problem's street distances at the walking speed).
    service
        Minutes at each node (the visit and the walk from the street to the door and back).
    lo, hi
        Earliest start and latest end of each node's visit, minutes after the round's start
        (``-inf`` / ``inf``: no window).
    budget
        Minutes of a round, waits included.
    end
        The node every round ends at.
    """

    travel: NDArray[np.float64]
    service: NDArray[np.float64]
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    budget: float
    end: int

    @classmethod
    def of(cls, travel: NDArray[np.float64], service: NDArray[np.float64], *,
           windows: Sequence[tuple[int, int] | None], start: dt.time, budget: float, end: int) -> Clock:
        """The clock of a round starting at ``start``; ``windows[k]`` is node ``k``'s (clock minutes) or None."""
        t0 = start.hour * 60 + start.minute + start.second / 60.0
        lo = np.array([-np.inf if w is None else w[0] - t0 for w in windows])
        hi = np.array([np.inf if w is None else w[1] - t0 for w in windows])
        return cls(travel, service, lo, hi, float(budget), end)

    def ready(self) -> NDArray[np.float64]:
        """Minutes after the start before which no visit of each node may begin (0 without a window)."""
        return np.maximum(self.lo, 0.0)


def finish(c: Clock, route: Sequence[int]) -> tuple[float, int | None]:
    """Minutes at the end of ``route`` (waits included) and the first node whose window it breaks (None)."""
    t = 0.0
    last = len(route) - 2
    for i, (a, b) in enumerate(itertools.pairwise(route)):
        t += float(c.travel[a, b])
        if i == last:  # arrived at the end
            break
        t = max(t, float(c.lo[b]))
        t += float(c.service[b])
        if t > c.hi[b] + _EPS:
            return t, b
    return t, None


def _feasible(c: Clock, route: Sequence[int]) -> tuple[bool, float]:
    t, bad = finish(c, route)
    return bad is None and t <= c.budget + _EPS, t


def unreachable(c: Clock, k: int, window: tuple[int, int], start: dt.time) -> str | None:
    """Why node ``k``'s window cannot hold its visit in any round from ``start`` (None when it can)."""
    earliest = max(float(c.travel[0, k]), float(c.lo[k]))
    end = dt.datetime.combine(dt.date(2000, 1, 1), start) + dt.timedelta(minutes=c.budget)
    span = f"the round {start.strftime('%H:%M')}-{end.strftime('%H:%M')}"
    if earliest + c.service[k] > c.hi[k] + _EPS:
        return f"visit window {format_window(window)} closes before the visit can be made in {span}"
    if earliest + c.service[k] + c.travel[k, c.end] > c.budget + _EPS:
        return f"visit window {format_window(window)} opens too late for {span}"
    return None


def _drop_one(c: Clock, route: list[int], prize: Mapping[int, float]) -> list[int]:
    """``route`` less one stop: the first that breaks its window, else the least prize (ties: longest saving)."""
    _, bad = finish(c, route)
    if bad is not None:
        i = route.index(bad, 1)
        return route[:i] + route[i + 1:]
    inner = range(1, len(route) - 1)
    pos = min(inner, key=lambda i: (prize[route[i]], finish(c, route[:i] + route[i + 1:])[0], i))
    return route[:pos] + route[pos + 1:]


def _insert(c: Clock, routes: list[list[int]], k: int) -> bool:
    """Put node ``k`` where a route stays feasible and grows least; whether it went in."""
    best: tuple[float, int, int] | None = None
    for r, route in enumerate(routes):
        now = finish(c, route)[0]
        for pos in range(1, len(route)):
            ok, t = _feasible(c, [*route[:pos], k, *route[pos:]])
            if ok and (best is None or t - now < best[0] - _EPS):
                best = (t - now, r, pos)
    if best is None:
        return False
    _, r, pos = best
    routes[r] = [*routes[r][:pos], k, *routes[r][pos:]]
    return True


def repair(c: Clock, routes: Sequence[Sequence[int]], prize: Mapping[int, float],
           candidates: Sequence[int]) -> list[list[int]]:
    """The routes made to keep every window and the budget, then filled with the candidates that fit.

    Parameters
    ----------
    c
        The day's clock.
    routes
        The solver's routes, ``[start, ..., end]`` each.
    prize
        Prize of each candidate node.
    candidates
        Every node that may be visited (the solver's and the ones it left out).
    """
    out = [list(r) for r in routes]
    for i, route in enumerate(out):
        while not _feasible(c, route)[0] and len(route) > 2:
            route = _drop_one(c, route, prize)
        out[i] = route
    on = {n for r in out for n in r[1:-1]}
    for k in sorted((k for k in candidates if k not in on), key=lambda k: (-prize[k], k)):
        _insert(c, out, k)
    return out
