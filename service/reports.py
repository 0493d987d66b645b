"""``/reports``: what residents and workers report from the street (随手拍), and what became of it.

``POST /reports`` takes a point (lon/lat in WGS84; ``coords`` gcj02/bd09 for
a web map's datum; or x/y in any ``crs`` the service offers), a category and
a text, as JSON, or as ``multipart/form-data`` with the JSON in a ``report``
field and a ``photo`` file (so a resident's one request carries both). A
photo can also be put later, ``PUT /reports/{id}/photo`` with the image as
the body. The report is located to its chain, assigned to the lowest level
that handles its category (:mod:`.report_assign`) and answered with its id,
``chain`` and ``assigned_to``.

Access: filing needs ``report.write`` inside the caller's scope, or no token
at all when ``ANONYMOUS_REPORTS`` is on (residents; off by default). Reading
needs ``report.read`` in scope; the text, the photo, the reporter's name and
phone, the handler's name and phone and the notes of the history go only to
callers who read personal fields there, and each request that serves them
leaves one ``read`` row in the audit trail (:mod:`.read_audit`). A resident
who filed without a token gets a ``receipt`` in the ``201`` answer, once;
sent back as ``X-Report-Receipt`` it opens that report's public view and its
photo (:mod:`.report_receipt`). Handling (a transition, an escalation) needs
``report.handle`` and a scope covering the unit the report is assigned to (a
village secretary may act on a grid's report, a grid worker not on one
escalated to the village); ``supervised`` (督办) only from a level above the
handler's.

Every reports route first runs the deadline sweep (lazily, as the store's
``system`` actor), so a report read is never shown as waiting at a level
whose time is up; one at the top of its ladder (the county) is marked
``supervised`` once instead, and every view shows ``overdue_hours``. The
clock is ``CLOCK`` of the config (a callable giving an aware datetime; tests
inject one), else the system's.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.county.report_rules import LEVELS
from gridgeo.data.crs import DATUMS
from gridgeo.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UsageError,
)
from gridgeo.store import Principal, Reports, is_url
from gridgeo.store.photos import MAX_PHOTO_BYTES, PhotoDir
from gridgeo.store.reports import MAX_TEXT, NewReport, new_receipt, overdue, overdue_hours

from . import read_audit, report_receipt
from .auth import Throttle, principal, require, sees_personal
from .locate import LEVEL_KEYS, _lat_first, _to_wgs84, _unplaceable, locator_for
from .ogc import CRS84, JSON, check_params, crs_list, int_arg, is_geographic, parse_crs_uri
from .positions import out_of_range
from .records import _store
from .report_assign import Assigner
from .store import dumps

log = logging.getLogger(__name__)

bp = Blueprint("reports", __name__)

_FIELDS = {"lon", "lat", "crs", "coords", "category", "text", "reporter_name", "reporter_phone"}
MAX_CONTACT = 100


# -------------------------------------------------------------------------------------------- plumbing
def _now() -> dt.datetime:
    clock = current_app.config.get("CLOCK")
    return clock() if clock is not None else dt.datetime.now(dt.timezone.utc)


def _reports() -> Reports:
    """The store's reports, after the deadline sweep (503 without a writable store)."""
    book = Reports(_store())
    book.sweep(now=_now())
    return book


def _assigner() -> Assigner:
    return current_app.extensions["report_assigner"]  # type: ignore[no-any-return]


def photo_dir(config: Any) -> PhotoDir | None:
    """``PHOTOS`` of the config, else ``COUNTY.photos`` beside a county file; None: photos cannot be kept."""
    if config.get("PHOTOS"):
        return PhotoDir(config["PHOTOS"])
    county = config.get("COUNTY")
    if county and not is_url(county):
        p = Path(str(county))
        return PhotoDir(p.with_name(p.stem + ".photos"))
    return None


def _photos() -> PhotoDir:
    d = current_app.extensions.get("report_photos")
    if d is None:
        raise ServiceUnavailableError("this service keeps no photos (its county is not a file and PHOTOS is not set)")
    return d  # type: ignore[no-any-return]


def _json(status: int = 200, doc: Any = None, location: str | None = None) -> Response:
    resp = Response(dumps(doc), status=status, mimetype=JSON)
    if location:
        resp.headers["Location"] = location
    return resp


