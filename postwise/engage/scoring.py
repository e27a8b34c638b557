"""Scoring the contacts of the store with the promoted version of a registered model.

:func:`score_contacts` is the one path from stored events to recorded scores:

1. the contacts of the store are split by consent (:meth:`ContactStore.consenting`, the batch
   form of ``has_consent``) for the purpose and channel asked; a contact without consent is
   listed as skipped and is never scored, nor are its features computed;
2. the ``engage_events`` of the consenting contacts from before the cut-off (and only those:
   the query itself stops at the cut-off) become an :class:`EventTable`
   (:func:`events_from_rows`), and :func:`postwise.engage.features.features_as_of` computes
   their features, the same function the propensity training snapshots use;
3. the promoted version of the model is loaded from its registered folder; its card's
   ``features`` must be exactly the columns ``features_as_of`` produces (same names, same
   order), otherwise :class:`ScoringError` says what is missing;
4. every score is recorded with :func:`record_decision` (model name and version, the hash of
   the contact's features, policy = purpose, channel and cut-off), and
   :func:`postwise.engage.registry.check_drift` compares the batch with the training data
   (appending ``model_drift`` above the threshold).

Mapping of ``engage_events`` onto the feature module's event kinds (the propensity models
were trained on the online_retail invoice log, one event per invoice):

- ``purchase`` with a value >= 0 (or none: 0) -> PURCHASE with that value (an order);
- ``purchase`` with a negative value -> CANCEL (a refund, as a cancelled invoice);
- ``open`` / ``click`` -> OPEN / CLICK, ``sent`` -> SENT (engagement features only);
- ``delivered``, ``unsubscribe``, ``complaint``, ``custom`` are not read.

Times are UTC epoch seconds (the retail log is in the shop's local time), so hour and weekday
shares read the UTC clock. Contacts with no mapped event before the cut-off have no features
and are listed as skipped for want of history. Contacts with opens or clicks but no purchase
are scored with the purchase features undefined (NaN), which the retail models never saw in
training (they were fitted on customers with a past purchase): read those scores with care.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine
from threadpoolctl import threadpool_limits

from postwise.core.db import ContactRecord, EngageEventRecord, utcnow
from postwise.core.errors import PostwiseError
from postwise.engage.contacts import EMAIL, MARKETING, ContactStore
from postwise.engage.drift import DriftError
from postwise.engage.features import (
    CANCEL,
    CLICK,
    OPEN,
    PURCHASE,
    SENT,
    CustomerFeatures,
    EventTable,
    feature_names,
    features_as_of,
)
from postwise.engage.propensity import load_propensity
from postwise.engage.provenance import record_decision
from postwise.engage.registry import RegistryError, check_drift, promoted, show

DECISION_KIND = "propensity_score"
SCORED_TYPES = ("purchase", "open", "click", "sent")
_KINDS = {"open": OPEN, "click": CLICK, "sent": SENT}


class ScoringError(PostwiseError):
    """The model cannot score the store: its inputs are not the features the store yields."""


@dataclass(frozen=True)
class ScoreRun:
    """What one scoring run did."""

    model_name: str
    model_version: str
    purpose: str
    channel: str
    cutoff: datetime
    scores: dict[str, float]
    skipped_consent: list[str]
    skipped_no_history: list[str]
    drift: dict[str, Any] | None
    features: dict[str, dict[str, float]] = field(repr=False, default_factory=dict)

    def top(self, count: int = 10) -> list[tuple[str, float]]:
        """The ``count`` highest scores, ties by contact id."""
        return sorted(self.scores.items(), key=lambda item: (-item[1], item[0]))[:count]

    def as_dict(self, top: int = 10) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.model_version,
            "purpose": self.purpose,
            "channel": self.channel,
            "cutoff": self.cutoff.isoformat(),
            "scored": len(self.scores),
            "skipped_consent": len(self.skipped_consent),
            "skipped_consent_contacts": self.skipped_consent,
            "skipped_no_history": len(self.skipped_no_history),
            "drift_psi_max": None if self.drift is None else self.drift["psi_max"],
            "drift": self.drift,
            "top": [{"contact_id": c, "score": s} for c, s in self.top(top)],
        }


def parse_cutoff(text: str | None) -> datetime:
    """An ISO 8601 time (no zone means UTC) as an aware UTC datetime; now when None."""
    if text is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ScoringError(f"cut-off {text!r} is not an ISO 8601 time ({error})") from None
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:  # SQLite drops the zone; stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def events_from_rows(
    rows: Iterable[tuple[str, str, datetime, float | None]], contacts: Sequence[str]
) -> EventTable:
    """The adapter from ``engage_events`` rows ``(contact_id, type, occurred_at, value)`` to the
    feature module's :class:`EventTable`; ``contact`` is the index in ``contacts`` (sorted ids).
    Rows of unmapped types or unknown contacts are left out (see the module docstring)."""
    index = {contact_id: i for i, contact_id in enumerate(contacts)}
    contact: list[int] = []
    time: list[int] = []
    value: list[float] = []
    kind: list[int] = []
    for contact_id, event_type, occurred_at, amount in rows:
        position = index.get(contact_id)
        if position is None:
            continue
        if event_type == "purchase":
            money = float(amount or 0.0)
            code = CANCEL if money < 0 else PURCHASE
        elif event_type in _KINDS:
            money, code = 0.0, _KINDS[event_type]
        else:
            continue
        contact.append(position)
        time.append(_seconds(occurred_at))
        value.append(money)
        kind.append(code)
    return EventTable(
        np.asarray(contact, dtype=np.int64),
        np.asarray(time, dtype=np.int64),
        np.asarray(value, dtype=np.float64),
        np.asarray(kind, dtype=np.int8),
    )


def model_inputs(expected: Sequence[str]) -> bool:
    """Whether ``features_as_of`` must add engagement features to give exactly the columns
    ``expected`` (a model card's ``features``, in training order). Raises ScoringError when no
    setting of the feature module gives them."""
    expected = tuple(expected)
    for engagement in (False, True):
        if expected == feature_names(engagement):
            return engagement
    known = set(feature_names(True))
    missing = [name for name in expected if name not in known]
    detail = (
        f"inputs the store cannot provide: {', '.join(missing[:8])}"
        + (" …" if len(missing) > 8 else "")
        if missing
        else "its inputs are engage features in another order or subset"
    )
    raise ScoringError(
        f"the model was not trained on the engage features ({detail}); only models trained "
        "on postwise.engage.features (e.g. propensity on online_retail) can score contacts"
    )


def store_features(
    engine: Engine, contacts: Sequence[str], cutoff: datetime, engagement: bool
) -> CustomerFeatures:
    """Features as of ``cutoff`` of ``contacts`` (sorted ids) from their stored events strictly
    before it; the result's ``contacts`` are indices into ``contacts``."""
    table = EngageEventRecord.__table__
    rows: list[tuple[str, str, datetime, float | None]] = []
    wanted = list(contacts)
    with engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = select(
                table.c.contact_id, table.c.type, table.c.occurred_at, table.c.value
            ).where(
                table.c.contact_id.in_(chunk),
                table.c.type.in_(SCORED_TYPES),
                table.c.occurred_at < cutoff,
            )
            rows.extend((str(r[0]), str(r[1]), r[2], r[3]) for r in connection.execute(query))
    events = events_from_rows(rows, contacts)
    return features_as_of(events, _seconds(cutoff), engagement=engagement)


def _all_contacts(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(str(r[0]) for r in connection.execute(select(ContactRecord.contact_id)))


def _drift(
    engine: Engine, name: str, version: str, features: CustomerFeatures, scores: np.ndarray
) -> dict[str, Any] | None:
    if scores.shape[0] == 0:
        return None
    columns = {n: features.values[:, i] for i, n in enumerate(features.names)}
    try:
        report = check_drift(engine, name, columns, scores, version=version)
    except (RegistryError, DriftError) as error:
        return {"psi_max": None, "alert": False, "error": str(error)}
    values = [*report.feature_psi.values()]
    if report.score_psi is not None:
        values.append(report.score_psi)
    return {
        "psi_max": round(max(values), 6) if values else None,
        "score_psi": report.score_psi,
        "threshold": report.threshold,
        "drifted": report.drifted,
        "alert": report.alert,
    }


def score_contacts(
    store: ContactStore,
    model_name: str,
    purpose: str = MARKETING,
    channel: str = EMAIL,
    cutoff: datetime | None = None,
) -> ScoreRun:
    """Score every consenting contact of the store with the promoted version of
    ``model_name`` as of ``cutoff`` (default now), record each score and check drift.
    Raises RegistryError when the name is unknown or has no promoted version, ScoringError
    when the model's inputs are not the engage features, ModelError when its folder is
    unreadable."""
    engine = store.engine
    moment = utcnow() if cutoff is None else _as_utc(cutoff)
    entry = promoted(engine, model_name)
    if entry is None:
        show(engine, model_name)  # raises for an unknown name
        raise RegistryError(
            f"model {model_name!r} has no promoted version; promote one first "
            f"(`postwise models list` then `postwise models promote {model_name} VERSION`)"
        )
    expected = entry.card.get("features")
    if not isinstance(expected, list) or not expected:
        raise ScoringError(f"model {model_name!r} {entry.version}: its card lists no features")
    engagement = model_inputs([str(n) for n in expected])
    estimator, _card = load_propensity(Path(entry.artefact_path))

    everyone = _all_contacts(engine)
    allowed = store.consenting(everyone, purpose, channel)
    consenting = [c for c in everyone if c in allowed]
    skipped_consent = [c for c in everyone if c not in allowed]
    table = store_features(engine, consenting, moment, engagement)
    ids = [consenting[int(i)] for i in table.contacts]
    with_history = set(ids)
    skipped_no_history = [c for c in consenting if c not in with_history]
    if len(ids):
        with threadpool_limits(limits=1):
            scores = np.asarray(estimator.predict_proba(table.values)[:, 1], dtype=np.float64)
    else:
        scores = np.zeros(0)
    policy = {"purpose": purpose, "channel": channel, "cutoff": moment.isoformat()}
    decided_at = utcnow()
    by_contact: dict[str, float] = {}
    features: dict[str, dict[str, float]] = {}
    for row, contact_id in enumerate(ids):
        named = {n: float(v) for n, v in zip(table.names, table.values[row], strict=True)}
        score = float(scores[row])
        record_decision(
            engine,
            contact_id,
            DECISION_KIND,
            {"score": round(score, 6)},
            model_name,
            entry.version,
            named,
            policy,
            decided_at,
        )
        by_contact[contact_id] = score
        features[contact_id] = named
    drift = _drift(engine, model_name, entry.version, table, scores)
    return ScoreRun(
        model_name,
        entry.version,
        purpose,
        channel,
        moment,
        by_contact,
        skipped_consent,
        skipped_no_history,
        drift,
        features,
    )
