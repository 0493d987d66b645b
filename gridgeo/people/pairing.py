"""Pairing party members and villagers' representatives with households (党员联户 / 结对).

``Pairing(households, members, *, pairs=None, network=None, grids=None, options=PairingOptions())``
checks every input once (errors name the file and the row), and ``.solve(seed=0)`` returns a
:class:`PairingResult`: the pairs, the load of each member, every household left unpaired with its
reason, the existing pairs that could not be kept, and a summary.

The rules
---------
* **Scope.** A member pairs only with households of the grid they serve (``scope="grid"``, the
  default) or of their village (``scope="village"``; a member who serves a grid pairs in its village).
* **Distance.** Walking distance along the streets when a network is given, else straight-line metres
  in a metric CRS (:mod:`gridgeo.people._pair_distance`); farther than ``max_distance_m`` is out of reach.
* **Capacity.** Each member takes at most their own ``capacity`` (the roster's column; blank: the
  option's default; no default: no limit of their own).
* **Balance.** Within a scope nobody takes much more, or much less, than the fair share unless
  capacities say so (:mod:`gridgeo.people._pair_solve`: a water level over the capacities, plus or
  minus a ``slack``). Balance never leaves a household unpaired: what the balanced capacities cannot
  take (a hamlet only one member can reach) goes to members with room in their own capacity, counted in
  the summary's ``paired_beyond_balance``.
* **Existing pairs** are kept where the member still pairs in the household's scope and their
  capacity allows (nearest first); the rest are reported in :attr:`PairingResult.dropped`.
* **Assignment.** Within those limits, the least total distance, exactly (min-cost assignment on
  capacity slots, one scope at a time; large scopes by a sparse start and cycle cancelling,
  :mod:`gridgeo.people._pair_sparse`). The seed breaks ties between equally short assignments only.

A row of the households layer may carry several households (a building of a built county): its
households are paired one by one and may go to different members; the pairs table says how many.
Unpaired reasons: :data:`REASONS`.
"""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.errors import UsageError
from gridgeo.patrol.network import Network
from gridgeo.people._pair_distance import NetworkDistances, StraightDistances
from gridgeo.people._pair_input import (
    LOCATED,
    Existing,
    Households,
    Members,
    check_households,
    check_members,
    check_pairs,
)
from gridgeo.people._pair_solve import ScopeResult, solve_scope

log = logging.getLogger(__name__)

__all__ = ["REASONS", "SCOPES", "Pairing", "PairingOptions", "PairingResult"]

#: what a member may pair within
SCOPES = ("grid", "village")
#: why a household is left unpaired
REASONS: Mapping[str, str] = {
    "no_unit": "the household has no grid (village) in the households layer",
    "no_member": "no member pairs in the household's grid (village)",
    "capacity": "capacity exhausted: every member of its grid (village) who can reach it is full",
    "unreachable": "no member of its grid (village) within max_distance_m (on the network: or the household or "
                   "member is farther than max_snap_m from every street)",
}


@dataclass(frozen=True)
class PairingOptions:
    """How households are paired; the defaults of the library and ``gridgeo pair``.

    Attributes
    ----------
    scope
        ``"grid"`` or ``"village"``: where a member may pair.
    capacity
        Households per member where the roster gives none (None: no limit of their own).
    slack
        Balance: a member takes at most ``L + s`` and, as far as they can reach, at least ``L - s``
        households, ``s = max(1, ceil(slack * L))``, ``L`` the scope's fair share (None: no balancing, own
        capacities only). 0.25 leaves the assignment room to keep walks short while nobody carries more
        than about a quarter above or below the others.
    keep_existing
        Keep the existing pairs that are still valid (False: pair everyone afresh).
    max_distance_m
        Metres (walking or straight): a member farther than this cannot take a household (None: no limit;
        on a network the search then covers the whole network from every member, which is slow).
    max_snap_m
        Metres from a household or member to the nearest street beyond which the network cannot reach them.
    """

    scope: str = "grid"
    capacity: int | None = None
    slack: float | None = 0.25
    keep_existing: bool = True
    max_distance_m: float | None = 5000.0
    max_snap_m: float = 1000.0

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise UsageError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.capacity is not None and (int(self.capacity) != self.capacity or self.capacity < 0):
            raise UsageError(f"capacity must be a whole number >= 0, got {self.capacity!r}")
        if self.slack is not None and not (math.isfinite(self.slack) and self.slack >= 0):
            raise UsageError(f"slack must be >= 0, got {self.slack!r}")
        if self.max_distance_m is not None and not self.max_distance_m > 0:
            raise UsageError(f"max_distance_m must be > 0 metres, got {self.max_distance_m!r}")
        if not self.max_snap_m >= 0:
            raise UsageError(f"max_snap_m must be >= 0 metres, got {self.max_snap_m!r}")


