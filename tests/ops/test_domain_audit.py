"""The domain audit against local zones with known mistakes, served by a real authoritative
server on loopback, and MX hosts that are real SMTP servers on loopback (one with STARTTLS, one
without). Each mistake must come out as its named finding, with evidence and a fix; a failed
lookup must never read as "missing"."""

from __future__ import annotations

import base64
import re
import secrets
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import DNSRecord
from dnslib.proxy import ProxyResolver
from dnslib.server import DNSLogger, DNSServer
from gateway_harness import Sink, SinkHandler, free_port

from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.inbound.tls import generate_self_signed
from postwise.ops.domain_audit import (
    FINDING_CODES,
    AuditReport,
    DomainAuditError,
    Finding,
    audit_domain,
    fetch_mta_sts_policy,
    grade_findings,
)

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


def rsa_public_key(bits: int) -> str:
    """The base64 SubjectPublicKeyInfo of an RSA key of ``bits`` bits. Keys under 1024 bits
    cannot be generated any more, so those are public numbers only (enough for a DNS record)."""
    if bits >= 1024:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    else:
        modulus = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        key = rsa.RSAPublicNumbers(65537, modulus).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def posture(
    domain: str,
    *,
    spf: str | None = "v=spf1 mx ip4:192.0.2.0/24 -all",
    dmarc: str | None = None,
    mx: bool = True,
    mta_sts: bool = True,
    tlsrpt: bool = True,
    bimi: bool = True,
) -> list[ZoneRecord]:
    """A domain with everything right unless told otherwise (``spf=None`` or ``dmarc=""``: no
    record); its MX host is on loopback."""
    dmarc = dmarc if dmarc is not None else f"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}"
    records = [ZoneRecord(domain, "A", "192.0.2.10")]
    if mx:
        records += [
            ZoneRecord(domain, "MX", (10, f"mx.{domain}")),
            ZoneRecord(f"mx.{domain}", "A", LOOPBACK),
        ]
    if spf:
        records.append(ZoneRecord(domain, "TXT", spf))
    if dmarc:
        records.append(ZoneRecord(f"_dmarc.{domain}", "TXT", dmarc))
    if mta_sts:
        records += [
            ZoneRecord(f"_mta-sts.{domain}", "TXT", "v=STSv1; id=20260301"),
            ZoneRecord(f"mta-sts.{domain}", "A", "192.0.2.11"),
        ]
    if tlsrpt:
        records.append(
            ZoneRecord(f"_smtp._tls.{domain}", "TXT", f"v=TLSRPTv1; rua=mailto:tls@{domain}")
        )
    if bimi:
        records.append(
            ZoneRecord(f"default._bimi.{domain}", "TXT", f"v=BIMI1; l=https://{domain}/logo.svg")
        )
    return records


