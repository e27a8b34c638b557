"""Off-policy evaluation of bandit policies on the Open Bandit Dataset (``engage eval bandit``).

Two questions per campaign, each answered by IPW, SNIPW and DR (:mod:`postwise.engage.ope`)
from the uniform-random log, with percentile bootstrap intervals:

1. **TS over random** (Saito et al.'s check): the value of the Bernoulli-TS logging policy
   estimated from the random log, over the random log's own click rate. BTS is context-free
   and was updated in batches during the week, so its action distribution is taken as the
   share of its impressions that showed each item at each position (its time average, read
   from the BTS log; the bootstrap resamples both logs). BTS's own on-policy click rate, from
   its log, is the check.
2. **Postwise's policies vs random and vs BTS**: trained on the earlier rows (both logs, the
   earliest 70% of each file by time), evaluated on the later 30% of the random log (the
   hidden holdout's design); with a test folder, trained on the whole training folder and
   evaluated on the test folder's random log. BTS is evaluated on the same rows with its
   distribution from the same period's BTS log.

Positions follow obp: a row is one (impression, position) and the target's probability is that
of showing the logged item at the logged position. Postwise's policies fill a slate from one
ranking: each posterior draw ranks the items and the k-th ranked goes to position k (position
agnostic). The policies:

- ``postwise``: the policy Postwise would ship, one of :data:`CANDIDATES` (the incumbent's
  item-position shares from the training BTS log, Beta-Thompson on position-normalised clicks
  of both logs with an empirical-Bayes prior, or mixtures), chosen on training rows only by
  time-cross-fitted SNIPW averaged over the campaigns (:func:`pooled_choice`);
- ``beta_thompson``: :class:`~postwise.engage.bandits.BetaThompson` per item, click counts of
  the training rows, empirical-Bayes prior Beta(1, (1 - ctr)/ctr) (mean = the training CTR,
  weight of one click);
- ``logistic_thompson``: :class:`~postwise.engage.contextual_bandits.LogisticThompson`, one
  shared model over [1, log(incumbent share), item one-hot, log(1 + user-item affinity)],
  updated row by row on the training rows.

Without a test folder, ``postwise`` and BTS are also evaluated on every random row by two-fold
cross-fitting in time (:func:`cross_fitted_comparison`). Ratios to random and to BTS and the
differences value - random CTR and value - BTS come from one bootstrap resample per draw
(paired intervals).

The DR reward model is a logistic regression of the click on item, position, user features and
the logged item's affinity, cross-fitted on two folds of the rows being evaluated (each row is
predicted by the model fitted on the other fold).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from postwise.engage.bandits import BetaThompson
from postwise.engage.contextual_bandits import LogisticThompson
from postwise.engage.ope import ESTIMATORS, LoggedFeedback, estimate
from postwise.engage.open_bandit import POSITIONS, BanditLog, read_open_bandit

FloatArray = NDArray[np.float64]
REFERENCE_TS_OVER_RANDOM = 1.198  # obp README, IPW on the obp sample, campaign "all"
LATER_SHARE = 0.3
# Key of a campaign report's bootstrap samples (pooled over campaigns, then removed).
SAMPLES = "_samples"


@dataclass(frozen=True)
class EvaluationSettings:
    bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 12345
    draws: int = 2000


# ----------------------------------------------------------------------------- reward model


class RewardModel:
    """Logistic regression of the click on [item one-hot, position one-hot, user-feature
    one-hots, log(1 + affinity of the logged item)]; predicts every item at a row's position."""

    def __init__(self, items: int) -> None:
        self.items = items
        self.constant: float | None = None
        self.vocabulary: list[dict[str, int]] = []
        self.intercept = 0.0
        self.coef = np.zeros(0)

    def _user(self, log: BanditLog) -> FloatArray:
        blocks = []
        for k, vocabulary in enumerate(self.vocabulary):
            block = np.zeros((len(log), len(vocabulary)))
            codes = np.array([vocabulary.get(v, -1) for v in log.user[:, k]])
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.zeros((len(log), 0))

    def fit(self, log: BanditLog) -> RewardModel:
        if log.click.min() == log.click.max():  # one class: a constant is all there is
            self.constant = float(log.click.mean())
            return self
        from sklearn.linear_model import LogisticRegression

        self.vocabulary = [
            {v: i for i, v in enumerate(sorted(set(log.user[:, k])))}
            for k in range(log.user.shape[1])
        ]
        rows = np.arange(len(log))
        item = np.zeros((len(log), self.items))
        item[rows, log.item] = 1.0
        position = np.zeros((len(log), POSITIONS))
        position[rows, log.position] = 1.0
        affinity = np.log1p(np.maximum(log.affinity[rows, log.item], 0.0))[:, None]
        design = np.hstack([item, position, self._user(log), affinity])
        model = LogisticRegression(C=1.0, max_iter=2000)
        model.fit(design, log.click)
        self.intercept = float(model.intercept_[0])
        self.coef = np.asarray(model.coef_[0], dtype=np.float64)
        return self

    def predict_all(self, log: BanditLog) -> FloatArray:
        """P(click) of every item at each row's logged position: shape (rows, items)."""
        if self.constant is not None:
            return np.full((len(log), self.items), self.constant)
        w_item = self.coef[: self.items]
        w_position = self.coef[self.items : self.items + POSITIONS]
        w_user = self.coef[self.items + POSITIONS : -1]
        w_affinity = self.coef[-1]
        base = self.intercept + w_position[log.position] + self._user(log) @ w_user
        logits = (
            base[:, None] + w_item[None, :] + w_affinity * np.log1p(np.maximum(log.affinity, 0.0))
        )
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)


