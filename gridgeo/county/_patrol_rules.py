"""The ``[patrol]`` section of the county rules file: visit policy, its values made canonical.

Private to :mod:`gridgeo.county.rules` (``gridgeo patrol --rules``, ``gridgeo serve --rules``, ``/patrol``).
"""

from __future__ import annotations

from typing import Any

from gridgeo.county._rules_file import RulesFile
from gridgeo.errors import UsageError

#: the priorities a [patrol.KEY] table may set (gridgeo.patrol.stops.RULE_KEYS; a test keeps them equal)
PATROL_PRIORITIES: tuple[str, ...] = ("red", "orange", "yellow", "risk", "grid_point", "none")
#: what a priority's or a category's rule table may hold
PATROL_RULE_FIELDS: dict[str, str] = {
    "frequency_days": "a visit is due after this many days (0: no routine visit; campaigns only)",
    "service_min": "minutes at the door",
    "weight": "prize of a due visit (red 100, orange 10, yellow 1 by default)",
    "window": "clock hours a visit must lie in, \"18:00-21:00\"",
}


def _patrol_rule(table: object, where: str, f: RulesFile, *, category: bool) -> dict[str, Any]:
    """One rule table (``[patrol.red]``, ``[patrol.special.低保户]``) checked, its values canonical."""
    from gridgeo.data.quantities import parse_window

    if not isinstance(table, dict):
        raise UsageError(f"{f.path}: [{where}] must be a table of {', '.join(PATROL_RULE_FIELDS)}")
    out: dict[str, Any] = {}
    for key, v in table.items():
        if key not in PATROL_RULE_FIELDS:
            raise UsageError(f"{f.path}: unknown key {key!r} in [{where}]; known: {', '.join(PATROL_RULE_FIELDS)}")
        if key == "window":
            if not isinstance(v, str):
                raise UsageError(f"{f.path}: [{where}] window must be \"HH:MM-HH:MM\", not {v!r}")
            try:
                out[key] = parse_window(v)
            except UsageError as exc:
                raise UsageError(f"{f.path}: [{where}] {exc}") from None
            continue
        low = 1 if (key == "frequency_days" and category) else 0
        ok = isinstance(v, int) if key == "frequency_days" else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or v < low or (key == "weight" and v <= 0):
            kind = "a whole number" if key == "frequency_days" else "a number"
            raise UsageError(f"{f.path}: [{where}] {key} ({PATROL_RULE_FIELDS[key]}) must be {kind} "
                             f"{'> 0' if key == 'weight' else f'>= {low}'}, not {v!r}")
        out[key] = int(v) if key == "frequency_days" else float(v)
    return out


def parse_patrol(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    """``[patrol]``: budget, speed, start time, campaign days, start/end places, rules per priority and category."""
    import datetime as dt

    from gridgeo.data.quantities import parse_duration, parse_place

    kw: dict[str, Any] = {}
    try:
        if "budget" in body:
            kw["budget_min"] = parse_duration(body["budget"], "[patrol] budget")
        for key in ("start", "end"):
            if key in body:
                kw[key] = parse_place(body[key], f"[patrol] {key}")
    except UsageError as exc:
        raise UsageError(f"{f.path}: {exc}") from None
    if "speed_kmh" in body:
        if not body["speed_kmh"] > 0:
            raise UsageError(f"{f.path}: [patrol] speed_kmh must be > 0, not {body['speed_kmh']!r}")
        kw["speed_kmh"] = float(body["speed_kmh"])
    if "start_time" in body:
        try:
            kw["start_time"] = dt.time.fromisoformat(body["start_time"])
        except ValueError:
            raise UsageError(f"{f.path}: [patrol] start_time must be HH:MM, not {body['start_time']!r}") from None
    if "campaign_days" in body:
        if body["campaign_days"] < 1:
            raise UsageError(f"{f.path}: [patrol] campaign_days must be >= 1, not {body['campaign_days']!r}")
        kw["campaign_days"] = int(body["campaign_days"])
    kw["rules"] = {k: _patrol_rule(body[k], f"patrol.{k}", f, category=False) for k in PATROL_PRIORITIES if k in body}
    kw["special"] = {str(cat): _patrol_rule(t, f"patrol.special.{cat}", f, category=True)
                     for cat, t in body.get("special", {}).items()}
    return {"patrol": kw}
