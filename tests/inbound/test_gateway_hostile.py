"""The SMTP gateway against hostile clients: fuzzed command sequences, over-long lines, invalid
addresses, commands out of order, junk floods, clients vanishing mid-transaction and memory
pressure. Each time the replies must be well-formed with the right code, nothing half-received
may reach the sink or stay in the spool, the server must go on serving, and memory must stay
bounded (``VmRSS`` of this process, where the gateway runs in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import smtplib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import build_message
from gateway_harness import RunningGateway, Sink, gateway_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.inbound.scanner import Scanner
from postwise.inbound.spool import Spool

SENDER = "ann.baker@example.org"
RECIPIENT = "sam.lee@example.net"
MiB = 1024 * 1024
_REPLY_LINE = re.compile(rb"[2-5][0-9][0-9]([ -][^\r\n]*)?")

StartGateway = Callable[..., RunningGateway]


# --------------------------------------------------------------------------- helpers


def marked_message(marker: str) -> bytes:
    """The default well-formed note, with ``marker`` in its Subject, CRLF line endings."""
    raw = build_message(headers={"Subject": f"Minutes {marker}", "Message-ID": f"<{marker}@x>"})
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def rss_mb() -> float:
    """Resident memory of this process (the gateway runs in one of its threads)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found, status
    return int(found.group(1)) / 1024


class PeakRss:
    """Samples ``rss_mb`` every few milliseconds while the ``with`` block runs."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.before = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.before


class Wire:
    """SMTP byte for byte on a plain socket; every reply line is checked as it is read."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        assert self.reply()[0] == 220

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        """The next complete (possibly multi-line) reply."""
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed by the server after {lines!r}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            assert _REPLY_LINE.fullmatch(line), line
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(p[4:].decode(errors="replace") for p in lines)

    def command(self, line: bytes | str) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        received = self.buffer
        try:
            while chunk := self.sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        return received

    def session_output(self, patience: float = 60.0) -> bytes:
        """Everything the server sends until it closes. After ``220 Ready to start TLS`` it
        waits for a TLS handshake that plaintext never starts (RFC 3207 drops what was
        pipelined after STARTTLS): we then hang up, as such a client would."""
        received = self.buffer
        deadline = time.monotonic() + patience
        self.sock.settimeout(0.5)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                if b"220 Ready to start TLS\r\n" in received:
                    self.sock.shutdown(socket.SHUT_WR)
                assert time.monotonic() < deadline, f"the server went silent: {received!r}"
                continue
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk

    def open_data(self, mail_from: str = SENDER) -> None:
        """EHLO, MAIL, RCPT and DATA, each checked."""
        assert self.command("EHLO client.example")[0] == 250
        assert self.command(f"MAIL FROM:<{mail_from}>")[0] == 250
        assert self.command(f"RCPT TO:<{RECIPIENT}>")[0] == 250
        assert self.command("DATA")[0] == 354

    def abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), the way a crashed client goes."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def assert_well_formed(stream: bytes) -> list[bytes]:
    """Every line the server sent is ``<2xx-5xx code>[ -text]<CRLF>``; returns the lines."""
    lines = stream.split(b"\r\n")
    assert lines[-1] == b"", f"reply not ended by CRLF: {lines[-1]!r}"
    for line in lines[:-1]:
        assert _REPLY_LINE.fullmatch(line), f"malformed reply line {line!r}"
    return lines[:-1]


