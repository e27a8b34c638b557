"""The submission port over a real socket: a SubmissionServer in the test's event loop with a
real Submitter over a temporary queue, spoken to with aiosmtplib (AUTH, STARTTLS, RCPT checks,
message checks, ENVID, completion and DKIM signing checked against a real DNS zone)."""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from postwise.auth.dkim import generate_key, key_name, verify_dkim
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.core.db import open_database
from postwise.core.settings import DkimKey, Settings, SubmissionUser
from postwise.inbound.tls import server_tls_context
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.submission import Submitter
from postwise.outbound.submission_smtp import SubmissionServer, hash_password, verify_password
from postwise.outbound.suppression import SuppressionList

USER, PASSWORD = "alice", "correct horse battery staple"
# One hash for the module: scrypt costs ~50 ms each.
HASH = hash_password(PASSWORD)
MESSAGE = b"From: Alice <alice@corp.test>\r\nTo: bob@mail.test\r\nSubject: hi\r\n\r\nHello Bob.\r\n"


class Port:
    """A running submission port and what it queues into."""

    def __init__(self, settings: Settings, queue: OutboundQueue, suppressions: SuppressionList):
        self.settings = settings
        self.queue = queue
        self.suppressions = suppressions
        self.port = 0
        self.queued = 0

    def spooled(self) -> list[Path]:
        return sorted((self.settings.outbound_spool_dir / "messages").glob("*.eml"))

    def depth(self) -> int:
        return sum(self.queue.depth().values())

    async def client(self, login: bool = True) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=10, start_tls=False)
        await smtp.connect()
        await smtp.ehlo()
        if login:
            await smtp.auth_plain(USER, PASSWORD)
        return smtp


@asynccontextmanager
async def submission_port(tmp: Path, **overrides: Any) -> AsyncIterator[Port]:
    values: dict[str, Any] = {
        "data_dir": tmp / "data",
        "environment": "test",
        "smtp_hostname": "out.postwise.test",
        "submission_users": [SubmissionUser(username=USER, password_hash=HASH)],
        "submission_max_recipients": 5,
        "smtp_timeout": 10,
    }
    values.update(overrides)
    settings = Settings(**values)
    engine = open_database(settings.resolved_database_url)
    queue = OutboundQueue(engine, settings.outbound_spool_dir)
    suppressions = SuppressionList(engine)
    port = Port(settings, queue, suppressions)

    def on_queued() -> None:
        port.queued += 1

    server = SubmissionServer(
        settings,
        Submitter(settings, queue, suppressions),
        server_tls_context(settings),
        on_queued=on_queued,
    )
    port.port = await server.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await server.close()
        engine.dispose()


