"""Population stability of a model's inputs and scores against its training data.

A *reference* summarises one column of the training data: the inner bin edges (deciles of the
observed values, duplicates merged, so a column with few distinct values gets fewer bins) and
the share of training rows in each bin, plus the share of missing values (NaN) as a bin of its
own. :func:`population_stability` bins current values on the same edges and returns

    PSI = sum over bins of (current - expected) * ln(current / expected)

with shares floored at :data:`PSI_FLOOR` so an empty bin counts as a large, finite shift. The
usual reading: below 0.1 stable, 0.1 to 0.2 a moderate shift, above 0.2 a significant one
(:data:`DEFAULT_PSI_THRESHOLD`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from postwise.core.errors import PostwiseError

REFERENCE_FILE = "drift_reference.json"
DEFAULT_BINS = 10
DEFAULT_PSI_THRESHOLD = 0.2
PSI_FLOOR = 1e-4


class DriftError(PostwiseError, ValueError):
    """A drift reference is malformed, or current data cannot be compared with it."""


def _as_array(values: Sequence[float] | np.ndarray, label: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as error:
        raise DriftError(f"{label}: values are not numbers ({error})") from error


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of ``values`` per bin (``len(edges) + 1`` bins, value <= edge goes left), then the
    missing share last."""
    missing = np.isnan(values)
    present = values[~missing]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    total = max(len(values), 1)
    return np.append(counts, missing.sum()).astype(np.float64) / total


def column_reference(
    values: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS
) -> dict[str, Any]:
    """The reference of one training column: ``edges`` and ``proportions`` (the last one is the
    share of missing values) and the row count."""
    array = _as_array(values, "reference")
    present = array[~np.isnan(array)]
    if len(present):
        # Observed values as edges: a column of few distinct values keeps them apart.
        quantiles = np.quantile(
            present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf"
        )
        edges = np.unique(quantiles)
    else:
        edges = np.array([], dtype=np.float64)
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(p) for p in _bin_shares(array, edges)],
        "rows": len(array),
    }


def population_stability(
    reference: Mapping[str, Any], values: Sequence[float] | np.ndarray
) -> float:
    """PSI of ``values`` against a :func:`column_reference`. Raises DriftError when the reference
    is malformed."""
    try:
        edges = np.asarray(reference["edges"], dtype=np.float64)
        expected = np.asarray(reference["proportions"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise DriftError(f"malformed drift reference ({error})") from error
    if len(expected) != len(edges) + 2:
        raise DriftError(
            f"malformed drift reference: {len(edges)} edges need {len(edges) + 2} proportions, "
            f"not {len(expected)}"
        )
    array = _as_array(values, "current")
    if len(array) == 0:
        raise DriftError("no current values to compare with the reference")
    actual = np.maximum(_bin_shares(array, edges), PSI_FLOOR)
    expected = np.maximum(expected, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def build_reference(
    features: Mapping[str, Sequence[float] | np.ndarray],
    scores: Sequence[float] | np.ndarray | None,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The drift reference of a training set: one :func:`column_reference` per input column
    and one of the model's scores on it (when given)."""
    return {
        "bins": bins,
        "features": {name: column_reference(column, bins) for name, column in features.items()},
        "scores": None if scores is None else column_reference(scores, bins),
    }


def write_reference(
    folder: Path,
    features: Mapping[str, Sequence[float] | np.ndarray],
    scores: Sequence[float] | np.ndarray | None,
) -> Path:
    """Write :func:`build_reference` of the training data beside a model (``folder /
    drift_reference.json``); registration stores it with the model. Returns the path."""
    path = folder / REFERENCE_FILE
    path.write_text(json.dumps(build_reference(features, scores)) + "\n")
    return path


def read_reference(folder: Path) -> dict[str, Any] | None:
    """The reference written by :func:`write_reference`, or None when the folder has none.
    Raises DriftError when it is not JSON."""
    path = folder / REFERENCE_FILE
    if not path.is_file():
        return None
    try:
        reference: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise DriftError(f"{path}: not JSON ({error}); retrain or delete it") from error
    return reference
