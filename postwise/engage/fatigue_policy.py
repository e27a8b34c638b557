"""Frequency caps enforced at decision time, and the fatigue score they read.

**Fatigue score** of a contact at time ``at`` (:func:`fatigue_score`): the sends of the last
``fatigue_window`` (30 days) that came after the contact's last engagement (open, click or
purchase), each weighted by its age, with a half-life of ``half_life`` (7 days):

    fatigue(at) = sum over unanswered sends s of 0.5 ** (age_days(s) / 7)

An engagement answers every send before it (it resets the score to 0); an unanswered send
counts 1 on the day it is sent, 0.5 a week later and nothing after 30 days. The count of the
same sends without the decay is ``unanswered``.

**How the learnt cap maps to it.** On the bank log the cap counts the contacts of one campaign
made to a client who has not responded (a responder is not called again): ``best_cap`` contacts
pay, the next one does not. A contact's unanswered sends are the same quantity, so
:meth:`FrequencyPolicy.from_learnt_cap` sets ``max_unanswered = best_cap`` (the send that would
be the ``best_cap + 1``-th unanswered one is suppressed) and downgrades a send once the decayed
score reaches ``best_cap - 1`` (recent unanswered sends close to the cap: send the low-pressure
variant, a digest for instance).

**Caps** (:class:`FrequencyPolicy`): per contact per window (all channels), per contact and
channel per window, global per window (sends to everyone), the unanswered cap and the fatigue
downgrade. Each window cap either suppresses or downgrades. :func:`decide_send` reads the
store's ``engage_events`` (``sent`` events, their channel in ``properties["channel"]``, default
``email``, and the engagements), checks the policy and records every suppressed or downgraded
send with :func:`postwise.engage.provenance.record_decision` (kind ``send_suppressed`` /
``send_downgraded``, the reason in the decision, the policy as the caps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postwise.core.db import EngageEventRecord, as_utc
from postwise.engage.contacts import ContactStore
from postwise.engage.provenance import NewDecision, record_decisions

Action = Literal["suppress", "downgrade"]
ENGAGEMENT_TYPES = frozenset({"open", "click", "purchase"})
DEFAULT_CHANNEL = "email"
SUPPRESSED = "send_suppressed"
DOWNGRADED = "send_downgraded"


@dataclass(frozen=True)
class WindowCap:
    """At most ``limit`` sends in the ``window`` before the decision; over it, ``action``."""

    limit: int
    window: timedelta
    action: Action = "suppress"

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ValueError(f"a cap's limit must be 0 or more, not {self.limit}")
        if self.window <= timedelta(0):
            raise ValueError(f"a cap's window must be positive, not {self.window}")
        if self.action not in ("suppress", "downgrade"):
            raise ValueError(f"a cap's action is suppress or downgrade, not {self.action!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "window_seconds": int(self.window.total_seconds()),
            "action": self.action,
        }


@dataclass(frozen=True)
class HistoryEvent:
    """One of a contact's events: when, its type, and for sends the channel."""

    occurred_at: datetime
    type: str
    channel: str = DEFAULT_CHANNEL


@dataclass(frozen=True)
class SendHistory:
    """What a policy check reads: the contact's events before the decision (any order) and
    the sends to all contacts in the global cap's window."""

    events: Sequence[HistoryEvent]
    global_sends: int = 0


@dataclass(frozen=True)
class Allow:
    """The send may go ahead."""

    fatigue: float
    unanswered: int
    action: Literal["allow"] = "allow"


@dataclass(frozen=True)
class Suppress:
    """The send must not go out: ``rule`` (``global``, ``per_contact``, ``channel:<name>``,
    ``unanswered``) was at ``count`` of ``limit``, or (rule ``consent``) the contact has no
    standing consent for the purpose on the channel."""

    reason: str
    rule: str
    count: float
    limit: float
    fatigue: float
    unanswered: int
    action: Literal["suppress"] = "suppress"


@dataclass(frozen=True)
class Downgrade:
    """The send may go out in its low-pressure variant (``rule`` as in :class:`Suppress`, or
    ``fatigue``)."""

    reason: str
    rule: str
    count: float
    limit: float
    fatigue: float
    unanswered: int
    action: Literal["downgrade"] = "downgrade"


SendDecision = Allow | Suppress | Downgrade


def fatigue_score(
    events: Sequence[HistoryEvent],
    at: datetime,
    window: timedelta = timedelta(days=30),
    half_life: timedelta = timedelta(days=7),
) -> tuple[float, int]:
    """(decayed score, unanswered count) of the sends in ``[at - window, at)`` after the last
    engagement before ``at`` (see the module docstring)."""
    at = as_utc(at)
    engaged = [
        as_utc(e.occurred_at)
        for e in events
        if e.type in ENGAGEMENT_TYPES and as_utc(e.occurred_at) < at
    ]
    last_engaged = max(engaged, default=None)
    start = at - window
    score, count = 0.0, 0
    for e in events:
        when = as_utc(e.occurred_at)
        answered = last_engaged is not None and when <= last_engaged
        if e.type == "sent" and start <= when < at and not answered:
            score += 0.5 ** ((at - when) / half_life)
            count += 1
    return score, count


