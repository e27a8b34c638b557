"""Audiences: who a campaign may reach, from a segment and the rules every send obeys.

:func:`evaluate_segment` finds the contacts of a segment (the grammar is in
:mod:`postwise.engage.segments` and docs/audiences.md) as of a time. The plan has two stages:
event and score conditions run in SQL (one grouped count over ``engage_events`` per event
condition, one latest-score-per-contact query over ``decisions`` per score condition; only
property filters are checked in Python, on the rows SQL already narrowed), attribute conditions
are checked in Python over one read of ``contacts``; the leaves' contact sets are then combined
with set algebra. ``not`` is taken against every stored contact.

:func:`resolve_audience` applies, in order, segment membership, consent
(:meth:`ContactStore.consenting`), the outbound suppression list (by the contact's address; on
the ``email`` channel, the list's scope), and frequency caps (:func:`decide_sends`, the batch
form of :func:`decide_send`, which records every capped send). Every member ends up either
included or excluded under one reason, with the ids. :func:`preview` runs the same steps
and counts them, checking the caps without recording anything.

Named segments live in the ``segments`` table (migration 0011): :func:`save_segment`,
:func:`load_segment`, :func:`list_segments`, :func:`delete_segment`. A reference
``{"segment": NAME}`` is looked up in the ``segments`` mapping passed to the call first, then in
the table; unknown names and cycles raise :class:`SegmentError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from postwise.core.db import (
    Base,
    ContactAddressRecord,
    ContactRecord,
    DecisionRecord,
    EngageEventRecord,
    utcnow,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.fatigue_policy import (
    Downgrade,
    FrequencyPolicy,
    SendDecision,
    Suppress,
    decide_sends,
    read_histories,
)
from postwise.engage.segments import (
    AllOf,
    AnyOf,
    AttributeCondition,
    EventCondition,
    Node,
    Not,
    ScoreCondition,
    Segment,
    SegmentError,
    SegmentRef,
    attribute_matches,
    check_segment_name,
    parse_segment,
    properties_match,
)
from postwise.outbound.suppression import Suppression, SuppressionList, normalise_address

__all__ = [
    "EXCLUSION_REASONS",
    "AudienceResult",
    "SegmentError",
    "SegmentRecord",
    "StoredSegment",
    "delete_segment",
    "evaluate_segment",
    "list_segments",
    "load_segment",
    "preview",
    "resolve_audience",
    "save_segment",
]

EXCLUSION_REASONS = ("consent", "no_address", "suppressed", "capped")
SUPPRESSION_CHANNEL = "email"  # the outbound suppression list holds e-mail addresses
_CHUNK = 500

SegmentLike = Segment | Mapping[str, Any] | str


class SegmentRecord(Base):
    """A named segment: its definition (JSON, validated on save) and a description."""

    __tablename__ = "segments"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --------------------------------------------------------------------------- named segments


@dataclass(frozen=True)
class StoredSegment:
    name: str
    definition: dict[str, Any]
    description: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _stored(row: Any) -> StoredSegment:
    # A Core row of the segments table (its columns by name).
    return StoredSegment(
        row.name,
        dict(row.definition),
        row.description or "",
        _utc(row.created_at),
        _utc(row.updated_at),
    )


def _table_lookup(connection: Connection, name: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(SegmentRecord.definition).where(SegmentRecord.name == name)
    ).first()
    return None if row is None else dict(row[0])


class _Resolver:
    """Named segments by name: the caller's mapping first, then the table; parsed once."""

    def __init__(self, connection: Connection, named: Mapping[str, Any] | None) -> None:
        self.connection = connection
        self.named = dict(named or {})
        self.parsed: dict[str, Segment] = {}

    def get(self, name: str, chain: Sequence[str]) -> Segment:
        if name in self.parsed:
            return self.parsed[name]
        definition = self.named.get(name)
        if definition is None:
            definition = _table_lookup(self.connection, name)
        if definition is None:
            via = f" (referred to by {' → '.join(chain)})" if chain else ""
            raise SegmentError(f"unknown segment {name!r}{via}; save it first or pass it in")
        try:
            segment = parse_segment(definition)
        except SegmentError as error:
            raise SegmentError(f"segment {name!r}: {error}") from None
        self.parsed[name] = segment
        return segment

    def check(self, segment: Segment, chain: tuple[str, ...]) -> None:
        """Every name ``segment`` reaches exists and none refers back to itself."""
        for name in sorted(segment.references()):
            if name in chain:
                cycle = " → ".join((*chain[chain.index(name) :], name))
                raise SegmentError(f"segment reference cycle: {cycle}")
            self.check(self.get(name, chain), (*chain, name))


