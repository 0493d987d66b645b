"""Coordinate reference systems: parsing, metric CRS choice, GCJ-02 and BD-09.

Chinese boundary data arrives in CGCS2000 (EPSG:4490), in a CGCS2000
Gauss-Krüger zone (EPSG:4491-4554), in WGS84 or UTM, and, when traced off a
Chinese web map, in the obfuscated GCJ-02 ("Mars") or Baidu BD-09 datums,
which no EPSG code describes. This module turns all of them into WGS84
lon/lat and picks the metric CRS in which areas and lengths are measured:
the CGCS2000 3-degree Gauss-Krüger zone whose central meridian is nearest
the data (EPSG:4534 = CM 75E ... EPSG:4554 = CM 135E), or UTM outside
China's longitudes. Areas are never measured in degrees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray

from gridgeo.errors import CRSError, UsageError

log = logging.getLogger(__name__)

WGS84 = pyproj.CRS.from_epsg(4326)
CGCS2000 = pyproj.CRS.from_epsg(4490)

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_ALIASES = {
    "wgs84": 4326,
    "crs84": 4326,
    "cgcs2000": 4490,
    "ogc:crs84": 4326,
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": 4326,
}


def parse_crs(spec: object) -> pyproj.CRS:
    """Parse a user-given CRS (``4490``, ``"EPSG:4549"``, ``"CGCS2000"``, WKT, PROJ).

    Raises
    ------
    UsageError
        When ``spec`` names no CRS pyproj knows; the message repeats it.
    """
    if isinstance(spec, pyproj.CRS):
        return spec
    key = str(spec).strip()
    if key.lower() in _ALIASES:
        return pyproj.CRS.from_epsg(_ALIASES[key.lower()])
    if key.isdigit():
        key = f"EPSG:{key}"
    try:
        return pyproj.CRS.from_user_input(key)
    except pyproj.exceptions.CRSError as exc:
        raise UsageError(f"unknown CRS {spec!r}: {exc}") from exc


def cgcs2000_gk_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (CM form) nearest ``lon``.

    The CM form (EPSG:4534-4554) has no zone number prefixed to the easting, so
    coordinates stay readable. Raises ``ValueError`` outside 73.5E-136.5E.
    """
    cm = 3 * round(lon / 3)
    if not 75 <= cm <= 135:
        raise ValueError(f"longitude {lon:.3f} is outside the CGCS2000 Gauss-Krüger zones")
    return 4534 + (cm - 75) // 3


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS84 UTM zone containing (lon, lat)."""
    zone = int((lon + 180) // 6) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def metric_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The metric CRS gridgeo measures in at (lon, lat): CGCS2000 GK by CM, else UTM."""
    try:
        return pyproj.CRS.from_epsg(cgcs2000_gk_epsg(lon))
    except ValueError:
        return pyproj.CRS.from_epsg(utm_epsg(lon, lat))


def lonlat_center(gdf: gpd.GeoSeries | gpd.GeoDataFrame) -> tuple[float, float]:
    """Centre of the total bounds of ``gdf`` in WGS84 lon/lat."""
    if gdf.crs is None:
        raise CRSError("data has no CRS; cannot choose a metric CRS")
    geo = gdf if gdf.crs.is_geographic else gdf.to_crs(WGS84)
    minx, miny, maxx, maxy = geo.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise CRSError("data has no finite coordinates; cannot choose a metric CRS")
    return (float(minx + maxx) / 2, float(miny + maxy) / 2)


def metric_crs(gdf: gpd.GeoSeries | gpd.GeoDataFrame) -> pyproj.CRS:
    """Pick the metric CRS for ``gdf`` once, from the centre of its bounds.

    A CRS that is already projected in metres is kept, so data delivered in
    a Gauss-Krüger zone is measured in that very zone.
    """
    if gdf.crs is not None and gdf.crs.is_projected:
        unit = gdf.crs.axis_info[0].unit_name if gdf.crs.axis_info else ""
        if unit in {"metre", "meter"}:
            return gdf.crs
    return metric_crs_for(*lonlat_center(gdf))


