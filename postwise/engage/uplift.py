"""Uplift models on scikit-learn, and their choice by measurement on the training data.

Every model estimates the effect of the treatment on one outcome, tau(x) = E[Y | T=1, x] -
E[Y | T=0, x], from randomised data: ``fit(X, y, treatment)`` then ``predict(X)``.

- ``two_model`` (T-learner): one outcome model per group, tau = mu1(x) - mu0(x).
- ``transformed_outcome``: one model of a transformed label whose expectation is tau. For 0/1
  outcomes, the class transformation Z = Y·T + (1-Y)·(1-T) with the groups reweighted to equal
  size, tau = 2·P(Z=1 | x) - 1; for continuous outcomes, a regression on Y·(T-p) / (p·(1-p)).
- ``x_learner``: the T-learner's models impute individual effects (treated: y - mu0(x);
  controls: mu1(x) - y), two effect regressions learn them, blended by the treated share p as
  tau = p·tau0(x) + (1-p)·tau1(x).

Each comes with a ``linear`` base learner (logistic regression / ridge on standardised features),
``blend`` (the mean of that linear model and one over every pairwise product of the features,
more strongly regularised: the interactions without their variance) or ``hgb`` (shallow,
strongly regularised histogram gradient boosting). ``select_model``
scores every candidate by Qini area in stratified folds of the training rows only, and the
best mean wins; ``make_model`` rebuilds it by name. Everything is seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

from postwise.engage.uplift_metrics import qini_score

FloatArray = NDArray[np.float64]
Predictor = Callable[[FloatArray], FloatArray]
METHODS = ("two_model", "transformed_outcome", "x_learner")
LEARNERS = ("linear", "blend", "hgb")
# ``poly`` (pairwise products, stronger regularisation) serves inside ``blend`` only.
_KINDS = (*LEARNERS, "poly")
CANDIDATES = tuple(f"{method}/{learner}" for method in METHODS for learner in LEARNERS)


class UpliftModel(Protocol):
    name: str

    def fit(self, X: ArrayLike, y: ArrayLike, treatment: ArrayLike) -> UpliftModel: ...

    def predict(self, X: ArrayLike) -> FloatArray: ...


def _is_binary(y: FloatArray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


@dataclass
class BaseLearner:
    """Factory of fitted predictors of one kind (``linear``, ``poly``, ``blend`` or ``hgb``),
    seeded."""

    kind: str
    seed: int = 0
    hgb_params: dict[str, float | int] = field(
        default_factory=lambda: {
            "learning_rate": 0.05,
            "max_iter": 120,
            "max_depth": 3,
            "min_samples_leaf": 200,
            "l2_regularization": 1.0,
        }
    )

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown base learner {self.kind!r}; expected one of {_KINDS}")

    def fit(
        self, X: FloatArray, y: FloatArray, weight: FloatArray | None = None, *, proba: bool
    ) -> Predictor:
        """A predictor of E[y | x]: class-1 probability when ``proba`` (y is 0/1), else a
        regression. A 0/1 label seen in one class only yields its constant."""
        if proba and np.unique(y).size < 2:
            return FittedPredictor(None, proba, float(y[0]) if y.size else 0.0)
        model: Any
        if self.kind == "blend":
            parts = tuple(
                BaseLearner(kind, self.seed).fit(X, y, weight, proba=proba)
                for kind in ("linear", "poly")
            )
            return MeanPredictor(parts)
        if self.kind in ("linear", "poly"):
            model = _linear_pipeline(self.kind == "poly", proba)
            step = model.steps[-1][0]
            model.fit(X, y, **({} if weight is None else {f"{step}__sample_weight": weight}))
            return FittedPredictor(model, proba)
        params: dict[str, Any] = {"early_stopping": False, "random_state": self.seed}
        params.update(self.hgb_params)
        if proba:
            model = HistGradientBoostingClassifier(**params)
        else:
            model = HistGradientBoostingRegressor(**params)
        # One thread: OpenMP threads fighting for a shared machine's cores made fits ~100x
        # slower, and small shallow boosters gain little from more threads anyway.
        with threadpool_limits(limits=1):
            model.fit(X, y, sample_weight=weight)
        return FittedPredictor(model, proba)


def _linear_pipeline(pairwise: bool, proba: bool) -> Any:
    """Standardised features into a logistic regression (``proba``) or a ridge; with
    ``pairwise``, every product of two features too, under stronger regularisation."""
    if not pairwise:
        estimator = LogisticRegression(C=1.0, max_iter=2000) if proba else Ridge(alpha=1.0)
        return make_pipeline(StandardScaler(), estimator)
    estimator = LogisticRegression(C=0.1, max_iter=3000) if proba else Ridge(alpha=10.0)
    return make_pipeline(
        StandardScaler(), PolynomialFeatures(2, include_bias=False), StandardScaler(), estimator
    )


@dataclass(frozen=True)
class FittedPredictor:
    """A fitted scikit-learn estimator as a function rows -> E[y | x] (picklable)."""

    estimator: Any
    proba: bool
    constant: float = 0.0

    def __call__(self, rows: FloatArray) -> FloatArray:
        if self.estimator is None:
            return np.full(rows.shape[0], self.constant)
        if self.proba:
            with threadpool_limits(limits=1):
                return np.asarray(self.estimator.predict_proba(rows)[:, 1], dtype=np.float64)
        with threadpool_limits(limits=1):
            return np.asarray(self.estimator.predict(rows), dtype=np.float64)


@dataclass(frozen=True)
class MeanPredictor:
    """The mean of several predictors' answers (picklable)."""

    parts: tuple[Predictor, ...]

    def __call__(self, rows: FloatArray) -> FloatArray:
        return np.asarray(np.mean([part(rows) for part in self.parts], axis=0), dtype=np.float64)


