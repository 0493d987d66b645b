"""Who may do what: roles, scopes, tokens and the personal fields of a household.

One table (:data:`ROLES`) says what each role may do; a scope (a unit code:
a grid for its worker, a village for its secretary, a township) then limits
*where*: a scoped user reads personal fields and writes records only for the
units whose chain of parents holds the scope. The public part of the county
(geometry, codes, counts) is public anyway, so a scope never hides it.

Tokens are 256 random bits, shown once and stored as their SHA-256: with that
much entropy a plain hash is as good as a slow one, and a lookup by hash needs
no scan over the users.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass

from gridgeo.errors import ForbiddenError, UsageError

#: what each role may do. ``read`` is the public part every client gets unless anonymous access is off.
ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "read.personal", "visit.write", "visit.read", "status.write", "report.write",
                        "report.read", "report.handle", "track.write", "audit.read", "user.admin",
                        "geometry.write", "roster.write", "version.read"}),
    "gis": frozenset({"read", "visit.read", "report.read", "geometry.write", "roster.write", "version.read"}),
    "worker": frozenset({"read", "read.personal", "visit.write", "visit.read", "status.write", "report.write",
                         "report.read", "report.handle", "track.write"}),
    "viewer": frozenset({"read", "visit.read", "report.read"}),
}
#: what a client without a token may do, per the ``ANONYMOUS`` setting of the service
ANONYMOUS_ACCESS: dict[str, frozenset[str]] = {"public": frozenset({"read"}), "none": frozenset()}

#: columns of a household (a register's) that describe people: names, phones, addresses, ID numbers,
#: special-care categories, party membership, and the marks a worker keeps (priority colour, last visit)
PERSONAL_COLUMNS: frozenset[str] = frozenset({
    "name", "phone", "address", "id_number", "person_name", "relation", "special", "party_member", "priority",
    "last_visit", "visit_window", "building", "size", "group", "note",
})

TOKEN_PREFIX = "gg_"


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a user of the store, or the anonymous client (``name`` is None).

    ``scope`` None means everywhere (an admin or a county-wide viewer).
    """

    name: str | None
    role: str | None
    scope: str | None
    actions: frozenset[str]

    @classmethod
    def anonymous(cls, mode: str = "public") -> Principal:
        """The client that sent no token, allowed what ``ANONYMOUS = mode`` allows."""
        if mode not in ANONYMOUS_ACCESS:
            raise UsageError(f"ANONYMOUS must be one of {', '.join(ANONYMOUS_ACCESS)}, got {mode!r}")
        return cls(None, None, None, ANONYMOUS_ACCESS[mode])

    @classmethod
    def of_user(cls, name: str, role: str, scope: str | None) -> Principal:
        return cls(name, role, scope or None, ROLES[role])

    @property
    def label(self) -> str:
        """How the audit trail names the caller."""
        return self.name if self.name is not None else "anonymous"

    def may(self, action: str) -> bool:
        return action in self.actions

    def covers(self, chain: Collection[str]) -> bool:
        """Whether a unit (or a record placed in it) whose chain of codes is ``chain`` lies inside the scope."""
        return self.scope is None or self.scope in chain

    def allowed(self, action: str, chain: Collection[str] | None = None) -> bool:
        """``action`` on a record placed at ``chain`` (None: not placed, e.g. a listing)."""
        return self.may(action) and (chain is None or self.covers(chain))

    def require(self, action: str, chain: Collection[str] | None = None, *, what: str = "this") -> None:
        """Raise :class:`ForbiddenError` unless :meth:`allowed` (the caller is known: 401s come earlier)."""
        if not self.may(action):
            raise ForbiddenError(f"role {self.role or 'anonymous'} may not {_VERBS.get(action, action)}")
        if chain is not None and not self.covers(chain):
            raise ForbiddenError(f"{what} is outside the scope {self.scope} of user {self.name}")


_VERBS = {
    "read.personal": "read personal fields", "visit.write": "record visits", "visit.read": "read visits",
    "status.write": "change a household's status", "report.write": "file reports", "report.read": "read reports",
    "report.handle": "handle reports", "track.write": "upload tracks", "audit.read": "read the audit trail",
    "user.admin": "manage users", "geometry.write": "edit geometry", "roster.write": "edit rosters",
    "version.read": "read the county's versions",
}


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else a :class:`UsageError` listing them."""
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


#: names the audit trail gives to callers that are not users, so no user may take them
RESERVED_NAMES = frozenset({"anonymous", "system"})
#: the longest user name taken (a name shows in every audit row the user writes)
MAX_NAME = 64


def check_user_name(name: str) -> str:
    """``name`` stripped, if it can name a user; else a :class:`UsageError` saying why.

    Why the rules: the audit trail names every writer by this text, so it must not pass for another kind
    of writer (``anonymous``, the ``system`` sweep, a ``cli:`` login), nor hide in control characters.
    """
    name = name.strip()
    if not name:
        raise UsageError("a user needs a name")
    if len(name) > MAX_NAME:
        raise UsageError(f"a user name has at most {MAX_NAME} characters; got {len(name)}")
    if name.lower() in RESERVED_NAMES or any(c in name for c in ":/") or any(not c.isprintable() for c in name):
        raise UsageError(f"user name {name!r} is not allowed: not {', '.join(sorted(RESERVED_NAMES))}, "
                         "no ':' or '/' and no control characters (the audit trail names writers by it)")
    return name


def new_token() -> str:
    """A fresh bearer token: the prefix (so a leaked one is recognised by scanners) and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()

