"""Persisted bandits: a policy's state in the database, selections recorded for off-policy
evaluation, updates that lose nothing under concurrency.

A bandit (table ``bandits``, migration 0008) has a unique name, its policy kind and arms, a
*holdout arm* with a holdout fraction, the policy state as JSON (``to_state``), the holdout's own
tallies, and a version counter.

- :func:`select` assigns the contact to the holdout deterministically (``hash_unit`` of the
  key, the salt ``bandit:<name>`` and the contact id below the fraction): a held-out contact
  always gets the holdout arm (the control). Everyone else gets an arm drawn from the policy's
  action probabilities for the context, so the probability logged is exactly the one used.
  Every selection is recorded with :func:`~postwise.engage.provenance.record_decision` (kind
  ``bandit_selection``: the arm, its probability, every arm's probability and the holdout
  flag; model ``bandit:<name>`` at the state's version), which is the log that
  :mod:`postwise.engage.ope` evaluates other policies on.
- :func:`update` is optimistic concurrency: read the state and its version, apply the reward,
  write back only where the version is unchanged (``UPDATE … WHERE version = v``); when another
  writer got there first, read again and retry. No update is lost, on SQLite as on PostgreSQL,
  from threads or processes.

Errors: :class:`BanditStoreError` (a PostwiseError) for an unknown or duplicate bandit, an
invalid holdout, or an update that kept conflicting; policy problems raise
:class:`~postwise.engage.bandits.BanditError`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, DateTime, Float, Integer, String
from sqlalchemy import select as sql_select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from postwise.core.db import Base, utcnow
from postwise.core.errors import PostwiseError
from postwise.engage.bandits import BanditError, BanditPolicy, check_reward
from postwise.engage.contextual_bandits import policy_from_state
from postwise.engage.experiments import hash_unit
from postwise.engage.provenance import record_decision

SELECTION_KIND = "bandit_selection"


class BanditStoreError(PostwiseError):
    """A bandit is unknown or already exists, its holdout is invalid, or an update kept
    conflicting with concurrent writers."""


class BanditRecord(Base):
    """One persisted bandit: policy state, holdout and a version counter for optimistic
    concurrency."""

    __tablename__ = "bandits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    arms: Mapped[list[str]] = mapped_column(JSON)
    holdout_arm: Mapped[str | None] = mapped_column(String(128), nullable=True)
    holdout_fraction: Mapped[float] = mapped_column(Float)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    holdout_stats: Mapped[dict[str, float]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class StoredBandit:
    """A bandit as read from the store, with its policy rebuilt from the state."""

    name: str
    kind: str
    arms: tuple[str, ...]
    holdout_arm: str | None
    holdout_fraction: float
    policy: BanditPolicy
    holdout_stats: dict[str, float]
    version: int


@dataclass(frozen=True)
class Selection:
    """The arm chosen for a contact, the probability it had, and whether the contact is held
    out (then the arm is the holdout arm, with probability 1)."""

    arm: str
    probability: float
    holdout: bool
    version: int
    decision_id: str


def _stored(row: BanditRecord) -> StoredBandit:
    return StoredBandit(
        name=row.name,
        kind=row.kind,
        arms=tuple(row.arms),
        holdout_arm=row.holdout_arm,
        holdout_fraction=row.holdout_fraction,
        policy=policy_from_state(row.state),
        holdout_stats=dict(row.holdout_stats),
        version=row.version,
    )


def create_bandit(
    engine: Engine,
    name: str,
    policy: BanditPolicy,
    holdout_arm: str | None = None,
    holdout_fraction: float = 0.0,
) -> StoredBandit:
    """Store a new bandit ``name`` with ``policy``'s state at version 0. The holdout arm may be
    one of the policy's arms or another (``no_send``). Raises BanditStoreError when the name
    is taken or the holdout is invalid."""
    if not 0.0 <= holdout_fraction < 1.0:
        raise BanditStoreError(f"bandit {name!r}: holdout fraction must be in [0, 1)")
    if holdout_fraction > 0 and not holdout_arm:
        raise BanditStoreError(f"bandit {name!r}: a holdout fraction needs a holdout arm")
    state = policy.to_state()
    now = utcnow()
    row = BanditRecord(
        name=name,
        kind=str(state["kind"]),
        arms=list(policy.arms),
        holdout_arm=holdout_arm,
        holdout_fraction=float(holdout_fraction),
        state=state,
        holdout_stats={"pulls": 0.0, "reward": 0.0},
        version=0,
        created_at=now,
        updated_at=now,
    )
    try:
        with Session(engine) as session, session.begin():
            session.add(row)
            session.flush()
            return _stored(row)
    except IntegrityError as error:
        raise BanditStoreError(f"bandit {name!r} already exists") from error


def load_bandit(engine: Engine, name: str) -> StoredBandit:
    """The stored bandit ``name``; raises BanditStoreError when there is none."""
    with Session(engine) as session:
        row = session.scalars(sql_select(BanditRecord).where(BanditRecord.name == name)).first()
        if row is None:
            known = sorted(session.scalars(sql_select(BanditRecord.name)))
            raise BanditStoreError(
                f"bandit {name!r} does not exist (known: {', '.join(known) or 'none'}); "
                "create it first"
            )
        return _stored(row)


def _context_array(context: Any) -> Any:
    return None if context is None else np.asarray(context, dtype=np.float64)


def in_holdout(bandit: StoredBandit, contact_id: str, key: bytes) -> bool:
    """Whether the contact is held out of ``bandit``: deterministic for (key, name, contact)."""
    if bandit.holdout_fraction <= 0:
        return False
    return hash_unit(key, f"bandit:{bandit.name}", contact_id) < bandit.holdout_fraction


def select(
    engine: Engine,
    name: str,
    contact_id: str,
    context: Sequence[float] | Any = None,
    *,
    key: bytes,
    rng: np.random.Generator | None = None,
    at: datetime | None = None,
) -> Selection:
    """Choose an arm of bandit ``name`` for ``contact_id`` in ``context`` and record the
    decision (see the module docstring). Raises BanditStoreError for an unknown bandit and
    BanditError for a context the policy cannot take."""
    bandit = load_bandit(engine, name)
    generator = rng if rng is not None else np.random.default_rng()
    x = _context_array(context)
    probabilities: list[float] | None = None
    if in_holdout(bandit, contact_id, key):
        assert bandit.holdout_arm is not None
        arm, probability, holdout = bandit.holdout_arm, 1.0, True
    else:
        p = np.clip(np.asarray(bandit.policy.probabilities(generator, x), dtype=np.float64), 0, 1)
        p = p / p.sum()
        index = int(generator.choice(len(bandit.arms), p=p))
        arm, probability, holdout = bandit.arms[index], float(p[index]), False
        probabilities = p.tolist()
    features = {"context": [] if x is None else x.tolist()}
    entry = record_decision(
        engine,
        contact_id,
        SELECTION_KIND,
        {
            "arm": arm,
            "probability": probability,
            "holdout": holdout,
            "arms": list(bandit.arms),
            "probabilities": probabilities,
        },
        f"bandit:{name}",
        str(bandit.version),
        features,
        {
            "kind": bandit.kind,
            "holdout_arm": bandit.holdout_arm,
            "holdout_fraction": bandit.holdout_fraction,
        },
        at,
        keep_features=True,
    )
    return Selection(arm, probability, holdout, bandit.version, entry.decision_id)


def update(
    engine: Engine,
    name: str,
    arm: str,
    reward: float,
    context: Sequence[float] | Any = None,
    *,
    holdout: bool = False,
    max_attempts: int = 200,
) -> int:
    """Learn ``reward`` for ``arm`` in ``context``; with ``holdout`` (the selection was a
    holdout one) only the holdout's tallies change. Returns the new version. Optimistic
    concurrency: retries when another writer changed the bandit in between; raises
    BanditStoreError after ``max_attempts`` conflicts, BanditError for a bad arm or reward."""
    value = check_reward(reward)
    x = _context_array(context)
    for attempt in range(max_attempts):
        with Session(engine) as session:
            row = session.scalars(sql_select(BanditRecord).where(BanditRecord.name == name)).first()
            if row is None:
                raise BanditStoreError(f"bandit {name!r} does not exist; create it first")
            version, state, stats = row.version, row.state, dict(row.holdout_stats)
            holdout_arm = row.holdout_arm
        if holdout:
            if arm != holdout_arm:
                raise BanditError(f"bandit {name!r}: held-out contacts get {holdout_arm!r}")
            stats = {"pulls": stats["pulls"] + 1.0, "reward": stats["reward"] + value}
        else:
            policy = policy_from_state(state)
            policy.update(arm, value, x)
            state = policy.to_state()
        with Session(engine) as session, session.begin():
            result = session.execute(
                sql_update(BanditRecord)
                .where(BanditRecord.name == name, BanditRecord.version == version)
                .values(state=state, holdout_stats=stats, version=version + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            written = getattr(result, "rowcount", 0)
        if written == 1:
            return version + 1
        # another writer won: back off a little (jittered, growing) and read again
        time.sleep(random.uniform(0, 0.001 * min(attempt + 1, 20)))
    raise BanditStoreError(
        f"bandit {name!r}: update lost {max_attempts} races with concurrent writers; retry"
    )


def update_many_in(
    connection: Connection, name: str, rewards: Sequence[tuple[str, float]]
) -> int | None:
    """Learn every ``(arm, reward)`` of ``rewards`` (non-contextual, outside the holdout) in
    one write, within ``connection``'s transaction, so the rewards commit or roll back with
    whatever else the caller writes (the rows that say they were learnt). Returns the new
    version, or None when another writer changed the bandit since it was read: roll back and
    try again. Raises BanditStoreError for an unknown bandit, BanditError for a bad arm or
    reward."""
    row = connection.execute(
        sql_select(BanditRecord.version, BanditRecord.state).where(BanditRecord.name == name)
    ).first()
    if row is None:
        raise BanditStoreError(f"bandit {name!r} does not exist; create it first")
    version, state = int(row[0]), row[1]
    policy = policy_from_state(state)
    for arm, reward in rewards:
        policy.update(arm, check_reward(reward), None)
    written = connection.execute(
        sql_update(BanditRecord)
        .where(BanditRecord.name == name, BanditRecord.version == version)
        .values(state=policy.to_state(), version=version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return version + 1 if written == 1 else None


def holdout_summary(bandit: StoredBandit) -> Mapping[str, float]:
    """Pulls, summed reward and mean reward of the holdout arm."""
    pulls = bandit.holdout_stats.get("pulls", 0.0)
    reward = bandit.holdout_stats.get("reward", 0.0)
    return {"pulls": pulls, "reward": reward, "mean": reward / pulls if pulls else 0.0}
