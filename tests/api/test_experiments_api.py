"""``/v1/experiments`` and ``/v1/contacts/{id}/decisions`` over the real app: experiments
created through the API, contacts and events posted through the API, results matching the
difference in means computed by hand, and precise 422s for wrong payloads."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postwise.api.app import create_app
from postwise.core.settings import Settings
from postwise.engage.contacts import ContactStore
from postwise.engage.experiment_store import assign

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def api(postwise_env: Path, rule_scanner: Any) -> Iterator[tuple[TestClient, ContactStore, bytes]]:
    settings = Settings(data_dir=postwise_env, environment="test")
    app = create_app(settings, scanner=rule_scanner)
    with TestClient(app) as client:
        store = ContactStore.from_settings(settings, app.state.services.engine)
        yield client, store, settings.resolved_engage_hmac_key()
    app.state.services.close()


def _detail(response: Any) -> str:
    return str(response.json()["detail"])


def test_create_and_read_experiments(api: tuple[TestClient, ContactStore, bytes]) -> None:
    client, _store, _key = api
    response = client.post("/v1/experiments", json={"name": "global", "holdout": 0.1})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["global_holdout"] is True and body["arms"] == {"control": 0.1, "treatment": 0.9}
    assert body["salt"] == "postwise-global-holdout" and body["status"] == "active"
    response = client.post(
        "/v1/experiments",
        json={"name": "subject", "arms": {"plain": 0.5, "emoji": 0.5}, "campaign": "may"},
    )
    assert response.status_code == 201 and response.json()["control"] == "plain"
    listed = client.get("/v1/experiments").json()["experiments"]
    assert [e["name"] for e in listed] == ["global", "subject"]
    assert listed[1]["assigned"] == {"plain": 0, "emoji": 0}
    assert client.get("/v1/experiments/subject").json()["campaign"] == "may"
    assert client.get("/v1/experiments/nope").status_code == 404


WRONG_PAYLOADS: list[tuple[dict[str, Any], int, str]] = [
    ({"name": "x", "holdout": 0.1, "arms": {"a": 0.5, "b": 0.5}}, 422, "not both"),
    ({"name": "x"}, 422, "either a holdout fraction or the arms"),
    ({"name": "x", "arms": {"a": 0.5, "b": 0.6}}, 422, "fractions sum to 1.1"),
    ({"name": "x", "arms": {"a": 1.0}}, 422, "at least two arms"),
    ({"name": "x", "arms": {"A B": 0.5, "b": 0.5}}, 422, "arm 'A B' is not a valid name"),
    ({"name": "x", "holdout": 1.5}, 422, "less than 1"),
    ({"name": "x", "holdout": "lots"}, 422, "valid number"),
    ({"name": "x", "holdout": 0.1, "colour": "red"}, 422, "Extra inputs"),
    ({"name": "a/b", "holdout": 0.1}, 422, "experiment name 'a/b' is not valid"),
    ({"holdout": 0.1}, 422, "Field required"),
    ({"name": "global", "holdout": 0.2}, 409, "exists already"),
    ({"name": "second", "holdout": 0.2}, 409, "'global' is the active global holdout"),
]


def test_wrong_payloads_are_refused_precisely(api: tuple[TestClient, ContactStore, bytes]) -> None:
    client, _store, _key = api
    assert (
        client.post("/v1/experiments", json={"name": "global", "holdout": 0.1}).status_code == 201
    )
    for payload, status, message in WRONG_PAYLOADS:
        response = client.post("/v1/experiments", json=payload)
        assert response.status_code == status, (payload, response.text)
        assert message in _detail(response), (payload, response.text)
    assert client.post("/v1/experiments", content=b"[1, 2]").status_code == 422
    assert len(client.get("/v1/experiments").json()["experiments"]) == 1


def test_results_and_decisions_from_posted_data(
    api: tuple[TestClient, ContactStore, bytes],
) -> None:
    client, store, key = api
    contacts = [
        {
            "email": f"p{i}@example.org",
            "consent": [
                {
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": i != 0,  # the first one refuses
                    "recorded_at": "2026-01-01T00:00:00Z",
                }
            ],
        }
        for i in range(41)
    ]
    items = client.post("/v1/contacts", json=contacts).json()["items"]
    ids = [item["contact_id"] for item in items]
    created = client.post(
        "/v1/experiments", json={"name": "feb", "holdout": 0.5, "campaign": "feb"}
    )
    assert created.status_code == 201
    report = assign(store.engine, "feb", ids, T0, key=key)
    assert ids[0] in report.skipped_consent and len(report.assigned) == 40
    arms = report.assigned
    spend = {c: 0.0 for c in arms}
    events = []
    for i, contact in enumerate(ids[1:], start=1):
        if arms[contact] == "treatment" or i % 5 == 0:
            spend[contact] = float(i)
            events.append(
                {
                    "event_id": f"buy-{i}",
                    "type": "purchase",
                    "contact_id": contact,
                    "occurred_at": (T0 + timedelta(days=i % 20)).isoformat(),
                    "value": float(i),
                }
            )
    body = client.post("/v1/events", json=events).json()
    assert body["imported"] == len(events)

    response = client.get(
        "/v1/experiments/feb/results", params={"outcome": "purchase", "window_days": 30}
    )
    assert response.status_code == 200, response.text
    rate = response.json()
    treated = [1.0 if spend[c] else 0.0 for c in arms if arms[c] == "treatment"]
    control = [1.0 if spend[c] else 0.0 for c in arms if arms[c] == "control"]
    assert rate["arms"]["treatment"] == {"n": len(treated), "mean": 1.0}
    assert rate["arms"]["control"]["mean"] == pytest.approx(statistics.fmean(control))
    effect = rate["effects"]["treatment"]
    assert effect["ate"] == pytest.approx(statistics.fmean(treated) - statistics.fmean(control))
    low, high = effect["ate_ci"]
    assert low < effect["ate"] < high

    value = client.get(
        "/v1/experiments/feb/results",
        params={"outcome": "purchase", "window_days": 30, "value": "true"},
    ).json()
    assert value["measure"] == "value"
    assert value["effects"]["treatment"]["ate"] == pytest.approx(
        statistics.fmean([spend[c] for c in arms if arms[c] == "treatment"])
        - statistics.fmean([spend[c] for c in arms if arms[c] == "control"])
    )

    bad = client.get("/v1/experiments/feb/results", params={"outcome": "buy"})
    assert bad.status_code == 422 and "not an event type" in _detail(bad)
    bad = client.get("/v1/experiments/feb/results", params={"outcome": "open", "window_days": 0})
    assert bad.status_code == 422
    bad = client.get("/v1/experiments/feb/results")
    assert bad.status_code == 422 and "outcome" in _detail(bad)
    missing = client.get("/v1/experiments/none/results", params={"outcome": "open"})
    assert missing.status_code == 404 and "no experiment named 'none'" in _detail(missing)

    decisions = client.get(f"/v1/contacts/{ids[1]}/decisions")
    assert decisions.status_code == 200
    [decision] = decisions.json()["decisions"]
    assert decision["kind"] == "experiment_assignment"
    assert decision["decision"] == {"experiment": "feb", "arm": arms[ids[1]]}
    assert decision["policy"]["salt"] == "campaign:feb" and decision["model_name"] is None
    assert client.get(f"/v1/contacts/{ids[0]}/decisions").json()["decisions"] == []
    bad = client.get("/v1/contacts/not-an-id/decisions")
    assert bad.status_code == 422 and "not a contact id" in _detail(bad)
