"""Policy loading: the shipped file, operator overrides layered key by key, and errors that
name the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from postwise.core.errors import PolicyError
from postwise.core.settings import Settings
from postwise.inbound.policy import load_policy, shipped_policy_path
from postwise.inbound.scanner import Scanner

RULE_GROUPS = {"ml", "headers", "urls", "phishing", "attachments", "content", "mime", "auth"}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_policy_is_consistent() -> None:
    policy = load_policy()
    assert shipped_policy_path().is_file()
    assert "+" not in policy.version
    t = policy.thresholds
    assert 0 < t["add_header"] <= t["quarantine"] <= t["reject"]
    assert {"ML_HAM", "ML_SPAM", "ML_PHISH", "URL_ANCHOR_MISMATCH", "MIME_TOO_DEEP"} <= set(
        policy.symbols
    )
    assert {entry.group for entry in policy.symbols.values()} <= RULE_GROUPS
    assert policy.symbols["ML_HAM"].weight < 0
    for check in ("urls", "headers", "attachments", "brands"):
        assert policy.check_options(check), check
    assert policy.check_options("no-such-check") == {}


def test_override_changes_one_weight_and_one_threshold(tmp_path: Path) -> None:
    shipped = load_policy()
    override = _write(
        tmp_path,
        "operator.toml",
        "[actions]\nadd_header = 4.5\n\n[symbols.URL_SHORTENER]\nweight = 4.0\n",
    )
    policy = load_policy(override)
    assert policy.version == f"{shipped.version}+operator.toml"
    assert policy.thresholds == {**shipped.thresholds, "add_header": 4.5}
    assert policy.symbols["URL_SHORTENER"].weight == 4.0
    # the rest of the entry and every other symbol come from the shipped file
    assert policy.symbols["URL_SHORTENER"].group == shipped.symbols["URL_SHORTENER"].group
    assert (
        policy.symbols["URL_SHORTENER"].description == shipped.symbols["URL_SHORTENER"].description
    )
    others = {k: v for k, v in policy.symbols.items() if k != "URL_SHORTENER"}
    assert others == {k: v for k, v in shipped.symbols.items() if k != "URL_SHORTENER"}
    assert policy.checks == shipped.checks


def test_override_adds_a_brand_and_a_symbol_without_losing_shipped_ones(tmp_path: Path) -> None:
    shipped = load_policy()
    override = _write(
        tmp_path,
        "site.toml",
        '[checks.brands]\nexamplebank = ["examplebank.com"]\n\n'
        '[symbols.LOCAL_RULE]\nweight = 1.25\ngroup = "headers"\n',
    )
    policy = load_policy(override)
    brands = policy.check_options("brands")
    assert brands["examplebank"] == ["examplebank.com"]
    assert brands["paypal"] == shipped.check_options("brands")["paypal"]
    assert policy.symbols["LOCAL_RULE"].weight == 1.25
    assert policy.symbols["LOCAL_RULE"].description == ""


def test_added_brand_is_enforced_by_the_url_check(
    tmp_path: Path, make_message: Callable[..., bytes]
) -> None:
    override = _write(
        tmp_path, "brands.toml", '[checks.brands]\nexamplebank = ["examplebank.com"]\n'
    )
    raw = make_message(text="Sign in: https://examplebank.com.login-check.net/\n")
    names = {s.name for s in Scanner(load_policy(override), None).scan(raw).symbols}
    assert "URL_BRAND_IN_SUBDOMAIN" in names
    assert "URL_BRAND_IN_SUBDOMAIN" not in {
        s.name for s in Scanner(load_policy(), None).scan(raw).symbols
    }


def test_override_changes_the_verdict(tmp_path: Path, make_message: Callable[..., bytes]) -> None:
    raw = make_message(text="Details: https://bit.ly/3xYzAbc\n")
    assert Scanner(load_policy(), None).scan(raw).action == "no_action"
    override = _write(
        tmp_path,
        "strict.toml",
        "[actions]\nadd_header = 4.5\n\n[symbols.URL_SHORTENER]\nweight = 5.0\n",
    )
    verdict = Scanner(load_policy(override), None).scan(raw)
    assert verdict.score == pytest.approx(5.0)
    assert verdict.action == "add_header"
    assert verdict.policy_version.endswith("+strict.toml")


def test_settings_policy_path_reaches_the_scanner(
    tmp_path: Path, test_model_dir: Path, postwise_env: Path
) -> None:
    override = _write(tmp_path, "ops-policy.toml", "[symbols.URL_SHORTENER]\nweight = 2.0\n")
    scanner = Scanner.from_settings(Settings(policy_path=override, model_path=test_model_dir))
    assert scanner.policy.version.endswith("+ops-policy.toml")
    assert scanner.policy.symbols["URL_SHORTENER"].weight == 2.0


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    bad = _write(tmp_path, "broken.toml", "[actions\nreject = 20\n")
    with pytest.raises(PolicyError, match="not valid TOML") as error:
        load_policy(bad)
    assert str(bad) in str(error.value)


def test_thresholds_out_of_order_name_the_file(tmp_path: Path) -> None:
    bad = _write(tmp_path, "upside-down.toml", "[actions]\nadd_header = 12.0\nquarantine = 8.0\n")
    with pytest.raises(PolicyError, match="thresholds must rise") as error:
        load_policy(bad)
    assert "upside-down.toml" in str(error.value)


def test_reject_below_quarantine_is_refused(tmp_path: Path) -> None:
    bad = _write(tmp_path, "low-reject.toml", "[actions]\nreject = 9.0\n")
    with pytest.raises(PolicyError, match=r"low-reject\.toml"):
        load_policy(bad)


@pytest.mark.parametrize(
    "text",
    [
        '[symbols.URL_SHORTENER]\nweight = "heavy"\n',
        '[symbols.NEW_RULE]\ngroup = "urls"\n',  # no weight
        '[actions]\nreject = "never"\n',
        '[policy]\nversion = ["a"]\n[actions]\nreject = []\n',
    ],
    ids=["weight-not-a-number", "weight-missing", "threshold-not-a-number", "threshold-a-list"],
)
def test_invalid_values_name_the_file(tmp_path: Path, text: str) -> None:
    bad = _write(tmp_path, "invalid-values.toml", text)
    with pytest.raises(PolicyError, match=r"invalid-values\.toml"):
        load_policy(bad)


def test_missing_override_file_is_a_policy_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(PolicyError, match="policy file not found") as error:
        load_policy(missing)
    assert str(missing) in str(error.value)


def test_policy_error_stops_scanner_construction(tmp_path: Path, test_model_dir: Path) -> None:
    bad = _write(tmp_path, "broken.toml", "this is = = not toml")
    with pytest.raises(PolicyError, match=r"broken\.toml"):
        Scanner.from_settings(
            Settings(policy_path=bad, model_path=test_model_dir, data_dir=tmp_path)
        )
