"""How many parts: a fixed count shared among components, or a free count searched for.

* :func:`allocate` shares a group's count among its components (one each, the rest where
  parts would be largest), within what each component's minimum allows.
* :func:`free_count` finds the count when none is given. With a minimum, as many parts as
  the bounds allow (max-p): the component's ceiling ``floor(W / min)`` first, then fewer
  (1, 2, 4, ... less, then a bisection back up) until a partition meets every bound; these
  probes get two restarts each, and the counts just above the best one found are then tried
  again with the full restart budget. With only a maximum, "as many as allowed" would be one
  unit per part, so the count is the fewest parts that fit under the maximum instead.
"""

from __future__ import annotations

import math
import time
from typing import Any

from gridgeo.partition._comp import EPS, Comp, IArray
from gridgeo.partition._draw import Budget, draw
from gridgeo.partition._search import Search


def allocate(comps: list[IArray], wc: list[float], k: int, lo: float) -> list[int]:
    """Share ``k`` parts among components: one each, the rest where parts are largest.

    The count is honoured first (a component that would need more parts
    than it gets reports a bound violation, not a count violation); a
    component never gets more parts than its minimum allows while another
    can take them, nor more parts than it has units.
    """
    n_c = [len(c) for c in comps]
    high = [max(1, min(n, math.floor(W / lo + EPS))) if lo > 0 else n for W, n in zip(wc, n_c, strict=True)]
    ks = [1] * len(comps)
    left = k - len(comps)
    while left > 0:
        cand = [i for i in range(len(ks)) if ks[i] < high[i]] or [i for i in range(len(ks)) if ks[i] < n_c[i]]
        if not cand:
            break
        i = max(cand, key=lambda j: (wc[j] / ks[j], -j))
        ks[i] += 1
        left -= 1
    return ks


def free_count(comp: Comp, budget: Budget, info: dict[str, Any]) -> Search:
    """Max-p with a minimum (most parts that all meet the bounds); fewest parts with only a maximum."""
    counts = _Counts(comp, budget, info)
    return counts.most_parts() if comp.lo > 0 else counts.fewest_parts()


class _Counts:
    """The counts tried for one component, each with the best partition drawn for it."""

    def __init__(self, comp: Comp, budget: Budget, info: dict[str, Any]) -> None:
        self.comp, self.budget, self.info = comp, budget, info
        m, hi = comp.m, comp.hi
        self.k_min = max(1, min(m, math.ceil(comp.W / hi - EPS))) if math.isfinite(hi) else 1
        self.k_max = m
        self.tries: dict[int, Search] = {}
        self.full = min(budget.objective.restarts, max(2, 20_000 // m))  # small components: more tries are cheap
        self.quick = min(2, self.full)
        self.pushed: set[int] = set()

    def attempt(self, k: int, restarts: int | None = None) -> bool:
        """Is ``k`` parts feasible? Drawn with ``quick`` restarts once, with ``full`` ones at most once more."""
        restarts = self.quick if restarts is None else restarts
        tries = self.tries
        if k not in tries or (restarts > self.quick and k not in self.pushed and not tries[k].solved()):
            if restarts > self.quick:
                self.pushed.add(k)
            tries[k] = draw(self.comp, k, self.budget, restarts=restarts, info=self.info)
        return tries[k].solved()

    def push(self, k: int, step: int) -> int:
        """From a feasible count, try the next ones with the full restart budget."""
        while (self.k_min <= k + step <= self.k_max and time.perf_counter() < self.budget.deadline
               and self.attempt(k + step, self.full)):
            k += step
        return k

    def most_parts(self) -> Search:
        """With a minimum: the most parts that all meet the bounds (or the least bad count)."""
        comp, tries = self.comp, self.tries
        lo, hi, W, k_min = comp.lo, comp.hi, comp.W, self.k_min
        self.k_max = k_max = max(1, min(comp.m, math.floor(W / lo + EPS)))
        if k_max < k_min:  # no count meets both bounds on average: the least bad
            k = min((k_max, k_min), key=lambda kk: kk * (max(0.0, W / kk - hi) + max(0.0, lo - W / kk)))
            self.attempt(k)
            return tries[k]
        fail = self._probe_down()
        ok = max((kk for kk in tries if self.attempt(kk)), default=None)
        if ok is None:
            self.attempt(k_min)
            return min(tries.values(), key=lambda s: (s.violation(), -s.P))
        hi_k = fail if fail is not None else ok
        lo_k = ok
        while hi_k - lo_k > 1 and time.perf_counter() < self.budget.deadline:  # the largest feasible count between
            mid = (lo_k + hi_k) // 2
            if self.attempt(mid):
                lo_k = mid
            else:
                hi_k = mid
        return tries[self.push(max(kk for kk in tries if tries[kk].solved()), 1)]

    def _probe_down(self) -> int | None:
        """From the ceiling, 1, 2, 4, ... parts fewer until one count is feasible; the last count that failed."""
        step, k, fail = 1, self.k_max, None
        while k >= self.k_min and not self.attempt(k):
            fail = k
            k, step = k - step, step * 2
            if time.perf_counter() > self.budget.deadline:
                break
        return fail

    def fewest_parts(self) -> Search:
        """With only a maximum: the fewest parts that all fit under it."""
        m, tries, deadline = self.comp.m, self.tries, self.budget.deadline
        self.k_max = m
        step, k = 1, self.k_min
        while k <= m and not self.attempt(k) and time.perf_counter() < deadline:
            k, step = k + step, step * 2
        ok = min((kk for kk in tries if self.attempt(kk)), default=None)
        if ok is None:
            return min(tries.values(), key=lambda s: (s.violation(), s.P))
        below = max((kk for kk in tries if kk < ok), default=ok)
        lo_k, hi_k = below, ok
        while hi_k - lo_k > 1 and time.perf_counter() < deadline:
            mid = (lo_k + hi_k) // 2
            if self.attempt(mid):
                hi_k = mid
            else:
                lo_k = mid
        return tries[self.push(min(kk for kk in tries if tries[kk].solved()), -1)]
