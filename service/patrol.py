"""``/patrol/{grid_id}?date=YYYY-MM-DD``: a grid worker's route for one day (GeoJSON, or GPX for a phone).

Planning is :func:`gridgeo.patrol.plan_grid`, the sequence ``gridgeo patrol``
runs, with the library's defaults (:class:`gridgeo.patrol.PatrolOptions`: 4 h on
foot at 4.5 km/h from 08:30, seed 0), or those of the ``[patrol]`` section of the
rules file set as ``RULES``; a request may override them one by one (:data:`OVERRIDES`:
budget, speed, start time, frequency and service minutes per colour, a campaign,
start and end places, the worker's home), each checked: a bad value is a 400. The street
network and the county's stops are read once, on the first patrol request
(reading the roads takes seconds the OGC endpoints should not wait for), and a
day's plan is kept, since the solver takes about a second.

The response lists the day's stops in walking order (the route feature's
``stops``, one Point per stop at its door, GPX waypoints named ``03 10:25 红 ...``).
A register's households are named by their id there and carry no address or
special-care category: the county is opened with ``names=False`` (no accounts yet).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import shapely
from flask import Blueprint, Response, current_app, request

from gridgeo.data.crs import wgs84_to_datum
from gridgeo.data.quantities import parse_place
from gridgeo.errors import FileFormatError, InputError, ServiceUnavailableError, UsageError
from gridgeo.patrol import CST, County, DayPlan, PatrolOptions, parse_budget, plan_grid, route_geojson, route_gpx
from gridgeo.patrol.options import check_plan_dates
from gridgeo.patrol.records import Records
from gridgeo.patrol.team import MAX_WORKERS
from gridgeo.store import Store, is_url

from . import read_audit
from .auth import require
from .ogc import CRS84, GEOJSON, check_params, negotiate, parse_coords

log = logging.getLogger(__name__)

bp = Blueprint("patrol", __name__)

GPX = "application/gpx+xml"
_lock = threading.Lock()
_CACHE_SIZE = 256
#: townships open at once for planning, when a county is planned township by township (LRU)
_REGIONS = 4
#: degrees around a township's box whose streets its routes may use (about 2 km)
_MARGIN = 0.02


class Regions:
    """Where a grid is planned in a county too big to plan whole: its township's box, with a margin.

    Why: a province's street network (half a million roads) and its stops do not fit a server's memory as
    one graph, and no grid worker's round leaves its township; so a county whose roads are served from
    the file is opened for planning one township at a time (:meth:`service.store.County.region`).

    Parameters
    ----------
    grids
        The served grids (their ``township`` column, where they have one).
    townships
        The served townships (their boxes, read once).
    chain
        A unit's chain of parents (:meth:`gridgeo.store.chains.Chains.chain`), for grids without a
        ``township`` column.
    """

    def __init__(self, grids: Any, townships: Any, chain: Callable[[str], tuple[str, ...]]) -> None:
        self.grids = grids
        self.chain = chain
        keys = [str(k) for k in townships.keys]
        bounds = shapely.bounds(townships.geometries())
        self.boxes = {k: tuple(float(v) for v in b) for k, b in zip(keys, bounds.tolist(), strict=True)}

    def of(self, grid: str) -> tuple[str, tuple[float, float, float, float]] | None:
        """The township of ``grid`` and its box (CRS84, with :data:`_MARGIN`); None when it is not known."""
        try:
            pos = self.grids.locate_key(grid)
        except Exception:  # an unknown grid: the whole-county path answers its 404
            return None
        town = self.grids.units([pos], ("township",)).get("township", [None])[0]
        if town is None or str(town) not in self.boxes:
            town = next((c for c in self.chain(grid) if c in self.boxes), None)
        box = self.boxes.get(str(town)) if town is not None else None
        if box is None:
            return None
        return str(town), (box[0] - _MARGIN, box[1] - _MARGIN, box[2] + _MARGIN, box[3] + _MARGIN)


#: the longest campaign a request may ask for (a campaign is planned in one request)
MAX_CAMPAIGN_DAYS = 31
_COLOURS = ("red", "orange", "yellow")


def _number(name: str, raw: str, *, low: float, high: float, whole: bool = False) -> float:
    """A query parameter as a number in ``[low, high]`` (a whole one if ``whole``), or a 400 naming it."""
    try:
        v = float(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {raw!r}") from None
    if not (low <= v <= high) or (whole and not v.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{name} must be {kind} from {low:g} to {high:g}, got {raw!r}")
    return v


def _time(name: str, raw: str) -> dt.time:
    try:
        return dt.time.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{name} must be HH:MM, got {raw!r}") from None


def _rule(opts: PatrolOptions, colour: str, **fields: Any) -> PatrolOptions:
    from dataclasses import replace

    rules = dict(opts.rules)
    rules[colour] = replace(rules[colour], **fields)
    return replace(opts, rules=rules)


def _lonlat(name: str, raw: str) -> tuple[float, float]:
    place = parse_place(raw, name)
    if not isinstance(place, tuple):
        raise UsageError(f"{name} must be LON,LAT, got {raw!r}")
    return place


def _frequency(colour: str) -> Any:
    """The override of ``colour``'s visit frequency (days)."""
    def apply(o: PatrolOptions, v: str) -> PatrolOptions:
        days = _number(f"frequency_{colour}", v, low=1, high=3650, whole=True)
        return _rule(o, colour, frequency_days=int(days))
    return apply


