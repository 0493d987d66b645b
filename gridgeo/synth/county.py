"""A deterministic generator of a plausible synthetic county (``gridgeo synth``).

Why synthetic data at all: real Chinese village boundaries (村界) and building
footprints are rarely public, yet every part of gridgeo -- blocks, grids,
points, patrol routes -- needs a county-sized input with the right *shape*:
townships tiled exactly by villages, villages tiled by villager groups, small
dense urban communities (社区) next to large rural villages (村), households on
buildings, roads of every OSM class, rivers, and the sites that become
exclusive grids (schools, hospitals, mines, gated compounds).

How the county is built (all in a metric CGCS2000 3-degree Gauss-Krüger CRS):

1. A noisy star-shaped outline whose area follows the number of villages.
2. Township seats spread by Lloyd relaxation; the most central becomes the
   county seat (街道), the rest towns (镇) and townships (乡).
3. Village seeds: a hexagonal cluster of urban communities around every seat
   that has one, rural villages spread by a density-weighted Lloyd relaxation
   (denser in the plains, sparser in the mountains).  A community claims land
   only within about 700 m of its centre; the rural villages wrap around towns.
4. Villager-group seeds inside every village, then land parcels (a jittered
   lattice, finer in towns) and ONE global Voronoi diagram of all parcels,
   closed off by a ring of "ghost" seeds outside the outline.  Each parcel
   belongs to a village and to the nearest group seed of that village; groups
   are unions of parcels, villages unions of groups, townships unions of
   villages.  Every shared edge is therefore the same chain of vertices on both
   sides: the tiling is exact by construction, and because each distinct
   vertex is transformed once it stays exact after reprojection too.
5. Boundary chains are smoothed, densified canonically (the same points
   whichever side walks them) and bent by a smooth, injective warp, so they
   look drawn by streams and ridges rather than by a ruler.
6. Households, buildings (rural hamlets along lanes, urban apartment blocks
   on street grids), roads, water and points of interest follow.

Everything is drawn from one :func:`numpy.random.default_rng` seeded by the
caller; nothing depends on set or dict order or on the clock, so the same
arguments always give the same county.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree
from scipy.spatial import Delaunay, QhullError, cKDTree
from tqdm import tqdm

from gridgeo.errors import UsageError

__all__ = ["LAYERS", "gk_epsg", "synth_county", "write_county"]

logger = logging.getLogger(__name__)

#: The layers :func:`synth_county` returns, in the order :func:`write_county` writes them.
LAYERS: tuple[str, ...] = ("townships", "villages", "villager_groups", "buildings", "roads", "water", "pois")

#: CGCS2000 geographic: the CRS every output layer is in (lon/lat as GDAL writes it).
GEOGRAPHIC_EPSG = 4490

#: Values of the ``kind`` column of townships, and of the ``industry`` column of villages.
TOWNSHIP_KINDS = ("subdistrict", "town", "township")  # 街道, 镇, 乡
INDUSTRIES = (
    "agriculture", "tea", "fruit", "fishery", "forestry",
    "mining", "manufacturing", "tourism", "commerce", "services",
)
POI_CATEGORIES = ("school", "kindergarten", "hospital", "clinic", "mine", "gated_compound")

# ---------------------------------------------------------------- sizes (metres)
_RURAL_M2 = 11.0e6  # mean area of a rural village: 8-12 km2 per village on average overall
_URBAN_M2 = 0.8e6  # mean area of an urban community
_GROUP_M2 = 1.5e6  # mean area of a rural villager group
_MARGIN = 200.0  # seeds keep this far inside the outline
_GHOST_SPACING = 700.0  # spacing of the seeds that close the diagram off outside
_ATOM_RURAL = 600.0  # parcel spacing in the countryside
_ATOM_URBAN = 200.0  # parcel spacing in towns
_EDGE_STEP = 120.0  # boundaries are densified to at most this spacing before the warp
_STREET = 200.0  # urban street spacing
_MAX_VILLAGES_PER_TOWNSHIP = 400  # average; keeps village codes within 3 digits
_MAX_HOUSEHOLDS_PER_VILLAGE = 5000  # average; beyond this the county is not plausible

Array = NDArray[np.float64]
IArray = NDArray[np.int64]
BArray = NDArray[np.bool_]
GArray = NDArray[np.object_]

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
_STREET_STEMS = (
    "人民", "解放", "建设", "中山", "新华", "胜利", "和平", "文化", "青年", "朝阳", "东风", "光明",
    "幸福", "团结", "迎宾", "滨河", "府前", "学府", "南门", "北门", "东门", "西门", "环城", "工业",
    "花园", "振兴", "长安", "复兴", "民主", "健康", "五一", "八一", "红旗", "育才", "兴业", "金山",
    "银河", "龙泉", "紫阳", "翠微",
)
_SUBDISTRICTS = ("城关", "城东", "城西", "城南", "城北")
_COMPOUND_STEMS = (
    "阳光", "锦绣", "翠湖", "金色", "碧桂", "御景", "滨江", "世纪", "华府", "幸福", "东方", "丽景",
    "紫荆", "香樟", "明珠", "书香", "学府", "锦江", "凤凰", "龙湖", "景秀", "春晖", "康乐", "泰和",
    "盛世", "金桂", "翡翠", "天悦", "名门", "江南",
)
_COMPOUND_SUFFIXES = ("花园", "家园", "小区", "苑", "华庭", "公馆", "名邸", "新城", "雅居", "豪庭")
_MINERALS = ("石灰石", "煤", "钨", "铜", "萤石", "高岭土", "花岗岩", "砂石", "稀土", "铁")
_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")


def _unique_chars(s: str) -> list[str]:
    """Characters of ``s`` in first-seen order (``dict`` keeps insertion order)."""
    return list(dict.fromkeys(s))


def _chinese_number(n: int) -> str:
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


# ---------------------------------------------------------------- small helpers


def gk_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (by central meridian) at ``lon``.

    Why this CRS: it is the metric CRS Chinese survey offices deliver village
    boundaries in, so areas and lengths computed here match what a county
    natural-resources bureau would report.  EPSG:4534 is the 75E zone, 4554 the
    135E zone.
    """
    cm = 3 * round(lon / 3)
    if not 75 <= cm <= 135:
        raise UsageError(f"longitude {lon} is outside the CGCS2000 3-degree zones (73.5E-136.5E)")
    return 4534 + (cm - 75) // 3


class _Field:
    """A smooth random scalar field: a sum of plane waves.

    Why plane waves: they are cheap to evaluate on millions of points at once,
    deterministic, and their gradient is bounded analytically (sum of
    amplitude times wavenumber), which is what makes the boundary warp provably
    injective.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n: int,
        wavelength: tuple[float, float],
        origin: tuple[float, float],
    ) -> None:
        angle = rng.uniform(0.0, 2.0 * math.pi, n)
        lam = np.exp(rng.uniform(math.log(wavelength[0]), math.log(wavelength[1]), n))
        k = 2.0 * math.pi / lam
        self.kx = k * np.cos(angle)
        self.ky = k * np.sin(angle)
        self.phase = rng.uniform(0.0, 2.0 * math.pi, n)
        amp = rng.uniform(0.5, 1.0, n)
        self.amp = amp / np.sqrt((amp**2).sum() / 2.0)  # unit standard deviation
        self.origin = origin

    @property
    def max_gradient(self) -> float:
        """An upper bound of the field's gradient norm (per metre)."""
        return float((np.abs(self.amp) * np.hypot(self.kx, self.ky)).sum())

    def __call__(self, x: Array, y: Array) -> Array:
        x = np.asarray(x, dtype=float) - self.origin[0]
        y = np.asarray(y, dtype=float) - self.origin[1]
        out = np.zeros(x.shape, dtype=float)
        for kx, ky, ph, a in zip(self.kx, self.ky, self.phase, self.amp, strict=True):
            out += a * np.sin(kx * x + ky * y + ph)
        return out


def _group_starts(sorted_keys: NDArray[np.int64]) -> IArray:
    """Start index of every run of equal keys in an already sorted key array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def _rank_within(sorted_keys: NDArray[np.int64]) -> IArray:
    """Position of every element within its run of equal keys (keys already sorted)."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = _group_starts(sorted_keys)
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def _apportion(totals: IArray, weights: Array, labels: IArray) -> IArray:
    """Split each ``totals[label]`` over the items of that label in proportion to ``weights``.

    Largest-remainder rounding, so every label's parts sum *exactly* to its
    total -- household counts must add up to the requested county total.
    Items of a label whose weights are all zero share equally.
    """
    n_labels = len(totals)
    weights = np.asarray(weights, dtype=float)
    wsum = np.bincount(labels, weights, minlength=n_labels)
    zero = wsum[labels] <= 0
    w = np.where(zero, 1.0, weights)
    wsum = np.bincount(labels, w, minlength=n_labels)
    exact = totals[labels] * (w / wsum[labels])
    base = np.floor(exact).astype(np.int64)
    rest = totals - np.bincount(labels, base, minlength=n_labels).astype(np.int64)
    frac = exact - base
    order = np.lexsort((np.arange(len(labels)), -frac, labels))
    rank = _rank_within(labels[order])
    bump = np.zeros(len(labels), dtype=np.int64)
    bump[order] = (rank < rest[labels[order]]).astype(np.int64)
    return base + bump


def _reading_rank(group: IArray, x: Array, y: Array, band: Array) -> IArray:
    """Rank of each item within its group in reading order: north to south, west to east.

    Why bands: codes numbered "west to east, north to south" (DESIGN.md) must
    not flip between rows because of a few metres of northing, so items are
    read in horizontal bands about one item high.
    """
    row = np.floor(-np.asarray(y) / np.maximum(band, 1.0)).astype(np.int64)
    order = np.lexsort((np.asarray(x), row, group))
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = _rank_within(np.asarray(group)[order])
    return rank


def _sample_in(
    rng: np.random.Generator,
    poly: shapely.Geometry,
    n: int,
    density: Callable[[Array, Array], Array] | None = None,
) -> Array:
    """``n`` random points inside ``poly`` (uniform, or with probability ∝ ``density`` ≤ 1)."""
    shapely.prepare(poly)
    x0, y0, x1, y1 = shapely.bounds(poly).tolist()
    out: list[Array] = []
    have = 0
    while have < n:
        m = max(1024, int(1.6 * (n - have) * (x1 - x0) * (y1 - y0) / max(float(shapely.area(poly)), 1.0)))
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        keep = shapely.contains_xy(poly, x, y)
        if density is not None:
            keep &= rng.uniform(0.0, 1.0, m) < density(x, y)
        pts = np.c_[x[keep], y[keep]]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def _lloyd(seeds: Array, cloud: Array, rounds: int, n_fixed: int = 0) -> Array:
    """Move seeds to the centroids of their cloud points, ``rounds`` times.

    Why: Lloyd relaxation turns clumpy random seeds into evenly spread ones (a
    centroidal Voronoi tessellation) -- township seats and village centres in
    the real world are spread like that.  The first ``n_fixed`` seeds stay put
    (seats and urban communities) but still claim their share of the cloud.
    """
    seeds = seeds.copy()
    n = len(seeds)
    for _ in range(rounds):
        _, lab = cKDTree(seeds).query(cloud, workers=-1)
        cnt = np.bincount(lab, minlength=n)
        sx = np.bincount(lab, cloud[:, 0], minlength=n)
        sy = np.bincount(lab, cloud[:, 1], minlength=n)
        move = cnt > 0
        move[:n_fixed] = False
        seeds[move, 0] = sx[move] / cnt[move]
        seeds[move, 1] = sy[move] / cnt[move]
    return seeds


def _snap_inside(seeds: Array, region: shapely.Geometry, cloud: Array) -> Array:
    """Replace seeds that left a non-convex ``region`` by their nearest cloud point."""
    out = seeds.copy()
    bad = ~shapely.contains_xy(region, out[:, 0], out[:, 1])
    if bad.any():
        _, i = cKDTree(cloud).query(out[bad])
        out[bad] = cloud[i]
    return out


def _rects(cx: Array, cy: Array, length: Array, depth: Array, angle: Array) -> Array:
    """Corner coordinates (n, 5, 2) of rotated rectangles, closed."""
    c, s = np.cos(angle), np.sin(angle)
    hl, hd = length / 2.0, depth / 2.0
    u = np.array([-1.0, 1.0, 1.0, -1.0, -1.0])
    v = np.array([-1.0, -1.0, 1.0, 1.0, -1.0])
    du = hl[:, None] * u[None, :]
    dv = hd[:, None] * v[None, :]
    out = np.empty((len(cx), 5, 2))
    out[:, :, 0] = cx[:, None] + du * c[:, None] - dv * s[:, None]
    out[:, :, 1] = cy[:, None] + du * s[:, None] + dv * c[:, None]
    return out


def _polygons_from_rects(coords: Array) -> GArray:
    """Polygons from (n, 5, 2) ring coordinates; from_ragged_array is ~4x faster than polygons()."""
    n = len(coords)
    if n == 0:
        return np.empty(0, dtype=object)
    ring_off = np.arange(0, 5 * n + 1, 5)
    poly_off = np.arange(n + 1)
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords.reshape(-1, 2), (ring_off, poly_off))


def _lines(points: Array, offsets: IArray) -> GArray:
    """LineStrings from concatenated ``points`` split at ``offsets`` (len = n_lines + 1)."""
    if len(offsets) <= 1:
        return np.empty(0, dtype=object)
    return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, points, (offsets,))


def _wiggly(rng: np.random.Generator, a: Array, b: Array, spacing: float, amp: float) -> GArray:
    """Lines from ``a`` to ``b`` bent sideways by a few random half-sine modes.

    Why: straight roads look synthetic; the offset is zero at both ends so
    roads still meet exactly at seats and village centres.
    """
    n = len(a)
    if n == 0:
        return np.empty(0, dtype=object)
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    npts = np.maximum(2, np.ceil(length / spacing).astype(np.int64) + 1)
    off = np.r_[0, np.cumsum(npts)]
    edge = np.repeat(np.arange(n), npts)
    k = np.arange(off[-1]) - off[edge]
    t = k / (npts[edge] - 1)
    coef = rng.normal(0.0, 1.0, (n, 3)) / np.array([1.0, 2.0, 3.0])
    modes = np.sin(np.pi * t[:, None] * np.array([1.0, 2.0, 3.0])[None, :])
    shift = amp * length[edge] * (coef[edge] * modes).sum(axis=1)
    nx = -d[:, 1] / np.maximum(length, 1e-9)
    ny = d[:, 0] / np.maximum(length, 1e-9)
    px = a[edge, 0] + t * d[edge, 0] + shift * nx[edge]
    py = a[edge, 1] + t * d[edge, 1] + shift * ny[edge]
    last = off[1:] - 1
    px[last], py[last] = b[:, 0], b[:, 1]
    return _lines(np.c_[px, py], off)


