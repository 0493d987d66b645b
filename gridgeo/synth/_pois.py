"""What villages live on and the sites they hold: industries and points of interest.

:func:`draw_industry` scores each industry per village from terrain, rivers and towns plus smooth
noise, so similar villages sit together (a tea valley, a mining district). :func:`draw_pois`
places the sites DESIGN.md turns into exclusive grids (专属网格): the hospitals and schools of
every township seat, village clinics and schools, mines in mining villages, and gated compounds
(小区) where a street cell holds two apartment blocks of one community.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridgeo.synth._arrays import Field, prepared
from gridgeo.synth._buildings import Buildings
from gridgeo.synth._constants import INDUSTRIES, Array, Attrs, BArray, GArray, IArray
from gridgeo.synth._names import COMPOUND_STEMS, COMPOUND_SUFFIXES, MINERALS, Codes, PlaceNames, chinese_number
from gridgeo.synth._seeds import Land
from gridgeo.synth._tiling import Tiling

ObjArray = NDArray[np.object_]


@dataclass(frozen=True)
class Points:
    """Points with their attribute columns, in the metric CRS."""

    xy: Array
    attrs: Attrs


# ---------------------------------------------------------------- industry


def draw_industry(rng: np.random.Generator, tiling: Tiling, land: Land, river_pts: Array) -> ObjArray:
    """Industry per village: terrain, rivers and towns score each option, plus smooth noise.

    Why smooth noise fields: they make similar villages adjacent (a tea
    valley, a mining district), the clustering a block partition must cope with.
    """
    vc, v_urban, seat_xy = tiling.villages.centre, tiling.villages.urban, tiling.townships.seat
    mountain, origin = land.mountain, land.centre
    x, y = vc[:, 0], vc[:, 1]
    e = mountain(x, y)
    dr = cKDTree(river_pts).query(vc)[0] / 1000.0
    ds = cKDTree(seat_xy).query(vc)[0] / 1000.0
    noise = np.stack([Field(rng, 5, (8000.0, 30000.0), origin)(x, y) for _ in INDUSTRIES], axis=1)
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
    with prepared(polys):
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


# ---------------------------------------------------------------- points of interest


@dataclass
class _Sites:
    """Sites collected in code order; each is placed near its village's centre later."""

    category: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    village: list[int] = field(default_factory=list)
    radius: list[float] = field(default_factory=list)

    def add(self, category: str, name: str, village: int, radius: float) -> None:
        self.category.append(category)
        self.name.append(name)
        self.village.append(village)
        self.radius.append(radius)


@dataclass(frozen=True)
class _Villages:
    """What decides the sites of a village."""

    names: PlaceNames
    urban: BArray
    industry: ObjArray
    households: IArray
    radius: Array  # how far from the centre a village's sites may be (m)
    n_seats: int  # villages below this are township seats


def _seat_sites(sites: _Sites, tiling: Tiling, names: PlaceNames, codes: Codes) -> None:
    """Every seat: a health centre, a middle school, a central primary school and a kindergarten.

    The first county seat has the county hospitals and senior middle schools instead.
    """
    t_kind, t_name = tiling.townships.kind, names.township
    county_short = names.county[:-1]
    first_sub = True
    order_t = np.argsort(codes.township, kind="stable")
    n_middle = 0
    for ti in order_t:
        seat_v = int(ti)  # seats are the first villages, in township order
        tn = str(t_name[ti])
        if t_kind[ti] == 0 and first_sub:
            sites.add("hospital", f"{county_short}县人民医院", seat_v, 600.0)
            sites.add("hospital", f"{county_short}县中医院", seat_v, 900.0)
            sites.add("school", f"{county_short}县第一中学", seat_v, 900.0)
            sites.add("school", f"{county_short}县第二中学", seat_v, 1200.0)
            first_sub = False
        elif t_kind[ti] == 0:
            sites.add("hospital", f"{tn}社区卫生服务中心", seat_v, 600.0)
            n_middle += 1
            sites.add("school", f"{county_short}县第{chinese_number(n_middle + 2)}中学", seat_v, 900.0)
        else:
            sites.add("hospital", f"{tn}卫生院", seat_v, 400.0)
            sites.add("school", f"{tn}中学", seat_v, 600.0)
        sites.add("school", f"{tn}中心小学", seat_v, 500.0)
        sites.add("kindergarten", f"{tn}中心幼儿园", seat_v, 500.0)


def _urban_sites(sites: _Sites, vs: _Villages, v: int, u: Array) -> None:
    """A community's health station, primary school and kindergarten, each by chance ``u``."""
    root, r = str(vs.names.village_root[v]), float(vs.radius[v])
    if u[0] < 0.5:
        sites.add("clinic", f"{root}社区卫生服务站", v, r)
    if u[1] < 0.3:
        sites.add("school", f"{root}小学", v, r)
    if u[2] < 0.5:
        sites.add("kindergarten", f"{root}幼儿园", v, r)


