"""Proposals (方案): a village's grids re-drawn on request and kept, not applied, until someone accepts them.

Why in the store: a proposal is reviewed (its change list, its rule report) by someone other than, and
later than, the engineer who asked for it, often from another machine; it must outlive a restart of the
server, and who asked for it and who accepted it is part of the trail. A proposal is made against the
county as it was at one version (``base``); accepting it once another version has been made since would
apply moves worked out on grids that are no longer there, so that is refused (409) and a new proposal
asked for.
"""

from __future__ import annotations

import json
from typing import Any

from gridgeo.errors import ConflictError, NotFoundError

from . import base

#: a proposal's states: made and not yet acted on, or applied as a version
STATES = ("open", "accepted")

_DDL = (
    "CREATE TABLE IF NOT EXISTS gg_proposals ("
    " id {key}, time TEXT NOT NULL, author TEXT NOT NULL, village TEXT NOT NULL, base {big},"
    " state TEXT NOT NULL, version {big}, decided TEXT, decided_by TEXT, body TEXT NOT NULL)",
)
base.EXTRA_TABLES.extend(_DDL)
base.EXTRA_REGISTERED.append("gg_proposals")

_COLS = "id, time, author, village, base, state, version, decided, decided_by, body"


class Proposals:
    """The proposals kept in ``store`` (either backend)."""

    def __init__(self, store: base.Store) -> None:
        self.store = store
        if not store.schema_current():  # a store an older gridgeo made
            store.ensure_schema()

    def add(self, *, author: str, village: str, base_version: int | None, body: dict[str, Any]) -> dict[str, Any]:
        """Keep a new open proposal for ``village`` made at ``base_version``, with its audit row."""
        when = base.now_utc()
        with self.store.transaction() as cur:
            self.store.execute(cur, "INSERT INTO gg_proposals (time, author, village, base, state, body) "
                               "VALUES (?, ?, ?, ?, 'open', ?) RETURNING id",
                               (when, author, village, base_version, json.dumps(body, ensure_ascii=False)))
            pid = int(cur.fetchone()[0])
            self.store.audit(cur, author, "proposal.add", f"proposals/{pid}",
                             after={"village": village, "base": base_version, "moves": len(body.get("targets", {}))})
        return self.get(pid)

    def get(self, pid: int) -> dict[str, Any]:
        """Proposal ``pid`` with its body; :class:`NotFoundError` if there is none."""
        rows = self.store.query(f"SELECT {_COLS} FROM gg_proposals WHERE id = ?", (pid,))
        if not rows:
            raise NotFoundError(f"no proposal {pid}")
        r = rows[0]
        return {"id": int(r[0]), "time": r[1], "author": r[2], "village": r[3],
                "base": None if r[4] is None else int(r[4]), "state": r[5],
                "version": None if r[6] is None else int(r[6]), "decided": r[7], "decided_by": r[8],
                "body": json.loads(r[9])}

    def accepted_in(self, cur: Any, pid: int, *, version: int, author: str) -> None:
        """Mark ``pid`` accepted as ``version`` in the caller's transaction (the one that applied it); a
        proposal accepted meanwhile by another request is a :class:`ConflictError` (nothing is kept)."""
        self.store.execute(cur, "UPDATE gg_proposals SET state = 'accepted', version = ?, decided = ?, "
                           "decided_by = ? WHERE id = ? AND state = 'open'", (version, base.now_utc(), author, pid))
        if cur.rowcount != 1:
            raise ConflictError(f"proposal {pid} was accepted meanwhile")
        self.store.audit(cur, author, "proposal.accept", f"proposals/{pid}", after={"version": version})
