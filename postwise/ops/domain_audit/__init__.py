"""A domain's mail posture from its DNS: MX (and STARTTLS on each MX), SPF, DMARC, DKIM for the
selectors given, MTA-STS, TLS-RPT, BIMI and DNSSEC, as named findings with a severity, the
evidence (the record or the answer) and a concrete fix, and a grade.

Every lookup goes through the one :class:`~postwise.auth.dns.Resolver`, so tests point the audit
at a :class:`~postwise.auth.zone_server.ZoneServer`. A lookup that fails
(:class:`~postwise.auth.dns.DnsTemporaryError`) becomes a ``*_LOOKUP_FAILED`` finding, never a
"missing" one. The records are parsed here by small parsers whose errors name the bad part.

Two checks leave DNS: the STARTTLS probe (an SMTP connection to each MX on ``smtp_port``, on by
default, no certificate validation) and the MTA-STS policy fetch over HTTPS (off by default:
pass ``mta_sts_fetcher``, e.g. :func:`fetch_mta_sts_policy`). Grading is
:func:`grade_findings`; docs/domain-audit.md lists every code with its severity and fix.
"""

from postwise.ops.domain_audit.audit import DomainAuditError, audit_domain
from postwise.ops.domain_audit.findings import (
    FINDING_CODES,
    PENALTIES,
    SEVERITIES,
    Finding,
    Severity,
    grade_findings,
)
from postwise.ops.domain_audit.mta_sts import PolicyFetcher, fetch_mta_sts_policy
from postwise.ops.domain_audit.report import AuditReport
from postwise.ops.domain_audit.spf import SPF_LOOKUP_LIMIT, SPF_VOID_LIMIT

__all__ = [
    "FINDING_CODES",
    "PENALTIES",
    "SEVERITIES",
    "SPF_LOOKUP_LIMIT",
    "SPF_VOID_LIMIT",
    "AuditReport",
    "DomainAuditError",
    "Finding",
    "PolicyFetcher",
    "Severity",
    "audit_domain",
    "fetch_mta_sts_policy",
    "grade_findings",
]
