"""``POST /villages/{code}/redraw`` and ``/proposals``: a village's grids re-drawn on request, reviewed, accepted.

Views parse, call :func:`gridgeo.county.redraw.propose_grids` on the village's grids and grid points
read from the served layers, keep the proposal (:class:`gridgeo.store.Proposals`) and shape the answer:
its moves, its rule report before and after, the change list it would record and the grids' new
outlines. Nothing is applied until ``POST /proposals/{id}/accept``, which re-checks the rules on the
county as it is then and writes the moves as one version (kind ``redraw``) with the proposal marked
accepted in the same transaction; ``POST /versions/{v}/restore`` rolls it back like any edit. Who may:
``geometry.write`` on the village (GIS staff and admins in scope); reading a proposal: ``version.read``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry
from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.county.redraw import GridsProposal, RedrawRequest, propose_grids
from gridgeo.errors import ConflictError, InputError, NotFoundError, UsageError
from gridgeo.store import Locks, Proposals, Store, Versions

from . import edit_geometry, policy
from .auth import principal, require
from .edits import _edits_store
from .features import county
from .ogc import JSON, check_params
from .records import _store
from .store import dumps

bp = Blueprint("proposals", __name__)

#: the keys a redraw's body may hold
BODY_KEYS = ("bounds", "locks", "seed", "message")
#: the longest message a proposal keeps
MAX_MESSAGE = 500


def _answer(doc: Any, status: int = 200) -> Response:
    resp = Response(dumps(doc), status=status, mimetype=JSON)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def _village(code: str) -> dict[str, Any]:
    """The village's row and its CRS84 geometry; 404 if none."""
    vil = county().get("villages")
    pos = vil.locate_key(code)
    geom = vil.geometries_at([pos])[0] if hasattr(vil, "geometries_at") else vil.geoms[pos]
    return {**policy.village_row(code), "geometry": geom}


def _request(code: str, village: dict[str, Any]) -> tuple[RedrawRequest, str]:
    """The redraw asked for: ``{"bounds": [min, max], "locks": [grid codes], "seed": N, "message": TEXT}``,
    every key optional (the bounds default to the village's in the county's rules)."""
    doc = request.get_json(silent=True) if request.data else {}
    if not isinstance(doc, dict):
        raise UsageError('a redraw\'s body is a JSON object: {"bounds": [min, max], "locks": [grid codes], '
                         '"seed": N, "message": TEXT}, every key optional')
    unknown = sorted(set(doc) - set(BODY_KEYS))
    if unknown:
        raise UsageError(f"unknown key(s) {', '.join(map(repr, unknown))}; a redraw takes {', '.join(BODY_KEYS)}")
    bounds = doc.get("bounds")
    if bounds is None:
        bounds = list(policy.grid_bounds(village))
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(
            isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) for x in bounds)):
        raise UsageError(f"bounds must be [min, max] households, got {str(bounds)[:80]}")
    locks = doc.get("locks", [])
    if not (isinstance(locks, list) and all(isinstance(x, str) for x in locks)) or len(locks) > 1000:
        raise UsageError("locks must be a list of grid codes (at most 1,000)")
    seed = doc.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer from 0 to 2^32 - 1, got {str(seed)[:40]}")
    message = doc.get("message", "")
    if not isinstance(message, str) or len(message) > MAX_MESSAGE:
        raise UsageError(f"message must be text of at most {MAX_MESSAGE} characters")
    try:
        return RedrawRequest(bounds=(float(bounds[0]), float(bounds[1])), locks=tuple(sorted(set(locks))),
                             seed=seed), message
    except InputError as exc:
        raise UsageError(str(exc)) from None


