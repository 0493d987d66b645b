"""A built county in PostGIS: ``gridgeo load county.gpkg postgresql://...`` writes it, the service reads it back.

Why PostGIS beside the GeoPackage: at city scale the county lives where its
store lives (many writers, one server), and QGIS, ``psql`` and other GIS tools
read it there. :func:`load_geopackage` writes every layer of a GeoPackage as a
table of its own (its geometry with its SRID in the layer's own CRS, a GiST
index, each attribute column in the SQL type of its values, the GeoPackage's
fid as the primary key), its attribute tables (a build's ``people``) as plain
tables, and the layer order in :data:`CATALOGUE`. A GeoPackage that holds a
store (the ``gg_`` tables: users, visits, status, tracks, audit) brings it
along, ids kept, so a county moves with its history. All of it is one
transaction: a failure anywhere leaves the database as it was.

:func:`read_layers` gives the layers back as the GeoPackage reader gives them
(same columns, dtypes, CRS and row order; :data:`CATALOGUE` keeps each
column's dtype), so serving from PostGIS serves the same features.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pandas.api.types import pandas_dtype
from psycopg import sql

from gridgeo.errors import ConflictError, FileFormatError, InputError

from ._sql import SCHEMA_VERSION
from .base import now_utc
from .postgres import SCHEMA_LOCK, PostgresStore
from .versions import Versions

log = logging.getLogger(__name__)

#: the table listing the loaded layers and tables in their order, with what reading them back needs
CATALOGUE = "gg_layers"
_CATALOGUE_DDL = (f"CREATE TABLE IF NOT EXISTS {CATALOGUE} (position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
                  "kind TEXT NOT NULL, fid_column TEXT NOT NULL, geometry_column TEXT, geometry_type TEXT, "
                  "srid INTEGER, crs TEXT, columns TEXT NOT NULL, features BIGINT NOT NULL, source TEXT NOT NULL, "
                  "loaded TEXT NOT NULL)")
#: GeoPackage tables that are not the county's data (QGIS's styles) and are not loaded
SKIPPED = frozenset({"layer_styles"})
#: the prefix of the store's own tables (copied as the store, not as layers)
STORE_PREFIX = "gg_"
#: PostgreSQL cuts longer identifiers, which could make two layers one table
MAX_NAME_BYTES = 63

_INT_TYPES = {"int8": "SMALLINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "uint8": "SMALLINT",
              "uint16": "INTEGER", "uint32": "BIGINT", "uint64": "NUMERIC"}


@dataclass
class Layer:
    """One layer or attribute table of the GeoPackage, as read, and how it is stored."""

    name: str
    #: its rows, a chunk at a time, fid as index (read again on each call)
    read: Callable[[], Iterator[pd.DataFrame]]
    count: int
    fid_column: str
    geometry_column: str | None
    columns: list[tuple[str, str, str]]  # (name, SQL type, pandas dtype read back)
    srid: int | None = None
    crs: str | None = None
    geometry_type: str | None = None


# ------------------------------------------------------------------------------------------- reading the file
def _check_geopackage(path: Path) -> None:
    """A clear error unless ``path`` is a GeoPackage (SQLite with ``gpkg_contents``)."""
    if not path.is_file():
        raise FileFormatError("no such file", path=path)
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise FileFormatError("not a GeoPackage (not an SQLite database)", path=path)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            conn.execute("SELECT table_name FROM gpkg_contents LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise FileFormatError(f"not a GeoPackage ({exc})", path=path) from None


def _sql_type(series: pd.Series, declared: str) -> str:
    """The SQL type of a column: from its dtype, the GeoPackage's declared one for an integer column with
    nulls (read as float), the values' Python type for an object column."""
    kind = series.dtype.kind
    if kind == "b":
        return "BOOLEAN"
    if kind in "iu":
        return _INT_TYPES.get(str(series.dtype), "BIGINT")
    if kind == "f":
        if declared.startswith(("int", "uint")):
            return _INT_TYPES.get(declared, "BIGINT")
        return "REAL" if str(series.dtype) == "float32" else "DOUBLE PRECISION"
    if kind == "M":
        return "TIMESTAMPTZ" if getattr(series.dtype, "tz", None) is not None else "TIMESTAMP"
    values = series.dropna().tolist()[:1000]
    if values and all(isinstance(v, bytes) for v in values):
        return "BYTEA"
    if values and all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values):
        return "DATE"
    if values and all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    return "TEXT"


