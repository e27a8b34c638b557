"""Engine evidence from a report's headers, the Sisimai-style precedence of a status over
generic wording, the confusable-pair combination, recipient fallbacks and the per-reason
evaluation."""

from __future__ import annotations

import email

import numpy as np

from postwise.outbound.bounce_evaluation import LabelledBounce, LabelledRecipient, evaluate
from postwise.outbound.bounce_model import BounceModel, header_tokens, reply_tokens
from postwise.outbound.bounce_rules import classify_reply, match_reply
from postwise.outbound.bounces import parse_bounce, report_headers

REPORT = b"""From: Mail Delivery System <mailer-daemon@mail.zoho.example>
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
X-Mailer: Zoho Mail
X-ZohoMail: Si CHF_MF_NL 12

This message was created automatically by mail delivery software.

<gone@example.net>: 550 5.1.1 <gone@example.net>... User Unknown
"""


def test_report_headers_summarise_the_writer() -> None:
    summary = report_headers(email.message_from_bytes(REPORT))
    assert summary.startswith("[report-headers: ")
    assert "x-mailer=zoho mail" in summary and "x-zohomail" in summary
    tokens = header_tokens(summary.removeprefix("[report-headers: ").rstrip("] "))
    assert "h:domain:zoho" in tokens and "h:x:x-zohomail" in tokens
    assert "h:x-mailer:zoho" in tokens and "h:sender:mailer-daemon" in tokens


def test_reply_tokens_cross_header_evidence_with_the_rules_answer() -> None:
    context = "[report-headers: x=x-zohomail] 550 user unknown"
    tokens = reply_tokens("550", "5.1.1", "550 user unknown", context)
    assert "h:x:x-zohomail" in tokens and "#rule_h:x:x-zohomail:userunknown" in tokens
    assert not any("report" in t for t in tokens)  # the marker itself is not a word


def test_headers_in_the_context_do_not_change_the_rules() -> None:
    plain = match_reply("550", "", "550 No such user", "550 No such user")
    framed = match_reply("550", "", "550 No such user", "[report-headers: x=x-a] 550 No such user")
    assert plain.reason == framed.reason


def test_a_specific_status_beats_generic_address_wording() -> None:
    text = "550 5.1.2 <a@b.example>: Recipient address rejected: see /reason/#unknown"
    assert classify_reply("550", "5.1.2", text) == ("hostunknown", True)


def test_unknown_user_with_a_permanent_status_and_no_reply_code_is_filtered() -> None:
    assert classify_reply("", "5.0.0", "The account you tried to reach does not exist") == (
        "filtered",
        False,
    )
    # a refused RCPT keeps it an unknown user
    text = "RCPT TO:<a@b.example> said: The account you tried to reach does not exist"
    assert classify_reply("", "5.0.0", text)[0] == "userunknown"


def _two_class_model(strategy: str) -> BounceModel:
    return BounceModel(
        version="t",
        classes=("filtered", "mailboxfull", "userunknown"),
        vocabulary={"h:x:x-filter": 0},
        idf=np.ones(1),
        weights=np.array([[5.0, 9.0, -5.0]]),
        intercept=np.zeros(3),
        strategy=strategy,
        card={},
    )


def test_rules_resolve_confusable_only_chooses_within_the_pair() -> None:
    model = _two_class_model("rules_resolve_confusable")
    context = "[report-headers: x=x-filter] 550 5.1.1 user unknown"
    # the model prefers mailboxfull, but may only choose between userunknown and filtered
    assert model.classify("550", "5.1.1", "550 5.1.1 user unknown", context) == (
        "filtered",
        "model",
    )
    # an answer outside the pair stays the rules'
    reason, source = model.classify("552", "5.2.2", "mailbox full", context)
    assert (reason, source) == ("mailboxfull", "rules:text")


def test_a_report_sent_to_the_failed_address_still_names_it() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nTo: gone@example.net\nSubject: failure notice\n\n"
        b"Sorry, we were unable to deliver your message to the following address.\n\n"
        b"<gone@example.net>:\n550 5.1.1 No such user\n"
    )
    records = parse_bounce(raw)
    assert [(r.recipient, r.reason) for r in records] == [("gone@example.net", "userunknown")]


def test_evaluate_reports_per_reason_answers() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example\nSubject: failure notice\n\n"
        b"<a@b.example>: 552 5.2.2 Mailbox full\n"
    )
    bounce = LabelledBounce(
        "x", raw, "g", (LabelledRecipient(1, "userunknown", True, "a@b.example"),)
    )
    result = evaluate([bounce])
    assert result["per_reason"] == {
        "userunknown": {"recipients": 1, "correct": 0, "predicted": {"mailboxfull": 1}}
    }
