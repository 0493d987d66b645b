"""``/users``: the accounts of the served county, managed by its admins over HTTP.

Why beside ``gridgeo users``: a county's admin adds the new grid worker, gives
a worker who lost a phone a new token and revokes the one who left from the
office's browser, not from a shell on the server. The first admin still comes
from the command line (a store without users is read-only), and the same
store methods do the work, each with its audit row naming the admin.

An admin with a scope (a township's) manages only the users inside it: it
sees them, adds them with a scope inside its own and never a county-wide or
admin user, and revokes or renews only them. A token is shown once, in the
answer that made it, which is never cached.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.errors import ConflictError, ForbiddenError, InputError, NotFoundError, UsageError
from gridgeo.store import Principal, User
from gridgeo.store.access import ROLES

from .auth import require
from .ogc import JSON, check_params
from .records import _store
from .store import dumps

log = logging.getLogger(__name__)

bp = Blueprint("users", __name__)

_FIELDS = ("name", "role", "scope")


def _manages(p: Principal, user: User) -> bool:
    """Whether admin ``p`` manages ``user``: everyone for a county-wide admin, else those inside its scope."""
    if p.scope is None:
        return True
    return user.scope is not None and p.scope in current_app.extensions["chains"].chain(user.scope)


def _doc(user: User, token: str | None = None) -> dict[str, Any]:
    doc = {**user.as_dict(), "href": url_for("users.get_user", userName=user.name, _external=True)}
    return doc if token is None else {**doc, "token": token}


def _answer(doc: Any, status: int = 200, *, secret: bool = False) -> Response:
    resp = Response(dumps(doc), status=status, mimetype=JSON)
    resp.headers["Cache-Control"] = "no-store" if secret else "private, no-cache"
    return resp


def _managed(name: str) -> tuple[Principal, User]:
    """The admin calling and the user ``name`` it manages; a user outside its scope is the 404 of none."""
    p = require("user.admin")
    user = _store().user(name)
    if not _manages(p, user):
        raise NotFoundError(f"no user {name!r}")
    return p, user


def _new_user(body: Any) -> tuple[str, str, str | None]:
    """``{"name", "role", "scope"?}`` -> its parts, or a :class:`UsageError` naming the field."""
    if not isinstance(body, dict):
        raise UsageError('POST /users needs a JSON object {"name": ..., "role": ..., "scope": ...}')
    extra = sorted(set(body) - set(_FIELDS))
    if extra:
        raise UsageError(f"unknown field(s) {', '.join(map(repr, extra))}; a user has {', '.join(_FIELDS)}")
    name, role, scope = body.get("name"), body.get("role"), body.get("scope")
    if not isinstance(name, str):
        raise UsageError("name: a user needs a name (a string)")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if scope is not None and (not isinstance(scope, str) or not scope.strip()):
        raise UsageError("scope: a unit code (a string), or null for the whole county")
    return name, str(role), None if scope is None else scope.strip()


def _check_scope(p: Principal, role: str, scope: str | None) -> None:
    """The new user's scope is a unit of this county, and inside the admin's own."""
    chains = current_app.extensions["chains"]
    if scope is not None and scope not in chains:
        raise InputError(f"scope: {scope!r} is not the code of any unit of this county")
    if p.scope is None:
        return
    if scope is None:
        raise ForbiddenError(f"admin {p.name} of {p.scope} may add users inside {p.scope} only (give a scope)")
    if p.scope not in chains.chain(scope):
        raise ForbiddenError(f"scope {scope} is outside {p.scope}, the scope of admin {p.name}")


@bp.get("/users")
def list_users() -> Response:
    """The users the caller manages (never a token), revoked ones with the time they were revoked."""
    check_params(("revoked",))
    p = require("user.admin")
    flag = request.args.get("revoked")
    if flag not in (None, "true", "false"):
        raise UsageError(f"revoked must be true or false, got {flag!r}")
    users = [u for u in _store().users() if _manages(p, u)
             and (flag is None or (u.revoked is not None) == (flag == "true"))]
    return _answer({"users": [_doc(u) for u in users], "numberReturned": len(users)})


@bp.post("/users")
def add_user() -> Response:
    """A new user and its token, shown only in this answer."""
    check_params(())
    p = require("user.admin")
    name, role, scope = _new_user(request.get_json(silent=True))
    _check_scope(p, role, scope)
    user, token = _store().add_user(name, role=role, scope=scope, actor=p.label)
    log.info("%s added user %s (role %s, scope %s)", p.label, user.name, role, scope or "the whole county")
    resp = _answer(_doc(user, token), 201, secret=True)
    resp.headers["Location"] = url_for("users.get_user", userName=user.name, _external=True)
    return resp


@bp.get("/users/<userName>")
def get_user(userName: str) -> Response:
    check_params(())
    return _answer(_doc(_managed(userName)[1]))


@bp.delete("/users/<userName>")
def revoke_user(userName: str) -> Response:
    """Revoke a user's token at once; the row stays for the audit trail (revoking again changes nothing).

    Not oneself: an admin who revoked their own token by a slip would lock the office out until someone
    reached the server's shell; another admin, or ``gridgeo users revoke``, can.
    """
    check_params(())
    p, _ = _managed(userName)
    if userName == p.name:
        raise ConflictError(f"user {userName} may not revoke their own token (another admin or "
                            "'gridgeo users revoke' can)")
    user = _store().revoke_user(userName, actor=p.label)
    log.info("%s revoked user %s", p.label, userName)
    return _answer(_doc(user))


@bp.post("/users/<userName>/token")
def renew_token(userName: str) -> Response:
    """A new token for the user (the old one stops working now), shown only in this answer."""
    check_params(())
    p, _ = _managed(userName)
    user, token = _store().rotate_token(userName, actor=p.label)
    log.info("%s renewed the token of user %s", p.label, userName)
    return _answer(_doc(user, token), secret=True)
