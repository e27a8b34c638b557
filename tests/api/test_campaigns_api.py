"""``/v1/campaigns`` through the real app under uvicorn on loopback: create (201, 409, 422),
send (a re-send queues nothing twice; 404 for an unknown campaign) and the report (404, 422)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

TEMPLATE = """
subject = "Hello {{ first_name | default('there') }}"
from = "Shop <news@shop.example>"
layout = '''<html><body><p>Hi</p><a href="https://shop.example/">Shop</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'''
"""


@pytest.fixture(scope="module")
def client(live_api: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_api.base_url, timeout=20) as http:
        for n in range(5):
            reply = http.post(
                "/v1/contacts",
                json={
                    "email": f"api{n}@mail.example",
                    "attributes": {"first_name": f"Api{n}", "plan": "pro"},
                    "consent": [{"purpose": "marketing", "channel": "email", "granted": True}],
                },
            )
            assert reply.status_code == 200, reply.text
        yield http


def _definition(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "api-news",
        "template_source": TEMPLATE,
        "segment": {"attribute": "plan", "eq": "pro"},
        "subjects": ["First {{ first_name }}", "Second"],
        **overrides,
    }


def test_create_send_and_report(client: httpx.Client) -> None:
    created = client.post("/v1/campaigns", json=_definition())
    assert created.status_code == 201, created.text
    assert [v["name"] for v in created.json()["variants"]] == ["a", "b"]
    assert created.json()["status"] == "draft"
    taken = client.post("/v1/campaigns", json=_definition())
    assert taken.status_code == 409 and "exists already" in taken.json()["detail"]

    sent = client.post("/v1/campaigns/api-news/send", json={})
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["queued"] == 5 and body["failed"] == {}
    assert sum(body["variants"].values()) == 5
    again = client.post("/v1/campaigns/api-news/send")
    assert again.status_code == 200
    assert again.json()["queued"] == 0 and again.json()["duplicates"] == 5

    report = client.get("/v1/campaigns/api-news/report", params={"window_days": 3})
    assert report.status_code == 200, report.text
    figures = report.json()
    assert figures["totals"]["sends"] == 5
    assert figures["conversion_window_days"] == 3
    assert figures["status"] == "sent"
    assert figures["lift"] is None  # no holdout asked for


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "x", "segment": "uk"}, "exactly one of 'template'"),
        (_definition(id="Bad Id"), "id"),
        (_definition(id="other", holdout=2), "holdout"),
        (_definition(id="other", unknown=1), "unknown"),
        (_definition(id="other", segment="no-such-segment"), "no-such-segment"),
        (_definition(id="other", template_source="subject = 'x'"), "template"),
    ],
)
def test_bad_definitions_are_422(client: httpx.Client, body: Any, fragment: str) -> None:
    reply = client.post("/v1/campaigns", json=body)
    assert reply.status_code == 422, reply.text
    assert fragment in reply.json()["detail"]


def test_unknown_campaigns_are_404_and_bad_windows_422(client: httpx.Client) -> None:
    assert client.post("/v1/campaigns/nope/send").status_code == 404
    missing = client.get("/v1/campaigns/nope/report")
    assert missing.status_code == 404 and "no campaign 'nope'" in missing.json()["detail"]
    assert client.get("/v1/campaigns/nope/report", params={"window_days": 0}).status_code == 422
    bad_time = client.post("/v1/campaigns/nope/send", json={"at": "yesterday"})
    assert bad_time.status_code == 422
