"""The county pipeline: ``gridgeo build RULES.toml -o county.gpkg``.

townships -> blocks -> villages -> grids -> points and exclusive grids, in
one command, from the inputs the rules file names (a county GeoPackage as
``gridgeo synth`` writes it, an OSM extract, or separate layer files).

Why this order
--------------
Households are counted first (given on buildings or household points, or
estimated from footprints, :func:`gridgeo.county.units.estimate_households`), because
every level's size rule is in households. Blocks group whole villages, so
they need only the village totals: one worker draws them while the others
build villages (:class:`_BlocksJob`). Everything below a village depends on
that village alone (:mod:`gridgeo.county.village`), so villages are built in parallel
worker processes, each with a seed derived from its own code: the same inputs
and seed give the same county, and a village whose inputs did not change
keeps its grids, points and codes when another village is re-drawn.

What is written
---------------
A GeoPackage with layers ``townships``, ``blocks``, ``villages``, ``grids``,
``points``, ``exclusive`` and ``households`` (one row per building or
household point: the grid point, grid, village and township it belongs to),
each with ``code``, ``name``, ``parent`` and ``households`` (DESIGN.md), plus
the input ``roads`` and ``pois`` unchanged (so the file is all the patrol
planner and the service need), in the villages' geographic CRS (EPSG:4490 for CGCS2000 inputs). The file is
written to a temporary name and moved into place, so a failed build leaves
no half-written output. The report (:class:`BuildResult.report`) gives counts
per level, the share of blocks, grids and points inside their bounds, given
versus estimated households, the tiling check and the time per level.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from tqdm import tqdm

from gridgeo.county import sources as _src
from gridgeo.county._estimate import villages_only
from gridgeo.county._households import households_frame, households_inside, index_by, item_geoms
from gridgeo.county._job import AREA_KEY, VillageJob, to_output_crs
from gridgeo.county._pool import WorkerPool, trim_memory
from gridgeo.county._walk_repair import Fitted, walk_repaired
from gridgeo.county.areas import add_areas
from gridgeo.county.assign import assign_items
from gridgeo.county.audit import Start, StartFrom
from gridgeo.county.coverage import ROUNDING_M, clean_levels, verify_levels
from gridgeo.county.fingerprint import fingerprint
from gridgeo.county.micro import SUB_LEVELS, atoms_frame, village_sub
from gridgeo.county.policy import (
    VillagePolicy,
    apply_kinds,
    fitted_walk,
    share_targets,
    targets_made,
    task_fields,
    uses_walk,
    village_policies,
)
from gridgeo.county.report import summary
from gridgeo.county.rules import CountyRules, within_bounds
from gridgeo.county.sources import Items, column, load_inputs, metric_geoms
from gridgeo.county.village import VillageOut, VillageTask, check_village
from gridgeo.county.walk_check import check_walk_rules, walk_check
from gridgeo.data import crs as _crs
from gridgeo.data.io import list_layers, read_layer
from gridgeo.data.registers import register_report
from gridgeo.errors import GeometryError, InputError, UsageError, raise_pending
from gridgeo.patrol.network import build_network
from gridgeo.people.roster import build_people

log = logging.getLogger(__name__)

__all__ = ["LEVELS", "BuildResult", "build_county", "load_inputs"]

#: The layers a build writes, in order.
LEVELS: tuple[str, ...] = ("townships", "blocks", "villages", "grids", "points", "exclusive", "households")
#: Input layers copied into the output unchanged: the patrol planner walks the roads and visits the POIs.
PASS_THROUGH: tuple[str, ...] = ("roads", "pois")

GArray = NDArray[np.object_]
IArray = NDArray[np.int64]
#: level -> (geometries in the metric CRS, codes) of an earlier build
Previous = dict[str, tuple[GArray, list[str]]]


@dataclass
class BuildResult:
    """The built layers (geographic CRS) and the closing report."""

    layers: dict[str, gpd.GeoDataFrame]
    report: dict[str, Any]


@dataclass
class _County:
    """What the stages after reading share: the layers, the checked villages and the weighted items."""

    layers: dict[str, gpd.GeoDataFrame]
    towns: gpd.GeoDataFrame
    vil: gpd.GeoDataFrame  # gains households, block and build_hash columns as the build goes
    metric: pyproj.CRS
    out_crs: pyproj.CRS
    vgeom: GArray  # village geometries in the metric CRS
    items: Items  # its geoms emptied once they are item_wkb
    item_v: IArray  # village index of each item, -1 outside every village
    item_wkb: NDArray[np.object_]  # the items' geometries (metric) as WKB: a fifth of their size as objects
    start: Start | None = None  # hand-drawn grids per village (--start-from), steering the draw as --previous does
    groups: _Groups | None = None  # the villager groups (read once, for the policy and the tasks)
    policies: list[VillagePolicy] | None = None  # per village: bounds, ratios, targets (gridgeo.county.policy)


@dataclass(frozen=True)
class _Blocks:
    """The blocks layer, each village's block, and the blocks' part of the report."""

    gdf: gpd.GeoDataFrame
    block_of: dict[str, str]
    report: dict[str, Any]
    seconds: float = 0.0  # how long they took to draw (they run beside the villages)


class _Clock:
    """Seconds per stage, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self.t
        self.t = now


