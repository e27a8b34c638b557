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

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import ipaddress
import re
import socket
import ssl
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.resolver

from postwise.auth.dns import DnsTemporaryError, Lookup, Resolver
from postwise.core.errors import PostwiseError
from postwise.mail.domains import registered_domain

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

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
SPF_VOID_LIMIT = 2  # RFC 7208 4.6.4
_SPF_WALK_CAP = 30  # stop counting here: enough to say how far over the limit a record is
_MX_PROBE_LIMIT = 10

PolicyFetcher = Callable[[str], str]
"""Fetches an MTA-STS policy: takes its ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
URL, returns the body; any exception means the policy is unavailable."""


class DomainAuditError(PostwiseError):
    """The audit cannot start: the domain, a selector or an option is invalid."""


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


# --------------------------------------------------------------------------- record parsing


class _RecordError(ValueError):
    """A record does not parse; the message names the bad part."""


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\.?$)(?:{_LABEL}\.)+{_LABEL}\.?")
_SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _parse_tag_list(record: str) -> list[tuple[str, str]]:
    """``tag=value; tag=value`` (RFC 6376 3.2, RFC 7489 6.4), in order, names lower-cased."""
    pairs: list[tuple[str, str]] = []
    for part in record.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise _RecordError(f"{part!r} is not tag=value")
        if any(name == seen for seen, _ in pairs):
            raise _RecordError(f"the tag {name!r} appears twice")
        pairs.append((name, value.strip()))
    return pairs


