"""Reputation monitor: rates per destination, pool and sending domain over sliding windows, the
rules that fire on absolute limits and spikes, the actions they impose and their expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.outbound.reputation import (
    ReputationError,
    ReputationMonitor,
    ReputationPolicy,
    load_reputation,
    shipped_reputation_path,
)
from postwise.outbound.shaping import (
    AutomationAction,
    AutomationEngine,
    load_shaping,
)

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
GOOGLE = "provider:google"


def monitor(policy: ReputationPolicy | None = None) -> tuple[ReputationMonitor, AutomationEngine]:
    seen: list[AutomationAction] = []
    engine = AutomationEngine(load_shaping(), on_action=seen.append)
    return ReputationMonitor(policy or load_reputation(), engine), engine


def send(
    mon: ReputationMonitor,
    outcome: Any,
    times: int,
    at: datetime,
    *,
    key: str = GOOGLE,
    pool: str = "default",
    domain: str = "news.example.com",
    hard: bool = False,
    spread: timedelta = timedelta(0),
) -> list[AutomationAction]:
    fired: list[AutomationAction] = []
    for i in range(times):
        now = at + spread * i / max(times, 1)
        fired += mon.observe(
            outcome, provider_key=key, pool=pool, sending_domain=domain, now=now, hard=hard
        )
    return fired


def operator(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reputation.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- absolute limits


def test_complaint_rate_above_gmails_line_fires_with_its_figures() -> None:
    mon, engine = monitor()
    assert send(mon, "delivered", 2000, T0, spread=timedelta(minutes=30)) == []
    now = T0 + timedelta(minutes=31)
    fired = send(mon, "complaint", 7, now)
    by_rule = {(a.rule, a.budget_key): a for a in fired}
    action = by_rule[("reputation:complaint-rate", GOOGLE)]
    assert action.action == "suspend_pool" and action.pool == "default"
    assert action.count == 7 and action.window == timedelta(hours=1)
    assert action.expires_at == now + timedelta(hours=4)
    # The reason states the rate, the count, the volume, the threshold and the baseline.
    assert "complaint rate 0.350%" in action.reason
    assert "7 complaints / 2000 delivered over 1h" in action.reason
    assert "at provider:google" in action.reason
    assert "above the limit 0.300%" in action.reason
    assert "baseline" in action.reason
    limits = engine.effective_limits(GOOGLE, "default", now)
    assert limits.suspended_until == now + timedelta(hours=4)
    # The same rate elsewhere is judged against the generic 0.5% line: no destination action.
    assert engine.effective_limits(GOOGLE, "other", now).suspended_until is None


def test_the_generic_complaint_line_is_laxer_than_gmails() -> None:
    mon, _ = monitor()
    key = "domain:smallisp.example"
    send(mon, "delivered", 2000, T0, key=key, spread=timedelta(minutes=30))
    fired = send(mon, "complaint", 7, T0 + timedelta(minutes=31), key=key)
    assert not [a for a in fired if a.budget_key == key]


def test_a_few_complaints_at_low_volume_do_not_fire() -> None:
    mon, engine = monitor()
    send(mon, "delivered", 50, T0, spread=timedelta(minutes=10))
    fired = send(mon, "complaint", 2, T0 + timedelta(minutes=11))
    assert fired == []
    assert engine.active_actions(T0 + timedelta(minutes=11)) == []


def test_pool_problem_suspends_or_slows_the_pool_for_every_destination() -> None:
    mon, engine = monitor()
    # Complaints spread over many destinations: only the pool and sending domain see the rate.
    for i in range(20):
        send(mon, "delivered", 100, T0, key=f"domain:d{i}.example", pool="bulk")
    fired = send(
        mon, "complaint", 12, T0 + timedelta(minutes=5), key="domain:x.example", pool="bulk"
    )
    pool_actions = [a for a in fired if a.budget_key == "*"]
    assert [(a.rule, a.action, a.pool, a.factor) for a in pool_actions] == [
        ("reputation:complaint-rate", "slow_down", "bulk", 0.5)
    ]
    now = T0 + timedelta(minutes=6)
    # The engine honours the "*" budget key for any destination, for that pool only.
    assert engine.effective_limits("provider:yahoo", "bulk", now).slow_down_factor == 0.5
    assert engine.effective_limits("provider:yahoo", "default", now).slow_down_factor == 1.0
    assert mon.sending_domain_factor("News.Example.com.", now) == 0.5


def test_effective_limits_honours_a_pool_wide_suspension() -> None:
    engine = AutomationEngine(load_shaping())
    engine.impose(
        AutomationAction(
            rule="reputation:test",
            action="suspend_pool",
            budget_key="*",
            pool="bulk",
            reason="test",
            count=1,
            window=timedelta(minutes=15),
            started_at=T0,
            expires_at=T0 + timedelta(hours=1),
        )
    )
    assert engine.effective_limits(GOOGLE, "bulk", T0).suspended_until == T0 + timedelta(hours=1)
    assert engine.effective_limits("domain:a.example", "bulk", T0).suspended_until is not None
    assert engine.effective_limits(GOOGLE, "default", T0).suspended_until is None
    assert engine.effective_limits(GOOGLE, "bulk", T0 + timedelta(hours=1)).suspended_until is None


def test_hard_bounce_rate_suspends_the_sending_domain_until_it_expires() -> None:
    mon, engine = monitor()
    send(mon, "delivered", 300, T0, domain="list.example", spread=timedelta(minutes=5))
    now = T0 + timedelta(minutes=6)
    fired = send(mon, "bounced", 30, now, domain="list.example", hard=True)
    sending = [a for a in fired if a.budget_key == "sending:list.example"]
    assert [(a.rule, a.action) for a in sending] == [
        ("reputation:hard-bounce-rate", "suspend_destination")
    ]
    assert "hard bounce rate" in sending[0].reason
    assert mon.suspended_sending_domains(now) == {"list.example": now + timedelta(hours=2)}
    # Actions expire by themselves.
    later = now + timedelta(hours=2)
    assert mon.suspended_sending_domains(later) == {}
    assert engine.effective_limits(GOOGLE, "default", later) == engine.policy.limits_for_key(GOOGLE)
    assert not [a for a in engine.active_actions(later) if a.rule.startswith("reputation:")]


def test_an_action_in_force_is_not_imposed_twice_and_fires_again_after_expiry() -> None:
    mon, _ = monitor()
    send(mon, "delivered", 2000, T0, spread=timedelta(minutes=30))
    first = send(mon, "complaint", 7, T0 + timedelta(minutes=31))
    assert any(a.rule == "reputation:complaint-rate" and a.budget_key == GOOGLE for a in first)
    again = send(mon, "complaint", 5, T0 + timedelta(minutes=40))
    assert not [a for a in again if a.budget_key == GOOGLE and a.rule.endswith("complaint-rate")]
    # Four hours later the window has moved on: new evidence is needed to fire again.
    late = T0 + timedelta(hours=5)
    assert send(mon, "complaint", 3, late) == []
    send(mon, "delivered", 2000, late, spread=timedelta(minutes=30))
    refired = send(mon, "complaint", 8, late + timedelta(minutes=31))
    assert any(a.budget_key == GOOGLE and a.rule.endswith("complaint-rate") for a in refired)


# ---------------------------------------------------------------- spikes


def clean_baseline(mon: ReputationMonitor, **kwargs: Any) -> datetime:
    """Twelve hours of healthy traffic: 100 deliveries and 1 bounce every 10 minutes."""
    now = T0
    for _ in range(72):
        send(mon, "delivered", 100, now, **kwargs)
        send(mon, "bounced", 1, now, **kwargs)
        now += timedelta(minutes=10)
    return now


def test_a_bounce_spike_against_a_clean_baseline_fires() -> None:
    mon, _ = monitor()
    now = clean_baseline(mon)
    send(mon, "delivered", 200, now, spread=timedelta(minutes=5))
    fired = send(mon, "bounced", 12, now + timedelta(minutes=6))
    spikes = [a for a in fired if a.rule == "reputation:bounce-spike" and a.budget_key == GOOGLE]
    assert len(spikes) == 1
    reason = spikes[0].reason
    assert "is a spike" in reason and "z=" in reason and "threshold 3x and z>=4" in reason
    assert "baseline 0.990% (72 / 7272 over 23h45m)" in reason


def test_a_small_bounce_bump_is_not_a_spike() -> None:
    mon, _ = monitor()
    now = clean_baseline(mon)
    send(mon, "delivered", 200, now, spread=timedelta(minutes=5))
    # 4 bounces in 204: twice the baseline rate, below min_events and not improbable enough.
    fired = send(mon, "bounced", 4, now + timedelta(minutes=6))
    assert not [a for a in fired if a.rule == "reputation:bounce-spike"]


def test_steady_high_deferral_rate_equal_to_baseline_is_not_a_spike() -> None:
    mon, _ = monitor()
    fired: list[AutomationAction] = []
    now = T0
    for _ in range(24 * 6):  # a day at a steady 20% deferral rate (below the 30% limit)
        fired += send(mon, "delivered", 80, now)
        fired += send(mon, "deferred", 20, now)
        now += timedelta(minutes=10)
    assert not [a for a in fired if "deferral" in a.rule]
    snap = mon.snapshot(now)
    rates = snap["provider"][GOOGLE]["rates"]["deferral"]
    assert rates["baseline_rate"] == pytest.approx(0.2)


# ---------------------------------------------------------------- snapshot and memory


def test_snapshot_gives_rates_per_dimension_and_none_at_zero_volume() -> None:
    mon, _ = monitor()
    empty = mon.snapshot(T0)
    assert empty["provider"] == {} and empty["pool"] == {} and empty["actions"] == []
    send(mon, "delivered", 9, T0, pool="bulk", domain="News.Example.COM.")
    send(mon, "bounced", 1, T0, pool="bulk", domain="news.example.com", hard=True)
    mon.observe("complaint", provider_key=GOOGLE, pool="bulk", sending_domain="a.example", now=T0)
    snap = mon.snapshot(T0 + timedelta(minutes=1))
    google = snap["provider"][GOOGLE]
    assert (google["delivered"], google["bounced"], google["hard_bounced"]) == (9, 1, 1)
    assert google["rates"]["bounce"]["rate"] == pytest.approx(0.1)
    assert google["rates"]["deferral"]["volume"] == 10
    assert snap["pool"]["bulk"]["complaints"] == 1
    assert snap["sending_domain"]["news.example.com"]["delivered"] == 9
    assert snap["sending_domain"]["a.example"]["rates"]["complaint"]["rate"] is None
    assert snap["short_window_seconds"] == 900


def test_old_buckets_and_idle_subjects_are_dropped() -> None:
    mon, _ = monitor()
    for i in range(50):
        send(mon, "delivered", 1, T0 + timedelta(minutes=i), key=f"domain:d{i}.example")
    assert len(mon.snapshot(T0 + timedelta(hours=1))["provider"]) == 50
    later = T0 + timedelta(days=2)
    send(mon, "delivered", 1, later)
    snap = mon.snapshot(later)
    assert list(snap["provider"]) == [GOOGLE]
    assert snap["provider"][GOOGLE]["rates"]["deferral"]["baseline_volume"] == 0
    # The short window forgets too.
    assert mon.snapshot(later + timedelta(minutes=20))["provider"][GOOGLE]["delivered"] == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["delivered", "deferred", "bounced", "complaint"]),
            st.integers(min_value=0, max_value=40),  # minutes after the previous event
        ),
        max_size=60,
    )
)
def test_window_counts_match_a_brute_force_count(events: list[tuple[str, int]]) -> None:
    mon, _ = monitor()
    now = T0
    seen: list[tuple[datetime, str]] = []
    for outcome, gap in events:
        now += timedelta(minutes=gap)
        mon.observe(outcome, provider_key=GOOGLE, pool="p", sending_domain="s.example", now=now)  # type: ignore[arg-type]
        seen.append((now, outcome))
    snap = mon.snapshot(now)
    if not seen:
        assert snap["provider"] == {}
        return
    # The short window is the 15 one-minute buckets ending with the current one.
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=14)
    recent = [o for t, o in seen if t >= start]
    counts = snap["provider"][GOOGLE]
    assert counts["delivered"] == recent.count("delivered")
    assert counts["deferred"] == recent.count("deferred")
    assert counts["bounced"] == recent.count("bounced")
    assert counts["complaints"] == recent.count("complaint")
    assert snap["pool"]["p"]["delivered"] == recent.count("delivered")


# ---------------------------------------------------------------- odd inputs


def test_odd_inputs_give_clear_errors() -> None:
    mon, _ = monitor()
    kwargs: dict[str, Any] = {"provider_key": GOOGLE, "pool": "p", "sending_domain": "s", "now": T0}
    with pytest.raises(ValueError, match="'opened' is not an outcome"):
        mon.observe("opened", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hard=True applies to 'bounced' only"):
        mon.observe("delivered", hard=True, **kwargs)
    with pytest.raises(ValueError, match="pool must be a non-empty string"):
        mon.observe("delivered", **{**kwargs, "pool": " "})
    with pytest.raises(ValueError, match="not a budget key"):
        mon.observe("delivered", **{**kwargs, "provider_key": "*"})
    with pytest.raises(TypeError, match="now must be a datetime"):
        mon.observe("delivered", **{**kwargs, "now": 12.0})


def test_a_late_event_counts_in_the_newest_bucket() -> None:
    mon, _ = monitor()
    send(mon, "delivered", 1, T0 + timedelta(minutes=30))
    send(mon, "bounced", 1, T0)  # a clock step back
    assert mon.snapshot(T0 + timedelta(minutes=30))["provider"][GOOGLE]["bounced"] == 1


# ---------------------------------------------------------------- the policy file


def test_shipped_policy_loads_with_provider_overrides() -> None:
    policy = load_reputation()
    assert shipped_reputation_path().name == "reputation.toml"
    assert policy.rules["complaint-rate"].rate == 0.005
    google = {r.name: r for r in policy.rules_for(GOOGLE)}
    assert google["complaint-rate"].rate == 0.003
    assert google["complaint-rate"].min_volume == 1000
    assert {r.name for r in policy.rules_for("pool:bulk")} == set(policy.rules)
    assert policy.to_json()["rules"]["bounce-spike"]["min_ratio"] == 3.0


def test_operator_file_layers_key_by_key(tmp_path: Path) -> None:
    path = operator(
        tmp_path,
        """
