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
import random
import time
from dataclasses import dataclass, field

import numpy as np

from gridgeo.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["OrienteeringResult", "orienteering"]

_EPS = 1e-9


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
    t0 = time.perf_counter()
    d = _as_matrix(distance)
    n = d.shape[0]
    p = _as_vector(prize, n, "prize")
    s = np.zeros(n) if service is None else _as_vector(service, n, "service")
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        raise UsageError(f"budget must be a number, got {budget!r}") from None
    if not math.isfinite(budget) or budget < 0:
        raise UsageError(f"budget must be finite and >= 0, got {budget}")
    start = _check_int(start, "start", 0, n - 1)
    end = _check_int(end, "end", 0, n - 1)
    routes = _check_int(routes, "routes", 1)
    seed = _check_int(seed, "seed", 0)
    try:
        time_limit = float(time_limit)
    except (TypeError, ValueError):
        raise UsageError(f"time_limit must be a number of seconds, got {time_limit!r}") from None
    if not time_limit > 0:
        raise UsageError(f"time_limit must be > 0 seconds, got {time_limit}")
    if max_iterations is not None:
        max_iterations = _check_int(max_iterations, "max_iterations", 0)
    if patience is not None:
        patience = _check_int(patience, "patience", 1)

    # Service folded into the arcs: c[i, j] = d[i, j] + s[j]; the start's service is a constant.
    base = float(s[start])
    direct = float(d[start, end]) + (float(s[end]) if end != start else 0.0)
    if start == end:
        direct = 0.0
    tol = _EPS * max(1.0, budget)
    if base + direct > budget + tol:
        raise UsageError(
            f"budget {budget:g} is below the direct trip from start {start} to end {end} "
            f"({base + direct:g}, service included): no route is possible"
        )

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
    pr = p[keep].copy()
    pr[: 1 if start == end else 2] = 0.0

    m = len(keep)
    e = 0 if start == end else 1
    first = 1 if start == end else 2
    if m == first:
        best_routes: list[list[int]] = [[0, e] for _ in range(routes)]
        iters, stopped = 0, "trivial"
    else:
        solver = _ALNS(c, pr, budget - base, e, first, routes, seed)
        if max_iterations is None:
            max_iterations = 200 + 60 * (m - first)
        if patience is None:
            patience = 60 + 12 * (m - first)
        best_routes, iters, stopped = solver.run(max_iterations, patience, t0 + time_limit)
    out_routes = [[int(keep[i]) for i in r] for r in best_routes]
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
    if stopped == "time_limit":
        log.info(
            "orienteering: time limit of %.3g s hit after %d iterations; the result may differ between runs",
            time_limit,
            iters,
        )
    log.debug("orienteering: n=%d usable=%d prize=%g iterations=%d %.3f s (%s)", n, m - first, total, iters, runtime,
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


# --------------------------------------------------------------------------- the search


class _ALNS:
    """The search state on the reduced matrix: node 0 is the start, ``e`` the end.

    Routes are Python lists (cheap to splice); per-route insertion tables are
    numpy arrays recomputed only for the route that changed.
    """

    def __init__(self, c: np.ndarray, prize: np.ndarray, budget: float, e: int, first: int, m: int,
                 seed: int) -> None:
        self.c = c
        self.cl: list[list[float]] = c.tolist()
        self.prize = prize
        self.pl: list[float] = prize.tolist()
        self.budget = budget
        self.tol = _EPS * max(1.0, budget)
        self.e = e
        self.first = first
        self.m = m
        self.n = c.shape[0]
        self.rng = random.Random(seed)
        self.nrng = np.random.default_rng(seed)
        # Nearest usable nodes of each node (symmetrised), for related removal.
        sym = c + c.T
        np.fill_diagonal(sym, np.inf)
        sym[:, :first] = np.inf
        self.near = np.argsort(sym, axis=1, kind="stable")
        self.ins_delta = np.full((m, self.n), np.inf)
        self.ins_pos = np.zeros((m, self.n), dtype=np.int64)
        self._cache2: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cache_or: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._tabled: list[list[int]] = [[] for _ in range(m)]
        self.alpha = 1.0  # prize exponent of the insertion score, varied per iteration

    # -- helpers -------------------------------------------------------------------------

    def length(self, r: list[int]) -> float:
        cl = self.cl
        return sum(cl[a][b] for a, b in itertools.pairwise(r))

    def table(self, routes: list[list[int]], k: int) -> None:
        """Cheapest insertion position and extra length of every node into route ``k``.

        Cached: recomputed only when the route differs from the one last tabled.
        """
        if self._tabled[k] == routes[k]:
            return
        self._tabled[k] = routes[k][:]
        r = np.asarray(routes[k])
        a, b = r[:-1], r[1:]
        c = self.c
        dm = c[a, :] + c[:, b].T - c[a, b][:, None]
        pos = dm.argmin(axis=0)
        self.ins_pos[k] = pos
        self.ins_delta[k] = dm[pos, np.arange(self.n)]

    def insert_greedy(self, routes: list[list[int]], lens: list[float], free: np.ndarray, noise: float,
                      changed: set[int]) -> None:
        """Insert free nodes by best prize / extra length ratio while any fits."""
        for k in range(self.m):
            self.table(routes, k)
        prize = self.prize
        while True:
            slack = self.budget + self.tol - np.asarray(lens)
            feas = (self.ins_delta <= slack[:, None]) & free[None, :]
            if not feas.any():
                return
            score = prize[None, :] ** self.alpha / (np.maximum(self.ins_delta, 0.0) + 1e-6 * (self.budget + 1.0))
            if noise > 0:
                score = score * (1.0 + noise * self.nrng.random(score.shape))
            score[~feas] = -1.0
            flat = int(score.argmax())
            k, u = divmod(flat, self.n)
            pos = int(self.ins_pos[k, u]) + 1
            routes[k].insert(pos, u)
            lens[k] += float(self.ins_delta[k, u])
            free[u] = False
            changed.add(k)
            self.table(routes, k)

    def _idx2(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Index arrays of the 2-opt moves on a route with ``k`` arcs (cached by ``k``)."""
        got = self._cache2.get(k)
        if got is None:
            i = np.arange(0, k - 1)[:, None]
            j = np.arange(1, k)[None, :]
            invalid = ~(j > i + 1)
            ii = np.broadcast_to(i, invalid.shape).copy()
            jj = np.broadcast_to(j, invalid.shape).copy()
            got = (ii, jj, jj + 1, invalid)
            self._cache2[k] = got
        return got

    def two_opt(self, r: list[int]) -> float:
        """Best-improvement 2-opt on one route, in place; returns the length saved.

        Reversing ``r[i+1..j]`` changes the cost of the arcs inside the segment
        when the matrix is asymmetric; prefix sums of the forward and backward
        arc costs give every move's exact delta in one vectorised expression.
        """
        saved = 0.0
        c = self.c
        while len(r) >= 4:
            p = np.asarray(r)
            A = c[p[:, None], p[None, :]]
            k = len(r) - 1
            ii, jj, jj1, invalid = self._idx2(k)
            fwd = np.zeros(k + 1)
            np.cumsum(A[p_arc := np.arange(k), p_arc + 1], out=fwd[1:])
            rev = np.zeros(k + 1)
            np.cumsum(A[p_arc + 1, p_arc], out=rev[1:])
            delta = (A[ii, jj] + A[ii + 1, jj1] + (rev[jj] - rev[ii + 1])
                     - A[ii, ii + 1] - A[jj, jj1] - (fwd[jj] - fwd[ii + 1]))
            delta[invalid] = np.inf
            flat = int(delta.argmin())
            best = float(delta.flat[flat])
            if best >= -self.tol:
                break
            bi, bj = divmod(flat, delta.shape[1])
            bj += 1
            r[bi + 1: bj + 1] = r[bi + 1: bj + 1][::-1]
            saved -= best
        return saved

    def _idx_or(self, k: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Index arrays of the or-opt moves on a route with ``k`` arcs (cached by ``k``)."""
        got = self._cache_or.get(k)
        if got is None:
            got = []
            S = np.arange(0, k)
            for L in (1, 2, 3):
                if k - L < 1:
                    break
                T = np.arange(1, k - L + 1)
                bad = (S[None, :] >= T[:, None] - 1) & (S[None, :] <= T[:, None] + L - 1)
                got.append((L, T, np.broadcast_to(T[:, None], bad.shape).copy(),
                            np.broadcast_to(S[None, :], bad.shape).copy(), bad))
            self._cache_or[k] = got
        return got

    def or_opt(self, r: list[int]) -> float:
        """Best-improvement relocation of a segment of 1-3 nodes within a route."""
        saved = 0.0
        c = self.c
        while len(r) >= 4:
            p = np.asarray(r)
            A = c[p[:, None], p[None, :]]
            k = len(r) - 1
            best, move = -self.tol, None
            S = np.arange(0, k)
            edge = A[S, S + 1]
            for L, T, TT, SS, bad in self._idx_or(k):
                gain = A[T - 1, T] + A[T + L - 1, T + L] - A[T - 1, T + L]
                delta = A[SS, TT] + A[TT + (L - 1), SS + 1] - edge[None, :] - gain[:, None]
                delta[bad] = np.inf
                flat = int(delta.argmin())
                val = float(delta.flat[flat])
                if val < best:
                    ti, si = divmod(flat, k)
                    best, move = val, (int(T[ti]), L, int(si))
            if move is None:
                break
            t, L, si = move
            seg = r[t: t + L]
            if si < t:
                r[si + 1: t + L] = seg + r[si + 1: t]
            else:
                r[t: si + 1] = r[t + L: si + 1] + seg
            saved -= best
        return saved

    def improve_route(self, r: list[int]) -> float:
        saved = 0.0
        while True:
            g = self.two_opt(r) + self.or_opt(r)
            if g <= self.tol:
                return saved
            saved += g

    def swap(self, routes: list[list[int]], lens: list[float], free: np.ndarray, changed: set[int]) -> bool:
        """Replace a visited node by a free one with a larger prize, where it fits."""
        c = self.c
        prize = self.prize
        fidx = np.flatnonzero(free)
        if fidx.size == 0:
            return False
        best_gain, move = 1e-12, None
        for k, r in enumerate(routes):
            if len(r) < 3:
                continue
            p = np.asarray(r)
            prev, mid, nxt = p[:-2], p[1:-1], p[2:]
            old = c[prev, mid] + c[mid, nxt]
            new = c[prev[:, None], fidx[None, :]] + c[fidx[None, :], nxt[:, None]]
            newlen = lens[k] + new - old[:, None]
            gain = prize[fidx][None, :] - prize[mid][:, None]
            gain = np.where(newlen <= self.budget + self.tol, gain, -np.inf)
            flat = int(gain.argmax())
            g = float(gain.flat[flat])
            if g > best_gain:
                t, ui = divmod(flat, fidx.size)
                best_gain = g
                move = (k, t + 1, int(fidx[ui]), float(newlen.flat[flat]))
        if move is None:
            return False
        k, t, u, nl = move
        free[routes[k][t]] = True
        routes[k][t] = u
        free[u] = False
        lens[k] = nl
        changed.add(k)
        return True

    def relocate_insert(self, routes: list[list[int]], lens: list[float], free: np.ndarray,
                        changed: set[int]) -> bool:
        """Move a visited node to another route to make room for a free node.

        A two-step ejection chain: ``v`` leaves route ``b`` for the route where
        it fits most cheaply, and the freed length lets the free node with the
        largest prize into ``b``. Candidate pairs are screened with the cached
        insertion tables (vectorised) and the chosen move is checked exactly.
        """
        if self.m < 2:
            return False
        fidx = np.flatnonzero(free)
        if fidx.size == 0:
            return False
        for k in range(self.m):
            self.table(routes, k)
        slack = self.budget + self.tol - np.asarray(lens)
        c = self.c
        prize = self.prize
        # Where could each node go (other than its own route), and at what cost.
        fits = self.ins_delta <= slack[:, None]
        best = None
        for b, r in enumerate(routes):
            if len(r) < 3:
                continue
            p = np.asarray(r)
            prev, mid, nxt = p[:-2], p[1:-1], p[2:]
            gain = c[prev, mid] + c[mid, nxt] - c[prev, nxt]
            other = fits[:, mid].copy()
            other[b] = False
            movable = other.any(axis=0)
            if not movable.any():
                continue
            room = slack[b] + gain[movable].max()
            cand = fidx[self.ins_delta[b, fidx] <= room]
            if cand.size == 0:
                continue
            u = int(cand[prize[cand].argmax()])
            if best is None or prize[u] > best[0]:
                best = (float(prize[u]), b, u)
        if best is None:
            return False
        _, b, u = best
        r = routes[b]
        # Try the nodes of b in order of saving: move v out, then insert u exactly.
        p = np.asarray(r)
        gain = c[p[:-2], p[1:-1]] + c[p[1:-1], p[2:]] - c[p[:-2], p[2:]]
        for t in np.argsort(-gain, kind="stable").tolist():
            v = r[t + 1]
            dest = [a for a in range(self.m) if a != b and fits[a, v]]
            if not dest:
                continue
            a = min(dest, key=lambda x: float(self.ins_delta[x, v]))
            trial = r[: t + 1] + r[t + 2:]
            q = np.asarray(trial)
            ins = c[q[:-1], u] + c[u, q[1:]] - c[q[:-1], q[1:]]
            pos = int(ins.argmin())
            newlen = self.length(trial) + float(ins[pos])
            if newlen > self.budget + self.tol:
                continue
            trial.insert(pos + 1, u)
            routes[b] = trial
            lens[b] = newlen
            ra = routes[a]
            ra.insert(int(self.ins_pos[a, v]) + 1, v)
            lens[a] += float(self.ins_delta[a, v])
            free[u] = False
            changed.update((a, b))
            return True
        return False

    def local_search(self, routes: list[list[int]], lens: list[float], free: np.ndarray, noise: float,
                     changed: set[int]) -> None:
        """Shorten, fill, swap until nothing changes."""
        todo = set(range(self.m)) if not changed else set(changed)
        for _ in range(50):
            for k in sorted(todo):
                if self.improve_route(routes[k]) > 0:
                    lens[k] = self.length(routes[k])
            changed_now: set[int] = set()
            self.insert_greedy(routes, lens, free, noise, changed_now)
            if not changed_now and not self.swap(routes, lens, free, changed_now) \
                    and not self.relocate_insert(routes, lens, free, changed_now):
                return
            todo = changed_now

    # -- destroy operators ----------------------------------------------------------------

    def _visited(self, routes: list[list[int]]) -> list[tuple[int, int]]:
        return [(k, u) for k, r in enumerate(routes) for u in r[1:-1]]

    def destroy(self, op: int, routes: list[list[int]], q: int) -> set[int]:
        """Remove about ``q`` nodes; returns the set of removed nodes."""
        rng = self.rng
        vis = self._visited(routes)
        if not vis:
            return set()
        q = max(1, min(q, len(vis)))
        removed: set[int] = set()
        if op == 0:  # random
            removed = {u for _, u in rng.sample(vis, q)}
        elif op == 1:  # a segment of one route
            k = rng.choice([k for k, r in enumerate(routes) if len(r) > 2])
            r = routes[k]
            inner = len(r) - 2
            L = min(q, inner)
            t = rng.randint(1, inner - L + 1)
            removed = set(r[t: t + L])
        elif op == 2:  # worst prize / saving ratio, randomised
            cl = self.cl
            pl = self.pl
            scored = []
            for r in routes:
                for t in range(1, len(r) - 1):
                    a, u, b = r[t - 1], r[t], r[t + 1]
                    sav = cl[a][u] + cl[u][b] - cl[a][b]
                    scored.append((pl[u] / (max(sav, 0.0) + 1e-9) * (1.0 + 0.5 * rng.random()), u))
            scored.sort()
            removed = {u for _, u in scored[:q]}
        elif op == 3:  # related: nodes near a random visited node
            _, u0 = rng.choice(vis)
            onroute = {u for _, u in vis}
            removed = {u0}
            for v in self.near[u0].tolist():
                if len(removed) >= q:
                    break
                if v in onroute:
                    removed.add(v)
        else:  # a whole route
            ks = [k for k, r in enumerate(routes) if len(r) > 2]
            k = rng.choice(ks)
            removed = set(routes[k][1:-1])
        for r in routes:
            r[1:-1] = [u for u in r[1:-1] if u not in removed]
        return removed

    # -- main loop -------------------------------------------------------------------------

    def run(self, max_iter: int, patience: int, deadline: float) -> tuple[list[list[int]], int, str]:
        m, e = self.m, self.e
        routes: list[list[int]] = [[0, e] for _ in range(m)]
        lens = [self.length(r) for r in routes]
        free = np.zeros(self.n, dtype=bool)
        free[self.first:] = True
        self.local_search(routes, lens, free, 0.0, set())
        cur = ([r[:] for r in routes], lens[:], free.copy())
        cur_val = self.value(routes, lens)
        best = ([r[:] for r in routes], lens[:])
        best_val = cur_val
        total_prize = float(self.prize.sum())
        nops = 5
        weights = [1.0] * nops
        rng = self.rng
        since = 0
        it = 0
        stopped = "iterations"
        if best_val[0] >= total_prize - self.tol:
            return best[0], 0, "trivial"
        while it < max_iter:
            if time.perf_counter() > deadline:
                stopped = "time_limit"
                break
            if since >= patience:
                stopped = "patience"
                break
            it += 1
            since += 1
            routes = [r[:] for r in cur[0]]
            lens = cur[1][:]
            free = cur[2].copy()
            nvis = sum(len(r) - 2 for r in routes)
            op = rng.choices(range(nops), weights=weights)[0]
            q = rng.randint(1, max(1, min(int(0.4 * nvis) + 1, 30)))
            before = [len(r) for r in routes]
            removed = self.destroy(op, routes, q)
            for u in removed:
                free[u] = True
            touched = {k for k in range(m) if len(routes[k]) != before[k]}
            lens = [self.length(r) for r in routes]
            changed = set(touched)
            noise = 0.3 * rng.random() if rng.random() < 0.8 else 1.0
            self.alpha = rng.choice((1.0, 1.0, 0.5, 2.0))
            # Removed nodes wait one round so that the repair explores other nodes first.
            blocked = np.zeros(self.n, dtype=bool)
            if removed and rng.random() < 0.5:
                blocked[list(removed)] = True
            for k in sorted(touched):
                self.improve_route(routes[k])
                lens[k] = self.length(routes[k])
            self.insert_greedy(routes, lens, free & ~blocked, noise, changed)
            for k in range(m):  # insert_greedy works on a copy when blocked; sync the free mask
                for u in routes[k][1:-1]:
                    free[u] = False
            self.local_search(routes, lens, free, noise, changed)
            val = self.value(routes, lens)
            reward = 0.0
            if val > best_val:
                best_val = val
                best = ([r[:] for r in routes], lens[:])
                since = 0
                reward = 3.0
            if val >= cur_val:
                reward = max(reward, 1.0 if val > cur_val else 0.3)
                cur = (routes, lens, free)
                cur_val = val
            else:
                progress = it / max(1, max_iter)
                thr = 0.04 * (1.0 - progress) * max(best_val[0], 1.0)
                if val[0] >= best_val[0] - thr:
                    cur = (routes, lens, free)
                    cur_val = val
                    reward = 0.1
            weights[op] = 0.9 * weights[op] + 0.1 * (0.2 + reward)
            if since and since % max(20, patience // 2) == 0:
                cur = ([r[:] for r in best[0]], best[1][:], self._free_of(best[0]))
                cur_val = best_val
            if best_val[0] >= total_prize - self.tol:
                stopped = "patience"
                break
        return best[0], it, stopped

    def _free_of(self, routes: list[list[int]]) -> np.ndarray:
        free = np.zeros(self.n, dtype=bool)
        free[self.first:] = True
        for r in routes:
            for u in r[1:-1]:
                free[u] = False
        return free

    def value(self, routes: list[list[int]], lens: list[float]) -> tuple[float, float]:
        pl = self.pl
        return (round(sum(pl[u] for r in routes for u in r[1:-1]), 9), -round(sum(lens), 9))