def _geometry_type_of(type_ids: set[int], has_z: bool, declared: str) -> str:
    """The PostGIS type modifier: the declared type if every geometry is one, else the one type they share,
    else ``Geometry``; ``Z`` when any has a third coordinate (``type_ids``: GEOS's, of every geometry)."""
    by_id = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
             6: "MultiPolygon", 7: "GeometryCollection"}
    kinds = {by_id.get(n, "Geometry") for n in type_ids}
    base = declared.replace(" Z", "").replace(" M", "").replace("Z", "")
    if not kinds:
        out = base if base in by_id.values() else "Geometry"
    elif kinds == {base}:
        out = base
    else:
        out = kinds.pop() if len(kinds) == 1 else "Geometry"
    return out + ("Z" if has_z else "")


#: rows read from the GeoPackage and converted for COPY at a time (a province's 5M households read whole
#: held 4.3 GiB; every layer at once, 7.3 GiB)
READ_ROWS = 100_000
#: ... and at most this many bytes of stored geometry (a chunk of polygons costs about 15x that in memory)
READ_BYTES = 16 * 2**20


def _fid_bounds(path: Path, table: str, fid_column: str, geom: str | None) -> list[int]:
    """Lower fid of each read, and one past the last fid: a read takes at most :data:`READ_ROWS` rows and
    :data:`READ_BYTES` of geometry (polygons of thousands of vertices come in fewer rows than points); fids
    may be sparse. None when the table is empty or has no integer fid (then it is read whole)."""
    size = f'length("{geom}")' if geom else "0"
    bounds: list[int] = []
    n = used = 0
    last = None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:  # rows streamed: 5M fids held as a
            for fid, nbytes in conn.execute(  # list cost 0.6 GB
                    f'SELECT "{fid_column}", coalesce({size}, 0) FROM "{table}" ORDER BY 1'):
                if not isinstance(fid, int):
                    return []
                if not bounds or n >= READ_ROWS or used >= READ_BYTES:
                    bounds.append(fid)
                    n = used = 0
                n += 1
                used += int(nbytes)
                last = fid
    except sqlite3.Error:  # no such column (a table without an integer key): read whole
        return []
    return [] if last is None else [*bounds, last + 1]


def _reader(path: Path, name: str, fid_column: str, geom: str | None) -> Callable[[], Iterator[pd.DataFrame]]:
    """The layer's rows a chunk at a time (:func:`_fid_bounds`) by ranges of fid (its primary key), fid as index."""
    import pyogrio

    geometry = geom is not None
    bounds = _fid_bounds(path, name, fid_column, geom)

    def read() -> Iterator[pd.DataFrame]:
        if not bounds:
            yield pyogrio.read_dataframe(path, layer=name, fid_as_index=True, read_geometry=geometry)
            return
        for lo, hi in itertools.pairwise(bounds):
            yield pyogrio.read_dataframe(path, layer=name, fid_as_index=True, read_geometry=geometry,
                                         where=f'"{fid_column}" >= {int(lo)} AND "{fid_column}" < {int(hi)}')
    return read


