"""Storage against a real PostgreSQL server, started for the test run on loopback.

`.ci/run` installs Debian's `postgresql` when its binaries are missing; the fixture makes a
throwaway cluster in a temporary folder, so no system service or data is touched.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import EventRecord, VerdictRecord, open_database
from postwise.core.events import append_event, record_verdict
from postwise.core.types import ScoredSymbol, Verdict


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, a developer usually does not.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL binaries not installed (.ci/run installs Debian's postgresql)")
    root = tmp_path_factory.mktemp("pg")
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o755)
        for parent in root.parents:  # the server user must reach its folder
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o005)
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-A", "trust", "-U", "postwise", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [
                pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg://postwise@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = open_database(postgres_url)
    yield engine
    engine.dispose()


def _verdict() -> Verdict:
    return Verdict(
        id="m1@example.org",
        action="add_header",
        score=7.5,
        message_class="phish",
        probabilities={"ham": 0.1, "spam": 0.2, "phish": 0.7},
        symbols=(ScoredSymbol("ML_PHISH", 7.5, "p(phish)=0.700", "ml"),),
        message_sha256="ab" * 32,
        model_version="inbound-test",
        policy_version="2026.11.1",
    )


def test_schema_is_created_by_alembic_on_postgresql(pg_engine: Engine) -> None:
    assert pg_engine.dialect.name == "postgresql"
    tables = set(inspect(pg_engine).get_table_names())
    assert {"verdicts", "events", "alembic_version"} <= tables


def test_events_are_idempotent_on_postgresql(pg_engine: Engine) -> None:
    assert append_event(pg_engine, "pg-event-1", "test", {"n": 1}) is True
    assert append_event(pg_engine, "pg-event-1", "test", {"n": 2}) is False
    with Session(pg_engine) as session:
        rows = session.scalars(
            select(EventRecord).where(EventRecord.event_id == "pg-event-1")
        ).all()
    assert [row.payload for row in rows] == [{"n": 1}]


def test_verdicts_keep_their_provenance_on_postgresql(pg_engine: Engine) -> None:
    row_id = record_verdict(pg_engine, _verdict(), "test")
    with Session(pg_engine) as session:
        stored = session.get(VerdictRecord, row_id)
        assert stored is not None
        assert stored.model_version == "inbound-test"
        assert stored.symbols[0]["name"] == "ML_PHISH"
        assert stored.probabilities["phish"] == pytest.approx(0.7)
        event = session.scalars(
            select(EventRecord).where(EventRecord.event_id == f"verdict:{row_id}")
        ).one()
    assert event.payload["action"] == "add_header"


def test_open_database_twice_is_harmless_on_postgresql(postgres_url: str) -> None:
    again = open_database(postgres_url)
    try:
        assert "verdicts" in inspect(again).get_table_names()
    finally:
        again.dispose()


def test_outbound_queue_runs_on_postgresql(pg_engine: Engine, tmp_path: Path) -> None:
    from postwise.outbound.queue import OutboundQueue, Prepared, RecipientResult
    from postwise.outbound.suppression import SuppressionList

    queue = OutboundQueue(pg_engine, tmp_path / "outbound")
    prepared = Prepared(
        mail_from="a@sender.test",
        recipients=("x@dest.test", "y@dest.test"),
        raw=b"From: a@sender.test\r\nSubject: pg\r\n\r\nbody\r\n",
        sending_domain="sender.test",
        subject="pg",
        header_message_id="<pg@sender.test>",
        source="api",
        submitted_by="tests",
        idempotency_key="pg-key-1",
    )
    first = queue.submit(prepared)
    assert queue.submit(prepared).duplicate  # the key finds the first submission
    jobs = queue.claim("worker-pg", 10)
    assert len(jobs) == 1 and len(jobs[0].recipients) == 2
    (x_row, _), (y_row, _) = jobs[0].recipients
    queue.record(
        [
            RecipientResult(x_row, "delivered", "250 ok", "2.0.0", "mx.dest.test"),
            RecipientResult(
                y_row,
                "bounced",
                "550 5.1.1 no such user",
                "5.1.1",
                "mx.dest.test",
                "userunknown",
                True,
            ),
        ],
        context={y_row: {"recipient": "y@dest.test", "message_id": first.message_id}},
    )
    shown = queue.show(first.message_id)
    assert [r["state"] for r in shown["recipients"]] == ["delivered", "bounced"]
    assert "y@dest.test" in SuppressionList(pg_engine).find(["y@dest.test"])
    assert queue.depth()["queued"] == 0


def test_engage_store_runs_on_postgresql(pg_engine: Engine, tmp_path: Path) -> None:
    from postwise.engage.contacts import ConsentError, ContactStore
    from postwise.engage.ingest import import_file
    from postwise.engage.provenance import decisions_for, record_decision

    store = ContactStore(pg_engine, b"k" * 32)
    contact = store.upsert("Ann@Example.org", {"plan": "pro"})
    signed_up = datetime(2026, 10, 1, tzinfo=UTC)
    store.record_consent(contact, "marketing", "email", True, "signup form", signed_up)
    assert store.has_consent(contact, "marketing", "email")
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event_id": "pg-1", "email": "ann@example.org", "type": "open",'
        ' "occurred_at": "2026-11-01T10:00:00Z"}\n'
        '{"event_id": "pg-1", "email": "ann@example.org", "type": "open",'
        ' "occurred_at": "2026-11-01T10:00:00Z"}\n'
        '{"event_id": "pg-2", "email": "ann@example.org", "type": "unsubscribe",'
        ' "occurred_at": "2026-11-02T10:00:00Z"}\n'
        "not json\n"
    )
    report = import_file(store, "events", events)
    assert (report.imported, report.duplicates, report.failed) == (2, 1, 1)
    # The unsubscribe withdrew marketing e-mail consent.
    assert not store.has_consent(contact, "marketing", "email")
    with pytest.raises(ConsentError):
        store.require_consent(contact, "marketing", "email")
    record_decision(
        pg_engine,
        contact,
        "propensity_score",
        0.42,
        "propensity:test",
        "v1",
        {"recency": 3},
        "marketing/email",
    )
    [entry] = decisions_for(pg_engine, contact)
    assert entry.model_version == "v1"


def test_experiment_store_runs_on_postgresql(pg_engine: Engine) -> None:
    from postwise.engage.contacts import ContactStore
    from postwise.engage.experiment_store import (
        DuplicateExperimentError,
        assign,
        create_experiment,
        results,
    )
    from postwise.engage.experiments import HoldoutPlan
    from postwise.engage.ingest import import_records
    from postwise.engage.provenance import decisions_for

    key = b"e" * 32
    store = ContactStore(pg_engine, key)
    at = datetime(2026, 10, 1, tzinfo=UTC)
    ids = []
    for i in range(40):
        contact = store.upsert(f"exp{i}@example.org")
        store.record_consent(contact, "marketing", "email", True, "form", at)
        ids.append(contact)
    create_experiment(pg_engine, "pg-global", holdout=0.25)
    create_experiment(pg_engine, "pg-ab", arms=(("a", 0.5), ("b", 0.5)), campaign="pg")
    with pytest.raises(DuplicateExperimentError):
        create_experiment(pg_engine, "pg-ab", holdout=0.1)
    first = assign(pg_engine, "pg-ab", ids, at, key=key)
    again = assign(pg_engine, "pg-ab", ids, at, key=key)
    held = {c for c in ids if HoldoutPlan(key, 0.25).in_global_holdout(c)}
    assert set(first.global_holdout) == held and not held & set(first.assigned)
    assert again.assigned == {} and again.already_assigned == first.assigned
    some = next(iter(first.assigned))
    [decision] = decisions_for(pg_engine, some)
    assert decision.kind == "experiment_assignment"
    import_records(
        store,
        "events",
        [
            {
                "event_id": f"pg-exp-{n}",
                "type": "click",
                "contact_id": c,
                "occurred_at": "2026-10-02T00:00:00Z",
            }
            for n, c in enumerate(c for c, arm in first.assigned.items() if arm == "b")
        ],
    )
    measured = results(pg_engine, "pg-ab", "click", 7, as_of=datetime(2026, 11, 1, tzinfo=UTC))
    assert measured.arms["b"].mean == 1.0 and measured.arms["a"].mean == 0.0
    effect = measured.effects["b"]
    assert effect is not None and effect["ate"] == pytest.approx(1.0)


def test_segments_and_audiences_run_on_postgresql(pg_engine: Engine) -> None:
    from datetime import timedelta

    from postwise.engage.audiences import evaluate_segment, resolve_audience, save_segment
    from postwise.engage.contacts import ContactStore
    from postwise.engage.ingest import import_records
    from postwise.engage.provenance import record_decision
    from postwise.outbound.suppression import SuppressionList

    store = ContactStore(pg_engine, b"a" * 32)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    ids = [
        store.upsert(f"aud{i}@example.org", {"country": "UK", "age": str(20 + i)}) for i in range(4)
    ]
    for contact in ids[:3]:
        store.record_consent(contact, "marketing", "email", True, "form", at - timedelta(days=9))
    import_records(
        store,
        "events",
        [
            {
                "event_id": f"pg-aud-{i}",
                "contact_id": contact,
                "type": "purchase",
                "occurred_at": (at - timedelta(days=5)).isoformat(),
                "properties": {"shop": "web" if i % 2 else "app"},
            }
            for i, contact in enumerate(ids)
        ],
    )
    for i, contact in enumerate(ids):
        record_decision(
            pg_engine,
            contact,
            "propensity_score",
            {"score": i / 4},
            "propensity:pg",
            "v1",
            {},
            "t",
            at - timedelta(days=1),
        )
    save_segment(pg_engine, "pg-buyers", {"event": "purchase", "within_days": 30})
    segment = {
        "all": [
            {"segment": "pg-buyers"},
            {"attribute": "age", "gte": 21},
            {"score": "propensity:pg", "gte": 0.25, "max_age_days": 7},
            {"not": {"event": "purchase", "properties": {"shop": "app"}}},
        ]
    }
    assert evaluate_segment(store, segment, at) == {ids[1], ids[3]}
    SuppressionList(pg_engine).add("aud1@example.org", "user unknown", "bounce")
    result = resolve_audience(store, segment, at)
    assert result.excluded["suppressed"] == (ids[1],)
    assert result.excluded["consent"] == (ids[3],) and result.included == ()


def test_campaign_occasions_migration_on_postgresql(pg_engine: Engine, postgres_url: str) -> None:
    from tests.engage.test_triggers import check_occasion_migration

    check_occasion_migration(postgres_url)