def zone_records() -> list[ZoneRecord]:
    strong = rsa_public_key(2048)
    records = posture("good.test")
    records.append(ZoneRecord("s2048._domainkey.good.test", "TXT", f"v=DKIM1; k=rsa; p={strong}"))
    records.append(ZoneRecord("sub.good.test", "MX", (10, "mx.good.test")))
    records.append(ZoneRecord("sub.good.test", "TXT", "v=spf1 -all"))
    # SPF mistakes
    records += posture("plusall.test", spf="v=spf1 ip4:192.0.2.0/24 +all")
    records += posture("bareall.test", spf="v=spf1 mx all")
    records += posture("inclall.test", spf="v=spf1 include:lax.test -all")
    records.append(ZoneRecord("lax.test", "TXT", "v=spf1 +all"))
    records += posture("neutral.test", spf="v=spf1 mx ?all")
    records += posture("noall.test", spf="v=spf1 mx")
    ten = " ".join(f"include:n{i}.spf.test" for i in range(1, 11))
    records += [
        ZoneRecord(f"n{i}.spf.test", "TXT", f"v=spf1 ip4:192.0.2.{i} -all") for i in range(1, 11)
    ]
    records.append(ZoneRecord("ten.spf.test", "TXT", f"v=spf1 {ten} -all"))
    records += posture("eleven.test", spf="v=spf1 include:ten.spf.test -all")
    records += posture("exactlyten.test", spf=f"v=spf1 {ten} -all")
    records += posture(
        "void.test", spf="v=spf1 a:gone1.void.test mx:gone2.void.test exists:gone3.void.test -all"
    )
    records += posture("onevoid.test", spf="v=spf1 mx a:gone.onevoid.test -all")
    records += posture("twospf.test", spf="v=spf1 mx -all")
    records.append(ZoneRecord("twospf.test", "TXT", "v=spf1 include:mailer.example -all"))
    records += posture("loop.test", spf="v=spf1 include:a.loop.test -all")
    records.append(ZoneRecord("a.loop.test", "TXT", "v=spf1 include:b.loop.test -all"))
    records.append(ZoneRecord("b.loop.test", "TXT", "v=spf1 include:loop.test -all"))
    records += posture("badsyntax.test", spf="v=spf1 ipv4:192.0.2.1 -all")
    records += posture("noinclude.test", spf="v=spf1 include:nothing.noinclude.test -all")
    records += posture("nospf.test", spf=None)
    records += posture("slowinclude.test", spf="v=spf1 include:_spf.slowinclude.test -all")
    # DMARC mistakes
    records += posture("pnone.test", dmarc="v=DMARC1; p=none")
    records += posture("pct.test", dmarc="v=DMARC1; p=quarantine; pct=25; rua=mailto:d@pct.test")
    records += posture("extrua.test", dmarc="v=DMARC1; p=reject; rua=mailto:agg@collector.test")
    records += posture("authrua.test", dmarc="v=DMARC1; p=reject; rua=mailto:agg@collector.test")
    records.append(ZoneRecord("authrua.test._report._dmarc.collector.test", "TXT", "v=DMARC1"))
    records += posture("baddmarc.test", dmarc="v=DMARC1; p=block; rua=mailto:d@baddmarc.test")
    records += posture("nodmarc.test", dmarc="", bimi=False)
    records += posture("slow.test")
    # DKIM mistakes
    records += posture("keys.test")
    records += [
        ZoneRecord("s512._domainkey.keys.test", "TXT", f"v=DKIM1; k=rsa; p={rsa_public_key(512)}"),
        ZoneRecord("s1024._domainkey.keys.test", "TXT", f"v=DKIM1; p={rsa_public_key(1024)}"),
        ZoneRecord("stest._domainkey.keys.test", "TXT", f"v=DKIM1; t=y; p={strong}"),
        ZoneRecord("srevoked._domainkey.keys.test", "TXT", "v=DKIM1; k=rsa; p="),
        ZoneRecord("sbroken._domainkey.keys.test", "TXT", "v=DKIM1; k=rsa; p=not*base64"),
    ]
    # MX, MTA-STS, TLS-RPT
    records += posture("nosts.test", mta_sts=False, tlsrpt=False)
    records += posture("stshostless.test", mta_sts=False)
    records.append(ZoneRecord("_mta-sts.stshostless.test", "TXT", "v=STSv1; id=1"))
    records += posture("nomx.test", mx=False)
    records += posture("nullmx.test", spf="v=spf1 -all", mx=False, mta_sts=False, tlsrpt=False)
    records.append(ZoneRecord("nullmx.test", "MX", (0, ".")))
    records += posture("noaddress.test", mx=False)
    records.append(ZoneRecord("noaddress.test", "MX", (10, "mx.gone.noaddress.test")))
    return records


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    timeouts = ["_dmarc.slow.test", "_spf.slowinclude.test"]
    with ZoneServer(zone_records(), timeouts=timeouts) as server:
        yield server


@pytest.fixture(scope="module")
def resolver(zone: ZoneServer) -> Resolver:
    return Resolver([parse_server(zone.address)], timeout=1.0)


def audit(resolver: Resolver, domain: str, **options: object) -> AuditReport:
    options.setdefault("check_starttls", False)
    return audit_domain(domain, resolver, **options)  # type: ignore[arg-type]


def only(report: AuditReport, code: str) -> Finding:
    found = report.by_code(code)
    assert len(found) == 1, f"{code}: {found} in {report.codes}"
    return found[0]


def above_info(report: AuditReport) -> list[str]:
    return [f"{f.code}:{f.severity}" for f in report.findings if f.severity != "info"]


# --------------------------------------------------------------------------- a good domain


