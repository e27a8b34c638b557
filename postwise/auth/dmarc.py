"""DMARC evaluation (RFC 7489): policy discovery, identifier alignment, policy and ``pct``.

Discovery (6.6.3): the TXT records at ``_dmarc.<From domain>`` that start with ``v=DMARC1``;
none there, then those at ``_dmarc.<Organizational Domain>`` (the registered domain, from the
public suffix list shipped with tldextract: no network). More than one record, or none, and
DMARC is not applied (result ``none``). A DNS failure is ``temperror``, never ``none``.

A record whose ``p=`` (or ``sp=``) is missing or invalid is read as ``p=none`` when it names
a syntactically valid ``rua=`` URI (6.6.3 step 6.1); otherwise DMARC is not applied to the
message and the result is ``permerror`` (11.2: "a syntactically incorrect DMARC record").
Other tags with invalid values (``adkim``, ``aspf``, ``pct``) keep their defaults; unknown
tags are ignored (6.3).

Alignment (3.1): an SPF ``pass`` for the MAIL FROM domain (the HELO domain for the null
sender: RFC 7208 2.4 makes it the MAIL FROM identity), or a DKIM ``pass`` whose ``d=`` is,
with the From domain, the same domain (strict) or the same Organizational Domain (relaxed).

``pct`` (6.6.4): a failing message is sampled with a deterministic draw from ``sample_key``
(the message's SHA-256), so the same message always gets the same disposition; one outside
the sample gets the next policy down (reject -> quarantine -> none).

A message that aligns nowhere while SPF or a DKIM signature gave ``temperror`` is
``temperror``, not ``fail``: the pass that would have aligned may be behind the DNS failure,
and a ``p=reject`` must not be enforced on our own DNS trouble.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.auth.results import DkimResult, DmarcPolicy, DmarcResult, SpfResult
from postwise.mail.domains import registered_domain

_VERSION = re.compile(r"^\s*v\s*=\s*DMARC1\s*(;|$)")
_POLICIES: dict[str, DmarcPolicy] = {"none": "none", "quarantine": "quarantine", "reject": "reject"}
_NEXT_DOWN: dict[DmarcPolicy, DmarcPolicy] = {
    "reject": "quarantine",
    "quarantine": "none",
    "none": "none",
}
# RFC 7489 6.2: a DMARC URI is a URI (mailto: in practice) with an optional size suffix.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s!]+(![0-9]+[kmgt]?)?$")


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """A parsed DMARC policy record."""

    policy: DmarcPolicy
    subdomain_policy: DmarcPolicy
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    note: str = ""  # what was wrong with the record and how it was read


class DmarcRecordError(ValueError):
    """A DMARC record that cannot be applied (no valid p= and no valid rua=)."""


def parse_record(text: str) -> DmarcRecord:
    """The record ``text`` (which starts with ``v=DMARC1``). Raises DmarcRecordError when it
    cannot be applied: an invalid or missing ``p=`` or invalid ``sp=`` without a valid
    ``rua=`` (RFC 7489 6.6.3 step 6)."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if equals and name and name not in tags:
            tags[name] = value.strip()
    notes: list[str] = []
    policy = _POLICIES.get(tags.get("p", "").lower())
    sp_text = tags.get("sp")
    subdomain_policy = _POLICIES.get(sp_text.lower()) if sp_text is not None else policy
    if policy is None or subdomain_policy is None:
        problem = (
            f"invalid p={tags['p']!r}"
            if "p" in tags and policy is None
            else ("no p= tag" if policy is None else f"invalid sp={sp_text!r}")
        )
        rua = [uri.strip() for uri in tags.get("rua", "").split(",") if uri.strip()]
        if not any(_URI.match(uri) for uri in rua):
            raise DmarcRecordError(f"{problem} and no valid rua=: not applied (RFC 7489 6.6.3)")
        notes.append(f"{problem}; read as p=none for its valid rua= (RFC 7489 6.6.3)")
        policy = subdomain_policy = "none"
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    if adkim not in ("r", "s"):
        notes.append(f"invalid adkim={adkim!r} read as r")
        adkim = "r"
    if aspf not in ("r", "s"):
        notes.append(f"invalid aspf={aspf!r} read as r")
        aspf = "r"
    pct_text = tags.get("pct", "100")
    if pct_text.isdigit() and 0 <= int(pct_text) <= 100:
        pct = int(pct_text)
    else:
        notes.append(f"invalid pct={pct_text!r} read as 100")
        pct = 100
    return DmarcRecord(policy, subdomain_policy, adkim, aspf, pct, "; ".join(notes))


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    """Whether an authenticated ``domain`` aligns with ``from_domain``: equal (``s``), or with
    the same Organizational Domain (``r``)."""
    domain, from_domain = _normal(domain), _normal(from_domain)
    if not domain or not from_domain:
        return False
    if mode == "s":
        return domain == from_domain
    return registered_domain(domain) == registered_domain(from_domain)


