"""The outbound queue: messages on disk, their recipients' delivery state in the database.

A submission is safe before the submitter hears "accepted": :meth:`OutboundQueue.submit` writes
the bytes durably to the spool, then commits the message and recipient rows in one transaction.
A retried submission with the same idempotency key finds the first one and adds nothing.

Each recipient is ``queued`` (waiting for ``next_attempt_at``; deferrals keep it here),
``delivered`` or ``bounced`` (final failure, expiry included). A delivery worker *claims* due
recipients (``claimed_by``) while it holds them in memory and :meth:`record` writes their
outcomes — state, the reply, events, and suppressions for hard bounces — in one transaction.
One delivery worker runs per database: it releases every claim when it starts, which is how the
claims of a killed worker come back.

    PostwiseError
    └── QueueError          a message or recipient the queue cannot find or accept
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from postwise.core.db import OutboundMessageRecord, OutboundRecipientRecord
from postwise.core.durable import fsync_directory, remove_durably
from postwise.core.errors import PostwiseError
from postwise.core.events import append_event_in, append_events_in
from postwise.outbound.suppression import suppress_in

QUEUED, HELD, DELIVERED, BOUNCED = "queued", "held", "delivered", "bounced"
STATES = (QUEUED, HELD, DELIVERED, BOUNCED)
Outcome = Literal["delivered", "deferred", "bounced"]
# Event types of delivery outcomes (the reputation monitor and dashboards read them).
_WRITE_BATCH = 256  # spool files written and fsynced together by submit_many
OUTCOME_EVENTS: dict[str, str] = {
    "delivered": "delivery",
    "deferred": "deferral",
    "bounced": "bounce",
}


class QueueError(PostwiseError):
    """A message or recipient the queue cannot find or accept."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated submission (see :mod:`postwise.outbound.submission`), ready to queue."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    sending_domain: str
    subject: str
    header_message_id: str
    source: str
    submitted_by: str
    pool: str = "default"
    idempotency_key: str | None = None
    envelope_id: str | None = None


