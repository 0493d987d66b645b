"""Blocks (块): contiguous groups of villages within a township, by size rules.

A county groups adjacent villages and communities "with similar regional
character, connected industry and shared urban function" into blocks, one per
township official, and re-draws them as villages grow, merge or split. This
module is the village-level front end of the general engine
(:mod:`gridgeo.partition`): it reads and checks the villages, builds the rook
adjacency graph (:func:`gridgeo.data.adjacency.build_adjacency`), solves, dissolves
each block into one polygon, names the blocks, and writes a report.

Block ids
---------
``<group code><sequence>`` with a two-digit sequence (three digits when a
group has more than 99 blocks), e.g. ``大安區03`` or ``36990010204``. Blocks
are numbered west to east, north to south, in the same way the synthetic
county numbers its codes: the centroid of each block (in the metric CRS) is
placed in a horizontal band ``floor(-y / h)`` where ``h`` is the square root of
the median block area of the group (about one block high, so a few metres of
northing never flip two blocks of one row), and blocks are read band by band
from the north, west to east within a band. Ids are stable: a locked block and
a block that continues a previous block (``previous``) keep their id; only new
blocks take fresh numbers, after the highest one in use in their group.

Output columns: ``block_id``, ``group``, ``size`` (sum of the size column, or
the number of villages), ``n_units``, ``members`` (list of village ids: a JSON
array in GeoJSON, JSON text in a GeoPackage), ``polsby_popper`` (4πA/P² of the dissolved block, measured in
the metric CRS), ``locked``, ``violations`` (names of the hard rules the block
breaks), the size column's own name when one was given, and, per
``similar`` column, the majority value (categorical) or the mean (numeric,
as ``<col>_mean``).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

from gridgeo.data import crs as _crs
from gridgeo.errors import FileFormatError, InputError, SchemaError, UsageError
from gridgeo.partition import Model, Objective, Result

log = logging.getLogger(__name__)

__all__ = ["BlocksOutput", "make_blocks", "read_assignment", "synthetic_households"]


def synthetic_households(areas_m2: ArrayLike, seed: int = 0) -> NDArray[np.int64]:
    """Households derived from village area, for layers that carry none (tests, benchmarks).

    Why this shape: urban villages (里, 社区) hold similar numbers of
    households whatever their area, and large rural ones hold somewhat more,
    so households grow with a weak power of the area (0.25) around 1,500 at
    the median area, with lognormal noise (sigma 0.3) drawn from
    ``default_rng(seed)``. This gives roughly 500-5,000 households, the spread
    of real villages and communities. It is a fixture, not an estimate.
    """
    a = np.asarray(areas_m2, dtype=float)
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    med = float(np.median(a)) or 1.0
    h = 1500.0 * np.power(np.maximum(a, 1.0) / med, 0.25) * rng.lognormal(0.0, 0.3, len(a))
    return np.maximum(np.rint(h), 50).astype(np.int64)


@dataclass
class BlocksOutput:
    """The dissolved blocks, the report, and the engine's raw result."""

    blocks: gpd.GeoDataFrame
    report: dict[str, Any]
    result: Result

    @property
    def feasible(self) -> bool:
        return self.result.feasible


