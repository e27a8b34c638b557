"""Learning from feedback: an online correction on top of the shipped classifier.

The shipped model (:mod:`postwise.inbound.classifier`) is fitted once on a public corpus; a
deployment's own mail differs from it. :class:`OnlineModel` is a multinomial logistic regression
over the same hashed tokens (:func:`~postwise.inbound.features.message_tokens`,
:func:`~postwise.inbound.features.hash_tokens`, ``N_FEATURES``) that takes the shipped model's
log-probabilities as a fixed offset::

    p = softmax(log p_base + W·x + b)

so it learns only what the shipped model gets wrong on this deployment's mail. ``x`` holds the
message's sublinear term frequencies (1 + log count) times the base corpus's idf squared,
L2-normalised: a correction moves the tokens that set the message apart, not the structure
nearly every message shares. With no corrections (``W`` and ``b`` zero) the base probabilities
are returned unchanged, without any arithmetic.

Each correction (:meth:`OnlineModel.learn_one`) takes plain SGD steps on the cross-entropy with
an L2 penalty on the touched rows: at least one, and more (up to ``max_steps``) until the
corrected message reaches ``p(label) >= target``, so that one report fixes that message and its
near-duplicates. Weights are clipped to ``±clip``; base probabilities are floored at ``floor``
so that a certain-but-wrong base model (probability exactly 0) can still be overruled. The
intercept ``b`` is not learned by default (``bias_learning_rate`` 0): users report more missed
phishing than false alarms, and a learned intercept turns that imbalance into false alarms on
all mail. There is no randomness: the same corrections in the same order give the same weights
and version.

Written by hand on numpy rather than with river: river's linear models take no per-example base
margin (offset), and the weights are persisted as plain arrays in ``.npz`` (loaded with
``allow_pickle=False``), never pickled. Every update is written atomically (temporary file, then
:func:`os.replace`) under an advisory file lock, and every process using the file notices a new
version at its next prediction (one ``stat`` call) and reloads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from postwise.core.errors import ModelError
from postwise.core.types import CLASSES
from postwise.inbound.classifier import N_FEATURES, InboundModel
from postwise.inbound.features import FEATURE_VERSION, hash_tokens

FORMAT = 1
_N_CLASSES = len(CLASSES)
_log = structlog.get_logger(__name__)

FileSignature = tuple[int, int, int]  # inode, size, mtime in ns


@dataclass(frozen=True)
class OnlineParameters:
    """Hyperparameters of the online correction. The defaults were chosen with
    ``benchmarks/learning_shift.py --tune`` (folds of the correction stream, never the
    evaluation part): ``idf_power`` trades phishing recall for false alarms (0: 98.6% / 1.2%
    ham FPR; 2: 94.6% / 0.08%), a learned intercept raised ham FPR from 0.08% to 1.9%, and the
    step settings moved neither by more than a point (see docs/benchmarks.md)."""

    learning_rate: float = 1.0
    bias_learning_rate: float = 0.0
    l2: float = 1e-4
    max_steps: int = 10
    target: float = 0.9
    clip: float = 10.0
    floor: float = 1e-4
    idf_power: float = 2.0


@dataclass(frozen=True)
class _State:
    """One immutable snapshot of the weights: predictions read it without a lock."""

    weights: np.ndarray | None  # N_FEATURES x classes; None while nothing was learned
    bias: np.ndarray
    counts: np.ndarray  # corrections per class, in CLASSES order
    version: str

    @property
    def updates(self) -> int:
        return int(self.counts.sum())


def _empty_state() -> _State:
    return _State(
        weights=None,
        bias=np.zeros(_N_CLASSES),
        counts=np.zeros(_N_CLASSES, dtype=np.int64),
        version="online-0",
    )


def _features(
    tokens: Sequence[str], feature_weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Hashed feature indices and their values: (1 + log count) times the feature's weight,
    L2-normalised."""
    indices, counts = hash_tokens(list(tokens), N_FEATURES)
    values = np.log(counts) + 1.0 if len(counts) else counts
    if feature_weights is not None:
        values = values * feature_weights[indices]
    norm = float(np.sqrt(values @ values)) if len(values) else 0.0
    return indices, (values / norm if norm else values)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return np.asarray(shifted / shifted.sum())


def _version(rows: np.ndarray, weights: np.ndarray, bias: np.ndarray, counts: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in (rows, np.round(weights, 12), np.round(bias, 12), counts):
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"online-{int(counts.sum())}-{digest.hexdigest()[:6]}"


def _signature(path: Path) -> FileSignature | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _class_index(label: str) -> int:
    if label not in CLASSES:
        raise ValueError(f"label must be one of {', '.join(CLASSES)}, not {label!r}")
    return CLASSES.index(label)


@dataclass(frozen=True)
class LearnResult:
    """What one correction did: the combined probabilities of the message before and after."""

    message_sha256: str
    label: str
    before: dict[str, float]
    after: dict[str, float]
    online_version: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_sha256": self.message_sha256,
            "label": self.label,
            "before": {k: round(v, 4) for k, v in self.before.items()},
            "after": {k: round(v, 4) for k, v in self.after.items()},
            "online_version": self.online_version,
            "counts": self.counts,
        }


