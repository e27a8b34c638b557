"""Bounce parsing and classification: rules on typical replies, DSNs written here, hostile
input, the shipped model, and accuracy on the shared Sisimai samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.core.settings import SHIPPED_MODEL_DIR
from postwise.outbound.bounce_evaluation import evaluate, read_bounces, select
from postwise.outbound.bounce_model import BounceModel
from postwise.outbound.bounce_rules import REASONS, STATUS_RULES, TEXT_RULES, classify_reply
from postwise.outbound.bounces import parse_bounce

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "bounces"


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "expected"),
    [
        (550, "5.1.1", "user unknown", ("userunknown", True)),
        (550, "5.1.1", "", ("userunknown", True)),
        (452, "4.2.2", "mailbox full", ("mailboxfull", False)),
        (552, "5.2.2", "Quota exceeded for this mailbox", ("mailboxfull", False)),
        (421, "4.7.0", "Too many concurrent connections from your IP", ("toomanyconn", False)),
        (421, "4.7.0", "rate limited, sending rate exceeded", ("speeding", False)),
        (
            554,
            "5.7.1",
            "Service unavailable; client host blocked using Spamhaus",
            ("blocked", False),
        ),
        (550, "5.1.2", "Host or domain name not found", ("hostunknown", True)),
        (550, "5.7.26", "", ("authfailure", False)),
        (552, "5.3.4", "", ("mesgtoobig", False)),
        (None, "4.4.7", "", ("expired", False)),
        (556, "", "", ("notaccept", True)),
        (None, None, None, ("onhold", False)),
    ],
)
def test_rules_classify_typical_replies(
    code: int | None, enhanced: str | None, text: str | None, expected: tuple[str, bool]
) -> None:
    assert classify_reply(code, enhanced, text) == expected


def test_rules_tables_name_only_sisimai_reasons() -> None:
    assert {reason for reason, _ in TEXT_RULES} <= set(REASONS)
    assert {reason for _, reason in STATUS_RULES} <= set(REASONS)


DSN = b"""From: MAILER-DAEMON@mx.example.org
To: sender@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown

Final-Recipient: rfc822; full@example.net
Action: failed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--B
Content-Type: message/rfc822

From: sender@example.com
To: nobody@example.net, full@example.net
Subject: hello

hi
--B--
"""

QMAIL = b"""From: MAILER-DAEMON@mail.example.jp
To: sender@example.com
Subject: failure notice

Hi. This is the qmail-send program at mail.example.jp.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<gone@example.jp>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <gone@example.jp>... User unknown
Giving up on 192.0.2.1.

--- Below this line is a copy of the message.

Return-Path: <sender@example.com>
To: gone@example.jp
"""


def test_parse_dsn_gives_one_record_per_recipient() -> None:
    records = parse_bounce(DSN)
    assert [(r.recipient, r.reason, r.hard, r.status, r.reply_code) for r in records] == [
        ("nobody@example.net", "userunknown", True, "5.1.1", "550"),
        ("full@example.net", "mailboxfull", False, "4.2.2", "452"),
    ]
    assert records[0].action == "failed"


def test_parse_plain_text_report() -> None:
    (record,) = parse_bounce(QMAIL)
    assert (record.recipient, record.reason, record.hard) == (
        "gone@example.jp",
        "userunknown",
        True,
    )
    assert record.reply_code == "550" and record.status == "5.1.1"


def test_unclassifiable_bounce_says_why() -> None:
    raw = (
        b"Subject: Undelivered Mail Returned to Sender\n\nSomething went wrong for x@example.org\n"
    )
    (record,) = parse_bounce(raw)
    assert record.recipient == "x@example.org"
    assert record.reason == "onhold" and "no rule matched" in record.note


def test_not_a_bounce_gives_no_records() -> None:
    raw = b"From: a@example.com\nTo: b@example.com\nSubject: lunch?\n\nAt noon?\n"
    assert parse_bounce(raw) == []
    assert parse_bounce(b"") == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    for record in parse_bounce(raw):
        assert record.reason in REASONS


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_random_text_after_a_bounce_header_never_raises(text: str) -> None:
    raw = b"Subject: Undelivered Mail\nContent-Type: multipart/report; boundary=B\n\n--B\n"
    parse_bounce(raw + text.encode("utf-8", "surrogatepass"))


def test_shipped_model_loads_and_predicts() -> None:
    model = BounceModel.load(SHIPPED_MODEL_DIR / "bounces")
    assert model.version.startswith("bounces-v")
    assert model.card["version"] == model.version
    reason, _ = model.classify("550", "5.1.1", "550 5.1.1 User unknown")
    assert reason == "userunknown"
    records = parse_bounce(DSN, model.classify)
    assert [r.reason for r in records] == ["userunknown", "mailboxfull"]


@pytest.mark.skipif(not (SHARED / "manifest.csv").is_file(), reason="shared bounce data absent")
def test_validation_accuracy_reaches_the_documented_figures() -> None:
    model = BounceModel.load(SHIPPED_MODEL_DIR / "bounces")
    validation = select(read_bounces(SHARED), "validation", 0)
    combined = evaluate(validation, model.classify)
    rules = evaluate(validation)
    # The figures in docs/bounces.md and docs/benchmarks.md (validation split, seed 0).
    assert combined["reason_accuracy"] >= COMBINED_REASON
    assert combined["hardbounce_accuracy"] >= COMBINED_HARD
    assert combined["recipient_accuracy"] >= RECIPIENT
    assert rules["reason_accuracy"] >= RULES_REASON
    assert combined["reason_accuracy"] > rules["reason_accuracy"]


COMBINED_REASON = 0.81
COMBINED_HARD = 0.91
RECIPIENT = 0.92
RULES_REASON = 0.80
