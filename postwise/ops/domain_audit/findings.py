"""Findings: the severities and their penalties, the catalogue of every finding code with its
usual severity, a :class:`Finding`, and the grade (:func:`grade_findings`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
PENALTIES: Mapping[Severity, int] = {"critical": 40, "high": 25, "medium": 10, "low": 3, "info": 0}

# Every finding code and its usual severity (a few codes vary: the docs say when).
FINDING_CODES: Mapping[str, Severity] = {
    "DOMAIN_NOT_FOUND": "critical",
    "MX_LOOKUP_FAILED": "high",
    "MX_MISSING": "medium",
    "MX_NULL": "info",
    "MX_NULL_NOT_ALONE": "medium",
    "MX_NO_ADDRESS": "high",
    "MX_UNREACHABLE": "info",
    "MX_NO_STARTTLS": "high",
    "MX_STARTTLS_FAILED": "high",
    "MX_TLS_CERTIFICATE": "info",
    "MX_CERTIFICATE_EXPIRED": "medium",
    "MX_CERTIFICATE_NAME_MISMATCH": "low",
    "SPF_LOOKUP_FAILED": "high",
    "SPF_MISSING": "high",
    "SPF_MULTIPLE_RECORDS": "high",
    "SPF_SYNTAX": "high",
    "SPF_PLUS_ALL": "critical",
    "SPF_NEUTRAL_ALL": "medium",
    "SPF_NO_ALL": "medium",
    "SPF_TOO_MANY_LOOKUPS": "high",
    "SPF_VOID_LOOKUPS": "high",
    "SPF_INCLUDE_LOOP": "high",
    "SPF_INCLUDE_NO_RECORD": "high",
    "SPF_PTR": "low",
    "DMARC_LOOKUP_FAILED": "high",
    "DMARC_MISSING": "high",
    "DMARC_MULTIPLE_RECORDS": "high",
    "DMARC_SYNTAX": "high",
    "DMARC_P_NONE": "medium",
    "DMARC_SP_NONE": "medium",
    "DMARC_PCT_PARTIAL": "medium",
    "DMARC_NO_RUA": "medium",
    "DMARC_RUA_EXTERNAL_UNAUTHORISED": "medium",
    "DMARC_INHERITED": "info",
    "DMARC_STRICT_ALIGNMENT": "info",
    "DKIM_NOT_CHECKED": "info",
    "DKIM_LOOKUP_FAILED": "high",
    "DKIM_MISSING": "high",
    "DKIM_SYNTAX": "high",
    "DKIM_REVOKED": "low",
    "DKIM_KEY_WEAK": "high",
    "DKIM_TESTING": "medium",
    "MTA_STS_LOOKUP_FAILED": "medium",
    "MTA_STS_MISSING": "low",
    "MTA_STS_SYNTAX": "medium",
    "MTA_STS_POLICY_HOST_MISSING": "high",
    "MTA_STS_POLICY_NOT_FETCHED": "info",
    "MTA_STS_POLICY_UNAVAILABLE": "high",
    "MTA_STS_POLICY_SYNTAX": "high",
    "MTA_STS_TESTING": "low",
    "MTA_STS_MODE_NONE": "low",
    "MTA_STS_MX_NOT_COVERED": "high",
    "TLSRPT_LOOKUP_FAILED": "low",
    "TLSRPT_MISSING": "low",
    "TLSRPT_SYNTAX": "medium",
    "BIMI_LOOKUP_FAILED": "low",
    "BIMI_MISSING": "info",
    "BIMI_SYNTAX": "low",
    "BIMI_DMARC_NOT_ENFORCED": "low",
    "DNSSEC_VALIDATED": "info",
    "DNSSEC_UNKNOWN": "info",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One named problem (or fact) with the evidence behind it and what to do about it."""

    code: str
    severity: Severity
    summary: str
    evidence: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "summary": self.summary,
            "evidence": self.evidence,
            "fix": self.fix,
        }


def grade_findings(findings: Iterable[Finding], dmarc_enforced: bool) -> tuple[int, str]:
    """(score, grade). The score is 100 less each finding's penalty (critical 40, high 25,
    medium 10, low 3, info 0), floored at 0; A from 90, B from 80, C from 65, D from 50, else F.
    Any critical finding makes it F, and B or better needs a DMARC policy that is seen to
    enforce (p=quarantine or p=reject applying to the domain)."""
    found = list(findings)
    score = max(0, 100 - sum(PENALTIES[finding.severity] for finding in found))
    floors = (("A", 90), ("B", 80), ("C", 65), ("D", 50))
    letter = next((grade for grade, floor in floors if score >= floor), "F")
    if any(finding.severity == "critical" for finding in found):
        letter = "F"
    elif not dmarc_enforced and letter in ("A", "B"):
        letter = "C"
    return score, letter
