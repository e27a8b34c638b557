"""Features as of a cut-off: values, time-correctness (nothing after the cut-off is read)."""

from __future__ import annotations

import numpy as np

from postwise.engage.features import (
    CANCEL,
    CLICK,
    DAY,
    OPEN,
    PURCHASE,
    SENT,
    EventTable,
    features_as_of,
)

MONDAY = 1_704_067_200  # 2024-01-01 00:00, a Monday


def _events(rows: list[tuple[int, int, float, int]]) -> EventTable:
    contact, time, value, kind = zip(*rows, strict=True)
    return EventTable(
        np.asarray(contact, dtype=np.int64),
        np.asarray(time, dtype=np.int64),
        np.asarray(value, dtype=np.float64),
        np.asarray(kind, dtype=np.int8),
    )


def _history() -> list[tuple[int, int, float, int]]:
    return [
        (1, MONDAY + 10 * 3600, 20.0, PURCHASE),  # Monday 10:00
        (1, MONDAY + 3 * DAY + 15 * 3600, 30.0, PURCHASE),  # Thursday 15:00
        (1, MONDAY + 4 * DAY, 5.0, CANCEL),
        (2, MONDAY + 2 * DAY, 0.0, SENT),
        (2, MONDAY + 5 * DAY, 0.0, OPEN),
    ]


def test_values_of_a_small_history() -> None:
    cutoff = MONDAY + 10 * DAY
    table = features_as_of(_events(_history()), cutoff, engagement=True)
    assert list(table.contacts) == [1, 2]
    one = dict(zip(table.names, table.values[0], strict=True))
    assert one["frequency"] == 2
    assert one["monetary_total"] == 50.0
    assert one["monetary_mean"] == 25.0
    assert one["cancellations"] == 1
    assert one["tenure_days"] == (cutoff - MONDAY - 10 * 3600) / DAY
    assert one["recency_days"] == (cutoff - MONDAY - 3 * DAY - 15 * 3600) / DAY
    assert one["hour_10_share"] == 0.5 and one["hour_15_share"] == 0.5
    assert one["weekday_mon_share"] == 0.5 and one["weekday_thu_share"] == 0.5
    two = dict(zip(table.names, table.values[1], strict=True))
    assert two["frequency"] == 0 and np.isnan(two["recency_days"])
    assert two["engagement_recency_days"] == 5.0
    assert two["sends_30d"] == 1


def test_no_feature_reads_after_the_cut_off() -> None:
    cutoff = MONDAY + 10 * DAY
    before = features_as_of(_events(_history()), cutoff, engagement=True)
    future = [
        (1, cutoff, 1000.0, PURCHASE),  # exactly at the cut-off: already the future
        (1, cutoff + 3600, 70.0, PURCHASE),
        (2, cutoff + DAY, 0.0, CLICK),
        (3, cutoff + 2 * DAY, 9.0, PURCHASE),  # a contact who only exists later
        (1, cutoff + 5 * DAY, 4.0, CANCEL),
    ]
    rng = np.random.default_rng(0)
    rows = _history() + future
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    after = features_as_of(_events(shuffled), cutoff, engagement=True)
    assert np.array_equal(before.contacts, after.contacts)
    np.testing.assert_array_equal(before.values, after.values)


def test_random_tables_ignore_future_rows() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    events = EventTable(
        rng.integers(0, 300, n),
        MONDAY + rng.integers(0, 200 * DAY, n),
        rng.lognormal(2, 1, n),
        rng.choice(np.array([PURCHASE, CANCEL, SENT, OPEN, CLICK], dtype=np.int8), n),
    )
    cutoff = MONDAY + 100 * DAY
    kept = events.time < cutoff
    past_only = EventTable(
        events.contact[kept], events.time[kept], events.value[kept], events.kind[kept]
    )
    full = features_as_of(events, cutoff, engagement=True)
    past = features_as_of(past_only, cutoff, engagement=True)
    np.testing.assert_array_equal(full.values, past.values)
    assert np.nanmin(full.column("recency_days")) > 0


def test_empty_history_gives_no_rows() -> None:
    table = features_as_of(_events([(1, MONDAY + DAY, 1.0, PURCHASE)]), MONDAY)
    assert table.values.shape == (0, len(table.names))
