"""Engine-specific readers of plain-text bounce reports, and the DSN layouts the parser now
tolerates (recipients without blank lines between them, a broken MIME boundary, a forwarded
DSN, X-Unix diagnostics). The mails are written here from the engines' documented layouts."""

from __future__ import annotations

from postwise.outbound.bounce_engines import detect_engine, read_report
from postwise.outbound.bounce_rules import classify_reply
from postwise.outbound.bounces import parse_bounce

POSTFIX = """This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<kijitora@example.jp>: host mx.example.jp[192.0.2.22] said: 550 5.1.1
    <kijitora@example.jp>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

<neko@example.jp>: host mx.example.jp[192.0.2.22] said: 552 5.2.2 Mailbox full
    (in reply to end of DATA command)
"""

EXIM = """This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  kijitora@example.or.jp
    SMTP error from remote mail server after end of data:
    host mx.example.jp [192.0.2.20]: 554 5.7.0 Header error

------ This is a copy of the message, including all the headers. ------
"""

QMAIL = """Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<kijitora@example.net>:
192.0.2.1 does not like recipient.
Remote host said: 550 5.1.1 <kijitora@example.net>... User Unknown
Giving up on 192.0.2.1.

--- Below this line is a copy of the message.
"""

SENDMAIL = """The original message was received at Thu, 29 Apr 2010 23:34:45 +0900
from host.example.jp [192.0.2.1]

   ----- The following addresses had permanent fatal errors -----
<kijitora@example.com>
    (reason: 550 5.1.1 <kijitora@example.com>... User unknown)

   ----- Transcript of session follows -----
... while talking to mx.example.com.:
>>> RCPT To:<kijitora@example.com>
<<< 550 5.1.1 <kijitora@example.com>... User unknown
550 5.1.1 <kijitora@example.com>... User unknown
"""

EXCHANGE = """Delivery has failed to these recipients or distribution lists:

Diagnostic information for administrators:

Generating server: mta.example.org

mikeneko@example.co.jp
#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##
"""

GMAIL = """Delivery to the following recipient failed permanently:

     kijitora@example.co.jp

Technical details of permanent failure:
Google tried to deliver your message, but it was rejected by the recipient domain.
The error that the other server returned was: 550 5.2.2 Mailbox full

----- Original message -----
"""


def _mail(body: str, subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.org\nTo: sender@example.org\nSubject: {subject}\n\n{body}"
    ).encode()


def test_engines_are_recognised_from_their_wording() -> None:
    assert detect_engine(POSTFIX) == "postfix"
    assert detect_engine(EXIM) == "exim"
    assert detect_engine(QMAIL) == "qmail"
    assert detect_engine(SENDMAIL) == "sendmail"
    assert detect_engine(EXCHANGE) == "exchange"
    assert detect_engine(GMAIL) == "gmail"
    assert detect_engine("Nothing to see here.") == ""


def test_postfix_blocks_give_each_recipient_its_reply_and_command() -> None:
    engine, findings = read_report(POSTFIX)
    assert engine == "postfix"
    assert [(f.recipient, f.reply_code, f.status, f.command) for f in findings] == [
        ("kijitora@example.jp", "550", "5.1.1", "RCPT"),
        ("neko@example.jp", "552", "5.2.2", "DATA"),
    ]
    assert findings[0].diagnostic.startswith("550 5.1.1")  # "host X said:" is dropped


def test_exim_reads_the_reply_after_the_host() -> None:
    _, findings = read_report(EXIM)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.recipient == "kijitora@example.or.jp"
    assert (finding.reply_code, finding.status, finding.command) == ("554", "5.7.0", "DATA")
    assert finding.diagnostic == "554 5.7.0 Header error"


def test_qmail_sendmail_exchange_gmail_sentences() -> None:
    _, qmail = read_report(QMAIL)
    assert [(f.recipient, f.status, f.command) for f in qmail] == [
        ("kijitora@example.net", "5.1.1", "RCPT")
    ]
    _, sendmail = read_report(SENDMAIL)
    assert [(f.recipient, f.reply_code, f.command) for f in sendmail] == [
        ("kijitora@example.com", "550", "RCPT")
    ]
    _, exchange = read_report(EXCHANGE)
    assert [(f.recipient, f.status) for f in exchange] == [("mikeneko@example.co.jp", "5.1.1")]
    _, gmail = read_report(GMAIL)
    assert [(f.recipient, f.diagnostic) for f in gmail] == [
        ("kijitora@example.co.jp", "550 5.2.2 Mailbox full")
    ]


