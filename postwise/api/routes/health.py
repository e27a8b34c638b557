"""Liveness and what is loaded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from postwise.api.dependencies import get_scanner
from postwise.inbound.scanner import Scanner

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(scanner: Scanner = Depends(get_scanner)) -> dict[str, Any]:
    """The process is up; names the model and policy versions it scans with."""
    return {
        "status": "ok",
        "model_version": scanner.model_version,
        "policy_version": scanner.policy.version,
    }
