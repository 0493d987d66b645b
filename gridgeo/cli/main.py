"""The ``gridgeo`` command line.

Exit codes: 0 success (data usable), 1 bad or unusable input (the message names
the file, the feature and the problem), 2 usage error, 3 hard rules that cannot
all be met. Errors are one line on stderr, never a traceback (``-v`` logs more).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gridgeo import __version__
from gridgeo.errors import GridgeoError, UsageError, exit_code

log = logging.getLogger("gridgeo")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors share one path."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _common_read(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="GeoJSON, GeoPackage, Shapefile (.shp or .zip) or OSM XML/PBF")
    p.add_argument("--layer", help="layer of a multi-layer file (GeoPackage, OSM)")
    p.add_argument("--id", dest="id_col", help="column with feature ids (default: row number)")
    p.add_argument("--crs", help="declare the CRS (e.g. EPSG:4490, EPSG:4549) when missing or wrong")
    p.add_argument("--datum", choices=["wgs84", "gcj02", "bd09"],
                   help="lon/lat traced off a Chinese web map: GCJ-02 (Amap, Tencent) or BD-09 (Baidu)")
    p.add_argument("--encoding", help="Shapefile text encoding when the .cpg is missing or wrong (e.g. GBK)")


def _positive(kind: type = float):  # type: ignore[no-untyped-def]
    def conv(text: str) -> float | int:
        try:
            v = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if v < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
        return v  # type: ignore[no-any-return]

    return conv


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more logging (-vv for debug)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="errors only")
    parser = _Parser(prog="gridgeo", parents=[common],
                     description="Grid partitioning and patrol planning from boundary data.")
    parser.add_argument("--version", action="version", version=f"gridgeo {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add = sub.add_parser

    def add_parser(name: str, **kw: object) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)  # type: ignore[arg-type,list-item]

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]

    c = sub.add_parser("check", help="check and repair a boundary layer")
    _common_read(c)
    c.add_argument("--parent", dest="parent_col", help="column naming each feature's parent (e.g. township)")
    c.add_argument("--area-tol", type=_positive(), default=1.0,
                   help="ignore overlaps/gaps/parts at or below this area, m² (default 1)")
    c.add_argument("--snap", type=_positive(), default=2.0,
                   help="gaps/overlaps narrower than this, m, are slivers (default 2)")
    c.add_argument("--repair-slivers", action="store_true",
                   help="also resolve sliver overlaps and fill sliver gaps (moves shared boundaries)")
    c.add_argument("--json", action="store_true", help="one JSON object on stdout")
    c.add_argument("-o", "--output", help="write the repaired layer (.gpkg or .geojson)")
    c.set_defaults(func=cmd_check)

    a = sub.add_parser("adjacency", help="neighbour graph of a polygon layer")
    _common_read(a)
    a.add_argument("--min-shared", type=_positive(), default=5.0,
                   help="minimum shared boundary for neighbours, m (default 5)")
    a.add_argument("--snap", type=_positive(), default=2.0, help="bridge gaps narrower than this, m (default 2)")
    a.add_argument("-o", "--output", help="write the graph as JSON (.json) or an edge list (.csv)")
    a.set_defaults(func=cmd_adjacency)

    s = sub.add_parser("synth", help="generate a plausible county GeoPackage")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--townships", type=int, default=23)
    s.add_argument("--villages", type=int, default=220)
    s.add_argument("--households", type=int, default=60_000)
    s.add_argument("--county-code", default="369900", help="6-digit county code prefixed to all codes")
    s.add_argument("--center", type=float, nargs=2, metavar=("LON", "LAT"), default=(117.2, 28.25))
    s.add_argument("-o", "--output", required=True, help="output .gpkg")
    s.set_defaults(func=cmd_synth)

    v = sub.add_parser("convert", help="read any supported layer (OSM included) and write .gpkg/.geojson")
    _common_read(v)
    v.add_argument("--kind", help="layer kind to normalise columns to (villages, buildings, roads, ...)")
    v.add_argument("-o", "--output", required=True)
    v.set_defaults(func=cmd_convert)

    b = sub.add_parser("blocks", help="group villages into contiguous blocks within townships (exit 3: infeasible)")
    _common_read(b)
    b.add_argument("-o", "--output", required=True, help="blocks layer (.geojson or .gpkg)")
    b.add_argument("--group-by", help="column naming each village's township; blocks never cross it")
    b.add_argument("--size-col", help="numeric column the bounds are on (default: number of villages)")
    b.add_argument("--min", dest="min_size", type=_positive(), help="minimum block size")
    b.add_argument("--max", dest="max_size", type=_positive(), help="maximum block size")
    bc = b.add_mutually_exclusive_group()
    bc.add_argument("--count", type=int, help="blocks per group (default: as many as the bounds allow)")
    bc.add_argument("--count-col", help="column holding each group's number of blocks")
    b.add_argument("--similar", nargs="+", action="extend", help="columns not to mix within a block (e.g. kind)")
    b.add_argument("--lock", help="village -> block file (.json, .csv or a blocks layer) of blocks to keep")
    b.add_argument("--previous", help="an earlier village -> block assignment: move as few villages as possible")
    b.add_argument("--rules", help="rules file (.toml or .json) with the same options")
    b.add_argument("--seed", type=int, help="random seed (default 0)")
    b.add_argument("--time-limit", type=_positive(), help="safety stop in seconds")
    b.add_argument("--min-shared", type=_positive(), default=5.0, help="minimum shared boundary, m (default 5)")
    b.add_argument("--snap", type=_positive(), default=2.0, help="bridge gaps narrower than this, m (default 2)")
    b.add_argument("--report", help="write the JSON report here")
    b.set_defaults(func=cmd_blocks)

    from gridgeo.patrol import add_patrol_parser

    add_patrol_parser(sub)

    from gridgeo.county.build import add_build_parser

    add_build_parser(sub)

    sv = sub.add_parser("serve", help="serve a county GeoPackage over HTTP (waitress)")
    sv.add_argument("path", help="county GeoPackage")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    sv.add_argument("--network", help="street network for /patrol: OSM file or GeoPackage with a roads layer "
                    "(default: the county's own roads layer)")
    sv.set_defaults(func=cmd_serve)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from gridgeo.data.check import check_file
    from gridgeo.data.io import write_layer

    result = check_file(args.path, layer=args.layer, id_col=args.id_col, parent_col=args.parent_col,
                        crs=args.crs, datum=args.datum, encoding=args.encoding, area_tol=args.area_tol, snap=args.snap,
                        repair_slivers=args.repair_slivers)
    report = result.report
    if args.output:
        if not report.usable:
            log.error("not writing %s: the layer has errors", args.output)
        else:
            write_layer(result.gdf, args.output, layer=report.layer or Path(args.path).stem)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        print(report.table())
    if not report.usable:
        errors = [p for p in report.problems if p.severity == "error"]
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        print(f"gridgeo: error: {args.path}: feature {first.id}: {first.kind}: {first.message}{more}",
              file=sys.stderr)
        return 1
    return 0


def cmd_adjacency(args: argparse.Namespace) -> int:
    from gridgeo.data.adjacency import build_adjacency, edges_frame, to_json
    from gridgeo.data.check import check_layer
    from gridgeo.data.io import atomic_path, read_layer

    gdf = read_layer(args.path, layer=args.layer, crs=args.crs, datum=args.datum, id_col=args.id_col,
                     encoding=args.encoding)
    checked = check_layer(gdf, id_col=args.id_col, path=args.path, snap=args.snap)
    if not checked.report.usable:
        first = next(p for p in checked.report.problems if p.severity == "error")
        raise UsageError(f"{args.path}: feature {first.id}: {first.kind}: {first.message}; "
                         "run `gridgeo check` for the full report")
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


def cmd_synth(args: argparse.Namespace) -> int:
    from gridgeo.synth import synth_county, write_county

    layers = synth_county(seed=args.seed, townships=args.townships, villages=args.villages,
                          households=args.households, county_code=args.county_code,
                          center=tuple(args.center), progress=sys.stderr.isatty())
    write_county(layers, args.output)
    counts = ", ".join(f"{len(g)} {name}" for name, g in layers.items())
    print(f"wrote {args.output}: {counts}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from gridgeo.data.io import read_layer, write_layer

    gdf = read_layer(args.path, layer=args.layer, kind=args.kind, crs=args.crs, datum=args.datum,
                     id_col=args.id_col, encoding=args.encoding)
    write_layer(gdf, args.output, layer=args.kind or gdf.attrs.get("layer") or Path(args.path).stem)
    print(f"wrote {args.output}: {len(gdf)} features")
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    from gridgeo.county.blocks import blocks_command

    return blocks_command(args)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the county on waitress (a production WSGI server); the URL is logged once the data is loaded."""
    from waitress import serve

    from gridgeo.service import create_app

    served = logging.getLogger("gridgeo.serve")
    served.setLevel(logging.INFO)  # the URL is the one line a user of `make run` needs, even without -v
    app = create_app({"COUNTY": args.path, "NETWORK": args.network})
    host = f"[{args.host}]" if ":" in args.host else args.host
    served.info("serving %s at http://%s:%d/ (map at /map, API at /api; Ctrl-C to stop)", args.path, host, args.port)
    serve(app, host=args.host, port=args.port, threads=args.threads, ident="gridgeo")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(f"gridgeo: error: {err}", file=sys.stderr)
        return 2
    _setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except GridgeoError as err:
        print(f"gridgeo: error: {err}", file=sys.stderr)
        return exit_code(err)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a bug, not bad input: say so in one line, details with -v
        log.debug("internal error", exc_info=True)
        print(f"gridgeo: internal error: {type(err).__name__}: {err} (run with -vv for a traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
