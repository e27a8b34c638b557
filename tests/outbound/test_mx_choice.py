"""Choosing among MX hosts: the preference order of RFC 5321 is never broken; within a
preference the learned success rate and latency decide, with exploration and decay."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.outbound.mx_choice import MxSelector

PAIR = [(10, "mx1.example.net"), (10, "mx2.example.net")]


def firsts(selector: MxSelector, mx: list[tuple[int, str]], n: int, now: float) -> Counter[str]:
    return Counter(selector.order(mx, now=now)[0].host for _ in range(n))


hosts = st.from_regex(r"[a-z]{1,6}\.example\.(net|com)", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    mx=st.lists(st.tuples(st.integers(0, 65535), hosts), max_size=12),
    learned=st.lists(
        st.tuples(hosts, st.booleans(), st.floats(0, 60, allow_nan=False)), max_size=30
    ),
    seed=st.integers(0, 2**32),
)
def test_preference_order_is_never_broken(
    mx: list[tuple[int, str]], learned: list[tuple[str, bool, float]], seed: int
) -> None:
    selector = MxSelector(seed=seed, explore=0.3)
    for i, (host, ok, latency) in enumerate(learned):
        selector.record(host, ok, latency, now=float(i))
    chosen = selector.order(mx, now=100.0)
    preferences = [c.preference for c in chosen]
    assert preferences == sorted(preferences)
    # Every host is there once, at its lowest preference.
    lowest: dict[str, int] = {}
    for preference, host in mx:
        lowest[host] = min(lowest.get(host, preference), preference)
    assert {c.host: c.preference for c in chosen} == lowest
    assert len(chosen) == len(lowest)


def test_the_better_host_gets_most_traffic_after_learning() -> None:
    selector = MxSelector(seed=1)
    for i in range(100):
        selector.record("mx1.example.net", True, 0.5, now=float(i))
        selector.record("mx2.example.net", i % 2 == 0, 0.5, now=float(i))
    counts = firsts(selector, PAIR, 1000, now=100.0)
    assert counts["mx1.example.net"] > 900
    choice = next(c for c in selector.order(PAIR, now=100.0) if c.host == "mx2.example.net")
    assert choice.successes == pytest.approx(50, rel=0.05)
    assert choice.failures == pytest.approx(50, rel=0.05)
    assert choice.mean_latency == pytest.approx(0.5)
    assert 0 <= choice.sampled_success <= 1 and choice.score <= choice.sampled_success


def test_latency_breaks_a_tie_in_success() -> None:
    selector = MxSelector(seed=2)
    for i in range(100):
        selector.record("mx1.example.net", True, 20.0, now=float(i))
        selector.record("mx2.example.net", True, 0.2, now=float(i))
    counts = firsts(selector, PAIR, 500, now=100.0)
    assert counts["mx2.example.net"] > 450


def test_a_failing_host_gets_less_traffic_yet_is_still_explored() -> None:
    selector = MxSelector(seed=3)
    for i in range(300):
        selector.record("mx1.example.net", True, 1.0, now=float(i))
        selector.record("mx2.example.net", False, 30.0, now=float(i))
    counts = firsts(selector, PAIR, 2000, now=300.0)
    assert counts["mx1.example.net"] > 1800
    assert counts["mx2.example.net"] > 0
    orders = [selector.order(PAIR, now=300.0) for _ in range(400)]
    assert any(order[0].explored for order in orders)


def test_a_recovered_host_gets_traffic_back_as_evidence_decays() -> None:
    selector = MxSelector(seed=4, half_life=600.0)
    for i in range(200):
        selector.record("mx1.example.net", True, 1.0, now=float(i))
        selector.record("mx2.example.net", False, 1.0, now=float(i))
    assert firsts(selector, PAIR, 500, now=200.0)["mx2.example.net"] < 50
    # Ten half-lives later the old failures weigh almost nothing; mx2 now succeeds.
    later = 200.0 + 6000.0
    for i in range(20):
        selector.record("mx2.example.net", True, 1.0, now=later + i)
    counts = firsts(selector, PAIR, 1000, now=later + 20)
    assert counts["mx2.example.net"] > 300
    snap = selector.snapshot(now=later + 20)
    assert snap["mx2.example.net"]["failures"] < 1
    assert snap["mx2.example.net"]["expected_success"] > 0.8


def test_seeding_makes_orders_reproducible() -> None:
    mx = [(5, "a.example"), (5, "b.example"), (5, "c.example"), (10, "d.example")]

    def run(seed: int) -> list[list[str]]:
        selector = MxSelector(seed=seed)
        selector.record("a.example", False, 2.0, now=0.0)
        return [[c.host for c in selector.order(mx, now=1.0)] for _ in range(20)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_hosts_are_normalised_and_bounded() -> None:
    selector = MxSelector(seed=0, max_hosts=3)
    selector.record("MX1.Example.NET.", True, 0.1, now=0.0)
    assert list(selector.snapshot(now=0.0)) == ["mx1.example.net"]
    for name in ("a.example", "b.example", "c.example"):
        selector.record(name, True, 0.1, now=1.0)
    assert sorted(selector.snapshot(now=1.0)) == ["a.example", "b.example", "c.example"]
    chosen = selector.order([(10, "MX1.example.net."), (10, "mx1.example.net")], now=2.0)
    assert [c.host for c in chosen] == ["mx1.example.net"]
    assert chosen[0].to_json()["successes"] == 0


def test_odd_inputs_give_clear_errors() -> None:
    selector = MxSelector(seed=0)
    with pytest.raises(ValueError, match=r"preference must be within 0\.\.65535"):
        selector.order([(70000, "mx.example")])
    with pytest.raises(ValueError, match="preference must be a whole number"):
        selector.order([(True, "mx.example")])
    with pytest.raises(ValueError, match="host must be a non-empty name"):
        selector.order([(10, " . ")])
    with pytest.raises(ValueError, match="latency must be a finite"):
        selector.record("mx.example", True, float("nan"))
    with pytest.raises(ValueError, match="latency must be a finite"):
        selector.record("mx.example", True, -1.0)
    with pytest.raises(ValueError, match="explore is out of range"):
        MxSelector(explore=2.0)
    assert selector.order([]) == []


def test_the_clock_is_used_when_no_time_is_given() -> None:
    ticks = iter([0.0, 3600.0])
    selector = MxSelector(seed=0, half_life=3600.0, clock=lambda: next(ticks))
    selector.record("mx.example", False, 1.0)
    assert selector.snapshot()["mx.example"]["failures"] == pytest.approx(0.5)
