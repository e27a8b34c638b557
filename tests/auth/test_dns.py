"""The resolver against a real authoritative server on loopback: records, NXDOMAIN vs NODATA,
multi-string TXT, CNAME, and failures reported as temporary errors, never as "no record"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwise.auth.dns import DnsTemporaryError, Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    records = [
        ZoneRecord("example.org", "TXT", ["v=spf1 ", "ip4:192.0.2.0/24 ", "-all"]),
        ZoneRecord("example.org", "A", "192.0.2.1"),
        ZoneRecord("example.org", "AAAA", "2001:db8::1"),
        ZoneRecord("example.org", "MX", (20, "mx2.example.org")),
        ZoneRecord("example.org", "MX", (10, "mx1.example.org")),
        ZoneRecord("www.example.org", "CNAME", "example.org"),
        ZoneRecord("long.example.org", "TXT", "k" * 700),
        ZoneRecord("1.2.0.192.in-addr.arpa", "PTR", "mail.example.org"),
    ]
    with ZoneServer(records, timeouts=["slow.example.org"], servfail=["broken.example.org"]) as z:
        yield z


@pytest.fixture(scope="module")
def resolver(zone: ZoneServer) -> Resolver:
    return Resolver([parse_server(zone.address)], timeout=1.0)


def test_records_of_each_type(resolver: Resolver) -> None:
    assert resolver.txt("example.org").records == ("v=spf1 ip4:192.0.2.0/24 -all",)
    assert set(resolver.addresses("example.org").records) == {"192.0.2.1", "2001:db8::1"}
    assert resolver.mx("example.org") == [(10, "mx1.example.org"), (20, "mx2.example.org")]
    assert resolver.addresses("www.example.org").records[0] == "192.0.2.1"
    assert resolver.ptr("192.0.2.1").records == ("mail.example.org.",)
    assert len(resolver.txt("long.example.org").records[0]) == 700  # over TCP or EDNS, joined


def test_nxdomain_and_nodata_are_different(resolver: Resolver) -> None:
    missing = resolver.txt("nothing.example.org")
    assert missing.nxdomain and missing.void
    nodata = resolver.txt("org")  # exists (a parent of example.org), but has no TXT
    assert not nodata.nxdomain and nodata.void


def test_timeouts_and_servfail_are_temporary_errors(resolver: Resolver) -> None:
    with pytest.raises(DnsTemporaryError, match=r"slow\.example\.org"):
        resolver.txt("slow.example.org")
    with pytest.raises(DnsTemporaryError, match=r"broken\.example\.org"):
        resolver.txt("broken.example.org")


def test_invalid_names_find_nothing(resolver: Resolver) -> None:
    assert resolver.txt("a" * 300 + ".example.org").void
    assert resolver.txt("bad..name").void


def test_parse_server() -> None:
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:5300") == ("::1", 5300)
