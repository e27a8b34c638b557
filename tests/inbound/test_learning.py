"""The online model (postwise.inbound.learning) and its place in the scanner."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.core.errors import MessageTooLarge, ModelError
from postwise.core.settings import Settings
from postwise.core.types import CLASSES
from postwise.inbound.classifier import InboundModel
from postwise.inbound.learning import OnlineModel, OnlineParameters, base_idf
from postwise.inbound.scanner import Scanner

TEST_MODEL_VERSION = "test-tiny-model"  # as written by the test_model_dir fixture
TOKENS = ["s:invoice", "b:please", "b:pay", "b:today", "b:please_pay", "utld:top", "html:only"]
OTHER_TOKENS = ["s:minutes", "b:meeting", "b:tuesday", "b:agenda", "html:none"]
BASE = {"ham": 0.7, "spam": 0.2, "phish": 0.1}


@pytest.fixture(scope="module")
def model(test_model_dir: Path) -> InboundModel:
    return InboundModel.load(test_model_dir)


def online_scanner(policy: Any, model: InboundModel, path: Path | None) -> Scanner:
    online = OnlineModel.open(path, idf=base_idf(model)) if path else OnlineModel(None)
    return Scanner(policy, model, online=online)


# ------------------------------------------------------------------------ the model alone


@pytest.mark.parametrize("label", CLASSES)
def test_learn_one_moves_the_message_towards_its_label(label: str) -> None:
    online = OnlineModel()
    before = online.predict_proba_one(TOKENS, BASE)
    online.learn_one(TOKENS, label, BASE)
    after = online.predict_proba_one(TOKENS, BASE)
    assert after[label] > before[label]
    # one correction is enough to make the message read as its label
    assert after[label] >= OnlineParameters().target
    assert sum(after.values()) == pytest.approx(1.0)
    assert online.updates == 1
    assert online.counts == {c: int(c == label) for c in CLASSES}


def test_a_correction_carries_over_to_a_similar_message_not_to_an_unrelated_one() -> None:
    online = OnlineModel()
    online.learn_one(TOKENS, "phish", BASE)
    similar = online.predict_proba_one([*TOKENS[:5], "b:kindly"], BASE)
    unrelated = online.predict_proba_one(OTHER_TOKENS, BASE)
    assert similar["phish"] > 0.5
    assert unrelated == pytest.approx(BASE)


def test_an_empty_model_returns_the_base_probabilities_unchanged() -> None:
    online = OnlineModel()
    base = {"ham": 1.0, "spam": 0.0, "phish": 0.0}  # exact zeros, as modified Huber gives
    probabilities, version = online.predict_with_version(TOKENS, base)
    assert probabilities == base
    assert version is None
    assert online.is_empty
    assert online.version == "online-0"


def test_tokens_never_seen_leave_the_base_probabilities() -> None:
    online = OnlineModel()
    online.learn_one(TOKENS, "spam", BASE)
    assert online.predict_proba_one(["b:never", "b:seen_before"], BASE) == pytest.approx(BASE)
    assert online.predict_proba_one([], BASE) == pytest.approx(BASE)


def test_a_certain_but_wrong_base_model_can_be_overruled() -> None:
    online = OnlineModel()
    certain_ham = {"ham": 1.0, "spam": 0.0, "phish": 0.0}
    online.learn_one(TOKENS, "phish", certain_ham)
    assert online.predict_proba_one(TOKENS, certain_ham)["phish"] > 0.5


def test_learning_is_deterministic() -> None:
    def trained() -> OnlineModel:
        online = OnlineModel()
        for label, tokens in (("phish", TOKENS), ("ham", OTHER_TOKENS), ("spam", TOKENS[:3])):
            online.learn_one(tokens, label, BASE)
        return online

    first, second = trained(), trained()
    assert first.version == second.version
    assert first.version.startswith("online-3-")
    assert first.predict_proba_one(TOKENS, BASE) == second.predict_proba_one(TOKENS, BASE)


def test_an_unknown_label_is_refused_with_the_choices() -> None:
    online = OnlineModel()
    with pytest.raises(ValueError, match="ham, spam, phish"):
        online.learn_one(TOKENS, "eggs", BASE)
    assert online.is_empty


def test_idf_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="idf must hold"):
        OnlineModel(idf=np.ones(10))


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.lists(st.text(min_size=0, max_size=12), max_size=40),
            st.sampled_from(CLASSES),
            st.tuples(*(st.floats(0.0, 1.0) for _ in CLASSES)),
        ),
        min_size=1,
        max_size=6,
    ),
    probe=st.lists(st.text(max_size=12), max_size=40),
)
def test_random_tokens_and_base_probabilities_never_give_nan(
    steps: list[tuple[list[str], str, tuple[float, float, float]]], probe: list[str]
) -> None:
    online = OnlineModel(params=OnlineParameters(learning_rate=5.0, max_steps=20))
    for tokens, label, raw_base in steps:
        total = sum(raw_base) or 1.0
        base: dict[str, float] = {c: p / total for c, p in zip(CLASSES, raw_base, strict=True)}
        online.learn_one(tokens, label, base)
        for probabilities in (
            online.predict_proba_one(tokens, base),
            online.predict_proba_one(probe, base),
        ):
            assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities.values())
            assert sum(probabilities.values()) == pytest.approx(1.0)


# ------------------------------------------------------------------------ persistence


def test_persistence_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "online-model.npz"
    online = OnlineModel.open(path)
    assert online.is_empty and not path.exists()
    online.learn_one(TOKENS, "phish", BASE)
    online.learn_one(OTHER_TOKENS, "ham", BASE)
    assert path.is_file()
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed, not left
    with np.load(path, allow_pickle=False) as stored:  # plain arrays, no pickled objects
        assert {"meta", "rows", "weights", "bias", "counts"} <= set(stored.files)
    reopened = OnlineModel.open(path)
    assert reopened.version == online.version
    assert reopened.counts == {"ham": 1, "spam": 0, "phish": 1}
    assert reopened.predict_proba_one(TOKENS, BASE) == online.predict_proba_one(TOKENS, BASE)


def test_a_process_sees_what_another_learned_at_its_next_prediction(tmp_path: Path) -> None:
    path = tmp_path / "online-model.npz"
    scanning, learning = OnlineModel.open(path), OnlineModel.open(path)
    assert scanning.predict_with_version(TOKENS, BASE) == (BASE, None)
    learning.learn_one(TOKENS, "spam", BASE)
    probabilities, version = scanning.predict_with_version(TOKENS, BASE)
    assert version == learning.version
    assert probabilities["spam"] > 0.5
    # and the other way: the scanning side learns on top of what is on disk, losing nothing
    scanning.learn_one(OTHER_TOKENS, "ham", BASE)
    assert learning.counts == {"ham": 1, "spam": 1, "phish": 0}
    # deleting the file resets every user of it
    path.unlink()
    assert scanning.predict_with_version(TOKENS, BASE) == (BASE, None)
    assert scanning.is_empty


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip file at all", b"PK\x03\x04 truncated"],
    ids=["empty", "garbage", "truncated-zip"],
)
def test_a_corrupt_file_is_a_model_error_naming_the_file_and_the_remedy(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "online-model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        OnlineModel.open(path)
    assert str(path) in str(caught.value)
    assert "delete" in str(caught.value)


def test_a_file_of_another_feature_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "online-model.npz"
    online = OnlineModel.open(path)
    online.learn_one(TOKENS, "ham", BASE)
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"feature_version": ', '"x": '))
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match="feature version"):
        OnlineModel.open(path)


def test_a_file_corrupted_while_scanning_keeps_the_loaded_weights(tmp_path: Path) -> None:
    path = tmp_path / "online-model.npz"
    online = OnlineModel.open(path)
    online.learn_one(TOKENS, "spam", BASE)
    expected = online.predict_with_version(TOKENS, BASE)
    path.write_bytes(b"overwritten by something else")
    assert online.predict_with_version(TOKENS, BASE) == expected  # mail keeps flowing
    with pytest.raises(ModelError, match=re.escape(str(path))):  # learning says what is wrong
        online.learn_one(TOKENS, "spam", BASE)


# ------------------------------------------------------------------------ in the scanner


def test_an_empty_online_model_leaves_verdicts_exactly_unchanged(
    policy: Any, model: InboundModel, tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    plain = Scanner(policy, model)
    combined = online_scanner(policy, model, tmp_path / "online-model.npz")
    for name in ("personal_reply.eml", "phish_apple_id.eml", "corpus/spam/lottery.eml"):
        raw = fixture_bytes(name)
        assert combined.scan(raw) == plain.scan(raw)
    assert combined.model_version == TEST_MODEL_VERSION


def test_scanner_learn_changes_the_verdict_and_names_both_models(
    policy: Any, model: InboundModel, tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes("personal_reply.eml")
    scanner = online_scanner(policy, model, tmp_path / "online-model.npz")
    before = scanner.scan(raw)
    assert before.action == "no_action"
    result = scanner.learn(raw, "phish")
    assert result.label == "phish"
    assert result.message_sha256 == before.message_sha256
    assert result.before == pytest.approx(before.probabilities)
    assert result.after["phish"] > result.before["phish"]
    assert result.online_version.startswith("online-1-")
    assert result.counts == {"ham": 0, "spam": 0, "phish": 1}
    after = scanner.scan(raw)
    assert after.action != "no_action"
    assert after.message_class == "phish"
    assert after.probabilities == pytest.approx(result.after)
    assert after.model_version == f"{TEST_MODEL_VERSION}+{result.online_version}"
    assert "ML_PHISH" in {s.name for s in after.symbols}
    json_form = result.to_json()
    assert json_form["online_version"] == result.online_version
    assert set(json_form["after"]) == set(CLASSES)


def test_scanner_learn_refuses_what_it_cannot_learn(
    policy: Any, model: InboundModel, fixture_bytes: Callable[[str], bytes]
) -> None:
    raw = fixture_bytes("personal_reply.eml")
    with pytest.raises(ValueError, match="label must be one of"):
        online_scanner(policy, model, None).learn(raw, "unsure")
    with pytest.raises(ModelError, match="POSTWISE_ONLINE_LEARNING"):
        Scanner(policy, model).learn(raw, "ham")
    small = Scanner(policy, model, max_message_bytes=100, online=OnlineModel())
    with pytest.raises(MessageTooLarge):
        small.learn(raw, "ham")
    assert small.online is not None and small.online.is_empty


def test_from_settings_attaches_the_online_model_only_when_enabled(
    test_model_dir: Path, tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    common: dict[str, Any] = {"environment": "test", "data_dir": tmp_path / "data"}
    common["model_path"] = test_model_dir
    on = Scanner.from_settings(Settings(**common))
    assert on.online is not None
    assert on.online.path == tmp_path / "data" / "online-model.npz"
    off = Scanner.from_settings(Settings(**common, online_learning=False))
    assert off.online is None
    on.learn(fixture_bytes("personal_reply.eml"), "spam")
    # a scanner built later (another process) starts from what was learned
    again = Scanner.from_settings(Settings(**common))
    assert again.model_version.startswith(f"{TEST_MODEL_VERSION}+online-1-")
    custom = tmp_path / "elsewhere.npz"
    custom.write_bytes(b"corrupt")
    with pytest.raises(ModelError, match=re.escape(str(custom))):
        Scanner.from_settings(Settings(**common, online_model_path=custom))


def test_scans_from_threads_while_learning(
    policy: Any, model: InboundModel, tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    scanner = online_scanner(policy, model, tmp_path / "online-model.npz")
    messages = [
        fixture_bytes(name)
        for name in ("personal_reply.eml", "corpus/ham/meeting.eml", "corpus/spam/pills.eml")
    ]
    errors: list[BaseException] = []
    stop = threading.Event()

    def scan_until_stopped() -> None:
        try:
            while not stop.is_set():
                for raw in messages:
                    verdict = scanner.scan(raw)
                    assert sum(verdict.probabilities.values()) == pytest.approx(1.0)
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=scan_until_stopped) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for index in range(6):
            scanner.learn(messages[index % 3], CLASSES[index % 3])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors
    assert scanner.online is not None and scanner.online.updates == 6
