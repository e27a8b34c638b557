"""``postwise domain audit`` against a local authoritative server (``--resolver``): the table for
people, one JSON object for machines, exit 0 whatever the grade and 2 on bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.cli import app

pytestmark = pytest.mark.usefixtures("postwise_env")


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    records = [
        ZoneRecord("good.test", "MX", (10, "mx.good.test")),
        ZoneRecord("mx.good.test", "A", "127.0.0.1"),
        ZoneRecord("good.test", "TXT", "v=spf1 mx -all"),
        ZoneRecord("_dmarc.good.test", "TXT", "v=DMARC1; p=reject; rua=mailto:d@good.test"),
        ZoneRecord("_mta-sts.good.test", "TXT", "v=STSv1; id=1"),
        ZoneRecord("mta-sts.good.test", "A", "192.0.2.1"),
        ZoneRecord("_smtp._tls.good.test", "TXT", "v=TLSRPTv1; rua=mailto:tls@good.test"),
        ZoneRecord("default._bimi.good.test", "TXT", "v=BIMI1; l=https://good.test/l.svg"),
        ZoneRecord("open.test", "MX", (10, "mx.open.test")),
        ZoneRecord("mx.open.test", "A", "127.0.0.1"),
        ZoneRecord("open.test", "TXT", "v=spf1 +all"),
        ZoneRecord("_dmarc.open.test", "TXT", "v=DMARC1; p=none"),
    ]
    with ZoneServer(records) as server:
        yield server


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240"})


def test_json_has_the_grade_and_the_findings(zone: ZoneServer) -> None:
    result = invoke(
        "domain", "audit", "open.test", "--json", "--resolver", zone.address, "--no-starttls"
    )
    assert result.exit_code == 0, result.output  # a failing grade is not a failing command
    report = json.loads(result.stdout)
    assert report["domain"] == "open.test" and report["grade"] == "F"
    codes = {finding["code"]: finding for finding in report["findings"]}
    assert {"SPF_PLUS_ALL", "DMARC_P_NONE", "DMARC_NO_RUA", "MTA_STS_MISSING"} <= set(codes)
    assert codes["SPF_PLUS_ALL"]["severity"] == "critical"
    assert set(codes["SPF_PLUS_ALL"]) == {"code", "severity", "summary", "evidence", "fix"}
    assert report["counts"]["critical"] == 1
    assert report["records"]["spf"]["record"] == "v=spf1 +all"


def test_the_table_for_people(zone: ZoneServer) -> None:
    result = invoke(
        "domain", "audit", "good.test", "--resolver", zone.address, "--no-starttls",
        "--selector", "s1", "--selector", "s2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "good.test: grade D (50/100)" in result.stdout  # two selectors without keys
    assert result.stdout.count("DKIM_MISSING") == 2
    assert "s2._domainkey.good.test" in result.stdout
    assert "grade D (score 50/100): 0 critical, 2 high" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("not a domain", "--resolver", "127.0.0.1:53"),
        ("good.test", "--resolver", "dns.example:53"),
        ("good.test", "--resolver", "127.0.0.1:notaport"),
        ("good.test", "--selector", "bad selector", "--resolver", "127.0.0.1:53"),
        ("good.test", "--smtp-port", "0"),
    ],
)
def test_bad_arguments_exit_2(args: tuple[str, ...]) -> None:
    result = invoke("domain", "audit", *args)
    assert result.exit_code == 2, result.output


def test_the_installed_command(zone: ZoneServer) -> None:
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}
    completed = subprocess.run(
        [sys.executable, "-m", "postwise.cli", "domain", "audit", "good.test", "--json",
         "--resolver", zone.address, "--no-starttls"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["grade"] == "A" and report["score"] == 100