@dataclass
class PairingResult:
    """The outcome of :meth:`Pairing.solve`.

    Attributes
    ----------
    pairs
        ``source_id``, ``person_id``, ``households`` (of that row paired with that member), ``distance_m``
        (NaN for a kept pair now out of reach), ``kept`` (an existing pair kept).
    loads
        Per member: ``person_id``, ``role``, ``scope`` (the grid or village code), ``households``,
        ``kept``, ``capacity`` (own; empty: none), ``effective_capacity`` (after balancing),
        ``total_distance_m``, ``max_distance_m``, ``located`` (``point``, ``home`` or ``scope_centre``).
    unpaired
        ``source_id``, ``households`` (left unpaired), ``grid``, ``village``, ``reason`` (:data:`REASONS`).
    dropped
        Existing pairs not kept: ``source_id``, ``person_id``, ``reason``.
    summary
        Counts and distances (no names: people's data stays in the tables).
    """

    pairs: pd.DataFrame
    loads: pd.DataFrame
    unpaired: pd.DataFrame
    dropped: pd.DataFrame
    summary: dict[str, Any]
    _hh_geom: gpd.GeoSeries = field(repr=False)
    _member_geom: gpd.GeoSeries = field(repr=False)

    def layers(self) -> dict[str, pd.DataFrame]:
        """The tables as layers: ``pairs`` (a line from each household to its member), ``loads`` (member
        points), ``unpaired`` (household points), ``dropped_pairs`` (no geometry), in the households' CRS."""
        hh = self._hh_geom
        mg = self._member_geom
        lines = shapely.shortest_line(hh.loc[self.pairs["source_id"]].values, mg.loc[self.pairs["person_id"]].values)
        return {
            "pairs": gpd.GeoDataFrame(self.pairs, geometry=lines, crs=hh.crs),
            "loads": gpd.GeoDataFrame(self.loads, geometry=mg.loc[self.loads["person_id"]].values, crs=hh.crs),
            "unpaired": gpd.GeoDataFrame(self.unpaired, geometry=hh.loc[self.unpaired["source_id"]].values,
                                         crs=hh.crs),
            "dropped_pairs": self.dropped,
        }

    def write(self, path: str | Path) -> list[Path]:
        """Write the tables atomically: a ``.gpkg`` gets the :meth:`layers`; any other path is a directory of
        UTF-8 CSV files (with a BOM, so Excel shows Chinese), one per table. Returns what was written."""
        from gridgeo.people._pair_output import write_csvs, write_gpkg

        target = Path(path)
        if target.suffix.lower() == ".gpkg":
            write_gpkg(self.layers(), target)
            return [target]
        return write_csvs({"pairs": self.pairs, "loads": self.loads, "unpaired": self.unpaired,
                           "dropped_pairs": self.dropped}, target)

    def write_report(self, path: str | Path) -> None:
        """The summary as JSON, atomically."""
        from gridgeo.data.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.summary, ensure_ascii=False, indent=1), encoding="utf-8")


