"""Who read whose personal fields: one audit row for each request that served any (读取留痕).

Why: the county's own users read residents' names, phones, ID numbers,
special-care categories and party membership every day, and an audit of
personal data asks first who looked at whose. Every view that serves
personal fields (a page or item of ``households``, a household's status,
visits with their notes, a patrol route, reports and their photos) calls
:func:`record` once, before its answer is made, with the ids it served
them for: the store appends one row of kind ``read``, action ``read.WHAT``,
the caller, the time, the path asked and the first
:data:`~gridgeo.store.base.READ_IDS` ids with their count
(:meth:`gridgeo.store.Store.audit_read`). One row per request, not per
record: a page of a hundred households is one read.

Why fail closed: a read whose row cannot be written is answered 503
(:class:`~gridgeo.errors.ServiceUnavailableError`), never served
unrecorded. A caller without a token is never served personal fields
(:func:`.auth.sees_personal`), so an anonymous request writes nothing;
neither does a view that served nobody's personal fields. A ``304`` of
such a read is recorded too: its view ran, and the client holds the data.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from flask import current_app, request

from gridgeo.errors import ServiceUnavailableError, StoreError

from .auth import principal

log = logging.getLogger(__name__)

#: the longest request path (with its query) a read row keeps as its target
_MAX_TARGET = 1000


def record(what: str, ids: Collection[Any]) -> None:
    """Record that this request serves the personal fields of ``ids`` (of ``what``: ``households``,
    ``report`` ...) to its caller; nothing when ``ids`` is empty or the caller has no name.

    Raises :class:`ServiceUnavailableError` (503) when the row cannot be written, so the view answers that
    instead of the data.
    """
    p = principal()
    if not ids or p.name is None:
        return
    store = current_app.extensions.get("store")
    if store is None:  # cannot happen with a named caller (their token is in the store); refuse anyway
        raise ServiceUnavailableError("personal fields are served only with their read in the audit trail, "
                                      "and this service has no store to write it to")
    query = request.query_string.decode("utf-8", "replace")
    target = (request.path + (f"?{query}" if query else ""))[:_MAX_TARGET]
    try:
        store.audit_read(p.label, what, target, [_plain(i) for i in ids])
    except StoreError as exc:
        log.error("read of %s by %s not served: its audit row could not be written (%s)", what, p.label, exc)
        raise ServiceUnavailableError("personal fields are served only with their read in the audit trail, "
                                      "which cannot be written now; retry later") from exc


def _plain(key: Any) -> int | str:
    """An id as JSON writes it (numpy integers from a layer's keys become ints)."""
    return int(key) if isinstance(key, int) or hasattr(key, "__index__") else str(key)
