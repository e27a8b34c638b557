"""The milter against an MTA played by the tests: a real MilterServer on a loopback port, spoken
to over a socket as Postfix speaks to it (option negotiation, CONNECT with family '4', HELO,
MAIL, RCPT, DATA, headers, EOH, body chunks, end of message).

The MTA side below is written from the protocol description, independently of the server's
constants, so a wrong flag or command letter on either side shows up as a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from postwise.core.db import VerdictRecord, open_database
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import Decision
from postwise.inbound.milter import MilterServer, RawMessageBuilder
from postwise.inbound.pipeline import InboundPipeline
from postwise.inbound.policy import load_policy
from postwise.inbound.quarantine import QuarantineStore
from postwise.inbound.scanner import Scanner

# ------------------------------------------------------------------ the MTA's side of the protocol

SMFIF_ADDHDRS = 0x01
SMFIF_QUARANTINE = 0x20
SMFIF_POSTFIX = 0x1FF  # every action Postfix 3 offers
SMFIP_NOUNKNOWN = 1 << 8
SMFIP_NODATA = 1 << 9
SMFIP_HDR_LEADSPC = 1 << 20
# The reply each event may skip (SMFIP_NR_*), by command.
SMFIP_NR = {
    b"C": 1 << 12,
    b"H": 1 << 13,
    b"M": 1 << 14,
    b"R": 1 << 15,
    b"T": 1 << 16,
    b"U": 1 << 17,
    b"L": 1 << 7,
    b"N": 1 << 18,
    b"B": 1 << 19,
}
POSTFIX_PROTOCOL = 0x1FFFFF  # Postfix 3 with milter_protocol = 6 offers every v6 flag
V2_PROTOCOL = 0x7F  # only the SMFIP_NO* flags of version 2: a reply to every event
FINAL_REPLIES = {b"a", b"r", b"t", b"y", b"d", b"4", b"f"}

Reply = tuple[bytes, bytes]


def packet(command: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + command + data


def crlf(raw: bytes) -> bytes:
    """``raw`` with CRLF line ends, as it travels in SMTP."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def postfix_headers(head: bytes, leading_space: bool) -> list[tuple[bytes, bytes]]:
    """Headers as Postfix reports them: the name without trailing blanks, the value after the
    colon without its first space (unless SMFIP_HDR_LEADSPC), folded lines joined by bare LF."""
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    headers = []
    for field in fields:
        name, _, value = field.partition(b":")
        if not leading_space and value.startswith(b" "):
            value = value[1:]
        headers.append((name.rstrip(b" \t"), value))
    return headers


