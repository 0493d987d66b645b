"""One scope's pairing: existing pairs kept, capacities balanced, then an exact min-cost assignment.

Why this method
---------------
Pairing households with members under capacities is a transportation problem (a min-cost flow from
households to members). With every member's capacity written out as that many *slots*, it is an
assignment problem, which :func:`scipy.optimize.linear_sum_assignment` solves exactly (a shortest
augmenting path method, Crouse 2016) in C. The slot problem is integral, so the optimum of the
slots is an optimum of the flow: no household is split, no capacity exceeded, and the total distance is
the least any assignment within the capacities has. A scope is one grid (or village): a few hundred
households and a handful of members, so the matrices are small (the cost grows as the cube of the
households of one scope). Larger scopes (a village) are solved first on each household's few nearest
members and certified optimal by a negative-cycle check (:mod:`gridgeo.people._pair_sparse`), falling
back to the dense matrix when the check fails.

Balance is a capacity, so the assignment stays exact. The fair share ``L`` of a scope is the water
level of its members' own capacities: the least whole ``L`` with ``sum(min(capacity_i, L)) >= demand``
(members with no capacity of their own count as unlimited; members who can reach no household of the
scope do not count). Each member may then take ``min(capacity_i, L + max(1, ceil(slack * L)))``: nobody
ends far above the others unless their own capacities say so (a member with capacity 3 beside members
with 30 takes 3, and the others share the rest). Nobody ends far below either: the first
``min(effective, L - max(1, ceil(slack * L)))`` slots of each member are *owed* and carry a bonus ``B``
larger than any assignment's whole distance, so the optimum fills every owed slot it can reach before it
shortens walks (a member at the edge of the grid still gets their share, at the cost of a longer walk).

Balance never costs a pairing: households the balanced capacities leave over go, in a second round of
the same assignment, to members with room in their own capacity (counted as paired beyond the
balance). Unreachable pairs cost ``M``, larger than any assignment's whole finite cost and bonus, so the optimum
first pairs as many households as can be paired, then fills the owed slots, then minimises the distance;
a household left with ``M`` is unpaired. Kept pairs are counted against the member's own capacity first
(nearest first), and their households against the new slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from gridgeo.people._pair_sparse import sparse_assign

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]
BArray = NDArray[np.bool_]

#: slot matrices up to this many entries go straight to the dense assignment (a grid: about 150 x 190)
DENSE_MAX = 250_000
#: nearest members per household in the first sparse try (doubled while not certified)
SPARSE_K = 8


@dataclass
class ScopeResult:
    """What one scope gave, in the scope's local row numbers.

    ``pair_*``: one entry per (household row, member) with the households paired and whether it was
    kept; ``left_*``: households left unpaired and why (``capacity`` or ``unreachable``);
    ``over_*``: existing pairs not kept because the member was full; ``effective``: each member's
    capacity after balancing; ``beyond``: households paired in the second round, past the balance.
    """

    pair_h: IArray
    pair_m: IArray
    pair_n: IArray
    pair_kept: BArray
    left_h: IArray
    left_n: IArray
    left_reason: NDArray[np.object_]
    over_h: IArray
    over_m: IArray
    over_n: IArray
    effective: IArray
    level: int
    beyond: int = 0  # households paired beyond the balanced capacities (in the second round)


def fair_level(capacity: IArray, demand: int) -> int:
    """The least whole ``L`` with ``sum(min(capacity, L)) >= demand`` (``capacity < 0``: unlimited).

    When the capacities cannot meet the demand, the largest capacity (everyone at their own).
    """
    cap = np.where(capacity < 0, np.iinfo(np.int64).max, capacity)
    if len(cap) == 0 or demand <= 0:
        return 0
    if int(np.minimum(cap, demand).sum()) < demand:
        return int(cap.max())
    lo, hi = 0, int(demand)
    while lo < hi:
        mid = (lo + hi) // 2
        if int(np.minimum(cap, mid).sum()) >= demand:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _keep(dist: FArray, count: IArray, capacity: IArray, kept: tuple[IArray, IArray, IArray]
          ) -> tuple[IArray, IArray, IArray, IArray, IArray, IArray]:
    """Existing pairs kept within each member's own capacity and each row's households, nearest first.

    Returns the kept (h, m, n) and the pairs over capacity (h, m, n).
    """
    kh, km, kn = kept
    if len(kh) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, e, e, e
    d = dist[kh, km]
    order = np.lexsort((kh, d, km))
    room = np.where(capacity < 0, np.iinfo(np.int64).max, capacity).copy()
    left = count.copy()
    out: list[tuple[int, int, int]] = []
    over: list[tuple[int, int, int]] = []
    for k in order.tolist():
        h, m, n = int(kh[k]), int(km[k]), int(kn[k])
        take = int(min(n, room[m], left[h]))
        if take:
            out.append((h, m, take))
            room[m] -= take
            left[h] -= take
        if n - take and left[h]:  # not kept for want of room (a pair naming more households than the row has: ignored)
            over.append((h, m, int(min(n - take, left[h]))))
    a = np.array(out, dtype=np.int64).reshape(-1, 3)
    b = np.array(over, dtype=np.int64).reshape(-1, 3)
    return a[:, 0], a[:, 1], a[:, 2], b[:, 0], b[:, 1], b[:, 2]


def effective_capacity(capacity: IArray, level: int, slack: float | None, useful: BArray, demand: int
                       ) -> tuple[IArray, IArray]:
    """Each member's capacity after balancing (no more than the scope's demand; 0 for useless members), and
    the households owed to each (the lower side of the balance; 0 without balancing)."""
    own = np.where(capacity < 0, demand, np.minimum(capacity, demand))
    owed = np.zeros(len(own), dtype=np.int64)
    if slack is not None:
        room = max(1, int(np.ceil(slack * level)))
        own = np.minimum(own, level + room)
        owed = np.minimum(own, max(level - room, 0))
    return np.where(useful, own, 0).astype(np.int64), np.where(useful, owed, 0).astype(np.int64)


def solve_scope(dist: FArray, count: IArray, capacity: IArray, kept: tuple[IArray, IArray, IArray], *,
                slack: float | None, rng: np.random.Generator) -> ScopeResult:
    """Pair one scope's households (rows of ``dist``) with its members (columns); see the module notes.

    Parameters
    ----------
    dist
        ``(households, members)`` metres, ``inf`` where unreachable.
    count
        Households of each row.
    capacity
        Each member's own capacity (``-1``: none).
    kept
        Existing pairs (row, member, households), already checked for scope.
    slack
        Balance: a member takes at most ``L + max(1, ceil(slack * L))``; None: own capacities only.
    rng
        Breaks ties between equal-cost assignments (rows and slots are shuffled before solving); the
        total distance is the same for every seed.
    """
    kh, km, kn, oh, om, on = _keep(dist, count, capacity, kept)
    useful = np.asarray(np.isfinite(dist).any(axis=0), dtype=bool)
    demand = int(count.sum())
    level = fair_level(capacity[useful], demand)
    eff, owed = effective_capacity(capacity, level, slack, useful, demand)
    kept_m = np.bincount(km, weights=kn, minlength=len(capacity)).astype(np.int64)
    rest = count - np.bincount(kh, weights=kn, minlength=len(count)).astype(np.int64)
    n_owed = np.maximum(owed - kept_m, 0)
    n_free = np.maximum(eff - kept_m, 0) - n_owed
    slots = np.r_[np.repeat(np.arange(len(capacity)), n_owed), np.repeat(np.arange(len(capacity)), n_free)]
    is_owed = np.r_[np.ones(int(n_owed.sum()), bool), np.zeros(int(n_free.sum()), bool)]
    units = np.repeat(np.arange(len(count)), rest)
    reach = np.asarray(np.isfinite(dist).any(axis=1), dtype=bool)
    ah, am = _assign(dist, _reaching(dist, units, slots), slots, is_owed, rng)
    left = rest - np.bincount(ah, minlength=len(count))
    beyond = 0
    if slack is not None and left.any():  # balance never leaves a household unpaired: own capacities decide
        own = np.where(useful, np.where(capacity < 0, demand, capacity), 0)
        room = np.maximum(own - kept_m - np.bincount(am, minlength=len(capacity)), 0)
        more = np.repeat(np.arange(len(capacity)), room)
        bh, bm = _assign(dist, _reaching(dist, np.repeat(np.arange(len(count)), left), more), more,
                         np.zeros(len(more), dtype=bool), rng)
        ah, am, beyond = np.r_[ah, bh], np.r_[am, bm], len(bh)
        left = rest - np.bincount(ah, minlength=len(count))
    lh = np.flatnonzero(left > 0)
    reasons = np.where(reach[lh], "capacity", "unreachable").astype(object)
    ph, pm, pn, pk = _pairs(kh, km, kn, ah.astype(np.int64), am.astype(np.int64))
    return ScopeResult(ph, pm, pn, pk, lh, left[lh].astype(np.int64), reasons, oh, om, on, eff, level, beyond)


def _reaching(dist: FArray, units: IArray, slots: IArray) -> IArray:
    """The units that can reach a member with a slot (the others cannot be paired in this round)."""
    if len(slots) == 0 or len(units) == 0:
        return units[:0]
    ok = np.asarray(np.isfinite(dist[:, np.unique(slots)]).any(axis=1), dtype=bool)
    return units[ok[units]]


def _assign(dist: FArray, units: IArray, slots: IArray, owed: BArray, rng: np.random.Generator
            ) -> tuple[IArray, IArray]:
    """The min-cost assignment of household units to member slots; only finite pairs are returned.

    Owed slots carry the bonus ``B`` and unreachable pairs the cost ``M`` (see the module notes).
    """
    if len(units) == 0 or len(slots) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e
    quick = _nearest_fits(dist, units, slots, owed, rng)
    if quick is not None:
        return quick
    pre_u, pre_m, units, slots, owed = _take_to_unbounded(dist, units, slots, owed, rng)
    if len(pre_u):
        au, am = _assign(dist, units, slots, owed, rng) if len(units) else (units, units)
        return np.r_[pre_u, au].astype(np.int64), np.r_[pre_m, am].astype(np.int64)
    u = units[rng.permutation(len(units))]
    ps = rng.permutation(len(slots))
    s, o = slots[ps], owed[ps]
    mem, slot_m = np.unique(s, return_inverse=True)
    sub = dist[np.ix_(u, mem)]
    finite = np.isfinite(sub)
    bonus = (float(sub[finite].max()) + 1.0) * (min(len(u), len(s)) + 1) if finite.any() else 1.0
    if len(u) <= len(s) and len(u) * len(s) > DENSE_MAX:
        k = SPARSE_K
        while k < len(mem):
            found = sparse_assign(sub, slot_m.ravel(), o, bonus, k=k)
            if found is not None:
                return u[found[0]].astype(np.int64), s[found[1]].astype(np.int64)
            k *= 2
    return _dense(sub, slot_m.ravel(), o, bonus, u=u, s=s)


def _dense(sub: FArray, slot_m: IArray, owed: BArray, bonus: float, *, u: IArray, s: IArray
           ) -> tuple[IArray, IArray]:
    """The full slot matrix solved by :func:`scipy.optimize.linear_sum_assignment`; finite pairs returned."""
    cost = sub[:, slot_m]
    finite = np.isfinite(cost)
    cost = np.where(owed[None, :], cost - bonus, cost)
    big = 2.0 * bonus * (min(len(u), len(s)) + 1)
    cost = np.where(finite, cost, big)
    r, c = linear_sum_assignment(cost)
    ok = finite[r, c]
    return u[r[ok]].astype(np.int64), s[c[ok]].astype(np.int64)


def _nearest_fits(dist: FArray, units: IArray, slots: IArray, owed: BArray, rng: np.random.Generator
                  ) -> tuple[IArray, IArray] | None:
    """Every unit to its nearest member with slots, when that fits every member's slots and fills the owed.

    Then it is optimal (each unit at its least cost, the owed bonus all earned), and far cheaper than the
    assignment when capacities do not bind (no balancing, large capacities). None when it does not fit.
    Ties go to the member first in a seeded order, as in the assignment.
    """
    mem, n_slots = np.unique(slots, return_counts=True)
    n_owed = np.bincount(np.searchsorted(mem, slots[owed]), minlength=len(mem))
    order = rng.permutation(len(mem))
    sub = dist[np.ix_(units, mem[order])]
    near = np.argmin(sub, axis=1)
    if not np.isfinite(sub[np.arange(len(units)), near]).all():
        return None
    load = np.bincount(order[near], minlength=len(mem))
    if (load > n_slots).any() or (load < n_owed).any():
        return None
    return units.astype(np.int64), mem[order[near]].astype(np.int64)


def _take_to_unbounded(dist: FArray, units: IArray, slots: IArray, owed: BArray, rng: np.random.Generator
                       ) -> tuple[IArray, IArray, IArray, IArray, BArray]:
    """Units whose nearest member has a slot for every unit go to that member at once (no owed slots only).

    Exact by exchange: in any optimum such a unit could move to that member (who has room for it) at no
    extra cost, and its old member only gains room; with owed slots that could starve a member, so it is
    not done then. Why: without balancing, members without a capacity of their own have as many slots as
    the scope has households, and the assignment matrix would grow with their square. Returns the units
    taken and their members, and the units and slots left (those members keep one slot per unit left).
    """
    e = np.zeros(0, dtype=np.int64)
    if owed.any():
        return e, e, units, slots, owed
    mem, n_slots = np.unique(slots, return_counts=True)
    order = rng.permutation(len(mem))
    sub = dist[np.ix_(units, mem[order])]
    near = np.argmin(sub, axis=1)
    unbounded = n_slots[order] >= len(units)
    pre = unbounded[near] & np.isfinite(sub[np.arange(len(units)), near])
    if not pre.any():
        return e, e, units, slots, owed
    rest = units[~pre]
    keep = np.where(n_slots >= len(units), len(rest), n_slots)
    new_slots = np.repeat(mem, keep)
    return units[pre], mem[order][near[pre]], rest, new_slots, np.zeros(len(new_slots), dtype=bool)


def _pairs(kh: IArray, km: IArray, kn: IArray, ah: IArray, am: IArray) -> tuple[IArray, IArray, IArray, BArray]:
    """Kept and new pairs, one row per (household row, member, kept), sorted."""
    h = np.r_[kh, ah]
    m = np.r_[km, am]
    n = np.r_[kn, np.ones(len(ah), dtype=np.int64)]
    k = np.r_[np.ones(len(kh), bool), np.zeros(len(ah), bool)]
    if len(h) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, np.zeros(0, bool)
    key = np.stack([h, m, ~k], axis=1).astype(np.int64)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=n).astype(np.int64)
    return uniq[:, 0], uniq[:, 1], total, uniq[:, 2] == 0
