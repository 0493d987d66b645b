"""The polygons a /locate level is asked of: held in memory, or left in the store and read when a place needs them.

Why two kinds: on a county of millions of households the levels' polygons are most of the server's
memory (the tiled 5M-household county: 40M vertices, 1.2 GiB in GEOS), yet a batch is answered on the
finest level (grid points) and the coarser ones follow by code (``Locator._propagate``); a coarser
level is asked spatially only for the places the finer ones left open (outside the county, an
exclusive grid, a gap). So a level some finer level leads to, served from the store
(:class:`~service.lazy_base.LazyLayer`), keeps only its boxes in memory (a :class:`CellIndex`) and
reads the polygons of the boxes a place falls in, keeping the last ones asked for, prepared, in a
bounded cache (:class:`StoredPieces`). A level held in memory is read in chunks, so the transient of
reading it is one chunk, not the layer.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: polygons with more vertices are cut into pieces for the index. Why so many: a prepared polygon finds a
#: point through GEOS's indexed locator, in log time of its vertices; on the sample county cutting at 64
#: vertices made /locate no faster (348,000 vs 373,000 places/s uncut) and its start-up 9x slower, and
#: on a county of 600,000 polygons cost 74 s. Only giant rings are still cut, so no one polygon's index
#: is huge.
CUT_AT = 4096
#: vertices of stored polygons kept decoded and prepared between batches (about 50 bytes each with the
#: prepared index): enough for the polygons along a county's edge that places outside it fall near
CACHE_VERTICES = 2_000_000
#: rows read from the store at a time while the index is built
CHUNK = 50_000


def subdivide(geoms: NDArray[np.object_], max_vertices: int = 64) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Cut polygons into pieces of at most ``max_vertices`` vertices (as PostGIS ``ST_Subdivide`` does).

    Why: a point-in-polygon test costs the polygon's vertex count, and a
    village boundary has thousands. Indexed as small pieces, the index prunes to
    one or two short rings per place. Returns the pieces and, per piece, the
    row of the polygon it came from. Polygons already small enough (most grid
    points) are taken as they are, in one vectorised pass: no Python loop over them.
    """
    present = ~shapely.is_missing(geoms)
    present[present] = ~shapely.is_empty(geoms[present])
    small = present.copy()
    small[present] = shapely.get_num_coordinates(geoms[present]) <= max_vertices
    pieces: list[Any] = list(geoms[small])
    owner: list[int] = np.flatnonzero(small).tolist()
    stack = [(geoms[i], i) for i in np.flatnonzero(present & ~small).tolist()]
    while stack:
        g, i = stack.pop()
        if shapely.get_num_coordinates(g) <= max_vertices:
            pieces.append(g)
            owner.append(i)
            continue
        parts = _halves(g)
        if not parts:  # degenerate or uncuttable: keep as is
            pieces.append(g)
            owner.append(i)
            continue
        for part in parts:
            if not part.is_empty:
                polys = [p for p in shapely.get_parts(part) if p.geom_type in ("Polygon", "MultiPolygon")]
                stack.extend((p, i) for p in polys if not p.is_empty)
    out = np.empty(len(pieces), dtype=object)
    out[:] = pieces
    return out, np.asarray(owner, dtype=np.int64)


def _halves(g: Any) -> list[Any]:
    """``g`` cut in two across its box's longer side; none when it is too small or GEOS cannot cut it."""
    x0, y0, x1, y1 = g.bounds
    if x1 - x0 >= y1 - y0:
        xm = (x0 + x1) / 2
        halves = (shapely.box(x0, y0, xm, y1), shapely.box(xm, y0, x1, y1))
    else:
        ym = (y0 + y1) / 2
        halves = (shapely.box(x0, y0, x1, ym), shapely.box(x0, ym, x1, y1))
    if max(x1 - x0, y1 - y0) < 1e-9:
        return []
    try:
        return [shapely.intersection(g, h) for h in halves]
    except shapely.errors.GEOSException:  # a ring GEOS cannot cut: kept whole, still correct, only slower
        return []


def repaired(layer: str, geoms: NDArray[np.object_], keys: NDArray[Any]) -> NDArray[np.object_]:
    """``geoms`` with invalid polygons made valid (each named in the log), so one bad feature in a county
    of millions is reported and still located, never fatal at start-up; one that cannot be repaired is
    left out of the index (named)."""
    present = ~shapely.is_missing(geoms)
    bad = np.flatnonzero(present & ~shapely.is_valid(geoms))
    if not len(bad):
        return geoms
    out = geoms.copy()
    for i in bad.tolist():
        out[i] = _repair_one(layer, keys[i], geoms[i])
    return out


