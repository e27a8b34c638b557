"""Delivery status notifications (RFC 3464, RFC 6522, RFC 3461) sent back to a message's sender.

:func:`build_dsn` writes a ``multipart/report; report-type=delivery-status`` message: a
plain-language explanation, the machine-readable ``message/delivery-status`` part (one block per
recipient) and the returned original (``message/rfc822``) or only its headers
(``text/rfc822-headers``). :func:`needs_dsn` says whether a sender may receive one at all: the
null sender and mailer daemons never do (RFC 5321 6.1, mail loops).

The DSN is assembled as bytes, not through the ``email`` generator, so that a hostile original
(undecodable bytes, no headers, huge lines, bare CR or LF, NUL) is returned unchanged when it can
travel over SMTP and reduced to its cleaned headers when it cannot; every generated line ends in
CRLF and is at most 998 octets (RFC 5322 2.1.1). The DSN itself must be sent with the null
reverse path (``MAIL FROM:<>``), which is the delivery engine's part.
"""

from __future__ import annotations

import quopri
import re
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal

MAX_RETURNED_BYTES = 1024 * 1024
"""Originals larger than this are returned as headers only (RFC 3461 4.3 lets the MTA choose)."""
MAX_LINE = 998
_FOLD_AT = 76  # where generated header fields are folded when they can be
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_DAEMON_SENDERS = re.compile(r"^(mailer-daemon|double-bounce|mail-daemon)(?:[+=-].*)?$", re.I)
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient the DSN reports on.

    ``status`` is the enhanced status code (``5.1.1``); ``diagnostic`` the remote server's reply
    as received (``550 5.1.1 user unknown``); ``remote_mta`` the host that gave it (None when no
    server answered, e.g. no MX); ``original_recipient`` the RFC 3461 ORCPT when one was given."""

    recipient: str
    status: str
    diagnostic: str
    remote_mta: str | None
    last_attempt: datetime
    will_retry_until: datetime | None = None
    original_recipient: str | None = None


def needs_dsn(envelope_from: str) -> bool:
    """Whether a DSN may be sent to ``envelope_from``: never to the null sender (``<>`` or
    empty) or to a mailer daemon (RFC 5321 6.1 and RFC 3464 2: a DSN must not cause another),
    nor to a sender with no domain, where no DSN could be delivered."""
    address = envelope_from.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = address.rpartition("@")
    if not address or not at or not local or not domain:
        return False
    return not _DAEMON_SENDERS.match(local.strip('"'))


def build_dsn(
    original: bytes,
    *,
    envelope_from: str,
    failures: Sequence[DsnRecipient],
    reporting_mta: str,
    arrival_date: datetime,
    now: datetime,
    envelope_id: str | None = None,
    action: Literal["failed", "delayed"] = "failed",
    return_headers_only: bool = False,
    queue_id: str | None = None,
    max_original_bytes: int = MAX_RETURNED_BYTES,
) -> bytes:
    """The DSN (as bytes ready for ``MAIL FROM:<>``) telling ``envelope_from`` that delivery to
    ``failures`` ``action`` (failed for good, or is delayed and still being retried).

    ``original`` is returned whole as ``message/rfc822`` unless ``return_headers_only``
    (RFC 3461 ``RET=HDRS``), it is larger than ``max_original_bytes``, or it cannot travel
    unchanged over SMTP (a line over 998 octets, a NUL): then only its headers are returned,
    cleaned, as ``text/rfc822-headers``. ``envelope_id`` is the RFC 3461 ``ENVID`` (xtext, as
    received); ``queue_id`` is reported as ``X-Postwise-Queue-Id``.

    Raises ValueError when ``envelope_from`` must not get a DSN (see :func:`needs_dsn`) or
    ``failures`` is empty. Never fails because of the content of ``original``."""
    if not needs_dsn(envelope_from):
        raise ValueError(
            f"{envelope_from!r} is the null sender or a mailer daemon: no DSN may be sent to it "
            "(RFC 5321 6.1)"
        )
    if not failures:
        raise ValueError("build_dsn needs at least one recipient to report on")
    host = _hostname(reporting_mta)
    sender = _one_line(envelope_from).strip().removeprefix("<").removesuffix(">").strip()
    returned, returned_type, note = _returned_part(
        original, return_headers_only, max_original_bytes
    )

    human = _human_report(host, failures, action, arrival_date, note)
    status = _delivery_status(host, failures, action, arrival_date, envelope_id, queue_id)
    human_bytes, human_encoding = _text_body(human)
    parts = [
        (
            [
                "Content-Type: text/plain; charset=utf-8",
                "Content-Description: Notification",
                f"Content-Transfer-Encoding: {human_encoding}",
            ],
            human_bytes,
        ),
        (
            ["Content-Type: message/delivery-status", "Content-Description: Delivery report"],
            status.encode("ascii"),
        ),
    ]
    if returned is not None:
        encoding = "7bit" if returned.isascii() else "8bit"
        description = "Undelivered message" if returned_type == "message/rfc822" else "Headers"
        parts.append(
            (
                [
                    f"Content-Type: {returned_type}",
                    f"Content-Description: {description}",
                    f"Content-Transfer-Encoding: {encoding}",
                ],
                returned,
            )
        )
    boundary = _boundary(b"".join(body for _, body in parts))
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    headers = [
        f'From: "Mail Delivery System" <MAILER-DAEMON@{host}>',
        *_fold("To", f"<{sender}>"),
        f"Subject: {subject}",
        f"Date: {format_datetime(_aware(now))}",
        f"Message-ID: <{uuid.uuid4().hex}@{host}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f' boundary="{boundary}"',
    ]
    out = bytearray(_lines(headers) + b"\r\n")
    out += b"This is a MIME-encapsulated message: a delivery status notification.\r\n"
    for part_headers, body in parts:
        out += f"\r\n--{boundary}\r\n".encode("ascii")
        out += _lines(part_headers) + b"\r\n" + body
        if not body.endswith(b"\r\n"):
            out += b"\r\n"
    out += f"\r\n--{boundary}--\r\n".encode("ascii")
    return bytes(out)


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters turned into spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)


def _hostname(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9.\-\[\]:]", "", name)[:253]
    return cleaned or "localhost"


def _ascii_field_text(text: str) -> str:
    """A value fit for a delivery-status field (ASCII only, RFC 3464): other characters as
    RFC 6533's ``\\x{HEX}``, control characters as spaces."""
    text = " ".join(_one_line(text).split())
    return "".join(c if c.isascii() else f"\\x{{{ord(c):X}}}" for c in text)