def _meander(
    rng: np.random.Generator,
    start: Array,
    heading: Array,
    length: Array,
    step: float,
    wavelength: tuple[float, float],
    swing: float,
) -> GArray:
    """Sine-generated curves (Langbein & Leopold): the heading oscillates along the channel.

    Why: this is the classic model of a meandering river; the mean direction
    stays ``heading`` so a river still crosses the county.
    """
    n = len(start)
    if n == 0:
        return np.empty(0, dtype=object)
    npts = np.maximum(2, np.ceil(length / step).astype(np.int64) + 1)
    off = np.r_[0, np.cumsum(npts)]
    line = np.repeat(np.arange(n), npts)
    k = np.arange(off[-1]) - off[line]
    s = k * step
    lam1 = rng.uniform(*wavelength, n)
    lam2 = lam1 * rng.uniform(3.0, 6.0, n)
    ph1 = rng.uniform(0, 2 * np.pi, n)
    ph2 = rng.uniform(0, 2 * np.pi, n)
    theta = (
        heading[line]
        + swing * np.sin(2 * np.pi * s / lam1[line] + ph1[line])
        + 0.4 * swing * np.sin(2 * np.pi * s / lam2[line] + ph2[line])
    )
    dx = np.where(k > 0, step * np.cos(theta), 0.0)
    dy = np.where(k > 0, step * np.sin(theta), 0.0)
    cx = np.cumsum(dx)
    cy = np.cumsum(dy)
    base = off[:-1]
    x = start[line, 0] + cx - cx[base][line]
    y = start[line, 1] + cy - cy[base][line]
    return _lines(np.c_[x, y], off)


Attrs = dict[str, NDArray[np.object_]]


def _clip_lines(lines: GArray, attrs: Attrs, area: shapely.Geometry) -> tuple[GArray, Attrs]:
    """Clip lines to ``area`` (prepared); only lines that leave it are intersected.

    Why only those: intersecting every line with a county outline of tens of
    thousands of vertices would dominate the run time at province scale.
    """
    with _prepared(np.array([area], dtype=object)):
        inside = shapely.contains(area, lines)
    out = lines.copy()
    if (~inside).any():
        out[~inside] = shapely.intersection(lines[~inside], area)
    parts, idx = shapely.get_parts(out, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1.0)
    parts, idx = parts[keep], idx[keep]
    return parts, {k: v[idx] for k, v in attrs.items()}


def _peak_rss() -> str:
    """Peak resident memory of this process, for the DEBUG log (POSIX only)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return "n/a"
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f"{kb / 1024:.0f} MB"  # kilobytes on Linux


@contextmanager
def _prepared(geoms: GArray) -> Iterator[GArray]:
    """Prepare geometries for fast predicates, and release the index afterwards.

    Why release: a prepared polygon keeps a segment index alive as long as the
    polygon lives; for 100k+ villager groups that is gigabytes.
    """
    shapely.prepare(geoms)
    try:
        yield geoms
    finally:
        shapely.destroy_prepared(geoms)


@contextmanager
def _stage(bar: tqdm, name: str) -> Iterator[None]:
    """Time one generation stage: logged at DEBUG, shown on the progress bar."""
    bar.set_postfix_str(name)
    t0 = time.perf_counter()
    yield
    logger.debug("synth: %-20s %6.2f s  peak RSS %s", name, time.perf_counter() - t0, _peak_rss())
    bar.update(1)


# ---------------------------------------------------------------- validation


def _validate(
    seed: object,
    townships: object,
    villages: object,
    households: object,
    county_code: object,
    center: object,
) -> tuple[float, float]:
    """Check the arguments of :func:`synth_county`; return ``center`` as floats."""

    def _int(name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise UsageError(f"{name} must be an integer, not {value!r}")
        return int(value)

    if _int("seed", seed) < 0:
        raise UsageError(f"seed must be >= 0, not {seed}")
    t, v, h = _int("townships", townships), _int("villages", villages), _int("households", households)
    if t < 1:
        raise UsageError(f"townships must be >= 1, not {t}")
    if v < t:
        raise UsageError(f"villages ({v}) must be >= townships ({t}): every township needs a village")
    if h < v:
        raise UsageError(f"households ({h}) must be >= villages ({v}): every village needs a household")
    if v > _MAX_VILLAGES_PER_TOWNSHIP * t:
        raise UsageError(
            f"{v} villages in {t} townships is more than {_MAX_VILLAGES_PER_TOWNSHIP} per township "
            "on average; village codes have 3 digits -- ask for more townships"
        )
    if v > 60_000:
        raise UsageError(f"villages must be <= 60000 (a large province), not {v}")
    if h > _MAX_HOUSEHOLDS_PER_VILLAGE * v:
        raise UsageError(
            f"{h} households in {v} villages is more than {_MAX_HOUSEHOLDS_PER_VILLAGE} per village "
            "on average; ask for more villages"
        )
    if not isinstance(county_code, str) or not re.fullmatch(r"\d{6}", county_code):
        raise UsageError(f"county_code must be a string of 6 digits (e.g. '369900'), not {county_code!r}")
    if int(county_code) + (t - 1) // 999 > 999_999:
        raise UsageError(f"county_code {county_code} leaves no room for {t} township codes")
    try:
        lon, lat = (float(c) for c in center)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"center must be (longitude, latitude), not {center!r}") from exc
    if not (73.5 <= lon < 136.5 and 3.0 <= lat <= 54.0):
        raise UsageError(f"center ({lon}, {lat}) is not in China (lon 73.5-136.5, lat 3-54)")
    return lon, lat


# ---------------------------------------------------------------- the plan


@dataclass
class _Townships:
    """Township seats and their kinds, in generation order (not code order)."""

    xy: Array  # seat positions
    kind: NDArray[np.int64]  # index into TOWNSHIP_KINDS
    seat_urban: BArray  # is the seat village an urban community?
    extras: IArray  # urban communities besides the seat
    weight: Array  # power-diagram weight (m2): larger townships claim more villages


def _plan_counts(rng: np.random.Generator, t: int, v: int) -> tuple[IArray, BArray, IArray]:
    """Kinds, urban seats and urban extras per township *slot* (before positions are known).

    Why slots: the county area depends on how many villages are urban, and the
    seats' positions depend on the area, so counts are fixed first and mapped
    onto positions afterwards.
    """
    n_sub = max(1, t // 30)  # one county seat; a province gets a city every ~30 townships
    n_town = round(0.6 * (t - n_sub))
    kind = np.r_[np.zeros(n_sub), np.ones(n_town), np.full(t - n_sub - n_town, 2)].astype(np.int64)
    seat_urban = (kind < 2) | (rng.uniform(size=t) < 0.4)
    extras = np.where(kind == 1, rng.integers(0, 3, t), 0)
    per_city = 0.065 * v / n_sub * rng.uniform(0.8, 1.2, t)
    extras = np.where(kind == 0, np.clip(np.round(per_city) - 1, 1, 149), extras).astype(np.int64)
    budget = (v - t) * 0.6
    if extras.sum() > budget:
        extras = np.floor(extras * budget / extras.sum()).astype(np.int64)
    return kind, seat_urban, extras


def _blob(rng: np.random.Generator, area: float, cx: float, cy: float) -> shapely.Geometry:
    """A noisy star-shaped outline of the given area centred on (cx, cy).

    Why star-shaped: a radius that is a single-valued function of the angle
    can never self-intersect, whatever the noise.
    """
    phi = np.linspace(0.0, 2.0 * np.pi, 721)[:-1]
    logr = np.zeros_like(phi)
    for k in range(2, 9):
        logr += rng.normal(0.0, 0.22 / k**0.9) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    r = np.exp(logr)
    poly = shapely.Polygon(np.c_[r * np.cos(phi), r * np.sin(phi)])
    scale = math.sqrt(area / poly.area)
    c = poly.centroid
    return shapely.Polygon(np.c_[(r * np.cos(phi) - c.x) * scale + cx, (r * np.sin(phi) - c.y) * scale + cy])


def _place_townships(
    rng: np.random.Generator,
    inner: shapely.Geometry,
    center: tuple[float, float],
    kind: IArray,
    seat_urban: BArray,
    extras: IArray,
) -> _Townships:
    """Seats by Lloyd relaxation; the most central seats become subdistricts (街道)."""
    t = len(kind)
    cloud = _sample_in(rng, inner, max(40 * t, 6000))
    xy = _lloyd(cloud[:t].copy(), cloud, rounds=3)
    xy = _snap_inside(xy, inner, cloud)
    n_sub = int((kind == 0).sum())
    # county seat: the seat nearest a point somewhat off the centre (real seats rarely sit dead centre)
    radius = math.sqrt(float(shapely.area(inner)) / math.pi)
    target = np.array(center) + rng.normal(0.0, 0.15 * radius, 2)
    chosen = [int(np.argmin(np.hypot(*(xy - target).T)))]
    dist = np.hypot(*(xy - xy[chosen[0]]).T)
    while len(chosen) < n_sub:  # further cities: farthest-point sampling spreads them out
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.hypot(*(xy - xy[nxt]).T))
    rest = np.setdiff1d(np.arange(t), chosen)
    rest = rest[rng.permutation(len(rest))]
    order = np.r_[np.array(chosen, dtype=np.int64), rest]  # slot i -> seat order[i]
    xy = xy[order]
    if t > 1:
        d, _ = cKDTree(xy).query(xy, k=2)
        nearest = d[:, 1]
    else:
        nearest = np.array([radius])
    # a seat with weight <= nearest^2/4 can never be captured by a neighbour
    weight = np.where(kind == 0, 0.0, rng.uniform(0.0, 0.25, t) * nearest**2)
    return _Townships(xy=xy, kind=kind, seat_urban=seat_urban, extras=extras, weight=weight)


def _hex_offsets(n: int) -> Array:
    """The ``n`` points of a unit hexagonal lattice nearest the origin (origin first)."""
    r = math.ceil(math.sqrt(n)) + 2
    i, j = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
    x = (i + 0.5 * j).ravel()
    y = (j * math.sqrt(3) / 2).ravel()
    d = np.hypot(x, y)
    order = np.lexsort((np.arctan2(y, x), d))
    return np.c_[x, y][order][:n]


def _village_seeds(
    rng: np.random.Generator,
    tw: _Townships,
    inner: shapely.Geometry,
    n_villages: int,
    mountain: _Field,
) -> tuple[Array, BArray, IArray, int]:
    """Seats, urban communities around seats, then rural villages spread by weighted Lloyd.

    Returns positions, urban flags, planned township (slot) and the number of
    seats (they come first).
    """
    t = len(tw.xy)
    spacing = math.sqrt(_URBAN_M2 * 2 / math.sqrt(3))  # hex cell of the mean community area
    pos = [tw.xy]
    planned = [np.arange(t)]
    for i in np.flatnonzero(tw.extras > 0):
        n = int(tw.extras[i])
        lat = _hex_offsets(2 * n + 12)[1:] * spacing
        a = rng.uniform(0, np.pi / 3)
        ca, sa = math.cos(a), math.sin(a)
        rot = np.c_[lat[:, 0] * ca - lat[:, 1] * sa, lat[:, 0] * sa + lat[:, 1] * ca]
        rot += rng.uniform(-0.12, 0.12, rot.shape) * spacing + tw.xy[i]
        rot = rot[shapely.contains_xy(inner, rot[:, 0], rot[:, 1])][:n]
        pos.append(rot)
        planned.append(np.full(len(rot), i))
    fixed = np.concatenate(pos)
    plan = np.concatenate(planned)
    # drop urban extras that landed on another township's cluster
    if len(fixed) > t:
        close = cKDTree(fixed).query_pairs(0.45 * spacing, output_type="ndarray")
        drop = np.unique(np.maximum(close[:, 0], close[:, 1])) if len(close) else np.zeros(0, np.int64)
        drop = drop[drop >= t]
        keep = np.ones(len(fixed), bool)
        keep[drop] = False
        fixed, plan = fixed[keep], plan[keep]
    n_rural = n_villages - len(fixed)
    urban = np.r_[tw.seat_urban, np.ones(len(fixed) - t, bool)]
    if n_rural > 0:
        seats = tw.xy

        def density(x: Array, y: Array) -> Array:
            # plains are denser than mountains; villages crowd around towns
            d, _ = cKDTree(seats).query(np.c_[x, y])
            return np.exp(-0.45 * (mountain(x, y) + 2.0)) * (1.0 + 0.8 * np.exp(-((d / 6000.0) ** 2))) / 1.8

        cloud = _sample_in(rng, inner, max(30 * n_villages, 8000), density)
        init = cloud[rng.choice(len(cloud), n_rural, replace=False)]
        allxy = _lloyd(np.r_[fixed, init], cloud, rounds=5, n_fixed=len(fixed))
        rural = _snap_inside(allxy[len(fixed):], inner, cloud)
        # two rural seeds snapped onto the same cloud point would make an empty village
        _, first = np.unique(rural.view(np.complex128).ravel(), return_index=True)
        if len(first) < len(rural):
            dup = np.setdiff1d(np.arange(len(rural)), first)
            rural[dup] += rng.normal(0, 50.0, (len(dup), 2))
        xy = np.r_[fixed, rural]
        urban = np.r_[urban, np.zeros(n_rural, bool)]
        plan = np.r_[plan, np.full(n_rural, -1)]
    else:
        xy = fixed
    return xy, urban, plan, t


def _assign_townships(vxy: Array, tw: _Townships) -> IArray:
    """Each village goes to the township with the smallest power distance |x-s|^2 - w.

    Why a power diagram: plain Voronoi cells of Lloyd-relaxed seats are all
    about the same size; weights make some townships large and others small,
    as in a real county.  Lifting the seats to 3D turns it into a k-d tree query.
    """
    w_max = float(tw.weight.max())
    lifted = np.c_[tw.xy, np.sqrt(w_max - tw.weight)]
    _, lab = cKDTree(lifted).query(np.c_[vxy, np.zeros(len(vxy))], workers=-1)
    return np.asarray(lab, dtype=np.int64)


def _owners(pts: Array, vxy: Array, urban: BArray, cap: Array) -> tuple[IArray, Array]:
    """The village each point belongs to, and its distance from that village's border.

    An urban community claims the points nearest to it, but only within
    ``cap`` of its centre; everything else goes to the nearest rural village.
    Why: in a plain Voronoi diagram the outer communities of a town reach
    halfway to the next rural village (several km2), whereas a real 社区 is a
    dense square kilometre and the 村 wrap around the town.
    """
    nv = len(vxy)
    rural_idx = np.flatnonzero(~urban)
    urban_idx = np.flatnonzero(urban)
    inf = np.full(len(pts), np.inf)

    def nearest_two(idx: IArray) -> tuple[IArray, Array, Array]:
        if len(idx) == 1:
            return np.full(len(pts), idx[0]), np.hypot(*(pts - vxy[idx[0]]).T), inf
        d, i = cKDTree(vxy[idx]).query(pts, k=2, workers=-1)
        gap = np.hypot(*(vxy[idx[i[:, 0]]] - vxy[idx[i[:, 1]]]).T)
        return idx[i[:, 0]], d[:, 0], (d[:, 1] ** 2 - d[:, 0] ** 2) / (2 * np.maximum(gap, 1e-9))

    v1, d1, m1 = nearest_two(np.arange(nv))
    if len(rural_idx) == 0:
        return v1, m1
    claim = urban[v1] & (d1 <= cap[v1])
    r1, _, mr = nearest_two(rural_idx)
    if len(urban_idx):
        du, iu = cKDTree(vxy[urban_idx]).query(pts, workers=-1)
        mr = np.minimum(mr, du - cap[urban_idx[iu]])
    owner = np.where(claim, v1, r1)
    margin = np.where(claim, np.minimum(m1, cap[v1] - d1), mr)
    return owner, margin


def _group_seeds(
    rng: np.random.Generator,
    vxy: Array,
    urban: BArray,
    cap: Array,
    inner: shapely.Geometry,
    default_radius: float,
) -> tuple[Array, IArray]:
    """Villager-group seeds: a Lloyd relaxation restricted to each village's territory."""
    nv = len(vxy)
    radius = np.full(nv, default_radius)
    if nv > 1:
        d, _ = cKDTree(vxy).query(vxy, k=min(4, nv))
        radius = 1.05 * d[:, -1]
    rural_idx = np.flatnonzero(~urban)
    if len(rural_idx) > 1:
        d, _ = cKDTree(vxy[rural_idx]).query(vxy[rural_idx], k=min(4, len(rural_idx)))
        radius[rural_idx] = 1.05 * d[:, -1]
    elif len(rural_idx) == 1:
        radius[rural_idx] = default_radius
    if len(rural_idx):
        radius = np.where(urban, np.minimum(radius, 1.05 * cap), radius)
    # enough candidates that even a village sampled from a wide disc gets a few dozen
    disc = np.pi * radius**2
    m = np.where(
        urban,
        np.clip(60 * disc / (1.3 * _URBAN_M2), 60, 600),
        np.clip(120 * disc / (1.3 * _RURAL_M2), 120, 1000),
    ).astype(np.int64)
    cand_v = np.repeat(np.arange(nv), m)
    r = radius[cand_v] * np.sqrt(rng.uniform(0, 1, len(cand_v)))
    a = rng.uniform(0, 2 * np.pi, len(cand_v))
    cand = vxy[cand_v] + np.c_[r * np.cos(a), r * np.sin(a)]
    ok = shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
    owner, margin = _owners(cand, vxy, urban, cap)
    mine = owner == cand_v
    # area estimate (all points of this village), before the margin filter
    area = np.bincount(cand_v[ok & mine], minlength=nv) / m * np.pi * radius**2
    ok &= mine & (margin >= np.where(urban, 0.25 * _ATOM_URBAN, 0.25 * _ATOM_RURAL)[cand_v])
    cand, cand_v = cand[ok], cand_v[ok]
    del owner, margin, ok, mine
    k = np.where(
        urban,
        rng.integers(2, 7, nv),
        np.clip(np.round(area / _GROUP_M2 * rng.uniform(0.7, 1.3, nv)), 3, 12),
    ).astype(np.int64)
    avail = np.bincount(cand_v, minlength=nv)
    k = np.maximum(1, np.minimum(k, avail + 1))
    # initial seeds: the village seed plus k-1 of its candidates (candidates are in random order)
    rank = _rank_within(cand_v)
    pick = rank < (k[cand_v] - 1)
    gxy = np.r_[vxy, cand[pick]]
    gv = np.r_[np.arange(nv), cand_v[pick]]
    order = np.argsort(gv, kind="stable")
    gxy, gv = gxy[order], gv[order]
    ng = len(gxy)
    # the relaxation needs a few dozen points per group, not all candidates
    thin = rank < 40 * k[cand_v]
    cand, cand_v = cand[thin], cand_v[thin]
    for _ in range(2):
        kk = min(6, ng)
        _, nn = cKDTree(gxy).query(cand, k=kk, workers=-1)
        nn = nn.reshape(len(cand), kk)
        same = gv[nn] == cand_v[:, None]
        has = same.any(axis=1)
        owner = nn[np.arange(len(cand)), np.argmax(same, axis=1)][has]
        cnt = np.bincount(owner, minlength=ng)
        sx = np.bincount(owner, cand[has, 0], minlength=ng)
        sy = np.bincount(owner, cand[has, 1], minlength=ng)
        mv = cnt > 0
        gxy[mv] = np.c_[sx[mv] / cnt[mv], sy[mv] / cnt[mv]]
    return gxy, gv


