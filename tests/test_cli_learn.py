"""``postwise learn --as ham|spam|phish PATH...``: in-process through typer's CliRunner, and once
in a subprocess for the table a person reads."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.cli import app

pytestmark = pytest.mark.usefixtures("postwise_env")

TEST_MODEL_VERSION = "test-tiny-model"  # as written by the test_model_dir fixture


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run the command in this process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240", **(env or {})})


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def reported(tmp_path: Path, fixture_bytes: Callable[[str], bytes]) -> Path:
    """A folder of two messages a user reports."""
    folder = tmp_path / "reported"
    folder.mkdir()
    (folder / "a-note.eml").write_bytes(fixture_bytes("personal_reply.eml"))
    (folder / "b-meeting.eml").write_bytes(fixture_bytes("corpus/ham/meeting.eml"))
    return folder


def test_learn_json_reports_each_message_and_later_scans_use_it(
    reported: Path, postwise_env: Path
) -> None:
    result = invoke("learn", "--as", "phish", "--json", reported)
    assert result.exit_code == 0, result.stderr
    rows = json_lines(result.stdout)
    assert [Path(r["id"]).name for r in rows] == ["a-note.eml", "b-meeting.eml"]
    for row in rows:
        assert row["label"] == "phish"
        assert row["after"]["phish"] > row["before"]["phish"]
        assert len(row["message_sha256"]) == 64
    assert rows[-1]["online_version"].startswith("online-2-")
    assert rows[-1]["counts"] == {"ham": 0, "spam": 0, "phish": 2}
    assert (postwise_env / "online-model.npz").is_file()

    scanned = json_lines(invoke("scan", "--json", reported / "a-note.eml").stdout)[0]
    assert scanned["model_version"] == f"{TEST_MODEL_VERSION}+{rows[-1]['online_version']}"
    assert scanned["action"] != "no_action"

    # releasing the mistake: learning it back as ham brings the message back
    back = invoke("learn", "--as", "ham", "--json", reported / "a-note.eml")
    assert back.exit_code == 0, back.stderr
    assert json_lines(back.stdout)[0]["online_version"].startswith("online-3-")
    rescanned = json_lines(invoke("scan", "--json", reported / "a-note.eml").stdout)[0]
    assert rescanned["action"] == "no_action"


def test_learn_reads_mbox_and_reports_unreadable_paths_with_exit_1(
    tmp_path: Path, fixture_bytes: Callable[[str], bytes]
) -> None:
    archive = tmp_path / "spam.mbox"
    box = mailbox.mbox(archive)
    box.add(fixture_bytes("corpus/spam/lottery.eml"))
    box.add(fixture_bytes("corpus/spam/pills.eml"))
    box.flush()
    box.close()
    missing = tmp_path / "no-such.eml"
    result = invoke("learn", "--as", "spam", "--json", archive, missing)
    assert result.exit_code == 1
    rows = json_lines(result.stdout)
    assert [r["id"] for r in rows] == [f"{archive}#0", f"{archive}#1", str(missing)]
    assert rows[1]["online_version"].startswith("online-2-")
    assert rows[2]["error"] == "no such file or folder"


def test_a_bad_label_is_refused_before_anything_is_learned(
    reported: Path, postwise_env: Path
) -> None:
    result = invoke("learn", "--as", "maybe", reported)
    assert result.exit_code == 2
    assert "--as takes ham, spam or phish, not 'maybe'" in result.stderr
    assert not (postwise_env / "online-model.npz").exists()


def test_learning_when_it_is_switched_off_says_how_to_switch_it_on(reported: Path) -> None:
    result = invoke("learn", "--as", "ham", reported, env={"POSTWISE_ONLINE_LEARNING": "false"})
    assert result.exit_code == 2
    assert "POSTWISE_ONLINE_LEARNING=true" in result.stderr


def test_a_corrupt_online_model_is_named_with_the_remedy(
    reported: Path, postwise_env: Path
) -> None:
    postwise_env.mkdir(parents=True, exist_ok=True)
    path = postwise_env / "online-model.npz"
    path.write_bytes(b"half a file")
    result = invoke("learn", "--as", "ham", reported)
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())  # Rich may wrap the long path
    assert "online-model.npz" in message and "delete" in message


def test_learn_prints_a_table_for_people(reported: Path) -> None:
    env = {**os.environ, "COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}
    result = subprocess.run(
        [sys.executable, "-m", "postwise.cli", "learn", "--as", "spam", str(reported)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "learned as spam" in out
    assert "p(spam) before" in out
    assert "a-note.eml" in out and "b-meeting.eml" in out
    assert "2 of 2 learned; online model online-2-" in out
    assert "'spam': 2" in out