def _end_stage(clock: _Clock, name: str) -> None:
    """End stage ``name``: an interrupt that compiled code swallowed in it stops the build here, the
    stage's freed heap goes back to the system (glibc keeps it: after a province's read, 1.3 of 2.8 GiB),
    and the clock laps."""
    raise_pending()
    trim_memory()
    clock.lap(name)


# --------------------------------------------------------------------------------------
def build_county(
    rules: CountyRules,
    *,
    county: str | Path | None = None,
    previous: str | Path | None = None,
    workers: int | None = None,
    progress: bool = False,
    scheduler: str | None = None,
    start_from: StartFrom | None = None,
) -> BuildResult:
    """Build every level of the county (see the module notes).

    Stages, in order: read (inputs, villages, items), blocks (in a worker
    beside the villages when there are local workers), villages (each task
    made as a worker is ready for it; reused from ``previous`` or built, in
    parallel), assemble the layers, and the report.

    Parameters
    ----------
    rules
        The county's rules (:func:`gridgeo.county.rules.load_county_rules`).
    county
        A county GeoPackage to read the inputs from (``--input``).
    previous
        An earlier build. Villages whose inputs are unchanged (same
        fingerprint) are taken from it and re-checked; the others are
        re-drawn starting from their old grids and points (dynamic
        adjustment: as few units move as the engine can), and a part that
        continues an old one (intersection over union >= 0.5) keeps its code.
    workers
        Worker processes for the villages (default: the rules' ``workers``,
        else the CPU count); 1 builds in this process.
    progress
        Show a progress bar over the villages.
    scheduler
        The address of a Dask scheduler (``tcp://HOST:PORT``): the villages
        are built by its workers instead of local processes
        (:mod:`gridgeo.county._dask`; needs ``pip install 'gridgeo[dask]'``,
        and gridgeo on every worker). The county comes out the same.
    start_from
        Hand-drawn grids (:class:`gridgeo.county.audit.StartFrom`) every village is re-drawn from as
        from ``previous``'s grids (excludes it); villager groups are then not used as grids (logged).

    Raises
    ------
    GeometryError
        A village that no rung of the fallback ladder
        (:mod:`gridgeo.county.ladder`) can tile, named with the last rung's
        stage. A village that needed a fallback is built and listed in the
        report's ``fallbacks``.
    InputError, SchemaError, UsageError
        Inputs that cannot be built from; ``workers`` with ``scheduler``; Dask
        not installed.
    SchedulerError
        The scheduler cannot be reached or used.
    """
    if scheduler is not None and workers is not None:
        raise UsageError("workers and a scheduler exclude each other: the scheduler's workers build the villages")
    if start_from is not None:
        rules = start_from.rules(rules, previous=previous)
    check_walk_rules(rules)  # issue 14 item 5: walk_check needs a [patrol] budget, refused before any work
    if scheduler is not None:
        from gridgeo.county._dask import check_scheduler  # Dask is optional: imported only when asked for

        check_scheduler(scheduler)
    n_workers = workers or rules.workers or (os.cpu_count() or 1)
    # forked before the county is read, so the workers do not hold a copy of it (WorkerPool)
    with WorkerPool(n_workers if scheduler is None and n_workers > 1 else 1) as pool:
        if scheduler is None and n_workers > 1:
            pool.start()
        fitted = Fitted()
        res = _build(rules, county=county, previous=previous, progress=progress, scheduler=scheduler,
                     n_workers=n_workers, pool=pool, start=start_from, fitted=fitted)
        return walk_repaired(res, rules, lambda r, first: _build(
            r, county=county, previous=first, progress=progress, scheduler=scheduler, n_workers=n_workers,
            pool=pool, start=start_from, fitted=fitted))


