"""What a grid worker visits: visit rules per priority, stops, a grid's stops, and when a visit is due.

The rules are data, not code: a kind of stop (a red, orange or yellow
household, a risk point, a grid point) has a frequency, a service time and a
weight (:data:`DEFAULT_RULES`), and :func:`due` is the one place that turns a
stop's last visit into "due today, so many days overdue". The planner
(:mod:`gridgeo.patrol.plan`) prices due stops; the county reader
(:mod:`gridgeo.patrol.county`) makes the stops.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["CST", "DEFAULT_RULES", "SYNTHETIC_SHARES", "GridStops", "Stop", "VisitRule", "due"]

#: China Standard Time: arrival times are local, GPX times UTC.
CST = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class VisitRule:
    """How often a kind of stop must be visited, how long a visit takes, what it is worth.

    Attributes
    ----------
    frequency_days
        A visit is due when this many days have passed since the last one.
    service_min
        Minutes spent at the stop.
    weight
        Prize of a due visit (times ``1 + days overdue``).
    label
        Chinese label used in GPX waypoint names.
    """

    frequency_days: int
    service_min: float
    weight: float
    label: str = ""


#: Default rules per priority: red daily (10 min), orange every 3 days and yellow weekly (5 min),
#: risk points every 3 days (5 min), grid points weekly (3 min). Weights 100 / 10 / 1.
DEFAULT_RULES: dict[str, VisitRule] = {
    "red": VisitRule(1, 10.0, 100.0, "红"),
    "orange": VisitRule(3, 5.0, 10.0, "橙"),
    "yellow": VisitRule(7, 5.0, 1.0, "黄"),
    "risk": VisitRule(3, 5.0, 10.0, "风险点"),
    "grid_point": VisitRule(7, 3.0, 1.0, "网格点"),
}
#: Shares of households drawn red / orange / yellow when the data has no priorities (the rest: none).
SYNTHETIC_SHARES: dict[str, float] = {"red": 0.03, "orange": 0.07, "yellow": 0.15}


@dataclass(frozen=True)
class Stop:
    """A place to visit.

    Attributes
    ----------
    id
        Unique within the grid.
    kind
        ``household``, ``risk`` or ``grid_point``.
    priority
        Key into the rules (``red``, ``orange``, ``yellow``, ``risk``, ``grid_point``).
    x, y
        Location in the network's metric CRS (the door, not the street).
    name
        For people.
    last_visit
        Date of the last visit, or None (never: due at once).
    """

    id: str
    kind: str
    priority: str
    x: float
    y: float
    name: str = ""
    last_visit: dt.date | None = None


@dataclass
class GridStops:
    """The stops of one grid and its station (start and end of every round)."""

    grid: str
    station: tuple[float, float]
    stops: list[Stop]
    synthetic_priorities: bool = False
    synthetic_last_visits: bool = False
    name: str = ""
    station_given: bool = True  # False: the grid's inner point, snapped to the nearest street whatever the distance


def due(stop: Stop, rule: VisitRule, day: dt.date) -> tuple[bool, int]:
    """Whether ``stop`` is due on ``day`` under ``rule``, and by how many days it is overdue.

    A stop never visited is due at once (0 days overdue); otherwise it is due
    when the days since its last visit reach the rule's frequency.
    """
    if stop.last_visit is None:
        return True, 0
    since = (day - stop.last_visit).days
    return since >= rule.frequency_days, max(0, since - rule.frequency_days)
