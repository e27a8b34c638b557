"""``POST /v1/contacts`` and ``POST /v1/events`` over the real app: per-item results, one bad
item never rejecting the others, 422 for a payload of the wrong shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postwise.api.app import create_app
from postwise.core.settings import Settings
from postwise.engage.contacts import ConsentError, ContactStore


@pytest.fixture
def api(postwise_env: Path, rule_scanner: Any) -> Iterator[tuple[TestClient, ContactStore]]:
    settings = Settings(data_dir=postwise_env, environment="test")
    app = create_app(settings, scanner=rule_scanner)
    with TestClient(app) as client:
        store = ContactStore.from_settings(settings, app.state.services.engine)
        yield client, store
    app.state.services.close()


def test_contacts_single_and_list(api: tuple[TestClient, ContactStore]) -> None:
    client, store = api
    one = {
        "email": "ann@example.org",
        "attributes": {"city": "Leeds"},
        "consent": [{"purpose": "marketing", "channel": "email", "granted": True}],
    }
    response = client.post("/v1/contacts", json=one)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created"] == 1 and body["items"][0]["status"] == "created"
    contact_id = body["items"][0]["contact_id"]
    assert contact_id == store.contact_id("ann@example.org")
    store.require_consent(contact_id, "marketing", "email")
    response = client.post("/v1/contacts", json=[one, {"email": "not an address"}, 7])
    items = response.json()["items"]
    assert [item["status"] for item in items] == ["updated", "error", "error"]
    assert [item["index"] for item in items] == [0, 1, 2]
    assert "not an email address" in items[1]["error"]


def test_events_idempotent_and_unsubscribe(api: tuple[TestClient, ContactStore]) -> None:
    client, store = api
    client.post(
        "/v1/contacts",
        json={
            "email": "bob@example.org",
            "consent": {
                "purpose": "marketing",
                "granted": "yes",
                "recorded_at": "2024-01-01T00:00:00Z",
            },
        },
    )
    events = [
        {
            "event_id": "a1",
            "type": "open",
            "occurred_at": "2024-02-01T08:00:00Z",
            "email": "bob@example.org",
        },
        {
            "event_id": "a2",
            "type": "unsubscribe",
            "occurred_at": "2024-02-02T08:00:00Z",
            "email": "bob@example.org",
        },
        {"event_id": "a3", "type": "open", "occurred_at": "soon", "email": "bob@example.org"},
    ]
    body = client.post("/v1/events", json=events).json()
    assert [item["status"] for item in body["items"]] == ["imported", "imported", "error"]
    assert body["consent_withdrawn"] == 1
    with pytest.raises(ConsentError):
        store.require_consent(store.contact_id("bob@example.org"), "marketing", "email")
    again = client.post("/v1/events", json=events[:2]).json()
    assert [item["status"] for item in again["items"]] == ["duplicate", "duplicate"]


@pytest.mark.parametrize("payload", ["just text", 42, None])
def test_wrong_payload_shape_is_422(api: tuple[TestClient, ContactStore], payload: Any) -> None:
    client, _ = api
    assert client.post("/v1/events", json=payload).status_code == 422
    assert (
        client.post(
            "/v1/contacts", content=b"{broken", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
