"""``/v1/campaigns``: create a campaign, send it, read its report (docs/campaigns.md).

The handlers only translate: the body is a campaign definition (the TOML file's keys as JSON;
a ``template`` path is read on the server, or ``template_source`` carries the template), the
work is :func:`create_campaign`, :meth:`CampaignRunner.send_campaign` and
:func:`campaign_report`. 422 for a bad definition or parameter, 404 for an unknown campaign,
409 for a taken id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from postwise.api.dependencies import get_app_settings, get_outbound
from postwise.core.errors import CampaignError
from postwise.core.settings import Settings
from postwise.engage.campaign_report import campaign_report
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import (
    DuplicateCampaignError,
    UnknownCampaignError,
    create_campaign,
    definition_from_mapping,
)
from postwise.services import OutboundServices

router = APIRouter(prefix="/v1", tags=["campaigns"])


class SendRequest(BaseModel):
    """``at``: send as of this time (default now)."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None


def _raise(error: CampaignError) -> NoReturn:
    if isinstance(error, UnknownCampaignError):
        raise HTTPException(404, str(error)) from None
    if isinstance(error, DuplicateCampaignError):
        raise HTTPException(409, str(error)) from None
    raise HTTPException(422, str(error)) from None


@router.post("/campaigns", status_code=201)
async def post_campaign(
    body: dict[str, Any] = Body(..., description="a campaign definition (docs/campaigns.md)"),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Validate and store a campaign (status draft): 201 with the stored campaign, 422 with the
    reason for a bad definition, 409 when the id is taken."""

    def create() -> dict[str, Any]:
        definition = definition_from_mapping(body, "campaign")
        return create_campaign(outbound.engine, definition).as_dict()

    try:
        return await run_in_threadpool(create)
    except CampaignError as error:
        _raise(error)


@router.post("/campaigns/{campaign_id}/send")
async def send_campaign(
    campaign_id: str,
    body: SendRequest | None = None,
    settings: Settings = Depends(get_app_settings),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """Send the campaign (a re-send queues nothing twice): the send report. 404 for an
    unknown campaign, 422 when it cannot be prepared."""
    at = None if body is None or body.at is None else body.at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)

    def send() -> dict[str, Any]:
        runner = CampaignRunner(settings, outbound.engine, outbound=outbound)
        return runner.send_campaign(campaign_id, at).as_dict()

    try:
        return await run_in_threadpool(send)
    except CampaignError as error:
        _raise(error)


@router.get("/campaigns/{campaign_id}/report")
async def get_report(
    campaign_id: str,
    window_days: float | None = Query(
        None, gt=0, le=365, description="conversion window in days (default the campaign's)"
    ),
    sync: bool = Query(True, description="write delivered events and rewards first"),
    outbound: OutboundServices = Depends(get_outbound),
) -> dict[str, Any]:
    """The campaign report (the JSON of ``postwise campaign report --json``). 404 for an
    unknown campaign, 422 for a window out of range."""

    try:
        return await run_in_threadpool(
            partial(
                campaign_report,
                outbound.engine,
                campaign_id,
                conversion_window_days=window_days,
                sync=sync,
            )
        )
    except CampaignError as error:
        _raise(error)
