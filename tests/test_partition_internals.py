"""The engine's private stages on their own: input normalisers, tree bisection, local search, counts.

The public behaviour is tested through :class:`~gridgeo.partition.Model` in ``test_partition.py``;
these tests pin the contracts the stages give each other (connected sides, consistent tallies,
the messages of the normalisers).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy.sparse import csr_matrix

from gridgeo.errors import UsageError
from gridgeo.partition import Model, Units
from gridgeo.partition._comp import Comp
from gridgeo.partition._count import allocate
from gridgeo.partition._inputs import read_counts, read_groups, read_similar, read_sizes
from gridgeo.partition._search import Search
from gridgeo.partition._tree import SMALL, bisect, tree_partition


def grid_comp(rows: int, cols: int, *, lo: float = 0.0, hi: float = float("inf"), seed: int = 0) -> Comp:
    """A rook lattice as one component, random weights 1..9, a categorical column (left/right half)."""
    G = nx.grid_2d_graph(rows, cols)
    units = Units.from_networkx(G)
    A = csr_matrix((units.lengths, units.indices, units.indptr), shape=(units.n, units.n))
    w = np.random.default_rng(seed).integers(1, 10, size=units.n).astype(float)
    half = np.asarray([int(i % cols >= cols // 2) for i in range(units.n)], dtype=np.int64)  # row-major ids
    return Comp(A, w, [half], [], lo=lo, hi=hi)


def connected(comp: Comp, nodes: list[int]) -> bool:
    keep = set(nodes)
    seen = {nodes[0]}
    stack = [nodes[0]]
    while stack:
        x = stack.pop()
        for y in comp.nbrs[x]:
            if y in keep and y not in seen:
                seen.add(y)
                stack.append(y)
    return seen == keep


@pytest.mark.parametrize(("rows", "cols"), [(6, 7), (25, 25)])  # plain-Python trees, then scipy trees
def test_tree_partition_gives_k_connected_parts(rows: int, cols: int) -> None:
    comp = grid_comp(rows, cols)
    assert (comp.m <= SMALL) == (rows * cols <= SMALL)
    part, P = tree_partition(comp, 5, np.random.default_rng(1))
    assert P == 5 and sorted(set(part)) == list(range(5))
    for p in range(P):
        assert connected(comp, [u for u in range(comp.m) if part[u] == p])


def test_bisect_sides_are_connected_and_share_the_parts() -> None:
    comp = grid_comp(8, 8)
    nodes = np.arange(comp.m, dtype=np.int64)
    side, ka = bisect(comp, nodes, 4, np.random.default_rng(3), max_trees=24)
    assert 1 <= ka <= 3
    assert connected(comp, nodes[side].tolist()) and connected(comp, nodes[~side].tolist())


def test_search_tallies_follow_moves() -> None:
    """cut_delta is the change of cut_length a move makes; sizes and members stay consistent after it."""
    comp = grid_comp(6, 6)
    part, P = tree_partition(comp, 3, np.random.default_rng(0))
    s = Search(comp, part, P)
    for u in range(comp.m):
        A = s.part[u]
        B = next((s.part[v] for v in comp.nbrs[u] if s.part[v] != A), None)
        if B is not None and s.cnt[A] > 1 and s.stays_connected(u, A):
            break
    else:
        pytest.fail("no movable boundary unit")
    before, delta = s.cut_length(), s.cut_delta(u, A, B)
    s.move(u, B)
    assert s.cut_length() == pytest.approx(before + delta)
    assert s.size == pytest.approx([sum(comp.wl[x] for x in s.mem[p]) for p in range(P)])
    assert connected(comp, sorted(s.mem[A]))


def test_shake_and_repair_reach_the_bounds() -> None:
    comp = grid_comp(10, 10, seed=4)
    t = comp.W / 4
    comp = grid_comp(10, 10, lo=0.95 * t, hi=1.05 * t, seed=4)
    part, P = tree_partition(comp, 4, np.random.default_rng(2))
    s = Search(comp, part, P)
    s.repair(float("inf"))
    if not s.solved():
        s.shake(10_000, np.random.default_rng(2), float("inf"))
        s.repair(float("inf"))
    assert s.solved()
    for p in range(P):
        assert connected(comp, sorted(s.mem[p]))


def test_allocate_one_each_then_where_parts_are_largest() -> None:
    comps = [np.arange(10), np.arange(4), np.arange(2)]
    ks = allocate(comps, [100.0, 40.0, 20.0], 6, 10.0)
    assert sum(ks) == 6 and all(k >= 1 for k in ks) and ks[0] > ks[1] >= ks[2]
    assert allocate(comps, [100.0, 40.0, 20.0], 30, 10.0) == [10, 4, 2]  # never more parts than units


def test_input_normalisers_name_the_fault() -> None:
    G = nx.path_graph(4)
    for i in G.nodes:
        G.nodes[i].update(w=i, g="A" if i < 2 else None, x=[1.0, np.nan, 2.0, 3.0][i], k=True)
    u = Units.from_networkx(G)
    assert read_sizes(u, None)[0] == "units"
    name, w = read_sizes(u, "w")
    assert name == "w" and w.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(UsageError, match="have no group"):
        read_groups(u, "g")
    with pytest.raises(UsageError, match="missing values"):
        read_similar(u, ["x"])
    groups, gidx = read_groups(u, None)
    with pytest.raises(UsageError, match="integer >= 1"):
        read_counts(True, u, groups, gidx)
    with pytest.raises(UsageError, match="must be an int, a mapping or a column name"):
        read_counts(2.5, u, groups, gidx)  # type: ignore[arg-type]


def test_a_previous_partition_beyond_repair_is_redrawn_keeping_labels() -> None:
    """Striped previous labels cannot be repaired into tight bounds; the fresh draw inherits labels."""
    G = nx.grid_2d_graph(12, 12)
    G = nx.relabel_nodes(G, {n: f"{n[0]},{n[1]}" for n in G.nodes})
    rng = np.random.default_rng(3)
    for n in G.nodes:
        G.nodes[n]["w"] = int(rng.integers(50, 501))
    W = sum(d["w"] for _, d in G.nodes(data=True))
    prev = {n: f"Q{int(n.split(',')[0]) % 3 + 3 * (int(n.split(',')[1]) // 3 % 2)}" for n in G.nodes}
    res = Model(G, size="w", min_size=0.97 * W / 5, max_size=1.03 * W / 5, count=5, previous=prev).solve(seed=0)
    assert res.feasible and res.stats["redrawn_components"] == 1
    kept = [p.label for p in res.parts if p.label is not None]  # each fresh part takes the label it overlaps most
    assert len(kept) >= 4 and len(set(kept)) == len(kept) and set(kept) <= set(prev.values())
