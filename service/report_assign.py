"""Where a report is and who answers it: its chain of units from ``/locate``'s index, and its ladder.

A report's point is located with the service's :class:`~.locate.Locator`
(the same index ``/locate`` answers from; only its ``locate`` interface is
used). Its *ladder* (:class:`gridgeo.store.reports.Rung`) lists the handler
of each level the category climbs (:mod:`gridgeo.county.report_rules`):
the first person the county's roster (the ``people`` table) names for the
unit, else the unit's own ``leader`` column (what a build writes from the
county's data), else nobody, and then the next level up takes it, saying
why in the rung's note. The county level is always there: the county's
centre answers what no one below could.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gridgeo.county.report_rules import LEADER_TITLES, Category, ReportRules
from gridgeo.errors import GridgeoError
from gridgeo.store.reports import COUNTY, Rung

from .locate import LEVEL_KEYS, Locator, WhenReady
from .store import County

log = logging.getLogger(__name__)

#: the levels of a report's chain, coarsest first (the others, micro-grids and lanes, hold no handler)
CHAIN_LEVELS = ("area", "township", "block", "village", "exclusive", "grid", "point")


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    s = str(v).strip()
    return None if s in ("", "nan", "None", "<NA>") else s


class Assigner:
    """Locate a report and build its ladder (built once at start-up; read-only, so thread-safe)."""

    def __init__(self, county: County, locator: Locator | WhenReady, rules: ReportRules,
                 people: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.county = county
        self.locator = locator
        self.rules = rules
        self.people = people  # the roster by (layer, unit code), read once at start-up (:func:`.locate._people`)

    def places(self, lon: float, lat: float) -> list[dict[str, Any]]:
        """The units containing a WGS84 point, coarsest first (``[]``: outside the county)."""
        rows = self.locator.locate(np.array([lon], dtype=float), np.array([lat], dtype=float))
        out = []
        for level in CHAIN_LEVELS:
            r = rows.get(level)
            layer = LEVEL_KEYS[level]
            coll = self.county.collections.get(layer)
            if r is None or coll is None or int(r[0]) < 0 or "code" not in coll.column_names:
                continue
            rec = coll.records([int(r[0])])[0]  # held in memory or read from the file (:mod:`.lazy`)
            out.append({"level": level, "code": _text(rec.get("code")), "name": _text(rec.get("name"))})
        return [p for p in out if p["code"] is not None]

    def person(self, level: str, layer: str, code: str) -> dict[str, Any] | None:
        """Who answers for unit ``code`` of ``layer``: the roster's first person there, else its leader."""
        listed = self.people.get((layer, code))
        if listed:
            return {"name": listed[0].get("name"), "role": listed[0].get("role") or LEADER_TITLES.get(level),
                    "phone": listed[0].get("phone")}
        coll = self.county.collections.get(layer)
        if coll is None or "leader" not in coll.column_names:
            return None
        try:
            rec = coll.records([coll.locate_key(code)])[0]
        except GridgeoError:  # a code the layer lost: nobody
            return None
        name = _text(rec.get("leader"))
        if name is None:
            return None
        return {"name": name, "role": LEADER_TITLES.get(level), "phone": _text(rec.get("leader_phone"))}

    def ladder(self, places: list[dict[str, Any]], category: Category) -> list[Rung]:
        """The rungs of a report at ``places`` of ``category``, lowest first; levels without anyone skipped
        (each skip said in the note of the rung that takes over)."""
        at = {p["level"]: p["code"] for p in places}
        rungs: list[Rung] = []
        skipped: list[str] = []
        for level in self.rules.climb(category):
            hours = category.hours_at(level)
            if level == COUNTY:
                rungs.append(Rung(COUNTY, None, self.rules.county_handler, None, None, hours, _why(skipped)))
                break
            layer, code = LEVEL_KEYS[level], at.get(level)
            if level == "grid" and code is None and at.get("exclusive"):
                layer, code = "exclusive", at["exclusive"]
            if code is None:
                if level != "block":  # a county without blocks is no news; a place in no grid is
                    skipped.append(f"no {level} contains the place")
                continue
            who = self.person(level, layer, code)
            if who is None:
                skipped.append(f"no one responsible for {level} {code} in the roster")
                continue
            rungs.append(Rung(level, code, who["role"], who["name"], who["phone"], hours, _why(skipped)))
            skipped = []
        return rungs


def _why(skipped: list[str]) -> str | None:
    return "; ".join(skipped) + "; assigned one level up" if skipped else None
