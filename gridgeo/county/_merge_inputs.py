"""Reading departmental grid layers for :mod:`gridgeo.county.merge` (private).

A departmental layer is whatever a party-building, political-legal, civil-affairs or urban-management
office keeps: its own file, its own CRS, its own ids, often invalid rings. Each is read once,
checked (polygons, a CRS, unique ids), repaired where it can be (``make_valid``, reported per
feature) and reprojected to the county's metric CRS, so the overlay works in metres on valid
polygons only. What cannot be repaired is one error naming the file, the layer and the feature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo._geom import make_valid_polygonal
from gridgeo.data.io import list_layers, read_layer
from gridgeo.errors import CRSError, GeometryError, InputError, SchemaError, UsageError

log = logging.getLogger(__name__)

GArray = NDArray[np.object_]

#: geometry type ids of Polygon and MultiPolygon
_POLYGONAL = (3, 6)


@dataclass(frozen=True)
class LayerSpec:
    """A layer named on the command line as ``FILE`` or ``FILE:LAYER``."""

    path: Path
    layer: str | None = None

    @property
    def where(self) -> str:
        """The file and layer, as errors name them."""
        return f"{self.path}" + (f" (layer {self.layer})" if self.layer else "")


def parse_spec(text: str) -> LayerSpec:
    """``FILE`` or ``FILE:LAYER``; a whole string that is an existing file is a file (``C:\\x.gpkg``).

    Raises
    ------
    UsageError
        An empty file or layer name.
    """
    if Path(text).exists() or ":" not in text:
        if not text:
            raise UsageError("an empty layer name; give FILE or FILE:LAYER")
        return LayerSpec(Path(text))
    path, layer = text.rsplit(":", 1)
    if not path or not layer:
        raise UsageError(f"{text!r}: give FILE or FILE:LAYER")
    return LayerSpec(Path(path), layer)


@dataclass
class Department:
    """One department's grids in the metric CRS, checked and repaired.

    Attributes
    ----------
    name
        The department (e.g. 党建, 政法, 民政, 城管), as the crosswalk names it.
    ids
        Each grid's id (the ``id_col`` values as text, else ``#`` + the 1-based row).
    geoms
        The grids, valid polygons in the metric CRS.
    source
        File and layer it was read from.
    report
        What was repaired or dropped, and the CRS it came in.
    """

    name: str
    ids: list[str]
    geoms: GArray
    source: str
    report: dict[str, object] = field(default_factory=dict)


def read_layer_spec(spec: LayerSpec, *, kind: str | None = None) -> gpd.GeoDataFrame:
    """Read ``spec``; a missing layer is named with the layers the file has.

    Raises
    ------
    LayerNotFoundError, FileFormatError, InputError
        As :func:`gridgeo.data.io.read_layer`; a GeoPackage without the layer.
    """
    if spec.layer is not None and spec.path.suffix.lower() == ".gpkg" and spec.path.is_file():
        have = list_layers(spec.path)
        if spec.layer not in have:
            raise InputError(f"no layer {spec.layer!r}; the file has {', '.join(have) or 'none'}", path=spec.path)
    return read_layer(spec.path, layer=spec.layer, kind=kind)


def read_department(spec: LayerSpec, *, name: str, metric: pyproj.CRS, id_col: str | None = None) -> Department:
    """One departmental layer, checked, repaired and in ``metric`` (module notes).

    Parameters
    ----------
    spec
        Its file and layer.
    name
        The department's name.
    metric
        The county's metric CRS, where every measurement is made.
    id_col
        Column of the grid ids; default ``code`` where the layer has it, else the row number.

    Raises
    ------
    CRSError
        The layer has no CRS (its coordinates cannot be placed).
    GeometryError
        The layer holds no polygons (points or lines are not grids), or a feature cannot be repaired.
    SchemaError
        ``id_col`` missing, or two grids with one id.
    """
    gdf = read_layer_spec(spec)
    where = spec.where
    if gdf.crs is None:
        raise CRSError(f"department {name}: the layer has no CRS; set it (e.g. ogr2ogr -a_srs EPSG:4490) "
                       "so its grids can be placed on the villages", path=where)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms[present])
    if not present.any() or not np.isin(types, _POLYGONAL).any():
        kinds = sorted({str(t) for t in gdf.geometry[present].geom_type}) or ["no geometry"]
        raise GeometryError(f"department {name}: not a grid layer: it holds {', '.join(kinds)}, not polygons",
                            path=where)
    ids = _ids(gdf, id_col, where)
    report: dict[str, object] = {"source": where, "features": len(gdf), "crs": gdf.crs.to_string()}
    keep = present & np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    dropped = [ids[i] for i in np.flatnonzero(~keep)]
    if dropped:
        log.warning("%s: department %s: %d feature(s) without a polygon dropped: %s", where, name, len(dropped),
                    ", ".join(dropped[:5]))
    report["dropped"] = dropped
    sel = np.flatnonzero(keep)
    metric_geoms = np.asarray(gpd.GeoSeries(geoms[sel], crs=gdf.crs).to_crs(metric).values, dtype=object)
    if not gdf.crs.equals(metric):
        log.info("%s: department %s reprojected from %s", where, name, gdf.crs.to_string())
    metric_geoms, repaired = _repair(metric_geoms, [ids[i] for i in sel], where, name)
    report["repaired"] = repaired
    return Department(name=name, ids=[ids[i] for i in sel], geoms=metric_geoms, source=where, report=report)


def _ids(gdf: gpd.GeoDataFrame, id_col: str | None, where: str) -> list[str]:
    """The grids' ids as text: ``id_col``, else ``code`` when present, else ``#row``; unique."""
    col = id_col or ("code" if "code" in gdf.columns else None)
    if col is None:
        return [f"#{i + 1}" for i in range(len(gdf))]
    if col not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise SchemaError(f"id column {col!r} not found; columns are {cols}", path=where)
    vals = gdf[col].tolist()
    ids = [f"#{i + 1}" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for i, v in enumerate(vals)]
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise SchemaError(f"grid id {v!r} in {col!r} is used twice (rows {seen[v] + 1} and {i + 1}); "
                              "ids must be unique for the crosswalk", path=where, feature=v)
        seen[v] = i
    return ids


def _repair(geoms: GArray, ids: list[str], where: str, name: str) -> tuple[GArray, list[str]]:
    """Invalid polygons made valid (their area kept); each repair is reported; an unrepairable one raises."""
    out = geoms.copy()
    repaired: list[str] = []
    for i in np.flatnonzero(~shapely.is_valid(out)).tolist():
        why = shapely.is_valid_reason(out[i])
        fixed = make_valid_polygonal(out[i])
        if fixed is None:
            raise GeometryError(f"department {name}: the polygon cannot be repaired ({why})", path=where,
                                feature=ids[i])
        out[i] = fixed
        repaired.append(f"{ids[i]}: {why}")
        log.warning("%s: department %s: grid %s repaired (%s)", where, name, ids[i], why)
    return out, repaired
