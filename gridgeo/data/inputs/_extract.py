"""The first stage of :func:`gridgeo.data.inputs.county_from_osm`: the extract as read.

One :class:`Extract` holds what every later stage needs: the OSM layers (POIs
with the salvaged relations), the place populations, and the metric CRS in
which faces are measured and items numbered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj

from gridgeo.data.crs import metric_crs
from gridgeo.data.osm import _format_of, read_osm_layers
from gridgeo.errors import InputError

from ._supplement import supplement

#: The OSM layers the build reads, in the order their extent is taken.
_LAYERS = ("admin", "places", "buildings", "pois", "roads", "water")


@dataclass(frozen=True)
class Extract:
    """One OSM extract, read once.

    ``layers`` are the frames of :func:`gridgeo.data.osm.read_osm_layers`
    (possibly cached: stages copy before they add columns), except ``pois``,
    which also holds the salvaged relations. ``populations`` maps place node
    ids to their ``population`` tag.
    """

    path: Path
    layers: dict[str, gpd.GeoDataFrame]
    populations: dict[str, int]
    crs: pyproj.CRS
    to_metric: pyproj.Transformer

    @property
    def all_data(self) -> list[gpd.GeoDataFrame]:
        """Every layer read, for the extent of the whole extract."""
        return [self.layers[name] for name in _LAYERS]


def read_extract(path: Path) -> Extract:
    """Read the layers, salvage POI relations, and choose the metric CRS."""
    osm = read_osm_layers(path, ["admin", "places", "buildings", "pois", "roads", "water"])
    fmt = _format_of(path)
    assert fmt is not None  # read_osm_layers raised otherwise
    populations, salvaged = supplement(path, fmt, set(osm["pois"]["osm_id"].astype(str)))
    layers = dict(osm)
    if len(salvaged):
        pois = pd.concat([osm["pois"], salvaged], ignore_index=True)
        layers["pois"] = pois.iloc[_osm_order(pois["osm_id"])].reset_index(drop=True)
    all_data = [layers[name] for name in _LAYERS]
    crs = metric_crs(extent_series(all_data, path))
    to_metric = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return Extract(path=path, layers=layers, populations=populations, crs=crs, to_metric=to_metric)


def extent_series(frames: list[gpd.GeoDataFrame], path: Path) -> gpd.GeoSeries:
    """Every non-empty geometry of ``frames``; an extract without any is unusable."""
    geoms = [g for f in frames for g in f.geometry.values if g is not None and not g.is_empty]
    if not geoms:
        raise InputError("the extract holds no usable features", path=path)
    return gpd.GeoSeries(geoms, crs="EPSG:4326")


def _osm_order(ids: pd.Series) -> list[int]:
    """Row order of :mod:`gridgeo.data.osm`: nodes, ways, relations, each by id."""
    rank = {"n": 0, "w": 1, "r": 2}
    keys = [(rank[s[0]], int(s[1:])) for s in ids.astype(str)]
    return sorted(range(len(keys)), key=keys.__getitem__)
