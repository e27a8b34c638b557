"""The outbound API over the real app (FastAPI's TestClient), with the queue, the spool and the
suppression list in the test's data folder: submission, the queue, suppressions, feedback
received back and the metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.api.app import create_app
from postwise.core.settings import Settings
from postwise.outbound.dsn import DsnRecipient, build_dsn
from postwise.services import OutboundServices

FBL = Path(__file__).resolve().parents[3] / "shared" / "data" / "fbl" / "mail-auth-arf"

RAW = (
    "From: Ann Baker <ann@example.org>\r\nTo: bob@example.net\r\nSubject: Minutes\r\n"
    "Message-ID: <minutes.1@example.org>\r\n\r\nThe minutes are attached.\r\n"
)


@pytest.fixture
def api(postwise_env: Path, rule_scanner: Any) -> Iterator[tuple[TestClient, OutboundServices]]:
    settings = Settings(
        data_dir=postwise_env,
        environment="test",
        submission_max_recipients=5,
        max_message_bytes=64 * 1024,
    )
    app = create_app(settings, scanner=rule_scanner)
    with TestClient(app) as client:
        yield client, app.state.outbound
    app.state.services.close()


def _depth(client: TestClient) -> dict[str, int]:
    depth: dict[str, int] = client.get("/v1/queue").json()["depth"]
    return depth


def _submit_raw(client: TestClient, **extra: Any) -> Any:
    body = {"from": "ann@example.org", "to": ["bob@example.net"], "raw": RAW, **extra}
    return client.post("/v1/messages", json=body)


def test_raw_json_submission_is_queued(api: tuple[TestClient, OutboundServices]) -> None:
    client, outbound = api
    response = _submit_raw(client)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["duplicate"] is False
    assert body["recipients"] == ["bob@example.net"]
    assert body["refused"] == {}
    assert outbound.queue.load(body["id"]).endswith(b"The minutes are attached.\r\n")
    assert _depth(client)["queued"] == 1


def test_structured_submission_is_composed(api: tuple[TestClient, OutboundServices]) -> None:
    client, outbound = api
    response = client.post(
        "/v1/messages",
        json={
            "from": "ann@example.org",
            "to": ["bob@example.net", "cat@example.com"],
            "subject": "Café at noon",
            "text": "See you there.\n",
            "html": "<p>See you <b>there</b>.</p>",
            "headers": {"Reply-To": "desk@example.org", "From": "Ann <ann@example.org>"},
            "pool": "default",
        },
    )
    assert response.status_code == 202, response.text
    raw = outbound.queue.load(response.json()["id"])
    assert b"From: Ann <ann@example.org>" in raw
    assert b"Reply-To: desk@example.org" in raw
    assert b"multipart/alternative" in raw
    assert b"To: bob@example.net, cat@example.com" in raw
    shown = client.get(f"/v1/queue/{response.json()['id']}").json()
    assert "Caf" in shown["subject"]


def test_rfc822_body_with_envelope_in_query(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    response = client.post(
        "/v1/messages?from=ann@example.org&to=bob@example.net&to=cat@example.com",
        content=RAW.encode(),
        headers={"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["recipients"] == ["bob@example.net", "cat@example.com"]
    missing = client.post(
        "/v1/messages?to=bob@example.net",
        content=RAW.encode(),
        headers={"Content-Type": "message/rfc822"},
    )
    assert missing.status_code == 422
    assert "from" in missing.text


def test_idempotency_header(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    body = {"from": "ann@example.org", "to": ["bob@example.net"], "raw": RAW}
    first = client.post("/v1/messages", json=body, headers={"Idempotency-Key": "order-42"})
    second = client.post("/v1/messages", json=body, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert len(client.get("/v1/queue").json()["messages"]) == 1
    field = _submit_raw(client, idempotency_key="order-43")
    again = _submit_raw(client, idempotency_key="order-43")
    assert (field.status_code, again.status_code) == (202, 200)


def test_suppressed_recipients_are_refused(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    added = client.post(
        "/v1/suppressions", json={"address": "Bob@Example.net", "reason": "asked to stop"}
    )
    assert added.status_code == 201, added.text
    assert added.json()["address"] == "bob@example.net"
    listed = client.get("/v1/suppressions").json()["items"]
    assert [e["address"] for e in listed] == ["bob@example.net"]
    partial = _submit_raw(client, to=["bob@example.net", "cat@example.com"])
    assert partial.status_code == 202
    assert partial.json()["recipients"] == ["cat@example.com"]
    assert "asked to stop" in partial.json()["refused"]["bob@example.net"]
    every = _submit_raw(client, to=["bob@example.net"])
    assert every.status_code == 422
    assert every.json()["detail"]["smtp_code"].startswith("550")
    assert "suppression list" in every.json()["detail"]["error"]
    assert client.delete("/v1/suppressions/bob@example.net").status_code == 200
    assert client.delete("/v1/suppressions/bob@example.net").status_code == 404
    assert _submit_raw(client).status_code == 202


def test_invalid_address_is_named(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    response = _submit_raw(client, to=["bob@example.net", "not an address"])
    assert response.status_code == 422
    assert "not an address" in response.json()["detail"]["error"]
    assert _depth(client)["queued"] == 0
    bad_operator_entry = client.post("/v1/suppressions", json={"address": "nobody"})
    assert bad_operator_entry.status_code == 422


def test_too_many_recipients(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    response = _submit_raw(client, to=[f"r{i}@example.net" for i in range(6)])
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "at most 5" in detail["error"]
    assert detail["smtp_code"].startswith("452")


def test_invalid_json_and_fields(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    not_json = client.post(
        "/v1/messages", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text
    missing = client.post("/v1/messages", json={"from": "ann@example.org", "raw": RAW})
    assert missing.status_code == 422
    assert any(e["loc"] == ["body", "to"] for e in missing.json()["detail"])
    wrong_type = client.post("/v1/messages", json={"from": "a@example.org", "to": "b@example.net"})
    assert wrong_type.status_code == 422
    unknown = _submit_raw(client, colour="blue")
    assert unknown.status_code == 422
    assert any(e["loc"] == ["body", "colour"] for e in unknown.json()["detail"])
    assert client.post("/v1/messages", json=[1, 2]).status_code == 422
    not_a_number = client.post(
        "/v1/messages", content=b'{"from": Infinity}', headers={"Content-Type": "application/json"}
    )
    assert not_a_number.status_code == 422
    assert "Infinity is not a JSON value" in not_a_number.text


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n", "0 From fields"),
        ("From: ann@example.org\r\nSubject: x\r\n\r\nline\rwith bare CR\r\n", "bare CR"),
        ("From: ann@example.org\r\n\r\n" + "x" * 2000 + "\r\n", "2000 octets"),
        ("\x00\x01\x02garbage\xff\ufffd\x7f\r\n\x1b[0m", "NUL byte"),
    ],
)
def test_malformed_raw_is_refused(
    api: tuple[TestClient, OutboundServices], raw: str, reason: str
) -> None:
    client, _ = api
    response = _submit_raw(client, raw=raw)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]["error"]
    assert _depth(client)["queued"] == 0
    assert client.get("/v1/queue").json()["messages"] == []


def test_binary_rfc822_body_is_refused(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    response = client.post(
        "/v1/messages?from=ann@example.org&to=bob@example.net",
        content=bytes(range(256)) * 4,
        headers={"Content-Type": "message/rfc822"},
    )
    assert response.status_code == 422
    assert _depth(client)["queued"] == 0


def test_oversized_message_is_413(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    big = RAW + ("y" * 70 + "\r\n") * 1200
    raw = client.post(
        "/v1/messages?from=ann@example.org&to=bob@example.net",
        content=big.encode(),
        headers={"Content-Type": "message/rfc822"},
    )
    assert raw.status_code == 413
    json_body = _submit_raw(client, raw=big)
    assert json_body.status_code == 413
    assert "limit" in json_body.text


def test_queue_list_show_retry_purge(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    first = _submit_raw(client, to=["bob@example.net", "cat@example.com"]).json()["id"]
    second = _submit_raw(client, to=["dan@example.com"]).json()["id"]
    listed = client.get("/v1/queue").json()
    assert [m["id"] for m in listed["messages"]] == [second, first]
    assert listed["depth"] == {"queued": 3, "held": 0, "delivered": 0, "bounced": 0}
    held = client.post("/v1/queue/hold", params={"domain": "example.com"}).json()
    assert held["held"] == 2
    assert client.get("/v1/queue").json()["depth"]["held"] == 2
    assert client.post("/v1/queue/release").json()["released"] == 2
    assert client.post("/v1/queue/hold", params={"id": "nosuchid"}).status_code == 404
    net = client.get("/v1/queue", params={"domain": "example.net"}).json()["messages"]
    assert [m["id"] for m in net] == [first]
    assert client.get("/v1/queue", params={"state": "bounced"}).json()["messages"] == []
    assert client.get("/v1/queue", params={"state": "lost"}).status_code == 422
    shown = client.get(f"/v1/queue/{first}").json()
    assert [r["recipient"] for r in shown["recipients"]] == ["bob@example.net", "cat@example.com"]
    assert shown["mx"] is None  # no delivery worker in this process
    assert client.post(f"/v1/queue/{first}/retry").json() == {"id": first, "due_now": 2}
    assert client.post("/v1/queue/retry", params={"domain": "example.com"}).json()["due_now"] == 2
    assert client.post("/v1/queue/retry").json()["due_now"] == 3
    purged = client.delete(f"/v1/queue/{first}")
    assert purged.json() == {"purged": first, "undelivered": 2}
    for response in (
        client.get(f"/v1/queue/{first}"),
        client.post(f"/v1/queue/{first}/retry"),
        client.delete(f"/v1/queue/{first}"),
        client.get("/v1/queue/not-an-id!"),
    ):
        assert response.status_code == 404
        assert "no message" in response.json()["detail"]


def test_show_includes_mx_figures_when_a_worker_runs(
    api: tuple[TestClient, OutboundServices],
) -> None:
    client, outbound = api
    message_id = _submit_raw(client).json()["id"]
    outbound.delivery_worker()  # created, not running: it has resolved nothing yet
    shown = client.get(f"/v1/queue/{message_id}").json()
    assert shown["mx"] == {"example.net": []}


def _arf(original: bytes, recipient: str | None, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 report about ``original``."""
    rcpt = f"Original-Rcpt-To: <{recipient}>\r\n" if recipient else ""
    return (
        b"From: fbl@isp.example\r\nTo: fbl@example.org\r\nSubject: complaint\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\r\n\r\n'
        b"--arf\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
        b"--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
        + f"Feedback-Type: {feedback_type}\r\nUser-Agent: Test/1.0\r\nVersion: 1\r\n{rcpt}".encode()
        + b"\r\n--arf\r\nContent-Type: message/rfc822\r\n\r\n"
        + original
        + b"\r\n--arf--\r\n"
    )


