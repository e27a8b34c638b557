"""The TLS-RPT check: the ``_smtp._tls`` record that asks for SMTP TLS reports."""

from __future__ import annotations

import re

from postwise.auth.dns import DnsTemporaryError
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.records import RecordError, parse_tag_list


def audit_tlsrpt(audit: Audit) -> None:
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
        rua = dict(parse_tag_list(records[0])).get("rua", "")
        if not rua:
            problems.append("the required rua= tag is missing")
        for uri in filter(None, (u.strip() for u in rua.split(","))):
            if not re.match(r"(mailto:[^@\s]+@[^@\s]+|https://\S+)$", uri, re.IGNORECASE):
                problems.append(f"{uri!r} is not a mailto: or https: URI")
    except RecordError as error:
        problems.append(str(error))
    if problems:
        audit.add(
            "TLSRPT_SYNTAX",
            f"the TLS-RPT record at {name} is invalid: " + "; ".join(problems),
            " | ".join(f'{name} TXT "{r}"' for r in records),
            f'Publish one record: `{name}. TXT "v=TLSRPTv1; rua=mailto:tls-reports@{audit.org}"`.',
        )
