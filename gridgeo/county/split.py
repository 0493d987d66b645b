"""Splitting heavy units: a street block holding more households than one grid point may hold.

A split unit's pieces gain vertices where split lines meet the unit's edge;
:func:`split_heavy` inserts the same vertices into the neighbouring units it
was given, so one village's units stay an exact coverage
(:func:`shapely.coverage_is_valid`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import Delaunay, QhullError, cKDTree

from gridgeo._geom import polygonal_parts
from gridgeo.county._faces import (
    FArray,
    GArray,
    GeomArrayLike,
    IArray,
    _as_geoms,
    _check_tiling,
    _coverage_union,
    _faces,
    _linear_parts,
    _merge_small,
    _reading_order,
)
from gridgeo.county.assign import assign_items
from gridgeo.errors import InputError, UsageError

log = logging.getLogger(__name__)

__all__ = ["split_heavy", "split_labelled"]


def split_heavy(
    units: GeomArrayLike,
    items: GeomArrayLike,
    weights: ArrayLike,
    item_unit: ArrayLike,
    *,
    max_weight: float,
    target: float | None = None,
) -> tuple[GArray, IArray, IArray]:
    """Split units whose items weigh more than ``max_weight``, between items, never through one.

    A street block of a county town can hold more households than one grid
    point may (a point is a building, a courtyard, a street face), and the
    partition engine cannot break a unit. So such a unit's items are bisected
    by weight -- at the weighted median along the longer side of the extent
    of their representative points, recursively, until each cluster weighs at
    most ``target`` or is a single item (a 150-household tower stays whole) --
    and each cluster gets the part of the unit nearer to its items than to any
    other cluster's: the Voronoi cells of its items' vertices. A building that
    still pokes into another cluster's cells takes its whole footprint with it,
    so split lines run between buildings and the pieces tile the unit exactly
    (all linework of one unit is noded once). A cluster region in several
    parts becomes several units.

    Parameters
    ----------
    units
        Unit polygons (e.g. :func:`street_blocks` faces).
    items
        Buildings (Polygons) or household points, the things weighed.
    weights
        Weight (households) of each item, finite and >= 0.
    item_unit
        Unit index of each item (:func:`assign_items`), -1 for none.
    max_weight
        Units heavier than this are split (> 0).
    target
        Largest cluster weight aimed at; default ``max_weight / 2`` so the
        engine has pieces to combine. ``0 < target <= max_weight``.

    Returns
    -------
    new_units : ndarray of Polygon
        Unsplit units unchanged and in order, each split unit replaced by its
        pieces (north to south, then west to east).
    parent : ndarray of int64
        Original unit index of each new unit (non-decreasing).
    new_item_unit : ndarray of int64
        New unit index of each item (-1 stays -1).
    """
    U, items_arr, w, iu, tgt = _split_inputs(units, items, weights, item_unit, max_weight=max_weight,
                                             target=target)
    pieces = _split_all(U, items_arr, w, iu, max_weight=max_weight, target=tgt)
    out, parent, new_item_unit = _renumber(U, pieces, iu)
    log.info("split_heavy: %d of %d units above %g split into %d pieces; %d units in all",
             len(pieces), len(U), max_weight, sum(len(p[0]) for p in pieces.values()), len(out))
    return out, parent, new_item_unit


#: unit -> (its pieces, the ids of its items, the piece of each of those items)
_Pieces = dict[int, tuple[GArray, IArray, IArray]]


def _split_inputs(units: GeomArrayLike, items: GeomArrayLike, weights: ArrayLike, item_unit: ArrayLike, *,
                  max_weight: float, target: float | None) -> tuple[GArray, GArray, FArray, IArray, float]:
    """:func:`split_heavy`'s arguments checked and as arrays: units, items, weights, item units, target."""
    U = _as_geoms(units, "units")
    items_arr = _as_geoms(items, "items")
    w = np.asarray(weights, dtype=float).reshape(-1)
    iu = np.asarray(item_unit).reshape(-1)
    if len(w) != len(items_arr) or len(iu) != len(items_arr):
        raise UsageError(f"{len(items_arr)} items need as many weights and item_unit values "
                         f"(got {len(w)} and {len(iu)})")
    if not np.all(np.isfinite(w) & (w >= 0)):
        raise InputError("item weights must be finite numbers >= 0")
    if not np.issubdtype(iu.dtype, np.integer):
        raise UsageError("item_unit must hold integer unit indices (-1 for none)")
    iu = iu.astype(np.int64)
    if len(iu) and (iu.min() < -1 or iu.max() >= len(U)):
        raise UsageError(f"item_unit must lie in -1..{len(U) - 1}")
    if not (isinstance(max_weight, int | float) and math.isfinite(max_weight) and max_weight > 0):
        raise UsageError(f"max_weight must be a finite number > 0, not {max_weight!r}")
    tgt = max_weight / 2.0 if target is None else target
    if not (isinstance(tgt, int | float) and math.isfinite(tgt) and 0 < tgt <= max_weight):
        raise UsageError(f"target must lie in (0, max_weight], not {target!r}")
    return U, items_arr, w, iu, tgt


