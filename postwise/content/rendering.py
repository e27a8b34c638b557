"""From rendered HTML to a sendable message: CSS inlining, hidden preheader, plain-text part,
link audit and MIME assembly.

* :func:`finish_html` puts the template CSS in a ``<style>`` element, inlines it with one cached
  :class:`css_inline.CSSInliner` (at-rules such as ``@media`` stay in ``<style>`` so the layout
  stays responsive) and puts the preheader in a hidden ``<div>`` first in the body.
* :func:`html_to_text` derives the text part with selectolax: links as ``text (url)``, images
  as their alt text, list items as ``- item``, headings upper-cased, hidden elements skipped.
* :func:`build_message` assembles ``multipart/alternative`` (text, then HTML) with Subject
  (RFC 2047 for non-ASCII), From, To, Reply-To, Message-ID, Date and, when an unsubscribe URL is
  given, ``List-Unsubscribe`` with one-click ``List-Unsubscribe-Post`` (RFC 8058). The tracking
  layer plugs in through ``link_rewriter`` and ``pixel_url``.
"""

from __future__ import annotations

import binascii
import functools
import html as html_escape
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.policy import SMTP, compat32
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from typing import Any
from urllib.parse import urlsplit

import css_inline
from selectolax.lexbor import LexborHTMLParser, LexborNode

from postwise.content.templates import RenderedMessage
from postwise.core.errors import TemplateError

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_HEAD_END = re.compile(r"</head\s*>", re.I)
_BODY_START = re.compile(r"<body\b[^>]*>", re.I)
_BODY_END = re.compile(r"</body\s*>", re.I)
_PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;opacity:0;"
    "overflow:hidden;mso-hide:all"
)
# padding so clients do not append body text to the preheader, then the end of its <div>
_PREHEADER_END = "&#847;&zwnj;&nbsp;" * 8 + "</div>"
_BLOCK_TAGS = {
    "p", "div", "table", "tr", "section", "article", "header", "footer", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "hr", "center", "pre",
}  # fmt: skip
_SKIP_TAGS = {"head", "style", "script", "title", "meta", "link", "-comment"}
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_HEADING_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_RULE = "\n" + "-" * 40 + "\n"
_BLANK_RUN = re.compile(r"\n{3,}")


# ---------------------------------------------------------------------------- HTML


