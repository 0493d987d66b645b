"""Serving in production: gzip, an access log and trusted reverse proxies, all installed by :func:`install`.

Why here and not in a front server: a county often runs ``gridgeo serve`` on
its own (waitress, no nginx), and QGIS or the map then pull pages of 1,000
grids (1.8 MB of GeoJSON, 4.6x smaller gzipped) over a township's link.

- **gzip** (:func:`_gzip`, an ``after_request`` hook that runs after every
  other, so after the ETag hook of :mod:`gridgeo.service`): text bodies of
  :data:`COMPRESSIBLE` types from ``GZIP_MIN_SIZE`` bytes up, when the
  client's ``Accept-Encoding`` takes gzip. The gzip variant is another
  representation, so it has its own strong ETag (the identity tag + ``-gzip``)
  and ``If-None-Match`` with it is a 304 (Apache's mod_deflate got this
  wrong for years); ``Vary: Accept-Encoding`` tells caches the body depends
  on it. Streamed and ``send_file`` bodies are left alone (their length is
  not known up front and ``send_file`` answers ``Range`` requests).
- **access log** (:class:`AccessLog`, WSGI): one line per request, Apache's
  combined format plus the milliseconds until the body was sent, to the
  logger ``gridgeo.access`` (off unless a handler is set up for it:
  ``gridgeo serve --access-log``).
- **reverse proxy** (``PROXY``): werkzeug's ``ProxyFix`` trusts the last N
  hops' ``X-Forwarded-For/-Proto/-Host/-Port/-Prefix``, so links say
  ``https://gis.county.gov.cn/grid/...`` and the log the client's address.
  Off by default: without a proxy in front, anyone could send those headers
  and have the service write their host into every link.
"""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from gridgeo.errors import UsageError

access_log = logging.getLogger("gridgeo.access")

#: media types (without parameters) worth compressing: JSON, GeoJSON, OpenAPI, problems, HTML, GPX, CSS, JS
COMPRESSIBLE = frozenset({
    "application/json", "application/geo+json", "application/problem+json", "application/vnd.oai.openapi+json",
    "text/html", "application/gpx+xml", "text/css", "text/javascript", "application/javascript", "text/plain",
})
#: zlib level: 4 is the knee on a page of 1,000 grids (bench/README.md "Compression"): 4.6x in 23 ms, where
#: 6 (zlib's default) takes 53 ms for 4.8x and 1 takes 13 ms for 4.0x
GZIP_LEVEL = 4
#: below this a body fits one TCP segment either way; gzip would cost CPU and save no round trip
GZIP_MIN_SIZE = 1024
#: gzip bodies kept by identity ETag (bytes): every map user and every QGIS asks for the same pages of the
#: levels, so a repeat costs the hash the ETag hook takes anyway instead of the compression (8x the page)
GZIP_CACHE_BYTES = 32 * 1024 * 1024
#: ``ProxyFix`` arguments ``PROXY`` may set, and their short names on the command line (``for=1,proto=1``)
PROXY_KEYS = ("x_for", "x_proto", "x_host", "x_port", "x_prefix")


def install(app: Flask) -> None:
    """Register gzip, the access log and (with ``PROXY``) ProxyFix on ``app``.

    Config keys: ``GZIP_LEVEL`` (0 turns gzip off, e.g. when nginx in front
    compresses), ``GZIP_MIN_SIZE`` and ``GZIP_CACHE_BYTES`` (bytes), ``PROXY``
    (see :func:`proxy_counts`).
    """
    app.config.setdefault("GZIP_LEVEL", GZIP_LEVEL)
    app.config.setdefault("GZIP_MIN_SIZE", GZIP_MIN_SIZE)
    app.config.setdefault("GZIP_CACHE_BYTES", GZIP_CACHE_BYTES)
    app.extensions["gzip_cache"] = GzipCache(int(app.config["GZIP_CACHE_BYTES"]))
    # after_request hooks run last-registered first: at the front of the list, gzip runs after all others
    app.after_request_funcs.setdefault(None, []).insert(0, _gzip)
    app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    counts = proxy_counts(app.config.get("PROXY"))
    if counts:  # outermost, so the access log sees the client's address
        app.wsgi_app = ProxyFix(app.wsgi_app, **counts)  # type: ignore[method-assign]


def proxy_counts(value: Any) -> dict[str, int]:
    """``ProxyFix``'s arguments from ``PROXY``: how many proxies in front are trusted, per header.

    ``value`` is a number N (every header from the last N proxies), a mapping
    such as ``{"x_for": 1, "x_proto": 1}``, or the command line's text: ``"1"``
    or ``"for=1,proto=1,host=1,prefix=1"``. None, 0 or ``""``: no proxy (empty).

    Raises
    ------
    UsageError
        For an unknown header name or a count that is not a whole number >= 0.
    """
    if value is None or value == "" or value is False:
        return {}
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.isdigit() else _parse_counts(value)
    if isinstance(value, bool) or not isinstance(value, int | Mapping):
        raise UsageError(f"PROXY must be a number of proxies or per-header counts, got {value!r}")
    if isinstance(value, int):
        items: dict[str, Any] = dict.fromkeys(PROXY_KEYS, value)
    else:
        items = {k if k.startswith("x_") else f"x_{k}": v for k, v in value.items()}
    unknown = sorted(set(items) - set(PROXY_KEYS))
    if unknown:
        raise UsageError(f"proxy: unknown header {', '.join(k[2:] for k in unknown)}; use "
                         f"{', '.join(k[2:] for k in PROXY_KEYS)}")
    for k, v in items.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise UsageError(f"proxy: {k[2:]}={v!r} must be a whole number of proxies >= 0")
    # every key given: ProxyFix's own defaults (for=1, proto=1) would trust headers nobody asked to trust
    return {k: items.get(k, 0) for k in PROXY_KEYS} if any(items.values()) else {}


