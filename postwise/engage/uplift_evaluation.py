"""The uplift protocol on Hillstrom: per arm (Womens, Mens vs No E-Mail) and outcome (visit,
conversion, spend), choose a model on the training rows, fit it there, and score the test rows.

Without a test folder the rows are split here: stratified by arm x visit x conversion, a seeded
share (30% by default, the hidden holdout's design) goes to test. Model choice uses folds of the
training rows only; the test rows are touched once, to score the chosen model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from postwise.engage.experiments import average_effect
from postwise.engage.hillstrom import (
    DEFAULT_SEED,
    DEFAULT_TEST_SHARE,
    OUTCOMES,
    TREATED_ARMS,
    HillstromData,
)
from postwise.engage.uplift import CANDIDATES, make_model, select_model
from postwise.engage.uplift_metrics import auuc_score, qini_score, uplift_at_k


def split_rows(
    data: HillstromData, test_share: float = DEFAULT_TEST_SHARE, seed: int = DEFAULT_SEED
) -> tuple[HillstromData, HillstromData]:
    """(train, test): round(test_share · n) rows of every arm x visit x conversion stratum go to
    test, drawn with a seeded generator."""
    if not 0.0 < test_share < 1.0:
        raise ValueError("the test share must be in (0, 1)")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(data), dtype=bool)
    keys = np.char.add(
        data.arms,
        np.char.add(
            data.outcomes["visit"].astype(int).astype(str),
            data.outcomes["conversion"].astype(int).astype(str),
        ),
    )
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        rng.shuffle(rows)
        is_test[rows[: round(test_share * rows.size)]] = True
    return data.subset(~is_test), data.subset(is_test)


def arm_rows(data: HillstromData, arm: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Covariates of the arm's and the control's rows, and which of them were treated."""
    rows = (data.arms == arm) | (data.arms == "control")
    return data.features[rows], data.arms[rows] == arm


def evaluate_uplift(
    train: HillstromData,
    test: HillstromData,
    seed: int = DEFAULT_SEED,
    folds: int = 3,
    candidates: Sequence[str] = CANDIDATES,
    arms: Sequence[str] = TREATED_ARMS,
    outcomes: Sequence[str] = OUTCOMES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``{"arms": {arm: {outcome: {qini, auuc, uplift_at_30, ate, ate_ci, model, ...}}}}``
    measured on ``test`` for models chosen and fitted on ``train``."""
    report: dict[str, Any] = {"arms": {}}
    for arm in arms:
        x_train, t_train = arm_rows(train, arm)
        x_test, t_test = arm_rows(test, arm)
        if t_test.all() or not t_test.any() or t_train.all() or not t_train.any():
            raise ValueError(f"arm {arm!r} or the control group is missing from a folder")
        per_outcome: dict[str, Any] = {}
        for outcome in outcomes:
            if progress is not None:
                progress(f"{arm} / {outcome}")
            keep_train = (train.arms == arm) | (train.arms == "control")
            keep_test = (test.arms == arm) | (test.arms == "control")
            y_train = train.outcomes[outcome][keep_train]
            y_test = test.outcomes[outcome][keep_test]
            treated_train, treated_test = t_train.astype(float), t_test.astype(float)
            selection = select_model(x_train, y_train, treated_train, candidates, folds, seed)
            model = make_model(selection.best, seed).fit(x_train, y_train, treated_train)
            score = model.predict(x_test)
            effect = average_effect(y_test[t_test], y_test[~t_test])
            per_outcome[outcome] = {
                "qini": qini_score(y_test, treated_test, score),
                "auuc": auuc_score(y_test, treated_test, score),
                "uplift_at_30": uplift_at_k(y_test, treated_test, score, 0.3),
                "ate": effect.effect,
                "ate_ci": [effect.ci_low, effect.ci_high],
                "model": selection.best,
                "validation_qini": selection.validation_qini,
            }
        report["arms"][arm] = per_outcome
    return report
