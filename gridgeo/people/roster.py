"""People and roles on every level: a roster resolved onto the built units, carried through rebuilds.

Counties name responsible people on every level: block chiefs (块长), grid
leaders and workers (格长, 网格员, 网格辅助员), grid-point leaders (点长),
exclusive-grid leaders (专属网格长), village secretaries, township officials,
building chiefs (楼栋长). A roster is a table (CSV, XLSX, any layer) of one
row per person and unit: name, role, phone and the unit they serve, by code
(any level's) or by name plus its parent's code or name; several people per
unit (多员合一) and several units per person (一员多用: several rows, or
several codes in one cell, ``A、B``).

:func:`resolve_roster` matches each row to a built unit and returns the
``people`` table (no geometry: one row per person and unit, with the unit's
level and code). A rebuild that retired a unit's code carries its people to
the unit of the same level covering most of the old one (the previous
build's geometry); people whose unit is gone, or who name a unit that does
not exist, are listed in the report with their row and why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo.data.registers import text_of
from gridgeo.data.tables import ROW

log = logging.getLogger(__name__)

__all__ = ["LEVEL_NAMES", "Roster", "build_people", "read_roster", "resolve_roster"]

#: the levels a person can serve, by their layer name, and the words a roster uses for them
LEVEL_NAMES: dict[str, tuple[str, ...]] = {
    "areas": ("area", "areas", "片区"),
    "townships": ("township", "townships", "乡镇", "街道", "乡镇/街道", "乡", "镇"),
    "blocks": ("block", "blocks", "块", "片"),
    "villages": ("village", "villages", "村", "社区", "村/社区", "村(社区)", "村（社区）", "居委会"),
    "grids": ("grid", "grids", "网格"),
    "points": ("point", "points", "网格点", "点"),
    "exclusive": ("exclusive", "专属网格"),
    "buildings": ("building", "buildings", "楼栋", "建筑"),
    "micro_grids": ("micro_grid", "micro_grids", "micro", "微网格"),
    "lanes": ("lane", "lanes", "巷", "街巷", "小巷"),
}
#: role words -> the level they imply (longest first, so 专属网格长 is not read as 网格长)
_ROLE_LEVELS: tuple[tuple[str, str], ...] = (
    ("片区", "areas"), ("微网格", "micro_grids"), ("街巷", "lanes"), ("巷长", "lanes"),
    ("专属网格", "exclusive"), ("网格点", "points"), ("点长", "points"), ("楼栋", "buildings"),
    ("单元长", "buildings"), ("网格", "grids"), ("格长", "grids"), ("块长", "blocks"),
    ("村", "villages"), ("社区", "villages"), ("乡镇", "townships"), ("街道", "townships"),
)
_SPLIT = re.compile(r"[、;；,，/|\s]+")
#: the people table's own columns, in order; a roster's other columns follow as they came
PEOPLE_COLUMNS = ("person_id", "name", "role", "phone", "level", "unit", "unit_name", "roster_row")


@dataclass
class Roster:
    """The people table and what the report says of it."""

    table: pd.DataFrame
    source: str
    skipped: list[dict[str, Any]] = field(default_factory=list)  # rows naming no unit that exists, and why
    moved: list[dict[str, Any]] = field(default_factory=list)  # carried from a retired unit to its successor

    def report(self) -> dict[str, Any]:
        t = self.table
        return {"source": self.source, "people": int(t["person_id"].nunique()) if len(t) else 0,
                "assignments": len(t), "by_level": {str(k): int(v) for k, v in t["level"].value_counts().items()}
                if len(t) else {}, "moved": self.moved, "skipped": self.skipped}


def read_roster(path: str | Path, *, layer: str | None = None, options: Mapping[str, Any] | None = None) -> tuple[
        pd.DataFrame, str]:
    """The roster as a DataFrame with canonical columns (schema ``people``) and its row numbers."""
    from gridgeo.data.io import read_layer
    from gridgeo.data.tables import TABLE_SUFFIXES

    p = Path(path)
    if p.suffix.lower() in TABLE_SUFFIXES:
        gdf = read_layer(p, layer=layer, kind="people", **dict(options or {}))
    else:  # a layer of any format, geometry or not (a build's own people table)
        gdf = _attribute_layer(p, layer, dict(options or {}))
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    if ROW not in df.columns:
        df[ROW] = np.arange(1, len(df) + 1)
    df.attrs["found"] = dict(gdf.attrs.get("found", {}))
    return df, str(gdf.attrs.get("source", path))


def _attribute_layer(p: Path, layer: str | None, options: dict[str, Any]) -> gpd.GeoDataFrame:
    """A layer read for its attributes only (a GeoPackage table without geometry included), normalised."""
    import pyogrio

    from gridgeo.data.io import list_layers
    from gridgeo.data.schema import normalize
    from gridgeo.errors import FileFormatError, LayerNotFoundError

    names = list_layers(p)  # a missing or unreadable file: the reader's error, naming it
    chosen = layer or ("people" if "people" in names else names[0] if len(names) == 1 else None)
    if chosen is None or chosen not in names:
        raise LayerNotFoundError(f"no layer {layer or 'people'!r}; layers are {', '.join(names)}", path=p)
    try:
        df = pyogrio.read_dataframe(p, layer=chosen, read_geometry=False, encoding=options.get("encoding"))
    except Exception as exc:  # pyogrio raises several unrelated types
        raise FileFormatError(f"cannot read layer {chosen!r}: {' '.join(str(exc).split())}", path=p) from exc
    gdf = gpd.GeoDataFrame(df, geometry=[None] * len(df))
    out = normalize(gdf, "people", mapping=options.get("columns"), path=str(p))
    out.attrs["source"] = f"{p} (layer {chosen})"
    return out


# ------------------------------------------------------------------------------ matching rows to units
def _level_word(text: str | None) -> str | bool | None:
    """The layer a level word names; None blank; False not a level."""
    if text is None:
        return None
    t = text.strip().lower()
    for layer, words in LEVEL_NAMES.items():
        if t in words:
            return layer
    return False


def _role_level(role: str | None) -> str | None:
    if role is None:
        return None
    return next((lvl for word, lvl in _ROLE_LEVELS if word in role), None)


@dataclass(frozen=True)
class _Units:
    """The built units by code and by (level, name), with their names and parents' codes and names."""

    by_code: dict[str, list[tuple[str, int]]]
    name_of: dict[tuple[str, str], str | None]
    by_name: dict[tuple[str, str], list[str]]
    parent_of: dict[tuple[str, str], set[str]]

    @classmethod
    def of(cls, layers: Mapping[str, gpd.GeoDataFrame]) -> _Units:
        by_code: dict[str, list[tuple[str, int]]] = {}
        name_of: dict[tuple[str, str], str | None] = {}
        by_name: dict[tuple[str, str], list[str]] = {}
        parent_of: dict[tuple[str, str], set[str]] = {}
        for level in ("areas", "townships", "blocks", "villages", "grids", "points", "exclusive", "micro_grids",
                      "lanes"):
            g = layers.get(level)
            if g is None or not len(g) or "code" not in g.columns:
                continue
            codes = g["code"].astype(str).tolist()
            names = [text_of(v) for v in g["name"]] if "name" in g.columns else [None] * len(codes)
            parents = [text_of(v) for v in g["parent"]] if "parent" in g.columns else [None] * len(codes)
            for i, (c, n, p) in enumerate(zip(codes, names, parents, strict=True)):
                by_code.setdefault(c, []).append((level, i))
                name_of[(level, c)] = n
                if n is not None:
                    by_name.setdefault((level, n), []).append(c)
                parent_of[(level, c)] = {p} if p else set()
        for ps in parent_of.values():  # a parent is also known by its name
            ps |= {n for p in list(ps) for lvl in LEVEL_NAMES if (n := name_of.get((lvl, p))) is not None}
        return cls(by_code, name_of, by_name, parent_of)


