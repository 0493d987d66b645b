"""Orienteering and team orienteering: the most prize within a length budget.

A grid worker's day is an orienteering problem (OP): among many stops, each
with a prize (priority-weighted due visits), choose and order those that fit
into one walk from the station and back within the day's budget. Several
workers (or several days planned at once) make it a team orienteering problem
(TOP): ``routes`` walks, each within the budget, no stop served twice.

:func:`orienteering` takes a (possibly asymmetric) distance matrix, so a
street network with one-way streets is used as is: ``distance[i, j]`` is the
shortest path from ``i`` to ``j``, ``np.inf`` where there is none.

How it searches, and why
------------------------
Adaptive large neighbourhood search (ALNS) with local search, in numpy and
plain Python (no compiled extension: the instances of a grid's day are at
most a few hundred stops, where vectorised insertion costs are fast enough).

1. **Reduction.** Stops with no prize, or which no route could reach and
   leave within the budget (shortest paths ``start -> i -> end`` too long,
   by Dijkstra, so a matrix that breaks the triangle inequality is handled),
   are dropped before the search: they can never be in a solution, and the
   search works on a smaller matrix.
2. **Service times** are folded into the arcs: ``c[i, j] = d[i, j] +
   service[j]``, so a route's length includes the service of every stop it
   visits and every move's cost stays a difference of arc costs.
3. **Repair: greedy insertion by prize / cost ratio.** For every route, the
   cheapest insertion position of every free stop is one vectorised numpy
   expression; the stop with the best ``prize / extra length`` (with a
   little multiplicative noise, so repeated repairs differ) is inserted and
   only that route's row is recomputed. This is the classic construction
   for the OP (Tsiligirides; Vansteenwegen et al.'s ILS for the TOP).
4. **Local search** shortens routes to make room: 2-opt with reversal costs
   from prefix sums (correct for asymmetric matrices) and or-opt moves of
   segments of one to three stops, both fully vectorised per route; then
   more greedy insertion, swaps of a visited stop for a free stop with a
   larger prize where the route still fits, and (several routes) a two-step
   ejection chain: a stop moves to another route to make room for a free one.
5. **Destroy** operators: random stops, a segment of one route, the stops
   with the worst prize / saving ratio, the stops near a random stop
   (related removal), or a whole route (for several routes). Their weights
   adapt to how often they lead to new best or accepted solutions.
6. **Acceptance** by a record-to-record threshold on the prize that shrinks
   to zero, with a restart from the best solution when the current one has
   not improved for a while; ties in prize are broken by total length.

This module does steps 1 and 2 and turns the routes back into the caller's
nodes; steps 3 and 4 are :mod:`gridgeo.routing._moves`, 5 and 6
:mod:`gridgeo.routing._alns`.

Determinism and stopping: every random draw comes from generators seeded by
``seed``. The search stops after ``max_iterations`` iterations or when the
best solution has not improved for ``patience`` iterations (both have
defaults that scale with the number of usable stops) -- counts, not seconds,
so two runs with the same seed give the same routes. ``time_limit`` is a
safety cap: when it is hit the search stops early and logs it, and only then
may two runs differ (:attr:`OrienteeringResult.stopped_by` says which).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridgeo.errors import UsageError
from gridgeo.routing._alns import ALNS, Stopping
from gridgeo.routing._moves import EPS, Instance

log = logging.getLogger(__name__)

__all__ = ["OrienteeringResult", "orienteering"]


@dataclass(frozen=True)
class OrienteeringResult:
    """The routes found by :func:`orienteering`.

    Attributes
    ----------
    routes
        One list of node indices per route, from ``start`` to ``end``
        (``[start, end]`` for a route that visits nothing).
    prize
        Total prize of the visited nodes (each counted once).
    lengths
        Length of each route: travel along ``distance`` plus the service
        time of every node on it (``start`` and ``end`` included, the depot
        counted once when ``start == end``). Each is ``<= budget``.
    unvisited
        Nodes (other than ``start`` and ``end``) on no route, ascending.
    iterations
        Search iterations run.
    runtime
        Wall-clock seconds spent.
    stopped_by
        ``"patience"`` (no improvement for many iterations), ``"iterations"``
        (iteration budget spent), ``"time_limit"`` (the safety cap; the only
        case in which the result may depend on the machine's speed) or
        ``"trivial"`` (nothing could be visited, or everything was).
    visited
        Nodes on some route (other than ``start`` and ``end``), ascending.
    """

    routes: list[list[int]]
    prize: float
    lengths: list[float]
    unvisited: list[int]
    iterations: int = 0
    runtime: float = 0.0
    stopped_by: str = "trivial"
    visited: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- validation


def _as_matrix(distance: object) -> np.ndarray:
    try:
        d = np.asarray(distance, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"distance must be a numeric square matrix: {exc}") from None
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] == 0:
        raise UsageError(f"distance must be a non-empty square matrix, got shape {d.shape}")
    if np.isnan(d).any():
        raise UsageError("distance contains NaN; use np.inf for pairs with no path")
    if (d < 0).any():
        raise UsageError("distance contains negative values")
    return d


def _as_vector(values: object, n: int, name: str) -> np.ndarray:
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name} must be numeric: {exc}") from None
    if v.shape != (n,):
        raise UsageError(f"{name} must have one value per node, shape ({n},), got {v.shape}")
    if not np.isfinite(v).all():
        raise UsageError(f"{name} must be finite")
    if (v < 0).any():
        raise UsageError(f"{name} must be non-negative")
    return v


def _check_int(value: object, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{name} must be an integer, got {value!r}")
    iv = int(value)
    if iv < low or (high is not None and iv > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise UsageError(f"{name} must be in {rng}, got {iv}")
    return iv


def _dijkstra(d: np.ndarray, source: int) -> np.ndarray:
    """Shortest path lengths from ``source`` on a dense matrix (O(n^2), vectorised per step).

    Written out because scipy's csgraph reads zeros of a dense matrix as missing arcs.
    """
    n = d.shape[0]
    dist = np.full(n, np.inf)
    dist[source] = 0.0
    done = np.zeros(n, dtype=bool)
    for _ in range(n):
        masked = np.where(done, np.inf, dist)
        u = int(masked.argmin())
        if not np.isfinite(masked[u]):
            break
        done[u] = True
        np.minimum(dist, dist[u] + d[u], out=dist)
    return dist


# --------------------------------------------------------------------------- public API


def orienteering(
    distance: np.ndarray,
    prize: np.ndarray,
    budget: float,
    *,
    start: int = 0,
    end: int = 0,
    routes: int = 1,
    time_limit: float = 1.0,
    seed: int = 0,
    service: np.ndarray | None = None,
    max_iterations: int | None = None,
    patience: int | None = None,
) -> OrienteeringResult:
    """Choose and order nodes to collect the most prize within a length budget.

    Parameters
    ----------
    distance
        Square ``(n, n)`` matrix of non-negative travel costs (metres,
        minutes...); may be asymmetric (one-way streets) and may hold
        ``np.inf`` for pairs with no path. The diagonal is ignored.
    prize
        Non-negative prize of visiting each node, shape ``(n,)``. The prize
        of ``start`` and ``end`` is not counted: they are on every route.
    budget
        Maximum length of each route, in the unit of ``distance`` (service
        included).
    start, end
        Where every route starts and ends (may be the same node).
    routes
        Number of routes (1: orienteering; more: team orienteering).
    time_limit
        Safety cap in seconds. The search normally stops on iteration
        counts, so that results are reproducible; hitting this cap is
        logged and reported in :attr:`OrienteeringResult.stopped_by`.
    seed
        Seed of every random draw: the same inputs and seed give the same
        routes (unless ``time_limit`` cut the search short).
    service
        Time spent at each node, shape ``(n,)``, in the unit of
        ``distance``; added to the length of every route visiting it.
    max_iterations, patience
        Stop after this many iterations, or after this many iterations
        without a new best solution. Defaults scale with the number of
        usable nodes.

    Returns
    -------
    OrienteeringResult
        The routes from ``start`` to ``end``, total prize, route lengths
        and unvisited nodes.

    Raises
    ------
    UsageError
        For a malformed matrix or vector, an index out of range, a
        negative or non-finite budget, or a budget too small even to go
        from ``start`` to ``end`` directly.
    """
    # Stages: check, the start's service and the direct trip, reduction, search, routes on the caller's nodes.
    t0 = time.perf_counter()
    inp = _checked(distance, prize, budget, start=start, end=end, routes=routes, time_limit=time_limit, seed=seed,
                   service=service, max_iterations=max_iterations, patience=patience)
    base = _start_service(inp)
    inst, keep = _reduce(inp, base)
    found = _search(inst, inp, deadline=t0 + inp.time_limit)
    return _result(inp, keep, found, usable=len(keep) - inst.first, t0=t0)


@dataclass(frozen=True)
class _Inputs:
    """:func:`orienteering`'s arguments, checked: ``d``, ``p``, ``s`` the matrix, prizes and service times."""

    d: np.ndarray
    p: np.ndarray
    s: np.ndarray
    budget: float
    start: int
    end: int
    routes: int
    seed: int
    time_limit: float
    max_iterations: int | None
    patience: int | None


@dataclass(frozen=True)
class _Found:
    """What the search found, on the reduced instance's node indices."""

    routes: list[list[int]]
    iterations: int
    stopped_by: str


def _as_number(value: Any, message: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(message.format(value=value)) from None


def _checked(
    distance: object,
    prize: object,
    budget: object,
    *,
    start: object,
    end: object,
    routes: object,
    time_limit: object,
    seed: object,
    service: object,
    max_iterations: object,
    patience: object,
) -> _Inputs:
    """The arguments as arrays and numbers, or a :class:`UsageError` naming the first one that is wrong."""
    d = _as_matrix(distance)
    n = d.shape[0]
    p = _as_vector(prize, n, "prize")
    s = np.zeros(n) if service is None else _as_vector(service, n, "service")
    budget_f = _as_number(budget, "budget must be a number, got {value!r}")
    if not math.isfinite(budget_f) or budget_f < 0:
        raise UsageError(f"budget must be finite and >= 0, got {budget_f}")
    start_i = _check_int(start, "start", 0, n - 1)
    end_i = _check_int(end, "end", 0, n - 1)
    routes_i = _check_int(routes, "routes", 1)
    seed_i = _check_int(seed, "seed", 0)
    limit = _as_number(time_limit, "time_limit must be a number of seconds, got {value!r}")
    if not limit > 0:
        raise UsageError(f"time_limit must be > 0 seconds, got {limit}")
    max_it = None if max_iterations is None else _check_int(max_iterations, "max_iterations", 0)
    pat = None if patience is None else _check_int(patience, "patience", 1)
    return _Inputs(d, p, s, budget_f, start_i, end_i, routes_i, seed_i, limit, max_it, pat)


def _start_service(inp: _Inputs) -> float:
    """The start's service time, a constant of every route; a :class:`UsageError` if no route fits."""
    d, s, budget, start, end = inp.d, inp.s, inp.budget, inp.start, inp.end
    # Service folded into the arcs: c[i, j] = d[i, j] + s[j]; the start's service is a constant.
    base = float(s[start])
    direct = float(d[start, end]) + (float(s[end]) if end != start else 0.0)
    if start == end:
        direct = 0.0
    tol = EPS * max(1.0, budget)
    if base + direct > budget + tol:
        raise UsageError(
            f"budget {budget:g} is below the direct trip from start {start} to end {end} "
            f"({base + direct:g}, service included): no route is possible"
        )
    return base


def _reduce(inp: _Inputs, base: float) -> tuple[Instance, np.ndarray]:
    """The instance on the usable nodes (start, end, then the rest), and their original indices."""
    d, p, s, budget, start, end = inp.d, inp.p, inp.s, inp.budget, inp.start, inp.end
    n = d.shape[0]
    tol = EPS * max(1.0, budget)
    # Usable nodes: a prize, and start -> i -> end within the budget.
    cand = np.ones(n, dtype=bool)
    cand[[start, end]] = False
    cand &= p > 0
    # Shortest paths, not direct arcs: a matrix that breaks the triangle inequality (a detour through
    # another stop shorter than the direct arc) can still make a node reachable.
    via = _dijkstra(d, start) + s + _dijkstra(d.T, end) + (s[end] if end != start else 0.0)
    cand &= np.isfinite(via) & (base + via <= budget + tol)
    nodes = [start] if start == end else [start, end]
    nodes += np.flatnonzero(cand).tolist()
    keep = np.array(nodes)
    c = d[np.ix_(keep, keep)] + s[keep][None, :]
    if start == end:
        c[:, 0] = d[keep, start]
    np.fill_diagonal(c, 0.0)
    finite = np.isfinite(c)
    big = 2.0 * (budget + (float(c[finite].max()) if finite.any() else 0.0)) + 1.0
    c[~finite] = big  # an arc no feasible route can use; keeps the arithmetic finite
    first = 1 if start == end else 2
    pr = p[keep].copy()
    pr[:first] = 0.0
    e = 0 if start == end else 1
    return Instance(c, pr, budget - base, e, first, inp.routes), keep


def _search(inst: Instance, inp: _Inputs, *, deadline: float) -> _Found:
    """The ALNS on ``inst`` with the iteration defaults that scale with the usable nodes (or nothing to do)."""
    m, first = len(inst.prize), inst.first
    if m == first:
        return _Found([[0, inst.end] for _ in range(inst.routes)], 0, "trivial")
    solver = ALNS(inst, seed=inp.seed)
    max_iterations = 200 + 60 * (m - first) if inp.max_iterations is None else inp.max_iterations
    patience = 60 + 12 * (m - first) if inp.patience is None else inp.patience
    best, iters, stopped = solver.run(Stopping(max_iterations, patience, deadline))
    return _Found(best, iters, stopped)


def _result(inp: _Inputs, keep: np.ndarray, found: _Found, *, usable: int, t0: float) -> OrienteeringResult:
    """The routes on the original nodes, with lengths recomputed on the original matrix and service."""
    d, p, s, start, end = inp.d, inp.p, inp.s, inp.start, inp.end
    n = d.shape[0]
    out_routes = [[int(keep[i]) for i in r] for r in found.routes]
    # Lengths recomputed on the original matrix and service, so they are exact.
    lengths = []
    for r in out_routes:
        length = sum(float(d[a, b]) for a, b in itertools.pairwise(r))
        length += float(sum(s[i] for i in set(r)))
        lengths.append(length)
    visited = sorted({i for r in out_routes for i in r[1:-1]})
    vis = np.zeros(n, dtype=bool)
    vis[visited] = True
    vis[[start, end]] = True
    total = float(p[visited].sum()) if visited else 0.0
    runtime = time.perf_counter() - t0
    iters, stopped = found.iterations, found.stopped_by
    if stopped == "time_limit":
        log.info(
            "orienteering: time limit of %.3g s hit after %d iterations; the result may differ between runs",
            inp.time_limit,
            iters,
        )
    log.debug("orienteering: n=%d usable=%d prize=%g iterations=%d %.3f s (%s)", n, usable, total, iters, runtime,
              stopped)
    return OrienteeringResult(
        routes=out_routes,
        prize=total,
        lengths=lengths,
        unvisited=np.flatnonzero(~vis).tolist(),
        iterations=iters,
        runtime=runtime,
        stopped_by=stopped,
        visited=visited,
    )
