"""ARC sealing and validation against a real authoritative server on loopback: one and two
hops pass, tampering fails, a failed chain is not extended, and malformed chains never raise."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.auth.arc import MAX_INSTANCES, ArcSealError, arc_set, seal_arc, verify_arc
from postwise.auth.dkim import generate_key, sign_dkim, verify_dkim
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.results import authentication_results
from postwise.auth.zone_server import ZoneRecord, ZoneServer

MESSAGE = (
    b"From: Ann Baker <ann@example.com>\r\n"
    b"To: list@lists.example.org\r\n"
    b"Subject: Meeting notes\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"\r\n"
    b"Notes follow.\r\n"
)
KEY, TXT = generate_key("rsa", 2048)
ED_KEY, ED_TXT = generate_key("ed25519")
LIST_AR = "lists.example.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    records = [
        ZoneRecord("k._domainkey.example.com", "TXT", TXT),
        ZoneRecord("arc._domainkey.lists.example.org", "TXT", TXT),
        ZoneRecord("arc._domainkey.relay.example.net", "TXT", TXT),
        ZoneRecord("ed._domainkey.relay.example.net", "TXT", ED_TXT),
    ]
    with ZoneServer(records, timeouts=["slow._domainkey.relay.example.net"]) as server:
        yield Resolver([parse_server(server.address)], timeout=1.0)


def _hop1() -> bytes:
    signed = sign_dkim(MESSAGE, "example.com", "k", KEY)
    return seal_arc(signed, "lists.example.org", "arc", KEY, "lists.example.org", LIST_AR)


def test_no_arc_header_is_none(resolver: Resolver) -> None:
    assert verify_arc(MESSAGE, resolver).result == "none"
    assert verify_arc(b"", resolver).result == "none"
    assert verify_arc(b"X-ARC-Seal: not one\r\n\r\nbody", resolver).result == "none"


def test_one_seal_passes_and_carries_the_results(resolver: Resolver) -> None:
    sealed = _hop1()
    result = verify_arc(sealed, resolver)
    assert (result.result, result.instances, result.reason) == ("pass", 1, "")
    head = sealed.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("ARC-Seal: i=1; cv=none; a=rsa-sha256; d=lists.example.org; s=arc;")
    assert "ARC-Authentication-Results: i=1; lists.example.org;\r\n\tdkim=pass" in head
    assert head.count("lists.example.org; dkim") == 0  # the authserv-id is not repeated
    # the DKIM signature still verifies under the seal
    assert verify_dkim(sealed, resolver)[0].result == "pass"


def test_a_chain_of_two_seals_passes(resolver: Resolver) -> None:
    forwarded = seal_arc(
        _hop1(),
        "relay.example.net",
        "arc",
        KEY,
        "relay.example.net",
        authentication_results("relay.example.net", arc=verify_arc(_hop1(), resolver)),
    )
    assert "cv=pass" in forwarded.decode()
    result = verify_arc(forwarded, resolver)
    assert (result.result, result.instances) == ("pass", 2)


def test_tampering_fails(resolver: Resolver) -> None:
    sealed = _hop1()
    assert verify_arc(sealed.replace(b"Notes follow", b"Pay invoice"), resolver).result == "fail"
    assert verify_arc(sealed.replace(b"Meeting notes", b"Urgent"), resolver).result == "fail"
    changed_aar = sealed.replace(b"dkim=pass header.d", b"dkim=fail header.d", 1)
    result = verify_arc(changed_aar, resolver)
    assert result.result == "fail" and "ARC-Seal[1]" in result.reason
    without_seal = re.sub(rb"ARC-Seal: .*?(?=ARC-Message-Signature)", b"", sealed, flags=re.S)
    assert verify_arc(without_seal, resolver).result == "fail"


def test_a_failed_chain_is_sealed_as_fail_and_then_not_extended(resolver: Resolver) -> None:
    broken = _hop1().replace(b"Notes follow", b"Pay invoice")
    assert verify_arc(broken, resolver).result == "fail"
    sealed = seal_arc(
        broken, "relay.example.net", "arc", KEY, "relay.example.net", "arc=fail; dkim=fail"
    )
    assert "i=2; cv=fail" in sealed.decode()
    assert verify_arc(sealed, resolver).result == "fail"
    # the newest seal says cv=fail: nothing is added
    again = seal_arc(sealed, "relay.example.net", "arc", KEY, "relay.example.net", "arc=fail")
    assert again == sealed


def test_sealing_refusals() -> None:
    with pytest.raises(ArcSealError, match="must say what it validated"):
        seal_arc(_hop1(), "relay.example.net", "arc", KEY, "relay.example.net", "dkim=pass")
    with pytest.raises(ArcSealError, match="rsa-sha256"):
        seal_arc(MESSAGE, "relay.example.net", "ed", ED_KEY, "relay.example.net", "dkim=pass")
    with pytest.raises(ArcSealError, match="must sign From"):
        arc_set(MESSAGE, "r.example", "arc", KEY, "r.example", "none", headers=["to"])
    with pytest.raises(ArcSealError, match="must not sign ARC-Seal"):
        arc_set(MESSAGE, "r.example", "arc", KEY, "r.example", "none", headers=["from", "arc-seal"])


def test_first_hop_cv_is_none_whatever_the_results_say(resolver: Resolver) -> None:
    sealed = seal_arc(MESSAGE, "relay.example.net", "arc", KEY, "relay.example.net", "arc=pass")
    assert "i=1; cv=none" in sealed.decode()
    assert verify_arc(sealed, resolver).result == "pass"


def test_a_bare_lf_message_is_sealed_with_bare_lf(resolver: Resolver) -> None:
    lf = MESSAGE.replace(b"\r\n", b"\n")
    sealed = seal_arc(lf, "relay.example.net", "arc", KEY, "relay.example.net", "dkim=none")
    assert b"\r" not in sealed
    assert verify_arc(sealed, resolver).result == "pass"


def test_a_missing_or_unreachable_key_fails_with_a_reason(resolver: Resolver) -> None:
    absent = seal_arc(MESSAGE, "nowhere.example", "arc", KEY, "nowhere.example", "dkim=none")
    result = verify_arc(absent, resolver)
    assert result.result == "fail" and "no key" in result.reason
    slow = seal_arc(MESSAGE, "relay.example.net", "slow", KEY, "relay.example.net", "dkim=none")
    result = verify_arc(slow, resolver)
    assert result.result == "fail" and "key lookup failed" in result.reason


def test_too_many_instances_fail(resolver: Resolver) -> None:
    fake = b"".join(
        b"ARC-Seal: i=%d; cv=pass; a=rsa-sha256; d=x.example; s=arc; b=AAAA\r\n" % i
        for i in range(1, MAX_INSTANCES + 3)
    )
    result = verify_arc(fake + MESSAGE, resolver)
    assert result.result == "fail" and "more than 50" in result.reason


_ARC_NAMES = st.sampled_from(
    [b"ARC-Seal", b"ARC-Message-Signature", b"ARC-Authentication-Results", b"arc-seal"]
)
_ARC_VALUES = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from(
            [b"i=1", b"i=2", b"i=0", b"i=-1", b"i=99999999999", b"cv=pass", b"cv=none", b"cv=x",
             b"a=rsa-sha256", b"a=ed25519-sha256", b"d=relay.example.net", b"s=arc", b"b=AAAA",
             b"bh=AAAA", b"h=from", b"h=arc-seal", b"t=1", b"c=relaxed/relaxed", b"=", b""]
        ),
        max_size=10,
    ).map(b"; ".join),
)  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=st.lists(st.tuples(_ARC_NAMES, _ARC_VALUES), min_size=1, max_size=8))
def test_fuzzed_arc_header_fields_never_raise(
    resolver: Resolver, fields: list[tuple[bytes, bytes]]
) -> None:
    head = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    result = verify_arc(head + MESSAGE, resolver)
    assert result.result in ("fail", "none")  # never pass: nothing here is really sealed
    assert result.instances >= 0


def test_malformed_messages_never_raise(resolver: Resolver) -> None:
    for raw in (
        b" ARC-Seal: i=1\r\n\r\n",
        b"ARC-Seal: i=1; " + b"x" * 1_000_000 + b"\r\n\r\n",
        b"ARC-Seal:\r\nARC-Message-Signature:\r\nARC-Authentication-Results:\r\n\r\n",
        b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=\xff; s=\x00; b=\r\n\r\n",
    ):
        assert verify_arc(raw, resolver).result in ("fail", "none")
