"""DKIM signing and verification against a real authoritative server on loopback: round trips
with RSA and Ed25519 keys, tampering, every key-record problem and DNS failure as its result
word, and malformed or hostile signatures that must never raise."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import dkim as dkimpy
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.auth.dkim import (
    MAX_SIGNATURES,
    DkimSigningError,
    default_signed_headers,
    dns_record,
    generate_key,
    load_signing_key,
    sign_dkim,
    signing_key_for,
    verify_dkim,
)
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.core.settings import DkimKey, Settings

MESSAGE = (
    b"From: Ann Baker <ann@example.com>\r\n"
    b"To: Sam Lee <sam@example.org>\r\n"
    b"Subject: Quarterly figures\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
    b"Message-ID: <q1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The figures are attached.\r\n"
)
WORDS = {"pass", "fail", "neutral", "none", "policy", "permerror", "temperror"}

RSA_KEY, RSA_TXT = generate_key("rsa", 2048)
ED_KEY, ED_TXT = generate_key("ed25519")
OTHER_RSA_KEY, _ = generate_key("rsa", 1024)


def _split(value: str, at: int) -> list[str]:
    return [value[:at], value[at:]]


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    records = [
        ZoneRecord("rsa._domainkey.example.com", "TXT", RSA_TXT),  # > 255: served split
        ZoneRecord("ed._domainkey.example.com", "TXT", ED_TXT),
        # one record of several strings, split inside p= (RFC 6376 3.6.2.2: joined)
        ZoneRecord("multi._domainkey.example.com", "TXT", _split(RSA_TXT, 40)),
        ZoneRecord("revoked._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p="),
        ZoneRecord("wrongtype._domainkey.example.com", "TXT", ED_TXT),
        ZoneRecord("garbage._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=!!!notbase64"),
        ZoneRecord("badversion._domainkey.example.com", "TXT", "v=DKIM2; k=rsa; p=AAAA"),
        ZoneRecord("unknownk._domainkey.example.com", "TXT", "v=DKIM1; k=dsa; p=AAAA"),
        ZoneRecord("notmail._domainkey.example.com", "TXT", RSA_TXT + "; s=tlsrpt"),
        ZoneRecord("sha1only._domainkey.example.com", "TXT", RSA_TXT + "; h=sha1"),
        ZoneRecord("junk._domainkey.example.com", "TXT", "not a key record at all ;;; =="),
        ZoneRecord("nodata._domainkey.example.com", "A", "192.0.2.1"),  # no TXT: NODATA
    ]
    with ZoneServer(
        records,
        timeouts=["slow._domainkey.example.com"],
        servfail=["broken._domainkey.example.com"],
    ) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(zone: ZoneServer) -> Resolver:
    return Resolver([parse_server(zone.address)], timeout=1.0)


def test_rsa_and_ed25519_signatures_round_trip(resolver: Resolver) -> None:
    signed = sign_dkim(
        sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY), "example.com", "ed", ED_KEY
    )
    results = verify_dkim(signed, resolver)
    assert [(r.result, r.selector, r.algorithm) for r in results] == [
        ("pass", "ed", "ed25519-sha256"),
        ("pass", "rsa", "rsa-sha256"),
    ]
    assert all(r.domain == "example.com" and not r.reason for r in results)


def test_no_signature_gives_no_result(resolver: Resolver) -> None:
    assert verify_dkim(MESSAGE, resolver) == []
    assert verify_dkim(b"", resolver) == []
    assert verify_dkim(b"X-DKIM-Signature-Note: none here\r\n\r\nbody", resolver) == []


def test_a_changed_body_or_header_fails(resolver: Resolver) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY)
    body = verify_dkim(signed.replace(b"attached", b"enclosed"), resolver)[0]
    assert (body.result, body.reason) == ("fail", "body hash mismatch")
    header = verify_dkim(signed.replace(b"Quarterly", b"Urgent"), resolver)[0]
    assert (header.result, header.reason) == ("fail", "signature did not verify")
    # From is signed once more than it occurs: a second From breaks the signature
    added = signed.replace(b"To: ", b"From: mallory@example.net\r\nTo: ", 1)
    assert verify_dkim(added, resolver)[0].result == "fail"
    # a key that is not the signer's
    other = sign_dkim(MESSAGE, "example.com", "rsa", OTHER_RSA_KEY)
    assert verify_dkim(other, resolver)[0].result == "fail"


def test_the_signature_records_what_is_signed() -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY)
    header = signed.split(b"\r\nFrom:", 1)[0].decode()
    tags = dict(
        (k.strip(), v.strip())
        for k, _, v in (t.partition("=") for t in re.sub(r"\s+", " ", header).split(";"))
    )
    assert tags["DKIM-Signature: v"] == "1"
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.com" and tags["s"] == "rsa"
    signed_names = [n.strip() for n in tags["h"].split(":")]
    assert signed_names.count("from") == 2  # oversigned
    for name in ("to", "subject", "date", "message-id", "mime-version", "content-type"):
        assert name in signed_names
    assert default_signed_headers(MESSAGE)[-1] == "from"


def test_missing_key_revoked_key_and_bad_key_records(resolver: Resolver) -> None:
    def verdict(selector: str, key: bytes = RSA_KEY) -> tuple[str, str]:
        result = verify_dkim(sign_dkim(MESSAGE, "example.com", selector, key), resolver)[0]
        return result.result, result.reason

    word, reason = verdict("absent")
    assert word == "permerror" and reason.startswith("no key") and "no such name" in reason
    assert verdict("revoked") == (
        "permerror",
        "key revoked (empty p= at revoked._domainkey.example.com)",
    )
    for selector, fragment in [
        ("wrongtype", "is k=ed25519 but the signature is a=rsa-sha256"),
        ("garbage", "bad key"),
        ("badversion", "not v=DKIM1"),
        ("unknownk", "bad key"),
        ("notmail", "not for email"),
        ("sha1only", "allows h=sha1 only"),
        ("junk", "malformed key record"),
    ]:
        word, reason = verdict(selector)
        assert word == "permerror" and fragment in reason, (selector, reason)


def test_a_name_without_txt_is_no_key(resolver: Resolver) -> None:
    result = verify_dkim(sign_dkim(MESSAGE, "example.com", "nodata", RSA_KEY), resolver)[0]
    assert result.result == "permerror"
    assert result.reason == "no key for signature at nodata._domainkey.example.com (no TXT record)"


def test_dns_timeout_and_servfail_are_temperror(resolver: Resolver) -> None:
    for selector in ("slow", "broken"):
        result = verify_dkim(sign_dkim(MESSAGE, "example.com", selector, RSA_KEY), resolver)[0]
        assert result.result == "temperror", result
        assert f"{selector}._domainkey.example.com" in result.reason


def test_a_key_record_of_several_strings_is_joined(resolver: Resolver) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "multi", RSA_KEY)
    assert verify_dkim(signed, resolver)[0].result == "pass"


def test_time_tags_use_the_given_clock(resolver: Resolver) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY, now=2_000_000_000)
    assert "t=2000000000" in signed.decode()
    future = verify_dkim(signed, resolver, now=1_700_000_000)[0]
    assert future.result == "permerror" and "future" in future.reason
    assert verify_dkim(signed, resolver, now=2_000_000_100)[0].result == "pass"
    expired = signed.replace(b"t=2000000000;", b"t=2000000000; x=2000000001;")
    assert verify_dkim(expired, resolver, now=2_100_000_000)[0].result == "permerror"


def test_signature_syntax_problems_are_permerror(resolver: Resolver) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY)
    header, _, rest = signed.partition(b"\r\nFrom:")
    cases = {
        "bad base64": header.replace(b"b=", b"b=!!", 1),
        "unsupported a=": header.replace(b"a=rsa-sha256", b"a=rsa-sha512"),
        "rsa-sha1": header.replace(b"a=rsa-sha256", b"a=rsa-sha1"),
        "From not signed": re.sub(rb"h=[^;]*;", b"h=to : subject;", header),
        "missing d=": header.replace(b"d=example.com;", b""),
        "i= outside d=": header.replace(b"i=@example.com", b"i=@example.net"),
        "l= too long": header.replace(b"q=dns/txt;", b"q=dns/txt; l=99999;"),
        "duplicate tag": header.replace(b"v=1;", b"v=1; v=1;"),
        "bad c=": header.replace(b"c=relaxed/relaxed", b"c=fancy/relaxed"),
    }
    for name, broken in cases.items():
        results = verify_dkim(broken + b"\r\nFrom:" + rest, resolver)
        assert len(results) == 1, name
        assert results[0].result in ("permerror", "fail"), (name, results[0])
        assert results[0].reason, name


def test_an_honest_body_length_limit_passes_and_says_so(resolver: Resolver) -> None:
    signed = dkimpy.sign(
        MESSAGE,
        b"rsa",
        b"example.com",
        load_signing_key(RSA_KEY).dkimpy_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject"],
        length=True,
    )
    result = verify_dkim(signed + MESSAGE, resolver)[0]
    assert result.result == "pass" and "l=" in result.reason


def test_at_most_max_signatures_are_verified(resolver: Resolver) -> None:
    one = sign_dkim(MESSAGE, "example.com", "absent", RSA_KEY).partition(b"\r\nFrom:")[0]
    many = (one + b"\r\n") * 200 + MESSAGE
    results = verify_dkim(many, resolver)
    assert len(results) == MAX_SIGNATURES
    assert {r.result for r in results} == {"permerror"}


def test_huge_and_degenerate_headers_never_raise(resolver: Resolver) -> None:
    huge_b = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=AAAA; b="
    cases = [
        huge_b + b"A" * 2_000_000 + b"\r\n" + MESSAGE,
        b"DKIM-Signature: " + b"x=y; " * 100_000 + b"\r\n" + MESSAGE,
        b" DKIM-Signature: starts with a continuation\r\n\r\nbody",
        b"DKIM-Signature:\r\n\r\n",
        b"DKIM-Signature: v=1; d=\xff\xfe; s=\x00; h=from; a=rsa-sha256; b=; bh=\r\n\r\n",
        b"From: a@example.com\r\nDKIM-Signature: ;;;;\r\n" + b"\n" * 10,
        b"DKIM-Signature: v=1\rFrom: bare CR\r\n\r\n",
    ]
    for raw in cases:
        results = verify_dkim(raw, resolver)
        assert results and all(r.result in WORDS and r.result != "pass" for r in results)


_TAG_VALUES = st.one_of(
    st.sampled_from(
        ["1", "rsa-sha256", "ed25519-sha256", "example.com", "rsa", "from:to", "relaxed/simple",
         "AAAA", "", "=", ";", "99999999999999999999", "@example.com", "dns/txt"]
    ),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=40),
)  # fmt: skip
_TAGS = st.dictionaries(
    st.sampled_from(["v", "a", "b", "bh", "c", "d", "h", "i", "l", "q", "s", "t", "x", "z", "Q"]),
    _TAG_VALUES,
    max_size=12,
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tags=_TAGS, body=st.binary(max_size=200))
def test_fuzzed_signature_tag_lists_never_raise(
    resolver: Resolver, tags: dict[str, str], body: bytes
) -> None:
    value = "; ".join(f"{k}={v}" for k, v in tags.items()).encode("latin-1")
    raw = b"DKIM-Signature: " + value + b"\r\n" + MESSAGE.replace(b"attached.\r\n", body)
    results = verify_dkim(raw, resolver)
    assert len(results) <= 1
    assert all(r.result in WORDS and r.result != "pass" for r in results)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.binary(max_size=300))
def test_fuzzed_signature_bytes_never_raise(resolver: Resolver, value: bytes) -> None:
    raw = b"DKIM-Signature: " + value + b"\r\n" + MESSAGE
    for result in verify_dkim(raw, resolver):
        assert result.result in WORDS and result.result != "pass"


def test_keygen_output_parses_and_its_record_verifies() -> None:
    for algorithm in ("rsa", "ed25519"):
        private_pem, txt_value = generate_key(algorithm)  # type: ignore[arg-type]
        assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        line = dns_record("example.net", "gen", txt_value)
        name, _, rest = line.partition(" IN TXT ")
        assert name == "gen._domainkey.example.net."
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rest)
        strings = [s.decode() for s in rdata.strings]  # type: ignore[attr-defined]
        assert all(len(s) <= 255 for s in strings) and "".join(strings) == txt_value
        with ZoneServer([ZoneRecord("gen._domainkey.example.net", "TXT", strings)]) as server:
            resolver = Resolver([parse_server(server.address)], timeout=1.0)
            signed = sign_dkim(MESSAGE, "example.net", "gen", private_pem)
            assert verify_dkim(signed, resolver)[0].result == "pass", algorithm
    assert generate_key("rsa", 1024)[1].startswith("v=DKIM1; k=rsa; p=MIGf")
    with pytest.raises(ValueError, match="1024 to 4096"):
        generate_key("rsa", 512)
    with pytest.raises(ValueError, match="rsa or ed25519"):
        generate_key("dsa")  # type: ignore[arg-type]


def test_signing_keys_in_several_formats() -> None:
    assert load_signing_key(RSA_KEY).algorithm == "rsa-sha256"
    assert load_signing_key(ED_KEY).algorithm == "ed25519-sha256"
    seed = base64.b64encode(bytes(range(32)))  # dkimpy's bare ed25519 seed
    assert load_signing_key(seed).algorithm == "ed25519-sha256"
    for bad in (
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ):
        with pytest.raises(DkimSigningError, match="not a PEM RSA or Ed25519 private key"):
            load_signing_key(bad)


def test_signing_refuses_messages_it_cannot_sign() -> None:
    with pytest.raises(DkimSigningError, match="no From header field"):
        sign_dkim(b"To: b@example.org\r\n\r\nhi\r\n", "example.com", "rsa", RSA_KEY)
    with pytest.raises(DkimSigningError, match="must include From"):
        sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY, headers=["to", "subject"])
    with pytest.raises(DkimSigningError, match="cannot sign"):
        sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY, headers=["from", "received"])


def test_a_bare_lf_message_gets_a_bare_lf_signature(resolver: Resolver) -> None:
    lf = MESSAGE.replace(b"\r\n", b"\n")
    signed = sign_dkim(lf, "example.com", "rsa", RSA_KEY)
    assert b"\r" not in signed
    assert verify_dkim(signed, resolver)[0].result == "pass"


def test_signing_key_for_picks_the_domain_or_its_closest_parent(tmp_path: Path) -> None:
    keys = [
        DkimKey(domain="example.com", selector="s1", key_file=tmp_path / "a.key"),
        DkimKey(domain="news.example.com", selector="s2", key_file=tmp_path / "b.key"),
    ]
    settings_ = Settings(dkim_keys=keys)
    assert signing_key_for("Example.COM.", settings_) == keys[0]
    assert signing_key_for("news.example.com", settings_) == keys[1]
    assert signing_key_for("eu.news.example.com", settings_) == keys[1]
    assert signing_key_for("mail.example.com", settings_) == keys[0]
    assert signing_key_for("example.org", settings_) is None
    assert signing_key_for("com", settings_) is None
