"""A village's grids re-drawn on request from its grid points: a proposal, with its rule report.

Why from the grid points: the served county keeps its grid points (level 3 tiles level 2 exactly),
not the street blocks the build made them of, so a point is the smallest piece a redraw moves, as a
hand edit does (:mod:`gridgeo.county.reassign`). The partition engine (:class:`gridgeo.partition.Model`)
starts from today's grids (``previous``) and pays for every point it moves, so the result moves as few
points as the bounds allow, as ``gridgeo build --previous`` does; locked grids keep their points exactly;
the number of grids stays the village's (a proposal neither retires nor creates a code). The result is
checked as a hand edit is (every grid the union of its points, none empty, none in more pieces than it
was) and reported against the bounds before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gridgeo.county.assign import unit_adjacency
from gridgeo.county.reassign import Reassignment, points_union, regroup
from gridgeo.county.rules import within_bounds
from gridgeo.data.crs import metric_crs
from gridgeo.errors import InputError
from gridgeo.partition import Model, Objective, Units

__all__ = ["GridsProposal", "RedrawRequest", "grid_report", "propose_grids"]


@dataclass(frozen=True)
class RedrawRequest:
    """What a redraw is asked: the household bounds of a grid, the grids locked, the seed and budgets.

    Raises
    ------
    InputError
        Bounds that are not two numbers ``0 <= min <= max`` (``max`` above 0), or budgets below 0.
    """

    bounds: tuple[float, float]
    locks: tuple[str, ...] = ()
    seed: int = 0
    iterations: int = 30
    restarts: int = 4

    def __post_init__(self) -> None:
        lo, hi = self.bounds
        if not (0 <= lo <= hi and hi > 0):
            raise InputError(f"bounds must be [min, max] households with 0 <= min <= max and max > 0, got "
                             f"[{lo}, {hi}]")
        if self.iterations < 0 or self.restarts < 0:
            raise InputError("iterations and restarts must be >= 0")


@dataclass
class GridsProposal:
    """A proposed redraw of one village's grids, not applied.

    Attributes
    ----------
    targets
        Point code -> its new grid, for every point that moves.
    reassignment
        The moves, the changed grids' outlines (CRS84) and the rules they break (:func:`regroup`).
    before, after
        Per grid: households, grid points, whether inside the bounds, pieces (:func:`grid_report`).
    engine
        What the partition engine says: ``feasible``, ``failed_rules``, the bounds it drew within.
    """

    village: str
    targets: dict[str, str]
    reassignment: Reassignment
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    engine: dict[str, Any] = field(default_factory=dict)


def propose_grids(village: str, *, grids: gpd.GeoDataFrame, points: gpd.GeoDataFrame,
                  request: RedrawRequest) -> GridsProposal:
    """Re-draw the base grids of ``village`` from their grid points, moving as few points as the bounds allow.

    Parameters
    ----------
    grids
        ``code``, ``parent`` and geometry (CRS84) of the village's base grids (not its exclusive grids).
    points
        ``code``, ``parent`` (its grid), ``households`` and geometry (CRS84) of every point of those grids.
    request
        Bounds, locks, seed and budgets.

    Raises
    ------
    InputError
        A locked code that is not one of the village's grids, or a village without grids or points.
    """
    codes = [str(c) for c in grids["code"]]
    unknown = sorted(set(request.locks) - set(codes))
    if unknown:
        raise InputError(f"village {village}: locked grid(s) {', '.join(unknown)} are not among its grids "
                         f"({', '.join(codes[:10])}{' ...' if len(codes) > 10 else ''})")
    pts = points[points["parent"].astype(str).isin(set(codes))].reset_index(drop=True)
    if not len(codes) or not len(pts):
        raise InputError(f"village {village}: no grids or grid points to redraw")
    ids = [str(c) for c in pts["code"]]
    parent = [str(p) for p in pts["parent"]]
    households = pts["households"].fillna(0).astype(float).to_numpy()
    ip, ix, lengths = unit_adjacency(pts.to_crs(metric_crs(pts)).geometry.values)
    units = Units.from_arrays(ip, ix, ids=ids, lengths=lengths)
    lo, hi = request.bounds
    locks = {i: p for i, p in zip(ids, parent, strict=True) if p in set(request.locks)}
    res = Model(units, size=households, min_size=lo or None, max_size=hi, count=len(codes), locks=locks,
                previous=dict(zip(ids, parent, strict=True)),
                objective=Objective(iterations=request.iterations, restarts=request.restarts)
                ).solve(seed=request.seed)
    new = _labels(res, ids, parent, codes)
    targets = {i: g for i, p, g in zip(ids, parent, new, strict=True) if g != p}
    r = regroup(targets, grids=grids.reset_index(drop=True), points=pts)
    engine = {"feasible": res.feasible, "failed_rules": res.failed_rules, "bounds": [lo, hi],
              "locked": sorted(request.locks), "seed": request.seed}
    return GridsProposal(village, targets, r, grid_report(codes, parent, households, pts, request.bounds),
                         grid_report(codes, new, households, pts, request.bounds), engine)


def _labels(res: Any, ids: list[str], parent: list[str], codes: list[str]) -> list[str]:
    """Each point's grid code in the engine's result: a part keeps the previous (or locked) label it
    carries; a part without one, or with a label another part took, gets the unused code whose points it
    holds most of (then the first unused code), so every code is kept and none is made."""
    part_of = [res.assignment[i] for i in ids]
    label: dict[int, str] = {}
    for part in sorted(res.parts, key=lambda p: (not p.locked, -p.n_units, p.index)):
        if part.label is not None and str(part.label) in codes and str(part.label) not in label.values():
            label[part.index] = str(part.label)
    free = [c for c in codes if c not in label.values()]
    for part in sorted(res.parts, key=lambda p: p.index):
        if part.index in label or not free:
            continue
        held = [parent[k] for k, q in enumerate(part_of) if q == part.index]
        best = max(free, key=lambda c: (held.count(c), -free.index(c)))
        label[part.index] = best
        free.remove(best)
    return [label.get(q, parent[k]) for k, q in enumerate(part_of)]


def grid_report(codes: Sequence[str], owner: Sequence[str], households: np.ndarray, points: gpd.GeoDataFrame,
                bounds: tuple[float, float]) -> list[dict[str, Any]]:
    """Per grid of ``codes``: its households and grid points under ``owner`` (each point's grid), whether
    the households are inside ``bounds``, and the pieces its points make (1: contiguous)."""
    owner_a = np.asarray(owner, dtype=object)
    geoms = points.geometry.values
    out = []
    for c in codes:
        mine = owner_a == c
        h = float(households[mine].sum())
        pieces = _pieces(geoms[mine]) if mine.any() else 0
        out.append({"code": c, "households": round(h), "n_points": int(mine.sum()),
                    "within_bounds": within_bounds(h, bounds), "pieces": pieces})
    return out


def _pieces(geoms: Any) -> int:
    return int(shapely.get_num_geometries(points_union(geoms)))