def cross_fitted_rewards(log: BanditLog, seed: int, folds: int = 2) -> FloatArray:
    """Each row's predictions for every item from a reward model fitted on the other folds."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(log)) % folds
    predictions = np.empty((len(log), log.items))
    for k in range(folds):
        inside = np.flatnonzero(fold == k)
        model = RewardModel(log.items).fit(log.take(np.flatnonzero(fold != k)))
        predictions[inside] = model.predict_all(log.take(inside))
    return predictions


# ----------------------------------------------------------------------------- policies


def position_distribution(log: BanditLog) -> FloatArray:
    """Share of each item at each position in a log: shape (positions, items)."""
    counts = np.zeros((POSITIONS, log.items))
    np.add.at(counts, (log.position, log.item), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.asarray(
        np.divide(counts, totals, out=np.full_like(counts, 1.0 / log.items), where=totals > 0),
        dtype=np.float64,
    )


def pscore_distribution(log: BanditLog, mean: str) -> FloatArray:
    """The logging policy's marginal probability of each item at each position from the
    logged propensities of the (item, position) pairs it showed: ``harmonic`` (n over the sum
    of 1/p: consistent for the time-averaged probability, since a pair logged with
    probability p_t at time t is seen in proportion to p_t) or ``arithmetic`` (size-biased:
    over-weights the times a pair was likely, so it sums well above 1 per position; given
    renormalised per position). Unseen pairs get 0. Shape (positions, items)."""
    shown = np.zeros((POSITIONS, log.items))
    np.add.at(shown, (log.position, log.item), 1.0)
    if mean == "harmonic":
        total = np.zeros_like(shown)
        np.add.at(total, (log.position, log.item), 1.0 / log.pscore)
        return np.asarray(
            np.divide(shown, total, out=np.zeros_like(shown), where=total > 0), dtype=np.float64
        )
    total = np.zeros_like(shown)
    np.add.at(total, (log.position, log.item), log.pscore)
    means = np.divide(total, shown, out=np.zeros_like(shown), where=shown > 0)
    sums = means.sum(axis=1, keepdims=True)
    return np.asarray(np.divide(means, sums, out=means, where=sums > 0), dtype=np.float64)


def slate_from_scores(scores: FloatArray) -> FloatArray:
    """From score draws of shape (draws, items): the share of draws in which each item is
    ranked k-th, for k < positions; shape (positions, items)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :POSITIONS]
    items = scores.shape[1]
    return np.stack(
        [np.bincount(top[:, k], minlength=items) / scores.shape[0] for k in range(POSITIONS)]
    ).astype(np.float64)


def train_beta_thompson(logs: list[BanditLog]) -> BetaThompson:
    """Per-item Beta-Bernoulli posterior from the click counts of ``logs``."""
    items = logs[0].items
    clicks = sum(np.bincount(log.item, weights=log.click, minlength=items) for log in logs)
    shown = sum(np.bincount(log.item, minlength=items) for log in logs)
    ctr = float(np.sum(clicks) / max(np.sum(shown), 1))
    ctr = min(max(ctr, 1e-4), 0.5)
    policy = BetaThompson([str(a) for a in range(items)], 1.0, (1.0 - ctr) / ctr)
    policy.successes = np.asarray(clicks, dtype=np.float64)
    policy.failures = np.asarray(shown - clicks, dtype=np.float64)
    return policy


def beta_thompson_slate(policy: BetaThompson, rng: np.random.Generator, draws: int) -> FloatArray:
    """Probability of each item at each position: shape (positions, items)."""
    alpha, beta = policy.posterior()
    return slate_from_scores(rng.beta(alpha, beta, size=(draws, len(policy.arms))))


def incumbent_share(logs: list[BanditLog], items: int) -> FloatArray:
    """Share of the impressions of the training BTS log (the incumbent policy) per item;
    uniform when the training data has no BTS log."""
    shown = [np.bincount(log.item, minlength=items) for log in logs if log.policy == "bts"]
    if not shown:
        return np.full(items, 1.0 / items)
    counts = np.sum(shown, axis=0).astype(np.float64)
    return np.asarray(counts / counts.sum(), dtype=np.float64)


class ContextualFeatures:
    """Per row and item: [1, log(incumbent share + 0.1/items), item one-hot,
    log(1 + user-item affinity)]."""

    def __init__(self, share: FloatArray) -> None:
        items = share.shape[0]
        self.items = items
        self.dim = items + 3
        base = np.zeros((items, self.dim))
        base[:, 0] = 1.0
        base[:, 1] = np.log(share + 0.1 / items)
        base[np.arange(items), 2 + np.arange(items)] = 1.0
        self.base = base

    def context(self, affinity: FloatArray) -> FloatArray:
        """The (items, dim) context of one contact from its affinity row."""
        context = self.base.copy()
        context[:, -1] = np.log1p(np.maximum(affinity, 0.0))
        return context

    def prior_precision(self, item_precision: float) -> FloatArray:
        prior = np.full(self.dim, item_precision)
        prior[[0, 1, -1]] = 1.0
        return prior


