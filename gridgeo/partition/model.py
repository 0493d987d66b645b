"""The partition engine: units, an adjacency graph and rules in; contiguous parts out.

This module holds :class:`Model`: it reads the inputs (:mod:`._inputs`), solves group by
group and assembles the :class:`~gridgeo.partition.result.Result`; the stages below live in
the private modules named with them.

It knows nothing about villages or street blocks: a unit is a node of a graph
with numeric and categorical attributes, and a part is a connected set of
units. Blocks (villages in a township), grids (street blocks in a village) and
grid points are all the same problem:

* **hard rules** -- every part is contiguous; its size (any numeric column:
  households, population, number of units, area) lies in ``[min_size,
  max_size]``; parts never cross a group (solved group by group); the number
  of parts per group is fixed (an int, a mapping, or a column) or free;
* **soft objectives** -- compactness (the shared-boundary length cut between
  parts, a cheap proxy for Polsby-Popper), balance (sizes near the mean),
  similarity (a categorical column such as urban/rural not mixed where
  avoidable; numeric columns by within-part variance), and, when re-drawing,
  staying where the previous partition put a unit.

How it searches, and why
------------------------
1. **Per group, per connected component.** Parts cannot cross a group or a
   gap in the graph, so each component of each group is an independent
   problem (:mod:`._comp`); the count of a group is shared among its
   components in proportion to their size, within what each component's
   bounds allow (:mod:`._count`).
2. **Initial partition by recursive bisection of random spanning trees** (the
   GerryChain idea; :mod:`._tree`). Cutting one edge of a spanning tree splits a connected
   set into two connected sets; among the cuts of a few random trees we keep
   the one whose sides best fit a whole number of target-sized parts. Unlike
   GerryChain we never give up after N attempts: the best cut found is taken
   and the local search repairs what is left. With a categorical ``similar``
   column, edges between different values get heavier tree weights and
   cutting one is preferred, so parts tend to follow the urban/rural line.
3. **Repair by ejection chains** (:mod:`._search`, restarts in :mod:`._draw`). A part above the maximum sheds a boundary
   unit to a neighbour, which passes a unit of similar weight on, and so on
   along the shortest path (in the graph of parts) to a part with room; a part
   below the minimum pulls along a path from a part with surplus. A chain is
   kept only when the total bound violation strictly falls, so the repair
   always terminates. A unit may leave a part only if the part stays
   connected without it -- a breadth-first search over that part from one of
   the unit's neighbours, stopped as soon as all of them are reached (no
   whole-graph articulation points per move). Chains move one unit per
   step and only downhill, so they stall when the slack is thinner than a
   unit; then a short simulated annealing on the violation itself ("shake")
   is run and the chains tried again. If violations remain, a fresh tree
   partition is tried (a fixed number of restarts), keeping the best.
   Violations no partition can avoid (a unit alone above the maximum) are
   the floor the search aims for, not zero.
4. **Improvement by simulated annealing** (:mod:`._search`) on single boundary moves that never
   increase the bound violation, weighing compactness, balance, similarity
   and staying put (:class:`Objective`). Pure Python lists in the inner loop.
5. **Free count** (:mod:`._count`). With a minimum, as many parts as the bounds allow (max-p):
   the component's ceiling ``floor(W / min)`` first, then fewer (1, 2, 4, ...
   less, then a bisection back up) until a partition meets every bound; these
   probes get two restarts each, and the counts just above the best one found
   are then tried again with the full restart budget. With
   only a maximum, "as many as allowed" would be one unit per part, so the
   count is the fewest parts that fit under the maximum instead.

Dynamic adjustment (:mod:`._previous`): locked units keep their part exactly (a locked part
counts towards its group's count) and only the rest is drawn. With
``previous``, each component starts from the earlier parts (new units join the
neighbouring part they share most boundary with; parts merged or split only
to meet a fixed count), is repaired locally, and the annealing pays a high
price (:attr:`Objective.stay`) for every unit moved, so the result moves as few
units as the rules allow. Only when the repair leaves violations and a fresh
draw breaks fewer rules is the component re-drawn; fresh parts then inherit
the previous labels they overlap most, so block ids stay stable.

Determinism: every random draw comes from :func:`numpy.random.default_rng`
seeded with ``(seed, crc32(group name))`` -- a group's result does not depend on
the other groups -- and nothing iterates over an unordered set without
sorting or an explicit tie-break. The restart and iteration budgets are counts,
not seconds; ``time_limit`` is a safety stop that is logged when hit (only then
may two runs differ).

Infeasibility is explained, never hidden (:mod:`._diagnose`): a unit alone above the maximum, a
component (island) below the minimum, a group too small or too large for its
count, a free count for which no whole number of parts fits the bounds, more
components than parts -- each becomes a
:class:`~gridgeo.partition.rules.Violation` naming the units and the cause, and the
best partition found is still returned.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from gridgeo.errors import UsageError
from gridgeo.partition._comp import Comp, IArray
from gridgeo.partition._count import allocate, free_count
from gridgeo.partition._diagnose import GroupFacts, diagnose, explain
from gridgeo.partition._draw import Budget, draw
from gridgeo.partition._inputs import (
    BoundSpec,
    CountSpec,
    SizeSpec,
    check_free_count,
    read_bounds,
    read_counts,
    read_groups,
    read_similar,
    read_sizes,
    read_unit_mapping,
    read_units,
)
from gridgeo.partition._previous import from_previous
from gridgeo.partition.objective import Objective
from gridgeo.partition.result import Part, Result
from gridgeo.partition.rules import PartitionView, Validator, Violation, standard_rules
from gridgeo.partition.units import Units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Group:
    """One group as its solve sees it: name, index, free (not locked) units, bounds."""

    name: str
    index: int
    free: IArray  # global unit indices
    n_locked: int  # locked parts in the group
    lo: float
    hi: float


@dataclass
class _GroupOut:
    """What one group's solve gives: its parts and their labels, its diagnoses and statistics."""

    parts: list[IArray]  # global unit indices
    labels: list[Hashable | None]
    notes: list[Violation]
    info: dict[str, Any]


