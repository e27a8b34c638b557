"""What a DMARC aggregate report, a DMARC failure report and an SMTP TLS report hold, once
parsed: frozen dataclasses with the fields Postwise stores and summarises, and the error every
parser raises on input it refuses.

``ReportError`` sits under :class:`postwise.core.errors.PostwiseError`::

    PostwiseError
    └── ReportError     a file is not a report Postwise can read (names the file and the fault)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from postwise.core.errors import PostwiseError

ReportKind = Literal["aggregate", "failure", "tls"]


class ReportError(PostwiseError):
    """A file (or a part of it: a mail attachment, an archive member) is not a report Postwise
    can read. ``name`` is where the fault is, ``reason`` what is wrong with it."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def content_digest(document: Any) -> str:
    """SHA-256 of a JSON rendering with sorted keys: equal parsed content, equal digest, whatever
    container (XML, gzip, zip, mail) it arrived in."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- aggregate (RUA)


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    """The DMARC record the reporter found for ``domain``. ``None``: the report left it out
    (the RFC defaults — adkim/aspf ``r``, pct 100 — are not filled in)."""

    domain: str
    p: str
    sp: str | None = None
    np: str | None = None
    adkim: str | None = None
    aspf: str | None = None
    pct: int | None = None
    fo: str | None = None
    testing: str | None = None
    discovery_method: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "p": self.p,
            "sp": self.sp,
            "np": self.np,
            "adkim": self.adkim,
            "aspf": self.aspf,
            "pct": self.pct,
            "fo": self.fo,
            "testing": self.testing,
            "discovery_method": self.discovery_method,
        }


@dataclass(frozen=True, slots=True)
class OverrideReason:
    """Why the receiver applied another disposition than the policy asked for."""

    type: str | None
    comment: str | None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "comment": self.comment}


@dataclass(frozen=True, slots=True)
class DkimAuthResult:
    domain: str | None
    selector: str | None
    result: str
    human_result: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "selector": self.selector,
            "result": self.result,
            "human_result": self.human_result,
        }


@dataclass(frozen=True, slots=True)
class SpfAuthResult:
    domain: str | None
    scope: str | None
    result: str
    human_result: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "scope": self.scope,
            "result": self.result,
            "human_result": self.human_result,
        }


@dataclass(frozen=True, slots=True)
class AggregateRecord:
    """One ``<record>``: ``count`` messages from ``source_ip`` with the same identifiers and
    results. ``dkim`` and ``spf`` are the policy-evaluated (aligned) results."""

    source_ip: str
    count: int
    disposition: str
    dkim: str
    spf: str
    header_from: str
    envelope_from: str | None = None
    envelope_to: str | None = None
    reasons: tuple[OverrideReason, ...] = ()
    dkim_results: tuple[DkimAuthResult, ...] = ()
    spf_results: tuple[SpfAuthResult, ...] = ()

    @property
    def dmarc_pass(self) -> bool:
        """DMARC passes when DKIM or SPF passed *aligned* (RFC 7489 section 6.6.2)."""
        return self.dkim == "pass" or self.spf == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "source_ip": self.source_ip,
            "count": self.count,
            "disposition": self.disposition,
            "dkim": self.dkim,
            "spf": self.spf,
            "dmarc": "pass" if self.dmarc_pass else "fail",
            "header_from": self.header_from,
            "envelope_from": self.envelope_from,
            "envelope_to": self.envelope_to,
            "reasons": [r.to_json() for r in self.reasons],
            "dkim_results": [r.to_json() for r in self.dkim_results],
            "spf_results": [r.to_json() for r in self.spf_results],
        }


@dataclass(frozen=True, slots=True)
class AggregateReport:
    """A DMARC aggregate report (RFC 7489 appendix C, or RFC 9990). Stored once per
    (``org_name``, ``report_id``)."""

    org_name: str
    email: str
    report_id: str
    begin: datetime
    end: datetime
    policy: PolicyPublished
    records: tuple[AggregateRecord, ...]
    extra_contact_info: str | None = None
    version: str | None = None
    namespace: str | None = None
    generator: str | None = None
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    kind: ReportKind = field(default="aggregate", init=False)

    @property
    def key(self) -> str:
        return f"{self.org_name}/{self.report_id}"

    @property
    def messages(self) -> int:
        return sum(record.count for record in self.records)

    @property
    def content_sha256(self) -> str:
        return content_digest({k: v for k, v in self.to_json().items() if k != "notes"})

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "org_name": self.org_name,
            "email": self.email,
            "extra_contact_info": self.extra_contact_info,
            "report_id": self.report_id,
            "begin": _iso(self.begin),
            "end": _iso(self.end),
            "version": self.version,
            "namespace": self.namespace,
            "generator": self.generator,
            "errors": list(self.errors),
            "policy_published": self.policy.to_json(),
            "records": [r.to_json() for r in self.records],
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- failure (RUF)


@dataclass(frozen=True, slots=True)
class FailureReport:
    """A DMARC failure (forensic) report: an ARF ``auth-failure`` report (RFC 6591) or a
    plain-text one. Only the *headers* of the reported message are kept (``sample_headers``),
    never its body: it is someone's mail. Stored once per ``content_sha256``."""

    feedback_type: str
    reported_domain: str
    content_sha256: str
    source_ip: str | None = None
    arrival_date: datetime | None = None
    original_mail_from: str | None = None
    original_rcpt_to: tuple[str, ...] = ()
    original_envelope_id: str | None = None
    auth_failure: tuple[str, ...] = ()
    authentication_results: str | None = None
    delivery_result: str | None = None
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    spf_dns: str | None = None
    identity_alignment: str | None = None
    user_agent: str | None = None
    version: str | None = None
    message_id: str | None = None
    subject: str | None = None
    header_from: str | None = None
    sample_headers: str | None = None
    sample_headers_only: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    kind: ReportKind = field(default="failure", init=False)

    @property
    def key(self) -> str:
        return self.content_sha256

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "feedback_type": self.feedback_type,
            "reported_domain": self.reported_domain,
            "content_sha256": self.content_sha256,
            "source_ip": self.source_ip,
            "arrival_date": _iso(self.arrival_date),
            "original_mail_from": self.original_mail_from,
            "original_rcpt_to": list(self.original_rcpt_to),
            "original_envelope_id": self.original_envelope_id,
            "auth_failure": list(self.auth_failure),
            "authentication_results": self.authentication_results,
            "delivery_result": self.delivery_result,
            "dkim_domain": self.dkim_domain,
            "dkim_selector": self.dkim_selector,
            "spf_dns": self.spf_dns,
            "identity_alignment": self.identity_alignment,
            "user_agent": self.user_agent,
            "version": self.version,
            "message_id": self.message_id,
            "subject": self.subject,
            "header_from": self.header_from,
            "sample_headers": self.sample_headers,
            "sample_headers_only": self.sample_headers_only,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------- SMTP TLS (RFC 8460)


