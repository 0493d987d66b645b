"""The store on PostgreSQL (psycopg 3): many users, city scale, the same SQL as the embedded store.

Why a server: one SQLite file takes one writer at a time; a city's workers
write at once. PostgreSQL's default isolation (READ COMMITTED) is enough for
the store's writes, which only insert, except one check-then-insert: two
``add_user`` of the same name at once both pass the check, and the table's
unique name makes the second fail, which :meth:`PostgresStore.add_user`
turns into the same :class:`ConflictError` the check gives.

Each thread has its own connection (autocommit off: a transaction is the
block of :meth:`Store.transaction`, ended by commit or rollback); a
connection the server dropped is replaced at the next transaction. Every
message names the database by its URL without the password
(:func:`redact`).
"""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import errors as pg_errors

from gridgeo.errors import ConflictError, StoreError

from .base import Store, User

#: what the server's ``pg_stat_activity`` shows for our connections, unless the URL names another
APPLICATION_NAME = "gridgeo"
#: seconds to wait for an unreachable server before saying so (unless the URL sets connect_timeout)
CONNECT_TIMEOUT = 10
#: a number only gridgeo uses for the advisory lock that serialises schema creation across processes
SCHEMA_LOCK = 0x67726964


def redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for messages."""
    url = re.sub(r"^([a-z]+://[^:/@?#]*):[^@/]*@", r"\1@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def _options(url: str) -> dict[str, Any]:
    """The keyword options psycopg gets besides the URL: ours, unless the URL gives its own."""
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"{redact(url)}: not a PostgreSQL URL ({_one_line(exc)}); "
                         "expected postgresql://user@host:port/database") from None
    out: dict[str, Any] = {}
    if "application_name" not in given:
        out["application_name"] = APPLICATION_NAME
    if "connect_timeout" not in given:
        out["connect_timeout"] = CONNECT_TIMEOUT
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A connection to ``url``, or a :class:`StoreError` that says why in one line, without the password.

    Why here: the store and ``gridgeo load`` open the same way and fail the same way.
    """
    options = _options(url)
    try:
        return psycopg.connect(url, autocommit=autocommit, **options)
    except psycopg.Error as exc:
        reason = _one_line(exc)
        password = urlsplit(url).password or dict(parse_qsl(urlsplit(url).query)).get("password")
        if password:
            reason = reason.replace(password, "***")
        hint = ("check the user and password" if "authentication" in reason
                else "is the server running and the URL right?")
        raise StoreError(f"{redact(url)}: cannot connect to PostgreSQL: {reason} ({hint})") from None


class PostgresStore(Store):
    """The store in a PostgreSQL database (its ``gg_`` tables made at open if missing).

    Parameters
    ----------
    url
        ``postgresql://user:password@host:port/database`` (any libpq URL).
    ensure
        False: do not create the tables at open (``gridgeo load`` makes them in its own transaction).

    Raises
    ------
    StoreError
        When the server cannot be reached, refuses the credentials, or the tables cannot be made.
    """

    dialect = "postgresql"
    errors = (psycopg.Error,)

    #: whether a table exists, in the schema the connection writes to
    _has_table = ("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                  "AND table_name = ?")
    #: the names of a table's columns, in that schema
    _columns_of = ("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                   "AND table_name = ?")

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.dsn = url
        super().__init__(redact(url))
        if create:
            self.ensure_schema()
        else:
            self.ready()  # an unreachable server fails here, at start-up

    def _connect(self) -> Any:
        return connect(self.dsn)

    def _conn(self) -> Any:
        """This thread's connection; a new one if the server dropped the old one (a restart, a network cut)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.broken):
            with self._all_lock:
                self._all[:] = [c for c in self._all if c is not conn]
            self._local.conn = None
        return super()._conn()

    def _sql(self, text: str) -> str:
        """psycopg's ``%s`` for each ``?``, and ``%`` doubled first (our SQL has ``?`` only as placeholders)."""
        return text.replace("%", "%%").replace("?", "%s")

    def ensure_schema(self) -> None:
        """Create the missing tables, one process at a time (two services starting at once would race on
        ``CREATE TABLE IF NOT EXISTS``, which PostgreSQL does not make atomic)."""
        with self.transaction() as cur:
            self.execute(cur, "SELECT pg_advisory_lock(?)", (SCHEMA_LOCK,))
        try:
            super().ensure_schema()
        finally:  # a session lock: a dropped connection releases it anyway, so a failure here changes nothing
            with contextlib.suppress(StoreError), self.transaction() as cur:
                self.execute(cur, "SELECT pg_advisory_unlock(?)", (SCHEMA_LOCK,))

    def add_user(self, name: str, *, role: str, scope: str | None = None, actor: str = "cli") -> tuple[User, str]:
        """:meth:`Store.add_user`, with a name taken meanwhile by another session a :class:`ConflictError` too."""
        try:
            return super().add_user(name, role=role, scope=scope, actor=actor)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, pg_errors.UniqueViolation) and cause.diag.constraint_name == "gg_users_name_key":
                raise ConflictError(f"{self.url}: user {name.strip()!r} already exists (revoke it first, or pick "
                                    "another name)") from None
            raise