def _tag_record(pairs: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


def _with_tag(pairs: Sequence[tuple[str, str]], name: str, value: str | None) -> str:
    """The record with ``name`` set to ``value`` (appended when absent; removed when None)."""
    if value is None:
        return _tag_record((n, v) for n, v in pairs if n != name)
    out = [(n, value if n == name else v) for n, v in pairs]
    if all(n != name for n, _ in pairs):
        out.append((name, value))
    return _tag_record(out)


@dataclass(frozen=True, slots=True)
class _SpfTerm:
    text: str
    name: str  # mechanism or modifier name, lower-cased
    value: str  # the domain-spec, address or modifier value ('' when none)
    qualifier: str = ""  # '+', '-', '~' or '?' for mechanisms; '' for modifiers

    @property
    def modifier(self) -> bool:
        return not self.qualifier


_SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_SPF_COUNTED = ("include", "a", "mx", "ptr", "exists")
_MACRO = re.compile(r"%\{[slodiphcrtv]\d*r?[.\-+,/_=]*\}|%%|%_|%-", re.IGNORECASE)


def _check_domain_spec(spec: str, term: str) -> None:
    bare = _MACRO.sub("x", spec)
    if "%" in bare:
        raise _RecordError(f"{term!r} has a malformed macro")
    if bare == spec and not _HOSTNAME.fullmatch(spec):
        raise _RecordError(f"{term!r} does not name a domain")
    if not re.fullmatch(r"[\x21-\x7e]+", bare):
        raise _RecordError(f"{term!r} has characters a domain cannot have")


def _check_cidr(text: str, term: str) -> None:
    match = re.fullmatch(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?", text)
    if match is None or (match[1] and int(match[1]) > 32) or (match[2] and int(match[2]) > 128):
        raise _RecordError(f"{term!r} has an invalid prefix length")


def _parse_spf(record: str) -> list[_SpfTerm]:
    """The terms of an SPF record (RFC 7208 4.6.1, 5, 6). Raises _RecordError on the first
    term a receiver would reject (permerror)."""
    parts = record.split()
    if not parts or parts[0].lower() != "v=spf1":
        raise _RecordError("the record does not start with v=spf1")
    terms: list[_SpfTerm] = []
    for text in parts[1:]:
        modifier = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", text)
        if modifier:
            name, value = modifier[1].lower(), modifier[2]
            if name in ("redirect", "exp"):
                if any(t.name == name for t in terms if t.modifier):
                    raise _RecordError(f"the modifier {name}= appears twice")
                _check_domain_spec(value, text)
            terms.append(_SpfTerm(text, name, value))
            continue
        qualifier = text[0] if text[0] in "+-~?" else "+"
        body = text[1:] if text[0] in "+-~?" else text
        name_match = re.match(r"[A-Za-z0-9]+", body)
        name = name_match[0].lower() if name_match else ""
        rest = body[len(name) :]
        if name not in _SPF_MECHANISMS:
            raise _RecordError(f"{text!r} is not an SPF mechanism ({', '.join(_SPF_MECHANISMS)})")
        value = ""
        if name == "all":
            if rest:
                raise _RecordError(f"{text!r}: all takes no argument")
        elif name in ("include", "exists"):
            if not rest.startswith(":") or len(rest) < 2:
                raise _RecordError(f"{text!r}: {name} needs a domain ({name}:example.com)")
            value = rest[1:]
            _check_domain_spec(value, text)
        elif name in ("a", "mx", "ptr"):
            spec, cidr = rest, ""
            if name != "ptr" and "/" in rest:
                spec, cidr = rest[: rest.index("/")], rest[rest.index("/") :]
                _check_cidr(cidr, text)
            if spec:
                if not spec.startswith(":") or len(spec) < 2:
                    raise _RecordError(f"{text!r}: expected {name}:domain")
                value = spec[1:]
                _check_domain_spec(value, text)
        else:  # ip4, ip6
            value = rest[1:] if rest.startswith(":") else ""
            address, _, prefix = value.partition("/")
            try:
                network_type = ipaddress.IPv4Network if name == "ip4" else ipaddress.IPv6Network
                if not address or (prefix and not prefix.isdigit()):
                    raise ValueError(value)
                network_type(value, strict=False)
            except ValueError:
                raise _RecordError(f"{text!r} is not a valid {name} address or range") from None
        terms.append(_SpfTerm(text, name, value, qualifier))
    return terms


def _spf_records(lookup: Lookup) -> list[str]:
    """The TXT records that are SPF records (RFC 7208 4.5: ``v=spf1`` then a space or the end)."""
    return [r for r in lookup.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


def _is_dmarc(record: str) -> bool:
    return re.match(r"\s*v\s*=\s*DMARC1\s*(;|$)", record, re.IGNORECASE) is not None


_DMARC_TAGS = ("v", "p", "sp", "rua", "ruf", "adkim", "aspf", "pct", "fo", "rf", "ri")
_DMARC_BIS_TAGS = ("np", "psd", "t")  # DMARCbis: accepted, not required


def _mailto_domains(value: str, tag: str, problems: list[str]) -> list[str]:
    """The report domains of a rua/ruf list; problems for URIs that are not usable mailto:."""
    domains: list[str] = []
    for uri in (u.strip() for u in value.split(",")):
        if not uri.lower().startswith("mailto:"):
            problems.append(f"{tag}: {uri!r} is not a mailto: URI (receivers send mail only)")
            continue
        address = re.sub(r"![0-9]+[kmgt]?$", "", uri[7:], flags=re.IGNORECASE)
        local, at, host = address.rpartition("@")
        if not at or not local or not _HOSTNAME.fullmatch(host):
            problems.append(f"{tag}: {uri!r} is not a valid address")
            continue
        domains.append(host.rstrip(".").lower())
    return domains


# --------------------------------------------------------------------------- the audit


@dataclass
class _Dmarc:
    enforced: bool = False
    policy: str | None = None  # the policy that applies to the domain
    pct: int = 100


@dataclass
class _MxHost:
    preference: int
    host: str
    addresses: list[str] = field(default_factory=list)
    starttls: dict[str, Any] | None = None


class _Audit:
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


def _normalise_domain(domain: str) -> str:
    name = domain.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        raise DomainAuditError(f"{domain!r} is not a valid domain name") from None
    if "." not in name or not _HOSTNAME.fullmatch(name) or name.replace(".", "").isdigit():
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
        if not _SELECTOR.fullmatch(selector):
            raise DomainAuditError(f"{selector!r} is not a DKIM selector (letters, digits, '-')")
    if not 0 < smtp_port < 65536:
        raise DomainAuditError(f"the SMTP port must be 1-65535, not {smtp_port}")
    audit = _Audit(name, resolver)
    audit.records["org_domain"] = audit.org
    hosts, null_mx, exists = _audit_mx(audit)
    dmarc = _Dmarc()
    if exists:
        _audit_spf(audit)
        dmarc = _audit_dmarc(audit)
        _audit_dkim(audit, selectors)
        if not null_mx:
            _audit_mta_sts(audit, hosts, mta_sts_fetcher)
            _audit_tlsrpt(audit)
        _audit_bimi(audit, dmarc)
        _audit_dnssec(audit)
        if check_starttls and hosts:
            _audit_starttls(audit, hosts, smtp_port, timeout, ehlo_name)
        else:
            audit.records["starttls_checked"] = False
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    findings = tuple(sorted(audit.findings, key=lambda f: order[f.severity]))
    score, grade = grade_findings(findings, dmarc.enforced)
    return AuditReport(name, findings, score, grade, audit.records)


# --------------------------------------------------------------------------- MX


def _audit_mx(audit: _Audit) -> tuple[list[_MxHost], bool, bool]:
    """(hosts to probe, null MX, the domain exists)."""
    domain = audit.domain
    try:
        lookup = audit.resolver.query(domain, "MX")
    except DnsTemporaryError as error:
        audit.lookup_failed("MX_LOOKUP_FAILED", domain, "MX", error, "where its mail goes")
        return [], False, True
    if lookup.nxdomain:
        audit.add(
            "DOMAIN_NOT_FOUND",
            f"{domain} does not exist (NXDOMAIN): nothing else was checked",
            f"{domain} MX: NXDOMAIN",
            "Check the spelling of the domain; if it is yours, make sure it is delegated to "
            "name servers that serve its zone.",
        )
        return [], False, False
    pairs: list[tuple[int, str]] = []
    for record in lookup.records:
        number, _, exchange = record.partition(" ")
        pairs.append((int(number), exchange.strip().rstrip(".").lower()))
    pairs.sort()
    audit.records["mx"] = [{"preference": p, "host": h or "."} for p, h in pairs]
    evidence = f"{domain} MX: " + ", ".join(f"{p} {h or '.'}" for p, h in pairs)
    if not pairs:
        audit.add(
            "MX_MISSING",
            f"{domain} has no MX record: senders fall back to its A/AAAA address, and bounces "
            "and reports sent to it may go nowhere",
            f"{domain} MX: no records",
            f"Publish the host that receives its mail: `{domain}. MX 10 mail.{domain}.`; if "
            f"{domain} receives no mail, publish a null MX: `{domain}. MX 0 .` (RFC 7505).",
        )
        return [], False, True
    if any(not host for _, host in pairs):
        if len(pairs) == 1:
            audit.add(
                "MX_NULL",
                f"{domain} publishes a null MX (RFC 7505): it accepts no mail; fine for a "
                "domain that only sends or is parked",
                evidence,
                "Nothing to do if the domain should receive no mail; pair it with "
                f'`{domain}. TXT "v=spf1 -all"` when it sends none either.',
            )
            return [], True, True
        audit.add(
            "MX_NULL_NOT_ALONE",
            f"{domain} mixes a null MX with other MX records, which RFC 7505 3.3 forbids: "
            "senders may treat it either way",
            evidence,
            "Remove the `MX 0 .` record if the domain receives mail, or the other MX records "
            "if it does not.",
        )
    hosts: list[_MxHost] = []
    for preference, host in pairs:
        if not host:
            continue
        entry = _MxHost(preference, host)
        try:
            addresses = audit.resolver.addresses(host)
        except DnsTemporaryError as error:
            audit.lookup_failed("MX_LOOKUP_FAILED", host, "A/AAAA", error, "this MX host")
            continue
        entry.addresses = list(addresses.records)
        for item in audit.records["mx"]:
            if item["host"] == host:
                item["addresses"] = entry.addresses
        if addresses.void:
            audit.add(
                "MX_NO_ADDRESS",
                f"the MX host {host} has no A or AAAA record: senders cannot deliver to it",
                f"{host} A/AAAA: {'NXDOMAIN' if addresses.nxdomain else 'no records'}",
                f"Publish the address of {host} (`{host}. A <address>`) or remove "
                f"`{domain}. MX {preference} {host}.`",
            )
            continue
        hosts.append(entry)
    return hosts, False, True


# --------------------------------------------------------------------------- SPF


@dataclass
class _SpfWalk:
    lookups: list[str] = field(default_factory=list)
    voids: list[str] = field(default_factory=list)
    capped: bool = False


def _audit_spf(audit: _Audit) -> None:
    domain = audit.domain
    try:
        lookup = audit.resolver.txt(domain)
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", domain, "TXT", error, "its SPF record")
        return
    records = _spf_records(lookup)
    if not records:
        audit.add(
            "SPF_MISSING",
            f"{domain} publishes no SPF record: receivers cannot tell its servers from "
            "forgers (SPF none)",
            _shorten(
                f"{domain} TXT: " + ("; ".join(f'"{r}"' for r in lookup.records) or "no records"),
                300,
            ),
            f'Publish one TXT record listing the senders, e.g. `{domain}. TXT "v=spf1 mx '
            f'include:<your provider> -all"`, or `"v=spf1 -all"` if {domain} sends no mail.',
        )
        return
    if len(records) > 1:
        merged = _merge_spf(records)
        audit.add(
            "SPF_MULTIPLE_RECORDS",
            f"{domain} publishes {len(records)} SPF records: receivers return permerror "
            "(RFC 7208 4.5) and SPF fails for all of its mail",
            " | ".join(f'{domain} TXT "{r}"' for r in records),
            f'Merge them into one record, e.g. `{domain}. TXT "{merged}"`, and delete the others.',
        )
        audit.records["spf"] = {"records": records}
        return
    walk = _SpfWalk()
    _walk_spf(audit, walk, domain, records[0], (domain,), top=True, passes=True)
    audit.records["spf"] = {
        "record": records[0],
        "dns_lookups": len(walk.lookups),
        "void_lookups": len(walk.voids),
        "lookups": walk.lookups,
    }
    count = f"at least {len(walk.lookups)}" if walk.capped else str(len(walk.lookups))
    if len(walk.lookups) > SPF_LOOKUP_LIMIT:
        audit.add(
            "SPF_TOO_MANY_LOOKUPS",
            f"the SPF record of {domain} needs {count} DNS lookups, over the limit of "
            f"{SPF_LOOKUP_LIMIT}: receivers return permerror and SPF fails for all of its mail",
            f'{domain} TXT "{records[0]}"; lookups: {_group_lookups(walk.lookups)}',
            "Bring it to 10 or fewer: drop includes of services no longer used, replace a/mx "
            "with the ip4/ip6 ranges they stand for, remove ptr, or move a sending service to a "
            "subdomain with its own SPF record.",
        )
    if walk.voids:
        over = len(walk.voids) > SPF_VOID_LIMIT
        audit.add(
            "SPF_VOID_LOOKUPS",
            f"the SPF record of {domain} has {len(walk.voids)} lookups that find nothing"
            + (
                f", over the limit of {SPF_VOID_LIMIT}: receivers return permerror"
                if over
                else " (a typo or a lapsed service; a third makes SPF fail)"
            ),
            "void: " + _group_lookups(walk.voids),
            "Remove the terms that point at names with no records, or correct their spelling: "
            + ", ".join(v.split(": ", 1)[1] for v in walk.voids),
            "high" if over else "low",
        )


def _group_lookups(lookups: Sequence[str]) -> str:
    """``a: t1, a: t2, b: t3`` -> ``a: t1 t2; b: t3`` (in order, for a readable evidence)."""
    groups: list[tuple[str, list[str]]] = []
    for lookup in lookups:
        domain, _, term = lookup.partition(": ")
        if groups and groups[-1][0] == domain:
            groups[-1][1].append(term)
        else:
            groups.append((domain, [term]))
    return "; ".join(f"{domain}: {' '.join(terms)}" for domain, terms in groups)


def _merge_spf(records: Sequence[str]) -> str:
    terms: list[str] = []
    for record in records:
        for term in record.split()[1:]:
            bare = term.lstrip("+-~?").lower()
            if bare != "all" and not bare.startswith("redirect=") and term not in terms:
                terms.append(term)
    return " ".join(["v=spf1", *terms, "-all"])


def _walk_spf(
    audit: _Audit,
    walk: _SpfWalk,
    domain: str,
    record: str,
    path: tuple[str, ...],
    top: bool,
    passes: bool,
) -> None:
    """Count the lookups of ``record`` (published at ``domain``) and of what it includes.

    ``path``: the domains that led here (a repeat is a loop). ``top``: this record's ``all``
    decides the domain's result (the domain's own record, or one it redirects to). ``passes``:
    a match here passes the domain's mail (every include on the way was ``+``)."""
    where = "" if len(path) == 1 else f" (reached via {' -> '.join(path[:-1])})"
    try:
        terms = _parse_spf(record)
    except _RecordError as error:
        audit.add(
            "SPF_SYNTAX",
            f"the SPF record of {domain}{where} is invalid: {error}; receivers return permerror",
            f'{domain} TXT "{record}"',
            f"Correct the record at {domain}: {error}. Mechanisms are all, include:, a, mx, "
            "ip4:, ip6:, exists: and ptr, each optionally prefixed with + - ~ ?.",
        )
        return
    mechanisms = [t for t in terms if not t.modifier]
    all_term = next((t for t in mechanisms if t.name == "all"), None)
    evaluated = mechanisms[: mechanisms.index(all_term) + 1] if all_term else mechanisms
    for term in evaluated:
        if term.name not in _SPF_COUNTED:
            continue
        if len(walk.lookups) >= _SPF_WALK_CAP:
            walk.capped = True
            return
        walk.lookups.append(f"{domain}: {term.text}")
        if term.name == "include":
            passes_here = passes and term.qualifier == "+"
            _follow_spf(audit, walk, domain, record, term, path, False, passes_here)
        else:
            _spf_target_lookup(audit, walk, domain, term)
    redirect = next((t for t in terms if t.modifier and t.name == "redirect"), None)
    if all_term is not None:
        if all_term.qualifier == "+" and (top or passes):
            fixed = " ".join("-all" if t == all_term.text else t for t in record.split())
            audit.add(
                "SPF_PLUS_ALL",
                f"the SPF record of {domain}{where} ends in {all_term.text}: every server on "
                f"the internet passes SPF for {path[0]}",
                f'{domain} TXT "{record}"',
                f'Publish `{domain}. TXT "{fixed}"` (or ~all while you confirm every sender)'
                if top
                else f"Remove include:{domain} from the chain: a record that passes everyone "
                "cannot be included.",
            )
        elif all_term.qualifier == "?" and top:
            fixed = " ".join("-all" if t == all_term.text else t for t in record.split())
            audit.add(
                "SPF_NEUTRAL_ALL",
                f"the SPF record of {domain} ends in ?all: mail from any other server is "
                "'neutral', which protects nothing",
                f'{domain} TXT "{record}"',
                f'Publish `{domain}. TXT "{fixed}"` (or ~all while you confirm every sender).',
            )
    elif redirect is not None and "%" not in redirect.value:
        if len(walk.lookups) >= _SPF_WALK_CAP:
            walk.capped = True
            return
        walk.lookups.append(f"{domain}: {redirect.text}")
        _follow_spf(audit, walk, domain, record, redirect, path, top, passes)
    elif top and redirect is None:
        audit.add(
            "SPF_NO_ALL",
            f"the SPF record of {domain} has no all mechanism and no redirect: mail from "
            "unlisted servers gets 'neutral', which protects nothing",
            f'{domain} TXT "{record}"',
            f'Publish `{domain}. TXT "{record.rstrip()} -all"`.',
        )
    if top and any(t.name == "ptr" for t in evaluated):
        audit.add(
            "SPF_PTR",
            f"the SPF record of {domain} uses ptr, which RFC 7208 5.5 says not to use: slow, "
            "unreliable, and some receivers skip it",
            f'{domain} TXT "{record}"',
            "Replace ptr with the ip4:/ip6: ranges or a: names of the servers it stood for.",
        )


def _follow_spf(
    audit: _Audit,
    walk: _SpfWalk,
    domain: str,
    record: str,
    term: _SpfTerm,
    path: tuple[str, ...],
    top: bool,
    passes: bool,
) -> None:
    """Follow include: or redirect= (``term`` of ``record`` at ``domain``) to its target."""
    if "%" in term.value:
        return  # a macro depends on the message being checked: nothing to look up now
    target = term.value.rstrip(".").lower()
    if target in path:
        audit.add(
            "SPF_INCLUDE_LOOP",
            f"the SPF records of {' -> '.join((*path, target))} form a loop: receivers stop "
            "at the lookup limit and return permerror",
            f'{domain} TXT "{record}"',
            f"Remove {term.text} from the record of {domain}.",
        )
        return
    try:
        lookup = audit.resolver.txt(target)
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", target, "TXT", error, f"{term.text} ({domain})")
        return
    if lookup.void:
        walk.voids.append(f"{domain}: {term.text}")
    records = _spf_records(lookup)
    if not records:
        audit.add(
            "SPF_INCLUDE_NO_RECORD",
            f"{term.text} in the SPF record of {domain} names a domain with no SPF record: "
            "receivers return permerror (RFC 7208 5.2, 6.1)",
            f"{target} TXT: " + ("NXDOMAIN" if lookup.nxdomain else "no SPF record"),
            f"Remove {term.text} from the record of {domain}, or correct the name (providers "
            "document theirs, e.g. include:_spf.<provider>).",
        )
        return
    if len(records) > 1:
        audit.add(
            "SPF_MULTIPLE_RECORDS",
            f"{target} (from {term.text} in the SPF record of {domain}) publishes "
            f"{len(records)} SPF records: receivers return permerror",
            " | ".join(f'{target} TXT "{r}"' for r in records),
            f"Ask the owner of {target} to publish one record, or remove {term.text}.",
        )
        return
    _walk_spf(audit, walk, target, records[0], (*path, target), top, passes)


def _spf_target_lookup(audit: _Audit, walk: _SpfWalk, domain: str, term: _SpfTerm) -> None:
    """The lookup behind a, mx or exists (ptr depends on the client: nothing to look up)."""
    if term.name == "ptr" or "%" in term.value:
        return
    target = (term.value or domain).rstrip(".").lower()
    try:
        if term.name == "a":
            void = audit.resolver.addresses(target).void
        elif term.name == "exists":
            void = audit.resolver.query(target, "A").void
        else:
            exchanges = audit.resolver.mx(target)
            void = not exchanges
            if len(exchanges) > SPF_LOOKUP_LIMIT:
                audit.add(
                    "SPF_TOO_MANY_LOOKUPS",
                    f"{term.text} in the SPF record of {domain} names {len(exchanges)} MX hosts; "
                    f"receivers look up at most {SPF_LOOKUP_LIMIT} (RFC 7208 4.6.4) and return "
                    "permerror",
                    f"{target} MX: " + ", ".join(host for _, host in exchanges),
                    f"Replace {term.text} with the ip4:/ip6: ranges of the sending servers.",
                )
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", target, term.name.upper(), error, term.text)
        return
    if void:
        walk.voids.append(f"{domain}: {term.text}")


# --------------------------------------------------------------------------- DMARC


def _audit_dmarc(audit: _Audit) -> _Dmarc:
    domain, org = audit.domain, audit.org
    name = f"_dmarc.{domain}"
    try:
        records = [r for r in audit.resolver.txt(name).records if _is_dmarc(r)]
    except DnsTemporaryError as error:
        audit.lookup_failed("DMARC_LOOKUP_FAILED", name, "TXT", error, "its DMARC policy")
        return _Dmarc()
    inherited = False
    if not records and org != domain:
        org_name = f"_dmarc.{org}"
        try:
            records = [r for r in audit.resolver.txt(org_name).records if _is_dmarc(r)]
        except DnsTemporaryError as error:
            audit.lookup_failed("DMARC_LOOKUP_FAILED", org_name, "TXT", error, "its DMARC policy")
            return _Dmarc()
        if records:
            inherited, name = True, org_name
    if not records:
        audit.add(
            "DMARC_MISSING",
            f"{domain} publishes no DMARC policy"
            + (f" (nor does its organisational domain {org})" if org != domain else "")
            + ": receivers apply none, and anyone can put it in a From: header",
            f"{name} TXT: no v=DMARC1 record",
            f'Publish `_dmarc.{org}. TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{org}"`, '
            "read the aggregate reports until every legitimate sender passes, then move to "
            "p=quarantine and p=reject.",
        )
        return _Dmarc()
    if len(records) > 1:
        audit.add(
            "DMARC_MULTIPLE_RECORDS",
            f"{name} holds {len(records)} DMARC records: receivers ignore them all "
            "(RFC 7489 6.6.3)",
            " | ".join(f'{name} TXT "{r}"' for r in records),
            f"Keep one v=DMARC1 record at {name} and delete the others.",
        )
        audit.records["dmarc"] = {"records": records, "location": name}
        return _Dmarc()
    record = records[0]
    evidence = f'{name} TXT "{record}"'
    try:
        pairs = _parse_tag_list(record)
    except _RecordError as error:
        audit.add(
            "DMARC_SYNTAX",
            f"the DMARC record at {name} does not parse: {error}; receivers ignore it",
            evidence,
            f'Publish a well-formed record, e.g. `{name}. TXT "v=DMARC1; p=none; '
            f'rua=mailto:dmarc-reports@{org}"` (tags separated by semicolons).',
        )
        return _Dmarc()
    tags = dict(pairs)
    problems: list[str] = []
    if pairs[0][0] != "v":
        problems.append("v=DMARC1 must be the first tag")
    for tag, allowed in (
        ("p", ("none", "quarantine", "reject")),
        ("sp", ("none", "quarantine", "reject")),
        ("np", ("none", "quarantine", "reject")),
        ("adkim", ("r", "s")),
        ("aspf", ("r", "s")),
    ):
        if tag in tags and tags[tag].lower() not in allowed:
            problems.append(f"{tag}={tags[tag]} is not one of {', '.join(allowed)}")
    if "p" not in tags:
        problems.append("the required p= tag is missing (receivers treat it as p=none at best)")
    pct = 100
    if "pct" in tags:
        if tags["pct"].isdigit() and int(tags["pct"]) <= 100:
            pct = int(tags["pct"])
        else:
            problems.append(f"pct={tags['pct']} is not a whole number from 0 to 100")
    if "ri" in tags and not tags["ri"].isdigit():
        problems.append(f"ri={tags['ri']} is not a number of seconds")
    if "fo" in tags and not re.fullmatch(r"[01ds](:[01ds])*", tags["fo"].replace(" ", "")):
        problems.append(f"fo={tags['fo']} is not a colon-separated list of 0, 1, d, s")
    rua = _mailto_domains(tags["rua"], "rua", problems) if tags.get("rua") else []
    ruf = _mailto_domains(tags["ruf"], "ruf", problems) if tags.get("ruf") else []
    unknown = [t for t in tags if t not in _DMARC_TAGS + _DMARC_BIS_TAGS]
    if problems:
        audit.add(
            "DMARC_SYNTAX",
            f"the DMARC record at {name} has errors: " + "; ".join(problems),
            evidence,
            "Correct the record: " + "; ".join(problems) + ".",
        )
    if unknown:
        audit.add(
            "DMARC_SYNTAX",
            f"the DMARC record at {name} has unknown tags ({', '.join(unknown)}): receivers "
            "ignore them, so they do not do what was meant",
            evidence,
            f"Remove or correct {', '.join(unknown)} (known tags: {', '.join(_DMARC_TAGS)}).",
            "low",
        )
    policy = tags.get("p", "none").lower()
    own_policy = policy if policy in ("quarantine", "reject") else "none"
    applied = tags.get("sp", own_policy).lower() if inherited else own_policy
    applied = applied if applied in ("none", "quarantine", "reject") else own_policy
    audit.records["dmarc"] = {
        "record": record,
        "location": name,
        "inherited": inherited,
        "tags": tags,
        "policy": applied,
        "pct": pct,
        "adkim": tags.get("adkim", "r").lower(),
        "aspf": tags.get("aspf", "r").lower(),
        "rua": [u.strip() for u in tags.get("rua", "").split(",") if u.strip()],
        "ruf": [u.strip() for u in tags.get("ruf", "").split(",") if u.strip()],
    }
    if inherited:
        audit.add(
            "DMARC_INHERITED",
            f"{domain} has no DMARC record of its own; the policy of {org} applies to it "
            f"({'sp' if 'sp' in tags else 'p'}={applied})",
            evidence,
            f"Nothing to do if {org}'s policy suits {domain}; otherwise publish _dmarc.{domain}.",
        )
    if applied == "none":
        fix_record = _with_tag(pairs, "sp" if inherited and "sp" in tags else "p", "quarantine")
        audit.add(
            "DMARC_P_NONE",
            f"the DMARC policy for {domain} is none: receivers report on forged mail but "
            "deliver it",
            evidence,
            f"Once the aggregate reports show every legitimate sender passing, publish `{name}. "
            f'TXT "{fix_record}"`, then p=reject.',
        )
    elif not inherited and tags.get("sp", "").lower() == "none":
        audit.add(
            "DMARC_SP_NONE",
            f"the DMARC record of {domain} enforces p={own_policy} but sp=none leaves every "
            "subdomain open to forgery",
            evidence,
            f'Publish `{name}. TXT "{_with_tag(pairs, "sp", None)}"` (sp defaults to p).',
        )
    if applied != "none" and pct < 100:
        audit.add(
            "DMARC_PCT_PARTIAL",
            f"the DMARC policy of {domain} applies to {pct}% of failing mail only; the rest "
            "is treated as p=none",
            evidence,
            f'Publish `{name}. TXT "{_with_tag(pairs, "pct", None)}"` (pct defaults to 100).',
        )
    if not rua:
        audit.add(
            "DMARC_NO_RUA",
            f"the DMARC record at {name} asks for no aggregate reports (rua): nobody sees who "
            "sends as the domain or what fails",
            evidence,
            f'Publish `{name}. TXT "{_with_tag(pairs, "rua", f"mailto:dmarc-reports@{org}")}"` '
            "(Postwise reads these reports).",
        )
    policy_domain = name.removeprefix("_dmarc.")
    _check_report_authorisation(audit, policy_domain, rua + ruf, evidence)
    strict = [t for t in ("adkim", "aspf") if tags.get(t, "r").lower() == "s"]
    if strict:
        audit.add(
            "DMARC_STRICT_ALIGNMENT",
            f"the DMARC record of {domain} asks for strict alignment ({', '.join(strict)}=s): "
            f"mail signed or sent from a subdomain of {org} does not align",
            evidence,
            "Nothing to do if every sender uses the exact domain; otherwise remove "
            + " and ".join(f"{t}=s" for t in strict)
            + " (relaxed is the default).",
        )
    return _Dmarc(enforced=applied != "none", policy=applied, pct=pct)


def _check_report_authorisation(
    audit: _Audit, policy_domain: str, report_domains: Iterable[str], evidence: str
) -> None:
    """RFC 7489 7.1: a report address outside the policy domain's organisation must publish
    ``<policy domain>._report._dmarc.<report domain>`` or receivers send it nothing."""
    org = registered_domain(policy_domain)
    for report_domain in dict.fromkeys(report_domains):
        if registered_domain(report_domain) == org:
            continue
        name = f"{policy_domain}._report._dmarc.{report_domain}"
        try:
            authorised = any(_is_dmarc(r) for r in audit.resolver.txt(name).records)
        except DnsTemporaryError as error:
            audit.lookup_failed(
                "DMARC_LOOKUP_FAILED", name, "TXT", error, f"whether {report_domain} takes reports"
            )
            continue
        if not authorised:
            audit.add(
                "DMARC_RUA_EXTERNAL_UNAUTHORISED",
                f"DMARC reports for {policy_domain} go to {report_domain}, which has not "
                "agreed to take them: receivers send those reports nowhere",
                f"{evidence}; {name} TXT: no v=DMARC1 record",
                f'Ask the owner of {report_domain} to publish `{name}. TXT "v=DMARC1"`, or '
                f"send the reports to an address at {org}.",
            )


# --------------------------------------------------------------------------- DKIM


def _audit_dkim(audit: _Audit, selectors: Sequence[str]) -> None:
    domain = audit.domain
    audit.records["dkim"] = {}
    if not selectors:
        audit.add(
            "DKIM_NOT_CHECKED",
            "no DKIM selectors were given and DNS cannot list them, so no DKIM key was checked",
            f"<selector>._domainkey.{domain}: not queried",
            "Audit again with --selector for each selector the domain signs with (the s= tag "
            "of the DKIM-Signature header of a message it sent).",
        )
        return
    for selector in dict.fromkeys(s.lower() for s in selectors):
        name = f"{selector}._domainkey.{domain}"
        try:
            lookup = audit.resolver.txt(name)
        except DnsTemporaryError as error:
            audit.lookup_failed("DKIM_LOOKUP_FAILED", name, "TXT", error, "this DKIM key")
            continue
        if not lookup.records:
            audit.add(
                "DKIM_MISSING",
                f"the DKIM selector {selector} of {domain} has no key: signatures made with it "
                "fail",
                f"{name} TXT: {'NXDOMAIN' if lookup.nxdomain else 'no records'}",
                f'Publish the public key: `{name}. TXT "v=DKIM1; k=rsa; p=<base64 key>"`, or '
                "stop signing with this selector.",
            )
            continue
        record = lookup.records[0]
        facts = _audit_dkim_record(audit, name, record, selector)
        if len(lookup.records) > 1:
            facts["records"] = list(lookup.records)
            audit.add(
                "DKIM_SYNTAX",
                f"{name} holds {len(lookup.records)} TXT records: which key a verifier uses is "
                "undefined",
                " | ".join(f'{name} TXT "{r}"' for r in lookup.records),
                f"Keep one key record at {name}.",
            )
        audit.records["dkim"][selector] = facts


def _audit_dkim_record(audit: _Audit, name: str, record: str, selector: str) -> dict[str, Any]:
    evidence = f'{name} TXT "{_shorten(record)}"'
    facts: dict[str, Any] = {"record": record}
    try:
        pairs = _parse_tag_list(record)
        tags = dict(pairs)
        if "v" in tags and pairs[0] != ("v", "DKIM1"):
            raise _RecordError("v=DKIM1 must be the first tag when present")
        if "p" not in tags:
            raise _RecordError("the required p= tag (the public key) is missing")
        key_type = tags.get("k", "rsa").lower()
        if key_type not in ("rsa", "ed25519"):
            raise _RecordError(f"k={key_type} is not rsa or ed25519")
        key_text = re.sub(r"\s+", "", tags["p"])
        key_bits = _dkim_key_bits(key_type, key_text) if key_text else None
    except _RecordError as error:
        audit.add(
            "DKIM_SYNTAX",
            f"the DKIM key record at {name} is invalid: {error}; signatures with selector "
            f"{selector} fail (permerror)",
            evidence,
            f'Publish a well-formed key: `{name}. TXT "v=DKIM1; k=rsa; p=<base64 key>"` ({error}).',
        )
        return facts
    flags = [f.strip().lower() for f in tags.get("t", "").split(":") if f.strip()]
    facts.update({"key_type": key_type, "key_bits": key_bits, "flags": flags})
    if not key_text:
        audit.add(
            "DKIM_REVOKED",
            f"the DKIM key of selector {selector} is revoked (empty p=): signatures with it fail",
            evidence,
            "Nothing to do if the selector is retired; otherwise publish its key again or "
            "sign with a current selector.",
        )
        return facts
    if key_type == "rsa" and key_bits is not None and key_bits < 2048:
        weak = key_bits < 1024
        audit.add(
            "DKIM_KEY_WEAK",
            f"the DKIM key of selector {selector} is RSA {key_bits} bits: "
            + (
                "verifiers ignore signatures with keys under 1024 bits (RFC 8301)"
                if weak
                else "within reach of factoring; RFC 8301 asks for 2048"
            ),
            evidence,
            "Make a 2048-bit key under a new selector (`postwise dkim keygen "
            f"{audit.domain} <new selector>`), publish its record, switch signing to it, then "
            f"revoke {selector} with an empty p=.",
            "high" if weak else "medium",
        )
    if "y" in flags:
        audit.add(
            "DKIM_TESTING",
            f"the DKIM key of selector {selector} is in testing mode (t=y): verifiers may treat "
            "its signatures as absent",
            evidence,
            f"Once signing works, remove t=y from the record at {name} and keep the rest "
            f'(`{name}. TXT "{_shorten(_with_tag(pairs, "t", None), 60)}"`).',
        )
    return facts


def _dkim_key_bits(key_type: str, key_text: str) -> int:
    try:
        der = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise _RecordError("p= is not valid base64") from None
    if key_type == "ed25519":
        if len(der) != 32:
            raise _RecordError(f"an ed25519 key is 32 bytes, p= holds {len(der)}")
        return 256
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError):
        raise _RecordError("p= is not a DER-encoded public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise _RecordError("k=rsa but p= holds a key of another kind")
    return int(key.key_size)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- MTA-STS, TLS-RPT


def _audit_mta_sts(audit: _Audit, hosts: Sequence[_MxHost], fetcher: PolicyFetcher | None) -> None:
    domain = audit.domain
    name = f"_mta-sts.{domain}"
    policy_host = f"mta-sts.{domain}"
    url = f"https://{policy_host}/.well-known/mta-sts.txt"
    mx_lines = ", ".join(f'"mx: {h.host}"' for h in hosts) or f'"mx: mail.{domain}"'
    try:
        lookup = audit.resolver.txt(name)
    except DnsTemporaryError as error:
        audit.lookup_failed("MTA_STS_LOOKUP_FAILED", name, "TXT", error, "its MTA-STS policy")
        return
    records = [r for r in lookup.records if re.match(r"v=STSv1\s*(;|$)", r)]
    if not records:
        today = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
        audit.add(
            "MTA_STS_MISSING",
            f"{domain} publishes no MTA-STS policy: senders fall back to plaintext when an "
            "attacker strips STARTTLS",
            f"{name} TXT: no v=STSv1 record",
            f'Publish `{name}. TXT "v=STSv1; id={today}"` and serve {url} with the lines '
            f'"version: STSv1", "mode: testing", {mx_lines}, "max_age: 86400" (mode: enforce '
            "once the TLS reports are clean).",
        )
        return
    evidence = f'{name} TXT "{records[0]}"'
    problem = ""
    if len(records) > 1:
        problem = f"{len(records)} v=STSv1 records (senders then ignore MTA-STS)"
        evidence = " | ".join(f'{name} TXT "{r}"' for r in records)
    else:
        try:
            tags = dict(_parse_tag_list(records[0]))
            if not re.fullmatch(r"[A-Za-z0-9]{1,32}", tags.get("id", "")):
                problem = "id= must be 1 to 32 letters or digits"
        except _RecordError as error:
            problem = str(error)
    audit.records["mta_sts"] = {"record": records[0], "policy_url": url}
    if problem:
        audit.add(
            "MTA_STS_SYNTAX",
            f"the MTA-STS record at {name} is invalid: {problem}",
            evidence,
            f'Publish one record: `{name}. TXT "v=STSv1; id=<1-32 letters or digits, changed '
            'whenever the policy changes>"`.',
        )
    try:
        host_lookup = audit.resolver.addresses(policy_host)
    except DnsTemporaryError as error:
        audit.lookup_failed("MTA_STS_LOOKUP_FAILED", policy_host, "A/AAAA", error, "its host")
        return
    if host_lookup.void:
        audit.add(
            "MTA_STS_POLICY_HOST_MISSING",
            f"{domain} announces MTA-STS but {policy_host} has no address, so no sender can "
            "fetch the policy",
            f"{policy_host} A/AAAA: {'NXDOMAIN' if host_lookup.nxdomain else 'no records'}",
            f"Point {policy_host} at a web server with a valid certificate for it, serving {url}.",
        )
        return
    if fetcher is None:
        audit.add(
            "MTA_STS_POLICY_NOT_FETCHED",
            f"the MTA-STS policy at {url} was not fetched (the audit stays off the web unless "
            "asked), so its mode and mx patterns were not checked",
            evidence,
            "Audit again with --fetch-mta-sts to check the policy.",
        )
        return
    _check_mta_sts_policy(audit, url, hosts, fetcher)


def _check_mta_sts_policy(
    audit: _Audit, url: str, hosts: Sequence[_MxHost], fetcher: PolicyFetcher
) -> None:
    try:
        body = fetcher(url)
    except Exception as error:  # any failure of a pluggable fetcher means "unavailable"
        audit.add(
            "MTA_STS_POLICY_UNAVAILABLE",
            f"the MTA-STS policy at {url} could not be fetched: senders that cached it keep "
            "using it, new ones see no policy",
            f"{url}: {error}",
            f"Serve {url} over HTTPS with a certificate valid for its host, as text/plain, "
            "without redirects.",
        )
        return
    policy: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            policy.setdefault(key.strip().lower(), []).append(value.strip())
    problems = []
    if policy.get("version") != ["STSv1"]:
        problems.append("version: STSv1 is required")
    mode = (policy.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        problems.append("mode: must be enforce, testing or none")
    max_age = (policy.get("max_age") or [""])[0]
    if not max_age.isdigit() or int(max_age) > 31557600:
        problems.append("max_age: must be a number of seconds up to 31557600")
    patterns = [p.lower().rstrip(".") for p in policy.get("mx", [])]
    if mode in ("enforce", "testing") and not patterns:
        problems.append("mx: at least one is required")
    audit.records["mta_sts"]["policy"] = {"mode": mode, "max_age": max_age, "mx": patterns}
    evidence = f"{url}: " + " / ".join(line.strip() for line in body.splitlines() if line.strip())
    if problems:
        audit.add(
            "MTA_STS_POLICY_SYNTAX",
            f"the MTA-STS policy at {url} is invalid: " + "; ".join(problems),
            _shorten(evidence, 300),
            "Correct the policy file: " + "; ".join(problems) + ".",
        )
        return
    if mode == "testing":
        audit.add(
            "MTA_STS_TESTING",
            "the MTA-STS policy is in testing mode: failures are reported (TLS-RPT), not prevented",
            _shorten(evidence, 300),
            "When the TLS reports show no failures, change to mode: enforce and change the "
            "id= of the _mta-sts record.",
        )
    elif mode == "none":
        audit.add(
            "MTA_STS_MODE_NONE",
            "the MTA-STS policy is mode: none (withdrawn): senders do not apply it",
            _shorten(evidence, 300),
            "Nothing to do if MTA-STS is being withdrawn; otherwise use mode: testing or enforce.",
        )
    if mode == "none":
        return
    for host in hosts:
        if not any(_mx_pattern_matches(p, host.host) for p in patterns):
            audit.add(
                "MTA_STS_MX_NOT_COVERED",
                f"the MX host {host.host} matches no mx: line of the MTA-STS policy: senders "
                "that enforce it will not deliver there",
                _shorten(evidence, 300),
                f"Add `mx: {host.host}` to the policy and change the id= of the _mta-sts record.",
            )


def _mx_pattern_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and "." not in host[: -len(pattern) + 1]
    return pattern == host


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # RFC 8461 3.3: redirects must not be followed


def fetch_mta_sts_policy(url: str, timeout: float = 10.0) -> str:
    """Fetch an MTA-STS policy over HTTPS with certificate validation, no redirects, at most
    64 KiB (RFC 8461 3.3). This is the public internet: the audit calls it only when given as
    ``mta_sts_fetcher``. Raises OSError (urllib's errors) when the policy is unavailable."""
    opener = urllib.request.build_opener(
        _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    with opener.open(url, timeout=timeout) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        data: bytes = response.read(65537)
    if len(data) > 65536:
        raise OSError("the policy is larger than 64 KiB")
    return data.decode("utf-8", "replace")


def _audit_tlsrpt(audit: _Audit) -> None:
    domain = audit.domain
    name = f"_smtp._tls.{domain}"
    try:
        lookup = audit.resolver.txt(name)
    except DnsTemporaryError as error:
        audit.lookup_failed("TLSRPT_LOOKUP_FAILED", name, "TXT", error, "its TLS reporting")
        return
    records = [r for r in lookup.records if re.match(r"v=TLSRPTv1\s*(;|$)", r)]
    if not records:
        audit.add(
            "TLSRPT_MISSING",
            f"{domain} asks for no SMTP TLS reports (TLS-RPT): failed or downgraded TLS to its "
            "MX goes unseen",
            f"{name} TXT: no v=TLSRPTv1 record",
            f'Publish `{name}. TXT "v=TLSRPTv1; rua=mailto:tls-reports@{audit.org}"`.',
        )
        return
    audit.records["tlsrpt"] = {"record": records[0]}
    problems: list[str] = []
    if len(records) > 1:
        problems.append(f"{len(records)} v=TLSRPTv1 records (senders then send no reports)")
    try:
        rua = dict(_parse_tag_list(records[0])).get("rua", "")
        if not rua:
            problems.append("the required rua= tag is missing")
        for uri in filter(None, (u.strip() for u in rua.split(","))):
            if not re.match(r"(mailto:[^@\s]+@[^@\s]+|https://\S+)$", uri, re.IGNORECASE):
                problems.append(f"{uri!r} is not a mailto: or https: URI")
    except _RecordError as error:
        problems.append(str(error))
    if problems:
        audit.add(
            "TLSRPT_SYNTAX",
            f"the TLS-RPT record at {name} is invalid: " + "; ".join(problems),
            " | ".join(f'{name} TXT "{r}"' for r in records),
            f'Publish one record: `{name}. TXT "v=TLSRPTv1; rua=mailto:tls-reports@{audit.org}"`.',
        )


# --------------------------------------------------------------------------- BIMI, DNSSEC


def _audit_bimi(audit: _Audit, dmarc: _Dmarc) -> None:
    domain = audit.domain
    name = f"default._bimi.{domain}"
    try:
        lookup = audit.resolver.txt(name)
    except DnsTemporaryError as error:
        audit.lookup_failed("BIMI_LOOKUP_FAILED", name, "TXT", error, "its BIMI logo")
        return
    records = [r for r in lookup.records if re.match(r"v=BIMI1\s*(;|$)", r, re.IGNORECASE)]
    if not records:
        audit.add(
            "BIMI_MISSING",
            f"{domain} publishes no BIMI record (optional: a logo shown by some mailboxes, "
            "which needs an enforcing DMARC policy)",
            f"{name} TXT: no v=BIMI1 record",
            f'Optional: publish `{name}. TXT "v=BIMI1; l=https://{domain}/logo.svg"` (an SVG '
            "Tiny PS logo; some mailboxes also require a mark certificate in a=).",
        )
        return
    evidence = f'{name} TXT "{records[0]}"'
    audit.records["bimi"] = {"record": records[0]}
    problems: list[str] = []
    try:
        tags = dict(_parse_tag_list(records[0]))
        for tag in ("l", "a"):
            value = tags.get(tag, "")
            if value and not value.lower().startswith("https://"):
                problems.append(f"{tag}= must be an https:// URL")
        if "l" not in tags:
            problems.append("the l= tag (the logo URL) is missing")
    except _RecordError as error:
        problems.append(str(error))
    if len(records) > 1:
        problems.append(f"{len(records)} v=BIMI1 records")
    if problems:
        audit.add(
            "BIMI_SYNTAX",
            f"the BIMI record at {name} is invalid: " + "; ".join(problems),
            evidence,
            f'Publish one record: `{name}. TXT "v=BIMI1; l=https://{domain}/logo.svg"`.',
        )
    if not dmarc.enforced or dmarc.pct < 100:
        audit.add(
            "BIMI_DMARC_NOT_ENFORCED",
            f"{domain} publishes BIMI but its DMARC policy is not quarantine or reject at "
            "pct=100: mailboxes do not show the logo",
            evidence,
            "Move DMARC to p=quarantine or p=reject without pct (see the DMARC findings).",
        )


def _dnssec_authenticated(resolver: Resolver, name: str) -> bool | None:
    """Whether the resolver reports ``name``'s answer as validated (the AD bit); None when it
    could not be asked. Lookup does not carry the AD bit, so this asks the same servers once
    more with the DO bit (RFC 6840 5.7: validating resolvers then set AD). The query's own AD
    bit stays clear: a server that echoes the query's flags must not read as validating."""
    servers = resolver.servers
    if not servers:
        try:
            system = dns.resolver.get_default_resolver()
        except dns.exception.DNSException:
            return None
        servers = [(str(address), int(system.port)) for address in system.nameservers]
    query = dns.message.make_query(name, "SOA", want_dnssec=True)
    query.flags &= ~dns.flags.AD
    for host, port in servers[:2]:
        try:
            response = dns.query.udp(query, host, port=port, timeout=min(resolver.timeout, 3.0))
        except (dns.exception.DNSException, OSError, ValueError):
            continue
        return bool(response.flags & dns.flags.AD)
    return None


def _audit_dnssec(audit: _Audit) -> None:
    domain = audit.domain
    authenticated = _dnssec_authenticated(audit.resolver, domain)
    where = ", ".join(f"{h}:{p}" for h, p in audit.resolver.servers) or "the system resolver"
    audit.records["dnssec"] = {True: "validated", False: "unknown", None: "unknown"}[authenticated]
    if authenticated:
        audit.add(
            "DNSSEC_VALIDATED",
            f"the resolver validated {domain} with DNSSEC (AD bit set)",
            f"{domain} SOA from {where}: AD=1",
            "Nothing to do; DNSSEC also allows DANE for SMTP (TLSA records on the MX hosts).",
        )
        return
    audit.add(
        "DNSSEC_UNKNOWN",
        f"DNSSEC for {domain} is unknown: the resolver did not report its answer as validated "
        "(the zone may be unsigned, or the resolver may not validate)",
        f"{domain} SOA from {where}: "
        + ("AD=0" if authenticated is False else "no answer to the AD query"),
        "Audit through a validating resolver (--resolver) to tell; to sign the zone, enable "
        "DNSSEC at the DNS host and publish the DS record at the registrar.",
    )


# --------------------------------------------------------------------------- STARTTLS


@dataclass(frozen=True, slots=True)
class _TlsProbe:
    host: str
    target: str  # address:port tried last
    reachable: bool
    starttls: bool = False  # advertised in the EHLO reply
    handshake: bool = False
    detail: str = ""  # the reply or error behind the outcome
    tls_version: str = ""
    certificate: bytes = b""


def _audit_starttls(
    audit: _Audit, hosts: Sequence[_MxHost], port: int, timeout: float, ehlo_name: str
) -> None:
    audit.records["starttls_checked"] = True
    probed = list(hosts)[:_MX_PROBE_LIMIT]
    with ThreadPoolExecutor(max_workers=min(8, len(probed))) as pool:
        probes = list(
            pool.map(
                lambda h: _probe_starttls(h.host, h.addresses, port, timeout, ehlo_name), probed
            )
        )
    for host, probe in zip(probed, probes, strict=True):
        host.starttls = {"reachable": probe.reachable, "advertised": probe.starttls}
        for item in audit.records["mx"]:
            if item["host"] == host.host:
                item["starttls"] = host.starttls
        if not probe.reachable:
            audit.add(
                "MX_UNREACHABLE",
                f"the MX host {host.host} could not be reached on port {port} from here, so "
                "STARTTLS was not checked (many networks block outbound port 25)",
                f"{probe.target}: {probe.detail}",
                "Nothing to do if it answers from elsewhere; otherwise audit from a host that "
                f"can reach port {port}, or check that {host.host} accepts connections.",
            )
        elif not probe.starttls:
            audit.add(
                "MX_NO_STARTTLS",
                f"the MX host {host.host} does not offer STARTTLS: mail to {audit.domain} "
                "crosses the internet in plaintext",
                f"{probe.target}: {probe.detail}",
                f"Enable STARTTLS on {host.host} with a certificate for its name (Postfix: "
                "smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may).",
            )
        elif not probe.handshake:
            audit.add(
                "MX_STARTTLS_FAILED",
                f"the MX host {host.host} offers STARTTLS but the TLS handshake failed: senders "
                "fall back to plaintext or defer",
                f"{probe.target}: {probe.detail}",
                f"Check the certificate, key and TLS protocol settings of {host.host} "
                f"(`openssl s_client -starttls smtp -connect {host.host}:{port}`).",
            )
        else:
            _report_certificate(audit, host, probe)


def _report_certificate(audit: _Audit, host: _MxHost, probe: _TlsProbe) -> None:
    from cryptography import x509

    try:
        certificate = x509.load_der_x509_certificate(probe.certificate)
    except ValueError as error:
        audit.add(
            "MX_STARTTLS_FAILED",
            f"the MX host {host.host} sent a certificate that does not parse",
            f"{probe.target}: {error}",
            f"Install a valid certificate for {host.host}.",
        )
        return
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = [
            str(a.value)
            for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ]
    expires = certificate.not_valid_after_utc
    self_signed = certificate.issuer == certificate.subject
    subject = certificate.subject.rfc4514_string()
    facts = {
        "tls_version": probe.tls_version,
        "subject": subject,
        "issuer": certificate.issuer.rfc4514_string(),
        "names": names,
        "not_after": expires.isoformat(),
        "self_signed": self_signed,
    }
    assert host.starttls is not None
    host.starttls.update(facts)
    evidence = (
        f"{probe.target}: {probe.tls_version}, subject {subject}, "
        f"{'self-signed' if self_signed else 'issuer ' + certificate.issuer.rfc4514_string()}, "
        f"names {', '.join(names) or 'none'}, expires {expires:%Y-%m-%d}"
    )
    audit.add(
        "MX_TLS_CERTIFICATE",
        f"{host.host} offers STARTTLS ({probe.tls_version}); its certificate was not validated",
        evidence,
        "Nothing to do; MTA-STS in enforce mode (or DANE) needs the certificate to be valid "
        "for the MX name and issued by a public CA.",
    )
    if expires < datetime.datetime.now(datetime.UTC):
        audit.add(
            "MX_CERTIFICATE_EXPIRED",
            f"the certificate of {host.host} expired on {expires:%Y-%m-%d}: senders that "
            "validate (MTA-STS, DANE) will not deliver",
            evidence,
            f"Renew the certificate of {host.host} (and automate renewal, e.g. ACME).",
        )
    if not any(_certificate_name_matches(n.lower(), host.host) for n in names):
        audit.add(
            "MX_CERTIFICATE_NAME_MISMATCH",
            f"the certificate of {host.host} is not issued for that name: senders that "
            "validate (MTA-STS) will not deliver",
            evidence,
            f"Install a certificate whose subjectAltName includes {host.host}.",
        )


def _certificate_name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") == pattern.count(".")
    return pattern.rstrip(".") == host


def _read_reply(stream: BinaryIO) -> tuple[int, list[str]]:
    """One SMTP reply: (code, lines without the code)."""
    lines: list[str] = []
    while len(lines) < 100:
        raw = stream.readline(2048)
        if not raw:
            raise ConnectionError("the server closed the connection")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise ConnectionError(f"not an SMTP reply: {text[:80]!r}")
        lines.append(text[4:])
        if text[3:4] != "-":
            return int(text[:3]), lines
    raise ConnectionError("an SMTP reply of more than 100 lines")


def _probe_starttls(
    host: str, addresses: Sequence[str], port: int, timeout: float, ehlo_name: str
) -> _TlsProbe:
    """Connect to ``host`` (its first reachable address), EHLO, STARTTLS and complete the
    handshake without validating the certificate (the probe reports it; it does not trust it)."""
    target, detail = f"{host} port {port}", "no address"
    for address in list(addresses)[:2]:
        target = f"{host} ({address} port {port})"
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as error:
            detail = f"connect: {error}"
            continue
        try:
            return _starttls_dialogue(sock, host, target, ehlo_name)
        except (OSError, ValueError) as error:
            detail = f"{error}"
        finally:
            sock.close()
    return _TlsProbe(host, target, reachable=False, detail=detail)


def _starttls_dialogue(sock: socket.socket, host: str, target: str, ehlo_name: str) -> _TlsProbe:
    stream = sock.makefile("rb")
    code, banner = _read_reply(stream)
    if code != 220:
        raise ConnectionError(f"the greeting was {code} {' '.join(banner)[:120]}")
    sock.sendall(f"EHLO {ehlo_name}\r\n".encode("ascii"))
    code, lines = _read_reply(stream)
    ehlo = f"EHLO reply {code} " + " / ".join(lines)[:200]
    if code != 250 or not any(line.split(" ")[0].upper() == "STARTTLS" for line in lines[1:]):
        return _TlsProbe(host, target, True, detail=f"{ehlo} (no STARTTLS)")
    sock.sendall(b"STARTTLS\r\n")
    code, lines = _read_reply(stream)
    if code != 220:
        return _TlsProbe(host, target, True, True, detail=f"STARTTLS answered {code} {lines}")
    stream.close()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as error:
        return _TlsProbe(host, target, True, True, detail=f"TLS handshake: {error}")
    try:
        certificate = tls.getpeercert(binary_form=True) or b""
        version = tls.version() or ""
        with contextlib.suppress(OSError):  # the probe is over either way
            tls.sendall(b"QUIT\r\n")
    finally:
        tls.close()
    return _TlsProbe(host, target, True, True, True, ehlo, version, certificate)
