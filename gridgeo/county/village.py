"""One village: exclusive grids, level-2 grids and level-3 grid points.

Why per village: every grid and point lies inside one village, so a village
is an independent problem. Building it from its own inputs only, with a seed
derived from its code, means a village whose inputs did not change comes out
identical -- geometry and codes -- when the county is rebuilt, and villages
can be built in parallel processes in any order.

Stages (all in the county's metric CRS), run in order by :func:`build_village`
------------------------------------------------------------------------------
1. **Sites** (:func:`gridgeo.county.sites.site_footprints`). Schools,
   hospitals, mines and gated compounds (POIs whose category the rules list)
   become exclusive grids: a polygon site is its own footprint, a point site
   its small street block or a disc; smallest first, disjoint; a site left
   under ``site_min_m2`` stays in the base grids (reported).
2. **Units** (:func:`street_faces`, :func:`_make_units`). The village is cut
   by the barrier lines, the villager-group boundaries and the site footprints
   (:func:`gridgeo.county.units.street_blocks`), so every face lies in exactly
   one group and is wholly inside or outside every site. Buildings (or
   household points) go to faces; a face with more households than a grid
   point may hold is split between its buildings
   (:func:`gridgeo.county.split.split_heavy`), never through one.
3. **Labels** (:func:`_label_units`). Each unit gets a :class:`Label`: the
   site it lies in, else its villager group, else its households' group
   label, else the part the partition engine puts it in (grids within the
   village kind's household bounds).
4. **Grids** (:func:`_make_grids`). One grid per base label, one exclusive
   grid per site label, with their geometry and codes.
5. **Points** (:func:`_point_rows`). The engine splits every grid and every
   exclusive grid into grid points within the point bounds; units follow
   street faces and courtyards, so points do too.
5b. **Micro-grids and lanes** (:mod:`gridgeo.county.micro`, only where the
   rules draw them: ``t.sub``). Two more tilings of every grid, beside the
   points; checked with the rest in stage 6.
6. **Tiling check** (:func:`check_village`). Grids and exclusive grids must
   tile the village, points their grid, to ``tolerance_m2``; every building
   or household point lies in exactly one point. A village that breaks this
   raises, named.

How the sites and units are made is a :class:`Method` (default: the stages
above). The fallback ladder (:mod:`gridgeo.county.ladder`) passes coarser ones
when a village cannot be tiled this way; stages 3-6 are the same for every
method, so every rung's result is labelled, coded and checked alike.
"""

from __future__ import annotations

import copy
import enum
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing
from gridgeo.county import _wire
from gridgeo.county import codes as _codes
from gridgeo.county import units as _units
from gridgeo.county._groups import merge_groups
from gridgeo.county._parts import Adjacency, metric_xy, nearest, part_count, sub_units, union
from gridgeo.county._targets import count_ranges, share
from gridgeo.county.assign import assign_items, unit_adjacency
from gridgeo.county.micro import GridRef, SubLevels, build_sublevels, check_sublevels
from gridgeo.county.policy import limits_broken
from gridgeo.county.rules import Limits, within_bounds
from gridgeo.county.sites import Footprints, site_footprints
from gridgeo.county.split import split_heavy
from gridgeo.errors import GeometryError, GridgeoError
from gridgeo.partition import Model, Objective

log = logging.getLogger(__name__)

__all__ = ["Label", "LabelKind", "Method", "VillageOut", "VillageTask", "build_village", "check_village",
           "street_faces", "village_error"]

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]
FArray = NDArray[np.float64]


