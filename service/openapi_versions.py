"""The ``/api`` part of the county's versions (:mod:`.versions`)."""

from __future__ import annotations

from typing import Any

from gridgeo.store.versions import KINDS

from .openapi_records import AUTH_PROBLEMS, BEARER, JSON, _p, _problem

_VERSION: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "time": {"type": "string", "format": "date-time"}, "author": {"type": "string"},
    "kind": {"type": "string", "enum": list(KINDS)}, "message": {"type": "string"},
    "previous": {"type": "integer", "nullable": True},
    "summary": {"type": "object", "description": "Per level: codes retired, created, reshaped, kept; households "
                                                 "moved per level; people moved or on a retired code"},
    "links": {"type": "array", "items": {"type": "object"}}}}
_CHANGES = {"type": "object", "nullable": True, "description": "The change list against the version before "
            "(as `gridgeo diff --json` writes it); null for the first version"}


def _one(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}}


def versions_paths() -> dict[str, Any]:
    """``/versions``, ``/versions/{versionId}``, ``/versions/{a}/diff/{b}``, ``/versions/{versionId}/restore``."""
    vid = _p("versionId", "path", {"type": "integer", "minimum": 1}, "The version's number.", True)
    a = _p("a", "path", {"type": "integer", "minimum": 1}, "The earlier version.", True)
    b = _p("b", "path", {"type": "integer", "minimum": 1}, "The version made from it.", True)
    problems = {**AUTH_PROBLEMS, "404": _problem("No such version"),
                "409": _problem("The two versions are not consecutive and not all attribute edits between "
                                 "(no change list is kept between them)")}
    return {
        "/versions": {"get": {
            "summary": "The county's versions, oldest first (GIS staff, admins)", "operationId": "getVersions",
            "tags": ["Versions"], "security": BEARER,
            "responses": {**_one("Versions with their counts", {"type": "object", "properties": {
                "versions": {"type": "array", "items": _VERSION}, "numberReturned": {"type": "integer"}}}),
                **AUTH_PROBLEMS}}},
        "/versions/{versionId}": {"get": {
            "summary": "One version and its change list", "operationId": "getVersion", "tags": ["Versions"],
            "security": BEARER, "parameters": [vid],
            "responses": {**_one("The version", {"type": "object", "properties": {
                **_VERSION["properties"], "changes": _CHANGES}}), **problems}}},
        "/versions/{a}/diff/{b}": {"get": {
            "summary": "The change list from version a to version b (b made from a)", "operationId": "diffVersions",
            "tags": ["Versions"], "security": BEARER, "parameters": [a, b],
            "responses": {**_one("Both versions and the change list", {"type": "object", "properties": {
                "from": _VERSION, "to": _VERSION, "changes": _CHANGES}}), **problems}}},
        "/versions/{versionId}/restore": {"post": {
            "summary": "Roll the edits made over the API since a version back, as a new version (GIS staff, "
                       "admins)",
            "description": "Attributes and grid points moved by redrawn grids go back to what the version had. "
                           "Every version after it must be an edit over the API (or a restore): a build or "
                           "a load is named in the 409, and undone by building again. Each unit is checked as "
                           "an edit of it is (role and scope); the edits, their audit rows and the new version "
                           "are one transaction.",
            "operationId": "restoreVersion", "tags": ["Versions"], "security": BEARER, "parameters": [vid],
            "requestBody": {"required": False, "content": {JSON: {"schema": {
                "type": "object", "properties": {"message": {"type": "string", "maxLength": 500}},
                "additionalProperties": False}}}},
            "responses": {
                "201": {"description": "The new version and its change list",
                        "content": {JSON: {"schema": {"type": "object", "properties": {
                            "restored": {"type": "integer"}, "version": _VERSION, "changes": _CHANGES}}}}},
                "200": {"description": "The attributes are already those of the version: nothing written",
                        "content": {JSON: {"schema": {"type": "object"}}}},
                **AUTH_PROBLEMS, "404": _problem("No such version"),
                "405": _problem("The layers are not in the store's database (an edit could not be kept)"),
                "409": _problem("The version is the current one, or a build or load came after it"),
                "400": _problem("A bad body")}}},
    }
