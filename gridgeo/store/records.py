"""What a phone sends, checked before anything is stored: visits, status changes, a day's GPX track.

Every problem names the entry and the field (``visits[3].outcome: ...``) so
a worker's app can show which of a day's visits was refused; a batch is
stored all or none. Times are ISO 8601; one without an offset is China
Standard Time (UTC+8), the time a phone in the county shows.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import numpy as np

from gridgeo.data.registers import categories_of, priority_of
from gridgeo.errors import InputError, UsageError

from .base import Placed, Visit

CST = dt.timezone(dt.timedelta(hours=8), "CST")
OUTCOMES = ("visited", "absent", "refused")
#: a visit may be logged at most this far ahead of the server's clock (a phone's clock drifts)
CLOCK_SKEW = dt.timedelta(minutes=15)
MAX_NOTE = 2000
MAX_BATCH = 5000
_VISIT_FIELDS = {"household", "time", "outcome", "note", "uid"}
MAX_UID = 100
#: status fields a worker may change, and how each value is checked
STATUS_FIELDS = ("priority", "special")

Resolve = Callable[[str, str], Placed]


def parse_time(raw: Any, where: str) -> dt.datetime:
    """An aware datetime from ISO 8601 text (no offset: China Standard Time), or a :class:`UsageError`."""
    if not isinstance(raw, str):
        raise UsageError(f"{where}: must be an ISO 8601 time as text, got {raw!r}")
    try:
        t = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise UsageError(f"{where}: not an ISO 8601 time: {raw!r}") from None
    return t.replace(tzinfo=CST) if t.tzinfo is None else t


def utc_text(t: dt.datetime) -> str:
    """``t`` as the store keeps times (UTC, ``Z``)."""
    return t.astimezone(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _not_future(t: dt.datetime, where: str, now: dt.datetime) -> None:
    if t > now + CLOCK_SKEW:
        raise UsageError(f"{where}: {t.isoformat()} is in the future (server time {now.isoformat()})")


def parse_visits(body: Any, resolve: Resolve, *, now: dt.datetime | None = None) -> list[Visit]:
    """The visits of a ``POST /visits`` body (one object or a list of them), each placed by ``resolve``.

    ``resolve(household_id, where)`` returns the household's :class:`Placed` or raises naming ``where``.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise UsageError("visits: the list is empty")
    if len(items) > MAX_BATCH:
        raise UsageError(f"visits: at most {MAX_BATCH} in one request, got {len(items)}")
    now = now or dt.datetime.now(dt.timezone.utc)
    return [_visit(item, f"visits[{i}]" if isinstance(body, list) else "visit", resolve, now)
            for i, item in enumerate(items)]


def _visit(item: Any, where: str, resolve: Resolve, now: dt.datetime) -> Visit:
    if not isinstance(item, dict):
        raise UsageError(f"{where}: must be an object with household, time, outcome and note")
    unknown = sorted(set(item) - _VISIT_FIELDS)
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(unknown)}; a visit has "
                         f"{', '.join(sorted(_VISIT_FIELDS))}")
    for key in ("household", "time", "outcome"):
        if item.get(key) is None:
            raise UsageError(f"{where}.{key}: missing")
    hid = item["household"]
    if isinstance(hid, bool) or not isinstance(hid, int | str):
        raise UsageError(f"{where}.household: must be the households collection's item id, got {hid!r}")
    t = parse_time(item["time"], f"{where}.time")
    _not_future(t, f"{where}.time", now)
    if item["outcome"] not in OUTCOMES:
        raise UsageError(f"{where}.outcome: must be one of {', '.join(OUTCOMES)}, got {item['outcome']!r}")
    uid = item.get("uid")
    if uid is not None and (not isinstance(uid, str) or not 0 < len(uid.strip()) <= MAX_UID):
        raise UsageError(f"{where}.uid: must be text of 1 to {MAX_UID} characters (the phone's own id of the visit)")
    return Visit(resolve(str(hid), f"{where}.household"), utc_text(t), t.astimezone(CST).date().isoformat(),
                 str(item["outcome"]), note_text(item.get("note"), f"{where}.note"),
                 None if uid is None else uid.strip())


