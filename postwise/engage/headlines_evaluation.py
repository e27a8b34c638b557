"""The headline-test benchmark: choose the bandit's prior on the training tests, replay the
scored tests with every policy, and compare the clicks (``postwise engage eval headlines``).

The prior is chosen by replaying each candidate (``headlines.prior_candidates``, learnt from
the training tests) on the training tests alone; the scored tests are only replayed once it is
fixed. Gains are per test (Thompson minus the A/B test, both averaged over the replications) and
their intervals are over tests: a normal interval for the total, a seeded bootstrap over tests
for the relative gain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from postwise.engage.headlines import (
    BetaPrior,
    ExploreThenCommit,
    FloatArray,
    HeadlineTests,
    Thompson,
    equal_split_clicks,
    fit_rate_prior,
    oracle_clicks,
    prior_candidates,
    simulate,
)

AB_TEST_SHARE = 0.2  # the A/B test's default: equal split on 20% of the traffic, then the winner
HOLDOUT_SHARE = 0.1  # the bandit variant that keeps 10% of every batch on an equal split
SELECTION_TESTS = 1000  # training tests replayed per prior candidate (a seeded sample)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
Z_95 = 1.959963984540054


def choose_prior(
    train: HeadlineTests, replications: int, rounds: int, seed: int
) -> tuple[BetaPrior, dict[str, float]]:
    """The candidate prior whose Thompson replay loses the least of the oracle's clicks on (a
    seeded sample of at most SELECTION_TESTS) training tests, and every candidate's loss."""
    rng = np.random.default_rng([seed, 1])
    sample = train
    if len(train) > SELECTION_TESTS:
        sample = train.subset(np.sort(rng.choice(len(train), SELECTION_TESTS, replace=False)))
    oracle = float(oracle_clicks(sample).sum())
    regrets: dict[str, float] = {}
    candidates = prior_candidates(train)
    for prior in candidates:
        clicks = simulate(sample, Thompson(prior, rounds), replications, rng)
        regrets[prior.name] = 1.0 - float(clicks.mean(axis=1).sum()) / oracle
    best = min(candidates, key=lambda prior: regrets[prior.name])
    return best, regrets


