"""Partition rules: small composable callables, a validator, and the rules file.

Why rules are callables (the GerryChain idea): each rule looks at one aspect
of a finished partition -- contiguity, a size bound, groups, the count -- and
returns what it checked and what failed. A :class:`Validator` runs a list of
them and names *every* rule that failed, with the units concerned, instead of
stopping at the first; the report and the CLI's exit status are built from
that list. The engine (:mod:`gridgeo.partition`) uses the same rules to judge
its own result, so what the report says is exactly what was checked.

A rule is any callable ``rule(view) -> RuleResult``; the factories below
(:func:`contiguous`, :func:`min_size`, :func:`max_size`, :func:`within_groups`,
:func:`part_count`) build the standard ones.

The rules file (``--rules FILE.toml`` or ``.json``) holds the same options as
the command line, so a county's policy lives in one reviewed file::

    group_by = "township"
    size_col = "households"
    min = 800
    max = 1500
    similar = ["kind"]
    seed = 1

    [weights]
    compactness = 1.0
    similarity = 2.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)

#: Rules that must hold; a partition breaking any of them is infeasible (CLI exit 3).
HARD_RULES: tuple[str, ...] = ("contiguity", "min_size", "max_size", "group", "count")


@dataclass(frozen=True)
class Violation:
    """One broken hard rule, with the units concerned and why.

    Parameters
    ----------
    rule
        The rule's name (one of :data:`HARD_RULES`).
    message
        A sentence a GIS engineer can act on: what is wrong and, where known, why.
    part
        The part (index into ``Result.parts``) concerned, if any.
    group
        The group concerned, if any.
    units
        The units concerned: the cut-off pieces of a split part, the units of
        an undersized island, the unit that alone exceeds the maximum, ...
    cause
        A machine-readable diagnosis: ``unit_above_max``, ``island_below_min``,
        ``group_too_small``, ``group_too_large``, ``too_many_components``,
        ``locked``, ``no_room`` or ``search`` (the search found no better
        arrangement; a different seed or a longer time limit may).
    """

    rule: str
    message: str
    part: int | None = None
    group: str | None = None
    units: tuple[Hashable, ...] = ()
    cause: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (unit ids as strings)."""
        return {
            "rule": self.rule,
            "cause": self.cause,
            "part": self.part,
            "group": self.group,
            "units": [str(u) for u in self.units],
            "message": self.message,
        }


@dataclass
class RuleResult:
    """What one rule checked (``checked`` parts or groups) and what failed."""

    name: str
    checked: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        failed = len({(v.part, v.group) for v in self.violations})
        return {"ok": self.ok, "checked": self.checked, "failed": failed,
                "satisfied": (self.checked - failed) / self.checked if self.checked else 1.0}


@dataclass
class PartitionView:
    """A finished partition as the rules see it: arrays over units and parts.

    Parameters
    ----------
    ids
        Unit ids, in unit order.
    part
        Part index of every unit (``0 .. n_parts-1``).
    n_parts
        Number of parts.
    weights
        The size of every unit (the column the bounds are on).
    indptr, indices
        The symmetric adjacency in CSR form.
    group
        Group index of every unit.
    groups
        Group names, indexed by group index.
    """

    ids: Sequence[Hashable]
    part: NDArray[np.int64]
    n_parts: int
    weights: NDArray[np.float64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    group: NDArray[np.int64]
    groups: Sequence[str]

    @cached_property
    def sizes(self) -> NDArray[np.float64]:
        """Total weight of every part."""
        return np.bincount(self.part, weights=self.weights, minlength=self.n_parts).astype(np.float64)

    @cached_property
    def members(self) -> list[NDArray[np.int64]]:
        """Unit indices of every part, ascending."""
        order = np.argsort(self.part, kind="stable")
        bounds = np.searchsorted(self.part[order], np.arange(self.n_parts + 1))
        return [order[bounds[p]:bounds[p + 1]] for p in range(self.n_parts)]

    @cached_property
    def part_group(self) -> NDArray[np.int64]:
        """The group of every part: the group of most of its units (lowest index on ties)."""
        out = np.zeros(self.n_parts, dtype=np.int64)
        for p, mem in enumerate(self.members):
            if len(mem):
                out[p] = int(np.bincount(self.group[mem]).argmax())
        return out

    def group_name(self, p: int) -> str:
        return self.groups[int(self.part_group[p])]

    def unit_ids(self, idx: Sequence[int] | NDArray[np.int64]) -> tuple[Hashable, ...]:
        return tuple(self.ids[int(i)] for i in idx)


Rule = Callable[[PartitionView], RuleResult]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.3g}"


