"""Households on buildings: rural houses in hamlets along lanes, urban blocks on street grids.

Stages of :func:`draw_buildings`, in draw order: households per village (an urban community holds
about three villages' worth), rural houses one hamlet per villager group (:func:`_rural_houses`),
apartment blocks and shophouse rows on each town's street grid (:func:`_urban_blocks`), and last
the households that found no slot, spread over their village's buildings (or one fallback building
for a village that got none). The household total is met exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from tqdm import tqdm

from gridgeo.synth._arrays import Field, apportion, polygons_from_rects, prepared, rank_within, rects
from gridgeo.synth._constants import STREET, Array, BArray, GArray, IArray
from gridgeo.synth._tiling import Tiling


@dataclass
class Buildings:
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


def _concat_buildings(parts: Sequence[Buildings]) -> Buildings:
    """The buildings of ``parts`` one after the other."""
    return Buildings(
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


def _no_buildings() -> Buildings:
    """An empty set of buildings (a county whose rural groups all got none)."""
    return Buildings(
        corners=np.zeros((0, 5, 2)), households=np.zeros(0, np.int64), levels=np.zeros(0, np.int64),
        village=np.zeros(0, np.int64), centre=np.zeros((0, 2)), angle=np.zeros(0), urban=np.zeros(0, bool),
        cell=np.zeros(0, np.int64), group=np.zeros(0, np.int64), along=np.zeros(0),
    )


def _fallback_buildings(villages: IArray, hh: IArray, v_poly: GArray, v_urban: BArray) -> Buildings:
    """One building at the centre of the largest inscribed circle of villages that got none."""
    circles = shapely.maximum_inscribed_circle(v_poly[villages])
    centre = shapely.get_coordinates(shapely.get_point(circles, 0))
    r = shapely.length(circles)
    side = np.clip(r, 1.0, 10.0)
    coords = rects(centre[:, 0], centre[:, 1], side, side, np.zeros(len(villages)))
    n = len(villages)
    return Buildings(
        corners=coords, households=hh.astype(np.int64), levels=np.ones(n, np.int64),
        village=villages, centre=centre, angle=np.zeros(n), urban=v_urban[villages], cell=np.full(n, -1),
        group=np.full(n, -1), along=np.zeros(n),
    )


# ---------------------------------------------------------------- households per village


def _village_households(rng: np.random.Generator, tiling: Tiling, households: int, mountain: Field) -> IArray:
    """Households per village (at least one each): an urban community holds ~3 villages' worth."""
    vc, v_urban, v_poly = tiling.villages.centre, tiling.villages.urban, tiling.villages.poly
    nv = len(vc)
    v_area = shapely.area(v_poly)
    e = mountain(vc[:, 0], vc[:, 1])
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
    return 1 + apportion(np.array([households - nv]), w, np.zeros(nv, dtype=np.int64))


# ---------------------------------------------------------------- rural hamlets


_HOUSE_ALONG = 16.0  # slot spacing along a hamlet lane
_HOUSE_ROW = 22.0  # slot spacing between rows
_HOUSE_FIRST_ROW = 13.0  # first row's distance from the lane centre


@dataclass(frozen=True)
class _Hamlets:
    """Per rural villager group: its households, lane and candidate slots (the hamlet plan)."""

    rural_g: IArray  # the rural groups (indices into the tiling's groups)
    village: IArray  # their villages
    households: IArray  # households per group
    n_two: IArray  # houses that hold two households
    n_houses: IArray  # houses to place
    m: IArray  # candidate slots per group
    slots: Array  # canonical (along, across) slots, shared by all groups
    stretch: Array  # lane stretch factor
    theta: Array  # lane direction
    centre: Array  # group centre
    polys: GArray  # group polygons (prepared while houses are placed)


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


