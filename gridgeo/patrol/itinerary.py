"""A day's plan as a list people can read: the stops in order, who, where, when, and what is due.

A grid worker follows the plan on a phone, usually in a GPX app that shows the
waypoints as a list sorted by name. So each visit of a :class:`~gridgeo.patrol.plan.DayPlan`
becomes one entry (:func:`stop_entry`: order, name, address where known,
priority, arrival and departure at the door, what is due and why), and one
waypoint name that sorts in walking order and says the essentials at a glance
(:func:`waypoint_name`: ``"03 10:25 红 张三"``), with the rest in its
description (:func:`waypoint_description`).

What is due comes from the rule the visit was planned under
(:class:`~gridgeo.patrol.stops.VisitRule`: red daily, orange every 3 days ...)
and the days it is overdue. Addresses and special-care categories come from
the register a build carried into the ``households`` layer
(:func:`with_register`), and only for a county opened with ``names=True``:
like names, they are people's data the service does not hand out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gridgeo.patrol.stops import DEFAULT_RULES

if TYPE_CHECKING:
    import geopandas as gpd

    from gridgeo.patrol.county import County
    from gridgeo.patrol.plan import DayPlan, Visit

__all__ = ["due_text", "label", "stop_entry", "waypoint_description", "waypoint_name", "with_register"]

#: Lon/lat of metric points, ``(k, 2) -> (k, 2)`` (see :mod:`gridgeo.patrol.export`).
ToLonLat = Callable[[NDArray[np.float64]], NDArray[np.float64]]

#: What a visit is, by the kind of stop: households are called on (走访), points inspected (巡查).
_ACT = {"household": "走访", "risk": "巡查", "grid_point": "巡查"}
_NO_VALUE = ("", "nan", "none", "nat", "<na>")


def label(visit: Visit) -> str:
    """The Chinese label of the visit's priority (红, 橙, 黄, 风险点, 网格点), else the priority itself."""
    rule = visit.rule or DEFAULT_RULES.get(visit.stop.priority)
    return (rule.label if rule is not None else "") or visit.stop.priority


def _every(days: int) -> str:
    return {1: "每日", 7: "每周", 30: "每月"}.get(days, f"每{days}天")


def due_text(visit: Visit) -> str:
    """What is due, in words: ``"红 每日走访，逾期2天"``; the rule's frequency, the days overdue."""
    rule = visit.rule or DEFAULT_RULES.get(visit.stop.priority)
    act = _ACT.get(visit.stop.kind, "走访")
    text = f"{label(visit)} {_every(rule.frequency_days)}{act}" if rule is not None else f"{label(visit)} {act}"
    if visit.stop.last_visit is None:
        return text + "，从未" + act
    return text + (f"，逾期{visit.days_overdue}天" if visit.days_overdue > 0 else "，今日到期")


def _minutes(visit: Visit) -> float:
    """Minutes at the door (the rule's service time, as planned)."""
    return round((visit.departure - visit.arrival).total_seconds() / 60.0, 1)


def stop_entry(visit: Visit, to_lonlat: ToLonLat) -> dict[str, Any]:
    """One visit as plain JSON values, for the ``stops`` list and the stop's Point feature.

    ``location`` is the door (lon/lat), ``street`` where the walk to it leaves the street;
    ``address`` and ``special`` are ``None`` where unknown or withheld.
    """
    door, street = to_lonlat(np.array([(visit.stop.x, visit.stop.y), visit.xy], dtype=float)).tolist()
    rule = visit.rule or DEFAULT_RULES.get(visit.stop.priority)
    return {
        "order": visit.order,
        "stop": visit.stop.id,
        "name": visit.stop.name or visit.stop.id,
        "stop_kind": visit.stop.kind,
        "priority": visit.stop.priority,
        "label": label(visit),
        "address": visit.address or None,
        "special": visit.special or None,
        "arrival": visit.arrival.isoformat(),
        "departure": visit.departure.isoformat(),
        "time": visit.arrival.strftime("%H:%M"),
        "minutes": _minutes(visit),
        "due": due_text(visit),
        "frequency_days": None if rule is None else rule.frequency_days,
        "days_overdue": visit.days_overdue,
        "last_visit": None if visit.stop.last_visit is None else visit.stop.last_visit.isoformat(),
        # the households item id a visit to this stop is logged against (POST /visits)
        "household": visit.stop.household,
        "snap_m": round(visit.snap_m, 1),
        "location": door,
        "street": street,
    }