def test_complaint_about_a_queued_message(api: tuple[TestClient, OutboundServices]) -> None:
    client, outbound = api
    message_id = _submit_raw(client).json()["id"]
    original = outbound.queue.load(message_id)
    response = client.post("/v1/feedback", content=_arf(original, "bob@example.net"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "complaint"
    assert body["suppressed"] == ["bob@example.net"]
    assert body["original"]["id"] == message_id
    assert body["original"]["provider"] == "domain:example.net"
    assert body["reputation_observed"] is True
    entries = client.get("/v1/suppressions", params={"source": "complaint"}).json()["items"]
    assert [e["address"] for e in entries] == ["bob@example.net"]
    again = client.post("/v1/feedback", content=_arf(original, "bob@example.net")).json()
    assert again["duplicate"] is True


def test_real_arf_sample_without_original(api: tuple[TestClient, OutboundServices]) -> None:
    sample = FBL / "002.eml"
    if not sample.is_file():
        pytest.skip("shared fbl samples absent")
    client, _ = api
    response = client.post("/v1/feedback", content=sample.read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "complaint"
    assert body["original"] is None
    assert body["suppressed"] == ["user@example.com"]
    assert body["reputation_observed"] is False


def test_dsn_received_back_suppresses_hard_bounces(
    api: tuple[TestClient, OutboundServices],
) -> None:
    client, outbound = api
    message_id = _submit_raw(client).json()["id"]
    moment = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    dsn = build_dsn(
        outbound.queue.load(message_id),
        envelope_from="ann@example.org",
        failures=[
            DsnRecipient(
                "bob@example.net", "5.1.1", "550 5.1.1 user unknown", "mx.example.net", moment
            )
        ],
        reporting_mta="mx.example.net",
        arrival_date=moment,
        now=moment,
    )
    response = client.post("/v1/feedback", content=dsn)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "bounce"
    assert body["suppressed"] == ["bob@example.net"]
    assert body["original"]["id"] == message_id
    entries = client.get("/v1/suppressions", params={"source": "bounce"}).json()["items"]
    assert [e["address"] for e in entries] == ["bob@example.net"]


def test_non_bounce_feedback_is_422(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    response = client.post("/v1/feedback", content=RAW.encode())
    assert response.status_code == 422
    assert "not a bounce or a complaint; nothing recorded" in response.json()["detail"]
    garbage = client.post("/v1/feedback", content=bytes(range(256)) * 8)
    assert garbage.status_code == 422
    assert client.get("/v1/suppressions").json()["items"] == []


def test_metrics(api: tuple[TestClient, OutboundServices]) -> None:
    client, _ = api
    _submit_raw(client)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'postwise_queue_recipients{state="queued"} 1.0' in response.text


_KEYS = st.sampled_from(
    ["from", "to", "raw", "subject", "text", "html", "headers", "pool", "envelope_id", "x"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.dictionaries(_KEYS, _JSON | st.lists(st.text(), max_size=3), max_size=7)
    | st.fixed_dictionaries(
        {
            "from": st.text(max_size=40),
            "to": st.lists(st.text(max_size=40), min_size=1, max_size=3),
            "subject": st.text(max_size=40),
            "text": st.text(max_size=200),
        },
        optional={"headers": st.dictionaries(st.text(max_size=20), st.text(max_size=40))},
    )
    | st.fixed_dictionaries(
        {"from": st.just("ann@example.org"), "to": st.just(["bob@example.net"]), "raw": st.text()}
    )
)
def test_random_json_never_500(
    api: tuple[TestClient, OutboundServices], payload: dict[str, Any]
) -> None:
    client, _ = api
    response = client.post(
        "/v1/messages",
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (200, 202, 413, 422, 503), response.text


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=2000), rfc822=st.booleans())
def test_random_bytes_never_500(
    api: tuple[TestClient, OutboundServices], body: bytes, rfc822: bool
) -> None:
    client, _ = api
    kind = "message/rfc822" if rfc822 else "application/json"
    response = client.post(
        "/v1/messages?from=ann@example.org&to=bob@example.net",
        content=body,
        headers={"Content-Type": kind},
    )
    assert response.status_code < 500 or response.status_code == 503, response.text
    feedback = client.post("/v1/feedback", content=body)
    assert feedback.status_code in (200, 400, 422), feedback.text
