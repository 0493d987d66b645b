"""gridgeo.data.live_index: every operation on awkward geometries against brute force; writes while others read."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gridgeo._geom import containing
from gridgeo.data.live_index import CHUNK, LiveIndex, ReadWriteLock, unusable
from gridgeo.errors import ConflictError, NotFoundError, UsageError

#: two neighbours every case sits beside: A and B share the edge x = 1 and the vertices (1, 0) and (1, 1)
BASE: dict[Hashable, Any] = {"A": box(0, 0, 1, 1), "B": box(1, 0, 2, 1)}
#: where a case's feature is moved to, and away from
ELSEWHERE = box(10, 10, 11, 11)


@dataclass
class Awkward:
    """One geometry for feature ``X`` and the places that tell whether an index got it right."""

    name: str
    geom: Any
    probes: list[tuple[float, float]] = field(default_factory=list)


CATALOGUE = [
    Awkward("none", None, [(0.5, 0.5)]),
    Awkward("empty", Polygon(), [(0.5, 0.5)]),
    Awkward("bowtie", Polygon([(3, 0), (4, 1), (4, 0), (3, 1), (3, 0)]), [(3.5, 0.25), (3.5, 0.5)]),
    Awkward("multipolygon", MultiPolygon([box(3, 0, 4, 1), box(5, 0, 6, 1)]),
            [(3.5, 0.5), (4.5, 0.5), (5.5, 0.5), (6, 1), (4, 0.5)]),
    Awkward("hole", Polygon(box(3, 0, 6, 3).exterior.coords, [box(4, 1, 5, 2).exterior.coords[::-1]]),
            [(4.5, 1.5), (3.5, 0.5), (4, 1.5), (4, 1), (5.5, 2.5)]),
    # shares B's edge x = 2: a place on it belongs to both, the smaller key (B) wins
    Awkward("shared_edge", box(2, 0, 3, 1), [(2, 0.5), (2, 0), (2, 1), (1, 0.5), (1, 1)]),
    # a vertex touching A's corner (0, 0) only
    Awkward("on_vertex", Polygon([(0, 0), (-1, -0.5), (-0.5, -1)]), [(0, 0), (-1, -0.5), (-0.6, -0.6)]),
    Awkward("far_outside", box(1000, 1000, 1001, 1001), [(1000.5, 1000.5), (500, 500)]),
]
BOXES = [(0.9, 0.1, 1.1, 0.2), (2.5, 0.5, 3.5, 0.6), (4.2, 1.2, 4.8, 1.8), (3.9, -1, 6.1, 4), (999, 999, 1000, 1000),
         (-2, -2, 0, 0), (-100, -100, 2000, 2000), (7, 7, 8, 8)]


def _usable(g: Any) -> bool:
    return g is not None and not g.is_empty and g.is_valid


def _probes(case: Awkward) -> list[Point]:
    """The case's own places, the base's edges and vertices, and a grid over the whole area."""
    grid = [(x, y) for x in np.arange(-1.5, 7, 0.25) for y in np.arange(-1.5, 3.5, 0.25)]
    return [Point(p) for p in [*case.probes, (1, 0.5), (1, 0), (0, 0), *grid]]


def _check(ix: LiveIndex, content: dict[Hashable, Any], probes: list[Point]) -> None:
    """The index answers as brute force over the usable geometries of ``content`` (smallest key first)."""
    live = {k: g for k, g in content.items() if _usable(g)}
    keys = sorted(live)
    all_hits = [[k for k in keys if live[k].intersects(p)] for p in probes]
    assert ix.locate_all(probes) == all_hits
    assert ix.locate(probes) == [h[0] if h else None for h in all_hits]
    for b in BOXES:
        assert ix.query_bbox(b) == [k for k in keys if live[k].intersects(box(*b))], b
    assert len(ix) == len(live)
    assert set(ix.skipped) == {k for k, g in content.items() if not _usable(g)}
    assert all(k in ix for k in content)


def _ops(case: Awkward) -> list[tuple[str, LiveIndex, dict[Hashable, Any]]]:
    """The case's feature X put in every way there is, each with the content it must leave."""
    with_x = {**BASE, "X": case.geom}
    bulk = LiveIndex(with_x.keys(), with_x.values(), name=case.name)
    inserted = LiveIndex(BASE.keys(), BASE.values())
    assert inserted.insert("X", case.geom) == _usable(case.geom)
    replaced = LiveIndex([*BASE, "X"], [*BASE.values(), box(10, 10, 11, 11)])
    assert replaced.replace("X", case.geom) == _usable(case.geom)
    moved_away = LiveIndex(with_x.keys(), with_x.values())
    assert moved_away.replace("X", ELSEWHERE)
    deleted = LiveIndex(with_x.keys(), with_x.values())
    deleted.delete("X")
    return [("bulk", bulk, with_x), ("insert", inserted, with_x), ("replace", replaced, with_x),
            ("replace_back", moved_away, {**BASE, "X": ELSEWHERE}), ("delete", deleted, dict(BASE))]


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.name)
def test_every_operation_answers_as_brute_force(case: Awkward) -> None:
    probes = _probes(case)
    for op, ix, content in _ops(case):
        try:
            _check(ix, content, probes)
        except AssertionError as exc:
            raise AssertionError(f"{case.name} after {op}: {exc}") from exc


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.name)
def test_unusable_geometries_are_reported_not_fatal(case: Awkward) -> None:
    ix = LiveIndex(BASE.keys(), BASE.values())
    indexed = ix.insert("X", case.geom)
    assert indexed == (unusable(case.geom) is None) == _usable(case.geom)
    assert ("X" in ix.skipped) != indexed and "X" in ix and ix.is_indexed("X") == indexed
    if not indexed:
        assert ix.skipped["X"] == unusable(case.geom)
    with pytest.raises(ConflictError):
        ix.insert("X", box(0, 0, 1, 1))
    ix.delete("X")
    assert "X" not in ix and not ix.skipped
    with pytest.raises(NotFoundError):
        ix.delete("X")
    with pytest.raises(NotFoundError):
        ix.replace("X", box(0, 0, 1, 1))


