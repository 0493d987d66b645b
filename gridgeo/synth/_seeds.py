"""Where things go before any polygon exists: the outline, township seats, village and group seeds.

Stages, called in this order by :func:`gridgeo.synth.county.synth_county` (each draws from the
one generator, so the order is part of the county):

1. :func:`draw_land` -- counts per township slot, a noisy star-shaped outline whose area
   follows the number of villages, and the mountain field.
2. :func:`place_townships` -- seats by Lloyd relaxation; the most central is the county seat.
3. :func:`seed_villages` -- a hexagonal cluster of urban communities around seats, rural
   villages by a density-weighted Lloyd relaxation, the township of every village by a power
   diagram, rural seeds pushed out of the towns.
4. :func:`seed_groups` -- villager-group seeds by a Lloyd relaxation inside each village's
   territory (:func:`owners` says which village a point belongs to).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridgeo.synth._arrays import Field, lloyd, rank_within, sample_in, snap_inside
from gridgeo.synth._constants import (
    ATOM_RURAL,
    ATOM_URBAN,
    GROUP_M2,
    MARGIN,
    RURAL_M2,
    URBAN_M2,
    Array,
    BArray,
    IArray,
)

#: Side of the hexagonal cell of the mean urban community: the spacing of a town's communities.
COMMUNITY_SPACING = math.sqrt(URBAN_M2 * 2 / math.sqrt(3))


@dataclass(frozen=True)
class Plan:
    """Kinds and urban counts per township *slot*, fixed before any position is known.

    Why slots: the county area depends on how many villages are urban, and the
    seats' positions depend on the area, so counts are fixed first and mapped
    onto positions afterwards.
    """

    kind: IArray  # index into TOWNSHIP_KINDS
    seat_urban: BArray  # is the seat village an urban community?
    extras: IArray  # urban communities besides the seat


@dataclass(frozen=True)
class Land:
    """The county's outline and the fields every later stage draws against (metric CRS)."""

    outline: shapely.Geometry
    inner: shapely.Geometry  # the outline shrunk by MARGIN (prepared): seeds stay inside it
    centre: tuple[float, float]  # the requested centre
    radius: float  # radius of a disc of the county's planned area
    mountain: Field  # high in the mountains, low in the plains


@dataclass
class Seats:
    """Township seats and their kinds, in generation order (not code order)."""

    xy: Array  # seat positions
    kind: NDArray[np.int64]  # index into TOWNSHIP_KINDS
    seat_urban: BArray  # is the seat village an urban community?
    extras: IArray  # urban communities besides the seat
    weight: Array  # power-diagram weight (m2): larger townships claim more villages


@dataclass(frozen=True)
class VillageSeeds:
    """Village centres before the tiling, seats first (village ``i < n_seats`` is township ``i``'s seat)."""

    xy: Array
    urban: BArray
    cluster: IArray  # township slot whose town an urban community belongs to; -1 for rural villages
    cap: Array  # how far an urban community reaches from its centre (m)
    town: IArray  # township by power distance, before contiguity repair
    n_seats: int


@dataclass(frozen=True)
class GroupSeeds:
    """Villager-group seeds, sorted by village."""

    xy: Array
    village: IArray


# ---------------------------------------------------------------- 1. the land


def _plan_counts(rng: np.random.Generator, t: int, v: int) -> Plan:
    """Kinds, urban seats and urban extras per township slot (see :class:`Plan`)."""
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
    return Plan(kind=kind, seat_urban=seat_urban, extras=extras)


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


def draw_land(
    rng: np.random.Generator, *, townships: int, villages: int, centre: tuple[float, float]
) -> tuple[Plan, Land]:
    """The township plan, then an outline whose area follows the number of (urban) villages."""
    cx, cy = centre
    plan = _plan_counts(rng, townships, villages)
    n_urban = int(plan.seat_urban.sum() + plan.extras.sum())
    area = (villages - n_urban) * RURAL_M2 + n_urban * URBAN_M2
    outline = _blob(rng, area, cx, cy)
    inner = shapely.buffer(outline, -MARGIN, quad_segs=16)  # Geometry.buffer's default
    shapely.prepare(inner)
    radius = math.sqrt(area / math.pi)
    mountain = Field(rng, 8, (0.25 * radius + 8000, 0.9 * radius + 30000), (cx, cy))
    return plan, Land(outline=outline, inner=inner, centre=centre, radius=radius, mountain=mountain)


# ---------------------------------------------------------------- 2. township seats


def place_townships(rng: np.random.Generator, land: Land, plan: Plan) -> Seats:
    """Seats by Lloyd relaxation; the most central seats become subdistricts (街道)."""
    inner, kind = land.inner, plan.kind
    t = len(kind)
    cloud = sample_in(rng, inner, max(40 * t, 6000))
    xy = lloyd(cloud[:t].copy(), cloud, rounds=3)
    xy = snap_inside(xy, inner, cloud)
    n_sub = int((kind == 0).sum())
    # county seat: the seat nearest a point somewhat off the centre (real seats rarely sit dead centre)
    radius = math.sqrt(float(shapely.area(inner)) / math.pi)
    target = np.array(land.centre) + rng.normal(0.0, 0.15 * radius, 2)
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
    return Seats(xy=xy, kind=kind, seat_urban=plan.seat_urban, extras=plan.extras, weight=weight)


# ---------------------------------------------------------------- 3. village seeds


def hex_offsets(n: int) -> Array:
    """The ``n`` points of a unit hexagonal lattice nearest the origin (origin first)."""
    r = math.ceil(math.sqrt(n)) + 2
    i, j = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1))
    x = (i + 0.5 * j).ravel()
    y = (j * math.sqrt(3) / 2).ravel()
    d = np.hypot(x, y)
    order = np.lexsort((np.arctan2(y, x), d))
    return np.c_[x, y][order][:n]


def _urban_clusters(rng: np.random.Generator, tw: Seats, inner: shapely.Geometry) -> tuple[Array, IArray]:
    """The seats, then a jittered hexagonal cluster of communities around every seat that has extras.

    Returns the positions and the planned township (slot) of each.
    """
    t = len(tw.xy)
    spacing = COMMUNITY_SPACING
    pos = [tw.xy]
    planned = [np.arange(t)]
    for i in np.flatnonzero(tw.extras > 0):
        n = int(tw.extras[i])
        lat = hex_offsets(2 * n + 12)[1:] * spacing
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
    return fixed, plan


def _rural_villages(rng: np.random.Generator, tw: Seats, land: Land, fixed: Array, n_villages: int) -> Array:
    """Rural village seeds, spread by a Lloyd relaxation weighted towards plains and towns."""
    inner, mountain = land.inner, land.mountain
    n_rural = n_villages - len(fixed)
    seats = tw.xy

    def density(x: Array, y: Array) -> Array:
        # plains are denser than mountains; villages crowd around towns
        d, _ = cKDTree(seats).query(np.c_[x, y])
        return np.exp(-0.45 * (mountain(x, y) + 2.0)) * (1.0 + 0.8 * np.exp(-((d / 6000.0) ** 2))) / 1.8

    cloud = sample_in(rng, inner, max(30 * n_villages, 8000), density)
    init = cloud[rng.choice(len(cloud), n_rural, replace=False)]
    allxy = lloyd(np.r_[fixed, init], cloud, rounds=5, n_fixed=len(fixed))
    rural = snap_inside(allxy[len(fixed):], inner, cloud)
    # two rural seeds snapped onto the same cloud point would make an empty village
    _, first = np.unique(rural.view(np.complex128).ravel(), return_index=True)
    if len(first) < len(rural):
        dup = np.setdiff1d(np.arange(len(rural)), first)
        rural[dup] += rng.normal(0, 50.0, (len(dup), 2))
    return rural


def _village_seeds(
    rng: np.random.Generator, tw: Seats, land: Land, n_villages: int
) -> tuple[Array, BArray, IArray, int]:
    """Seats, urban communities around seats, then rural villages spread by weighted Lloyd.

    Returns positions, urban flags, planned township (slot) and the number of
    seats (they come first).
    """
    t = len(tw.xy)
    fixed, plan = _urban_clusters(rng, tw, land.inner)
    n_rural = n_villages - len(fixed)
    urban = np.r_[tw.seat_urban, np.ones(len(fixed) - t, bool)]
    if n_rural > 0:
        rural = _rural_villages(rng, tw, land, fixed, n_villages)
        xy = np.r_[fixed, rural]
        urban = np.r_[urban, np.zeros(n_rural, bool)]
        plan = np.r_[plan, np.full(n_rural, -1)]
    else:
        xy = fixed
    return xy, urban, plan, t


def _assign_townships(vxy: Array, tw: Seats) -> IArray:
    """Each village goes to the township with the smallest power distance |x-s|^2 - w.

    Why a power diagram: plain Voronoi cells of Lloyd-relaxed seats are all
    about the same size; weights make some townships large and others small,
    as in a real county.  Lifting the seats to 3D turns it into a k-d tree query.
    """
    w_max = float(tw.weight.max())
    lifted = np.c_[tw.xy, np.sqrt(w_max - tw.weight)]
    _, lab = cKDTree(lifted).query(np.c_[vxy, np.zeros(len(vxy))], workers=-1)
    return np.asarray(lab, dtype=np.int64)


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


def seed_villages(rng: np.random.Generator, land: Land, tw: Seats, n_villages: int) -> VillageSeeds:
    """Village seeds, their townships, and how far each town's communities reach."""
    vxy, v_urban, v_cluster, n_seats = _village_seeds(rng, tw, land, n_villages)
    v_town = _assign_townships(vxy, tw)
    # an urban community reaches ~0.6-0.85 km from its centre (about 1 km2); shared per town
    cap = 0.7 * COMMUNITY_SPACING * rng.uniform(0.9, 1.25, len(tw.xy))[np.maximum(v_cluster, 0)]
    vxy, v_urban, v_cluster, cap = _settle_towns(vxy, v_urban, v_cluster, cap, land.inner)
    return VillageSeeds(xy=vxy, urban=v_urban, cluster=v_cluster, cap=cap, town=v_town, n_seats=n_seats)


def owners(pts: Array, villages: VillageSeeds) -> tuple[IArray, Array]:
    """The village each point belongs to, and its distance from that village's border.

    An urban community claims the points nearest to it, but only within
    ``cap`` of its centre; everything else goes to the nearest rural village.
    Why: in a plain Voronoi diagram the outer communities of a town reach
    halfway to the next rural village (several km2), whereas a real 社区 is a
    dense square kilometre and the 村 wrap around the town.
    """
    vxy, urban, cap = villages.xy, villages.urban, villages.cap
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


# ---------------------------------------------------------------- 4. villager-group seeds


def _search_radius(villages: VillageSeeds, default_radius: float) -> Array:
    """How far from its centre a village looks for group candidates: about its fourth neighbour."""
    vxy, urban, cap = villages.xy, villages.urban, villages.cap
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
    return radius


def _candidates(
    rng: np.random.Generator, villages: VillageSeeds, radius: Array, inner: shapely.Geometry
) -> tuple[Array, IArray, Array]:
    """Random candidate points well inside each village's territory, and each village's area estimate."""
    vxy, urban = villages.xy, villages.urban
    nv = len(vxy)
    # enough candidates that even a village sampled from a wide disc gets a few dozen
    disc = np.pi * radius**2
    m = np.where(
        urban,
        np.clip(60 * disc / (1.3 * URBAN_M2), 60, 600),
        np.clip(120 * disc / (1.3 * RURAL_M2), 120, 1000),
    ).astype(np.int64)
    cand_v = np.repeat(np.arange(nv), m)
    r = radius[cand_v] * np.sqrt(rng.uniform(0, 1, len(cand_v)))
    a = rng.uniform(0, 2 * np.pi, len(cand_v))
    cand = vxy[cand_v] + np.c_[r * np.cos(a), r * np.sin(a)]
    ok = shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
    owner, margin = owners(cand, villages)
    mine = owner == cand_v
    # area estimate (all points of this village), before the margin filter
    area = np.bincount(cand_v[ok & mine], minlength=nv) / m * np.pi * radius**2
    ok &= mine & (margin >= np.where(urban, 0.25 * ATOM_URBAN, 0.25 * ATOM_RURAL)[cand_v])
    return cand[ok], cand_v[ok], area


def _relax_groups(gxy: Array, gv: IArray, cand: Array, cand_v: IArray) -> Array:
    """Two Lloyd rounds in which a candidate only counts for the nearest group of its own village."""
    ng = len(gxy)
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
    return gxy


def seed_groups(rng: np.random.Generator, villages: VillageSeeds, land: Land) -> GroupSeeds:
    """Villager-group seeds: a Lloyd relaxation restricted to each village's territory."""
    vxy, urban = villages.xy, villages.urban
    nv = len(vxy)
    cand, cand_v, area = _candidates(rng, villages, _search_radius(villages, land.radius), land.inner)
    k = np.where(
        urban,
        rng.integers(2, 7, nv),
        np.clip(np.round(area / GROUP_M2 * rng.uniform(0.7, 1.3, nv)), 3, 12),
    ).astype(np.int64)
    avail = np.bincount(cand_v, minlength=nv)
    k = np.maximum(1, np.minimum(k, avail + 1))
    # initial seeds: the village seed plus k-1 of its candidates (candidates are in random order)
    rank = rank_within(cand_v)
    pick = rank < (k[cand_v] - 1)
    gxy = np.r_[vxy, cand[pick]]
    gv = np.r_[np.arange(nv), cand_v[pick]]
    order = np.argsort(gv, kind="stable")
    gxy, gv = gxy[order], gv[order]
    # the relaxation needs a few dozen points per group, not all candidates
    thin = rank < 40 * k[cand_v]
    return GroupSeeds(xy=_relax_groups(gxy, gv, cand[thin], cand_v[thin]), village=gv)
