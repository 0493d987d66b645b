"""Carry the store from a county file into its rebuild: users, visits, statuses, tracks, the audit trail.

Why: the embedded store lives inside the county GeoPackage (:mod:`.sqlite`), and
``gridgeo build -o county.gpkg`` writes a new file and moves it over the old one.
Without this step a rebuild over the served file would silently drop every
account, every logged visit and the audit trail that must never lose a row.

The tables are copied with the old file's own definitions (tables, indexes,
then triggers, so the audit trail's append-only guard is in place before anyone
can write), so whatever schema version wrote them arrives unchanged. Households
of a built county are numbered by row (:func:`gridgeo.data.io.feature_ids`), and
a rebuild may number them otherwise; every stored ``household`` reference is
renumbered through the register's own key (``source``, ``source_id``), and the
references whose household is gone are kept as they were and counted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from gridgeo.errors import StoreError

log = logging.getLogger(__name__)

#: the prefix of every store table, index and trigger
PREFIX = "gg_"
#: the layer whose row numbers the store's ``household`` columns hold, and its register key
HOUSEHOLDS = "households"
_KEY = ("source", "source_id")


@dataclass
class Carried:
    """What :func:`carry_store` copied.

    Attributes
    ----------
    rows
        Rows per table.
    renumbered
        ``household`` references changed to the rebuild's number of the same household.
    orphaned
        References to households the rebuild no longer has (kept as they were).
    """

    rows: dict[str, int] = field(default_factory=dict)
    renumbered: int = 0
    orphaned: int = 0

    def as_dict(self) -> dict[str, object]:
        """The audit row's ``after``."""
        return {"rows": self.rows, "renumbered": self.renumbered, "orphaned": self.orphaned}

    def summary(self) -> str:
        """One line for the log and the audit trail."""
        tables = ", ".join(f"{t} {n}" for t, n in self.rows.items())
        return (f"store carried over ({tables}); {self.renumbered} household reference(s) renumbered, "
                f"{self.orphaned} to households no longer in the build")


def has_store(path: str | Path) -> bool:
    """Whether the SQLite file at ``path`` holds store tables (False for a missing or non-SQLite file)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gg_meta'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None


def carry_store(old: str | Path, new: str | Path, *, actor: str = "gridgeo build") -> Carried:
    """Copy the store tables of ``old`` into ``new`` (a freshly written county, not yet in place).

    Parameters
    ----------
    old
        The county file being replaced; read only.
    new
        The rebuild's file: its own layers are never touched, only ``gg_`` tables added.
    actor
        Named in the audit row that records the carry-over.

    Raises
    ------
    StoreError
        When ``new`` already has store tables, or either file cannot be read or written (``new`` is then left
        for the caller to discard: the copy is one transaction).
    """
    old_p, new_p = Path(old), Path(new)
    if Path(str(old_p) + "-wal").exists():
        log.warning("%s is open in another process (a running gridgeo serve?): writes it makes after this "
                    "copy go to the replaced file; stop it before rebuilding over its file", old_p)
    try:
        conn = sqlite3.connect(new_p, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{new_p}: cannot open the rebuilt county ({exc})") from None
    try:
        return _copy(conn, old_p, new_p, actor)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot carry the store of {old_p} into the rebuild: {exc}") from None
    finally:
        conn.close()


def _copy(conn: sqlite3.Connection, old: Path, new: Path, actor: str) -> Carried:
    conn.execute("ATTACH DATABASE ? AS old", (f"{old.resolve().as_uri()}?mode=ro",))
    if conn.execute("SELECT 1 FROM main.sqlite_master WHERE name LIKE 'gg\\_%' ESCAPE '\\'").fetchone():
        raise StoreError(f"{new}: already has store tables; nothing carried from {old}")
    defs = conn.execute("SELECT type, name, sql FROM old.sqlite_master WHERE name LIKE 'gg\\_%' ESCAPE '\\' "
                        "AND sql IS NOT NULL ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 "
                        "ELSE 2 END, rowid").fetchall()
    out = Carried()
    renumber = _renumbering(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for kind, name, sql in defs:
            if kind == "trigger":
                continue
            conn.execute(sql)
            if kind == "table":
                conn.execute(f'INSERT INTO main."{name}" SELECT * FROM old."{name}"')
                out.rows[name] = conn.execute(f'SELECT count(*) FROM main."{name}"').fetchone()[0]
                if renumber is not None:
                    _renumber(conn, name, renumber, out)
        _register(conn)
        for kind, _name, sql in defs:
            if kind == "trigger":
                conn.execute(sql)
        conn.execute("INSERT INTO gg_audit (time, actor, action, target, before, after) VALUES "
                     "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?, 'store.carry', ?, NULL, ?)",
                     (actor, old.name, json.dumps(out.as_dict(), ensure_ascii=False)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("DETACH DATABASE old")
    conn.execute("PRAGMA journal_mode=WAL")  # as the store sets it at creation (kept in the file)
    log.info("%s: %s", new, out.summary())
    return out


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]


def _renumbering(conn: sqlite3.Connection) -> dict[str, str] | None:
    """Old household number -> new number of the same register row, or None when they cannot be matched.

    Why by (``source``, ``source_id``): that pair is the register's own id of a household; the row number is
    only where the build happened to write it.
    """
    for schema in ("old", "main"):
        if not set(_KEY) <= set(_columns(conn, schema, HOUSEHOLDS)):
            log.warning("households have no register key (%s) in both files: household references kept as "
                        "they are", ", ".join(_KEY))
            return None
    q = f'SELECT fid, source, source_id FROM {{}}."{HOUSEHOLDS}"'
    old = {(s, i): f for f, s, i in conn.execute(q.format("old"))}
    new = {(s, i): f for f, s, i in conn.execute(q.format("main"))}
    if len(old) != conn.execute(f'SELECT count(*) FROM old."{HOUSEHOLDS}"').fetchone()[0]:
        log.warning("the register key of %s is not unique: household references kept as they are", HOUSEHOLDS)
        return None
    return {str(f): str(new[k]) for k, f in old.items() if k in new}


def _renumber(conn: sqlite3.Connection, table: str, renumber: dict[str, str], out: Carried) -> None:
    """Point ``table``'s ``household`` column at the rebuild's numbers (tables without one: nothing)."""
    if "household" not in _columns(conn, "main", table):
        return
    rows = conn.execute(f'SELECT rowid, household FROM main."{table}"').fetchall()
    changes = [(renumber[h], rid) for rid, h in rows if h in renumber and renumber[h] != h]
    out.orphaned += sum(1 for _rid, h in rows if h not in renumber)
    conn.executemany(f'UPDATE main."{table}" SET household = ? WHERE rowid = ?', changes)
    out.renumbered += len(changes)


def _register(conn: sqlite3.Connection) -> None:
    """List the carried tables in ``gpkg_contents`` as the old file did (GDAL then shows them as tables)."""
    if conn.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'gpkg_contents'").fetchone() is None:
        return
    if conn.execute("SELECT 1 FROM old.sqlite_master WHERE name = 'gpkg_contents'").fetchone() is None:
        return
    conn.execute("INSERT OR IGNORE INTO main.gpkg_contents (table_name, data_type, identifier, description, "
                 "last_change) SELECT table_name, data_type, identifier, description, last_change FROM "
                 "old.gpkg_contents WHERE table_name LIKE 'gg\\_%' ESCAPE '\\'")
