"""The whole inbound pipeline: raw bytes in, a verdict (and its JSON) out."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fixture_messages import fixture_root
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.core.errors import MessageRejected, MessageTooLarge, ModelError
from postwise.core.settings import Settings
from postwise.core.types import ACTIONS, CLASSES, Verdict
from postwise.inbound.classifier import InboundModel
from postwise.inbound.scanner import Scanner

FIXTURE_DIR = fixture_root() / "scan"
TEST_MODEL_VERSION = "test-tiny-model"  # as written by the test_model_dir fixture
ML_SYMBOLS = {"ML_HAM", "ML_SPAM", "ML_PHISH"}


def _check_verdict_json(data: dict[str, Any]) -> None:
    assert {"id", "action", "score", "class", "probabilities", "symbols"} <= data.keys()
    assert {"message_sha256", "model_version", "policy_version"} <= data.keys()
    assert data["action"] in ACTIONS
    assert data["class"] in CLASSES
    assert set(data["probabilities"]) == {"ham", "spam", "phish"}
    assert sum(data["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert all(0.0 <= p <= 1.0 for p in data["probabilities"].values())
    for symbol in data["symbols"]:
        assert set(symbol) == {"name", "score", "evidence"}
        assert isinstance(symbol["name"], str) and symbol["name"]
        assert isinstance(symbol["score"], float | int)
        assert isinstance(symbol["evidence"], str)
    assert data["score"] == pytest.approx(sum(s["score"] for s in data["symbols"]), abs=0.01)
    json.dumps(data)  # the wire form is plain JSON


def test_verdict_json_shape(scanner: Scanner, fixture_bytes: Callable[[str], bytes]) -> None:
    raw = fixture_bytes("phish_apple_id.eml")
    verdict = scanner.scan(raw)
    data = verdict.to_json()
    _check_verdict_json(data)
    assert data["id"] == "c0ffee.5120@appleid-verify-center.com"
    assert data["model_version"] == TEST_MODEL_VERSION
    assert data["policy_version"] == scanner.policy.version
    assert len(data["message_sha256"]) == 64
    names = [s["name"] for s in data["symbols"]]
    assert len(ML_SYMBOLS & set(names)) == 1  # the model speaks exactly once
    scores = [abs(s["score"]) for s in data["symbols"]]
    assert scores == sorted(scores, reverse=True)


def test_credential_phishing_is_flagged_by_rules_alone(
    rule_scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    verdict = rule_scanner.scan(fixture_bytes("phish_apple_id.eml"))
    names = {s.name for s in verdict.symbols}
    assert {"FROM_NAME_BRAND_MISMATCH", "URL_ANCHOR_MISMATCH", "URL_BRAND_IN_SUBDOMAIN"} <= names
    assert verdict.action != "no_action"
    assert verdict.score >= rule_scanner.policy.thresholds["add_header"]
    assert verdict.message_class == "phish"
    anchor = next(s for s in verdict.symbols if s.name == "URL_ANCHOR_MISMATCH")
    assert anchor.evidence == "text shows apple.com, link goes to id-verify-secure.net"


def test_credential_phishing_is_flagged_with_the_model(
    scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    verdict = scanner.scan(fixture_bytes("phish_apple_id.eml"))
    assert verdict.action != "no_action"
    assert verdict.message_class == "phish"


@pytest.mark.parametrize("name", ["personal_reply.eml", "corpus/ham/personal_note.eml"])
def test_plain_personal_note_is_left_alone(
    name: str, scanner: Scanner, rule_scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes(name)
    for each in (scanner, rule_scanner):
        verdict = each.scan(raw)
        assert verdict.action == "no_action"
        assert verdict.message_class == "ham"
        assert not [s for s in verdict.symbols if s.score > 0], verdict.symbols


def test_no_model_reports_certain_ham_probabilities(
    rule_scanner: Scanner, fixture_bytes: Callable[[str], bytes]
) -> None:
    verdict = rule_scanner.scan(fixture_bytes("personal_reply.eml"))
    assert verdict.probabilities == {"ham": 1.0, "spam": 0.0, "phish": 0.0}
    assert verdict.model_version == "none"
    assert not ML_SYMBOLS & {s.name for s in verdict.symbols}


def test_message_id_naming(rule_scanner: Scanner, make_message: Callable[..., bytes]) -> None:
    raw = make_message()
    assert rule_scanner.scan(raw).id == "minutes.2026-03-03@example.org"
    assert rule_scanner.scan(raw, message_id="inbox/42").id == "inbox/42"
    anonymous = rule_scanner.scan(make_message(headers={"Message-ID": None}))
    assert anonymous.id == anonymous.message_sha256[:16]


def test_same_bytes_same_verdict(scanner: Scanner, fixture_bytes: Callable[[str], bytes]) -> None:
    raw = fixture_bytes("corpus/spam/lottery.eml")
    assert scanner.scan(raw) == scanner.scan(raw)


def test_threads_may_share_one_scanner(scanner: Scanner, corpus_dir: Path) -> None:
    raws = [p.read_bytes() for p in sorted(corpus_dir.rglob("*.eml"))] * 4
    expected = [scanner.scan(raw).to_json() for raw in raws]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda raw: scanner.scan(raw).to_json(), raws))
    assert got == expected


def test_over_size_message_is_refused(policy, make_message: Callable[..., bytes]) -> None:
    small = Scanner(policy, None, max_message_bytes=2048)
    raw = make_message(text="x" * 4000)
    with pytest.raises(MessageTooLarge) as error:
        small.scan(raw)
    assert isinstance(error.value, MessageRejected)
    assert error.value.size == len(raw)
    assert error.value.limit == 2048
    assert f"{len(raw)} bytes" in str(error.value)
    assert "POSTWISE_MAX_MESSAGE_BYTES" in str(error.value)


def test_message_exactly_at_the_limit_is_scanned(
    policy, make_message: Callable[..., bytes]
) -> None:
    raw = make_message()
    verdict = Scanner(policy, None, max_message_bytes=len(raw)).scan(raw)
    assert isinstance(verdict, Verdict)
    with pytest.raises(MessageTooLarge):
        Scanner(policy, None, max_message_bytes=len(raw) - 1).scan(raw)


def test_thirty_megabyte_message_with_default_limits(
    scanner: Scanner, make_big_message: Callable[[int], bytes]
) -> None:
    raw = make_big_message(30 * 1024 * 1024)
    assert 29 * 1024 * 1024 < len(raw) <= scanner.max_message_bytes
    verdict = scanner.scan(raw)
    _check_verdict_json(verdict.to_json())
    assert verdict.id == "photos.1@example.org"
    assert not {s.name for s in verdict.symbols if s.name.startswith("MIME_")}


def test_from_settings_uses_the_configured_model_and_limits(
    postwise_env: Path, monkeypatch: pytest.MonkeyPatch, test_model_dir: Path
) -> None:
    monkeypatch.setenv("POSTWISE_MAX_MIME_DEPTH", "2")
    monkeypatch.setenv("POSTWISE_MAX_MESSAGE_BYTES", "5000")
    scanner = Scanner.from_settings()
    assert scanner.model_version == TEST_MODEL_VERSION
    assert scanner.max_message_bytes == 5000
    assert scanner.limits.max_depth == 2
    nested = (
        b"From: a@example.org\nTo: b@example.net\nContent-Type: multipart/mixed; boundary=a\n\n"
        b"--a\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: text/plain\n\nhi\n"
        b"--c--\n--b--\n--a--\n"
    )
    assert "MIME_TOO_DEEP" in {s.name for s in scanner.scan(nested).symbols}


def test_missing_model_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.npz or model\.joblib"):
        Scanner.from_settings(Settings(model_path=tmp_path / "empty", data_dir=tmp_path))


def test_corrupt_model_file_is_a_model_error(tmp_path: Path) -> None:
    folder = tmp_path / "bad-model"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"not a joblib file")
    with pytest.raises(ModelError, match="unreadable model file"):
        InboundModel.load(folder)


# ------------------------------------------------------------------------------ robustness

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = [
    (FIXTURE_DIR / name).read_bytes()
    for name in (
        "phish_apple_id.eml",
        "personal_reply.eml",
        "corpus/ham/newsletter.eml",
        "corpus/phish/bank_login.eml",
        "corpus/spam/work_from_home.eml",
    )
]
NASTY = [
    b"\r\n",
    b"\n\n",
    b"--",
    b"=?",
    b"?=",
    b"\x00",
    b"\xff\xfe",
    b"<a href=",
    b"boundary=",
    b"Content-Type: multipart/mixed; boundary=x\n",
    b"base64",
    b"\\",
    b'"',
    b"@",
    b"http://",
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    for _ in range(draw(st.integers(1, 25))):
        position = rng.randrange(len(raw) + 1)
        operation = rng.randrange(4)
        if operation == 0 and raw:
            del raw[position : position + rng.randrange(1, 200)]
        elif operation == 1:
            raw[position:position] = rng.choice(NASTY)
        elif operation == 2 and raw:
            raw[min(position, len(raw) - 1)] = rng.randrange(256)
        else:
            raw[position:position] = raw[rng.randrange(len(raw) + 1) :][: rng.randrange(400)]
    return bytes(raw)


def _scans_cleanly(scanner: Scanner, raw: bytes) -> None:
    verdict = scanner.scan(raw)
    _check_verdict_json(verdict.to_json())


@FUZZ
@given(raw=st.binary(max_size=4096))
def test_random_bytes_never_raise(scanner: Scanner, raw: bytes) -> None:
    _scans_cleanly(scanner, raw)


@FUZZ
@given(raw=mutated_messages())
def test_mutated_messages_never_raise(scanner: Scanner, raw: bytes) -> None:
    _scans_cleanly(scanner, raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00" * 64, b"From \n", b"Subject: only a header", b"\r\n\r\n\r\n", "é".encode() * 500],
    ids=["empty", "nul", "mbox-line", "header-only", "blank-lines", "latin"],
)
def test_degenerate_inputs_get_a_verdict(scanner: Scanner, raw: bytes) -> None:
    _scans_cleanly(scanner, raw)
