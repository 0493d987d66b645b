"""``gridgeo load county.gpkg postgresql://...``: a built county into PostGIS, for ``gridgeo serve URL``."""

from __future__ import annotations

import argparse
from typing import Any

from gridgeo.errors import UsageError


def register(sub: Any) -> None:
    """Add the ``load`` subcommand."""
    ld = sub.add_parser("load", help="load a county GeoPackage (every layer, its store) into PostgreSQL + PostGIS",
                        description="Write every layer of a county GeoPackage into a PostGIS database as a table "
                        "(geometry in the layer's own CRS, a GiST index, typed columns), its attribute tables "
                        "(people) as plain tables, and its store (users, visits, audit) if it has one, all in one "
                        "transaction: a failure leaves the database as it was.")
    ld.add_argument("path", help="county GeoPackage (made by gridgeo build)")
    ld.add_argument("url", help="database: postgresql://user:password@host:port/database")
    ld.add_argument("--replace", action="store_true",
                    help="replace the layers of a previous load (without it a database holding them is refused)")
    ld.add_argument("--no-store", dest="store", action="store_false",
                    help="load the layers only: the GeoPackage's store is not copied, the database's is untouched")
    ld.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load, then print one line: layers, features, seconds."""
    from gridgeo.store import is_url
    from gridgeo.store.postgis import load_geopackage

    if not is_url(args.url):
        raise UsageError(f"gridgeo load: {args.url!r} is not a PostgreSQL URL (postgresql://user@host/database)")
    summary = load_geopackage(args.path, args.url, replace=args.replace, store=args.store)
    print(summary.line(args.path))
    return 0