@dataclass
class VillageTask:
    """Everything one village needs, in the metric CRS; picklable for a worker process.

    Every field but ``previous`` is an input of the village's result and is
    covered by :func:`gridgeo.county.fingerprint.fingerprint` by construction.
    """

    code: str
    name: str
    kind: str
    geometry: Any
    barriers: GArray
    group_codes: list[str]
    group_names: list[str]
    group_geoms: GArray
    items: GArray  # buildings (polygons) or household points
    weights: NDArray[np.int64]
    item_labels: list[str | None] | None  # villager group of each household point, when given
    site_geoms: GArray
    site_names: list[str]
    site_categories: list[str]
    site_ids: list[str]
    grid_bounds: tuple[float, float]
    point_bounds: tuple[float, float]
    use_groups: bool = True
    points: bool = True
    seed: int = 0
    min_unit_m2: float = 1.0
    site_radius_m: float = 60.0
    site_max_block_m2: float = 40_000.0
    site_min_m2: float = 200.0
    iterations: int = 30
    restarts: int = 4
    tolerance_m2: float = 1.0
    previous: dict[str, tuple[GArray, list[str]]] | None = None  # level -> (geoms, codes) of an earlier build
    group_extra: list[dict[str, Any]] | None = None  # per group: leader fields to carry onto its grid
    merge_groups: bool = False  # [grids] groups = "merge": groups merged whole into grids (use_groups too)
    grid_limits: Limits = field(default_factory=Limits)  # persons, area, walk per grid (checked on the records)
    point_limits: Limits = field(default_factory=Limits)
    persons_per_household: float = 2.62  # this village's (its population / households, else the rules')
    #: the households the engine aims within: the bounds with the limits turned into households
    #: (gridgeo.county.policy); None: grid_bounds / point_bounds themselves
    engine_grid_bounds: tuple[float, float] | None = None
    engine_point_bounds: tuple[float, float] | None = None
    grid_count: int | None = None  # this village's share of the county's [targets] grids
    point_count: int | None = None  # ... of [targets] points
    sub: SubLevels | None = None  # micro-grids and lanes below the grids (gridgeo.county.micro); None: neither

    @property
    def grid_aim(self) -> tuple[float, float]:
        """The household bounds the engine draws grids within."""
        return self.engine_grid_bounds or self.grid_bounds

    @property
    def point_aim(self) -> tuple[float, float]:
        """The household bounds the engine draws grid points within."""
        return self.engine_point_bounds or self.point_bounds

    def __getstate__(self) -> dict[str, Any]:
        return _wire.pack(self.__dict__)  # geometry arrays as one WKB array each (gridgeo.county._wire)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(_wire.unpack(state))


@dataclass
class VillageOut:
    """The village's grids, exclusive grids and points, and what was measured."""

    code: str
    grids: list[dict[str, Any]] = field(default_factory=list)
    exclusive: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    item_point: list[str | None] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    micro_grids: list[dict[str, Any]] = field(default_factory=list)  # gridgeo.county.micro, when drawn
    lanes: list[dict[str, Any]] = field(default_factory=list)
    item_micro: list[str | None] = field(default_factory=list)
    item_lane: list[str | None] = field(default_factory=list)
    #: the common pieces of points, micro-grids and lanes (each with its codes), which the output is cleaned on
    atoms: list[dict[str, Any]] = field(default_factory=list)
    #: the stage running, or the last one done: what a failure is reported against (the fallback ladder)
    stage: str = ""

    def __getstate__(self) -> dict[str, Any]:
        return _wire.pack(self.__dict__)  # the rows' geometries as one WKB array per level

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(_wire.unpack(state))


class LabelKind(enum.IntEnum):
    """Where a unit's level-2 grid comes from (the order is the order grids are taken in)."""

    GROUP = 1  #: a villager group polygon; key = the group's index in the task
    HOUSEHOLDS = 2  #: the group label of its households; key = the label ("?" for none anywhere)
    PARTITION = 3  #: a part drawn by the partition engine; key = the part's index
    SITE = 4  #: an exclusive site; key = the site footprint's index
    MERGED = 5  #: whole villager groups merged, or a piece of a split group; key = "3+5" or "4#2" (group indices)


@dataclass(frozen=True, order=True)
class Label:
    """The level-2 grid a unit belongs to: a kind and a key within that kind.

    Labels sort by kind, then key: the order grids are coded and handed to the
    engine in (groups, household labels and drawn parts before sites).
    """

    kind: LabelKind
    key: int | str

    @property
    def is_site(self) -> bool:
        return self.kind is LabelKind.SITE

    def group_code(self, t: VillageTask) -> str | None:
        """The villager group this grid stands for: a group's code, a household label, or None."""
        if self.kind is LabelKind.GROUP:
            return t.group_codes[cast(int, self.key)]
        if self.kind is LabelKind.HOUSEHOLDS:
            return str(self.key)
        return None

    def groups(self) -> list[int]:
        """The villager groups (task indices) a merged grid is made of, or the one a piece is cut from."""
        if self.kind is LabelKind.GROUP:
            return [cast(int, self.key)]
        if self.kind is LabelKind.MERGED:
            return [int(g) for g in str(self.key).split("#")[0].split("+")]
        return []


@dataclass(frozen=True)
class _Units:
    """Stage 2's result: the village's units and what lies in them."""

    faces: int  # street faces before heavy ones were split
    geoms: GArray
    item_unit: IArray  # unit of each item
    item_weight: IArray  # households of each item
    size: FArray  # households of each unit
    rep: GArray  # a point inside each unit
    adjacency: Adjacency


@dataclass(frozen=True)
class _Grids:
    """Stage 4's result: one level-2 grid per label, in label order."""

    labels: list[Label]
    members: dict[Label, IArray]
    geometry: dict[Label, Any]
    households: dict[Label, float]
    code: dict[Label, str]
    site_index: list[int]  # task site index of each site footprint (a SITE label's key)

    @property
    def base(self) -> list[Label]:
        return [lab for lab in self.labels if not lab.is_site]

    @property
    def sites(self) -> list[Label]:
        return [lab for lab in self.labels if lab.is_site]


