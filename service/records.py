"""What changes every day: ``/visits``, a day's GPX track, a household's status, and ``/audit``.

Views parse (:mod:`gridgeo.store.records`), check the caller
(:mod:`.auth`: role, then scope on the household's chain of units), write
through the store (:mod:`gridgeo.store`: the write and its audit row in one
transaction) and shape the answer. A household is named by its item id in
the ``households`` collection, the id a phone got from
``/collections/households/items``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.errors import InputError, NotFoundError, ServiceUnavailableError, StoreError, UsageError
from gridgeo.store import Placed, Store, is_url, open_store
from gridgeo.store.chains import HOUSEHOLD_UNITS, Chains
from gridgeo.store.records import parse_gpx, parse_status, parse_time, parse_visits, utc_text

from . import read_audit
from .auth import principal, require, sees_personal
from .ogc import JSON, check_params, int_arg
from .store import County, Served, dumps

log = logging.getLogger(__name__)

bp = Blueprint("records", __name__)

HOUSEHOLDS = "households"
#: the largest GPX upload taken (a day's walk at one point a second is about 2 MB)
MAX_GPX_BYTES = 16 * 1024 * 1024
#: level layer -> the visits column that holds its code (other levels: the stored chain)
_LEVEL_COLUMN = {"townships": "township", "villages": "village", "grids": "grid", "points": "point"}


def open_writable(target: Any) -> Store | None:
    """The store at ``target`` (the county GeoPackage, or a ``postgresql://`` URL), or None.

    A county file that cannot take the store's tables (read-only, not SQLite) is served read-only:
    logged, and every write then answers 503; the public part is served as before.
    """
    if not target:
        return None
    if not is_url(target) and not Path(str(target)).is_file():
        return None
    try:
        return open_store(target, create=False)  # its tables come with the first user (gridgeo users add)
    except StoreError as exc:
        log.warning("serving read-only: %s", exc)
        return None


def overlay_statuses(county: County, store: Store | None) -> int:
    """Show every household's current status (the store's) in its personal properties; how many."""
    coll = county.collections.get(HOUSEHOLDS)
    if store is None or coll is None:
        return 0
    n = 0
    for hid, status in store.statuses().items():
        try:
            coll.set_status(hid, status)
            n += 1
        except NotFoundError:
            log.warning("household %s has a status in the store but is not in the households layer", hid)
    return n


def _store() -> Store:
    store = current_app.extensions.get("store")
    if store is None or not store.ready():
        raise ServiceUnavailableError("this service has no writable store (the county file is read-only or not a "
                                      "GeoPackage); records cannot be kept")
    return store  # type: ignore[no-any-return]


def _county() -> County:
    return current_app.extensions["county"]  # type: ignore[no-any-return]


def _chains() -> Chains:
    return current_app.extensions["chains"]  # type: ignore[no-any-return]


def _households() -> Served:
    coll = _county().collections.get(HOUSEHOLDS)
    if coll is None:
        raise NotFoundError("this county has no households layer")
    return coll


def place_household(hid: str, where: str = "household") -> Placed:
    """The household with item id ``hid``, placed in its chain of units (an :class:`InputError` if none)."""
    coll = _households()
    try:
        pos = coll.locate_key(hid)
    except NotFoundError:
        raise InputError(f"{where}: no household {hid!r} in the households collection") from None
    row = {c: v[0] for c, v in coll.units([pos], HOUSEHOLD_UNITS).items()}
    units = {c: (None if v is None or str(v) in ("", "nan", "None") else str(v)) for c, v in row.items()}
    return Placed(str(coll.key_at(pos)), units, _chains().household_chain(units))


def _created(doc: Any, location: str | None = None) -> Response:
    resp = Response(dumps(doc), status=201, mimetype=JSON)
    if location:
        resp.headers["Location"] = location
    return resp


# ------------------------------------------------------------------------------------------- visits
@bp.post("/visits")
def add_visits() -> Response:
    """Log one visit or a list of them (all or none); 201 with their ids."""
    check_params(())
    p = require("visit.write")
    body = request.get_json(silent=True)
    if body is None:
        raise UsageError("the body must be JSON: a visit object or a list of them")

    def resolve(hid: str, where: str) -> Placed:
        place = place_household(hid, where)
        p.require("visit.write", place.chain, what=f"{where} {hid}")
        return place

    visits = parse_visits(body, resolve)
    ids = _store().add_visits(visits, actor=p.label)
    log.info("%s logged %d visit(s)", p.label, len(ids))
    loc = url_for("records.list_visits", _external=True, after=ids[0] - 1, limit=len(ids))
    return _created({"ids": ids, "count": len(ids)}, loc)


@bp.get("/visits")
def list_visits() -> Response:
    """Visits in a unit (default: the caller's scope) between ``from`` and ``to``, keyset-paged by id."""
    check_params(("unit", "from", "to", "after", "limit"))
    p = require("visit.read")
    unit = request.args.get("unit") or p.scope
    col = None
    if unit is not None:
        if unit not in _chains():
            raise NotFoundError(f"no unit {unit!r} in this county")
        p.require("visit.read", _chains().chain(unit), what=f"unit {unit}")
        col = (_LEVEL_COLUMN.get(_chains().level[unit], "chain"), unit)
    start = _bound("from")
    end = _bound("to")
    limit = int_arg("limit", 100, 1, 10_000)
    after = int_arg("after", 0, 0, 2**62)
    rows = _store().visits(unit=col, start=start, end=end, after=after, limit=limit)
    for r in rows:
        if not sees_personal((r["point"], r["grid"], r["village"], r["township"])):
            r["note"] = None  # a note may name people: only for those who read personal fields there
    read_audit.record("visits", [r["id"] for r in rows if r["note"] is not None])
    doc: dict[str, Any] = {"visits": rows, "numberReturned": len(rows)}
    if len(rows) == limit:
        args = {k: v for k, v in request.args.items() if k != "after"}
        doc["links"] = [{"rel": "next", "type": JSON,
                         "href": url_for("records.list_visits", _external=True, **args, after=rows[-1]["id"])}]
    return Response(dumps(doc), mimetype=JSON)


def _bound(name: str) -> str | None:
    raw = request.args.get(name)
    return None if raw is None else utc_text(parse_time(raw, name))


@bp.post("/visits/track")
def add_track() -> Response:
    """A day's walk as GPX (the body, ``application/gpx+xml``); 201 with its day, points and length."""
    check_params(())
    p = require("track.write")
    data = request.get_data(cache=False)
    if len(data) > MAX_GPX_BYTES:
        raise UsageError(f"a GPX track is at most {MAX_GPX_BYTES // 2**20} MiB")
    track = parse_gpx(data, name="track")
    tid = _store().add_track(track, actor=p.label, scope=p.scope)
    return _created({"id": tid, **{k: track[k] for k in ("day", "started", "ended", "n_points", "length_m")}})


# ---------------------------------------------------------------------------------- household status
@bp.get("/households/<hid>/status")
def household_status(hid: str) -> Response:
    """A household's current status (priority, special-care categories) and its history."""
    check_params(())
    place = _placed_or_404(hid)
    require("read.personal", place.chain, what=f"household {hid}")
    store = _store()
    history = store.status_history(place.household)
    read_audit.record("household_status", [_households().parse_key(place.household)])  # its id as items name it
    current: dict[str, Any] = {}
    for h in history:
        current[h["field"]] = h["value"]
    return Response(dumps({"household": place.household, "status": current, "history": history}), mimetype=JSON)


@bp.post("/households/<hid>/status")
def set_household_status(hid: str) -> Response:
    """Change a household's priority colour or special-care categories (kept with who and when)."""
    check_params(())
    place = _placed_or_404(hid)
    p = require("status.write", place.chain, what=f"household {hid}")
    changes, note, when = parse_status(request.get_json(silent=True))
    after = _store().set_status(place, changes, actor=p.label, note=note, time=when)
    _households().set_status(place.household, after)
    return _created({"household": place.household, "status": after},
                    url_for("records.household_status", hid=hid, _external=True))


def _placed_or_404(hid: str) -> Placed:
    try:
        return place_household(hid)
    except InputError:
        raise NotFoundError(f"no household {hid!r} in the households collection") from None


# --------------------------------------------------------------------------------------------- audit
@bp.get("/audit")
def audit() -> Response:
    """The audit trail (admins): every write, who and when, before and after, and every read of personal
    fields (:mod:`.read_audit`; ``kind`` picks one of the two); keyset-paged by id. Reading it is itself a
    read row (its rows name people and their records)."""
    check_params(("after", "limit", "actor", "action", "since", "kind"))
    require("audit.read")
    since = request.args.get("since")
    rows = _store().audit_rows(after=int_arg("after", 0, 0, 2**62), limit=int_arg("limit", 100, 1, 10_000),
                               actor=request.args.get("actor"), action=request.args.get("action"),
                               since=None if since is None else utc_text(parse_time(since, "since")),
                               kind=request.args.get("kind"))  # read, write, or None: both
    read_audit.record("audit", [r["id"] for r in rows])  # its before and after hold personal fields too
    doc: dict[str, Any] = {"audit": rows, "numberReturned": len(rows), "caller": principal().label}
    return Response(dumps(doc), mimetype=JSON)
