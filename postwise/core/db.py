"""Storage: SQLAlchemy 2 tables, the engine, and schema upgrades through Alembic.

SQLite in the data folder by default; any SQLAlchemy URL (PostgreSQL through psycopg 3) via
``POSTWISE_DATABASE_URL``. The schema is owned by the migrations in ``postwise/migrations``;
:func:`open_database` brings a database to the newest revision before handing it out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, DateTime, Float, Integer, String, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    upgrade_schema(url)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine
