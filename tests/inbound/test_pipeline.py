"""The pipeline shared by the gateway and the milter: decisions, recorded verdicts, and the
scan budget that bounds memory however many large messages arrive together."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postwise.core.db import VerdictRecord, open_database
from postwise.core.types import Verdict
from postwise.inbound.checks.base import Envelope
from postwise.inbound.pipeline import InboundPipeline
from postwise.inbound.quarantine import QuarantineStore
from postwise.inbound.scanner import Scanner


class CountingScanner(Scanner):
    """A real scanner that also records how many bytes it was scanning at once."""

    def __init__(self, base: Scanner) -> None:
        super().__init__(base.policy, base.model, base.limits, base.max_message_bytes)
        self.lock = threading.Lock()
        self.scanning = 0
        self.peak = 0

    def scan(
        self, raw: bytes, message_id: str | None = None, envelope: Envelope | None = None
    ) -> Verdict:
        with self.lock:
            self.scanning += len(raw)
            self.peak = max(self.peak, self.scanning)
        try:
            time.sleep(0.05)  # long enough for the others to try to start
            return super().scan(raw, message_id, envelope)
        finally:
            with self.lock:
                self.scanning -= len(raw)


@pytest.fixture
def make_pipeline(tmp_path: Path, scanner: Scanner) -> Iterator[Callable[..., InboundPipeline]]:
    engine = open_database(f"sqlite:///{tmp_path / 'postwise.db'}")
    executor = ThreadPoolExecutor(max_workers=4)

    def make(**overrides: Any) -> InboundPipeline:
        return InboundPipeline(
            CountingScanner(scanner),
            QuarantineStore(tmp_path / "quarantine", engine),
            engine,
            executor,
            **overrides,
        )

    yield make
    executor.shutdown(wait=True)
    engine.dispose()


def _big_message(make_message: Callable[..., bytes], size: int, marker: int) -> bytes:
    return make_message(text=f"Report {marker}\n" + "line of the report\n" * (size // 19))


def test_scan_budget_bounds_the_bytes_scanned_at_once(
    make_pipeline: Callable[..., InboundPipeline], make_message: Callable[..., bytes]
) -> None:
    pipeline = make_pipeline(scan_budget_bytes=250_000)
    messages = [_big_message(make_message, 100_000, n) for n in range(8)]

    async def judge_all() -> list[Any]:
        return await asyncio.gather(
            *(pipeline.judge(raw, Envelope(), source="gateway") for raw in messages)
        )

    decisions = asyncio.run(judge_all())
    assert len(decisions) == 8
    scanner = pipeline.scanner
    assert isinstance(scanner, CountingScanner)
    # Four threads could scan ~400 kB at once; the budget lets two through (<= 250 kB).
    assert 0 < scanner.peak <= 250_000
    assert scanner.scanning == 0
    assert pipeline._scanning_bytes == 0


def test_a_message_larger_than_the_budget_is_still_scanned(
    make_pipeline: Callable[..., InboundPipeline], make_message: Callable[..., bytes]
) -> None:
    pipeline = make_pipeline(scan_budget_bytes=10_000)
    raw = _big_message(make_message, 50_000, 1)

    async def judge_twice() -> tuple[Any, ...]:
        return await asyncio.gather(
            pipeline.judge(raw, Envelope(), source="gateway"),
            pipeline.judge(raw, Envelope(), source="gateway"),
        )

    first, second = asyncio.run(judge_twice())
    assert first.verdict.message_sha256 == second.verdict.message_sha256
    scanner = pipeline.scanner
    assert isinstance(scanner, CountingScanner)
    assert scanner.peak == len(raw)  # one at a time, never refused
    with Session(pipeline.quarantine.engine) as session:
        recorded = session.scalar(select(func.count()).select_from(VerdictRecord))
    assert recorded == 2
