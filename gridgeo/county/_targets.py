"""Sharing a target count among parts within each one's range (private to :mod:`gridgeo.county.policy`).

Used twice: a county's ``[targets] grids`` among its villages, and a
village's share of ``[targets] points`` among its grids.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Share", "count_ranges", "share"]


@dataclass(frozen=True)
class Share:
    """Counts per part, and how far the total is from the target and why (``None``: met)."""

    counts: list[int]
    shortfall: str | None = None


def share(weights: Sequence[float], low: Sequence[int], high: Sequence[int], total: int) -> Share:
    """Counts summing to ``total`` as nearly as ``low[i] <= counts[i] <= high[i]`` allow, proportional
    to ``weights`` (Sainte-Laguë: each next part goes where ``weight / (count + 0.5)`` is largest).

    Why Sainte-Laguë and not rounding quotas: the counts then always sum to the
    target when the ranges allow it, and a part's count never falls when the
    target rises. Ties go to the lower index (deterministic).
    """
    counts = [int(v) for v in low]
    floor, ceiling = sum(counts), sum(int(v) for v in high)
    if total < floor:
        return Share(counts, f"the bounds need at least {floor} (each part's households over its maximum); "
                             f"{floor - total} more than the target {total}")
    heap = [(-float(w) / (c + 0.5), i) for i, (w, c) in enumerate(zip(weights, counts, strict=True))
            if c < high[i]]
    heapq.heapify(heap)
    left = total - floor
    while left > 0 and heap:
        _, i = heapq.heappop(heap)
        counts[i] += 1
        left -= 1
        if counts[i] < high[i]:
            heapq.heappush(heap, (-float(weights[i]) / (counts[i] + 0.5), i))
    if left > 0:
        return Share(counts, f"the bounds allow at most {ceiling} (each part's households over its minimum, "
                             f"and no more parts than it has units); {left} fewer than the target {total}")
    return Share(counts)


def count_ranges(households: Sequence[float], units: Sequence[int], bounds: tuple[float, float]) -> tuple[
        list[int], list[int]]:
    """Each part's range of counts: at least what its households need under the maximum, at most what the
    minimum allows, never more than its units (and at least one)."""
    lo, hi = bounds
    low, high = [], []
    for h, n in zip(households, units, strict=True):
        lo_i = min(max(1, math.ceil(h / hi - 1e-9)) if hi > 0 else 1, n)
        low.append(lo_i)
        high.append(max(lo_i, min(math.floor(h / lo + 1e-9) if lo > 0 else n, n)))
    return low, high
