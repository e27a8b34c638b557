"""The SIGKILL durability run shared by ``benchmarks/outbound_durability.py`` and the test
suite: ``postwise serve`` is killed while it delivers, then started again; afterwards every
queued message must have reached the sinks (or bounced), and each exactly once.

A duplicate is possible in one place only: a sink answered 250 to the end of DATA and the
process died before the outcome was committed (the window RFC 1047 describes; every MTA has
it). A loss would be a message accepted into the queue that is never delivered nor bounced.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.submission import Submitter
from postwise.outbound.suppression import SuppressionList
from postwise.testing.provider_sink import ProviderSink, free_port
from postwise.testing.serve_process import ServeProcess, domain_shaping, sink_zone


def message(index: int, domain: str) -> tuple[str, bytes]:
    message_id = f"<d{index:06d}@sender.durability.test>"
    body = (
        f"From: News <news@sender.durability.test>\r\nTo: accept+{index}@{domain}\r\n"
        f"Subject: durability {index}\r\nMessage-ID: {message_id}\r\n\r\n"
        + "A line of text to make the message a realistic size.\r\n"
        * 40
    )
    return message_id, body.encode()


def run_durability(
    messages: int,
    kills: int,
    *,
    sinks: int = 2,
    concurrency: int = 10,
    timeout: float = 600.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Queue ``messages``, deliver them with ``postwise serve`` SIGKILLed ``kills`` times at
    random points and restarted, then count per Message-ID what arrived: ``lost`` (never
    arrived nor bounced), ``duplicates`` and ``still_queued`` (should all be 0; duplicates
    can only come from the RFC 1047 window, see the module docstring)."""
    rng = random.Random(seed)
    hosts = [f"127.0.0.{2 + k}" for k in range(sinks)]
    port = free_port(hosts[0])
    running = [
        ProviderSink(h, port, name=f"s{k}", keep_data=False).start() for k, h in enumerate(hosts)
    ]
    domains = [f"d{j}.durability.test" for j in range(len(hosts) * 2)]
    work = Path(tempfile.mkdtemp(prefix="postwise-durability-"))
    shaping = work / "shaping.toml"
    shaping.write_text(domain_shaping(domains, concurrency))
    zone = sink_zone(running, domains).start()
    settings = Settings(data_dir=work / "data", shaping_policy_path=shaping)
    engine = open_database(settings.resolved_database_url)
    queue = OutboundQueue(engine, settings.outbound_spool_dir)
    submitter = Submitter(settings, queue, SuppressionList(engine))
    expected = set()
    for index in range(messages):
        message_id, raw = message(index, domains[index % len(domains)])
        recipient = f"accept+{index}@{domains[index % len(domains)]}"
        submitter.submit(
            "news@sender.durability.test", [recipient], raw, source="api", submitted_by="durability"
        )
        expected.add(message_id)
    server = ServeProcess(
        work / "data", zone, port, shaping, concurrency=concurrency * len(domains)
    )
    killed: list[dict[str, int]] = []
    try:
        for _ in range(kills):
            target = sum(s.count() for s in running) + rng.randint(
                messages // (kills * 4), messages // (kills + 1)
            )
            server.start()
            deadline = time.monotonic() + timeout
            while sum(s.count() for s in running) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            at = sum(s.count() for s in running)
            server.kill()
            killed.append({"delivered_when_killed": at})
        server.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if queue.depth()["queued"] == 0 and sum(s.count() for s in running) >= len(expected):
                break
            time.sleep(0.2)
        time.sleep(2.0)  # late arrivals (duplicates) are counted too
        server.stop()
        arrived: Counter[str] = Counter()
        for sink in running:
            arrived.update(sink.message_ids())
        depth = queue.depth()
        return {
            "messages": len(expected),
            "kills": killed,
            "delivered_unique": sum(1 for m in expected if arrived[m] > 0),
            "duplicates": sum(n - 1 for n in arrived.values() if n > 1),
            "lost": sum(1 for m in expected if arrived[m] == 0) - depth["bounced"],
            "bounced": depth["bounced"],
            "still_queued": depth["queued"],
        }
    except BaseException:
        print(server.log()[-3000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        engine.dispose()
        zone.stop()
        for sink in running:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)
