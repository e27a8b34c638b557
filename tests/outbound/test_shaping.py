"""Shaping as data: the shipped policy layered with an operator file, limits by domain, provider
(MX suffix) or default, automation rules firing on thresholds and expiring, and warm-up."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from postwise.core.db import EventRecord, open_database
from postwise.outbound.shaping import (
    UNLIMITED,
    AutomationAction,
    AutomationEngine,
    ShapingError,
    ShapingPolicy,
    load_shaping,
    parse_duration,
    parse_rate,
    shipped_shaping_path,
)

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
GOOGLE_MX = ["alt1.gmail-smtp-in.l.google.com.", "gmail-smtp-in.l.google.com"]
RATE_LIMITED = (
    "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your "
    "IP address. To protect our users from spam, mail has been temporarily rate limited."
)


def operator_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shaping.toml"
    path.write_text(text)
    return path


@pytest.fixture
def policy(tmp_path: Path) -> ShapingPolicy:
    return load_shaping(
        operator_file(
            tmp_path,
            """
[domain."bigcorp.example"]
max_connections = 2
messages_per_hour = 500

[[provider.google.automation]]
name = "google-rate-limited"
regex = '4\\.7\\.28'
threshold = "5/h"
action = "suspend_destination"
duration = "2h"

[[provider.google.automation]]
name = "google-slow"
regex = 'slow me down'
action = "slow_down"
factor = 0.5
duration = "30m"

[[provider.yahoo.automation]]
name = "yahoo-move"
regex = '\\[TSS04\\]'
threshold = "2/h"
action = "move_pool"
to_pool = "warm"
duration = "1d"

[pool.warm]
addresses = [{ ip = "192.0.2.10", weight = 2 }]

[pool.new]
addresses = [
  { ip = "192.0.2.20", weight = 1, warmup = "default" },
  { ip = "192.0.2.21", warmup = "formula" },
]

