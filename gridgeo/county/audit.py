"""Auditing a hand-drawn grid (or grid-point) layer against a county: ``gridgeo audit``.

Counties already have grids, drawn by hand in a desktop GIS. Before such a
layer is carried into a build (or a service) a person needs to know where it
breaks the rules the engine keeps: every village tiled by its grids (no gaps,
no overlaps, nothing outside), every household in exactly one grid, every grid
within the household bounds of its village's kind, every grid one piece, every
polygon valid. This module measures all of that, per unit and in totals.

What a unit's parent is
-----------------------
A grid's parent is a village, a grid point's parent a grid (the county's
built ``grids`` and ``exclusive`` layers). The parent comes from the layer's
parent column where it has one; a unit with no parent value, or one naming a
parent the county does not have, is given the parent holding most of its
area, and the report says so (``parent_from`` is ``"area"``).

How it is measured
------------------
The layer is read and checked by :func:`gridgeo.data.check.check_layer`
(codes present and unique, geometries non-empty polygons, axes, validity:
invalid polygons are repaired for measuring and named), then moved into the
county's metric CRS (:func:`gridgeo.data.crs.metric_crs` of the villages: the
CGCS2000 Gauss-Krüger zone), where the same check's overlap rule measures the
overlaps and this module the rest:

- a **gap** is a part of a parent covered by none of its units (a parent
  without any unit is one gap, all of it);
- **outside** is the part of a unit beyond its parent;
- a household lies where its point lies (a building: its point on surface,
  :func:`gridgeo._geom.containing`); it is **in no unit** when that point is in
  no unit but inside a parent, **in several** when it is inside two or more
  units. A building footprint with at least :data:`SPLIT_SHARE` of its area in
  each of two or more units is **split** (a warning: it still counts once);
- **size**: the households of a unit against ``CountyRules.bounds_for(kind)``
  (``grid`` or ``point`` bounds) of its village's kind: ``below``, ``inside``
  or ``above``; an exclusive grid (``kind`` column ``exclusive``, as the
  build's ``exclusive`` layer has) and the points of one have no lower bound,
  as the build draws them;
- **contiguity**: the number of parts of each unit.

Gaps, overlaps and outside parts at or below ``area_tol`` m² are ignored;
those narrower than ``snap`` metres are slivers (a warning, as in
``gridgeo check``). Everything else found is a rule broken: the layer is
clean only when there is none (``gridgeo audit`` exits 0, else 3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing, make_valid_array, polygonal, polygonal_parts
from gridgeo.county.rules import CountyRules, within_bounds
from gridgeo.county.sources import Items, column, items, metric_geoms
from gridgeo.data import crs as _crs
from gridgeo.data._check_rules import RULES, Problem, rule_overlaps
from gridgeo.data.check import CheckReport, check_layer
from gridgeo.data.io import list_layers, read_layer
from gridgeo.data.schema import SCHEMAS
from gridgeo.errors import InputError, SchemaError, UsageError

log = logging.getLogger(__name__)

__all__ = ["AUDIT_LEVELS", "SPLIT_SHARE", "AuditReport", "Start", "StartFrom", "audit_file", "audit_layer",
           "read_county", "start_grids"]

GArray = NDArray[np.object_]

#: the level audited -> the county layers its parents come from
AUDIT_LEVELS: dict[str, tuple[str, ...]] = {"grids": ("villages",), "points": ("grids", "exclusive")}
#: share of a building footprint that must lie in each of two units for it to count as split between them
SPLIT_SHARE = 0.01
#: the code and parent columns of a hand-drawn grid or point layer (gridgeo.data.schema, kinds grids and points)
CODE_ALIASES: tuple[str, ...] = SCHEMAS["grids"].columns[0].aliases
PARENT_ALIASES: dict[str, tuple[str, ...]] = {k: SCHEMAS[k].columns[1].aliases for k in ("grids", "points")}


@dataclass
class Parents:
    """The parents units are audited against (metric CRS), each with its village kind and bounds."""

    codes: list[str]
    geoms: GArray
    kinds: list[str | None]
    exclusive: NDArray[np.bool_]  # exclusive grids: their points have no lower bound (as the build draws them)


@dataclass
class County:
    """What an audit needs of a county: the metric CRS, the parents of the level and the households."""

    path: str
    built: bool
    metric: pyproj.CRS
    parents: Parents
    households: Items
    footprints: bool  # the households are building footprints (a split can be seen), not points


@dataclass
class AuditReport:
    """Everything :func:`audit_layer` found: per unit, per finding, and the totals."""

    file: str | None
    layer: str | None
    level: str
    county: str
    metric_crs: str | None
    code_column: str | None = None
    parent_column: str | None = None
    usable: bool = True
    check: CheckReport | None = None
    units: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    outside: list[dict[str, Any]] = field(default_factory=list)
    households: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No rule broken: every finding left is a sliver or a split building (warnings)."""
        return self.usable and not self.broken()

    def broken(self) -> dict[str, int]:
        """How many of each rule are broken (only kinds with at least one)."""
        hh = self.households
        units = self.units
        counts = {
            "gaps": sum(not g["sliver"] for g in self.gaps),
            "overlaps": sum(not o["sliver"] for o in self.overlaps),
            "outside": sum(not o["sliver"] for o in self.outside),
            "households_in_no_unit": len(hh.get("in_no_unit", [])),
            "households_in_several": len(hh.get("in_several", [])),
            "below_bounds": sum(u["size"] == "below" for u in units),
            "above_bounds": sum(u["size"] == "above" for u in units),
            "multipart": sum(u["parts"] > 1 for u in units),
            "invalid": sum(u["invalid"] is not None for u in units),
            "unknown_parent": sum(u["parent_from"] == "unknown" for u in units),
        }
        return {k: v for k, v in counts.items() if v}

    def totals(self) -> dict[str, Any]:
        hh = self.households
        return {
            "units": len(self.units),
            "parents": len({u["parent"] for u in self.units if u["parent"] is not None}),
            "parents_from_area": sum(u["parent_from"] != "column" for u in self.units),
            "gaps": _area_total(self.gaps),
            "overlaps": _area_total(self.overlaps),
            "outside": _area_total(self.outside),
            "households": {k: hh.get(k, 0) for k in ("total", "in_units", "outside_parents")}
            | {k: len(hh.get(k, [])) for k in ("in_no_unit", "in_several", "split_buildings")},
            "size": {s: sum(u["size"] == s for u in self.units) for s in ("below", "inside", "above")},
            "multipart": sum(u["parts"] > 1 for u in self.units),
            "invalid": sum(u["invalid"] is not None for u in self.units),
            "broken": self.broken(),
        }

    def summary(self) -> str:
        """The one line ``gridgeo audit`` prints."""
        name = f"{self.file}" + (f" (layer {self.layer})" if self.layer else "")
        if not self.usable:
            why = self.check.unusable_message(what="unit", hint=False) if self.check else None
            return f"audit {name}: not usable: {why}"
        t = self.totals()
        hh = t["households"]
        s = t["size"]
        verdict = "clean" if self.clean else "breaks rules: " + ", ".join(f"{v} {k}" for k, v in self.broken().items())
        return (f"audit {name}: {t['units']} {self.level} in {t['parents']} parents; "
                f"{t['gaps']['count']} gaps ({t['gaps']['area_m2']:,.1f} m²), "
                f"{t['overlaps']['count']} overlaps ({t['overlaps']['area_m2']:,.1f} m²), "
                f"{t['outside']['count']} outside ({t['outside']['area_m2']:,.1f} m²); households "
                f"{hh['in_no_unit']} in none, {hh['in_several']} in several, {hh['split_buildings']} split; "
                f"size {s['below']} below / {s['inside']} inside / {s['above']} above; "
                f"{t['multipart']} multi-part, {t['invalid']} invalid: {verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "layer": self.layer, "level": self.level, "county": self.county,
            "metric_crs": self.metric_crs, "code_column": self.code_column, "parent_column": self.parent_column,
            "usable": self.usable, "clean": self.clean, "notes": list(self.notes),
            "totals": self.totals() if self.usable else None,
            "units": self.units, "gaps": self.gaps, "overlaps": self.overlaps, "outside": self.outside,
            "households": self.households,
            "check": None if self.check is None else {
                "summary": self.check.by_kind(), "repaired": self.check.repaired,
                "problems": [p.to_dict() for p in self.check.problems]},
        }


