"""The ``/api`` part of the accounts (:mod:`.users`): list, add, read, revoke, renew a token."""

from __future__ import annotations

from typing import Any

from gridgeo.store.access import MAX_NAME, ROLES

from .openapi_records import AUTH_PROBLEMS, BEARER, JSON, _p, _problem

_USER: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "role": {"type": "string", "enum": list(ROLES)},
    "scope": {"type": "string", "nullable": True, "description": "A unit code; null: the whole county"},
    "created": {"type": "string", "format": "date-time"}, "created_by": {"type": "string"},
    "revoked": {"type": "string", "format": "date-time", "nullable": True}, "href": {"type": "string"}}}
_WITH_TOKEN = {"type": "object", "properties": {**_USER["properties"], "token": {
    "type": "string", "description": "The bearer token, shown only in this answer (only its hash is kept)"}}}
_NEW = {"type": "object", "required": ["name", "role"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
             "description": "Not 'anonymous' or 'system', no ':' or '/' (the audit trail names writers by it)"},
    "role": {"type": "string", "enum": list(ROLES)},
    "scope": {"type": "string", "nullable": True,
              "description": "A unit code of the county (a grid, a village, a township); null or absent: the "
                             "whole county (county-wide admins only)"}}}


def _one(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def users_paths() -> dict[str, Any]:
    """``/users``, ``/users/{userName}``, ``/users/{userName}/token``."""
    name = _p("userName", "path", {"type": "string"}, "The user's name.", True)
    problems = {**AUTH_PROBLEMS, "404": _problem("No such user (or one outside the admin's scope)"),
                "409": _problem("A user of that name exists, or the user is revoked")}
    return {
        "/users": {
            "get": {"summary": "The users the caller administers (admins; never their tokens)",
                    "operationId": "getUsers", "tags": ["Users"], "security": BEARER,
                    "parameters": [_p("revoked", "query", {"type": "string", "enum": ["true", "false"]},
                                      "Only revoked (true) or only live (false) users.")],
                    "responses": {**_one("Users in id order", {"type": "object", "properties": {
                        "users": {"type": "array", "items": _USER}, "numberReturned": {"type": "integer"}}}),
                        **AUTH_PROBLEMS}},
            "post": {"summary": "Add a user; its token is in this answer only", "operationId": "addUser",
                     "tags": ["Users"], "security": BEARER,
                     "requestBody": {"required": True, "content": {JSON: {"schema": _NEW}}},
                     "responses": {**_one("The user and its token", _WITH_TOKEN, "201"), **problems}}},
        "/users/{userName}": {
            "get": {"summary": "One user", "operationId": "getUser", "tags": ["Users"], "security": BEARER,
                    "parameters": [name], "responses": {**_one("The user", _USER), **problems}},
            "delete": {"summary": "Revoke a user's token (the user stays, for the audit trail)",
                       "operationId": "revokeUser", "tags": ["Users"], "security": BEARER, "parameters": [name],
                       "responses": {**_one("The user, revoked", _USER), **problems}}},
        "/users/{userName}/token": {"post": {
            "summary": "A new token for the user; the old one stops working now", "operationId": "renewToken",
            "tags": ["Users"], "security": BEARER, "parameters": [name],
            "responses": {**_one("The user and its new token", _WITH_TOKEN), **problems}}},
    }