class MilterClient:
    """The MTA: a blocking socket speaking the milter protocol to the server."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.version = 0
        self.actions = 0
        self.protocol = 0

    def __enter__(self) -> MilterClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def send(self, command: bytes, data: bytes = b"") -> None:
        self.sock.sendall(packet(command, data))

    def read(self) -> Reply:
        (length,) = struct.unpack(">I", self._exactly(4))
        payload = self._exactly(length)
        return payload[:1], payload[1:]

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError(f"the milter closed after {len(data)} of {size} bytes")
            data += chunk
        return data

    def closed_by_server(self) -> bool:
        """Reads until the server closes; True when it closes without sending anything more."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def drain_until_closed(self) -> None:
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass

    def negotiate(
        self, version: int = 6, actions: int = SMFIF_POSTFIX, protocol: int = POSTFIX_PROTOCOL
    ) -> tuple[int, int, int]:
        self.send(b"O", struct.pack(">III", version, actions, protocol))
        command, data = self.read()
        assert command == b"O"
        self.version, self.actions, self.protocol = struct.unpack(">III", data)
        # What Postfix checks: no higher version, no action it did not offer.
        assert self.version <= version
        assert self.actions & actions == self.actions
        assert self.protocol & protocol == self.protocol
        return self.version, self.actions, self.protocol

    def event(self, command: bytes, data: bytes = b"") -> None:
        """Report an event; unless the negotiation waived its reply, expect CONTINUE."""
        if command == b"T" and self.protocol & SMFIP_NODATA:
            return
        self.send(command, data)
        if not self.protocol & SMFIP_NR[command]:
            assert self.read() == (b"c", b"")

    def macros(self, stage: bytes, **values: str) -> None:
        pairs = b"".join(f"{name}\0{value}\0".encode() for name, value in values.items())
        self.send(b"D", stage + pairs)

    def connect(self, ip: str = "192.0.2.7", family: bytes = b"4") -> None:
        self.event(
            b"C", b"mail.example.org\0" + family + struct.pack(">H", 52100) + ip.encode() + b"\0"
        )

    def envelope(
        self,
        mail_from: str = "ann.baker@example.org",
        rcpt_to: tuple[str, ...] = ("sam.lee@example.net",),
        helo: str = "mail.example.org",
        queue_id: str | None = None,
    ) -> None:
        self.event(b"H", helo.encode() + b"\0")
        if queue_id is not None:
            self.macros(b"M", i=queue_id)
        self.event(b"M", f"<{mail_from}>\0BODY=8BITMIME\0".encode())
        for rcpt in rcpt_to:
            self.event(b"R", f"<{rcpt}>\0".encode())

    def headers(self, raw: bytes) -> bytes:
        """DATA and the headers of ``raw``; returns its body."""
        self.event(b"T")
        head, _, body = raw.partition(b"\r\n\r\n")
        for name, value in postfix_headers(head, bool(self.protocol & SMFIP_HDR_LEADSPC)):
            self.event(b"L", name + b"\0" + value + b"\0")
        self.event(b"N")
        return body

    def content(self, raw: bytes, queue_id: str | None = None, chunk: int = 65535) -> list[Reply]:
        """Send the message as Postfix does; returns the replies up to the final one."""
        body = self.headers(raw)
        for start in range(0, len(body), chunk):
            self.event(b"B", body[start : start + chunk])
        if queue_id is not None:
            self.macros(b"E", i=queue_id)
        self.send(b"E")
        return self.final()

    def final(self) -> list[Reply]:
        replies = []
        while True:
            replies.append(self.read())
            if replies[-1][0] in FINAL_REPLIES:
                return replies

    def session(self, raw: bytes, **envelope: Any) -> list[Reply]:
        """Negotiate, connect and pass one message."""
        self.negotiate()
        self.connect()
        self.envelope(**envelope)
        return self.content(raw)


def added_headers(replies: list[Reply]) -> dict[str, str]:
    headers = {}
    for command, data in replies:
        if command == b"h":
            name, value, end = data.split(b"\0")
            assert end == b""
            headers[name.decode("ascii")] = value.decode("ascii")
    return headers


# ------------------------------------------------------------------------------ the server

LIMIT = 64 * 1024
# Rule symbols only, with weights that make the outcome certain: no Date -> quarantine,
# no From -> reject, a complete message -> no action.
POLICY = """
[symbols.ML_SPAM]
weight = 0.0
[symbols.ML_PHISH]
weight = 0.0
[symbols.ML_HAM]
weight = 0.0
[symbols.MISSING_DATE]
weight = 12.0
[symbols.MISSING_FROM]
weight = 20.0
"""


@dataclass
class RunningMilter:
    port: int
    pipeline: InboundPipeline
    loop_errors: list[dict[str, Any]]

    @property
    def store(self) -> QuarantineStore:
        return self.pipeline.quarantine

    def client(self) -> MilterClient:
        return MilterClient(self.port)

    def verdict_sources(self) -> list[str]:
        assert self.pipeline.engine is not None
        with Session(self.pipeline.engine) as session:
            return list(session.scalars(select(VerdictRecord.source)))