def _address_field(address: str) -> str:
    """``rfc822; addr``, or RFC 6533's ``utf-8; addr`` for an internationalised address."""
    address = " ".join(_one_line(address).split()).removeprefix("<").removesuffix(">")
    if address.isascii():
        return f"rfc822; {address}"
    return f"utf-8; {_ascii_field_text(address)}"


def _fold(name: str, value: str) -> list[str]:
    """``Name: value`` as folded lines: broken at spaces near 76 octets where there are any,
    and (for a word longer than a line allows) inside the word, so no line exceeds 998."""
    words = value.split(" ")
    lines: list[str] = []
    current = f"{name}:"
    for word in words:
        while len(word) > MAX_LINE - 2:  # a space and the word alone must fit on a line
            if current.strip():
                lines.append(current)
                current = ""
            lines.append(" " + word[: MAX_LINE - 2])
            word = word[MAX_LINE - 2 :]
        if len(current) + 1 + len(word) > _FOLD_AT and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    if current.strip():
        lines.append(current)
    return lines


def _lines(lines: Sequence[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _explain(status: str) -> str:
    """What an enhanced status code means, in plain language."""
    subject_detail = status.split(".", 1)[-1]
    explanations = {
        "1.1": "the address does not exist there",
        "1.2": "the recipient's domain does not exist or accepts no mail",
        "1.3": "the address is not valid",
        "1.6": "the mailbox has moved",
        "1.10": "the domain does not accept mail (null MX)",
        "2.1": "the mailbox is disabled",
        "2.2": "the mailbox is full",
        "2.3": "the message is larger than the recipient accepts",
        "3.4": "the message is larger than the server accepts",
        "4.1": "no mail server for the domain answered",
        "4.2": "the connection to the mail server broke off",
        "4.4": "no mail server could be found for the domain",
        "4.7": "delivery took too long and the message expired",
        "5.3": "the message had too many recipients",
        "7.1": "the receiving server refused the message (policy or blocklist)",
        "7.26": "the receiving server refused the message because it failed authentication",
    }
    if subject_detail in explanations:
        return explanations[subject_detail]
    if subject_detail.startswith("7."):
        return "the receiving server refused the message for security or policy reasons"
    if status.startswith("4"):
        return "the receiving server reported a temporary problem"
    return "the receiving server rejected the message"


def _status_code(recipient: DsnRecipient, action: str) -> str:
    found = _STATUS.fullmatch(recipient.status.strip()) or _STATUS.search(recipient.diagnostic)
    if found:
        return found.group(0)
    return "5.0.0" if action == "failed" else "4.0.0"


def _human_report(
    host: str,
    failures: Sequence[DsnRecipient],
    action: str,
    arrival_date: datetime,
    note: str,
) -> str:
    arrived = format_datetime(_aware(arrival_date))
    if action == "failed":
        lead = (
            f"This is the mail system at {host}. Your message (received {arrived}) could not be "
            "delivered to the recipients below. This is a permanent failure: the message will "
            "not be retried."
        )
    else:
        lead = (
            f"This is the mail system at {host}. Your message (received {arrived}) has not yet "
            "been delivered to the recipients below. It is still being retried; you do not need "
            "to send it again."
        )
    paragraphs = [lead]
    for failure in failures:
        recipient = " ".join(_one_line(failure.recipient).split())
        status = _status_code(failure, action)
        lines = [f"<{recipient}>: {_explain(status)}."]
        if failure.remote_mta:
            lines.append(f"    Server: {' '.join(_one_line(failure.remote_mta).split())}")
        if failure.diagnostic.strip():
            lines.append(f"    It said: {' '.join(_one_line(failure.diagnostic).split())}")
        if action == "delayed" and failure.will_retry_until is not None:
            until = format_datetime(_aware(failure.will_retry_until))
            lines.append(f"    Retries continue until {until}.")
        paragraphs.append("\n".join(lines))
    if note:
        paragraphs.append(note)
    wrapped = []
    for paragraph in paragraphs:
        wrapped.append(
            "\n".join(
                textwrap.fill(
                    line,
                    width=_FOLD_AT,
                    subsequent_indent="      " if line.startswith("    ") else "",
                    break_on_hyphens=False,
                )
                for line in paragraph.split("\n")
            )
        )
    return "\n\n".join(wrapped) + "\n"


def _text_body(text: str) -> tuple[bytes, str]:
    """The human part's bytes (CRLF lines) and its transfer encoding."""
    if text.isascii():
        return text.replace("\n", "\r\n").encode("ascii"), "7bit"
    encoded = quopri.encodestring(text.replace("\n", "\r\n").encode("utf-8"))
    return re.sub(rb"\r?\n", b"\r\n", encoded), "quoted-printable"


def _delivery_status(
    host: str,
    failures: Sequence[DsnRecipient],
    action: str,
    arrival_date: datetime,
    envelope_id: str | None,
    queue_id: str | None,
) -> str:
    message_fields: list[str] = []
    if envelope_id:
        # ENVID is xtext (RFC 3461 4): printable ASCII without spaces; anything else is dropped.
        message_fields += _fold("Original-Envelope-Id", re.sub(r"[^!-~]", "", envelope_id))
    message_fields += _fold("Reporting-MTA", f"dns; {host}")
    if queue_id:
        message_fields += _fold("X-Postwise-Queue-Id", _ascii_field_text(queue_id))
    message_fields.append(f"Arrival-Date: {format_datetime(_aware(arrival_date))}")
    blocks = ["\r\n".join(message_fields)]
    for failure in failures:
        fields: list[str] = []
        if failure.original_recipient:
            fields += _fold("Original-Recipient", _address_field(failure.original_recipient))
        fields += _fold("Final-Recipient", _address_field(failure.recipient))
        fields.append(f"Action: {action}")
        fields.append(f"Status: {_status_code(failure, action)}")
        if failure.remote_mta:
            fields += _fold("Remote-MTA", f"dns; {_hostname(failure.remote_mta)}")
        if failure.diagnostic.strip():
            fields += _fold("Diagnostic-Code", f"smtp; {_ascii_field_text(failure.diagnostic)}")
        fields.append(f"Last-Attempt-Date: {format_datetime(_aware(failure.last_attempt))}")
        if action == "delayed" and failure.will_retry_until is not None:
            until = format_datetime(_aware(failure.will_retry_until))
            fields.append(f"Will-Retry-Until: {until}")
        blocks.append("\r\n".join(fields))
    return "\r\n\r\n".join(blocks) + "\r\n"


def _crlf(data: bytes) -> bytes:
    """Every line ending (CRLF, bare LF, bare CR) as CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


def _header_block(original: bytes) -> bytes:
    """The original's header fields, cleaned to travel over SMTP: CRLF line endings, no NUL,
    lines over 998 octets folded; lines before the body that are not header fields dropped."""
    normalised = _crlf(original.replace(b"\x00", b""))
    head = normalised.split(b"\r\n\r\n", 1)[0]
    kept: list[bytes] = []
    for line in head.split(b"\r\n"):
        if _HEADER_LINE.match(line) or (kept and line[:1] in (b" ", b"\t")):
            while len(line) > MAX_LINE:
                kept.append(line[:MAX_LINE])
                line = b" " + line[MAX_LINE:]
            kept.append(line)
        elif not kept:
            break  # no header fields at the top: the original has none to return
    return b"".join(line + b"\r\n" for line in kept)


def _returned_part(
    original: bytes, headers_only: bool, limit: int
) -> tuple[bytes | None, str, str]:
    """(the part's body or None, its content type, a note for the human part)."""
    note = ""
    if not headers_only and len(original) <= limit:
        whole = _crlf(original)
        if b"\x00" not in whole and all(len(line) <= MAX_LINE for line in whole.split(b"\r\n")):
            return whole, "message/rfc822", ""
        note = (
            "Your message could not be returned intact (it has lines longer than 998 octets or "
            "NUL bytes, which mail cannot carry); only its headers are attached."
        )
    elif not headers_only:
        note = f"Your message is larger than {limit} bytes, so only its headers are attached."
    headers = _header_block(original)
    if not headers:
        return None, "", (note + " " if note else "") + "The message had no headers to return."
    return headers, "text/rfc822-headers", note


def _boundary(body: bytes) -> str:
    while True:
        boundary = f"=_postwise_dsn_{uuid.uuid4().hex}"
        if boundary.encode("ascii") not in body:
            return boundary
