"""``gridgeo pair COUNTY.gpkg --members MEMBERS -o OUT.gpkg``: party members and representatives paired with
households (联户 / 结对), within their grid or village, by walking distance where a network is given.

Options left out take the library's defaults (:class:`gridgeo.people.PairingOptions`); the help texts quote them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from gridgeo.cli._options import positive

log = logging.getLogger("gridgeo.pair")


def register(sub: Any) -> None:
    """Add the ``pair`` subcommand."""
    p = sub.add_parser(
        "pair",
        help="pair party members and villagers' representatives with households (联户/结对)",
        description="Assign the households of a built county to members within their grid (or village): "
        "capacities kept, loads balanced, existing pairs kept, the least total (walking) distance. "
        "Unpaired households are listed with their reason. Exit 1 bad input, 2 usage.",
    )
    p.add_argument("county", help="built county GeoPackage (its households layer; grids for the grid codes)")
    p.add_argument("--members", required=True,
                   help="member roster: CSV (person_id, role, grid|village|unit, capacity, home or lon/lat) or "
                        "any layer gridgeo reads")
    p.add_argument("--members-layer", help="layer of a multi-layer roster file")
    p.add_argument("--pairs", help="existing pairs (source_id, person_id[, households]): kept where still valid")
    p.add_argument("--scope", choices=("grid", "village"), default=None, help="where a member pairs (default grid)")
    p.add_argument("--capacity", type=positive(int), help="households per member where the roster gives none "
                   "(default: no limit of their own; balance still applies)")
    p.add_argument("--slack", type=positive(float),
                   help="balance: at most fair share L + max(1, ceil(slack*L)) per member (default 0.25)")
    p.add_argument("--no-balance", action="store_true", help="own capacities only, no balancing")
    p.add_argument("--fresh", action="store_true", help="ignore --pairs: pair everyone afresh")
    p.add_argument("--max-distance", type=positive(float), help="metres beyond which a member cannot take a "
                   "household (default 5000)")
    p.add_argument("--network", help="OSM file or road layer (a GeoPackage: its roads layer): walking distances "
                   "(default: straight-line metres)")
    p.add_argument("--seed", type=int, default=0, help="breaks ties between equally short pairings (default 0)")
    p.add_argument("-o", "--output", required=True, help="output .gpkg (layers pairs, loads, unpaired, "
                   "dropped_pairs), or a directory for CSV files")
    p.add_argument("--report", help="write the JSON summary here")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> Any:
    """:class:`gridgeo.people.PairingOptions` from the command line (the library's defaults for the rest)."""
    from gridgeo.people import PairingOptions

    given: dict[str, Any] = {"scope": args.scope, "capacity": args.capacity, "max_distance_m": args.max_distance}
    if args.slack is not None:
        given["slack"] = args.slack
    if args.no_balance:
        given["slack"] = None
    if args.fresh:
        given["keep_existing"] = False
    return PairingOptions(**{k: v for k, v in given.items() if v is not None or k == "slack"})


def run(args: argparse.Namespace) -> int:
    """Read the county, the roster and the pairs; pair; write the tables and the report."""
    from gridgeo.data import io
    from gridgeo.people import Pairing, county_grids, read_table

    options = _options(args)
    county = Path(args.county)
    households = io.read_layer(county, layer="households")
    members = read_table(args.members, layer=args.members_layer)
    pairs = read_table(args.pairs) if args.pairs else None
    network = None
    if args.network:
        from gridgeo.patrol.network import load_network

        network = load_network(args.network, mode="walk")
    res = Pairing(households, members, pairs=pairs, network=network, grids=county_grids(county), options=options).solve(
        seed=args.seed)
    written = res.write(args.output)
    args.written = True
    if args.report:
        res.write_report(args.report)
    s = res.summary
    reasons = ", ".join(f"{k} {v}" for k, v in s["unpaired_by_reason"].items() if v)
    print(f"paired {s['paired']}/{s['households']} households with {s['members_with_households']}/{s['members']} "
          f"members ({s['distance']} distance, scope {s['scope']}), {s['kept']} kept; load {s['load']['min']}-"
          f"{s['load']['max']}, mean distance {s['mean_distance_m']:.0f} m; unpaired {s['unpaired']}"
          + (f" ({reasons})" if reasons else "") + f"; wrote {', '.join(map(str, written))}")
    return 0
