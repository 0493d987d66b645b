"""Kinds from names and tags: urban or rural villages, subdistrict, town or township.

The county's own names say more than OSM's ``place`` tags (mappers often tag
a 村 inside a town as ``place=neighbourhood``), so the name decides where it
carries a suffix and the tag only otherwise.
"""

from __future__ import annotations

import geopandas as gpd

#: ``place=*`` values that label a village or community (村/社区). Larger
#: places (city, town = 街道/镇 seats) and ``locality`` (often a building or a
#: field name) do not.
VILLAGE_PLACES: tuple[str, ...] = (
    "quarter",
    "neighbourhood",
    "suburb",
    "village",
    "hamlet",
    "isolated_dwelling",
)
_URBAN_PLACES = frozenset({"quarter", "neighbourhood", "suburb"})
_URBAN_SUFFIXES = ("社区", "居委会", "居民委员会")
_RURAL_SUFFIXES = ("村", "村委会", "村民委员会", "嘎查")


def village_kind(name: object, place: object) -> str:
    """urban for 社区/居委会 or quarter/neighbourhood/suburb; rural for 村 or smaller places.

    The name wins over the tag: mappers often tag a 村 inside a town as
    ``place=neighbourhood``, while the name is what the county uses.
    """
    if isinstance(name, str):
        if name.endswith(_URBAN_SUFFIXES):
            return "urban"
        if name.endswith(_RURAL_SUFFIXES):
            return "rural"
    return "urban" if place in _URBAN_PLACES else "rural"


def township_kind(name: str | None, places: gpd.GeoDataFrame) -> str:
    """街道 -> subdistrict, 镇 -> town, 乡 -> township; otherwise by its places.

    A nameless extent (or an odd name) is a subdistrict when most of its
    village-level places are urban communities, a rural township otherwise.
    """
    if name:
        if name.endswith("街道"):
            return "subdistrict"
        if name.endswith("镇"):
            return "town"
        if name.endswith("乡"):
            return "township"
    kinds = [village_kind(n, pl) for n, pl in zip(places["name"], places["place"], strict=True)]
    urban = sum(k == "urban" for k in kinds)
    return "subdistrict" if kinds and urban * 2 > len(kinds) else "township"
