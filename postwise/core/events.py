"""The event log and the verdict store: append-only, idempotent by event id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert as insert_plain
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from postwise.core.db import EventRecord, VerdictRecord, utcnow
from postwise.core.types import Verdict


def append_event_in(
    connection: Connection, event_id: str, event_type: str, payload: dict[str, Any]
) -> bool:
    """Append one event within ``connection``'s transaction (so it commits with the rows it
    describes); returns False when ``event_id`` was already stored."""
    values = {"event_id": event_id, "type": event_type, "payload": payload, "created_at": utcnow()}
    dialect = connection.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        statement = (
            insert(EventRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(EventRecord.id)
        )
        return connection.execute(statement).first() is not None
    exists = connection.execute(
        select(EventRecord.id).where(EventRecord.event_id == event_id)
    ).first()
    if exists:
        return False
    connection.execute(insert_plain(EventRecord).values(**values))
    return True


def append_events_in(connection: Connection, events: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Append many ``(event_id, type, payload)`` events within ``connection``'s transaction
    in one statement; ids already stored are skipped."""
    if not events:
        return
    now = utcnow()
    rows = [
        {"event_id": event_id, "type": event_type, "payload": payload, "created_at": now}
        for event_id, event_type, payload in events
    ]
    dialect = connection.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite_insert if dialect == "sqlite" else pg_insert
        connection.execute(
            insert(EventRecord).on_conflict_do_nothing(index_elements=["event_id"]), rows
        )
        return
    for event_id, event_type, payload in events:
        append_event_in(connection, event_id, event_type, payload)


def append_event(engine: Engine, event_id: str, event_type: str, payload: dict[str, Any]) -> bool:
    """Append one event; returns False when an event with ``event_id`` was already stored."""
    with engine.begin() as connection:
        return append_event_in(connection, event_id, event_type, payload)


def record_verdict(engine: Engine, verdict: Verdict, source: str) -> int:
    """Store ``verdict`` with its provenance and append a ``verdict`` event; returns its row id."""
    with Session(engine) as session, session.begin():
        row = VerdictRecord(
            message_id=verdict.id[:998],
            message_sha256=verdict.message_sha256,
            action=verdict.action,
            message_class=verdict.message_class,
            score=verdict.score,
            probabilities=verdict.probabilities,
            symbols=[
                {"name": s.name, "score": s.score, "evidence": s.evidence} for s in verdict.symbols
            ],
            model_version=verdict.model_version,
            policy_version=verdict.policy_version,
            source=source,
        )
        session.add(row)
        session.flush()
        row_id = row.id
        # One transaction for the row and its event: half the commits (and fsyncs) per scan.
        append_event_in(
            session.connection(),
            f"verdict:{row_id}",
            "verdict",
            {
                "verdict_id": row_id,
                "message_sha256": verdict.message_sha256,
                "action": verdict.action,
                "class": verdict.message_class,
                "score": verdict.score,
            },
        )
    return row_id