@dataclass
class _Drawn:
    """The partition as it is drawn: part of every unit (-1: not yet), label and lock of every part."""

    part: IArray
    labels: list[Hashable | None] = field(default_factory=list)
    locked: list[bool] = field(default_factory=list)
    notes: list[Violation] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, idx: IArray, label: Hashable | None, *, locked: bool) -> None:
        """A new part of units ``idx``."""
        self.part[idx] = len(self.labels)
        self.labels.append(label)
        self.locked.append(locked)

    def add_group(self, name: str, out: _GroupOut, *, seconds: float) -> None:
        """The parts, diagnoses and statistics of one solved group (``seconds`` it took)."""
        for idx, lab in zip(out.parts, out.labels, strict=True):
            self.add(idx, lab, locked=False)
        self.notes.extend(out.notes)
        self.info[name] = out.info
        self.info[name]["seconds"] = seconds

    def release_shared_labels(self) -> None:
        """A label kept by two parts (a previous part split across components): the larger keeps it."""
        labels = self.labels
        seen: dict[Hashable, int] = {}
        sizes_n = np.bincount(self.part, minlength=len(labels))
        for p in sorted(range(len(labels)), key=lambda q: (-int(sizes_n[q]), q)):
            lab = labels[p]
            if lab is None:
                continue
            if lab in seen and not self.locked[p]:
                labels[p] = None
            else:
                seen[lab] = p


