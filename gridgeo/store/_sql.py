"""The store's tables, written once for both backends.

Why one text for SQLite and PostgreSQL: every query of :mod:`gridgeo.store.base`
is plain SQL both understand (``?`` placeholders, which the PostgreSQL backend
turns into ``%s``; ``RETURNING id``, which SQLite has since 3.35). Only the
types of a key column and the append-only guard of the audit table differ,
and they are filled in here per dialect.

Times are text: ISO 8601 in UTC with a ``Z`` (sortable as text on both
backends); a visit's ``day`` is its date in China Standard Time, the day a
patrol plan counts in.
"""

from __future__ import annotations

#: bumped when a table changes; a store written by a newer gridgeo is refused, never half-read
SCHEMA_VERSION = 1

#: the columns that place a record in the unit chain (filled from the households layer at write time)
CHAIN_COLUMNS = ("township", "village", "grid", "point")

#: the types that differ: SQLite's are the ones GDAL reads in a GeoPackage (its attribute tables show in QGIS)
_TYPES = {
    "sqlite": {"key": "INTEGER PRIMARY KEY AUTOINCREMENT", "big": "INTEGER", "real": "REAL"},
    "postgresql": {"key": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "big": "BIGINT",
                   "real": "DOUBLE PRECISION"},
}
#: the tables registered in a GeoPackage's ``gpkg_contents`` as attribute tables (gg_meta has no integer key)
REGISTERED = ("gg_users", "gg_visits", "gg_status", "gg_tracks", "gg_audit")

_TABLES = """
CREATE TABLE IF NOT EXISTS gg_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gg_users (
    id {key}, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, scope TEXT,
    token_hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, created_by TEXT NOT NULL, revoked TEXT);
CREATE TABLE IF NOT EXISTS gg_visits (
    id {key}, household TEXT NOT NULL, time TEXT NOT NULL, day TEXT NOT NULL, outcome TEXT NOT NULL,
    note TEXT, worker TEXT NOT NULL, recorded TEXT NOT NULL, track {big},
    township TEXT, village TEXT, grid TEXT, point TEXT, chain TEXT NOT NULL, uid TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS gg_visits_uid ON gg_visits (uid);
CREATE INDEX IF NOT EXISTS gg_visits_household ON gg_visits (household, day);
CREATE INDEX IF NOT EXISTS gg_visits_time ON gg_visits (time);
CREATE INDEX IF NOT EXISTS gg_visits_grid ON gg_visits (grid, time);
CREATE INDEX IF NOT EXISTS gg_visits_village ON gg_visits (village, time);
CREATE INDEX IF NOT EXISTS gg_visits_township ON gg_visits (township, time);
CREATE TABLE IF NOT EXISTS gg_status (
    id {key}, household TEXT NOT NULL, field TEXT NOT NULL, value TEXT, time TEXT NOT NULL,
    author TEXT NOT NULL, note TEXT, township TEXT, village TEXT, grid TEXT, point TEXT, chain TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gg_status_household ON gg_status (household, field, id);
CREATE TABLE IF NOT EXISTS gg_tracks (
    id {key}, worker TEXT NOT NULL, day TEXT NOT NULL, uploaded TEXT NOT NULL, started TEXT, ended TEXT,
    n_points INTEGER NOT NULL, length_m {real} NOT NULL, geometry TEXT NOT NULL, scope TEXT);
CREATE TABLE IF NOT EXISTS gg_audit (
    id {key}, time TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
    before TEXT, after TEXT);
CREATE INDEX IF NOT EXISTS gg_audit_time ON gg_audit (time);
"""

#: the audit trail is append-only: the database itself refuses to change or delete a row
_GUARD: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE TRIGGER IF NOT EXISTS gg_audit_no_update BEFORE UPDATE ON gg_audit "
        "BEGIN SELECT RAISE(ABORT, 'gg_audit is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS gg_audit_no_delete BEFORE DELETE ON gg_audit "
        "BEGIN SELECT RAISE(ABORT, 'gg_audit is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION gg_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'gg_audit is append-only'; END; $$",
        "DROP TRIGGER IF EXISTS gg_audit_no_change ON gg_audit",
        "CREATE TRIGGER gg_audit_no_change BEFORE UPDATE OR DELETE ON gg_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION gg_audit_append_only()",
    ),
}


def fill(dialect: str, text: str) -> str:
    """``text`` with its ``{key}``, ``{big}`` and ``{real}`` placeholders as ``dialect`` spells those types."""
    return text.format(**_TYPES[dialect])


def schema(dialect: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The statements that create the store's tables in ``dialect`` (``sqlite`` or ``postgresql``), in order.

    ``extra``: more ``CREATE`` statements (another part's tables), with the same ``{key}``, ``{big}`` and
    ``{real}`` placeholders.
    """
    types = _TYPES[dialect]
    text = _TABLES.format(**types) + ";" + ";".join(e.format(**types) for e in extra)
    return [s.strip() for s in text.split(";") if s.strip()] + list(_GUARD[dialect])
