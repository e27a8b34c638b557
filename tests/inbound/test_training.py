"""`postwise train inbound`: reproducible, versioned, with a model card; and the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixture_messages import fixture_root
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.errors import CorpusError, ModelError
from postwise.inbound.classifier import InboundModel, model_symbol
from postwise.inbound.policy import load_policy
from postwise.inbound.scanner import Scanner
from postwise.inbound.training import operating_point, train_inbound

CORPUS = fixture_root() / "scan" / "corpus"
SHIPPED = Path(__file__).resolve().parents[2] / "postwise" / "models" / "inbound"


def test_training_is_reproducible_and_writes_a_model_card(tmp_path: Path) -> None:
    first = train_inbound(CORPUS, seed=3, validation_share=0.5, synthetic_commercial=30)
    second = train_inbound(CORPUS, seed=3, validation_share=0.5, synthetic_commercial=30)
    assert first.model.version == second.model.version
    assert first.model.version.startswith("inbound-v")
    other_seed = train_inbound(CORPUS, seed=4, validation_share=0.5, synthetic_commercial=30)
    assert other_seed.model.version != first.model.version
    card = first.model.card
    assert card["data"]["train"]["ham"] >= 30
    assert sum(card["data"]["train"].values()) + sum(card["data"]["validation"].values()) == 9 + 30
    assert card["data"]["synthetic_commercial_ham"] == 30
    assert "CC BY-NC 4.0" in card["licence_notes"]
    first.model.save(tmp_path / "m")
    loaded = InboundModel.load(tmp_path / "m")
    assert loaded.version == first.model.version
    assert json.loads((tmp_path / "m" / "card.json").read_text())["version"] == loaded.version


def test_cli_train_writes_model_folder(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "inbound",
            "--data",
            str(CORPUS),
            "--out",
            str(out),
            "--workers",
            "1",
            "--synthetic-commercial",
            "10",
            "--family",
            "sgd_modified_huber",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "model.npz").is_file()
    assert "Model card" in (out / "MODEL_CARD.md").read_text()


def test_training_on_a_folder_that_is_no_corpus_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"expected manifest\.csv"):
        train_inbound(tmp_path)
    with pytest.raises(CorpusError, match="both splits need messages"):
        train_inbound(CORPUS, validation_share=0.0, synthetic_commercial=0)


def test_missing_and_corrupt_models_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="postwise train inbound"):
        InboundModel.load(tmp_path)
    (tmp_path / "model.npz").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="unreadable"):
        InboundModel.load(tmp_path)


def test_operating_point_respects_the_fpr_budget() -> None:
    labels = np.array(["ham"] * 1000 + ["spam"] * 10 + ["phish"] * 10)
    scores = np.concatenate([np.linspace(0, 0.5, 999), [0.95], np.full(10, 0.9), np.full(10, 0.99)])
    point = operating_point(scores, labels, max_ham_fpr=0.001)
    assert point["ham_fpr"] <= 0.001
    assert point["spam_recall"] == 1.0 and point["phish_recall"] == 1.0


def test_model_symbol_is_half_weight_at_the_operating_point() -> None:
    at_point = model_symbol({"ham": 0.6, "spam": 0.3, "phish": 0.1}, neutral=0.4)
    assert at_point.name == "ML_SPAM" and at_point.factor == pytest.approx(0.5)
    certain = model_symbol({"ham": 0.0, "spam": 0.2, "phish": 0.8}, neutral=0.4)
    assert certain.name == "ML_PHISH" and certain.factor == pytest.approx(1.0)
    hammy = model_symbol({"ham": 1.0, "spam": 0.0, "phish": 0.0}, neutral=0.4)
    assert hammy.name == "ML_HAM" and hammy.factor == pytest.approx(1.0)


def test_shipped_model_loads_and_separates_obvious_cases() -> None:
    model = InboundModel.load(SHIPPED)
    assert model.card["validation_metrics"]["phish_recall"] >= 0.98
    assert model.card["validation_metrics"]["ham_fpr"] <= 0.001
    assert (SHIPPED / "model.npz").stat().st_size < 20 * 1024 * 1024
    assert not (SHIPPED / "model.joblib").exists()
    # The shipped model and policy, end to end, on hand-written mail it never saw.
    scanner = Scanner(load_policy(), model)
    for name in ("ham/meeting.eml", "ham/newsletter.eml", "ham/personal_note.eml"):
        verdict = scanner.scan((CORPUS / name).read_bytes())
        assert verdict.action == "no_action" and verdict.probabilities["ham"] > 0.5, name
    for name in ("phish/bank_login.eml", "phish/paypal_verify.eml", "phish/mailbox_quota.eml"):
        verdict = scanner.scan((CORPUS / name).read_bytes())
        assert verdict.action in ("quarantine", "reject"), name
        assert verdict.message_class == "phish", name
    for name in ("spam/pills.eml", "spam/work_from_home.eml"):
        verdict = scanner.scan((CORPUS / name).read_bytes())
        assert verdict.action != "no_action" and verdict.message_class == "spam", name
