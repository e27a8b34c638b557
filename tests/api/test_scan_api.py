"""The scan API over a real uvicorn server on loopback, exercised with httpx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

TEST_MODEL_VERSION = "test-tiny-model"  # as written by the test_model_dir fixture


@pytest.fixture(scope="module")
def client(live_api: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api.base_url, timeout=30) as http:
        yield http


def test_healthz_names_model_and_policy(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model_version"] == TEST_MODEL_VERSION
    assert body["policy_version"]


def test_scan_returns_the_verdict_json(
    client: httpx.Client, fixture_bytes: Callable[[str], bytes]
) -> None:
    response = client.post(
        "/v1/scan",
        content=fixture_bytes("phish_apple_id.eml"),
        headers={"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"id", "action", "score", "class", "probabilities", "symbols"} <= body.keys()
    assert body["id"] == "c0ffee.5120@appleid-verify-center.com"
    assert body["action"] != "no_action"
    assert body["class"] == "phish"
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "URL_ANCHOR_MISMATCH" in {s["name"] for s in body["symbols"]}
    assert all(set(s) == {"name", "score", "evidence"} for s in body["symbols"])


def test_scan_accepts_any_content_type_and_an_id(
    client: httpx.Client, fixture_bytes: Callable[[str], bytes]
) -> None:
    response = client.post(
        "/v1/scan",
        params={"id": "queue/0001"},
        content=fixture_bytes("personal_reply.eml"),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "queue/0001"
    assert body["action"] == "no_action"
    assert body["class"] == "ham"


@pytest.mark.parametrize("payload", [b"", b"   \r\n\r\n  "], ids=["empty", "whitespace"])
def test_empty_body_is_a_400_with_a_precise_message(client: httpx.Client, payload: bytes) -> None:
    response = client.post("/v1/scan", content=payload)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("empty body")
    assert "raw RFC 822 message" in detail
    assert "--data-binary" in detail


def test_over_size_body_is_a_413(
    client: httpx.Client, live_api: Any, make_message: Callable[..., bytes]
) -> None:
    limit = live_api.settings.max_message_bytes
    raw = make_message(text="word " * (limit // 4))
    assert len(raw) > limit
    response = client.post("/v1/scan", content=raw)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert str(limit) in detail and "over the limit" in detail


def test_over_size_streamed_body_without_length_is_a_413(
    client: httpx.Client, live_api: Any
) -> None:
    limit = live_api.settings.max_message_bytes

    def chunks():
        yield b"From: a@example.org\r\nTo: b@example.net\r\n\r\n"
        for _ in range(limit // 8192 + 2):
            yield b"x" * 8192

    response = client.post("/v1/scan", content=chunks())  # chunked: no Content-Length
    assert response.status_code == 413
    assert "over the limit" in response.json()["detail"]


def test_body_just_under_the_limit_is_scanned(
    client: httpx.Client, live_api: Any, make_message: Callable[..., bytes]
) -> None:
    limit = live_api.settings.max_message_bytes
    raw = make_message(text="word " * (limit // 8))
    assert len(raw) <= limit
    assert client.post("/v1/scan", content=raw).status_code == 200


def test_openapi_lists_the_scan_route(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert "post" in spec["paths"]["/v1/scan"]
    assert "/healthz" in spec["paths"]
    body = spec["paths"]["/v1/scan"]["post"]["requestBody"]
    assert "message/rfc822" in body["content"]


def test_unknown_route_is_a_404(client: httpx.Client) -> None:
    assert client.get("/v1/nothing-here").status_code == 404
    assert client.get("/v1/scan").status_code == 405


def test_scanned_verdict_is_stored_with_provenance(
    client: httpx.Client, live_api: Any, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes("corpus/ham/meeting.eml")
    body = client.post("/v1/scan", params={"id": "stored-check"}, content=raw).json()
    engine = create_engine(live_api.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT id, message_id, message_sha256, action, message_class, "
                    "model_version, policy_version, source FROM verdicts WHERE message_id = :id"
                ),
                {"id": "stored-check"},
            ).one()
            event = connection.execute(
                text("SELECT type, payload FROM events WHERE event_id = :event_id"),
                {"event_id": f"verdict:{row.id}"},
            ).one()
    finally:
        engine.dispose()
    assert row.message_sha256 == body["message_sha256"]
    assert row.action == body["action"]
    assert row.message_class == body["class"]
    assert row.model_version == TEST_MODEL_VERSION
    assert row.policy_version == body["policy_version"]
    assert row.source == "api"
    assert event.type == "verdict"
    payload = json.loads(event.payload) if isinstance(event.payload, str) else event.payload
    assert payload["verdict_id"] == row.id
    assert payload["action"] == body["action"]


def test_rejected_requests_store_nothing(client: httpx.Client, live_api: Any) -> None:
    engine = create_engine(live_api.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            before = connection.execute(text("SELECT count(*) FROM verdicts")).scalar_one()
        client.post("/v1/scan", content=b"")
        with engine.connect() as connection:
            after = connection.execute(text("SELECT count(*) FROM verdicts")).scalar_one()
    finally:
        engine.dispose()
    assert after == before