def _plan_hamlets(rng: np.random.Generator, tiling: Tiling, h_v: IArray, rural_g: IArray) -> _Hamlets:
    """Households per rural group, in proportion to area with noise, and each hamlet's lane."""
    g_poly, g_village, gxy = tiling.groups.poly, tiling.groups.village, tiling.groups.xy
    main_group, vc, v_town = tiling.villages.main_group, tiling.villages.centre, tiling.villages.town
    seat_xy = tiling.townships.seat
    gv = g_village[rural_g]
    area = shapely.area(g_poly[rural_g])
    # households per group, in proportion to area with noise
    vid, lab = np.unique(gv, return_inverse=True)
    h_g = apportion(h_v[vid], area**0.7 * rng.uniform(0.5, 1.5, len(rural_g)), lab.ravel())
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
    return _Hamlets(
        rural_g=rural_g, village=gv, households=h_g, n_two=n_two, n_houses=n_h, m=m, slots=slots,
        stretch=stretch, theta=theta, centre=gxy[rural_g], polys=g_poly[rural_g],
    )


def _rural_houses(
    rng: np.random.Generator, tiling: Tiling, h_v: IArray, rural_g: IArray, *, progress: bool
) -> Buildings:
    """Houses of 1 (sometimes 2) households on slots along each hamlet's lane.

    The hamlet lane runs from the hamlet towards the village centre (for the
    main hamlet: towards the township seat), houses face it in rows, and a
    house is kept only if it lies well inside its villager group.
    """
    plan = _plan_hamlets(rng, tiling, h_v, rural_g)
    m, polys = plan.m, plan.polys
    shapely.prepare(polys)  # released below
    # groups are handled in chunks of ~250k candidate slots, which bounds the memory
    ends = np.searchsorted(np.cumsum(m), np.arange(250_000, int(m.sum()) + 250_000, 250_000), side="right")
    bounds = np.unique(np.r_[0, np.minimum(ends, len(m)), len(m)])
    parts: list[Buildings] = []
    for g0, g1 in tqdm(
        list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)),
        desc="hamlets", disable=not progress, leave=False, unit="chunk",
    ):
        parts.append(_hamlets(rng, plan, np.arange(g0, g1)))
    shapely.destroy_prepared(polys)
    return _concat_buildings(parts) if parts else _concat_buildings([_no_buildings()])


def _hamlets(rng: np.random.Generator, plan: _Hamlets, groups: IArray) -> Buildings:
    """Houses of the hamlets of ``groups`` (indices into the rural-group arrays)."""
    m, n_h, n_two, h_g, slots = plan.m, plan.n_houses, plan.n_two, plan.households, plan.slots
    stretch, theta, centre, polys = plan.stretch, plan.theta, plan.centre, plan.polys
    gv, rural_g = plan.village, plan.rural_g
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
    grown = polygons_from_rects(rects(cx, cy, length + 3.0, depth + 3.0, angle))
    ok = shapely.contains(polys[owner], grown)
    del grown
    prio = k / np.maximum(m[owner], 1) + rng.uniform(0.0, 0.6, len(owner))
    sel = np.flatnonzero(ok)
    sel = sel[np.lexsort((sel, prio[sel], owner[sel]))]
    rank = rank_within(owner[sel])
    sel = sel[rank < n_h[owner[sel]]]
    # households: each placed house 1; the first n_two placed houses of a group get 2
    o = owner[sel]
    r = rank_within(o)
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
    return Buildings(
        corners=rects(cx[sel], cy[sel], length[sel], depth[sel], angle[sel]), households=hh, levels=levels,
        village=gv[o], centre=np.c_[cx[sel], cy[sel]], angle=angle[sel], urban=np.zeros(len(sel), bool),
        cell=np.full(len(sel), -1), group=rural_g[o], along=along[sel],
    )


# ---------------------------------------------------------------- urban blocks


@dataclass(frozen=True)
class _Blocks:
    """Per urban villager group: households, apartment blocks and shophouses to place."""

    ug: IArray  # the urban groups (indices into the tiling's groups)
    village: IArray  # their villages
    households: IArray  # households per group
    n_apt: IArray  # apartment blocks per group
    n_shop: IArray  # shophouses per group
    n_slot: IArray  # slots per group: one per block, one per row of up to four shophouses
    apt_hh: IArray  # households of every apartment block, group after group
    shop_hh: IArray  # households of every shophouse, group after group
    apt_start: IArray  # first block of each group in apt_hh
    shop_start: IArray  # first shophouse of each group in shop_hh


