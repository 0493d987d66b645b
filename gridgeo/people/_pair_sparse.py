"""The assignment of a large scope: a near-optimal start on a sparse graph, then cycle cancelling to the optimum.

Why: a village of 1,300 households and 85 members is a 1,300 x 1,700 slot matrix, and the dense
:func:`scipy.optimize.linear_sum_assignment` takes about 2 s on it, because its slots repeat (many equal
columns). Nearly every household of an optimum goes to one of its few nearest members, so a start is
solved on the graph of each household's ``k`` nearest members and each member's nearest households
(:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`, LAPJVsp), in a few hundredths of a
second.

Why the result is still exact: an assignment is a min-cost flow if and only if its residual network has
no negative cycle (the classical optimality condition), and cancelling negative cycles until there is
none is the classical cycle-cancelling algorithm (Klein 1967). The residual network of an assignment
compresses to the members plus the sink: moving one household from member ``a`` to ``b`` costs
``min over households u at a of d(u, b) - d(u, a)``, and the arcs to and from the sink carry the owed
bonus. Bellman-Ford over those few nodes finds a negative cycle; its moves are made, and again, until none
is left: the assignment is then optimal on the full graph. Each cancel lowers the cost, so it ends; a cap
on the rounds hands the scope to the dense assignment instead.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]
BArray = NDArray[np.bool_]

#: metres: a residual cycle shorter than this is no improvement (distances are written to 0.1 m)
TOLERANCE = 1e-3
#: cycles cancelled at most per scope before the dense assignment takes over
MAX_ROUNDS = 2000


def sparse_assign(sub: FArray, slot_m: IArray, owed: BArray, bonus: float, *, k: int) -> tuple[IArray, IArray] | None:
    """Units (rows of ``sub``, units x members) to slots (member ``slot_m``): a sparse start, then cycles cancelled.

    Returns the unit rows and their slots, or None when the sparse graph has no complete matching or the
    cancelling needs more rounds than :data:`MAX_ROUNDS` (see the module notes). Needs every unit to be
    matched (units <= slots).
    """
    start = _sparse_start(sub, slot_m, owed, bonus, k=k)
    if start is None:
        return None
    unit_m = _cancel_cycles(sub, start, slot_m, owed, bonus)
    if unit_m is None:
        return None
    return _to_slots(unit_m, slot_m, owed)


def _sparse_start(sub: FArray, slot_m: IArray, owed: BArray, bonus: float, *, k: int) -> IArray | None:
    """The member of each unit in the optimum of the sparse graph (None: no complete matching on it)."""
    n_u, n_m = sub.shape
    ok = np.zeros((n_u, n_m), dtype=bool)
    near = np.argpartition(sub, k - 1, axis=1)[:, :k] if k < n_m else np.tile(np.arange(n_m), (n_u, 1))
    ok[np.arange(n_u)[:, None], near] = True
    per = min(n_u, 2 * int(np.bincount(slot_m, minlength=n_m).max()))  # each member's nearest households
    top = np.argpartition(sub, per - 1, axis=0)[:per, :] if per < n_u else np.tile(np.arange(n_u)[:, None], n_m)
    ok[top, np.arange(n_m)[None, :]] = True
    ok &= np.isfinite(sub)
    r, c = np.nonzero(ok[:, slot_m])
    w = sub[r, slot_m[c]] - bonus * owed[c] + bonus + 1.0  # positive; a constant for every unit changes nothing
    try:
        rows, cols = min_weight_full_bipartite_matching(sp.csr_matrix((w, (r, c)), shape=(n_u, len(slot_m))))
    except ValueError:  # no complete matching on the sparse graph
        return None
    if len(rows) < n_u:
        return None
    unit_m = np.empty(n_u, dtype=np.int64)
    unit_m[rows] = slot_m[cols]
    return unit_m


def _to_slots(unit_m: IArray, slot_m: IArray, owed: BArray) -> tuple[IArray, IArray]:
    """Units to slots of their members, owed slots first (what the dense assignment would return)."""
    order = np.lexsort((~owed, slot_m))  # each member's slots, owed first
    first = np.searchsorted(slot_m[order], np.arange(int(slot_m.max()) + 1))
    by_m = np.argsort(unit_m, kind="stable")
    rank = np.arange(len(unit_m)) - np.searchsorted(unit_m[by_m], unit_m[by_m])
    cols = np.empty(len(unit_m), dtype=np.int64)
    cols[by_m] = order[first[unit_m[by_m]] + rank]
    return np.arange(len(unit_m), dtype=np.int64), cols


def _residual(sub: FArray, unit_m: IArray, cap: IArray, n_owed: IArray, bonus: float) -> FArray:
    """The compressed residual graph: members and the sink (the last node)."""
    n_m = sub.shape[1]
    load = np.bincount(unit_m, minlength=n_m)
    w = np.full((n_m + 1, n_m + 1), np.inf)
    reduced = sub - sub[np.arange(len(unit_m)), unit_m][:, None]  # move a unit from its member to another
    by_m = np.argsort(unit_m, kind="stable")
    has = np.flatnonzero(load > 0)
    w[has, :n_m] = np.minimum.reduceat(reduced[by_m], np.searchsorted(unit_m[by_m], has), axis=0)
    t = n_m  # the sink: a member taking one more household (a -> t), or one fewer (t -> a)
    w[:n_m, t] = np.where(load < n_owed, -bonus, np.where(load < cap, 0.0, np.inf))
    w[t, :n_m] = np.where(load > n_owed, 0.0, np.where(load > 0, bonus, np.inf))
    np.fill_diagonal(w, np.inf)
    return w


def _mover(sub: FArray, unit_m: IArray, a: int, b: int) -> int:
    """The unit of member ``a`` that moves to ``b`` most cheaply (the one the residual arc ``a -> b`` stands for)."""
    idx = np.flatnonzero(unit_m == a)
    return int(idx[np.argmin(sub[idx, b] - sub[idx, a])])


def _negative_cycle(w: FArray) -> list[int] | None:
    """A cycle of negative cost in the dense graph ``w`` (Bellman-Ford from every node at once), or None."""
    v = len(w)
    dist = np.zeros(v)
    pred = np.full(v, -1, dtype=np.int64)
    changed = -1
    for _ in range(v):
        cand = dist[:, None] + w
        best = np.argmin(cand, axis=0)
        val = cand[best, np.arange(v)]
        better = val < dist - TOLERANCE
        if not better.any():
            return None
        dist = np.where(better, val, dist)
        pred = np.where(better, best, pred)
        changed = int(np.flatnonzero(better)[0])
    x = changed
    for _ in range(v):  # walk back into the cycle
        x = int(pred[x])
        if x < 0:
            raise _NoCycleError
    cycle = [x]
    y = int(pred[x])
    while y != x and len(cycle) <= v:
        if y < 0:
            raise _NoCycleError
        cycle.append(y)
        y = int(pred[y])
    cycle.reverse()
    cost = sum(w[a, b] for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True))
    if y != x or not cost < -TOLERANCE:
        raise _NoCycleError  # the predecessors did not close a negative cycle: let the dense assignment decide
    return cycle


class _NoCycleError(Exception):
    """Bellman-Ford saw an improvement but its predecessors gave no negative cycle (not expected)."""


def _cancel_cycles(sub: FArray, unit_m: IArray, slot_m: IArray, owed: BArray, bonus: float) -> IArray | None:
    """Cancel negative residual cycles until none is left (optimal), or None after :data:`MAX_ROUNDS`."""
    n_m = sub.shape[1]
    cap = np.bincount(slot_m, minlength=n_m)
    n_owed = np.bincount(slot_m[owed], minlength=n_m)
    unit_m = unit_m.copy()
    for _ in range(MAX_ROUNDS):
        w = _residual(sub, unit_m, cap, n_owed, bonus)
        try:
            cycle = _negative_cycle(w)
        except _NoCycleError:
            return None
        if cycle is None:
            return unit_m
        moves = [(a, b) for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True) if a < n_m and b < n_m]
        units = [_mover(sub, unit_m, a, b) for a, b in moves]  # chosen before any moves: each at its own tail
        for u, (_a, b) in zip(units, moves, strict=True):
            unit_m[u] = b
    return None


def certified(sub: FArray, unit_m: IArray, slot_m: IArray, owed: BArray, bonus: float) -> bool:
    """True when the assignment ``unit_m`` (member of each unit) has no negative residual cycle (is optimal)."""
    n_m = sub.shape[1]
    w = _residual(sub, unit_m, np.bincount(slot_m, minlength=n_m), np.bincount(slot_m[owed], minlength=n_m), bonus)
    try:
        return _negative_cycle(w) is None
    except _NoCycleError:
        return False
