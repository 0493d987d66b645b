"""Typed columns, clean polygons, frames and numbering shared by the stages of :mod:`gridgeo.data.inputs`.

Every layer :func:`gridgeo.data.inputs.county_from_osm` returns has nullable
typed columns (``string``, ``Int64``) and valid polygons whatever came in, so
that a layer without rows has the same schema as one with rows. Townships
and villages are numbered by the one reading order of the package
(:func:`gridgeo._geom.reading_order`), measured in the extract's metric CRS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo._geom import reading_order

#: (column, dtype) of the ``townships`` layer, in order.
TOWNSHIP_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "string"), ("name", "string"), ("kind", "string"),
    ("admin_level", "Int64"), ("osm_id", "string"),
)
#: (column, dtype) of the ``villages`` layer, in order.
VILLAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("code", "string"), ("name", "string"), ("township", "string"),
    ("kind", "string"), ("industry", "string"), ("population", "Int64"),
    ("households", "Int64"), ("place", "string"), ("osm_id", "string"),
)


def col(values: Any, dtype: str) -> Any:
    """``pd.array`` with a dtype given as a string (its type stubs only know literals)."""
    return pd.array(list(values), dtype=dtype)  # type: ignore[call-overload]


def clean_polygon(geom: shapely.Geometry) -> shapely.Geometry:
    """A valid Polygon or MultiPolygon (single parts unwrapped) from a polygonal geometry."""
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def frame(data: dict[str, Any], geoms: Sequence[Any]) -> gpd.GeoDataFrame:
    """An EPSG:4326 GeoDataFrame of ``data`` columns and ``geoms``."""
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(list(geoms), crs="EPSG:4326"), crs="EPSG:4326")


def empty_frame(columns: Sequence[tuple[str, str]]) -> gpd.GeoDataFrame:
    """A layer without rows but with its typed columns."""
    return frame({name: col([], dtype=dtype) for name, dtype in columns}, [])


def numbering(geoms: Sequence[Any], crs: pyproj.CRS) -> np.ndarray:
    """Indices of ``geoms`` (EPSG:4326) in reading order, by centroid and area in ``crs``."""
    metric = gpd.GeoSeries(list(geoms), crs="EPSG:4326").to_crs(crs).values
    centroids = shapely.centroid(metric)
    return reading_order(shapely.get_x(centroids), shapely.get_y(centroids), shapely.area(metric))
