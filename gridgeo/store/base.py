"""The writable store: one interface, written once in SQL both backends run.

A :class:`Store` keeps what changes every day beside the built county: users
and their hashed tokens, visits, household status changes with their history,
GPX tracks, and the append-only audit trail. Each write and its audit row
are one transaction, so there is never a write without its trace, nor a
trace of a write that did not happen. A write is acknowledged only after
its commit returns (SQLite: WAL with ``synchronous=FULL``; PostgreSQL: its
default ``synchronous_commit``), so an acknowledged write survives a killed
server.

Backends (:mod:`.sqlite`, :mod:`.postgres`) give a DB-API connection per
thread and their dialect; everything else is here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gridgeo.errors import ConflictError, NotFoundError, StoreError, UsageError

from ._sql import CHAIN_COLUMNS, SCHEMA_VERSION, fill, schema
from .access import check_role, check_user_name, new_token, token_hash

log = logging.getLogger(__name__)

#: the level columns an edit looks rows up by: indexed where the store's database holds the layers
EDIT_INDEXES = (("grids", "code"), ("points", "code"), ("households", "point"))
#: extra tables other parts of the store add (``{key}`` is the dialect's key column type)
EXTRA_TABLES: list[str] = []
#: their names, for a GeoPackage's ``gpkg_contents`` (see :mod:`.sqlite`)
EXTRA_REGISTERED: list[str] = []
#: columns added to a table after its first release, as ``(table, column, type)`` (``{big}``, ``{real}`` as in
#: the tables). Why a list and not the ``CREATE TABLE``: a store made before the column existed has the table
#: already, and ``CREATE TABLE IF NOT EXISTS`` leaves it as it is; :meth:`Store.create_schema` adds each missing
#: one with ``ALTER TABLE ... ADD COLUMN``, to old and new stores alike, so the column has one definition.
#: Only nullable columns without a default: adding one is then a change of the catalogue on both backends,
#: never a rewrite of the table's rows.
EXTRA_COLUMNS: list[tuple[str, str, str]] = []
#: the actions of the audit rows that record a read of personal fields (kind ``read``; every other row is a
#: ``write``). Why the action's prefix and not a column of its own: ``gg_audit`` is append-only in stores already
#: in use, and a service opens those without changing their schema; the prefix needs no new column, and carried or
#: old rows keep their kind.
READ_PREFIX = "read."
#: the kinds of audit row ``GET /audit?kind=`` filters by
AUDIT_KINDS = ("read", "write")
#: the most ids one read row lists (its ``count`` says how many were served)
READ_IDS = 100


@dataclass(frozen=True)
class User:
    """One account. ``scope`` None: everywhere."""

    id: int
    name: str
    role: str
    scope: str | None
    created: str
    created_by: str
    revoked: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "scope": self.scope, "created": self.created,
                "created_by": self.created_by, "revoked": self.revoked}


@dataclass(frozen=True)
class Placed:
    """A record's place: the household (its item id) and the unit codes of its chain, finest first."""

    household: str
    units: Mapping[str, str | None]
    chain: tuple[str, ...]

    def columns(self) -> list[str | None]:
        return [self.units.get(c) for c in CHAIN_COLUMNS]

    def chain_text(self) -> str:
        """The chain as stored: codes between spaces, so ``LIKE '% CODE %'`` finds any level."""
        return " " + " ".join(self.chain) + " "


@dataclass(frozen=True)
class Visit:
    """A checked visit, ready to be stored (see :func:`gridgeo.store.records.parse_visits`)."""

    place: Placed
    time: str
    day: str
    outcome: str
    note: str | None
    #: the client's own id of this visit: a retry after a lost answer is the same visit, not a second one
    uid: str | None = None


