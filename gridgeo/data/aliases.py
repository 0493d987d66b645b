"""The Chinese display names of the columns and layers gridgeo writes: one table, in one place.

Why one table: the field aliases stored in a GeoPackage (:mod:`gridgeo.data.gpkg_styles`, what QGIS shows
in the attribute table and the identify panel) and the Chinese headers of ``gridgeo export --chinese-headers``
(:mod:`gridgeo.data.tables`) must say the same thing, or a county's staff see 户数 in QGIS and 住户 in
Excel for one column. Input spellings are a different matter (many to one; :mod:`gridgeo.data.schema`).

Names follow ``../shared/DESIGN.md``'s glossary. Every alias is distinct, so a table never has two columns
with one header (the GeoPackage schema extension requires a column's ``name`` to be unique in its table).
"""

from __future__ import annotations

from collections.abc import Iterable

#: column name -> Chinese display name (field alias in the GeoPackage, header of an export)
FIELD_ALIASES: dict[str, str] = {
    # every level (DESIGN.md "Layers and columns")
    "code": "编码",
    "name": "名称",
    "parent": "上级编码",
    "households": "户数",
    "population": "人口",
    "kind": "类型",
    "industry": "产业",
    # the chain a unit or a household belongs to
    "area": "片区",
    "township": "乡镇",
    "block": "块",
    "village": "村(社区)",
    "group": "村民小组",
    "grid": "网格",
    "point": "网格点",
    "exclusive": "专属网格",
    "micro_grid": "微网格",
    "lane": "巷",
    "street": "街巷名",
    # what a build reports per unit
    "n_blocks": "块数",
    "n_villages": "村(社区)数",
    "n_grids": "网格数",
    "n_exclusive": "专属网格数",
    "n_points": "网格点数",
    "n_units": "单元数",
    "n_items": "建筑(户点)数",
    "members": "下辖单元",
    "within_bounds": "规模达标",
    "violations": "未满足规则",
    "grid_below_min": "网格小于网格点下限",
    "households_estimated": "户数为估算",
    "estimated": "估算",
    "build_hash": "构建指纹",
    "source": "来源",
    "source_id": "来源编号",
    "category": "类别",
    "highway": "道路等级",
    # registers and rosters (issue 12): households, people, roles
    "person_id": "人员编号",
    "role": "职务",
    "phone": "联系电话",
    "level": "层级",
    "unit": "所服务单元编码",
    "unit_name": "所服务单元名称",
    "leader": "负责人",
    "leader_phone": "负责人电话",
    "address": "地址",
    "priority": "风险等级",
    "special": "特殊群体",
    "party_member": "党员",
    "last_visit": "最近走访",
    "household_id": "户号",
    # the representative point an export adds to a polygon layer (:mod:`gridgeo.data.tables`)
    "lon": "经度",
    "lat": "纬度",
}

#: layer name -> Chinese title (sheet names of an export, style names in QGIS)
LAYER_TITLES: dict[str, str] = {
    "townships": "乡镇",
    "blocks": "块",
    "villages": "村(社区)",
    "grids": "网格",
    "points": "网格点",
    "exclusive": "专属网格",
    "micro_grids": "微网格",
    "lanes": "巷",
    "households": "住户",
    "people": "人员",
    "roads": "道路",
    "pois": "兴趣点",
}


def chinese_headers(columns: Iterable[str]) -> list[str]:
    """The Chinese header of each column, its own name where there is no alias or the alias is taken.

    Why "taken": a register's columns are kept as they came (issue 12), so a layer may hold both ``name``
    and a column already called ``名称``; the headers of one table must stay distinct.
    """
    cols = [str(c) for c in columns]
    used = set(cols)
    out: list[str] = []
    for col in cols:
        alias = FIELD_ALIASES.get(col)
        if alias is None or alias in used:
            out.append(col)
            continue
        used.add(alias)
        out.append(alias)
    return out