def test_a_good_domain_grades_a(resolver: Resolver) -> None:
    report = audit(resolver, "good.test", selectors=("s2048",))
    assert above_info(report) == []
    assert (report.grade, report.score) == ("A", 100)
    assert report.records["spf"]["dns_lookups"] == 1
    assert report.records["dmarc"]["policy"] == "reject"
    assert report.records["dkim"]["s2048"]["key_bits"] == 2048
    assert report.records["mx"] == [
        {"preference": 10, "host": "mx.good.test", "addresses": [LOOPBACK]}
    ]
    # What was not checked offline is said, not hidden.
    assert {"MTA_STS_POLICY_NOT_FETCHED", "DNSSEC_UNKNOWN"} <= report.codes


def test_every_finding_has_evidence_and_a_fix(resolver: Resolver) -> None:
    for domain in ("plusall.test", "pnone.test", "nosts.test", "void.test", "extrua.test"):
        for finding in audit(resolver, domain).findings:
            assert finding.code in FINDING_CODES
            assert finding.evidence and finding.fix and finding.summary, finding


# --------------------------------------------------------------------------- SPF


@pytest.mark.parametrize("domain", ["plusall.test", "bareall.test", "inclall.test"])
def test_spf_that_passes_everyone_is_critical_and_grades_f(resolver: Resolver, domain: str) -> None:
    report = audit(resolver, domain)
    finding = only(report, "SPF_PLUS_ALL")
    assert finding.severity == "critical"
    assert report.grade == "F"
    if domain == "plusall.test":
        assert '"v=spf1 ip4:192.0.2.0/24 -all"' in finding.fix
    if domain == "inclall.test":
        assert "lax.test" in finding.summary and "include:lax.test" in finding.fix


def test_neutral_all_and_no_all(resolver: Resolver) -> None:
    neutral = only(audit(resolver, "neutral.test"), "SPF_NEUTRAL_ALL")
    assert neutral.severity == "medium" and '"v=spf1 mx -all"' in neutral.fix
    no_all = only(audit(resolver, "noall.test"), "SPF_NO_ALL")
    assert '"v=spf1 mx -all"' in no_all.fix


def test_eleven_lookups_through_nested_includes(resolver: Resolver) -> None:
    report = audit(resolver, "eleven.test")
    finding = only(report, "SPF_TOO_MANY_LOOKUPS")
    assert finding.severity == "high"
    assert "needs 11 DNS lookups" in finding.summary
    assert "eleven.test: include:ten.spf.test; ten.spf.test: include:n1.spf.test" in (
        finding.evidence
    )
    assert report.records["spf"]["dns_lookups"] == 11


def test_exactly_ten_lookups_is_within_the_limit(resolver: Resolver) -> None:
    report = audit(resolver, "exactlyten.test")
    assert report.records["spf"]["dns_lookups"] == 10
    assert "SPF_TOO_MANY_LOOKUPS" not in report.codes


def test_void_lookups_over_the_limit_and_under_it(resolver: Resolver) -> None:
    over = only(audit(resolver, "void.test"), "SPF_VOID_LOOKUPS")
    assert over.severity == "high" and "3 lookups that find nothing" in over.summary
    assert "a:gone1.void.test" in over.fix and "exists:gone3.void.test" in over.fix
    under = only(audit(resolver, "onevoid.test"), "SPF_VOID_LOOKUPS")
    assert under.severity == "low"


def test_two_spf_records(resolver: Resolver) -> None:
    finding = only(audit(resolver, "twospf.test"), "SPF_MULTIPLE_RECORDS")
    assert finding.severity == "high"
    assert '"v=spf1 mx include:mailer.example -all"' in finding.fix


def test_an_include_loop_is_reported_and_ends(resolver: Resolver) -> None:
    report = audit(resolver, "loop.test")
    finding = only(report, "SPF_INCLUDE_LOOP")
    assert "loop.test -> a.loop.test -> b.loop.test -> loop.test" in finding.summary
    assert report.records["spf"]["dns_lookups"] == 3


