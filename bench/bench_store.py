"""Benchmark: the store's write throughput (visits/s through ``Store.add_visits``) on each backend.

Each write is a transaction of its own (the visits and one audit row per visit), acknowledged only
after its commit is durable: SQLite in WAL with ``synchronous=FULL`` in a copy of the sample county's
GeoPackage; PostgreSQL with its defaults (``fsync=on``, ``synchronous_commit=on``) in a throwaway
cluster on the same disk (:mod:`tests.pg_cluster`, ``durable=True``). Batches of 1 and of 50 visits,
from 1 thread and from 8 threads (a connection each), each configuration for ``--seconds``.

    .venv/bin/python bench/bench_store.py [--seconds 5] [--backends sqlite,postgresql] [--update-readme]

No peer: the question is what each backend of ours takes, and where the embedded one stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _readme import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridgeo.store import Placed, Store, Visit, open_store  # noqa: E402
from tests.pg_cluster import Cluster  # noqa: E402

log = logging.getLogger("bench_store")
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
HEADER = """## Store: write throughput of `Store.add_visits` (`gridgeo.store`, SQLite and PostgreSQL)

```sh
.venv/bin/python bench/bench_store.py --seconds 8 --update-readme
```

Each call is one transaction: the visits and an audit row per visit, acknowledged after a durable
commit (SQLite: the county GeoPackage in WAL with `synchronous=FULL`; PostgreSQL 15: a throwaway
cluster with its defaults, `fsync=on`, `synchronous_commit=on`, over a unix socket). Both on the same
ext4 disk. "threads": writers at once, each with its own connection; SQLite takes them one at a time
(`BEGIN IMMEDIATE`), PostgreSQL in parallel, and its group commit shares one disk flush among the
commits that wait together.
"""
PLACE = Placed("1", {"township": "369900001", "village": "369900001001", "grid": "36990000100101",
                     "point": "36990000100101001"}, ("36990000100101001", "36990000100101", "369900001001",
                                                     "369900001"))
VISIT = Visit(PLACE, "2026-11-30T01:00:00.000000Z", "2026-11-30", "visited", "bench")


def run_config(store: Store, *, batch: int, threads: int, seconds: float) -> dict[str, Any]:
    """Writers calling ``add_visits`` with ``batch`` visits for ``seconds``: visits/s and commits/s."""
    counts = [0] * threads
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        visits = [VISIT] * batch
        try:
            while not stop.is_set():
                store.add_visits(visits, actor=f"w{i}")
                counts[i] += 1
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    commits = sum(counts)
    return {"batch": batch, "threads": threads, "commits_s": commits / wall, "visits_s": commits * batch / wall,
            "ms_per_commit": 1000 * wall * threads / max(commits, 1)}


def _sqlite(tmp: Path) -> tuple[str, Callable[[], None]]:
    p = tmp / "county.gpkg"
    shutil.copy(SAMPLE, p)
    return str(p), lambda: None


def _postgresql(tmp: Path) -> tuple[str, Callable[[], None]]:
    cluster = Cluster(durable=True).start()
    cluster.sql("CREATE DATABASE gg_bench")
    return cluster.url("gg_bench"), cluster.stop


def bench(backends: list[str], seconds: float) -> list[dict[str, Any]]:
    rows = []
    makers = {"sqlite": _sqlite, "postgresql": _postgresql}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as d:
        for backend in backends:
            target, done = makers[backend](Path(d))
            try:
                store = open_store(target)
                for batch in (1, 50):
                    for threads in (1, 8):
                        r = run_config(store, batch=batch, threads=threads, seconds=seconds)
                        r["backend"] = backend
                        log.info("%s batch %d threads %d: %.0f visits/s (%.0f commits/s)", backend, batch,
                                 threads, r["visits_s"], r["commits_s"])
                        rows.append(r)
                n = store.query("SELECT COUNT(*) FROM gg_visits")[0][0]
                audit = store.query("SELECT COUNT(*) FROM gg_audit")[0][0]
                assert n == audit, (n, audit)  # every visit has its audit row
                store.close()
            finally:
                done()
    return rows


def table(rows: list[dict[str, Any]], seconds: float) -> str:
    lines = [f"Machine: {os.cpu_count()} cores (shared with other work), Python {platform.python_version()}; "
             f"{time.strftime('%Y-%m-%d')}; {seconds:g} s per row.", "",
             "| backend | batch | threads | visits/s | commits/s | ms per commit (per writer) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['batch']} | {r['threads']} | {r['visits_s']:,.0f} | "
                     f"{r['commits_s']:,.0f} | {r['ms_per_commit']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per configuration (default 5)")
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--update-readme", action="store_true", help="rewrite the Store section of bench/README.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = bench(args.backends.split(","), args.seconds)
    text = table(rows, args.seconds)
    print(text)
    if args.update_readme:
        write_section("bench_store", HEADER + "\n" + text)


if __name__ == "__main__":
    main()
