"""Versions (版本) of the served county: every accepted change set, with author, time, message and change list.

Why in the store: a rebuild replaces the county file, and the GIS office then needs
to say what changed, when, by whom and why (the grids retired and created, the
households that moved, whose unit was retired) long after the old file is gone.
Each version keeps its change list against the version before it
(:func:`gridgeo.county.diff.diff_counties`), so the list is the one the county
saw when it accepted the change, not one reconstructed later.

A rebuild over a county that has a store (``gridgeo build -o county.gpkg``)
records itself here after the store is carried into the new file
(:func:`gridgeo.cli.build.record_build`); the first such rebuild also records the
build it replaced as version 1, without a change list (no one kept one before).
Each version is an audit row too (``version.add``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gridgeo.errors import ConflictError, NotFoundError, UsageError

from . import base

log = logging.getLogger(__name__)

#: what made a version
KINDS = ("build", "load", "edit", "restore", "redraw")

_DDL = (
    "CREATE TABLE IF NOT EXISTS gg_versions ("
    " id {key}, time TEXT NOT NULL, author TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,"
    " previous {big}, summary TEXT NOT NULL, changes TEXT)",
)
base.EXTRA_TABLES.extend(_DDL)
base.EXTRA_REGISTERED.append("gg_versions")

_COLS = "id, time, author, kind, message, previous, summary"
_Rows = list[dict[str, Any]]


def summarise(changes: dict[str, Any] | None) -> dict[str, Any]:
    """The counts of a change list: per level retired, created, reshaped, kept; households moved; people."""
    if not changes:
        return {}
    out: dict[str, Any] = {"levels": {k: {"retired": len(v["retired"]), "created": len(v["created"]),
                                          "reshaped": len(v["reshaped"]), "kept": v["kept"],
                                          **({"edited": len(v["edited"])} if "edited" in v else {})}
                                      for k, v in changes.get("levels", {}).items()}}
    moved = changes.get("households", {}).get("moved", {})
    out["households_moved"] = {lvl: {"rows": m["rows"], "households": m["households"]} for lvl, m in moved.items()}
    people = changes.get("people") or {}
    if people:
        out["people"] = {"moved": len(people["moved"]), "on_retired": len(people["on_retired"])}
    return out


class Versions:
    """The versions kept in ``store`` (either backend)."""

    def __init__(self, store: base.Store) -> None:
        self.store = store
        self._ensured = False

    def _ensure(self) -> None:
        """Make the table in a store an older gridgeo made (checked once per object, as :class:`.Reports` does)."""
        if not self._ensured and not self.store.schema_current():
            self.store.ensure_schema()
        self._ensured = True

    def add(self, *, kind: str, author: str, message: str, changes: dict[str, Any] | None,
            time: str | None = None) -> dict[str, Any]:
        """Record a version after the last one, with its audit row; the version (without its changes)."""
        self._ensure()
        with self.store.transaction() as cur:
            return self.add_in(cur, kind=kind, author=author, message=message, changes=changes, time=time)

    def add_in(self, cur: Any, *, kind: str, author: str, message: str, changes: dict[str, Any] | None,
               time: str | None = None) -> dict[str, Any]:
        """:meth:`add` in the caller's transaction (``gridgeo load`` records its version with the load)."""
        if kind not in KINDS:
            raise UsageError(f"a version's kind is one of {', '.join(KINDS)}, got {kind!r}")
        summary = summarise(changes)
        when = time or base.now_utc()
        self.store.execute(cur, "SELECT max(id) FROM gg_versions")
        last = cur.fetchone()[0]
        self.store.execute(cur, "INSERT INTO gg_versions (time, author, kind, message, previous, summary, "
                           "changes) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                           (when, author, kind, message, last, json.dumps(summary, ensure_ascii=False),
                            None if changes is None else json.dumps(changes, ensure_ascii=False)))
        vid = int(cur.fetchone()[0])
        row = {"id": vid, "time": when, "author": author, "kind": kind, "message": message,
               "previous": None if last is None else int(last), "summary": summary}
        self.store.audit(cur, author, "version.add", f"versions/{vid}", after=row)
        return row

    def base_in(self, cur: Any, *, author: str) -> None:
        """Record the county as it is as version 1 (kind ``build``, no change list) if no version is kept yet,
        in the caller's transaction: so that the first edit of a county has a version to be rolled back to."""
        self.store.execute(cur, "SELECT count(*) FROM gg_versions")
        if int(cur.fetchone()[0]) == 0:
            self.add_in(cur, kind="build", author=author, changes=None,
                        message="the county as served before its first recorded change")

    def list(self) -> list[dict[str, Any]]:
        """Every version, oldest first, without change lists."""
        self._ensure()
        return [_row(r) for r in self.store.query(f"SELECT {_COLS} FROM gg_versions ORDER BY id")]

    def get(self, vid: int) -> dict[str, Any]:
        """Version ``vid`` with its change list against the version before it (None for the first)."""
        self._ensure()
        rows = self.store.query(f"SELECT {_COLS}, changes FROM gg_versions WHERE id = ?", (vid,))
        if not rows:
            raise NotFoundError(f"no version {vid}")
        out = _row(rows[0][:-1])
        out["changes"] = None if rows[0][-1] is None else json.loads(rows[0][-1])
        return out


    def after(self, vid: int) -> _Rows:
        """The versions made after ``vid``, oldest first, with their change lists (``vid`` itself must exist)."""
        self.get(vid)
        rows = self.store.query(f"SELECT {_COLS}, changes FROM gg_versions WHERE id > ? ORDER BY id", (vid,))
        return [{**_row(r[:-1]), "changes": None if r[-1] is None else json.loads(r[-1])} for r in rows]


