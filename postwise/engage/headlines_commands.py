"""``postwise engage eval headlines`` (issue #7): replay headline A/B tests as bandits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError
from postwise.core.json_safe import json_safe


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the headlines commands to the ``engage train`` and ``engage eval`` groups."""
    del train_app

    @eval_app.command("headlines")
    def eval_headlines_command(
        train: Path = typer.Option(..., help="upworthy headline-test folder (CSV, gzipped or not)"),
        test: Path = typer.Option(None, help="replay these tests; the prior is learnt on --train"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        replications: int = typer.Option(30, min=1, help="seeded replays of every test"),
        rounds: int = typer.Option(50, min=1, help="posterior updates per test"),
        seed: int = typer.Option(0, help="seed of the replays and the bootstrap"),
        test_share: float = typer.Option(0.3, help="share of tests replayed without --test"),
    ) -> None:
        """Thompson sampling vs the A/B test (20% equal split, then the winner) vs the oracle."""
        from postwise.engage.headlines import read_headline_tests, split_tests
        from postwise.engage.headlines_evaluation import evaluate_headlines

        try:
            train_tests = read_headline_tests(train)
            if test is None:
                train_tests, test_tests = split_tests(train_tests, test_share)
                protocol = f"group split by test id: {test_share:.0%} of --train's tests replayed"
            else:
                test_tests = read_headline_tests(test)
                overlap = set(train_tests.test_ids) & set(test_tests.test_ids)
                if overlap:
                    _fail(
                        f"{len(overlap)} test id(s) are in both --train and --test "
                        f"(e.g. {sorted(overlap)[0]}); a test must be on one side only"
                    )
                protocol = "prior learnt on --train, replayed on --test"
            report = evaluate_headlines(train_tests, test_tests, replications, rounds, seed)
        except (PostwiseError, ValueError) as error:
            _fail(str(error))
            return
        report["protocol"] = protocol
        if as_json:
            print(json.dumps(json_safe(report)))
            return
        _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"{report['protocol']}: {report['train_tests']} training tests, "
        f"{report['test_tests']} replayed ({report['test_impressions']:,} impressions), "
        f"{report['replications']} replications; prior {report['policy']['prior']['name']}"
    )
    table = Table(title="clicks per policy (expected, summed over the replayed tests)")
    for column in ("policy", "clicks", "regret vs oracle"):
        table.add_column(column)
    for name, clicks in report["clicks"].items():
        table.add_row(name, f"{clicks:,.0f}", f"{report['regret_vs_oracle'][name]:.2%}")
    console.print(table)
    gain = report["clicks_vs_ab_test"]
    low, high = gain["relative_ci"]
    console.print(
        f"thompson vs A/B test: {gain['absolute']:+,.0f} clicks ({gain['relative']:+.2%}, "
        f"95% CI {low:+.2%} to {high:+.2%}); wins {gain['tests_won_share']:.0%} of tests"
    )