def _service(colour: str) -> Any:
    """The override of ``colour``'s service minutes."""
    def apply(o: PatrolOptions, v: str) -> PatrolOptions:
        return _rule(o, colour, service_min=_number(f"service_{colour}", v, low=0, high=1440))
    return apply


#: query parameter -> how it changes the options (each checked; a bad value is a UsageError: 400)
OVERRIDES: dict[str, Any] = {
    "budget": lambda o, v: _replace(o, budget_min=parse_budget(v)),
    "speed": lambda o, v: _replace(o, speed_kmh=_number("speed", v, low=0.1, high=200.0)),
    "start_time": lambda o, v: _replace(o, start_time=_time("start_time", v)),
    "campaign": lambda o, v: _replace(o, campaign_days=int(_number("campaign", v, low=1, high=MAX_CAMPAIGN_DAYS,
                                                                  whole=True))),
    "start": lambda o, v: _replace(o, start=parse_place(v, "start")),
    "end": lambda o, v: _replace(o, end=parse_place(v, "end")),
    "home": lambda o, v: _replace(o, home=_lonlat("home", v)),
    "workers": lambda o, v: _replace(o, workers=None if v == "roster" else int(
        _number("workers", v, low=1, high=MAX_WORKERS, whole=True))),
    **{f"frequency_{c}": _frequency(c) for c in _COLOURS},
    **{f"service_{c}": _service(c) for c in _COLOURS},
}


def _replace(opts: PatrolOptions, **kw: Any) -> PatrolOptions:
    from dataclasses import replace

    return replace(opts, **kw)


def request_options(base: PatrolOptions) -> tuple[PatrolOptions, tuple[tuple[str, str], ...]]:
    """The options of this request: ``base`` with each override of the query applied, and the overrides (a key)."""
    given = tuple(sorted((k, request.args[k]) for k in OVERRIDES if k in request.args))
    opts = base
    for k, v in given:
        opts = OVERRIDES[k](opts, v)
    if opts.campaign_days is not None and opts.campaign_days > MAX_CAMPAIGN_DAYS:
        raise UsageError(f"the rules' campaign of {opts.campaign_days} days is longer than the "
                         f"{MAX_CAMPAIGN_DAYS} days a request may plan")
    return opts, given


