"""``POST /v1/learn?as=ham|spam|phish``: feedback on a verdict, the raw message as the body.

The scanner's online model learns the correction at once (and saves it, so other processes
pick it up); a ``feedback`` event records it, once per label and message however often it is
sent."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine

from postwise.api.dependencies import (
    get_app_settings,
    get_engine,
    get_scanner,
    raw_message_body,
    read_message_body,
)
from postwise.core.errors import ModelError
from postwise.core.events import append_event
from postwise.core.settings import Settings
from postwise.inbound.scanner import Scanner

router = APIRouter(prefix="/v1", tags=["learn"])

_LEARN_BODY = raw_message_body(
    "The raw message the feedback is about (any Content-Type is accepted)."
)


@router.post("/learn", openapi_extra=_LEARN_BODY)
async def learn_message(
    request: Request,
    label: Literal["ham", "spam", "phish"] = Query(
        ..., alias="as", description="what the message is: ham, spam or phish"
    ),
    scanner: Scanner = Depends(get_scanner),
    engine: Engine | None = Depends(get_engine),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Teach the online model that the message is ``as``; returns its probabilities before and
    after, the online model's new version, and whether the feedback was new to the event log."""
    raw = await read_message_body(request, settings.max_message_bytes)
    try:
        result = await run_in_threadpool(scanner.learn, raw, label)
    except ModelError as error:
        raise HTTPException(409, str(error)) from None
    body = result.to_json()
    body["model_version"] = scanner.model_version
    body["recorded"] = None
    if engine is not None:
        body["recorded"] = await run_in_threadpool(
            append_event,
            engine,
            f"feedback:{label}:{result.message_sha256}",
            "feedback",
            {
                "message_sha256": result.message_sha256,
                "label": label,
                "source": "api",
                "online_version": result.online_version,
                "before": body["before"],
                "after": body["after"],
            },
        )
    return body
