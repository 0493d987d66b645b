"""A big layer of a county in PostGIS served page by page through psycopg, instead of read whole at start-up.

Why: ``gridgeo serve postgresql://...`` read every table into memory and pre-serialised it, so a
5M-household county took minutes and many GiB before its first answer. A page of 100 features is 100
rows read by primary key; a bbox asks the table's GiST index. What is left is what :mod:`.lazy` does for
a GeoPackage (:class:`~.lazy_base.LazyLayer`: ids, positions, the LRU of serialised features, the exact
test of a bbox's edge), so a county serves the same ids and bytes from the file, from PostGIS and from
memory.

Each cell is made the value the in-memory layer serves (the catalogue's pandas dtype of the column, as
:func:`gridgeo.store.postgis.read_layers` gives it) and its JSON written by the same function
(:func:`store.dumps`), not by ``json_build_object``: PostgreSQL writes 3.0 as 3 and 1e15 as
1e+15, where Python (the in-memory layer, the GeoPackage one) writes 3.0 and 1000000000000000.0.
Geometries come as WKB (``ST_AsBinary``, binary protocol) and are decoded by shapely; one shapely
cannot read (a curve a GIS wrote into a generic geometry column) is logged with its layer and id and
served as ``null``, as is an empty one (as the GeoPackage layer serves the empty flag).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import shapely
from numpy.typing import NDArray
from psycopg import sql

from gridgeo.errors import StoreError
from gridgeo.store.postgis import Entry, column
from gridgeo.store.postgres import PostgresStore, connect

from .lazy_base import SLACK, LazyLayer, Rows, Table, extent84, from_wkb, served_type
from .store import _jsonable, dumps

log = logging.getLogger(__name__)

#: a table whose planner estimate is this many times the threshold is big without a count
_SURELY = 2


class Reader(PostgresStore):
    """The served layers' reads: each thread's own connection (:class:`PostgresStore`'s handling: opened
    with the store's options and messages, a dropped one replaced), in autocommit, since each read is one
    statement and a COMMIT would be a second round trip per page."""

    def __init__(self, url: str) -> None:
        super().__init__(url, create=False)

    def _connect(self) -> Any:
        return connect(self.dsn, autocommit=True)

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read, in the binary protocol (WKB as bytes, not hex text).

        Raises
        ------
        StoreError
            The database cannot be read (the message names it without the password).
        """
        with self.transaction(write=False) as cur:
            cur.execute(query, tuple(params), binary=True)
            return cur.fetchall()  # type: ignore[no-any-return]


def _text(q: sql.Composable) -> str:
    return q.as_string(None)


def cells(values: list[Any], dtype: str) -> list[Any]:
    """One column's values as the in-memory layer serves them, JSON-ready (:func:`gridgeo.store.postgis.column`,
    then ``to_dict`` and :func:`store._jsonable`): the common dtypes directly, the rest (datetimes, float32,
    byte strings ...) through pandas and ``_jsonable``. Why not ``_jsonable`` on every cell: it was half
    the time of serialising a page."""
    if dtype == "object" or dtype.startswith("str"):
        if all(v is None or type(v) is str for v in values):
            return values
        return [_jsonable(v) for v in values]
    if dtype == "float64":
        return [None if v is None or not math.isfinite(v) else float(v) for v in values]
    if None not in values:
        if dtype.startswith(("int", "uint")) and all(type(v) is int for v in values):
            return values
        if dtype == "bool":
            return [bool(v) for v in values]
    try:
        return [_jsonable(v) for v in column(values, dtype).tolist()]
    except (TypeError, ValueError):  # a NULL in a column loaded without one: served as it is
        return [_jsonable(v) for v in values]


class PgLazyCollection(LazyLayer):
    """A PostGIS table read per page (:class:`LazyLayer`: the reading methods of :class:`store.Collection`).

    Parameters
    ----------
    reader
        The county's connections (shared by its lazy layers).
    entry
        The table's line of the catalogue (:func:`gridgeo.store.postgis.catalogue`): columns with the
        pandas dtype each was loaded with, fid and geometry columns, SRID.
    n
        Its exact row count (ids that are row numbers run 1..n).
    public
        The only columns everyone is served (:data:`store.PUBLIC_COLUMNS`); None: all.
    """

    TYPES: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"), "integer"),
        "float32": "number", "float64": "number", "bool": "boolean"}

    def __init__(self, reader: Reader, entry: Entry, n: int, *, public: tuple[str, ...] | None = None) -> None:
        assert entry.geometry_column is not None
        self.reader, self.n = reader, n
        srid = int(entry.srid or 0)
        self._dtypes = {c: d for c, _, d in entry.columns}
        self.t = Table(entry.name, entry.fid_column, entry.geometry_column, srid,
                       [(c, d) for c, _, d in entry.columns], self._gist(entry))
        self._setup(entry.name, public, srid or None)
        self.geometry_type = served_type((entry.geometry_type or "").removesuffix("Z"))
        ident = sql.Identifier
        self._fid_sql, self._geom_sql, self._table_sql = ident(self.t.fid), ident(self.t.geom), ident(self.t.name)
        self._queries: dict[tuple[tuple[str, ...], bool, bool], str] = {}
        self.bbox = self._extent()

    def _gist(self, entry: Entry) -> str | None:
        """The table's GiST index on its geometry, if it has one (``gridgeo load`` makes it)."""
        rows = self.reader.rows(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam JOIN pg_attribute t ON t.attrelid = i.indrelid "
            "AND t.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND a.amname = 'gist' AND t.attname = %s",
            (_text(sql.Identifier(entry.name)), entry.geometry_column))
        if not rows:
            log.warning("%s: no GiST index on %s: every bbox request scans the table (CREATE INDEX ON %s USING "
                        "GIST (%s))", entry.name, entry.geometry_column, entry.name, entry.geometry_column)
            return None
        return str(rows[0][0])

    def _extent(self) -> tuple[float, float, float, float]:
        """The extent in CRS84 from the GiST index's root (``ST_EstimatedExtent`` reads it: no row read, a
        box around every indexed geometry, float-rounded outwards); without an index, ``ST_Extent``."""
        b: Sequence[Any] | None = None
        if self.t.rtree is not None:
            try:
                got = self.reader.rows("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                       "ST_EstimatedExtent(%s, %s) AS e", (self.t.name, self.t.geom))
                b = got[0] if got else None
            except StoreError as exc:  # no statistics nor index PostGIS can read
                log.info("%s: no estimated extent (%s); computed", self.id, exc)
        if b is None or b[0] is None:
            q = sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent({}) AS e "
                        "FROM {}) AS x").format(self._geom_sql, self._table_sql)
            b = self.reader.rows(_text(q))[0]
        return extent84(b, self.t.srs)

    # ---------------------------------------------------------------- rows, for LazyLayer
    def _id_pairs(self, col: str) -> list[tuple[int, Any]]:
        q = sql.SQL("SELECT {}, {} FROM {}").format(self._fid_sql, sql.Identifier(col), self._table_sql)
        rows = self.reader.rows(_text(q))
        values = cells([r[1] for r in rows], self._dtypes[col])
        return [(int(r[0]), v) for r, v in zip(rows, values, strict=True)]

    def _fid_range(self) -> tuple[Any, Any]:
        q = sql.SQL("SELECT min({0}), max({0}) FROM {1}").format(self._fid_sql, self._table_sql)
        lo, hi = self.reader.rows(_text(q))[0]
        return lo, hi

    def _sorted_fids(self) -> list[int]:
        q = sql.SQL("SELECT {0} FROM {1} ORDER BY {0}").format(self._fid_sql, self._table_sql)
        return [int(r[0]) for r in self.reader.rows(_text(q))]

    def _select(self, names: list[str], *, geometry: bool) -> sql.Composed:
        cols: list[sql.Composable] = [self._fid_sql]
        if geometry:
            cols.append(sql.SQL("ST_AsBinary({})").format(self._geom_sql))
        cols += [sql.Identifier(c) for c in names]
        return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(cols), self._table_sql)

    def _rows(self, rows: list[tuple[Any, ...]], names: list[str], *, geometry: bool) -> Rows:
        first = 2 if geometry else 1
        cols = {c: cells([r[j] for r in rows], self._dtypes[c]) for j, c in enumerate(names, start=first)}
        raws = [None if r[1] is None else bytes(r[1]) for r in rows] if geometry else None
        return [int(r[0]) for r in rows], raws, cols

    def _scan(self, names: list[str], *, geometry: bool) -> Rows:
        q = sql.SQL("{} ORDER BY {}").format(self._select(names, geometry=geometry), self._fid_sql)
        return self._rows(self.reader.rows(_text(q)), names, geometry=geometry)

    def _rows_of(self, fids: list[int], names: list[str], *, geometry: bool) -> Rows:
        """A run of fids by range (a page in fid order), others by ``= ANY``: one statement either way."""
        if not fids:
            return [], [] if geometry else None, {c: [] for c in names}
        run = fids == list(range(fids[0], fids[0] + len(fids)))
        params = (fids[0], fids[-1]) if run else (fids,)
        rows = self.reader.rows(self._by_fid(tuple(names), geometry, run), params)
        return self._rows(rows, names, geometry=geometry)

    def _by_fid(self, names: tuple[str, ...], geometry: bool, run: bool) -> str:
        """The text of a read by fid, made once (composing it took a fifth of a page's time)."""
        key = (names, geometry, run)
        text = self._queries.get(key)
        if text is None:
            where = "{} BETWEEN %s AND %s" if run else "{} = ANY(%s)"
            text = self._queries[key] = _text(sql.SQL("{} WHERE " + where + " ORDER BY {}").format(
                self._select(list(names), geometry=geometry), self._fid_sql, self._fid_sql))
        return text

    def _fetch(self, fids: list[int]) -> dict[int, tuple[Any, bytes, bytes]]:
        names = [c for c, _ in self.t.columns]
        got, raws, cols = self._rows_of(fids, names, geometry=True)
        assert raws is not None
        out: dict[int, tuple[Any, bytes, bytes]] = {}
        for i, f in enumerate(got):
            rec = {c: cols[c][i] for c in names}
            every = dumps(rec)
            public = dumps({c: rec[c] for c in self.public}) if self.has_private else every
            out[f] = (raws[i], every, public)
        return out

    def _decode(self, keys: list[Any], raws: list[Any]) -> NDArray[np.object_]:
        geoms = from_wkb(self.id, keys, raws)
        for i in np.flatnonzero(shapely.is_empty(geoms) & ~shapely.is_missing(geoms)).tolist():
            log.warning("%s: feature %s: empty geometry; served without one", self.id, keys[i])
            geoms[i] = None
        return geoms

    def _envelope(self, q: tuple[float, float, float, float]) -> sql.Composed:
        return sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(*(sql.Literal(float(v)) for v in q),
                                                                      sql.Literal(self.t.srs))

    def _box_fids(self, q: tuple[float, float, float, float]) -> list[int]:
        query = sql.SQL("SELECT {0} FROM {1} WHERE {2} && {3} ORDER BY {0}").format(
            self._fid_sql, self._table_sql, self._geom_sql, self._envelope(q))
        return [int(r[0]) for r in self.reader.rows(_text(query))]

    def _candidates(self, q: tuple[float, float, float, float]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The GiST index's hits (``&&``: float boxes rounded outwards, so none is missed); ``@`` a box
        shrunk by :data:`SLACK` tells the ones surely inside from the rest, which get the exact test."""
        x0, y0, x1, y1 = q
        inner: sql.Composable = sql.SQL("false")
        if x1 - x0 > 2 * SLACK and y1 - y0 > 2 * SLACK:
            inner = sql.SQL("{} @ {}").format(self._geom_sql, self._envelope((x0 + SLACK, y0 + SLACK, x1 - SLACK,
                                                                               y1 - SLACK)))
        query = sql.SQL("SELECT {}, {} FROM {} WHERE {} && {}").format(
            self._fid_sql, inner, self._table_sql, self._geom_sql, self._envelope(q))
        rows = self.reader.rows(_text(query))
        fids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return fids, np.fromiter((bool(r[1]) for r in rows), dtype=bool, count=len(rows))


# ------------------------------------------------------------------------------------------- which are big
def _estimate(reader: Reader, name: str) -> float:
    """The planner's row estimate of a table (``pg_class.reltuples``: no row read); -1: never analysed."""
    rows = reader.rows("SELECT c.reltuples FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
                       "WHERE s.nspname = current_schema() AND c.relname = %s", (name,))
    return float(rows[0][0]) if rows else -1.0


def count(reader: Reader, name: str) -> int:
    """Rows of a table, counted (row-number ids must be exact; 5M rows: about a second)."""
    return int(reader.rows(_text(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))))[0][0])