def _split_all(U: GArray, items: GArray, w: FArray, iu: IArray, *, max_weight: float, target: float) -> _Pieces:
    """The pieces of every unit heavier than ``max_weight`` that can be split."""
    has = iu >= 0
    load = np.bincount(iu[has], w[has], minlength=len(U))
    heavy = np.flatnonzero(load > max_weight + 1e-9)
    by_unit = np.argsort(np.where(has, iu, len(U)), kind="stable")
    sorted_units = np.where(has, iu, len(U))[by_unit]
    lo = np.searchsorted(sorted_units, np.arange(len(U)), side="left")
    hi = np.searchsorted(sorted_units, np.arange(len(U)), side="right")
    pieces: _Pieces = {}
    for u in heavy.tolist():
        ids = by_unit[lo[u]:hi[u]]
        res = _split_unit(U[u], items[ids], w[ids], float(target))
        if res is not None:
            pieces[u] = (res[0], ids, res[1])
    return pieces


def _renumber(U: GArray, pieces: _Pieces, iu: IArray) -> tuple[GArray, IArray, IArray]:
    """Each split unit replaced by its pieces (neighbours given the new edge vertices); items renumbered."""
    has = iu >= 0
    new_units: list[Any] = []
    parent: list[int] = []
    offset = np.zeros(len(U), dtype=np.int64)
    for u in range(len(U)):
        offset[u] = len(new_units)
        if u in pieces:
            new_units.extend(pieces[u][0].tolist())
            parent.extend([u] * len(pieces[u][0]))
        else:
            new_units.append(U[u])
            parent.append(u)
    new_item_unit = np.where(has, offset[np.where(has, iu, 0)], -1).astype(np.int64)
    for u, (_, ids, local) in pieces.items():
        new_item_unit[ids] = offset[u] + local
    out = np.empty(len(new_units), dtype=object)
    out[:] = new_units
    if pieces:
        fresh = [_new_boundary_vertices(U[u], p[0]) for u, p in sorted(pieces.items())]
        origin = np.repeat(sorted(pieces), [len(f) for f in fresh]).astype(np.int64)
        _insert_vertices(out, np.concatenate(fresh), origin, np.asarray(parent, dtype=np.int64))
    return out, np.asarray(parent, dtype=np.int64), new_item_unit