@contextmanager
def running_milter(pipeline: InboundPipeline, **options: Any) -> Iterator[RunningMilter]:
    """A MilterServer on its own event loop in a thread, on a free loopback port. Errors that
    reach the loop's exception handler (an unhandled task error) are collected."""
    loop = asyncio.new_event_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = MilterServer(pipeline, "postwise.test", **options)
    try:
        port = asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(10)
        yield RunningMilter(port, pipeline, errors)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def pipeline(tmp_path: Path, scanner: Any) -> Iterator[InboundPipeline]:
    """The test model and limits of the ``scanner`` fixture under POLICY, a 64 KiB size
    limit, verdicts and quarantine in a temporary SQLite database."""
    override = tmp_path / "policy.toml"
    override.write_text(POLICY)
    judge = Scanner(load_policy(override), scanner.model, scanner.limits, LIMIT)
    engine = open_database(f"sqlite:///{tmp_path / 'postwise.db'}")
    executor = ThreadPoolExecutor(max_workers=2)
    try:
        yield InboundPipeline(
            judge, QuarantineStore(tmp_path / "quarantine", engine), engine, executor
        )
    finally:
        executor.shutdown(wait=True)
        engine.dispose()


@pytest.fixture
def milter(pipeline: InboundPipeline) -> Iterator[RunningMilter]:
    with running_milter(pipeline, idle_timeout=10.0, packet_timeout=2.0) as running:
        yield running


@pytest.fixture
def ham(make_message: Callable[..., bytes]) -> bytes:
    return crlf(make_message())


@pytest.fixture
def undated(make_message: Callable[..., bytes]) -> bytes:
    """Judged quarantine under POLICY."""
    return crlf(make_message(headers={"Date": None, "Subject": "Undated minutes"}))


@pytest.fixture
def fromless(make_message: Callable[..., bytes]) -> bytes:
    """Judged reject under POLICY."""
    return crlf(make_message(headers={"From": None}))


# ----------------------------------------------------------------------------- negotiation


def test_negotiation_takes_version_6_our_actions_and_no_reply_flags(milter: RunningMilter) -> None:
    with milter.client() as client:
        version, actions, protocol = client.negotiate()
    assert version == 6
    assert actions == SMFIF_ADDHDRS | SMFIF_QUARANTINE
    for command, flag in SMFIP_NR.items():
        assert protocol & flag, f"no reply waiver for {command!r}"
    assert protocol & SMFIP_HDR_LEADSPC
    assert protocol & (SMFIP_NODATA | SMFIP_NOUNKNOWN) == SMFIP_NODATA | SMFIP_NOUNKNOWN


@pytest.mark.parametrize("version", [2, 3, 4])
def test_negotiation_follows_an_older_mta(milter: RunningMilter, version: int) -> None:
    with milter.client() as client:
        got_version, actions, protocol = client.negotiate(version, 0x3F, V2_PROTOCOL)
    assert got_version == version
    assert actions == SMFIF_ADDHDRS | SMFIF_QUARANTINE
    assert protocol & ~V2_PROTOCOL == 0


@pytest.mark.parametrize(
    ("version", "actions"),
    [(1, SMFIF_POSTFIX), (6, SMFIF_ADDHDRS), (6, SMFIF_QUARANTINE)],
    ids=["version 1", "no quarantine", "no headers"],
)
def test_mta_that_cannot_take_our_actions_is_refused(
    milter: RunningMilter, version: int, actions: int
) -> None:
    with milter.client() as client:
        client.send(b"O", struct.pack(">III", version, actions, POSTFIX_PROTOCOL))
        assert client.closed_by_server()


# ---------------------------------------------------------------------------- dispositions