def _repair_one(layer: str, key: Any, geom: Any) -> Any:
    """One invalid polygon made valid (named in the log), or None (named) when GEOS cannot repair it."""
    try:
        fixed = shapely.make_valid(geom)
        polys = [p for p in shapely.get_parts(fixed) if p.geom_type in ("Polygon", "MultiPolygon")]
        out = shapely.union_all(polys) if polys else None
    except shapely.errors.GEOSException as exc:
        log.warning("%s: feature %s: invalid and not repairable (%s); /locate skips it", layer, key, exc)
        return None
    log.warning("%s: feature %s: invalid polygon (%s); repaired for /locate", layer, key, shapely.is_valid_reason(geom))
    return out


def _chunks(coll: Any) -> Iterator[tuple[NDArray[np.int64], NDArray[np.object_]]]:
    """(rows, CRS84 geometries as stored) of the whole level: from the store in chunks, or at once."""
    if hasattr(coll, "geometry_chunks"):
        yield from coll.geometry_chunks(CHUNK)
    else:
        geoms = coll.geometries()
        yield np.arange(len(geoms), dtype=np.int64), geoms


def held_pieces(coll: Any) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """A level's pieces and their rows, prepared, in memory (giant polygons cut at :data:`CUT_AT`)."""
    keys = coll.keys
    pieces, owners = [], []
    for rows, geoms in _chunks(coll):
        part, owner = subdivide(repaired(coll.id, geoms, keys[rows]), CUT_AT)
        pieces.append(part)
        owners.append(rows[owner])
    out = np.concatenate(pieces) if pieces else np.empty(0, dtype=object)
    shapely.prepare(out)
    return out, np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)


class StoredPieces:
    """A level's polygons left in the store: one per feature (its row), each read when a place falls in its box.

    ``pieces[rows]`` gives the prepared polygons of ``rows`` (as an object array does), from the cache or
    read together from the store. A feature whose stored polygon was invalid is held repaired (the store
    keeps the invalid one); one that could not be repaired has no box and is never asked for.

    Parameters
    ----------
    coll
        The level's :class:`~service.lazy_base.LazyLayer`.
    bounds
        ``(n, 4)`` boxes per row (NaN: no polygon).
    fixed
        Row -> repaired polygon.
    """

    def __init__(self, coll: Any, bounds: NDArray[np.float64], fixed: dict[int, Any]) -> None:
        self.coll, self.bounds, self.fixed = coll, bounds, fixed
        self._cache: OrderedDict[int, Any] = OrderedDict()
        self._vertices = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        rows = np.asarray(rows, dtype=np.int64)
        uniq, back = np.unique(rows, return_inverse=True)
        got = np.empty(len(uniq), dtype=object)
        with self._lock:
            missing = []
            for i, r in enumerate(uniq.tolist()):
                g = self._cache.get(r)
                if g is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(r)
                    got[i] = g
        if missing:
            got[missing] = self._read(uniq[missing])
        return got[back.reshape(-1)]

    def _read(self, rows: NDArray[np.int64]) -> NDArray[np.object_]:
        """The polygons of ``rows`` from the store (the repaired ones from memory), prepared and cached."""
        plain = [r for r in rows.tolist() if r not in self.fixed]
        read = dict(zip(plain, self.coll.geometries_at(plain).tolist(), strict=True)) if plain else {}
        geoms = np.empty(len(rows), dtype=object)
        geoms[:] = [self.fixed[r] if r in self.fixed else read[r] for r in rows.tolist()]
        shapely.prepare(geoms[~shapely.is_missing(geoms)])
        with self._lock:
            for r, g in zip(rows.tolist(), geoms.tolist(), strict=True):
                if r not in self._cache and g is not None:
                    self._cache[r] = g
                    self._vertices += int(shapely.get_num_coordinates(g))
            while self._vertices > CACHE_VERTICES and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._vertices -= int(shapely.get_num_coordinates(old))
        return geoms


def stored_pieces(coll: Any) -> tuple[StoredPieces, NDArray[np.int64]]:
    """A level left in the store: its boxes read once (in chunks, each checked and repaired as when held)."""
    keys = coll.keys
    bounds = np.full((len(coll), 4), np.nan)
    fixed: dict[int, Any] = {}
    for rows, geoms in _chunks(coll):
        good = geoms.copy()
        for i in np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_valid(geoms)).tolist():
            good[i] = _repair_one(coll.id, keys[rows[i]], geoms[i])
            if good[i] is not None:
                fixed[int(rows[i])] = good[i]
        empty = shapely.is_missing(good)
        empty[~empty] = shapely.is_empty(good[~empty])
        b = shapely.bounds(good)
        b[empty] = np.nan
        bounds[rows] = b
    return StoredPieces(coll, bounds, fixed), np.arange(len(coll), dtype=np.int64)
