"""Re-drawing from a previous partition: move as few units as the rules allow.

Each component starts from the earlier parts: every previous label keeps its largest
connected piece, new and cut-off units join the neighbouring part they share most boundary
with, and parts are merged or split only to meet a fixed count. That start is repaired
locally and annealed with a high price (:attr:`~gridgeo.partition.Objective.stay`) on every
unit moved. Only when the repair leaves violations and a fresh draw breaks fewer rules is
the component re-drawn; fresh parts then inherit the previous labels they overlap most, so
block ids stay stable.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridgeo.partition._comp import EPS, Comp
from gridgeo.partition._draw import Budget, draw
from gridgeo.partition._search import Search
from gridgeo.partition._tree import bisect

log = logging.getLogger(__name__)

Labels = list[Hashable | None]


@dataclass
class _Start:
    """The previous partition carried over to one component: part of every unit, label of every part."""

    part: list[int]
    labs: Labels


def from_previous(comp: Comp, k: int | None, budget: Budget,
                  prev: Labels) -> tuple[list[int], Labels, dict[str, Any]]:
    """Start from the previous labels, repair locally; re-draw only when that breaks fewer rules.

    Returns the part of every unit, the label of every part (``None`` for a new part) and the
    restart counts.
    """
    info: dict[str, Any] = {"restarts": 0, "redrawn": 0}
    start = _start(comp, prev)
    if k is not None:
        _merge_down(comp, start, k)
        _split_up(comp, start, k, budget.rng)
    search = Search(comp, start.part, len(start.labs), stay=list(start.part))
    search.repair(budget.deadline)
    labs = start.labs
    if not search.solved():
        search, labs = _redraw_if_better(comp, search, labs, budget, k=k, info=info)
    search.anneal(budget.objective.iterations * comp.m, budget.objective, budget.rng, budget.deadline)
    return search.part, labs, info


def _start(comp: Comp, prev: Labels) -> _Start:
    """Every previous label keeps its largest piece; the other units join their neighbours' parts."""
    part = [-1] * comp.m
    labs: Labels = []
    groups: dict[Hashable, list[int]] = {}
    for i, lab in enumerate(prev):
        if lab is not None:
            groups.setdefault(lab, []).append(i)
    for lab in sorted(groups, key=lambda lb: groups[lb][0]):
        members = set(groups[lab])
        pieces = _pieces(members, comp.nbrs)
        keep = max(pieces, key=lambda pc: (sum(comp.wl[x] for x in pc), -min(pc)))
        for x in keep:
            part[x] = len(labs)
        labs.append(lab)
    _join_neighbours(comp, part)
    return _Start(part, labs)


def _join_neighbours(comp: Comp, part: list[int]) -> None:
    """New and cut-off units join the neighbouring part they share most boundary with (repeated to a fixpoint)."""
    nbrs, nlen = comp.nbrs, comp.nlen
    changed = True
    while changed:
        changed = False
        for x in range(comp.m):
            if part[x] >= 0:
                continue
            shared: dict[int, float] = {}
            for y, L in zip(nbrs[x], nlen[x], strict=True):
                if part[y] >= 0:
                    shared[part[y]] = shared.get(part[y], 0.0) + L
            if shared:
                part[x] = max(sorted(shared), key=lambda p: shared[p])
                changed = True


def _merge_down(comp: Comp, start: _Start, k: int) -> None:
    """While there are more than ``k`` parts, merge the smallest part into its smallest neighbour."""
    n_parts = len(start.labs)
    while n_parts > k:
        s = Search(comp, start.part, n_parts)
        small = min(range(n_parts), key=lambda p: (s.size[p], p))
        adj = s.part_adjacency()[small]
        into = min(adj, key=lambda p: (s.size[p], p))
        start.part = [q - 1 if q > small else q for q in (into if p == small else p for p in start.part)]
        start.labs.pop(small)
        n_parts -= 1


def _split_up(comp: Comp, start: _Start, k: int, rng: np.random.Generator) -> None:
    """While there are fewer than ``k`` parts, split the largest part in two (a new, unlabelled part)."""
    n_parts = len(start.labs)
    part = start.part
    while n_parts < k:
        s = Search(comp, part, n_parts)
        big = max(range(n_parts), key=lambda p: (s.size[p], -p))
        nodes = np.asarray(sorted(s.mem[big]), dtype=np.int64)
        if len(nodes) < 2:
            break
        side, _ = bisect(comp, nodes, 2, rng, max_trees=24)
        for x in nodes[side].tolist():
            part[x] = n_parts
        start.labs.append(None)
        n_parts += 1


def _redraw_if_better(comp: Comp, kept: Search, labs: Labels, budget: Budget, *, k: int | None,
                      info: dict[str, Any]) -> tuple[Search, Labels]:
    """A fresh draw instead of the repaired start when it breaks fewer rules; it inherits the labels."""
    stay = kept.stay
    assert stay is not None
    kk = k if k is not None else kept.P
    fresh = draw(comp, kk, budget, restarts=budget.objective.restarts, info=info, stay=None)
    if not fresh.violation() < kept.violation() - EPS:
        return kept, labs
    info["redrawn"] = 1
    log.info("repairing the previous partition left violations; a fresh draw is better")
    new_labs = _match_labels(fresh.part, fresh.P, stay, labs)
    fresh.stay = [_stay_index(stay[x], labs, new_labs) for x in range(comp.m)]
    return fresh, new_labs


def _pieces(members: set[int], nbrs: list[list[int]]) -> list[list[int]]:
    """Connected pieces of a set of units, each sorted, in order of their smallest unit."""
    left = set(members)
    out: list[list[int]] = []
    for start in sorted(members):
        if start not in left:
            continue
        left.discard(start)
        piece = [start]
        queue = deque([start])
        while queue:
            x = queue.popleft()
            for y in nbrs[x]:
                if y in left:
                    left.discard(y)
                    piece.append(y)
                    queue.append(y)
        out.append(sorted(piece))
    return out


def _match_labels(part: list[int], P: int, old: list[int], old_labels: Labels) -> Labels:
    """Give each new part the old label it overlaps most (greedy by overlap, each label once)."""
    overlap: dict[tuple[int, int], int] = {}
    for x, p in enumerate(part):
        if old[x] >= 0:
            overlap[(p, old[x])] = overlap.get((p, old[x]), 0) + 1
    out: Labels = [None] * P
    taken: set[int] = set()
    for (p, q), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if out[p] is None and q not in taken and old_labels[q] is not None:
            out[p] = old_labels[q]
            taken.add(q)
    return out


def _stay_index(old_part: int, old_labels: Labels, new_labels: Labels) -> int:
    """The new part index that carries the label of ``old_part`` (-1 if none)."""
    if old_part < 0:
        return -1
    lab = old_labels[old_part]
    if lab is None:
        return -1
    for i, nl in enumerate(new_labels):
        if nl == lab:
            return i
    return -1
