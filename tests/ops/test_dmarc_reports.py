"""DMARC aggregate, DMARC failure and SMTP TLS reports: every shared sample parses or is
refused with a clear error, fields agree with two independent parsers (parsedmarc 11.1.0 and
mail-auth) except where docs/dmarc-reports.md says we differ, storage is idempotent, summaries
add up, and hostile files end in ReportError, never a crash or a hang."""

from __future__ import annotations

import gzip
import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from postwise.core.db import (
    DmarcAggregateReportRecord,
    DmarcAggregateRowRecord,
    DmarcFailureReportRecord,
    EventRecord,
    TlsReportRecord,
    open_database,
)
from postwise.core.errors import PostwiseError
from postwise.ops.dmarc_reports import (
    AggregateReport,
    FailureReport,
    ReportError,
    TlsReport,
    parse_report,
)
from postwise.ops.dmarc_store import store_report
from postwise.ops.dmarc_summary import summarize

# The shared data folder sits beside the repository (../shared/data/dmarc, see its README.md).
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dmarc"
PARSEDMARC = DATA / "parsedmarc"
EXPECTED = PARSEDMARC / "expected-parsedmarc-11.1.0"
MAIL_AUTH = DATA / "mail-auth"

needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"shared DMARC samples not found at {DATA}"
)

# Samples refused on purpose, and the words their error must contain (docs/dmarc-reports.md).
REJECTED = {
    "parsedmarc/samples/aggregate/invalid_xml.xml": (
        "not well-formed XML: not well-formed (invalid token): line 5, column 17"
    ),
    "parsedmarc/samples/aggregate/invalid_utf_8.xml": (
        "not well-formed XML: not well-formed (invalid token): line 31, column 24"
    ),
    "parsedmarc/samples/aggregate_invalid/report_with_upper_cased_pass.xml": (
        "record[1]/auth_results/dkim[1]/result: 'Pass' is not one of none, pass, fail"
    ),
    "parsedmarc/samples/empty.xml": "the file is empty",
    "mail-auth/tlsrpt/rpt03.json": "policies[0].policy.policy-domain: is missing",
}


def _sample_files() -> list[str]:
    if not DATA.is_dir():
        return []
    files = [
        path
        for path in sorted((PARSEDMARC / "samples").rglob("*")) + sorted(MAIL_AUTH.rglob("*"))
        if path.is_file()
        and not path.name.startswith("LICENSE")
        # mail-auth's dmarc-feedback/*.json are its expected output, not reports
        and not (path.parent.name == "dmarc-feedback" and path.suffix == ".json")
    ]
    return [path.relative_to(DATA).as_posix() for path in files]


SAMPLES = _sample_files()


def _parse(relative: str) -> list[Any]:
    return parse_report((DATA / relative).read_bytes(), relative)


def _one(relative: str) -> Any:
    [report] = _parse(relative)
    return report


# --------------------------------------------------------------------------- every sample


@needs_data
def test_the_sample_folders_are_all_there() -> None:
    assert len(SAMPLES) == 49
    assert set(REJECTED) <= set(SAMPLES)


@needs_data
@pytest.mark.parametrize("relative", SAMPLES)
def test_every_sample_parses_or_is_refused_with_a_clear_error(relative: str) -> None:
    if relative in REJECTED:
        with pytest.raises(ReportError) as caught:
            _parse(relative)
        assert isinstance(caught.value, PostwiseError)
        assert str(caught.value).startswith(f"{relative}: ")
        assert REJECTED[relative] in str(caught.value)
        return
    reports = _parse(relative)
    assert reports
    for report in reports:
        json.dumps(report.to_json())  # everything stored is plain JSON
        assert report.key


# --------------------------------------------------------------------------- parsedmarc oracle


def _expected(kind: str) -> list[str]:
    if not DATA.is_dir():
        return []
    found = []
    for path in sorted(EXPECTED.rglob("*.json")):
        relative = "parsedmarc/samples/" + path.relative_to(EXPECTED).as_posix()[: -len(".json")]
        document = json.loads(path.read_text())
        if document.get("report_type") == kind and relative not in REJECTED:
            found.append(relative)
    return found


def _oracle(relative: str) -> dict[str, Any]:
    path = EXPECTED / (relative.removeprefix("parsedmarc/samples/") + ".json")
    report: dict[str, Any] = json.loads(path.read_text())["report"]
    return report


def _utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else None


@needs_data
def test_parsedmarc_accepts_what_we_refuse_and_fails_only_on_the_empty_file() -> None:
    # The documented difference: parsedmarc recovers broken XML (and mangles it: the org email
    # of invalid_xml.xml becomes "@bad-xml.net>") and lower-cases "Pass"; we refuse both.
    assert _oracle("parsedmarc/samples/aggregate/invalid_xml.xml")["report_metadata"][
        "org_email"
    ] == ("@bad-xml.net>")
    empty = json.loads((EXPECTED / "empty.xml.json").read_text())
    assert empty["error_type"] == "ParserError"


