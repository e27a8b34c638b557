"""Raw RFC 822 bytes -> :class:`ParsedMessage`.

The parser is tolerant by contract: it never raises on bad mail. Broken charsets, bad
base64, undecodable headers, nesting past the limit and unparseable structure all become
entries in ``ParsedMessage.defects`` (names are upper-case, stable and become ``MIME_*``
symbols in the checks).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import filetype

from postwise.mail.html import read_html
from postwise.mail.message import Address, Attachment, ParsedMessage, Url
from postwise.mail.urls import urls_in_text

_ENCODED_WORD_RE = re.compile(r"=\?[^?]+\?[bBqQ]\?")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ADDRESS_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ARCHIVE_TYPES = {"application/zip", "application/x-zip-compressed"}
_MAX_ARCHIVE_MEMBERS = 200


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds that keep a hostile message from costing more than an ordinary one."""

    max_depth: int = 20
    max_parts: int = 500
    max_text_chars: int = 200_000


def decode_header_value(value: str) -> tuple[str, bool]:
    """Decode RFC 2047 encoded words. Returns (text, ok); ok is False when the value could
    not be decoded cleanly and a best-effort rendering was returned instead."""
    if "=?" not in value:
        return _CONTROL_RE.sub("", value), True
    try:
        text = str(make_header(decode_header(value)))
        return _CONTROL_RE.sub("", text), True
    except Exception:  # HeaderParseError, LookupError, UnicodeError... from hostile words
        return _CONTROL_RE.sub("", _ENCODED_WORD_RE.sub("", value)), False


def _header_str(raw: object) -> str:
    # compat32 hands back str (raw 8-bit bytes kept as surrogate escapes), or
    # email.header.Header for some undecodable values.
    if not isinstance(raw, str):
        try:
            raw = str(raw)
        except Exception:  # a Header with unknown charset can fail to render
            return ""
    if any("\udc80" <= char <= "\udcff" for char in raw):
        data = raw.encode("utf-8", "surrogateescape")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    return raw


def _redecode_8bit_headers(msg: email.message.Message, message: ParsedMessage) -> None:
    """Raw 8-bit headers that are not UTF-8 declare no charset; senders use their body's. Once
    the body's charsets are known, decode Subject and From with the first one that fits."""
    candidates = [c for c in message.charsets if c not in ("us-ascii", "utf-8", "utf8")]
    if not candidates:
        return
    raw_values = {key.lower(): value for key, value in reversed(list(msg.raw_items()))}
    for name in ("Subject", "From"):
        raw = raw_values.get(name.lower())
        if not isinstance(raw, str) or not any("\udc80" <= char <= "\udcff" for char in raw):
            continue
        data = raw.encode("utf-8", "surrogateescape")
        try:
            data.decode("utf-8")
            continue  # valid UTF-8 was decoded correctly already
        except UnicodeDecodeError:
            pass
        for charset in candidates:
            try:
                text = _CONTROL_RE.sub("", data.decode(charset))
            except (LookupError, UnicodeDecodeError, ValueError):
                continue
            if name == "Subject":
                message.subject = text.replace("\n", " ").replace("\r", "")
            else:
                message.from_ = _address(text)
            break


def _address(value: str) -> Address | None:
    if not value:
        return None
    name, addr = parseaddr(value)
    if not name and not addr:
        return None
    return Address(display_name=name.strip(), address=addr.strip().lower())


def _decode_payload(part: email.message.Message, message: ParsedMessage) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        message.add_defect("MIME_BAD_TRANSFER_ENCODING")
        raw = part.get_payload()
        return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""
    if part.defects:
        for defect in part.defects:
            message.add_defect("MIME_" + _defect_name(defect))
    if isinstance(payload, bytes):
        return payload
    return b""


