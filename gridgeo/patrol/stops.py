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
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CST",
    "DEFAULT_RULES",
    "RULE_KEYS",
    "SYNTHETIC_SHARES",
    "CategoryRule",
    "GridStops",
    "Stop",
    "VisitRule",
    "due",
    "effective_rule",
]

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
    window
        Clock minutes ``(open, close)`` after midnight in which a visit must lie, or None (any time).

    ``frequency_days = 0`` means no routine visit: such stops are visited only by a campaign
    (:func:`gridgeo.patrol.plan_campaign`).
    """

    frequency_days: int
    service_min: float
    weight: float
    label: str = ""
    window: tuple[int, int] | None = None


@dataclass(frozen=True)
class CategoryRule:
    """What a special-care category (低保户, 留守儿童, 空巢老人, 残疾人 ...) asks of a household's visits.

    Every field is optional: a category that only shortens the frequency leaves
    the service minutes to the household's colour. See :func:`effective_rule`.
    """

    frequency_days: int | None = None
    service_min: float | None = None
    weight: float | None = None
    window: tuple[int, int] | None = None


#: Default rules per priority: red daily (10 min), orange every 3 days and yellow weekly (5 min),
#: risk points every 3 days (5 min), grid points weekly (3 min). Weights 100 / 10 / 1.
DEFAULT_RULES: dict[str, VisitRule] = {
    "red": VisitRule(1, 10.0, 100.0, "红"),
    "orange": VisitRule(3, 5.0, 10.0, "橙"),
    "yellow": VisitRule(7, 5.0, 1.0, "黄"),
    "risk": VisitRule(3, 5.0, 10.0, "风险点"),
    "grid_point": VisitRule(7, 3.0, 1.0, "网格点"),
    "none": VisitRule(0, 5.0, 1.0, "未标记"),
}
#: The keys of :data:`DEFAULT_RULES` a rules file may set (``[patrol.red]`` ...), in order.
RULE_KEYS: tuple[str, ...] = tuple(DEFAULT_RULES)
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
    special
        Special-care categories of a household (低保户, 留守儿童 ...), from a register's ``special`` column.
    window
        Clock minutes ``(open, close)`` when the household can be visited (a ``visit_window`` column), or None.
    household
        The item id of the households feature the stop comes from (the id visits are logged against), or None.
    """

    id: str
    kind: str
    priority: str
    x: float
    y: float
    name: str = ""
    last_visit: dt.date | None = None
    special: tuple[str, ...] = ()
    window: tuple[int, int] | None = None
    household: str | None = None


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
    when the days since its last visit reach the rule's frequency. A rule of
    frequency 0 (an unmarked household) is never due: campaigns only.
    """
    if rule.frequency_days <= 0:
        return False, 0
    if stop.last_visit is None:
        return True, 0
    since = (day - stop.last_visit).days
    return since >= rule.frequency_days, max(0, since - rule.frequency_days)


def _narrowest(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """The intersection of two clock windows (None: any time); ``(x, x)`` when they do not overlap."""
    if a is None or b is None:
        return a if b is None else b
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return (lo, max(lo, hi))


def effective_rule(stop: Stop, rules: Mapping[str, VisitRule], special: Mapping[str, CategoryRule]) -> VisitRule:
    """The rule a stop is visited by: its colour's, made more demanding by each of its special-care categories.

    Why field by field: a household that is both 低保户 (monthly, 15 min) and
    留守儿童 (weekly, 10 min) must be seen weekly *and* given 15 minutes; the most
    demanding rule is the shortest frequency (0, no routine visit, counts as
    none), the longest service, the largest weight and the narrowest window of
    the colour's rule and every category that has a rule. The household's own
    ``visit_window`` replaces the rules' windows. Categories without a rule
    change nothing.
    """
    base = rules[stop.priority]
    freq, service, weight, window = base.frequency_days, base.service_min, base.weight, base.window
    for cat in stop.special:
        c = special.get(cat)
        if c is None:
            continue
        if c.frequency_days is not None:
            freq = c.frequency_days if freq <= 0 else min(freq, c.frequency_days)
        service = max(service, c.service_min) if c.service_min is not None else service
        weight = max(weight, c.weight) if c.weight is not None else weight
        window = _narrowest(window, c.window)
    if stop.window is not None:
        window = stop.window
    if (freq, service, weight, window) == (base.frequency_days, base.service_min, base.weight, base.window):
        return base
    return VisitRule(freq, service, weight, base.label, window)
