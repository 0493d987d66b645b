"""The change list between two builds of a county: ``gridgeo diff OLD.gpkg NEW.gpkg``.

Why: after a rebuild (new registers, a rule changed for one village, a GIS
officer's redraw) the county needs to know what changed before it is served:
which grid and point codes were retired or created, which were kept with
another shape, which households now belong to another unit, whose
responsibility moved, and whether the rules hold better or worse than before.
Nothing else says it; a rebuild is otherwise a new file.

How it is measured
------------------
- **Codes** per level (every level layer in either file): retired (only in
  OLD), created (only in NEW), kept with changed geometry (the area of the
  symmetric difference above ``area_tol`` m², in the metric CRS of the
  villages: the CGCS2000 Gauss-Krüger zone, never in degrees) or kept the same.
- **Households** are matched by the register's key (``source``, ``source_id``)
  where both files have it (else by row, and the report says so); a household
  moved at a level when its unit code there differs (``point``, ``grid``,
  ``village``, ``township``, and ``micro_grid``, ``lane`` where built). The
  change list gives each (from → to) pair with its rows and the households
  they hold (the ``households`` column), and the households only one file has.
- **People** (the ``people`` roster, by ``person_id``): whose unit changed, and
  who stays on a code the rebuild retired (the unit must be staffed anew).
  Only ids, roles and units: the roster's names and phones stay in the file.
- **Rules** before and after, per level: units outside their household
  bounds (the build's ``within_bounds``), units in several parts, invalid
  polygons.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridgeo.data.crs import metric_crs
from gridgeo.errors import InputError

log = logging.getLogger(__name__)

#: the level layers compared, coarsest first
LEVELS = ("areas", "townships", "blocks", "villages", "grids", "points", "exclusive", "micro_grids", "lanes")
#: household columns holding a unit code, finest first
HOUSEHOLD_LEVELS = ("lane", "micro_grid", "point", "grid", "village", "township")
_KEY = ["source", "source_id"]
#: shown per list in the text summary (the JSON has every one)
_SHOWN = 10


@dataclass
class LevelDiff:
    """What changed in one level layer."""

    level: str
    retired: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    reshaped: list[dict[str, Any]] = field(default_factory=list)
    kept: int = 0
    rules_before: dict[str, int] = field(default_factory=dict)
    rules_after: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"retired": self.retired, "created": self.created, "reshaped": self.reshaped, "kept": self.kept,
                "rules": {"before": self.rules_before, "after": self.rules_after}}


@dataclass
class CountyDiff:
    """The change list of ``new`` against ``old`` (see the module)."""

    old: str
    new: str
    levels: dict[str, LevelDiff]
    households: dict[str, Any]
    people: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready values."""
        return {"old": self.old, "new": self.new, "levels": {k: v.as_dict() for k, v in self.levels.items()},
                "households": self.households, "people": self.people}

    def summary(self) -> str:
        """The change list for a terminal: counts per level, the first codes of each list."""
        lines = [f"{self.old} -> {self.new}"]
        lines.append(f"{'level':<12}{'retired':>9}{'created':>9}{'reshaped':>10}{'kept':>8}  rules before -> after")
        for name, lv in self.levels.items():
            rules = ", ".join(f"{k} {lv.rules_before.get(k, 0)} -> {lv.rules_after.get(k, 0)}"
                              for k in sorted(set(lv.rules_before) | set(lv.rules_after)))
            lines.append(f"{name:<12}{len(lv.retired):>9}{len(lv.created):>9}{len(lv.reshaped):>10}{lv.kept:>8}"
                         f"  {rules}")
        hh = self.households
        lines.append(f"households matched by {hh['matched_by']}: {hh['matched']:,} rows in both, "
                     f"{hh['only_old']:,} only in OLD, {hh['only_new']:,} only in NEW")
        for lvl, m in hh["moved"].items():
            pairs = "; ".join(f"{p['from']} -> {p['to']}: {p['rows']}" for p in m["pairs"][:_SHOWN])
            more = f" (and {len(m['pairs']) - _SHOWN} more pairs)" if len(m["pairs"]) > _SHOWN else ""
            lines.append(f"  moved at {lvl}: {m['rows']:,} rows, {m['households']:,} households: {pairs}{more}")
        if self.people:
            lines.append(f"people: {len(self.people['moved'])} on another unit, "
                         f"{len(self.people['on_retired'])} on a retired code")
            for p in self.people["on_retired"][:_SHOWN]:
                lines.append(f"  {p['person_id']} ({p.get('role') or '-'}) on retired {p['unit']}")
        return "\n".join(lines)


