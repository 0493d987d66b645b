"""``gridgeo reports sweep STORE``: escalate every open report whose deadline has passed (run it from cron).

The service sweeps lazily, whenever a reports route is called; a county
where nobody opens the reports for a night still needs its overdue reports
moved up the ladder on time, so this runs the same sweep
(:meth:`gridgeo.store.reports.Reports.sweep`) from the command line. It
needs only the store: each report carries its own ladder. The ids escalated
go to stdout, one a line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from typing import Any

from gridgeo.errors import UsageError

log = logging.getLogger("gridgeo")


def register(sub: Any) -> None:
    """Add the ``reports`` subcommand and its ``sweep`` action."""
    p = sub.add_parser("reports", help="the reports (随手拍) of a served county: escalate the overdue ones")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sw = acts.add_parser("sweep", help="escalate every open report past its deadline one level up")
    sw.add_argument("store", metavar="STORE", help="county GeoPackage or postgresql:// URL")
    sw.add_argument("--now", metavar="TIME", help="the time to sweep at, ISO 8601 (default: now; no offset: UTC+8)")
    p.set_defaults(func=run)


def _when(raw: str | None) -> dt.datetime:
    if raw is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        t = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        raise UsageError(f"--now: not an ISO 8601 time: {raw!r}") from None
    return t.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))) if t.tzinfo is None else t


def run(args: argparse.Namespace) -> int:
    """Sweep; the escalated ids to stdout."""
    from gridgeo.store import Reports, open_store

    now = _when(args.now)
    store = open_store(args.store, create=False)
    try:
        if not store.ready():
            log.info("%s has no store tables yet: no reports to sweep", args.store)
            return 0
        done = Reports(store).sweep(now=now)
    finally:
        store.close()
    log.info("escalated %d overdue report(s)", len(done))
    for rid in done:
        sys.stdout.write(f"{rid}\n")
    return 0
