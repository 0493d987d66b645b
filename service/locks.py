"""``/locks``: grids locked against every change (hand edits, redraws, restores), with who, when and why.

Views parse, call :class:`gridgeo.store.Locks` and shape the answer. Who may lock or release a grid:
``geometry.write`` on it (GIS staff and admins in scope); who may list the locks: ``version.read``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.errors import NotFoundError, UsageError
from gridgeo.store import Locks

from .auth import principal, require
from .features import county
from .ogc import JSON, check_params
from .records import _store
from .store import dumps

bp = Blueprint("locks", __name__)

#: the longest reason a lock keeps
MAX_REASON = 500


def _answer(doc: Any, status: int = 200) -> Response:
    resp = Response(dumps(doc), status=status, mimetype=JSON)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def _grid(code: str) -> tuple[str, ...]:
    """The chain of grid ``code`` (404 when the county has no such grid)."""
    if len(code) > 200:
        raise UsageError("a grid code is at most 200 characters")
    try:
        county().get("grids").locate_key(code)
    except NotFoundError:
        raise NotFoundError(f"no grid {code}") from None
    return tuple(current_app.extensions["chains"].chain(code))


@bp.get("/locks")
def list_locks() -> Response:
    """The grids locked now, oldest lock first."""
    check_params(())
    require("version.read")
    rows = list(Locks(_store()).active().values())
    return _answer({"locks": rows, "numberReturned": len(rows)})


@bp.post("/locks")
def add_lock() -> Response:
    """Lock a grid: ``{"code": GRID, "reason": TEXT}``; 201, or 409 when it is locked already."""
    check_params(())
    doc = request.get_json(silent=True)
    if not isinstance(doc, dict) or set(doc) - {"code", "reason"} or not isinstance(doc.get("code"), str) or \
            not isinstance(doc.get("reason", ""), str) or len(doc.get("reason", "")) > MAX_REASON:
        raise UsageError(f'a lock is {{"code": GRID, "reason": TEXT}} (reason optional, at most {MAX_REASON} '
                         "characters)")
    code = doc["code"]
    require("geometry.write", _grid(code), what=f"grids {code}")
    row = Locks(_store()).lock(code, author=principal().label, reason=doc.get("reason", ""))
    resp = _answer(row, 201)
    resp.headers["Location"] = url_for("locks.release_lock", code=code, _external=True)
    return resp


@bp.delete("/locks/<code>")
def release_lock(code: str) -> Response:
    """Release a grid's lock; 404 when it is not locked."""
    check_params(())
    require("geometry.write", _grid(code), what=f"grids {code}")
    return _answer(Locks(_store()).release(code, author=principal().label))