def _arrays(X: ArrayLike, y: ArrayLike, treatment: ArrayLike) -> tuple[FloatArray, ...]:
    rows = np.asarray(X, dtype=float)
    outcome = np.asarray(y, dtype=float)
    treated = np.asarray(treatment, dtype=float)
    if rows.ndim != 2 or not rows.shape[0] == outcome.shape[0] == treated.shape[0]:
        raise ValueError("X must be 2-d with one row per outcome and treatment")
    if not np.all((treated == 0) | (treated == 1)) or np.unique(treated).size != 2:
        raise ValueError("treatment must be 0/1 with both groups present")
    return rows, outcome, treated


@dataclass
class TwoModelUplift:
    learner: BaseLearner
    name: str = "two_model"
    _mu0: Predictor | None = None
    _mu1: Predictor | None = None

    def fit(self, X: ArrayLike, y: ArrayLike, treatment: ArrayLike) -> TwoModelUplift:
        rows, outcome, treated = _arrays(X, y, treatment)
        proba = _is_binary(outcome)
        self._mu1 = self.learner.fit(rows[treated == 1], outcome[treated == 1], proba=proba)
        self._mu0 = self.learner.fit(rows[treated == 0], outcome[treated == 0], proba=proba)
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        if self._mu0 is None or self._mu1 is None:
            raise ValueError("fit the model first")
        rows = np.asarray(X, dtype=float)
        return self._mu1(rows) - self._mu0(rows)


@dataclass
class TransformedOutcomeUplift:
    learner: BaseLearner
    name: str = "transformed_outcome"
    _model: Predictor | None = None
    _binary: bool = True

    def fit(self, X: ArrayLike, y: ArrayLike, treatment: ArrayLike) -> TransformedOutcomeUplift:
        rows, outcome, treated = _arrays(X, y, treatment)
        share = float(treated.mean())
        self._binary = _is_binary(outcome)
        if self._binary:
            label = outcome * treated + (1 - outcome) * (1 - treated)
            weight = np.where(treated == 1, 0.5 / share, 0.5 / (1 - share))
            self._model = self.learner.fit(rows, label, weight, proba=True)
        else:
            label = outcome * (treated - share) / (share * (1 - share))
            self._model = self.learner.fit(rows, label, proba=False)
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        if self._model is None:
            raise ValueError("fit the model first")
        prediction = self._model(np.asarray(X, dtype=float))
        return 2 * prediction - 1 if self._binary else prediction