class _Column:
    """What one pass over a column's chunks says of it: the dtype one whole read gives, some values."""

    def __init__(self) -> None:
        self.heads: list[pd.Series] = []
        self.first: pd.Series | None = None
        self.nulls = False
        self.samples: list[Any] = []

    def add(self, values: pd.Series) -> None:
        if self.first is None:
            self.first = values.iloc[:0].copy()  # copies: a view would keep the whole chunk alive
        known = values.notna()
        self.nulls = self.nulls or not bool(known.all())
        if bool(known.any()):
            self.heads.append(values[known].iloc[:1].copy())
            if values.dtype.kind == "O" and len(self.samples) < 1000:
                self.samples += values[known].tolist()[:1000 - len(self.samples)]

    def dtype(self) -> Any:
        """As one read gives it: the chunks' types combined, an integer or boolean column with nulls as
        float or object (GDAL's reader has no null integers)."""
        if not self.heads:
            return self.first.dtype if self.first is not None else np.dtype(object)
        dtype = pd.concat(self.heads).dtype
        if self.nulls and dtype.kind in "iu":
            return np.dtype("float64")
        if self.nulls and dtype.kind == "b":
            return np.dtype(object)
        return dtype

    def proxy(self) -> pd.Series:
        """A series :func:`_sql_type` types as the whole column."""
        dtype = self.dtype()
        return pd.Series(self.samples if dtype.kind == "O" else [], dtype=dtype)


def _read_layer(path: Path, name: str) -> Layer:
    """The layer's description, from one pass over its rows in chunks (types as one whole read gives them)."""
    import pyogrio

    info = pyogrio.read_info(path, layer=name)
    fid_column = str(info.get("fid_column") or "fid")
    geometry = info.get("geometry_type") is not None
    geom_col = str(info.get("geometry_name") or "geom") if geometry else None
    read = _reader(path, name, fid_column, geom_col)
    cols: dict[str, _Column] = {}
    kinds: set[int] = set()
    has_z, count, crs = False, 0, None
    for frame in read():
        count += len(frame)
        for c in frame.columns:
            if not (geometry and c == frame.geometry.name):
                cols.setdefault(c, _Column()).add(frame[c])
        if geometry:
            crs = frame.crs
            geoms = np.asarray(frame.geometry.values, dtype=object)
            present = geoms[~shapely.is_missing(geoms)]
            kinds |= set(shapely.get_type_id(present).tolist())
            has_z = has_z or bool(len(present) and shapely.has_z(present).any())
    declared = dict(zip(info["fields"], (str(d) for d in info["dtypes"]), strict=True))
    clash = [c for c in cols if c in (fid_column, geom_col)]
    if clash:
        raise InputError(f"layer {name!r}: column {clash[0]!r} has the name of its fid or geometry column", path=path)
    columns = [(c, _sql_type(col.proxy(), declared.get(c, "")), str(col.dtype())) for c, col in cols.items()]
    layer = Layer(name, read, count, fid_column, geom_col, columns)
    if geometry:
        if crs is None:
            raise InputError(f"layer {name!r} has no CRS; PostGIS needs one (an SRID)", path=path)
        epsg = crs.to_epsg()
        if epsg is None:
            raise InputError(f"layer {name!r}: its CRS has no EPSG code, and PostGIS needs an SRID", path=path)
        layer.srid, layer.crs = int(epsg), crs.to_wkt()
        layer.geometry_type = _geometry_type_of(kinds, has_z, str(info.get("geometry_type") or ""))
    return layer


def layer_names(path: Path) -> list[str]:
    """The layers and tables of a GeoPackage to load, checked from their descriptions (no rows read).

    Raises
    ------
    FileFormatError
        Not a GeoPackage.
    InputError
        No layer with features, a name too long, a layer without a CRS or an EPSG code for it.
    """
    import pyogrio

    _check_geopackage(path)
    names = [str(n) for n, _ in pyogrio.list_layers(path)]
    data = [n for n in names if n not in SKIPPED and not n.startswith(STORE_PREFIX)]
    too_long = [n for n in data if len(n.encode("utf-8")) > MAX_NAME_BYTES]
    if too_long:
        raise InputError(f"layer name {too_long[0]!r} is longer than PostgreSQL's {MAX_NAME_BYTES} bytes", path=path)
    features = 0
    for name in data:
        info = pyogrio.read_info(path, layer=name)
        if info.get("geometry_type") is None:
            continue
        features += 1
        if not info.get("crs"):
            raise InputError(f"layer {name!r} has no CRS; PostGIS needs one (an SRID)", path=path)
        if pyproj.CRS.from_user_input(info["crs"]).to_epsg() is None:
            raise InputError(f"layer {name!r}: its CRS has no EPSG code, and PostGIS needs an SRID", path=path)
    if not features:
        raise InputError("has no layer with features to load", path=path)
    return data


