"""``postwise shaping show|check``: the effective policy for people and machines, the limits for
one destination, and an operator file validated with exit 2 naming the bad key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.settings import get_settings

pytestmark = pytest.mark.usefixtures("postwise_env")


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    get_settings.cache_clear()
    return CliRunner().invoke(
        app, list(args), env={"COLUMNS": "240", "NO_COLOR": "1", **(env or {})}
    )


def test_show_prints_the_providers() -> None:
    result = invoke("shaping", "show")
    assert result.exit_code == 0, result.output
    assert "provider:google" in result.output
    assert ".protection.outlook.com" in result.output


def test_show_json_for_one_destination() -> None:
    result = invoke(
        "shaping", "show", "--domain", "gmail.com", "--mx", "gmail-smtp-in.l.google.com", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["budget_key"] == "provider:google"
    assert any(rule["name"] == "google-rate-limited" for rule in data["automation"])


def test_show_uses_the_operator_file_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[domain."bigcorp.example"]\nmax_connections = 2\n')
    result = invoke(
        "shaping",
        "show",
        "--json",
        env={"POSTWISE_SHAPING_POLICY_PATH": str(path)},
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["domains"]["bigcorp.example"]["max_connections"] == 2
    assert data["version"].endswith("+mine.toml")


def test_check_accepts_a_good_file_and_rejects_a_bad_one(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[provider.google]\nmessages_per_hour = 5000\n")
    result = invoke("shaping", "check", str(good))
    assert result.exit_code == 0, result.output
    assert "ok" in result.output

    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[[provider.google.automation]]\nregex = 'x'\naction = 'slow_down'\nduration = 'soon'\n"
    )
    result = invoke("shaping", "check", str(bad))
    assert result.exit_code == 2
    assert "provider.google.automation[0].duration" in result.output
