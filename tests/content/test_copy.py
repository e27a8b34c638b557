"""Copy generation: the offline generator, the OpenAI-compatible backend against a real HTTP
server on loopback, storage of every verdict, the approval flow and the CLI."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from postwise.cli import app
from postwise.content.copy import (
    Candidate,
    CopyBrief,
    CopyError,
    CopyService,
    CopyStore,
    OfflineGenerator,
    OpenAICompatibleGenerator,
    generator_from_settings,
    parse_candidates,
)
from postwise.content.guardrails import Guardrails, load_copy_policy
from postwise.core.db import open_database
from postwise.core.settings import Settings

API_KEY = "sk-test-very-secret-123"
BRIEF = CopyBrief(
    topic="the new delivery dashboard",
    facts=("See bounces and complaints per provider", "Alerts when a domain's reputation drops"),
    tone="friendly",
    count=5,
)
GOOD_REPLY = [
    {"subject": "See every bounce in one dashboard", "preheader": "Complaints per provider, too."},
    {
        "subject": 'Hi {{ first_name | default("there") }}, your dashboard is ready',
        "preheader": "Alerts when a domain's reputation drops.",
    },
    {"subject": "Reputation alerts, now in your dashboard", "preheader": ""},
]
MIXED_REPLY = [
    GOOD_REPLY[0],
    {"subject": "FREE!!! CLICK NOW $$$ viagra", "preheader": "act now!!!"},
    {"subject": "Your dashboard, ann@example.org", "preheader": "Sign in to see it."},
]


# --------------------------------------------------------------------------- fake endpoint


@dataclass
class Endpoint:
    """A chat-completions server on loopback; ``requests`` records what it received."""

    base: str
    requests: list[dict[str, Any]] = field(default_factory=list)


def _completion(content: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200},
        }
    ).encode()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    """Routes by first path segment: /ok, /fenced, /wrapped, /mixed answer with completions;
    /error500 fails, /slow does not answer until the module ends, /garbage is not JSON,
    /prose is a completion without a JSON list."""
    release = threading.Event()
    state = Endpoint(base="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            route = self.path.split("/")[1]
            if not self.path.endswith("/v1/chat/completions"):
                self._reply(404, b'{"error": "not found"}')
            elif route == "ok":
                self._reply(200, _completion(json.dumps(GOOD_REPLY)))
            elif route == "fenced":
                text = "Here are your lines:\n```json\n" + json.dumps(GOOD_REPLY) + "\n```"
                self._reply(200, _completion(text))
            elif route == "wrapped":
                self._reply(200, _completion(json.dumps({"candidates": GOOD_REPLY})))
            elif route == "mixed":
                self._reply(200, _completion(json.dumps(MIXED_REPLY)))
            elif route == "error500":
                self._reply(500, b'{"error": {"message": "model overloaded"}}')
            elif route == "slow":
                release.wait(10)
                self._reply(200, _completion("[]"))
            elif route == "garbage":
                self._reply(200, b'{"choices": [{"message": {"content": "[{"subject"')
            elif route == "prose":
                self._reply(200, _completion("Sure! Here are some ideas: Dashboard news."))
            else:
                self._reply(404, b"{}")

        def _reply(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (the timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    release.set()
    server.shutdown()
    server.server_close()


def llm(endpoint: Endpoint, route: str, timeout: float = 5.0) -> OpenAICompatibleGenerator:
    return OpenAICompatibleGenerator(
        f"{endpoint.base}/{route}/v1", "test-model", api_key=API_KEY, timeout=timeout
    )


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the newest schema, migrated once per module (Alembic is slow)."""
    path = tmp_path_factory.mktemp("copy-db") / "template.sqlite3"
    open_database(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def service_parts(
    tmp_path: Path, migrated_database: Path, scanner: Any
) -> tuple[Guardrails, CopyStore]:
    path = tmp_path / "copy.sqlite3"
    shutil.copyfile(migrated_database, path)
    return Guardrails(load_copy_policy(), scanner), CopyStore(create_engine(f"sqlite:///{path}"))


# --------------------------------------------------------------------------- brief and offline


def test_brief_is_normalised_and_validated() -> None:
    brief = CopyBrief("  the   dashboard ", ("Faster bounces. ", "", "  "), segment=" ")
    assert brief.topic == "the dashboard"
    assert brief.facts == ("Faster bounces",)
    assert brief.segment is None
    assert CopyBrief("the dashboard", ("Faster bounces",), count=9).sha256 == brief.sha256
    for bad, message in (
        ({"topic": " "}, "topic is empty"),
        ({"topic": "x", "tone": "angry"}, "unknown tone 'angry'"),
        ({"topic": "x", "count": 0}, "count must be 1..50"),
    ):
        with pytest.raises(CopyError, match=message):
            CopyBrief(**bad)


def test_offline_generator_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    first = OfflineGenerator(seed=7).generate(BRIEF, 6)
    assert first == OfflineGenerator(seed=7).generate(BRIEF, 6)
    assert len(first) == 6
    assert len({c.subject.lower() for c in first}) == 6
    assert {c.source for c in first} == {"offline"}
    others = [OfflineGenerator(seed=s).generate(BRIEF, 6) for s in range(1, 6)]
    assert any(other != first for other in others)


def test_offline_generator_uses_the_brief_and_the_patterns() -> None:
    candidates = OfflineGenerator(seed=1).generate(BRIEF, 30)
    subjects = [c.subject for c in candidates]
    assert any(s.endswith("?") for s in subjects)  # question
    assert any('{{ first_name | default("there") }}' in s for s in subjects)  # personal
    assert any(s.startswith(("This week:", "Now available:", "Don't miss")) for s in subjects)
    assert "See bounces and complaints per provider" in subjects  # a fact as the benefit
    for candidate in candidates:
        assert len(candidate.subject) <= 78 and len(candidate.preheader) <= 105
        words = f"{candidate.subject} {candidate.preheader}"
        # Nothing invented: no prices, discounts or deadlines the brief did not give.
        assert not any(claim in words for claim in ("%", "$", "free", "today only"))
    formal = OfflineGenerator().generate(CopyBrief(BRIEF.topic, BRIEF.facts, tone="formal"), 3)
    assert formal != OfflineGenerator().generate(BRIEF, 3)
    with pytest.raises(CopyError, match="English only"):
        OfflineGenerator().generate(CopyBrief("das Dashboard", language="de"), 3)


# --------------------------------------------------------------------------- model backend


def test_llm_backend_asks_the_endpoint_and_reads_its_list(endpoint: Endpoint) -> None:
    generator = llm(endpoint, "ok")
    candidates = generator.generate(BRIEF, 2)
    assert candidates == [
        Candidate(GOOD_REPLY[0]["subject"], GOOD_REPLY[0]["preheader"], "llm:test-model"),
        Candidate(GOOD_REPLY[1]["subject"], GOOD_REPLY[1]["preheader"], "llm:test-model"),
    ]
    request = endpoint.requests[-1]
    assert request["path"] == "/ok/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["body"]["model"] == "test-model"
    system, user = request["body"]["messages"]
    assert system["role"] == "system" and "JSON array of 2 objects" in system["content"]
    assert json.loads(user["content"])["topic"] == BRIEF.topic
    assert API_KEY not in repr(generator)


@pytest.mark.parametrize("route", ["fenced", "wrapped"])
def test_llm_backend_reads_fenced_and_wrapped_lists(endpoint: Endpoint, route: str) -> None:
    candidates = llm(endpoint, route).generate(BRIEF, 5)
    assert [c.subject for c in candidates] == [item["subject"] for item in GOOD_REPLY]


@pytest.mark.parametrize(
    ("route", "timeout", "message"),
    [
        ("error500", 5.0, "HTTP 500 from the endpoint"),
        ("slow", 0.3, "no reply within 0.3 s"),
        ("garbage", 5.0, "the reply is not a chat completion"),
        ("prose", 5.0, "the reply holds no JSON list"),
        ("missing", 5.0, "HTTP 404"),
    ],
)
def test_llm_failures_are_clear_copy_errors_and_store_nothing(
    endpoint: Endpoint,
    service_parts: tuple[Guardrails, CopyStore],
    route: str,
    timeout: float,
    message: str,
) -> None:
    guardrails, store = service_parts
    service = CopyService(llm(endpoint, route, timeout), guardrails, store)
    with pytest.raises(CopyError) as raised:
        service.generate(BRIEF)
    assert message in str(raised.value)
    assert endpoint.base in str(raised.value)
    assert API_KEY not in str(raised.value)
    assert store.recent() == []
    assert service.usable(BRIEF) == []


def test_unreachable_endpoint_is_a_copy_error() -> None:
    generator = OpenAICompatibleGenerator("http://127.0.0.1:9/v1", "m", timeout=2.0)
    with pytest.raises(CopyError, match="cannot reach the endpoint"):
        generator.generate(BRIEF, 3)


def test_parse_candidates_skips_unusable_items_and_dedupes() -> None:
    content = json.dumps(
        [
            {"subject": "One"},
            {"subject": "one", "preheader": "dup"},
            {"preheader": "no subject"},
            "text",
            {"subject": " Two ", "preheader": 5},
        ]
    )
    assert parse_candidates(content, "llm:m", 10) == [
        Candidate("One", "", "llm:m"),
        Candidate("Two", "", "llm:m"),
    ]
    with pytest.raises(CopyError, match="no object with a subject"):
        parse_candidates('[{"title": "x"}]', "llm:m", 3)


def test_generator_from_settings_picks_the_backend(postwise_env: Path) -> None:
    assert isinstance(generator_from_settings(Settings()), OfflineGenerator)
    with pytest.raises(CopyError, match="set POSTWISE_COPY_LLM_URL"):
        generator_from_settings(Settings(), backend="llm")
    configured = Settings(
        copy_llm_url="http://127.0.0.1:8000/v1",
        copy_llm_model="local-model",
        copy_llm_api_key=API_KEY,
        copy_llm_timeout_seconds=3.0,
    )
    chosen = generator_from_settings(configured)
    assert isinstance(chosen, OpenAICompatibleGenerator)
    assert chosen.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert (chosen.name, chosen.timeout) == ("llm:local-model", 3.0)
    assert isinstance(generator_from_settings(configured, backend="offline"), OfflineGenerator)


# --------------------------------------------------------------------------- storage and approval


def test_every_candidate_is_stored_with_its_verdict(
    endpoint: Endpoint, service_parts: tuple[Guardrails, CopyStore]
) -> None:
    guardrails, store = service_parts
    service = CopyService(llm(endpoint, "mixed"), guardrails, store)
    stored = service.generate(BRIEF)
    assert [row.status for row in stored] == ["approved", "rejected", "rejected"]
    good, spammy, personal = stored
    assert good.source == "llm:test-model" and good.reasons == []
    assert "banned term 'viagra'" in spammy.reasons
    assert spammy.spam_score is not None and spammy.spam_score > good.spam_score  # type: ignore[operator]
    assert personal.reasons == ["subject contains personal data: email (a…@example.org)"]
    listed = store.recent(status="rejected")
    assert [row.id for row in listed] == [personal.id, spammy.id]
    assert listed[1].reasons == spammy.reasons
    assert [row.subject for row in service.usable(BRIEF)] == [good.subject]
    # The same reply again stores nothing new.
    assert [row.id for row in service.generate(BRIEF)] == [row.id for row in stored]
    assert len(store.recent()) == 3


def test_sensitive_segment_waits_for_approval(service_parts: tuple[Guardrails, CopyStore]) -> None:
    guardrails, store = service_parts
    brief = CopyBrief(BRIEF.topic, BRIEF.facts, segment="bereavement", count=3)
    service = CopyService(OfflineGenerator(seed=3), guardrails, store)
    stored = service.generate(brief)
    assert len(stored) == 3
    assert {row.status for row in stored} == {"needs_approval"}
    assert service.usable(brief) == []
    approved = service.approve(stored[0].id, "alice")
    assert approved.status == "approved" and approved.approved_by == "alice"
    assert approved.approved_at is not None
    assert [row.id for row in service.usable(brief)] == [stored[0].id]
    assert service.usable(BRIEF) == []  # another brief's pool
    with pytest.raises(CopyError, match="already approved by alice"):
        service.approve(stored[0].id, "bob")
    with pytest.raises(CopyError, match="no copy candidate 999"):
        service.approve(999, "bob")
    with pytest.raises(CopyError, match="say who approves"):
        service.approve(stored[1].id, " ")


def test_rejected_candidates_cannot_be_approved(
    endpoint: Endpoint, service_parts: tuple[Guardrails, CopyStore]
) -> None:
    guardrails, store = service_parts
    rejected = CopyService(llm(endpoint, "mixed"), guardrails, store).generate(BRIEF)[1]
    with pytest.raises(CopyError, match="rejected copy cannot be approved") as raised:
        store.approve(rejected.id, "alice")
    assert "banned term 'viagra'" in str(raised.value)
    assert store.get(rejected.id).status == "rejected"


# --------------------------------------------------------------------------- CLI


def test_cli_generate_list_and_approve(postwise_env: Path, endpoint: Endpoint) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "copy", "generate", "--topic", "the new delivery dashboard",
            "--facts", "See bounces and complaints per provider",
            "--segment", "health", "--n", "3", "--backend", "offline", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and {row["status"] for row in rows} == {"needs_approval"}
    approved = runner.invoke(app, ["copy", "approve", str(rows[0]["id"]), "--by", "alice"])
    assert approved.exit_code == 0, approved.output
    assert f"approved copy candidate {rows[0]['id']} by alice" in approved.stdout
    listed = runner.invoke(app, ["copy", "list", "--status", "approved", "--json"])
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [rows[0]["id"]]
    table = runner.invoke(app, ["copy", "list"])
    assert table.exit_code == 0 and "needs_approval" in table.stdout
    again = runner.invoke(app, ["copy", "approve", str(rows[0]["id"]), "--by", "bob"])
    assert again.exit_code == 1 and "already approved by alice" in again.stderr
    bad = runner.invoke(app, ["copy", "list", "--status", "maybe"])
    assert bad.exit_code == 1 and "unknown status 'maybe'" in bad.stderr


def test_cli_llm_backend_failure_is_reported(
    postwise_env: Path, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from postwise.core.settings import get_settings

    monkeypatch.setenv("POSTWISE_COPY_LLM_URL", f"{endpoint.base}/error500/v1")
    monkeypatch.setenv("POSTWISE_COPY_LLM_API_KEY", API_KEY)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["copy", "generate", "--topic", "the dashboard"])
    assert result.exit_code == 1
    assert "HTTP 500 from the endpoint" in result.stderr
    assert API_KEY not in result.stderr + result.stdout
    assert endpoint.requests[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    listed = CliRunner().invoke(app, ["copy", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""