def finish_html(page: str, css: str, preheader: str) -> str:
    """``page`` with ``css`` inlined (at-rules kept in ``<style>``) and ``preheader`` as the
    first, hidden element of the body. Raises TemplateError if the inliner refuses the CSS."""
    if css.strip():
        style = f"<style>{css}</style>"
        match = _HEAD_END.search(page)
        page = page[: match.start()] + style + page[match.start() :] if match else style + page
    if preheader:
        hidden = f'<div style="{_PREHEADER_STYLE}">{html_escape.escape(preheader)}{_PREHEADER_END}'
        match = _BODY_START.search(page)
        page = page[: match.end()] + hidden + page[match.end() :] if match else hidden + page
    try:
        return _INLINER.inline(page)
    except (css_inline.InlineError, ValueError) as error:
        raise TemplateError(f"CSS cannot be inlined: {error}") from None


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of ``html`` for the text/plain part."""
    return _tree_text(LexborHTMLParser(html))


def _tree_text(tree: LexborHTMLParser) -> str:
    root = tree.body or tree.root
    if root is None:
        return ""
    out: list[str] = []
    _walk(root, out)
    lines = [" ".join(line.split()) for line in "".join(out).split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip() + "\n"


# The walk runs once per message (twice with link tracking), so it reads as little of each
# node as it can: a text node's own data (``text_content``, what ``text(deep=False)`` gives
# for it), one attribute dict per element that is not skipped, and no generator per level.
def _walk(node: LexborNode, out: list[str]) -> None:
    child = node.child
    while child is not None:
        tag = child.tag
        if tag == "-text":
            out.append(child.text_content or "")
        elif tag not in _SKIP_TAGS:
            attributes = child.attributes
            style = attributes.get("style")
            if not style or _HIDDEN.search(style) is None:
                _element(child, tag, attributes, out)
        child = child.next


def _element(
    node: LexborNode, tag: str | None, attributes: dict[str, str | None], out: list[str]
) -> None:
    if tag == "br":
        out.append("\n")
    elif tag == "img":
        alt = (attributes.get("alt") or "").strip()
        if alt:
            out.append(f" {alt} ")
    elif tag == "a":
        href = (attributes.get("href") or "").strip()
        inner: list[str] = []
        _walk(node, inner)
        label = " ".join("".join(inner).split())
        if not href or href.startswith("#") or href == label:
            out.append(label or href)
        elif href.startswith("mailto:") and href[7:] == label:
            out.append(label)
        else:
            out.append(f"{label} ({href})" if label else href)
    elif tag in _HEADING_TAGS:
        inner = []
        _walk(node, inner)
        out.append("\n\n" + " ".join("".join(inner).split()).upper() + "\n\n")
    elif tag == "li":
        out.append("\n- ")
        _walk(node, out)
        out.append("\n")
    elif tag == "hr":
        out.append(_RULE)
    elif tag == "td" or tag == "th":
        out.append(" ")
        _walk(node, out)
        out.append(" ")
    elif tag in _BLOCK_TAGS:
        out.append("\n\n" if tag == "p" else "\n")
        _walk(node, out)
        out.append("\n\n" if tag == "p" else "\n")
    else:
        _walk(node, out)


def audit_html(html: str) -> list[tuple[str, str, str | None]]:
    """Problems in rendered ``html`` as ``(code, message, snippet)``: ``broken-link`` (empty,
    ``#``, another scheme than http(s)/mailto/tel, malformed, or template syntax left in the
    href) and ``missing-alt`` (an ``<img>`` without ``alt``; ``alt=""`` marks decoration)."""
    tree = LexborHTMLParser(html)
    problems: list[tuple[str, str, str | None]] = []
    for link in tree.css("a"):
        href = link.attributes.get("href")
        label = " ".join((link.text() or "").split())[:40] or "(no text)"
        reason = _link_problem(href)
        if reason:
            problems.append(
                ("broken-link", f"link {label!r}: href {href!r} {reason}", href or label)
            )
    for image in tree.css("img"):
        if "alt" not in image.attributes:
            src = image.attributes.get("src") or ""
            problems.append(("missing-alt", f"image {src!r} has no alt text", src or None))
    return problems


_TEMPLATE_MARKERS = ("{{", "}}", "{%", "%}")
_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})


def _link_problem(href: str | None) -> str | None:
    if href is None or not href.strip():
        return "is empty"
    value = href.strip()
    if value == "#" or value.startswith("#"):
        return "is a placeholder anchor"
    if any(marker in value for marker in _TEMPLATE_MARKERS):
        return "still holds template syntax (unbalanced braces?)"
    try:
        parts = urlsplit(value)
        port = parts.port if parts.scheme in {"http", "https"} else None
    except ValueError as error:
        return f"is malformed ({error})"
    del port
    if parts.scheme not in _LINK_SCHEMES:
        return "is not an http(s), mailto or tel link"
    if parts.scheme in {"http", "https"}:
        host = parts.hostname or ""
        if not host or " " in value or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
            return "is malformed (no valid host)"
        if "." not in host and host != "localhost" and not host.startswith("["):
            return "is malformed (host has no domain)"
    elif parts.scheme == "mailto" and "@" not in parts.path:
        return "is malformed (no address)"
    return None


# ---------------------------------------------------------------------------- tracking hooks


def rewrite_links(
    html: str, rewriter: Callable[[str], str], keep: frozenset[str] = frozenset()
) -> str:
    """``html`` with every http(s) ``href`` replaced by ``rewriter(href)``, except those in
    ``keep`` (the unsubscribe URL stays untouched)."""
    tree = LexborHTMLParser(html)
    return tree.html or html if _rewrite_tree(tree, rewriter, keep) else html


def _rewrite_tree(
    tree: LexborHTMLParser, rewriter: Callable[[str], str], keep: frozenset[str]
) -> bool:
    """Rewrite the http(s) links of ``tree`` in place; whether any changed."""
    changed = False
    for link in tree.css("a[href]"):
        href = (link.attributes.get("href") or "").strip()
        if href in keep or not href.lower().startswith(("http://", "https://")):
            continue
        new = rewriter(href)
        if new != href:
            link.attrs["href"] = new
            changed = True
    return changed


def add_pixel(html: str, pixel_url: str) -> str:
    """``html`` with a 1x1 open-tracking image last in the body."""
    pixel = (
        f'<img src="{html_escape.escape(pixel_url)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    ends = list(_BODY_END.finditer(html))
    match = ends[-1] if ends else None
    return html[: match.start()] + pixel + html[match.start() :] if match else html + pixel


# ---------------------------------------------------------------------------- MIME


def build_message(
    rendered: RenderedMessage,
    sender: str | None,
    recipient: str,
    unsubscribe_url: str | None = None,
    unsubscribe_mailto: str | None = None,
    link_rewriter: Callable[[str], str] | None = None,
    pixel_url: str | None = None,
    *,
    message_id: str | None = None,
    date: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The ``multipart/alternative`` message of ``rendered`` from ``sender`` (the template's
    ``from`` when None) to ``recipient``.

    With ``unsubscribe_url`` (https, RFC 8058 requires it) the message carries
    ``List-Unsubscribe: <url>[, <mailto:…>]`` and ``List-Unsubscribe-Post:
    List-Unsubscribe=One-Click``; with only ``unsubscribe_mailto`` just ``List-Unsubscribe``.
    ``link_rewriter`` maps every http(s) link of the HTML (not the unsubscribe URL) and the text
    part is derived again from the rewritten HTML; ``pixel_url`` adds an open pixel. DKIM must
    sign both List-Unsubscribe headers. Raises TemplateError for an unusable address or
    unsubscribe URL."""
    html = rendered.html
    text = rendered.text
    if link_rewriter is not None:
        keep = frozenset({unsubscribe_url} if unsubscribe_url else ())
        # One parse serves both parts: the links are rewritten in the tree, and the text part
        # is read from that same tree rather than from its serialisation parsed again.
        tree = LexborHTMLParser(html)
        if _rewrite_tree(tree, link_rewriter, keep):
            html = tree.html or html
            text = _tree_text(tree)
    if pixel_url:
        html = add_pixel(html, pixel_url)
    from_value = sender or rendered.sender
    fields: list[tuple[str, str]] = [
        ("From", _address_field("From", from_value)),
        ("To", _address_field("To", recipient)),
    ]
    if rendered.reply_to:
        fields.append(("Reply-To", _address_field("Reply-To", rendered.reply_to)))
    fields += [
        ("Subject", _text_field("Subject", rendered.subject)),
        ("Date", _date_field(date or datetime.now(UTC))),
        ("Message-ID", message_id or make_msgid(domain=_domain_of(from_value))),
    ]
    if unsubscribe_url or unsubscribe_mailto:
        fields.append(("List-Unsubscribe", _list_unsubscribe(unsubscribe_url, unsubscribe_mailto)))
        if unsubscribe_url:
            fields.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    for name, value in (headers or {}).items():
        if not _FIELD_NAME.fullmatch(name):
            raise TemplateError(f"cannot build the message headers: bad field name {name!r}")
        fields.append((name, _text_field(name, value)))
    boundary = f"=_pw_{secrets.token_hex(12)}"  # '=' never occurs in quoted-printable text
    fields += [
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    # Fields are stored pre-encoded (RFC 2047) and pre-folded under the compat32 policy, which
    # stores strings as given, then the message switches to the SMTP policy: reading a field
    # parses it on demand and serialising emits it unchanged. This skips the header parsing
    # that dominates EmailMessage construction (4x faster; see benchmarks/render_throughput.py).
    message = EmailMessage(policy=compat32)
    for name, value in fields:
        message[name] = value
    message.set_payload([_text_part(text, "plain"), _text_part(html, "html")])
    message.policy = SMTP
    return message


_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")


def _text_part(content: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=compat32)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    # quoted-printable keeps both parts 7-bit: no reliance on 8BITMIME, short lines for DKIM.
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(content.encode("utf-8"), istext=True).decode("ascii"))
    part.policy = SMTP
    return part


