"""Every level as one clean polygonal coverage, valid in the CRS it is written in.

Why this stage exists
---------------------
Villages are built one by one in the metric CRS, so two neighbouring grids
in different villages (or two points cut by different splits) need not
share vertices along their common edge: a cut that ends on a village border
puts a vertex there that the grid across the border lacks. Such a layer is
not a clean coverage (``shapely.coverage_is_valid`` is false), and QGIS's
topology checker, PostGIS and every coverage union reject it. Reprojection to
the geographic output CRS can also turn a sliver that was valid in metres
into a self-intersection. Both are fixed here, on what is about to be
written, in the output CRS:

1. the finest pieces (grid points; where micro-grids or lanes are drawn, the
   atoms they and the points are made of, :mod:`gridgeo.county.micro`; a grid,
   exclusive grid or village with no finer unit stands for itself) are cleaned as one coverage
   (``shapely.coverage_clean``: near-coincident vertices snapped, overlaps
   merged into the neighbour with the longest shared border, every shared
   edge made identical);
2. coordinates are rounded to ``decimals`` (1e-7 degree, about 1 cm: what
   the service serves, so its rounding changes nothing), vertex by vertex,
   so a vertex shared before is shared after; where rounding breaks a
   polygon, the whole set is snap-rounded together instead
   (:func:`_snap_round`: all edges noded on the precision grid at once);
3. every coarser level is the coverage union of its members' pieces: grids
   and exclusive grids of their points (points, micro-grids and lanes of their
   atoms, where there are atoms), villages of their grids, blocks and
   townships of their villages. Each level then tiles its parent exactly
   and shares its parent's vertices, by construction.

:func:`verify_levels` then checks validity and ``coverage_is_valid`` per
level and raises :class:`~gridgeo.errors.GeometryError` naming the level and
the first units at fault, so nothing invalid is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo._geom import make_valid_array, polygonal_array
from gridgeo.county._pool import WorkerPool, trim_memory
from gridgeo.county._wire import Geometries
from gridgeo.errors import GeometryError

log = logging.getLogger(__name__)

__all__ = ["COVERAGE_LEVELS", "DECIMALS_DEGREES", "ROUNDING_M", "clean_levels", "verify_levels"]

GArray = NDArray[np.object_]

#: The layers that must each be a clean coverage; "grids" is checked together with "exclusive".
COVERAGE_LEVELS: tuple[str, ...] = ("areas", "townships", "blocks", "villages", "grids", "points", "micro_grids",
                                     "lanes")
#: Decimal places kept in a geographic output CRS (1e-7 degree is about 1 cm).
DECIMALS_DEGREES = 7
#: How far (m) rounding to :data:`DECIMALS_DEGREES` can move a vertex: half a unit of the last place,
#: on both axes, at a degree's longest (111.32 km). An area compared with unrounded input may differ
#: by up to about this times the perimeter.
ROUNDING_M = 0.5 * 10.0 ** -DECIMALS_DEGREES * 111_320.0 * 2 ** 0.5


@dataclass(frozen=True)
class _Pieces:
    """The finest pieces and, for each, the grid (or exclusive grid) and village it belongs to."""

    geoms: GArray
    point: NDArray[np.int64]  # row in the points layer, -1 for a piece that is a whole coarser unit or an atom
    lvl2: list[str | None]
    village: list[str]
    #: level -> the code each piece belongs to (None: not a piece of that level), for the atoms' levels
    keys: dict[str, list[str | None]] = field(default_factory=dict)


def clean_levels(layers: dict[str, gpd.GeoDataFrame], *, metric: pyproj.CRS,
                 decimals: int = DECIMALS_DEGREES, pool: WorkerPool | None = None,
                 areas: Mapping[str, NDArray[np.float64]] | None = None,
                 atoms: gpd.GeoDataFrame | None = None) -> dict[str, Any]:
    """Replace the geometry of every level by one clean coverage (module notes); return what changed.

    Parameters
    ----------
    layers
        The built layers in the output CRS: ``points``, ``grids``,
        ``exclusive``, ``villages``, ``blocks``, ``townships`` (changed in place).
    metric
        The county's metric CRS, for the area each unit gained or lost.
    decimals
        Decimal places kept (7 for degrees).
    pool
        Worker processes for the cleaning of a large county (:func:`_clean`);
        without it, in this process. The result does not depend on it.
    areas
        Level -> the metric area (m²) of each of its units before the
        cleaning, where the caller measured it already (the build's workers
        do, in the CRS the units were drawn in); the other levels are
        reprojected to ``metric`` and measured here.
    atoms
        Where micro-grids or lanes are drawn (:mod:`gridgeo.county.micro`): the
        common pieces of points, micro-grids and lanes of those villages, in
        the output CRS, with columns ``point``, ``micro_grid``, ``lane``,
        ``grid``, ``village``. They stand in for those villages' points as the
        finest pieces, and every one of the three levels is the union of its
        atoms, so each nests exactly in its grid.

    Returns
    -------
    dict
        ``snap_rounded`` (whether any snap-rounding was needed),
        ``max_area_change_m2`` per level and ``changed`` (units whose area
        moved by more than 1 m²).
    """
    pieces = _pieces(layers, atoms)
    if not len(pieces.geoms):
        return {"pieces": 0}
    given = areas or {}
    before = {lvl: given[lvl] if len(given.get(lvl, ())) == len(layers[lvl]) else _metric_area(layers[lvl], metric)
              for lvl in _present(layers)}  # areas, not a copy of the levels: memory
    cleaned, chunks = _clean(pieces, layers, pool=pool)
    trim_memory()  # the chunks' WKB and their copies are freed: give the pages back (a province's are a GiB)
    rounded, snap = _round(cleaned, decimals, again=(lambda: _coverage_clean(pieces.geoms)) if chunks > 1 else None,
                           pool=pool)
    del cleaned
    kept = _set_levels(layers, pieces, rounded)
    trim_memory()
    report: dict[str, Any] = {"pieces": len(rounded), "chunks": chunks, "snap_rounded": snap}
    for lvl, mask in kept.items():  # units below the grids that vanished in the cleaning (no households)
        if mask is not None:
            before[lvl] = before[lvl][mask]
            report.setdefault("vanished", {})[lvl] = int((~mask).sum())
    report.update(_area_changes(layers, before, metric))
    return report


def verify_levels(layers: Mapping[str, gpd.GeoDataFrame], *, pool: WorkerPool | None = None) -> dict[
        str, dict[str, int]]:
    """Check that every polygon is valid and each level is a clean coverage, as written.

    ``pool`` checks a large level in spatial chunks in parallel (:func:`_misnoded`); same answer.

    Raises
    ------
    GeometryError
        Naming the level, how many units are at fault, and the first codes.
    """
    out: dict[str, dict[str, int]] = {}
    for lvl in COVERAGE_LEVELS:
        if lvl not in layers or not len(layers[lvl]):
            continue
        frames = [layers[lvl]] + ([layers["exclusive"]] if lvl == "grids" and "exclusive" in layers else [])
        geoms = np.concatenate([np.asarray(f.geometry.values, dtype=object) for f in frames])
        codes = [str(c) for f in frames for c in f["code"]]
        bad = np.flatnonzero(~shapely.is_valid(geoms) | shapely.is_empty(geoms))
        if len(bad):
            why = shapely.is_valid_reason(geoms[bad[0]])
            raise GeometryError(f"{lvl}: {len(bad)} invalid polygon(s) about to be written, first "
                                f"{', '.join(codes[i] for i in bad[:5])} ({why}); this is a bug")
        mis = np.flatnonzero(_misnoded(geoms, pool=pool))
        if len(mis):
            raise GeometryError(f"{lvl}: {len(mis)} unit(s) do not share vertices with their neighbours "
                                f"(not a clean coverage), first {', '.join(codes[i] for i in mis[:5])}; this is a bug")
        out[lvl] = {"units": len(geoms), "invalid": 0, "misnoded": 0}
    return out


# --------------------------------------------------------------------------------------
def _present(layers: Mapping[str, gpd.GeoDataFrame]) -> list[str]:
    return [lvl for lvl in (*COVERAGE_LEVELS, "exclusive") if lvl in layers and len(layers[lvl])]


def _pieces(layers: Mapping[str, gpd.GeoDataFrame], atoms: gpd.GeoDataFrame | None = None) -> _Pieces:
    """Atoms, points of the other villages, then every grid / exclusive grid without either, then every
    village without any."""
    geoms, lvl2, village, keys = _atom_pieces(atoms)
    point: list[int] = [-1] * len(geoms)
    with_atoms = set(village)
    pts = layers.get("points")
    if pts is not None and len(pts):
        own = [i for i, v in enumerate(pts["village"]) if str(v) not in with_atoms]
        geoms += [pts.geometry.values[i] for i in own]
        point += own
        lvl2 += [str(pts["parent"].iloc[i]) for i in own]
        village += [str(pts["village"].iloc[i]) for i in own]
        for k in keys.values():
            k += [None] * len(own)
    have2 = set(lvl2)
    for name in ("grids", "exclusive"):
        g = layers.get(name)
        if g is None or not len(g):
            continue
        for code, parent, geom in zip(g["code"], g["parent"], g.geometry.values, strict=True):
            if str(code) not in have2:
                _add(geoms, point, lvl2, village, (geom, -1, str(code), str(parent)))
    have_v = set(village)
    vil = layers.get("villages")
    if vil is not None:
        for code, geom in zip(vil["code"], vil.geometry.values, strict=True):
            if str(code) not in have_v:
                _add(geoms, point, lvl2, village, (geom, -1, None, str(code)))
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    arr = polygonal_array(arr)
    for k in keys.values():
        k += [None] * (len(arr) - len(k))
    return _Pieces(arr, np.asarray(point, dtype=np.int64), lvl2, village, keys)


def _atom_pieces(atoms: gpd.GeoDataFrame | None) -> tuple[list[Any], list[str | None], list[str],
                                                           dict[str, list[str | None]]]:
    """The atoms as pieces: geometries, grid and village of each, and their point, micro-grid and lane codes."""
    if atoms is None or not len(atoms):
        return [], [], [], {}
    # an atom the move to the output CRS made invalid is repaired; one it collapsed (no area left) is dropped,
    # its neighbours close over it in the cleaning (coverage_clean takes polygons only)
    geoms = polygonal_array(make_valid_array(np.asarray(atoms.geometry.values, dtype=object)))
    keep = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms))
    if len(keep) < len(geoms):
        log.info("coverage: %d atom(s) with no area left in the output CRS dropped", len(geoms) - len(keep))
    keys = {lvl: [c if isinstance(c, str) else None for c in atoms[col].iloc[keep]]
            for lvl, col in (("points", "point"), ("micro_grids", "micro_grid"), ("lanes", "lane"))}
    return (list(geoms[keep]), [str(g) for g in atoms["grid"].iloc[keep]],
            [str(v) for v in atoms["village"].iloc[keep]], keys)


def _coverage_clean(geoms: GArray, snapping_distance: float = -1) -> GArray:
    """``shapely.coverage_clean`` (shapely >= 2.2, GEOS >= 3.14); module level, so a worker can run it."""
    out = shapely.coverage_clean(geoms, snapping_distance=snapping_distance)  # type: ignore[attr-defined]
    return np.asarray(out, dtype=object)


def _clean_chunk(geoms: Geometries) -> NDArray[np.object_]:
    """:func:`_coverage_clean` of one chunk, as WKB (a worker's job; the geometries travel as WKB).

    Why WKB made here: the worker's copies of the chunk are then freed and
    their pages given back (:func:`trim_memory`) before the result travels;
    otherwise each worker stays half a gigabyte larger through the rest of
    a province's build.
    """
    wkb = shapely.to_wkb(_coverage_clean(geoms.geoms))
    geoms.geoms = np.zeros(0, dtype=object)
    trim_memory()
    return np.asarray(wkb, dtype=object)


def _clean(p: _Pieces, layers: Mapping[str, gpd.GeoDataFrame], *,
           pool: WorkerPool | None = None) -> tuple[GArray, int]:
    """The pieces cleaned as one coverage; a large county in chunks of whole townships, then the seams.

    Why chunks: cleaning is linear in the vertices but single-threaded (about
    a quarter of a millisecond per grid point); a province's 200,000 points
    would take a minute on one core. Chunks of whole townships are cleaned in
    parallel, then every piece of a village that touches a village of another
    chunk is cleaned again, together (snapping only moves vertices that
    nearly coincide, which happens on the seam, so edges shared with the rest
    of its chunk stay as they are; :func:`_round` checks that, and cleans the
    whole county in one piece where it does not hold). The
    chunks depend on the pieces only (:data:`CHUNK_PIECES`), never on the
    number of workers: the same county gives the same result.
    """
    chunk_of = _chunks(p, layers)
    n = int(chunk_of.max()) + 1 if len(chunk_of) else 0
    if n <= 1:
        return _coverage_clean(p.geoms), 1
    members = [np.flatnonzero(chunk_of == k) for k in range(n)]
    parts = [np.asarray(shapely.from_wkb(r), dtype=object)
             for r in pool.map(_clean_chunk, (Geometries(p.geoms[m]) for m in members), in_flight=1)] \
        if pool is not None and pool.workers > 1 else [_coverage_clean(p.geoms[m]) for m in members]
    out = np.empty(len(p.geoms), dtype=object)
    for m, c in zip(members, parts, strict=True):
        out[m] = c
    seam = _seam(p, layers, chunk_of)
    if len(seam):
        out[seam] = _coverage_clean(out[seam])
    log.info("coverage: %d pieces cleaned in %d chunks, %d on the seams cleaned again", len(out), n, len(seam))
    return out, n


#: about this many pieces per chunk of whole townships (:func:`_clean`)
CHUNK_PIECES = 20_000


def _chunks(p: _Pieces, layers: Mapping[str, gpd.GeoDataFrame]) -> NDArray[np.int64]:
    """Chunk of each piece: whole townships along a Hilbert curve, about :data:`CHUNK_PIECES` pieces a chunk.

    Townships close on the curve are close on the ground, so a chunk is
    compact and its seam (:func:`_seam`) short.
    """
    vil = layers.get("villages")
    if vil is None or "parent" not in vil.columns or len(p.geoms) <= CHUNK_PIECES:
        return np.zeros(len(p.geoms), dtype=np.int64)
    town_of = {str(c): str(t) for c, t in zip(vil["code"], vil["parent"], strict=True)}
    towns = np.asarray([town_of.get(v, "") for v in p.village], dtype=object)
    names, inv, counts = np.unique(towns, return_inverse=True, return_counts=True)
    xy = shapely.get_coordinates(shapely.centroid(p.geoms))
    cx = np.bincount(inv, weights=xy[:, 0]) / counts
    cy = np.bincount(inv, weights=xy[:, 1]) / counts
    order = np.argsort(gpd.GeoSeries(shapely.points(cx, cy)).hilbert_distance().to_numpy(), kind="stable")
    k = max(1, round(len(p.geoms) / CHUNK_PIECES))
    mid = np.cumsum(counts[order]) - counts[order] / 2.0  # each township's middle along the curve, in pieces
    chunk = np.empty(len(names), dtype=np.int64)
    chunk[order] = np.minimum((mid * k / len(p.geoms)).astype(np.int64), k - 1)
    return chunk[inv]


def _seam(p: _Pieces, layers: Mapping[str, gpd.GeoDataFrame], chunk_of: NDArray[np.int64]) -> NDArray[np.int64]:
    """The pieces of every village that touches a village of another chunk."""
    vil = layers["villages"]
    vcodes = [str(c) for c in vil["code"]]
    vidx = {c: i for i, c in enumerate(vcodes)}
    piece_v = np.asarray([vidx.get(v, -1) for v in p.village], dtype=np.int64)
    vchunk = np.full(len(vcodes), -1, dtype=np.int64)
    vchunk[piece_v[piece_v >= 0]] = chunk_of[piece_v >= 0]
    geoms = np.asarray(vil.geometry.values, dtype=object)
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    cross = (vchunk[a] != vchunk[b]) & (vchunk[a] >= 0) & (vchunk[b] >= 0)
    on_seam = np.zeros(len(vcodes), dtype=bool)
    on_seam[a[cross]] = True
    return np.flatnonzero((piece_v >= 0) & on_seam[np.maximum(piece_v, 0)])


def _add(geoms: list[Any], point: list[int], lvl2: list[str | None], village: list[str],
         row: tuple[Any, int, str | None, str]) -> None:
    geoms.append(row[0])
    point.append(row[1])
    lvl2.append(row[2])
    village.append(row[3])


#: neighbourhood rings a local repair of the rounding may grow to (:func:`_repair_locally`)
REPAIR_RINGS = 3


def _round(geoms: GArray, decimals: int, *, again: Callable[[], GArray] | None = None,
           pool: WorkerPool | None = None) -> tuple[GArray, bool]:
    """Coordinates rounded vertex by vertex, then checked: valid polygons, one clean coverage.

    Where rounding breaks a polygon or the coverage (a sliver narrower than
    the grid), only the pieces at fault and their neighbours are snap-rounded
    again together (:func:`_repair_locally`). Where that does not settle it,
    ``again`` (the whole county cleaned in one piece, when it was cleaned in
    chunks) is tried the same way; the last resort snap-rounds every edge of
    the county together (:func:`_snap_round`). Returns the pieces and whether
    any snap-rounding was needed.
    """
    grid = 10.0 ** -decimals
    done = _round_checked(geoms, grid, pool=pool)
    if done is None and again is not None:
        log.info("coverage: the chunked cleaning does not round cleanly; cleaning the county in one piece")
        geoms = again()
        done = _round_checked(geoms, grid, pool=pool)
    if done is not None:
        return done
    log.info("coverage: rounding to %g breaks the coverage: snap-rounding every edge together", grid)
    return _snap_round(geoms, grid), True


def _round_checked(cleaned: GArray, grid: float, *, pool: WorkerPool | None = None) -> tuple[GArray, bool] | None:
    """Pointwise rounding, repaired locally where needed; None where the local repair does not settle it."""
    rounded = np.asarray(shapely.set_precision(cleaned, grid, mode="pointwise"), dtype=object)
    bad = _at_fault(rounded, pool=pool)
    if not len(bad):
        return rounded, False
    return (rounded, True) if _repair_locally(cleaned, rounded, bad, grid, pool=pool) else None


def _at_fault(rounded: GArray, *, pool: WorkerPool | None = None) -> NDArray[np.int64]:
    """Pieces that are invalid or empty, or whose edges do not match their neighbours'."""
    broken = ~shapely.is_valid(rounded) | shapely.is_empty(rounded)
    if broken.any():
        return np.flatnonzero(broken)
    return np.flatnonzero(_misnoded(rounded, pool=pool))


#: a coverage of at least this many polygons is checked in chunks, in parallel (:func:`_misnoded`)
PARALLEL_CHECK = 20_000


def _misnoded(geoms: GArray, *, pool: WorkerPool | None = None) -> NDArray[np.bool_]:
    """Which polygons have an edge that does not match their neighbours' (``coverage_invalid_edges``).

    Why chunks: the check is single-threaded and a province's levels hold
    hundreds of thousands of polygons. A polygon's answer depends only on the
    polygons whose envelopes meet its own (GEOS compares it with those), so
    each spatially compact chunk is checked together with that halo and only
    its own answers are kept: the same answer as one call.
    """
    if pool is None or pool.workers <= 1 or len(geoms) < PARALLEL_CHECK:
        return _misnoded_head((Geometries(geoms), len(geoms)))
    centre = shapely.centroid(shapely.envelope(geoms))
    order = np.argsort(gpd.GeoSeries(centre).hilbert_distance().to_numpy(), kind="stable")
    tree = shapely.STRtree(geoms)
    chunks = np.array_split(order, 4 * pool.workers)

    def tasks() -> Iterator[tuple[Geometries, int]]:  # made as the workers take them: held pickled two at a time
        for chunk in chunks:
            halo = np.setdiff1d(np.unique(tree.query(geoms[chunk])[1]), chunk)
            yield Geometries(geoms[np.concatenate([chunk, halo])]), len(chunk)

    out = np.zeros(len(geoms), dtype=bool)
    for chunk, flags in zip(chunks, pool.map(_misnoded_head, tasks(), in_flight=1), strict=True):
        out[chunk] = flags
    return out


def _misnoded_head(task: tuple[Geometries, int]) -> NDArray[np.bool_]:
    """``coverage_invalid_edges`` of a chunk and its halo, for the chunk's first ``n`` polygons (a worker's job)."""
    geoms, n = task[0].geoms, task[1]
    if len(geoms) == 0:
        return np.zeros(0, dtype=bool)
    flags = np.asarray(~shapely.is_empty(shapely.coverage_invalid_edges(geoms)), dtype=bool)[:n]
    del geoms
    task[0].geoms = np.zeros(0, dtype=object)
    trim_memory()  # as in _clean_chunk
    return flags


def _repair_locally(cleaned: GArray, rounded: GArray, bad: NDArray[np.int64], grid: float, *,
                    pool: WorkerPool | None = None) -> bool:
    """Snap-round the pieces at fault and their neighbours together, in place; True once all is clean.

    Why local: a province has hundreds of thousands of pieces and one sliver;
    snap-rounding the county takes minutes. The repaired pieces keep the
    rounded vertices they share with the pieces around them (the same
    rounding); where the repair adds a node on such an edge, the check finds
    it and the neighbourhood grows by a ring (up to :data:`REPAIR_RINGS`).
    """
    tree = shapely.STRtree(cleaned)
    local = bad
    for ring in range(1, REPAIR_RINGS + 1):
        _, near = tree.query(cleaned[local], predicate="intersects")
        local = np.union1d(local, near)
        rounded[local] = _snap_round(cleaned[local], grid)
        bad = _at_fault(rounded, pool=pool)
        log.info("coverage: %d piece(s) snap-rounded locally (ring %d); %d still at fault", len(local), ring,
                 len(bad))
        if not len(bad):
            return True
        local = np.union1d(local, bad)
    return False


def _snap_round(geoms: GArray, grid: float) -> GArray:
    """Every edge noded on the precision grid at once, faces given back to the piece they lie in.

    Why: snap-rounding all edges together (one overlay with a fixed
    precision model) yields faces whose shared edges are identical and whose
    coordinates are on the grid; a face goes to the piece holding a point of
    its interior, so every piece keeps its place.
    """
    lines = shapely.union_all(shapely.boundary(geoms), grid_size=grid)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))), dtype=object)
    inside = shapely.point_on_surface(faces)
    tree = shapely.STRtree(geoms)
    fi, gi = tree.query(inside, predicate="within")
    owner = np.full(len(faces), -1, dtype=np.int64)
    owner[fi[::-1]] = gi[::-1]  # the lowest-index piece wins where pieces touch
    order = np.argsort(owner, kind="stable")
    starts = np.searchsorted(owner[order], np.arange(len(geoms)), side="left")
    ends = np.searchsorted(owner[order], np.arange(len(geoms)), side="right")
    out = np.empty(len(geoms), dtype=object)
    for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        out[k] = shapely.coverage_union_all(faces[order[lo:hi]]) if hi > lo else shapely.Polygon()
    return out


