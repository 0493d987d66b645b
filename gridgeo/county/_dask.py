"""The villages on a Dask cluster: ``gridgeo build RULES.toml -o OUT.gpkg --scheduler ADDRESS``.

Why dask.distributed: the issue asks for an existing distributed engine
rather than one of our own. Its scheduler already places tasks next to their
data, moves data between machines, retries a task whose worker died and
shows the run on its dashboard; a county too large for one machine's cores
needs only ``dask scheduler`` and ``dask worker`` processes with gridgeo
installed. Local worker processes (:mod:`gridgeo.county._pool`) stay the
default: nothing here is imported unless a scheduler is asked for, and Dask
is an optional extra (``pip install 'gridgeo[dask]'``).

How the work goes out (:func:`run_dask`):

* **connect**: the address is checked before a ``Client`` is made, because
  a ``Client`` that fails to start is left half-built and, when collected,
  waits out a second timeout and prints a traceback; and one pointed at a
  port where something listens but says nothing waits forever (its
  handshake read has no timeout). So: the address must parse with a known
  scheme, a plain TCP connection must succeed (nothing there: said at once,
  not after Dask's retries), and the server must answer an ``identity``
  request as a ``Scheduler`` within Dask's connect timeout
  (``distributed.comm.timeouts.connect``). Then the client, and at least one
  worker must be there and able to import gridgeo (the tasks are pickled
  gridgeo objects, so a worker without it could run none of them).
* **submit**: each village's task is scattered to the cluster on its own
  (``hash=False``: no hashing of large inputs, and equal inputs of two
  villages stay two objects) and submitted under a key made of the village
  code and a token of this run, so the dashboard names villages and two
  builds on one cluster never share a result. At most :data:`PER_THREAD`
  tasks per worker thread are out at a time: the cluster never holds the
  whole county's inputs, and a failure leaves little to cancel.
* **collect**: results are taken as they arrive (the progress bar moves with
  them) and returned in the tasks' order. The first task to fail stops the
  run, as locally: everything still out is cancelled and the task's own
  exception goes on -- the same class and message as in a local build,
  because the task raised it on the worker and Dask re-raises it here. A
  village whose worker died (``KilledWorker``) or that the scheduler
  cancelled is a :class:`gridgeo.errors.SchedulerError` naming its key.

What Dask cannot do: stop a task that is already running on a worker. A
cancelled village that is mid-build finishes there and its result is
dropped; only the villages still queued never start.
"""

from __future__ import annotations

import concurrent.futures
import importlib.metadata
import logging
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gridgeo.errors import SchedulerError, UsageError

log = logging.getLogger(__name__)

__all__ = ["INSTALL", "PER_THREAD", "DaskRun", "check_scheduler", "run_dask"]

T = TypeVar("T")
R = TypeVar("R")

#: what to install for ``--scheduler``
INSTALL = "pip install 'gridgeo[dask]'"
#: tasks out per worker thread: enough that no thread waits for its next village, few enough that the
#: cluster does not hold every village's inputs at once
PER_THREAD = 2
#: address schemes that run over TCP, so that a plain connection tells whether anything listens there
_TCP_SCHEMES = ("tcp", "tls", "ws", "wss")


@dataclass
class DaskRun(Generic[R]):
    """The results, in the tasks' order, and the worker threads the cluster had when the run started."""

    results: list[R]
    threads: int


def run_dask(fn: Callable[[T], R], tasks: Sequence[T], *, scheduler: str, keys: Sequence[str],
             on_result: Callable[[], None] | None = None) -> DaskRun[R]:
    """``[fn(t) for t in tasks]`` on the Dask cluster at ``scheduler``, returned in the tasks' order.

    Parameters
    ----------
    fn
        A picklable module-level function of gridgeo (the workers import it).
    tasks
        Its arguments, one call each, each picklable.
    scheduler
        The scheduler's address, ``tcp://HOST:PORT`` or ``HOST:PORT``.
    keys
        One unique name per task (``village-CODE``): the Dask key prefix, and
        how an error about a lost task names it.
    on_result
        Called after each result as it arrives (the progress bar).

    Raises
    ------
    UsageError
        Dask is not installed, or ``scheduler`` is not an address.
    SchedulerError
        The scheduler cannot be reached, has no workers, its workers cannot
        import gridgeo, or a task's worker died.
    BaseException
        The first exception a task raised, as it raised it (module notes),
        or an interrupt, after the tasks still out are cancelled.
    """
    if len(keys) != len(tasks):
        raise ValueError(f"{len(keys)} keys for {len(tasks)} tasks")
    distributed = _import_distributed()
    client = _connect(distributed, scheduler)
    try:
        threads = _check_workers(client, scheduler)
        log.info("building %d task(s) on the Dask scheduler %s (%d worker thread(s))", len(tasks), scheduler,
                 threads)
        results = _map(distributed, client, fn, tasks, keys=keys, on_result=on_result,
                       window=max(2, PER_THREAD * threads))
    finally:
        client.close()
    return DaskRun(results, threads)


def check_scheduler(scheduler: str) -> None:
    """Dask installed, ``scheduler`` an address, something listening there: before the build reads anything.

    Why separately: the villages go out only after the inputs are read and
    the blocks drawn, minutes into a large county; a typo in the address
    should not cost those minutes.

    Raises
    ------
    UsageError
        Dask is not installed, or ``scheduler`` is not an address.
    SchedulerError
        Nothing answers at ``scheduler``.
    """
    _import_distributed()
    timeout = _connect_timeout()
    _reachable(scheduler, timeout)
    _identify(scheduler, timeout)


