"""``/api``: the OpenAPI 3.0 definition of the service (the ``oas30`` conformance class).

Generated from the served county, so the ``collectionId`` enum, the CRS lists
and the limits always match what the endpoints accept. ``coords`` is declared
on every GeoJSON operation, because clients of Chinese web maps look for it
there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from gridgeo import __version__

from . import html
from .ogc import CRS84, GEOJSON, HTML, JSON, OPENAPI, check_params, crs_list, negotiate
from .openapi_edits import edit_operation, options_operation
from .openapi_proposals import locks_paths, proposals_paths
from .openapi_records import records_paths, security_schemes
from .openapi_reports import reports_paths
from .openapi_users import users_paths
from .openapi_versions import versions_paths
from .store import County, dumps

bp = Blueprint("openapi", __name__)


def _p(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False,
       **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description,
            **extra}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/problem"}}}}


def _doc_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {
        JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}, HTML: {"schema": {"type": "string"}}}}


@dataclass(frozen=True)
class _Shared:
    """Parameters and responses several operations declare, generated from the served county."""

    #: every CRS some collection offers, CRS84 first
    crss: list[str]
    f_json_html: dict[str, Any]
    collection_id: dict[str, Any]
    coords: dict[str, Any]
    crs: dict[str, Any]
    #: 400, 404 and 500, as problem documents
    problems: dict[str, Any]


def build(county: County, server: str, default_limit: int, max_limit: int) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document for ``county`` served at ``server``."""
    shared = _shared(county)
    paths: dict[str, Any] = {
        **_capabilities_paths(shared),
        **_data_paths(shared, list(county.collections)),
        **_locate_paths(shared),
        **_patrol_paths(shared),
        **records_paths(),
        **reports_paths(),
        **users_paths(),
        **versions_paths(),
        **proposals_paths(),
        **locks_paths(),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": current_app.config.get("TITLE", "gridgeo"), "version": __version__,
                 "description": "OGC API – Features (Part 1 core, GeoJSON, HTML, OpenAPI 3.0; Part 2 CRS) for "
                                "grid governance levels, plus locate and patrol.",
                 "license": {"name": "MIT"}},
        "servers": [{"url": server.rstrip("/")}],
        "tags": [{"name": t} for t in ("Capabilities", "Data", "Locate", "Patrol", "Records", "Reports", "Users",
                                       "Versions")],
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": security_schemes(),
                       "parameters": _parameters(shared, default_limit=default_limit, max_limit=max_limit)},
    }


def _shared(county: County) -> _Shared:
    """The parameters whose enums come from the county (collection ids, CRSs), and the problems."""
    ids = list(county.collections)
    crss = sorted({c for coll in county.collections.values() for c in crs_list(coll.storage_epsg)},
                  key=lambda c: (c != CRS84, c))
    return _Shared(
        crss=crss,
        f_json_html=_p("f", "query", {"type": "string", "enum": ["json", "html"]},
                       "Output format; without it the Accept header decides (JSON by default)."),
        collection_id=_p("collectionId", "path", {"type": "string", "enum": ids}, "A collection (layer).", True),
        coords=_p("coords", "query", {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                  "Shift lon/lat into the datum of a Chinese web map: gcj02 (Amap, Tencent; a few hundred "
                  "metres) or bd09 (Baidu). The geometry is then no longer CRS84, so no Content-Crs is sent; "
                  "only with a lon/lat crs."),
        crs=_p("crs", "query", {"type": "string", "format": "uri", "enum": crss, "default": CRS84},
               "Output CRS (OGC API – Features Part 2); coordinates in the axis order EPSG defines "
               "(EPSG:4490 and EPSG:4326 latitude first, the Gauss-Krüger zones northing first)."),
        problems={"400": _problem("Bad request (unknown parameter, bad value)"),
                  "404": _problem("Not found"), "500": _problem("Server error")},
    )


def _capabilities_paths(shared: _Shared) -> dict[str, Any]:
    """Landing page, conformance, this document, the collections (:mod:`.features`, ``/api``)."""
    f_json_html, problems = shared.f_json_html, shared.problems
    return {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage", "tags": ["Capabilities"],
                      "parameters": [f_json_html], "responses": {"200": _doc_response("Landing page", "landing"),
                                                                   **problems}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                 "tags": ["Capabilities"], "parameters": [f_json_html],
                                 "responses": {"200": _doc_response("Conformance", "confClasses"), **problems}}},
        "/api": {"get": {"summary": "This document", "operationId": "getAPI", "tags": ["Capabilities"],
                         "parameters": [f_json_html],
                         "responses": {"200": {"description": "OpenAPI 3.0", "content": {
                             OPENAPI: {"schema": {"type": "object"}}, HTML: {"schema": {"type": "string"}}}}}}},
        "/collections": {"get": {"summary": "The collections", "operationId": "getCollections",
                                 "tags": ["Capabilities"], "parameters": [f_json_html],
                                 "responses": {"200": _doc_response("Collections", "collections"), **problems}}},
        "/collections/{collectionId}": {"get": {
            "summary": "One collection", "operationId": "describeCollection", "tags": ["Capabilities"],
            "parameters": [shared.collection_id, f_json_html],
            "responses": {"200": _doc_response("Collection", "collection"), **problems}}},
    }


