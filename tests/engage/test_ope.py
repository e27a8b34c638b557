"""Off-policy estimators on simulated logs whose true policy value is known: IPW and DR are
unbiased, SNIPW is close, bootstrap intervals cover the truth, and a uniform target on a
uniform log gives back the on-policy mean."""

from __future__ import annotations

import numpy as np
import pytest

from postwise.engage.ope import (
    LoggedFeedback,
    OffPolicyError,
    bootstrap_interval,
    doubly_robust,
    estimate,
    estimate_with_interval,
    ipw,
    snipw,
)

# 3 contexts (equally likely) x 4 actions
RATES = np.array(
    [
        [0.10, 0.30, 0.05, 0.20],
        [0.40, 0.05, 0.10, 0.15],
        [0.05, 0.10, 0.50, 0.25],
    ]
)
LOGGING = np.array(
    [
        [0.40, 0.20, 0.20, 0.20],
        [0.10, 0.30, 0.30, 0.30],
        [0.25, 0.25, 0.25, 0.25],
    ]
)
TARGET = np.array(
    [
        [0.05, 0.85, 0.05, 0.05],
        [0.70, 0.10, 0.10, 0.10],
        [0.00, 0.00, 0.90, 0.10],
    ]
)
TRUE_VALUE = float(np.mean(np.sum(TARGET * RATES, axis=1)))


def _simulated_log(rng: np.random.Generator, rows: int, model_error: float) -> LoggedFeedback:
    context = rng.integers(0, 3, rows)
    cumulative = np.cumsum(LOGGING[context], axis=1)
    action = (rng.random(rows)[:, None] > cumulative).sum(axis=1)
    reward = (rng.random(rows) < RATES[context, action]).astype(np.float64)
    # a deliberately biased reward model: DR must stay unbiased anyway
    q = np.clip(RATES[context] + model_error, 0.0, 1.0)
    return LoggedFeedback(
        rewards=reward,
        pscores=LOGGING[context, action],
        target=TARGET[context, action],
        q_logged=q[np.arange(rows), action],
        q_target=np.sum(TARGET[context] * q, axis=1),
    )


@pytest.mark.parametrize("estimator", ["ipw", "dr"])
def test_ipw_and_dr_are_unbiased(estimator: str) -> None:
    rng = np.random.default_rng(11)
    values = np.array(
        [estimate(_simulated_log(rng, 500, model_error=0.05), estimator) for _ in range(400)]
    )
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - TRUE_VALUE) < 3.5 * standard_error
    assert standard_error < 0.004  # the test has the power to see a bias of ~0.015


def test_snipw_is_consistent_and_dr_with_a_good_model_has_less_variance() -> None:
    rng = np.random.default_rng(12)
    logs = [_simulated_log(rng, 2000, model_error=0.0) for _ in range(100)]
    snipw_values = np.array([estimate(log, "snipw") for log in logs])
    ipw_values = np.array([estimate(log, "ipw") for log in logs])
    dr_values = np.array([estimate(log, "dr") for log in logs])
    assert abs(snipw_values.mean() - TRUE_VALUE) < 0.01
    assert dr_values.std() < ipw_values.std()


def test_bootstrap_intervals_cover_the_true_value() -> None:
    rng = np.random.default_rng(13)
    covered = {"ipw": 0, "snipw": 0, "dr": 0}
    repeats = 40
    for _ in range(repeats):
        log = _simulated_log(rng, 1500, model_error=0.05)
        for name in covered:
            point, (low, high) = estimate_with_interval(log, name, rng, resamples=100)
            assert low <= point <= high
            covered[name] += low <= TRUE_VALUE <= high
    for name, hits in covered.items():
        assert hits / repeats >= 0.85, name


def test_a_uniform_target_on_a_uniform_log_is_the_on_policy_mean() -> None:
    rng = np.random.default_rng(14)
    actions = 5
    rewards = (rng.random(3000) < 0.2).astype(np.float64)
    pscores = np.full(3000, 1.0 / actions)
    target = np.full(3000, 1.0 / actions)
    assert ipw(rewards, pscores, target) == pytest.approx(rewards.mean())
    assert snipw(rewards, pscores, target) == pytest.approx(rewards.mean())
    constant = np.full(3000, 0.3)  # a constant reward model cancels out exactly
    assert doubly_robust(rewards, pscores, target, constant, constant) == pytest.approx(
        rewards.mean()
    )


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(OffPolicyError, match="logging probabilities"):
        ipw([1.0, 0.0], [0.0, 0.5], [1.0, 1.0])
    with pytest.raises(OffPolicyError, match="different lengths"):
        snipw([1.0, 0.0], [0.5], [1.0, 1.0])
    with pytest.raises(OffPolicyError, match="empty"):
        ipw([], [], [])
    with pytest.raises(OffPolicyError, match="reward-model"):
        estimate(LoggedFeedback(np.ones(2), np.ones(2), np.ones(2)), "dr")
    with pytest.raises(OffPolicyError, match="resamples"):
        bootstrap_interval(lambda rows: 0.0, 10, np.random.default_rng(0), resamples=1)
