"""STARTTLS and MTA-STS end to end: provider sinks offering STARTTLS with certificates a test
CA (``postwise.testing.pki``) issued for their MX names, MTA-STS policies served over
HTTPS on loopback and announced in the local DNS zone, and the real delivery worker."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from postwise.auth.zone_server import ZoneRecord
from postwise.testing.pki import TestAuthority
from tests.outbound.delivery_harness import OutboundWorld

STS_DOMAINS = ("mail.test", "corp.test")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(tmp_path_factory.mktemp("pki"), "Postwise delivery test CA")


class PolicyServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1 serving ``policies[host]`` at /.well-known/mta-sts.txt."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _PolicyHandler)
        self.context = context
        self.policies: dict[str, str] = {}
        self.requests: list[str] = []

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(5)
        return self.context.wrap_socket(sock, server_side=True), address


class _PolicyHandler(BaseHTTPRequestHandler):
    server: PolicyServer

    def do_GET(self) -> None:
        host = self.headers.get("Host", "").rsplit(":", 1)[0]
        self.server.requests.append(host)
        body = self.server.policies.get(host)
        if body is None or self.path != "/.well-known/mta-sts.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def https(pki: TestAuthority) -> Iterator[PolicyServer]:
    server = PolicyServer(pki.server_context(*(f"mta-sts.{d}" for d in STS_DOMAINS)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def policies(https: PolicyServer) -> Iterator[dict[str, str]]:
    https.policies.clear()
    https.requests.clear()
    yield https.policies


def enforce(*mx: str) -> str:
    lines = ["version: STSv1", "mode: enforce", *(f"mx: {m}" for m in mx), "max_age: 86400"]
    return "\r\n".join(lines) + "\r\n"


def sts_records() -> list[ZoneRecord]:
    records = []
    for domain in STS_DOMAINS:
        records.append(ZoneRecord(f"_mta-sts.{domain}", "TXT", "v=STSv1; id=20261122"))
        records.append(ZoneRecord(f"mta-sts.{domain}", "A", "127.0.0.1"))
    return records


def sts_world(tmp: Path, pki: TestAuthority, https: PolicyServer, **options: Any) -> OutboundWorld:
    return OutboundWorld(
        tmp,
        records=sts_records(),
        mta_sts=True,
        mta_sts_port=int(https.server_address[1]),
        outbound_tls_ca_file=pki.ca_file,
        **options,
    )


def good_tls(pki: TestAuthority) -> dict[str, ssl.SSLContext]:
    return {
        "127.0.0.2": pki.server_context("mx1.mail.test"),
        "127.0.0.3": pki.server_context("mx2.mail.test"),
        "127.0.0.4": pki.server_context("mx.corp.test"),
        "127.0.0.5": pki.server_context("backup.corp.test"),
    }


async def first_reply(world: OutboundWorld, message_id: str) -> dict[str, Any]:
    """The recipient row once its first outcome is stored."""
    await world.until(lambda: bool(world.queue.show(message_id)["recipients"][0]["last_reply"]))
    row: dict[str, Any] = world.queue.show(message_id)["recipients"][0]
    return row


def mail_test_count(world: OutboundWorld) -> int:
    return world.sinks["127.0.0.2"].count() + world.sinks["127.0.0.3"].count()


async def test_starttls_is_used_whenever_offered(tmp_path: Path, pki: TestAuthority) -> None:
    # Opportunistic: no policy, so any certificate will do, and no STARTTLS means clear text.
    tls = {
        "127.0.0.2": pki.server_context("mx1.mail.test"),
        "127.0.0.3": pki.server_context("unrelated.name.test"),
    }
    async with OutboundWorld(tmp_path, sink_tls=tls) as world:
        encrypted = world.submit(["alice@mail.test"])
        clear = world.submit(["bob@corp.test"])
        for accepted in (encrypted, clear):
            shown = await world.settled(accepted.enqueued.message_id)
            assert shown["recipients"][0]["state"] == "delivered"
        contexts = {c["recipient"]: c for r, c in world.results if r.outcome == "delivered"}
        assert contexts["alice@mail.test"]["tls"] is True
        assert contexts["bob@corp.test"]["tls"] is False
        assert mail_test_count(world) == 1 and world.sinks["127.0.0.4"].count() == 1


async def test_enforced_policy_with_valid_certificates_delivers_over_tls(
    tmp_path: Path, pki: TestAuthority, https: PolicyServer, policies: dict[str, str]
) -> None:
    policies["mta-sts.mail.test"] = enforce("*.mail.test")
    async with sts_world(tmp_path, pki, https, sink_tls=good_tls(pki)) as world:
        accepted = world.submit(["alice@mail.test", "bob@mail.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        assert {r["state"] for r in shown["recipients"]} == {"delivered"}
        assert all(c["tls"] for r, c in world.results if r.outcome == "delivered")
        assert "mta-sts.mail.test" in https.requests
        assert mail_test_count(world) == 1


async def test_a_certificate_for_the_wrong_name_defers_instead_of_sending_in_clear(
    tmp_path: Path, pki: TestAuthority, https: PolicyServer, policies: dict[str, str]
) -> None:
    policies["mta-sts.mail.test"] = enforce("*.mail.test")
    wrong = {ip: pki.server_context("mx.elsewhere.test") for ip in ("127.0.0.2", "127.0.0.3")}
    async with sts_world(tmp_path, pki, https, sink_tls=wrong) as world:
        accepted = world.submit(["alice@mail.test"])
        recipient = await first_reply(world, accepted.enqueued.message_id)
        assert recipient["state"] == "queued" and recipient["last_reply"].startswith("451")
        assert "certificate" in recipient["last_reply"].lower()
        assert "mx1.mail.test" in recipient["last_reply"]
        assert mail_test_count(world) == 0
        assert world.sinks["127.0.0.2"].connections + world.sinks["127.0.0.3"].connections >= 1


async def test_a_host_without_starttls_defers_under_an_enforced_policy(
    tmp_path: Path, pki: TestAuthority, https: PolicyServer, policies: dict[str, str]
) -> None:
    policies["mta-sts.corp.test"] = enforce("mx.corp.test", "backup.corp.test")
    async with sts_world(tmp_path, pki, https) as world:  # no sink offers STARTTLS
        accepted = world.submit(["carol@corp.test"])
        recipient = await first_reply(world, accepted.enqueued.message_id)
        assert recipient["state"] == "queued"
        assert "does not offer STARTTLS" in recipient["last_reply"]
        assert world.sinks["127.0.0.4"].count() == world.sinks["127.0.0.5"].count() == 0
        # A domain without a policy still gets its mail in clear.
        other = world.submit(["dave@mail.test"])
        shown = await world.settled(other.enqueued.message_id)
        assert shown["recipients"][0]["state"] == "delivered"


async def test_an_mx_outside_the_policy_is_never_contacted(
    tmp_path: Path, pki: TestAuthority, https: PolicyServer, policies: dict[str, str]
) -> None:
    # corp.test's preferred MX (.4) is not in the policy: only the backup may be used.
    policies["mta-sts.corp.test"] = enforce("backup.corp.test")
    async with sts_world(tmp_path, pki, https, sink_tls=good_tls(pki)) as world:
        accepted = world.submit(["erin@corp.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        assert shown["recipients"][0]["state"] == "delivered"
        assert shown["recipients"][0]["last_mx"] == "backup.corp.test"
        assert world.sinks["127.0.0.4"].connections == 0
        assert world.sinks["127.0.0.5"].count() == 1


async def test_a_policy_matching_no_mx_defers_without_any_connection(
    tmp_path: Path, pki: TestAuthority, https: PolicyServer, policies: dict[str, str]
) -> None:
    policies["mta-sts.mail.test"] = enforce("mx.someone-else.test")
    async with sts_world(tmp_path, pki, https, sink_tls=good_tls(pki)) as world:
        accepted = world.submit(["frank@mail.test"])
        recipient = await first_reply(world, accepted.enqueued.message_id)
        assert recipient["state"] == "queued" and "4.7.5" in recipient["last_reply"]
        assert "matches its enforced policy" in recipient["last_reply"]
        assert world.sinks["127.0.0.2"].connections == world.sinks["127.0.0.3"].connections == 0
