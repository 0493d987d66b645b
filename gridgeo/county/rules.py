"""The county rules file (TOML): the policy a build follows, and the blocks rules file."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gridgeo.county._patrol_rules import PATROL_PRIORITIES, parse_patrol
from gridgeo.county._rules_file import RulesFile, names, pair
from gridgeo.county.report_rules import ReportRules, parse_reports
from gridgeo.errors import FileFormatError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (setup.cfg installs it there)
    import tomli as tomllib

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Rules file
# --------------------------------------------------------------------------------------
#: key -> (accepted types, description); the file may hold nothing else.
RULES_FILE_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "id": ((str,), "column with unit ids"),
    "group_by": ((str,), "column naming each unit's group (township)"),
    "size_col": ((str,), "numeric column the bounds are on"),
    "min": ((int, float), "minimum part size"),
    "max": ((int, float), "maximum part size"),
    "count": ((int,), "parts per group"),
    "count_col": ((str,), "column holding each group's count"),
    "similar": ((list,), "columns whose values should not be mixed within a part"),
    "seed": ((int,), "random seed"),
    "time_limit": ((int, float), "seconds"),
    "weights": ((dict,), "soft objective weights"),
}
WEIGHT_KEYS = ("compactness", "balance", "similarity", "stay")


def load_rules_file(path: str | Path) -> dict[str, Any]:
    """Read a rules file (TOML or JSON) and check every key and type.

    Why strict: a misspelt key (``maximum`` for ``max``) silently ignored would
    produce blocks that break the county's policy without anyone noticing.

    Raises
    ------
    FileFormatError
        The file is missing or cannot be parsed.
    UsageError
        An unknown key, a value of the wrong type, or ``count`` with ``count_col``.
    """
    p = Path(path)
    data = _read_table(p)
    for key, value in data.items():
        _check_rule(p, key, value)
    if "count" in data and "count_col" in data:
        raise UsageError(f"{p}: give count or count_col, not both")
    if "similar" in data and not all(isinstance(s, str) for s in data["similar"]):
        raise UsageError(f"{p}: similar must be a list of column names")
    for key, value in data.get("weights", {}).items():
        _check_weight(p, key, value)
    return dict(data)


def _read_table(p: Path) -> dict[str, Any]:
    """The blocks rules file's top-level table (JSON by suffix, else TOML)."""
    if not p.is_file():
        raise FileFormatError("no such rules file", path=p)
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"cannot parse rules: {' '.join(str(exc).split())}", path=p) from exc
    if not isinstance(data, dict):
        raise FileFormatError("rules file must hold a table/object of options", path=p)
    return data


def _check_rule(p: Path, key: str, value: object) -> None:
    if key not in RULES_FILE_KEYS:
        raise UsageError(f"{p}: unknown rule {key!r}; known: {', '.join(RULES_FILE_KEYS)}")
    types, what = RULES_FILE_KEYS[key]
    if isinstance(value, bool) or not isinstance(value, types):
        raise UsageError(f"{p}: {key} ({what}) must be {' or '.join(t.__name__ for t in types)}, "
                         f"not {value!r}")


def _check_weight(p: Path, key: str, value: object) -> None:
    if key not in WEIGHT_KEYS:
        raise UsageError(f"{p}: unknown weight {key!r}; known: {', '.join(WEIGHT_KEYS)}")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UsageError(f"{p}: weight {key} must be a number >= 0, not {value!r}")


# --------------------------------------------------------------------------------------
# The county rules file (``gridgeo build RULES.toml``)
# --------------------------------------------------------------------------------------
#: OSM ``highway`` classes that cut a village into street blocks by default: every
#: road a grid worker would call a boundary. Footways, paths and steps are not
#: (in a campus or a compound they are lanes, not borders) unless the rules say so.
DEFAULT_BARRIER_HIGHWAYS: tuple[str, ...] = (
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
    "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential", "living_street",
    "service", "track", "road",
)
DEFAULT_BARRIER_WATERWAYS: tuple[str, ...] = ("river", "canal", "stream", "drain", "ditch")
DEFAULT_EXCLUSIVE: tuple[str, ...] = ("school", "kindergarten", "hospital", "mine", "gated_compound")


