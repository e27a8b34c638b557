"""campaigns routes. Scaffolding: filled in by their author."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["campaigns"])
