"""ARF complaints (RFC 5965) against the mail-auth samples and their expected JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postwise.outbound.bounces import parse_bounce
from postwise.outbound.complaints import parse_arf

FBL = Path(__file__).resolve().parents[3] / "shared" / "data" / "fbl" / "mail-auth-arf"
SAMPLES = sorted(FBL.glob("*.eml")) if FBL.is_dir() else []

ARF = b"""From: abuse@isp.example
To: fbl@sender.example
Subject: FW: Earn money
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="part1"

--part1
Content-Type: text/plain

This is an email abuse report.

--part1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <bounces@sender.example>
Original-Rcpt-To: <user@isp.example>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Source-IP: 192.0.2.1
Reported-Domain: sender.example

--part1
Content-Type: message/rfc822

From: <news@sender.example>
To: <user@isp.example>
Message-ID: <abc@sender.example>
Subject: Earn money

Buy now.
--part1--
"""


def test_parse_hand_written_report() -> None:
    complaint = parse_arf(ARF)
    assert complaint is not None
    assert complaint.feedback_type == "abuse"
    assert complaint.user_agent == "SomeGenerator/1.0"
    assert complaint.version == "1"
    assert complaint.original_mail_from == "<bounces@sender.example>"
    assert complaint.recipients == ["user@isp.example"]
    assert complaint.source_ip == "192.0.2.1"
    assert complaint.reported_domain == ("sender.example",)
    assert complaint.original_message_id == "<abc@sender.example>"
    (record,) = parse_bounce(ARF)
    assert (record.reason, record.recipient, record.feedback_type) == (
        "feedback",
        "user@isp.example",
        "abuse",
    )


def test_not_a_report() -> None:
    assert parse_arf(b"Subject: hi\n\nhello\n") is None
    assert parse_arf(b"\xff\x00garbage") is None


@pytest.mark.skipif(not SAMPLES, reason="shared fbl samples absent")
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_mail_auth_samples(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text())
    complaint = parse_arf(path.read_bytes())
    assert complaint is not None
    assert complaint.feedback_type.replace("-", "") == expected["feedback_type"].lower()
    assert complaint.user_agent == (expected["user_agent"] or "")
    assert complaint.source_ip == (expected["source_ip"] or "")
    assert complaint.original_mail_from == (expected["original_mail_from"] or "")
    assert complaint.original_rcpt_to == (
        (expected["original_rcpt_to"],) if expected["original_rcpt_to"] else ()
    )
    assert list(complaint.reported_domain) == expected["reported_domain"]
    assert complaint.version == str(expected["version"])
