"""``/v1/quarantine`` through the ASGI app (httpx's ASGITransport), with the quarantine in a
temporary data folder and a real sink on loopback as the next hop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_harness import Sink, free_port

from postwise.api.app import create_app
from postwise.core.settings import Settings
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import postwise_headers, with_headers
from postwise.inbound.quarantine import QuarantineEntry
from postwise.services import InboundServices

ENVELOPE = Envelope("ann.baker@example.org", ("sam.lee@example.net",), "192.0.2.7", "mx.example")

OpenApi = Callable[..., Awaitable[tuple[httpx.AsyncClient, InboundServices]]]


@pytest.fixture
def sink() -> Iterator[Sink]:
    running = Sink().start()
    yield running
    running.stop()


@pytest.fixture
async def open_api(postwise_env: Path, rule_scanner: Any) -> AsyncIterator[OpenApi]:
    """Builds the app on the test's data folder with ``next_hop``; closes it afterwards."""
    opened: list[tuple[httpx.AsyncClient, InboundServices]] = []

    async def build(next_hop: str | None) -> tuple[httpx.AsyncClient, InboundServices]:
        settings = Settings(data_dir=postwise_env, next_hop=next_hop, environment="test")
        app = create_app(settings, scanner=rule_scanner)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        opened.append((client, app.state.services))
        return client, app.state.services

    yield build
    for client, services in opened:
        await client.aclose()
        services.close()


@pytest.fixture
def quarantine(
    rule_scanner: Any, make_message: Callable[..., bytes]
) -> Callable[..., QuarantineEntry]:
    """Puts a message into ``services``' quarantine, as the gateway would."""

    def put(services: InboundServices, subject: str = "Held", **options: Any) -> QuarantineEntry:
        raw = make_message(headers={"Subject": subject}).replace(b"\n", b"\r\n")
        verdict = rule_scanner.scan(raw)
        marked = with_headers(raw, postwise_headers(verdict))
        return services.quarantine.add(marked, verdict, ENVELOPE, reason="test", **options)

    return put


async def test_list_gives_the_total_and_the_newest_first(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(None)
    assert (await client.get("/v1/quarantine")).json() == {"total": 0, "items": []}
    first = quarantine(services, "first")
    second = quarantine(services, "second")
    body = (await client.get("/v1/quarantine")).json()
    assert body["total"] == 2
    assert [item["id"] for item in body["items"]] == [second.id, first.id]
    assert body["items"][0] == second.to_json()
    assert body["items"][0]["subject"] == "second"
    page = (await client.get("/v1/quarantine", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 2 and [item["id"] for item in page["items"]] == [first.id]
    assert (await client.get("/v1/quarantine", params={"limit": 0})).status_code == 422


async def test_show_gives_the_entry_with_its_verdict(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(None)
    entry = quarantine(services)
    response = await client.get(f"/v1/quarantine/{entry.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == entry.id
    assert body["rcpt_to"] == ["sam.lee@example.net"] and body["client_ip"] == "192.0.2.7"
    assert body["verdict"] == entry.verdict
    assert {"action", "score", "class", "symbols"} <= body["verdict"].keys()


async def test_raw_is_the_stored_message(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(None)
    entry = quarantine(services)
    response = await client.get(f"/v1/quarantine/{entry.id}/raw")
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.content == services.quarantine.raw(entry)
    assert response.content.startswith(b"X-Postwise-Score: ")


async def test_release_relays_to_the_next_hop_and_drops_the_entry(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry], sink: Sink
) -> None:
    client, services = await open_api(sink.address)
    entry = quarantine(services)
    stored = services.quarantine.raw(entry)
    response = await client.post(f"/v1/quarantine/{entry.id}/release")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["released"] == entry.id and body["to"] == sink.address
    assert body["reply"].startswith("2.0.0 Ok")
    [message] = sink.messages
    assert message.raw == stored and message.rcpt_to == ENVELOPE.rcpt_to
    assert (await client.get(f"/v1/quarantine/{entry.id}")).status_code == 404
    assert (await client.get("/v1/quarantine")).json()["total"] == 0


async def test_release_to_a_next_hop_that_is_down_is_a_409_and_keeps_the_entry(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(f"127.0.0.1:{free_port()}")
    entry = quarantine(services)
    response = await client.post(f"/v1/quarantine/{entry.id}/release")
    assert response.status_code == 409
    assert "stays in the quarantine" in response.json()["detail"]
    assert (await client.get(f"/v1/quarantine/{entry.id}")).status_code == 200


async def test_release_of_a_milter_entry_is_a_409_naming_postsuper(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry], sink: Sink
) -> None:
    client, services = await open_api(sink.address)
    entry = quarantine(services, origin="milter", mta_queue_id="4QxYz1Abc")
    response = await client.post(f"/v1/quarantine/{entry.id}/release")
    assert response.status_code == 409
    assert "postsuper -H 4QxYz1Abc" in response.json()["detail"]
    assert sink.messages == []


async def test_delete_drops_the_entry_and_its_file(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(None)
    entry = quarantine(services)
    path = services.quarantine.path_of(entry.message_sha256)
    response = await client.delete(f"/v1/quarantine/{entry.id}")
    assert response.status_code == 200
    assert response.json() == {"deleted": entry.id}
    assert not path.exists()
    assert (await client.get(f"/v1/quarantine/{entry.id}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/quarantine/nope"),
        ("GET", "/v1/quarantine/nope/raw"),
        ("POST", "/v1/quarantine/nope/release"),
        ("DELETE", "/v1/quarantine/nope"),
    ],
)
async def test_an_unknown_id_is_a_404_naming_it(open_api: OpenApi, method: str, path: str) -> None:
    client, _ = await open_api(None)
    response = await client.request(method, path)
    assert response.status_code == 404
    assert "no quarantined message 'nope'" in response.json()["detail"]


async def test_a_missing_message_file_is_a_404_saying_so(
    open_api: OpenApi, quarantine: Callable[..., QuarantineEntry]
) -> None:
    client, services = await open_api(None)
    entry = quarantine(services)
    services.quarantine.path_of(entry.message_sha256).unlink()
    response = await client.get(f"/v1/quarantine/{entry.id}/raw")
    assert response.status_code == 404
    assert "is missing" in response.json()["detail"]


async def test_openapi_lists_the_quarantine_routes(open_api: OpenApi) -> None:
    client, _ = await open_api(None)
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"get"} <= paths["/v1/quarantine"].keys()
    assert {"get", "delete"} <= paths["/v1/quarantine/{entry_id}"].keys()
    assert "get" in paths["/v1/quarantine/{entry_id}/raw"]
    assert "post" in paths["/v1/quarantine/{entry_id}/release"]