def _area_total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(rows), "slivers": sum(r["sliver"] for r in rows),
            "area_m2": round(float(sum(r["area_m2"] for r in rows)), 3)}


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def read_county(path: str | Path, *, level: str = "grids", rules: CountyRules | None = None) -> County:
    """The parents of ``level`` and the households of a built county or an input county.

    A built county (``gridgeo build``) has a ``households`` layer (one row per
    building or household point, with its ``households`` count); an input
    county (``gridgeo synth``, or one's own GeoPackage) has ``households``
    points or ``buildings`` (counted as a build counts them:
    :func:`gridgeo.county.sources.items`).

    Raises
    ------
    UsageError
        An unknown level.
    InputError
        No ``villages`` layer; ``points`` against a county without a built ``grids`` layer.
    """
    if level not in AUDIT_LEVELS:
        raise UsageError(f"unknown level {level!r}; one of {', '.join(AUDIT_LEVELS)}")
    rules = rules or CountyRules()
    have = list_layers(path)
    if "villages" not in have:
        raise InputError(f"no villages layer (layers are {', '.join(have)}); give a built or an input county",
                         path=path)
    vil = read_layer(path, layer="villages", kind="villages")
    if not len(vil):
        raise InputError("the villages layer has no features", path=path)
    metric = _crs.metric_crs(vil)
    built = "grids" in have and "households" in have and "points" in have
    if level == "grids":
        # an input county's villages are as drawn: repaired (for measuring only) so that differences work
        vg = make_valid_array(metric_geoms(vil, metric))
        parents = Parents([str(c) for c in vil["code"]], vg, column(vil, "kind"), np.zeros(len(vil), dtype=bool))
    else:
        parents = _grid_parents(path, have, vil, metric)
    hh, footprints = _households(path, have, rules, metric)
    return County(path=str(path), built=built, metric=metric, parents=parents, households=hh, footprints=footprints)