def _match_row(r: Mapping[str, Any], units: _Units, buildings: set[str]) -> tuple[list[tuple[str, str]], str]:
    """The (level, code) units a roster row names, or none and why."""
    lvl = _level_word(text_of(r.get("level")))
    if lvl is False:
        return [], f"level {r.get('level')!r} is none of {', '.join(LEVEL_NAMES)}"
    level = lvl if isinstance(lvl, str) else _role_level(text_of(r.get("role")))
    codes = [c for c in _SPLIT.split(text_of(r.get("unit")) or "") if c]
    if codes:
        out = []
        for c in codes:
            hit, why = _by_code(c, level, units, buildings)
            if hit is None:
                return [], why
            out.append(hit)
        return out, ""
    name = text_of(r.get("unit_name"))
    if name is None:
        return [], "no unit code and no unit name"
    if level is None:
        return [], f"unit {name!r} by name needs a level (a level column, or a role such as 网格员)"
    cands = units.by_name.get((level, name), [])
    parent = text_of(r.get("parent"))
    if parent is not None:
        cands = [c for c in cands if parent in units.parent_of.get((level, c), set())]
    if len(cands) == 1:
        return [(level, cands[0])], ""
    where = f" in {parent!r}" if parent else ""
    if not cands:
        return [], f"no {level[:-1]} named {name!r}{where}"
    return [], f"{len(cands)} {level} named {name!r}{where}; give the parent or the code"


