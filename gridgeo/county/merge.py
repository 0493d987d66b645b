"""One network from many (多网合一): departmental grid layers reconciled into one grid layer and a crosswalk.

Why
---
Party-building, political-legal, civil-affairs, urban-management and petition offices each drew
their own grids over the same villages (Nanjing merged five such networks into 一张网). Stacked,
they overlap and leave gaps, and none of them meets the county's bounds everywhere. A merge draws
ONE grid layer that tiles every village, keeps every grid within the village kind's household
bounds (the rules file), follows the departments' boundaries wherever it can, and says, for every
departmental grid, which new grids its area and households went to (and, the other way, what each
new grid is made of): the crosswalk every office needs to move its records.

How (per village, in the county's metric CRS; :mod:`gridgeo.county._merge_village`)
-----------------------------------------------------------------------------------
The departments' grids are clipped to the village and all their boundaries noded once into the
common refinement (faces); slivers (thinner than ``sliver_m``) join their longest-shared
neighbour; each face knows its grid in every department (none: a gap; two: an overlap, both
reported with their geometry), its households (buildings or household points, by overlap), and
the partition engine draws the merged grids from the faces with every department's grid id a
``similar`` column. Codes follow the build's: village code + 2 digits in reading order
(:func:`gridgeo.county.codes.number`). The layers are cleaned as one coverage and verified
(:mod:`gridgeo.county.coverage`) before they are written atomically.

Outputs (:func:`write_merge`): ``grids`` (the merged grids), ``villages`` (their union per
village), ``crosswalk`` (a table: department, departmental grid, new grid, area and households in
common, and the four shares), ``households`` (a table: each building or household point and its
new grid) and ``merge_problems`` (gaps and overlaps of each department, with
their geometry), plus the report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.county import codes as _codes
from gridgeo.county import sources as _src
from gridgeo.county._merge_inputs import Department, LayerSpec, parse_spec, read_department, read_layer_spec
from gridgeo.county._merge_village import MergeOptions, MergeVillage, VillageMerge, merge_village
from gridgeo.county._parts import metric_xy
from gridgeo.county._pool import run_pool
from gridgeo.county.assign import assign_items
from gridgeo.county.coverage import clean_levels, verify_levels
from gridgeo.county.rules import CountyRules, within_bounds
from gridgeo.county.village import village_seed
from gridgeo.data import crs as _crs
from gridgeo.data.io import list_layers, write_layers
from gridgeo.errors import InputError, UsageError

log = logging.getLogger(__name__)

__all__ = ["Department", "LayerSpec", "MergeOptions", "MergeResult", "merge_departments", "merge_files",
           "parse_spec", "read_department", "write_merge"]

#: the crosswalk's columns, in order
CROSSWALK_COLUMNS: tuple[str, ...] = (
    "department", "dept_grid", "grid", "village", "area_m2", "households",
    "share_area_of_dept", "share_households_of_dept", "share_area_of_grid", "share_households_of_grid",
)


@dataclass
class MergeResult:
    """What a merge gives: the layers to write and the report.

    Attributes
    ----------
    grids
        The merged grids (output CRS): ``code``, ``parent`` (village), ``township``, ``kind``,
        ``households``, ``area_m2``, ``within_bounds``, ``follows`` (mean over the departments that
        reach the grid of the largest share of its area from one of their grids: 1 where it is wholly one).
    villages
        The villages, each the union of its merged grids.
    crosswalk
        One row per (department, departmental grid, new grid) with area and households in common;
        ``share_*_of_dept`` sum to 1 over each departmental grid's rows (its part inside the
        villages), ``share_*_of_grid`` is the share of the new grid that lies in the departmental
        grid (a row with an empty ``dept_grid`` is the new grid's part that department leaves
        uncovered). Household shares are empty where there is no household to share.
    problems
        Gaps and overlaps of each department, per village, with their geometry.
    households
        Each building or household point (``source``, ``source_id``, ``households``) and its ``village``
        and merged ``grid`` (both empty for one outside every village).
    report
        Counts, shares inside the bounds, slivers, repairs, coverage of each department.
    """

    grids: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    crosswalk: pd.DataFrame
    problems: gpd.GeoDataFrame
    report: dict[str, Any] = field(default_factory=dict)
    households: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------------------
# files in
# --------------------------------------------------------------------------------------
def merge_files(layers: Sequence[str], *, names: Sequence[str] | None = None, villages: str | None = None,
                households: str | None = None, buildings: str | None = None, county: str | None = None,
                rules: CountyRules | None = None, id_col: str | Sequence[str] | None = None, seed: int | None = None,
                options: MergeOptions | None = None, workers: int = 1) -> MergeResult:
    """Read the departmental layers, the villages and the households named like the CLI does, and merge.

    Parameters
    ----------
    layers
        Departmental grid layers, each ``FILE`` or ``FILE:LAYER`` (two or more).
    names
        The departments' names, one per layer; default each layer's name (or file stem).
    villages, households, buildings
        ``FILE[:LAYER]`` of the villages, household points, buildings; each defaults to the
        ``county`` file's layer of that name (household points preferred to buildings).
    county
        A county GeoPackage (the input ``gridgeo build`` reads, or one it wrote).
    rules
        The county rules (bounds per village kind, household estimates, seed, search budgets).
    id_col
        Column of the departmental grid ids, one for every layer or one per layer (default ``code``
        where a layer has it, else the row number).
    seed
        Overrides the rules' seed.
    workers
        Worker processes for the villages (same result for any number).
    options
        Tolerances and search budgets (default: the rules' ``min_unit_m2``, iterations, restarts).

    Raises
    ------
    UsageError
        Fewer than two layers, names that do not match them, no villages or households source.
    InputError
        As :func:`read_department` and the villages' checks.
    """
    if len(layers) < 2:
        raise UsageError("merge needs two or more departmental grid layers")
    specs = [parse_spec(s) for s in layers]
    dept_names = _names(specs, names)
    r = rules or CountyRules()
    vil = _read_villages(villages, county)
    metric = _crs.metric_crs(vil)
    items = _read_items(households, buildings, county, r, metric)
    ids = _id_cols(id_col, len(specs))
    depts = [read_department(s, name=n, metric=metric, id_col=c)
             for s, n, c in zip(specs, dept_names, ids, strict=True)]
    opts = options or MergeOptions(min_unit_m2=r.min_unit_m2, iterations=r.iterations, restarts=r.restarts)
    return merge_departments(depts, vil, items=items, rules=r, seed=r.seed if seed is None else seed, options=opts,
                             workers=workers)


def _id_cols(id_col: str | Sequence[str] | None, n: int) -> list[str | None]:
    """One id column for every layer, or one per layer (in order)."""
    if id_col is None or isinstance(id_col, str):
        return [id_col] * n
    cols = list(id_col)
    if len(cols) == 1:
        return cols * n  # type: ignore[return-value]
    if len(cols) != n:
        raise UsageError(f"{len(cols)} id column(s) for {n} layer(s); give --id once (every layer) or once per layer")
    return cols  # type: ignore[return-value]


def _names(specs: list[LayerSpec], names: Sequence[str] | None) -> list[str]:
    """One name per layer, unique (the crosswalk keys on it)."""
    out = list(names) if names else [s.layer or s.path.stem for s in specs]
    if len(out) != len(specs):
        raise UsageError(f"{len(out)} department name(s) for {len(specs)} layer(s); give one --name per layer")
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise UsageError(f"department name {dup[0]!r} given twice; give each layer its own --name")
    return out


def _read_villages(villages: str | None, county: str | None) -> gpd.GeoDataFrame:
    """The checked villages (code, township, kind), with the townships where the file has them."""
    spec = parse_spec(villages) if villages else (LayerSpec(Path(county), "villages") if county else None)
    if spec is None:
        raise UsageError("no villages: give --villages FILE[:LAYER] or --county FILE.gpkg")
    layers = {"villages": read_layer_spec(spec, kind="villages")}
    layers["villages"].attrs["source"] = spec.where
    if spec.path.suffix.lower() == ".gpkg" and "townships" in list_layers(spec.path):
        layers["townships"] = read_layer_spec(LayerSpec(spec.path, "townships"), kind="townships")
    if layers["villages"].crs is None:
        raise InputError("the villages layer has no CRS", path=spec.where)
    _, vil = _src.prepare_villages(layers, {})
    return vil


def _read_items(households: str | None, buildings: str | None, county: str | None, rules: CountyRules,
                metric: pyproj.CRS) -> _src.Items:
    """Household points (preferred) or buildings, weighed like the build does (:func:`gridgeo.county.sources.items`)."""
    layers: dict[str, gpd.GeoDataFrame] = {}
    for name, given in (("households", households), ("buildings", buildings)):
        if given:
            layers[name] = read_layer_spec(parse_spec(given), kind=name)
    if not layers and county:
        have = set(list_layers(county))
        found = next((n for n in ("households", "buildings") if n in have), None)
        if found is not None:
            layers[found] = read_layer_spec(LayerSpec(Path(county), found), kind=found)
    for name, gdf in layers.items():
        if gdf.crs is None:
            raise InputError(f"the {name} layer has no CRS", path=gdf.attrs.get("source"))
    items = _src.items(layers, rules, metric)
    if items.source is None:
        raise UsageError("no households: give --households FILE[:LAYER] (points) or --buildings FILE[:LAYER], "
                         "or a --county file with one of those layers")
    return items


# --------------------------------------------------------------------------------------
# the merge
# --------------------------------------------------------------------------------------
def merge_departments(departments: Sequence[Department], villages: gpd.GeoDataFrame, *, items: _src.Items,
                      rules: CountyRules, seed: int = 0, options: MergeOptions | None = None,
                      workers: int = 1) -> MergeResult:
    """Merge departmental grids over ``villages`` into one grid layer and a crosswalk (module notes).

    Parameters
    ----------
    departments
        The departments' grids, read by :func:`read_department` in the villages' metric CRS.
    villages
        Checked villages (``code``, ``township``, ``kind``; :func:`gridgeo.county.sources.prepare_villages`).
    items
        Buildings or household points with their households, in the same metric CRS.
    rules
        Grid household bounds per village kind (:meth:`CountyRules.bounds_for`).
    seed
        Same inputs and seed, same output.
    options
        Sliver width, search budgets.
    workers
        Worker processes for the villages (each is its own problem); the result does not depend on it.

    Raises
    ------
    InputError
        A department whose grids meet none of the villages (a wrong file or CRS).
    """
    opts = options or MergeOptions()
    metric = _crs.metric_crs(villages)
    vgeom = _src.metric_geoms(villages, metric)
    trees = [(d.geoms, shapely.STRtree(d.geoms)) for d in departments]
    _check_reach(departments, trees, vgeom)
    item_v = assign_items(vgeom, items.geoms) if len(items.geoms) else np.zeros(0, dtype=np.int64)
    by_v = _index_by(item_v, len(villages))
    tasks = (_task(villages, i, vgeom[i], items, by_v[i], trees=trees, rules=rules, seed=seed, opts=opts)
             for i in range(len(villages)))
    outs = run_pool(merge_village, tasks, workers=workers) if workers > 1 else [merge_village(t) for t in tasks]
    result = _assemble(departments, villages, outs, metric=metric, rules=rules,
                       outside=int(items.weights[item_v < 0].sum()) if len(item_v) else 0)
    result.households = _households_table(items, by_v, outs)
    return result


def _task(villages: gpd.GeoDataFrame, i: int, geom: Any, items: _src.Items, mine: np.ndarray, *,
          trees: list[tuple[Any, shapely.STRtree]], rules: CountyRules, seed: int,
          opts: MergeOptions) -> tuple[MergeVillage, MergeOptions]:
    """Village ``i``'s task: its geometry, items, bounds, seed and each department's grids that meet it."""
    row = villages.iloc[i]
    code, kind = str(row["code"]), str(row["kind"])
    depts = []
    for geoms, tree in trees:
        idx = np.sort(tree.query(geom, predicate="intersects")).astype(np.int64)
        depts.append((idx, geoms[idx]))
    v = MergeVillage(code=code, name=str(row.get("name", code)), kind=kind, geometry=geom, items=items.geoms[mine],
                     weights=items.weights[mine],
                     bounds=grid_bounds(rules, kind, code, str(row.get("township", "") or "")),
                     seed=village_seed(seed, code + "/merge"), departments=depts)
    return v, opts


def _households_table(items: _src.Items, by_v: list[np.ndarray], outs: list[VillageMerge]) -> pd.DataFrame:
    """Each building or household point and its merged grid (none: outside every village, listed as such)."""
    grid: list[str | None] = [None] * len(items.weights)
    village: list[str | None] = [None] * len(items.weights)
    for idx, vm in zip(by_v, outs, strict=True):
        for j, p in zip(idx.tolist(), vm.item_part.tolist(), strict=True):
            grid[j] = vm.codes[p]
            village[j] = vm.code
    return pd.DataFrame({"source": items.source, "source_id": items.ids, "households": items.weights,
                         "village": village, "grid": grid})


def grid_bounds(rules: CountyRules, kind: str, code: str, township: str = "") -> tuple[float, float]:
    """Households per grid in village ``code`` of ``kind`` (its township's and its own overrides
    applied): the one place the merge asks the rules (the partition and the ``within_bounds`` column read
    the same pair). Bounds on persons, area and the walk are not applied by the merge."""
    return rules.bounds_of_village(kind, village=[code], township=[township] if township else []).grid


def _check_reach(departments: Sequence[Department], trees: list[tuple[Any, shapely.STRtree]], vgeom: Any) -> None:
    """A department whose grids meet no village is a wrong file or CRS: say so rather than merge nothing."""
    whole = shapely.union_all(vgeom)
    for d, (_, tree) in zip(departments, trees, strict=True):
        if not len(tree.query(whole, predicate="intersects")):
            raise InputError(f"department {d.name}: none of its {len(d.ids)} grids meets the villages "
                             "(another area, or a wrong CRS?)", path=d.source)


def _index_by(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """For each of ``n`` groups, the positions whose label it is (label -1: none)."""
    order = np.argsort(labels, kind="stable")
    cuts = np.searchsorted(labels[order], np.arange(n + 1))
    return [order[cuts[i]:cuts[i + 1]] for i in range(n)]


@dataclass
class _Rows:
    """The long table of faces x departments the crosswalk and the problems are cut from."""

    village: list[str] = field(default_factory=list)
    grid: list[str] = field(default_factory=list)
    dept: list[int] = field(default_factory=list)
    dept_grid: list[int] = field(default_factory=list)  # -1: no grid of the department (a gap)
    n_grids: list[int] = field(default_factory=list)  # grids of the department holding the face
    key: list[str] = field(default_factory=list)  # those grids, as one text (what a problem is grouped by)
    area: list[float] = field(default_factory=list)
    households: list[int] = field(default_factory=list)
    face: list[Any] = field(default_factory=list)

    def add(self, vm: VillageMerge, codes: list[str]) -> None:
        for k, labels in enumerate(vm.labels):
            for f, lab in enumerate(labels):
                for g in lab or (-1,):
                    self.village.append(vm.code)
                    self.grid.append(codes[int(vm.part[f])])
                    self.dept.append(k)
                    self.dept_grid.append(int(g))
                    self.n_grids.append(len(lab))
                    self.key.append(",".join(map(str, lab)))
                    self.area.append(float(vm.area[f]))
                    self.households.append(int(vm.households[f]))
                    self.face.append(vm.faces[f])


def _assemble(departments: Sequence[Department], villages: gpd.GeoDataFrame, outs: list[VillageMerge], *,
              metric: pyproj.CRS, rules: CountyRules, outside: int) -> MergeResult:
    """Codes, the grids and villages layers (cleaned as one coverage), the crosswalk, problems and report."""
    out_crs = villages.crs if villages.crs is not None and villages.crs.is_geographic else pyproj.CRS.from_epsg(4490)
    grid_rows: list[dict[str, Any]] = []
    rows = _Rows()
    vinfo = villages.set_index(villages["code"].astype(str))
    for vm in outs:
        x, y, a = metric_xy(vm.grids)
        codes = _codes.number(vm.code, x, y, a, width=2)
        vm.codes = codes
        rows.add(vm, codes)
        kind = str(vinfo.at[vm.code, "kind"])
        bounds = grid_bounds(rules, kind, vm.code, str(vinfo.at[vm.code, "township"]))
        for p, (code, geom) in enumerate(zip(codes, vm.grids, strict=True)):
            h = vm.grid_households[p]
            grid_rows.append({"code": code, "name": None, "parent": vm.code,
                              "township": str(vinfo.at[vm.code, "township"]), "kind": kind, "households": h,
                              "area_m2": round(float(shapely.area(geom)), 2),
                              "within_bounds": within_bounds(h, bounds), "geometry": geom})
    table = pd.DataFrame({"village": rows.village, "grid": rows.grid, "dept": rows.dept, "dept_grid": rows.dept_grid,
                          "n_grids": rows.n_grids, "key": rows.key, "area": rows.area, "households": rows.households})
    totals = {"area": {r["code"]: float(shapely.area(r["geometry"])) for r in grid_rows},
              "households": {r["code"]: float(r["households"]) for r in grid_rows}}
    crosswalk = _crosswalk(table, departments, totals)
    grids = gpd.GeoDataFrame(pd.DataFrame(grid_rows), geometry="geometry", crs=metric)
    grids["follows"] = grids["code"].map(_follows(crosswalk)).round(4)
    problems = _problems(table, rows.face, departments, metric).to_crs(out_crs)
    layers = {"villages": _villages_layer(villages, metric).to_crs(out_crs), "grids": grids.to_crs(out_crs)}
    coverage = clean_levels(layers, metric=metric)
    coverage["levels"] = verify_levels(layers)
    report = _report(departments, outs, layers["grids"], table, problems, outside=outside)
    report["coverage"] = coverage
    report["metric_crs"] = metric.to_string()
    return MergeResult(grids=layers["grids"], villages=layers["villages"], crosswalk=crosswalk, problems=problems,
                       report=report)


def _villages_layer(villages: gpd.GeoDataFrame, metric: pyproj.CRS) -> gpd.GeoDataFrame:
    keep = [c for c in ("code", "name", "township", "kind") if c in villages.columns]
    v = gpd.GeoDataFrame(villages[keep].copy(), geometry=villages.geometry.values, crs=villages.crs)
    v["code"] = v["code"].astype(str)
    return v.rename(columns={"township": "parent"}).to_crs(metric)


def _crosswalk(table: pd.DataFrame, departments: Sequence[Department],
               totals: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Departmental grid x new grid: area and households in common, and the shares both ways."""
    g = table.groupby(["dept", "dept_grid", "grid", "village"], sort=True, as_index=False)[["area", "households"]].sum()
    covered = g["dept_grid"] >= 0
    per_dept = g[covered].groupby(["dept", "dept_grid"])[["area", "households"]].transform("sum")
    out = pd.DataFrame({
        "department": [departments[k].name for k in g["dept"]],
        "dept_grid": [departments[k].ids[j] if j >= 0 else None
                      for k, j in zip(g["dept"], g["dept_grid"], strict=True)],
        "grid": g["grid"], "village": g["village"], "area_m2": g["area"].round(2), "households": g["households"],
    })
    out["share_area_of_dept"] = _share(g["area"][covered], per_dept["area"]).reindex(g.index)
    out["share_households_of_dept"] = _share(g["households"][covered], per_dept["households"]).reindex(g.index)
    # of the new grid's own area and households (an overlap face counts once there, in each of its grids here)
    out["share_area_of_grid"] = _share(g["area"], g["grid"].map(totals["area"]))
    out["share_households_of_grid"] = _share(g["households"], g["grid"].map(totals["households"]))
    return out[list(CROSSWALK_COLUMNS)].reset_index(drop=True)


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole`` rounded to 6 places; empty where the whole is 0."""
    w = whole.astype(float)
    return (part.astype(float) / w.where(w > 0)).round(6)


def _follows(crosswalk: pd.DataFrame) -> dict[str, float]:
    """Per new grid, the mean over the departments covering any of it of the largest area share from one of
    their grids (a department that does not reach the grid, e.g. urban management in a rural village, is not
    counted against it)."""
    c = crosswalk[crosswalk["dept_grid"].notna()]
    best = c.groupby(["grid", "department"])["share_area_of_grid"].max()
    mean = best.groupby(level="grid").mean()
    return {str(k): float(v) for k, v in mean.items()}


def _problems(table: pd.DataFrame, faces: list[Any], departments: Sequence[Department],
              metric: pyproj.CRS) -> gpd.GeoDataFrame:
    """Gaps (no grid of a department) and overlaps (two or more) per department and village, with geometry."""
    bad = np.flatnonzero((table["n_grids"] != 1).to_numpy())
    rows: list[dict[str, Any]] = []
    if len(bad):
        sub = table.iloc[bad].assign(face=bad)
        sub = sub[(sub["n_grids"] == 0) | (sub["dept_grid"] >= 0)]
        for key, grp in sub.groupby(["dept", "village", "key"], sort=True):
            k_, village_, _ = cast(tuple[Any, Any, Any], key)
            k, village = int(k_), str(village_)
            geoms = np.asarray([faces[i] for i in sorted(set(grp["face"].tolist()))], dtype=object)
            d = departments[k]
            ids = [d.ids[j] for j in sorted({int(j) for j in grp["dept_grid"] if j >= 0})]
            kind = "gap" if not ids else "overlap"
            for part in shapely.get_parts(shapely.union_all(geoms)):
                rows.append({"kind": kind, "department": d.name, "village": village, "grids": ",".join(ids),
                             "area_m2": round(float(shapely.area(part)), 2), "geometry": part})
    cols = ["kind", "department", "village", "grids", "area_m2"]
    frame = pd.DataFrame(rows, columns=[*cols, "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=metric)


def _report(departments: Sequence[Department], outs: list[VillageMerge], grids: gpd.GeoDataFrame,
            table: pd.DataFrame, problems: gpd.GeoDataFrame, *, outside: int) -> dict[str, Any]:
    """What was merged and what was found: counts, bounds, slivers, splits, each department's coverage."""
    depts: dict[str, Any] = {}
    for k, d in enumerate(departments):
        mine = problems[problems["department"] == d.name]
        t = table[table["dept"] == k]
        used = sorted(set(t["dept_grid"][t["dept_grid"] >= 0].tolist()))
        inside = t[t["dept_grid"] >= 0].groupby("dept_grid")["area"].sum()
        full = np.asarray(shapely.area(d.geoms[used]), dtype=float) if used else np.zeros(0)
        depts[d.name] = {
            **d.report, "grids": len(d.ids), "grids_in_villages": len(used),
            "gaps": int((mine["kind"] == "gap").sum()), "gap_m2": round(float(mine[mine["kind"] == "gap"]
                                                                            ["area_m2"].sum()), 1),
            "overlaps": int((mine["kind"] == "overlap").sum()),
            "overlap_m2": round(float(mine[mine["kind"] == "overlap"]["area_m2"].sum()), 1),
            "outside_villages_m2": round(float(np.maximum(full - inside.reindex(used).to_numpy(), 0).sum()), 1),
            # villages the department does not reach at all (each is also one whole-village gap)
            "villages_not_covered": sorted(str(v) for v, top in t.groupby("village")["dept_grid"].max().items()
                                           if top < 0),
        }
    n = len(grids)
    inb = int(grids["within_bounds"].sum()) if n else 0
    return {
        "villages": len(outs), "grids": n, "within_bounds": inb,
        "within_bounds_share": round(inb / n, 4) if n else None,
        "households": int(grids["households"].sum()) if n else 0, "households_outside_villages": outside,
        "faces": int(sum(len(o.faces) for o in outs)),
        "slivers_merged": int(sum(o.slivers for o in outs)),
        "sliver_m2": round(float(sum(o.sliver_m2 for o in outs)), 2),
        "heavy_faces_split": int(sum(o.split for o in outs)),
        "violations": {o.code: o.violations for o in outs if o.violations},
        "mean_follows": round(float(grids["follows"].mean()), 4) if n and not math.isnan(grids["follows"].mean())
        else None,
        "departments": depts,
    }


# --------------------------------------------------------------------------------------
# files out
# --------------------------------------------------------------------------------------
def write_merge(result: MergeResult, path: str | Path) -> None:
    """Write ``grids``, ``villages``, ``crosswalk``, ``households`` and (when any) ``merge_problems`` atomically.

    Raises
    ------
    UsageError
        ``path`` is not a ``.gpkg`` (the merge writes several layers and a table).
    """
    p = Path(path)
    if p.suffix.lower() != ".gpkg":
        raise UsageError(f"{p}: the merge writes several layers and a table: the output must be .gpkg")
    layers: dict[str, Any] = {"grids": result.grids, "villages": result.villages, "crosswalk": result.crosswalk,
                              "households": result.households}
    if len(result.problems):
        layers["merge_problems"] = result.problems
    write_layers(layers, p)