def _grid_parents(path: str | Path, have: Sequence[str], vil: gpd.GeoDataFrame, metric: pyproj.CRS) -> Parents:
    """The built grids and exclusive grids, each with its village's kind."""
    if "grids" not in have:
        raise InputError(f"auditing points needs a built county (a grids layer); layers are {', '.join(have)}",
                         path=path)
    kind_of = dict(zip([str(c) for c in vil["code"]], column(vil, "kind"), strict=True))
    codes: list[str] = []
    geoms: list[GArray] = []
    kinds: list[str | None] = []
    excl: list[bool] = []
    for name in AUDIT_LEVELS["points"]:
        if name not in have:
            continue
        g = read_layer(path, layer=name)
        codes += [str(c) for c in g["code"]]
        geoms.append(metric_geoms(g, metric) if len(g) else np.zeros(0, dtype=object))
        kinds += [kind_of.get(str(p)) for p in column(g, "parent")]
        excl += [name == "exclusive"] * len(g)
    return Parents(codes, np.concatenate(geoms) if geoms else np.zeros(0, dtype=object), kinds,
                   np.asarray(excl, dtype=bool))


def _households(path: str | Path, have: Sequence[str], rules: CountyRules, metric: pyproj.CRS) -> tuple[Items, bool]:
    """The households as weighted items (metric CRS), and whether they are footprints."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name in ("households", "buildings"):
        if name in have:
            layers[name] = read_layer(path, layer=name, kind=name)
            break
    ids = column(layers["households"], "source_id") if "households" in layers else None
    it = items(layers, rules, metric)
    if ids is not None and any(v is not None for v in ids):  # a built county's rows name their building
        it.ids[:] = [str(v) if v is not None else it.ids[i] for i, v in enumerate(ids)]
    footprints = bool(len(it.geoms)) and bool(np.any(np.isin(shapely.get_type_id(it.geoms), [3, 6])))
    return it, footprints


def _find(columns: Sequence[str], given: str | None, aliases: Sequence[str], what: str, path: str) -> str | None:
    """The column holding ``what``: the one given (it must exist), else the first alias present (any case)."""
    if given is not None:
        if given not in columns:
            raise SchemaError(f"{what} column {given!r} not found; columns are {list(columns)}", path=path)
        return given
    lower = {c.lower(): c for c in columns}
    return next((lower[a.lower()] for a in aliases if a.lower() in lower), None)


def _columns(gdf: gpd.GeoDataFrame, code_col: str | None, parent_col: str | None, *, level: str, path: str,
             option: str = "--code") -> tuple[str, str | None]:
    """The code column (required) and the parent column (None when there is none) of a layer of units."""
    cols = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    code = _find(cols, code_col, CODE_ALIASES, "code", path)
    if code is None:
        raise SchemaError(f"no code column (tried {', '.join(CODE_ALIASES)}); name it with {option}; columns are "
                          f"{cols}", path=path)
    return code, _find(cols, parent_col, PARENT_ALIASES[level], "parent", path)


def _read_units(path: str | Path, *, level: str, layer: str | None, crs: object | None, datum: str | None,
                encoding: str | None) -> gpd.GeoDataFrame:
    """The layer as read; a multi-layer file without ``layer`` gives the layer named after the level."""
    if layer is None:
        names = list_layers(path)
        if len(names) > 1 and level in names:
            layer = level
    return read_layer(path, layer=layer, crs=crs, datum=datum, encoding=encoding)


# --------------------------------------------------------------------------------------
# the audit
# --------------------------------------------------------------------------------------
def audit_file(path: str | Path, county: str | Path, *, level: str = "grids", layer: str | None = None,
               code_col: str | None = None, parent_col: str | None = None, rules: CountyRules | None = None,
               crs: object | None = None, datum: str | None = None, encoding: str | None = None,
               area_tol: float = 1.0, snap: float = 2.0) -> AuditReport:
    """Read ``path`` (any format :func:`gridgeo.data.io.read_layer` reads) and :func:`audit_layer` it."""
    gdf = _read_units(path, level=level, layer=layer, crs=crs, datum=datum, encoding=encoding)  # the layer's
    c = read_county(county, level=level, rules=rules)  # errors first: it is the quicker read
    return audit_layer(gdf, c, level=level, code_col=code_col, parent_col=parent_col, rules=rules,
                       area_tol=area_tol, snap=snap, path=str(path))


def audit_layer(gdf: gpd.GeoDataFrame, county: County, *, level: str = "grids", code_col: str | None = None,
                parent_col: str | None = None, rules: CountyRules | None = None, area_tol: float = 1.0,
                snap: float = 2.0, path: str | None = None) -> AuditReport:
    """Audit one layer of units against ``county`` (see the module notes).

    Raises
    ------
    SchemaError
        No code column (by ``code_col`` or an alias), or a named column missing.
    InputError
        The layer has no features.
    """
    src = path or str(gdf.attrs.get("source") or "layer")
    code, parent = _columns(gdf, code_col, parent_col, level=level, path=src)
    rep = AuditReport(file=src, layer=gdf.attrs.get("layer"), level=level, county=county.path,
                      metric_crs=county.metric.to_string(), code_column=code, parent_column=parent)
    checked = check_layer(gdf, id_col=code, parent_col=parent, area_tol=area_tol, snap=snap, path=src,
                          layer=rep.layer, rules=RULES, metric_rules=())
    rep.check = checked.report
    if not checked.report.usable:
        rep.usable = False
        return rep
    _measure(rep, checked.gdf, county, code=code, parent=parent, rules=rules or CountyRules(),
             area_tol=area_tol, snap=snap)
    return rep


@dataclass
class _Work:
    """The units in the metric CRS and what the measures share."""

    codes: list[str]
    geoms: GArray
    parent: NDArray[np.int64]  # index into county.parents (-1: none)
    to_lonlat: pyproj.Transformer
    area_tol: float
    snap: float

    def where(self, geom: Any) -> list[float] | None:
        if geom is None or shapely.is_empty(geom):
            return None
        pt = shapely.point_on_surface(geom)
        lon, lat = self.to_lonlat.transform(pt.x, pt.y)
        return [round(float(lon), 6), round(float(lat), 6)]

    def finding(self, geom: Any, **kw: Any) -> dict[str, Any]:
        area = float(shapely.area(geom))
        perim = float(shapely.length(geom))
        width = 2 * area / perim if perim > 0 else 0.0
        return {**kw, "area_m2": round(area, 3), "width_m": round(width, 3), "sliver": width < self.snap,
                "location": self.where(geom)}


def _measure(rep: AuditReport, gdf: gpd.GeoDataFrame, county: County, *, code: str, parent: str | None,
             rules: CountyRules, area_tol: float, snap: float) -> None:
    """Every measure of the module notes, on the checked (repaired) layer."""
    metric = county.metric
    m = gdf.to_crs(metric)
    geoms = make_valid_array(np.asarray(m.geometry.values, dtype=object))  # projecting may make a ring self-touch
    w = _Work(codes=[str(v).strip() for v in m[code]], geoms=geoms, parent=np.full(len(m), -1, dtype=np.int64),
              to_lonlat=pyproj.Transformer.from_crs(metric, _crs.WGS84, always_xy=True), area_tol=area_tol,
              snap=snap)
    w.parent, parent_from = _assign_parents(w.codes, w.geoms, county.parents,
                                            column(m, parent) if parent else [None] * len(m))
    units = _unit_rows(w, county.parents, parent_from, kinds=column(m, "kind"))
    rep.units = units
    by_code = {u["code"]: u for u in units}
    for p in rep.check.problems if rep.check else []:
        if p.kind == "invalid" and p.id in by_code:
            by_code[p.id]["invalid"] = p.message
    rep.overlaps = _overlaps(m.set_geometry(list(w.geoms), crs=metric), code, area_tol=area_tol, snap=snap)
    for o in rep.overlaps:
        for a, b in ((0, 1), (1, 0)):
            by_code[o["units"][a]]["overlaps"].append({"other": o["units"][b], "area_m2": o["area_m2"]})
    rep.outside = _outside(w, county.parents, units)
    rep.gaps = _gaps(w, county.parents, units)
    rep.households = _household_measures(w, county, units, rules, level=rep.level)
    rep.notes += _notes(units, county)


def _unit_rows(w: _Work, parents: Parents, parent_from: list[str], *, kinds: list[Any]) -> list[dict[str, Any]]:
    """One record per unit, filled in by the measures; ``exclusive`` from a ``kind`` column saying so."""
    return [{"code": c, "parent": parents.codes[p] if p >= 0 else None, "parent_from": f,
             "exclusive": k is not None and str(k).strip().lower() == "exclusive",
             "parts": len(polygonal_parts(g)), "invalid": None, "overlaps": [], "gaps": [], "outside_m2": 0.0}
            for c, p, f, g, k in zip(w.codes, w.parent.tolist(), parent_from, w.geoms, kinds, strict=True)]


def _assign_parents(codes: Sequence[str], geoms: GArray, parents: Parents,
                    given: Sequence[Any]) -> tuple[NDArray[np.int64], list[str]]:
    """Each unit's parent index (-1: none) from the column, else the parent with most of its area, and how
    it was found: ``column``, ``area`` (no value) or ``unknown`` (a value the county does not have)."""
    index = {c: i for i, c in enumerate(parents.codes)}
    out = np.full(len(codes), -1, dtype=np.int64)
    how: list[str] = []
    for i, v in enumerate(given):
        text = None if v is None else str(v).strip() or None
        if text is not None and text in index:
            out[i] = index[text]
            how.append("column")
            continue
        how.append("unknown" if text is not None else "area")
        if text is not None:
            log.warning("unit %s names parent %s, which the county does not have; taken by area", codes[i], text)
    by_area = np.asarray([i for i, h in enumerate(how) if h != "column"], dtype=np.int64)
    out[by_area] = _most_area(geoms[by_area], parents.geoms)
    return out, how


def _most_area(geoms: GArray, parents: GArray) -> NDArray[np.int64]:
    """The parent holding most of each geometry (-1 when none overlaps it); the lower index wins a tie."""
    out = np.full(len(geoms), -1, dtype=np.int64)
    if not len(geoms) or not len(parents):
        return out
    gi, pi = shapely.STRtree(parents).query(geoms, predicate="intersects")
    areas = shapely.area(shapely.intersection(geoms[gi], parents[pi]))
    for k in np.lexsort((pi, -areas)).tolist():  # largest first, the lower parent first among equals
        if out[gi[k]] < 0 and areas[k] > 0:
            out[gi[k]] = pi[k]
    return out


def _hits(query: NDArray[np.int64], tree: NDArray[np.int64], n: int) -> list[NDArray[np.int64]]:
    """The tree indices each of ``n`` query geometries hit, from an STRtree query's two index arrays."""
    order = np.argsort(query, kind="stable")
    return np.split(tree[order], np.searchsorted(query[order], np.arange(1, n)))


