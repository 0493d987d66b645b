"""The county pipeline: ``gridgeo build RULES.toml -o county.gpkg``.

townships -> blocks -> villages -> grids -> points and exclusive grids, in
one command, from the inputs the rules file names (a county GeoPackage as
``gridgeo synth`` writes it, an OSM extract, or separate layer files).

Why this order
--------------
Households are counted first (given on buildings or household points, or
estimated from footprints, :func:`gridgeo.county.units.estimate_households`), because
every level's size rule is in households. Blocks group whole villages, so
they need only the village totals. Everything below a village depends on
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
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray
from tqdm import tqdm

from gridgeo.county import units as _units
from gridgeo.county.assign import assign_items
from gridgeo.county.fingerprint import fingerprint
from gridgeo.county.rules import CountyRules
from gridgeo.county.village import VillageOut, VillageTask, build_village, check_village
from gridgeo.data import crs as _crs
from gridgeo.data.io import list_layers, read_layer
from gridgeo.errors import InputError, SchemaError, UsageError

log = logging.getLogger(__name__)

__all__ = ["LEVELS", "BuildResult", "build_county", "load_inputs"]

#: The layers a build writes, in order.
LEVELS: tuple[str, ...] = ("townships", "blocks", "villages", "grids", "points", "exclusive", "households")
#: Input layers copied into the output unchanged: the patrol planner walks the roads and visits the POIs.
PASS_THROUGH: tuple[str, ...] = ("roads", "pois")
_INPUT_LAYERS = ("townships", "villages", "villager_groups", "buildings", "households", "roads", "water", "pois",
                 "ridges")


@dataclass
class BuildResult:
    """The built layers (geographic CRS) and the closing report."""

    layers: dict[str, gpd.GeoDataFrame]
    report: dict[str, Any]


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def load_inputs(rules: CountyRules, *, county: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Read the input layers the rules name; ``county`` (``--input``) overrides ``[inputs] county``.

    Raises
    ------
    UsageError
        No townships or villages can be found in what the rules name.
    """
    layers: dict[str, gpd.GeoDataFrame] = {}
    gpkg = Path(county) if county is not None else rules.county
    if gpkg is not None:
        have = set(list_layers(gpkg))
        for name in _INPUT_LAYERS:
            if name in have:
                layers[name] = _read(gpkg, name, name)
    elif rules.osm is not None:
        from gridgeo.data.inputs import county_from_osm

        layers.update(county_from_osm(rules.osm, county_code=rules.code, county_name=rules.name))
    for name, spec in rules.inputs.items():
        layers[name] = _read(spec.path, spec.layer, name)
    for need in ("townships", "villages"):
        if need == "townships" and "villages" in layers and "township" in layers["villages"].columns:
            continue  # made from the checked villages (_prepare_villages)
        if need not in layers:
            src = rules.source or "the rules"
            raise UsageError(f"{src}: no {need} layer: give [inputs] county = FILE.gpkg, osm = FILE.osm.pbf, "
                             f"or {need} = FILE (or --input FILE.gpkg)")
    return layers


