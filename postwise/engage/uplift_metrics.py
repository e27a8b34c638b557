"""Ranking metrics of uplift scores on randomised data, implemented from their definitions.

Rows are ranked by predicted uplift, highest first; rows with equal scores enter together.
After the top k rows (n_t treated with outcome sum y_t, n_c controls with sum y_c), over a
population of N rows:

- Qini curve: Q(k) = (y_t - y_c * n_t / n_c) / N — incremental outcome per member of the
  population when the top k are targeted (y_t / N while no control has been seen yet).
- Uplift curve: U(k) = (y_t / n_t - y_c / n_c) * k / N (a group not yet seen counts as mean 0).

Both are drawn against x = k / N from (0, 0), and integrated with the trapezoid rule.
``qini`` is the area between the Qini curve and the random-targeting diagonal from (0, 0) to
(1, Q(N)) — 0 for a random ranking, positive when the ranking finds the persuadable rows.
``auuc`` is the plain area under the uplift curve; random targeting gives about ATE / 2.
``uplift_at_k`` follows scikit-uplift's ``overall`` strategy: the top ``int(N * k)`` rows across
both groups, difference in mean outcome between treated and control rows among them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _ranked(
    y: ArrayLike, treatment: ArrayLike, score: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    outcome = np.asarray(y, dtype=float)
    treated = np.asarray(treatment, dtype=float)
    scores = np.asarray(score, dtype=float)
    if not outcome.shape == treated.shape == scores.shape or outcome.ndim != 1:
        raise ValueError("outcome, treatment and score must be 1-d arrays of one length")
    if outcome.size == 0:
        raise ValueError("no rows to rank")
    if not np.all((treated == 0) | (treated == 1)):
        raise ValueError("treatment must be 0 or 1")
    order = np.argsort(-scores, kind="mergesort")
    return outcome[order], treated[order], scores[order]


def _cumulative(
    y: ArrayLike, treatment: ArrayLike, score: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """k, n_t, n_c, y_t, y_c at each distinct score threshold, starting with k = 0."""
    outcome, treated, scores = _ranked(y, treatment, score)
    ends = np.r_[np.flatnonzero(np.diff(scores) != 0), scores.size - 1]
    k = (ends + 1).astype(float)
    n_t = np.cumsum(treated)[ends]
    y_t = np.cumsum(outcome * treated)[ends]
    y_c = np.cumsum(outcome * (1 - treated))[ends]
    columns = (k, n_t, k - n_t, y_t, y_c)
    k, n_t, n_c, y_t, y_c = (np.r_[0.0, column] for column in columns)
    return k, n_t, n_c, y_t, y_c


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def qini_curve(
    y: ArrayLike, treatment: ArrayLike, score: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(x, Q): share of the population targeted and incremental outcome per member."""
    k, n_t, n_c, y_t, y_c = _cumulative(y, treatment, score)
    total = k[-1]
    return k / total, (y_t - y_c * _ratio(n_t, n_c)) / total


def uplift_curve(
    y: ArrayLike, treatment: ArrayLike, score: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(x, U): share of the population targeted and (mean_t - mean_c) * k / N."""
    k, n_t, n_c, y_t, y_c = _cumulative(y, treatment, score)
    total = k[-1]
    return k / total, (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * k / total


def _area(x: FloatArray, values: FloatArray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (values[1:] + values[:-1]) / 2))


def qini_score(y: ArrayLike, treatment: ArrayLike, score: ArrayLike) -> float:
    """Area between the Qini curve and the random-targeting diagonal."""
    x, q = qini_curve(y, treatment, score)
    return _area(x, q) - float(q[-1]) / 2


def auuc_score(y: ArrayLike, treatment: ArrayLike, score: ArrayLike) -> float:
    """Area under the uplift curve (random targeting gives about ATE / 2)."""
    x, u = uplift_curve(y, treatment, score)
    return _area(x, u)


def uplift_at_k(y: ArrayLike, treatment: ArrayLike, score: ArrayLike, k: float = 0.3) -> float:
    """Mean outcome of treated minus control rows among the top ``int(N * k)`` rows by score
    (ties broken by original order). Raises ValueError when the top holds no treated or no
    control row."""
    if not 0.0 < k <= 1.0:
        raise ValueError("k must be in (0, 1]")
    outcome, treated, _ = _ranked(y, treatment, score)
    size = int(outcome.size * k)
    top_y, top_t = outcome[:size], treated[:size]
    if not np.any(top_t == 1) or not np.any(top_t == 0):
        raise ValueError(f"the top {size} rows lack a treated or a control row")
    return float(top_y[top_t == 1].mean() - top_y[top_t == 0].mean())
