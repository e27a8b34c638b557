"""``postwise conformance spf``: the public SPF suites through the CLI, DNS from the loopback
server. The RFC 7208 suite must pass in full; every skip must say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postwise.auth.conformance import SPF_SUITES, run_spf_suite
from postwise.cli import app

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "spf").is_dir(), reason=f"{SHARED_DATA / 'spf'} is absent"
)


def _check(report: dict[str, object]) -> None:
    assert report["failed"] == 0, report["failures"]
    assert report["passed"] == report["total"] - report["skipped"]  # type: ignore[operator]
    skips = report["skips"]
    assert isinstance(skips, list)
    assert all(skip["reason"] for skip in skips)


def test_the_rfc7208_suite_passes_in_full(
    postwise_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default data folder is the corpus_dir setting's parent.
    monkeypatch.setenv("POSTWISE_CORPUS_DIR", str(SHARED_DATA / "mail"))
    result = CliRunner().invoke(app, ["conformance", "spf", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["suite"] == "rfc7208"
    assert report["total"] == 203
    assert report["skipped"] == 0  # no erratum needed: nothing skipped
    _check(report)


def test_every_shared_suite_reports_separately() -> None:
    args = ["conformance", "spf", "--json", "--data", str(SHARED_DATA)]
    for name in SPF_SUITES:
        args += ["--suite", name]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["suite"] for s in report["suites"]] == list(SPF_SUITES)
    _check(report)
    for suite in report["suites"]:
        _check(suite)


def test_the_table_and_the_exit_status(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["conformance", "spf", "--data", str(SHARED_DATA)])
    assert result.exit_code == 0, result.output
    assert "rfc7208" in result.stdout and "203" in result.stdout
    # A suite that fails exits 1 and names the case, what was expected and what came.
    broken = tmp_path / "spf" / "pyspf"
    broken.mkdir(parents=True)
    (broken / "rfc7208-tests.yml").write_text(
        "description: a wrong expectation\n"
        "tests:\n"
        "  wrong:\n"
        "    host: 192.0.2.1\n"
        "    mailfrom: a@x.example\n"
        "    helo: x.example\n"
        "    result: pass\n"
        "zonedata:\n"
        "  x.example:\n"
        "    - SPF: v=spf1 -all\n"
    )
    result = CliRunner().invoke(app, ["conformance", "spf", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failures"] == [
        {
            "suite": "rfc7208",
            "case": "wrong",
            "expected": ["pass"],
            "got": "fail",
            "explanation": "SPF fail - not authorized",
        }
    ]
    missing = CliRunner().invoke(app, ["conformance", "spf", "--data", str(tmp_path / "no")])
    assert missing.exit_code == 2
    (broken / "rfc7208-tests.yml").write_text("tests: [unclosed\n")
    malformed = CliRunner().invoke(app, ["conformance", "spf", "--data", str(tmp_path)])
    assert malformed.exit_code == 2
    assert "not YAML" in malformed.output


def test_timeouts_in_zone_data_are_temperror(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yml"
    suite.write_text(
        "description: timeouts\n"
        "tests:\n"
        "  slow:\n"
        "    host: 192.0.2.1\n"
        "    mailfrom: a@slow.example\n"
        "    helo: x\n"
        "    result: temperror\n"
        "zonedata:\n"
        "  slow.example:\n"
        "    - TIMEOUT\n"
    )
    report = run_spf_suite(suite, dns_timeout=0.3)
    assert (report.passed, report.failed) == (1, 0)
