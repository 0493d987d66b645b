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
when GDAL or QGIS edits the table, and when the store does: its connections carry the ST_ functions the
triggers call, :func:`gridgeo.store.sqlite.gpkg_functions`; a plain sqlite3 connection lacks them, so its
write fails rather than leave the tree behind) and tests exactly only the candidates whose box is not
inside the query. An edit by another program shows once its feature leaves the page cache; the ids
of a code-keyed layer and a row-number layer's count are read once (a feature added needs a restart).
A geometry that cannot be read is logged with its layer and id, served as ``null`` and found by no bbox.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.errors import UsageError

from .lazy_base import SLACK, LazyLayer, Rows, Table, extent84, from_wkb, served_type

log = logging.getLogger(__name__)

#: GeoPackage envelope sizes by the header's envelope indicator (GeoPackage 1.3, 2.1.3)
_ENVELOPE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
#: rows asked for by fid in one statement (SQLite's default limit of host parameters is 999)
_CHUNK = 900


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


def _wkb_of_sound(blobs: list[bytes | None]) -> list[bytes | None] | None:
    """The WKB of every blob in one pass when all are GeoPackage geometries with a known envelope (a page's
    common case: 3x faster than :func:`gpkg_wkb` one by one); None to go one by one and name the bad one. A
    truncated blob gives short WKB, which :func:`.lazy_base.from_wkb` logs as unreadable."""
    try:
        if all(b is None or b[:2] == b"GP" for b in blobs):
            return [None if b is None or b[3] & 0x10 else b[8 + _ENVELOPE[(b[3] >> 1) & 0x07]:] for b in blobs]
    except (IndexError, KeyError):
        pass
    return None


def decode(layer: str, ids: list[Any], blobs: list[bytes | None]) -> NDArray[np.object_]:
    """Shapely geometries of GeoPackage blobs; an unreadable one is None, logged with ``layer`` and its id."""
    fast = _wkb_of_sound(blobs)
    if fast is not None:
        return from_wkb(layer, ids, fast)
    wkb: list[bytes | None] = []
    for fid, b in zip(ids, blobs, strict=True):
        try:
            wkb.append(gpkg_wkb(b))
        except ValueError as exc:
            log.warning("%s: feature %s: unreadable geometry (%s); served without one", layer, fid, exc)
            wkb.append(None)
    return from_wkb(layer, ids, wkb)


def describe(conn: sqlite3.Connection, table: str) -> Table:
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
    return Table(table, fid, geom, srs, cols, rtree if has else None)


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


