"""Open and click propensity from an event log: labels and population, features that never read
the label window, the CLI on a generated log (JSON keys, the planted signal found, bad rows
reported), refusals, and a trained model scoring the store's contacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import open_database
from postwise.core.errors import CorpusError
from postwise.engage.contacts import EMAIL, MARKETING, ContactStore
from postwise.engage.datasets import DatasetError, detect_dataset
from postwise.engage.features import DAY, feature_names
from postwise.engage.ingest import import_file
from postwise.engage.propensity import evaluate_folder, train_propensity
from postwise.engage.propensity_events import (
    EventLog,
    engagement_data,
    engagement_snapshot,
    read_event_log,
)
from postwise.engage.registry import default_name, promote, register
from postwise.engage.scoring import model_inputs, score_contacts
from postwise.testing.engagement_log import START, address, engagement_log, write_event_files
from tests.engage.csv_files import write_csv
from tests.engage.test_propensity import BANK_HEADER, RETAIL_HEADER, _bank_lines

CUTOFF = datetime(2025, 3, 3, tzinfo=UTC)
CONTACT = "a" * 63  # + one hex digit: a contact id


def _log(rows: list[tuple[str, str, float]]) -> EventLog:
    """(contact suffix, type, days relative to CUTOFF) as an event log."""
    parsed = tuple(
        (CONTACT + who, kind, CUTOFF + timedelta(days=days), None) for who, kind, days in rows
    )
    ids = tuple(f"e{i}" for i in range(len(rows)))
    return EventLog(parsed, ids, ("test",), 0, ())


def test_labels_population_and_window_edges() -> None:
    log = _log(
        [
            ("1", "sent", -3), ("1", "open", -2), ("1", "open", 2),  # opens in the window
            ("2", "sent", -3), ("2", "open", 7),  # opens at the window's end: not in it
            ("3", "open", -1), ("3", "open", 1),  # never sent before the cut-off: not scored
            ("4", "sent", -9), ("4", "unsubscribe", -1), ("4", "open", 1),  # withdrew: not scored
            ("5", "sent", -3), ("5", "click", 0),  # a click at the cut-off: in the window
            ("6", "sent", -3), ("6", "complaint", 3),  # complains later: scored, no open
            ("7", "sent", 1), ("7", "open", 2),  # first send after the cut-off: not scored
        ]
    )  # fmt: skip
    data = engagement_data(log)
    start, end = int(CUTOFF.timestamp()), int(CUTOFF.timestamp()) + 7 * DAY

    def labels(target: str) -> dict[str, int]:
        design = engagement_snapshot(data, target, start, end)  # type: ignore[arg-type]
        who = [data.contacts[int(i)][-1] for i in design.ids]
        return dict(zip(who, design.label.tolist(), strict=True))

    assert labels("open") == {"1": 1, "2": 0, "5": 0, "6": 0}
    assert labels("click") == {"1": 0, "2": 0, "5": 1, "6": 0}
    design = engagement_snapshot(data, "open", start, end)
    assert design.names == feature_names(engagement=True)


def test_features_never_read_the_label_window() -> None:
    events = engagement_log(contacts=120, weeks=10, seed=4)
    cutoff = START + timedelta(days=50)
    at = int(cutoff.timestamp())

    def snapshot(kept: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = tuple(
            ("email:" + str(e["email"]).lower(), str(e["type"]), e["occurred_at"], e["value"])
            for e in kept
        )
        log = EventLog(rows, tuple(str(e["event_id"]) for e in kept), ("x",), 0, ())
        data = engagement_data(log)
        design = engagement_snapshot(data, "open", at, at + 7 * DAY)
        names = np.array([data.contacts[int(i)] for i in design.ids])
        return names, design.features, design.label

    past = [e for e in events if e["occurred_at"] < cutoff]
    future = [e for e in events if e["occurred_at"] >= cutoff]
    assert future and past
    # the future doubled (with new ids), or gone: the same contacts, the same features
    doubled = future + [{**e, "event_id": f"{e['event_id']}-again"} for e in future]
    full_ids, full_x, full_y = snapshot(events)
    more_ids, more_x, _ = snapshot(past + doubled)
    past_ids, past_x, past_y = snapshot(past)
    assert np.array_equal(full_ids, past_ids) and np.array_equal(full_ids, more_ids)
    np.testing.assert_array_equal(full_x, past_x)
    np.testing.assert_array_equal(full_x, more_x)
    assert full_y.sum() > 0 and past_y.sum() == 0  # labels come from the window only


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, datetime]:
    """A 14-week log of 300 contacts: the first 12 weeks as training folder (CSV and gzipped
    JSON lines, one malformed row added), the last two as test folder."""
    root = tmp_path_factory.mktemp("engagement")
    events = engagement_log(contacts=300, weeks=14, seed=1)
    split = START + timedelta(weeks=12)
    train = [e for e in events if e["occurred_at"] < split]
    test = [e for e in events if e["occurred_at"] >= split]
    write_event_files(root / "train", train)
    with (root / "train" / "a.csv").open("a") as handle:
        handle.write("bad-1,opened,2025-02-01T10:00:00Z,reader00001@example.test,,\n")
    write_event_files(root / "test", test, ("c.jsonl",))
    return root / "train", root / "test", min(e["occurred_at"] for e in test)


def test_eval_cli_on_a_generated_log(generated: tuple[Path, Path, datetime]) -> None:
    train, test, first_test = generated
    assert detect_dataset(train) == "events" and detect_dataset(test) == "events"
    args = ["engage", "eval", "propensity", "--train", str(train), "--test", str(test)]
    result = CliRunner().invoke(app, [*args, "--target", "open", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"auc", "log_loss", "ece", "top_decile_lift", "positive_rate", "baseline"} <= set(report)
    assert report["dataset"] == "events" and report["target"] == "open"
    assert report["protocol"] == "train on --train, score --test"
    assert report["cutoff"] == first_test.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert report["label_window_days"] == 7
    # the malformed row is skipped and reported with its file and line
    assert report["skipped_rows"] == 1
    (problem,) = report["skipped_examples"]
    assert "a.csv line " in problem and "unknown event type 'opened'" in problem
    baseline = report["baseline"]["engagement_recency_only"]
    assert report["auc"] > 0.7
    assert report["auc"] > baseline["auc"] - 0.02  # at least as good as recency, give or take
    assert 0.1 < report["positive_rate"] < 0.7 and report["ece"] < 0.15


def test_malformed_event_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    write_csv(
        folder / "events.csv",
        "event_id,type,occurred_at,email",
        ["x1,sent,not-a-time,a@example.test", "x2,sent,2025-01-01,not an address"],
    )
    with pytest.raises(DatasetError, match=r"events.csv line 2: occurred_at 'not-a-time'"):
        read_event_log(folder)
    result = CliRunner().invoke(
        app, ["engage", "eval", "propensity", "--train", str(folder), "--target", "open"]
    )
    assert result.exit_code == 1
    assert "events.csv line 2: occurred_at" in " ".join(result.output.split())
    write_csv(folder / "events.csv", "event_id,type,occurred_at", ["x1,sent,2025-01-01"])
    with pytest.raises(DatasetError, match=r"lacks column.*contact_id or email"):
        detect_dataset(folder)


def test_targets_refused_where_they_make_no_sense(
    tmp_path: Path, generated: tuple[Path, Path, datetime]
) -> None:
    train, _test, _first = generated
    retail = write_csv(tmp_path / "retail" / "r.csv", RETAIL_HEADER, []).parent
    bank = write_csv(tmp_path / "bank" / "b.csv", BANK_HEADER, _bank_lines(0, 50)).parent
    for folder, name in ((retail, "online_retail"), (bank, "bank_marketing")):
        for target in ("open", "click"):
            result = CliRunner().invoke(
                app, ["engage", "eval", "propensity", "--train", str(folder), "--target", target]
            )
            assert result.exit_code == 1
            assert f"--target {target} needs an event log" in result.output
            assert name in result.output
    with pytest.raises(CorpusError, match=r"--target churn .* for an event log use"):
        evaluate_folder(train, target="churn")
    with pytest.raises(CorpusError, match="--window-days applies to event logs only"):
        evaluate_folder(bank, window_days=7)
    with pytest.raises(CorpusError, match="--window-days 0"):
        evaluate_folder(train, target="open", window_days=0)


def test_trained_click_model_scores_the_store(
    tmp_path: Path, generated: tuple[Path, Path, datetime]
) -> None:
    _train, _test, first_test = generated
    # a smaller log than the fixture's (training runs the selection twice): its first 12 weeks
    events = engagement_log(contacts=200, weeks=14, seed=1)
    train = tmp_path / "train"
    write_event_files(train, [e for e in events if e["occurred_at"] < START + timedelta(weeks=12)])
    card = train_propensity(train, tmp_path / "model", target="click")
    assert default_name(card) == "propensity:events:click"
    assert card["version"].startswith("propensity-events-click-v")
    assert card["params"]["window_days"] == 7 and card["target"] == "click"
    assert card["features"] == list(feature_names(engagement=True))
    assert model_inputs(card["features"]) is True  # the scoring check passes
    assert card["internal_split_metrics"]["auc"] > 0.7
    assert "engagement recency only" in (tmp_path / "model" / "MODEL_CARD.md").read_text()

    # the store holds the same kind of events: import a few contacts' history and score them
    store = ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), b"k" * 32)
    wanted = {address(i) for i in range(12)}
    events = [e for e in events if e["email"] in wanted]
    (path,) = write_event_files(tmp_path / "store", events, ("slice.csv",))
    report = import_file(store, "events", path)
    assert report.failed == 0 and report.imported == len(events)
    for mail in wanted:
        store.record_consent(store.upsert(mail), MARKETING, EMAIL, True, "test", START)
    entry = register(store.engine, tmp_path / "model")
    promote(store.engine, entry.name, entry.version)
    run = score_contacts(store, "propensity:events:click", cutoff=first_test)
    # consent stands as last stated: whoever unsubscribed or complained (at any time) is skipped
    withdrawn = {
        store.contact_id(str(e["email"]))
        for e in events
        if e["type"] in ("unsubscribe", "complaint")
    }
    everyone = {store.contact_id(m) for m in wanted}
    assert set(run.scores) | set(run.skipped_consent) | set(run.skipped_no_history) == everyone
    assert set(run.skipped_consent) == withdrawn
    assert run.scores and all(0.0 <= s <= 1.0 for s in run.scores.values())
    assert len(set(run.scores.values())) > 1
