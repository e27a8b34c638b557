"""Off-policy evaluation: the value a target policy would have had, estimated from another
policy's log.

Every estimator is a pure function of arrays over the logged rows i = 1..n:

- ``rewards`` r_i (the observed reward of the logged action);
- ``pscores`` p_i = pi_0(a_i | x_i), the logging policy's probability of the logged action;
- ``target`` w-numerators pi(a_i | x_i), the target policy's probability of the same action;
- for the doubly robust estimator, ``q_logged`` = q(x_i, a_i) and ``q_target`` =
  sum_a pi(a | x_i) q(x_i, a), a reward model's prediction for the logged action and its
  expectation under the target policy.

Definitions (Dudík, Langford and Li 2011; Swaminathan and Joachims 2015), with the importance
weight w_i = pi(a_i | x_i) / p_i:

- IPW   V = mean(w_i r_i), unbiased when p_i > 0 wherever pi puts mass;
- SNIPW V = sum(w_i r_i) / sum(w_i), slightly biased, lower variance, scale-free in w;
- DR    V = mean(q_target_i + w_i (r_i - q_logged_i)), unbiased whatever the reward model
  (its error only adds variance) and lower variance when the model is good.

Slates with positions follow obp's convention: a row is one (impression, position), p_i is the
logging probability of the item at that position, and pi(a_i | x_i) the target's probability of
putting that item at that position.

Confidence intervals are percentile bootstrap intervals over rows (:func:`bootstrap_interval`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


class OffPolicyError(ValueError):
    """Arrays of different lengths, an empty log, or a logging probability outside (0, 1]."""


def _arrays(*arrays: ArrayLike) -> list[FloatArray]:
    out = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    lengths = {a.shape[0] for a in out}
    if len(lengths) != 1:
        raise OffPolicyError(f"arrays of different lengths: {sorted(lengths)}")
    if lengths == {0}:
        raise OffPolicyError("an empty log has no value to estimate")
    return out


def importance_weights(pscores: ArrayLike, target: ArrayLike) -> FloatArray:
    """pi(a_i | x_i) / pi_0(a_i | x_i); raises OffPolicyError for a logging probability outside
    (0, 1] or a target probability outside [0, 1]."""
    p, t = _arrays(pscores, target)
    if not ((p > 0) & (p <= 1)).all():
        raise OffPolicyError("logging probabilities must be in (0, 1]")
    if not ((t >= 0) & (t <= 1 + 1e-9)).all():
        raise OffPolicyError("target probabilities must be in [0, 1]")
    return t / p


def ipw(rewards: ArrayLike, pscores: ArrayLike, target: ArrayLike) -> float:
    """Inverse propensity weighting: mean(w_i r_i)."""
    (r,) = _arrays(rewards)
    w = importance_weights(pscores, target)
    if w.shape != r.shape:
        raise OffPolicyError("rewards and probabilities have different lengths")
    return float(np.mean(w * r))


def snipw(rewards: ArrayLike, pscores: ArrayLike, target: ArrayLike) -> float:
    """Self-normalised IPW: sum(w_i r_i) / sum(w_i); 0 when the target never takes a logged
    action (every weight 0)."""
    (r,) = _arrays(rewards)
    w = importance_weights(pscores, target)
    if w.shape != r.shape:
        raise OffPolicyError("rewards and probabilities have different lengths")
    total = float(np.sum(w))
    return float(np.sum(w * r) / total) if total > 0 else 0.0


def doubly_robust(
    rewards: ArrayLike,
    pscores: ArrayLike,
    target: ArrayLike,
    q_logged: ArrayLike,
    q_target: ArrayLike,
) -> float:
    """Doubly robust: mean(q_target_i + w_i (r_i - q_logged_i))."""
    r, ql, qt = _arrays(rewards, q_logged, q_target)
    w = importance_weights(pscores, target)
    if w.shape != r.shape:
        raise OffPolicyError("rewards and probabilities have different lengths")
    return float(np.mean(qt + w * (r - ql)))


@dataclass(frozen=True)
class LoggedFeedback:
    """One log as arrays (see the module docstring); ``q_logged`` / ``q_target`` may be None
    when no doubly robust estimate is wanted."""

    rewards: FloatArray
    pscores: FloatArray
    target: FloatArray
    q_logged: FloatArray | None = None
    q_target: FloatArray | None = None

    def take(self, rows: NDArray[np.intp]) -> LoggedFeedback:
        return LoggedFeedback(
            self.rewards[rows],
            self.pscores[rows],
            self.target[rows],
            None if self.q_logged is None else self.q_logged[rows],
            None if self.q_target is None else self.q_target[rows],
        )


ESTIMATORS = ("ipw", "snipw", "dr")


def estimate(log: LoggedFeedback, estimator: str) -> float:
    """The value of ``log.target`` by ``estimator`` (ipw, snipw or dr)."""
    if estimator == "ipw":
        return ipw(log.rewards, log.pscores, log.target)
    if estimator == "snipw":
        return snipw(log.rewards, log.pscores, log.target)
    if estimator == "dr":
        if log.q_logged is None or log.q_target is None:
            raise OffPolicyError("the doubly robust estimator needs reward-model predictions")
        return doubly_robust(log.rewards, log.pscores, log.target, log.q_logged, log.q_target)
    raise OffPolicyError(f"unknown estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")


def bootstrap_interval(
    statistic: Callable[[NDArray[np.intp]], float],
    rows: int,
    rng: np.random.Generator,
    resamples: int = 200,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(row_indices)``, resampling ``rows`` rows
    with replacement ``resamples`` times."""
    if rows <= 0 or resamples <= 1:
        raise OffPolicyError("a bootstrap needs rows and at least two resamples")
    values = np.array(
        [statistic(rng.integers(0, rows, size=rows)) for _ in range(resamples)], dtype=np.float64
    )
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def estimate_with_interval(
    log: LoggedFeedback,
    estimator: str,
    rng: np.random.Generator,
    resamples: int = 200,
    confidence: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """The estimate on the whole log and its percentile bootstrap interval."""
    point = estimate(log, estimator)
    interval = bootstrap_interval(
        lambda rows: estimate(log.take(rows), estimator),
        len(log.rewards),
        rng,
        resamples,
        confidence,
    )
    return point, interval