@dataclass(frozen=True)
class Limits:
    """A level's bounds beyond households: persons, area and the daily walk (None: no such bound).

    Why separate from the household bounds: the partition engine balances one
    additive size, households; these are turned into households per village
    (:mod:`gridgeo.county.policy`: persons per household, household density,
    the walk-time estimate) and every part is checked against the real value.
    """

    population: tuple[float, float] | None = None
    area_m2: tuple[float, float] | None = None
    walk_min: float | None = None  #: the longest daily round (minutes) a part's due visits may need

    @property
    def any(self) -> bool:
        return self.population is not None or self.area_m2 is not None or self.walk_min is not None


@dataclass(frozen=True)
class LevelBounds:
    """Households per grid and per grid point for one village kind (``urban``, ``rural``, or the rules' own).

    Defaults follow the counties' published practice: a rural grid is about one
    villager group or a few (30-300 households), an urban grid a few hundred
    households (100-500); a rural grid point a dozen to a few dozen households
    (10-40), an urban one a building, courtyard or street face (20-120).
    ``grid_limits`` / ``point_limits`` bound persons, area and walking time too.
    """

    grid: tuple[float, float]
    point: tuple[float, float]
    grid_limits: Limits = field(default_factory=Limits)
    point_limits: Limits = field(default_factory=Limits)
    #: households per micro-grid (微网格: a building or courtyard cluster, a few dozen households) and per
    #: lane (巷: the households along one street segment); drawn only where ``[levels]`` switches them on
    micro: tuple[float, float] = (20.0, 60.0)
    lane: tuple[float, float] = (5.0, 80.0)


DEFAULT_BOUNDS: dict[str, LevelBounds] = {
    "rural": LevelBounds(grid=(30.0, 300.0), point=(10.0, 40.0)),
    "urban": LevelBounds(grid=(100.0, 500.0), point=(20.0, 120.0)),
}


@dataclass(frozen=True)
class InputSpec:
    """One input layer: a file, the layer (or sheet) in it, and how to read it.

    ``crs`` declares the CRS of a file without one (or a table's
    coordinates); ``datum`` ``gcj02``/``bd09`` for lon/lat traced off a
    Chinese web map; ``encoding`` of a Shapefile or CSV; ``columns`` maps
    canonical names to the file's own (``{name = "户主姓名", x = "东坐标"}``).
    """

    path: Path
    layer: str | None = None
    crs: str | None = None
    datum: str | None = None
    encoding: str | None = None
    columns: dict[str, str] = field(default_factory=dict)

    def read_options(self) -> dict[str, Any]:
        """The keyword options of :func:`gridgeo.data.io.read_layer` this input declares."""
        return {k: v for k, v in (("crs", self.crs), ("datum", self.datum), ("encoding", self.encoding),
                                  ("columns", self.columns or None)) if v is not None}


#: what an [inputs] entry given as a table may say besides its path
INPUT_OPTIONS: dict[str, str] = {
    "path": "the file (relative to the rules file)",
    "layer": "the layer of a multi-layer file, or the sheet of a workbook",
    "crs": "its CRS when the file has none or a wrong one (EPSG:4490, EPSG:4527, a WKT or PROJ string)",
    "datum": "gcj02 or bd09 for lon/lat traced off a Chinese web map (converted to WGS84)",
    "encoding": "text encoding of a Shapefile or CSV (GBK, GB18030, UTF-8)",
    "columns": "canonical name -> the file's column, e.g. {name = \"户主姓名\", x = \"东坐标\", y = \"北坐标\"}",
}


@dataclass(frozen=True)
class AreaRules:
    """The ``[areas]`` section: townships grouped into areas (片区), by a table or by the partition engine.

    ``table`` (a CSV, XLSX or any table of township -> area) wins; else ``count`` contiguous groups of whole
    townships, with households per area in ``[min, max]`` and ``similar`` township columns not mixed.
    """

    count: int | None = None
    min: float | None = None
    max: float | None = None
    similar: tuple[str, ...] = ()
    table: Path | None = None


@dataclass(frozen=True)
class KindRule:
    """``[kinds.NAME]``: villages passing any of its tests are of kind NAME (bounds ``[bounds.NAME]``).

    Why rules as well as a column: a county says "the villages of these two
    townships are mountain villages" or "fewer than 30 households a km²"
    more often than it keeps a column for it.
    """

    kind: str
    names: tuple[str, ...] = ()  #: the village name contains one of these
    codes: tuple[str, ...] = ()  #: village codes
    townships: tuple[str, ...] = ()  #: township codes or names
    density_below: float | None = None  #: households per km² below this
    density_above: float | None = None  #: households per km² above this


