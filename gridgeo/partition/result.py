"""What the engine returns: the parts, the assignment, and every hard rule the partition breaks."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from gridgeo.partition.rules import Violation


@dataclass
class Part:
    """One part of the result."""

    index: int
    group: str
    units: list[Hashable]
    size: float
    label: Hashable | None = None  # the lock or previous label this part keeps
    locked: bool = False

    @property
    def n_units(self) -> int:
        return len(self.units)


@dataclass
class Result:
    """What :meth:`Model.solve` returns: the best partition found and what it breaks.

    Attributes
    ----------
    assignment
        Unit id -> part index (into ``parts``).
    parts
        The parts, grouped by group (groups in sorted order).
    violations
        Every broken hard rule, with the units and the cause; empty when feasible.
    satisfaction
        Per hard rule: ok, how many parts/groups were checked and how many failed.
    moved
        With ``previous``: the units whose part label changed (else ``None``).
    stats
        Timings, counts per group, restarts, objective terms.
    """

    assignment: dict[Hashable, int]
    parts: list[Part]
    violations: list[Violation]
    satisfaction: dict[str, dict[str, Any]]
    stats: dict[str, Any]
    moved: list[Hashable] | None = None

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def failed_rules(self) -> list[str]:
        return sorted({v.rule for v in self.violations})

    def sizes(self) -> list[float]:
        return [p.size for p in self.parts]
