"""The quarantine store (content-addressed files, rows in SQLite) and ``release()`` to a real
next hop on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import Sink, free_port
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import EventRecord, QuarantineRecord, open_database, utcnow
from postwise.core.types import Verdict
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import postwise_headers, with_headers
from postwise.inbound.quarantine import QuarantineError, QuarantineStore, release
from postwise.inbound.relay import NextHop

ENVELOPE = Envelope("ann.baker@example.org", ("sam.lee@example.net",), "192.0.2.7", "mx.example")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'db' / 'postwise.sqlite3'}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path, engine: Engine) -> QuarantineStore:
    return QuarantineStore(tmp_path / "quarantine", engine)


@pytest.fixture
def message(make_message: Callable[..., bytes]) -> bytes:
    raw = make_message(headers={"Subject": "=?utf-8?q?Rechnung_f=C3=BCr_M=C3=A4rz?="})
    return raw.replace(b"\n", b"\r\n")


@pytest.fixture
def verdict(rule_scanner: Any, message: bytes) -> Verdict:
    result: Verdict = rule_scanner.scan(message)
    return result


def hold(store: QuarantineStore, raw: bytes, verdict: Verdict, **options: Any) -> Any:
    """Quarantine ``raw`` as the gateway does: with its X-Postwise headers on top."""
    marked = with_headers(raw, postwise_headers(verdict))
    return store.add(marked, verdict, ENVELOPE, reason="judged spam (test)", **options)


def event_types(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(EventRecord.type).order_by(EventRecord.id)))


# --------------------------------------------------------------------------- the store


def test_add_stores_the_bytes_under_their_own_hash(
    store: QuarantineStore, message: bytes, verdict: Verdict, tmp_path: Path, engine: Engine
) -> None:
    entry = hold(store, message, verdict)
    marked = with_headers(message, postwise_headers(verdict))
    sha = hashlib.sha256(marked).hexdigest()
    assert entry.message_sha256 == sha
    path = tmp_path / "quarantine" / sha[:2] / f"{sha}.eml"
    assert store.path_of(sha) == path
    assert path.read_bytes() == marked == store.raw(entry)
    assert entry.size == len(marked)
    assert entry.subject == "Rechnung für März"  # decoded for listings
    assert (entry.mail_from, entry.rcpt_to, entry.client_ip, entry.helo) == (
        ENVELOPE.mail_from,
        ENVELOPE.rcpt_to,
        ENVELOPE.client_ip,
        ENVELOPE.helo,
    )
    assert entry.verdict == verdict.to_json()
    assert entry.verdict["message_sha256"] == verdict.message_sha256  # what was scanned
    assert (entry.origin, entry.reason) == ("gateway", "judged spam (test)")
    assert store.get(entry.id) == entry
    assert list((tmp_path / "quarantine" / "tmp").iterdir()) == []
    assert event_types(engine) == ["quarantine.added"]
    wire = entry.to_json()
    assert wire["id"] == entry.id and wire["class"] == verdict.message_class
    assert wire["rcpt_to"] == ["sam.lee@example.net"]


def test_two_entries_of_the_same_bytes_share_one_file_until_the_last_goes(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    first = hold(store, message, verdict)
    second = hold(store, message, verdict)
    assert first.id != second.id
    assert first.message_sha256 == second.message_sha256
    path = store.path_of(first.message_sha256)
    assert len(list(path.parent.iterdir())) == 1
    store.remove(first.id)
    assert path.is_file(), "the other entry still needs the file"
    assert store.raw(store.get(second.id)) == path.read_bytes()
    store.remove(second.id)
    assert not path.exists()
    assert store.count() == 0


def test_different_bytes_with_the_same_verdict_get_their_own_files(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    """One name always means one content, even when the scanned message was the same."""
    first = store.add(b"X-Copy: 1\r\n" + message, verdict, ENVELOPE, reason="r")
    second = store.add(b"X-Copy: 2\r\n" + message, verdict, ENVELOPE, reason="r")
    assert first.message_sha256 != second.message_sha256
    assert store.raw(first).startswith(b"X-Copy: 1\r\n")
    assert store.raw(second).startswith(b"X-Copy: 2\r\n")


def test_list_is_newest_first_with_limit_and_offset(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    ids = [store.add(message + bytes([65 + n]), verdict, ENVELOPE, reason="r").id for n in range(3)]
    listed = [entry.id for entry in store.list()]
    assert sorted(listed) == sorted(ids) and store.count() == 3
    assert listed[0] == ids[-1]
    assert [e.id for e in store.list(limit=2)] == listed[:2]
    assert [e.id for e in store.list(limit=2, offset=2)] == listed[2:]
    # Timestamps read back are UTC and say so (SQLite alone would drop the offset).
    assert all(e.to_json()["created_at"].endswith("+00:00") for e in store.list())


def test_expire_deletes_entries_older_than_the_retention(
    store: QuarantineStore, message: bytes, verdict: Verdict, engine: Engine
) -> None:
    old = hold(store, message, verdict)
    recent = store.add(b"X-Other: 1\r\n" + message, verdict, ENVELOPE, reason="r")
    with Session(engine) as session, session.begin():
        session.execute(
            update(QuarantineRecord)
            .where(QuarantineRecord.id == old.id)
            .values(created_at=utcnow() - timedelta(days=40))
        )
    assert store.expire(30) == 1
    assert [e.id for e in store.list()] == [recent.id]
    assert not store.path_of(old.message_sha256).exists()
    assert store.path_of(recent.message_sha256).is_file()
    assert store.expire(30) == 0
    assert store.expire(30, now=utcnow() + timedelta(days=31)) == 1
    assert store.count() == 0
    assert event_types(engine).count("quarantine.expired") == 2


def test_an_unknown_id_is_a_quarantine_error_naming_it(store: QuarantineStore) -> None:
    with pytest.raises(QuarantineError, match=r"no quarantined message 'f00d' \(see `postwise"):
        store.get("f00d")
    with pytest.raises(QuarantineError, match="f00d"):
        store.remove("f00d")


def test_a_missing_file_is_a_quarantine_error(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    entry = hold(store, message, verdict)
    path = store.path_of(entry.message_sha256)
    path.unlink()
    with pytest.raises(QuarantineError) as error:
        store.raw(entry)
    assert str(error.value) == f"{entry.id}: message file {path} is missing"


def test_a_damaged_file_is_a_quarantine_error(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    entry = hold(store, message, verdict)
    path = store.path_of(entry.message_sha256)
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a full disk or a bad copy
    with pytest.raises(QuarantineError, match=rf"{entry.id}: message file .* is damaged"):
        store.raw(entry)


def test_an_unreadable_file_is_a_quarantine_error(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    entry = hold(store, message, verdict)
    path = store.path_of(entry.message_sha256)
    path.unlink()
    path.mkdir()  # something in the way that is not a file
    with pytest.raises(QuarantineError, match=rf"{entry.id}: cannot read message file"):
        store.raw(entry)


# --------------------------------------------------------------------------- release


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


async def test_release_hands_the_message_on_and_forgets_it(
    store: QuarantineStore, message: bytes, verdict: Verdict, sink: Sink, engine: Engine
) -> None:
    entry = hold(store, message, verdict)
    stored = store.raw(entry)
    learned: list[bytes] = []
    destination = NextHop("127.0.0.1", sink.port, timeout=10)
    try:
        released, delivery = await release(store, entry.id, destination, learned.append)
    finally:
        await destination.close()
    assert released.id == entry.id and delivery.ok
    [sunk] = sink.messages
    assert (sunk.mail_from, sunk.rcpt_to) == (ENVELOPE.mail_from, ENVELOPE.rcpt_to)
    assert sunk.raw == stored
    assert learned == [message], "learned as the sender wrote it, without our headers"
    with pytest.raises(QuarantineError):
        store.get(entry.id)
    assert not store.path_of(entry.message_sha256).exists()
    assert event_types(engine)[-1] == "quarantine.released"


async def test_release_to_a_next_hop_that_is_down_keeps_the_entry(
    store: QuarantineStore, message: bytes, verdict: Verdict
) -> None:
    entry = hold(store, message, verdict)
    destination = NextHop("127.0.0.1", free_port(), timeout=5)
    try:
        with pytest.raises(QuarantineError, match=r"did not take it .* stays in the quarantine"):
            await release(store, entry.id, destination)
    finally:
        await destination.close()
    assert store.get(entry.id) == entry
    assert store.path_of(entry.message_sha256).is_file()


async def test_release_refused_by_the_next_hop_keeps_the_entry(
    store: QuarantineStore, message: bytes, verdict: Verdict, sink: Sink
) -> None:
    marked = with_headers(message, postwise_headers(verdict))
    entry = store.add(
        marked, verdict, Envelope("a@example.org", ("reject@example.net",)), reason="r"
    )
    destination = NextHop("127.0.0.1", sink.port, timeout=5)
    try:
        with pytest.raises(QuarantineError, match=r"550 5\.1\.1 No such user"):
            await release(store, entry.id, destination)
    finally:
        await destination.close()
    assert store.count() == 1 and sink.messages == []


async def test_a_milter_entry_is_released_with_the_mta(
    store: QuarantineStore, message: bytes, verdict: Verdict, sink: Sink
) -> None:
    entry = store.add(
        message, verdict, ENVELOPE, reason="r", origin="milter", mta_queue_id="4QxYz1Abc"
    )
    destination = NextHop("127.0.0.1", sink.port, timeout=5)
    try:
        with pytest.raises(QuarantineError) as error:
            await release(store, entry.id, destination)
    finally:
        await destination.close()
    assert "postsuper -H 4QxYz1Abc" in str(error.value)
    assert f"postwise quarantine delete {entry.id}" in str(error.value)
    assert store.count() == 1 and sink.messages == []


async def test_releasing_an_unknown_id_is_a_quarantine_error(
    store: QuarantineStore, sink: Sink
) -> None:
    destination = NextHop("127.0.0.1", sink.port, timeout=5)
    try:
        with pytest.raises(QuarantineError, match="no quarantined message 'nope'"):
            await release(store, "nope", destination)
    finally:
        await destination.close()
