"""Scoring the store's contacts with a promoted model: consent first, one recorded decision per
score, no promoted version refused, and features that never read past the cut-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import open_database
from postwise.core.settings import get_settings
from postwise.engage.contacts import EMAIL, MARKETING, ContactStore
from postwise.engage.features import feature_names
from postwise.engage.ingest import import_records
from postwise.engage.propensity import train_propensity
from postwise.engage.provenance import decisions_for, features_hash
from postwise.engage.registry import RegistryError, list_models, promote, register
from postwise.engage.scoring import (
    DECISION_KIND,
    ScoringError,
    model_inputs,
    score_contacts,
    store_features,
)

KEY = b"scoring-test-key"
NAME = "propensity:test_retail"
HEADER = "row_id,InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A propensity model trained through the real training code on a small synthetic log."""
    root = tmp_path_factory.mktemp("scoring-model")
    rng = np.random.default_rng(3)
    start = datetime(2011, 1, 1)
    lines, invoice = [], 500000
    for customer in range(120):
        rate = rng.choice([0.01, 0.05, 0.15])
        stop = 240 if rng.random() < 0.6 else 120
        for day in range(240):
            if day < stop and rng.random() < rate:
                invoice += 1
                when = start + timedelta(days=day, hours=int(rng.integers(8, 18)))
                lines.append(
                    f"{len(lines)},{invoice},85123A,THING,{rng.integers(1, 12)},"
                    f"{when:%Y-%m-%d %H:%M:%S},2.55,{12000 + customer},United Kingdom"
                )
    data = root / "data"
    data.mkdir()
    (data / "log.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    train_propensity(data, root / "model")
    return root / "model"


def _promoted(engine: Engine, folder: Path) -> str:
    entry = register(engine, folder, NAME)
    promote(engine, NAME, entry.version)
    return entry.version


def _address(i: int) -> str:
    return f"person{i}@example.test"


def _populate(store: ContactStore) -> dict[str, str]:
    """Contacts: ``yes0..yes3`` consent (with purchases and opens), ``withdrawn`` consented then
    withdrew, ``never`` has no statement, ``quiet`` consents but has no event."""
    names = ["yes0", "yes1", "yes2", "yes3", "withdrawn", "never", "quiet"]
    ids = {name: store.upsert(_address(i)) for i, name in enumerate(names)}
    for name in ("yes0", "yes1", "yes2", "yes3", "withdrawn", "quiet"):
        store.record_consent(
            ids[name], MARKETING, EMAIL, True, "test", CUTOFF - timedelta(days=400)
        )
    store.record_consent(ids["withdrawn"], MARKETING, EMAIL, False, "test", CUTOFF - timedelta(1))
    rng = np.random.default_rng(5)
    events: list[dict[str, Any]] = []
    for name in ("yes0", "yes1", "yes2", "yes3", "withdrawn", "never"):
        for k in range(int(rng.integers(1, 8))):
            when = CUTOFF - timedelta(days=int(rng.integers(1, 200)), hours=int(rng.integers(24)))
            events.append(
                {
                    "event_id": f"{name}-p{k}",
                    "contact_id": ids[name],
                    "type": "purchase",
                    "occurred_at": when.isoformat(),
                    "value": float(rng.integers(5, 80)),
                }
            )
        events.append(
            {
                "event_id": f"{name}-open",
                "contact_id": ids[name],
                "type": "open",
                "occurred_at": (CUTOFF - timedelta(days=3)).isoformat(),
            }
        )
    report, _ = import_records(store, "events", events)
    assert not report.errors
    return ids


@pytest.fixture
def store(tmp_path: Path) -> ContactStore:
    return ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), KEY)