class Model:
    """A partition problem: units, their adjacency, and the rules.

    Parameters
    ----------
    units
        A networkx graph (nodes = unit ids with attributes; edges may carry
        ``length``, the shared boundary in metres) or :class:`Units`.
    size
        Node attribute (or array) the bounds are on; ``None`` counts units.
    min_size, max_size
        Hard bounds on every part's size: a number, or a mapping group ->
        number (policies often differ between urban subdistricts and rural
        townships; a group missing from the mapping has no such bound).
        Either may be omitted.
    count
        Parts per group: an int (every group), a mapping group -> int, the
        name of a node attribute holding each group's count (the same on all
        its units), or ``None`` for free (see the module notes).
    group
        Node attribute (or array) naming each unit's group; parts never cross
        it. ``None``: one group.
    similar
        Node attributes whose values should not be mixed within a part: text
        columns are categorical, numeric columns are compared by variance.
    locks
        Unit id -> part label. Locked units keep their part exactly; the rest
        of the group is re-drawn around them. A locked part counts towards
        its group's count.
    previous
        Unit id -> part label of an earlier partition. The solve starts from
        it, repairs locally, and re-draws a component only when the repair
        fails and a fresh draw breaks fewer rules; ``Result.moved`` lists the
        units whose label changed.
    objective
        Soft objective weights and search budgets.

    Raises
    ------
    UsageError
        Missing attributes, negative or non-numeric sizes, bounds that make no
        sense (``min > max``), counts below 1, unknown locked units, a count
        column that varies within a group, free count with no bound.
    """

    def __init__(
        self,
        units: nx.Graph | Units,
        *,
        size: SizeSpec = None,
        min_size: BoundSpec = None,
        max_size: BoundSpec = None,
        count: CountSpec = None,
        group: str | ArrayLike | None = None,
        similar: Sequence[str] = (),
        locks: Mapping[Any, Any] | None = None,
        previous: Mapping[Any, Any] | None = None,
        objective: Objective | None = None,
    ) -> None:
        self.units = read_units(units)
        self.objective = objective or Objective()
        self.size_name, self.w = read_sizes(self.units, size)
        self.groups, self.gidx = read_groups(self.units, group)
        self.lo_g, self.hi_g = read_bounds(min_size, max_size, self.groups)
        self.counts = read_counts(count, self.units, self.groups, self.gidx)
        if self.counts is None:
            check_free_count(self.groups, self.lo_g, self.hi_g)
        self.similar = list(similar)
        self.cat_codes, self.num_vals = read_similar(self.units, self.similar)
        index = {uid: i for i, uid in enumerate(self.units.ids)}
        self.locks = read_unit_mapping(locks, index, "locked")
        self.previous = read_unit_mapping(previous, index, "previous", unknown_ok=True)

    # ----------------------------------------------------------------------------------
    def solve(self, seed: int = 0, time_limit: float | None = None, *, progress: bool = False) -> Result:
        """Partition the units; always returns the best partition found.

        Parameters
        ----------
        seed
            Seed of every random choice; the same seed gives the same result.
        time_limit
            Seconds, a safety stop (the budgets are counts, so results do not
            depend on the machine unless this is hit, which is logged).
        progress
            Show a tqdm progress bar over the groups.

        Returns
        -------
        Result
        """
        if time_limit is not None and not time_limit > 0:
            raise UsageError("time_limit must be > 0 seconds")
        t0 = time.perf_counter()
        deadline = t0 + time_limit if time_limit else math.inf
        u = self.units
        n = u.n
        A = csr_matrix((u.lengths, u.indices, u.indptr), shape=(n, n))
        drawn = _Drawn(np.full(n, -1, dtype=np.int64))
        locked_in_group = self._place_locks(drawn)
        bar = tqdm(total=n, desc="partition", unit="unit", disable=not progress, leave=False)
        for gi, g in enumerate(self.groups):
            free = np.flatnonzero((self.gidx == gi) & (drawn.part < 0))
            gsize = int((self.gidx == gi).sum())
            if len(free):
                now = time.perf_counter()
                rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(g.encode())]))
                budget = Budget(self.objective, rng, self._group_deadline(free, deadline, now))
                grp = _Group(g, gi, free, int(locked_in_group[gi]), self.lo_g[gi], self.hi_g[gi])
                drawn.add_group(g, self._solve_group(grp, A, budget), seconds=round(time.perf_counter() - now, 4))
            bar.update(gsize)
        bar.close()
        if time.perf_counter() > deadline:
            log.warning("time limit of %.1f s reached; the result may depend on the machine's speed", time_limit)
        return self._result(drawn, t0)

    def _place_locks(self, drawn: _Drawn) -> IArray:
        """The locked parts, kept as they are; returns the number of locked parts per group."""
        by_label: dict[Hashable, list[int]] = {}
        for i in sorted(self.locks):
            by_label.setdefault(self.locks[i], []).append(i)
        locked_in_group = np.zeros(len(self.groups), dtype=np.int64)
        for lab in sorted(by_label, key=lambda lb: (int(self.gidx[by_label[lb][0]]), str(lb))):
            idx = np.asarray(by_label[lab])
            drawn.add(idx, lab, locked=True)
            locked_in_group[int(np.bincount(self.gidx[idx]).argmax())] += 1
        return locked_in_group

    def _group_deadline(self, free: IArray, deadline: float, now: float) -> float:
        """A group's share of the time left, in proportion to its size (at least half a second)."""
        if deadline == math.inf:
            return math.inf
        total_w = float(self.w.sum())
        weight = float(self.w[free].sum() + len(free))
        share = now + max((deadline - now) * weight / max(total_w + self.units.n, 1.0), 0.5)
        return min(share, deadline)

    # ----------------------------------------------------------------------------------
    def _local(self, free: IArray, A: csr_matrix) -> tuple[csr_matrix, list[IArray]]:
        sub = A[free][:, free].tocsr()
        ncomp, lab = connected_components(sub, directed=False)
        comps = [np.flatnonzero(lab == c) for c in range(ncomp)]
        comps.sort(key=lambda c: int(c[0]))
        return sub, comps

    def _comp(self, sub: csr_matrix, grp: _Group, loc: IArray) -> Comp:
        glob = grp.free[loc]
        return Comp(sub[loc][:, loc].tocsr(), self.w[glob], [c[glob] for c in self.cat_codes],
                    [x[glob] for x in self.num_vals], lo=grp.lo, hi=grp.hi)

    def _solve_group(self, grp: _Group, A: csr_matrix, budget: Budget) -> _GroupOut:
        """Diagnose the group, share its count among its components, and solve each component."""
        free, lo = grp.free, grp.lo
        sub, comps = self._local(free, A)
        wc = [float(self.w[free[c]].sum()) for c in comps]
        facts = GroupFacts(name=grp.name, ids=self.units.ids, w=self.w, size_name=self.size_name, free=free,
                           comps=comps, wc=wc, lo=lo, hi=grp.hi, n_locked=grp.n_locked)
        k_group: int | None = None if self.counts is None else self.counts[grp.name]
        notes = diagnose(facts, k_group, self.gidx == grp.index)
        ks: list[int | None] = [None] * len(comps)
        if k_group is not None:
            ks = list(allocate(comps, wc, k_group - grp.n_locked, lo))
        info: dict[str, Any] = {"units": len(free), "components": len(comps), "locked_parts": grp.n_locked,
                                "restarts": 0, "redrawn": 0}
        parts: list[IArray] = []
        labels: list[Hashable | None] = []
        for c, k in zip(comps, ks, strict=True):
            comp = self._comp(sub, grp, c)
            prev = [self.previous.get(int(i)) for i in free[c].tolist()] if self.previous else None
            # provably infeasible: one draw and its repair give the best effort; restarts cannot help
            hopeless = k is not None and not (k * lo <= comp.W <= k * grp.hi)
            local, labs, cinfo = self._solve_comp(comp, k, budget, prev, hopeless=hopeless)
            for p, lab in enumerate(labs):
                parts.append(free[c[np.asarray(local) == p]] if comp.m > 1 else free[c])
                labels.append(lab)
            info["restarts"] += cinfo.get("restarts", 0)
            info["redrawn"] += cinfo.get("redrawn", 0)
        info["parts"] = len(parts) + grp.n_locked
        if k_group is None:
            info["count"] = "free"
        return _GroupOut(parts, labels, notes, info)

    def _solve_comp(self, comp: Comp, k: int | None, budget: Budget, prev: list[Hashable | None] | None, *,
                    hopeless: bool = False) -> tuple[list[int], list[Hashable | None], dict[str, Any]]:
        """One component: from the previous partition if there is one, else a fresh draw; then annealed."""
        obj = self.objective
        info: dict[str, Any] = {"restarts": 0}
        if comp.m == 1:
            lab = prev[0] if prev else None
            return [0], [lab], info
        if prev is not None and any(p is not None for p in prev):
            return from_previous(comp, k, budget, prev)
        if k is None:
            best = free_count(comp, budget, info)
        else:
            best = draw(comp, k, budget, restarts=0 if hopeless else obj.restarts, info=info)
        best.anneal(obj.iterations * comp.m, obj, budget.rng, budget.deadline)
        return best.part, [None] * best.P, info

    # ----------------------------------------------------------------------------------
    def _result(self, drawn: _Drawn, t0: float) -> Result:
        """Judge the partition by the hard rules, explain what fails, and gather the statistics."""
        u = self.units
        drawn.release_shared_labels()
        part, labels, locked = drawn.part, drawn.labels, drawn.locked
        view = PartitionView(ids=u.ids, part=part, n_parts=len(labels), weights=self.w, indptr=u.indptr,
                             indices=u.indices, group=self.gidx, groups=self.groups)
        validation = self._validator()(view)
        violations = explain(validation, locked, drawn.notes)
        parts = [Part(index=p, group=view.group_name(p), units=list(view.unit_ids(view.members[p])),
                      size=float(view.sizes[p]), label=labels[p], locked=locked[p]) for p in range(len(labels))]
        assignment = {u.ids[i]: int(part[i]) for i in range(u.n)}
        moved: list[Hashable] | None = None
        if self.previous:
            moved = [u.ids[i] for i in sorted(self.previous) if labels[int(part[i])] != self.previous[i]]
        stats = self._stats(view, drawn.info, t0)
        if moved is not None:
            stats["moved"] = len(moved)
        log.info("partition: %d units -> %d parts in %.2f s; %d violation(s)", u.n, len(labels),
                 stats["seconds"], len(violations))
        return Result(assignment=assignment, parts=parts, violations=violations,
                      satisfaction=validation.satisfaction(), stats=stats, moved=moved)

    def _validator(self) -> Validator:
        """The hard rules with this problem's bounds (per group, where given) and counts."""
        return Validator(standard_rules(lo={g: v for g, v in zip(self.groups, self.lo_g, strict=True) if v > 0},
                                        hi={g: v for g, v in zip(self.groups, self.hi_g, strict=True)
                                            if math.isfinite(v)},
                                        counts=self.counts, column=self.size_name))

    def _stats(self, view: PartitionView, info: dict[str, Any], t0: float) -> dict[str, Any]:
        """Timings, counts, the cut length, part sizes, and the per-group statistics ``info``."""
        u, part = self.units, view.part
        cut = float(u.lengths[part[np.repeat(np.arange(u.n), np.diff(u.indptr))] != part[u.indices]].sum() / 2)
        sizes = view.sizes
        return {
            "seconds": round(time.perf_counter() - t0, 3),
            "units": u.n,
            "parts": view.n_parts,
            "groups": len(self.groups),
            "cut_length": round(cut, 3),
            "size_min": float(sizes.min()) if len(sizes) else None,
            "size_max": float(sizes.max()) if len(sizes) else None,
            "size_mean": float(sizes.mean()) if len(sizes) else None,
            "restarts": int(sum(v.get("restarts", 0) for v in info.values())),
            "redrawn_components": int(sum(v.get("redrawn", 0) for v in info.values())),
            "by_group": info,
        }