def _build(rules: CountyRules, *, county: str | Path | None, previous: str | Path | None, progress: bool,
           scheduler: str | None, n_workers: int, pool: WorkerPool, start: StartFrom | None = None,
           fitted: Fitted) -> BuildResult:
    """The stages of :func:`build_county`, the local villages and coverage chunks in ``pool``."""
    t_all = time.perf_counter()
    clock = _Clock()
    report: dict[str, Any] = {"rules": str(rules.source) if rules.source else None}
    c = _read_county(rules, county, report)
    if start is not None:
        c.start, report["start_from"] = start.read([str(v) for v in c.vil["code"]], c.vgeom, c.metric)
    _policy(c, rules, report, fitted)
    _end_stage(clock, "read")
    outs, blocks = _villages_and_blocks(c, rules, previous, report, pool=pool, progress=progress,
                                        scheduler=scheduler)
    _end_stage(clock, "villages_wall")
    c.vil["block"] = [blocks.block_of.get(v) for v in c.vil["code"]]
    clock.seconds = {"read": clock.seconds["read"], "blocks": blocks.seconds, **{
        k: v for k, v in clock.seconds.items() if k != "read"}}
    stage: Counter[str] = Counter()
    for o in outs:
        stage.update(o.seconds)
    report["cpu_seconds_by_stage"] = {k: round(v, 2) for k, v in sorted(stage.items())}
    clock.t = time.perf_counter()
    layers, drawn_areas = _assemble(c, blocks.gdf, outs)
    atoms = atoms_frame(outs, c.out_crs)  # micro-grids and lanes: the common pieces (gridgeo.county.micro)
    _release_rows(outs)
    trim_memory()
    coverage = clean_levels(layers, metric=c.metric, pool=pool, areas=drawn_areas, atoms=atoms)  # frees memory
    del atoms
    layers["households"] = households_frame(c, outs, layers["points"])
    coverage["households_moved_inside"] = households_inside(c, layers)
    c.item_wkb = np.zeros(0, dtype=object)  # placed: the footprints are not needed any more
    if rules.areas is not None:  # 片区: whole townships grouped (gridgeo.county.areas)
        report["areas"] = add_areas(layers, rules.areas, fallback_code=rules.code, metric=c.metric, seed=rules.seed)
    coverage["levels"] = verify_levels(layers, pool=pool)
    spec = rules.inputs.get("people")
    people = build_people((spec.path, spec.layer, spec.read_options()) if spec is not None else None,
                          county=Path(county) if county is not None else rules.county, previous=previous,
                          layers=layers, metric=c.metric)
    if people is not None:
        layers["people"] = people.table
        report["people"] = people.report()
    if report.get("register", {}).get("unplaced"):  # in the output file too, not only in a --report
        layers["register_unplaced"] = pd.DataFrame(report["register"]["unplaced"], columns=["row", "id", "reason"])
    for name in PASS_THROUGH:  # what the patrol planner and the map need besides the levels
        if name in c.layers and len(c.layers[name]):
            layers[name] = c.layers[name].to_crs(c.out_crs)
    _end_stage(clock, "assemble")
    if rules.walk_check:  # issue 14 item 5: every grid's day on the streets against the budget, last
        layers["walk_check"], report["walk_check"] = walk_check(layers, rules, network=fitted.network)
        _end_stage(clock, "walk_check")
    report.update(summary(layers, outs, items=c.items, item_v=c.item_v, rules=rules, block_report=blocks.report))
    report["coverage"] = coverage
    if "targets" in report and c.policies is not None:
        targets_made([str(v) for v in c.vil["code"]], c.policies, layers, report["targets"])
    clock.seconds["total"] = time.perf_counter() - t_all
    report["seconds"] = {k: round(v, 2) for k, v in clock.seconds.items()}
    report["workers"] = n_workers if scheduler is None else report.get("scheduler", {}).get("threads", 0)
    return BuildResult(layers, report)


def _villages_and_blocks(c: _County, rules: CountyRules, previous: str | Path | None, report: dict[str, Any], *,
                         pool: WorkerPool, progress: bool, scheduler: str | None) -> tuple[list[VillageOut], _Blocks]:
    """The villages (:func:`_build_villages`) and the blocks: drawn by a worker beside them where there are
    local workers (a failure of either stops the other at once), else first, in this process."""
    job = _BlocksJob(_block_inputs(c.vil, rules), rules)
    if pool.workers <= 1 or scheduler is not None:
        blocks = job(None)
        return _build_villages(c, rules, previous, report, pool=pool, progress=progress,
                               scheduler=scheduler), blocks
    side = pool.submit(job, None)
    outs = _build_villages(c, rules, previous, report, pool=pool, progress=progress, also=[side])
    return outs, side.result()  # drawn by now, as a rule: a minute of a province's ten


