"""``postwise engage eval uplift`` and ``postwise engage train uplift`` (Hillstrom layout)."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError
from postwise.engage.hillstrom import (
    BASELINE_UPLIFT_AT_30,
    DEFAULT_SEED,
    DEFAULT_TEST_SHARE,
    FEATURE_NAMES,
    OUTCOMES,
    TREATED_ARMS,
    read_hillstrom,
)

# scikit-learn loads in the commands, not when the CLI starts (it costs seconds).


def eval_uplift_command(
    train: Path = typer.Option(..., help="hillstrom folder (CSV files, gzipped or not)"),
    test: Path = typer.Option(None, help="score here after fitting on --train alone"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(DEFAULT_SEED, help="seed of the split, folds and models"),
    test_share: float = typer.Option(
        DEFAULT_TEST_SHARE, help="share of rows scored when there is no --test"
    ),
    folds: int = typer.Option(3, help="folds of the training rows used to choose each model"),
) -> None:
    """Qini, AUUC, uplift@30% and ATE with its 95% CI, per arm vs No E-Mail and outcome."""
    from postwise.engage.uplift_evaluation import evaluate_uplift, split_rows

    try:
        train_data = read_hillstrom(train)
        if test is None:
            train_data, test_data = split_rows(train_data, test_share, seed)
            split = f"stratified {1 - test_share:.0%}/{test_share:.0%} of --train, seed {seed}"
        else:
            test_data = read_hillstrom(test)
            split = "fit on --train, scored on --test"
        quiet = as_json or not sys.stderr.isatty()
        console = Console(stderr=True)
        report = evaluate_uplift(
            train_data,
            test_data,
            seed=seed,
            folds=folds,
            progress=None if quiet else (lambda step: console.print(f"fitting {step}")),
        )
    except (PostwiseError, ValueError) as error:
        _fail(str(error))
        return
    report.update(
        split=split,
        seed=seed,
        folds=folds,
        train_rows=len(train_data),
        test_rows=len(test_data),
        baseline={"arm": "Womens", "outcome": "visit", "uplift_at_30": BASELINE_UPLIFT_AT_30},
    )
    if as_json:
        print(json.dumps(report))
        return
    _print_table(report)


def _print_table(report: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"{report['split']}: {report['train_rows']} training rows, {report['test_rows']} "
        f"test rows; baseline uplift@30% {BASELINE_UPLIFT_AT_30} (Womens, visit)"
    )
    table = Table(title="uplift vs No E-Mail (test rows)")
    for column in ("arm", "outcome", "model", "qini", "auuc", "uplift@30%", "ATE [95% CI]"):
        table.add_column(column)
    for arm, outcomes in report["arms"].items():
        for outcome, m in outcomes.items():
            low, high = m["ate_ci"]
            table.add_row(
                arm,
                outcome,
                m["model"],
                f"{m['qini']:.5f}",
                f"{m['auuc']:.5f}",
                f"{m['uplift_at_30']:.4f}",
                f"{m['ate']:.4f} [{low:.4f}, {high:.4f}]",
            )
    console.print(table)


def train_uplift_command(
    data: Path = typer.Option(..., help="hillstrom folder (CSV files, gzipped or not)"),
    out: Path = typer.Option(..., help="folder to write the models and their model card"),
    seed: int = typer.Option(DEFAULT_SEED, help="seed of the folds and models"),
    folds: int = typer.Option(3, help="folds used to choose each model"),
) -> None:
    """Choose and fit one uplift model per arm and outcome on all rows; save them with a card."""
    import joblib

    from postwise.engage.drift import write_reference
    from postwise.engage.registry import register_trained
    from postwise.engage.uplift import CANDIDATES, make_model, select_model
    from postwise.engage.uplift_evaluation import arm_rows

    try:
        dataset = read_hillstrom(data)
        models: dict[str, object] = {}
        card_models: dict[str, Any] = {}
        for arm in TREATED_ARMS:
            features, treated = arm_rows(dataset, arm)
            keep = (dataset.arms == arm) | (dataset.arms == "control")
            for outcome in OUTCOMES:
                y = dataset.outcomes[outcome][keep]
                selection = select_model(
                    features, y, treated.astype(float), CANDIDATES, folds, seed
                )
                models[f"{arm}/{outcome}"] = make_model(selection.best, seed).fit(
                    features, y, treated.astype(float)
                )
                card_models[f"{arm}/{outcome}"] = {
                    "model": selection.best,
                    "validation_qini": selection.validation_qini,
                }
    except (PostwiseError, ValueError) as error:
        _fail(str(error))
        return
    params = {"seed": seed, "folds": folds, "candidates": list(CANDIDATES)}
    version_key = json.dumps([dataset.fingerprint, params], sort_keys=True).encode()
    version = f"uplift-v1-{hashlib.sha256(version_key).hexdigest()[:10]}"
    card = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {"files": list(dataset.files), "rows": len(dataset)},
        "data_fingerprint": dataset.fingerprint,
        "params": params,
        "metrics": card_models,
        "metrics_note": "mean Qini area over folds of the training rows (model choice)",
    }
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump({"version": version, "models": models}, out / "uplift.joblib")
    write_reference(out, dict(zip(FEATURE_NAMES, dataset.features.T, strict=True)), None)
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    Console().print(f"saved {version} to {out} ({len(models)} models)")
    Console().print(register_trained(out), markup=False, highlight=False)


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    eval_app.command("uplift")(eval_uplift_command)
    train_app.command("uplift")(train_uplift_command)