def _store_rows(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """The store's tables of the GeoPackage (``gg_`` tables but ``gg_meta``): columns and rows, by id."""
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE "
                                             "'gg!_%' ESCAPE '!' AND name != 'gg_meta' ORDER BY name")]
        if not tables:
            return out
        meta = conn.execute("SELECT value FROM gg_meta WHERE key = 'schema'").fetchone()
        if meta is not None and int(meta[0]) > SCHEMA_VERSION:
            raise InputError(f"its store has schema {meta[0]}, newer than this gridgeo's ({SCHEMA_VERSION}); "
                             "upgrade gridgeo", path=path)
        for t in tables:
            cur = conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')
            out[t] = ([d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()])
    return out


# ------------------------------------------------------------------------------------------- writing PostGIS
def _python(value: Any, sql_type: str) -> Any:
    """One cell as the Python value psycopg writes for ``sql_type`` (a missing value: NULL)."""
    if value is None or value is pd.NaT or (not isinstance(value, str | bytes) and bool(pd.isna(value))):
        return None
    if sql_type in ("SMALLINT", "INTEGER", "BIGINT", "NUMERIC"):
        return int(value)
    if sql_type in ("REAL", "DOUBLE PRECISION"):
        return float(value)
    if sql_type == "BOOLEAN":
        return bool(value)
    if sql_type.startswith("TIMESTAMP"):
        return pd.Timestamp(value).to_pydatetime()
    if sql_type == "TEXT" and not isinstance(value, str):
        return str(value)
    return value


def _rows(layer: Layer) -> Iterator[tuple[Any, ...]]:
    """The layer's rows as COPY takes them, converted one read (:data:`READ_ROWS`) at a time."""
    for frame in layer.read():
        cols = [[_python(v, t) for v in frame[c].tolist()] for c, t, _ in layer.columns]
        parts: list[Sequence[Any]] = [[int(f) for f in frame.index], *cols]
        if layer.geometry_column is not None:
            geoms = shapely.set_srid(np.asarray(frame.geometry.values, dtype=object), layer.srid or 0)
            parts.append(shapely.to_wkb(geoms, hex=True, include_srid=True).tolist())
        yield from zip(*parts, strict=True)


def _create(cur: Any, layer: Layer) -> None:
    """The table, its rows (COPY), its GiST index and its line in the catalogue."""
    ident = sql.Identifier
    defs = [sql.SQL("{} BIGINT PRIMARY KEY").format(ident(layer.fid_column))]
    defs += [sql.SQL("{} {}").format(ident(c), sql.SQL(t)) for c, t, _ in layer.columns]
    names = [layer.fid_column, *(c for c, _, _ in layer.columns)]
    if layer.geometry_column is not None:
        defs.append(sql.SQL("{} geometry({}, {})").format(ident(layer.geometry_column),
                                                          sql.SQL(layer.geometry_type or "Geometry"),
                                                          sql.Literal(layer.srid)))
        names.append(layer.geometry_column)
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(ident(layer.name), sql.SQL(", ").join(defs)))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(ident(layer.name), sql.SQL(", ").join(map(ident, names)))
    with cur.copy(copy_sql) as copy:
        for row in _rows(layer):
            copy.write_row(row)
    if layer.geometry_column is not None:
        cur.execute(sql.SQL("CREATE INDEX ON {} USING GIST ({})").format(ident(layer.name),
                                                                        ident(layer.geometry_column)))
    cur.execute(sql.SQL("ANALYZE {}").format(ident(layer.name)))