def test_spf_syntax_missing_include_and_missing_record(resolver: Resolver) -> None:
    syntax = only(audit(resolver, "badsyntax.test"), "SPF_SYNTAX")
    assert "'ipv4:192.0.2.1' is not an SPF mechanism" in syntax.summary
    include = only(audit(resolver, "noinclude.test"), "SPF_INCLUDE_NO_RECORD")
    assert "nothing.noinclude.test TXT: NXDOMAIN" in include.evidence
    missing = only(audit(resolver, "nospf.test"), "SPF_MISSING")
    assert missing.severity == "high" and "v=spf1" in missing.fix


def test_a_timed_out_include_is_a_failed_lookup(resolver: Resolver) -> None:
    report = audit(resolver, "slowinclude.test")
    assert "_spf.slowinclude.test" in only(report, "SPF_LOOKUP_FAILED").summary
    assert not {"SPF_MISSING", "SPF_INCLUDE_NO_RECORD"} & report.codes


# --------------------------------------------------------------------------- DMARC


def test_p_none_without_rua(resolver: Resolver) -> None:
    report = audit(resolver, "pnone.test")
    p_none = only(report, "DMARC_P_NONE")
    assert p_none.severity == "medium"
    assert '"v=DMARC1; p=quarantine"' in p_none.fix
    no_rua = only(report, "DMARC_NO_RUA")
    assert "rua=mailto:dmarc-reports@pnone.test" in no_rua.fix
    assert report.grade == "C"  # without an enforcing policy, C at best


def test_partial_pct(resolver: Resolver) -> None:
    finding = only(audit(resolver, "pct.test"), "DMARC_PCT_PARTIAL")
    assert "25%" in finding.summary
    assert '"v=DMARC1; p=quarantine; rua=mailto:d@pct.test"' in finding.fix


def test_external_rua_needs_the_destinations_consent(resolver: Resolver) -> None:
    finding = only(audit(resolver, "extrua.test"), "DMARC_RUA_EXTERNAL_UNAUTHORISED")
    assert "extrua.test._report._dmarc.collector.test" in finding.fix
    assert "DMARC_RUA_EXTERNAL_UNAUTHORISED" not in audit(resolver, "authrua.test").codes


def test_dmarc_syntax_and_missing(resolver: Resolver) -> None:
    syntax = only(audit(resolver, "baddmarc.test"), "DMARC_SYNTAX")
    assert "p=block is not one of none, quarantine, reject" in syntax.summary
    report = audit(resolver, "nodmarc.test")
    missing = only(report, "DMARC_MISSING")
    assert missing.severity == "high" and "_dmarc.nodmarc.test. TXT" in missing.fix
    assert report.grade == "C"


def test_a_timeout_on_dmarc_is_a_failed_lookup_not_a_missing_record(resolver: Resolver) -> None:
    report = audit(resolver, "slow.test")
    finding = only(report, "DMARC_LOOKUP_FAILED")
    assert "_dmarc.slow.test" in finding.summary and "not the same as missing" in finding.summary
    assert "DMARC_MISSING" not in report.codes


def test_a_subdomain_inherits_its_organisations_policy(resolver: Resolver) -> None:
    report = audit(resolver, "sub.good.test")
    assert "_dmarc.good.test" in only(report, "DMARC_INHERITED").evidence
    assert "DMARC_MISSING" not in report.codes
    assert report.records["dmarc"]["policy"] == "reject"


# --------------------------------------------------------------------------- DKIM


def test_dkim_keys(resolver: Resolver) -> None:
    selectors = ("s512", "s1024", "stest", "srevoked", "sbroken", "smissing")
    report = audit(resolver, "keys.test", selectors=selectors)
    weak = {
        re.search(r"selector (\S+)", f.summary)[1]: f.severity  # type: ignore[index]
        for f in report.by_code("DKIM_KEY_WEAK")
    }
    assert weak == {"s512": "high", "s1024": "medium"}
    assert "stest" in only(report, "DKIM_TESTING").summary
    assert "srevoked" in only(report, "DKIM_REVOKED").summary
    assert "p= is not valid base64" in only(report, "DKIM_SYNTAX").summary
    assert "smissing._domainkey.keys.test" in only(report, "DKIM_MISSING").evidence
    assert report.records["dkim"]["s512"]["key_bits"] == 512


def test_no_selectors_means_dkim_not_checked(resolver: Resolver) -> None:
    assert only(audit(resolver, "good.test"), "DKIM_NOT_CHECKED").severity == "info"


