"""Initial partitions by recursive bisection of random spanning trees (the GerryChain idea).

Cutting one edge of a spanning tree splits a connected set into two connected sets; among the
cuts of a few random trees we keep the one whose sides best fit a whole number of mean-sized
parts. Unlike GerryChain we never give up after N attempts: the best cut found is taken and
the local search (:mod:`gridgeo.partition._search`) repairs what is left. With a categorical
similarity column, edges between different values get heavier tree weights and cutting one is
preferred, so parts tend to follow the urban/rural line.

Small sets (at most :data:`SMALL` units) draw their trees in plain Python (Kruskal on
pre-drawn random weights), large ones with scipy; the two paths score cuts by the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, triu
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

from gridgeo.partition._comp import Comp, IArray, size_margin

SMALL = 400  # below this many units, spanning trees are drawn in plain Python

#: A cut's sort key: (outside tolerance, not across a categorical line, unbalanced, relative error).
CutKey = tuple[float, ...]


@dataclass(frozen=True)
class _Edges:
    """The edges ``r[i] < c[i]`` of a set of ``m`` units (local indices), and their category penalty."""

    m: int
    r: IArray
    c: IArray
    pen: NDArray[np.float64]


@dataclass(frozen=True)
class _CutSpec:
    """What makes a cut good: sides near whole numbers of parts of mean size ``t``."""

    kk: int  # parts to share between the two sides
    t: float  # the mean part size
    margin: float  # the error unit: how far a part may drift from the mean
    need_bal: int  # the smaller side should hold at least this many parts
    tol: float = 0.3  # errors (in margins) up to this are within tolerance


@dataclass(frozen=True)
class _Tree:
    """A spanning tree in BFS order with each vertex's subtree weight and unit count."""

    order: list[int]
    pred: list[int]
    s: list[float]
    cnt: list[int]


