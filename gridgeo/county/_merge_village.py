"""One village of a merge (多网合一): the common refinement of the departments' grids, partitioned (private).

Stages, all in the county's metric CRS (:func:`merge_village`)
--------------------------------------------------------------
1. **Pieces.** Each department's grids that meet the village, clipped to it.
2. **Faces.** The village cut by every piece's boundary, noded once
   (:func:`gridgeo.county._faces._faces`), so the faces tile the village and
   each face lies wholly inside or outside every departmental grid: a face's
   grid in each department is read at one interior point.
3. **Slivers.** Faces thinner than ``sliver_m`` (twice the area over the
   perimeter, the mean width of a thin strip) or smaller than ``min_unit_m2``
   are what two offices digitising one road a metre apart leave: each merges
   into the neighbour it shares most edge with and takes that neighbour's
   grids (counted and reported, never silently).
4. **Gaps and overlaps.** A face no grid of a department holds is a gap of
   that department, one held by two of its grids an overlap; both are
   reported with their geometry. They still belong to the merged grids.
5. **Households.** Buildings or household points go to faces by overlap
   (:func:`gridgeo.county.assign.assign_items`); a face heavier than the
   grid maximum is split between its buildings
   (:func:`gridgeo.county.split.split_heavy`), never through one. The faces
   are then checked to tile the village (a failure is an error naming it).
6. **Partition.** The engine (:class:`gridgeo.partition.Model`) draws the
   village's grids from the faces within the village kind's household
   bounds, with each department's grid id a ``similar`` column: the search
   avoids mixing two grids of one department, so the merged grids follow the
   departments' boundaries where the bounds allow. Every edge of every face is
   some department's boundary (or the village's), so every merged boundary
   is one too, except where a sliver was absorbed or a heavy face split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo._geom import polygonal
from gridgeo.county._faces import _check_tiling, _faces, _merge_small
from gridgeo.county._parts import nearest, part_count, union
from gridgeo.county.assign import assign_items, unit_adjacency
from gridgeo.county.split import split_heavy
from gridgeo.partition import Model, Objective, Units

log = logging.getLogger(__name__)

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]
FArray = NDArray[np.float64]

#: the ``similar`` value of a face no grid of a department holds
GAP = ""


@dataclass(frozen=True)
class MergeVillage:
    """What one village's merge needs, in the metric CRS."""

    code: str
    name: str
    kind: str
    geometry: Any
    items: GArray  # buildings or household points assigned to this village
    weights: IArray
    bounds: tuple[float, float]
    seed: int
    #: per department, the layer rows of its grids meeting the village and those grids (unclipped)
    departments: list[tuple[IArray, GArray]] = field(default_factory=list)


@dataclass(frozen=True)
class MergeOptions:
    """The tolerances and search budgets of a merge (see :func:`gridgeo.county.merge.merge_departments`)."""

    sliver_m: float = 2.0
    min_unit_m2: float = 1.0
    iterations: int = 30
    restarts: int = 4
    similarity: float = 4.0


@dataclass
class VillageMerge:
    """One village's result: its faces with their grids in every department and their merged grid.

    ``labels[k][f]`` is the tuple of department ``k``'s grid indices holding face ``f`` (empty: a gap;
    two or more: an overlap).
    """

    code: str
    faces: GArray
    area: FArray
    households: IArray
    labels: list[list[tuple[int, ...]]]
    part: IArray
    item_part: IArray  # merged grid of each of the village's items
    grids: list[Any]
    grid_households: list[int]
    codes: list[str] = field(default_factory=list)  # the grids' codes, set when they are numbered
    slivers: int = 0
    sliver_m2: float = 0.0
    split: int = 0
    violations: list[str] = field(default_factory=list)


def merge_village(task: tuple[MergeVillage, MergeOptions]) -> VillageMerge:
    """The village's faces, their departmental grids and households, and the merged grids (module notes).

    One picklable task, so that a worker process can run it (:class:`gridgeo.county._pool.WorkerPool`).
    """
    v, opts = task
    pieces = [_pieces(v.geometry, idx, geoms) for idx, geoms in v.departments]
    lines = [shapely.get_parts(shapely.boundary(p)) for _, p in pieces if len(p)]
    faces = _faces(v.geometry, np.concatenate(lines) if lines else np.zeros(0, dtype=object))
    faces = np.asarray([f for f in faces if shapely.area(f) > 0], dtype=object)
    labels = [_labels(faces, idx, p) for idx, p in pieces]
    faces, labels, n_sliver, sliver_area = _absorb_slivers(faces, labels, opts)
    item_face = _item_faces(faces, v.items)
    faces, labels, item_face, n_split = _split_heavy(faces, labels, v, item_face)
    _check_tiling(float(shapely.area(v.geometry)), faces, f"merge: village {v.code} {v.name}")  # raises, named
    hh = np.bincount(item_face[item_face >= 0], weights=v.weights[item_face >= 0], minlength=len(faces))
    hh = np.rint(hh).astype(np.int64)
    part, violations = _partition(v, faces, labels, hh, opts)
    grids = [union(faces[part == p]) for p in range(int(part.max()) + 1)]
    ghh = [int(hh[part == p].sum()) for p in range(len(grids))]
    return VillageMerge(code=v.code, faces=faces, area=np.asarray(shapely.area(faces), dtype=float), households=hh,
                        labels=labels, part=part, item_part=part[item_face], grids=grids, grid_households=ghh,
                        slivers=n_sliver, sliver_m2=sliver_area, split=n_split, violations=violations)