#: A grid point: the grid it lies in and its units (ascending).
_PointRow = tuple[Label, IArray]


class _Clock:
    def __init__(self, out: dict[str, float]) -> None:
        self.out = out
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.out[name] = self.out.get(name, 0.0) + now - self.t
        self.t = now


def village_error(err: GridgeoError, t: VillageTask, stage: str) -> GridgeoError:
    """``err`` (same class, same fields) with a message that names the village and the stage it failed in.

    Why: in a county of hundreds of villages built in worker processes (or on
    a Dask cluster) a bare "geometry is invalid" says nothing about where to
    look. A message that names the village already (the tiling checks) is
    not named twice.
    """
    own = f"village {t.code} {t.name}: "
    text = err.message[len(own):] if err.message.startswith(own) else err.message
    named = copy.copy(err)  # keeps the class and every attribute a subclass may carry
    named.message = f"village {t.code} {t.name} (stage {stage}): {text}"
    named.args = (str(named),)
    return named


def village_seed(seed: int, code: str) -> int:
    """A village's own seed: its results depend on its code, never on the other villages."""
    return (int(seed) * 1_000_003 + zlib.crc32(code.encode())) & 0x7FFFFFFF


# --------------------------------------------------------------------------------------
def build_village(t: VillageTask, *, method: Method | None = None, out: VillageOut | None = None) -> VillageOut:
    """Build one village's exclusive grids, grids and points (see the module notes).

    Parameters
    ----------
    t
        The village's inputs.
    method
        How sites and units are made (default: :data:`PIPELINE`, the stages
        of the module notes).
    out
        The record to fill (default: a new one). Its ``stage`` names the stage
        running, so a caller that catches a failure knows where it happened.

    Raises
    ------
    GeometryError
        The grids do not tile the village, or the points their grid, within
        ``tolerance_m2``, or a household is in no point.
    GridgeoError
        Any of them, and any other gridgeo error of a stage, names the village
        and the stage (:func:`village_error`); an exception that is a bug
        keeps its type and carries the same as a note.
    """
    m = method or PIPELINE
    out = out if out is not None else VillageOut(code=t.code)
    clock = _Clock(out.seconds)
    try:
        _stages(t, m, out, clock)
    except GridgeoError as err:
        raise village_error(err, t, out.stage) from err
    except Exception as err:  # a bug: its type stays, the village and stage ride along as a note
        err.add_note(f"in village {t.code} {t.name}, stage {out.stage}")
        raise
    return out


def _stages(t: VillageTask, m: Method, out: VillageOut, clock: _Clock) -> None:
    """The stages of :func:`build_village` in order, ``out.stage`` naming the one running."""
    out.stage = "exclusive"
    sites = m.sites(t, out.stats)
    clock.lap("exclusive")
    out.stage = "units"
    u = _make_units(t, m.faces(t, sites.polygons), out.stats, split=m.split)
    clock.lap("units")
    out.stage = "grids"
    label = _label_units(t, u, sites.polygons, out.stats)
    clock.lap("grids")
    grids = _make_grids(t, u, label, sites.index)
    out.stage = "points"
    rows = _point_rows(t, u, grids, out.stats)
    clock.lap("points")
    out.stage = "geometry"
    _write_records(t, u, grids, rows, out)
    clock.lap("geometry")
    if t.sub is not None:  # micro-grids and lanes below the grids (gridgeo.county.micro)
        out.stage = "micro"
        build_sublevels(t, u.geoms, u.item_unit, _grid_refs(grids), out)
        clock.lap("micro")
    out.stage = "check"
    check_village(t, out)
    clock.lap("check")


def _grid_refs(grids: _Grids) -> list[GridRef]:
    """The grids and exclusive grids as :mod:`gridgeo.county.micro` takes them, in label order."""
    return [GridRef(grids.code[lab], grids.members[lab], grids.geometry[lab], lab.is_site) for lab in grids.labels]


# --------------------------------------------------------------------------------------
# 2. units
# --------------------------------------------------------------------------------------
def street_faces(t: VillageTask, site_polys: list[Any]) -> GArray:
    """The village cut by the barriers, the villager-group lines and the site outlines (the pipeline's faces)."""
    cut = [*t.barriers.tolist()]
    if t.use_groups and len(t.group_geoms):
        cut += [shapely.boundary(g) for g in t.group_geoms]
    cut += [shapely.boundary(p) for p in site_polys]
    return _units.street_blocks(t.geometry, np.asarray(cut, dtype=object), min_area=t.min_unit_m2)