def base_idf(model: InboundModel) -> np.ndarray | None:
    """The inverse document frequencies of ``model``'s training corpus, when it has them."""
    if model.linear is not None:
        return model.linear.idf
    idf = getattr(model.tfidf, "idf_", None)
    return None if idf is None else np.asarray(idf, dtype=np.float64)


class OnlineModel:
    """An online multinomial logistic correction of a base model's probabilities.

    ``path`` is where the weights live (None: in memory only); use :meth:`open` to read an
    existing file. ``idf`` (:func:`base_idf` of the base model) weights each token by how rare
    it was in the base model's corpus, raised to ``params.idf_power``: a correction then moves
    the tokens that tell this message apart, not the ones nearly every message has (without
    it, reports of missed phishing drag ordinary mail towards phishing; measured in
    ``benchmarks/learning_shift.py``). Without ``idf`` every token weighs the same.

    Thread-safe: predictions read an immutable snapshot, updates are serialised by a lock (and,
    across processes, by an advisory lock on ``<path>.lock``)."""

    def __init__(
        self,
        path: Path | None = None,
        params: OnlineParameters | None = None,
        idf: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.params = params or OnlineParameters()
        if idf is not None and idf.shape != (N_FEATURES,):
            raise ValueError(f"idf must hold {N_FEATURES} values, not {idf.shape}")
        self._feature_weights = None if idf is None else np.power(idf, self.params.idf_power)
        self._state = _empty_state()
        self._signature: FileSignature | None = None  # of the file the weights came from
        self._unreadable: FileSignature | None = None  # of a file that failed to load
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, path: Path, params: OnlineParameters | None = None, idf: np.ndarray | None = None
    ) -> OnlineModel:
        """The model stored at ``path``, or an empty one when the file does not exist yet.

        Raises ModelError naming the file when it exists but cannot be read."""
        model = cls(path, params, idf)
        with model._lock:
            model._reload(strict=True)
        return model

    # ------------------------------------------------------------------ what it is

    @property
    def version(self) -> str:
        """``online-<updates>-<hash of the weights>``; ``online-0`` while empty."""
        self._refresh()
        return self._state.version

    @property
    def updates(self) -> int:
        self._refresh()
        return self._state.updates

    @property
    def counts(self) -> dict[str, int]:
        """Corrections learned per class."""
        self._refresh()
        return {label: int(n) for label, n in zip(CLASSES, self._state.counts, strict=True)}

    @property
    def is_empty(self) -> bool:
        self._refresh()
        return self._state.weights is None

    # ------------------------------------------------------------------ predicting

    def predict_proba_one(
        self, tokens: Sequence[str], base: Mapping[str, float]
    ) -> dict[str, float]:
        """The combined probabilities of one message (``base``: the shipped model's)."""
        return self.predict_with_version(tokens, base)[0]

    def predict_with_version(
        self, tokens: Sequence[str], base: Mapping[str, float]
    ) -> tuple[dict[str, float], str | None]:
        """The combined probabilities and the version that produced them (None while the model
        is empty, in which case ``base`` is returned unchanged)."""
        self._refresh()
        state = self._state  # one snapshot for the whole prediction
        if state.weights is None:
            return dict(base), None
        indices, values = _features(tokens, self._feature_weights)
        row = self._combine(state, indices, values, self._offset(base))
        return dict(zip(CLASSES, row.tolist(), strict=True)), state.version

    def _offset(self, base: Mapping[str, float]) -> np.ndarray:
        try:
            probabilities = np.array([float(base[label]) for label in CLASSES])
        except KeyError as error:
            raise ValueError(f"base probabilities lack class {error}") from None
        return np.asarray(np.log(np.clip(probabilities, self.params.floor, 1.0)))

    @staticmethod
    def _combine(
        state: _State, indices: np.ndarray, values: np.ndarray, offset: np.ndarray
    ) -> np.ndarray:
        assert state.weights is not None
        return _softmax(offset + values @ state.weights[indices] + state.bias)

    # ------------------------------------------------------------------ learning

    def learn_one(self, tokens: Sequence[str], label: str, base: Mapping[str, float]) -> None:
        """Learn that the message with ``tokens`` (base probabilities ``base``) is ``label``,
        and persist the new weights when the model has a path.

        Raises ValueError for an unknown label, ModelError when the file on disk is corrupt."""
        target_index = _class_index(label)
        indices, values = _features(tokens, self._feature_weights)
        offset = self._offset(base)
        with self._lock, self._file_lock():
            self._reload(strict=True)  # another process may have learned since
            state = self._state
            weights = (
                state.weights.copy()
                if state.weights is not None
                else np.zeros((N_FEATURES, _N_CLASSES))
            )
            bias = state.bias.copy()
            truth = np.zeros(_N_CLASSES)
            truth[target_index] = 1.0
            params = self.params
            rows = weights[indices]
            for _ in range(max(params.max_steps, 1)):
                probabilities = _softmax(offset + values @ rows + bias)
                gradient = probabilities - truth
                rows -= params.learning_rate * (np.outer(values, gradient) + params.l2 * rows)
                np.clip(rows, -params.clip, params.clip, out=rows)
                bias -= params.bias_learning_rate * (gradient + params.l2 * bias)
                if _softmax(offset + values @ rows + bias)[target_index] >= params.target:
                    break
            weights[indices] = rows
            counts = state.counts.copy()
            counts[target_index] += 1
            nonzero = np.flatnonzero(np.any(weights != 0.0, axis=1))
            new_state = _State(
                weights=weights,
                bias=bias,
                counts=counts,
                version=_version(nonzero, weights[nonzero], bias, counts),
            )
            if self.path is not None:
                self._signature = self._write(self.path, new_state, nonzero)
            self._state = new_state

    # ------------------------------------------------------------------ persistence

    def _refresh(self) -> None:
        """Reload when the file changed on disk (cheap: one ``stat``)."""
        if self.path is None:
            return
        signature = _signature(self.path)
        if signature == self._signature or (
            signature is not None and signature == self._unreadable
        ):
            return
        with self._lock:
            self._reload(strict=False)

    def _reload(self, strict: bool) -> None:
        """Bring the in-memory state up to the file. Caller holds ``self._lock``. A corrupt
        file raises ModelError when ``strict``; otherwise (a scan) it is logged and the
        current weights are kept, so mail keeps flowing."""
        if self.path is None:
            return
        signature = _signature(self.path)
        if signature == self._signature:
            return
        if signature is None:  # deleted: the model was reset
            self._state, self._signature = _empty_state(), None
            return
        if not strict and signature == self._unreadable:
            return
        try:
            state = self._read(self.path)
        except ModelError as error:
            if strict:
                raise
            _log.warning("online model not reloaded", error=str(error))
            self._unreadable = signature  # scans do not retry until the file changes again
            return
        self._state, self._signature = state, signature

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, state: _State, rows: np.ndarray) -> FileSignature | None:
        assert state.weights is not None
        meta = {
            "format": FORMAT,
            "feature_version": FEATURE_VERSION,
            "n_features": N_FEATURES,
            "classes": list(CLASSES),
            "version": state.version,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed before the rename)
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        )
        try:
            with handle:
                np.savez(  # uncompressed: float weights shrink little, and writes stay fast
                    handle,
                    meta=np.array(json.dumps(meta)),
                    rows=rows.astype(np.int64),
                    weights=state.weights[rows],
                    bias=state.bias,
                    counts=state.counts,
                )
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
        return _signature(path)

    @staticmethod
    def _read(path: Path) -> _State:
        remedy = f"delete {path} to start learning afresh (or restore a backup of it)"
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                rows = np.asarray(stored["rows"], dtype=np.int64)
                row_weights = np.asarray(stored["weights"], dtype=np.float64)
                bias = np.asarray(stored["bias"], dtype=np.float64)
                counts = np.asarray(stored["counts"], dtype=np.int64)
        except Exception as error:
            raise ModelError(f"{path}: unreadable online model ({error}); {remedy}") from error
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelError(f"{path}: not an online model of format {FORMAT}; {remedy}")
        if meta.get("feature_version") != FEATURE_VERSION or meta.get("n_features") != N_FEATURES:
            raise ModelError(
                f"{path}: written for feature version {meta.get('feature_version')!r} with "
                f"{meta.get('n_features')!r} features, this Postwise uses {FEATURE_VERSION} with "
                f"{N_FEATURES}; the learned corrections no longer apply: {remedy}"
            )
        if (
            list(meta.get("classes", ())) != list(CLASSES)
            or row_weights.shape != (len(rows), _N_CLASSES)
            or bias.shape != (_N_CLASSES,)
            or counts.shape != (_N_CLASSES,)
            or (len(rows) and (rows.min() < 0 or rows.max() >= N_FEATURES))
            or not (np.isfinite(row_weights).all() and np.isfinite(bias).all())
        ):
            raise ModelError(f"{path}: inconsistent online model arrays; {remedy}")
        if counts.sum() == 0 and not len(rows):
            return _empty_state()
        weights = np.zeros((N_FEATURES, _N_CLASSES))
        weights[rows] = row_weights
        return _State(
            weights=weights,
            bias=bias,
            counts=counts,
            version=_version(rows, row_weights, bias, counts),
        )