def _srid_known(cur: Any, layer: Layer) -> None:
    """Add the layer's EPSG code to ``spatial_ref_sys`` if this PostGIS does not list it."""
    cur.execute("SELECT 1 FROM spatial_ref_sys WHERE srid = %s", (layer.srid,))
    if cur.fetchone() is None and layer.crs is not None:
        crs = pyproj.CRS.from_wkt(layer.crs)
        cur.execute("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
                    "VALUES (%s, 'EPSG', %s, %s, %s)", (layer.srid, layer.srid, crs.to_wkt("WKT1_GDAL"),
                                                        crs.to_proj4()))


def _existing(cur: Any, names: list[str]) -> tuple[list[str], list[str]]:
    """The tables of a previous load (catalogue order) and the other tables in the way of ``names``."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (CATALOGUE,))
    loaded: list[str] = []
    if cur.fetchone()[0]:
        cur.execute(f"SELECT name FROM {CATALOGUE} ORDER BY position")
        loaded = [str(r[0]) for r in cur.fetchall()]
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relname = ANY(%s)", (names,))
    other = sorted({str(r[0]) for r in cur.fetchall()} - set(loaded))
    return loaded, other


def _clear(cur: Any, store: PostgresStore, names: list[str], *, replace: bool) -> list[str]:
    """Drop a previous load's tables (``replace``), else refuse: a load never overwrites without being told."""
    loaded, other = _existing(cur, names)
    if (loaded or other) and not replace:
        what = (f"a loaded county ({len(loaded)} layers and tables: {', '.join(loaded[:6])}"
                f"{' ...' if len(loaded) > 6 else ''})" if loaded else f"tables named {', '.join(other)}")
        raise ConflictError(f"{store.url} already holds {what}; pass --replace to replace them")
    for name in [*loaded, *other]:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    cur.execute(_CATALOGUE_DDL)
    cur.execute(f"DELETE FROM {CATALOGUE}")
    return [*loaded, *other]


def _copy_store(cur: Any, store: PostgresStore, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
                *, copy: bool) -> dict[str, int]:
    """The GeoPackage's store rows into the database's (empty) store, ids kept: rows copied per table."""
    full = {t: v for t, v in rows.items() if v[1]}
    if not full or not copy:
        return {}
    cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = ANY(%s)", (list(full),))
    target: dict[str, set[str]] = {}
    for t, c in cur.fetchall():
        target.setdefault(str(t), set()).add(str(c))
    busy = []
    for t in full:
        if t in target:
            cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t)))
            busy += [t] if cur.fetchone()[0] else []
    if busy:
        raise ConflictError(f"{store.url} already has a store with rows in {', '.join(busy)}; the GeoPackage's "
                            "store is not merged into it (pass --no-store to load the layers only)")
    done: dict[str, int] = {}
    for t, (cols, data) in full.items():
        if t not in target:
            log.warning("store table %s is not a table of this gridgeo's store; not copied", t)
            continue
        keep = [i for i, c in enumerate(cols) if c in target[t]]
        names = sql.SQL(", ").join(sql.Identifier(cols[i]) for i in keep)
        marks = sql.SQL(", ").join(sql.Placeholder() * len(keep))
        cur.executemany(sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})").format(
            sql.Identifier(t), names, marks), [tuple(r[i] for i in keep) for r in data])
        if "id" in target[t]:
            cur.execute(sql.SQL("SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT MAX(id) FROM {}))")
                        .format(sql.Identifier(t)), (t,))
        done[t] = len(data)
    return done


