"""The gridgeo HTTP service (installed as ``gridgeo.service``): ``create_app(config)`` builds the Flask app.

Blueprints, one module per API part: :mod:`.features` (OGC API – Features
Part 1 and 2: landing page, conformance, collections, items), :mod:`.openapi`
(``/api``), :mod:`.locate`, :mod:`.patrol`, :mod:`.pages` (``/map``); request
parsing they share is in :mod:`.ogc`, the places of a ``POST /locate`` body
(checked one by one) in :mod:`.positions`, the pre-serialised county in
:mod:`.store`, the HTML pages in :mod:`.html`. Views only parse the request,
call :mod:`gridgeo`, and shape the response. What every response shares is
here: errors as ``application/problem+json`` through the one table in
:mod:`gridgeo.errors` (their ``detail`` without server paths, :mod:`.redact`),
strong ETags with ``If-None-Match`` → 304, CORS; gzip, the access log and
reverse-proxy headers are in :mod:`.middleware`.

May import any :mod:`gridgeo` package; the library never imports the service.
Inside the package imports are relative: the top-level name ``service`` is
never imported (it is not installed under that name).
"""

from __future__ import annotations

import gc
import hashlib
import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from gridgeo.errors import GridgeoError, http_status

from .middleware import install as install_middleware
from .redact import redact
from .store import dumps

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
#: headers a browser client may read (CORS hides the others)
_EXPOSE = "ETag, Content-Crs, Link, Content-Disposition"


