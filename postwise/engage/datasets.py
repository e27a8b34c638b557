"""Readers of the personalization data folders used by the propensity models.

A folder holds CSV files (gzipped or not, any names) of one data set's schema; which data set it
is comes from the header. Three are known here:

- ``online_retail``: the UCI Online Retail invoice-line log (one row per invoice line);
- ``bank_marketing``: the UCI Bank Marketing calls (one row per client, target ``y``);
- ``events``: the platform's own event exports, as ``postwise engage import events`` reads them
  (CSV with ``event_id``, ``type``, ``occurred_at`` and ``contact_id`` or ``email`` columns, or
  JSON lines ``*.jsonl`` / ``*.ndjson``); :mod:`postwise.engage.propensity_events` reads them.

Every problem with a file raises :class:`DatasetError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from postwise.core.errors import CorpusError

DatasetName = Literal["online_retail", "bank_marketing", "events"]

RETAIL_COLUMNS = ("InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
BANK_NUMERIC = (
    "age",
    "campaign",
    "pdays",
    "previous",
    "emp.var.rate",
    "cons.price.idx",
    "cons.conf.idx",
    "euribor3m",
    "nr.employed",
)
BANK_CATEGORICAL = (
    "job",
    "marital",
    "education",
    "default",
    "housing",
    "loan",
    "contact",
    "month",
    "day_of_week",
    "poutcome",
)
# ``duration`` is known only once the call has ended (it leaks the outcome): never read.
BANK_LEAKING = ("duration",)
BANK_COLUMNS = (*BANK_NUMERIC, *BANK_CATEGORICAL, "y")
EVENT_COLUMNS = ("event_id", "type", "occurred_at")
# JSON lines are only known as event exports (``.json`` is left out: data folders hold manifests)
JSON_LINES_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


_EPOCH = datetime(1970, 1, 1)


class DatasetError(CorpusError):
    """A data file is missing, empty, of an unknown schema or holds a malformed value."""


@dataclass(frozen=True)
class RetailLog:
    """Invoice lines with a customer, as numpy columns (one entry per line).

    ``time`` is seconds since 1970-01-01 of the naive local timestamp (UK time in the UCI file),
    so hour and weekday can be read from it directly.
    """

    customer: np.ndarray  # int64
    invoice: np.ndarray  # int64 (the number without a ``C`` prefix)
    cancelled: np.ndarray  # bool: the invoice number starts with C
    time: np.ndarray  # int64 seconds
    amount: np.ndarray  # float64, Quantity * UnitPrice
    files: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.customer.shape[0])

    @staticmethod
    def concat(first: RetailLog, second: RetailLog) -> RetailLog:
        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(first, name), getattr(second, name)])

        return RetailLog(
            customer=joined("customer"),
            invoice=joined("invoice"),
            cancelled=joined("cancelled"),
            time=joined("time"),
            amount=joined("amount"),
            files=first.files + second.files,
        )


@dataclass(frozen=True)
class BankTable:
    """Bank Marketing rows: numeric columns, categorical columns as strings, and ``y`` as 0/1."""

    numeric: np.ndarray  # float64, shape (rows, len(BANK_NUMERIC))
    categorical: np.ndarray  # object (str), shape (rows, len(BANK_CATEGORICAL))
    label: np.ndarray  # int8
    files: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.label.shape[0])


def data_files(folder: Path, layout: str = "") -> list[Path]:
    """The data files (``*.csv``, ``*.csv.gz``, and the event layout's JSON lines ``*.jsonl``,
    ``*.ndjson``, gzipped or not) of a folder, sorted by name (a file given instead of a folder
    is taken alone). Raises DatasetError when there is none; ``layout`` names the expected data
    set in the message."""
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such file or folder")
    suffixes = (".csv", ".csv.gz", *JSON_LINES_SUFFIXES)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))
    if not files:
        expected = f"; expected the {layout} layout" if layout else ""
        raise DatasetError(f"{folder}: no .csv, .csv.gz or .jsonl files{expected}")
    return files


def is_json_lines(path: Path) -> bool:
    """Whether ``path`` is named as a JSON-lines file (event exports only)."""
    return path.name.lower().endswith(JSON_LINES_SUFFIXES)


def read_text(path: Path, error: type[CorpusError] = DatasetError) -> str:
    """The text of a data file: gunzipped when it starts with the gzip magic bytes, decoded
    as UTF-8 (a byte-order mark dropped). Raises ``error`` naming the file when it is not."""
    raw = path.read_bytes()
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as problem:
        raise error(f"{path}: cannot be read as (gzipped) UTF-8 text: {problem}") from problem


def parse_number(
    path: Path, line: int, column: str, text: str, error: type[CorpusError] = DatasetError
) -> float:
    """``text`` of ``column`` as a finite float; otherwise ``error`` naming file, line, column."""
    try:
        value = float(text)
    except ValueError:
        raise error(
            f"{path} line {line}: column {column!r} holds {text[:40]!r}, not a number"
        ) from None
    if not np.isfinite(value):
        raise error(f"{path} line {line}: column {column!r} holds {text!r}, not finite")
    return value


def _rows(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """The header and an iterator over the rows of one CSV file (gzip by magic bytes)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DatasetError(f"{path}: not a readable gzip file ({error})") from error
    text = raw.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise DatasetError(f"{path}: empty file (no header line)")
    return [h.strip() for h in header], reader