def _layers(path: Path) -> dict[str, bool]:
    try:
        return {str(n): g is not None for n, g in pyogrio.list_layers(path)}
    except Exception as exc:  # pyogrio raises DataSourceError and others for what is not a GeoPackage
        raise InputError(f"cannot read {path}: {exc}") from None


def diff_counties(old: str | Path, new: str | Path, *, area_tol: float = 1.0) -> CountyDiff:
    """The change list of the built county ``new`` against ``old`` (see the module).

    Parameters
    ----------
    old, new
        Two built county GeoPackages (``gridgeo build``).
    area_tol
        A kept code whose old and new polygons differ by at most this many m² is unchanged (rounding
        of coordinates moves edges by millimetres).

    Raises
    ------
    InputError
        When a file cannot be read or has no level layer.
    """
    po, pn = Path(old), Path(new)
    lo, ln = _layers(po), _layers(pn)
    names = [n for n in LEVELS if lo.get(n) or ln.get(n)]
    if not names:
        raise InputError(f"{po}, {pn}: no level layer ({', '.join(LEVELS)}) in either file")
    metric = next(_metric(p, ls) for key in ("villages", *LEVELS) for p, ls in ((po, lo), (pn, ln)) if ls.get(key))
    levels = {n: _level(n, po if lo.get(n) else None, pn if ln.get(n) else None, metric, area_tol) for n in names}
    households = _households(po, pn) if lo.get("households") and ln.get("households") else {}
    people = _people(po, pn, levels) if "people" in lo and "people" in ln else {}
    return CountyDiff(str(po), str(pn), levels, households, people)


def _metric(path: Path, layers: dict[str, bool]) -> Any:
    layer = next(n for n in ("villages", *LEVELS) if layers.get(n))
    return metric_crs(pyogrio.read_dataframe(path, layer=layer, columns=[]))


def _read(path: Path | None, level: str, metric: Any) -> gpd.GeoDataFrame:
    if path is None:
        return gpd.GeoDataFrame({"code": pd.Series(dtype=object)}, geometry=gpd.GeoSeries([], crs=metric))
    gdf = pyogrio.read_dataframe(path, layer=level)
    if "code" not in gdf.columns:
        raise InputError(f"{path}: layer {level} has no code column")
    gdf["code"] = gdf["code"].astype(str)
    if gdf["code"].duplicated().any():
        dup = gdf.loc[gdf["code"].duplicated(), "code"].iloc[0]
        raise InputError(f"{path}: layer {level}: code {dup} is not unique")
    return gdf.to_crs(metric)


def _level(level: str, old: Path | None, new: Path | None, metric: Any, area_tol: float) -> LevelDiff:
    a, b = _read(old, level, metric), _read(new, level, metric)
    out = LevelDiff(level, rules_before=_rules(a), rules_after=_rules(b))
    ca, cb = set(a["code"]), set(b["code"])
    out.retired, out.created = sorted(ca - cb), sorted(cb - ca)
    both = sorted(ca & cb)
    ga = a.set_index("code").geometry.reindex(both).to_numpy()
    gb = b.set_index("code").geometry.reindex(both).to_numpy()
    sym = shapely.area(shapely.symmetric_difference(shapely.make_valid(ga), shapely.make_valid(gb)))
    for code, d, ar_a, ar_b in zip(both, sym.tolist(), shapely.area(ga).tolist(), shapely.area(gb).tolist(),
                                   strict=True):
        if d > area_tol:
            out.reshaped.append({"code": code, "changed_m2": round(d, 1), "area_before_m2": round(ar_a, 1),
                                 "area_after_m2": round(ar_b, 1)})
    out.kept = len(both) - len(out.reshaped)
    return out


