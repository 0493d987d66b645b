"""A spatial index that takes inserts and deletes while it is queried: rtree (libspatialindex) under a lock.

Why not the STRtree every read-only layer keeps: an STRtree cannot change once
built, so a layer whose features change while it is served (a report filed, a
household whose status changes, a grid a GIS officer redraws) would rebuild it
on every write, O(n log n) each time. rtree's R*-tree takes one insert or
delete in tens of microseconds and is bulk-loaded (STR packing) at start-up
from arrays as fast as an STRtree is built.

Why one plain lock, not a readers-writer lock: libspatialindex is not
thread-safe even for reads (a query takes nodes from a pool it shares with
every other query: Toblerity/rtree#53, libspatialindex/libspatialindex#189),
so every rtree call is serialised whatever the lock. What costs the time of a
query, the exact predicate on the candidates, runs outside the lock on
geometries no one mutates once indexed (a replace indexes a new object), so
readers overlap where the time goes and a readers-writer lock would buy nothing.

Why each geometry is warmed when indexed: GEOS builds a prepared polygon's
point locator lazily, on its first use, and that is not thread-safe
(libgeos/geos#825). One predicate call under the lock builds it before any
reader can see the geometry.

:class:`ReadWriteLock` is the lock for what sits around an index: a served
layer whose pages many threads read while one writes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from rtree import index as rtree_index

from gridgeo.errors import ConflictError, NotFoundError, UsageError

log = logging.getLogger(__name__)

#: entries per rtree node: 32 answered point batches 1.3-2x faster than rtree's default 100 on the sample's
#: grids and 32,000 households (bench/bench_index.py), at the same insert and delete cost
NODE_CAPACITY = 32
#: places per lock hold in :meth:`LiveIndex.locate`: a batch of 100,000 places lets writers in between chunks
CHUNK = 4096
#: at most this many unusable geometries are named in the one warning a bulk load logs
_NAMED = 5


def unusable(geom: Any) -> str | None:
    """Why ``geom`` cannot be indexed (missing, not a geometry, empty, invalid), or None when it can.

    Why invalid geometries are refused: the exact predicate of a bowtie or a
    self-touching ring is not defined (GEOS answers something, or raises on
    another call), so a place would be found in it or not by chance.
    """
    if geom is None:
        return "no geometry"
    if not isinstance(geom, shapely.Geometry):
        return f"not a geometry ({type(geom).__name__})"
    if shapely.is_empty(geom):
        return "empty geometry"
    if not shapely.is_valid(geom):
        return f"invalid geometry ({shapely.is_valid_reason(geom)})"
    return None


def _reasons(geoms: NDArray[np.object_]) -> list[str | None]:
    """:func:`unusable` for each geometry, the common case (all valid) in vectorised calls."""
    out: list[str | None] = [None] * len(geoms)
    is_geom = np.fromiter((isinstance(g, shapely.Geometry) for g in geoms), dtype=bool, count=len(geoms))
    ok = is_geom.copy()
    if is_geom.any():
        sub = geoms[is_geom]
        good = ~shapely.is_empty(sub) & shapely.is_valid(sub)
        ok[is_geom] = good
    for i in np.flatnonzero(~ok).tolist():
        out[i] = unusable(geoms[i])
    return out


def _tiebreak(keys: Sequence[Hashable]) -> Hashable:
    """The smallest key, as :class:`gridgeo.service.locate.Locator` picks on a shared edge (first in id order).

    Keys of types that do not compare with each other (an int and a str) fall
    back to ordering by type name then text, so the answer is still the same
    on every call.
    """
    try:
        return min(keys)  # type: ignore[type-var]
    except TypeError:
        return min(keys, key=lambda k: (type(k).__name__, repr(k)))


def _first_vertices(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """One vertex of each geometry, as a Point (inside its envelope: what warms a prepared geometry)."""
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    _, first = np.unique(owner, return_index=True)
    return np.asarray(shapely.points(coords[first]), dtype=object)


class LiveIndex:
    """Geometries under arbitrary hashable keys, for bbox queries and point lookups, changed one key at a time.

    Parameters
    ----------
    keys, geoms
        The initial content, bulk-loaded (same length; keys unique). A
        geometry that cannot be indexed (see :func:`unusable`) is skipped,
        its key kept in :attr:`skipped` with the reason, and one warning logged.
    name
        What the log calls the index (the layer's name).

    Notes
    -----
    rtree wants integer ids: each key gets one when indexed, never reused
    after a delete, and kept through a replace. Every method is thread-safe.
    Indexed geometries are prepared in place (:func:`shapely.prepare`).
    """

    def __init__(self, keys: Iterable[Hashable] = (), geoms: Iterable[Any] = (), *, name: str = "index") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._slot: dict[Hashable, int] = {}
        self._skipped: dict[Hashable, str] = {}
        key_list = list(keys)
        garr = np.empty(len(key_list), dtype=object)
        garr[:] = list(geoms) if len(key_list) else []
        if len(set(key_list)) != len(key_list):
            raise UsageError(f"index {name}: keys are not unique")
        reasons = _reasons(garr)
        use = np.fromiter((r is None for r in reasons), dtype=bool, count=len(reasons))
        good = garr[use]
        cap = max(16, 2 * len(good))
        self._keys = np.empty(cap, dtype=object)
        self._geoms = np.empty(cap, dtype=object)
        self._boxes = np.zeros((cap, 4), dtype=np.float64)
        m = len(good)
        self._next = m
        props = rtree_index.Property()
        props.leaf_capacity = props.index_capacity = NODE_CAPACITY
        if m:
            shapely.prepare(good)
            shapely.intersects(good, _first_vertices(good))  # warm: see the module docstring
            boxes = shapely.bounds(good)
            ids = np.arange(m, dtype=np.int64)
            self._tree = rtree_index.Index((ids, boxes[:, :2].copy(), boxes[:, 2:].copy()), properties=props)
            self._keys[:m] = [k for k, u in zip(key_list, use.tolist(), strict=True) if u]
            self._geoms[:m] = good
            self._boxes[:m] = boxes
            self._slot = {k: i for i, k in enumerate(self._keys[:m].tolist())}
        else:
            self._tree = rtree_index.Index(properties=props)  # the bulk loader refuses an empty stream
        for k, r in zip(key_list, reasons, strict=True):
            if r is not None:
                self._skipped[k] = r
        if self._skipped:
            named = "; ".join(f"{k}: {r}" for k, r in list(self._skipped.items())[:_NAMED])
            log.warning("index %s: %d of %d geometries not indexed (%s%s)", name, len(self._skipped),
                        len(key_list), named, "; ..." if len(self._skipped) > _NAMED else "")

    # ------------------------------------------------------------------ what is in it
    def __len__(self) -> int:
        """How many keys are indexed (the skipped not counted)."""
        return len(self._slot)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is known: indexed, or skipped for its geometry."""
        with self._lock:
            return key in self._slot or key in self._skipped

    def is_indexed(self, key: Hashable) -> bool:
        """Whether ``key`` is indexed (known with a usable geometry)."""
        with self._lock:
            return key in self._slot

    @property
    def skipped(self) -> dict[Hashable, str]:
        """Keys known but not indexed, and why (a copy: what the caller reports)."""
        with self._lock:
            return dict(self._skipped)

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """The envelope of every indexed geometry, None when nothing is."""
        with self._lock:
            if not self._slot:
                return None
            ids = np.fromiter(self._slot.values(), dtype=np.int64, count=len(self._slot))
            b = self._boxes[ids]
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    # ------------------------------------------------------------------ writes
    def insert(self, key: Hashable, geom: Any) -> bool:
        """Index ``geom`` under a new ``key``; False (logged, kept in :attr:`skipped`) when it cannot be.

        Raises
        ------
        ConflictError
            When ``key`` is already known.
        """
        reason = unusable(geom)
        with self._lock:
            if key in self._slot or key in self._skipped:
                raise ConflictError(f"index {self.name}: key {key!r} is already indexed")
            return self._put(key, geom, reason, None)

    def replace(self, key: Hashable, geom: Any) -> bool:
        """Index ``geom`` instead of what ``key`` had (same id); False when it cannot be (then not indexed).

        Raises
        ------
        NotFoundError
            When ``key`` is not known.
        """
        reason = unusable(geom)
        with self._lock:
            slot = self._drop(key)
            return self._put(key, geom, reason, slot)

    def delete(self, key: Hashable) -> None:
        """Forget ``key`` (indexed or skipped).

        Raises
        ------
        NotFoundError
            When ``key`` is not known.
        """
        with self._lock:
            self._drop(key)

    def _put(self, key: Hashable, geom: Any, reason: str | None, slot: int | None) -> bool:
        """Index one geometry (lock held); ``slot`` reuses a replaced key's id."""
        if reason is not None:
            self._skipped[key] = reason
            log.warning("index %s: %r not indexed: %s", self.name, key, reason)
            return False
        if slot is None:
            slot = self._next
            self._next += 1
            self._grow(self._next)
        shapely.prepare(geom)
        shapely.intersects(geom, _first_vertices(np.array([geom], dtype=object))[0])  # warm
        box = shapely.bounds(geom)
        self._tree.insert(slot, tuple(box.tolist()))
        self._keys[slot], self._geoms[slot], self._boxes[slot] = key, geom, box
        self._slot[key] = slot
        return True

    def _drop(self, key: Hashable) -> int | None:
        """Take ``key`` out (lock held); its id when it was indexed, None when it was skipped."""
        if key in self._skipped:
            del self._skipped[key]
            return None
        slot = self._slot.pop(key, None)
        if slot is None:
            raise NotFoundError(f"index {self.name}: no key {key!r}")
        self._tree.delete(slot, tuple(self._boxes[slot].tolist()))
        self._geoms[slot] = None
        return slot

    def _grow(self, need: int) -> None:
        if need <= len(self._keys):
            return
        cap = 2 * need
        for attr in ("_keys", "_geoms"):
            old = getattr(self, attr)
            new = np.empty(cap, dtype=object)
            new[:len(old)] = old
            setattr(self, attr, new)
        boxes = np.zeros((cap, 4), dtype=np.float64)
        boxes[:len(self._boxes)] = self._boxes
        self._boxes = boxes

    # ------------------------------------------------------------------ reads
    def query_bbox(self, box: tuple[float, float, float, float]) -> list[Hashable]:
        """Keys whose geometry intersects the box ``(minx, miny, maxx, maxy)``, smallest first.

        Same answer as ``STRtree.query(shapely.box(*box), predicate="intersects")``; a box whose minimum
        is above its maximum (or not finite) holds nothing (rtree would raise on it).
        """
        if not (np.all(np.isfinite(box)) and box[0] <= box[2] and box[1] <= box[3]):
            return []
        with self._lock:
            ids = np.fromiter(self._tree.intersection(tuple(float(v) for v in box)), dtype=np.int64)
            geoms, keys = self._geoms[ids], self._keys[ids]
        if not len(ids):
            return []
        hit = shapely.intersects(shapely.box(*box), geoms)  # the box first: it, not the shared geometries, is used
        return _sorted(keys[hit].tolist())

    def locate(self, points: ArrayLike) -> list[Hashable | None]:
        """For each point, the smallest key whose geometry covers it (None: none does; missing points too)."""
        x, y = _xy(points)
        return self.locate_xy(x, y)

    def locate_xy(self, x: ArrayLike, y: ArrayLike) -> list[Hashable | None]:
        """:meth:`locate` on coordinate arrays. On a shared edge or vertex the smallest key wins."""
        pi, keys = self._hits(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        out: list[Hashable | None] = [None] * len(np.asarray(x))
        if not len(pi):
            return out
        order = np.argsort(pi, kind="stable")
        pi, keys = pi[order], keys[order]
        starts = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
        ends = np.r_[starts[1:], len(pi)]
        klist = keys.tolist()
        for p, s, e in zip(pi[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            out[p] = klist[s] if e - s == 1 else _tiebreak(klist[s:e])
        return out

    def locate_all(self, points: ArrayLike) -> list[list[Hashable]]:
        """For each point, every key whose geometry covers it, smallest first."""
        x, y = _xy(points)
        pi, keys = self._hits(x, y)
        out: list[list[Hashable]] = [[] for _ in range(len(x))]
        for p, k in zip(pi.tolist(), keys.tolist(), strict=True):
            out[p].append(k)
        return [_sorted(v) if len(v) > 1 else v for v in out]

    def hits_xy(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
        """Every (place, key) pair of a place and an indexed geometry covering it, as two arrays.

        Why besides :meth:`locate_xy`: a caller that picks among the hits itself (the locator takes the
        smallest feature row per place, with integer keys) does it vectorised, with no list per place.
        Places are positions in ``x``/``y``; non-finite places have no hits.
        """
        return self._hits(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))

    def _hits(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
        """(place, key) for every place and indexed geometry covering it, in chunks of :data:`CHUNK` places."""
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        found_p: list[NDArray[np.int64]] = []
        found_k: list[NDArray[np.object_]] = []
        for lo in range(0, len(ok), CHUNK):
            sel = ok[lo:lo + CHUNK]
            xy = np.column_stack([x[sel], y[sel]])
            with self._lock:
                ids, counts = self._tree.intersection_v(xy, xy)
                geoms, keys = self._geoms[ids], self._keys[ids]
            if not len(ids):
                continue
            place = np.repeat(sel, counts.astype(np.int64))
            hit = shapely.intersects(geoms, shapely.points(x[place], y[place]))  # prepared geometries first
            found_p.append(place[hit])
            found_k.append(keys[hit])
        if not found_p:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
        return np.concatenate(found_p), np.concatenate(found_k)


def _sorted(keys: list[Hashable]) -> list[Hashable]:
    try:
        return sorted(keys)  # type: ignore[type-var]
    except TypeError:
        return sorted(keys, key=lambda k: (type(k).__name__, repr(k)))


def _xy(points: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coordinates of points; NaN for a missing, empty or non-point entry (found in nothing)."""
    pts = np.asarray(points, dtype=object).reshape(-1)
    x = np.full(len(pts), np.nan)
    y = np.full(len(pts), np.nan)
    is_geom = np.fromiter((isinstance(p, shapely.Geometry) for p in pts), dtype=bool, count=len(pts))
    ok = is_geom.copy()
    if is_geom.any():
        sub = pts[is_geom]
        ok[is_geom] = (shapely.get_type_id(sub) == 0) & ~shapely.is_empty(sub)
    if ok.any():
        x[ok], y[ok] = shapely.get_x(pts[ok]), shapely.get_y(pts[ok])
    return x, y


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds new readers back, so a stream of reads cannot starve it.

    Why here: what sits around a :class:`LiveIndex` (a served layer's sorted
    keys, its pre-serialised features) is read by every request thread and
    written by one at a time; a plain lock would serialise the readers, whose
    page serialisation is where a server spends its time. Reading is reentrant
    per thread (a view that reads calls methods that read too); a thread that
    reads may not start writing (it would wait for itself).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._waiting = 0
        self._local = threading.local()

    def _depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock for reading (shared with other readers)."""
        depth = self._depth()
        if depth == 0 and self._writer != threading.get_ident():
            with self._cond:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0 and self._writer != threading.get_ident():
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the lock alone (readers and other writers wait).

        Raises
        ------
        UsageError
            When this thread is reading (it would wait for itself) or already writing.
        """
        me = threading.get_ident()
        if self._depth() or self._writer == me:
            raise UsageError("a thread that holds the lock cannot start writing under it")
        with self._cond:
            self._waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()
