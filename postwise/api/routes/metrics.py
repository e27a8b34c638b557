"""``GET /metrics``: the outbound figures in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from postwise.api.dependencies import get_outbound
from postwise.ops.metrics import render
from postwise.services import OutboundServices

router = APIRouter(tags=["metrics"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=Response)
async def metrics(outbound: OutboundServices = Depends(get_outbound)) -> Response:
    """Queue depth, delivery outcomes, MX figures and automation actions in force."""
    # Rendered on the event loop rather than in a thread: the collector reads the delivery
    # worker's in-memory state, which only this loop changes (the queue queries are small).
    return Response(render(outbound.registry), media_type=PROMETHEUS_TEXT)
