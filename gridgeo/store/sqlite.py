"""The embedded store: tables inside the county GeoPackage itself (SQLite, WAL, real transactions).

Why the GeoPackage: a county has one file to copy, back up and open in QGIS,
and GDAL lists only the layers registered in ``gpkg_contents``, so the
``gg_`` tables ride along without disturbing any reader. WAL lets the
service's readers go on while one writer commits; ``synchronous=FULL``
makes a commit durable before the write is acknowledged; ``BEGIN IMMEDIATE``
takes the write lock at the start of a transaction, so two writers queue
(up to ``busy_timeout``) instead of one failing half-way.
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path
from typing import Any

from gridgeo.errors import StoreError

from ._sql import REGISTERED
from .base import EXTRA_REGISTERED, Store

#: how long a writer waits for another's lock before the write fails (a 503, never a lost write)
BUSY_TIMEOUT_MS = 30_000


#: bytes of a GeoPackage geometry's envelope by its indicator (GeoPackage 1.3, 2.1.3)
_ENVELOPE = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _header(blob: bytes | None) -> tuple[bool, tuple[float, float, float, float] | None, int]:
    """(empty, (minx, maxx, miny, maxy) or None, where the WKB starts) of a GeoPackage geometry blob."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return True, None, 0
    flags = blob[3]
    size = _ENVELOPE.get((flags >> 1) & 7, 0)
    empty = bool(flags & 16)
    if size and len(blob) >= 8 + size:
        return empty, struct.unpack("<dddd" if flags & 1 else ">dddd", blob[8:40]), 8 + size
    return empty, None, 8 + size


def _bound(i: int) -> Any:
    """``ST_MinX`` (0), ``ST_MaxX`` (1), ``ST_MinY`` (2), ``ST_MaxY`` (3) of a GeoPackage geometry."""
    def bound(blob: bytes | None) -> float | None:
        empty, env, at = _header(blob)
        if empty or blob is None:
            return None
        if env is None:
            import shapely

            x0, y0, x1, y1 = shapely.from_wkb(bytes(blob[at:])).bounds
            env = (x0, x1, y0, y1)
        return float(env[i])
    return bound


def gpkg_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions a GeoPackage's R*tree triggers call (``ST_IsEmpty``, ``ST_MinX`` ...), as GDAL gives them.

    Why: GDAL's triggers keep ``rtree_<table>_<geom>`` in step with the table on every update, and their
    conditions call these functions, which Python's SQLite lacks; without them an edit of a unit's name
    through the store fails, and with them the tree follows a geometry change as it does under GDAL.
    """
    conn.create_function("ST_IsEmpty", 1, lambda b: int(_header(b)[0]), deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _bound(i), deterministic=True)


class SQLiteStore(Store):
    """The store in a SQLite file (a county GeoPackage, or any SQLite database).

    Raises
    ------
    StoreError
        When the file is missing, not SQLite, or cannot be written.
    """

    dialect = "sqlite"
    errors = (sqlite3.Error,)

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store (a county GeoPackage is made by gridgeo build)")
        super().__init__(str(self.path))
        try:
            if not create:
                self.ready()  # a file that is not SQLite fails here; an empty store stays untouched
                return
            self._wal()
            self.ensure_schema()
        except StoreError as exc:
            raise StoreError(f"{self.path}: not a writable SQLite/GeoPackage store ({exc.__cause__ or exc})") from None

    def _wal(self) -> None:
        """Put the file in WAL mode (kept in the file): readers go on while a writer commits."""
        conn = self._conn()
        conn.conn.execute("PRAGMA journal_mode=WAL")

    def ensure_schema(self) -> None:
        """Create the missing tables and list them in ``gpkg_contents`` (tables a newer part adds to an older
        store, such as the reports', included)."""
        super().ensure_schema()
        self._register()

    def _register(self) -> None:
        """List the store's tables in ``gpkg_contents`` as attribute tables, in a GeoPackage.

        Why: GDAL lists every table of a GeoPackage that registers no attribute table, so the
        ``gg_`` tables would appear as layers of unknown kind; registered, they are proper
        attribute tables (visits and the audit trail open in QGIS), and nothing else changes.
        """
        with self.transaction() as cur:
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gpkg_contents'")
            if cur.fetchone() is None:
                return
            for name in REGISTERED + tuple(EXTRA_REGISTERED):
                cur.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                            "last_change) VALUES (?, 'attributes', ?, 'gridgeo store', "
                            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", (name, name))

    def _connect(self) -> Any:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            gpkg_functions(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store ({exc})") from None
        return _Autocommit(conn)

    def _begin(self, cur: Any, *, write: bool) -> None:
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")


class _Autocommit:
    """A sqlite3 connection in autocommit mode whose commit/rollback end the explicit ``BEGIN``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def cursor(self) -> sqlite3.Cursor:
        return self.conn.cursor()

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()
