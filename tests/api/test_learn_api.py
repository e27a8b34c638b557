"""``POST /v1/learn`` over a real uvicorn server on loopback, exercised with httpx."""

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


def feedback_events(live_api: Any, event_id: str) -> list[Any]:
    engine = create_engine(live_api.settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT type, payload FROM events WHERE event_id = :event_id"),
                    {"event_id": event_id},
                )
            )
    finally:
        engine.dispose()


def test_learning_changes_the_next_verdict_and_is_recorded_once(
    client: httpx.Client, live_api: Any, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes("personal_reply.eml")
    first_scan = client.post("/v1/scan", content=raw).json()
    assert first_scan["action"] == "no_action"
    assert first_scan["model_version"] == TEST_MODEL_VERSION

    response = client.post(
        "/v1/learn",
        params={"as": "spam"},
        content=raw,
        headers={"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == "spam"
    assert body["message_sha256"] == first_scan["message_sha256"]
    assert body["before"] == pytest.approx(first_scan["probabilities"], abs=1e-3)
    assert body["after"]["spam"] > body["before"]["spam"]
    assert body["online_version"].startswith("online-1-")
    assert body["model_version"] == f"{TEST_MODEL_VERSION}+{body['online_version']}"
    assert body["counts"] == {"ham": 0, "spam": 1, "phish": 0}
    assert body["recorded"] is True
    assert live_api.settings.resolved_online_model_path.is_file()

    second_scan = client.post("/v1/scan", content=raw).json()
    assert second_scan["model_version"] == body["model_version"]
    assert second_scan["probabilities"]["spam"] == pytest.approx(body["after"]["spam"], abs=1e-3)
    assert second_scan["action"] != "no_action"

    again = client.post("/v1/learn", params={"as": "spam"}, content=raw).json()
    assert again["recorded"] is False  # the event log keeps one feedback per label and message
    events = feedback_events(live_api, f"feedback:spam:{body['message_sha256']}")
    assert len(events) == 1
    event = events[0]
    assert event.type == "feedback"
    payload = json.loads(event.payload) if isinstance(event.payload, str) else event.payload
    assert payload["label"] == "spam"
    assert payload["online_version"] == body["online_version"]
    assert payload["source"] == "api"

    healthz = client.get("/healthz").json()
    assert healthz["model_version"].startswith(f"{TEST_MODEL_VERSION}+online-2-")


def test_ham_feedback_is_a_separate_event(
    client: httpx.Client, live_api: Any, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes("corpus/ham/meeting.eml")
    body = client.post("/v1/learn", params={"as": "ham"}, content=raw).json()
    assert body["after"]["ham"] >= body["before"]["ham"]
    assert body["recorded"] is True
    assert len(feedback_events(live_api, f"feedback:ham:{body['message_sha256']}")) == 1


@pytest.mark.parametrize("query", [{"as": "eggs"}, {"as": "HAM"}, {}], ids=["bad", "case", "none"])
def test_a_bad_or_missing_label_is_a_422_naming_the_choices(
    client: httpx.Client, fixture_bytes: Callable[[str], bytes], query: dict[str, str]
) -> None:
    response = client.post("/v1/learn", params=query, content=fixture_bytes("personal_reply.eml"))
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["query", "as"]
    if query:
        assert "'ham', 'spam' or 'phish'" in problem["msg"]


@pytest.mark.parametrize("payload", [b"", b"  \r\n "], ids=["empty", "whitespace"])
def test_an_empty_body_is_a_400(client: httpx.Client, payload: bytes) -> None:
    response = client.post("/v1/learn", params={"as": "ham"}, content=payload)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("empty body")


def test_an_over_size_body_is_a_413_and_learns_nothing(
    client: httpx.Client, live_api: Any, make_message: Callable[..., bytes]
) -> None:
    limit = live_api.settings.max_message_bytes
    before = client.get("/healthz").json()["model_version"]
    raw = make_message(text="word " * (limit // 4))
    response = client.post("/v1/learn", params={"as": "phish"}, content=raw)
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]
    assert client.get("/healthz").json()["model_version"] == before


def test_openapi_lists_the_learn_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/learn"]["post"]
    assert "message/rfc822" in operation["requestBody"]["content"]
    assert [p["name"] for p in operation["parameters"]] == ["as"]
