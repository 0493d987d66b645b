"""Real last visits and household statuses laid over a county's stops before a day is planned.

Why here and not in the store: planning takes plain dates and colours, whoever
kept them; the store (:mod:`gridgeo.store`) hands over what its visits and
status changes say, and a register's own ``last_visit``/``priority`` stay the
fallback for a household nobody has logged yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gridgeo.patrol.stops import Stop

_COLOURS = ("red", "orange", "yellow")


@dataclass(frozen=True)
class Records:
    """What the store says of households, by their item id.

    Attributes
    ----------
    last_visits
        The last day each household was found at home (``visited``).
    statuses
        Each household's current status: ``priority`` (red/orange/yellow, None for unmarked) and
        ``special`` (its special-care categories).
    """

    last_visits: Mapping[str, dt.date] = field(default_factory=dict)
    statuses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.last_visits or self.statuses)

    def apply(self, stops: list[Stop], day: dt.date, *, every: bool = False) -> list[Stop]:
        """``stops`` with their households' real last visits (before ``day``) and statuses.

        A visit on ``day`` itself or later is not counted: a plan for a day is what was due that morning.
        A status that unmarks a household drops it, unless ``every`` (a campaign visits everyone).
        """
        if not self:
            return stops
        out = []
        for s in stops:
            h = s.household
            if h is None:
                out.append(s)
                continue
            lv = self.last_visits.get(h)
            if lv is not None and lv < day and (s.last_visit is None or lv > s.last_visit):
                s = replace(s, last_visit=lv)
            st = self.statuses.get(h)
            marked = s if st is None else _with_status(s, st, every=every)
            if marked is not None:
                out.append(marked)
        return out


def _with_status(s: Stop, st: Mapping[str, Any], *, every: bool) -> Stop | None:
    if "special" in st:
        s = replace(s, special=tuple(st["special"] or ()))
    if "priority" in st:
        p = st["priority"]
        if p in _COLOURS:
            s = replace(s, priority=p)
        elif s.special or every:
            s = replace(s, priority="none")
        else:
            return None
    return s
