"""``/versions``: the county's versions (each rebuild, with author, time, message) and their change lists.

Views parse, read :class:`gridgeo.store.Versions` and shape the answer. GIS staff
and admins read them (``version.read``): a change list names the units, the
households' moves by unit and the roster's person ids (never names or phones).
``POST /versions/{v}/restore`` rolls the units' attributes and the grid points
moved over the API back to version ``v`` as a new version (kind ``restore``),
when every version since is an edit over the API (a rebuild replaced the file it
was made from: it is undone by building again, and named in the 409).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.errors import ConflictError, NotFoundError, UsageError
from gridgeo.store import Versions
from gridgeo.store.versions import composed_edits, rollback

from . import edit_geometry
from .auth import require
from .edits import Edit, _edits_store
from .features import county
from .ogc import JSON, check_params
from .records import _store
from .store import dumps

bp = Blueprint("versions", __name__)


def _versions() -> Versions:
    return Versions(_store())


def _id(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**62:
        raise UsageError(f"{what} must be a version number (1, 2, ...), got {text[:40]!r}")
    return int(text)


def _linked(row: dict[str, Any]) -> dict[str, Any]:
    links = [{"rel": "self", "type": JSON, "href": url_for("versions.get_version", versionId=row["id"],
                                                            _external=True)}]
    if row["previous"] is not None:
        links.append({"rel": "predecessor-version", "type": JSON,
                      "href": url_for("versions.get_version", versionId=row["previous"], _external=True)})
    return {**row, "links": links}


def _answer(doc: Any) -> Response:
    resp = Response(dumps(doc), mimetype=JSON)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


@bp.get("/versions")
def list_versions() -> Response:
    """Every version, oldest first, each with the counts of its change list."""
    check_params(())
    require("version.read")
    rows = _versions().list()
    return _answer({"versions": [_linked(r) for r in rows], "numberReturned": len(rows)})


@bp.get("/versions/<versionId>")
def get_version(versionId: str) -> Response:
    """One version with its whole change list against the version before it."""
    check_params(())
    require("version.read")
    return _answer(_linked(_versions().get(_id(versionId, "versionId"))))


@bp.get("/versions/<a>/diff/<b>")
def diff_versions(a: str, b: str) -> Response:
    """The change list from version ``a`` to version ``b``: kept for each version against the one before it,
    or composed when every version from ``a`` to ``b`` is an attribute edit.

    Why not across a rebuild: a change list is the diff of two whole builds, and only the one made when a
    build replaced the other is kept (the old file is gone); a list across several builds would have to
    compose household moves the lists only count.
    """
    check_params(())
    require("version.read")
    va, vb = _id(a, "a"), _id(b, "b")
    versions = _versions()
    old, new = versions.get(va), versions.get(vb)
    if new["previous"] == old["id"] and new["changes"] is not None:
        changes = new["changes"]
    else:
        changes = composed_edits([v for v in versions.after(va) if v["id"] <= vb]) if va < vb else None
        if changes is None:
            raise ConflictError(f"version {vb} was not made from version {va} (it follows "
                                f"{new['previous'] or 'nothing'}), and not every version between them is an "
                                "attribute edit: a change list is kept between a version and the one before it "
                                "only, and edits are composed, rebuilds not")
    return _answer({"from": _linked(old), "to": _linked({k: v for k, v in new.items() if k != "changes"}),
                    "changes": changes})


#: the longest message a restore takes
_MAX_MESSAGE = 500


@bp.post("/versions/<versionId>/restore")
def restore_version(versionId: str) -> Response:
    """Roll the units' attributes back to version ``versionId``: one new version undoing every edit since.

    Each unit is checked as an edit of it is (``geometry.write`` for a name or kind, ``roster.write`` for
    its people, inside the caller's scope) before anything is written; then the edits, an audit row each
    and the version are one transaction. 201 with the new version and its change list; 200 with no version
    when the attributes are already those of ``versionId``.
    """
    check_params(())
    vid = _id(versionId, "versionId")
    require("version.read")
    doc = request.get_json(silent=True) if request.data else {}
    if not isinstance(doc, dict) or not isinstance(doc.get("message", ""), str) or \
            len(doc.get("message", "")) > _MAX_MESSAGE:
        raise UsageError(f"a restore's body is {{\"message\": TEXT}} (at most {_MAX_MESSAGE} characters) or empty")
    versions = _versions()
    values, moves = rollback(vid, versions.after(vid))
    edits = [e for e in (_undo(layer, code, vals) for (layer, code), vals in sorted(values.items())) if e[3]]
    redraw = [r for r in (edit_geometry.regrouped(targets, layer) for layer, targets in sorted(moves.items())
                          if targets) if r.moves]
    if not edits and not redraw:
        return _answer({"restored": vid, "version": None,
                        "detail": f"the units' attributes and grids are already those of version {vid}"})
    store = _edits_store(edits[0][0] if edits else "grids")
    message = f"restore version {vid}" + (f": {doc['message']}" if doc.get("message") else "")
    row = edit_geometry.write_changes(store, kind="restore", message=message, edits=edits, redraw=redraw,
                                      target=f"versions/{vid}")
    resp = _answer({"restored": vid, "version": _linked({k: v for k, v in row.items() if k != "changes"}),
                    "changes": row["changes"]})
    resp.status_code = 201
    resp.headers["Location"] = url_for("versions.get_version", versionId=row["id"], _external=True)
    return resp


def _undo(layer: str, code: str, values: dict[str, Any]) -> Edit:
    """The edit taking unit ``code`` of ``layer`` back to ``values``, allowed for the caller (or 401/403)."""
    _edits_store(layer)
    try:
        coll = county().get(layer)
        rec = coll.records([coll.locate_key(code)])[0]
    except NotFoundError:
        raise ConflictError(f"{layer} {code} is no longer in the county: its edits cannot be rolled back") from None
    chain = current_app.extensions["chains"].chain(code)
    before = {k: None if rec.get(k) is None else str(rec.get(k)) for k in values}
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    for action in {"roster.write" if k.startswith("leader") else "geometry.write" for k in changed}:
        require(action, chain, what=f"{layer} {code}")
    return layer, code, before, changed