def send_ham(port: int, marker: str) -> tuple[int, bytes]:
    """A well-formed transaction on a new connection; returns the reply to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.example")
        client.mail(SENDER)
        client.rcpt(RECIPIENT)
        return client.data(marked_message(marker))


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def at_sink(sink: Sink, marker: str) -> int:
    """How many messages the sink holds with ``marker`` (from :func:`marked_message`)."""
    message_id = f"Message-ID: <{marker}@x>".encode()
    return sum(1 for m in sink.messages if message_id in m.raw)


def spool_files(data_dir: Path) -> list[Path]:
    """What is left in the spool, its staging folder included."""
    spool = Spool(data_dir / "spool")
    return [*spool.incoming.iterdir(), *spool.staging.iterdir()]


def assert_serving(running: RunningGateway, sink: Sink, marker: str) -> None:
    code, reply = send_ham(running.port, marker)
    assert code == 250 and b"relayed" in reply, reply
    assert at_sink(sink, marker) == 1


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.controller.stop(no_assert=True)


@pytest.fixture
def start_gateway(postwise_env: Path, scanner: Scanner) -> Iterator[StartGateway]:
    """Starts gateways (the test model, state in the test's data folder); stops them after."""
    started: list[RunningGateway] = []

    def start(next_hop: str | None, **overrides: Any) -> RunningGateway:
        running = RunningGateway(gateway_settings(postwise_env, next_hop, **overrides), scanner)
        started.append(running.start())
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def gateway(start_gateway: StartGateway, sink: Sink) -> RunningGateway:
    return start_gateway(sink.address, max_message_bytes=MiB)


# --------------------------------------------------------------------------- fuzzed sessions

_VERBS = [
    b"HELO", b"EHLO", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET", b"NOOP", b"VRFY", b"EXPN",
    b"HELP", b"STARTTLS", b"AUTH", b"XCLIENT", b"XFORWARD", b"BDAT", b"QUIT", b"mail from:",
    b"rcpt to:", b"ehlo", b".", b"",
]  # fmt: skip
_ARGUMENTS = [
    b"", b" client.example", b"<ann.baker@example.org>", b"<sam.lee@example.net>", b"<>",
    b" <a@example.org> SIZE=99999999999", b"<a@example.org> BODY=8BITMIME SMTPUTF8",
    b" PLAIN dGVzdAB0ZXN0AHRlc3Q=", b" LOGIN", b" ADDR=192.0.2.1 NAME=x.example HELO=h",
    b" ADDR=junk", b" HELO=+0D+0Ainjected", b"<zo\xc3\xab@ex\xc3\xa4mple.net>", b"<\xff@x>",
    b"<@relay.example:a@example.org>", b"<a@example.org", b"<" + b"a" * 400 + b"@x>", b" " * 40,
    b"\x00", b"\x1b[2J", b" SIZE=-1", b" 1000 LAST",
]  # fmt: skip
_LINE = st.tuples(
    st.one_of(st.sampled_from(_VERBS), st.binary(min_size=1, max_size=12)),
    st.one_of(st.sampled_from(_ARGUMENTS), st.binary(max_size=80)),
    st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""]),
).map(b"".join)
_DATA_BLOCK = st.binary(max_size=400).map(lambda body: body + b"\r\n.\r\n")
_SESSIONS = st.lists(st.one_of(_LINE, _LINE, _LINE, _DATA_BLOCK), min_size=1, max_size=14)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session=_SESSIONS)
def test_fuzzed_sessions_get_well_formed_replies_and_the_server_stays_up(
    gateway: RunningGateway, sink: Sink, session: list[bytes]
) -> None:
    wire = Wire(gateway.port)
    # Whatever state the junk left, this ends a DATA and then the session. (The server may
    # have hung up already: too many bad commands, a failed TLS handshake.)
    with contextlib.suppress(OSError):
        wire.send(b"".join(session) + b"\r\n.\r\nQUIT\r\n")
    try:
        assert_well_formed(wire.session_output())
    finally:
        wire.close()
    marker = f"fuzz-{time.monotonic_ns()}"
    assert_serving(gateway, sink, marker)


# --------------------------------------------------------------------------- over-long lines


def test_a_command_line_over_512_octets_gets_500_and_the_session_goes_on(
    gateway: RunningGateway,
) -> None:
    wire = Wire(gateway.port)
    try:
        assert wire.command("EHLO client.example")[0] == 250
        assert wire.command("NOOP " + "x" * 600)[0] == 500
        assert wire.command(f"MAIL FROM:<{SENDER}> " + "X" * 2000)[0] == 500
        assert wire.command(b"RCPT TO:<" + b"y" * 100_000)[0] == 500  # the rest is dropped
        assert wire.command("NOOP")[0] == 250
    finally:
        wire.close()


@pytest.mark.parametrize(
    "line",
    [b"x" * 2000 + b"\r\n", b"y" * (32 * MiB) + b"\r\n"],
    ids=["2000-octets", "32-MiB-without-CRLF"],
)
def test_a_data_line_over_1000_octets_gets_500_and_the_session_goes_on(
    gateway: RunningGateway, sink: Sink, postwise_env: Path, line: bytes
) -> None:
    wire = Wire(gateway.port)
    try:
        wire.open_data()
        wire.send(b"Subject: long line\r\n\r\n")
        with PeakRss() as memory:
            wire.send(line)
            wire.send(b".\r\n")
            code, reply = wire.reply()
        assert code == 500 and "Line too long" in reply, reply
        assert memory.growth < 24, f"{memory.growth:.0f} MB for one over-long line"
        wire.open_data()  # same connection, next transaction
        wire.send(marked_message("after-long-line") + b".\r\n")
        assert wire.reply()[0] == 250
    finally:
        wire.close()
    assert at_sink(sink, "after-long-line") == 1
    assert len(sink.messages) == 1
    assert spool_files(postwise_env) == []


