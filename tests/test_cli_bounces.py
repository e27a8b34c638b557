"""``postwise eval bounces`` and ``postwise train bounces`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postwise.cli import app

pytestmark = pytest.mark.usefixtures("postwise_env")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bounces"
needs_data = pytest.mark.skipif(
    not (SHARED / "manifest.csv").is_file(), reason="shared bounce data absent"
)


def invoke(*args: str | Path) -> object:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@needs_data
def test_eval_json_has_the_accuracy_keys() -> None:
    result = invoke("eval", "bounces", "--data", SHARED, "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    for key in ("reason_accuracy", "hardbounce_accuracy", "recipient_accuracy"):
        assert 0.0 <= report[key] <= 1.0
        assert 0.0 <= report["rules_only"][key] <= 1.0
    assert report["split"] == "validation"
    assert report["recipients"] > 0


@needs_data
def test_eval_table_names_the_split() -> None:
    result = invoke("eval", "bounces", "--data", SHARED)
    assert result.exit_code == 0
    assert "validation split" in result.stdout  # type: ignore[attr-defined]
    assert "rules only" in result.stdout  # type: ignore[attr-defined]


@needs_data
def test_train_writes_a_versioned_model_with_card(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = invoke("train", "bounces", "--data", SHARED, "--out", out)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    card = json.loads((out / "card.json").read_text())
    assert card["version"].startswith("bounces-v")
    assert "BSD 2-Clause" in (out / "MODEL_CARD.md").read_text()
    assert (out / "model.npz").stat().st_size < 2_000_000


def test_eval_on_a_folder_without_manifest_fails_cleanly(tmp_path: Path) -> None:
    result = invoke("eval", "bounces", "--data", tmp_path)
    assert result.exit_code == 2