ITEM_PRECISIONS = (1.0, 10.0, 100.0)


def train_logistic_thompson(
    logs: list[BanditLog], features: ContextualFeatures, item_precision: float
) -> LogisticThompson:
    """A shared logistic Thompson sampler updated on every row of ``logs`` in time order."""
    policy = LogisticThompson(
        [str(a) for a in range(features.items)],
        features.dim,
        features.prior_precision(item_precision),
        shared=True,
    )
    rows = sorted((float(t), i, k) for i, log in enumerate(logs) for k, t in enumerate(log.time))
    for _, i, k in rows:
        log = logs[i]
        policy.update(str(log.item[k]), float(log.click[k]), features.context(log.affinity[k]))
    return policy


def logistic_thompson_slates(
    policy: LogisticThompson,
    features: ContextualFeatures,
    log: BanditLog,
    rng: np.random.Generator,
    draws: int,
) -> FloatArray:
    """Per row, the probability of each item at each position: shape (rows, positions, items).
    Rows with the same context share one Monte Carlo estimate."""
    unique, inverse = np.unique(log.affinity, axis=0, return_inverse=True)
    slates = np.empty((unique.shape[0], POSITIONS, log.items))
    for u in range(unique.shape[0]):
        scores = policy.sample_scores(rng, features.context(unique[u])[None], draws)[0]
        slates[u] = slate_from_scores(scores)
    return slates[np.asarray(inverse).reshape(-1)]


def choose_item_precision(
    logs: list[BanditLog], settings: EvaluationSettings
) -> tuple[float, dict[str, float]]:
    """The item one-hot prior precision with the best SNIPW value on the latest 30% of the
    training random log, the policy fitted on the rows before it (training data only)."""
    split = [log.split_by_time(LATER_SHARE) for log in logs]
    inner_train = [early for early, _ in split]
    validation = [
        late for (_, late), log in zip(split, logs, strict=True) if log.policy == "random"
    ]
    if not validation or validation[0].click.sum() == 0:
        return ITEM_PRECISIONS[-1], {}
    features = ContextualFeatures(incumbent_share(inner_train, logs[0].items))
    rng = np.random.default_rng(settings.seed + 3)
    scores: dict[str, float] = {}
    for precision in ITEM_PRECISIONS:
        policy = train_logistic_thompson(inner_train, features, precision)
        slates = logistic_thompson_slates(policy, features, validation[0], rng, settings.draws)
        target = _at_positions(slates, validation[0])
        rows = np.arange(len(validation[0]))
        scores[str(precision)] = estimate(
            LoggedFeedback(
                validation[0].click,
                validation[0].pscore,
                target[rows, validation[0].item],
            ),
            "snipw",
        )
    best = max(ITEM_PRECISIONS, key=lambda p: (scores[str(p)], p))
    return best, scores


# ----------------------------------------------------------------------------- Postwise's policy


def position_factors(logs: list[BanditLog], pseudo_clicks: float = 10.0) -> FloatArray:
    """Click rate of each position over the pooled click rate (position bias), from every
    row of ``logs``, smoothed towards 1 with ``pseudo_clicks`` clicks per position."""
    clicks = np.zeros(POSITIONS)
    shown = np.zeros(POSITIONS)
    for log in logs:
        np.add.at(clicks, log.position, log.click)
        np.add.at(shown, log.position, 1.0)
    ctr = clicks.sum() / max(shown.sum(), 1.0)
    if ctr <= 0:
        return np.ones(POSITIONS)
    return np.asarray((clicks + pseudo_clicks) / (shown * ctr + pseudo_clicks), dtype=np.float64)


def popularity_counts(logs: list[BanditLog], items: int) -> tuple[FloatArray, FloatArray]:
    """Per item, the clicks and the position-normalised impressions (each impression counts
    its position's factor) of both logs. Both loggers are context-free, so an item's clicks
    over its impressions estimate its click rate without importance weights."""
    factors = position_factors(logs)
    clicks = np.zeros(items)
    exposure = np.zeros(items)
    for log in logs:
        np.add.at(clicks, log.item, log.click)
        np.add.at(exposure, log.item, factors[log.position])
    return clicks, exposure


def thompson_slate(
    alpha: FloatArray, beta: FloatArray, rng: np.random.Generator, draws: int
) -> FloatArray:
    """Slate probabilities (positions, items) of Thompson sampling over Beta(alpha, beta)."""
    return slate_from_scores(rng.beta(alpha, beta, size=(draws, alpha.shape[0])))


@dataclass(frozen=True)
class SlateCandidate:
    """One context-free candidate of the ``postwise`` policy (see :func:`candidate_slate`).

    ``incumbent``: weight of the incumbent's (training BTS log's) item-position shares, the
    rest going to Thompson sampling on the clicks; ``strength``: weight of the Thompson prior
    in impressions; ``share_power``: 0 for a prior mean equal for every item (the pooled
    click rate), > 0 for a prior mean proportional to (incumbent share * items)^power."""

    name: str
    incumbent: float
    strength: float = 1000.0
    share_power: float = 0.0


