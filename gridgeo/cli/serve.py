"""``gridgeo serve``: the county over HTTP on waitress (OGC API – Features, locate, patrol, the map).

The address is bound first, before the county is read (seconds on a big
one), so a port in use or an address not of this machine is a one-line
error at once, not "serving at ..." followed by a traceback. Connections
that arrive while the county loads wait in the listen queue and are answered
once it is ready.
"""

from __future__ import annotations

import argparse
import errno
import logging
import logging.handlers
import sys
from typing import Any

from gridgeo.errors import OutputError, UsageError

#: what to do about a failed bind, by errno
_BIND_ADVICE = {
    errno.EADDRINUSE: "the port is already in use (another gridgeo serve, or another server); stop it or choose "
                      "another --port",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's; use --host 127.0.0.1 (this machine only), "
                         "0.0.0.0 (every interface) or one of its own addresses",
    errno.EACCES: "permission denied (ports below 1024 need root); use a port from 1024 up, behind a reverse "
                  "proxy on 80/443",
}


def register(sub: Any) -> None:
    """Add the ``serve`` subcommand."""
    sv = sub.add_parser("serve", help="serve a county (GeoPackage or PostGIS database) over HTTP (waitress)")
    sv.add_argument("path", help="county GeoPackage, or postgresql://user:password@host:port/database holding a "
                    "county loaded by gridgeo load")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=_port, default=8000, help="port, 1-65535 (default 8000; 0: any free one)")
    sv.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    sv.add_argument("--network", help="street network for /patrol: OSM file or GeoPackage with a roads layer "
                    "(default: the county's own roads layer)")
    sv.add_argument("--store", help="the writable store (users, visits, audit): a postgresql:// URL "
                    "(default: the county GeoPackage itself)")
    sv.add_argument("--rules", help="county rules file (TOML) whose [patrol] section sets /patrol's defaults")
    sv.add_argument("--proxy", default="0", metavar="N",
                    help="trust the X-Forwarded-For/-Proto/-Host/-Port/-Prefix headers of the N reverse proxies in "
                         "front (links then carry the address clients use, the access log their address); per "
                         "header: for=1,proto=1,host=1,prefix=1 (default 0: the headers are ignored)")
    sv.add_argument("--access-log", metavar="PATH|-",
                    help="one line per request (combined log format + milliseconds) appended to PATH, or - for "
                         "stdout (default: none)")
    sv.add_argument("--no-warm", dest="warm", action="store_false",
                    help="do not read the county file into the page cache at start-up (by default it is, in the "
                         "background, when a layer is served from the file and the file fits in half the free "
                         "memory, so first reads do not wait for the disk)")
    sv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Bind, read the county, then serve it on waitress (a production WSGI server); the URL is logged once the
    data is loaded."""
    from gridgeo.service import create_app
    from gridgeo.service.middleware import proxy_counts

    served = logging.getLogger("gridgeo.serve")
    served.setLevel(logging.INFO)  # the URL is the one line a user of `make run` needs, even without -v
    proxy = proxy_counts(args.proxy)  # a bad value fails before anything else
    access_log(args.access_log)
    app = _Deferred()
    server = listen(app, host=args.host, port=args.port, threads=args.threads, proxied=bool(proxy))
    try:
        config = {"COUNTY": args.path, "NETWORK": args.network, "RULES": args.rules, "PROXY": proxy,
                  "WARM": getattr(args, "warm", True)}
        if args.store:
            config["STORE"] = args.store
        app.target = create_app(config)
    except BaseException:
        _close(server)
        raise
    port = args.port or _bound_port(server)
    served.info("serving %s at http://%s/ (map at /map, API at /api; Ctrl-C to stop)",
                app.target.extensions["county"].path, _where(args.host, port))  # a URL without its password
    server.run()
    return 0


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(text: str) -> int:
    """``--port``: a whole number 0-65535 (the socket layer would wrap a larger one around silently)."""
    try:
        port = int(text)
    except ValueError:
        raise UsageError(f"--port must be a whole number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535 (or 0: any free port), got {port}")
    return port


def _bound_port(server: Any) -> int:
    """The port the OS chose for ``--port 0`` (one server, or the first of several for a name like localhost)."""
    listening = getattr(server, "effective_listen", None)
    return int(listening[0][1]) if listening else int(server.effective_port)


class _Deferred:
    """The WSGI app handed to waitress before the county is loaded; it calls ``target`` once that is set.

    No request reaches it earlier: waitress answers none before ``run()``.
    """

    target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.target(environ, start_response)


def listen(app: Any, *, host: str, port: int, threads: int, proxied: bool = False) -> Any:
    """A waitress server bound to ``host:port`` (not yet serving: call ``run()``).

    ``proxied``: the app trusts ``X-Forwarded-*`` (``PROXY``, werkzeug's
    ProxyFix), so waitress must pass them on; by default it removes
    ``X-Forwarded-For/-Host/-Proto/-Port`` as untrusted before the app sees them.

    Raises
    ------
    UsageError
        When the address cannot be had: the port in use, an address not of
        this machine, a privileged port, a host name that does not resolve;
        one line naming ``host:port`` and what to do.
    """
    from waitress.server import create_server

    where = _where(host, port)
    try:
        return create_server(app, host=host, port=port, threads=threads, ident="gridgeo",
                             clear_untrusted_proxy_headers=not proxied)
    except OSError as exc:
        why = _BIND_ADVICE.get(exc.errno or 0) or exc.strerror or str(exc)
        raise UsageError(f"cannot listen on {where}: {why}") from None
    except ValueError as exc:  # waitress: a host name that does not resolve
        raise UsageError(f"cannot listen on {where}: {host!r} is not an address or a host name this machine "
                         f"resolves (waitress: {exc})") from None


def _close(server: Any) -> None:
    """Release the bound socket(s) and the worker threads of a server that will not run."""
    server.close()
    server.task_dispatcher.shutdown()


def access_log(target: str | None) -> None:
    """Send the ``gridgeo.access`` lines to ``target`` (a file, appended; ``-``: stdout), or nowhere (None).

    Off by default: behind a reverse proxy its own log already has every
    request, and a line holds the client's address and the query, which for
    ``/locate`` and ``/patrol`` is where someone lives; a county keeps that
    only when it decides to. A file is opened with ``WatchedFileHandler``, so
    logrotate can move it away and the next line goes to a new file. Lines
    never go to the diagnostics on stderr (``-v``).

    Raises
    ------
    OutputError
        When the file cannot be opened for appending.
    """
    log = logging.getLogger("gridgeo.access")
    log.propagate = False
    for old in list(log.handlers):
        log.removeHandler(old)
    if not target:
        log.setLevel(logging.WARNING)  # AccessLog then measures nothing
        return
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        try:
            handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"cannot open the access log for appending: {exc.strerror or exc}",
                              path=target) from None
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
