"""The SMTP gateway adds Authentication-Results: a real gateway (scanner from the settings,
DNS from a loopback authoritative server) in front of a real sink, the client address set by
XCLIENT as a trusted Postfix in front would."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from gateway_harness import RunningGateway, Sink, gateway_settings

from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.inbound.scanner import Scanner

SENDER = "ann.baker@example.org"
RECIPIENT = "sam.lee@example.net"


@pytest.fixture
def zone() -> Iterator[ZoneServer]:
    records = [
        ZoneRecord("example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"),
        ZoneRecord("_dmarc.example.org", "TXT", "v=DMARC1; p=reject"),
    ]
    with ZoneServer(records) as server:
        yield server


@pytest.fixture
def gateway(
    postwise_env: Path, zone: ZoneServer, test_model_dir: Path
) -> Iterator[tuple[RunningGateway, Sink]]:
    """The gateway, its scanner built from the settings (DNS: the zone server), and its sink."""
    sink = Sink().start()
    settings = gateway_settings(
        postwise_env,
        sink.address,
        dns_servers=[zone.address],
        dns_timeout=2.0,
        model_path=test_model_dir,
    )
    running = RunningGateway(settings, Scanner.from_settings(settings)).start()
    yield running, sink
    running.stop()
    sink.stop()


def send_as(port: int, client_ip: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30) as client:
        client.ehlo()
        code, reply = client.docmd("XCLIENT", f"ADDR={client_ip} HELO=mail.example.org")
        assert code == 220, reply
        client.ehlo("mail.example.org")
        client.sendmail(SENDER, [RECIPIENT], raw)


def test_relayed_mail_carries_authentication_results(
    gateway: tuple[RunningGateway, Sink], make_message: Callable[..., bytes]
) -> None:
    running, sink = gateway
    raw = make_message().replace(b"\n", b"\r\n")
    send_as(running.port, "192.0.2.10", raw)
    send_as(running.port, "198.51.100.7", raw)
    authorised, spoofed = (message_from_bytes(m.raw) for m in sink.messages)

    [results] = authorised.get_all("Authentication-Results")
    results = " ".join(results.split())
    assert results.startswith("postwise.test; spf=pass smtp.mailfrom=example.org")
    assert "dmarc=pass (p=reject dis=none) header.from=example.org" in results
    assert "SPF_PASS" in authorised["X-Postwise-Symbols"]
    assert "DMARC_PASS" in authorised["X-Postwise-Symbols"]

    [results] = spoofed.get_all("Authentication-Results")
    results = " ".join(results.split())
    assert "spf=fail smtp.mailfrom=example.org" in results
    assert "dmarc=fail (p=reject dis=reject)" in results
    assert "DMARC_POLICY_REJECT" in spoofed["X-Postwise-Symbols"]
    # Ours comes above the Received header the gateway added (newest trace on top).
    names = [name.lower() for name in spoofed]
    assert names.index("authentication-results") < names.index("received")