def make_blocks(
    villages: gpd.GeoDataFrame,
    *,
    id_col: str | None = None,
    group_col: str | None = None,
    size_col: str | None = None,
    min_size: float | Mapping[str, float] | None = None,
    max_size: float | Mapping[str, float] | None = None,
    count: int | Mapping[str, int] | None = None,
    count_col: str | None = None,
    similar: Sequence[str] = (),
    locks: Mapping[str, str] | None = None,
    previous: Mapping[str, str] | None = None,
    seed: int = 0,
    time_limit: float | None = None,
    objective: Objective | None = None,
    min_shared: float = 5.0,
    snap: float = 2.0,
    progress: bool = False,
) -> BlocksOutput:
    """Group villages into contiguous blocks within their groups (townships).

    Parameters
    ----------
    villages
        Village polygons with a CRS. They are checked first
        (:func:`gridgeo.data.check.check_layer`); unusable input is refused.
    id_col
        Village id column (default: the row number).
    group_col
        Column naming each village's township; blocks never cross it.
    size_col
        Numeric column the bounds are on (households, population, area);
        without it a block's size is its number of villages.
    min_size, max_size
        Hard bounds on a block's size (a number, or a mapping township -> number).
    count, count_col
        Blocks per group (a number or a mapping township -> number), or a
        column holding each group's count; neither:
        as many as the bounds allow (see :mod:`gridgeo.partition`).
    similar
        Columns whose values should not be mixed in a block (``kind``).
    locks
        Village id -> block id: these blocks are kept exactly.
    previous
        Village id -> block id of an earlier run: re-draw moving as few
        villages as possible; the report says how many moved.
    seed, time_limit, objective
        Passed to :meth:`gridgeo.partition.Model.solve` / the model.
    min_shared, snap
        Adjacency options (see :func:`gridgeo.data.adjacency.build_adjacency`).

    Returns
    -------
    BlocksOutput
        Always, feasible or not; ``feasible`` says whether every hard rule holds.

    Raises
    ------
    InputError
        The layer is not usable (duplicate ids, overlaps, no CRS, ...).
    SchemaError
        A named column is missing or the size column is not numeric.
    UsageError
        Bounds or counts that make no sense.
    """
    from gridgeo.data.adjacency import build_adjacency

    if count is not None and count_col is not None:
        raise UsageError("give count or count_col, not both")
    source = villages.attrs.get("source")
    cols = [c for c in (group_col, size_col, count_col, *similar) if c is not None]
    gdf = _checked_villages(villages, cols, id_col=id_col, group_col=group_col, size_col=size_col, snap=snap)
    metric = _crs.metric_crs(gdf)
    attrs = list(dict.fromkeys(cols))
    G = build_adjacency(gdf, id_col=id_col, min_shared=min_shared, snap=snap, metric=metric, attrs=attrs)
    ids = list(G.nodes)
    model = Model(G, size=size_col, min_size=min_size, max_size=max_size,
                  count=count if count is not None else count_col, group=group_col, similar=similar,
                  locks=dict(locks) if locks else None, previous=dict(previous) if previous else None,
                  objective=objective)
    result = model.solve(seed=seed, time_limit=time_limit, progress=progress)
    blocks, block_of_part = _dissolve(gdf, ids, result, group_col=group_col, size_col=size_col, similar=similar,
                                      metric=metric)
    report = _report(gdf, G.graph, result, blocks, block_of_part, group_col=group_col, size_col=size_col,
                     similar=similar, options={
                         "id": id_col, "group_by": group_col, "size_col": size_col, "min": min_size,
                         "max": max_size, "count": count, "count_col": count_col, "similar": list(similar),
                         "seed": seed, "locked_units": len(locks or {}), "previous_units": len(previous or {}),
                         "min_shared_m": min_shared, "snap_m": snap,
                     }, source=source)
    return BlocksOutput(blocks=blocks, report=report, result=result)


def _checked_villages(villages: gpd.GeoDataFrame, cols: list[str], *, id_col: str | None, group_col: str | None,
                      size_col: str | None, snap: float) -> gpd.GeoDataFrame:
    """The villages with the named ``cols`` present, a numeric size column, checked and repaired.

    Raises
    ------
    SchemaError
        A named column is missing or the size column is not numeric.
    InputError
        The layer is not usable.
    """
    from gridgeo.data.check import check_layer

    source = villages.attrs.get("source")
    for col in cols:
        if col not in villages.columns:
            have = [c for c in villages.columns if c != villages.geometry.name]
            raise SchemaError(f"column {col!r} not found; columns are {have}", path=source)
    if size_col is not None and not pd.api.types.is_numeric_dtype(villages[size_col]):
        conv = pd.to_numeric(villages[size_col], errors="coerce")
        bad = conv.isna() & villages[size_col].notna()
        if bad.any():
            raise SchemaError(f"size column {size_col!r} is not numeric (e.g. {villages[size_col][bad].iloc[0]!r})",
                              path=source)
        villages = villages.assign(**{size_col: conv})
    checked = check_layer(villages, id_col=id_col, parent_col=group_col, snap=snap, path=source)
    message = checked.report.unusable_message()
    if message is not None:
        raise InputError(message, path=source)
    for p in checked.report.problems:
        if p.severity == "repaired":
            log.warning("%s: feature %s: %s", source or "villages", p.id, p.message)
    return checked.gdf.reset_index(drop=True)


@dataclass(frozen=True)
class _Shapes:
    """Each block's villages (row numbers), dissolved polygon and metric measures."""

    rows: list[NDArray[np.int64]]
    shapes: NDArray[np.object_]  # in the villages' CRS
    area: NDArray[np.float64]  # metric
    polsby_popper: NDArray[np.float64]
    cx: NDArray[np.float64]  # metric centroid
    cy: NDArray[np.float64]


