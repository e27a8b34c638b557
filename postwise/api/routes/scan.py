"""``POST /v1/scan``: a raw RFC 822 message in, a verdict out (the JSON of ``scan --json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from postwise.api.dependencies import (
    get_app_settings,
    get_engine,
    get_scanner,
    raw_message_body,
    read_message_body,
)
from postwise.core.events import record_verdict
from postwise.core.settings import Settings
from postwise.inbound.scanner import Scanner

router = APIRouter(prefix="/v1", tags=["scan"])

_SCAN_BODY = raw_message_body(
    "The raw message, exactly as received (any Content-Type is accepted)."
)


@router.post("/scan", openapi_extra=_SCAN_BODY)
async def scan_message(
    request: Request,
    id: str | None = Query(None, max_length=998, description="name to report the message by"),
    scanner: Scanner = Depends(get_scanner),
    engine: Engine | None = Depends(get_engine),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Scan one message and return its verdict; the verdict is also stored with provenance."""
    raw = await read_message_body(request, settings.max_message_bytes)
    verdict = await run_in_threadpool(scanner.scan, raw, id)
    if engine is not None:
        await run_in_threadpool(record_verdict, engine, verdict, "api")
    return verdict.to_json()