# --------------------------------------------------------------------------------------
# read
# --------------------------------------------------------------------------------------
def _read_county(rules: CountyRules, county: str | Path | None, report: dict[str, Any]) -> _County:
    """Inputs read, villages checked, items weighed and placed in their village (households per village)."""
    layers = load_inputs(rules, county=county)
    towns, vil = _src.prepare_villages(layers, report)
    metric = _crs.metric_crs(vil)
    out_crs = vil.crs if vil.crs is not None and vil.crs.is_geographic else pyproj.CRS.from_epsg(4490)
    report["metric_crs"] = metric.to_string()
    vgeom = metric_geoms(vil, metric)
    missing = _src.missing_layer_warnings(layers)
    items = _src.items(layers, rules, metric)  # takes the buildings and households out of layers
    if items.source is None:
        items = villages_only(vil, vgeom, report)
    warnings = [*missing, *items.warnings]
    item_v = _group_by_village(items.geoms, vgeom)
    outside = int(np.sum(item_v < 0))
    if outside:
        log.warning("%d %s(s) lie outside every village and belong to no grid point", outside,
                    items.source or "item")
    if items.register is not None:
        report["register"] = register_report(items.register, outside=np.flatnonzero(item_v < 0))
        warnings += items.register.notes
    if warnings:  # only then: a clean build's report keeps its exact shape
        report["warnings"] = warnings
    w = items.weights
    inside = item_v >= 0
    vil["households"] = np.bincount(item_v[inside], weights=w[inside], minlength=len(vil)).astype(int) \
        if len(w) else 0
    vil["households_estimated"] = np.bincount(item_v[inside & items.estimated],
                                              weights=w[inside & items.estimated],
                                              minlength=len(vil)).astype(int) if len(w) else 0
    # from here on the footprints are held as WKB, made into geometries a village at a time (_tasks)
    wkb = np.asarray(shapely.to_wkb(items.geoms), dtype=object)
    return _County(layers=layers, towns=towns, vil=vil, metric=metric, out_crs=out_crs, vgeom=vgeom,
                   items=replace(items, geoms=np.zeros(0, dtype=object)), item_v=item_v, item_wkb=wkb)


def _policy(c: _County, rules: CountyRules, report: dict[str, Any], fitted: Fitted) -> None:
    """Kinds, bounds, limits and targets per village (:mod:`gridgeo.county.policy`), into ``c`` and the report."""
    names = {str(k): str(v) for k, v in zip(c.towns["code"], c.towns["name"], strict=True)} \
        if "name" in c.towns.columns else {}
    kinds = apply_kinds(c.vil, c.vgeom, rules, township_names=names)
    if kinds is not None:
        report["kinds"] = kinds
    c.groups = _groups(c, rules)
    if uses_walk(rules) and fitted.limit is None:  # once per build_county: the re-draw rounds take it again
        if "roads" not in c.layers or not len(c.layers["roads"]):
            raise InputError("a walk bound ([bounds] walk = ...) needs the county's roads to fit k on",
                             path=rules.source)
        places = shapely.get_coordinates(shapely.point_on_surface(shapely.from_wkb(c.item_wkb)))
        fitted.network = build_network(c.layers["roads"], crs=c.metric)
        fitted.limit, fitted.report = fitted_walk(fitted.network, places, c.items.weights, rules)
    report.update({"walk_limit": fitted.report} if fitted.report is not None else {})
    policies = village_policies(c.vil, c.vgeom, rules, township_names=names, walk=fitted.limit)
    per_village = np.bincount(c.groups.village[c.groups.village >= 0], minlength=len(c.vil)).tolist()
    c.policies, targets = share_targets(c.vil, policies, rules, groups=per_village)
    if targets:
        report["targets"] = targets
    notes = [n for p in c.policies for n in p.notes]
    if notes:
        report["policy_notes"] = notes[:50]
        log.warning("%d village bound(s) contradict their limits; e.g. %s", len(notes), notes[0])


def _group_by_village(geoms: GArray, villages: GArray) -> IArray:
    """Village index of each geometry (buildings by overlap), -1 outside every village."""
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.int64)
    return assign_items(villages, geoms)



# --------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------
def _block_inputs(vil: gpd.GeoDataFrame, rules: CountyRules) -> gpd.GeoDataFrame:
    """The village columns the blocks are made from (what travels to the worker that draws them)."""
    similar = [c for c in rules.block_similar if c in vil.columns and c != "kind"]
    return vil[["code", "name", "township", "kind", "households", "geometry", *similar]]


@dataclass(frozen=True)
class _BlocksJob:
    """:func:`_county_blocks` as a worker's job, timed: it runs beside the villages (:meth:`WorkerPool.submit`).

    Why beside: the blocks need only the villages' totals, not their grids,
    and on a province they are a minute of single-process work that held
    the parent before any village started. Why a worker process and not a
    thread: an interrupt ends a worker (the pool stops it) but not a thread
    inside GEOS, which could abort the interpreter at exit.
    """

    vil: gpd.GeoDataFrame
    rules: CountyRules

    def __call__(self, _: None) -> _Blocks:
        t = time.perf_counter()
        b = _county_blocks(self.vil, self.rules)
        trim_memory()  # the worker goes on to build villages: not at the blocks' peak (0.8 GiB on a province)
        return _Blocks(b.gdf, b.block_of, b.report, seconds=time.perf_counter() - t)


