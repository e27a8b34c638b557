"""Design matrices of the propensity models: retail purchase and churn snapshots as of cut-offs,
and the bank marketing table (categories as integer codes learnt from the training rows). The
event-log snapshots (open, click) are in :mod:`postwise.engage.propensity_events`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from postwise.engage.datasets import BANK_CATEGORICAL, BANK_NUMERIC, BankTable, RetailLog
from postwise.engage.features import (
    CANCEL,
    DAY,
    PURCHASE,
    CustomerFeatures,
    EventTable,
    feature_names,
    features_as_of,
)

LABEL_DAYS = 30
# Churn: a customer with a purchase in the ACTIVE_DAYS before the cut-off who makes none in the
# CHURN_DAYS after it.
CHURN_DAYS = 90
ACTIVE_DAYS = 90
# open and click are read from event logs only (postwise.engage.propensity_events)
Target = Literal["purchase", "churn", "open", "click"]
TARGETS: tuple[Target, ...] = ("purchase", "churn", "open", "click")
SNAPSHOT_STEP_DAYS = 30
MIN_HISTORY_DAYS = 60  # a snapshot needs this much history before its cut-off
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Design:
    """Rows to score: features, label, the contact (or row) id and the cut-off it is as of."""

    features: np.ndarray
    label: np.ndarray
    ids: np.ndarray
    cutoff: np.ndarray  # int64 seconds per row (0 when the data has no time)
    names: tuple[str, ...]
    categorical: tuple[bool, ...]

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @staticmethod
    def stack(parts: list[Design]) -> Design:
        first = parts[0]
        return Design(
            np.vstack([p.features for p in parts]),
            np.concatenate([p.label for p in parts]),
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.cutoff for p in parts]),
            first.names,
            first.categorical,
        )


def iso(seconds: int) -> str:
    """Wall-clock seconds as ``YYYY-MM-DD HH:MM:SS``."""
    return (_EPOCH + timedelta(seconds=int(seconds))).isoformat(sep=" ")


def next_midnight(seconds: int) -> int:
    """The first midnight at or after ``seconds``."""
    return -(-int(seconds) // DAY) * DAY


def retail_orders(log: RetailLog) -> EventTable:
    """One event per (customer, invoice): the invoice's total value at its first line's time,
    kind PURCHASE or CANCEL (invoice prefixed C)."""
    key = log.customer * 10_000_000 + log.invoice * 2 + log.cancelled
    keys, first, row = np.unique(key, return_index=True, return_inverse=True)
    value = np.bincount(row, weights=log.amount, minlength=keys.shape[0])
    time = np.full(keys.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(time, row, log.time)
    kind = np.where(log.cancelled[first], CANCEL, PURCHASE).astype(np.int8)
    return EventTable(log.customer[first], time, value, kind)


def snapshot(
    table: CustomerFeatures,
    keep: np.ndarray,
    events: EventTable,
    label_kind: int,
    cutoff: int,
    label_end: int,
    absent_is_positive: bool = False,
) -> Design:
    """The rows of ``table`` selected by ``keep``, labelled 1 when the contact has an event of
    ``label_kind`` in ``[cutoff, label_end)`` (with ``absent_is_positive``, when it has none:
    churn)."""
    contacts = table.contacts[keep]
    window = (events.kind == label_kind) & (events.time >= cutoff) & (events.time < label_end)
    present = np.isin(contacts, events.contact[window])
    label = (~present if absent_is_positive else present).astype(np.int8)
    return Design(
        table.values[keep],
        label,
        contacts,
        np.full(contacts.shape[0], cutoff, dtype=np.int64),
        table.names,
        (False,) * len(table.names),
    )


def retail_snapshot(events: EventTable, cutoff: int, label_end: int) -> Design:
    """Customers with at least one purchase before ``cutoff``, their features as of it, and
    whether they purchase in ``[cutoff, label_end)``."""
    table = features_as_of(events, cutoff)
    keep = table.column("frequency") > 0
    return snapshot(table, keep, events, PURCHASE, cutoff, label_end)


def churn_snapshot(events: EventTable, cutoff: int, label_end: int) -> Design:
    """Customers with a purchase in the ``ACTIVE_DAYS`` before ``cutoff``, their features as of
    it, and whether they churn: no purchase in ``[cutoff, label_end)`` (label 1)."""
    table = features_as_of(events, cutoff)
    purchase = events.kind == PURCHASE
    active = purchase & (events.time >= cutoff - ACTIVE_DAYS * DAY) & (events.time < cutoff)
    keep = np.isin(table.contacts, events.contact[active])
    return snapshot(table, keep, events, PURCHASE, cutoff, label_end, absent_is_positive=True)


def label_days(target: Target) -> int:
    """Length of the label window of ``target``."""
    return CHURN_DAYS if target == "churn" else LABEL_DAYS


def target_snapshot(target: Target, events: EventTable, cutoff: int, label_end: int) -> Design:
    """:func:`retail_snapshot` or :func:`churn_snapshot`."""
    if target == "churn":
        return churn_snapshot(events, cutoff, label_end)
    return retail_snapshot(events, cutoff, label_end)


def snapshot_cutoffs(first_time: int, last_cutoff: int) -> list[int]:
    """Cut-offs every ``SNAPSHOT_STEP_DAYS`` back from ``last_cutoff`` (latest first) while at
    least ``MIN_HISTORY_DAYS`` of history precede them."""
    out: list[int] = []
    cutoff = last_cutoff
    while cutoff - first_time >= MIN_HISTORY_DAYS * DAY:
        out.append(cutoff)
        cutoff -= SNAPSHOT_STEP_DAYS * DAY
    return out


def retail_training(
    events: EventTable, history_end: int, target: Target = "purchase"
) -> list[Design]:
    """Training snapshots (latest first) whose label windows end by ``history_end``."""
    days = label_days(target)
    last_cutoff = history_end - days * DAY
    first = int(events.time.min())
    return [
        target_snapshot(target, events, c, c + days * DAY)
        for c in snapshot_cutoffs(first, last_cutoff)
    ]


def retail_feature_names() -> tuple[str, ...]:
    return feature_names(engagement=False)


@dataclass(frozen=True)
class BankEncoding:
    """Category codes learnt from training rows; an unseen category becomes NaN (missing)."""

    categories: dict[str, list[str]]

    @staticmethod
    def learn(table: BankTable, rows: np.ndarray) -> BankEncoding:
        return BankEncoding(
            {
                name: sorted({str(v) for v in table.categorical[rows, i]})
                for i, name in enumerate(BANK_CATEGORICAL)
            }
        )

    def design(self, table: BankTable, rows: np.ndarray) -> Design:
        codes = np.full((rows.shape[0], len(BANK_CATEGORICAL)), np.nan)
        for i, name in enumerate(BANK_CATEGORICAL):
            lookup = {v: float(k) for k, v in enumerate(self.categories[name])}
            codes[:, i] = [lookup.get(str(v), np.nan) for v in table.categorical[rows, i]]
        # pdays == 999 means "never contacted before": a flag, and -1 days
        numeric = table.numeric[rows].copy()
        pdays = list(BANK_NUMERIC).index("pdays")
        never = numeric[:, pdays] == 999
        numeric[never, pdays] = -1.0
        features = np.hstack([numeric, never[:, None].astype(np.float64), codes])
        names = (*BANK_NUMERIC, "never_contacted", *BANK_CATEGORICAL)
        flags = (False,) * (len(BANK_NUMERIC) + 1) + (True,) * len(BANK_CATEGORICAL)
        return Design(
            features,
            table.label[rows],
            rows.astype(np.int64),
            np.zeros(rows.shape[0], np.int64),
            names,
            flags,
        )
