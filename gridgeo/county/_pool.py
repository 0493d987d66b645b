"""The village worker pool: results in input order, and no worker outlives the build.

Why this module: a ``with ProcessPoolExecutor()`` block that is left by an
exception (Ctrl-C, the SIGTERM the CLI turns into one) waits for every running
village to finish, so an interrupted build hung for minutes with its workers
blocked on a pipe; and a parent killed outright (SIGKILL, which no handler
sees) left its workers running with nobody to read their results.

So :func:`run_pool`, on any exception while it waits, cancels the queued
villages, terminates the workers (SIGTERM, then SIGKILL for any still alive
after a grace period) and joins them before the exception goes on; and every
worker starts with :func:`_worker_init`, which ties its life to the parent's:
on Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (the kernel sends SIGTERM when
the parent dies), everywhere a daemon thread that exits the worker once
``os.getppid()`` changes (polled every second).

Fail fast: results are taken as they arrive (``wait(FIRST_COMPLETED)``), not in input
order, so the first village that fails stops the build at once -- before,
the parent waited on the villages in their order, and a failure behind a
slow village surfaced only when that village was done (for a whole county,
after most of the queue). The results are put back in input order at the end.
Tasks are taken from their iterable only as the workers get through them
(a few per worker in flight), so a lazy queue of villages is never held whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

log = logging.getLogger(__name__)

__all__ = ["WorkerPool", "run_pool", "trim_memory"]

T = TypeVar("T")
R = TypeVar("R")

#: prctl option: signal to send this process when its parent dies (linux/prctl.h)
_PR_SET_PDEATHSIG = 1
#: seconds between the fallback watcher's looks at the parent
PARENT_POLL_S = 1.0
#: what the parent handles and the workers leave to it
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
#: seconds the workers get to exit after SIGTERM before SIGKILL
GRACE_S = 2.0
#: tasks per worker submitted and not yet done (:meth:`WorkerPool.map`): enough that no worker waits for
#: the next task while this process makes it, few enough that a lazy queue is never held whole
IN_FLIGHT = 8


def trim_memory() -> bool:
    """Give the free pages of this process's heap back to the system (glibc ``malloc_trim``).

    Returns True when pages were given back.

    Why: GEOS frees a large result's memory to the C heap, which keeps the
    pages; a worker that cleaned a chunk of a province's coverage stays at
    its peak (0.47 GiB instead of 0.15) while the parent does the rest of
    the build. Dask's workers do the same (``distributed``'s memory
    trimming). Elsewhere than glibc: nothing, False.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """The C library (loaded once per process), for ``prctl`` and ``malloc_trim``."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _noop() -> None:
    """What a started worker runs first, so that every worker is forked at once."""


class WorkerPool:
    """Worker processes started now, used for one or more :meth:`map` calls, ended on :meth:`close`.

    Why start them early: a forked worker's resident pages are its parent's
    at the moment of the fork. Forked before the county is read, each worker
    holds only the interpreter and what its tasks bring (on a 5-million-
    household province the parent holds gigabytes, which a late fork counted
    once more per worker). The same pool serves the villages and the
    coverage's chunks.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._ex: ProcessPoolExecutor | None = None

    def start(self) -> WorkerPool:
        """Fork every worker now (a no-op task each, waited for)."""
        if self._ex is None:
            self._ex = ProcessPoolExecutor(max_workers=self.workers, initializer=_worker_init,
                                           initargs=(os.getpid(),))
            try:
                with _interrupts_held():  # the workers start during submit
                    warm = [self._ex.submit(_noop) for _ in range(self.workers)]
                for f in warm:
                    f.result()
            except BaseException:
                self.stop()
                raise
        return self

    def submit(self, fn: Callable[[T], R], arg: T) -> Future[R]:
        """``fn(arg)`` in a worker, beside whatever :meth:`map` runs; its future.

        Why: one job that does not depend on the villages (the blocks need
        only the village totals) runs on a worker while the others build
        villages, instead of holding the parent before they start. Pass the
        future to :meth:`map` as ``also`` so that its failure stops the build
        at once; :meth:`stop` ends it like any other task.
        """
        ex = self.start()._ex
        assert ex is not None
        try:
            with _interrupts_held():
                return ex.submit(fn, arg)
        except BaseException:
            self.stop()
            raise

    def map(self, fn: Callable[[T], R], tasks: Iterable[T], *, on_result: Callable[[], None] | None = None,
            also: Iterable[Future[Any]] = (), in_flight: int = IN_FLIGHT) -> list[R]:
        """``[fn(t) for t in tasks]`` in the workers, in the tasks' order (see :func:`run_pool`).

        ``tasks`` is consumed as the workers take them, at most
        :data:`IN_FLIGHT` per worker submitted and not yet done: a lazy
        iterable of tasks is made one task at a time, never held whole.
        ``also``: futures of :meth:`submit` watched meanwhile; the first of
        them to fail raises here as a failed task would. ``in_flight``: tasks
        per worker out at a time; 1 for a few large tasks (a province's
        coverage chunks), so that only those being worked on are held pickled.
        """
        ex = self.start()._ex
        assert ex is not None
        todo = enumerate(tasks)
        window = max(1, in_flight) * self.workers
        place: dict[Future[R], int] = {}
        side = set(also)
        done: dict[int, R] = {}
        try:
            self._submit(ex, fn, todo, place, window)
            while place:
                ready, _ = wait([*place, *side], return_when=FIRST_COMPLETED)
                for f in ready & side:
                    side.discard(f)
                    f.result()  # a failed side job raises here; its result stays in its future
                for f in sorted(ready & place.keys(), key=place.__getitem__):
                    done[place.pop(f)] = f.result()  # a failed task raises here, as soon as it has failed
                    if on_result is not None:
                        on_result()
                self._submit(ex, fn, todo, place, window)
        except BaseException:
            self.stop()
            raise
        return [done[i] for i in range(len(done))]

    @staticmethod
    def _submit(ex: ProcessPoolExecutor, fn: Callable[[T], R], todo: Iterator[tuple[int, T]],
                place: dict[Future[R], int], window: int) -> None:
        """Submit tasks from ``todo`` until ``window`` are out; each future keeps its task's place."""
        while len(place) < window:
            nxt = next(todo, None)
            if nxt is None:
                return
            with _interrupts_held():  # workers may start during submit
                place[ex.submit(fn, nxt[1])] = nxt[0]

    def stop(self) -> None:
        """End the workers at once (queued work cancelled; see :func:`stop_pool`)."""
        if self._ex is not None:
            stop_pool(self._ex)
            self._ex = None

    def close(self) -> None:
        """End the workers after their work is done."""
        if self._ex is not None:
            self._ex.shutdown(wait=True)
            self._ex = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.stop()


