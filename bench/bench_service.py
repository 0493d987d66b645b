"""Benchmark: gridgeo's HTTP service against pygeoapi on the same GeoPackage, the same machine, one run.

The dataset is the pygeoapi recipe's (``../shared/bench/pygeoapi/make_grids.py``): 20,000 generated
grid polygons (~26 vertices each) in one ``grids`` layer, EPSG:4326. Both servers read the same file:

- gridgeo: ``gridgeo serve grids.gpkg`` (waitress), from this repository's venv;
- pygeoapi 0.21.0 with its OGR provider under ``gunicorn -w 2`` (Debian's ``/usr/bin/python3`` with
  ``python3-gdal``), in a work directory outside the repository (``--work``, default
  ``/tmp/gridgeo-bench-service``); ``--setup`` builds its venv there.

Rows, each as a bounded load with ``wrk -t2 -c8 -d20s --latency`` on 127.0.0.1 (one server loaded
at a time, the other idle): a page of 100 polygons (``items?limit=100``), a bbox query (~100
features), one item, and a page deep in the collection (pygeoapi: ``offset=15000``; gridgeo: the
keyset ``next`` link reached by following ``next`` from the start). Then ``/locate``: one ``POST``
of 100,000 points (points/s, median of 3) and ``GET /locate?lon=&lat=`` under the same wrk load.

    apt-get install -y wrk python3-gdal python3-venv          # Debian packages it needs
    .venv/bin/python bench/bench_service.py --setup --update-readme
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _readme import write_section

ROOT = Path(__file__).resolve().parents[1]
RECIPE = Path(os.environ.get("GRIDGEO_SHARED", ROOT.parent / "shared")) / "bench" / "pygeoapi"
PYGEOAPI_VERSION = "0.21.0"
COMMAND = ".venv/bin/python bench/bench_service.py --setup --update-readme"


# ------------------------------------------------------------------ helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
        timeout: float = 120) -> tuple[int, bytes, float]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.status, body, time.perf_counter() - t
    except urllib.error.HTTPError as err:
        return err.code, err.read(), time.perf_counter() - t


def wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering {url}")
        try:
            status, _, _ = get(url, timeout=5)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no answer from {url} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)]


def run_wrk(url: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}", "--timeout", "10s",
           "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    errors = []
    if non2:
        errors.append(f"non-2xx {non2.group(1)}")
    if sock:
        errors.append(sock.group(1))
    return {"rps": float(rps.group(1)) if rps else float("nan"),
            "p50": ms(p50.group(1)) if p50 else float("nan"),
            "p99": ms(p99.group(1)) if p99 else float("nan"),
            "errors": "; ".join(errors), "raw": out}


def n_features(body: bytes) -> int | str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "?"
    if doc.get("type") == "Feature":
        return 1
    return len(doc.get("features", []))


# ------------------------------------------------------------------ pygeoapi side
def setup_pygeoapi(work: Path) -> None:
    """Copy the recipe, build Debian-python venv with pygeoapi + gunicorn, generate grids.gpkg."""
    work.mkdir(parents=True, exist_ok=True)
    for f in RECIPE.iterdir():
        if f.is_file():
            target = work / f.name
            if target.exists():
                target.chmod(0o644)
            shutil.copyfile(f, target)
    for tool, pkg in [("wrk", "wrk"), ("/usr/bin/python3", "python3")]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} missing: apt-get install -y {pkg}")
    if not Path("/usr/lib/python3/dist-packages/osgeo").exists():
        raise SystemExit("GDAL's Python bindings missing: apt-get install -y python3-gdal python3-venv")
    venv = work / "venv"
    if not (venv / "bin" / "gunicorn").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"pygeoapi=={PYGEOAPI_VERSION}", "geopandas",
                        "shapely", "gunicorn"], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    link = site / "osgeo"
    if not link.exists():
        link.symlink_to("/usr/lib/python3/dist-packages/osgeo")
    if not (work / "grids.gpkg").exists() or not (work / "bench_params.json").exists():
        (work / "grids.gpkg").unlink(missing_ok=True)
        subprocess.run([str(venv / "bin" / "python"), "make_grids.py", "grids.gpkg"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)


def start_pygeoapi(work: Path, port: int) -> subprocess.Popen:
    config = (work / "config-ogr.yml").read_text()
    config = config.replace("@PGA@", str(work)).replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    config = config.replace("port: 5000", f"port: {port}")
    (work / "config-bench.yml").write_text(config)
    env = dict(os.environ, PYGEOAPI_CONFIG=str(work / "config-bench.yml"),
               PYGEOAPI_OPENAPI=str(work / "openapi-bench.yml"))
    subprocess.run([str(work / "venv" / "bin" / "pygeoapi"), "openapi", "generate", str(work / "config-bench.yml"),
                    "--output-file", str(work / "openapi-bench.yml")], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(work / "pygeoapi.log", "w")  # noqa: SIM115
    return subprocess.Popen([str(work / "venv" / "bin" / "gunicorn"), "-w", "2", "-k", "sync", "-b",
                             f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "pygeoapi.flask_app:APP"],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def start_gridgeo(work: Path, port: int, threads: int) -> subprocess.Popen:
    gridgeo = Path(sys.executable).parent / "gridgeo"
    cmd = [str(gridgeo)] if gridgeo.exists() else [sys.executable, "-m", "gridgeo.cli"]
    cmd += ["serve", str(work / "grids.gpkg"), "--host", "127.0.0.1", "--port", str(port)]
    if threads:
        cmd += ["--threads", str(threads)]
    log = open(work / "gridgeo.log", "w")  # noqa: SIM115
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# ------------------------------------------------------------------ the rows
def gridgeo_urls(base: str, params: dict[str, Any]) -> dict[str, str | None]:
    bbox = ",".join(map(str, params["bbox"]))
    urls: dict[str, str | None] = {
        "page": f"{base}/collections/grids/items?limit=100",
        "bbox": f"{base}/collections/grids/items?limit=100&bbox={bbox}",
        "item": f"{base}/collections/grids/items/{params['one_id']}",
        "deep": None,
    }
    # keyset paging: follow next links to the page that starts at feature 15,000; on the way, find
    # gridgeo's id of the recipe's `one_id` (the file has no `code` column, so gridgeo numbers rows)
    url: str | None = f"{base}/collections/grids/items?limit=1000"
    seen = 0
    while url and seen < 15_000:
        status, body, _ = get(url)
        if status != 200:
            break
        doc = json.loads(body)
        for feat in doc.get("features", []):
            if feat.get("properties", {}).get("id") == params["one_id"] and "id" in feat:
                urls["item"] = f"{base}/collections/grids/items/{feat['id']}"
        seen += len(doc.get("features", []))
        url = next((ln["href"] for ln in doc.get("links", []) if ln.get("rel") == "next"), None)
    if url and seen == 15_000:
        urls["deep"] = re.sub(r"limit=1000", "limit=100", url)
    return urls


def pygeoapi_urls(base: str, params: dict[str, Any]) -> dict[str, str | None]:
    bbox = ",".join(map(str, params["bbox"]))
    return {
        "page": f"{base}/collections/grids/items?limit=100&f=json",
        "bbox": f"{base}/collections/grids/items?limit=100&bbox={bbox}&f=json",
        "item": f"{base}/collections/grids/items/{params['one_id']}?f=json",
        "deep": f"{base}/collections/grids/items?limit=100&offset=15000&f=json",
    }


ROWS = [
    ("page", "`items?limit=100` (a page of 100 polygons)"),
    ("bbox", "`items?limit=100&bbox=…` (~100 polygons)"),
    ("item", "`items/{id}` (one polygon)"),
    ("deep", "page at feature 15,000 (gridgeo: keyset `next`; pygeoapi: `offset=15000`)"),
]


def measure(name: str, urls: dict[str, str | None], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, _ in ROWS:
        url = urls.get(key)
        if not url:
            out[key] = {"skip": "not available"}
            continue
        status, body, _ = get(url)  # warm-up, and what one response is
        row: dict[str, Any] = {"status": status, "bytes": len(body), "features": n_features(body), "url": url}
        if status != 200:
            row["skip"] = f"HTTP {status}: {body[:200]!r}"
            out[key] = row
            print(f"{name:9s} {key:5s} HTTP {status}", flush=True)
            continue
        time.sleep(1)
        reps = []
        for _ in range(args.reps):
            reps.append(run_wrk(url, args))
            time.sleep(2)
        row.update({k: statistics.median(r[k] for r in reps) for k in ("rps", "p50", "p99")})
        row["errors"] = "; ".join(r["errors"] for r in reps if r["errors"])
        row["reps"] = [{k: r[k] for k in ("rps", "p50", "p99")} for r in reps]
        out[key] = row
        print(f"{name:9s} {key:5s} {row['rps']:8.1f} req/s  p50 {row['p50']:6.1f} ms  p99 {row['p99']:6.1f} ms  "
              f"{row['bytes']} B {row['features']} features {row['errors']}", flush=True)
    return out


def measure_locate(base: str, params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(7)
    cx, cy, half = 117.2, 28.3, 0.25
    pts = np.column_stack([rng.uniform(cx - half, cx + half, args.locate_points),
                           rng.uniform(cy - half, cy + half, args.locate_points)]).round(6)
    body = json.dumps({"points": pts.tolist()}).encode()
    res: dict[str, Any] = {"points": args.locate_points, "request_bytes": len(body)}
    times = []
    for _ in range(3):
        status, out, secs = get(f"{base}/locate", data=body, headers={"Content-Type": "application/json"},
                                timeout=600)
        if status != 200:
            res["skip"] = f"HTTP {status}: {out[:300]!r}"
            return res
        times.append(secs)
    res["seconds"] = statistics.median(times)
    res["points_per_s"] = args.locate_points / res["seconds"]
    res["response_bytes"] = len(out)
    doc = json.loads(out)
    results = doc.get("results", doc.get("features", doc if isinstance(doc, list) else []))
    res["answers"] = len(results) if isinstance(results, list) else "?"
    lon, lat = pts[0]
    url = f"{base}/locate?lon={lon}&lat={lat}"
    status, out, _ = get(url)
    if status == 200:
        time.sleep(1)
        res["get"] = run_wrk(url, args)
    else:
        res["get"] = {"skip": f"HTTP {status}"}
    print(f"locate POST {args.locate_points} points: {res['seconds']:.2f} s = {res['points_per_s']:,.0f} points/s; "
          f"GET {res['get'].get('rps', res['get'].get('skip'))}", flush=True)
    return res


def serial_note(work: Path, params: dict[str, Any]) -> str:
    """Median in-process time of one request (Flask test client, no HTTP, no concurrency) for each side."""
    env = dict(os.environ, PYGEOAPI_CONFIG=str(work / "config-bench.yml"),
               PYGEOAPI_OPENAPI=str(work / "openapi-bench.yml"))
    out = subprocess.run([str(work / "venv" / "bin" / "python"), "serial_timing.py", "20"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=600).stdout
    pga = {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+): median ([\d.]+) ms", out)}

    from gridgeo.service import create_app

    client = create_app({"COUNTY": str(work / "grids.gpkg")}).test_client()
    bbox = ",".join(map(str, params["bbox"]))
    urls = {"a_page": "/collections/grids/items?limit=100",
            "b_bbox": f"/collections/grids/items?limit=100&bbox={bbox}"}
    gg = {}
    for key, url in urls.items():
        client.get(url)
        times = []
        for _ in range(50):
            t = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - t) * 1000)
        gg[key] = statistics.median(times)
    parts = [f"{label}: gridgeo {gg[k]:.2f} ms, pygeoapi {pga.get(k, float('nan')):.1f} ms"
             for k, label in (("a_page", "page of 100"), ("b_bbox", "bbox"))]
    return ("One request in process, serially (Flask test client, median; pygeoapi with the recipe's "
            "`serial_timing.py`): " + "; ".join(parts) + ". With 2 workers pygeoapi is bound near "
            "2 / (its time per page); gridgeo's figures under wrk are bound by HTTP handling (waitress) and by "
            "wrk sharing the 2 cores, not by building the response.")


# ------------------------------------------------------------------ README
def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    m = re.search(r"model name\s*:\s*(.+)", text)
    return m.group(1).strip() if m else "unknown CPU"


def fmt(v: float, nd: int = 1) -> str:
    return "–" if v != v else f"{v:,.{nd}f}"


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    g, p, loc = results["gridgeo"], results["pygeoapi"], results["locate"]
    lines = [
        "## Service: gridgeo vs pygeoapi on 20,000 grid polygons (`gridgeo serve`, OGC API – Features)",
        "",
        "```sh",
        "apt-get install -y wrk python3-gdal python3-venv   # pygeoapi's OGR provider needs Debian's GDAL bindings",
        COMMAND,
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), {platform.python_implementation()} "
        f"{platform.python_version()} (gridgeo), pygeoapi {PYGEOAPI_VERSION} "
        "(OGR provider, Debian python3 + python3-gdal, `gunicorn -w 2`); "
        f"{dt.date.today().isoformat()}. {args.machine_note}",
        f"Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration} --latency` on 127.0.0.1, "
        f"{args.reps} runs per row (the table gives their median), one server loaded at a time; "
        "the same `grids.gpkg` for both (`make_grids.py` of the pygeoapi recipe: 20,000 "
        "Voronoi polygons, ~26 vertices each, seed 20240607). gridgeo: `gridgeo serve grids.gpkg` (waitress, "
        f"{args.gridgeo_threads or 'default'} threads). Target: ≥ 3× pygeoapi's req/s on every row, p99 < 40 ms.",
        "",
        "| request | gridgeo req/s | p50 ms | p99 ms | pygeoapi req/s | p50 ms | p99 ms | gridgeo/pygeoapi | "
        "bytes gridgeo / pygeoapi | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for key, label in ROWS:
        a, b = g.get(key, {}), p.get(key, {})
        if "rps" not in a and "rps" not in b:
            continue
        ra, rb = a.get("rps", float("nan")), b.get("rps", float("nan"))
        ratio = f"**{ra / rb:.1f}×**" if ra == ra and rb == rb and rb else "–"
        errs = "; ".join(f"{n}: {r.get('errors') or r.get('skip')}" for n, r in (("gridgeo", a), ("pygeoapi", b))
                         if r.get("errors") or r.get("skip"))
        lines.append(
            f"| {label} | {fmt(ra)} | {fmt(a.get('p50', float('nan')))} | {fmt(a.get('p99', float('nan')))} | "
            f"{fmt(rb)} | {fmt(b.get('p50', float('nan')))} | {fmt(b.get('p99', float('nan')))} | {ratio} | "
            f"{a.get('bytes', '–')} / {b.get('bytes', '–')} | {errs or '0'} |")
    lines.append("")
    if "points_per_s" in loc:
        getl = loc.get("get", {})
        get_txt = (f"; `GET /locate?lon=&lat=` (one point) under the same wrk load: {fmt(getl['rps'])} req/s, "
                   f"p50 {fmt(getl['p50'])} ms, p99 {fmt(getl['p99'])} ms" if "rps" in getl else "")
        lines.append(f"`/locate` batch: one `POST` of {loc['points']:,} points ({loc['request_bytes'] / 1e6:.1f} MB "
                     f"JSON) answered in {loc['seconds']:.2f} s (median of 3) = **{loc['points_per_s']:,.0f} "
                     f"points/s** (target ≥ 100,000){get_txt}. pygeoapi has no equivalent.")
    else:
        lines.append(f"`/locate` batch: not measured ({loc.get('skip', 'endpoint missing')}).")
    lines += [
        "",
        "- Both answer the same 100 features per page in GeoJSON (gridgeo adds `numberMatched`/"
        "`numberReturned`, keyset `next`/`prev` links and an ETag). The file has no `code` column, so "
        "gridgeo numbers its features 1…20,000 in file order; the item row asks each server for the same "
        "feature (the recipe's `one_id`).",
        "- For reference, the recipe measured pygeoapi's page of 100 at about 90 req/s (p99 117 ms) on a quiet "
        "2-core machine; compare the two servers within one run only.",
        *[f"- {n}" for n in results.get("notes", [])],
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gridgeo-bench-service"),
                    help="work directory for pygeoapi's venv and grids.gpkg (outside the repo)")
    ap.add_argument("--setup", action="store_true", help="copy the recipe, build pygeoapi's venv, make grids.gpkg")
    ap.add_argument("--duration", default="20s")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--reps", type=int, default=2, help="wrk runs per row; the table gives their median")
    ap.add_argument("--gridgeo-threads", type=int, default=0, help="waitress threads (0: gridgeo serve's default)")
    ap.add_argument("--locate-points", type=int, default=100_000)
    ap.add_argument("--only", choices=["gridgeo", "pygeoapi"], help="measure one side only (no README update)")
    ap.add_argument("--machine-note", default="The machine was shared with other work while measuring.")
    ap.add_argument("--update-readme", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    if args.setup:
        setup_pygeoapi(work)
    if not (work / "grids.gpkg").exists():
        raise SystemExit(f"{work}/grids.gpkg missing: run with --setup")
    if not shutil.which("wrk"):
        raise SystemExit("wrk missing: apt-get install -y wrk")
    params = json.loads((work / "bench_params.json").read_text())
    results: dict[str, Any] = {"gridgeo": {}, "pygeoapi": {}, "locate": {}, "notes": []}
    load_before = os.getloadavg()[0]

    if args.only != "pygeoapi":
        port = free_port()
        proc = start_gridgeo(work, port, args.gridgeo_threads)
        base = f"http://127.0.0.1:{port}"
        try:
            t0 = time.time()
            wait_up(base + "/collections", proc)
            results["notes"].append(f"gridgeo start-up (read the GeoPackage, build indexes): {time.time() - t0:.1f} s.")
            results["gridgeo"] = measure("gridgeo", gridgeo_urls(base, params), args)
            results["locate"] = measure_locate(base, params, args)
        finally:
            stop(proc)
    if args.only != "gridgeo":
        port = free_port()
        proc = start_pygeoapi(work, port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(base + "/collections?f=json", proc)
            results["pygeoapi"] = measure("pygeoapi", pygeoapi_urls(base, params), args)
        finally:
            stop(proc)

    results["notes"].append(f"1-minute load average before the run {load_before:.2f}, after the loads "
                            f"{os.getloadavg()[0]:.2f} (wrk and the server under test account for about 2).")
    if not args.only:
        results["notes"].append(serial_note(work, params))
    text = table(results, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if args.update_readme and not args.only:
        write_section("bench_service", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
