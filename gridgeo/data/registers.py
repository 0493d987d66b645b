"""Household registers: rows of persons made households, values made canonical, rows placed on buildings.

A county's register (户籍/入户登记表) is a spreadsheet of one row per
household or one row per person with a household number (户号). What a
build needs from it: one row per household with a location and the
register's own columns, carried to the built ``households`` layer (the
patrol then uses the real priorities and last visits). This module

- aggregates person rows to households (:func:`prepare_register`): the
  head's name (与户主关系 = 户主, else the first person), the persons
  counted as ``size``, special-care categories joined, ``party_member``
  true if anyone in the household is one, the highest priority, the latest
  visit; a person listed twice (same ID number, or same name in the same
  household) is skipped and reported;
- makes values canonical: priority ``red``/``orange``/``yellow`` from
  红/橙/黄 (绿 and blank: not marked), dates as ``YYYY-MM-DD`` from Excel
  dates, ``2026/11/30`` or ``2026年11月30日``, party membership as 是/否;
- places rows that have no coordinates on buildings (:func:`place_on_buildings`):
  by the building's code, else by its normalised address.

Every row that is skipped or cannot be placed is kept with its row number
and the reason (:class:`Skipped`): the build writes them to its report.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.data.tables import ROW
from gridgeo.errors import SchemaError

log = logging.getLogger(__name__)

__all__ = ["CARRIED_CANONICAL", "Register", "Skipped", "place_on_buildings", "prepare_register"]

#: canonical register columns carried to the built households layer (under these names), in this order
CARRIED_CANONICAL = ("id", "name", "phone", "address", "building", "size", "priority", "special", "party_member",
                     "last_visit", "group", "visit_window")
#: canonical person columns: they describe one person, not a household, and are not carried
_PERSON = ("person_name", "relation", "id_number")
_PRIORITY = {"red": "red", "orange": "orange", "yellow": "yellow", "红": "red", "红色": "red", "橙": "orange",
             "橙色": "orange", "黄": "yellow", "黄色": "yellow", "r": "red", "o": "orange", "y": "yellow",
             "高": "red", "中": "orange", "低": "yellow"}
_UNMARKED = {"绿", "绿色", "green", "g", "无", "正常", "一般", "none", "-", "/"}
_RANK = {"red": 3, "orange": 2, "yellow": 1}
_YES = {"是", "党员", "中共党员", "预备党员", "y", "yes", "true", "1", "t", "√", "✓"}
_NO = {"否", "群众", "非党员", "n", "no", "false", "0", "f", "×"}
_HEAD = {"户主", "本人", "户主本人", "head", "self"}
_SPLIT = re.compile(r"[,，;；、/|\s]+")


@dataclass(frozen=True)
class Skipped:
    """A register row left out of the build: its row number in the file, its household key and why."""

    row: int
    id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "id": self.id, "reason": self.reason}


@dataclass
class Register:
    """A register as households: the frame (canonical columns first), what was carried, what was left out.

    ``carried`` names the frame's columns that go to the built households
    layer: the canonical ones the register has, then its other columns as
    they came (a column only one person of a household has, such as 性别, is
    not a household's and is listed in ``dropped``).
    """

    frame: gpd.GeoDataFrame
    source: str
    carried: list[str]
    persons: int = 0  # rows read as persons (0: one row per household)
    skipped: list[Skipped] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings: values repaired or ignored

    def note(self, text: str) -> None:
        log.warning("%s: %s", self.source, text)
        self.notes.append(text)


def _blank(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()) \
        or str(v) in ("<NA>", "nan", "NaT")


def text_of(v: object) -> str | None:
    """A cell as text: None when blank (missing, NaN, NA, spaces); ``1001.0`` from a numeric column as ``1001``."""
    if _blank(v):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # 户号 read as 1001.0 from a numeric column
    return str(v).strip()


# ------------------------------------------------------------------------------ canonical values
def priority_of(v: object) -> str | bool | None:
    """``red``/``orange``/``yellow``; None when unmarked (green, blank); False when not understood."""
    t = text_of(v)
    if t is None:
        return None
    t = unicodedata.normalize("NFKC", t).lower().removesuffix("预警").removesuffix("户").strip()
    if t in _PRIORITY:
        return _PRIORITY[t]
    return None if t in _UNMARKED else False


_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def categories_of(v: object) -> tuple[str, ...]:
    """A household's special-care categories from a cell as registers write it ("低保户、留守儿童"), once each."""
    text = text_of(v)
    if text is None:
        return ()
    return tuple(dict.fromkeys(c for c in _SPLIT.split(text) if c))


def date_of(v: object) -> str | bool | None:
    """``YYYY-MM-DD`` from a date, a datetime, a text date or an Excel serial day; None blank; False not a date."""
    if _blank(v):
        return None
    if isinstance(v, dt.datetime | dt.date | pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, int | float) and not isinstance(v, bool) and 20_000 < float(v) < 80_000:
        return (dt.date(1899, 12, 30) + dt.timedelta(days=int(v))).isoformat()  # Excel's day count
    m = _DATE.match(str(v))
    if m is None:
        return False
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return False


def member_of(v: object) -> str | bool | None:
    """``是``/``否`` from 是/否, 党员/群众, yes/no, 1/0; None blank; False not understood."""
    t = text_of(v)
    if t is None:
        return None
    t = unicodedata.normalize("NFKC", t).lower()
    if t in _YES:
        return "是"
    return "否" if t in _NO else False


def _canonical(reg: Register, col: str, fn: Any, what: str) -> None:
    """Column ``col`` through ``fn``; values it does not understand become null and are reported once."""
    if col not in reg.frame.columns:
        return
    values = reg.frame[col].tolist()
    out, bad = [], []
    for i, v in enumerate(values):
        r = fn(v)
        if r is False:
            bad.append(i)
            r = None
        out.append(r)
    reg.frame[col] = pd.Series(out, index=reg.frame.index, dtype="string")
    if bad:
        rows = reg.frame[ROW].to_numpy()[bad] if ROW in reg.frame.columns else np.asarray(bad)
        shown = ", ".join(f"{int(r)} ({values[i]!r})" for r, i in zip(rows[:8], bad[:8], strict=True))
        reg.note(f"{len(bad)} row(s) with a {col} that is not {what}, read as blank: rows {shown}"
                 + (" ..." if len(bad) > 8 else ""))


# ------------------------------------------------------------------------------ persons -> households
def prepare_register(gdf: gpd.GeoDataFrame, *, source: str) -> Register:
    """The register as one row per household, its values canonical (see the module notes).

    ``gdf`` is the register as :func:`gridgeo.data.io.read_layer` gives it
    for kind ``households`` (canonical columns added, ``attrs["found"]``
    naming their source columns). Rows are persons when it has a household
    key (``id``: 户号) that repeats.
    """
    found = dict(gdf.attrs.get("found", {}))
    frame = gdf.copy()
    if ROW not in frame.columns:
        frame[ROW] = np.arange(len(frame))  # a GIS layer: its feature index
    reg = Register(frame=frame, source=source, carried=[])
    _canonical(reg, "priority", priority_of, "red, orange or yellow (红/橙/黄)")
    _canonical(reg, "last_visit", date_of, "a date")
    _canonical(reg, "party_member", member_of, "yes or no (是/否)")
    sources = set(found.values())
    others = [c for c in gdf.columns if c not in sources and c not in found and c != gdf.geometry.name
              and c != ROW and c not in {"households"}]
    persons = "id" in found and frame["id"].notna().any() and frame["id"].dropna().duplicated().any()
    read = len(frame)
    _skip_duplicate_persons(reg, found, persons=bool(persons))
    if persons:
        reg.persons = read  # rows read, duplicates included (they are reported)
        others = _households_of_persons(reg, found, others)
    reg.carried = [c for c in CARRIED_CANONICAL if c in found or (c == "size" and reg.persons)] + others
    return reg


def _skip_duplicate_persons(reg: Register, found: dict[str, str], *, persons: bool) -> None:
    """A person listed twice (same ID number; or, in a register of persons, same name in one household) is
    skipped after the first listing and reported."""
    f = reg.frame
    keys: list[tuple[str, list[str]]] = []
    if "id_number" in found:
        keys.append((f"same {found['id_number']}", ["id_number"]))
    if persons and "person_name" in found:
        keys.append((f"same {found['id']} and {found['person_name']}", ["id", "person_name"]))
    drop: list[int] = []
    for what, cols in keys:
        sub = f[cols].astype("string")
        ok = sub.notna().all(axis=1).to_numpy()
        dup = sub.duplicated(keep="first").to_numpy() & ok
        firsts = {tuple(r): int(row) for r, row, d in zip(sub.itertuples(index=False), f[ROW], dup, strict=True)
                  if not d}
        for i in np.flatnonzero(dup):
            if i in drop:
                continue
            first = firsts[tuple(sub.iloc[i])]
            reg.skipped.append(Skipped(int(f[ROW].iloc[i]), text_of(f["id"].iloc[i]) if "id" in f else None,
                                       f"duplicate person: {what} as row {first}"))
            drop.append(int(i))
    if drop:
        reg.note(f"{len(drop)} duplicate person row(s) skipped (listed in the report)")
        reg.frame = f.drop(index=f.index[drop]).reset_index(drop=True)


def _households_of_persons(reg: Register, found: dict[str, str], others: list[str]) -> list[str]:
    """Person rows grouped by household key into one row each (vectorised: a county's register has a
    million persons); returns the other columns kept."""
    f = reg.frame
    no_key = f["id"].isna().to_numpy()
    for i in np.flatnonzero(no_key):
        reg.skipped.append(Skipped(int(f[ROW].iloc[i]), None, f"person with no household key ({found['id']})"))
    f = _heads_first(f[~no_key].reset_index(drop=True))
    key = f["id"].astype(str)
    groups = f.groupby(key, sort=False)
    kept = [c for c in others if (groups[c].nunique(dropna=True) <= 1).all()]
    reg.dropped = [c for c in others if c not in kept]
    if reg.dropped:
        reg.note(f"person columns not carried to households (they differ within a household): "
                 f"{', '.join(map(str, reg.dropped))}")
    out = _aggregate(f, groups, key)
    reg.frame = out
    log.info("%s: %d person rows made %d households", reg.source, reg.persons, len(out))
    return kept


def _heads_first(f: pd.DataFrame) -> pd.DataFrame:
    """The persons ordered household by household (in the order households first appear), the head
    (与户主关系 = 户主, else the first listed) first in each."""
    key = f["id"].astype(str)
    first_seen = key.map({k: i for i, k in enumerate(dict.fromkeys(key))})
    head = f["relation"].map(lambda v: (text_of(v) or "").lower() in _HEAD) if "relation" in f.columns \
        else pd.Series(False, index=f.index)
    order = np.lexsort((np.arange(len(f)), ~head.to_numpy(dtype=bool), first_seen.to_numpy()))
    return f.iloc[order].reset_index(drop=True)


def _aggregate(f: pd.DataFrame, groups: Any, key: pd.Series) -> gpd.GeoDataFrame:
    """One row per household: first values (the head's, where given), then the module notes' rules."""
    geom = f.geometry.name
    plain = [c for c in f.columns if c not in _PERSON and c != geom]
    out = groups[plain].first()  # first non-null of each column, the head's where the head has one
    if "person_name" in f.columns:
        out["name"] = groups["person_name"].first()
    sizes = groups.size()
    out["size"] = groups["size"].first().fillna(sizes).astype("Int64") if "size" in f.columns else sizes
    if "priority" in f.columns:
        rank = f["priority"].map(lambda p: _RANK.get(p, 0) if isinstance(p, str) else 0)
        best = rank.groupby(key, sort=False).max().map({v: k for k, v in _RANK.items()})
        out["priority"] = best.astype("string")
    if "last_visit" in f.columns:
        out["last_visit"] = f["last_visit"].groupby(key, sort=False).max()
    if "party_member" in f.columns:
        pm = f["party_member"]
        yes = (pm == "是").groupby(key, sort=False).any()
        seen = pm.notna().groupby(key, sort=False).any()
        out["party_member"] = pd.Series("否", index=yes.index, dtype="string").where(seen).mask(yes, "是")
    if "special" in f.columns:
        out["special"] = _joined(f["special"], key).reindex(out.index)
    out[ROW] = groups[ROW].min()
    valid = ~(f.geometry.isna() | f.geometry.is_empty)
    first_geom = pd.Series(np.arange(len(f)))[valid.to_numpy()].groupby(key[valid.to_numpy()], sort=False).first()
    geoms = np.full(len(out), None, dtype=object)
    pos = out.index.get_indexer(first_geom.index)
    geoms[pos] = np.asarray(f.geometry.values, dtype=object)[first_geom.to_numpy()]
    return gpd.GeoDataFrame(out.reset_index(drop=True), geometry=list(geoms), crs=f.crs)


def _joined(s: pd.Series, key: pd.Series) -> pd.Series:
    """Each household's categories: every person's, split on 、，; and the like, once each in listed order."""
    parts = s.dropna().astype(str).map(lambda v: [p for p in _SPLIT.split(v) if p]).explode().dropna()
    if not len(parts):
        return pd.Series(dtype="string")
    pairs = pd.DataFrame({"k": key.loc[parts.index].to_numpy(), "p": parts.to_numpy()}).drop_duplicates()
    return pairs.groupby("k", sort=False)["p"].agg("、".join).astype("string")


# ------------------------------------------------------------------------------ placing on buildings
def normal_address(v: object) -> str | None:
    """An address as a key: full-width folded (NFKC), spaces and punctuation removed, lower case."""
    t = text_of(v)
    if t is None:
        return None
    t = unicodedata.normalize("NFKC", t).lower()
    t = re.sub(r"[\s,，.。·\-_/#()（）]+", "", t)
    return t or None


def _building_keys(b: gpd.GeoDataFrame) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Building row(s) by code (code, id, osm_id, building_id, 建筑编码) and by normalised address."""
    codes: dict[str, list[int]] = {}
    for col in ("code", "id", "osm_id", "building_id", "building_code", "建筑编码", "建筑编号", "房屋编码"):
        if col in b.columns:
            for i, v in enumerate(b[col].tolist()):
                t = text_of(v)
                if t is not None and i not in codes.setdefault(t, []):
                    codes[t].append(i)
    addr: dict[str, list[int]] = {}
    for col in ("address", "addr:full", "地址", "门牌号", "门牌"):
        if col in b.columns:
            for i, v in enumerate(b[col].tolist()):
                k = normal_address(v)
                if k is not None and i not in addr.setdefault(k, []):
                    addr[k].append(i)
    if "addr:street" in b.columns and "addr:housenumber" in b.columns:
        for i, (s, n) in enumerate(zip(b["addr:street"].tolist(), b["addr:housenumber"].tolist(), strict=True)):
            k = normal_address(f"{text_of(s) or ''}{text_of(n) or ''}")
            if k is not None and i not in addr.setdefault(k, []):
                addr[k].append(i)
    return codes, addr


def place_on_buildings(reg: Register, buildings: gpd.GeoDataFrame | None) -> None:
    """Rows with no coordinates take a point on their building: by building code, else by address.

    A row whose key matches no building, or several, is skipped and
    reported; so is a row with neither coordinates nor a key. Placed rows
    keep their register order.
    """
    f = reg.frame
    need = np.asarray([g is None or g.is_empty for g in f.geometry], dtype=bool)
    if not need.any():
        return
    if need.all() and "building" not in f.columns and "address" not in f.columns:
        cols = [c for c in f.columns if c not in (f.geometry.name, ROW)]
        raise SchemaError("a household register needs coordinates (经度/纬度, lon/lat, x/y), a building code "
                          "(建筑编码) or an address (地址) to place its rows by; it has none of these columns "
                          f"(columns are {cols}); map one in [inputs] households columns", path=reg.source)
    codes, addr = _building_keys(buildings) if buildings is not None and len(buildings) else ({}, {})
    spots = shapely.point_on_surface(np.asarray(buildings.to_crs(f.crs).geometry.values, dtype=object)) \
        if buildings is not None and len(buildings) and f.crs is not None else None
    geoms = np.asarray(f.geometry.values, dtype=object).copy()
    drop: list[int] = []
    for i in np.flatnonzero(need):
        hit, why = _match(f, int(i), codes, addr)
        if hit is None or spots is None:
            reg.skipped.append(Skipped(int(f[ROW].iloc[i]), text_of(f["id"].iloc[i]) if "id" in f else None,
                                       why if spots is not None else "no coordinates and no buildings to place it on"))
            drop.append(int(i))
        else:
            geoms[i] = spots[hit]
    placed = int(need.sum()) - len(drop)
    if placed:
        log.info("%s: %d row(s) placed on their building", reg.source, placed)
    reg.frame = gpd.GeoDataFrame(f.drop(columns=f.geometry.name), geometry=list(geoms), crs=f.crs)
    if drop:
        reg.note(f"{len(drop)} row(s) could not be placed (no coordinates, no matching building; listed in "
                 "the report)")
        reg.frame = reg.frame.drop(index=reg.frame.index[drop]).reset_index(drop=True)


def _match(f: gpd.GeoDataFrame, i: int, codes: dict[str, list[int]], addr: dict[str, list[int]]) -> tuple[
        int | None, str]:
    """The building row of register row ``i`` (or None) and, when none, why."""
    key = text_of(f["building"].iloc[i]) if "building" in f.columns else None
    if key is not None:
        hits = codes.get(key, [])
        if len(hits) == 1:
            return hits[0], ""
        if hits:
            return None, f"building {key!r} matches {len(hits)} buildings"
    a = normal_address(f["address"].iloc[i]) if "address" in f.columns else None
    if a is not None:
        hits = addr.get(a, [])
        if len(hits) == 1:
            return hits[0], ""
        if hits:
            return None, f"address {f['address'].iloc[i]!r} matches {len(hits)} buildings"
    if key is None and a is None:
        return None, "no coordinates, no building and no address"
    what = f"building {key!r}" if key is not None else f"address {f['address'].iloc[i]!r}"
    return None, f"no coordinates and {what} matches no building"


# ------------------------------------------------------------------------------ into the build's outputs
def carried_columns(reg: Register, *, taken: set[str]) -> dict[str, list[Any]]:
    """The register's columns for the built households layer, one value per household in the items' order.

    The household key is the layer's ``source_id`` already; a column named
    like one of the build's own (``grid``, ``village``...) is carried as
    ``NAME_register`` (noted).
    """
    out: dict[str, list[Any]] = {}
    renamed = []
    for col in reg.carried:
        if col == "id" or col not in reg.frame.columns:
            continue
        name = str(col)
        if name in taken:
            renamed.append(name)
            name = f"{name}_register"
        out[name] = [None if _blank(v) else v for v in reg.frame[col].tolist()]
    if renamed:
        reg.note(f"register column(s) {', '.join(renamed)} carried as {', '.join(r + '_register' for r in renamed)} "
                 "(the build's own columns have these names)")
    return out


def register_report(reg: Register, *, outside: np.ndarray) -> dict[str, Any]:
    """The register's part of the build report: rows, households, what was carried, every row left out.

    ``outside``: the households (their index in the register's frame) that
    lie outside every village; they stay in the households layer with no
    grid and are listed here.
    """
    rows = reg.frame[ROW].to_numpy() if ROW in reg.frame.columns else np.arange(len(reg.frame))
    ids = reg.frame["id"].tolist() if "id" in reg.frame.columns else [None] * len(reg.frame)
    left = [*reg.skipped, *(Skipped(int(rows[i]), text_of(ids[i]), "outside every village") for i in outside)]
    return {"source": reg.source, "households": len(reg.frame), "persons": reg.persons,
            "carried": [c for c in reg.carried if c != "id"], "dropped": reg.dropped,
            "unplaced": [s.as_dict() for s in sorted(left, key=lambda s: s.row)]}
