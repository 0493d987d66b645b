"""Division codes and place names: how the county's units are numbered and called.

Codes follow the national statistical division codes (township = county code + 3 digits, village
+ 3, group + 2), numbered in reading order (:func:`division_codes`). Names are unique roots drawn
from one shuffled pool (:class:`Names`): towns are named after their seat village, subdistricts
城关, 城东 ..., communities 社区 and villages 村. The vocabularies of streets, compounds and mines
live here too, so every name part is in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.synth._arrays import reading_rank
from gridgeo.synth._constants import IArray
from gridgeo.synth._tiling import Tiling

ObjArray = NDArray[np.object_]

# ---------------------------------------------------------------- name parts
# Characters common in place names of the hilly south (Jiangxi, Fujian, Hunan).
_FIRST = (
    "东西南北上下前后中大小新老高长黄白青红金银石沙马龙凤桃李杨柳梅竹松樟桂枫荷莲兰花"
    "田王张刘陈赵周吴徐孙胡朱何林郭罗梁宋郑谢韩唐冯邓曹彭曾萧蔡潘袁邹熊范傅钟汪程余叶"
    "万涂喻廖邱龚黎钱汤易文严方雷胥洪毛丁江邵蒋龚官麻饶甘鹿丰乐安永兴太和平顺福寿吉"
)
_MIDDLE = "家门坑田山石溪水塘湖港林竹茶花桥埠坊岭源阳屋里口"
_LAST = "山岭坑坞源溪塘湖港洲坪冲田坊桥口庄岗埠畈圩墩湾滩亭铺寨园头背里屋峰林陂堡店渡嘴坳"
_URBAN_ROOTS = (
    "解放", "建设", "人民", "新华", "胜利", "和平", "文化", "城南", "城北", "东门", "西门", "南门",
    "北门", "府前", "滨江", "朝阳", "光明", "幸福", "团结", "红旗", "新城", "翠苑", "中山", "鼓楼",
    "站前", "学府", "龙腾", "凤凰", "花园", "青年", "振兴", "长安", "复兴", "育才", "兴业", "金山",
)
STREET_STEMS = (
    "人民", "解放", "建设", "中山", "新华", "胜利", "和平", "文化", "青年", "朝阳", "东风", "光明",
    "幸福", "团结", "迎宾", "滨河", "府前", "学府", "南门", "北门", "东门", "西门", "环城", "工业",
    "花园", "振兴", "长安", "复兴", "民主", "健康", "五一", "八一", "红旗", "育才", "兴业", "金山",
    "银河", "龙泉", "紫阳", "翠微",
)
_SUBDISTRICTS = ("城关", "城东", "城西", "城南", "城北")
COMPOUND_STEMS = (
    "阳光", "锦绣", "翠湖", "金色", "碧桂", "御景", "滨江", "世纪", "华府", "幸福", "东方", "丽景",
    "紫荆", "香樟", "明珠", "书香", "学府", "锦江", "凤凰", "龙湖", "景秀", "春晖", "康乐", "泰和",
    "盛世", "金桂", "翡翠", "天悦", "名门", "江南",
)
COMPOUND_SUFFIXES = ("花园", "家园", "小区", "苑", "华庭", "公馆", "名邸", "新城", "雅居", "豪庭")
MINERALS = ("石灰石", "煤", "钨", "铜", "萤石", "高岭土", "花岗岩", "砂石", "稀土", "铁")
_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")


def _unique_chars(s: str) -> list[str]:
    """Characters of ``s`` in first-seen order (``dict`` keeps insertion order)."""
    return list(dict.fromkeys(s))


def chinese_number(n: int) -> str:
    """1 -> 一, 12 -> 十二, 23 -> 二十三; beyond 99 (never for group names) Arabic digits."""
    if n > 99:
        return str(n)
    if n <= 10:
        return _NUMERALS[n - 1]
    tens, ones = divmod(n, 10)
    head = "十" if tens == 1 else _NUMERALS[tens - 1] + "十"
    return head + (_NUMERALS[ones - 1] if ones else "")


def _root_pool(rng: np.random.Generator) -> list[str]:
    """A shuffled pool of unique place-name roots: 2-character roots first, then 3.

    Why two tiers: two-character roots (东山, 石桥) read most naturally but there
    are only a few thousand; a province needs tens of thousands of unique names.
    """
    first, middle, last = _unique_chars(_FIRST), _unique_chars(_MIDDLE), _unique_chars(_LAST)
    two = [a + c for a in first for c in last if a != c]
    three = [a + b + c for a in first for b in middle for c in last if len({a, b, c}) == 3]
    two_idx = rng.permutation(len(two))
    three_idx = rng.permutation(len(three))
    return [two[i] for i in two_idx] + [three[i] for i in three_idx]


# ---------------------------------------------------------------- codes


@dataclass
class Codes:
    """Division codes by generation index."""

    township: NDArray[np.object_]
    village: NDArray[np.object_]
    group: NDArray[np.object_]
    group_number: IArray


def _township_codes(county_code: str, tiling: Tiling) -> ObjArray:
    """County code + 3 digits, 街道 first, then 镇, then 乡; past 999 the next county code."""
    t_kind, seat_xy, t_poly = tiling.townships.kind, tiling.townships.seat, tiling.townships.poly
    t = len(seat_xy)
    band_t = np.full(t, math.sqrt(float(np.median(shapely.area(t_poly)))))
    t_rank = reading_rank(t_kind, seat_xy[:, 0], seat_xy[:, 1], band_t)
    t_offset = np.r_[0, np.cumsum(np.bincount(t_kind, minlength=3))][t_kind]
    seq = t_offset + t_rank  # 0-based position in code order
    base = int(county_code)
    return np.array([f"{base + s // 999:06d}{s % 999 + 1:03d}" for s in seq], dtype=object)


def _village_codes(t_code: ObjArray, tiling: Tiling) -> ObjArray:
    """Township code + 3 digits: communities (居委会) from 001, villages (村委会) from 200."""
    t = len(tiling.townships.seat)
    t_poly = tiling.townships.poly
    vc, v_town, v_urban = tiling.villages.centre, tiling.villages.town, tiling.villages.urban
    n_in = np.bincount(v_town, minlength=t)
    band_v = np.sqrt(shapely.area(t_poly)[v_town] / np.maximum(n_in[v_town], 1))
    cls = np.where(v_urban, 0, 1)
    v_rank = reading_rank(v_town * 2 + cls, vc[:, 0], vc[:, 1], band_v)
    n_urban = np.bincount(v_town[v_urban], minlength=t)
    n_rural = np.bincount(v_town[~v_urban], minlength=t)
    standard = (n_urban[v_town] <= 199) & (n_rural[v_town] <= 800)
    num = np.where(v_urban, v_rank + 1, np.where(standard, 200 + v_rank, n_urban[v_town] + v_rank + 1))
    if len(num) and num.max() > 999:
        raise RuntimeError("a township got more than 999 villages; ask for more townships")
    return np.array([f"{t_code[a]}{b:03d}" for a, b in zip(v_town, num, strict=True)], dtype=object)


def _group_codes(v_code: ObjArray, tiling: Tiling) -> tuple[ObjArray, IArray]:
    """Village code + 2 digits; returns the codes and each group's number within its village."""
    nv = len(tiling.villages.centre)
    v_area = shapely.area(tiling.villages.poly)
    g_village, gxy = tiling.groups.village, tiling.groups.xy
    n_g = np.bincount(g_village, minlength=nv)
    band_g = np.sqrt(v_area[g_village] / np.maximum(n_g[g_village], 1))
    g_rank = reading_rank(g_village, gxy[:, 0], gxy[:, 1], band_g)
    g_code = np.array([f"{v_code[a]}{b + 1:02d}" for a, b in zip(g_village, g_rank, strict=True)], dtype=object)
    return g_code, g_rank + 1


