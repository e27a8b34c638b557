"""The audit in progress: the findings and facts gathered so far, shared by every check."""

from __future__ import annotations

from typing import Any

from postwise.auth.dns import Resolver
from postwise.mail.domains import registered_domain
from postwise.ops.domain_audit.findings import FINDING_CODES, Finding, Severity


class Audit:
    """Findings and facts as they are gathered."""

    def __init__(self, domain: str, resolver: Resolver) -> None:
        self.domain = domain
        self.org = registered_domain(domain)
        self.resolver = resolver
        self.findings: list[Finding] = []
        self.records: dict[str, Any] = {}

    def add(
        self, code: str, summary: str, evidence: str, fix: str, severity: Severity | None = None
    ) -> None:
        finding = Finding(code, severity or FINDING_CODES[code], summary, evidence, fix)
        if not any(f.code == code and f.evidence == evidence for f in self.findings):
            self.findings.append(finding)

    def lookup_failed(self, code: str, name: str, rdtype: str, error: Exception, what: str) -> None:
        self.add(
            code,
            f"the {rdtype} lookup of {name} failed, so {what} could not be checked "
            "(not the same as missing)",
            str(error),
            f"Check that the authoritative servers of {self.domain} answer "
            f"`dig {rdtype.split('/')[0]} {name}` "
            "promptly, then audit again: receivers that meet the same failure defer the check "
            "or skip it.",
        )