# --------------------------------------------------------------------------- MX, MTA-STS, TLS-RPT


def test_missing_mta_sts_and_tls_rpt(resolver: Resolver) -> None:
    report = audit(resolver, "nosts.test")
    sts = only(report, "MTA_STS_MISSING")
    assert sts.severity == "low" and '"mx: mx.nosts.test"' in sts.fix
    assert "_smtp._tls.nosts.test. TXT" in only(report, "TLSRPT_MISSING").fix
    assert "MTA_STS_POLICY_HOST_MISSING" in audit(resolver, "stshostless.test").codes


def test_the_mta_sts_policy_fetch_is_pluggable(resolver: Resolver) -> None:
    urls: list[str] = []

    def policy(mode: str, mx: str) -> object:
        def fetch(url: str) -> str:
            urls.append(url)
            return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 604800\r\n"

        return fetch

    clean = audit(resolver, "good.test", mta_sts_fetcher=policy("enforce", "*.good.test"))
    assert not {c for c in clean.codes if c.startswith("MTA_STS")}
    assert urls[0] == "https://mta-sts.good.test/.well-known/mta-sts.txt"
    stale = audit(resolver, "good.test", mta_sts_fetcher=policy("testing", "mx.old.test"))
    assert {"MTA_STS_TESTING", "MTA_STS_MX_NOT_COVERED"} <= stale.codes

    def unavailable(url: str) -> str:
        raise OSError("connection refused")

    down = audit(resolver, "good.test", mta_sts_fetcher=unavailable)
    assert "connection refused" in only(down, "MTA_STS_POLICY_UNAVAILABLE").evidence