def only_edits(changes: dict[str, Any] | None) -> bool:
    """Whether a change list holds attribute edits only (no code retired, created or reshaped, nobody moved)."""
    if not changes:
        return False
    levels = changes.get("levels", {})
    moved = changes.get("households", {}).get("moved", {})
    return not moved and all(not v.get("retired") and not v.get("created") and not v.get("reshaped")
                             for v in levels.values())


#: the layers an edit over the API redraws, each with the layer of the whole units it moves
REDRAWN_UNITS = {"grids": "points", "blocks": "villages"}


def redraws(changes: dict[str, Any] | None) -> bool:
    """Whether a change list holds attribute edits and grids or blocks redrawn over the API only (grid
    points or villages moved, no code retired or created): what a restore can undo."""
    if not changes:
        return False
    levels = changes.get("levels", {})
    moved = changes.get("households", {}).get("moved", {})
    return set(moved) <= {"grid", "block"} and all(not v.get("retired") and not v.get("created")
                                                   for v in levels.values()) \
        and all(not v.get("reshaped") for k, v in levels.items() if k not in REDRAWN_UNITS)


def rollback(vid: int, later: list[dict[str, Any]]) -> tuple[dict[tuple[str, str], dict[str, Any]],
                                                             dict[str, dict[str, str]]]:
    """What version ``vid`` had of everything the versions after it changed: the attribute values of every
    unit edited, (layer, code) -> {column: value} (the ``before`` of the first edit after ``vid``), and
    the parent of every unit moved, per redrawn layer: layer -> {unit -> parent} (``grids``: grid point ->
    grid, ``blocks``: village -> block; the ``from`` of its first move after ``vid``).

    Raises
    ------
    ConflictError
        Nothing was made after ``vid``, or a version after it is a build or a load (it redrew or re-read
        the county: rolling it back needs the old file, which a rebuild replaced), named with its kind.
    """
    if not later:
        raise ConflictError(f"version {vid} is the current one: there is nothing to restore")
    blocked = [v for v in later if v["kind"] not in ("edit", "restore", "redraw") or not redraws(v["changes"])]
    if blocked:
        named = ", ".join(f"{v['id']} ({v['kind']}: {v['message'][:80]})" for v in blocked[:5])
        raise ConflictError(f"cannot restore version {vid}: {len(blocked)} version(s) after it redrew or re-read "
                            f"the county ({named}); edits over the API are rolled back, a build by building "
                            "again from the inputs it was made of")
    values: dict[tuple[str, str], dict[str, Any]] = {}
    moves: dict[str, dict[str, str]] = {}
    parent_of = {u: p for p, u in REDRAWN_UNITS.items()}
    for v in reversed(later):  # newest first: the oldest edit's before is written last
        for layer, level in v["changes"]["levels"].items():
            for edit in level.get("edited", []):
                values.setdefault((layer, str(edit["code"])), {}).update(edit["before"])
            for move in level.get("moved", []):
                moves.setdefault(parent_of.get(layer, "grids"), {})[str(move["code"])] = str(move["from"])
    return values, moves


def composed_edits(between: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One change list for consecutive versions that are all attribute edits (each unit's value before the
    first and after the last, columns that came back to where they were left out); None if one is not."""
    if not between or not all(v["kind"] in ("edit", "restore") and only_edits(v["changes"]) for v in between):
        return None
    first: dict[tuple[str, str], dict[str, Any]] = {}
    last: dict[tuple[str, str], dict[str, Any]] = {}
    kept: dict[str, Any] = {}
    for v in between:
        for layer, level in v["changes"]["levels"].items():
            kept[layer] = level.get("kept")
            for edit in level.get("edited", []):
                key = (layer, str(edit["code"]))
                for col, value in edit["before"].items():
                    first.setdefault(key, {}).setdefault(col, value)
                last.setdefault(key, {}).update(edit["after"])
    levels: dict[str, Any] = {}
    for (layer, code), after in sorted(last.items()):
        before = first[(layer, code)]
        moved = {c: v for c, v in after.items() if before.get(c) != v}
        level = levels.setdefault(layer, {"retired": [], "created": [], "reshaped": [], "kept": kept[layer],
                                          "edited": []})
        if moved:
            level["edited"].append({"code": code, "before": {c: before.get(c) for c in moved}, "after": moved})
    return {"levels": levels, "households": {}, "people": {}}


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": int(r[0]), "time": r[1], "author": r[2], "kind": r[3], "message": r[4],
            "previous": None if r[5] is None else int(r[5]), "summary": json.loads(r[6])}
