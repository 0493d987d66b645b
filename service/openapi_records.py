"""The ``/api`` part of what changes every day (:mod:`.records`): visits, tracks, household status, audit.

Kept beside :mod:`.openapi` so that each API part declares its own paths; the
bearer scheme is declared once here and every write names it.
"""

from __future__ import annotations

from typing import Any

from gridgeo.store.base import AUDIT_KINDS, READ_IDS

JSON = "application/json"
PROBLEM = "application/problem+json"
#: operations that need a token say so; reads of the public part need none
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _p(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/problem"}}}}


#: the answers every signed-in operation can give besides its own
AUTH_PROBLEMS: dict[str, Any] = {
    "400": _problem("Bad request: a body or parameter that cannot be read (the problem names the field)"),
    "401": _problem("No token, or an unknown or revoked one (WWW-Authenticate: Bearer)"),
    "403": _problem("The token's role or scope does not allow this"),
    "404": _problem("No such household or unit"),
    "422": _problem("A well-formed request naming what does not exist (a household id) or a bad GPX file"),
    "429": _problem("Too many failed sign-ins from this address: wait Retry-After seconds"),
    "503": _problem("The store cannot be written (read-only county file, database down), or not the audit row "
                    "of a read of personal fields, which is then not served"),
}

_VISIT = {"type": "object", "required": ["household", "time", "outcome"], "additionalProperties": False,
          "properties": {
              "household": {"oneOf": [{"type": "string"}, {"type": "integer"}],
                            "description": "The households collection's item id"},
              "time": {"type": "string", "format": "date-time",
                       "description": "ISO 8601; without an offset, China Standard Time (UTC+8)"},
              "outcome": {"type": "string", "enum": ["visited", "absent", "refused"]},
              "note": {"type": "string", "maxLength": 2000},
              "uid": {"type": "string", "minLength": 1, "maxLength": 100,
                      "description": "The phone's own id of this visit: sent again, it is the same visit"}}}
_STATUS = {"type": "object", "additionalProperties": False, "properties": {
    "priority": {"type": "string", "description": "red, orange, yellow (or 红/橙/黄), none for unmarked"},
    "special": {"type": "array", "items": {"type": "string"}, "description": "special-care categories"},
    "note": {"type": "string", "maxLength": 2000}, "time": {"type": "string", "format": "date-time"}}}


def _ok(description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": {"type": "object"}}}}}


def records_paths() -> dict[str, Any]:
    """``/visits``, ``/visits/track``, ``/households/{householdId}/status``, ``/audit``."""
    hid = _p("householdId", "path", {"type": "string"}, "The households collection's item id.", True)
    paging = [_p("after", "query", {"type": "integer", "minimum": 0}, "Keyset cursor: ids after this one."),
              _p("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100},
                 "Rows per page.")]
    return {
        "/visits": {
            "post": {"summary": "Log visits (one or a list; all or none)", "operationId": "addVisits",
                     "tags": ["Records"], "security": BEARER,
                     "requestBody": {"required": True, "content": {JSON: {"schema": {
                         "oneOf": [_VISIT, {"type": "array", "minItems": 1, "maxItems": 5000, "items": _VISIT}]}}}},
                     "responses": {**_ok("The visits' ids", "201"), **AUTH_PROBLEMS}},
            "get": {"summary": "Visits in a unit (default: the caller's scope)", "operationId": "getVisits",
                    "tags": ["Records"], "security": BEARER,
                    "parameters": [_p("unit", "query", {"type": "string"}, "A unit code of any level."),
                                   _p("from", "query", {"type": "string", "format": "date-time"}, "From (incl.)."),
                                   _p("to", "query", {"type": "string", "format": "date-time"}, "To (excl.)."),
                                   *paging],
                    "responses": {**_ok("Visits in id order"), **AUTH_PROBLEMS}}},
        "/visits/track": {"post": {
            "summary": "Upload a day's walk (GPX 1.1)", "operationId": "addTrack", "tags": ["Records"],
            "security": BEARER,
            "requestBody": {"required": True, "content": {"application/gpx+xml": {"schema": {"type": "string"}}}},
            "responses": {**_ok("The track's id, day, points and length", "201"), **AUTH_PROBLEMS}}},
        "/households/{householdId}/status": {
            "get": {"summary": "A household's status and its history", "operationId": "getHouseholdStatus",
                    "tags": ["Records"], "security": BEARER, "parameters": [hid],
                    "responses": {**_ok("Current status and history"), **AUTH_PROBLEMS}},
            "post": {"summary": "Change a household's priority or special-care categories",
                     "operationId": "setHouseholdStatus", "tags": ["Records"], "security": BEARER,
                     "parameters": [hid],
                     "requestBody": {"required": True, "content": {JSON: {"schema": _STATUS}}},
                     "responses": {**_ok("The status after", "201"), **AUTH_PROBLEMS}}},
        "/audit": {"get": {
            "summary": "The audit trail (admins): writes, and reads of personal fields", "operationId": "getAudit",
            "tags": ["Records"], "security": BEARER,
            "parameters": [_p("actor", "query", {"type": "string"}, "Only this user's rows."),
                           _p("action", "query", {"type": "string"},
                              "Actions starting with this (visit., user., read.)."),
                           _p("since", "query", {"type": "string", "format": "date-time"}, "From this time."),
                           _p("kind", "query", {"type": "string", "enum": list(AUDIT_KINDS)},
                              "read: the rows of requests that served personal fields (action read.WHAT, the "
                              f"caller, the path, after = the first {READ_IDS} ids served and their count); write: "
                              "every other row. Default: both."),
                           *paging],
            "responses": {**_ok("Audit rows in order"), **AUTH_PROBLEMS}}},
    }


def security_schemes() -> dict[str, Any]:
    """``components/securitySchemes``: the bearer token ``gridgeo users add`` prints."""
    return {"bearer": {"type": "http", "scheme": "bearer",
                       "description": "A token from 'gridgeo users add STORE NAME --role ROLE'"}}
