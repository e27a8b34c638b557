"""Reader of the Hillstrom e-mail experiment in the shared layout.

A folder (or one file) of CSV files, gzipped or not, whatever their names, each with the
data set's columns: ``recency, history, mens, womens, zip_code, newbie, channel`` (pre-treatment
covariates), ``segment`` (the arm: ``Mens E-Mail``, ``Womens E-Mail``, ``No E-Mail``) and the
outcomes ``visit``, ``conversion`` (0/1) and ``spend`` (dollars). Other columns (``row_id``,
``history_segment``) are ignored. Malformed input raises ``CorpusError`` naming the file, the
line and the column; unknown ``zip_code`` / ``channel`` values are tolerated (all their
indicator columns are 0) because they are covariates, not labels.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from postwise.core.errors import CorpusError
from postwise.engage.datasets import data_files

TREATED_ARMS = ("Womens", "Mens")
BASELINE_UPLIFT_AT_30 = 0.0661  # scikit-uplift tutorial, Womens vs No E-Mail, visit
# The evaluation's internal split (as the hidden holdout: 30%, stratified) and its seed.
DEFAULT_SEED = 42
DEFAULT_TEST_SHARE = 0.3

ARMS = {"Womens E-Mail": "Womens", "Mens E-Mail": "Mens", "No E-Mail": "control"}
OUTCOMES = ("visit", "conversion", "spend")
BINARY_OUTCOMES = ("visit", "conversion")
_NUMERIC = ("recency", "history", "mens", "womens", "newbie")
_ZIP_CODES = ("Urban", "Surburban", "Rural")
_CHANNELS = ("Phone", "Web", "Multichannel")
REQUIRED_COLUMNS = (*_NUMERIC, "zip_code", "channel", "segment", *OUTCOMES)
FEATURE_NAMES = (
    *_NUMERIC,
    "log_history",
    *(f"zip_code={z}" for z in _ZIP_CODES),
    *(f"channel={c}" for c in _CHANNELS),
)


@dataclass(frozen=True)
class HillstromData:
    """Covariates (``features``, columns named by FEATURE_NAMES), the arm per row (``Womens``,
    ``Mens`` or ``control``), the outcomes by name, and a fingerprint of the files read."""

    features: NDArray[np.float64]
    arms: NDArray[np.str_]
    outcomes: dict[str, NDArray[np.float64]]
    fingerprint: str
    files: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.arms.shape[0])

    def subset(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> HillstromData:
        return HillstromData(
            self.features[rows],
            self.arms[rows],
            {name: values[rows] for name, values in self.outcomes.items()},
            self.fingerprint,
            self.files,
        )


def read_hillstrom(path: Path) -> HillstromData:
    """Every row of every CSV file under ``path``. Raises CorpusError on a missing column, an
    unknown arm, a value that is not a number, or an outcome out of range."""
    features: list[list[float]] = []
    arms: list[str] = []
    outcomes: dict[str, list[float]] = {name: [] for name in OUTCOMES}
    digest = hashlib.sha256()
    files = data_files(path, "hillstrom")
    for file in files:
        raw = file.read_bytes()
        digest.update(hashlib.sha256(raw).digest())
        _read_file(file, raw, features, arms, outcomes)
    if not arms:
        raise CorpusError(f"{path}: no data rows")
    return HillstromData(
        np.asarray(features, dtype=np.float64),
        np.asarray(arms, dtype=np.str_),
        {name: np.asarray(values, dtype=np.float64) for name, values in outcomes.items()},
        digest.hexdigest()[:16],
        tuple(f.name for f in files),
    )


def _read_file(
    file: Path,
    raw: bytes,
    features: list[list[float]],
    arms: list[str],
    outcomes: dict[str, list[float]],
) -> None:
    try:
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise CorpusError(f"{file}: cannot be read as (gzipped) UTF-8 CSV: {error}") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CorpusError(
            f"{file}: missing column(s) {', '.join(missing)}; the hillstrom schema needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num

        segment = (row.get("segment") or "").strip()
        if segment not in ARMS:
            raise CorpusError(
                f"{file}: line {line}: column 'segment': unknown arm {segment!r}; expected one "
                f"of {', '.join(ARMS)}"
            )
        zip_code = (row.get("zip_code") or "").strip()
        channel = (row.get("channel") or "").strip()
        features.append(
            [_number(file, line, row, c) for c in _NUMERIC]
            + [float(np.log1p(max(_number(file, line, row, "history"), 0.0)))]
            + [float(zip_code == z) for z in _ZIP_CODES]
            + [float(channel == c) for c in _CHANNELS]
        )
        arms.append(ARMS[segment])
        for name in OUTCOMES:
            value = _number(file, line, row, name)
            if name in BINARY_OUTCOMES and value not in (0.0, 1.0):
                raise CorpusError(f"{file}: line {line}: column {name!r}: {value} is not 0 or 1")
            if name == "spend" and value < 0:
                raise CorpusError(f"{file}: line {line}: column 'spend': {value} is negative")
            outcomes[name].append(value)


def _number(file: Path, line: int, row: dict[str, str], column: str) -> float:
    value = (row.get(column) or "").strip()
    try:
        result = float(value)
    except ValueError:
        raise CorpusError(
            f"{file}: line {line}: column {column!r}: {value!r} is not a number"
        ) from None
    if not np.isfinite(result):
        raise CorpusError(f"{file}: line {line}: column {column!r}: {value!r} is not finite")
    return result