def test_ham_gets_postwise_headers_then_accept(milter: RunningMilter, ham: bytes) -> None:
    with milter.client() as client:
        replies = client.session(ham)
    assert [command for command, _ in replies] == [b"h"] * 4 + [b"a"]
    # SMFIP_HDR_LEADSPC was negotiated: the values carry their own leading space.
    assert added_headers(replies) == {
        "X-Postwise-Score": " 0.00",
        "X-Postwise-Action": " no_action",
        "X-Postwise-Class": " ham",
        "X-Postwise-Symbols": " none",
    }
    assert milter.verdict_sources() == ["milter"]
    assert milter.store.count() == 0


def test_old_mta_gets_a_reply_to_every_event(milter: RunningMilter, ham: bytes) -> None:
    with milter.client() as client:
        client.negotiate(2, 0x3F, V2_PROTOCOL)
        client.connect()
        client.envelope()  # each event asserts its CONTINUE
        replies = client.content(ham, chunk=500)
    assert replies[-1] == (b"a", b"")
    headers = added_headers(replies)
    assert headers["X-Postwise-Action"] == "no_action"  # the MTA adds the space itself


def test_policy_reject_gets_550_with_the_reason(milter: RunningMilter, fromless: bytes) -> None:
    with milter.client() as client:
        replies = client.session(fromless)
    assert len(replies) == 1
    command, data = replies[0]
    assert command == b"y"
    assert data.endswith(b"\0") and data.count(b"\0") == 1
    reply = data[:-1].decode("ascii")
    assert reply.startswith("550 5.7.1 message judged ")
    assert "MISSING_FROM(+20.0)" in reply
    assert milter.store.count() == 0
    assert milter.verdict_sources() == ["milter"]


def test_quarantine_holds_in_the_mta_and_records_the_entry(
    milter: RunningMilter, undated: bytes
) -> None:
    with milter.client() as client:
        client.negotiate()
        client.connect(ip="192.0.2.44")
        client.envelope(
            mail_from="ann.baker@example.org",
            rcpt_to=("sam.lee@example.net", "kim@example.net"),
            helo="mx.example.org",
        )
        replies = client.content(undated, queue_id="4XyZq1R2kz")
    commands = [command for command, _ in replies]
    assert commands == [b"h"] * 4 + [b"q", b"a"]
    assert added_headers(replies)["X-Postwise-Action"] == " quarantine"
    reason = replies[4][1]
    assert reason.endswith(b"\0")
    assert b"MISSING_DATE(+12.0)" in reason

    [entry] = milter.store.list()
    assert entry.origin == "milter"
    assert entry.mta_queue_id == "4XyZq1R2kz"
    assert entry.envelope == Envelope(
        "ann.baker@example.org",
        ("sam.lee@example.net", "kim@example.net"),
        "192.0.2.44",
        "mx.example.org",
    )
    assert entry.reason == reason[:-1].decode("ascii")
    assert entry.subject == "Undated minutes"
    assert milter.store.raw(entry) == undated


@pytest.mark.parametrize("protocol", [POSTFIX_PROTOCOL, POSTFIX_PROTOCOL & ~SMFIP_HDR_LEADSPC])
def test_message_is_rebuilt_byte_for_byte(milter: RunningMilter, protocol: int) -> None:
    raw = (
        b"Received: from mx.example.org (mx.example.org [192.0.2.44])\r\n"
        b"\tby postwise.test with ESMTP id 4XyZq1R2kz;\r\n"
        b"\tTue, 03 Mar 2026 10:00:01 +0000\r\n"
        b"From: Ann Baker <ann.baker@example.org>\r\n"
        b"To: Sam Lee <sam.lee@example.net>,\r\n Kim Park <kim@example.net>\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?= minutes\r\n"
        b"X-Eight-Bit: caf\xc3\xa9 au lait\r\n"
        b"Message-ID: <minutes.2026-03-03@example.org>\r\n"
        b"\r\n"
        b"Hello Sam,\r\n\r\nthe minutes are below.\r\n.. a dotted line\r\n"
    )
    with milter.client() as client:
        client.negotiate(protocol=protocol)
        client.connect()
        client.envelope()
        replies = client.content(raw, queue_id="Q1", chunk=7)  # undated: quarantined
    assert replies[-2][0] == b"q"
    [entry] = milter.store.list()
    assert milter.store.raw(entry) == raw


