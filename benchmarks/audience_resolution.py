"""Speed of segment evaluation and audience resolution (issue #8): a seeded synthetic store of
``--contacts`` contacts (country and age attributes, 80% marketing consent), ``--events`` engage
events over a year and one propensity score per contact, in SQLite (a temporary file unless
``--url`` names a database), then a 3-condition segment (country, purchase within 90 days,
score >= 0.3), the same with a 4th (no click within 30 days), ``preview`` and
``resolve_audience`` (no caps).

    uv run python benchmarks/audience_resolution.py [--contacts 100000] [--events 1000000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from postwise.core.db import (
    ConsentRecord,
    ContactAddressRecord,
    ContactRecord,
    DecisionRecord,
    EngageEventRecord,
    open_database,
)
from postwise.engage.audiences import evaluate_segment, preview, resolve_audience
from postwise.engage.contacts import ContactStore

AT = datetime(2026, 11, 1, tzinfo=UTC)
SEGMENT = {
    "all": [
        {"attribute": "country", "in": ["UK", "FR"]},
        {"event": "purchase", "within_days": 90, "min_count": 1},
        {"score": "propensity:online_retail", "gte": 0.3},
    ]
}
SEGMENT_4 = {"all": [*SEGMENT["all"], {"not": {"event": "click", "within_days": 30}}]}


def load(url: str, contacts: int, events: int, seed: int) -> ContactStore:
    engine = open_database(url)
    rng = random.Random(seed)
    ids = [f"{i:064x}" for i in range(contacts)]
    countries = ["UK", "FR", "DE", "US", "ES"]
    kinds = ["sent", "open", "click", "purchase", "delivered"]
    with engine.begin() as connection:
        connection.execute(
            insert(ContactRecord),
            [
                {
                    "contact_id": contact,
                    "attributes": {"country": rng.choice(countries), "age": rng.randint(18, 80)},
                    "created_at": AT,
                    "updated_at": AT,
                }
                for contact in ids
            ],
        )
        connection.execute(
            insert(ContactAddressRecord),
            [{"contact_id": c, "address": f"c{i}@example.org"} for i, c in enumerate(ids)],
        )
        connection.execute(
            insert(ConsentRecord),
            [
                {
                    "contact_id": contact,
                    "purpose": "marketing",
                    "channel": "email",
                    "granted": rng.random() < 0.8,
                    "source": "benchmark",
                    "recorded_at": AT - timedelta(days=400),
                }
                for contact in ids
            ],
        )
        for start in range(0, events, 100_000):
            connection.execute(
                insert(EngageEventRecord),
                [
                    {
                        "event_id": f"e{k}",
                        "contact_id": ids[rng.randrange(contacts)],
                        "type": rng.choice(kinds),
                        "occurred_at": AT - timedelta(seconds=rng.randrange(365 * 86_400)),
                        "properties": {},
                        "value": None,
                    }
                    for k in range(start, min(start + 100_000, events))
                ],
            )
        connection.execute(
            insert(DecisionRecord),
            [
                {
                    "decision_id": f"d{i}",
                    "contact_id": contact,
                    "kind": "propensity_score",
                    "decision": {"score": rng.random()},
                    "model_name": "propensity:online_retail",
                    "model_version": "benchmark",
                    "features_sha256": "0" * 64,
                    "features": None,
                    "policy": "benchmark",
                    "decided_at": AT - timedelta(days=rng.randrange(60)),
                }
                for i, contact in enumerate(ids)
            ],
        )
    return ContactStore(engine, b"k" * 32)


def timed(label: str, call: object) -> None:
    started = time.perf_counter()
    result = call()  # type: ignore[operator]
    print(f"| {label} | {time.perf_counter() - started:.2f} s | {result} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'audience.sqlite3'}"
        started = time.perf_counter()
        store = load(url, args.contacts, args.events, args.seed)
        print(
            f"loaded {args.contacts} contacts, {args.events} events in "
            f"{time.perf_counter() - started:.1f} s\n"
        )
        print("| step | time | result |\n|---|---:|---|")
        timed("3-condition segment (first call)", lambda: len(evaluate_segment(store, SEGMENT, AT)))
        timed("3-condition segment (again)", lambda: len(evaluate_segment(store, SEGMENT, AT)))
        timed("4-condition segment", lambda: len(evaluate_segment(store, SEGMENT_4, AT)))
        timed("preview (no caps)", lambda: preview(store, SEGMENT, AT))
        timed("resolve_audience (no caps)", lambda: resolve_audience(store, SEGMENT, AT).counts())


if __name__ == "__main__":
    main()