def _by_code(code: str, level: str | None, units: _Units, buildings: set[str]) -> tuple[
        tuple[str, str] | None, str]:
    if level == "buildings":
        if code in buildings:
            return (level, code), ""
        if any(h[0] == "micro_grids" for h in units.by_code.get(code, [])):  # a 楼栋长 of a micro-grid (微网格)
            return ("micro_grids", code), ""
        return None, f"no building {code!r}"
    hits = units.by_code.get(code, [])
    if level is not None and level != "buildings":
        hits = [h for h in hits if h[0] == level] or hits
    levels = sorted({h[0] for h in hits})
    if len(levels) == 1:
        return (levels[0], code), ""
    if not levels:
        return None, f"no unit {code!r}"
    return None, f"code {code!r} is a unit of {' and '.join(levels)}; give the level"


# ------------------------------------------------------------------------------ the people table
def resolve_roster(df: pd.DataFrame, layers: Mapping[str, gpd.GeoDataFrame], *, source: str,
                   previous: Mapping[str, gpd.GeoDataFrame] | None = None,
                   metric: pyproj.CRS | None = None) -> Roster:
    """One row per person and unit of the built ``layers``, carried over retired codes (see the module notes).

    ``previous``: the previous build's level layers (for rows naming a code
    that the rebuild retired); ``metric`` the CRS their overlap is measured in.
    """
    units = _Units.of(layers)
    hh = layers.get("households")
    buildings = set(hh["building"].dropna().astype(str)) | set(hh["source_id"].dropna().astype(str)) \
        if hh is not None and "building" in hh.columns else \
        set(hh["source_id"].dropna().astype(str)) if hh is not None and "source_id" in hh.columns else set()
    roster = Roster(table=pd.DataFrame(columns=list(PEOPLE_COLUMNS)), source=source)
    found = dict(df.attrs.get("found", {}))
    sources = set(found.values())
    others = [c for c in df.columns if c not in found and c not in sources and c != ROW
              and c not in PEOPLE_COLUMNS]
    ids = _person_ids(df)
    rows: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = [{str(k): v for k, v in rec.items()} for rec in df.to_dict("records")]
    succ = _Successors(previous, layers, metric) if previous else None
    for i, r in enumerate(records):
        hits, why = _match_row(r, units, buildings)
        if not hits and succ is not None:
            hits, why = _successors(r, succ, roster, why=why)
        if not hits:
            roster.skipped.append({"row": int(r[ROW]), "name": text_of(r.get("name")), "role": text_of(r.get("role")),
                                   "unit": text_of(r.get("unit")) or text_of(r.get("unit_name")), "reason": why})
            continue
        for level, code in hits:
            rows.append({"person_id": ids[i], "name": text_of(r.get("name")), "role": text_of(r.get("role")),
                         "phone": text_of(r.get("phone")), "level": level, "unit": code,
                         "unit_name": units.name_of.get((level, code)), "roster_row": int(r[ROW]),
                         **{str(c): r.get(c) for c in others}})
    roster.table = pd.DataFrame(rows, columns=[*PEOPLE_COLUMNS, *map(str, others)])
    for s in roster.skipped:
        log.warning("%s: row %d (%s %s): %s", source, s["row"], s["role"] or "", s["name"] or "", s["reason"])
    return roster


def _person_ids(df: pd.DataFrame) -> list[str]:
    """Each row's person: its id where given, else one per distinct name and phone (P0001... in row order)."""
    given = [text_of(v) for v in df["id"]] if "id" in df.columns else [None] * len(df)
    names = [text_of(v) for v in df["name"]] if "name" in df.columns else [None] * len(df)
    phones = [text_of(v) for v in df["phone"]] if "phone" in df.columns else [None] * len(df)
    seen: dict[tuple[str | None, str | None], str] = {}
    out = []
    for g, n, p in zip(given, names, phones, strict=True):
        if g is not None:
            out.append(g)
            continue
        key = (n, p) if (n or p) else (f"row{len(out)}", None)
        out.append(seen.setdefault(key, f"P{len(seen) + 1:04d}"))
    return out