@dataclass
class XLearnerUplift:
    learner: BaseLearner
    name: str = "x_learner"
    _tau0: Predictor | None = None
    _tau1: Predictor | None = None
    _share: float = 0.5

    def fit(self, X: ArrayLike, y: ArrayLike, treatment: ArrayLike) -> XLearnerUplift:
        rows, outcome, treated = _arrays(X, y, treatment)
        proba = _is_binary(outcome)
        x1, y1 = rows[treated == 1], outcome[treated == 1]
        x0, y0 = rows[treated == 0], outcome[treated == 0]
        mu1 = self.learner.fit(x1, y1, proba=proba)
        mu0 = self.learner.fit(x0, y0, proba=proba)
        self._tau1 = self.learner.fit(x1, y1 - mu0(x1), proba=False)
        self._tau0 = self.learner.fit(x0, mu1(x0) - y0, proba=False)
        self._share = float(treated.mean())
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        if self._tau0 is None or self._tau1 is None:
            raise ValueError("fit the model first")
        rows = np.asarray(X, dtype=float)
        return self._share * self._tau0(rows) + (1 - self._share) * self._tau1(rows)


def make_model(candidate: str, seed: int = 0) -> UpliftModel:
    """The model named ``method/learner`` (one of CANDIDATES). Raises ValueError otherwise."""
    method, _, kind = candidate.partition("/")
    learner = BaseLearner(kind, seed)
    if method == "two_model":
        return TwoModelUplift(learner)
    if method == "transformed_outcome":
        return TransformedOutcomeUplift(learner)
    if method == "x_learner":
        return XLearnerUplift(learner)
    raise ValueError(f"unknown uplift model {candidate!r}; expected one of {CANDIDATES}")


def stratified_folds(
    treatment: FloatArray, outcome: FloatArray, folds: int, seed: int
) -> NDArray[np.intp]:
    """Fold number per row, balanced within each (treatment, outcome > 0) stratum."""
    rng = np.random.default_rng(seed)
    assignment = np.empty(treatment.shape[0], dtype=np.intp)
    strata = treatment * 2 + (outcome > 0)
    for stratum in np.unique(strata):
        rows = np.flatnonzero(strata == stratum)
        rng.shuffle(rows)
        assignment[rows] = np.arange(rows.size) % folds
    return assignment


@dataclass(frozen=True)
class Selection:
    """The chosen candidate and every candidate's mean validation Qini area."""

    best: str
    validation_qini: dict[str, float]
    folds: int


def select_model(
    X: ArrayLike,
    y: ArrayLike,
    treatment: ArrayLike,
    candidates: Sequence[str] = CANDIDATES,
    folds: int = 3,
    seed: int = 0,
) -> Selection:
    """Cross-validate every candidate on these (training) rows by Qini area; highest mean wins
    (ties go to the earlier candidate, so list simpler ones first)."""
    rows, outcome, treated = _arrays(X, y, treatment)
    fold_of = stratified_folds(treated, outcome, folds, seed)
    scores: dict[str, float] = {}
    for candidate in candidates:
        values = []
        for fold in range(folds):
            fit_rows, held = fold_of != fold, fold_of == fold
            model = make_model(candidate, seed).fit(
                rows[fit_rows], outcome[fit_rows], treated[fit_rows]
            )
            values.append(qini_score(outcome[held], treated[held], model.predict(rows[held])))
        scores[candidate] = float(np.mean(values))
    best = max(candidates, key=lambda name: scores[name])
    return Selection(best, scores, folds)