def save_segment(
    engine: Engine,
    name: str,
    definition: Mapping[str, Any] | Segment,
    description: str = "",
    now: datetime | None = None,
) -> StoredSegment:
    """Store (or replace) the named segment after validating it: the definition must parse,
    every segment it refers to must exist and no reference may lead back to ``name``.
    Raises SegmentError otherwise."""
    check_segment_name(name)
    segment = parse_segment(definition)
    moment = _utc(now or utcnow())
    with engine.begin() as connection:
        resolver = _Resolver(connection, None)
        resolver.named[name] = dict(segment.definition)
        resolver.parsed[name] = segment
        resolver.check(segment, (name,))
        row = connection.execute(
            select(SegmentRecord.created_at).where(SegmentRecord.name == name)
        ).first()
        values = {
            "definition": dict(segment.definition),
            "description": description[:10_000],
            "updated_at": moment,
        }
        if row is None:
            connection.execute(insert(SegmentRecord).values(name=name, created_at=moment, **values))
            created = moment
        else:
            connection.execute(
                update(SegmentRecord).where(SegmentRecord.name == name).values(**values)
            )
            created = _utc(row[0])
    return StoredSegment(name, dict(segment.definition), description[:10_000], created, moment)


def load_segment(engine: Engine, name: str) -> StoredSegment:
    """The stored segment ``name``; SegmentError when there is none."""
    with engine.connect() as connection:
        row = connection.execute(select(SegmentRecord).where(SegmentRecord.name == name)).first()
    if row is None:
        raise SegmentError(f"unknown segment {name!r}; save it first")
    return _stored(row)


def list_segments(engine: Engine) -> list[StoredSegment]:
    """Every stored segment, by name."""
    with engine.connect() as connection:
        rows = connection.execute(select(SegmentRecord).order_by(SegmentRecord.name)).all()
    return [_stored(row) for row in rows]


def delete_segment(engine: Engine, name: str) -> bool:
    """Forget the stored segment ``name`` (False when there was none). Refuses with
    SegmentError while another stored segment refers to it."""
    with engine.begin() as connection:
        users = []
        for other, definition in connection.execute(
            select(SegmentRecord.name, SegmentRecord.definition)
        ):
            if other != name and name in parse_segment(definition).references():
                users.append(other)
        if users:
            raise SegmentError(
                f"segment {name!r} is used by {', '.join(sorted(users))}; change those first"
            )
        result = connection.execute(delete(SegmentRecord).where(SegmentRecord.name == name))
    return bool(result.rowcount)


# --------------------------------------------------------------------------- evaluation


