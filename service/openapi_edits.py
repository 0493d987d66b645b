"""The ``/api`` part of Part 4 editing (:mod:`.edits`): PATCH and PUT of a unit (a grid's or a block's geometry
too), OPTIONS."""

from __future__ import annotations

from typing import Any

from gridgeo.store.edits import EDITABLE_LAYERS, MAX_VALUE

from .openapi_records import AUTH_PROBLEMS, BEARER, _problem

_PATCH = {"type": "object", "properties": {
    "type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "string"},
    "properties": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": "string", "nullable": True, "maxLength": MAX_VALUE},
        "description": "name, kind, leader* (the responsible people); codes, parents and counts are the build's"},
    "geometry": {"type": "object", "description": "A grid's or a block's new outline (Polygon or MultiPolygon, "
                                                  "CRS84): applied as whole grid points moving between the grids of "
                                                  "a village, or whole villages between the blocks of a township"}}}


def edit_operation(parameters: list[dict[str, Any]], *, put: bool = False) -> dict[str, Any]:
    """``PATCH`` (a partial feature) or ``PUT`` (the whole feature, its geometry unchanged) of an item."""
    what = "the whole feature back" if put else "a partial feature"
    preview = {"name": "preview", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
               "description": "true: what a grid's or block's new geometry would do (moves, rule report, change list), "
                              "not applied; needs no If-Match"}
    return {
        "summary": f"Edit a unit's name, kind or responsible people, or a grid's outline: {what} "
                   f"({', '.join(EDITABLE_LAYERS)}; GIS staff, admins)", "operationId": "putFeature" if put
        else "patchFeature", "tags": ["Data"], "security": BEARER,
        "parameters": [*parameters, preview, {"name": "If-Match", "in": "header", "required": True,
                                              "schema": {"type": "string"},
                                              "description": "The ETag of the feature as read (or *)"}],
        "requestBody": {"required": True, "content": {t: {"schema": _PATCH} for t in (
            "application/merge-patch+json", "application/json", "application/geo+json")}},
        "responses": {"200": {"description": "The feature after the edit (a new version of the county)",
                              "content": {"application/geo+json": {"schema": {"type": "object"}}}},
                      **AUTH_PROBLEMS, "404": _problem("No such collection or feature"),
                      "412": _problem("If-Match is stale: the feature changed since it was read"),
                      "409": _problem("A grid's new outline breaks a rule (each named with its units)"),
                      "422": _problem("A property that cannot be set, or a geometry of another layer"),
                      "428": _problem("No If-Match")}}


def options_operation(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """``OPTIONS`` of an item: the methods the caller may use (``Allow``)."""
    return {"summary": "The methods the caller may use on this feature (Allow)", "operationId": "featureOptions",
            "tags": ["Data"], "parameters": parameters,
            "responses": {"204": {"description": "Allow lists GET, HEAD, OPTIONS and PATCH when allowed"},
                          "404": _problem("No such collection or feature")}}