def _bisect(xy: FArray, w: FArray, target: float) -> IArray:
    """Cluster label per item by recursive weighted bisection (labels in depth-first order).

    The cut is at the weighted median along the longer side of the cluster's
    extent; among equally good cuts the one nearest the middle by count wins,
    so weightless items (sheds) are not peeled off one at a time.
    """
    n = len(w)
    labels = np.zeros(n, dtype=np.int64)
    stack = [np.arange(n, dtype=np.int64)]
    nxt = 0
    while stack:
        idx = stack.pop()
        total = float(w[idx].sum())
        if total <= target + 1e-9 or len(idx) == 1:
            labels[idx] = nxt
            nxt += 1
            continue
        p = xy[idx]
        span = p.max(axis=0) - p.min(axis=0)
        ax = 0 if span[0] >= span[1] else 1
        s = idx[np.lexsort((idx, p[:, 1 - ax], p[:, ax]))]
        cw = np.cumsum(w[s])[:-1]
        ks = np.arange(1, len(s))
        k = int(ks[np.lexsort((np.abs(2 * ks - len(s)), np.round(np.abs(2 * cw - total), 9)))[0]])
        stack.append(s[k:])
        stack.append(s[:k])
    return labels


def _split_unit(unit: Any, geoms: GArray, w: FArray, target: float) -> tuple[GArray, IArray] | None:
    """Pieces of one heavy unit and the piece of each of its items, or None if it cannot split.

    The split lines are the Voronoi ridges between vertices of items in
    different clusters, read off the Delaunay triangulation (qhull via scipy:
    only those ridges are needed, not the cells). They are noded with the unit boundary and the outlines of the
    items they cross; each face then belongs to the item it lies in, else to
    the cluster of its nearest vertex -- which is the Voronoi region it lies
    in, since no split line crosses a face.
    """
    n = len(geoms)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if n < 2 or ok.sum() < 2:
        return None
    rp = np.zeros((n, 2))
    rp[ok] = shapely.get_coordinates(shapely.point_on_surface(geoms[ok]))
    labels = np.full(n, -1, dtype=np.int64)
    labels[ok] = _bisect(rp[ok], w[ok], target)
    if labels.max() < 1:
        return None
    return _cells(unit, geoms, labels, ok)


