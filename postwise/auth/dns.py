"""The one DNS resolver every authentication check uses (dnspython underneath).

Pointed at the system's resolvers by default, or at ``dns_servers`` (``host`` or ``host:port``)
from the settings, which is how tests and ``postwise conformance`` use a local authoritative
server. Answers distinguish the three outcomes the RFCs care about:

* records (possibly none: NODATA),
* the name does not exist (NXDOMAIN; SPF counts it as a void lookup),
* the lookup failed (timeout, SERVFAIL, network): :class:`DnsTemporaryError`, which checks
  report as ``temperror`` — never as "no record".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from postwise.core.errors import PostwiseError
from postwise.core.settings import Settings, get_settings


class DnsTemporaryError(PostwiseError):
    """A DNS lookup failed in a way that may succeed later (timeout, SERVFAIL, no server)."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """The records of one lookup (as text, in zone-file presentation for non-TXT types; TXT
    strings of one record joined, as RFC 7208 3.3 and RFC 6376 3.6.2.2 require)."""

    records: tuple[str, ...]
    nxdomain: bool = False

    @property
    def void(self) -> bool:
        """No records at all (NXDOMAIN or NODATA): RFC 7208 4.6.4's void lookup."""
        return not self.records


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` -> (address, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host, int(port or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


class Resolver:
    """Resolves names for the checks. Thread-safe; holds no per-query state."""

    def __init__(self, servers: list[tuple[str, int]] | None = None, timeout: float = 5.0):
        if servers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host for host, _ in servers]
            resolver.port = servers[0][1]
            ports = {port for _, port in servers}
            if len(ports) > 1:
                raise ValueError(f"DNS servers must share one port, not {sorted(ports)}")
        else:
            resolver = dns.resolver.Resolver(configure=True)
        resolver.lifetime = timeout
        resolver.timeout = min(timeout, 2.0)
        resolver.cache = None
        self._resolver = resolver
        self.servers = servers or []
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        settings = settings or get_settings()
        servers = [parse_server(s) for s in settings.dns_servers]
        return cls(servers or None, settings.dns_timeout)

    def query(self, name: str, rdtype: str) -> Lookup:
        """Records of type ``rdtype`` at ``name``. Raises DnsTemporaryError when the lookup
        fails; an invalid name is a lookup that found nothing."""
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, ValueError, UnicodeError):
            return Lookup((), nxdomain=True)
        try:
            answer = self._resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup((), nxdomain=True)
        except dns.resolver.YXDOMAIN:
            return Lookup((), nxdomain=True)
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed: {error}") from error
        except dns.exception.DNSException as error:
            raise DnsTemporaryError(f"DNS lookup of {name} {rdtype} failed: {error}") from error
        if answer.rrset is None:
            return Lookup(())
        records: list[str] = []
        for rdata in answer.rrset:
            if rdata.rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF):
                records.append(b"".join(rdata.strings).decode("utf-8", "surrogateescape"))
            else:
                records.append(rdata.to_text())
        return Lookup(tuple(records))

    def txt(self, name: str) -> Lookup:
        return self.query(name, "TXT")

    def addresses(self, name: str) -> Lookup:
        """A and AAAA records together (a void lookup only when both are empty)."""
        v4 = self.query(name, "A")
        v6 = self.query(name, "AAAA")
        return Lookup(v4.records + v6.records, nxdomain=v4.nxdomain and v6.nxdomain)

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, exchange) pairs, best first."""
        pairs = []
        for record in self.query(name, "MX").records:
            preference, _, exchange = record.partition(" ")
            pairs.append((int(preference), exchange.rstrip(".")))
        return sorted(pairs)

    def ptr(self, ip: str) -> Lookup:
        address = ipaddress.ip_address(ip)
        return self.query(dns.reversename.from_address(str(address)).to_text(), "PTR")


@lru_cache(maxsize=1)
def default_resolver() -> Resolver:
    """The process-wide resolver built from the settings."""
    return Resolver.from_settings()
