"""The authentication check end to end: built messages scanned with an envelope, DNS from a
loopback authoritative server; the symbols, the Authentication-Results value the verdict
carries, and what the model and the decision do with them."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postwise.auth.dns import DnsTemporaryError, Resolver, parse_server
from postwise.auth.results import ArcResult, DkimResult
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.inbound.checks.auth import AUTH_SYMBOLS, AuthenticationCheck
from postwise.inbound.checks.base import Envelope
from postwise.inbound.classifier import NON_MODEL_SYMBOLS
from postwise.inbound.decision import decide
from postwise.inbound.scanner import Scanner

AUTHORISED = "192.0.2.10"
STRANGER = "198.51.100.7"
SENDER = "ann.baker@example.org"  # the message builder's From


def _key_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


PRIVATE_KEY, PUBLIC_KEY = _key_pair()


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    records = [
        ZoneRecord("example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"),
        ZoneRecord("_dmarc.example.org", "TXT", "v=DMARC1; p=reject; rua=mailto:d@example.org"),
        ZoneRecord("s1._domainkey.example.org", "TXT", f"v=DKIM1; k=rsa; p={PUBLIC_KEY}"),
        ZoneRecord("lists.example.net", "TXT", "v=spf1 ip4:198.51.100.0/24 -all"),
    ]
    with ZoneServer(records, servfail=["broken.example.com", "_dmarc.broken.example.com"]) as zone:
        yield Resolver([parse_server(zone.address)], timeout=0.5)


def no_dkim(raw: bytes, resolver: Resolver) -> list[DkimResult]:
    return []


def no_arc(raw: bytes, resolver: Resolver) -> ArcResult:
    return ArcResult("none")


def make_scanner(policy: Any, resolver: Resolver, **verifiers: Any) -> Scanner:
    verifiers.setdefault("dkim_verify", no_dkim)
    verifiers.setdefault("arc_verify", no_arc)
    check = AuthenticationCheck(resolver, authserv_id="mx.postwise.test", **verifiers)
    return Scanner(policy, None, authentication=check)


def names(verdict: Any) -> dict[str, str]:
    return {s.name: s.evidence for s in verdict.symbols if s.name in AUTH_SYMBOLS}


def test_an_authorised_sender_passes_spf_and_dmarc(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    scanner = make_scanner(policy, resolver)
    envelope = Envelope(SENDER, ("sam@example.net",), AUTHORISED, "mail.example.org")
    verdict = scanner.scan(make_message(), envelope=envelope)
    found = names(verdict)
    assert set(found) == {"SPF_PASS", "DKIM_NONE", "ARC_NONE", "DMARC_PASS"}
    assert found["SPF_PASS"] == "MAIL FROM example.org: pass"
    assert found["DMARC_PASS"] == "example.org: aligned SPF"
    header = verdict.extra["authentication_results"]
    assert header.startswith("mx.postwise.test;")
    assert "spf=pass smtp.mailfrom=example.org" in header
    assert "dmarc=pass (p=reject dis=none) header.from=example.org" in header
    assert "arc=none" in header
    assert verdict.to_json()["authentication_results"] == header


def test_a_spoofed_sender_fails_dmarc_with_the_domains_policy(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    scanner = make_scanner(policy, resolver)
    envelope = Envelope(SENDER, ("sam@example.net",), STRANGER, "spoofer.example")
    verdict = scanner.scan(make_message(), envelope=envelope)
    scores = {s.name: s.score for s in verdict.symbols}
    assert scores["SPF_FAIL"] == policy.symbols["SPF_FAIL"].weight
    assert scores["DMARC_POLICY_REJECT"] == policy.symbols["DMARC_POLICY_REJECT"].weight
    assert "p=reject" in names(verdict)["DMARC_POLICY_REJECT"]
    assert "dmarc=fail (p=reject dis=reject)" in verdict.extra["authentication_results"]
    assert verdict.action != "no_action"


def test_a_forwarded_message_can_pass_by_dkim(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    """A list server re-sends the message: SPF is the list's, DKIM (dkimpy-signed, key in DNS)
    still aligns with the From domain."""
    raw = make_message().replace(b"\n", b"\r\n")
    signature = dkim.sign(
        raw, b"s1", b"example.org", PRIVATE_KEY, include_headers=[b"from", b"to", b"subject"]
    )
    scanner = make_scanner(policy, resolver, dkim_verify=None)
    if scanner.authentication is None or scanner.authentication.dkim_verify is None:
        pytest.skip("postwise.auth.dkim.verify_dkim is not available")
    envelope = Envelope("bounces@lists.example.net", ("sam@example.net",), STRANGER, "lists")
    verdict = scanner.scan(signature + raw, envelope=envelope)
    found = names(verdict)
    assert {"SPF_PASS", "DKIM_VALID", "DMARC_PASS"} <= set(found), found
    assert found["DMARC_PASS"] == "example.org: aligned DKIM"
    header = verdict.extra["authentication_results"]
    assert "spf=pass smtp.mailfrom=lists.example.net" in header
    assert "dkim=pass header.d=example.org header.s=s1" in header


def test_without_a_client_address_nothing_is_evaluated(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    def must_not_run(raw: bytes, resolver: Resolver) -> list[DkimResult]:
        raise AssertionError("DKIM verified for a file scan")

    scanner = make_scanner(policy, resolver, dkim_verify=must_not_run)
    verdict = scanner.scan(make_message())
    assert not names(verdict)
    assert "authentication_results" not in verdict.extra
    assert "authentication_results" not in verdict.to_json()


def test_dns_failures_are_temperror_symbols(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    def dkim_dns_down(raw: bytes, resolver: Resolver) -> list[DkimResult]:
        raise DnsTemporaryError("key lookup timed out")

    scanner = make_scanner(policy, resolver, dkim_verify=dkim_dns_down)
    message = make_message(headers={"From": "Bob <bob@broken.example.com>"})
    envelope = Envelope("bob@broken.example.com", ("sam@example.net",), AUTHORISED, "h")
    verdict = scanner.scan(message, envelope=envelope)
    found = names(verdict)
    assert {"SPF_TEMPERROR", "DKIM_TEMPERROR", "DMARC_TEMPERROR"} <= set(found), found
    assert all(s.score == 0 for s in verdict.symbols if s.name.endswith("_TEMPERROR"))
    header = verdict.extra["authentication_results"]
    assert "spf=temperror" in header and "dmarc=temperror" in header


def test_a_broken_verifier_costs_a_permerror_not_the_scan(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    def crashing(raw: bytes, resolver: Resolver) -> Any:
        raise ValueError("unexpected")

    scanner = make_scanner(policy, resolver, dkim_verify=crashing, arc_verify=crashing)
    envelope = Envelope(SENDER, ("sam@example.net",), AUTHORISED, "h")
    found = names(scanner.scan(make_message(), envelope=envelope))
    assert {"DKIM_PERMERROR", "ARC_FAIL", "SPF_PASS", "DMARC_PASS"} <= set(found), found


def test_dkim_and_arc_results_become_symbols(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    def signatures(raw: bytes, resolver: Resolver) -> list[DkimResult]:
        return [
            DkimResult("pass", "example.org", "s1"),
            DkimResult("fail", "example.org", "s2", reason="body hash mismatch"),
            DkimResult("permerror", "evil.example", "x", reason="no key"),
        ]

    def sealed(raw: bytes, resolver: Resolver) -> ArcResult:
        return ArcResult("pass", instances=2)

    scanner = make_scanner(policy, resolver, dkim_verify=signatures, arc_verify=sealed)
    envelope = Envelope("", ("sam@example.net",), STRANGER, "helo.example")
    found = names(scanner.scan(make_message(), envelope=envelope))
    assert found["DKIM_VALID"] == "example.org s=s1"
    assert found["DKIM_INVALID"] == "example.org s=s2 (body hash mismatch)"
    assert found["DKIM_PERMERROR"] == "evil.example s=x (no key)"
    assert found["ARC_PASS"] == "2 ARC set(s)"
    assert found["SPF_NONE"] == "HELO helo.example: none"  # the null sender: HELO identity
    assert found["DMARC_PASS"] == "example.org: aligned DKIM"


def test_the_decision_adds_authentication_results(
    policy: Any, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    scanner = make_scanner(policy, resolver)
    envelope = Envelope(SENDER, ("sam@example.net",), AUTHORISED, "h")
    headers = decide(scanner.scan(make_message(), envelope=envelope)).headers
    assert [name for name, _ in headers][-1] == "Authentication-Results"
    value = headers[-1][1]
    assert "\r" not in value and "\n" not in value
    assert value.startswith("mx.postwise.test; spf=pass smtp.mailfrom=example.org")
    plain = decide(scanner.scan(make_message())).headers
    assert "Authentication-Results" not in [name for name, _ in plain]


def test_the_model_never_sees_authentication_symbols(
    scanner: Scanner, resolver: Resolver, make_message: Callable[..., bytes]
) -> None:
    assert frozenset(AUTH_SYMBOLS) <= NON_MODEL_SYMBOLS
    check = AuthenticationCheck(resolver, no_dkim, no_arc, "mx.postwise.test")
    with_auth = Scanner(scanner.policy, scanner.model, authentication=check)
    raw = make_message()
    envelope = Envelope(SENDER, ("sam@example.net",), STRANGER, "h")
    judged = with_auth.scan(raw, envelope=envelope)
    assert "DMARC_POLICY_REJECT" in {s.name for s in judged.symbols}
    assert judged.probabilities == scanner.scan(raw, envelope=envelope).probabilities


def test_every_symbol_has_a_policy_entry_in_the_auth_group(policy: Any) -> None:
    for name in AUTH_SYMBOLS:
        assert policy.symbols[name].group == "auth", name
    assert policy.symbols["DMARC_POLICY_REJECT"].weight >= 6
    assert all(policy.symbols[n].weight == 0 for n in AUTH_SYMBOLS if n.endswith("TEMPERROR"))