def _county_blocks(vil: gpd.GeoDataFrame, rules: CountyRules) -> _Blocks:
    """Villages grouped into blocks per township (:func:`gridgeo.county.blocks.make_blocks`), as a layer."""
    from gridgeo.county.blocks import make_blocks

    if not rules.blocks:
        return _Blocks(gpd.GeoDataFrame({"code": []}, geometry=[], crs=vil.crs), {}, {})
    similar = [c for c in rules.block_similar if c in vil.columns]
    bo = make_blocks(_block_inputs(vil, rules),
                     id_col="code", group_col="township", size_col="households", min_size=rules.block_min,
                     max_size=rules.block_max, count=rules.block_count, similar=similar, seed=rules.seed)
    b = bo.blocks
    block_of = {str(v): str(code) for code, members in zip(b["block_id"], b["members"], strict=True) for v in members}
    bounds = (rules.block_min or 0.0, rules.block_max or math.inf)
    within = [within_bounds(float(s), bounds) and not viol for s, viol in zip(b["size"], b["violations"], strict=True)]
    out = gpd.GeoDataFrame({
        "code": b["block_id"].astype(str),
        "name": [f"第{str(c)[-2:]}片区" for c in b["block_id"]],
        "parent": b["group"].astype(str),
        "households": b["size"].astype(int),
        "n_villages": b["n_units"].astype(int),
        "members": [json.dumps([str(m) for m in ms], ensure_ascii=False) for ms in b["members"]],
        "kind": b["kind"] if "kind" in b.columns else None,
        "within_bounds": within,
        "violations": [",".join(v) for v in b["violations"]],
    }, geometry=b.geometry.values, crs=b.crs)
    violations = bo.report.get("violations")
    rep = {"blocks": len(out), "within_bounds": float(np.mean(within)) if within else 1.0,
           "violations": violations[:20] if isinstance(violations, list) else violations}
    return _Blocks(out, block_of, rep)


# --------------------------------------------------------------------------------------
# village tasks
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Groups:
    """The villager groups (metric CRS) with the village each lies in and their leader fields."""

    geoms: GArray
    village: IArray
    codes: list[str]
    names: list[str | None]
    extra: list[dict[str, Any]]  # per group: leader* fields given (empty when no leader column)


def _groups(c: _County, rules: CountyRules) -> _Groups:
    groups = c.layers.get("villager_groups")
    if groups is None or not len(groups) or not rules.use_groups:
        return _Groups(np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), [], [], [])
    groups = groups.reset_index(drop=True)
    ggeom = metric_geoms(groups, c.metric)
    lead = [col for col in groups.columns if str(col).startswith("leader")]
    gextra = [{k: v for k, v in zip(lead, vals, strict=True) if v is not None}
              for vals in zip(*[column(groups, k) for k in lead], strict=True)] if lead else []
    return _Groups(geoms=ggeom, village=_group_by_village(ggeom, c.vgeom),
                   codes=[str(v) for v in column(groups, "code")],
                   names=[str(n) if n is not None else None for n in column(groups, "name")], extra=gextra)


def _tasks(c: _County, rules: CountyRules, previous: str | Path | None) -> Iterator[VillageTask]:
    """One task per village, in the villages' order, holding that village's share of every input."""
    bar_geoms = _src.barriers(c.layers, rules, c.metric)
    bar_tree = shapely.STRtree(bar_geoms) if len(bar_geoms) else None
    sites = _src.sites(c.layers, rules, c.metric)
    groups = c.groups if c.groups is not None else _groups(c, rules)
    policies = c.policies
    prev = _read_previous(previous, c.metric) if previous is not None else None
    roads, road_names = _src.lane_roads(c.layers, rules, c.metric) if rules.lanes else (np.zeros(0, dtype=object), [])
    road_tree = shapely.STRtree(roads) if len(roads) else None
    n = len(c.vil)
    by_v_items = index_by(c.item_v, n)
    by_v_sites = index_by(_group_by_village(sites.geoms, c.vgeom), n)
    by_v_groups = index_by(groups.village, n)
    items = c.items
    for i, row in enumerate(c.vil.itertuples(index=False)):  # lazily: only the villages in flight hold geometries
        code = str(row.code)
        g = c.vgeom[i]
        barriers = bar_geoms[np.sort(bar_tree.query(g, predicate="intersects"))] if bar_tree is not None \
            else np.zeros(0, dtype=object)
        it, st, gi = by_v_items[i], by_v_sites[i], by_v_groups[i]
        pol = policies[i] if policies is not None else None
        b = pol.bounds if pol is not None else rules.bounds_for(str(row.kind))
        yield VillageTask(
            code=code, name=str(getattr(row, "name", "") or ""), kind=str(row.kind), geometry=g,
            barriers=barriers,
            group_codes=[groups.codes[j] for j in gi], group_names=[groups.names[j] for j in gi],  # type: ignore[misc]
            group_geoms=groups.geoms[gi], items=item_geoms(c, it), weights=items.weights[it],
            item_labels=[items.labels[j] for j in it] if items.labels is not None else None,
            site_geoms=sites.geoms[st], site_names=[sites.names[j] for j in st],
            site_categories=[sites.categories[j] for j in st], site_ids=[sites.ids[j] for j in st],
            grid_bounds=b.grid, point_bounds=b.point, use_groups=rules.use_groups, points=rules.points,
            seed=rules.seed, min_unit_m2=rules.min_unit_m2, site_radius_m=rules.site_radius_m,
            site_max_block_m2=rules.site_max_block_m2, site_min_m2=rules.site_min_m2, iterations=rules.iterations,
            restarts=rules.restarts, tolerance_m2=rules.tolerance_m2,
            previous=c.start.get(code) if c.start is not None else _previous_of(prev, code),
            group_extra=[groups.extra[j] for j in gi] if groups.extra else None,
            sub=village_sub(rules, str(row.kind), g, bounds=b, roads=roads, names=road_names, tree=road_tree),
            **(task_fields(pol, rules) if pol is not None else {}))


