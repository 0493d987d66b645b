"""The ``/api`` part of :mod:`.reports` (随手拍): filing, listing, one report, its transitions and photo."""

from __future__ import annotations

from typing import Any

from gridgeo.store.photos import MAX_PHOTO_BYTES
from gridgeo.store.reports import MAX_TEXT, STATES

from .openapi_records import AUTH_PROBLEMS, BEARER, JSON, _ok, _p, _problem

_REPORT = {
    "type": "object", "required": ["lon", "lat", "category", "text"], "additionalProperties": False,
    "properties": {
        "lon": {"type": "number", "description": "Longitude (x/east in crs); in the coords datum if given"},
        "lat": {"type": "number", "description": "Latitude (y/north in crs)"},
        "crs": {"type": "string", "description": "The CRS of lon/lat (an OGC URI); default CRS84"},
        "coords": {"type": "string", "enum": ["wgs84", "gcj02", "bd09"],
                   "description": "lon/lat read off a Chinese web map: gcj02 (Amap, Tencent) or bd09 (Baidu)"},
        "category": {"type": "string", "description": "A key or label of GET /reports/categories"},
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT},
        "reporter_name": {"type": "string", "maxLength": 100},
        "reporter_phone": {"type": "string", "maxLength": 100}}}
_MULTIPART = {"type": "object", "required": ["report"], "properties": {
    "report": {"type": "string", "description": "The report as JSON text (the JSON body's object)"},
    "photo": {"type": "string", "format": "binary", "description": "JPEG, PNG or WebP"}}}
_PHOTO_PROBLEMS = {
    "409": _problem("The report's state does not allow this (the problem names the states it may go to)"),
    "413": _problem(f"The photo is over {MAX_PHOTO_BYTES // 2**20} MiB"),
    "415": _problem("The photo is not a JPEG, PNG or WebP image"),
}
_TRANSITION = {"type": "object", "required": ["to"], "additionalProperties": False, "properties": {
    "to": {"type": "string", "enum": list(STATES)},
    "note": {"type": "string", "maxLength": 2000, "description": "Why; required to close (how it was resolved)"},
    "department": {"type": "string", "maxLength": 2000, "description": "Required to route to a department"}}}
_ESCALATE = {"type": "object", "additionalProperties": False, "properties": {
    "note": {"type": "string", "maxLength": 2000, "description": "Why it cannot be resolved at this level"}}}


_VIEW_PROPS: dict[str, Any] = {
    "id": {"type": "integer"}, "state": {"type": "string", "enum": list(STATES)},
    "overdue": {"type": "boolean", "description": "Open and past its deadline"},
    "overdue_hours": {"type": "number", "nullable": True,
                      "description": "Hours past the deadline (one decimal); null when not overdue"},
    "overdue_marked": {"type": "string", "nullable": True, "format": "date-time",
                       "description": "When the system marked it supervised for a deadline passed at the top of "
                                      "its ladder (the county: no level above); once, never again"},
    "chain": {"type": "array", "items": {"type": "object"}, "description": "Its units, township → point"},
    "assigned_to": {"type": "object"}, "events": {"type": "array", "items": {"type": "object"}}}
_VIEW = {"type": "object", "properties": _VIEW_PROPS}
_FILED = {"type": "object", "properties": {**_VIEW_PROPS, "receipt": {
    "type": "string", "description": "Only to a resident filing without a token, and only in this answer: "
                                     "send it back as the X-Report-Receipt header to follow the report (the "
                                     "server keeps only its SHA-256, so it cannot be shown again)"}}}
#: what a resident without a token shows to read the report they filed
RECEIPT = {"name": "X-Report-Receipt", "in": "header", "required": False, "schema": {"type": "string"},
           "description": "The receipt POST /reports gave an anonymous filer: opens that report's public view "
                          "(state, history of states without who moved them, chain codes) and its photo to a "
                          "caller without a token. A wrong one is the 404 of a missing id and counts as a "
                          "failed sign-in (429 after too many). Ignored with a bearer token."}


