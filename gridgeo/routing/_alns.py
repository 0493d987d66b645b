"""The search: adaptive large neighbourhood search over the moves of :mod:`gridgeo.routing._moves`.

Each iteration copies the current solution, removes nodes with one of five
destroy operators (drawn by adaptive weights), repairs by greedy insertion
and local search, and accepts the result by a record-to-record threshold
that shrinks to zero; a stall restarts from the best solution. Every random
draw comes from ``random.Random(seed)`` (operators, sizes, noise levels) and
``numpy.random.default_rng(seed)`` (insertion noise), always in the same
order, so a seed gives the same routes (see :mod:`gridgeo.routing.solver`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np

from gridgeo.routing._moves import Instance, Moves

_OPERATORS = 5

_Routes = list[list[int]]


@dataclass(frozen=True)
class Stopping:
    """When the search stops: iterations, iterations without a new best, a wall-clock deadline.

    Attributes
    ----------
    max_iterations
        Iterations at most.
    patience
        Iterations without a new best solution (also sets the restart period).
    deadline
        ``time.perf_counter()`` value of the safety cap.
    """

    max_iterations: int
    patience: int
    deadline: float


@dataclass
class _State:
    """The search's memory between iterations: current and best solutions, operator weights, counters."""

    cur: tuple[_Routes, list[float], np.ndarray]
    cur_val: tuple[float, float]
    best: tuple[_Routes, list[float]]
    best_val: tuple[float, float]
    weights: list[float]
    since: int = 0
    it: int = 0


@dataclass
class _Trial:
    """One iteration's candidate: the operator used, its routes, lengths, free mask, what was removed."""

    op: int
    routes: _Routes
    lens: list[float]
    free: np.ndarray
    removed: set[int]
    touched: set[int]


class ALNS(Moves):
    """The search on the reduced instance: node 0 is the start, ``e`` the end."""

    def __init__(self, inst: Instance, *, seed: int) -> None:
        self.rng = random.Random(seed)
        super().__init__(inst, np.random.default_rng(seed))
        # Nearest usable nodes of each node (symmetrised), for related removal.
        sym = self.c + self.c.T
        np.fill_diagonal(sym, np.inf)
        sym[:, : self.first] = np.inf
        self.near = np.argsort(sym, axis=1, kind="stable")

    # -- destroy operators ----------------------------------------------------------------

    def _visited(self, routes: list[list[int]]) -> list[tuple[int, int]]:
        """``(route, node)`` of every visited node."""
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

    def run(self, stop: Stopping) -> tuple[list[list[int]], int, str]:
        """The best routes found, the iterations run and what stopped the search."""
        state = self._initial()
        total_prize = float(self.prize.sum())
        if state.best_val[0] >= total_prize - self.tol:
            return state.best[0], 0, "trivial"
        stopped = "iterations"
        while state.it < stop.max_iterations:
            if time.perf_counter() > stop.deadline:
                stopped = "time_limit"
                break
            if state.since >= stop.patience:
                stopped = "patience"
                break
            state.it += 1
            state.since += 1
            trial = self._ruin(state)
            self._recreate(trial)
            reward = self._accept(state, trial, stop.max_iterations)
            state.weights[trial.op] = 0.9 * state.weights[trial.op] + 0.1 * (0.2 + reward)
            if state.since and state.since % max(20, stop.patience // 2) == 0:
                state.cur = ([r[:] for r in state.best[0]], state.best[1][:], self.free_of(state.best[0]))
                state.cur_val = state.best_val
            if state.best_val[0] >= total_prize - self.tol:
                stopped = "patience"
                break
        return state.best[0], state.it, stopped

    def _initial(self) -> _State:
        """Empty routes filled by greedy insertion and local search (no noise)."""
        routes: list[list[int]] = [[0, self.e] for _ in range(self.m)]
        lens = [self.length(r) for r in routes]
        free = np.zeros(self.n, dtype=bool)
        free[self.first:] = True
        self.local_search(routes, lens, free, 0.0, set())
        val = self.value(routes, lens)
        return _State(cur=([r[:] for r in routes], lens[:], free.copy()), cur_val=val,
                      best=([r[:] for r in routes], lens[:]), best_val=val, weights=[1.0] * _OPERATORS)

    def _ruin(self, state: _State) -> _Trial:
        """A copy of the current solution with about ``q`` nodes removed by a drawn operator."""
        rng = self.rng
        routes = [r[:] for r in state.cur[0]]
        free = state.cur[2].copy()
        nvis = sum(len(r) - 2 for r in routes)
        op = rng.choices(range(_OPERATORS), weights=state.weights)[0]
        q = rng.randint(1, max(1, min(int(0.4 * nvis) + 1, 30)))
        before = [len(r) for r in routes]
        removed = self.destroy(op, routes, q)
        for u in removed:
            free[u] = True
        touched = {k for k in range(self.m) if len(routes[k]) != before[k]}
        lens = [self.length(r) for r in routes]
        return _Trial(op, routes, lens, free, removed, touched)

    def _recreate(self, trial: _Trial) -> None:
        """Repair ``trial`` in place: shorten the touched routes, insert greedily with noise, local search."""
        rng = self.rng
        routes, lens, free = trial.routes, trial.lens, trial.free
        changed = set(trial.touched)
        noise = 0.3 * rng.random() if rng.random() < 0.8 else 1.0
        self.alpha = rng.choice((1.0, 1.0, 0.5, 2.0))
        # Removed nodes wait one round so that the repair explores other nodes first.
        blocked = np.zeros(self.n, dtype=bool)
        if trial.removed and rng.random() < 0.5:
            blocked[list(trial.removed)] = True
        for k in sorted(trial.touched):
            self.improve_route(routes[k])
            lens[k] = self.length(routes[k])
        self.insert_greedy(routes, lens, free & ~blocked, noise, changed)
        for k in range(self.m):  # insert_greedy works on a copy when blocked; sync the free mask
            for u in routes[k][1:-1]:
                free[u] = False
        self.local_search(routes, lens, free, noise, changed)

    def _accept(self, state: _State, trial: _Trial, max_iter: int) -> float:
        """Keep ``trial`` as the new best and/or current solution by record-to-record; the operator's reward."""
        routes, lens, free = trial.routes, trial.lens, trial.free
        val = self.value(routes, lens)
        reward = 0.0
        if val > state.best_val:
            state.best_val = val
            state.best = ([r[:] for r in routes], lens[:])
            state.since = 0
            reward = 3.0
        if val >= state.cur_val:
            reward = max(reward, 1.0 if val > state.cur_val else 0.3)
            state.cur = (routes, lens, free)
            state.cur_val = val
        else:
            progress = state.it / max(1, max_iter)
            thr = 0.04 * (1.0 - progress) * max(state.best_val[0], 1.0)
            if val[0] >= state.best_val[0] - thr:
                state.cur = (routes, lens, free)
                state.cur_val = val
                reward = 0.1
        return reward
