"""The model registry: every trained model stored with its version, data fingerprint,
parameters, metrics, model card and training distribution; promotion, rollback and drift checks.

A model is registered from its artefact folder (the ``model_card.json`` a train command writes,
and the ``drift_reference.json`` beside it when there is one) under a *name* such as
``propensity:online_retail``. A new version is a ``candidate``; :func:`promote` makes it the
one ``promoted`` version of its name and retires the one it replaces; :func:`rollback`
re-promotes the version the current one replaced. Every change appends an event
(``model_registered``, ``model_promoted``, ``model_rolled_back``), and :func:`check_drift`
appends ``model_drift`` when the population stability of an input or of the scores exceeds
the threshold.

Errors: :class:`RegistryError` (a PostwiseError) for an unknown name or version, a folder
without a readable card, or nothing to roll back to; drift input problems raise
:class:`~postwise.engage.drift.DriftError`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import ModelRecord, utcnow
from postwise.core.errors import PostwiseError
from postwise.core.events import append_event, append_event_in
from postwise.engage.drift import DEFAULT_PSI_THRESHOLD, population_stability, read_reference

CARD_FILE = "model_card.json"
CANDIDATE = "candidate"
PROMOTED = "promoted"
RETIRED = "retired"


class RegistryError(PostwiseError):
    """A model name or version is unknown, an artefact folder has no readable card, or a
    promotion or rollback is impossible."""


@dataclass(frozen=True)
class ModelEntry:
    """One registered model version."""

    name: str
    version: str
    status: str
    data_fingerprint: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    card: dict[str, Any]
    artefact_path: str
    created_at: datetime
    promoted_at: datetime | None
    replaced_version: str | None
    has_drift_reference: bool

    def summary(self) -> dict[str, Any]:
        """The entry as JSON-ready values, without the card."""
        data = asdict(self)
        del data["card"]
        data["created_at"] = self.created_at.isoformat()
        data["promoted_at"] = self.promoted_at.isoformat() if self.promoted_at else None
        return data


@dataclass(frozen=True)
class DriftReport:
    """PSI per input and of the scores against the training reference of one model version."""

    name: str
    version: str
    threshold: float
    feature_psi: dict[str, float]
    score_psi: float | None
    missing_features: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """Inputs (and ``score``) whose PSI exceeds the threshold."""
        names = [n for n, psi in self.feature_psi.items() if psi > self.threshold]
        if self.score_psi is not None and self.score_psi > self.threshold:
            names.append("score")
        return names

    @property
    def alert(self) -> bool:
        return bool(self.drifted)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drifted": self.drifted, "alert": self.alert}


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were stored in UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _entry(row: ModelRecord) -> ModelEntry:
    created = _utc(row.created_at)
    assert created is not None
    return ModelEntry(
        name=row.name,
        version=row.version,
        status=row.status,
        data_fingerprint=row.data_fingerprint,
        parameters=row.parameters,
        metrics=row.metrics,
        card=row.card,
        artefact_path=row.artefact_path,
        created_at=created,
        promoted_at=_utc(row.promoted_at),
        replaced_version=row.replaced_version,
        has_drift_reference=row.drift_reference is not None,
    )


def default_name(card: Mapping[str, Any]) -> str:
    """``family:dataset`` from a model card: the card's ``name`` when it has one, else the
    version's first word (``propensity``, ``uplift``) and the card's ``dataset``."""
    if isinstance(card.get("name"), str) and card["name"]:
        return str(card["name"])
    family = str(card.get("version", "model")).split("-", 1)[0] or "model"
    dataset = card.get("dataset") or ("hillstrom" if family == "uplift" else "default")
    return f"{family}:{dataset}"


def _fingerprint(card: Mapping[str, Any]) -> str:
    """One SHA-256 for the training data, from whatever per-file hashes the card holds."""
    prints = card.get("data_fingerprint")
    if prints is None:
        data = card.get("data")
        prints = data.get("sha256") if isinstance(data, Mapping) else None
    if isinstance(prints, str) and len(prints) == 64:
        return prints
    canonical = json.dumps(prints, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read_card(folder: Path) -> dict[str, Any]:
    path = folder / CARD_FILE
    try:
        card = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise RegistryError(
            f"{folder}: no {CARD_FILE}; register a folder written by a train command"
        ) from error
    except (OSError, ValueError) as error:
        raise RegistryError(f"{path}: not a readable model card ({error})") from error
    if not isinstance(card, dict) or not isinstance(card.get("version"), str):
        raise RegistryError(f"{path}: a model card needs a string 'version'")
    return card


def register(engine: Engine, folder: Path, name: str | None = None) -> ModelEntry:
    """Store the model in ``folder`` as a candidate of ``name`` (default :func:`default_name`
    of its card). Registering a version already stored returns the stored entry unchanged.
    Raises RegistryError when the folder has no readable card."""
    folder = folder.resolve()
    card = _read_card(folder)
    name = name or default_name(card)
    version = card["version"]
    reference = read_reference(folder)
    metrics = card.get("metrics", card.get("internal_split_metrics", {}))
    with Session(engine) as session, session.begin():
        existing = session.scalars(
            select(ModelRecord).where(ModelRecord.name == name, ModelRecord.version == version)
        ).first()
        if existing is not None:
            return _entry(existing)
        row = ModelRecord(
            name=name,
            version=version,
            data_fingerprint=_fingerprint(card),
            parameters=card.get("params", card.get("parameters", {})),
            metrics=metrics if isinstance(metrics, dict) else {"value": metrics},
            card=card,
            drift_reference=reference,
            artefact_path=str(folder),
            status=CANDIDATE,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        append_event_in(
            session.connection(),
            f"model_registered:{name}:{version}",
            "model_registered",
            {"name": name, "version": version, "artefact_path": str(folder)},
        )
        return _entry(row)


def list_models(engine: Engine, name: str | None = None) -> list[ModelEntry]:
    """Registered versions, by name then newest first; only ``name``'s when given."""
    query = select(ModelRecord).order_by(ModelRecord.name, ModelRecord.id.desc())
    if name is not None:
        query = query.where(ModelRecord.name == name)
    with Session(engine) as session:
        return [_entry(row) for row in session.scalars(query)]