CANDIDATES = (
    SlateCandidate("incumbent", 1.0),
    SlateCandidate("incumbent_mix_0.75", 0.75, 10000.0),
    SlateCandidate("incumbent_mix_0.5", 0.5, 10000.0),
    SlateCandidate("incumbent_prior_ts", 0.0, 1000.0, 0.5),
    SlateCandidate("popularity_ts", 0.0, 10000.0),
    SlateCandidate("popularity_ts_weak", 0.0, 1000.0),
)


def candidate_slate(
    candidate: SlateCandidate,
    logs: list[BanditLog],
    items: int,
    rng: np.random.Generator,
    draws: int,
) -> FloatArray:
    """The (positions, items) distribution of ``candidate`` trained on ``logs``: Beta-Thompson
    on position-normalised clicks of both logs with an empirical-Bayes prior (mean the pooled
    click rate, or shaped by the incumbent's shares), mixed with the incumbent's shares."""
    clicks, exposure = popularity_counts(logs, items)
    ctr = float(np.clip(clicks.sum() / max(exposure.sum(), 1.0), 1e-4, 0.5))
    share = incumbent_share(logs, items)
    relative = (share * items + 0.05) ** candidate.share_power
    mean = np.clip(ctr * relative / relative.mean(), 1e-6, 0.5)
    alpha = clicks + mean * candidate.strength
    beta = np.maximum(exposure - clicks, 0.0) + (1.0 - mean) * candidate.strength
    learnt = thompson_slate(alpha, beta, rng, draws)
    if candidate.incumbent <= 0:
        return learnt
    bts = [log for log in logs if log.policy == "bts"]
    incumbent = position_distribution(bts[0]) if bts else np.full((POSITIONS, items), 1 / items)
    return np.asarray(
        candidate.incumbent * incumbent + (1.0 - candidate.incumbent) * learnt, dtype=np.float64
    )


def _snipw_of(distribution: FloatArray, log: BanditLog) -> float:
    target = _at_positions(distribution, log)
    rows = np.arange(len(log))
    return estimate(LoggedFeedback(log.click, log.pscore, target[rows, log.item]), "snipw")


def validation_scores(logs: list[BanditLog], settings: EvaluationSettings) -> dict[str, float]:
    """Each candidate's SNIPW value over random's click rate on the training random log, by
    two-fold cross-fitting in time inside the training rows: trained on the earlier half of
    every log and scored on the later half of the random log, and the other way round, so
    every training random row validates (a 30% fold holds only 2-9 clicks per campaign).
    Empty when the training random log has no click."""
    random_logs = [log for log in logs if log.policy == "random"]
    if not random_logs or random_logs[0].click.sum() == 0:
        return {}
    halves = [log.split_by_time(0.5) for log in logs]
    validation = next(
        pair for pair, log in zip(halves, logs, strict=True) if log.policy == "random"
    )
    rng = np.random.default_rng(settings.seed + 4)
    ctr = float(random_logs[0].click.mean())
    scores: dict[str, float] = {}
    for candidate in CANDIDATES:
        weighted, weights = 0.0, 0.0
        for fold in (0, 1):
            train = [pair[1 - fold] for pair in halves]
            rows = validation[fold]
            slate = candidate_slate(candidate, train, logs[0].items, rng, settings.draws)
            target = _at_positions(slate, rows)[np.arange(len(rows)), rows.item] / rows.pscore
            weighted += float(np.sum(target * rows.click))
            weights += float(np.sum(target))
        scores[candidate.name] = (weighted / weights if weights > 0 else 0.0) / ctr
    return scores


def pooled_choice(
    training: dict[str, list[BanditLog]], settings: EvaluationSettings
) -> tuple[SlateCandidate, dict[str, dict[str, float]]]:
    """The candidate with the best mean validation ratio over the campaigns (their items
    differ, but 14-40 validation clicks per campaign are too few to choose alone);
    ties and no validation clicks at all go to the first candidate (the incumbent's shares).
    Also each campaign's scores."""
    scores = {campaign: validation_scores(logs, settings) for campaign, logs in training.items()}
    scored = [s for s in scores.values() if s]
    if not scored:
        return CANDIDATES[0], scores
    mean = {c.name: float(np.mean([s[c.name] for s in scored])) for c in CANDIDATES}
    return max(CANDIDATES, key=lambda c: mean[c.name]), scores  # max keeps the first of equals


# ----------------------------------------------------------------------------- estimation


def _at_positions(distribution: FloatArray, log: BanditLog) -> FloatArray:
    """(rows, items) target probabilities at each row's position, from (positions, items) or
    (rows, positions, items)."""
    if distribution.ndim == 2:
        return distribution[log.position]
    return distribution[np.arange(len(log)), log.position]


def _feedback(log: BanditLog, target: FloatArray, rewards_hat: FloatArray) -> LoggedFeedback:
    rows = np.arange(len(log))
    return LoggedFeedback(
        rewards=log.click,
        pscores=log.pscore,
        target=target[rows, log.item],
        q_logged=rewards_hat[rows, log.item],
        q_target=np.sum(target * rewards_hat, axis=1),
    )


