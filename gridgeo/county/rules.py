"""The county rules file (TOML): the policy a build follows, and the blocks rules file."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
class LevelBounds:
    """Households per grid and per grid point for one village kind (``urban`` / ``rural``).

    Defaults follow the counties' published practice: a rural grid is about one
    villager group or a few (30-300 households), an urban grid a few hundred
    households (100-500); a rural grid point a dozen to a few dozen households
    (10-40), an urban one a building, courtyard or street face (20-120).
    """

    grid: tuple[float, float]
    point: tuple[float, float]


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
    bounds: dict[str, LevelBounds] = field(default_factory=lambda: dict(DEFAULT_BOUNDS))
    block_min: float | None = 1500.0
    block_max: float | None = None
    block_count: int | None = None
    block_similar: tuple[str, ...] = ("kind",)
    iterations: int = 30
    restarts: int = 4
    tolerance_m2: float = 1.0
    areas: AreaRules | None = None  # [areas]: townships grouped into areas (片区); None: no areas level
    patrol: dict[str, Any] = field(default_factory=dict)

    def bounds_for(self, kind: str | None) -> LevelBounds:
        """The bounds of a village kind; unknown kinds are rural (the counties' default)."""
        return self.bounds.get(kind or "rural", self.bounds["rural"])


def within_bounds(value: float, bounds: tuple[float, float]) -> bool:
    """Whether ``value`` lies in ``bounds = (min, max)``, both ends included.

    The one test of "inside its bounds" for blocks, grids and grid points (the
    ``within_bounds`` columns and the report's shares).
    """
    lo, hi = bounds
    return lo <= value <= hi


_NUM = (int, float)
_Keys = dict[str, tuple[tuple[type, ...], str]]


@dataclass(frozen=True)
class _File:
    """The rules file being read: its path (for messages) and its folder (inputs are relative to it)."""

    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent


def _pair(v: object, what: str, p: Path) -> tuple[float, float]:
    if (not isinstance(v, list) or len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int | float)
                                                      for x in v)):
        raise UsageError(f"{p}: {what} must be [min, max] numbers, not {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo < 0 or hi <= 0 or lo > hi:
        raise UsageError(f"{p}: {what} = [{lo:g}, {hi:g}] needs 0 <= min <= max and max > 0")
    return lo, hi


def _names(body: dict[str, Any], key: str, message: str, f: _File) -> tuple[str, ...]:
    """A list of names (classes, categories), refused unless every entry is a string."""
    if not all(isinstance(s, str) for s in body[key]):
        raise UsageError(f"{f.path}: {message}")
    return tuple(body[key])


# --------------------------------------------------------------------------------------
# one parser per section: the section's table -> CountyRules fields
# --------------------------------------------------------------------------------------
def _county(body: dict[str, Any], f: _File) -> dict[str, Any]:
    kw: dict[str, Any] = {k: body[k] for k in ("name", "code", "seed", "workers") if k in body}
    if "code" in kw and not (kw["code"].isdigit() and len(kw["code"]) == 6):
        raise UsageError(f"{f.path}: [county] code must be 6 digits, not {kw['code']!r}")
    return kw


def _input_spec(key: str, value: str | dict[str, Any], f: _File) -> InputSpec:
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


def _datum(key: str, value: str | None, f: _File) -> str | None:
    if value is None:
        return None
    if value.lower() not in ("wgs84", "gcj02", "bd09"):
        raise UsageError(f"{f.path}: [inputs] {key} datum must be wgs84, gcj02 or bd09, not {value!r}")
    return value.lower()


def _columns(key: str, value: object, f: _File) -> dict[str, str]:
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


def _inputs(body: dict[str, Any], f: _File) -> dict[str, Any]:
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


def _levels(body: dict[str, Any], f: _File) -> dict[str, Any]:
    return {k: body[k] for k in ("blocks", "points") if k in body}


def _households(body: dict[str, Any], f: _File) -> dict[str, Any]:
    kw: dict[str, Any] = {k: float(body[k]) for k in ("dwelling_m2", "default_levels", "min_building_m2") if k in body}
    if kw.get("dwelling_m2", 1.0) <= 0:
        raise UsageError(f"{f.path}: [households] dwelling_m2 must be > 0")
    return kw


def _barriers(body: dict[str, Any], f: _File) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for key, fld in (("highway", "barrier_highways"), ("waterway", "barrier_waterways")):
        if key in body:
            kw[fld] = _names(body, key, f"[barriers] {key} must be a list of class names", f)
    kw.update({k: body[k] for k in ("water_areas", "ridges") if k in body})
    if "min_unit_m2" in body:
        kw["min_unit_m2"] = float(body["min_unit_m2"])
    return kw


def _exclusive(body: dict[str, Any], f: _File) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if "categories" in body:
        kw["exclusive"] = _names(body, "categories", "[exclusive] categories must be a list of names", f)
    kw.update({k: float(body[k]) for k in ("site_radius_m", "site_max_block_m2", "site_min_m2") if k in body})
    return kw


def _grids(body: dict[str, Any], f: _File) -> dict[str, Any]:
    return {"use_groups": body["use_groups"]} if "use_groups" in body else {}


def _bounds(body: dict[str, Any], f: _File) -> dict[str, Any]:
    bounds = dict(DEFAULT_BOUNDS)
    for kind, table in body.items():
        extra = set(table) - {"grid", "point"}
        if extra:
            raise UsageError(f"{f.path}: unknown key(s) {sorted(extra)} in [bounds.{kind}]; known: grid, point")
        d = bounds[kind]
        bounds[kind] = LevelBounds(
            grid=_pair(table["grid"], f"[bounds.{kind}] grid", f.path) if "grid" in table else d.grid,
            point=_pair(table["point"], f"[bounds.{kind}] point", f.path) if "point" in table else d.point,
        )
    return {"bounds": bounds}


def _blocks(body: dict[str, Any], f: _File) -> dict[str, Any]:
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


def _areas(body: dict[str, Any], f: _File) -> dict[str, Any]:
    if "table" not in body and not body.get("count"):
        raise UsageError(f"{f.path}: [areas] needs count = N (areas drawn from the townships) or table = FILE "
                         "(township -> area)")
    lo, hi = body.get("min"), body.get("max")
    if lo is not None and hi is not None and lo > hi:
        raise UsageError(f"{f.path}: [areas] min is above max")
    return {"areas": AreaRules(count=body.get("count"), min=None if lo is None else float(lo),
                               max=None if hi is None else float(hi),
                               similar=_names(body, "similar", "[areas] similar must be a list of column names", f)
                               if "similar" in body else (),
                               table=(f.base / body["table"]).resolve() if "table" in body else None)}


def _search(body: dict[str, Any], f: _File) -> dict[str, Any]:
    return {k: body[k] for k in ("iterations", "restarts") if k in body}


def _check(body: dict[str, Any], f: _File) -> dict[str, Any]:
    return {"tolerance_m2": float(body["tolerance_m2"])} if "tolerance_m2" in body else {}


# ---- [patrol]: visit policy (gridgeo patrol, /patrol/{grid}); the values made canonical for gridgeo.patrol
#: the priorities a [patrol.KEY] table may set (gridgeo.patrol.stops.RULE_KEYS; a test keeps them equal)
PATROL_PRIORITIES: tuple[str, ...] = ("red", "orange", "yellow", "risk", "grid_point", "none")
#: what a priority's or a category's rule table may hold
PATROL_RULE_FIELDS: dict[str, str] = {
    "frequency_days": "a visit is due after this many days (0: no routine visit; campaigns only)",
    "service_min": "minutes at the door",
    "weight": "prize of a due visit (red 100, orange 10, yellow 1 by default)",
    "window": "clock hours a visit must lie in, \"18:00-21:00\"",
}


def _patrol_rule(table: object, where: str, f: _File, *, category: bool) -> dict[str, Any]:
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


def _patrol(body: dict[str, Any], f: _File) -> dict[str, Any]:
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


@dataclass(frozen=True)
class _Section:
    """One section of the county rules file: its keys (types, meaning) and its parser."""

    keys: _Keys
    parse: Callable[[dict[str, Any], _File], dict[str, Any]]


#: section -> its keys and parser; sections are parsed in this order, whatever their order in the file.
_SECTIONS: dict[str, _Section] = {
    "county": _Section({"name": ((str,), "county name"),
                        "code": ((str,), "6-digit county code for inputs without codes"),
                        "seed": ((int,), "random seed"),
                        "workers": ((int,), "worker processes (default: CPU count)")}, _county),
    "inputs": _Section({k: ((str, dict), "a file, or {path, layer, crs, datum, encoding, columns}") for k in
                        ("county", "osm", "townships", "villages", "villager_groups", "buildings", "households",
                         "people", "roads", "water", "pois", "ridges")}, _inputs),
    "levels": _Section({"blocks": ((bool,), "build blocks"), "points": ((bool,), "build grid points")}, _levels),
    "households": _Section({"dwelling_m2": (_NUM, "floor area of one dwelling, m²"),
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
    "grids": _Section({"use_groups": ((bool,), "one grid per villager group where groups are given")}, _grids),
    "bounds": _Section({"rural": ((dict,), "{grid = [min, max], point = [min, max]}"),
                        "urban": ((dict,), "{grid = [min, max], point = [min, max]}")}, _bounds),
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
                        "special": ((dict,), "category = {frequency_days, service_min, weight, window}")}, _patrol),
}


def _check_section(p: Path, sec: str, body: object) -> None:
    """Refuse an unknown section, a section that is not a table, and unknown keys or wrong types in it."""
    if sec not in _SECTIONS:
        raise UsageError(f"{p}: unknown section [{sec}]; known: {', '.join(_SECTIONS)}")
    if not isinstance(body, dict):
        raise UsageError(f"{p}: [{sec}] must be a table")
    keys = _SECTIONS[sec].keys
    for key, value in body.items():
        if key not in keys:
            raise UsageError(f"{p}: unknown key {key!r} in [{sec}]; known: {', '.join(keys)}")
        types, what = keys[key]
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
    f = _File(p)
    kw: dict[str, Any] = {"source": p}
    for sec, section in _SECTIONS.items():
        if sec in data:
            kw.update(section.parse(data[sec], f))
    return CountyRules(**kw)
