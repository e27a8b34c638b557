"""Bytes of a report file -> DMARC aggregate, DMARC failure and SMTP TLS reports.

:func:`parse_report` finds the container (gzip, including a stream with trailing padding;
zip; a mail message with the report attached) and the kind of report in it (aggregate XML,
ARF or plain-text failure report, TLS JSON), and returns every report it holds. Anything it
cannot read raises :class:`ReportError` naming the file, the part and the fault.

Every file is someone else's: decompressed output is capped (50 MB per file by default, all
containers together), containers nest at most four deep, archives and messages have a bounded
number of members and parts, and XML DTDs are refused (see :mod:`postwise.ops.dmarc_xml`).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from postwise.ops.dmarc_failure import (
    looks_like_plain_text_failure,
    parse_arf,
    parse_plain_text_failure,
)
from postwise.ops.dmarc_types import (
    AggregateRecord,
    AggregateReport,
    DkimAuthResult,
    FailureReport,
    OverrideReason,
    PolicyPublished,
    Report,
    ReportError,
    SpfAuthResult,
    TlsFailureDetail,
    TlsPolicy,
    TlsReport,
)
from postwise.ops.dmarc_xml import parse_aggregate_xml
from postwise.ops.tls_reports import parse_tls_json

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "AggregateRecord",
    "AggregateReport",
    "DkimAuthResult",
    "FailureReport",
    "OverrideReason",
    "PolicyPublished",
    "Report",
    "ReportError",
    "SpfAuthResult",
    "TlsFailureDetail",
    "TlsPolicy",
    "TlsReport",
    "parse_report",
]

MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_NESTING = 4
MAX_ARCHIVE_MEMBERS = 100
MAX_MAIL_PARTS = 200
MAX_MAIL_DEPTH = 10

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_HEADER_LINE = re.compile(rb"\A(?:From |[\x21-\x39\x3b-\x7e]{1,76}:)")
_FEEDBACK_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?feedback[\s>/]")
_ZIP_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
_PADDING = b" \t\r\n\x00"
_UTF16_XML = (b"\xff\xfe<\x00", b"\xfe\xff\x00<")  # a byte order mark, then "<"


@dataclass
class _Budget:
    """Decompressed bytes one file may still produce, across all its containers."""

    remaining: int
    limit: int

    def spend(self, size: int, where: str) -> None:
        self.remaining -= size
        if self.remaining < 0:
            megabyte = 1024 * 1024
            whole = self.limit % megabyte == 0
            limit = f"{self.limit // megabyte} MB" if whole else f"{self.limit} bytes"
            raise ReportError(
                where,
                f"decompresses to more than {limit} (the limit for one report file; "
                "a decompression bomb?)",
            )


def parse_report(
    data: bytes, name: str, *, max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
) -> list[Report]:
    """Every report in ``data`` (the bytes of the file ``name``), in order of appearance.

    Raises :class:`ReportError` when the file is not a report, is truncated or malformed,
    decompresses beyond ``max_decompressed_bytes`` or nests containers too deeply; the error
    names the file (and the attachment or archive member) and what is wrong."""
    budget = _Budget(max_decompressed_bytes, max_decompressed_bytes)
    try:
        return _parse_any(data, name, budget, depth=0)
    except ReportError:
        raise
    except RecursionError:
        raise ReportError(name, "nested too deeply to read") from None
    except MemoryError:
        raise ReportError(name, "too large to read in memory") from None
    except Exception as error:
        # Last line of defence, so one hostile file never stops a batch; every failure
        # the fuzz tests found is handled where it happens, with a precise message.
        raise ReportError(name, f"could not be read ({type(error).__name__}: {error})") from None


def _parse_any(data: bytes, where: str, budget: _Budget, depth: int) -> list[Report]:
    if depth > MAX_NESTING:
        raise ReportError(where, f"containers nested more than {MAX_NESTING} deep")
    head = data.lstrip(b"\xef\xbb\xbf" + _PADDING)[:1]
    if not data.strip(_PADDING):
        raise ReportError(where, "the file is empty")
    if data.startswith(_GZIP_MAGIC):
        return _parse_any(_gunzip(data, where, budget), f"{where} (gunzipped)", budget, depth + 1)
    if data.startswith(_ZIP_MAGICS):
        return _zip_reports(data, where, budget, depth)
    if head == b"<" or data.startswith(_UTF16_XML):
        return [parse_aggregate_xml(data, where)]
    if head == b"{":
        return [parse_tls_json(data, where)]
    if _HEADER_LINE.match(data):
        return _mail_reports(data, where, budget, depth)
    raise ReportError(
        where,
        "not a report: neither XML, JSON, gzip, zip nor a mail message "
        f"(it starts with {data[:16]!r})",
    )


# --------------------------------------------------------------------------- gzip and zip


def _gunzip(data: bytes, where: str, budget: _Budget) -> bytes:
    """All members of a gzip stream. Padding after the last member (a CRLF some senders
    add) is ignored; anything else after it is an error, as is a stream cut short."""
    out = bytearray()
    rest = data
    while True:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            chunk = decompressor.decompress(rest, budget.remaining + 1)
            while True:
                budget.spend(len(chunk), where)
                out += chunk
                if decompressor.eof or not decompressor.unconsumed_tail:
                    break
                chunk = decompressor.decompress(decompressor.unconsumed_tail, budget.remaining + 1)
        except zlib.error as error:
            raise ReportError(where, f"corrupt gzip data ({error})") from None
        if not decompressor.eof:
            raise ReportError(where, "the gzip stream is truncated (it ends before its end marker)")
        rest = decompressor.unused_data
        if not rest.strip(_PADDING):
            return bytes(out)
        if not rest.startswith(_GZIP_MAGIC):
            raise ReportError(where, f"{len(rest)} bytes of unexpected data after the gzip stream")


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: _Budget
) -> bytes:
    out = bytearray()
    with archive.open(info) as member:
        while chunk := member.read(min(1024 * 1024, budget.remaining + 1)):
            budget.spend(len(chunk), where)
            out += chunk
    return bytes(out)


def _zip_reports(data: bytes, where: str, budget: _Budget, depth: int) -> list[Report]:
    reports: list[Report] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.filename.endswith("/")  # ZipInfo.is_dir() fails on an empty name
                and not info.filename.startswith("__MACOSX/")
                and not info.filename.rpartition("/")[2].startswith(".")
            ]
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise ReportError(
                    where, f"the zip archive has {len(members)} files (limit {MAX_ARCHIVE_MEMBERS})"
                )
            for info in members:
                here = f"{where} > {info.filename}"
                try:
                    content = _read_member(archive, info, here, budget)
                except ReportError:
                    raise
                except RuntimeError as error:  # encrypted: a password is required
                    raise ReportError(here, f"cannot be read ({error})") from None
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
                    raise ReportError(here, f"corrupt zip member ({error})") from None
                except NotImplementedError as error:
                    raise ReportError(here, f"unsupported zip compression ({error})") from None
                reports.extend(_parse_any(content, here, budget, depth + 1))
    except ReportError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise ReportError(where, f"not a readable zip archive ({error})") from None
    except NotImplementedError as error:  # a zip format version or feature zipfile lacks
        raise ReportError(where, f"unsupported zip archive ({error})") from None
    if not reports:
        raise ReportError(where, "the zip archive holds no files")
    return reports


# --------------------------------------------------------------------------- mail messages


def _leaves(
    part: email.message.Message, depth: int = 0, seen: list[int] | None = None
) -> Iterator[email.message.Message]:
    """The leaf parts of a message, not descending into ``message/*`` parts (a failure
    report's sample is a message of its own: its attachments are not the report's)."""
    seen = seen if seen is not None else [0]
    if depth > MAX_MAIL_DEPTH or seen[0] >= MAX_MAIL_PARTS:
        return
    seen[0] += 1
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        for child in part.get_payload():
            if isinstance(child, email.message.Message):
                yield from _leaves(child, depth + 1, seen)
        return
    yield part


def _decoded(part: email.message.Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _part_label(part: email.message.Message) -> str:
    filename = part.get_filename()
    return str(filename) if filename else part.get_content_type()


def _text_of(part: email.message.Message) -> str:
    try:
        return _decoded(part).decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return _decoded(part).decode("utf-8", "replace")


def _carries_report(part: email.message.Message, data: bytes) -> bool:
    ctype = part.get_content_type()
    filename = str(part.get_filename() or "").lower()
    if data.startswith(_GZIP_MAGIC) or data.startswith(_ZIP_MAGICS):
        return True
    head = data.lstrip(b"\xef\xbb\xbf" + _PADDING)[:1]
    if head == b"<":
        return _FEEDBACK_TAG.search(data[:65536]) is not None
    if head == b"{":
        return (
            "json" in ctype
            or "tlsrpt" in ctype
            or ctype == "application/octet-stream"
            or filename.endswith(".json")
        )
    return ctype in _ZIP_TYPES or "gzip" in ctype or "tlsrpt" in ctype


def _mail_reports(data: bytes, where: str, budget: _Budget, depth: int) -> list[Report]:
    try:
        return _reports_in_message(data, where, budget, depth)
    except ReportError:
        raise
    except Exception as error:  # the email package raises many kinds on hostile MIME
        kind = type(error).__name__
        raise ReportError(where, f"an unreadable mail message ({kind}: {error})") from None


def _reports_in_message(data: bytes, where: str, budget: _Budget, depth: int) -> list[Report]:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    leaves = list(_leaves(message))
    arf = [p for p in leaves if p.get_content_type() == "message/feedback-report"]
    if arf:
        samples = [
            p for p in leaves if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")
        ]
        return [parse_arf(arf[0], samples[0] if samples else None, where)]
    reports: list[Report] = []
    for part in leaves:
        if part.get_content_maintype() == "message":
            continue
        content = _decoded(part)
        if content and _carries_report(part, content):
            here = f"{where} > {_part_label(part)}"
            reports.extend(_parse_any(content, here, budget, depth + 1))
    if reports:
        return reports
    for part in leaves:
        if part.get_content_type() == "text/plain":
            text = _text_of(part)
            if looks_like_plain_text_failure(text):
                return [parse_plain_text_failure(text, where)]
    kinds = ", ".join(sorted({p.get_content_type() for p in leaves})) or "none"
    raise ReportError(
        where,
        f"a mail message without a DMARC or TLS report in it (its parts: {kinds})",
    )
