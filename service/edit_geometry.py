"""A grid's geometry edited over Part 4 (PATCH or PUT), applied as grid points moving between grids.

Views call :func:`gridgeo.county.reassign.reassign` on the grids and points around the drawn outline;
a broken rule is 409 naming every one (nothing written); else the moved points' new grid, their
households' grid, every changed grid's outline (the union of its points) and its counts, an audit row
and a version (kind ``edit``, its change list: grids reshaped, points and households moved) are one
transaction of the database holding the layers; then the served layers, ``/locate`` and the chains of
units follow. Who may: ``geometry.write`` on every grid that changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry
from flask import current_app

from gridgeo.county.reassign import Reassignment, reassign, regroup
from gridgeo.errors import ConflictError, InputError
from gridgeo.store import Locks, Store, Versions
from gridgeo.store.edits import move_points, update_geometry, update_unit
from gridgeo.store.locks import lock_breaks

from . import policy
from .auth import principal, require
from .features import county
from .lazy_base import LazyLayer
from .locate import Locator

log = logging.getLogger(__name__)

#: the layers whose geometry an edit redraws (by moving their grid points)
REDRAWN = ("grids",)


def parse_outline(name: str, fid: str, geometry: Any) -> Any:
    """The drawn outline (GeoJSON, CRS84) as a valid polygon, or a 422 saying why not."""
    if name not in REDRAWN:
        raise InputError(f"{name} {fid}: only a grid's geometry is edited (by moving its grid points); the finer "
                         "units a grid point is made of are not persisted yet")
    try:
        geom = shapely.geometry.shape(geometry)
    except (TypeError, ValueError, KeyError, AttributeError, shapely.errors.GEOSException):
        raise InputError(f"{name} {fid}: the geometry is not GeoJSON") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        raise InputError(f"{name} {fid}: the geometry must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if not geom.is_valid:
        log.warning("%s %s: drawn outline invalid (%s); repaired", name, fid, shapely.is_valid_reason(geom))
        geom = shapely.make_valid(geom)
    return geom


def _records(coll: Any, plist: list[int], cols: list[str]) -> list[dict[str, Any]]:
    """Columns ``cols`` of the features at ``plist`` (in memory or from the store)."""
    if isinstance(coll, LazyLayer):
        return coll.rows_at(plist, cols)  # type: ignore[no-any-return]
    have = [c for c in cols if c in coll.frame.columns]
    return coll.frame.iloc[plist][have].to_dict("records")  # type: ignore[no-any-return]


def _frame(coll: Any, pos: np.ndarray, cols: list[str]) -> gpd.GeoDataFrame:
    """Rows ``pos`` of a served layer (in memory or from the store): ``cols`` and the CRS84 geometry."""
    plist = [int(p) for p in pos]
    recs = _records(coll, plist, cols)
    geoms = coll.geometries_at(plist) if isinstance(coll, LazyLayer) else coll.geoms[plist]
    return gpd.GeoDataFrame({c: [r.get(c) for r in recs] for c in cols}, geometry=list(geoms), crs="OGC:CRS84")


def plan(fid: str, outline: Any) -> Reassignment:
    """The re-assignment of points ``outline`` asks of grid ``fid`` (grids and points read around it)."""
    grids, points = county().get("grids"), county().get("points")
    pos = grids.locate_key(fid)
    now = _frame(grids, np.array([pos]), ["code", "parent"]).geometry.iloc[0]
    box = shapely.bounds(shapely.union(now, outline)).tolist()
    near = _frame(grids, grids.bbox_positions([tuple(box)]), ["code", "parent"])  # other villages' too: a
    wide = shapely.bounds(shapely.union_all(near.geometry.values)).tolist()
    # point of theirs the outline takes breaks the village border (named in the 409)
    pts = _frame(points, points.bbox_positions([tuple(wide)]), ["code", "parent", "households"])
    pts = pts[pts["parent"].isin(set(near["code"]))]
    r = reassign(fid, outline, grids=near.reset_index(drop=True), points=pts.reset_index(drop=True))
    if r.moves:
        r.broken += locked(list(r.grids))
    if r.moves and not r.broken:  # the bounds, on the grids' households after the moves
        r.broken += bound_breaks(_counts(points, r))
    return r


def locked(codes: list[str]) -> list[str]:
    """The locks rule on the grids ``codes`` a change would redraw (:mod:`gridgeo.store.locks`)."""
    store = current_app.extensions.get("store")
    return lock_breaks(Locks(store).active(codes)) if store is not None and codes else []


def preview(fid: str, r: Reassignment) -> dict[str, Any]:
    """What the re-assignment ``r`` of grid ``fid`` would do, not applied: the grids' new outlines (GeoJSON,
    CRS84), the points moved, the rules it breaks and the change list it would record."""
    feats = [{"type": "Feature", "id": g, "geometry": shapely.geometry.mapping(geom), "properties": {"code": g}}
             for g, geom in sorted(r.grids.items())]
    return {"applied": False, "grid": fid, "rules": {"broken": r.broken, "ok": not r.broken},
            "moves": [{"code": p, "from": a, "to": b} for p, (a, b) in sorted(r.moves.items())],
            "grids": {"type": "FeatureCollection", "features": feats},
            "changes": _changes(r) if r.moves and not r.broken else None}


#: an edit of one unit's attributes: (layer, code, the values before, the values set)
Edit = tuple[str, str, dict[str, Any], dict[str, Any]]


def apply(store: Store, fid: str, r: Reassignment) -> dict[str, Any]:
    """Write the re-assignment ``r`` of grid ``fid`` (its rules held): the version's row with its change list."""
    message = (f"grids {fid}: redrawn, {len(r.moves)} grid point(s) moved ("
               + ", ".join(f"{p} {a} -> {b}" for p, (a, b) in sorted(r.moves.items())[:5]) + ")")
    return write_changes(store, kind="edit", message=message, redraw=r, target=f"grids/{fid}")