def _settle_towns(
    vxy: Array, urban: BArray, cluster: IArray, cap: Array, inner: shapely.Geometry
) -> tuple[Array, BArray, IArray, Array]:
    """Keep rural village seeds out of the towns' urban zones.

    Why: a rural seed inside an urban community's reach would own only a
    sliver of land.  A seed just inside the edge is pushed out to it; a seed
    stranded deep in a gap of a town's cluster becomes one more community of
    that town.
    """
    out, urban, cluster, cap = vxy.copy(), urban.copy(), cluster.copy(), cap.copy()
    u_idx = np.flatnonzero(urban)
    r_idx = np.flatnonzero(~urban)
    if len(u_idx) == 0 or len(r_idx) == 0:
        return out, urban, cluster, cap
    tree = cKDTree(vxy[u_idx])
    d, i = tree.query(vxy[r_idx])
    need = cap[u_idx[i]] + 150.0
    bad = d < need
    if bad.any():
        src = vxy[u_idx[i[bad]]]
        vec = vxy[r_idx[bad]] - src
        n = np.maximum(np.hypot(vec[:, 0], vec[:, 1]), 1e-9)
        moved = src + vec / n[:, None] * need[bad][:, None]
        # pushed out of one community's reach into another's: the seed is inside the town
        d2, i2 = tree.query(moved)
        free = (d2 >= cap[u_idx[i2]] + 150.0) & shapely.contains_xy(inner, moved[:, 0], moved[:, 1])
        out[r_idx[bad][free]] = moved[free]
        join = r_idx[bad][~free]
        host = u_idx[i[bad][~free]]
        urban[join] = True
        cluster[join] = cluster[host]
        cap[join] = cap[host]
    return out, urban, cluster, cap


def _hex_grid(rng: np.random.Generator, bounds: tuple[float, float, float, float], spacing: float) -> Array:
    """A jittered hexagonal lattice over ``bounds``: even, but not visibly regular."""
    x0, y0, x1, y1 = bounds
    dy = spacing * math.sqrt(3) / 2
    nj = math.ceil((y1 - y0) / dy) + 1
    ni = math.ceil((x1 - x0) / spacing) + 2
    j, i = np.divmod(np.arange(nj * ni), ni)
    x = x0 + (i + 0.5 * (j % 2)) * spacing
    y = y0 + j * dy
    pts = np.c_[x, y] + rng.uniform(-0.25, 0.25, (len(x), 2)) * spacing
    return pts


def _atoms(
    rng: np.random.Generator,
    inner: shapely.Geometry,
    vxy: Array,
    urban: BArray,
    cap: Array,
    gxy: Array,
    g_village: IArray,
) -> tuple[Array, IArray]:
    """Land parcels: the units villages and groups are built from.

    Why parcels: if villager groups were the Voronoi unit, a town's outer
    groups would reach halfway to the nearest rural group seed and urban
    communities would sprawl over several km2.  Parcels (~0.3 km2 in the
    countryside, ~0.035 km2 in towns) let a village follow its intended
    territory closely while every edge is still shared exactly.  The group
    seeds are parcels too, so every group owns at least its own parcel.
    """
    pts = _hex_grid(rng, tuple(shapely.bounds(inner).tolist()), _ATOM_RURAL)
    pts = pts[shapely.contains_xy(inner, pts[:, 0], pts[:, 1])]
    u_idx = np.flatnonzero(urban)
    if len(u_idx):
        reach = cap[u_idx] + 0.5 * _ATOM_RURAL
        d, i = cKDTree(vxy[u_idx]).query(pts)
        pts = pts[d > reach[i]]
        # a fine lattice around every community, each point generated by its nearest community only
        r_max = float(reach.max())
        local = _hex_offsets(math.ceil(2 * math.pi * (r_max / _ATOM_URBAN) ** 2 / math.sqrt(3)) + 7)
        local = local * _ATOM_URBAN
        n_loc = len(local)
        src = np.repeat(np.arange(len(u_idx)), n_loc)
        fine = vxy[u_idx][src] + np.tile(local, (len(u_idx), 1))
        fine += rng.uniform(-0.25, 0.25, fine.shape) * _ATOM_URBAN
        d, i = cKDTree(vxy[u_idx]).query(fine)
        keep = (i == src) & (d <= reach[src])
        fine = fine[keep]
        fine = fine[shapely.contains_xy(inner, fine[:, 0], fine[:, 1])]
        pts = np.r_[pts, fine]
        spacing = np.r_[np.full(len(pts) - len(fine), _ATOM_RURAL), np.full(len(fine), _ATOM_URBAN)]
    else:
        spacing = np.full(len(pts), _ATOM_RURAL)
    # a lattice point hugging a group seed would leave that group a sliver of a parcel
    d, _ = cKDTree(gxy).query(pts)
    pts = pts[d > 0.4 * spacing]
    owner, _ = _owners(pts, vxy, urban, cap)
    axy = np.r_[gxy, pts]
    a_village = np.r_[g_village, owner].astype(np.int64)
    # drop lattice points that coincide with a group seed (Voronoi needs distinct sites)
    _, first = np.unique(axy.view(np.complex128).ravel(), return_index=True)
    if len(first) < len(axy):
        keep = np.zeros(len(axy), bool)
        keep[first] = True
        keep[: len(gxy)] = True
        axy, a_village = axy[keep], a_village[keep]
    return axy, a_village


def _assign_groups(axy: Array, a_village: IArray, gxy: Array, g_village: IArray) -> IArray:
    """Each parcel joins the nearest group seed of its own village."""
    na, ng = len(axy), len(gxy)
    out = np.full(na, -1, dtype=np.int64)
    todo = np.arange(na)
    k = min(8, ng)
    tree = cKDTree(gxy)
    while len(todo) and k <= ng:
        _, nn = tree.query(axy[todo], k=k, workers=-1)
        nn = nn.reshape(len(todo), k)
        same = g_village[nn] == a_village[todo][:, None]
        has = same.any(axis=1)
        out[todo[has]] = nn[has, np.argmax(same[has], axis=1)]
        todo = todo[~has]
        if k == ng:
            break
        k = min(ng, k * 4)
    if len(todo):  # a village none of whose group seeds is nearby: any group of it
        first = np.full(int(g_village.max()) + 1, -1, dtype=np.int64)
        first[g_village[::-1]] = np.arange(ng)[::-1]
        out[todo] = first[a_village[todo]]
    return out


def _ghosts(outline: shapely.Geometry) -> Array:
    """Seeds just outside the outline so every inside Voronoi cell is closed off by them."""
    ring = shapely.segmentize(shapely.buffer(outline, _GHOST_SPACING / 2, quad_segs=8).exterior, _GHOST_SPACING)
    return shapely.get_coordinates(ring)[:-1]


def _voronoi(points: Array, n_inside: int) -> GArray:
    """Voronoi cells of ``points`` in input order; only the first ``n_inside`` are returned."""
    x0, y0 = points.min(axis=0) - 1e5
    x1, y1 = points.max(axis=0) + 1e5
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=shapely.box(x0, y0, x1, y1), ordered=True)
    )
    if len(cells) != len(points):
        raise RuntimeError("duplicate Voronoi seeds; this is a bug in gridgeo.synth")
    return cells[:n_inside]


def _shared_edges(cells: GArray) -> tuple[IArray, IArray, Array]:
    """Pairs of cells that share an edge, with the shared length.

    Why from coordinates: GEOS writes every Voronoi vertex once, so two cells
    share an edge exactly when they hold the same pair of coordinates; this
    is exact, vectorised, and consistent with the geometry (unlike a separate
    Delaunay triangulation, which may disagree on near-degenerate vertices).
    """
    coords, idx = shapely.get_coordinates(cells, return_index=True)
    last = np.r_[idx[1:] != idx[:-1], True]
    s = np.flatnonzero(~last)
    a, b, cell = coords[s], coords[s + 1], idx[s]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    e = np.c_[a, b]
    e[swap] = np.c_[b, a][swap]
    order = np.lexsort((e[:, 3], e[:, 2], e[:, 1], e[:, 0]))
    es = e[order]
    dup = np.flatnonzero((es[1:] == es[:-1]).all(axis=1))
    i, j = cell[order[dup]], cell[order[dup + 1]]
    length = np.hypot(*(e[order[dup], 2:] - e[order[dup], :2]).T)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo.astype(np.int64), hi.astype(np.int64), length