def _view(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def reports_paths() -> dict[str, Any]:
    """``/reports``, ``/reports/categories``, ``/reports/{reportId}`` and its transition, escalation, photo."""
    rid = _p("reportId", "path", {"type": "integer", "minimum": 1}, "The report's id.", True)
    problems = {**AUTH_PROBLEMS, **_PHOTO_PROBLEMS}
    return {
        "/reports": {
            "post": {"summary": "File a report (随手拍): located, assigned to the lowest level that handles it",
                     "operationId": "fileReport", "tags": ["Reports"], "security": BEARER,
                     "requestBody": {"required": True, "content": {JSON: {"schema": _REPORT},
                                                                   "multipart/form-data": {"schema": _MULTIPART}}},
                     "responses": {**_view("The report: id, chain (township → point), assigned_to; receipt "
                                           "for an anonymous filer", _FILED, "201"), **problems}},
            "get": {"summary": "Reports located in a unit (default: the caller's scope)", "operationId": "getReports",
                    "tags": ["Reports"], "security": BEARER,
                    "parameters": [
                        _p("unit", "query", {"type": "string"}, "A unit code of any level the report lies in."),
                        _p("assigned", "query", {"type": "string"}, "The unit the report is assigned to now."),
                        _p("state", "query", {"type": "string", "enum": list(STATES)}, "Only this state."),
                        _p("overdue", "query", {"type": "boolean"}, "Past the deadline (open reports only)."),
                        _p("category", "query", {"type": "string"}, "Only this category (its key)."),
                        _p("after", "query", {"type": "integer", "minimum": 0}, "Keyset cursor: ids after this."),
                        _p("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100},
                           "Reports per page.")],
                    "responses": {**_ok("Reports in id order"), **AUTH_PROBLEMS}}},
        "/reports/categories": {"get": {
            "summary": "The categories, the level each starts at, the hours per level, the ladder",
            "operationId": "getReportCategories", "tags": ["Reports"],
            "responses": {**_ok("Categories and ladder"), **AUTH_PROBLEMS}}},
        "/reports/{reportId}": {"get": {
            "summary": "One report and its history (with a token, or its receipt)", "operationId": "getReport",
            "tags": ["Reports"], "security": [*BEARER, {}], "parameters": [rid, RECEIPT],
            "responses": {**_view("The report and its events", _VIEW), **AUTH_PROBLEMS}}},
        "/reports/{reportId}/transition": {"post": {
            "summary": "Move a report to another state (received → handling → routed → supervised → closed)",
            "operationId": "transitionReport", "tags": ["Reports"], "security": BEARER, "parameters": [rid],
            "requestBody": {"required": True, "content": {JSON: {"schema": _TRANSITION}}},
            "responses": {**_ok("The report after"), **problems}}},
        "/reports/{reportId}/escalate": {"post": {
            "summary": "Hand a report one level up (grid → village → block or township → county)",
            "operationId": "escalateReport", "tags": ["Reports"], "security": BEARER, "parameters": [rid],
            "requestBody": {"required": False, "content": {JSON: {"schema": _ESCALATE}}},
            "responses": {**_ok("The report after"), **problems}}},
        "/reports/{reportId}/photo": {
            "put": {"summary": "Attach a photo (the body: the image)", "operationId": "putReportPhoto",
                    "tags": ["Reports"], "security": BEARER, "parameters": [rid],
                    "requestBody": {"required": True, "content": {
                        t: {"schema": {"type": "string", "format": "binary"}}
                        for t in ("image/jpeg", "image/png", "image/webp")}},
                    "responses": {**_ok("The report after"), **problems}},
            "get": {"summary": "The report's photo (with a token, or its receipt)", "operationId": "getReportPhoto",
                    "tags": ["Reports"], "security": [*BEARER, {}], "parameters": [rid, RECEIPT],
                    "responses": {"200": {"description": "The image", "content": {
                        t: {"schema": {"type": "string", "format": "binary"}}
                        for t in ("image/jpeg", "image/png", "image/webp")}}, **AUTH_PROBLEMS}}},
    }
