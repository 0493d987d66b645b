"""The options of a patrol plan and their defaults, in one place; the budget as people write it.

:class:`PatrolOptions` is what the command line (``gridgeo patrol``) and the
web service (``/patrol/{grid}``) let a user change; both hand it to
:func:`gridgeo.patrol.plan_grid`, so a default changed here changes for both.
The keyword defaults of :func:`~gridgeo.patrol.prepare` and
:func:`~gridgeo.patrol.plan_day` are read from it too.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gridgeo.errors import UsageError

__all__ = ["FIRST_DATE", "LAST_DATE", "SPEED_KMH", "PatrolOptions", "check_plan_dates", "parse_budget"]

#: The days a plan may cover: the calendar arithmetic of a plan (recurrence, weekdays, timestamps) is only
#: meaningful, and only free of overflow, well inside Python's date range.
FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2999, 12, 31)


def check_plan_dates(first: dt.date, days: int) -> None:
    """Refuse a plan that starts or ends outside :data:`FIRST_DATE` .. :data:`LAST_DATE`.

    Checked before planning because ``date + timedelta`` overflows near Python's
    ``date.min`` / ``date.max`` and would surface as an ``OverflowError`` deep in
    the planner instead of a usage error naming the range.

    Raises
    ------
    UsageError
        ``date 0001-01-01 + 2 days is outside the supported range 1900-01-01..2999-12-31``.
    """
    last_ok = days >= 1 and (LAST_DATE - first).days >= days - 1
    if first < FIRST_DATE or first > LAST_DATE or not last_ok:
        raise UsageError(f"date {first.isoformat()} + {days} days is outside the "
                         f"supported range {FIRST_DATE.isoformat()}..{LAST_DATE.isoformat()}")


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
    """

    budget_min: float = 240.0
    speed_kmh: float | None = None
    start_time: dt.time = dt.time(8, 30)
    max_snap: float = 1000.0
    seed: int = 0
    time_limit: float = 1.0

    def speed(self, mode: str) -> float:
        """Speed on a network of ``mode``: the one given, else the mode's default."""
        return self.speed_kmh if self.speed_kmh is not None else SPEED_KMH[mode]


_BUDGET = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*(?:m|min))?\s*$", re.IGNORECASE)


def parse_budget(text: str | float) -> float:
    """Minutes from ``"4h"``, ``"90min"``, ``"3h30m"``, ``"1.5h"`` or a bare number of minutes (``"240"``).

    Raises
    ------
    UsageError
        For anything else, or a budget that is not positive.
    """
    if isinstance(text, int | float):
        minutes = float(text)
    else:
        s = str(text).strip()
        try:
            minutes = float(s)
        except ValueError:
            m = _BUDGET.match(s)
            if not m or not (m.group(1) or m.group(2)):
                raise UsageError(f"budget {text!r}: expected e.g. 4h, 90min, 3h30m or 240 (minutes)") from None
            minutes = float(m.group(1) or 0) * 60.0 + float(m.group(2) or 0)
    if not (math.isfinite(minutes) and minutes > 0):
        raise UsageError(f"budget must be positive, got {text!r}")
    return minutes
