"""The DMARC check: the policy that applies to the domain (its own or inherited), its tags, and
the authorisation of external report addresses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from postwise.auth.dns import DnsTemporaryError
from postwise.mail.domains import registered_domain
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.records import HOSTNAME, RecordError, parse_tag_list, with_tag


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
        if not at or not local or not HOSTNAME.fullmatch(host):
            problems.append(f"{tag}: {uri!r} is not a valid address")
            continue
        domains.append(host.rstrip(".").lower())
    return domains


@dataclass
class Dmarc:
    enforced: bool = False
    policy: str | None = None  # the policy that applies to the domain
    pct: int = 100


def audit_dmarc(audit: Audit) -> Dmarc:
    domain, org = audit.domain, audit.org
    name = f"_dmarc.{domain}"
    try:
        records = [r for r in audit.resolver.txt(name).records if _is_dmarc(r)]
    except DnsTemporaryError as error:
        audit.lookup_failed("DMARC_LOOKUP_FAILED", name, "TXT", error, "its DMARC policy")
        return Dmarc()
    inherited = False
    if not records and org != domain:
        org_name = f"_dmarc.{org}"
        try:
            records = [r for r in audit.resolver.txt(org_name).records if _is_dmarc(r)]
        except DnsTemporaryError as error:
            audit.lookup_failed("DMARC_LOOKUP_FAILED", org_name, "TXT", error, "its DMARC policy")
            return Dmarc()
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
        return Dmarc()
    if len(records) > 1:
        audit.add(
            "DMARC_MULTIPLE_RECORDS",
            f"{name} holds {len(records)} DMARC records: receivers ignore them all "
            "(RFC 7489 6.6.3)",
            " | ".join(f'{name} TXT "{r}"' for r in records),
            f"Keep one v=DMARC1 record at {name} and delete the others.",
        )
        audit.records["dmarc"] = {"records": records, "location": name}
        return Dmarc()
    record = records[0]
    evidence = f'{name} TXT "{record}"'
    try:
        pairs = parse_tag_list(record)
    except RecordError as error:
        audit.add(
            "DMARC_SYNTAX",
            f"the DMARC record at {name} does not parse: {error}; receivers ignore it",
            evidence,
            f'Publish a well-formed record, e.g. `{name}. TXT "v=DMARC1; p=none; '
            f'rua=mailto:dmarc-reports@{org}"` (tags separated by semicolons).',
        )
        return Dmarc()
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
        fix_record = with_tag(pairs, "sp" if inherited and "sp" in tags else "p", "quarantine")
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
            f'Publish `{name}. TXT "{with_tag(pairs, "sp", None)}"` (sp defaults to p).',
        )
    if applied != "none" and pct < 100:
        audit.add(
            "DMARC_PCT_PARTIAL",
            f"the DMARC policy of {domain} applies to {pct}% of failing mail only; the rest "
            "is treated as p=none",
            evidence,
            f'Publish `{name}. TXT "{with_tag(pairs, "pct", None)}"` (pct defaults to 100).',
        )
    if not rua:
        audit.add(
            "DMARC_NO_RUA",
            f"the DMARC record at {name} asks for no aggregate reports (rua): nobody sees who "
            "sends as the domain or what fails",
            evidence,
            f'Publish `{name}. TXT "{with_tag(pairs, "rua", f"mailto:dmarc-reports@{org}")}"` '
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
    return Dmarc(enforced=applied != "none", policy=applied, pct=pct)


def _check_report_authorisation(
    audit: Audit, policy_domain: str, report_domains: Iterable[str], evidence: str
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
