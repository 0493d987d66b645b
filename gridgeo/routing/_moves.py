"""Moves on routes of the reduced instance: insertion tables, greedy insertion, 2-opt, or-opt, swaps, ejection.

:class:`Moves` holds the reduced instance (:class:`Instance`, node 0 the
start, ``end`` the end, usable nodes from ``first`` on) and the caches the
moves share: per-route insertion tables (recomputed only for the route that
changed) and the index arrays of 2-opt and or-opt per route length. The
search (:mod:`gridgeo.routing._alns`) destroys and repairs with them. Routes
are Python lists (cheap to splice); ``lens`` their lengths, ``free`` the mask
of usable nodes on no route, ``changed`` collects the routes a move touched.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

EPS = 1e-9


@dataclass(frozen=True)
class Instance:
    """The reduced problem the search works on.

    Attributes
    ----------
    cost
        Arc costs with the service of the arc's head folded in, finite
        (an unusable arc costs more than any feasible route).
    prize
        Prize per node (0 for the start and the end).
    budget
        Length budget of each route (the start's service taken off).
    end
        Index of the end node (0 when start and end are the same).
    first
        First usable node (1 or 2).
    routes
        Number of routes.
    """

    cost: np.ndarray
    prize: np.ndarray
    budget: float
    end: int
    first: int
    routes: int


class Moves:
    """The moves of the search on an :class:`Instance`; ``nrng`` is the noise of greedy insertion."""

    def __init__(self, inst: Instance, nrng: np.random.Generator) -> None:
        c = inst.cost
        m = inst.routes
        self.c = c
        self.cl: list[list[float]] = c.tolist()
        self.prize = inst.prize
        self.pl: list[float] = inst.prize.tolist()
        self.budget = inst.budget
        self.tol = EPS * max(1.0, inst.budget)
        self.e = inst.end
        self.first = inst.first
        self.m = m
        self.n = c.shape[0]
        self.nrng = nrng
        self.ins_delta = np.full((m, self.n), np.inf)
        self.ins_pos = np.zeros((m, self.n), dtype=np.int64)
        self._cache2: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._cache_or: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._tabled: list[list[int]] = [[] for _ in range(m)]
        self.alpha = 1.0  # prize exponent of the insertion score, varied per iteration

    def length(self, r: list[int]) -> float:
        """Length of route ``r`` (service included, folded into the arcs)."""
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
        """2-opt and or-opt on route ``r`` until neither shortens it; returns the length saved."""
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
        # Where could each node go (other than its own route), and at what cost.
        fits = self.ins_delta <= slack[:, None]
        pick = self._ejection_target(routes, fidx, slack, fits)
        if pick is None:
            return False
        return self._eject(routes, lens, free, changed, target=pick, fits=fits)

    def _ejection_target(self, routes: list[list[int]], fidx: np.ndarray, slack: np.ndarray,
                         fits: np.ndarray) -> tuple[int, int] | None:
        """The route ``b`` and free node ``u`` of the screened ejection chain with the largest prize."""
        c = self.c
        prize = self.prize
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
        return None if best is None else (best[1], best[2])

    def _eject(self, routes: list[list[int]], lens: list[float], free: np.ndarray, changed: set[int], *,
               target: tuple[int, int], fits: np.ndarray) -> bool:
        """Move a node of route ``b`` elsewhere and insert ``u`` into ``b``, if that exactly fits."""
        b, u = target
        c = self.c
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

    def free_of(self, routes: list[list[int]]) -> np.ndarray:
        """The mask of usable nodes on none of ``routes``."""
        free = np.zeros(self.n, dtype=bool)
        free[self.first:] = True
        for r in routes:
            for u in r[1:-1]:
                free[u] = False
        return free

    def value(self, routes: list[list[int]], lens: list[float]) -> tuple[float, float]:
        """Prize first, then shorter total length: what the search maximises (rounded, so ties are ties)."""
        pl = self.pl
        return (round(sum(pl[u] for r in routes for u in r[1:-1]), 9), -round(sum(lens), 9))