def _interval(values: list[float], confidence: float) -> list[float]:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(array, [tail, 1.0 - tail])
    return [float(low), float(high)]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


@dataclass(frozen=True)
class Bootstrapped:
    """Point estimates of named figures and their bootstrap replicates (replicate ``b`` of
    every figure comes from the same resample, so ratios and differences are paired)."""

    point: dict[str, float]
    draws: dict[str, FloatArray]

    @staticmethod
    def run(
        point: dict[str, float], resample: Callable[[], dict[str, float]], times: int
    ) -> Bootstrapped:
        draws: dict[str, list[float]] = {key: [] for key in point}
        for _ in range(times):
            for key, value in resample().items():
                draws[key].append(value)
        return Bootstrapped(point, {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()})

    def entry(self, key: str, confidence: float) -> dict[str, Any]:
        return {"estimate": self.point[key], "ci": _interval(list(self.draws[key]), confidence)}


def pooled_ratio(
    samples: Sequence[Bootstrapped],
    weights: Sequence[float],
    numerator: str,
    denominator: str,
    confidence: float,
) -> dict[str, Any]:
    """``sum w_c numerator_c / sum w_c denominator_c`` over campaigns, with the interval of the
    same ratio of replicates: replicate ``b`` of each campaign is an independent resample, so
    their weighted sums are a resample of the pooled figure."""
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))

    def combine(parts: list[Any]) -> Any:
        return sum(weight * part for weight, part in zip(w, parts, strict=True))

    top = combine([s.point[numerator] for s in samples])
    bottom = combine([s.point[denominator] for s in samples])
    draws = combine([s.draws[numerator] for s in samples]) / np.where(
        (base := combine([s.draws[denominator] for s in samples])) > 0, base, np.nan
    )
    return {"estimate": _ratio(float(top), float(bottom)), "ci": _interval(list(draws), confidence)}


def ts_samples(
    random_log: BanditLog, bts_log: BanditLog, settings: EvaluationSettings
) -> Bootstrapped:
    """BTS's value from the random log and random's on-policy CTR (and BTS's own, the
    check), per estimator, with their bootstrap replicates (both logs resampled)."""
    rng = np.random.default_rng(settings.seed)
    rewards_hat = cross_fitted_rewards(random_log, settings.seed)

    def values(random_rows: NDArray[np.intp], bts_rows: NDArray[np.intp]) -> dict[str, float]:
        r_log, b_log = random_log.take(random_rows), bts_log.take(bts_rows)
        target = _at_positions(position_distribution(b_log), r_log)
        feedback = _feedback(r_log, target, rewards_hat[random_rows])
        random_ctr = float(r_log.click.mean())
        out = {"random_ctr": random_ctr, "bts_on_policy_ctr": float(b_log.click.mean())}
        for name in ESTIMATORS:
            value = estimate(feedback, name)
            out[f"value_{name}"] = value
            out[f"ratio_{name}"] = _ratio(value, random_ctr)
        out["on_policy_ratio"] = _ratio(out["bts_on_policy_ctr"], random_ctr)
        return out

    return Bootstrapped.run(
        values(np.arange(len(random_log)), np.arange(len(bts_log))),
        lambda: values(
            rng.integers(0, len(random_log), len(random_log)),
            rng.integers(0, len(bts_log), len(bts_log)),
        ),
        settings.bootstrap,
    )


def ts_report(
    samples: Bootstrapped, random_log: BanditLog, bts_log: BanditLog, settings: EvaluationSettings
) -> dict[str, Any]:
    """The ``ts_over_random`` block of one campaign from its samples: BTS's value over
    random's CTR per estimator with intervals, the distribution checks, counts."""
    point = samples.point

    def entry(key: str) -> dict[str, Any]:
        return samples.entry(key, settings.confidence)

    def ipw_ratio(distribution: FloatArray) -> float:
        target = _at_positions(distribution, random_log)[
            np.arange(len(random_log)), random_log.item
        ]
        return _ratio(
            estimate(LoggedFeedback(random_log.click, random_log.pscore, target), "ipw"),
            float(random_log.click.mean()),
        )

    return {
        **{name: entry(f"ratio_{name}") for name in ESTIMATORS},
        "bts_value": {name: entry(f"value_{name}") for name in ESTIMATORS},
        "bts_distribution": {
            "used": "impression_share",
            "ipw_over_random": {
                "impression_share": point["ratio_ipw"],
                "harmonic_mean_pscore": ipw_ratio(pscore_distribution(bts_log, "harmonic")),
                "harmonic_mean_pscore_sums": pscore_distribution(bts_log, "harmonic")
                .sum(axis=1)
                .tolist(),
                "arithmetic_mean_pscore_renormalised": ipw_ratio(
                    pscore_distribution(bts_log, "arithmetic")
                ),
            },
        },
        "random_ctr": entry("random_ctr"),
        "bts_on_policy_ctr": entry("bts_on_policy_ctr"),
        "bts_on_policy_over_random": entry("on_policy_ratio"),
        "random_rows": len(random_log),
        "random_clicks": int(random_log.click.sum()),
        "bts_rows": len(bts_log),
        "bts_clicks": int(bts_log.click.sum()),
    }


