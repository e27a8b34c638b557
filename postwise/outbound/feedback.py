"""Feedback received back: an ARF complaint (RFC 5965) or a bounce (a DSN or an MTA's report)
-> events, suppressions and a reputation observation, shared by ``POST /v1/feedback`` and
``postwise feedback ingest``.

Ingestion is idempotent: the event ids derive from the report's bytes, so the same report read
twice records once (and is counted by the reputation monitor once). The original message is
looked up by the reported Message-ID among the queue's messages; when it is not found the
complaint or bounce is still recorded and its recipients suppressed, but no reputation subject
can be charged.

    PostwiseError
    └── FeedbackError   the message is neither a bounce nor a complaint (or names no
                        recipient): nothing was recorded
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from postwise.core.db import OutboundMessageRecord, OutboundRecipientRecord
from postwise.core.errors import PostwiseError
from postwise.core.events import append_event_in
from postwise.outbound.bounces import UNDISCLOSED_RECIPIENT, BounceRecord, parse_bounce
from postwise.outbound.complaints import Complaint, parse_arf
from postwise.outbound.reputation import ReputationMonitor
from postwise.outbound.shaping import ShapingPolicy
from postwise.outbound.suppression import normalise_address, suppress_in

# Feedback types that are reports about the message, not a recipient's complaint about it.
_NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})
_MAILBOX = re.compile(r"^[^\s@<>]{1,64}@[^\s@<>]{1,253}$")
# Bounce reasons that are not delivery failures of a recipient.
_NOT_FAILURES = frozenset({"vacation", "feedback"})
_ORIGINAL_PARTS = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")


class FeedbackError(PostwiseError):
    """A message that is neither a bounce nor a complaint: nothing was recorded."""


class FeedbackDeps(Protocol):
    """What ingestion needs (an :class:`~postwise.services.OutboundServices` has it)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def policy(self) -> ShapingPolicy: ...

    @property
    def reputation(self) -> ReputationMonitor | None: ...


@dataclass(frozen=True, slots=True)
class Original:
    """The queued message a report is about."""

    message_id: str
    pool: str
    sending_domain: str
    provider_key: str


@dataclass(frozen=True)
class FeedbackResult:
    """What one report recorded. ``kind`` is ``complaint``, ``feedback`` (a report that is
    not a complaint, such as ``not-spam``: recorded, nothing suppressed) or ``bounce``;
    ``duplicate`` is True when the same report was ingested before."""

    kind: str
    recipients: tuple[str, ...]
    suppressed: tuple[str, ...]
    original: Original | None = None
    duplicate: bool = False
    reputation_observed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recipients": list(self.recipients),
            "suppressed": list(self.suppressed),
            "original": None
            if self.original is None
            else {
                "id": self.original.message_id,
                "pool": self.original.pool,
                "sending_domain": self.original.sending_domain,
                "provider": self.original.provider_key,
            },
            "duplicate": self.duplicate,
            "reputation_observed": self.reputation_observed,
            "details": self.details,
        }

    def describe(self) -> str:
        """One line for people."""
        if self.duplicate:
            return f"{self.kind} already recorded (same report); nothing new"
        who = ", ".join(self.recipients) or "no recipient named"
        line = f"{self.kind} for {who}"
        if self.suppressed:
            line += f"; suppressed {', '.join(self.suppressed)}"
        if self.original is not None:
            line += f"; original {self.original.message_id} ({self.original.provider_key}, "
            line += f"pool {self.original.pool}, {self.original.sending_domain})"
        else:
            line += "; original not found in the queue"
        return line


def ingest_feedback(raw: bytes, deps: FeedbackDeps, now: datetime | None = None) -> FeedbackResult:
    """Record the complaint or bounce in ``raw``: an event, a suppression of each complained
    or hard-bounced recipient, and (for a complaint whose original is found) a ``complaint``
    observation by the reputation monitor. Raises FeedbackError when ``raw`` is neither a
    bounce nor a complaint, or names no recipient; never raises on malformed bytes otherwise."""
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(bytes(raw)).hexdigest()[:40]
    complaint = parse_arf(bytes(raw))
    if complaint is not None:
        return _ingest_complaint(complaint, digest, deps, now)
    records = parse_bounce(bytes(raw))
    if not records:
        raise FeedbackError("not a bounce or a complaint; nothing recorded")
    failures = [r for r in records if r.reason not in _NOT_FAILURES]
    if not failures:
        raise FeedbackError(
            f"an automatic reply ({records[0].reason}), not a bounce or a complaint; "
            "nothing recorded"
        )
    named = [r for r in failures if _mailbox(r.recipient)]
    if not named:
        note = failures[0].note or "no recipient address found"
        raise FeedbackError(f"a bounce, but {note}; nothing recorded")
    return _ingest_bounce(named, _original_message_id(bytes(raw)), digest, deps, now)


def _mailbox(address: str) -> bool:
    return (
        bool(_MAILBOX.match(address)) and address != UNDISCLOSED_RECIPIENT and address.isprintable()
    )