def _rural_sites(rng: np.random.Generator, sites: _Sites, vs: _Villages, v: int, u: Array) -> None:
    """A village's clinic, school (large non-seat villages), kindergarten, and mines if it mines."""
    root, vn, r = str(vs.names.village_root[v]), str(vs.names.village[v]), float(vs.radius[v])
    if u[0] < 0.75:
        sites.add("clinic", f"{vn}卫生室", v, 0.3 * r)
    if vs.households[v] >= 250 and u[1] < 0.35 and v >= vs.n_seats:
        sites.add("school", f"{root}小学", v, r)
    if u[2] < 0.08:
        sites.add("kindergarten", f"{root}幼儿园", v, r)
    if vs.industry[v] == "mining":
        n_mines = 1 + int(u[3] * 3)
        minerals = rng.permutation(len(MINERALS))[:n_mines]
        for mi in minerals:
            sites.add("mine", f"{root}{MINERALS[mi]}矿", v, 2.5 * r)


def _village_sites(rng: np.random.Generator, sites: _Sites, vs: _Villages, codes: Codes) -> None:
    """The sites of every village, in code order."""
    u = rng.uniform(size=(len(vs.urban), 5))
    for vi in np.argsort(codes.village, kind="stable"):
        v = int(vi)
        if vs.urban[v]:
            _urban_sites(sites, vs, v, u[v])
        else:
            _rural_sites(rng, sites, vs, v, u[v])


def _gated_compounds(
    rng: np.random.Generator, bld: Buildings, v_poly: GArray, v_code: ObjArray, v_root: ObjArray
) -> tuple[Array, ObjArray, IArray] | None:
    """Street cells with at least two apartment blocks of one community: position, name, village."""
    ub = np.flatnonzero(bld.urban & (bld.cell >= 0))
    if not len(ub):
        return None
    key = bld.village[ub] * np.int64(2**31) + bld.cell[ub]
    uk, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    sx = np.bincount(inv, bld.centre[ub, 0])
    sy = np.bincount(inv, bld.centre[ub, 1])
    first = np.full(len(uk), -1, dtype=np.int64)
    first[inv[::-1]] = ub[::-1]
    big = np.flatnonzero(cnt >= 2)
    cv = bld.village[first[big]]
    cxy = np.c_[sx[big] / cnt[big], sy[big] / cnt[big]]
    with prepared(v_poly[cv]) as polys:
        inside = shapely.contains_xy(polys, cxy[:, 0], cxy[:, 1])
    cxy[~inside] = bld.centre[first[big][~inside]]
    combos = [a + b for a in COMPOUND_STEMS for b in COMPOUND_SUFFIXES]
    combos = [combos[i] for i in rng.permutation(len(combos))]
    cn = np.empty(len(big), dtype=object)
    order = np.lexsort((cxy[:, 0], -cxy[:, 1], v_code[cv].astype(str)))
    for n_, k in enumerate(order):
        base = combos[n_ % len(combos)]
        cn[k] = base if n_ < len(combos) else f"{v_root[cv[k]]}{base}"
    return cxy, cn, cv


def draw_pois(
    rng: np.random.Generator,
    tiling: Tiling,
    bld: Buildings,
    *,
    names: PlaceNames,
    codes: Codes,
    industry: ObjArray,
) -> Points:
    """Schools, kindergartens, hospitals, clinics, mines and gated compounds.

    Why these: they are the sites DESIGN.md turns into exclusive grids (专属网格).
    Every township seat has a health centre (卫生院), a middle school, a central
    primary school and a kindergarten; the county seat has the county hospitals
    and senior middle schools; villages have clinics (卫生室) and some primary
    schools; mining villages have mines; apartment compounds are gated (小区).
    """
    vc, v_poly = tiling.villages.centre, tiling.villages.poly
    sites = _Sites()
    _seat_sites(sites, tiling, names, codes)
    vs = _Villages(
        names=names, urban=tiling.villages.urban, industry=industry,
        households=np.bincount(bld.village, bld.households, minlength=len(vc)),
        radius=np.sqrt(shapely.area(v_poly)) * 0.35, n_seats=len(tiling.townships.kind),
    )
    _village_sites(rng, sites, vs, codes)
    vils = np.array(sites.village, dtype=np.int64)
    xy = _points_near(rng, vc[vils].reshape(-1, 2), np.array(sites.radius), vils, v_poly)
    cats = np.array(sites.category, dtype=object)
    nms = np.array(sites.name, dtype=object)
    compounds = _gated_compounds(rng, bld, v_poly, codes.village, names.village_root)
    if compounds is not None:
        cxy, cn, cv = compounds
        xy = np.r_[xy, cxy]
        cats = np.r_[cats, np.full(len(cn), "gated_compound", dtype=object)]
        nms = np.r_[nms, cn]
        vils = np.r_[vils, cv]
    return Points(xy, {"category": cats, "name": nms, "village": vils.astype(object)})
