"""The FastAPI application: routes per resource, dependencies declared once."""

from __future__ import annotations

from fastapi import FastAPI

from postwise import __version__
from postwise.api.routes import health, scan
from postwise.core.db import open_database
from postwise.core.settings import Settings, get_settings
from postwise.inbound.scanner import Scanner


def create_app(settings: Settings | None = None, scanner: Scanner | None = None) -> FastAPI:
    """Build the app: loads the scanner (model and policy) and opens the database up front, so
    a broken model or policy stops the server at start rather than at the first request."""
    settings = settings or get_settings()
    app = FastAPI(
        title="Postwise",
        version=__version__,
        description="Scan mail for spam and phishing; more subsystems join as they land.",
    )
    app.state.settings = settings
    app.state.scanner = scanner or Scanner.from_settings(settings)
    app.state.engine = (
        open_database(settings.resolved_database_url) if settings.store_verdicts else None
    )
    app.include_router(health.router)
    app.include_router(scan.router)
    return app
