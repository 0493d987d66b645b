"""Areas (片区) above townships: whole townships grouped, by the county's own table or by the partition engine.

Counties group their townships under area coordination centres (Wangcang: 23
townships under 7 areas). ``[areas]`` in the rules says how
(:class:`gridgeo.county.rules.AreaRules`):

- ``table``: a table (CSV, XLSX, any layer) of township (code or name) ->
  area (name, optionally a code); every township must be in it;
- ``count``: ``count`` contiguous groups of whole townships drawn by the
  partition engine (:func:`gridgeo.county.blocks.make_blocks`, as blocks
  are drawn from villages), with households per area within ``min``/``max``
  and the ``similar`` township columns not mixed.

Each area is the exact union of its townships (a clean coverage like every
level); codes are the county code + ``A`` + two digits, numbered west to
east.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo.county.rules import AreaRules
from gridgeo.errors import InputError, SchemaError

log = logging.getLogger(__name__)

__all__ = ["make_areas"]

#: a township -> area table's columns, under the names counties give them
_TOWNSHIP = ("township", "township_code", "乡镇", "乡镇编码", "乡镇名称", "乡镇(街道)", "乡镇（街道）", "街道")
_AREA = ("area", "area_name", "片区", "片区名称", "所属片区")
_AREA_CODE = ("area_code", "片区编码", "片区代码")


def make_areas(towns: gpd.GeoDataFrame, rules: AreaRules, *, county_code: str, metric: pyproj.CRS,
               seed: int = 0) -> tuple[gpd.GeoDataFrame, list[str], dict[str, Any]]:
    """The areas layer (in the townships' CRS), each township's area code, and the report's part.

    Raises
    ------
    InputError, SchemaError
        A table without township or area columns, naming a township the county lacks, or leaving
        townships out (they are named).
    """
    if rules.table is not None:
        names = _from_table(towns, rules.table)
    else:
        names = _from_engine(towns, rules, metric=metric, seed=seed)
    groups = list(dict.fromkeys(names))
    geoms = [shapely.coverage_union_all(np.asarray(towns.geometry.values, dtype=object)[
        np.asarray([n == g for n in names])]) for g in groups]
    order = np.argsort([shapely.centroid(g).x for g in geoms], kind="stable")  # west to east
    code_of = {groups[i]: f"{county_code}A{k + 1:02d}" for k, i in enumerate(order)}
    given = _given_codes(rules.table, groups) if rules.table is not None else {}
    code_of.update(given)
    hh = towns["households"] if "households" in towns.columns else pd.Series(0, index=towns.index)
    out = gpd.GeoDataFrame({
        "code": [code_of[groups[i]] for i in order],
        "name": [groups[i] if rules.table is not None else f"片区{k + 1:02d}" for k, i in enumerate(order)],
        "households": [int(hh[np.asarray([n == groups[i] for n in names])].sum()) for i in order],
        "n_townships": [sum(n == groups[i] for n in names) for i in order],
    }, geometry=[geoms[i] for i in order], crs=towns.crs)
    report = {"areas": len(out), "source": str(rules.table) if rules.table is not None else "partition engine",
              "households": out["households"].tolist()}
    log.info("%d areas (%s)", len(out), report["source"])
    return out, [code_of[n] for n in names], report


def _column(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in df.columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _read(table: Path) -> pd.DataFrame:
    from gridgeo.data.tables import TABLE_SUFFIXES, read_table

    if table.suffix.lower() in TABLE_SUFFIXES:
        return read_table(table)
    from gridgeo.data.io import read_layer

    return pd.DataFrame(read_layer(table).drop(columns="geometry"))


def _from_table(towns: gpd.GeoDataFrame, table: Path) -> list[str]:
    """Each township's area name from the table (by township code, else name)."""
    df = _read(table)
    tcol, acol = _column(df, _TOWNSHIP), _column(df, _AREA)
    if tcol is None or acol is None:
        raise SchemaError(f"an areas table needs a township column ({', '.join(_TOWNSHIP[:4])}) and an area "
                          f"column ({', '.join(_AREA[:3])}); columns are {list(df.columns)}", path=table)
    by_code = dict(zip(towns["code"].astype(str), towns.index, strict=True))
    by_name = dict(zip(towns["name"].astype(str), towns.index, strict=True)) if "name" in towns.columns else {}
    area: dict[int, str] = {}
    for r in df.to_dict("records"):
        t, a = str(r[tcol]).strip(), r[acol]
        row = by_code.get(t, by_name.get(t))
        if row is None:
            raise InputError(f"row {r.get('_row', '?')}: township {t!r} is not in the county", path=table)
        if a is None or not str(a).strip():
            raise InputError(f"row {r.get('_row', '?')}: township {t!r} has no area", path=table)
        area[row] = str(a).strip()
    missing = [str(towns["code"].iloc[i]) for i in range(len(towns)) if towns.index[i] not in area]
    if missing:
        raise InputError(f"{len(missing)} township(s) in no area: {', '.join(missing[:10])}"
                         + (" ..." if len(missing) > 10 else ""), path=table)
    return [area[i] for i in towns.index]


def _given_codes(table: Path, groups: list[str]) -> dict[str, str]:
    """Area codes the table gives (an area code column), by area name."""
    df = _read(table)
    acol, ccol = _column(df, _AREA), _column(df, _AREA_CODE)
    if acol is None or ccol is None:
        return {}
    return {str(a).strip(): str(c).strip() for a, c in zip(df[acol], df[ccol], strict=True)
            if str(a).strip() in groups and c is not None and str(c).strip()}


def _from_engine(towns: gpd.GeoDataFrame, rules: AreaRules, *, metric: pyproj.CRS, seed: int) -> list[str]:
    """Contiguous groups of whole townships drawn by the partition engine (as blocks from villages)."""
    from gridgeo.county.blocks import make_blocks

    t = towns.to_crs(metric).reset_index(drop=True)
    t["county"] = "county"
    similar = [c for c in rules.similar if c in t.columns]
    bo = make_blocks(t[["code", "county", "households", "geometry", *similar]], id_col="code", group_col="county",
                     size_col="households", min_size=rules.min, max_size=rules.max, count=rules.count,
                     similar=similar, seed=seed)
    of = {str(v): str(code) for code, members in zip(bo.blocks["block_id"], bo.blocks["members"], strict=True)
          for v in members}
    return [of[str(c)] for c in t["code"]]


def add_areas(layers: dict[str, gpd.GeoDataFrame], rules: AreaRules, *, fallback_code: str, metric: pyproj.CRS,
              seed: int = 0) -> dict[str, Any]:
    """The built ``layers`` with an ``areas`` layer first and each township's ``area``; the report's part.

    The county code of the area codes is the townships' common 6-digit prefix, else ``fallback_code``.
    """
    towns = layers["townships"]
    prefixes = {str(c)[:6] for c in towns["code"]}
    county = prefixes.pop() if len(prefixes) == 1 and all(str(c)[:6].isdigit() for c in towns["code"]) \
        else fallback_code
    areas, of_town, report = make_areas(towns, rules, county_code=county, metric=metric, seed=seed)
    towns["area"] = of_town
    rest = dict(layers)
    layers.clear()
    layers.update({"areas": areas, **rest})
    return report