# --------------------------------------------------------------------------- addresses, order


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        ([b"MAIL FROM:<ann.baker@example.org"], 553),  # unbalanced <>
        ([b"MAIL FROM:ann.baker@example.org>"], 501),
        ([b"MAIL FROM:<ann\x00baker@example.org>"], 553),
        ([b"MAIL FROM:<" + b"a" * 300 + b"@example.org>"], 553),
        (["MAIL FROM:<josé@example.org>".encode()], 553),  # no SMTPUTF8
        ([b"MAIL FROM:<jos\xe9@example.org> SMTPUTF8"], 553),  # not UTF-8
        ([b"MAIL FROM:<a@example.org> SIZE=12x"], 501),
        ([b"MAIL FROM:"], 501),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:<sam.lee>"], 553),  # no @
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:<sam.lee@example.net"], 553),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:sam.lee@example.net>"], 501),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:<sam\x00lee@example.net>"], 553),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:<" + b"b" * 300 + b"@example.net>"], 553),
        ([b"MAIL FROM:<a@example.org>", "RCPT TO:<zoë@example.net>".encode()], 553),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:<@example.net>"], 553),
        ([b"MAIL FROM:<a@example.org>", b"RCPT TO:"], 501),
    ],
    ids=lambda value: value if isinstance(value, int) else repr(value[-1][:40]),
)
def test_invalid_addresses_get_5xx_and_the_session_goes_on(
    gateway: RunningGateway, sink: Sink, commands: list[bytes], expected: int
) -> None:
    wire = Wire(gateway.port)
    try:
        assert wire.command("EHLO client.example")[0] == 250
        for command in commands[:-1]:
            assert wire.command(command)[0] == 250
        code, reply = wire.command(commands[-1])
        assert code == expected, reply
        assert wire.command("RSET")[0] == 250
        assert wire.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert wire.command(f"RCPT TO:<{RECIPIENT}>")[0] == 250
        assert wire.command("DATA")[0] == 354
        wire.send(marked_message("after-bad-address") + b".\r\n")
        assert wire.reply()[0] == 250
    finally:
        wire.close()
    assert [m.mail_from for m in sink.messages] == [SENDER]


def test_an_smtputf8_address_declared_as_such_is_taken(gateway: RunningGateway, sink: Sink) -> None:
    wire = Wire(gateway.port)
    try:
        assert wire.command("EHLO client.example")[0] == 250
        assert wire.command("MAIL FROM:<josé@example.org> SMTPUTF8".encode())[0] == 250
        assert wire.command("RCPT TO:<zoë@example.net>".encode())[0] == 250
        assert wire.command("DATA")[0] == 354
        wire.send(marked_message("utf8-address") + b".\r\n")
        assert wire.reply()[0] == 250
    finally:
        wire.close()
    [message] = sink.messages
    assert (message.mail_from, message.rcpt_to) == ("josé@example.org", ("zoë@example.net",))


def test_commands_out_of_order_get_503(gateway: RunningGateway, sink: Sink) -> None:
    wire = Wire(gateway.port)
    try:
        assert wire.command(f"MAIL FROM:<{SENDER}>")[0] == 503  # before HELO
        assert wire.command("EHLO client.example")[0] == 250
        assert wire.command(f"RCPT TO:<{RECIPIENT}>")[0] == 503  # before MAIL
        assert wire.command("DATA")[0] == 503  # before MAIL
        assert wire.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert wire.command("DATA")[0] == 503  # before RCPT
        assert wire.command(f"MAIL FROM:<{SENDER}>")[0] == 503  # nested
        assert wire.command(f"RCPT TO:<{RECIPIENT}>")[0] == 250
        assert wire.command("DATA extra")[0] == 501
        assert wire.command("QUIT")[0] == 221
    finally:
        wire.close()
    assert sink.messages == []


def test_a_flood_of_unknown_commands_ends_with_502_and_the_server_stays_up(
    gateway: RunningGateway, sink: Sink
) -> None:
    wire = Wire(gateway.port)
    try:
        wire.send(b"".join(b"JUNK%d whatever\r\n" % n for n in range(25)))
        lines = assert_well_formed(wire.until_closed())
    finally:
        wire.close()
    assert lines[-1].startswith(b"502 "), lines
    assert len(lines) < 25  # cut off, not answered one by one
    assert_serving(gateway, sink, "after-flood")


# --------------------------------------------------------------------------- disconnects


