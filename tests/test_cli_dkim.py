"""``postwise dkim keygen|sign`` in-process through typer's CliRunner: the key file is private
and never overwritten, and the printed DNS record verifies what the key signs."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postwise.auth.dkim import verify_dkim
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.cli import app

MESSAGE = (
    b"From: ann@example.com\r\nTo: sam@example.org\r\nSubject: hello\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\nMessage-ID: <c1@example.com>\r\n\r\nHi.\r\n"
)


def _keygen(*args: str) -> object:
    return CliRunner().invoke(app, ["dkim", "keygen", *args])


def _record_strings(output: str) -> tuple[str, list[str]]:
    line = next(line for line in output.splitlines() if " IN TXT " in line)
    name, _, strings = line.partition(" IN TXT ")
    return name.rstrip("."), strings.split('"')[1::2]


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_keygen_writes_a_private_key_and_prints_a_record_that_verifies(
    postwise_env: Path, tmp_path: Path, algorithm: str
) -> None:
    result = _keygen("example.com", "s2025", "--algorithm", algorithm, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    key_file = tmp_path / "example.com.s2025.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    output: str = result.stdout  # type: ignore[attr-defined]
    name, strings = _record_strings(output)
    assert name == "s2025._domainkey.example.com"
    assert all(len(s) <= 255 for s in strings)
    assert "".join(strings).startswith(f"v=DKIM1; k={algorithm}; p=")
    # the settings snippet is valid TOML naming the key file
    snippet = tomllib.loads(output.split("\n\n", 1)[1])
    entry = snippet["dkim_keys"][0]
    assert entry == {"domain": "example.com", "selector": "s2025", "key_file": str(key_file)}
    signed = CliRunner().invoke(
        app,
        ["dkim", "sign", "--domain", "example.com", "--selector", "s2025", "--key",
         str(key_file), "-"],
        input=MESSAGE,
    )  # fmt: skip
    assert signed.exit_code == 0, signed.output
    with ZoneServer([ZoneRecord(name, "TXT", strings)]) as server:
        resolver = Resolver([parse_server(server.address)], timeout=1.0)
        results = verify_dkim(signed.stdout_bytes, resolver)
    assert [r.result for r in results] == ["pass"]


def test_keygen_refuses_to_overwrite_a_key(postwise_env: Path, tmp_path: Path) -> None:
    assert _keygen("example.com", "s1", "--out", str(tmp_path)).exit_code == 0  # type: ignore[attr-defined]
    before = (tmp_path / "example.com.s1.key").read_bytes()
    again = _keygen("example.com", "s1", "--out", str(tmp_path))
    assert again.exit_code == 2  # type: ignore[attr-defined]
    assert "never overwritten" in again.output  # type: ignore[attr-defined]
    assert (tmp_path / "example.com.s1.key").read_bytes() == before


def test_keygen_defaults_to_the_data_folder(postwise_env: Path) -> None:
    result = _keygen("example.org", "a1", "--bits", "1024")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert (postwise_env / "dkim" / "example.org.a1.key").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exa mple.com", "s1"], "not a DNS name"),
        (["example.com", "s/1"], "not a DNS name"),
        (["example.com", "s1", "--algorithm", "dsa"], "rsa or ed25519"),
        (["example.com", "s1", "--bits", "512"], "1024 to 4096"),
    ],
)
def test_keygen_rejects_bad_arguments(
    postwise_env: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _keygen(*args, "--out", str(tmp_path))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in " ".join(result.output.split())  # type: ignore[attr-defined]
    assert not list(tmp_path.iterdir())


def test_sign_reports_an_unusable_key(postwise_env: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    message = tmp_path / "m.eml"
    message.write_bytes(MESSAGE)
    result = CliRunner().invoke(
        app,
        [
            "dkim",
            "sign",
            "--domain",
            "d.example",
            "--selector",
            "s",
            "--key",
            str(bad),
            str(message),
        ],
    )
    assert result.exit_code == 2
    assert "not a PEM RSA or Ed25519 private key" in " ".join(result.output.split())
