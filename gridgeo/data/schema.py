"""The documented schema of each input layer kind.

Real inputs arrive with many column spellings (``HOUSEHOLDS``, ``hh``, ``户数``).
:func:`normalize` maps them onto the canonical names below so that every later
step (blocks, grids, routes) can rely on one vocabulary, the one in
``../shared/DESIGN.md``.

Layer kinds and their columns (``*`` = required; others are filled with nulls):

============== =============== ==========================================================
kind           geometry        columns
============== =============== ==========================================================
townships      Polygon         code*, name
villages       Polygon         code*, name, township, kind (urban|rural), industry,
                               population, households
villager_groups Polygon        code*, name, village, households
buildings      Polygon/Point   households, levels, village, name
households     Point           households (default 1), priority (red|orange|yellow), name, id,
                               phone, address, building, size, special, party_member,
                               last_visit, group, visit_window; person_name, relation,
                               id_number
                               (a register of persons, :mod:`gridgeo.data.registers`)
grids, points  Polygon         code*, parent (a hand-drawn layer: gridgeo audit, build --start-from)
people         (none)          id, name, role, phone, unit, unit_name, parent, level (a roster:
                               :mod:`gridgeo.people.roster`)
pois           Point/Polygon   category* (school|hospital|mine|gated_compound|...), name
roads          LineString      highway* (OSM class), name
water          Line/Polygon    waterway (river|stream|canal|lake|...), name
places         Point           place (OSM place=*), name
============== =============== ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import pandas as pd

from gridgeo.errors import SchemaError


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, pandas dtype and accepted aliases."""

    name: str
    dtype: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    fill: bool = True  # absent -> a column of nulls; False: absent stays absent (a register's many columns)


@dataclass(frozen=True)
class LayerSchema:
    """The canonical shape of one layer kind."""

    kind: str
    geometry: tuple[str, ...]
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_CODE = Column("code", "string", True, ("id", "code", "gb", "adcode", "xzqdm", "cptvid", "fid"))
_NAME = Column("name", "string", False, ("name", "mc", "xzqmc", "vname", "名称", "name_zh"))
#: the code of a hand-drawn grid or point (more spellings than _CODE's; tried in this order)
_UNIT_CODE = Column("code", "string", True, ("code", "id", "grid_code", "point_code", "网格编码", "网格代码",
                                             "网格编号", "点位编码", "编码", "代码", "编号", "gb", "fid"))
_HH = Column("households", "Int64", False, ("households", "hh", "hu", "hushu", "户数", "n_households"))
_POP = Column("population", "Int64", False, ("population", "pop", "renkou", "人口", "rk"))

#: the columns of a household register besides households, priority and name (gridgeo.data.registers);
#: person columns are read from a register of one row per person and aggregated to its households
def _register(name: str, dtype: str, *aliases: str) -> Column:
    return Column(name, dtype, False, (name, *aliases), fill=False)


