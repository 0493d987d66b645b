"""The county rules file (TOML): the policy a build follows, and the blocks rules file."""

from __future__ import annotations

import json
import logging
import sys
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
    if not p.is_file():
        raise FileFormatError("no such rules file", path=p)
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"cannot parse rules: {' '.join(str(exc).split())}", path=p) from exc
    if not isinstance(data, dict):
        raise FileFormatError("rules file must hold a table/object of options", path=p)
    for key, value in data.items():
        if key not in RULES_FILE_KEYS:
            raise UsageError(f"{p}: unknown rule {key!r}; known: {', '.join(RULES_FILE_KEYS)}")
        types, what = RULES_FILE_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise UsageError(f"{p}: {key} ({what}) must be {' or '.join(t.__name__ for t in types)}, "
                             f"not {value!r}")
    if "count" in data and "count_col" in data:
        raise UsageError(f"{p}: give count or count_col, not both")
    if "similar" in data and not all(isinstance(s, str) for s in data["similar"]):
        raise UsageError(f"{p}: similar must be a list of column names")
    for key, value in data.get("weights", {}).items():
        if key not in WEIGHT_KEYS:
            raise UsageError(f"{p}: unknown weight {key!r}; known: {', '.join(WEIGHT_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"{p}: weight {key} must be a number >= 0, not {value!r}")
    return dict(data)


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
    """One input layer: a file and, for multi-layer files, the layer in it."""

    path: Path
    layer: str | None = None


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

    def bounds_for(self, kind: str | None) -> LevelBounds:
        """The bounds of a village kind; unknown kinds are rural (the counties' default)."""
        return self.bounds.get(kind or "rural", self.bounds["rural"])


_NUM = (int, float)
#: section -> key -> (types, CountyRules field or None for special handling, meaning)
_COUNTY_KEYS: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    "county": {"name": ((str,), "county name"), "code": ((str,), "6-digit county code for inputs without codes"),
               "seed": ((int,), "random seed"), "workers": ((int,), "worker processes (default: CPU count)")},
    "inputs": {k: ((str, dict), "a file, or {path, layer}") for k in
               ("county", "osm", "townships", "villages", "villager_groups", "buildings", "households",
                "roads", "water", "pois", "ridges")},
    "levels": {"blocks": ((bool,), "build blocks"), "points": ((bool,), "build grid points")},
    "households": {"dwelling_m2": (_NUM, "floor area of one dwelling, m²"),
                   "default_levels": (_NUM, "storeys of a building with none recorded"),
                   "min_building_m2": (_NUM, "smaller buildings hold no household")},
    "barriers": {"highway": ((list,), "OSM highway classes that cut street blocks"),
                 "waterway": ((list,), "waterway classes that cut street blocks"),
                 "water_areas": ((bool,), "lakes and ponds cut street blocks"),
                 "ridges": ((bool,), "a ridges layer cuts street blocks"),
                 "min_unit_m2": (_NUM, "faces below this merge into a neighbour")},
    "exclusive": {"categories": ((list,), "POI categories carved out as exclusive grids"),
                  "site_radius_m": (_NUM, "footprint radius of a site given as a point"),
                  "site_max_block_m2": (_NUM, "a point site takes its whole street block up to this size"),
                  "site_min_m2": (_NUM, "smaller sites stay in the base grids")},
    "grids": {"use_groups": ((bool,), "one grid per villager group where groups are given")},
    "bounds": {"rural": ((dict,), "{grid = [min, max], point = [min, max]}"),
               "urban": ((dict,), "{grid = [min, max], point = [min, max]}")},
    "blocks": {"min": (_NUM, "minimum households per block"), "max": (_NUM, "maximum households per block"),
               "count": ((int,), "blocks per township"), "similar": ((list,), "village columns not to mix")},
    "search": {"iterations": ((int,), "annealing proposals per unit"),
               "restarts": ((int,), "fresh draws when repair fails")},
    "check": {"tolerance_m2": (_NUM, "largest gap or overlap accepted in a tiling, m²")},
}


