"""The ``/api`` part of redraws on request and their proposals (:mod:`.proposals`)."""

from __future__ import annotations

from typing import Any

from .openapi_records import AUTH_PROBLEMS, BEARER, JSON, _p, _problem

_RULES = {"type": "object", "description": "The rule report: ok, the rules the result breaks (contiguity, "
          "empty grids), the partition engine's verdict and bounds, and per grid before and after: households, "
          "grid points, within the bounds, pieces"}
_PROPOSAL: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "village": {"type": "string"},
    "state": {"type": "string", "enum": ["open", "accepted"]},
    "base": {"type": "integer", "nullable": True, "description": "The version the proposal was made at"},
    "version": {"type": "integer", "nullable": True, "description": "The version it was applied as"},
    "author": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
    "moves": {"type": "array", "items": {"type": "object", "properties": {
        "code": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"}}}},
    "rules": _RULES,
    "changes": {"type": "object", "nullable": True, "description": "The change list accepting it would record"},
    "grids": {"type": "object", "description": "The changed grids' new outlines (GeoJSON FeatureCollection)"},
    "links": {"type": "array", "items": {"type": "object"}}}}
_REDRAW_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
               "description": "[min, max] households a grid; default: the village's in the county's rules"},
    "locks": {"type": "array", "items": {"type": "string"}, "maxItems": 1000,
              "description": "Grid codes whose grid points stay where they are"},
    "seed": {"type": "integer", "minimum": 0, "maximum": 4294967295},
    "message": {"type": "string", "maxLength": 500}}}


def proposals_paths() -> dict[str, Any]:
    """``/villages/{code}/redraw``, ``/proposals/{proposalId}``, ``/proposals/{proposalId}/accept``."""
    code = _p("code", "path", {"type": "string"}, "The village's code.", True)
    pid = _p("proposalId", "path", {"type": "integer", "minimum": 1}, "The proposal's number.", True)
    write_problems = {**AUTH_PROBLEMS, "405": _problem("The layers are not in the store's database (an edit could "
                                                       "not be kept)")}
    return {
        "/villages/{code}/redraw": {"post": {
            "summary": "Propose a redraw of a village's grids from its grid points (GIS staff, admins; not applied)",
            "description": "The partition engine starts from today's grids and moves as few grid points as the "
                           "bounds allow; locked grids keep theirs; the number of grids stays. The proposal is "
                           "kept with its moves, rule report, change list and outlines until accepted.",
            "operationId": "redrawVillage", "tags": ["Proposals"], "security": BEARER, "parameters": [code],
            "requestBody": {"required": False, "content": {JSON: {"schema": _REDRAW_BODY}}},
            "responses": {"201": {"description": "The proposal", "content": {JSON: {"schema": _PROPOSAL}}},
                          **write_problems, "400": _problem("A bad body, or a locked code not among its grids"),
                          "404": _problem("No such village"), "409": _problem("The village has no grids")}}},
        "/proposals/{proposalId}": {"get": {
            "summary": "One proposal (GIS staff, admins)", "operationId": "getProposal", "tags": ["Proposals"],
            "security": BEARER, "parameters": [pid],
            "responses": {"200": {"description": "The proposal", "content": {JSON: {"schema": _PROPOSAL}}},
                          **write_problems, "400": _problem("A bad id"), "404": _problem("No such proposal")}}},
        "/proposals/{proposalId}/accept": {"post": {
            "summary": "Apply an open proposal as a version (kind redraw)", "operationId": "acceptProposal",
            "tags": ["Proposals"], "security": BEARER, "parameters": [pid],
            "description": "The moves, the grids' outlines and counts, the households' grid, an audit row, the "
                           "version and the proposal's state are one transaction; POST /versions/{v}/restore "
                           "rolls it back.",
            "responses": {"201": {"description": "The proposal, the new version and its change list",
                                  "content": {JSON: {"schema": {"type": "object"}}}},
                          **write_problems, "400": _problem("A bad id"), "404": _problem("No such proposal"),
                          "409": _problem("Accepted already, moves nothing, or the village's grids changed "
                                          "since it was made")}}},
    }


_LOCK = {"type": "object", "properties": {
    "id": {"type": "integer"}, "code": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
    "author": {"type": "string"}, "reason": {"type": "string"},
    "released": {"type": "string", "nullable": True}, "released_by": {"type": "string", "nullable": True}}}


def locks_paths() -> dict[str, Any]:
    """``/locks`` and ``/locks/{code}``."""
    code = _p("code", "path", {"type": "string", "maxLength": 200}, "The grid's code.", True)
    return {
        "/locks": {
            "get": {"summary": "The grids locked now (GIS staff, admins)", "operationId": "getLocks",
                    "tags": ["Proposals"], "security": BEARER,
                    "responses": {"200": {"description": "The locks", "content": {JSON: {"schema": {
                        "type": "object", "properties": {"locks": {"type": "array", "items": _LOCK},
                                                         "numberReturned": {"type": "integer"}}}}}},
                                  **AUTH_PROBLEMS}},
            "post": {"summary": "Lock a grid against every change: hand edits, redraws, restores",
                     "operationId": "addLock", "tags": ["Proposals"], "security": BEARER,
                     "requestBody": {"required": True, "content": {JSON: {"schema": {
                         "type": "object", "required": ["code"], "additionalProperties": False, "properties": {
                             "code": {"type": "string"}, "reason": {"type": "string", "maxLength": 500}}}}}},
                     "responses": {"201": {"description": "The lock", "content": {JSON: {"schema": _LOCK}}},
                                   **AUTH_PROBLEMS, "404": _problem("No such grid"),
                                   "409": _problem("The grid is locked already")}}},
        "/locks/{code}": {"delete": {
            "summary": "Release a grid's lock", "operationId": "releaseLock", "tags": ["Proposals"],
            "security": BEARER, "parameters": [code],
            "responses": {"200": {"description": "The released lock", "content": {JSON: {"schema": _LOCK}}},
                          **AUTH_PROBLEMS, "404": _problem("No such grid, or it is not locked")}}},
    }