def division_codes(county_code: str, tiling: Tiling) -> Codes:
    """Statistical-division-style codes, numbered in reading order.

    Township: county code + 3 digits (街道 first, then 镇, then 乡).  Village:
    township code + 3 digits, communities (居委会) from 001, villages (村委会)
    from 200 as in the national statistical division codes.  Group: village
    code + 2 digits.
    """
    t_code = _township_codes(county_code, tiling)
    v_code = _village_codes(t_code, tiling)
    g_code, g_number = _group_codes(v_code, tiling)
    return Codes(township=t_code, village=v_code, group=g_code, group_number=g_number)


# ---------------------------------------------------------------- names


@dataclass(frozen=True)
class PlaceNames:
    """Names of the county, its townships and villages (generation order)."""

    county: str
    township: ObjArray
    village: ObjArray
    village_root: ObjArray  # the village name without 村/社区: what its schools and shops are called


def _township_names(t_kind: IArray, v_root: ObjArray, codes: Codes) -> ObjArray:
    """A town (镇) or township (乡) after its seat village; subdistricts 城关, 城东, ... in code order."""
    t_name = np.empty(len(t_kind), dtype=object)
    sub_order = np.argsort(codes.township, kind="stable")
    n_sub = 0
    for ti in sub_order:
        k = int(t_kind[ti])
        if k == 0:
            root = _SUBDISTRICTS[n_sub] if n_sub < len(_SUBDISTRICTS) else str(v_root[ti])
            n_sub += 1
            t_name[ti] = root + "街道"
        else:
            t_name[ti] = str(v_root[ti]) + ("镇" if k == 1 else "乡")
    return t_name


