"""``postwise models``: the model registry (list, show, register, promote, rollback, drift)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError

models_app = typer.Typer(help="Model registry: versions, promotion, drift.", no_args_is_help=True)


def _engine() -> Any:
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings

    return open_database(get_settings().resolved_database_url)


@models_app.command("list")
def models_list(
    name: str = typer.Option(None, help="only this model name"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Registered model versions, newest first per name."""
    from postwise.engage.registry import list_models

    entries = list_models(_engine(), name)
    if as_json:
        for entry in entries:
            print(json.dumps(entry.summary()))
        return
    if not entries:
        print("no models registered (train one, or `postwise models register DIR`)")
        return
    table = Table(title="models")
    for column in ("name", "version", "status", "created", "data", "drift ref"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.name,
            entry.version,
            entry.status,
            entry.created_at.isoformat(timespec="seconds"),
            entry.data_fingerprint[:12],
            "yes" if entry.has_drift_reference else "no",
        )
    Console().print(table)


@models_app.command("show")
def models_show(
    name: str = typer.Argument(..., help="model name, e.g. propensity:online_retail"),
    version: str = typer.Argument(None, help="default: the promoted version, else the newest"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object, card included"),
) -> None:
    """One model version: status, data fingerprint, parameters, metrics and card."""
    from postwise.engage.registry import show

    try:
        entry = show(_engine(), name, version)
    except PostwiseError as error:
        _fail(error)
        return
    if as_json:
        print(json.dumps({**entry.summary(), "card": entry.card}, default=str))
        return
    console = Console()
    for key, value in entry.summary().items():
        if key not in ("parameters", "metrics"):
            console.print(f"{key}: {value}", markup=False, highlight=False)
    for key in ("parameters", "metrics"):
        text = json.dumps(getattr(entry, key), indent=2, default=str)
        console.print(f"{key}: {text}", markup=False, highlight=False)


@models_app.command("register")
def models_register(
    folder: Path = typer.Argument(..., help="artefact folder holding model_card.json"),
    name: str = typer.Option(None, help="registry name; default family:dataset from the card"),
) -> None:
    """Register a trained model folder as a candidate version."""
    from postwise.engage.registry import register

    try:
        entry = register(_engine(), folder, name)
    except (PostwiseError, ValueError) as error:
        _fail(error)
        return
    print(f"{entry.name} {entry.version}: {entry.status}")


@models_app.command("promote")
def models_promote(
    name: str = typer.Argument(..., help="model name"),
    version: str = typer.Argument(..., help="version to promote"),
) -> None:
    """Promote a version; the one it replaces is retired (one promoted version per name)."""
    from postwise.engage.registry import promote

    try:
        entry = promote(_engine(), name, version)
    except PostwiseError as error:
        _fail(error)
        return
    replaced = f" (retired {entry.replaced_version})" if entry.replaced_version else ""
    print(f"{entry.name} {entry.version}: promoted{replaced}")


@models_app.command("rollback")
def models_rollback(name: str = typer.Argument(..., help="model name")) -> None:
    """Retire the promoted version and re-promote the one it replaced."""
    from postwise.engage.registry import rollback

    try:
        entry = rollback(_engine(), name)
    except PostwiseError as error:
        _fail(error)
        return
    print(f"{entry.name} {entry.version}: promoted again")


def _read_columns(path: Path) -> dict[str, list[float]]:
    """Numeric columns of a CSV file by header name; an empty cell is missing (NaN). Raises
    ValueError naming the line and column of a value that is not a number."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for line, row in enumerate(reader, start=2):
            for name, value in row.items():
                try:
                    columns[name].append(float(value) if value not in ("", None) else math.nan)
                except (TypeError, ValueError, KeyError):
                    raise ValueError(
                        f"{path} line {line}: column {name!r} holds {value!r}, not a number"
                    ) from None
    if not columns:
        raise ValueError(f"{path}: no header line")
    return columns


@models_app.command("drift")
def models_drift(
    name: str = typer.Argument(..., help="model name"),
    data: Path = typer.Argument(..., help="CSV of current inputs (columns named as in training)"),
    score_column: str = typer.Option("score", help="column holding the model's scores, if any"),
    version: str = typer.Option(None, help="default: the promoted version, else the newest"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Population stability (PSI) of current inputs and scores against the training data;
    appends a model_drift event above the model_drift_psi_threshold setting."""
    from postwise.core.settings import get_settings
    from postwise.engage.registry import check_drift

    try:
        columns = _read_columns(data)
    except (OSError, ValueError) as error:
        _fail(error)
        return
    scores = columns.pop(score_column, None)
    try:
        report = check_drift(
            _engine(),
            name,
            columns,
            scores,
            version=version,
            threshold=get_settings().model_drift_psi_threshold,
        )
    except (PostwiseError, ValueError) as error:
        _fail(error)
        return
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    table = Table(title=f"PSI of {report.name} {report.version} (threshold {report.threshold})")
    table.add_column("input")
    table.add_column("PSI")
    table.add_column("")
    rows = list(report.feature_psi.items())
    if report.score_psi is not None:
        rows.append(("score", report.score_psi))
    for column, psi in rows:
        table.add_row(column, f"{psi:.4f}", "DRIFT" if psi > report.threshold else "")
    Console().print(table)
    if report.missing_features:
        print(f"absent from {data}: {', '.join(report.missing_features)}")
    print("model_drift alert recorded" if report.alert else "no drift above the threshold")