def write_changes(store: Store, *, kind: str, message: str, edits: list[Edit] | None = None,
                  redraw: Reassignment | None = None, target: str = "grids",
                  also: Callable[[Any, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One change set: grid points moved (``redraw``, its rules held) and units' attributes set (``edits``),
    an audit row for each and one version (``kind``) in one transaction; then the served layers,
    /locate and the chains follow. Who may: ``geometry.write`` on every grid redrawn (the caller checked
    the attribute edits). ``also(cursor, version)``: more writes of the same transaction (a proposal marked
    accepted). The version's row with its change list."""
    edits = edits or []
    if redraw is not None and redraw.broken:
        raise ConflictError(f"{target}: the edit breaks {len(redraw.broken)} rule(s), nothing changed: "
                            + "; ".join(redraw.broken))
    for g in (redraw.grids if redraw is not None else {}):
        require("geometry.write", current_app.extensions["chains"].chain(g), what=f"grids {g}")
    held = locked(list(redraw.grids)) if redraw is not None else []
    if held:
        raise ConflictError(f"{target}: the change would redraw {len(held)} locked grid(s), nothing changed: "
                            + "; ".join(held))
    who = principal().label
    hh = county().collections.get("households")
    counts = _counts(county().get("points"), redraw) if redraw is not None else {}
    changes = _attribute_changes(edits, _changes(redraw) if redraw is not None else None)
    with store.transaction() as cur:
        Versions(store).base_in(cur, author=who)
        if redraw is not None:
            _write_redraw(store, cur, redraw, counts, hh=hh is not None and "grid" in hh.column_names)
            store.audit(cur, who, "grid.redraw", target, before={p: a for p, (a, _) in redraw.moves.items()},
                        after={p: b for p, (_, b) in redraw.moves.items()})
        for name, fid, before, changed in edits:
            update_unit(store, cur, name, fid, changed)
            store.audit(cur, who, "unit.edit", f"{name}/{fid}", before={k: before.get(k) for k in changed},
                        after=changed)
        row = Versions(store).add_in(cur, kind=kind, author=who, changes=changes, message=message)
        if also is not None:
            also(cur, row)
    if redraw is not None:
        _follow(redraw, counts, hh)
        log.info("%s redrew %s: %d grid point(s) moved", who, target, len(redraw.moves))
    _follow_attributes(edits, who)
    return {**row, "changes": changes}


def _write_redraw(store: Store, cur: Any, r: Reassignment, counts: dict[str, dict[str, int]], *, hh: bool) -> None:
    grids = county().get("grids")
    srid = int(grids.storage_epsg or 4326)
    column = getattr(getattr(grids, "t", None), "geom", "geom")
    for g, geom in r.grids.items():
        update_geometry(store, cur, "grids", g, _stored(geom, grids), srid=srid, column=column)
        _set_counts(store, cur, g, counts[g], grids.column_names)
    move_points(store, cur, r.moves, households=hh)


def _attribute_changes(edits: list[Edit], changes: dict[str, Any] | None) -> dict[str, Any]:
    """``changes`` (or an empty change list) with the attribute edits in each level's ``edited``."""
    out = changes or {"levels": {}, "households": {}, "people": {}}
    for name, fid, before, changed in edits:
        level = out["levels"].setdefault(name, {"retired": [], "created": [], "reshaped": [],
                                                "kept": len(county().get(name))})
        level.setdefault("edited", []).append({"code": fid, "before": {k: before.get(k) for k in changed},
                                               "after": changed})
    return out


def _follow_attributes(edits: list[Edit], who: str) -> None:
    loc: Any = current_app.extensions.get("locator")
    for name, fid, _, changed in edits:
        county().get(name).set_properties(fid, changed)
        if isinstance(loc, Locator):  # not built yet: it reads the edited values when it is
            loc.edited(name, fid, changed)
        log.info("%s edited %s %s: %s", who, name, fid, ", ".join(changed))


def regrouped(targets: dict[str, str]) -> Reassignment:
    """The grid points of ``targets`` (code -> grid) moved back, the grids they leave and join redrawn."""
    grids, points = county().get("grids"), county().get("points")
    mine = _frame(points, np.array([points.locate_key(c) for c in targets]), ["code", "parent"])
    involved = set(mine["parent"].astype(str)) | set(targets.values())
    near = _frame(grids, np.array([grids.locate_key(g) for g in sorted(involved)]), ["code", "parent"])
    box = tuple(shapely.bounds(shapely.union_all(near.geometry.values)).tolist())
    pts = _frame(points, points.bbox_positions([box]), ["code", "parent", "households"])
    pts = pts[pts["parent"].isin(involved)].reset_index(drop=True)
    return regroup(targets, grids=near, points=pts)


def _stored(geom: Any, coll: Any) -> Any:
    """A CRS84 outline as the layer stores it: a MultiPolygon, or a Polygon in a layer of polygons (a grid
    in pieces cannot be stored there: 409), in its CRS (lon/lat CGCS2000 as is)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    if str(getattr(coll, "geometry_type", "")).lower() == "polygon":
        if len(parts) != 1:
            raise ConflictError(f"{coll.id}: the layer holds single polygons, and the edit would make a grid of "
                                f"{len(parts)} pieces")
        multi = parts[0]
    else:
        multi = shapely.MultiPolygon(parts)
    epsg = coll.storage_epsg
    if epsg in (None, 4326, 4490):
        return multi
    from pyproj import Transformer

    tr = Transformer.from_crs("OGC:CRS84", f"EPSG:{epsg}", always_xy=True)
    return shapely.transform(multi, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _point_households(points: Any, codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    if "households" not in points.column_names:
        pos = [points.locate_key(c) for c in codes]
        geoms = points.geometries_at(pos) if isinstance(points, LazyLayer) else points.geoms[pos]
        x0, y0, x1, y1 = shapely.bounds(shapely.union_all(geoms)).tolist()
        on = households_on((x0, y0, x1, y1), set(codes))
        return {c: round(on.get(c, 0)) for c in codes}
    recs = _records(points, [points.locate_key(c) for c in codes], ["households"])
    return {c: int(r.get("households") or 0) for c, r in zip(codes, recs, strict=True)}


def households_on(box: tuple[float, float, float, float], codes: set[str]) -> dict[str, float]:
    """Households per grid point of ``codes`` from the households layer's rows in ``box`` (each row's
    ``households`` weight, else one): for a points layer without its own count."""
    hh = county().collections.get("households")
    if hh is None or "point" not in hh.column_names:
        return {}
    cols = ["point"] + (["households"] if "households" in hh.column_names else [])
    out: dict[str, float] = {}
    for r in _records(hh, [int(p) for p in hh.bbox_positions([box])], cols):
        if r.get("point") in codes:
            out[r["point"]] = out.get(r["point"], 0.0) + float(r.get("households", 1) or 0)
    return out


def _counts(points: Any, r: Reassignment) -> dict[str, dict[str, Any]]:
    """Each changed grid's households and grid points before and after the moves (its points read from the
    layer; households from the points' own count, else the households layer), and ``within_bounds`` after."""
    out: dict[str, dict[str, Any]] = {}
    for g in r.grids:
        box = tuple(shapely.bounds(r.grids[g]).tolist())
        recs = _records(points, [int(p) for p in points.bbox_positions([box])], ["code", "parent"])
        after = [str(x["code"]) for x in recs if r.moves.get(str(x.get("code")), (None, x.get("parent")))[1] == g]
        before = [str(x["code"]) for x in recs if x.get("parent") == g]
        per = _point_households(points, sorted(set(after) | set(before)))
        out[g] = {"n_points": len(after), "households": sum(per[c] for c in after),
                  "households_before": sum(per[c] for c in before)}
        bounds = _grid_bounds(g)
        if bounds is not None:
            out[g]["within_bounds"] = policy.within_bounds(out[g]["households"], bounds)
            out[g]["bounds"] = bounds
    return out


def _grid_bounds(grid: str) -> tuple[float, float] | None:
    grids = county().get("grids")
    if "parent" not in grids.column_names:
        return None
    village = _records(grids, [grids.locate_key(grid)], ["parent"])[0].get("parent")
    return policy.bounds_of_grid_village(str(village)) if village else None


def bound_breaks(counts: dict[str, dict[str, Any]]) -> list[str]:
    """The bounds rule: an edit may not take a grid outside its household bounds, nor farther outside."""
    out = []
    for g, c in sorted(counts.items()):
        b = c.get("bounds")
        if b is not None and policy.distance(c["households"], b) > policy.distance(c["households_before"], b):
            out.append(f"bounds: grid {g} would hold {c['households']} households, outside its bounds "
                       f"[{b[0]:g}, {b[1]:g}] (it holds {c['households_before']})")
    return out


#: what an edit writes of a grid's counts, where the layer has the column
COUNT_COLUMNS = ("n_points", "households", "within_bounds")


def _set_counts(store: Store, cur: Any, grid: str, counts: dict[str, Any], columns: list[str]) -> None:
    sets = {k: counts[k] for k in COUNT_COLUMNS if k in columns and k in counts}
    if sets:
        store.execute(cur, f'UPDATE "grids" SET {", ".join(f"{k!s} = ?" for k in sets)} WHERE code = ?',
                      [*sets.values(), grid])


def _changes(r: Reassignment) -> dict[str, Any]:
    """The version's change list, as ``gridgeo diff`` writes one: grids reshaped, units and households moved."""
    grids = county().get("grids")
    per_point = _point_households(county().get("points"), list(r.moves))
    moved = [{"code": p, "from": a, "to": b, "households": per_point.get(p, 0)}
             for p, (a, b) in sorted(r.moves.items())]
    return {"levels": {"grids": {"retired": [], "created": [], "reshaped": sorted(r.grids),
                                 "kept": len(grids) - len(r.grids)},
                       "points": {"retired": [], "created": [], "reshaped": [], "kept": len(county().get("points")),
                                  "moved": moved}},
            "households": {"moved": {"grid": {"rows": len(moved), "households": sum(per_point.values())}}},
            "people": {}}


def _follow(r: Reassignment, counts: dict[str, dict[str, int]], hh: Any) -> None:
    """The served layers, /locate and the chains after the write."""
    grids, points = county().get("grids"), county().get("points")
    loc: Any = current_app.extensions.get("locator")
    chains = current_app.extensions["chains"]
    for g, geom in r.grids.items():
        if isinstance(grids, LazyLayer):
            grids.forget(g)
        else:
            grids.replace(g, shapely.orient_polygons(geom, exterior_cw=False))
            grids.set_properties(g, {k: counts[g][k] for k in COUNT_COLUMNS
                                     if k in grids.column_names and k in counts[g]})
        if isinstance(loc, Locator):
            loc.replace("grids", g, geom)
    for p, (_, to) in r.moves.items():
        if isinstance(points, LazyLayer):
            points.forget(p)
        else:
            points.set_properties(p, {"parent": to})
        chains.parents[p] = (to,)
        if isinstance(loc, Locator):
            loc.moved("point", p, "grid", to)
    if hh is not None:
        _follow_households(hh, r)


def _follow_households(hh: Any, r: Reassignment) -> None:
    """The moved points' households served with their new grid."""
    if isinstance(hh, LazyLayer):
        hh.forget_all()
        return
    if "point" not in hh.column_names or "grid" not in hh.column_names:
        return
    points = np.asarray(hh.columns(["point"])["point"], dtype=object)
    for p, (_, to) in r.moves.items():
        for pos in np.flatnonzero(points == p).tolist():
            hh.set_properties(hh.key_at(pos), {"grid": to})