# --------------------------------------------------------------------------------------
# GCJ-02 / BD-09
# --------------------------------------------------------------------------------------
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def _out_of_china(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _dlat(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _dlon(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    return np.broadcast_arrays(x, y)  # type: ignore[return-value]


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 -> GCJ-02 (the published forward formula); points outside China pass through."""
    x, y = _arrays(lon, lat)
    dlat = _dlat(x - 105.0, y - 35.0)
    dlon = _dlon(x - 105.0, y - 35.0)
    radlat = y / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    out = _out_of_china(x, y)
    return np.where(out, x, x + dlon), np.where(out, y, y + dlat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 -> BD-09 (Baidu's published forward formula)."""
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """WGS84 -> BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def _invert(
    forward: Callable[[ArrayLike, ArrayLike], tuple[NDArray[np.float64], NDArray[np.float64]]],
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    tol: float = 1e-11,
    max_iter: int = 30,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Invert a near-identity ``forward`` by fixed-point iteration.

    The obfuscations shift points by at most a few hundred metres and vary
    slowly, so ``p <- p - (forward(p) - target)`` contracts quickly; 1e-11
    degrees is about a micrometre, far below the centimetre the issue asks for.
    """
    tx, ty = _arrays(lon, lat)
    x, y = tx.copy(), ty.copy()
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        dx, dy = fx - tx, fy - ty
        x = x - dx
        y = y - dy
        if np.all(np.abs(dx) < tol) and np.all(np.abs(dy) < tol):
            break
    return x, y


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GCJ-02 -> WGS84 by iterating the forward formula (error well under 1 mm)."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 -> GCJ-02 by iterating Baidu's forward formula."""
    return _invert(gcj02_to_bd09, lon, lat)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BD-09 -> WGS84 by iterating the composed forward formula."""
    return _invert(wgs84_to_bd09, lon, lat)


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def _apply(
    geoms: NDArray[np.object_] | gpd.GeoSeries,
    func: Callable[[ArrayLike, ArrayLike], tuple[NDArray[np.float64], NDArray[np.float64]]],
) -> NDArray[np.object_]:
    def _xy(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        if len(coords) == 0:
            return coords
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms), _xy)


def check_datum(datum: str | None) -> str:
    """Validate a datum option (``wgs84``, ``gcj02``, ``bd09``)."""
    d = (datum or "wgs84").lower().replace("-", "").replace("_", "")
    if d not in DATUMS:
        raise UsageError(f"unknown datum {datum!r}; one of {', '.join(DATUMS)}")
    return d


def datum_to_wgs84(gdf: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """Convert a lon/lat layer declared as GCJ-02 or BD-09 into WGS84 (EPSG:4326).

    The layer's CRS must be geographic (GCJ-02/BD-09 are lon/lat obfuscations
    of WGS84; a projected CRS cannot carry them) or missing.
    """
    d = check_datum(datum)
    if d == "wgs84":
        return gdf
    if gdf.crs is not None and not gdf.crs.is_geographic:
        raise CRSError(f"--datum {d} needs lon/lat input, but the layer is in {gdf.crs.name}")
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(_apply(gdf.geometry.values, _TO_WGS84[d]), index=gdf.index)
    return out.set_crs(WGS84, allow_override=True)


def wgs84_to_datum(geoms: NDArray[np.object_] | gpd.GeoSeries, datum: str) -> NDArray[np.object_]:
    """Shift WGS84 lon/lat geometries into GCJ-02 or BD-09 for Chinese web maps."""
    d = check_datum(datum)
    if d == "wgs84":
        return np.asarray(geoms)
    return _apply(geoms, _FROM_WGS84[d])


# --------------------------------------------------------------------------------------
# Plausibility of coordinates against a CRS
# --------------------------------------------------------------------------------------
def area_of_use(crs: pyproj.CRS, *, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The CRS's area of use in its own coordinates (x/lon first), widened by ``margin``.

    ``margin`` is in degrees for geographic CRSs and a fraction of the extent
    for projected ones, because areas of use are drawn tight around land
    borders while real data (an island, a coastal village) may sit just outside.
    """
    aou = crs.area_of_use
    if aou is None:
        return (-np.inf, -np.inf, np.inf, np.inf)
    w, s, e, n = aou.bounds
    if crs.is_geographic:
        return (w - margin, s - margin, e + margin, n + margin)
    tr = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True)
    minx, miny, maxx, maxy = tr.transform_bounds(w, s, e, n, densify_pts=21)
    dx, dy = (maxx - minx) * margin, (maxy - miny) * margin
    return (minx - dx, miny - dy, maxx + dx, maxy + dy)


def looks_lonlat(bounds: ArrayLike) -> bool:
    """True when bounds (minx, miny, maxx, maxy) fit lon/lat ranges."""
    minx, miny, maxx, maxy = np.asarray(bounds, dtype=float)
    return bool(-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)