def compare_targets(
    eval_random: BanditLog, targets: dict[str, FloatArray], settings: EvaluationSettings
) -> dict[str, Any]:
    """Each target's value on ``eval_random`` per estimator, over random's click rate and over
    BTS's value (when ``targets`` has ``bts``), and the differences value - random CTR and
    value - BTS value: one bootstrap resample of the rows serves every figure, so the
    intervals of ratios and differences are paired (tighter than two separate intervals)."""
    rewards_hat = cross_fitted_rewards(eval_random, settings.seed)
    feedback = {name: _feedback(eval_random, t, rewards_hat) for name, t in targets.items()}

    def values(rows: NDArray[np.intp]) -> dict[str, float]:
        random_ctr = float(eval_random.click[rows].mean())
        out = {"random_ctr": random_ctr}
        for name, log in feedback.items():
            sample = log.take(rows)
            for estimator in ESTIMATORS:
                value = estimate(sample, estimator)
                out[f"{name}|{estimator}|value"] = value
                out[f"{name}|{estimator}|over_random"] = _ratio(value, random_ctr)
                out[f"{name}|{estimator}|minus_random"] = value - random_ctr
        if "bts" in feedback:
            for name in feedback:
                for estimator in ESTIMATORS:
                    value, bts = out[f"{name}|{estimator}|value"], out[f"bts|{estimator}|value"]
                    out[f"{name}|{estimator}|over_bts"] = _ratio(value, bts)
                    out[f"{name}|{estimator}|minus_bts"] = value - bts
        return out

    brng = np.random.default_rng(settings.seed + 2)
    samples = Bootstrapped.run(
        values(np.arange(len(eval_random))),
        lambda: values(brng.integers(0, len(eval_random), len(eval_random))),
        settings.bootstrap,
    )

    def entry(key: str) -> dict[str, Any]:
        return samples.entry(key, settings.confidence)

    policies: dict[str, Any] = {}
    for name in feedback:
        report: dict[str, Any] = {}
        for estimator in ESTIMATORS:
            keys = ["value", "over_random", "minus_random"]
            if name != "bts" and "bts" in feedback:
                keys += ["over_bts", "minus_bts"]
            report[estimator] = {key: entry(f"{name}|{estimator}|{key}") for key in keys}
        dr = report["dr"]
        report["beats_random"] = bool(dr["minus_random"]["estimate"] > 0.0)
        report["beats_random_ci"] = bool(dr["minus_random"]["ci"][0] > 0.0)
        if "minus_bts" in dr:
            report["beats_bts"] = bool(dr["minus_bts"]["estimate"] > 0.0)
            report["beats_bts_ci"] = bool(dr["minus_bts"]["ci"][0] > 0.0)
        policies[name] = report
    return {
        "eval_rows": len(eval_random),
        "eval_clicks": int(eval_random.click.sum()),
        "random_ctr": entry("random_ctr"),
        "policies": policies,
        SAMPLES: samples,
    }


def compare_policies(
    train_logs: list[BanditLog],
    eval_random: BanditLog,
    eval_bts: BanditLog | None,
    settings: EvaluationSettings,
    candidate: SlateCandidate = CANDIDATES[0],
) -> dict[str, Any]:
    """Postwise's policies trained on ``train_logs`` (``postwise`` as ``candidate``), and BTS,
    evaluated on ``eval_random`` (see :func:`compare_targets`)."""
    rng = np.random.default_rng(settings.seed + 1)
    items = eval_random.items
    targets: dict[str, FloatArray] = {}
    if eval_bts is not None:
        targets["bts"] = _at_positions(position_distribution(eval_bts), eval_random)
    postwise = candidate_slate(candidate, train_logs, items, rng, settings.draws)
    targets["postwise"] = _at_positions(postwise, eval_random)
    beta = train_beta_thompson(train_logs)
    targets["beta_thompson"] = _at_positions(
        beta_thompson_slate(beta, rng, settings.draws), eval_random
    )
    precision, validation = choose_item_precision(train_logs, settings)
    features = ContextualFeatures(incumbent_share(train_logs, items))
    logistic = train_logistic_thompson(train_logs, features, precision)
    targets["logistic_thompson"] = _at_positions(
        logistic_thompson_slates(logistic, features, eval_random, rng, settings.draws),
        eval_random,
    )
    report = compare_targets(eval_random, targets, settings)
    report["policies"]["postwise"]["chosen"] = candidate.name
    report["policies"]["logistic_thompson"]["item_prior_precision"] = precision
    report["policies"]["logistic_thompson"]["validation_snipw"] = validation
    return {
        "train_rows": int(sum(len(log) for log in train_logs)),
        "train_clicks": int(sum(log.click.sum() for log in train_logs)),
        **report,
    }


def time_halves(logs: dict[str, BanditLog]) -> list[list[BanditLog]]:
    """The earlier and the later half (by timestamp) of every log."""
    halves = [log.split_by_time(0.5) for log in logs.values()]
    return [[pair[0] for pair in halves], [pair[1] for pair in halves]]