def _check_line(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        raise TemplateError(f"cannot build the message headers: {name} holds a line break")


# Fields repeat from message to message (the sender, the subject of a variant, the campaign
# header, the date of a send): encoding them is cached.
@functools.lru_cache(maxsize=4096)
def _text_field(name: str, value: str) -> str:
    """``value`` as an unstructured field: as is when ASCII and short, else RFC 2047."""
    _check_line(name, value)
    if value.isascii() and len(name) + len(value) + 2 <= 78:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


@functools.lru_cache(maxsize=256)
def _date_field(moment: datetime) -> str:
    return format_datetime(moment)


# A bare dot-atom address (``local@domain.tld``): getaddresses() gives it back unchanged and
# formataddr() writes it as it is, so it needs neither (checked against them in the tests).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


def _address_field(name: str, value: str) -> str:
    """One mailbox, ``Name <local@domain>`` or bare, with a non-ASCII name RFC 2047-encoded."""
    if _PLAIN_ADDRESS.fullmatch(value):
        return value
    return _parsed_address_field(name, value)


@functools.lru_cache(maxsize=1024)
def _parsed_address_field(name: str, value: str) -> str:
    _check_line(name, value)
    pairs = getaddresses([value])
    if len(pairs) != 1 or "@" not in pairs[0][1] or not pairs[0][1].isascii():
        raise TemplateError(
            f"cannot build the message headers: {name} {value!r} is not one address "
            "(expected local@domain or Name <local@domain>)"
        )
    display, address = pairs[0]
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c in address for c in ' <>,;"\\'):
        raise TemplateError(f"cannot build the message headers: {name} {value!r} is malformed")
    return formataddr((display, address), charset="utf-8")