def test_the_https_fetcher_validates_the_certificate(tmp_path: Path) -> None:
    """A policy behind a self-signed certificate is unavailable, as RFC 8461 3.3 requires."""
    generate_self_signed(tmp_path / "web.crt", tmp_path / "web.key", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "web.crt", tmp_path / "web.key")

    class Policy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), Policy)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://localhost:{server.server_address[1]}/.well-known/mta-sts.txt"
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_mta_sts_policy(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_mx_missing_null_and_without_address(resolver: Resolver) -> None:
    assert only(audit(resolver, "nomx.test"), "MX_MISSING").severity == "medium"
    null = audit(resolver, "nullmx.test")
    assert only(null, "MX_NULL").severity == "info"
    # A domain that takes no mail needs neither MTA-STS nor TLS-RPT.
    assert not {"MTA_STS_MISSING", "TLSRPT_MISSING"} & null.codes
    assert null.grade == "A"
    assert (
        "mx.gone.noaddress.test" in only(audit(resolver, "noaddress.test"), "MX_NO_ADDRESS").summary
    )


def test_a_domain_that_does_not_exist(resolver: Resolver) -> None:
    report = audit(resolver, "nowhere.test")
    assert report.codes == {"DOMAIN_NOT_FOUND"} and report.grade == "F"


def test_bad_input_is_refused(resolver: Resolver) -> None:
    for bad in ("", "localhost", "192.0.2.1", "https://example.org", "exa mple.org"):
        with pytest.raises(DomainAuditError):
            audit(resolver, bad)
    with pytest.raises(DomainAuditError, match="selector"):
        audit(resolver, "good.test", selectors=("bad selector",))


# --------------------------------------------------------------------------- STARTTLS


@pytest.fixture(scope="module")
def starttls_mx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An aiosmtpd MX on loopback offering STARTTLS with a self-signed certificate."""
    folder = tmp_path_factory.mktemp("tls")
    generate_self_signed(folder / "mx.crt", folder / "mx.key", "mx.good.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "mx.crt", folder / "mx.key")
    port = free_port()
    controller = Controller(SinkHandler(), hostname=LOOPBACK, port=port, tls_context=context)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture(scope="module")
def plain_mx() -> Iterator[int]:
    sink = Sink().start()
    yield sink.port
    sink.stop()


def test_an_mx_with_starttls(resolver: Resolver, starttls_mx: int) -> None:
    report = audit(
        resolver, "good.test", selectors=("s2048",), check_starttls=True, smtp_port=starttls_mx
    )
    certificate = only(report, "MX_TLS_CERTIFICATE")
    assert "CN=mx.good.test" in certificate.evidence and "self-signed" in certificate.evidence
    assert re.search(r"TLSv1\.[23]", certificate.evidence)
    assert above_info(report) == [] and report.grade == "A"
    starttls = report.records["mx"][0]["starttls"]
    assert starttls["advertised"] and starttls["self_signed"]


def test_an_mx_without_starttls(resolver: Resolver, plain_mx: int) -> None:
    report = audit(resolver, "good.test", check_starttls=True, smtp_port=plain_mx)
    finding = only(report, "MX_NO_STARTTLS")
    assert finding.severity == "high"
    assert f"127.0.0.1 port {plain_mx}" in finding.evidence and "EHLO reply 250" in finding.evidence
    assert report.grade == "C"


def test_an_unreachable_mx_is_information_not_an_error(resolver: Resolver) -> None:
    report = audit(resolver, "good.test", check_starttls=True, smtp_port=free_port(), timeout=2.0)
    assert only(report, "MX_UNREACHABLE").severity == "info"
    assert report.grade == "A"


def test_a_certificate_for_another_name(resolver: Resolver, starttls_mx: int) -> None:
    records = posture("other.test")
    with ZoneServer(records) as server:
        other = Resolver([parse_server(server.address)], timeout=1.0)
        report = audit(other, "other.test", check_starttls=True, smtp_port=starttls_mx)
    assert "mx.other.test" in only(report, "MX_CERTIFICATE_NAME_MISMATCH").fix


# --------------------------------------------------------------------------- DNSSEC


class _AuthenticatingProxy(ProxyResolver):  # type: ignore[misc]
    """Forwards to the zone server and sets the AD bit, as a validating resolver would."""

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = super().resolve(request, handler)
        reply.header.ad = 1
        return reply


def test_dnssec_is_validated_only_when_the_resolver_says_so(zone: ZoneServer) -> None:
    proxy = _AuthenticatingProxy(LOOPBACK, zone.port, timeout=2)
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data")
    server = DNSServer(proxy, address=LOOPBACK, port=0, logger=quiet)
    server.start_thread()
    try:
        port = server.server.server_address[1]
        validating = Resolver([(LOOPBACK, port)], timeout=2.0)
        report = audit(validating, "good.test")
        assert "AD=1" in only(report, "DNSSEC_VALIDATED").evidence
        assert report.records["dnssec"] == "validated"
    finally:
        server.stop()
        server.server.server_close()


# --------------------------------------------------------------------------- grade, docs


def _finding(severity: str) -> Finding:
    return Finding("X", severity, "s", "e", "f")  # type: ignore[arg-type]


def test_the_grade_formula() -> None:
    assert grade_findings([], dmarc_enforced=True) == (100, "A")
    assert grade_findings([_finding("low")] * 3, dmarc_enforced=True) == (91, "A")
    assert grade_findings([_finding("high")], dmarc_enforced=True) == (75, "C")
    assert grade_findings([_finding("medium")] * 2, dmarc_enforced=True) == (80, "B")
    assert grade_findings([_finding("high")] * 2, dmarc_enforced=True) == (50, "D")
    assert grade_findings([_finding("high")] * 3, dmarc_enforced=True) == (25, "F")
    assert grade_findings([_finding("critical")], dmarc_enforced=True) == (60, "F")
    assert grade_findings([_finding("info")] * 9, dmarc_enforced=False) == (100, "C")


def test_every_code_is_in_the_catalogue_and_documented() -> None:
    package = ROOT / "postwise" / "ops" / "domain_audit"
    modules = [path for path in sorted(package.glob("*.py")) if path.name != "__init__.py"]
    source = "\n".join(path.read_text() for path in modules)  # __init__ only re-exports
    prefixes = "DOMAIN|MX|SPF|DMARC|DKIM|MTA_STS|TLSRPT|BIMI|DNSSEC"
    emitted = set(re.findall(rf'"((?:{prefixes})_[A-Z_]+)"', source))
    assert emitted == set(FINDING_CODES)
    docs = (ROOT / "docs" / "domain-audit.md").read_text()
    undocumented = sorted(code for code in FINDING_CODES if f"`{code}`" not in docs)
    assert not undocumented, f"docs/domain-audit.md lacks {undocumented}"