def _shapes(gdf: gpd.GeoDataFrame, ids: list[Hashable], result: Result, metric: Any) -> _Shapes:
    geoms = np.asarray(gdf.geometry.values)
    row_of = {u: i for i, u in enumerate(ids)}
    rows = [np.asarray([row_of[u] for u in p.units], dtype=np.int64) for p in result.parts]
    shapes = np.array([shapely.union_all(geoms[r]) for r in rows], dtype=object)
    mshapes = np.asarray(gpd.GeoSeries(shapes, crs=gdf.crs).to_crs(metric).values)
    area = shapely.area(mshapes)
    perim = shapely.length(mshapes)
    pp = np.where(perim > 0, 4 * math.pi * area / np.maximum(perim, 1e-12) ** 2, 0.0)
    cent = shapely.centroid(mshapes)
    return _Shapes(rows=rows, shapes=shapes, area=area, polsby_popper=pp, cx=shapely.get_x(cent),
                   cy=shapely.get_y(cent))


def _block_ids(result: Result, sh: _Shapes, *, group_col: str | None) -> list[str]:
    """Block id of each part: kept labels first, then reading order for the new ones (module notes)."""
    by_group: dict[str, list[int]] = {}
    for part in result.parts:
        by_group.setdefault(part.group, []).append(part.index)
    block_of_part = [""] * len(result.parts)
    for g in sorted(by_group):
        _number_group(result, sh, by_group[g], g if group_col is not None else "B", block_of_part)
    return block_of_part


def _number_group(result: Result, sh: _Shapes, members: list[int], prefix: str, block_of_part: list[str]) -> None:
    """Ids for one group's parts (in place): a part keeps its label unless another took it first."""
    width = max(2, len(str(len(members))))
    used: set[str] = set()
    for p in members:
        lab = result.parts[p].label
        if lab is not None and str(lab) not in used:
            block_of_part[p] = str(lab)
            used.add(str(lab))
    new = [p for p in members if not block_of_part[p]]
    if not new:
        return
    h = math.sqrt(float(np.median(sh.area[members]))) or 1.0
    band = np.floor(-sh.cy[new] / h)
    order = [new[i] for i in np.lexsort((sh.cx[new], band))]
    seqs = [int(s[len(prefix):]) for s in used if s.startswith(prefix) and s[len(prefix):].isdigit()]
    nxt = max(seqs, default=0) + 1
    for p in order:
        while f"{prefix}{nxt:0{width}d}" in used:
            nxt += 1
        block_of_part[p] = f"{prefix}{nxt:0{width}d}"
        used.add(block_of_part[p])
        nxt += 1


def _broken_rules(result: Result) -> dict[int, list[str]]:
    """Part index -> the hard rules it breaks, each once, in the order reported."""
    broken: dict[int, list[str]] = {}
    for v in result.violations:
        if v.part is not None:
            broken.setdefault(v.part, [])
            if v.rule not in broken[v.part]:
                broken[v.part].append(v.rule)
    return broken


def _dissolve(gdf: gpd.GeoDataFrame, ids: list[Hashable], result: Result, *, group_col: str | None,
              size_col: str | None, similar: Sequence[str], metric: Any) -> tuple[gpd.GeoDataFrame, list[str]]:
    """One polygon per block, named and ordered (see the module notes)."""
    sh = _shapes(gdf, ids, result, metric)
    block_of_part = _block_ids(result, sh, group_col=group_col)
    broken = _broken_rules(result)
    data: dict[str, Any] = {
        "block_id": block_of_part,
        "group": [p.group if group_col is not None else None for p in result.parts],
        "size": [p.size for p in result.parts],
        "n_units": [p.n_units for p in result.parts],
        "members": [[str(u) for u in p.units] for p in result.parts],
        "polsby_popper": np.round(sh.polsby_popper, 4),
        "locked": [p.locked for p in result.parts],
        "violations": [broken.get(p.index, []) for p in result.parts],
    }
    if size_col is not None and size_col not in data:
        data[size_col] = [p.size for p in result.parts]
    for col in similar:
        vals = gdf[col].to_numpy()
        if _numeric(vals):
            data[f"{col}_mean"] = [float(np.mean(vals[r].astype(float))) for r in sh.rows]
        elif col not in data:
            data[col] = [_majority(vals[r]) for r in sh.rows]
    out = gpd.GeoDataFrame(data, geometry=list(sh.shapes), crs=gdf.crs)
    out["_order"] = [(p.group, block_of_part[p.index]) for p in result.parts]
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return out, block_of_part


def _numeric(vals: NDArray[Any]) -> bool:
    return all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in vals)


