"""A day's (or a period's) routes as RFC 7946 GeoJSON and GPX 1.1, for maps and phones.

Routes are planned in the network's metric CRS (:mod:`gridgeo.patrol.plan`); both formats are
EPSG:4326 lon/lat rounded to 7 decimals (about 1 cm), arrival times local in GeoJSON and UTC in GPX.
Both draw the walk from the street to each door and back, and both list the stops as people read them
(:mod:`gridgeo.patrol.itinerary`).
Files are written atomically, so a reader never sees half a route.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pyproj
from numpy.typing import NDArray

from gridgeo.patrol.itinerary import stop_entry, waypoint_description, waypoint_name
from gridgeo.patrol.plan import DayPlan, period_summary

__all__ = ["route_geojson", "route_gpx", "write_geojson", "write_gpx"]


@functools.lru_cache(maxsize=8)
def _transformer(wkt: str) -> pyproj.Transformer:
    # building a Transformer costs ~70 ms: once per CRS, not once per route
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), "EPSG:4326", always_xy=True)


def _to_lonlat(crs: pyproj.CRS) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    tr = _transformer(crs.to_wkt())

    def conv(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = tr.transform(xy[:, 0], xy[:, 1])
        return np.asarray(np.round(np.c_[lon, lat], 7), dtype=np.float64)

    return conv


def _plans(plan: DayPlan | Sequence[DayPlan]) -> list[DayPlan]:
    return [plan] if isinstance(plan, DayPlan) else list(plan)


def route_geojson(plan: DayPlan | Sequence[DayPlan]) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection of one or several days' routes.

    Per day: a ``route`` LineString (along the streets, and from the street to
    each door and back, so its length is ``distance_m``) with the day's
    figures and its ``stops`` in walking order (:func:`gridgeo.patrol.itinerary.stop_entry`:
    name, address where known, priority, arrival, what is due ...), a
    ``station`` Point, and one ``stop`` Point per visit at the door with the
    same entry (``street``: where the walk to the door leaves the street).
    The summary (of the period, when several days are given) is the
    collection's top-level ``properties`` member. EPSG:4326 lon/lat, no ``crs`` member.
    """
    plans = _plans(plan)
    features: list[dict[str, Any]] = []
    for p in plans:
        conv = _to_lonlat(p.crs)
        line = conv(p.coords).tolist()
        entries = [stop_entry(v, conv) for v in p.visits]
        props = {k: v for k, v in p.summary().items() if k != "missed"}
        features.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
                         "properties": {"kind": "route", **props, "stops": entries}})
        st = conv(np.array([p.station]))[0].tolist()
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": st},
                         "properties": {"kind": "station", "grid": p.grid, "date": p.date.isoformat(),
                                        "departure": p.start.isoformat(), "arrival": p.end.isoformat()}})
        features.extend(
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": e["location"]},
             "properties": {"kind": "stop", "grid": p.grid, "date": p.date.isoformat(), **e}}
            for e in entries)
    summary = period_summary(plans) if len(plans) > 1 else (plans[0].summary() if plans else {})
    return {"type": "FeatureCollection", "properties": summary, "features": features}


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _waypoints(plans: list[DayPlan]) -> list[str]:
    """One ``wpt`` per visit at the door, named to sort in walking order (the day first when there are several)."""
    dated = len({p.date for p in plans}) > 1
    out: list[str] = []
    for p in plans:
        conv = _to_lonlat(p.crs)
        day = p.date.strftime("%m-%d") if dated else ""
        for v in p.visits:
            lon, lat = conv(np.array([(v.stop.x, v.stop.y)]))[0]
            out.append(f'  <wpt lat="{lat:.7f}" lon="{lon:.7f}"><time>{_utc(v.arrival)}</time>'
                       f"<name>{escape(waypoint_name(v, day=day))}</name>"
                       f"<desc>{escape(waypoint_description(v))}</desc><type>{escape(v.stop.kind)}</type></wpt>")
    return out


def route_gpx(plan: DayPlan | Sequence[DayPlan], *, name: str | None = None) -> str:
    """GPX 1.1 text: metadata, one ``wpt`` per visit at its door (in order, with the UTC arrival time, a name
    such as ``03 10:25 红 张三`` and the address and what is due in ``desc``), then one ``trk`` per day with
    the route's geometry in one ``trkseg``, street -> door -> street at each visit (the schema's order:
    metadata, wpt, rte, trk).
    """
    plans = _plans(plan)
    title = name or (f"gridgeo patrol {plans[0].grid}" if plans else "gridgeo patrol")
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<gpx version="1.1" creator="gridgeo" xmlns="http://www.topografix.com/GPX/1/1" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">',
           f"  <metadata><name>{escape(title)}</name>"
           + (f"<time>{_utc(plans[0].start)}</time>" if plans else "") + "</metadata>"]
    out.extend(_waypoints(plans))
    for p in plans:
        conv = _to_lonlat(p.crs)
        out.append(f"  <trk><name>{escape(p.grid)} {p.date.isoformat()}</name><trkseg>")
        out.extend(f'    <trkpt lat="{lat:.7f}" lon="{lon:.7f}"/>' for lon, lat in conv(p.coords))
        out.append("  </trkseg></trk>")
    out.append("</gpx>")
    return "\n".join(out) + "\n"


def write_geojson(plan: DayPlan | Sequence[DayPlan], path: str | Path) -> None:
    """Write :func:`route_geojson` atomically."""
    from gridgeo.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(route_geojson(plan), ensure_ascii=False), encoding="utf-8")


def write_gpx(plan: DayPlan | Sequence[DayPlan], path: str | Path) -> None:
    """Write :func:`route_gpx` atomically."""
    from gridgeo.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(route_gpx(plan), encoding="utf-8")

