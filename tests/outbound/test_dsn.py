"""DSNs we build are read back by Python's email package and by our own bounce parser (the loop
closes: our DSN parses as a bounce), and hostile originals never break them."""

from __future__ import annotations

import email
import email.message
import email.policy
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.outbound.bounces import parse_bounce
from postwise.outbound.dsn import DsnRecipient, build_dsn, needs_dsn

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ORIGINAL = (
    b"From: Alice <alice@sender.test>\r\nTo: bob@example.com\r\nSubject: Hello\r\n"
    b"Message-ID: <orig-1@sender.test>\r\n\r\nHi Bob,\r\nsee you.\r\n"
)
UNKNOWN = DsnRecipient("bob@example.com", "5.1.1", "550 5.1.1 user unknown", "mx.example.com", NOW)


def _build(original: bytes = ORIGINAL, **kwargs: object) -> bytes:
    arguments: dict[str, object] = {
        "envelope_from": "<alice@sender.test>",
        "failures": [UNKNOWN],
        "reporting_mta": "mail.postwise.test",
        "arrival_date": NOW - timedelta(days=1),
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_dsn(original, **arguments)  # type: ignore[arg-type]


def _parts(raw: bytes) -> tuple[email.message.EmailMessage, list[email.message.Message]]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    payload = message.get_payload()
    assert isinstance(payload, list)
    return message, payload


def _assert_wire_safe(raw: bytes) -> None:
    assert raw.endswith(b"\r\n")
    for line in raw[:-2].split(b"\r\n"):
        assert len(line) <= 998
        assert b"\r" not in line and b"\n" not in line


def test_the_dsn_structure_follows_rfc_3464_and_6522() -> None:
    raw = _build(envelope_id="ENV+2B1", queue_id="Q123")
    _assert_wire_safe(raw)
    message, parts = _parts(raw)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert message["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.postwise.test"
    assert message["From"].addresses[0].display_name == "Mail Delivery System"
    assert message["To"].addresses[0].addr_spec == "alice@sender.test"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Message-ID"].endswith("@mail.postwise.test>")
    assert message["Date"].datetime == NOW
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822",
    ]
    human = parts[0].get_content()
    assert "bob@example.com" in human and "does not exist" in human
    assert "550 5.1.1 user unknown" in human and "mx.example.com" in human

    blocks = parts[1].get_payload()
    assert isinstance(blocks, list) and len(blocks) == 2
    per_message, per_recipient = blocks
    assert per_message["Reporting-MTA"] == "dns; mail.postwise.test"
    assert per_message["Original-Envelope-Id"] == "ENV+2B1"
    assert per_message["X-Postwise-Queue-Id"] == "Q123"
    assert per_message["Arrival-Date"] == "Tue, 30 Apr 2024 12:00:00 +0000"
    assert per_recipient["Final-Recipient"] == "rfc822; bob@example.com"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; mx.example.com"
    assert per_recipient["Diagnostic-Code"] == "smtp; 550 5.1.1 user unknown"
    assert per_recipient["Last-Attempt-Date"] == "Wed, 01 May 2024 12:00:00 +0000"

    returned = parts[2].get_payload()[0]
    assert returned["Subject"] == "Hello" and returned["Message-ID"] == "<orig-1@sender.test>"


def test_our_dsn_parses_as_a_bounce() -> None:
    second = DsnRecipient(
        "carol@example.org", "4.2.2", "452 4.2.2 mailbox full", "mx.example.org", NOW
    )
    records = parse_bounce(_build(failures=[UNKNOWN, second]))
    assert [(r.recipient, r.status, r.reason) for r in records] == [
        ("bob@example.com", "5.1.1", "userunknown"),
        ("carol@example.org", "4.2.2", "mailboxfull"),
    ]
    assert records[0].hard and records[0].reply_code == "550"
    assert records[0].action == "failed"


def test_a_delay_notice() -> None:
    later = DsnRecipient(
        "bob@example.com",
        "4.4.1",
        "421 4.4.1 try later",
        None,
        NOW,
        will_retry_until=NOW + timedelta(days=4),
    )
    raw = _build(failures=[later], action="delayed")
    message, parts = _parts(raw)
    assert "Delayed" in message["Subject"]
    block = parts[1].get_payload()[1]
    assert block["Action"] == "delayed" and block["Status"] == "4.4.1"
    assert block["Will-Retry-Until"] == "Sun, 05 May 2024 12:00:00 +0000"
    assert "Remote-MTA" not in block
    assert "still being retried" in parts[0].get_content()
    assert parse_bounce(raw)[0].action == "delayed"


def test_headers_only_when_asked_or_too_large() -> None:
    for raw in (
        _build(return_headers_only=True),
        _build(ORIGINAL + b"x" * 900 + b"\r\n", max_original_bytes=len(ORIGINAL)),
    ):
        _assert_wire_safe(raw)
        _, parts = _parts(raw)
        assert parts[2].get_content_type() == "text/rfc822-headers"
        returned = parts[2].get_payload(decode=True)
        assert isinstance(returned, bytes)
        assert b"Subject: Hello" in returned and b"Hi Bob" not in returned


def test_a_long_diagnostic_is_folded_and_a_missing_status_is_derived() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    nospace = "y" * 3000
    failure = DsnRecipient("bob@example.com", "", f"554 {words} {nospace}\r\n550 end", None, NOW)
    raw = _build(failures=[failure])
    _assert_wire_safe(raw)
    block = _parts(raw)[1][1].get_payload()[1]
    assert block["Status"] == "5.0.0"
    diagnostic = " ".join(str(block["Diagnostic-Code"]).split())
    assert diagnostic.startswith("smtp; 554 word0 word1") and diagnostic.endswith("550 end")


def test_unicode_recipients_and_diagnostics_stay_ascii_in_the_report() -> None:
    failure = DsnRecipient("jörg@bücher.example", "5.1.1", "550 5.1.1 unbekannt: jörg", None, NOW)
    raw = _build(failures=[failure])
    _assert_wire_safe(raw)
    _, parts = _parts(raw)
    status_part = raw.split(b"message/delivery-status", 1)[1].split(b"\r\n--", 1)[0]
    assert status_part.isascii()
    assert parts[1].get_payload()[1]["Final-Recipient"].startswith("utf-8; j\\x{F6}rg@")
    assert "jörg@bücher.example" in parts[0].get_content()


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("", False),
        ("<>", False),
        (" <> ", False),
        ("MAILER-DAEMON@example.com", False),
        ("<mailer-daemon@example.com>", False),
        ("double-bounce@example.com", False),
        ("MAILER-DAEMON", False),
        ("alice@example.com", True),
        ("<alice@example.com>", True),
        ("postmaster@example.com", True),
    ],
)
def test_needs_dsn(sender: str, expected: bool) -> None:
    assert needs_dsn(sender) is expected