class Pairing:
    """A pairing problem: households, members, existing pairs, optionally a street network; checked here.

    Parameters
    ----------
    households
        Points in any CRS with ``source_id`` and ``grid`` (scope ``grid``) or ``village`` (scope
        ``village``), optionally ``households`` (count per row, default 1): the ``households`` layer of a
        built county.
    members
        A table (or layer) with ``person_id``, a ``grid``, ``village`` or ``unit`` column (the unit they
        serve), optionally ``role``, ``capacity``, a point geometry or ``home`` (the ``source_id`` of the
        household they live in). A member without a place stands at the household nearest the centre of
        their scope's households (``located = scope_centre``, counted in the summary).
    pairs
        Existing pairs: ``source_id``, ``person_id``, optionally ``households``.
    network
        A street network (:func:`gridgeo.patrol.network.load_network`, walk mode): distances are walks.
    grids
        Grid code -> village code of every grid of the county (default: as the households layer has them),
        so that a member may serve a grid with no household and a roster naming no such grid is refused.
    options
        :class:`PairingOptions`.

    Raises
    ------
    SchemaError, InputError, CRSError
        Naming the file (``attrs["source"]`` of the frame) and the row.
    """

    def __init__(self, households: gpd.GeoDataFrame, members: pd.DataFrame, *, pairs: pd.DataFrame | None = None,
                 network: Network | None = None, grids: Mapping[str, str] | None = None,
                 options: PairingOptions | None = None) -> None:
        self.options = options or PairingOptions()
        self.network = network
        scope = self.options.scope
        self.hh: Households = check_households(households, scope_col=scope,
                                               crs=network.crs if network is not None else None)
        grid_map = dict(grids) if grids is not None else _grid_map(self.hh)
        villages = set(grid_map.values()) | {v for v in self.hh.village if v is not None}
        self.mem: Members = check_members(members, self.hh, scope=scope, grids=grid_map, villages=villages,
                                          default_capacity=self.options.capacity)
        self.hh_scope = self.hh.grid if scope == "grid" else self.hh.village
        self.existing: Existing = check_pairs(pairs if self.options.keep_existing else None, self.hh, self.mem,
                                              scope=scope)
        self._scope_centres()

    def _scope_centres(self) -> None:
        """Members without a place stand at the household nearest the mean of their scope's households."""
        need = np.flatnonzero(np.isnan(self.mem.xy[:, 0]))
        if len(need) == 0:
            return
        rows = _groups(self.hh_scope)
        for i in need.tolist():
            hr = rows.get(self.mem.scope[i])
            if hr is None:
                continue  # a scope without households: the member has no one to pair with
            xy = self.hh.xy[hr]
            centre = np.average(xy, axis=0, weights=np.maximum(self.hh.count[hr], 1))
            self.mem.xy[i] = xy[int(np.argmin(np.hypot(*(xy - centre).T)))]
        log.info("%d members without a place stand at their scope's central household", len(need))

    def _distances(self) -> StraightDistances | NetworkDistances:
        limit = self.options.max_distance_m if self.options.max_distance_m is not None else np.inf
        if self.network is None:
            return StraightDistances(self.hh.xy, self.mem.xy, limit=limit)
        return NetworkDistances(self.network, self.hh.xy, self.mem.xy, limit=limit,
                                max_snap=self.options.max_snap_m)

    def solve(self, *, seed: int = 0) -> PairingResult:
        """Pair every scope (see the module notes); the same inputs and seed give the same result."""
        t0 = time.perf_counter()
        dist = self._distances()
        acc = _Collect(len(self.mem.ids))
        hh_rows = _groups(self.hh_scope)
        mem_rows = _groups(self.mem.scope)
        ex_by_scope = _groups(self.hh_scope[self.existing.household]) if len(self.existing.household) else {}
        acc.left(np.flatnonzero(pd.isna(self.hh_scope)), self.hh.count, "no_unit")
        for code in sorted(hh_rows):
            hr = hh_rows[code]
            mr = mem_rows.get(code)
            if mr is None:
                acc.left(hr, self.hh.count, "no_member")
                continue
            d = dist(hr, mr)
            kept = self._kept_local(ex_by_scope.get(code), hr, mr)
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(str(code).encode("utf-8"))])
            res = solve_scope(d, self.hh.count[hr], self.mem.capacity[mr], kept, slack=self.options.slack, rng=rng)
            acc.scope(code, res, hr, mr, d)
        return self._result(acc, dist.kind, seed, time.perf_counter() - t0)

    def _kept_local(self, ex_idx: np.ndarray | None, hr: np.ndarray, mr: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The existing pairs of one scope in its local row numbers."""
        if ex_idx is None:
            e = np.zeros(0, dtype=np.int64)
            return e, e, e
        ex = self.existing
        h_loc = np.searchsorted(hr, ex.household[ex_idx])
        m_loc = np.searchsorted(mr, ex.member[ex_idx])
        return h_loc.astype(np.int64), m_loc.astype(np.int64), ex.count[ex_idx]

    def _result(self, acc: _Collect, kind: str, seed: int, seconds: float) -> PairingResult:
        from gridgeo.people._pair_output import tables

        hh, mem = self.hh, self.mem
        pairs, loads, unpaired, dropped = tables(acc, hh, mem, self.existing, scope=self.options.scope)
        hh_geom = gpd.GeoSeries(hh.geometry.values, index=pd.Index(hh.ids), crs=hh.geometry.crs)
        mem_geom = gpd.GeoSeries(shapely.points(mem.xy), index=pd.Index(mem.ids), crs=hh.crs).to_crs(hh.geometry.crs)
        summary = _summary(pairs, loads, unpaired, dropped, acc, hh=hh, options=self.options, kind=kind, seed=seed)
        summary["seconds"] = round(seconds, 3)
        log.info("paired %d of %d households with %d members (%s distance, scope %s), %d unpaired",
                 summary["paired"], summary["households"], summary["members"], kind, self.options.scope,
                 summary["unpaired"])
        return PairingResult(pairs, loads, unpaired, dropped, summary, hh_geom, mem_geom)


def _grid_map(hh: Households) -> dict[str, str]:
    """Grid code -> village code, as the households layer has them (first village seen for a grid)."""
    out: dict[str, str] = {}
    for g, v in zip(hh.grid, hh.village, strict=True):
        if g is not None and g not in out:
            out[g] = v
    return out


def _groups(codes: np.ndarray) -> dict[str, np.ndarray]:
    """Row numbers (ascending) of each non-missing code."""
    s = pd.Series(codes, dtype=object)
    s = s[s.notna()]
    return {str(k): np.sort(v.to_numpy(dtype=np.int64)) for k, v in s.groupby(s, sort=True).groups.items()}


class _Collect:
    """The scopes' results gathered in global row numbers."""

    def __init__(self, n_members: int) -> None:
        self.pair: list[tuple[np.ndarray, ...]] = []
        self.left_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.over: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.effective = np.zeros(n_members, dtype=np.int64)
        self.levels: dict[str, int] = {}
        self.beyond = 0

    def left(self, rows: np.ndarray, count: np.ndarray, reason: str) -> None:
        rows = rows[count[rows] > 0]
        self.left_rows.append((rows, count[rows], np.full(len(rows), reason, dtype=object)))

    def scope(self, code: str, res: ScopeResult, hr: np.ndarray, mr: np.ndarray, d: np.ndarray) -> None:
        dist = d[res.pair_h, res.pair_m]
        self.pair.append((hr[res.pair_h], mr[res.pair_m], res.pair_n, np.where(np.isfinite(dist), dist, np.nan),
                          res.pair_kept))
        self.left_rows.append((hr[res.left_h], res.left_n, res.left_reason))
        self.over.append((hr[res.over_h], mr[res.over_m], res.over_n))
        self.effective[mr] = res.effective
        self.levels[code] = res.level
        self.beyond += res.beyond


def _summary(pairs: pd.DataFrame, loads: pd.DataFrame, unpaired: pd.DataFrame, dropped: pd.DataFrame,
             acc: _Collect, *, hh: Households, options: PairingOptions, kind: str, seed: int) -> dict[str, Any]:
    """Counts and distances of a result (no names)."""
    active = loads[loads["effective_capacity"] > 0]
    by_reason = unpaired.groupby("reason")["households"].sum() if len(unpaired) else pd.Series(dtype=int)
    dist = pairs["distance_m"] * pairs["households"]
    return {
        "scope": options.scope, "distance": kind, "seed": int(seed),
        "options": {"capacity": options.capacity, "slack": options.slack, "keep_existing": options.keep_existing,
                    "max_distance_m": options.max_distance_m, "max_snap_m": options.max_snap_m},
        "households": int(hh.count.sum()), "household_rows": len(hh.ids),
        "paired": int(pairs["households"].sum()), "unpaired": int(unpaired["households"].sum()),
        "unpaired_by_reason": {r: int(by_reason.get(r, 0)) for r in REASONS},
        "kept": int(pairs.loc[pairs["kept"], "households"].sum()),
        "paired_beyond_balance": acc.beyond,
        "existing_dropped": {str(k): int(v) for k, v in dropped.groupby("reason").size().items()},
        "members": len(loads), "members_with_households": int((loads["households"] > 0).sum()),
        "members_located": {k: int((loads["located"] == k).sum()) for k in LOCATED},
        "scopes_paired": len(acc.levels),
        "total_distance_m": round(float(np.nansum(dist)), 1),
        "mean_distance_m": round(float(np.nansum(dist) / max(int(pairs["households"].sum()), 1)), 1),
        "max_distance_m": round(float(pairs["distance_m"].max()), 1) if pairs["distance_m"].notna().any() else None,
        "load": {"max": int(active["households"].max()) if len(active) else 0,
                 "min": int(active["households"].min()) if len(active) else 0,
                 "mean": round(float(active["households"].mean()), 2) if len(active) else 0.0},
        "reasons": dict(REASONS),
    }