@needs_data
@pytest.mark.parametrize("relative", _expected("aggregate"))
def test_aggregate_fields_agree_with_parsedmarc(relative: str) -> None:
    ours: AggregateReport = _one(relative)
    theirs = _oracle(relative)
    meta = theirs["report_metadata"]
    # parsedmarc lower-cases org names that look like domains ("Outlook.com")
    assert ours.org_name.lower() == meta["org_name"].lower()
    assert ours.email == meta["org_email"]
    assert ours.extra_contact_info == meta["org_extra_contact_info"]
    assert ours.report_id == meta["report_id"]
    assert _utc(ours.begin) == meta["begin_date"]
    assert _utc(ours.end) == meta["end_date"]
    assert ours.generator == meta["generator"]
    if ours.namespace:  # parsedmarc also names prefixed namespaces (xmlns:xsd); we do not
        assert ours.namespace == theirs["xml_namespace"]
    published = theirs["policy_published"]
    policy = ours.policy
    assert policy.domain == published["domain"]
    assert policy.p == published["p"]
    # parsedmarc fills in defaults the report left out: adkim/aspf "r", sp = p
    assert (policy.adkim or "r", policy.aspf or "r") == (published["adkim"], published["aspf"])
    assert (policy.sp or policy.p) == published["sp"]
    assert policy.np == published["np"]
    assert policy.fo == published["fo"]
    assert (str(policy.pct) if policy.pct is not None else None) == published["pct"]
    assert policy.testing == published["testing"]
    assert policy.discovery_method == published["discovery_method"]
    assert len(ours.records) == len(theirs["records"])
    for record, expected in zip(ours.records, theirs["records"], strict=True):
        _same_record(record, expected)


def _same_record(record: Any, expected: dict[str, Any]) -> None:
    assert record.source_ip == expected["source"]["ip_address"]
    assert record.count == expected["count"]
    evaluated = expected["policy_evaluated"]
    assert (record.disposition, record.dkim, record.spf) == (
        evaluated["disposition"],
        evaluated["dkim"],
        evaluated["spf"],
    )
    assert record.dmarc_pass == expected["alignment"]["dmarc"]
    assert (record.dkim == "pass", record.spf == "pass") == (
        expected["alignment"]["dkim"],
        expected["alignment"]["spf"],
    )
    # parsedmarc keeps an empty <reason> as {type: None, comment: None}; we read it as absent
    reasons = [r for r in evaluated["policy_override_reasons"] if r["type"] or r["comment"]]
    assert [r.to_json() for r in record.reasons] == reasons
    identifiers = expected["identifiers"]
    assert record.header_from == identifiers["header_from"]
    assert record.envelope_to == identifiers["envelope_to"]
    # parsedmarc fills a missing envelope_from with the SPF result's domain
    spf_domains = [r.domain for r in record.spf_results if r.domain]
    fallback = spf_domains[0] if spf_domains else None
    assert (record.envelope_from or fallback) == identifiers["envelope_from"]
    # parsedmarc drops results without a domain and fills selector "none" and scope "mfrom"
    assert [
        {**r.to_json(), "selector": r.selector or "none"} for r in record.dkim_results if r.domain
    ] == expected["auth_results"]["dkim"]
    assert [
        {**r.to_json(), "scope": r.scope or "mfrom"} for r in record.spf_results if r.domain
    ] == expected["auth_results"]["spf"]


@needs_data
@pytest.mark.parametrize("relative", _expected("failure"))
def test_failure_fields_agree_with_parsedmarc(relative: str) -> None:
    ours: FailureReport = _one(relative)
    theirs = _oracle(relative)
    sample = theirs["parsed_sample"]
    assert ours.feedback_type == theirs["feedback_type"]
    assert ours.reported_domain == theirs["reported_domain"]
    assert ours.source_ip == theirs["source"]["ip_address"]
    assert _utc(ours.arrival_date) == theirs["arrival_date_utc"]
    assert list(ours.auth_failure) == theirs["auth_failure"]
    assert ours.authentication_results == theirs["authentication_results"]
    assert ours.dkim_domain == theirs["dkim_domain"]
    assert ours.user_agent == theirs["user_agent"]
    assert ours.version == theirs["version"]
    assert ours.original_envelope_id == theirs["original_envelope_id"]
    # we keep the address without angle brackets
    mail_from = theirs["original_mail_from"]
    assert ours.original_mail_from == (mail_from.strip("<>").lower() if mail_from else None)
    rcpt_to = theirs["original_rcpt_to"]
    assert list(ours.original_rcpt_to) == ([rcpt_to] if rcpt_to else [])
    # Delivery-Result as reported; parsedmarc maps it onto delivered/spam/policy/reject/other
    delivery = {"smg-policy-action": "policy", None: "other"}
    assert delivery.get(ours.delivery_result, ours.delivery_result) == theirs["delivery_result"]
    alignment = [] if ours.identity_alignment in (None, "none") else ours.identity_alignment
    assert (alignment.split(",") if alignment else []) == theirs["authentication_mechanisms"]
    assert ours.message_id == theirs.get("message_id", sample["message-id"])
    assert ours.subject == sample["subject"]
    assert ours.header_from == sample["from"]["address"]
    assert ours.sample_headers_only == theirs["sample_headers_only"]
    assert ours.sample_headers and "Subject:" in ours.sample_headers


