"""Report files -> the database, each report once.

Aggregate reports are keyed by (``org_name``, ``report_id``), TLS reports by
(``organization_name``, ``report_id``), failure reports by the hash of their content (the ARF
fields and the reported headers, line endings normalised). Storing a report that is already
there changes nothing and says so. Each new report also appends one event
(``dmarc_aggregate_report``, ``dmarc_failure_report`` or ``tls_report``) to the event log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postwise.core.db import (
    DmarcAggregateReportRecord,
    DmarcAggregateRowRecord,
    DmarcFailureReportRecord,
    TlsReportRecord,
)
from postwise.core.events import append_event
from postwise.ops.dmarc_reports import (
    MAX_DECOMPRESSED_BYTES,
    AggregateReport,
    FailureReport,
    Report,
    ReportError,
    TlsReport,
    parse_report,
)

MAX_FILE_BYTES = MAX_DECOMPRESSED_BYTES
_SOURCE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class StoredReport:
    """What happened to one report: ``stored`` is False when it was stored before.
    ``same_content`` is False when the earlier copy under the same key differs (the first
    copy is kept)."""

    kind: str
    key: str
    stored: bool
    description: str
    same_content: bool = True

    @property
    def status(self) -> str:
        return "stored" if self.stored else "already stored"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "status": self.status,
            "description": self.description,
            "same_content": self.same_content,
        }


@dataclass(frozen=True, slots=True)
class IngestResult:
    """One file: the reports in it, or why it could not be read."""

    source: str
    reports: tuple[StoredReport, ...] = ()
    error: str | None = None

    @property
    def status(self) -> str:
        """``error``, ``stored`` (at least one new report) or ``already stored``."""
        if self.error is not None:
            return "error"
        return "stored" if any(r.stored for r in self.reports) else "already stored"

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"file": self.source, "status": self.status}
        if self.error is not None:
            result["error"] = self.error
        else:
            result["reports"] = [r.to_json() for r in self.reports]
        return result


def _event_id(prefix: str, key: str) -> str:
    return f"{prefix}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}"


def describe(report: Report) -> str:
    """One line for people: what the report is about."""
    if isinstance(report, AggregateReport):
        records = len(report.records)
        return (
            f"aggregate report {report.key} for {report.policy.domain}, "
            f"{report.begin:%Y-%m-%d}, {records} record{'s' if records != 1 else ''}, "
            f"{report.messages} message{'s' if report.messages != 1 else ''}"
        )
    if isinstance(report, FailureReport):
        when = f", {report.arrival_date:%Y-%m-%d}" if report.arrival_date else ""
        source = f" from {report.source_ip}" if report.source_ip else ""
        return f"failure report for {report.reported_domain}{source}{when}"
    return (
        f"TLS report {report.key}, {report.begin:%Y-%m-%d}, "
        f"{report.successful_sessions} successful / {report.failed_sessions} failed sessions"
    )


# --------------------------------------------------------------------------- one report


def _store_aggregate(session: Session, report: AggregateReport, source: str) -> str | None:
    """Insert ``report``; returns None when stored, else the stored copy's content hash."""
    existing = session.scalars(
        select(DmarcAggregateReportRecord.content_sha256).where(
            DmarcAggregateReportRecord.org_name == report.org_name,
            DmarcAggregateReportRecord.report_id == report.report_id,
        )
    ).first()
    if existing is not None:
        return existing
    row = DmarcAggregateReportRecord(
        org_name=report.org_name,
        report_id=report.report_id,
        email=report.email,
        domain=report.policy.domain,
        begin=report.begin,
        end=report.end,
        policy=report.policy.to_json(),
        version=report.version,
        generator=report.generator,
        errors=list(report.errors),
        notes=list(report.notes),
        messages=report.messages,
        content_sha256=report.content_sha256,
        source=source,
    )
    session.add(row)
    session.flush()
    day = report.begin.date()
    session.execute(
        insert(DmarcAggregateRowRecord),
        [
            {
                "report_pk": row.id,
                "policy_domain": report.policy.domain,
                "day": day,
                "source_ip": record.source_ip,
                "count": record.count,
                "disposition": record.disposition,
                "dkim": record.dkim,
                "spf": record.spf,
                "header_from": record.header_from,
                "envelope_from": record.envelope_from,
                "envelope_to": record.envelope_to,
                "reasons": [r.to_json() for r in record.reasons],
                "dkim_results": [r.to_json() for r in record.dkim_results],
                "spf_results": [r.to_json() for r in record.spf_results],
            }
            for record in report.records
        ],
    )
    return None


def _store_failure(session: Session, report: FailureReport, source: str) -> str | None:
    existing = session.scalars(
        select(DmarcFailureReportRecord.content_sha256).where(
            DmarcFailureReportRecord.content_sha256 == report.content_sha256
        )
    ).first()
    if existing is not None:
        return existing
    session.add(
        DmarcFailureReportRecord(
            content_sha256=report.content_sha256,
            reported_domain=report.reported_domain,
            source_ip=report.source_ip,
            arrival_date=report.arrival_date,
            feedback_type=report.feedback_type,
            sample_headers_only=report.sample_headers_only,
            report=report.to_json(),
            source=source,
        )
    )
    return None