def _cells(unit: Any, geoms: GArray, labels: IArray, ok: NDArray[np.bool_]) -> tuple[GArray, IArray] | None:
    """The unit cut between items of different ``labels`` (-1: no label), never through an item.

    :func:`_split_unit` after its clustering; :func:`split_labelled` with labels given.
    """
    n = len(geoms)
    # sites: item vertices, deduplicated; a vertex shared by two items (terraced
    # houses) goes to the lower item index
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    order = np.lexsort((owner, coords[:, 1], coords[:, 0]))
    coords, owner = coords[order], owner[order]
    first = np.r_[True, np.any(coords[1:] != coords[:-1], axis=1)]
    coords, owner = coords[first], owner[first]
    site_label = labels[owner]
    if len(np.unique(site_label)) < 2:
        return None
    # local coordinates for qhull; four far corners keep every ridge between two
    # real sites finite (the hull is made of the corners alone)
    origin = coords.mean(axis=0)
    local = coords - origin
    ub = np.asarray(shapely.bounds(unit)).reshape(2, 2) - origin
    reach = 4.0 * float(max(np.abs(local).max(), np.abs(ub).max())) + 10.0
    corners = np.array([[-reach, -reach], [reach, -reach], [reach, reach], [-reach, reach]])
    try:
        tri = Delaunay(np.vstack([local, corners]))
    except QhullError:  # pragma: no cover - degenerate sites (qhull refuses); leave the unit whole
        log.warning("split_heavy: qhull could not triangulate a unit's %d vertices; unit left whole", len(coords))
        return None
    segs, used = _split_ridges(tri, site_label)
    split_lines = np.asarray(shapely.linestrings(segs + origin), dtype=object)

    # items a split line runs through bring their outline, so they stay whole
    poly = ok & np.isin(shapely.get_type_id(geoms), (3, 6)) & (shapely.area(geoms) > 0)
    pidx = np.flatnonzero(poly)
    hit = shapely.STRtree(split_lines).query(geoms[pidx], predicate="intersects")[0] if len(pidx) else []
    cut_ids = pidx[np.unique(hit)] if len(hit) else np.zeros(0, dtype=np.int64)
    lines = np.concatenate([split_lines, _linear_parts(geoms[cut_ids])]) if len(cut_ids) else split_lines
    faces = _faces(unit, lines, clean=True)  # split lines are plain segments; outlines cleaned above
    if len(faces) < 2:
        return None

    fpts = shapely.point_on_surface(faces)
    face_label = np.full(len(faces), -1, dtype=np.int64)
    if len(cut_ids):  # faces inside a cut item follow the item (lowest item index if several)
        f, c = shapely.STRtree(geoms[cut_ids]).query(fpts, predicate="within")
        o = np.lexsort((cut_ids[c], f))
        f, c = f[o], c[o]
        head = np.r_[True, f[1:] != f[:-1]] if len(f) else np.zeros(0, dtype=bool)
        face_label[f[head]] = labels[cut_ids[c[head]]]
    rest = np.flatnonzero(face_label < 0)
    if len(rest):
        _, nearest = cKDTree(local[used]).query(shapely.get_coordinates(fpts[rest]) - origin)
        face_label[rest] = site_label[used[nearest]]

    out: list[Any] = []
    for c in np.unique(face_label).tolist():
        sel = face_label == c
        out.extend(polygonal_parts(_coverage_union(faces[sel])) if sel.sum() > 1 else faces[sel].tolist())
    pieces = np.empty(len(out), dtype=object)
    pieces[:] = out
    place = _place(pieces, geoms, ok & ~np.isin(np.arange(n), cut_ids))
    held = np.bincount(place[place >= 0], minlength=len(pieces)).astype(float)
    if (held == 0).any():  # fragments holding nothing (the far side of a building) join a neighbour
        pieces, where = _merge_small(pieces, held, 1.0, "split_heavy")
        place = np.where(place >= 0, where[np.maximum(place, 0)], -1)
    rank = np.empty(len(pieces), dtype=np.int64)
    order = _reading_order(pieces)
    rank[order] = np.arange(len(pieces))
    pieces = pieces[order]
    place = np.where(place >= 0, rank[np.maximum(place, 0)], -1)
    _check_tiling(float(shapely.area(unit)), pieces, "split_heavy")

    lost = np.flatnonzero(place < 0)
    if len(lost):  # items that do not meet their unit at all: nearest piece
        near = shapely.STRtree(pieces).query_nearest(geoms[lost], all_matches=False)
        place[lost[near[0]]] = near[1]
        place[place < 0] = 0
    return pieces, place


def _place(pieces: GArray, geoms: GArray, simple: NDArray[np.bool_]) -> IArray:
    """Piece of each item: by representative point for ``simple`` items (no split line
    crosses them, so they lie in one piece), by :func:`assign_items` for the rest."""
    place = np.full(len(geoms), -1, dtype=np.int64)
    idx = np.flatnonzero(simple)
    if len(idx):
        i, j = shapely.STRtree(pieces).query(shapely.point_on_surface(geoms[idx]), predicate="intersects")
        o = np.lexsort((j, i))
        i, j = i[o], j[o]
        head = np.r_[True, i[1:] != i[:-1]] if len(i) else np.zeros(0, dtype=bool)
        place[idx[i[head]]] = j[head]
    rest = np.flatnonzero(place < 0)
    if len(rest):  # cut items, straddlers of the unit's edge, items outside it
        place[rest] = assign_items(pieces, geoms[rest])
    return place


