"""``postwise engage eval bandit``: off-policy evaluation on the Open Bandit Dataset layout."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError
from postwise.core.json_safe import json_safe


def _cell(entry: dict[str, Any] | None, digits: int = 3) -> str:
    if entry is None:
        return "-"
    low, high = entry["ci"]
    value = entry["estimate"]

    def show(x: float | None) -> str:
        return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"

    return f"{show(value)} [{show(low)}, {show(high)}]"


def _print_report(report: dict[str, Any]) -> None:
    console = Console()
    console.print(f"open_bandit: {report['protocol']}", highlight=False)
    level = f"{report['confidence']:.0%} bootstrap CI, {report['bootstrap']} resamples"
    for campaign, result in report["campaigns"].items():
        ts = result.get("ts_over_random")
        if ts is not None:
            table = Table(title=f"{campaign}: BTS value from the random log / random CTR ({level})")
            for column in ("estimator", "TS / random", "BTS value"):
                table.add_column(column)
            for name in report["estimators"]:
                table.add_row(name, _cell(ts[name]), _cell(ts["bts_value"][name], 5))
            table.add_row(
                "on-policy check",
                _cell(ts["bts_on_policy_over_random"]),
                _cell(ts["bts_on_policy_ctr"], 5),
            )
            console.print(table)
        for key, what in (("policies", "later"), ("cross_fitted", "cross-fitted")):
            policies = result.get(key)
            if policies is None:
                continue
            table = Table(
                title=f"{campaign}: policies on {policies['eval_rows']} {what} random rows "
                f"({policies['eval_clicks']} clicks), DR ({level})"
            )
            for column in ("policy", "value", "/ random", "- random (paired)", "/ BTS"):
                table.add_column(column)
            for name, entry in policies["policies"].items():
                dr = entry["dr"]
                label = f"{name} ({entry['chosen']})" if "chosen" in entry else name
                table.add_row(
                    label,
                    _cell(dr["value"], 5),
                    _cell(dr["over_random"]),
                    _cell(dr["minus_random"], 5),
                    _cell(dr.get("over_bts")),
                )
            console.print(table)
    pooled = report.get("pooled", {})
    if pooled:
        table = Table(title=f"pooled over {', '.join(report['campaigns'])}: / random, DR ({level})")
        for column in ("figure", "rows", "BTS", "postwise"):
            table.add_column(column)
        ts = pooled.get("ts_over_random")
        if ts is not None:
            table.add_row("TS over random", str(ts["rows"]), _cell(ts["dr"]), "-")
        for key, what in (("policies", "later rows"), ("cross_fitted", "cross-fitted")):
            block = pooled.get(key)
            if block is not None:
                table.add_row(
                    f"policies, {what}",
                    str(block["rows"]),
                    _cell(block.get("bts", {}).get("dr")),
                    _cell(block["postwise"]["dr"]),
                )
        console.print(table)


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the bandit commands to the ``engage train`` and ``engage eval`` groups."""
    del train_app

    @eval_app.command("bandit")
    def eval_bandit_command(
        train: Path = typer.Option(
            ..., help="open_bandit folder: {random,bts}/<campaign>/*.csv[.gz]"
        ),
        test: Path = typer.Option(
            None, help="evaluate on this folder's random log after training on --train alone"
        ),
        campaign: list[str] = typer.Option(
            None, "--campaign", help="campaign(s) to evaluate (default: every one in --train)"
        ),
        bootstrap: int = typer.Option(200, help="bootstrap resamples per interval"),
        seed: int = typer.Option(12345, help="seed of the bootstrap, folds and draws"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Off-policy estimates (IPW, SNIPW, DR) of BTS and of Postwise's bandits from the
        random log, with bootstrap confidence intervals."""
        from postwise.engage.bandit_evaluation import EvaluationSettings, evaluate_open_bandit

        if bootstrap < 2:
            _fail(ValueError("--bootstrap must be at least 2"))
        quiet = as_json or not sys.stderr.isatty()
        console = Console(stderr=True)
        try:
            report = evaluate_open_bandit(
                train,
                test,
                EvaluationSettings(bootstrap=bootstrap, seed=seed),
                campaign or None,
                None if quiet else lambda message: console.print(message, highlight=False),
            )
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        if as_json:
            print(json.dumps(json_safe(report)))
            return
        _print_report(report)