def _pieces(village: Any, idx: IArray, geoms: GArray) -> tuple[IArray, GArray]:
    """Indices and village-clipped polygons of one department's grids ``geoms`` (layer rows ``idx``) here."""
    if not len(idx):
        return idx, np.zeros(0, dtype=object)
    clipped = [polygonal(g) for g in shapely.intersection(geoms, village)]
    keep = np.asarray([c is not None and shapely.area(c) > 0 for c in clipped], dtype=bool)
    out = np.empty(int(keep.sum()), dtype=object)
    out[:] = [c for c, k in zip(clipped, keep.tolist(), strict=True) if k]
    return idx[keep], out


def _labels(faces: GArray, idx: IArray, pieces: GArray) -> list[tuple[int, ...]]:
    """Per face, the grid indices (of the department's layer) whose piece holds the face's interior point."""
    out: list[list[int]] = [[] for _ in range(len(faces))]
    if len(pieces) and len(faces):
        pts = shapely.point_on_surface(faces)
        fi, pi = shapely.STRtree(pieces).query(pts, predicate="intersects")
        for f, p in zip(fi.tolist(), pi.tolist(), strict=True):
            out[f].append(int(idx[p]))
    return [tuple(sorted(set(x))) for x in out]


def _absorb_slivers(faces: GArray, labels: list[list[tuple[int, ...]]], opts: MergeOptions) -> tuple[
        GArray, list[list[tuple[int, ...]]], int, float]:
    """Slivers merged into their longest-shared neighbour, which keeps its grids; returns the count and area."""
    if len(faces) < 2:
        return faces, labels, 0, 0.0
    area = np.asarray(shapely.area(faces), dtype=float)
    width = 2.0 * area / np.maximum(np.asarray(shapely.length(faces), dtype=float), 1e-12)
    sliver = (width < opts.sliver_m) | (area < opts.min_unit_m2)
    if not sliver.any() or sliver.all():
        return faces, labels, 0, 0.0
    merged, where = _merge_small(faces, np.where(sliver, 0.0, 1.0), 0.5, "merge slivers")
    # each merged face keeps the grids of its largest non-sliver member
    best = np.full(len(merged), -1, dtype=np.int64)
    for f in np.argsort(-np.where(sliver, -1.0, area), kind="stable").tolist():
        if best[where[f]] < 0:
            best[where[f]] = f
    new_labels = [[lab[int(b)] for b in best.tolist()] for lab in labels]
    return merged, new_labels, int(sliver.sum()), float(area[sliver].sum())


def _item_faces(faces: GArray, items: GArray) -> IArray:
    """The face of each item by overlap; an item only touching the village from outside takes the nearest face."""
    if not len(items):
        return np.zeros(0, dtype=np.int64)
    out = assign_items(faces, items)
    miss = np.flatnonzero(out < 0)
    if len(miss):
        out[miss] = nearest(faces, shapely.point_on_surface(items[miss]))
    return out


def _split_heavy(faces: GArray, labels: list[list[tuple[int, ...]]], v: MergeVillage, item_face: IArray) -> tuple[
        GArray, list[list[tuple[int, ...]]], IArray, int]:
    """Faces heavier than the grid maximum split between their buildings; the pieces keep the face's grids."""
    hi = v.bounds[1]
    if not len(faces) or not len(v.items) or not np.isfinite(hi) or hi <= 0:
        return faces, labels, item_face, 0
    w = np.bincount(item_face[item_face >= 0], weights=v.weights[item_face >= 0], minlength=len(faces))
    if not (w > hi).any():
        return faces, labels, item_face, 0
    new, parent, new_item = split_heavy(faces, v.items, v.weights, item_face, max_weight=hi)
    return new, [[lab[int(p)] for p in parent.tolist()] for lab in labels], new_item, int((w > hi).sum())


def _partition(v: MergeVillage, faces: GArray, labels: list[list[tuple[int, ...]]], hh: IArray,
               opts: MergeOptions) -> tuple[IArray, list[str]]:
    """The faces' merged grid (engine parts), within the bounds, each department's grid a ``similar`` column."""
    n = len(faces)
    lo, hi = v.bounds
    total = float(hh.sum())
    if n <= 1 or total <= 0 or total <= hi:
        return np.zeros(n, dtype=np.int64), ([] if total >= lo or total <= 0 else ["min_size"])
    ip, ix, lengths = unit_adjacency(faces)
    cols = {f"d{k}": np.asarray([",".join(map(str, t)) if t else GAP for t in lab], dtype=object)
            for k, lab in enumerate(labels)}
    units = Units.from_arrays(ip, ix, ids=list(range(n)), lengths=lengths, attrs=cols)
    k = min(part_count(total, lo, hi), n)
    model = Model(units, size=hh.astype(float), min_size=lo or None, max_size=hi, count=k, similar=sorted(cols),
                  objective=Objective(iterations=opts.iterations, restarts=opts.restarts,
                                      similarity=opts.similarity))
    res = model.solve(seed=v.seed)
    part = np.asarray([res.assignment[i] for i in range(n)], dtype=np.int64)
    _, part = np.unique(part, return_inverse=True)
    return part.astype(np.int64), [x.rule for x in res.violations]
