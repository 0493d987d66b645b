"""A grid's or a block's geometry edited over Part 4 (PATCH or PUT), applied as whole units moving.

A grid is redrawn by moving grid points between the grids of its village, a block (片区) by moving villages
between the blocks of its township (:class:`Redrawn`: the two, and the columns each touches). Views call
:func:`gridgeo.county.reassign.reassign` on the parents and units around the drawn outline; a broken rule
is 409 naming every one (nothing written); else the moved units' new parent, their households' grid,
every changed parent's outline (the union of its units) and its counts, an audit row and a version
(kind ``edit``, its change list: parents reshaped, units and households moved) are one transaction of
the database holding the layers; then the served layers, ``/locate`` and the chains of units follow.
Who may: ``geometry.write`` on every parent that changes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry
from flask import current_app

from gridgeo.county.reassign import BLOCKS, GRIDS, Pair, Reassignment, reassign, regroup
from gridgeo.errors import ConflictError, InputError
from gridgeo.store import Locks, Store, Versions
from gridgeo.store.edits import move_units, update_geometry, update_unit
from gridgeo.store.locks import lock_breaks

from . import policy
from .auth import principal, require
from .features import county
from .lazy_base import LazyLayer
from .locate import Locator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Redrawn:
    """A layer whose geometry an edit redraws by moving the whole units of the layer below.

    ``owner``: the units' column naming their parent; ``n_units``: the parent's count of them;
    ``households``: the households' column that follows a moved unit (None: the households name no such
    unit).
    """

    layer: str
    units: str
    owner: str
    pair: Pair
    n_units: str
    households: str | None

    @property
    def what(self) -> str:
        """The units, as a change's message names them."""
        return "grid point(s)" if self.pair == GRIDS else f"{self.pair.child}(s)"


#: the layers an edit redraws, and how
LEVELS = {"grids": Redrawn("grids", "points", "parent", GRIDS, "n_points", "grid"),
          "blocks": Redrawn("blocks", "villages", "block", BLOCKS, "n_villages", None)}
#: the layers whose geometry an edit redraws (by moving their whole units)
REDRAWN = tuple(LEVELS)


def _of(r: Reassignment) -> Redrawn:
    return next(k for k in LEVELS.values() if k.pair == r.level)


def parse_outline(name: str, fid: str, geometry: Any) -> Any:
    """The drawn outline (GeoJSON, CRS84) as a valid polygon, or a 422 saying why not."""
    if name not in REDRAWN:
        raise InputError(f"{name} {fid}: only a grid's or a block's geometry is edited (by moving its grid points "
                         "or villages); the finer units a grid point is made of are not persisted yet")
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


def plan(fid: str, outline: Any, name: str = "grids") -> Reassignment:
    """The re-assignment of whole units ``outline`` asks of ``fid`` of layer ``name`` (read around it)."""
    k = LEVELS[name]
    parents, units = county().get(k.layer), county().get(k.units)
    pos = parents.locate_key(fid)
    now = _frame(parents, np.array([pos]), ["code", "parent"]).geometry.iloc[0]
    box = shapely.bounds(shapely.union(now, outline)).tolist()
    near = _frame(parents, parents.bbox_positions([tuple(box)]), ["code", "parent"])  # other villages' too: a
    wide = shapely.bounds(shapely.union_all(near.geometry.values)).tolist()
    # unit of theirs the outline takes breaks the border (named in the 409)
    pts = _units(k, units.bbox_positions([tuple(wide)]))
    pts = pts[pts["parent"].isin(set(near["code"]))]
    r = reassign(fid, outline, grids=near.reset_index(drop=True), points=pts.reset_index(drop=True), level=k.pair)
    if r.moves:
        r.broken += locked(list(r.grids)) if k.pair == GRIDS else []
    if r.moves and not r.broken:  # the bounds, on the parents' households after the moves
        r.broken += bound_breaks(_counts(r), k)
    return r


def _units(k: Redrawn, pos: np.ndarray) -> gpd.GeoDataFrame:
    """Rows ``pos`` of the units layer: ``code``, ``parent`` (their parent of ``k``, whatever the column)."""
    frame = _frame(county().get(k.units), pos, ["code", k.owner])
    return frame.rename(columns={k.owner: "parent"}) if k.owner != "parent" else frame