def test_scores_consenting_contacts_only_and_records_each(
    store: ContactStore, model_folder: Path
) -> None:
    ids = _populate(store)
    version = _promoted(store.engine, model_folder)
    run = score_contacts(store, NAME, MARKETING, EMAIL, CUTOFF)
    assert set(run.scores) == {ids[n] for n in ("yes0", "yes1", "yes2", "yes3")}
    assert set(run.skipped_consent) == {ids["withdrawn"], ids["never"]}
    assert run.skipped_no_history == [ids["quiet"]]
    assert all(0.0 <= s <= 1.0 for s in run.scores.values())
    for contact_id in run.scores:
        (decision,) = decisions_for(store.engine, contact_id)
        assert decision.kind == DECISION_KIND
        assert decision.model_name == NAME and decision.model_version == version
        assert decision.features_sha256 == features_hash(run.features[contact_id])
        assert decision.policy == {
            "purpose": MARKETING,
            "channel": EMAIL,
            "cutoff": CUTOFF.isoformat(),
        }
        assert decision.decision == {"score": round(run.scores[contact_id], 6)}
    for name in ("withdrawn", "never", "quiet"):
        assert decisions_for(store.engine, ids[name]) == []
    summary = run.as_dict()
    assert summary["scored"] == 4 and summary["skipped_consent"] == 2
    assert run.drift is not None and "psi_max" in run.drift
    # another purpose: nobody consented to it, nothing is scored
    other = score_contacts(store, NAME, "personalisation", EMAIL, CUTOFF)
    assert other.scores == {} and len(other.skipped_consent) == 7


def test_refuses_without_a_promoted_version(store: ContactStore, model_folder: Path) -> None:
    _populate(store)
    with pytest.raises(RegistryError, match="not registered"):
        score_contacts(store, NAME, cutoff=CUTOFF)
    register(store.engine, model_folder, NAME)  # a candidate only
    with pytest.raises(RegistryError, match="no promoted version"):
        score_contacts(store, NAME, cutoff=CUTOFF)
    assert [e.status for e in list_models(store.engine, NAME)] == ["candidate"]


def test_features_read_no_event_after_the_cutoff(store: ContactStore, model_folder: Path) -> None:
    ids = _populate(store)
    _promoted(store.engine, model_folder)
    consenting = sorted(ids[n] for n in ("yes0", "yes1", "yes2", "yes3"))
    before = store_features(store.engine, consenting, CUTOFF, engagement=True)
    first = score_contacts(store, NAME, cutoff=CUTOFF)
    later = [
        {
            "event_id": f"future-{n}-{kind}",
            "contact_id": ids[n],
            "type": kind,
            "occurred_at": (CUTOFF + timedelta(seconds=offset)).isoformat(),
            "value": 500.0 if kind == "purchase" else None,
        }
        for n in ("yes0", "yes1", "yes2", "yes3")
        for kind in ("purchase", "open")
        for offset in (0, 3600)  # at the cut-off itself and after it
    ]
    import_records(store, "events", later)
    after = store_features(store.engine, consenting, CUTOFF, engagement=True)
    np.testing.assert_array_equal(before.values, after.values)
    second = score_contacts(store, NAME, cutoff=CUTOFF)
    assert {c: features_hash(f) for c, f in second.features.items()} == {
        c: features_hash(f) for c, f in first.features.items()
    }
    assert second.scores == first.scores
    moved = store_features(store.engine, consenting, CUTOFF + timedelta(days=1), True)
    assert not np.array_equal(before.values, moved.values, equal_nan=True)


def test_models_of_other_inputs_are_refused() -> None:
    with pytest.raises(ScoringError, match="cannot provide: age"):
        model_inputs(["age", "campaign", "pdays"])
    with pytest.raises(ScoringError, match="another order"):
        model_inputs(list(reversed(feature_names(False))))
    assert model_inputs(feature_names(False)) is False
    assert model_inputs(feature_names(True)) is True


def test_score_and_explain_cli(postwise_env: Path, model_folder: Path) -> None:
    settings = get_settings()
    store = ContactStore.from_settings(settings, open_database(settings.resolved_database_url))
    ids = _populate(store)
    version = _promoted(store.engine, model_folder)
    runner = CliRunner()
    args = ["engage", "score", "--model", NAME, "--cutoff", CUTOFF.isoformat()]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scored"] == 4 and summary["skipped_consent"] == 2
    assert summary["version"] == version and "drift_psi_max" in summary
    assert ids["never"] in summary["skipped_consent_contacts"]
    best = summary["top"][0]["contact_id"]
    shown = json.loads(runner.invoke(app, ["engage", "explain", best, "--json"]).stdout)
    (decision,) = shown["decisions"]
    assert decision["model_version"] == version and len(decision["features_sha256"]) == 64
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "skipped for consent" in table.stdout
    missing = runner.invoke(app, ["engage", "score", "--model", "nope:none"])
    assert missing.exit_code == 1 and "not registered" in missing.output
