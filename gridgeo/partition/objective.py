"""The soft objectives' weights and the search budgets of a partition problem."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gridgeo.errors import UsageError


@dataclass(frozen=True)
class Objective:
    """Weights of the soft objectives (all >= 0), and the annealing budget.

    Each term is scaled to about one unit per typical move, so the weights
    compare directly: ``compactness`` per mean edge length cut, ``balance``
    per squared deviation from the mean size in units of the bound margin,
    ``similarity`` per unit outside its part's majority value (categorical)
    or per variance unit (numeric), ``stay`` per unit moved away from its
    previous part (only with ``previous``; high, so that re-drawing moves as
    few units as possible).
    """

    compactness: float = 1.0
    balance: float = 1.0
    similarity: float = 2.0
    stay: float = 10.0
    iterations: int = 100  # annealing proposals per unit
    restarts: int = 6  # fresh tree partitions tried when the repair leaves violations

    def __post_init__(self) -> None:
        for name in ("compactness", "balance", "similarity", "stay"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise UsageError(f"objective weight {name} must be a finite number >= 0, not {v!r}")
        if self.iterations < 0 or self.restarts < 0:
            raise UsageError("iterations and restarts must be >= 0")