def test_excluded_addresses_are_never_findings() -> None:
    _, findings = read_report(POSTFIX, excluded={"kijitora@example.jp"})
    assert [f.recipient for f in findings] == ["neko@example.jp"]


def test_parse_bounce_uses_the_recipients_own_sentence() -> None:
    records = parse_bounce(_mail(POSTFIX))
    assert [(r.recipient, r.reason) for r in records] == [
        ("kijitora@example.jp", "userunknown"),
        ("neko@example.jp", "mailboxfull"),
    ]
    assert records[1].diagnostic.startswith("552 5.2.2 Mailbox full")


def test_hostile_text_gives_no_findings_and_never_raises() -> None:
    _, findings = read_report("<" * 5000 + "@" * 5000 + ":\n" * 200)
    assert findings == []
    assert read_report("") == ("", [])


def _report(status_fields: str, text: str = "The message could not be delivered.") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.org\nTo: sender@example.org\n"
        "Subject: Delivery Status Notification (Failure)\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        f"--B\nContent-Type: text/plain\n\n{text}\n\n"
        f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        f"{status_fields}\n--B--\n"
    ).encode()


def test_dsn_recipients_without_blank_lines_between_them_are_all_read() -> None:
    fields = (
        "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.2.2\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
        "Original-Recipient: rfc822; b@example.net\nFinal-Recipient: rfc822; b@example.net\n"
        "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
    )
    records = parse_bounce(_report(fields))
    assert [(r.recipient, r.reason) for r in records] == [
        ("a@example.net", "mailboxfull"),
        ("b@example.net", "userunknown"),
    ]


def test_x_unix_diagnostic_is_an_exit_status_not_a_reply() -> None:
    fields = (
        "Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: X-Unix; 255\n"
    )
    (record,) = parse_bounce(_report(fields))
    assert record.reply_code == ""
    assert record.reason == "mailererror"


def test_a_forwarded_dsn_is_read_from_the_attached_report() -> None:
    inner = _report(
        "Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n"
    ).decode()
    outer = (
        "From: notify@example.org\nTo: admin@example.org\nSubject: Returned mail: User unknown\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="O"\n\n'
        "--O\nContent-Type: text/plain\n\nThe following addresses had permanent errors\n\n"
        f"--O\nContent-Type: message/rfc822\n\n{inner}\n--O--\n"
    )
    (record,) = parse_bounce(outer.encode())
    assert (record.recipient, record.reason) == ("gone@example.net", "userunknown")


def test_specific_security_status_beats_generic_rejection_wording() -> None:
    text = "<a@example.net>: Recipient address rejected: Multiple authentication checks failed"
    assert classify_reply(550, "5.7.26", text) == ("authfailure", False)
    # the generic wording with an address status still names the address
    assert classify_reply(550, "5.1.1", "Recipient address rejected") == ("userunknown", True)


OLD_SENDMAIL = """   ----- Transcript of session follows -----
While talking to mx.example.net:
>>> DATA
<<< 554 Transaction failed
554 <a@example.net>... Transaction failed
While talking to mx.example.com:
>>> RCPT To:<b@example.com>
<<< 550 Mailbox not found
550 <b@example.com>... User unknown

   ----- Unsent message follows -----
"""


def test_sendmail_transcript_without_address_list_reads_each_conversation() -> None:
    engine, findings = read_report(OLD_SENDMAIL)
    assert engine == "sendmail"
    assert [(f.recipient, f.reply_code, f.command) for f in findings] == [
        ("a@example.net", "554", "DATA"),
        ("b@example.com", "550", "RCPT"),
    ]
    records = parse_bounce(_mail(OLD_SENDMAIL, "Returned mail: see transcript for details"))
    # b's own conversation refused RCPT: an unknown user, not a DATA-time filter
    assert [(r.recipient, r.reason) for r in records][1] == ("b@example.com", "userunknown")


