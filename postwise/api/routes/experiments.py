"""``/v1/experiments``: stored experiments (A/B tests, global and campaign holdouts) and their
results on the store's events."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine

from postwise.api.dependencies import get_services
from postwise.engage.experiment_store import (
    DuplicateExperimentError,
    ExperimentStoreError,
    UnknownExperimentError,
    create_experiment,
    get_experiment,
    list_experiments,
    results,
)
from postwise.services import InboundServices

router = APIRouter(prefix="/v1", tags=["experiments"])


class NewExperiment(BaseModel):
    """A holdout (``holdout``: the control's share; without ``campaign`` the global holdout)
    or an A/B test (``arms``: arm -> share, in order, the first being the control)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    holdout: float | None = Field(None, gt=0, lt=1)
    arms: dict[str, float] | None = None
    campaign: str | None = Field(None, min_length=1, max_length=128)
    salt: str | None = Field(None, min_length=1, max_length=255)


def get_store_engine(services: InboundServices = Depends(get_services)) -> Engine:
    return services.engine


def _raise(error: ExperimentStoreError) -> NoReturn:
    if isinstance(error, UnknownExperimentError):
        raise HTTPException(404, str(error)) from None
    if isinstance(error, DuplicateExperimentError):
        raise HTTPException(409, str(error)) from None
    raise HTTPException(422, str(error)) from None


@router.post("/experiments", status_code=201)
async def post_experiment(
    body: NewExperiment, engine: Engine = Depends(get_store_engine)
) -> dict[str, Any]:
    """Store an experiment. 422 for a bad definition (both or neither of ``holdout`` and
    ``arms``, fractions not summing to 1, bad arm names), 409 when the name is taken or an
    active global holdout exists."""
    arms = None if body.arms is None else tuple(body.arms.items())
    try:
        stored = await run_in_threadpool(
            lambda: create_experiment(
                engine,
                body.name,
                holdout=body.holdout,
                arms=arms,
                campaign=body.campaign,
                salt=body.salt,
            )
        )
    except ExperimentStoreError as error:
        _raise(error)
    return stored.as_dict()


@router.get("/experiments")
async def get_experiments(engine: Engine = Depends(get_store_engine)) -> dict[str, Any]:
    """Every experiment, oldest first, with its assigned contacts per arm."""
    listed = await run_in_threadpool(list_experiments, engine)
    return {"experiments": [{**e.as_dict(), "assigned": counts} for e, counts in listed]}


@router.get("/experiments/{name}")
async def get_one_experiment(name: str, engine: Engine = Depends(get_store_engine)) -> Any:
    """One experiment's definition; 404 when unknown."""
    try:
        stored = await run_in_threadpool(get_experiment, engine, name)
    except ExperimentStoreError as error:
        _raise(error)
    return stored.as_dict()


@router.get("/experiments/{name}/results")
async def get_results(
    name: str,
    outcome: str = Query(..., description="event type measured: purchase, open, click, …"),
    window_days: float = Query(30.0, gt=0, le=3650, description="days after assignment"),
    value: bool = Query(False, description="sum of the events' value instead of a rate"),
    engine: Engine = Depends(get_store_engine),
) -> dict[str, Any]:
    """Per arm the contacts and mean outcome in the window after their assignment; per arm
    against the control the difference in means with its 95% interval. 404 for an unknown
    experiment, 422 for an unknown event type."""
    try:
        measured = await run_in_threadpool(results, engine, name, outcome, window_days, value)
    except ExperimentStoreError as error:
        _raise(error)
    return measured.as_dict()
