"""A deterministic generator of a plausible synthetic county (``gridgeo synth``).

Why synthetic data at all: real Chinese village boundaries (村界) and building
footprints are rarely public, yet every part of gridgeo -- blocks, grids,
points, patrol routes -- needs a county-sized input with the right *shape*:
townships tiled exactly by villages, villages tiled by villager groups, small
dense urban communities (社区) next to large rural villages (村), households on
buildings, roads of every OSM class, rivers, and the sites that become
exclusive grids (schools, hospitals, mines, gated compounds).

How the county is built (all in a metric CGCS2000 3-degree Gauss-Krüger CRS):

1. A noisy star-shaped outline whose area follows the number of villages.
2. Township seats spread by Lloyd relaxation; the most central becomes the
   county seat (街道), the rest towns (镇) and townships (乡).
3. Village seeds: a hexagonal cluster of urban communities around every seat
   that has one, rural villages spread by a density-weighted Lloyd relaxation
   (denser in the plains, sparser in the mountains).  A community claims land
   only within about 700 m of its centre; the rural villages wrap around towns.
4. Villager-group seeds inside every village, then land parcels (a jittered
   lattice, finer in towns) and ONE global Voronoi diagram of all parcels,
   closed off by a ring of "ghost" seeds outside the outline.  Each parcel
   belongs to a village and to the nearest group seed of that village; groups
   are unions of parcels, villages unions of groups, townships unions of
   villages.  Every shared edge is therefore the same chain of vertices on both
   sides: the tiling is exact by construction, and because each distinct
   vertex is transformed once it stays exact after reprojection too.
5. Boundary chains are smoothed, densified canonically (the same points
   whichever side walks them) and bent by a smooth, injective warp, so they
   look drawn by streams and ridges rather than by a ruler.
6. Households, buildings (rural hamlets along lanes, urban apartment blocks
   on street grids), roads, water and points of interest follow.

Everything is drawn from one :func:`numpy.random.default_rng` seeded by the
caller; nothing depends on set or dict order or on the clock, so the same
arguments always give the same county.  :func:`synth_county` is a short driver
over named stages (steps 1-4 in :mod:`gridgeo.synth._seeds` and
:mod:`gridgeo.synth._tiling`, 5 in :mod:`gridgeo.synth._warp`, 6 in the
modules named after what they draw); the order of the stages is the order of
the draws, so it is part of the county.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from pyproj import Transformer
from tqdm import tqdm

from gridgeo.data.crs import cgcs2000_gk_epsg
from gridgeo.data.io import GPKG_VERSION, atomic_path
from gridgeo.errors import UsageError
from gridgeo.synth._buildings import draw_buildings
from gridgeo.synth._constants import (
    GEOGRAPHIC_EPSG,
    INDUSTRIES,
    LAYERS,
    MAX_HOUSEHOLDS_PER_VILLAGE,
    MAX_VILLAGES_PER_TOWNSHIP,
    POI_CATEGORIES,
    TOWNSHIP_KINDS,
)
from gridgeo.synth._frames import Features, Labels, assemble
from gridgeo.synth._lines import draw_water
from gridgeo.synth._names import Codes, Names, PlaceNames, division_codes
from gridgeo.synth._pois import draw_industry, draw_pois
from gridgeo.synth._roads import draw_roads
from gridgeo.synth._seeds import Land, draw_land, place_townships, seed_groups, seed_villages
from gridgeo.synth._tiling import Tiling, draw_groups, unite
from gridgeo.synth._warp import warp_groups

__all__ = ["INDUSTRIES", "LAYERS", "POI_CATEGORIES", "TOWNSHIP_KINDS", "synth_county", "write_county"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Request:
    """The validated arguments of :func:`synth_county`."""

    seed: int
    townships: int
    villages: int
    households: int
    county_code: str
    lon: float
    lat: float


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise UsageError(f"{name} must be an integer, not {value!r}")
    return int(value)


def _check_counts(t: int, v: int, h: int) -> None:
    """Every township needs a village, every village a household, and the sizes must be plausible."""
    if t < 1:
        raise UsageError(f"townships must be >= 1, not {t}")
    if v < t:
        raise UsageError(f"villages ({v}) must be >= townships ({t}): every township needs a village")
    if h < v:
        raise UsageError(f"households ({h}) must be >= villages ({v}): every village needs a household")
    if v > MAX_VILLAGES_PER_TOWNSHIP * t:
        raise UsageError(
            f"{v} villages in {t} townships is more than {MAX_VILLAGES_PER_TOWNSHIP} per township "
            "on average; village codes have 3 digits -- ask for more townships"
        )
    if v > 60_000:
        raise UsageError(f"villages must be <= 60000 (a large province), not {v}")
    if h > MAX_HOUSEHOLDS_PER_VILLAGE * v:
        raise UsageError(
            f"{h} households in {v} villages is more than {MAX_HOUSEHOLDS_PER_VILLAGE} per village "
            "on average; ask for more villages"
        )


def _check_center(center: object) -> tuple[float, float]:
    try:
        lon, lat = (float(c) for c in center)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"center must be (longitude, latitude), not {center!r}") from exc
    if not (73.5 <= lon < 136.5 and 3.0 <= lat <= 54.0):
        raise UsageError(f"center ({lon}, {lat}) is not in China (lon 73.5-136.5, lat 3-54)")
    return lon, lat


def _validate(
    seed: object, townships: object, villages: object, households: object, *, county_code: object, center: object
) -> _Request:
    """Check the arguments of :func:`synth_county`; return them typed, ``center`` as floats."""
    s = _int("seed", seed)
    if s < 0:
        raise UsageError(f"seed must be >= 0, not {seed}")
    t, v, h = _int("townships", townships), _int("villages", villages), _int("households", households)
    _check_counts(t, v, h)
    if not isinstance(county_code, str) or not re.fullmatch(r"\d{6}", county_code):
        raise UsageError(f"county_code must be a string of 6 digits (e.g. '369900'), not {county_code!r}")
    if int(county_code) + (t - 1) // 999 > 999_999:
        raise UsageError(f"county_code {county_code} leaves no room for {t} township codes")
    lon, lat = _check_center(center)
    return _Request(
        seed=s, townships=t, villages=v, households=h, county_code=county_code, lon=lon, lat=lat
    )


def _metric_epsg(lon: float) -> int:
    """The CGCS2000 3-degree Gauss-Krüger zone (by central meridian) the county is drawn in.

    Why this CRS: it is the metric CRS Chinese survey offices deliver village
    boundaries in, so areas and lengths computed here match what a county
    natural-resources bureau would report.  The centre check lets 73.5E through,
    which rounds to the 72E meridian, outside the zones: that is the caller's
    mistake, so it is a :class:`~gridgeo.errors.UsageError`.
    """
    try:
        return cgcs2000_gk_epsg(lon)
    except ValueError:
        raise UsageError(f"longitude {lon} is outside the CGCS2000 3-degree zones (73.5E-136.5E)") from None


# ---------------------------------------------------------------- stages


def _peak_rss() -> str:
    """Peak resident memory of this process, for the DEBUG log (POSIX only)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return "n/a"
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f"{kb / 1024:.0f} MB"  # kilobytes on Linux


