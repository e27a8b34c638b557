"""``/v1/suppressions`` (addresses submission refuses) and ``POST /v1/feedback`` (complaints
and bounces received back, which add to them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from postwise.api.dependencies import get_outbound, raw_message_body, read_message_body
from postwise.outbound.feedback import FeedbackError, ingest_feedback
from postwise.outbound.submission import SubmissionError, check_address
from postwise.outbound.suppression import SUPPRESSION_SOURCES, normalise_address
from postwise.services import OutboundServices

router = APIRouter(prefix="/v1", tags=["suppressions"])


class NewSuppression(BaseModel):
    address: str = Field(max_length=254)
    reason: str = Field("operator", min_length=1, max_length=64)


@router.get("/suppressions")
async def list_suppressions(
    source: str | None = Query(None, description="bounce, complaint or operator"),
    limit: int = Query(100, ge=1, le=10000),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Suppressed addresses, newest first."""
    if source is not None and source not in SUPPRESSION_SOURCES:
        raise HTTPException(422, f"source must be one of {', '.join(SUPPRESSION_SOURCES)}")
    entries = await run_in_threadpool(outbound.suppressions.entries, limit, source)
    return {"items": [entry.to_json() for entry in entries]}


@router.post("/suppressions", status_code=201)
async def add_suppression(
    body: NewSuppression, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """Suppress an address (source ``operator``); an address already listed keeps its first
    cause."""
    try:
        address = check_address(body.address, "address")
    except SubmissionError as error:
        raise HTTPException(422, str(error)) from None
    await run_in_threadpool(outbound.suppressions.add, address, body.reason, "operator")
    found = await run_in_threadpool(outbound.suppressions.find, [address])
    return found[normalise_address(address)].to_json()


@router.delete("/suppressions/{address}")
async def remove_suppression(
    address: str, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """Forget a suppressed address: submission accepts it again."""
    if not await run_in_threadpool(outbound.suppressions.remove, address):
        raise HTTPException(404, f"{address!r} is not on the suppression list")
    return {"removed": normalise_address(address)}


@router.post(
    "/feedback",
    openapi_extra=raw_message_body("An ARF complaint or a bounce (DSN) received back."),
)
async def receive_feedback(
    request: Request, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """Record a complaint (event, suppression, reputation) or a bounce (event, suppression of
    hard-bounced recipients). 422 when the message is neither: nothing is recorded."""
    raw = await read_message_body(request, outbound.settings.max_message_bytes)
    try:
        result = await run_in_threadpool(ingest_feedback, raw, outbound)
    except FeedbackError as error:
        raise HTTPException(422, str(error)) from None
    return result.to_json()