#: Cuts a village into faces that tile it, each wholly inside or outside every site footprint.
FacesFn = Callable[[VillageTask, list[Any]], GArray]
#: A village's exclusive-site footprints; writes what it did (and any site dropped) into the stats.
SitesFn = Callable[[VillageTask, dict[str, Any]], Footprints]


@dataclass(frozen=True)
class Method:
    """How :func:`build_village` makes a village's sites and units.

    Why a parameter: a village that cannot be tiled by the pipeline is rebuilt
    with coarser units (:mod:`gridgeo.county.ladder`), and the stages after
    the units -- labels, grids, points, records, the check -- must stay one
    code path for every way of making them.
    """

    faces: FacesFn = street_faces  #: the faces before heavy ones are split
    split: bool = True  #: split faces heavier than a grid point (when points are drawn)
    sites: SitesFn = site_footprints  #: the exclusive-site footprints


#: The stages of the module notes.
PIPELINE = Method()


def _make_units(t: VillageTask, faces: GArray, st: dict[str, Any], *, split: bool = True) -> _Units:
    """Items placed in the faces; heavy faces split (``split`` and points drawn); adjacency."""
    item_face = assign_items(faces, t.items) if len(t.items) else np.zeros(0, dtype=np.int64)
    lost = item_face < 0
    if lost.any():  # numerically on the village rim: the nearest face
        item_face[lost] = nearest(faces, shapely.point_on_surface(t.items[lost]))
    w_items = np.asarray(t.weights, dtype=np.int64)
    if t.points and split:
        units, parent, item_unit = split_heavy(faces, t.items, w_items, item_face, max_weight=t.point_bounds[1])
    else:
        units, parent, item_unit = faces, np.arange(len(faces), dtype=np.int64), item_face
    n = len(units)
    uw = np.bincount(item_unit[item_unit >= 0], weights=w_items[item_unit >= 0], minlength=n).astype(float)
    rep = shapely.point_on_surface(units)
    st.update(faces=len(faces), units=n, split_faces=int(np.sum(np.bincount(parent, minlength=len(faces)) > 1)))
    ip, ix, lens = unit_adjacency(units)
    return _Units(faces=len(faces), geoms=units, item_unit=item_unit, item_weight=w_items, size=uw, rep=rep,
                  adjacency=Adjacency(ip, ix, lens))


# --------------------------------------------------------------------------------------
# 3. labels
# --------------------------------------------------------------------------------------
def _label_units(t: VillageTask, u: _Units, site_polys: list[Any], st: dict[str, Any]) -> list[Label]:
    """The label of every unit: its site, else its grid (from groups, household labels or the engine)."""
    n = len(u.geoms)
    site_of = containing(np.asarray(site_polys, dtype=object), u.rep) if site_polys else np.full(n, -1)
    label: list[Label | None] = [None] * n
    for i in np.flatnonzero(site_of >= 0).tolist():
        label[i] = Label(LabelKind.SITE, int(site_of[i]))
    base = np.flatnonzero(site_of < 0)
    if len(base):
        if t.use_groups and len(t.group_geoms) and t.merge_groups:
            st.update(_label_by_merged_groups(t, u, base, label))
        elif t.use_groups and len(t.group_geoms):  # one grid per villager group
            for i, gi in zip(base.tolist(), _group_of(t, u, base).tolist(), strict=True):
                label[i] = Label(LabelKind.GROUP, gi)
            st["grids_from"] = "villager_groups"
        elif t.item_labels is not None and any(lab is not None for lab in t.item_labels):
            _label_by_households(t, u, base, label)
            st["grids_from"] = "household_labels"
        else:
            st.update(_label_by_partition(t, u, base, label))
    return cast(list[Label], label)


def _group_of(t: VillageTask, u: _Units, base: IArray) -> IArray:
    """The villager group of each base unit: the group it lies in, else the nearest one."""
    g = containing(t.group_geoms, u.rep[base])
    miss = g < 0
    if miss.any():
        g[miss] = nearest(t.group_geoms, u.rep[base][miss])
    return g


