"""Dependencies shared by the routes."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.engine import Engine

from postwise.core.settings import Settings
from postwise.inbound.scanner import Scanner
from postwise.services import InboundServices


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
