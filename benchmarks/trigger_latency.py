"""Triggered-message latency: how long from ``POST /v1/events`` to the message queued and to the
message at the receiving server, through a running ``postwise serve``.

The stack is ``postwise serve`` as a child process (API, trigger watcher polling every second,
delivery worker; ``postwise.testing.ServeProcess``) delivering over MX records that a local DNS
server points at a ProviderSink on 127.0.0.2. Before it starts, ``--events`` contacts with
marketing consent and a trigger campaign (``cart_abandoned``, ``once_per_hours = 0``) are stored.
Then one ``cart_abandoned`` event per contact is POSTed, ``--interval`` seconds apart (a latency
run, not a throughput one), and for each:

- event → queued: from just before its POST to the ``created_at`` of its queued message (the
  outbound queue row of the campaign message whose occasion is the event id);
- event → delivered: from just before its POST to the moment the sink accepted it.

All on one machine's clock (wall time). Reports the median, p95 and maximum of each.

    uv run python benchmarks/trigger_latency.py                 # 50 events, 0.2 s apart
    uv run python benchmarks/trigger_latency.py --events 200 --interval 0.05 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from postwise.core.db import OutboundMessageRecord, open_database
from postwise.core.settings import Settings
from postwise.engage.campaigns import (
    CampaignMessageRecord,
    create_campaign,
    definition_from_mapping,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import import_records
from postwise.testing import ProviderSink
from postwise.testing.provider_sink import free_port
from postwise.testing.serve_process import ServeProcess, domain_shaping, sink_zone

DOMAIN = "mail.bench.test"
TEMPLATE = """
subject = "Your cart is waiting"
from = "Shop <shop@shop.bench.test>"
layout = '''<html><body><ul>
{% for item in event["cart"] %}<li>{{ item.title }} ({{ item.price }})</li>{% endfor %}
</ul><a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'''
"""


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 4),
        "p95": round(p95, 4),
        "max": round(ordered[-1], 4),
    }


def _prepare(data_dir: Path, count: int) -> dict[str, str]:
    """Contacts and the trigger campaign, stored before the server starts; address by id."""
    settings = Settings(data_dir=data_dir)
    engine = open_database(settings.resolved_database_url)
    store = ContactStore.from_settings(settings, engine)
    records = [
        {
            "email": f"reader{n}@{DOMAIN}",
            "attributes": {"first_name": f"Reader{n}"},
            "consent": [{"purpose": "marketing", "channel": "email", "granted": True}],
        }
        for n in range(count)
    ]
    report, _ = import_records(store, "contacts", records)
    if report.failed:
        raise RuntimeError(f"{report.failed} contacts were refused")
    create_campaign(
        engine,
        definition_from_mapping(
            {
                "id": "cart",
                "template_source": TEMPLATE,
                "segment": {"attribute": "first_name", "exists": True},
                "trigger": {"event": "custom", "name": "cart_abandoned", "once_per_hours": 0},
            }
        ),
    )
    engine.dispose()
    return {f"reader{n}@{DOMAIN}": f"bench-{n}" for n in range(count)}


def _queued_at(data_dir: Path) -> dict[str, float]:
    """Event id -> created_at of its queued message."""
    engine = open_database(Settings(data_dir=data_dir).resolved_database_url)
    messages, queue = CampaignMessageRecord, OutboundMessageRecord
    with engine.connect() as connection:
        rows = connection.execute(
            select(messages.occasion, queue.created_at).join(
                queue, queue.id == messages.queue_message_id
            )
        )
        found = {str(occasion): float(created) for occasion, created in rows}
    engine.dispose()
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="postwise-trigger-bench-"))
    sink = ProviderSink("127.0.0.2", free_port("127.0.0.2"), name="sink")
    sink.start()
    zone = sink_zone([sink], [DOMAIN]).start()
    shaping = work / "shaping.toml"
    shaping.write_text(domain_shaping([DOMAIN], 10))
    events = _prepare(work / "data", args.events)
    server = ServeProcess(
        work / "data",
        zone,
        sink.port,
        shaping,
        # the shipped poll interval: a queued message is picked up by the wake, not a poll
        extra_env={"POSTWISE_DELIVERY_POLL_SECONDS": "1"},
    )
    posted: dict[str, float] = {}
    try:
        server.start()
        server.wait_ready(timeout=120)
        with httpx.Client(base_url=server.url(""), timeout=30) as client:
            for address, event_id in events.items():
                posted[event_id] = time.time()
                reply = client.post(
                    "/v1/events",
                    json={
                        "event_id": event_id,
                        "type": "custom",
                        "email": address,
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "properties": {
                            "name": "cart_abandoned",
                            "cart": [{"title": "Blue mug", "price": 12.5}],
                        },
                    },
                )
                reply.raise_for_status()
                time.sleep(args.interval)
        deadline = time.monotonic() + args.timeout
        while sink.count() < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    except Exception:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        zone.stop()
        sink.stop()
    delivered_at: dict[str, float] = {}
    for message in sink.messages:
        reached = events.get(message.rcpt_to[0])
        if reached is not None:
            delivered_at.setdefault(reached, message.received_at)
    queued_at = _queued_at(work / "data")
    to_queue = [queued_at[e] - posted[e] for e in posted if e in queued_at]
    to_sink = [delivered_at[e] - posted[e] for e in posted if e in delivered_at]
    return {
        "events": len(events),
        "interval_s": args.interval,
        "queued": len(to_queue),
        "delivered": len(to_sink),
        "duplicates": len(sink.messages) - len(delivered_at),
        "event_to_queued_s": _summary(to_queue),
        "event_to_delivered_s": _summary(to_sink),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between POSTs")
    parser.add_argument("--timeout", type=float, default=60.0, help="wait for delivery (s)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    missing = result["events"] - result["delivered"]
    return 1 if missing or result["duplicates"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