def _pair(v: object, what: str, p: Path) -> tuple[float, float]:
    if (not isinstance(v, list) or len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int | float)
                                                      for x in v)):
        raise UsageError(f"{p}: {what} must be [min, max] numbers, not {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo < 0 or hi <= 0 or lo > hi:
        raise UsageError(f"{p}: {what} = [{lo:g}, {hi:g}] needs 0 <= min <= max and max > 0")
    return lo, hi


def load_county_rules(path: str | Path) -> CountyRules:
    """Read a county rules file (TOML) and check every section, key and type.

    Why strict: a misspelt key silently ignored would build grids that break
    the county's policy without anyone noticing. Input paths are relative to
    the rules file.

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
        if sec not in _COUNTY_KEYS:
            raise UsageError(f"{p}: unknown section [{sec}]; known: {', '.join(_COUNTY_KEYS)}")
        if not isinstance(body, dict):
            raise UsageError(f"{p}: [{sec}] must be a table")
        for key, value in body.items():
            if key not in _COUNTY_KEYS[sec]:
                raise UsageError(f"{p}: unknown key {key!r} in [{sec}]; known: {', '.join(_COUNTY_KEYS[sec])}")
            types, what = _COUNTY_KEYS[sec][key]
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise UsageError(f"{p}: [{sec}] {key} ({what}) must be {' or '.join(t.__name__ for t in types)}, "
                                 f"not {value!r}")
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise UsageError(f"{p}: [{sec}] {key} must be >= 0, not {value!r}")
    base = p.parent
    kw: dict[str, Any] = {"source": p}
    c = data.get("county", {})
    for key in ("name", "code", "seed", "workers"):
        if key in c:
            kw[key] = c[key]
    if "code" in kw and not (kw["code"].isdigit() and len(kw["code"]) == 6):
        raise UsageError(f"{p}: [county] code must be 6 digits, not {kw['code']!r}")
    inputs: dict[str, InputSpec] = {}
    for key, value in data.get("inputs", {}).items():
        if isinstance(value, dict):
            extra = set(value) - {"path", "layer"}
            if extra or not isinstance(value.get("path"), str):
                raise UsageError(f"{p}: [inputs] {key} must be a path or {{path = ..., layer = ...}}")
            spec = InputSpec((base / value["path"]).resolve(), value.get("layer"))
        else:
            spec = InputSpec((base / value).resolve())
        if key == "county":
            kw["county"] = spec.path
        elif key == "osm":
            kw["osm"] = spec.path
        else:
            inputs[key] = spec
    kw["inputs"] = inputs
    lv = data.get("levels", {})
    kw.update({k: lv[k] for k in ("blocks", "points") if k in lv})
    hh = data.get("households", {})
    kw.update({k: float(hh[k]) for k in ("dwelling_m2", "default_levels", "min_building_m2") if k in hh})
    if kw.get("dwelling_m2", 1.0) <= 0:
        raise UsageError(f"{p}: [households] dwelling_m2 must be > 0")
    br = data.get("barriers", {})
    for key, fld in (("highway", "barrier_highways"), ("waterway", "barrier_waterways")):
        if key in br:
            if not all(isinstance(s, str) for s in br[key]):
                raise UsageError(f"{p}: [barriers] {key} must be a list of class names")
            kw[fld] = tuple(br[key])
    kw.update({k: br[k] for k in ("water_areas", "ridges") if k in br})
    if "min_unit_m2" in br:
        kw["min_unit_m2"] = float(br["min_unit_m2"])
    ex = data.get("exclusive", {})
    if "categories" in ex:
        if not all(isinstance(s, str) for s in ex["categories"]):
            raise UsageError(f"{p}: [exclusive] categories must be a list of names")
        kw["exclusive"] = tuple(ex["categories"])
    kw.update({k: float(ex[k]) for k in ("site_radius_m", "site_max_block_m2", "site_min_m2") if k in ex})
    if "use_groups" in data.get("grids", {}):
        kw["use_groups"] = data["grids"]["use_groups"]
    bounds = dict(DEFAULT_BOUNDS)
    for kind, body in data.get("bounds", {}).items():
        extra = set(body) - {"grid", "point"}
        if extra:
            raise UsageError(f"{p}: unknown key(s) {sorted(extra)} in [bounds.{kind}]; known: grid, point")
        d = bounds[kind]
        bounds[kind] = LevelBounds(
            grid=_pair(body["grid"], f"[bounds.{kind}] grid", p) if "grid" in body else d.grid,
            point=_pair(body["point"], f"[bounds.{kind}] point", p) if "point" in body else d.point,
        )
    kw["bounds"] = bounds
    bl = data.get("blocks", {})
    if "min" in bl or "max" in bl or "count" in bl:
        kw["block_min"] = float(bl["min"]) if "min" in bl else None
        kw["block_max"] = float(bl["max"]) if "max" in bl else None
        kw["block_count"] = bl.get("count")
    if kw.get("block_min") is not None and kw.get("block_max") is not None and kw["block_min"] > kw["block_max"]:
        raise UsageError(f"{p}: [blocks] min is above max")
    if "similar" in bl:
        kw["block_similar"] = tuple(str(s) for s in bl["similar"])
    se = data.get("search", {})
    kw.update({k: se[k] for k in ("iterations", "restarts") if k in se})
    if "tolerance_m2" in data.get("check", {}):
        kw["tolerance_m2"] = float(data["check"]["tolerance_m2"])
    return CountyRules(**kw)
