"""Reading a served county file into the operating system's page cache, in the background, at start-up.

Why: a layer served from the GeoPackage page by page (:mod:`.lazy`) reads its rows from the file; the
first read of a row the operating system has not cached waits for the disk. On the tiled 5M-household
county (1.9 GB) a first read of 100 households cost 1.5 ms of waiting in SQLite with a cold cache and
0.3 ms with the file cached (``bench/README.md``), so a server that has just started answered its first
pages 2-4x slower than it does an hour later. Reading the file once through a small buffer fills the
page cache without growing the process (the cache is the kernel's, given back under memory pressure),
as ``vmtouch -t`` or PostgreSQL's ``pg_prewarm`` do; it is skipped when the file would take more than a
share of the memory available, where it would only push out other files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: the largest share of the available memory a file is read into the page cache for
SHARE = 0.5
#: bytes read at a time (one buffer, reused)
CHUNK = 8 * 2**20


def available_memory() -> int | None:
    """Bytes of memory the kernel could give without swapping (``MemAvailable``), or None when unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


class Warmer:
    """The state of one file's warming, for ``/health``: ``warming``, ``warm``, ``skipped`` or ``failed``.

    Parameters
    ----------
    path
        The file (a GeoPackage being served).
    share
        Warm only when the file is at most this share of the available memory.
    """

    def __init__(self, path: Path, *, share: float = SHARE) -> None:
        self.path, self.share = path, share
        self.state, self.seconds, self.bytes = "pending", 0.0, 0
        self._thread: threading.Thread | None = None

    def start(self) -> Warmer:
        """Start the reading thread, or mark the file skipped when it is too big for the memory available."""
        size = self.path.stat().st_size
        free = available_memory()
        if free is None or size > self.share * free:
            self.state = "skipped"
            log.info("page cache: %s (%.0f MiB) not warmed: more than %.0f%% of the %s available", self.path,
                     size / 2**20, self.share * 100, "memory" if free is None else f"{free / 2**30:.1f} GiB")
            return self
        self.state = "warming"
        self._thread = threading.Thread(target=self._run, name="page-cache-warm", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for the reading to end (tests, benchmarks)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        # lower this thread's priority only (Linux threads are scheduled one by one): requests come first
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        t0 = time.perf_counter()
        try:
            self.bytes = read_through(self.path)
        except OSError as exc:  # a warning, never fatal: the file is still served, only colder
            self.state = "failed"
            log.warning("page cache: reading %s failed (%s); served without warming", self.path, exc)
            return
        self.seconds = time.perf_counter() - t0
        self.state = "warm"
        log.info("page cache: %s warmed, %.0f MiB in %.1f s", self.path, self.bytes / 2**20, self.seconds)

    def health(self) -> dict[str, object]:
        """What ``/health`` says of it."""
        out: dict[str, object] = {"file": self.path.name, "state": self.state}
        if self.state == "warm":
            out.update(mib=round(self.bytes / 2**20), seconds=round(self.seconds, 1))
        return out


def read_through(path: Path, *, chunk: int = CHUNK) -> int:
    """Read ``path`` once, start to end, into one reused buffer; the number of bytes read."""
    buf = bytearray(chunk)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        with contextlib.suppress(OSError, AttributeError):  # tell the kernel to read ahead generously
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while n := f.readinto(view):
            total += n
    return total