REGISTER_COLUMNS: tuple[Column, ...] = (
    _register("id", "string", "户号", "户编号", "户籍编号", "household_id", "hh_id", "household_no"),
    _register("phone", "string", "联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "tel", "mobile"),
    _register("address", "string", "地址", "住址", "家庭住址", "现住址", "门牌号", "门牌", "addr"),
    _register("building", "string", "建筑编码", "建筑编号", "房屋编码", "楼栋编号", "楼栋", "building_id",
              "building_code"),
    _register("size", "Int64", "人口", "家庭人口", "户人口", "人数", "persons", "members"),
    _register("special", "string", "类别", "特殊人群", "人员类别", "重点人群", "关爱类别", "special_care", "care"),
    _register("party_member", "string", "党员", "是否党员", "party"),
    _register("last_visit", "string", "最近走访", "上次走访", "走访日期", "最后走访日期", "最近走访日期", "visited"),
    _register("group", "string", "村民小组", "小组", "villager_group"),
    _register("visit_window", "string", "走访时段", "可走访时段", "上门时段", "可走访时间"),
    _register("person_name", "string", "姓名", "成员姓名"),
    _register("relation", "string", "与户主关系", "关系"),
    _register("id_number", "string", "身份证号", "身份证号码", "公民身份号码", "身份证"),
)

POLYGONS = ("Polygon", "MultiPolygon")
LINES = ("LineString", "MultiLineString")
POINTS = ("Point", "MultiPoint")

SCHEMAS: dict[str, LayerSchema] = {
    "townships": LayerSchema("townships", POLYGONS, (_CODE, _NAME)),
    "villages": LayerSchema(
        "villages",
        POLYGONS,
        (
            _CODE,
            _NAME,
            Column("township", "string", False, ("township", "parent", "tname", "xiangzhen", "乡镇")),
            Column("kind", "string", False, ("kind", "type", "类型")),
            Column("industry", "string", False, ("industry", "产业")),
            _POP,
            _HH,
        ),
    ),
    "villager_groups": LayerSchema(
        "villager_groups",
        POLYGONS,
        (_CODE, _NAME, Column("village", "string", False, ("village", "parent", "村")), _HH),
    ),
    "buildings": LayerSchema(
        "buildings",
        POLYGONS + POINTS,
        (_HH, Column("levels", "Int64", False, ("levels", "building:levels", "floors", "层数")),
         Column("village", "string"), _NAME),
    ),
    "households": LayerSchema(
        "households",
        POINTS,
        # a register's columns (gridgeo.data.registers): one row per household, or per person with a household key
        (_HH, Column("priority", "string", False, ("priority", "colour", "color", "风险等级", "颜色", "等级",
                                                   "颜色等级", "管理等级", "关注等级", "标识")),
         Column("name", "string", False, ("name", "户主姓名", "户主", "head", "head_name", "姓名", "mc", "名称")),
         *REGISTER_COLUMNS),
    ),
    # a hand-drawn grid or grid-point layer (gridgeo audit, build --start-from): its code, then its parent
    "grids": LayerSchema("grids", POLYGONS, (_UNIT_CODE, Column("parent", "string", False, (
        "village", "parent", "village_code", "村", "所属村", "村编码", "村居", "社区")))),
    "points": LayerSchema("points", POLYGONS, (_UNIT_CODE, Column("parent", "string", False, (
        "grid", "parent", "grid_code", "网格", "所属网格", "网格编码")))),
    "people": LayerSchema(  # a roster (gridgeo.people.roster): no geometry needed
        "people",
        (),
        (_register("id", "string", "person_id", "人员编号", "编号", "工号"),
         _register("name", "string", "姓名", "人员姓名"),
         _register("role", "string", "职务", "角色", "岗位", "身份", "title", "duty"),
         _register("phone", "string", "联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "tel", "mobile"),
         _register("unit", "string", "unit_code", "code", "单位编码", "网格编码", "编码", "负责单元编码",
                   "所在网格编码"),
         _register("unit_name", "string", "单位名称", "网格名称", "负责网格", "所在网格", "负责单元", "网格"),
         _register("parent", "string", "上级", "所属村", "所属村(社区)", "所属村（社区）", "村(社区)", "村（社区）",
                   "所属", "所属乡镇"),
         _register("level", "string", "层级", "级别", "网格层级")),
    ),
    "pois": LayerSchema(
        "pois",
        POINTS + POLYGONS,
        (Column("category", "string", True, ("category", "amenity", "type")), _NAME),
    ),
    "roads": LayerSchema(
        "roads", LINES, (Column("highway", "string", True, ("highway", "class", "fclass")), _NAME)
    ),
    "water": LayerSchema(
        "water", LINES + POLYGONS, (Column("waterway", "string", False, ("waterway", "water", "natural")), _NAME)
    ),
    "places": LayerSchema("places", POINTS, (Column("place", "string", True, ("place",)), _NAME)),
}


def _find(columns: list[str], col: Column) -> str | None:
    lower = {c.lower(): c for c in columns}
    for alias in (col.name, *col.aliases):
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def normalize(
    gdf: gpd.GeoDataFrame,
    kind: str,
    *,
    mapping: dict[str, str] | None = None,
    path: str | None = None,
) -> gpd.GeoDataFrame:
    """Return ``gdf`` with the canonical columns of ``kind``.

    Columns are found by explicit ``mapping`` (canonical -> source), else by
    alias; source columns are kept, canonical ones added in front. A required
    column that cannot be found raises :class:`SchemaError` naming the file.
    """
    if kind not in SCHEMAS:
        raise SchemaError(f"unknown layer kind {kind!r}; one of {', '.join(SCHEMAS)}", path=path)
    schema = SCHEMAS[kind]
    mapping = dict(mapping or {})
    out = gdf.copy()
    found: dict[str, str] = {}  # canonical -> source column, in out.attrs["found"]
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    for col in schema.columns:
        src = mapping.get(col.name) or _find(cols, col)
        if src is not None and src not in gdf.columns:
            raise SchemaError(f"column {src!r} (for {col.name}) not found; columns are {cols}", path=path)
        if src is None and not col.fill:
            continue
        if src is None:
            if col.required:
                raise SchemaError(
                    f"{kind} layer needs a {col.name!r} column (tried {', '.join(col.aliases) or col.name}); "
                    f"columns are {cols}",
                    path=path,
                )
            out[col.name] = pd.Series(pd.NA, index=out.index, dtype=col.dtype)
            continue
        values = gdf[src]
        try:
            if col.dtype == "Int64":
                values = pd.to_numeric(values, errors="raise").round().astype("Int64")
            else:
                values = values.astype("string")
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"column {src!r} cannot be read as {col.name} ({col.dtype}): {exc}", path=path) from exc
        out[col.name] = values
        found[col.name] = src
    out.attrs["found"] = found
    if kind == "villages":
        out["kind"] = village_kinds(out["kind"], out["name"])
    return out


_URBAN = ("urban", "city", "town", "community", "社区", "城市", "城镇", "居委会", "居民委员会", "街道", "里")
_RURAL = ("rural", "village", "countryside", "农村", "乡村", "村", "村委会", "村民委员会", "嘎查")


def _kind_of(text: object) -> str | None:
    if text is None or pd.isna(cast(Any, text)):
        return None
    t = str(text).strip().lower()
    if not t:
        return None
    if t in _URBAN:
        return "urban"
    if t in _RURAL:
        return "rural"
    return None


def village_kinds(kind: pd.Series, name: pd.Series) -> pd.Series:
    """Canonical ``kind`` (``urban``/``rural``) from a kind column, else from the name.

    Counties classify communities (社区, 居委会; Taiwan's 里) as urban and villages (村, 嘎查)
    as rural; where the data has no kind, the name's suffix says it. Values that
    say neither stay null (and a partition treats them as their own class).
    """
    # object, whatever pandas' string storage: with pyarrow installed, a column of only unknown kinds maps to
    # Arrow's null type, which refuses the kinds filled in from the names ("Converting strings to null")
    out = kind.map(_kind_of).astype(object)
    missing = out.isna()
    if missing.any():
        by_name = name[missing].map(
            lambda n: None if n is None or pd.isna(n) else (
                "urban" if str(n).endswith(("社区", "居委会", "居民委员会", "里")) else
                "rural" if str(n).endswith(("村", "村委会", "村民委员会", "嘎查")) else None))
        out[missing] = by_name
    return out.astype("string")