def _read_previous(path: str | Path, metric: pyproj.CRS) -> Previous:
    """The grids, exclusive grids and points of an earlier build (metric CRS, with their codes)."""
    have = set(list_layers(path))
    out: Previous = {}
    for lvl in ("grids", "exclusive", "points"):
        if lvl in have:
            g = read_layer(path, layer=lvl)
            out[lvl] = (metric_geoms(g, metric), [str(c) for c in g["code"]])
    return out


def _previous_of(prev: Previous | None, code: str) -> Previous | None:
    """The part of an earlier build inside one village: the parts whose codes start with the village's."""
    if prev is None:
        return None
    return {lvl: (geoms[[c.startswith(code) for c in cs]], [c for c in cs if c.startswith(code)])
            for lvl, (geoms, cs) in prev.items()}


# --------------------------------------------------------------------------------------
# villages
# --------------------------------------------------------------------------------------
def _build_villages(c: _County, rules: CountyRules, previous: str | Path | None, report: dict[str, Any], *,
                    pool: WorkerPool, progress: bool, scheduler: str | None = None,
                    also: Sequence[Future[Any]] = ()) -> list[VillageOut]:
    """Every village, taken from ``previous`` when unchanged, else built; fingerprints go to ``build_hash``.

    A local build makes each task as a worker is ready for it (:meth:`WorkerPool.map`
    keeps a few in flight), so only those villages' buildings are geometry
    objects at a time. A build from ``previous`` makes every task first (which
    are unchanged needs every fingerprint), and so does a Dask build (each
    task is scattered to the cluster).
    """
    fps: list[str] = []
    tasks = _fingerprinted(_tasks(c, rules, previous), fps)
    job = VillageJob(metric=c.metric.to_wkt(), out=c.out_crs.to_wkt())  # rows come back in the output CRS
    reused: dict[int, VillageOut] = {}
    if previous is None and scheduler is None:
        outs = _run(job, tasks, pool, progress=progress, total=len(c.vil), also=also)
    else:
        every = list(tasks)
        reused = _reuse(previous, c.metric, every, fps) if previous is not None else {}
        for o in reused.values():
            to_output_crs(o, metric=job.metric, out=job.out)
        todo = [t for i, t in enumerate(every) if i not in reused]
        fresh = iter(_run(job, todo, pool, progress=progress, total=len(todo), also=also)
                     if scheduler is None or not todo
                     else _run_dask(job, todo, scheduler, progress=progress, report=report))
        outs = [reused[i] if i in reused else next(fresh) for i in range(len(every))]
    names = [str(n or "") for n in column(c.vil, "name")]
    c.vil["build_hash"] = [_mark_fallback(o, name, fp) for o, name, fp in zip(outs, names, fps, strict=True)]
    report["reused_villages"] = len(reused)
    return outs


def _fingerprinted(tasks: Iterator[VillageTask], fps: list[str]) -> Iterator[VillageTask]:
    """The tasks as they come, each one's fingerprint appended to ``fps`` first."""
    for t in tasks:
        fps.append(fingerprint(t))
        yield t


def _mark_fallback(o: VillageOut, name: str, fp: str) -> str:
    """The village's ``build_hash``: its fingerprint, with ``+RUNG`` when a fallback rung built it (logged).

    Why mark it: a village built by a fallback is never taken unchanged by a
    later ``--previous`` build (the hashes differ), so that build tries the
    pipeline again -- the cause may have been fixed -- and reports it again if not.
    """
    fb = o.stats.get("fallback")
    if not fb:
        return fp
    log.warning("village %s %s: built by the fallback rung %r (%s)", o.code, name, fb["rung"],
                "; ".join(fb["failed"]))
    return f"{fp}+{fb['rung']}"