class _Evaluation:
    """One evaluation as of ``at``: reads contacts once, each leaf once."""

    def __init__(self, connection: Connection, at: datetime, resolver: _Resolver) -> None:
        self.connection = connection
        self.at = at
        self.resolver = resolver
        self._universe: frozenset[str] | None = None
        self._attributes: list[tuple[str, dict[str, Any]]] | None = None
        self._named: dict[str, frozenset[str]] = {}

    @property
    def universe(self) -> frozenset[str]:
        if self._universe is None:
            if self._attributes is not None:
                self._universe = frozenset(c for c, _ in self._attributes)
            else:
                rows = self.connection.execute(select(ContactRecord.contact_id)).scalars()
                self._universe = frozenset(rows)
        return self._universe

    def attributes(self) -> list[tuple[str, dict[str, Any]]]:
        if self._attributes is None:
            rows = self.connection.execute(
                select(ContactRecord.contact_id, ContactRecord.attributes)
            )
            self._attributes = [(c, a if isinstance(a, dict) else {}) for c, a in rows]
        return self._attributes

    def run(self, node: Node, chain: tuple[str, ...]) -> frozenset[str]:
        if isinstance(node, AllOf):
            # Cheap leaves first would need costs; SQL leaves dominate either way.
            result: frozenset[str] | None = None
            for child in node.children:
                found = self.run(child, chain)
                result = found if result is None else result & found
                if not result:
                    return frozenset()
            return result if result is not None else frozenset()
        if isinstance(node, AnyOf):
            union: set[str] = set()
            for child in node.children:
                union |= self.run(child, chain)
            return frozenset(union)
        if isinstance(node, Not):
            return self.universe - self.run(node.child, chain)
        if isinstance(node, AttributeCondition):
            return frozenset(c for c, attrs in self.attributes() if attribute_matches(node, attrs))
        if isinstance(node, EventCondition):
            return self._events(node)
        if isinstance(node, ScoreCondition):
            return self._scores(node)
        return self._segment(node, chain)

    def _segment(self, node: SegmentRef, chain: tuple[str, ...]) -> frozenset[str]:
        if node.name in chain:
            cycle = " → ".join((*chain[chain.index(node.name) :], node.name))
            raise SegmentError(f"segment reference cycle: {cycle}")
        if node.name not in self._named:
            segment = self.resolver.get(node.name, chain)
            self._named[node.name] = self.run(segment.root, (*chain, node.name))
        return self._named[node.name]

    def _events(self, node: EventCondition) -> frozenset[str]:
        table = EngageEventRecord.__table__
        until = self.at if node.until is None else min(node.until, self.at)
        since = self.at - node.within if node.within is not None else node.since
        where = [table.c.type == node.type, table.c.occurred_at <= until]
        if since is not None:
            where.append(table.c.occurred_at >= since)
        counts: dict[str, int] = {}
        if node.properties:
            rows = self.connection.execute(
                select(table.c.contact_id, table.c.properties).where(*where)
            )
            for contact_id, properties in rows:
                if properties_match(node.properties, properties):
                    counts[contact_id] = counts.get(contact_id, 0) + 1
        else:
            grouped = (
                select(table.c.contact_id, func.count().label("n"))
                .where(*where)
                .group_by(table.c.contact_id)
            )
            counts = {c: int(n) for c, n in self.connection.execute(grouped)}
        if node.min_count == 0:
            # Contacts without a single matching event qualify too: count the other side.
            too_many = {
                c for c, n in counts.items() if node.max_count is not None and n > node.max_count
            }
            return self.universe - too_many
        return (
            frozenset(
                c
                for c, n in counts.items()
                if n >= node.min_count and (node.max_count is None or n <= node.max_count)
            )
            & self.universe
        )

    def _scores(self, node: ScoreCondition) -> frozenset[str]:
        table = DecisionRecord.__table__
        where = [
            table.c.kind == node.kind,
            table.c.model_name == node.model,
            table.c.decided_at <= self.at,
        ]
        if node.max_age is not None:
            where.append(table.c.decided_at >= self.at - node.max_age)
        rank = (
            func.row_number()
            .over(
                partition_by=table.c.contact_id,
                order_by=(table.c.decided_at.desc(), table.c.id.desc()),
            )
            .label("rank")
        )
        ranked = select(table.c.contact_id, table.c.decision, rank).where(*where).subquery()
        rows = self.connection.execute(
            select(ranked.c.contact_id, ranked.c.decision).where(ranked.c.rank == 1)
        )
        found = set()
        for contact_id, decision in rows:
            score = _score_of(decision)
            if score is not None and all(_passes(score, op, x) for op, x in node.tests):
                found.add(contact_id)
        return frozenset(found) & self.universe


def _score_of(decision: Any) -> float | None:
    value = decision.get("score") if isinstance(decision, dict) else decision
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _passes(score: float, operator: str, threshold: float) -> bool:
    if operator == "gte":
        return score >= threshold
    if operator == "gt":
        return score > threshold
    if operator == "lte":
        return score <= threshold
    return score < threshold


def _engine(store: ContactStore | Engine) -> Engine:
    return store.engine if isinstance(store, ContactStore) else store