def _rules(gdf: gpd.GeoDataFrame) -> dict[str, int]:
    geoms = gdf.geometry.to_numpy()
    out = {"units": len(gdf), "invalid": int((~shapely.is_valid(geoms)).sum()),
           "multipart": int((shapely.get_num_geometries(geoms) > 1).sum())}
    if "within_bounds" in gdf.columns:
        out["outside_bounds"] = int((gdf["within_bounds"].astype("boolean") == False).sum())  # noqa: E712
    return out


def _households(old: Path, new: Path) -> dict[str, Any]:
    a = pyogrio.read_dataframe(old, layer="households", read_geometry=False)
    b = pyogrio.read_dataframe(new, layer="households", read_geometry=False)
    keyed = all(c in a.columns and c in b.columns for c in _KEY) and not (
        a.duplicated(_KEY).any() or b.duplicated(_KEY).any())
    if keyed:
        m = a.merge(b, on=_KEY, how="outer", suffixes=("_old", "_new"), indicator=True)
        by = "register key (source, source_id)"
    else:
        log.warning("households have no unique register key (source, source_id) in both files: matched by row")
        m = a.add_suffix("_old").join(b.add_suffix("_new"), how="outer")
        m["_merge"] = np.where(m.index < min(len(a), len(b)), "both", np.where(m.index < len(a), "left_only",
                                                                                  "right_only"))
        by = "row"
    both = m[m["_merge"] == "both"]
    weight = (both["households_new"] if "households_new" in both.columns else pd.Series(1, index=both.index))
    moved = {}
    for lvl in HOUSEHOLD_LEVELS:
        if f"{lvl}_old" not in both.columns or f"{lvl}_new" not in both.columns:
            continue
        fa, fb = both[f"{lvl}_old"].astype("string"), both[f"{lvl}_new"].astype("string")
        diff = (fa.fillna("") != fb.fillna("")).to_numpy()
        if not diff.any():
            continue
        rows: Counter[tuple[str, str]] = Counter()
        held: Counter[tuple[str, str]] = Counter()
        for pair, w in zip(zip(fa[diff].fillna("-"), fb[diff].fillna("-"), strict=True),
                           weight[diff].fillna(1).astype(int), strict=True):
            rows[pair] += 1
            held[pair] += int(w)
        moved[lvl] = {"rows": int(diff.sum()), "households": sum(held.values()),
                      "pairs": [{"from": f, "to": t, "rows": n, "households": held[(f, t)]}
                                for (f, t), n in sorted(rows.items(), key=lambda kv: (-kv[1], kv[0]))]}
    return {"matched_by": by, "matched": len(both), "only_old": int((m["_merge"] == "left_only").sum()),
            "only_new": int((m["_merge"] == "right_only").sum()), "moved": moved}


def _people(old: Path, new: Path, levels: dict[str, LevelDiff]) -> dict[str, Any]:
    a = pyogrio.read_dataframe(old, layer="people", read_geometry=False)
    b = pyogrio.read_dataframe(new, layer="people", read_geometry=False)
    if "person_id" not in a.columns or "person_id" not in b.columns or "unit" not in b.columns:
        log.warning("the people tables have no person_id and unit: people not compared")
        return {}
    ua = dict(zip(a["person_id"].astype(str), a["unit"].astype(str), strict=True))
    role = dict(zip(b["person_id"].astype(str), b["role"] if "role" in b.columns else [None] * len(b),
                    strict=True))
    retired = {c for lv in levels.values() for c in lv.retired}
    moved, on_retired = [], []
    for pid, unit in zip(b["person_id"].astype(str), b["unit"].astype(str), strict=True):
        if pid in ua and ua[pid] != unit:
            moved.append({"person_id": pid, "role": role[pid], "from": ua[pid], "to": unit})
        if unit in retired:
            on_retired.append({"person_id": pid, "role": role[pid], "unit": unit})
    return {"moved": moved, "on_retired": on_retired,
            "only_old": sorted(set(ua) - set(role)), "only_new": sorted(set(role) - set(ua))}
