"""``/v1/queue``: the outbound queue — list, show (with the MX figures the delivery worker
would choose by), retry, hold, release and purge."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from postwise.api.dependencies import get_outbound
from postwise.outbound.queue import QueueError
from postwise.services import OutboundServices

router = APIRouter(prefix="/v1/queue", tags=["queue"])


@router.get("")
async def list_queue(
    state: str | None = Query(None, description="queued, held, delivered or bounced"),
    domain: str | None = Query(None, max_length=255, description="recipient domain"),
    limit: int = Query(50, ge=1, le=1000),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Messages newest first with their recipients counted per state, and the queue depth
    (recipients per state)."""
    try:
        messages = await run_in_threadpool(outbound.queue.list_messages, state, domain, limit)
    except QueueError as error:
        raise HTTPException(422, str(error)) from None
    depth = await run_in_threadpool(outbound.queue.depth)
    return {"depth": depth, "messages": messages}


@router.post("/retry")
async def retry_all(
    domain: str | None = Query(None, max_length=255, description="only this recipient domain"),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Make every queued recipient (of one domain) due now."""
    count = await run_in_threadpool(outbound.queue.retry, None, domain)
    outbound.wake_delivery()
    return {"due_now": count, "domain": domain}


@router.post("/hold")
async def hold_queue(
    id: str | None = Query(None, max_length=32, description="one message (default: all)"),
    domain: str | None = Query(None, max_length=255, description="only this recipient domain"),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Keep queued recipients from delivery until released (like ``postsuper -h``)."""
    try:
        count = await run_in_threadpool(outbound.queue.hold, id, domain)
    except QueueError as error:
        raise HTTPException(404, str(error)) from None
    return {"held": count, "id": id, "domain": domain}


@router.post("/release")
async def release_queue(
    id: str | None = Query(None, max_length=32, description="one message (default: all)"),
    domain: str | None = Query(None, max_length=255, description="only this recipient domain"),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Give held recipients back to delivery, due now (the worker is woken at once)."""
    try:
        count = await run_in_threadpool(outbound.queue.release, id, domain)
    except QueueError as error:
        raise HTTPException(404, str(error)) from None
    outbound.wake_delivery()
    return {"released": count, "id": id, "domain": domain}


@router.get("/{message_id}")
async def show_queued(
    message_id: str, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """One message with each recipient's state and last reply, and, when a delivery worker
    runs here, each recipient domain's MX hosts in the order the next connection would try
    them with the figures behind that order (empty until the worker resolved the domain)."""
    try:
        shown = await run_in_threadpool(outbound.queue.show, message_id)
    except QueueError as error:
        raise HTTPException(404, str(error)) from None
    worker = outbound.worker
    domains = sorted({r["recipient"].rpartition("@")[2].lower() for r in shown["recipients"]})
    # On the event loop, not a thread: the worker's state belongs to this loop.
    shown["mx"] = {d: worker.mx_order(d) for d in domains} if worker is not None else None
    return shown


@router.post("/{message_id}/retry")
async def retry_message(
    message_id: str, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """Make the message's queued recipients due now."""
    try:
        count = await run_in_threadpool(outbound.queue.retry, message_id)
    except QueueError as error:
        raise HTTPException(404, str(error)) from None
    outbound.wake_delivery()
    return {"id": message_id, "due_now": count}


@router.delete("/{message_id}")
async def purge_message(
    message_id: str, outbound: OutboundServices = Depends(get_outbound)
) -> dict[str, Any]:
    """Delete the message, its recipients and its spooled bytes; recipients still queued
    will not be delivered."""
    try:
        queued = await run_in_threadpool(outbound.queue.purge, message_id)
    except QueueError as error:
        raise HTTPException(404, str(error)) from None
    return {"purged": message_id, "undelivered": queued}