def test_shared_edges_and_vertices_go_to_the_smallest_key() -> None:
    ix = LiveIndex(["b", "a", "c"], [box(1, 0, 2, 1), box(0, 0, 1, 1), box(0, 1, 2, 2)])
    pts = [Point(1, 0.5), Point(1, 1), Point(1.5, 1), Point(0.5, 0.5)]
    assert ix.locate(pts) == ["a", "a", "b", "a"]
    assert ix.locate_all(pts) == [["a", "b"], ["a", "b", "c"], ["b", "c"], ["a"]]


def test_keys_are_any_hashables_and_mixed_types_still_decide() -> None:
    keys: list[Hashable] = [("grid", 2), ("grid", 1), 7, "7"]
    geoms = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6), box(5, 5, 6, 6)]
    ix = LiveIndex(keys, geoms)
    assert ix.locate([Point(1, 0.5)]) == [("grid", 1)]
    first = ix.locate([Point(5.5, 5.5)])
    assert first == ix.locate([Point(5.5, 5.5)]) and first[0] in (7, "7")
    assert ix.locate_all([Point(5.5, 5.5)]) == [[7, "7"]]  # by type name: int before str


def test_missing_and_odd_places_are_found_in_nothing() -> None:
    ix = LiveIndex(BASE.keys(), BASE.values())
    odd = [None, Point(), box(0, 0, 1, 1), Point(np.nan, 0.5), Point(0.5, 0.5)]
    assert ix.locate(odd) == [None, None, None, None, "A"]
    assert ix.locate_xy([np.inf, 0.5], [0.5, np.nan]) == [None, None]


def test_empty_index_answers_nothing() -> None:
    ix = LiveIndex()
    assert len(ix) == 0 and ix.bounds is None
    assert ix.locate([Point(0, 0)]) == [None] and ix.query_bbox((-1, -1, 1, 1)) == []
    assert LiveIndex(["x"], [None]).skipped == {"x": "no geometry"}
    assert ix.insert(1, Point(0, 0)) and ix.locate_xy([0.0], [0.0]) == [1]
    assert ix.bounds == (0.0, 0.0, 0.0, 0.0)


def test_bulk_load_refuses_duplicate_keys() -> None:
    with pytest.raises(UsageError, match="not unique"):
        LiveIndex(["a", "a"], [box(0, 0, 1, 1), box(1, 1, 2, 2)])


def test_bounds_follow_writes() -> None:
    ix = LiveIndex(BASE.keys(), BASE.values())
    assert ix.bounds == (0.0, 0.0, 2.0, 1.0)
    ix.insert("far", box(5, 5, 6, 7))
    assert ix.bounds == (0.0, 0.0, 6.0, 7.0)
    ix.delete("far")
    ix.replace("B", box(1, -3, 2, 1))
    assert ix.bounds == (0.0, -3.0, 2.0, 1.0)


