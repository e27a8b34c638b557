"""The BIMI check: the ``default._bimi`` record and the enforcing DMARC policy it needs."""

from __future__ import annotations

import re

from postwise.auth.dns import DnsTemporaryError
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.dmarc import Dmarc
from postwise.ops.domain_audit.records import RecordError, parse_tag_list


def audit_bimi(audit: Audit, dmarc: Dmarc) -> None:
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
        tags = dict(parse_tag_list(records[0]))
        for tag in ("l", "a"):
            value = tags.get(tag, "")
            if value and not value.lower().startswith("https://"):
                problems.append(f"{tag}= must be an https:// URL")
        if "l" not in tags:
            problems.append("the l= tag (the logo URL) is missing")
    except RecordError as error:
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
