"""The partition engine: units, an adjacency graph and rules in; contiguous parts out.

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
   problem; the count of a group is shared among its components in proportion
   to their size, within what each component's bounds allow.
2. **Initial partition by recursive bisection of random spanning trees** (the
   GerryChain idea). Cutting one edge of a spanning tree splits a connected
   set into two connected sets; among the cuts of a few random trees we keep
   the one whose sides best fit a whole number of target-sized parts. Unlike
   GerryChain we never give up after N attempts: the best cut found is taken
   and the local search repairs what is left. With a categorical ``similar``
   column, edges between different values get heavier tree weights and
   cutting one is preferred, so parts tend to follow the urban/rural line.
3. **Repair by ejection chains.** A part above the maximum sheds a boundary
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
4. **Improvement by simulated annealing** on single boundary moves that never
   increase the bound violation, weighing compactness, balance, similarity
   and staying put (:class:`Objective`). Pure Python lists in the inner loop.
5. **Free count.** With a minimum, as many parts as the bounds allow (max-p):
   the component's ceiling ``floor(W / min)`` first, then fewer (1, 2, 4, ...
   less, then a bisection back up) until a partition meets every bound; these
   probes get two restarts each, and the counts just above the best one found
   are then tried again with the full restart budget. With
   only a maximum, "as many as allowed" would be one unit per part, so the
   count is the fewest parts that fit under the maximum instead.

Dynamic adjustment: locked units keep their part exactly (a locked part
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

Infeasibility is explained, never hidden: a unit alone above the maximum, a
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
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix, csr_matrix, triu
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from tqdm import tqdm

from gridgeo.errors import UsageError
from gridgeo.partition.rules import PartitionView, Validation, Validator, Violation, standard_rules

log = logging.getLogger(__name__)

IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

_EPS = 1e-9
_SMALL = 400  # below this many units, spanning trees are drawn in plain Python


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Units:
    """Units and their adjacency as arrays: what the engine actually reads.

    Parameters
    ----------
    ids
        Unit ids (any hashable), in unit order.
    indptr, indices
        Symmetric adjacency in CSR form over unit positions (no self loops).
    lengths
        Shared boundary length of every CSR entry (1 when unknown): the
        compactness objective minimises the total length cut between parts.
    attrs
        Per-unit attribute arrays by name (sizes, groups, similarity columns).
    """

    ids: tuple[Hashable, ...]
    indptr: IArray
    indices: IArray
    lengths: FArray
    attrs: Mapping[str, NDArray[Any]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def from_networkx(cls, graph: nx.Graph, *, length: str = "length") -> Units:
        """Read a networkx graph: node attributes become ``attrs``, edge ``length`` the lengths.

        Node order is the graph's own (insertion) order, so the same graph
        always gives the same result.
        """
        ids = tuple(graph.nodes)
        index = {u: i for i, u in enumerate(ids)}
        rows: list[int] = []
        cols: list[int] = []
        lens: list[float] = []
        for a, b, d in graph.edges(data=True):
            if a == b:
                continue
            ia, ib = index[a], index[b]
            L = d.get(length, 1.0)
            L = 1.0 if L is None else float(L)
            rows += [ia, ib]
            cols += [ib, ia]
            lens += [L, L]
        names = sorted({k for _, d in graph.nodes(data=True) for k in d}, key=str)
        attrs = {str(k): np.array([graph.nodes[u].get(k) for u in ids], dtype=object) for k in names}
        return cls._build(ids, np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64),
                          np.asarray(lens, dtype=float), attrs)

    @classmethod
    def from_arrays(
        cls,
        indptr: ArrayLike,
        indices: ArrayLike,
        *,
        ids: Sequence[Hashable] | None = None,
        lengths: ArrayLike | None = None,
        attrs: Mapping[str, ArrayLike] | None = None,
    ) -> Units:
        """Units from a CSR adjacency (made symmetric; self loops dropped) and attribute arrays."""
        ip = np.asarray(indptr, dtype=np.int64)
        ix = np.asarray(indices, dtype=np.int64)
        if ip.ndim != 1 or len(ip) < 1 or ip[0] != 0 or np.any(np.diff(ip) < 0) or ip[-1] != len(ix):
            raise UsageError("indptr must start at 0, never decrease and end at len(indices)")
        n = len(ip) - 1
        if len(ix) and (ix.min() < 0 or ix.max() >= n):
            raise UsageError(f"indices must lie in 0..{n - 1}")
        lens = np.ones(len(ix)) if lengths is None else np.asarray(lengths, dtype=float)
        if lens.shape != ix.shape:
            raise UsageError("lengths must have one value per entry of indices")
        id_t = tuple(range(n)) if ids is None else tuple(ids)
        if len(id_t) != n:
            raise UsageError(f"{len(id_t)} ids for {n} units")
        rows = np.repeat(np.arange(n), np.diff(ip))
        at = {k: np.asarray(v) for k, v in (attrs or {}).items()}
        for k, v in at.items():
            if len(v) != n:
                raise UsageError(f"attribute {k!r} has {len(v)} values for {n} units")
        return cls._build(id_t, np.concatenate([rows, ix]), np.concatenate([ix, rows]), np.concatenate([lens, lens]),
                          at)

    @classmethod
    def _build(cls, ids: tuple[Hashable, ...], rows: IArray, cols: IArray, lens: FArray,
               attrs: Mapping[str, NDArray[Any]]) -> Units:
        n = len(ids)
        if len(set(ids)) != n:
            raise UsageError("unit ids must be unique")
        keep = rows != cols
        r, c, lk = rows[keep], cols[keep], np.maximum(lens[keep], 1e-6)  # zero would vanish from CSR
        m = coo_matrix((lk, (r, c)), shape=(n, n)).tocsr()  # duplicates summed
        times = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()  # ... and counted
        m.sort_indices()
        times.sort_indices()
        data = m.data / np.maximum(times.data, 1.0)  # an entry given twice keeps its mean length
        return cls(ids, m.indptr.astype(np.int64), m.indices.astype(np.int64), data.astype(float), dict(attrs))

    def column(self, name: str) -> NDArray[Any]:
        if name not in self.attrs:
            raise UsageError(f"no unit attribute {name!r}; have {', '.join(sorted(self.attrs)) or 'none'}")
        return self.attrs[name]

    def neighbours(self, i: int) -> IArray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]


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


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# One connected component of one group's free units
# --------------------------------------------------------------------------------------
class _Comp:
    """A connected set of units in local indices, with list views for the inner loops."""

    def __init__(self, A: csr_matrix, w: FArray, cats: list[IArray], nums: list[FArray], lo: float = 0.0,
                 hi: float = math.inf) -> None:
        A.sort_indices()
        self.lo, self.hi = lo, hi
        # what no partition can avoid: every unit above the maximum, alone in its part
        self.floor_v = float(np.maximum(w - hi, 0.0).sum()) if math.isfinite(hi) else 0.0
        self.A = A
        self.m = A.shape[0]
        self.w = w
        self.wl: list[float] = w.tolist()
        self.W = float(w.sum())
        ip, ix, d = A.indptr, A.indices, A.data
        self.nbrs: list[list[int]] = [ix[ip[i]:ip[i + 1]].tolist() for i in range(self.m)]
        self.nlen: list[list[float]] = [d[ip[i]:ip[i + 1]].tolist() for i in range(self.m)]
        self.src: list[int] = np.repeat(np.arange(self.m), np.diff(ip)).tolist()
        self.dst: list[int] = ix.tolist()
        self.mean_len = float(d.mean()) if len(d) else 1.0
        self.cats = [c.tolist() for c in cats]
        self.ncat = [int(c.max()) + 1 if len(c) else 1 for c in cats]
        self.nums = [x.tolist() for x in nums]
        self.cats_np = cats

    def cross(self, a: IArray, b: IArray) -> NDArray[np.bool_]:
        """True where units a[i] and b[i] differ in some categorical similarity column."""
        out = np.zeros(len(a), dtype=bool)
        for c in self.cats_np:
            out |= c[a] != c[b]
        return out


def _margin(t: float, lo: float, hi: float) -> float:
    """How far a part may drift from the mean size: the room to the nearer bound, at most 10 %.

    The cap keeps parts balanced when the bounds are loose or absent (a count
    alone asks for equal parts); an impossible mean (outside the bounds) gets 5 %.
    """
    room = min(hi - t, t - lo)
    if not room > 0:
        room = 0.05 * t
    return max(min(room, 0.1 * t), _EPS)


def _bisect(comp: _Comp, nodes: IArray, kk: int, lo: float, hi: float, rng: np.random.Generator,
            max_trees: int) -> tuple[NDArray[np.bool_], int]:
    """Split ``nodes`` (connected) into two connected sides holding ka and kk-ka parts.

    Draws random spanning trees and scores every tree edge cut by how far
    the sides are from a whole number of mean-sized parts (relative to the
    bound margin); prefers cuts within tolerance, then cuts across a
    categorical boundary, then balanced splits (fewer levels of recursion).
    Returns the best cut found, whatever its score.
    """
    m = len(nodes)
    small = m <= _SMALL
    if small:  # scipy's per-call overhead dominates on a township's few dozen villages
        local = {int(x): i for i, x in enumerate(nodes.tolist())}
        pairs = [(i, local[y]) for i, x in enumerate(nodes.tolist()) for y in comp.nbrs[x]
                 if y in local and local[y] > i]
        r = np.asarray([a for a, _ in pairs], dtype=np.int64)
        c = np.asarray([b for _, b in pairs], dtype=np.int64)
    else:
        tri = triu(comp.A[nodes][:, nodes], k=1).tocoo()
        r, c = tri.row.astype(np.int64), tri.col.astype(np.int64)
    rl, cl = r.tolist(), c.tolist()
    use_cross = bool(comp.cats)
    pen = comp.cross(nodes[r], nodes[c]).astype(float) if use_cross else np.zeros(len(r))
    w = comp.w[nodes]
    t = float(w.sum()) / kk
    margin = _margin(t, lo, hi)
    tol = 0.3
    need_bal = max(1, kk // 4)
    best_key: tuple[float, ...] | None = None
    best: tuple[int, int, list[int], list[int]] | None = None
    if small:  # all trees' random edge weights and roots at once; candidates scored in plain Python
        wts_all = 1.0 + rng.random((max_trees, len(r))) + 2.0 * pen
        by_weight_all = np.argsort(wts_all, axis=1, kind="stable").tolist()
        roots = rng.integers(m, size=max_trees).tolist()
        codes = [c_[nodes].tolist() for c_ in comp.cats_np]
        wl = w.tolist()
    for trial in range(max_trees):
        if small:
            order_l, pred_l = _kruskal_bfs(m, rl, cl, by_weight_all[trial], roots[trial])
        else:
            wts = 1.0 + rng.random(len(r)) + 2.0 * pen
            root = int(rng.integers(m))
            T = minimum_spanning_tree(csr_matrix((wts, (r, c)), shape=(m, m)))
            order, pred = breadth_first_order(T, root, directed=False, return_predecessors=True)
            order_l = order.tolist()
            pred_l = pred.tolist()
        if len(order_l) != m:
            raise RuntimeError("bisect called on a disconnected set")  # an engine bug, not bad input
        s = list(wl) if small else w.tolist()
        cnt = [1] * m
        for v in reversed(order_l[1:]):
            p = pred_l[v]
            s[p] += s[v]
            cnt[p] += cnt[v]
        if small:
            found = _best_cut(order_l, pred_l, s, cnt, t, kk, margin, tol, need_bal, codes)
            if found is None:
                continue
            key, v_best, ka_found = found
        else:
            cand = np.asarray(order_l[1:], dtype=np.int64)
            sa = np.asarray(s)[cand]
            ca = np.asarray(cnt)[cand]
            ka = np.clip(np.rint(sa / t), 1, kk - 1).astype(np.int64)
            kb = kk - ka
            ok = (ca >= ka) & (m - ca >= kb)
            if not ok.any():
                continue
            err = np.abs(sa - ka * t) / np.minimum(ka, kb) / margin
            bad = (err > tol).astype(float)
            notbal = (np.minimum(ka, kb) < need_bal).astype(float)
            if use_cross:
                ends = np.asarray(pred_l)[cand]
                nocross = (~comp.cross(nodes[cand], nodes[ends])).astype(float)
            else:
                nocross = np.zeros(len(cand))
            big = 10.0 * (~ok)
            i = int(np.lexsort((err, notbal, nocross, bad + big))[0])
            key = (float(bad[i] + big[i]), float(nocross[i]), float(notbal[i]), float(err[i]))
            v_best, ka_found = int(cand[i]), int(ka[i])
        if best_key is None or key < best_key:
            best_key = key
            best = (v_best, ka_found, order_l, pred_l)
        if best_key[0] == 0 and best_key[2] == 0 and (not use_cross or best_key[1] == 0 or trial >= 3):
            break
    if best is None:  # cannot happen for kk <= m (a leaf always fits); keep the engine total
        raise RuntimeError("no admissible cut")
    v, ka_best, order_l, pred_l = best
    inside = [False] * m
    inside[v] = True
    for x in order_l:
        p = pred_l[x]
        if p >= 0 and inside[p]:
            inside[x] = True
    return np.asarray(inside), ka_best


def _best_cut(order: list[int], pred: list[int], s: list[float], cnt: list[int], t: float, kk: int,
              margin: float, tol: float, need_bal: int, codes: list[list[int]],
              ) -> tuple[tuple[float, ...], int, int] | None:
    """The best edge of one small tree (same key as the array version in :func:`_bisect`)."""
    m = len(order)
    best: tuple[float, ...] | None = None
    v_best = ka_best = -1
    for v in order[1:]:
        sv, cv = s[v], cnt[v]
        ka = round(sv / t)
        ka = 1 if ka < 1 else (kk - 1 if ka > kk - 1 else ka)
        kb = kk - ka
        if cv < ka or m - cv < kb:
            continue
        low = ka if ka < kb else kb
        e = abs(sv - ka * t) / low / margin
        p = pred[v]
        nocross = 0.0 if any(cd[v] != cd[p] for cd in codes) or not codes else 1.0
        key = (1.0 if e > tol else 0.0, nocross, 1.0 if low < need_bal else 0.0, e)
        if best is None or key < best:
            best, v_best, ka_best = key, v, ka
    return None if best is None else (best, v_best, ka_best)


def _kruskal_bfs(m: int, r: list[int], c: list[int], by_weight: list[int], root: int) -> tuple[list[int], list[int]]:
    """Minimum spanning tree (Kruskal, union-find) and its BFS order and parents from ``root``."""
    parent = list(range(m))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    adj: list[list[int]] = [[] for _ in range(m)]
    joined = 0
    for e in by_weight:
        a, b = r[e], c[e]
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            adj[a].append(b)
            adj[b].append(a)
            joined += 1
            if joined == m - 1:
                break
    pred = [-9999] * m
    pred[root] = -1
    order = [root]
    for x in order:  # the list grows while it is walked: a BFS
        for y in adj[x]:
            if pred[y] == -9999:
                pred[y] = x
                order.append(y)
    return order, pred


def _tree_partition(comp: _Comp, k: int, lo: float, hi: float, rng: np.random.Generator,
                    max_trees: int = 24) -> tuple[list[int], int]:
    """Recursive bisection of a connected component into ``k`` connected parts."""
    k = max(1, min(k, comp.m))
    part = np.zeros(comp.m, dtype=np.int64)
    stack: list[tuple[IArray, int]] = [(np.arange(comp.m, dtype=np.int64), k)]
    pieces: list[IArray] = []
    while stack:
        nodes, kk = stack.pop()
        if kk <= 1:
            pieces.append(nodes)
            continue
        side, ka = _bisect(comp, nodes, kk, lo, hi, rng, max_trees)
        stack.append((nodes[~side], kk - ka))
        stack.append((nodes[side], ka))
    for i, nd in enumerate(pieces):
        part[nd] = i
    return part.tolist(), len(pieces)


# --------------------------------------------------------------------------------------
# Local search
# --------------------------------------------------------------------------------------
class _Search:
    """A partition of one component under local moves, with every tally kept up to date."""

    def __init__(self, comp: _Comp, part: list[int], n_parts: int, lo: float, hi: float,
                 stay: list[int] | None = None) -> None:
        self.c = comp
        self.P = n_parts
        self.lo, self.hi = lo, hi
        self.target = comp.W / n_parts
        self.stay = stay
        self.moves = 0
        self.load(part)

    def load(self, part: list[int]) -> None:
        """Set the assignment and recompute every tally from it."""
        comp, n_parts = self.c, self.P
        self.part = list(part)
        self.size = [0.0] * n_parts
        self.cnt = [0] * n_parts
        self.mem: list[set[int]] = [set() for _ in range(n_parts)]
        wl = comp.wl
        for u, p in enumerate(self.part):
            self.size[p] += wl[u]
            self.cnt[p] += 1
            self.mem[p].add(u)
        self.catcnt = [[[0] * nc for _ in range(n_parts)] for nc in comp.ncat]
        for ci, codes in enumerate(comp.cats):
            cc = self.catcnt[ci]
            for u, p in enumerate(self.part):
                cc[p][codes[u]] += 1
        self.S1 = [[0.0] * n_parts for _ in comp.nums]
        for ni, x in enumerate(comp.nums):
            s1 = self.S1[ni]
            for u, p in enumerate(self.part):
                s1[p] += x[u]

    # -- tallies --------------------------------------------------------------------
    def viol(self, s: float) -> float:
        """Bound violation of a part of size ``s`` (0 inside the bounds)."""
        if s > self.hi:
            return s - self.hi
        if s < self.lo:
            return self.lo - s
        return 0.0

    def violation(self) -> float:
        return sum(self.viol(s) for s in self.size)

    def solved(self) -> bool:
        """No violation beyond the unavoidable (units that alone exceed the maximum)."""
        return self.violation() <= self.c.floor_v + _EPS * max(self.target, 1.0)

    def move(self, u: int, B: int) -> None:
        A = self.part[u]
        w = self.c.wl[u]
        self.size[A] -= w
        self.size[B] += w
        self.cnt[A] -= 1
        self.cnt[B] += 1
        self.mem[A].discard(u)
        self.mem[B].add(u)
        self.part[u] = B
        for ci, codes in enumerate(self.c.cats):
            cc = self.catcnt[ci]
            cc[A][codes[u]] -= 1
            cc[B][codes[u]] += 1
        for ni, x in enumerate(self.c.nums):
            self.S1[ni][A] -= x[u]
            self.S1[ni][B] += x[u]
        self.moves += 1

    def stays_connected(self, u: int, A: int) -> bool:
        """Would part ``A`` stay connected without ``u``? BFS from one neighbour, early exit."""
        part, nbrs = self.part, self.c.nbrs
        inA = [v for v in nbrs[u] if part[v] == A]
        if len(inA) <= 1:
            return True  # a leaf of A (or already cut off from it); callers keep A non-empty
        targets = set(inA[1:])
        left = len(targets)
        seen = {u, inA[0]}
        queue = deque([inA[0]])
        while queue:
            x = queue.popleft()
            for y in nbrs[x]:
                if y not in seen and part[y] == A:
                    if y in targets:
                        left -= 1
                        if left == 0:
                            return True
                    seen.add(y)
                    queue.append(y)
        return False

    def part_adjacency(self) -> list[list[int]]:
        src = np.asarray(self.c.src, dtype=np.int64)
        dst = np.asarray(self.c.dst, dtype=np.int64)
        p = np.asarray(self.part, dtype=np.int64)
        pa, pb = p[src], p[dst]
        diff = pa != pb
        pairs = np.unique(pa[diff] * self.P + pb[diff])
        adj: list[list[int]] = [[] for _ in range(self.P)]
        for code in pairs.tolist():
            adj[code // self.P].append(code % self.P)
        return adj

    # -- repair -----------------------------------------------------------------------
    def repair(self, deadline: float, max_rounds: int = 100_000) -> None:
        """Remove bound violations by ejection chains; stops when no chain helps."""
        for _ in range(max_rounds):
            if self.solved():
                return
            if time.perf_counter() > deadline:
                return
            adj = self.part_adjacency()
            order = sorted((p for p in range(self.P) if self.viol(self.size[p]) > 0),
                           key=lambda p: (-self.viol(self.size[p]), p))
            if not any(self._fix(A, adj) for A in order):
                return

    def _fix(self, A: int, adj: list[list[int]]) -> bool:
        over = self.size[A] > self.hi
        parent = {A: -1}
        queue = deque([A])
        found: list[int] = []
        while queue and len(found) < 6:
            P = queue.popleft()
            for Q in adj[P]:
                if Q in parent:
                    continue
                parent[Q] = P
                queue.append(Q)
                if (over and self.size[Q] < self.hi - _EPS) or (not over and self.size[Q] > self.lo + _EPS):
                    found.append(Q)
        before = self.violation()
        for Z in found:
            path = [Z]
            while path[-1] != A:
                path.append(parent[path[-1]])
            path.reverse()  # A ... Z
            steps = list(pairwise(path)) if over else [(b, a) for a, b in pairwise(path)]
            done = self._chain(steps, over, path)
            if done is None:
                continue
            if self.violation() < before - _EPS * max(self.target, 1.0):
                return True
            for u, g, _ in reversed(done):
                self.move(u, g)
        return False

    def _chain(self, steps: list[tuple[int, int]], over: bool, path: list[int]) -> list[tuple[int, int, int]] | None:
        """Move one unit along each step (giver, receiver); undo and return None if one is stuck."""
        ref = {p: self.size[p] for p in path}
        ref[path[0]] = self.target
        ref[path[-1]] = self.target
        scale = max(self.target, _EPS)
        wl, part, nbrs = self.c.wl, self.part, self.c.nbrs
        done: list[tuple[int, int, int]] = []
        last = len(steps) - 1
        for i, (g, r) in enumerate(steps):
            cands = []
            for u in self.mem[g]:
                if not any(part[v] == r for v in nbrs[u]):
                    continue
                w = wl[u]
                sg, sr = self.size[g] - w, self.size[r] + w
                if over:  # the giver is settled now; the receiver only at the end
                    cost = self.viol(sg) + 0.05 * abs(sg - ref[g])
                    if i == last:
                        cost += self.viol(sr) + 0.05 * abs(sr - ref[r])
                else:  # the receiver is settled now; the giver only at the end
                    cost = self.viol(sr) + 0.05 * abs(sr - ref[r])
                    if i == last:
                        cost += self.viol(sg) + 0.05 * abs(sg - ref[g])
                ties = sum(1 for v in nbrs[u] if part[v] == g) - sum(1 for v in nbrs[u] if part[v] == r)
                cands.append((cost / scale + 0.002 * ties, u))
            cands.sort()
            moved = False
            for _, u in cands:
                if self.cnt[g] > 1 and self.stays_connected(u, g):
                    self.move(u, r)
                    done.append((u, g, r))
                    moved = True
                    break
            if not moved:
                for u, g0, _ in reversed(done):
                    self.move(u, g0)
                return None
        return done

    def shake(self, n_iter: int, rng: np.random.Generator, deadline: float) -> None:
        """Leave a local minimum of the repair: simulated annealing on the bound violation itself.

        The ejection chains move one unit per step and only downhill, which
        stalls when the slack is thinner than a unit (many parts just above a
        minimum). Here single boundary moves may go uphill with probability
        ``exp(-increase / T)``, T falling from half a mean unit weight to 1 %
        of it, with a small pull towards short boundaries so parts stay
        compact enough to keep trading units. The best state seen is kept.
        """
        c = self.c
        E = len(c.src)
        if self.P <= 1 or n_iter <= 0 or E == 0:
            return
        part, size, cnt, wl, nbrs, nlen = self.part, self.size, self.cnt, c.wl, c.nbrs, c.nlen
        src, dst, lo, hi = c.src, c.dst, self.lo, self.hi
        mw = c.W / c.m
        wc = 0.05 * mw / c.mean_len
        T0, T1 = 0.5 * mw, 0.01 * mw
        alpha = (T1 / T0) ** (1.0 / n_iter)
        T = T0
        picks = rng.integers(E, size=n_iter).tolist()
        draws = rng.random(n_iter).tolist()
        cur = best = self.violation()
        best_part = list(part)
        stop = _EPS * max(self.target, 1.0)
        exp = math.exp
        for it in range(n_iter):
            T *= alpha
            if (it & 4095) == 0 and time.perf_counter() > deadline:
                break
            k = picks[it]
            u = src[k]
            A = part[u]
            B = part[dst[k]]
            if A == B or cnt[A] == 1:
                continue
            wu = wl[u]
            sA, sB = size[A], size[B]
            a1, b1 = sA - wu, sB + wu  # bound violations inlined: this loop is the hot spot of max-p
            dv = ((a1 - hi if a1 > hi else (lo - a1 if a1 < lo else 0.0))
                  + (b1 - hi if b1 > hi else (lo - b1 if b1 < lo else 0.0))
                  - (sA - hi if sA > hi else (lo - sA if sA < lo else 0.0))
                  - (sB - hi if sB > hi else (lo - sB if sB < lo else 0.0)))
            dcut = 0.0
            for v, L in zip(nbrs[u], nlen[u], strict=True):
                pv = part[v]
                if pv == A:
                    dcut += L
                elif pv == B:
                    dcut -= L
            d = dv + wc * dcut
            if d > 0 and draws[it] >= exp(-d / T):
                continue
            if not self.stays_connected(u, A):
                continue
            self.move(u, B)
            cur += dv
            if cur < best - stop:
                best = cur
                best_part = list(part)
                if best <= c.floor_v + stop:
                    break
        if best < self.violation() - stop or best_part != self.part:
            self.load(best_part)

    # -- improvement ------------------------------------------------------------------
    def anneal(self, n_iter: int, obj: Objective, rng: np.random.Generator, deadline: float) -> None:
        """Simulated annealing on boundary moves that never increase the bound violation."""
        c = self.c
        E = len(c.src)
        if self.P <= 1 or n_iter <= 0 or E == 0:
            return
        part, size, cnt, wl, nbrs, nlen = self.part, self.size, self.cnt, c.wl, c.nbrs, c.nlen
        src, dst = c.src, c.dst
        t = self.target
        wc = obj.compactness / c.mean_len
        bscale = _margin(t, self.lo, self.hi)
        wb = obj.balance / (bscale * bscale)
        ws = obj.similarity
        stay = self.stay
        wm = obj.stay
        cats, catcnt = c.cats, self.catcnt
        nums, S1 = c.nums, self.S1
        lo, hi = self.lo, self.hi
        T0, T1 = 1.0, 0.02
        alpha = (T1 / T0) ** (1.0 / n_iter)
        T = T0
        picks = rng.integers(E, size=n_iter).tolist()
        draws = rng.random(n_iter).tolist()
        exp = math.exp
        for it in range(n_iter):
            T *= alpha
            if (it & 4095) == 0 and time.perf_counter() > deadline:
                log.warning("time limit hit during annealing after %d of %d proposals", it, n_iter)
                return
            k = picks[it]
            u = src[k]
            A = part[u]
            B = part[dst[k]]
            if A == B or cnt[A] == 1:
                continue
            wu = wl[u]
            sA, sB = size[A], size[B]
            a1, b1 = sA - wu, sB + wu
            if ((a1 - hi if a1 > hi else (lo - a1 if a1 < lo else 0.0))
                    + (b1 - hi if b1 > hi else (lo - b1 if b1 < lo else 0.0))
                    > (sA - hi if sA > hi else (lo - sA if sA < lo else 0.0))
                    + (sB - hi if sB > hi else (lo - sB if sB < lo else 0.0)) + _EPS):
                continue  # never increase the bound violation
            dcut = 0.0
            for v, L in zip(nbrs[u], nlen[u], strict=True):
                pv = part[v]
                if pv == A:
                    dcut += L
                elif pv == B:
                    dcut -= L
            d = wc * dcut
            d += wb * ((sA - wu - t) ** 2 + (sB + wu - t) ** 2 - (sA - t) ** 2 - (sB - t) ** 2)
            if ws:
                for ci in range(len(cats)):
                    cu = cats[ci][u]
                    ca, cb = catcnt[ci][A], catcnt[ci][B]
                    mis_before = (cnt[A] - max(ca)) + (cnt[B] - max(cb))
                    ca[cu] -= 1
                    cb[cu] += 1
                    mis_after = (cnt[A] - 1 - max(ca)) + (cnt[B] + 1 - max(cb))
                    ca[cu] += 1
                    cb[cu] -= 1
                    d += ws * (mis_after - mis_before)
                for ni in range(len(nums)):
                    x = nums[ni][u]
                    a1, b1 = S1[ni][A], S1[ni][B]
                    nA, nB = cnt[A], cnt[B]
                    before = a1 * a1 / nA + b1 * b1 / nB
                    after = (a1 - x) ** 2 / (nA - 1) + (b1 + x) ** 2 / (nB + 1)
                    d += ws * (before - after)  # within-part sum of squares = const - sum S1^2/n
            if stay is not None:
                home = stay[u]
                d += wm * ((home == A) - (home == B))
            if d > 0 and draws[it] >= exp(-d / T):
                continue
            if not self.stays_connected(u, A):
                continue
            self.move(u, B)

    def cut_length(self) -> float:
        part = self.part
        return 0.5 * sum(L for u in range(self.c.m) for v, L in zip(self.c.nbrs[u], self.c.nlen[u], strict=True)
                         if part[v] != part[u])


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
@dataclass
class _GroupOut:
    parts: list[IArray]  # global unit indices
    labels: list[Hashable | None]
    notes: list[Violation]
    info: dict[str, Any]


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
        size: str | ArrayLike | None = None,
        min_size: float | Mapping[Any, float] | None = None,
        max_size: float | Mapping[Any, float] | None = None,
        count: int | Mapping[Any, int] | str | None = None,
        group: str | ArrayLike | None = None,
        similar: Sequence[str] = (),
        locks: Mapping[Any, Any] | None = None,
        previous: Mapping[Any, Any] | None = None,
        objective: Objective | None = None,
    ) -> None:
        self.units = units if isinstance(units, Units) else Units.from_networkx(units)
        u = self.units
        n = u.n
        if n == 0:
            raise UsageError("nothing to partition: no units")
        self.objective = objective or Objective()
        # sizes
        if size is None:
            self.size_name = "units"
            w = np.ones(n)
        else:
            self.size_name = size if isinstance(size, str) else "size"
            raw = u.column(size) if isinstance(size, str) else np.asarray(size, dtype=object)
            if len(raw) != n:
                raise UsageError(f"size has {len(raw)} values for {n} units")
            w = np.empty(n)
            for i, v in enumerate(raw):
                try:
                    w[i] = float(v)
                except (TypeError, ValueError):
                    w[i] = np.nan
                if not (math.isfinite(w[i]) and w[i] >= 0):
                    raise UsageError(f"unit {u.ids[i]}: {self.size_name} must be a number >= 0, not {v!r}")
        self.w = w
        # groups
        if group is None:
            gl = np.array([""] * n, dtype=object)
        else:
            gl = u.column(group) if isinstance(group, str) else np.asarray(group, dtype=object)
            if len(gl) != n:
                raise UsageError(f"group has {len(gl)} values for {n} units")
            missing = [u.ids[i] for i, v in enumerate(gl) if v is None or (isinstance(v, float) and math.isnan(v))]
            if missing:
                raise UsageError(f"{len(missing)} unit(s) have no group, e.g. {missing[0]}")
        names = [str(v) for v in gl]
        self.groups = sorted(set(names))
        gindex = {g: i for i, g in enumerate(self.groups)}
        self.gidx = np.array([gindex[g] for g in names], dtype=np.int64)
        # bounds, per group
        self.lo_g = _bounds(min_size, "min_size", self.groups, 0.0)
        self.hi_g = _bounds(max_size, "max_size", self.groups, math.inf)
        for g, lo, hi in zip(self.groups, self.lo_g, self.hi_g, strict=True):
            if hi <= 0:
                raise UsageError(f"max_size must be > 0 (group {g!r})" if g else "max_size must be > 0")
            if lo > hi:
                raise UsageError(f"min_size {lo:g} is above max_size {hi:g}" + (f" in group {g!r}" if g else ""))
        # count
        self.counts: dict[str, int] | None
        if count is None:
            lacking = [g for g, lo, hi in zip(self.groups, self.lo_g, self.hi_g, strict=True)
                       if lo <= 0 and not math.isfinite(hi)]
            if lacking:
                raise UsageError("a free count needs a min_size or a max_size (or give a count)"
                                 + (f"; none for group {lacking[0]!r}" if lacking[0] else ""))
            self.counts = None
        elif isinstance(count, bool):
            raise UsageError("count must be an integer >= 1")
        elif isinstance(count, int | np.integer):
            k = _as_count(count, "count")
            self.counts = {g: k for g in self.groups}
        elif isinstance(count, str):
            kcol = u.column(count)
            self.counts = {}
            for gi, g in enumerate(self.groups):
                kvals = set(kcol[self.gidx == gi].tolist())
                if len(kvals) != 1:
                    raise UsageError(f"count column {count!r} varies within group {g}: {sorted(map(str, kvals))}")
                self.counts[g] = _as_count(kvals.pop(), f"count of group {g}")
        elif isinstance(count, Mapping):
            given = {str(k): v for k, v in count.items()}
            lack = [g for g in self.groups if g not in given]
            if lack:
                raise UsageError(f"no count for group(s) {', '.join(lack[:5])}")
            self.counts = {g: _as_count(given[g], f"count of group {g}") for g in self.groups}
        else:
            raise UsageError(f"count must be an int, a mapping or a column name, not {count!r}")
        # similarity
        self.similar = list(similar)
        self.cat_codes: list[IArray] = []
        self.num_vals: list[FArray] = []
        for col in self.similar:
            vals = u.column(col)
            if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in vals):
                x = np.asarray(vals, dtype=float)
                if not np.all(np.isfinite(x)):
                    raise UsageError(f"similarity column {col!r} has missing values")
                sd = float(x.std())
                self.num_vals.append((x - x.mean()) / sd if sd > 0 else np.zeros(n))
            else:
                keys = ["" if v is None else str(v) for v in vals]
                uniq = {k: i for i, k in enumerate(sorted(set(keys)))}
                self.cat_codes.append(np.array([uniq[k] for k in keys], dtype=np.int64))
        index = {uid: i for i, uid in enumerate(u.ids)}
        self.locks = self._mapping(locks, index, "locked")
        self.previous = self._mapping(previous, index, "previous", unknown_ok=True)

    @staticmethod
    def _mapping(m: Mapping[Any, Any] | None, index: dict[Hashable, int], what: str,
                 *, unknown_ok: bool = False) -> dict[int, Hashable]:
        if not m:
            return {}
        out: dict[int, Hashable] = {}
        unknown = []
        for k, v in m.items():
            i = index.get(k)
            if i is None:
                i = index.get(str(k)) if not isinstance(k, str) else None
            if i is None:
                unknown.append(k)
                continue
            if v is not None:
                out[i] = v
        if unknown and not unknown_ok:
            raise UsageError(f"{len(unknown)} {what} unit(s) not among the units, e.g. {unknown[0]!r}")
        if unknown:
            log.info("%d %s unit(s) no longer exist", len(unknown), what)
        return out

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
        part = np.full(n, -1, dtype=np.int64)
        labels: list[Hashable | None] = []
        locked_flags: list[bool] = []
        notes: list[Violation] = []
        info: dict[str, Any] = {}
        # locked parts, kept as they are
        by_label: dict[Hashable, list[int]] = {}
        for i in sorted(self.locks):
            by_label.setdefault(self.locks[i], []).append(i)
        locked_in_group = np.zeros(len(self.groups), dtype=np.int64)
        for lab in sorted(by_label, key=lambda lb: (int(self.gidx[by_label[lb][0]]), str(lb))):
            idx = np.asarray(by_label[lab])
            part[idx] = len(labels)
            labels.append(lab)
            locked_flags.append(True)
            locked_in_group[int(np.bincount(self.gidx[idx]).argmax())] += 1
        total_w = float(self.w.sum())
        bar = tqdm(total=n, desc="partition", unit="unit", disable=not progress, leave=False)
        for gi, g in enumerate(self.groups):
            free = np.flatnonzero((self.gidx == gi) & (part < 0))
            gsize = int((self.gidx == gi).sum())
            if len(free) == 0:
                bar.update(gsize)
                continue
            now = time.perf_counter()
            share = math.inf if deadline == math.inf else now + max(
                (deadline - now) * float(self.w[free].sum() + len(free)) / max(total_w + n, 1.0), 0.5)
            rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(g.encode())]))
            out = self._solve_group(g, gi, free, A, int(locked_in_group[gi]), rng, min(share, deadline))
            for idx, lab in zip(out.parts, out.labels, strict=True):
                part[idx] = len(labels)
                labels.append(lab)
                locked_flags.append(False)
            notes.extend(out.notes)
            info[g] = out.info
            info[g]["seconds"] = round(time.perf_counter() - now, 4)
            bar.update(gsize)
        bar.close()
        if time.perf_counter() > deadline:
            log.warning("time limit of %.1f s reached; the result may depend on the machine's speed", time_limit)
        return self._result(part, labels, locked_flags, notes, info, t0)

    # ----------------------------------------------------------------------------------
    def _local(self, free: IArray, A: csr_matrix) -> tuple[csr_matrix, list[IArray]]:
        sub = A[free][:, free].tocsr()
        ncomp, lab = connected_components(sub, directed=False)
        comps = [np.flatnonzero(lab == c) for c in range(ncomp)]
        comps.sort(key=lambda c: int(c[0]))
        return sub, comps

    def _comp(self, sub: csr_matrix, free: IArray, loc: IArray, lo: float, hi: float) -> _Comp:
        glob = free[loc]
        return _Comp(sub[loc][:, loc].tocsr(), self.w[glob], [c[glob] for c in self.cat_codes],
                     [x[glob] for x in self.num_vals], lo, hi)

    def _solve_group(self, g: str, gi: int, free: IArray, A: csr_matrix, n_locked: int,
                     rng: np.random.Generator, deadline: float) -> _GroupOut:
        lo, hi = self.lo_g[gi], self.hi_g[gi]
        sub, comps = self._local(free, A)
        wc = [float(self.w[free[c]].sum()) for c in comps]
        notes: list[Violation] = []
        ids = self.units.ids
        info: dict[str, Any] = {"units": len(free), "components": len(comps), "locked_parts": n_locked}
        # diagnoses that need no search
        for i in free[self.w[free] > hi].tolist():
            notes.append(Violation("max_size", f"unit {ids[i]} alone has {self.size_name} {self.w[i]:,.6g} "
                                   f"> maximum {hi:,.6g}; its part cannot meet the maximum", group=g,
                                   units=(ids[i],), cause="unit_above_max"))
        for c, W in zip(comps, wc, strict=True):
            if lo - W > _EPS:
                us = tuple(ids[i] for i in free[c].tolist())
                if len(comps) > 1:
                    notes.append(Violation(
                        "min_size", f"{len(us)} unit(s) {_short(us)} of group {g} are cut off from the rest "
                        f"(an island) and total {self.size_name} {W:,.6g} < minimum {lo:,.6g}",
                        group=g, units=us, cause="island_below_min"))
                elif n_locked == 0:
                    notes.append(Violation(
                        "min_size", f"group {g} totals {self.size_name} {W:,.6g} < minimum {lo:,.6g}: even one "
                        "part cannot reach it", group=g, units=us, cause="group_too_small"))
        # count per component
        k_group: int | None = None if self.counts is None else self.counts[g]
        if k_group is None and lo > 0 and math.isfinite(hi):
            for c, wt in zip(comps, wc, strict=True):
                if wt >= lo and math.floor(wt / lo + _EPS) < math.ceil(wt / hi - _EPS):
                    W = wt
                    k1 = math.floor(W / lo + _EPS)
                    us = tuple(ids[i] for i in free[c].tolist())
                    where = f"group {g}" if len(comps) == 1 else f"a piece of group {g} ({_short(us)})"
                    notes.append(Violation(
                        "count", f"{where} totals {self.size_name} {W:,.6g}: no whole number of parts fits "
                        f"[{lo:,.6g}, {hi:,.6g}] ({k1} part(s) average {W / k1:,.6g}, {k1 + 1} average "
                        f"{W / (k1 + 1):,.6g})", group=g, units=us, cause="no_count_fits"))
        ks: list[int | None]
        if k_group is not None:
            k_free = k_group - n_locked
            ks = list(self._allocate(comps, wc, k_free, lo))
            Wg = float(self.w[self.gidx == gi].sum())
            gunits = tuple(ids[i] for i in np.flatnonzero(self.gidx == gi).tolist())
            if Wg < k_group * lo - _EPS:
                notes.append(Violation(
                    "min_size", f"group {g} totals {self.size_name} {Wg:,.6g}: {k_group} parts cannot each reach "
                    f"the minimum {lo:,.6g} ({k_group} x {lo:,.6g} = {k_group * lo:,.6g})", group=g,
                    units=gunits, cause="group_too_small"))
            if Wg > k_group * hi + _EPS:
                notes.append(Violation(
                    "max_size", f"group {g} totals {self.size_name} {Wg:,.6g}: {k_group} parts cannot all stay "
                    f"under the maximum {hi:,.6g} ({k_group} x {hi:,.6g} = {k_group * hi:,.6g})", group=g,
                    units=gunits, cause="group_too_large"))
            if len(comps) + n_locked > k_group:
                notes.append(Violation(
                    "count", f"group {g} falls into {len(comps)} separate pieces"
                    + (f" besides {n_locked} locked part(s)" if n_locked else "")
                    + f" but {k_group} part(s) were asked for; each piece needs a part of its own",
                    group=g, units=tuple(ids[free[c[0]]] for c in comps), cause="too_many_components"))
        else:
            ks = [None] * len(comps)
        parts: list[IArray] = []
        labels: list[Hashable | None] = []
        info["restarts"] = 0
        info["redrawn"] = 0
        for c, k in zip(comps, ks, strict=True):
            comp = self._comp(sub, free, c, lo, hi)
            prev = [self.previous.get(int(i)) for i in free[c].tolist()] if self.previous else None
            # provably infeasible: one draw and its repair give the best effort; restarts cannot help
            hopeless = k is not None and not (k * lo <= comp.W <= k * hi)
            local, labs, cinfo = self._solve_comp(comp, k, rng, deadline, prev, hopeless=hopeless)
            for p, lab in enumerate(labs):
                parts.append(free[c[np.asarray(local) == p]] if comp.m > 1 else free[c])
                labels.append(lab)
            info["restarts"] += cinfo.get("restarts", 0)
            info["redrawn"] += cinfo.get("redrawn", 0)
        info["parts"] = len(parts) + n_locked
        if k_group is None:
            info["count"] = "free"
        return _GroupOut(parts, labels, notes, info)

    def _allocate(self, comps: list[IArray], wc: list[float], k: int, lo: float) -> list[int]:
        """Share ``k`` parts among components: one each, the rest where parts are largest.

        The count is honoured first (a component that would need more parts
        than it gets reports a bound violation, not a count violation); a
        component never gets more parts than its minimum allows while another
        can take them, nor more parts than it has units.
        """
        n_c = [len(c) for c in comps]
        high = [max(1, min(n, math.floor(W / lo + _EPS))) if lo > 0 else n for W, n in zip(wc, n_c, strict=True)]
        ks = [1] * len(comps)
        left = k - len(comps)
        while left > 0:
            cand = [i for i in range(len(ks)) if ks[i] < high[i]] or [i for i in range(len(ks)) if ks[i] < n_c[i]]
            if not cand:
                break
            i = max(cand, key=lambda j: (wc[j] / ks[j], -j))
            ks[i] += 1
            left -= 1
        return ks

    def _solve_comp(self, comp: _Comp, k: int | None, rng: np.random.Generator, deadline: float,
                    prev: list[Hashable | None] | None, *, hopeless: bool = False,
                    ) -> tuple[list[int], list[Hashable | None], dict[str, Any]]:
        obj = self.objective
        info: dict[str, Any] = {"restarts": 0}
        if comp.m == 1:
            lab = prev[0] if prev else None
            return [0], [lab], info
        if prev is not None and any(p is not None for p in prev):
            return self._from_previous(comp, k, rng, deadline, prev)
        if k is None:
            best = self._free_count(comp, rng, deadline, info)
        else:
            best = self._draw(comp, k, rng, deadline, 0 if hopeless else obj.restarts, info)
        best.anneal(obj.iterations * comp.m, obj, rng, deadline)
        return best.part, [None] * best.P, info

    def _draw(self, comp: _Comp, k: int, rng: np.random.Generator, deadline: float, restarts: int,
              info: dict[str, Any], stay: list[int] | None = None) -> _Search:
        """Tree partition + repair, restarted while violations remain; the best kept."""
        best: _Search | None = None
        for attempt in range(restarts + 1):
            part, P = _tree_partition(comp, k, comp.lo, comp.hi, rng)
            s = _Search(comp, part, P, comp.lo, comp.hi, stay)
            s.repair(deadline)
            if not s.solved():
                # violations are local: a larger component does not need a proportionally longer shake
                s.shake(min(self.objective.iterations * comp.m, 200_000), rng, deadline)
                s.repair(deadline)
            if best is None or s.violation() < best.violation() - _EPS:
                best = s
            if best.solved() or time.perf_counter() > deadline:
                break
            info["restarts"] = info.get("restarts", 0) + 1
            log.debug("restart %d: violation %.6g remains", attempt + 1, best.violation())
        assert best is not None
        return best

    def _free_count(self, comp: _Comp, rng: np.random.Generator, deadline: float, info: dict[str, Any]) -> _Search:
        """Max-p with a minimum (most parts that all meet the bounds); fewest parts with only a maximum."""
        lo, hi, W, m = comp.lo, comp.hi, comp.W, comp.m
        k_min = max(1, min(m, math.ceil(W / hi - _EPS))) if math.isfinite(hi) else 1
        tries: dict[int, _Search] = {}
        full = min(self.objective.restarts, max(2, 20_000 // m))  # small components: more tries are cheap
        quick = min(2, full)
        pushed: set[int] = set()

        def attempt(k: int, restarts: int = quick) -> bool:
            if k not in tries or (restarts > quick and k not in pushed and not tries[k].solved()):
                if restarts > quick:
                    pushed.add(k)
                tries[k] = self._draw(comp, k, rng, deadline, restarts, info)
            return tries[k].solved()

        def push(k: int, step: int) -> int:
            """From a feasible count, try the next ones with the full restart budget."""
            while k_min <= k + step <= k_max and time.perf_counter() < deadline and attempt(k + step, full):
                k += step
            return k

        if lo > 0:
            k_max = max(1, min(m, math.floor(W / lo + _EPS)))
            if k_max < k_min:  # no count meets both bounds on average: the least bad
                k = min((k_max, k_min), key=lambda kk: kk * (max(0.0, W / kk - hi) + max(0.0, lo - W / kk)))
                attempt(k)
                return tries[k]
            step, k, fail = 1, k_max, None
            while k >= k_min and not attempt(k):
                fail = k
                k, step = k - step, step * 2
                if time.perf_counter() > deadline:
                    break
            ok = max((kk for kk in tries if attempt(kk)), default=None)
            if ok is None:
                attempt(k_min)
                return min(tries.values(), key=lambda s: (s.violation(), -s.P))
            hi_k = fail if fail is not None else ok
            lo_k = ok
            while hi_k - lo_k > 1 and time.perf_counter() < deadline:  # the largest feasible count between
                mid = (lo_k + hi_k) // 2
                if attempt(mid):
                    lo_k = mid
                else:
                    hi_k = mid
            return tries[push(max(kk for kk in tries if tries[kk].solved()), 1)]
        k_max = m
        step, k = 1, k_min
        while k <= m and not attempt(k) and time.perf_counter() < deadline:
            k, step = k + step, step * 2
        ok = min((kk for kk in tries if attempt(kk)), default=None)
        if ok is None:
            return min(tries.values(), key=lambda s: (s.violation(), s.P))
        below = max((kk for kk in tries if kk < ok), default=ok)
        lo_k, hi_k = below, ok
        while hi_k - lo_k > 1 and time.perf_counter() < deadline:
            mid = (lo_k + hi_k) // 2
            if attempt(mid):
                hi_k = mid
            else:
                lo_k = mid
        return tries[push(min(kk for kk in tries if tries[kk].solved()), -1)]

    def _from_previous(self, comp: _Comp, k: int | None, rng: np.random.Generator, deadline: float,
                       prev: list[Hashable | None]) -> tuple[list[int], list[Hashable | None], dict[str, Any]]:
        """Start from the previous labels, repair locally; re-draw only when that breaks fewer rules."""
        info: dict[str, Any] = {"restarts": 0, "redrawn": 0}
        m, nbrs, nlen = comp.m, comp.nbrs, comp.nlen
        part = [-1] * m
        labs: list[Hashable | None] = []
        groups: dict[Hashable, list[int]] = {}
        for i, lab in enumerate(prev):
            if lab is not None:
                groups.setdefault(lab, []).append(i)
        for lab in sorted(groups, key=lambda lb: groups[lb][0]):
            members = set(groups[lab])
            pieces = _pieces(members, nbrs)
            keep = max(pieces, key=lambda pc: (sum(comp.wl[x] for x in pc), -min(pc)))
            for x in keep:
                part[x] = len(labs)
            labs.append(lab)
        # new and cut-off units join the neighbouring part they share most boundary with
        changed = True
        while changed:
            changed = False
            for x in range(m):
                if part[x] >= 0:
                    continue
                shared: dict[int, float] = {}
                for y, L in zip(nbrs[x], nlen[x], strict=True):
                    if part[y] >= 0:
                        shared[part[y]] = shared.get(part[y], 0.0) + L
                if shared:
                    part[x] = max(sorted(shared), key=lambda p: shared[p])
                    changed = True
        n_parts = len(labs)
        if k is not None:
            while n_parts > k:  # merge the smallest part into its smallest neighbour
                s = _Search(comp, part, n_parts, comp.lo, comp.hi)
                small = min(range(n_parts), key=lambda p: (s.size[p], p))
                adj = s.part_adjacency()[small]
                into = min(adj, key=lambda p: (s.size[p], p))
                part = [q - 1 if q > small else q for q in (into if p == small else p for p in part)]
                labs.pop(small)
                n_parts -= 1
            while n_parts < k:  # split the largest part in two
                s = _Search(comp, part, n_parts, comp.lo, comp.hi)
                big = max(range(n_parts), key=lambda p: (s.size[p], -p))
                nodes = np.asarray(sorted(s.mem[big]), dtype=np.int64)
                if len(nodes) < 2:
                    break
                side, _ = _bisect(comp, nodes, 2, comp.lo, comp.hi, rng, 24)
                for x in nodes[side].tolist():
                    part[x] = n_parts
                labs.append(None)
                n_parts += 1
        stay = list(part)
        search = _Search(comp, part, n_parts, comp.lo, comp.hi, stay)
        search.repair(deadline)
        if not search.solved():
            kk = k if k is not None else n_parts
            fresh = self._draw(comp, kk, rng, deadline, self.objective.restarts, info, stay=None)
            if fresh.violation() < search.violation() - _EPS:
                info["redrawn"] = 1
                log.info("repairing the previous partition left violations; a fresh draw is better")
                new_labs = _match_labels(fresh.part, fresh.P, stay, labs)
                fresh.stay = [_stay_index(stay[x], labs, new_labs) for x in range(m)]
                search, labs = fresh, new_labs
        search.anneal(self.objective.iterations * m, self.objective, rng, deadline)
        return search.part, labs, info

    # ----------------------------------------------------------------------------------
    def _result(self, part: IArray, labels: list[Hashable | None], locked: list[bool], notes: list[Violation],
                info: dict[str, Any], t0: float) -> Result:
        u = self.units
        # a label kept by two parts (a previous part split across components): the larger keeps it
        seen: dict[Hashable, int] = {}
        sizes_n = np.bincount(part, minlength=len(labels))
        for p in sorted(range(len(labels)), key=lambda q: (-int(sizes_n[q]), q)):
            lab = labels[p]
            if lab is None:
                continue
            if lab in seen and not locked[p]:
                labels[p] = None
            else:
                seen[lab] = p
        view = PartitionView(ids=u.ids, part=part, n_parts=len(labels), weights=self.w, indptr=u.indptr,
                             indices=u.indices, group=self.gidx, groups=self.groups)
        counts = self.counts
        validator = Validator(standard_rules(lo={g: v for g, v in zip(self.groups, self.lo_g, strict=True) if v > 0},
                                             hi={g: v for g, v in zip(self.groups, self.hi_g, strict=True)
                                                 if math.isfinite(v)},
                                             counts=counts, column=self.size_name))
        validation = validator(view)
        violations = self._explain(validation, view, locked, notes)
        parts = [Part(index=p, group=view.group_name(p), units=list(view.unit_ids(view.members[p])),
                      size=float(view.sizes[p]), label=labels[p], locked=locked[p]) for p in range(len(labels))]
        assignment = {u.ids[i]: int(part[i]) for i in range(u.n)}
        moved: list[Hashable] | None = None
        if self.previous:
            moved = [u.ids[i] for i in sorted(self.previous) if labels[int(part[i])] != self.previous[i]]
        cut = float(u.lengths[part[np.repeat(np.arange(u.n), np.diff(u.indptr))] != part[u.indices]].sum() / 2)
        sizes = view.sizes
        stats = {
            "seconds": round(time.perf_counter() - t0, 3),
            "units": u.n,
            "parts": len(labels),
            "groups": len(self.groups),
            "cut_length": round(cut, 3),
            "size_min": float(sizes.min()) if len(sizes) else None,
            "size_max": float(sizes.max()) if len(sizes) else None,
            "size_mean": float(sizes.mean()) if len(sizes) else None,
            "restarts": int(sum(v.get("restarts", 0) for v in info.values())),
            "redrawn_components": int(sum(v.get("redrawn", 0) for v in info.values())),
            "by_group": info,
        }
        if moved is not None:
            stats["moved"] = len(moved)
        log.info("partition: %d units -> %d parts in %.2f s; %d violation(s)", u.n, len(labels),
                 stats["seconds"], len(violations))
        return Result(assignment=assignment, parts=parts, violations=violations,
                      satisfaction=validation.satisfaction(), stats=stats, moved=moved)

    def _explain(self, validation: Validation, view: PartitionView, locked: list[bool],
                 notes: list[Violation]) -> list[Violation]:
        """Attach a cause to each part violation from the diagnoses; add the group-level ones."""
        out: list[Violation] = []
        group_causes = {(v.group, v.rule): v for v in notes if v.cause in ("group_too_small", "group_too_large")}
        no_fit = {v.group for v in notes if v.cause == "no_count_fits"}
        islands = [v for v in notes if v.cause == "island_below_min"]
        heavy = {v.units[0] for v in notes if v.cause == "unit_above_max"}
        used: set[int] = set()
        counted: set[int] = set()
        for v in validation.violations:
            cause, extra = v.cause, ""
            units = v.units
            if v.part is not None and locked[v.part]:
                cause, extra = "locked", "; the part is locked"
            elif v.rule == "max_size":
                big = [x for x in units if x in heavy]
                if big:
                    cause, units = "unit_above_max", tuple(big)
                    extra = f"; unit {_short(big)} alone exceeds the maximum"
                elif (v.group, "max_size") in group_causes:
                    cause, extra = "group_too_large", "; the group is too large for its count"
                elif v.group in no_fit:
                    cause, extra = "no_count_fits", "; no whole number of parts fits the bounds"
                else:
                    cause = "search"
            elif v.rule == "min_size":
                isl = next((i for i, note in enumerate(islands) if set(note.units) == set(units)), None)
                if isl is not None:
                    used.add(isl)
                    cause, extra = "island_below_min", "; it is an island of the group below the minimum"
                elif (v.group, "min_size") in group_causes:
                    cause, extra = "group_too_small", "; the group is too small for its count"
                elif v.group in no_fit:
                    cause, extra = "no_count_fits", "; no whole number of parts fits the bounds"
                else:
                    cause = "search"
            elif v.rule == "count":
                note = next((n for n in notes if n.rule == "count" and n.group == v.group), None)
                if note is not None:
                    counted.add(id(note))
                    cause, units, extra = note.cause, note.units, f": {note.message}"
                else:
                    cause = "search"
            elif v.rule == "contiguity":
                cause = cause or "search"
            if cause == "search":
                extra = "; no arrangement meeting the rule was found (a different seed or more restarts may help)"
            out.append(Violation(v.rule, v.message + extra, part=v.part, group=v.group, units=units, cause=cause))
        # group-level explanations that are not already a part's own
        for note in notes:
            if note.cause in ("group_too_small", "group_too_large", "too_many_components", "no_count_fits") \
                    and id(note) not in counted:
                out.append(note)
        return out


def _bounds(spec: float | Mapping[Any, float] | None, name: str, groups: list[str], default: float) -> list[float]:
    """A bound per group from a number, a mapping group -> number, or nothing."""
    if spec is None:
        return [default] * len(groups)
    if isinstance(spec, Mapping):
        given = {str(k): v for k, v in spec.items()}
        unknown = sorted(set(given) - set(groups))
        if unknown:
            raise UsageError(f"{name} names unknown group(s) {', '.join(unknown[:5])}")
        return [_bound(given[g], name) if g in given else default for g in groups]
    return [_bound(spec, name)] * len(groups)


def _bound(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)) or v < 0:
        raise UsageError(f"{name} must be a finite number >= 0, not {v!r}")
    return float(v)


def _as_count(v: object, what: str) -> int:
    try:
        k = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what} must be an integer >= 1, not {v!r}") from exc
    if k < 1 or (isinstance(v, float) and not v.is_integer()):
        raise UsageError(f"{what} must be an integer >= 1, not {v!r}")
    return k


def _short(ids: Sequence[Hashable], limit: int = 6) -> str:
    s = ", ".join(str(i) for i in ids[:limit])
    return s + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


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


def _match_labels(part: list[int], P: int, old: list[int], old_labels: list[Hashable | None]) -> list[Hashable | None]:
    """Give each new part the old label it overlaps most (greedy by overlap, each label once)."""
    overlap: dict[tuple[int, int], int] = {}
    for x, p in enumerate(part):
        if old[x] >= 0:
            overlap[(p, old[x])] = overlap.get((p, old[x]), 0) + 1
    out: list[Hashable | None] = [None] * P
    taken: set[int] = set()
    for (p, q), _ in sorted(overlap.items(), key=lambda kv: (-kv[1], kv[0])):
        if out[p] is None and q not in taken and old_labels[q] is not None:
            out[p] = old_labels[q]
            taken.add(q)
    return out


def _stay_index(old_part: int, old_labels: list[Hashable | None], new_labels: list[Hashable | None]) -> int:
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
