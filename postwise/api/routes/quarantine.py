"""``/v1/quarantine``: list, show, fetch, release and delete quarantined messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool

from postwise.api.dependencies import get_services
from postwise.inbound.quarantine import QuarantineError, release
from postwise.services import InboundServices, destination_for

router = APIRouter(prefix="/v1/quarantine", tags=["quarantine"])


def _not_found(error: QuarantineError) -> HTTPException:
    return HTTPException(404, str(error))


@router.get("")
async def list_quarantine(
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    services: InboundServices = Depends(get_services),
) -> dict[str, Any]:
    """Quarantined messages, newest first, with the total count."""
    entries = await run_in_threadpool(services.quarantine.list, limit, offset)
    total = await run_in_threadpool(services.quarantine.count)
    return {"total": total, "items": [entry.to_json() for entry in entries]}


@router.get("/{entry_id}")
async def show_quarantined(
    entry_id: str, services: InboundServices = Depends(get_services)
) -> dict[str, Any]:
    """One entry with the full verdict that quarantined it."""
    try:
        entry = await run_in_threadpool(services.quarantine.get, entry_id)
    except QuarantineError as error:
        raise _not_found(error) from None
    return {**entry.to_json(), "verdict": entry.verdict}


@router.get("/{entry_id}/raw", response_class=Response)
async def raw_quarantined(
    entry_id: str, services: InboundServices = Depends(get_services)
) -> Response:
    """The stored message, as ``message/rfc822``."""
    try:
        entry = await run_in_threadpool(services.quarantine.get, entry_id)
        raw = await run_in_threadpool(services.quarantine.raw, entry)
    except QuarantineError as error:
        raise _not_found(error) from None
    return Response(raw, media_type="message/rfc822")


@router.post("/{entry_id}/release")
async def release_quarantined(
    entry_id: str, services: InboundServices = Depends(get_services)
) -> dict[str, Any]:
    """Relay the message to the next hop (or the local Maildir), drop it from the quarantine
    and learn it as ham. 404: no such entry; 409: held by the MTA or refused by the next hop
    (it then stays quarantined)."""
    try:
        await run_in_threadpool(services.quarantine.get, entry_id)
    except QuarantineError as error:
        raise _not_found(error) from None
    destination = destination_for(services.settings)
    try:
        entry, delivery = await release(
            services.quarantine, entry_id, destination, services.learn_ham
        )
    except QuarantineError as error:
        raise HTTPException(409, str(error)) from None
    finally:
        await destination.close()
    return {"released": entry.id, "to": destination.description, "reply": delivery.reply}


@router.delete("/{entry_id}")
async def delete_quarantined(
    entry_id: str, services: InboundServices = Depends(get_services)
) -> dict[str, Any]:
    """Delete the entry (and its file when no other entry shares it)."""
    try:
        entry = await run_in_threadpool(services.quarantine.remove, entry_id)
    except QuarantineError as error:
        raise _not_found(error) from None
    return {"deleted": entry.id}
