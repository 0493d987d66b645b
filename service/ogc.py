"""Request parsing shared by the blueprints: formats, strict parameters, CRS URIs, datums.

OGC API – Features wants an unknown query parameter to be a 400 (a typo such
as ``bbbox`` must not silently return everything), formats chosen by ``f`` or
by the ``Accept`` header, and CRSs named by URI. Everything that turns a bad
request into an error lives here so the views stay short.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
import pyproj
import shapely
from flask import request
from numpy.typing import NDArray

from gridgeo.data.crs import DATUMS, wgs84_to_datum
from gridgeo.errors import UsageError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
#: CGCS2000 geographic, WGS84 geographic, then the CGCS2000 3-degree Gauss-Krüger zones (CM form)
SUPPORTED_EPSG: tuple[int, ...] = (4490, 4326, *range(4534, 4555))

CONFORMANCE: tuple[str, ...] = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
)

GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"

_EPSG_PATTERNS = (
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)$", re.IGNORECASE),
    re.compile(r"^\[?EPSG:(\d+)\]?$", re.IGNORECASE),
)
_CRS84_NAMES = {CRS84.lower(), "https://www.opengis.net/def/crs/ogc/1.3/crs84", "crs84", "ogc:crs84", "[ogc:crs84]"}


def check_params(allowed: Iterable[str]) -> None:
    """Reject any query parameter not in ``allowed``, and repeated ones.

    Raises
    ------
    UsageError
        Naming the unknown parameter and the ones the endpoint takes (400).
    """
    allowed = set(allowed)
    unknown = sorted(k for k in request.args if k not in allowed)
    if unknown:
        raise UsageError(f"unknown query parameter {', '.join(unknown)}; this endpoint takes "
                         f"{', '.join(sorted(allowed)) or 'none'}")
    for k in request.args:
        if len(request.args.getlist(k)) > 1:
            raise UsageError(f"query parameter {k} given more than once")


def negotiate(formats: dict[str, str], default: str = "json") -> str:
    """The output format: ``f`` when given, else the best ``Accept`` match, else ``default``.

    ``formats`` maps an ``f`` value to its media type, e.g. ``{"json": GEOJSON, "html": HTML}``.
    """
    f = request.args.get("f")
    if f is not None:
        if f not in formats:
            raise UsageError(f"f={f!r} is not offered here; use one of {', '.join(formats)}")
        return f
    accept = request.accept_mimetypes
    if not accept or accept.provided is False:
        return default
    # JSON first so that */* (curl, GDAL, owslib) gets JSON, a browser's text/html gets HTML
    order = [default] + [k for k in formats if k != default]
    candidates = [formats[k] for k in order] + ([JSON] if default == "json" else [])
    best = accept.best_match(candidates)
    if best is None:
        return default
    for k in order:
        if formats[k] == best:
            return k
    return default


def parse_crs_uri(value: str, allowed: Iterable[str], what: str = "crs") -> str:
    """Normalise a CRS given as URI, ``EPSG:n`` or ``[EPSG:n]`` to its URI; it must be in ``allowed``.

    Raises
    ------
    UsageError
        For an unknown or unsupported CRS (400), listing what is supported.
    """
    v = value.strip()
    uri: str | None = None
    if v.lower() in _CRS84_NAMES:
        uri = CRS84
    else:
        for pat in _EPSG_PATTERNS:
            m = pat.match(v)
            if m:
                uri = EPSG_URI.format(int(m.group(1)))
                break
    allowed = list(allowed)
    if uri is None or uri not in allowed:
        raise UsageError(f"{what} {value!r} is not supported; use one of: {CRS84}, "
                         f"{EPSG_URI.format('4490')}, {EPSG_URI.format('4326')}, "
                         f"{EPSG_URI.format('4534')} ... {EPSG_URI.format('4554')} (CGCS2000 Gauss-Krüger)")
    return uri


def crs_list(storage_epsg: int | None) -> list[str]:
    """The CRSs a collection offers: CRS84 first, the supported EPSG codes, and its storage CRS."""
    out = [CRS84] + [EPSG_URI.format(c) for c in SUPPORTED_EPSG]
    if storage_epsg is not None and storage_epsg not in SUPPORTED_EPSG and _usable_epsg(storage_epsg):
        out.append(EPSG_URI.format(storage_epsg))
    return out


def storage_crs_uri(storage_epsg: int | None) -> str:
    """The storage CRS as a URI; EPSG:4326 is stored lon/lat in a GeoPackage, which is CRS84."""
    if storage_epsg is None or storage_epsg == 4326 or not _usable_epsg(storage_epsg):
        return CRS84
    return EPSG_URI.format(storage_epsg)


@lru_cache(maxsize=64)
def _usable_epsg(code: int) -> bool:
    try:
        pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        return False
    return True


def _epsg(uri: str) -> int | None:
    if uri == CRS84:
        return None
    return int(uri.rsplit("/", 1)[1])


_local = threading.local()


def _transformer(src: str, dst: str) -> pyproj.Transformer:
    """A transformer in authority axis order, one per thread (PROJ contexts are per thread)."""
    cache: dict[tuple[str, str], pyproj.Transformer] = getattr(_local, "tr", None) or {}
    _local.tr = cache
    key = (src, dst)
    if key not in cache:
        s = "OGC:CRS84" if src == CRS84 else f"EPSG:{_epsg(src)}"
        d = "OGC:CRS84" if dst == CRS84 else f"EPSG:{_epsg(dst)}"
        cache[key] = pyproj.Transformer.from_crs(s, d)  # always_xy=False: EPSG's own axis order
    return cache[key]


@lru_cache(maxsize=64)
def is_geographic(uri: str) -> bool:
    """True for lon/lat CRSs (CRS84, EPSG:4326, EPSG:4490)."""
    if uri == CRS84:
        return True
    return bool(pyproj.CRS.from_epsg(_epsg(uri)).is_geographic)  # type: ignore[arg-type]


def bbox_to_crs84(values: tuple[float, ...], bbox_crs: str) -> tuple[float, float, float, float]:
    """A bbox given in ``bbox_crs`` (its axis order, as EPSG defines it) as CRS84 lon/lat bounds."""
    if bbox_crs == CRS84:
        return values  # type: ignore[return-value]
    tr = _transformer(bbox_crs, CRS84)
    a0, b0, a1, b1 = values
    w, s, e, n = tr.transform_bounds(a0, b0, a1, b1, densify_pts=21)
    return (float(w), float(s), float(e), float(n))


def point_to_crs84(x: NDArray[np.float64], y: NDArray[np.float64], src: str
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions in ``src`` (axis order as EPSG defines it) as CRS84 lon, lat arrays."""
    if src == CRS84:
        return x, y
    lon, lat = _transformer(src, CRS84).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def transform_geoms(geoms: NDArray[np.object_], crs: str, coords: str | None) -> NDArray[np.object_]:
    """CRS84 geometries into ``crs`` (axis order as EPSG defines it), shifted to a web-map datum first.

    Coordinates are rounded to what the unit warrants: 1e-7 degree or 1 mm.
    """
    out = np.asarray(geoms)
    if coords:
        out = np.asarray(wgs84_to_datum(out, coords))
    decimals = 7
    if crs != CRS84:
        tr = _transformer(CRS84, crs)

        def conv(c: NDArray[np.float64]) -> NDArray[np.float64]:
            a, b = tr.transform(c[:, 0], c[:, 1])
            return np.column_stack([a, b])

        out = np.asarray(shapely.transform(out, conv))
        decimals = 7 if is_geographic(crs) else 3
    return np.asarray(shapely.transform(out, lambda c: np.round(c, decimals)))