class _Successors:
    """The units of this build that replaced a previous build's retired codes, each level measured once.

    Why a class: a roster of 7,000 point leaders names many retired codes; each level's previous codes,
    both builds' metric geometries and this build's tree are made once, not once per code.
    """

    def __init__(self, previous: Mapping[str, gpd.GeoDataFrame], layers: Mapping[str, gpd.GeoDataFrame],
                 metric: pyproj.CRS | None) -> None:
        self.previous, self.layers, self.metric = previous, layers, metric
        self.levels_of: dict[str, list[str]] = {}
        for lvl, g in previous.items():
            if "code" in g.columns:
                for c in dict.fromkeys(g["code"].astype(str)):
                    self.levels_of.setdefault(c, []).append(lvl)
        self._old: dict[str, dict[str, Any]] = {}
        self._new: dict[str, tuple[NDArray[np.object_], shapely.STRtree]] = {}

    def _metric(self, g: gpd.GeoDataFrame) -> NDArray[np.object_]:
        return np.asarray(g.to_crs(self.metric).geometry.values if self.metric is not None else g.geometry.values,
                          dtype=object)

    def of(self, code: str) -> tuple[str, str] | None:
        """(level, code) of the unit of the same level covering most of retired ``code``; None without one."""
        levels = self.levels_of.get(code, [])
        if len(levels) != 1 or levels[0] not in self.layers or not len(self.layers[levels[0]]):
            return None
        level = levels[0]
        if level not in self._new:
            old = self.previous[level]
            self._old[level] = dict(zip(old["code"].astype(str), self._metric(old), strict=True))
            geoms = self._metric(self.layers[level])
            self._new[level] = (geoms, shapely.STRtree(geoms))
        old_geom = self._old[level][code]
        geoms, tree = self._new[level]
        near = tree.query(old_geom)
        if not len(near):
            return None
        share = shapely.area(shapely.intersection(geoms[near], old_geom)) / max(float(shapely.area(old_geom)), 1e-9)
        best = int(np.argmax(share))
        return (level, str(self.layers[level]["code"].iloc[near[best]])) if share[best] > 0.5 else None


def _successors(r: Mapping[str, Any], succ: _Successors, roster: Roster, *, why: str) -> tuple[
        list[tuple[str, str]], str]:
    """Units that replaced the retired ones a row names: the same level's unit covering most of each."""
    codes = [c for c in _SPLIT.split(text_of(r.get("unit")) or "") if c]
    if not codes:
        return [], why
    out = []
    for code in codes:
        hit = succ.of(code)
        if hit is None:
            return [], f"unit {code!r} is gone (not in this build nor covered by a unit of it)" \
                if succ.levels_of.get(code) else why
        out.append(hit)
        if hit[1] != code:
            roster.moved.append({"row": int(r[ROW]), "name": text_of(r.get("name")), "level": hit[0],
                                 "from": code, "to": hit[1]})
    return out, ""


#: the levels a rebuild's people can be carried over (the previous build's layers)
_CARRIED_LEVELS = ("areas", "townships", "blocks", "villages", "grids", "points", "exclusive", "micro_grids", "lanes")


def build_people(roster: tuple[Path, str | None, Mapping[str, Any]] | None, *, county: Path | None,
                 previous: str | Path | None, layers: Mapping[str, gpd.GeoDataFrame],
                 metric: pyproj.CRS) -> Roster | None:
    """The build's people: the roster input (``[inputs] people``), else the county file's or the previous
    build's ``people`` layer (so people survive a rebuild without the roster given again); None without any.

    ``roster`` is (path, layer, read options) of the ``people`` input.
    """
    from gridgeo.data.io import list_layers, read_layer

    if roster is not None:
        df, source = read_roster(roster[0], layer=roster[1], options=roster[2])
    else:
        found = next((Path(p) for p in (county, previous) if p is not None and "people" in list_layers(p)), None)
        if found is None:
            return None
        df, source = read_roster(found, layer="people")
    prev = None
    if previous is not None:
        have = set(list_layers(previous))
        prev = {lvl: read_layer(previous, layer=lvl) for lvl in _CARRIED_LEVELS if lvl in have}
    out = resolve_roster(df, layers, source=source, previous=prev, metric=metric)
    log.info("%s: %d people on %d units; %d row(s) skipped, %d carried to a new unit", source,
             out.table["person_id"].nunique(), len(out.table), len(out.skipped), len(out.moved))
    return out
