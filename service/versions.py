"""``/versions``: the county's versions (each rebuild, with author, time, message) and their change lists.

Views parse, read :class:`gridgeo.store.Versions` and shape the answer. GIS staff
and admins read them (``version.read``): a change list names the units, the
households' moves by unit and the roster's person ids (never names or phones).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for

from gridgeo.errors import ConflictError, UsageError
from gridgeo.store import Versions

from .auth import require
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
    """The change list from version ``a`` to version ``b``: kept for each version against the one before it.

    Why only consecutive versions: a change list is the diff of two whole builds, and only the one made
    when a build replaced the other is kept (the old file is gone); a list across several versions would
    have to compose household moves the lists only count.
    """
    check_params(())
    require("version.read")
    va, vb = _id(a, "a"), _id(b, "b")
    versions = _versions()
    old, new = versions.get(va), versions.get(vb)
    if new["previous"] != old["id"] or new["changes"] is None:
        raise ConflictError(f"version {vb} was not made from version {va} (it follows "
                            f"{new['previous'] or 'nothing'}): a change list is kept between a version and "
                            "the one before it only")
    return _answer({"from": _linked(old), "to": _linked({k: v for k, v in new.items() if k != "changes"}),
                    "changes": new["changes"]})
