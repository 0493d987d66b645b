"""`gridgeo serve` on a big county: start-up to the first answer, peak memory, pages and /locate over HTTP.

Why over HTTP and in a child process: start-up and memory are the server process's own (what a county's
machine must have); the pages are timed one at a time on a kept-alive connection, so a figure is one
request's latency, waitress included, not a throughput under load (no wrk on this machine).

    .venv/bin/python bench/tile_county.py /tmp/X/county.gpkg -o /tmp/X/big.gpkg --copies 156
    .venv/bin/python bench/bench_big_serve.py /tmp/X/big.gpkg --label branch
    PYTHONPATH=/tmp/X/main_src .venv/bin/python bench/bench_big_serve.py /tmp/X/big.gpkg --label main

(``main_src``: ``git archive main gridgeo service`` unpacked, with ``gridgeo/service -> ../service``.)
The county file is copied first (``--copy``, default on), so the store's tables never land in the input.
A ``postgresql://`` URL (a county ``gridgeo load`` wrote) is served as it is, never copied; the RSS is then
the gridgeo server's only (PostgreSQL's own processes are not its children).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memwatch import _kib, _tree

log = logging.getLogger("bench_big_serve")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watch:
    """The server's process tree: its peak RSS, sampled whenever :meth:`sample` is called."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0

    def sample(self) -> int:
        rss = sum(_kib(p, "VmRSS", "status") for p in _tree(self.pid))
        self.peak = max(self.peak, rss)
        return rss


