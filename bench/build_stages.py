"""Run ``gridgeo build`` in this process and print, per stage, its wall seconds and peak RSS.

Why: the report gives seconds per stage; this also says *where the memory peaks* (the parent, the
worker processes, their sum) and the CPU seconds of the whole tree, which ``bench/memwatch.py``
gives for the run as a whole only. RSS is sampled every 0.25 s (psutil); the stage boundaries are
the build's own (``gridgeo.county.build._Clock``).

    python bench/build_stages.py build boundaries/sample_rules.toml --input province.gpkg -o out.gpkg -q
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import psutil

from gridgeo.cli.main import main
from gridgeo.county import build as _build

_PROC = psutil.Process()
_PEAK = {"parent": 0.0, "workers": 0.0, "sum": 0.0}
_T0 = time.perf_counter()


def _sample() -> None:
    while True:
        try:
            parent = _PROC.memory_info().rss / 2**30
            workers = sum(c.memory_info().rss for c in _PROC.children(recursive=True)) / 2**30
        except psutil.Error:
            continue
        for key, value in (("parent", parent), ("workers", workers), ("sum", parent + workers)):
            _PEAK[key] = max(_PEAK[key], value)
        time.sleep(0.25)


def _line(name: str, seconds: float) -> str:
    return (f"stage {name:14s} {seconds:8.1f} s   peak RSS parent {_PEAK['parent']:5.2f}  workers "
            f"{_PEAK['workers']:5.2f}  sum {_PEAK['sum']:5.2f} GiB   (t = {time.perf_counter() - _T0:6.0f} s)")


def _patch_clock() -> None:
    lap = _build._Clock.lap

    def logged(self: Any, name: str) -> None:
        lap(self, name)
        print(_line(name, self.seconds[name]), file=sys.stderr, flush=True)
        for key in _PEAK:
            _PEAK[key] = 0.0

    _build._Clock.lap = logged  # type: ignore[method-assign]


def run(argv: list[str]) -> int:
    """Run the gridgeo command line with ``argv``; print the stage lines and the tree's CPU seconds."""
    threading.Thread(target=_sample, daemon=True).start()
    _patch_clock()
    rc = main(argv)
    print(_line("assemble..end", time.perf_counter() - _T0), file=sys.stderr)
    cpu = _PROC.cpu_times()
    print(f"wall {time.perf_counter() - _T0:.1f} s; CPU s: this process {cpu.user + cpu.system:.0f}, "
          f"workers {cpu.children_user + cpu.children_system:.0f}; exit {rc}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