# ------------------------------------------------------------- many messages, one connection


def test_two_messages_on_one_connection_with_abort_between(
    milter: RunningMilter, ham: bytes, undated: bytes
) -> None:
    with milter.client() as client:
        client.negotiate()
        client.connect()
        client.envelope(rcpt_to=("first@example.net",), queue_id="QFIRST")
        first = client.content(ham)
        client.send(b"A")  # Postfix aborts after each transaction
        # A transaction given up half-way (RSET after the headers) leaves nothing behind.
        client.envelope(rcpt_to=("abandoned@example.net",), queue_id="QABANDONED")
        client.headers(crlf(b"Subject: abandoned\r\nX-Abandoned: yes\r\n\r\n"))
        client.send(b"A")
        client.envelope(rcpt_to=("second@example.net",), queue_id="QSECOND")
        second = client.content(undated)
        client.send(b"Q")
        assert client.closed_by_server()
    assert first[-1] == (b"a", b"")
    assert [command for command, _ in second][-2:] == [b"q", b"a"]
    assert milter.verdict_sources() == ["milter", "milter"]
    [entry] = milter.store.list()
    assert entry.rcpt_to == ("second@example.net",)
    assert entry.mta_queue_id == "QSECOND"  # sent with MAIL, kept through the message
    assert milter.store.raw(entry) == undated


def test_quit_nc_starts_a_new_session_on_the_same_connection(
    milter: RunningMilter, ham: bytes, undated: bytes
) -> None:
    with milter.client() as client:
        client.negotiate()
        client.connect(ip="192.0.2.7")
        client.envelope(helo="first.example.org")
        assert client.content(ham)[-1] == (b"a", b"")
        client.send(b"K")
        client.connect(ip="IPv6:2001:db8::25", family=b"6")
        client.envelope(mail_from="", helo="second.example.org")  # the null sender <>
        assert client.content(undated)[-1] == (b"a", b"")
    [entry] = milter.store.list()
    assert entry.envelope == Envelope(
        "", ("sam.lee@example.net",), "2001:db8::25", "second.example.org"
    )


# ------------------------------------------------------------------------------- size limit


def test_oversized_message_is_refused_and_the_connection_goes_on(
    milter: RunningMilter, make_big_message: Callable[[int], bytes], ham: bytes
) -> None:
    big = make_big_message(16 * LIMIT)
    with milter.client() as client:
        replies = client.session(big)
        assert len(replies) == 1
        command, data = replies[0]
        assert command == b"y"
        assert data.startswith(b"552 5.3.4 message is over the 65536-byte limit")
        client.send(b"A")
        client.envelope()
        assert client.content(ham)[-1] == (b"a", b"")
    assert milter.verdict_sources() == ["milter"]  # only the second one was judged


