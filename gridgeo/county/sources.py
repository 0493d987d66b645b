"""What a county build reads: the input layers, checked villages, weighted items, barriers and sites.

Everything a village's build needs from the county's layers is gathered here
in the metric CRS: the villages (checked and repaired, each with a township
and a kind), the buildings or household points as weighted :class:`Items`
(households given, or estimated from footprints,
:func:`gridgeo.county.units.estimate_households`), the barrier lines that cut
street blocks, and the POIs the rules carve out as exclusive :class:`Sites`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo._geom import containing
from gridgeo.county.rules import CountyRules, InputSpec
from gridgeo.county.units import estimate_households
from gridgeo.data.io import list_layers, read_layer
from gridgeo.data.registers import Register, place_on_buildings, prepare_register
from gridgeo.data.tables import ROW
from gridgeo.errors import InputError, SchemaError, UsageError

log = logging.getLogger(__name__)

__all__ = ["Items", "Sites", "barriers", "items", "load_inputs", "prepare_villages", "sites"]

GArray = NDArray[np.object_]

_INPUT_LAYERS = ("townships", "villages", "villager_groups", "buildings", "households", "roads", "water", "pois",
                 "ridges")


@dataclass(frozen=True)
class Items:
    """Buildings or household points as weighted items, in the metric CRS."""

    source: str | None  # "building", "household", or None when there are none
    geoms: GArray
    weights: NDArray[np.int64]  # households of each item
    estimated: NDArray[np.bool_]  # True where the households were estimated from the footprint
    ids: list[str]
    labels: list[str | None] | None  # villager group of each household point, when given
    warnings: tuple[str, ...] = ()  # legal but almost certainly not meant (negative counts repaired), logged
    register: Register | None = None  # household points from a register: its columns, rows and skips


def _negative_rows(values: list[Any]) -> list[int]:
    """Rows whose household count is a number below zero (a typo or a -1 "unknown" code, never a count)."""
    out = []
    for i, v in enumerate(values):
        try:
            if v is not None and float(v) < 0:
                out.append(i)
        except (TypeError, ValueError):
            continue
    return out


def _negative_warning(layer: str, rows: list[int], ids: list[str], repair: str) -> str:
    """One warning line naming the rows (and their ids) with a negative household count and the repair."""
    named = ", ".join(f"{r} ({ids[r]})" for r in rows[:10]) + (" ..." if len(rows) > 10 else "")
    text = (f"{layer}: {len(rows)} row{'s' if len(rows) > 1 else ''} with a negative household count, {repair}: "
            f"rows {named}")
    log.warning("%s", text)
    return text


@dataclass(frozen=True)
class Sites:
    """The POIs the rules carve out as exclusive grids, in the metric CRS."""

    geoms: GArray
    names: list[str]
    categories: list[str]
    ids: list[str]


# --------------------------------------------------------------------------------------
# Input layers
# --------------------------------------------------------------------------------------
def load_inputs(rules: CountyRules, *, county: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """Read the input layers the rules name; ``county`` (``--input``) overrides ``[inputs] county``.

    Raises
    ------
    UsageError
        No townships or villages can be found in what the rules name.
    """
    layers: dict[str, gpd.GeoDataFrame] = {}
    gpkg = Path(county) if county is not None else rules.county
    if gpkg is not None:
        have = set(list_layers(gpkg))
        for name in _INPUT_LAYERS:
            if name in have:
                layers[name] = _read(gpkg, name, name)
    elif rules.osm is not None:
        from gridgeo.data.inputs import county_from_osm

        layers.update(county_from_osm(rules.osm, county_code=rules.code, county_name=rules.name))
    for name, spec in rules.inputs.items():
        if name != "people":  # a roster, resolved on the built units (gridgeo.people.roster)
            layers[name] = _read(spec.path, spec.layer, name, spec)
    for need in ("townships", "villages"):
        if need == "townships" and "villages" in layers and "township" in layers["villages"].columns:
            continue  # made from the checked villages (prepare_villages)
        if need not in layers:
            src = rules.source or "the rules"
            raise UsageError(f"{src}: no {need} layer: give [inputs] county = FILE.gpkg, osm = FILE.osm.pbf, "
                             f"or {need} = FILE (or --input FILE.gpkg)")
    return layers


def _read(path: Path, layer: str | None, name: str, spec: InputSpec | None = None) -> gpd.GeoDataFrame:
    from gridgeo.data.schema import SCHEMAS

    # a schema's kind normalises the columns (aliases such as 户数 or tname); ridges have none
    opts = spec.read_options() if spec is not None else {}
    gdf = read_layer(path, layer=layer, kind=name if name in SCHEMAS else None, **opts)
    gdf.attrs["source"] = f"{path}" + (f" (layer {layer})" if layer else "")
    return gdf


def register_of(layers: MutableMapping[str, gpd.GeoDataFrame]) -> Register | None:
    """The households layer as a register (persons made households, values canonical, rows without
    coordinates placed on their buildings), replacing the layer; None without one."""
    if "households" not in layers:
        return None
    hh = layers["households"]
    reg = prepare_register(hh, source=_where(hh, "households"))
    place_on_buildings(reg, layers.get("buildings"))
    reg.frame.attrs["source"] = reg.source
    layers["households"] = reg.frame
    return reg


def metric_geoms(gdf: gpd.GeoDataFrame, metric: pyproj.CRS) -> GArray:
    """The layer's geometries in the metric CRS, as an object array."""
    return np.asarray(gdf.to_crs(metric).geometry.values, dtype=object)