def _ref(name: str) -> dict[str, Any]:
    """A reference to the shared parameter ``name`` of ``components/parameters``."""
    return {"$ref": f"#/components/parameters/{name}"}


#: the parameters of a page of items, in the order they are declared: each one of ``components/parameters``
ITEMS_REFS = ("limit", "bbox", "bbox-crs", "crs", "coords", "datetime", "after", "before", "f-features")


def _parameters(shared: _Shared, *, default_limit: int, max_limit: int) -> dict[str, Any]:
    """``components/parameters``: what the items operations share, declared once.

    Why there and referenced: QGIS reads the page size only from
    ``components/parameters/limit`` (its ``schema`` ``maximum`` and ``default``;
    without them it pages by 100), GDAL 3.8+ follows the items path's ``$ref``
    to ``limit``. Only ``limit``, ``bbox`` and ``datetime`` have ``style: form,
    explode: false``: QGIS takes any other query parameter so declared for an
    attribute to filter on.
    """
    return {
        "collectionId": shared.collection_id,
        "featureId": _p("featureId", "path", {"type": "string"}, "The feature's code.", True),
        "limit": _p("limit", "query", {"type": "integer", "minimum": 1, "maximum": max_limit,
                                       "default": default_limit},
                    f"Features per page; above {max_limit} the maximum is used.", style="form", explode=False),
        "bbox": _p("bbox", "query", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                   "Only features intersecting this box: lower corner, upper corner, in bbox-crs "
                   "(default CRS84 minlon,minlat,maxlon,maxlat).", style="form", explode=False),
        "bbox-crs": _p("bbox-crs", "query", {"type": "string", "format": "uri", "enum": shared.crss,
                                             "default": CRS84}, "CRS of bbox, axis order as EPSG defines it."),
        "crs": shared.crs,
        "coords": shared.coords,
        "datetime": _p("datetime", "query", {"type": "string"},
                       "RFC 3339 instant or interval; the levels have no time, so every feature matches.",
                       style="form", explode=False),
        "after": _p("after", "query", {"type": "string"},
                    "Keyset cursor: features whose id sorts after this one (the next link sets it)."),
        "before": _p("before", "query", {"type": "string"},
                     "Keyset cursor: the page of features whose ids sort just before this one (prev link)."),
        "f-features": _p("f", "query", {"type": "string", "enum": ["json", "html"]},
                         "Output format: GeoJSON or HTML; without it the Accept header decides (GeoJSON by default)."),
    }


def _data_paths(shared: _Shared, collections: list[str]) -> dict[str, Any]:
    """Items and one item (:mod:`.features`): paging, bbox, CRS, datum; every parameter a ``$ref``.

    Besides the templated ``/collections/{collectionId}/items``, each
    collection's own items path: GDAL 3.8+ looks the page size up under the
    path of the items URL it reads (OGC's example 2 lists them the same way).
    """
    fc_resp = {"description": "Features", "headers": {
        "Content-Crs": {"schema": {"type": "string"}, "description": "The CRS of the coordinates, <uri>"},
        "ETag": {"schema": {"type": "string"}}},
        "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/featureCollectionGeoJSON"}},
                    HTML: {"schema": {"type": "string"}}}}
    unaudited = {"503": _problem("Personal fields whose read cannot be recorded in the audit trail now (they are "
                                 "not served unrecorded); retry later")}
    responses = {"200": fc_resp, "304": {"description": "Not modified (If-None-Match)"}, **shared.problems,
                 **unaudited}

    def items(operation: str, summary: str, refs: tuple[str, ...]) -> dict[str, Any]:
        return {"get": {"summary": summary, "operationId": operation, "tags": ["Data"],
                        "parameters": [_ref(r) for r in refs], "responses": responses}}

    out = {"/collections/{collectionId}/items": items(
        "getFeatures", "Features of a collection (keyset paging: follow the next link)", ("collectionId", *ITEMS_REFS))}
    for cid in collections:
        out[f"/collections/{quote(cid, safe='')}/items"] = items(f"getFeatures.{cid}", f"Features of {cid}", ITEMS_REFS)
    out["/collections/{collectionId}/items/{featureId}"] = {"get": {
        "summary": "One feature by id (its code)", "operationId": "getFeature", "tags": ["Data"],
        "parameters": [_ref(r) for r in ("collectionId", "featureId", "crs", "coords", "f-features")],
        "responses": {"200": {"description": "A feature", "content": {
            GEOJSON: {"schema": {"$ref": "#/components/schemas/featureGeoJSON"}},
            HTML: {"schema": {"type": "string"}}}},
            "304": {"description": "Not modified (If-None-Match)"}, **shared.problems, **unaudited}},
        "patch": edit_operation([_ref(r) for r in ("collectionId", "featureId")]),
        "put": edit_operation([_ref(r) for r in ("collectionId", "featureId")], put=True),
        "options": options_operation([_ref(r) for r in ("collectionId", "featureId")])}
    return out