@contextmanager
def _stage(bar: tqdm, name: str) -> Iterator[None]:
    """Time one generation stage: logged at DEBUG, shown on the progress bar."""
    bar.set_postfix_str(name)
    t0 = time.perf_counter()
    yield
    logger.debug("synth: %-20s %6.2f s  peak RSS %s", name, time.perf_counter() - t0, _peak_rss())
    bar.update(1)


#: Progress-bar steps: 7 of the tiling, 1 of the labels, 5 of the features, 1 of the output.
_STAGES = 14


def _draw_tiling(
    rng: np.random.Generator, req: _Request, centre: tuple[float, float], *, bar: tqdm, progress: bool
) -> tuple[Tiling, Land]:
    """Outline, seats, village and group seeds, parcels, warp, unions: the exact tiling."""
    with _stage(bar, "outline"):
        plan, land = draw_land(rng, townships=req.townships, villages=req.villages, centre=centre)
    with _stage(bar, "township seats"):
        seats = place_townships(rng, land, plan)
    with _stage(bar, "village seeds"):
        villages = seed_villages(rng, land, seats, req.villages)
    with _stage(bar, "group seeds"):
        groups = seed_groups(rng, villages, land)
    with _stage(bar, "parcels"):
        cells = draw_groups(rng, land, villages, groups, progress=progress)
    with _stage(bar, "warp"):
        cells = warp_groups(rng, cells, centre)
    with _stage(bar, "unions"):
        tiling = unite(cells, villages, seats, progress=progress)
    return tiling, land


