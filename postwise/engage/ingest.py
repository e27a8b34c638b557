"""Ingestion of contacts and engagement events from CSV and JSON-lines files and API payloads.

Every row is validated on its own: a bad row is reported with its file, line number and reason
and skipped; it never stops the batch and is never dropped silently (the report counts it even
when the list of errors is capped). Events are idempotent by ``event_id``: importing the same
file twice stores each event once. An ``unsubscribe`` or ``complaint`` event withdraws consent
for marketing email as of the event's time.

Contact rows: ``email`` (or ``address``); attributes (a JSON object under ``attributes``, or in
CSV every other non-empty column); consent (JSON: ``consent`` as a list of ``{purpose,
channel, granted, source?, recorded_at?}``; CSV: columns ``consent.<purpose>.<channel>`` with
yes/no, plus optional ``consent_source`` and ``consent_recorded_at``).

Event rows: ``event_id``, ``type``, ``occurred_at`` (ISO 8601, or Unix seconds; no zone means
UTC), the contact as ``contact_id`` or ``email``, optional ``value`` and ``properties`` (a JSON
object; in CSV, every other non-empty column).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, cast

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from postwise.core.db import EngageEventRecord, utcnow
from postwise.core.errors import PostwiseError
from postwise.engage.contacts import (
    EMAIL,
    MARKETING,
    ContactError,
    ContactStore,
    check_contact_id,
    check_name,
)

EVENT_TYPES = (
    "sent",
    "delivered",
    "open",
    "click",
    "purchase",
    "unsubscribe",
    "complaint",
    "custom",
)
WITHDRAWING_TYPES = frozenset({"unsubscribe", "complaint"})
MAX_FIELD_CHARS = 10_000
MAX_JSON_CHARS = 64 * 1024
MAX_EVENT_ID_CHARS = 128
MAX_LINE_BYTES = 1024 * 1024
MAX_REPORTED_ERRORS = 1000
BATCH_ROWS = 500
_TRUE = {"1", "true", "yes", "y", "granted", "opt-in", "optin"}
_FALSE = {"0", "false", "no", "n", "withdrawn", "denied", "opt-out", "optout"}
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)

Kind = Literal["contacts", "events"]


class IngestError(PostwiseError):
    """A file that cannot be read at all (missing, unknown format)."""


class RowError(ValueError):
    """One row's problem; the message is the reason shown in the report."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    source: str
    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What became of one row: ``created`` / ``updated`` (contacts), ``imported`` /
    ``duplicate`` (events) or ``error``."""

    line: int
    status: str
    contact_id: str | None = None
    event_id: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"line": self.line, "status": self.status}
        for name in ("contact_id", "event_id", "error"):
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body


@dataclass(slots=True)
class ImportReport:
    """Counts of one import and its problems (the first MAX_REPORTED_ERRORS of them)."""

    kind: str
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    consent_withdrawn: int = 0
    errors: list[RowProblem] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        return self.rows > 0 and self.failed == self.rows

    def add_error(self, problem: RowProblem) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "consent_withdrawn": self.consent_withdrawn,
            "errors": [problem.to_json() for problem in self.errors],
            "errors_not_listed": self.failed - len(self.errors),
        }


# ---------------------------------------------------------------------------- readers
# Each reader yields (line number, row or the reason it could not be read).

RawRow = tuple[int, dict[str, Any] | str]


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last == ".csv":
        return "csv"
    if last in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise IngestError(
        f"{path}: unknown format {last or '(no extension)'!r}; "
        "name the file .csv or .jsonl (optionally .gz) or pass --format"
    )


def read_jsonl(handle: IO[bytes]) -> Iterator[RawRow]:
    """JSON lines: one object per line; blank lines are skipped."""
    for number, raw in enumerate(handle, start=1):
        if len(raw) > MAX_LINE_BYTES:
            yield number, f"line is {len(raw)} bytes, over the limit of {MAX_LINE_BYTES}"
            continue
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, f"not valid UTF-8 (byte {error.start})"
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            yield number, f"not valid JSON: {error.msg} at column {error.colno}"
            continue
        except RecursionError:
            yield number, "not valid JSON: nested too deeply"
            continue
        if not isinstance(value, dict):
            yield number, f"expected a JSON object, got {type(value).__name__}"
            continue
        yield number, value


def read_csv(handle: IO[bytes]) -> Iterator[RawRow]:
    """CSV with a header row (UTF-8, optional BOM). Rows are numbered by the line they start
    on; a row with more or fewer fields than the header is an error, not guessed at."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        yield 1, f"unreadable header: {error}"
        return
    names = [name.strip() for name in header]
    if any(_has_bad_bytes(name) for name in names):
        yield 1, "header is not valid UTF-8"
        return
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield start, f"malformed CSV: {error}"
            continue
        if not fields or all(not value.strip() for value in fields):
            continue
        if any(_has_bad_bytes(value) for value in fields):
            yield start, "not valid UTF-8"
            continue
        if len(fields) != len(names):
            yield start, f"expected {len(names)} fields as in the header, found {len(fields)}"
            continue
        yield start, dict(zip(names, fields, strict=True))