def _list(ids: Sequence[Hashable], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def contiguous() -> Rule:
    """Every part is connected through shared boundaries (rook adjacency).

    Why hard: a block or grid in two pieces cannot be walked by its leader.
    The violation lists the units cut off from the largest piece.
    """

    def contiguity(view: PartitionView) -> RuleResult:
        n = len(view.part)
        src = np.repeat(np.arange(n), np.diff(view.indptr))
        dst = view.indices
        same = view.part[src] == view.part[dst]
        g = coo_matrix((np.ones(int(same.sum())), (src[same], dst[same])), shape=(n, n))
        _, comp = connected_components(g, directed=False)
        out: list[Violation] = []
        for p, mem in enumerate(view.members):
            pieces = np.unique(comp[mem])
            if len(pieces) <= 1:
                continue
            piece_w = [(view.weights[mem[comp[mem] == c]].sum(), -len(mem[comp[mem] == c]), int(c)) for c in pieces]
            keep = max(piece_w)[2]
            cut = mem[comp[mem] != keep]
            ids = view.unit_ids(cut)
            out.append(Violation(
                "contiguity", f"part {p} (group {view.group_name(p)}) is in {len(pieces)} pieces: "
                f"{_list(ids)} are cut off from the rest", part=p, group=view.group_name(p), units=ids,
                cause="split"))
        return RuleResult("contiguity", view.n_parts, out)

    return contiguity


def _per_part(view: PartitionView, bound: float | Mapping[str, float], default: float) -> NDArray[np.float64]:
    if isinstance(bound, Mapping):
        return np.array([float(bound.get(view.group_name(p), default)) for p in range(view.n_parts)])
    return np.full(view.n_parts, float(bound))


def min_size(lo: float | Mapping[str, float], *, column: str = "size") -> Rule:
    """Every part weighs at least ``lo`` (households, population, units, m², ...); per group if a mapping."""

    def rule(view: PartitionView) -> RuleResult:
        out = []
        low = _per_part(view, lo, 0.0)
        for p in np.flatnonzero(view.sizes < low - 1e-9 * np.maximum(1.0, np.abs(low))).tolist():
            out.append(Violation(
                "min_size", f"part {p} (group {view.group_name(p)}) has {column} {_fmt(view.sizes[p])} "
                f"< minimum {_fmt(low[p])}", part=p, group=view.group_name(p),
                units=view.unit_ids(view.members[p])))
        checked = int(np.count_nonzero(low > 0))
        return RuleResult("min_size", checked, out)

    rule.__name__ = "min_size"
    return rule


def max_size(hi: float | Mapping[str, float], *, column: str = "size") -> Rule:
    """Every part weighs at most ``hi``; per group if a mapping."""

    def rule(view: PartitionView) -> RuleResult:
        out = []
        high = _per_part(view, hi, np.inf)
        for p in np.flatnonzero(view.sizes > high + 1e-9 * np.maximum(1.0, np.abs(high))).tolist():
            out.append(Violation(
                "max_size", f"part {p} (group {view.group_name(p)}) has {column} {_fmt(view.sizes[p])} "
                f"> maximum {_fmt(high[p])}", part=p, group=view.group_name(p),
                units=view.unit_ids(view.members[p])))
        checked = int(np.count_nonzero(np.isfinite(high)))
        return RuleResult("max_size", checked, out)

    rule.__name__ = "max_size"
    return rule


def within_groups() -> Rule:
    """No part crosses a group (a block never spans two townships)."""

    def group(view: PartitionView) -> RuleResult:
        out = []
        for p, mem in enumerate(view.members):
            gs = np.unique(view.group[mem])
            if len(gs) > 1:
                home = int(view.part_group[p])
                strays = mem[view.group[mem] != home]
                ids = view.unit_ids(strays)
                out.append(Violation(
                    "group", f"part {p} spans groups {', '.join(view.groups[int(g)] for g in gs)}: "
                    f"{_list(ids)} are outside {view.groups[home]}", part=p, group=view.groups[home], units=ids,
                    cause="locked"))
        return RuleResult("group", view.n_parts, out)

    return group


def part_count(expected: Mapping[str, int]) -> Rule:
    """Each group has exactly the expected number of parts."""

    def count(view: PartitionView) -> RuleResult:
        have = np.bincount(view.part_group, minlength=len(view.groups))
        out = []
        for gi, name in enumerate(view.groups):
            if name in expected and int(have[gi]) != int(expected[name]):
                out.append(Violation(
                    "count", f"group {name} has {int(have[gi])} parts, {int(expected[name])} asked for",
                    group=name))
        return RuleResult("count", len(expected), out)

    return count


@dataclass
class Validation:
    """What a :class:`Validator` found: every rule's result, and the failures."""

    results: list[RuleResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[str]:
        """Names of the rules that failed, in the validator's order."""
        return [r.name for r in self.results if not r.ok]

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    def satisfaction(self) -> dict[str, dict[str, Any]]:
        """Per rule: ok, how many parts/groups were checked and how many failed."""
        return {r.name: r.to_dict() for r in self.results}


class Validator:
    """Run rules on a partition and name every one that failed.

    Parameters
    ----------
    rules
        Callables ``rule(view) -> RuleResult``.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)

    def __call__(self, view: PartitionView) -> Validation:
        results = [rule(view) for rule in self.rules]
        for r in results:
            if not r.ok:
                log.debug("rule %s failed on %d item(s)", r.name, len(r.violations))
        return Validation(results)


def standard_rules(
    *,
    lo: float | Mapping[str, float] | None,
    hi: float | Mapping[str, float] | None,
    counts: Mapping[str, int] | None,
    column: str = "size",
) -> list[Rule]:
    """The hard rules of a partition problem, in report order (bounds per group when mappings)."""
    rules: list[Rule] = [contiguous()]
    if lo is not None and (lo if not isinstance(lo, Mapping) else any(v > 0 for v in lo.values())):
        rules.append(min_size(lo, column=column))
    if hi is not None and (np.isfinite(hi) if not isinstance(hi, Mapping) else bool(hi)):
        rules.append(max_size(hi, column=column))
    rules.append(within_groups())
    if counts:
        rules.append(part_count(counts))
    return rules