def _import_distributed() -> Any:
    """``distributed``, or a usage error saying what to install (Dask is an optional extra)."""
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(f"--scheduler needs Dask (dask.distributed), which is not installed: {INSTALL}") from exc
    return distributed


def _connect_timeout() -> float:
    """Seconds to wait for the scheduler: Dask's own setting (``distributed.comm.timeouts.connect``)."""
    import dask
    import dask.utils

    return float(dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s"))


def _connect(distributed: Any, scheduler: str) -> Any:
    """A client of ``scheduler`` (not made the default client: the build's own, closed after it)."""
    timeout = _connect_timeout()
    _reachable(scheduler, timeout)
    _identify(scheduler, timeout)
    try:
        return distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except ValueError as exc:
        raise UsageError(f"--scheduler {scheduler!r}: {exc}") from exc
    except OSError as exc:
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc


def _reachable(scheduler: str, timeout: float) -> None:
    """Something listens at a TCP-based ``scheduler`` address; a usage error when it is no address at all."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, loc = parse_address(scheduler)
        if scheme not in backends:  # said here: a Client given it fails half-built (module notes)
            raise ValueError(f"unknown scheme {scheme!r} (known: {', '.join(sorted(backends))})")
        if scheme not in _TCP_SCHEMES:
            return  # inproc://, ucx://: Client itself says
        host, port = parse_host_port(loc)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--scheduler {scheduler!r} is not a scheduler address (tcp://HOST:PORT): {exc}") from exc
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {why}") from exc


def _identify(scheduler: str, timeout: float) -> None:
    """The server at ``scheduler`` answers, within ``timeout`` s, that it is a Dask scheduler.

    Run on a thread of its own with its own event loop, so that a caller
    already inside one (a notebook) can build too.
    """
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def ask() -> Any:
        comm = await connect(scheduler, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            await comm.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gridgeo-dask-probe") as ex:
        try:
            who = ex.submit(asyncio.run, asyncio.wait_for(ask(), timeout)).result()
        except TimeoutError:
            raise SchedulerError(f"no Dask scheduler answers at {scheduler} (something listens there, but said "
                                 f"nothing within {timeout:g} s)") from None
        except OSError as exc:  # CommClosedError included
            raise SchedulerError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    kind = who.get("type") if isinstance(who, dict) else None
    if kind != "Scheduler":
        raise SchedulerError(f"{scheduler} is not a Dask scheduler (it says it is a {kind or 'something else'}); "
                             "give the scheduler's address")


def _check_workers(client: Any, scheduler: str) -> int:
    """The cluster's worker threads, after checking there is a worker and every worker can import gridgeo."""
    timeout = _connect_timeout()
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise SchedulerError(f"the Dask scheduler at {scheduler} has no workers (waited {timeout:g} s)") from None
    try:
        versions: dict[str, str] = client.run(_gridgeo_version)
    except Exception as exc:  # the worker could not unpickle our function: no (or a broken) gridgeo there
        raise SchedulerError(f"a Dask worker of {scheduler} cannot run gridgeo ({type(exc).__name__}: {exc}); "
                             "install the same gridgeo on every worker") from exc
    here = _gridgeo_version()
    other = sorted({v for v in versions.values() if v != here})
    if other:
        log.warning("Dask workers run gridgeo %s, this process %s: results may differ from a local build",
                    ", ".join(other), here)
    return int(sum(client.nthreads().values()))


def _gridgeo_version() -> str:
    """The installed gridgeo's version (run on every worker: importing this module there proves gridgeo is)."""
    try:
        return importlib.metadata.version("gridgeo")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown"


def _map(distributed: Any, client: Any, fn: Callable[[T], R], tasks: Sequence[T], *, keys: Sequence[str],
         on_result: Callable[[], None] | None, window: int) -> list[R]:
    """Submit up to ``window`` tasks at a time, collect as they arrive, fail at the first failure."""
    run = uuid.uuid4().hex[:8]
    queue = iter(range(len(tasks)))
    out: dict[Any, int] = {}  # future -> task index, for the tasks still out
    arriving = distributed.as_completed(loop=client.loop)  # not the default client: this one

    def submit_next() -> None:
        i = next(queue, None)
        if i is None:
            return
        data = client.scatter(tasks[i], hash=False)
        f = client.submit(fn, data, key=f"{keys[i]}-{run}", pure=False)
        out[f] = i
        arriving.add(f)

    done: dict[int, R] = {}
    try:
        for _ in range(window):
            submit_next()
        for f in arriving:
            i = out.pop(f)
            done[i] = _result(distributed, f, keys[i])
            if on_result is not None:
                on_result()
            submit_next()
    except BaseException:
        if out:
            log.debug("cancelling %d task(s) still out on the Dask cluster", len(out))
            client.cancel(list(out), force=True)
        raise
    return [done[i] for i in range(len(tasks))]


def _result(distributed: Any, f: Any, key: str) -> Any:
    """A task's result; its own exception as it raised it, a lost or cancelled task as a SchedulerError."""
    try:
        return f.result()
    except distributed.KilledWorker as exc:
        raise SchedulerError(f"{key}: its Dask worker died while building it ({exc})") from exc
    except concurrent.futures.CancelledError as exc:
        raise SchedulerError(f"{key}: cancelled on the Dask cluster ({exc or 'by the scheduler'})") from exc