def run_pool(fn: Callable[[T], R], tasks: Iterable[T], *, workers: int,
             on_result: Callable[[], None] | None = None, pool: WorkerPool | None = None) -> list[R]:
    """``[fn(t) for t in tasks]`` in ``workers`` processes, returned in the tasks' order.

    Parameters
    ----------
    fn
        A picklable module-level function.
    tasks
        Its arguments, one call each.
    workers
        Worker processes (when no ``pool`` is given).
    on_result
        Called after each result as it arrives, in completion order (the
        progress bar moves with the work, not with the slowest early task).
    pool
        Workers already started (:class:`WorkerPool`); kept running after.

    Raises
    ------
    BaseException
        The first failure to arrive, whatever its task's place (module notes),
        or whatever the wait raised (``KeyboardInterrupt`` included), after
        the queue is cancelled and every worker process is gone.
    """
    if pool is not None:
        return pool.map(fn, tasks, on_result=on_result)
    with WorkerPool(workers) as own:
        return own.map(fn, tasks, on_result=on_result)


def stop_pool(ex: ProcessPoolExecutor, *, grace: float = GRACE_S) -> None:
    """Cancel what is queued, end every worker (SIGTERM, then SIGKILL after ``grace`` s) and join them.

    Why not ``shutdown(wait=True)`` alone: it waits for the running tasks,
    which for a large village is minutes.
    """
    procs = list((getattr(ex, "_processes", None) or {}).values())  # private, but the only handle on them
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("worker %s did not exit on SIGTERM within %.0f s: killed", p.pid, grace)
                p.kill()
                p.join(grace)
    log.debug("worker pool stopped: %d worker(s) ended", len(procs))


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (blocked, not lost) while the workers start.

    Why: a forked worker runs with the parent's handlers until
    :func:`_worker_init` replaces them, so a Ctrl-C to the process group in
    that moment raised in the half-started worker (a traceback on stderr).
    The mask is inherited; each worker lifts it once its own handlers are
    set, and the parent lifts its own after starting them (a signal that came
    meanwhile is then delivered, to the ``try`` that stops the pool).
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _worker_init(parent: int) -> None:
    """In each worker: leave interrupts to the parent, and die with it.

    SIGINT is ignored (Ctrl-C reaches the whole process group; the parent
    decides and ends the workers, so no worker prints a traceback of its own),
    SIGTERM gets its default action back (a forked worker inherits the CLI's
    handler that raises). Then the parent watch (module notes).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # held back while starting (_interrupts_held)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
    _death_signal()
    if os.getppid() != parent:  # the parent died before the watch was set up
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="gridgeo-parent-watch", daemon=True).start()


def _death_signal() -> None:
    """Linux: ask the kernel for SIGTERM when the parent dies; anything else or any failure: nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        if _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        log.debug("prctl unavailable: %s", exc)


def _watch_parent(parent: int, poll: float = PARENT_POLL_S) -> None:
    """Exit this worker once its parent is gone (it is re-parented, so ``getppid`` changes)."""
    while os.getppid() == parent:
        time.sleep(poll)
    os._exit(1)
