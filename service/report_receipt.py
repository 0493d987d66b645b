"""A resident's receipt (回执): how someone who filed a report without a token follows it afterwards.

Why a receipt: a resident filing ``POST /reports`` anonymously (``ANONYMOUS_REPORTS``)
has no account, so without something to show they could never learn whether the
report was taken up, routed or closed, and ``GET /reports/{id}`` is for the county's
own users. The ``201`` answer carries a random ``receipt`` once
(:func:`gridgeo.store.reports.new_receipt`); the store keeps only its SHA-256.
Sent back as the ``X-Report-Receipt`` header, it opens that one report's public
view (:func:`public_view`) and its photo to a caller without a token.

A wrong or missing receipt, or one for another report, is the very 404 of an id
that does not exist (same status, same words), so the header is no oracle of
which ids exist; each such failure counts toward the address's failed sign-ins
(:class:`.auth.Throttle`), so receipts cannot be guessed at speed either. A
signed-in caller's header is ignored: their token decides what they read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request, url_for

from gridgeo.errors import NotFoundError
from gridgeo.store import Reports

from .auth import RECEIPT_HEADER, Access, principal

log = logging.getLogger(__name__)

#: the keys of a report's public view besides its events (what :func:`.reports.shape` shows everyone)
_EVENT_KEYS = ("time", "action", "from_state", "to_state", "from_level", "to_level", "unit", "department")


def presented() -> str | None:
    """The receipt sent with this request by a caller without a token, else None (a user's is ignored)."""
    if principal().name is not None:
        return None
    raw = request.headers.get(RECEIPT_HEADER)
    return None if raw is None else raw.strip()


def by_receipt(book: Reports, report_id: str, receipt: str, parse_id: Callable[[str], int]) -> dict[str, Any]:
    """The report ``report_id`` whose filer got ``receipt``; else the 404 of a missing id, counted as a failed
    sign-in of the caller's address (429 once there are too many)."""
    access: Access = current_app.extensions["access"]
    addr = request.remote_addr or "?"
    access.throttle.check(addr)
    try:
        return book.by_receipt(parse_id(report_id), receipt)
    except NotFoundError:
        access.throttle.fail(addr)
        log.info("a report receipt for %r did not match (from %s)", report_id[:40], addr)
        raise


def public_view(doc: dict[str, Any], rep: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The receipt holder's view of a report: ``doc`` (its :func:`.reports.shape` for a caller who reads nothing
    personal) without any handler's name or phone, and its history of states without who moved it.

    Why not the filer's own text and phone: a receipt is a bearer secret that can be forwarded or overheard;
    what it opens must tell nothing about anyone, only what became of the report. The photo is the filer's
    own, and served to the receipt (its link is given).
    """
    out = dict(doc)
    out["assigned_to"] = {k: v for k, v in doc["assigned_to"].items() if k not in ("name", "phone")}
    out["events"] = [{k: e[k] for k in _EVENT_KEYS} for e in events]
    if rep["photo"]:
        out["photo"] = {"type": rep["photo_type"], "size": rep["photo_size"],
                        "href": url_for("reports.get_photo", reportId=rep["id"], _external=True)}
    return out


def private(resp: Response) -> Response:
    """``resp`` kept out of shared caches: what a receipt opens is its holder's alone."""
    resp.headers["Cache-Control"] = "private, no-store"
    resp.vary.add(RECEIPT_HEADER)
    return resp
