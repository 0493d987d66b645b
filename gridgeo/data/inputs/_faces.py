"""Street faces of a township and which place node each one goes to.

Each township is cut into *faces* by the village-separating roads: the
township boundary and the road lines clipped to it are noded (one union) and
polygonized, so the faces tile the township exactly and dangling road ends
cut nothing. A face holding a place node goes to it (a face holding several is
split between them by their Voronoi cells), any other face to the place node
nearest its representative point, measured in the metric CRS.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from ._tables import clean_polygon

log = logging.getLogger(__name__)

#: Street faces smaller than this (m²) are slivers between nearly coincident
#: lines (a road along the township border); they join a neighbouring face.
SLIVER_M2 = 50.0

_Pieces = list[list[shapely.Geometry]]


def faces(township: shapely.Geometry, lines: NDArray[np.object_]) -> NDArray[np.object_]:
    """The faces the road ``lines`` cut ``township`` into; they tile it exactly.

    Faces in holes of the township (enclaves) also come out of polygonize and
    are dropped: their interior is outside the township.
    """
    clipped = shapely.intersection(lines, township) if len(lines) else np.array([], dtype=object)
    parts = shapely.get_parts(np.asarray(clipped, dtype=object))
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # LineString, LinearRing
    noded = shapely.union_all(np.concatenate([[shapely.boundary(township)], parts]))
    out = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    if len(out) == 0:
        return np.array([township], dtype=object)
    inside = shapely.contains(township, shapely.point_on_surface(out))
    out = out[inside & (shapely.area(out) > 0)]
    return out if len(out) else np.array([township], dtype=object)


def merge_slivers(faces: NDArray[np.object_], crs: pyproj.CRS) -> NDArray[np.object_]:
    """Merge faces under :data:`SLIVER_M2` into the neighbour sharing the longest edge.

    Roads drawn along a township border, or two carriageways a few metres
    apart, leave slivers between them; given to their nearest place they would
    only make villages multi-part. A sliver whose neighbours are all slivers
    stays as it is. Merging unions faces along shared noded edges, so the
    faces still tile the township exactly.
    """
    if len(faces) < 2:
        return faces
    area = gpd.GeoSeries(faces, crs="EPSG:4326").to_crs(crs).area.to_numpy()
    small = area < SLIVER_M2
    if not small.any():
        return faces
    tree = shapely.STRtree(faces)
    target = np.arange(len(faces))
    for i in np.flatnonzero(small):
        best, best_len = -1, 0.0
        for j in np.sort(tree.query(faces[i], predicate="intersects")):
            if j == i or small[j]:
                continue
            shared = shapely.length(
                shapely.intersection(shapely.boundary(faces[i]), shapely.boundary(faces[j]))
            )
            if shared > best_len:
                best, best_len = int(j), float(shared)
        if best >= 0:
            target[i] = best
    groups: dict[int, list[int]] = {}
    for k, tgt in enumerate(target.tolist()):
        groups.setdefault(int(tgt), []).append(k)
    merged = [
        faces[members[0]] if len(members) == 1 else clean_polygon(shapely.union_all(faces[members]))
        for _, members in sorted(groups.items())
    ]
    log.debug("merged %d sliver faces into their neighbours", len(faces) - len(merged))
    return np.array(merged, dtype=object)


def assign_faces(
    faces: NDArray[np.object_], pts: NDArray[np.float64], to_metric: pyproj.Transformer
) -> _Pieces:
    """Pieces of land per place: faces holding places, then the rest by nearest place.

    A face holding one place goes to it; a face holding several is split by
    their Voronoi cells so that each keeps land; every other face goes to the
    place nearest its representative point (metric distance, lowest place
    index on ties, so the result never depends on iteration order). A place
    outside every face (only if it sits in an enclave hole) takes the face
    nearest it, so that no village is empty.
    """
    pieces: _Pieces = [[] for _ in range(len(pts))]
    points: NDArray[np.object_] = np.asarray(shapely.points(pts), dtype=object)
    claimed = _claimed_faces(faces, points)
    for fa, owners in claimed.items():
        _give_claimed(pieces, faces[fa], owners, pts, points)
    rest = np.array([fa for fa in range(len(faces)) if fa not in claimed], dtype=np.int64)
    if len(rest):
        _give_nearest(pieces, faces, rest, pts, to_metric)
    for pl in range(len(pts)):
        if not pieces[pl]:
            d = shapely.distance(faces, points[pl])
            pieces[pl].append(faces[int(np.argmin(d))])
    return pieces


def _claimed_faces(faces: NDArray[np.object_], points: NDArray[np.object_]) -> dict[int, list[int]]:
    """Face -> the places it holds (each place in its lowest-index face), in place order."""
    n = len(points)
    place_idx, face_idx = shapely.STRtree(faces).query(points, predicate="intersects")
    face_of = np.full(n, -1, dtype=np.int64)
    for pl, fa in zip(place_idx, face_idx, strict=True):
        if face_of[pl] < 0 or fa < face_of[pl]:
            face_of[pl] = fa
    claimed: dict[int, list[int]] = {}
    for pl in range(n):
        if face_of[pl] >= 0:
            claimed.setdefault(int(face_of[pl]), []).append(pl)
    return claimed


def _give_claimed(
    pieces: _Pieces,
    face: shapely.Geometry,
    owners: list[int],
    pts: NDArray[np.float64],
    points: NDArray[np.object_],
) -> None:
    """A face to the one place it holds, or split between several by their Voronoi cells."""
    if len(owners) == 1:
        pieces[owners[0]].append(face)
        return
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts[owners]), extend_to=face)
    )
    for cell in cells:
        held = [o for o in owners if shapely.intersects(cell, points[o])]
        if not held:
            continue
        piece = shapely.intersection(cell, face)
        if not piece.is_empty:
            pieces[min(held)].append(piece)


def _give_nearest(
    pieces: _Pieces,
    faces: NDArray[np.object_],
    rest: NDArray[np.int64],
    pts: NDArray[np.float64],
    to_metric: pyproj.Transformer,
) -> None:
    """Faces ``rest`` (holding no place) each to the place nearest its representative point."""
    rep = shapely.point_on_surface(faces[rest])
    rx, ry = to_metric.transform(shapely.get_x(rep), shapely.get_y(rep))
    px, py = to_metric.transform(pts[:, 0], pts[:, 1])
    d2 = (np.asarray(rx)[:, None] - np.asarray(px)[None, :]) ** 2 + (
        np.asarray(ry)[:, None] - np.asarray(py)[None, :]
    ) ** 2
    nearest = np.argmin(d2, axis=1)  # first minimum on ties
    for fa, pl in zip(rest, nearest, strict=True):
        pieces[int(pl)].append(faces[fa])