def now_utc() -> str:
    """The current time as the store writes it (ISO 8601 UTC, microseconds, ``Z``)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _user(row: Sequence[Any]) -> User:
    return User(int(row[0]), str(row[1]), str(row[2]), row[3], str(row[4]), str(row[5]), row[6])


_USER_COLS = "id, name, role, scope, created, created_by, revoked"


class Store:
    """The store's operations; a backend subclass supplies :meth:`_connect` and :attr:`dialect`.

    Parameters
    ----------
    url
        What it was opened from, for messages (a path, or a URL without its password).
    """

    dialect = "sqlite"
    #: the backend's own error classes, turned into :class:`StoreError` (a 503) at the transaction's edge
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()

    # -- connections and transactions ------------------------------------------------------------------
    def _connect(self) -> Any:  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _sql(self, text: str) -> str:
        """``text`` with the backend's placeholder (``?`` is SQLite's)."""
        return text

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        """A cursor inside one transaction: committed when the block ends, rolled back on any error.

        ``write=False``: a read, which takes no write lock (SQLite readers never wait for a writer in WAL).
        """
        conn = self._conn()
        cur = conn.cursor()
        try:
            self._begin(cur, write=write)
            yield cur
            conn.commit()
        except self.errors as exc:
            with contextlib.suppress(*self.errors):
                conn.rollback()
            raise StoreError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(*self.errors):
                conn.rollback()
            raise
        finally:
            cur.close()

    def _begin(self, cur: Any, *, write: bool) -> None:
        """Start a transaction (SQLite takes its write lock now for a write, not at its first statement)."""

    def execute(self, cur: Any, text: str, params: Sequence[Any] = ()) -> Any:
        return cur.execute(self._sql(text), tuple(params))

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read (its own short transaction, so it sees every committed write)."""
        with self.transaction(write=False) as cur:
            self.execute(cur, text, params)
            return [tuple(r) for r in cur.fetchall()]

    def close(self) -> None:
        """Close every connection this store opened (each thread's)."""
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(Exception):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- schema ----------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the store's tables exist (a county nobody has added a user to has none; serving it
        read-only must not change its file). Once true, kept."""
        if getattr(self, "_ready", False):
            return True
        self._ready = bool(self.query(self._has_table, ("gg_meta",)))
        return self._ready

    #: a query with one parameter, the table name, returning a row when the table exists
    _has_table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    #: a query with one parameter, the table name, returning the name of each of its columns
    _columns_of = "SELECT name FROM pragma_table_info(?)"

    def missing_columns(self, cur: Any | None = None) -> list[tuple[str, str, str]]:
        """The :data:`EXTRA_COLUMNS` of existing tables that this store's tables lack (in the caller's
        transaction when ``cur`` is given)."""
        have: dict[str, set[str]] = {}
        out = []
        for table, column, kind in EXTRA_COLUMNS:
            if table not in have:
                if cur is None:
                    rows = self.query(self._columns_of, (table,))
                else:
                    self.execute(cur, self._columns_of, (table,))
                    rows = cur.fetchall()
                have[table] = {str(r[0]) for r in rows}
            if have[table] and column not in have[table]:  # a table not made yet gets it when it is made
                out.append((table, column, kind))
        return out

    def schema_current(self) -> bool:
        """Whether every table and column of this gridgeo's schema exists (checked once per store object,
        then kept: a request must not pay for the catalogue queries, and columns are never dropped)."""
        if getattr(self, "_current", False):
            return True
        self._current = all(self.query(self._has_table, (t,)) for t in EXTRA_REGISTERED) and not self.missing_columns()
        return self._current

    def ensure_schema(self) -> None:
        """Create the tables that are missing; refuse a store written by a newer schema."""
        with self.transaction() as cur:
            self.create_schema(cur)

    def create_schema(self, cur: Any) -> None:
        """:meth:`ensure_schema` in the caller's transaction (``gridgeo load`` makes the tables in its own)."""
        for stmt in schema(self.dialect, tuple(EXTRA_TABLES)):
            self.execute(cur, stmt)
        for table, column, kind in self.missing_columns(cur):
            log.info("%s: adding column %s.%s (a store made by an older gridgeo)", self.url, table, column)
            self.execute(cur, f"ALTER TABLE {table} ADD COLUMN {column} {fill(self.dialect, kind)}")
        self.index_layers(cur)
        self.execute(cur, "SELECT value FROM gg_meta WHERE key = 'schema'")
        row = cur.fetchone()
        if row is None:
            self.execute(cur, "INSERT INTO gg_meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"{self.url}: store schema {row[0]} is newer than this gridgeo's "
                             f"({SCHEMA_VERSION}); upgrade gridgeo")

    def index_layers(self, cur: Any) -> None:
        """Index the level columns an edit looks rows up by (:data:`EDIT_INDEXES`) where this database holds
        the layers: when the store is made (``gridgeo users add``, ``gridgeo load``), not in the first edit's
        request (5.4 s on a province's 5M households). Not named ``gg_``: a rebuild carries the store's ``gg_``
        objects into a file whose layers may differ (:func:`gridgeo.store.edits.code_index` makes them again
        then, at the first edit)."""
        for layer, column in EDIT_INDEXES:
            self.execute(cur, self._columns_of, (layer,))
            if column in {str(r[0]) for r in cur.fetchall()}:
                self.execute(cur, f'CREATE INDEX IF NOT EXISTS "gridgeo_{layer}_{column}" ON "{layer}" ("{column}")')

    # -- audit -----------------------------------------------------------------------------------------
    def audit(self, cur: Any, actor: str, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        """Append one row to the audit trail, in the caller's transaction."""
        self.execute(cur, "INSERT INTO gg_audit (time, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                     (now_utc(), actor, action, target, _json(before), _json(after)))

    def audit_read(self, actor: str, what: str, target: str, ids: Sequence[Any]) -> None:
        """Append the row of one read of personal fields: action ``read.WHAT``, the first :data:`READ_IDS` ids
        served and how many there were (its own transaction: a read writes nothing else).

        Why a row per read and not only per write: who looked at whose name, phone or special-care category
        is what an audit of personal data asks first; a page of households is one row, not one per household.
        """
        ids = list(ids)
        with self.transaction() as cur:
            self.audit(cur, actor, READ_PREFIX + what, target, after={"ids": ids[:READ_IDS], "count": len(ids)})

    def audit_rows(self, *, after: int = 0, limit: int = 100, actor: str | None = None,
                   action: str | None = None, since: str | None = None,
                   kind: str | None = None) -> list[dict[str, Any]]:
        """Audit rows in order, from id ``after`` on (keyset paging), filtered by actor, action prefix, time and
        kind (``read``: the rows of :meth:`audit_read`; ``write``: every other; None: both)."""
        if kind not in (None, *AUDIT_KINDS):
            raise UsageError(f"kind must be one of {', '.join(AUDIT_KINDS)}, got {kind!r}")
        where: list[str] = ["id > ?"]
        params: list[Any] = [after]
        if kind is not None:
            # the prefix compared as text, not by LIKE: exact on both backends (SQLite's LIKE ignores case)
            where.append(f"substr(action, 1, {len(READ_PREFIX)}) {'=' if kind == 'read' else '<>'} ?")
            params.append(READ_PREFIX)
        if actor is not None:
            where.append("actor = ?")
            params.append(actor)
        if action is not None:
            where.append("action LIKE ?")
            params.append(action.replace("%", "") + "%")
        if since is not None:
            where.append("time >= ?")
            params.append(since)
        rows = self.query(f"SELECT id, time, actor, action, target, before, after FROM gg_audit "
                          f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", [*params, limit])
        return [{"id": int(r[0]), "time": r[1], "actor": r[2], "action": r[3], "target": r[4],
                 "kind": "read" if str(r[3]).startswith(READ_PREFIX) else "write",
                 "before": _unjson(r[5]), "after": _unjson(r[6])} for r in rows]

    # -- users -----------------------------------------------------------------------------------------
    def add_user(self, name: str, *, role: str, scope: str | None = None, actor: str = "cli") -> tuple[User, str]:
        """Create a user and its token; the token is returned once and only its hash is kept."""
        name = check_user_name(name)
        check_role(role)
        token = new_token()
        created = now_utc()
        with self.transaction() as cur:
            self.execute(cur, "SELECT id FROM gg_users WHERE name = ?", (name,))
            if cur.fetchone() is not None:
                raise ConflictError(f"{self.url}: user {name!r} already exists (revoke it first, or pick another name)")
            self.execute(cur, "INSERT INTO gg_users (name, role, scope, token_hash, created, created_by) "
                         "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                         (name, role, scope, token_hash(token), created, actor))
            uid = int(cur.fetchone()[0])
            user = User(uid, name, role, scope, created, actor, None)
            self.audit(cur, actor, "user.add", f"users/{name}", after=user.as_dict())
        return user, token

    def users(self) -> list[User]:
        return [_user(r) for r in self.query(f"SELECT {_USER_COLS} FROM gg_users ORDER BY id")]

    def has_users(self) -> bool:
        """Whether access control is on: any user, revoked or not (revoking the last one must not open the store)."""
        return self.ready() and bool(self.query("SELECT COUNT(*) FROM gg_users")[0][0])

    def revoke_user(self, name: str, *, actor: str = "cli") -> User:
        """Revoke a user's token (the row stays, for the audit trail's sake)."""
        with self.transaction() as cur:
            before = self._user_in(cur, name)
            if before.revoked is not None:
                return before
            when = now_utc()
            self.execute(cur, "UPDATE gg_users SET revoked = ? WHERE id = ?", (when, before.id))
            after = User(before.id, before.name, before.role, before.scope, before.created, before.created_by, when)
            self.audit(cur, actor, "user.revoke", f"users/{name}", before=before.as_dict(), after=after.as_dict())
        return after

    def rotate_token(self, name: str, *, actor: str = "cli") -> tuple[User, str]:
        """A new token for a live user, the old one dead at once (a lost phone); returned once, kept hashed."""
        token = new_token()
        with self.transaction() as cur:
            user = self._user_in(cur, name)
            if user.revoked is not None:
                raise ConflictError(f"{self.url}: user {name!r} was revoked on {user.revoked}; add a new user instead")
            self.execute(cur, "UPDATE gg_users SET token_hash = ? WHERE id = ?", (token_hash(token), user.id))
            self.audit(cur, actor, "user.token", f"users/{name}", before=user.as_dict(), after=user.as_dict())
        return user, token

    def _user_in(self, cur: Any, name: str) -> User:
        """The user ``name`` read inside a write transaction (so a change is made to what was read)."""
        self.execute(cur, f"SELECT {_USER_COLS} FROM gg_users WHERE name = ?", (name,))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError(f"{self.url}: no user {name!r}")
        return _user(row)

    def user(self, name: str) -> User:
        """The user named ``name`` (revoked or not)."""
        rows = self.query(f"SELECT {_USER_COLS} FROM gg_users WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"no user {name!r}")
        return _user(rows[0])

    def authenticate(self, token: str) -> User | None:
        """The live user whose token this is, else None."""
        if not self.ready():
            return None
        rows = self.query(f"SELECT {_USER_COLS} FROM gg_users WHERE token_hash = ? AND revoked IS NULL",
                          (token_hash(token),))
        return _user(rows[0]) if rows else None

    # -- visits ----------------------------------------------------------------------------------------
    def add_visits(self, visits: Sequence[Visit], *, actor: str) -> list[int]:
        """Store visits, all or none, each with its audit row; their ids in order.

        A visit whose ``uid`` is stored already is that visit (a phone's retry): its id is returned and
        nothing is written again.
        """
        ids = []
        recorded = now_utc()
        with self.transaction() as cur:
            for v in visits:
                if v.uid is not None:
                    self.execute(cur, "SELECT id FROM gg_visits WHERE uid = ?", (v.uid,))
                    row = cur.fetchone()
                    if row is not None:
                        ids.append(int(row[0]))
                        continue
                self.execute(cur, "INSERT INTO gg_visits (household, time, day, outcome, note, worker, recorded, "
                             "township, village, grid, point, chain, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?) RETURNING id", (v.place.household, v.time, v.day, v.outcome, v.note, actor,
                                                    recorded, *v.place.columns(), v.place.chain_text(), v.uid))
                vid = int(cur.fetchone()[0])
                ids.append(vid)
                self.audit(cur, actor, "visit.add", f"visits/{vid}",
                           after={"household": v.place.household, "time": v.time, "outcome": v.outcome,
                                  "note": v.note})
        return ids

    def visits(self, *, unit: tuple[str, str] | None = None, start: str | None = None, end: str | None = None,
               after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Visits in id order from ``after``; ``unit`` = (level column or ``chain``, code); ``start``/``end``
        bound the visit time (UTC text, end exclusive)."""
        where: list[str] = ["id > ?"]
        params: list[Any] = [after]
        where, params = _unit_filter(where, params, unit)
        if start is not None:
            where.append("time >= ?")
            params.append(start)
        if end is not None:
            where.append("time < ?")
            params.append(end)
        rows = self.query("SELECT id, household, time, day, outcome, note, worker, recorded, township, village, grid, "
                          f"point FROM gg_visits WHERE {' AND '.join(where)} ORDER BY id LIMIT ?", [*params, limit])
        keys = ("id", "household", "time", "day", "outcome", "note", "worker", "recorded", *CHAIN_COLUMNS)
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def last_visits(self) -> dict[str, dt.date]:
        """Each household's last day with a visit that found someone (``visited``): what a plan counts from.

        Why not ``absent`` or ``refused``: the household is still due; the next plan should bring the
        worker back, not wait a whole period.
        """
        if not self.ready():
            return {}
        rows = self.query("SELECT household, MAX(day) FROM gg_visits WHERE outcome = 'visited' GROUP BY household")
        return {str(h): dt.date.fromisoformat(str(d)) for h, d in rows}

    def records_version(self) -> tuple[int, int]:
        """The newest visit and status ids: a plan made before either changed is stale."""
        if not self.ready():
            return (0, 0)
        row = self.query("SELECT (SELECT COALESCE(MAX(id), 0) FROM gg_visits), "
                         "(SELECT COALESCE(MAX(id), 0) FROM gg_status)")[0]
        return int(row[0]), int(row[1])

    # -- household status --------------------------------------------------------------------------------
    def set_status(self, place: Placed, changes: Mapping[str, Any], *, actor: str, note: str | None = None,
                   time: str | None = None) -> dict[str, Any]:
        """Record new values of a household's status fields (priority, special); its whole status after."""
        when = time or now_utc()
        with self.transaction() as cur:
            before = self._status(cur, place.household)
            for field, value in changes.items():
                self.execute(cur, "INSERT INTO gg_status (household, field, value, time, author, note, township, "
                             "village, grid, point, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (place.household, field, _json(value), when, actor, note, *place.columns(),
                              place.chain_text()))
            after = {**before, **changes}
            self.audit(cur, actor, "household.status", f"households/{place.household}", before=before, after=after)
        return after

    def _status(self, cur: Any, household: str) -> dict[str, Any]:
        self.execute(cur, "SELECT field, value FROM gg_status WHERE household = ? ORDER BY id", (household,))
        return {str(f): _unjson(v) for f, v in cur.fetchall()}

    def statuses(self) -> dict[str, dict[str, Any]]:
        """Every household's current status (the last value of each field)."""
        out: dict[str, dict[str, Any]] = {}
        if not self.ready():
            return out
        for h, f, v in self.query("SELECT household, field, value FROM gg_status ORDER BY id"):
            out.setdefault(str(h), {})[str(f)] = _unjson(v)
        return out

    def status_history(self, household: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, field, value, time, author, note FROM gg_status WHERE household = ? ORDER BY id",
                          (household,))
        return [{"id": int(r[0]), "field": r[1], "value": _unjson(r[2]), "time": r[3], "author": r[4], "note": r[5]}
                for r in rows]

    # -- tracks ----------------------------------------------------------------------------------------
    def add_track(self, track: Mapping[str, Any], *, actor: str, scope: str | None) -> int:
        """Store one day's walk (a GPX upload, already parsed: see :func:`gridgeo.store.records.parse_gpx`)."""
        with self.transaction() as cur:
            self.execute(cur, "INSERT INTO gg_tracks (worker, day, uploaded, started, ended, n_points, length_m, "
                         "geometry, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                         (actor, track["day"], now_utc(), track["started"], track["ended"], track["n_points"],
                          track["length_m"], track["geometry"], scope))
            tid = int(cur.fetchone()[0])
            self.audit(cur, actor, "track.add", f"tracks/{tid}",
                       after={k: track[k] for k in ("day", "started", "ended", "n_points", "length_m")})
        return tid

    def track(self, tid: int) -> dict[str, Any]:
        rows = self.query("SELECT id, worker, day, uploaded, started, ended, n_points, length_m, geometry, scope "
                          "FROM gg_tracks WHERE id = ?", (tid,))
        if not rows:
            raise NotFoundError(f"no track {tid}")
        keys = ("id", "worker", "day", "uploaded", "started", "ended", "n_points", "length_m", "geometry", "scope")
        return dict(zip(keys, rows[0], strict=True))


def _unit_filter(where: list[str], params: list[Any],
                 unit: tuple[str, str] | None) -> tuple[list[str], list[Any]]:
    if unit is None:
        return where, params
    column, code = unit
    if column in CHAIN_COLUMNS:
        where.append(f"{column} = ?")
        params.append(code)
    else:
        where.append("chain LIKE ? ESCAPE '!'")
        escaped = code.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params.append(f"% {escaped} %")
    return where, params


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _unjson(text: Any) -> Any:
    return None if text is None else json.loads(text)
