"""Contacts and their consent.

A contact is known everywhere by a pseudonymous id: the keyed HMAC-SHA256 of its normalised
address (:func:`pseudonymise`). The raw address is written to one table only,
``contact_addresses``; every other table, event and model sees the id.

Consent is recorded per purpose (``marketing``, ``personalisation``, ...) and channel
(``email``, ...), with its source and time; the latest statement wins. Nothing may be decided
for a contact without consent for that purpose: code that scores, selects or sends calls
:meth:`ContactStore.require_consent` first, which raises :class:`ConsentError` when consent is
missing or withdrawn.

Errors::

    PostwiseError
     ├── ContactError   an address, purpose or channel that cannot be stored
     └── ConsentError   no consent for the purpose and channel asked about
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from postwise.core.db import ConsentRecord, ContactAddressRecord, ContactRecord, utcnow
from postwise.core.errors import PostwiseError
from postwise.core.settings import Settings

MARKETING = "marketing"
EMAIL = "email"
MAX_ADDRESS_CHARS = 254
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_CONTACT_ID = re.compile(r"^[0-9a-f]{64}$")


class ContactError(PostwiseError):
    """An address, purpose, channel or contact id that cannot be stored."""


class ConsentError(PostwiseError):
    """The contact has not consented (or has withdrawn consent) to the purpose on the
    channel: nothing may be decided or sent for it."""


def normalise_address(address: str) -> str:
    """The address as contact ids are computed from it: trimmed, without angle brackets, lower
    case. Raises ContactError when it is not an address (one ``@``, no spaces, at most 254
    characters)."""
    value = address.strip().strip("<>").strip().lower()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or "." not in domain
        or len(value) > MAX_ADDRESS_CHARS
        or any(ch.isspace() or ord(ch) < 32 or ch in "<>,;" for ch in value)
    ):
        shown = address if len(address) <= 80 else address[:77] + "..."
        raise ContactError(f"{shown!r} is not an email address (expected local@domain)")
    return value


def pseudonymise(address: str, key: bytes) -> str:
    """The pseudonymous contact id of ``address``: hex HMAC-SHA256 of the normalised address
    under ``key``. Another key gives another id, so ids cannot be recomputed from a list of
    addresses without the key. Raises ContactError for a malformed address."""
    if not key:
        raise ContactError("the contact-id HMAC key is empty; set engage_hmac_key")
    return hmac.new(key, normalise_address(address).encode(), hashlib.sha256).hexdigest()


def check_contact_id(contact_id: str) -> str:
    """``contact_id`` if it has the shape of a contact id (64 hex digits); ContactError
    otherwise."""
    if not isinstance(contact_id, str) or not _CONTACT_ID.match(contact_id):
        raise ContactError(
            f"contact_id {str(contact_id)[:80]!r} is not a contact id (64 lower-case hex digits)"
        )
    return contact_id


def check_name(value: str, what: str) -> str:
    """A purpose or channel name: lower-case letters, digits, ``_.-``, at most 64 characters."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ContactError(
            f"{what} {str(value)[:80]!r} is not a valid name "
            "(lower-case letters, digits, '_', '.', '-'; at most 64 characters)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Consent:
    """The standing consent statement for one purpose and channel."""

    purpose: str
    channel: str
    granted: bool
    source: str
    recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "channel": self.channel,
            "granted": self.granted,
            "source": self.source,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; they were stored UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Up to this many contacts, :meth:`ContactStore.consenting` looks them up by id; more are
# answered by one scan of the purpose's statements (cheaper than hundreds of IN queries).
_CONSENT_BY_ID_LIMIT = 5000


