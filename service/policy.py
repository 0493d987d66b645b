"""The county's policy as the service applies it to edits: the household bounds of a village's grids.

Why here: a grid edited by hand or re-drawn on request is checked against the bounds the build drew it
within, from the rules file the county is served with (``RULES``: ``gridgeo serve --rules``), else the
defaults of ``gridgeo build`` (:class:`gridgeo.county.rules.CountyRules`), per village kind with the
township's and the village's overrides (:meth:`CountyRules.bounds_of_village`).
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from gridgeo.county.rules import CountyRules, load_county_rules, within_bounds
from gridgeo.errors import NotFoundError

from .features import county


def rules() -> CountyRules:
    """The county's rules (``RULES``, read once per app), else the defaults."""
    ext = current_app.extensions
    if "county_rules" not in ext:
        path = current_app.config.get("RULES")
        ext["county_rules"] = load_county_rules(path) if path else CountyRules()
    return ext["county_rules"]  # type: ignore[no-any-return]


def village_row(code: str) -> dict[str, Any]:
    """The village's row (``code``, ``name``, ``kind``, ``parent``, ...); :class:`NotFoundError` if none."""
    vil = county().get("villages")
    return vil.records([vil.locate_key(code)])[0]  # type: ignore[no-any-return]


def grid_bounds(village: dict[str, Any]) -> tuple[float, float]:
    """The household bounds of a grid of ``village`` (its row)."""
    b = rules().bounds_of_village(str(village.get("kind") or "rural"),
                                  village=(str(village.get("code") or ""), str(village.get("name") or "")),
                                  township=(str(village.get("parent") or ""),))
    return float(b.grid[0]), float(b.grid[1])


def bounds_of_grid_village(village_code: str) -> tuple[float, float] | None:
    """:func:`grid_bounds` of the village ``village_code``; None when the county has no such village."""
    if "villages" not in county().collections:
        return None
    try:
        return grid_bounds(village_row(village_code))
    except NotFoundError:  # a grid whose parent is not a served village has no bounds to check
        return None


def distance(households: float, bounds: tuple[float, float]) -> float:
    """How far ``households`` lies outside ``bounds`` (0 inside)."""
    lo, hi = bounds
    return max(lo - households, households - hi, 0.0)


__all__ = ["bounds_of_grid_village", "distance", "grid_bounds", "rules", "village_row", "within_bounds"]
