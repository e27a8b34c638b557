"""Stored DMARC aggregate reports -> pass/fail and alignment by source IP, domain or day.

A message passes DMARC when DKIM or SPF passed *aligned*, as the reporter evaluated it
(``policy_evaluated``); the DKIM and SPF alignment rates are the shares of messages whose
evaluated ``dkim`` / ``spf`` is ``pass``. A record's day is the first day (UTC) of its report's
date range. Failure and TLS reports are counted alongside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true
from sqlalchemy.engine import Engine

from postwise.core.db import DmarcAggregateRowRecord, DmarcFailureReportRecord, TlsReportRecord

Grouping = Literal["ip", "domain", "day"]
GROUPINGS: tuple[Grouping, ...] = ("ip", "domain", "day")
DISPOSITIONS = ("none", "quarantine", "reject", "pass")

_R = DmarcAggregateRowRecord


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """Totals of one group (a source IP, a header-from domain or a day)."""

    key: str
    reports: int
    messages: int
    dmarc_pass: int
    dkim_aligned: int
    spf_aligned: int
    dispositions: dict[str, int] = field(default_factory=dict)

    @property
    def dmarc_fail(self) -> int:
        return self.messages - self.dmarc_pass

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "reports": self.reports,
            "messages": self.messages,
            "dmarc_pass": self.dmarc_pass,
            "dmarc_fail": self.dmarc_fail,
            "dmarc_pass_rate": _rate(self.dmarc_pass, self.messages),
            "dkim_aligned": self.dkim_aligned,
            "dkim_aligned_rate": _rate(self.dkim_aligned, self.messages),
            "spf_aligned": self.spf_aligned,
            "spf_aligned_rate": _rate(self.spf_aligned, self.messages),
            "dispositions": dict(self.dispositions),
        }


@dataclass(frozen=True, slots=True)
class DmarcSummary:
    """The summary ``postwise dmarc summary`` prints. ``groups`` counts every group, ``rows``
    holds at most the requested number (largest first; days in order)."""

    by: Grouping
    domain: str | None
    since: date | None
    totals: SummaryRow
    rows: tuple[SummaryRow, ...]
    groups: int
    failure_reports: int
    tls_reports: int
    tls_successful_sessions: int
    tls_failed_sessions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "domain": self.domain,
            "since": self.since.isoformat() if self.since else None,
            "totals": {k: v for k, v in self.totals.to_json().items() if k != "key"},
            "groups": self.groups,
            "rows": [row.to_json() for row in self.rows],
            "failure_reports": self.failure_reports,
            "tls": {
                "reports": self.tls_reports,
                "successful_sessions": self.tls_successful_sessions,
                "failed_sessions": self.tls_failed_sessions,
            },
        }


def _sum_when(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, _R.count), else_=0)), 0)


def _measures() -> list[Any]:
    return [
        func.count(func.distinct(_R.report_pk)),
        func.coalesce(func.sum(_R.count), 0),
        _sum_when(or_(_R.dkim == "pass", _R.spf == "pass")),
        _sum_when(_R.dkim == "pass"),
        _sum_when(_R.spf == "pass"),
        *(_sum_when(_R.disposition == d) for d in DISPOSITIONS),
    ]


def _row(key: str, values: Any) -> SummaryRow:
    numbers = [int(v or 0) for v in values]
    return SummaryRow(
        key=key,
        reports=numbers[0],
        messages=numbers[1],
        dmarc_pass=numbers[2],
        dkim_aligned=numbers[3],
        spf_aligned=numbers[4],
        dispositions={d: n for d, n in zip(DISPOSITIONS, numbers[5:], strict=True) if n},
    )


def summarize(
    engine: Engine,
    *,
    by: Grouping = "ip",
    domain: str | None = None,
    since: date | None = None,
    limit: int | None = 50,
) -> DmarcSummary:
    """Totals and per-group rows over the stored aggregate reports, restricted to ``domain``
    (the report's policy domain or the record's header-from domain) and to days from ``since``
    on. ``limit`` None: every group."""
    domain = domain.lower().rstrip(".") if domain else None
    conditions: list[ColumnElement[bool]] = []
    if domain:
        conditions.append(or_(_R.policy_domain == domain, _R.header_from == domain))
    if since:
        conditions.append(_R.day >= since)
    where = and_(true(), *conditions)
    column = {"ip": _R.source_ip, "domain": _R.header_from, "day": _R.day}[by]
    grouped = select(column, *_measures()).where(where).group_by(column)
    messages = func.coalesce(func.sum(_R.count), 0)
    grouped = grouped.order_by(column) if by == "day" else grouped.order_by(messages.desc(), column)
    with engine.connect() as connection:
        totals = _row("all", connection.execute(select(*_measures()).where(where)).one())
        groups = connection.execute(
            select(func.count()).select_from(
                select(column).where(where).group_by(column).subquery()
            )
        ).scalar_one()
        if limit is not None:
            grouped = grouped.limit(limit)
        rows = tuple(_row(str(key), values) for key, *values in connection.execute(grouped).all())
        failures = _failure_count(connection, domain, since)
        tls = _tls_totals(connection, domain, since)
    return DmarcSummary(
        by=by,
        domain=domain,
        since=since,
        totals=totals,
        rows=rows,
        groups=int(groups),
        failure_reports=failures,
        tls_reports=tls[0],
        tls_successful_sessions=tls[1],
        tls_failed_sessions=tls[2],
    )


def _failure_count(connection: Any, domain: str | None, since: date | None) -> int:
    record = DmarcFailureReportRecord
    query = select(func.count()).select_from(record)
    if domain:
        query = query.where(record.reported_domain == domain)
    if since:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        query = query.where(
            or_(
                record.arrival_date >= start,
                and_(record.arrival_date.is_(None), record.created_at >= start),
            )
        )
    return int(connection.execute(query).scalar_one())


def _tls_totals(connection: Any, domain: str | None, since: date | None) -> tuple[int, int, int]:
    query = select(TlsReportRecord.policies)
    if since:
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        query = query.where(TlsReportRecord.begin >= start)
    reports = successful = failed = 0
    for (policies,) in connection.execute(query):
        matching = [p for p in policies if not domain or p.get("policy_domain") == domain]
        if not matching:
            continue
        reports += 1
        successful += sum(int(p.get("successful_sessions", 0)) for p in matching)
        failed += sum(int(p.get("failed_sessions", 0)) for p in matching)
    return reports, successful, failed
