"""Reports from residents and workers (随手拍): filed, assigned, handled, escalated, closed, each step kept.

A report is filed at a place already located to its chain of units and
carries, from that moment, its *ladder*: the handler of every level that
may take it (the lowest level that handles its category first, then up to
the county), each with the hours it has before the report moves on. Why a
snapshot and not the live roster: escalation must work where the county's
layers are not at hand (``gridgeo reports sweep STORE`` from cron, on a
PostgreSQL store), and a report is answered by the people who were
responsible when it was filed; a rebuilt roster applies to the next one.

States (:data:`TRANSITIONS`): ``received`` → ``handling`` (taken up in the
grid) → ``routed`` (to a department or a higher level) → ``supervised``
(督办, by a level above the handler) → ``closed``. Every change is one row
of ``gg_report_events`` (who, when, from, to, note) and one audit row, in
the same transaction as the change. Changes are optimistic: an update
names the state and step it read, so two handlers (or a handler and the
deadline sweep) acting at once never both win; the loser gets a 409.

Escalation moves a report one rung up its ladder, re-assigns it and
restarts its deadline from the moment of escalation (the new handler
learns of it then). :meth:`Reports.sweep` does so for every open report
whose deadline has passed, as actor ``system``; time is always passed in
(``now``), never read here, so tests inject it and nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gridgeo.errors import ConflictError, NotFoundError, UsageError

from . import base
from .base import Store
from .records import note_text

log = logging.getLogger(__name__)

#: state -> the states it may move to (``closed`` is final)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("handling", "routed", "closed"),
    "handling": ("routed", "supervised", "closed"),
    "routed": ("handling", "supervised", "closed"),
    "supervised": ("handling", "routed", "closed"),
    "closed": (),
}
STATES = tuple(TRANSITIONS)
OPEN_STATES = tuple(s for s in STATES if s != "closed")
#: who the deadline sweep is in the trail
SYSTEM = "system"
#: the level above every unit: the county's own centre (no unit code of the layers)
COUNTY = "county"
#: the chain columns a report keeps for filtering by level (the whole chain is in ``chain`` too)
REPORT_UNITS = ("township", "village", "grid", "point")
MAX_TEXT = 4000

_DDL = (
    "CREATE TABLE IF NOT EXISTS gg_reports ("
    " id {key}, created TEXT NOT NULL, reporter TEXT NOT NULL, reporter_name TEXT, reporter_phone TEXT,"
    " category TEXT NOT NULL, body TEXT NOT NULL, lon {real} NOT NULL, lat {real} NOT NULL,"
    " township TEXT, village TEXT, grid TEXT, point TEXT, chain TEXT NOT NULL, places TEXT NOT NULL,"
    " ladder TEXT NOT NULL, step INTEGER NOT NULL, level TEXT NOT NULL, unit TEXT, due TEXT NOT NULL,"
    " state TEXT NOT NULL, department TEXT, updated TEXT NOT NULL, closed TEXT,"
    " photo TEXT, photo_type TEXT, photo_size {big})",
    "CREATE INDEX IF NOT EXISTS gg_reports_open ON gg_reports (state, due)",
    "CREATE INDEX IF NOT EXISTS gg_reports_unit ON gg_reports (unit, state)",
    "CREATE TABLE IF NOT EXISTS gg_report_events ("
    " id {key}, report {big} NOT NULL, time TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    " from_state TEXT, to_state TEXT NOT NULL, from_level TEXT, to_level TEXT NOT NULL, unit TEXT,"
    " department TEXT, note TEXT)",
    "CREATE INDEX IF NOT EXISTS gg_report_events_report ON gg_report_events (report, id)",
)
base.EXTRA_TABLES.extend(_DDL)
base.EXTRA_REGISTERED.extend(("gg_reports", "gg_report_events"))
#: added after the table's first release (see :data:`gridgeo.store.base.EXTRA_COLUMNS`): the SHA-256 of the
#: receipt an anonymous filer got (never the receipt), and when the sweep marked a report at the top of its
#: ladder supervised for its passed deadline (so it is marked once, not at every sweep)
base.EXTRA_COLUMNS.extend((("gg_reports", "receipt_hash", "TEXT"), ("gg_reports", "overdue_marked", "TEXT")))

_COLS = ("id", "created", "reporter", "reporter_name", "reporter_phone", "category", "body", "lon", "lat",
         "township", "village", "grid", "point", "chain", "places", "ladder", "step", "level", "unit", "due",
         "state", "department", "updated", "closed", "photo", "photo_type", "photo_size", "overdue_marked")
#: the number of rungs of a report's ladder (a JSON array), in SQL per dialect
_RUNGS = {"sqlite": "json_array_length(ladder)", "postgresql": "json_array_length(ladder::json)"}
_EVENT_COLS = ("id", "report", "time", "actor", "action", "from_state", "to_state", "from_level", "to_level",
               "unit", "department", "note")


@dataclass(frozen=True)
class Rung:
    """One level a report may be handled at: its unit, the person answering there, the hours they have.

    ``note`` says why this rung is not the one expected (a level below it without anyone responsible).
    """

    level: str
    unit: str | None
    role: str | None
    name: str | None
    phone: str | None
    hours: float
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "unit": self.unit, "role": self.role, "name": self.name, "phone": self.phone,
                "hours": self.hours, "note": self.note}


@dataclass(frozen=True)
class NewReport:
    """A checked report, located and with its ladder, ready to be stored.

    ``places``: the chain, coarsest first (``[{"level", "code", "name"}]``, township → … → point).
    """

    lon: float
    lat: float
    category: str
    text: str
    places: Sequence[Mapping[str, Any]]
    ladder: Sequence[Rung]
    reporter_name: str | None = None
    reporter_phone: str | None = None

    def units(self) -> dict[str, str | None]:
        """The code of each of :data:`REPORT_UNITS` (an exclusive grid counts as the grid)."""
        got = {str(p["level"]): p.get("code") for p in self.places}
        out = {u: got.get(u) for u in REPORT_UNITS}
        if out["grid"] is None:
            out["grid"] = got.get("exclusive")
        return out


def stamp(t: dt.datetime) -> str:
    """``t`` as the store writes times (UTC, microseconds, ``Z``; sortable as text on both backends)."""
    if t.tzinfo is None:
        raise UsageError("report times must be timezone-aware")
    return t.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _due(now: dt.datetime, hours: float) -> str:
    return stamp(now + dt.timedelta(hours=float(hours)))


def _note(raw: Any, where: str = "note") -> str | None:
    return note_text(raw, where)


class Reports:
    """The reports of one store (its ``gg_reports`` and ``gg_report_events`` tables).

    Parameters
    ----------
    store
        An open store; its tables are made at first use if a store written before reports existed lacks them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ensured = False

    def _ensure(self) -> None:
        """Create the report tables and columns a store made before them lacks (idempotent, schema-locked on PG;
        checked once per store object, see :meth:`Store.schema_current`)."""
        if self._ensured:
            return
        if not self.store.schema_current():
            self.store.ensure_schema()
            self.store._current = True
        self._ensured = True

    # -- filing ----------------------------------------------------------------------------------------
    def file(self, new: NewReport, *, actor: str, now: dt.datetime, receipt: str | None = None) -> dict[str, Any]:
        """Store a report (state ``received``, assigned to the first rung of its ladder); the stored report.

        ``receipt``: what an anonymous filer got to follow the report with (:func:`new_receipt`); only its
        SHA-256 is kept, so the store's rows never let anyone read the report as its filer.
        """
        if not new.ladder:
            raise UsageError("a report needs at least one level to be handled at")
        self._ensure()
        first = new.ladder[0]
        when = stamp(now)
        units = new.units()
        chain = " " + " ".join(str(p["code"]) for p in reversed(list(new.places)) if p.get("code")) + " "
        s = self.store
        with s.transaction() as cur:
            s.execute(cur, "INSERT INTO gg_reports (created, reporter, reporter_name, reporter_phone, category, body, "
                      "lon, lat, township, village, grid, point, chain, places, ladder, step, level, unit, due, state, "
                      "updated, receipt_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, "
                      "'received', ?, ?) RETURNING id",
                      (when, actor, new.reporter_name, new.reporter_phone, new.category, new.text, new.lon, new.lat,
                       *(units[u] for u in REPORT_UNITS), chain, _dump(list(new.places)),
                       _dump([r.as_dict() for r in new.ladder]), first.level, first.unit, _due(now, first.hours),
                       when, None if receipt is None else receipt_hash(receipt)))
            rid = int(cur.fetchone()[0])
            self._event(cur, rid, when=when, actor=actor, action="file", from_state=None, to_state="received",
                        from_level=None, to_level=first.level, unit=first.unit, note=first.note)
            s.audit(cur, actor, "report.file", f"reports/{rid}",
                    after={"category": new.category, "state": "received", "level": first.level, "unit": first.unit,
                           "due": _due(now, first.hours), "lon": new.lon, "lat": new.lat})
        return self.get(rid)

    def _event(self, cur: Any, rid: int, *, when: str, actor: str, action: str, from_state: str | None,
               to_state: str, from_level: str | None, to_level: str, unit: str | None, department: str | None = None,
               note: str | None = None) -> None:
        self.store.execute(cur, "INSERT INTO gg_report_events (report, time, actor, action, from_state, to_state, "
                           "from_level, to_level, unit, department, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (rid, when, actor, action, from_state, to_state, from_level, to_level, unit, department,
                            note))

    # -- reading ---------------------------------------------------------------------------------------
    def get(self, rid: int) -> dict[str, Any]:
        """One report (its ladder and places decoded), or :class:`NotFoundError`."""
        self._ensure()
        rows = self.store.query(f"SELECT {', '.join(_COLS)} FROM gg_reports WHERE id = ?", (int(rid),))
        if not rows:
            raise NotFoundError(f"no report {rid}")
        return _decode(rows[0])

    def by_receipt(self, rid: int, receipt: str) -> dict[str, Any]:
        """Report ``rid`` if ``receipt`` is the one its anonymous filer got, else the :class:`NotFoundError` of
        an id that does not exist (the same words: a wrong receipt tells nothing of the report)."""
        self._ensure()
        rows = self.store.query(f"SELECT {', '.join(_COLS)}, receipt_hash FROM gg_reports WHERE id = ?", (int(rid),))
        stored = rows[0][-1] if rows else None
        # compared in constant time, and a hash compared even for a missing id, so timing tells nothing either
        same = hmac.compare_digest(str(stored or _NO_RECEIPT), receipt_hash(receipt))
        if stored is None or not same:
            raise NotFoundError(f"no report {rid}")
        return _decode(rows[0][:-1])

    def events(self, rid: int) -> list[dict[str, Any]]:
        """The report's history, oldest first."""
        self._ensure()
        rows = self.store.query(f"SELECT {', '.join(_EVENT_COLS)} FROM gg_report_events WHERE report = ? "
                                "ORDER BY id", (int(rid),))
        return [dict(zip(_EVENT_COLS, r, strict=True)) for r in rows]

    def find(self, *, now: dt.datetime, unit: str | None = None, assigned: str | None = None,
             state: str | None = None, overdue: bool | None = None, category: str | None = None,
             after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Reports in id order from ``after``: located in ``unit`` (any level), assigned to ``assigned``,
        in ``state``, past their deadline or not (``overdue``; closed reports are never overdue)."""
        self._ensure()
        where: list[str] = ["id > ?"]
        params: list[Any] = [after]
        if unit is not None:
            where.append("chain LIKE ? ESCAPE '!'")
            params.append(f"% {_like(unit)} %")
        if assigned is not None:
            where.append("unit = ?")
            params.append(assigned)
        if state is not None:
            if state not in TRANSITIONS:
                raise UsageError(f"state must be one of {', '.join(STATES)}, got {state!r}")
            where.append("state = ?")
            params.append(state)
        if category is not None:
            where.append("category = ?")
            params.append(category)
        if overdue is not None:
            where.append("state <> 'closed' AND due < ?" if overdue else "(state = 'closed' OR due >= ?)")
            params.append(stamp(now))
        rows = self.store.query(f"SELECT {', '.join(_COLS)} FROM gg_reports WHERE {' AND '.join(where)} "
                                "ORDER BY id LIMIT ?", [*params, limit])
        return [_decode(r) for r in rows]

    # -- changing --------------------------------------------------------------------------------------
    def transition(self, rid: int, to: str, *, actor: str, now: dt.datetime, note: str | None = None,
                   department: str | None = None, expect: tuple[str, int] | None = None) -> dict[str, Any]:
        """Move a report to state ``to``; a 409 naming the allowed states when it cannot go there.

        ``routed`` without escalation needs the ``department`` it goes to; ``closed`` needs a ``note`` (how
        it was resolved). ``expect``: the (state, step) the caller read and checked access on; if the report
        changed meanwhile, a 409 instead of acting on a report nobody looked at.
        """
        if to not in TRANSITIONS:
            raise UsageError(f"to: must be one of {', '.join(STATES)}, got {to!r}")
        note = _note(note)
        department = _note(department, "department")
        if to == "closed" and note is None:
            raise UsageError("closing a report needs a note saying how it was resolved")
        if to == "routed" and department is None:
            raise UsageError("routing a report needs the department it goes to (department); to move it up "
                             "a level, escalate it")
        cur_rep = self.get(rid)
        state, step = cur_rep["state"], int(cur_rep["step"])
        _expect(cur_rep, expect)
        if to not in TRANSITIONS[state]:
            allowed = ", ".join(TRANSITIONS[state]) or "none (it is closed)"
            raise ConflictError(f"report {rid} is {state}; it may go to: {allowed}")
        when = stamp(now)
        s = self.store
        with s.transaction() as cur:
            s.execute(cur, "UPDATE gg_reports SET state = ?, department = COALESCE(?, department), updated = ?, "
                      "closed = ? WHERE id = ? AND state = ? AND step = ?",
                      (to, department, when, when if to == "closed" else None, rid, state, step))
            _won(cur, rid)
            self._event(cur, rid, when=when, actor=actor, action="transition", from_state=state, to_state=to,
                        from_level=cur_rep["level"], to_level=cur_rep["level"], unit=cur_rep["unit"],
                        department=department, note=note)
            s.audit(cur, actor, f"report.{to}", f"reports/{rid}", before={"state": state},
                    after={"state": to, "note": note, "department": department})
        return self.get(rid)

    def escalate(self, rid: int, *, actor: str, now: dt.datetime, note: str | None = None,
                 expect: tuple[str, int] | None = None) -> dict[str, Any]:
        """Move an open report one rung up its ladder (state ``routed``), re-assigned, its deadline restarted."""
        note = _note(note)
        rep = self.get(rid)
        _expect(rep, expect)
        if rep["state"] == "closed":
            raise ConflictError(f"report {rid} is closed; it cannot be escalated")
        if int(rep["step"]) + 1 >= len(rep["ladder"]):
            raise ConflictError(f"report {rid} is at the top of its ladder ({rep['level']}); it cannot go higher")
        with self.store.transaction() as cur:
            self._climb(cur, rep, actor=actor, now=now, note=note, action="escalate")
        return self.get(rid)

    def _climb(self, cur: Any, rep: Mapping[str, Any], *, actor: str, now: dt.datetime, note: str | None,
               action: str) -> None:
        rid, step = int(rep["id"]), int(rep["step"])
        nxt = Rung(**rep["ladder"][step + 1])
        when, due = stamp(now), _due(now, nxt.hours)
        s = self.store
        s.execute(cur, "UPDATE gg_reports SET step = ?, level = ?, unit = ?, due = ?, state = 'routed', updated = ? "
                  "WHERE id = ? AND state = ? AND step = ?",
                  (step + 1, nxt.level, nxt.unit, due, when, rid, rep["state"], step))
        _won(cur, rid)
        text = "; ".join(t for t in (note, nxt.note) if t) or None
        self._event(cur, rid, when=when, actor=actor, action=action, from_state=rep["state"], to_state="routed",
                    from_level=rep["level"], to_level=nxt.level, unit=nxt.unit, note=text)
        s.audit(cur, actor, f"report.{action}", f"reports/{rid}",
                before={"state": rep["state"], "level": rep["level"], "unit": rep["unit"], "due": rep["due"]},
                after={"state": "routed", "level": nxt.level, "unit": nxt.unit, "due": due, "note": text})

    def sweep(self, *, now: dt.datetime) -> list[int]:
        """Escalate every open report past its deadline one rung (actor ``system``); the ids changed.

        One rung per sweep: the new deadline starts now, so a report is never pushed past a level that did
        not yet know of it. A report at the top of its ladder (the county centre: no one above it) is marked
        ``supervised`` (督办) instead, once: ``overdue_marked`` keeps when, so the next sweeps leave it alone,
        however long it stays overdue. A report changed by someone else meanwhile is left to the next sweep.
        """
        self._ensure()
        # a report marked at the top stays overdue for good: left out in SQL, so the sweep every reports
        # request runs reads only what it changes, however many such reports pile up
        rows = self.store.query(f"SELECT {', '.join(_COLS)} FROM gg_reports WHERE state <> 'closed' AND due < ? "
                                f"AND (step + 1 < {_RUNGS[self.store.dialect]} OR overdue_marked IS NULL) "
                                "ORDER BY id", (stamp(now),))
        climbed: list[int] = []
        marked: list[int] = []
        for row in rows:
            rep = _decode(row)
            note = f"deadline {rep['due']} passed at {rep['level']} {rep['unit'] or ''}".strip()
            top = int(rep["step"]) + 1 >= len(rep["ladder"])
            try:
                with self.store.transaction() as cur:
                    if top:
                        self._mark(cur, rep, now=now, note=note + "; no level above it: supervised")
                    else:
                        self._climb(cur, rep, actor=SYSTEM, now=now, action="deadline", note=note)
            except ConflictError:
                continue
            (marked if top else climbed).append(int(rep["id"]))
        if climbed:
            log.info("deadline sweep escalated %d report(s): %s", len(climbed), ", ".join(map(str, climbed)))
        if marked:
            log.info("deadline sweep marked %d report(s) at the top of their ladder supervised: %s", len(marked),
                     ", ".join(map(str, marked)))
        return sorted(climbed + marked)

    def _mark(self, cur: Any, rep: Mapping[str, Any], *, now: dt.datetime, note: str) -> None:
        """Mark a report at the top of its ladder ``supervised`` for its passed deadline (its trail says so)."""
        rid, when = int(rep["id"]), stamp(now)
        s = self.store
        s.execute(cur, "UPDATE gg_reports SET state = 'supervised', overdue_marked = ?, updated = ? "
                  "WHERE id = ? AND state = ? AND step = ? AND overdue_marked IS NULL",
                  (when, when, rid, rep["state"], rep["step"]))
        _won(cur, rid)
        self._event(cur, rid, when=when, actor=SYSTEM, action="deadline", from_state=rep["state"],
                    to_state="supervised", from_level=rep["level"], to_level=rep["level"], unit=rep["unit"],
                    note=note)
        s.audit(cur, SYSTEM, "report.deadline", f"reports/{rid}",
                before={"state": rep["state"], "level": rep["level"], "unit": rep["unit"], "due": rep["due"]},
                after={"state": "supervised", "level": rep["level"], "unit": rep["unit"], "due": rep["due"],
                       "overdue_hours": overdue_hours(rep, now), "note": note})

    def set_photo(self, rid: int, sha256: str, mtype: str, size: int, *, actor: str,
                  now: dt.datetime) -> dict[str, Any]:
        """Attach a stored photo (its hash, type and size; the bytes are a file, see :mod:`.photos`)."""
        rep = self.get(rid)
        when = stamp(now)
        with self.store.transaction() as cur:
            self.store.execute(cur, "UPDATE gg_reports SET photo = ?, photo_type = ?, photo_size = ?, updated = ? "
                               "WHERE id = ?", (sha256, mtype, int(size), when, rid))
            self.store.audit(cur, actor, "report.photo", f"reports/{rid}",
                             before={"photo": rep["photo"]}, after={"photo": sha256, "type": mtype, "size": size})
        return self.get(rid)


def _expect(rep: Mapping[str, Any], expect: tuple[str, int] | None) -> None:
    if expect is not None and (rep["state"], int(rep["step"])) != (expect[0], int(expect[1])):
        raise ConflictError(f"report {rep['id']} changed meanwhile (now {rep['state']} at {rep['level']}); "
                            "read it again")


def _won(cur: Any, rid: int) -> None:
    """The optimistic update found its row (else someone else changed the report first: a 409, rolled back)."""
    if cur.rowcount != 1:
        raise ConflictError(f"report {rid} changed meanwhile; read it again")


def _like(code: str) -> str:
    return code.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _decode(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_COLS, row, strict=True))
    out["places"] = json.loads(out["places"])
    out["ladder"] = json.loads(out["ladder"])
    out["chain"] = out["chain"].split()
    out["step"] = int(out["step"])
    return out


def overdue(rep: Mapping[str, Any], now: dt.datetime) -> bool:
    """Whether an open report is past its deadline at ``now``."""
    return rep["state"] != "closed" and str(rep["due"]) < stamp(now)


def overdue_hours(rep: Mapping[str, Any], now: dt.datetime) -> float | None:
    """How many hours an open report is past its deadline at ``now`` (one decimal), None when it is not."""
    if not overdue(rep, now):
        return None
    due = dt.datetime.fromisoformat(str(rep["due"]).replace("Z", "+00:00"))
    return round((now - due).total_seconds() / 3600.0, 1)


def new_receipt() -> str:
    """A fresh receipt for an anonymous filer: 192 random bits, URL-safe (shown once, kept as its hash)."""
    return secrets.token_urlsafe(24)


def receipt_hash(receipt: str) -> str:
    """The stored form of a receipt (SHA-256, hex). As with tokens, that much entropy needs no slow hash."""
    return hashlib.sha256(receipt.encode("utf-8", "replace")).hexdigest()


#: what a report filed with a token compares against: the hash of no receipt anyone can hold
_NO_RECEIPT = "-" * 64