def sampled(sample_key: str, from_domain: str, pct: int) -> bool:
    """Whether a message falls in a policy's ``pct`` sample: a deterministic draw in [0, 100)
    from the message's key and the domain."""
    if pct >= 100:
        return True
    digest = hashlib.sha256(f"{sample_key}\0{from_domain}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < pct


def _normal(domain: str) -> str:
    return domain.strip().rstrip(".").lower()


def _records_at(name: str, resolver: Resolver) -> list[str]:
    return [r for r in resolver.txt(name).records if _VERSION.match(r)]


def check_dmarc(
    from_domain: str,
    spf: SpfResult | None,
    dkim: Sequence[DkimResult],
    resolver: Resolver,
    sample_key: str = "",
) -> DmarcResult:
    """The DMARC result for a message from ``from_domain`` (the RFC5322.From domain) with the
    given SPF and DKIM results. ``sample_key`` (the message's SHA-256) makes ``pct`` sampling
    deterministic. Never raises: DNS failures give ``temperror``."""
    domain = _normal(from_domain)
    if not domain or "." not in domain:
        return DmarcResult("none", domain, reason="no usable RFC5322.From domain")
    organisational = registered_domain(domain)
    try:
        found_at = domain
        records = _records_at(f"_dmarc.{domain}", resolver)
        if not records and organisational and organisational != domain:
            found_at = organisational
            records = _records_at(f"_dmarc.{organisational}", resolver)
    except DnsTemporaryError as error:
        return DmarcResult("temperror", domain, reason=str(error))
    if not records:
        return DmarcResult("none", domain, reason="no DMARC record")
    if len(records) > 1:
        return DmarcResult(
            "none",
            domain,
            reason=f"{len(records)} DMARC records at _dmarc.{found_at}: not applied "
            "(RFC 7489 6.6.3)",
        )
    try:
        record = parse_record(records[0])
    except DmarcRecordError as error:
        return DmarcResult("permerror", domain, reason=f"_dmarc.{found_at}: {error}")
    policy = record.policy if found_at == domain else record.subdomain_policy
    spf_aligned = (
        spf is not None and spf.result == "pass" and aligned(spf.domain, domain, record.aspf)
    )
    dkim_aligned = any(s.result == "pass" and aligned(s.domain, domain, record.adkim) for s in dkim)
    details = [f"record at _dmarc.{found_at}"]
    if record.note:
        details.append(record.note)
    if spf_aligned or dkim_aligned:
        return DmarcResult(
            "pass", domain, policy, "none", spf_aligned, dkim_aligned, "; ".join(details)
        )
    unsure = [
        name
        for name, word in [("SPF", spf.result if spf else "none")]
        + [("DKIM", s.result) for s in dkim]
        if word == "temperror"
    ]
    if unsure:
        # A temporary failure may hide the pass that would align: not a fail to act on.
        details.append(f"{' and '.join(sorted(set(unsure)))} temperror: alignment unknown")
        return DmarcResult("temperror", domain, policy, "none", reason="; ".join(details))
    disposition = policy
    if policy != "none" and not sampled(sample_key, domain, record.pct):
        disposition = _NEXT_DOWN[policy]
        details.append(f"outside the pct={record.pct} sample: {disposition}")
    return DmarcResult("fail", domain, policy, disposition, False, False, "; ".join(details))
