"""The rules of :func:`gridgeo.data.check.check_layer`: what a rule sees, what it returns, the rules.

Each rule is a callable that looks at one aspect of the layer (its
:class:`Ctx`) and returns the :class:`Problem` s it found, repairing what is
safe in ``ctx.gdf`` as it goes; :data:`RULES` run first, then the metric
CRS is chosen (:func:`prepare_metric`) and :data:`METRIC_RULES` measure in
metres. May import :mod:`gridgeo.errors`, :mod:`gridgeo._geom` and
:mod:`gridgeo.data.crs`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.validation import explain_validity

from gridgeo._geom import make_valid_array, make_valid_polygonal, polygonal, polygonal_parts
from gridgeo.data import crs as _crs


@dataclass
class Problem:
    """One thing wrong with one feature (or a pair of features)."""

    id: str | None
    kind: str
    severity: str
    message: str
    location: tuple[float, float] | None = None
    area_m2: float | None = None
    other: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["location"] = None if self.location is None else [self.location[0], self.location[1]]
        return {k: v for k, v in d.items() if v is not None or k in {"id", "kind", "message"}}


# --------------------------------------------------------------------------------------
# Context shared by the rules
# --------------------------------------------------------------------------------------
@dataclass
class Ctx:
    gdf: gpd.GeoDataFrame
    ids: np.ndarray
    parents: np.ndarray | None
    crs: pyproj.CRS | None
    area_tol: float
    snap: float
    repaired: dict[str, None] = field(default_factory=dict)
    metric: pyproj.CRS | None = None
    mgeoms: np.ndarray | None = None  # metric geometries (None where not polygonal)
    to_lonlat: pyproj.Transformer | None = None
    # slivers found by the metric rules: (problem, metric geometry, feature rows involved)
    slivers: list[tuple[Problem, Any, list[int]]] = field(default_factory=list)
    flagged: np.ndarray | None = None  # polygons whose edges do not match their neighbours'
    outside: set[int] = field(default_factory=set)  # rows outside the CRS's area of use: never projected

    @property
    def geoms(self) -> np.ndarray:
        return np.asarray(self.gdf.geometry.values)

    def set_geom(self, i: int | np.integer, geom: Any) -> None:
        values = self.geoms.copy()
        values[i] = geom
        self.gdf = self.gdf.set_geometry(gpd.GeoSeries(values, index=self.gdf.index, crs=self.gdf.crs))

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        if self.to_lonlat is None:
            return (round(float(x), 6), round(float(y), 6))
        lon, lat = self.to_lonlat.transform(x, y)
        return (round(float(lon), 6), round(float(lat), 6))

    def where(self, geom: Any) -> tuple[float, float] | None:
        """Location (lon/lat) of a metric geometry."""
        if geom is None or shapely.is_empty(geom):
            return None
        pt = shapely.point_on_surface(geom)
        return self.lonlat(pt.x, pt.y)

    def polygonal(self) -> np.ndarray:
        g = self.geoms
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        types = np.array([t if o else "" for t, o in zip(shapely.get_type_id(g), ok, strict=True)])
        return ok & np.isin(types, [3, 6])


Rule = Callable[[Ctx], list[Problem]]


def _width(geom: Any) -> float:
    """Mean width of a polygon (2·area/perimeter): small for slivers."""
    perim = shapely.length(geom)
    return float(2 * shapely.area(geom) / perim) if perim > 0 else 0.0


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------
def rule_crs(ctx: Ctx) -> list[Problem]:
    """A missing CRS: assume WGS84 when coordinates fit lon/lat, else an error."""
    if ctx.crs is not None:
        return []
    g = ctx.geoms
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    bounds = shapely.total_bounds(g[ok]) if ok.any() else np.array([0.0, 0.0, 0.0, 0.0])
    if _crs.looks_lonlat(bounds):
        ctx.crs = _crs.WGS84
        ctx.gdf = ctx.gdf.set_crs(_crs.WGS84, allow_override=True)
        return [Problem(None, "no_crs", "warning",
                        "layer has no CRS; coordinates fit lon/lat, so EPSG:4326 is assumed "
                        "(declare the real one with --crs, or --datum gcj02/bd09 for web-map tracings)")]
    return [Problem(None, "no_crs", "error",
                    f"layer has no CRS and its {projected_hint(bounds)} (bounds {np.round(bounds, 1).tolist()})")]


def projected_hint(bounds: Any) -> str:
    """What to say about metre coordinates read as (or without) a CRS: the zone to declare, where it shows.

    CGCS2000 Gauss-Krüger coordinates with the zone number in front of the easting (38 500 000) name their
    3-degree zone (EPSG:4513 + zone - 25); without it the central meridian cannot be told from the numbers.
    """
    minx, _, maxx, _ = (float(v) for v in bounds)
    zone = int(minx // 1_000_000)
    if zone == int(maxx // 1_000_000) and 25 <= zone <= 45:
        epsg = f"EPSG:{4513 + zone - 25} (CGCS2000 3-degree Gauss-Krüger zone {zone})"
    else:
        epsg = "EPSG:45xx (the CGCS2000 Gauss-Krüger zone, e.g. EPSG:4549 for central meridian 120E)"
    return f"coordinates look projected (metres), not lon/lat; declare the CRS with --crs {epsg}"


def rule_ids(ctx: Ctx) -> list[Problem]:
    """Missing and duplicate ids: every later step keys on them."""
    out: list[Problem] = []
    missing = np.flatnonzero([v is None for v in ctx.gdf["__id__"]])
    listed = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
    for i in missing:
        out.append(Problem(f"row {i}", "missing_id", "error",
                           f"no id (null or empty) in {len(missing)} row{'s' if len(missing) > 1 else ''} "
                           f"({listed}); give every feature an id"))
    skip = set(missing.tolist())
    counts = Counter(v for k, v in enumerate(ctx.ids) if k not in skip)
    for value, n in sorted(counts.items()):
        if n > 1:
            rows = np.flatnonzero(ctx.ids == value).tolist()
            out.append(Problem(value, "duplicate_id", "error", f"id {value!r} used by {n} features (rows {rows})"))
    return out


def rule_empty(ctx: Ctx) -> list[Problem]:
    """Null or empty geometries cover nothing and cannot be partitioned."""
    g = ctx.geoms
    bad = np.flatnonzero(shapely.is_missing(g) | shapely.is_empty(g))
    return [
        Problem(ctx.ids[i], "empty", "error",
                "geometry is null" if g[i] is None else "geometry is empty")
        for i in bad
    ]


def rule_types(ctx: Ctx) -> list[Problem]:
    """A boundary layer holds polygons; a point or line among them is an error."""
    g = ctx.geoms
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    if not ok.any():
        return []
    types = shapely.get_type_id(g)
    poly = np.isin(types, [3, 6]) & ok
    out = []
    for i in np.flatnonzero(ok & ~poly):
        gc = g[i]
        if shapely.get_type_id(gc) == 7:  # collection: keep polygonal parts
            parts = [p for p in shapely.get_parts(gc) if shapely.get_type_id(p) in (3, 6)]
            if parts:
                ctx.set_geom(i, shapely.multipolygons(shapely.get_parts(parts)) if len(parts) > 1 else parts[0])
                ctx.repaired[ctx.ids[i]] = None
                out.append(Problem(ctx.ids[i], "collection", "repaired",
                                   "geometry collection reduced to its polygons"))
                continue
        out.append(Problem(ctx.ids[i], "wrong_type", "error",
                           f"feature {ctx.ids[i]} is a {g[i].geom_type}; village boundaries "
                           "must be polygons"))
    return out


def rule_axes(ctx: Ctx) -> list[Problem]:
    """Coordinates outside the CRS's area of use; swapped lat/lon repaired.

    A feature whose bounds miss the area of use but fit it with x and y
    exchanged was written lat/lon: it is swapped back and reported.
    """
    if ctx.crs is None:
        return []
    margin = 1.0 if ctx.crs.is_geographic else 0.05
    minx, miny, maxx, maxy = _crs.area_of_use(ctx.crs, margin=margin)
    if ctx.crs.is_geographic:  # never beyond the globe itself
        minx, miny, maxx, maxy = max(minx, -180), max(miny, -90), min(maxx, 180), min(maxy, 90)
    b = np.asarray(shapely.bounds(ctx.geoms), dtype=float)
    valid = np.all(np.isfinite(b), axis=1)
    inside = valid & (b[:, 0] >= minx) & (b[:, 2] <= maxx) & (b[:, 1] >= miny) & (b[:, 3] <= maxy)
    swapped = valid & (b[:, 1] >= minx) & (b[:, 3] <= maxx) & (b[:, 0] >= miny) & (b[:, 2] <= maxy)
    out = []
    name = ctx.crs.to_string()
    for i in np.flatnonzero(valid & ~inside):
        if swapped[i]:
            cx, cy = (b[i, 0] + b[i, 2]) / 2, (b[i, 1] + b[i, 3]) / 2
            ctx.set_geom(i, shapely.transform(ctx.geoms[i], lambda c: c[:, ::-1]))
            ctx.repaired[ctx.ids[i]] = None
            out.append(Problem(ctx.ids[i], "swapped_axes", "repaired",
                               f"coordinates ({cx:.4f}, {cy:.4f}) lie outside {name}'s area of use but fit "
                               "it as (y, x); axes swapped back",
                               location=(round(cy, 6), round(cx, 6)) if ctx.crs.is_geographic else None))
        else:
            ctx.outside.add(int(i))
            out.append(Problem(ctx.ids[i], "out_of_area", "error", _outside(ctx, b[i], name, (minx, miny, maxx, maxy))))
    return out


def _outside(ctx: Ctx, b: np.ndarray, name: str, area: tuple[float, float, float, float]) -> str:
    """Why one feature's bounds ``b`` miss the area of use; metres read as degrees get the hint to declare."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    if ctx.crs is not None and ctx.crs.is_geographic and not _crs.looks_lonlat(b):
        return f"{projected_hint(b)} (around ({cx:.0f}, {cy:.0f}), read as {name})"
    minx, miny, maxx, maxy = area
    return (f"coordinates around ({cx:.4f}, {cy:.4f}) lie outside the area of use of "
            f"{name} (x {minx:.2f}..{maxx:.2f}, y {miny:.2f}..{maxy:.2f}); wrong CRS?")