def _find(session: Session, name: str, version: str | None) -> ModelRecord:
    query = select(ModelRecord).where(ModelRecord.name == name)
    if version is None:
        promoted = session.scalars(query.where(ModelRecord.status == PROMOTED)).first()
        row = promoted or session.scalars(query.order_by(ModelRecord.id.desc())).first()
    else:
        row = session.scalars(query.where(ModelRecord.version == version)).first()
    if row is None:
        known = sorted(set(session.scalars(select(ModelRecord.name))))
        what = f"model {name!r}" + (f" version {version!r}" if version else "")
        raise RegistryError(
            f"{what} is not registered (registered names: {', '.join(known) or 'none'}); "
            "see `postwise models list`"
        )
    return row


def show(engine: Engine, name: str, version: str | None = None) -> ModelEntry:
    """One version of ``name``: the given one, else the promoted one, else the newest.
    Raises RegistryError when there is none."""
    with Session(engine) as session:
        return _entry(_find(session, name, version))


def promoted(engine: Engine, name: str) -> ModelEntry | None:
    """The promoted version of ``name``, or None."""
    with Session(engine) as session:
        row = session.scalars(
            select(ModelRecord).where(ModelRecord.name == name, ModelRecord.status == PROMOTED)
        ).first()
        return None if row is None else _entry(row)


def promote(engine: Engine, name: str, version: str) -> ModelEntry:
    """Make ``version`` the promoted version of ``name``; the previously promoted one is
    retired and remembered so :func:`rollback` can return to it. Promoting the promoted
    version changes nothing. Raises RegistryError for an unknown name or version."""
    with Session(engine) as session, session.begin():
        row = _find(session, name, version)
        if row.status == PROMOTED:
            return _entry(row)
        current = session.scalars(
            select(ModelRecord).where(ModelRecord.name == name, ModelRecord.status == PROMOTED)
        ).first()
        if current is not None:
            current.status = RETIRED
        row.status = PROMOTED
        row.promoted_at = utcnow()
        row.replaced_version = current.version if current is not None else None
        session.flush()
        append_event_in(
            session.connection(),
            f"model_promoted:{uuid.uuid4().hex}",
            "model_promoted",
            {"name": name, "version": version, "replaced": row.replaced_version},
        )
        return _entry(row)