def _unite(geoms: GArray, keys: Sequence[str | None]) -> dict[str, Any]:
    """key -> coverage union of the pieces with that key (None keys skipped)."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    out = {k: geoms[idx[0]] for k, idx in groups.items() if len(idx) == 1}
    many = [k for k, idx in groups.items() if len(idx) > 1]
    unions = np.empty(len(many), dtype=object)
    unions[:] = [shapely.coverage_union_all(geoms[groups[k]]) for k in many]
    out.update(zip(many, polygonal_array(unions).tolist(), strict=True))
    return {k: out[k] for k in groups}  # in the groups' order, as before


def _set_levels(layers: dict[str, gpd.GeoDataFrame], p: _Pieces, rounded: GArray) -> dict[
        str, NDArray[np.bool_] | None]:
    """Each level's geometry from the rounded pieces: points as they are, coarser levels as unions.

    Returns, per level made of atoms, the rows kept (None: all) where units vanished (:func:`_drop_vanished`).
    """
    kept: dict[str, NDArray[np.bool_] | None] = {}
    pts = layers.get("points")
    if pts is not None and len(pts):
        mine = p.point >= 0
        geo = np.empty(len(pts), dtype=object)
        geo[p.point[mine]] = rounded[mine]
        pts.set_geometry(list(geo), inplace=True, crs=pts.crs)
    for name, keys in p.keys.items():  # the atoms' levels: each unit the union of its atoms
        _replace(layers, name, _unite(rounded, keys))
        kept[name] = _drop_vanished(layers, name)
    lvl2 = _unite(rounded, p.lvl2)
    for name in ("grids", "exclusive"):
        _replace(layers, name, lvl2)
    vil = _unite(rounded, p.village)
    _replace(layers, "villages", vil)
    vgeoms = np.asarray([vil[str(c)] for c in layers["villages"]["code"]], dtype=object) \
        if "villages" in layers and len(layers["villages"]) else np.zeros(0, dtype=object)
    for name, key in (("blocks", "block"), ("townships", "parent")):
        if name in layers and len(layers[name]) and key in layers["villages"].columns:
            keys = [None if k is None or (isinstance(k, float) and np.isnan(k)) else str(k)
                    for k in layers["villages"][key]]
            _replace(layers, name, _unite(vgeoms, keys))
    return kept


def _drop_vanished(layers: dict[str, gpd.GeoDataFrame], name: str) -> NDArray[np.bool_] | None:
    """Drop the units of a level below the grids that the cleaning left empty and that hold no household.

    Why: a lane piece of a few square millimetres along a cut (no building, no household) can vanish
    into its neighbours in the cleaning; it is not a unit anyone answers for. One that holds households
    stays, and :func:`verify_levels` refuses it (a bug).
    """
    g = layers.get(name)
    if name == "points" or g is None or not len(g) or "households" not in g.columns:
        return None
    geo = np.asarray(g.geometry.values, dtype=object)
    gone = (shapely.is_missing(geo) | shapely.is_empty(geo)) & (g["households"].fillna(0).to_numpy() == 0)
    if not gone.any():
        return None
    log.warning("coverage: %d empty %s without households dropped (vanished in the cleaning): %s",
                int(gone.sum()), name, ", ".join(str(c) for c in g["code"][gone][:5]))
    layers[name] = g[~gone].reset_index(drop=True)
    return np.asarray(~gone)


def _replace(layers: dict[str, gpd.GeoDataFrame], name: str, by_code: Mapping[str, Any]) -> None:
    """A layer's geometries replaced by ``by_code`` where it has its code (kept where it has none)."""
    g = layers.get(name)
    if g is None or not len(g):
        return
    new = [by_code.get(str(c), old) for c, old in zip(g["code"], g.geometry.values, strict=True)]
    g.set_geometry(new, inplace=True, crs=g.crs)


def _metric_area(layer: gpd.GeoDataFrame, metric: pyproj.CRS) -> NDArray[np.float64]:
    """The area (m²) of each unit of ``layer``, measured in the metric CRS.

    (Not in the pool: reprojecting is about as fast as sending the geometries to a worker.)
    """
    return np.asarray(layer.geometry.to_crs(metric).area.to_numpy(), dtype=float)


def _area_changes(layers: Mapping[str, gpd.GeoDataFrame], before: Mapping[str, NDArray[np.float64]],
                  metric: pyproj.CRS) -> dict[str, Any]:
    """Largest area change per level (m², metric CRS) and how many units moved by more than 1 m²."""
    worst: dict[str, float] = {}
    changed: dict[str, int] = {}
    for lvl, a0 in before.items():
        d = np.abs(_metric_area(layers[lvl], metric) - a0)
        worst[lvl] = round(float(d.max()), 4) if len(d) else 0.0
        changed[lvl] = int((d > 1.0).sum())
    return {"max_area_change_m2": worst, "changed_over_1m2": changed}