@dataclass(frozen=True)
class LoadSummary:
    """What a load wrote (the one line ``gridgeo load`` prints)."""

    layers: dict[str, int]
    tables: dict[str, int]
    store_rows: dict[str, int]
    replaced: list[str]
    seconds: float
    target: str

    def line(self, source: str) -> str:
        store = (f"; store rows copied: {', '.join(f'{t} {n}' for t, n in self.store_rows.items())}"
                 if self.store_rows else "")
        replaced = f" (replacing {len(self.replaced)} tables)" if self.replaced else ""
        return (f"loaded {len(self.layers)} layers ({sum(self.layers.values()):,} features) and {len(self.tables)} "
                f"tables from {source} into {self.target}{replaced} in {self.seconds:.1f} s{store}")


def load_geopackage(path: str | Path, url: str, *, replace: bool = False, store: bool = True,
                    actor: str = "cli") -> LoadSummary:
    """Write the county GeoPackage ``path`` into the PostGIS database ``url``, in one transaction.

    Parameters
    ----------
    replace
        Replace the layers of a previous load (and any table in the way); without it a database that
        already holds them is refused, unchanged.
    store
        Copy the GeoPackage's store (users, visits ...) too, into a database whose store is empty;
        False: the layers only, the database's store untouched.

    Raises
    ------
    FileFormatError, InputError
        A bad GeoPackage: checked from the layers' descriptions before the database is touched; what only
        reading a layer finds (a column named as its fid) rolls the whole load back.
    ConflictError
        Layers already there without ``replace``; a store on both sides.
    StoreError
        The database cannot be reached or written (nothing is written then).
    """
    t0 = time.perf_counter()
    p = Path(path)
    names = layer_names(p)
    store_rows = _store_rows(p)
    counts: dict[str, int] = {}
    tables: dict[str, int] = {}
    target = PostgresStore(url, create=False)
    try:
        with target.transaction() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            replaced = _clear(cur, target, names, replace=replace)
            when = now_utc()
            for pos, name in enumerate(names):  # one layer read at a time: memory is the biggest layer's
                layer = _read_layer(p, name)
                (counts if layer.geometry_column else tables)[layer.name] = layer.count
                if layer.srid is not None:
                    _srid_known(cur, layer)
                _create(cur, layer)
                cur.execute(f"INSERT INTO {CATALOGUE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            (pos, layer.name, "features" if layer.geometry_column else "table", layer.fid_column,
                             layer.geometry_column, layer.geometry_type, layer.srid, layer.crs,
                             json.dumps(layer.columns, ensure_ascii=False), layer.count, p.name, when))
                del layer
            target.create_schema(cur)
            copied = _copy_store(cur, target, store_rows, copy=store)
            target.audit(cur, actor, "county.load", "county", after={
                "source": Path(path).name, "layers": counts, "tables": tables, "store_rows": copied,
                "replaced": replaced})
            Versions(target).add_in(cur, kind="load", author=actor, changes=None, message=(
                f"gridgeo load {Path(path).name}" + (" (its layers replacing the loaded ones)" if replaced else "")))
    finally:
        target.close()
    return LoadSummary(counts, tables, copied, replaced, time.perf_counter() - t0, target.url)


# ------------------------------------------------------------------------------------------- reading back
@dataclass(frozen=True)
class Entry:
    """One line of the catalogue."""

    name: str
    kind: str
    fid_column: str
    geometry_column: str | None
    crs: str | None
    columns: list[tuple[str, str, str]]
    loaded: str
    srid: int | None = None
    geometry_type: str | None = None


def catalogue(url: str) -> list[Entry]:
    """The loaded layers and tables of ``url`` in their order.

    Raises
    ------
    InputError
        The database holds no county (``gridgeo load`` never wrote to it).
    """
    store = PostgresStore(url, create=False)
    try:
        if not store.query("SELECT to_regclass(?) IS NOT NULL", (CATALOGUE,))[0][0]:
            raise InputError(f"{store.url}: holds no county (no {CATALOGUE} table); load one with "
                             f"gridgeo load county.gpkg {store.url}")
        rows = store.query(f"SELECT name, kind, fid_column, geometry_column, crs, columns, loaded, srid, "
                           f"geometry_type FROM {CATALOGUE} ORDER BY position")
    finally:
        store.close()
    return [Entry(str(r[0]), str(r[1]), str(r[2]), r[3], r[4], [tuple(c) for c in json.loads(r[5])], str(r[6]),
                  r[7], r[8]) for r in rows]