def _sends(
    events: Sequence[HistoryEvent], at: datetime, window: timedelta, channel: str | None
) -> int:
    start = at - window
    return sum(
        1
        for e in events
        if e.type == "sent"
        and start <= as_utc(e.occurred_at) < at
        and (channel is None or e.channel == channel)
    )


@dataclass(frozen=True)
class FrequencyPolicy:
    """Caps checked before every send (all optional; see the module docstring)."""

    name: str = "frequency-caps"
    per_contact: WindowCap | None = None
    per_channel: Mapping[str, WindowCap] = field(default_factory=dict)
    global_cap: WindowCap | None = None
    max_unanswered: int | None = None
    unanswered_action: Action = "suppress"
    downgrade_at: float | None = None
    fatigue_window: timedelta = timedelta(days=30)
    half_life: timedelta = timedelta(days=7)

    @classmethod
    def from_learnt_cap(
        cls,
        best_cap: int,
        *,
        per_contact: WindowCap | None = None,
        per_channel: Mapping[str, WindowCap] | None = None,
        global_cap: WindowCap | None = None,
        name: str = "frequency-caps",
    ) -> FrequencyPolicy:
        """The policy of a cap learnt by ``engage eval fatigue``: at most ``best_cap``
        unanswered sends, downgraded from a fatigue of ``best_cap - 1``."""
        if best_cap < 1:
            raise ValueError(f"a learnt cap is at least 1 contact, not {best_cap}")
        return cls(
            name=name,
            per_contact=per_contact,
            per_channel=dict(per_channel or {}),
            global_cap=global_cap,
            max_unanswered=best_cap,
            downgrade_at=float(best_cap - 1) if best_cap > 1 else None,
        )

    @property
    def lookback(self) -> timedelta:
        """How far back a check reads a contact's events."""
        windows = [self.fatigue_window]
        windows += [cap.window for cap in (self.per_contact,) if cap is not None]
        windows += [cap.window for cap in self.per_channel.values()]
        return max(windows)

    def as_dict(self) -> dict[str, Any]:
        """The caps as recorded with every decision they make."""
        return {
            "name": self.name,
            "per_contact": None if self.per_contact is None else self.per_contact.as_dict(),
            "per_channel": {k: v.as_dict() for k, v in sorted(self.per_channel.items())},
            "global": None if self.global_cap is None else self.global_cap.as_dict(),
            "max_unanswered": self.max_unanswered,
            "unanswered_action": self.unanswered_action,
            "downgrade_at": self.downgrade_at,
            "fatigue_window_seconds": int(self.fatigue_window.total_seconds()),
            "half_life_seconds": int(self.half_life.total_seconds()),
        }

    def check(
        self, contact_id: str, channel: str, at: datetime, history: SendHistory
    ) -> SendDecision:
        """Allow, Suppress or Downgrade one send to ``contact_id`` on ``channel`` at ``at``.
        Every rule is checked; a suppression wins over a downgrade, and among rules of the same
        action the first in the order global, per contact, per channel, unanswered, fatigue."""
        del contact_id  # the history is the contact's already; kept for the call's readability
        at = as_utc(at)
        score, unanswered = fatigue_score(history.events, at, self.fatigue_window, self.half_life)
        hits: list[tuple[Action, str, str, float, float]] = []
        if self.global_cap is not None and history.global_sends >= self.global_cap.limit:
            cap = self.global_cap
            hits.append(
                (
                    cap.action,
                    "global",
                    f"global cap: {history.global_sends} sends to all "
                    f"contacts in the last {cap.window} (limit {cap.limit})",
                    history.global_sends,
                    cap.limit,
                )
            )
        if self.per_contact is not None:
            cap = self.per_contact
            count = _sends(history.events, at, cap.window, None)
            if count >= cap.limit:
                hits.append(
                    (
                        cap.action,
                        "per_contact",
                        f"per-contact cap: {count} sends in the last "
                        f"{cap.window} (limit {cap.limit})",
                        count,
                        cap.limit,
                    )
                )
        channel_cap = self.per_channel.get(channel)
        if channel_cap is not None:
            count = _sends(history.events, at, channel_cap.window, channel)
            if count >= channel_cap.limit:
                hits.append(
                    (
                        channel_cap.action,
                        f"channel:{channel}",
                        f"{channel} cap: {count} "
                        f"{channel} sends in the last {channel_cap.window} (limit "
                        f"{channel_cap.limit})",
                        count,
                        channel_cap.limit,
                    )
                )
        if self.max_unanswered is not None and unanswered >= self.max_unanswered:
            hits.append(
                (
                    self.unanswered_action,
                    "unanswered",
                    f"fatigue cap: {unanswered} sends "
                    f"without an open, click or purchase in the last {self.fatigue_window} "
                    f"(limit {self.max_unanswered})",
                    unanswered,
                    self.max_unanswered,
                )
            )
        if self.downgrade_at is not None and score >= self.downgrade_at:
            hits.append(
                (
                    "downgrade",
                    "fatigue",
                    f"fatigue score {score:.2f} at or over {self.downgrade_at:g}",
                    round(score, 4),
                    self.downgrade_at,
                )
            )
        for wanted in ("suppress", "downgrade"):
            for action, rule, reason, count_, limit in hits:
                if action == wanted:
                    kind = Suppress if action == "suppress" else Downgrade
                    return kind(reason, rule, count_, limit, round(score, 4), unanswered)
        return Allow(round(score, 4), unanswered)


