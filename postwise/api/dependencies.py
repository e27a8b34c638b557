"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.engine import Engine

from postwise.core.settings import Settings
from postwise.inbound.scanner import Scanner
from postwise.services import InboundServices, OutboundServices


def get_scanner(request: Request) -> Scanner:
    scanner: Scanner = request.app.state.scanner
    return scanner


def get_engine(request: Request) -> Engine | None:
    engine: Engine | None = request.app.state.engine
    return engine


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_services(request: Request) -> InboundServices:
    services: InboundServices = request.app.state.services
    return services


def get_outbound(request: Request) -> OutboundServices:
    outbound: OutboundServices = request.app.state.outbound
    return outbound


async def read_message_body(request: Request, limit: int) -> bytes:
    """The raw message in the request body: 413 as soon as it passes ``limit`` bytes, 400 when
    it is empty."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"message is {declared} bytes, over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"message is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise HTTPException(
            400,
            "empty body: send the raw RFC 822 message as the request body "
            "(curl --data-binary @message.eml)",
        )
    return raw


def raw_message_body(description: str) -> dict[str, Any]:
    """OpenAPI for a route whose body is one raw RFC 822 message."""
    return {
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
            "description": description,
        }
    }