def big_tables(reader: Reader, entries: list[Entry], lazy_at: int | None, lazy_bytes: int) -> dict[str, int]:
    """The feature tables with more than ``lazy_at`` rows or ``lazy_bytes`` of geometry, and their counts:
    what :func:`store._big_layers` picks from a GeoPackage.

    Why cheap: a table the planner estimates at twice the threshold is big without a look (the load
    ANALYZEs every table); the others are counted, and only their geometries summed (``sum(ST_MemSize)``,
    at most some 100,000 rows, milliseconds). ``pg_total_relation_size`` would cost nothing but counts the
    other columns, the indexes and dead rows too, so it would call layers big that the file serves from
    memory.
    """
    if lazy_at is None:
        return {}
    out: dict[str, int] = {}
    for e in entries:
        if e.geometry_column is None:
            continue
        if _estimate(reader, e.name) > _SURELY * max(lazy_at, 1):
            out[e.name] = count(reader, e.name)
            continue
        n = count(reader, e.name)
        size = 0 if n > lazy_at else int(reader.rows(_text(sql.SQL("SELECT coalesce(sum(ST_MemSize({})), 0) FROM {}")
                                                          .format(sql.Identifier(e.geometry_column),
                                                                  sql.Identifier(e.name))))[0][0])
        if n > lazy_at or size > lazy_bytes:
            out[e.name] = n
    return out