def _list_unsubscribe(url: str | None, mailto: str | None) -> str:
    targets: list[str] = []
    if url:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or any(c in url for c in "<>, \r\n"):
            raise TemplateError(
                f"unsubscribe URL {url!r} must be an absolute https URL (RFC 8058 one-click)"
            )
        targets.append(f"<{url}>")
    if mailto:
        value = mailto if mailto.startswith("mailto:") else f"mailto:{mailto}"
        if "@" not in value or any(c in value for c in "<>, \r\n"):
            raise TemplateError(f"unsubscribe mailto {mailto!r} is not a mailto address")
        targets.append(f"<{value}>")
    return ", ".join(targets)


def _domain_of(address: str) -> str:
    # never None: make_msgid would then look up the host name (slow, and leaks it)
    pairs = getaddresses([address])
    domain = pairs[0][1].rpartition("@")[2].strip().lower() if pairs else ""
    return domain or "postwise.invalid"


def recipient_address(display_name: str, address: str) -> str:
    """A To value with a display name, quoted as needed."""
    return str(Address(display_name=display_name, addr_spec=address))


# Serialising under compat32 writes the stored fields as they are (build_message stores them
# encoded and folded) without parsing each Content-Type again and again: 25% faster than SMTP.
_WIRE = compat32.clone(linesep="\r\n", max_line_length=0, mangle_from_=False)


def message_bytes(message: EmailMessage) -> bytes:
    """The wire form of ``message`` as built by :func:`build_message` (CRLF line ends, fields
    written as stored, nothing re-encoded)."""
    wire = _plain_wire(message)
    return message.as_bytes(policy=_WIRE) if wire is None else wire


# What email.generator does for the messages build_message makes, without its machinery (a
# generator, a buffer and a Header fold per field: 80% of the cost of a message's bytes). For
# anything else (non-ASCII or multi-line stored fields, other content types, preambles,
# epilogues, 8-bit payloads) it answers None and the generator writes the message, so the
# bytes are the generator's in every case; tests compare the two.
_NEWLINES = re.compile(r"\r\n|\r|\n")
# Characters str.splitlines() breaks at, which Header folding would act on.
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e]")
_FOLD_LIMIT = 900_000  # Header folds even with max_line_length=0 past 1,000,000 characters


def _plain_wire(message: Message) -> bytes | None:
    chunks: list[str] = []
    if not _plain_part(message, chunks):
        return None
    return "".join(chunks).encode("ascii")


def _plain_part(message: Message, out: list[str]) -> bool:
    if message.policy is not _WIRE:
        saved = message.policy
        message.policy = _WIRE  # as the generator does while it writes (no header parsing)
        try:
            return _plain_part(message, out)
        finally:
            message.policy = saved
    for name, value in message.raw_items():
        if (
            not isinstance(value, str)
            or not name.isascii()
            or not value.isascii()
            or len(value) > _FOLD_LIMIT
            or _LINE_BREAKS.search(value)
        ):
            return False
        out.append(f"{name}: {value}\r\n")
    out.append("\r\n")
    main = message.get_content_maintype()
    payload: Any = getattr(message, "_payload", None)  # what the generator reads too
    if main == "text":
        if payload is None:
            return True
        if not isinstance(payload, str) or not payload.isascii():
            return False
        out.append(_NEWLINES.sub("\r\n", payload))
        return True
    if main != "multipart" or message.get_content_subtype() == "signed":
        return False
    boundary = message.get_boundary()
    if (
        not isinstance(payload, list)
        or not boundary
        or not boundary.isascii()
        or message.preamble is not None
        or message.epilogue is not None
    ):
        return False
    for index, part in enumerate(payload):
        out.append(f"--{boundary}\r\n" if index == 0 else f"\r\n--{boundary}\r\n")
        if not isinstance(part, Message) or not _plain_part(part, out):
            return False
    if not payload:
        out.append(f"--{boundary}\r\n")
    out.append(f"\r\n--{boundary}--\r\n")
    return True


__all__ = [
    "add_pixel",
    "audit_html",
    "build_message",
    "finish_html",
    "html_to_text",
    "message_bytes",
    "recipient_address",
    "rewrite_links",
]
