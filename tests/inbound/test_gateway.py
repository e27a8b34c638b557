"""The SMTP gateway end to end: a real gateway (in its own thread and event loop) in front of a
real sink, both on loopback, driven with ``smtplib`` and, where smtplib cannot express the
attack, with raw bytes on a socket.

The scanner has no model and a policy override that makes verdicts deterministic: an
executable attachment is rejected, a missing Date quarantined, an IP-address link adds a small
score that still delivers.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.x509.oid import NameOID
from gateway_harness import RunningGateway, Sink, SunkMessage, free_port, gateway_settings
from sqlalchemy import select
from sqlalchemy.orm import Session

from postwise.core.db import VerdictRecord
from postwise.core.errors import SettingsError
from postwise.core.settings import Settings
from postwise.inbound.checks.base import Envelope
from postwise.inbound.policy import load_policy
from postwise.inbound.quarantine import QuarantineStore
from postwise.inbound.scanner import Scanner
from postwise.inbound.spool import Spool
from postwise.inbound.tls import generate_self_signed, server_tls_context

pytestmark = pytest.mark.usefixtures("postwise_env")

MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240
SENDER = "ann.baker@example.org"
RECIPIENT = "sam.lee@example.net"
GATEWAY_POLICY = """
[symbols.ATTACH_EXECUTABLE]
weight = 20.0
[symbols.MISSING_DATE]
weight = 12.0
"""

StartGateway = Callable[..., RunningGateway]


# --------------------------------------------------------------------------- helpers


def crlf(raw: bytes) -> bytes:
    """``raw`` with SMTP line endings (the message builder writes bare ``\\n``)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def parsed(message: SunkMessage) -> Message:
    return message_from_bytes(message.raw)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def connect(port: int, helo: str = "client.example") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=15)
    client.ehlo()
    return client


def transaction(
    client: smtplib.SMTP,
    raw: bytes,
    rcpt_to: tuple[str, ...] = (RECIPIENT,),
    mail_from: str = SENDER,
    mail_options: tuple[str, ...] = (),
) -> tuple[int, str]:
    """One MAIL/RCPT/DATA exchange; returns the reply to the end of DATA (which smtplib's
    sendmail hides: it carries the quarantine id)."""
    code, reply = client.mail(mail_from, list(mail_options))
    assert code == 250, reply
    for rcpt in rcpt_to:
        code, reply = client.rcpt(rcpt)
        assert code == 250, reply
    code, reply = client.data(raw)
    return code, reply.decode()


def postwise_received(message: SunkMessage) -> str:
    """The Received header the gateway added, unfolded."""
    headers = [" ".join(str(h).split()) for h in parsed(message).get_all("Received", [])]
    [ours] = [h for h in headers if " by postwise.test (Postwise) " in h]
    return ours


def received_ip(message: SunkMessage) -> str:
    """The client address in the Received header the gateway added."""
    header = postwise_received(message)
    found = re.search(r"\(\[([0-9a-fA-F:.]+)\]\)", header)
    assert found, header
    return found.group(1)