def _fix_contiguity(
    labels: IArray,
    ei: IArray,
    ej: IArray,
    ew: Array,
    n_labels: int,
    anchor: IArray | None = None,
    domain: IArray | None = None,
) -> IArray:
    """Make every label's parcels one connected piece (edge-connected, via ``ei``/``ej``).

    A village is a union of parcels; now and then a few parcels are cut off
    from the rest by a neighbour's parcels.  Each stray piece goes to the
    neighbouring label it shares the longest border with.  The main piece is the
    largest, or the one holding ``anchor[label]`` (a township keeps its seat).
    With ``domain``, pieces only move to labels of the same domain (a group
    stays in its village).
    """
    labels = labels.copy()
    n = len(labels)
    for _ in range(100):
        same = labels[ei] == labels[ej]
        graph = coo_matrix((np.ones(int(same.sum())), (ei[same], ej[same])), shape=(n, n))
        ncomp, comp = connected_components(graph, directed=False)
        if ncomp == len(np.unique(labels)):
            return labels
        comp_label = np.zeros(ncomp, dtype=np.int64)
        comp_label[comp] = labels
        main = np.zeros(ncomp, dtype=bool)
        if anchor is None:
            size = np.bincount(comp, minlength=ncomp)
            order = np.lexsort((np.arange(ncomp), -size, comp_label))
            main[order[_group_starts(comp_label[order])]] = True
        else:
            main[comp[anchor]] = True
        diff = ~same
        if domain is not None:
            diff &= domain[ei] == domain[ej]
        a = np.r_[ei[diff], ej[diff]]
        b = np.r_[ej[diff], ei[diff]]
        w = np.r_[ew[diff], ew[diff]]
        stray = ~main[comp[a]]
        a, b, w = a[stray], b[stray], w[stray]
        key = comp[a].astype(np.int64) * n_labels + labels[b]
        uk, inv = np.unique(key, return_inverse=True)
        tot = np.bincount(inv, w)
        kc, kl = uk // n_labels, uk % n_labels
        order = np.lexsort((kl, -tot, kc))
        first = order[_group_starts(kc[order])]
        target = np.full(ncomp, -1, dtype=np.int64)
        target[kc[first]] = kl[first]
        move = ~main[comp] & (target[comp] >= 0)
        if not move.any():
            break
        logger.debug("synth: moving %d cells to make labels contiguous", int(move.sum()))
        labels[move] = target[comp[move]]
    logger.warning("synth: could not make every unit contiguous")
    return labels


def _segmentize_canonical(polys: GArray, step: float) -> GArray:
    """Densify polygons so a shared edge gets the same points from both sides.

    Why not :func:`shapely.segmentize`: it interpolates from whichever end a
    ring starts at, so the two polygons sharing an edge would get points that
    differ in the last bit -- and the tiling would no longer be exact.  Here
    every segment is interpolated from its lexicographically smaller end.
    """
    rings, pidx = shapely.get_rings(polys, return_index=True)
    coords, idx = shapely.get_coordinates(rings, return_index=True)
    last = np.r_[idx[1:] != idx[:-1], True]
    s = np.flatnonzero(~last)
    a, b, ring = coords[s], coords[s + 1], idx[s]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    p = np.where(swap[:, None], b, a)
    q = np.where(swap[:, None], a, b)
    length = np.hypot(q[:, 0] - p[:, 0], q[:, 1] - p[:, 1])
    nsub = np.maximum(1, np.ceil(length / step).astype(np.int64))
    seg = np.repeat(np.arange(len(s)), nsub)
    j = np.arange(len(seg)) - np.repeat(np.r_[0, np.cumsum(nsub)[:-1]], nsub)
    ican = np.where(swap[seg], nsub[seg] - j, j)
    t = ican / nsub[seg]
    pts = p[seg] + (q[seg] - p[seg]) * t[:, None]
    start = j == 0
    pts[start] = a[seg[start]]
    # close every ring with its first point again
    n_ring = len(rings)
    per_ring = np.bincount(ring[seg], minlength=n_ring)
    ring_start = np.r_[0, np.cumsum(per_ring)[:-1]]
    pts = np.insert(pts, np.r_[ring_start[1:], len(pts)], pts[ring_start], axis=0)
    ring_off = np.r_[0, np.cumsum(per_ring + 1)]
    poly_off = np.r_[0, np.cumsum(np.bincount(pidx, minlength=len(polys)))]
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, pts, (ring_off, poly_off))


