"""Grids from whole villager groups (``[grids] groups = "merge"``; private to :mod:`gridgeo.county.village`).

Where villager groups are small, counties merge whole groups into one grid
rather than cut them: a group is a community with its own leader and its own
register, and a grid line through it splits both. So the units of this
partition are the groups themselves:

1. A group alone above the grid maximum is split (the only cut through a
   group), by the partition engine on its own street faces, into as many
   pieces as its households need (:func:`gridgeo.county._parts.part_count`);
   each piece is a grid of its own and is reported.
2. The other groups become one unit each of a quotient graph (two groups are
   neighbours where their faces share an edge; the shared length is the
   boundary length the compactness objective sees), and the engine
   partitions that graph within the grid bounds. With a minimum and no
   target the count is free: as many grids as the minimum allows (max-p),
   so a group that is big enough on its own stays alone and only the small
   ones are merged; with a target count (``[targets] grids``) the village's
   share of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix

from gridgeo.county._parts import Adjacency, part_count, sub_units
from gridgeo.partition import Model, Objective, Units

IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

__all__ = ["GroupGrids", "merge_groups"]


@dataclass
class GroupGrids:
    """The grids of a village made of whole groups.

    ``parts`` holds, per grid, the groups it is made of (one group for a
    piece of a split group) and its units (positions in the caller's
    ``units``); ``split`` maps a split group to its number of pieces.
    """

    parts: list[tuple[tuple[int, ...], IArray]] = field(default_factory=list)
    split: dict[int, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def quotient_units(adj: Adjacency, units: IArray, cls: IArray, n: int) -> Units:
    """The adjacency of ``n`` classes of units (class ``cls[i]`` for unit ``units[i]``), lengths summed."""
    pos = np.full(len(adj.indptr) - 1, -1, dtype=np.int64)
    pos[units] = cls
    src = np.repeat(np.arange(len(adj.indptr) - 1), np.diff(adj.indptr))
    a, b = pos[src], pos[adj.indices]
    keep = (a >= 0) & (b >= 0) & (a != b)
    m = coo_matrix((adj.lengths[keep], (a[keep], b[keep])), shape=(n, n)).tocsr()
    m.sum_duplicates()
    m.sort_indices()
    return Units.from_arrays(m.indptr, m.indices, ids=list(range(n)), lengths=m.data)


@dataclass(frozen=True)
class _Draw:
    """What every engine run of one village shares: the unit graph, sizes, bounds, search and seeds."""

    adj: Adjacency
    size: FArray
    bounds: tuple[float, float]
    objective: Objective
    seed: Callable[[str], int]


def merge_groups(adj: Adjacency, units: IArray, group_of: IArray, size: FArray, *, bounds: tuple[float, float],
                 count: int | None, seed: Callable[[str], int], objective: Objective,
                 previous: dict[int, str] | None = None) -> GroupGrids:
    """Grids of whole groups (module notes): ``units`` the village's base units, ``group_of`` each one's
    group, ``size`` the households of every unit of the village, ``seed(name)`` a stage's seed,
    ``previous`` unit -> the earlier build's grid (dynamic adjustment)."""
    d = _Draw(adj, size, bounds, objective, seed)
    out = GroupGrids()
    weight = np.bincount(group_of, weights=size[units])
    present = np.unique(group_of).tolist()
    whole = [g for g in present if weight[g] <= bounds[1]]
    for g in (g for g in present if weight[g] > bounds[1]):
        _split_group(d, units[group_of == g], g, out)
    if whole:
        inside = np.isin(group_of, whole)
        _merge_whole(d, units[inside], group_of[inside], whole, out,
                     count=count - len(out.parts) if count else None, previous=previous)
    out.parts.sort(key=lambda p: (p[0], int(p[1][0])))
    return out


def _split_group(d: _Draw, members: IArray, g: int, out: GroupGrids) -> None:
    """A group alone above the maximum, cut by the engine into the pieces its households need."""
    lo, hi = d.bounds
    k = min(part_count(float(d.size[members].sum()), lo, hi), len(members))
    if k <= 1:  # one face heavier than the maximum: nothing to cut along
        out.parts.append(((g,), members))
        out.split[g] = 1
        return
    res = Model(sub_units(d.adj, members), size=d.size[members], min_size=lo or None, max_size=hi, count=k,
                objective=d.objective).solve(seed=d.seed(f"/split/{g}"))
    by: dict[int, list[int]] = {}
    for uid, part in res.assignment.items():
        by.setdefault(int(part), []).append(int(cast(int, uid)))
    for part in sorted(by):
        out.parts.append(((g,), np.asarray(sorted(by[part]), dtype=np.int64)))
    out.split[g] = len(by)
    out.violations += [v.rule for v in res.violations]


def _merge_whole(d: _Draw, mine: IArray, group_of: IArray, whole: list[int], out: GroupGrids, *,
                 count: int | None, previous: dict[int, str] | None) -> None:
    """The groups that fit (``mine``: their units, ``group_of`` each one's group), partitioned whole
    (the quotient graph of the module notes)."""
    lo, hi = d.bounds
    cls_of = {g: i for i, g in enumerate(whole)}
    cls = np.asarray([cls_of[g] for g in group_of.tolist()], dtype=np.int64)
    q = quotient_units(d.adj, mine, cls, len(whole))
    w = np.bincount(cls, weights=d.size[mine], minlength=len(whole))
    k = None if count is None else int(min(max(count, 1), len(whole)))
    prev = _majority(previous, mine, cls) if previous else None
    if prev and k is None:  # the engine keeps an earlier count when re-drawing: the bounds' own count first
        k = len(Model(q, size=w, min_size=lo or None, max_size=hi, objective=d.objective)
                .solve(seed=d.seed("/groups")).parts)
    res = Model(q, size=w, min_size=lo or None, max_size=hi, count=k, objective=d.objective,
                previous=prev).solve(seed=d.seed("/groups"))
    by: dict[int, list[int]] = {}
    for c, part in res.assignment.items():
        by.setdefault(int(part), []).append(whole[int(cast(int, c))])
    for part in sorted(by):
        groups = tuple(sorted(by[part]))
        out.parts.append((groups, np.sort(mine[np.isin(group_of, groups)])))
    out.violations += [v.rule for v in res.violations]


def _majority(previous: dict[int, str], units: IArray, cls: IArray) -> dict[int, str] | None:
    """Class -> the earlier grid most of its units lay in (ties: the smallest code)."""
    tally: dict[int, dict[str, int]] = {}
    for u, c in zip(units.tolist(), cls.tolist(), strict=True):
        if u in previous:
            t = tally.setdefault(c, {})
            t[previous[u]] = t.get(previous[u], 0) + 1
    return {c: min(t, key=lambda k: (-t[k], k)) for c, t in tally.items()} or None
