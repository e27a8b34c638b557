"""Storage: schema through Alembic, the idempotent event log and the verdict store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import MIGRATIONS_DIR, EventRecord, VerdictRecord, open_database
from postwise.core.errors import SchemaError
from postwise.core.events import append_event, record_verdict
from postwise.inbound.scanner import Scanner


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'nested' / 'folder' / 'postwise.sqlite3'}")
    yield engine
    engine.dispose()


def test_open_database_creates_the_schema_through_alembic(tmp_path: Path, engine: Engine) -> None:
    assert (tmp_path / "nested" / "folder" / "postwise.sqlite3").is_file()
    tables = set(inspect(engine).get_table_names())
    assert {"verdicts", "events", "quarantine", "alembic_version"} <= tables
    with engine.connect() as connection:
        versions = (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        )
    assert versions == [
        sorted(p.stem.split("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))[-1]
    ]
    columns = {c["name"] for c in inspect(engine).get_columns("verdicts")}
    assert {"message_sha256", "model_version", "policy_version", "symbols", "source"} <= columns


def test_open_database_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.sqlite3'}"
    first = open_database(url)
    append_event(first, "evt-1", "test", {"n": 1})
    first.dispose()
    second = open_database(url)  # upgrade to head again: no-op, data kept
    try:
        with second.connect() as connection:
            assert (
                connection.execute(select(func.count()).select_from(EventRecord)).scalar_one() == 1
            )
            assert (
                connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            )
    finally:
        second.dispose()


def test_a_database_that_cannot_be_upgraded_is_a_clear_error(tmp_path: Path) -> None:
    # a database stamped at a revision whose tables are missing (e.g. hand-edited, or written
    # by a development build): an error naming the database and the cause, not a traceback
    url = f"sqlite:///{tmp_path / 'odd.sqlite3'}"
    open_database(url).dispose()
    with sqlite3.connect(tmp_path / "odd.sqlite3") as connection:
        connection.execute("DROP TABLE campaign_messages")
        connection.execute("UPDATE alembic_version SET version_num = '0011'")
    with pytest.raises(SchemaError, match=r"odd\.sqlite3: cannot bring the database.*campaign"):
        open_database(url)
    result = subprocess.run(
        [sys.executable, "-m", "postwise.cli", "models", "list"],
        env={**os.environ, "POSTWISE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cannot bring the database to the current schema" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_sqlite_connections_use_wal(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one().lower() == "wal"


def test_append_event_is_idempotent_by_id(engine: Engine) -> None:
    assert append_event(engine, "delivery:42", "delivered", {"to": "sam@example.net"}) is True
    assert append_event(engine, "delivery:42", "delivered", {"to": "someone-else"}) is False
    assert append_event(engine, "delivery:43", "delivered", {"to": "ann@example.org"}) is True
    with engine.connect() as connection:
        rows = connection.execute(
            select(EventRecord.event_id, EventRecord.type, EventRecord.payload).order_by(
                EventRecord.id
            )
        ).all()
    assert [(r.event_id, r.type, r.payload) for r in rows] == [
        ("delivery:42", "delivered", {"to": "sam@example.net"}),  # the first write wins
        ("delivery:43", "delivered", {"to": "ann@example.org"}),
    ]


def test_record_verdict_stores_provenance_and_an_event(
    engine: Engine, scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    verdict = scanner.scan(fixture_bytes("phish_apple_id.eml"))
    row_id = record_verdict(engine, verdict, "cli")
    with Session(engine) as session:
        row = session.get(VerdictRecord, row_id)
        event = session.scalars(
            select(EventRecord).where(EventRecord.event_id == f"verdict:{row_id}")
        ).one()
    assert row is not None
    assert row.message_id == verdict.id
    assert row.message_sha256 == verdict.message_sha256
    assert row.action == verdict.action
    assert row.message_class == verdict.message_class
    assert row.score == pytest.approx(verdict.score)
    assert row.model_version == scanner.model_version
    assert row.policy_version == scanner.policy.version
    assert row.source == "cli"
    assert row.probabilities == pytest.approx(verdict.probabilities)
    assert [s["name"] for s in row.symbols] == [s.name for s in verdict.symbols]
    assert row.created_at is not None
    assert event.type == "verdict"
    assert event.payload["verdict_id"] == row_id
    assert event.payload["action"] == verdict.action


def test_the_same_message_twice_is_two_verdicts(
    engine: Engine, scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    verdict = scanner.scan(fixture_bytes("personal_reply.eml"))
    first = record_verdict(engine, verdict, "api")
    second = record_verdict(engine, verdict, "api")
    assert second != first
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(EventRecord).where(EventRecord.type == "verdict")
        ).scalar_one()
    assert count == 2