def _defect_name(defect: object) -> str:
    name = type(defect).__name__
    name = re.sub(r"Defect$", "", name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() or "UNKNOWN"


def _decode_text(data: bytes, charset: str | None, message: ParsedMessage) -> str:
    charset = (charset or "us-ascii").strip().strip('"').lower()
    try:
        return data.decode(charset)
    except LookupError:
        message.add_defect("MIME_UNKNOWN_CHARSET")
    except UnicodeDecodeError:
        message.add_defect("MIME_BAD_CHARSET_DATA")
    except Exception:  # codecs that exist but refuse to decode ("undefined", NUL in the name)
        message.add_defect("MIME_UNKNOWN_CHARSET")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _sniff(data: bytes) -> str:
    try:
        kind = filetype.guess(data[:8192])
    except Exception:
        return ""
    return kind.mime if kind is not None else ""


def _archive_members(data: bytes, message: ParsedMessage) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except Exception:
        message.add_defect("ATTACHMENT_BAD_ARCHIVE")
        return ()
    return tuple(names[:_MAX_ARCHIVE_MEMBERS])


def _add_attachment(part: email.message.Message, data: bytes, message: ParsedMessage) -> None:
    raw_name = part.get_filename() or ""
    filename, ok = decode_header_value(_header_str(raw_name))
    if not ok:
        message.add_defect("HEADER_BAD_ENCODING")
    declared = part.get_content_type()
    sniffed = _sniff(data)
    members: tuple[str, ...] = ()
    lowered = filename.lower()
    if sniffed in _ARCHIVE_TYPES or declared in _ARCHIVE_TYPES or lowered.endswith(".zip"):
        members = _archive_members(data, message)
    message.attachments.append(
        Attachment(
            filename=filename,
            declared_type=declared,
            sniffed_type=sniffed,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            archive_members=members,
        )
    )


def _walk(
    part: email.message.Message,
    message: ParsedMessage,
    limits: ParseLimits,
    depth: int,
    texts: list[str],
    htmls: list[str],
) -> None:
    if depth > limits.max_depth:
        message.add_defect("MIME_TOO_DEEP")
        return
    if message.part_count >= limits.max_parts:
        message.add_defect("MIME_TOO_MANY_PARTS")
        return
    message.part_count += 1
    message.max_depth = max(message.max_depth, depth)
    if part.is_multipart():
        children = part.get_payload()
        if not isinstance(children, list):
            message.add_defect("MIME_BAD_MULTIPART")
            return
        for child in children:
            if isinstance(child, email.message.Message):
                _walk(child, message, limits, depth + 1, texts, htmls)
        return
    content_type = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    data = _decode_payload(part, message)
    is_named = bool(part.get_filename())
    if content_type == "message/rfc822" and not is_named:
        inner = part.get_payload()
        if isinstance(inner, list):
            for child in inner:
                if isinstance(child, email.message.Message):
                    _walk(child, message, limits, depth + 1, texts, htmls)
        return
    if (
        content_type in ("text/plain", "text/html")
        and disposition != "attachment"
        and not (is_named and disposition == "attachment")
    ):
        charset = part.get_content_charset()
        if charset and charset not in message.charsets and len(message.charsets) < 10:
            message.charsets.append(charset[:40])
        text = _decode_text(data, charset, message)
        (htmls if content_type == "text/html" else texts).append(text[: limits.max_text_chars])
        return
    if content_type.startswith("multipart/"):
        message.add_defect("MIME_MULTIPART_WITHOUT_PARTS")
        return
    _add_attachment(part, data, message)


def _read_headers(msg: email.message.Message, message: ParsedMessage) -> None:
    for key, raw in msg.raw_items():  # raw: 8-bit values still as surrogate escapes
        value, ok = decode_header_value(_header_str(raw))
        if not ok:
            message.add_defect("HEADER_BAD_ENCODING")
        message.headers.append((key, value.strip()))
    message.subject = (message.header("Subject") or "").replace("\n", " ").replace("\r", "")
    message.from_ = _address(message.header("From") or "")
    message.reply_to = _address(message.header("Reply-To") or "")
    message.sender = _address(message.header("Sender") or "")
    message.return_path = parseaddr(message.header("Return-Path") or "")[1].lower()
    message.message_id = (message.header("Message-ID") or "").strip()
    for field_name, target in (("To", message.to), ("Cc", message.cc)):
        values = message.header_all(field_name)
        if not values:
            continue
        joined = ", ".join(values)
        if len(joined) > 2000:  # the stdlib address parser is slow; a long list needs no names
            target.extend(Address("", a.lower()) for a in _ADDRESS_RE.findall(joined)[:500])
            continue
        try:
            pairs = getaddresses(values)
        except Exception:
            message.add_defect("HEADER_BAD_ADDRESS")
            continue
        target.extend(Address(n.strip(), a.strip().lower()) for n, a in pairs[:500] if a or n)
    date_value = message.header("Date")
    if date_value:
        try:
            message.date = parsedate_to_datetime(date_value)
        except (TypeError, ValueError, IndexError, OverflowError):
            message.add_defect("HEADER_BAD_DATE")
    message.content_type = msg.get_content_type()


def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ParsedMessage:
    """Parse ``raw``. Never raises on any input bytes; problems are recorded as defects."""
    limits = limits or ParseLimits()
    message = ParsedMessage(sha256=hashlib.sha256(raw).hexdigest(), size=len(raw))
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        raw = raw.split(b"\n", 1)[1]  # an mbox envelope line is not a header
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except RecursionError:
        # Nesting so deep that the standard parser gives up: keep the headers, skip the body.
        message.add_defect("MIME_TOO_DEEP")
        try:
            _read_headers(BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw), message)
        except Exception:
            message.add_defect("HEADER_UNPARSEABLE")
        return message
    except Exception:
        message.add_defect("MIME_UNPARSEABLE")
        message.text_plain = raw[: limits.max_text_chars].decode("utf-8", "replace")
        message.urls = urls_in_text(message.text_plain)
        return message
    for defect in msg.defects:
        message.add_defect("MIME_" + _defect_name(defect))
    try:
        _read_headers(msg, message)
    except Exception:
        message.add_defect("HEADER_UNPARSEABLE")
    texts: list[str] = []
    htmls: list[str] = []
    try:
        _walk(msg, message, limits, 0, texts, htmls)
    except RecursionError:
        message.add_defect("MIME_TOO_DEEP")
    except Exception:
        message.add_defect("MIME_UNPARSEABLE")
    message.text_plain = "\n".join(texts)[: limits.max_text_chars]
    message.html = "\n".join(htmls)[: limits.max_text_chars]
    _redecode_8bit_headers(msg, message)
    urls: list[Url] = []
    if message.html:
        try:
            content = read_html(message.html)
        except Exception:
            message.add_defect("HTML_UNPARSEABLE")
        else:
            message.html_text = content.text[: limits.max_text_chars]
            message.hidden_html_text = content.hidden_text
            urls.extend(content.urls)
    urls.extend(urls_in_text(message.text_plain))
    if not message.text_plain and message.html_text:
        urls.extend(u for u in urls_in_text(message.html_text) if u.source == "obfuscated")
    message.urls = urls[:1000]
    return message
