"""Boundaries that look drawn by streams and ridges, yet still tile exactly.

Group polygons straight from the Voronoi diagram have a zigzag edge at parcel scale. Here boundary
chains are smoothed (:func:`_smooth_shared`), densified canonically (:func:`_segmentize_canonical`:
the same points whichever side walks them) and bent by a smooth, injective warp
(:func:`warp_groups`). Each works on distinct vertices, never per polygon, so a vertex two polygons
share moves identically for both and the tiling stays exact.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import shapely

from gridgeo.synth._arrays import Field, map_unique, prepared
from gridgeo.synth._constants import EDGE_STEP, Array, GArray
from gridgeo.synth._seeds import GroupSeeds
from gridgeo.synth._tiling import Cells

logger = logging.getLogger(__name__)


def _segmentize_canonical(polys: GArray, step: float) -> GArray:
    """Densify polygons so a shared edge gets the same points from both sides.

    Why not :func:`shapely.segmentize`: it interpolates from whichever end a
    ring starts at, so the two polygons sharing an edge would get points that
    differ in the last bit -- and the tiling would no longer be exact.  Here
    every segment is interpolated from its lexicographically smaller end.
    """
    rings, pidx = shapely.get_rings(polys, return_index=True)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    last = np.r_[idx[1:] != idx[:-1], True]
    s = np.flatnonzero(~last)
    a, b, ring = coords[s], coords[s + 1], idx[s]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    length = np.hypot(q[:, 0] - p[:, 0], q[:, 1] - p[:, 1])
    nsub = np.maximum(1, np.ceil(length / step).astype(np.int64))
    seg = np.repeat(np.arange(len(s)), nsub)
    j = np.arange(len(seg)) - np.repeat(np.r_[0, np.cumsum(nsub)[:-1]], nsub)
    ican = np.where(swap[seg], nsub[seg] - j, j)
    t = ican / nsub[seg]
    pts = p[seg] + (q[seg] - p[seg]) * t[:, None]
    start = j == 0
    pts[start] = a[seg[start]]
    # close every ring with its first point again
    n_ring = len(rings)
    per_ring = np.bincount(ring[seg], minlength=n_ring)
    ring_start = np.r_[0, np.cumsum(per_ring)[:-1]]
    pts = np.insert(pts, np.r_[ring_start[1:], len(pts)], pts[ring_start], axis=0)
    ring_off = np.r_[0, np.cumsum(per_ring + 1)]
    poly_off = np.r_[0, np.cumsum(np.bincount(pidx, minlength=len(polys)))]
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, pts, (ring_off, poly_off))


def _smooth_shared(polys: GArray, iterations: int) -> GArray:
    """Laplacian smoothing of boundary chains, applied to each distinct vertex once.

    Why: unions of parcels have a zigzag edge at parcel scale; real boundaries
    follow streams and ridges.  Vertices where three or more polygons meet stay
    fixed, every other vertex moves towards the midpoint of its two
    neighbours.  Working on distinct vertices (not per polygon) moves a shared
    vertex identically for both polygons, so the tiling stays exact.
    """
    if iterations <= 0:
        return polys
    rings = shapely.get_rings(polys)
    coords, ridx = shapely.get_coordinates(rings, return_index=True)
    c = np.ascontiguousarray(coords).view(np.complex128).ravel()
    uniq, inv = np.unique(c, return_inverse=True)
    inv = inv.ravel()
    n = len(uniq)
    same = ridx[1:] == ridx[:-1]
    a, b = inv[:-1][same], inv[1:][same]
    key = np.unique(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    lo, hi = key // n, key % n
    deg = np.bincount(np.r_[lo, hi], minlength=n)
    ends = np.r_[lo, hi]
    other = np.r_[hi, lo]
    order = np.lexsort((other, ends))
    ends, other = ends[order], other[order]
    first = np.searchsorted(ends, np.arange(n))
    mid = np.flatnonzero(deg == 2)
    n1, n2 = other[first[mid]], other[first[mid] + 1]
    pts = np.c_[uniq.real, uniq.imag]
    for _ in range(iterations):
        pts[mid] = 0.5 * pts[mid] + 0.25 * (pts[n1] + pts[n2])
    return shapely.set_coordinates(polys.copy(), pts[inv])


def warp_groups(rng: np.random.Generator, groups: Cells, origin: tuple[float, float]) -> Cells:
    """Smooth, densify and bend the group polygons (and move their seeds along).

    The warp is a smooth displacement field whose Lipschitz constant is kept
    below 0.5, so it is injective: no polygon can fold over its neighbour.
    """
    cells, gxy = groups.poly, groups.groups.xy
    warp_x = Field(rng, 6, (4000.0, 16000.0), origin)
    warp_y = Field(rng, 6, (4000.0, 16000.0), origin)
    fine_x = Field(rng, 4, (1200.0, 2500.0), origin)
    fine_y = Field(rng, 4, (1200.0, 2500.0), origin)
    amp = min(0.25 / max(warp_x.max_gradient, warp_y.max_gradient), 180.0)
    famp = min(0.1 / max(fine_x.max_gradient, fine_y.max_gradient), 30.0)

    def warp(p: Array) -> Array:
        x, y = p[:, 0], p[:, 1]
        return np.c_[
            x + amp * warp_x(x, y) + famp * fine_x(x, y),
            y + amp * warp_y(x, y) + famp * fine_y(x, y),
        ]

    for rounds in (4, 2, 0):  # fewer rounds in the (never seen) case smoothing folds a polygon
        dense = _segmentize_canonical(_smooth_shared(cells, rounds), EDGE_STEP)
        g_poly = shapely.set_coordinates(dense, map_unique(shapely.get_coordinates(dense), warp))
        if shapely.is_valid(g_poly).all():
            break
        logger.debug("synth: smoothing with %d rounds folded a polygon; retrying", rounds)
    gxy = warp(gxy)
    # a group whose seed parcel went to a neighbour (contiguity repair) gets a new centre
    with prepared(g_poly):
        lost = ~shapely.contains_xy(g_poly, gxy[:, 0], gxy[:, 1])
    if lost.any():
        gxy[lost] = shapely.get_coordinates(shapely.point_on_surface(g_poly[lost]))
    return dataclasses.replace(groups, poly=g_poly, groups=GroupSeeds(xy=gxy, village=groups.groups.village))
