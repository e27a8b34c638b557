"""Customer features as of a cut-off time: the one feature module of ``postwise.engage``.

:func:`features_as_of` turns an event table (contact, time, value, kind) into one row per contact
from the events strictly before the cut-off, so a model trained on a past cut-off never sees
what happened after it. Everything is vectorised numpy (group-by through ``np.unique`` and
``np.bincount``): a million contacts take seconds, see ``benchmarks/engage_features.py``.

Times are wall-clock seconds since 1970-01-01 in the contact's (or the shop's) local time, so
hour-of-day and weekday profiles read the local clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURE_VERSION = 1
DAY = 86_400

# Event kinds. Purchases carry their value; cancellations their (negative or positive) value.
PURCHASE, CANCEL, SENT, OPEN, CLICK = 0, 1, 2, 3, 4
ENGAGEMENT_KINDS = (OPEN, CLICK)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BASE_FEATURES = (
    "recency_days",
    "tenure_days",
    "frequency",
    "purchases_30d",
    "purchases_90d",
    "monetary_total",
    "monetary_mean",
    "monetary_90d",
    "cancellations",
    "mean_gap_days",
    "overdue_ratio",
)
PROFILE_FEATURES = (
    *(f"hour_{h:02d}_share" for h in range(24)),
    *(f"weekday_{d}_share" for d in WEEKDAYS),
)
ENGAGEMENT_FEATURES = ("engagement_recency_days", "engagements_30d", "sends_30d")


@dataclass(frozen=True)
class EventTable:
    """Events as parallel numpy columns: ``contact`` (int64), ``time`` (int64 wall-clock
    seconds), ``value`` (float64, money for purchases, 0 otherwise), ``kind`` (int8, the
    constants above)."""

    contact: np.ndarray
    time: np.ndarray
    value: np.ndarray
    kind: np.ndarray

    def __post_init__(self) -> None:
        sizes = {a.shape[0] for a in (self.contact, self.time, self.value, self.kind)}
        if len(sizes) != 1:
            raise ValueError(f"event columns differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return int(self.contact.shape[0])


@dataclass(frozen=True)
class CustomerFeatures:
    """One row per contact (``contacts`` sorted ascending), columns named by ``names``."""

    contacts: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray  # float64, shape (len(contacts), len(names)); NaN = not defined

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def feature_names(engagement: bool = False) -> tuple[str, ...]:
    """The column names :func:`features_as_of` returns."""
    return BASE_FEATURES + PROFILE_FEATURES + (ENGAGEMENT_FEATURES if engagement else ())


def features_as_of(events: EventTable, cutoff: int, engagement: bool = False) -> CustomerFeatures:
    """Features of every contact with at least one event strictly before ``cutoff``
    (wall-clock seconds), computed from those events only.

    Recency, tenure and gaps are in days; ``*_30d`` / ``*_90d`` count the window just before
    the cut-off; hour and weekday shares are over purchases (all zero without any).
    ``engagement`` adds days since the last open or click and 30-day engagement and send
    counts. Undefined values (no purchase yet, a single purchase) are NaN.
    """
    before = events.time < cutoff
    contact = events.contact[before]
    time = events.time[before]
    value = events.value[before]
    kind = events.kind[before]
    contacts, row = np.unique(contact, return_inverse=True)
    n = contacts.shape[0]
    names = feature_names(engagement)
    out = np.full((n, len(names)), np.nan)
    if n == 0:
        return CustomerFeatures(contacts, names, out)
    age = (cutoff - time) / DAY  # > 0 for every kept event
    bought = kind == PURCHASE
    b_row, b_age, b_value = row[bought], age[bought], value[bought]

    def count(mask: np.ndarray, rows: np.ndarray = b_row) -> np.ndarray:
        return np.bincount(rows[mask], minlength=n).astype(np.float64)

    def total(weights: np.ndarray, rows: np.ndarray = b_row) -> np.ndarray:
        return np.bincount(rows, weights=weights, minlength=n)

    frequency = np.bincount(b_row, minlength=n).astype(np.float64)
    recency = np.full(n, np.inf)
    np.minimum.at(recency, b_row, b_age)
    oldest = np.zeros(n)
    np.maximum.at(oldest, row, age)
    oldest_purchase = np.zeros(n)
    np.maximum.at(oldest_purchase, b_row, b_age)
    has = frequency > 0
    recency[~has] = np.nan
    monetary = total(b_value)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(frequency > 1, (oldest_purchase - recency) / (frequency - 1), np.nan)
        columns = {
            "recency_days": recency,
            "tenure_days": oldest,
            "frequency": frequency,
            "purchases_30d": count(b_age <= 30),
            "purchases_90d": count(b_age <= 90),
            "monetary_total": monetary,
            "monetary_mean": np.where(has, monetary / frequency, np.nan),
            "monetary_90d": total(np.where(b_age <= 90, b_value, 0.0)),
            "cancellations": count(kind == CANCEL, row),
            "mean_gap_days": gap,
            "overdue_ratio": recency / np.maximum(gap, 1.0),
        }
    for name, column in columns.items():
        out[:, names.index(name)] = column
    b_time = time[bought]
    hours = (b_time // 3600) % 24
    weekdays = (b_time // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    divisor = np.maximum(frequency, 1.0)[:, None]
    first_hour = names.index("hour_00_share")
    out[:, first_hour : first_hour + 24] = (
        np.bincount(b_row * 24 + hours, minlength=n * 24).reshape(n, 24) / divisor
    )
    first_day = names.index("weekday_mon_share")
    out[:, first_day : first_day + 7] = (
        np.bincount(b_row * 7 + weekdays, minlength=n * 7).reshape(n, 7) / divisor
    )
    if engagement:
        engaged = np.isin(kind, ENGAGEMENT_KINDS)
        last_engaged = np.full(n, np.inf)
        np.minimum.at(last_engaged, row[engaged], age[engaged])
        last_engaged[np.isinf(last_engaged)] = np.nan
        out[:, names.index("engagement_recency_days")] = last_engaged
        out[:, names.index("engagements_30d")] = count(engaged & (age <= 30), row)
        out[:, names.index("sends_30d")] = count((kind == SENT) & (age <= 30), row)
    return CustomerFeatures(contacts, names, out)