def _split_ridges(tri: Delaunay, site_label: IArray) -> tuple[FArray, IArray]:
    """Voronoi ridges between sites of different clusters, as segments (k, 2, 2) in local coordinates.

    The ridge dual to a Delaunay edge joins the circumcentres of the two
    triangles on either side. Sites at index ``len(site_label)`` and above
    are the frame corners and never take part. Also returns the sites the
    triangulation used (qhull drops exact and near duplicates).
    """
    m = len(site_label)
    simp = tri.simplices
    p = tri.points[simp]  # (t, 3, 2)
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    d = 2.0 * (a[:, 0] * (b[:, 1] - c[:, 1]) + b[:, 0] * (c[:, 1] - a[:, 1]) + c[:, 0] * (a[:, 1] - b[:, 1]))
    sa, sb, sc = (a * a).sum(axis=1), (b * b).sum(axis=1), (c * c).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (sa * (b[:, 1] - c[:, 1]) + sb * (c[:, 1] - a[:, 1]) + sc * (a[:, 1] - b[:, 1])) / d
        uy = (sa * (c[:, 0] - b[:, 0]) + sb * (a[:, 0] - c[:, 0]) + sc * (b[:, 0] - a[:, 0])) / d
    cc = np.stack([ux, uy], axis=1)
    t = np.repeat(np.arange(len(simp)), 3)
    opp = np.tile(np.arange(3), len(simp))
    nb = tri.neighbors.reshape(-1)
    va, vb = simp[t, (opp + 1) % 3], simp[t, (opp + 2) % 3]
    real = (va < m) & (vb < m)
    lab_a = site_label[np.minimum(va, m - 1)]
    lab_b = site_label[np.minimum(vb, m - 1)]
    take = (nb > t) & real & (lab_a != lab_b)
    segs = np.stack([cc[t[take]], cc[nb[take]]], axis=1)
    segs = segs[np.isfinite(segs).all(axis=(1, 2))]
    used = np.unique(simp)
    return segs, used[used < m].astype(np.int64)


#: How far (m) a vertex may lie off a ring and still be taken as on it: a few
#: ulps of Gauss-Krüger coordinates (~7e-9 m at 4e7 m), far below any real detail.
_ON_EDGE = 1e-6


def _new_boundary_vertices(unit: Any, pieces: GArray) -> FArray:
    """Vertices of ``pieces`` on the boundary of ``unit`` that ``unit`` does not have.

    They are where split lines meet the unit's edge; a neighbour sharing that
    edge must get them too, or its edge and the pieces' edges no longer match.
    """
    pc = shapely.get_coordinates(pieces)
    uc = shapely.get_coordinates(unit)
    key_p, key_u = pc[:, 0] + 1j * pc[:, 1], uc[:, 0] + 1j * uc[:, 1]
    only = np.unique(key_p[~np.isin(key_p, key_u)])
    if len(only) == 0:
        return np.zeros((0, 2))
    xy = np.stack([only.real, only.imag], axis=1)
    on = shapely.dwithin(shapely.boundary(unit), shapely.points(xy), _ON_EDGE)
    return np.asarray(xy[on], dtype=float)


def _insert_vertices(polys: GArray, xy: FArray, origin: IArray, parent: IArray) -> None:
    """Insert the points ``xy`` into every ring of ``polys`` they lie on (in place).

    A point is inserted into the ring segment it lies on (within
    :data:`_ON_EDGE`), unless the ring already has a vertex there; the shape
    does not change, but shared edges get the same vertices on both sides.
    Pieces of the unit a point came from (``parent == origin``) have it already.
    """
    if len(xy) == 0 or len(polys) == 0:
        return
    pts = shapely.points(xy)
    p_idx, g_idx = shapely.STRtree(shapely.boundary(polys)).query(pts, predicate="dwithin", distance=_ON_EDGE)
    if len(p_idx) == 0:
        return
    need = parent[g_idx] != origin[p_idx]
    p_idx, g_idx = p_idx[need], g_idx[need]
    if len(p_idx) == 0:
        return
    order = np.lexsort((p_idx, g_idx))
    p_idx, g_idx = p_idx[order], g_idx[order]
    cuts = np.flatnonzero(np.r_[True, g_idx[1:] != g_idx[:-1], True])
    changed = 0
    for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        g = int(g_idx[a])
        new = _with_vertices(polys[g], xy[p_idx[a:b]])
        if new is not None:
            polys[g] = new
            changed += 1
    log.debug("split_heavy: new split-line vertices inserted into %d neighbouring units", changed)


