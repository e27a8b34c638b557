"""``GET /v1/contacts/{contact_id}/decisions``: what was decided for a contact and what made
each decision (the data of ``postwise engage explain``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from postwise.api.dependencies import get_services
from postwise.engage.contacts import ContactError, check_contact_id
from postwise.engage.provenance import decisions_for
from postwise.services import InboundServices

router = APIRouter(prefix="/v1", tags=["engage"])


@router.get("/contacts/{contact_id}/decisions")
async def get_decisions(
    contact_id: str,
    limit: int = Query(50, ge=1, le=10000, description="newest decisions returned"),
    services: InboundServices = Depends(get_services),
) -> dict[str, Any]:
    """The contact's decisions, newest first: kind, decision, model name and version (None
    for a rule), features hash, policy, time. 422 when ``contact_id`` is not a contact id; a
    contact with no decision has an empty list."""
    try:
        check_contact_id(contact_id)
    except ContactError as error:
        raise HTTPException(422, str(error)) from None
    found = await run_in_threadpool(decisions_for, services.engine, contact_id, limit)
    return {"contact_id": contact_id, "decisions": [entry.as_dict() for entry in found]}
