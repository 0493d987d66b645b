"""Reliability of the writable store under load: concurrent writers, and a server killed with SIGKILL.

A real ``gridgeo serve`` process on loopback (waitress, 8 threads), 8 client
threads each logging 500 visits one request at a time. A visit counts as
acknowledged when its 201 came back with its id; afterwards every
acknowledged id must be in the store with what was sent. In the second test
the server is killed with SIGKILL half-way, restarted on the same store, and
nothing acknowledged may be missing. Bounded by counts, never by time.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .access_county import make_people_county

CLIENTS, VISITS = 8, 500
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("reliability") / "county.gpkg")


class Server:
    """``gridgeo serve`` of ``target`` in its own process."""

    def __init__(self, target: str, county: Path, log: Path) -> None:
        self.target, self.county, self.log, self.port = target, county, log, _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gridgeo.cli", "serve", str(self.county), "--store",
                                      self.target, "--port", str(self.port), "--threads", "8"],
                                     stdout=out, stderr=out)
        for _ in range(600):  # start-up reads the county: up to a minute on a slow machine
            if self.proc.poll() is not None:
                pytest.fail(f"server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _households(county: Path) -> list[str]:
    import pyogrio

    n = pyogrio.read_info(county, layer="households")["features"]
    return [str(i) for i in range(1, n + 1)]


def _writer(port: int, token: str, households: list[str], k: int, acked: list[tuple[int, dict]],
            stop: threading.Event) -> None:
    """Client ``k``: :data:`VISITS` visits, one request each, over one keep-alive connection (reopened if lost)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for i in range(VISITS):
        if stop.is_set():
            return
        body = {"household": households[(k * VISITS + i) % len(households)], "outcome": "visited",
                "time": f"2026-11-{1 + i % 28:02d}T{8 + k:02d}:{i % 60:02d}:00", "note": f"c{k}-{i}"}
        try:
            conn.request("POST", "/visits", body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue  # not acknowledged: the server may or may not have it
        if resp.status == 201:
            acked.append((json.loads(data)["ids"][0], body))
        else:
            raise AssertionError(f"client {k}: {resp.status} {data[:300]!r}")
    conn.close()


def _load(server: Server, token: str, households: list[str], *, kill_after: int | None) -> list[tuple[int, dict]]:
    acked: list[tuple[int, dict]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            _writer(server.port, token, households, k, acked, stop)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    if kill_after is not None:
        while len(acked) < kill_after and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        server.kill()
        stop.set()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors[0]
    return acked


def _check(target: str, acked: list[tuple[int, dict]]) -> int:
    from gridgeo.store import open_store

    store = open_store(target, create=False)
    try:
        rows = {r["id"]: r for r in store.visits(limit=10**6)}
        if store.dialect == "sqlite":
            assert store.query("PRAGMA integrity_check") == [("ok",)]
    finally:
        store.close()
    missing = [vid for vid, _ in acked if vid not in rows]
    assert not missing, f"{len(missing)} acknowledged visits lost, e.g. {missing[:5]}"
    for vid, body in acked:
        assert rows[vid]["household"] == body["household"] and rows[vid]["note"] == body["note"]
    assert len({vid for vid, _ in acked}) == len(acked)
    return len(rows)


def _setup(people_county: Path, tmp_path: Path, store_target: str) -> tuple[str, str, list[str], Path]:
    from gridgeo.store import open_store

    county = tmp_path / "c.gpkg"
    shutil.copy(people_county, county)
    target = str(county) if not store_target.startswith("postgres") else store_target
    store = open_store(target)
    token = store.add_user("admin", role="admin")[1]
    store.close()
    return target, token, _households(county), county


def test_concurrent_writers_lose_nothing(people_county: Path, tmp_path: Path, store_target: str) -> None:
    target, token, households, county = _setup(people_county, tmp_path, store_target)
    server = Server(target, county, tmp_path / "server.log")
    server.start()
    try:
        acked = _load(server, token, households, kill_after=None)
    finally:
        server.stop()
    assert len(acked) == CLIENTS * VISITS
    assert _check(target, acked) == CLIENTS * VISITS


def test_sigkill_mid_load_loses_no_acknowledged_write(people_county: Path, tmp_path: Path,
                                                      store_target: str) -> None:
    target, token, households, county = _setup(people_county, tmp_path, store_target)
    server = Server(target, county, tmp_path / "server.log")
    server.start()
    try:
        acked = _load(server, token, households, kill_after=CLIENTS * VISITS // 4)
    finally:
        server.stop()
    assert CLIENTS * VISITS // 4 <= len(acked) < CLIENTS * VISITS
    stored = _check(target, acked)
    assert stored >= len(acked)  # in flight when killed: stored or not, never half
    server.start()  # the same store serves again, with everything acknowledged
    try:
        more = _load(server, token, households[:10], kill_after=None)
    finally:
        server.stop()
    _check(target, acked + more)