@dataclass(frozen=True)
class KindRules:
    """The ``[kinds]`` section: each village's kind from a column, else the first rule it passes.

    A village neither names nor matches keeps its urban/rural kind.
    """

    column: str | None = None
    rules: tuple[KindRule, ...] = ()


#: What a [bounds.*] table may hold: a level's bounds, and (overrides) the village kind
LEVEL_KEYS: dict[str, str] = {
    "grid": "households per grid [min, max], or {households, population, area_km2, walk}",
    "point": "households per grid point [min, max], or {households, population, area_km2, walk}",
    "micro": "households per micro-grid [min, max] (微网格, drawn where [levels] micro_grids says)",
    "lane": "households per lane [min, max] (巷, drawn where [levels] lanes says)",
}
#: the levels whose bounds are households only (no persons, area or walk)
HOUSEHOLDS_ONLY: tuple[str, ...] = ("micro", "lane")
#: what a level's table may bound
LIMIT_KEYS: dict[str, str] = {
    "households": "[min, max] households",
    "population": "[min, max] persons (households x persons per household)",
    "area_km2": "[min, max] km²",
    "walk": "the longest daily round of the part's due visits: 4h, 90min or minutes",
}


@dataclass(frozen=True)
class CountyRules:
    """Everything ``gridgeo build`` needs to know about a county's policy.

    Every value has a documented default (see ``boundaries/README.md`` and the
    keys below), so a rules file holds only what a county does differently.
    Bounds are policy, not constants: they live here, per village kind.
    """

    source: Path | None = None
    name: str | None = None
    code: str = "000000"
    seed: int = 0
    workers: int | None = None
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    county: Path | None = None
    osm: Path | None = None
    blocks: bool = True
    points: bool = True
    micro_grids: tuple[str, ...] = ()  # [levels] micro_grids: the village kinds that get micro-grids (none)
    lanes: tuple[str, ...] = ()  # [levels] lanes: the village kinds that get lanes (none)
    dwelling_m2: float = 90.0
    default_levels: float = 1.0
    min_building_m2: float = 20.0
    barrier_highways: tuple[str, ...] = DEFAULT_BARRIER_HIGHWAYS
    barrier_waterways: tuple[str, ...] = DEFAULT_BARRIER_WATERWAYS
    water_areas: bool = True
    ridges: bool = True
    min_unit_m2: float = 1.0
    exclusive: tuple[str, ...] = DEFAULT_EXCLUSIVE
    site_radius_m: float = 60.0
    site_max_block_m2: float = 40_000.0
    site_min_m2: float = 200.0
    use_groups: bool = True
    merge_groups: bool = False  # [grids] groups = "merge": small villager groups merged whole into grids
    bounds: dict[str, LevelBounds] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    #: [bounds.township.X] / [bounds.village.X] (X a code or a name): partial bounds over the kind's
    township_bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    village_bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: KindRules | None = None  # [kinds]: village kinds beyond urban/rural
    persons_per_household: float = 2.62  # [households] persons: China's 2020 census mean household size
    targets: dict[str, int] = field(default_factory=dict)  # [targets] grids / points: county totals aimed at
    block_min: float | None = 1500.0
    block_max: float | None = None
    block_count: int | None = None
    block_similar: tuple[str, ...] = ("kind",)
    iterations: int = 30
    restarts: int = 4
    tolerance_m2: float = 1.0
    areas: AreaRules | None = None  # [areas]: townships grouped into areas (片区); None: no areas level
    patrol: dict[str, Any] = field(default_factory=dict)
    reports: ReportRules = field(default_factory=ReportRules)  # [reports]: categories, ladder, deadlines (随手拍)
    walk_check: bool = False  # [grids] walk_check (issue 14 item 5): each grid's day checked against [patrol] budget

    def bounds_for(self, kind: str | None) -> LevelBounds:
        """The bounds of a village kind; unknown kinds are rural (the counties' default)."""
        return self.bounds.get(kind or "rural", self.bounds["rural"])

    def sub_levels_for(self, kind: str | None) -> tuple[bool, bool]:
        """Whether a village of this kind gets micro-grids, and lanes (``[levels]``)."""
        k = kind or "rural"
        return "*" in self.micro_grids or k in self.micro_grids, "*" in self.lanes or k in self.lanes

    def bounds_of_village(self, kind: str | None, *, village: Sequence[str] = (),
                          township: Sequence[str] = ()) -> LevelBounds:
        """A village's bounds: its kind's, then its township's overrides, then its own (most specific wins).

        ``village`` and ``township`` hold the keys an override may be written
        under (code, name).
        """
        b = self.bounds_for(kind)
        for table, keys in ((self.township_bounds, township), (self.village_bounds, village)):
            for key in keys:
                if key in table:
                    b = apply_bounds(b, table[key])
                    break
        return b