def rule_validity(ctx: Ctx) -> list[Problem]:
    """Invalid geometries are repaired with ``make_valid`` and listed by id."""
    g = ctx.geoms
    ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
    bad = np.flatnonzero(ok & ~shapely.is_valid(g))
    out = []
    for i in bad:
        reason = explain_validity(g[i])
        polys = polygonal_parts(make_valid_polygonal(g[i]))
        loc = None
        m = re.search(r"\[([-\d.eE+]+) ([-\d.eE+]+)\]", reason)
        if m and ctx.crs is not None:
            loc = _as_lonlat(ctx.crs, float(m.group(1)), float(m.group(2)))
        if not polys:
            out.append(Problem(ctx.ids[i], "invalid", "error",
                               f"invalid geometry ({reason}) collapses to nothing when repaired", location=loc))
            continue
        new = polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)
        ctx.set_geom(i, new)
        ctx.repaired[ctx.ids[i]] = None
        out.append(Problem(ctx.ids[i], "invalid", "repaired",
                           f"invalid geometry ({reason}) repaired with make_valid into "
                           f"{len(polys)} polygon{'s' if len(polys) > 1 else ''}", location=loc))
    return out


def _as_lonlat(crs: pyproj.CRS, x: float, y: float) -> tuple[float, float]:
    if crs.equals(_crs.WGS84) or crs.is_geographic:
        return (round(x, 6), round(y, 6))
    tr = pyproj.Transformer.from_crs(crs, _crs.WGS84, always_xy=True)
    lon, lat = tr.transform(x, y)
    return (round(float(lon), 6), round(float(lat), 6))


