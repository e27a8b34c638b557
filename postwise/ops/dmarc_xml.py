"""DMARC aggregate report XML -> :class:`AggregateReport`.

Reads RFC 7489 appendix C reports, the pre-RFC draft schema (no ``<version>``) and RFC 9990
reports (namespace ``urn:ietf:params:xml:ns:dmarc-2.0``, ``np``, ``testing``,
``discovery_method``, ``generator``, disposition ``pass``). Element names are matched without
their namespace prefix; unknown elements (RFC 9990 extensions) are ignored.

Reports come from strangers, so the XML front end is expat with every DTD refused: no entity
can be declared, so none can expand (billion laughs) or point outside the document (XXE).
Values the schemas enumerate are checked exactly (``Pass`` is not ``pass``); what is tolerated
instead is listed in ``docs/dmarc-reports.md`` and noted on the report.
"""

from __future__ import annotations

import ipaddress
import pyexpat
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from postwise.ops.dmarc_types import (
    AggregateRecord,
    AggregateReport,
    DkimAuthResult,
    OverrideReason,
    PolicyPublished,
    ReportError,
    SpfAuthResult,
)

MAX_DEPTH = 64
MAX_FIELD_CHARS = 255
MAX_COUNT = 2**53

DISPOSITIONS = ("none", "quarantine", "reject")
DISPOSITIONS_EVALUATED = ("none", "quarantine", "reject", "pass")  # "pass": RFC 9990
POLICY_RESULTS = ("pass", "fail")
ALIGNMENT_MODES = ("r", "s")
DKIM_RESULTS = ("none", "pass", "fail", "policy", "neutral", "temperror", "permerror")
SPF_RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")
SPF_SCOPES = ("helo", "mfrom")
OVERRIDE_TYPES = (
    "forwarded",
    "sampled_out",
    "trusted_forwarder",
    "mailing_list",
    "local_policy",
    "other",
    "policy_test_mode",  # RFC 9990
)
TESTING_VALUES = ("y", "n")
DISCOVERY_METHODS = ("psl", "treewalk")

_FEEDBACK_OPEN = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?feedback[\s>/]")
_FEEDBACK_CLOSE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?feedback\s*>")
_XML_DECLARATION = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*\?>")


class _Refused(Exception):
    """Raised from inside expat callbacks to stop the parse."""


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def parse_xml(data: bytes) -> ET.Element:
    """A tree of ``data`` with namespace prefixes stripped from element names. Raises
    ``_Refused`` for a DTD or nesting beyond ``MAX_DEPTH``, ``pyexpat.ExpatError`` when the
    document is not well-formed."""
    builder = ET.TreeBuilder()
    parser = pyexpat.ParserCreate()
    depth = 0

    def refuse_dtd(*_args: object) -> None:
        raise _Refused(
            "has a DOCTYPE; reports never need one and a DTD can expand entities or fetch "
            "external files, so it is refused"
        )

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _Refused(f"nests elements deeper than {MAX_DEPTH} levels")
        builder.start(_local(name), attributes)

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_local(name))

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    parser.Parse(data, True)
    return builder.close()


def _feedback_only(data: bytes) -> bytes | None:
    """The ``<feedback>`` element of a document that has junk around it (a reporter wraps it
    in an unclosed ``<xs:schema>``), with the XML declaration kept for its encoding."""
    opening = _FEEDBACK_OPEN.search(data)
    closings = list(_FEEDBACK_CLOSE.finditer(data))
    if opening is None or not closings or closings[-1].end() <= opening.start():
        return None
    declaration = _XML_DECLARATION.match(data)
    head = declaration.group(0) if declaration else b""
    inner = data[opening.start() : closings[-1].end()]
    if len(head) + len(inner) >= len(data.strip()):
        return None
    return head + inner


def _parse_tree(data: bytes, name: str) -> tuple[ET.Element, tuple[str, ...]]:
    try:
        return parse_xml(data), ()
    except _Refused as refused:
        raise ReportError(name, f"XML {refused}") from None
    except (LookupError, ValueError) as error:  # an encoding expat cannot read
        raise ReportError(name, f"XML in an unsupported encoding ({error})") from None
    except pyexpat.ExpatError as error:
        first = error
    inner = _feedback_only(data)
    if inner is not None:
        try:
            note = f"ignored markup outside <feedback> (the document is not well-formed: {first})"
            return parse_xml(inner), (note,)
        except (_Refused, pyexpat.ExpatError, LookupError, ValueError):
            pass
    raise ReportError(name, f"not well-formed XML: {first}") from None


# --------------------------------------------------------------------------- field readers


