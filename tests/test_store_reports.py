"""Reports in the store, on both backends: filed, escalated when a deadline passes, closed, every step audited."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from gridgeo.errors import ConflictError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, UsageError
from gridgeo.store import Reports, open_store
from gridgeo.store.photos import PhotoDir, check_photo
from gridgeo.store.reports import NewReport, Rung, overdue

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
PLACES = [{"level": "township", "code": "T1", "name": "城关街道"}, {"level": "village", "code": "V1", "name": "朝阳"},
          {"level": "grid", "code": "G1", "name": "一组"}, {"level": "point", "code": "P1", "name": "点1"}]
LADDER = [Rung("grid", "G1", "格长", "张三", "13600000001", 24.0),
          Rung("village", "V1", "村(社区)书记", "李四", "13600000002", 48.0),
          Rung("county", None, "县社会治理中心", None, None, 120.0, "no one responsible for township T1; "
                                                               "assigned one level up")]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def _new(category: str = "sanitation") -> NewReport:
    return NewReport(117.1, 28.2, category, "垃圾堆积三天了", PLACES, LADDER, "王五", "13900001111")


@pytest.fixture
def book(store_target: str):  # type: ignore[no-untyped-def]
    store = open_store(store_target)
    yield Reports(store)
    store.close()


def test_filed_escalated_on_deadline_and_closed_with_its_trail(book: Reports) -> None:
    rep = book.file(_new(), actor="worker", now=T0)
    rid = int(rep["id"])
    assert (rep["state"], rep["level"], rep["unit"], rep["step"]) == ("received", "grid", "G1", 0)
    assert rep["due"] == "2026-12-02T09:00:00.000000Z" and rep["chain"] == ["P1", "G1", "V1", "T1"]
    assert book.sweep(now=T0 + dt.timedelta(hours=23)) == []  # not yet due: nothing moves
    rep = book.transition(rid, "handling", actor="worker", now=T0 + dt.timedelta(hours=1), note="已到现场")
    late = T0 + dt.timedelta(hours=25)
    assert overdue(rep, late) and [r["id"] for r in book.find(now=late, overdue=True)] == [rid]
    assert book.sweep(now=late) == [rid]
    rep = book.get(rid)
    assert (rep["state"], rep["level"], rep["unit"], rep["step"]) == ("routed", "village", "V1", 1)
    assert rep["due"] == "2026-12-04T10:00:00.000000Z"  # restarted at the escalation: 25 h + 48 h
    assert book.sweep(now=late) == [] and not overdue(rep, late)  # once per passed deadline
    rep = book.escalate(rid, actor="secretary", now=late + dt.timedelta(hours=1), note="需要县里协调")
    assert (rep["level"], rep["unit"]) == ("county", None)
    with pytest.raises(ConflictError, match="top of its ladder"):
        book.escalate(rid, actor="secretary", now=late)
    assert book.sweep(now=late + dt.timedelta(days=30)) == []  # the county has no one above: stays, overdue
    with pytest.raises(UsageError, match="note"):
        book.transition(rid, "closed", actor="admin", now=late)
    rep = book.transition(rid, "closed", actor="admin", now=late + dt.timedelta(hours=2), note="已清运")
    assert rep["state"] == "closed" and rep["closed"] is not None and not overdue(rep, late + dt.timedelta(days=99))
    events = book.events(rid)
    assert [(e["actor"], e["action"], e["from_state"], e["to_state"], e["to_level"]) for e in events] == [
        ("worker", "file", None, "received", "grid"), ("worker", "transition", "received", "handling", "grid"),
        ("system", "deadline", "handling", "routed", "village"),
        ("secretary", "escalate", "routed", "routed", "county"), ("admin", "transition", "routed", "closed", "county")]
    assert "deadline 2026-12-02T09:00:00.000000Z passed" in events[2]["note"]
    assert "需要县里协调" in events[3]["note"] and "township T1" in events[3]["note"]  # why, and why not the township
    audit = [(r["actor"], r["action"], r["target"]) for r in book.store.audit_rows() if r["action"].startswith("rep")]
    target = f"reports/{rid}"
    assert audit == [("worker", "report.file", target), ("worker", "report.handling", target),
                     ("system", "report.deadline", target), ("secretary", "report.escalate", target),
                     ("admin", "report.closed", target)]
    closing = book.store.audit_rows(action="report.closed")[0]
    assert closing["before"] == {"state": "routed"} and closing["after"]["note"] == "已清运"


def test_illegal_transitions_name_the_allowed_ones(book: Reports) -> None:
    rid = int(book.file(_new(), actor="worker", now=T0)["id"])
    with pytest.raises(ConflictError, match="received; it may go to: handling, routed, closed"):
        book.transition(rid, "supervised", actor="worker", now=T0)
    with pytest.raises(UsageError, match="department"):
        book.transition(rid, "routed", actor="worker", now=T0)
    rep = book.transition(rid, "routed", actor="worker", now=T0, department="县城管局", note="占道经营")
    assert rep["department"] == "县城管局" and rep["level"] == "grid"  # to a department: same level, same deadline
    book.transition(rid, "closed", actor="worker", now=T0, note="已处理")
    with pytest.raises(ConflictError, match="none \\(it is closed\\)"):
        book.transition(rid, "handling", actor="worker", now=T0)
    with pytest.raises(ConflictError, match="closed"):
        book.escalate(rid, actor="worker", now=T0)
    with pytest.raises(UsageError, match="to: must be one of"):
        book.transition(rid, "done", actor="worker", now=T0)
    with pytest.raises(NotFoundError):
        book.get(999_999)


def test_a_change_made_meanwhile_is_a_conflict_not_a_double_move(book: Reports) -> None:
    rid = int(book.file(_new(), actor="worker", now=T0)["id"])
    seen = book.get(rid)
    book.sweep(now=T0 + dt.timedelta(hours=30))  # the deadline moved it while a handler was looking
    with pytest.raises(ConflictError, match="changed meanwhile"):
        book.escalate(rid, actor="worker", now=T0, expect=(seen["state"], seen["step"]))
    assert book.get(rid)["step"] == 1
    assert len([e for e in book.events(rid) if e["action"] in ("escalate", "deadline")]) == 1


def test_list_filters(book: Reports) -> None:
    a = int(book.file(_new(), actor="w", now=T0)["id"])
    b = int(book.file(_new("safety"), actor="w", now=T0)["id"])
    book.transition(b, "handling", actor="w", now=T0)
    ids = lambda **kw: [int(r["id"]) for r in book.find(now=T0, **kw)]  # noqa: E731
    assert ids() == [a, b] and ids(unit="V1") == [a, b] and ids(unit="G2") == [] and ids(unit="G%") == []
    assert ids(state="handling") == [b] and ids(category="safety") == [b] and ids(assigned="G1") == [a, b]
    assert ids(after=a) == [b] and ids(limit=1) == [a] and ids(overdue=False) == [a, b]
    with pytest.raises(UsageError, match="state must be one of"):
        book.find(now=T0, state="nope")


def test_photos_are_files_named_by_their_hash(tmp_path: Path) -> None:
    d = PhotoDir(tmp_path / "photos")
    p = d.put(JPEG)
    assert (p.type, p.size, p.sha256) == ("image/jpeg", len(JPEG), hashlib.sha256(JPEG).hexdigest())
    assert d.read(p.sha256) == JPEG and d.put(JPEG) == p
    assert d.put(PNG).type == "image/png" and check_photo(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    files = sorted(f.name for f in (tmp_path / "photos").rglob("*") if f.is_file())
    assert len(files) == 2 and not any(f.startswith(".tmp") for f in files)  # no temporary file left
    with pytest.raises(UnsupportedMediaTypeError, match="not a JPEG, PNG or WebP"):
        d.put(b"GIF89a" + b"\x00" * 10)
    with pytest.raises(UnsupportedMediaTypeError, match="empty"):
        d.put(b"")
    with pytest.raises(PayloadTooLargeError, match="at most 10 MiB"):
        d.put(JPEG + b"\x00" * (10 * 2**20))
    with pytest.raises(NotFoundError):
        d.read("../../etc/passwd")


def test_tables_made_in_a_store_from_before_reports(tmp_path: Path) -> None:
    """A store whose schema predates reports gets their tables at first use, and keeps its rows."""
    import shutil
    import sqlite3

    from .store_backends import SAMPLE

    p = tmp_path / "c.gpkg"
    shutil.copy(SAMPLE, p)
    store = open_store(p)
    store.add_user("a", role="admin")
    store.close()
    with sqlite3.connect(p) as conn:
        conn.execute("DROP TABLE gg_reports")
        conn.execute("DROP TABLE gg_report_events")
        conn.execute("DELETE FROM gpkg_contents WHERE table_name LIKE 'gg_report%'")
    store = open_store(p, create=False)
    book = Reports(store)
    assert book.find(now=T0) == [] and int(book.file(_new(), actor="a", now=T0)["id"]) == 1
    assert [u.name for u in store.users()] == ["a"]
    store.close()
    with sqlite3.connect(p) as conn:  # listed as attribute tables, so QGIS shows them
        listed = {r[0] for r in conn.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'attributes'")}
    assert {"gg_reports", "gg_report_events"} <= listed
