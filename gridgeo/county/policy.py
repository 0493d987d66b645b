"""A county's policy made per village: kinds, bounds with their overrides, limits in households, targets.

Why a stage of its own: the counties' rules are written county-wide ("mountain
villages: grids of 20-150 households, at most 6 km², a patrol of 4 hours";
"城关镇 has bigger grids"; "521 grids in all"), while a village is built alone
in a worker from its own task. This module turns the rules into each task's
numbers before the villages are built:

1. **Kinds** (:func:`apply_kinds`). A village's kind is urban or rural (its
   ``kind`` column or its name); ``[kinds]`` adds the county's own -- from a
   column (``column = "类型"``: a value naming a ``[bounds.X]`` table) or the
   first ``[kinds.X]`` rule the village passes (name contains, codes,
   townships, household density). A column value with no bounds keeps the
   urban/rural kind and is reported.
2. **Bounds** (:meth:`CountyRules.bounds_of_village`): the kind's, then the
   township's override, then the village's own.
3. **Limits in households** (:func:`engine_bounds`). The partition engine
   balances one additive size, households; persons, area and the walk are
   turned into households with the village's own ratios -- its persons per
   household (population / households, else ``[households] persons``), its
   household density (households / area) and the walk-time estimate (a
   callable, :data:`WalkLimit`) -- and the engine draws within the tightest.
   Every grid is then checked on its real values (persons, area in the
   village; the walk on the street network after the build).
4. **Targets** (:func:`share_targets`): ``[targets] grids = N`` shared among the
   villages by households within what each village's bounds allow
   (:func:`gridgeo.county._targets.share`), the shortfall explained when the
   bounds (or the villager groups, where each is a grid) do not allow N.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridgeo.county._targets import share
from gridgeo.county.rules import CountyRules, KindRule, LevelBounds, Limits, within_bounds
from gridgeo.errors import UsageError

log = logging.getLogger(__name__)

__all__ = ["VillagePolicy", "WalkLimit", "apply_kinds", "engine_bounds", "fitted_walk", "limits_broken",
           "share_targets", "targets_made", "task_fields", "uses_walk", "village_policies"]

GArray = NDArray[np.object_]

#: ``walk(minutes, households per m²)`` -> the most households whose daily round fits ``minutes``
WalkLimit = Callable[[float, float], float]


@dataclass(frozen=True)
class VillagePolicy:
    """What one village's task takes from the rules (:func:`village_policies`)."""

    bounds: LevelBounds
    persons: float  # persons per household
    density: float  # households per m²
    grid_aim: tuple[float, float] | None = None  # the engine's household bounds, when limits apply
    point_aim: tuple[float, float] | None = None
    grid_count: int | None = None
    point_count: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------------------- 1. kinds
def _passes(rule: KindRule, name: str, code: str, township: Sequence[str], density_km2: float) -> bool:
    return (any(s in name for s in rule.names) or code in rule.codes or any(t in rule.townships for t in township)
            or (rule.density_below is not None and density_km2 < rule.density_below)
            or (rule.density_above is not None and density_km2 > rule.density_above))


def apply_kinds(vil: gpd.GeoDataFrame, vgeom: GArray, rules: CountyRules, *,
                township_names: dict[str, str]) -> dict[str, Any] | None:
    """Set ``vil["kind"]`` from ``[kinds]`` (module notes, 1); returns the report (None: no ``[kinds]``).

    Raises
    ------
    UsageError
        ``column`` names a column the villages layer does not have, or names
        ``kind`` (that column holds urban/rural; the county's own kinds need
        a column of their own).
    """
    kr = rules.kinds
    if kr is None:
        return None
    if kr.column == "kind":
        raise UsageError("[kinds] column: 'kind' holds urban/rural; put the county's own kinds in another column "
                         "(e.g. column = \"terrain\") or give rules [kinds.NAME]")
    if kr.column is not None and kr.column not in vil.columns:
        raise UsageError(f"[kinds] column {kr.column!r}: the villages layer has no such column "
                         f"({vil.attrs.get('source') or 'villages'}); it has {', '.join(map(str, vil.columns))}")
    density = _density(vil, vgeom) * 1e6
    given = vil[kr.column].tolist() if kr.column is not None else [None] * len(vil)
    kinds: list[str] = []
    unknown: Counter[str] = Counter()
    by = {"column": 0, "rules": 0}
    for i, row in enumerate(vil[["code", "name", "township", "kind"]].itertuples(index=False)):
        value = None if given[i] is None or pd.isna(given[i]) else str(given[i]).strip()
        if value and value in rules.bounds:
            kinds.append(value)
            by["column"] += 1
            continue
        if value:
            unknown[value] += 1
        town = (str(row.township), township_names.get(str(row.township), ""))
        hit = next((r.kind for r in kr.rules if _passes(r, str(row.name or ""), str(row.code), town, density[i])),
                   None)
        by["rules"] += hit is not None
        kinds.append(hit or str(row.kind))
    vil["kind"] = kinds
    rep: dict[str, Any] = {"villages": dict(sorted(Counter(kinds).items())), "from_column": by["column"],
                           "from_rules": by["rules"]}
    if unknown:
        rep["column_values_without_bounds"] = dict(sorted(unknown.items()))
        log.warning("[kinds] column %s: %d village(s) name a kind with no [bounds.KIND] and keep urban/rural: %s",
                    kr.column, sum(unknown.values()), ", ".join(sorted(unknown)))
    return rep