class _Fields:
    """Reads one report's fields, naming the element at fault in every error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notes: list[str] = []

    def fail(self, where: str, reason: str) -> ReportError:
        return ReportError(self.name, f"{where}: {reason}")

    def note(self, text: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(text)

    def text(self, parent: ET.Element, tag: str, where: str, max_chars: int = 0) -> str | None:
        """The stripped text of the first ``tag`` child; None when absent or empty."""
        child = parent.find(tag)
        if child is None:
            return None
        value = "".join(child.itertext()).strip()
        limit = max_chars or MAX_FIELD_CHARS
        if len(value) > limit:
            raise self.fail(f"{where}/{tag}", f"is {len(value)} characters long (limit {limit})")
        return value or None

    def required(self, parent: ET.Element, tag: str, where: str) -> str:
        value = self.text(parent, tag, where)
        if value is None:
            present = parent.find(tag) is not None
            raise self.fail(f"{where}/{tag}", "is empty" if present else "is missing")
        return value

    def element(self, parent: ET.Element, tag: str, where: str) -> ET.Element:
        child = parent.find(tag)
        if child is None:
            raise self.fail(f"{where}/{tag}", "is missing")
        return child

    def choice(
        self, parent: ET.Element, tag: str, where: str, allowed: tuple[str, ...], required: bool
    ) -> str | None:
        value = self.required(parent, tag, where) if required else self.text(parent, tag, where)
        if value is not None and value not in allowed:
            raise self.fail(f"{where}/{tag}", f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def integer(
        self, parent: ET.Element, tag: str, where: str, required: bool, high: int = MAX_COUNT
    ) -> int | None:
        value = self.required(parent, tag, where) if required else self.text(parent, tag, where)
        if value is None:
            return None
        if not value.isascii() or not value.isdigit():
            raise self.fail(f"{where}/{tag}", f"{value!r} is not a whole number")
        number = int(value)
        if number > high:
            raise self.fail(f"{where}/{tag}", f"{number} is larger than {high}")
        return number

    def timestamp(self, parent: ET.Element, tag: str, where: str) -> datetime:
        seconds = self.integer(parent, tag, where, required=True, high=253402300799)
        assert seconds is not None
        return datetime.fromtimestamp(seconds, UTC)

    def ip(self, parent: ET.Element, tag: str, where: str) -> str:
        value = self.required(parent, tag, where)
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise self.fail(f"{where}/{tag}", f"{value!r} is not an IP address") from None
        if "%" in value:  # a scope zone means nothing outside the reporter's own network
            raise self.fail(f"{where}/{tag}", f"{value!r} is a scoped address")
        return str(address)


# --------------------------------------------------------------------------- the report


def _policy(fields: _Fields, root: ET.Element) -> PolicyPublished:
    where = "policy_published"
    element = fields.element(root, where, "feedback")
    return PolicyPublished(
        domain=fields.required(element, "domain", where).lower(),
        p=fields.choice(element, "p", where, DISPOSITIONS, required=True) or "",
        sp=fields.choice(element, "sp", where, DISPOSITIONS, required=False),
        np=fields.choice(element, "np", where, DISPOSITIONS, required=False),
        adkim=fields.choice(element, "adkim", where, ALIGNMENT_MODES, required=False),
        aspf=fields.choice(element, "aspf", where, ALIGNMENT_MODES, required=False),
        pct=fields.integer(element, "pct", where, required=False, high=100),
        fo=fields.text(element, "fo", where),
        testing=fields.choice(element, "testing", where, TESTING_VALUES, required=False),
        discovery_method=fields.choice(
            element, "discovery_method", where, DISCOVERY_METHODS, required=False
        ),
    )


def _reasons(fields: _Fields, evaluated: ET.Element, where: str) -> tuple[OverrideReason, ...]:
    reasons = []
    for index, element in enumerate(evaluated.findall("reason"), 1):
        here = f"{where}/reason[{index}]"
        kind = fields.choice(element, "type", here, OVERRIDE_TYPES, required=False)
        comment = fields.text(element, "comment", here, max_chars=2000)
        if kind is None and comment is None:
            fields.note(f"{here} is empty: read as absent")
            continue
        reasons.append(OverrideReason(kind, comment))
    return tuple(reasons)


def _auth_results(
    fields: _Fields, record: ET.Element, where: str
) -> tuple[tuple[DkimAuthResult, ...], tuple[SpfAuthResult, ...]]:
    results = record.find("auth_results")
    if results is None:
        return (), ()
    dkim = []
    for index, element in enumerate(results.findall("dkim"), 1):
        here = f"{where}/auth_results/dkim[{index}]"
        dkim.append(
            DkimAuthResult(
                domain=_lower(fields.text(element, "domain", here)),
                selector=fields.text(element, "selector", here),
                result=fields.choice(element, "result", here, DKIM_RESULTS, required=True) or "",
                human_result=fields.text(element, "human_result", here, max_chars=2000),
            )
        )
    spf = []
    for index, element in enumerate(results.findall("spf"), 1):
        here = f"{where}/auth_results/spf[{index}]"
        spf.append(
            SpfAuthResult(
                domain=_lower(fields.text(element, "domain", here)),
                scope=fields.choice(element, "scope", here, SPF_SCOPES, required=False),
                result=fields.choice(element, "result", here, SPF_RESULTS, required=True) or "",
                human_result=fields.text(element, "human_result", here, max_chars=2000),
            )
        )
    return tuple(dkim), tuple(spf)


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def _record(fields: _Fields, element: ET.Element, index: int) -> AggregateRecord:
    where = f"record[{index}]"
    row = fields.element(element, "row", where)
    here = f"{where}/row"
    evaluated = fields.element(row, "policy_evaluated", here)
    evaluated_where = f"{here}/policy_evaluated"
    identifiers = fields.element(element, "identifiers", where)
    identifiers_where = f"{where}/identifiers"
    dkim_results, spf_results = _auth_results(fields, element, where)
    count = fields.integer(row, "count", here, required=True)
    assert count is not None
    return AggregateRecord(
        source_ip=fields.ip(row, "source_ip", here),
        count=count,
        disposition=fields.choice(
            evaluated, "disposition", evaluated_where, DISPOSITIONS_EVALUATED, required=True
        )
        or "",
        dkim=fields.choice(evaluated, "dkim", evaluated_where, POLICY_RESULTS, required=True) or "",
        spf=fields.choice(evaluated, "spf", evaluated_where, POLICY_RESULTS, required=True) or "",
        reasons=_reasons(fields, evaluated, evaluated_where),
        header_from=fields.required(identifiers, "header_from", identifiers_where).lower(),
        envelope_from=_lower(fields.text(identifiers, "envelope_from", identifiers_where)),
        envelope_to=_lower(fields.text(identifiers, "envelope_to", identifiers_where)),
        dkim_results=dkim_results,
        spf_results=spf_results,
    )


def parse_aggregate_xml(data: bytes, name: str) -> AggregateReport:
    """Parse one aggregate report. Raises :class:`ReportError` naming the element at fault
    when the XML is not well-formed, has a DTD, lacks a required field or holds a value the
    schemas do not allow."""
    root, notes = _parse_tree(data, name)
    if root.tag != "feedback":
        raise ReportError(name, f"the root element is <{root.tag}>, not <feedback>")
    fields = _Fields(name)
    metadata = fields.element(root, "report_metadata", "feedback")
    where = "report_metadata"
    email = fields.text(metadata, "email", where) or ""
    org_name = fields.text(metadata, "org_name", where)
    if org_name is None:
        # Some reporters leave org_name empty; their address still says who they are.
        domain = email.rpartition("@")[2].strip().lower()
        if not domain:
            raise fields.fail(f"{where}/org_name", "is empty and there is no email to name it")
        org_name = domain
        notes += (f"org_name was empty: named after the report's email domain {domain}",)
    date_range = fields.element(metadata, "date_range", where)
    begin = fields.timestamp(date_range, "begin", f"{where}/date_range")
    end = fields.timestamp(date_range, "end", f"{where}/date_range")
    if end < begin:
        raise fields.fail(f"{where}/date_range", f"ends ({end}) before it begins ({begin})")
    policy = _policy(fields, root)
    record_elements = root.findall("record")
    if not record_elements:
        raise ReportError(name, "the report has no <record>")
    records = tuple(_record(fields, element, i) for i, element in enumerate(record_elements, 1))
    version = fields.text(root, "version", "feedback")
    namespace = (root.get("xmlns") or "")[:MAX_FIELD_CHARS] or None
    return AggregateReport(
        org_name=org_name,
        email=email,
        report_id=fields.required(metadata, "report_id", where),
        begin=begin,
        end=end,
        policy=policy,
        records=records,
        extra_contact_info=fields.text(metadata, "extra_contact_info", where, max_chars=2000),
        version=version,
        namespace=namespace,
        generator=fields.text(metadata, "generator", where, max_chars=2000),
        errors=tuple(
            text
            for element in metadata.findall("error")
            if (text := "".join(element.itertext()).strip()[:2000])
        ),
        notes=notes + tuple(fields.notes),
    )
