"""OGC API – Features Part 4 on the units GIS staff edit: ``PATCH`` of an item's attributes, ``OPTIONS``.

Why attributes first: a unit's name, kind and responsible people change far more
often than its shape, and QGIS and OWSLib edit them as Part 4 ``PATCH`` of the
feature. A grid's geometry in the body is applied as grid points moving between
grids (:mod:`.edit_geometry`), never as drawn; another layer's geometry is 422
(its finer units are not persisted yet).

An edit needs ``geometry.write`` (name, kind) or ``roster.write`` (``leader*``)
inside the caller's scope, and the ``ETag`` of the item the caller read as
``If-Match`` (412 when it is stale, 428 when missing): two GIS officers editing one
grid cannot overwrite each other unknowingly. The change, its audit row and a
version (kind ``edit``, its change list naming the unit, before and after) are one
transaction of the database that holds the layers; then the served feature and
``/locate``'s summaries follow. ``OPTIONS`` says which methods the caller may use.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import MethodNotAllowed

from gridgeo.errors import InputError, PreconditionFailedError, PreconditionRequiredError, UsageError
from gridgeo.store import Store, is_url
from gridgeo.store.edits import EDITABLE_LAYERS, check_values

from . import edit_geometry
from .auth import principal, require
from .edit_geometry import REDRAWN, Edit, parse_outline
from .features import _item, county
from .store import dumps

log = logging.getLogger(__name__)

bp = Blueprint("edits", __name__)

_READ = ("GET", "HEAD", "OPTIONS")


def _check_if_match(name: str, fid: str, body: bytes) -> None:
    """``If-Match`` against the ETag a ``GET`` of the item as GeoJSON gives (``body``: those bytes; the
    service's hook hashes a body the same way)."""
    sent = request.if_match
    if not sent:
        raise PreconditionRequiredError(f"an edit of {name} {fid} needs If-Match: the ETag of the item as read "
                                        "(GET it first), so that no one else's edit is overwritten")
    tag = hashlib.blake2b(body, digest_size=16).hexdigest()
    if not sent.star_tag and not any(t.removesuffix("-gzip") == tag for t in sent.as_set()):
        raise PreconditionFailedError(f"{name} {fid} has changed since it was read (If-Match is stale): "
                                      "GET it again and redo the edit")


def _layers_store() -> Store | None:
    """The store, if it is the database holding the layers (else an edit could not be one transaction)."""
    store = current_app.extensions.get("store")
    if store is None or not store.ready():
        return None
    path = county().path
    if store.dialect == "postgresql":
        same = is_url(path) and store.url == path  # both without the password
    else:
        same = not is_url(path) and Path(str(getattr(store, "path", ""))).resolve() == Path(path).resolve()
    return store if same else None


def _edits_store(name: str) -> Store:
    """:func:`_layers_store`, or 405: this service cannot keep an edit with its audit row and version."""
    store = _layers_store()
    if store is None or name not in EDITABLE_LAYERS:
        why = (f"{name} is not edited over the API (editable: {', '.join(EDITABLE_LAYERS)})" if store is not None
               else "this service's layers are not in a writable store's database (serve the county with its own "
                    "store, or from the PostGIS it was loaded into), so an edit could not be kept with its trail")
        raise MethodNotAllowed(valid_methods=list(_READ), description=why)
    return store


def _body(name: str, fid: str, columns: list[str]) -> tuple[dict[str, str | None], Any]:
    """The properties a Part 4 PATCH body (a partial GeoJSON Feature, or its properties) sets, and the
    grid's new outline if it has a geometry (:mod:`.edit_geometry`)."""
    doc = request.get_json(silent=True)
    if not isinstance(doc, dict):
        raise UsageError(f"PATCH {name}/{fid}: a JSON object, {{\"properties\": {{...}}}} (a partial Feature)")
    if doc.get("id") is not None and str(doc["id"]) != fid:
        raise InputError(f"{name} {fid}: the body's id {doc['id']!r} is another feature")
    outline = parse_outline(name, fid, doc["geometry"]) if "geometry" in doc else None
    props = doc.get("properties", {} if outline is not None else
                    {k: v for k, v in doc.items() if k not in ("type", "id")})
    if not isinstance(props, dict) or (not props and outline is None):
        raise UsageError(f"PATCH {name}/{fid}: no properties to set")
    return (check_values(name, columns, props) if props else {}), outline


@bp.route("/collections/<name>/items/<fid>", methods=["PATCH"], provide_automatic_options=False)
def patch_item(name: str, fid: str) -> Response:
    """Set a unit's name, kind or responsible people (Part 4 PATCH, JSON merge patch of its properties)."""
    return _edit(name, fid, lambda columns, _now: _body(name, fid, columns))


@bp.route("/collections/<name>/items/<fid>", methods=["PUT"], provide_automatic_options=False)
def put_item(name: str, fid: str) -> Response:
    """Part 4 PUT (OWSLib's update): the whole feature back, its geometry as it is, some properties changed."""
    return _edit(name, fid, lambda columns, now: _replacement(name, fid, columns, now))


def _replacement(name: str, fid: str, columns: list[str], now: dict[str, Any]) -> tuple[dict[str, str | None], Any]:
    """The properties a PUT body changes, and the grid's new outline if its geometry is not the stored one."""
    import shapely.geometry

    doc = request.get_json(force=True, silent=True)
    if not isinstance(doc, dict) or doc.get("type") != "Feature" or not isinstance(doc.get("properties"), dict):
        raise UsageError(f"PUT {name}/{fid}: a GeoJSON Feature with its geometry and properties")
    if doc.get("id") is not None and str(doc["id"]) != fid:
        raise InputError(f"{name} {fid}: the body's id {doc['id']!r} is another feature")
    outline = parse_outline(name, fid, doc.get("geometry")) if name in REDRAWN else None
    if outline is None or outline.equals_exact(shapely.geometry.shape(now["geometry"]), 1e-9):
        if outline is None and not _same_geometry(doc.get("geometry"), now["geometry"]):
            raise InputError(f"{name} {fid}: only a grid's or a block's geometry is edited (by moving its grid "
                             "points or villages); send this feature's geometry as it is")
        outline = None
    changed = {k: v for k, v in doc["properties"].items() if now["properties"].get(k, object()) != v}
    return (check_values(name, columns, changed) if changed else {}), outline


def _same_geometry(sent: Any, stored: Any) -> bool:
    import shapely.geometry

    try:
        return sent is not None and bool(shapely.geometry.shape(sent).equals_exact(shapely.geometry.shape(stored),
                                                                                    1e-9))
    except (TypeError, ValueError, KeyError, AttributeError, shapely.errors.GEOSException):
        return False


def _edit(name: str, fid: str, parse: Any) -> Response:
    """An edit: who may, what it sets (``parse(columns, the feature now)``), If-Match, then one transaction."""
    coll = county().get(name)
    coll.locate_key(fid)  # 404 before anything else
    store = _edits_store(name)
    chain = current_app.extensions["chains"].chain(fid)
    p = principal()
    if not (p.allowed("geometry.write", chain) or p.allowed("roster.write", chain)):
        require("geometry.write", chain, what=f"{name} {fid}")  # 401 or 403, saying why
    with coll.lock.reading():
        body = _item(coll, name, fid, "json").get_data()
    values, outline = parse(coll.column_names, json.loads(body))
    actions = {"roster.write" if k.startswith("leader") else "geometry.write" for k in values}
    for action in actions | ({"geometry.write"} if outline is not None else set()):
        require(action, chain, what=f"{name} {fid}")
    if _preview(outline):
        shown = edit_geometry.preview(fid, edit_geometry.plan(fid, outline, name))
        return Response(dumps(shown), mimetype="application/json")
    _check_if_match(name, fid, body)
    redrawn = None
    if outline is not None:
        r = edit_geometry.plan(fid, outline, name)
        if r.moves or r.broken:
            redrawn = edit_geometry.apply(store, fid, r)
    rec = coll.records([coll.locate_key(fid)])[0]
    before = {k: None if rec.get(k) is None else str(rec.get(k)) for k in values}
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    if changed:
        _apply(store, name, fid, before, changed)
    with coll.lock.reading():
        item = _item(coll, name, fid, "json").get_data()
    resp = Response(item if redrawn is None else item[:-1] + b',"changes":' + dumps(redrawn["changes"]) + b"}",
                    mimetype="application/geo+json")
    resp.set_etag(hashlib.blake2b(item, digest_size=16).hexdigest())  # of the item as a GET gives it
    return resp


def _preview(outline: Any) -> bool:
    """``?preview=true``: what a grid's new outline would do, its rule report and change list, not applied
    (the map shows it before GIS staff save)."""
    text = request.args.get("preview", "false")
    if text not in ("true", "false"):
        raise UsageError(f"preview is true or false, got {text[:20]!r}")
    if text == "true" and outline is None:
        raise UsageError("preview=true previews a grid's new geometry; this edit sends none")
    return text == "true"


def _apply(store: Store, name: str, fid: str, before: dict[str, Any], changed: dict[str, str | None]) -> None:
    """The edit, its audit row and its version in one transaction; then the served copies."""
    message = f"{name} {fid}: " + ", ".join(f"{k} {v!r}" for k, v in changed.items())
    apply_edits(store, [(name, fid, before, changed)], kind="edit", message=message)


def apply_edits(store: Store, edits: list[Edit], *, kind: str, message: str) -> dict[str, Any]:
    """Edits of units' attributes, an audit row each and one version (``kind``) in one transaction; then
    the served features and /locate's summaries follow. The version's row."""
    return edit_geometry.write_changes(store, kind=kind, message=message, edits=edits)


@bp.route("/collections/<name>/items/<fid>", methods=["OPTIONS"])
def item_options(name: str, fid: str) -> Response:
    """The methods the caller may use on this item (QGIS asks before it offers editing)."""
    coll = county().get(name)
    coll.locate_key(fid)
    methods = list(_READ)
    p = principal()
    chain = current_app.extensions["chains"].chain(fid) if name in EDITABLE_LAYERS and _layers_store() else None
    if chain is not None and (p.allowed("geometry.write", chain) or p.allowed("roster.write", chain)):
        methods += ["PATCH", "PUT"]
    resp = Response(status=204)
    resp.headers["Allow"] = ", ".join(methods)
    resp.headers["Link"] = f'<{url_for("features.item", name=name, fid=fid, _external=True)}>; rel="self"'
    return resp
