"""The FastAPI application: routes per resource, dependencies declared once."""

from __future__ import annotations

from fastapi import FastAPI

from postwise import __version__
from postwise.api.routes import (
    campaigns,
    decisions,
    engage,
    experiments,
    health,
    learn,
    messages,
    metrics,
    outbound_queue,
    quarantine,
    scan,
    suppressions,
    tracking,
)
from postwise.core.settings import Settings, get_settings
from postwise.inbound.scanner import Scanner
from postwise.services import InboundServices, OutboundServices


def create_app(
    settings: Settings | None = None,
    scanner: Scanner | None = None,
    services: InboundServices | None = None,
    outbound: OutboundServices | None = None,
) -> FastAPI:
    """Build the app: loads the scanner (model and policy) and opens the database up front, so
    a broken model or policy stops the server at start rather than at the first request.
    ``services`` shares the scanner, database and quarantine of a running gateway."""
    settings = settings or get_settings()
    services = services or InboundServices.from_settings(settings, scanner)
    app = FastAPI(
        title="Postwise",
        version=__version__,
        description="Scan mail for spam and phishing; more subsystems join as they land.",
    )
    outbound = outbound or OutboundServices.from_settings(settings, services.engine)
    app.state.settings = settings
    app.state.outbound = outbound
    app.state.services = services
    app.state.scanner = services.scanner
    app.state.engine = services.engine if settings.store_verdicts else None
    app.include_router(health.router)
    app.include_router(scan.router)
    app.include_router(quarantine.router)
    app.include_router(learn.router)
    app.include_router(messages.router)
    app.include_router(outbound_queue.router)
    app.include_router(suppressions.router)
    app.include_router(metrics.router)
    app.include_router(engage.router)
    app.include_router(decisions.router)
    app.include_router(experiments.router)
    app.include_router(campaigns.router)
    app.include_router(tracking.router)
    return app