def prepare_metric(ctx: Ctx) -> None:
    """Project polygonal features into the metric CRS once for the area rules."""
    if ctx.crs is None:
        return
    poly = ctx.polygonal()
    poly[list(ctx.outside)] = False  # metres read as degrees do not project (GEOS: "Shell empty")
    if not poly.any():
        return
    sub = ctx.gdf.geometry[poly]
    ctx.metric = _crs.metric_crs(sub)
    ctx.to_lonlat = pyproj.Transformer.from_crs(ctx.metric, _crs.WGS84, always_xy=True)
    m = np.full(len(ctx.gdf), None, dtype=object)
    # projecting can make a valid ring self-touch; repair the copy used for measuring only
    m[poly] = make_valid_array(np.asarray(sub.to_crs(ctx.metric).values))
    ctx.mgeoms = m
    # GEOS coverage validation is linear-ish and flags every polygon whose edges do
    # not match its neighbours'; only flagged polygons can overlap anything.
    idx = np.flatnonzero(poly & ~shapely.is_missing(m))
    flagged = np.zeros(len(m), dtype=bool)
    flagged[idx] = ~shapely.is_empty(shapely.coverage_invalid_edges(m[idx]))
    ctx.flagged = flagged


def rule_sliver_parts(ctx: Ctx) -> list[Problem]:
    """Parts of a multipolygon smaller than the area tolerance are slivers: dropped."""
    if ctx.mgeoms is None:
        return []
    out = []
    for i in np.flatnonzero([g is not None and shapely.get_type_id(g) == 6 for g in ctx.mgeoms]):
        parts = shapely.get_parts(ctx.mgeoms[i])
        areas = shapely.area(parts)
        keep = areas >= ctx.area_tol
        if keep.all() or not keep.any():
            continue
        orig = shapely.get_parts(ctx.geoms[i])
        if len(orig) != len(parts):
            continue
        kept = orig[keep]
        ctx.set_geom(i, kept[0] if len(kept) == 1 else shapely.MultiPolygon(list(kept)))
        ctx.mgeoms[i] = parts[keep][0] if keep.sum() == 1 else shapely.MultiPolygon(list(parts[keep]))
        ctx.repaired[ctx.ids[i]] = None
        out.append(Problem(ctx.ids[i], "sliver_part", "repaired",
                           f"dropped {int((~keep).sum())} part(s) below {ctx.area_tol:g} m² "
                           f"(total {areas[~keep].sum():.3f} m²)",
                           location=ctx.where(shapely.union_all(parts[~keep])),
                           area_m2=round(float(areas[~keep].sum()), 3)))
    return out