_LOCATE_MANY = (
    "One feature per place, in input order (numberReturned). A place that cannot be read (not a pair of finite "
    "numbers, not a Point feature, latitude outside [-90, 90] or longitude outside [-180, 180], no lon/lat in the "
    "crs) does not fail the batch: its feature has geometry null, every level null and properties.error saying "
    "why, e.g. \"point 3: expected [lon, lat] or [lon, lat, height] numbers, got [117.22]\". A valid place no "
    "level contains has properties.note \"outside the county (no township contains it)\". summary counts the "
    "places inside, outside and in error; only when every place is in error is the answer a 400.")


def _locate_paths(shared: _Shared) -> dict[str, Any]:
    """``/locate`` (:mod:`.locate`): one place by GET, many by POST."""
    crss, problems = shared.crss, shared.problems
    return {
        "/locate": {
            "get": {"summary": "Township, block, village, grid, grid point and exclusive grid of one place",
                    "operationId": "locate", "tags": ["Locate"],
                    "parameters": [
                        _p("lon", "query", {"type": "number"}, "Longitude (or easting/x in crs).", True),
                        _p("lat", "query", {"type": "number"}, "Latitude (or northing/y in crs).", True),
                        _p("crs", "query", {"type": "string", "format": "uri", "enum": crss, "default": CRS84},
                           "CRS of the place."),
                        _p("coords", "query", {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                           "Datum of the lon/lat given, and of the point returned (Amap gcj02, Baidu bd09)."),
                    ],
                    "responses": {"200": {"description": "A Point feature; properties township, block, "
                                          "village, grid, point, exclusive: {code, name, leader...} or null; a "
                                          "place no level contains has a note: outside the county",
                                          "content": {GEOJSON: {"schema": {
                                              "$ref": "#/components/schemas/locateFeature"}}}},
                                  **problems, "400": _problem(
                                      "Bad request: lon/lat not numbers, latitude outside [-90, 90] or longitude "
                                      "outside [-180, 180] (a lon/lat crs), no lon/lat for a projected place")}},
            "post": {"summary": "Locate many places (100,000+ per second)", "operationId": "locateMany",
                     "tags": ["Locate"],
                     "parameters": [
                         _p("crs", "query", {"type": "string", "format": "uri", "enum": crss, "default": CRS84},
                            "CRS of the positions (axis order as EPSG defines it)."),
                         _p("coords", "query", {"type": "string", "enum": ["wgs84", "gcj02", "bd09"]},
                            "Datum of the positions given and returned.")],
                     "requestBody": {"required": True, "content": {JSON: {"schema": {"oneOf": [
                         {"type": "object", "properties": {"points": {"type": "array", "items": {
                             "type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}}}}},
                         {"$ref": "#/components/schemas/featureCollectionGeoJSON"}]}}}},
                     "responses": {"200": {"description": _LOCATE_MANY,
                                           "content": {GEOJSON: {"schema": {
                                               "$ref": "#/components/schemas/locateFeatureCollection"}}}},
                                   **problems, "400": _problem(
                                       "The body is not JSON (or nested too deep), is neither form, holds more "
                                       "than 1,000,000 places, or not one of its places can be read")}},
        },
    }


def _patrol_paths(shared: _Shared) -> dict[str, Any]:
    """``/patrol/{gridId}`` (:mod:`.patrol`): a day's route as GeoJSON or GPX."""
    return {
        "/patrol/{gridId}": {"get": {
            "summary": "A grid worker's patrol route for one day", "operationId": "patrol", "tags": ["Patrol"],
            "parameters": [
                _p("gridId", "path", {"type": "string"}, "The grid's code.", True),
                _p("date", "query", {"type": "string", "format": "date"},
                   "YYYY-MM-DD (default today, UTC+8), from 1900-01-01 to 2999-12-31."),
                _p("budget", "query", {"type": "string", "default": "4h"}, "Time budget: 4h, 90min, 240."),
                _p("speed", "query", {"type": "number"}, "Walking speed, km/h (default 4.5, or the rules')."),
                _p("start_time", "query", {"type": "string"}, "HH:MM the round starts (default 08:30, UTC+8)."),
                _p("campaign", "query", {"type": "integer", "minimum": 1, "maximum": 31},
                   "Campaign: every household of the grid once over this many days (all days returned)."),
                _p("start", "query", {"type": "string"}, "Where the round starts: station, home or LON,LAT (WGS84)."),
                _p("end", "query", {"type": "string"}, "Where it ends: station, home or LON,LAT (default: the start)."),
                _p("home", "query", {"type": "string"}, "LON,LAT of the worker's home (for start/end home)."),
                *[_p(f"frequency_{c}", "query", {"type": "integer", "minimum": 1},
                     f"Days between visits of {c} households.") for c in ("red", "orange", "yellow")],
                *[_p(f"service_{c}", "query", {"type": "number", "minimum": 0},
                     f"Minutes at the door of {c} households.") for c in ("red", "orange", "yellow")],
                _ref("coords"),
                _p("f", "query", {"type": "string", "enum": ["json", "gpx"]}, "GeoJSON or GPX 1.1."),
            ],
            "responses": {"200": {"description": "The route", "content": {
                GEOJSON: {"schema": {"$ref": "#/components/schemas/featureCollectionGeoJSON"}},
                "application/gpx+xml": {"schema": {"type": "string"}}}},
                "409": _problem("The budget is too small for any due visit"), **shared.problems,
                "503": _problem("The county file the service serves can no longer be read (or no street network "
                                "is set up): restart the service once it is back")}}},
    }


def _schemas() -> dict[str, Any]:
    """``components/schemas``: problem, link, landing, conformance, collection(s), GeoJSON features."""
    obj = {"type": "object"}
    links = {"type": "array", "items": {"$ref": "#/components/schemas/link"}}
    return {
        "problem": {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}}},
        "link": {"type": "object", "required": ["href"], "properties": {
            "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
            "title": {"type": "string"}}},
        "landing": {"type": "object", "required": ["links"], "properties": {
            "title": {"type": "string"}, "description": {"type": "string"}, "links": links}},
        "confClasses": {"type": "object", "required": ["conformsTo"], "properties": {
            "conformsTo": {"type": "array", "items": {"type": "string"}}}},
        "collection": {"type": "object", "required": ["id", "links"], "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "links": links, "extent": obj, "itemType": {"type": "string"},
            "crs": {"type": "array", "items": {"type": "string"}}, "storageCrs": {"type": "string"}}},
        "collections": {"type": "object", "required": ["links", "collections"], "properties": {
            "links": links,
            "collections": {"type": "array", "items": {"$ref": "#/components/schemas/collection"}},
            "crs": {"type": "array", "items": {"type": "string"}}}},
        "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
            "type": {"type": "string", "enum": ["Feature"]}, "geometry": obj, "properties": obj,
            "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]}, "links": links}},
        "locateFeature": {"allOf": [{"$ref": "#/components/schemas/featureGeoJSON"}, {
            "type": "object", "properties": {"properties": {"type": "object", "properties": {
                **{k: {"type": "object", "nullable": True} for k in
                   ("township", "block", "village", "grid", "point", "exclusive")},
                "note": {"type": "string", "description": "Why every level is null: outside the county"},
                "error": {"type": "string", "description": "POST only: why this place could not be read"}}}}}]},
        "locateFeatureCollection": {"type": "object", "required": ["type", "features", "numberReturned", "summary"],
                                    "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": {"$ref": "#/components/schemas/locateFeature"}},
            "numberReturned": {"type": "integer", "minimum": 0},
            "summary": {"type": "object", "required": ["inside", "outside", "errors"], "properties": {
                "inside": {"type": "integer", "minimum": 0, "description": "Places some level contains"},
                "outside": {"type": "integer", "minimum": 0, "description": "Valid places outside the county"},
                "errors": {"type": "integer", "minimum": 0, "description": "Places with an error"}}},
            "coords": {"type": "string", "enum": ["gcj02", "bd09"]}}},
        "featureCollectionGeoJSON": {"type": "object", "required": ["type", "features"], "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": {"$ref": "#/components/schemas/featureGeoJSON"}},
            "links": links,
            "timeStamp": {"type": "string", "format": "date-time"},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0}}},
    }


@bp.get("/api")
def api() -> Response:
    """The OpenAPI document (``f=html``: the same, readable in a browser)."""
    check_params(("f",))
    cfg = current_app.config
    doc = build(current_app.extensions["county"], request.url_root, cfg["DEFAULT_LIMIT"], cfg["MAX_LIMIT"])
    if negotiate({"json": OPENAPI, "html": HTML}) == "html":
        return Response(html.page("API definition (OpenAPI 3.0)", request.url_root,
                                  pre=json.dumps(doc, ensure_ascii=False, indent=1)), mimetype=HTML)
    return Response(dumps(doc), mimetype=OPENAPI)