def rollback(engine: Engine, name: str) -> ModelEntry:
    """Retire the promoted version of ``name`` and re-promote the one it replaced. Raises
    RegistryError when nothing is promoted or the promoted version replaced none."""
    with Session(engine) as session, session.begin():
        current = session.scalars(
            select(ModelRecord).where(ModelRecord.name == name, ModelRecord.status == PROMOTED)
        ).first()
        if current is None:
            _find(session, name, None)  # raises for an unknown name
            raise RegistryError(f"model {name!r} has no promoted version to roll back")
        if current.replaced_version is None:
            raise RegistryError(
                f"model {name!r}: {current.version} replaced no earlier promoted version; "
                "nothing to roll back to (promote a version instead)"
            )
        previous = _find(session, name, current.replaced_version)
        current.status = RETIRED
        # The re-promoted version keeps its own replaced_version: a second rollback goes
        # further back in the promotion history.
        previous.status = PROMOTED
        previous.promoted_at = utcnow()
        session.flush()
        append_event_in(
            session.connection(),
            f"model_rolled_back:{uuid.uuid4().hex}",
            "model_rolled_back",
            {"name": name, "version": previous.version, "retired": current.version},
        )
        return _entry(previous)


def check_drift(
    engine: Engine,
    name: str,
    current_features: Mapping[str, Any],
    current_scores: Any = None,
    *,
    version: str | None = None,
    threshold: float = DEFAULT_PSI_THRESHOLD,
) -> DriftReport:
    """PSI of each input in ``current_features`` (a mapping or DataFrame of columns) and of
    ``current_scores`` against the training reference of ``name`` (the promoted version, else
    the newest, or ``version``). Appends a ``model_drift`` event when a PSI exceeds
    ``threshold``. Inputs of the reference absent from the current data are listed in
    ``missing_features``. Raises RegistryError when the model or its reference is missing."""
    with Session(engine) as session:
        row = _find(session, name, version)
        reference, version = row.drift_reference, row.version
    if reference is None:
        raise RegistryError(
            f"model {name!r} version {version!r} was registered without a training reference "
            f"(no drift_reference.json in its folder); retrain and register it again"
        )
    columns = set(current_features.keys())
    feature_psi = {
        feature: population_stability(column, current_features[feature])
        for feature, column in reference.get("features", {}).items()
        if feature in columns
    }
    missing = sorted(set(reference.get("features", {})) - columns)
    score_psi = None
    if current_scores is not None and reference.get("scores") is not None:
        score_psi = population_stability(reference["scores"], current_scores)
    report = DriftReport(name, version, threshold, feature_psi, score_psi, missing)
    if report.alert:
        append_event(
            engine,
            f"model_drift:{uuid.uuid4().hex}",
            "model_drift",
            {
                "name": name,
                "version": version,
                "threshold": threshold,
                "drifted": report.drifted,
                "psi": {n: feature_psi[n] for n in report.drifted if n in feature_psi}
                | ({"score": score_psi} if "score" in report.drifted else {}),
            },
        )
    return report


def register_trained(folder: Path) -> str:
    """Register a folder a train command just wrote in the configured database, as a candidate;
    returns the line to print. A database problem does not undo the training: it is reported
    in the line, with the command that registers the folder later."""
    from sqlalchemy.exc import SQLAlchemyError

    from postwise.core.db import open_database
    from postwise.core.settings import get_settings

    try:
        entry = register(open_database(get_settings().resolved_database_url), folder)
    except (PostwiseError, SQLAlchemyError, OSError) as error:
        return f"not registered ({error}); run `postwise models register {folder}`"
    return (
        f"registered {entry.name} {entry.version} as {entry.status} "
        f"(`postwise models promote {entry.name} {entry.version}` to use it)"
    )