def _density(vil: gpd.GeoDataFrame, vgeom: GArray) -> NDArray[np.float64]:
    """Households per m² of each village (metric geometries)."""
    area = np.asarray(shapely.area(vgeom), dtype=float)
    hh = np.asarray(vil["households"], dtype=float) if "households" in vil.columns else np.zeros(len(vil))
    return np.divide(hh, area, out=np.zeros(len(vil)), where=area > 0)


# ----------------------------------------------------------------------------------------- 3. limits
def engine_bounds(households: tuple[float, float], limits: Limits, *, persons: float, density: float,
                  walk: WalkLimit | None) -> tuple[tuple[float, float] | None, str | None]:
    """The household bounds that keep a part within ``limits`` in a village of these ratios, and a note
    when the limits contradict the household bounds (then the tighter maximum wins: a part may be small,
    it must not be unwalkable). ``(None, None)`` when there are no limits."""
    if not limits.any:
        return None, None
    lo, hi = households
    if limits.population is not None:
        lo, hi = max(lo, limits.population[0] / persons), min(hi, limits.population[1] / persons)
    if limits.area_m2 is not None and density > 0:
        lo, hi = max(lo, limits.area_m2[0] * density), min(hi, limits.area_m2[1] * density)
    if limits.walk_min is not None and walk is not None and density > 0:
        hi = min(hi, walk(limits.walk_min, density))
    hi = max(hi, 1.0)
    note = None
    if lo > hi:
        note = f"limits allow at most {hi:.0f} households but the minimum is {lo:.0f}: the minimum gives way"
        lo = min(households[0], hi)
    return (lo, hi), note


def village_policies(vil: gpd.GeoDataFrame, vgeom: GArray, rules: CountyRules, *,
                     township_names: dict[str, str], walk: WalkLimit | None = None) -> list[VillagePolicy]:
    """Every village's bounds, ratios and engine bounds (module notes, 2-3), in the villages' order."""
    density = _density(vil, vgeom)
    hh = np.asarray(vil["households"], dtype=float)
    pop = np.asarray(pd.to_numeric(vil["population"], errors="coerce"), dtype=float) \
        if "population" in vil.columns else np.full(len(vil), np.nan)
    out = []
    for i, row in enumerate(vil[["code", "name", "township", "kind"]].itertuples(index=False)):
        town = str(row.township)
        b = rules.bounds_of_village(str(row.kind), village=[str(row.code), str(row.name or "")],
                                    township=[town, township_names.get(town, "")])
        persons = pop[i] / hh[i] if hh[i] > 0 and np.isfinite(pop[i]) and pop[i] > 0 \
            else rules.persons_per_household
        ga, gn = engine_bounds(b.grid, b.grid_limits, persons=persons, density=float(density[i]), walk=walk)
        pa, pn = engine_bounds(b.point, b.point_limits, persons=persons, density=float(density[i]), walk=walk)
        notes = tuple(f"village {row.code} {level}: {n}" for level, n in (("grids", gn), ("points", pn)) if n)
        out.append(VillagePolicy(bounds=b, persons=float(persons), density=float(density[i]), grid_aim=ga,
                                 point_aim=pa, notes=notes))
    return out


def uses_walk(rules: CountyRules) -> bool:
    """Whether any village kind or override bounds the walk (then ``k`` must be fitted before the villages)."""
    tables = [*rules.township_bounds.values(), *rules.village_bounds.values()]
    return any(b.grid_limits.walk_min is not None or b.point_limits.walk_min is not None
               for b in rules.bounds.values()) or any(
        t.get(f"{lv}_limits", {}).get("walk_min") is not None for t in tables for lv in ("grid", "point"))


def fitted_walk(net: Any, places: NDArray[np.float64], households: NDArray[np.int64],
                rules: CountyRules) -> tuple[WalkLimit, dict[str, Any]]:
    """The walk limit of the county's own streets: ``k`` fitted on its walking network ``net``
    (:class:`gridgeo.patrol.network.Network`) with its places (:func:`gridgeo.patrol.walktime.fit_k`, the
    area of a part its polygon's, as the grids' density is measured), the daily load from its ``[patrol]``
    rules and households per building; and the report."""
    from gridgeo.patrol import options_from_rules
    from gridgeo.patrol.walktime import Sampling, daily_load, fit_k, walk_limit

    fit = fit_k(net, places, seed=rules.seed, sampling=Sampling(area="window"))
    opts = options_from_rules(rules.patrol)
    load = daily_load(rules=opts.rules, households_per_site=[int(h) for h in households if h > 0],
                      door_m=fit.door_m)
    log.info("walk limit: k = %.3f ± %.3f fitted on %d rounds of the county's streets", fit.k, fit.k_se, fit.samples)
    speed = opts.speed("walk")
    return walk_limit(k=fit.k, load=load, speed_kmh=speed), {
        "fit": fit.summary(), "due_share": round(load.due_share, 4), "service_min": round(load.service_min, 2),
        "speed_kmh": speed}