def waypoint_name(visit: Visit, *, day: str = "") -> str:
    """``"03 10:25 红 张三"``: sorts in walking order (``day``, e.g. ``"12-02"``, first when a file holds several)."""
    head = f"{day} " if day else ""
    who = visit.stop.name or visit.stop.id
    return f"{head}{visit.order:02d} {visit.arrival.strftime('%H:%M')} {label(visit)} {who}"


def waypoint_description(visit: Visit) -> str:
    """The rest a worker needs at the door: address, what is due, minutes, the walk from the street."""
    parts = []
    if visit.address:
        parts.append(f"地址：{visit.address}")
    parts.append(due_text(visit))
    if visit.special:
        parts.append(f"类别：{visit.special}")
    if visit.stop.last_visit is not None:
        parts.append(f"上次{visit.stop.last_visit.strftime('%m-%d')}")
    parts.append(f"{visit.arrival.strftime('%H:%M')}–{visit.departure.strftime('%H:%M')} 停留{_minutes(visit):g}分钟")
    if visit.snap_m >= 1.0:
        parts.append(f"离街道{visit.snap_m:.0f}米")
    parts.append(f"{visit.stop.kind} {visit.stop.id}")
    return "；".join(parts)


# ------------------------------------------------------------------------------ the register's address
def _value(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    s = str(v).strip()
    return "" if s.lower() in _NO_VALUE else s


def _household_ids(hh: gpd.GeoDataFrame) -> list[str]:
    """The stop id of each household row, as :class:`~gridgeo.patrol.county.County` names household stops:
    ``id``, else a build's ``source_id``, else ``h`` and the row's index (also where the key is blank)."""
    key = next((c for c in ("id", "source_id") if c in hh.columns), None)
    if key is None:
        return [f"h{idx}" for idx in hh.index]
    blank = ("", "nan", "NaT", "<NA>")
    return [f"h{idx}" if v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in blank else str(v)
            for idx, v in zip(hh.index, hh[key], strict=True)]


def _register(county: County, grid: str, ids: set[str]) -> dict[str, tuple[str, str]]:
    """Address and special-care categories of grid ``grid``'s households ``ids`` (none without names)."""
    hh = county.households
    if not county.names or hh is None or not ids or not ({"address", "special"} & set(hh.columns)):
        return {}
    from gridgeo.patrol.county import in_grid

    hh = in_grid(hh, county.check_grid(grid))  # County located each household in its grid
    found: dict[str, tuple[str, str]] = {}
    for i, sid in enumerate(_household_ids(hh)):
        if sid in ids:
            row = hh.iloc[i]
            found[sid] = (_value(row.get("address")), _value(row.get("special")))
    return found


def with_register(county: County, plans: Sequence[DayPlan]) -> list[DayPlan]:
    """The plans with each household visit's address and special-care categories from the county's register.

    Only where the county was opened with ``names=True`` (the CLI) and its ``households`` layer
    carries them; otherwise the plans are returned as they are.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for grid in dict.fromkeys(p.grid for p in plans):
        ids = {v.stop.id for p in plans if p.grid == grid for v in p.visits if v.stop.kind == "household"}
        found.update({(grid, sid): info for sid, info in _register(county, grid, ids).items()})
    if not found:
        return list(plans)

    def described(grid: str, v: Visit) -> Visit:
        info = found.get((grid, v.stop.id)) if v.stop.kind == "household" else None
        return v if info is None else replace(v, address=info[0], special=info[1])

    return [replace(p, visits=[described(p.grid, v) for v in p.visits]) for p in plans]
