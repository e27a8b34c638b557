"""The ML classifier (ham / spam / phish) and the check that turns its output into symbols.

A model folder holds the fitted model and its card (``card.json``, ``MODEL_CARD.md``: data,
licence notes, metrics), written by ``postwise train inbound`` (:mod:`postwise.inbound.training`).
Linear families are stored as plain arrays in ``model.npz`` (idf, weights, intercepts), which
scanning reads and applies with numpy alone: no scikit-learn import, no pickle. Other families
are stored as ``model.joblib`` and applied through scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from postwise.core.errors import ModelError
from postwise.core.types import CLASSES, Symbol
from postwise.inbound.checks.auth import AUTH_SYMBOLS
from postwise.inbound.checks.base import ScanContext
from postwise.inbound.features import FEATURE_VERSION, hash_tokens, message_tokens
from postwise.mail.message import ParsedMessage

if TYPE_CHECKING:
    from scipy import sparse

N_FEATURES = 2**18
LINEAR_FILE = "model.npz"
PICKLED_FILE = "model.joblib"
# Symbols that depend on trace headers or dates are not model inputs: the training corpus's
# trace headers describe how it was collected, not the mail. Nor are the authentication
# symbols: the model was trained on files, which have no SMTP transaction to authenticate.
NON_MODEL_SYMBOLS = frozenset(
    {"RETURNPATH_MISMATCH", "MISSING_DATE", "INVALID_DATE", *AUTH_SYMBOLS}
)


def hash_matrix(token_lists: Sequence[list[str]]) -> sparse.csr_matrix:
    """Token counts of many messages as one sparse matrix (rows = messages)."""
    from scipy import sparse

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


@dataclass(frozen=True)
class LinearParameters:
    """A linear model over sublinear-tf x idf, L2-normalised hashed tokens."""

    idf: np.ndarray
    weights: np.ndarray  # n_features x n_classes, C-contiguous for row gathers
    intercept: np.ndarray
    kind: str  # "modified_huber" (SGD) or "softmax" (multinomial logistic regression)

    @classmethod
    def of(cls, tfidf: Any, estimator: Any) -> LinearParameters | None:
        coef = getattr(estimator, "coef_", None)
        if tfidf is None or coef is None:
            return None
        if getattr(estimator, "loss", None) == "modified_huber":
            kind = "modified_huber"
        elif type(estimator).__name__ == "LogisticRegression":
            kind = "softmax"
        else:
            return None
        return cls(
            idf=np.asarray(tfidf.idf_, dtype=np.float64),
            weights=np.ascontiguousarray(np.asarray(coef, dtype=np.float64).T),
            intercept=np.asarray(estimator.intercept_, dtype=np.float64),
            kind=kind,
        )

    def proba(self, tokens: list[str]) -> np.ndarray:
        indices, counts = hash_tokens(tokens, N_FEATURES)
        values = (np.log(counts) + 1.0) * self.idf[indices]  # sublinear tf times idf
        norm = float(np.sqrt(values @ values))
        if norm:
            values = values / norm
        decision = values @ self.weights[indices] + self.intercept
        if self.kind == "modified_huber":  # scikit-learn's estimate for this loss
            clipped = (np.clip(decision, -1.0, 1.0) + 1.0) / 2.0
            total = clipped.sum()
            if total > 0:
                return np.asarray(clipped / total)
            return np.full(len(decision), 1.0 / len(decision))
        shifted = np.exp(decision - decision.max())
        return np.asarray(shifted / shifted.sum())


@dataclass
class InboundModel:
    """A fitted ham/spam/phish classifier over hashed message tokens.

    Built from scikit-learn objects after training (``tfidf``, ``estimator``), or from stored
    linear parameters when loaded (``tfidf`` and ``estimator`` are then None)."""

    version: str
    classes: tuple[str, ...]
    tfidf: Any
    estimator: Any
    card: dict[str, Any]
    linear: LinearParameters | None = None

    def __post_init__(self) -> None:
        if self.linear is None:
            self.linear = LinearParameters.of(self.tfidf, self.estimator)
        if self.linear is None and self.estimator is None:
            raise ModelError(f"model {self.version}: neither linear parameters nor an estimator")

    @property
    def neutral(self) -> float:
        """The validated operating point (see :func:`model_symbol`); 0.5 when unknown."""
        metrics = self.card.get("validation_metrics", {})
        return float(metrics.get("threshold", 0.5))

    def predict_proba(self, token_lists: Sequence[list[str]]) -> np.ndarray:
        """Rows of probabilities in the order of ``self.classes``."""
        if self.linear is not None:
            return np.vstack([self.linear.proba(tokens) for tokens in token_lists])
        features = self.tfidf.transform(hash_matrix(token_lists))
        return np.asarray(self.estimator.predict_proba(features))

    def save(self, folder: Path) -> Path:
        """Write the model and ``card.json`` into ``folder``; returns the model file."""
        folder.mkdir(parents=True, exist_ok=True)
        for stale in (LINEAR_FILE, PICKLED_FILE):
            (folder / stale).unlink(missing_ok=True)
        meta = {
            "format": 2,
            "feature_version": FEATURE_VERSION,
            "version": self.version,
            "classes": list(self.classes),
        }
        if self.linear is not None:
            target = folder / LINEAR_FILE
            np.savez_compressed(
                target,
                meta=np.array(json.dumps(meta)),
                kind=np.array(self.linear.kind),
                idf=self.linear.idf,
                weights=self.linear.weights,
                intercept=self.linear.intercept,
            )
        else:
            import joblib

            target = folder / PICKLED_FILE
            joblib.dump(
                {**meta, "tfidf": self.tfidf, "estimator": self.estimator}, target, compress=3
            )
        (folder / "card.json").write_text(json.dumps(self.card, indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, folder: Path) -> InboundModel:
        """Load a model folder. Raises ModelError naming the folder and what is wrong."""
        card_path = folder / "card.json"
        try:
            card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        except ValueError as error:
            raise ModelError(f"{card_path}: not valid JSON ({error})") from error
        if (folder / LINEAR_FILE).is_file():
            path = folder / LINEAR_FILE
            try:
                with np.load(path, allow_pickle=False) as stored:
                    meta = json.loads(str(stored["meta"]))
                    linear = LinearParameters(
                        idf=stored["idf"],
                        weights=np.ascontiguousarray(stored["weights"]),
                        intercept=stored["intercept"],
                        kind=str(stored["kind"]),
                    )
            except Exception as error:
                raise ModelError(f"{path}: unreadable model file ({error})") from error
            _check_meta(path, meta)
            return cls(
                version=str(meta["version"]),
                classes=tuple(meta["classes"]),
                tfidf=None,
                estimator=None,
                card=card,
                linear=linear,
            )
        if (folder / PICKLED_FILE).is_file():
            import joblib

            path = folder / PICKLED_FILE
            try:
                payload = joblib.load(path)
            except Exception as error:
                raise ModelError(f"{path}: unreadable model file ({error})") from error
            _check_meta(path, payload)
            return cls(
                version=str(payload["version"]),
                classes=tuple(payload["classes"]),
                tfidf=payload["tfidf"],
                estimator=payload["estimator"],
                card=card,
            )
        raise ModelError(
            f"{folder}: no {LINEAR_FILE} or {PICKLED_FILE}; train one with "
            "'postwise train inbound --data DIR'"
        )


def _check_meta(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("feature_version") != FEATURE_VERSION:
        found = meta.get("feature_version") if isinstance(meta, dict) else None
        raise ModelError(
            f"{path}: written for feature version {found!r}, this Postwise uses "
            f"{FEATURE_VERSION}; retrain with 'postwise train inbound'"
        )
    if set(meta.get("classes", ())) != set(CLASSES):
        raise ModelError(f"{path}: classes {meta.get('classes')} are not ham/spam/phish")


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
