"""The inbound pipeline as the protocol layers (SMTP gateway, milter) call it: scan a message off
the event loop, record the verdict, and return the decision. Handlers translate; this decides.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from postwise.core.events import record_verdict
from postwise.core.types import Verdict
from postwise.inbound.checks.base import Envelope
from postwise.inbound.decision import Decision, decide
from postwise.inbound.quarantine import QuarantineEntry, QuarantineStore
from postwise.inbound.scanner import Scanner


@dataclass
class InboundPipeline:
    """Everything a protocol layer needs to judge and keep a message.

    ``engine`` None means verdicts are not recorded (``store_verdicts = false``); the quarantine
    always needs the database."""

    scanner: Scanner
    quarantine: QuarantineStore
    engine: Engine | None
    executor: ThreadPoolExecutor
    scan_budget_bytes: int = 64 * 1024 * 1024
    """Message bytes being scanned at once, at most (one message is always let through).
    Parsing costs tens of times a message's size in memory, so this bounds the process's
    memory however many large messages hostile clients send together."""
    _scanning_bytes: int = field(default=0, init=False)
    _budget_freed: asyncio.Condition | None = field(default=None, init=False)

    async def _scan(self, raw: bytes, envelope: Envelope) -> Verdict:
        if self._budget_freed is None:
            self._budget_freed = asyncio.Condition()
        freed = self._budget_freed
        size = len(raw)
        async with freed:
            await freed.wait_for(
                lambda: (
                    self._scanning_bytes == 0
                    or self._scanning_bytes + size <= self.scan_budget_bytes
                )
            )
            self._scanning_bytes += size
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, self.scanner.scan, raw, None, envelope)
        finally:
            async with freed:
                self._scanning_bytes -= size
                freed.notify_all()

    async def judge(self, raw: bytes, envelope: Envelope, source: str) -> Decision:
        """Scan ``raw`` in a worker thread, record the verdict (``source``: gateway, milter)
        and return what to do. Raises MessageTooLarge over the size limit."""
        loop = asyncio.get_running_loop()
        verdict = await self._scan(raw, envelope)
        if self.engine is not None:
            await loop.run_in_executor(self.executor, record_verdict, self.engine, verdict, source)
        return decide(verdict)

    async def hold(
        self,
        raw: bytes,
        decision: Decision,
        envelope: Envelope,
        origin: str,
        mta_queue_id: str | None = None,
    ) -> QuarantineEntry:
        """Quarantine ``raw`` durably (off the event loop). Raises OSError if the disk refuses."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            lambda: self.quarantine.add(
                raw,
                decision.verdict,
                envelope,
                reason=decision.reason,
                origin=origin,
                mta_queue_id=mta_queue_id,
            ),
        )