def _draw_features(
    rng: np.random.Generator,
    tiling: Tiling,
    land: Land,
    req: _Request,
    *,
    names: Names,
    codes: Codes,
    places: PlaceNames,
    bar: tqdm,
    progress: bool,
) -> tuple[Labels, Features]:
    """Water, village industries, buildings, roads and points of interest, in draw order."""
    with _stage(bar, "water"):
        water, river_pts = draw_water(rng, tiling.county, names, radius=land.radius, villages=req.villages)
    with _stage(bar, "industry"):
        labels = Labels(codes=codes, names=places, industry=draw_industry(rng, tiling, land, river_pts))
    street_theta = rng.uniform(0, np.pi / 2, req.townships)  # one street grid per town
    with _stage(bar, "buildings"):
        bld = draw_buildings(
            rng, tiling, households=req.households, street_theta=street_theta, mountain=land.mountain,
            progress=progress,
        )
    with _stage(bar, "roads"):
        roads = draw_roads(rng, tiling, bld, street_theta=street_theta)
    with _stage(bar, "points of interest"):
        pois = draw_pois(rng, tiling, bld, names=places, codes=codes, industry=labels.industry)
    return labels, Features(buildings=bld, roads=roads, water=water, pois=pois)


def _metadata(req: _Request, *, county_name: str, epsg: int) -> dict[str, str]:
    """Layer metadata that says where the county came from.

    GDAL metadata keys may not contain ':' or '=' (it splits on both).
    """
    return {
        "GRIDGEO_SYNTHETIC": "yes",
        "GRIDGEO_GENERATOR": "gridgeo.synth.synth_county",
        "GRIDGEO_ARGUMENTS": (
            f"seed {req.seed}, townships {req.townships}, villages {req.villages}, households {req.households}, "
            f"county_code {req.county_code}, center {req.lon} {req.lat}"
        ),
        "GRIDGEO_COUNTY": county_name,
        "GRIDGEO_METRIC_CRS": f"EPSG {epsg}",
    }


# ---------------------------------------------------------------- the public API


