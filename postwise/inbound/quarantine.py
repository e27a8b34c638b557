"""The quarantine: messages kept out of the mailbox, with the verdict that put them there.

The raw bytes are stored content-addressed on disk (``<dir>/<sha[:2]>/<sha>.eml``, written
durably: a message is never acknowledged before it is safe), the verdict and envelope as a row
of the ``quarantine`` table. Two quarantined copies of the same bytes share one file; the file
goes when its last row does.

Entries from the milter (``origin = "milter"``) describe messages the MTA holds in its own
queue (Postfix's hold queue); they are listed here for one view of everything held, but are
released with the MTA (``postsuper -H``), not by Postwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import QuarantineRecord, utcnow
from postwise.core.durable import remove_durably, write_durably
from postwise.core.errors import PostwiseError
from postwise.core.events import append_event
from postwise.core.types import Verdict
from postwise.inbound.checks.base import Envelope
from postwise.inbound.relay import Delivery, Destination


class QuarantineError(PostwiseError):
    """A quarantine entry does not exist, or cannot be acted on as asked."""


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: str
    message_sha256: str
    size: int
    mail_from: str
    rcpt_to: tuple[str, ...]
    client_ip: str
    helo: str
    subject: str
    action: str
    message_class: str
    score: float
    reason: str
    verdict: dict[str, Any]
    origin: str
    mta_queue_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: QuarantineRecord) -> QuarantineEntry:
        return cls(
            id=row.id,
            message_sha256=row.message_sha256,
            size=row.size,
            mail_from=row.mail_from,
            rcpt_to=tuple(row.rcpt_to),
            client_ip=row.client_ip,
            helo=row.helo,
            subject=row.subject,
            action=row.action,
            message_class=row.message_class,
            score=row.score,
            reason=row.reason,
            verdict=row.verdict,
            origin=row.origin,
            mta_queue_id=row.mta_queue_id,
            # SQLite gives back naive datetimes (they are stored in UTC); PostgreSQL aware ones.
            created_at=row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC),
        )

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.mail_from, self.rcpt_to, self.client_ip, self.helo)

    def to_json(self) -> dict[str, Any]:
        """The wire form of ``quarantine list --json`` and ``GET /v1/quarantine``."""
        return {
            "id": self.id,
            "message_sha256": self.message_sha256,
            "size": self.size,
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "client_ip": self.client_ip,
            "helo": self.helo,
            "subject": self.subject,
            "action": self.action,
            "class": self.message_class,
            "score": round(self.score, 3),
            "reason": self.reason,
            "origin": self.origin,
            "mta_queue_id": self.mta_queue_id,
            "created_at": self.created_at.isoformat(),
        }


def message_subject(raw: bytes) -> str:
    """The decoded Subject of ``raw`` for listings; empty when absent or undecodable."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
        value = headers.get("Subject")
        if value is None:
            return ""
        return str(make_header(decode_header(str(value)))).replace("\n", " ")[:998]
    except (LookupError, ValueError, TypeError, UnicodeError):
        return ""


