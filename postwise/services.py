"""The main job: the scan API, the SMTP gateway and the milter in one process and one event
loop, sharing one scanner (so feedback learned through any of them applies to all), one
database and one quarantine; beside them the outbound side: the submission port and the
delivery worker over one queue, and the trigger watcher that turns engage events into
triggered campaign messages (woken by ``POST /v1/events``).

Housekeeping runs beside them: messages a crash left in the spool, or that the next hop could
not take at start, are retried every ``_RETRY_SECONDS``; quarantine retention is applied hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from postwise.auth.dns import Resolver
from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.inbound.gateway import FeedbackSink, Gateway, GatewayLimits
from postwise.inbound.pipeline import InboundPipeline
from postwise.inbound.quarantine import QuarantineStore
from postwise.inbound.relay import Destination, LocalMaildir, NextHop
from postwise.inbound.scanner import Scanner
from postwise.inbound.spool import Spool
from postwise.inbound.tls import server_tls_context
from postwise.ops.metrics import OutboundCounters, outbound_registry
from postwise.outbound.delivery import DeliveryWorker
from postwise.outbound.feedback import FeedbackError, ingest_feedback
from postwise.outbound.journal import OutcomeJournal
from postwise.outbound.mta_sts import MtaStsClient
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.reputation import ReputationMonitor, load_reputation
from postwise.outbound.shaping import (
    AutomationEngine,
    ShapingPolicy,
    actions_in_force,
    event_recorder,
    load_shaping,
)
from postwise.outbound.submission import Accepted, Submission, SubmissionError, Submitter
from postwise.outbound.submission_smtp import SubmissionServer
from postwise.outbound.suppression import SuppressionList

if TYPE_CHECKING:
    from postwise.engage.triggers import TriggerWatcher

log = structlog.get_logger("postwise.services")

_RETRY_SECONDS = 30.0
_EXPIRE_SECONDS = 3600.0


def destination_for(settings: Settings) -> Destination:
    """The next hop when one is configured, else the Maildir in the data folder."""
    address = settings.next_hop_address
    if address is not None:
        return NextHop(address[0], address[1], settings.next_hop_timeout)
    return LocalMaildir(settings.data_dir / "maildir")


@dataclass
class InboundServices:
    """The shared parts every protocol layer uses, built once from the settings."""

    settings: Settings
    scanner: Scanner
    engine: Engine
    quarantine: QuarantineStore
    pipeline: InboundPipeline
    executor: ThreadPoolExecutor

    @classmethod
    def from_settings(cls, settings: Settings, scanner: Scanner | None = None) -> InboundServices:
        """Load the model and policy and open the database. Raises PostwiseError subclasses
        (bad model, policy or settings) before anything listens."""
        scanner = scanner or Scanner.from_settings(settings)
        engine = open_database(settings.resolved_database_url)
        quarantine = QuarantineStore(settings.data_dir / "quarantine", engine)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="postwise-scan")
        pipeline = InboundPipeline(
            scanner, quarantine, engine if settings.store_verdicts else None, executor
        )
        return cls(settings, scanner, engine, quarantine, pipeline, executor)

    def gateway(self, feedback: FeedbackSink | None = None) -> Gateway:
        """The SMTP gateway; ``feedback`` records bounces and complaints sent to the
        ``feedback_addresses`` (the outbound side's, see :meth:`OutboundServices.feedback_sink`)."""
        settings = self.settings
        limits = GatewayLimits(
            max_message_bytes=settings.max_message_bytes,
            max_recipients=settings.smtp_max_recipients,
            timeout=settings.smtp_timeout,
            proxy_protocol=settings.smtp_proxy_protocol,
            trusted_forwarders=frozenset(settings.smtp_trusted_forwarders),
        )
        return Gateway(
            self.pipeline,
            Spool(settings.data_dir / "spool"),
            destination_for(settings),
            limits,
            settings.smtp_hostname,
            server_tls_context(settings),
            feedback,
            frozenset(settings.feedback_addresses),
        )

    @property
    def learn_ham(self) -> Callable[[bytes], object] | None:
        """What releasing from quarantine teaches: the message is ham (None when online
        learning is off)."""
        if not self.settings.online_learning or self.scanner.model is None:
            return None
        return lambda raw: self.scanner.learn(raw, "ham")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


@dataclass
class OutboundServices:
    """The outbound parts: queue, suppression list, submitter, shaping and the automation and
    reputation state the delivery worker and the API share."""

    settings: Settings
    engine: Engine
    queue: OutboundQueue
    suppressions: SuppressionList
    submitter: Submitter
    policy: ShapingPolicy
    automation: AutomationEngine
    reputation: ReputationMonitor
    worker: DeliveryWorker | None = None
    registry: CollectorRegistry = field(init=False)
    counters: OutboundCounters = field(init=False)

    def __post_init__(self) -> None:
        # The metrics read the worker's figures when there is one at scrape time.
        self.registry, self.counters = outbound_registry(self.queue, lambda: self.worker)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> OutboundServices:
        """Open the queue and load the shaping and reputation policies. Raises PolicyError
        subclasses for a bad policy file, before anything listens."""
        engine = engine or open_database(settings.resolved_database_url)
        queue = OutboundQueue(
            engine, settings.outbound_spool_dir, settings.queue_lifetime_hours * 3600
        )
        suppressions = SuppressionList(engine)
        policy = load_shaping(settings.shaping_policy_path)
        automation = AutomationEngine(policy, on_action=event_recorder(engine))
        # Suspensions and slow-downs outlive a restart: they expire by their own clock.
        automation.restore(actions_in_force(engine, datetime.now(UTC)))
        reputation = ReputationMonitor(load_reputation(settings.reputation_policy_path), automation)
        submitter = Submitter(settings, queue, suppressions)
        return cls(settings, engine, queue, suppressions, submitter, policy, automation, reputation)

    def delivery_worker(self) -> DeliveryWorker:
        """The worker (one per process), created on first use."""
        if self.worker is None:
            resolver = Resolver.from_settings(self.settings)  # thread-safe: one for both
            self.worker = DeliveryWorker(
                self.settings,
                self.queue,
                self.policy,
                resolver=resolver,
                automation=self.automation,
                reputation=self.reputation,
                mta_sts=MtaStsClient(
                    resolver,
                    port=self.settings.mta_sts_port,
                    ca_file=self.settings.outbound_tls_ca_file,
                ),
                counters=self.counters,
                journal=OutcomeJournal(self.settings.outbound_spool_dir / "journal"),
            )
        return self.worker

    def wake_delivery(self) -> None:
        """Tell a running worker that mail was queued (safe from any thread)."""
        worker = self.worker
        if worker is not None:
            worker.wake_threadsafe()

    def feedback_sink(self) -> FeedbackSink:
        """What the gateway calls with mail to a feedback address: records it as a bounce or
        complaint and says what it recorded, or returns None when it is neither."""

        async def take(raw: bytes) -> str | None:
            try:
                result = await asyncio.to_thread(ingest_feedback, raw, self)
            except FeedbackError:
                return None
            suppressed = ", ".join(result.suppressed) or "nobody"
            return f"{result.kind} recorded; suppressed {suppressed}"

        return take

    def submit(self, *args: Any, **kwargs: Any) -> Accepted:
        """:meth:`Submitter.submit` (``not_before=`` holds delivery until then), then wake the
        worker."""
        accepted = self.submitter.submit(*args, **kwargs)
        self.wake_delivery()
        return accepted

    def submit_many(self, items: Sequence[Submission]) -> list[Accepted | SubmissionError]:
        """:meth:`Submitter.submit_many` (one durable batch), then wake the worker."""
        answers = self.submitter.submit_many(items)
        self.wake_delivery()
        return answers


async def _housekeeping(services: InboundServices, gateway: Gateway | None) -> None:
    since_expiry = _EXPIRE_SECONDS
    while True:
        if gateway is not None:
            try:
                await gateway.resume()
            except Exception:  # keep retrying; the spool keeps the mail
                log.exception("spool_retry_failed")
        if since_expiry >= _EXPIRE_SECONDS:
            since_expiry = 0.0
            try:
                expired = await asyncio.to_thread(
                    services.quarantine.expire, services.settings.quarantine_retention_days
                )
                if expired:
                    log.info("quarantine_expired", count=expired)
            except Exception:
                log.exception("quarantine_expiry_failed")
        await asyncio.sleep(_RETRY_SECONDS)
        since_expiry += _RETRY_SECONDS


def _trigger_watcher(
    settings: Settings, engine: Engine, outbound: OutboundServices
) -> TriggerWatcher | None:
    """The trigger watcher (postwise.engage.triggers, polling every second, idle without
    trigger campaigns) over the shared outbound services, so what it queues wakes the
    delivery worker; None (logged) when the engage side cannot be set up."""
    from postwise.core.errors import PostwiseError
    from postwise.engage.campaign_runner import CampaignRunner
    from postwise.engage.triggers import TriggerWatcher

    try:
        runner = CampaignRunner(settings, engine, outbound=outbound)
    except (PostwiseError, OSError) as error:
        log.warning("trigger_watcher_disabled", reason=str(error))
        return None
    return TriggerWatcher(runner, engine, poll_seconds=1.0)


async def run_services(settings: Settings, host: str, port: int) -> None:
    """Run the API, the gateway and the milter until the API server is told to stop
    (SIGINT / SIGTERM); beside them the delivery worker and the trigger watcher."""
    from postwise.api.app import create_app

    services = InboundServices.from_settings(settings)
    outbound = OutboundServices.from_settings(settings, services.engine)
    gateway = services.gateway(outbound.feedback_sink()) if settings.smtp_enabled else None
    submission = None
    if settings.submission_enabled:
        submission = SubmissionServer(
            settings, outbound.submitter, server_tls_context(settings), outbound.wake_delivery
        )
    stop_delivery = asyncio.Event()
    delivery: asyncio.Task[None] | None = None
    stop_triggers = asyncio.Event()
    triggers: asyncio.Task[None] | None = None
    milter = None
    if settings.milter_enabled:
        from postwise.inbound.milter import MilterServer

        milter = MilterServer(services.pipeline, settings.smtp_hostname)
    try:
        if gateway is not None:
            smtp_port = await gateway.start(settings.smtp_host, settings.smtp_port)
            log.info("smtp_gateway_listening", host=settings.smtp_host, port=smtp_port)
        if milter is not None:
            milter_port = await milter.start(settings.milter_host, settings.milter_port)
            log.info("milter_listening", host=settings.milter_host, port=milter_port)
        if submission is not None:
            submission_port = await submission.start(
                settings.submission_host, settings.submission_port
            )
            log.info("submission_listening", host=settings.submission_host, port=submission_port)
        if settings.delivery_enabled:
            delivery = asyncio.create_task(outbound.delivery_worker().run(stop_delivery))
        watcher = _trigger_watcher(settings, services.engine, outbound)
        if watcher is not None:
            triggers = asyncio.create_task(watcher.run(stop_triggers))
        app = create_app(settings, services=services, outbound=outbound)
        app.state.triggers = watcher  # POST /v1/events nudges it
        config = uvicorn.Config(app, host=host, port=port, log_level="info")
        housekeeping = asyncio.create_task(_housekeeping(services, gateway))
        try:
            await uvicorn.Server(config).serve()
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
    finally:
        if submission is not None:
            await submission.close()
        if triggers is not None:
            stop_triggers.set()
            await triggers
        if delivery is not None:
            stop_delivery.set()
            await delivery
        if gateway is not None:
            await gateway.close()
        if milter is not None:
            await milter.close()
        services.close()
