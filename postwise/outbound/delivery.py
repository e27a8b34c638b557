"""The delivery worker: takes due recipients from the queue and delivers them over SMTP to the
destination's MX hosts, within the shaping limits, through the egress pools.

Per destination domain (and pool) it resolves the MX hosts (RFC 5321 5.1: by preference; the
domain's own address when it has no MX; a null MX (RFC 7505) refuses mail), applies MTA-STS
(RFC 8461) when the domain publishes a policy, and opens up to ``max_connections`` connections
per shaping budget, each carrying up to ``max_messages_per_connection`` messages at the budget's
rate. Among MX hosts of equal preference, :class:`~postwise.outbound.mx_choice.MxSelector`
picks by observed success and latency. STARTTLS is used whenever offered (opportunistic); an
enforcing MTA-STS policy requires it, with a certificate valid for the MX name.

Every reply goes to the automation engine (shaping rules) and every outcome to the reputation
monitor; both may slow, suspend or reroute the destination. Outcomes are written by one writer
task in batches (:meth:`OutboundQueue.record`); a 5xx bounces the recipient (classified, hard
bounces suppressed), a 4xx or a lost connection defers it with exponential backoff until the
queue lifetime runs out, after which it bounces too. Bounced recipients' senders get a DSN.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import structlog

from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.core.settings import Settings
from postwise.ops.metrics import OutboundCounters
from postwise.outbound.bounces import classify_smtp_reply
from postwise.outbound.dsn import DsnRecipient, build_dsn, needs_dsn
from postwise.outbound.journal import OutcomeJournal
from postwise.outbound.mta_sts import (
    MtaStsClient,
    MtaStsPolicy,
    opportunistic_tls_context,
    verified_tls_context,
)
from postwise.outbound.mx_choice import MxSelector
from postwise.outbound.pools import EgressChoice, EgressSelector, WarmupExhausted
from postwise.outbound.queue import Job, OutboundQueue, Prepared, QueueError, RecipientResult
from postwise.outbound.reputation import ReputationMonitor
from postwise.outbound.shaping import AutomationEngine, Limits, ShapingPolicy
from postwise.outbound.throttle import Budget

log = structlog.get_logger(__name__)

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# How long MX answers and failed-destination verdicts are trusted.
ROUTE_TTL = 300.0
DOWN_TTL = 30.0
MAX_HELD = 5000


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach a destination domain: its MX hosts (best first), shaping limits and
    MTA-STS policy, or the verdict that it cannot be reached."""

    mx: tuple[tuple[int, str], ...]
    limits: Limits
    expires: float
    sts: MtaStsPolicy | None = None
    implicit: bool = False
    failure: tuple[str, str] | None = None  # ("bounce" or "defer", the reply to record)


@dataclass(slots=True)
class _Destination:
    domain: str
    pool: str
    jobs: deque[Job] = field(default_factory=deque)
    route: Route | None = None
    resolving: bool = False
    connections: int = 0
    down_until: float = 0.0
    down_reply: str = ""


@dataclass(slots=True)
class _Connection:
    smtp: aiosmtplib.SMTP
    host: str
    ip: str
    egress: EgressChoice
    tls: bool
    mx_order: list[dict[str, Any]] = field(default_factory=list)


def enhanced_status(reply: str) -> str:
    """The enhanced status code at the start of a reply's text ("" when there is none)."""
    found = _ENHANCED.match(reply)
    return found.group(1) if found else ""


def retry_delay(attempts: int, base: float, ceiling: float, rng: random.Random) -> float:
    """Seconds before attempt ``attempts + 1``: ``base * 2**(attempts-1)`` capped at
    ``ceiling``, with ±20% jitter so deferred mail does not return in lockstep."""
    exponent = min(max(attempts - 1, 0), 30)
    return min(ceiling, base * 2.0**exponent) * rng.uniform(0.8, 1.2)