class LazyCollection(LazyLayer):
    """A layer read from the GeoPackage per page (:class:`LazyLayer`: the reading methods of
    :class:`store.Collection`).

    Parameters
    ----------
    path, table
        The GeoPackage and the feature table.
    public
        The only columns everyone is served (:data:`store.PUBLIC_COLUMNS`); None: all.
    n
        Its feature count (:func:`feature_count`), known to the caller that chose to serve it lazily.
    """

    TYPES: ClassVar[dict[str, str]] = {
        "INTEGER": "integer", "INT": "integer", "MEDIUMINT": "integer", "SMALLINT": "integer", "TINYINT": "integer",
        "REAL": "number", "FLOAT": "number", "DOUBLE": "number", "BOOLEAN": "boolean"}

    def __init__(self, path: Path, table: str, n: int, *, public: tuple[str, ...] | None = None,
                 storage_epsg: int | None = None) -> None:
        self.path, self.n = path, n
        self._local = threading.local()
        conn = self._conn()
        self.t = describe(conn, table)
        self._setup(table, public, storage_epsg)
        self.bbox = self._extent(conn)
        row = conn.execute("SELECT geometry_type_name FROM gpkg_geometry_columns WHERE table_name = ?",
                           (table,)).fetchone()
        self.geometry_type = served_type(row[0] if row else None)

    def _conn(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections are not shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
        return conn

    # ---------------------------------------------------------------- rows, for LazyLayer
    def _id_pairs(self, col: str) -> list[tuple[int, Any]]:
        return self._conn().execute(f'SELECT "{self.t.fid}", "{col}" FROM "{self.t.name}"').fetchall()

    def _fid_range(self) -> tuple[Any, Any]:
        # two queries: SQLite answers min() or max() of the primary key from the b-tree, both at once by a scan
        conn = self._conn()
        lo = conn.execute(f'SELECT min("{self.t.fid}") FROM "{self.t.name}"').fetchone()[0]
        hi = conn.execute(f'SELECT max("{self.t.fid}") FROM "{self.t.name}"').fetchone()[0]
        return lo, hi

    def _sorted_fids(self) -> list[int]:
        return [r[0] for r in self._conn().execute(f'SELECT "{self.t.fid}" FROM "{self.t.name}" ORDER BY 1')]

    def _by_fid(self, select: str, fids: list[int]) -> list[Any]:
        """Rows of ``SELECT ... FROM table`` for ``fids``: a run of fids by range, others 900 at a time."""
        conn = self._conn()
        if fids and fids == list(range(fids[0], fids[0] + len(fids))):
            return conn.execute(select + f' WHERE "{self.t.fid}" BETWEEN ? AND ?', (fids[0], fids[-1])).fetchall()
        rows: list[Any] = []
        for lo in range(0, len(fids), _CHUNK):
            part = fids[lo:lo + _CHUNK]
            rows += conn.execute(select + f' WHERE "{self.t.fid}" IN ({",".join("?" * len(part))}) ORDER BY 1',
                                 part).fetchall()
        return rows

    def _fetch(self, fids: list[int]) -> dict[int, tuple[Any, bytes, bytes]]:
        """SQLite writes the properties' JSON (:func:`_json_object`)."""
        # the JSON cast to BLOB comes back as bytes, the UTF-8 SQLite wrote (no str made, then encoded again)
        every = f"CAST({_json_object(self.t.columns)} AS BLOB)"
        if not self.has_private:  # one JSON per row: SQLite would evaluate a repeated expression twice (2.3x)
            rows = self._by_fid(f'SELECT "{self.t.fid}", "{self.t.geom}", {every} FROM "{self.t.name}"', fids)
            return {r[0]: (r[1], r[2], r[2]) for r in rows}
        public = f"CAST({_json_object([(c, k) for c, k in self.t.columns if c in self.public])} AS BLOB)"
        rows = self._by_fid(f'SELECT "{self.t.fid}", "{self.t.geom}", {every}, {public} FROM "{self.t.name}"', fids)
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def _decode(self, keys: list[Any], raws: list[Any]) -> NDArray[np.object_]:
        return decode(self.id, keys, raws)

    def _rows(self, rows: list[Any], names: list[str], *, geometry: bool) -> Rows:
        first = 2 if geometry else 1
        cols = {}
        for j, c in enumerate(names, start=first):
            kind = self._kinds[c]
            values = [r[j] for r in rows]
            cols[c] = [_value(v, kind) for v in values] if kind in ("BOOLEAN", "BLOB") or any(
                isinstance(v, bytes) for v in values) else values
        return [int(r[0]) for r in rows], [r[1] for r in rows] if geometry else None, cols

    def _select(self, names: list[str], *, geometry: bool) -> str:
        g = f', "{self.t.geom}"' if geometry else ""
        cols = "".join(f', "{c}"' for c in names)
        return f'SELECT "{self.t.fid}"{g}{cols} FROM "{self.t.name}"'

    def _scan(self, names: list[str], *, geometry: bool) -> Rows:
        rows = self._conn().execute(self._select(names, geometry=geometry) + " ORDER BY 1").fetchall()
        return self._rows(rows, names, geometry=geometry)

    def _rows_of(self, fids: list[int], names: list[str], *, geometry: bool) -> Rows:
        return self._rows(self._by_fid(self._select(names, geometry=geometry), fids), names, geometry=geometry)

    def _index(self) -> str:
        if self.t.rtree is None:
            raise UsageError(f"{self.id} has no spatial index in the file: bbox queries and reads by area are "
                             "not served on it")
        return self.t.rtree

    def _box_fids(self, q: tuple[float, float, float, float]) -> list[int]:
        return [int(r[0]) for r in self._conn().execute(
            f'SELECT id FROM "{self._index()}" WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ? ORDER BY 1',
            (q[0], q[2], q[1], q[3]))]

    def _candidates(self, q: tuple[float, float, float, float]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The R*tree's hits; a box inside ``q`` by more than its float32 rounding is surely inside."""
        rows = self._conn().execute(
            f'SELECT id, minx, maxx, miny, maxy FROM "{self._index()}" WHERE maxx >= ? AND minx <= ? AND maxy >= ? '
            f'AND miny <= ?', (q[0], q[2], q[1], q[3])).fetchall()
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        arr = np.asarray(rows, dtype=np.float64)
        inside = ((arr[:, 1] >= q[0] + SLACK) & (arr[:, 2] <= q[2] - SLACK) & (arr[:, 3] >= q[1] + SLACK)
                  & (arr[:, 4] <= q[3] - SLACK))
        return arr[:, 0].astype(np.int64), inside

    # ---------------------------------------------------------------- faster than LazyLayer's
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
        try:
            geoms = np.asarray(shapely.from_wkb([r[1] for r in rows], on_invalid="ignore"), dtype=object)
        except (NotImplementedError, shapely.errors.ShapelyError):  # a curve among them: each one below
            geoms = np.full(len(rows), None, dtype=object)
        odd = [i for i, r in enumerate(rows) if r[2] is not None or (r[1] is not None and geoms[i] is None)]
        if odd:
            keys = fids if self._keys is None else self._keys[np.argsort(self._order(fids))].tolist()
            geoms[odd] = decode(self.id, [keys[i] for i in odd], [rows[i][2] if rows[i][2] is not None
                                                                  else head + rows[i][1] for i in odd])
        return self._crs84(geoms, orient=False)[self._order(fids)]

    def _extent(self, conn: sqlite3.Connection) -> tuple[float, float, float, float]:
        """The layer's extent in CRS84: the GeoPackage's recorded one, else its R*tree's (no feature read)."""
        b = conn.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                         (self.t.name,)).fetchone()
        if (b is None or b[0] is None) and self.t.rtree is not None:
            b = conn.execute(f'SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "{self.t.rtree}"').fetchone()
        return extent84(b, self.t.srs)