def problem(status: int, title: str, detail: str) -> Response:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(dumps(body), status=status, mimetype=PROBLEM)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app.

    Parameters
    ----------
    config
        ``COUNTY``: the GeoPackage to serve (read and pre-serialised once,
        here, so no request pays for it). ``DEFAULT_LIMIT`` (10) and
        ``MAX_LIMIT`` (10,000): items per page. ``TITLE``: the landing title.
        ``NETWORK``: the street network for ``/patrol`` (an OSM file or a
        GeoPackage with a ``roads`` layer) when the county has no ``roads``
        layer, as a built county does not. ``RULES``: a county rules file (TOML) whose ``[patrol]``
        section sets ``/patrol``'s defaults (budget, speed, visit rules, campaign, start and end);
        requests override them one by one. ``PROXY``: reverse proxies in front whose ``X-Forwarded-*``
        headers are trusted (off by default), ``GZIP_LEVEL`` / ``GZIP_MIN_SIZE``: see :mod:`.middleware`.
        ``STORE``: the writable store (default: the ``COUNTY`` file itself; a ``postgresql://`` URL);
        its tables come with its first user (``gridgeo users add``), so serving never changes the file.
        ``ANONYMOUS``: what a client without a token reads, ``public`` (geometry, codes, counts: the
        default) or ``none``. ``AUTH_FAILURES`` (10) failed sign-ins per ``AUTH_WINDOW`` (60 s) from one
        address, then 429 until the window has passed. ``ANONYMOUS_REPORTS`` (off): residents may file
        ``POST /reports`` without a token, ``ANONYMOUS_REPORTS_PER_HOUR`` (20) from one address, then 429;
        ``PHOTOS``: where report photos are kept (default: a
        ``COUNTY.photos`` directory beside the county file); ``CLOCK``: a callable giving the current
        aware datetime (deadlines; tests inject one). The ``RULES`` file's ``[reports]`` section sets the
        report categories, deadlines and escalation ladder (:mod:`gridgeo.county.report_rules`).
        ``LAZY_AT`` (50,000): a layer with more features (or more than 8 MiB of geometry) is served from
        the GeoPackage or the PostGIS table page by page instead of held in memory (:mod:`.lazy`,
        :mod:`.lazy_pg`); None: none is. ``WARM`` (True): when a layer is served from the GeoPackage, the file
        is read once into the operating system's page cache in a background thread (:mod:`.warm`), so the
        first reads of a page do not wait for the disk; skipped for a file above half the available memory.
    """
    app = Flask(__name__)
    from .store import LAZY_AT

    app.config.update(JSON_AS_ASCII=False, MAX_LIMIT=10_000, DEFAULT_LIMIT=10, TITLE="gridgeo", LAZY_AT=LAZY_AT,
                      MAX_CONTENT_LENGTH=64 * 1024 * 1024)
    app.config.update(config or {})
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    path = _load(app)
    _register(app)
    install_middleware(app)  # gzip, access log, PROXY (:mod:`.middleware`)
    # the county is hundreds of thousands of long-lived objects; moving them out of the collector's
    # generations keeps full collections (and so the p99 latency) from walking them on every sweep
    gc.collect()
    gc.freeze()
    log.info("app ready: %d collections from %s", len(app.extensions["county"].collections), path or "(none)")
    return app


def _load(app: Flask) -> Any:
    """Read the county once (``COUNTY``) and build what the views share: locator, planner, store, chains."""
    from gridgeo.store.chains import PARENT_COLUMNS, Chains

    from .auth import install
    from .locate import Locator, _people
    from .patrol import Planner
    from .records import open_writable, overlay_statuses
    from .reports import install as install_reports
    from .store import County, load_county

    path = app.config.get("COUNTY")
    county = load_county(path, lazy_at=app.config["LAZY_AT"]) if path else County("", {}, "1970-01-01T00:00:00Z")
    app.extensions["county"] = county
    app.extensions["people"] = _people(county.path, county.tables)  # for /locate's answers and report handlers

    def chains() -> Chains:
        return Chains({k: c.table(["code", *PARENT_COLUMNS[k]]) for k, c in county.collections.items()
                       if k in PARENT_COLUMNS})

    _warm(app, county)
    background = _background(app, county)
    app.extensions["chains"] = Later(chains, "chains of units") if background else chains()
    _start_locator(app, county, Locator, background)
    install_reports(app)  # the roster comes from the county's tables, read with the layers (no GDAL here)
    store = open_writable(app.config.get("STORE", path))
    app.extensions["store"] = store
    overlay_statuses(county, store)
    install(app, store)
    app.extensions["planner"] = Planner(str(path), app.config.get("NETWORK"), _patrol_options(app),
                                        store=store, frames=county.frames, **_by_township(app, county)
                                        ) if path else None
    return county.path  # a URL without its password


def _warm(app: Flask, county: Any) -> None:
    """Start reading the county file into the page cache when a layer is served from it (``WARM``)."""
    from .warm import Warmer

    file = Path(county.path) if county.path and "://" not in county.path else None
    lazy = any(county.is_lazy(name) for name in county.collections)
    if file is not None and lazy and app.config.get("WARM", True) and file.is_file():
        app.extensions["warm"] = Warmer(file).start()


def _by_township(app: Flask, county: Any) -> dict[str, Any]:
    """The patrol planner's township-by-township set-up for a county whose roads are served from the file.

    Why: such a county (a province) has a street network no server holds as one graph; a round never leaves
    its township, so each township is opened for planning on its own (:class:`.patrol.Regions`).
    """
    from .patrol import Regions

    if app.config.get("NETWORK") or not county.is_lazy("roads") or not {"grids", "townships"} <= set(
            county.collections):
        return {}
    log.info("patrol: the street network is read township by township (roads are served from the file)")
    regions = Regions(county.get("grids"), county.get("townships"),
                      lambda code: tuple(app.extensions["chains"].chain(code)))
    return {"regions": regions, "region": county.region}


class Later:
    """A value made in a thread at start-up; using it (an attribute, ``in``) waits until it is made.

    Why: the chains of units of a county of 600,000 units take seconds; a page for anonymous users needs
    none, so it need not wait for them, and the first request that does waits only for what is left.
    """

    def __init__(self, make: Any, what: str) -> None:
        import threading

        self._value: Any = None
        self._error: BaseException | None = None
        self._what = what

        def run() -> None:
            try:
                self._value = make()
            except BaseException as exc:  # kept, raised to every user of the value
                self._error = exc
                log.exception("building the %s failed", what)

        self._thread = threading.Thread(target=run, name=what, daemon=True)
        self._thread.start()

    def get(self) -> Any:
        """The value, once made (raises what making it raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __contains__(self, item: object) -> bool:
        return item in self.get()


def _background(app: Flask, county: Any) -> bool:
    """Whether the indexes are built in threads: ``LOCATE_BACKGROUND`` if set, else when a level is lazy."""
    from .locate import LEVEL_KEYS

    background = app.config.get("LOCATE_BACKGROUND")
    if background is None:
        background = any(county.is_lazy(layer) for layer in LEVEL_KEYS.values())
    return bool(background)


def _start_locator(app: Flask, county: Any, make: Any, background: bool) -> None:
    """Build the /locate index now, or, for a county whose levels are served from the file, in a thread.

    Why a thread: indexing hundreds of thousands of level polygons takes seconds the pages need not wait
    for; /locate waits for it a little, then answers 503 with Retry-After (:func:`.locate._locator`).
    ``LOCATE_BACKGROUND``: True or False forces one way; None (default): a thread when a level is lazy.
    """
    import threading

    ready = threading.Event()
    app.extensions["locator_ready"] = ready

    def build() -> None:
        chains = app.extensions.get("chains")
        if isinstance(chains, Later):  # one thing at a time: the chains first, the sooner to serve people's data
            chains._thread.join()
        try:
            app.extensions["locator"] = make(county, people=app.extensions["people"])
        except Exception:  # logged; /locate then answers 503 naming the log, every other route still serves
            log.exception("the /locate index could not be built")
            app.extensions["locator_error"] = True
        finally:
            ready.set()

    if background:
        threading.Thread(target=build, name="locate-index", daemon=True).start()
        log.info("building the /locate index in the background")
    else:
        build()


def _patrol_options(app: Flask) -> Any:
    """``/patrol``'s options: the ``[patrol]`` section of the ``RULES`` file (checked at start-up), else defaults."""
    from gridgeo.county.rules import load_county_rules
    from gridgeo.patrol import PatrolOptions, options_from_rules

    rules = app.config.get("RULES")
    return options_from_rules(load_county_rules(rules).patrol) if rules else PatrolOptions()


def _register(app: Flask) -> None:
    """The blueprints, the error handlers, the shared headers and ``/health``."""
    from .edits import bp as edits_bp
    from .features import bp as features_bp
    from .locate import bp as locate_bp
    from .locks import bp as locks_bp
    from .openapi import bp as openapi_bp
    from .pages import bp as pages_bp
    from .patrol import bp as patrol_bp
    from .proposals import bp as proposals_bp
    from .records import bp as records_bp
    from .reports import bp as reports_bp
    from .users import bp as users_bp
    from .versions import bp as versions_bp

    # edits first: its OPTIONS of an item (the caller's methods) before the one Flask makes for the GET
    for bp in (edits_bp, features_bp, openapi_bp, locate_bp, locks_bp, patrol_bp, pages_bp, proposals_bp, records_bp,
               reports_bp, users_bp, versions_bp):
        app.register_blueprint(bp)
    app.register_error_handler(GridgeoError, _gridgeo_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_headers)
    app.add_url_rule("/health", "health", _health, methods=["GET"])


def _detail(text: str, path: str | None = None) -> str:
    """``text`` without the server's file paths (:mod:`.redact`); when it had some, the full text is logged."""
    cfg = current_app.config
    public = redact(text, (path, cfg.get("COUNTY"), cfg.get("NETWORK"), cfg.get("RULES")))
    if public != text:
        log.warning("%s: %s (the client was told: %s)", request.path, text, public)
    return public


def _gridgeo_error(err: GridgeoError) -> Response:
    status = http_status(err)
    if status >= 500:
        log.exception("request failed: %s", request.url)
    resp = problem(status, type(err).__name__, _detail(str(err), err.path))
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="gridgeo"'
    retry = getattr(err, "retry_after", None)
    if retry is not None:
        resp.headers["Retry-After"] = str(retry)
    return resp


def _http_error(err: HTTPException) -> Response:
    resp = problem(err.code or 500, err.name, err.description or err.name)
    if err.code == 405 and err.valid_methods:  # type: ignore[attr-defined]
        resp.headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
    return resp


def _unexpected(err: Exception) -> Response:
    if isinstance(err, HTTPException):
        return _http_error(err)
    log.exception("internal error on %s", request.url)
    return problem(500, "InternalError", _detail(f"{type(err).__name__}: {err}"))


def _headers(resp: Response) -> Response:
    """CORS on every response; ``Vary: Accept`` and a strong ETag (304 on a match) on GETs."""
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Expose-Headers"] = _EXPOSE
    if request.method == "OPTIONS":
        resp.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = (
            request.headers.get("Access-Control-Request-Headers")
            or "Accept, Authorization, Content-Type, If-Match, If-None-Match, X-Report-Receipt")
        resp.headers["Access-Control-Max-Age"] = "86400"
        return resp
    if "Accept" not in resp.headers.get("Vary", ""):
        resp.vary.add("Accept")
    if request.headers.get("Authorization"):
        # what a signed-in user sees is theirs: no shared cache may hand it to the next client
        resp.vary.add("Authorization")
        resp.headers["Cache-Control"] = "private, no-store"
    if (request.method in ("GET", "HEAD") and resp.status_code == 200 and not resp.is_streamed
            and not resp.direct_passthrough):  # files sent by send_file keep their own ETag
        # strong ETag over the exact bytes: a change of data, format, CRS or page changes it
        resp.set_etag(hashlib.blake2b(resp.get_data(), digest_size=16).hexdigest())
        resp.make_conditional(request)
    return resp


def _health() -> Any:
    out: dict[str, Any] = {"status": "ok", "layers": list(current_app.extensions["county"].collections)}
    warm = current_app.extensions.get("warm")
    if warm is not None:
        out["page_cache"] = warm.health()
    return out
