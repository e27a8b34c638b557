"""Ingestion of contact and event files: malformed rows reported by line and skipped, the
others imported; the same file twice stores each event once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from postwise.core.db import EngageEventRecord, open_database
from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import IngestError, import_file

KEY = b"k" * 32


@pytest.fixture
def store(tmp_path: Path) -> ContactStore:
    return ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), KEY)


def _event_count(store: ContactStore) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(EngageEventRecord)).scalar_one()
        )


def test_malformed_csv_rows_are_reported_by_line(store: ContactStore, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    huge = "z" * 200_000
    path.write_bytes(
        b"event_id,type,occurred_at,email,value\n"
        b"e1,open,2024-01-01T10:00:00Z,ann@example.org,\n"  # 2 ok
        b"e2,teleport,2024-01-01T10:00:00Z,ann@example.org,\n"  # 3 unknown type
        b"e3,click,yesterday,ann@example.org,\n"  # 4 bad time
        b"e4,click,2024-01-01\n"  # 5 missing columns
        b"e5,purchase,2024-01-02,ann@example.org,12.5\n"  # 6 ok
        b"e6,open,2024-01-01,\xff\xfe\x00garbage,\n"  # 7 binary
        + f"e7,custom,2024-01-01,ann@example.org,{huge}\n".encode()  # 8 huge field
        + b"e8,purchase,2024-01-03,ann@example.org,lots\n"  # 9 bad value
        b"e9,sent,2024-01-03,bob@example.org,\n"  # 10 ok
    )
    report = import_file(store, "events", path)
    assert report.rows == 9 and report.imported == 3 and report.failed == 6
    by_line = {problem.line: problem.reason for problem in report.errors}
    assert set(by_line) == {3, 4, 5, 7, 8, 9}
    assert "unknown event type" in by_line[3]
    assert "not a time" in by_line[4]
    assert "expected 5 fields" in by_line[5]
    assert "field larger than field limit" in by_line[8] or "over the limit" in by_line[8]
    assert all(problem.source == str(path) for problem in report.errors)
    assert not report.all_failed


def test_bad_quoting_is_reported(store: ContactStore, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text('email,name\nann@example.org,Ann\nbob@example.org,"Bo"b"\ncat@example.org,C\n')
    report = import_file(store, "contacts", path)
    assert report.created == 2 and report.failed == 1
    assert report.errors[0].line == 3 and "malformed CSV" in report.errors[0].reason


def test_jsonl_rows_and_idempotency(store: ContactStore, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = {
        "event_id": "j1",
        "type": "click",
        "occurred_at": 1_700_000_000,
        "email": "ann@example.org",
        "properties": {"url": "https://x.example/"},
    }
    lines = [
        json.dumps(good),
        "{not json",
        "[1, 2]",
        json.dumps({**good, "event_id": "j2"}),
        json.dumps({**good, "event_id": "j3", "contact_id": "f" * 64, "email": None}),
    ]
    path.write_text("\n".join(lines) + "\n")
    first = import_file(store, "events", path)
    assert (first.imported, first.failed) == (2, 3)
    assert [p.line for p in first.errors] == [2, 3, 5]
    second = import_file(store, "events", path)
    assert (second.imported, second.duplicates, second.failed) == (0, 2, 3)
    assert _event_count(store) == 2


def test_contact_csv_consent_columns(store: ContactStore, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(
        "email,city,consent.marketing.email,consent_source\n"
        "ann@example.org,Leeds,yes,web form\nbob@example.org,York,no,web form\n"
        "cat@example.org,Hull,maybe,web form\n"
    )
    report = import_file(store, "contacts", path)
    assert (report.created, report.failed) == (2, 1)
    assert store.has_consent(store.contact_id("ann@example.org"), "marketing", "email")
    assert not store.has_consent(store.contact_id("bob@example.org"), "marketing", "email")
    assert store.attributes(store.contact_id("ann@example.org")) == {"city": "Leeds"}


def test_every_row_failed_and_unreadable_files(store: ContactStore, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("id,kind\n1,open\n2,open\n")
    report = import_file(store, "events", path)
    assert report.all_failed and report.failed == 2
    with pytest.raises(IngestError, match="no such file"):
        import_file(store, "events", tmp_path / "missing.csv")
    with pytest.raises(IngestError, match="unknown format"):
        import_file(store, "events", tmp_path / "events.xlsx")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(st.binary(max_size=200), max_size=8))
def test_garbage_never_stops_the_batch(
    store: ContactStore, tmp_path: Path, garbage: list[bytes]
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = json.dumps(
        {
            "event_id": "g-ok",
            "type": "open",
            "occurred_at": "2024-01-01",
            "email": "ann@example.org",
        }
    ).encode()
    cleaned = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in garbage]
    path.write_bytes(b"\n".join([*cleaned, good]) + b"\n")
    report = import_file(store, "events", path)
    assert report.imported + report.duplicates >= 1
    assert report.imported + report.duplicates + report.failed == report.rows
