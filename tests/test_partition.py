"""partition + rules: hand-drawn lattices, infeasible cases explained, locks, re-draws, determinism.

Lattices are drawn as ASCII art: every non-blank character is a unit at (row, col),
neighbours share a side (rook). In weight art ``.`` weighs 1 and a digit its value;
in group or kind art the character is the unit's group or kind.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from gridgeo.county.rules import load_rules_file
from gridgeo.errors import FileFormatError, UsageError
from gridgeo.partition import Model, Objective, Result, Units
from gridgeo.partition.rules import PartitionView, Validator, standard_rules


def lattice(weights: str, groups: str | None = None, kinds: str | None = None) -> nx.Graph:
    """A rook lattice from ASCII art; node ids are ``"r,c"``."""

    def cells(art: str) -> dict[tuple[int, int], str]:
        lines = [ln for ln in art.strip("\n").splitlines()]
        indent = min(len(ln) - len(ln.lstrip()) for ln in lines if ln.strip())
        return {(r, c): ch for r, ln in enumerate(lines) for c, ch in enumerate(ln[indent:]) if ch != " "}

    w = cells(weights)
    g = cells(groups) if groups else {}
    k = cells(kinds) if kinds else {}
    G = nx.Graph()
    for (r, c), ch in sorted(w.items()):
        G.add_node(f"{r},{c}", w=1 if ch == "." else int(ch), g=g.get((r, c), "A"), kind=k.get((r, c), "x"))
    for r, c in sorted(w):
        for dr, dc in ((1, 0), (0, 1)):
            if (r + dr, c + dc) in w:
                G.add_edge(f"{r},{c}", f"{r + dr},{c + dc}", length=1.0)
    return G


def random_lattice(rows: int, cols: int, seed: int = 42) -> nx.Graph:
    G = nx.grid_2d_graph(rows, cols)
    G = nx.relabel_nodes(G, {n: f"{n[0]},{n[1]}" for n in G.nodes})
    rng = np.random.default_rng(seed)
    for n in G.nodes:
        G.nodes[n]["w"] = int(rng.integers(50, 501))
    return G


def assert_valid(G: nx.Graph, res: Result, lo: float = 0.0, hi: float = float("inf")) -> None:
    """Independent check with networkx: every part connected, inside one group, within bounds."""
    assert sorted(res.assignment) == sorted(G.nodes)
    for p in res.parts:
        assert p.units, "empty part"
        assert nx.is_connected(G.subgraph(p.units)), f"part {p.index} not contiguous"
        assert len({G.nodes[u].get("g", "A") for u in p.units}) == 1
        size = sum(G.nodes[u]["w"] for u in p.units)
        assert size == pytest.approx(p.size)
        assert lo - 1e-9 <= size <= hi + 1e-9, (p.index, size, lo, hi)


# ------------------------------------------------------------------------------ feasible
def test_random_lattice_fixed_count_within_ten_percent() -> None:
    G = random_lattice(12, 12)
    W = sum(d["w"] for _, d in G.nodes(data=True))
    t = W / 6
    res = Model(G, size="w", min_size=0.9 * t, max_size=1.1 * t, count=6).solve(seed=0)
    assert res.feasible and res.violations == [] and len(res.parts) == 6
    assert all(r["ok"] for r in res.satisfaction.values())
    assert_valid(G, res, 0.9 * t, 1.1 * t)


def test_choke_point_is_not_a_dead_end() -> None:
    """Two blobs joined by a one-unit corridor; the parts must cut the corridor right.

    .....   .....
    .....   .....
    .............
    .....   .....
    .....   .....
    """
    G = lattice("""
        .....   .....
        .....   .....
        .............
        .....   .....
        .....   .....
    """)
    assert G.number_of_nodes() == 53
    for k, lo, hi in ((2, 26, 27), (3, 17, 18), (4, 13, 14)):
        res = Model(G, size="w", min_size=lo, max_size=hi, count=k).solve(seed=0)
        assert res.feasible, res.violations
        assert_valid(G, res, lo, hi)


def test_free_count_is_max_p_under_a_minimum() -> None:
    """A 10 x 10 lattice of weight-1 units with a minimum of 10 holds at most 10 parts; all are found."""
    G = lattice("\n".join(["." * 10] * 10))
    res = Model(G, size="w", min_size=10).solve(seed=0)
    assert res.feasible and len(res.parts) == 10
    assert_valid(G, res, 10)


def test_free_count_with_only_a_maximum_takes_fewest_parts() -> None:
    G = lattice("\n".join(["." * 8] * 8))
    res = Model(G, size="w", max_size=20).solve(seed=0)
    assert res.feasible and len(res.parts) == 4  # ceil(64 / 20)
    assert_valid(G, res, 0, 20)


def test_groups_are_never_crossed_and_counted_separately() -> None:
    """Two townships side by side; three parts in each.

    AAAAAABBBBBB   (6 rows)
    """
    art = "\n".join(["......" * 2] * 6)
    groups = "\n".join(["AAAAAABBBBBB"] * 6)
    G = lattice(art, groups)
    res = Model(G, size="w", min_size=11, max_size=13, count=3, group="g").solve(seed=0)
    assert res.feasible
    assert sorted(p.group for p in res.parts) == ["A"] * 3 + ["B"] * 3
    assert_valid(G, res, 11, 13)


def test_count_from_mapping_and_column() -> None:
    art = "\n".join(["......" * 2] * 4)
    groups = "\n".join(["AAAAAABBBBBB"] * 4)
    G = lattice(art, groups)
    res = Model(G, size="w", count={"A": 2, "B": 4}, group="g").solve(seed=0)
    assert [sum(p.group == g for p in res.parts) for g in "AB"] == [2, 4]
    for _, d in G.nodes(data=True):
        d["k"] = 3 if d["g"] == "A" else 1
    res = Model(G, size="w", count="k", group="g").solve(seed=0)
    assert [sum(p.group == g for p in res.parts) for g in "AB"] == [3, 1]
    assert res.feasible


def test_bounds_per_group() -> None:
    """A (urban) wants parts of 4-5 units, B (rural) of 8-10; free count.

    AAAAAABBBBBB   (4 rows)
    """
    G = lattice("\n".join(["......" * 2] * 4), "\n".join(["AAAAAABBBBBB"] * 4))
    res = Model(G, size="w", min_size={"A": 4, "B": 8}, max_size={"A": 5, "B": 10}, group="g").solve(seed=0)
    assert res.feasible
    assert sum(p.group == "A" for p in res.parts) == 6 and sum(p.group == "B" for p in res.parts) == 3
    for p in res.parts:
        assert (4 <= p.size <= 5) if p.group == "A" else (8 <= p.size <= 10)
    with pytest.raises(UsageError, match="unknown group"):
        Model(G, size="w", min_size={"C": 1}, group="g")


def test_similar_categorical_is_not_mixed_when_avoidable() -> None:
    """Urban (u) and rural (r) halves; two parts should follow the line between them.

    uuurrr
    uuurrr
    uuurrr
    uuurrr
    """
    kinds = "\n".join(["uuurrr"] * 4)
    G = lattice("\n".join(["......"] * 4), kinds=kinds)
    for seed in range(3):
        res = Model(G, size="w", min_size=10, max_size=14, count=2, similar=["kind"]).solve(seed=seed)
        assert res.feasible
        for p in res.parts:
            assert len({G.nodes[u]["kind"] for u in p.units}) == 1, (seed, p.units)


def test_arrays_input_matches_graph_input() -> None:
    G = random_lattice(6, 6)
    units = Units.from_networkx(G)
    w = np.asarray([G.nodes[u]["w"] for u in units.ids])
    t = w.sum() / 3
    kw = dict(min_size=0.9 * t, max_size=1.1 * t, count=3)
    a = Model(G, size="w", **kw).solve(seed=5)
    arr = Units.from_arrays(units.indptr, units.indices, ids=units.ids, lengths=units.lengths, attrs={"w": w})
    b = Model(arr, size="w", **kw).solve(seed=5)
    assert a.assignment == b.assignment and a.feasible


# ------------------------------------------------------------------------------ infeasible, explained
def test_unit_above_max_is_named_and_best_partition_returned() -> None:
    """The 9 alone exceeds the maximum of 8.

    ....
    .9..
    ....
    ....
    """
    G = lattice("""
        ....
        .9..
        ....
        ....
    """)
    res = Model(G, size="w", min_size=4, max_size=8, count=3).solve(seed=0)
    assert not res.feasible
    assert res.failed_rules == ["max_size"]
    (v,) = res.violations
    assert v.cause == "unit_above_max" and v.units == ("1,1",) and "1,1" in v.message
    assert len(res.parts) == 3
    assert_valid(G, res)  # contiguity and groups still hold
    heavy = res.parts[res.assignment["1,1"]]
    assert heavy.units == ["1,1"]  # the repair isolates it: nothing else is dragged over the maximum


def test_island_below_min_is_named() -> None:
    """A two-by-two island weighs 4 < minimum 5.

    .....  ..
    .....  ..
    .....
    """
    G = lattice("""
        .....  ..
        .....  ..
        .....
    """)
    res = Model(G, size="w", min_size=5).solve(seed=0)
    assert res.failed_rules == ["min_size"]
    island = {"0,7", "0,8", "1,7", "1,8"}
    (v,) = [v for v in res.violations if v.cause == "island_below_min"]
    assert set(v.units) == island and "island" in v.message
    assert sorted(len(p.units) for p in res.parts if set(p.units) <= island) == [4]
    assert_valid(G, res)


def test_group_too_small_for_its_count_is_named() -> None:
    """B holds 4 units but must make 3 parts of at least 2.

    AAAABB
    AAAABB
    """
    G = lattice("......\n......", "AAAABB\nAAAABB")
    res = Model(G, size="w", min_size=2, count=3, group="g").solve(seed=0)
    assert not res.feasible
    notes = [v for v in res.violations if v.cause == "group_too_small" and v.part is None]
    assert len(notes) == 1 and notes[0].group == "B"
    assert set(notes[0].units) == {"0,4", "0,5", "1,4", "1,5"}
    assert all(v.group == "B" for v in res.violations)  # A is fine
    assert sum(p.group == "B" for p in res.parts) == 3  # the count is still honoured
    assert_valid(G, res)


def test_more_pieces_than_parts_is_named() -> None:
    """Three separate pieces cannot make two contiguous parts.

    ..  ..  ..
    """
    G = lattice("..  ..  ..")
    res = Model(G, size="w", count=2).solve(seed=0)
    assert "count" in res.failed_rules
    (v,) = [v for v in res.violations if v.cause == "too_many_components"]
    assert "3 separate pieces" in v.message
    assert_valid(G, res)  # each piece is a part of its own


# ------------------------------------------------------------------------------ dynamic adjustment
def test_locks_are_kept_and_the_rest_redrawn() -> None:
    G = random_lattice(8, 8)
    W = sum(d["w"] for _, d in G.nodes(data=True))
    t = W / 4
    locked = {f"{r},{c}": "L1" for r in range(2) for c in range(8)}  # the top two rows
    res = Model(G, size="w", min_size=0.5 * t, max_size=1.5 * t, count=4, locks=locked).solve(seed=0)
    lp = [p for p in res.parts if p.locked]
    assert len(lp) == 1 and lp[0].label == "L1" and sorted(lp[0].units) == sorted(locked)
    assert len(res.parts) == 4  # the locked part counts towards the group's count
    assert res.feasible
    assert_valid(G, res, 0.5 * t, 1.5 * t)


def _labels(res: Result) -> dict[Hashable, str]:
    return {u: f"P{p}" for u, p in res.assignment.items()}


def test_previous_unchanged_moves_nothing() -> None:
    G = random_lattice(10, 10)
    W = sum(d["w"] for _, d in G.nodes(data=True))
    kw = dict(size="w", min_size=0.9 * W / 5, max_size=1.1 * W / 5, count=5)
    first = Model(G, **kw).solve(seed=0)
    again = Model(G, previous=_labels(first), **kw).solve(seed=9)
    assert again.feasible and again.moved == [] and again.stats["moved"] == 0


def test_previous_after_a_split_and_an_update_moves_few() -> None:
    """Households of one unit grow and another unit splits in two; few units move."""
    G = random_lattice(10, 10)
    W = sum(d["w"] for _, d in G.nodes(data=True))
    kw = dict(size="w", min_size=0.9 * W / 5, max_size=1.1 * W / 5, count=5)
    first = Model(G, **kw).solve(seed=0)
    prev = _labels(first)
    H = G.copy()
    H.nodes["5,5"]["w"] += 200  # households updated
    nbrs = list(H.neighbors("2,2"))
    w = H.nodes["2,2"]["w"]
    H.remove_node("2,2")  # a village split in two halves, each keeping two of the old neighbours
    H.add_node("2,2a", w=w // 2)
    H.add_node("2,2b", w=w - w // 2)
    H.add_edge("2,2a", "2,2b", length=1.0)
    for i, v in enumerate(nbrs):
        H.add_edge("2,2a" if i < 2 else "2,2b", v, length=1.0)
    res = Model(H, previous=prev, **kw).solve(seed=0)
    assert res.feasible
    assert res.moved is not None and len(res.moved) <= 10
    assert_valid(H, res, kw["min_size"], kw["max_size"])
    fresh = Model(H, **kw).solve(seed=1)  # a fresh draw would move far more
    fresh_moved = sum(prev[u] != f"P{fresh.assignment[u]}" for u in prev if u in fresh.assignment)
    assert len(res.moved) < fresh_moved


# ------------------------------------------------------------------------------ determinism
def test_same_seed_same_result_different_seeds_may_differ() -> None:
    G = random_lattice(12, 12)
    W = sum(d["w"] for _, d in G.nodes(data=True))
    kw = dict(size="w", min_size=0.9 * W / 6, max_size=1.1 * W / 6, count=6)
    a = Model(G, **kw).solve(seed=3)
    b = Model(G, **kw).solve(seed=3)
    assert a.assignment == b.assignment
    others = [Model(G, **kw).solve(seed=s).assignment for s in (4, 5, 6)]
    assert any(o != a.assignment for o in others)


# ------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(size="w", min_size=5, max_size=3, count=2), "above max_size"),
        (dict(size="w", count=0), "integer >= 1"),
        (dict(size="w"), "free count needs"),
        (dict(size="nope", count=2), "no unit attribute"),
        (dict(size="w", min_size=-1, count=2), ">= 0"),
        (dict(size="w", count=2, locks={"9,9": "X"}), "not among the units"),
        (dict(size="w", count={"B": 2}, group="g"), "no count for group"),
    ],
)
def test_usage_errors(kw: dict, match: str) -> None:
    G = lattice("...\n...")
    with pytest.raises(UsageError, match=match):
        Model(G, **kw)


def test_negative_size_names_the_unit() -> None:
    G = lattice("...")
    G.nodes["0,1"]["w"] = -3
    with pytest.raises(UsageError, match="unit 0,1"):
        Model(G, size="w", count=1)


def test_count_column_must_be_constant_within_group() -> None:
    G = lattice("....")
    for i, n in enumerate(G.nodes):
        G.nodes[n]["k"] = 1 + i % 2
    with pytest.raises(UsageError, match="varies within group"):
        Model(G, size="w", count="k")


def test_objective_weights_checked() -> None:
    with pytest.raises(UsageError):
        Objective(compactness=-1)


# ------------------------------------------------------------------------------ rules
def test_validator_names_every_failed_rule() -> None:
    """Part 0 = {a, c} is split (b is between them, in part 1) and part 1 weighs 9 > 5."""
    view = PartitionView(
        ids=["a", "b", "c"], part=np.array([0, 1, 0]), n_parts=2, weights=np.array([1.0, 9.0, 1.0]),
        indptr=np.array([0, 1, 3, 4]), indices=np.array([1, 0, 2, 1]), group=np.zeros(3, dtype=np.int64),
        groups=["A"])
    val = Validator(standard_rules(lo=1, hi=5, counts={"A": 2}))(view)
    assert not val.ok and val.failed == ["contiguity", "max_size"]
    split = next(v for v in val.violations if v.rule == "contiguity")
    assert split.part == 0 and len(split.units) == 1
    sat = val.satisfaction()
    assert sat["contiguity"]["failed"] == 1 and sat["min_size"]["ok"] and sat["count"]["ok"]


def test_rules_file_toml_and_errors(tmp_path: Path) -> None:
    ok = tmp_path / "r.toml"
    ok.write_text('group_by = "township"\nmin = 800\nmax = 1500\nsimilar = ["kind"]\n[weights]\nsimilarity = 3\n')
    assert load_rules_file(ok)["max"] == 1500
    bad = tmp_path / "bad.toml"
    bad.write_text("maximum = 3\n")
    with pytest.raises(UsageError, match="unknown rule 'maximum'"):
        load_rules_file(bad)
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps({"min": "800"}))
    with pytest.raises(UsageError, match="min"):
        load_rules_file(typed)
    broken = tmp_path / "broken.toml"
    broken.write_text("min = = 3")
    with pytest.raises(FileFormatError):
        load_rules_file(broken)