def _store_tls(session: Session, report: TlsReport, source: str) -> str | None:
    existing = session.scalars(
        select(TlsReportRecord.content_sha256).where(
            TlsReportRecord.organization_name == report.organization_name,
            TlsReportRecord.report_id == report.report_id,
        )
    ).first()
    if existing is not None:
        return existing
    session.add(
        TlsReportRecord(
            organization_name=report.organization_name,
            report_id=report.report_id,
            contact_info=report.contact_info,
            begin=report.begin,
            end=report.end,
            successful_sessions=report.successful_sessions,
            failed_sessions=report.failed_sessions,
            policies=[p.to_json() for p in report.policies],
            content_sha256=report.content_sha256,
            source=source,
        )
    )
    return None


def _event(report: Report, source: str) -> tuple[str, str, dict[str, Any]]:
    if isinstance(report, AggregateReport):
        passed = sum(r.count for r in report.records if r.dmarc_pass)
        return (
            _event_id("dmarc-aggregate", report.key),
            "dmarc_aggregate_report",
            {
                "org_name": report.org_name,
                "report_id": report.report_id,
                "domain": report.policy.domain,
                "begin": report.begin.isoformat(),
                "end": report.end.isoformat(),
                "records": len(report.records),
                "messages": report.messages,
                "dmarc_pass": passed,
                "source": source,
            },
        )
    if isinstance(report, FailureReport):
        return (
            _event_id("dmarc-failure", report.key),
            "dmarc_failure_report",
            {
                "content_sha256": report.content_sha256,
                "reported_domain": report.reported_domain,
                "source_ip": report.source_ip,
                "arrival_date": report.arrival_date.isoformat() if report.arrival_date else None,
                "auth_failure": list(report.auth_failure),
                "source": source,
            },
        )
    return (
        _event_id("tls-report", report.key),
        "tls_report",
        {
            "organization_name": report.organization_name,
            "report_id": report.report_id,
            "begin": report.begin.isoformat(),
            "end": report.end.isoformat(),
            "successful_sessions": report.successful_sessions,
            "failed_sessions": report.failed_sessions,
            "source": source,
        },
    )


def store_report(engine: Engine, report: Report, source: str) -> StoredReport:
    """Store ``report`` (read from ``source``) unless a report with its key is stored already,
    and append its event. Safe to repeat and to run concurrently: the second copy is refused by
    the key's unique constraint and reported as already stored."""
    source = source[:_SOURCE_CHARS]
    description = describe(report)
    try:
        with Session(engine) as session, session.begin():
            if isinstance(report, AggregateReport):
                stored_hash = _store_aggregate(session, report, source)
            elif isinstance(report, FailureReport):
                stored_hash = _store_failure(session, report, source)
            else:
                stored_hash = _store_tls(session, report, source)
    except IntegrityError:  # another process stored the same key between our read and write
        stored_hash = report.content_sha256
    # Also on "already stored": appending is idempotent, and this heals an event lost to a
    # crash between the report's commit and its event.
    append_event(engine, *_event(report, source))
    return StoredReport(
        kind=report.kind,
        key=report.key,
        stored=stored_hash is None,
        description=description,
        same_content=stored_hash in (None, report.content_sha256),
    )


# --------------------------------------------------------------------------- files


def report_files(paths: list[Path]) -> Iterator[Path]:
    """Files under ``paths`` in a stable order: folders are walked, hidden entries skipped. A
    path that does not exist is yielded as is (reading it reports the problem)."""
    for path in paths:
        if path.is_dir():
            try:
                children = sorted(p for p in path.iterdir() if not p.name.startswith("."))
            except OSError:  # unlistable: reading it reports why
                yield path
                continue
            yield from report_files(children)
        else:
            yield path


def ingest_file(engine: Engine, path: Path) -> IngestResult:
    """Parse and store every report in the file at ``path``; never raises for a bad file."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            return IngestResult(source, error=f"{source}: {size} bytes, over the {limit} MB limit")
        data = path.read_bytes()
    except FileNotFoundError:
        return IngestResult(source, error=f"{source}: no such file or folder")
    except OSError as error:
        return IngestResult(source, error=f"{source}: unreadable: {error.strerror or error}")
    try:
        reports = parse_report(data, source)
    except ReportError as error:
        return IngestResult(source, error=str(error))
    return IngestResult(source, tuple(store_report(engine, r, source) for r in reports))


def ingest_paths(engine: Engine, paths: list[Path]) -> Iterator[IngestResult]:
    """:func:`ingest_file` for every file under ``paths``: one bad file never stops the rest."""
    for path in report_files(paths):
        yield ingest_file(engine, path)