def _overlaps(m: gpd.GeoDataFrame, code: str, *, area_tol: float, snap: float) -> list[dict[str, Any]]:
    """Overlaps between units, by the check's own rule (:func:`gridgeo.data._check_rules.rule_overlaps`)."""
    res = check_layer(m, id_col=code, area_tol=area_tol, snap=snap, rules=(), metric_rules=(rule_overlaps,))
    return [_overlap_row(p) for p in res.report.problems if p.kind in ("overlap", "sliver_overlap")]


def _overlap_row(p: Problem) -> dict[str, Any]:
    return {"units": [str(p.id), str(p.other)], "area_m2": p.area_m2, "sliver": p.kind == "sliver_overlap",
            "location": None if p.location is None else list(p.location)}


def _outside(w: _Work, parents: Parents, units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each unit's part beyond its parent (all of it when it has none)."""
    out: list[dict[str, Any]] = []
    for i, g in enumerate(w.geoms):
        p = int(w.parent[i])
        beyond = g if p < 0 else polygonal(shapely.difference(g, parents.geoms[p]))
        if beyond is None or float(shapely.area(beyond)) <= w.area_tol:
            continue
        row = w.finding(beyond, unit=w.codes[i], parent=units[i]["parent"])
        units[i]["outside_m2"] = row["area_m2"]
        out.append(row)
    return out


def _gaps(w: _Work, parents: Parents, units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parts of each parent covered by none of its units, each with the units bordering it."""
    members: dict[int, list[int]] = {}
    for i, p in enumerate(w.parent.tolist()):
        if p >= 0:
            members.setdefault(p, []).append(i)
    out: list[dict[str, Any]] = []
    for p, pg in enumerate(parents.geoms):
        mine = np.asarray(members.get(p, []), dtype=np.int64)
        rest = pg if not len(mine) else polygonal(shapely.difference(pg, shapely.union_all(w.geoms[mine])))
        for part in polygonal_parts(rest):
            if float(shapely.area(part)) <= w.area_tol:
                continue
            near = [int(i) for i in mine if shapely.dwithin(w.geoms[i], part, max(w.snap, 0.01))]
            row = w.finding(part, id=len(out), parent=parents.codes[p], bordering=[w.codes[i] for i in near])
            out.append(row)
            for i in near:
                units[i]["gaps"].append(row["id"])
    return out


def _household_measures(w: _Work, county: County, units: list[dict[str, Any]], rules: CountyRules, *,
                        level: str) -> dict[str, Any]:
    """Households per unit (and its size against the bounds), in no unit, in several, split buildings."""
    hh = county.households
    pts = np.asarray(shapely.point_on_surface(hh.geoms), dtype=object) if len(hh.geoms) else hh.geoms
    unit_of = containing(w.geoms, pts)
    in_parent = containing(county.parents.geoms, pts) >= 0
    weights = np.asarray(hh.weights, dtype=float)
    size = np.bincount(unit_of[unit_of >= 0], weights=weights[unit_of >= 0], minlength=len(units))
    for i, u in enumerate(units):
        _size(u, float(size[i]), county.parents, int(w.parent[i]), rules, level=level)
    none = np.flatnonzero((unit_of < 0) & in_parent)
    return {
        "source": hh.source, "footprints": county.footprints, "total": int(weights.sum()),
        "in_units": int(weights[unit_of >= 0].sum()),
        "outside_parents": int(weights[(unit_of < 0) & ~in_parent].sum()),
        "in_no_unit": [{"id": hh.ids[j], "households": int(weights[j]), "location": w.where(pts[j])} for j in none],
        "in_several": _in_several(w, pts, hh),
        "split_buildings": _split(w, hh) if county.footprints else [],
    }


def _size(u: dict[str, Any], households: float, parents: Parents, p: int, rules: CountyRules, *,
          level: str) -> None:
    """A unit's households, bounds and ``size`` (below / inside / above)."""
    kind = parents.kinds[p] if p >= 0 else None
    code = parents.codes[p] if p >= 0 else ""  # a village's (grids) or a grid's (points): 12 digits of village
    b = rules.bounds_of_village(kind, village=[code[:12]], township=[code[:9]])  # overrides by code
    lo, hi = b.grid if level == "grids" else b.point
    if u["exclusive"] or (p >= 0 and parents.exclusive[p]):
        lo = 0.0  # an exclusive grid (kind column) or a point of one: the build draws them with no lower bound
    u["households"] = round(households)
    u["kind"] = kind
    u["bounds"] = [lo, hi]
    u["size"] = "inside" if within_bounds(households, (lo, hi)) else "below" if households < lo else "above"


def _in_several(w: _Work, pts: GArray, hh: Items) -> list[dict[str, Any]]:
    """Households whose point lies inside two or more units (not merely on a shared edge)."""
    if not len(pts) or not len(w.geoms):
        return []
    pi, ui = shapely.STRtree(w.geoms).query(pts, predicate="within")
    hits = _hits(pi, ui, len(pts))
    out: list[dict[str, Any]] = []
    for j in np.flatnonzero(np.bincount(pi, minlength=len(pts)) >= 2):
        hit = sorted(w.codes[k] for k in hits[j])
        out.append({"id": hh.ids[j], "households": int(hh.weights[j]), "units": hit, "location": w.where(pts[j])})
    return out


def _split(w: _Work, hh: Items) -> list[dict[str, Any]]:
    """Footprints with at least :data:`SPLIT_SHARE` of their area in each of two or more units."""
    fi, ui = shapely.STRtree(w.geoms).query(hh.geoms, predicate="intersects")
    many = np.flatnonzero(np.bincount(fi, minlength=len(hh.geoms)) >= 2)
    hits = _hits(fi, ui, len(hh.geoms))
    out: list[dict[str, Any]] = []
    for j in many.tolist():
        cand = hits[j]
        area = float(shapely.area(hh.geoms[j]))
        if area <= 0:
            continue
        share = shapely.area(shapely.intersection(w.geoms[cand], hh.geoms[j])) / area
        keep = share >= SPLIT_SHARE
        if int(keep.sum()) >= 2:
            pairs = sorted(zip([w.codes[k] for k in cand[keep]], share[keep].tolist(), strict=True))
            out.append({"id": hh.ids[j], "households": int(hh.weights[j]), "units": [c for c, _ in pairs],
                        "shares": [round(s, 3) for _, s in pairs]})
    return out


def _notes(units: list[dict[str, Any]], county: County) -> list[str]:
    """What the reader must know about how the audit was made."""
    notes: list[str] = []
    by_area = [u["code"] for u in units if u["parent_from"] == "area"]
    unknown = [u["code"] for u in units if u["parent_from"] == "unknown"]
    if by_area:
        notes.append(f"{len(by_area)} unit(s) without a parent value were given the parent holding most of their "
                     f"area: {', '.join(by_area[:20])}" + (" ..." if len(by_area) > 20 else ""))
    if unknown:
        notes.append(f"{len(unknown)} unit(s) name a parent the county does not have (taken by area): "
                     f"{', '.join(unknown[:20])}" + (" ..." if len(unknown) > 20 else ""))
    if not county.footprints:
        notes.append("households are points: a building split between units cannot be seen")
    if county.households.source is None:
        notes.append("the county has no households or buildings: every unit has 0 households")
    return notes



# --------------------------------------------------------------------------------------
# a build's starting point (gridgeo build --start-from)
# --------------------------------------------------------------------------------------
#: village code -> level -> (geometries in the metric CRS, codes): what ``VillageTask.previous`` holds
Start = dict[str, dict[str, tuple[GArray, list[str]]]]


@dataclass(frozen=True)
class StartFrom:
    """Hand-drawn grids a build starts from (``gridgeo build --start-from GRIDS``): the file, its layer and
    its code column (both found as :func:`audit_file` finds them when not given)."""

    path: str | Path
    layer: str | None = None
    code_col: str | None = None

    def rules(self, rules: CountyRules, *, previous: str | Path | None) -> CountyRules:
        """The rules of a build from these grids: villager groups are not drawn as grids (these are).

        Raises
        ------
        UsageError
            With a previous build as well: both are what a village is re-drawn from.
        """
        if previous is not None:
            raise UsageError("a start (hand-drawn grids) and a previous build exclude each other: give one")
        if rules.use_groups:
            log.info("starting from %s: the villager groups are not used as grids (the hand-drawn grids are)",
                     self.path)
        return replace(rules, use_groups=False)

    def read(self, village_codes: Sequence[str], village_geoms: GArray, metric: pyproj.CRS) -> tuple[
            Start, dict[str, Any]]:
        """:func:`start_grids` of this file."""
        return start_grids(self.path, village_codes=village_codes, village_geoms=village_geoms, metric=metric,
                           layer=self.layer, code_col=self.code_col)


def start_grids(path: str | Path, *, village_codes: Sequence[str], village_geoms: GArray, metric: pyproj.CRS,
                layer: str | None = None, code_col: str | None = None) -> tuple[Start, dict[str, Any]]:
    """A hand-drawn grid layer as the start of a build, per village, and what the report says of it.

    Why: the build re-draws a village from its earlier grids (``--previous``:
    every unit keeps the grid it lies in where the rules allow), so a county's
    own grids can be that start and a redraw changes as little as it must.
    Each grid goes to the village of its parent column, else the village
    holding most of its area (as :func:`audit_layer` does). Its code is kept
    where it has the county's form (village code + 2 digits) and the new grid
    covers most of it (:func:`gridgeo.county.codes.match_previous`).

    Raises
    ------
    InputError, SchemaError
        The layer cannot be read, has no code column, or is not usable as
        ``gridgeo check`` sees it (duplicate codes, non-polygons, ...).
    """
    src = str(path)
    gdf = _read_units(path, level="grids", layer=layer, crs=None, datum=None, encoding=None)
    code, parent = _columns(gdf, code_col, None, level="grids", path=src, option="--start-code")
    checked = check_layer(gdf, id_col=code, parent_col=parent, path=src, layer=gdf.attrs.get("layer"),
                          rules=RULES, metric_rules=())
    message = checked.report.unusable_message(what="grid", hint=False)
    if message is not None:
        raise InputError(message, path=src)
    m = checked.gdf.to_crs(metric)
    geoms = make_valid_array(np.asarray(m.geometry.values, dtype=object))
    codes = [str(v).strip() for v in m[code]]
    parents = Parents(list(village_codes), village_geoms, [None] * len(village_codes),
                      np.zeros(len(village_codes), dtype=bool))
    where, how = _assign_parents(codes, geoms, parents, column(m, parent) if parent else [None] * len(m))
    members: dict[int, list[int]] = {}
    for i, v in enumerate(where.tolist()):
        if v >= 0:
            members.setdefault(v, []).append(i)
    start: Start = {village_codes[v]: {"grids": (geoms[np.asarray(idx)], [codes[i] for i in idx])}
                    for v, idx in sorted(members.items())}
    info = {"file": src, "layer": gdf.attrs.get("layer"), "grids": len(codes), "villages": len(start),
            "parents_from_area": sum(h != "column" for h in how), "outside_every_village": int(np.sum(where < 0))}
    log.info("%s: %d hand-drawn grid(s) start %d village(s)", src, len(codes), len(start))
    return start, info
