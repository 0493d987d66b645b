"""Layers of the county as GeoJSON collections (the OGC API issue extends this)."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
from flask import Blueprint, Response, current_app, request, url_for

from gridgeo._errors import NotFoundError, UsageError
from gridgeo.io import list_layers, read_layer, rfc7946

bp = Blueprint("features", __name__)


def load_county(path: str) -> dict[str, gpd.GeoDataFrame]:
    """Read every layer of the GeoPackage once, in EPSG:4326 with CCW exteriors."""
    return {name: rfc7946(read_layer(path, layer=name)) for name in list_layers(path)}


def _layers() -> dict[str, gpd.GeoDataFrame]:
    return current_app.extensions["county"]  # type: ignore[no-any-return]


@bp.get("/")
def landing() -> Any:
    return {
        "title": "gridgeo",
        "links": [
            {"rel": "data", "href": url_for("features.collections", _external=True)},
            {"rel": "service-status", "href": url_for("health", _external=True)},
        ],
    }


@bp.get("/collections")
def collections() -> Any:
    return {
        "collections": [
            {
                "id": name,
                "itemCount": len(gdf),
                "extent": {"spatial": {"bbox": [list(map(float, gdf.total_bounds))]}},
                "links": [{"rel": "items", "href": url_for("features.items", name=name, _external=True)}],
            }
            for name, gdf in _layers().items()
        ]
    }


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise UsageError(f"{name} must be an integer, got {raw!r}") from exc
    if value < 0 or (maximum is not None and value > maximum):
        raise UsageError(f"{name} must be between 0 and {maximum}")
    return value


@bp.get("/collections/<name>/items")
def items(name: str) -> Response:
    layers = _layers()
    if name not in layers:
        raise NotFoundError(f"no collection {name!r}; collections are {', '.join(layers)}")
    gdf = layers[name]
    bbox = request.args.get("bbox")
    if bbox:
        try:
            minx, miny, maxx, maxy = (float(v) for v in bbox.split(","))
        except ValueError as exc:
            raise UsageError("bbox must be minlon,minlat,maxlon,maxlat") from exc
        gdf = gdf.cx[minx:maxx, miny:maxy]
    limit = _int_arg("limit", current_app.config["DEFAULT_LIMIT"], current_app.config["MAX_LIMIT"])
    offset = _int_arg("offset", 0)
    page = gdf.iloc[offset : offset + limit]
    fc = json.loads(page.to_json(drop_id=True))
    fc.pop("crs", None)
    fc["numberMatched"] = len(gdf)
    fc["numberReturned"] = len(page)
    return Response(json.dumps(fc, ensure_ascii=False), mimetype="application/geo+json")