def _parse_counts(text: str) -> dict[str, Any]:
    """``"for=1,proto=1"`` as ``{"for": 1, "proto": 1}`` (a value that is not a number is left for the check)."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, count = part.partition("=")
        if not sep:
            raise UsageError(f"proxy: {part!r} is not HEADER=COUNT; e.g. --proxy 1 or --proxy for=1,proto=1")
        out[name.strip().replace("-", "_").lower()] = int(count) if count.strip().isdigit() else count.strip()
    return out


# ------------------------------------------------------------------------------------------------ gzip
class GzipCache:
    """gzip bodies by (identity ETag, level), the least recently used dropped beyond ``limit`` bytes.

    The identity ETag is a hash of the exact bytes, so a hit is the same
    body; threads share it under one lock (held for dict operations only).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is not None:
                self._items.move_to_end(key)
            return body

    def put(self, key: tuple[str, int], body: bytes) -> None:
        if len(body) > self.limit:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self.size += len(body)
            while self.size > self.limit:
                _, old = self._items.popitem(last=False)
                self.size -= len(old)

    def __len__(self) -> int:
        return len(self._items)


def _compressible(resp: Response) -> bool:
    """A buffered body of a text type, not yet encoded, that a cache may transform."""
    return (resp.mimetype in COMPRESSIBLE and not resp.is_streamed and not resp.direct_passthrough
            and "Content-Encoding" not in resp.headers
            and "no-transform" not in resp.headers.get("Cache-Control", ""))


def _gzip(resp: Response) -> Response:
    """gzip the body when the client takes it (see the module docstring); the ETag gets ``-gzip``."""
    if not _compressible(resp):
        return resp
    resp.vary.add("Accept-Encoding")  # on every variant, identity and 304 included, so caches key on it
    level = int(current_app.config["GZIP_LEVEL"])
    if (level <= 0 or resp.status_code < 200 or resp.status_code in (204, 206, 304, 412)
            or request.accept_encodings["gzip"] <= 0):
        return resp
    data = resp.get_data()
    if len(data) < int(current_app.config["GZIP_MIN_SIZE"]):
        return resp
    etag, weak = resp.get_etag()
    if etag is None:  # a POST's answer: compressed once, not kept
        resp.set_data(gzip.compress(data, compresslevel=level, mtime=0))
    else:
        resp.set_etag(f"{etag}-gzip", weak=bool(weak))
        resp.make_conditional(request)  # the client may hold the gzip variant: a 304 without compressing
        if resp.status_code == 304:
            return resp
        cache: GzipCache = current_app.extensions["gzip_cache"]
        body = cache.get((etag, level))
        if body is None:
            # mtime=0: the same page gives the same bytes, as a strong ETag promises
            body = gzip.compress(data, compresslevel=level, mtime=0)
            cache.put((etag, level), body)
        resp.set_data(body)
    resp.headers["Content-Encoding"] = "gzip"
    return resp


# ------------------------------------------------------------------------------------------ access log
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: as Apache does: ``"`` and ``\\`` escaped, control and non-ASCII bytes as ``\\xhh``, so a header cannot
#: forge a log line or break the quoting
_ESCAPES = {i: f"\\x{i:02x}" for i in range(256) if not 32 <= i < 127} | {ord('"'): '\\"', ord("\\"): "\\\\"}
#: characters left as they are in the logged path (the rest percent-encoded, as on the wire)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _esc(text: str) -> str:
    return text.translate(_ESCAPES)


def access_line(environ: Mapping[str, Any], status: str, sent: int, ms: float) -> str:
    """One line of the combined log format, plus the milliseconds: ``addr - user [time] "request" status
    bytes "referer" "user agent" 12.3ms`` (the path as the client sent it, the proxy's prefix included)."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    target = quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE)
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    req = f"{environ.get('REQUEST_METHOD', '-')} {target} {environ.get('SERVER_PROTOCOL', '-')}"
    now = dt.datetime.now().astimezone()
    stamp = f"{now.day:02d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S %z}"
    return (f"{environ.get('REMOTE_ADDR') or '-'} - {_esc(environ.get('REMOTE_USER') or '-')} [{stamp}] "
            f'"{_esc(req)}" {status} {sent or "-"} "{_esc(environ.get("HTTP_REFERER", "-"))}" '
            f'"{_esc(environ.get("HTTP_USER_AGENT", "-"))}" {ms:.1f}ms')


class AccessLog:
    """WSGI middleware: a line to ``gridgeo.access`` once a response's body is sent (or the request failed).

    Nothing is measured while the logger is off for INFO (no handler set up
    by ``gridgeo serve``), so the default costs one check per request.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not access_log.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        t0 = time.perf_counter()
        status = ["-"]

        def start(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        def done(sent: int) -> None:
            access_log.info("%s", access_line(environ, status[0], sent, (time.perf_counter() - t0) * 1000))

        try:
            body = self.app(environ, start)
        except BaseException:
            status[0] = "500"
            done(0)
            raise
        return _Counted(body, done)


class _Counted:
    """The body, counting the bytes the server takes from it; ``close`` (PEP 3333: the server calls it once
    the response is sent or the client went away) writes the log line."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self._sent = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._sent)
