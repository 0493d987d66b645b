"""A county file opened for patrol planning: its grids, the stops in each grid, and its street network.

:class:`County` reads what a county GeoPackage has (grids or villager groups,
households with priorities or buildings with household counts, grid points,
risk points or POIs, roads) once, and :meth:`County.grid_stops` turns one
grid's share of it into :class:`~gridgeo.patrol.stops.GridStops`. Where the
data has no priorities or last visits they are synthetic, drawn from a
generator seeded by the county's ``seed`` and the grid code, in a fixed order
(households, then last visits), so the same county, seed and grid give the
same stops (see :mod:`gridgeo.patrol.plan` for why and what is flagged).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing
from gridgeo.data.io import feature_ids
from gridgeo.data.registers import categories_of, priority_of
from gridgeo.errors import InputError, NotFoundError, UsageError
from gridgeo.patrol.network import Network, build_network, load_network
from gridgeo.patrol.records import Records
from gridgeo.patrol.stops import DEFAULT_RULES, SYNTHETIC_SHARES, GridStops, Stop, VisitRule

log = logging.getLogger(__name__)

__all__ = ["County"]

_HOUSEHOLDS_PER_POINT = 50
#: the role a roster gives a grid's patrolling workers (网格员, 专职网格员, 兼职网格员, 网格辅助员)
WORKER_ROLE = "网格(?:辅助)?员"
_NO_DATE = ("", "nan", "NaT", "<NA>")


class County:
    """A county GeoPackage opened for patrol planning: grids, stops and the street network.

    Grids come from the ``grids`` layer if there is one, else from
    ``villager_groups`` (a grid is often one villager group; logged). Stops:
    a ``households`` point layer with ``priority`` (red/orange/yellow or
    红/橙/黄) and optionally ``last_visit``, if present; else synthetic
    priorities on the household counts of ``buildings``, or of the
    ``households`` assignment a build writes (see :mod:`gridgeo.patrol.plan`). Grid points
    from a ``points`` layer (``parent`` = grid code) if present, else
    synthetic. Risk points from a ``risk_points`` layer, else the ``pois``.
    The network is ``network`` (a file) or the county's ``roads`` layer.

    Each household, building and risk point belongs to the grid holding its
    point on surface in its interior (:func:`gridgeo._geom.containing`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        network: str | Path | Network | None = None,
        mode: str = "walk",
        seed: int = 0,
        names: bool = True,
        frames: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        from gridgeo.data import io

        self.path = Path(path)
        self.seed = int(seed)
        self.names = bool(names)  # False: a household stop is named by its id, never by the register's name
        # the layers in memory (a build about to be written: gridgeo.county.walk_check); ``path`` names them
        # a Mapping, not copied into a dict: the service's makes each layer when asked (a big one read then)
        self._frames = frames
        self.layers = list(self._frames) if self._frames is not None else io.list_layers(self.path)
        self.network = self._open_network(network, mode)
        self.grid_layer, self.grids = self._read_grids()
        self.codes: list[str] = self.grids["code"].tolist()
        self._row = {c: i for i, c in enumerate(self.codes)}
        self.households, counted = self._read_households()
        self.buildings = self._read_buildings(counted) if self.households is None else None
        self.points = self._read_points()
        self.risk = self._read_risk()
        #: the store's visits and status changes (none until :meth:`use_records`)
        self.records = Records()

    def use_records(self, records: Records) -> None:
        """Plan from these real last visits and household statuses (a store's: :mod:`gridgeo.store`)."""
        self.records = records

    # -- reading the file, in this order -------------------------------------------------
    def _layer(self, name: str) -> gpd.GeoDataFrame:
        """Layer ``name`` as stored (a copy of the in-memory frame, or read from the file)."""
        from gridgeo.data import io

        if self._frames is not None:
            return self._frames[name].copy()
        return io.read_layer(self.path, layer=name)

    def _open_network(self, network: str | Path | Network | None, mode: str) -> Network:
        """The given network, the one in a given file, or the county's ``roads`` layer."""
        if isinstance(network, Network):
            return network
        if network is not None:
            return load_network(network, mode=mode)
        if "roads" not in self.layers:
            raise InputError("no 'roads' layer and no --network given", path=self.path)
        roads = self._layer("roads")
        return build_network(roads, mode=mode, source=f"{self.path}:roads")

    def _read(self, layer: str) -> gpd.GeoDataFrame:
        """Layer ``layer`` in the network's CRS."""
        return self._layer(layer).to_crs(self.network.crs)

    def _read_grids(self) -> tuple[str, gpd.GeoDataFrame]:
        """The grid layer's name and its grids (``code`` as text, rows numbered from 0)."""
        if "grids" in self.layers:
            grid_layer = "grids"
        elif "villager_groups" in self.layers:
            grid_layer = "villager_groups"
            log.info("%s: no 'grids' layer; using 'villager_groups' as grids", self.path)
        else:
            raise InputError("no 'grids' or 'villager_groups' layer", path=self.path)
        grids = self._layer(grid_layer)
        if "code" not in grids.columns:
            raise InputError(f"layer {grid_layer!r} has no 'code' column", path=self.path)
        grids = grids.to_crs(self.network.crs).reset_index(drop=True)
        grids["code"] = grids["code"].astype(str)
        return grid_layer, self._with_exclusive(grids)

    def _with_exclusive(self, grids: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """The grids and, after them, the exclusive grids (专属网格: schools, hospitals ...): patrolled alike.

        They tile the villages together, so every household, point and risk point lies in one of them.
        """
        if "exclusive" not in self.layers:
            return grids
        ex = self._layer("exclusive")
        if not len(ex) or "code" not in ex.columns:
            return grids
        ex = ex.to_crs(self.network.crs)
        ex["code"] = ex["code"].astype(str)
        clash = sorted(set(ex["code"]) & set(grids["code"]))
        if clash:
            raise InputError(f"exclusive grid {clash[0]} has the code of a grid", path=self.path)
        keep = [c for c in ex.columns if c in grids.columns]
        out = pd.concat([grids, ex[keep]], ignore_index=True)
        return gpd.GeoDataFrame(out, geometry=grids.geometry.name, crs=grids.crs)

    def _locate(self, gdf: gpd.GeoDataFrame) -> NDArray[np.int64]:
        """Row of the grid holding each feature's point on surface in its interior; -1 for none."""
        return containing(self.grids.geometry.values, shapely.point_on_surface(gdf.geometry.values),
                          boundary=False)

    def _read_households(self) -> tuple[Any, Any]:
        """Household points with priorities (located in grids), or else a build's household counts.

        A layer given as an :class:`AreaSource` (a service's layer of millions, served from its file)
        is not read here: each grid's households are read when that grid is planned (:class:`ByGrid`).
        """
        if "households" not in self.layers:
            return None, None
        src = self._frames.get("households") if self._frames is not None else None
        if isinstance(src, AreaSource):
            if "priority" in src.columns:
                return ByGrid(self, src), None
            return None, (ByGrid(self, src, counted=True) if "households" in src.columns else None)
        hh = self._read("households")
        hh["_item"] = [str(k) for k in feature_ids(hh)[0]]  # the id a visit to it is logged against
        if "priority" in hh.columns:
            hh["_grid"] = self._locate(hh)
            return hh, None
        return None, (hh if "households" in hh.columns else None)

    def _read_buildings(self, counted: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        """Buildings with households (located in grids): the ``buildings`` layer, else ``counted``."""
        if "buildings" not in self.layers and counted is None:
            return None
        if isinstance(counted, ByGrid) and "buildings" not in self.layers:
            return counted
        b = self._read("buildings") if "buildings" in self.layers else counted
        assert b is not None
        if "_item" not in b.columns:
            b["_item"] = [str(k) for k in feature_ids(b)[0]]
        b = b[b["households"].fillna(0).astype(int) > 0] if "households" in b.columns else b.iloc[:0]
        b = b.reset_index(drop=True)
        b["_grid"] = self._locate(b)
        return b

    def _read_points(self) -> gpd.GeoDataFrame | None:
        """Grid points (``parent`` = grid code), if the file has them."""
        if "points" not in self.layers:
            return None
        pts = self._read("points")
        return pts if "parent" in pts.columns else None

    def _read_risk(self) -> gpd.GeoDataFrame | None:
        """Risk points (located in grids): the ``risk_points`` layer, else the ``pois``."""
        names = self.layers
        risk_layer = "risk_points" if "risk_points" in names else ("pois" if "pois" in names else None)
        if risk_layer is None:
            return None
        r = self._read(risk_layer).reset_index(drop=True)
        r["_grid"] = self._locate(r)
        return r

    # -- one grid ------------------------------------------------------------------------

    @functools.cached_property
    def people(self) -> pd.DataFrame | None:
        """The built county's ``people`` table (read once, when a team or a worker's grids are asked for)."""
        import pyogrio

        if "people" not in self.layers:
            return None
        if self._frames is not None:
            return pd.DataFrame(self._frames["people"])
        return pyogrio.read_dataframe(self.path, layer="people", read_geometry=False)

    def units_of(self, person: str) -> str:
        """The grids and exclusive grids a person serves in the built county's ``people`` table, as ``A,B``
        (one round across them: :meth:`round_stops`).

        Raises
        ------
        NotFoundError
            No such person on a grid or exclusive grid (or no people table).
        """
        t = self.people
        if t is not None and {"person_id", "level", "unit"} <= set(t.columns):
            mine = t[(t["person_id"].astype(str) == str(person)) & t["level"].isin(("grids", "exclusive"))]
            codes = [c for c in dict.fromkeys(mine["unit"].astype(str)) if c in self._row]
            if codes:
                return ",".join(codes)
        raise NotFoundError(f"no person {person!r} serving a grid in the people table", path=self.path)

    def workers_of(self, code: str) -> int:
        """The grid's workers in the built county's ``people`` table (roles with 网格员, on the grid or
        exclusive grid): a team of that many (:mod:`gridgeo.patrol.team`); 1 when none are listed."""
        t = self.people
        if t is None or not {"level", "unit", "role"} <= set(t.columns):
            return 1
        mine = t[t["level"].isin(("grids", "exclusive")) & (t["unit"].astype(str) == str(code))
                 & t["role"].astype(str).str.contains(WORKER_ROLE)]
        return max(1, int(mine["person_id"].nunique() if "person_id" in mine.columns else len(mine)))

    def check_grid(self, code: str) -> int:
        """Row of grid ``code``.

        Raises
        ------
        NotFoundError
            Naming the id and a few valid ones.
        """
        row = self._row.get(str(code))
        if row is None:
            few = ", ".join(self.codes[:5]) + (" ..." if len(self.codes) > 5 else "")
            raise NotFoundError(f"no grid {code!r} in layer {self.grid_layer!r} ({len(self.codes)} grids: {few})",
                                path=self.path)
        return row

    def round_stops(self, codes: str, day: dt.date, **kwargs: Any) -> GridStops:
        """The stops of one round over one grid or several (``A,B``: one worker responsible for several small
        grids walks them in one round), from the first grid's station; keywords as :meth:`grid_stops`.

        Raises
        ------
        NotFoundError
            A grid that is not in the county (each code is checked).
        UsageError
            The same grid twice.
        """
        parts = [c.strip() for c in str(codes).split(",") if c.strip()]
        if len(parts) <= 1:
            return self.grid_stops(parts[0] if parts else str(codes), day, **kwargs)
        if len(set(parts)) != len(parts):
            raise UsageError(f"grid codes {codes!r} name a grid twice")
        each = [self.grid_stops(c, day, **kwargs) for c in parts]
        first = each[0]
        return replace(first, grid=",".join(parts), stops=[st for g in each for st in g.stops],
                       synthetic_priorities=any(g.synthetic_priorities for g in each),
                       synthetic_last_visits=any(g.synthetic_last_visits for g in each),
                       name="、".join(g.name for g in each if g.name))

    def grid_stops(
        self,
        code: str,
        day: dt.date,
        *,
        station: tuple[float, float] | None = None,
        rules: Mapping[str, VisitRule] | None = None,
        every_household: bool = False,
    ) -> GridStops:
        """The stops of grid ``code`` with their last visits as of ``day`` (synthetic where the data has none).

        ``station`` is in the network's CRS; by default the grid's representative point.
        Stops come in a fixed order: households, grid points, risk points. ``every_household`` (a
        campaign): unmarked households too, as priority ``none``, and households only.
        """
        rules = dict(DEFAULT_RULES if rules is None else rules)
        row = self.check_grid(code)
        name = str(self.grids["name"].iloc[row]) if "name" in self.grids.columns else ""
        rng = _rng(self.seed, code)
        synthetic_p = self.households is None and self.buildings is not None
        stops = self._household_stops(row, name, rng, every=every_household)
        stops += [] if every_household else self._grid_point_stops(row, code, name)
        if self.risk is not None and not every_household:
            stops += _risk_stops(self.risk[self.risk["_grid"] == row])
        stops = self.records.apply(stops, day, every=every_household)
        out, synthetic_lv = _stagger_last_visits(stops, rules, day, rng)
        given = station is not None
        if station is None:
            rp = shapely.point_on_surface(self.grids.geometry.iloc[row])
            station = (float(rp.x), float(rp.y))
        return GridStops(code, station, out, synthetic_p, synthetic_lv, name, station_given=given)

    def _household_stops(self, row: int, name: str, rng: np.random.Generator, *, every: bool = False) -> list[Stop]:
        """The grid's households with priorities, or else drawn on its buildings' household counts."""
        if self.households is not None:
            return _listed_households(in_grid(self.households, row), names=self.names, every=every, path=self.path)
        if self.buildings is not None:
            return _drawn_households(in_grid(self.buildings, row), name, rng, every=every)
        return []

    def _grid_point_stops(self, row: int, code: str, name: str) -> list[Stop]:
        """The grid's points from the file, or else placed among its buildings."""
        if self.points is not None:
            return _listed_points(self.points[self.points["parent"].astype(str) == code])
        if self.buildings is not None:
            return _placed_points(in_grid(self.buildings, row), code, name)
        return []

    @functools.cached_property
    def grid_tree(self) -> shapely.STRtree:
        """The grids (and exclusive grids) in an STRtree, for :class:`ByGrid`'s lookups."""
        return shapely.STRtree(self.grids.geometry.values)


class AreaSource:
    """A layer read by area when asked (the service's big layers): what :class:`County` reads per grid.

    Subclasses give ``columns`` (the layer's column names), ``crs`` and :meth:`within`.
    """

    columns: list[str]
    crs: Any

    def within(self, bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        """Every feature whose box meets ``bounds`` (in :attr:`crs`), every column and ``_item`` (its id),
        indexed by its row in the whole layer."""
        raise NotImplementedError


def in_grid(layer: Any, row: int) -> gpd.GeoDataFrame:
    """The features of ``layer`` (a located frame, or a :class:`ByGrid`) in grid ``row``."""
    return layer.of(row) if isinstance(layer, ByGrid) else layer[layer["_grid"] == row]


class ByGrid:
    """A layer's features grid by grid, read from an :class:`AreaSource` when a grid is planned (kept, LRU).

    Why: a county of five million households would otherwise be read, reprojected and located whole the
    first time anyone plans a patrol; a grid's few hundred take milliseconds. Each feature is placed as
    :meth:`County._locate` places it (the lowest-numbered grid holding its point on surface), against the
    grids near it only, which gives the same answer. ``counted``: a build's household counts, kept where
    positive (:meth:`County._read_buildings`).
    """

    KEEP = 64

    def __init__(self, county: County, src: AreaSource, *, counted: bool = False) -> None:
        self.county, self.src, self.counted = county, src, counted
        self.columns = [*src.columns, "_item", "_grid"]
        self._kept: dict[int, gpd.GeoDataFrame] = {}

    def of(self, row: int) -> gpd.GeoDataFrame:
        got = self._kept.get(row)
        if got is None:
            got = self._read(row)
            if len(self._kept) >= self.KEEP:
                self._kept.pop(next(iter(self._kept)))
            self._kept[row] = got
        return got

    def _read(self, row: int) -> gpd.GeoDataFrame:
        from pyproj import Transformer

        c = self.county
        x0, y0, x1, y1 = c.grids.geometry.iloc[row].bounds
        tr = Transformer.from_crs(c.network.crs, self.src.crs, always_xy=True)
        sub = self.src.within(tr.transform_bounds(x0, y0, x1, y1, densify_pts=21)).to_crs(c.network.crs)
        if self.counted:
            sub = sub[sub["households"].fillna(0).astype(int) > 0] if "households" in sub.columns else sub.iloc[:0]
        pts = shapely.point_on_surface(sub.geometry.values)
        near = c.grid_tree.query(shapely.box(x0, y0, x1, y1))
        near = np.sort(near)
        got = containing(c.grids.geometry.values[near], pts, boundary=False)
        sub = sub.assign(_grid=np.where(got >= 0, near[np.maximum(got, 0)], -1))
        return sub[sub["_grid"] == row]


# ------------------------------------------------------------------------------ stops of a grid
def _rng(seed: int, code: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(code.encode("utf-8"))])


def _priority(value: object) -> str | None:
    """red/orange/yellow as a register writes them (红/橙/黄, 红色...: :func:`gridgeo.data.registers.priority_of`)."""
    p = priority_of(value)
    return p if isinstance(p, str) else None


def _item(row: Mapping[str, Any]) -> str | None:
    """The households feature id of a row read by :meth:`County._read_households`."""
    v = row.get("_item")
    return None if v is None else str(v)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in _NO_DATE


def _last_visit(value: object) -> dt.date | None:
    if value is None or str(value) in _NO_DATE:
        return None
    return dt.date.fromisoformat(str(value)[:10])


def _xy(gdf: gpd.GeoDataFrame) -> NDArray[np.float64]:
    """``(n, 2)`` coordinates of each feature's point on surface."""
    return np.asarray(shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values))).reshape(-1, 2)


def _listed_households(hh: gpd.GeoDataFrame, *, names: bool = True, every: bool = False,
                       path: Path | None = None) -> list[Stop]:
    """Households of the file with a red, orange or yellow priority or a special-care category (others are
    visited by campaigns only: ``every``, as priority ``none``).

    ``names=False`` names each stop by its household id: a register's names are private (the service,
    with no accounts yet, never hands them out). A register's ``special`` (低保户、留守儿童) and
    ``visit_window`` (18:00-21:00) columns go to :attr:`Stop.special` and :attr:`Stop.window`.
    """
    xy = _xy(hh)
    has_lv = "last_visit" in hh.columns
    key = next((c for c in ("id", "source_id") if c in hh.columns), None)  # source_id: a build's households
    stops: list[Stop] = []
    for i, (idx, r) in enumerate(hh.iterrows()):
        special = categories_of(r.get("special"))
        pr = _priority(r["priority"]) or ("none" if every or special else None)
        if pr is None:
            continue
        lv = _last_visit(r["last_visit"]) if has_lv else None
        sid = str(r[key]) if key is not None and not _missing(r[key]) else f"h{idx}"
        stops.append(Stop(sid, "household", pr, float(xy[i, 0]), float(xy[i, 1]),
                          str((r.get("name") if names else None) or sid), lv, special,
                          _window(r.get("visit_window"), sid, path), _item(r)))
    return stops


def _window(value: object, sid: str, path: Path | None) -> tuple[int, int] | None:
    """A household's ``visit_window`` cell as clock minutes; a cell that is not a window is an error naming it."""
    from gridgeo.data.quantities import parse_window

    if _missing(value) or not str(value).strip():
        return None
    try:
        return parse_window(str(value))
    except UsageError as exc:
        raise InputError(f"households: household {sid}: {exc}", path=path) from None


def _drawn_households(b: gpd.GeoDataFrame, name: str, rng: np.random.Generator, *, every: bool = False) -> list[Stop]:
    """Each household of each building drawn red / orange / yellow / none with :data:`SYNTHETIC_SHARES`
    (the unmarked ones kept as ``none`` for a campaign: ``every``)."""
    xy = _xy(b)
    counts = b["households"].fillna(0).astype(int).to_numpy()
    items = b["_item"].tolist() if "_item" in b.columns else [None] * len(b)
    colours = ["red", "orange", "yellow"]
    probs = [SYNTHETIC_SHARES[c] for c in colours]
    stops: list[Stop] = []
    for i, (idx, h) in enumerate(zip(b.index, counts, strict=True)):
        draws = rng.random(h)
        edges = np.cumsum(probs)
        for j, u in enumerate(draws):
            c = int(np.searchsorted(edges, u, side="right"))
            if c < 3 or every:
                sid = f"b{idx}-{j + 1}"
                stops.append(Stop(sid, "household", colours[c] if c < 3 else "none", float(xy[i, 0]), float(xy[i, 1]),
                                  f"{name} 建筑{idx} 第{j + 1}户", household=items[i]))
    return stops


def _listed_points(p: gpd.GeoDataFrame) -> list[Stop]:
    """Grid points of the file."""
    xy = _xy(p)
    stops: list[Stop] = []
    for i, (idx, r) in enumerate(p.iterrows()):
        sid = str(r["code"]) if "code" in p.columns else f"p{idx}"
        stops.append(Stop(sid, "grid_point", "grid_point", float(xy[i, 0]), float(xy[i, 1]),
                          str(r.get("name") or sid)))
    return stops


def _placed_points(b: gpd.GeoDataFrame, code: str, name: str) -> list[Stop]:
    """One grid point per about 50 households: buildings in angular sectors, the most central of each."""
    if not len(b):
        return []
    xy = _xy(b)
    hh_b = b["households"].fillna(0).astype(int).to_numpy()
    k = max(1, round(int(hh_b.sum()) / _HOUSEHOLDS_PER_POINT))
    c = xy.mean(axis=0)
    order = np.argsort(np.arctan2(xy[:, 1] - c[1], xy[:, 0] - c[0]), kind="stable")
    stops: list[Stop] = []
    for n, chunk in enumerate(np.array_split(order, k), start=1):
        if len(chunk) == 0:
            continue
        m = chunk[np.argmin(np.hypot(*(xy[chunk] - xy[chunk].mean(axis=0)).T))]
        stops.append(Stop(f"{code}-P{n:03d}", "grid_point", "grid_point", float(xy[m, 0]),
                          float(xy[m, 1]), f"{name} 网格点{n}"))
    return stops


def _risk_stops(r: gpd.GeoDataFrame) -> list[Stop]:
    """Risk points (or POIs) of the grid."""
    xy = _xy(r)
    stops: list[Stop] = []
    for i, idx in enumerate(r.index):
        nm = str(r["name"].loc[idx]) if "name" in r.columns else f"r{idx}"
        stops.append(Stop(f"r{idx}", "risk", "risk", float(xy[i, 0]), float(xy[i, 1]), nm))
    return stops


def _stagger_last_visits(
    stops: list[Stop], rules: Mapping[str, VisitRule], day: dt.date, rng: np.random.Generator
) -> tuple[list[Stop], bool]:
    """Last visits where the data has none, staggered over each frequency; whether any was drawn."""
    synthetic = False
    out: list[Stop] = []
    for s in stops:
        if s.last_visit is None:
            synthetic = True
            f = max(1, rules[s.priority].frequency_days) if s.priority in rules else 1
            s = replace(s, last_visit=day - dt.timedelta(days=int(rng.integers(1, f + 1))))
        out.append(s)
    return out, synthetic
