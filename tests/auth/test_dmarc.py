"""DMARC against a real authoritative server on loopback: discovery (From domain, then the
Organizational Domain from the offline public suffix list), strict and relaxed alignment for SPF
and DKIM, sp= for subdomains, deterministic pct sampling, and errors (temperror, permerror,
multiple records)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from postwise.auth.dmarc import DmarcRecordError, check_dmarc, parse_record, sampled
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.results import DkimResult, SpfResult
from postwise.auth.zone_server import ZoneRecord, ZoneServer


def _dmarc(domain: str, record: str) -> ZoneRecord:
    return ZoneRecord(f"_dmarc.{domain}", "TXT", record)


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    records = [
        _dmarc("example.org", "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.org"),
        _dmarc("strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s"),
        _dmarc("plain.example", "v=DMARC1; p=quarantine"),
        _dmarc("monitor.example", "v=DMARC1; p=none"),
        _dmarc("half.example", "v=DMARC1; p=reject; pct=50"),
        _dmarc("zero.example", "v=DMARC1; p=quarantine; pct=0"),
        _dmarc("twice.example", "v=DMARC1; p=reject"),
        _dmarc("twice.example", "v=DMARC1; p=none"),
        _dmarc("badp.example", "v=DMARC1; p=block"),
        _dmarc("badprua.example", "v=DMARC1; p=block; rua=mailto:agg@badprua.example"),
        _dmarc("other.example", "v=spf1 -all"),  # not a DMARC record: ignored
        _dmarc("other.example", "v=DMARC1; p=reject"),
        _dmarc("example.co.uk", "v=DMARC1; p=reject"),
        _dmarc("sub.withsub.example", "v=DMARC1; p=none"),
        _dmarc("withsub.example", "v=DMARC1; p=reject"),
        ZoneRecord("nodmarc.example", "A", "192.0.2.1"),
    ]
    with ZoneServer(
        records,
        timeouts=["_dmarc.slow.example"],
        servfail=["_dmarc.broken.example", "_dmarc.sub2.example.org"],
    ) as zone:
        yield Resolver([parse_server(zone.address)], timeout=0.5)


def spf_pass(domain: str) -> SpfResult:
    return SpfResult("pass", domain)


def dkim_pass(domain: str) -> list[DkimResult]:
    return [DkimResult("pass", domain, "s1")]


def test_aligned_spf_or_dkim_passes(resolver: Resolver) -> None:
    by_spf = check_dmarc("example.org", spf_pass("example.org"), [], resolver)
    assert (by_spf.result, by_spf.spf_aligned, by_spf.dkim_aligned) == ("pass", True, False)
    assert by_spf.policy == "reject" and by_spf.disposition == "none"
    by_dkim = check_dmarc(
        "example.org", SpfResult("fail", "x.net"), dkim_pass("example.org"), resolver
    )
    assert (by_dkim.result, by_dkim.spf_aligned, by_dkim.dkim_aligned) == ("pass", False, True)


def test_relaxed_alignment_takes_the_organizational_domain(resolver: Resolver) -> None:
    result = check_dmarc("example.org", spf_pass("bounce.mail.example.org"), [], resolver)
    assert result.result == "pass" and result.spf_aligned
    result = check_dmarc("example.org", None, dkim_pass("news.example.org"), resolver)
    assert result.result == "pass" and result.dkim_aligned
    # public suffix aware: example.co.uk and other.co.uk are different organisations
    result = check_dmarc("example.co.uk", spf_pass("other.co.uk"), [], resolver)
    assert result.result == "fail" and result.disposition == "reject"


def test_strict_alignment_needs_the_exact_domain(resolver: Resolver) -> None:
    loose = check_dmarc("strict.example", spf_pass("mail.strict.example"), [], resolver)
    assert loose.result == "fail" and loose.disposition == "reject"
    loose = check_dmarc("strict.example", None, dkim_pass("mail.strict.example"), resolver)
    assert loose.result == "fail"
    exact = check_dmarc("strict.example", None, dkim_pass("STRICT.example."), resolver)
    assert exact.result == "pass"


def test_only_passing_results_align(resolver: Resolver) -> None:
    dkim = [DkimResult("fail", "example.org"), DkimResult("pass", "evil.example")]
    result = check_dmarc("example.org", SpfResult("softfail", "example.org"), dkim, resolver)
    assert result.result == "fail" and result.policy == "reject"


def test_subdomains_get_sp_from_the_organizational_domain(resolver: Resolver) -> None:
    result = check_dmarc("shop.example.org", spf_pass("evil.example"), [], resolver)
    assert (result.result, result.policy, result.disposition) == (
        "fail",
        "quarantine",
        "quarantine",
    )
    assert "_dmarc.example.org" in result.reason
    # without sp= a subdomain gets p=
    result = check_dmarc("a.b.other.example", None, [], resolver)
    assert (result.result, result.policy) == ("fail", "reject")
    # a record at the subdomain itself wins over the organisational one
    result = check_dmarc("sub.withsub.example", None, [], resolver)
    assert (result.result, result.policy) == ("fail", "none")


def test_policies_and_dispositions(resolver: Resolver) -> None:
    quarantine = check_dmarc("plain.example", None, [], resolver)
    assert (quarantine.policy, quarantine.disposition) == ("quarantine", "quarantine")
    monitor = check_dmarc("monitor.example", None, [], resolver)
    assert (monitor.result, monitor.policy, monitor.disposition) == ("fail", "none", "none")


def test_pct_sampling_is_deterministic_per_message(resolver: Resolver) -> None:
    keys = [f"{i:064x}" for i in range(400)]
    dispositions = [check_dmarc("half.example", None, [], resolver, k).disposition for k in keys]
    assert set(dispositions) == {"reject", "quarantine"}  # outside the sample: one step down
    assert 0.35 < dispositions.count("reject") / len(keys) < 0.65
    again = [check_dmarc("half.example", None, [], resolver, k).disposition for k in keys[:50]]
    assert again == dispositions[:50]
    zero = check_dmarc("zero.example", None, [], resolver, keys[0])
    assert (zero.policy, zero.disposition) == ("quarantine", "none")
    assert "pct=0" in zero.reason


def test_sampled_bounds() -> None:
    assert all(sampled(str(i), "d.example", 100) for i in range(50))
    assert not any(sampled(str(i), "d.example", 0) for i in range(50))


def test_no_record_is_none(resolver: Resolver) -> None:
    for domain in ("nodmarc.example", "missing.example", "example"):
        result = check_dmarc(domain, spf_pass(domain), [], resolver)
        assert result.result == "none" and result.policy is None, result
    assert check_dmarc("", None, [], resolver).result == "none"


def test_multiple_records_mean_dmarc_is_not_applied(resolver: Resolver) -> None:
    result = check_dmarc("twice.example", None, [], resolver)
    assert result.result == "none"
    assert "2 DMARC records" in result.reason and "6.6.3" in result.reason


def test_dns_failures_are_temperror(resolver: Resolver) -> None:
    for domain in ("slow.example", "broken.example", "sub2.example.org"):
        result = check_dmarc(domain, None, [], resolver)
        assert result.result == "temperror", result


def test_a_temperror_behind_the_alignment_is_not_a_fail(resolver: Resolver) -> None:
    result = check_dmarc("example.org", SpfResult("temperror", "example.org"), [], resolver)
    assert result.result == "temperror" and result.disposition == "none"
    dkim = [DkimResult("temperror", "example.org")]
    assert check_dmarc("example.org", None, dkim, resolver).result == "temperror"
    # a pass elsewhere still passes
    assert (
        check_dmarc("example.org", None, dkim + dkim_pass("example.org"), resolver).result == "pass"
    )


def test_invalid_policy_is_permerror_unless_rua_is_valid(resolver: Resolver) -> None:
    broken = check_dmarc("badp.example", None, [], resolver)
    assert broken.result == "permerror" and "p='block'" in broken.reason
    lenient = check_dmarc("badprua.example", None, [], resolver)
    assert (lenient.result, lenient.policy, lenient.disposition) == ("fail", "none", "none")


def test_parse_record() -> None:
    record = parse_record("v=DMARC1;p=Reject; SP = none ;adkim=s;aspf=x;pct=150;fo=1;zz=unknown")
    assert (record.policy, record.subdomain_policy, record.adkim, record.aspf, record.pct) == (
        "reject",
        "none",
        "s",
        "r",
        100,
    )
    assert "aspf" in record.note and "pct" in record.note
    with pytest.raises(DmarcRecordError, match="no p= tag"):
        parse_record("v=DMARC1; rua=not a uri; sp=nonsense; ruf=")
    with pytest.raises(DmarcRecordError, match="invalid sp="):
        parse_record("v=DMARC1; p=none; sp=bogus")
    assert parse_record("v=DMARC1; p=none; sp=bogus; rua=mailto:a@b.example").policy == "none"