def locked(codes: list[str]) -> list[str]:
    """The locks rule on the grids ``codes`` a change would redraw (:mod:`gridgeo.store.locks`)."""
    store = current_app.extensions.get("store")
    return lock_breaks(Locks(store).active(codes)) if store is not None and codes else []


def preview(fid: str, r: Reassignment) -> dict[str, Any]:
    """What the re-assignment ``r`` of ``fid`` would do, not applied: the new outlines (GeoJSON, CRS84), the
    units moved, the rules it breaks and the change list it would record."""
    feats = [{"type": "Feature", "id": g, "geometry": shapely.geometry.mapping(geom), "properties": {"code": g}}
             for g, geom in sorted(r.grids.items())]
    return {"applied": False, "layer": _of(r).layer, "feature": fid,
            **({"grid": fid} if r.level == GRIDS else {}), "rules": {"broken": r.broken, "ok": not r.broken},
            "moves": [{"code": p, "from": a, "to": b} for p, (a, b) in sorted(r.moves.items())],
            "grids": {"type": "FeatureCollection", "features": feats},
            "changes": _changes(r) if r.moves and not r.broken else None}


#: an edit of one unit's attributes: (layer, code, the values before, the values set)
Edit = tuple[str, str, dict[str, Any], dict[str, Any]]


def apply(store: Store, fid: str, r: Reassignment) -> dict[str, Any]:
    """Write the re-assignment ``r`` of ``fid`` (its rules held): the version's row with its change list."""
    k = _of(r)
    message = (f"{k.layer} {fid}: redrawn, {len(r.moves)} {k.what} moved ("
               + ", ".join(f"{p} {a} -> {b}" for p, (a, b) in sorted(r.moves.items())[:5]) + ")")
    return write_changes(store, kind="edit", message=message, redraw=r, target=f"{k.layer}/{fid}")


