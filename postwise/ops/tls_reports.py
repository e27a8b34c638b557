"""SMTP TLS report JSON (RFC 8460) -> :class:`TlsReport`.

Required by the RFC and checked here: ``organization-name``, ``report-id``, ``date-range``
(RFC 3339 date-times), ``policies`` with, for each, ``policy.policy-type`` (``sts``, ``tlsa``
or ``no-policy-found``), ``policy.policy-domain`` and both ``summary`` counts. Result types
in ``failure-details`` are not checked against a list: the IANA registry grows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from postwise.ops.dmarc_types import ReportError, TlsFailureDetail, TlsPolicy, TlsReport

POLICY_TYPES = ("sts", "tlsa", "no-policy-found")
MAX_COUNT = 2**53
MAX_FIELD_CHARS = 255
MAX_TEXT_CHARS = 2000


class _Json:
    """Typed reads from a decoded JSON object, naming the member at fault in every error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notes: list[str] = []

    def fail(self, where: str, reason: str) -> ReportError:
        return ReportError(self.name, f"{where}: {reason}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"is {_kind(value)}, not an object")
        return value

    def string(
        self, parent: dict[str, Any], key: str, where: str, required: bool, limit: int
    ) -> str | None:
        value = parent.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "is missing")
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", f"is {_kind(value)}, not a string")
        value = value.strip()
        if "\x00" in value:
            raise self.fail(f"{where}.{key}", "contains a NUL character")
        if required and not value:
            raise self.fail(f"{where}.{key}", "is empty")
        if len(value) > limit:
            raise self.fail(f"{where}.{key}", f"is {len(value)} characters long (limit {limit})")
        return value or None

    def count(self, parent: dict[str, Any], key: str, where: str) -> int:
        value = parent.get(key)
        if value is None:
            raise self.fail(f"{where}.{key}", "is missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where}.{key}", f"is {_kind(value)}, not a whole number")
        if not 0 <= value <= MAX_COUNT:
            raise self.fail(f"{where}.{key}", f"{value} is out of range")
        return value

    def strings(self, parent: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = parent.get(key)
        if value is None:
            return ()
        if isinstance(value, str):  # RFC 8460's own example gives mx-host as one string
            self.notes.append(f"{where}.{key} is a string, not a list: read as a list of one")
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(f"{where}.{key}", "is not a list of strings")
        return tuple(item.replace("\x00", "")[:MAX_TEXT_CHARS] for item in value)

    def moment(self, parent: dict[str, Any], key: str, where: str) -> datetime:
        text = self.string(parent, key, where, required=True, limit=64)
        assert text is not None
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"{where}.{key}", f"{text!r} is not an RFC 3339 date-time") from None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")


def _detail(reader: _Json, value: Any, where: str) -> TlsFailureDetail:
    detail = reader.obj(value, where)

    def text(key: str, limit: int = MAX_FIELD_CHARS) -> str | None:
        return reader.string(detail, key, where, required=False, limit=limit)

    return TlsFailureDetail(
        result_type=reader.string(detail, "result-type", where, True, MAX_FIELD_CHARS) or "",
        failed_sessions=reader.count(detail, "failed-session-count", where),
        sending_mta_ip=text("sending-mta-ip"),
        receiving_mx_hostname=text("receiving-mx-hostname"),
        receiving_mx_helo=text("receiving-mx-helo"),
        receiving_ip=text("receiving-ip"),
        additional_information=text("additional-information", MAX_TEXT_CHARS),
        failure_reason_code=text("failure-reason-code", MAX_TEXT_CHARS),
    )


def _policy(reader: _Json, value: Any, where: str) -> TlsPolicy:
    entry = reader.obj(value, where)
    policy = reader.obj(entry.get("policy"), f"{where}.policy")
    summary = reader.obj(entry.get("summary"), f"{where}.summary")
    here = f"{where}.policy"
    policy_type = reader.string(policy, "policy-type", here, True, MAX_FIELD_CHARS) or ""
    if policy_type not in POLICY_TYPES:
        raise reader.fail(
            f"{here}.policy-type", f"{policy_type!r} is not one of {', '.join(POLICY_TYPES)}"
        )
    details = entry.get("failure-details", [])
    if not isinstance(details, list):
        raise reader.fail(f"{where}.failure-details", f"is {_kind(details)}, not a list")
    return TlsPolicy(
        policy_type=policy_type,
        policy_domain=(reader.string(policy, "policy-domain", here, True, MAX_FIELD_CHARS) or "")
        .lower()
        .rstrip("."),
        successful_sessions=reader.count(
            summary, "total-successful-session-count", f"{where}.summary"
        ),
        failed_sessions=reader.count(summary, "total-failure-session-count", f"{where}.summary"),
        policy_strings=reader.strings(policy, "policy-string", here),
        mx_hosts=reader.strings(policy, "mx-host", here),
        failure_details=tuple(
            _detail(reader, item, f"{where}.failure-details[{i}]") for i, item in enumerate(details)
        ),
    )


def parse_tls_json(data: bytes, name: str) -> TlsReport:
    """Parse one SMTP TLS report. Raises :class:`ReportError` naming the member at fault when
    the JSON is malformed or a required member is missing or of the wrong type."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ReportError(name, f"not UTF-8 text: {error.reason} at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise ReportError(name, f"not valid JSON: {error}") from None
    except RecursionError:
        raise ReportError(name, "JSON nested too deeply") from None
    reader = _Json(name)
    report = reader.obj(document, "the report")
    if "organization-name" not in report and "policies" not in report:
        raise ReportError(name, "JSON, but not an SMTP TLS report (no organization-name)")
    date_range = reader.obj(report.get("date-range"), "date-range")
    begin = reader.moment(date_range, "start-datetime", "date-range")
    end = reader.moment(date_range, "end-datetime", "date-range")
    if end < begin:
        raise reader.fail("date-range", f"ends ({end}) before it begins ({begin})")
    policies = report.get("policies")
    if not isinstance(policies, list):
        raise reader.fail("policies", "is missing" if policies is None else "is not a list")
    organization = reader.string(report, "organization-name", "report", True, MAX_FIELD_CHARS)
    report_id = reader.string(report, "report-id", "report", True, MAX_FIELD_CHARS)
    parsed = tuple(_policy(reader, item, f"policies[{i}]") for i, item in enumerate(policies))
    contact = reader.string(report, "contact-info", "report", False, MAX_TEXT_CHARS)
    if contact is None:
        reader.notes.append("no contact-info")
    return TlsReport(
        organization_name=organization or "",
        report_id=report_id or "",
        begin=begin.astimezone(UTC),
        end=end.astimezone(UTC),
        policies=parsed,
        contact_info=contact,
        notes=tuple(reader.notes[:10]),
    )