def _detect(path: Path, header: list[str]) -> DatasetName:
    names = set(header)
    if "event_id" in names and "occurred_at" in names:
        missing = [c for c in EVENT_COLUMNS if c not in names]
        if not names & {"contact_id", "email", "address"}:
            missing.append("contact_id or email")
        if missing:
            raise DatasetError(f"{path}: events file lacks column(s) {', '.join(missing)}")
        return "events"
    if "InvoiceNo" in names or "InvoiceDate" in names:
        kind: DatasetName = "online_retail"
        required: tuple[str, ...] = RETAIL_COLUMNS
    elif "y" in names or "poutcome" in names or "euribor3m" in names:
        kind, required = "bank_marketing", BANK_COLUMNS
    else:
        raise DatasetError(
            f"{path}: unknown schema (columns {', '.join(header[:8])}); expected the "
            "online_retail (InvoiceNo, InvoiceDate, ...), bank_marketing (..., y) or events "
            "(event_id, type, occurred_at, contact_id or email) columns"
        )
    missing = [c for c in required if c not in names]
    if missing:
        raise DatasetError(f"{path}: {kind} file lacks column(s) {', '.join(missing)}")
    return kind


def detect_dataset(folder: Path) -> DatasetName:
    """Which data set a folder holds, from the header of its files (all must agree)."""
    kinds: set[DatasetName] = set()
    for path in data_files(folder):
        if is_json_lines(path):
            kinds.add("events")
            continue
        header, _ = _rows(path)
        kinds.add(_detect(path, header))
    if len(kinds) > 1:
        raise DatasetError(f"{folder}: files of different data sets ({', '.join(sorted(kinds))})")
    return kinds.pop()