async def raw_dialog(port: int, lines: list[bytes]) -> list[str]:
    """Speak SMTP byte for byte (aiosmtplib would repair a bare CR); one reply per line sent,
    after the banner. A line ending in ``\\r\\n.\\r\\n`` is a message body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies: list[str] = []

    async def reply() -> str:
        text = ""
        while True:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode()
            text += line
            if len(line) < 4 or line[3] != "-":
                return text.strip()

    try:
        await reply()
        for line in lines:
            writer.write(line if line.endswith(b"\r\n") else line + b"\r\n")
            await writer.drain()
            replies.append(await reply())
    finally:
        writer.close()
    return replies


def _plain() -> bytes:
    return b"AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())


async def _close(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except aiosmtplib.SMTPException:
        smtp.close()


# --- passwords ------------------------------------------------------------------------------


def test_password_hashes_verify_only_the_right_password() -> None:
    assert verify_password(PASSWORD, HASH)
    assert not verify_password(PASSWORD + "x", HASH)
    assert not verify_password("", HASH)
    again = hash_password(PASSWORD)
    assert again != HASH and verify_password(PASSWORD, again)  # salted
    salt = b"0123456789abcdef"
    assert hash_password("pw", salt) == hash_password("pw", salt)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain-text-password",
        "scrypt$16384$8$1$onlyfive",
        "bcrypt$16384$8$1$c2FsdA==$ZGlnZXN0",
        "scrypt$x$8$1$c2FsdA==$ZGlnZXN0",
        "scrypt$16384$8$1$not base64!$ZGlnZXN0",
        "scrypt$16384$8$1$c2FsdA==$not base64!",
        "scrypt$3$8$1$c2FsdA==$ZGlnZXN0",  # n not a power of two
        "scrypt$16384$8$1$c2FsdA==$",  # empty digest
        "scrypt$16384$8$1$c2FsdA==$ZGlnZXN0$extra",
        "scrypt$-1$8$1$c2FsdA==$ZGlnZXN0",
        "scrypt$16384$0$1$c2FsdA==$ZGlnZXN0",
    ],
)
def test_malformed_hashes_match_nothing(stored: str) -> None:
    assert verify_password("pw", stored) is False
    assert verify_password("", stored) is False


# --- AUTH -----------------------------------------------------------------------------------


async def test_auth_plain_and_login_succeed_and_bad_credentials_get_535(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client(login=False)
        assert smtp.supports_extension("auth")  # loopback: offered without TLS
        assert (await smtp.auth_plain(USER, PASSWORD)).code == 235
        await _close(smtp)

        smtp = await port.client(login=False)
        assert (await smtp.auth_login(USER, PASSWORD)).code == 235
        await _close(smtp)

        for username, password in [
            (USER, "wrong"),
            ("mallory", PASSWORD),
            (USER.upper(), PASSWORD),
        ]:
            for method in ("auth_plain", "auth_login"):
                smtp = await port.client(login=False)
                with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                    await getattr(smtp, method)(username, password)
                assert refused.value.code == 535, (username, method)
                # Still unauthenticated: MAIL is refused.
                with pytest.raises(aiosmtplib.SMTPResponseException) as mail:
                    await smtp.mail("alice@corp.test")
                assert mail.value.code == 530
                await _close(smtp)


async def test_mail_before_auth_is_refused_with_530(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client(login=False)
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await smtp.mail("alice@corp.test")
        assert refused.value.code == 530
        await _close(smtp)
        assert port.depth() == 0


async def test_off_loopback_auth_needs_starttls_first(tmp_path: Path) -> None:
    # The rule follows the configured bind address (the port is open to the network when
    # submission_host is not loopback); the test still connects over loopback.
    async with submission_port(tmp_path, submission_host="0.0.0.0") as port:
        smtp = await port.client(login=False)
        assert smtp.supports_extension("starttls")
        assert not smtp.supports_extension("auth")
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        response = await smtp.execute_command(b"AUTH", b"PLAIN", plain.encode())
        assert response.code == 538  # encryption required
        with pytest.raises(aiosmtplib.SMTPResponseException) as mail:
            await smtp.mail("alice@corp.test")
        assert mail.value.code == 530

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await smtp.starttls(tls_context=context)
        await smtp.ehlo()
        assert smtp.supports_extension("auth")
        assert (await smtp.auth_plain(USER, PASSWORD)).code == 235
        await smtp.sendmail("alice@corp.test", ["bob@mail.test"], MESSAGE)
        await _close(smtp)
        assert port.queued == 1 and port.depth() == 1


# --- recipients -----------------------------------------------------------------------------


async def test_recipient_checks_answer_at_rcpt(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        port.suppressions.add("gone@mail.test", "550 5.1.1 user unknown", "bounce")
        smtp = await port.client()
        await smtp.mail("alice@corp.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as suppressed:
            await smtp.rcpt("Gone@Mail.Test")
        assert suppressed.value.code == 550 and "5.7.1" in suppressed.value.message
        assert "suppressed" in suppressed.value.message
        for bad in ("no-at-sign", "a@nodot", "a@-bad-.test", "a..b@mail.test"):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as invalid:
                await smtp.rcpt(bad)
            assert invalid.value.code == 501, bad
        for i in range(5):
            await smtp.rcpt(f"user{i}@mail.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as too_many:
            await smtp.rcpt("user5@mail.test")
        assert too_many.value.code == 452 and "at most 5" in too_many.value.message
        response = await smtp.data(MESSAGE)
        assert response.code == 250
        await _close(smtp)
        queued = port.queue.list_messages()
        assert len(queued) == 1 and queued[0]["recipients"]["queued"] == 5


async def test_invalid_sender_is_refused_at_mail(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail("not an address")
        assert refused.value.code == 501
        await _close(smtp)


# --- the message ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"To: bob@mail.test\r\nSubject: no from\r\n\r\nbody\r\n", "0 From fields"),
        (
            b"From: alice@corp.test\r\nSubject: long\r\n\r\n" + b"x" * 2000 + b"\r\n",
            "longer than 998 octets",
        ),
        (b"From: a@corp.test\r\nFrom: b@corp.test\r\n\r\nbody\r\n", "2 From fields"),
        (b"From: nobody\r\n\r\nbody\r\n", "has no address"),
    ],
)
async def test_malformed_messages_get_554_with_the_reason_and_nothing_is_queued(
    tmp_path: Path, raw: bytes, reason: str
) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client()
        await smtp.mail("alice@corp.test")
        await smtp.rcpt("bob@mail.test")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.data(raw)
        assert refused.value.code == 554 and reason in refused.value.message
        # The session goes on: a good message on the same connection is accepted.
        await smtp.sendmail("alice@corp.test", ["bob@mail.test"], MESSAGE)
        await _close(smtp)
        assert port.depth() == 1 and len(port.spooled()) == 1 and port.queued == 1


async def test_a_bare_cr_on_the_wire_gets_554_and_nothing_is_queued(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        envelope = [b"EHLO client.test", _plain(), b"MAIL FROM:<alice@corp.test>"]
        envelope += [b"RCPT TO:<bob@mail.test>", b"DATA"]
        body = b"From: alice@corp.test\r\nSubject: cr\r\n\r\nbare\rCR\r\n.\r\n"
        replies = await raw_dialog(port.port, [*envelope, body])
        assert replies[-2].startswith("354")
        assert replies[-1].startswith("554 5.6.0") and "bare CR" in replies[-1]
        assert port.depth() == 0 and port.spooled() == [] and port.queued == 0


async def test_dsn_parameters_are_accepted_and_malformed_ones_refused(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client()
        assert smtp.supports_extension("dsn")
        await smtp.mail("alice@corp.test", options=["RET=HDRS", "ENVID=Mixed.Case+2Bid"])
        await smtp.rcpt(
            "bob@mail.test", options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;bob@x.test"]
        )
        response = await smtp.data(MESSAGE)
        assert port.queue.message(response.message.rsplit(" ", 1)[-1]).envelope_id == (
            "Mixed.Case+2Bid"
        )
        for option in ("ENVID=has+zz", "ENVID=" + "x" * 101, "RET=BODY"):
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                await smtp.mail("alice@corp.test", options=[option])
            assert refused.value.code == 501, option
        await smtp.mail("alice@corp.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as notify:
            await smtp.rcpt("bob@mail.test", options=["NOTIFY=SOMETIMES"])
        assert notify.value.code == 501
        await _close(smtp)
        # Before AUTH, parameters or not, the answer is 530.
        replies = await raw_dialog(port.port, [b"EHLO c.test", b"MAIL FROM:<a@corp.test> RET=X"])
        assert replies[-1].startswith("530")


async def test_envid_is_kept_and_the_message_is_completed(tmp_path: Path) -> None:
    async with submission_port(tmp_path) as port:
        smtp = await port.client()
        await smtp.mail("alice@corp.test", options=["ENVID=order-42+2B1"])
        await smtp.rcpt("bob@mail.test")
        response = await smtp.data(MESSAGE)
        await _close(smtp)
        queue_id = response.message.rsplit(" ", 1)[-1]
        shown = port.queue.show(queue_id)
        assert shown["source"] == "smtp" and shown["submitted_by"].startswith(f"{USER} (127.0.0.1")
        assert port.queue.message(queue_id).envelope_id == "order-42+2B1"
        raw = port.queue.load(queue_id)
        head = raw[: raw.index(b"\r\n\r\n")]
        assert head.startswith(b"Received: from alice (127.0.0.1")
        assert b"by out.postwise.test (Postwise) with ESMTPSA" in head
        assert b"\r\nMessage-ID: <" in head and b"@corp.test>" in head
        assert b"\r\nDate: " in head
        assert shown["header_message_id"].endswith("@corp.test>")
        assert b"DKIM-Signature" not in raw  # no key configured


async def test_the_queued_message_is_dkim_signed_and_verifies(tmp_path: Path) -> None:
    pem, txt = generate_key("rsa", 2048)
    key_file = tmp_path / "corp.pem"
    key_file.write_bytes(pem)
    with ZoneServer([ZoneRecord(key_name("corp.test", "s1"), "TXT", txt)]) as zone:
        keys = [DkimKey(domain="corp.test", selector="s1", key_file=key_file)]
        async with submission_port(tmp_path, dkim_keys=keys) as port:
            smtp = await port.client()
            signed = await smtp.sendmail("alice@corp.test", ["bob@mail.test"], MESSAGE)
            other = MESSAGE.replace(b"alice@corp.test", b"alice@elsewhere.test")
            unsigned = await smtp.sendmail("alice@elsewhere.test", ["bob@mail.test"], other)
            await _close(smtp)
        raw = port.queue.load(signed[1].rsplit(" ", 1)[-1])
        assert raw.startswith(b"DKIM-Signature:")
        resolver = Resolver([parse_server(zone.address)], timeout=2.0)
        results = verify_dkim(raw, resolver)
        assert [(r.result, r.domain, r.selector) for r in results] == [("pass", "corp.test", "s1")]
        # The Received, Message-ID and Date fields were added before signing.
        assert b"Received: from alice" in raw and b"Message-ID:" in raw
        tampered = raw.replace(b"Hello Bob.", b"Hello Eve.")
        assert verify_dkim(tampered, resolver)[0].result == "fail"
        assert b"DKIM-Signature" not in port.queue.load(unsigned[1].rsplit(" ", 1)[-1])
