"""The places of a ``/locate`` request, checked one by one: one bad pair must not sink a batch.

A phone syncing 100,000 reports sends a few broken ones (a missing
coordinate, a string, latitude and longitude swapped). The body as a whole
must still be JSON of one of the two forms (else 400); inside it, each place
is checked on its own and a bad one only gets an ``error`` of its own in the
answer (see :func:`.locate.locate_post`). Well-formed numeric batches
take a vectorised fast path; only a batch with some odd entry is walked
place by place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import request
from numpy.typing import NDArray

from gridgeo.errors import UsageError

from .store import dumps

MAX_POINTS = 1_000_000
POST_FORMS = 'POST /locate takes JSON {"points": [[lon, lat], ...]} or a FeatureCollection of points'
#: how much of a bad entry an error message quotes
_ECHO = 60


@dataclass
class Positions:
    """The places of a batch in input order: ``xy`` (NaN where bad), ids, and the error of each bad one."""

    xy: NDArray[np.float64]
    #: JSON bytes of each feature's id, for a FeatureCollection body only
    ids: list[bytes] | None
    errors: list[str | None]
    #: each place's ``x, y`` as the body wrote them (JSON numbers), when the body is a plain list of pairs
    texts: list[bytes] | None = None

    def good(self) -> NDArray[np.int64]:
        """Indices of the places without an error."""
        return np.flatnonzero(np.array([e is None for e in self.errors], dtype=bool))

    def fail(self, idx: NDArray[np.int64], why: list[str]) -> None:
        """Mark the places ``idx`` bad, each with its message."""
        for i, msg in zip(idx.tolist(), why, strict=True):
            self.errors[i] = msg
            self.xy[i] = np.nan


def read_json() -> tuple[Any, bytes]:
    """The request body as JSON, and its bytes.

    Raises
    ------
    UsageError
        No JSON content type, not UTF-8, not JSON (the parser's message), or
        nested too deep for the parser (a ``RecursionError`` would be a 500).
    """
    if not request.is_json:
        raise UsageError("POST /locate needs a JSON body (Content-Type: application/json)")
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw), raw
    except RecursionError:
        raise UsageError("request body nested too deep to be a batch of places") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"request body is not UTF-8 JSON: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise UsageError(f"request body is not JSON: {exc}") from None


def _echo(value: Any) -> str:
    """A short quote of a bad entry for its error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError, TypeError):
        text = type(value).__name__
    return text if len(text) <= _ECHO else text[:_ECHO] + "…"