class ContactStore:
    """Contacts, their one stored address and their consent, in the Postwise database."""

    def __init__(self, engine: Engine, key: bytes) -> None:
        if not key:
            raise ContactError("the contact-id HMAC key is empty; set engage_hmac_key")
        self.engine = engine
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> ContactStore:
        return cls(engine, settings.resolved_engage_hmac_key())

    def contact_id(self, address: str) -> str:
        """The pseudonymous id of ``address`` under this store's key."""
        return pseudonymise(address, self._key)

    # ------------------------------------------------------------------ contacts

    def upsert_in(
        self,
        connection: Connection,
        address: str,
        attributes: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> tuple[str, bool]:
        """Create the contact of ``address`` or merge ``attributes`` into the stored ones,
        within ``connection``'s transaction. Returns ``(contact_id, created)``. Attributes
        that repeat the address are not stored (the address lives in contact_addresses
        only)."""
        normalised = normalise_address(address)
        contact_id = pseudonymise(normalised, self._key)
        clean = {
            key: value
            for key, value in (attributes or {}).items()
            if not (isinstance(value, str) and normalised in value.lower())
        }
        moment = now or utcnow()
        row = connection.execute(
            select(ContactRecord.attributes).where(ContactRecord.contact_id == contact_id)
        ).first()
        if row is None:
            connection.execute(
                insert(ContactRecord).values(
                    contact_id=contact_id, attributes=clean, created_at=moment, updated_at=moment
                )
            )
            connection.execute(
                insert(ContactAddressRecord).values(contact_id=contact_id, address=normalised)
            )
            return contact_id, True
        if clean:
            merged = {**(row[0] or {}), **clean}
            connection.execute(
                update(ContactRecord)
                .where(ContactRecord.contact_id == contact_id)
                .values(attributes=merged, updated_at=moment)
            )
        return contact_id, False

    def upsert(self, address: str, attributes: dict[str, Any] | None = None) -> str:
        """Create or update the contact of ``address``; returns its contact id."""
        with self.engine.begin() as connection:
            return self.upsert_in(connection, address, attributes)[0]

    def exists_in(self, connection: Connection, contact_id: str) -> bool:
        return (
            connection.execute(
                select(ContactRecord.contact_id).where(ContactRecord.contact_id == contact_id)
            ).first()
            is not None
        )

    def attributes(self, contact_id: str) -> dict[str, Any] | None:
        """The stored attributes of ``contact_id``; None for an unknown contact."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ContactRecord.attributes).where(ContactRecord.contact_id == contact_id)
            ).first()
        return None if row is None else dict(row[0] or {})

    def address_of(self, contact_id: str) -> str | None:
        """The stored address of ``contact_id`` (for sending only); None when unknown."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ContactAddressRecord.address).where(
                    ContactAddressRecord.contact_id == contact_id
                )
            ).first()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ consent

    def record_consent_in(
        self,
        connection: Connection,
        contact_id: str,
        purpose: str,
        channel: str,
        granted: bool,
        source: str,
        recorded_at: datetime | None = None,
    ) -> None:
        """Record a consent statement (grant or withdrawal) within ``connection``'s
        transaction. The statement with the latest ``recorded_at`` is the one that counts."""
        connection.execute(
            insert(ConsentRecord).values(
                contact_id=check_contact_id(contact_id),
                purpose=check_name(purpose, "purpose"),
                channel=check_name(channel, "channel"),
                granted=bool(granted),
                source=(source or "unknown")[:255],
                recorded_at=recorded_at or utcnow(),
            )
        )

    def record_consent(
        self,
        contact_id: str,
        purpose: str,
        channel: str,
        granted: bool,
        source: str,
        recorded_at: datetime | None = None,
    ) -> None:
        """Record a consent statement for a known contact; ContactError for an unknown one."""
        with self.engine.begin() as connection:
            if not self.exists_in(connection, contact_id):
                raise ContactError(f"no contact with id {contact_id[:80]!r}")
            self.record_consent_in(
                connection, contact_id, purpose, channel, granted, source, recorded_at
            )

    def consent(self, contact_id: str, purpose: str, channel: str) -> Consent | None:
        """The standing statement for ``purpose`` on ``channel``; None when there is none."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(ConsentRecord.granted, ConsentRecord.source, ConsentRecord.recorded_at)
                .where(
                    ConsentRecord.contact_id == contact_id,
                    ConsentRecord.purpose == purpose,
                    ConsentRecord.channel == channel,
                )
                .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Consent(
            purpose=purpose,
            channel=channel,
            granted=bool(row[0]),
            source=str(row[1]),
            recorded_at=_aware(row[2]),
        )

    def has_consent(self, contact_id: str, purpose: str, channel: str) -> bool:
        """True when the latest statement for ``purpose`` on ``channel`` grants consent.
        No statement at all means no consent."""
        standing = self.consent(contact_id, purpose, channel)
        return standing is not None and standing.granted

    def require_consent(self, contact_id: str, purpose: str, channel: str) -> None:
        """Call before deciding anything for a contact. Raises ConsentError naming the contact,
        purpose and channel when consent is missing or withdrawn."""
        standing = self.consent(contact_id, purpose, channel)
        if standing is None:
            raise ConsentError(
                f"contact {contact_id[:16]}…: no consent recorded for {purpose!r} on "
                f"{channel!r}; record one (postwise engage import contacts) before deciding"
            )
        if not standing.granted:
            raise ConsentError(
                f"contact {contact_id[:16]}…: consent for {purpose!r} on {channel!r} was "
                f"withdrawn at {standing.recorded_at.isoformat()} ({standing.source})"
            )

    def consenting(self, contact_ids: list[str], purpose: str, channel: str) -> set[str]:
        """The subset of ``contact_ids`` whose standing statement grants consent: the batch
        form of :meth:`has_consent` for code that scores many contacts. A few contacts are
        looked up by id (the ``ix_consents_lookup`` index, 500 per query); a large audience
        reads the purpose's statements in one scan."""
        wanted = set(contact_ids)
        latest: dict[str, tuple[datetime, int, bool]] = {}
        columns = select(
            ConsentRecord.contact_id,
            ConsentRecord.recorded_at,
            ConsentRecord.id,
            ConsentRecord.granted,
        ).where(ConsentRecord.purpose == purpose, ConsentRecord.channel == channel)
        ids = sorted(wanted)
        if len(ids) <= _CONSENT_BY_ID_LIMIT:
            queries = [
                columns.where(ConsentRecord.contact_id.in_(ids[start : start + 500]))
                for start in range(0, len(ids), 500)
            ]
        else:
            queries = [columns]
        with self.engine.connect() as connection:
            for query in queries:
                for contact_id, recorded_at, row_id, granted in connection.execute(query):
                    if contact_id not in wanted:
                        continue
                    key = (_aware(recorded_at), row_id, bool(granted))
                    if contact_id not in latest or key[:2] > latest[contact_id][:2]:
                        latest[contact_id] = key
        return {contact_id for contact_id, (_, _, granted) in latest.items() if granted}