def apply_bounds(base: LevelBounds, partial: dict[str, Any]) -> LevelBounds:
    """``base`` with what a partial table (:func:`_level_tables`) sets replaced, limit by limit."""
    kw: dict[str, Any] = {k: partial[k] for k in ("grid", "point", "micro", "lane") if k in partial}
    for key in ("grid_limits", "point_limits"):
        if key in partial:
            kw[key] = replace(getattr(base, key), **partial[key])
    return replace(base, **kw)


def within_bounds(value: float, bounds: tuple[float, float]) -> bool:
    """Whether ``value`` lies in ``bounds = (min, max)``, both ends included.

    The one test of "inside its bounds" for blocks, grids and grid points (the
    ``within_bounds`` columns and the report's shares).
    """
    lo, hi = bounds
    return lo <= value <= hi


_NUM = (int, float)
_Keys = dict[str, tuple[tuple[type, ...], str]]


# --------------------------------------------------------------------------------------
# one parser per section: the section's table -> CountyRules fields
# --------------------------------------------------------------------------------------
def _county(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {k: body[k] for k in ("name", "code", "seed", "workers") if k in body}
    if "code" in kw and not (kw["code"].isdigit() and len(kw["code"]) == 6):
        raise UsageError(f"{f.path}: [county] code must be 6 digits, not {kw['code']!r}")
    return kw


def _input_spec(key: str, value: str | dict[str, Any], f: RulesFile) -> InputSpec:
    if not isinstance(value, dict):
        return InputSpec((f.base / value).resolve())
    extra = sorted(set(value) - set(INPUT_OPTIONS))
    if extra:
        raise UsageError(f"{f.path}: unknown key {extra[0]!r} in [inputs] {key}; known: {', '.join(INPUT_OPTIONS)}")
    if not isinstance(value.get("path"), str):
        raise UsageError(f"{f.path}: [inputs] {key} needs path = \"FILE\" (or give the path alone)")
    for opt in ("layer", "crs", "datum", "encoding"):
        if opt in value and not isinstance(value[opt], str):
            raise UsageError(f"{f.path}: [inputs] {key} {opt} ({INPUT_OPTIONS[opt]}) must be a string, "
                             f"not {value[opt]!r}")
    return InputSpec((f.base / value["path"]).resolve(), value.get("layer"), crs=value.get("crs"),
                     datum=_datum(key, value.get("datum"), f), encoding=value.get("encoding"),
                     columns=_columns(key, value.get("columns", {}), f))


def _datum(key: str, value: str | None, f: RulesFile) -> str | None:
    if value is None:
        return None
    if value.lower() not in ("wgs84", "gcj02", "bd09"):
        raise UsageError(f"{f.path}: [inputs] {key} datum must be wgs84, gcj02 or bd09, not {value!r}")
    return value.lower()


def _columns(key: str, value: object, f: RulesFile) -> dict[str, str]:
    """The column mapping: canonical names of the input's kind (or x/y/lon/lat) to the file's columns."""
    from gridgeo.data.schema import SCHEMAS

    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{f.path}: [inputs] {key} columns must be a table of canonical name = \"column\"")
    known = set(SCHEMAS[key].names) if key in SCHEMAS else set()
    known |= {"x", "y", "lon", "lat"} if key in ("households", "buildings", "pois", "places") else set()
    bad = sorted(set(value) - known)
    if bad:
        raise UsageError(f"{f.path}: [inputs] {key} columns: unknown name {bad[0]!r}; known: "
                         f"{', '.join(sorted(known)) or '(none: this input has no columns to map)'}")
    return dict(value)


