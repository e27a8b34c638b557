"""``POST /v1/contacts`` and ``POST /v1/events``: contacts (with consent) and engagement events
as JSON, one object or a list. Each item is validated on its own; the reply lists what became
of every item, so one bad item never rejects the others."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import Kind, import_records
from postwise.services import InboundServices

router = APIRouter(prefix="/v1", tags=["engage"])

MAX_ITEMS = 10_000

_PAYLOAD = Body(
    ...,
    description="One JSON object or a list of them (at most 10000 per request).",
)


def get_contact_store(request: Request) -> ContactStore:
    """The app's contact store, built on first use over the app's database."""
    store: ContactStore | None = getattr(request.app.state, "contacts", None)
    if store is None:
        services: InboundServices = request.app.state.services
        store = ContactStore.from_settings(request.app.state.settings, services.engine)
        request.app.state.contacts = store
    return store


def _item(outcome: dict[str, Any]) -> dict[str, Any]:
    # Items are numbered from 0 in the reply, as in the request list.
    line = outcome.pop("line")
    return {"index": line - 1, **outcome}


async def _ingest(kind: Kind, payload: dict[str, Any] | list[Any], store: ContactStore) -> Any:
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > MAX_ITEMS:
        raise HTTPException(413, f"{len(items)} items, over the limit of {MAX_ITEMS} per request")
    report, outcomes = await run_in_threadpool(import_records, store, kind, items, "api")
    summary = report.to_json()
    summary.pop("errors")
    summary.pop("errors_not_listed")
    summary.pop("source")
    return {
        **summary,
        "items": [_item(outcome.to_json()) for outcome in outcomes],
    }


@router.post("/contacts")
async def post_contacts(
    payload: dict[str, Any] | list[Any] = _PAYLOAD,
    store: ContactStore = Depends(get_contact_store),
) -> Any:
    """Create or update contacts: ``{"email", "attributes"?, "consent"?: [{"purpose",
    "channel", "granted", "source"?, "recorded_at"?}]}``. Per-item status ``created``,
    ``updated`` or ``error`` (with the reason)."""
    return await _ingest("contacts", payload, store)


@router.post("/events")
async def post_events(
    request: Request,
    payload: dict[str, Any] | list[Any] = _PAYLOAD,
    store: ContactStore = Depends(get_contact_store),
) -> Any:
    """Append engagement events: ``{"event_id", "type", "occurred_at", "contact_id" | "email",
    "value"?, "properties"?}``. Per-item status ``imported``, ``duplicate`` (event id already
    stored) or ``error``. Wakes the trigger watcher of ``postwise serve``, so a triggered
    message goes out within seconds."""
    reply = await _ingest("events", payload, store)
    watcher = getattr(request.app.state, "triggers", None)
    if watcher is not None and reply.get("imported"):
        watcher.nudge()
    return reply