def cross_fitted_comparison(
    logs: dict[str, BanditLog],
    settings: EvaluationSettings,
    candidates: tuple[SlateCandidate, SlateCandidate] = (CANDIDATES[0], CANDIDATES[0]),
) -> dict[str, Any]:
    """``postwise`` and BTS evaluated on the whole random log by two-fold cross-fitting in
    time: each file is cut at its median timestamp; the policy trained on the earlier half
    (both logs) is evaluated on the later half of the random log, and the one trained on the
    later half on the earlier half, so no row is evaluated by a policy trained on it.
    ``candidates[k]`` is the candidate trained on half k. BTS gets the share of its
    impressions in the same half's BTS log."""
    random_log = logs["random"]
    halves = {p: log.split_by_time(0.5) for p, log in logs.items()}
    order = np.argsort(random_log.time, kind="stable")
    cut = len(random_log) - round(0.5 * len(random_log))
    rows = {0: order[:cut], 1: order[cut:]}
    rng = np.random.default_rng(settings.seed + 5)
    targets = {name: np.zeros((len(random_log), random_log.items)) for name in ("bts", "postwise")}
    if "bts" not in logs:
        del targets["bts"]
    chosen: list[str] = []
    for fold in (0, 1):
        train = [pair[1 - fold] for pair in halves.values()]
        evaluated = random_log.take(rows[fold])
        candidate = candidates[1 - fold]
        slate = candidate_slate(candidate, train, random_log.items, rng, settings.draws)
        chosen.append(candidate.name)
        targets["postwise"][rows[fold]] = _at_positions(slate, evaluated)
        if "bts" in targets:
            targets["bts"][rows[fold]] = _at_positions(
                position_distribution(halves["bts"][fold]), evaluated
            )
    report = compare_targets(random_log, targets, settings)
    report["chosen"] = {"trained_on_later_half": chosen[0], "trained_on_earlier_half": chosen[1]}
    return report


def training_logs(
    train: dict[str, BanditLog], test: dict[str, BanditLog] | None
) -> list[BanditLog]:
    """The logs Postwise's policies train on: all of ``train`` with a test folder, else the
    earliest 70% of each file."""
    if test is not None:
        return list(train.values())
    return [log.split_by_time(LATER_SHARE)[0] for log in train.values()]


@dataclass(frozen=True)
class PostwiseChoice:
    """The ``postwise`` candidate for the main protocol and for each cross-fitting half, each
    chosen on training rows pooled over the campaigns (:func:`pooled_choice`)."""

    main: SlateCandidate = CANDIDATES[0]
    halves: tuple[SlateCandidate, SlateCandidate] = (CANDIDATES[0], CANDIDATES[0])
    scores: dict[str, Any] | None = None


def choose_postwise(
    train_logs: dict[str, dict[str, BanditLog]],
    test_logs: dict[str, dict[str, BanditLog]] | None,
    settings: EvaluationSettings,
) -> PostwiseChoice:
    """The pooled choices over every campaign of the training folder that has a random log."""
    campaigns = {c: logs for c, logs in train_logs.items() if "random" in logs}
    main, main_scores = pooled_choice(
        {
            c: training_logs(logs, None if test_logs is None else test_logs.get(c, {}))
            for c, logs in campaigns.items()
        },
        settings,
    )
    first, first_scores = pooled_choice(
        {c: time_halves(logs)[0] for c, logs in campaigns.items()}, settings
    )
    second, second_scores = pooled_choice(
        {c: time_halves(logs)[1] for c, logs in campaigns.items()}, settings
    )
    return PostwiseChoice(
        main,
        (first, second),
        {"main": main_scores, "earlier_half": first_scores, "later_half": second_scores},
    )


def evaluate_campaign(
    train: dict[str, BanditLog],
    test: dict[str, BanditLog] | None,
    settings: EvaluationSettings,
    progress: Callable[[str], None] | None = None,
    choice: PostwiseChoice | None = None,
) -> dict[str, Any]:
    """Both questions for one campaign (see the module docstring); ``choice`` defaults to the
    incumbent's shares everywhere."""
    choice = choice or PostwiseChoice()
    if "random" not in train:
        raise ValueError("a campaign needs its random log")
    say = progress or (lambda _message: None)
    report: dict[str, Any] = {}
    if test is None:
        source = train
        earlier = {p: log.split_by_time(LATER_SHARE)[0] for p, log in train.items()}
        later = {p: log.split_by_time(LATER_SHARE)[1] for p, log in train.items()}
    else:
        source = test if "random" in test else train
        earlier, later = train, test
    if "bts" in source:
        say("TS over random")
        samples = ts_samples(source["random"], source["bts"], settings)
        report["ts_over_random"] = {
            **ts_report(samples, source["random"], source["bts"], settings),
            SAMPLES: samples,
        }
    if "random" in later:
        say("Postwise policies")
        report["policies"] = compare_policies(
            list(earlier.values()), later["random"], later.get("bts"), settings, choice.main
        )
    if test is None:
        say("Postwise policy, cross-fitted in time")
        report["cross_fitted"] = cross_fitted_comparison(train, settings, choice.halves)
    return report


