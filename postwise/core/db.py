"""Storage: SQLAlchemy 2 tables, the engine, and schema upgrades through Alembic.

SQLite in the data folder by default; any SQLAlchemy URL (PostgreSQL through psycopg 3) via
``POSTWISE_DATABASE_URL``. The schema is owned by the migrations in ``postwise/migrations``;
:func:`open_database` brings a database to the newest revision before handing it out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from postwise.core.errors import SchemaError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already (SQLite hands back naive
    datetimes even for timezone-aware columns, which were stored in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class VerdictRecord(Base):
    """One scan's outcome with its provenance: which bytes, which symbols, which model and
    policy versions, when."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(998))
    message_sha256: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    message_class: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    symbols: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class EventRecord(Base):
    """The event log every subsystem appends to. ``event_id`` is unique: appending the same
    event twice stores it once."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class QuarantineRecord(Base):
    """A quarantined message: its verdict and envelope; the bytes live on disk, addressed by
    ``message_sha256`` (see :mod:`postwise.inbound.quarantine`)."""

    __tablename__ = "quarantine"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    mail_from: Mapped[str] = mapped_column(String(512))
    rcpt_to: Mapped[list[str]] = mapped_column(JSON)
    client_ip: Mapped[str] = mapped_column(String(64))
    helo: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(998))
    action: Mapped[str] = mapped_column(String(16))
    message_class: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(512))
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(16))
    mta_queue_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(url: str) -> None:
    """Bring the database at ``url`` to the newest schema revision."""
    command.upgrade(_alembic_config(url), "head")


def open_database(url: str) -> Engine:
    """An engine for ``url`` with the schema upgraded. Creates the SQLite folder if needed."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade_schema(url)
    except SQLAlchemyError as error:
        where = make_url(url).render_as_string(hide_password=True)
        raise SchemaError(
            f"{where}: cannot bring the database to the current schema "
            f"({type(error).__name__}: {error})"
        ) from error
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine


# --------------------------------------------------------------------------- DMARC / TLS reports
# Written by postwise.ops.dmarc_store; each report is stored once, by its natural key.


