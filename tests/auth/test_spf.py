"""SPF against a real authoritative server on loopback: every result word, include and
redirect, the lookup and void-lookup limits, multi-string TXT, DNS failures as temperror, the
null sender, and hostile records that must never raise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwise.auth.dns import Resolver, parse_server
from postwise.auth.spf import DEFAULT_FAIL_EXPLANATION, check_spf
from postwise.auth.zone_server import ZoneRecord, ZoneServer

INSIDE = "192.0.2.10"
OUTSIDE = "198.51.100.1"


def _records() -> list[ZoneRecord]:
    hosts = [ZoneRecord(f"h{i}.example.org", "A", "203.0.113.1") for i in range(12)]
    return [
        ZoneRecord("pass.example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"),
        ZoneRecord("pass.example.org", "TXT", "google-site-verification=abc"),  # not SPF
        ZoneRecord("soft.example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all"),
        ZoneRecord("neutral.example.org", "TXT", "v=spf1 ?all"),
        ZoneRecord("nospf.example.org", "A", "192.0.2.1"),
        ZoneRecord("inc.example.org", "TXT", "v=spf1 include:pass.example.org -all"),
        ZoneRecord("redir.example.org", "TXT", "v=spf1 redirect=pass.example.org"),
        ZoneRecord("mx.example.org", "TXT", "v=spf1 mx -all"),
        ZoneRecord("mx.example.org", "MX", (10, "mail.example.org")),
        ZoneRecord("mail.example.org", "A", INSIDE),
        ZoneRecord(
            "limit.example.org",
            "TXT",
            "v=spf1 " + " ".join(f"a:h{i}.example.org" for i in range(11)) + " -all",
        ),
        ZoneRecord(
            "ten.example.org",
            "TXT",
            "v=spf1 " + " ".join(f"a:h{i}.example.org" for i in range(10)) + " -all",
        ),
        *hosts,
        ZoneRecord(
            "void.example.org", "TXT", "v=spf1 a:v1.example.org a:v2.example.org a:v3.example.org"
        ),
        ZoneRecord("twovoid.example.org", "TXT", "v=spf1 a:v1.example.org a:v2.example.org"),
        ZoneRecord("multi.example.org", "TXT", ["v=spf1 ip4:192.0.2.0/24", " -all"]),
        ZoneRecord("two.example.org", "TXT", "v=spf1 -all"),
        ZoneRecord("two.example.org", "TXT", "v=spf1 +all"),
        ZoneRecord("slowinc.example.org", "TXT", "v=spf1 include:slow.example.org -all"),
        ZoneRecord("exp.example.org", "TXT", "v=spf1 -all exp=why.example.org"),
        ZoneRecord("why.example.org", "TXT", "%{i} may not send for %{d}"),
        # hostile
        ZoneRecord("garbage.example.org", "TXT", "v=spf1 ((( ip4:999.1.1.1 %{ -all"),
        ZoneRecord("nul.example.org", "TXT", "v=spf1 a:\x00.example.org -all"),
        ZoneRecord("utf8.example.org", "TXT", "v=spf1 a:exämple.org -all"),
        ZoneRecord("huge.example.org", "TXT", "v=spf1 " + "ip4:192.0.2.1 " * 730 + "-all"),
        ZoneRecord("self.example.org", "TXT", "v=spf1 include:self.example.org -all"),
        ZoneRecord("ping.example.org", "TXT", "v=spf1 include:pong.example.org -all"),
        ZoneRecord("pong.example.org", "TXT", "v=spf1 redirect=ping.example.org"),
        ZoneRecord("macro.example.org", "TXT", "v=spf1 exists:%{l}.%{o}.%{ir}.x.example.org -all"),
        ZoneRecord("badinc.example.org", "TXT", "v=spf1 include:garbage.example.org -all"),
        ZoneRecord("longlabel.example.org", "TXT", "v=spf1 a:" + "x" * 70 + ".example.org -all"),
    ]


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    with ZoneServer(
        _records(), timeouts=["slow.example.org"], servfail=["broken.example.org"]
    ) as zone:
        yield Resolver([parse_server(zone.address)], timeout=0.5)


@pytest.mark.parametrize(
    ("ip", "domain", "expected"),
    [
        (INSIDE, "pass.example.org", "pass"),
        ("2001:db8::25", "pass.example.org", "pass"),
        (OUTSIDE, "pass.example.org", "fail"),
        (OUTSIDE, "soft.example.org", "softfail"),
        (OUTSIDE, "neutral.example.org", "neutral"),
        (OUTSIDE, "nospf.example.org", "none"),
        (OUTSIDE, "missing.example.org", "none"),
        (INSIDE, "inc.example.org", "pass"),
        (OUTSIDE, "inc.example.org", "fail"),
        (INSIDE, "redir.example.org", "pass"),
        (OUTSIDE, "redir.example.org", "fail"),
        (INSIDE, "mx.example.org", "pass"),
        (INSIDE, "multi.example.org", "pass"),
        (OUTSIDE, "multi.example.org", "fail"),
    ],
)
def test_results(resolver: Resolver, ip: str, domain: str, expected: str) -> None:
    result = check_spf(ip, f"ann@{domain}", "client.example", resolver)
    assert result.result == expected, result
    assert result.domain == domain and result.scope == "mailfrom"


def test_lookup_limit_is_ten(resolver: Resolver) -> None:
    assert check_spf(OUTSIDE, "a@ten.example.org", "h", resolver).result == "fail"
    over = check_spf(OUTSIDE, "a@limit.example.org", "h", resolver)
    assert over.result == "permerror"
    assert "lookup" in over.explanation.lower()


def test_void_lookup_limit_is_two(resolver: Resolver) -> None:
    assert check_spf(OUTSIDE, "a@twovoid.example.org", "h", resolver).result == "neutral"
    over = check_spf(OUTSIDE, "a@void.example.org", "h", resolver)
    assert over.result == "permerror"
    assert "void lookup" in over.explanation.lower()


def test_two_spf_records_are_a_permerror(resolver: Resolver) -> None:
    assert check_spf(INSIDE, "a@two.example.org", "h", resolver).result == "permerror"


def test_timeout_and_servfail_are_temperror_never_none(resolver: Resolver) -> None:
    for domain in ("slow.example.org", "broken.example.org", "slowinc.example.org"):
        result = check_spf(INSIDE, f"a@{domain}", "h", resolver)
        assert result.result == "temperror", result
        assert "example.org" in result.explanation


def test_the_null_sender_is_checked_as_the_helo_identity(resolver: Resolver) -> None:
    result = check_spf(INSIDE, "", "pass.example.org", resolver)
    assert (result.result, result.scope, result.domain) == ("pass", "helo", "pass.example.org")
    assert check_spf(OUTSIDE, "", "pass.example.org", resolver).result == "fail"


def test_fail_carries_the_domains_explanation(resolver: Resolver) -> None:
    result = check_spf(OUTSIDE, "a@exp.example.org", "h", resolver)
    assert result.result == "fail"
    assert result.explanation == f"{OUTSIDE} may not send for exp.example.org"
    plain = check_spf(OUTSIDE, "a@pass.example.org", "h", resolver)
    assert plain.explanation == DEFAULT_FAIL_EXPLANATION


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("garbage.example.org", {"permerror"}),
        ("nul.example.org", {"permerror", "fail"}),
        ("utf8.example.org", {"permerror", "fail"}),
        ("huge.example.org", {"pass"}),
        ("self.example.org", {"permerror"}),
        ("ping.example.org", {"permerror"}),
        ("macro.example.org", {"fail"}),
        ("badinc.example.org", {"permerror"}),
        ("longlabel.example.org", {"fail"}),
    ],
)
def test_hostile_records_never_raise(resolver: Resolver, domain: str, expected: set[str]) -> None:
    result = check_spf("192.0.2.1", f"o'hara+x@{domain}", "h", resolver)
    assert result.result in expected, result


@pytest.mark.parametrize(
    ("ip", "mail_from", "helo"),
    [
        ("not-an-ip", "a@pass.example.org", "h"),
        ("", "a@pass.example.org", "h"),
        (INSIDE, "", ""),
        (INSIDE, "no-at-sign", ""),
        (INSIDE, "a@", "h"),
        (INSIDE, "a@" + "x." * 200 + "org", "h"),
        (INSIDE, "a@[192.0.2.10]", "h"),
    ],
)
def test_odd_inputs_give_a_result(resolver: Resolver, ip: str, mail_from: str, helo: str) -> None:
    result = check_spf(ip, mail_from, helo, resolver)
    assert result.result in {"none", "permerror", "neutral", "fail"}, result


def test_evaluation_has_an_overall_deadline(resolver: Resolver) -> None:
    result = check_spf(INSIDE, "a@inc.example.org", "h", resolver, evaluation_seconds=-1)
    assert result.result == "temperror"
    assert "took over" in result.explanation
