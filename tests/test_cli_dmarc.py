"""``postwise dmarc ingest|summary`` in-process through typer's CliRunner, on the database of
the test's data folder: good files stored, bad ones reported without stopping the batch, a
second ingest stores nothing, and the summary adds up."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from ops.test_dmarc_reports import DATA, KNOWN, KNOWN_LATER, TLS_JSON, arf_report, zipped
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.settings import get_settings


def invoke(*args: str) -> Any:
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1"})


@pytest.fixture
def reports(tmp_path: Path, postwise_env: Path) -> Path:
    """A folder of good and bad report files; the bad ones sort first, so a batch that stopped
    at an error would miss the good ones."""
    folder = tmp_path / "reports"
    nested = folder / "nested"
    nested.mkdir(parents=True)
    (folder / "a-broken.xml").write_bytes(KNOWN[:-40])
    (folder / "a-empty.xml").write_bytes(b"")
    (folder / "a-notes.txt").write_text("remember to renew the certificate\n")
    (folder / "a-truncated.xml.gz").write_bytes(gzip.compress(KNOWN)[:50])
    (folder / "b-known.xml").write_bytes(KNOWN)
    (folder / "c-later.zip").write_bytes(zipped({"later.xml": KNOWN_LATER}))
    (nested / "d-tls.json").write_bytes(TLS_JSON)
    (nested / "e-ruf.eml").write_bytes(arf_report())
    (folder / ".hidden.xml").write_bytes(b"not read")
    return folder


GOOD = ["b-known.xml", "c-later.zip", "nested/d-tls.json", "nested/e-ruf.eml"]
BAD = {
    "a-broken.xml": "not well-formed XML",
    "a-empty.xml": "the file is empty",
    "a-notes.txt": "not a report",
    "a-truncated.xml.gz": "the gzip stream is truncated",
}


def _lines(result: Any, folder: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {Path(row["file"]).relative_to(folder).as_posix(): row for row in rows}


def test_ingest_stores_the_good_reports_and_reports_the_bad(reports: Path) -> None:
    result = invoke("dmarc", "ingest", str(reports))
    assert result.exit_code == 1
    out = result.stdout
    for name in GOOD:
        assert f"stored: {reports / name}: " in out
    for name, reason in BAD.items():
        assert f"error: {reports / name}: " in out and reason in out
    assert "hidden" not in out
    assert "aggregate report receiver.example/r-1 for example.com, 2026-01-01, 3 records" in out
    assert "8 file(s): 4 stored, 0 already stored, 4 error(s)" in out
    assert "Traceback" not in out + result.stderr


def test_ingest_json_and_a_second_ingest_stores_nothing(reports: Path) -> None:
    first = invoke("dmarc", "ingest", "--json", str(reports))
    assert first.exit_code == 1
    rows = _lines(first, reports)
    assert sorted(rows) == sorted([*GOOD, *BAD])
    assert {n: rows[n]["status"] for n in GOOD} == dict.fromkeys(GOOD, "stored")
    for name, reason in BAD.items():
        assert rows[name]["status"] == "error" and reason in rows[name]["error"]
    assert [r["kind"] for n in GOOD for r in rows[n]["reports"]] == [
        "aggregate",
        "aggregate",
        "tls",
        "failure",
    ]
    again = invoke("dmarc", "ingest", "--json", *(str(reports / name) for name in GOOD))
    assert again.exit_code == 0, again.stdout
    statuses = [json.loads(line)["status"] for line in again.stdout.splitlines()]
    assert statuses == ["already stored"] * 4
    table = invoke("dmarc", "ingest", str(reports / "b-known.xml"))
    assert table.exit_code == 0
    assert f"already stored: {reports / 'b-known.xml'}: aggregate report" in table.stdout


def test_ingest_of_a_missing_path_is_an_error_line(postwise_env: Path, tmp_path: Path) -> None:
    result = invoke("dmarc", "ingest", str(tmp_path / "nope.xml"))
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'nope.xml'}: no such file or folder" in result.stdout


def test_summary_json_adds_up(reports: Path) -> None:
    invoke("dmarc", "ingest", str(reports))
    result = invoke("dmarc", "summary", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["totals"] == {
        "reports": 2,
        "messages": 20,
        "dmarc_pass": 13,
        "dmarc_fail": 7,
        "dmarc_pass_rate": 0.65,
        "dkim_aligned": 10,
        "dkim_aligned_rate": 0.5,
        "spf_aligned": 3,
        "spf_aligned_rate": 0.15,
        "dispositions": {"none": 13, "quarantine": 5, "reject": 2},
    }
    assert [(r["key"], r["messages"]) for r in summary["rows"]] == [
        ("192.0.2.1", 13),
        ("192.0.2.2", 5),
        ("198.51.100.7", 2),
    ]
    assert summary["failure_reports"] == 1
    assert summary["tls"] == {"reports": 1, "successful_sessions": 40, "failed_sessions": 2}
    by_day = json.loads(
        invoke("dmarc", "summary", "--json", "--by", "day", "--since", "2026-01-02").stdout
    )
    assert [(r["key"], r["messages"], r["dmarc_fail"]) for r in by_day["rows"]] == [
        ("2026-01-02", 2, 2)
    ]
    sub = json.loads(
        invoke(
            "dmarc", "summary", "--json", "--by", "domain", "--domain", "mail.example.com"
        ).stdout
    )
    assert [(r["key"], r["dmarc_pass"]) for r in sub["rows"]] == [("mail.example.com", 3)]


def test_summary_table_for_people(reports: Path) -> None:
    invoke("dmarc", "ingest", str(reports))
    result = invoke("dmarc", "summary", "--by", "domain", "--limit", "1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "DMARC aggregate reports by header-from domain (top 1 of 2)" in out
    assert "example.com" in out and "total" in out and "65.0" in out
    assert "failure reports: 1; TLS reports: 1 (40 successful, 2 failed sessions)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "week"), "--by takes ip, domain or day, not 'week'"),
        (("--since", "yesterday"), "--since takes a day as YYYY-MM-DD, not 'yesterday'"),
    ],
)
def test_summary_refuses_bad_options(
    postwise_env: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke("dmarc", "summary", *args)
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared DMARC samples not found at {DATA}")
def test_ingest_of_the_shared_samples(postwise_env: Path) -> None:
    samples = DATA / "parsedmarc" / "samples"
    result = invoke("dmarc", "ingest", "--json", str(samples))
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    errors = sorted(Path(r["file"]).name for r in rows if r["status"] == "error")
    assert errors == [
        "empty.xml",
        "invalid_utf_8.xml",
        "invalid_xml.xml",
        "report_with_upper_cased_pass.xml",
    ]
    # the same report as .xml, .xml.gz and .xml.zip, and a failure report with CRLF line ends
    duplicates = sorted(Path(r["file"]).name for r in rows if r["status"] == "already stored")
    assert duplicates == [
        "dmarc_ruf_report_linkedin.eml",
        "nice-input.xml.gz",
        "nice-input.xml.zip",
    ]
    assert len(rows) == 34
