"""A small authoritative DNS server (dnslib) on loopback, serving records given in code.

Used by the tests and by ``postwise conformance``: the public suites describe the DNS each case
needs, and this server answers exactly that over real UDP and TCP, so the code under test
resolves through the same :class:`~postwise.auth.dns.Resolver` as in production. Names listed
in ``timeouts`` get no answer at all; names in ``servfail`` get SERVFAIL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSError, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One record. ``value``: an address (A/AAAA), a name (PTR/CNAME), ``(preference, host)``
    (MX), or a string or list of strings (TXT/SPF; a list is one record of several strings)."""

    name: str
    rtype: str
    value: Any
    ttl: int = 300


def _key(name: str) -> str:
    """Names as the server compares them: dnslib's presentation form (so labels with spaces or
    other special characters match the queries), lower case, no trailing dot."""
    return str(DNSLabel(name.rstrip(".") or ".")).rstrip(".").lower()


def _txt_strings(value: Any) -> list[bytes]:
    parts = value if isinstance(value, list | tuple) else [value]
    out = []
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8")
        # A TXT string holds at most 255 octets: split longer ones, as zone files do.
        out += [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return out or [b""]  # a TXT record has at least one (possibly empty) string


def _rdata(record: ZoneRecord) -> Any:
    rtype = record.rtype.upper()
    if rtype == "A":
        return A(str(record.value))
    if rtype == "AAAA":
        return AAAA(str(record.value))
    if rtype in ("TXT", "SPF"):
        return TXT(_txt_strings(record.value))
    if rtype == "MX":
        preference, host = record.value
        return MX(str(host), int(preference))
    if rtype == "PTR":
        return PTR(str(record.value))
    if rtype == "CNAME":
        return CNAME(str(record.value))
    raise ValueError(f"unsupported record type {record.rtype!r} for {record.name}")


@dataclass
class _Zone:
    records: dict[tuple[str, str], list[ZoneRecord]] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    timeouts: set[str] = field(default_factory=set)
    servfail: set[str] = field(default_factory=set)


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: _Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        reply.header.aa = 1
        qname = str(request.q.qname)
        name = _key(qname)
        qtype = QTYPE[request.q.qtype]
        if name in self.zone.timeouts:
            raise DNSError(f"{name}: configured to time out")  # dnslib then sends nothing
        if name in self.zone.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        records = self.zone.records.get((name, qtype), [])
        if not records and qtype != "CNAME" and (name, "CNAME") in self.zone.records:
            chain: list[tuple[str, ZoneRecord]] = []
            owner, target, seen = qname, name, {name}
            for _ in range(8):  # follow a chain of aliases, as a recursive resolver would
                aliases = self.zone.records.get((target, "CNAME"), [])
                if not aliases:
                    break
                chain.append((owner, aliases[0]))
                owner, target = str(aliases[0].value), _key(str(aliases[0].value))
                if target in seen:  # a loop: answer its first step only, as before chains
                    chain, target = chain[:1], ""
                    break
                seen.add(target)
            for alias_owner, alias in chain:
                reply.add_answer(RR(alias_owner, QTYPE.CNAME, rdata=_rdata(alias), ttl=alias.ttl))
            for record in self.zone.records.get((target, qtype), []):
                rdtype = getattr(QTYPE, record.rtype.upper())
                reply.add_answer(RR(owner, rdtype, rdata=_rdata(record), ttl=record.ttl))
            return reply
        for record in records:
            rdtype = getattr(QTYPE, record.rtype.upper())
            reply.add_answer(RR(qname, rdtype, rdata=_rdata(record), ttl=record.ttl))
        if not records and name not in self.zone.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _QuietLogger(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


class ZoneServer:
    """An authoritative server for the given records on 127.0.0.1 (UDP and TCP, one port).

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``address`` is
    ``127.0.0.1:<port>``, ready for ``dns_servers``."""

    def __init__(
        self,
        records: Iterable[ZoneRecord] = (),
        timeouts: Iterable[str] = (),
        servfail: Iterable[str] = (),
    ) -> None:
        self._zone = _Zone()
        self.load(records, timeouts, servfail)
        self._udp: DNSServer | None = None
        self._tcp: DNSServer | None = None
        self._lock = threading.Lock()
        self.port = 0

    def load(
        self,
        records: Iterable[ZoneRecord],
        timeouts: Iterable[str] = (),
        servfail: Iterable[str] = (),
    ) -> None:
        """Replace what the server answers (safe while it runs)."""
        zone = _Zone()
        for record in records:
            _rdata(record)  # fail here, with the record named, not inside the server
            zone.records.setdefault((_key(record.name), record.rtype.upper()), []).append(record)
            # Every parent of a name exists too (empty non-terminals answer NODATA).
            labels = _key(record.name).split(".")
            zone.names.update(".".join(labels[i:]) for i in range(len(labels)))
        zone.timeouts = {_key(name) for name in timeouts}
        zone.servfail = {_key(name) for name in servfail}
        self._zone = zone
        for server in (getattr(self, "_udp", None), getattr(self, "_tcp", None)):
            if server is not None:
                server.server.resolver.zone = zone

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ZoneServer:
        resolver = _ZoneResolver(self._zone)
        for _ in range(20):  # the UDP port's TCP twin may be taken; try another
            udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=_QuietLogger())
            port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(
                    resolver, address="127.0.0.1", port=port, tcp=True, logger=_QuietLogger()
                )
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise OSError("no free port for both UDP and TCP on 127.0.0.1")
        udp.start_thread()
        tcp.start_thread()
        self._udp, self._tcp, self.port = udp, tcp, port
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            if server is not None:
                server.stop()
                server.server.server_close()
        self._udp = self._tcp = None

    def __enter__(self) -> ZoneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
