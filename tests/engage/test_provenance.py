"""Decision provenance: every decision stored with its model version, features hash and
policy, queryable per contact, and shown by ``postwise engage explain``."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import EventRecord, open_database
from postwise.core.settings import get_settings
from postwise.engage.provenance import (
    canonical_json,
    decisions_for,
    features_hash,
    record_decision,
)

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
FEATURES = {"recency": 12.0, "frequency": 3, "monetary": float("nan")}


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'provenance.sqlite'}")


def test_features_hash_is_canonical() -> None:
    reordered = {"monetary": float("nan"), "frequency": np.int64(3), "recency": np.float64(12)}
    assert features_hash(FEATURES) == features_hash(reordered)
    text = canonical_json(FEATURES)
    assert text == '{"frequency":3,"monetary":"NaN","recency":12.0}'
    assert features_hash(FEATURES) == hashlib.sha256(text.encode()).hexdigest()
    assert features_hash({**FEATURES, "frequency": 4}) != features_hash(FEATURES)


def test_decisions_are_recorded_with_version_hash_and_policy(engine: Engine) -> None:
    entry = record_decision(
        engine,
        "c1",
        "propensity_score",
        {"score": 0.42},
        "propensity:online_retail",
        "propensity-online_retail-v1-aaa",
        FEATURES,
        {"name": "top-decile", "version": "1"},
        AT,
    )
    assert entry.model_version == "propensity-online_retail-v1-aaa"
    assert entry.features_sha256 == features_hash(FEATURES)
    assert entry.features is None  # hashed only, unless asked to keep them
    (stored,) = decisions_for(engine, "c1")
    assert stored == entry
    assert stored.decided_at == AT
    assert stored.policy == {"name": "top-decile", "version": "1"}
    with engine.connect() as connection:
        (payload,) = connection.execute(
            select(EventRecord.payload).where(EventRecord.type == "decision")
        ).scalars()
    assert payload["decision_id"] == entry.decision_id
    assert payload["contact_id"] == "c1"
    assert payload["model_version"] == entry.model_version
    assert payload["features_sha256"] == entry.features_sha256


def test_decisions_are_queryable_per_contact_newest_first(engine: Engine) -> None:
    for hours, contact in enumerate(["c1", "c2", "c1", "c1"]):
        record_decision(
            engine,
            contact,
            "send",
            hours,
            "m",
            "v1",
            {"h": hours},
            "p",
            AT + timedelta(hours=hours),
        )
    mine = decisions_for(engine, "c1")
    assert [d.decision for d in mine] == [3, 2, 0]
    assert [d.decision for d in decisions_for(engine, "c1", limit=1)] == [3]
    assert [d.decision for d in decisions_for(engine, "c2")] == [1]
    assert decisions_for(engine, "nobody") == []


def test_features_can_be_kept_and_recording_is_idempotent_by_id(engine: Engine) -> None:
    kept = record_decision(
        engine,
        "c1",
        "holdout",
        "treatment",
        None,
        None,
        FEATURES,
        "holdout-10",
        AT,
        keep_features=True,
        decision_id="d-1",
    )
    assert kept.features == {"recency": 12.0, "frequency": 3, "monetary": "NaN"}
    assert kept.model_name is None
    again = record_decision(
        engine, "c1", "holdout", "control", None, None, {}, "other", AT, decision_id="d-1"
    )
    assert again == kept
    assert len(decisions_for(engine, "c1")) == 1
    with engine.connect() as connection:
        events = connection.execute(
            select(EventRecord.event_id).where(EventRecord.type == "decision")
        ).scalars()
        assert list(events) == ["decision:d-1"]  # nor a second event


def test_explain_cli(postwise_env: Path) -> None:
    engine = open_database(get_settings().resolved_database_url)
    record_decision(
        engine,
        "c-77",
        "propensity_score",
        {"score": 0.9},
        "propensity:online_retail",
        "propensity-online_retail-v1-aaa",
        FEATURES,
        "top-decile",
        AT,
    )
    record_decision(
        engine,
        "c-77",
        "send",
        True,
        None,
        None,
        {"consent": True},
        "consent-first",
        AT + timedelta(minutes=5),
    )
    runner = CliRunner()
    result = runner.invoke(app, ["engage", "explain", "c-77", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["contact_id"] == "c-77"
    assert [d["kind"] for d in report["decisions"]] == ["send", "propensity_score"]
    scored = report["decisions"][1]
    assert scored["model_version"] == "propensity-online_retail-v1-aaa"
    assert scored["features_sha256"] == features_hash(FEATURES)
    assert scored["decided_at"] == AT.isoformat()

    table = runner.invoke(app, ["engage", "explain", "c-77"])
    assert table.exit_code == 0
    assert "propensity-online_retail-v1-aaa" in table.output
    assert features_hash(FEATURES)[:16] in table.output
    assert "(rule)" in table.output

    none = runner.invoke(app, ["engage", "explain", "c-78"])
    assert none.exit_code == 0 and "no decisions recorded for c-78" in none.output
