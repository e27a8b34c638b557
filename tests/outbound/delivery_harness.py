"""A small outbound world for end-to-end delivery tests: provider sinks on 127.0.0.x (one port
shared by all, as port 25 is on the internet), a local authoritative DNS server whose MX
records point at them, and a delivery worker with its queue in a temporary folder.

Domains: ``mail.test`` (two equal-preference MX hosts, 127.0.0.2 and .3, the "testmail"
provider), ``corp.test`` (MX 10 on .4, backup MX 20 on .5), ``bare.test`` (no MX: its A record
is .4), ``nullmx.test`` (a null MX); every other name does not exist.

Options: ``sink_tls`` gives sinks (by address) a TLS context so they offer STARTTLS,
``records`` adds DNS records, ``mta_sts=True`` gives the worker an MTA-STS client (policies on
HTTPS port ``mta_sts_port``, certificates checked against ``outbound_tls_ca_file``), and
``record_actions=True`` records automation actions as ``shaping_action`` events. The reputation
policy is ``reputation_policy_path`` layered over the shipped one.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from postwise.auth.dns import Resolver
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.outbound.delivery import DeliveryWorker
from postwise.outbound.mta_sts import MtaStsClient
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.reputation import ReputationMonitor, load_reputation
from postwise.outbound.shaping import AutomationEngine, event_recorder, load_shaping
from postwise.outbound.submission import Accepted, Submitter
from postwise.outbound.suppression import SuppressionList
from postwise.testing.provider_sink import ProviderSink, free_port

SINK_IPS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")

SHAPING = """
[provider.testmail]
description = "the test provider"
mx_suffixes = [".mail.test"]
max_connections = 2
max_messages_per_connection = 3

[[provider.testmail.automation]]
name = "testmail-rate-limited"
regex = '4\\.7\\.28'
threshold = "3/h"
action = "suspend_destination"
duration = "1h"
"""


def zone_records() -> list[ZoneRecord]:
    return [
        ZoneRecord("mail.test", "MX", (10, "mx1.mail.test")),
        ZoneRecord("mail.test", "MX", (10, "mx2.mail.test")),
        ZoneRecord("mx1.mail.test", "A", "127.0.0.2"),
        ZoneRecord("mx2.mail.test", "A", "127.0.0.3"),
        ZoneRecord("corp.test", "MX", (10, "mx.corp.test")),
        ZoneRecord("corp.test", "MX", (20, "backup.corp.test")),
        ZoneRecord("mx.corp.test", "A", "127.0.0.4"),
        ZoneRecord("backup.corp.test", "A", "127.0.0.5"),
        ZoneRecord("bare.test", "A", "127.0.0.4"),
        ZoneRecord("nullmx.test", "MX", (0, ".")),
    ]


MESSAGE = (
    b"From: Owner <owner@corp.test>\r\nTo: someone@mail.test\r\nSubject: hello\r\n"
    b"Message-ID: <{n}@corp.test>\r\n\r\nHello there, message {n}.\r\n"
)


def message(n: int | str) -> bytes:
    return MESSAGE.replace(b"{n}", str(n).encode())


class OutboundWorld:
    """Sinks, DNS and a worker; use as an async context manager."""

    def __init__(
        self,
        tmp: Path,
        sink_ips: tuple[str, ...] = SINK_IPS,
        *,
        sink_tls: dict[str, ssl.SSLContext] | None = None,
        records: list[ZoneRecord] | None = None,
        mta_sts: bool = False,
        record_actions: bool = False,
        **overrides: Any,
    ) -> None:
        self.tmp = tmp
        self.port = free_port("127.0.0.2")
        tls = sink_tls or {}
        self.sinks = {
            ip: ProviderSink(ip, self.port, name=ip, slow_seconds=1.0, tls_context=tls.get(ip))
            for ip in sink_ips
        }
        self.zone = ZoneServer([*zone_records(), *(records or [])])
        self.use_mta_sts = mta_sts
        self.record_actions = record_actions
        shaping = tmp / "shaping.toml"
        shaping.write_text(overrides.pop("shaping", SHAPING))
        self.overrides = {"shaping_policy_path": shaping, **overrides}
        self.task: asyncio.Task[None] | None = None
        self.stop_event = asyncio.Event()
        self.results: list[tuple[Any, dict[str, Any]]] = []

    async def __aenter__(self) -> OutboundWorld:
        for sink in self.sinks.values():
            sink.start()
        self.zone.start()
        values: dict[str, Any] = {
            "data_dir": self.tmp / "data",
            "environment": "test",
            "dns_servers": [self.zone.address],
            "dns_timeout": 2.0,
            "delivery_port": self.port,
            "delivery_timeout": 5.0,
            "delivery_poll_seconds": 0.05,
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 0.5,
            "smtp_hostname": "out.postwise.test",
        }
        values.update(self.overrides)
        self.settings = Settings(**values)
        self.engine = open_database(self.settings.resolved_database_url)
        self.queue = OutboundQueue(
            self.engine,
            self.settings.outbound_spool_dir,
            self.settings.queue_lifetime_hours * 3600,
        )
        self.suppressions = SuppressionList(self.engine)
        self.submitter = Submitter(self.settings, self.queue, self.suppressions)
        self.policy = load_shaping(self.settings.shaping_policy_path)
        self.automation = AutomationEngine(
            self.policy, on_action=event_recorder(self.engine) if self.record_actions else None
        )
        self.reputation = ReputationMonitor(
            load_reputation(self.settings.reputation_policy_path), self.automation
        )
        self.worker = self.new_worker()
        self.start_worker()
        return self

    def new_worker(self) -> DeliveryWorker:
        return DeliveryWorker(
            self.settings,
            self.queue,
            self.policy,
            resolver=Resolver.from_settings(self.settings),
            automation=self.automation,
            reputation=self.reputation,
            mta_sts=MtaStsClient(
                Resolver.from_settings(self.settings),
                port=self.settings.mta_sts_port,
                ca_file=self.settings.outbound_tls_ca_file,
                timeout=5.0,
            )
            if self.use_mta_sts
            else None,
            seed=7,
            on_result=lambda result, context: self.results.append((result, context)),
        )

    def start_worker(self) -> None:
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.worker.run(self.stop_event))

    async def stop_worker(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await self.task
            self.task = None

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_worker()
        self.zone.stop()
        for sink in self.sinks.values():
            sink.stop()
        self.engine.dispose()

    def submit(
        self,
        recipients: list[str],
        raw: bytes | None = None,
        sender: str = "owner@corp.test",
        **options: Any,
    ) -> Accepted:
        accepted = self.submitter.submit(
            sender,
            recipients,
            raw or message(time.monotonic_ns()),
            source="api",
            submitted_by="tests",
            **options,
        )
        self.worker.wake()
        return accepted

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.05)

    def states(self, message_id: str) -> dict[str, str]:
        shown = self.queue.show(message_id)
        return {r["recipient"]: r["state"] for r in shown["recipients"]}

    async def settled(self, message_id: str, timeout: float = 15.0) -> dict[str, Any]:
        await self.until(
            lambda: all(s != "queued" for s in self.states(message_id).values()), timeout
        )
        return self.queue.show(message_id)

    def received(self) -> int:
        return sum(sink.count() for sink in self.sinks.values())
