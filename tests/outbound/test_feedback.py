"""``ingest_feedback``: complaints and bounces received back -> events, suppressions and the
reputation monitor, over a real queue in a temporary data folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from postwise.core.db import EventRecord
from postwise.core.settings import Settings
from postwise.outbound.dsn import DsnRecipient, build_dsn
from postwise.outbound.feedback import FeedbackError, ingest_feedback
from postwise.services import OutboundServices

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
RAW = (
    b"From: Ann <ann@example.org>\r\nTo: bob@example.net, cat@example.com\r\nSubject: News\r\n"
    b"Message-ID: <news.7@example.org>\r\n\r\nHello.\r\n"
)


@pytest.fixture
def services(postwise_env: Path) -> Iterator[OutboundServices]:
    opened = OutboundServices.from_settings(Settings(data_dir=postwise_env, environment="test"))
    yield opened
    opened.engine.dispose()


def _arf(original: bytes, recipient: str | None, feedback_type: str = "abuse") -> bytes:
    rcpt = f"Original-Rcpt-To: {recipient}\r\n" if recipient else ""
    return (
        b"From: fbl@isp.example\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: message/feedback-report\r\n\r\n"
        + f"Feedback-Type: {feedback_type}\r\nVersion: 1\r\n{rcpt}".encode()
        + b"\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n"
        + original
        + b"\r\n--x--\r\n"
    )


def _events(services: OutboundServices, kind: str) -> list[dict[str, object]]:
    with services.engine.connect() as connection:
        rows = connection.execute(select(EventRecord.payload).where(EventRecord.type == kind))
        return [dict(row.payload) for row in rows]


def _queue(services: OutboundServices) -> str:
    accepted = services.submit(
        "ann@example.org",
        ["bob@example.net", "cat@example.com"],
        RAW,
        source="api",
        submitted_by="test",
        pool="default",
    )
    return accepted.enqueued.message_id


def test_complaint_charges_the_original(services: OutboundServices) -> None:
    message_id = _queue(services)
    result = ingest_feedback(_arf(RAW, "cat@example.com"), services, NOW)
    assert result.kind == "complaint"
    assert result.suppressed == ("cat@example.com",)
    assert result.original is not None and result.original.message_id == message_id
    assert result.original.provider_key == "domain:example.com"
    assert result.reputation_observed
    events = _events(services, "complaint")
    assert len(events) == 1 and events[0]["message_id"] == message_id
    assert services.suppressions.find(["cat@example.com"])["cat@example.com"].source == "complaint"
    again = ingest_feedback(_arf(RAW, "cat@example.com"), services, NOW)
    assert again.duplicate and not again.reputation_observed
    assert len(_events(services, "complaint")) == 1


def test_redacted_complaint_about_a_single_recipient_message(services: OutboundServices) -> None:
    raw = RAW.replace(b"<news.7@", b"<solo.1@")
    services.submit("ann@example.org", ["dan@example.net"], raw, source="api", submitted_by="t")
    redacted = raw.replace(b"To: bob@example.net, cat@example.com\r\n", b"")
    result = ingest_feedback(_arf(redacted, None), services, NOW)
    assert result.recipients == ("dan@example.net",)
    assert result.suppressed == ("dan@example.net",)


def test_not_spam_report_suppresses_nothing(services: OutboundServices) -> None:
    _queue(services)
    result = ingest_feedback(_arf(RAW, "bob@example.net", "not-spam"), services, NOW)
    assert result.kind == "feedback"
    assert result.suppressed == ()
    assert not result.reputation_observed
    assert services.suppressions.entries() == []


def test_complaint_without_original_is_still_recorded(services: OutboundServices) -> None:
    result = ingest_feedback(_arf(b"Subject: old\r\n\r\nx\r\n", "eve@example.net"), services, NOW)
    assert result.original is None
    assert result.suppressed == ("eve@example.net",)
    assert len(_events(services, "complaint")) == 1


def test_hard_and_soft_bounces(services: OutboundServices) -> None:
    message_id = _queue(services)
    dsn = build_dsn(
        RAW,
        envelope_from="ann@example.org",
        failures=[
            DsnRecipient("bob@example.net", "5.1.1", "550 5.1.1 user unknown", "mx.net", NOW),
            DsnRecipient("cat@example.com", "4.2.2", "452 4.2.2 mailbox full", "mx.com", NOW),
        ],
        reporting_mta="mx.example.net",
        arrival_date=NOW,
        now=NOW,
    )
    result = ingest_feedback(dsn, services, NOW)
    assert result.kind == "bounce"
    assert result.original is not None and result.original.message_id == message_id
    assert set(result.recipients) == {"bob@example.net", "cat@example.com"}
    assert result.suppressed == ("bob@example.net",)
    assert {e["recipient"] for e in _events(services, "bounce")} == set(result.recipients)
    assert "hard bounce" not in result.describe()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"From: a@example.org\r\nSubject: hello\r\n\r\nHi.\r\n", "not a bounce or a complaint"),
        (b"", "not a bounce or a complaint"),
        (
            b"From: bob@example.net\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n"
            b"\r\nI am away.\r\n",
            "automatic reply",
        ),
    ],
)
def test_neither_records_nothing(services: OutboundServices, raw: bytes, says: str) -> None:
    with pytest.raises(FeedbackError, match=says):
        ingest_feedback(raw, services, NOW)
    assert services.suppressions.entries() == []
    assert _events(services, "bounce") == [] and _events(services, "complaint") == []


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=3000) | st.text(max_size=2000).map(lambda t: t.encode()))
def test_hostile_bytes_never_crash(services: OutboundServices, raw: bytes) -> None:
    with contextlib.suppress(FeedbackError):
        ingest_feedback(raw, services, NOW)