def bisect(comp: Comp, nodes: IArray, kk: int, rng: np.random.Generator, *,
           max_trees: int) -> tuple[NDArray[np.bool_], int]:
    """Split ``nodes`` (connected) into two connected sides holding ka and kk-ka parts.

    Draws random spanning trees and scores every tree edge cut by how far
    the sides are from a whole number of mean-sized parts (relative to the
    bound margin); prefers cuts within tolerance, then cuts across a
    categorical boundary, then balanced splits (fewer levels of recursion).
    Returns the best cut found, whatever its score, as a mask of the side
    holding ka parts, and ka.
    """
    m = len(nodes)
    small = m <= SMALL
    edges = _edges(comp, nodes, small=small)
    use_cross = bool(comp.cats)
    w = comp.w[nodes]
    t = float(w.sum()) / kk
    spec = _CutSpec(kk=kk, t=t, margin=size_margin(t, comp.lo, comp.hi), need_bal=max(1, kk // 4))
    trees = _python_trees(edges, rng, max_trees) if small else _scipy_trees(edges, rng, max_trees)
    codes = [c_[nodes].tolist() for c_ in comp.cats_np] if small else []
    best_key: CutKey | None = None
    best: tuple[int, int, _Tree] | None = None
    for trial, (order_l, pred_l) in enumerate(trees):
        if len(order_l) != m:
            raise RuntimeError("bisect called on a disconnected set")  # an engine bug, not bad input
        tree = _subtree_sums(order_l, pred_l, w.tolist())
        found = _best_cut(tree, spec, codes) if small else _best_cut_arrays(comp, nodes, tree, spec)
        if found is None:
            continue
        key, v_best, ka_found = found
        if best_key is None or key < best_key:
            best_key = key
            best = (v_best, ka_found, tree)
        if best_key[0] == 0 and best_key[2] == 0 and (not use_cross or best_key[1] == 0 or trial >= 3):
            break
    if best is None:  # cannot happen for kk <= m (a leaf always fits); keep the engine total
        raise RuntimeError("no admissible cut")
    v, ka_best, tree = best
    return _below(tree, v), ka_best


def _edges(comp: Comp, nodes: IArray, *, small: bool) -> _Edges:
    """The edges inside ``nodes`` in local indices, with a penalty on edges across a category."""
    m = len(nodes)
    if small:  # scipy's per-call overhead dominates on a township's few dozen villages
        local = {int(x): i for i, x in enumerate(nodes.tolist())}
        pairs = [(i, local[y]) for i, x in enumerate(nodes.tolist()) for y in comp.nbrs[x]
                 if y in local and local[y] > i]
        r = np.asarray([a for a, _ in pairs], dtype=np.int64)
        c = np.asarray([b for _, b in pairs], dtype=np.int64)
    else:
        tri = triu(comp.A[nodes][:, nodes], k=1).tocoo()
        r, c = tri.row.astype(np.int64), tri.col.astype(np.int64)
    pen = comp.cross(nodes[r], nodes[c]).astype(float) if comp.cats else np.zeros(len(r))
    return _Edges(m, r, c, pen)


def _python_trees(edges: _Edges, rng: np.random.Generator, max_trees: int) -> Iterator[tuple[list[int], list[int]]]:
    """Random spanning trees of a small set: all trees' edge weights and roots drawn at once."""
    m, r = edges.m, edges.r
    wts_all = 1.0 + rng.random((max_trees, len(r))) + 2.0 * edges.pen
    by_weight_all = np.argsort(wts_all, axis=1, kind="stable").tolist()
    roots = rng.integers(m, size=max_trees).tolist()
    rl, cl = r.tolist(), edges.c.tolist()
    for trial in range(max_trees):
        yield _kruskal_bfs(m, rl, cl, by_weight_all[trial], roots[trial])


def _scipy_trees(edges: _Edges, rng: np.random.Generator, max_trees: int) -> Iterator[tuple[list[int], list[int]]]:
    """Random spanning trees of a large set, one scipy minimum spanning tree per draw."""
    m, r, c = edges.m, edges.r, edges.c
    for _ in range(max_trees):
        wts = 1.0 + rng.random(len(r)) + 2.0 * edges.pen
        root = int(rng.integers(m))
        T = minimum_spanning_tree(csr_matrix((wts, (r, c)), shape=(m, m)))
        order, pred = breadth_first_order(T, root, directed=False, return_predecessors=True)
        yield order.tolist(), pred.tolist()


def _subtree_sums(order: list[int], pred: list[int], s: list[float]) -> _Tree:
    """Accumulate unit weights ``s`` (consumed) and counts up the tree, leaves first."""
    cnt = [1] * len(order)
    for v in reversed(order[1:]):
        p = pred[v]
        s[p] += s[v]
        cnt[p] += cnt[v]
    return _Tree(order, pred, s, cnt)


def _best_cut(tree: _Tree, spec: _CutSpec, codes: list[list[int]]) -> tuple[CutKey, int, int] | None:
    """The best edge of one small tree (same key as :func:`_best_cut_arrays`), in plain Python."""
    order, pred, s, cnt = tree.order, tree.pred, tree.s, tree.cnt
    t, kk, margin, tol, need_bal = spec.t, spec.kk, spec.margin, spec.tol, spec.need_bal
    m = len(order)
    best: CutKey | None = None
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


def _best_cut_arrays(comp: Comp, nodes: IArray, tree: _Tree, spec: _CutSpec) -> tuple[CutKey, int, int] | None:
    """The best edge of one large tree, scored with numpy over all edges at once."""
    t, kk, m = spec.t, spec.kk, len(tree.order)
    cand = np.asarray(tree.order[1:], dtype=np.int64)
    sa = np.asarray(tree.s)[cand]
    ca = np.asarray(tree.cnt)[cand]
    ka = np.clip(np.rint(sa / t), 1, kk - 1).astype(np.int64)
    kb = kk - ka
    ok = (ca >= ka) & (m - ca >= kb)
    if not ok.any():
        return None
    err = np.abs(sa - ka * t) / np.minimum(ka, kb) / spec.margin
    bad = (err > spec.tol).astype(float)
    notbal = (np.minimum(ka, kb) < spec.need_bal).astype(float)
    if comp.cats:
        ends = np.asarray(tree.pred)[cand]
        nocross = (~comp.cross(nodes[cand], nodes[ends])).astype(float)
    else:
        nocross = np.zeros(len(cand))
    big = 10.0 * (~ok)
    i = int(np.lexsort((err, notbal, nocross, bad + big))[0])
    key = (float(bad[i] + big[i]), float(nocross[i]), float(notbal[i]), float(err[i]))
    return key, int(cand[i]), int(ka[i])


def _below(tree: _Tree, v: int) -> NDArray[np.bool_]:
    """Mask of ``v`` and everything below it in the tree: one side of the cut above ``v``."""
    inside = [False] * len(tree.order)
    inside[v] = True
    for x in tree.order:
        p = tree.pred[x]
        if p >= 0 and inside[p]:
            inside[x] = True
    return np.asarray(inside)


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


def tree_partition(comp: Comp, k: int, rng: np.random.Generator, *, max_trees: int = 24) -> tuple[list[int], int]:
    """Recursive bisection of a connected component into ``k`` connected parts (bounds from ``comp``)."""
    k = max(1, min(k, comp.m))
    part = np.zeros(comp.m, dtype=np.int64)
    stack: list[tuple[IArray, int]] = [(np.arange(comp.m, dtype=np.int64), k)]
    pieces: list[IArray] = []
    while stack:
        nodes, kk = stack.pop()
        if kk <= 1:
            pieces.append(nodes)
            continue
        side, ka = bisect(comp, nodes, kk, rng, max_trees=max_trees)
        stack.append((nodes[~side], kk - ka))
        stack.append((nodes[side], ka))
    for i, nd in enumerate(pieces):
        part[nd] = i
    return part.tolist(), len(pieces)
