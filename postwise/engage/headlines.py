"""Headline (subject-line) tests: the Upworthy reader and a vectorised replay of each test.

A *test* compares 2 or more variants (the Upworthy "packages") of one story by impressions and
clicks. The replay takes each variant's observed click rate (clicks / impressions) as its true
rate, serves the test's total impressions again with a policy, and draws every click from a
Bernoulli of the served variant's rate (binomially, per batch). Policies:

- ``Thompson``: Bernoulli Thompson sampling (the rule of ``bandits.BetaThompson``) updated in
  ``rounds`` batches; within a batch, each of ``draws_per_round`` equal blocks of impressions
  goes to the argmax of one posterior draw (a sender decides per block of recipients, not per
  recipient). ``uniform_share`` keeps that share of every batch on an equal split (a holdout
  that measures every variant without bias).
- ``ExploreThenCommit``: the classic A/B test, an equal split over the variants for the first
  ``test_share`` of the impressions, then all the rest to the variant with the best observed
  click rate (ties broken at random).
- the oracle (always the best variant) and the equal split need no simulation.

Clicks are reported as the expected clicks of the impressions served (served x true rate): the
same mean as the realised clicks, with less simulation noise. Raises ``HeadlineError`` (a
``CorpusError``) for unreadable or malformed files, naming the file, line and column.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from postwise.core.errors import CorpusError
from postwise.engage.bandits import BetaThompson
from postwise.engage.datasets import data_files, parse_number, read_text

TEST_COLUMN = "clickability_test_id"
REQUIRED_COLUMNS = (TEST_COLUMN, "impressions", "clicks")
SPLIT_SALT = "postwise-headlines-split-v1"

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class HeadlineError(CorpusError):
    """A headline-test file is missing, unreadable, of another layout or holds a bad value."""


@dataclass(frozen=True)
class HeadlineTests:
    """Tests with their variants, variants of one test contiguous: test ``t`` owns the variants
    ``offsets[t]:offsets[t + 1]`` of ``impressions`` and ``clicks``. Tests with a single variant
    (nothing to choose) are left out and counted in ``single_variant_tests``."""

    test_ids: tuple[str, ...]
    offsets: IntArray
    impressions: IntArray
    clicks: IntArray
    files: tuple[str, ...] = ()
    single_variant_tests: int = 0

    def __len__(self) -> int:
        return len(self.test_ids)

    @property
    def variants(self) -> IntArray:
        """Number of variants per test."""
        return np.diff(self.offsets)

    @property
    def rates(self) -> FloatArray:
        """Observed click rate of every variant (the replay's true rates)."""
        return self.clicks / self.impressions

    @property
    def totals(self) -> IntArray:
        """Total impressions per test (the replay's horizon)."""
        return np.add.reduceat(self.impressions, self.offsets[:-1])

    def test_rates(self, test: int) -> FloatArray:
        return self.rates[self.offsets[test] : self.offsets[test + 1]]

    def subset(self, tests: Sequence[int] | IntArray) -> HeadlineTests:
        """The given tests (by position), in that order."""
        picked = np.asarray(tests, dtype=np.int64)
        spans = [np.arange(self.offsets[t], self.offsets[t + 1]) for t in picked]
        rows = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        sizes = self.variants[picked]
        return HeadlineTests(
            tuple(self.test_ids[t] for t in picked),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            self.impressions[rows],
            self.clicks[rows],
            self.files,
            0,
        )


def from_counts(
    tests: Sequence[tuple[str, Sequence[int], Sequence[int]]],
) -> HeadlineTests:
    """Tests from (id, impressions per variant, clicks per variant); for synthetic data."""
    ids = [name for name, _, _ in tests]
    sizes = [len(imp) for _, imp, _ in tests]
    return HeadlineTests(
        tuple(ids),
        np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        np.asarray([n for _, imp, _ in tests for n in imp], dtype=np.int64),
        np.asarray([c for _, _, clk in tests for c in clk], dtype=np.int64),
    )


def read_headline_tests(path: Path) -> HeadlineTests:
    """Every test of the CSV files (gzipped or not, any names) under ``path``, in the Upworthy
    layout (recognised by the ``clickability_test_id``, ``impressions`` and ``clicks`` columns;
    the rest is ignored). Variants with no impression are dropped. Raises HeadlineError for an
    unreadable file, a missing column, a count that is not a non-negative integer, or more
    clicks than impressions."""
    per_test: dict[str, tuple[list[int], list[int]]] = {}
    files = data_files(path, "upworthy headline-test")
    for file in files:
        _read_file(file, per_test)
    if not per_test:
        raise HeadlineError(f"{path}: no headline-test rows")
    kept = [
        (name, imp, clk)
        for name, (imp, clk) in per_test.items()
        if sum(1 for n in imp if n > 0) >= 2
    ]
    cleaned = [
        (
            name,
            [n for n in imp if n > 0],
            [c for n, c in zip(imp, clk, strict=True) if n > 0],
        )
        for name, imp, clk in kept
    ]
    if not cleaned:
        raise HeadlineError(f"{path}: no test has two variants with impressions")
    tests = from_counts(cleaned)
    return HeadlineTests(
        tests.test_ids,
        tests.offsets,
        tests.impressions,
        tests.clicks,
        tuple(f.name for f in files),
        len(per_test) - len(cleaned),
    )


def _read_file(file: Path, per_test: dict[str, tuple[list[int], list[int]]]) -> None:
    text = read_text(file, HeadlineError)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as error:
        raise HeadlineError(f"{file}: line 1: malformed CSV header ({error})") from error
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise HeadlineError(
            f"{file}: missing column(s) {', '.join(missing)}; the upworthy headline-test "
            f"layout needs {', '.join(REQUIRED_COLUMNS)} (found {', '.join(header[:6])})"
        )
    at = {name: header.index(name) for name in REQUIRED_COLUMNS}
    width = max(at.values()) + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise HeadlineError(
                f"{file}: line {reader.line_num}: malformed CSV ({error})"
            ) from None
        line = reader.line_num
        if not row:
            continue
        if len(row) < width:
            raise HeadlineError(
                f"{file}: line {line}: {len(row)} fields, expected {len(header)} "
                f"(column {header[len(row)]!r} is absent)"
            )
        test = row[at[TEST_COLUMN]].strip()
        if not test:
            raise HeadlineError(f"{file}: line {line}: column {TEST_COLUMN!r} is empty")
        impressions = _count(file, line, "impressions", row[at["impressions"]])
        clicks = _count(file, line, "clicks", row[at["clicks"]])
        if clicks > impressions:
            raise HeadlineError(
                f"{file}: line {line}: column 'clicks': {clicks} clicks for {impressions} "
                "impressions (more clicks than impressions)"
            )
        imp_list, clk_list = per_test.setdefault(test, ([], []))
        imp_list.append(impressions)
        clk_list.append(clicks)


def _count(file: Path, line: int, column: str, text: str) -> int:
    number = parse_number(file, line, column, text, HeadlineError)
    if number < 0 or number != int(number):
        raise HeadlineError(
            f"{file}: line {line}: column {column!r}: {text.strip()[:40]!r} is not a "
            "non-negative integer count"
        )
    return int(number)


def split_tests(
    tests: HeadlineTests, test_share: float = 0.3, salt: str = SPLIT_SALT
) -> tuple[HeadlineTests, HeadlineTests]:
    """Group split by test id: tests ordered by sha256("<salt>|upworthy|<id>"), the first
    ``test_share`` of them scored, the rest for training. A test is never on both sides."""
    if not 0.0 < test_share < 1.0:
        raise HeadlineError(f"test share {test_share} is not in (0, 1)")
    keys = [
        hashlib.sha256(f"{salt}|upworthy|{name}".encode()).hexdigest() for name in tests.test_ids
    ]
    order = np.argsort(np.asarray(keys), kind="stable")
    scored = max(1, min(len(tests) - 1, round(len(tests) * test_share)))
    return tests.subset(np.sort(order[scored:])), tests.subset(np.sort(order[:scored]))


# --- priors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaPrior:
    """A Beta prior on every variant's click rate, Beta(mean x strength, (1 - mean) x strength).

    ``centre="fixed"`` is a static prior (``BetaThompson``'s); ``centre="test"`` re-centres the
    prior of every variant of a test on that test's pooled click rate so far (all its variants'
    clicks over impressions, itself shrunk to ``mean``): a hierarchical prior that compares the
    variants of a test with each other rather than with every other story.
    """

    name: str
    mean: float
    strength: float
    centre: Literal["fixed", "test"] = "fixed"

    @property
    def alpha(self) -> float:
        return self.mean * self.strength

    @property
    def beta(self) -> float:
        return (1.0 - self.mean) * self.strength

    def as_dict(self) -> dict[str, float | str]:
        return {
            "name": self.name,
            "mean": self.mean,
            "strength": self.strength,
            "alpha": self.alpha,
            "beta": self.beta,
            "centre": self.centre,
        }


UNIFORM_PRIOR = BetaPrior("uniform", 0.5, 2.0)


def fit_rate_prior(tests: HeadlineTests) -> tuple[float, float, float]:
    """Empirical-Bayes moments of the click rates of ``tests`` (training tests only): the
    impression-weighted mean rate, the Beta strength of the rates across all variants, and the
    Beta strength of the variants around their own test's rate. Each strength is
    mean (1 - mean) / true variance - 1, the true variance being the observed variance of the
    rates minus the binomial noise of their impressions (method of moments)."""
    rates = tests.rates
    weights = tests.impressions.astype(np.float64)
    mean = float(np.sum(tests.clicks) / np.sum(weights))
    noise = float(np.mean(mean * (1 - mean) / weights))
    across = float(np.var(rates)) - noise
    test_index = np.repeat(np.arange(len(tests)), tests.variants)
    test_rate = np.add.reduceat(tests.clicks, tests.offsets[:-1]) / tests.totals
    within_raw = rates - test_rate[test_index]
    k = tests.variants[test_index].astype(np.float64)
    # a variant's deviation from its test's pooled rate has variance (1 - 1/k) of the true
    # spread plus that share of the binomial noise (roughly, for similar arm sizes)
    within = float(np.mean(within_raw**2 / (1 - 1 / k))) - noise
    ceiling = 1e6

    def strength(variance: float) -> float:
        if variance <= 0:
            return ceiling
        return float(min(ceiling, max(1.0, mean * (1 - mean) / variance - 1)))

    return mean, strength(across), strength(within)


def prior_candidates(train: HeadlineTests) -> tuple[BetaPrior, ...]:
    """The priors among which the replay on the training tests chooses: uniform Beta(1, 1), the
    empirical-Bayes prior of all variants' rates, and the test-centred prior with the learnt
    within-test strength (and a quarter of it, less shrinkage). Learnt from ``train`` only."""
    mean, across, within = fit_rate_prior(train)
    return (
        UNIFORM_PRIOR,
        BetaPrior("empirical_bayes", mean, across),
        BetaPrior("test_centred", mean, within, "test"),
        BetaPrior("test_centred_weak", mean, max(1.0, within / 4), "test"),
    )


def serving_policy(arms: Sequence[str], prior: BetaPrior) -> BetaThompson:
    """The production policy for one new test with this prior. For a test-centred prior the
    centre starts at the prior mean; re-centre it as the test runs with ``recentred``."""
    return BetaThompson(arms, prior.alpha, prior.beta)


def recentred(policy: BetaThompson, prior: BetaPrior) -> BetaThompson:
    """``policy`` with its prior re-centred on the test's pooled click rate so far (for a
    ``centre="test"`` prior; a fixed prior is returned unchanged)."""
    if prior.centre != "test":
        return policy
    alpha, beta = _centred_prior(prior, policy.successes.sum(), policy.failures.sum())
    state = policy.to_state()
    state["prior"] = [float(alpha), float(beta)]
    return BetaThompson.from_state(state)


def _centred_prior(
    prior: BetaPrior, clicks: FloatArray | float, misses: FloatArray | float
) -> tuple[FloatArray, FloatArray]:
    # the pooled rate of the test, itself shrunk to the population mean by the across-test
    # strength of a few hundred impressions, so an unseen test starts at the population mean
    pooled = (np.asarray(clicks) + prior.mean * 200.0) / (
        np.asarray(clicks) + np.asarray(misses) + 200.0
    )
    return pooled * prior.strength, (1.0 - pooled) * prior.strength


# --- policies and the replay ---------------------------------------------------------------


@dataclass(frozen=True)
class Thompson:
    """Batched Thompson sampling (see the module docstring)."""

    prior: BetaPrior = UNIFORM_PRIOR
    rounds: int = 50
    draws_per_round: int = 8
    uniform_share: float = 0.0


@dataclass(frozen=True)
class ExploreThenCommit:
    """Equal split over the variants for ``test_share`` of the impressions, then the winner."""

    test_share: float = 0.2


Policy = Thompson | ExploreThenCommit


def oracle_clicks(tests: HeadlineTests) -> FloatArray:
    """Expected clicks per test when every impression goes to the best variant."""
    best = np.maximum.reduceat(tests.rates, tests.offsets[:-1])
    return np.asarray(best * tests.totals, dtype=np.float64)


def equal_split_clicks(tests: HeadlineTests) -> FloatArray:
    """Expected clicks per test when the impressions are split equally for the whole test."""
    mean_rate = np.add.reduceat(tests.rates, tests.offsets[:-1]) / tests.variants
    return np.asarray(mean_rate * tests.totals, dtype=np.float64)


def simulate(
    tests: HeadlineTests,
    policy: Policy,
    replications: int,
    rng: np.random.Generator,
    rates: FloatArray | None = None,
) -> FloatArray:
    """Expected clicks of ``policy`` per test and replication, shape (tests, replications).

    ``rates`` replaces the observed click rates as the true ones (same layout as
    ``tests.rates``), for sensitivity runs. Tests with the same number of variants are
    simulated together, every replication at once."""
    if replications < 1:
        raise ValueError("replications must be at least 1")
    true_rates = tests.rates if rates is None else np.asarray(rates, dtype=np.float64)
    result = np.zeros((len(tests), replications))
    variants = tests.variants
    totals = tests.totals
    for k in np.unique(variants):
        group = np.flatnonzero(variants == k)
        starts = tests.offsets[group]
        p = true_rates[starts[:, None] + np.arange(k)[None, :]]
        if isinstance(policy, Thompson):
            result[group] = _thompson(p, totals[group], policy, replications, rng)
        else:
            result[group] = _explore_then_commit(p, totals[group], policy, replications, rng)
    return result


def _explore_then_commit(
    p: FloatArray, totals: IntArray, policy: ExploreThenCommit, reps: int, rng: np.random.Generator
) -> FloatArray:
    tests, k = p.shape
    per_arm = np.floor(totals * policy.test_share / k).astype(np.int64)
    explored = per_arm * k
    clicks = rng.binomial(per_arm[:, None, None], p[:, None, :], size=(tests, reps, k))
    observed = clicks / np.maximum(per_arm, 1)[:, None, None]
    # random tie-breaking: a tiny jitter below the resolution of any observed rate
    observed = observed + rng.random((tests, reps, k)) * 1e-12
    winner = np.argmax(observed, axis=2)
    winner_rate = np.take_along_axis(p[:, None, :], winner[:, :, None], axis=2)[:, :, 0]
    exploring = (per_arm * p.sum(axis=1))[:, None]
    return np.asarray(exploring + (totals - explored)[:, None] * winner_rate, dtype=np.float64)


def _thompson(
    p: FloatArray, totals: IntArray, policy: Thompson, reps: int, rng: np.random.Generator
) -> FloatArray:
    tests, k = p.shape
    rounds, blocks = policy.rounds, policy.draws_per_round
    prior = policy.prior
    successes = np.zeros((tests, reps, k))
    failures = np.zeros((tests, reps, k))
    expected = np.zeros((tests, reps))
    bounds = np.floor(totals[:, None] * np.arange(rounds + 1)[None, :] / rounds).astype(np.int64)
    arm_ids = np.arange(k)
    for r in range(rounds):
        batch = bounds[:, r + 1] - bounds[:, r]
        uniform = np.floor(batch * policy.uniform_share / k).astype(np.int64)
        adaptive = batch - uniform * k
        edges = np.floor(adaptive[:, None] * np.arange(blocks + 1)[None, :] / blocks)
        block_size = np.diff(edges, axis=1)  # (tests, blocks)
        if prior.centre == "test":
            a0, b0 = _centred_prior(
                prior, successes.sum(axis=2, keepdims=True), failures.sum(axis=2, keepdims=True)
            )
        else:
            a0, b0 = np.asarray(prior.alpha), np.asarray(prior.beta)
        alpha = (successes + a0)[:, :, None, :]
        beta = (failures + b0)[:, :, None, :]
        shape = (tests, reps, blocks, k)
        x = rng.standard_gamma(np.broadcast_to(alpha, shape))
        y = rng.standard_gamma(np.broadcast_to(beta, shape))
        choice = np.argmax(x / (x + y), axis=3)  # (tests, reps, blocks)
        chosen = choice[..., None] == arm_ids  # (tests, reps, blocks, k)
        served = np.einsum("trbk,tb->trk", chosen, block_size) + uniform[:, None, None]
        served_int = served.astype(np.int64)
        clicks = rng.binomial(served_int, np.broadcast_to(p[:, None, :], served.shape))
        successes += clicks
        failures += served_int - clicks
        expected += np.einsum("trk,tk->tr", served, p)
    return expected