def _majority(vals: NDArray[Any]) -> Any:
    c = Counter("" if v is None else str(v) for v in vals)
    return min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _report(gdf: gpd.GeoDataFrame, graph: Mapping[str, Any], result: Result, blocks: gpd.GeoDataFrame,
            block_of_part: list[str], *, group_col: str | None, size_col: str | None, similar: Sequence[str],
            options: dict[str, Any], source: str | None) -> dict[str, Any]:
    sizes = np.asarray(result.sizes(), dtype=float)
    pp = blocks["polsby_popper"].to_numpy(dtype=float)
    hetero: dict[str, Any] = {}
    row_of_unit = {u: i for i, u in enumerate(result.assignment)}
    for col in similar:
        vals = gdf[col].to_numpy()
        rows = [np.asarray([row_of_unit[u] for u in p.units], dtype=np.int64) for p in result.parts]
        if _numeric(vals):
            x = vals.astype(float)
            within = sum(float(((x[r] - x[r].mean()) ** 2).sum()) for r in rows)
            total = float(((x - x.mean()) ** 2).sum())
            hetero[col] = {"type": "numeric", "within_sd": math.sqrt(within / len(x)),
                           "overall_sd": math.sqrt(total / len(x)),
                           "ratio": math.sqrt(within / total) if total > 0 else 0.0}
        else:
            mixed = 0
            minority = 0
            for r in rows:
                c = Counter("" if v is None else str(v) for v in vals[r])
                mixed += len(c) > 1
                minority += len(r) - max(c.values())
            hetero[col] = {"type": "categorical", "mixed_blocks": mixed, "minority_units": minority,
                           "minority_share": minority / max(len(vals), 1)}
    violations = []
    for v in result.violations:
        d = v.to_dict()
        d["block"] = block_of_part[v.part] if v.part is not None else None
        violations.append(d)
    return {
        "input": source,
        "units": len(result.assignment),
        "blocks": len(result.parts),
        "groups": result.stats["groups"],
        "feasible": result.feasible,
        "options": options,
        "rules": result.satisfaction,
        "failed_rules": result.failed_rules,
        "compactness": {
            "mean_polsby_popper": round(float(pp.mean()), 4) if len(pp) else None,
            "min_polsby_popper": round(float(pp.min()), 4) if len(pp) else None,
            "measured_in": graph.get("crs"),
        },
        "balance": {
            "size": size_col or "units",
            "min": float(sizes.min()) if len(sizes) else None,
            "max": float(sizes.max()) if len(sizes) else None,
            "mean": float(sizes.mean()) if len(sizes) else None,
            "cv": float(sizes.std() / sizes.mean()) if len(sizes) and sizes.mean() > 0 else None,
        },
        "heterogeneity": hetero,
        "moved": None if result.moved is None else len(result.moved),
        "moved_units": None if result.moved is None else [str(u) for u in result.moved],
        "adjacency": {"islands": len(graph.get("islands", [])), "components": len(graph.get("components", []))},
        "violations": violations,
        "stats": result.stats,
    }


# --------------------------------------------------------------------------------------
# Lock / previous files
# --------------------------------------------------------------------------------------
def read_assignment(path: str | Path, *, id_col: str | None = None) -> dict[str, str]:
    """Read a village -> block mapping (for ``--lock`` and ``--previous``).

    Accepted: a JSON object ``{"village id": "block id", ...}``; a CSV with a
    header whose first column (or ``id_col``, ``unit`` or ``id``) holds village
    ids and whose ``block_id`` (or ``block``, or second) column holds block
    ids; or a blocks layer written by ``gridgeo blocks`` (``.geojson``/``.gpkg``
    with ``block_id`` and ``members``).
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError("no such file", path=p)
    suf = p.suffix.lower()
    try:
        if suf == ".csv":
            with p.open(newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
            if len(rows) < 1 or len(rows[0]) < 2:
                raise FileFormatError("CSV needs a header and two columns (village id, block id)", path=p)
            head = [h.strip() for h in rows[0]]
            ui = next((head.index(c) for c in (id_col, "unit", "id") if c in head), 0)
            bi = next((head.index(c) for c in ("block_id", "block") if c in head), 1 if ui != 1 else 0)
            return {r[ui].strip(): r[bi].strip() for r in rows[1:] if len(r) > max(ui, bi) and r[ui].strip()}
        if suf == ".json" and not _is_geojson(p):
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise FileFormatError("JSON must be an object mapping village ids to block ids", path=p)
            return {str(k): str(v) for k, v in data.items()}
        if suf in (".geojson", ".json", ".gpkg"):
            from gridgeo.data.io import read_layer

            layer = read_layer(p)
            if "block_id" not in layer.columns or "members" not in layer.columns:
                raise FileFormatError("a blocks layer needs block_id and members columns", path=p)
            out: dict[str, str] = {}
            for bid, mem in zip(layer["block_id"], layer["members"], strict=True):
                members = json.loads(mem) if isinstance(mem, str) else list(mem)
                for u in members:
                    out[str(u)] = str(bid)
            return out
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot read: {' '.join(str(exc).split())}", path=p) from exc
    raise FileFormatError("unknown format; expected .json, .csv, .geojson or .gpkg", path=p)


def _is_geojson(p: Path) -> bool:
    try:
        head = p.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return '"FeatureCollection"' in head or '"Feature"' in head