def _label_by_merged_groups(t: VillageTask, u: _Units, base: IArray, label: list[Label | None]) -> dict[str, Any]:
    """Grids of whole villager groups (:mod:`gridgeo.county._groups`); returns the stats.

    A grid of one whole group is that group's grid (:attr:`LabelKind.GROUP`: its code, name and leader);
    several groups, or a piece of a group cut because it alone exceeds the maximum, are ``MERGED``.
    """
    res = merge_groups(u.adjacency, base, _group_of(t, u, base), u.size, bounds=t.grid_aim, count=t.grid_count,
                       seed=lambda stage: village_seed(t.seed, t.code + stage),
                       objective=Objective(iterations=t.iterations, restarts=t.restarts),
                       previous=_previous_labels(t, "grids", base, u.rep))
    pieces: dict[int, int] = {}
    for groups, members in res.parts:
        if len(groups) == 1 and groups[0] not in res.split:
            lab = Label(LabelKind.GROUP, groups[0])
        elif len(groups) == 1:
            pieces[groups[0]] = pieces.get(groups[0], 0) + 1
            lab = Label(LabelKind.MERGED, f"{groups[0]}#{pieces[groups[0]]}")
        else:
            lab = Label(LabelKind.MERGED, "+".join(str(g) for g in groups))
        for i in members.tolist():
            label[i] = lab
    return {"grids_from": "villager_groups_merged", "grid_violations": res.violations,
            "groups_merged": sum(len(g) for g, _ in res.parts if len(g) > 1),
            "groups_split": [t.group_codes[g] for g, n in sorted(res.split.items()) if n > 1],
            "groups_over_max": [t.group_codes[g] for g, n in sorted(res.split.items()) if n <= 1]}


def _label_by_households(t: VillageTask, u: _Units, base: IArray, label: list[Label | None]) -> None:
    """Grids from household group labels: each unit takes its households' majority label;
    units without labelled households take their neighbours' (breadth first, deterministic)."""
    item_labels = cast(Sequence[str | None], t.item_labels)
    votes: dict[int, dict[str, int]] = {}
    inbase = set(base.tolist())
    for j, i in enumerate(u.item_unit.tolist()):
        lab = item_labels[j]
        if i in inbase and lab is not None:
            votes.setdefault(i, {})
            votes[i][lab] = votes[i].get(lab, 0) + int(u.item_weight[j])
    for i, tally in votes.items():
        label[i] = Label(LabelKind.HOUSEHOLDS, max(sorted(tally), key=lambda k: tally[k]))
    ip, ix = u.adjacency.indptr, u.adjacency.indices
    frontier = sorted(votes)
    while frontier:
        nxt: list[int] = []
        for i in frontier:
            for k in range(int(ip[i]), int(ip[i + 1])):
                v = int(ix[k])
                if v in inbase and label[v] is None:
                    label[v] = label[i]
                    nxt.append(v)
        frontier = sorted(nxt)
    for i in base.tolist():  # an island with no labelled household anywhere
        if label[i] is None:
            label[i] = Label(LabelKind.HOUSEHOLDS, "?")


def _label_by_partition(t: VillageTask, u: _Units, base: IArray, label: list[Label | None]) -> dict[str, Any]:
    """Grids drawn by the engine within the village kind's household bounds; returns the stats."""
    lo_g, hi_g = t.grid_aim
    k = min(t.grid_count or part_count(float(u.size[base].sum()), lo_g, hi_g), len(base))
    model = Model(sub_units(u.adjacency, base), size=u.size[base], min_size=lo_g or None, max_size=hi_g,
                  count=k, objective=Objective(iterations=t.iterations, restarts=t.restarts),
                  previous=_previous_labels(t, "grids", base, u.rep))
    res = model.solve(seed=village_seed(t.seed, t.code + "/grids"))
    for uid, part in res.assignment.items():
        label[int(cast(int, uid))] = Label(LabelKind.PARTITION, int(part))
    return {"grids_from": "partition", "grid_violations": [v.rule for v in res.violations]}


# --------------------------------------------------------------------------------------
# 4. grids
# --------------------------------------------------------------------------------------
def _make_grids(t: VillageTask, u: _Units, label: list[Label], site_idx: list[int]) -> _Grids:
    """One grid per label: its units, geometry, households and code."""
    by: dict[Label, list[int]] = {}
    for i, lab in enumerate(label):
        by.setdefault(lab, []).append(i)
    labels = sorted(by)
    members = {lab: np.asarray(by[lab], dtype=np.int64) for lab in labels}
    gpoly = {lab: union(u.geoms[members[lab]]) for lab in labels}
    ghh = {lab: float(u.size[members[lab]].sum()) for lab in labels}
    grids = _Grids(labels=labels, members=members, geometry=gpoly, households=ghh, code={}, site_index=site_idx)
    grids.code.update(_grid_codes(t, grids))
    return grids