def test_clients_vanishing_mid_data_leave_nothing_at_the_sink_or_in_the_spool(
    gateway: RunningGateway, sink: Sink, postwise_env: Path
) -> None:
    def vanish(number: int) -> None:
        wire = Wire(gateway.port)
        wire.open_data()
        raw = marked_message(f"vanished-{number}")
        wire.send(raw[: len(raw) * (number % 5 + 1) // 6])
        if number % 2:
            wire.abort()
        else:
            wire.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(vanish, range(60)))
    assert_serving(gateway, sink, "after-vanishing")
    time.sleep(0.5)  # anything half-received would have been handed on by now
    assert [m for m in sink.messages if b"vanished-" in m.raw] == []
    assert spool_files(postwise_env) == []
    assert gateway.services.quarantine.count() == 0


def test_a_client_hanging_up_right_after_its_final_dot_still_has_it_relayed_once(
    gateway: RunningGateway, sink: Sink, postwise_env: Path
) -> None:
    """The message is complete once the dot is in; a client that does not wait for the reply
    (it timed out, it crashed) must not leave it half-relayed or stranded in the spool."""

    def hang_up(number: int) -> None:
        wire = Wire(gateway.port)
        wire.open_data()
        wire.send(marked_message(f"hung-up-{number}") + b".\r\n")
        wire.abort() if number % 2 else wire.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(hang_up, range(20)))
    wait_for(lambda: sum(b"hung-up-" in m.raw for m in sink.messages) == 20)
    assert all(at_sink(sink, f"hung-up-{n}") == 1 for n in range(20))
    wait_for(lambda: spool_files(postwise_env) == [])


# --------------------------------------------------------------------------- memory


def test_two_hundred_partial_data_transfers_keep_memory_bounded(
    gateway: RunningGateway, sink: Sink
) -> None:
    """200 clients each send 256 KiB of a message and drop the connection: the gateway holds
    at most what they sent (50 MiB), and gives it back."""
    chunk = (b"z" * 998 + b"\r\n") * 262

    async def partial(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        script = [b"EHLO client.example", f"MAIL FROM:<{SENDER}>".encode()]
        script += [f"RCPT TO:<{RECIPIENT}>".encode(), b"DATA"]
        await reader.readline()
        for line in script:
            writer.write(line + b"\r\n")
            while (reply := await reader.readline())[3:4] == b"-":
                pass
            assert reply[:1] in (b"2", b"3"), reply
        writer.write(b"Subject: big\r\n\r\n" + chunk)
        await writer.drain()
        writer.transport.abort()

    async def storm() -> None:
        await asyncio.gather(*(partial(gateway.port) for _ in range(200)))

    with PeakRss() as memory:
        asyncio.run(storm())
        assert_serving(gateway, sink, "after-storm")
    assert memory.growth < 200, f"{memory.growth:.0f} MB for 200 partial transfers"
    gc.collect()
    assert rss_mb() - memory.before < 100
    assert len(sink.messages) == 1


def test_data_over_the_size_limit_is_dropped_as_it_arrives(
    gateway: RunningGateway, sink: Sink, postwise_env: Path
) -> None:
    """32 MiB against a 1 MiB limit: read and discarded, then 552."""
    block = (b"q" * 998 + b"\r\n") * 1024
    wire = Wire(gateway.port)
    try:
        wire.open_data()
        with PeakRss() as memory:
            wire.send(b"Subject: too big\r\n\r\n")
            for _ in range(32):
                wire.send(block)
            wire.send(b".\r\n")
            code, reply = wire.reply()
        assert code == 552, reply
        assert memory.growth < 24, f"{memory.growth:.0f} MB held for refused data"
        assert wire.command("NOOP")[0] == 250
    finally:
        wire.close()
    assert sink.messages == []
    assert spool_files(postwise_env) == []


def test_empty_lines_cost_their_size_in_the_data_buffer(
    start_gateway: StartGateway, sink: Sink, postwise_env: Path
) -> None:
    """aiosmtpd kept a bytearray per line, 60 bytes for an empty one: 4 MiB of them took
    130 MB before the size limit cut in. (Refused here so that the scan, whose parser has
    its own per-line cost, is not measured.)"""
    running = start_gateway(sink.address, max_message_bytes=4 * MiB)
    message = b"Subject: spacious\r\n\r\n" + b"\r\n" * (2 * MiB + 1) + b".\r\n"
    wire = Wire(running.port)
    try:
        wire.open_data()
        with PeakRss() as memory:
            wire.send(message)
            code, reply = wire.reply()
        assert code == 552, reply
    finally:
        wire.close()
    assert memory.growth < 40, f"{memory.growth:.0f} MB for 4 MiB of empty lines"
    assert sink.messages == []