def pool_campaigns(report: dict[str, Any], settings: EvaluationSettings) -> dict[str, Any]:
    """Figures pooled over the campaigns of ``report`` (each weighted by the rows of the random
    log it was measured on), and the bootstrap samples removed from ``report``: TS over random,
    and each policy over random on the later rows (and cross-fitted). One campaign's random log
    holds a few dozen clicks; the three together about three times as many."""
    blocks = {
        "ts_over_random": ("random_rows", [f"value_{e}" for e in ESTIMATORS], "random_ctr"),
        "policies": ("eval_rows", None, "random_ctr"),
        "cross_fitted": ("eval_rows", None, "random_ctr"),
    }
    out: dict[str, Any] = {}
    for block, (rows_key, numerators, denominator) in blocks.items():
        parts = [c[block] for c in report.values() if block in c]
        samples = [part.pop(SAMPLES) for part in parts]
        if not parts or len(parts) < len(report):
            continue
        weights = [float(part[rows_key]) for part in parts]
        pooled: dict[str, Any] = {"campaigns": sorted(report), "rows": int(sum(weights))}
        if numerators is not None:
            for estimator, key in zip(ESTIMATORS, numerators, strict=True):
                pooled[estimator] = pooled_ratio(
                    samples, weights, key, denominator, settings.confidence
                )
            pooled["bts_on_policy_over_random"] = pooled_ratio(
                samples, weights, "bts_on_policy_ctr", denominator, settings.confidence
            )
        else:
            for policy in parts[0]["policies"]:
                pooled[policy] = {
                    e: pooled_ratio(
                        samples, weights, f"{policy}|{e}|value", denominator, settings.confidence
                    )
                    for e in ESTIMATORS
                }
                pooled[policy]["beats_random_ci"] = bool(pooled[policy]["dr"]["ci"][0] > 1.0)
        out[block] = pooled
    return out


def _prefixed(say: Callable[[str], None], prefix: str) -> Callable[[str], None]:
    return lambda message: say(f"{prefix}: {message}")


def evaluate_open_bandit(
    train: Path,
    test: Path | None,
    settings: EvaluationSettings,
    campaigns: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The report of ``engage eval bandit``: per campaign (all those in ``train``, or
    ``campaigns``), TS over random and Postwise's policies; at the top, ``ts_over_random`` of
    the ``all`` campaign (obp's example), else of the first campaign. Raises DatasetError on
    a malformed folder and ValueError for a campaign that is not there."""
    say = progress or (lambda _message: None)
    say(f"reading {train}")
    train_logs = read_open_bandit(train)
    test_logs = None
    if test is not None:
        say(f"reading {test}")
        test_logs = read_open_bandit(test)
    chosen = list(campaigns) if campaigns else sorted(train_logs)
    unknown = [c for c in chosen if c not in train_logs]
    if unknown:
        raise ValueError(
            f"{train}: no campaign {', '.join(unknown)} "
            f"(campaigns: {', '.join(sorted(train_logs))})"
        )
    say("choosing the postwise candidate on training rows, pooled over campaigns")
    choice = choose_postwise(train_logs, test_logs, settings)
    report: dict[str, Any] = {}
    for campaign in chosen:
        if "random" not in train_logs[campaign]:
            raise ValueError(f"{train}: campaign {campaign!r} has no random/{campaign}/ log")
        say(f"campaign {campaign}")
        test_campaign = None
        if test_logs is not None:
            if campaign not in test_logs or "random" not in test_logs[campaign]:
                raise ValueError(f"{test}: no random/{campaign}/ log to evaluate on")
            test_campaign = test_logs[campaign]
        report[campaign] = evaluate_campaign(
            train_logs[campaign], test_campaign, settings, _prefixed(say, campaign), choice
        )
    pooled = pool_campaigns(report, settings)
    pooled_ts = pooled.get("ts_over_random", {})
    headline_campaign = "all" if "all" in report else chosen[0]
    headline = report[headline_campaign].get("ts_over_random")
    protocol = (
        "TS over random on the whole --train folder; policies trained on the earliest 70% of "
        "each --train file by timestamp, evaluated on the latest 30% of the random log"
        if test is None
        else "TS over random on the --test folder; policies trained on --train, evaluated on "
        "the --test random log"
    )
    return {
        "dataset": "open_bandit",
        "protocol": protocol,
        "estimators": list(ESTIMATORS),
        "bootstrap": settings.bootstrap,
        "confidence": settings.confidence,
        "seed": settings.seed,
        "ts_over_random": None
        if headline is None
        else {
            "campaign": headline_campaign,
            "reference": REFERENCE_TS_OVER_RANDOM,
            **{name: headline[name] for name in ESTIMATORS},
            "bts_on_policy_over_random": headline["bts_on_policy_over_random"],
            "pooled_over_campaigns": {
                name: pooled_ts[name] for name in ESTIMATORS if name in pooled_ts
            },
        },
        "pooled": pooled,
        "postwise_choice": {
            "candidates": [vars(c) for c in CANDIDATES],
            "main": choice.main.name,
            "earlier_half": choice.halves[0].name,
            "later_half": choice.halves[1].name,
            "validation_over_random": choice.scores,
        },
        "campaigns": report,
    }
