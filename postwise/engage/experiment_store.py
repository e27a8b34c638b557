"""Stored experiments: A/B tests and holdouts on the platform's own contacts and events.

An experiment (table ``experiments``) is a name, a kind, arms with their fractions (the first
arm is the control), a salt, and optionally a campaign:

- ``holdout`` without a campaign is the **global holdout** (at most one active): its
  ``control`` share never receives campaign mail. Its salt defaults to HoldoutPlan's
  ``postwise-global-holdout``.
- ``holdout`` with a campaign: that campaign's holdout, ``control`` then ``treatment``, salted
  ``campaign:<campaign>`` by default, exactly as :meth:`HoldoutPlan.assign` draws it.
- ``ab``: the operator's arms (``a=0.5,b=0.5``), salted by the experiment's name by default.

:func:`assign` puts contacts into arms (table ``experiment_assignments``): the arm is
:meth:`Experiment.assign` under the engage HMAC key, so it is the same in every run; only
contacts that consent to the purpose on the channel are assigned; a contact keeps its first
assignment; a contact in the active global holdout is never assigned to any other experiment
(it is reported as held out, and nothing is recorded for it). Each new assignment is recorded
as an ``experiment_assignment`` decision in the same transaction.

:func:`results` measures an outcome (an ``engage_events`` type) in the window after each
contact's assignment and compares every arm with the control (:func:`analyse_experiment`).

Errors::

    PostwiseError
     └── ExperimentStoreError        a bad definition, outcome or window; a stopped experiment
          ├── UnknownExperimentError  no experiment of that name
          └── DuplicateExperimentError the name (or the one global holdout) is taken
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from postwise.core.db import (
    ContactRecord,
    EngageEventRecord,
    ExperimentAssignmentRecord,
    ExperimentRecord,
    utcnow,
)
from postwise.core.errors import PostwiseError
from postwise.engage.contacts import EMAIL, MARKETING, ContactError, ContactStore, check_name
from postwise.engage.experiments import (
    Experiment,
    ExperimentError,
    HoldoutPlan,
    analyse_experiment,
    hash_unit,
)
from postwise.engage.ingest import EVENT_TYPES
from postwise.engage.provenance import NewDecision, record_decisions_in

DECISION_KIND = "experiment_assignment"
GLOBAL_HOLDOUT_SALT = HoldoutPlan(b"-", 0.0).global_salt
ACTIVE = "active"
STOPPED = "stopped"
MAX_WINDOW_DAYS = 3650
_BATCH = 500
_EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

Kind = Literal["ab", "holdout"]


class ExperimentStoreError(PostwiseError):
    """A stored experiment cannot be created, assigned or analysed as asked."""


class UnknownExperimentError(ExperimentStoreError):
    """No experiment of that name is stored."""


class DuplicateExperimentError(ExperimentStoreError):
    """The name is taken, or a second active global holdout was asked for."""


@dataclass(frozen=True)
class StoredExperiment:
    """An experiment as stored; ``experiment`` is the pure assignment rule."""

    id: int
    name: str
    kind: str
    arms: tuple[tuple[str, float], ...]
    salt: str
    campaign: str | None
    status: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    @property
    def control(self) -> str:
        return self.arms[0][0]

    @property
    def is_global_holdout(self) -> bool:
        return self.kind == "holdout" and self.campaign is None

    @property
    def experiment(self) -> Experiment:
        return Experiment(self.name, self.arms, self.salt)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "arms": {arm: share for arm, share in self.arms},
            "control": self.control,
            "salt": self.salt,
            "campaign": self.campaign,
            "global_holdout": self.is_global_holdout,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "stopped_at": None if self.stopped_at is None else self.stopped_at.isoformat(),
        }


@dataclass(frozen=True)
class AssignmentReport:
    """What :func:`assign` did with each contact asked about."""

    experiment: str
    assigned: dict[str, str]  # newly assigned: contact -> arm
    already_assigned: dict[str, str]  # kept from an earlier run: contact -> arm
    skipped_consent: list[str]
    global_holdout: list[str]  # held out by the global holdout, not assigned

    def arms(self) -> dict[str, str]:
        """Every assigned contact asked about (new or kept) and its arm."""
        return {**self.already_assigned, **self.assigned}

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "assigned": len(self.assigned),
            "already_assigned": len(self.already_assigned),
            "skipped_consent": len(self.skipped_consent),
            "global_holdout": len(self.global_holdout),
            "per_arm": dict(sorted(Counter(self.arms().values()).items())),
        }


@dataclass(frozen=True)
class ArmOutcome:
    n: int
    mean: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean}


@dataclass(frozen=True)
class ExperimentResults:
    """Per arm: contacts and mean outcome; per arm other than the control: the effect."""

    experiment: str
    outcome: str
    window_days: float
    value: bool
    control: str
    arms: dict[str, ArmOutcome]
    effects: dict[str, dict[str, Any] | None]
    open_windows: int
    as_of: datetime
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "outcome": self.outcome,
            "measure": "value" if self.value else "rate",
            "window_days": self.window_days,
            "control": self.control,
            "as_of": self.as_of.isoformat(),
            "open_windows": self.open_windows,
            "arms": {arm: outcome.as_dict() for arm, outcome in self.arms.items()},
            "effects": self.effects,
            "notes": self.notes,
        }


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; they were stored UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stored(row: ExperimentRecord | Any) -> StoredExperiment:
    return StoredExperiment(
        id=int(row.id),
        name=str(row.name),
        kind=str(row.kind),
        arms=tuple((str(arm), float(share)) for arm, share in row.arms),
        salt=str(row.salt),
        campaign=row.campaign,
        status=str(row.status),
        created_at=_aware(row.created_at),
        started_at=None if row.started_at is None else _aware(row.started_at),
        stopped_at=None if row.stopped_at is None else _aware(row.stopped_at),
    )


def parse_arms(text: str) -> tuple[tuple[str, float], ...]:
    """``a=0.5,b=0.5`` as ``(("a", 0.5), ("b", 0.5))``; ExperimentStoreError naming the part
    that is wrong."""
    arms: list[tuple[str, float]] = []
    for part in text.split(","):
        name, equals, share = part.strip().partition("=")
        if not equals or not name.strip() or not share.strip():
            raise ExperimentStoreError(
                f"arms {text!r}: {part.strip()!r} is not ARM=FRACTION (e.g. a=0.5,b=0.5)"
            )
        try:
            fraction = float(share)
        except ValueError:
            raise ExperimentStoreError(
                f"arms {text!r}: fraction {share.strip()!r} of arm {name.strip()!r} is not a number"
            ) from None
        arms.append((name.strip(), fraction))
    return tuple(arms)


def _check_experiment_name(name: str) -> str:
    if not isinstance(name, str) or not _EXPERIMENT_NAME.match(name):
        raise ExperimentStoreError(
            f"experiment name {str(name)[:80]!r} is not valid (letters, digits, '_', '.', ':', "
            "'-'; at most 128 characters, starting with a letter or digit)"
        )
    return name


def _definition(
    name: str,
    holdout: float | None,
    arms: Sequence[tuple[str, float]] | None,
    campaign: str | None,
    salt: str | None,
) -> tuple[Kind, Experiment]:
    if (holdout is None) == (arms is None):
        raise ExperimentStoreError(
            f"experiment {name!r}: give either a holdout fraction or the arms, not both or neither"
        )
    if campaign is not None:
        campaign = campaign.strip()
        if not campaign or len(campaign) > 128:
            raise ExperimentStoreError(f"experiment {name!r}: campaign must be 1 to 128 characters")
    if salt is not None and (not salt.strip() or len(salt) > 255):
        raise ExperimentStoreError(f"experiment {name!r}: salt must be 1 to 255 characters")
    try:
        if holdout is not None:
            if not 0.0 < holdout < 1.0:
                raise ExperimentStoreError(
                    f"experiment {name!r}: holdout fraction {holdout} must be between 0 and 1 "
                    "(exclusive), e.g. 0.1"
                )
            default_salt = GLOBAL_HOLDOUT_SALT if campaign is None else f"campaign:{campaign}"
            return "holdout", Experiment.with_holdout(name, holdout, salt or default_salt)
        assert arms is not None
        if len(arms) < 2:
            raise ExperimentStoreError(
                f"experiment {name!r}: an A/B test needs at least two arms (got {len(arms)})"
            )
        for arm, _share in arms:
            check_name(arm, "arm")
        return "ab", Experiment(name, tuple(arms), salt or name)
    except (ExperimentError, ContactError) as error:
        raise ExperimentStoreError(str(error)) from None


def create_experiment(
    engine: Engine,
    name: str,
    *,
    holdout: float | None = None,
    arms: Sequence[tuple[str, float]] | None = None,
    campaign: str | None = None,
    salt: str | None = None,
    at: datetime | None = None,
) -> StoredExperiment:
    """Store a new experiment: a holdout (``holdout`` = the control's fraction; without a
    campaign, the global holdout) or an A/B test (``arms``, the first being the control).
    Raises ExperimentStoreError for a bad definition, DuplicateExperimentError when the name is
    taken or an active global holdout exists already."""
    _check_experiment_name(name)
    kind, experiment = _definition(name, holdout, arms, campaign, salt)
    moment = _aware(at or utcnow())
    with engine.begin() as connection:
        taken = connection.execute(
            select(ExperimentRecord.id).where(ExperimentRecord.name == name)
        ).first()
        if taken is not None:
            raise DuplicateExperimentError(f"experiment {name!r} exists already; pick another name")
        if kind == "holdout" and campaign is None:
            current = _global_holdout_in(connection)
            if current is not None:
                raise DuplicateExperimentError(
                    f"{current.name!r} is the active global holdout already; stop it first "
                    f"(postwise engage experiment stop {current.name}) or give --campaign"
                )
        try:
            connection.execute(
                insert(ExperimentRecord).values(
                    name=name,
                    kind=kind,
                    arms=[[arm, share] for arm, share in experiment.arms],
                    salt=experiment.effective_salt,
                    campaign=campaign.strip() if campaign else None,
                    status=ACTIVE,
                    created_at=moment,
                )
            )
        except IntegrityError:
            raise DuplicateExperimentError(
                f"experiment {name!r} exists already; pick another name"
            ) from None
    return get_experiment(engine, name)


def _get_in(connection: Connection, name: str) -> StoredExperiment:
    row = connection.execute(select(ExperimentRecord).where(ExperimentRecord.name == name)).first()
    if row is None:
        raise UnknownExperimentError(
            f"no experiment named {str(name)[:80]!r} (postwise engage experiment list)"
        )
    return _stored(row)


def _global_holdout_in(connection: Connection) -> StoredExperiment | None:
    row = connection.execute(
        select(ExperimentRecord).where(
            ExperimentRecord.kind == "holdout",
            ExperimentRecord.campaign.is_(None),
            ExperimentRecord.status == ACTIVE,
        )
    ).first()
    return None if row is None else _stored(row)


def get_experiment(engine: Engine, name: str) -> StoredExperiment:
    """The stored experiment ``name``; UnknownExperimentError when there is none."""
    with engine.connect() as connection:
        return _get_in(connection, name)


def global_holdout(engine: Engine) -> StoredExperiment | None:
    """The active global holdout, if one is defined."""
    with engine.connect() as connection:
        return _global_holdout_in(connection)


def list_experiments(engine: Engine) -> list[tuple[StoredExperiment, dict[str, int]]]:
    """Every experiment, oldest first, with its number of assigned contacts per arm."""
    with engine.connect() as connection:
        rows = connection.execute(select(ExperimentRecord).order_by(ExperimentRecord.id))
        experiments = [_stored(row) for row in rows]
        counts: dict[int, dict[str, int]] = {}
        for experiment_id, arm, count in connection.execute(
            select(
                ExperimentAssignmentRecord.experiment_id,
                ExperimentAssignmentRecord.arm,
                func.count(),
            ).group_by(ExperimentAssignmentRecord.experiment_id, ExperimentAssignmentRecord.arm)
        ):
            counts.setdefault(int(experiment_id), {})[str(arm)] = int(count)
    return [(e, {arm: counts.get(e.id, {}).get(arm, 0) for arm, _ in e.arms}) for e in experiments]


def stop_experiment(engine: Engine, name: str, at: datetime | None = None) -> StoredExperiment:
    """Stop assigning contacts to ``name`` (its assignments and results stay). Stopping the
    global holdout releases its contacts to later campaign experiments."""
    with engine.begin() as connection:
        stored = _get_in(connection, name)
        if stored.status != STOPPED:
            connection.execute(
                update(ExperimentRecord)
                .where(ExperimentRecord.id == stored.id)
                .values(status=STOPPED, stopped_at=_aware(at or utcnow()))
            )
    return get_experiment(engine, name)


def all_contacts(engine: Engine) -> list[str]:
    """Every contact id of the store, sorted."""
    with engine.connect() as connection:
        return sorted(str(r[0]) for r in connection.execute(select(ContactRecord.contact_id)))


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _BATCH):
        yield values[start : start + _BATCH]


def _stored_arms(
    connection: Connection, experiment_id: int, contacts: Sequence[str]
) -> dict[str, str]:
    found: dict[str, str] = {}
    table = ExperimentAssignmentRecord
    for chunk in _chunks(contacts):
        for contact_id, arm in connection.execute(
            select(table.contact_id, table.arm).where(
                table.experiment_id == experiment_id, table.contact_id.in_(chunk)
            )
        ):
            found[str(contact_id)] = str(arm)
    return found


def _decision_id(experiment_id: int, contact_id: str) -> str:
    # Deterministic, so recording an assignment twice (a concurrent run) stores it once.
    # 40 hex digits: the decision event's id ("decision:" + this) must fit events.event_id (64).
    text = f"{DECISION_KIND}\x00{experiment_id}\x00{contact_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _insert_assignments(connection: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = connection.dialect.name
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        if dialect in ("sqlite", "postgresql"):
            statement = sqlite_insert if dialect == "sqlite" else pg_insert
            connection.execute(
                statement(ExperimentAssignmentRecord).on_conflict_do_nothing(
                    index_elements=["experiment_id", "contact_id"]
                ),
                chunk,
            )
        else:
            connection.execute(insert(ExperimentAssignmentRecord), chunk)


def assign(
    engine: Engine,
    name: str,
    contact_ids: Iterable[str],
    at: datetime | None = None,
    *,
    key: bytes,
    purpose: str = MARKETING,
    channel: str = EMAIL,
) -> AssignmentReport:
    """Assign ``contact_ids`` to the arms of experiment ``name`` at ``at`` (default now), under
    the engage HMAC ``key`` (``Settings.resolved_engage_hmac_key()``).

    Contacts without standing consent for ``purpose`` on ``channel`` are skipped; contacts
    assigned before keep their arm; contacts in the active global holdout are held out of every
    other experiment. New assignments and their ``experiment_assignment`` decisions are written
    in one transaction. Raises UnknownExperimentError, and ExperimentStoreError for a stopped
    experiment."""
    store = ContactStore(engine, key)
    moment = _aware(at or utcnow())
    wanted = list(dict.fromkeys(contact_ids))
    with engine.connect() as connection:
        stored = _get_in(connection, name)
        holdout = None if stored.is_global_holdout else _global_holdout_in(connection)
    if stored.status != ACTIVE:
        raise ExperimentStoreError(
            f"experiment {name!r} was stopped at {stored.stopped_at}; create a new one to assign"
        )
    allowed = store.consenting(wanted, purpose, channel)
    skipped_consent = [c for c in wanted if c not in allowed]
    consenting = [c for c in wanted if c in allowed]
    experiment = stored.experiment
    policy = {
        "experiment": stored.name,
        "kind": stored.kind,
        "salt": stored.salt,
        "fractions": {arm: share for arm, share in stored.arms},
        "campaign": stored.campaign,
        "purpose": purpose,
        "channel": channel,
    }
    with engine.begin() as connection:
        kept = _stored_arms(connection, stored.id, consenting)
        held_out: list[str] = []
        if holdout is not None:
            in_holdout = _stored_arms(connection, holdout.id, consenting)
            rule = holdout.experiment
            for c in consenting:
                arm = in_holdout.get(c) or rule.assign(c, key)
                if c not in kept and arm == holdout.control:
                    held_out.append(c)
        excluded = set(held_out)
        new: dict[str, str] = {}
        rows: list[dict[str, Any]] = []
        decisions: list[NewDecision] = []
        for contact_id in consenting:
            if contact_id in kept or contact_id in excluded:
                continue
            arm = experiment.assign(contact_id, key)
            new[contact_id] = arm
            rows.append(
                {
                    "experiment_id": stored.id,
                    "contact_id": contact_id,
                    "arm": arm,
                    "assigned_at": moment,
                }
            )
            decisions.append(
                NewDecision(
                    contact_id=contact_id,
                    kind=DECISION_KIND,
                    decision={"experiment": stored.name, "arm": arm},
                    model_name=None,
                    model_version=None,
                    features={"hash_unit": hash_unit(key, stored.salt, contact_id)},
                    policy=policy,
                    at=moment,
                    decision_id=_decision_id(stored.id, contact_id),
                )
            )
        if rows:
            _insert_assignments(connection, rows)
            record_decisions_in(connection, decisions)
            if stored.started_at is None:
                connection.execute(
                    update(ExperimentRecord)
                    .where(ExperimentRecord.id == stored.id, ExperimentRecord.started_at.is_(None))
                    .values(started_at=moment)
                )
    return AssignmentReport(stored.name, new, kept, skipped_consent, held_out)


def assignments(engine: Engine, name: str) -> dict[str, tuple[str, datetime]]:
    """Every contact assigned to ``name``: its arm and assignment time."""
    with engine.connect() as connection:
        stored = _get_in(connection, name)
        table = ExperimentAssignmentRecord
        return {
            str(contact_id): (str(arm), _aware(assigned_at))
            for contact_id, arm, assigned_at in connection.execute(
                select(table.contact_id, table.arm, table.assigned_at).where(
                    table.experiment_id == stored.id
                )
            )
        }


def _outcomes(
    engine: Engine,
    assigned: dict[str, tuple[str, datetime]],
    outcome: str,
    window: timedelta,
    value: bool,
) -> dict[str, float]:
    totals = dict.fromkeys(assigned, 0.0)
    if not assigned:
        return totals
    earliest = min(at for _, at in assigned.values())
    latest = max(at for _, at in assigned.values()) + window
    table = EngageEventRecord
    contacts = list(assigned)
    with engine.connect() as connection:
        for chunk in _chunks(contacts):
            query = select(table.contact_id, table.occurred_at, table.value).where(
                table.type == outcome,
                table.contact_id.in_(chunk),
                table.occurred_at >= earliest,
                table.occurred_at < latest,
            )
            for contact_id, occurred_at, amount in connection.execute(query):
                start = assigned[str(contact_id)][1]
                if not start <= _aware(occurred_at) < start + window:
                    continue
                if value:
                    totals[str(contact_id)] += float(amount or 0.0)
                else:
                    totals[str(contact_id)] = 1.0
    return totals


def results(
    engine: Engine,
    name: str,
    outcome_event_type: str,
    window_days: float = 30.0,
    value: bool = False,
    as_of: datetime | None = None,
) -> ExperimentResults:
    """Per arm of ``name``: the share of contacts with an ``outcome_event_type`` event in the
    ``window_days`` from their assignment (``value``: the sum of those events' ``value``,
    missing = 0), and per arm other than the control the difference in means with its 95%
    interval. ``open_windows`` counts contacts whose window has not ended by ``as_of``
    (default now): their outcome may still change. Raises UnknownExperimentError and
    ExperimentStoreError for an unknown event type or a window out of range."""
    if outcome_event_type not in EVENT_TYPES:
        raise ExperimentStoreError(
            f"outcome {str(outcome_event_type)[:32]!r} is not an event type; expected one of "
            f"{', '.join(EVENT_TYPES)}"
        )
    if not 0 < window_days <= MAX_WINDOW_DAYS:
        raise ExperimentStoreError(
            f"window of {window_days} days: expected more than 0 and at most {MAX_WINDOW_DAYS}"
        )
    stored = get_experiment(engine, name)
    moment = _aware(as_of or utcnow())
    window = timedelta(days=window_days)
    assigned = assignments(engine, name)
    totals = _outcomes(engine, assigned, outcome_event_type, window, value)
    contacts = sorted(assigned)
    labels = [assigned[c][0] for c in contacts]
    outcomes = [totals[c] for c in contacts]
    arms: dict[str, ArmOutcome] = {}
    for arm, _share in stored.arms:
        values = [y for label, y in zip(labels, outcomes, strict=True) if label == arm]
        arms[arm] = ArmOutcome(len(values), sum(values) / len(values) if values else None)
    control = stored.control
    effects: dict[str, dict[str, Any] | None] = {arm: None for arm, _ in stored.arms[1:]}
    notes: list[str] = []
    measurable = {arm for arm, outcome in arms.items() if outcome.n >= 2}
    if control not in measurable:
        notes.append(
            f"control arm {control!r} has {arms[control].n} contacts: at least 2 are needed "
            "to estimate an effect"
        )
    else:
        for arm in effects:
            if arm not in measurable:
                notes.append(f"arm {arm!r} has {arms[arm].n} contacts: at least 2 are needed")
        keep = [i for i, label in enumerate(labels) if label in measurable]
        if len(measurable) > 1:
            estimates = analyse_experiment(
                [labels[i] for i in keep], [outcomes[i] for i in keep], control=control
            )
            for arm, estimate in estimates.items():
                effects[arm] = estimate.as_dict()
    open_windows = sum(1 for _, at in assigned.values() if at + window > moment)
    if open_windows:
        notes.append(
            f"{open_windows} contacts were assigned less than {window_days:g} days before "
            f"{moment.isoformat()}: their outcome windows are still open"
        )
    return ExperimentResults(
        stored.name,
        outcome_event_type,
        window_days,
        value,
        control,
        arms,
        effects,
        open_windows,
        moment,
        notes,
    )