def _get(conn: http.client.HTTPConnection, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn.request("POST" if body is not None else "GET", path, body=body,
                 headers={"Content-Type": "application/json"} if body is not None else {})
    r = conn.getresponse()
    return r.status, r.read()


def _wait(port: int, proc: subprocess.Popen[bytes], watch: Watch, timeout: float) -> float:
    """Seconds until ``/collections/households/items?limit=1`` answers 200 (RSS sampled meanwhile)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        watch.sample()
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status, _ = _get(conn, "/collections/households/items?limit=1")
            conn.close()
            if status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("no answer within the timeout")


def _timed(conn: http.client.HTTPConnection, paths: list[str], watch: Watch) -> dict[str, float]:
    """Median and p90 ms of GETting each path once (after one warm-up request of the first)."""
    _get(conn, paths[0])
    ms = []
    for p in paths:
        t = time.perf_counter()
        status, _ = _get(conn, p)
        ms.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise SystemExit(f"{p}: {status}")
    watch.sample()
    return {"median_ms": round(statistics.median(ms), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "n": len(ms)}


def _crawl(conn: http.client.HTTPConnection, start: int, pages: int, watch: Watch) -> dict[str, float]:
    """``pages`` pages of 100 households one after another from ``start``, following the ``next`` links as
    QGIS or ogr2ogr do: each page's latency."""
    path = f"/collections/households/items?limit=100&after={start}"
    times = []
    for _ in range(pages):
        t = time.perf_counter()
        status, body = _get(conn, path)
        times.append((time.perf_counter() - t) * 1000)
        watch.sample()
        if status != 200:
            raise SystemExit(f"{path}: {status}")
        nxt = next((x["href"] for x in json.loads(body)["links"] if x["rel"] == "next"), None)
        if nxt is None:
            break
        path = nxt[nxt.index("/collections"):]
    return {"median_ms": round(statistics.median(times), 2), "p90_ms": round(float(np.percentile(times, 90)), 2),
            "n": len(times)}


def measure(county: str, args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    cmd = [sys.executable, "-c", "import sys; from gridgeo.cli import main; sys.exit(main())", "serve", county,
           "--port", str(port), "--threads", "4", *([] if args.warm else ["--no-warm"])]
    with open(args.log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=os.environ.copy())
    watch = Watch(proc.pid)
    out: dict[str, Any] = {"label": args.label}
    try:
        t0 = time.perf_counter()
        out["startup_s"] = round(_wait(port, proc, watch, args.timeout), 1)
        out["peak_rss_startup_gib"] = round(watch.peak / 2**20, 2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        grids = json.loads(_get(conn, "/collections/grids")[1])
        w, s, e, nn = grids["extent"]["spatial"]["bbox"][0]
        # /locate answers up to 64 places from the levels' own indexes while its index is built in the
        # background, bigger batches 503 (service/locate.py EarlyLocator): ready is when 100 places are answered
        probe = json.dumps({"points": [[(w + e) / 2, (s + nn) / 2]] * 100}).encode()
        while True:
            watch.sample()
            if "locate_early_s" not in out and _get(conn, f"/locate?lon={(w + e) / 2}&lat={(s + nn) / 2}")[0] == 200:
                out["locate_early_s"] = round(time.perf_counter() - t0, 1)
            if _get(conn, "/locate", probe)[0] == 200:
                break
            time.sleep(0.2)
        out["locate_ready_s"] = round(time.perf_counter() - t0, 1)
        out["peak_rss_index_built_gib"] = round(watch.peak / 2**20, 2)
        out["page_cache"] = json.loads(_get(conn, "/health")[1]).get("page_cache")  # the file warmed by now?
        doc = json.loads(_get(conn, "/collections/households/items?limit=1")[1])
        out["households"] = doc["numberMatched"]
        rng = np.random.default_rng(1)
        n = int(doc["numberMatched"])
        ids = rng.integers(1, n, args.requests).tolist()
        out["item"] = _timed(conn, [f"/collections/households/items/{i}" for i in ids], watch)
        out["page_100"] = _timed(conn, [f"/collections/households/items?limit=100&after={i}" for i in ids], watch)
        out["page_100_again"] = _timed(conn, [f"/collections/households/items?limit=100&after={i}" for i in ids],
                                       watch)
        out["crawl_100"] = _crawl(conn, ids[0], args.requests, watch)
        boxes = []
        for _ in range(args.requests):  # ~100 households: a box of 0.004 x 0.004 degrees somewhere inside
            x, y = rng.uniform(w, e - 0.004), rng.uniform(s, nn - 0.004)
            boxes.append(f"{x:.5f},{y:.5f},{x + 0.004:.5f},{y + 0.004:.5f}")
        out["bbox_page_100"] = _timed(conn, [f"/collections/households/items?limit=100&bbox={b}" for b in boxes],
                                      watch)
        out["grid_page_100"] = _timed(conn, [f"/collections/grids/items?limit=100&bbox={b}" for b in boxes[:50]],
                                      watch)
        lon, lat = rng.uniform(w, e, 100_000), rng.uniform(s, nn, 100_000)
        body = json.dumps({"points": np.column_stack([lon, lat]).round(6).tolist()}).encode()
        times = []
        for _ in range(5):  # the first fills the summaries from the file
            t = time.perf_counter()
            status, _ = _get(conn, "/locate", body)
            times.append(time.perf_counter() - t)
            watch.sample()
            if status != 200:
                raise SystemExit(f"/locate: {status}")
        out["locate_points_per_s"] = round(100_000 / statistics.median(times))
        out["locate_points_per_s_best"] = round(100_000 / min(times))
        out["peak_rss_gib"] = round(watch.peak / 2**20, 2)
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("county", help="a county GeoPackage, or the postgresql:// URL a county was loaded into")
    ap.add_argument("--label", default="branch")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--log", default="/tmp/bench_big_serve.log")
    ap.add_argument("--no-copy", dest="copy", action="store_false")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="serve with --no-warm (the file not read into the page cache at start-up)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    copy = args.copy and not args.county.startswith("postgresql")
    county = args.county
    if copy:
        src = Path(args.county)
        county = str(src.with_name(f"{src.stem}-{args.label}.gpkg"))
        shutil.copy(src, county)
    try:
        print(json.dumps(measure(county, args)))
    finally:
        if copy:
            for suffix in ("", "-wal", "-shm"):
                Path(str(county) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