def limits_broken(households: float, geometry: Any, limits: Limits, persons: float) -> list[str]:
    """The limits (persons, area) a part breaks, by their real values; the walk is checked on the network."""
    out = []
    if limits.population is not None and not within_bounds(households * persons, limits.population):
        out.append("population")
    if limits.area_m2 is not None and not within_bounds(float(shapely.area(geometry)), limits.area_m2):
        out.append("area")
    return out


# ----------------------------------------------------------------------------------------- 4. targets
def _range(w: float, aim: tuple[float, float], cap: int | None) -> tuple[int, int]:
    lo, hi = aim
    low = max(1, math.ceil(w / hi - 1e-9)) if w > 0 and math.isfinite(hi) and hi > 0 else 1
    high = math.floor(w / lo + 1e-9) if lo > 0 else max(int(w), 1)
    high = max(low, high if cap is None else min(high, cap))
    return low, high


def share_targets(vil: gpd.GeoDataFrame, policies: list[VillagePolicy], rules: CountyRules, *,
                  groups: Sequence[int]) -> tuple[list[VillagePolicy], dict[str, Any]]:
    """The villages' shares of ``[targets]`` (module notes, 4) and the report; ``groups`` counts each
    village's villager groups (where each group is a grid, its count is fixed at that)."""
    from dataclasses import replace

    if not rules.targets:
        return policies, {}
    hh = np.asarray(vil["households"], dtype=float).tolist()
    rep: dict[str, Any] = {}
    for level in ("grids", "points"):
        if level not in rules.targets:
            continue
        fixed = level == "grids" and rules.use_groups and not rules.merge_groups
        low, high = [], []
        for p, w, g in zip(policies, hh, groups, strict=True):
            aim = (p.grid_aim or p.bounds.grid) if level == "grids" else (p.point_aim or p.bounds.point)
            if fixed and g:
                low.append(g)
                high.append(g)
                continue
            cap = g if (level == "grids" and rules.merge_groups and g) else None
            lo_i, hi_i = _range(w, aim, cap)
            if level == "grids" and cap is not None:  # a group alone above the maximum is split: its pieces
                lo_i = min(lo_i, hi_i)
            low.append(lo_i)
            high.append(hi_i)
        s = share(hh, low, high, rules.targets[level])
        why = s.shortfall
        if why and fixed:
            why += "; grids are the villager groups ([grids] groups = \"one\"): groups = \"merge\" or \"draw\" " \
                   "lets the count move"
        rep[level] = {"target": rules.targets[level], "planned": int(sum(s.counts)), "shortfall": why}
        policies = [p if (fixed and g) else replace(p, grid_count=c) if level == "grids" else
                    replace(p, point_count=c) for p, c, g in zip(policies, s.counts, groups, strict=True)]
    return policies, rep


def targets_made(codes: Sequence[str], policies: Sequence[VillagePolicy], layers: Mapping[str, pd.DataFrame],
                 targets: dict[str, Any]) -> None:
    """Into the report's ``targets``: what was made against what was aimed at, and the villages that made a
    different count than their share (the engine could not: a count the bounds or the units do not allow;
    or exclusive grids took households the share counted on)."""
    for level, t in targets.items():
        t["made"] = len(layers[level])
        made = Counter(layers[level]["village" if level == "points" else "parent"])
        off = [{"village": code, "planned": want, "made": made[code]}
               for code, p in zip(codes, policies, strict=True)
               if (want := p.grid_count if level == "grids" else p.point_count) is not None and made[code] != want]
        t["villages_off"] = len(off)
        if off:
            t["villages_off_detail"] = off[:50]


def task_fields(pol: VillagePolicy, rules: CountyRules) -> dict[str, Any]:
    """A task's policy fields (:class:`VillageTask`) from its village's policy."""
    limited = pol.bounds.grid_limits.any or pol.bounds.point_limits.any  # persons count only then
    return {"merge_groups": rules.merge_groups, "grid_limits": pol.bounds.grid_limits,
            "point_limits": pol.bounds.point_limits, **({"persons_per_household": pol.persons} if limited else {}),
            "engine_grid_bounds": pol.grid_aim, "engine_point_bounds": pol.point_aim,
            "grid_count": pol.grid_count, "point_count": pol.point_count}