def _timestamp(path: Path, line: int, text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DatasetError(
            f"{path} line {line}: column 'InvoiceDate' holds {text[:40]!r}, "
            "not a YYYY-MM-DD HH:MM:SS timestamp"
        ) from None
    # wall-clock seconds (not the machine's zone): hour and weekday profiles read local time
    return int((moment.replace(tzinfo=None) - _EPOCH).total_seconds())


def read_retail(folder: Path) -> RetailLog:
    """Every invoice line with a CustomerID of the folder's online_retail files (lines without a
    customer cannot be attributed and are skipped). Raises DatasetError on a malformed file."""
    customers: list[int] = []
    invoices: list[int] = []
    cancelled: list[bool] = []
    times: list[int] = []
    amounts: list[float] = []
    files = data_files(folder)
    for path in files:
        header, rows = _rows(path)
        if _detect(path, header) != "online_retail":
            raise DatasetError(f"{path}: not an online_retail file")
        at = {name: header.index(name) for name in RETAIL_COLUMNS}
        width = max(at.values()) + 1
        stamp_cache: dict[str, int] = {}
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < width:
                raise DatasetError(f"{path} line {line}: {len(row)} fields, expected {len(header)}")
            customer = row[at["CustomerID"]].strip()
            if not customer:
                continue
            invoice = row[at["InvoiceNo"]].strip()
            is_cancel = invoice[:1] in ("C", "c")
            digits = invoice[1:] if invoice[:1].isalpha() else invoice
            if not digits.isdigit():
                raise DatasetError(
                    f"{path} line {line}: column 'InvoiceNo' holds {invoice[:40]!r}, "
                    "not an invoice number"
                )
            stamp = row[at["InvoiceDate"]]
            seconds = stamp_cache.get(stamp)
            if seconds is None:
                seconds = stamp_cache[stamp] = _timestamp(path, line, stamp)
            quantity = parse_number(path, line, "Quantity", row[at["Quantity"]])
            price = parse_number(path, line, "UnitPrice", row[at["UnitPrice"]])
            customers.append(int(parse_number(path, line, "CustomerID", customer)))
            invoices.append(int(digits))
            cancelled.append(is_cancel)
            times.append(seconds)
            amounts.append(quantity * price)
    if not customers:
        raise DatasetError(f"{folder}: no invoice lines with a CustomerID")
    return RetailLog(
        customer=np.asarray(customers, dtype=np.int64),
        invoice=np.asarray(invoices, dtype=np.int64),
        cancelled=np.asarray(cancelled, dtype=bool),
        time=np.asarray(times, dtype=np.int64),
        amount=np.asarray(amounts, dtype=np.float64),
        files=tuple(p.name for p in files),
    )


def read_bank(folder: Path) -> BankTable:
    """Every row of the folder's bank_marketing files, without ``duration``.
    Raises DatasetError on a malformed file or a ``y`` other than yes/no."""
    numeric: list[list[float]] = []
    categorical: list[list[str]] = []
    labels: list[int] = []
    files = data_files(folder)
    for path in files:
        header, rows = _rows(path)
        if _detect(path, header) != "bank_marketing":
            raise DatasetError(f"{path}: not a bank_marketing file")
        num_at = [header.index(c) for c in BANK_NUMERIC]
        cat_at = [header.index(c) for c in BANK_CATEGORICAL]
        y_at = header.index("y")
        width = max([*num_at, *cat_at, y_at]) + 1
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < width:
                raise DatasetError(f"{path} line {line}: {len(row)} fields, expected {len(header)}")
            numeric.append(
                [
                    parse_number(path, line, c, row[i])
                    for c, i in zip(BANK_NUMERIC, num_at, strict=True)
                ]
            )
            categorical.append([row[i].strip() for i in cat_at])
            answer = row[y_at].strip().lower()
            if answer not in ("yes", "no", "1", "0"):
                raise DatasetError(
                    f"{path} line {line}: column 'y' holds {answer[:40]!r}, expected yes or no"
                )
            labels.append(int(answer in ("yes", "1")))
    if not labels:
        raise DatasetError(f"{folder}: no bank_marketing rows")
    return BankTable(
        numeric=np.asarray(numeric, dtype=np.float64).reshape(-1, len(BANK_NUMERIC)),
        categorical=np.asarray(categorical, dtype=object).reshape(-1, len(BANK_CATEGORICAL)),
        label=np.asarray(labels, dtype=np.int8),
        files=tuple(p.name for p in files),
    )


def read_retail_countries(folder: Path) -> dict[int, str]:
    """Each customer's country in the folder's online_retail files (the most frequent one when
    its lines disagree; ties go to the first seen). Files without a ``Country`` column give no
    entries. Raises DatasetError on a malformed CustomerID."""
    seen: dict[int, dict[str, int]] = {}
    for path in data_files(folder):
        header, rows = _rows(path)
        if _detect(path, header) != "online_retail":
            raise DatasetError(f"{path}: not an online_retail file")
        if "Country" not in header:
            continue
        at_customer, at_country = header.index("CustomerID"), header.index("Country")
        width = max(at_customer, at_country) + 1
        for line, row in enumerate(rows, start=2):
            if len(row) < width:
                continue  # read_retail reports short rows; a country is optional
            customer = row[at_customer].strip()
            if not customer:
                continue
            key = int(parse_number(path, line, "CustomerID", customer))
            tally = seen.setdefault(key, {})
            country = row[at_country].strip()
            tally[country] = tally.get(country, 0) + 1
    return {key: max(tally, key=lambda c: tally[c]) for key, tally in seen.items()}