def _with_vertices(poly: Any, xy: FArray) -> Any | None:
    """``poly`` with the points ``xy`` inserted into the ring segments they lie on; None if none."""
    if shapely.get_type_id(poly) != 3:
        return None
    rings = [np.asarray(shapely.get_coordinates(poly.exterior))]
    rings += [np.asarray(shapely.get_coordinates(r)) for r in poly.interiors]
    done = False
    out = []
    for ring in rings:
        a, d = ring[:-1], ring[1:] - ring[:-1]
        dd = np.maximum((d * d).sum(axis=1), 1e-300)
        rel = xy[:, None, :] - a[None, :, :]  # (points, segments, 2)
        t = np.clip((rel * d[None]).sum(axis=2) / dd[None], 0.0, 1.0)
        dist = np.hypot(rel[..., 0] - t * d[None, :, 0], rel[..., 1] - t * d[None, :, 1])
        seg = dist.argmin(axis=1)
        k = np.arange(len(xy))
        ts = t[k, seg]
        take = (dist[k, seg] <= _ON_EDGE) & (ts > 0.0) & (ts < 1.0)
        take &= ~(xy[:, None, :] == ring[None, :, :]).all(axis=2).any(axis=1)  # already a vertex
        if not take.any():
            out.append(ring)
            continue
        done = True
        ins = np.flatnonzero(take)
        ins = ins[np.lexsort((ts[ins], seg[ins]))]
        # vertex j of the ring goes to slot j + (insertions before it); inserted points fill the gaps
        slot = np.arange(len(ring)) + np.searchsorted(seg[ins], np.arange(len(ring)), side="left")
        new = np.empty((len(ring) + len(ins), 2))
        new[slot] = ring
        new[np.setdiff1d(np.arange(len(new)), slot)] = xy[ins]
        out.append(new)
    if not done:
        return None
    return shapely.Polygon(out[0], out[1:])


def split_labelled(units: GeomArrayLike, items: GeomArrayLike, item_unit: ArrayLike,
                   item_label: ArrayLike) -> tuple[GArray, IArray, IArray]:
    """Split every unit whose items carry more than one label, so that each piece holds one label's items.

    Why: a lane (巷) is the households along one street segment, and one street
    block often faces two streets; its part nearer to each street's buildings
    goes to that street's lane. The cut is :func:`split_heavy`'s (Voronoi cells
    of the items' vertices, between buildings, never through one; neighbours
    get the new edge vertices), with the clusters given instead of drawn. A
    unit that cannot be cut stays whole (its items then share a piece).
    Labels are >= 0 (an item with a negative label is not split off).

    Returns
    -------
    new_units, parent, new_item_unit
        As :func:`split_heavy`.
    """
    iu = np.asarray(item_unit).reshape(-1).astype(np.int64)
    lab = np.asarray(item_label).reshape(-1).astype(np.int64)
    U, items_arr, _, iu, _ = _split_inputs(units, items, np.ones(len(iu)), iu, max_weight=1.0, target=None)
    if len(lab) != len(items_arr):
        raise UsageError(f"{len(items_arr)} items need as many labels (got {len(lab)})")
    order = np.lexsort((np.arange(len(iu)), iu))
    pieces: _Pieces = {}
    for u in np.unique(iu[iu >= 0]).tolist():
        ids = order[iu[order] == u]
        mine = lab[ids]
        if len(np.unique(mine[mine >= 0])) < 2:
            continue
        g = items_arr[ids]
        ok = ~(shapely.is_missing(g) | shapely.is_empty(g))
        res = _cells(U[u], g, np.where(ok, np.unique(mine, return_inverse=True)[1], -1), ok)
        if res is not None:
            pieces[u] = (res[0], ids, res[1])
    return _renumber(U, pieces, iu)