def _quantiles(values: FloatArray) -> dict[str, float]:
    return {f"p{round(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES}


def compare(
    policy: FloatArray, baseline: FloatArray, totals: FloatArray, seed: int, resamples: int = 2000
) -> dict[str, Any]:
    """Per-test clicks of a policy against a baseline (both shape (tests,)): the total gain
    with a 95% normal interval over tests, the relative gain with a bootstrap interval over
    tests, gains per 1,000 impressions, the share of tests won and the per-test distribution."""
    gain = policy - baseline
    tests = gain.shape[0]
    spread = float(gain.std(ddof=1)) if tests > 1 else 0.0
    half = Z_95 * spread * np.sqrt(tests)
    total = float(gain.sum())
    rng = np.random.default_rng([seed, 2])
    picks = rng.integers(0, tests, size=(resamples, tests))
    ratios = gain[picks].sum(axis=1) / baseline[picks].sum(axis=1)
    relative = total / float(baseline.sum())
    per_test = gain / np.maximum(baseline, 1e-12)
    return {
        "absolute": total,
        "absolute_ci": [total - half, total + half],
        "per_test_mean": total / tests,
        "per_1000_impressions": 1000.0 * total / float(totals.sum()),
        "relative": relative,
        "relative_ci": [float(np.quantile(ratios, 0.025)), float(np.quantile(ratios, 0.975))],
        "tests_won_share": float(np.mean(gain > 0)),
        "per_test_relative": _quantiles(per_test),
    }


def shrunken_rates(tests: HeadlineTests, train: HeadlineTests) -> FloatArray:
    """True rates with the winner's curse removed: each variant's rate shrunk to its test's
    pooled rate with the within-test strength learnt on ``train`` (posterior means)."""
    _, _, within = fit_rate_prior(train)
    test_rate = np.add.reduceat(tests.clicks, tests.offsets[:-1]) / tests.totals
    centre = np.repeat(test_rate, tests.variants)
    return np.asarray((tests.clicks + within * centre) / (tests.impressions + within))


def evaluate_headlines(
    train: HeadlineTests,
    test: HeadlineTests,
    replications: int = 30,
    rounds: int = 50,
    seed: int = 0,
) -> dict[str, Any]:
    """The benchmark report (JSON-able): clicks per policy, ``clicks_vs_ab_test``,
    ``regret_vs_oracle``, the chosen prior and the sensitivity run on shrunken rates."""
    prior, selection = choose_prior(train, max(4, replications // 5), rounds, seed)
    rng = np.random.default_rng([seed, 3])
    totals = test.totals.astype(np.float64)
    bandit = Thompson(prior, rounds)
    ab_test = ExploreThenCommit(AB_TEST_SHARE)
    per_test: dict[str, FloatArray] = {
        "oracle": oracle_clicks(test),
        "thompson": simulate(test, bandit, replications, rng).mean(axis=1),
        "ab_test": simulate(test, ab_test, replications, rng).mean(axis=1),
        "ab_test_50": simulate(test, ExploreThenCommit(0.5), replications, rng).mean(axis=1),
        "equal_split": equal_split_clicks(test),
        "thompson_holdout": simulate(
            test,
            Thompson(prior, rounds, uniform_share=HOLDOUT_SHARE),
            max(4, replications // 4),
            rng,
        ).mean(axis=1),
    }
    oracle_total = float(per_test["oracle"].sum())
    regret: dict[str, Any] = {
        name: 1.0 - float(c.sum()) / oracle_total for name, c in per_test.items()
    }
    clicked = per_test["oracle"] > 0  # a test without any click has nothing to lose
    regret["per_test"] = {
        name: _quantiles(1.0 - per_test[name][clicked] / per_test["oracle"][clicked])
        for name in ("thompson", "ab_test")
    }

    shrunk = shrunken_rates(test, train)
    sens_reps = max(4, replications // 4)
    sens_ts = simulate(test, bandit, sens_reps, rng, shrunk).mean(axis=1)
    sens_ab = simulate(test, ab_test, sens_reps, rng, shrunk).mean(axis=1)
    sens_oracle = np.maximum.reduceat(shrunk, test.offsets[:-1]) * totals
    return {
        "dataset": "upworthy",
        "train_tests": len(train),
        "test_tests": len(test),
        "test_variants": int(test.impressions.shape[0]),
        "test_impressions": int(totals.sum()),
        "replications": replications,
        "seed": seed,
        "policy": {
            "name": "thompson",
            "prior": prior.as_dict(),
            "rounds": rounds,
            "draws_per_round": bandit.draws_per_round,
        },
        "prior_selection_regret": selection,
        "ab_test": {"test_share": AB_TEST_SHARE, "split": "equal over the variants"},
        "clicks": {name: float(c.sum()) for name, c in per_test.items()},
        "clicks_vs_ab_test": compare(per_test["thompson"], per_test["ab_test"], totals, seed),
        "clicks_vs_ab_test_50": compare(per_test["thompson"], per_test["ab_test_50"], totals, seed),
        "holdout_vs_ab_test": compare(
            per_test["thompson_holdout"], per_test["ab_test"], totals, seed
        ),
        "regret_vs_oracle": regret,
        "sensitivity_shrunken_rates": {
            "note": "true rates shrunk to their test's rate (winner's curse removed)",
            "regret_vs_oracle": {
                "thompson": 1.0 - float(sens_ts.sum() / sens_oracle.sum()),
                "ab_test": 1.0 - float(sens_ab.sum() / sens_oracle.sum()),
            },
            "clicks_vs_ab_test": compare(sens_ts, sens_ab, totals, seed),
        },
    }