def _metric_in_place(gdf: gpd.GeoDataFrame, metric: pyproj.CRS) -> GArray:
    """The layer's geometries in the metric CRS; the layer keeps its other columns and loses its geometry.

    Converted :data:`METRIC_CHUNK` at a time into one array, each chunk's
    source geometries released as it is done, so at most a chunk is held
    twice (the memory of the released ones is reused by the next chunks).
    """
    src = gdf.crs
    geoms = np.asarray(gdf.geometry.values, dtype=object).copy()
    gdf[gdf.geometry.name] = None  # the layer no longer holds the source geometries: geoms does
    for lo in range(0, len(geoms), METRIC_CHUNK):
        part = slice(lo, lo + METRIC_CHUNK)
        geoms[part] = np.asarray(gpd.GeoSeries(geoms[part], crs=src).to_crs(metric).values, dtype=object)
    return geoms


def column(gdf: gpd.GeoDataFrame, name: str) -> list[Any]:
    """A column's values with every kind of missing (None, NaN, NA) as None; all None if absent."""
    if name not in gdf.columns:
        return [None] * len(gdf)
    return [None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else v
            for v in gdf[name].tolist()]


# --------------------------------------------------------------------------------------
# Villages and townships
# --------------------------------------------------------------------------------------
#: digits of the village's own serial at the end of a statistical division code (GB/T 10114: 12 digits =
#: county 6 + township 3 + village 3; Taiwan's 10-digit 村里 codes end the same way)
VILLAGE_SERIAL_DIGITS = 3


def township_codes(codes: pd.Series, names: pd.Series | None) -> pd.Series | None:
    """Each village's township code from its own code (the code less its last 3 digits), or None.

    Only where every code is digits of one length (at least 9) and, when the
    villages name their township, the prefixes and the names agree one to
    one: otherwise the codes do not follow the statistical scheme and the
    township names stay the townships' codes.
    """
    text = codes.astype(str)
    lengths = set(text.str.len())
    if not text.str.fullmatch(r"\d+").all() or len(lengths) != 1 or lengths.pop() < 9:
        return None
    prefix = text.str[:-VILLAGE_SERIAL_DIGITS]
    if names is not None and names.notna().all():
        pairs = pd.DataFrame({"p": prefix, "n": names.astype(str)}).drop_duplicates()
        if pairs["p"].duplicated().any() or pairs["n"].duplicated().any():
            return None
    return prefix


