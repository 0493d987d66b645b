"""Interrupts: SIGINT, SIGTERM or the parent's death leave no worker and no temp file; the old output stays.

Why a test: an interrupted ``gridgeo build`` used to leave its workers blocked
on a pipe for minutes and a half-written temporary GeoPackage beside the
output. The CLI runs as a subprocess on a generated county big enough
(40 villages, 30,000 households: a few seconds of work) to be caught in the
villages stage and in the write.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gridgeo.county._pool import run_pool
from gridgeo.data.io import TMP_MARK, atomic_path, remove_stale_temps, write_layer
from tests.conftest import synth_rules

ROOT = Path(__file__).resolve().parents[1]
OLD = b"an earlier build, which an interrupted one must not touch\n"
LINUX = sys.platform.startswith("linux")


# --------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, None when there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    if LINUX:
        st = _stat(pid)
        return st is not None and st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    """The live children of ``pid`` (scanning /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st is not None and st[1] == pid and st[0] not in ("Z", "X"):
                out.append(int(d.name))
    return sorted(out)


def _wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def _dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _temps(d: Path) -> list[str]:
    return sorted(n for n in os.listdir(d) if TMP_MARK in n or n.startswith(".out.gpkg"))


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_rules(tmp_path_factory.mktemp("intr_county"), seed=3, townships=4, villages=40, households=30_000)


@pytest.fixture(scope="module")
def small_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_rules(tmp_path_factory.mktemp("intr_small"), seed=4, townships=1, villages=3, households=600)


#: the CLI with each layer's write held back 0.5 s: a signal meant for the write stage lands in it, not after
#: the file is already in place (a small county's GeoPackage is written in a fraction of a second)
_SLOW_WRITE = """
import sys, time
import gridgeo.data.io as io
real = io._plain
def slow(gdf):
    time.sleep(0.5)
    return real(gdf)
io._plain = slow
from gridgeo.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _start(rules: Path, out: Path, *, workers: int, slow_write: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = ["-c", _SLOW_WRITE] if slow_write else ["-m", "gridgeo.cli"]
    return subprocess.Popen([sys.executable, *cli, "build", str(rules), "-o", str(out),
                             "--workers", str(workers), "-q", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # its own process group, as a shell job is


# --------------------------------------------------------------------------------------
# SIGTERM / SIGINT: the CLI ends cleanly
# --------------------------------------------------------------------------------------
#: name -> (signal, sent to the whole process group as Ctrl-C is, workers, stage to catch it in)
CASES = {
    "sigterm_villages_pool": (signal.SIGTERM, False, 2, "villages"),
    "sigint_group_villages_pool": (signal.SIGINT, True, 2, "villages"),
    "sigint_parent_villages_pool": (signal.SIGINT, False, 2, "villages"),
    "sigterm_villages_serial": (signal.SIGTERM, False, 1, "villages"),
    "sigint_group_villages_serial": (signal.SIGINT, True, 1, "villages"),
    "sigterm_write_pool": (signal.SIGTERM, False, 2, "write"),
    "sigint_group_write_serial": (signal.SIGINT, True, 1, "write"),
}


def _catch(p: subprocess.Popen[str], out: Path, *, workers: int, stage: str) -> list[int]:
    """Wait until the build is in ``stage``; the worker PIDs it has then."""
    if stage == "write":
        assert _wait_for(lambda: bool([n for n in os.listdir(out.parent) if TMP_MARK in n]), 60, 0.005), \
            "the build never started writing"
        return _children(p.pid) if LINUX else []
    if workers > 1 and LINUX:
        assert _wait_for(lambda: len(_children(p.pid)) >= 2, 60), "no workers started"
        return _children(p.pid)
    time.sleep(2.5)  # serial: past reading, inside the villages
    return []


@pytest.mark.parametrize("case", list(CASES))
def test_interrupt_leaves_nothing(case: str, rules: Path, tmp_path: Path) -> None:
    sig, group, workers, stage = CASES[case]
    out = tmp_path / "out.gpkg"
    out.write_bytes(OLD)
    p = _start(rules, out, workers=workers, slow_write=stage == "write")
    try:
        kids = _catch(p, out, workers=workers, stage=stage)
        assert p.poll() is None, f"the build ended before the signal: {p.stderr.read() if p.stderr else ''}"
        if stage == "villages" and workers > 1 and LINUX:
            assert len(kids) >= 2
        t0 = time.monotonic()
        (os.killpg(p.pid, sig) if group else p.send_signal(sig))
        _, err = p.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 128 + sig, err
    assert took < 8, f"took {took:.1f} s to stop"
    assert err.splitlines() == [f"gridgeo: interrupted; nothing written ({out} unchanged)"], err
    assert not [k for k in kids if _alive(k)], "a worker survived"
    assert _temps(tmp_path) == [], "a temporary file was left"
    assert out.read_bytes() == OLD


def test_interrupt_without_existing_output(rules: Path, tmp_path: Path) -> None:
    """No earlier output: none appears."""
    out = tmp_path / "out.gpkg"
    p = _start(rules, out, workers=2)
    _catch(p, out, workers=2, stage="villages")
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=15)
    assert p.returncode == 143, err
    assert os.listdir(tmp_path) == []


#: the CLI with a reader that swallows the interrupt raised inside it, as pyogrio's compiled reader did under
#: load (the build ran on and wrote its output, exit 0): SIGTERM to itself while reading the first layer
_SWALLOWING_READ = """
import os, signal, sys, time
import pyogrio
real = pyogrio.read_dataframe
sent = []
def swallowing(*a, **k):
    if not sent:
        sent.append(1)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except KeyboardInterrupt:
            pass
    return real(*a, **k)
pyogrio.read_dataframe = swallowing
from gridgeo.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupt_swallowed_by_compiled_code_still_stops(rules: Path, tmp_path: Path, workers: int) -> None:
    """An interrupt that the reader swallowed is acted on at the next checkpoint: nothing written, 143."""
    out = tmp_path / "out.gpkg"
    out.write_bytes(OLD)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", _SWALLOWING_READ, "build", str(rules), "-o", str(out),
                        "--workers", str(workers), "-q", "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 143, p.stderr
    assert p.stderr.splitlines() == [f"gridgeo: interrupted; nothing written ({out} unchanged)"], p.stderr
    assert out.read_bytes() == OLD
    assert _temps(tmp_path) == []


# --------------------------------------------------------------------------------------
# SIGKILL of the parent: the workers follow it; its temp file goes with the next run
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(not LINUX, reason="finds the workers through /proc")
def test_sigkill_parent_workers_follow(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    p = _start(rules, out, workers=2)
    try:
        kids = _catch(p, out, workers=2, stage="villages")
        assert len(kids) >= 2
        p.kill()
        p.wait()
        assert _wait_for(lambda: not [k for k in kids if _alive(k)], 5, 0.1), \
            f"workers {[k for k in kids if _alive(k)]} outlived their parent"
    finally:
        if p.poll() is None:
            p.kill()


def test_sigkill_in_write_next_build_cleans(rules: Path, small_rules: Path, tmp_path: Path) -> None:
    """A build killed while writing leaves one temp file (it cannot remove it); the next build removes it."""
    out = tmp_path / "out.gpkg"
    out.write_bytes(OLD)
    p = _start(rules, out, workers=2, slow_write=True)
    _catch(p, out, workers=2, stage="write")
    p.kill()
    p.wait()
    left = _temps(tmp_path)
    assert left and all(f"{TMP_MARK}{p.pid}-" in n for n in left), left
    assert out.read_bytes() == OLD
    r = subprocess.run([sys.executable, "-m", "gridgeo.cli", "build", str(small_rules), "-o", str(out),
                        "--workers", "1", "--no-progress"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert _temps(tmp_path) == []
    assert "temporary file of an earlier run" in r.stderr
    assert out.read_bytes() != OLD


# --------------------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------------------
def test_stale_temps_removed_live_and_foreign_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f".out.gpkg{TMP_MARK}{dead}-abcd1234.gpkg"
    keep = [tmp_path / f".out.gpkg{TMP_MARK}{live}-live0000.gpkg",  # a run writing now
            tmp_path / f".other.gpkg{TMP_MARK}{dead}-abcd1234.gpkg",  # another target's
            tmp_path / ".out.gpkg.k2j3h4.gpkg",  # not ours (no mark): never guessed at
            tmp_path / f".out.gpkg{TMP_MARK}notapid.gpkg"]
    for f in [stale, Path(f"{stale}-journal"), tmp_path / f".out.gpkg{TMP_MARK}{dead}-0nly5ide.gpkg-wal", *keep]:
        f.write_bytes(b"x")
    removed = remove_stale_temps(target)
    assert sorted(removed) == sorted([stale, tmp_path / f".out.gpkg{TMP_MARK}{dead}-0nly5ide.gpkg"])
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_write_removes_stale_and_names_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    stale = tmp_path / f".out.gpkg{TMP_MARK}{_dead_pid()}-abcd1234.gpkg"
    stale.write_bytes(b"x")
    seen: list[str] = []
    with atomic_path(target) as tmp:
        seen.append(tmp.name)
        assert not stale.exists()
        tmp.write_bytes(b"new")
    assert seen[0].startswith(f".out.gpkg{TMP_MARK}{os.getpid()}-") and seen[0].endswith(".gpkg")
    assert target.read_bytes() == b"new"
    write_layer(gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326), target)
    assert [n.name for n in tmp_path.iterdir()] == ["out.gpkg"]


def test_atomic_path_interrupted_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    target.write_bytes(OLD)
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        Path(f"{tmp}-journal").write_bytes(b"j")
        raise KeyboardInterrupt
    assert [n.name for n in tmp_path.iterdir()] == ["out.gpkg"]
    assert target.read_bytes() == OLD


def _sleep_or_fail(x: float) -> float:
    if x < 0:
        raise ValueError("village failed")
    time.sleep(x)
    return x


def test_pool_failure_ends_running_workers() -> None:
    """A failing task does not wait for the others (a ``with`` block waited minutes): workers ended, error on."""
    t0 = time.monotonic()
    before = set(_children(os.getpid())) if LINUX else set()
    with pytest.raises(ValueError, match="village failed"):
        run_pool(_sleep_or_fail, [-1.0, 60.0, 60.0, 60.0], workers=2)
    assert time.monotonic() - t0 < 15
    if LINUX:
        assert _wait_for(lambda: set(_children(os.getpid())) <= before, 5)


def test_pool_results_in_order() -> None:
    assert run_pool(_sleep_or_fail, [0.2, 0.0, 0.1, 0.0], workers=2) == [0.2, 0.0, 0.1, 0.0]


@pytest.mark.parametrize("in_flight", [None, 1])
def test_pool_takes_lazy_tasks_as_the_workers_get_through_them(in_flight: int | None) -> None:
    """A generator of tasks is never drawn more than IN_FLIGHT (or ``in_flight``) per worker ahead of the results."""
    from gridgeo.county import _pool

    taken: list[int] = []
    ahead: list[int] = []

    def tasks() -> Iterator[float]:
        for i in range(60):
            taken.append(i)
            yield 0.0 if i % 7 else 0.05

    def arrived() -> None:
        ahead.append(len(taken) - len(ahead) - 1)

    with _pool.WorkerPool(2) as pool:
        out = pool.map(_sleep_or_fail, tasks(), on_result=arrived) if in_flight is None \
            else pool.map(_sleep_or_fail, tasks(), on_result=arrived, in_flight=in_flight)
    assert out == [0.0 if i % 7 else 0.05 for i in range(60)] and len(taken) == 60
    assert max(ahead) <= (in_flight or _pool.IN_FLIGHT) * 2 - 1


def _mark_sleep_or_fail(task: tuple[str, int, float]) -> int:
    """Leave ``started-I``; fail at once for a negative time, else sleep and leave ``done-I``."""
    d, i, seconds = task
    Path(d, f"started-{i}").touch()
    if seconds < 0:
        raise ValueError(f"task {i} failed")
    time.sleep(seconds)
    Path(d, f"done-{i}").touch()
    return i


def test_pool_first_failure_does_not_wait_for_earlier_tasks(tmp_path: Path) -> None:
    """Fail fast: task 1 fails while task 0 (before it in the input) still sleeps; the error comes without
    waiting for task 0, the queue behind them never starts, and no worker is left. Structural, not timed:
    waiting on the tasks in input order (as the pool did) lets task 0 finish and leave ``done-0`` first."""
    n = 8
    tasks = [(str(tmp_path), i, -1.0 if i == 1 else 30.0) for i in range(n)]
    before = set(_children(os.getpid())) if LINUX else set()
    arrived: list[int] = []
    with pytest.raises(ValueError, match="task 1 failed"):
        run_pool(_mark_sleep_or_fail, tasks, workers=2, on_result=lambda: arrived.append(1))
    names = {f.name for f in tmp_path.iterdir()}
    assert not {f"done-{i}" for i in range(n)} & names, f"the error waited for a task to finish: {sorted(names)}"
    assert arrived == []
    started = sorted(int(m[len("started-"):]) for m in names if m.startswith("started-"))
    assert 1 in started and len(started) < n, f"queued tasks were not cancelled: started {started}"
    if LINUX:
        assert _wait_for(lambda: set(_children(os.getpid())) <= before, 5), "a worker survived"


def test_pool_progress_moves_as_results_arrive(tmp_path: Path) -> None:
    """``on_result`` runs per arriving result: the quick later tasks count before the slow first one is done."""
    tasks = [(str(tmp_path), 0, 3.0), *((str(tmp_path), i, 0.0) for i in range(1, 6))]
    seen: list[bool] = []
    out = run_pool(_mark_sleep_or_fail, tasks, workers=2,
                   on_result=lambda: seen.append((tmp_path / "done-0").exists()))
    assert out == list(range(6))
    assert len(seen) == 6 and not seen[0], "the first result counted waited for the slow first task"


def test_pool_side_job_runs_beside_the_tasks(tmp_path: Path) -> None:
    """A job submitted beside ``map`` (the blocks) runs while the tasks do and keeps its result."""
    from gridgeo.county._pool import WorkerPool

    with WorkerPool(2) as pool:
        side = pool.submit(_mark_sleep_or_fail, (str(tmp_path), 99, 1.0))
        out = pool.map(_mark_sleep_or_fail, [(str(tmp_path), i, 0.0) for i in range(6)], also=[side])
        assert out == list(range(6))
        assert side.result() == 99
    # beside, not before or after: the quick tasks were done while the side job slept
    side_done = (tmp_path / "done-99").stat().st_mtime
    assert all((tmp_path / f"done-{i}").stat().st_mtime < side_done for i in range(6))


def test_pool_failing_side_job_stops_the_tasks_at_once(tmp_path: Path) -> None:
    """A side job that fails raises in ``map`` as a failed task does: the queue cancelled, no worker left."""
    from gridgeo.county._pool import WorkerPool

    before = set(_children(os.getpid())) if LINUX else set()
    pool = WorkerPool(2)
    with pytest.raises(ValueError, match="task 99 failed"):
        side = pool.submit(_mark_sleep_or_fail, (str(tmp_path), 99, -1.0))
        pool.map(_mark_sleep_or_fail, [(str(tmp_path), i, 30.0) for i in range(8)], also=[side])
    names = {f.name for f in tmp_path.iterdir()}
    assert not any(n.startswith("done-") for n in names), f"the error waited for a task: {sorted(names)}"
    if LINUX:
        assert _wait_for(lambda: set(_children(os.getpid())) <= before, 5), "a worker survived"


def test_parent_watch_fallback(tmp_path: Path) -> None:
    """Without PR_SET_PDEATHSIG (other systems) the polling thread alone ends an orphaned worker."""
    pidfile = tmp_path / "pid"
    grand = textwrap.dedent(f"""
        import os, pathlib
        from gridgeo.county._pool import _watch_parent
        pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()))
        _watch_parent(os.getppid(), poll=0.2)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    middle = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grand!r}])"],
                              env=env)
    try:
        assert _wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 30)
        gpid = int(pidfile.read_text())
        assert _alive(gpid)
        middle.kill()
        middle.wait()
        assert _wait_for(lambda: not _alive(gpid), 5, 0.1), "the orphan kept running"
    finally:
        if middle.poll() is None:
            middle.kill()


# --------------------------------------------------------------------------------------
# the CLI's handlers
# --------------------------------------------------------------------------------------
def test_handlers_raise_then_restore() -> None:
    """Inside a command SIGTERM raises Interrupted (143), a second signal while stopping is ignored; after, the
    process's own handlers are back."""
    from gridgeo.cli.main import Interrupted, _interrupts

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as info, _interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs at the next bytecode
        pytest.fail("SIGTERM did not interrupt")
    assert info.value.signum == signal.SIGTERM
    with _interrupts():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)  # already stopping: logged, not raised
        time.sleep(0.05)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize(("written", "sig", "line"), [
    (False, signal.SIGTERM, "gridgeo: interrupted; nothing written (out.gpkg unchanged)"),
    (False, signal.SIGINT, "gridgeo: interrupted; nothing written (out.gpkg unchanged)"),
    (True, signal.SIGTERM, "gridgeo: interrupted after writing out.gpkg"),
])
def test_interrupted_line_and_code(written: bool, sig: signal.Signals, line: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from gridgeo.cli.main import Interrupted, _interrupted

    args = argparse.Namespace(output="out.gpkg", written=written)
    assert _interrupted(args, Interrupted(sig)) == 128 + sig
    assert capsys.readouterr().err.splitlines() == [line]
    assert _interrupted(argparse.Namespace(), KeyboardInterrupt()) == 130  # a plain Ctrl-C
    assert capsys.readouterr().err.splitlines() == ["gridgeo: interrupted"]


def test_stale_temp_that_cannot_be_removed_is_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale temp in a directory we may not write is warned about, not an error (the write says why)."""
    import gridgeo.data.io as io

    stale = tmp_path / f".out.gpkg{TMP_MARK}{_dead_pid()}-abcd1234.gpkg"
    stale.write_bytes(b"x")

    def refuse(tmp: Path) -> None:
        raise PermissionError(13, "Permission denied", str(tmp))

    monkeypatch.setattr(io, "_remove_temp", refuse)
    assert remove_stale_temps(tmp_path / "out.gpkg") == []
    assert stale.exists()


def _resident() -> int:
    """This process's resident bytes (Linux: /proc/self/statm)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not LINUX, reason="malloc_trim is glibc's")
def test_trim_memory_gives_freed_geometry_pages_back() -> None:
    """After a large GEOS result is freed, trim_memory returns its pages: the resident size falls."""
    import gc

    import numpy as np

    from gridgeo.county._pool import trim_memory

    trim_memory()
    base = _resident()
    rings = shapely.buffer(shapely.points(np.arange(60_000.0), np.zeros(60_000)), 0.4, quad_segs=32)
    assert _resident() - base > 100 * 2**20  # about 130 vertices a ring: a few hundred MB of C heap
    kept = rings[::200].copy()  # a few survivors scattered through the heap, as a build leaves them
    del rings
    gc.collect()
    freed = _resident()
    assert trim_memory() is True
    assert _resident() < freed - 50 * 2**20
    assert len(kept) == 300