def _original_message_id(raw: bytes) -> str:
    """The Message-ID of the original returned in a bounce, or ''."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in message.walk():
            if part.get_content_type() not in _ORIGINAL_PARTS:
                continue
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                inner = payload[0]
                if isinstance(inner, email.message.Message):
                    return " ".join(str(inner.get("Message-ID", "")).split())
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                headers = email.message_from_bytes(data, policy=email.policy.compat32)
                return " ".join(str(headers.get("Message-ID", "")).split())
    except Exception:  # hostile bytes: the lookup is optional
        return ""
    return ""


def _find_original(
    connection: Connection, policy: ShapingPolicy, header_message_id: str, recipient: str | None
) -> Original | None:
    """The queued message with ``header_message_id``, and the budget its mail to
    ``recipient`` (else to its first recipient) went through."""
    wanted = header_message_id.strip()
    if not wanted or len(wanted) > 998:
        return None
    bare = wanted.strip("<>")
    candidates = list(dict.fromkeys([wanted, f"<{bare}>", bare]))
    message = connection.execute(
        select(OutboundMessageRecord)
        .where(OutboundMessageRecord.header_message_id.in_(candidates))
        .order_by(OutboundMessageRecord.created_at.desc())
    ).first()
    if message is None:
        return None
    rows = connection.execute(
        select(OutboundRecipientRecord)
        .where(OutboundRecipientRecord.message_id == message.id)
        .order_by(OutboundRecipientRecord.id)
    ).all()
    row = next(
        (r for r in rows if recipient and normalise_address(r.recipient) == recipient),
        rows[0] if rows else None,
    )
    if row is None:
        domain = (recipient or "").rpartition("@")[2] or "unknown"
        provider_key = f"domain:{domain}"
    else:
        # The MX that took the message names the provider, as it did for the delivery.
        provider_key = policy.limits_for(
            row.domain, [row.last_mx] if row.last_mx else []
        ).budget_key
    return Original(message.id, message.pool, message.sending_domain, provider_key)


def _single_recipient(connection: Connection, original: Original) -> str | None:
    rows = connection.execute(
        select(OutboundRecipientRecord.recipient).where(
            OutboundRecipientRecord.message_id == original.message_id
        )
    ).all()
    return normalise_address(rows[0].recipient) if len(rows) == 1 else None


def _ingest_complaint(
    complaint: Complaint, digest: str, deps: FeedbackDeps, now: datetime
) -> FeedbackResult:
    recipients = [normalise_address(r) for r in complaint.recipients if _mailbox(r)]
    is_complaint = complaint.feedback_type not in _NOT_COMPLAINTS
    kind = "complaint" if is_complaint else "feedback"
    with deps.engine.begin() as connection:
        original = _find_original(
            connection,
            deps.policy,
            complaint.original_message_id,
            recipients[0] if recipients else None,
        )
        if not recipients and original is not None:
            # A redacted report about a message sent to one recipient still names them.
            single = _single_recipient(connection, original)
            recipients = [single] if single else []
        details: dict[str, Any] = {
            "feedback_type": complaint.feedback_type,
            "user_agent": complaint.user_agent[:200],
            "reporting_mta": complaint.reporting_mta[:255],
            "source_ip": complaint.source_ip[:64],
            "original_message_id": complaint.original_message_id[:998],
        }
        payload = {
            **details,
            "recipients": recipients,
            "message_id": original.message_id if original else None,
            "provider": original.provider_key if original else None,
            "pool": original.pool if original else None,
            "sending_domain": original.sending_domain if original else None,
            "source": "feedback",
        }
        fresh = append_event_in(connection, f"{kind}:{digest}", kind, payload)
        suppressed: list[str] = []
        if fresh and is_complaint:
            for address in recipients:
                suppress_in(
                    connection,
                    address,
                    f"complaint:{complaint.feedback_type}"[:64],
                    "complaint",
                    {"message_id": original.message_id if original else None},
                )
                suppressed.append(address)
    observed = False
    if fresh and is_complaint and original is not None and deps.reputation is not None:
        deps.reputation.observe(
            "complaint",
            provider_key=original.provider_key,
            pool=original.pool,
            sending_domain=original.sending_domain or "unknown",
            now=now,
        )
        observed = True
    return FeedbackResult(
        kind,
        tuple(recipients),
        tuple(suppressed),
        original,
        duplicate=not fresh,
        reputation_observed=observed,
        details=details,
    )


def _ingest_bounce(
    records: list[BounceRecord],
    original_message_id: str,
    digest: str,
    deps: FeedbackDeps,
    now: datetime,
) -> FeedbackResult:
    recipients = list(dict.fromkeys(normalise_address(r.recipient) for r in records))
    suppressed: list[str] = []
    fresh_any = False
    with deps.engine.begin() as connection:
        original = _find_original(connection, deps.policy, original_message_id, recipients[0])
        for record in records:
            address = normalise_address(record.recipient)
            payload = {
                "recipient": address,
                "reason": record.reason,
                "hard": record.hard,
                "status": record.status[:16],
                "reply_code": record.reply_code[:8],
                "diagnostic": record.diagnostic[:500],
                "action": record.action[:32],
                "message_id": original.message_id if original else None,
                "provider": original.provider_key if original else None,
                "pool": original.pool if original else None,
                "sending_domain": original.sending_domain if original else None,
                "source": "feedback",
                "received_at": now.timestamp(),
            }
            event_id = hashlib.sha256(f"{digest}:{address}".encode()).hexdigest()[:40]
            fresh = append_event_in(connection, f"bounce-report:{event_id}", "bounce", payload)
            fresh_any = fresh_any or fresh
            if fresh and record.hard and address not in suppressed:
                suppress_in(
                    connection,
                    address,
                    record.reason or "hard-bounce",
                    "bounce",
                    {
                        "diagnostic": record.diagnostic[:500],
                        "message_id": original.message_id if original else None,
                    },
                )
                suppressed.append(address)
    hard = sorted({r.recipient for r in records if r.hard})
    return FeedbackResult(
        "bounce",
        tuple(recipients),
        tuple(suppressed),
        original,
        duplicate=not fresh_any,
        details={
            "reasons": {normalise_address(r.recipient): r.reason for r in records},
            "hard": hard,
        },
    )
