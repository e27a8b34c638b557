"""Bounce messages -> one :class:`BounceRecord` per failed recipient.

Reads RFC 3464 delivery status notifications (``message/delivery-status``), ARF complaints
(:mod:`postwise.outbound.complaints`), auto-replies, and the human-readable reports of MTAs that
send no DSN (qmail, Exim, Sendmail, providers): a report in a known engine's layout is read by
:mod:`postwise.outbound.bounce_engines` (each recipient's own reply, status, sentence and refused
command); any other report's recipients, codes and diagnostic text are found with heuristics.
The reason comes from the rules
(:mod:`postwise.outbound.bounce_rules`) unless a classifier (:mod:`postwise.outbound.bounce_model`)
is given. Never raises: input that is not a bounce gives an empty list.

:func:`classify_smtp_reply` classifies one SMTP reply (the delivery engine's view) with the
shipped model and the rules, loaded once.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from postwise.outbound.bounce_engines import (
    ADDRESS,
    PASS_THROUGH_ENGINES,
    EngineFinding,
    read_report,
)
from postwise.outbound.bounce_rules import PASS_THROUGH_MARKER, is_hard, match_reply

ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
REPLY = re.compile(r"(?<![\d.#-])([245][0-7]\d)(?:[ -]|$)", re.MULTILINE)
# Where a returned copy of the original message begins in a plain-text report.
ORIGINAL_MARKERS = re.compile(
    r"^(?:-+ ?(?:below this line is a copy|original message|this is a copy|the (?:original|"
    r"header)|returned message|undelivered message|message header)|content-type: message/"
    r"|------ this is a copy of the message|received: |return-path: )",
    re.IGNORECASE | re.MULTILINE,
)
NOT_RECIPIENTS = re.compile(
    r"^(mailer-daemon|postmaster|double-bounce|bounce|noreply|no-reply)", re.IGNORECASE
)
# Message-ids (also Sendmail's "<date-stamp>.<queue id>@host"), VERP and tracking addresses
# that reports quote next to the recipients.
NOT_MAILBOX = re.compile(r"^([^@]*=[^@]*|[\d.a-f]{16,}|[\d.]{10,}|\d{12}\.[a-z0-9]+)@")
# The recipient Sisimai reports for an ARF report that names none.
UNDISCLOSED_RECIPIENT = "undisclosed-recipient-in-headers@libsisimai.org.invalid"
MAX_TEXT = 20000
# The first field of a delivery-status part that ended up inside a text part.
_EMBEDDED_STATUS = re.compile(
    r"^(?:reporting-mta|original-recipient|final-recipient):[ \t]*\S", re.IGNORECASE | re.MULTILINE
)


# An Amazon SES complaint notification (SNS JSON, "notificationType": "Complaint"): the
# complained recipients and the feedback type, read with patterns because MTAs wrap the line.
_SES_COMPLAINT = re.compile(r'"notificationType"\s*:\s*"Complaint"', re.IGNORECASE)
_SES_COMPLAINED = re.compile(r'"complainedRecipients"\s*:\s*\[(.*?)\]', re.DOTALL)
_SES_FEEDBACK_TYPE = re.compile(r'"complaintFeedbackType"\s*:\s*"([\w-]+)"')


@dataclass(frozen=True)
class BounceRecord:
    """One failed (or reported) recipient of a bounce, with the classification."""

    recipient: str
    reason: str
    hard: bool
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    action: str = ""
    feedback_type: str = ""
    source: str = ""  # how the reason was decided: text, status, reply, model, none, ...
    note: str = ""


# A reason classifier: (reply code, enhanced status, diagnostic text, the whole report's
# text) -> (reason, how it was decided).
ReasonClassifier = Callable[[str, str, str, str], tuple[str, str]]


def _rules(code: str, enhanced: str, text: str, context: str) -> tuple[str, str]:
    found = match_reply(code, enhanced, text, context)
    return found.reason, found.source


@functools.lru_cache(maxsize=4)
def _loaded_classifier(folder: Path) -> ReasonClassifier:
    """The model in ``folder`` combined with the rules, loaded once per folder; the rules
    alone when the folder holds no usable model (a missing model must not stop delivery)."""
    from postwise.core.errors import ModelError
    from postwise.outbound.bounce_model import BounceModel

    try:
        return BounceModel.load(folder).classify
    except ModelError:
        return _rules


def classify_smtp_reply(
    code: str | int | None, enhanced: str | None, text: str | None, model_path: Path | None = None
) -> tuple[str, bool]:
    """(Sisimai reason, hard bounce) of one SMTP reply, as the delivery engine sees it.

    Uses the shipped model combined with the rules (the ``bounce_model_path`` setting, or
    ``model_path``), loaded once and cached; falls back to the rules alone when no model can
    be loaded. Never raises on odd input: no code, status or text at all gives
    ``("onhold", False)``. ``classify_smtp_reply("550", "5.1.1", "User unknown")`` is
    ``("userunknown", True)``."""
    if model_path is None:
        from postwise.core.settings import get_settings

        model_path = get_settings().resolved_bounce_model_path
    code_text, status = str(code or "").strip(), (enhanced or "").strip()
    diagnostic = " ".join((text or "").split())[:1000]
    if not (code_text or status or diagnostic):
        return "onhold", False  # nothing to read: the model would only guess
    reason, _ = _loaded_classifier(model_path)(code_text, status, diagnostic, diagnostic)
    return reason, is_hard(reason, code_text, status)


def _decode(part: email.message.Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _status_blocks(part: email.message.Message) -> list[dict[str, str]]:
    """The per-message and per-recipient fields of a message/delivery-status part."""
    payload = part.get_payload()
    text = ""
    if isinstance(payload, list):
        text = "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items())
            if isinstance(block, email.message.Message)
            else str(block)
            for block in payload
        )
    elif isinstance(payload, str):
        text = _decode(part) or payload
    return _field_blocks(text)


def _field_blocks(text: str) -> list[dict[str, str]]:
    """RFC 3464 field groups of a delivery-status text, one dict per group."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        for line in re.sub(r"\n[ \t]+", " ", chunk).splitlines():
            name, sep, value = line.partition(":")
            name = name.strip().lower()
            if not (sep and name):
                continue
            if (name == "final-recipient" and name in fields) or (
                name == "original-recipient" and "final-recipient" in fields and "status" in fields
            ):
                # RFC 3464 separates recipients by blank lines; some MTAs write none: a
                # second recipient field starts the next recipient's block
                blocks.append(fields)
                fields = {}
            fields.setdefault(name, " ".join(value.split()))
        if fields:
            blocks.append(fields)
    return blocks