def test_old_mta_is_stopped_at_the_chunk_that_passes_the_limit(milter: RunningMilter) -> None:
    chunk = b"x" * 998 + b"\r\n"
    with milter.client() as client:
        client.negotiate(2, 0x3F, V2_PROTOCOL)
        client.connect()
        client.envelope()
        client.headers(b"Subject: big\r\n\r\n")
        sent = len(b"Subject: big\r\n\r\n")
        for _ in range(10 * LIMIT // len(chunk)):
            client.send(b"B", chunk)
            sent += len(chunk)
            command, data = client.read()
            if command != b"c":
                break
    assert command == b"y" and data.startswith(b"552 5.3.4")
    assert LIMIT < sent <= LIMIT + len(chunk)
    assert milter.verdict_sources() == []


def test_builder_keeps_nothing_past_the_limit() -> None:
    builder = RawMessageBuilder(limit=1000, leading_space=False)
    builder.add_header(b"Subject", b"folded\n\tvalue")
    builder.add_body(b"a" * 500)
    assert builder.build() == b"Subject: folded\r\n\tvalue\r\n\r\n" + b"a" * 500
    for _ in range(100):
        builder.add_body(b"b" * 500)
        assert builder.buffered <= builder.limit
    assert builder.over_limit
    assert builder.buffered == 0
    assert builder.size > 50_000


# --------------------------------------------------------------------------------- failures


def test_a_failed_scan_tempfails_and_the_server_goes_on(
    milter: RunningMilter, ham: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_scan(*_: Any) -> Any:
        raise RuntimeError("the model file went away")

    monkeypatch.setattr(milter.pipeline.scanner, "scan", broken_scan)
    with milter.client() as client:
        assert client.session(ham) == [(b"t", b"")]
    monkeypatch.undo()
    with milter.client() as client:
        assert client.session(ham)[-1] == (b"a", b"")
    assert not milter.loop_errors


def test_a_quarantine_that_cannot_be_stored_tempfails(
    milter: RunningMilter, undated: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_: Any, **__: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(milter.store, "add", full_disk)
    with milter.client() as client:
        # No header edits, no QUARANTINE: only the tempfail, so the MTA keeps the message.
        assert client.session(undated) == [(b"t", b"")]
    monkeypatch.undo()
    assert milter.store.count() == 0


def test_reject_reply_is_one_ascii_line_with_percent_doubled(
    milter: RunningMilter, ham: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = milter.pipeline.judge

    async def odd_reason(raw: bytes, envelope: Envelope, source: str) -> Decision:
        decision = await judge(raw, envelope, source)
        reason = "100% spam \u2014 caf\u00e9\r\nX-Injected: yes"
        return dataclasses.replace(decision, disposition="reject", reason=reason)

    monkeypatch.setattr(milter.pipeline, "judge", odd_reason)
    with milter.client() as client:
        replies = client.session(ham)
    assert replies == [(b"y", b"550 5.7.1 100%% spam ? caf? X-Injected: yes\0")]


MALFORMED: dict[str, tuple[bool, bytes]] = {
    # name: (negotiate first, bytes)
    "length 0": (False, b"\0\0\0\0"),
    "huge declared length": (False, struct.pack(">I", 0x7FFFFFFF) + b"B"),
    "over the packet limit": (True, struct.pack(">I", 2 * 1024 * 1024) + b"B" + b"x" * 100),
    "unknown command": (True, packet(b"Z", b"hello\0")),
    "command before negotiation": (False, packet(b"C", b"mx\0" + b"4\0\x19" + b"192.0.2.1\0")),
    "short negotiation": (False, packet(b"O", b"\0\0\0\6")),
    "connect without address": (True, packet(b"C", b"mail.example.org\0")),
    "unknown address family": (True, packet(b"C", b"mx\0X\0\x19192.0.2.1\0")),
    "header without value": (True, packet(b"L", b"Subject\0")),
    "string without NUL": (True, packet(b"H", b"mail.example.org")),
    "macro without stage": (True, packet(b"D")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_packet_closes_the_connection_not_the_server(
    milter: RunningMilter, ham: bytes, case: str
) -> None:
    negotiate, stream = MALFORMED[case]
    with milter.client() as client:
        if negotiate:
            client.negotiate()
        with capture_logs() as logs:
            client.sock.sendall(stream)
            assert client.closed_by_server()
    assert [event["event"] for event in logs] == ["milter.protocol_error"]
    with milter.client() as client:
        assert client.session(ham)[-1] == (b"a", b"")
    assert not milter.loop_errors


def test_truncated_packet_closes_the_connection(milter: RunningMilter, ham: bytes) -> None:
    with milter.client() as client:
        client.negotiate()
        client.sock.sendall(struct.pack(">I", 100) + b"B" + b"x" * 10)
        client.sock.shutdown(socket.SHUT_WR)
        assert client.closed_by_server()
    with milter.client() as client:
        assert client.session(ham)[-1] == (b"a", b"")


def test_silent_mta_is_disconnected_after_the_idle_timeout(pipeline: InboundPipeline) -> None:
    with running_milter(pipeline, idle_timeout=0.3) as milter, milter.client() as client:
        client.negotiate()
        started = time.monotonic()
        assert client.closed_by_server()
        assert time.monotonic() - started < 5


def test_close_ends_open_connections(pipeline: InboundPipeline) -> None:
    with running_milter(pipeline) as milter:
        client = milter.client()
        client.negotiate()
    with client:
        assert client.closed_by_server()


# ------------------------------------------------------------------------------- robustness

OPTNEG = packet(b"O", struct.pack(">III", 6, SMFIF_POSTFIX, POSTFIX_PROTOCOL))
# Well-formed packets of a Postfix session, to be shuffled, repeated and corrupted: they reach
# the states (headers before MAIL, body after end of message, ...) random bytes seldom do.
SESSION_PACKETS = [
    packet(b"C", b"mx.example.org\0" + b"4" + struct.pack(">H", 25) + b"192.0.2.9\0"),
    packet(b"C", b"unknown\0U"),
    packet(b"H", b"mx.example.org\0"),
    packet(b"D", b"Mi\0QID1\0{auth_type}\0\0"),
    packet(b"M", b"<ann@example.org>\0SIZE=100\0"),
    packet(b"R", b"<sam@example.net>\0"),
    packet(b"T"),
    packet(b"U", b"XFOO bar\0"),
    packet(b"L", b"Subject\0 hello\n\tworld\0"),
    packet(b"L", b"From\0 Ann <ann@example.org>\0"),
    packet(b"N"),
    packet(b"B", b"Hello Sam,\r\n"),
    packet(b"E"),
    packet(b"E", b"a last chunk\r\n"),
    packet(b"A"),
    packet(b"K"),
    packet(b"O", struct.pack(">III", 2, 0x3F, V2_PROTOCOL)),
]
_commands = st.sampled_from([bytes([c]) for c in b"ABCDEHKLMNOQRTUZy\0"])
_random_packets = st.lists(st.tuples(_commands, st.binary(max_size=48)), max_size=12).map(
    lambda items: b"".join(packet(command, data) for command, data in items)
)
_shuffled_session = st.lists(st.sampled_from(SESSION_PACKETS), max_size=24).map(b"".join)


def _corrupt(stream: bytes, position: int, value: int) -> bytes:
    if not stream:
        return stream
    position %= len(stream)
    return stream[:position] + bytes([value]) + stream[position + 1 :]


STREAMS = st.one_of(
    st.binary(max_size=200),
    _random_packets.map(lambda stream: OPTNEG + stream),
    _shuffled_session.map(lambda stream: OPTNEG + stream),
    st.builds(_corrupt, _shuffled_session, st.integers(0, 4096), st.integers(0, 255)).map(
        lambda stream: OPTNEG + stream
    ),
    st.tuples(_random_packets, st.binary(max_size=32)).map(
        lambda parts: OPTNEG + parts[0] + parts[1]
    ),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=STREAMS)
def test_random_byte_streams_never_crash_the_server(milter: RunningMilter, stream: bytes) -> None:
    with capture_logs() as logs:
        with milter.client() as client:
            try:
                client.sock.sendall(stream)
                client.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server already hung up on a bad packet
            client.drain_until_closed()
        with milter.client() as client:
            assert client.negotiate()[0] == 6
    # Bad input is a protocol error (a warning); an error-level event would be a bug.
    assert [event for event in logs if event["log_level"] in {"error", "critical"}] == []
    assert not milter.loop_errors
