"""``postwise quarantine list|show|release|delete|expire`` in-process through typer's CliRunner,
on the quarantine of the test's data folder, releasing to a real sink on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import Sink, free_port
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import QuarantineRecord, open_database, utcnow
from postwise.core.settings import get_settings
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import postwise_headers, with_headers
from postwise.inbound.quarantine import QuarantineEntry, QuarantineStore

ENVELOPE = Envelope("ann.baker@example.org", ("sam.lee@example.net",), "192.0.2.7", "mx.example")


def invoke(*args: str, next_hop: str | None = None) -> Any:
    """Run ``postwise *args`` in this process with POSTWISE_NEXT_HOP set to ``next_hop``."""
    get_settings.cache_clear()  # the environment changes between calls
    env = {"COLUMNS": "240", "NO_COLOR": "1", "POSTWISE_NEXT_HOP": next_hop}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def engine(postwise_env: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{postwise_env / 'postwise.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(postwise_env: Path, engine: Engine) -> QuarantineStore:
    """The store the CLI opens: the data folder's quarantine and database."""
    return QuarantineStore(postwise_env / "quarantine", engine)


@pytest.fixture
def hold(
    store: QuarantineStore, rule_scanner: Any, make_message: Callable[..., bytes]
) -> Callable[..., QuarantineEntry]:
    def put(subject: str = "Held", **options: Any) -> QuarantineEntry:
        raw = make_message(headers={"Subject": subject}).replace(b"\n", b"\r\n")
        verdict = rule_scanner.scan(raw)
        marked = with_headers(raw, postwise_headers(verdict))
        return store.add(marked, verdict, ENVELOPE, reason="test", **options)

    return put


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


def test_list_json_prints_one_object_a_line(hold: Callable[..., QuarantineEntry]) -> None:
    first, second = hold("first"), hold("second")
    result = invoke("quarantine", "list", "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == [second.to_json(), first.to_json()]
    assert invoke("quarantine", "list", "--json", "--limit", "1").stdout.count("\n") == 1


def test_list_of_an_empty_quarantine(postwise_env: Path) -> None:
    assert invoke("quarantine", "list", "--json").stdout == ""
    table = invoke("quarantine", "list")
    assert table.exit_code == 0 and "quarantine: 0 message(s)" in table.stdout


def test_list_as_a_table_for_people(hold: Callable[..., QuarantineEntry]) -> None:
    entry = hold("Quarterly numbers")
    result = invoke("quarantine", "list")
    assert result.exit_code == 0, result.stderr
    assert "quarantine: 1 message(s)" in result.stdout
    for text in (entry.id, "Quarterly numbers", "ann.baker@example.org", "gateway"):
        assert text in result.stdout


def test_show_prints_the_entry_and_its_verdict(hold: Callable[..., QuarantineEntry]) -> None:
    entry = hold()
    result = invoke("quarantine", "show", entry.id)
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {**entry.to_json(), "verdict": entry.verdict}


def test_show_raw_prints_the_stored_message(
    hold: Callable[..., QuarantineEntry], store: QuarantineStore
) -> None:
    entry = hold()
    result = invoke("quarantine", "show", "--raw", entry.id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == store.raw(entry)


def test_release_relays_to_the_next_hop(
    hold: Callable[..., QuarantineEntry], store: QuarantineStore, sink: Sink
) -> None:
    entry = hold()
    stored = store.raw(entry)
    result = invoke("quarantine", "release", entry.id, next_hop=sink.address)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"released {entry.id} to {sink.address}: 2.0.0 Ok")
    [message] = sink.messages
    assert message.raw == stored
    assert store.count() == 0


def test_release_to_a_next_hop_that_is_down_fails_and_keeps_the_entry(
    hold: Callable[..., QuarantineEntry], store: QuarantineStore
) -> None:
    entry = hold()
    result = invoke("quarantine", "release", entry.id, next_hop=f"127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "stays in the quarantine" in result.stderr
    assert store.get(entry.id) == entry


def test_release_goes_on_past_an_unknown_id(
    hold: Callable[..., QuarantineEntry], store: QuarantineStore, sink: Sink
) -> None:
    entry = hold()
    result = invoke("quarantine", "release", "nope", entry.id, next_hop=sink.address)
    assert result.exit_code == 1
    assert "no quarantined message 'nope'" in result.stderr
    assert f"released {entry.id}" in result.stdout
    assert len(sink.messages) == 1 and store.count() == 0


def test_release_without_a_next_hop_stores_into_the_maildir(
    hold: Callable[..., QuarantineEntry], postwise_env: Path
) -> None:
    entry = hold()
    result = invoke("quarantine", "release", entry.id)
    assert result.exit_code == 0, result.stderr
    assert "Maildir" in result.stdout
    [stored] = list((postwise_env / "maildir" / "new").iterdir())
    assert stored.read_bytes().startswith(b"Return-Path: <ann.baker@example.org>\r\n")


def test_delete_removes_entries(
    hold: Callable[..., QuarantineEntry], store: QuarantineStore
) -> None:
    first, second = hold("first"), hold("second")
    result = invoke("quarantine", "delete", first.id, second.id)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"deleted {first.id}", f"deleted {second.id}"]
    assert store.count() == 0


def test_expire_uses_the_retention_setting(
    hold: Callable[..., QuarantineEntry],
    store: QuarantineStore,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, recent = hold("old"), hold("recent")
    with Session(engine) as session, session.begin():
        session.execute(
            update(QuarantineRecord)
            .where(QuarantineRecord.id == old.id)
            .values(created_at=utcnow() - timedelta(days=8))
        )
    monkeypatch.setenv("POSTWISE_QUARANTINE_RETENTION_DAYS", "7")
    result = invoke("quarantine", "expire")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "expired 1 message(s) older than 7 days"
    assert [entry.id for entry in store.list()] == [recent.id]


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("show", "nope"), 2),
        (("show", "--raw", "nope"), 2),
        (("release", "nope"), 1),
        (("delete", "nope"), 1),
    ],
)
def test_an_unknown_id_fails_with_a_clear_message(
    postwise_env: Path, args: tuple[str, ...], status: int
) -> None:
    result = invoke("quarantine", *args)
    assert result.exit_code == status
    assert "error: no quarantined message 'nope' (see `postwise quarantine list`)" in (
        " ".join(result.stderr.split())
    )
    assert "Traceback" not in result.stderr
