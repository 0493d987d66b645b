"""Who handles a report (随手拍) and how long they have: categories, the escalation ladder, deadlines.

Defaults follow how counties run their grid governance platforms: what a
grid worker can fix (rubbish, a loose manhole cover, a quarrel between
neighbours) starts in the grid; what needs a village's or a department's
means (benefits, services) starts in the village; safety hazards get hours,
not days. Each category names the lowest level that handles it and the
hours each level has; a level the category does not list takes the hours
of the nearest level below it that does. The ladder is the order a report
climbs when a deadline passes or a handler escalates it: grid → village →
block (片, where the county draws blocks) → township → county; a level a
place's chain lacks (no block) is skipped.

The ``[reports]`` section of the county rules file overrides them::

    [reports]
    ladder = ["grid", "village", "township", "county"]
    county_handler = "县社会治理中心"

    [reports.categories.sanitation]         # replaces the default of that key; a new key adds one
    label = "环境卫生"
    lowest = "grid"
    hours = { grid = 24, village = 48, township = 72, county = 120 }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridgeo.errors import UsageError

#: every level a report may be handled at, finest first (``county``: the county's own centre)
LEVELS: tuple[str, ...] = ("point", "grid", "village", "block", "township", "area", "county")
DEFAULT_LADDER: tuple[str, ...] = ("grid", "village", "block", "township", "county")
#: who answers at the county level (no layer holds it, so no roster names a person there)
DEFAULT_COUNTY_HANDLER = "县社会治理中心"
#: what the layer's ``leader`` column is called at each level, when the roster names nobody
LEADER_TITLES: dict[str, str] = {
    "point": "点长", "grid": "格长", "village": "村(社区)书记", "block": "块长", "township": "乡镇(街道)负责人",
    "area": "片区负责人",
}
_CATEGORY_KEYS = ("label", "lowest", "hours")


@dataclass(frozen=True)
class Category:
    """One kind of report: its label, the lowest level that handles it, hours per level."""

    key: str
    label: str
    lowest: str
    hours: Mapping[str, float]

    def hours_at(self, level: str) -> float:
        """The hours ``level`` has: its own, else those of the nearest level below it that has some."""
        i = LEVELS.index(level)
        for lv in reversed(LEVELS[: i + 1]):
            if lv in self.hours:
                return float(self.hours[lv])
        return float(min(self.hours.values()))


DEFAULT_CATEGORIES: dict[str, Category] = {c.key: c for c in (
    Category("sanitation", "环境卫生", "grid", {"grid": 24, "village": 48, "township": 72, "county": 120}),
    Category("dispute", "矛盾纠纷", "grid", {"grid": 72, "village": 120, "township": 168, "county": 240}),
    Category("safety", "安全隐患", "grid", {"grid": 4, "village": 8, "township": 24, "county": 48}),
    Category("services", "民生服务", "village", {"village": 72, "township": 120, "county": 240}),
    Category("other", "其他", "grid", {"grid": 48, "village": 72, "township": 120, "county": 168}),
)}


@dataclass(frozen=True)
class ReportRules:
    """The categories, the ladder and the county's handler the service assigns reports by."""

    categories: Mapping[str, Category] = field(default_factory=lambda: dict(DEFAULT_CATEGORIES))
    ladder: tuple[str, ...] = DEFAULT_LADDER
    county_handler: str = DEFAULT_COUNTY_HANDLER

    def category(self, raw: Any, where: str = "category") -> Category:
        """The category a report names by its key (``sanitation``) or label (``环境卫生``), or a 400 listing them."""
        if isinstance(raw, str):
            text = raw.strip()
            if text in self.categories:
                return self.categories[text]
            for c in self.categories.values():
                if c.label == text:
                    return c
        known = ", ".join(f"{c.key} ({c.label})" for c in self.categories.values())
        raise UsageError(f"{where}: unknown category {raw!r}; known: {known}")

    def climb(self, category: Category) -> tuple[str, ...]:
        """The ladder's levels from the category's lowest up (the county last, always)."""
        lad = self.ladder[self.ladder.index(category.lowest):]
        return lad if lad[-1] == "county" else (*lad, "county")

    def describe(self) -> list[dict[str, Any]]:
        """The categories as the API lists them."""
        return [{"key": c.key, "label": c.label, "lowest": c.lowest,
                 "hours": {lv: c.hours_at(lv) for lv in self.climb(c)}} for c in self.categories.values()]