def read_history(
    engine: Engine, contact_id: str, at: datetime, policy: FrequencyPolicy
) -> SendHistory:
    """The contact's sends and engagements in the policy's lookback before ``at``, and the
    sends to all contacts in the global cap's window, from ``engage_events``."""
    return read_histories(engine, [contact_id], at, policy)[contact_id]


_IDS_PER_QUERY = 500


def read_histories(
    engine: Engine, contact_ids: Sequence[str], at: datetime, policy: FrequencyPolicy
) -> dict[str, SendHistory]:
    """:func:`read_history` for many contacts: one query per 500 contacts and one global
    count, instead of two queries per contact. Every id gets a history (empty when it has no
    event in the window)."""
    at = as_utc(at)
    table = EngageEventRecord.__table__
    types = ("sent", *sorted(ENGAGEMENT_TYPES))
    events: dict[str, list[HistoryEvent]] = {contact: [] for contact in contact_ids}
    wanted = list(events)
    with engine.connect() as connection:
        for start in range(0, len(wanted), _IDS_PER_QUERY):
            query = select(
                table.c.contact_id, table.c.occurred_at, table.c.type, table.c.properties
            ).where(
                table.c.contact_id.in_(wanted[start : start + _IDS_PER_QUERY]),
                table.c.type.in_(types),
                table.c.occurred_at >= at - policy.lookback,
                table.c.occurred_at < at,
            )
            for contact, when, kind, properties in connection.execute(query):
                channel = str((properties or {}).get("channel", DEFAULT_CHANNEL))
                events[contact].append(HistoryEvent(as_utc(when), kind, channel))
        global_sends = 0
        if policy.global_cap is not None:
            count = select(func.count()).where(
                table.c.type == "sent",
                table.c.occurred_at >= at - policy.global_cap.window,
                table.c.occurred_at < at,
            )
            global_sends = int(connection.execute(count).scalar_one())
    return {contact: SendHistory(found, global_sends) for contact, found in events.items()}


def decide_send(
    store: ContactStore,
    contact_id: str,
    channel: str,
    at: datetime,
    caps: FrequencyPolicy,
    purpose: str = "marketing",
) -> SendDecision:
    """Check one send for ``purpose`` on ``channel``: first the contact's standing consent (none
    or withdrawn: suppressed by rule ``consent``, and nothing is recorded, since nothing may be
    decided for such a contact), then ``caps`` from the store's events before ``at``. A send
    suppressed or downgraded by a cap is recorded (``decisions_for(engine, contact_id)`` shows
    it with its reason). An allowed send is not recorded here: its ``sent`` event is its
    record."""
    return decide_sends(store, [contact_id], channel, at, caps, purpose)[contact_id]


def decide_sends(
    store: ContactStore,
    contact_ids: Sequence[str],
    channel: str,
    at: datetime,
    caps: FrequencyPolicy,
    purpose: str = "marketing",
) -> dict[str, SendDecision]:
    """:func:`decide_send` for many contacts at once (a campaign's audience): consent in one
    batch, histories in one query per 500 contacts, the suppressed and downgraded sends
    recorded in one transaction. Each id maps to its decision."""
    at = as_utc(at)
    consenting = store.consenting(list(contact_ids), purpose, channel)
    refused = Suppress(
        reason=f"no standing consent for {purpose!r} on {channel!r}",
        rule="consent",
        count=0.0,
        limit=0.0,
        fatigue=0.0,
        unanswered=0,
    )
    decisions: dict[str, SendDecision] = {c: refused for c in contact_ids if c not in consenting}
    allowed = [c for c in contact_ids if c in consenting]
    histories = read_histories(store.engine, allowed, at, caps)
    records: list[NewDecision] = []
    for contact_id in allowed:
        decision = caps.check(contact_id, channel, at, histories[contact_id])
        decisions[contact_id] = decision
        if isinstance(decision, Allow):
            continue
        records.append(
            NewDecision(
                contact_id,
                SUPPRESSED if isinstance(decision, Suppress) else DOWNGRADED,
                {
                    "action": decision.action,
                    "channel": channel,
                    "rule": decision.rule,
                    "reason": decision.reason,
                    "count": decision.count,
                    "limit": decision.limit,
                },
                None,
                None,
                {
                    "fatigue": decision.fatigue,
                    "unanswered": decision.unanswered,
                    "channel": channel,
                },
                caps.as_dict(),
                at,
                keep_features=True,
            )
        )
    if records:
        record_decisions(store.engine, records)
    return decisions
