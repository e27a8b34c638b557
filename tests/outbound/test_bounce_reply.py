"""Single SMTP replies as the delivery engine classifies them, the SMTP command and reporting
MTA read from a report, and the silver-labelled extras used for training."""

from __future__ import annotations

from pathlib import Path

import pytest

from postwise.core.settings import SHIPPED_MODEL_DIR
from postwise.outbound.bounce_evaluation import read_extras
from postwise.outbound.bounce_rules import REASONS, failed_command, reporting_mta
from postwise.outbound.bounces import classify_smtp_reply

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "bounces"


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "expected"),
    [
        ("550", "5.1.1", "User unknown", ("userunknown", True)),
        (
            550,
            "5.1.1",
            "<a@example.net>: Recipient address rejected: User unknown",
            ("userunknown", True),
        ),
        ("452", "4.2.2", "Mailbox full", ("mailboxfull", False)),
        ("550", "5.1.2", "Host or domain name not found", ("hostunknown", True)),
        ("421", "4.7.0", "Too many concurrent connections from your IP", ("toomanyconn", False)),
        ("554", "5.7.1", "Relay access denied", ("norelaying", False)),
        ("504", "5.5.4", "Command parameter not implemented", ("syntaxerror", False)),
        ("250", "2.0.0", "OK", ("delivered", False)),
        (None, None, None, ("onhold", False)),
    ],
)
def test_classify_smtp_reply_with_the_shipped_model(
    code: str | int | None, enhanced: str | None, text: str | None, expected: tuple[str, bool]
) -> None:
    assert classify_smtp_reply(code, enhanced, text) == expected


def test_classify_smtp_reply_falls_back_to_rules_without_a_model(tmp_path: Path) -> None:
    assert classify_smtp_reply("550", "5.1.1", "User unknown", model_path=tmp_path) == (
        "userunknown",
        True,
    )
    reason, hard = classify_smtp_reply("451", "", "x" * 5000, model_path=tmp_path)
    assert reason in REASONS and hard is False


def test_classify_smtp_reply_loads_the_model_once() -> None:
    from postwise.outbound.bounces import _loaded_classifier

    folder = SHIPPED_MODEL_DIR / "bounces"
    classify_smtp_reply("550", "5.1.1", "User unknown", model_path=folder)
    before = _loaded_classifier.cache_info().hits
    classify_smtp_reply("552", "5.2.2", "Quota exceeded", model_path=folder)
    assert _loaded_classifier.cache_info().hits == before + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("host mx.example.net said: 550 5.1.1 unknown (in reply to RCPT TO command)", "RCPT"),
        ("SMTP error from remote mail server after end of data: 550 rejected", "DATA"),
        (">>> MAIL From:<a@example.org>\n<<< 553 sender rejected", "MAIL"),
        ("SMTP error from remote mail server after initial connection: 554", "CONN"),
        ("550 User unknown", ""),
    ],
)
def test_failed_command_reads_the_transcript(text: str, expected: str) -> None:
    assert failed_command(text) == expected


def test_reporting_mta_from_the_report_wording() -> None:
    assert reporting_mta("This is the mail system at host mx.example.org.") == "postfix"
    assert reporting_mta("Hi. This is the qmail-send program at example.jp.") == "qmail"
    assert reporting_mta("This message was created automatically by mail delivery software.") == (
        "exim"
    )
    assert reporting_mta("nothing recognisable") == ""


def test_unknown_user_without_rcpt_or_x11_status_is_filtered() -> None:
    # Sisimai keeps "user unknown" for x.1.x statuses and refused RCPTs only
    assert classify_smtp_reply("550", "", "550 Unknown user kijitora@example.jp") == (
        "filtered",
        False,
    )
    assert classify_smtp_reply("550", "5.1.1", "550 Unknown user kijitora@example.jp")[0] == (
        "userunknown"
    )


@pytest.mark.skipif(not (SHARED / "extras.csv").is_file(), reason="shared bounce data absent")
def test_extras_have_single_silver_reasons() -> None:
    extras = read_extras(SHARED)
    assert extras and all(len(b.recipients) == 1 for b in extras)
    assert {b.recipients[0].reason for b in extras} <= set(REASONS)


GENERIC_STATUS_DSN = b"""From: MAILER-DAEMON@mx.example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Delivery failed. For further assistance, please contact <help@example.org>

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: User unknown (in reply to RCPT TO command)

--B--
"""


def test_a_generic_dsn_status_gives_way_to_the_replys_own() -> None:
    from postwise.outbound.bounces import parse_bounce

    (record,) = parse_bounce(GENERIC_STATUS_DSN)
    assert (record.recipient, record.status, record.reason, record.hard) == (
        "gone@example.net",
        "5.1.1",
        "userunknown",
        True,
    )
