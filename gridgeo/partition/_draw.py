"""A fresh partition of one component into ``k`` parts: tree draw, repair, shake, restarts.

Each attempt draws a tree partition (:mod:`gridgeo.partition._tree`) and repairs it by
ejection chains; when violations remain it is shaken and repaired again. Attempts are
repeated (a fixed number of restarts) while violations remain, and the best kept: the
budgets are counts, so the result depends on the seed only, unless the deadline is hit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridgeo.partition._comp import EPS, Comp
from gridgeo.partition._search import Search
from gridgeo.partition._tree import tree_partition
from gridgeo.partition.objective import Objective

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """What the search of one group's components may spend, and the random stream it draws from.

    Attributes
    ----------
    objective
        The soft objectives' weights and the iteration and restart budgets.
    rng
        The group's random generator: every draw of the group's search, in order.
    deadline
        ``time.perf_counter()`` value at which the search stops (infinity: none).
    """

    objective: Objective
    rng: np.random.Generator
    deadline: float


def draw(comp: Comp, k: int, budget: Budget, *, restarts: int, info: dict[str, Any],
         stay: list[int] | None = None) -> Search:
    """Tree partition + repair, restarted while violations remain; the best kept.

    ``info["restarts"]`` counts the restarts made; ``stay`` is handed to the search (the
    previous part of every unit) for its annealing.
    """
    best: Search | None = None
    for attempt in range(restarts + 1):
        part, P = tree_partition(comp, k, budget.rng)
        s = Search(comp, part, P, stay=stay)
        s.repair(budget.deadline)
        if not s.solved():
            # violations are local: a larger component does not need a proportionally longer shake
            s.shake(min(budget.objective.iterations * comp.m, 200_000), budget.rng, budget.deadline)
            s.repair(budget.deadline)
        if best is None or s.violation() < best.violation() - EPS:
            best = s
        if best.solved() or time.perf_counter() > budget.deadline:
            break
        info["restarts"] = info.get("restarts", 0) + 1
        log.debug("restart %d: violation %.6g remains", attempt + 1, best.violation())
    assert best is not None
    return best