@dataclass(frozen=True, slots=True)
class Enqueued:
    message_id: str
    recipients: tuple[str, ...]
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """The claimed recipients of one message at one destination domain: one SMTP
    transaction."""

    message_id: str
    mail_from: str
    domain: str
    pool: str
    sending_domain: str
    recipients: tuple[tuple[int, str], ...]
    attempts: int
    created_at: float
    expires_at: float
    envelope_id: str | None = None
    # The message bytes, read ahead by :meth:`OutboundQueue.claim` for small messages.
    raw: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What one attempt did for one recipient row. ``next_attempt_at`` is when a deferred
    recipient is due again; ``counted`` is False for a postponement that was no attempt
    (a suspended destination, an exhausted warm-up budget)."""

    row_id: int
    outcome: Outcome
    reply: str = ""
    status: str = ""
    mx: str = ""
    reason: str = ""
    hard: bool = False
    next_attempt_at: float | None = None
    counted: bool = True
    details: dict[str, Any] = field(default_factory=dict)


# What of an attempt's context ``queue show`` keeps beside the recipient.
_DETAIL_KEYS = ("mx_order", "tls", "ip", "provider", "pool")


def _update_statement(counted: bool, deferred: bool) -> Any:
    """The UPDATE for one shape of result (bind names carry a ``b_`` prefix, as SQLAlchemy
    refuses bind names equal to column names in an UPDATE's SET)."""
    table = cast(Table, OutboundRecipientRecord.__table__)
    values: dict[str, Any] = {"claimed_by": None, "updated_at": bindparam("b_updated_at")}
    if deferred:
        values["next_attempt_at"] = bindparam("b_next")
    else:
        values["state"] = bindparam("b_state")
    if counted:
        values.update(
            attempts=table.c.attempts + 1,
            last_attempt_at=bindparam("b_last_attempt_at"),
            last_reply=bindparam("b_last_reply"),
            last_mx=bindparam("b_last_mx"),
            last_detail=bindparam("b_last_detail"),
            status=bindparam("b_status"),
            reason=bindparam("b_reason"),
            hard=bindparam("b_hard"),
        )
    return update(table).where(table.c.id == bindparam("b_id")).values(**values)


def new_message_id() -> str:
    """Queue ids sort by submission time (milliseconds), then random."""
    return f"{int(time.time() * 1000):013d}{secrets.token_hex(6)}"


def _write_batch(targets: list[tuple[Path, bytes]], staging_dir: Path) -> None:
    """Write each ``(target, raw)`` as :func:`write_durably` does (staging file, fsync, rename)
    but in three passes, so the disk sees the batch at once: write all, fsync all, rename all.
    The caller fsyncs the target folder once before anything refers to the files. On an error
    the staging files are removed and the error raised."""
    opened: list[tuple[int, Path, Path]] = []
    try:
        for target, raw in targets:
            staging = staging_dir / f".{target.name}.{os.getpid()}.tmp"
            descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            opened.append((descriptor, staging, target))
            view = memoryview(raw)
            while view:
                view = view[os.write(descriptor, view) :]
        for descriptor, _, _ in opened:
            os.fsync(descriptor)
    except BaseException:
        for descriptor, staging, _ in opened:
            with contextlib.suppress(OSError):
                os.close(descriptor)
            staging.unlink(missing_ok=True)
        raise
    for descriptor, _, _ in opened:
        os.close(descriptor)
    for _, staging, target in opened:
        os.replace(staging, target)


class OutboundQueue:
    """The queue over one database and one spool folder."""

    def __init__(self, engine: Engine, spool_dir: Path, lifetime_seconds: float = 5 * 86400):
        self.engine = engine
        self.messages_dir = spool_dir / "messages"
        self.staging = spool_dir / "tmp"
        for folder in (self.messages_dir, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        self.lifetime_seconds = lifetime_seconds

    # ------------------------------------------------------------------ submission

    def spool_path(self, message_id: str) -> Path:
        if not message_id.isalnum():
            raise QueueError(f"{message_id!r} is not a queue id")
        return self.messages_dir / f"{message_id}.eml"

    def find_idempotent(self, key: str) -> Enqueued | None:
        with self.engine.connect() as connection:
            return self._find_idempotent(connection, key)

    def find_idempotent_many(self, keys: Sequence[str]) -> dict[str, Enqueued]:
        """The earlier submissions of those of ``keys`` seen before, by key (one query per
        500 keys)."""
        found: dict[str, Enqueued] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                for key in connection.execute(
                    select(OutboundMessageRecord.idempotency_key).where(
                        OutboundMessageRecord.idempotency_key.in_(chunk)
                    )
                ).scalars():
                    hit = self._find_idempotent(connection, str(key))
                    if hit is not None:
                        found[str(key)] = hit
        return found

    def _find_idempotent(self, connection: Connection, key: str) -> Enqueued | None:
        row = connection.execute(
            select(OutboundMessageRecord.id).where(OutboundMessageRecord.idempotency_key == key)
        ).first()
        if row is None:
            return None
        recipients = connection.execute(
            select(OutboundRecipientRecord.recipient)
            .where(OutboundRecipientRecord.message_id == row.id)
            .order_by(OutboundRecipientRecord.id)
        ).scalars()
        return Enqueued(row.id, tuple(recipients), duplicate=True)

    def submit(
        self, prepared: Prepared, now: float | None = None, not_before: float | None = None
    ) -> Enqueued:
        """Queue ``prepared`` durably; returns its queue id. With an idempotency key seen
        before, returns the first submission's id with ``duplicate=True`` and queues nothing.
        ``not_before`` (Unix seconds) keeps the recipients from delivery until then (a
        scheduled send; the queue lifetime counts from that moment). Raises QueueError when
        there is no recipient, OSError when the disk refuses."""
        [enqueued] = self.submit_many([(prepared, not_before)], now)
        return enqueued

    def submit_many(
        self,
        items: Sequence[tuple[Prepared, float | None]],
        now: float | None = None,
    ) -> list[Enqueued]:
        """Queue many ``(prepared, not_before)`` at once, durably: every
        spool file is written and fsynced (the folder once), then all rows commit in one
        transaction. The answer is in ``items`` order; a message whose idempotency key was
        seen before (in the store or earlier in ``items``) comes back as that submission with
        ``duplicate=True`` and queues nothing. All or nothing: raises QueueError for a message
        without recipients (before anything is written) and OSError or a database error with
        nothing queued. When a concurrent submission stores one of the batch's idempotency
        keys first, the batch starts over once and answers that key with the winner."""
        try:
            return self._submit_many(items, now)
        except IntegrityError:
            if not any(prepared.idempotency_key for prepared, _ in items):
                raise
            return self._submit_many(items, now)

    def _submit_many(
        self, items: Sequence[tuple[Prepared, float | None]], now: float | None
    ) -> list[Enqueued]:
        for prepared, _ in items:
            if not prepared.recipients:
                raise QueueError("a message needs at least one recipient to be queued")
        now = time.time() if now is None else now
        earlier = self.find_idempotent_many(
            [p.idempotency_key for p, _ in items if p.idempotency_key]
        )
        answers: list[Enqueued | None] = []
        fresh: list[tuple[str, Prepared, float | None]] = []
        batch_keys: dict[str, Enqueued] = {}
        for prepared, not_before in items:
            key = prepared.idempotency_key
            if key and key in earlier:
                answers.append(earlier[key])
                continue
            if key and key in batch_keys:
                first = batch_keys[key]
                answers.append(Enqueued(first.message_id, first.recipients, duplicate=True))
                continue
            message_id = new_message_id()
            enqueued = Enqueued(message_id, prepared.recipients)
            if key:
                batch_keys[key] = enqueued
            fresh.append((message_id, prepared, not_before))
            answers.append(enqueued)
        written = [self.spool_path(message_id) for message_id, _, _ in fresh]
        try:
            for start in range(0, len(fresh), _WRITE_BATCH):
                _write_batch(
                    [
                        (self.spool_path(message_id), prepared.raw)
                        for message_id, prepared, _ in fresh[start : start + _WRITE_BATCH]
                    ],
                    self.staging,
                )
            if written:
                fsync_directory(self.messages_dir)
            messages: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            events: list[tuple[str, str, dict[str, Any]]] = []
            for message_id, prepared, not_before in fresh:
                message, recipient_rows = self._rows(message_id, prepared, now, not_before)
                messages.append(message)
                rows.extend(recipient_rows)
                events.append(
                    (
                        f"submission:{message_id}",
                        "submission",
                        self._submission_payload(message_id, prepared, len(recipient_rows)),
                    )
                )
            if fresh:
                with self.engine.begin() as connection:
                    connection.execute(insert(OutboundMessageRecord), messages)
                    connection.execute(insert(OutboundRecipientRecord), rows)
                    append_events_in(connection, events)
        except BaseException:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                fsync_directory(self.messages_dir)
            raise
        return [answer for answer in answers if answer is not None]

    def _rows(
        self, message_id: str, prepared: Prepared, now: float, not_before: float | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The message row and its recipient rows; ``not_before`` makes them due later."""
        due = now if not_before is None else max(now, float(not_before))
        message = {
            "id": message_id,
            "idempotency_key": prepared.idempotency_key,
            "mail_from": prepared.mail_from,
            "sending_domain": prepared.sending_domain,
            "message_sha256": hashlib.sha256(prepared.raw).hexdigest(),
            "size": len(prepared.raw),
            "subject": prepared.subject[:998],
            "header_message_id": prepared.header_message_id[:998],
            "pool": prepared.pool,
            "source": prepared.source,
            "submitted_by": prepared.submitted_by[:255],
            "envelope_id": prepared.envelope_id,
            "created_at": now,
            "expires_at": due + self.lifetime_seconds,
        }
        rows = [
            {
                "message_id": message_id,
                "recipient": recipient,
                "domain": recipient.rpartition("@")[2].lower(),
                "state": QUEUED,
                "attempts": 0,
                "next_attempt_at": due,
                "last_reply": "",
                "last_mx": "",
                "status": "",
                "reason": "",
                "hard": False,
                "dsn_sent": False,
                "updated_at": now,
            }
            for recipient in prepared.recipients
        ]
        return message, rows

    @staticmethod
    def _submission_payload(message_id: str, prepared: Prepared, recipients: int) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "recipients": recipients,
            "source": prepared.source,
            "sending_domain": prepared.sending_domain,
            "pool": prepared.pool,
        }

    def load(self, message_id: str) -> bytes:
        """The spooled bytes. Raises QueueError when the message has left the spool."""
        try:
            return self.spool_path(message_id).read_bytes()
        except FileNotFoundError:
            raise QueueError(f"message {message_id} is not in the spool") from None

    # ------------------------------------------------------------------ delivery

    def release_claims(self, worker: str | None = None) -> int:
        """Drop the claims of ``worker`` (of every worker when None); returns how many."""
        statement = update(OutboundRecipientRecord).where(
            OutboundRecipientRecord.claimed_by.is_not(None)
        )
        if worker is not None:
            statement = statement.where(OutboundRecipientRecord.claimed_by == worker)
        with self.engine.begin() as connection:
            return connection.execute(statement.values(claimed_by=None)).rowcount or 0

    def claimed(self, row_ids: list[int]) -> set[int]:
        """Which of ``row_ids`` some worker still holds (their outcome is not recorded)."""
        held: set[int] = set()
        recipient = OutboundRecipientRecord
        with self.engine.connect() as connection:
            for start in range(0, len(row_ids), 500):
                held.update(
                    connection.execute(
                        select(recipient.id).where(
                            and_(
                                recipient.id.in_(row_ids[start : start + 500]),
                                recipient.claimed_by.is_not(None),
                            )
                        )
                    ).scalars()
                )
        return held

    def claim(
        self,
        worker: str,
        limit: int,
        now: float | None = None,
        read_ahead: int = 256 * 1024,
        read_ahead_total: int = 32 * 1024 * 1024,
    ) -> list[Job]:
        """Claim up to ``limit`` due recipients for ``worker``, grouped into jobs (one per
        message and destination domain), oldest due first. Messages of at most
        ``read_ahead`` bytes come with their bytes (``Job.raw``): read here, in the caller's
        thread, not when the connection that sends them waits; at most ``read_ahead_total``
        bytes in all."""
        now = time.time() if now is None else now
        recipient = OutboundRecipientRecord
        with self.engine.begin() as connection:
            rows = connection.execute(
                select(
                    recipient.id,
                    recipient.message_id,
                    recipient.recipient,
                    recipient.domain,
                    recipient.attempts,
                )
                .where(
                    and_(
                        recipient.state == QUEUED,
                        recipient.next_attempt_at <= now,
                        recipient.claimed_by.is_(None),
                    )
                )
                .order_by(recipient.next_attempt_at, recipient.id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):
                connection.execute(
                    update(recipient)
                    .where(recipient.id.in_(ids[start : start + 500]))
                    .values(claimed_by=worker)
                )
            message_ids = sorted({row.message_id for row in rows})
            messages = {}
            for start in range(0, len(message_ids), 500):
                for message in connection.execute(
                    select(OutboundMessageRecord).where(
                        OutboundMessageRecord.id.in_(message_ids[start : start + 500])
                    )
                ):
                    messages[message.id] = message
        grouped: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            grouped.setdefault((row.message_id, row.domain), []).append(row)
        jobs = []
        read: dict[str, bytes | None] = {}
        for (message_id, domain), members in grouped.items():
            message = messages[message_id]
            if message_id not in read:
                read[message_id] = None
                if message.size <= min(read_ahead, read_ahead_total):
                    with contextlib.suppress(QueueError):
                        read[message_id] = self.load(message_id)
                        read_ahead_total -= message.size
            jobs.append(
                Job(
                    message_id=message_id,
                    mail_from=message.mail_from,
                    domain=domain,
                    pool=message.pool,
                    sending_domain=message.sending_domain,
                    recipients=tuple((m.id, m.recipient) for m in members),
                    attempts=max(m.attempts for m in members),
                    created_at=message.created_at,
                    expires_at=message.expires_at,
                    envelope_id=message.envelope_id,
                    raw=read[message_id],
                )
            )
        return jobs

    def record(
        self,
        results: list[RecipientResult],
        now: float | None = None,
        context: dict[int, dict[str, Any]] | None = None,
    ) -> None:
        """Store the outcomes of attempts in one transaction: state, reply, the next attempt
        of deferred recipients, one event per counted attempt, and a suppression for each
        hard bounce. ``context`` adds fields (message id, provider, pool...) to the events of
        the rows it names."""
        if not results:
            return
        now = time.time() if now is None else now
        context = context or {}
        # One executemany per statement shape: per-row statements made the writer, not the
        # network, the limit of delivery throughput.
        shapes: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
        events: list[tuple[str, str, dict[str, Any]]] = []
        suppressions: list[tuple[str, str, dict[str, Any]]] = []
        for result in results:
            deferred = result.outcome == "deferred"
            values: dict[str, Any] = {"b_id": result.row_id, "b_updated_at": now}
            if deferred:
                values["b_next"] = now if result.next_attempt_at is None else result.next_attempt_at
            else:
                values["b_state"] = DELIVERED if result.outcome == "delivered" else BOUNCED
            extra = context.get(result.row_id, {})
            if result.counted:
                values.update(
                    b_last_detail={k: extra[k] for k in _DETAIL_KEYS if k in extra},
                    b_last_attempt_at=now,
                    b_last_reply=result.reply[:2000],
                    b_last_mx=result.mx[:255],
                    b_status=result.status[:16],
                    b_reason=result.reason[:32],
                    b_hard=result.hard,
                )
            shapes.setdefault((result.counted, deferred), []).append(values)
            if not result.counted:
                continue
            events.append(
                (
                    f"outbound:{result.row_id}:{int(now * 1_000_000)}",
                    OUTCOME_EVENTS[result.outcome],
                    {
                        "row_id": result.row_id,
                        "reply": result.reply[:500],
                        "status": result.status,
                        "mx": result.mx,
                        "reason": result.reason,
                        "hard": result.hard,
                        # The MX figures stay with the recipient (last_detail), not in
                        # every event.
                        **{k: v for k, v in extra.items() if k != "mx_order"},
                        **result.details,
                    },
                )
            )
            if result.outcome == "bounced" and result.hard and extra.get("recipient"):
                suppressions.append(
                    (
                        str(extra["recipient"]),
                        result.reason or "hard-bounce",
                        {"reply": result.reply[:500], "message_id": extra.get("message_id")},
                    )
                )
        with self.engine.begin() as connection:
            for (counted, deferred), rows in shapes.items():
                connection.execute(_update_statement(counted, deferred), rows)
            append_events_in(connection, events)
            for address, reason, detail in suppressions:
                suppress_in(connection, address, reason, "bounce", detail, now)

    # ------------------------------------------------------------------ DSNs and cleanup

    def bounced_without_dsn(self, limit: int = 100) -> dict[str, list[Any]]:
        """Bounced recipients whose sender has not been told, grouped by message id."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(OutboundRecipientRecord)
                .where(
                    and_(
                        OutboundRecipientRecord.state == BOUNCED,
                        OutboundRecipientRecord.dsn_sent.is_(False),
                    )
                )
                .limit(limit)
            ).all()
        grouped: dict[str, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row.message_id, []).append(row)
        return grouped

    def mark_dsn_sent(self, row_ids: list[int]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(OutboundRecipientRecord)
                .where(OutboundRecipientRecord.id.in_(row_ids))
                .values(dsn_sent=True)
            )

    def message(self, message_id: str) -> Any:
        """The message row (or None)."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(OutboundMessageRecord).where(OutboundMessageRecord.id == message_id)
            ).first()

    def collect_finished(self, limit: int = 1000) -> int:
        """Remove from the spool the messages with no recipient left to deliver or to report
        (their rows stay for ``queue show``); returns how many files went."""
        recipient = OutboundRecipientRecord
        pending = (
            select(recipient.message_id)
            .where(
                recipient.state.in_((QUEUED, HELD))
                | and_(recipient.state == BOUNCED, recipient.dsn_sent.is_(False))
            )
            .distinct()
        )
        removed = 0
        with self.engine.connect() as connection:
            busy = set(connection.execute(pending).scalars())
        now = time.time()
        with os.scandir(self.messages_dir) as entries:
            for entry in entries:
                stem, _, suffix = entry.name.partition(".")
                if suffix != "eml" or stem in busy:
                    continue
                try:
                    if now - entry.stat().st_mtime < 60:
                        continue  # written by a submission that may not have committed yet
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                removed += 1
                if removed >= limit:
                    break
        if removed:
            # One flush of the folder for the lot: a file that comes back after a power cut
            # is only collected again.
            fsync_directory(self.messages_dir)
        return removed

    # ------------------------------------------------------------------ operating it

    def depth(self) -> dict[str, int]:
        """Recipients per state."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(OutboundRecipientRecord.state, func.count()).group_by(
                    OutboundRecipientRecord.state
                )
            ).all()
        counts = {state: 0 for state in STATES}
        counts.update({state: int(count) for state, count in rows})
        return counts

    def queued_by_domain(self) -> Counter[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(OutboundRecipientRecord.domain, func.count())
                .where(OutboundRecipientRecord.state == QUEUED)
                .group_by(OutboundRecipientRecord.domain)
            ).all()
        return Counter({domain: int(count) for domain, count in rows})

    def list_messages(
        self, state: str | None = None, domain: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Newest first: each message with its recipients' states counted. ``state`` keeps
        messages with a recipient in that state; ``domain`` those with a recipient there."""
        if state is not None and state not in STATES:
            raise QueueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        message = OutboundMessageRecord
        recipient = OutboundRecipientRecord
        statement = select(message).order_by(message.created_at.desc(), message.id.desc())
        conditions = []
        if state is not None:
            conditions.append(recipient.state == state)
        if domain is not None:
            conditions.append(recipient.domain == domain.lower())
        if conditions:
            statement = statement.where(
                message.id.in_(select(recipient.message_id).where(and_(*conditions)))
            )
        with self.engine.connect() as connection:
            messages = connection.execute(statement.limit(limit)).all()
            ids = [m.id for m in messages]
            counts: dict[str, Counter[str]] = {i: Counter() for i in ids}
            if ids:
                for message_id, row_state, count in connection.execute(
                    select(recipient.message_id, recipient.state, func.count())
                    .where(recipient.message_id.in_(ids))
                    .group_by(recipient.message_id, recipient.state)
                ):
                    counts[message_id][row_state] = int(count)
        return [
            {
                "id": m.id,
                "mail_from": m.mail_from,
                "subject": m.subject,
                "created_at": m.created_at,
                "size": m.size,
                "pool": m.pool,
                "source": m.source,
                "recipients": {s: counts[m.id].get(s, 0) for s in STATES},
            }
            for m in messages
        ]

    def show(self, message_id: str) -> dict[str, Any]:
        """A message with every recipient's state and last reply. Raises QueueError when the
        id is unknown."""
        message = self.message(message_id)
        if message is None:
            raise QueueError(f"no message {message_id!r} in the queue (see `postwise queue list`)")
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(OutboundRecipientRecord)
                .where(OutboundRecipientRecord.message_id == message_id)
                .order_by(OutboundRecipientRecord.id)
            ).all()
        return {
            "id": message.id,
            "mail_from": message.mail_from,
            "sending_domain": message.sending_domain,
            "subject": message.subject,
            "header_message_id": message.header_message_id,
            "size": message.size,
            "message_sha256": message.message_sha256,
            "pool": message.pool,
            "source": message.source,
            "submitted_by": message.submitted_by,
            "idempotency_key": message.idempotency_key,
            "created_at": message.created_at,
            "expires_at": message.expires_at,
            "in_spool": self.spool_path(message.id).exists(),
            "recipients": [
                {
                    "recipient": row.recipient,
                    "state": row.state,
                    "attempts": row.attempts,
                    "next_attempt_at": row.next_attempt_at if row.state == QUEUED else None,
                    "last_attempt_at": row.last_attempt_at,
                    "last_reply": row.last_reply,
                    "last_mx": row.last_mx,
                    "last_detail": row.last_detail,
                    "status": row.status,
                    "reason": row.reason,
                    "hard": row.hard,
                    "dsn_sent": row.dsn_sent,
                }
                for row in rows
            ],
        }

    def retry(
        self, message_id: str | None = None, domain: str | None = None, now: float | None = None
    ) -> int:
        """Make queued recipients due now (of one message, one domain, or all); returns how
        many. Raises QueueError for an unknown message id."""
        if message_id is not None and self.message(message_id) is None:
            raise QueueError(f"no message {message_id!r} in the queue (see `postwise queue list`)")
        now = time.time() if now is None else now
        recipient = OutboundRecipientRecord
        statement = update(recipient).where(recipient.state == QUEUED)
        if message_id is not None:
            statement = statement.where(recipient.message_id == message_id)
        if domain is not None:
            statement = statement.where(recipient.domain == domain.lower())
        with self.engine.begin() as connection:
            return connection.execute(statement.values(next_attempt_at=now)).rowcount or 0

    def hold(self, message_id: str | None = None, domain: str | None = None) -> int:
        """Keep queued recipients (of one message, one domain, or all) from delivery until
        :meth:`release`, as Postfix's ``postsuper -h`` does; returns how many. A recipient in
        the middle of an attempt finishes it. Raises QueueError for an unknown message id."""
        return self._move(QUEUED, HELD, message_id, domain, None)

    def release(
        self, message_id: str | None = None, domain: str | None = None, now: float | None = None
    ) -> int:
        """Give held recipients back to delivery, due now; returns how many."""
        return self._move(HELD, QUEUED, message_id, domain, time.time() if now is None else now)

    def _move(
        self,
        source: str,
        target: str,
        message_id: str | None,
        domain: str | None,
        due: float | None,
    ) -> int:
        if message_id is not None and self.message(message_id) is None:
            raise QueueError(f"no message {message_id!r} in the queue (see `postwise queue list`)")
        recipient = OutboundRecipientRecord
        statement = update(recipient).where(recipient.state == source)
        if message_id is not None:
            statement = statement.where(recipient.message_id == message_id)
        if domain is not None:
            statement = statement.where(recipient.domain == domain.lower())
        values: dict[str, Any] = {"state": target}
        if due is not None:
            values["next_attempt_at"] = due
        with self.engine.begin() as connection:
            return connection.execute(statement.values(**values)).rowcount or 0

    def purge(self, message_id: str) -> int:
        """Delete a message, its recipients and its spooled bytes; returns how many recipients
        were still queued (they will not be delivered). Raises QueueError for an unknown id."""
        if self.message(message_id) is None:
            raise QueueError(f"no message {message_id!r} in the queue (see `postwise queue list`)")
        with self.engine.begin() as connection:
            queued = connection.execute(
                select(func.count()).where(
                    and_(
                        OutboundRecipientRecord.message_id == message_id,
                        OutboundRecipientRecord.state.in_((QUEUED, HELD)),
                    )
                )
            ).scalar_one()
            connection.execute(
                delete(OutboundRecipientRecord).where(
                    OutboundRecipientRecord.message_id == message_id
                )
            )
            connection.execute(
                delete(OutboundMessageRecord).where(OutboundMessageRecord.id == message_id)
            )
            append_event_in(
                connection,
                f"purge:{message_id}",
                "queue_purge",
                {"message_id": message_id, "queued_recipients": int(queued)},
            )
        remove_durably(self.spool_path(message_id))
        return int(queued)