def column(values: list[Any], dtype: str) -> pd.Series:
    """One column's values as psycopg gives them, as the GeoPackage reader gives them: of ``dtype``
    (the catalogue's), a missing value NaN, NaT or None as that dtype has it."""
    if dtype == "object":
        return pd.Series(values, dtype=object)
    if dtype.startswith("datetime64"):
        return pd.Series(pd.to_datetime(values, utc="UTC" in dtype)).astype(pandas_dtype(dtype))
    return pd.Series([np.nan if v is None else v for v in values]).astype(pandas_dtype(dtype))


def _frame(entry: Entry, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The rows of one table as the GeoPackage reader gives them: its dtypes, a RangeIndex, geometry last."""
    cols = {name: column([r[i] for r in rows], dtype) for i, (name, _sql_t, dtype) in enumerate(entry.columns)}
    frame = pd.DataFrame(cols, index=pd.RangeIndex(len(rows)))
    if entry.geometry_column is None:
        return frame
    geoms = shapely.from_wkb([None if r[-1] is None else bytes(r[-1]) for r in rows])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, index=frame.index), crs=entry.crs)


def read_layers(url: str, *, names: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """The county's layers (GeoDataFrames) and attribute tables (DataFrames) in load order, or just ``names``.

    Each as :func:`gridgeo.data.io.read_layer` gives it from the GeoPackage that was loaded: same
    columns and dtypes, its CRS, rows in fid order; ``attrs["source"]`` the URL without its password.
    """
    entries = [e for e in catalogue(url) if names is None or e.name in names]
    store = PostgresStore(url, create=False)
    out: dict[str, pd.DataFrame] = {}
    try:
        for e in entries:
            cols: list[sql.Composable] = [sql.Identifier(c) for c, _, _ in e.columns]
            if e.geometry_column is not None:
                cols.append(sql.SQL("ST_AsBinary({})").format(sql.Identifier(e.geometry_column)))
            query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(cols) if cols else sql.SQL("1"), sql.Identifier(e.name),
                sql.Identifier(e.fid_column))
            with store.transaction(write=False) as cur:
                cur.execute(query)
                frame = _frame(e, [tuple(r) for r in cur.fetchall()])
            frame.attrs.update(source=store.url, layer=e.name)
            out[e.name] = frame
    finally:
        store.close()
    return out


def has_unit(url: str, code: str, layers: Sequence[str]) -> bool | None:
    """Whether a layer among ``layers`` of the county at ``url`` has a unit ``code``; None: no county there.

    Why None apart from False: a store database serving a county file (``gridgeo serve county.gpkg
    --store postgresql://...``) holds no layers to check a scope against.
    """
    try:
        entries = [e for e in catalogue(url) if e.name in layers and any(c[0] == "code" for c in e.columns)]
    except InputError:
        return None
    store = PostgresStore(url, create=False)
    try:
        for e in entries:
            query = sql.SQL("SELECT 1 FROM {} WHERE code = %s LIMIT 1").format(sql.Identifier(e.name))
            with store.transaction(write=False) as cur:
                cur.execute(query, (code,))
                if cur.fetchone() is not None:
                    return True
    finally:
        store.close()
    return False


def loaded_at(url: str) -> str:
    """When the county at ``url`` was loaded (ISO 8601 UTC, seconds): the service's ``modified``."""
    entries = catalogue(url)
    when = max(e.loaded for e in entries) if entries else "1970-01-01T00:00:00Z"
    return when[:19] + "Z" if len(when) >= 19 else when

