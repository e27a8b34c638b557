"""The ML classifier (ham / spam / phish) and the check that turns its output into symbols.

A model folder holds ``model.joblib`` (the fitted pipeline and its metadata) and
``MODEL_CARD.md`` / ``card.json`` (data, licence notes, metrics). It is written by
``postwise train inbound`` (:mod:`postwise.inbound.training`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer

from postwise.core.errors import ModelError
from postwise.core.types import CLASSES, Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.inbound.features import FEATURE_VERSION, hash_tokens, message_tokens
from postwise.mail.message import ParsedMessage

N_FEATURES = 2**18
MODEL_FILE = "model.joblib"
# Symbols that depend on trace headers or dates are not model inputs: the training corpus's
# trace headers describe how it was collected, not the mail.
NON_MODEL_SYMBOLS = frozenset({"RETURNPATH_MISMATCH", "MISSING_DATE", "INVALID_DATE"})


def hash_matrix(token_lists: Sequence[list[str]]) -> sparse.csr_matrix:
    """Token counts of many messages as one sparse matrix (rows = messages)."""
    indptr = [0]
    all_indices: list[np.ndarray] = []
    all_counts: list[np.ndarray] = []
    for tokens in token_lists:
        indices, counts = hash_tokens(tokens, N_FEATURES)
        all_indices.append(indices)
        all_counts.append(counts)
        indptr.append(indptr[-1] + len(indices))
    indices_array = np.concatenate(all_indices) if all_indices else np.zeros(0, dtype=np.int64)
    counts_array = np.concatenate(all_counts) if all_counts else np.zeros(0)
    return sparse.csr_matrix(
        (counts_array, indices_array, np.array(indptr)), shape=(len(token_lists), N_FEATURES)
    )


@dataclass
class InboundModel:
    """A fitted ham/spam/phish classifier over hashed message tokens."""

    version: str
    classes: tuple[str, ...]
    tfidf: TfidfTransformer
    estimator: Any
    card: dict[str, Any]

    @property
    def neutral(self) -> float:
        """The validated operating point (see :func:`model_symbol`); 0.5 when unknown."""
        metrics = self.card.get("validation_metrics", {})
        return float(metrics.get("threshold", 0.5))

    def __post_init__(self) -> None:
        # Scanning one message at a time through scikit-learn's generic path spends most of its
        # time validating inputs and transposing the coefficient matrix; linear families are
        # scored here directly from the same fitted parameters.
        self._idf = np.asarray(self.tfidf.idf_, dtype=np.float64)
        coef = getattr(self.estimator, "coef_", None)
        self._weights = np.ascontiguousarray(coef.T) if coef is not None else None
        self._intercept = np.asarray(getattr(self.estimator, "intercept_", 0.0))

    def vectorize(self, token_lists: Sequence[list[str]]) -> sparse.csr_matrix:
        return self.tfidf.transform(hash_matrix(token_lists))

    def _tfidf_row(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        indices, values = hash_tokens(tokens, N_FEATURES)
        values = (np.log(values) + 1.0) * self._idf[indices]  # sublinear tf times idf
        norm = float(np.sqrt(values @ values))
        return indices, values / norm if norm else values

    def _proba_from_decision(self, decision: np.ndarray) -> np.ndarray:
        loss = getattr(self.estimator, "loss", None)
        if loss == "modified_huber":
            clipped = (np.clip(decision, -1.0, 1.0) + 1.0) / 2.0
            total = clipped.sum()
            if total > 0:
                return np.asarray(clipped / total)
            return np.full(len(decision), 1.0 / len(decision))
        shifted = np.exp(decision - decision.max())  # multinomial logistic regression
        return np.asarray(shifted / shifted.sum())

    def predict_proba(self, token_lists: Sequence[list[str]]) -> np.ndarray:
        """Rows of probabilities in the order of ``self.classes``."""
        fast = self._weights is not None and (
            getattr(self.estimator, "loss", None) == "modified_huber"
            or type(self.estimator).__name__ == "LogisticRegression"
        )
        if not fast or len(token_lists) > 1:
            return np.asarray(self.estimator.predict_proba(self.vectorize(token_lists)))
        assert self._weights is not None
        indices, values = self._tfidf_row(token_lists[0])
        decision = values @ self._weights[indices] + self._intercept
        return self._proba_from_decision(decision)[np.newaxis, :]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": 1,
            "feature_version": FEATURE_VERSION,
            "version": self.version,
            "classes": list(self.classes),
            "tfidf": self.tfidf,
            "estimator": self.estimator,
        }
        joblib.dump(payload, folder / MODEL_FILE, compress=3)
        (folder / "card.json").write_text(json.dumps(self.card, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: Path) -> InboundModel:
        """Load a model folder. Raises ModelError naming the folder and what is wrong."""
        path = folder / MODEL_FILE
        if not path.is_file():
            raise ModelError(
                f"{folder}: no {MODEL_FILE}; train one with 'postwise train inbound --data DIR'"
            )
        try:
            payload = joblib.load(path)
        except Exception as error:
            raise ModelError(f"{path}: unreadable model file ({error})") from error
        if not isinstance(payload, dict) or payload.get("feature_version") != FEATURE_VERSION:
            raise ModelError(
                f"{path}: written for feature version {payload.get('feature_version')!r}, "
                f"this Postwise uses {FEATURE_VERSION}; retrain with 'postwise train inbound'"
            )
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        classes = tuple(payload["classes"])
        if set(classes) != set(CLASSES):
            raise ModelError(f"{path}: classes {classes} are not ham/spam/phish")
        return cls(
            version=str(payload["version"]),
            classes=classes,
            tfidf=payload["tfidf"],
            estimator=payload["estimator"],
            card=card,
        )


def model_symbol(probabilities: dict[str, float], neutral: float = 0.5) -> Symbol:
    """One ML symbol for a probability triple.

    ``neutral`` is the model's validated operating point: the p(not ham) above which it keeps
    ham FPR within 0.1% on validation (from its model card). At that point the factor is 0.5
    (half the symbol's weight), rising linearly to 1 at certainty; below it the message reads
    as ham and ML_HAM's factor rises from 0 at ``neutral`` to 1 at p(not ham) = 0."""
    bad = 1.0 - probabilities["ham"]
    neutral = min(max(neutral, 0.05), 0.95)
    if bad < neutral:
        return Symbol(
            "ML_HAM", f"p(ham)={probabilities['ham']:.3f}", factor=(neutral - bad) / neutral
        )
    name = "ML_PHISH" if probabilities["phish"] >= probabilities["spam"] else "ML_SPAM"
    evidence = f"p(spam)={probabilities['spam']:.3f} p(phish)={probabilities['phish']:.3f}"
    return Symbol(name, evidence, factor=0.5 + 0.5 * (bad - neutral) / (1.0 - neutral))


class ClassifierCheck:
    """The ML model as a check: it reads the message and the rule symbols found so far."""

    name = "classifier"

    def __init__(self, model: InboundModel) -> None:
        self.model = model

    def probabilities(self, message: ParsedMessage, prior: Sequence[Symbol]) -> dict[str, float]:
        inputs = [s for s in prior if s.name not in NON_MODEL_SYMBOLS]
        row = self.model.predict_proba([message_tokens(message, inputs)])[0]
        return {label: float(p) for label, p in zip(self.model.classes, row, strict=True)}

    def run_with(
        self, message: ParsedMessage, context: ScanContext, prior: Sequence[Symbol]
    ) -> list[Symbol]:
        probabilities = self.probabilities(message, prior)
        context.probabilities = probabilities
        return [model_symbol(probabilities, self.model.neutral)]

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        return self.run_with(message, context, ())