def note_text(raw: Any, where: str) -> str | None:
    """A free-text note as stored: None, or stripped text of at most :data:`MAX_NOTE` characters."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UsageError(f"{where}: must be text")
    if len(raw) > MAX_NOTE:
        raise UsageError(f"{where}: at most {MAX_NOTE} characters, got {len(raw)}")
    return raw.strip() or None


def parse_status(body: Any, *, now: dt.datetime | None = None) -> tuple[dict[str, Any], str | None, str]:
    """A status change: ``{"priority": "red"|"orange"|"yellow"|"none", "special": [...], "note", "time"}``.

    Returns the changed fields in canonical form (priority ``red``... or None for unmarked; special
    categories as a list), the note, and the time (UTC text).
    """
    if not isinstance(body, dict):
        raise UsageError("status: must be an object with priority and/or special (and note, time)")
    unknown = sorted(set(body) - {*STATUS_FIELDS, "note", "time"})
    if unknown:
        raise UsageError(f"status: unknown field(s) {', '.join(unknown)}; a status change has "
                         f"{', '.join(STATUS_FIELDS)}, note and time")
    changes: dict[str, Any] = {}
    if "priority" in body:
        p = priority_of(body["priority"])
        if p is False:
            raise UsageError(f"status.priority: must be red, orange, yellow or none, got {body['priority']!r}")
        changes["priority"] = p
    if "special" in body:
        raw = body["special"]
        if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
            raw = "、".join(raw)
        if raw is not None and not isinstance(raw, str):
            raise UsageError("status.special: must be a list of categories (text) or null")
        changes["special"] = list(categories_of(raw))
    if not changes:
        raise UsageError("status: nothing to change (give priority and/or special)")
    now = now or dt.datetime.now(dt.timezone.utc)
    t = parse_time(body["time"], "status.time") if body.get("time") is not None else now
    _not_future(t, "status.time", now)
    return changes, note_text(body.get("note"), "status.note"), utc_text(t)


# ------------------------------------------------------------------------------------------- GPX
MAX_TRACK_POINTS = 200_000


def parse_gpx(data: bytes, *, name: str = "upload") -> dict[str, Any]:
    """A day's walk from a GPX file: its points as a GeoJSON LineString (WGS84), start, end, length.

    Raises
    ------
    InputError
        Not GPX, no track points, bad coordinates or times, or points of more than one day (named).
    """
    try:
        root = ET.fromstring(data)  # expat refuses entity expansion bombs
    except ET.ParseError as exc:
        raise InputError(f"{name}: not a GPX file ({exc})") from None
    pts = [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "trkpt"]
    if len(pts) < 2:
        raise InputError(f"{name}: a track needs at least 2 <trkpt> points, found {len(pts)}")
    if len(pts) > MAX_TRACK_POINTS:
        raise InputError(f"{name}: at most {MAX_TRACK_POINTS} track points, found {len(pts)}")
    xy, times = _points(pts, name)
    days = sorted({t.astimezone(CST).date() for t in times})
    if len(days) > 1:
        raise InputError(f"{name}: a track is one day's walk; its points span {days[0]} to {days[-1]}")
    return {"day": (days[0] if days else dt.datetime.now(CST).date()).isoformat(),
            "started": utc_text(min(times)) if times else None, "ended": utc_text(max(times)) if times else None,
            "n_points": len(xy), "length_m": round(_length_m(np.asarray(xy)), 1),
            "geometry": '{"type":"LineString","coordinates":' + str([[round(x, 7), round(y, 7)] for x, y in xy])
            .replace(" ", "") + "}"}


def _points(pts: list[ET.Element], name: str) -> tuple[list[tuple[float, float]], list[dt.datetime]]:
    xy: list[tuple[float, float]] = []
    times: list[dt.datetime] = []
    for i, el in enumerate(pts):
        try:
            lon, lat = float(el.attrib["lon"]), float(el.attrib["lat"])
        except (KeyError, ValueError):
            raise InputError(f"{name}: <trkpt> {i + 1}: lat and lon must be numbers") from None
        if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not (math.isfinite(lon) and math.isfinite(lat)):
            raise InputError(f"{name}: <trkpt> {i + 1}: lon {lon}, lat {lat} out of range")
        xy.append((lon, lat))
        when = next((c.text for c in el if c.tag.rsplit("}", 1)[-1] == "time"), None)
        if when:
            try:
                times.append(parse_time(when.replace("Z", "+00:00"), f"<trkpt> {i + 1} time"))
            except UsageError as exc:
                raise InputError(f"{name}: {exc}") from None
    return xy, times


def _length_m(xy: np.ndarray) -> float:
    """Length of a WGS84 polyline in metres, along the ellipsoid's geodesics (pyproj's Geod)."""
    from pyproj import Geod

    return float(Geod(ellps="WGS84").line_length(xy[:, 0], xy[:, 1]))
