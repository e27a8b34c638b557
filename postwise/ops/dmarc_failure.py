"""DMARC failure (forensic) reports -> :class:`FailureReport`.

Two shapes are read: ARF reports (RFC 6591: a ``message/feedback-report`` part with
``Feedback-Type: auth-failure``, plus the failed message or its headers), and the plain-text
report Exim's DMARC module sends (``Sender Domain:`` / ``Sender IP Address:`` lines, then a copy
of the headers). Only the failed message's headers are kept, never its body.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.policy
import hashlib
import ipaddress
import quopri
import re
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.parser import Parser
from email.utils import parseaddr, parsedate_to_datetime

from postwise.ops.dmarc_types import FailureReport, ReportError

MAX_SAMPLE_HEADER_CHARS = 100_000
MAX_DOMAIN_CHARS = 255

# [ \t], not \s: \s would match newlines and backtrack over every blank line (quadratic).
_EXIM_FIELD = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]{0,40}?):[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # NUL cannot even be stored
_EXIM_HEADERS_MARK = re.compile(r"^-+ This is a copy of the headers.*$", re.MULTILINE)


def _part_text(part: email.message.Message) -> str:
    """The decoded text of a ``message/*`` or ``text/*`` part, whatever the email package made
    of it (it parses ``message/*`` bodies as nested messages, even base64-encoded ones)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # Rebuilt from the raw values: Message.as_string() refolds headers and can raise on
        # hostile ones.
        raw = "".join(
            "".join(f"{key}: {value}\n" for key, value in inner.raw_items())
            + "\n"
            + (body if isinstance(body := inner.get_payload(), str) else "")
            for inner in payload
            if isinstance(inner, email.message.Message)
        )
    else:
        raw = str(payload)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    data = raw.encode("utf-8", "surrogateescape")
    try:
        if encoding == "base64":
            data = base64.b64decode(b"".join(data.split()))
        elif encoding == "quoted-printable":
            data = quopri.decodestring(data)
    except (binascii.Error, ValueError):
        pass  # left as it came: the field reader below finds nothing and says so
    return data.decode("utf-8", "replace")


def _unfold(value: str) -> str:
    return " ".join(_CONTROL.sub("", value).split())


def _fields(text: str) -> list[tuple[str, str]]:
    parsed = Parser(policy=email.policy.compat32).parsestr(text.lstrip("\r\n"), headersonly=True)
    return [(key.lower(), _unfold(str(value))) for key, value in parsed.items()]


def _first(fields: list[tuple[str, str]], name: str) -> str | None:
    for key, value in fields:
        if key == name and value:
            return value
    return None


def _all(fields: list[tuple[str, str]], name: str) -> tuple[str, ...]:
    return tuple(value for key, value in fields if key == name and value)


def _address(value: str | None) -> str | None:
    if not value:
        return None
    address = parseaddr(value)[1] or value.strip("<> ")
    return address.lower() or None


def _ip(value: str | None, name: str, where: str) -> str | None:
    if value is None:
        return None
    text = value.strip("[] ")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ReportError(name, f"{where} {value!r} is not an IP address") from None
    if "%" in text:
        raise ReportError(name, f"{where} {value!r} is a scoped address")
    return str(address)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rpartition("@")[2].strip().lower() or None


def _sample(part: email.message.Message | None) -> tuple[str | None, bool, dict[str, str]]:
    """(headers as text, headers only?, a few headers by lower-case name) of the failed
    message the report carries."""
    if part is None:
        return None, True, {}
    ctype = part.get_content_type()
    if ctype == "text/rfc822-headers":
        text = _part_text(part)
        headers_only = True
    else:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, email.message.Message):
            return None, True, {}
        lines = [f"{key}: {value}" for key, value in inner.raw_items()]
        text = "\n".join(lines)
        body = inner.get_payload()
        headers_only = not body
    text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()[:MAX_SAMPLE_HEADER_CHARS]
    return text or None, headers_only, _picked(text)


def _picked(headers: str) -> dict[str, str]:
    """The first Message-ID, Subject and From of a header block."""
    picked: dict[str, str] = {}
    for key, value in _fields(headers + "\n\n"):
        if key in _SAMPLE_HEADERS:
            picked.setdefault(key, value)
    return picked


_SAMPLE_HEADERS = ("message-id", "subject", "from")


def _digest(*parts: str | None) -> str:
    normalized = "\n\x00\n".join(
        "\n".join(line.rstrip() for line in (p or "").replace("\r\n", "\n").split("\n")).strip()
        for p in parts
    )
    return hashlib.sha256(normalized.encode("utf-8", "surrogateescape")).hexdigest()


def _decoded_header(value: str | None) -> str | None:
    """RFC 2047 words decoded; the value as it came when they cannot be."""
    if not value:
        return None
    try:
        decoded = str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        decoded = value
    return _CONTROL.sub("", decoded).strip() or None


def parse_arf(
    arf_part: email.message.Message, sample_part: email.message.Message | None, name: str
) -> FailureReport:
    """Read an ARF report's ``message/feedback-report`` part and its sample. Raises
    :class:`ReportError` when it is not an ``auth-failure`` report or names no domain."""
    arf_text = _part_text(arf_part)
    fields = _fields(arf_text + "\n\n")
    feedback_type = (_first(fields, "feedback-type") or "").lower()
    if not feedback_type:
        raise ReportError(name, "the message/feedback-report part has no Feedback-Type field")
    if feedback_type != "auth-failure":
        raise ReportError(
            name,
            f"an ARF report of Feedback-Type {feedback_type!r}, not a DMARC failure report "
            "('auth-failure')",
        )
    sample_text, headers_only, sample = _sample(sample_part)
    header_from = _address(sample.get("from"))
    reported_domain = (_first(fields, "reported-domain") or "").lower() or _domain_of(header_from)
    notes: tuple[str, ...] = ()
    if not reported_domain:
        raise ReportError(name, "no Reported-Domain field and no From address in the sample")
    if len(reported_domain) > MAX_DOMAIN_CHARS:
        raise ReportError(name, f"Reported-Domain is over {MAX_DOMAIN_CHARS} characters long")
    if _first(fields, "reported-domain") is None:
        notes = (f"no Reported-Domain field: domain {reported_domain} taken from the sample",)
    auth_failure = tuple(
        item.strip().lower()
        for value in _all(fields, "auth-failure")
        for item in value.split(",")
        if item.strip()
    )
    if not auth_failure:  # RFC 6591 requires it; a report sent to a DMARC ruf address is one
        auth_failure = ("dmarc",)
        notes += ("no Auth-Failure field: taken as a DMARC failure",)
    return FailureReport(
        feedback_type=feedback_type,
        reported_domain=reported_domain,
        content_sha256=_digest(arf_text, sample_text),
        source_ip=_ip(_first(fields, "source-ip"), name, "Source-IP"),
        arrival_date=_date(_first(fields, "arrival-date")),
        original_mail_from=_address(_first(fields, "original-mail-from")),
        original_rcpt_to=tuple(
            a for v in _all(fields, "original-rcpt-to") if (a := _address(v)) is not None
        ),
        original_envelope_id=_first(fields, "original-envelope-id"),
        auth_failure=auth_failure,
        authentication_results=_first(fields, "authentication-results"),
        delivery_result=(_first(fields, "delivery-result") or "").lower() or None,
        dkim_domain=_lower(_first(fields, "dkim-domain")),
        dkim_selector=_first(fields, "dkim-selector"),
        spf_dns=_first(fields, "spf-dns"),
        identity_alignment=_lower(_first(fields, "identity-alignment")),
        user_agent=_first(fields, "user-agent"),
        version=_first(fields, "version"),
        message_id=sample.get("message-id") or _first(fields, "message-id"),
        subject=_decoded_header(sample.get("subject")),
        header_from=header_from,
        sample_headers=sample_text,
        sample_headers_only=headers_only,
        notes=notes,
    )


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def looks_like_plain_text_failure(text: str) -> bool:
    """Exim's plain-text DMARC failure report: 'Sender Domain:' and 'Sender IP Address:'."""
    keys = {match.group(1).strip().lower() for match in _EXIM_FIELD.finditer(text[:20_000])}
    return {"sender domain", "sender ip address"} <= keys


def parse_plain_text_failure(text: str, name: str) -> FailureReport:
    """Read a plain-text failure report (no ARF part). Raises :class:`ReportError` when the
    domain or the IP address is missing or malformed."""
    mark = _EXIM_HEADERS_MARK.search(text)
    summary = text[: mark.start()] if mark else text
    values: dict[str, str] = {}
    for match in _EXIM_FIELD.finditer(summary):
        values.setdefault(match.group(1).strip().lower(), _CONTROL.sub("", match.group(2)))
    domain = values.get("sender domain", "").strip().lower()
    if not domain:
        raise ReportError(name, "plain-text failure report without a Sender Domain")
    if len(domain) > MAX_DOMAIN_CHARS:
        raise ReportError(name, f"Sender Domain is over {MAX_DOMAIN_CHARS} characters long")
    headers = text[mark.end() :].strip("\r\n").replace("\r\n", "\n") if mark else ""
    headers = _CONTROL.sub("", headers).strip()[:MAX_SAMPLE_HEADER_CHARS]
    sample = _picked(headers)
    aligned = [
        mechanism
        for mechanism in ("dkim", "spf")
        if values.get(f"{mechanism} alignment", "").strip().lower() in ("yes", "pass", "true")
    ]
    return FailureReport(
        feedback_type="auth-failure",
        reported_domain=domain,
        content_sha256=_digest(summary, headers),
        source_ip=_ip(values.get("sender ip address"), name, "Sender IP Address"),
        arrival_date=_date(values.get("received date")),
        auth_failure=("dmarc",),
        identity_alignment=",".join(aligned) or "none",
        message_id=sample.get("message-id"),
        subject=_decoded_header(sample.get("subject")),
        header_from=_address(sample.get("from")),
        sample_headers=headers or None,
        sample_headers_only=True,
        notes=("plain-text failure report without an ARF part",)
        + ((f"DMARC Results: {values['dmarc results']}",) if values.get("dmarc results") else ()),
    )