def _address_of(value: str) -> str:
    found = ADDRESS.search(value.split(";", 1)[-1]) or ADDRESS.search(value)
    return found.group(0).strip(".").lower() if found else ""


def _human_text(msg: email.message.Message) -> tuple[str, str, list[dict[str, str]], bool]:
    """(readable report text, the same before the returned original was cut off,
    delivery-status blocks, has a feedback-report part)."""
    texts: list[str] = []
    blocks: list[dict[str, str]] = []
    feedback = False
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks.extend(_status_blocks(part))
        elif ctype == "message/feedback-report":
            feedback = True
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            continue  # the returned original: its addresses are not the failed recipients
        elif part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, email.message.Message))
        elif ctype.startswith("text/") or ctype == "message/delivery-status":
            text = _decode(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)
    whole = text = "\n".join(texts)[:MAX_TEXT]
    if not text.strip() and not blocks and msg.get_content_maintype() == "multipart":
        # a MIME structure the parser could not follow (a boundary parameter on an unfolded
        # line, or a boundary that never occurs in the body): read the body as it is
        body = msg.as_string().replace("\r\n", "\n").partition("\n\n")[2]
        whole = text = body[:MAX_TEXT]
    marker = ORIGINAL_MARKERS.search(text, 80)
    if marker:
        text = text[: marker.start()]
    return text, whole, blocks, feedback


def report_headers(msg: email.message.Message) -> str:
    """A one-line summary of the report's own headers that say which software wrote it
    (From, Subject, X-Mailer, the names of X- headers), put before the report text in the
    classifier's context as ``[report-headers: ...]``; ``""`` when there is nothing to say."""
    parts: list[str] = []
    sender = str(msg.get("From", ""))
    address = ADDRESS.search(sender)
    if address:
        local, _, domain = address.group(0).lower().partition("@")
        parts.append(f"sender={local} domain={domain}")
    display = re.sub(r"<[^>]*>|\S+@\S+|[\"()]", " ", sender).strip()
    if display:
        parts.append(f"display={display}")
    for name in ("Subject", "X-Mailer"):
        value = " ".join(str(msg.get(name, "")).split())[:120]
        if value:
            parts.append(f"{name.lower()}={value}")
    names = sorted({k.lower() for k in msg if k.lower().startswith("x-")})
    if names:
        parts.append("x=" + " ".join(names))
    summary = " ".join(" ".join(parts).replace("[", "(").replace("]", ")").split())
    return f"[report-headers: {summary.lower()}] " if summary else ""