class DmarcAggregateReportRecord(Base):
    """A DMARC aggregate report: one per reporter (``org_name``) and ``report_id``."""

    __tablename__ = "dmarc_aggregate_reports"
    __table_args__ = (UniqueConstraint("org_name", "report_id", name="uq_dmarc_aggregate_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_name: Mapped[str] = mapped_column(String(255))
    report_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    begin: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[str | None] = mapped_column(String(255), nullable=True)
    generator: Mapped[str | None] = mapped_column(Text, nullable=True)
    errors: Mapped[list[str]] = mapped_column(JSON)
    notes: Mapped[list[str]] = mapped_column(JSON)
    messages: Mapped[int] = mapped_column(BigInteger)
    content_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class DmarcAggregateRowRecord(Base):
    """One ``<record>`` of an aggregate report, with the report's policy domain and first day
    copied in so summaries group and filter without a join."""

    __tablename__ = "dmarc_aggregate_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_pk: Mapped[int] = mapped_column(
        ForeignKey("dmarc_aggregate_reports.id", ondelete="CASCADE"), index=True
    )
    policy_domain: Mapped[str] = mapped_column(String(255), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    source_ip: Mapped[str] = mapped_column(String(45), index=True)
    count: Mapped[int] = mapped_column(BigInteger)
    disposition: Mapped[str] = mapped_column(String(16))
    dkim: Mapped[str] = mapped_column(String(8))
    spf: Mapped[str] = mapped_column(String(8))
    header_from: Mapped[str] = mapped_column(String(255), index=True)
    envelope_from: Mapped[str | None] = mapped_column(String(255), nullable=True)
    envelope_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    dkim_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    spf_results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class DmarcFailureReportRecord(Base):
    """A DMARC failure (forensic) report, stored once per hash of its content. ``report``
    holds every parsed field (the failed message's headers, never its body)."""

    __tablename__ = "dmarc_failure_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    reported_domain: Mapped[str] = mapped_column(String(255), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(45), nullable=True, index=True)
    arrival_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    feedback_type: Mapped[str] = mapped_column(String(32))
    sample_headers_only: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class TlsReportRecord(Base):
    """An SMTP TLS report (RFC 8460): one per ``organization_name`` and ``report_id``."""

    __tablename__ = "tls_reports"
    __table_args__ = (UniqueConstraint("organization_name", "report_id", name="uq_tls_report_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organization_name: Mapped[str] = mapped_column(String(255))
    report_id: Mapped[str] = mapped_column(String(255))
    contact_info: Mapped[str | None] = mapped_column(Text, nullable=True)
    begin: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    successful_sessions: Mapped[int] = mapped_column(BigInteger)
    failed_sessions: Mapped[int] = mapped_column(BigInteger)
    policies: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


# --------------------------------------------------------------------------- outbound queue
# Written by postwise.outbound.queue. Queue times are Unix seconds (floats): the scheduler
# compares them in SQL on every poll, and numbers compare the same way on every database.


class OutboundMessageRecord(Base):
    """A submitted message: its envelope sender and provenance. The bytes (as submitted, plus
    the trace and signature fields added on submission) live in the outbound spool under
    ``id``. ``idempotency_key`` is unique: a retried submission finds the first one."""

    __tablename__ = "outbound_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    mail_from: Mapped[str] = mapped_column(String(512))
    sending_domain: Mapped[str] = mapped_column(String(255), index=True)
    message_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(998))
    header_message_id: Mapped[str] = mapped_column(String(998))
    pool: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    submitted_by: Mapped[str] = mapped_column(String(255))
    envelope_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    expires_at: Mapped[float] = mapped_column(Float)


class OutboundRecipientRecord(Base):
    """One recipient of a queued message and where its delivery stands: ``queued`` (waiting
    for ``next_attempt_at``, possibly after deferrals), ``delivered`` or ``bounced``.
    ``claimed_by`` names the delivery worker that holds it in memory."""

    __tablename__ = "outbound_recipients"
    __table_args__ = (Index("ix_outbound_recipients_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_messages.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(512))
    domain: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    last_mx: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(32), default="")
    hard: Mapped[bool] = mapped_column(Boolean, default=False)
    dsn_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    # How the last attempt went out: the MX order with the figures behind it, TLS, the
    # egress address and the shaping budget.
    last_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class SuppressionRecord(Base):
    """An address submission refuses: a hard bounce, a complaint, or an operator's entry."""

    __tablename__ = "suppressions"

    address: Mapped[str] = mapped_column(String(512), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class EgressDailyRecord(Base):
    """Messages one source address sent on one UTC day: the warm-up schedule's counter (its
    first day is the address's day 0)."""

    __tablename__ = "egress_daily"

    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer)


# --------------------------------------------------------------------------- engage
# Written by postwise.engage.contacts and postwise.engage.ingest. Contacts are known by a
# pseudonymous id (keyed HMAC of the address); ``contact_addresses`` is the one table that
# holds a raw address, so erasing it leaves every other table free of the person's address.


class ContactRecord(Base):
    """A contact: its pseudonymous id and free-form attributes."""

    __tablename__ = "contacts"

    contact_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactAddressRecord(Base):
    """The raw (normalised) address behind a contact id: the only place it is stored."""

    __tablename__ = "contact_addresses"

    contact_id: Mapped[str] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(512), unique=True)


class ConsentRecord(Base):
    """One consent statement for a purpose and channel; the latest ``recorded_at`` wins."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_lookup", "contact_id", "purpose", "channel", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.contact_id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EngageEventRecord(Base):
    """An engagement event of a contact (sent, delivered, open, click, purchase, unsubscribe,
    complaint, custom); ``event_id`` is unique, so ingesting the same event twice stores it
    once."""

    __tablename__ = "engage_events"
    __table_args__ = (
        Index("ix_engage_events_contact_time", "contact_id", "occurred_at"),
        Index("ix_engage_events_type_time", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    contact_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


# --------------------------------------------------------------------------- registry
# Written by postwise.engage.registry (models) and postwise.engage.provenance (decisions).


class ModelRecord(Base):
    """One registered model version. ``status`` is candidate, promoted or retired (at most one
    promoted per ``name``); ``replaced_version`` is the version this one replaced when it was
    promoted, which rollback re-promotes. ``drift_reference`` holds the training distribution
    (bin edges and proportions per input, and of the scores)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_models_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(128))
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    drift_reference: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    artefact_path: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16))
    replaced_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DecisionRecord(Base):
    """A score or decision made for a contact, with what made it: the model name and version,
    the SHA-256 of the features (the features themselves when kept) and the policy."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_contact", "contact_id", "decided_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    contact_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    decision: Mapped[Any] = mapped_column(JSON)
    model_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    features_sha256: Mapped[str] = mapped_column(String(64))
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    policy: Mapped[Any] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- experiments
# Written by postwise.engage.experiment_store.


class ExperimentRecord(Base):
    """A stored experiment: ``kind`` ``ab`` or ``holdout``, its arms and fractions as
    ``[[arm, fraction], ...]`` (the first arm is the control), the salt of its assignment, the
    campaign it belongs to (a holdout without one is the global holdout), and ``status``
    ``active`` or ``stopped``."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    arms: Mapped[list[Any]] = mapped_column(JSON)
    salt: Mapped[str] = mapped_column(String(255))
    campaign: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ExperimentAssignmentRecord(Base):
    """The arm a contact was assigned to in an experiment; the first assignment stays."""

    __tablename__ = "experiment_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "contact_id", name="uq_experiment_assignments_contact"),
        Index("ix_experiment_assignments_contact", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------- copy candidates
# Written by postwise.content.copy.


class CopyCandidateRecord(Base):
    """A generated subject line and preheader with its guardrail verdict: ``status`` approved,
    rejected or needs_approval, ``reasons`` why, ``spam_score`` the inbound classifier's score;
    ``approved_by`` / ``approved_at`` once a person approved it."""

    __tablename__ = "copy_candidates"
    __table_args__ = (Index("ix_copy_candidates_brief_status", "brief_sha256", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    brief_sha256: Mapped[str] = mapped_column(String(64))
    brief: Mapped[dict[str, Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    spam_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    policy_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
