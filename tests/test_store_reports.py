"""Reports in the store, on both backends: filed, escalated when a deadline passes, closed, every step audited."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from gridgeo.errors import ConflictError, NotFoundError, PayloadTooLargeError, UnsupportedMediaTypeError, UsageError
from gridgeo.store import Reports, open_store
from gridgeo.store.photos import PhotoDir, check_photo
from gridgeo.store.reports import NewReport, Rung, new_receipt, overdue, overdue_hours, receipt_hash, stamp

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
    later = late + dt.timedelta(days=30)
    assert book.sweep(now=later) == [rid]  # the county has no one above: marked supervised, once
    assert book.sweep(now=later + dt.timedelta(days=1)) == []
    rep = book.get(rid)
    assert (rep["state"], rep["level"], rep["overdue_marked"]) == ("supervised", "county", stamp(later))
    with pytest.raises(UsageError, match="note"):
        book.transition(rid, "closed", actor="admin", now=late)
    rep = book.transition(rid, "closed", actor="admin", now=late + dt.timedelta(hours=2), note="已清运")
    assert rep["state"] == "closed" and rep["closed"] is not None and not overdue(rep, late + dt.timedelta(days=99))
    events = book.events(rid)
    assert [(e["actor"], e["action"], e["from_state"], e["to_state"], e["to_level"]) for e in events] == [
        ("worker", "file", None, "received", "grid"), ("worker", "transition", "received", "handling", "grid"),
        ("system", "deadline", "handling", "routed", "village"),
        ("secretary", "escalate", "routed", "routed", "county"),
        ("system", "deadline", "routed", "supervised", "county"),
        ("admin", "transition", "supervised", "closed", "county")]
    assert "deadline 2026-12-02T09:00:00.000000Z passed" in events[2]["note"]
    assert "需要县里协调" in events[3]["note"] and "township T1" in events[3]["note"]  # why, and why not the township
    audit = [(r["actor"], r["action"], r["target"]) for r in book.store.audit_rows() if r["action"].startswith("rep")]
    target = f"reports/{rid}"
    assert audit == [("worker", "report.file", target), ("worker", "report.handling", target),
                     ("system", "report.deadline", target), ("secretary", "report.escalate", target),
                     ("system", "report.deadline", target), ("admin", "report.closed", target)]
    closing = book.store.audit_rows(action="report.closed")[0]
    assert closing["before"] == {"state": "supervised"} and closing["after"]["note"] == "已清运"


def test_top_of_the_ladder_past_its_deadline_is_supervised_once(book: Reports) -> None:
    """A report at the county (no level above) whose deadline passes: marked supervised by the system, once."""
    rid = int(book.file(_new(), actor="worker", now=T0)["id"])
    t = T0
    for hours in (24, 48):  # grid → village → county, each on its passed deadline
        t += dt.timedelta(hours=hours, minutes=1)
        assert book.sweep(now=t) == [rid]
    rep = book.get(rid)
    assert (rep["level"], rep["state"], rep["overdue_marked"]) == ("county", "routed", None)
    assert book.sweep(now=t + dt.timedelta(hours=119)) == []  # the county's 120 h not yet over
    late = t + dt.timedelta(hours=121)
    assert book.sweep(now=late) == [rid]
    rep = book.get(rid)
    assert (rep["level"], rep["state"], rep["step"], rep["overdue_marked"]) == ("county", "supervised", 2,
                                                                                 stamp(late))
    assert overdue(rep, late) and overdue_hours(rep, late) == 1.0
    # a second sweep, and one a month later, change nothing: no event, no audit row, the same row
    n_events, n_audit = len(book.events(rid)), len(book.store.audit_rows(limit=1000))
    assert book.sweep(now=late) == [] and book.sweep(now=late + dt.timedelta(days=30)) == []
    assert book.get(rid) == rep and len(book.events(rid)) == n_events
    assert len(book.store.audit_rows(limit=1000)) == n_audit
    # taken up again at the county and still overdue: not marked a second time
    book.transition(rid, "handling", actor="admin", now=late, note="县中心接手")
    assert book.sweep(now=late + dt.timedelta(days=2)) == [] and book.get(rid)["state"] == "handling"
    deadline = [r for r in book.store.audit_rows(action="report.deadline") if r["after"]["state"] == "supervised"]
    assert len(deadline) == 1 and deadline[0]["actor"] == "system" and deadline[0]["target"] == f"reports/{rid}"
    assert deadline[0]["before"]["state"] == "routed" and deadline[0]["after"]["overdue_hours"] == 1.0
    assert book.events(rid)[-2]["note"].endswith("no level above it: supervised")
    assert overdue_hours(book.get(rid), T0) is None


def test_receipt_reads_the_report_and_only_its_own(book: Reports) -> None:
    receipt = new_receipt()
    rid = int(book.file(_new(), actor="anonymous", now=T0, receipt=receipt)["id"])
    other = int(book.file(_new(), actor="worker", now=T0)["id"])  # filed with a token: no receipt
    assert book.by_receipt(rid, receipt)["id"] == rid
    for rep_id, given in ((rid, receipt + "x"), (rid, ""), (other, receipt), (other, ""), (999_999, receipt)):
        with pytest.raises(NotFoundError) as err:
            book.by_receipt(rep_id, given)
        assert str(err.value) == f"no report {rep_id}"  # the words of an id that does not exist
    stored = book.store.query("SELECT receipt_hash FROM gg_reports ORDER BY id")
    assert stored == [(receipt_hash(receipt),), (None,)] and receipt not in str(book.get(rid))
    assert len(receipt) >= 32 and new_receipt() != receipt


def test_columns_added_to_a_store_from_before_them(store_target: str) -> None:
    """A store whose gg_reports predates receipt_hash and overdue_marked gets them (ALTER TABLE), rows kept."""
    store = open_store(store_target)
    rid = int(Reports(store).file(_new(), actor="worker", now=T0)["id"])
    with store.transaction() as cur:
        for col in ("receipt_hash", "overdue_marked"):
            store.execute(cur, f"ALTER TABLE gg_reports DROP COLUMN {col}")
    store.close()
    fresh = open_store(store_target, create=False)
    assert {c for _, c, _ in fresh.missing_columns()} == {"receipt_hash", "overdue_marked"}
    assert not fresh.schema_current()
    book = Reports(fresh)
    receipt = new_receipt()
    new = int(book.file(_new(), actor="anonymous", now=T0, receipt=receipt)["id"])
    assert fresh.missing_columns() == [] and book.get(rid)["category"] == "sanitation"
    assert book.by_receipt(new, receipt)["id"] == new and book.get(rid)["overdue_marked"] is None
    fresh.close()


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