def _grid_codes(t: VillageTask, grids: _Grids) -> dict[Label, str]:
    """Village code + 2 digits for grids (a group's own code when it has that form), ``Z`` + 2 for sites."""
    out: dict[Label, str] = {}
    prev = t.previous or {}
    base, sites = grids.base, grids.sites
    if base:
        keep: list[str | None] = []
        for lab in base:
            gc = lab.group_code(t)
            ok = gc is not None and gc.startswith(t.code) and len(gc) == len(t.code) + 2 and gc[-2:].isdigit()
            keep.append(gc if ok else None)
        polys = [grids.geometry[lab] for lab in base]
        if "grids" in prev and not all(keep):
            matched = _codes.match_previous(polys, *prev["grids"])
            keep = [k if k is not None else m for k, m in zip(keep, matched, strict=True)]
        x, y, a = metric_xy(polys)
        out.update(zip(base, _codes.number(t.code, x, y, a, width=2, keep=keep), strict=True))
    if sites:
        polys = [grids.geometry[lab] for lab in sites]
        keep2: list[str | None] = [None] * len(polys)
        if "exclusive" in prev:
            keep2 = _codes.match_previous(polys, *prev["exclusive"])
        x, y, a = metric_xy(polys)
        out.update(zip(sites, _codes.number(t.code, x, y, a, width=2, letter="Z", keep=keep2), strict=True))
    return out


# --------------------------------------------------------------------------------------
# 5. points
# --------------------------------------------------------------------------------------
def _point_rows(t: VillageTask, u: _Units, grids: _Grids, st: dict[str, Any]) -> list[_PointRow]:
    """The grid points: each grid whole, or split by the engine within the point bounds.

    Sorted by grid code, then first unit (the order their codes are drawn in).
    """
    if not t.points:
        return [(lab, grids.members[lab]) for lab in grids.labels]
    lo_p, hi_p = t.point_aim
    rows: list[_PointRow] = []
    engine: list[tuple[Label, int]] = []
    want = _point_counts(t, grids) if t.point_count else {}
    for lab in grids.labels:
        k = want.get(lab) or min(part_count(grids.households[lab], 0.0 if lab.is_site else lo_p, hi_p),
                                 len(grids.members[lab]))
        if k <= 1:
            rows.append((lab, grids.members[lab]))
        else:
            engine.append((lab, k))
    if engine:
        rows += _split_grids(t, u, grids, engine, st)
    rows.sort(key=lambda r: (grids.code[r[0]], int(r[1][0])))
    return rows


def _point_counts(t: VillageTask, grids: _Grids) -> dict[Label, int]:
    """The village's share of ``[targets] points`` shared among its base grids by households, each within
    what its point bounds and its units allow (exclusive grids keep their own count)."""
    lo_p, hi_p = t.point_aim
    base = grids.base
    sites = sum(min(part_count(grids.households[lab], 0.0, hi_p), len(grids.members[lab])) for lab in grids.sites)
    hh = [grids.households[lab] for lab in base]
    low, high = count_ranges(hh, [len(grids.members[lab]) for lab in base], (lo_p, hi_p))
    s = share(hh, low, high, max(int(t.point_count or 0) - sites, 0))
    return dict(zip(base, s.counts, strict=True))


def _split_grids(t: VillageTask, u: _Units, grids: _Grids, engine: list[tuple[Label, int]],
                 st: dict[str, Any]) -> list[_PointRow]:
    """One engine run over every grid with more than one point (``engine``: grid, point count)."""
    lo_p, hi_p = t.point_aim
    code = grids.code
    order = np.concatenate([grids.members[lab] for lab, _ in engine])
    groups = [code[lab] for lab, _ in engine for _ in range(len(grids.members[lab]))]
    model = Model(sub_units(u.adjacency, order), size=u.size[order],
                  min_size={code[lab]: lo_p for lab, _ in engine if not lab.is_site} or None,
                  max_size=hi_p, group=groups, count={code[lab]: k for lab, k in engine},
                  objective=Objective(iterations=t.iterations, restarts=t.restarts),
                  previous=_previous_labels(t, "points", order, u.rep))
    res = model.solve(seed=village_seed(t.seed, t.code + "/points"))
    by_part: dict[int, list[int]] = {}
    for uid, part in res.assignment.items():
        by_part.setdefault(int(part), []).append(int(cast(int, uid)))
    label_of = {code[lab]: lab for lab, _ in engine}
    st["point_violations"] = [v.rule for v in res.violations]
    return [(label_of[str(res.parts[part].group)], np.asarray(sorted(by_part[part]), dtype=np.int64))
            for part in sorted(by_part)]


# --------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------
def _write_records(t: VillageTask, u: _Units, grids: _Grids, rows: list[_PointRow], out: VillageOut) -> None:
    """The rows of the grids, exclusive and points layers, and each item's point, in code order."""
    pcodes = _point_records(t, u, grids, rows, out)
    npts = {c: 0 for c in grids.code.values()}
    for lab, _ in rows:
        npts[grids.code[lab]] += 1
    _grid_records(t, grids, npts, out)
    point_of_unit = np.full(len(u.geoms), -1, dtype=np.int64)
    for p, (_, m) in enumerate(rows):
        point_of_unit[m] = p
    out.item_point = [pcodes[point_of_unit[i]] if i >= 0 else None for i in u.item_unit.tolist()]
    for recs in (out.grids, out.exclusive, out.points):  # code order is reading order
        recs.sort(key=lambda r: r["code"])


