"""A big layer served from its GeoPackage page by page, through Python's sqlite3, instead of held in memory.

Why: a 5M-household county held and pre-serialised whole took 80 s and 5.7 GiB before its first answer.
A page of 100 features is 100 rows of one SQLite table, read by primary key in a fraction of a
millisecond, and serialising 100 features costs what joining pre-made bytes did not, about a
millisecond; a small LRU of serialised features makes a page read again (a map, a QGIS layer) cost what
it did in memory. Why sqlite3 and not GDAL: the writable store holds Python sqlite3 connections (WAL)
on the same file, and a GDAL open and close deletes the WAL under them (see :meth:`store.County.frames`).

Feature ids follow :func:`gridgeo.data.io.feature_ids`: ``code`` when unique and never null (kept in
memory sorted, with each feature's fid: ids and positions as the in-memory layer has them), else row
numbers, which are the fids themselves when they run 1..n (nothing in memory per feature). A bbox query
asks the GeoPackage's own R*tree (``rtree_<table>_<geom>``, which the file's triggers keep up to date
when GDAL or QGIS edits the table; Python's sqlite3 lacks the ST_ functions they call, so no write
through it can leave the tree behind, it fails) and tests exactly only the candidates whose box is not
inside the query. An edit by another program shows once its feature leaves the page cache; the ids
of a code-keyed layer and a row-number layer's count are read once (a feature added needs a restart).
A geometry that cannot be read is logged with its layer and id, served as ``null`` and found by no bbox.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
#: GeoPackage envelope sizes by the header's envelope indicator (GeoPackage 1.3, 2.1.3)
_ENVELOPE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
#: float32 rounding of the R*tree's boxes: a box this near the query's edge is tested exactly
_SLACK = 1e-5


def gpkg_wkb(blob: bytes | None) -> bytes | None:
    """The WKB inside a GeoPackage geometry blob; None for a missing or empty one.

    Raises
    ------
    ValueError
        When the blob is not a GeoPackage geometry (no ``GP`` magic, or too short for its header).
    """
    if blob is None:
        return None
    if len(blob) < 8 or blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    flags = blob[3]
    if flags & 0x10:  # the empty-geometry flag
        return None
    env = _ENVELOPE.get((flags >> 1) & 0x07)
    if env is None or len(blob) < 8 + env + 5:
        raise ValueError("GeoPackage geometry header is truncated or has an unknown envelope")
    return bytes(blob[8 + env:])


def decode(layer: str, ids: list[Any], blobs: list[bytes | None]) -> NDArray[np.object_]:
    """Shapely geometries of GeoPackage blobs; an unreadable one is None, logged with ``layer`` and its id."""
    wkb: list[bytes | None] = []
    for fid, b in zip(ids, blobs, strict=True):
        try:
            wkb.append(gpkg_wkb(b))
        except ValueError as exc:
            log.warning("%s: feature %s: unreadable geometry (%s); served without one", layer, fid, exc)
            wkb.append(None)
    out = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    for i in np.flatnonzero(shapely.is_missing(out) & np.array([w is not None for w in wkb], dtype=bool)).tolist():
        log.warning("%s: feature %s: unreadable geometry (bad WKB); served without one", layer, ids[i])
    return out


@dataclass
class _Table:
    """Where a layer lives in the file: table, fid and geometry columns, its columns with declared types."""

    name: str
    fid: str
    geom: str
    srs: int
    columns: list[tuple[str, str]]
    rtree: str | None


def describe(conn: sqlite3.Connection, table: str) -> _Table:
    """A feature table's layout from the GeoPackage's own catalogue (``gpkg_geometry_columns``)."""
    row = conn.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                       (table,)).fetchone()
    if row is None:
        raise UsageError(f"{table} is not a feature table of the GeoPackage")
    geom, srs = str(row[0]), int(row[1])
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    fid = next((str(r[1]) for r in info if r[5] == 1), "fid")
    cols = [(str(r[1]), str(r[2]).upper()) for r in info if r[1] not in (fid, geom)]
    rtree = f"rtree_{table}_{geom}"
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree,)).fetchone()
    return _Table(table, fid, geom, srs, cols, rtree if has else None)


def feature_count(conn: sqlite3.Connection, table: str) -> int:
    """Features in ``table``: GDAL's ``gpkg_ogr_contents`` when it has the figure, else a count."""
    try:
        row = conn.execute("SELECT feature_count FROM gpkg_ogr_contents WHERE table_name = ?", (table,)).fetchone()
    except sqlite3.Error:
        row = None
    if row is not None and row[0] is not None and int(row[0]) >= 0:
        return int(row[0])
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def _value(value: Any, kind: str) -> Any:
    """A cell as the in-memory layer serves it: BOOLEAN columns as booleans, a BLOB as hex, the rest as
    SQLite gives them (int, float, str, None: JSON already; SQLite stores no NaN)."""
    if value is None:
        return None
    if kind == "BOOLEAN":
        return bool(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


class _Feature:
    """One feature's serialised parts, and what a page asks of it besides (its row, its geometry).

    ``props``: every column's JSON as SQLite wrote it; the row is parsed from it only when asked for
    (a personal-data check, an HTML table), since a page for most callers needs none.
    """

    __slots__ = ("_row", "geo", "geom", "head", "private", "props", "tail")

    def __init__(self, head: bytes, geo: bytes, tail: bytes, *, private: bytes | None, props: str,
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


def _json_expr(col: str, kind: str) -> str:
    """The SQL that makes one cell's JSON value as the in-memory layer serves it (see :func:`_value`):
    BOOLEAN as true/false, REAL as the shortest of 15-17 significant digits that reads back the same (as
    Python's repr), a BLOB as hex."""
    q = f'"{col}"'
    base = kind.split("(")[0]
    if base == "BOOLEAN":
        return f"CASE WHEN {q} IS NULL THEN NULL WHEN {q} THEN json('true') ELSE json('false') END"
    if base in ("REAL", "FLOAT", "DOUBLE"):
        # the shortest of 15, 16 and 17 significant digits that reads back as the same double: what
        # Python's repr (the in-memory layers) writes, so 0.1 stays 0.1 and nothing is lost
        return (f"CASE WHEN {q} IS NULL THEN NULL "
                f"WHEN CAST(printf('%!.15g', {q}) AS REAL) = {q} THEN json(printf('%!.15g', {q})) "
                f"WHEN CAST(printf('%!.16g', {q}) AS REAL) = {q} THEN json(printf('%!.16g', {q})) "
                f"ELSE json(printf('%!.17g', {q})) END")
    if base == "BLOB":
        return f"lower(hex({q}))"
    return f"CASE WHEN typeof({q}) = 'blob' THEN lower(hex({q})) ELSE {q} END"


def _json_object(cols: list[tuple[str, str]]) -> str:
    """``json_object(...)`` of ``cols``, in pieces of 60 (SQLite takes at most 127 arguments a call)."""
    if not cols:
        return "'{}'"
    parts = [", ".join(f"'{c.replace(chr(39), chr(39) * 2)}', {_json_expr(c, k)}" for c, k in cols[i:i + 60])
             for i in range(0, len(cols), 60)]
    out = f"json_object({parts[0]})"
    for p in parts[1:]:
        out = f"json_patch({out}, json_object({p}))"
    return out


class LazyCollection:
    """A layer read from the GeoPackage per page: the same reading methods as :class:`store.Collection`.

    Parameters
    ----------
    path, table
        The GeoPackage and the feature table.
    public
        The only columns everyone is served (:data:`store.PUBLIC_COLUMNS`); None: all.
    n
        Its feature count (:func:`feature_count`), known to the caller that chose to serve it lazily.
    """

    def __init__(self, path: Path, table: str, n: int, *, public: tuple[str, ...] | None = None,
                 storage_epsg: int | None = None) -> None:
        self.path, self.id, self.n = path, table, n
        self.title = TITLES.get(table, table)
        self.storage_epsg = storage_epsg
        self.lock = ReadWriteLock()
        self.live = None
        self._local = threading.local()
        conn = self._conn()
        self.t = describe(conn, table)
        if storage_epsg is None and self.t.srs > 0:
            self.storage_epsg = self.t.srs
        every = [c for c, _ in self.t.columns]
        self.public = [c for c in every if public is None or c in public]
        self.has_private = len(self.public) < len(every)
        self.properties = {c: _TYPES.get(k.split("(")[0], "string") for c, k in self.t.columns if c in self.public}
        self._kinds = dict(self.t.columns)
        self._to84 = _transformer(self.t.srs)
        self.statuses: dict[Any, dict[str, Any]] = {}
        self._cache: OrderedDict[int, _Feature] = OrderedDict()
        self._cache_bytes = 0
        self._bboxes: OrderedDict[tuple[tuple[float, ...], ...], NDArray[np.int64]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._ids_done = False
        self.bbox = self._extent(conn)
        self.geometry_type = _geometry_type(conn, table)

    # ---------------------------------------------------------------- ids and positions
    def _ensure_ids(self) -> None:
        """Read the ids when first needed (a layer of codes: all of them, sorted; a request or the index)."""
        if self._ids_done:
            return
        with self._ids_lock:
            if not self._ids_done:
                self._ids(self._conn())
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

    def _ids(self, conn: sqlite3.Connection) -> None:
        """Ids as :func:`gridgeo.data.io.feature_ids` gives them, and each position's fid."""
        self._int_keys = True
        self._fids: NDArray[np.int64] | None = None
        self._codes: NDArray[Any] | None = None
        for col in ("code", "id"):
            if col not in self._kinds:
                continue
            rows = conn.execute(f'SELECT "{self.t.fid}", "{col}" FROM "{self.t.name}"').fetchall()
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
        # two queries: SQLite answers min() or max() of the primary key from the b-tree, both at once by a scan
        lo = conn.execute(f'SELECT min("{self.t.fid}") FROM "{self.t.name}"').fetchone()[0]
        hi = conn.execute(f'SELECT max("{self.t.fid}") FROM "{self.t.name}"').fetchone()[0]
        if not (lo == 1 and hi == self.n):  # fids with gaps: the row number is the rank of the fid
            fids = conn.execute(f'SELECT "{self.t.fid}" FROM "{self.t.name}" ORDER BY 1').fetchall()
            self._fids = np.fromiter((r[0] for r in fids), dtype=np.int64, count=len(fids))
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

    # ---------------------------------------------------------------- reading features
    def _conn(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections are not shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
        return conn

    def _features(self, plist: list[int]) -> list[_Feature]:
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

    def _read(self, fids: list[int]) -> dict[int, _Feature]:
        """Read and serialise the features ``fids``: SQLite writes the properties' JSON, GEOS the geometries'."""
        every = _json_object(self.t.columns)
        public = every if not self.has_private else _json_object([(c, k) for c, k in self.t.columns
                                                                   if c in self.public])
        sql = f'SELECT "{self.t.fid}", "{self.t.geom}", {every}, {public} FROM "{self.t.name}" '
        if fids == list(range(fids[0], fids[0] + len(fids))):
            rows = self._conn().execute(sql + f'WHERE "{self.t.fid}" BETWEEN ? AND ?', (fids[0], fids[-1])).fetchall()
        else:
            rows = []
            for lo in range(0, len(fids), 900):
                part = fids[lo:lo + 900]
                rows += self._conn().execute(sql + f'WHERE "{self.t.fid}" IN ({",".join("?" * len(part))})',
                                             part).fetchall()
        if len(rows) != len(fids):
            raise NotFoundError(f"{self.id}: {len(fids) - len(rows)} feature(s) are no longer in the file")
        by_fid = {int(r[0]): r for r in rows}
        rows = [by_fid[f] for f in fids]
        keys = self._keys_of(fids)
        geoms = self._crs84(decode(self.id, keys, [r[1] for r in rows]))
        geo = geojson_bytes(round_coords(geoms))
        out: dict[int, _Feature] = {}
        for f, k, r, g, gj in zip(fids, keys, rows, geoms.tolist(), geo, strict=True):
            head = (b'{"type":"Feature","id":%d,"geometry":' % k) if self.int_keys else \
                b'{"type":"Feature","id":' + dumps(k) + b',"geometry":'
            tail = b',"properties":' + r[3].encode("utf-8") + b"}"
            private = self._private(k, r[2]) if self.has_private else None
            out[f] = _Feature(head, gj, tail, private=private, props=r[2], geom=g)
        return out

    def _keys_of(self, fids: list[int]) -> list[Any]:
        """The feature ids of fids (read from the file, so all served)."""
        if self._keys is None:
            return fids
        if self.fids is None:
            return self._keys[np.asarray(fids, dtype=np.int64) - 1].tolist()
        return self._keys[self._positions(np.asarray(fids, dtype=np.int64))].tolist()

    def _private(self, key: Any, props: str) -> bytes:
        """The tail with every column, and the household's status over it (as ``set_status`` in memory)."""
        status = self.statuses.get(key)
        if not status:
            return b',"properties":' + props.encode("utf-8") + b"}"
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

    def replace(self, key: Any, geom: Any) -> bool:
        raise UsageError(f"{self.id} is served from the store: change it there (its R*tree follows the table)")

    def delete(self, key: Any) -> None:
        raise UsageError(f"{self.id} is served from the store: change it there (its R*tree follows the table)")

    # ---------------------------------------------------------------- whole columns, for start-up
    @property
    def column_names(self) -> list[str]:
        return list(self.public)

    def columns(self, names: list[str]) -> dict[str, NDArray[Any]]:
        """Whole public columns in id order (the locator's summaries, the chains of units: small levels)."""
        have = [c for c in names if c in self.public]
        if not have:
            return {}
        sel = ", ".join(f'"{c}"' for c in have)
        rows = self._conn().execute(f'SELECT "{self.t.fid}", {sel} FROM "{self.t.name}" ORDER BY 1').fetchall()
        order = self._order([r[0] for r in rows])
        out = {}
        for j, c in enumerate(have, start=1):
            arr = np.empty(len(rows), dtype=object)
            kind = self._kinds[c]
            arr[:] = [_value(r[j], kind) for r in rows] if kind in ("BOOLEAN", "BLOB") else [r[j] for r in rows]
            out[c] = arr[order]
        return out

    def rows_at(self, plist: list[int], names: list[str]) -> list[dict[str, Any]]:
        """The columns ``names`` of the features at ``plist``, read in one query (not through the page cache:
        a /locate answer's summaries need no geometry)."""
        have = [c for c in names if c in self.public]
        fids = self._fid(plist)
        sel = "".join(f', "{c}"' for c in have)
        got: dict[int, dict[str, Any]] = {}
        for lo in range(0, len(fids), 900):
            part = fids[lo:lo + 900]
            for r in self._conn().execute(f'SELECT "{self.t.fid}"{sel} FROM "{self.t.name}" WHERE "{self.t.fid}" '
                                          f'IN ({",".join("?" * len(part))})', part):
                got[int(r[0])] = {c: _value(v, self._kinds[c]) for c, v in zip(have, r[1:], strict=True)}
        return [got.get(f, {}) for f in fids]

    def _order(self, fids_in_fid_order: list[int]) -> NDArray[np.int64]:
        """The permutation taking rows read in fid order to id order."""
        if self.fids is None or self.int_keys:
            return np.arange(len(fids_in_fid_order), dtype=np.int64)
        return np.searchsorted(np.asarray(fids_in_fid_order, dtype=np.int64), self.fids).astype(np.int64)

    def table(self, names: list[str]) -> pd.DataFrame:
        return pd.DataFrame(self.columns(names))

    def geometries(self) -> NDArray[np.object_]:
        """Every geometry in CRS84, in id order: what the locator indexes (a level, not the households).

        The GeoPackage header is cut off in SQL for the rows that share the first row's (GDAL writes one
        layout per layer), so no Python runs per feature; any other row is decoded as :func:`decode` does.
        """
        conn = self._conn()
        first = conn.execute(f'SELECT "{self.t.geom}" FROM "{self.t.name}" WHERE "{self.t.geom}" IS NOT NULL '
                             'LIMIT 1').fetchone()
        head = bytes(first[0][:8]) if first and first[0] and len(first[0]) >= 8 and first[0][:2] == b"GP" else b""
        size = 8 + _ENVELOPE.get((head[3] >> 1) & 0x07, 0) if head and not head[3] & 0x10 else 0
        g = f'"{self.t.geom}"'
        rows = conn.execute(f'SELECT "{self.t.fid}", CASE WHEN substr({g}, 1, 8) = ? THEN substr({g}, ?) END, '
                            f'CASE WHEN substr({g}, 1, 8) = ? THEN NULL ELSE {g} END FROM "{self.t.name}" ORDER BY 1',
                            (head, size + 1, head)).fetchall()
        fids = [r[0] for r in rows]
        geoms = np.asarray(shapely.from_wkb([r[1] for r in rows], on_invalid="ignore"), dtype=object)
        odd = [i for i, r in enumerate(rows) if r[2] is not None or (r[1] is not None and geoms[i] is None)]
        if odd:
            keys = fids if self._keys is None else self._keys[np.argsort(self._order(fids))].tolist()
            geoms[odd] = decode(self.id, [keys[i] for i in odd], [rows[i][2] if rows[i][2] is not None
                                                                  else head + rows[i][1] for i in odd])
        return self._crs84(geoms, orient=False)[self._order(fids)]

    def frame(self) -> gpd.GeoDataFrame:
        """The whole layer with every column, CRS84, in id order (patrol planning: read when first asked)."""
        names = [c for c, _ in self.t.columns]
        sel = "".join(f', "{c}"' for c in names)
        rows = self._conn().execute(f'SELECT "{self.t.fid}", "{self.t.geom}"{sel} FROM "{self.t.name}" ORDER BY 1'
                                    ).fetchall()
        fids = [r[0] for r in rows]
        order = self._order(fids)
        geoms = self._crs84(decode(self.id, fids, [r[1] for r in rows]))[order]
        data = {c: pd.Series([_value(r[j], self._kinds[c]) for r in rows]).iloc[order].reset_index(drop=True)
                for j, c in enumerate(names, start=2)}
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"), crs="EPSG:4326")

    def within(self, bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        """Every feature whose R*tree box meets the CRS84 ``bounds``: every column, CRS84, ``_item`` (its id)
        and its position as the index (the patrol planner's households of one grid, :class:`ByGrid`)."""
        q = bounds if self._to84 is None else _to_storage(bounds, self.t.srs)
        if self.t.rtree is None:
            raise UsageError(f"{self.id} has no spatial index in the file: it cannot be read by area")
        fids = [int(r[0]) for r in self._conn().execute(
            f'SELECT id FROM "{self.t.rtree}" WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ? ORDER BY 1',
            (q[0], q[2], q[1], q[3]))]
        names = [c for c, _ in self.t.columns]
        sel = "".join(f', "{c}"' for c in names)
        rows: list[Any] = []
        for lo in range(0, len(fids), 900):
            part = fids[lo:lo + 900]
            rows += self._conn().execute(f'SELECT "{self.t.fid}", "{self.t.geom}"{sel} FROM "{self.t.name}" WHERE '
                                         f'"{self.t.fid}" IN ({",".join("?" * len(part))}) ORDER BY 1', part).fetchall()
        got = [int(r[0]) for r in rows]
        keys = self._keys_of(got)
        geoms = self._crs84(decode(self.id, keys, [r[1] for r in rows]))
        data = {c: [_value(r[j], self._kinds[c]) for r in rows] for j, c in enumerate(names, start=2)}
        data["_item"] = [str(k) for k in keys]
        index = pd.Index(self._positions(np.asarray(got, dtype=np.int64)) if got else np.empty(0, dtype=np.int64))
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326", index=index),
                                crs="EPSG:4326", index=index)

    # ---------------------------------------------------------------- bbox
    def _extent(self, conn: sqlite3.Connection) -> tuple[float, float, float, float]:
        """The layer's extent in CRS84: the GeoPackage's recorded one, else its R*tree's (no feature read)."""
        b = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                         (self.t.name,)).fetchone()
        if (b is None or b[0] is None) and self.t.rtree is not None:
            b = conn.execute(f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "{self.t.rtree}"').fetchone()
        if b is None or b[0] is None:
            return (0.0, 0.0, 0.0, 0.0)
        if self._to84 is None:
            return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
        from pyproj import Transformer

        tr = Transformer.from_crs(f"EPSG:{self.t.srs}", "OGC:CRS84", always_xy=True)
        w, s, e, n = tr.transform_bounds(b[0], b[1], b[2], b[3], densify_pts=21)
        return (float(w), float(s), float(e), float(n))

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
            return np.arange(self.n, dtype=np.int64)  # the whole layer: no need to ask the tree
        if self.t.rtree is None:
            raise UsageError(f"{self.id} has no spatial index in the file: bbox queries are not served on it")
        q = box if self._to84 is None else _to_storage(box, self.t.srs)
        rows = self._conn().execute(
            f'SELECT id, minx, maxx, miny, maxy FROM "{self.t.rtree}" WHERE maxx >= ? AND minx <= ? AND maxy >= ? '
            f'AND miny <= ?', (q[0], q[2], q[1], q[3])).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64)
        arr = np.asarray(rows, dtype=np.float64)
        fids = arr[:, 0].astype(np.int64)
        inside = ((arr[:, 1] >= q[0] + _SLACK) & (arr[:, 2] <= q[2] - _SLACK) & (arr[:, 3] >= q[1] + _SLACK)
                  & (arr[:, 4] <= q[3] - _SLACK))
        if self._to84 is not None:
            inside[:] = False  # a box transformed between CRSs is only approximate: test every candidate
        edge = fids[~inside]
        keep = [fids[inside]]
        if len(edge):
            pos = np.sort(self._positions(edge))
            geoms = np.empty(len(pos), dtype=object)
            if len(pos) <= 20_000:  # what a page of it will serve next: through the features' cache
                geoms[:] = [f.geom for f in self._features(pos.tolist())]
            else:
                geoms[:] = self._geoms_of(self._fid(pos.tolist()))
            hit = shapely.intersects(shapely.box(*box), geoms)
            keep.append(np.asarray(self._fid(pos[hit].tolist()), dtype=np.int64))
        return np.sort(self._positions(np.concatenate(keep)))

    def _geoms_of(self, fids: list[int]) -> list[Any]:
        """CRS84 geometries of many fids, in that order, read without serialising (a very big bbox's edge)."""
        out: dict[int, Any] = {}
        for lo in range(0, len(fids), 900):
            part = fids[lo:lo + 900]
            rows = self._conn().execute(f'SELECT "{self.t.fid}", "{self.t.geom}" FROM "{self.t.name}" WHERE '
                                        f'"{self.t.fid}" IN ({",".join("?" * len(part))})', part).fetchall()
            g = self._crs84(decode(self.id, [r[0] for r in rows], [r[1] for r in rows]))
            out.update(zip([int(r[0]) for r in rows], g.tolist(), strict=True))
        return [out.get(f) for f in fids]


_TYPES = {"INTEGER": "integer", "INT": "integer", "MEDIUMINT": "integer", "SMALLINT": "integer",
          "TINYINT": "integer", "REAL": "number", "FLOAT": "number", "DOUBLE": "number", "BOOLEAN": "boolean"}


@functools.lru_cache(maxsize=16)
def _transformer(srs: int) -> Any:
    """A lon/lat transform from ``srs`` to CRS84, None when it leaves coordinates as they are.

    Why test it on numbers: CGCS2000 (EPSG:4490, what Chinese data is stored in) goes to WGS84 by
    PROJ's ballpark transform, an identity; then the R*tree's boxes are CRS84 boxes already.
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


def _to_storage(box: tuple[float, float, float, float], srs: int) -> tuple[float, float, float, float]:
    """A CRS84 box as the smallest box around it in ``srs`` (densified edges), a little larger for safety."""
    from pyproj import Transformer

    tr = Transformer.from_crs("OGC:CRS84", f"EPSG:{srs}", always_xy=True)
    x0, y0, x1, y1 = tr.transform_bounds(box[0], box[1], box[2], box[3], densify_pts=21)
    dx, dy = (x1 - x0) * 1e-6 + 1e-9, (y1 - y0) * 1e-6 + 1e-9
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _geometry_type(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute("SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
    name = str(row[0]).lower() if row else "geometry"
    return name if name in ("point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon") \
        else "geometry"
