"""The PostgreSQL store (gridgeo.store.postgres): what only a server has; the shared API is tests/test_store.py."""

from __future__ import annotations

import threading

import psycopg
import pytest

from gridgeo.errors import ConflictError, StoreError
from gridgeo.store import open_store
from gridgeo.store.base import Placed, Visit
from gridgeo.store.postgres import PostgresStore, redact

from .pg_cluster import Cluster


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://wang:s3cr%40t@db.example:5433/county", "postgresql://wang@db.example:5433/county"),
    ("postgresql://wang@db/county?password=s3cret&sslmode=require",
     "postgresql://wang@db/county?password=***&sslmode=require"),
    ("postgresql://db:5432/county", "postgresql://db:5432/county"),
    ("postgres://u:p@/c?host=/tmp/x", "postgres://u@/c?host=/tmp/x"),
])
def test_redact_hides_the_password_only(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_unreachable_server_names_the_url_without_password(pg_cluster: Cluster) -> None:
    url = f"postgresql://wang:s3cret@/county?host={pg_cluster.socket_dir}/nowhere"
    with pytest.raises(StoreError) as err:
        open_store(url)
    text = str(err.value)
    assert "s3cret" not in text and text.startswith(f"postgresql://wang@/county?host={pg_cluster.socket_dir}/nowhere")
    assert "cannot connect to PostgreSQL" in text and "server running" in text


def test_wrong_password_is_an_authentication_failure(pg_cluster: Cluster, pg_url: str) -> None:
    db = pg_url.split("/")[3].split("?")[0]
    pg_cluster.sql("CREATE ROLE gg_clerk LOGIN PASSWORD 'right-one'")
    try:
        with pytest.raises(StoreError, match="password authentication failed") as err:
            open_store(pg_cluster.url(db, user="gg_clerk", password="wrong-one"))
        assert "wrong-one" not in str(err.value) and "check the user and password" in str(err.value)
    finally:
        pg_cluster.sql("DROP ROLE gg_clerk")


def test_not_a_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="not a PostgreSQL URL"):
        PostgresStore("postgresql://u@h/db?nonsense_option=1")


def test_connections_are_named_and_each_thread_has_its_own(pg_url: str) -> None:
    store = open_store(pg_url)
    seen: list[int] = []

    def work() -> None:
        seen.append(int(store.query("SELECT pg_backend_pid()")[0][0]))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = store.query("SELECT application_name FROM pg_stat_activity WHERE pid = ANY(?)", (seen,))
    assert len(set(seen)) == 3 and {n for (n,) in names} == {"gridgeo"}
    store.close()


def test_add_user_racing_another_session_is_a_conflict(pg_url: str) -> None:
    """The other session inserts the name first and commits only once ours waits on the unique index."""
    store = open_store(pg_url)
    other = psycopg.connect(pg_url)
    other.execute("INSERT INTO gg_users (name, role, token_hash, created, created_by) "
                  "VALUES ('wang', 'worker', 'h', 'now', 'test')")
    errors: list[BaseException] = []

    def add() -> None:
        try:
            store.add_user("wang", role="viewer")
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    t = threading.Thread(target=add)
    t.start()
    with psycopg.connect(pg_url, autocommit=True) as watch:  # until our insert waits on the other's row lock
        while not watch.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'gridgeo' "
                                "AND wait_event_type = 'Lock'").fetchone():
            assert t.is_alive(), f"add_user ended before it waited: {errors}"
            watch.execute("SELECT pg_sleep(0.01)")
    other.commit()
    t.join()
    other.close()
    assert len(errors) == 1 and isinstance(errors[0], ConflictError), errors
    assert "already exists" in str(errors[0])
    assert [u.name for u in store.users()] == ["wang"] and store.audit_rows() == []  # no audit of a failed write
    store.close()


def test_a_dropped_connection_is_replaced(pg_url: str, pg_cluster: Cluster) -> None:
    store = open_store(pg_url)
    pid = store.query("SELECT pg_backend_pid()")[0][0]
    pg_cluster.sql(f"SELECT pg_terminate_backend({int(pid)})")
    with pytest.raises(StoreError):  # the transaction under way when the server went away fails: a 503
        store.users()
    assert store.users() == [] and store.query("SELECT pg_backend_pid()")[0][0] != pid
    store.close()


def test_writes_from_many_threads_all_land(pg_url: str) -> None:
    store = open_store(pg_url)
    place = Placed("1", {"grid": "G"}, ("G",))
    ids: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        for _ in range(5):
            got = store.add_visits([Visit(place, "2026-11-30T01:00:00.000000Z", "2026-11-30", "visited", None)] * 4,
                                   actor="w")
            with lock:
                ids.extend(got)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 160
    assert store.query("SELECT COUNT(*) FROM gg_visits")[0][0] == 160
    assert store.query("SELECT COUNT(*) FROM gg_audit WHERE action = 'visit.add'")[0][0] == 160
    store.close()


def test_reopening_keeps_the_data_and_a_newer_schema_is_refused(pg_url: str) -> None:
    s = open_store(pg_url)
    s.add_user("li", role="admin")
    s.close()
    s2 = open_store(pg_url)
    assert [u.name for u in s2.users()] == ["li"]
    with s2.transaction() as cur:
        s2.execute(cur, "UPDATE gg_meta SET value = '999' WHERE key = 'schema'")
    s2.close()
    with pytest.raises(StoreError, match="newer than this gridgeo"):
        open_store(pg_url)


def test_users_cli_on_a_database(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``gridgeo users add|list|revoke postgresql://...``: the token alone on the last line, never listed."""
    from gridgeo.cli.main import main

    assert main(["users", "add", pg_url, "li", "--role", "viewer"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    store = open_store(pg_url)
    assert store.authenticate(token) is not None
    assert main(["users", "list", pg_url]) == 0
    listed = capsys.readouterr().out
    assert "li\tviewer" in listed and token not in listed
    assert main(["users", "revoke", pg_url, "li"]) == 0
    assert store.authenticate(token) is None
    assert [a["action"] for a in store.audit_rows()] == ["user.add", "user.revoke"]
    store.close()