def _reuse(previous: str | Path, metric: pyproj.CRS, tasks: list[VillageTask], fps: list[str]) -> dict[
        int, VillageOut]:
    """Villages whose inputs are unchanged since ``previous`` was built, taken from it (and re-checked).

    Why: re-drawing one village of a county should not cost the whole county.
    A village is taken only when its fingerprint (:func:`gridgeo.county.fingerprint.fingerprint`:
    every input field of its task) equals the one the old build recorded and
    every building of it has its old assignment; everything taken goes through
    the same tiling check, and a village that fails it is re-drawn instead.
    """
    want = _unchanged(previous, tasks, fps)
    if not want:
        return {}
    rows = _previous_rows(previous, metric)
    assign = _previous_assignment(previous)
    out: dict[int, VillageOut] = {}
    for i in want:
        t = tasks[i]
        mine = assign.get(t.code, [])
        if len(mine) != len(t.items) or t.sub is not None:  # micro-grids and lanes: drawn again with their atoms
            continue
        o = VillageOut(code=t.code, grids=rows.get("grids", {}).get(t.code, []),
                       exclusive=rows.get("exclusive", {}).get(t.code, []),
                       points=rows.get("points", {}).get(t.code, []), item_point=list(mine),
                       stats={"reused": True})
        t0 = time.perf_counter()
        try:
            check_village(t, o, slack_m=ROUNDING_M)
        except GeometryError as err:  # its old grids were edited since, or no longer fit: draw it again
            log.info("%s: not taken from %s (%s); re-drawn", t.code, previous, err)
            continue
        o.seconds["check"] = time.perf_counter() - t0
        out[i] = o
    log.info("%d of %d villages unchanged since %s: taken from it", len(out), len(tasks), previous)
    return out


def _unchanged(previous: str | Path, tasks: list[VillageTask], fps: list[str]) -> list[int]:
    """The tasks whose fingerprint equals the ``build_hash`` the earlier build recorded for the village."""
    have = set(list_layers(previous))
    if not {"villages", "grids", "points", "exclusive", "households"} <= have:
        return []
    old_v = read_layer(previous, layer="villages")
    if "build_hash" not in old_v.columns:
        return []
    old_hash = dict(zip(old_v["code"].astype(str), old_v["build_hash"].astype(str), strict=True))
    return [i for i, (t, fp) in enumerate(zip(tasks, fps, strict=True)) if old_hash.get(t.code) == fp]