def _smooth_shared(polys: GArray, iterations: int) -> GArray:
    """Laplacian smoothing of boundary chains, applied to each distinct vertex once.

    Why: unions of parcels have a zigzag edge at parcel scale; real boundaries
    follow streams and ridges.  Vertices where three or more polygons meet stay
    fixed, every other vertex moves towards the midpoint of its two
    neighbours.  Working on distinct vertices (not per polygon) moves a shared
    vertex identically for both polygons, so the tiling stays exact.
    """
    if iterations <= 0:
        return polys
    rings = shapely.get_rings(polys)
    coords, ridx = shapely.get_coordinates(rings, return_index=True)
    c = np.ascontiguousarray(coords).view(np.complex128).ravel()
    uniq, inv = np.unique(c, return_inverse=True)
    inv = inv.ravel()
    n = len(uniq)
    same = ridx[1:] == ridx[:-1]
    a, b = inv[:-1][same], inv[1:][same]
    key = np.unique(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    lo, hi = key // n, key % n
    deg = np.bincount(np.r_[lo, hi], minlength=n)
    ends = np.r_[lo, hi]
    other = np.r_[hi, lo]
    order = np.lexsort((other, ends))
    ends, other = ends[order], other[order]
    first = np.searchsorted(ends, np.arange(n))
    mid = np.flatnonzero(deg == 2)
    n1, n2 = other[first[mid]], other[first[mid] + 1]
    pts = np.c_[uniq.real, uniq.imag]
    for _ in range(iterations):
        pts[mid] = 0.5 * pts[mid] + 0.25 * (pts[n1] + pts[n2])
    return shapely.set_coordinates(polys.copy(), pts[inv])


def _map_unique(coords: Array, fn: Callable[[Array], Array]) -> Array:
    """Apply ``fn`` to the distinct coordinates only, then scatter back.

    Why: vectorised maths (SIMD sin, chunked loops) may round the same input
    differently at different array positions; mapping each distinct vertex
    once guarantees that a vertex shared by two polygons stays shared.
    """
    c = np.ascontiguousarray(coords, dtype=float).view(np.complex128).ravel()
    uniq, inv = np.unique(c, return_inverse=True)
    out = fn(np.c_[uniq.real, uniq.imag])
    return out[inv.ravel()]


def _union_by(polys: GArray, labels: IArray, n: int, progress: bool, desc: str) -> GArray:
    """Coverage union of ``polys`` per label (edge cancellation keeps every vertex)."""
    order = np.argsort(labels, kind="stable")
    starts = np.r_[_group_starts(labels[order]), len(order)]
    out = np.empty(n, dtype=object)
    for k in tqdm(range(len(starts) - 1), desc=desc, disable=not progress, leave=False, unit="unit"):
        members = order[starts[k] : starts[k + 1]]
        out[labels[members[0]]] = shapely.coverage_union_all(polys[members])
    return out


def _parcels_to_groups(
    rng: np.random.Generator,
    inner: shapely.Geometry,
    outline: shapely.Geometry,
    vxy: Array,
    v_urban: BArray,
    cap: Array,
    gxy: Array,
    g_village: IArray,
    v_town: IArray,
    n_seats: int,
    progress: bool,
) -> tuple[GArray, Array, IArray, IArray, IArray]:
    """Parcels -> Voronoi -> contiguous villages, townships and groups -> group polygons.

    Returns the group polygons (metric, unwarped), the group seeds and villages
    (empty groups dropped), the final township of every village and the main
    group (village centre, 村委会) of every village.
    """
    villages, townships = len(vxy), int(v_town.max()) + 1
    axy, a_village = _atoms(rng, inner, vxy, v_urban, cap, gxy, g_village)
    cells = _voronoi(np.r_[axy, _ghosts(outline)], len(axy))
    ei, ej, ew = _shared_edges(cells)
    a_village = _fix_contiguity(a_village, ei, ej, ew, villages)
    # a township keeps the parcels of its seat village
    first_atom = np.full(villages, -1, dtype=np.int64)
    first_atom[a_village[::-1]] = np.arange(len(a_village))[::-1]
    a_town = _fix_contiguity(v_town[a_village], ei, ej, ew, townships, anchor=first_atom[:n_seats])
    v_town = np.zeros(villages, dtype=np.int64)
    v_town[a_village] = a_town
    a_group = _assign_groups(axy, a_village, gxy, g_village)
    # groups that got no parcel disappear; the rest are renumbered
    used = np.unique(a_group)
    gxy, g_village = gxy[used], g_village[used]
    a_group = np.searchsorted(used, a_group)
    a_group = _fix_contiguity(a_group, ei, ej, ew, len(used), domain=a_village)
    used = np.unique(a_group)
    gxy, g_village = gxy[used], g_village[used]
    a_group = np.searchsorted(used, a_group)
    g_cells = _union_by(cells, a_group, len(used), progress, "groups")
    # the group nearest the village seed is the village centre (村委会)
    dist = np.hypot(*(gxy - vxy[g_village]).T)
    order = np.lexsort((np.arange(len(gxy)), dist, g_village))
    firsts = order[_group_starts(g_village[order])]
    main_group = np.full(villages, -1, dtype=np.int64)
    main_group[g_village[firsts]] = firsts
    return g_cells, gxy, g_village, v_town, main_group


def _warp_groups(
    rng: np.random.Generator, cells: GArray, gxy: Array, origin: tuple[float, float]
) -> tuple[GArray, Array]:
    """Smooth, densify and bend the group polygons (and move their seeds along).

    The warp is a smooth displacement field whose Lipschitz constant is kept
    below 0.5, so it is injective: no polygon can fold over its neighbour.
    """
    warp_x = _Field(rng, 6, (4000.0, 16000.0), origin)
    warp_y = _Field(rng, 6, (4000.0, 16000.0), origin)
    fine_x = _Field(rng, 4, (1200.0, 2500.0), origin)
    fine_y = _Field(rng, 4, (1200.0, 2500.0), origin)
    amp = min(0.25 / max(warp_x.max_gradient, warp_y.max_gradient), 180.0)
    famp = min(0.1 / max(fine_x.max_gradient, fine_y.max_gradient), 30.0)

    def warp(p: Array) -> Array:
        x, y = p[:, 0], p[:, 1]
        return np.c_[
            x + amp * warp_x(x, y) + famp * fine_x(x, y),
            y + amp * warp_y(x, y) + famp * fine_y(x, y),
        ]

    for rounds in (4, 2, 0):  # fewer rounds in the (never seen) case smoothing folds a polygon
        dense = _segmentize_canonical(_smooth_shared(cells, rounds), _EDGE_STEP)
        g_poly = shapely.set_coordinates(dense, _map_unique(shapely.get_coordinates(dense), warp))
        if shapely.is_valid(g_poly).all():
            break
        logger.debug("synth: smoothing with %d rounds folded a polygon; retrying", rounds)
    gxy = warp(gxy)
    # a group whose seed parcel went to a neighbour (contiguity repair) gets a new centre
    with _prepared(g_poly):
        lost = ~shapely.contains_xy(g_poly, gxy[:, 0], gxy[:, 1])
    if lost.any():
        gxy[lost] = shapely.get_coordinates(shapely.point_on_surface(g_poly[lost]))
    return g_poly, gxy


# ---------------------------------------------------------------- the public API


def synth_county(
    *,
    seed: int,
    townships: int = 23,
    villages: int = 220,
    households: int = 60_000,
    county_code: str = "369900",
    center: tuple[float, float] = (117.2, 28.25),
    progress: bool = False,
) -> dict[str, gpd.GeoDataFrame]:
    """Generate a plausible synthetic county, deterministically from ``seed``.

    Parameters
    ----------
    seed
        Seed of the single random generator; the same arguments always give
        the same county, a different seed a different one.
    townships
        Number of townships (乡镇/街道).  Beyond 999 the codes continue with the
        next county code, so a province-sized run still has unique 9-digit codes.
    villages
        Number of villages and urban communities (村/社区), >= ``townships``.
    households
        Total households (户) on buildings, >= ``villages``; met exactly.
    county_code
        6-digit county division code that prefixes every code.
    center
        (longitude, latitude) of the county; selects the Gauss-Krüger zone the
        geometry is generated in.
    progress
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    dict
        One GeoDataFrame per name in :data:`LAYERS`, all in EPSG:4490.

    Raises
    ------
    UsageError
        When the arguments cannot describe a county.
    """
    lon, lat = _validate(seed, townships, villages, households, county_code, center)
    t_all = time.perf_counter()
    rng = np.random.default_rng(seed)
    epsg = gk_epsg(lon)
    cx, cy = Transformer.from_crs(GEOGRAPHIC_EPSG, epsg, always_xy=True).transform(lon, lat)
    stages = 14
    with tqdm(total=stages, desc="synth", disable=not progress, unit="stage") as bar:
        with _stage(bar, "outline"):
            kind, seat_urban, extras = _plan_counts(rng, townships, villages)
            n_urban = int(seat_urban.sum() + extras.sum())
            area = (villages - n_urban) * _RURAL_M2 + n_urban * _URBAN_M2
            outline = _blob(rng, area, cx, cy)
            inner = shapely.buffer(outline, -_MARGIN, quad_segs=16)  # Geometry.buffer's default
            shapely.prepare(inner)
            radius = math.sqrt(area / math.pi)
            mountain = _Field(rng, 8, (0.25 * radius + 8000, 0.9 * radius + 30000), (cx, cy))
        with _stage(bar, "township seats"):
            tw = _place_townships(rng, inner, (cx, cy), kind, seat_urban, extras)
        with _stage(bar, "village seeds"):
            vxy, v_urban, v_cluster, n_seats = _village_seeds(rng, tw, inner, villages, mountain)
            v_town = _assign_townships(vxy, tw)
            # an urban community reaches ~0.6-0.85 km from its centre (about 1 km2); shared per town
            spacing = math.sqrt(_URBAN_M2 * 2 / math.sqrt(3))
            cap = 0.7 * spacing * rng.uniform(0.9, 1.25, townships)[np.maximum(v_cluster, 0)]
            vxy, v_urban, v_cluster, cap = _settle_towns(vxy, v_urban, v_cluster, cap, inner)
        with _stage(bar, "group seeds"):
            gxy, g_village = _group_seeds(rng, vxy, v_urban, cap, inner, radius)
        with _stage(bar, "parcels"):
            g_cells, gxy, g_village, v_town, main_group = _parcels_to_groups(
                rng, inner, outline, vxy, v_urban, cap, gxy, g_village, v_town, n_seats, progress
            )
        with _stage(bar, "warp"):
            g_poly, gxy = _warp_groups(rng, g_cells, gxy, (cx, cy))
            del g_cells
            vc = gxy[main_group]  # village centres
            seat_xy = vc[:n_seats]
        with _stage(bar, "unions"):
            v_poly = _union_by(g_poly, g_village, villages, progress, "villages")
            t_poly = _union_by(v_poly, v_town, townships, progress, "townships")
            county = shapely.coverage_union_all(t_poly)
            _check_polygons(g_poly, "villager group")
            _check_polygons(v_poly, "village")
            _check_polygons(t_poly, "township")
        names = _Names(rng)
        with _stage(bar, "codes and names"):
            codes = _codes(county_code, tw.kind, seat_xy, v_town, v_urban, vc, v_poly, t_poly, g_village, gxy)
            t_name, v_name, v_root, county_name = names.places(tw.kind, v_town, v_urban, codes)
        with _stage(bar, "water"):
            water, river_pts = _water(rng, county, names, radius, villages)
        with _stage(bar, "industry"):
            industry = _industry(rng, vc, v_urban, seat_xy, river_pts, mountain, (cx, cy))
        street_theta = rng.uniform(0, np.pi / 2, townships)  # one street grid per town
        with _stage(bar, "buildings"):
            bld = _buildings(
                rng, households, street_theta, vc, v_urban, v_town, v_poly, g_poly, g_village, gxy, main_group,
                seat_xy, mountain, progress,
            )
        with _stage(bar, "roads"):
            roads = _roads(rng, street_theta, seat_xy, vc, v_urban, v_town, v_poly, gxy, g_village, bld, county)
        with _stage(bar, "points of interest"):
            pois = _pois(rng, tw.kind, vc, v_urban, v_poly, industry, bld, t_name, v_name, v_root, county_name, codes)
        with _stage(bar, "output"):
            frames = _assemble(
                rng, epsg, codes, t_name, tw.kind, v_name, v_town, v_urban, industry,
                t_poly, v_poly, g_poly, g_village, bld, roads, water, pois,
            )
    # GDAL metadata keys may not contain ':' or '=' (it splits on both)
    meta = {
        "GRIDGEO_SYNTHETIC": "yes",
        "GRIDGEO_GENERATOR": "gridgeo.synth.synth_county",
        "GRIDGEO_ARGUMENTS": (
            f"seed {seed}, townships {townships}, villages {villages}, households {households}, "
            f"county_code {county_code}, center {lon} {lat}"
        ),
        "GRIDGEO_COUNTY": county_name,
        "GRIDGEO_METRIC_CRS": f"EPSG {epsg}",
    }
    for gdf in frames.values():
        gdf.attrs.update(meta)
    logger.info(
        "synth: %s (%d townships, %d villages, %d groups, %d buildings, %d households) in %.1f s",
        county_name, townships, villages, len(frames["villager_groups"]), len(frames["buildings"]),
        households, time.perf_counter() - t_all,
    )
    return frames


def _check_polygons(polys: GArray, what: str) -> None:
    """Every unit must be one valid, non-empty Polygon; anything else is a generator bug."""
    bad = (shapely.get_type_id(polys) != 3) | ~shapely.is_valid(polys) | shapely.is_empty(polys)
    if bad.any():
        raise RuntimeError(f"synth produced {int(bad.sum())} {what} geometries that are not single valid polygons")


# ---------------------------------------------------------------- codes and names


@dataclass
class _Codes:
    """Division codes by generation index."""

    township: NDArray[np.object_]
    village: NDArray[np.object_]
    group: NDArray[np.object_]
    group_number: IArray


def _codes(
    county_code: str,
    t_kind: IArray,
    seat_xy: Array,
    v_town: IArray,
    v_urban: BArray,
    vc: Array,
    v_poly: GArray,
    t_poly: GArray,
    g_village: IArray,
    gxy: Array,
) -> _Codes:
    """Statistical-division-style codes, numbered in reading order.

    Township: county code + 3 digits (街道 first, then 镇, then 乡).  Village:
    township code + 3 digits, communities (居委会) from 001, villages (村委会)
    from 200 as in the national statistical division codes.  Group: village
    code + 2 digits.
    """
    t = len(seat_xy)
    band_t = np.full(t, math.sqrt(float(np.median(shapely.area(t_poly)))))
    t_rank = _reading_rank(t_kind, seat_xy[:, 0], seat_xy[:, 1], band_t)
    t_offset = np.r_[0, np.cumsum(np.bincount(t_kind, minlength=3))][t_kind]
    seq = t_offset + t_rank  # 0-based position in code order
    base = int(county_code)
    t_code = np.array([f"{base + s // 999:06d}{s % 999 + 1:03d}" for s in seq], dtype=object)

    nv = len(vc)
    v_area = shapely.area(v_poly)
    n_in = np.bincount(v_town, minlength=t)
    band_v = np.sqrt(shapely.area(t_poly)[v_town] / np.maximum(n_in[v_town], 1))
    cls = np.where(v_urban, 0, 1)
    v_rank = _reading_rank(v_town * 2 + cls, vc[:, 0], vc[:, 1], band_v)
    n_urban = np.bincount(v_town[v_urban], minlength=t)
    n_rural = np.bincount(v_town[~v_urban], minlength=t)
    standard = (n_urban[v_town] <= 199) & (n_rural[v_town] <= 800)
    num = np.where(v_urban, v_rank + 1, np.where(standard, 200 + v_rank, n_urban[v_town] + v_rank + 1))
    if len(num) and num.max() > 999:
        raise RuntimeError("a township got more than 999 villages; ask for more townships")
    v_code = np.array([f"{t_code[a]}{b:03d}" for a, b in zip(v_town, num, strict=True)], dtype=object)

    n_g = np.bincount(g_village, minlength=nv)
    band_g = np.sqrt(v_area[g_village] / np.maximum(n_g[g_village], 1))
    g_rank = _reading_rank(g_village, gxy[:, 0], gxy[:, 1], band_g)
    g_code = np.array([f"{v_code[a]}{b + 1:02d}" for a, b in zip(g_village, g_rank, strict=True)], dtype=object)
    return _Codes(township=t_code, village=v_code, group=g_code, group_number=g_rank + 1)


class _Names:
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

    def places(
        self, t_kind: IArray, v_town: IArray, v_urban: BArray, codes: _Codes
    ) -> tuple[NDArray[np.object_], NDArray[np.object_], NDArray[np.object_], str]:
        """Names of the county, townships and villages.

        A town (镇) or township (乡) is named after its seat village, as most
        are (石桥镇 sits in 石桥村 or 石桥社区); the first county seat's
        subdistricts are 城关, 城东, ...
        """
        t = len(t_kind)
        nv = len(v_town)
        county_name = self.take(1)[0] + "县"
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
        t_name = np.empty(t, dtype=object)
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
        v_name = np.array([r + ("社区" if u else "村") for r, u in zip(v_root, v_urban, strict=True)], dtype=object)
        return t_name, v_name, v_root, county_name


# ---------------------------------------------------------------- water and industry


@dataclass
class _Lines:
    """Lines with their attribute columns, in the metric CRS."""

    geometry: GArray
    attrs: dict[str, NDArray[np.object_]]


def _water(
    rng: np.random.Generator, county: shapely.Geometry, names: _Names, radius: float, villages: int
) -> tuple[_Lines, Array]:
    """Meandering rivers across the county and streams flowing towards them."""
    n_rivers = 2 + villages // 2000
    heading = rng.uniform(0, 2 * np.pi, n_rivers)
    core = shapely.buffer(county, -0.3 * radius, quad_segs=16)  # Geometry.buffer's default
    through = _sample_in(rng, core if shapely.area(core) > 0.05 * shapely.area(county) else county, n_rivers)
    span = 2.6 * radius
    start = through - span / 2 * np.c_[np.cos(heading), np.sin(heading)]
    rivers = _meander(rng, start, heading, np.full(n_rivers, span * 1.25), 100.0, (2500.0, 5000.0), 0.9)
    river_pts = shapely.get_coordinates(shapely.segmentize(rivers, 150.0))
    n_streams = max(2, villages // 8)
    src = _sample_in(rng, county, n_streams)
    d, i = cKDTree(river_pts).query(src)
    target = river_pts[i]
    length = np.minimum(d, 9000.0) * 1.15
    head = np.arctan2(target[:, 1] - src[:, 1], target[:, 0] - src[:, 0])
    streams = _meander(rng, src, head, length, 50.0, (600.0, 1500.0), 0.6)
    r_roots = names.take(n_rivers)
    s_roots = names.take(n_streams)
    r_suffix = np.array(["河", "江", "水"], dtype=object)[rng.integers(0, 3, n_rivers)]
    s_suffix = np.array(["溪", "水", "港"], dtype=object)[rng.integers(0, 3, n_streams)]
    geoms = np.r_[rivers, streams]
    attrs = {
        "waterway": np.array(["river"] * n_rivers + ["stream"] * n_streams, dtype=object),
        "name": np.r_[
            np.array([a + b for a, b in zip(r_roots, r_suffix, strict=True)], dtype=object),
            np.array([a + b for a, b in zip(s_roots, s_suffix, strict=True)], dtype=object),
        ],
    }
    geoms, attrs = _clip_lines(geoms, attrs, county)
    keep = np.ones(len(geoms), bool)
    keep[attrs["waterway"] == "stream"] = shapely.length(geoms[attrs["waterway"] == "stream"]) > 300.0
    inside_pts = river_pts[shapely.contains_xy(county, river_pts[:, 0], river_pts[:, 1])]
    if len(inside_pts) == 0:
        inside_pts = river_pts
    return _Lines(geoms[keep], {k: v[keep] for k, v in attrs.items()}), inside_pts


def _industry(
    rng: np.random.Generator,
    vc: Array,
    v_urban: BArray,
    seat_xy: Array,
    river_pts: Array,
    mountain: _Field,
    origin: tuple[float, float],
) -> NDArray[np.object_]:
    """Industry per village: terrain, rivers and towns score each option, plus smooth noise.

    Why smooth noise fields: they make similar villages adjacent (a tea
    valley, a mining district), the clustering a block partition must cope with.
    """
    x, y = vc[:, 0], vc[:, 1]
    e = mountain(x, y)
    dr = cKDTree(river_pts).query(vc)[0] / 1000.0
    ds = cKDTree(seat_xy).query(vc)[0] / 1000.0
    noise = np.stack([_Field(rng, 5, (8000.0, 30000.0), origin)(x, y) for _ in INDUSTRIES], axis=1)
    jitter = rng.normal(0.0, 0.15, (len(vc), len(INDUSTRIES)))
    rural = np.stack(
        [
            0.85 - 0.7 * e,  # agriculture
            0.2 + 0.7 * e,  # tea
            0.4 + 0.3 * e,  # fruit
            1.3 * np.exp(-dr / 1.2) - 0.3 * e - 0.1,  # fishery
            -0.2 + 1.1 * e,  # forestry
            -0.75 + 0.6 * e,  # mining
            1.0 * np.exp(-ds / 4.0) - 0.1,  # manufacturing
            -0.5 + 0.2 * e,  # tourism
            np.full_like(e, -3.0),  # commerce
            np.full_like(e, -3.0),  # services
        ],
        axis=1,
    )
    urban = np.stack(
        [np.full_like(e, -3.0)] * 5
        + [
            np.full_like(e, -3.0),
            0.3 + 0.15 * ds,  # manufacturing at the edge of town
            -0.6 + 0.2 * e,  # tourism
            1.2 - 0.25 * ds,  # commerce in the core
            0.9 + 0.0 * e,  # services
        ],
        axis=1,
    )
    # mining and tourism are the most local: a mining district, a scenic valley
    scale = np.array([0.55, 0.6, 0.6, 0.5, 0.55, 1.1, 0.55, 0.8, 0.4, 0.4])
    score = np.where(v_urban[:, None], urban, rural) + scale * noise + jitter
    return np.array(INDUSTRIES, dtype=object)[np.argmax(score, axis=1)]


# ---------------------------------------------------------------- buildings


@dataclass
class _Buildings:
    """Buildings in the metric CRS with what later stages need to know about them."""

    corners: Array  # (n, 5, 2) closed rings; polygons are made once, in the output CRS
    households: IArray
    levels: IArray
    village: IArray
    centre: Array
    angle: Array  # orientation of the long side (radians)
    urban: BArray
    cell: IArray  # urban: street-cell id (for gated compounds); rural: -1
    group: IArray  # the villager group the building was placed in (-1: fallback, located later)
    along: Array  # rural: distance along the hamlet lane (for lane extents); urban: 0


_HOUSE_ALONG = 16.0  # slot spacing along a hamlet lane
_HOUSE_ROW = 22.0  # slot spacing between rows
_HOUSE_FIRST_ROW = 13.0  # first row's distance from the lane centre


def _canonical_slots(n: int) -> Array:
    """Hamlet slots (along, across) ordered from the lane centre outwards, elongated along the lane."""
    r = math.ceil(math.sqrt(n)) + 3
    i = np.arange(-3 * r, 3 * r + 1)
    rows = np.r_[np.arange(1, r + 1), -np.arange(1, r + 1)]
    ii, rr = np.meshgrid(i, rows)
    along = ii.ravel() * _HOUSE_ALONG
    across = np.sign(rr.ravel()) * (_HOUSE_FIRST_ROW + (np.abs(rr.ravel()) - 1) * _HOUSE_ROW)
    key = (along / 2.2) ** 2 + across**2
    order = np.lexsort((across, along, key))
    return np.c_[along, across][order][:n]


def _buildings(
    rng: np.random.Generator,
    households: int,
    street_theta: Array,
    vc: Array,
    v_urban: BArray,
    v_town: IArray,
    v_poly: GArray,
    g_poly: GArray,
    g_village: IArray,
    gxy: Array,
    main_group: IArray,
    seat_xy: Array,
    mountain: _Field,
    progress: bool,
) -> _Buildings:
    """Households per village, then rural houses in hamlets and urban apartment blocks."""
    nv = len(vc)
    v_area = shapely.area(v_poly)
    e = mountain(vc[:, 0], vc[:, 1])
    # ---- households per village: an urban community holds ~3 villages' worth
    n_u = int(v_urban.sum())
    n_r = nv - n_u
    share_u = 0.0 if n_u == 0 else (1.0 if n_r == 0 else min(0.45, 3 * n_u / (3 * n_u + n_r)))
    w = np.where(
        v_urban,
        rng.lognormal(0.0, 0.4, nv),
        np.sqrt(v_area / 1e6) * np.exp(-0.35 * e) * rng.lognormal(0.0, 0.35, nv),
    )
    w_u = w[v_urban].sum() if n_u else 1.0
    w_r = w[~v_urban].sum() if n_r else 1.0
    w = np.where(v_urban, share_u * w / w_u, (1.0 - share_u) * w / w_r)
    h_v = 1 + _apportion(np.array([households - nv]), w, np.zeros(nv, dtype=np.int64))

    parts: list[_Buildings] = []
    # ---- rural houses, one hamlet per villager group
    rural_g = np.flatnonzero(~v_urban[g_village])
    if len(rural_g):
        parts.append(
            _rural_houses(rng, h_v, rural_g, g_poly, g_village, gxy, main_group, vc, seat_xy, v_town, progress)
        )
    if v_urban.any():
        parts.append(_urban_blocks(rng, h_v, v_urban, g_poly, g_village, gxy, v_town, seat_xy, street_theta))
    b = _concat_buildings(parts)
    # ---- any households that found no slot go to the village's existing buildings
    placed = np.bincount(b.village, b.households, minlength=nv).astype(np.int64)
    deficit = h_v - placed
    has = np.bincount(b.village, minlength=nv) > 0
    if (deficit > 0).any():
        hh = b.households.copy()
        lack = np.flatnonzero((deficit > 0) & has)
        if len(lack):
            idx = np.flatnonzero(np.isin(b.village, lack))
            # spread the deficit round-robin over the village's buildings
            order = idx[np.argsort(b.village[idx], kind="stable")]
            rank = _rank_within(b.village[order])
            cnt = np.bincount(b.village[order], minlength=nv)
            d = deficit[b.village[order]]
            c = cnt[b.village[order]]
            hh[order] += d // c + (rank < d % c)
        b.households = hh
        empty = np.flatnonzero((deficit > 0) & ~has)
        if len(empty):
            parts = [b, _fallback_buildings(empty, deficit[empty], v_poly, v_urban)]
            b = _concat_buildings(parts)
    got = int(b.households.sum())
    if got != households:
        raise RuntimeError(f"synth placed {got} households instead of {households}; this is a bug")
    return b


def _concat_buildings(parts: Sequence[_Buildings]) -> _Buildings:
    return _Buildings(
        corners=np.concatenate([p.corners for p in parts]),
        households=np.concatenate([p.households for p in parts]).astype(np.int64),
        levels=np.concatenate([p.levels for p in parts]).astype(np.int64),
        village=np.concatenate([p.village for p in parts]).astype(np.int64),
        centre=np.concatenate([p.centre for p in parts]),
        angle=np.concatenate([p.angle for p in parts]),
        urban=np.concatenate([p.urban for p in parts]),
        cell=np.concatenate([p.cell for p in parts]).astype(np.int64),
        group=np.concatenate([p.group for p in parts]).astype(np.int64),
        along=np.concatenate([p.along for p in parts]),
    )


def _fallback_buildings(villages: IArray, hh: IArray, v_poly: GArray, v_urban: BArray) -> _Buildings:
    """One building at the centre of the largest inscribed circle of villages that got none."""
    circles = shapely.maximum_inscribed_circle(v_poly[villages])
    centre = shapely.get_coordinates(shapely.get_point(circles, 0))
    r = shapely.length(circles)
    side = np.clip(r, 1.0, 10.0)
    coords = _rects(centre[:, 0], centre[:, 1], side, side, np.zeros(len(villages)))
    n = len(villages)
    return _Buildings(
        corners=coords, households=hh.astype(np.int64), levels=np.ones(n, np.int64),
        village=villages, centre=centre, angle=np.zeros(n), urban=v_urban[villages], cell=np.full(n, -1),
        group=np.full(n, -1), along=np.zeros(n),
    )


def _rural_houses(
    rng: np.random.Generator,
    h_v: IArray,
    rural_g: IArray,
    g_poly: GArray,
    g_village: IArray,
    gxy: Array,
    main_group: IArray,
    vc: Array,
    seat_xy: Array,
    v_town: IArray,
    progress: bool,
) -> _Buildings:
    """Houses of 1 (sometimes 2) households on slots along each hamlet's lane.

    The hamlet lane runs from the hamlet towards the village centre (for the
    main hamlet: towards the township seat), houses face it in rows, and a
    house is kept only if it lies well inside its villager group.
    """
    gv = g_village[rural_g]
    area = shapely.area(g_poly[rural_g])
    # households per group, in proportion to area with noise
    vid, lab = np.unique(gv, return_inverse=True)
    h_g = _apportion(h_v[vid], area**0.7 * rng.uniform(0.5, 1.5, len(rural_g)), lab.ravel())
    n_two = rng.binomial(h_g // 2, 0.35)  # about one house in five holds two households
    n_h = h_g - n_two
    # lane direction
    is_main = main_group[gv] == rural_g
    target = np.where(is_main[:, None], seat_xy[v_town[gv]], vc[gv])
    dvec = target - gxy[rural_g]
    far = np.hypot(dvec[:, 0], dvec[:, 1]) > 50.0
    theta = np.where(far, np.arctan2(dvec[:, 1], dvec[:, 0]), rng.uniform(0, np.pi, len(rural_g)))
    stretch = rng.uniform(1.0, 1.4, len(rural_g))
    # candidate slots: the first m in canonical order, kept with a random priority
    m = np.where(n_h > 0, np.ceil(1.5 * n_h).astype(np.int64) + 6, 0)
    slots = _canonical_slots(int(m.max()) if len(m) else 0)
    polys = g_poly[rural_g]
    shapely.prepare(polys)  # released below
    # groups are handled in chunks of ~250k candidate slots, which bounds the memory
    ends = np.searchsorted(np.cumsum(m), np.arange(250_000, int(m.sum()) + 250_000, 250_000), side="right")
    bounds = np.unique(np.r_[0, np.minimum(ends, len(m)), len(m)])
    parts: list[_Buildings] = []
    for g0, g1 in tqdm(
        list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)),
        desc="hamlets", disable=not progress, leave=False, unit="chunk",
    ):
        parts.append(
            _hamlets(rng, np.arange(g0, g1), m, n_h, n_two, h_g, slots, stretch, theta, gxy[rural_g], polys,
                     gv, rural_g)
        )
    shapely.destroy_prepared(polys)
    return _concat_buildings(parts) if parts else _concat_buildings([_no_buildings()])


def _no_buildings() -> _Buildings:
    return _Buildings(
        corners=np.zeros((0, 5, 2)), households=np.zeros(0, np.int64), levels=np.zeros(0, np.int64),
        village=np.zeros(0, np.int64), centre=np.zeros((0, 2)), angle=np.zeros(0), urban=np.zeros(0, bool),
        cell=np.zeros(0, np.int64), group=np.zeros(0, np.int64), along=np.zeros(0),
    )


def _hamlets(
    rng: np.random.Generator,
    groups: IArray,
    m: IArray,
    n_h: IArray,
    n_two: IArray,
    h_g: IArray,
    slots: Array,
    stretch: Array,
    theta: Array,
    centre: Array,
    polys: GArray,
    gv: IArray,
    rural_g: IArray,
) -> _Buildings:
    """Houses of the hamlets of ``groups`` (indices into the rural-group arrays)."""
    mm = m[groups]
    owner = np.repeat(groups, mm)
    k = np.arange(len(owner)) - np.repeat(np.r_[0, np.cumsum(mm)[:-1]], mm)
    along = slots[k, 0] * stretch[owner] + rng.uniform(-1.0, 1.0, len(owner))
    across = slots[k, 1] + rng.uniform(-1.0, 1.0, len(owner))
    c, s = np.cos(theta[owner]), np.sin(theta[owner])
    cx = centre[owner, 0] + along * c - across * s
    cy = centre[owner, 1] + along * s + across * c
    del c, s, across
    length = rng.uniform(10.0, 13.0, len(owner))
    depth = rng.uniform(7.0, 9.0, len(owner))
    angle = theta[owner] + rng.uniform(-0.05, 0.05, len(owner))
    # a house counts only if the house grown by 1.5 m is inside its group
    grown = _polygons_from_rects(_rects(cx, cy, length + 3.0, depth + 3.0, angle))
    ok = shapely.contains(polys[owner], grown)
    del grown
    prio = k / np.maximum(m[owner], 1) + rng.uniform(0.0, 0.6, len(owner))
    sel = np.flatnonzero(ok)
    sel = sel[np.lexsort((sel, prio[sel], owner[sel]))]
    rank = _rank_within(owner[sel])
    sel = sel[rank < n_h[owner[sel]]]
    # households: each placed house 1; the first n_two placed houses of a group get 2
    o = owner[sel]
    r = _rank_within(o)
    hh = 1 + (r < n_two[o]).astype(np.int64)
    # shortfall inside a group: spread over the group's placed houses
    n_all = len(m)
    short = h_g - np.bincount(o, hh, minlength=n_all).astype(np.int64)
    cnt = np.bincount(o, minlength=n_all)
    fix = (short > 0) & (cnt > 0)
    if fix.any():
        pl = np.maximum(cnt[o], 1)
        hh = hh + np.where(fix[o], short[o] // pl + (r < short[o] % pl), 0)
    levels = rng.choice(np.array([1, 2, 3]), len(sel), p=[0.25, 0.5, 0.25])
    return _Buildings(
        corners=_rects(cx[sel], cy[sel], length[sel], depth[sel], angle[sel]), households=hh, levels=levels,
        village=gv[o], centre=np.c_[cx[sel], cy[sel]], angle=angle[sel], urban=np.zeros(len(sel), bool),
        cell=np.full(len(sel), -1), group=rural_g[o], along=along[sel],
    )


def _urban_blocks(
    rng: np.random.Generator,
    h_v: IArray,
    v_urban: BArray,
    g_poly: GArray,
    g_village: IArray,
    gxy: Array,
    v_town: IArray,
    seat_xy: Array,
    street_theta: Array,
) -> _Buildings:
    """Apartment blocks and rows of shophouses on each town's street grid.

    Every town with urban communities has one street grid (orientation and
    origin at the seat); a 200 m street cell holds two columns of five 60 x 15 m
    slots, set back from the streets.  A slot takes either one apartment block
    (20-120 households, 6-18 levels) or a row of up to four shophouses (1-5
    households, 2-5 levels) -- the mix of a Chinese county town.  Each
    residents' group fills the slots nearest its centre first, so towns have
    dense cores.
    """
    ug = np.flatnonzero(v_urban[g_village])
    gv = g_village[ug]
    vid, lab = np.unique(gv, return_inverse=True)
    ng = len(ug)
    h_g = _apportion(h_v[vid], shapely.area(g_poly[ug]) * rng.uniform(0.7, 1.3, ng), lab.ravel())
    n_a = np.round(0.7 * h_g / 60.0).astype(np.int64)
    apt = np.where(n_a > 0, np.clip(np.round(h_g * rng.uniform(0.6, 0.8, ng)), 20 * n_a, 110 * n_a), 0)
    apt = np.minimum(apt, h_g).astype(np.int64)
    h_s = h_g - apt
    n_s = np.ceil(h_s / 3.0).astype(np.int64)  # shophouses: 1-5 households, mostly 2-4
    n_rows = np.ceil(n_s / 4.0).astype(np.int64)
    n_slot = n_a + n_rows
    a_hh = 1 + _apportion(apt - n_a, rng.uniform(0.6, 1.4, int(n_a.sum())), np.repeat(np.arange(ng), n_a))
    s_hh = 1 + _apportion(h_s - n_s, rng.uniform(0.5, 1.5, int(n_s.sum())), np.repeat(np.arange(ng), n_s))
    a_start = np.r_[0, np.cumsum(n_a)[:-1]]
    s_start = np.r_[0, np.cumsum(n_s)[:-1]]

    town = v_town[gv]
    theta = street_theta[town]
    origin = seat_xy[town]
    c, s = np.cos(theta), np.sin(theta)
    rel = gxy[ug] - origin
    u0 = rel[:, 0] * c + rel[:, 1] * s
    w0 = -rel[:, 0] * s + rel[:, 1] * c
    # a square window of street cells that holds ~3x the slots needed (10 slots per cell)
    half = (np.ceil(np.sqrt(0.3 * n_slot + 1.0) / 2.0) + 1).astype(np.int64)
    span = 2 * half + 1
    n_cand = np.where(n_slot > 0, span**2 * 10, 0)
    owner = np.repeat(np.arange(ng), n_cand)
    k = np.arange(len(owner)) - np.repeat(np.r_[0, np.cumsum(n_cand)[:-1]], n_cand)
    cell_k, slot = np.divmod(k, 10)
    ci = np.floor(u0 / _STREET).astype(np.int64)[owner] - half[owner] + cell_k % span[owner]
    cj = np.floor(w0 / _STREET).astype(np.int64)[owner] - half[owner] + cell_k // span[owner]
    su = ci * _STREET + np.array([50.0, 150.0])[slot % 2]
    sw = cj * _STREET + np.array([30.0, 65.0, 100.0, 135.0, 170.0])[slot // 2]
    key = np.hypot(su - u0[owner], sw - w0[owner]) + rng.uniform(0.0, 60.0, len(owner))
    # keep the 3 * n + 10 nearest slots per group, then test containment on those only
    order = np.lexsort((np.arange(len(owner)), key, owner))
    rank = _rank_within(owner[order])
    cand = order[rank < 3 * n_slot[owner[order]] + 10]
    co, so = c[owner[cand]], s[owner[cand]]
    x = origin[owner[cand], 0] + su[cand] * co - sw[cand] * so
    y = origin[owner[cand], 1] + su[cand] * so + sw[cand] * co
    grown = _polygons_from_rects(_rects(x, y, np.full(len(cand), 66.0), np.full(len(cand), 20.0), theta[owner[cand]]))
    with _prepared(g_poly[ug]) as polys:
        ok = shapely.contains(polys[owner[cand]], grown)
    sel = np.flatnonzero(ok)  # cand is in key order within each group
    o = owner[cand[sel]]
    keep = _rank_within(o) < n_slot[o]
    sel, o = sel[keep], o[keep]
    # apartments take the slots nearest the group centre (a compound), shophouses the rest
    r2 = _rank_within(o)
    is_apt = r2 < n_a[o]
    # apartments
    ai = np.flatnonzero(is_apt)
    a_len = rng.uniform(45.0, 62.0, len(ai))
    a_dep = rng.uniform(12.0, 16.0, len(ai))
    a_h = a_hh[a_start[o[ai]] + r2[ai]]
    units = rng.integers(2, 8, len(ai))
    a_lev = np.clip(np.ceil(a_h / units), 6, 18).astype(np.int64)
    # shophouse rows: up to four 12 m houses side by side in the slot
    si = np.flatnonzero(~is_apt)
    q = r2[si] - n_a[o[si]]
    cnt = np.clip(n_s[o[si]] - 4 * q, 0, 4)
    row = np.repeat(si, cnt)
    kk = np.arange(len(row)) - np.repeat(np.r_[0, np.cumsum(cnt)[:-1]], cnt)
    shift = (kk - (np.repeat(cnt, cnt) - 1) / 2.0) * 15.0
    th_row = theta[o[row]]
    sx = x[sel[row]] + shift * np.cos(th_row)
    sy = y[sel[row]] + shift * np.sin(th_row)
    s_h = s_hh[s_start[o[row]] + 4 * np.repeat(q, cnt) + kk]
    s_dep = rng.uniform(10.0, 13.0, len(row))
    s_lev = rng.integers(2, 6, len(row))

    bx = np.r_[x[sel[ai]], sx]
    by = np.r_[y[sel[ai]], sy]
    blen = np.r_[a_len, np.full(len(row), 12.0)]
    bdep = np.r_[a_dep, s_dep]
    bth = np.r_[theta[o[ai]], th_row]
    bo = np.r_[o[ai], o[row]]
    hh = np.r_[a_h, s_h].astype(np.int64)
    lev = np.r_[a_lev, s_lev].astype(np.int64)
    # households whose slot did not fit: spread over the group's placed buildings
    placed = np.bincount(bo, minlength=ng)
    short = h_g - np.bincount(bo, hh, minlength=ng).astype(np.int64)
    fix = (short > 0) & (placed > 0)
    if fix.any():
        order = np.argsort(bo, kind="stable")
        rr = np.empty(len(bo), dtype=np.int64)
        rr[order] = _rank_within(bo[order])
        pl = np.maximum(placed[bo], 1)
        hh = hh + np.where(fix[bo], short[bo] // pl + (rr < short[bo] % pl), 0)
    # dense ids of street cells (town, i, j) of apartment blocks: candidates for gated compounds
    cell_id = np.full(len(bo), -1, dtype=np.int64)
    if len(ai):
        ck = np.c_[town[o[ai]], ci[cand[sel[ai]]], cj[cand[sel[ai]]]]
        cell_id[: len(ai)] = np.unique(ck, axis=0, return_inverse=True)[1].ravel()
    coords = _rects(bx, by, blen, bdep, bth)
    return _Buildings(
        corners=coords, households=hh, levels=lev, village=gv[bo],
        centre=np.c_[bx, by], angle=bth, urban=np.ones(len(bo), bool), cell=cell_id,
        group=ug[bo], along=np.zeros(len(bo)),
    )


# ---------------------------------------------------------------- roads


def _tree_edges(n: int, i: IArray, j: IArray, w: Array) -> tuple[IArray, IArray]:
    """Minimum spanning forest over the given candidate edges."""
    if len(i) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g = coo_matrix((np.maximum(w, 1e-6), (i, j)), shape=(n, n)).tocsr()
    t = minimum_spanning_tree(g).tocoo()
    order = np.lexsort((t.col, t.row))
    return t.row[order].astype(np.int64), t.col[order].astype(np.int64)


def _subtree_sizes(n: int, a: IArray, b: IArray, roots: IArray) -> tuple[IArray, IArray]:
    """Orient tree edges away from ``roots``; return (child of each edge, subtree size per node)."""
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr()
    g = g + g.T
    parent = np.full(n, -1, dtype=np.int64)
    size = np.ones(n, dtype=np.int64)
    for r in roots:
        order, pred = breadth_first_order(g, int(r), directed=False, return_predecessors=True)
        for node in order[::-1]:
            p = pred[node]
            if p >= 0:
                size[p] += size[node]
                parent[node] = p
    child = np.where(parent[b] == a, b, a)
    return child, size


def _roads(
    rng: np.random.Generator,
    street_theta: Array,
    seat_xy: Array,
    vc: Array,
    v_urban: BArray,
    v_town: IArray,
    v_poly: GArray,
    gxy: Array,
    g_village: IArray,
    bld: _Buildings,
    county: shapely.Geometry,
) -> _Lines:
    """Roads of every OSM class, from provincial roads between seats to hamlet lanes.

    primary/secondary: a minimum spanning tree of the Delaunay graph of the
    township seats (trunk edges primary) plus some short extra edges, so the
    network has loops; tertiary/unclassified: a spanning tree of the village
    centres of each township rooted at its seat; track: a spanning tree of the
    hamlets of each village; residential/path: hamlet lanes, mountain paths,
    and a street grid per town clipped to its communities.
    """
    t = len(seat_xy)
    geoms: list[GArray] = []
    hw: list[NDArray[np.object_]] = []
    nm: list[NDArray[np.object_]] = []

    # ---- primary / secondary: MST of the Delaunay graph of seats, plus a few extra edges
    if t >= 2:
        if t >= 3:
            try:
                tri = Delaunay(seat_xy)
                s = tri.simplices
                ei = np.r_[s[:, 0], s[:, 1], s[:, 2]]
                ej = np.r_[s[:, 1], s[:, 2], s[:, 0]]
            except QhullError:
                ei, ej = np.triu_indices(t, 1)
        else:
            ei, ej = np.array([0]), np.array([1])
        lo, hi = np.minimum(ei, ej), np.maximum(ei, ej)
        pairs = np.unique(np.c_[lo, hi], axis=0)
        lo, hi = pairs[:, 0], pairs[:, 1]
        length = np.hypot(*(seat_xy[lo] - seat_xy[hi]).T)
        a, b = _tree_edges(t, lo, hi, length)
        child, size = _subtree_sizes(t, a, b, np.array([0]))
        primary = size[child] >= max(2, math.ceil(0.12 * t))
        in_tree = np.zeros(len(lo), bool)
        tree_keys = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))
        for k, (p, q) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            in_tree[k] = (p, q) in tree_keys
        mst_len = np.hypot(*(seat_xy[a] - seat_xy[b]).T)
        extra = (~in_tree) & (length <= 1.25 * float(np.median(mst_len))) & (rng.uniform(size=len(lo)) < 0.35)
        ea, eb = np.r_[a, lo[extra]], np.r_[b, hi[extra]]
        cls = np.r_[np.where(primary, "primary", "secondary"), np.full(int(extra.sum()), "secondary")].astype(object)
        geoms.append(_wiggly(rng, seat_xy[ea], seat_xy[eb], 250.0, 0.05))
        hw.append(cls)
        n_p = int((cls == "primary").sum())
        ref = np.empty(len(cls), dtype=object)
        ref[cls == "primary"] = [f"S{201 + i}" for i in range(n_p)]
        ref[cls == "secondary"] = [f"X{i + 1:03d}" for i in range(len(cls) - n_p)]
        nm.append(ref)

    # ---- tertiary / unclassified: per-township MST of village centres, rooted at the seat
    nv = len(vc)
    order = np.argsort(v_town, kind="stable")
    starts = np.r_[_group_starts(v_town[order]), nv]
    pi_list, pj_list = [], []
    for k in range(len(starts) - 1):
        members = order[starts[k] : starts[k + 1]]
        if len(members) < 2:
            continue
        a_, b_ = np.triu_indices(len(members), 1)
        pi_list.append(members[a_])
        pj_list.append(members[b_])
    if pi_list:
        pi, pj = np.concatenate(pi_list), np.concatenate(pj_list)
        # the tree also runs through towns (their main roads), so every village reaches its seat
        a, b = _tree_edges(nv, pi, pj, np.hypot(*(vc[pi] - vc[pj]).T))
        child, size = _subtree_sizes(nv, a, b, np.arange(t))
        cls = np.where(size[child] >= 3, "tertiary", "unclassified").astype(object)
        geoms.append(_wiggly(rng, vc[a], vc[b], 150.0, 0.06))
        hw.append(cls)
        ref = np.full(len(cls), None, dtype=object)
        n_t = int((cls == "tertiary").sum())
        ref[cls == "tertiary"] = [f"Y{i + 1:03d}" for i in range(n_t)]
        nm.append(ref)

    # ---- rural tracks between the hamlets of each village, and the hamlet lanes
    rural_groups = np.flatnonzero(~v_urban[g_village])
    if len(rural_groups):
        # tracks: a spanning tree over the hamlets of each village (the main hamlet is the centre)
        gv = g_village[rural_groups]
        order = np.argsort(gv, kind="stable")
        starts = np.r_[_group_starts(gv[order]), len(order)]
        ti, tj = [], []
        for k in range(len(starts) - 1):
            members = rural_groups[order[starts[k] : starts[k + 1]]]
            if len(members) > 1:
                p_, q_ = np.triu_indices(len(members), 1)
                ti.append(members[p_])
                tj.append(members[q_])
        if ti:
            pi_, pj_ = np.concatenate(ti), np.concatenate(tj)
            a, b = _tree_edges(len(gxy), pi_, pj_, np.hypot(*(gxy[pi_] - gxy[pj_]).T))
            geoms.append(_wiggly(rng, gxy[a], gxy[b], 100.0, 0.05))
            hw.append(np.full(len(a), "track", dtype=object))
            nm.append(np.full(len(a), None, dtype=object))
    rural_b = np.flatnonzero(~bld.urban & (bld.group >= 0))
    if len(rural_b):
        ng = len(gxy)
        ext = np.zeros(ng)
        np.maximum.at(ext, bld.group[rural_b], np.abs(bld.along[rural_b]))
        cnt = np.bincount(bld.group[rural_b], minlength=ng)
        # lane direction: from the hamlet's first house through the hamlet centre
        first = np.full(ng, -1, dtype=np.int64)
        first[bld.group[rural_b][::-1]] = rural_b[::-1]
        has = np.flatnonzero(cnt > 0)
        ang = bld.angle[first[has]]
        e = ext[has] + 12.0
        d = np.c_[np.cos(ang), np.sin(ang)] * e[:, None]
        # through the hamlet centre as a vertex, where the tracks and mountain paths end
        geoms.append(_lines(np.concatenate([gxy[has] - d, gxy[has], gxy[has] + d], axis=1).reshape(-1, 2),
                            np.arange(0, 3 * len(has) + 1, 3)))
        hw.append(np.where(cnt[has] >= 30, "residential", "path").astype(object))
        nm.append(np.full(len(has), None, dtype=object))
    # mountain paths from some hamlets into the hills, kept inside the village
    if len(rural_groups):
        pick = rural_groups[rng.uniform(size=len(rural_groups)) < 0.35]
        if len(pick):
            ang = rng.uniform(0, 2 * np.pi, len(pick))
            ln = rng.uniform(400.0, 1500.0, len(pick))
            end = gxy[pick] + np.c_[np.cos(ang), np.sin(ang)] * ln[:, None]
            paths = _wiggly(rng, gxy[pick], end, 60.0, 0.08)
            clipped = shapely.intersection(paths, v_poly[g_village[pick]])
            parts, pidx = shapely.get_parts(clipped, return_index=True)
            # keep the piece that leaves the hamlet (a path cut by the village border stops there)
            start = shapely.get_coordinates(shapely.get_point(parts, 0))
            at_home = np.hypot(*(start - gxy[pick][pidx]).T) < 1e-6
            parts = parts[(shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 50.0) & at_home]
            geoms.append(parts)
            hw.append(np.full(len(parts), "path", dtype=object))
            nm.append(np.full(len(parts), None, dtype=object))

    # ---- urban street grids, clipped to each community
    urban_v = np.flatnonzero(v_urban)
    if len(urban_v):
        perm = np.stack([rng.permutation(len(_STREET_STEMS)) for _ in range(t)])
        town = v_town[urban_v]
        th = street_theta[town]
        c, s = np.cos(th), np.sin(th)
        circ = shapely.minimum_bounding_circle(v_poly[urban_v])
        cc = shapely.get_coordinates(shapely.centroid(circ))
        rad = shapely.minimum_bounding_radius(v_poly[urban_v]) + _STREET
        rel = cc - seat_xy[town]
        u0 = rel[:, 0] * c + rel[:, 1] * s
        w0 = -rel[:, 0] * s + rel[:, 1] * c
        nl = 2 * np.ceil(rad / _STREET).astype(np.int64) + 1
        owner = np.repeat(np.arange(len(urban_v)), 2 * nl)
        k = np.arange(len(owner)) - np.repeat(np.r_[0, np.cumsum(2 * nl)[:-1]], 2 * nl)
        axis, idx = np.divmod(k, nl[owner])
        lo = np.where(axis == 0, np.floor((w0 - rad) / _STREET)[owner], np.floor((u0 - rad) / _STREET)[owner])
        line_no = (lo + idx).astype(np.int64)
        pos = line_no * _STREET
        # axis 0: constant w (runs along u, "路"); axis 1: constant u (runs along w, "街")
        ua = np.where(axis == 0, u0[owner] - rad[owner], pos)
        ub = np.where(axis == 0, u0[owner] + rad[owner], pos)
        wa = np.where(axis == 0, pos, w0[owner] - rad[owner])
        wb = np.where(axis == 0, pos, w0[owner] + rad[owner])
        co, so = c[owner], s[owner]
        o = seat_xy[town[owner]]
        pa = np.c_[o[:, 0] + ua * co - wa * so, o[:, 1] + ua * so + wa * co]
        pb = np.c_[o[:, 0] + ub * co - wb * so, o[:, 1] + ub * so + wb * co]
        lines = _lines(np.concatenate([pa, pb], axis=1).reshape(-1, 2), np.arange(0, 2 * len(owner) + 1, 2))
        clipped = shapely.intersection(lines, v_poly[urban_v[owner]])
        parts, pidx = shapely.get_parts(clipped, return_index=True)
        good = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 20.0)
        parts, pidx = parts[good], pidx[good]
        stem = np.array(_STREET_STEMS, dtype=object)[perm[town[owner[pidx]], line_no[pidx] % len(_STREET_STEMS)]]
        suffix = np.where(axis[pidx] == 0, "路", "街").astype(object)
        geoms.append(parts)
        hw.append(np.full(len(parts), "residential", dtype=object))
        nm.append(stem + suffix)

    g = np.concatenate(geoms) if geoms else np.empty(0, dtype=object)
    attrs = {"highway": np.concatenate(hw), "name": np.concatenate(nm)}
    g, attrs = _clip_lines(g, attrs, county)
    return _Lines(g, attrs)


# ---------------------------------------------------------------- points of interest


def _points_near(
    rng: np.random.Generator, anchor: Array, radius: Array, village: IArray, v_poly: GArray
) -> Array:
    """A random point within ``radius`` of ``anchor`` and inside the village; the anchor as fallback."""
    n = len(anchor)
    if n == 0:
        return np.zeros((0, 2))
    tries = 24
    r = radius[:, None] * np.sqrt(rng.uniform(0, 1, (n, tries)))
    a = rng.uniform(0, 2 * np.pi, (n, tries))
    x = anchor[:, 0:1] + r * np.cos(a)
    y = anchor[:, 1:2] + r * np.sin(a)
    polys = v_poly[village]
    with _prepared(polys):
        ok = shapely.contains_xy(np.repeat(polys[:, None], tries, axis=1), x, y)
        first = np.argmax(ok, axis=1)
        anyok = ok.any(axis=1)
        px = np.where(anyok, x[np.arange(n), first], anchor[:, 0])
        py = np.where(anyok, y[np.arange(n), first], anchor[:, 1])
        inside = shapely.contains_xy(polys, px, py)
    if not inside.all():
        fallback = shapely.get_coordinates(shapely.point_on_surface(polys[~inside]))
        px[~inside], py[~inside] = fallback[:, 0], fallback[:, 1]
    return np.c_[px, py]


def _pois(
    rng: np.random.Generator,
    t_kind: IArray,
    vc: Array,
    v_urban: BArray,
    v_poly: GArray,
    industry: NDArray[np.object_],
    bld: _Buildings,
    t_name: NDArray[np.object_],
    v_name: NDArray[np.object_],
    v_root: NDArray[np.object_],
    county_name: str,
    codes: _Codes,
) -> tuple[Array, Attrs]:
    """Schools, kindergartens, hospitals, clinics, mines and gated compounds.

    Why these: they are the sites DESIGN.md turns into exclusive grids (专属网格).
    Every township seat has a health centre (卫生院), a middle school, a central
    primary school and a kindergarten; the county seat has the county hospitals
    and senior middle schools; villages have clinics (卫生室) and some primary
    schools; mining villages have mines; apartment compounds are gated (小区).
    """
    nv = len(vc)
    cat: list[str] = []
    name: list[str] = []
    vil: list[int] = []
    anchor: list[Array] = []
    rad: list[float] = []

    def add(c: str, n: str, v: int, at: Array, r: float) -> None:
        cat.append(c)
        name.append(n)
        vil.append(v)
        anchor.append(at)
        rad.append(r)

    county_short = county_name[:-1]
    first_sub = True
    order_t = np.argsort(codes.township, kind="stable")
    n_middle = 0
    for ti in order_t:
        seat_v = int(ti)  # seats are the first villages, in township order
        at = vc[seat_v]
        tn = str(t_name[ti])
        if t_kind[ti] == 0 and first_sub:
            add("hospital", f"{county_short}县人民医院", seat_v, at, 600.0)
            add("hospital", f"{county_short}县中医院", seat_v, at, 900.0)
            add("school", f"{county_short}县第一中学", seat_v, at, 900.0)
            add("school", f"{county_short}县第二中学", seat_v, at, 1200.0)
            first_sub = False
        elif t_kind[ti] == 0:
            add("hospital", f"{tn}社区卫生服务中心", seat_v, at, 600.0)
            n_middle += 1
            add("school", f"{county_short}县第{_chinese_number(n_middle + 2)}中学", seat_v, at, 900.0)
        else:
            add("hospital", f"{tn}卫生院", seat_v, at, 400.0)
            add("school", f"{tn}中学", seat_v, at, 600.0)
        add("school", f"{tn}中心小学", seat_v, at, 500.0)
        add("kindergarten", f"{tn}中心幼儿园", seat_v, at, 500.0)
    hh = np.bincount(bld.village, bld.households, minlength=nv)
    u = rng.uniform(size=(nv, 5))
    radius = np.sqrt(shapely.area(v_poly)) * 0.35
    for vi in np.argsort(codes.village, kind="stable"):
        v = int(vi)
        root, vn, at, r = str(v_root[v]), str(v_name[v]), vc[v], float(radius[v])
        if v_urban[v]:
            if u[v, 0] < 0.5:
                add("clinic", f"{root}社区卫生服务站", v, at, r)
            if u[v, 1] < 0.3:
                add("school", f"{root}小学", v, at, r)
            if u[v, 2] < 0.5:
                add("kindergarten", f"{root}幼儿园", v, at, r)
        else:
            if u[v, 0] < 0.75:
                add("clinic", f"{vn}卫生室", v, at, 0.3 * r)
            if hh[v] >= 250 and u[v, 1] < 0.35 and v >= len(t_kind):
                add("school", f"{root}小学", v, at, r)
            if u[v, 2] < 0.08:
                add("kindergarten", f"{root}幼儿园", v, at, r)
            if industry[v] == "mining":
                n_mines = 1 + int(u[v, 3] * 3)
                minerals = rng.permutation(len(_MINERALS))[:n_mines]
                for mi in minerals:
                    add("mine", f"{root}{_MINERALS[mi]}矿", v, at, 2.5 * r)
    xy = _points_near(rng, np.array(anchor).reshape(-1, 2), np.array(rad), np.array(vil, dtype=np.int64), v_poly)
    cats = np.array(cat, dtype=object)
    nms = np.array(name, dtype=object)
    vils = np.array(vil, dtype=np.int64)

    # ---- gated compounds: street cells with at least two apartment blocks of one community
    ub = np.flatnonzero(bld.urban & (bld.cell >= 0))
    if len(ub):
        key = bld.village[ub] * np.int64(2**31) + bld.cell[ub]
        uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        sx = np.bincount(inv, bld.centre[ub, 0])
        sy = np.bincount(inv, bld.centre[ub, 1])
        first = np.full(len(uk), -1, dtype=np.int64)
        first[inv[::-1]] = ub[::-1]
        big = np.flatnonzero(cnt >= 2)
        cv = bld.village[first[big]]
        cxy = np.c_[sx[big] / cnt[big], sy[big] / cnt[big]]
        with _prepared(v_poly[cv]) as polys:
            inside = shapely.contains_xy(polys, cxy[:, 0], cxy[:, 1])
        cxy[~inside] = bld.centre[first[big][~inside]]
        combos = [a + b for a in _COMPOUND_STEMS for b in _COMPOUND_SUFFIXES]
        combos = [combos[i] for i in rng.permutation(len(combos))]
        cn = np.empty(len(big), dtype=object)
        order = np.lexsort((cxy[:, 0], -cxy[:, 1], codes.village[cv].astype(str)))
        for n_, k in enumerate(order):
            base = combos[n_ % len(combos)]
            cn[k] = base if n_ < len(combos) else f"{v_root[cv[k]]}{base}"
        xy = np.r_[xy, cxy]
        cats = np.r_[cats, np.full(len(big), "gated_compound", dtype=object)]
        nms = np.r_[nms, cn]
        vils = np.r_[vils, cv]
    return xy, {"category": cats, "name": nms, "village": vils.astype(object)}


# ---------------------------------------------------------------- output


def _assemble(
    rng: np.random.Generator,
    epsg: int,
    codes: _Codes,
    t_name: NDArray[np.object_],
    t_kind: IArray,
    v_name: NDArray[np.object_],
    v_town: IArray,
    v_urban: BArray,
    industry: NDArray[np.object_],
    t_poly: GArray,
    v_poly: GArray,
    g_poly: GArray,
    g_village: IArray,
    bld: _Buildings,
    roads: _Lines,
    water: _Lines,
    pois: tuple[Array, dict[str, NDArray[np.object_]]],
) -> dict[str, gpd.GeoDataFrame]:
    """GeoDataFrames in EPSG:4490, rows sorted by code."""
    tr = Transformer.from_crs(epsg, GEOGRAPHIC_EPSG, always_xy=True)

    def to_geo(p: Array) -> Array:
        x, y = tr.transform(p[:, 0], p[:, 1])
        return np.c_[x, y]

    nv = len(v_poly)
    t = len(t_poly)
    # ---- polygons of the three tiling layers: transform each distinct vertex once
    tiles = np.r_[t_poly, v_poly, g_poly]
    coords = shapely.get_coordinates(tiles)
    tiles = shapely.set_coordinates(tiles.copy(), _map_unique(coords, to_geo))
    t_geo, v_geo, g_geo = tiles[:t], tiles[t : t + nv], tiles[t + nv :]

    hh_v = np.bincount(bld.village, bld.households, minlength=nv).astype(np.int64)
    pop_v = np.round(hh_v * rng.uniform(2.5, 3.5, nv)).astype(np.int64)
    hh_t = np.bincount(v_town, hh_v, minlength=t).astype(np.int64)
    pop_t = np.bincount(v_town, pop_v, minlength=t).astype(np.int64)
    # households per group: every building was placed in a group; fallback buildings are located
    g_of_b = bld.group.copy()
    need = g_of_b < 0
    if need.any():
        tree = shapely.STRtree(g_poly)
        pts = shapely.points(bld.centre[need])
        pi, gi = tree.query(pts, predicate="within")
        ok = g_village[gi] == bld.village[need][pi]
        found = np.full(int(need.sum()), -1, dtype=np.int64)
        found[pi[ok]] = gi[ok]
        # a centre exactly on a group boundary: take any group of the right village
        miss = found < 0
        if miss.any():
            first_g = np.full(nv, -1, dtype=np.int64)
            first_g[g_village[::-1]] = np.arange(len(g_village))[::-1]
            found[miss] = first_g[bld.village[need][miss]]
        g_of_b[need] = found
    hh_g = np.bincount(g_of_b, bld.households, minlength=len(g_poly)).astype(np.int64)

    crs = f"EPSG:{GEOGRAPHIC_EPSG}"
    township = gpd.GeoDataFrame(
        {
            "code": codes.township,
            "name": t_name,
            "kind": np.array(TOWNSHIP_KINDS, dtype=object)[t_kind],
            "households": hh_t,
            "population": pop_t,
        },
        geometry=t_geo,
        crs=crs,
    )
    village = gpd.GeoDataFrame(
        {
            "code": codes.village,
            "name": v_name,
            "township": codes.township[v_town],
            "kind": np.where(v_urban, "urban", "rural").astype(object),
            "industry": industry,
            "population": pop_v,
            "households": hh_v,
        },
        geometry=v_geo,
        crs=crs,
    )
    label = np.where(v_urban[g_village], "居民小组", "村民小组")
    group = gpd.GeoDataFrame(
        {
            "code": codes.group,
            "name": np.array(
                [f"第{_chinese_number(int(n))}{lb}" for n, lb in zip(codes.group_number, label, strict=True)],
                dtype=object,
            ),
            "village": codes.village[g_village],
            "households": hh_g,
        },
        geometry=g_geo,
        crs=crs,
    )
    # ---- buildings: no shared vertices, transform straight
    n_b = len(bld.corners)
    bgeo = np.empty(n_b, dtype=object)
    for lo in range(0, n_b, 500_000):
        part = bld.corners[lo : lo + 500_000]
        bgeo[lo : lo + len(part)] = _polygons_from_rects(to_geo(part.reshape(-1, 2)).reshape(-1, 5, 2))
    v_rank = np.empty(nv, dtype=np.int64)
    v_rank[np.argsort(codes.village, kind="stable")] = np.arange(nv)
    border = np.lexsort((np.arange(len(bld.village)), v_rank[bld.village]))
    buildings = gpd.GeoDataFrame(
        {
            "households": bld.households[border],
            "levels": bld.levels[border],
            "village": codes.village[bld.village[border]],
        },
        geometry=bgeo[border],
        crs=crs,
    )

    def lines_frame(lines: _Lines, cols: Sequence[str]) -> gpd.GeoDataFrame:
        c = shapely.get_coordinates(lines.geometry)
        g = shapely.set_coordinates(lines.geometry.copy(), to_geo(c)) if len(c) else lines.geometry
        return gpd.GeoDataFrame({k: lines.attrs[k] for k in cols}, geometry=g, crs=crs)

    road = lines_frame(roads, ("highway", "name"))
    water_f = lines_frame(water, ("waterway", "name"))
    pxy, pattrs = pois
    pgeo = shapely.points(to_geo(pxy)) if len(pxy) else np.empty(0, dtype=object)
    poi = gpd.GeoDataFrame(
        {
            "category": pattrs["category"],
            "name": pattrs["name"],
            "village": codes.village[pattrs["village"].astype(np.int64)],
        },
        geometry=pgeo,
        crs=crs,
    )
    frames = {
        "townships": township.sort_values("code", kind="stable").reset_index(drop=True),
        "villages": village.sort_values("code", kind="stable").reset_index(drop=True),
        "villager_groups": group.sort_values("code", kind="stable").reset_index(drop=True),
        "buildings": buildings,
        "roads": road,
        "water": water_f,
        "pois": poi,
    }
    for name, gdf in frames.items():
        for col in gdf.columns:
            if gdf[col].dtype == object and col != gdf.geometry.name:
                gdf[col] = gdf[col].astype("string")
        frames[name] = gdf
    return frames


def write_county(layers: dict[str, gpd.GeoDataFrame], path: str | Path, *, progress: bool = False) -> None:
    """Write ``layers`` to one GeoPackage, one layer each, atomically.

    Why atomic: the sample county is committed and read by ``make run``; a run
    interrupted halfway must leave either the old file or the new one, never
    a truncated GeoPackage.  The layers go to a temporary directory next to
    ``path`` (same filesystem) and the finished file is moved over ``path``
    with :func:`os.replace`.

    Parameters
    ----------
    layers
        Layer name -> GeoDataFrame, as :func:`synth_county` returns.  Known
        layers are written in :data:`LAYERS` order, any others after them.
    path
        The GeoPackage to write (replaced if it exists).
    progress
        Show a tqdm progress bar over the layers (a province's buildings take ~20 s).

    Raises
    ------
    UsageError
        When ``layers`` is empty or holds something other than GeoDataFrames,
        or the target directory does not exist.
    """
    if not layers:
        raise UsageError("no layers to write")
    for name, gdf in layers.items():
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise UsageError(f"layer {name!r} is a {type(gdf).__name__}, not a GeoDataFrame")
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist", path=target)
    if target.is_dir():
        raise UsageError("is a directory; give the GeoPackage file to write", path=target)
    names = [n for n in LAYERS if n in layers] + sorted(n for n in layers if n not in LAYERS)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    try:
        tmp = tmpdir / target.name
        for name in tqdm(names, desc="write", disable=not progress, unit="layer"):
            gdf = layers[name]
            # attrs (e.g. GRIDGEO_SYNTHETIC) become layer metadata; dataset metadata is avoided
            # because GDAL then leaves a .aux.xml sidecar next to the file on every read
            meta = {k: str(v) for k, v in sorted(gdf.attrs.items()) if isinstance(k, str)}
            pyogrio.write_dataframe(gdf, tmp, layer=name, driver="GPKG", layer_metadata=meta or None)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    logger.info("synth: wrote %d layers to %s", len(names), target)