class DeliveryWorker:
    """One process's delivery loop. Tests and ``serve`` run :meth:`run` until ``stop`` is
    set; :meth:`wake` makes it look for due mail at once (submission calls it)."""

    def __init__(
        self,
        settings: Settings,
        queue: OutboundQueue,
        policy: ShapingPolicy,
        *,
        resolver: Resolver,
        automation: AutomationEngine | None = None,
        reputation: ReputationMonitor | None = None,
        mx_selector: MxSelector | None = None,
        egress: EgressSelector | None = None,
        mta_sts: MtaStsClient | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        on_result: Callable[[RecipientResult, dict[str, Any]], None] | None = None,
        counters: OutboundCounters | None = None,
        journal: OutcomeJournal | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.policy = policy
        self.resolver = resolver
        self.automation = automation or AutomationEngine(policy)
        self.reputation = reputation
        self.mx_selector = mx_selector or MxSelector(seed=seed)
        self.egress = egress or EgressSelector(policy, queue.engine, seed=seed)
        self.mta_sts = mta_sts
        self.clock = clock
        self.on_result = on_result
        self.counters = counters
        self.journal = journal
        self.worker_id = f"w{secrets.token_hex(6)}"
        self._rng = random.Random(seed)
        self._destinations: dict[tuple[str, str], _Destination] = {}
        self._budgets: dict[str, Budget] = {}
        self._open = 0
        self._held = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._results: list[tuple[RecipientResult, dict[str, Any]]] = []
        self._results_ready = asyncio.Event()
        self._verified_tls = verified_tls_context(settings.outbound_tls_ca_file)
        self._opportunistic_tls = opportunistic_tls_context()
        self._addresses: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.stats: dict[str, int] = {"delivered": 0, "deferred": 0, "bounced": 0, "postponed": 0}

    # ------------------------------------------------------------------ the loop

    def wake(self) -> None:
        self._wake.set()

    def wake_threadsafe(self) -> None:
        """:meth:`wake` from another thread (or before :meth:`run` started: a no-op then,
        as the first poll finds the mail anyway)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then let open transactions finish and store every
        outcome before returning."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        await asyncio.to_thread(self._replay_journal)
        await asyncio.to_thread(self.queue.release_claims)
        writer = asyncio.create_task(self._writer())
        last_housekeeping = 0.0
        try:
            while not stop.is_set():
                await self._fill()
                for destination in list(self._destinations.values()):
                    self._schedule(destination)
                now = self.clock()
                if now - last_housekeeping >= 5.0:
                    last_housekeeping = now
                    await asyncio.to_thread(self._housekeeping)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=self.settings.delivery_poll_seconds
                    )
                self._wake.clear()
        finally:
            self._stopping = True  # connections that end now open no others
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.settings.delivery_timeout)
            for task in self._tasks:
                task.cancel()
            self._results_ready.set()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await asyncio.to_thread(self._store, *self._take_batch())
            await asyncio.to_thread(self.queue.release_claims, self.worker_id)

    async def _fill(self) -> None:
        room = MAX_HELD - self._held
        if room < MAX_HELD // 4:
            return
        jobs = await asyncio.to_thread(self.queue.claim, self.worker_id, room, self.clock())
        for job in jobs:
            key = (job.domain, job.pool)
            destination = self._destinations.get(key)
            if destination is None:
                destination = self._destinations[key] = _Destination(job.domain, job.pool)
            destination.jobs.append(job)
            self._held += len(job.recipients)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._report_crash)

    @staticmethod
    def _report_crash(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", error=repr(task.exception()))

    def _budget(self, key: str) -> Budget:
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = Budget(key)
        return budget

    def _limits(self, destination: _Destination, route: Route) -> Limits:
        now = datetime.fromtimestamp(self.clock(), UTC)
        return self.automation.effective_limits(
            route.limits.budget_key, destination.pool, now, base=route.limits
        )

    def _schedule(self, destination: _Destination) -> None:
        """Open as many connections for ``destination`` as its jobs need and its budget
        allows; settle its jobs at once when it cannot be delivered to now."""
        if self._stopping:
            return
        if not destination.jobs:
            if destination.connections == 0 and not destination.resolving:
                self._destinations.pop((destination.domain, destination.pool), None)
            return
        now = self.clock()
        route = destination.route
        if route is None or route.expires <= now:
            if not destination.resolving:
                destination.resolving = True
                self._spawn(self._resolve(destination))
            return
        if route.failure is not None:
            kind, reply = route.failure
            self._settle_all(destination, reply, "bounced" if kind == "bounce" else "deferred")
            return
        if destination.down_until > now:
            self._postpone_all(destination, destination.down_until, destination.down_reply)
            return
        limits = self._limits(destination, route)
        if limits.suspended_until is not None:
            until = limits.suspended_until.timestamp()
            self._postpone_all(
                destination,
                until,
                f"destination suspended by automation until {limits.suspended_until.isoformat()}",
            )
            return
        budget = self._budget(limits.budget_key)
        wanted = math.ceil(len(destination.jobs) / limits.max_messages_per_connection)
        wanted -= destination.connections
        room = min(
            limits.max_connections - budget.connections,
            self.settings.delivery_concurrency - self._open,
        )
        for _ in range(max(0, min(wanted, room))):
            budget.connections += 1
            destination.connections += 1
            self._open += 1
            self._spawn(self._connection(destination, route, budget))

    def snapshot(self) -> dict[str, Any]:
        """What the worker holds and has learned, for ``queue`` commands and the metrics:
        held recipients per destination, open connections per budget, the MX figures, the
        automation and reputation actions in force, and the egress warm-up counters."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, UTC)
        return {
            "worker": self.worker_id,
            "held": {
                f"{d.domain} ({d.pool})": sum(len(j.recipients) for j in d.jobs)
                for d in self._destinations.values()
            },
            "connections": {key: b.connections for key, b in self._budgets.items()},
            "mx_hosts": self.mx_selector.snapshot(),
            "actions": [a.to_json() for a in self.automation.active_actions(moment)],
            "reputation": self.reputation.snapshot(moment) if self.reputation else {},
            "egress": self.egress.snapshot(now),
            "stats": dict(self.stats),
        }

    def mx_order(self, domain: str) -> list[dict[str, Any]]:
        """The MX hosts of ``domain`` in the order the next connection would try them, with
        the figures behind it (empty when the worker has not resolved the domain)."""
        for destination in self._destinations.values():
            if destination.domain == domain and destination.route is not None:
                return [c.to_json() for c in self.mx_selector.order(list(destination.route.mx))]
        return []

    # ------------------------------------------------------------------ routes

    async def _resolve(self, destination: _Destination) -> None:
        try:
            destination.route = await self._route(destination.domain)
        finally:
            destination.resolving = False
            self._schedule(destination)

    async def _route(self, domain: str) -> Route:
        now = self.clock()
        default = self.policy.limits_for(domain, [])
        try:
            lookup = await asyncio.to_thread(self.resolver.query, domain, "MX")
        except DnsTemporaryError as error:
            return Route((), default, now + DOWN_TTL, failure=("defer", f"451 4.4.3 {error}"))
        if lookup.nxdomain:
            reply = f"550 5.1.2 {domain}: the domain does not exist (NXDOMAIN)"
            return Route((), default, now + ROUTE_TTL, failure=("bounce", reply))
        pairs: list[tuple[int, str]] = []
        for record in lookup.records:
            preference, _, exchange = record.partition(" ")
            with contextlib.suppress(ValueError):
                pairs.append((int(preference), exchange.strip().rstrip(".").lower()))
        pairs.sort()
        if len(pairs) == 1 and pairs[0][1] == "":
            reply = f"556 5.1.10 {domain} publishes a null MX (RFC 7505): it accepts no mail"
            return Route((), default, now + ROUTE_TTL, failure=("bounce", reply))
        pairs = [(p, h) for p, h in pairs if h]
        implicit = not pairs
        if implicit:  # RFC 5321 5.1: the domain itself is the implicit MX
            pairs = [(0, domain)]
        sts: MtaStsPolicy | None = None
        if self.mta_sts is not None:
            sts = await self.mta_sts.policy_for(domain)
        if sts is not None and sts.mode == "enforce":
            allowed = [(p, h) for p, h in pairs if sts.matches(h)]
            if not allowed:
                reply = (
                    f"451 4.7.5 MTA-STS: no MX host of {domain} matches its enforced policy "
                    f"({', '.join(sts.mx)})"
                )
                return Route((), default, now + DOWN_TTL, sts=sts, failure=("defer", reply))
            pairs = allowed
        limits = self.policy.limits_for(domain, [h for _, h in pairs])
        return Route(tuple(pairs), limits, now + ROUTE_TTL, sts=sts, implicit=implicit)

    async def _host_addresses(self, host: str) -> tuple[str, ...]:
        now = self.clock()
        cached = self._addresses.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        lookup = await asyncio.to_thread(self.resolver.addresses, host)
        # IPv4 first: the test and most egress addresses are IPv4.
        ordered = tuple(sorted(lookup.records, key=lambda a: ":" in a))
        self._addresses[host] = (now + ROUTE_TTL, ordered)
        return ordered

    # ------------------------------------------------------------------ connections

    async def _connection(self, destination: _Destination, route: Route, budget: Budget) -> None:
        try:
            await self._deliver_over_connection(destination, route, budget)
        finally:
            budget.connections -= 1
            destination.connections -= 1
            self._open -= 1
            self._schedule(destination)
            self.wake()

    async def _deliver_over_connection(
        self, destination: _Destination, route: Route, budget: Budget
    ) -> None:
        limits = self._limits(destination, route)
        pool = limits.route_to_pool or destination.pool
        try:
            egress = self.egress.choose(pool, self.clock())
        except WarmupExhausted as exhausted:
            self._postpone_all(destination, exhausted.until, str(exhausted))
            return
        connection, failure = await self._connect(destination.domain, route, egress)
        if connection is None:
            destination.down_until = self.clock() + DOWN_TTL
            destination.down_reply = failure
            self._settle_all(destination, failure, "deferred")
            return
        sent = 0
        try:
            while destination.jobs and sent < limits.max_messages_per_connection:
                limits = self._limits(destination, route)
                if limits.suspended_until is not None:
                    break
                wait = budget.delay(self.clock(), limits)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                if not destination.jobs:
                    break
                if egress.ip is not None and self.egress.allowance(egress.ip, self.clock()) <= 0:
                    break  # warm-up spent on this connection: the next one chooses again
                job = destination.jobs.popleft()
                held_until = self._sending_domain_hold(job.sending_domain)
                if held_until is not None:
                    self._postpone(job, held_until, "sending domain suspended by reputation")
                    continue
                budget.take(self.clock(), limits)
                broken = await self._transaction(connection, job, limits.budget_key)
                sent += 1
                if broken:
                    return
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                await connection.smtp.quit()
        finally:
            connection.smtp.close()

    async def _connect(
        self, domain: str, route: Route, egress: EgressChoice
    ) -> tuple[_Connection | None, str]:
        errors: list[str] = []
        source = (egress.ip, 0) if egress.ip else None
        order = self.mx_selector.order(list(route.mx))
        figures = [choice.to_json() for choice in order]
        for choice in order:
            host = choice.host
            try:
                addresses = await self._host_addresses(host)
            except DnsTemporaryError as error:
                errors.append(f"{host}: {error}")
                continue
            if not addresses:
                errors.append(f"{host}: no address")
                continue
            require_tls = route.sts is not None and route.sts.mode == "enforce"
            for ip in addresses:
                if egress.ip and (":" in ip) != (":" in egress.ip):
                    continue
                started = time.monotonic()
                smtp = aiosmtplib.SMTP(
                    hostname=ip,
                    port=self.settings.delivery_port,
                    local_hostname=self.settings.resolved_delivery_hostname,
                    source_address=source,
                    timeout=self.settings.delivery_timeout,
                    start_tls=False,
                )
                try:
                    await smtp.connect()
                    await smtp.ehlo()
                    tls = False
                    if smtp.supports_extension("starttls"):
                        context = self._verified_tls if require_tls else self._opportunistic_tls
                        await smtp.starttls(tls_context=context, server_hostname=host)
                        tls = True
                    elif require_tls:
                        raise aiosmtplib.SMTPException(
                            "MTA-STS enforce: the host does not offer STARTTLS"
                        )
                except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
                    smtp.close()
                    self.mx_selector.record(host, False, time.monotonic() - started)
                    detail = str(error) or type(error).__name__
                    errors.append(f"{host}[{ip}]: {detail}")
                    self._observe_reply(route.limits.budget_key, egress.pool, detail)
                    continue
                self.mx_selector.record(host, True, time.monotonic() - started)
                return _Connection(smtp, host, ip, egress, tls, figures), ""
        reply = "451 4.4.1 no MX host of {} accepted a connection: {}".format(
            domain, "; ".join(errors)[:800] or "no usable address"
        )
        return None, reply

    async def _transaction(self, connection: _Connection, job: Job, budget_key: str) -> bool:
        """Send ``job`` over ``connection``; record each recipient's outcome. Returns True
        when the connection can carry no more (dropped, or the server closed it)."""
        smtp = connection.smtp
        try:
            raw = job.raw
            if raw is None:
                raw = await asyncio.to_thread(self.queue.load, job.message_id)
        except QueueError as error:
            reply = f"550 5.3.0 {error}"
            for row_id, recipient in job.recipients:
                self._finish(job, row_id, recipient, "550", reply, connection, budget_key)
            return False
        pending = dict(job.recipients)

        def refuse(row_id: int, recipient: str, error: aiosmtplib.SMTPResponseException) -> None:
            pending.pop(row_id, None)
            code, reply = str(error.code), _reply(error)
            self._finish(job, row_id, recipient, code, reply, connection, budget_key)

        accepted: list[tuple[int, str]] = []
        started = time.monotonic()
        try:
            options = []
            if smtp.supports_extension("size"):
                options.append(f"SIZE={len(raw)}")
            if smtp.supports_extension("8bitmime") and not raw.isascii():
                options.append("BODY=8BITMIME")
            # RFC 6531: a non-ASCII address needs SMTPUTF8; without it the mail cannot go there.
            utf8 = not (job.mail_from.isascii() and all(r.isascii() for _, r in job.recipients))
            if utf8 and not smtp.supports_extension("smtputf8"):
                reply = f"553 5.6.7 {connection.host} does not support SMTPUTF8 (non-ASCII address)"
                for row_id, recipient in job.recipients:
                    pending.pop(row_id, None)
                    self._finish(job, row_id, recipient, "553", reply, connection, budget_key)
                return False
            if utf8:
                options.append("SMTPUTF8")
            encoding = "utf-8" if utf8 else "ascii"
            try:
                await smtp.mail(job.mail_from, options=options, encoding=encoding)
            except aiosmtplib.SMTPResponseException as error:
                for row_id, recipient in job.recipients:
                    refuse(row_id, recipient, error)
                await _reset(smtp)
                return error.code == 421
            for row_id, recipient in job.recipients:
                try:
                    await smtp.rcpt(recipient, encoding=encoding)
                    accepted.append((row_id, recipient))
                except aiosmtplib.SMTPResponseException as error:
                    refuse(row_id, recipient, error)
                    if error.code == 421:
                        raise aiosmtplib.SMTPServerDisconnected(_reply(error)) from None
            if not accepted:
                await _reset(smtp)
                return False
            try:
                response = await smtp.data(raw)
                code, reply = str(response.code), f"{response.code} {response.message}"
            except aiosmtplib.SMTPResponseException as error:
                code, reply = str(error.code), _reply(error)
            for row_id, recipient in accepted:
                pending.pop(row_id, None)
                self._finish(job, row_id, recipient, code, reply, connection, budget_key)
            self.mx_selector.record(connection.host, True, time.monotonic() - started)
            return code == "421"
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as error:
            self.mx_selector.record(connection.host, False, time.monotonic() - started)
            detail = str(error) or type(error).__name__
            reply = f"451 4.4.2 connection to {connection.host} lost: {detail}"
            for row_id, recipient in pending.items():
                self._finish(job, row_id, recipient, "451", reply, connection, budget_key)
            return True

    # ------------------------------------------------------------------ outcomes

    def _observe_reply(self, budget_key: str, pool: str, reply: str) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        self.automation.observe(budget_key, pool, reply, now)

    def _finish(
        self,
        job: Job,
        row_id: int,
        recipient: str,
        code: str,
        reply: str,
        connection: _Connection | None,
        budget_key: str,
    ) -> None:
        """Turn one reply into the recipient's outcome and hand it to the writer."""
        now = self.clock()
        if not (len(code) == 3 and code.isdigit() and code[0] in "245"):
            # No SMTP reply (aiosmtplib reports a malformed line as -1): retry later.
            code, reply = "451", f"451 4.5.0 malformed reply from the server: {reply}"
        reply = _CONTROL.sub(" ", reply)  # raw server bytes are not stored (NUL breaks SQL)
        status = enhanced_status(reply.partition(" ")[2]) or (
            f"{code[0]}.0.0" if code[:1] in "245" and code else ""
        )
        mx = connection.host if connection else ""
        pool = connection.egress.pool if connection else job.pool
        self._observe_reply(budget_key, pool, reply)
        context = {
            "message_id": job.message_id,
            "recipient": recipient,
            "domain": job.domain,
            "provider": budget_key,
            "pool": pool,
            "ip": connection.egress.ip if connection else None,
            "sending_domain": job.sending_domain,
            "tls": connection.tls if connection else False,
            "mx_order": connection.mx_order if connection else [],
        }
        if code.startswith("2"):
            result = RecipientResult(row_id, "delivered", reply, status, mx)
            self.egress.count(connection.egress.ip if connection else None, now)
        elif code.startswith("5"):
            reason, hard = classify_smtp_reply(code, status, reply)
            result = RecipientResult(row_id, "bounced", reply, status, mx, reason, hard)
        elif now >= job.expires_at:
            expired = f"{reply} (gave up: queued longer than the queue lifetime)"
            result = RecipientResult(row_id, "bounced", expired, "4.4.7", mx, "expired", False)
        else:
            delay = retry_delay(
                job.attempts + 1,
                self.settings.retry_base_seconds,
                self.settings.retry_max_seconds,
                self._rng,
            )
            next_at = min(now + delay, max(job.expires_at, now))
            result = RecipientResult(
                row_id, "deferred", reply, status or "4.0.0", mx, next_attempt_at=next_at
            )
        self._emit(result, context)

    def _emit(self, result: RecipientResult, context: dict[str, Any]) -> None:
        self._held -= 1
        key = "postponed" if not result.counted else result.outcome
        self.stats[key] += 1
        if result.counted and self.reputation is not None:
            with contextlib.suppress(ValueError):
                self.reputation.observe(
                    result.outcome,
                    provider_key=str(context.get("provider") or f"domain:{context['domain']}"),
                    pool=str(context.get("pool") or "default"),
                    sending_domain=str(context.get("sending_domain") or "unknown"),
                    now=datetime.fromtimestamp(self.clock(), UTC),
                    hard=result.hard and result.outcome == "bounced",
                )
        if self.on_result is not None:
            self.on_result(result, context)
        if self.counters is not None:
            self.counters.count(
                key, str(context.get("provider") or ""), str(context.get("pool") or "default")
            )
        if self.journal is not None:
            self.journal.append(result, context)
        self._results.append((result, context))
        self._results_ready.set()

    def _settle_all(self, destination: _Destination, reply: str, outcome: str) -> None:
        """Give every held job of ``destination`` the same reply (a DNS verdict, every MX
        refusing connections)."""
        code = reply[:3] if outcome == "bounced" else "451"
        budget_key = destination.route.limits.budget_key if destination.route else ""
        while destination.jobs:
            job = destination.jobs.popleft()
            for row_id, recipient in job.recipients:
                self._finish(job, row_id, recipient, code, reply, None, budget_key)

    def _postpone_all(self, destination: _Destination, until: float, why: str) -> None:
        """Send the held jobs back to the queue until ``until`` without counting an attempt
        (a suspension or warm-up cap is not the recipient's failure)."""
        while destination.jobs:
            self._postpone(destination.jobs.popleft(), until, why)

    def _postpone(self, job: Job, until: float, why: str) -> None:
        for row_id, recipient in job.recipients:
            result = RecipientResult(
                row_id, "deferred", next_attempt_at=until, counted=False, reply=why
            )
            self._emit(
                result,
                {"message_id": job.message_id, "recipient": recipient, "domain": job.domain},
            )

    def _sending_domain_hold(self, sending_domain: str) -> float | None:
        """When mail from ``sending_domain`` may go again, if the reputation monitor
        suspended it (None: it may go now)."""
        if self.reputation is None:
            return None
        now = datetime.fromtimestamp(self.clock(), UTC)
        until = self.reputation.suspended_sending_domains(now).get(sending_domain)
        return until.timestamp() if until is not None else None

    # ------------------------------------------------------------------ storing outcomes

    async def _writer(self) -> None:
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            if self._results:
                await asyncio.to_thread(self._store, *self._take_batch())
                self.wake()

    def _take_batch(self) -> tuple[list[tuple[RecipientResult, dict[str, Any]]], int | None]:
        """The outcomes not yet stored, and the journal segment that holds exactly them (on
        the loop's thread, where outcomes are appended, so the two match)."""
        batch, self._results = self._results, []
        segment = self.journal.rotate() if self.journal is not None and batch else None
        return batch, segment

    def _store(
        self, batch: list[tuple[RecipientResult, dict[str, Any]]], segment: int | None = None
    ) -> None:
        if not batch:
            return
        self.queue.record(
            [result for result, _ in batch],
            self.clock(),
            {result.row_id: context for result, context in batch if result.counted},
        )
        if self.journal is not None and segment is not None:
            self.journal.committed(segment)
        self.egress.flush()
        if any(result.outcome == "bounced" for result, _ in batch):
            self.send_dsns()

    def _replay_journal(self) -> int:
        """Store the outcomes a killed predecessor journaled but did not commit (only for
        recipients still claimed: the others' outcomes reached the database); returns how
        many."""
        if self.journal is None:
            return 0
        leftovers = self.journal.leftovers()
        if leftovers:
            claimed = self.queue.claimed([result.row_id for result, _ in leftovers])
            replay = [(r, c) for r, c in leftovers if r.row_id in claimed]
            if replay:
                log.info("journal_replayed", outcomes=len(replay))
                self._store(replay)
        self.journal.forget_leftovers()
        return len(leftovers)

    def _housekeeping(self) -> None:
        self.send_dsns()
        self.queue.collect_finished()

    def send_dsns(self) -> int:
        """Queue a DSN to the sender of each message with newly bounced recipients (none for
        the null sender); returns how many were queued."""
        queued = 0
        for message_id, rows in self.queue.bounced_without_dsn().items():
            message = self.queue.message(message_id)
            if message is not None and needs_dsn(message.mail_from):
                try:
                    original = self.queue.load(message_id)
                except QueueError:
                    original = b""
                now = datetime.fromtimestamp(self.clock(), UTC)
                failures = [
                    DsnRecipient(
                        recipient=row.recipient,
                        status=row.status or "5.0.0",
                        diagnostic=row.last_reply,
                        remote_mta=row.last_mx or None,
                        last_attempt=datetime.fromtimestamp(
                            row.last_attempt_at or self.clock(), UTC
                        ),
                    )
                    for row in rows
                ]
                hostname = self.settings.resolved_delivery_hostname
                report = build_dsn(
                    original,
                    envelope_from=message.mail_from,
                    failures=failures,
                    reporting_mta=hostname,
                    arrival_date=datetime.fromtimestamp(message.created_at, UTC),
                    now=now,
                    envelope_id=message.envelope_id,
                    queue_id=message_id,
                )
                self.queue.submit(
                    Prepared(
                        mail_from="",
                        recipients=(message.mail_from,),
                        raw=report,
                        sending_domain=hostname,
                        subject="Undelivered Mail Returned to Sender",
                        header_message_id="",
                        source="dsn",
                        submitted_by=hostname,
                        idempotency_key=f"dsn:{message_id}:{min(row.id for row in rows)}",
                    )
                )
                queued += 1
            self.queue.mark_dsn_sent([row.id for row in rows])
        return queued


def _reply(error: aiosmtplib.SMTPResponseException) -> str:
    return f"{error.code} {error.message}".strip()


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
        await smtp.rset()
