"""The MX check: where the domain's mail goes (null MX, hosts without an address)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from postwise.auth.dns import DnsTemporaryError
from postwise.ops.domain_audit.context import Audit


@dataclass
class MxHost:
    preference: int
    host: str
    addresses: list[str] = field(default_factory=list)
    starttls: dict[str, Any] | None = None


def audit_mx(audit: Audit) -> tuple[list[MxHost], bool, bool]:
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
    hosts: list[MxHost] = []
    for preference, host in pairs:
        if not host:
            continue
        entry = MxHost(preference, host)
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
