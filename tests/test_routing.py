"""Tests of gridgeo.routing.orienteering: exact optima by brute force, feasibility, bad inputs.

No timed assertions here (bench/bench_routing.py measures speed); every search is bounded by
iteration counts, so the results are the same on a slow machine.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from gridgeo.errors import UsageError
from gridgeo.routing import OrienteeringResult, orienteering
from tests.conftest import SHARED, _need

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def routing_data() -> Path:
    """``../shared/bench/routing``; fails under CI when missing."""
    return _need(SHARED / "bench" / "routing")


def euclid(xy: np.ndarray) -> np.ndarray:
    return np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2))


def route_length(d: np.ndarray, r: list[int], service: np.ndarray | None = None) -> float:
    length = float(sum(d[a, b] for a, b in itertools.pairwise(r)))
    if service is not None:
        length += float(sum(service[i] for i in set(r)))
    return length


def assert_feasible(res: OrienteeringResult, d: np.ndarray, prize: np.ndarray, budget: float, *, start: int,
                    end: int, routes: int, service: np.ndarray | None = None) -> None:
    assert len(res.routes) == routes
    seen: list[int] = []
    for r, length in zip(res.routes, res.lengths, strict=True):
        assert r[0] == start and r[-1] == end
        assert route_length(d, r, service) == pytest.approx(length)
        assert length <= budget + 1e-9
        seen += r[1:-1]
    assert len(seen) == len(set(seen)), "a node is visited twice"
    assert start not in seen and end not in seen
    assert res.prize == pytest.approx(float(prize[seen].sum()) if seen else 0.0)
    everyone = set(range(len(prize))) - {start, end}
    assert set(res.unvisited) == everyone - set(seen)


def brute_force(d: np.ndarray, prize: np.ndarray, budget: float, *, start: int, end: int, routes: int,
                service: np.ndarray | None = None) -> float:
    """Best prize by enumeration: shortest path through every subset, then disjoint subsets."""
    n = len(prize)
    s = np.zeros(n) if service is None else service
    nodes = [i for i in range(n) if i not in (start, end)]
    fixed = s[start] + (s[end] if end != start else 0.0)
    best_len: dict[frozenset[int], float] = {frozenset(): fixed + d[start, end]}
    for k in range(1, len(nodes) + 1):
        for sub in itertools.combinations(nodes, k):
            best = min(
                route_length(d, [start, *perm, end]) for perm in itertools.permutations(sub)
            ) + fixed + float(s[list(sub)].sum())
            best_len[frozenset(sub)] = best
    feasible = [(float(prize[list(sub)].sum()), sub) for sub, ln in best_len.items() if ln <= budget + 1e-9]
    best_prize = 0.0
    for combo in itertools.combinations_with_replacement(feasible, routes):
        subs = [c[1] for c in combo]
        union = frozenset().union(*subs)
        if sum(len(x) for x in subs) != len(union):
            continue
        best_prize = max(best_prize, float(prize[list(union)].sum()) if union else 0.0)
    return best_prize


def random_instance(seed: int, n: int = 8, asym: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    d = euclid(rng.random((n, 2)) * 10)
    if asym:
        d = d * rng.uniform(1.0, 1.8, size=(n, n))  # one-way detours: d[i, j] != d[j, i]
        np.fill_diagonal(d, 0.0)
    prize = rng.integers(1, 10, size=n).astype(float)
    return d, prize


# --------------------------------------------------------------------------- exact optima


@pytest.mark.parametrize("seed", range(6))
def test_single_route_matches_brute_force(seed: int) -> None:
    d, prize = random_instance(seed)
    budget = float(np.sort(d[0])[-1] * (1.0 + 0.4 * (seed % 3)))
    res = orienteering(d, prize, budget, seed=seed)
    assert_feasible(res, d, prize, budget, start=0, end=0, routes=1)
    assert res.prize == pytest.approx(brute_force(d, prize, budget, start=0, end=0, routes=1))


@pytest.mark.parametrize("seed", range(4))
def test_asymmetric_start_ne_end_matches_brute_force(seed: int) -> None:
    d, prize = random_instance(100 + seed, asym=True)
    assert not np.allclose(d, d.T)
    budget = float(d[0, 7] + 16.0)
    res = orienteering(d, prize, budget, start=0, end=7, seed=seed)
    assert_feasible(res, d, prize, budget, start=0, end=7, routes=1)
    assert res.prize == pytest.approx(brute_force(d, prize, budget, start=0, end=7, routes=1))


@pytest.mark.parametrize("seed", range(4))
def test_two_routes_match_brute_force(seed: int) -> None:
    d, prize = random_instance(200 + seed, n=8, asym=seed % 2 == 1)
    budget = float(d[2, 5] + 5.0)
    res = orienteering(d, prize, budget, start=2, end=5, routes=2, seed=seed)
    assert_feasible(res, d, prize, budget, start=2, end=5, routes=2)
    assert res.prize == pytest.approx(brute_force(d, prize, budget, start=2, end=5, routes=2))


@pytest.mark.parametrize("seed", range(3))
def test_service_times_count_against_the_budget(seed: int) -> None:
    d, prize = random_instance(300 + seed)
    service = np.random.default_rng(seed).uniform(0.5, 3.0, size=len(prize))
    budget = 25.0
    res = orienteering(d, prize, budget, service=service, seed=seed)
    assert_feasible(res, d, prize, budget, start=0, end=0, routes=1, service=service)
    assert res.prize == pytest.approx(brute_force(d, prize, budget, start=0, end=0, routes=1, service=service))
    # Without service the same budget buys at least as much.
    assert orienteering(d, prize, budget, seed=seed).prize >= res.prize


# --------------------------------------------------------------------------- behaviour


def test_larger_team_instance_is_feasible_and_deterministic() -> None:
    rng = np.random.default_rng(7)
    xy = rng.random((40, 2)) * 100
    d = euclid(xy)
    prize = rng.integers(1, 20, size=40).astype(float)
    kw = {"start": 0, "end": 39, "routes": 3, "seed": 5, "max_iterations": 150, "time_limit": 60.0}
    a = orienteering(d, prize, 120.0, **kw)  # type: ignore[arg-type]
    b = orienteering(d, prize, 120.0, **kw)  # type: ignore[arg-type]
    assert_feasible(a, d, prize, 120.0, start=0, end=39, routes=3)
    assert a.routes == b.routes and a.prize == b.prize
    assert a.stopped_by in {"iterations", "patience"}
    assert a.visited == sorted(u for r in a.routes for u in r[1:-1])


def test_unreachable_nodes_and_zero_prizes_are_left_out() -> None:
    d, prize = random_instance(11)
    d[3, :] = np.inf  # one-way dead end: node 3 can be reached but never left
    d[3, 3] = 0.0
    prize[4] = 0.0
    res = orienteering(d, prize, 1e6, seed=0)
    assert 3 in res.unvisited and 4 in res.unvisited
    assert res.prize == pytest.approx(prize.sum() - prize[0] - prize[3] - prize[4])
    assert_feasible(res, np.where(np.isfinite(d), d, 1e12), prize, 1e6, start=0, end=0, routes=1)


def test_trivial_budgets() -> None:
    d, prize = random_instance(12)
    nothing = orienteering(d, prize, 0.0)
    assert nothing.routes == [[0, 0]] and nothing.prize == 0.0 and nothing.lengths == [0.0]
    assert nothing.unvisited == list(range(1, 8))
    everything = orienteering(d, prize, 1e6, routes=2)
    assert everything.prize == pytest.approx(prize[1:].sum()) and everything.unvisited == []


def test_one_node_and_start_equal_end_service_counted_once() -> None:
    d = np.array([[0.0, 2.0], [2.0, 0.0]])
    res = orienteering(d, np.array([0.0, 5.0]), 5.0, service=np.array([0.5, 0.5]))
    assert res.routes == [[0, 1, 0]] and res.lengths == [pytest.approx(5.0)]


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance": np.zeros((3, 2))}, "square"),
        ({"distance": np.zeros((0, 0))}, "square"),
        ({"distance": -np.ones((3, 3))}, "negative"),
        ({"distance": np.full((3, 3), np.nan)}, "NaN"),
        ({"distance": [["a", "b"], ["c", "d"]]}, "numeric"),
        ({"prize": np.ones(2)}, "one value per node"),
        ({"prize": -np.ones(3)}, "non-negative"),
        ({"prize": np.array([1.0, np.inf, 1.0])}, "finite"),
        ({"service": -np.ones(3)}, "non-negative"),
        ({"budget": -1.0}, "budget"),
        ({"budget": float("inf")}, "budget"),
        ({"budget": "long"}, "budget"),
        ({"start": 3}, "start"),
        ({"end": -1}, "end"),
        ({"start": 1.5}, "integer"),
        ({"routes": 0}, "routes"),
        ({"time_limit": 0.0}, "time_limit"),
        ({"seed": -2}, "seed"),
        ({"max_iterations": -1}, "max_iterations"),
        ({"start": 0, "end": 2, "budget": 1.0}, "below the direct trip"),
    ],
)
def test_bad_inputs_raise_usage_error(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "distance": np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]),
        "prize": np.ones(3),
        "budget": 10.0,
    }
    args.update(kwargs)
    with pytest.raises(UsageError, match=match):
        orienteering(**args)  # type: ignore[arg-type]


def test_no_path_from_start_to_end_is_a_usage_error() -> None:
    d = np.array([[0.0, np.inf], [1.0, 0.0]])
    with pytest.raises(UsageError, match="below the direct trip"):
        orienteering(d, np.ones(2), 100.0, start=0, end=1)


# --------------------------------------------------------------------------- Tsiligirides


def load_op(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    tmax = float(lines[0][0])
    rows = np.array([[float(t) for t in ln[:3]] for ln in lines[1:]])
    return euclid(rows[:, :2]), rows[:, 2], tmax


@pytest.mark.shared
@pytest.mark.parametrize(
    ("folder", "name", "optimum"),
    [
        ("Tsiligirides_1", "tsiligirides_problem_1_budget_15.txt", 45),
        ("Tsiligirides_1", "tsiligirides_problem_1_budget_30.txt", 110),
        ("Tsiligirides_2", "tsiligirides_problem_2_budget_20.txt", 200),
        ("Tsiligirides_2", "tsiligirides_problem_2_budget_30.txt", 265),
        ("Tsiligirides_3", "tsiligirides_problem_3_budget_020.txt", 200),
    ],
)
def test_tsiligirides_certified_optima(routing_data: Path, folder: str, name: str, optimum: float) -> None:
    d, prize, tmax = load_op(_need(routing_data / "op" / folder / name))
    # A generous time cap: the search stops on its iteration counts, so the result is machine-independent.
    res = orienteering(d, prize, tmax, start=0, end=1, time_limit=60.0, seed=0)
    assert_feasible(res, d, prize, tmax, start=0, end=1, routes=1)
    assert res.prize == optimum