def write_changes(store: Store, *, kind: str, message: str, edits: list[Edit] | None = None,
                  redraw: Reassignment | list[Reassignment] | None = None, target: str = "grids",
                  also: Callable[[Any, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """One change set: whole units moved (``redraw``: one re-assignment or one per layer, their rules held)
    and units' attributes set (``edits``), an audit row for each and one version (``kind``) in one
    transaction; then the served layers, /locate and the chains follow. Who may: ``geometry.write`` on
    every parent redrawn (the caller checked the attribute edits). ``also(cursor, version)``: more writes
    of the same transaction (a proposal marked accepted). The version's row with its change list."""
    edits = edits or []
    redraws = [] if redraw is None else [redraw] if isinstance(redraw, Reassignment) else redraw
    for r in redraws:
        _check(r, target)
    who = principal().label
    hh = county().collections.get("households")
    counts = [_counts(r) for r in redraws]
    changes = _attribute_changes(edits, _merged([_changes(r) for r in redraws]))
    with store.transaction() as cur:
        Versions(store).base_in(cur, author=who)
        for r, c in zip(redraws, counts, strict=True):
            _write_redraw(store, cur, r, c, hh=hh)
            store.audit(cur, who, f"{r.level.parent}.redraw", target,
                        before={p: a for p, (a, _) in r.moves.items()}, after={p: b for p, (_, b) in r.moves.items()})
        for name, fid, before, changed in edits:
            update_unit(store, cur, name, fid, changed)
            store.audit(cur, who, "unit.edit", f"{name}/{fid}", before={k: before.get(k) for k in changed},
                        after=changed)
        row = Versions(store).add_in(cur, kind=kind, author=who, changes=changes, message=message)
        if also is not None:
            also(cur, row)
    for r, c in zip(redraws, counts, strict=True):
        _follow(r, c, hh)
        log.info("%s redrew %s: %d %s moved", who, target, len(r.moves), _of(r).what)
    _follow_attributes(edits, who)
    return {**row, "changes": changes}


def _check(r: Reassignment, target: str) -> None:
    """409 on a broken rule or a locked grid, 401/403 on a parent the caller may not redraw."""
    if r.broken:
        raise ConflictError(f"{target}: the edit breaks {len(r.broken)} rule(s), nothing changed: "
                            + "; ".join(r.broken))
    for g in r.grids:
        require("geometry.write", current_app.extensions["chains"].chain(g), what=f"{_of(r).layer} {g}")
    held = locked(list(r.grids)) if r.level == GRIDS else []
    if held:
        raise ConflictError(f"{target}: the change would redraw {len(held)} locked grid(s), nothing changed: "
                            + "; ".join(held))


def _merged(lists: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One change list of several layers' (their levels side by side, households moved per level)."""
    if not lists:
        return None
    out: dict[str, Any] = {"levels": {}, "households": {"moved": {}}, "people": {}}
    for c in lists:
        out["levels"].update(c["levels"])
        out["households"]["moved"].update(c["households"].get("moved", {}))
    return out


def _write_redraw(store: Store, cur: Any, r: Reassignment, counts: dict[str, dict[str, Any]], *, hh: Any) -> None:
    k = _of(r)
    parents = county().get(k.layer)
    srid = int(parents.storage_epsg or 4326)
    column = getattr(getattr(parents, "t", None), "geom", "geom")
    for g, geom in r.grids.items():
        update_geometry(store, cur, k.layer, g, _stored(geom, parents), srid=srid, column=column)
        _set_counts(store, cur, k, g, counts[g], columns=parents.column_names)
    follow = k.households if hh is not None and k.households in hh.column_names else None
    move_units(store, cur, k.units, k.owner, r.moves, households=follow, by="point")


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


def regrouped(targets: dict[str, str], name: str = "grids") -> Reassignment:
    """The units of ``targets`` (code -> parent) moved back, the parents they leave and join redrawn."""
    k = LEVELS[name]
    parents, units = county().get(k.layer), county().get(k.units)
    mine = _units(k, np.array([units.locate_key(c) for c in targets]))
    involved = set(mine["parent"].astype(str)) | set(targets.values())
    near = _frame(parents, np.array([parents.locate_key(g) for g in sorted(involved)]), ["code", "parent"])
    box = tuple(shapely.bounds(shapely.union_all(near.geometry.values)).tolist())
    pts = _units(k, units.bbox_positions([box]))
    pts = pts[pts["parent"].isin(involved)].reset_index(drop=True)
    return regroup(targets, grids=near, points=pts, level=k.pair)


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


def _unit_households(k: Redrawn, codes: list[str]) -> dict[str, int]:
    """Households of each unit of ``codes``: a village's own count, a grid point's (:func:`_point_households`)."""
    if k.units == "points":
        return _point_households(county().get("points"), codes)
    units = county().get(k.units)
    if not codes or "households" not in units.column_names:
        return {c: 0 for c in codes}
    recs = _records(units, [units.locate_key(c) for c in codes], ["households"])
    return {c: int(r.get("households") or 0) for c, r in zip(codes, recs, strict=True)}


def _counts(r: Reassignment) -> dict[str, dict[str, Any]]:
    """Each changed parent's households and units before and after the moves (its units read from the
    layer), the units' codes after (a block's ``members``), and ``within_bounds`` after."""
    k = _of(r)
    units = county().get(k.units)
    out: dict[str, dict[str, Any]] = {}
    for g in r.grids:
        box = tuple(shapely.bounds(r.grids[g]).tolist())
        recs = _records(units, [int(p) for p in units.bbox_positions([box])], ["code", k.owner])
        after = sorted(str(x["code"]) for x in recs
                       if r.moves.get(str(x.get("code")), (None, x.get(k.owner)))[1] == g)
        before = [str(x["code"]) for x in recs if x.get(k.owner) == g]
        per = _unit_households(k, sorted(set(after) | set(before)))
        out[g] = {k.n_units: len(after), "households": sum(per[c] for c in after),
                  "households_before": sum(per[c] for c in before), "members": json.dumps(after)}
        bounds = _grid_bounds(g) if k.pair == GRIDS else _block_bounds()
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


def _block_bounds() -> tuple[float, float]:
    rules = policy.rules()
    return float(rules.block_min or 0), float(rules.block_max if rules.block_max is not None else math.inf)


def bound_breaks(counts: dict[str, dict[str, Any]], k: Redrawn = LEVELS["grids"]) -> list[str]:
    """The bounds rule: an edit may not take a parent outside its household bounds, nor farther outside."""
    out = []
    for g, c in sorted(counts.items()):
        b = c.get("bounds")
        if b is not None and policy.distance(c["households"], b) > policy.distance(c["households_before"], b):
            out.append(f"bounds: {k.pair.parent} {g} would hold {c['households']} households, outside its bounds "
                       f"[{b[0]:g}, {b[1]:g}] (it holds {c['households_before']})")
    return out


#: what an edit writes of a parent's counts, where the layer has the column (with its count of units)
COUNT_COLUMNS = ("households", "within_bounds", "members")


def _set_counts(store: Store, cur: Any, k: Redrawn, code: str, counts: dict[str, Any], *, columns: list[str]) -> None:
    sets = {c: counts[c] for c in (k.n_units, *COUNT_COLUMNS) if c in columns and c in counts}
    if sets:
        store.execute(cur, f'UPDATE "{k.layer}" SET {", ".join(f"{c!s} = ?" for c in sets)} WHERE code = ?',
                      [*sets.values(), code])


def _changes(r: Reassignment) -> dict[str, Any]:
    """The version's change list, as ``gridgeo diff`` writes one: parents reshaped, units and households moved."""
    k = _of(r)
    parents, units = county().get(k.layer), county().get(k.units)
    per = _unit_households(k, list(r.moves))
    moved = [{"code": p, "from": a, "to": b, "households": per.get(p, 0)} for p, (a, b) in sorted(r.moves.items())]
    return {"levels": {k.layer: {"retired": [], "created": [], "reshaped": sorted(r.grids),
                                 "kept": len(parents) - len(r.grids)},
                       k.units: {"retired": [], "created": [], "reshaped": [], "kept": len(units), "moved": moved}},
            "households": {"moved": {k.pair.parent: {"rows": len(moved), "households": sum(per.values())}}},
            "people": {}}


def _follow(r: Reassignment, counts: dict[str, dict[str, Any]], hh: Any) -> None:
    """The served layers, /locate and the chains after the write."""
    k = _of(r)
    parents, units = county().get(k.layer), county().get(k.units)
    loc: Any = current_app.extensions.get("locator")
    chains = current_app.extensions["chains"]
    for g, geom in r.grids.items():
        if isinstance(parents, LazyLayer):
            parents.forget(g)
        else:
            parents.replace(g, shapely.orient_polygons(geom, exterior_cw=False))
            parents.set_properties(g, {c: counts[g][c] for c in (k.n_units, *COUNT_COLUMNS)
                                       if c in parents.column_names and c in counts[g]})
        if isinstance(loc, Locator):
            loc.replace(k.layer, g, geom)
    if not isinstance(units, LazyLayer):
        units.set_properties_many({p: {k.owner: to} for p, (_, to) in r.moves.items()})
    for p, (_, to) in r.moves.items():
        if isinstance(units, LazyLayer):
            units.forget(p)
        old = chains.parents.get(p, ())
        chains.parents[p] = (to,) if k.owner == "parent" or not old else (old[0], to)  # a village: (township, block)
        if isinstance(loc, Locator):
            loc.moved(k.pair.child, p, k.pair.parent, to)
    if hh is not None and k.households is not None:
        _follow_households(hh, r)


def _follow_households(hh: Any, r: Reassignment) -> None:
    """The moved points' households served with their new grid."""
    if isinstance(hh, LazyLayer):
        hh.forget_all()
        return
    if "point" not in hh.column_names or "grid" not in hh.column_names:
        return
    points = np.asarray(hh.columns(["point"])["point"], dtype=object)
    hh.set_properties_many({hh.key_at(pos): {"grid": to} for p, (_, to) in r.moves.items()
                            for pos in np.flatnonzero(points == p).tolist()})
