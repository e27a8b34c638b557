"""Hostile input to submission and the queue, and hostile servers to the delivery worker.

Submission must answer anything with a SubmissionError (an SMTP reply code and a message that
says what was wrong) or a queued message, and leave nothing behind when it refuses. The worker
must survive servers that answer garbage, hang up mid-DATA or never answer: the mail is
deferred with a reason, and later mail still goes out."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.auth.zone_server import ZoneRecord
from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.submission import Accepted, SubmissionError, Submitter
from postwise.outbound.suppression import SuppressionList
from tests.outbound.delivery_harness import OutboundWorld

REPLY_CODE = re.compile(r"^[45][0-9][0-9] [45]\.[0-9]{1,3}\.[0-9]{1,3}$")
GOOD = b"From: Owner <owner@corp.test>\r\nTo: x@mail.test\r\nSubject: hi\r\n\r\nbody\r\n"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass
class Env:
    settings: Settings
    queue: OutboundQueue
    submitter: Submitter

    def files(self) -> tuple[int, int]:
        spool = self.settings.outbound_spool_dir
        return len(list((spool / "messages").iterdir())), len(list((spool / "tmp").iterdir()))

    def depth(self) -> int:
        return sum(self.queue.depth().values())

    def attempt(
        self, mail_from: str, recipients: list[str], raw: bytes, **options: Any
    ) -> Accepted | SubmissionError:
        """Submit; check the refusal is clean (a reply code, a reason, nothing left behind)
        or the message is queued whole."""
        before = (self.depth(), self.files())
        try:
            accepted = self.submitter.submit(
                mail_from, recipients, raw, source="api", submitted_by="fuzz", **options
            )
        except SubmissionError as error:
            assert REPLY_CODE.match(error.code), error.code
            assert len(str(error)) >= 10, str(error)
            assert (self.depth(), self.files()) == before
            return error
        if not accepted.enqueued.duplicate:
            assert self.depth() == before[0] + len(accepted.enqueued.recipients)
            assert self.files() == (before[1][0] + 1, 0)
            assert self.queue.load(accepted.enqueued.message_id)
        return accepted


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("hostile")
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        "environment": "test",
        "smtp_hostname": "out.postwise.test",
        "submission_max_recipients": 50,
        "max_message_bytes": 200_000,
    }
    settings = Settings(**values)
    engine = open_database(settings.resolved_database_url)
    queue = OutboundQueue(engine, settings.outbound_spool_dir)
    suppressions = SuppressionList(engine)
    suppressions.add("blocked@mail.test", "hard bounce", "bounce")
    yield Env(settings, queue, Submitter(settings, queue, suppressions))
    engine.dispose()


# --- submission -----------------------------------------------------------------------------


@FUZZ
@given(raw=st.binary(max_size=3000))
def test_random_bytes_as_a_message(env: Env, raw: bytes) -> None:
    env.attempt("owner@corp.test", ["x@mail.test"], raw)


@FUZZ
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["From", "To", "Subject", "Date", "Message-ID", "X-A", "From "]),
            st.binary(max_size=80),
        ),
        max_size=6,
    ),
    body=st.binary(max_size=200),
)
def test_random_header_sections(env: Env, headers: list[tuple[str, bytes]], body: bytes) -> None:
    raw = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    env.attempt("owner@corp.test", ["x@mail.test"], raw + b"\r\n" + body)


@FUZZ
@given(
    sender=st.text(max_size=80),
    recipients=st.lists(st.text(max_size=80), max_size=5),
)
def test_random_strings_as_addresses(env: Env, sender: str, recipients: list[str]) -> None:
    env.attempt(sender, recipients, GOOD)


# Mostly plausible characters, so that some addresses pass and reach the queue.
PLAUSIBLE = st.text(alphabet='abz09.-_+"ü@ ', min_size=1, max_size=20)


@FUZZ
@given(
    local=PLAUSIBLE | st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
    domain=PLAUSIBLE.map(lambda d: d + ".test") | st.text(st.characters(codec="utf-8")),
)
def test_address_shaped_strings(env: Env, local: str, domain: str) -> None:
    outcome = env.attempt("owner@corp.test", [f"{local}@{domain}"], GOOD)
    if isinstance(outcome, Accepted):
        (stored,) = outcome.enqueued.recipients
        assert stored.rpartition("@")[2].isascii()  # the domain is queued as A-labels


@FUZZ
@given(key=st.text(max_size=300), pool=st.text(max_size=80), envid=st.text(max_size=150))
def test_random_idempotency_keys_pools_and_envelope_ids(
    env: Env, key: str, pool: str, envid: str
) -> None:
    env.attempt(
        "owner@corp.test",
        ["x@mail.test"],
        GOOD,
        idempotency_key=key,
        pool=pool or "default",
        envelope_id=envid or None,
    )


@pytest.mark.parametrize("key", ["has space", "ключ", "tab\tkey", "", "k" * 256, "nul\0"])
def test_bad_idempotency_keys_are_refused(env: Env, key: str) -> None:
    refused = env.attempt("owner@corp.test", ["x@mail.test"], GOOD, idempotency_key=key)
    assert isinstance(refused, SubmissionError) and "idempotency key" in str(refused)


def test_huge_recipient_lists_are_refused_before_any_work(env: Env) -> None:
    recipients = [f"user{i}@mail.test" for i in range(100_000)]
    refused = env.attempt("owner@corp.test", recipients, GOOD)
    assert isinstance(refused, SubmissionError)
    assert refused.code.startswith("452") and "100000 recipients" in str(refused)


def test_duplicate_recipients_are_queued_once(env: Env) -> None:
    accepted = env.attempt("owner@corp.test", ["a@mail.test", "a@MAIL.test", "<a@mail.test>"], GOOD)
    assert isinstance(accepted, Accepted) and accepted.enqueued.recipients == ("a@mail.test",)


def test_suppressed_recipients_are_dropped_or_refused(env: Env) -> None:
    partly = env.attempt("owner@corp.test", ["ok@mail.test", "Blocked@mail.test"], GOOD)
    assert isinstance(partly, Accepted) and partly.enqueued.recipients == ("ok@mail.test",)
    assert "Blocked@mail.test" in partly.refused
    refused = env.attempt("owner@corp.test", ["blocked@mail.test"], GOOD)
    assert isinstance(refused, SubmissionError) and refused.code.startswith("550")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"From: owner@corp.test\r\nSubject: header only", None),
        (b"From: owner@corp.test\r\n", None),
        (b"", "malformed"),
        (b"\r\n\r\nbody only\r\n", "malformed"),
        (b"From: owner@corp.test\r\nSubject: a\0b\r\n\r\nbody\r\n", "NUL"),
        (b"From: owner@corp.test\r\nSubject: x\r\n\r\nbinary\0body\r\n", "NUL"),
        (b"From: owner@corp.test\r\nSubject: caf\xc3\xa9 \xe2\x82\xac\r\n\r\nbody\r\n", None),
        (b"From: owner@corp.test\r\nSubject: caf\xe9 latin-1\r\n\r\nbody\r\n", None),
        (b"From: \xff\xfe@corp.test\r\n\r\nbody\r\n", None),
        (b"From: owner@corp.test\r\nSubject: " + b"x" * 5000 + b"\r\n\r\nbody\r\n", "998"),
        (
            b"From: owner@corp.test\r\nSubject: start"
            + b"\r\n continued" * 15000
            + b"\r\n\r\nbody\r\n",
            None,  # 165 kB in one (folded) field: valid, under max_message_bytes
        ),
        (b"From: owner@corp.test\r\nX-Big: " + b"y " * 150_000 + b"\r\n\r\nbody\r\n", "limit"),
        (b"From: owner@corp.test\r\nX-Folded: a\r\n b\r\n c\r\n\r\nbody\r\n", None),
        (b" leading continuation\r\nFrom: owner@corp.test\r\n\r\nbody\r\n", "malformed"),
        (b"From owner@corp.test Mon Jan 1\r\nFrom: owner@corp.test\r\n\r\nbody\r\n", "malformed"),
    ],
)
def test_awkward_messages(env: Env, raw: bytes, reason: str | None) -> None:
    outcome = env.attempt("owner@corp.test", ["x@mail.test"], raw)
    if reason is None:
        assert isinstance(outcome, Accepted), outcome
        queued = env.queue.load(outcome.enqueued.message_id)
        assert b"\r\nMessage-ID: <" in queued and b"\r\nDate: " in queued
    else:
        assert isinstance(outcome, SubmissionError) and reason in str(outcome), outcome


# --- hostile servers ------------------------------------------------------------------------


class HostileServer:
    """A scripted SMTP server on one loopback address; ``mode`` picks the misbehaviour:

    garbage-greeting  a banner that is no SMTP reply
    garbage-ehlo      binary junk in answer to EHLO
    garbage-rcpt      a reply code that is not three digits
    garbage-data      junk at end of DATA
    close-data        hangs up after the first bytes of the message
    hang              reads the message, never answers
    ascii-only        behaves, but offers no SMTPUTF8
    """

    def __init__(self, host: str, port: int, mode: str) -> None:
        self.host, self.port, self.mode = host, port, mode
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def __aenter__(self) -> HostileServer:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.mode
        try:
            writer.write(b"hello? \xff\r\n" if mode == "garbage-greeting" else b"220 hostile\r\n")
            while line := await reader.readline():
                command = line[:4].upper()
                if command in (b"EHLO", b"HELO"):
                    junk = b"\x00\x01\x02 what\r\n"
                    writer.write(junk if mode == "garbage-ehlo" else b"250-hostile\r\n250 SIZE\r\n")
                elif command == b"RCPT":
                    writer.write(b"2O5 maybe\r\n" if mode == "garbage-rcpt" else b"250 ok\r\n")
                elif command == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    if mode == "close-data":
                        await reader.read(20)
                        writer.transport.abort()
                        return
                    await reader.readuntil(b"\r\n.\r\n")
                    if mode == "hang":
                        await asyncio.sleep(60)
                    writer.write(
                        b"\xde\xad\xbe\xef\r\n" if mode == "garbage-data" else b"250 ok\r\n"
                    )
                elif command == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 ok\r\n")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


MODES = ("garbage-greeting", "garbage-ehlo", "garbage-rcpt", "garbage-data", "close-data", "hang")
ALL_MODES = (*MODES, "ascii-only")


def hostile_records() -> list[ZoneRecord]:
    records = []
    for index, mode in enumerate(ALL_MODES):
        records.append(ZoneRecord(f"{mode}.test", "MX", (10, f"mx.{mode}.test")))
        records.append(ZoneRecord(f"mx.{mode}.test", "A", f"127.0.0.{20 + index}"))
    return records


async def test_the_worker_survives_hostile_servers_and_keeps_delivering(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, records=hostile_records(), delivery_timeout=1.0) as world:
        servers = [
            HostileServer(f"127.0.0.{20 + index}", world.port, mode)
            for index, mode in enumerate(ALL_MODES)
        ]
        for server in servers:
            await server.__aenter__()
        try:
            ids = {mode: world.submit([f"rcpt@{mode}.test"]).enqueued.message_id for mode in MODES}

            def deferred(mode: str) -> bool:
                row = world.queue.show(ids[mode])["recipients"][0]
                return bool(row["attempts"] >= 1 and row["state"] == "queued")

            await world.until(lambda: all(deferred(mode) for mode in MODES), timeout=10)
            for mode, message_id in ids.items():
                row = world.queue.show(message_id)["recipients"][0]
                assert row["last_reply"][:1] == "4" and len(row["last_reply"]) > 12, (mode, row)
            assert world.task is not None and not world.task.done()
            later = world.submit(["after@mail.test"])
            shown = await world.settled(later.enqueued.message_id)
            assert shown["recipients"][0]["state"] == "delivered"
            # Non-ASCII addresses go out with SMTPUTF8, and bounce (softly) where it is missing.
            utf8 = world.submit(["jöhn@mail.test"], sender="ownér@corp.test")
            shown = await world.settled(utf8.enqueued.message_id)
            assert shown["recipients"][0]["state"] == "delivered"
            sunk = [m for ip in ("127.0.0.2", "127.0.0.3") for m in world.sinks[ip].messages]
            assert ("ownér@corp.test", ("jöhn@mail.test",)) in [
                (m.mail_from, m.rcpt_to) for m in sunk
            ]
            refused = world.submit(["jöhn@ascii-only.test"])
            row = (await world.settled(refused.enqueued.message_id))["recipients"][0]
            assert row["state"] == "bounced" and row["status"] == "5.6.7"
            assert "SMTPUTF8" in row["last_reply"] and row["hard"] is False
            assert world.suppressions.find(["jöhn@ascii-only.test"]) == {}
        finally:
            for server in servers:
                await server.__aexit__()
        assert all(server.connections >= 1 for server in servers)