@dataclass(frozen=True, slots=True)
class TlsFailureDetail:
    result_type: str
    failed_sessions: int
    sending_mta_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    receiving_ip: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "result_type": self.result_type,
            "failed_sessions": self.failed_sessions,
            "sending_mta_ip": self.sending_mta_ip,
            "receiving_mx_hostname": self.receiving_mx_hostname,
            "receiving_mx_helo": self.receiving_mx_helo,
            "receiving_ip": self.receiving_ip,
            "additional_information": self.additional_information,
            "failure_reason_code": self.failure_reason_code,
        }


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """One policy of a TLS report: which policy the sender applied to ``policy_domain`` and
    how many sessions succeeded or failed under it."""

    policy_type: str
    policy_domain: str
    successful_sessions: int
    failed_sessions: int
    policy_strings: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()
    failure_details: tuple[TlsFailureDetail, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_type": self.policy_type,
            "policy_domain": self.policy_domain,
            "successful_sessions": self.successful_sessions,
            "failed_sessions": self.failed_sessions,
            "policy_strings": list(self.policy_strings),
            "mx_hosts": list(self.mx_hosts),
            "failure_details": [d.to_json() for d in self.failure_details],
        }


@dataclass(frozen=True, slots=True)
class TlsReport:
    """An SMTP TLS report (RFC 8460). Stored once per (``organization_name``, ``report_id``)."""

    organization_name: str
    report_id: str
    begin: datetime
    end: datetime
    policies: tuple[TlsPolicy, ...]
    contact_info: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    kind: ReportKind = field(default="tls", init=False)

    @property
    def key(self) -> str:
        return f"{self.organization_name}/{self.report_id}"

    @property
    def successful_sessions(self) -> int:
        return sum(p.successful_sessions for p in self.policies)

    @property
    def failed_sessions(self) -> int:
        return sum(p.failed_sessions for p in self.policies)

    @property
    def content_sha256(self) -> str:
        return content_digest({k: v for k, v in self.to_json().items() if k != "notes"})

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "organization_name": self.organization_name,
            "report_id": self.report_id,
            "contact_info": self.contact_info,
            "begin": _iso(self.begin),
            "end": _iso(self.end),
            "policies": [p.to_json() for p in self.policies],
            "notes": list(self.notes),
        }


Report = AggregateReport | FailureReport | TlsReport