class RawSession:
    """SMTP byte for byte over a plain socket: for what smtplib will not send."""

    def __init__(self, port: int, preamble: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if preamble:
            self.sock.sendall(preamble)
        self.buffer = b""

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
            lines.append(line)
            if line[3:4] != b"-":
                text = "\n".join(part[4:].decode() for part in lines)
                return int(line[:3]), text

    def command(self, line: str) -> tuple[int, str]:
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection."""
        received = self.buffer
        while chunk := self.sock.recv(65536):
            received += chunk
        return received

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def gateway_scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    override = tmp_path_factory.mktemp("policy") / "gateway-policy.toml"
    override.write_text(GATEWAY_POLICY)
    return Scanner(load_policy(override), None)


@pytest.fixture
def data_dir(postwise_env: Path) -> Path:
    return postwise_env


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
def start_gateway(data_dir: Path, gateway_scanner: Scanner) -> Iterator[StartGateway]:
    """Starts gateways with their state in the test's data folder; stops them afterwards."""
    started: list[RunningGateway] = []

    def start(next_hop: str | None, **overrides: Any) -> RunningGateway:
        settings = gateway_settings(data_dir, next_hop, **overrides)
        running = RunningGateway(settings, gateway_scanner).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def ham(make_message: Callable[..., bytes]) -> bytes:
    return crlf(make_message(text="Hello Sam,\n\nthe minutes: http://198.51.100.20/minutes\n"))


@pytest.fixture
def rejected(make_message: Callable[..., bytes]) -> bytes:
    return crlf(make_message(attachments=(("setup.exe", MZ, "application/octet-stream"),)))


@pytest.fixture
def quarantined(make_message: Callable[..., bytes]) -> bytes:
    return crlf(make_message(headers={"Date": None, "Subject": "Held back"}))


def spool_count(data_dir: Path) -> int:
    return Spool(data_dir / "spool").count()


# --------------------------------------------------------------------------- per verdict


def test_ham_is_relayed_with_postwise_headers_and_a_received_header(
    sink: Sink, start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        code, reply = transaction(client, ham)
    assert code == 250 and "relayed" in reply, reply
    [message] = sink.messages
    assert message.mail_from == SENDER
    assert message.rcpt_to == (RECIPIENT,)
    headers = parsed(message)
    assert headers["X-Postwise-Score"] == "2.50"
    assert headers["X-Postwise-Action"] == "no_action"
    assert headers["X-Postwise-Class"] == "ham"
    assert headers["X-Postwise-Symbols"] == "URL_IP_HOST=2.50"
    received = " ".join(str(headers["Received"]).split())
    assert received.startswith("from client.example ([127.0.0.1]) by postwise.test (Postwise)")
    assert " with ESMTP id " in received
    assert message.raw.endswith(ham), "the sender's message follows the added headers unchanged"
    assert spool_count(data_dir) == 0


def test_authentication_results_forged_in_our_name_are_removed(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    forged = (
        b"Authentication-Results: postwise.test; spf=pass smtp.mailfrom=bank.example;\r\n"
        b"\tdkim=pass header.d=bank.example\r\n"
        b"Authentication-Results: mx.upstream.example; spf=fail smtp.mailfrom=bank.example\r\n"
    )
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        code, _ = transaction(client, forged + ham)
    assert code == 250
    [message] = sink.messages
    assert b"postwise.test; spf=pass" not in message.raw
    assert b"dkim=pass header.d=bank.example" not in message.raw  # its continuation went too
    assert b"Authentication-Results: mx.upstream.example; spf=fail" in message.raw
    assert message.raw.endswith(ham)


def test_reject_is_a_550_with_the_reason_and_the_verdict_is_recorded(
    sink: Sink, start_gateway: StartGateway, rejected: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        code, reply = transaction(client, rejected)
    assert code == 550
    assert reply.startswith("5.7.1 message judged spam (score 20.0: ATTACH_EXECUTABLE(+20.0))")
    assert sink.messages == []
    assert spool_count(data_dir) == 0
    with Session(gateway.services.engine) as session:
        rows = list(session.scalars(select(VerdictRecord)))
    assert [(r.action, r.source) for r in rows] == [("reject", "gateway")]
    assert "ATTACH_EXECUTABLE" in {s["name"] for s in rows[0].symbols}


def test_quarantine_is_a_250_naming_the_entry_stored_content_addressed(
    sink: Sink, start_gateway: StartGateway, quarantined: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        code, reply = transaction(client, quarantined)
    assert code == 250, reply
    found = re.search(r"quarantined as ([0-9a-f]+)", reply)
    assert found, reply
    assert sink.messages == []
    assert spool_count(data_dir) == 0
    store = QuarantineStore(data_dir / "quarantine", gateway.services.engine)
    entry = store.get(found.group(1))
    assert (entry.action, entry.origin, entry.subject) == ("quarantine", "gateway", "Held back")
    assert entry.rcpt_to == (RECIPIENT,) and entry.mail_from == SENDER
    assert entry.client_ip == "127.0.0.1" and entry.helo == "client.example"
    path = data_dir / "quarantine" / entry.message_sha256[:2] / f"{entry.message_sha256}.eml"
    stored = path.read_bytes()
    assert hashlib.sha256(stored).hexdigest() == entry.message_sha256
    assert stored.endswith(quarantined)
    assert message_from_bytes(stored)["X-Postwise-Action"] == "quarantine"
    assert entry.verdict["action"] == "quarantine"


# --------------------------------------------------------------------------- the next hop


def test_next_hop_down_is_a_451_and_leaves_nothing_in_the_spool(
    start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(f"127.0.0.1:{free_port()}")
    with connect(gateway.port) as client:
        code, reply = transaction(client, ham)
    assert code == 451, reply
    assert reply.startswith("4.4.1 Next hop unavailable")
    assert spool_count(data_dir) == 0, "the client keeps the message after a 4xx"


def test_next_hop_stopped_between_messages_is_a_451(
    start_gateway: StartGateway, ham: bytes
) -> None:
    sink = Sink().start()
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        assert transaction(client, ham)[0] == 250
    sink.stop()
    with connect(gateway.port) as client:
        code, reply = transaction(client, ham)
    assert code == 451, reply


@pytest.mark.parametrize(
    ("recipient", "code", "text"),
    [("reject@example.net", 550, "No such user"), ("datafail@example.net", 554, "Content refused")],
)
def test_next_hop_5xx_is_passed_back(
    sink: Sink,
    start_gateway: StartGateway,
    ham: bytes,
    data_dir: Path,
    recipient: str,
    code: int,
    text: str,
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        got, reply = transaction(client, ham, rcpt_to=(recipient,))
    assert got == code, reply
    assert text in reply
    assert sink.messages == []
    assert spool_count(data_dir) == 0


def test_a_recipient_the_next_hop_tempfails_goes_back_to_the_spool_alone(
    sink: Sink, start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    rcpts = (RECIPIENT, "tempfail@example.net")
    with connect(gateway.port) as client:
        code, reply = transaction(client, ham, rcpt_to=rcpts)
    assert code == 250, reply
    [message] = sink.messages
    assert message.rcpt_to == (RECIPIENT,)
    [retry] = list(Spool(data_dir / "spool").pending())
    assert retry.envelope.rcpt_to == ("tempfail@example.net",)
    assert retry.envelope.mail_from == SENDER
    assert retry.raw.endswith(ham)
    # The sink tempfails that local part for good: a retry keeps it spooled, sends nothing.
    assert gateway.resume() == 0
    assert spool_count(data_dir) == 1
    assert len(sink.messages) == 1


def test_without_a_next_hop_mail_goes_to_the_local_maildir(
    start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(None)
    with connect(gateway.port) as client:
        code, reply = transaction(client, ham, rcpt_to=(RECIPIENT, "kim@example.net"))
    assert code == 250, reply
    [stored] = list((data_dir / "maildir" / "new").iterdir())
    raw = stored.read_bytes()
    assert raw.startswith(
        b"Return-Path: <ann.baker@example.org>\r\n"
        b"Delivered-To: sam.lee@example.net\r\nDelivered-To: kim@example.net\r\n"
    )
    assert message_from_bytes(raw)["X-Postwise-Action"] == "no_action"
    assert raw.endswith(ham)
    assert list((data_dir / "maildir" / "tmp").iterdir()) == []


# --------------------------------------------------------------------------- limits


def test_size_is_advertised_and_larger_messages_get_552(
    sink: Sink, start_gateway: StartGateway, make_big_message: Callable[[int], bytes]
) -> None:
    gateway = start_gateway(sink.address, max_message_bytes=16 * 1024)
    big = make_big_message(40 * 1024)
    with connect(gateway.port) as client:
        assert client.esmtp_features["size"] == str(16 * 1024)
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            client.sendmail(SENDER, [RECIPIENT], big)  # smtplib declares SIZE=...
        assert declared.value.smtp_code == 552
        client.rset()
        code, reply = transaction(client, big)  # no SIZE declared: refused after DATA
        assert code == 552, reply
    assert sink.messages == []


def test_recipients_past_the_limit_get_452(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address, smtp_max_recipients=2)
    with connect(gateway.port) as client:
        client.mail(SENDER)
        assert client.rcpt("one@example.net")[0] == 250
        assert client.rcpt("two@example.net")[0] == 250
        code, reply = client.rcpt("three@example.net")
        assert code == 452 and reply.startswith(b"4.5.3"), reply
        assert client.data(ham)[0] == 250
    [message] = sink.messages
    assert message.rcpt_to == ("one@example.net", "two@example.net")


def test_a_line_over_1000_octets_gets_500_and_the_session_goes_on(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address)
    long_line = b"Subject: long\r\n\r\n" + b"x" * 1500 + b"\r\n"
    with connect(gateway.port) as client:
        code, reply = transaction(client, long_line)
        assert code == 500 and b"too long" in reply.encode().lower(), reply
        assert transaction(client, ham)[0] == 250
    assert len(sink.messages) == 1
    assert b"x" * 1500 not in sink.messages[0].raw


def test_an_idle_client_is_told_421_and_disconnected(start_gateway: StartGateway) -> None:
    gateway = start_gateway(None, smtp_timeout=1)
    session = RawSession(gateway.port)
    try:
        assert session.reply()[0] == 220
        started = time.monotonic()
        rest = session.until_closed()
    finally:
        session.close()
    assert time.monotonic() - started < 5
    assert rest.startswith(b"421 4.4.2 "), rest


def test_a_slow_but_steady_client_is_not_idle(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    """The timeout is for silence, not for a whole DATA phase: a body trickled in over more
    than ``smtp_timeout`` seconds is still taken."""
    gateway = start_gateway(sink.address, smtp_timeout=1)
    session = RawSession(gateway.port)
    try:
        session.reply()
        assert session.command("EHLO client.example")[0] == 250
        assert session.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert session.command(f"RCPT TO:<{RECIPIENT}>")[0] == 250
        assert session.command("DATA")[0] == 354
        lines = ham.split(b"\r\n")
        chunk = len(lines) // 4 + 1
        for start in range(0, len(lines), chunk):
            session.send(b"\r\n".join(lines[start : start + chunk]) + b"\r\n")
            time.sleep(0.4)
        session.send(b".\r\n")
        code, reply = session.reply()
    finally:
        session.close()
    assert code == 250, reply
    assert len(sink.messages) == 1


# --------------------------------------------------------------------------- extensions


def test_pipelining_8bitmime_and_smtputf8_are_advertised(start_gateway: StartGateway) -> None:
    gateway = start_gateway(None)
    with connect(gateway.port) as client:
        for extension in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "size"):
            assert client.has_extn(extension), extension
        assert not client.has_extn("auth")


def test_a_pipelined_batch_in_one_write_works(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address)
    session = RawSession(gateway.port)
    try:
        session.reply()
        session.command("EHLO client.example")
        session.send(
            f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\n"
            "RCPT TO:<kim@example.net>\r\nDATA\r\n".encode()
        )
        assert [session.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        session.send(ham + b".\r\nQUIT\r\n")
        assert session.reply()[0] == 250
        assert session.reply()[0] == 221
    finally:
        session.close()
    [message] = sink.messages
    assert message.rcpt_to == (RECIPIENT, "kim@example.net")


def test_an_smtputf8_address_and_an_8bit_body_are_relayed_intact(
    sink: Sink, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(sink.address)
    body = (
        "From: José <josé@exämple.org>\r\nTo: sam.lee@example.net\r\n"
        "Subject: Grüße\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n"
        "Message-ID: <utf8.1@exämple.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        "\r\nViele Grüße aus Köln, 東京 too.\r\n"
    ).encode()
    with connect(gateway.port) as client:
        code, reply = transaction(
            client,
            body,
            mail_from="josé@exämple.org",
            rcpt_to=("zoë@exämple.net",),
            mail_options=("SMTPUTF8", "BODY=8BITMIME"),
        )
    assert code == 250, reply
    [message] = sink.messages
    assert (message.mail_from, message.rcpt_to) == ("josé@exämple.org", ("zoë@exämple.net",))
    assert message.raw.endswith(body)


def test_an_smtputf8_address_a_next_hop_cannot_take_is_refused_not_deferred(
    start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    """Retrying cannot help when the next hop lacks SMTPUTF8 (RFC 6531 section 3.2)."""
    ascii_only = Sink()
    ascii_only.controller = Controller(
        ascii_only.handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False
    )
    ascii_only.start()
    try:
        gateway = start_gateway(ascii_only.address)
        with connect(gateway.port) as client:
            code, reply = transaction(
                client, ham, mail_from="josé@exämple.org", mail_options=("SMTPUTF8",)
            )
        assert code == 553 and "5.6.7" in reply and "SMTPUTF8" in reply, reply
        assert ascii_only.messages == []
        assert spool_count(data_dir) == 0
    finally:
        ascii_only.stop()


# --------------------------------------------------------------------------- STARTTLS


def tls_client(cafile: Path) -> ssl.SSLContext:
    """Verifies the chain against ``cafile``; the name is not checked (we dial 127.0.0.1)."""
    context = ssl.create_default_context(cafile=str(cafile))
    context.check_hostname = False
    return context


def peer_common_name(client: smtplib.SMTP) -> str:
    assert isinstance(client.sock, ssl.SSLSocket)
    der = client.sock.getpeercert(binary_form=True)
    assert der
    subject = x509.load_der_x509_certificate(der).subject
    return str(subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_starttls_with_the_generated_self_signed_certificate(
    sink: Sink, start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    certificate = data_dir / "tls" / "gateway.crt"
    assert certificate.is_file() and (data_dir / "tls" / "gateway.key").is_file()
    with connect(gateway.port) as client:
        assert client.has_extn("starttls")
        assert client.starttls(context=tls_client(certificate))[0] == 220
        assert peer_common_name(client) == "postwise.test"
        client.ehlo()
        assert not client.has_extn("starttls")
        assert transaction(client, ham)[0] == 250
    [message] = sink.messages
    assert " with ESMTPS id " in postwise_received(message)


def test_starttls_with_the_configured_certificate(
    sink: Sink, start_gateway: StartGateway, ham: bytes, data_dir: Path, tmp_path: Path
) -> None:
    cert_file, key_file = tmp_path / "mx.crt", tmp_path / "mx.key"
    generate_self_signed(cert_file, key_file, "mx.example.test")
    gateway = start_gateway(sink.address, tls_cert_file=cert_file, tls_key_file=key_file)
    with connect(gateway.port) as client:
        assert client.starttls(context=tls_client(cert_file))[0] == 220
        assert peer_common_name(client) == "mx.example.test"
        client.ehlo()
        assert transaction(client, ham)[0] == 250
    assert not (data_dir / "tls").exists(), "no certificate generated when one is configured"
    assert len(sink.messages) == 1


def test_an_unreadable_configured_certificate_is_a_settings_error(tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "missing.crt", tmp_path / "missing.key"
    settings = Settings(data_dir=tmp_path / "d", tls_cert_file=cert_file, tls_key_file=key_file)
    with pytest.raises(SettingsError, match=r"cannot load the TLS certificate .*missing\.crt"):
        server_tls_context(settings)


# --------------------------------------------------------------------------- client address


def test_xclient_from_a_trusted_peer_sets_the_client_address(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        assert client.has_extn("xclient")
        code, reply = client.docmd("XCLIENT", "ADDR=203.0.113.7 HELO=mail.example.com")
        assert code == 220 and b"postwise.test" in reply, reply
        with pytest.raises(smtplib.SMTPSenderRefused):  # a new session: EHLO first
            client.sendmail(SENDER, [RECIPIENT], ham)
        client.ehlo()
        assert transaction(client, ham)[0] == 250
        assert transaction(client, ham)[0] == 250  # for the rest of the connection
    assert [received_ip(m) for m in sink.messages] == ["203.0.113.7", "203.0.113.7"]
    received = postwise_received(sink.messages[0])
    assert received.startswith("from mail.example.com ([203.0.113.7])")


def test_xforward_from_a_trusted_peer_sets_the_address_for_one_transaction(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address)
    with connect(gateway.port) as client:
        assert client.has_extn("xforward")
        assert client.docmd("XFORWARD", "ADDR=203.0.113.8 HELO=relay.example.com")[0] == 250
        assert transaction(client, ham)[0] == 250
        assert transaction(client, ham)[0] == 250
    assert [received_ip(m) for m in sink.messages] == ["203.0.113.8", "127.0.0.1"]


@pytest.mark.parametrize("command", ["XCLIENT", "XFORWARD"])
def test_forwarding_commands_from_an_untrusted_peer_get_550(
    sink: Sink, start_gateway: StartGateway, ham: bytes, command: str
) -> None:
    gateway = start_gateway(sink.address, smtp_trusted_forwarders=[])
    with connect(gateway.port) as client:
        assert not client.has_extn(command.lower())
        code, reply = client.docmd(command, "ADDR=203.0.113.7")
        assert code == 550, reply
        assert reply.decode() == f"5.7.0 {command} not permitted from this address"
        assert transaction(client, ham)[0] == 250
    assert [received_ip(m) for m in sink.messages] == ["127.0.0.1"]


def test_bad_forwarded_attributes_get_501(start_gateway: StartGateway) -> None:
    gateway = start_gateway(None)
    with connect(gateway.port) as client:
        assert client.docmd("XCLIENT", "ADDR=not-an-address")[0] == 501
        assert client.docmd("XFORWARD", "COLOUR=blue")[0] == 501


def smtp_over(sock: socket.socket) -> smtplib.SMTP:
    """smtplib on a socket we connected (and wrote a PROXY header to) ourselves."""
    client = smtplib.SMTP(local_hostname="client.example", timeout=15)
    client.sock = sock
    code, reply = client.getreply()
    assert code == 220, reply
    return client


def test_the_proxy_protocol_header_sets_the_client_address(
    sink: Sink, start_gateway: StartGateway, ham: bytes
) -> None:
    gateway = start_gateway(sink.address, smtp_proxy_protocol=True)
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"PROXY TCP4 198.51.100.9 127.0.0.1 5555 2525\r\n")
    with smtp_over(sock) as client:
        client.ehlo()
        assert transaction(client, ham)[0] == 250
    assert [received_ip(m) for m in sink.messages] == ["198.51.100.9"]


def test_with_the_proxy_protocol_a_connection_without_the_header_is_dropped(
    start_gateway: StartGateway,
) -> None:
    gateway = start_gateway(None, smtp_proxy_protocol=True)
    session = RawSession(gateway.port, preamble=b"EHLO client.example\r\n")
    try:
        assert session.until_closed() == b"", "no banner for a client that skipped PROXY"
    finally:
        session.close()


# --------------------------------------------------------------------------- smuggling


SMUGGLED_TAIL = b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n.\r\n"


@pytest.mark.parametrize(
    "data",
    [
        b"Subject: a\r\n\r\nline one\nline two\r\n.\r\n",
        b"Subject: a\r\n\r\nbody\n.\n" + SMUGGLED_TAIL,
        b"Subject: a\r\n\r\nbody\r\n.\n" + SMUGGLED_TAIL,
        b"Subject: a\r\n\r\nbody\n.\r\n" + SMUGGLED_TAIL,
        b"Subject: a\r\n\r\nbody\r.\r\n" + SMUGGLED_TAIL,
    ],
    ids=["bare-lf", "lf-dot-lf", "crlf-dot-lf", "lf-dot-crlf", "cr-dot-crlf"],
)
def test_bare_line_endings_and_smuggling_attempts_are_refused(
    sink: Sink, start_gateway: StartGateway, data_dir: Path, data: bytes
) -> None:
    gateway = start_gateway(sink.address)
    session = RawSession(gateway.port)
    try:
        session.reply()
        session.command("EHLO client.example")
        assert session.command(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert session.command(f"RCPT TO:<{RECIPIENT}>")[0] == 250
        assert session.command("DATA")[0] == 354
        session.send(data)
        code, reply = session.reply()
        assert (code, reply[:5]) == (554, "5.5.2"), reply
        # Nothing of the smuggled transaction was read as commands.
        assert session.command("QUIT")[0] == 221
    finally:
        session.close()
    assert not any(b"smuggled" in m.raw for m in sink.messages)
    assert sink.messages == []
    assert spool_count(data_dir) == 0


# --------------------------------------------------------------------------- durability


def test_what_a_crash_left_in_the_spool_is_relayed_on_start_and_on_resume(
    sink: Sink, start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    spool = Spool(data_dir / "spool")
    envelope = Envelope(SENDER, (RECIPIENT,), "192.0.2.1", "before.example")
    before = ham.replace(b"Subject: Minutes", b"Subject: left before the start")
    spool.put(before, envelope)
    gateway = start_gateway(sink.address)  # start() resumes
    assert [m.raw.endswith(before) for m in sink.messages] == [True]
    spool.put(ham, envelope)
    assert gateway.resume() == 1
    assert len(sink.messages) == 2
    assert sink.messages[1].raw.endswith(ham)
    assert parsed(sink.messages[1])["X-Postwise-Action"] == "no_action"
    assert spool.count() == 0


def test_resume_while_the_next_hop_is_down_keeps_the_message(
    start_gateway: StartGateway, ham: bytes, data_dir: Path
) -> None:
    later = Sink()  # its port chosen, nothing listening yet
    spool = Spool(data_dir / "spool")
    spool.put(ham, Envelope(SENDER, (RECIPIENT,), "192.0.2.1", "before.example"))
    gateway = start_gateway(later.address)
    assert gateway.resume() == 0
    assert spool.count() == 1
    later.start()
    try:
        assert gateway.resume() == 1
        wait_for(lambda: len(later.messages) == 1)
        assert spool.count() == 0
    finally:
        later.stop()


def test_resume_finishes_a_rejected_or_quarantined_message_too(
    sink: Sink, start_gateway: StartGateway, rejected: bytes, quarantined: bytes, data_dir: Path
) -> None:
    gateway = start_gateway(sink.address)
    spool = Spool(data_dir / "spool")
    envelope = Envelope(SENDER, (RECIPIENT,), "192.0.2.1", "before.example")
    spool.put(rejected, envelope)
    spool.put(quarantined, envelope)
    assert gateway.resume() == 2
    assert spool.count() == 0
    assert sink.messages == []
    [entry] = QuarantineStore(data_dir / "quarantine", gateway.services.engine).list()
    assert entry.client_ip == "192.0.2.1"


# --------------------------------------------------------------------------- Postfix in front


def private_postfix(services: dict[int, dict[str, str]], relayhost: str) -> Any:
    """A private Postfix (tests/postfix_harness.py) with the ``postwise`` transport of
    docs/gateway.md: Postfix's SMTP client with XFORWARD, for ``content_filter``."""
    harness = pytest.importorskip("postfix_harness")
    reason = harness.ensure_postfix()
    if reason:
        pytest.skip(reason)

    class WithFilterTransport(harness.PrivatePostfix):  # type: ignore[misc, name-defined]
        def _write_config(self) -> None:
            super()._write_config()
            with (self.config / "master.cf").open("a") as master:
                master.write(
                    "postwise  unix  -       -       n       -       10      smtp\n"
                    "  -o smtp_send_xforward_command=yes\n"
                    "  -o disable_mime_output_conversion=yes\n"
                    "  -o smtp_generic_maps=\n"
                    "  -o smtp_tls_security_level=none\n"
                )

    return WithFilterTransport(services, relayhost)


def test_postfix_after_queue_content_filter_as_documented(
    sink: Sink, start_gateway: StartGateway, ham: bytes, rejected: bytes
) -> None:
    """The after-queue set-up of docs/gateway.md (the before-queue proxy is in
    test_postfix.py): Postfix queues, hands each message to the gateway with XFORWARD, and
    takes relayed mail back on the re-injection port; a reject becomes Postfix's bounce."""
    reinject, public = free_port(), free_port()
    gateway = start_gateway(f"127.0.0.1:{reinject}")
    # The master.cf overrides of docs/gateway.md, one smtpd each.
    front = {
        "content_filter": f"postwise:[127.0.0.1]:{gateway.port}",
        "receive_override_options": "no_address_mappings",
    }
    back = {
        "content_filter": "",
        "receive_override_options": "no_unknown_recipient_checks,no_header_body_checks,no_milters",
        "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
        "smtpd_client_restrictions": "",
        "smtpd_helo_restrictions": "",
        "smtpd_sender_restrictions": "",
        "smtpd_relay_restrictions": "",
        "smtpd_recipient_restrictions": "permit_mynetworks,reject",
        "smtpd_data_restrictions": "",
        "mynetworks": "127.0.0.0/8",
    }
    postfix = private_postfix({public: front, reinject: back}, f"[127.0.0.1]:{sink.port}")
    postfix.start()
    try:
        with smtplib.SMTP(
            "127.0.0.1",
            public,
            local_hostname="client.example",
            source_address=("127.0.0.2", 0),
            timeout=30,
        ) as client:
            client.sendmail(SENDER, [RECIPIENT], ham)
            client.sendmail(SENDER, [RECIPIENT], rejected)  # Postfix takes it: after-queue
        wait_for(lambda: len(sink.messages) == 2, 30)
    finally:
        log = postfix.log()
        postfix.stop()
    relayed = next(m for m in sink.messages if m.mail_from == SENDER)
    assert relayed.rcpt_to == (RECIPIENT,)
    assert parsed(relayed)["X-Postwise-Action"] == "no_action"
    # XFORWARD: the gateway saw the client, not the Postfix in front of it.
    assert postwise_received(relayed).startswith("from client.example ([127.0.0.2])"), log
    bounce = next(m for m in sink.messages if m.mail_from == "<>")
    assert bounce.rcpt_to == (SENDER,)
    assert b"550 5.7.1 message judged spam" in bounce.raw