[rule.complaint-rate]
rate = 0.001

[override."pool:bulk".deferral-rate]
on_pool = { action = "suspend_pool", duration = "30m" }
""",
    )
    policy = load_reputation(path)
    assert policy.version == "1+reputation.toml"
    assert policy.rules["complaint-rate"].rate == 0.001
    assert policy.rules["complaint-rate"].window == timedelta(hours=1)
    # A shipped override still wins for its subject.
    assert {r.name: r for r in policy.rules_for(GOOGLE)}["complaint-rate"].rate == 0.003
    bulk = {r.name: r for r in policy.rules_for("pool:bulk")}["deferral-rate"]
    assert bulk.responses["pool"].action == "suspend_pool"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[rule.complaint-rate]\nrate = 3\n", "rule.complaint-rate.rate", "at most 1"),
        ("[rule.complaint-rate]\nrat = 0.1\n", "rule.complaint-rate.rat", "unknown key"),
        ("[rule.bounce-spike]\nmin_z = -1\n", "rule.bounce-spike.min_z", "above 0"),
        ("[rule.x]\nmetric = 'opens'\n", "rule.x.metric", "'opens' is not one of"),
        ("[rule.x]\nmetric = 'bounce'\ntest = 'guess'\n", "rule.x.test", "is not one of"),
        ("[rule.bounce-spike]\nwindow = 'soon'\n", "rule.bounce-spike.window", "not a duration"),
        ("[rule.bounce-spike]\nwindow = '2d'\n", "rule.bounce-spike.window", "baseline window"),
        (
            "[rule.deferral-rate]\non_pool = { action = 'suspend_destination' }\n",
            "rule.deferral-rate.on_pool.action",
            "is not one of",
        ),
        (
            "[rule.deferral-rate]\non_pool = { action = 'slow_down', duration = '1h' }\n",
            "rule.deferral-rate.on_pool.factor",
            "expected a number",
        ),
        ("[override.gmail.complaint-rate]\nrate = 0.1\n", "override.gmail", "a subject is"),
        (
            '[override."provider:google".nope]\nrate = 0.1\n',
            'override."provider:google".nope',
            "no [rule.nope]",
        ),
        (
            '[override."provider:google".complaint-rate]\ntest = "spike"\n',
            'override."provider:google".complaint-rate.test',
            "cannot change",
        ),
        ("[reputation]\nbucket = '2h'\n", "reputation.short_window", "bucket <= short_window"),
        ("[reputaton]\n", "reputaton", "unknown key"),
    ],
)
def test_policy_errors_name_the_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = operator(tmp_path, text)
    with pytest.raises(ReputationError) as error:
        load_reputation(path)
    message = str(error.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert problem in message


def test_missing_or_broken_operator_file(tmp_path: Path) -> None:
    with pytest.raises(ReputationError, match="reputation file not found"):
        load_reputation(tmp_path / "absent.toml")
    with pytest.raises(ReputationError, match="not valid TOML"):
        load_reputation(operator(tmp_path, "[rule\n"))


def test_a_move_to_an_unknown_pool_is_refused(tmp_path: Path) -> None:
    path = operator(
        tmp_path,
        "[rule.bounce-spike]\non_pool = { action = 'move_pool', to_pool = 'spare', "
        "duration = '1h' }\n",
    )
    with pytest.raises(ReputationError, match=r"'spare' is not a \[pool\.<name>\]"):
        monitor(load_reputation(path))
