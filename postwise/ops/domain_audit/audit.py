"""The audit: :func:`audit_domain` checks the domain's input, runs every check in turn and
grades the findings into an :class:`~postwise.ops.domain_audit.report.AuditReport`."""

from __future__ import annotations

from collections.abc import Sequence

from postwise.auth.dns import Resolver
from postwise.core.errors import PostwiseError
from postwise.ops.domain_audit.bimi import audit_bimi
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.dkim import audit_dkim
from postwise.ops.domain_audit.dmarc import Dmarc, audit_dmarc
from postwise.ops.domain_audit.dnssec import audit_dnssec
from postwise.ops.domain_audit.findings import SEVERITIES, grade_findings
from postwise.ops.domain_audit.mta_sts import PolicyFetcher, audit_mta_sts
from postwise.ops.domain_audit.mx import audit_mx
from postwise.ops.domain_audit.records import HOSTNAME, SELECTOR
from postwise.ops.domain_audit.report import AuditReport
from postwise.ops.domain_audit.spf import audit_spf
from postwise.ops.domain_audit.starttls import audit_starttls
from postwise.ops.domain_audit.tlsrpt import audit_tlsrpt


class DomainAuditError(PostwiseError):
    """The audit cannot start: the domain, a selector or an option is invalid."""


def _normalise_domain(domain: str) -> str:
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise DomainAuditError(f"{domain!r} is not a valid domain name") from None
    if "." not in name or not HOSTNAME.fullmatch(name) or name.replace(".", "").isdigit():
        raise DomainAuditError(
            f"{domain!r} is not a domain name: give one like example.org (no scheme, no address)"
        )
    return name


def audit_domain(
    domain: str,
    resolver: Resolver,
    selectors: Sequence[str] = (),
    check_starttls: bool = True,
    smtp_port: int = 25,
    timeout: float = 10.0,
    *,
    mta_sts_fetcher: PolicyFetcher | None = None,
    ehlo_name: str = "localhost",
) -> AuditReport:
    """Audit ``domain``'s mail DNS through ``resolver``.

    ``selectors``: DKIM selectors to check (DNS cannot list them). ``check_starttls``: connect
    to each MX on ``smtp_port`` (``timeout`` seconds per step) and try STARTTLS.
    ``mta_sts_fetcher``: fetch the MTA-STS policy over HTTPS with this (None: not fetched).
    Raises DomainAuditError when the domain, a selector or the port is invalid; DNS failures
    are findings, not exceptions."""
    name = _normalise_domain(domain)
    for selector in selectors:
        if not SELECTOR.fullmatch(selector):
            raise DomainAuditError(f"{selector!r} is not a DKIM selector (letters, digits, '-')")
    if not 0 < smtp_port < 65536:
        raise DomainAuditError(f"the SMTP port must be 1-65535, not {smtp_port}")
    audit = Audit(name, resolver)
    audit.records["org_domain"] = audit.org
    hosts, null_mx, exists = audit_mx(audit)
    dmarc = Dmarc()
    if exists:
        audit_spf(audit)
        dmarc = audit_dmarc(audit)
        audit_dkim(audit, selectors)
        if not null_mx:
            audit_mta_sts(audit, hosts, mta_sts_fetcher)
            audit_tlsrpt(audit)
        audit_bimi(audit, dmarc)
        audit_dnssec(audit)
        if check_starttls and hosts:
            audit_starttls(audit, hosts, smtp_port, timeout, ehlo_name)
        else:
            audit.records["starttls_checked"] = False
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    findings = tuple(sorted(audit.findings, key=lambda f: order[f.severity]))
    score, grade = grade_findings(findings, dmarc.enforced)
    return AuditReport(name, findings, score, grade, audit.records)