# --------------------------------------------------------------------------------------------- parsing
def _body() -> tuple[Any, bytes | None]:
    """The report (a JSON object) and the photo's bytes, from a JSON or a multipart body."""
    if request.mimetype == "multipart/form-data":
        if request.content_length is not None and request.content_length > MAX_PHOTO_BYTES + 64 * 1024:
            raise PayloadTooLargeError(f"a report with its photo is at most {MAX_PHOTO_BYTES // 2**20} MiB")
        raw = request.form.get("report")
        if raw is None:
            raise UsageError("a multipart report needs a 'report' field holding the report as JSON")
        f = request.files.get("photo")
        return _loads(raw), (f.read(MAX_PHOTO_BYTES + 1) if f is not None else None)
    if not request.is_json:
        raise UsageError("POST /reports takes JSON (Content-Type: application/json) or multipart/form-data")
    return _loads(request.get_data(cache=False)), None


def _loads(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise UsageError("report: nested too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"report: not JSON ({exc})") from None


def _number(body: dict[str, Any], key: str) -> float:
    v = body.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(float(v)):
        raise UsageError(f"report.{key}: must be a finite number, got {v!r}")
    return float(v)


def _where(body: dict[str, Any]) -> tuple[float, float]:
    """The report's point as WGS84 lon/lat (``lon``/``lat`` in ``crs`` or the ``coords`` datum)."""
    x, y = _number(body, "lon"), _number(body, "lat")
    crs = CRS84 if body.get("crs") is None else parse_crs_uri(str(body["crs"]), crs_list(None), "report.crs")
    coords = body.get("coords")
    if coords is not None:
        if not isinstance(coords, str) or coords.strip().lower() not in DATUMS:
            raise UsageError(f"report.coords: use gcj02 (Amap, Tencent), bd09 (Baidu) or wgs84, got {coords!r}")
        coords = None if coords.strip().lower() == "wgs84" else coords.strip().lower()
    if is_geographic(crs) and not (abs(y) <= 90.0 and abs(x) <= 180.0):
        raise UsageError(f"report: lon={x!r}, lat={y!r} is off the globe (lon in [-180, 180], lat in [-90, 90])")
    a, b = (y, x) if _lat_first(crs) else (x, y)
    lon, lat = _to_wgs84(np.array([a]), np.array([b]), crs, coords)
    if out_of_range(lon, lat)[0]:
        raise UsageError(f"report: lon={x!r}, lat={y!r} {_unplaceable(crs)}")
    return float(lon[0]), float(lat[0])


def _text_field(body: dict[str, Any], key: str, limit: int, *, required: bool = False) -> str | None:
    v = body.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise UsageError(f"report.{key}: missing")
        return None
    if not isinstance(v, str):
        raise UsageError(f"report.{key}: must be text, got {v!r}")
    if len(v) > limit:
        raise UsageError(f"report.{key}: at most {limit} characters, got {len(v)}")
    return v.strip()


def _parse_report(body: Any) -> NewReport:
    if not isinstance(body, dict):
        raise UsageError("report: must be an object with lon, lat, category and text")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise UsageError(f"report: unknown field(s) {', '.join(unknown)}; a report has {', '.join(sorted(_FIELDS))}")
    rules = _assigner().rules
    cat = rules.category(body.get("category"), "report.category")
    text = _text_field(body, "text", MAX_TEXT, required=True)
    lon, lat = _where(body)
    places = _assigner().places(lon, lat)
    if not places:
        raise InputError(f"report: lon={body['lon']!r}, lat={body['lat']!r} is {_assigner().locator.outside_note}")
    ladder = _assigner().ladder(places, cat)
    return NewReport(round(lon, 7), round(lat, 7), cat.key, text or "", places, ladder,
                     _text_field(body, "reporter_name", MAX_CONTACT), _text_field(body, "reporter_phone", MAX_CONTACT))


# ----------------------------------------------------------------------------------------------- shape
def assigned_chain(rep: dict[str, Any]) -> tuple[str, ...]:
    """The codes of the unit a report is assigned to and of every unit above it (county: none)."""
    if rep["level"] not in LEVELS:
        return ()
    floor = LEVELS.index(rep["level"])
    return tuple(p["code"] for p in rep["places"] if LEVELS.index(_rank(p["level"])) >= floor)


def _rank(level: str) -> str:
    return "grid" if level == "exclusive" else level


def _today(rep: dict[str, Any], rung: dict[str, Any]) -> dict[str, Any] | None:
    """Who answers for the rung's unit in the roster served now, when not the person stored with the report.

    Why: the ladder is made when the report is filed, but grid workers change (a rebuild with a new
    roster, then a restart); an open report must name the one to call today, and still say whom it was
    given to. Nobody in today's roster: the stored person stays (someone must be named).
    """
    if rung["level"] == "county" or not rung["unit"]:
        return None
    level = next((p["level"] for p in rep["places"] if p["code"] == rung["unit"]), rung["level"])
    layer = LEVEL_KEYS.get(level)
    who = None if layer is None else _assigner().person(rung["level"], layer, rung["unit"])
    if who is None or (who["name"], who["phone"]) == (rung["name"], rung["phone"]):
        return None
    return who


def shape(rep: dict[str, Any], *, now: dt.datetime, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A report as the API shows it to the caller: personal parts only to those who read them there."""
    personal = sees_personal(rep["chain"])
    rung = rep["ladder"][rep["step"]]
    assigned = {"level": rung["level"], "unit": rung["unit"], "role": rung["role"], "note": rung["note"],
                "due": rep["due"], "hours": rung["hours"]}
    now_there = _today(rep, rung)
    if now_there is not None:  # the roster named someone else since the report reached this rung
        assigned.update(role=now_there["role"], roster_changed=True)
    if personal or rung["level"] == "county":
        assigned.update(name=rung["name"], phone=rung["phone"])
        if now_there is not None:
            assigned.update(name=now_there["name"], phone=now_there["phone"],
                            assigned_first={k: rung[k] for k in ("name", "role", "phone")})
    cats = _assigner().rules.categories
    doc: dict[str, Any] = {
        "id": int(rep["id"]), "category": rep["category"],
        "category_label": cats[rep["category"]].label if rep["category"] in cats else rep["category"],
        "state": rep["state"], "overdue": overdue(rep, now), "overdue_hours": overdue_hours(rep, now),
        "overdue_marked": rep["overdue_marked"], "created": rep["created"], "updated": rep["updated"],
        "closed": rep["closed"], "due": rep["due"], "escalations": rep["step"], "department": rep["department"],
        "location": {"type": "Point", "coordinates": [float(rep["lon"]), float(rep["lat"])]},
        "chain": rep["places"], "assigned_to": assigned,
        "links": [{"rel": "self", "type": JSON, "href": url_for("reports.get_report", reportId=rep["id"],
                                                                _external=True)}],
    }
    if personal:
        doc.update(text=rep["body"], filed_by=rep["reporter"],
                   reporter={"name": rep["reporter_name"], "phone": rep["reporter_phone"]})
        if rep["photo"]:
            doc["photo"] = {"type": rep["photo_type"], "size": rep["photo_size"],
                            "href": url_for("reports.get_photo", reportId=rep["id"], _external=True)}
    if events is not None:
        doc["events"] = [{k: e[k] for k in ("time", "actor", "action", "from_state", "to_state", "from_level",
                                            "to_level", "unit", "department")} | {"note": e["note"] if personal
                                                                                  else None} for e in events]
    return doc


# ------------------------------------------------------------------------------------------------ views
def _filer() -> Principal:
    """The caller, if it may file reports (anonymous residents only with ``ANONYMOUS_REPORTS``)."""
    p = principal()
    if p.name is None and current_app.config.get("ANONYMOUS_REPORTS") and _store() is not None:
        throttle: Throttle = current_app.extensions["report_throttle"]
        addr = request.remote_addr or "?"
        throttle.check(addr)  # a flood from one address is a 429, not a county's inbox filled
        throttle.fail(addr)
        return p
    return require("report.write")


@bp.post("/reports")
def file_report() -> Response:
    """File a report; 201 with its id, chain and assignment (and the photo's, for a multipart body)."""
    check_params(())
    p = _filer()
    body, photo_bytes = _body()
    new = _parse_report(body)
    chain = [str(pl["code"]) for pl in new.places]
    if p.name is not None:
        p.require("report.write", chain, what="the report's place")
    photo = _photos().put(photo_bytes, where="photo") if photo_bytes is not None else None
    book = _reports()
    now = _now()
    receipt = new_receipt() if p.name is None else None  # a resident without a token follows it with this
    rep = book.file(new, actor=p.label, now=now, receipt=receipt)
    if photo is not None:
        rep = book.set_photo(int(rep["id"]), photo.sha256, photo.type, photo.size, actor=p.label, now=now)
    log.info("%s filed report %s (%s) at %s", p.label, rep["id"], new.category, rep["unit"] or rep["level"])
    doc = shape(rep, now=now)
    resp = _json(201, doc if receipt is None else {**doc, "receipt": receipt},
                 url_for("reports.get_report", reportId=rep["id"], _external=True))
    return report_receipt.private(resp) if receipt is not None else resp


_LIST_PARAMS = ("unit", "assigned", "state", "overdue", "category", "after", "limit")


@bp.get("/reports")
def list_reports() -> Response:
    """Reports located in a unit (default: the caller's scope), by state, overdue or not, keyset-paged."""
    check_params(_LIST_PARAMS)
    p = require("report.read")
    chains = current_app.extensions["chains"]
    unit = request.args.get("unit") or p.scope
    if unit is not None:
        if unit not in chains:
            raise NotFoundError(f"no unit {unit!r} in this county")
        p.require("report.read", chains.chain(unit), what=f"unit {unit}")
    flag = request.args.get("overdue")
    if flag is not None and flag.lower() not in ("true", "false", "1", "0"):
        raise UsageError(f"overdue must be true or false, got {flag!r}")
    now = _now()
    limit = int_arg("limit", 100, 1, 10_000)
    rows = _reports().find(now=now, unit=unit, assigned=request.args.get("assigned"),
                           state=request.args.get("state"), category=request.args.get("category"),
                           overdue=None if flag is None else flag.lower() in ("true", "1"),
                           after=int_arg("after", 0, 0, 2**62), limit=limit)
    read_audit.record("reports", [int(r["id"]) for r in rows if sees_personal(r["chain"])])
    doc: dict[str, Any] = {"reports": [shape(r, now=now) for r in rows], "numberReturned": len(rows)}
    if len(rows) == limit:
        args = {k: v for k, v in request.args.items() if k != "after"}
        doc["links"] = [{"rel": "next", "type": JSON,
                         "href": url_for("reports.list_reports", _external=True, **args, after=rows[-1]["id"])}]
    return _json(200, doc)


@bp.get("/reports/categories")
def categories() -> Response:
    """The categories a report may name, the level each starts at and the hours each level has."""
    check_params(())
    rules = _assigner().rules
    return _json(200, {"categories": rules.describe(), "ladder": list(rules.ladder),
                       "county_handler": rules.county_handler})


def _report_id(raw: str) -> int:
    try:
        rid = int(raw)
    except ValueError:
        raise NotFoundError(f"no report {raw!r} (report ids are whole numbers)") from None
    if not 0 < rid < 2**62:
        raise NotFoundError(f"no report {raw!r}")
    return rid


def _readable(reportId: str) -> tuple[Reports, dict[str, Any]]:
    p = require("report.read")
    book = _reports()
    rep = book.get(_report_id(reportId))
    p.require("report.read", rep["chain"], what=f"report {rep['id']}")
    return book, rep


@bp.get("/reports/<reportId>")
def get_report(reportId: str) -> Response:
    """One report with its whole history (who moved it, when, from where to where, why)."""
    check_params(())
    receipt = report_receipt.presented()
    if receipt is not None:  # a resident following the report they filed without a token
        book = _reports()
        rep = report_receipt.by_receipt(book, reportId, receipt, _report_id)
        events = book.events(int(rep["id"]))
        doc = report_receipt.public_view(shape(rep, now=_now()), rep, events)
        return report_receipt.private(_json(200, doc))
    book, rep = _readable(reportId)
    doc = shape(rep, now=_now(), events=book.events(int(rep["id"])))
    read_audit.record("report", [rep["id"]] if sees_personal(rep["chain"]) else [])
    return _json(200, doc)


def _handler(book: Reports, reportId: str) -> tuple[Principal, dict[str, Any]]:
    """The caller, if it may handle the report (``report.handle`` over the unit it is assigned to)."""
    p = require("report.handle")
    rep = book.get(_report_id(reportId))
    p.require("report.read", rep["chain"], what=f"report {rep['id']}")
    p.require("report.handle", assigned_chain(rep),
              what=f"report {rep['id']}, assigned to {rep['level']} {rep['unit'] or ''}".rstrip())
    return p, rep


def _action_body(allowed: set[str]) -> dict[str, Any]:
    if not request.is_json:
        raise UsageError("the body must be JSON (Content-Type: application/json)")
    body = _loads(request.get_data(cache=False))
    if not isinstance(body, dict):
        raise UsageError(f"the body must be an object with {', '.join(sorted(allowed))}")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise UsageError(f"unknown field(s) {', '.join(unknown)}; this takes {', '.join(sorted(allowed))}")
    return body


@bp.post("/reports/<reportId>/transition")
def transition(reportId: str) -> Response:
    """Move a report to another state (``to``; ``note``; ``department`` when routing it to one)."""
    check_params(())
    body = _action_body({"to", "note", "department"})
    book = _reports()
    p, rep = _handler(book, reportId)
    to = body.get("to")
    if not isinstance(to, str):
        raise UsageError(f"to: must be the state to move to, got {to!r}")
    if to == "supervised" and p.scope is not None and p.scope == rep["unit"]:
        raise ForbiddenError(f"report {rep['id']} is handled by {rep['unit']}: supervision (督办) comes from a "
                             "level above it")
    now = _now()
    rep = book.transition(int(rep["id"]), to, actor=p.label, now=now, note=body.get("note"),
                          department=body.get("department"), expect=(rep["state"], rep["step"]))
    return _json(200, shape(rep, now=now, events=book.events(int(rep["id"]))))


@bp.post("/reports/<reportId>/escalate")
def escalate(reportId: str) -> Response:
    """Hand a report one level up its ladder (the handler cannot resolve it there); ``note`` says why."""
    check_params(())
    body = _action_body({"note"}) if request.get_data(cache=True) else {}
    book = _reports()
    p, rep = _handler(book, reportId)
    now = _now()
    rep = book.escalate(int(rep["id"]), actor=p.label, now=now, note=body.get("note"),
                        expect=(rep["state"], rep["step"]))
    return _json(200, shape(rep, now=now, events=book.events(int(rep["id"]))))


@bp.put("/reports/<reportId>/photo")
def put_photo(reportId: str) -> Response:
    """Attach a photo (the body: JPEG, PNG or WebP bytes) by the reporter or a handler of the report."""
    check_params(())
    p = require("report.write")
    if request.content_length is not None and request.content_length > MAX_PHOTO_BYTES:
        raise PayloadTooLargeError(f"photo: {request.content_length} bytes; at most {MAX_PHOTO_BYTES // 2**20} MiB")
    book = _reports()
    rep = book.get(_report_id(reportId))
    p.require("report.write", rep["chain"], what=f"report {rep['id']}")
    if rep["reporter"] != p.label and not p.allowed("report.handle", assigned_chain(rep)):
        raise ForbiddenError(f"report {rep['id']} was filed by someone else; only they or its handler add a photo")
    if rep["state"] == "closed":
        raise ConflictError(f"report {rep['id']} is closed")
    photo = _photos().put(request.get_data(cache=False)[: MAX_PHOTO_BYTES + 1])
    now = _now()
    rep = book.set_photo(int(rep["id"]), photo.sha256, photo.type, photo.size, actor=p.label, now=now)
    return _json(200, shape(rep, now=now))


@bp.get("/reports/<reportId>/photo")
def get_photo(reportId: str) -> Response:
    """The report's photo (to those who read personal fields at its place: photos show faces and plates)."""
    check_params(())
    receipt = report_receipt.presented()
    if receipt is not None:  # the filer's own photo, to their receipt
        rep = report_receipt.by_receipt(_reports(), reportId, receipt, _report_id)
    else:
        _, rep = _readable(reportId)
        require("read.personal", rep["chain"], what=f"report {rep['id']}")
    if not rep["photo"]:
        raise NotFoundError(f"report {rep['id']} has no photo")
    read_audit.record("report_photo", [rep["id"]])  # a receipt holder has no name: their own photo, unrecorded
    resp = Response(_photos().read(rep["photo"]), mimetype=rep["photo_type"])
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return report_receipt.private(resp) if receipt is not None else resp


def install(app: Any) -> None:
    """Build the report assigner (the rules: ``RULES``' ``[reports]`` section, else the defaults)."""
    from gridgeo.county.report_rules import ReportRules
    from gridgeo.county.rules import load_county_rules

    rules = load_county_rules(app.config["RULES"]).reports if app.config.get("RULES") else ReportRules()
    app.extensions["report_assigner"] = Assigner(app.extensions["county"], locator_for(app), rules,
                                                     app.extensions["people"])
    app.extensions["report_photos"] = photo_dir(app.config)
    app.extensions["report_throttle"] = Throttle(int(app.config.get("ANONYMOUS_REPORTS_PER_HOUR", 20)), 3600.0,
                                                 what="anonymous reports")
