"""ARF feedback-loop complaints (RFC 5965) -> :class:`Complaint`.

Tolerant: fields are read from the ``message/feedback-report`` part, or, for reports that put
them elsewhere, from any text part; the original message's headers come from the
``message/rfc822`` or ``text/rfc822-headers`` part. :func:`parse_arf` never raises; it returns
None for a message that is not a feedback report.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re
from dataclasses import dataclass, field

_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_REPORT_FIELDS = (
    "feedback-type",
    "user-agent",
    "version",
    "original-mail-from",
    "original-rcpt-to",
    "original-envelope-id",
    "arrival-date",
    "received-date",
    "source-ip",
    "reporting-mta",
    "reported-domain",
    "reported-uri",
    "removal-recipient",
    "authentication-results",
    "auth-failure",
    "incidents",
)


@dataclass(frozen=True)
class Complaint:
    """One feedback report. Multi-valued fields (RFC 5965 allows repeats) are tuples."""

    feedback_type: str
    user_agent: str = ""
    version: str = ""
    original_mail_from: str = ""
    original_rcpt_to: tuple[str, ...] = ()
    arrival_date: str = ""
    source_ip: str = ""
    reporting_mta: str = ""
    reported_domain: tuple[str, ...] = ()
    reported_uri: tuple[str, ...] = ()
    auth_failure: str = ""
    authentication_results: tuple[str, ...] = ()
    original_envelope_id: str = ""
    original_message_id: str = ""
    original_headers: dict[str, str] = field(default_factory=dict)

    @property
    def recipients(self) -> list[str]:
        """Who complained: Original-Rcpt-To, else the To of the original message."""
        found = [a.lower() for value in self.original_rcpt_to for a in _ADDRESS.findall(value)]
        if not found:
            found = [a.lower() for a in _ADDRESS.findall(self.original_headers.get("to", ""))]
        return list(dict.fromkeys(found))


def _fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in re.sub(r"\r?\n[ \t]+", " ", text).splitlines():
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if sep and key in _REPORT_FIELDS:
            fields.setdefault(key, []).append(" ".join(value.split()))
    return fields


def _payload_text(part: email.message.Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(
            p.as_string() if isinstance(p, email.message.Message) else str(p) for p in payload
        )
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode(part.get_content_charset() or "utf-8", errors="replace")
    return str(payload)


def _headers_of(text: str) -> dict[str, str]:
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    parsed = email.message_from_string(head + "\n\n", policy=email.policy.compat32)
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        headers.setdefault(name.lower(), " ".join(str(value).split()))
    return headers


def parse_arf(raw: bytes) -> Complaint | None:
    """The feedback report in ``raw``, or None when it holds no Feedback-Type. Never raises."""
    try:
        return _parse(raw)
    except Exception:
        return None


def _parse(raw: bytes) -> Complaint | None:
    msg = email.message_from_bytes(bytes(raw), policy=email.policy.compat32)
    report = ""
    other_text: list[str] = []
    original = ""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            report = _payload_text(part)
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            if not original:
                original = _payload_text(part)
        elif ctype.startswith("text/") and not part.is_multipart():
            other_text.append(_payload_text(part))
    fields = _fields(report) if report else {}
    if "feedback-type" not in fields:
        fields = _fields("\n".join(other_text))
    if "feedback-type" not in fields:
        return None
    original_headers = _headers_of(original) if original else {}

    def one(name: str) -> str:
        return fields.get(name, [""])[0]

    return Complaint(
        feedback_type=one("feedback-type").lower(),
        user_agent=one("user-agent"),
        version=one("version"),
        original_mail_from=one("original-mail-from"),
        original_rcpt_to=tuple(fields.get("original-rcpt-to", fields.get("removal-recipient", []))),
        arrival_date=one("arrival-date") or one("received-date"),
        source_ip=one("source-ip").split("(")[0].strip(),
        reporting_mta=one("reporting-mta").split(";")[-1].strip(),
        reported_domain=tuple(fields.get("reported-domain", [])),
        reported_uri=tuple(fields.get("reported-uri", [])),
        auth_failure=one("auth-failure"),
        authentication_results=tuple(fields.get("authentication-results", [])),
        original_envelope_id=one("original-envelope-id"),
        original_message_id=original_headers.get("message-id", ""),
        original_headers=original_headers,
    )