class Names:
    """Unique place names drawn from one shuffled pool of roots."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.pool = _root_pool(rng)
        self.next = 0
        self.used: set[str] = set()

    def take(self, n: int) -> list[str]:
        """``n`` roots not used before (pool order, so deterministic)."""
        out: list[str] = []
        while len(out) < n:
            if self.next >= len(self.pool):
                # exhausted (only for absurd sizes): number the pool again
                base = self.pool[self.next % len(self.pool)]
                root = f"{base}{self.next // len(self.pool) + 1}"
            else:
                root = self.pool[self.next]
            self.next += 1
            if root not in self.used:
                self.used.add(root)
                out.append(root)
        return out

    def _village_roots(self, tiling: Tiling, codes: Codes) -> ObjArray:
        """Street-style roots (解放, 人民 ...) for the communities of subdistricts, place names elsewhere."""
        t_kind = tiling.townships.kind
        v_town, v_urban = tiling.villages.town, tiling.villages.urban
        nv = len(v_town)
        v_root = np.empty(nv, dtype=object)
        order_v = np.argsort(codes.village, kind="stable")
        # street-style names (解放, 人民 ...) for the communities of subdistricts; towns use place names
        urban_order = [i for i in order_v if v_urban[i] and t_kind[v_town[i]] == 0]
        stems = list(_URBAN_ROOTS)
        stems = [stems[i] for i in self.rng.permutation(len(stems))]
        stems = [s for s in stems if s not in self.used]
        for i, s in zip(urban_order, stems, strict=False):
            v_root[i] = s
            self.used.add(s)
        missing = [i for i in order_v if v_root[i] is None]
        for i, r in zip(missing, self.take(len(missing)), strict=True):
            v_root[i] = r
        return v_root

    def places(self, tiling: Tiling, codes: Codes) -> PlaceNames:
        """Names of the county, townships and villages.

        A town (镇) or township (乡) is named after its seat village, as most
        are (石桥镇 sits in 石桥村 or 石桥社区); the first county seat's
        subdistricts are 城关, 城东, ...
        """
        county_name = self.take(1)[0] + "县"
        v_root = self._village_roots(tiling, codes)
        t_name = _township_names(tiling.townships.kind, v_root, codes)
        v_urban = tiling.villages.urban
        v_name = np.array([r + ("社区" if u else "村") for r, u in zip(v_root, v_urban, strict=True)], dtype=object)
        return PlaceNames(county=county_name, township=t_name, village=v_name, village_root=v_root)