[warmup.formula]
start = 100
growth = 2
cap = 1000
""",
        )
    )


# ---------------------------------------------------------------- loading and limits


def test_shipped_policy_loads_with_the_big_providers() -> None:
    policy = load_shaping(None)
    assert {"google", "microsoft", "yahoo", "apple"} <= set(policy.providers)
    assert shipped_shaping_path().name == "shaping.toml"
    assert policy.rules_for("provider:google")


def test_two_domains_on_google_mx_share_one_budget(policy: ShapingPolicy) -> None:
    gmail = policy.limits_for("gmail.com", GOOGLE_MX)
    workspace = policy.limits_for("Startup.Example.", ["ASPMX.L.GOOGLE.COM"])
    assert gmail.budget_key == workspace.budget_key == "provider:google"
    assert gmail.max_connections == policy.providers["google"].limits["max_connections"]


def test_microsoft_and_default_and_suffix_boundaries(policy: ShapingPolicy) -> None:
    ms = policy.limits_for("contoso.example", ["contoso-example.mail.protection.outlook.com"])
    assert ms.budget_key == "provider:microsoft"
    # a host merely ending in the same letters is not Google
    other = policy.limits_for("x.example", ["mx.notgoogle.com"])
    assert other.budget_key == "domain:x.example" and other.source == "default"
    assert other.messages_per_minute is None  # 0 in [default] means no limit


def test_domain_override_wins_key_by_key(policy: ShapingPolicy) -> None:
    limits = policy.limits_for("bigcorp.example", GOOGLE_MX)
    assert limits.budget_key == "domain:bigcorp.example"
    assert limits.max_connections == 2
    assert limits.messages_per_hour == 500
    # keys the domain does not set come from its provider
    assert limits.max_messages_per_connection == 100
    assert limits.messages_per_minute == 1000


def test_operator_layering_keeps_the_rest_of_the_shipped_file(tmp_path: Path) -> None:
    path = operator_file(tmp_path, "[provider.google]\nmax_connections = 3\n")
    policy = load_shaping(path)
    assert policy.providers["google"].limits["max_connections"] == 3
    assert policy.providers["google"].limits["messages_per_hour"] == 30000
    assert policy.providers["google"].mx_suffixes == (".google.com", ".googlemail.com")
    assert policy.version.endswith("+shaping.toml")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[default]\nmax_connections = 'ten'\n", "default.max_connections", "whole number"),
        ("[default]\nmax_connections = 0\n", "default.max_connections", "at least 1"),
        ("[provider.acme]\nmx_suffixes = 'x'\n", "provider.acme.mx_suffixes", "list"),
        (
            "[[automation]]\nregex = '('\naction = 'slow_down'\nfactor = 0.5\nduration = '1h'\n",
            "automation[0].regex",
            "regular expression",
        ),
        (
            "[[automation]]\nregex = 'x'\naction = 'explode'\nduration = '1h'\n",
            "automation[0].action",
            "not one of",
        ),
        (
            "[[automation]]\nregex = 'x'\naction = 'suspend_pool'\nduration = '2 weeks'\n",
            "automation[0].duration",
            "unknown unit",
        ),
        (
            "[[automation]]\nregex = 'x'\naction = 'suspend_pool'\nduration = '1h'\n"
            "threshold = 'often'\n",
            "automation[0].threshold",
            "not a rate",
        ),
        (
            "[[automation]]\nregex = 'x'\naction = 'slow_down'\nduration = '1h'\n",
            "automation[0].factor",
            "between 0 and 1",
        ),
        (
            "[[automation]]\nregex = 'x'\naction = 'move_pool'\nto_pool = 'nowhere'\n"
            "duration = '1h'\n",
            "automation[0].to_pool",
            "not a [pool.<name>]",
        ),
        (
            '[domain."a.example"]\nmessages_per_hour = -1\n',
            'domain."a.example".messages_per_hour',
            "whole number",
        ),
        (
            "[pool.p]\naddresses = [{ ip = '192.0.2.1', warmup = 'nope' }]\n",
            "pool.p.addresses[0].warmup",
            "not a [warmup.<name>]",
        ),
        ("[warmup.w]\ndays = []\n", "warmup.w.days", "non-empty list"),
        ("[provider.google]\nmax_conections = 3\n", "provider.google.max_conections", "unknown"),
    ],
)
def test_malformed_operator_file_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = operator_file(tmp_path, text)
    with pytest.raises(ShapingError) as raised:
        load_shaping(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_missing_and_invalid_toml_files(tmp_path: Path) -> None:
    with pytest.raises(ShapingError, match="not found"):
        load_shaping(tmp_path / "absent.toml")
    with pytest.raises(ShapingError, match="not valid TOML"):
        load_shaping(operator_file(tmp_path, "[default\n"))


# ---------------------------------------------------------------- durations and rates


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), (" 10 min ", 600), ("3hours", 10800)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [("100/min", 100, 60), ("5/h", 5, 3600), ("3/5m", 3, 300), ("1000/d", 1000, 86400)],
)
def test_parse_rate(text: str, count: int, seconds: int) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.per) == (count, timedelta(seconds=seconds))


@pytest.mark.parametrize("text", ["", "0s", "5", "h", "-1h", "1w", "400d", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ShapingError, match=repr(text).replace("(", r"\(")):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "5", "0/h", "5/", "5/0h", "5/fortnight", "x/h"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(ShapingError):
        parse_rate(text)


@given(st.text(max_size=30))
def test_parsers_raise_only_shaping_error(text: str) -> None:
    for parse in (parse_duration, parse_rate):
        with contextlib.suppress(ShapingError):
            parse(text)


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(["s", "m", "h", "d", "min"]))
def test_parsers_on_numbers_raise_only_shaping_error(number: int, unit: str) -> None:
    for text in (f"{number}{unit}", f"{number}/{unit}", f"1/{number}{unit}"):
        for parse in (parse_duration, parse_rate):
            with contextlib.suppress(ShapingError):
                parse(text)


# ---------------------------------------------------------------- automation


def test_threshold_fires_on_the_fifth_match_within_an_hour(policy: ShapingPolicy) -> None:
    engine = AutomationEngine(policy)
    for minute in range(4):
        assert (
            engine.observe(
                "provider:google", "default", RATE_LIMITED, T0 + timedelta(minutes=minute)
            )
            == []
        )
    fired = engine.observe("provider:google", "default", RATE_LIMITED, T0 + timedelta(minutes=30))
    assert [a.action for a in fired] == ["suspend_destination"]
    action = fired[0]
    assert action.rule == "google-rate-limited"
    assert (action.count, action.window) == (5, timedelta(hours=1))
    assert action.expires_at == T0 + timedelta(minutes=30, hours=2)
    assert "4.7.28" in action.reason


def test_four_matches_or_matches_spread_over_more_than_an_hour_do_not_fire(
    policy: ShapingPolicy,
) -> None:
    engine = AutomationEngine(policy)
    for step in range(8):
        # one every 20 minutes: never five inside one hour
        when = T0 + timedelta(minutes=20 * step)
        assert engine.observe("provider:google", "default", RATE_LIMITED, when) == []
    other = AutomationEngine(policy)
    for _ in range(4):
        assert other.observe("provider:google", "default", RATE_LIMITED, T0) == []
    assert other.observe("provider:google", "default", "250 2.0.0 OK", T0) == []


def test_suspension_lasts_its_duration_then_expires(policy: ShapingPolicy) -> None:
    engine = AutomationEngine(policy)
    for _ in range(5):
        engine.observe("provider:google", "default", RATE_LIMITED, T0)
    during = engine.effective_limits("provider:google", "other-pool", T0 + timedelta(hours=1))
    assert during.suspended_until == T0 + timedelta(hours=2)
    # no double firing while the action is in force
    assert engine.observe("provider:google", "default", RATE_LIMITED, T0 + timedelta(hours=1)) == []
    after = T0 + timedelta(hours=2)
    assert engine.active_actions(after) == []
    assert engine.effective_limits("provider:google", "default", after).suspended_until is None


def test_slow_down_halves_the_rates(policy: ShapingPolicy) -> None:
    engine = AutomationEngine(policy)
    base = engine.effective_limits("provider:google", "default", T0)
    [action] = engine.observe("provider:google", "default", "451 slow me down please", T0)
    assert action.action == "slow_down" and action.count == 1
    slowed = engine.effective_limits("provider:google", "default", T0 + timedelta(minutes=10))
    assert slowed.slow_down_factor == 0.5
    assert slowed.messages_per_minute == base.messages_per_minute // 2  # type: ignore[operator]
    assert slowed.messages_per_hour == base.messages_per_hour // 2  # type: ignore[operator]
    assert slowed.max_connections == base.max_connections // 2
    # another pool and another budget are untouched
    assert engine.effective_limits("provider:google", "bulk", T0).slow_down_factor == 1.0
    assert engine.effective_limits("provider:yahoo", "default", T0).slow_down_factor == 1.0
    later = engine.effective_limits("provider:google", "default", T0 + timedelta(minutes=30))
    assert later == base


def test_move_pool_names_the_target(policy: ShapingPolicy) -> None:
    engine = AutomationEngine(policy)
    reply = "421 4.7.0 [TSS04] Messages from 192.0.2.20 temporarily deferred"
    assert engine.observe("provider:yahoo", "new", reply, T0) == []
    [action] = engine.observe("provider:yahoo", "new", reply, T0 + timedelta(minutes=5))
    assert (action.action, action.to_pool) == ("move_pool", "warm")
    limits = engine.effective_limits("provider:yahoo", "new", T0 + timedelta(hours=1))
    assert limits.route_to_pool == "warm"
    assert limits.suspended_until is None


def test_suspend_pool_affects_only_that_pool() -> None:
    policy = load_shaping(None)
    engine = AutomationEngine(policy)
    reply = "550 5.7.606 Access denied, banned sending IP [192.0.2.20]"
    fired: list[AutomationAction] = []
    for _ in range(3):
        fired += engine.observe("provider:microsoft", "new", reply, T0)
    assert [a.action for a in fired] == ["suspend_pool"]
    assert engine.effective_limits("provider:microsoft", "new", T0).suspended_until is not None
    assert engine.effective_limits("provider:microsoft", "warm", T0).suspended_until is None


def test_actions_are_appended_as_events_once(policy: ShapingPolicy, tmp_path: Path) -> None:
    from postwise.outbound.shaping import event_recorder

    database = open_database(f"sqlite:///{tmp_path / 'events.db'}")
    record = event_recorder(database)
    engine = AutomationEngine(policy, on_action=record)
    fired: list[AutomationAction] = []
    for _ in range(5):
        fired += engine.observe("provider:google", "default", RATE_LIMITED, T0)
    record(fired[0])  # a replay stores nothing new
    with database.connect() as connection:
        rows = connection.execute(
            select(EventRecord.type, EventRecord.payload).where(
                EventRecord.type == "shaping_action"
            )
        ).all()
    assert len(rows) == 1
    payload = rows[0].payload
    assert payload["rule"] == "google-rate-limited"
    assert payload["action"] == "suspend_destination"
    assert (payload["count"], payload["window_seconds"]) == (5, 3600)
    assert "4.7.28" in payload["reason"]
    assert payload["expires_at"] == (T0 + timedelta(hours=2)).isoformat()


def test_actions_in_force_survive_a_restart(policy: ShapingPolicy, tmp_path: Path) -> None:
    from postwise.outbound.shaping import actions_in_force, event_recorder

    database = open_database(f"sqlite:///{tmp_path / 'events.db'}")
    before = AutomationEngine(policy, on_action=event_recorder(database))
    for _ in range(5):
        before.observe("provider:google", "default", RATE_LIMITED, T0)
    # A new process: the suspension is read back and still applies until it expires.
    later = T0 + timedelta(hours=1)
    restored = actions_in_force(database, later)
    assert [a.rule for a in restored] == ["google-rate-limited"]
    after = AutomationEngine(policy)
    after.restore(restored)
    after.restore(restored)  # restoring twice keeps one
    assert len(after.active_actions(later)) == 1
    limits = after.effective_limits("provider:google", "default", later)
    assert limits.suspended_until == T0 + timedelta(hours=2)
    assert actions_in_force(database, T0 + timedelta(hours=3)) == []


# ---------------------------------------------------------------- warm-up


def test_warmup_from_a_list_and_a_formula(policy: ShapingPolicy) -> None:
    days = policy.warmups["default"].days
    assert policy.allowed_today("192.0.2.20", 0) == days[0] == 50
    assert policy.allowed_today("192.0.2.20", 3) == days[3]
    assert policy.allowed_today("192.0.2.20", 10_000) == days[-1]
    assert policy.allowed_today("192.0.2.20", -1) == 0
    assert [policy.allowed_today("192.0.2.21", d) for d in range(5)] == [100, 200, 400, 800, 1000]
    assert policy.allowed_today("192.0.2.21", 10**6) == 1000
    assert policy.allowed_today("192.0.2.10", 0) == UNLIMITED
    with pytest.raises(ShapingError, match="not an address"):
        policy.allowed_today("198.51.100.1", 0)
