"""``gridgeo build --scheduler ADDRESS``: the villages on a Dask cluster, the same county as a local build.

Why a test: the cluster path must not be a second pipeline that drifts. A real
``distributed.LocalCluster`` (two worker processes, one thread each) builds a
small generated county and the GeoPackage is compared layer by layer with a
local build's (``bench/compare_layers.py``: rows, columns, values, WKB); a
failing village must come back as the same gridgeo error, the first failure
must not wait for the queue, and a scheduler that is not there, or Dask not
installed, must say so in one line before anything is read.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import pytest
from distributed import Client, LocalCluster, WorkerPlugin

from bench.compare_layers import compare_layer, read_all
from gridgeo.county._dask import _result, check_scheduler, run_dask
from gridgeo.county.build import build_county
from gridgeo.county.rules import CountyRules
from gridgeo.errors import GeometryError, SchedulerError, UsageError
from tests.conftest import synth_rules


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of one thread each, as the issue's example; closed after the module."""
    t0 = time.monotonic()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        print(f"LocalCluster up in {time.monotonic() - t0:.1f} s at {c.scheduler_address}")
        yield c


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gridgeo synth --seed 3 --villages 12 --townships 3 --households 3000`` and a rules file reading it."""
    return synth_rules(tmp_path_factory.mktemp("dask_county"), seed=3, townships=3, villages=12, households=3000)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridgeo.cli", *args, "--no-progress"], capture_output=True,
                          text=True, timeout=600)


def _free_port() -> int:
    """A TCP port on which nothing listens (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------
# the county on the cluster
# --------------------------------------------------------------------------------------
def test_cluster_build_identical_to_local(cluster: LocalCluster, rules: Path, tmp_path: Path) -> None:
    local, remote = tmp_path / "local.gpkg", tmp_path / "dask.gpkg"
    t0 = time.monotonic()
    r = _cli("build", str(rules), "-o", str(local), "--workers", "2")
    t_local = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    r = _cli("build", str(rules), "-o", str(remote), "--scheduler", cluster.scheduler_address,
             "--report", str(tmp_path / "report.json"))
    t_dask = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    print(f"local build {t_local:.1f} s, Dask build {t_dask:.1f} s")
    a, b = read_all(local), read_all(remote)
    assert list(a) == list(b)
    assert {"villages", "grids", "points", "exclusive", "households"} <= set(a)
    assert len(a["villages"]) == 12 and len(a["points"]) > 12
    diffs = [d for name in a for d in compare_layer(name, a[name], b[name])]
    assert diffs == []
    assert '"address": "' + cluster.scheduler_address + '"' in (tmp_path / "report.json").read_text()


def test_run_dask_in_order_and_progress(cluster: LocalCluster) -> None:
    seen: list[int] = []
    run = run_dask(_square, list(range(9)), scheduler=cluster.scheduler_address, keys=[f"n-{i}" for i in range(9)],
                   on_result=lambda: seen.append(1))
    assert run.results == [i * i for i in range(9)]
    assert run.threads == 2 and len(seen) == 9


# --------------------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------------------
def _square(x: int) -> int:
    return x * x


def _mark_sleep_or_fail(task: tuple[str, int, float]) -> int:
    """Leave ``started-I``; fail at once for a negative time, else sleep and leave ``done-I``."""
    d, i, seconds = task
    Path(d, f"started-{i}").touch()
    if seconds < 0:
        raise GeometryError(f"village {i}: failed")
    time.sleep(seconds)
    Path(d, f"done-{i}").touch()
    return i


def test_run_dask_first_failure_does_not_wait(cluster: LocalCluster, tmp_path: Path) -> None:
    """Task 1 fails while task 0 sleeps: the error comes at once, as the task raised it, the tasks not yet
    sent never start. Structural: collecting in input order would wait for ``done-0``. (Task 0 itself runs
    on: Dask cannot stop a running task; it is kept short so the next test does not queue behind it.)"""
    n = 10
    tasks = [(str(tmp_path), i, -1.0 if i == 1 else 4.0) for i in range(n)]
    arrived: list[int] = []
    with pytest.raises(GeometryError, match=r"^village 1: failed$"):
        run_dask(_mark_sleep_or_fail, tasks, scheduler=cluster.scheduler_address,
                 keys=[f"t-{i}" for i in range(n)], on_result=lambda: arrived.append(1))
    names = {f.name for f in tmp_path.iterdir()}
    assert not {f"done-{i}" for i in range(n)} & names, f"the error waited for a task: {sorted(names)}"
    assert arrived == []
    started = [m for m in names if m.startswith("started-")]
    assert "started-1" in names and len(started) < n, f"tasks not sent out were started: {sorted(started)}"
    time.sleep(4.5)  # let the running sleepers end before the next test uses the cluster


class _BreakVillage(WorkerPlugin):
    """On every worker: one village's units stage raises, as a real bad village would."""

    def __init__(self, code: str) -> None:
        self.code = code

    def setup(self, worker: Any) -> None:
        import gridgeo.county.village as v

        self.real = real = v._make_units
        code = self.code

        def broken(t: Any, *a: Any, **kw: Any) -> Any:
            if t.code == code:
                raise GeometryError("no faces")
            return real(t, *a, **kw)

        v._make_units = broken  # type: ignore[assignment]

    def teardown(self, worker: Any) -> None:
        import gridgeo.county.village as v

        v._make_units = self.real  # type: ignore[assignment]


def test_failing_village_same_error_as_local(cluster: LocalCluster, rules: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The failing village's GeometryError, named with code, name and stage, word for word as locally;
    the CLI exits 1 and writes nothing."""
    county = rules.parent / "county.gpkg"
    vil = gpd.read_file(county, layer="villages")
    code, name = str(vil["code"].iloc[4]), str(vil["name"].iloc[4])
    import gridgeo.county.village as v

    real = v._make_units

    def broken(t: Any, *a: Any, **kw: Any) -> Any:  # the plugin's patch, in this process, for the local build
        if t.code == code:
            raise GeometryError("no faces")
        return real(t, *a, **kw)

    monkeypatch.setattr(v, "_make_units", broken)
    with pytest.raises(GeometryError) as here:
        build_county(CountyRules(county=county), workers=1)
    monkeypatch.undo()
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        client.register_plugin(_BreakVillage(code), name="break-village")
        try:
            with pytest.raises(GeometryError) as there:
                build_county(CountyRules(county=county), scheduler=cluster.scheduler_address)
            out = tmp_path / "out" / "county.gpkg"
            out.parent.mkdir()
            r = _cli("build", str(rules), "-o", str(out), "--scheduler", cluster.scheduler_address)
        finally:
            client.unregister_worker_plugin("break-village")
    assert str(there.value) == str(here.value) == (f"village {code} {name}: no rung of the fallback ladder tiles it "
                                                   "(tried pipeline, snapped, coarse, voronoi, whole); the last, "
                                                   "whole failed at units: no faces")
    assert type(there.value) is type(here.value) is GeometryError
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1] == f"gridgeo: error: {here.value}"
    assert list(out.parent.iterdir()) == []


def test_unreachable_scheduler_exit_1_nothing_read_or_written(rules: Path, tmp_path: Path) -> None:
    out = tmp_path / "county.gpkg"
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    r = _cli("build", str(rules), "-o", str(out), "--scheduler", address)
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [f"gridgeo: error: cannot reach the Dask scheduler at {address}: "
                                     "Connection refused"]
    assert list(tmp_path.iterdir()) == []
    print(f"unreachable scheduler reported in {time.monotonic() - t0:.1f} s")


def test_silent_listener_and_worker_address_are_no_scheduler(cluster: LocalCluster, rules: Path,
                                                             tmp_path: Path) -> None:
    """A port where something listens but says nothing (a Client would wait on it forever), and a worker's
    address instead of the scheduler's: each one line, exit 1, within Dask's connect timeout."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        address = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
        r = subprocess.run([sys.executable, "-m", "gridgeo.cli", "build", str(rules), "-o", str(tmp_path / "c.gpkg"),
                            "--scheduler", address], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [f"gridgeo: error: no Dask scheduler answers at {address} (something listens "
                                     "there, but said nothing within 2 s)"]
    assert list(tmp_path.iterdir()) == []
    worker = next(iter(cluster.scheduler_info["workers"]))
    with pytest.raises(SchedulerError, match="is not a Dask scheduler .*Worker"):
        check_scheduler(worker)


def test_bad_scheduler_address_is_a_usage_error(rules: Path, tmp_path: Path) -> None:
    r = _cli("build", str(rules), "-o", str(tmp_path / "county.gpkg"), "--scheduler", "foo://bar")
    assert r.returncode == 2, r.stderr
    assert "is not a scheduler address" in r.stderr and len(r.stderr.splitlines()) == 1
    r = _cli("build", str(rules), "-o", str(tmp_path / "county.gpkg"), "--scheduler", "tcp://127.0.0.1:1",
             "--workers", "2")
    assert r.returncode == 2 and "exclude each other" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_workers(tmp_path: Path) -> None:
    import dask

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty, \
            dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(SchedulerError, match="has no workers"):
        run_dask(_square, [1, 2], scheduler=empty.scheduler_address, keys=["a", "b"])


def test_dask_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(UsageError, match=r"pip install 'gridgeo\[dask\]'"):
        check_scheduler("tcp://127.0.0.1:8786")


def test_lost_worker_is_a_scheduler_error() -> None:
    import distributed

    class Lost:
        def result(self) -> None:
            raise distributed.KilledWorker("village-1", SimpleNamespace(address="tcp://10.0.0.9:40000"), 3)

    with pytest.raises(SchedulerError, match=r"^village-1: its Dask worker died"):
        _result(distributed, Lost(), "village-1")
