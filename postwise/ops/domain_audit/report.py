"""The result of an audit: :class:`AuditReport`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from postwise.ops.domain_audit.findings import SEVERITIES, Finding


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The findings (most severe first), the grade, and what was found in DNS per area."""

    domain: str
    findings: tuple[Finding, ...]
    score: int
    grade: str
    records: Mapping[str, Any]

    @property
    def codes(self) -> set[str]:
        return {finding.code for finding in self.findings}

    def by_code(self, code: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.code == code]

    def to_json(self) -> dict[str, Any]:
        counts = {severity: 0 for severity in SEVERITIES}
        for finding in self.findings:
            counts[finding.severity] += 1
        return {
            "domain": self.domain,
            "grade": self.grade,
            "score": self.score,
            "counts": counts,
            "findings": [finding.to_json() for finding in self.findings],
            "records": dict(self.records),
        }