def _pair(what: str, value: Any, sizes: tuple[int, ...] | None) -> tuple[float, float] | str:
    """``[x, y]`` numbers from one entry, or the error message (``sizes``: allowed lengths, None: >= 2)."""
    ok_len = isinstance(value, list) and (len(value) in sizes if sizes else len(value) >= 2)
    # a GeoJSON position may carry more than the height; only its first two values are read
    nums = ok_len and all(isinstance(v, int | float) and not isinstance(v, bool)
                          for v in (value if sizes else value[:2]))
    if not nums:
        form = "[lon, lat] or [lon, lat, height]" if sizes else "[lon, lat]"
        return f"{what}: expected {form} numbers, got {_echo(value)}"
    x, y = _float(value[0]), _float(value[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return f"{what}: coordinates {_echo(value)} are not finite numbers"
    return x, y


def _points(raw: Any) -> tuple[NDArray[np.float64], list[str | None]]:
    """``[[x, y], ...]`` (a third value, the height, is ignored) -> (n, 2) array and per-entry errors."""
    if not isinstance(raw, list):
        raise UsageError("points must be a list of [lon, lat] pairs of numbers")
    if len(raw) > MAX_POINTS:
        raise UsageError(f"at most {MAX_POINTS} points per request; got {len(raw)}")
    try:
        arr = np.array(raw)
    except (TypeError, ValueError, OverflowError):  # ragged
        arr = np.empty(0)
    if arr.dtype.kind in "iuf" and arr.ndim == 2 and arr.shape[1] in (2, 3) and np.isfinite(arr).all():
        return arr[:, :2].astype(float).reshape(-1, 2), [None] * len(arr)
    if len(raw) == 0:
        return np.empty((0, 2)), []
    return _points_one_by_one(raw)


_NUM = (int, float)


def _points_one_by_one(raw: list[Any]) -> tuple[NDArray[np.float64], list[str | None]]:
    """The slow path, for a batch with some odd entry: a type test per entry, messages for the bad ones only.

    Why not :func:`_pair` for every entry: a phone's 100,000 places with one
    bad pair should cost about what they cost without it.
    """
    xy = np.full((len(raw), 2), np.nan)
    errors: list[str | None] = [None] * len(raw)
    good: list[int] = []
    pairs: list[Any] = []
    for k, p in enumerate(raw):
        if (type(p) is list and 2 <= len(p) <= 3 and type(p[0]) in _NUM and type(p[1]) in _NUM
                and (len(p) == 2 or type(p[2]) in _NUM)):
            good.append(k)
            pairs.append(p[:2])
        else:
            msg = _pair(f"point {k}", p, (2, 3))
            errors[k] = msg if isinstance(msg, str) else f"point {k}: expected [lon, lat] numbers"
    if good:
        idx = np.asarray(good, dtype=np.int64)
        try:
            xy[idx] = np.asarray(pairs, dtype=float)
        except OverflowError:  # an integer beyond float range somewhere: convert one by one
            xy[idx] = [[_float(a), _float(b)] for a, b in pairs]
        for k in idx[~np.isfinite(xy[idx]).all(axis=1)].tolist():
            errors[k] = f"point {k}: coordinates {_echo(raw[k])} are not finite numbers"
            xy[k] = np.nan
    return xy, errors


def _float(v: float) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf")


def _feature(k: int, f: Any) -> tuple[tuple[float, float] | str, bytes]:
    """One feature of a FeatureCollection: its ``[x, y]`` or error, and its id as JSON bytes."""
    if not isinstance(f, dict):
        return f"feature {k}: not a GeoJSON Feature object, got {_echo(f)}", b"null"
    fid = f.get("id")
    if fid is not None and (isinstance(fid, bool) or not isinstance(fid, str | int | float)
                            or (isinstance(fid, float) and not math.isfinite(fid))):
        return f"feature {k}: id must be a string or a number, got {_echo(fid)}", b"null"
    fid_bytes = dumps(fid)
    g = f.get("geometry")
    if g is None:
        return f"feature {k}: has no geometry", fid_bytes
    if not isinstance(g, dict) or g.get("type") != "Point":
        kind = _echo(g.get("type") if isinstance(g, dict) else g).strip('"')
        return f"feature {k}: only Point geometries can be located, got {kind}", fid_bytes
    return _pair(f"feature {k}", g.get("coordinates"), None), fid_bytes


def _features(feats: Any) -> tuple[NDArray[np.float64], list[str | None], list[bytes]]:
    """The Point features of a FeatureCollection -> (n, 2) array, per-feature errors, ids as JSON bytes."""
    if not isinstance(feats, list):
        raise UsageError("a FeatureCollection needs a features list")
    if len(feats) > MAX_POINTS:
        raise UsageError(f"at most {MAX_POINTS} points per request; got {len(feats)}")
    xy = np.full((len(feats), 2), np.nan)
    errors: list[str | None] = []
    fids: list[bytes] = []
    for k, f in enumerate(feats):
        got, fid = _feature(k, f)
        fids.append(fid)
        errors.append(got if isinstance(got, str) else None)
        if not isinstance(got, str):
            xy[k] = got
    return xy, errors, fids


#: what a list of pairs of JSON numbers is written with, spaces aside (see :func:`_pair_texts`)
_NUMERIC = b"0123456789eE+-.,[]"


def _pair_texts(doc: Any, raw: bytes | None, n: int) -> list[bytes] | None:
    """Each place's ``x,y`` text as the body wrote it, when the body is ``{"points": [[x, y], ...]}`` only.

    Why: the answer repeats each place's coordinates, and writing 200,000 floats back (``repr``) cost
    0.19 s of a 1.3 s batch; cutting them out of the body costs about 0.02 s (bytes methods, no regular
    expression). Only then is it safe: the body has been parsed as JSON and is one member holding pairs
    of numbers, so from its first ``[`` to its last ``]`` it is that list; it must hold nothing but
    digits, signs, exponents, points, commas and brackets (a tab or a line break: answered from the
    parsed numbers, so the answer stays one line), ``n`` places split at ``],[``, and ``2n - 1`` commas
    in all (one in each pair: no height).
    """
    if raw is None or n == 0 or not (isinstance(doc, dict) and len(doc) == 1 and "points" in doc):
        return None
    inner = raw[raw.find(b"[") + 1:raw.rfind(b"]")].replace(b" ", b"")
    if inner[:1] != b"[" or inner[-1:] != b"]" or inner.translate(None, _NUMERIC):
        return None
    if inner.count(b",") != 2 * n - 1 or inner.count(b"[") != n:
        return None
    texts = inner[1:-1].split(b"],[")
    return texts if len(texts) == n else None


def parse_positions(doc: Any, raw: bytes | None = None) -> Positions:
    """``{"points": [[x, y], ...]}`` and/or a FeatureCollection of points -> :class:`Positions`.

    The ids are those of the features, when the body is a FeatureCollection only. ``raw``: the body's
    bytes, so that a plain list of pairs keeps each place's text (:attr:`Positions.texts`).

    Raises
    ------
    UsageError
        When the body is neither form, or holds more than :data:`MAX_POINTS` places.
    """
    if not isinstance(doc, dict):
        raise UsageError(POST_FORMS)
    chunks: list[NDArray[np.float64]] = []
    errors: list[str | None] = []
    ids: list[bytes] | None = None
    texts = None
    if "points" in doc:
        xy, errs = _points(doc["points"])
        chunks.append(xy)
        errors += errs
        if errs and errs[0] is None and all(e is None for e in errs):
            texts = _pair_texts(doc, raw, len(xy))
    if doc.get("type") == "FeatureCollection":
        xy, errs, fids = _features(doc.get("features"))
        chunks.append(xy)
        errors += errs
        if "points" not in doc:
            ids = fids
    if not chunks:
        raise UsageError(POST_FORMS)
    arr = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    if len(arr) > MAX_POINTS:
        raise UsageError(f"at most {MAX_POINTS} points per request; got {len(arr)}")
    return Positions(np.array(arr, dtype=float).reshape(-1, 2), ids, errors, texts)


def out_of_range(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    """True where a lon/lat pair is off the globe (lon outside [-180, 180], lat outside [-90, 90]) or not finite."""
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)
    return ~ok


def range_message(what: str, lon: float, lat: float, *, order: str = "lon, lat") -> str:
    """Why ``lon``/``lat`` (as given, in degrees) is not a place: the coordinate out of range, named.

    ``order`` is the axis order the client should have used, quoted when the pair looks swapped.
    """
    if not abs(lat) <= 90.0:
        swapped = f" (the order is {order}: swapped?)" if abs(lon) <= 90.0 else ""
        return f"{what}: latitude {lat!r} is outside [-90, 90]{swapped}"
    return f"{what}: longitude {lon!r} is outside [-180, 180]"


def check_degrees(pos: Positions, idx: NDArray[np.int64], *, lat_first: bool) -> None:
    """Mark the places ``idx`` whose degrees (as given, in axis order ``lat_first``) are off the globe."""
    a, b = pos.xy[idx, 0], pos.xy[idx, 1]
    lon, lat = (b, a) if lat_first else (a, b)
    bad = np.flatnonzero(out_of_range(lon, lat))
    kind = "point" if pos.ids is None else "feature"
    order = "lat, lon" if lat_first else "lon, lat"
    pos.fail(idx[bad], [range_message(f"{kind} {i}", float(lon[j]), float(lat[j]), order=order)
                        for i, j in zip(idx[bad].tolist(), bad.tolist(), strict=True)])