def test_no_dsn_to_the_null_sender_or_for_no_failures() -> None:
    with pytest.raises(ValueError, match="null sender"):
        _build(envelope_from="<>")
    with pytest.raises(ValueError, match="at least one recipient"):
        _build(failures=[])


@pytest.mark.parametrize(
    "original",
    [
        b"",
        b"no headers at all, just text",
        b"Subject: bare LF\nFrom: a@b.test\n\nbody\n",
        b"Subject: bare CR\rFrom: a@b.test\r\rbody\r",
        b"Subject: long\r\n\r\n" + b"z" * 5000 + b"\r\n",
        b"Subject: " + b"h" * 3000 + b"\r\n\r\nbody\r\n",
        b"Subject: nul\x00\r\n\r\n\x00\xff\xfe\r\n",
        b"Subject: \xc3\x28 not utf-8 \xff\r\n\r\n\x80\x81\r\n",
    ],
)
def test_hostile_originals(original: bytes) -> None:
    raw = _build(original)
    _assert_wire_safe(raw)
    _, parts = _parts(raw)
    assert parts[1].get_content_type() == "message/delivery-status"
    assert parse_bounce(raw)[0].recipient == "bob@example.com"


def test_a_clean_8bit_original_is_returned_byte_for_byte() -> None:
    original = b"Subject: caf\xc3\xa9\r\nX-Raw: \xff\xfe\r\n\r\n\x80 body \xe9\r\n"
    raw = _build(original)
    assert original in raw
    assert b"Content-Transfer-Encoding: 8bit" in raw


@settings(max_examples=150, deadline=None)
@given(
    original=st.binary(max_size=3000)
    | st.lists(
        st.sampled_from(
            [b"Subject: x", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"a" * 1200, b": ", b" "]
        ),
        max_size=40,
    ).map(b"".join),
    diagnostic=st.text(max_size=300),
    recipient=st.text(min_size=1, max_size=80),
)
def test_any_original_and_diagnostic_give_a_wire_safe_dsn(
    original: bytes, diagnostic: str, recipient: str
) -> None:
    failure = DsnRecipient(recipient, "5.1.1", diagnostic, "mx.example.com", NOW)
    raw = _build(original, failures=[failure, UNKNOWN], return_headers_only=len(original) % 2 == 0)
    _assert_wire_safe(raw)
    message, parts = _parts(raw)
    assert message.get_content_type() == "multipart/report"
    assert parts[1].get_content_type() == "message/delivery-status"
    records = parse_bounce(raw)
    assert ("bob@example.com", "userunknown") in [(r.recipient, r.reason) for r in records]
