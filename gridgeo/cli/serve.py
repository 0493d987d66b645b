"""``gridgeo serve``: the county over HTTP on waitress (OGC API – Features, locate, patrol, the map)."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def register(sub: Any) -> None:
    """Add the ``serve`` subcommand."""
    sv = sub.add_parser("serve", help="serve a county GeoPackage over HTTP (waitress)")
    sv.add_argument("path", help="county GeoPackage")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    sv.add_argument("--network", help="street network for /patrol: OSM file or GeoPackage with a roads layer "
                    "(default: the county's own roads layer)")
    sv.add_argument("--rules", help="county rules file (TOML) whose [patrol] section sets /patrol's defaults")
    sv.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve the county on waitress (a production WSGI server); the URL is logged once the data is loaded."""
    from waitress import serve

    from gridgeo.service import create_app

    served = logging.getLogger("gridgeo.serve")
    served.setLevel(logging.INFO)  # the URL is the one line a user of `make run` needs, even without -v
    app = create_app({"COUNTY": args.path, "NETWORK": args.network, "RULES": args.rules})
    host = f"[{args.host}]" if ":" in args.host else args.host
    served.info("serving %s at http://%s:%d/ (map at /map, API at /api; Ctrl-C to stop)", args.path, host, args.port)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="gridgeo")
    return 0
