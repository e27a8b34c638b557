"""ProviderSink over real loopback sockets: each magic recipient's reply, the records it keeps
(duplicates, connection statistics), runtime modes and STARTTLS with a self-signed certificate.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import smtplib
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from postwise.testing import (
    PrivatePostfix,
    ProviderSink,
    Submission,
    ensure_postfix,
    free_port,
    magic_of,
)

SENDER = "news@sender.example"


def message(message_id: str, rcpt: str = "accept@example.com", body: str = "Hello.\n") -> bytes:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = rcpt
    mail["Subject"] = "A test"
    mail["Message-ID"] = message_id
    mail.set_content(body)
    return mail.as_bytes().replace(b"\n", b"\r\n")


@pytest.fixture
def sink() -> Iterator[ProviderSink]:
    with ProviderSink(name="provider") as server:
        yield server


def connect(sink: ProviderSink) -> smtplib.SMTP:
    client = smtplib.SMTP(sink.host, sink.port, timeout=10)
    client.ehlo("client.test")
    return client


def test_magic_of_reads_the_prefix_and_its_number() -> None:
    assert magic_of("throttle+3@x.test") == ("throttle", 3)
    assert magic_of("Throttle3@x.test") == ("throttle", 3)
    assert magic_of("flaky@x.test") == ("flaky", None)
    assert magic_of("accept+42@x.test") == ("accept", 42)
    assert magic_of("sam.lee@x.test") == ("accept", None)
    assert magic_of("deferred@x.test") == ("accept", None)


def test_accepts_and_records_the_message(sink: ProviderSink) -> None:
    raw = message("<one@sender.example>", body="Dots\n.leading dot\n..two\n.\nend\n")
    assert sink.host == "127.0.0.2" and sink.port > 0
    with connect(sink) as client:
        assert client.sendmail(SENDER, ["accept+1@example.com"], raw) == {}
    assert sink.wait_for(1, 5)
    (got,) = sink.messages
    assert got.mail_from == SENDER
    assert got.rcpt_to == ("accept+1@example.com",)
    assert got.data == raw  # dot-stuffing undone, line endings intact
    assert got.size == len(raw) and got.sha256 == hashlib.sha256(raw).hexdigest()
    assert got.message_id == "<one@sender.example>"
    assert got.peer[0] == "127.0.0.1"
    assert abs(got.received_at - time.time()) < 10
    assert sink.replies() == {"250": 1}


def test_throttle_replies_421_and_closes_the_connection(sink: ProviderSink) -> None:
    with connect(sink) as client:
        client.mail(SENDER)
        code, reply = client.rcpt("throttle+3@example.com")
        assert (code, reply) == (421, b"4.7.0 Try again later, closing connection")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    assert sink.count() == 0


@pytest.mark.parametrize(
    ("rcpt", "code", "text"),
    [
        ("defer@example.com", 450, b"4.2.1 Mailbox busy, try again later"),
        (
            "Unknown7@example.com",
            550,
            b"5.1.1 The email account that you tried to reach does not exist",
        ),
    ],
)
def test_rcpt_refusals(sink: ProviderSink, rcpt: str, code: int, text: bytes) -> None:
    with connect(sink) as client:
        client.mail(SENDER)
        assert client.rcpt(rcpt) == (code, text)
        assert client.noop()[0] == 250  # the connection stays usable
        assert client.rcpt("accept@example.com")[0] == 250


def test_slow_waits_before_accepting(sink: ProviderSink) -> None:
    sink.slow_seconds = 0.6
    with connect(sink) as client:
        started = time.monotonic()
        client.sendmail(SENDER, ["slow@example.com"], message("<slow@sender.example>"))
        assert time.monotonic() - started >= 0.6
    assert sink.count() == 1


def test_drop_closes_at_end_of_data_without_a_reply(sink: ProviderSink) -> None:
    with connect(sink) as client, pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail(SENDER, ["drop@example.com"], message("<drop@sender.example>"))
    assert sink.count() == 0


def test_datafail_refuses_at_end_of_data(sink: ProviderSink) -> None:
    with connect(sink) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(SENDER, ["datafail@example.com"], message("<df@sender.example>"))
        assert refused.value.smtp_code == 554
        assert refused.value.smtp_error.startswith(b"5.6.0")
    assert sink.count() == 0


def test_flaky_fails_n_times_then_accepts(sink: ProviderSink) -> None:
    with connect(sink) as client:
        client.mail(SENDER)
        assert [client.rcpt("flaky+2@example.com")[0] for _ in range(3)] == [451, 451, 250]
        assert [client.rcpt("flaky@example.com")[0] for _ in range(2)] == [451, 250]
        assert [client.rcpt("Flaky3@example.com")[0] for _ in range(4)] == [451, 451, 451, 250]
        client.rset()
        # Attempts are counted per address across transactions and connections.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail(SENDER, ["flaky+1@b.example"], message("<f1@sender.example>"))
    with connect(sink) as client:
        assert client.sendmail(SENDER, ["flaky+1@b.example"], message("<f1@sender.example>")) == {}
    assert sink.count() == 1


def test_default_reply_rate_limits_every_recipient() -> None:
    limited = "421 4.7.28 Our system has detected an unusual rate of mail, rate limited"
    with ProviderSink("127.0.0.3", default_reply=limited) as sink, connect(sink) as client:
        client.mail(SENDER)
        code, reply = client.rcpt("accept@example.com")
        assert code == 421 and b"4.7.28" in reply
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_set_mode_changes_behaviour_at_runtime(sink: ProviderSink) -> None:
    with connect(sink) as client:
        client.sendmail(SENDER, ["accept@example.com"], message("<m1@sender.example>"))
        sink.set_mode(rcpt_reply="550 5.7.1 Sender blocked by policy")
        client.mail(SENDER)
        assert client.rcpt("accept@example.com") == (550, b"5.7.1 Sender blocked by policy")
        client.rset()
        sink.set_mode(data_reply="452 4.3.1 Insufficient system storage")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(SENDER, ["accept@example.com"], message("<m2@sender.example>"))
        assert refused.value.smtp_code == 452
        sink.set_mode()
        client.sendmail(SENDER, ["accept@example.com"], message("<m3@sender.example>"))
    assert [m.message_id for m in sink.messages] == ["<m1@sender.example>", "<m3@sender.example>"]


def test_duplicates_are_counted_per_message_id(sink: ProviderSink) -> None:
    with connect(sink) as client:
        for message_id in ("<a@s>", "<b@s>", "<a@s>", "<a@s>"):
            client.sendmail(SENDER, ["accept@example.com"], message(message_id))
    assert sink.count() == 4
    assert sink.duplicates() == {"<a@s>": 3}
    assert sink.message_ids() == {"<a@s>": 3, "<b@s>": 1}


def test_connection_statistics(sink: ProviderSink) -> None:
    clients = [connect(sink) for _ in range(3)]
    for index, client in enumerate(clients):
        for n in range(index + 1):
            client.sendmail(SENDER, ["accept@example.com"], message(f"<c{index}.{n}@s>"))
    assert sink.open_connections == 3
    for client in clients:
        client.quit()
    deadline = time.monotonic() + 5
    while sink.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.connections == 3
    assert sink.max_concurrent == 3
    assert sorted(sink.messages_per_connection()) == [1, 2, 3]
    assert sink.wait_for(6, 1) and not sink.wait_for(7, 0.1)


def test_banner_delay(sink: ProviderSink) -> None:
    sink.banner_delay = 0.4
    started = time.monotonic()
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        assert time.monotonic() - started >= 0.4
        assert client.noop()[0] == 250


def _self_signed(folder: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def test_ehlo_advertises_extensions_and_starttls_works(tmp_path: Path) -> None:
    with ProviderSink("127.0.0.4", tls_context=_self_signed(tmp_path), name="tls") as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            client.ehlo("client.test")
            for extension in ("starttls", "pipelining", "8bitmime", "smtputf8", "size"):
                assert client.has_extn(extension), extension
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            assert client.starttls(context=insecure)[0] == 220
            client.ehlo("client.test")
            assert not client.has_extn("starttls")
            client.sendmail(SENDER, ["accept@example.com"], message("<tls@s>"))
        assert sink.wait_for(1, 5)
        assert sink.connections == 1


def test_without_tls_starttls_is_not_advertised(sink: ProviderSink) -> None:
    with connect(sink) as client:
        assert not client.has_extn("starttls")
        assert client.has_extn("pipelining")


def test_free_port_on_another_loopback_address() -> None:
    port = free_port("127.0.0.5")
    with ProviderSink("127.0.0.5", port) as sink:
        assert sink.port == port
        assert sink.address == f"127.0.0.5:{port}"


async def test_asyncio_clients_on_several_sinks_without_keeping_data() -> None:
    sinks = [ProviderSink(f"127.0.0.{n}", keep_data=False, name=f"p{n}").start() for n in (2, 3)]
    try:

        async def client(sink: ProviderSink, first: int) -> None:
            smtp = aiosmtplib.SMTP(hostname=sink.host, port=sink.port, timeout=10)
            async with smtp:
                for n in range(first, first + 25):
                    rcpt = f"accept+{n}@example.com"
                    await smtp.sendmail(SENDER, [rcpt], message(f"<async{n}@s>", rcpt))

        await asyncio.gather(*(client(sinks[i % 2], i * 25) for i in range(4)))
        for sink in sinks:
            assert await asyncio.to_thread(sink.wait_for, 50, 5)
            assert all(m.data == b"" and m.size > 100 for m in sink.messages)
            assert sink.duplicates() == {}
            assert sink.max_concurrent == 2
    finally:
        for sink in sinks:
            sink.stop()


def test_private_postfix_holds_releases_and_retries_to_provider_sinks() -> None:
    reason = ensure_postfix()
    if reason is not None:
        pytest.skip(reason)
    with ProviderSink("127.0.0.2", name="a") as a, ProviderSink("127.0.0.3", name="b") as b:
        port = free_port()
        postfix = PrivatePostfix(
            {port: PrivatePostfix.hold_on_arrival()},
            transport={
                "a.test": f"smtp:[{a.host}]:{a.port}",
                "b.test": f"smtp:[{b.host}]:{b.port}",
            },
            main={"smtp_connection_cache_on_demand": "yes"},
        )
        with postfix:
            batch = [
                Submission(SENDER, (f"accept+{i}@{'ab'[i % 2]}.test",), message(f"<p{i}@s>"))
                for i in range(20)
            ]
            batch.append(Submission(SENDER, ("flaky+1@a.test",), message("<flaky@s>")))
            try:
                assert postfix.submit(port, batch, connections=3, per_connection=4) == 21
                deadline = time.monotonic() + 30
                while postfix.queue_counts()["hold"] < 21 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert postfix.queue_counts()["hold"] == 21
                time.sleep(0.5)
                assert a.count() + b.count() == 0  # held: nothing leaves
                postfix.release_all()
                # The flaky recipient is refused once, deferred and retried by Postfix.
                assert a.wait_for(11, 60) and b.wait_for(10, 60)
                postfix.wait_until_empty(30)
            except BaseException:
                print(postfix.log()[-3000:])
                raise
        assert a.duplicates() == {} and b.duplicates() == {}
        assert a.replies()["451"] == 1
        assert {m.message_id for m in b.messages} == {f"<p{i}@s>" for i in range(1, 20, 2)}