def _point_records(t: VillageTask, u: _Units, grids: _Grids, rows: list[_PointRow], out: VillageOut) -> list[str]:
    """The points layer's rows; returns the point codes in ``rows`` order."""
    lo_p, hi_p = t.point_bounds
    ppoly = [union(u.geoms[m]) for _, m in rows]
    pcodes = _point_codes(t, [grids.code[lab] for lab, _ in rows], ppoly)
    for p, ((lab, m), poly) in enumerate(zip(rows, ppoly, strict=True)):
        h = float(u.size[m].sum())
        out.points.append({"code": pcodes[p], "parent": grids.code[lab], "village": t.code, "households": int(h),
                           "n_units": len(m), "kind": "exclusive" if lab.is_site else t.kind,
                           "within_bounds": within_bounds(h, (0.0 if lab.is_site else lo_p, hi_p)),
                           "grid_below_min": (not lab.is_site) and grids.households[lab] < lo_p,
                           "geometry": poly})
    return pcodes


def _grid_records(t: VillageTask, grids: _Grids, npts: dict[str, int], out: VillageOut) -> None:
    """The grids and exclusive layers' rows (``npts``: points per grid code)."""
    for lab in grids.base:
        h = grids.households[lab]
        gi = cast(int, lab.key) if lab.kind is LabelKind.GROUP else None
        extra = dict(t.group_extra[gi]) if gi is not None and t.group_extra else {}
        broken = limits_broken(h, grids.geometry[lab], t.grid_limits, t.persons_per_household)
        gf = _group_fields(t, lab, out.stats.get("grids_from", "partition"))
        out.grids.append({
            **extra,
            "code": grids.code[lab], "name": gf["name"],
            "parent": t.code, "households": int(h), "kind": t.kind, "source": gf["source"], "group": gf["group"],
            "n_points": npts[grids.code[lab]], "within_bounds": within_bounds(h, t.grid_bounds) and not broken,
            **({"population": round(h * t.persons_per_household), "bounds_broken": ",".join(broken)}
               if t.grid_limits.any else {}),
            "geometry": grids.geometry[lab]})
    for lab in grids.sites:
        si = grids.site_index[cast(int, lab.key)]
        out.exclusive.append({
            "code": grids.code[lab], "name": t.site_names[si], "parent": t.code,
            "category": t.site_categories[si], "households": int(grids.households[lab]), "kind": "exclusive",
            "source_id": t.site_ids[si], "n_points": npts[grids.code[lab]], "geometry": grids.geometry[lab]})


def _group_fields(t: VillageTask, lab: Label, drawn: str) -> dict[str, Any]:
    """A grid's name, source and group: its villager group's, the merged groups' (joined), or none."""
    gs = lab.groups()
    if lab.kind is LabelKind.GROUP:
        return {"name": t.group_names[gs[0]], "source": "villager_group", "group": t.group_codes[gs[0]]}
    if lab.kind is LabelKind.MERGED and "#" in str(lab.key):  # a piece of a group: 一组（2）
        name, piece = t.group_names[gs[0]], str(lab.key).split("#")[1]
        return {"name": name and f"{name}（{piece}）", "source": "villager_group_split", "group": t.group_codes[gs[0]]}
    if lab.kind is LabelKind.MERGED:
        names = [t.group_names[g] for g in gs]
        return {"name": "、".join(names) if all(names) else None, "source": "villager_groups_merged",
                "group": ",".join(t.group_codes[g] for g in gs)}
    return {"name": None, "source": drawn, "group": lab.group_code(t)}


# --------------------------------------------------------------------------------------
# codes and previous parts
# --------------------------------------------------------------------------------------
def _point_codes(t: VillageTask, parents: list[str], polys: list[Any]) -> list[str]:
    """Grid code + 3 digits, in reading order within each grid (previous codes kept where matched).

    ``parents`` holds the grid code of each point, ``polys`` its geometry.
    """
    codes: list[str] = [""] * len(parents)
    by_parent: dict[str, list[int]] = {}
    for i, pc in enumerate(parents):
        by_parent.setdefault(pc, []).append(i)
    prev = (t.previous or {}).get("points")
    for pc, idx in by_parent.items():
        sub = [polys[i] for i in idx]
        keep: list[str | None] | None = None
        if prev is not None:
            mask = [c.startswith(pc) for c in prev[1]]
            if any(mask):
                og = np.asarray(prev[0], dtype=object)[np.asarray(mask)]
                oc = [c for c, m in zip(prev[1], mask, strict=True) if m]
                keep = _codes.match_previous(sub, og, oc)
        x, y, a = metric_xy(sub)
        for i, c in zip(idx, _codes.number(pc, x, y, a, width=3, keep=keep), strict=True):
            codes[i] = c
    return codes


