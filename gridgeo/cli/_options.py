"""Argument types and option groups shared by several subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable


def add_read_options(p: argparse.ArgumentParser) -> None:
    """The options of every command that reads one boundary layer (path, layer, ids, CRS, datum, encoding)."""
    p.add_argument("path", help="GeoJSON, GeoPackage, Shapefile (.shp or .zip) or OSM XML/PBF")
    p.add_argument("--layer", help="layer of a multi-layer file (GeoPackage, OSM)")
    p.add_argument("--id", dest="id_col", help="column with feature ids (default: row number)")
    p.add_argument("--crs", help="declare the CRS (e.g. EPSG:4490, EPSG:4549) when missing or wrong")
    p.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"],
                   help="lon/lat traced off a Chinese web map: GCJ-02 (Amap, Tencent) or BD-09 (Baidu)")
    p.add_argument("--encoding", help="Shapefile text encoding when the .cpg is missing or wrong (e.g. GBK)")


def positive(kind: type = float) -> Callable[[str], float | int]:
    """An argparse type: a number of ``kind`` that is at least 0."""
    def conv(text: str) -> float | int:
        try:
            v = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if v < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
        return v  # type: ignore[no-any-return]

    return conv


def date(text: str) -> dt.date:
    """An argparse type: YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def time(text: str) -> dt.time:
    """An argparse type: HH:MM."""
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time HH:MM: {text!r}") from None


def lonlat(text: str) -> tuple[float, float]:
    """An argparse type: LON,LAT."""
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LON,LAT: {text!r}") from None
    return lon, lat
