"""Churn target of the retail propensity model: labels, time-correct features, the bank error,
the CLI JSON, the short-test-folder note and the model card's registry name."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.errors import CorpusError
from postwise.engage.features import DAY, PURCHASE, EventTable
from postwise.engage.propensity import evaluate_folder, train_propensity
from postwise.engage.propensity_data import churn_snapshot
from postwise.engage.registry import default_name
from tests.engage.csv_files import write_csv
from tests.engage.test_propensity import (
    BANK_HEADER,
    RETAIL_HEADER,
    _bank_lines,
    _retail_lines,
)

CUTOFF = 400 * DAY


def _events(rows: list[tuple[int, int]]) -> EventTable:
    """(contact, day relative to CUTOFF) purchases."""
    contact = np.array([r[0] for r in rows], dtype=np.int64)
    time = np.array([CUTOFF + r[1] * DAY + 3600 for r in rows], dtype=np.int64)
    return EventTable(
        contact, time, np.full(len(rows), 10.0), np.full(len(rows), PURCHASE, dtype=np.int8)
    )


def test_churn_labels() -> None:
    events = _events(
        [
            (1, -10), (1, 20),  # active, buys in the window: not churned
            (2, -10),  # active, never again: churned
            (3, -200),  # not active in the 90 days before: not scored
            (4, -5), (4, 95),  # buys only after the 90-day window: churned
            (5, -89), (5, 89),  # edges of both windows: active, not churned
            (6, 30),  # first purchase after the cut-off: not scored
        ]
    )  # fmt: skip
    design = churn_snapshot(events, CUTOFF, CUTOFF + 90 * DAY)
    labels = dict(zip(design.ids.tolist(), design.label.tolist(), strict=True))
    assert labels == {1: 0, 2: 1, 4: 1, 5: 0}


def test_churn_features_read_nothing_after_the_cutoff() -> None:
    rng = np.random.default_rng(0)
    rows = [
        (int(c), int(d))
        for c, d in zip(rng.integers(0, 40, 600), rng.integers(-300, 300, 600), strict=True)
    ]
    before = [r for r in rows if r[1] < 0]
    after_changed = [(c, d) for c, d in rows if d >= 0 for _ in range(2)]  # doubled future
    full = churn_snapshot(_events(rows), CUTOFF, CUTOFF + 90 * DAY)
    past = churn_snapshot(_events(before + after_changed), CUTOFF, CUTOFF + 90 * DAY)
    only_past = churn_snapshot(_events(before), CUTOFF, CUTOFF + 90 * DAY)
    assert np.array_equal(full.ids, only_past.ids)
    np.testing.assert_array_equal(full.features, past.features)
    np.testing.assert_array_equal(full.features, only_past.features)
    assert only_past.label.all()  # with no future every active customer churns


def test_churn_on_bank_data_is_a_clear_error(tmp_path: Path) -> None:
    write_csv(tmp_path / "bank.csv", BANK_HEADER, _bank_lines(0, 200))
    with pytest.raises(CorpusError, match="churn"):
        evaluate_folder(tmp_path, target="churn")
    result = CliRunner().invoke(
        app, ["engage", "eval", "propensity", "--train", str(tmp_path), "--target", "churn"]
    )
    assert result.exit_code == 1
    assert "bank_marketing" in result.output and "churn" in result.output
    bad = CliRunner().invoke(
        app, ["engage", "eval", "propensity", "--train", str(tmp_path), "--target", "opens"]
    )
    assert bad.exit_code == 1 and "unknown target" in bad.output


def _retail(tmp_path: Path) -> tuple[Path, Path, datetime]:
    start = datetime(2011, 1, 1)
    lines = _retail_lines(3, start, 390, customers=200)
    split = start + timedelta(days=330)
    train = [x for x in lines if x.split(",")[5] < f"{split:%Y-%m-%d}"]
    test = [x for x in lines if x.split(",")[5] >= f"{split:%Y-%m-%d}"]
    write_csv(tmp_path / "train" / "a.csv", RETAIL_HEADER, train)
    write_csv(tmp_path / "test" / "b.csv", RETAIL_HEADER, test)
    return tmp_path / "train", tmp_path / "test", split


def test_churn_cli_json_and_short_test_folder(tmp_path: Path) -> None:
    train, test, split = _retail(tmp_path)
    result = CliRunner().invoke(
        app,
        ["engage", "eval", "propensity", "--train", str(train), "--target", "churn", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"auc", "log_loss", "ece", "top_decile_lift", "baseline", "label_window"} <= set(report)
    assert report["target"] == "churn"
    assert report["label_window_days"] == 90
    assert report["auc"] > 0.6
    assert "note" not in report
    scored = evaluate_folder(train, test, target="churn")
    assert scored["cutoff"].startswith(f"{split:%Y-%m-%d}")
    assert scored["label_window_days"] < 60  # the test folder covers ~60 days
    assert "covers only" in scored["note"]


def test_churn_card_carries_target_and_registry_name(tmp_path: Path) -> None:
    train, _test, _split = _retail(tmp_path)
    card = train_propensity(train, tmp_path / "model", target="churn")
    assert card["target"] == "churn"
    assert default_name(card) == "propensity:online_retail:churn"
    assert "-churn-" in card["version"]
    assert default_name(
        {"version": "propensity-online_retail-v1-x", "dataset": "online_retail"}
    ) == ("propensity:online_retail")