def _previous_rows(previous: str | Path, metric: pyproj.CRS) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """level -> village code -> the earlier build's rows of that level (metric CRS, NaN as None)."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for lvl, key in (("grids", "parent"), ("exclusive", "parent"), ("points", "village")):
        g = read_layer(previous, layer=lvl)
        g = g.to_crs(metric) if len(g) else g
        recs = g.drop(columns=[g.geometry.name, "township"], errors="ignore").to_dict("records")
        for r, geom in zip(recs, g.geometry.values, strict=True):
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            clean["geometry"] = geom
            rows.setdefault(lvl, {}).setdefault(str(r[key]), []).append(clean)
    return rows


def _previous_assignment(previous: str | Path) -> dict[str, list[str | None]]:
    """village code -> the grid point of each of its items in the earlier build, in the items' order.

    The assignment rows of a village are in its items' order (the build writes
    them so), and an equal fingerprint means equal items in equal order: match
    by position (row-number ids of a file without an id column shift when
    another village's buildings change; positions do not).
    """
    hh = read_layer(previous, layer="households")
    assign: dict[str, list[str | None]] = {}
    for v, pt in zip(hh["village"], hh["point"], strict=True):
        if isinstance(v, str):
            assign.setdefault(v, []).append(pt if isinstance(pt, str) else None)
    return assign


def _run(job: VillageJob, tasks: Iterable[VillageTask], pool: WorkerPool, *, progress: bool,
         total: int, also: Sequence[Future[Any]] = ()) -> list[VillageOut]:
    """Build the villages, in their order, in this process or in the pool's worker processes.

    Each through the fallback ladder, its rows then in the output CRS (:class:`gridgeo.county._job.VillageJob`).

    An interrupt (or a failing village) ends the worker processes before it
    goes on (:class:`gridgeo.county._pool.WorkerPool`): none is left behind.
    """
    bar = tqdm(total=total, desc="villages", unit="village", disable=not progress)
    try:
        if pool.workers <= 1 or total < 4:
            out = []
            for t in tasks:
                out.append(job(t))
                bar.update(1)
            return out
        # results come back in input order whatever order the workers finish in
        return pool.map(job, tasks, on_result=lambda: bar.update(1), also=also)
    finally:
        bar.close()


def _run_dask(job: VillageJob, tasks: list[VillageTask], scheduler: str, *, progress: bool,
              report: dict[str, Any]) -> list[VillageOut]:
    """Build the villages on the Dask cluster at ``scheduler``, in their order (:mod:`gridgeo.county._dask`).

    Imported here, not at the top: Dask is an optional extra, and a local
    build should not pay for importing it.
    """
    from gridgeo.county._dask import run_dask

    bar = tqdm(total=len(tasks), desc="villages", unit="village", disable=not progress)
    try:
        run = run_dask(job, tasks, scheduler=scheduler, keys=[f"village-{t.code}" for t in tasks],
                       on_result=lambda: bar.update(1))
    finally:
        bar.close()
    report["scheduler"] = {"address": scheduler, "threads": run.threads}
    return run.results


# --------------------------------------------------------------------------------------
# assemble
# --------------------------------------------------------------------------------------
def _assemble(c: _County, blocks: gpd.GeoDataFrame, outs: list[VillageOut]) -> tuple[
        dict[str, gpd.GeoDataFrame], dict[str, NDArray[np.float64]]]:
    """The output layers of units, in the output CRS (the households layer follows the cleaning).

    And the metric area of every grid, exclusive grid and point as drawn (:mod:`gridgeo.county._job`),
    which the cleaning reports its area changes against.
    """
    levels = _level_frames(c, outs)
    areas = {name: np.asarray([r.get(AREA_KEY, np.nan) for o in outs for r in getattr(o, name)], dtype=float)
             for name in levels}
    return {"townships": _townships_frame(c, blocks), "blocks": blocks.to_crs(c.out_crs) if len(blocks) else blocks,
            "villages": _villages_frame(c, outs), **levels}, areas


def _release_rows(outs: list[VillageOut]) -> None:
    """Drop the villages' row geometries once the layers hold them: a province's are a gigabyte.

    Why the households layer waits: it is a row per building (3M in a
    province); made after the cleaning, it is never held alongside the
    cleaning's copies of every level.
    """
    for o in outs:
        for rows in (o.grids, o.exclusive, o.points, o.micro_grids, o.lanes):
            for r in rows:
                r["geometry"] = None
        o.atoms = []


def _level_frames(c: _County, outs: list[VillageOut]) -> dict[str, gpd.GeoDataFrame]:
    """The grids, points and exclusive layers from the villages' rows (each with its township)."""
    def frame(rows: list[dict[str, Any]], cols: list[str]) -> gpd.GeoDataFrame:
        data = {k: [r.get(k) for r in rows] for k in cols}
        return gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows], crs=c.out_crs)  # moved by the workers

    town_of = dict(zip(c.vil["code"], c.vil["township"], strict=True))
    grids_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.grids]
    ex_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.exclusive]
    pt_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.points]
    lead = sorted({k for r in grids_rows for k in r if k.startswith("leader")})
    limits = [k for k in ("population", "bounds_broken") if any(k in r for r in grids_rows)]  # [bounds] limits
    grids = frame(grids_rows, ["code", "name", "parent", "township", "households", "kind", "source", "group",
                               "n_points", "within_bounds", *limits, *lead])
    excl = frame(ex_rows, ["code", "name", "parent", "township", "category", "households", "kind", "source_id",
                           "n_points"])
    points = frame(pt_rows, ["code", "parent", "village", "township", "households", "n_units", "kind",
                             "within_bounds", "grid_below_min"])
    out = {"grids": grids, "points": points, "exclusive": excl}
    for level in SUB_LEVELS:  # micro-grids and lanes, where the rules draw them (gridgeo.county.micro)
        rows = [dict(r, township=town_of[o.code]) for o in outs for r in getattr(o, level)]
        if rows:
            out[level] = frame(rows, ["code", *(["name", "street"] if level == "lanes" else []), "parent",
                                      "village", "township", "households", "n_items", "kind", "within_bounds",
                                      "grid_below_min", *(["merged"] if level == "lanes" else [])])
    return out


def _villages_frame(c: _County, outs: list[VillageOut]) -> gpd.GeoDataFrame:
    by_code = {o.code: o for o in outs}
    v = c.vil.copy()
    v = v.rename(columns={"township": "parent"})
    v["n_grids"] = [len(by_code[k].grids) for k in v["code"]]
    v["n_exclusive"] = [len(by_code[k].exclusive) for k in v["code"]]
    v["n_points"] = [len(by_code[k].points) for k in v["code"]]
    keep = [k for k in ("code", "name", "parent", "block", "kind", "industry", "households", "households_estimated",
                        "population", "n_grids", "n_exclusive", "n_points", "build_hash") if k in v.columns]
    keep += [k for k in v.columns if str(k).startswith("leader") and k not in keep]
    return gpd.GeoDataFrame(v[keep], geometry=v.geometry.values, crs=c.vil.crs).to_crs(c.out_crs)


def _townships_frame(c: _County, blocks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    vil = c.vil
    t = c.towns.copy()
    hh = vil.groupby("township")["households"].sum()
    t["households"] = [int(hh.get(k, 0)) for k in t["code"]]
    t["n_villages"] = [int((vil["township"] == k).sum()) for k in t["code"]]
    t["n_blocks"] = [int((blocks["parent"] == k).sum()) if len(blocks) else 0 for k in t["code"]]
    tkeep = [k for k in ("code", "name", "kind", "households", "population", "n_blocks", "n_villages")
             if k in t.columns]
    tkeep += [k for k in t.columns if str(k).startswith("leader") and k not in tkeep]
    return gpd.GeoDataFrame(t[tkeep], geometry=t.geometry.values, crs=c.towns.crs).to_crs(c.out_crs)
