"""Speed of the engage feature computation (issue #6: 1 million contacts in under 60 s).

Generates a seeded synthetic event table (purchases, cancellations, sends, opens and clicks over
a year; on average ``--events-per-contact`` events per contact) and times
``features_as_of`` with engagement features at a cut-off after the last event.
Prints a Markdown table; ``--json`` for machines.

    uv run python benchmarks/engage_features.py [--contacts 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from postwise.engage.features import CANCEL, CLICK, OPEN, PURCHASE, SENT, EventTable, features_as_of

YEAR = 365 * 86_400
START = 1_577_836_800  # 2020-01-01 00:00


def synthetic_events(contacts: int, per_contact: float, seed: int) -> EventTable:
    """A reproducible event table: activity per contact is skewed (gamma), times uniform over
    a year with a daytime bias, every contact has at least one, kinds drawn with mail-like
    proportions."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(0.7, max(per_contact - 1, 0.0) / 0.7, contacts)
    counts = 1 + rng.poisson(activity)  # every contact has at least one event
    contact = np.repeat(np.arange(contacts, dtype=np.int64) * 7 + 100_000, counts)
    total = contact.shape[0]
    days = rng.integers(0, 365, total)
    hours = np.clip(rng.normal(14, 4, total), 0, 23.99)
    when = START + days * 86_400 + (hours * 3600).astype(np.int64)
    kind = rng.choice(
        np.array([SENT, OPEN, CLICK, PURCHASE, CANCEL], dtype=np.int8),
        size=total,
        p=[0.5, 0.25, 0.1, 0.14, 0.01],
    )
    value = np.where(kind == PURCHASE, rng.lognormal(3.0, 1.0, total), 0.0)
    order = rng.permutation(total)  # the input arrives unsorted
    return EventTable(contact[order], when[order], value[order], kind[order])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events-per-contact", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    events = synthetic_events(args.contacts, args.events_per_contact, args.seed)
    cutoff = START + YEAR  # every event is history: the worst case
    timings = []
    result = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = features_as_of(events, cutoff, engagement=True)
        timings.append(time.perf_counter() - started)
    assert result is not None
    report = {
        "contacts_in_table": args.contacts,
        "events": len(events),
        "contacts_scored": int(result.contacts.shape[0]),
        "features": len(result.names),
        "best_seconds": round(min(timings), 2),
        "median_seconds": round(float(np.median(timings)), 2),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps(report))
        return
    print("| measure | value |\n|---|---:|")
    for key, value in report.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
