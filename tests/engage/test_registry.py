"""Model registry: registration, one promoted version per name, rollback, and PSI drift checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import EventRecord, open_database
from postwise.engage.drift import (
    DriftError,
    build_reference,
    column_reference,
    population_stability,
    write_reference,
)
from postwise.engage.registry import (
    CANDIDATE,
    PROMOTED,
    RETIRED,
    RegistryError,
    check_drift,
    default_name,
    list_models,
    promote,
    promoted,
    register,
    rollback,
    show,
)

NAME = "propensity:online_retail"
V1, V2 = "propensity-online_retail-v1-aaa", "propensity-online_retail-v1-bbb"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'registry.sqlite'}")


def _training(seed: int = 0, rows: int = 5000) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    features = {
        "recency": rng.exponential(30.0, rows),
        "frequency": rng.poisson(3.0, rows).astype(float),
        "channel": rng.integers(0, 3, rows).astype(float),
    }
    scores = 1.0 / (1.0 + np.exp(-(features["frequency"] - 3.0)))
    return features, scores


def _model_folder(root: Path, version: str, reference: bool = True) -> Path:
    folder = root / version
    folder.mkdir(parents=True)
    card: dict[str, Any] = {
        "version": version,
        "dataset": "online_retail",
        "params": {"seed": 0, "candidate": "small"},
        "data": {"folder": "online_retail", "sha256": {"a.csv": "0" * 64}, "rows": 5000},
        "internal_split_metrics": {"auc": 0.8, "log_loss": 0.4},
    }
    (folder / "model_card.json").write_text(json.dumps(card))
    if reference:
        write_reference(folder, *_training())
    return folder


def _events(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(EventRecord.payload).where(EventRecord.type == kind))
        return [row[0] for row in rows]


def test_register_stores_card_fingerprint_and_reference(engine: Engine, tmp_path: Path) -> None:
    entry = register(engine, _model_folder(tmp_path, "propensity-online_retail-v1-aaa"))
    assert entry.name == NAME
    assert entry.status == CANDIDATE
    assert entry.parameters == {"seed": 0, "candidate": "small"}
    assert entry.metrics["auc"] == 0.8
    assert len(entry.data_fingerprint) == 64
    assert entry.has_drift_reference
    assert entry.card["version"] == entry.version
    # Registering the same version again stores it once.
    again = register(engine, _model_folder(tmp_path / "copy", "propensity-online_retail-v1-aaa"))
    assert again.created_at == entry.created_at
    assert len(list_models(engine)) == 1
    assert len(_events(engine, "model_registered")) == 1


def test_register_refuses_a_folder_without_a_card(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"no model_card\.json"):
        register(engine, tmp_path)


def test_default_names() -> None:
    assert default_name({"version": "propensity-bank_marketing-v3-x", "dataset": "bank_marketing"})
    assert default_name({"version": "uplift-v1-abc"}) == "uplift:hillstrom"
    assert default_name({"version": "x", "name": "custom:one"}) == "custom:one"


def test_promote_keeps_one_promoted_version_per_name(engine: Engine, tmp_path: Path) -> None:
    for version in ("v1", "v2", "v3"):
        register(engine, _model_folder(tmp_path, version), NAME)
    register(engine, _model_folder(tmp_path / "other", "v1"), "uplift:hillstrom")
    promote(engine, "uplift:hillstrom", "v1")
    promote(engine, NAME, "v1")
    promote(engine, NAME, "v2")
    statuses = {e.version: e.status for e in list_models(engine, NAME)}
    assert statuses == {"v1": RETIRED, "v2": PROMOTED, "v3": CANDIDATE}
    assert [e.status for e in list_models(engine, "uplift:hillstrom")] == [PROMOTED]
    current = promoted(engine, NAME)
    assert current is not None and current.replaced_version == "v1"
    assert show(engine, NAME).version == "v2"  # the promoted one, not the newest
    assert promote(engine, NAME, "v2").status == PROMOTED  # promoting again changes nothing
    assert len(_events(engine, "model_promoted")) == 3


def test_rollback_walks_back_the_promotion_history(engine: Engine, tmp_path: Path) -> None:
    for version in ("v1", "v2", "v3"):
        register(engine, _model_folder(tmp_path, version), NAME)
        promote(engine, NAME, version)
    assert rollback(engine, NAME).version == "v2"
    assert {e.version: e.status for e in list_models(engine, NAME)} == {
        "v1": RETIRED,
        "v2": PROMOTED,
        "v3": RETIRED,
    }
    assert rollback(engine, NAME).version == "v1"
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        rollback(engine, NAME)
    assert [e.version for e in list_models(engine, NAME) if e.status == PROMOTED] == ["v1"]


def test_rollback_errors_are_clear(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="not registered"):
        rollback(engine, NAME)
    register(engine, _model_folder(tmp_path, "v1"), NAME)
    with pytest.raises(RegistryError, match="no promoted version"):
        rollback(engine, NAME)
    with pytest.raises(RegistryError, match="version 'v9' is not registered"):
        promote(engine, NAME, "v9")


def test_psi_is_small_for_the_same_population_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(1)
    reference = column_reference(rng.normal(0.0, 1.0, 20_000))
    same = population_stability(reference, rng.normal(0.0, 1.0, 20_000))
    shifted = population_stability(reference, rng.normal(1.0, 1.0, 20_000))
    assert same < 0.02
    assert shifted > 0.5
    assert population_stability(reference, rng.normal(0.0, 1.0, 5000)) == pytest.approx(
        same, abs=0.03
    )


def test_psi_counts_missing_values_and_few_distinct_values() -> None:
    binary = column_reference(np.array([0.0, 1.0] * 500))
    assert binary["edges"] == [0.0, 1.0]
    assert population_stability(binary, np.array([0.0, 1.0] * 50)) == pytest.approx(0.0)
    assert population_stability(binary, np.array([1.0] * 100)) > 0.2
    assert population_stability(binary, np.array([0.0, 1.0, 2.0] * 50)) > 0.2  # a new value
    with_missing = column_reference(np.array([1.0, np.nan] * 100))
    assert with_missing["proportions"][-1] == pytest.approx(0.5)
    assert population_stability(with_missing, np.array([1.0] * 100)) > 0.2
    with pytest.raises(DriftError):
        population_stability({"edges": [1.0], "proportions": [1.0]}, [1.0])
    with pytest.raises(DriftError):
        population_stability(binary, [])


def test_check_drift_alerts_above_the_threshold_only(engine: Engine, tmp_path: Path) -> None:
    register(engine, _model_folder(tmp_path, "v1"), NAME)
    promote(engine, NAME, "v1")
    features, scores = _training(seed=7)
    calm = check_drift(engine, NAME, features, scores)
    assert not calm.alert and calm.drifted == []
    assert set(calm.feature_psi) == {"recency", "frequency", "channel"}
    assert calm.score_psi is not None and calm.score_psi < 0.05
    assert _events(engine, "model_drift") == []

    shifted = dict(features, recency=features["recency"] * 3.0)
    report = check_drift(engine, NAME, shifted, scores)
    assert report.alert and report.drifted == ["recency"]
    (event,) = _events(engine, "model_drift")
    assert event["name"] == NAME and event["version"] == "v1"
    assert event["drifted"] == ["recency"] and event["psi"]["recency"] > 0.2

    # The threshold is data: a looser one records nothing more.
    loose = check_drift(engine, NAME, shifted, scores, threshold=100.0)
    assert not loose.alert
    assert len(_events(engine, "model_drift")) == 1

    partial = check_drift(engine, NAME, {"frequency": features["frequency"]}, scores + 0.5)
    assert partial.missing_features == ["channel", "recency"]
    assert partial.drifted == ["score"]


def test_check_drift_needs_a_reference(engine: Engine, tmp_path: Path) -> None:
    register(engine, _model_folder(tmp_path, "v1", reference=False), NAME)
    with pytest.raises(RegistryError, match="without a training reference"):
        check_drift(engine, NAME, {"recency": [1.0]}, None)


def test_build_reference_without_scores() -> None:
    reference = build_reference({"a": [1.0, 2.0, 3.0]}, None)
    assert reference["scores"] is None and set(reference["features"]) == {"a"}


def test_models_cli(postwise_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for version in (V1, V2):
        folder = _model_folder(tmp_path / "models", version)
        result = runner.invoke(app, ["models", "register", str(folder)])
        assert result.exit_code == 0, result.output
        assert f"{NAME} {version}: candidate" in result.output
    assert runner.invoke(app, ["models", "promote", NAME, V1]).exit_code == 0
    result = runner.invoke(app, ["models", "promote", NAME, V2])
    assert f"promoted (retired {V1})" in result.output
    listed = [
        json.loads(line)
        for line in runner.invoke(app, ["models", "list", "--json"]).stdout.splitlines()
    ]
    assert {(e["version"], e["status"]) for e in listed} == {(V1, RETIRED), (V2, PROMOTED)}
    shown = json.loads(runner.invoke(app, ["models", "show", NAME, "--json"]).stdout)
    assert shown["version"] == V2 and shown["card"]["dataset"] == "online_retail"
    assert f"{V1}: promoted again" in runner.invoke(app, ["models", "rollback", NAME]).output
    failed = runner.invoke(app, ["models", "rollback", NAME])
    assert failed.exit_code == 1 and "nothing to roll back to" in failed.output
    assert "not registered" in runner.invoke(app, ["models", "show", "nope"]).output

    features, scores = _training(seed=3, rows=2000)
    csv = tmp_path / "current.csv"
    lines = ["recency,frequency,channel,score"] + [
        f"{r * 4},{f},{c},{s}"
        for r, f, c, s in zip(
            features["recency"], features["frequency"], features["channel"], scores, strict=True
        )
    ]
    csv.write_text("\n".join(lines) + "\n")
    drift = runner.invoke(app, ["models", "drift", NAME, str(csv), "--json"])
    assert drift.exit_code == 0, drift.output
    report = json.loads(drift.stdout)
    assert report["alert"] and report["drifted"] == ["recency"]