def village_layers(code: str, geometry: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The village's base grids and their grid points (CRS84), each point with its households: the points'
    own count where the layer has one, else the households layer's rows on it."""
    grids, points = county().get("grids"), county().get("points")
    box = tuple(shapely.bounds(geometry).tolist())
    near = edit_geometry._frame(grids, grids.bbox_positions([box]), ["code", "parent"])
    mine = near[near["parent"].astype(str) == code].sort_values("code").reset_index(drop=True)
    if not len(mine):
        raise ConflictError(f"village {code} has no grids to redraw")
    cols = ["code", "parent"] + (["households"] if "households" in points.column_names else [])
    pts = edit_geometry._frame(points, points.bbox_positions([box]), cols)
    pts = pts[pts["parent"].astype(str).isin(set(mine["code"].astype(str)))].sort_values("code")
    pts = pts.reset_index(drop=True)
    if "households" not in pts.columns:
        pts["households"] = pts["code"].map(edit_geometry.households_on(box, set(pts["code"]))).fillna(0)
    return mine, pts


def _latest(store: Store) -> int | None:
    rows = store.query("SELECT max(id) FROM gg_versions")
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def _body(p: GridsProposal, grids: list[str], message: str) -> dict[str, Any]:
    """What a proposal keeps: its moves, rule report, change list and the grids' new outlines."""
    r = p.reassignment
    feats = [{"type": "Feature", "id": g, "geometry": shapely.geometry.mapping(geom), "properties": {"code": g}}
             for g, geom in sorted(r.grids.items())]
    return {"message": message, "targets": p.targets, "village_grids": grids,
            "moves": [{"code": c, "from": a, "to": b} for c, (a, b) in sorted(r.moves.items())],
            "rules": {"ok": not r.broken and p.engine["feasible"], "broken": r.broken, "engine": p.engine,
                      "before": p.before, "after": p.after},
            "changes": edit_geometry._changes(r) if r.moves else None,
            "grids": {"type": "FeatureCollection", "features": feats}}


def _doc(row: dict[str, Any]) -> dict[str, Any]:
    body = row["body"]
    links = [{"rel": "self", "type": JSON,
              "href": url_for("proposals.get_proposal", proposalId=row["id"], _external=True)}]
    if row["state"] == "open":
        links.append({"rel": "accept", "type": JSON, "method": "POST",
                      "href": url_for("proposals.accept_proposal", proposalId=row["id"], _external=True)})
    if row["version"] is not None:
        links.append({"rel": "version", "type": JSON,
                      "href": url_for("versions.get_version", versionId=row["version"], _external=True)})
    return {k: row[k] for k in ("id", "village", "state", "base", "version", "author", "time", "decided",
                                "decided_by")} | {k: v for k, v in body.items() if k != "targets"} | {"links": links}


def _pid(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**62:
        raise UsageError(f"a proposal id is a number (1, 2, ...), got {text[:40]!r}")
    return int(text)


@bp.post("/villages/<code>/redraw")
def redraw_village(code: str) -> Response:
    """Propose a redraw of the village's grids (not applied): 201 with the proposal and its Location."""
    check_params(())
    try:
        village = _village(code)
    except NotFoundError:
        raise NotFoundError(f"no village {code}") from None
    require("geometry.write", current_app.extensions["chains"].chain(code), what=f"villages {code}")
    store = _edits_store("grids")
    req, message = _request(code, village)
    grids, points = village_layers(code, village["geometry"])
    held = Locks(store).active(str(c) for c in grids["code"])  # locked grids keep their points
    req = dataclasses.replace(req, locks=tuple(sorted(set(req.locks) | set(held))))
    try:
        proposal = propose_grids(code, grids=grids, points=points, request=req)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    body = _body(proposal, [str(c) for c in grids["code"]], message)
    row = Proposals(store).add(author=principal().label, village=code, base_version=_latest(store), body=body)
    resp = _answer(_doc(row), 201)
    resp.headers["Location"] = url_for("proposals.get_proposal", proposalId=row["id"], _external=True)
    return resp


@bp.get("/proposals/<proposalId>")
def get_proposal(proposalId: str) -> Response:
    """One proposal: its state, moves, rule report, change list and outlines."""
    check_params(())
    require("version.read")
    return _answer(_doc(_proposals().get(_pid(proposalId))))


def _proposals() -> Proposals:
    """The proposals, kept with the versions in the records store (the layers' own database when they are
    edited over the API)."""
    return Proposals(_store())


@bp.post("/proposals/<proposalId>/accept")
def accept_proposal(proposalId: str) -> Response:
    """Apply an open proposal as a version (kind ``redraw``): 201 with the version and its change list; 409
    when it was accepted already, moves nothing, or the village's grids changed since it was made."""
    check_params(())
    proposals = _proposals()
    row = proposals.get(_pid(proposalId))
    code = row["village"]
    require("geometry.write", current_app.extensions["chains"].chain(code), what=f"villages {code}")
    store = _edits_store("grids")
    if row["state"] != "open":
        raise ConflictError(f"proposal {row['id']} was accepted already, as version {row['version']}")
    body = row["body"]
    if not body["targets"]:
        raise ConflictError(f"proposal {row['id']} moves no grid point: there is nothing to apply")
    _check_current(store, row)
    r = edit_geometry.regrouped(body["targets"])
    who = principal().label
    message = f"villages {code}: redraw of proposal {row['id']}, {len(r.moves)} grid point(s) moved" + (
        f": {body['message']}" if body.get("message") else "")
    version = edit_geometry.write_changes(
        store, kind="redraw", message=message, redraw=r, target=f"villages/{code}",
        also=functools.partial(_accepted, proposals, row["id"], who))
    resp = _answer({"proposal": _doc(proposals.get(row["id"])), "version": {
        k: v for k, v in version.items() if k != "changes"}, "changes": version["changes"]}, 201)
    resp.headers["Location"] = url_for("versions.get_version", versionId=version["id"], _external=True)
    return resp


def _accepted(proposals: Proposals, pid: int, who: str, cur: Any, version: dict[str, Any]) -> None:
    proposals.accepted_in(cur, pid, version=int(version["id"]), author=who)


def _check_current(store: Store, row: dict[str, Any]) -> None:
    """409 when a version made since the proposal is a build or a load, or moved or reshaped one of the
    village's grids: the moves were worked out on grids that are no longer there."""
    versions = Versions(store)
    later = versions.after(row["base"]) if row["base"] is not None else [
        versions.get(v["id"]) for v in versions.list()]
    grids = set(row["body"]["village_grids"])
    for v in later:
        if v["kind"] in ("build", "load") and (v["changes"] is not None or v["previous"] is not None):
            _stale(row, v, "rebuilt or reloaded the county")  # (not the baseline the first edit records)
        levels = (v.get("changes") or {}).get("levels", {})
        moved = levels.get("points", {}).get("moved", [])
        touched = set(levels.get("grids", {}).get("reshaped", [])) | {str(m["from"]) for m in moved} | {
            str(m["to"]) for m in moved}
        if touched & grids:
            _stale(row, v, f"changed grid(s) {', '.join(sorted(touched & grids)[:5])}")


def _stale(row: dict[str, Any], v: dict[str, Any], what: str) -> None:
    raise ConflictError(f"proposal {row['id']} was made at version {row['base']}; version {v['id']} ({v['kind']}: "
                        f"{v['message'][:80]}) {what} since: ask for a new proposal")