def rule_multipart(ctx: Ctx) -> list[Problem]:
    """Multipart features: often exclaves, sometimes digitising errors."""
    if ctx.mgeoms is None:
        return []
    out = []
    src_parts = shapely.get_num_geometries(ctx.geoms)
    for i, g in enumerate(ctx.mgeoms):
        if g is None or src_parts[i] < 2:
            continue  # count parts in the source, not in the projected copy
        parts = shapely.get_parts(g)
        if len(parts) < 2:
            continue
        areas = np.sort(shapely.area(parts))[::-1]
        out.append(Problem(ctx.ids[i], "multipart", "info",
                           f"{len(parts)} parts; areas {', '.join(f'{a:,.0f}' for a in areas[:5])} m²"
                           + (" ..." if len(parts) > 5 else ""),
                           location=ctx.where(parts[int(np.argmin(shapely.area(parts)))])))
    return out


def _pairs(ctx: Ctx, predicate: str, distance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    assert ctx.mgeoms is not None
    idx = np.flatnonzero([g is not None for g in ctx.mgeoms])
    geoms = ctx.mgeoms[idx]
    tree = shapely.STRtree(geoms)
    if distance is None:
        a, b = tree.query(geoms, predicate=predicate)  # type: ignore[call-overload]
    else:
        a, b = tree.query(geoms, predicate=predicate, distance=distance)  # type: ignore[call-overload]
    keep = a < b
    return idx[a[keep]], idx[b[keep]]


def rule_overlaps(ctx: Ctx) -> list[Problem]:
    """Overlaps between features above the area tolerance.

    Thin overlaps (narrower than ``snap``) are digitising noise: a warning.
    Wider ones would put a household in two villages: an error.
    """
    if ctx.mgeoms is None:
        return []
    a, b = _pairs(ctx, "intersects")
    if ctx.flagged is not None:  # a clean coverage has no overlaps to measure
        keep = ctx.flagged[a] | ctx.flagged[b]
        a, b = a[keep], b[keep]
    if len(a) == 0:
        return []
    inter = shapely.intersection(ctx.mgeoms[a], ctx.mgeoms[b], grid_size=None)
    areas = shapely.area(inter)
    out = []
    for k in np.flatnonzero(areas > ctx.area_tol):
        i, j = a[k], b[k]
        # the area only: neighbours that overlap also share edges, and those lines' length would make any
        # overlap look thin (a sliver) in the width 2·area/perimeter
        geom = polygonal(inter[k])
        w = _width(geom)
        sliver = w < ctx.snap
        prob = Problem(
            ctx.ids[i], "sliver_overlap" if sliver else "overlap", "warning" if sliver else "error",
            f"overlaps {ctx.ids[j]} by {areas[k]:,.1f} m² (about {w:.2f} m wide)"
            + ("; thinner than the snap tolerance" if sliver else ""),
            location=ctx.where(geom), area_m2=round(float(areas[k]), 3), other=str(ctx.ids[j]))
        out.append(prob)
        if sliver:
            ctx.slivers.append((prob, geom, [int(i), int(j)]))
    return out


def rule_gaps(ctx: Ctx) -> list[Problem]:
    """Holes in the union of all features: gaps inside a parent or between parents."""
    if ctx.mgeoms is None:
        return []
    idx = np.flatnonzero([g is not None for g in ctx.mgeoms])
    # Neighbours that should touch rarely do to the last bit (reprojection, rounding):
    # grow every feature by a millimetre before the union so that a gap open to the
    # outside only through a nanometre crack still counts as enclosed.
    eps = 1e-3
    if ctx.flagged is not None and not ctx.flagged.any():
        union = shapely.coverage_union_all(ctx.mgeoms[idx])  # edges match exactly: fast and exact
    else:
        union = shapely.union_all(shapely.buffer(ctx.mgeoms[idx], eps, quad_segs=1, join_style="mitre"))
    holes = [shapely.buffer(shapely.Polygon(r), eps, quad_segs=1, join_style="mitre")
             for p in shapely.get_parts(union) for r in p.interiors]
    holes = [h for h in holes if h.area > ctx.area_tol]
    if not holes:
        return []
    tree = shapely.STRtree(ctx.mgeoms[idx])
    out = []
    for h in holes:
        near = idx[tree.query(h, predicate="dwithin", distance=max(ctx.snap, 0.01))]
        # features inside the hole are enclaves of others, not its rim
        rim = [int(i) for i in near if not shapely.within(ctx.mgeoms[i], shapely.buffer(h, 1e-6))]
        if not rim:  # the hole is fully filled by features: no gap
            continue
        gap = shapely.difference(h, shapely.union_all(ctx.mgeoms[near]))
        area = float(shapely.area(gap))
        if area <= ctx.area_tol:
            continue
        w = _width(gap)
        sliver = w < ctx.snap
        rim_ids = sorted({str(ctx.ids[i]) for i in rim})
        where = ""
        if ctx.parents is not None:
            ps = sorted({str(ctx.parents[i]) for i in rim})
            where = f" inside parent {ps[0]}" if len(ps) == 1 else f" between parents {', '.join(ps)}"
        prob = Problem(
            rim_ids[0], "sliver_gap" if sliver else "gap", "warning",
            f"{'sliver ' if sliver else ''}gap of {area:,.1f} m² (about {w:.2f} m wide){where}, "
            f"bordered by {', '.join(rim_ids[:6])}{' ...' if len(rim_ids) > 6 else ''}",
            location=ctx.where(gap), area_m2=round(area, 3),
            other=", ".join(rim_ids[1:6]) or None)
        out.append(prob)
        if sliver:
            ctx.slivers.append((prob, gap, rim))
    return out


def fix_slivers(ctx: Ctx) -> None:
    """Resolve sliver overlaps and fill sliver gaps so that the layer tiles.

    An overlap narrower than ``snap`` stays with the smaller of the two features
    (the larger loses relatively less); a gap narrower than ``snap`` joins the
    bordering feature that shares the longest stretch of its rim. Every change
    turns the problem's severity into ``repaired`` and names what moved. Wide
    overlaps and real gaps are left alone: they need a person.
    """
    if ctx.mgeoms is None or not ctx.slivers:
        return
    to_src = pyproj.Transformer.from_crs(ctx.metric, ctx.crs, always_xy=True)
    changed: dict[int, Any] = {}
    for prob, geom, rows in ctx.slivers:
        if prob.kind == "sliver_overlap":
            i, j = rows
            loser = i if shapely.area(ctx.mgeoms[i]) >= shapely.area(ctx.mgeoms[j]) else j
            keeper = j if loser == i else i
            new = make_valid_polygonal(shapely.difference(ctx.mgeoms[loser], ctx.mgeoms[keeper]))
            if new is None:
                continue
            ctx.mgeoms[loser] = changed[loser] = new
            prob.message += f"; removed from {ctx.ids[loser]}"
        else:
            rim = shapely.boundary(geom)
            shared = [float(shapely.length(shapely.intersection(rim, shapely.buffer(ctx.mgeoms[r], 1e-3))))
                      for r in rows]
            taker = rows[int(np.argmax(shared))]
            new = make_valid_polygonal(shapely.union_all([ctx.mgeoms[taker], shapely.buffer(geom, 1e-4)]))
            if new is None:
                continue
            ctx.mgeoms[taker] = changed[taker] = new
            prob.message += f"; filled into {ctx.ids[taker]}"
        prob.severity = "repaired"
    for row, geom in sorted(changed.items()):
        back = shapely.transform(geom, lambda c: np.column_stack(to_src.transform(c[:, 0], c[:, 1])))
        ctx.set_geom(row, make_valid_polygonal(back))
        ctx.repaired[ctx.ids[row]] = None


def rule_enclaves(ctx: Ctx) -> list[Problem]:
    """Features lying inside another feature's hole (an enclave 飞地 of it)."""
    if ctx.mgeoms is None:
        return []
    idx = np.flatnonzero([g is not None for g in ctx.mgeoms])
    geoms = ctx.mgeoms[idx]
    has_holes = np.array([any(len(p.interiors) for p in shapely.get_parts(g)) for g in geoms])
    if not has_holes.any():
        return []
    hosts = idx[has_holes]
    shells = np.array([
        shapely.union_all([shapely.Polygon(p.exterior) for p in shapely.get_parts(ctx.mgeoms[i])])
        for i in hosts
    ])
    tree = shapely.STRtree(shells)
    out = []
    for i in idx:
        for k in tree.query(ctx.mgeoms[i], predicate="within"):
            host = hosts[k]
            if host == i:
                continue
            msg = f"lies inside a hole of {ctx.ids[host]}"
            if ctx.parents is not None and ctx.parents[i] != ctx.parents[host]:
                msg += f" (parent {ctx.parents[i]} inside parent {ctx.parents[host]})"
            out.append(Problem(ctx.ids[i], "enclave", "info", msg,
                               location=ctx.where(ctx.mgeoms[i]), other=str(ctx.ids[host])))
    return out


#: The rules, in the order they run. Repairs made by one are seen by the next.
RULES: tuple[Rule, ...] = (
    rule_crs,
    rule_ids,
    rule_empty,
    rule_types,
    rule_axes,
    rule_validity,
)
#: Rules that measure in metres; they run after the metric CRS is chosen.
METRIC_RULES: tuple[Rule, ...] = (
    rule_sliver_parts,
    rule_multipart,
    rule_overlaps,
    rule_gaps,
    rule_enclaves,
)