def _inputs(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    inputs: dict[str, InputSpec] = {}
    for key, value in body.items():
        spec = _input_spec(key, value, f)
        if key in ("county", "osm"):
            kw[key] = spec.path
        else:
            inputs[key] = spec
    kw["inputs"] = inputs
    return kw


def _levels(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {k: body[k] for k in ("blocks", "points") if k in body}
    for k in ("micro_grids", "lanes"):  # true: every village; a list: those village kinds
        v = body.get(k, False)
        if isinstance(v, list) and not all(isinstance(x, str) for x in v):
            raise UsageError(f"{f.path}: [levels] {k} must be true, false or a list of village kinds, not {v!r}")
        kw[k] = ("*",) if v is True else tuple(v) if isinstance(v, list) else ()
    return kw


def _households(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {k: float(body[k]) for k in ("dwelling_m2", "default_levels", "min_building_m2") if k in body}
    if kw.get("dwelling_m2", 1.0) <= 0:
        raise UsageError(f"{f.path}: [households] dwelling_m2 must be > 0")
    if "persons" in body:
        if not body["persons"] > 0:
            raise UsageError(f"{f.path}: [households] persons must be > 0, not {body['persons']!r}")
        kw["persons_per_household"] = float(body["persons"])
    return kw


def _barriers(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for key, fld in (("highway", "barrier_highways"), ("waterway", "barrier_waterways")):
        if key in body:
            kw[fld] = names(body, key, f"[barriers] {key} must be a list of class names", f)
    kw.update({k: body[k] for k in ("water_areas", "ridges") if k in body})
    if "min_unit_m2" in body:
        kw["min_unit_m2"] = float(body["min_unit_m2"])
    return kw


def _exclusive(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if "categories" in body:
        kw["exclusive"] = names(body, "categories", "[exclusive] categories must be a list of names", f)
    kw.update({k: float(body[k]) for k in ("site_radius_m", "site_max_block_m2", "site_min_m2") if k in body})
    return kw


#: [grids] groups: how villager groups become grids
GROUP_MODES: dict[str, str] = {
    "one": "one grid per villager group (the default where groups are given)",
    "merge": "small groups merged whole with neighbours within the grid bounds; a group alone above the "
             "maximum split (reported)",
    "draw": "grids drawn by the partition engine; group lines ignored",
}


def _grids(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    if "groups" in body and "use_groups" in body:
        raise UsageError(f"{f.path}: [grids] give groups or use_groups, not both")
    kw: dict[str, Any] = {"walk_check": body["walk_check"]} if "walk_check" in body else {}
    if "use_groups" in body:
        kw["use_groups"] = body["use_groups"]
    if "groups" in body:
        mode = body["groups"]
        if mode not in GROUP_MODES:
            raise UsageError(f"{f.path}: [grids] groups must be one of {', '.join(GROUP_MODES)}, not {mode!r}")
        kw.update(use_groups=mode != "draw", merge_groups=mode == "merge")
    return kw


def _limit(key: str, v: object, where: str, f: RulesFile) -> tuple[str, Any]:
    """One entry of a level's table: its field name in :class:`Limits` (or ``households``) and its value."""
    from gridgeo.data.quantities import parse_duration

    if key == "walk":
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise UsageError(f"{f.path}: {where} walk must be a duration (4h, 90min, minutes), not {v!r}")
        try:
            return "walk_min", parse_duration(v, f"{where} walk")
        except UsageError as exc:
            raise UsageError(f"{f.path}: {exc}") from None
    lo, hi = pair(v, f"{where} {key}", f.path)
    if key == "area_km2":
        return "area_m2", (lo * 1e6, hi * 1e6)
    return key, (lo, hi)


def _level(value: object, where: str, f: RulesFile) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """A level's entry, ``[min, max]`` households or a table of :data:`LIMIT_KEYS`: (households, limits)."""
    if not isinstance(value, dict):
        return pair(value, where, f.path), {}
    bad = sorted(set(value) - set(LIMIT_KEYS))
    if bad:
        raise UsageError(f"{f.path}: unknown key {bad[0]!r} in {where}; known: {', '.join(LIMIT_KEYS)}")
    pairs = dict(_limit(k, v, where, f) for k, v in value.items())
    return pairs.pop("households", None), pairs


def _level_tables(table: object, where: str, f: RulesFile) -> dict[str, Any]:
    """A ``[bounds.*]`` table as a partial :class:`LevelBounds` (see :func:`apply_bounds`)."""
    if not isinstance(table, dict):
        raise UsageError(f"{f.path}: [{where}] must be a table of {', '.join(LEVEL_KEYS)}")
    extra = sorted(set(table) - set(LEVEL_KEYS))
    if extra:
        raise UsageError(f"{f.path}: unknown key {extra[0]!r} in [{where}]; known: {', '.join(LEVEL_KEYS)}")
    out: dict[str, Any] = {}
    for level in LEVEL_KEYS:
        if level in table:
            if level in HOUSEHOLDS_ONLY:
                out[level] = pair(table[level], f"[{where}] {level}", f.path)
                continue
            hh, limits = _level(table[level], f"[{where}] {level}", f)
            if hh is not None:
                out[level] = hh
            if limits:
                out[f"{level}_limits"] = limits
    return out


def _bounds(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    """Bounds per village kind (``[bounds.rural]``, ``[bounds.mountain]``, ...) and the overrides
    per township and per village (``[bounds.township."城关镇"]``, ``[bounds.village."369900101001"]``)."""
    bounds = dict(DEFAULT_BOUNDS)
    kw: dict[str, Any] = {}
    for kind, table in body.items():
        if kind in ("township", "village"):
            if not isinstance(table, dict) or not all(isinstance(t, dict) for t in table.values()):
                raise UsageError(f"{f.path}: [bounds.{kind}] must hold one table per {kind} (code or name)")
            kw[f"{kind}_bounds"] = {str(k): _level_tables(t, f"bounds.{kind}.{k}", f) for k, t in table.items()}
            continue
        bounds[kind] = apply_bounds(bounds.get(kind, DEFAULT_BOUNDS["rural"]),
                                    _level_tables(table, f"bounds.{kind}", f))
    return {"bounds": bounds, **kw}


#: what a [kinds.NAME] rule may test
KIND_RULE_KEYS: dict[str, str] = {
    "names": "the village name contains one of these",
    "codes": "village codes",
    "townships": "township codes or names",
    "density_below": "households per km² below this",
    "density_above": "households per km² above this",
}


def _kind_rule(kind: str, table: object, f: RulesFile) -> KindRule:
    if not isinstance(table, dict) or not table:
        raise UsageError(f"{f.path}: [kinds.{kind}] must be a table of {', '.join(KIND_RULE_KEYS)}")
    kw: dict[str, Any] = {}
    for key, v in table.items():
        if key not in KIND_RULE_KEYS:
            raise UsageError(f"{f.path}: unknown key {key!r} in [kinds.{kind}]; known: {', '.join(KIND_RULE_KEYS)}")
        if key.startswith("density"):
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise UsageError(f"{f.path}: [kinds.{kind}] {key} must be a number >= 0, not {v!r}")
            kw[key] = float(v)
        elif not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UsageError(f"{f.path}: [kinds.{kind}] {key} must be a list of strings, not {v!r}")
        else:
            kw[key] = tuple(v)
    return KindRule(kind=kind, **kw)


def _kinds(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    """``[kinds]``: ``column = "..."`` and one ``[kinds.NAME]`` rule per kind; every kind needs its bounds."""
    column = body.get("column")
    if column is not None and not isinstance(column, str):
        raise UsageError(f"{f.path}: [kinds] column must be a column name, not {column!r}")
    rules = tuple(_kind_rule(k, t, f) for k, t in body.items() if k != "column")
    return {"kinds": KindRules(column=column, rules=rules)}


def _targets(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    for k, v in body.items():
        if v < 1:
            raise UsageError(f"{f.path}: [targets] {k} must be >= 1, not {v!r}")
    return {"targets": {k: int(v) for k, v in body.items()}}


def _blocks(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if "min" in body or "max" in body or "count" in body:
        kw["block_min"] = float(body["min"]) if "min" in body else None
        kw["block_max"] = float(body["max"]) if "max" in body else None
        kw["block_count"] = body.get("count")
    if kw.get("block_min") is not None and kw.get("block_max") is not None and kw["block_min"] > kw["block_max"]:
        raise UsageError(f"{f.path}: [blocks] min is above max")
    if "similar" in body:
        kw["block_similar"] = tuple(str(s) for s in body["similar"])
    return kw


def _areas(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    if "table" not in body and not body.get("count"):
        raise UsageError(f"{f.path}: [areas] needs count = N (areas drawn from the townships) or table = FILE "
                         "(township -> area)")
    lo, hi = body.get("min"), body.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"{f.path}: [areas] min is above max")
    return {"areas": AreaRules(count=body.get("count"), min=None if lo is None else float(lo),
                               max=None if hi is None else float(hi),
                               similar=names(body, "similar", "[areas] similar must be a list of column names", f)
                               if "similar" in body else (),
                               table=(f.base / body["table"]).resolve() if "table" in body else None)}


def _search(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    return {k: body[k] for k in ("iterations", "restarts") if k in body}


def _check(body: dict[str, Any], f: RulesFile) -> dict[str, Any]:
    return {"tolerance_m2": float(body["tolerance_m2"])} if "tolerance_m2" in body else {}


@dataclass(frozen=True)
class _Section:
    """One section of the county rules file: its keys (types, meaning) and its parser."""

    keys: _Keys
    parse: Callable[[dict[str, Any], RulesFile], dict[str, Any]]
    #: what any other key of the section is (a kind's name), or None: no other key
    open_keys: str | None = None


#: section -> its keys and parser; sections are parsed in this order, whatever their order in the file.
_SECTIONS: dict[str, _Section] = {
    "county": _Section({"name": ((str,), "county name"),
                        "code": ((str,), "6-digit county code for inputs without codes"),
                        "seed": ((int,), "random seed"),
                        "workers": ((int,), "worker processes (default: CPU count)")}, _county),
    "inputs": _Section({k: ((str, dict), "a file, or {path, layer, crs, datum, encoding, columns}") for k in
                        ("county", "osm", "townships", "villages", "villager_groups", "buildings", "households",
                         "people", "roads", "water", "pois", "ridges")}, _inputs),
    "levels": _Section({"blocks": ((bool,), "build blocks"), "points": ((bool,), "build grid points"),
                        "micro_grids": ((bool, list), "micro-grids (微网格) below the grids: true or village kinds"),
                        "lanes": ((bool, list), "lanes (巷) below the grids: true or village kinds")}, _levels),
    "households": _Section({"dwelling_m2": (_NUM, "floor area of one dwelling, m²"),
                            "persons": (_NUM, "persons per household where the villages give no population"),
                            "default_levels": (_NUM, "storeys of a building with none recorded"),
                            "min_building_m2": (_NUM, "smaller buildings hold no household")}, _households),
    "barriers": _Section({"highway": ((list,), "OSM highway classes that cut street blocks"),
                          "waterway": ((list,), "waterway classes that cut street blocks"),
                          "water_areas": ((bool,), "lakes and ponds cut street blocks"),
                          "ridges": ((bool,), "a ridges layer cuts street blocks"),
                          "min_unit_m2": (_NUM, "faces below this merge into a neighbour")}, _barriers),
    "exclusive": _Section({"categories": ((list,), "POI categories carved out as exclusive grids"),
                           "site_radius_m": (_NUM, "footprint radius of a site given as a point"),
                           "site_max_block_m2": (_NUM, "a point site takes its whole street block up to this size"),
                           "site_min_m2": (_NUM, "smaller sites stay in the base grids")}, _exclusive),
    "grids": _Section({"use_groups": ((bool,), "one grid per villager group where groups are given"),
                       "groups": ((str,), "one, merge or draw: how villager groups become grids"),
                       "walk_check": ((bool,), "check each grid's day with the route solver against the "
                                               "[patrol] budget")}, _grids),
    "bounds": _Section({"rural": ((dict,), "{grid = [min, max], point = [min, max], micro = ..., lane = ...}"),
                        "urban": ((dict,), "{grid = [min, max], point = [min, max], micro = ..., lane = ...}"),
                        "township": ((dict,), "per township (code or name): {grid, point}"),
                        "village": ((dict,), "per village (code or name): {grid, point}")}, _bounds,
                       open_keys="a village kind's bounds {grid, point}"),
    "kinds": _Section({"column": ((str,), "village column naming each village's kind")}, _kinds,
                      open_keys="a rule {names, codes, townships, density_below, density_above}"),
    "targets": _Section({"grids": ((int,), "grids in the county, as near as the bounds allow"),
                         "points": ((int,), "grid points in the county, as near as the bounds allow")}, _targets),
    "blocks": _Section({"min": (_NUM, "minimum households per block"),
                        "max": (_NUM, "maximum households per block"),
                        "count": ((int,), "blocks per township"),
                        "similar": ((list,), "village columns not to mix")}, _blocks),
    "areas": _Section({"count": ((int,), "areas (片区) drawn from whole townships"),
                       "min": (_NUM, "minimum households per area"),
                       "max": (_NUM, "maximum households per area"),
                       "similar": ((list,), "township columns not to mix"),
                       "table": ((str,), "a table of township (code or name) -> area (name, optional code)")},
                      _areas),
    "search": _Section({"iterations": ((int,), "annealing proposals per unit"),
                        "restarts": ((int,), "fresh draws when repair fails")}, _search),
    "check": _Section({"tolerance_m2": (_NUM, "largest gap or overlap accepted in a tiling, m²")}, _check),
    "patrol": _Section({"budget": ((str, int, float), "daily budget: 4h, 90min, 3h30m or minutes"),
                        "speed_kmh": (_NUM, "walking (or driving) speed, km/h"),
                        "start_time": ((str,), "HH:MM each round starts (UTC+8)"),
                        "campaign_days": ((int,), "campaign: every household once over this many days"),
                        "start": ((str, list), "station, home or [lon, lat]"),
                        "end": ((str, list), "station, home or [lon, lat]"),
                        **{k: ((dict,), "{frequency_days, service_min, weight, window}") for k in PATROL_PRIORITIES},
                        "special": ((dict,), "category = {frequency_days, service_min, weight, window}")},
                       parse_patrol),
    "reports": _Section({"ladder": ((list,), "levels a report climbs: grid, village, block, township, county"),
                         "county_handler": ((str,), "who answers at the county level"),
                         "categories": ((dict,), "[reports.categories.KEY] label, lowest, hours = {level = h}")},
                        lambda body, f: {"reports": parse_reports(body, f.path)}),
}


def _check_section(p: Path, sec: str, body: object) -> None:
    """Refuse an unknown section, a section that is not a table, and unknown keys or wrong types in it."""
    if sec not in _SECTIONS:
        raise UsageError(f"{p}: unknown section [{sec}]; known: {', '.join(_SECTIONS)}")
    if not isinstance(body, dict):
        raise UsageError(f"{p}: [{sec}] must be a table")
    keys = _SECTIONS[sec].keys
    other = _SECTIONS[sec].open_keys
    for key, value in body.items():
        if key not in keys and other is None:
            raise UsageError(f"{p}: unknown key {key!r} in [{sec}]; known: {', '.join(keys)}")
        types, what = keys.get(key, ((dict,), other or ""))
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise UsageError(f"{p}: [{sec}] {key} ({what}) must be {' or '.join(t.__name__ for t in types)}, "
                             f"not {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise UsageError(f"{p}: [{sec}] {key} must be >= 0, not {value!r}")


def load_county_rules(path: str | Path) -> CountyRules:
    """Read a county rules file (TOML) and check every section, key and type.

    Why strict: a misspelt key silently ignored would build grids that break
    the county's policy without anyone noticing. Input paths are relative to
    the rules file. Every section is checked first (unknown keys, types,
    negative numbers), then each is parsed by its own parser
    (:data:`_SECTIONS`); what a file leaves out keeps :class:`CountyRules`'
    defaults.

    Raises
    ------
    FileFormatError
        The file is missing or is not TOML.
    UsageError
        An unknown section or key, a value of the wrong type, bounds with
        min above max.
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError("no such rules file", path=p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot parse rules: {' '.join(str(exc).split())}", path=p) from exc
    for sec, body in data.items():
        _check_section(p, sec, body)
    f = RulesFile(p)
    kw: dict[str, Any] = {"source": p}
    for sec, section in _SECTIONS.items():
        if sec in data:
            kw.update(section.parse(data[sec], f))
    rules = CountyRules(**kw)
    _check_kinds(rules, p)
    return rules


def _check_kinds(rules: CountyRules, p: Path) -> None:
    """A kind a ``[kinds.NAME]`` rule gives needs ``[bounds.NAME]``: else its villages would get rural
    bounds with nobody having said so."""
    for rule in rules.kinds.rules if rules.kinds is not None else ():
        if rule.kind not in rules.bounds:
            raise UsageError(f"{p}: [kinds.{rule.kind}] needs its bounds: add [bounds.{rule.kind}] grid = [min, max]")