def test_a_status_comment_is_the_diagnostic_when_there_is_no_diagnostic_code() -> None:
    fields = (
        "Final-Recipient: rfc822; a@example.net\nAction: delayed\n"
        "Status: 4.0.0 (example.net: host name lookup failure)\n"
    )
    (record,) = parse_bounce(_report(fields, "Delivery is delayed."))
    assert record.diagnostic == "example.net: host name lookup failure"
    assert (record.reason, record.hard) == ("networkerror", False)


def test_a_multipart_body_whose_boundary_never_occurs_is_read_as_text() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.org\nTo: sender@example.org\n"
        b"Subject: Returned mail: User unknown\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="NEVER"\n\n'
        b"   ----- The following addresses had permanent fatal errors -----\n<a@example.net>\n\n"
        b"   ----- Transcript of session follows -----\n"
        b"550 5.1.1 <a@example.net>... User unknown\n\n"
        b"Final-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.1.1\n"
    )
    (record,) = parse_bounce(raw)
    assert (record.recipient, record.reason, record.status) == (
        "a@example.net",
        "userunknown",
        "5.1.1",
    )


def test_amazon_ses_complaint_notification_is_feedback() -> None:
    body = (
        '{"notificationType":"Complaint","complaint":{"complainedRecipients":'
        '[{"emailAddress":"reader@example.net"}],"complaintFeedbackType":"abuse"},'
        '"mail":{"source":"sender@example.org","destination":["reader@example.net"]}}\n'
    )
    (record,) = parse_bounce(_mail(body, "AWS Notification Message"))
    assert (record.recipient, record.reason, record.feedback_type) == (
        "reader@example.net",
        "feedback",
        "abuse",
    )


# Layouts that pass the remote server's words on with no code, status or command of their own
# (Sisimai's X1, X2 and Zoho decoders add none and decide no reason themselves).
BRACKET_LIST = """The original message was received at Mon, 2 Mar 2026 10:00:00 +0900 (JST)
from sender@example.org

---The following addresses had delivery errors---

gone@example.net [User unknown]
full@example.net [Mailbox full]
"""

PLAIN_LIST = """Message from example.net.
Unable to deliver message to the following address(es).

<gone@example.net>:
This user doesn't have a example.net account (gone@example.net) [0]

<closed@example.net>:
This account has been disabled or discontinued [#102].
"""

ZOHO_LIKE = """This message was created automatically by mail delivery software.
A message that you sent could not be delivered to one or more of its recipients.

gone@example.net Invalid Address, ERROR_CODE :550, ERROR_CODE :Requested action not taken: \
mailbox unavailable
known@example.net Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <known@example.net>... \
User Unknown
"""


def test_pass_through_layouts_are_read_per_recipient() -> None:
    engine, findings = read_report(BRACKET_LIST)
    assert engine == "bracket_list"
    assert [(f.recipient, f.diagnostic, f.reply_code) for f in findings] == [
        ("gone@example.net", "User unknown", ""),
        ("full@example.net", "Mailbox full", ""),
    ]
    assert detect_engine(PLAIN_LIST) == "plain_list"
    engine, findings = read_report(ZOHO_LIKE)
    assert engine == "zoho"
    assert [(f.recipient, f.reply_code, f.status) for f in findings] == [
        ("gone@example.net", "550", ""),
        ("known@example.net", "550", "5.1.1"),
    ]


def test_unknown_user_in_a_pass_through_layout_is_filtered_without_rcpt_or_x11() -> None:
    # nothing says the recipient was refused at RCPT and no x.1.1 status names the mailbox:
    # Sisimai's order reads the unknown-user wording as a filter's answer
    assert [r.reason for r in parse_bounce(_mail(BRACKET_LIST, "Returned Mail: Error"))] == [
        "filtered",
        "mailboxfull",
    ]
    assert [r.reason for r in parse_bounce(_mail(PLAIN_LIST, "Delivery failure"))] == [
        "filtered",
        "suspend",
    ]
    records = parse_bounce(_mail(ZOHO_LIKE))
    assert [(r.reason, r.hard) for r in records] == [("filtered", False), ("userunknown", True)]
    # the same sentence with a refused RCPT stays an unknown user
    rcpt = (
        "<gone@example.net>: host mx.example.net[192.0.2.1] said: User unknown\n"
        "    (in reply to RCPT TO command)"
    )
    assert [r.reason for r in parse_bounce(_mail(rcpt))] == ["userunknown"]