def _random_layer(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` overlapping random boxes and triangles, keys zero-padded so their order is the positions'."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    w, h = rng.uniform(0.5, 6, n), rng.uniform(0.5, 6, n)
    geoms = np.asarray(shapely.box(x, y, x + w, y + h), dtype=object)
    tri = rng.random(n) < 0.3
    geoms[tri] = [Polygon([(a, b), (a + c, b), (a, b + d)]) for a, b, c, d in zip(x[tri], y[tri], w[tri], h[tri],
                                                                                     strict=True)]
    return [f"k{i:05d}" for i in range(n)], geoms


def test_large_batches_across_chunks_match_strtree() -> None:
    keys, geoms = _random_layer(3000, 1)
    ix = LiveIndex(keys, list(geoms))
    rng = np.random.default_rng(2)
    pts = shapely.points(rng.uniform(-5, 105, (3 * CHUNK + 17, 2)))
    want = containing(geoms, pts)
    assert ix.locate(pts) == [None if i < 0 else keys[i] for i in want.tolist()]
    tree = shapely.STRtree(geoms)
    for b in [(10, 10, 20, 15), (0, 0, 100, 100), (50, 50, 50, 50), (-10, -10, -5, -5)]:
        want_b = np.sort(tree.query(shapely.box(*b), predicate="intersects"))
        assert ix.query_bbox(b) == [keys[i] for i in want_b.tolist()]


def test_inserts_beyond_the_first_capacity_and_ids_kept_through_replace() -> None:
    ix = LiveIndex(["s"], [box(-2, -2, -1, -1)])
    for i in range(500):
        assert ix.insert(i, box(i, 0, i + 1, 1))
    slot = ix._slot[250]
    ix.replace(250, box(250, 5, 251, 6))
    assert ix._slot[250] == slot
    pts = [Point(i + 0.5, 0.5) for i in range(500)]
    assert ix.locate(pts) == [None if i == 250 else i for i in range(500)]
    assert ix.locate([Point(250.5, 5.5)]) == [250]
    for i in range(0, 500, 2):
        ix.delete(i)
    assert ix.locate(pts) == [i if i % 2 else None for i in range(500)]
    assert len(ix) == 251


# ---------------------------------------------------------------------------------------- threads
#: features no writer touches (a row of unit squares) and the places inside each, away from their edges
STABLE = {f"s{i:03d}": box(i, 0, i + 1, 1) for i in range(40)}
STABLE_PTS = [Point(i + 0.5, 0.5) for i in range(40)]
#: the places of the region the writer churns, far from the stable row
CHURN_PTS = [Point(100 + i + 0.5, 0.5) for i in range(20)]


def _churn(ix: LiveIndex, rounds: int) -> None:
    """Insert, move and delete features over the churn region; its features are the ``v`` keys."""
    for r in range(rounds):
        for i in range(20):
            ix.insert(f"v{r}-{i}", box(100 + i, 0, 101 + i, 1))
        for i in range(0, 20, 3):
            ix.replace(f"v{r}-{i}", box(100 + i, 2, 101 + i, 3))  # out of the places' row
        for i in range(20):
            ix.delete(f"v{r}-{i}")


def test_readers_see_whole_states_while_one_thread_writes() -> None:
    ix = LiveIndex(STABLE.keys(), STABLE.values())
    start = threading.Barrier(4)
    done = threading.Event()
    errors: list[BaseException] = []
    reads = [0, 0, 0]

    def writer() -> None:
        start.wait()
        try:
            _churn(ix, 30)
        finally:
            done.set()

    def reader(n: int) -> None:
        start.wait()
        try:
            while not done.is_set() or reads[n] < 50:
                assert ix.locate(STABLE_PTS) == list(STABLE)
                got = ix.locate(CHURN_PTS)
                for i, k in enumerate(got):  # none, or a feature put right there (not one moved out)
                    assert k is None or (str(k).startswith("v") and str(k).endswith(f"-{i}")), (i, k)
                assert ix.query_bbox((0.2, 0.2, 39.8, 0.8)) == list(STABLE)
                reads[n] += 1
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)  # a guard against a deadlock hanging the suite, not a measure of speed
    assert not any(t.is_alive() for t in threads), "a thread is stuck: deadlock"
    assert not errors, errors[0]
    assert len(ix) == len(STABLE) and ix.locate(CHURN_PTS) == [None] * 20


def test_read_write_lock_is_reentrant_for_readers_and_keeps_writers_alone() -> None:
    lock = ReadWriteLock()
    inside: list[str] = []
    waiting_writer = threading.Event()
    done = threading.Event()

    def writer() -> None:
        waiting_writer.set()
        with lock.writing():
            inside.append("writer")
            with lock.reading():  # the writer may read what it writes
                inside.append("writer reads")
        done.set()

    with lock.reading():
        t = threading.Thread(target=writer)
        t.start()
        waiting_writer.wait()
        while lock._waiting == 0 and not done.is_set():  # until the writer queues behind this reader
            threading.Event().wait(0.001)
        with lock.reading():  # reentrant: a queued writer does not block this thread's second read
            inside.append("reader again")
        assert "writer" not in inside
        with pytest.raises(UsageError), lock.writing():
            pass
    t.join(timeout=60)  # deadlock guard
    assert not t.is_alive()
    assert inside == ["reader again", "writer", "writer reads"]


def test_inverted_or_non_finite_box_holds_nothing() -> None:
    """A bbox split at the antimeridian can come out inverted: no hits, never rtree's RTreeError."""
    idx = LiveIndex(["A"], [box(0, 0, 1, 1)])
    assert idx.query_bbox((1.0, 0.0, 0.0, 1.0)) == []
    assert idx.query_bbox((0.0, 0.0, float("inf"), 1.0)) == []
    assert idx.query_bbox((0.0, 0.0, 1.0, 1.0)) == ["A"]