def synth_county(
    *,
    seed: int,
    townships: int = 23,
    villages: int = 220,
    households: int = 60_000,
    county_code: str = "369900",
    center: tuple[float, float] = (117.2, 28.25),
    progress: bool = False,
) -> dict[str, gpd.GeoDataFrame]:
    """Generate a plausible synthetic county, deterministically from ``seed``.

    Parameters
    ----------
    seed
        Seed of the single random generator; the same arguments always give
        the same county, a different seed a different one.
    townships
        Number of townships (乡镇/街道).  Beyond 999 the codes continue with the
        next county code, so a province-sized run still has unique 9-digit codes.
    villages
        Number of villages and urban communities (村/社区), >= ``townships``.
    households
        Total households (户) on buildings, >= ``villages``; met exactly.
    county_code
        6-digit county division code that prefixes every code.
    center
        (longitude, latitude) of the county; selects the Gauss-Krüger zone the
        geometry is generated in.
    progress
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    dict
        One GeoDataFrame per name in :data:`LAYERS`, all in EPSG:4490.

    Raises
    ------
    UsageError
        When the arguments cannot describe a county.
    """
    req = _validate(seed, townships, villages, households, county_code=county_code, center=center)
    t_all = time.perf_counter()
    rng = np.random.default_rng(seed)
    epsg = _metric_epsg(req.lon)
    cx, cy = Transformer.from_crs(GEOGRAPHIC_EPSG, epsg, always_xy=True).transform(req.lon, req.lat)
    with tqdm(total=_STAGES, desc="synth", disable=not progress, unit="stage") as bar:
        tiling, land = _draw_tiling(rng, req, (cx, cy), bar=bar, progress=progress)
        names = Names(rng)  # shuffles the pool of name roots: after the tiling, before the codes
        with _stage(bar, "codes and names"):
            codes = division_codes(req.county_code, tiling)
            places = names.places(tiling, codes)
        labels, features = _draw_features(
            rng, tiling, land, req, names=names, codes=codes, places=places, bar=bar, progress=progress
        )
        with _stage(bar, "output"):
            frames = assemble(rng, tiling, labels, features, epsg=epsg)
    county_name = labels.names.county
    meta = _metadata(req, county_name=county_name, epsg=epsg)
    for gdf in frames.values():
        gdf.attrs.update(meta)
    logger.info(
        "synth: %s (%d townships, %d villages, %d groups, %d buildings, %d households) in %.1f s",
        county_name, townships, villages, len(frames["villager_groups"]), len(frames["buildings"]),
        households, time.perf_counter() - t_all,
    )
    return frames


def write_county(layers: dict[str, gpd.GeoDataFrame], path: str | Path, *, progress: bool = False) -> None:
    """Write ``layers`` to one GeoPackage, one layer each, atomically.

    Why atomic: the sample county is committed and read by ``make run``; a run
    interrupted halfway must leave either the old file or the new one, never
    a truncated GeoPackage.  The layers go to a temporary file next to
    ``path`` (same filesystem, :func:`gridgeo.data.io.atomic_path`) and the
    finished file is moved over ``path`` with :func:`os.replace`.

    Why not :func:`gridgeo.data.io.write_layers`: each layer's ``attrs`` (e.g.
    ``GRIDGEO_SYNTHETIC``) must become GeoPackage layer metadata, which that
    writer does not store.

    Parameters
    ----------
    layers
        Layer name -> GeoDataFrame, as :func:`synth_county` returns.  Known
        layers are written in :data:`LAYERS` order, any others after them.
    path
        The GeoPackage to write (replaced if it exists).
    progress
        Show a tqdm progress bar over the layers (a province's buildings take ~20 s).

    Raises
    ------
    UsageError
        When ``layers`` is empty or holds something other than GeoDataFrames,
        or the target directory does not exist.
    """
    if not layers:
        raise UsageError("no layers to write")
    for name, gdf in layers.items():
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise UsageError(f"layer {name!r} is a {type(gdf).__name__}, not a GeoDataFrame")
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist", path=target)
    if target.is_dir():
        raise UsageError("is a directory; give the GeoPackage file to write", path=target)
    names = [n for n in LAYERS if n in layers] + sorted(n for n in layers if n not in LAYERS)
    with atomic_path(target) as tmp:
        for i, name in enumerate(tqdm(names, desc="write", disable=not progress, unit="layer")):
            gdf = layers[name]
            # attrs (e.g. GRIDGEO_SYNTHETIC) become layer metadata; dataset metadata is avoided
            # because GDAL then leaves a .aux.xml sidecar next to the file on every read
            meta = {k: str(v) for k, v in sorted(gdf.attrs.items()) if isinstance(k, str)}
            pyogrio.write_dataframe(gdf, tmp, layer=name, driver="GPKG", layer_metadata=meta or None,
                                    dataset_options=None if i else {"VERSION": GPKG_VERSION})
    logger.info("synth: wrote %d layers to %s", len(names), target)