class Planner:
    """The county opened for patrol planning once, and the plans made so far (LRU)."""

    def __init__(self, path: str, network: str | None = None, options: PatrolOptions | None = None, *,
                 store: Store | None = None, frames: Callable[[], Mapping[str, Any]] | None = None,
                 regions: Regions | None = None,
                 region: Callable[[tuple[float, float, float, float]], Mapping[str, Any]] | None = None) -> None:
        self.path = path
        self.frames = frames  # the county's layers from memory (see service.store.County.frames)
        self.regions, self.region = regions, region  # planned by township (see Regions), when both are given
        self._regional: OrderedDict[str, County] = OrderedDict()
        self.name = path  # what messages and logs say: never a password
        if is_url(path):
            from gridgeo.store.postgres import redact

            self.name = redact(path)
        self.network = network
        self.store = store  # its visits and status changes: what each plan starts from
        self.options = PatrolOptions() if options is None else options  # the RULES file's [patrol], or defaults
        self._county: County | None = None
        self._plans: OrderedDict[tuple[Any, ...], list[DayPlan]] = OrderedDict()
        self._versions: weakref.WeakKeyDictionary[County, tuple[int, int]] = weakref.WeakKeyDictionary()

    def county_of(self, grid: str) -> County:
        """The :class:`gridgeo.patrol.County` that plans ``grid``: its township's (:class:`Regions`), or the
        whole county's."""
        where = self.regions.of(grid.split(",")[0]) if self.regions is not None and self.region else None
        if where is None:
            return self.county()
        town, box = where
        with _lock:
            if town in self._regional:
                self._regional.move_to_end(town)
                return self._regional[town]
            log.info("opening township %s of %s for patrol planning", town, self.name)
            try:
                county = County(self.path, network=self.network, names=False, frames=self.region(box))  # type: ignore[misc]
            except (InputError, OSError) as exc:
                raise self._unavailable(exc) from exc
            self._regional[town] = county
            while len(self._regional) > _REGIONS:
                self._regional.popitem(last=False)
            return county

    def county(self) -> County:
        """The :class:`gridgeo.patrol.County`, opened on first use.

        Raises
        ------
        ServiceUnavailableError
            When the file can no longer be opened (deleted, replaced, unreadable
            since start-up) or the service is set up without a street network:
            the server's problem, not the request's, so 503 and not 422.
        """
        with _lock:
            if self._county is None:
                log.info("opening %s for patrol planning", self.name)
                try:
                    # names=False: a stop list never shows a register's household names (it is cached and
                    # shared by every caller; names come with /collections/households to those allowed)
                    frames = self.frames() if self.frames is not None else None
                    self._county = County(self.path, network=self.network, names=False, frames=frames)
                except (InputError, OSError) as exc:
                    raise self._unavailable(exc) from exc
            return self._county

    def _unavailable(self, exc: BaseException) -> ServiceUnavailableError:
        """The 503 for a county that cannot be opened: the file gone or changed (it was read at start-up), or
        the set-up (no street network); the reader's own words go to the log with the traceback."""
        if is_url(self.path):
            return ServiceUnavailableError(f"patrol planning is unavailable: the county database cannot be read "
                                           f"({exc}); restart the service once it is back")
        gone = not (os.path.isfile(self.path) and os.access(self.path, os.R_OK))
        if gone or (isinstance(exc, FileFormatError) and exc.path == str(self.path)):
            return ServiceUnavailableError(f"the county file {self.path} is no longer readable; "
                                           "restart the service once it is back")
        return ServiceUnavailableError(f"patrol planning is unavailable: {exc}; fix the county file or the "
                                       "NETWORK setting and restart the service")

    def _records(self, county: County) -> tuple[int, int]:
        """Bring the store's visits and statuses into ``county`` when they changed; their version."""
        if self.store is None:
            return (0, 0)
        version = self.store.records_version()
        with _lock:
            if self._versions.get(county) != version:  # each open county (a township's too) keeps its own
                county.use_records(Records(self.store.last_visits(), self.store.statuses()))
                self._versions[county] = version
        return version

    def plan(self, grid: str, day: dt.date, options: PatrolOptions,
             key: tuple[tuple[str, str], ...] = ()) -> list[DayPlan]:
        """The day's plan for ``grid`` (a campaign's days: all of them) under ``options``, cached by the
        request's overrides ``key`` (NotFoundError for an unknown grid, InfeasibleError for a tiny budget)."""
        county = self.county_of(grid)
        for code in grid.split(","):  # A,B: one round across several small grids (County.round_stops)
            county.check_grid(code)
        version = self._records(county)
        cache = (grid, day, key, version)
        with _lock:
            if cache in self._plans:
                self._plans.move_to_end(cache)
                return self._plans[cache]
        plan = plan_grid(county, grid, day=day, options=options)
        with _lock:
            self._plans[cache] = plan
            while len(self._plans) > _CACHE_SIZE:
                self._plans.popitem(last=False)
        return plan