def _townships_from_villages(villages: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Townships as the union of their villages, when only villages are given (logged).

    Codes come from the villages' statistical codes where they follow the
    scheme (:func:`township_codes`; the villages' ``township`` becomes that
    code), else the township column's value is code and name: boundary files
    of 村/里 often carry the township's name but no township layer.
    """
    src = villages.attrs.get("source", "villages")
    names = villages["township"] if "township" in villages.columns else None
    derived = township_codes(villages["code"], names)
    if derived is None and (names is None or names.isna().all()):
        raise UsageError(f"{src}: no townships layer, no township column in the villages, and village codes "
                         "that do not hold a township code; give [inputs] townships = FILE")
    if derived is not None:
        label = names.astype(str) if names is not None and names.notna().all() else derived
        villages["township"] = derived
        log.warning("%s: no townships layer; %d townships made from the village codes (less their last %d "
                    "digits)", src, derived.nunique(), VILLAGE_SERIAL_DIGITS)
    else:
        label = villages["township"].astype(str)
        log.warning("%s: no townships layer; %d townships made from the villages' township column", src,
                    villages["township"].nunique())
    v = villages[villages["township"].notna()]
    groups = list(v.groupby("township", sort=True))
    geoms = [shapely.union_all(shapely.make_valid(np.asarray(g.geometry.values))) for _, g in groups]
    first = dict(zip(villages["township"].astype(str), label, strict=True))
    out = gpd.GeoDataFrame({"code": [str(k) for k, _ in groups], "name": [first[str(k)] for k, _ in groups]},
                           geometry=geoms, crs=villages.crs)
    out.attrs["source"] = "villages (dissolved)"
    return out


def _check_villages(villages: gpd.GeoDataFrame, report: dict[str, Any]) -> gpd.GeoDataFrame:
    """Check and repair the villages (invalid rings, slivers are repaired and reported; errors refuse)."""
    from gridgeo.data.check import check_layer

    source = villages.attrs.get("source")
    checked = check_layer(villages, id_col="code", parent_col="township" if "township" in villages else None,
                          path=source)
    repaired = [f"{p.id}: {p.message}" for p in checked.report.problems if p.severity == "repaired"]
    for line in repaired:
        log.warning("%s: village %s", source or "villages", line)
    report["repaired"] = repaired
    message = checked.report.unusable_message(what="village")
    if message is not None:
        raise InputError(message, path=source)
    return checked.gdf.reset_index(drop=True)


def prepare_villages(layers: Mapping[str, gpd.GeoDataFrame], report: dict[str, Any]) -> tuple[
        gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The townships and the checked villages, each village with a string code, a township and a kind.

    Raises
    ------
    SchemaError
        A village without a code, or two with the same code.
    InputError
        A village in no township, or naming a township that is not given; an unusable villages layer.
    """
    from gridgeo.data.schema import village_kinds

    vil = layers["villages"].reset_index(drop=True)
    if "townships" not in layers:
        vil = _check_villages(vil, report)
        towns = _townships_from_villages(vil)
    else:
        towns = layers["townships"].reset_index(drop=True)
    src = vil.attrs.get("source")
    _check_codes(vil, src)
    towns["code"] = towns["code"].astype(str)
    if "township" not in vil.columns or vil["township"].isna().any():
        _townships_by_location(vil, towns, src)
    vil["township"] = vil["township"].astype(str)
    unknown = sorted(set(vil["township"]) - set(towns["code"]))
    if unknown:
        raise InputError(f"villages name township {unknown[0]}, which is not in the townships layer", path=src)
    name = vil["name"] if "name" in vil.columns else pd.Series([None] * len(vil))
    vil["kind"] = village_kinds(vil["kind"] if "kind" in vil.columns else pd.Series([None] * len(vil)), name)
    vil["kind"] = vil["kind"].fillna("rural")
    if "townships" in layers:
        vil = _check_villages(vil, report)
    return towns, vil


def _check_codes(vil: gpd.GeoDataFrame, src: str | None) -> None:
    """Every village has a code, and no two the same (codes become strings)."""
    if "code" not in vil.columns:
        raise SchemaError("every village needs a code (no code column)", path=src)
    codes = column(vil, "code")
    missing = [i for i, v in enumerate(codes) if v is None or not str(v).strip()]
    if missing:  # null and blank alike (the check's missing_id); the rows, not a TypeError in sorting codes
        listed = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise SchemaError(f"missing_id: no village code (null or empty) in {len(missing)} "
                          f"row{'s' if len(missing) > 1 else ''} ({listed}); give every village a code", path=src)
    vil["code"] = vil["code"].astype(str)
    dup = vil["code"][vil["code"].duplicated()].tolist()
    if dup:
        raise SchemaError(f"duplicate village code {dup[0]}", path=src, feature=dup[0])


def _townships_by_location(vil: gpd.GeoDataFrame, towns: gpd.GeoDataFrame, src: str | None) -> None:
    """A village without a township takes the one its representative point lies in (lowest index wins)."""
    rp = gpd.GeoSeries(vil.geometry.representative_point(), crs=vil.crs).to_crs(towns.crs)
    where = containing(np.asarray(towns.geometry.values, dtype=object), np.asarray(rp.values, dtype=object),
                       boundary=False)
    codes = towns["code"].tolist()
    hit = [codes[i] if i >= 0 else None for i in where.tolist()]
    given = vil["township"] if "township" in vil.columns else pd.Series([None] * len(vil))
    vil["township"] = [g if isinstance(g, str) and g else h for g, h in zip(given, hit, strict=True)]
    if vil["township"].isna().any():
        bad = vil["code"][vil["township"].isna()].iloc[0]
        raise InputError("village lies in no township", path=src, feature=bad)


# --------------------------------------------------------------------------------------
# Items, barriers, sites
# --------------------------------------------------------------------------------------
#: Geometries converted to the metric CRS at a time (:func:`_metric_in_place`).
METRIC_CHUNK = 100_000


def items(layers: MutableMapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> Items:
    """Household points (preferred) or buildings as weighted items, in the metric CRS.

    The ``buildings`` and ``households`` layers are taken out of ``layers``:
    the items hold them from now on, in the metric CRS only. Why: a
    province's 3M building footprints are a gigabyte as shapely objects;
    holding the layer as read beside its metric copy doubled the read's peak.
    """
    register = register_of(layers)
    taken = {name: layers.pop(name) for name in ("households", "buildings") if name in layers}
    out = _items(taken, rules, metric)
    if register is None or out.source != "household":
        return out
    keep = [c for c in register.carried if c in register.frame.columns]
    register.frame = pd.DataFrame(register.frame[[*keep, ROW]])  # the attributes only: the items hold the points
    return replace(out, register=register)


def _items(layers: dict[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> Items:
    if "households" in layers and len(layers["households"]):
        hh = layers.pop("households").reset_index(drop=True)
        given = column(hh, "households")
        hh_ids = [str(v) if v is not None else str(i) for i, v in enumerate(column(hh, "id"))]
        negative = _negative_rows(given)
        skip = set(negative)  # a negative count is no count: one household, like a point with none given
        w = np.asarray([1 if v is None or i in skip else int(v) for i, v in enumerate(given)], dtype=np.int64)
        lab_col = next((c for c in ("group", "villager_group", "grid") if c in hh.columns), None)
        labels = [None if v is None else str(v) for v in column(hh, lab_col)] if lab_col else None
        warned = (_negative_warning(_where(hh, "households"), negative, hh_ids, "each counted as 1"),) \
            if negative else ()
        return Items(source="household", geoms=_metric_in_place(hh, metric), weights=w,
                     estimated=np.zeros(len(w), dtype=bool), ids=hh_ids, labels=labels, warnings=warned)
    if "buildings" in layers and len(layers["buildings"]):
        b = layers.pop("buildings").reset_index(drop=True)
        ids = column(b, "osm_id") if "osm_id" in b.columns else column(b, "id")
        b_ids = [str(v) if v is not None else str(i) for i, v in enumerate(ids)]
        negative = _negative_rows(column(b, "households"))
        warned = (_negative_warning(_where(b, "buildings"), negative, b_ids, "re-estimated from the footprint"),) \
            if negative else ()
        geoms = _metric_in_place(b, metric)
        mb = gpd.GeoDataFrame(b, geometry=geoms, crs=metric)
        del b
        w, est = estimate_households(mb, dwelling_m2=rules.dwelling_m2, default_levels=rules.default_levels,
                                     min_area_m2=rules.min_building_m2)
        return Items(source="building", geoms=geoms, weights=np.asarray(w, dtype=np.int64),
                     estimated=np.asarray(est, dtype=bool), ids=b_ids, labels=None, warnings=warned)
    return Items(source=None, geoms=np.zeros(0, dtype=object), weights=np.zeros(0, dtype=np.int64),
                 estimated=np.zeros(0, dtype=bool), ids=[], labels=None)


def _where(gdf: gpd.GeoDataFrame, layer: str) -> str:
    return str(gdf.attrs.get("source") or layer)


def missing_layer_warnings(layers: Mapping[str, gpd.GeoDataFrame]) -> list[str]:
    """Warnings for a county built without buildings (or household points) or without roads, logged.

    Both are legal (a build from boundaries alone) but almost never meant: without households every grid
    and grid point is sized by area alone and counts 0 households; without roads street blocks are cut by
    water and ridges only and patrols have no street network.
    """
    out = []
    if not any(name in layers and len(layers[name]) for name in ("households", "buildings")):
        out.append("no buildings or household points: every village counts 0 households and grids are "
                   "drawn by area alone; give [inputs] buildings = FILE or households = FILE")
    if not ("roads" in layers and len(layers["roads"])):
        out.append("no roads: street blocks are cut by water and ridges only and patrols have no streets; "
                   "give [inputs] roads = FILE")
    for text in out:
        log.warning("%s", text)
    return out


def barriers(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> GArray:
    """The lines that cut street blocks: barrier roads, waterways, water-area outlines, ridges."""
    out: list[GArray] = []
    if "roads" in layers and len(layers["roads"]):
        r = layers["roads"]
        keep = r["highway"].isin(rules.barrier_highways) if "highway" in r.columns else np.ones(len(r), bool)
        out.append(metric_geoms(r[keep], metric))
    if "water" in layers and len(layers["water"]):
        out += _water_barriers(layers["water"], rules, metric)
    if rules.ridges and "ridges" in layers and len(layers["ridges"]):
        out.append(metric_geoms(layers["ridges"], metric))
    if not out:
        return np.zeros(0, dtype=object)
    g = np.concatenate(out)
    g = g[~shapely.is_empty(g) & ~shapely.is_missing(g)]
    return g


def _water_barriers(w: gpd.GeoDataFrame, rules: CountyRules, metric: pyproj.CRS) -> list[GArray]:
    g = metric_geoms(w, metric)
    poly = np.isin(shapely.get_type_id(g), (3, 6))
    cls = w["waterway"].astype(str).to_numpy() if "waterway" in w.columns else np.array([""] * len(w))
    lines = ~poly & np.isin(cls, rules.barrier_waterways)
    out = [g[lines]]
    if rules.water_areas:
        out.append(shapely.boundary(g[poly]))
    return out


def sites(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> Sites:
    """The POIs of the categories the rules carve out, in the metric CRS (repaired)."""
    if "pois" not in layers or not len(layers["pois"]) or "category" not in layers["pois"].columns:
        return Sites(geoms=np.zeros(0, dtype=object), names=[], categories=[], ids=[])
    p = layers["pois"].reset_index(drop=True)
    keep = p["category"].isin(rules.exclusive).to_numpy()
    p = p[keep].reset_index(drop=True)
    ids = column(p, "osm_id") if "osm_id" in p.columns else [None] * len(p)
    return Sites(geoms=shapely.make_valid(metric_geoms(p, metric)),
                 names=[str(v) if v is not None else "" for v in column(p, "name")],
                 categories=[str(v) for v in p["category"]],
                 ids=[str(v) if v is not None else f"poi{int(i)}" for i, v in zip(np.flatnonzero(keep), ids,
                                                                                    strict=True)])


def lane_roads(layers: Mapping[str, gpd.GeoDataFrame], rules: CountyRules, metric: pyproj.CRS) -> tuple[
        GArray, list[str | None]]:
    """The roads lanes follow (the barrier highway classes), metric CRS, and each one's ``name`` (None: unnamed).

    Why the barrier classes: a lane is the households along a street a grid
    worker would call one, the same roads that bound street blocks.
    """
    r = layers.get("roads")
    if r is None or not len(r):
        return np.zeros(0, dtype=object), []
    keep = r["highway"].isin(rules.barrier_highways).to_numpy() if "highway" in r.columns else np.ones(len(r), bool)
    r = r[keep]
    g = metric_geoms(r, metric)
    ok = ~shapely.is_empty(g) & ~shapely.is_missing(g)
    names = [str(v) if v is not None and str(v).strip() and str(v) != "nan" else None for v in column(r, "name")] \
        if "name" in r.columns else [None] * len(r)
    return g[ok], [n for n, k in zip(names, ok.tolist(), strict=True) if k]