def _has_bad_bytes(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value) or "\x00" in value


def read_rows(path: Path, file_format: str | None = None) -> Iterator[RawRow]:
    """Rows of a CSV or JSON-lines file (gzipped or not). Raises IngestError when the file
    cannot be opened or its format is unknown."""
    kind = file_format or _format_of(path)
    if kind not in ("csv", "jsonl"):
        raise IngestError(f"unknown format {kind!r}: use csv or jsonl")
    try:
        handle = _open_binary(path)
    except OSError as error:
        raise IngestError(f"{path}: cannot open ({error.strerror or error})") from None
    with handle:
        try:
            yield from (read_csv(handle) if kind == "csv" else read_jsonl(handle))
        except (OSError, EOFError) as error:
            raise IngestError(f"{path}: cannot read ({error})") from None


# ---------------------------------------------------------------------------- validation


def _text(value: Any, name: str, limit: int = MAX_FIELD_CHARS, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"missing {name}")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowError(f"{name} must be text, not {type(value).__name__}")
    text = str(value).strip()
    if len(text) > limit:
        raise RowError(f"{name} is {len(text)} characters, over the limit of {limit}")
    return text


def parse_time(value: Any, name: str) -> datetime:
    """ISO 8601 (no zone means UTC) or Unix seconds, between 1970 and 2100."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowError(f"missing {name}")
    moment: datetime
    if isinstance(value, bool):
        raise RowError(f"{name} must be a time, not a boolean")
    if isinstance(value, int | float) or (
        isinstance(value, str) and value.strip().replace(".", "", 1).isdigit()
    ):
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 <= seconds < 4102444800:
            raise RowError(f"{name} {value!r} is out of range (Unix seconds, 1970-2100)")
        moment = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise RowError(f"{name} is not a time (too long)")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RowError(
                f"{name} {text!r} is not a time (ISO 8601 like 2024-05-01T12:00:00Z, "
                "or Unix seconds)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    else:
        raise RowError(f"{name} must be a time, not {type(value).__name__}")
    if not _EARLIEST <= moment < _LATEST:
        raise RowError(f"{name} {moment.isoformat()} is outside 1970-2100")
    return moment


def _json_object(value: Any, name: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        if len(value) > MAX_JSON_CHARS:
            raise RowError(f"{name} is {len(value)} characters, over the limit of {MAX_JSON_CHARS}")
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise RowError(f"{name} is not a JSON object") from None
    if not isinstance(value, dict):
        raise RowError(f"{name} must be a JSON object, not {type(value).__name__}")
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (ValueError, TypeError, RecursionError):
        raise RowError(f"{name} holds values JSON cannot store (NaN, infinity)") from None
    if size > MAX_JSON_CHARS:
        raise RowError(f"{name} is {size} characters of JSON, over the limit of {MAX_JSON_CHARS}")
    return value


def _flag(value: Any, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError(f"{name} {str(value)[:40]!r} is not yes/no")


def _extra_columns(row: dict[str, Any], known: set[str]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for key, value in row.items():
        if key in known or key.startswith("consent.") or value in (None, ""):
            continue
        extra[key] = _text(value, key) if isinstance(value, str) else value
    return extra


@dataclass(frozen=True, slots=True)
class ConsentStatement:
    purpose: str
    channel: str
    granted: bool
    source: str
    recorded_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactRow:
    address: str
    attributes: dict[str, Any]
    consents: tuple[ConsentStatement, ...]


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    type: str
    occurred_at: datetime
    contact_id: str | None
    address: str | None
    properties: dict[str, Any]
    value: float | None


_CONTACT_FIELDS = {
    "email",
    "address",
    "attributes",
    "consent",
    "consent_source",
    "consent_recorded_at",
}
_EVENT_FIELDS = {
    "event_id",
    "type",
    "occurred_at",
    "contact_id",
    "email",
    "address",
    "value",
    "properties",
}


def validate_contact(row: dict[str, Any], default_source: str, tabular: bool) -> ContactRow:
    """One contact row, checked; RowError names the first problem."""
    address = _text(row.get("email") or row.get("address"), "email", limit=512)
    attributes = _json_object(row.get("attributes"), "attributes")
    if tabular:
        attributes = {**_extra_columns(row, _CONTACT_FIELDS), **attributes}
    elif extra := sorted(set(row) - _CONTACT_FIELDS):
        raise RowError(f"unknown field(s) {extra}; put custom values under 'attributes'")
    _json_object(attributes, "attributes")  # size check of the merged attributes
    consents: list[ConsentStatement] = []
    if tabular:
        source = _text(row.get("consent_source"), "consent_source", 255, False) or default_source
        when_raw = row.get("consent_recorded_at")
        when = parse_time(when_raw, "consent_recorded_at") if when_raw else None
        for key, value in row.items():
            if not key.startswith("consent.") or key in _CONTACT_FIELDS:
                continue
            purpose, _, channel = key.removeprefix("consent.").partition(".")
            granted = _flag(value, key)
            if granted is None:
                continue
            try:
                consents.append(
                    ConsentStatement(
                        check_name(purpose, "purpose"),
                        check_name(channel or EMAIL, "channel"),
                        granted,
                        source,
                        when,
                    )
                )
            except ContactError as error:
                raise RowError(str(error)) from None
    else:
        listed = row.get("consent") or []
        if isinstance(listed, dict):
            listed = [listed]
        if not isinstance(listed, list):
            raise RowError("consent must be a list of {purpose, channel, granted} objects")
        for index, item in enumerate(listed):
            if not isinstance(item, dict):
                raise RowError(f"consent[{index}] must be an object")
            granted = _flag(item.get("granted"), f"consent[{index}].granted")
            if granted is None:
                raise RowError(f"consent[{index}] lacks 'granted'")
            when_raw = item.get("recorded_at")
            try:
                consents.append(
                    ConsentStatement(
                        check_name(item.get("purpose", ""), "purpose"),
                        check_name(item.get("channel", EMAIL), "channel"),
                        granted,
                        _text(item.get("source"), "source", 255, False) or default_source,
                        parse_time(when_raw, f"consent[{index}].recorded_at") if when_raw else None,
                    )
                )
            except ContactError as error:
                raise RowError(str(error)) from None
    return ContactRow(address, attributes, tuple(consents))


def validate_event(row: dict[str, Any], tabular: bool) -> EventRow:
    """One event row, checked; RowError names the first problem."""
    event_id = _text(row.get("event_id"), "event_id", MAX_EVENT_ID_CHARS)
    kind = _text(row.get("type"), "type", 32).lower()
    if kind not in EVENT_TYPES:
        raise RowError(
            f"unknown event type {kind[:32]!r}; expected one of {', '.join(EVENT_TYPES)}"
        )
    occurred_at = parse_time(row.get("occurred_at"), "occurred_at")
    contact_id = _text(row.get("contact_id"), "contact_id", 64, False) or None
    address = _text(row.get("email") or row.get("address"), "email", 512, False) or None
    if contact_id is None and address is None:
        raise RowError("missing contact: give contact_id or email")
    if contact_id is not None:
        try:
            check_contact_id(contact_id)
        except ContactError as error:
            raise RowError(str(error)) from None
    raw_value = row.get("value")
    value: float | None = None
    if raw_value not in (None, ""):
        if isinstance(raw_value, bool):
            raise RowError("value must be a number")
        try:
            value = float(raw_value)
        except (TypeError, ValueError):
            raise RowError(f"value {str(raw_value)[:40]!r} is not a number") from None
        if not math.isfinite(value):
            raise RowError("value must be a finite number")
    properties = _json_object(row.get("properties"), "properties")
    if tabular:
        properties = {**_extra_columns(row, _EVENT_FIELDS), **properties}
    elif extra := sorted(set(row) - _EVENT_FIELDS):
        raise RowError(f"unknown field(s) {extra}; put custom values under 'properties'")
    _json_object(properties, "properties")
    return EventRow(event_id, kind, occurred_at, contact_id, address, properties, value)


# ---------------------------------------------------------------------------- storing


def _store_contact(
    store: ContactStore, connection: Connection, row: ContactRow, now: datetime
) -> tuple[str, bool]:
    contact_id, created = store.upsert_in(connection, row.address, row.attributes, now)
    for statement in row.consents:
        store.record_consent_in(
            connection,
            contact_id,
            statement.purpose,
            statement.channel,
            statement.granted,
            statement.source,
            statement.recorded_at or now,
        )
    return contact_id, created


def _insert_event(connection: Connection, values: dict[str, Any]) -> bool:
    dialect = connection.dialect.name
    if dialect in ("sqlite", "postgresql"):
        dialect_insert = sqlite_insert if dialect == "sqlite" else pg_insert
        statement = (
            dialect_insert(EngageEventRecord)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(EngageEventRecord.id)
        )
        return connection.execute(statement).first() is not None
    exists = connection.execute(
        select(EngageEventRecord.id).where(EngageEventRecord.event_id == values["event_id"])
    ).first()
    if exists:
        return False
    connection.execute(insert(EngageEventRecord).values(**values))
    return True


def _store_event(
    store: ContactStore, connection: Connection, row: EventRow, source: str
) -> tuple[str, bool, bool]:
    """Returns (contact_id, stored, consent withdrawn)."""
    if row.address is not None:
        contact_id, _ = store.upsert_in(connection, row.address)
        if row.contact_id is not None and row.contact_id != contact_id:
            raise RowError("contact_id does not match email")
    else:
        assert row.contact_id is not None
        contact_id = row.contact_id
        if not store.exists_in(connection, contact_id):
            raise RowError(f"unknown contact_id {contact_id[:16]}…; import the contact first")
    stored = _insert_event(
        connection,
        {
            "event_id": row.event_id,
            "contact_id": contact_id,
            "type": row.type,
            "occurred_at": row.occurred_at,
            "properties": row.properties,
            "value": row.value,
        },
    )
    withdrawn = stored and row.type in WITHDRAWING_TYPES
    if withdrawn:
        store.record_consent_in(
            connection,
            contact_id,
            MARKETING,
            EMAIL,
            False,
            f"{row.type} event {row.event_id}"[:255],
            row.occurred_at,
        )
    return contact_id, stored, withdrawn


def ingest_rows(
    store: ContactStore,
    kind: Kind,
    rows: Iterable[RawRow],
    source: str,
    tabular: bool,
    outcomes: list[RowOutcome] | None = None,
) -> ImportReport:
    """Validate and store ``rows`` (as the readers yield them) of ``kind``, in batches of
    BATCH_ROWS per transaction. Bad rows are reported and skipped; ``outcomes``, when given,
    receives one entry per row."""
    report = ImportReport(kind=kind, source=source)
    iterator = iter(rows)
    finished = False
    while not finished:
        with store.engine.begin() as connection:
            now = utcnow()
            for _ in range(BATCH_ROWS):
                try:
                    line, raw = next(iterator)
                except StopIteration:
                    finished = True
                    break
                report.rows += 1
                outcome = _ingest_one(store, connection, kind, line, raw, source, tabular, now)
                if outcome.status == "error":
                    report.add_error(RowProblem(source, line, outcome.error or "invalid row"))
                elif outcome.status == "created":
                    report.created += 1
                elif outcome.status == "updated":
                    report.updated += 1
                elif outcome.status == "duplicate":
                    report.duplicates += 1
                else:
                    report.imported += 1
                    if outcome.status == "imported+withdrawn":
                        report.consent_withdrawn += 1
                        outcome = RowOutcome(line, "imported", outcome.contact_id, outcome.event_id)
                if outcomes is not None:
                    outcomes.append(outcome)
    return report


def _ingest_one(
    store: ContactStore,
    connection: Connection,
    kind: Kind,
    line: int,
    raw: dict[str, Any] | str,
    source: str,
    tabular: bool,
    now: datetime,
) -> RowOutcome:
    if isinstance(raw, str):
        return RowOutcome(line, "error", error=raw)
    try:
        if kind == "contacts":
            contact = validate_contact(raw, source, tabular)
            contact_id, created = _store_contact(store, connection, contact, now)
            return RowOutcome(line, "created" if created else "updated", contact_id)
        event = validate_event(raw, tabular)
        contact_id, stored, withdrawn = _store_event(store, connection, event, source)
    except (RowError, ContactError) as error:
        return RowOutcome(line, "error", error=str(error))
    status = ("imported+withdrawn" if withdrawn else "imported") if stored else "duplicate"
    return RowOutcome(line, status, contact_id, event.event_id)


def import_file(
    store: ContactStore, kind: Kind, path: Path, file_format: str | None = None
) -> ImportReport:
    """Import a CSV or JSON-lines file of ``kind`` (contacts or events). Raises IngestError
    only when the file cannot be read at all; row problems are in the report."""
    chosen = file_format or _format_of(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    return ingest_rows(store, kind, read_rows(path, chosen), str(path), tabular=chosen == "csv")


def import_records(
    store: ContactStore, kind: Kind, records: list[Any], source: str = "api"
) -> tuple[ImportReport, list[RowOutcome]]:
    """Import already-parsed JSON records (API payloads); items are numbered from 1."""
    rows: list[RawRow] = [
        (
            index,
            item
            if isinstance(item, dict)
            else f"expected a JSON object, got {type(item).__name__}",
        )
        for index, item in enumerate(records, start=1)
    ]
    outcomes: list[RowOutcome] = []
    report = ingest_rows(store, kind, rows, source, tabular=False, outcomes=outcomes)
    return report, outcomes