@dataclass(frozen=True)
class _Slots:
    """The street-grid slots each urban group fills, nearest its centre first."""

    x: Array
    y: Array
    owner: IArray  # index into the urban groups
    rank: IArray  # rank of the slot within its group
    ci: IArray  # street cell (i, j) on the town's grid
    cj: IArray
    theta: Array  # street-grid orientation per urban group
    town: IArray  # township per urban group


@dataclass(frozen=True)
class _Placed:
    """Buildings of one kind placed on slots (metric), before the shortfall is spread."""

    x: Array
    y: Array
    length: Array
    depth: Array
    theta: Array
    owner: IArray
    households: IArray
    levels: IArray


def _plan_blocks(rng: np.random.Generator, tiling: Tiling, h_v: IArray) -> _Blocks:
    """Households per urban group, split between apartment blocks (about 70 %) and shophouses."""
    g_poly, g_village, v_urban = tiling.groups.poly, tiling.groups.village, tiling.villages.urban
    ug = np.flatnonzero(v_urban[g_village])
    gv = g_village[ug]
    vid, lab = np.unique(gv, return_inverse=True)
    ng = len(ug)
    h_g = apportion(h_v[vid], shapely.area(g_poly[ug]) * rng.uniform(0.7, 1.3, ng), lab.ravel())
    n_a = np.round(0.7 * h_g / 60.0).astype(np.int64)
    apt = np.where(n_a > 0, np.clip(np.round(h_g * rng.uniform(0.6, 0.8, ng)), 20 * n_a, 110 * n_a), 0)
    apt = np.minimum(apt, h_g).astype(np.int64)
    h_s = h_g - apt
    n_s = np.ceil(h_s / 3.0).astype(np.int64)  # shophouses: 1-5 households, mostly 2-4
    n_rows = np.ceil(n_s / 4.0).astype(np.int64)
    n_slot = n_a + n_rows
    a_hh = 1 + apportion(apt - n_a, rng.uniform(0.6, 1.4, int(n_a.sum())), np.repeat(np.arange(ng), n_a))
    s_hh = 1 + apportion(h_s - n_s, rng.uniform(0.5, 1.5, int(n_s.sum())), np.repeat(np.arange(ng), n_s))
    a_start = np.r_[0, np.cumsum(n_a)[:-1]]
    s_start = np.r_[0, np.cumsum(n_s)[:-1]]
    return _Blocks(
        ug=ug, village=gv, households=h_g, n_apt=n_a, n_shop=n_s, n_slot=n_slot, apt_hh=a_hh, shop_hh=s_hh,
        apt_start=a_start, shop_start=s_start,
    )


