"""Local search on one component's partition: repair by ejection chains, shake, annealing.

:class:`Search` keeps a partition of one :class:`~gridgeo.partition._comp.Comp` together
with every tally the moves need (part sizes, unit counts, members, per-part category counts
and numeric sums), updated per move, so each proposal costs a few list look-ups.

* **Repair by ejection chains.** A part above the maximum sheds a boundary unit to a
  neighbour, which passes a unit of similar weight on, and so on along the shortest path (in
  the graph of parts) to a part with room; a part below the minimum pulls along a path from a
  part with surplus. A chain is kept only when the total bound violation strictly falls, so
  the repair always terminates.
* **Shake.** Chains move one unit per step and only downhill, so they stall when the slack is
  thinner than a unit; a short simulated annealing on the violation itself leaves such minima.
* **Annealing** on single boundary moves that never increase the bound violation, weighing
  compactness, balance, similarity and staying put (:class:`~gridgeo.partition.Objective`).

A unit may leave a part only if the part stays connected without it: a breadth-first search
over that part from one of the unit's neighbours, stopped as soon as all of them are reached.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from itertools import pairwise

import numpy as np

from gridgeo.partition._comp import EPS, Comp, size_margin
from gridgeo.partition.objective import Objective

log = logging.getLogger(__name__)


class Search:
    """A partition of one component under local moves, with every tally kept up to date.

    Parameters
    ----------
    comp
        The component; its bounds are the bounds of the search.
    part
        Part index of every unit (``0 .. n_parts-1``).
    n_parts
        Number of parts.
    stay
        With a previous partition: the part each unit should stay in (-1: none), priced by
        :attr:`Objective.stay` in the annealing.
    """

    def __init__(self, comp: Comp, part: list[int], n_parts: int, *, stay: list[int] | None = None) -> None:
        self.c = comp
        self.P = n_parts
        self.lo, self.hi = comp.lo, comp.hi
        self.target = comp.W / n_parts
        self.stay = stay
        self.moves = 0
        self.load(part)

    def load(self, part: list[int]) -> None:
        """Set the assignment and recompute every tally from it."""
        comp, n_parts = self.c, self.P
        self.part = list(part)
        self.size = [0.0] * n_parts
        self.cnt = [0] * n_parts
        self.mem: list[set[int]] = [set() for _ in range(n_parts)]
        wl = comp.wl
        for u, p in enumerate(self.part):
            self.size[p] += wl[u]
            self.cnt[p] += 1
            self.mem[p].add(u)
        self.catcnt = [[[0] * nc for _ in range(n_parts)] for nc in comp.ncat]
        for ci, codes in enumerate(comp.cats):
            cc = self.catcnt[ci]
            for u, p in enumerate(self.part):
                cc[p][codes[u]] += 1
        self.S1 = [[0.0] * n_parts for _ in comp.nums]
        for ni, x in enumerate(comp.nums):
            s1 = self.S1[ni]
            for u, p in enumerate(self.part):
                s1[p] += x[u]

    # -- tallies --------------------------------------------------------------------
    def viol(self, s: float) -> float:
        """Bound violation of a part of size ``s`` (0 inside the bounds)."""
        if s > self.hi:
            return s - self.hi
        if s < self.lo:
            return self.lo - s
        return 0.0

    def violation(self) -> float:
        return sum(self.viol(s) for s in self.size)

    def solved(self) -> bool:
        """No violation beyond the unavoidable (units that alone exceed the maximum)."""
        return self.violation() <= self.c.floor_v + EPS * max(self.target, 1.0)

    def move(self, u: int, B: int) -> None:
        A = self.part[u]
        w = self.c.wl[u]
        self.size[A] -= w
        self.size[B] += w
        self.cnt[A] -= 1
        self.cnt[B] += 1
        self.mem[A].discard(u)
        self.mem[B].add(u)
        self.part[u] = B
        for ci, codes in enumerate(self.c.cats):
            cc = self.catcnt[ci]
            cc[A][codes[u]] -= 1
            cc[B][codes[u]] += 1
        for ni, x in enumerate(self.c.nums):
            self.S1[ni][A] -= x[u]
            self.S1[ni][B] += x[u]
        self.moves += 1

    def stays_connected(self, u: int, A: int) -> bool:
        """Would part ``A`` stay connected without ``u``? BFS from one neighbour, early exit."""
        part, nbrs = self.part, self.c.nbrs
        inA = [v for v in nbrs[u] if part[v] == A]
        if len(inA) <= 1:
            return True  # a leaf of A (or already cut off from it); callers keep A non-empty
        targets = set(inA[1:])
        left = len(targets)
        seen = {u, inA[0]}
        queue = deque([inA[0]])
        while queue:
            x = queue.popleft()
            for y in nbrs[x]:
                if y not in seen and part[y] == A:
                    if y in targets:
                        left -= 1
                        if left == 0:
                            return True
                    seen.add(y)
                    queue.append(y)
        return False

    def part_adjacency(self) -> list[list[int]]:
        src = np.asarray(self.c.src, dtype=np.int64)
        dst = np.asarray(self.c.dst, dtype=np.int64)
        p = np.asarray(self.part, dtype=np.int64)
        pa, pb = p[src], p[dst]
        diff = pa != pb
        pairs = np.unique(pa[diff] * self.P + pb[diff])
        adj: list[list[int]] = [[] for _ in range(self.P)]
        for code in pairs.tolist():
            adj[code // self.P].append(code % self.P)
        return adj

    # -- repair -----------------------------------------------------------------------
    def repair(self, deadline: float, max_rounds: int = 100_000) -> None:
        """Remove bound violations by ejection chains; stops when no chain helps."""
        for _ in range(max_rounds):
            if self.solved():
                return
            if time.perf_counter() > deadline:
                return
            adj = self.part_adjacency()
            order = sorted((p for p in range(self.P) if self.viol(self.size[p]) > 0),
                           key=lambda p: (-self.viol(self.size[p]), p))
            if not any(self._fix(A, adj) for A in order):
                return

    def _fix(self, A: int, adj: list[list[int]]) -> bool:
        over = self.size[A] > self.hi
        parent = {A: -1}
        queue = deque([A])
        found: list[int] = []
        while queue and len(found) < 6:
            P = queue.popleft()
            for Q in adj[P]:
                if Q in parent:
                    continue
                parent[Q] = P
                queue.append(Q)
                if (over and self.size[Q] < self.hi - EPS) or (not over and self.size[Q] > self.lo + EPS):
                    found.append(Q)
        before = self.violation()
        for Z in found:
            path = [Z]
            while path[-1] != A:
                path.append(parent[path[-1]])
            path.reverse()  # A ... Z
            steps = list(pairwise(path)) if over else [(b, a) for a, b in pairwise(path)]
            done = self._chain(steps, over, path)
            if done is None:
                continue
            if self.violation() < before - EPS * max(self.target, 1.0):
                return True
            for u, g, _ in reversed(done):
                self.move(u, g)
        return False

    def _chain(self, steps: list[tuple[int, int]], over: bool, path: list[int]) -> list[tuple[int, int, int]] | None:
        """Move one unit along each step (giver, receiver); undo and return None if one is stuck."""
        ref = {p: self.size[p] for p in path}
        ref[path[0]] = self.target
        ref[path[-1]] = self.target
        scale = max(self.target, EPS)
        wl, part, nbrs = self.c.wl, self.part, self.c.nbrs
        done: list[tuple[int, int, int]] = []
        last = len(steps) - 1
        for i, (g, r) in enumerate(steps):
            cands = []
            for u in self.mem[g]:
                if not any(part[v] == r for v in nbrs[u]):
                    continue
                w = wl[u]
                sg, sr = self.size[g] - w, self.size[r] + w
                if over:  # the giver is settled now; the receiver only at the end
                    cost = self.viol(sg) + 0.05 * abs(sg - ref[g])
                    if i == last:
                        cost += self.viol(sr) + 0.05 * abs(sr - ref[r])
                else:  # the receiver is settled now; the giver only at the end
                    cost = self.viol(sr) + 0.05 * abs(sr - ref[r])
                    if i == last:
                        cost += self.viol(sg) + 0.05 * abs(sg - ref[g])
                ties = sum(1 for v in nbrs[u] if part[v] == g) - sum(1 for v in nbrs[u] if part[v] == r)
                cands.append((cost / scale + 0.002 * ties, u))
            cands.sort()
            moved = False
            for _, u in cands:
                if self.cnt[g] > 1 and self.stays_connected(u, g):
                    self.move(u, r)
                    done.append((u, g, r))
                    moved = True
                    break
            if not moved:
                for u, g0, _ in reversed(done):
                    self.move(u, g0)
                return None
        return done

    def shake(self, n_iter: int, rng: np.random.Generator, deadline: float) -> None:
        """Leave a local minimum of the repair: simulated annealing on the bound violation itself.

        The ejection chains move one unit per step and only downhill, which
        stalls when the slack is thinner than a unit (many parts just above a
        minimum). Here single boundary moves may go uphill with probability
        ``exp(-increase / T)``, T falling from half a mean unit weight to 1 %
        of it, with a small pull towards short boundaries so parts stay
        compact enough to keep trading units. The best state seen is kept.
        """
        c = self.c
        E = len(c.src)
        if self.P <= 1 or n_iter <= 0 or E == 0:
            return
        part, size, cnt, wl = self.part, self.size, self.cnt, c.wl
        src, dst, lo, hi = c.src, c.dst, self.lo, self.hi
        mw = c.W / c.m
        wc = 0.05 * mw / c.mean_len
        T0, T1 = 0.5 * mw, 0.01 * mw
        alpha = (T1 / T0) ** (1.0 / n_iter)
        T = T0
        picks = rng.integers(E, size=n_iter).tolist()
        draws = rng.random(n_iter).tolist()
        cur = best = self.violation()
        best_part = list(part)
        stop = EPS * max(self.target, 1.0)
        exp, cut_delta = math.exp, self.cut_delta
        for it in range(n_iter):
            T *= alpha
            if (it & 4095) == 0 and time.perf_counter() > deadline:
                break
            k = picks[it]
            u = src[k]
            A = part[u]
            B = part[dst[k]]
            if A == B or cnt[A] == 1:
                continue
            wu = wl[u]
            sA, sB = size[A], size[B]
            a1, b1 = sA - wu, sB + wu  # bound violations inlined: this loop is the hot spot of max-p
            dv = ((a1 - hi if a1 > hi else (lo - a1 if a1 < lo else 0.0))
                  + (b1 - hi if b1 > hi else (lo - b1 if b1 < lo else 0.0))
                  - (sA - hi if sA > hi else (lo - sA if sA < lo else 0.0))
                  - (sB - hi if sB > hi else (lo - sB if sB < lo else 0.0)))
            d = dv + wc * cut_delta(u, A, B)
            if d > 0 and draws[it] >= exp(-d / T):
                continue
            if not self.stays_connected(u, A):
                continue
            self.move(u, B)
            cur += dv
            if cur < best - stop:
                best = cur
                best_part = list(part)
                if best <= c.floor_v + stop:
                    break
        if best < self.violation() - stop or best_part != self.part:
            self.load(best_part)

    # -- improvement ------------------------------------------------------------------
    def anneal(self, n_iter: int, obj: Objective, rng: np.random.Generator, deadline: float) -> None:
        """Simulated annealing on boundary moves that never increase the bound violation."""
        c = self.c
        E = len(c.src)
        if self.P <= 1 or n_iter <= 0 or E == 0:
            return
        part, size, cnt, wl = self.part, self.size, self.cnt, c.wl
        src, dst = c.src, c.dst
        t = self.target
        wc = obj.compactness / c.mean_len
        bscale = size_margin(t, self.lo, self.hi)
        wb = obj.balance / (bscale * bscale)
        ws = obj.similarity
        stay = self.stay
        wm = obj.stay
        lo, hi = self.lo, self.hi
        T0, T1 = 1.0, 0.02
        alpha = (T1 / T0) ** (1.0 / n_iter)
        T = T0
        picks = rng.integers(E, size=n_iter).tolist()
        draws = rng.random(n_iter).tolist()
        exp, cut_delta = math.exp, self.cut_delta
        for it in range(n_iter):
            T *= alpha
            if (it & 4095) == 0 and time.perf_counter() > deadline:
                log.warning("time limit hit during annealing after %d of %d proposals", it, n_iter)
                return
            k = picks[it]
            u = src[k]
            A = part[u]
            B = part[dst[k]]
            if A == B or cnt[A] == 1:
                continue
            wu = wl[u]
            sA, sB = size[A], size[B]
            a1, b1 = sA - wu, sB + wu
            if ((a1 - hi if a1 > hi else (lo - a1 if a1 < lo else 0.0))
                    + (b1 - hi if b1 > hi else (lo - b1 if b1 < lo else 0.0))
                    > (sA - hi if sA > hi else (lo - sA if sA < lo else 0.0))
                    + (sB - hi if sB > hi else (lo - sB if sB < lo else 0.0)) + EPS):
                continue  # never increase the bound violation
            d = wc * cut_delta(u, A, B)
            d += wb * ((sA - wu - t) ** 2 + (sB + wu - t) ** 2 - (sA - t) ** 2 - (sB - t) ** 2)
            if ws:
                d = self.add_similarity(d, u, A, B, ws=ws)
            if stay is not None:
                home = stay[u]
                d += wm * ((home == A) - (home == B))
            if d > 0 and draws[it] >= exp(-d / T):
                continue
            if not self.stays_connected(u, A):
                continue
            self.move(u, B)

    def cut_delta(self, u: int, A: int, B: int) -> float:
        """Change of the boundary length cut between parts when ``u`` moves from ``A`` to ``B``."""
        part = self.part
        dcut = 0.0
        for v, L in zip(self.c.nbrs[u], self.c.nlen[u], strict=True):
            pv = part[v]
            if pv == A:
                dcut += L
            elif pv == B:
                dcut -= L
        return dcut

    def add_similarity(self, d: float, u: int, A: int, B: int, *, ws: float) -> float:
        """``d`` plus the similarity cost (weight ``ws``) of moving ``u`` from ``A`` to ``B``.

        Categorical columns count the units outside their part's majority value; numeric
        columns the within-part sum of squares (a constant minus ``sum S1^2 / n``). The terms
        are added to ``d`` one by one, in column order, as the annealing always summed them.
        """
        cnt = self.cnt
        for ci, codes in enumerate(self.c.cats):
            cu = codes[u]
            ca, cb = self.catcnt[ci][A], self.catcnt[ci][B]
            mis_before = (cnt[A] - max(ca)) + (cnt[B] - max(cb))
            ca[cu] -= 1
            cb[cu] += 1
            mis_after = (cnt[A] - 1 - max(ca)) + (cnt[B] + 1 - max(cb))
            ca[cu] += 1
            cb[cu] -= 1
            d += ws * (mis_after - mis_before)
        for ni, xs in enumerate(self.c.nums):
            x = xs[u]
            a1, b1 = self.S1[ni][A], self.S1[ni][B]
            nA, nB = cnt[A], cnt[B]
            before = a1 * a1 / nA + b1 * b1 / nB
            after = (a1 - x) ** 2 / (nA - 1) + (b1 + x) ** 2 / (nB + 1)
            d += ws * (before - after)  # within-part sum of squares = const - sum S1^2/n
        return d

    def cut_length(self) -> float:
        part = self.part
        return 0.5 * sum(L for u in range(self.c.m) for v, L in zip(self.c.nbrs[u], self.c.nlen[u], strict=True)
                         if part[v] != part[u])
