"""``postwise conformance dkim|arc``: the public DKIM vectors and the ARC test suite through the
CLI, DNS from the loopback server. Every DKIM case must pass; ARC at least 95% of the cases run,
with every failure explained; every skip must say why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.auth.conformance_dkim import ARC_EXPLAINED, consolidated_results
from postwise.cli import app

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _run(suite: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, dict[str, Any]]:
    if not (SHARED_DATA / suite).is_dir():
        pytest.skip(f"{SHARED_DATA / suite} is absent")
    # The default data folder is the corpus_dir setting's parent.
    monkeypatch.setenv("POSTWISE_CORPUS_DIR", str(SHARED_DATA / "mail"))
    result = CliRunner().invoke(app, ["conformance", suite, "--json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_every_dkim_vector_passes(postwise_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = _run("dkim", monkeypatch)
    assert code == 0, report["failures"]
    assert report["suite"] == "dkim"
    assert report["failed"] == 0, report["failures"]
    assert report["passed"] == report["total"] - report["skipped"]
    assert report["groups"]["verify"]["passed"] >= 16  # every signature of the vectors JSON
    assert report["groups"]["sign"]["passed"] >= 5  # RFC 8463 ed25519 + rsa re-derived
    assert all(skip["reason"] for skip in report["skips"])


def test_the_arc_suite_passes_at_95_percent_with_every_miss_explained(
    postwise_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, report = _run("arc", monkeypatch)
    assert code == 0, report["failures"]
    assert (
        report["groups"]["validation"]["passed"] + report["groups"]["validation"].get("failed", 0)
        == 171
    )
    assert sum(report["groups"]["signing"].values()) == 17
    assert report["pass_rate"] >= 0.95
    assert report["unexplained_failures"] == 0
    for failure in report["failures"]:
        assert ARC_EXPLAINED.get(failure["case"]), failure
    assert all(skip["reason"] for skip in report["skips"])


def test_a_missing_data_folder_is_an_error(postwise_env: Path, tmp_path: Path) -> None:
    for suite in ("dkim", "arc"):
        result = CliRunner().invoke(app, ["conformance", suite, "--data", str(tmp_path)])
        assert result.exit_code == 2
        assert "cannot run" in " ".join(result.output.split())


def test_authentication_results_are_consolidated_per_authserv_id() -> None:
    message = (
        b"Authentication-Results: lists.example.org; arc=none;\r\n  spf=pass smtp.mfrom=a\r\n"
        b"Authentication-Results: other.example; dkim=fail\r\n"
        b"Authentication-Results: lists.example.org; dmarc=pass\r\n\r\nbody"
    )
    assert consolidated_results(message, "lists.example.org") == (
        "arc=none; spf=pass smtp.mfrom=a; dmarc=pass"
    )
