"""Campaign throughput: personalised messages rendered and queued per second, per core, and
peak memory, through the real runner path.

Builds N synthetic contacts (default 100,000: names, cities, segments, tracking consent for
about two thirds) in a temporary SQLite database with consent for marketing e-mail, creates a
campaign of ``examples/templates/welcome.toml`` with two subject variants and a 10% holdout,
and times :meth:`CampaignRunner.send_campaign`: audience (segment, consent, suppression list),
holdout assignment, per contact a bandit-drawn variant, render, tracked links and pixel, the
MIME message with List-Unsubscribe headers, then durable batch queueing (spool files fsynced,
one transaction per 500 messages) with the campaign rows, ``sent`` events and decisions. The
delivery worker does not run. "Per core" divides by the process's CPU seconds (one process,
one thread does the work); wall-clock figures are printed too.

    uv run python benchmarks/campaign_throughput.py --count 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from postwise.core.db import (
    ConsentRecord,
    ContactAddressRecord,
    ContactRecord,
    open_database,
)
from postwise.core.settings import Settings
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import create_campaign, definition_from_mapping
from postwise.engage.contacts import pseudonymise

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "templates" / "welcome.toml"
_NAMES = ["Ada", "Zoë", "Li", "Omar", "Søren", "María", "Kwame", "Yuki", None]
_CITIES = ["Paris", "Lyon", "Berlin", "Kraków", "Lagos", None]


def _populate(engine: object, key: bytes, count: int, seed: int) -> None:
    """Insert ``count`` contacts, their addresses and consent statements in bulk."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    batch = 5_000
    for start in range(0, count, batch):
        contacts, addresses, consents = [], [], []
        for index in range(start, min(count, start + batch)):
            address = f"contact{index}@mail.example"
            contact_id = pseudonymise(address, key)
            attributes: dict[str, object] = {"country": "UK"}
            if (name := rng.choice(_NAMES)) is not None:
                attributes["first_name"] = name
            if (city := rng.choice(_CITIES)) is not None:
                attributes["city"] = city
            attributes["segments"] = ["vip"] if rng.random() < 0.1 else ["regular"]
            contacts.append(
                {
                    "contact_id": contact_id,
                    "attributes": attributes,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            addresses.append({"contact_id": contact_id, "address": address})
            for purpose, granted in (("marketing", True), ("tracking", rng.random() < 0.67)):
                consents.append(
                    {
                        "contact_id": contact_id,
                        "purpose": purpose,
                        "channel": "email",
                        "granted": granted,
                        "source": "benchmark",
                        "recorded_at": now,
                    }
                )
        with engine.begin() as connection:  # type: ignore[attr-defined]
            connection.execute(insert(ContactRecord), contacts)
            connection.execute(insert(ContactAddressRecord), addresses)
            connection.execute(insert(ConsentRecord), consents)


def run(count: int, seed: int, folder: Path) -> dict[str, object]:
    settings = Settings(
        environment="test", data_dir=folder, tracking_base_url="https://t.postwise.example"
    )
    engine = open_database(settings.resolved_database_url)
    key = settings.resolved_engage_hmac_key()
    started = time.perf_counter()
    _populate(engine, key, count, seed)
    populate_seconds = time.perf_counter() - started
    definition = definition_from_mapping(
        {
            "id": "bench",
            "template": str(EXAMPLE),
            "segment": {"attribute": "country", "eq": "UK"},
            "holdout": 0.1,
            "subjects": ["Hello {{ first_name | default('there') }}", "What is new this week"],
        }
    )
    create_campaign(engine, definition)
    runner = CampaignRunner(settings, engine, rng=np.random.default_rng(seed))
    wall = time.perf_counter()
    cpu = time.process_time()
    report = runner.send_campaign("bench")
    cpu_seconds = time.process_time() - cpu
    wall_seconds = time.perf_counter() - wall
    spool = settings.outbound_spool_dir / "messages"
    spooled = sum(1 for _ in spool.iterdir())
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "contacts": count,
        "queued": report.queued,
        "held_out": report.holdout + report.global_holdout,
        "failed": len(report.failed),
        "spool_files": spooled,
        "variants": dict(report.variants),
        "populate_seconds": round(populate_seconds, 2),
        "send_wall_seconds": round(wall_seconds, 2),
        "send_cpu_seconds": round(cpu_seconds, 2),
        "messages_per_second_wall": round(report.queued / wall_seconds, 1),
        "messages_per_cpu_second": round(report.queued / cpu_seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the data in")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        print(json.dumps(run(args.count, args.seed, args.keep)))
        return
    with tempfile.TemporaryDirectory(prefix="postwise-campaign-bench-") as folder:
        print(json.dumps(run(args.count, args.seed, Path(folder))))


if __name__ == "__main__":
    main()
