"""The loop from inbound back to outbound: bounces and complaints arriving at the gateway for a
feedback address are recorded (suppression, events) instead of delivered; other mail to that
address is delivered as usual."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gateway_harness import RunningGateway, Sink, gateway_settings
from sqlalchemy import select

from postwise.core.db import EventRecord
from postwise.inbound.policy import load_policy
from postwise.inbound.scanner import Scanner
from postwise.outbound.dsn import DsnRecipient, build_dsn
from postwise.services import OutboundServices

pytestmark = pytest.mark.usefixtures("postwise_env")

FEEDBACK = "bounces@sender.example"
ORIGINAL = (
    b"From: News <news@sender.example>\r\nTo: gone@remote.example\r\nSubject: news\r\n"
    b"Message-ID: <n1@sender.example>\r\n\r\nHello.\r\n"
)


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
def gateway(postwise_env: Path, sink: Sink) -> Iterator[tuple[RunningGateway, OutboundServices]]:
    settings = gateway_settings(postwise_env, sink.address, feedback_addresses=[FEEDBACK])
    running = RunningGateway(settings, Scanner(load_policy(None), None))
    outbound = OutboundServices.from_settings(settings, running.services.engine)
    running.feedback = outbound.feedback_sink()
    running.start()
    yield running, outbound
    running.stop()


def dsn() -> bytes:
    now = datetime.now(UTC)
    failure = DsnRecipient(
        recipient="gone@remote.example",
        status="5.1.1",
        diagnostic="550 5.1.1 <gone@remote.example>: Recipient address rejected: User unknown",
        remote_mta="mx.remote.example",
        last_attempt=now,
    )
    return build_dsn(
        ORIGINAL,
        envelope_from="news@sender.example",
        failures=[failure],
        reporting_mta="mx.relay.example",
        arrival_date=now,
        now=now,
    )


def test_a_bounce_to_the_feedback_address_suppresses_and_is_not_delivered(
    gateway: tuple[RunningGateway, OutboundServices], sink: Sink
) -> None:
    running, outbound = gateway
    with smtplib.SMTP("127.0.0.1", running.port) as client:
        client.ehlo("mx.relay.example")
        client.mail("<>")
        client.rcpt(FEEDBACK)
        code, reply = client.data(dsn())
    assert code == 250 and b"bounce recorded; suppressed gone@remote.example" in reply
    assert sink.messages == []
    assert "gone@remote.example" in outbound.suppressions.find(["gone@remote.example"])
    with outbound.engine.connect() as connection:
        types = list(connection.execute(select(EventRecord.type)).scalars())
    assert "bounce" in types


def test_ordinary_mail_to_the_feedback_address_is_delivered(
    gateway: tuple[RunningGateway, OutboundServices], sink: Sink
) -> None:
    running, outbound = gateway
    plain = (
        b"From: Someone <someone@remote.example>\r\nTo: bounces@sender.example\r\n"
        b"Subject: a question\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n"
        b"Message-ID: <q1@remote.example>\r\n\r\nIs this the right address?\r\n"
    )
    with smtplib.SMTP("127.0.0.1", running.port) as client:
        client.ehlo("mx.remote.example")
        client.mail("someone@remote.example")
        client.rcpt(FEEDBACK)
        code, _ = client.data(plain)
    assert code == 250
    assert [m.rcpt_to for m in sink.messages] == [(FEEDBACK,)]
    assert outbound.suppressions.entries() == []