def parse_coords() -> str | None:
    """The ``coords`` datum (``gcj02``/``bd09``), None for plain WGS84 (``wgs84`` is accepted too)."""
    raw = request.args.get("coords")
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in DATUMS:
        raise UsageError(f"coords={raw!r}: use gcj02 (Amap, Tencent) or bd09 (Baidu), or wgs84")
    return None if value == "wgs84" else value


def parse_bbox(raw: str) -> tuple[float, ...]:
    """``bbox`` as 4 numbers (2D) or the 2D part of 6 (3D).

    Raises
    ------
    UsageError
        For anything else (400).
    """
    try:
        vals = [float(v) for v in raw.split(",")]
    except ValueError:
        vals = []
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4 or not all(np.isfinite(vals)):
        raise UsageError("bbox must be 4 numbers: lower left axis 1, axis 2, upper right axis 1, axis 2 "
                         "(CRS84: minlon,minlat,maxlon,maxlat)")
    return tuple(vals)


def int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    """An integer parameter; above ``maximum`` it is clamped (OGC: a too large limit is not an error)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise UsageError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        return maximum
    return value


def link(href: str, rel: str, mtype: str, title: str | None = None) -> dict[str, Any]:
    """A link object."""
    out = {"href": href, "rel": rel, "type": mtype}
    if title:
        out["title"] = title
    return out


def geographic_required(crs: str) -> None:
    """``coords`` shifts lon/lat; in a projected CRS it would mean nothing.

    Raises
    ------
    UsageError
        When ``crs`` is projected (400).
    """
    if not is_geographic(crs):
        raise UsageError(f"coords (GCJ-02/BD-09) needs lon/lat output; crs {crs} is projected")
