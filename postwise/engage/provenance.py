"""Decision provenance: every score or decision made for a contact, with what made it.

:func:`record_decision` stores one row in ``decisions`` (the model name and version, the
SHA-256 of the features' canonical JSON, optionally the features themselves, and the policy)
and appends a ``decision`` event in the same transaction; :func:`record_decisions` (and
``record_decisions_in``, inside a caller's transaction) does the same for a batch;
:func:`decisions_for` reads a contact's decisions back, newest first (``postwise engage explain
CONTACT``).

The features hash is reproducible: :func:`features_hash` of the same mapping gives the same
hex string in any process (keys sorted, no whitespace, numpy numbers as Python numbers,
non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert as insert_plain
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from postwise.core.db import DecisionRecord, utcnow
from postwise.core.events import append_event_in, append_events_in


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays as Python values, non-finite floats as strings."""
    if value is None or isinstance(value, str | int):  # the common leaves first (bool is int)
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that :func:`features_hash` hashes."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def features_hash(features: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``features``."""
    return hashlib.sha256(canonical_json(features).encode()).hexdigest()


@dataclass(frozen=True)
class DecisionEntry:
    """One recorded decision."""

    decision_id: str
    contact_id: str
    kind: str
    decision: Any
    model_name: str | None
    model_version: str | None
    features_sha256: str
    features: dict[str, Any] | None
    policy: Any
    decided_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decided_at": self.decided_at.isoformat()}


def _entry(row: DecisionRecord) -> DecisionEntry:
    decided = row.decided_at
    if decided.tzinfo is None:  # SQLite drops the zone; it was stored in UTC
        decided = decided.replace(tzinfo=UTC)
    return DecisionEntry(
        decision_id=row.decision_id,
        contact_id=row.contact_id,
        kind=row.kind,
        decision=row.decision,
        model_name=row.model_name,
        model_version=row.model_version,
        features_sha256=row.features_sha256,
        features=row.features,
        policy=row.policy,
        decided_at=decided,
    )


def record_decision(
    engine: Engine,
    contact_id: str,
    kind: str,
    decision: Any,
    model_name: str | None,
    model_version: str | None,
    features: Mapping[str, Any],
    policy: Any,
    at: datetime | None = None,
    *,
    keep_features: bool = False,
    decision_id: str | None = None,
) -> DecisionEntry:
    """Store a score or decision (``kind`` such as ``propensity_score``, ``send``,
    ``holdout``) made for ``contact_id`` by ``model_name`` at ``model_version`` (None for a rule)
    from ``features`` under ``policy`` (a name, version or mapping), at ``at`` (default now),
    and append a ``decision`` event. The features are always hashed and kept only with
    ``keep_features``. With a ``decision_id`` already stored, returns the stored decision
    (recording is idempotent by id)."""
    item = NewDecision(
        contact_id, kind, decision, model_name, model_version, features, policy, at, keep_features
    )
    values = _values(item, decision_id or uuid.uuid4().hex, utcnow(), _plain(policy))
    with Session(engine) as session, session.begin():
        existing = session.scalars(
            select(DecisionRecord).where(DecisionRecord.decision_id == values["decision_id"])
        ).first()
        if existing is not None:
            return _entry(existing)
        row = DecisionRecord(**values)
        session.add(row)
        session.flush()
        append_event_in(session.connection(), *_event(values))
        return _entry(row)


@dataclass(frozen=True)
class NewDecision:
    """One decision to record in a batch (:func:`record_decisions`); the fields mean what the
    arguments of :func:`record_decision` mean."""

    contact_id: str
    kind: str
    decision: Any
    model_name: str | None
    model_version: str | None
    features: Mapping[str, Any]
    policy: Any
    at: datetime | None = None
    keep_features: bool = False
    decision_id: str | None = None


_BATCH_ROWS = 500


def _values(item: NewDecision, decision_id: str, now: datetime, policy: Any) -> dict[str, Any]:
    """The ``decisions`` row of ``item`` (``policy`` already made JSON-ready)."""
    moment = item.at or now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {
        "decision_id": decision_id,
        "contact_id": item.contact_id,
        "kind": item.kind,
        "decision": _plain(item.decision),
        "model_name": item.model_name,
        "model_version": item.model_version,
        "features_sha256": features_hash(item.features),
        "features": _plain(item.features) if item.keep_features else None,
        "policy": policy,
        "decided_at": moment,
    }


def _event(row: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The ``decision`` event of a ``decisions`` row."""
    return (
        f"decision:{row['decision_id']}",
        "decision",
        {
            "decision_id": row["decision_id"],
            "contact_id": row["contact_id"],
            "kind": row["kind"],
            "model_name": row["model_name"],
            "model_version": row["model_version"],
            "features_sha256": row["features_sha256"],
            "decided_at": row["decided_at"].isoformat(),
        },
    )


def record_decisions_in(connection: Connection, decisions: Sequence[NewDecision]) -> list[str]:
    """Store many decisions and their ``decision`` events within ``connection``'s transaction
    (so they commit with the rows they describe), a few statements per 500 decisions instead
    of one transaction each. Decision ids already stored (or repeated in the batch) are
    skipped, as :func:`record_decision` does; returns the ids recorded by this call."""
    now = utcnow()
    pending: dict[str, dict[str, Any]] = {}
    # A batch usually shares one policy object: convert it once (by identity; the objects
    # live as long as ``decisions``).
    policies: dict[int, Any] = {}
    for item in decisions:
        decision_id = item.decision_id or uuid.uuid4().hex
        if decision_id in pending:
            continue
        if id(item.policy) not in policies:
            policies[id(item.policy)] = _plain(item.policy)
        pending[decision_id] = _values(item, decision_id, now, policies[id(item.policy)])
    recorded: list[str] = []
    ids = list(pending)
    for start in range(0, len(ids), _BATCH_ROWS):
        chunk = ids[start : start + _BATCH_ROWS]
        stored = {
            str(row[0])
            for row in connection.execute(
                select(DecisionRecord.decision_id).where(DecisionRecord.decision_id.in_(chunk))
            )
        }
        rows = [pending[i] for i in chunk if i not in stored]
        if not rows:
            continue
        dialect = connection.dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite_insert if dialect == "sqlite" else pg_insert
            # A concurrent writer may have stored an id since the check: skip it, as above.
            connection.execute(
                insert(DecisionRecord).on_conflict_do_nothing(index_elements=["decision_id"]), rows
            )
        else:
            connection.execute(insert_plain(DecisionRecord), rows)
        append_events_in(connection, [_event(row) for row in rows])
        recorded.extend(row["decision_id"] for row in rows)
    return recorded


def record_decisions(engine: Engine, decisions: Sequence[NewDecision]) -> list[str]:
    """:func:`record_decisions_in` in one transaction of its own."""
    with engine.begin() as connection:
        return record_decisions_in(connection, decisions)


def decisions_for(engine: Engine, contact_id: str, limit: int | None = None) -> list[DecisionEntry]:
    """The decisions recorded for ``contact_id``, newest first (at most ``limit``)."""
    query = (
        select(DecisionRecord)
        .where(DecisionRecord.contact_id == contact_id)
        .order_by(DecisionRecord.decided_at.desc(), DecisionRecord.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        return [_entry(row) for row in session.scalars(query)]