def _segment_of(resolver: _Resolver, segment: SegmentLike) -> tuple[Segment, tuple[str, ...]]:
    if isinstance(segment, str):
        check_segment_name(segment)
        return resolver.get(segment, ()), (segment,)
    return parse_segment(segment), ()


def evaluate_segment(
    store: ContactStore | Engine,
    segment: SegmentLike,
    at: datetime,
    *,
    segments: Mapping[str, Any] | None = None,
) -> frozenset[str]:
    """The ids of the stored contacts in ``segment`` (a Segment, a definition, or the name of
    a stored segment) as of ``at``: events and scores after ``at`` are not read. Named
    references are looked up in ``segments`` first, then in the table. Raises SegmentError
    for an invalid definition, an unknown segment or a reference cycle."""
    moment = _utc(at)
    with _engine(store).connect() as connection:
        resolver = _Resolver(connection, segments)
        parsed, chain = _segment_of(resolver, segment)
        resolver.check(parsed, chain)
        return _Evaluation(connection, moment, resolver).run(parsed.root, chain)


# --------------------------------------------------------------------------- audiences


@dataclass(frozen=True)
class AudienceResult:
    """Who a send may reach. ``members`` (the segment) = ``included`` + every excluded id,
    each under exactly one reason of :data:`EXCLUSION_REASONS`, first matching in that
    order. ``downgraded`` are included ids whose caps asked for the low-pressure variant;
    ``reasons`` says why each excluded id is out (the suppression entry or the cap)."""

    at: datetime
    purpose: str
    channel: str
    members: tuple[str, ...]
    included: tuple[str, ...]
    excluded: Mapping[str, tuple[str, ...]]
    downgraded: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """``members``, ``included`` and one count per exclusion reason."""
        return {
            "members": len(self.members),
            "included": len(self.included),
            **{f"excluded_{r}": len(self.excluded.get(r, ())) for r in EXCLUSION_REASONS},
            "downgraded": len(self.downgraded),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "purpose": self.purpose,
            "channel": self.channel,
            "counts": self.counts(),
            "included": list(self.included),
            "excluded": {r: list(self.excluded.get(r, ())) for r in EXCLUSION_REASONS},
            "downgraded": list(self.downgraded),
            "reasons": dict(self.reasons),
        }


def _addresses(engine: Engine, contact_ids: Sequence[str]) -> dict[str, str]:
    # ContactStore.address_of answers one id at a time; the audience needs them by the
    # thousand. The addresses are used for the suppression lookup only and never returned.
    table = ContactAddressRecord.__table__
    found: dict[str, str] = {}
    with engine.connect() as connection:
        for start in range(0, len(contact_ids), _CHUNK):
            rows = connection.execute(
                select(table.c.contact_id, table.c.address).where(
                    table.c.contact_id.in_(contact_ids[start : start + _CHUNK])
                )
            )
            found.update({c: a for c, a in rows})
    return found


def _suppressed(
    store: ContactStore, contact_ids: Sequence[str], suppressions: SuppressionList | None
) -> tuple[dict[str, Suppression], list[str]]:
    """(suppression entry by contact id, contacts without a stored address)."""
    addresses = _addresses(store.engine, contact_ids)
    missing = [c for c in contact_ids if c not in addresses]
    listing = suppressions or SuppressionList(store.engine)
    by_address = listing.find(list(addresses.values()))
    hits = {
        c: by_address[normalise_address(address)]
        for c, address in addresses.items()
        if normalise_address(address) in by_address
    }
    return hits, missing


def resolve_audience(
    store: ContactStore,
    segment: SegmentLike,
    at: datetime,
    purpose: str = "marketing",
    channel: str = "email",
    caps: FrequencyPolicy | None = None,
    suppressions: SuppressionList | None = None,
    *,
    segments: Mapping[str, Any] | None = None,
) -> AudienceResult:
    """The contacts a send for ``purpose`` on ``channel`` at ``at`` may reach, in four steps:

    1. segment membership (:func:`evaluate_segment`);
    2. consent: the standing statement for ``purpose`` on ``channel`` must grant it;
    3. the suppression list (``suppressions``, default the store database's list), by the
       contact's address, on the ``email`` channel (the list holds e-mail addresses that
       bounced hard, complained or were listed by an operator; it does not govern other
       channels); a contact without a stored address is excluded as ``no_address``;
    4. ``caps``: :func:`decide_sends` over the remaining contacts; a suppressed send is excluded as
       ``capped`` (decide_send records it with its reason), a downgraded one stays included
       and is listed in ``downgraded`` (also recorded).

    Raises SegmentError for an invalid segment."""
    return _screen(store, segment, at, purpose, channel, caps, suppressions, segments, record=True)