@needs_data
@pytest.mark.parametrize("relative", _expected("smtp_tls"))
def test_tls_fields_agree_with_parsedmarc(relative: str) -> None:
    ours: TlsReport = _one(relative)
    theirs = _oracle(relative)
    assert ours.organization_name == theirs["organization_name"]
    assert ours.report_id == theirs["report_id"]
    assert ours.contact_info == theirs["contact_info"]
    assert ours.begin == datetime.fromisoformat(theirs["begin_date"])
    assert ours.end == datetime.fromisoformat(theirs["end_date"])
    assert len(ours.policies) == len(theirs["policies"])
    names = {"additional_information": "additional_info_uri"}
    for policy, expected in zip(ours.policies, theirs["policies"], strict=True):
        assert policy.policy_domain == expected["policy_domain"]
        assert policy.policy_type == expected["policy_type"]
        assert list(policy.policy_strings) == expected.get("policy_strings", [])
        assert policy.successful_sessions == expected["successful_session_count"]
        assert policy.failed_sessions == expected["failed_session_count"]
        details = [
            {
                names.get(k) or k: v
                for k, v in {**d.to_json(), "failed_session_count": d.failed_sessions}.items()
                if v is not None and k != "failed_sessions"
            }
            for d in policy.failure_details
        ]
        assert details == expected.get("failure_details", [])


# --------------------------------------------------------------------------- mail-auth oracle

MAIL_AUTH_AGGREGATE = [f"{n:03d}" for n in (1, 2, 3, 4, 5, 100, 101, 102, 103, 104)]
_ENUM = {"Unspecified": None, "Relaxed": "r", "Strict": "s", "MailFrom": "mfrom"}


def _enum(value: str | None) -> str | None:
    """mail-auth's enum names ("TrustedForwarder", "Pass") as the XML spells them."""
    if value is None or value in _ENUM:
        return _ENUM.get(value) if value else None
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in value).lstrip("_")


@needs_data
@pytest.mark.parametrize("number", MAIL_AUTH_AGGREGATE)
def test_aggregate_fields_agree_with_mail_auth(number: str) -> None:
    folder = MAIL_AUTH / "dmarc-feedback"
    source = f"{number}.xml" if (folder / f"{number}.xml").exists() else f"{number}.eml"
    ours: AggregateReport = _one(f"mail-auth/dmarc-feedback/{source}")
    theirs = json.loads((folder / f"{number}.json").read_text())
    assert float(ours.version or 0) == theirs["version"]
    meta = theirs["report_metadata"]
    assert (ours.org_name, ours.email, ours.report_id) == (
        meta["org_name"],
        meta["email"],
        meta["report_id"],
    )
    assert ours.extra_contact_info == meta["extra_contact_info"]
    assert ours.begin == datetime.fromtimestamp(meta["date_range"]["begin"], UTC)
    assert ours.end == datetime.fromtimestamp(meta["date_range"]["end"], UTC)
    assert list(ours.errors) == meta["error"]
    assert ours.generator == meta.get("generator")
    published = theirs["policy_published"]
    policy = ours.policy
    assert policy.domain == published["domain"]
    for name in ("adkim", "aspf", "p", "sp", "np", "discovery_method"):
        assert getattr(policy, name) == _enum(published.get(name)), name
    assert (policy.testing == "y") == published["testing"]
    assert policy.fo == published["fo"]
    assert len(ours.records) == len(theirs["record"])
    for record, expected in zip(ours.records, theirs["record"], strict=True):
        row = expected["row"]
        evaluated = row["policy_evaluated"]
        assert (record.source_ip, record.count) == (row["source_ip"], row["count"])
        assert record.disposition == _enum(evaluated["disposition"])
        assert (record.dkim, record.spf) == (_enum(evaluated["dkim"]), _enum(evaluated["spf"]))
        # mail-auth maps reason types RFC 9990 dropped ("sampled_out") to Other; we keep them
        assert [
            (r.type if r.type != "sampled_out" else "other", r.comment) for r in record.reasons
        ] == [(_enum(r["type_"]), r["comment"]) for r in evaluated["reason"]]
        identifiers = expected["identifiers"]
        assert record.header_from == identifiers["header_from"]
        assert record.envelope_from == (identifiers["envelope_from"] or None)
        assert record.envelope_to == identifiers["envelope_to"]
        assert [(r.domain, r.selector, r.result, r.human_result) for r in record.dkim_results] == [
            (d["domain"], d["selector"] or None, _enum(d["result"]), d["human_result"])
            for d in expected["auth_results"]["dkim"]
        ]
        assert [(r.domain, r.scope, r.result, r.human_result) for r in record.spf_results] == [
            (s["domain"], _enum(s["scope"]), _enum(s["result"]), s["human_result"])
            for s in expected["auth_results"]["spf"]
        ]


@needs_data
@pytest.mark.parametrize("name", ["rpt01", "rpt02"])
def test_tls_report_mails_agree_with_mail_auth(name: str) -> None:
    from_mail: TlsReport = _one(f"mail-auth/tlsrpt/{name}.eml")
    from_json: TlsReport = _one(f"mail-auth/tlsrpt/{name}.json")
    assert from_mail == from_json  # mail-auth's own check: the attachment is the JSON
    theirs = json.loads((MAIL_AUTH / "tlsrpt" / f"{name}.json").read_text())
    assert from_mail.organization_name == theirs["organization-name"]
    assert from_mail.report_id == theirs["report-id"]
    assert from_mail.contact_info == theirs["contact-info"]
    assert from_mail.begin == datetime.fromisoformat(theirs["date-range"]["start-datetime"])
    for policy, expected in zip(from_mail.policies, theirs["policies"], strict=True):
        assert policy.policy_type == expected["policy"]["policy-type"]
        assert policy.policy_domain == expected["policy"]["policy-domain"]
        assert list(policy.policy_strings) == expected["policy"]["policy-string"]
        assert list(policy.mx_hosts) == expected["policy"].get("mx-host", [])
        assert policy.successful_sessions == expected["summary"]["total-successful-session-count"]
        assert policy.failed_sessions == expected["summary"]["total-failure-session-count"]
        assert [
            (d.result_type, d.failed_sessions, d.sending_mta_ip, d.receiving_ip)
            for d in policy.failure_details
        ] == [
            (
                d["result-type"],
                d["failed-session-count"],
                d.get("sending-mta-ip"),
                d.get("receiving-ip"),
            )
            for d in expected["failure-details"]
        ]


# --------------------------------------------------------------------------- tolerances


@needs_data
def test_tolerated_quirks_are_noted_on_the_report() -> None:
    ikea = _one("parsedmarc/samples/aggregate/ikea.com!example.de!1538690400!1538776800.xml")
    assert "ignored markup outside <feedback>" in ikea.notes[0]
    unnamed = _one("parsedmarc/samples/aggregate/!example.com!1538204542!1538463818.xml")
    assert unnamed.org_name == "accurateplastics.com"
    assert "org_name was empty" in unnamed.notes[0]
    empty_reason = _one("parsedmarc/samples/aggregate/empty_reason.xml")
    assert empty_reason.records[0].reasons == ()
    assert "reason[1] is empty" in empty_reason.notes[0]
    rfc8460 = _one("parsedmarc/samples/smtp_tls/rfc8460.json")
    assert rfc8460.notes == (
        "policies[0].policy.mx-host is a string, not a list: read as a list of one",
    )
    netease = _one("parsedmarc/samples/failure/[Netease DMARC Failure Report] Rent Reminder.eml")
    assert netease.notes == ("no Auth-Failure field: taken as a DMARC failure",)
    exim = _one("parsedmarc/samples/failure/exim_plain_text_only_no_arf_part.eml")
    assert exim.notes == (
        "plain-text failure report without an ARF part",
        "DMARC Results: None, Accept",
    )
    assert exim.identity_alignment == "none"


@needs_data
def test_rfc9990_fields_are_read() -> None:
    report = _one("parsedmarc/samples/aggregate/rfc9990-sample.xml")
    assert report.namespace == "urn:ietf:params:xml:ns:dmarc-2.0"
    assert report.generator == "Example DMARC Aggregate Reporter v1.2"
    assert (report.policy.np, report.policy.testing, report.policy.discovery_method) == (
        "none",
        "n",
        "treewalk",
    )
    assert report.records[0].disposition == "pass"


@needs_data
def test_the_same_report_in_any_container_is_the_same_report() -> None:
    folder = "parsedmarc/samples/extract_report"
    plain, gz, zipped = (_one(f"{folder}/nice-input.xml{suffix}") for suffix in ("", ".gz", ".zip"))
    assert plain == gz == zipped
    assert plain.content_sha256 == gz.content_sha256 == zipped.content_sha256
    lf = _one("parsedmarc/samples/failure/dmarc_ruf_report_linkedin.eml")
    crlf = _one("parsedmarc/samples/failure/dmarc_ruf_report_linkedin.crlf.eml")
    assert lf.key == crlf.key  # line endings do not make another report


# --------------------------------------------------------------------------- built reports


def aggregate_xml(
    org: str,
    report_id: str,
    begin: int,
    records: list[tuple[str, int, str, str, str, str]],
    *,
    domain: str = "example.com",
) -> bytes:
    """A minimal RFC 7489 report; records are (ip, count, disposition, dkim, spf, header_from)."""
    rows = "".join(
        f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
        f"<disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf>"
        f"</policy_evaluated></row><identifiers><header_from>{header_from}</header_from>"
        f"</identifiers><auth_results><spf><domain>{header_from}</domain><result>{spf}</result>"
        "</spf></auth_results></record>"
        for ip, count, disposition, dkim, spf, header_from in records
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feedback><version>1.0</version>'
        f"<report_metadata><org_name>{org}</org_name><email>dmarc@{org}</email>"
        f"<report_id>{report_id}</report_id><date_range><begin>{begin}</begin>"
        f"<end>{begin + 86399}</end></date_range></report_metadata>"
        f"<policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p>"
        f"</policy_published>{rows}</feedback>"
    ).encode()


DAY_ONE = 1767225600  # 2026-01-01T00:00:00Z
DAY_TWO = DAY_ONE + 86400
KNOWN = aggregate_xml(
    "receiver.example",
    "r-1",
    DAY_ONE,
    [
        ("192.0.2.1", 10, "none", "pass", "fail", "example.com"),
        ("192.0.2.2", 5, "quarantine", "fail", "fail", "example.com"),
        ("192.0.2.1", 3, "none", "fail", "pass", "mail.example.com"),
    ],
)
KNOWN_LATER = aggregate_xml(
    "other.example", "o-7", DAY_TWO, [("198.51.100.7", 2, "reject", "fail", "fail", "example.com")]
)
TLS_JSON = json.dumps(
    {
        "organization-name": "Sender Inc.",
        "date-range": {
            "start-datetime": "2026-01-01T00:00:00Z",
            "end-datetime": "2026-01-01T23:59:59Z",
        },
        "contact-info": "tlsrpt@sender.example",
        "report-id": "2026-01-01_example.com",
        "policies": [
            {
                "policy": {"policy-type": "sts", "policy-domain": "example.com"},
                "summary": {
                    "total-successful-session-count": 40,
                    "total-failure-session-count": 2,
                },
                "failure-details": [
                    {"result-type": "certificate-expired", "failed-session-count": 2}
                ],
            }
        ],
    }
).encode()


def arf_report(
    source_ip: str = "203.0.113.9", domain: str = "example.com", kind: str = "auth-failure"
) -> bytes:
    """An ARF auth-failure report with a headers-only sample."""
    message = EmailMessage()
    message["From"] = "dmarc-reports@receiver.example"
    message["To"] = f"ruf@{domain}"
    message["Subject"] = f"DMARC failure report for {domain}"
    message.set_content("A message claiming to be from you failed DMARC.\n")
    report = (
        f"Feedback-Type: {kind}\nUser-Agent: test/1.0\nVersion: 1\n"
        f"Original-Mail-From: <bounce@{domain}>\nArrival-Date: Thu, 01 Jan 2026 10:00:00 +0000\n"
        f"Source-IP: {source_ip}\nReported-Domain: {domain}\nAuth-Failure: dmarc\n"
        f"Authentication-Results: receiver.example; dmarc=fail header.from={domain}\n"
    )
    message.add_attachment(report.encode(), maintype="message", subtype="feedback-report")
    headers = f"From: Ann <ann@{domain}>\nSubject: Invoice\nMessage-ID: <1@spoof.example>\n"
    message.add_attachment(headers.encode(), maintype="text", subtype="rfc822-headers")
    message.set_type("multipart/report")
    message.set_param("report-type", "feedback-report")
    return message.as_bytes()


def report_mail(attachment: bytes, filename: str, content_type: str) -> bytes:
    message = EmailMessage()
    message["From"] = "noreply-dmarc@receiver.example"
    message["Subject"] = "Report domain: example.com"
    message.set_content("This is an aggregate report.\n")
    maintype, subtype = content_type.split("/")
    if maintype == "text":
        message.add_attachment(attachment.decode(), subtype=subtype, filename=filename)
    else:
        message.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_built_report_parses_in_every_container() -> None:
    [plain] = parse_report(KNOWN, "known.xml")
    assert isinstance(plain, AggregateReport)
    assert plain.messages == 18 and plain.begin == datetime(2026, 1, 1, tzinfo=UTC)
    containers = {
        "known.xml.gz": gzip.compress(KNOWN),
        "known.zip": zipped({"known.xml": KNOWN}),
        "known.eml": report_mail(gzip.compress(KNOWN), "known.xml.gz", "application/gzip"),
        "known-zip.eml": report_mail(zipped({"k.xml": KNOWN}), "k.zip", "application/zip"),
        "padded.gz": gzip.compress(KNOWN) + b"\r\n",
        "two-members.gz": gzip.compress(KNOWN[:100]) + gzip.compress(KNOWN[100:]),
        "utf-16.xml": KNOWN.replace(b"UTF-8", b"UTF-16").decode().encode("utf-16"),
    }
    for name, data in containers.items():
        assert parse_report(data, name) == [plain], name


def test_a_declared_single_byte_encoding_is_read() -> None:
    latin = KNOWN.replace(b"UTF-8", b"windows-1252").replace(
        b"<org_name>receiver.example", "<org_name>Empfänger GmbH".encode("cp1252")
    )
    assert parse_report(latin, "latin.xml")[0].org_name == "Empfänger GmbH"
    with pytest.raises(ReportError, match="XML in an unsupported encoding"):
        parse_report(KNOWN.replace(b"UTF-8", b"no-such-codec"), "codec.xml")


def test_a_mail_with_two_reports_gives_both() -> None:
    archive = zipped({"a.xml": KNOWN, "b.xml": KNOWN_LATER, "__MACOSX/._a.xml": b"\x00\x05"})
    reports = parse_report(archive, "two.zip")
    assert [r.key for r in reports] == ["receiver.example/r-1", "other.example/o-7"]


def test_a_failure_report_keeps_headers_only() -> None:
    [report] = parse_report(arf_report(), "ruf.eml")
    assert isinstance(report, FailureReport)
    assert (report.reported_domain, report.source_ip) == ("example.com", "203.0.113.9")
    assert report.original_mail_from == "bounce@example.com"
    assert report.arrival_date == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert report.subject == "Invoice" and report.header_from == "ann@example.com"
    assert report.sample_headers_only is True


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<feedback><report_metadata/></feedback>", "report_metadata/org_name: is empty"),
        (
            KNOWN.replace(b"<count>10</count>", b"<count>ten</count>"),
            "record[1]/row/count: 'ten' is not a whole number",
        ),
        (
            KNOWN.replace(b"192.0.2.2", b"192.0.2.300"),
            "record[2]/row/source_ip: '192.0.2.300' is not an IP address",
        ),
        (
            KNOWN.replace(b"<p>reject</p>", b"<p>Reject</p>"),
            "policy_published/p: 'Reject' is not one of none, quarantine, reject",
        ),
        (KNOWN.replace(b"<record>", b"<rec>").replace(b"</record>", b"</rec>"), "no <record>"),
        (b"<html><body>hi</body></html>", "the root element is <html>, not <feedback>"),
        (b'{"policies": 3, "organization-name": "x"}', "date-range: is null, not an object"),
        (b'{"hello": "world"}', "not an SMTP TLS report"),
        (b"{not json", "not valid JSON"),
        (
            TLS_JSON.replace(b"Sender Inc.", b"Sender\\u0000Inc."),
            "report.organization-name: contains a NUL character",
        ),
        (arf_report(kind="abuse"), "Feedback-Type 'abuse'"),
        (arf_report(source_ip="nowhere"), "Source-IP 'nowhere' is not an IP address"),
        (report_mail(b"hello", "notes.txt", "text/plain"), "without a DMARC or TLS report"),
        (b"\x00\x01binary", "not a report: neither XML, JSON, gzip, zip nor a mail message"),
    ],
)
def test_invalid_reports_say_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(ReportError) as caught:
        parse_report(data, "bad-file")
    assert str(caught.value).startswith("bad-file")
    assert reason in str(caught.value)


# --------------------------------------------------------------------------- hostile input

LIMIT = "decompresses to more than 50 MB"


def test_a_gzip_bomb_is_stopped_at_the_limit() -> None:
    bomb = gzip.compress(b"<feedback>" + b"\x00" * (51 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    with pytest.raises(ReportError, match=LIMIT):
        parse_report(bomb, "bomb.xml.gz")


def test_a_zip_bomb_is_stopped_at_the_limit() -> None:
    bomb = zipped({"report.xml": b"<feedback>" + b"\x00" * (60 * 1024 * 1024)})
    assert len(bomb) < 200_000
    with pytest.raises(ReportError, match=LIMIT):
        parse_report(bomb, "bomb.zip")


def test_the_limit_can_be_lowered() -> None:
    with pytest.raises(ReportError, match="more than 1000 bytes"):
        parse_report(gzip.compress(KNOWN), "small.gz", max_decompressed_bytes=1000)


def test_nested_containers_stop_at_four() -> None:
    data = KNOWN
    for _ in range(5):
        data = gzip.compress(data)
    with pytest.raises(ReportError, match="containers nested more than 4 deep"):
        parse_report(data, "russian-doll.gz")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<feedback><report_metadata><org_name>&lol3;</org_name></report_metadata></feedback>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_dtds_are_refused(document: bytes) -> None:
    with pytest.raises(ReportError, match="has a DOCTYPE"):
        parse_report(document, "entities.xml")
    with pytest.raises(ReportError, match="has a DOCTYPE"):
        parse_report(gzip.compress(document), "entities.xml.gz")


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ReportError, match="deeper than 64 levels"):
        parse_report(b"<feedback>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</feedback>", "d")
    with pytest.raises(ReportError, match="JSON nested too deeply"):
        parse_report(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deep.json")


@pytest.mark.parametrize(
    "text",
    ["\n" * 200_000, "a" * 200_000, "Sender Domain:" + " " * 200_000, "<feedback" * 50_000],
    ids=["blank-lines", "one-long-word", "long-padding", "many-open-tags"],
)
def test_pathological_text_is_read_in_linear_time(text: str) -> None:
    started = time.monotonic()
    for data in (report_mail(text.encode(), "notes.txt", "text/plain"), text.encode()):
        with pytest.raises(ReportError):
            parse_report(data, "slow")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("cut", [10, 30, 0.5, 0.9, -9])
def test_truncated_archives_are_refused(cut: float) -> None:
    gz, archive = gzip.compress(KNOWN), zipped({"known.xml": KNOWN})
    for data, name in ((gz, "cut.xml.gz"), (archive, "cut.zip")):
        end = int(len(data) * cut) if isinstance(cut, float) else cut
        with pytest.raises(ReportError) as caught:
            parse_report(data[:end], name)
        assert str(caught.value).startswith(name)


def test_truncated_gzip_and_zip_name_the_fault() -> None:
    with pytest.raises(ReportError, match="the gzip stream is truncated"):
        parse_report(gzip.compress(KNOWN)[:-12], "cut.gz")
    with pytest.raises(ReportError, match="not a readable zip archive"):
        parse_report(zipped({"known.xml": KNOWN})[:-30], "cut.zip")
    with pytest.raises(ReportError, match="unexpected data after the gzip stream"):
        parse_report(gzip.compress(KNOWN) + b"garbage", "tail.gz")
    with pytest.raises(ReportError, match="corrupt gzip data"):
        parse_report(b"\x1f\x8b\x08\x00" + b"\xff" * 64, "corrupt.gz")


FUZZ = settings(
    max_examples=300,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PREFIXES = [b"", b"<", b"<feedback>", b"{", b"\x1f\x8b\x08\x00", b"PK\x03\x04", b"From: a@b\n\n"]


def _never_crashes(data: bytes) -> None:
    try:
        reports = parse_report(data, "fuzz")
    except ReportError as error:
        assert str(error).startswith("fuzz")
        return
    for report in reports:
        json.dumps(report.to_json())


@FUZZ
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048))
def test_random_bytes_give_reports_or_report_error(prefix: bytes, body: bytes) -> None:
    _never_crashes(prefix + body)


@FUZZ
@given(
    container=st.sampled_from(["xml", "gz", "zip", "eml", "tls", "arf"]),
    position=st.integers(min_value=0, max_value=10_000),
    junk=st.binary(min_size=0, max_size=8),
    keep=st.booleans(),
)
def test_damaged_reports_give_reports_or_report_error(
    container: str, position: int, junk: bytes, keep: bool
) -> None:
    data = {
        "xml": KNOWN,
        "gz": gzip.compress(KNOWN),
        "zip": zipped({"k.xml": KNOWN}),
        "eml": report_mail(gzip.compress(KNOWN), "k.xml.gz", "application/gzip"),
        "tls": TLS_JSON,
        "arf": arf_report(),
    }[container]
    cut = position % (len(data) + 1)
    tail = data[cut + len(junk) :] if keep else b""
    _never_crashes(data[:cut] + junk + tail)


# --------------------------------------------------------------------------- storage + summary


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_database(f"sqlite:///{tmp_path / 'reports.sqlite3'}")
    yield engine
    engine.dispose()


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_storing_the_same_report_twice_stores_it_once(engine: Engine) -> None:
    reports = [
        *parse_report(KNOWN, "known.xml"),
        *parse_report(arf_report(), "ruf.eml"),
        *parse_report(TLS_JSON, "tls.json"),
    ]
    first = [store_report(engine, report, "first") for report in reports]
    again = [store_report(engine, report, "again") for report in reports]
    gzipped = store_report(engine, parse_report(gzip.compress(KNOWN), "known.gz")[0], "gz")
    assert [r.stored for r in first] == [True, True, True]
    assert [r.status for r in again] == ["already stored"] * 3
    assert all(r.same_content for r in again) and not gzipped.stored
    assert _count(engine, DmarcAggregateReportRecord) == 1
    assert _count(engine, DmarcAggregateRowRecord) == 3
    assert _count(engine, DmarcFailureReportRecord) == 1
    assert _count(engine, TlsReportRecord) == 1
    with engine.connect() as connection:
        events = connection.execute(select(EventRecord.type, EventRecord.payload)).all()
    assert sorted(e.type for e in events) == [
        "dmarc_aggregate_report",
        "dmarc_failure_report",
        "tls_report",
    ]
    aggregate = next(e.payload for e in events if e.type == "dmarc_aggregate_report")
    assert (aggregate["messages"], aggregate["dmarc_pass"], aggregate["source"]) == (
        18,
        13,
        "first",
    )


def test_a_different_report_under_a_stored_key_keeps_the_first(engine: Engine) -> None:
    store_report(engine, parse_report(KNOWN, "known.xml")[0], "first")
    changed = KNOWN.replace(b"<count>10</count>", b"<count>11</count>")
    result = store_report(engine, parse_report(changed, "changed.xml")[0], "second")
    assert (result.stored, result.same_content) == (False, False)
    with engine.connect() as connection:
        assert connection.execute(select(DmarcAggregateReportRecord.messages)).scalar_one() == 18


def _stored(engine: Engine) -> None:
    for data, name in ((KNOWN, "k.xml"), (KNOWN_LATER, "l.xml"), (TLS_JSON, "t.json")):
        for report in parse_report(data, name):
            store_report(engine, report, name)
    store_report(engine, parse_report(arf_report(), "ruf.eml")[0], "ruf.eml")


def test_summary_by_ip_adds_up_to_hand_computed_totals(engine: Engine) -> None:
    _stored(engine)
    summary = summarize(engine, by="ip")
    totals = summary.totals.to_json()
    # 10 + 5 + 3 + 2 messages; DMARC passes where DKIM or SPF passed aligned: 10 + 3
    assert totals == {
        "key": "all",
        "reports": 2,
        "messages": 20,
        "dmarc_pass": 13,
        "dmarc_fail": 7,
        "dmarc_pass_rate": 0.65,
        "dkim_aligned": 10,
        "dkim_aligned_rate": 0.5,
        "spf_aligned": 3,
        "spf_aligned_rate": 0.15,
        "dispositions": {"none": 13, "quarantine": 5, "reject": 2},
    }
    rows = {row.key: row for row in summary.rows}
    assert [row.key for row in summary.rows] == ["192.0.2.1", "192.0.2.2", "198.51.100.7"]
    assert (rows["192.0.2.1"].messages, rows["192.0.2.1"].dmarc_pass) == (13, 13)
    assert (rows["192.0.2.1"].dkim_aligned, rows["192.0.2.1"].spf_aligned) == (10, 3)
    assert (rows["192.0.2.2"].dmarc_fail, rows["192.0.2.2"].dispositions) == (5, {"quarantine": 5})
    assert (summary.failure_reports, summary.tls_reports) == (1, 1)
    assert (summary.tls_successful_sessions, summary.tls_failed_sessions) == (40, 2)


def test_summary_by_domain_and_by_day(engine: Engine) -> None:
    _stored(engine)
    by_domain = summarize(engine, by="domain")
    assert [(r.key, r.messages, r.dmarc_pass) for r in by_domain.rows] == [
        ("example.com", 17, 10),
        ("mail.example.com", 3, 3),
    ]
    by_day = summarize(engine, by="day")
    assert [(r.key, r.messages, r.reports) for r in by_day.rows] == [
        ("2026-01-01", 18, 1),
        ("2026-01-02", 2, 1),
    ]


def test_summary_filters_by_domain_since_and_limit(engine: Engine) -> None:
    _stored(engine)
    sub = summarize(engine, domain="Mail.Example.com.")
    assert (sub.domain, sub.totals.messages, sub.failure_reports, sub.tls_reports) == (
        "mail.example.com",
        3,
        0,
        0,
    )
    later = summarize(engine, since=date(2026, 1, 2))
    assert (later.totals.messages, later.totals.dmarc_fail) == (2, 2)
    assert (later.failure_reports, later.tls_reports) == (0, 0)
    top = summarize(engine, limit=1)
    assert (len(top.rows), top.groups, top.totals.messages) == (1, 3, 20)
    empty = summarize(engine, domain="nothing.example")
    assert empty.totals.messages == 0 and empty.totals.to_json()["dmarc_pass_rate"] is None
