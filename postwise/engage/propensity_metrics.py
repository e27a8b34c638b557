"""Measures of a propensity score: ranking (AUC, top-decile lift) and calibration (log loss,
expected calibration error)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

ECE_BINS = 10


def expected_calibration_error(label: np.ndarray, score: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean score| over ``bins`` equal-width score bins, weighted by the
    share of rows in each bin."""
    edges = np.clip((score * bins).astype(np.int64), 0, bins - 1)
    predicted = np.bincount(edges, weights=score, minlength=bins)
    observed = np.bincount(edges, weights=label.astype(np.float64), minlength=bins)
    return float(np.abs(observed - predicted).sum() / max(label.shape[0], 1))


def top_decile_lift(label: np.ndarray, score: np.ndarray) -> float:
    """Positive rate among the 10% highest scores divided by the overall positive rate (ties
    broken by row order, so a constant score gives about 1)."""
    base = float(label.mean()) if label.shape[0] else 0.0
    if base == 0.0:
        return 0.0
    top = max(int(np.ceil(label.shape[0] / 10)), 1)
    order = np.argsort(-score, kind="stable")[:top]
    return float(label[order].mean() / base)


def propensity_metrics(label: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """``auc``, ``log_loss``, ``ece``, ``top_decile_lift`` and ``positive_rate`` (AUC is NaN when
    only one class is present)."""
    label = np.asarray(label).astype(np.int64)
    score = np.clip(np.asarray(score, dtype=np.float64), 1e-6, 1 - 1e-6)
    both = np.unique(label).shape[0] == 2
    return {
        "auc": round(float(roc_auc_score(label, score)), 4) if both else float("nan"),
        "log_loss": round(float(log_loss(label, score, labels=[0, 1])), 4),
        "ece": round(expected_calibration_error(label, score), 4),
        "top_decile_lift": round(top_decile_lift(label, score), 4),
        "positive_rate": round(float(label.mean()), 4),
    }


def ranking_metrics(label: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """``auc`` and ``top_decile_lift`` of a score that is not a probability."""
    label = np.asarray(label).astype(np.int64)
    return {
        "auc": round(float(roc_auc_score(label, score)), 4),
        "top_decile_lift": round(top_decile_lift(label, np.asarray(score, dtype=np.float64)), 4),
    }
