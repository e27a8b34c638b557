"""The ``postwise`` command: run for real in a subprocess (``python -m postwise.cli``) where the
process boundary matters (exit codes through ``main``, the printed table, a process pool), and
in-process through typer's CliRunner elsewhere, which is much faster."""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.cli import app

pytestmark = pytest.mark.usefixtures("postwise_env")

VERDICT_KEYS = {
    "id",
    "action",
    "score",
    "class",
    "probabilities",
    "symbols",
    "message_sha256",
    "model_version",
    "policy_version",
}


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "postwise.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def invoke(*args: str | Path) -> Any:
    """Run the command in this process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240"})


def json_lines(stdout: str) -> list[dict[str, Any]]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@pytest.fixture
def mail_folder(tmp_path: Path, fixture_bytes: Callable[[str], bytes]) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a-note.eml").write_bytes(fixture_bytes("personal_reply.eml"))
    (folder / "b-phish.eml").write_bytes(fixture_bytes("phish_apple_id.eml"))
    (folder / "c-newsletter.eml").write_bytes(fixture_bytes("corpus/ham/newsletter.eml"))
    (folder / ".hidden.eml").write_bytes(b"dot files are skipped")
    return folder


def test_scan_folder_prints_a_table(mail_folder: Path) -> None:
    result = run_cli("scan", mail_folder)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for column in ("message", "action", "score", "class", "top symbols"):
        assert column in out
    for name in ("a-note.eml", "b-phish.eml", "c-newsletter.eml"):
        assert name in out
    assert ".hidden" not in out
    phish_line = next(line for line in out.splitlines() if "b-phish.eml" in line)
    assert "phish" in phish_line.replace("b-phish", "")
    assert "no_action" in next(line for line in out.splitlines() if "a-note.eml" in line)


def test_scan_json_prints_one_verdict_per_line(mail_folder: Path) -> None:
    result = invoke("scan", "--json", mail_folder)
    assert result.exit_code == 0, result.stderr
    verdicts = json_lines(result.stdout)
    assert [Path(v["id"]).name for v in verdicts] == [
        "a-note.eml",
        "b-phish.eml",
        "c-newsletter.eml",
    ]
    for verdict in verdicts:
        assert verdict.keys() >= VERDICT_KEYS
        assert sum(verdict["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert all(set(s) == {"name", "score", "evidence"} for s in verdict["symbols"])
        assert verdict["model_version"] == "test-tiny-model"
    by_name = {Path(v["id"]).name: v for v in verdicts}
    assert by_name["a-note.eml"]["action"] == "no_action"
    assert by_name["b-phish.eml"]["action"] != "no_action"
    assert by_name["b-phish.eml"]["class"] == "phish"


def test_scan_mbox_yields_one_line_per_message(
    tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    path = tmp_path / "archive.mbox"
    box = mailbox.mbox(path)
    box.add(fixture_bytes("personal_reply.eml"))
    box.add(fixture_bytes("corpus/spam/work_from_home.eml"))
    box.flush()
    box.close()
    result = invoke("scan", "--json", path)
    assert result.exit_code == 0, result.stderr
    verdicts = json_lines(result.stdout)
    assert [v["id"] for v in verdicts] == [f"{path}#0", f"{path}#1"]
    assert "URL_SHORTENER" in {s["name"] for s in verdicts[1]["symbols"]}
    # the mbox "From " line is not taken for a header: the first message is a clean note
    assert verdicts[0]["action"] == "no_action"


def test_scan_maildir(tmp_path: Path, fixture_bytes: Callable[[str], bytes]) -> None:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    keys = {
        box.add(fixture_bytes("corpus/ham/meeting.eml")): "meeting",
        box.add(fixture_bytes("phish_apple_id.eml")): "phish",
    }
    box.close()
    result = invoke("scan", "--json", path)
    assert result.exit_code == 0, result.stderr
    verdicts = json_lines(result.stdout)
    assert len(verdicts) == 2
    assert sorted(v["id"] for v in verdicts) == sorted(f"{path}/{key}" for key in keys)
    by_kind = {keys[v["id"].rsplit("/", 1)[1]]: v for v in verdicts}
    assert by_kind["meeting"]["action"] == "no_action"
    assert by_kind["phish"]["class"] == "phish"


def test_missing_path_is_reported_and_exits_1(
    tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    good = tmp_path / "note.eml"
    good.write_bytes(fixture_bytes("personal_reply.eml"))
    missing = tmp_path / "no-such-folder"
    result = run_cli("scan", "--json", good, missing)
    assert result.returncode == 1
    lines = json_lines(result.stdout)
    assert len(lines) == 2
    assert lines[0]["id"] == str(good) and lines[0]["action"] == "no_action"
    assert lines[1] == {"id": str(missing), "error": "no such file or folder"}


def test_missing_path_in_table_mode_exits_1(tmp_path: Path) -> None:
    result = invoke("scan", tmp_path / "gone.eml")
    assert result.exit_code == 1
    assert "gone.eml" in result.stdout
    assert "error" in result.stdout
    assert "no such file or folder" in result.stdout


def test_two_workers_give_the_same_results_as_one(tmp_path: Path, corpus_dir: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(corpus_dir, folder)
    one = invoke("scan", "--json", "--workers", "1", folder)
    two = run_cli("scan", "--json", "--workers", "2", folder)  # a real process pool
    assert one.exit_code == two.returncode == 0, one.stderr + two.stderr
    assert len(json_lines(one.stdout)) == 9
    assert json_lines(two.stdout) == json_lines(one.stdout)


def test_scan_refuses_a_broken_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "broken-policy.toml"
    policy.write_text("[actions\n")
    monkeypatch.setenv("POSTWISE_POLICY_PATH", str(policy))
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@example.org\n\nhi\n")
    result = invoke("scan", message)
    assert result.exit_code == 2
    assert "broken-policy.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_inbound_json(corpus_dir: Path) -> None:
    result = run_cli("eval", "inbound", "--data", corpus_dir, "--json")
    assert result.returncode == 0, result.stderr
    (report,) = json_lines(result.stdout)
    assert {
        "ham_fpr",
        "spam_recall",
        "phish_recall",
        "messages_per_second",
        "confusion_matrix",
    } <= report.keys()
    assert report["messages"] == 9
    assert report["counts"] == {"ham": 3, "spam": 3, "phish": 3}
    matrix = report["confusion_matrix"]
    assert set(matrix) == {"ham", "spam", "phish"}
    assert all(sum(row.values()) == 3 for row in matrix.values())
    # the test model was fitted on exactly these messages
    assert report["ham_fpr"] == 0.0
    assert report["spam_recall"] == 1.0
    assert report["phish_recall"] == 1.0
    assert matrix["phish"]["phish"] == 3
    assert report["messages_per_second"] > 0
    assert report["model_version"] == "test-tiny-model"


def test_eval_inbound_on_an_unknown_layout_fails_cleanly(tmp_path: Path) -> None:
    result = invoke("eval", "inbound", "--data", tmp_path, "--json")
    assert result.exit_code == 2
    assert "ham/ spam/ phish/" in result.stderr
    assert result.stdout.strip() == ""
