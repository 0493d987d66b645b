"""``gridgeo adjacency``: the neighbour graph of a polygon layer (JSON or an edge list)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from gridgeo.cli._options import add_read_options, positive
from gridgeo.errors import InputError

log = logging.getLogger("gridgeo")


def register(sub: Any) -> None:
    """Add the ``adjacency`` subcommand."""
    a = sub.add_parser("adjacency", help="neighbour graph of a polygon layer")
    add_read_options(a)
    a.add_argument("--min-shared", type=positive(), default=5.0,
                   help="minimum shared boundary for neighbours, m (default 5)")
    a.add_argument("--snap", type=positive(), default=2.0, help="bridge gaps narrower than this, m (default 2)")
    a.add_argument("-o", "--output", help="write the graph as JSON (.json) or an edge list (.csv)")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the layer (an unusable one is exit 1, like every command), then build and write the graph."""
    from gridgeo.data.adjacency import build_adjacency, edges_frame, to_json
    from gridgeo.data.check import check_layer
    from gridgeo.data.io import atomic_path, read_layer

    gdf = read_layer(args.path, layer=args.layer, crs=args.crs, datum=args.datum, id_col=args.id_col,
                     encoding=args.encoding)
    checked = check_layer(gdf, id_col=args.id_col, path=args.path, snap=args.snap)
    message = checked.report.unusable_message()
    if message is not None:
        raise InputError(message, path=args.path)
    for p in checked.report.problems:
        if p.severity == "repaired":
            log.warning("%s: feature %s: %s", args.path, p.id, p.message)
    G = build_adjacency(checked.gdf, id_col=args.id_col, min_shared=args.min_shared, snap=args.snap)
    data = to_json(G)
    if args.output:
        out = Path(args.output)
        with atomic_path(out) as tmp:
            if out.suffix.lower() == ".csv":
                edges_frame(G).to_csv(tmp, index=False)
            else:
                tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    bridged = sum(1 for e in data["edges"] if e["bridged"])
    print(f"{data['nodes']} units, {len(data['edges'])} neighbour pairs ({bridged} bridged across gaps), "
          f"{len(data['islands'])} islands, {len(data['components'])} components; measured in {data['crs']}")
    if data["islands"]:
        print("islands: " + ", ".join(map(str, data["islands"][:50])) + (" ..." if len(data["islands"]) > 50 else ""))
    return 0
