"""MTA-STS for sending, against real servers on loopback: a ZoneServer answering the
``_mta-sts`` TXT and ``mta-sts.<domain>`` A records, and an HTTPS server whose certificates a
test CA (made here with ``cryptography``) issued; the client checks them with ``ca_file``."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.outbound.mta_sts import (
    MAX_POLICY_BYTES,
    MtaStsClient,
    MtaStsPolicy,
    MtaStsPolicyError,
    mx_pattern_matches,
    opportunistic_tls_context,
    parse_policy,
    parse_sts_record,
    tls_requirement,
    verified_tls_context,
)
from postwise.testing.pki import TestAuthority

ENFORCE = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.good.test\r\nmx: *.mx.good.test\r\n"
    "max_age: 86400\r\n"
)
DOMAINS = [
    "good.test",
    "redirect.test",
    "big.test",
    "html.test",
    "nolength.test",
    "chunked.test",
    "fuzz.test",
    "changing.test",
    "flaky.test",
    "garbage.test",
]


# --- a test CA and an HTTPS server choosing its certificate by SNI ------------------------


@dataclass
class Pki:
    ca_file: Path
    good: ssl.SSLContext  # a certificate for every mta-sts.<domain> of DOMAINS
    other: ssl.SSLContext  # a certificate for mta-sts.other.test only


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    authority = TestAuthority(tmp_path_factory.mktemp("pki"))
    good = authority.server_context(*[f"mta-sts.{d}" for d in DOMAINS])
    other = authority.server_context("mta-sts.other.test")
    return Pki(authority.ca_file, good, other)


@dataclass
class Reply:
    status: int = 200
    body: bytes = ENFORCE.encode()
    content_type: str | None = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    framing: str = "length"  # length | close | chunked


class PolicyServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1: answers each Host from ``replies``, records the requests."""

    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replies: dict[str, Reply] = {}
        self.requests: list[str] = []
        self._pki = pki
        self.tls = pki.good
        pki.good.sni_callback = self._choose  # type: ignore[assignment]

    def _choose(self, sock: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        if name == "mta-sts.wrongname.test":
            sock.context = self._pki.other

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(5)
        return self.tls.wrap_socket(sock, server_side=True), address

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: PolicyServer

    def do_GET(self) -> None:
        host = self.headers.get("Host", "").rsplit(":", 1)[0]
        self.server.requests.append(host)
        reply = self.server.replies.get(host, Reply(404, b"no such policy"))
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.framing == "length":
            self.send_header("Content-Length", str(len(reply.body)))
        if reply.framing == "chunked":
            self.protocol_version = "HTTP/1.1"
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.framing == "chunked":
            for start in range(0, len(reply.body), 7):
                chunk = reply.body[start : start + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(reply.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def https(pki: Pki) -> Iterator[PolicyServer]:
    server = PolicyServer(pki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _records(ids: dict[str, str] | None = None) -> list[ZoneRecord]:
    ids = ids or {}
    records = []
    for domain in [*DOMAINS, "wrongname.test"]:
        records.append(
            ZoneRecord(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={ids.get(domain, '1')}")
        )
        records.append(ZoneRecord(f"mta-sts.{domain}", "A", "127.0.0.1"))
    records.append(ZoneRecord("_mta-sts.hostless.test", "TXT", "v=STSv1; id=1"))
    records.append(ZoneRecord("_mta-sts.twice.test", "TXT", "v=STSv1; id=1"))
    records.append(ZoneRecord("_mta-sts.twice.test", "TXT", "v=STSv1; id=2"))
    records.append(ZoneRecord("nosts.test", "A", "127.0.0.1"))
    return records


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    with ZoneServer(_records()) as server:
        yield server


@pytest.fixture
def replies(https: PolicyServer, zone: ZoneServer) -> Iterator[dict[str, Reply]]:
    """The server's replies, reset (with the zone) after each test."""
    https.replies.clear()
    https.requests.clear()
    https.replies["mta-sts.good.test"] = Reply()
    https.replies["mta-sts.wrongname.test"] = Reply()
    yield https.replies
    zone.load(_records())


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _client(
    zone: ZoneServer, https: PolicyServer, pki: Pki, clock: Clock | None = None
) -> MtaStsClient:
    resolver = Resolver([parse_server(zone.address)], timeout=1.0)
    return MtaStsClient(
        resolver, port=https.port, ca_file=pki.ca_file, timeout=5.0, clock=clock or Clock()
    )


# --- fetching ------------------------------------------------------------------------------


async def test_an_enforce_policy_is_fetched_and_parsed(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    client = _client(zone, https, pki)
    policy = await client.policy_for("Good.Test.")
    assert policy is not None
    assert (policy.mode, policy.mx, policy.max_age, policy.id) == (
        "enforce",
        ("mx1.good.test", "*.mx.good.test"),
        86400,
        "1",
    )
    assert policy.matches("mx1.good.test") and policy.matches("a.mx.good.test")
    assert not policy.matches("a.b.mx.good.test") and not policy.matches("evil.test")
    assert policy.to_json()["mx"] == ["mx1.good.test", "*.mx.good.test"]
    assert https.requests == ["mta-sts.good.test"]
    assert tls_requirement(policy, "mx1.good.test") == "verify"
    assert tls_requirement(policy, "mx.evil.test") == "refuse"


async def test_a_certificate_for_another_name_gives_no_policy(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    client = _client(zone, https, pki)
    found = await client.lookup("wrongname.test")
    assert found.policy is None
    assert "mta-sts.wrongname.test" in found.reason
    assert "TLS failed" in found.reason and "certificate" in found.reason.lower()
    assert https.requests == []  # the request was never sent


async def test_a_certificate_from_an_unknown_ca_gives_no_policy(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    resolver = Resolver([parse_server(zone.address)], timeout=1.0)
    client = MtaStsClient(resolver, port=https.port, ca_file=None, timeout=5.0)
    found = await client.lookup("good.test")
    assert found.policy is None and "certificate verify failed" in found.reason


async def test_a_new_txt_id_triggers_a_refetch(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    replies["mta-sts.changing.test"] = Reply(body=ENFORCE.replace("good", "changing").encode())
    clock = Clock()
    client = _client(zone, https, pki, clock)
    first = await client.policy_for("changing.test")
    again = await client.lookup("changing.test")
    assert first is not None and again.cached and again.policy == first
    assert https.requests == ["mta-sts.changing.test"]  # the same id: no second fetch

    replies["mta-sts.changing.test"] = Reply(
        body=b"version: STSv1\nmode: testing\nmx: mx.changing.test\nmax_age: 600\n"
    )
    zone.load(_records({"changing.test": "2"}))
    clock.now += 60
    second = await client.policy_for("changing.test")
    assert second is not None and (second.id, second.mode, second.max_age) == ("2", "testing", 600)
    assert len(https.requests) == 2
    assert tls_requirement(second, "other.host") == "opportunistic"

    clock.now += 601  # expired: fetched again even with the same id
    await client.policy_for("changing.test")
    assert len(https.requests) == 3


async def test_the_cached_policy_survives_a_failed_refresh(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    replies["mta-sts.flaky.test"] = Reply(body=ENFORCE.replace("good", "flaky").encode())
    clock = Clock()
    client = _client(zone, https, pki, clock)
    first = await client.policy_for("flaky.test")
    assert first is not None

    replies["mta-sts.flaky.test"] = Reply(500, b"oops")
    zone.load(_records({"flaky.test": "2"}))
    found = await client.lookup("flaky.test")
    assert found.policy == first and found.cached
    assert "HTTP 500" in found.reason and "keeping the cached policy" in found.reason

    zone.load([r for r in _records() if r.name != "_mta-sts.flaky.test"])  # record removed
    assert await client.policy_for("flaky.test") == first

    clock.now += 86401  # once expired, a failing domain has no policy
    zone.load(_records({"flaky.test": "2"}))
    assert await client.policy_for("flaky.test") is None


async def test_redirects_are_not_followed(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    target = "https://mta-sts.good.test/.well-known/mta-sts.txt"
    replies["mta-sts.redirect.test"] = Reply(301, b"", headers={"Location": target})
    found = await _client(zone, https, pki).lookup("redirect.test")
    assert found.policy is None and "HTTP 301 redirect" in found.reason
    assert https.requests == ["mta-sts.redirect.test"]


async def test_an_oversize_body_is_refused(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    padding = b"# padding\n" * (MAX_POLICY_BYTES // 10 + 10)
    client = _client(zone, https, pki)
    for framing in ("length", "close", "chunked"):
        replies["mta-sts.big.test"] = Reply(body=ENFORCE.encode() + padding, framing=framing)
        found = await client.lookup("big.test")
        assert found.policy is None and "65536" in found.reason, framing


async def test_bodies_without_length_or_chunked_are_read(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    replies["mta-sts.nolength.test"] = Reply(framing="close")
    replies["mta-sts.chunked.test"] = Reply(framing="chunked")
    client = _client(zone, https, pki)
    for domain in ("nolength.test", "chunked.test"):
        policy = await client.policy_for(domain)
        assert policy is not None and policy.mx == ("mx1.good.test", "*.mx.good.test")


async def test_other_failures_give_no_policy_with_a_reason(
    zone: ZoneServer, https: PolicyServer, pki: Pki, replies: dict[str, Reply]
) -> None:
    replies["mta-sts.html.test"] = Reply(content_type="text/html")
    replies["mta-sts.garbage.test"] = Reply(body=b"\xff\xfe not utf-8")
    client = _client(zone, https, pki)
    expected = {
        "html.test": "not text/plain",
        "garbage.test": "not UTF-8",
        "hostless.test": "has no address",
        "twice.test": "2 v=STSv1 TXT records",
        "nosts.test": "no v=STSv1 TXT record",
        "nxdomain.test": "no v=STSv1 TXT record",
        "bad domain!": "not a valid domain name",
    }
    for domain, reason in expected.items():
        found = await client.lookup(domain)
        assert found.policy is None and reason in found.reason, (domain, found.reason)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300)
    | st.text(alphabet="versionmdt:_axSTv1 \n*.-0123456789", max_size=200)
)
def test_malformed_bodies_over_the_wire_never_crash(
    zone: ZoneServer, https: PolicyServer, pki: Pki, body: bytes | str
) -> None:
    https.replies["mta-sts.fuzz.test"] = Reply(
        body=body if isinstance(body, bytes) else body.encode()
    )
    found = asyncio.run(_client(zone, https, pki).lookup("fuzz.test"))
    assert found.policy is not None or found.reason


# --- parsing and decisions -----------------------------------------------------------------


@given(st.text(max_size=400))
def test_parse_policy_raises_only_its_own_error(body: str) -> None:
    try:
        policy = parse_policy(body)
    except MtaStsPolicyError as error:
        assert str(error)
    else:
        assert policy.mode in ("enforce", "testing", "none")
        assert 0 <= policy.max_age <= 31557600


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("mode: enforce\nmx: a.test\nmax_age: 1", "version must be STSv1"),
        ("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1", "mode must be"),
        ("version: STSv1\nmode: enforce\nmax_age: 1", "needs at least one mx"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 99999999999", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -5", "max_age"),
        ("version: STSv1\nmode: enforce\nmx: *.*.test\nmax_age: 1", "is not a host name"),
        ("version: STSv1\nmode: enforce\nmode: none\nmx: a.test\nmax_age: 1", "2 times"),
        ("version: STSv1\njunk line\n", "not 'key: value'"),
    ],
)
def test_malformed_policies_name_the_problem(body: str, problem: str) -> None:
    with pytest.raises(MtaStsPolicyError, match=problem):
        parse_policy(body)


def test_a_none_policy_needs_no_mx_and_unknown_keys_are_ignored() -> None:
    policy = parse_policy("version: STSv1\nmode: none\nmax_age: 0\nextension: yes\n")
    assert policy.mode == "none" and policy.mx == ()
    assert tls_requirement(policy, "anything.test") == "opportunistic"
    assert tls_requirement(None, "anything.test") == "opportunistic"


def test_txt_records() -> None:
    assert parse_sts_record(("v=spf1 -all", "v=STSv1; id=20240101T0;"), "n") == "20240101T0"
    for records in [(), ("v=STSv1; id=a b",), ("v=STSv1; id=" + "a" * 33,), ("v=STSv1",)]:
        with pytest.raises(MtaStsPolicyError):
            parse_sts_record(records, "n")


def test_wildcards_cover_the_leftmost_label_only() -> None:
    assert mx_pattern_matches("*.example.com", "mx.example.com")
    assert mx_pattern_matches("*.example.com", "MX.Example.com.")
    assert not mx_pattern_matches("*.example.com", "example.com")
    assert not mx_pattern_matches("*.example.com", "a.mx.example.com")
    assert not mx_pattern_matches("*.example.com", "mxexample.com")
    assert mx_pattern_matches("mx.example.com", "mx.example.com")
    policy = MtaStsPolicy("testing", ("*.example.com",), 60, "1")
    assert policy.matches("mx.example.com") and not policy.matches("mx.example.org")


def test_tls_contexts() -> None:
    verified = verified_tls_context(None)
    assert verified.check_hostname and verified.verify_mode == ssl.CERT_REQUIRED
    loose = opportunistic_tls_context()
    assert not loose.check_hostname and loose.verify_mode == ssl.CERT_NONE