def _codes(text: str) -> tuple[str, str]:
    enhanced = ENHANCED.search(text)
    reply = REPLY.search(text)
    return (reply.group(1) if reply else ""), (enhanced.group(1) if enhanced else "")


def _excluded_addresses(msg: email.message.Message) -> set[str]:
    """The bounce's own sender and addressee (the original sender), and the original
    message's sender: none of them is a failed recipient."""
    excluded: set[str] = set()
    headers = [msg]
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list):
                headers.extend(p for p in payload[:1] if isinstance(p, email.message.Message))
    for message in headers:
        for name in ("From", "Return-Path", "Sender", "To" if message is msg else "Sender"):
            excluded.update(a.lower() for a in ADDRESS.findall(str(message.get(name, ""))))
    return excluded


def _text_recipients(text: str, excluded: set[str]) -> list[tuple[str, str]]:
    """(recipient, the text around it) for each address named in a plain-text report."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    starts: list[tuple[str, int]] = []
    # an address offered as a contact ("please contact <support@...>") is never a recipient,
    # wherever else the report repeats it
    contacts = {
        match.group(0).strip(".").lower()
        for match in ADDRESS.finditer(text)
        if re.search(r"contact\W{0,5}$", text[max(0, match.start() - 12) : match.start()])
    }
    for match in ADDRESS.finditer(text):
        address = match.group(0).strip(".").lower()
        if (
            address in seen
            or address in excluded
            or address in contacts
            or NOT_RECIPIENTS.match(address)
            or NOT_MAILBOX.match(address)
        ):
            continue
        seen.add(address)
        starts.append((address, match.start()))
    for index, (address, start) in enumerate(starts):
        # a recipient's own diagnostic runs until the next recipient is named
        end = starts[index + 1][1] if index + 1 < len(starts) else len(text)
        found.append((address, text[start:end][:1500]))
    return found


def _record(
    recipient: str,
    code: str,
    enhanced: str,
    text: str,
    classify: ReasonClassifier,
    context: str = "",
    **extra: str,
) -> BounceRecord:
    diagnostic = " ".join(text.split())[:1000]
    reason, source = classify(code, enhanced, diagnostic, " ".join(context.split())[:3000])
    return BounceRecord(
        recipient=recipient,
        reason=reason,
        hard=is_hard(reason, code, enhanced),
        status=enhanced,
        reply_code=code,
        diagnostic=diagnostic,
        source=source,
        note=(
            f"no rule matched reply {code or '-'} / status {enhanced or '-'}; classified as "
            f"{reason!r}"
            if source == "none"
            else ""
        ),
        **extra,
    )


def _from_dsn(
    blocks: list[dict[str, str]], text: str, classify: ReasonClassifier, headers: str = ""
) -> list[BounceRecord]:
    records = []
    # where a DSN gives no Diagnostic-Code, the readable part's lines about the recipient
    segments = dict(_text_recipients(text, set()))
    for block in blocks:
        recipient = _address_of(
            block.get("final-recipient", "") or block.get("original-recipient", "")
        )
        if not recipient:
            continue
        action = block.get("action", "").lower()
        diagnostic_field = block.get("diagnostic-code", "")
        diagnostic_type = diagnostic_field.split(";", 1)[0] if ";" in diagnostic_field else ""
        diagnostic = diagnostic_field.split(";", 1)[-1].strip()
        status = block.get("status", "")
        enhanced = ENHANCED.search(status)
        code, text_enhanced = _codes(diagnostic)
        if diagnostic_type.strip().lower() == "x-unix":
            # RFC 3464 2.3.6: the exit status of a local delivery program, not an SMTP reply
            code, diagnostic = "", f"local mailer program failed: {diagnostic}"
        enhanced_code = enhanced.group(1) if enhanced else text_enhanced
        segment = segments.get(recipient, "")
        if not diagnostic and segment and (_codes(segment) != ("", "")):
            code, text_enhanced = _codes(segment)
            enhanced_code = enhanced.group(1) if enhanced else text_enhanced
        if enhanced_code[1:] == ".0.0" and text_enhanced and text_enhanced[1:] != ".0.0":
            enhanced_code = text_enhanced  # a generic Status: the reply says more (as Sisimai)
        # RFC 3464 fields may carry an RFC 5322 comment: "Status: 4.0.0 (host name lookup
        # failure)" is the only diagnostic of a recipient without a Diagnostic-Code
        comment = re.search(r"\(([^()]*)\)", status)
        detail = (
            diagnostic
            or (segment if code or text_enhanced else "")
            or (comment.group(1) if comment else "")
            or text
        )
        if action == "delivered" or action == "relayed" or action == "expanded":
            records.append(
                BounceRecord(
                    recipient,
                    "delivered",
                    False,
                    enhanced_code,
                    code,
                    detail[:1000],
                    action,
                    source="action",
                )
            )
            continue
        records.append(
            _record(recipient, code, enhanced_code, detail, classify, headers + text, action=action)
        )
    return records


def _from_findings(
    findings: list[EngineFinding],
    engine: str,
    classify: ReasonClassifier,
    context: str,
    fallback: str,
) -> list[BounceRecord]:
    """One record per recipient an engine-specific reader found (:mod:`bounce_engines`): the
    recipient's own sentence is the diagnostic; the refused command, when the engine names it
    elsewhere than in that sentence, goes to the front of the context as
    ``[failed-command: in reply to X command]``; a layout that adds nothing to the remote
    server's words (:data:`PASS_THROUGH_ENGINES`) is marked with ``PASS_THROUGH_MARKER``. A
    finding without a sentence gets ``fallback`` (the report text)."""
    records = []
    seen: set[str] = set()
    for finding in findings:
        if finding.recipient in seen:
            continue
        seen.add(finding.recipient)
        marker = (
            f"[failed-command: in reply to {finding.command} command] " if finding.command else ""
        )
        if engine in PASS_THROUGH_ENGINES:
            marker += f"{PASS_THROUGH_MARKER} "
        records.append(
            _record(
                finding.recipient,
                finding.reply_code,
                finding.status,
                finding.diagnostic or fallback,
                classify,
                _with_marker(context, marker),
            )
        )
    return records


def _with_marker(context: str, marker: str) -> str:
    """``marker`` after the report-headers summary that starts a classifier context."""
    if not marker:
        return context
    if context.startswith("[report-headers: "):
        end = context.find("] ") + 2
        return context[:end] + marker + context[end:]
    return marker + context


def _ses_complaint(text: str) -> list[BounceRecord]:
    """``feedback`` records of an Amazon SES complaint notification (its JSON body, as SES
    documents it: ``complainedRecipients`` and ``complaintFeedbackType``); ``[]`` otherwise."""
    if not _SES_COMPLAINT.search(text):
        return []
    listed = _SES_COMPLAINED.search(text)
    if not listed:
        return []
    joined = re.sub(r"!?\n ?", "", listed.group(1))  # lines wrapped by a relaying MTA
    kind = _SES_FEEDBACK_TYPE.search(text)
    feedback_type = kind.group(1) if kind else ""
    return [
        BounceRecord(
            address.lower(),
            "feedback",
            False,
            feedback_type=feedback_type,
            source="ses-complaint",
            diagnostic=feedback_type,
        )
        for address in ADDRESS.findall(joined)
    ]


def _is_auto_reply(msg: email.message.Message) -> bool:
    auto = str(msg.get("Auto-Submitted", "")).lower()
    subject = str(msg.get("Subject", "")).lower()
    return auto.startswith("auto-replied") or bool(
        re.search(
            r"out of (the )?office|auto(matic)?[- ]?(reply|response)|vacation|abwesen", subject
        )
    )


def parse_bounce(raw: bytes, classify: ReasonClassifier | None = None) -> list[BounceRecord]:
    """The failed recipients of a bounce message, each classified. Never raises.

    ``classify`` decides the reason from (reply code, enhanced status, diagnostic text); the
    rules by default. A message that is not a bounce gives an empty list; a bounce whose
    recipient cannot be found gives one record with an empty recipient and a note."""
    try:
        return _parse(raw, classify or _rules)
    except Exception as error:  # a parser for hostile input: record, never raise
        return [BounceRecord("", "undefined", False, note=f"unparseable bounce ({error!r})")]


def _forwarded_report(msg: email.message.Message) -> bytes | None:
    """The attached message of a report that only forwards another MTA's DSN (the outer
    report names no recipient; the attached ``multipart/report`` does)."""
    for part in msg.walk():
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if (
            isinstance(inner, email.message.Message)
            and inner.get_content_type() == "multipart/report"
            and "delivery-status" in str(inner.get("Content-Type", "")).lower()
        ):
            return inner.as_bytes()
    return None


def _parse(raw: bytes, classify: ReasonClassifier, depth: int = 0) -> list[BounceRecord]:
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        return []
    msg = email.message_from_bytes(bytes(raw), policy=email.policy.compat32)
    records = _parse_message(msg, bytes(raw), classify)
    if depth == 0 and (not records or not any(r.recipient for r in records)):
        inner = _forwarded_report(msg)
        if inner is not None:
            forwarded = _parse(inner, classify, depth + 1)
            if any(r.recipient for r in forwarded):
                return forwarded
    return records


def _parse_message(
    msg: email.message.Message, raw: bytes, classify: ReasonClassifier
) -> list[BounceRecord]:
    text, whole, blocks, feedback = _human_text(msg)
    embedded = _EMBEDDED_STATUS.search(whole)
    if not blocks and embedded:
        # a delivery-status part the MIME parser could not separate (a broken boundary)
        # was read as text: its fields are still RFC 3464's
        blocks = _field_blocks(whole[embedded.start() :])
        text = text[: embedded.start()] if embedded.start() < len(text) else text
    headers = report_headers(msg)
    if feedback or "feedback-report" in str(msg.get("Content-Type", "")).lower():
        from postwise.outbound.complaints import parse_arf

        complaint = parse_arf(bytes(raw))
        if complaint is not None:
            return [
                BounceRecord(
                    r,
                    "feedback",
                    False,
                    feedback_type=complaint.feedback_type,
                    source="arf",
                    diagnostic=complaint.feedback_type,
                )
                for r in complaint.recipients or [UNDISCLOSED_RECIPIENT]
            ]
    if blocks:
        records = _from_dsn(blocks, text, classify, headers)
        if records:
            return records
    complaint_records = _ses_complaint(whole)
    if complaint_records:
        return complaint_records
    excluded = _excluded_addresses(msg)
    code, enhanced = _codes(text)
    subject = str(msg.get("Subject", "")) + " " + str(msg.get("From", ""))
    looks_like_bounce = bool(code or enhanced) or bool(
        re.search(
            r"undeliver|delivery (status|failure|has failed)|returned mail|failure notice|"
            r"non[- ]?delivery|could not be delivered|mail delivery|bounce|"
            r"delivery notification|not delivered|warning",
            subject + " " + text[:600],
            re.IGNORECASE,
        )
    )
    if _is_auto_reply(msg) and not blocks and not looks_like_bounce:
        sender = _address_of(str(msg.get("From", "")))
        return [
            BounceRecord(sender, "vacation", False, source="auto-reply", diagnostic=subject[:200])
        ]
    if not looks_like_bounce:
        return []
    engine, findings = read_report(text, excluded)
    if findings:
        context = headers + subject + "\n" + text
        return _from_findings(findings, engine, classify, context, text)
    recipients = _text_recipients(text, excluded)
    if not recipients and whole != text:
        # a report quoting another report (a forwarded bounce) names the recipient after what
        # looked like the start of the returned original
        recipients = _text_recipients(whole[: MAX_TEXT // 2], excluded)
    if not recipients:
        # some reports go back to the failed address itself: its To is then the recipient
        addressed = {a.lower() for a in ADDRESS.findall(str(msg.get("To", "")))}
        recipients = _text_recipients(text, excluded - addressed)
    if not recipients:
        for name in ("X-Failed-Recipients", "Original-Recipient", "To"):
            address = _address_of(str(msg.get(name, "")))
            if address and name != "To":
                recipients = [(address, text)]
                break
    if not recipients:
        record = _record(
            "", code, enhanced, subject + "\n" + text, classify, headers + subject + text
        )
        return [replace(record, note="no recipient address found in the report")]
    failed = str(msg.get("X-Failed-Recipients", ""))
    if failed:
        listed = [a.lower() for a in ADDRESS.findall(failed)]
        ordered = [r for r in recipients if r[0] in listed]
        recipients = ordered or [(a, text) for a in listed]
    records = []
    for address, context in recipients:
        own_code, own_enhanced = _codes(context)
        records.append(
            _record(
                address,
                own_code or code,
                own_enhanced or enhanced,
                context if (own_code or own_enhanced) else text,
                classify,
                headers + subject + "\n" + text,
            )
        )
    return records
