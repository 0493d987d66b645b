"""Locks (锁定): grids GIS staff have agreed with a village and that no edit, redraw or restore may change.

Why in the store, with who and why: a grid's outline is often negotiated (a villager group's fields,
a gated compound's wall), and the engineer who redraws the neighbour next month must be stopped, and
told by whom and why, rather than discover it from a complaint. A lock is released, never deleted, so
the trail keeps both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gridgeo.errors import ConflictError, NotFoundError

from . import base

_DDL = (
    "CREATE TABLE IF NOT EXISTS gg_locks ("
    " id {key}, code TEXT NOT NULL, time TEXT NOT NULL, author TEXT NOT NULL, reason TEXT NOT NULL,"
    " released TEXT, released_by TEXT)",
)
base.EXTRA_TABLES.extend(_DDL)
base.EXTRA_REGISTERED.append("gg_locks")

_COLS = "id, code, time, author, reason, released, released_by"


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": int(r[0]), "code": r[1], "time": r[2], "author": r[3], "reason": r[4], "released": r[5],
            "released_by": r[6]}


class Locks:
    """The locks kept in ``store`` (either backend)."""

    def __init__(self, store: base.Store) -> None:
        self.store = store
        if store.ready() and not store.schema_current():  # a store an older gridgeo made
            store.ensure_schema()

    def active(self, codes: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The locks not released, by code (of ``codes`` only, when given)."""
        if not self.store.ready():
            return {}
        rows = [_row(r) for r in self.store.query(f"SELECT {_COLS} FROM gg_locks WHERE released IS NULL ORDER BY id")]
        wanted = None if codes is None else set(codes)
        return {r["code"]: r for r in rows if wanted is None or r["code"] in wanted}

    def lock(self, code: str, *, author: str, reason: str) -> dict[str, Any]:
        """Lock ``code``, with its audit row; :class:`ConflictError` if it is locked already."""
        with self.store.transaction() as cur:
            self.store.execute(cur, f"SELECT {_COLS} FROM gg_locks WHERE code = ? AND released IS NULL", (code,))
            held = cur.fetchone()
            if held is not None:
                h = _row(held)
                raise ConflictError(f"grid {code} is locked already, by {h['author']} since {h['time']}")
            self.store.execute(cur, "INSERT INTO gg_locks (code, time, author, reason) VALUES (?, ?, ?, ?) "
                               "RETURNING id", (code, base.now_utc(), author, reason))
            lid = int(cur.fetchone()[0])
            self.store.audit(cur, author, "lock.add", f"locks/{code}", after={"id": lid, "reason": reason})
        return self.active([code])[code]

    def release(self, code: str, *, author: str) -> dict[str, Any]:
        """Release the lock of ``code``, with its audit row; :class:`NotFoundError` if it is not locked."""
        with self.store.transaction() as cur:
            self.store.execute(cur, f"SELECT {_COLS} FROM gg_locks WHERE code = ? AND released IS NULL", (code,))
            held = cur.fetchone()
            if held is None:
                raise NotFoundError(f"grid {code} is not locked")
            when = base.now_utc()
            self.store.execute(cur, "UPDATE gg_locks SET released = ?, released_by = ? WHERE id = ?",
                               (when, author, int(held[0])))
            self.store.audit(cur, author, "lock.release", f"locks/{code}", before=_row(held))
        return {**_row(held), "released": when, "released_by": author}


def lock_breaks(locks: dict[str, dict[str, Any]]) -> list[str]:
    """The locks rule, one line per locked grid a change would touch."""
    return [f"locks: grid {c} is locked by {r['author']} since {r['time']} ({r['reason'] or 'no reason given'})"
            for c, r in sorted(locks.items())]