def _level(value: Any, where: str, path: Path) -> str:
    if value not in LEVELS:
        raise UsageError(f"{path}: {where} must be one of {', '.join(LEVELS)}, not {value!r}")
    return str(value)


def _category(key: str, body: Any, ladder: tuple[str, ...], path: Path) -> Category:
    where = f"[reports.categories.{key}]"
    if not isinstance(body, dict):
        raise UsageError(f"{path}: {where} must be a table of {', '.join(_CATEGORY_KEYS)}")
    bad = sorted(set(body) - set(_CATEGORY_KEYS))
    if bad:
        raise UsageError(f"{path}: unknown key {bad[0]!r} in {where}; known: {', '.join(_CATEGORY_KEYS)}")
    for k in _CATEGORY_KEYS:
        if k not in body:
            raise UsageError(f"{path}: {where} needs {k}")
    lowest = _level(body["lowest"], f"{where} lowest", path)
    if lowest not in ladder:
        raise UsageError(f"{path}: {where} lowest = {lowest!r} is not on the ladder ({', '.join(ladder)})")
    hours = body["hours"]
    if not isinstance(hours, dict) or not hours:
        raise UsageError(f"{path}: {where} hours must be a table level = hours, e.g. {{ grid = 24 }}")
    out: dict[str, float] = {}
    for lv, h in hours.items():
        _level(lv, f"{where} hours key", path)
        if isinstance(h, bool) or not isinstance(h, int | float) or not h > 0:
            raise UsageError(f"{path}: {where} hours.{lv} must be a number of hours > 0, not {h!r}")
        out[lv] = float(h)
    if not isinstance(body["label"], str) or not body["label"].strip():
        raise UsageError(f"{path}: {where} label must be text")
    return Category(key, body["label"].strip(), lowest, out)


def parse_reports(body: Mapping[str, Any], path: Path) -> ReportRules:
    """``[reports]`` of a county rules file as :class:`ReportRules` (every key, level and number checked)."""
    ladder = DEFAULT_LADDER
    if "ladder" in body:
        raw = body["ladder"]
        if not isinstance(raw, list) or not raw:
            raise UsageError(f"{path}: [reports] ladder must be a list of levels, e.g. [\"grid\", \"village\"]")
        ladder = tuple(_level(v, "[reports] ladder entries", path) for v in raw)
        if list(ladder) != sorted(ladder, key=LEVELS.index) or len(set(ladder)) != len(ladder):
            raise UsageError(f"{path}: [reports] ladder must go up, each level once, in the order "
                             f"{' → '.join(LEVELS)}; got {' → '.join(ladder)}")
        if ladder[-1] != "county":
            ladder = (*ladder, "county")
    cats = dict(DEFAULT_CATEGORIES)
    given = body.get("categories", {})
    if not isinstance(given, dict):
        raise UsageError(f"{path}: [reports] categories must be tables [reports.categories.KEY]")
    for key, cbody in given.items():
        cats[str(key)] = _category(str(key), cbody, ladder, path)
    for c in cats.values():
        if c.lowest not in ladder:
            raise UsageError(f"{path}: category {c.key} starts at {c.lowest}, which [reports] ladder leaves out; "
                             "give that category a lowest level on the ladder")
    handler = body.get("county_handler", DEFAULT_COUNTY_HANDLER)
    if not isinstance(handler, str) or not handler.strip():
        raise UsageError(f"{path}: [reports] county_handler must be text")
    return ReportRules(cats, ladder, handler.strip())
