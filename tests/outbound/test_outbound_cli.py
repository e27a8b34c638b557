"""``postwise send``, ``queue``, ``suppression`` and ``feedback`` in-process through typer's
CliRunner, on the queue of the test's data folder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.settings import get_settings
from postwise.outbound.dsn import DsnRecipient, build_dsn
from postwise.outbound.submission_smtp import verify_password

FBL = Path(__file__).resolve().parents[3] / "shared" / "data" / "fbl" / "mail-auth-arf"

RAW = (
    b"From: Ann Baker <ann@example.org>\r\nTo: bob@example.net\r\nSubject: Minutes\r\n"
    b"Message-ID: <minutes.cli@example.org>\r\n\r\nThe minutes.\r\n"
)


def invoke(*args: str, stdin: bytes | None = None) -> Any:
    get_settings.cache_clear()
    env = {"COLUMNS": "240", "NO_COLOR": "1"}
    return CliRunner().invoke(app, list(args), input=stdin, env=env)


@pytest.fixture
def message_file(postwise_env: Path, tmp_path: Path) -> Path:
    path = tmp_path / "minutes.eml"
    path.write_bytes(RAW)
    return path


def _send(message_file: Path, *extra: str) -> str:
    result = invoke(
        "send", "--from", "ann@example.org", "--to", "bob@example.net", *extra, str(message_file)
    )
    assert result.exit_code == 0, result.output
    return str(result.stdout.splitlines()[0])


def test_send_from_file_and_stdin(message_file: Path) -> None:
    message_id = _send(message_file)
    assert message_id.isalnum()
    piped = invoke(
        "send", "--from", "ann@example.org", "--to", "cat@example.com", "--json", stdin=RAW
    )
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["recipients"] == ["cat@example.com"]
    listed = invoke("queue", "list", "--json")
    ids = [json.loads(line)["id"] for line in listed.stdout.splitlines()]
    assert message_id in ids and len(ids) == 2


def test_send_idempotency_key(message_file: Path) -> None:
    first = _send(message_file, "--idempotency-key", "k-1")
    again = invoke(
        "send",
        "--from",
        "ann@example.org",
        "--to",
        "bob@example.net",
        "--idempotency-key",
        "k-1",
        "--json",
        str(message_file),
    )
    assert json.loads(again.stdout) == {
        "id": first,
        "duplicate": True,
        "recipients": ["bob@example.net"],
        "refused": {},
    }


def test_send_refusals_are_clear(message_file: Path, tmp_path: Path) -> None:
    bad = invoke("send", "--from", "ann@example.org", "--to", "not-an-address", str(message_file))
    assert bad.exit_code == 2
    assert "not-an-address" in bad.output
    no_from = tmp_path / "nofrom.eml"
    no_from.write_bytes(b"Subject: x\r\n\r\nbody\r\n")
    refused = invoke("send", "--from", "a@example.org", "--to", "b@example.net", str(no_from))
    assert refused.exit_code == 2
    assert "From fields" in refused.output
    missing = invoke("send", "--from", "a@example.org", "--to", "b@example.net", "nowhere.eml")
    assert missing.exit_code == 2


def test_queue_show_retry_purge(message_file: Path) -> None:
    message_id = _send(message_file)
    table = invoke("queue", "list")
    assert message_id in table.stdout and "1 queued" in table.stdout
    shown = json.loads(invoke("queue", "show", message_id, "--json").stdout)
    assert shown["recipients"][0]["recipient"] == "bob@example.net"
    people = invoke("queue", "show", message_id)
    assert "bob@example.net" in people.stdout and "queued" in people.stdout
    assert "1 recipient(s) due now" in invoke("queue", "retry", message_id).stdout
    assert "1 recipient(s) due now" in invoke("queue", "retry", "--domain", "example.net").stdout
    assert "0 recipient(s)" in invoke("queue", "retry", "--domain", "example.com").stdout
    declined = invoke("queue", "purge", message_id, stdin=b"n\n")
    assert declined.exit_code == 1
    purged = invoke("queue", "purge", message_id, "--yes")
    assert purged.exit_code == 0 and "1 queued recipient(s)" in purged.stdout
    unknown = invoke("queue", "show", message_id)
    assert unknown.exit_code == 2 and "no message" in unknown.output
    assert invoke("queue", "list", "--state", "lost").exit_code == 2


def test_hash_password(postwise_env: Path) -> None:
    result = invoke("queue", "hash-password", stdin=b"s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    stored = result.stdout.strip().splitlines()[-1]
    assert stored.startswith("scrypt$")
    assert verify_password("s3cret", stored)
    assert "s3cret" not in result.stdout


def test_suppression_commands(message_file: Path) -> None:
    assert invoke("suppression", "add", "Bob@Example.net", "--reason", "asked").exit_code == 0
    listed = [
        json.loads(line) for line in invoke("suppression", "list", "--json").stdout.splitlines()
    ]
    assert [(e["address"], e["source"], e["reason"]) for e in listed] == [
        ("bob@example.net", "operator", "asked")
    ]
    refused = invoke(
        "send", "--from", "ann@example.org", "--to", "bob@example.net", str(message_file)
    )
    assert refused.exit_code == 2 and "suppression list" in refused.output
    assert "bob@example.net" in invoke("suppression", "list").stdout
    assert invoke("suppression", "remove", "bob@example.net").exit_code == 0
    assert invoke("suppression", "remove", "bob@example.net").exit_code == 2
    assert invoke("suppression", "add", "nobody").exit_code == 2
    assert invoke("suppression", "list", "--source", "spam").exit_code == 2


def test_feedback_ingest_files_and_folders(message_file: Path, tmp_path: Path) -> None:
    message_id = _send(message_file)
    folder = tmp_path / "feedback"
    folder.mkdir()
    moment = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    failure = DsnRecipient("bob@example.net", "5.1.1", "550 5.1.1 no such user", None, moment)
    (folder / "dsn.eml").write_bytes(
        build_dsn(
            RAW,
            envelope_from="ann@example.org",
            failures=[failure],
            reporting_mta="mx.example.net",
            arrival_date=moment,
            now=moment,
        )
    )
    (folder / "note.eml").write_bytes(b"From: a@example.org\r\nSubject: hi\r\n\r\nJust a note.\r\n")
    result = invoke("feedback", "ingest", str(folder))
    assert result.exit_code == 0, result.output
    assert (
        f"dsn.eml: bounce for bob@example.net; suppressed bob@example.net; original {message_id}"
        in (result.stdout)
    )
    assert "note.eml: not a bounce or a complaint; nothing recorded" in result.output
    entries = invoke("suppression", "list", "--source", "bounce", "--json").stdout
    assert json.loads(entries)["address"] == "bob@example.net"
    only_bad = invoke("feedback", "ingest", str(folder / "note.eml"))
    assert only_bad.exit_code == 1
    missing = invoke("feedback", "ingest", str(tmp_path / "nothing.eml"))
    assert missing.exit_code == 1 and "nothing.eml" in missing.output
    (tmp_path / "empty").mkdir()
    empty = invoke("feedback", "ingest", str(tmp_path / "empty"))
    assert empty.exit_code == 2 and "no files found" in empty.output


def test_feedback_ingest_real_arf_samples(postwise_env: Path) -> None:
    if not FBL.is_dir():
        pytest.skip("shared fbl samples absent")
    result = invoke("feedback", "ingest", "--json", str(FBL))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(list(FBL.glob("*.eml")))
    complaints = [line for line in lines if line.get("kind") == "complaint"]
    assert complaints
    assert any("user@example.com" in line["suppressed"] for line in complaints)
    again = invoke("feedback", "ingest", "--json", str(FBL))
    assert all(json.loads(line).get("duplicate", True) for line in again.stdout.splitlines())


def test_hold_keeps_mail_from_delivery_until_release(postwise_env: Path) -> None:
    from postwise.core.settings import get_settings
    from postwise.services import OutboundServices

    services = OutboundServices.from_settings(get_settings())
    raw = b"From: a@sender.example\r\nSubject: held\r\n\r\nbody\r\n"
    accepted = services.submit(
        "a@sender.example",
        ["x@held.example", "y@other.example"],
        raw,
        source="cli",
        submitted_by="tests",
    )
    message_id = accepted.enqueued.message_id
    result = invoke("queue", "hold", "--domain", "held.example")
    assert result.exit_code == 0 and "1 recipient(s) held" in result.output
    # A worker claims only what is queued and due: the held recipient stays.
    claimed = services.queue.claim("w-test", 10)
    assert [r for job in claimed for _, r in job.recipients] == ["y@other.example"]
    assert services.queue.depth()["held"] == 1
    result = invoke("queue", "release", message_id)
    assert result.exit_code == 0 and "1 recipient(s) released" in result.output
    services.queue.release_claims()
    again = services.queue.claim("w-test", 10)
    assert sorted(r for job in again for _, r in job.recipients) == [
        "x@held.example",
        "y@other.example",
    ]
    services.engine.dispose()
