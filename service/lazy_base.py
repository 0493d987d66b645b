"""What a big layer served page by page does whatever holds it: ids, positions, the LRU of serialised
features, bbox answers, the views' reading methods. :mod:`.lazy` reads a GeoPackage, :mod:`.lazy_pg` a
PostGIS table; each gives :class:`LazyLayer` its rows through a few ``_`` methods.

Why one base: the views, /locate, /patrol and the chains of units read a layer held in memory
(:class:`store.Collection`) and one read per request alike; whether the rows come from SQLite or from
PostgreSQL changes only the queries, never the ids, the bytes or the order served.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridgeo.data.live_index import ReadWriteLock
from gridgeo.errors import NotFoundError, UsageError

from .store import TITLES, dumps, geojson_bytes, parse_key, properties_bytes, round_coords

log = logging.getLogger(__name__)

#: bytes of serialised features a lazy layer keeps (LRU), per layer
CACHE_BYTES = 64 * 2**20
#: bbox answers (sorted positions) a lazy layer keeps (LRU)
BBOX_CACHE = 64
#: float32 rounding of the spatial index's boxes: a box this near the query's edge is tested exactly
SLACK = 1e-5
#: a bbox's edge features up to this many are read through the features' cache (a page of them comes next)
_EDGE_CACHED = 20_000

#: rows read from a table: their fids, raw geometries (as stored; None: not asked), columns by name
Rows = tuple[list[int], list[Any] | None, dict[str, list[Any]]]


def from_wkb(layer: str, ids: Sequence[Any], wkb: list[bytes | None]) -> NDArray[np.object_]:
    """Shapely geometries of WKB; one shapely cannot read (bad bytes, a curve) is None, logged with ``layer``
    and its id. Why one by one on a failure: GEOS refuses a whole batch for one curve."""
    try:
        out = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    except (NotImplementedError, shapely.errors.ShapelyError):
        out = np.empty(len(wkb), dtype=object)
        for i, w in enumerate(wkb):
            try:
                out[i] = shapely.from_wkb(w, on_invalid="ignore")
            except (NotImplementedError, shapely.errors.ShapelyError) as exc:
                log.warning("%s: feature %s: unreadable geometry (%s); served without one", layer, ids[i], exc)
                wkb[i] = None  # named once
    present = np.array([w is not None for w in wkb], dtype=bool)
    for i in np.flatnonzero(shapely.is_missing(out) & present).tolist():
        log.warning("%s: feature %s: unreadable geometry (bad WKB); served without one", layer, ids[i])
    return out


@dataclass
class Table:
    """Where a layer lives: table, fid and geometry columns, SRID, its columns with their declared types
    (SQLite's, or the pandas dtype the layer was loaded with) and its spatial index (None: none)."""

    name: str
    fid: str
    geom: str
    srs: int
    columns: list[tuple[str, str]]
    rtree: str | None


class Feature:
    """One feature's serialised parts, and what a page asks of it besides (its row, its geometry).

    ``props``: every column's JSON; the row is parsed from it only when asked for (a personal-data check,
    an HTML table), since a page for most callers needs none.
    """

    __slots__ = ("_row", "geo", "geom", "head", "private", "props", "tail")

    def __init__(self, head: bytes, geo: bytes, tail: bytes, *, private: bytes | None, props: bytes,
                 geom: Any) -> None:
        self.head, self.geo, self.tail, self.private, self.props, self.geom = head, geo, tail, private, props, geom
        self._row: dict[str, Any] | None = None

    @property
    def row(self) -> dict[str, Any]:
        if self._row is None:
            self._row = json.loads(self.props)
        return self._row

    def size(self) -> int:
        return len(self.head) + len(self.geo) + len(self.tail) + len(self.private or b"") + len(self.props) + 200


class LazyLayer:
    """A layer read per page: the same reading methods as :class:`store.Collection`.

    A subclass sets ``t`` (:class:`Table`), ``n`` (its feature count) and ``bbox``, ``geometry_type``,
    then calls :meth:`_setup`; it answers :meth:`_id_pairs`, :meth:`_fid_range`, :meth:`_sorted_fids`,
    :meth:`_fetch`, :meth:`_decode`, :meth:`_scan`, :meth:`_rows_of`, :meth:`_box_fids` and
    :meth:`_candidates` from its store.
    """

    t: Table
    n: int
    bbox: tuple[float, float, float, float]
    geometry_type: str
    #: the JSON types of the declared column types (``properties`` of the collection document)
    TYPES: ClassVar[dict[str, str]] = {}

    def _setup(self, table: str, public: tuple[str, ...] | None, storage_epsg: int | None) -> None:
        """What every lazy layer holds besides its table's layout (set before)."""
        self.id = table
        self.title = TITLES.get(table, table)
        self.storage_epsg = storage_epsg if storage_epsg is not None or self.t.srs <= 0 else self.t.srs
        self.lock = ReadWriteLock()
        self.live = None
        every = [c for c, _ in self.t.columns]
        self.public = [c for c in every if public is None or c in public]
        self.has_private = len(self.public) < len(every)
        self.properties = {c: self.TYPES.get(k.split("(")[0], "string") for c, k in self.t.columns
                           if c in self.public}
        self._kinds = dict(self.t.columns)
        self._to84 = transformer(self.t.srs)
        self.statuses: dict[Any, dict[str, Any]] = {}
        self._cache: OrderedDict[int, Feature] = OrderedDict()
        self._cache_bytes = 0
        self._bboxes: OrderedDict[tuple[tuple[float, ...], ...], NDArray[np.int64]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._ids_done = False

    # ---------------------------------------------------------------- what a store answers
    def _id_pairs(self, col: str) -> list[tuple[int, Any]]:
        """(fid, value of ``col``) of every row, its values as served."""
        raise NotImplementedError

    def _fid_range(self) -> tuple[Any, Any]:
        """The lowest and highest fid."""
        raise NotImplementedError

    def _sorted_fids(self) -> list[int]:
        """Every fid, ascending."""
        raise NotImplementedError

    def _fetch(self, fids: list[int]) -> dict[int, tuple[Any, bytes, bytes]]:
        """Of each of ``fids`` there: its raw geometry, the JSON of every column and of the public ones."""
        raise NotImplementedError

    def _decode(self, keys: list[Any], raws: list[Any]) -> NDArray[np.object_]:
        """Geometries (stored CRS) of raw ones; an unreadable one is None, logged with its key."""
        raise NotImplementedError

    def _scan(self, names: list[str], *, geometry: bool) -> Rows:
        """Every row in fid order: the columns ``names`` as served, the raw geometry if ``geometry``."""
        raise NotImplementedError

    def _rows_of(self, fids: list[int], names: list[str], *, geometry: bool) -> Rows:
        """As :meth:`_scan`, the rows of ``fids`` there (in fid order)."""
        raise NotImplementedError

    def _box_fids(self, q: tuple[float, float, float, float]) -> list[int]:
        """Sorted fids of the rows whose index box meets ``q`` (stored CRS)."""
        raise NotImplementedError

    def _candidates(self, q: tuple[float, float, float, float]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Fids whose index box meets ``q`` (stored CRS), and whether that box is surely inside ``q``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- ids and positions
    def _ensure_ids(self) -> None:
        """Read the ids when first needed (a layer of codes: all of them, sorted; a request or the index)."""
        if self._ids_done:
            return
        with self._ids_lock:
            if not self._ids_done:
                self._ids()
                self._ids_done = True

    @property
    def int_keys(self) -> bool:
        """Whether the ids are row numbers (no unique, never-null ``code`` or ``id``)."""
        self._ensure_ids()
        return self._int_keys

    @property
    def fids(self) -> NDArray[np.int64] | None:
        """Each position's fid; None when fid = position + 1."""
        self._ensure_ids()
        return self._fids

    @property
    def _keys(self) -> NDArray[Any] | None:
        self._ensure_ids()
        return self._codes

    def _ids(self) -> None:
        """Ids as :func:`gridgeo.data.io.feature_ids` gives them, and each position's fid."""
        self._int_keys = True
        self._fids: NDArray[np.int64] | None = None
        self._codes: NDArray[Any] | None = None
        for col in ("code", "id"):
            if col not in self._kinds:
                continue
            rows = self._id_pairs(col)
            codes = pd.Series([r[1] for r in rows], dtype=object)
            if len(rows) and codes.notna().all() and codes.astype(str).is_unique:
                text = codes.astype(str).to_numpy(dtype=object)
                order = np.argsort(text, kind="stable")
                self._codes = text[order]
                self._fids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))[order]
                self._int_keys = False
                self.n = len(rows)
                return
            log.warning("%s: %s is not unique; not used as the feature id", self.id, col)
        lo, hi = self._fid_range()
        if not (lo == 1 and hi == self.n):  # fids with gaps: the row number is the rank of the fid
            self._fids = np.asarray(self._sorted_fids(), dtype=np.int64)
            self.n = len(self._fids)

    @property
    def keys(self) -> NDArray[Any]:
        """Feature ids in ascending order (row numbers made on demand: a layer of millions holds none)."""
        return self._keys if self._keys is not None else np.arange(1, self.n + 1, dtype=np.int64)

    def __len__(self) -> int:
        return self.n

    def key_at(self, pos: int) -> Any:
        return self._keys[pos] if self._keys is not None else pos + 1

    def _fid(self, plist: list[int]) -> list[int]:
        return [p + 1 for p in plist] if self.fids is None else self.fids[plist].tolist()

    def _positions(self, fids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Positions of fids (all of them served)."""
        if self.fids is None:
            return fids - 1
        if self.int_keys:
            return np.searchsorted(self.fids, fids).astype(np.int64)
        inv = getattr(self, "_inv", None)
        if inv is None:
            order = np.argsort(self.fids)
            inv = self._inv = (self.fids[order], order)
        sorted_fids, order = inv
        return order[np.searchsorted(sorted_fids, fids)].astype(np.int64)

    def parse_key(self, text: str) -> Any:
        return parse_key(text, int_keys=self.int_keys)

    def locate_key(self, fid: str) -> int:
        key = self.parse_key(str(fid))
        if self._keys is None:
            if key is not None and 1 <= key <= self.n:
                return int(key) - 1
        elif key is not None:
            i = int(np.searchsorted(self._keys, key))
            if i < self.n and self._keys[i] == key:
                return i
        raise NotFoundError(f"no feature {fid!r} in collection {self.id!r}")

    def cursor(self, text: str) -> int:
        return self._search(text, "right")

    def cursor_before(self, text: str) -> int:
        return self._search(text, "left")

    def _search(self, text: str, side: str) -> int:
        key = self.parse_key(text)
        if key is None:
            raise UsageError(f"cursor {text!r} is not a feature id of {self.id!r} (an integer)")
        if self._keys is None:
            return int(min(max(key if side == "right" else key - 1, 0), self.n))
        return int(np.searchsorted(self._keys, key, side=side))  # type: ignore[call-overload]

    def _keys_of(self, fids: list[int]) -> list[Any]:
        """The feature ids of fids (read from the store, so all served)."""
        if self._keys is None:
            return fids
        if self.fids is None:
            return self._keys[np.asarray(fids, dtype=np.int64) - 1].tolist()
        return self._keys[self._positions(np.asarray(fids, dtype=np.int64))].tolist()

    def _order(self, fids_in_fid_order: list[int]) -> NDArray[np.int64]:
        """The permutation taking rows read in fid order to id order."""
        if self.fids is None or self.int_keys:
            return np.arange(len(fids_in_fid_order), dtype=np.int64)
        return np.searchsorted(np.asarray(fids_in_fid_order, dtype=np.int64), self.fids).astype(np.int64)

    # ---------------------------------------------------------------- reading features
    def _features(self, plist: list[int]) -> list[Feature]:
        """The features at ``plist``: from the cache, the others read and serialised in one query."""
        fids = self._fid(plist)
        with self._cache_lock:
            got = {f: self._cache[f] for f in fids if f in self._cache}
            for f in got:
                self._cache.move_to_end(f)
        missing = [f for f in fids if f not in got]
        if missing:
            made = self._read(missing)
            got.update(made)
            with self._cache_lock:
                for f, feat in made.items():
                    if f not in self._cache:
                        self._cache[f] = feat
                        self._cache_bytes += feat.size()
                while self._cache_bytes > CACHE_BYTES and self._cache:
                    _, old = self._cache.popitem(last=False)
                    self._cache_bytes -= old.size()
        return [got[f] for f in fids]

    def _read(self, fids: list[int]) -> dict[int, Feature]:
        """Read and serialise the features ``fids``: the properties' JSON from the store, the geometries' by GEOS."""
        rows = self._fetch(fids)
        if len(rows) != len(fids):
            raise NotFoundError(f"{self.id}: {len(fids) - len(rows)} feature(s) are no longer in the store")
        keys = self._keys_of(fids)
        geoms = self._crs84(self._decode(keys, [rows[f][0] for f in fids]))
        geo = geojson_bytes(round_coords(geoms))
        heads = [b'{"type":"Feature","id":%d,"geometry":' % k for k in keys] if self.int_keys else \
            [b'{"type":"Feature","id":' + dumps(k) + b',"geometry":' for k in keys]
        private, out = self.has_private, {}
        for f, k, head, g, gj in zip(fids, keys, heads, geoms.tolist(), geo, strict=True):
            _, every, public = rows[f]
            out[f] = Feature(head, gj, b',"properties":' + public + b"}", props=every, geom=g,
                             private=self._private(k, every) if private else None)
        return out

    def _private(self, key: Any, props: bytes) -> bytes:
        """The tail with every column, and the household's status over it (as ``set_status`` in memory)."""
        status = self.statuses.get(key) if self.statuses else None
        if not status:
            return b',"properties":' + props + b"}"
        rec = json.loads(props)
        return properties_bytes({**rec, **{k: "、".join(v) if isinstance(v, list) else v for k, v in status.items()}})

    def _crs84(self, geoms: NDArray[np.object_], *, orient: bool = True) -> NDArray[np.object_]:
        """Geometries in CRS84 with counter-clockwise exteriors (RFC 7946), as the in-memory layer has them
        (``orient=False``: as stored, for an index, to which ring order makes no difference)."""
        if self._to84 is not None and len(geoms):
            geoms = np.asarray(shapely.transform(geoms, self._to84, interleaved=False), dtype=object)
        return np.asarray(shapely.orient_polygons(geoms, exterior_cw=False), dtype=object) if orient else geoms

    def public_features(self, plist: list[int]) -> list[bytes]:
        return [f.head + f.geo + f.tail for f in self._features(plist)]

    def parts(self, plist: list[int]) -> tuple[list[bytes], list[bytes], list[bytes]]:
        feats = self._features(plist)
        return [f.head for f in feats], [f.geo for f in feats], [f.tail for f in feats]

    def private_tails(self, plist: list[int]) -> list[bytes] | None:
        if not self.has_private:
            return None
        return [f.private or f.tail for f in self._features(plist)]

    def units(self, plist: list[int], names: tuple[str, ...]) -> dict[str, list[Any]]:
        feats = self._features(plist)
        return {c: [f.row.get(c) for f in feats] for c in names if c in self._kinds}

    def records(self, plist: list[int]) -> list[dict[str, Any]]:
        return [{c: f.row.get(c) for c in self.public} for f in self._features(plist)]

    def geometry_variant(self, key: tuple[str, str | None], pos: NDArray[np.int64],
                         make: Callable[[NDArray[np.object_]], list[bytes]]) -> list[bytes]:
        """Geometry bytes of ``pos`` in another CRS/datum: made per page (the features' cache holds CRS84)."""
        geoms = np.empty(len(pos), dtype=object)
        geoms[:] = [f.geom for f in self._features(pos.tolist())]
        return make(geoms)

    def set_status(self, key: Any, status: dict[str, Any]) -> None:
        """Show a household's status in its personal properties (kept in memory: only households with one)."""
        pos = self.locate_key(str(key))
        k = self.key_at(pos)
        with self._cache_lock:
            self.statuses[k] = dict(status)
            self._cache.pop(self._fid([pos])[0], None)  # made again, with it, when next asked for

    def set_properties(self, key: Any, values: dict[str, Any]) -> None:
        """An edit of feature ``key`` committed to the table: its cached bytes go, so the next read has it."""
        pos = self.locate_key(str(key))
        with self._cache_lock:
            self._cache.pop(self._fid([pos])[0], None)

    def forget(self, key: Any) -> None:
        """Feature ``key`` changed in the store (its geometry too): its cached bytes and the bbox answers go."""
        pos = self.locate_key(str(key))
        with self._cache_lock:
            self._cache.pop(self._fid([pos])[0], None)
            self._bboxes.clear()

    def forget_all(self) -> None:
        """Many features changed in the store: every cached feature and bbox answer goes."""
        with self._cache_lock:
            self._cache.clear()
            self._cache_bytes = 0
            self._bboxes.clear()

    def replace(self, key: Any, geom: Any) -> bool:
        raise UsageError(f"{self.id} is served from the store: change it there (its spatial index follows the "
                         "table)")

    def delete(self, key: Any) -> None:
        raise UsageError(f"{self.id} is served from the store: change it there (its spatial index follows the "
                         "table)")

    # ---------------------------------------------------------------- whole columns, for start-up
    @property
    def column_names(self) -> list[str]:
        return list(self.public)

    def columns(self, names: list[str]) -> dict[str, NDArray[Any]]:
        """Whole public columns in id order (the locator's summaries, the chains of units: small levels)."""
        have = [c for c in names if c in self.public]
        if not have:
            return {}
        fids, _, cols = self._scan(have, geometry=False)
        order = self._order(fids)
        out = {}
        for c in have:
            arr = np.empty(len(fids), dtype=object)
            arr[:] = cols[c]
            out[c] = arr[order]
        return out

    def rows_at(self, plist: list[int], names: list[str]) -> list[dict[str, Any]]:
        """The columns ``names`` of the features at ``plist``, read in one query (not through the page cache:
        a /locate answer's summaries need no geometry)."""
        have = [c for c in names if c in self.public]
        fids = self._fid(plist)
        got_fids, _, cols = self._rows_of(fids, have, geometry=False)
        got = {f: {c: cols[c][i] for c in have} for i, f in enumerate(got_fids)}
        return [got.get(f, {}) for f in fids]

    def table(self, names: list[str]) -> pd.DataFrame:
        return pd.DataFrame(self.columns(names))

    def geometries(self) -> NDArray[np.object_]:
        """Every geometry in CRS84, in id order: what the locator indexes (a level, not the households)."""
        fids, raws, _ = self._scan([], geometry=True)
        assert raws is not None
        geoms = self._decode(self._keys_of(fids), raws)
        return self._crs84(geoms, orient=False)[self._order(fids)]

    def geometry_chunks(self, size: int) -> Iterator[tuple[NDArray[np.int64], NDArray[np.object_]]]:
        """(positions, CRS84 geometries as stored) of every row, ``size`` rows at a time in fid order.

        Why: the /locate index reads a level of hundreds of thousands of polygons, and read whole its
        blobs and geometries at once are a transient the size of the layer (glibc keeps it as RSS).
        """
        fids = list(range(1, self.n + 1)) if self.fids is None else np.sort(self.fids).tolist()
        for lo in range(0, len(fids), size):
            got, raws, _ = self._rows_of(fids[lo:lo + size], [], geometry=True)
            assert raws is not None
            pos = self._positions(np.asarray(got, dtype=np.int64))
            yield pos, self._crs84(self._decode(self._keys_of(got), raws), orient=False)

    def geometries_at(self, plist: list[int]) -> NDArray[np.object_]:
        """The CRS84 geometries as stored at positions ``plist``, in that order (None: no such row now)."""
        fids = self._fid(plist)
        got, raws, _ = self._rows_of(sorted(set(fids)), [], geometry=True)
        assert raws is not None
        geoms = dict(zip(got, self._crs84(self._decode(self._keys_of(got), raws), orient=False).tolist(),
                         strict=True))
        out = np.empty(len(fids), dtype=object)
        out[:] = [geoms.get(f) for f in fids]
        return out

    def frame(self) -> gpd.GeoDataFrame:
        """The whole layer with every column, CRS84, in id order (patrol planning: read when first asked)."""
        names = [c for c, _ in self.t.columns]
        fids, raws, cols = self._scan(names, geometry=True)
        assert raws is not None
        order = self._order(fids)
        geoms = self._crs84(self._decode(self._keys_of(fids), raws))[order]
        data = {c: pd.Series(cols[c]).iloc[order].reset_index(drop=True) for c in names}
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def within(self, bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        """Every feature whose index box meets the CRS84 ``bounds``: every column, CRS84, ``_item`` (its id)
        and its position as the index (the patrol planner's households of one grid, :class:`ByGrid`)."""
        q = bounds if self._to84 is None else to_storage(bounds, self.t.srs)
        names = [c for c, _ in self.t.columns]
        got, raws, data = self._rows_of(self._box_fids(q), names, geometry=True)
        assert raws is not None
        keys = self._keys_of(got)
        geoms = self._crs84(self._decode(keys, raws))
        data = dict(data)
        data["_item"] = [str(k) for k in keys]
        index = pd.Index(self._positions(np.asarray(got, dtype=np.int64)) if got else np.empty(0, dtype=np.int64))
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326", index=index),
                                crs="EPSG:4326", index=index)

    # ---------------------------------------------------------------- bbox
    def bbox_positions(self, boxes: list[tuple[float, float, float, float]]) -> NDArray[np.int64]:
        """Sorted positions of the features whose geometry intersects any of ``boxes`` (CRS84)."""
        key = tuple(tuple(float(v) for v in b) for b in boxes)
        with self._cache_lock:
            got = self._bboxes.get(key)
            if got is not None:
                self._bboxes.move_to_end(key)
                return got
        found = [self._bbox(b) for b in boxes]
        out = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
        with self._cache_lock:
            self._bboxes[key] = out
            while len(self._bboxes) > BBOX_CACHE:
                self._bboxes.popitem(last=False)
        return out

    def _bbox(self, box: tuple[float, float, float, float]) -> NDArray[np.int64]:
        w, s, e, n = self.bbox
        if box[0] <= w and box[1] <= s and box[2] >= e and box[3] >= n and self.t.rtree is not None:
            return np.arange(self.n, dtype=np.int64)  # the whole layer: no need to ask the index
        q = box if self._to84 is None else to_storage(box, self.t.srs)
        fids, inside = self._candidates(q)
        if not len(fids):
            return np.empty(0, dtype=np.int64)
        if self._to84 is not None:
            inside[:] = False  # a box transformed between CRSs is only approximate: test every candidate
        edge = fids[~inside]
        keep = [fids[inside]]
        if len(edge):
            pos = np.sort(self._positions(edge))
            geoms = np.empty(len(pos), dtype=object)
            if len(pos) <= _EDGE_CACHED:  # what a page of it will serve next: through the features' cache
                geoms[:] = [f.geom for f in self._features(pos.tolist())]
            else:
                geoms[:] = self._geoms_of(self._fid(pos.tolist()))
            hit = shapely.intersects(shapely.box(*box), geoms)
            keep.append(np.asarray(self._fid(pos[hit].tolist()), dtype=np.int64))
        return np.sort(self._positions(np.concatenate(keep)))

    def _geoms_of(self, fids: list[int]) -> list[Any]:
        """CRS84 geometries of many fids, in that order, read without serialising (a very big bbox's edge)."""
        got, raws, _ = self._rows_of(fids, [], geometry=True)
        assert raws is not None
        g = self._crs84(self._decode(got, raws))
        out = dict(zip(got, g.tolist(), strict=True))
        return [out.get(f) for f in fids]


@functools.lru_cache(maxsize=16)
def transformer(srs: int) -> Any:
    """A lon/lat transform from ``srs`` to CRS84, None when it leaves coordinates as they are.

    Why test it on numbers: CGCS2000 (EPSG:4490, what Chinese data is stored in) goes to WGS84 by
    PROJ's ballpark transform, an identity; then the index's boxes are CRS84 boxes already.
    """
    if srs in (4326, 0, -1):
        return None
    from pyproj import CRS, Transformer

    crs = CRS.from_epsg(srs)
    tr = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
    if crs.is_geographic:
        aou = crs.area_of_use
        w, s, e, n = aou.bounds if aou is not None else (-180.0, -90.0, 180.0, 90.0)
        xs, ys = np.linspace(w, e, 7), np.linspace(s, n, 7)
        x2, y2 = tr.transform(xs, ys)
        if np.array_equal(np.asarray(x2), xs) and np.array_equal(np.asarray(y2), ys):
            return None
    return tr.transform


def to_storage(box: tuple[float, float, float, float], srs: int) -> tuple[float, float, float, float]:
    """A CRS84 box as the smallest box around it in ``srs`` (densified edges), a little larger for safety."""
    from pyproj import Transformer

    tr = Transformer.from_crs("OGC:CRS84", f"EPSG:{srs}", always_xy=True)
    x0, y0, x1, y1 = tr.transform_bounds(box[0], box[1], box[2], box[3], densify_pts=21)
    dx, dy = (x1 - x0) * 1e-6 + 1e-9, (y1 - y0) * 1e-6 + 1e-9
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def extent84(b: Sequence[Any] | None, srs: int) -> tuple[float, float, float, float]:
    """A stored extent (``minx, miny, maxx, maxy`` in ``srs``; None or nulls: none) in CRS84."""
    if b is None or b[0] is None:
        return (0.0, 0.0, 0.0, 0.0)
    if transformer(srs) is None:
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    from pyproj import Transformer

    tr = Transformer.from_crs(f"EPSG:{srs}", "OGC:CRS84", always_xy=True)
    w, s, e, n = tr.transform_bounds(b[0], b[1], b[2], b[3], densify_pts=21)
    return (float(w), float(s), float(e), float(n))


def served_type(name: str | None) -> str:
    """The collection's geometry type of a declared one (``MultiPolygon``, ``POINT`` ...): a simple feature
    type in lower case, else ``geometry``."""
    n = str(name or "geometry").lower()
    return n if n in ("point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon") \
        else "geometry"