def preview(
    store: ContactStore,
    segment: SegmentLike,
    at: datetime,
    purpose: str = "marketing",
    channel: str = "email",
    caps: FrequencyPolicy | None = None,
    suppressions: SuppressionList | None = None,
    *,
    segments: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """The counts :func:`resolve_audience` would give (``members``, ``included``, one
    ``excluded_<reason>`` per reason, ``downgraded``), without recording anything: the caps
    are checked with :meth:`FrequencyPolicy.check` on the same history, not through
    decide_send. For a ``postwise campaign`` preview."""
    screened = _screen(
        store, segment, at, purpose, channel, caps, suppressions, segments, record=False
    )
    return screened.counts()


def _screen(
    store: ContactStore,
    segment: SegmentLike,
    at: datetime,
    purpose: str,
    channel: str,
    caps: FrequencyPolicy | None,
    suppressions: SuppressionList | None,
    segments: Mapping[str, Any] | None,
    *,
    record: bool,
) -> AudienceResult:
    """The steps of :func:`resolve_audience`; with ``record`` False the caps are checked on
    the same histories without recording a decision (what :func:`preview` counts)."""
    moment = _utc(at)
    members = sorted(evaluate_segment(store, segment, moment, segments=segments))
    excluded: dict[str, list[str]] = {r: [] for r in EXCLUSION_REASONS}
    reasons: dict[str, str] = {}
    consenting = store.consenting(members, purpose, channel)
    remaining = []
    for contact_id in members:
        if contact_id in consenting:
            remaining.append(contact_id)
        else:
            excluded["consent"].append(contact_id)
            reasons[contact_id] = f"no standing consent for {purpose!r} on {channel!r}"
    if channel == SUPPRESSION_CHANNEL:
        hits, missing = _suppressed(store, remaining, suppressions)
        lacking = set(missing)
        kept = []
        for contact_id in remaining:
            if contact_id in lacking:
                excluded["no_address"].append(contact_id)
                reasons[contact_id] = "no stored address to send to"
            elif contact_id in hits:
                entry = hits[contact_id]
                excluded["suppressed"].append(contact_id)
                reasons[contact_id] = f"suppressed ({entry.source}: {entry.reason})"
            else:
                kept.append(contact_id)
        remaining = kept
    downgraded: list[str] = []
    if caps is not None:
        kept = []
        decided = _cap_decisions(store, remaining, channel, moment, caps, purpose, record)
        for contact_id in remaining:
            decision = decided[contact_id]
            if isinstance(decision, Suppress):
                excluded["capped"].append(contact_id)
                reasons[contact_id] = f"{decision.rule}: {decision.reason}"
            else:
                if isinstance(decision, Downgrade):
                    downgraded.append(contact_id)
                kept.append(contact_id)
        remaining = kept
    return AudienceResult(
        at=moment,
        purpose=purpose,
        channel=channel,
        members=tuple(members),
        included=tuple(remaining),
        excluded={r: tuple(ids) for r, ids in excluded.items()},
        downgraded=tuple(downgraded),
        reasons=reasons,
    )


def _cap_decisions(
    store: ContactStore,
    contact_ids: list[str],
    channel: str,
    at: datetime,
    caps: FrequencyPolicy,
    purpose: str,
    record: bool,
) -> Mapping[str, SendDecision]:
    if record:
        return decide_sends(store, contact_ids, channel, at, caps, purpose)
    histories = read_histories(store.engine, contact_ids, at, caps)
    return {c: caps.check(c, channel, at, histories[c]) for c in contact_ids}