#: lon/lat members of a stop's properties (and of each entry of a route's ``stops`` list)
_POINT_MEMBERS = ("location", "street")


def _shift_points(props: dict[str, Any], coords: str) -> None:
    """A stop's door ``location`` and ``street`` point in the datum ``coords``, in place."""
    for key in _POINT_MEMBERS:
        loc = props.get(key)
        if loc is not None:
            p = wgs84_to_datum(np.array([shapely.Point(loc)]), coords)[0]
            props[key] = [round(p.x, 7), round(p.y, 7)]


def _shift(doc: dict[str, Any], coords: str) -> dict[str, Any]:
    """The route's geometries (and each stop's door and street points) in a Chinese web-map datum."""
    for feat in doc["features"]:
        geom = shapely.geometry.shape(feat["geometry"])
        feat["geometry"] = json.loads(shapely.to_geojson(wgs84_to_datum(np.array([geom]), coords)[0]))
        _shift_points(feat["properties"], coords)
        for entry in feat["properties"].get("stops", []):
            _shift_points(entry, coords)
    doc["coords"] = coords
    return doc


def _date() -> dt.date:
    raw = request.args.get("date")
    if raw is None:
        return dt.datetime.now(CST).date()
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise UsageError(f"date must be YYYY-MM-DD, got {raw!r}") from exc
    check_plan_dates(day, 1)
    return day


def _may_see_route(grid_id: str) -> None:
    """A route names households and their priority colours: with accounts on, only for those who may read
    personal fields in every grid asked for (its worker, the village's secretary, an admin)."""
    access = current_app.extensions.get("access")
    if access is None or not access.controlled():
        return
    chains = current_app.extensions["chains"]
    for code in grid_id.split(","):
        require("read.personal", chains.chain(code) or (code,), what=f"grid {code}")


@bp.get("/patrol/<grid_id>")
def patrol(grid_id: str) -> Response:
    """The route of ``grid_id`` on ``date`` (default today, UTC+8); the overrides of :data:`OVERRIDES`
    (``budget`` e.g. ``4h``, ``campaign=5`` ...); ``f=gpx``."""
    check_params(("date", "coords", "f", *OVERRIDES))
    _may_see_route(grid_id)
    fmt = negotiate({"json": GEOJSON, "gpx": GPX})
    day = _date()
    planner: Planner = current_app.extensions["planner"]
    options, key = request_options(planner.options if planner is not None else PatrolOptions())
    if options.campaign_days is not None:
        check_plan_dates(day, options.campaign_days)
    coords = parse_coords()
    if coords is not None and fmt == "gpx":
        raise UsageError("GPX is WGS84 by definition; coords applies to GeoJSON")
    plans = planner.plan(grid_id, day, options, key)
    read_audit.record("patrol", list(dict.fromkeys(v.stop.id for d in plans for v in d.visits)))  # names, colours
    plan: DayPlan | list[DayPlan] = plans if options.campaign_days is not None or len(plans) > 1 else plans[0]
    if fmt == "gpx":
        resp = Response(route_gpx(plan), mimetype=GPX)
        resp.headers["Content-Disposition"] = f'inline; filename="patrol-{grid_id}-{day.isoformat()}.gpx"'
        return resp
    doc = route_geojson(plan)
    if coords is not None:
        doc = _shift(doc, coords)
    resp = Response(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), mimetype=GEOJSON)
    if coords is None:
        resp.headers["Content-Crs"] = f"<{CRS84}>"
    return resp