def _street_slots(rng: np.random.Generator, tiling: Tiling, plan: _Blocks, street_theta: Array) -> _Slots:
    """The ``n_slot`` free slots nearest each group's centre that lie well inside the group."""
    ug, gv, n_slot = plan.ug, plan.village, plan.n_slot
    g_poly, gxy = tiling.groups.poly, tiling.groups.xy
    ng = len(ug)
    town = tiling.villages.town[gv]
    theta = street_theta[town]
    origin = tiling.townships.seat[town]
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
    ci = np.floor(u0 / STREET).astype(np.int64)[owner] - half[owner] + cell_k % span[owner]
    cj = np.floor(w0 / STREET).astype(np.int64)[owner] - half[owner] + cell_k // span[owner]
    su = ci * STREET + np.array([50.0, 150.0])[slot % 2]
    sw = cj * STREET + np.array([30.0, 65.0, 100.0, 135.0, 170.0])[slot // 2]
    key = np.hypot(su - u0[owner], sw - w0[owner]) + rng.uniform(0.0, 60.0, len(owner))
    # keep the 3 * n + 10 nearest slots per group, then test containment on those only
    order = np.lexsort((np.arange(len(owner)), key, owner))
    rank = rank_within(owner[order])
    cand = order[rank < 3 * n_slot[owner[order]] + 10]
    co, so = c[owner[cand]], s[owner[cand]]
    x = origin[owner[cand], 0] + su[cand] * co - sw[cand] * so
    y = origin[owner[cand], 1] + su[cand] * so + sw[cand] * co
    grown = polygons_from_rects(rects(x, y, np.full(len(cand), 66.0), np.full(len(cand), 20.0), theta[owner[cand]]))
    with prepared(g_poly[ug]) as polys:
        ok = shapely.contains(polys[owner[cand]], grown)
    sel = np.flatnonzero(ok)  # cand is in key order within each group
    o = owner[cand[sel]]
    keep = rank_within(o) < n_slot[o]
    sel, o = sel[keep], o[keep]
    return _Slots(
        x=x[sel], y=y[sel], owner=o, rank=rank_within(o), ci=ci[cand[sel]], cj=cj[cand[sel]], theta=theta,
        town=town,
    )


def _apartments(rng: np.random.Generator, plan: _Blocks, slots: _Slots, ai: IArray) -> _Placed:
    """One apartment block (6-18 levels) on each slot ``ai``: the slots nearest the group centre."""
    o, r2 = slots.owner, slots.rank
    a_len = rng.uniform(45.0, 62.0, len(ai))
    a_dep = rng.uniform(12.0, 16.0, len(ai))
    a_h = plan.apt_hh[plan.apt_start[o[ai]] + r2[ai]]
    units = rng.integers(2, 8, len(ai))
    a_lev = np.clip(np.ceil(a_h / units), 6, 18).astype(np.int64)
    return _Placed(
        x=slots.x[ai], y=slots.y[ai], length=a_len, depth=a_dep, theta=slots.theta[o[ai]], owner=o[ai],
        households=a_h, levels=a_lev,
    )


def _shophouses(rng: np.random.Generator, plan: _Blocks, slots: _Slots, si: IArray) -> _Placed:
    """Shophouse rows on the slots ``si``: up to four 12 m houses side by side in the slot."""
    o, r2, n_a, n_s = slots.owner, slots.rank, plan.n_apt, plan.n_shop
    q = r2[si] - n_a[o[si]]
    cnt = np.clip(n_s[o[si]] - 4 * q, 0, 4)
    row = np.repeat(si, cnt)
    kk = np.arange(len(row)) - np.repeat(np.r_[0, np.cumsum(cnt)[:-1]], cnt)
    shift = (kk - (np.repeat(cnt, cnt) - 1) / 2.0) * 15.0
    th_row = slots.theta[o[row]]
    sx = slots.x[row] + shift * np.cos(th_row)
    sy = slots.y[row] + shift * np.sin(th_row)
    s_h = plan.shop_hh[plan.shop_start[o[row]] + 4 * np.repeat(q, cnt) + kk]
    s_dep = rng.uniform(10.0, 13.0, len(row))
    s_lev = rng.integers(2, 6, len(row))
    return _Placed(
        x=sx, y=sy, length=np.full(len(row), 12.0), depth=s_dep, theta=th_row, owner=o[row], households=s_h,
        levels=s_lev,
    )


def _spread_shortfall(h_g: IArray, bo: IArray, hh: IArray) -> IArray:
    """Households whose slot did not fit, spread round-robin over the group's placed buildings."""
    ng = len(h_g)
    placed = np.bincount(bo, minlength=ng)
    short = h_g - np.bincount(bo, hh, minlength=ng).astype(np.int64)
    fix = (short > 0) & (placed > 0)
    if fix.any():
        order = np.argsort(bo, kind="stable")
        rr = np.empty(len(bo), dtype=np.int64)
        rr[order] = rank_within(bo[order])
        pl = np.maximum(placed[bo], 1)
        hh = hh + np.where(fix[bo], short[bo] // pl + (rr < short[bo] % pl), 0)
    return hh


def _urban_blocks(rng: np.random.Generator, tiling: Tiling, h_v: IArray, street_theta: Array) -> Buildings:
    """Apartment blocks and rows of shophouses on each town's street grid.

    Every town with urban communities has one street grid (orientation and
    origin at the seat); a 200 m street cell holds two columns of five 60 x 15 m
    slots, set back from the streets.  A slot takes either one apartment block
    (20-120 households, 6-18 levels) or a row of up to four shophouses (1-5
    households, 2-5 levels) -- the mix of a Chinese county town.  Each
    residents' group fills the slots nearest its centre first, so towns have
    dense cores.
    """
    plan = _plan_blocks(rng, tiling, h_v)
    slots = _street_slots(rng, tiling, plan, street_theta)
    # apartments take the slots nearest the group centre (a compound), shophouses the rest
    is_apt = slots.rank < plan.n_apt[slots.owner]
    ai = np.flatnonzero(is_apt)
    apt = _apartments(rng, plan, slots, ai)
    shop = _shophouses(rng, plan, slots, np.flatnonzero(~is_apt))
    bx = np.r_[apt.x, shop.x]
    by = np.r_[apt.y, shop.y]
    blen = np.r_[apt.length, shop.length]
    bdep = np.r_[apt.depth, shop.depth]
    bth = np.r_[apt.theta, shop.theta]
    bo = np.r_[apt.owner, shop.owner]
    hh = np.r_[apt.households, shop.households].astype(np.int64)
    lev = np.r_[apt.levels, shop.levels].astype(np.int64)
    hh = _spread_shortfall(plan.households, bo, hh)
    # dense ids of street cells (town, i, j) of apartment blocks: candidates for gated compounds
    cell_id = np.full(len(bo), -1, dtype=np.int64)
    if len(ai):
        ck = np.c_[slots.town[slots.owner[ai]], slots.ci[ai], slots.cj[ai]]
        cell_id[: len(ai)] = np.unique(ck, axis=0, return_inverse=True)[1].ravel()
    coords = rects(bx, by, blen, bdep, bth)
    return Buildings(
        corners=coords, households=hh, levels=lev, village=plan.village[bo],
        centre=np.c_[bx, by], angle=bth, urban=np.ones(len(bo), bool), cell=cell_id,
        group=plan.ug[bo], along=np.zeros(len(bo)),
    )


# ---------------------------------------------------------------- the driver


def _fill_deficit(b: Buildings, h_v: IArray, tiling: Tiling) -> Buildings:
    """Households that found no slot go to the village's existing buildings (or a fallback building)."""
    v_poly, v_urban = tiling.villages.poly, tiling.villages.urban
    nv = len(h_v)
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
            rank = rank_within(b.village[order])
            cnt = np.bincount(b.village[order], minlength=nv)
            d = deficit[b.village[order]]
            c = cnt[b.village[order]]
            hh[order] += d // c + (rank < d % c)
        b.households = hh
        empty = np.flatnonzero((deficit > 0) & ~has)
        if len(empty):
            parts = [b, _fallback_buildings(empty, deficit[empty], v_poly, v_urban)]
            b = _concat_buildings(parts)
    return b


def draw_buildings(
    rng: np.random.Generator,
    tiling: Tiling,
    *,
    households: int,
    street_theta: Array,
    mountain: Field,
    progress: bool,
) -> Buildings:
    """Households per village, then rural houses in hamlets and urban apartment blocks."""
    v_urban, g_village = tiling.villages.urban, tiling.groups.village
    h_v = _village_households(rng, tiling, households, mountain)
    parts: list[Buildings] = []
    # ---- rural houses, one hamlet per villager group
    rural_g = np.flatnonzero(~v_urban[g_village])
    if len(rural_g):
        parts.append(_rural_houses(rng, tiling, h_v, rural_g, progress=progress))
    if v_urban.any():
        parts.append(_urban_blocks(rng, tiling, h_v, street_theta))
    b = _fill_deficit(_concat_buildings(parts), h_v, tiling)
    got = int(b.households.sum())
    if got != households:
        raise RuntimeError(f"synth placed {got} households instead of {households}; this is a bug")
    return b