def _previous_labels(t: VillageTask, level: str, units: NDArray[np.int64], rep: GArray) -> dict[int, str] | None:
    """Unit -> the code of the earlier build's part it lies in (``--previous``), so the engine
    re-draws a changed village moving as few units as it can (dynamic adjustment)."""
    prev = (t.previous or {}).get(level)
    if prev is None or len(prev[0]) == 0 or len(units) == 0:
        return None
    where = containing(np.asarray(prev[0], dtype=object), rep[units])
    return {int(u): prev[1][w] for u, w in zip(units.tolist(), where.tolist(), strict=True) if w >= 0} or None


def check_village(t: VillageTask, out: VillageOut, *, slack_m: float = 0.0) -> None:
    """Grids + exclusive grids tile the village; points tile their grid; every item in one point.

    ``slack_m`` widens the village tolerance by that many metres times the
    village's perimeter: a village taken from an earlier build comes with its
    written coordinates (rounded, :data:`gridgeo.county.coverage.ROUNDING_M`),
    while ``t.geometry`` is the input's.

    Raises
    ------
    GeometryError
        Naming the village and what does not hold.
    """
    tol = t.tolerance_m2
    tol_village = tol + slack_m * float(shapely.length(t.geometry))
    area = float(shapely.area(t.geometry))
    level2 = [r["geometry"] for r in out.grids] + [r["geometry"] for r in out.exclusive]
    total = float(np.sum(shapely.area(np.asarray(level2, dtype=object)))) if level2 else 0.0
    covered = union(np.asarray(level2, dtype=object)) if level2 else shapely.Polygon()
    sym = float(shapely.area(shapely.symmetric_difference(covered, t.geometry)))
    overlap = max(total - float(shapely.area(covered)), 0.0)
    out.stats["tiling"] = {"village_m2": round(area, 3), "grids_m2": round(total, 3), "gap_m2": round(sym, 6),
                           "overlap_m2": round(overlap, 6)}
    if sym > tol_village or overlap > tol:
        raise GeometryError(f"village {t.code} {t.name}: grids do not tile the village "
                            f"(gap {sym:.3f} m², overlap {overlap:.3f} m², tolerance {tol_village:g} m²)")
    pt_area: dict[str, float] = {}
    for r in out.points:
        pt_area[r["parent"]] = pt_area.get(r["parent"], 0.0) + float(shapely.area(r["geometry"]))
    worst = 0.0
    for r in out.grids + out.exclusive:
        worst = max(worst, abs(pt_area.get(r["code"], 0.0) - float(shapely.area(r["geometry"]))))
    out.stats["tiling"]["points_worst_m2"] = round(worst, 6)
    if worst > tol:
        raise GeometryError(f"village {t.code} {t.name}: grid points do not tile their grid "
                            f"(worst difference {worst:.3f} m², tolerance {tol:g} m²)")
    orphans = sum(c is None for c in out.item_point)
    if orphans:
        raise GeometryError(f"village {t.code} {t.name}: {orphans} building(s)/household(s) in no grid point")
    if len(t.items):
        by_code = {r["code"]: r["geometry"] for r in out.points}
        mine = np.asarray([by_code[c] for c in out.item_point], dtype=object)
        polys = np.asarray(list(by_code.values()), dtype=object)
        shapely.prepare(polys)  # each point is tested against many items
        bad = int(np.sum(~shapely.intersects(mine, t.items)))  # prepared: the first argument
        if bad:
            raise GeometryError(f"village {t.code} {t.name}: {bad} building(s)/household(s) lie outside the grid "
                                "point they were assigned to")
        out.stats["items"] = len(t.items)
        if shapely.get_type_id(t.items[0]) in (3, 6):
            # only a building not within its point can be cut by the point's edge (most are within: cheap)
            maybe = np.flatnonzero(~shapely.contains(mine, t.items))
            ia = shapely.area(t.items[maybe])
            inside = shapely.area(shapely.intersection(t.items[maybe], mine[maybe]))
            out.stats["items_cut"] = int(np.sum(inside < 0.999 * ia - 1e-9))
        else:
            out.stats["items_cut"] = 0
        shapely.destroy_prepared(polys)  # the rows keep plain polygons
    check_sublevels(t, out)
