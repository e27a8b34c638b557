"""The DNSSEC check: whether the resolver reports the domain's answers as validated."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.resolver

from postwise.auth.dns import Resolver
from postwise.ops.domain_audit.context import Audit


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


def audit_dnssec(audit: Audit) -> None:
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
