"""The options of a patrol plan and their defaults, in one place; the budget as people write it.

:class:`PatrolOptions` is what the command line (``gridgeo patrol``) and the
web service (``/patrol/{grid}``) let a user change; both hand it to
:func:`gridgeo.patrol.plan_grid`, so a default changed here changes for both.
The keyword defaults of :func:`~gridgeo.patrol.prepare` and
:func:`~gridgeo.patrol.plan_day` are read from it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gridgeo.data.quantities import PLACES, parse_duration, parse_place
from gridgeo.errors import UsageError
from gridgeo.patrol.stops import DEFAULT_RULES, CategoryRule, VisitRule

__all__ = [
    "PLACES",
    "PLAN_DATES",
    "SPEED_KMH",
    "PatrolOptions",
    "Place",
    "check_plan_dates",
    "options_from_rules",
    "parse_budget",
    "parse_place",
]

#: Where a round starts or ends: ``"station"`` (the grid's), ``"home"`` (the worker's) or WGS84 ``(lon, lat)``
#: (:func:`~gridgeo.data.quantities.parse_place` reads it).
Place = str | tuple[float, float]

#: Default speed per network mode, km/h: walking, driving.
SPEED_KMH: Mapping[str, float] = MappingProxyType({"walk": 4.5, "drive": 25.0})


@dataclass(frozen=True)
class PatrolOptions:
    """How a grid worker's rounds are planned.

    Attributes
    ----------
    budget_min
        Minutes per day from leaving the station to returning, service included (4 h).
    speed_kmh
        Walking (or driving) speed; None: :data:`SPEED_KMH` of the network's mode.
    start_time
        When each day's round starts, local time (UTC+8).
    max_snap
        Metres from a stop to the nearest street beyond which the stop is
        missed ("too far from the streets"); the station farther is an error.
    seed
        Seed of the solver (the synthetic stops' seed is the county's).
    time_limit
        The solver's safety cap per day, seconds (it normally stops on
        iteration counts, see :func:`gridgeo.routing.orienteering`).
    rules
        Visit rule per priority (:data:`~gridgeo.patrol.stops.DEFAULT_RULES`; a rules file's ``[patrol.red]`` ...).
    special
        Rule per special-care category (``[patrol.special]``); a household takes the most demanding
        (:func:`~gridgeo.patrol.stops.effective_rule`).
    campaign_days
        Campaign mode (扫楼敲门): every household of the grid once over this many days; None: daily rounds.
    start, end
        Where each round starts and ends (:data:`Place`); ``home`` needs :attr:`home`.
    home
        The worker's home, WGS84 ``(lon, lat)``.
    workers
        Workers on the grid's day: more than one gets one round each (:mod:`gridgeo.patrol.team`); None:
        as many as the county's ``people`` table lists for the grid (:meth:`County.workers_of`).
    """

    budget_min: float = 240.0
    speed_kmh: float | None = None
    start_time: dt.time = dt.time(8, 30)
    max_snap: float = 1000.0
    seed: int = 0
    time_limit: float = 1.0
    rules: Mapping[str, VisitRule] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_RULES)))
    special: Mapping[str, CategoryRule] = field(default_factory=lambda: MappingProxyType({}))
    campaign_days: int | None = None
    start: Place = "station"
    end: Place = "station"
    home: tuple[float, float] | None = None
    workers: int | None = 1

    def speed(self, mode: str) -> float:
        """Speed on a network of ``mode``: the one given, else the mode's default."""
        return self.speed_kmh if self.speed_kmh is not None else SPEED_KMH[mode]


def parse_budget(text: str | float) -> float:
    """Minutes from ``"4h"``, ``"90min"``, ``"3h30m"``, ``"1.5h"`` or a bare number of minutes (``"240"``).

    Raises
    ------
    UsageError
        For anything else, or a budget that is not positive.
    """
    return parse_duration(text, "budget")


#: The first and last day a plan may cover: wide enough for any real patrol, and far from the ends of
#: :class:`datetime.date`, where adding the days of a plan (or the days since a last visit) overflows.
PLAN_DATES: tuple[dt.date, dt.date] = (dt.date(1900, 1, 1), dt.date(2999, 12, 31))


def check_plan_dates(first: dt.date, days: int) -> None:
    """Check that the ``days`` days from ``first`` lie in :data:`PLAN_DATES`.

    Why: ``date + timedelta`` raises ``OverflowError`` near year 1 and 9999,
    deep inside planning; checked here, the caller gets one clear usage error.

    Raises
    ------
    UsageError
        For ``days < 1`` or a day outside the range, naming the date and the range.
    """
    if days < 1:
        raise UsageError(f"days must be >= 1, got {days}")
    lo, hi = PLAN_DATES
    if first < lo or (hi - first).days < days - 1:
        raise UsageError(f"date {first.isoformat()} + {days} day{'s' if days != 1 else ''} is outside the "
                         f"supported range {lo.isoformat()}..{hi.isoformat()}")


def options_from_rules(patrol: Mapping[str, Any], base: PatrolOptions | None = None) -> PatrolOptions:
    """:class:`PatrolOptions` from a rules file's checked ``[patrol]`` table (:attr:`CountyRules.patrol`).

    The table's values are already canonical (:func:`gridgeo.county.rules.load_county_rules` checked them):
    ``budget_min``, ``speed_kmh``, ``start_time``, ``campaign_days``, ``start``, ``end``, ``rules`` (priority ->
    fields of :class:`VisitRule`) and ``special`` (category -> fields of :class:`CategoryRule`). What it leaves
    out keeps ``base``'s value (the library's defaults).
    """
    opts = PatrolOptions() if base is None else base
    given = {k: patrol[k] for k in ("budget_min", "speed_kmh", "start_time", "campaign_days") if k in patrol}
    given.update({k: parse_place(patrol[k], k) for k in ("start", "end") if k in patrol})
    rules = dict(opts.rules)
    for key, fields in patrol.get("rules", {}).items():
        rules[key] = replace(rules[key], **fields)
    special = dict(opts.special)
    special.update({cat: CategoryRule(**fields) for cat, fields in patrol.get("special", {}).items()})
    return replace(opts, **given, rules=MappingProxyType(rules), special=MappingProxyType(special))