class QuarantineStore:
    """Quarantined messages: files under ``folder``, rows in the database behind ``engine``.
    Methods block (disk and database); async callers run them in a thread."""

    def __init__(self, folder: Path, engine: Engine) -> None:
        self.folder = folder
        self.engine = engine
        self._staging = folder / "tmp"
        self._staging.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self.folder / sha256[:2] / f"{sha256}.eml"

    def add(
        self,
        raw: bytes,
        verdict: Verdict,
        envelope: Envelope,
        *,
        reason: str,
        origin: str = "gateway",
        mta_queue_id: str | None = None,
    ) -> QuarantineEntry:
        """Store ``raw`` with its verdict; durable when this returns. Raises OSError when the
        disk refuses (the caller must then not acknowledge the message)."""
        # Named by the stored bytes, not the verdict's hash of the scanned ones: the gateway
        # stores them with its headers on top, and one name must always mean one content.
        sha = hashlib.sha256(raw).hexdigest()
        target = self.path_of(sha)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_durably(target, [raw], self._staging)
        row = QuarantineRecord(
            id=secrets.token_hex(8),
            message_sha256=sha,
            size=len(raw),
            mail_from=envelope.mail_from[:512],
            rcpt_to=list(envelope.rcpt_to),
            client_ip=envelope.client_ip[:64],
            helo=envelope.helo[:255],
            subject=message_subject(raw),
            action=verdict.action,
            message_class=verdict.message_class,
            score=verdict.score,
            reason=reason[:512],
            verdict=verdict.to_json(),
            origin=origin,
            mta_queue_id=mta_queue_id,
            created_at=utcnow(),
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            entry = QuarantineEntry.of(row)
        append_event(
            self.engine,
            f"quarantine:{entry.id}",
            "quarantine.added",
            {"id": entry.id, "message_sha256": sha, "class": entry.message_class},
        )
        return entry

    def list(self, limit: int = 100, offset: int = 0) -> list[QuarantineEntry]:
        """Entries, newest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(QuarantineRecord)
                .order_by(QuarantineRecord.created_at.desc(), QuarantineRecord.id)
                .limit(limit)
                .offset(offset)
            )
            return [QuarantineEntry.of(row) for row in rows]

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(QuarantineRecord)) or 0)

    def get(self, entry_id: str) -> QuarantineEntry:
        """The entry ``entry_id``. Raises QuarantineError when there is none."""
        with Session(self.engine) as session:
            row = session.get(QuarantineRecord, entry_id)
            if row is None:
                raise QuarantineError(
                    f"no quarantined message {entry_id!r} (see `postwise quarantine list`)"
                )
            return QuarantineEntry.of(row)

    def raw(self, entry: QuarantineEntry) -> bytes:
        """The stored bytes of ``entry``. Raises QuarantineError when the file is gone,
        unreadable, or no longer holds the bytes its name is the hash of."""
        path = self.path_of(entry.message_sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if entry.origin == "milter":
                raise QuarantineError(
                    f"{entry.id}: held by the MTA (queue id {entry.mta_queue_id}); "
                    "its bytes are in the MTA's hold queue"
                ) from None
            raise QuarantineError(f"{entry.id}: message file {path} is missing") from None
        except OSError as error:
            raise QuarantineError(
                f"{entry.id}: cannot read message file {path}: {error.strerror or error}"
            ) from None
        if hashlib.sha256(data).hexdigest() != entry.message_sha256:
            raise QuarantineError(
                f"{entry.id}: message file {path} is damaged (its SHA-256 no longer matches "
                "its name); restore it from a backup, or delete the entry"
            )
        return data

    def remove(self, entry_id: str, event: str = "quarantine.deleted") -> QuarantineEntry:
        """Delete the entry (and its file when no other entry shares it); appends ``event``."""
        entry = self.get(entry_id)
        with Session(self.engine) as session, session.begin():
            session.execute(delete(QuarantineRecord).where(QuarantineRecord.id == entry_id))
            shared = session.scalar(
                select(func.count())
                .select_from(QuarantineRecord)
                .where(QuarantineRecord.message_sha256 == entry.message_sha256)
            )
        if not shared:
            remove_durably(self.path_of(entry.message_sha256))
        append_event(
            self.engine,
            f"{event}:{entry.id}",
            event,
            {"id": entry.id, "message_sha256": entry.message_sha256},
        )
        return entry

    def expire(self, retention_days: float, now: datetime | None = None) -> int:
        """Delete entries older than ``retention_days``; returns how many went."""
        cutoff = (now or utcnow()) - timedelta(days=retention_days)
        with Session(self.engine) as session:
            old = list(
                session.scalars(
                    select(QuarantineRecord.id).where(QuarantineRecord.created_at < cutoff)
                )
            )
        for entry_id in old:
            try:
                self.remove(entry_id, event="quarantine.expired")
            except QuarantineError:  # removed meanwhile by another process
                continue
        return len(old)


async def release(
    store: QuarantineStore,
    entry_id: str,
    destination: Destination,
    learn_ham: Callable[[bytes], object] | None = None,
) -> tuple[QuarantineEntry, Delivery]:
    """Hand a quarantined message to ``destination`` (the next hop, or the local Maildir); once
    it is taken, remove it from the quarantine and, with ``learn_ham``, learn it as ham (a
    release is the operator saying the verdict was wrong). Raises QuarantineError when the
    entry does not exist, is held by the MTA, or the destination refuses (it then stays)."""
    entry = await asyncio.to_thread(store.get, entry_id)
    if entry.origin == "milter":
        raise QuarantineError(
            f"{entry.id}: held in the MTA's hold queue (queue id {entry.mta_queue_id}); "
            f"release it there (Postfix: postsuper -H {entry.mta_queue_id}), then "
            f"`postwise quarantine delete {entry.id}`"
        )
    raw = await asyncio.to_thread(store.raw, entry)
    delivery = await destination.deliver(raw, entry.mail_from, entry.rcpt_to)
    if not delivery.ok:
        raise QuarantineError(
            f"{entry.id}: {destination.description} did not take it ({delivery.reply}); "
            "it stays in the quarantine"
        )
    await asyncio.to_thread(store.remove, entry.id, "quarantine.released")
    if learn_ham is not None:
        from postwise.inbound.decision import without_postwise_headers

        await asyncio.to_thread(learn_ham, without_postwise_headers(raw))
    return entry, delivery
