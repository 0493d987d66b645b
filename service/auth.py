"""Who is asking: bearer tokens, the anonymous client, and the slowing down of repeated failures.

Every request gets a :class:`~gridgeo.store.access.Principal` in ``g.principal``
before its view runs. ``Authorization: Bearer TOKEN`` names a user of the
store (an unknown or revoked token is a 401); no header is the anonymous
client, who may read what ``ANONYMOUS`` allows (``public``: geometry, codes
and counts; ``none``: nothing but the service's own description). Access
control is on as soon as the store has one user; a store without users is
served read-only to everyone, as before accounts existed, and refuses writes.

Failures are counted per client address: from the ``AUTH_FAILURES``-th
failure within ``AUTH_WINDOW`` seconds on, every request carrying a token
from that address is answered 429 with ``Retry-After`` until the window
has passed: a token cannot be guessed at speed, and a well-behaved client
is only slowed, never locked out.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Collection

from flask import Flask, current_app, g, request

from gridgeo.errors import AuthenticationError, TooManyRequestsError
from gridgeo.store import Principal, Store

#: endpoints anyone may call even when ``ANONYMOUS = "none"``: what the service is and how to sign in
OPEN_ENDPOINTS = frozenset({"features.landing", "features.conformance", "openapi.api", "health", "static",
                            "pages.map_page"})
#: how long the answer to "does the store have users?" is kept (users are added by another process)
_USERS_TTL = 5.0
#: the header an anonymous filer sends their report's receipt in (:mod:`.report_receipt`)
RECEIPT_HEADER = "X-Report-Receipt"


class Throttle:
    """Events per address in a sliding window (thread-safe, in memory, per process).

    ``what`` names the events in the 429's message: failed sign-ins, or residents' anonymous reports.
    """

    def __init__(self, limit: int, window: float, *, what: str = "failed sign-ins") -> None:
        self.limit = int(limit)
        self.window = float(window)
        self.what = what
        self._fails: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, addr: str, now: float) -> collections.deque[float]:
        q = self._fails.setdefault(addr, collections.deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def check(self, addr: str) -> None:
        """Raise :class:`TooManyRequestsError` if ``addr`` has failed too often lately."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(addr, now)
            if len(q) >= self.limit:
                wait = max(1, int(q[0] + self.window - now + 0.999))
                raise TooManyRequestsError(f"too many {self.what} from this address; retry in {wait} s",
                                           retry_after=wait)

    def fail(self, addr: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(addr, now).append(now)
            if len(self._fails) > 100_000:  # many addresses: forget the quiet ones
                for a in [a for a, q in self._fails.items() if not q]:
                    del self._fails[a]


class Access:
    """The app's view of the store's accounts: who a token is, whether access control is on."""

    def __init__(self, store: Store | None, *, anonymous: str, limit: int, window: float) -> None:
        self.store = store
        self.anonymous = Principal.anonymous(anonymous)
        self.throttle = Throttle(limit, window)
        self._users: tuple[float, bool] = (-1e9, False)
        self._lock = threading.Lock()

    def controlled(self) -> bool:
        """Whether the store has users (kept :data:`_USERS_TTL` s)."""
        if self.store is None:
            return False
        now = time.monotonic()
        with self._lock:
            at, on = self._users
            if now - at < _USERS_TTL:
                return on
        on = self.store.has_users()
        with self._lock:
            self._users = (now, on)
        return on

    def principal(self, header: str | None, addr: str) -> Principal:
        """The caller of a request with this ``Authorization`` header from ``addr``."""
        if not header:
            return self.anonymous
        self.throttle.check(addr)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.throttle.fail(addr)
            raise AuthenticationError("Authorization must be 'Bearer TOKEN'")
        user = self.store.authenticate(token.strip()) if self.store is not None else None
        if user is None:
            self.throttle.fail(addr)
            raise AuthenticationError("unknown or revoked token")
        return Principal.of_user(user.name, user.role, user.scope)


def install(app: Flask, store: Store | None) -> None:
    """Attach :class:`Access` to ``app`` and resolve the caller before every request."""
    cfg = app.config
    app.extensions["access"] = Access(store, anonymous=cfg.get("ANONYMOUS", "public"),
                                      limit=int(cfg.get("AUTH_FAILURES", 10)), window=float(cfg.get("AUTH_WINDOW", 60)))
    app.before_request(_resolve)


def _resolve() -> None:
    access: Access = current_app.extensions["access"]
    g.principal = access.principal(request.headers.get("Authorization"), request.remote_addr or "?")
    if g.principal.name is None and not g.principal.may("read") and request.endpoint not in OPEN_ENDPOINTS \
            and request.method != "OPTIONS":
        raise AuthenticationError("this service needs a token: send Authorization: Bearer TOKEN")


def principal() -> Principal:
    """The caller of the current request."""
    return g.principal  # type: ignore[no-any-return]


def require(action: str, chain: Collection[str] | None = None, *, what: str = "this") -> Principal:
    """The caller, if it may do ``action`` (at ``chain``); else 401 (anonymous) or 403 (a user)."""
    p = principal()
    access: Access = current_app.extensions["access"]
    if p.name is None:
        if action != "read" and not access.controlled():
            raise AuthenticationError("this store has no accounts yet, so it is read-only: add one with "
                                      "'gridgeo users add STORE NAME --role ROLE'")
        if not p.allowed(action, chain):
            raise AuthenticationError("sign in: send Authorization: Bearer TOKEN")
        return p
    p.require(action, chain, what=what)
    return p


def sees_personal(chain: Collection[str] | None) -> bool:
    """Whether the caller may read the personal fields of a record placed at ``chain``."""
    p = principal()
    return p.name is not None and p.allowed("read.personal", chain)