def _townships_from_villages(villages: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Townships as the union of their villages, when only villages are given (logged).

    The township column's value becomes the township's code and name: boundary
    files of 村/里 often carry the township's name but no township layer.
    """
    v = villages[villages["township"].notna()]
    geoms = [shapely.union_all(shapely.make_valid(np.asarray(g.geometry.values)))
             for _, g in v.groupby("township", sort=True)]
    names = sorted(v["township"].astype(str).unique())
    log.warning("%s: no townships layer; %d townships made from the villages' township column",
                villages.attrs.get("source", "villages"), len(names))
    out = gpd.GeoDataFrame({"code": names, "name": names}, geometry=geoms, crs=villages.crs)
    out.attrs["source"] = "villages (dissolved)"
    return out


def _read(path: Path, layer: str | None, name: str) -> gpd.GeoDataFrame:
    from gridgeo.data.schema import SCHEMAS

    # a schema's kind normalises the columns (aliases such as 户数 or tname); ridges have none
    gdf = read_layer(path, layer=layer, kind=name if name in SCHEMAS else None)
    gdf.attrs["source"] = f"{path}" + (f" (layer {layer})" if layer else "")
    return gdf


# --------------------------------------------------------------------------------------
def _metric(gdf: gpd.GeoDataFrame, metric: pyproj.CRS) -> NDArray[np.object_]:
    return np.asarray(gdf.to_crs(metric).geometry.values, dtype=object)


def _col(gdf: gpd.GeoDataFrame, name: str) -> list[Any]:
    if name not in gdf.columns:
        return [None] * len(gdf)
    return [None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else v
            for v in gdf[name].tolist()]


def _check_villages(villages: gpd.GeoDataFrame, report: dict[str, Any]) -> gpd.GeoDataFrame:
    """Check and repair the villages (invalid rings, slivers are repaired and reported; errors refuse)."""
    from gridgeo.data.check import check_layer

    source = villages.attrs.get("source")
    checked = check_layer(villages, id_col="code", parent_col="township" if "township" in villages else None,
                          path=source)
    repaired = [f"{p.id}: {p.message}" for p in checked.report.problems if p.severity == "repaired"]
    for line in repaired:
        log.warning("%s: village %s", source or "villages", line)
    report["repaired"] = repaired
    message = checked.report.unusable_message(what="village")
    if message is not None:
        raise InputError(message, path=source)
    return checked.gdf.reset_index(drop=True)


def _prepare_villages(layers: Mapping[str, gpd.GeoDataFrame], report: dict[str, Any]) -> tuple[
        gpd.GeoDataFrame, gpd.GeoDataFrame]:
    from gridgeo.data.schema import village_kinds

    vil = layers["villages"].reset_index(drop=True)
    if "townships" not in layers:
        vil = _check_villages(vil, report)
        towns = _townships_from_villages(vil)
    else:
        towns = layers["townships"].reset_index(drop=True)
    src = vil.attrs.get("source")
    if "code" not in vil.columns or vil["code"].isna().any():
        raise SchemaError("every village needs a code", path=src)
    vil["code"] = vil["code"].astype(str)
    dup = vil["code"][vil["code"].duplicated()].tolist()
    if dup:
        raise SchemaError(f"duplicate village code {dup[0]}", path=src, feature=dup[0])
    towns["code"] = towns["code"].astype(str)
    if "township" not in vil.columns or vil["township"].isna().any():  # by location
        rp = gpd.GeoDataFrame(geometry=vil.geometry.representative_point(), crs=vil.crs).to_crs(towns.crs)
        hit = gpd.sjoin(rp, towns[["code", "geometry"]], predicate="within", how="left")
        hit = hit[~hit.index.duplicated()]
        given = vil["township"] if "township" in vil.columns else pd.Series([None] * len(vil))
        vil["township"] = [g if isinstance(g, str) and g else h for g, h in zip(given, hit["code"], strict=True)]
        if vil["township"].isna().any():
            bad = vil["code"][vil["township"].isna()].iloc[0]
            raise InputError("village lies in no township", path=src, feature=bad)
    vil["township"] = vil["township"].astype(str)
    unknown = sorted(set(vil["township"]) - set(towns["code"]))
    if unknown:
        raise InputError(f"villages name township {unknown[0]}, which is not in the townships layer", path=src)
    name = vil["name"] if "name" in vil.columns else pd.Series([None] * len(vil))
    vil["kind"] = village_kinds(vil["kind"] if "kind" in vil.columns else pd.Series([None] * len(vil)), name)
    vil["kind"] = vil["kind"].fillna("rural")
    if "townships" in layers:
        vil = _check_villages(vil, report)
    return towns, vil


def _items(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> dict[str, Any]:
    """Buildings or household points as weighted items, in the metric CRS."""
    if "households" in layers and len(layers["households"]):
        hh = layers["households"].reset_index(drop=True)
        geoms = _metric(hh, metric)
        w = np.asarray([1 if v is None else int(v) for v in _col(hh, "households")], dtype=np.int64)
        lab_col = next((c for c in ("group", "villager_group", "grid") if c in hh.columns), None)
        labels = [None if v is None else str(v) for v in _col(hh, lab_col)] if lab_col else None
        return {"source": "household", "geoms": geoms, "weights": w, "estimated": np.zeros(len(w), dtype=bool),
                "ids": [str(v) if v is not None else str(i) for i, v in enumerate(_col(hh, "id"))], "labels": labels}
    if "buildings" in layers and len(layers["buildings"]):
        b = layers["buildings"].reset_index(drop=True)
        mb = b.to_crs(metric)
        w, est = _units.estimate_households(mb, dwelling_m2=rules.dwelling_m2, default_levels=rules.default_levels,
                                            min_area_m2=rules.min_building_m2)
        ids = _col(b, "osm_id") if "osm_id" in b.columns else _col(b, "id")
        return {"source": "building", "geoms": np.asarray(mb.geometry.values, dtype=object),
                "weights": np.asarray(w, dtype=np.int64), "estimated": np.asarray(est, dtype=bool),
                "ids": [str(v) if v is not None else str(i) for i, v in enumerate(ids)], "labels": None}
    return {"source": None, "geoms": np.zeros(0, dtype=object), "weights": np.zeros(0, dtype=np.int64),
            "estimated": np.zeros(0, dtype=bool), "ids": [], "labels": None}


def _barriers(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> NDArray[np.object_]:
    out: list[NDArray[np.object_]] = []
    if "roads" in layers and len(layers["roads"]):
        r = layers["roads"]
        keep = r["highway"].isin(rules.barrier_highways) if "highway" in r.columns else np.ones(len(r), bool)
        out.append(_metric(r[keep], metric))
    if "water" in layers and len(layers["water"]):
        w = layers["water"]
        g = _metric(w, metric)
        poly = np.isin(shapely.get_type_id(g), (3, 6))
        cls = w["waterway"].astype(str).to_numpy() if "waterway" in w.columns else np.array([""] * len(w))
        lines = ~poly & np.isin(cls, rules.barrier_waterways)
        out.append(g[lines])
        if rules.water_areas:
            out.append(shapely.boundary(g[poly]))
    if rules.ridges and "ridges" in layers and len(layers["ridges"]):
        out.append(_metric(layers["ridges"], metric))
    if not out:
        return np.zeros(0, dtype=object)
    g = np.concatenate(out)
    g = g[~shapely.is_empty(g) & ~shapely.is_missing(g)]
    return g


def _sites(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> dict[str, Any]:
    if "pois" not in layers or not len(layers["pois"]) or "category" not in layers["pois"].columns:
        return {"geoms": np.zeros(0, dtype=object), "names": [], "categories": [], "ids": []}
    p = layers["pois"].reset_index(drop=True)
    keep = p["category"].isin(rules.exclusive).to_numpy()
    p = p[keep].reset_index(drop=True)
    ids = _col(p, "osm_id") if "osm_id" in p.columns else [None] * len(p)
    return {"geoms": shapely.make_valid(_metric(p, metric)),
            "names": [str(v) if v is not None else "" for v in _col(p, "name")],
            "categories": [str(v) for v in p["category"]],
            "ids": [str(v) if v is not None else f"poi{int(i)}" for i, v in zip(np.flatnonzero(keep), ids,
                                                                                  strict=True)]}


def _group_by_village(geoms: NDArray[np.object_], villages: NDArray[np.object_]) -> NDArray[np.int64]:
    if len(geoms) == 0:
        return np.zeros(0, dtype=np.int64)
    return assign_items(villages, geoms)


# --------------------------------------------------------------------------------------
def build_county(
    rules: CountyRules,
    *,
    county: str | Path | None = None,
    previous: str | Path | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> BuildResult:
    """Build every level of the county (see the module notes).

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

    Raises
    ------
    GeometryError
        A village whose grids or points do not tile it, named.
    InputError, SchemaError, UsageError
        Inputs that cannot be built from.
    """
    t_all = time.perf_counter()
    seconds: dict[str, float] = {}
    report: dict[str, Any] = {"rules": str(rules.source) if rules.source else None}
    t0 = time.perf_counter()
    layers = load_inputs(rules, county=county)
    towns, vil = _prepare_villages(layers, report)
    metric = _crs.metric_crs(vil)
    out_crs = vil.crs if vil.crs is not None and vil.crs.is_geographic else pyproj.CRS.from_epsg(4490)
    report["metric_crs"] = metric.to_string()
    vgeom = _metric(vil, metric)
    items = _items(layers, rules, metric)
    item_v = _group_by_village(items["geoms"], vgeom)
    outside = int(np.sum(item_v < 0))
    if outside:
        log.warning("%d %s(s) lie outside every village and belong to no grid point", outside,
                    items["source"] or "item")
    w = items["weights"]
    vil["households"] = np.bincount(item_v[item_v >= 0], weights=w[item_v >= 0], minlength=len(vil)).astype(int) \
        if len(w) else 0
    vil["households_estimated"] = np.bincount(item_v[(item_v >= 0) & items["estimated"]],
                                              weights=w[(item_v >= 0) & items["estimated"]],
                                              minlength=len(vil)).astype(int) if len(w) else 0
    seconds["read"] = time.perf_counter() - t0
    # blocks
    t0 = time.perf_counter()
    blocks_gdf, block_of, block_report = _blocks(vil, rules)
    vil["block"] = [block_of.get(c) for c in vil["code"]]
    seconds["blocks"] = time.perf_counter() - t0
    # village tasks
    t0 = time.perf_counter()
    tasks = list(_tasks(layers, rules, vil, vgeom, items, item_v, metric, previous))
    seconds["tasks"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_workers = workers or rules.workers or (os.cpu_count() or 1)
    fps = [fingerprint(t) for t in tasks]
    reused = _reuse(previous, metric, tasks, fps) if previous is not None else {}
    fresh = iter(_run([t for i, t in enumerate(tasks) if i not in reused], n_workers, progress))
    outs = [reused[i] if i in reused else next(fresh) for i in range(len(tasks))]
    vil["build_hash"] = fps
    report["reused_villages"] = len(reused)
    seconds["villages_wall"] = time.perf_counter() - t0
    stage: Counter[str] = Counter()
    for o in outs:
        stage.update(o.seconds)
    report["cpu_seconds_by_stage"] = {k: round(v, 2) for k, v in sorted(stage.items())}
    t0 = time.perf_counter()
    result_layers = _assemble(towns, blocks_gdf, vil, outs, items, item_v, metric, out_crs)
    for name in PASS_THROUGH:  # what the patrol planner and the map need besides the levels
        if name in layers and len(layers[name]):
            result_layers[name] = layers[name].to_crs(out_crs)
    seconds["assemble"] = time.perf_counter() - t0
    report.update(_summary(result_layers, outs, items, item_v, rules, block_report))
    seconds["total"] = time.perf_counter() - t_all
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    report["workers"] = n_workers
    return BuildResult(result_layers, report)


def _blocks(vil: gpd.GeoDataFrame, rules: CountyRules) -> tuple[gpd.GeoDataFrame, dict[str, str], dict[str, Any]]:
    from gridgeo.county.blocks import make_blocks

    if not rules.blocks:
        return gpd.GeoDataFrame({"code": []}, geometry=[], crs=vil.crs), {}, {}
    similar = [c for c in rules.block_similar if c in vil.columns]
    bo = make_blocks(vil[["code", "name", "township", "kind", "households", "geometry"]
                         + [c for c in similar if c not in ("kind",)]],
                     id_col="code", group_col="township", size_col="households", min_size=rules.block_min,
                     max_size=rules.block_max, count=rules.block_count, similar=similar, seed=rules.seed)
    b = bo.blocks
    block_of = {str(v): str(code) for code, members in zip(b["block_id"], b["members"], strict=True) for v in members}
    lo = rules.block_min or 0.0
    hi = rules.block_max or math.inf
    within = [lo <= float(s) <= hi and not viol for s, viol in zip(b["size"], b["violations"], strict=True)]
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
    rep = {"blocks": len(out), "within_bounds": float(np.mean(within)) if within else 1.0,
           "violations": bo.report.get("violations", [])[:20] if isinstance(bo.report.get("violations"), list)
           else bo.report.get("violations")}
    return out, block_of, rep


def _tasks(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, vil: gpd.GeoDataFrame,
           vgeom: NDArray[np.object_], items: dict[str, Any], item_v: NDArray[np.int64], metric: pyproj.CRS,
           previous: str | Path | None) -> Iterator[VillageTask]:
    bar_geoms = _barriers(layers, rules, metric)
    bar_tree = shapely.STRtree(bar_geoms) if len(bar_geoms) else None
    sites = _sites(layers, rules, metric)
    site_v = _group_by_village(sites["geoms"], vgeom)
    groups = layers.get("villager_groups")
    if groups is not None and len(groups) and rules.use_groups:
        groups = groups.reset_index(drop=True)
        ggeom = _metric(groups, metric)
        gv = _group_by_village(ggeom, vgeom)
        gcodes = [str(c) for c in _col(groups, "code")]
        gnames = [str(n) if n is not None else None for n in _col(groups, "name")]
        lead = [c for c in groups.columns if str(c).startswith("leader")]
        gextra = [{c: v for c, v in zip(lead, vals, strict=True) if v is not None}
                  for vals in zip(*[_col(groups, c) for c in lead], strict=True)] if lead else []
    else:
        ggeom, gv, gcodes, gnames = np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), [], []
        gextra = []
    prev = _read_previous(previous, metric) if previous is not None else None
    by_v_items = _index_by(item_v, len(vil))
    by_v_sites = _index_by(site_v, len(vil))
    by_v_groups = _index_by(gv, len(vil))
    for i, row in enumerate(vil.itertuples(index=False)):
        code = str(row.code)
        g = vgeom[i]
        barriers = bar_geoms[np.sort(bar_tree.query(g, predicate="intersects"))] if bar_tree is not None \
            else np.zeros(0, dtype=object)
        it = by_v_items[i]
        st = by_v_sites[i]
        gi = by_v_groups[i]
        b = rules.bounds_for(str(row.kind))
        pv = None
        if prev is not None:
            pv = {lvl: (geoms[[c.startswith(code) for c in cs]], [c for c in cs if c.startswith(code)])
                  for lvl, (geoms, cs) in prev.items()}
        yield VillageTask(
            code=code, name=str(getattr(row, "name", "") or ""), kind=str(row.kind), geometry=g,
            barriers=barriers,
            group_codes=[gcodes[j] for j in gi], group_names=[gnames[j] for j in gi],  # type: ignore[misc]
            group_geoms=ggeom[gi], items=items["geoms"][it], weights=items["weights"][it],
            item_labels=[items["labels"][j] for j in it] if items["labels"] is not None else None,
            site_geoms=sites["geoms"][st], site_names=[sites["names"][j] for j in st],
            site_categories=[sites["categories"][j] for j in st], site_ids=[sites["ids"][j] for j in st],
            grid_bounds=b.grid, point_bounds=b.point, use_groups=rules.use_groups, points=rules.points,
            seed=rules.seed, min_unit_m2=rules.min_unit_m2, site_radius_m=rules.site_radius_m,
            site_max_block_m2=rules.site_max_block_m2, site_min_m2=rules.site_min_m2, iterations=rules.iterations,
            restarts=rules.restarts, tolerance_m2=rules.tolerance_m2, previous=pv,
            group_extra=[gextra[j] for j in gi] if gextra else None)


def _index_by(labels: NDArray[np.int64], n: int) -> list[NDArray[np.int64]]:
    """Row indices per label 0..n-1, each sorted (so a village's items keep their input order)."""
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    starts = np.searchsorted(sl, np.arange(n), side="left")
    ends = np.searchsorted(sl, np.arange(n), side="right")
    return [order[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _read_previous(path: str | Path, metric: pyproj.CRS) -> dict[str, tuple[NDArray[np.object_], list[str]]]:
    have = set(list_layers(path))
    out: dict[str, tuple[NDArray[np.object_], list[str]]] = {}
    for lvl in ("grids", "exclusive", "points"):
        if lvl in have:
            g = read_layer(path, layer=lvl)
            out[lvl] = (_metric(g, metric), [str(c) for c in g["code"]])
    return out


def _reuse(previous: str | Path, metric: pyproj.CRS, tasks: list[VillageTask], fps: list[str]) -> dict[
        int, VillageOut]:
    """Villages whose inputs are unchanged since ``previous`` was built, taken from it (and re-checked).

    Why: re-drawing one village of a county should not cost the whole county.
    A village is taken only when its fingerprint (:func:`gridgeo.county.fingerprint.fingerprint`:
    its geometry, barriers, groups, buildings, sites, rules and seed) equals
    the one the old build recorded and every building of it has its old
    assignment; everything taken goes through the same tiling check.
    """
    have = set(list_layers(previous))
    if not {"villages", "grids", "points", "exclusive", "households"} <= have:
        return {}
    old_v = read_layer(previous, layer="villages")
    if "build_hash" not in old_v.columns:
        return {}
    old_hash = dict(zip(old_v["code"].astype(str), old_v["build_hash"].astype(str), strict=True))
    want = [i for i, (t, fp) in enumerate(zip(tasks, fps, strict=True)) if old_hash.get(t.code) == fp]
    if not want:
        return {}
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for lvl, key in (("grids", "parent"), ("exclusive", "parent"), ("points", "village")):
        g = read_layer(previous, layer=lvl)
        g = g.to_crs(metric) if len(g) else g
        recs = g.drop(columns=[g.geometry.name, "township"], errors="ignore").to_dict("records")
        for r, geom in zip(recs, g.geometry.values, strict=True):
            clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            clean["geometry"] = geom
            rows.setdefault(lvl, {}).setdefault(str(r[key]), []).append(clean)
    # the assignment rows of a village are in its items' order (the build writes them so), and an
    # equal fingerprint means equal items in equal order: match by position (row-number ids of a
    # file without an id column shift when another village's buildings change; positions do not)
    hh = read_layer(previous, layer="households")
    assign: dict[str, list[str | None]] = {}
    for v, pt in zip(hh["village"], hh["point"], strict=True):
        if isinstance(v, str):
            assign.setdefault(v, []).append(pt if isinstance(pt, str) else None)
    out: dict[int, VillageOut] = {}
    for i in want:
        t = tasks[i]
        mine = assign.get(t.code, [])
        if len(mine) != len(t.items):
            continue
        o = VillageOut(code=t.code, grids=rows.get("grids", {}).get(t.code, []),
                       exclusive=rows.get("exclusive", {}).get(t.code, []),
                       points=rows.get("points", {}).get(t.code, []), item_point=list(mine),
                       stats={"reused": True})
        t0 = time.perf_counter()
        check_village(t, o)
        o.seconds["check"] = time.perf_counter() - t0
        out[i] = o
    log.info("%d of %d villages unchanged since %s: taken from it", len(out), len(tasks), previous)
    return out


def _run(tasks: list[VillageTask], workers: int, progress: bool) -> Iterator[VillageOut]:
    bar = tqdm(total=len(tasks), desc="villages", unit="village", disable=not progress)
    try:
        if workers <= 1 or len(tasks) < 4:
            for t in tasks:
                yield build_village(t)
                bar.update(1)
            return
        # results come back in input order whatever order the workers finish in
        with ProcessPoolExecutor(max_workers=workers) as ex:
            futures = [ex.submit(build_village, t) for t in tasks]
            for f in futures:
                yield f.result()
                bar.update(1)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------
def _assemble(towns: gpd.GeoDataFrame, blocks: gpd.GeoDataFrame, vil: gpd.GeoDataFrame, outs: list[VillageOut],
              items: dict[str, Any], item_v: NDArray[np.int64], metric: pyproj.CRS,
              out_crs: pyproj.CRS) -> dict[str, gpd.GeoDataFrame]:
    def frame(rows: list[dict[str, Any]], cols: list[str]) -> gpd.GeoDataFrame:
        data = {c: [r.get(c) for r in rows] for c in cols}
        g = gpd.GeoDataFrame(data, geometry=[r["geometry"] for r in rows], crs=metric)
        return g.to_crs(out_crs)

    by_code = {o.code: o for o in outs}
    town_of = dict(zip(vil["code"], vil["township"], strict=True))
    grids_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.grids]
    ex_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.exclusive]
    pt_rows = [dict(r, township=town_of[o.code]) for o in outs for r in o.points]
    lead = sorted({k for r in grids_rows for k in r if k.startswith("leader")})
    grids = frame(grids_rows, ["code", "name", "parent", "township", "households", "kind", "source", "group",
                               "n_points", "within_bounds", *lead])
    excl = frame(ex_rows, ["code", "name", "parent", "township", "category", "households", "kind", "source_id",
                           "n_points"])
    points = frame(pt_rows, ["code", "parent", "village", "township", "households", "n_units", "kind",
                             "within_bounds", "grid_below_min"])
    v = vil.copy()
    v = v.rename(columns={"township": "parent"})
    v["n_grids"] = [len(by_code[c].grids) for c in v["code"]]
    v["n_exclusive"] = [len(by_code[c].exclusive) for c in v["code"]]
    v["n_points"] = [len(by_code[c].points) for c in v["code"]]
    keep = [c for c in ("code", "name", "parent", "block", "kind", "industry", "households", "households_estimated",
                        "population", "n_grids", "n_exclusive", "n_points", "build_hash") if c in v.columns]
    keep += [c for c in v.columns if str(c).startswith("leader") and c not in keep]
    v = gpd.GeoDataFrame(v[keep], geometry=v.geometry.values, crs=vil.crs).to_crs(out_crs)
    t = towns.copy()
    hh = vil.groupby("township")["households"].sum()
    t["households"] = [int(hh.get(c, 0)) for c in t["code"]]
    t["n_villages"] = [int((vil["township"] == c).sum()) for c in t["code"]]
    t["n_blocks"] = [int((blocks["parent"] == c).sum()) if len(blocks) else 0 for c in t["code"]]
    tkeep = [c for c in ("code", "name", "kind", "households", "population", "n_blocks", "n_villages")
             if c in t.columns]
    tkeep += [c for c in t.columns if str(c).startswith("leader") and c not in tkeep]
    t = gpd.GeoDataFrame(t[tkeep], geometry=t.geometry.values, crs=towns.crs).to_crs(out_crs)
    b = blocks.to_crs(out_crs) if len(blocks) else blocks
    # household assignment
    ip: list[str | None] = [None] * len(item_v)
    order = _index_by(item_v, len(vil))
    for vi, idx in enumerate(order):
        o = by_code[str(vil["code"].iloc[vi])]
        for j, pc in zip(idx.tolist(), o.item_point, strict=True):
            ip[j] = pc
    parent_of = dict(zip(points["code"], points["parent"], strict=True))
    hh_pts = shapely.point_on_surface(items["geoms"]) if len(items["geoms"]) else np.zeros(0, dtype=object)
    vcodes = vil["code"].tolist()
    assign = gpd.GeoDataFrame({
        "source": [items["source"]] * len(item_v),
        "source_id": items["ids"],
        "households": items["weights"].astype(int),
        "estimated": items["estimated"].astype(bool),
        "point": ip,
        "grid": [parent_of.get(p) if p else None for p in ip],
        "village": [vcodes[k] if k >= 0 else None for k in item_v.tolist()],
        "township": [town_of[vcodes[k]] if k >= 0 else None for k in item_v.tolist()],
    }, geometry=list(hh_pts), crs=metric).to_crs(out_crs)
    return {"townships": t, "blocks": b, "villages": v, "grids": grids, "points": points, "exclusive": excl,
            "households": assign}


def _share(flags: pd.Series) -> float:
    return round(float(flags.astype(bool).mean()), 4) if len(flags) else 1.0


def _summary(layers: dict[str, gpd.GeoDataFrame], outs: list[VillageOut], items: dict[str, Any],
             item_v: NDArray[np.int64], rules: CountyRules, block_report: dict[str, Any]) -> dict[str, Any]:
    grids, points, excl = layers["grids"], layers["points"], layers["exclusive"]
    made = grids[grids["source"] != "villager_group"] if len(grids) else grids
    from_groups = grids[grids["source"] == "villager_group"] if len(grids) else grids
    base_pts = points[points["kind"] != "exclusive"] if len(points) else points
    w = items["weights"]
    est = items["estimated"]
    tiling = [o.stats.get("tiling", {}) for o in outs]
    return {
        "counts": {k: len(v) for k, v in layers.items()},
        "bounds": {
            "blocks": block_report,
            "grids": {"n": len(grids), "within_bounds": _share(grids["within_bounds"]) if len(grids) else 1.0,
                      "drawn": len(made), "drawn_within_bounds": _share(made["within_bounds"]) if len(made) else None,
                      "from_villager_groups": len(from_groups),
                      "bounds": {k: list(b.grid) for k, b in rules.bounds.items()}},
            "points": {"n": len(points), "within_bounds": _share(points["within_bounds"]) if len(points) else 1.0,
                       "base_within_bounds": _share(base_pts["within_bounds"]) if len(base_pts) else 1.0,
                       "outside_bounds_in_grid_below_min": int((~points["within_bounds"].astype(bool)
                                                                & points["grid_below_min"].astype(bool)).sum())
                       if len(points) else 0,
                       "within_bounds_where_possible": _share(points["within_bounds"][~points["grid_below_min"]
                                                                                      .astype(bool)])
                       if len(points) else 1.0,
                       "bounds": {k: list(b.point) for k, b in rules.bounds.items()}},
        },
        "households": {
            "source": items["source"], "items": len(w), "total": int(w.sum()) if len(w) else 0,
            "given": int(w[~est].sum()) if len(w) else 0, "estimated": int(w[est].sum()) if len(w) else 0,
            "estimated_items": int(est.sum()), "outside_villages": int(np.sum(item_v < 0)),
        },
        "exclusive": {"n": len(excl), "by_category": dict(Counter(excl["category"])) if len(excl) else {},
                      "dropped": sorted({str(s) for o in outs for s in o.stats.get("sites_dropped", [])})},
        "units": {"faces": sum(o.stats.get("faces", 0) for o in outs),
                  "units": sum(o.stats.get("units", 0) for o in outs),
                  "split_faces": sum(o.stats.get("split_faces", 0) for o in outs)},
        "tiling": {
            "villages": len(outs), "tolerance_m2": rules.tolerance_m2,
            "worst_gap_m2": max((t.get("gap_m2", 0.0) for t in tiling), default=0.0),
            "worst_overlap_m2": max((t.get("overlap_m2", 0.0) for t in tiling), default=0.0),
            "worst_points_m2": max((t.get("points_worst_m2", 0.0) for t in tiling), default=0.0),
            "errors": 0,
            "items_checked": sum(o.stats.get("items", 0) for o in outs),
            "buildings_cut_by_point_edges": sum(o.stats.get("items_cut", 0) for o in outs),
        },
    }


# --------------------------------------------------------------------------------------
def format_report(report: Mapping[str, Any]) -> str:
    """The closing report as a few aligned lines for a terminal."""
    c = report["counts"]
    b = report["bounds"]
    h = report["households"]
    t = report["tiling"]
    s = report["seconds"]
    lines = [
        "level       count   inside bounds",
        f"townships {c['townships']:>7}",
        f"blocks    {c['blocks']:>7}   {_pct(b['blocks'].get('within_bounds'))}",
        f"villages  {c['villages']:>7}",
        f"grids     {c['grids']:>7}   {_pct(b['grids']['within_bounds'])}"
        f"  ({b['grids']['from_villager_groups']} from villager groups, {b['grids']['drawn']} drawn"
        + (f", {_pct(b['grids']['drawn_within_bounds'])} of those inside" if b['grids']['drawn'] else "") + ")",
        f"points    {c['points']:>7}   {_pct(b['points']['within_bounds'])}"
        f"  ({_pct(b['points']['within_bounds_where_possible'])} of those whose grid holds at least a point's "
        f"minimum; {b['points']['outside_bounds_in_grid_below_min']} sit in a grid smaller than that)",
        f"exclusive {c['exclusive']:>7}   {report['exclusive']['by_category']}",
        f"households: {h['total']:,} on {h['items']:,} {h['source'] or 'item'}s ({h['given']:,} given, "
        f"{h['estimated']:,} estimated; {h['outside_villages']} outside every village)",
        f"tiling: {t['villages']} villages, worst gap {t['worst_gap_m2']:.4f} m², worst overlap "
        f"{t['worst_overlap_m2']:.4f} m², points vs grid {t['worst_points_m2']:.4f} m² (tolerance "
        f"{t['tolerance_m2']:g} m²); {t['items_checked']:,} items each in one point; "
        f"{t['buildings_cut_by_point_edges']} buildings crossed by a point edge",
        "seconds: " + ", ".join(f"{k} {v:g}" for k, v in s.items()),
    ]
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f} %"
