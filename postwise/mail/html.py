"""HTML bodies: visible text, hidden text, links with their anchor text, forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from postwise.mail.message import Url
from postwise.mail.urls import MAX_URLS, host_of

_HIDDEN_STYLE_RE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*[01](?:\.\d+)?(?:px|pt)?\s*(?:;|$)"
    r"|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$)|max-height\s*:\s*0|width\s*:\s*0(?:px)?\s*;\s*height\s*:\s*0",
    re.I,
)
_SPACE_RE = re.compile(r"[ \t\r\f\v\xa0]+")
_NEWLINES_RE = re.compile(r"\n\s*\n+")


@dataclass(slots=True)
class HtmlContent:
    text: str = ""
    hidden_text: str = ""
    urls: list[Url] = field(default_factory=list)


def _squash(text: str) -> str:
    return _NEWLINES_RE.sub("\n\n", _SPACE_RE.sub(" ", text)).strip()


def _node_text(node: Node) -> str:
    return _squash(node.text(deep=True, separator=" "))


def read_html(html: str) -> HtmlContent:
    """Render ``html`` to the text a reader sees and collect links. Never raises: selectolax
    parses any byte soup the way a browser would."""
    content = HtmlContent()
    if not html.strip():
        return content
    tree = HTMLParser(html)
    for node in tree.css("script, style, head, noscript, template"):
        node.decompose()
    hidden_parts: list[str] = []
    for node in tree.css("[style]"):
        style = node.attributes.get("style") or ""
        if _HIDDEN_STYLE_RE.search(style):
            hidden = _node_text(node)
            if hidden:
                hidden_parts.append(hidden)
            node.decompose()  # a reader does not see it, so neither does html_text
    content.hidden_text = " ".join(hidden_parts)[:20_000]
    seen: set[tuple[str, str]] = set()
    for tag, attribute, source in (
        ("a", "href", "href"),
        ("area", "href", "href"),
        ("form", "action", "form"),
        ("img", "src", "image"),
    ):
        for node in tree.css(f"{tag}[{attribute}]"):
            url = (node.attributes.get(attribute) or "").strip()
            if not url or (url.startswith(("#", "cid:", "data:")) and source != "form"):
                continue
            anchor = _node_text(node)[:300] if tag == "a" else ""
            key = (url, anchor)
            if key in seen:
                continue
            seen.add(key)
            content.urls.append(
                Url(url=url[:2000], host=host_of(url), source=source, anchor_text=anchor)
            )
            if len(content.urls) >= MAX_URLS:
                break
    root = tree.body or tree.root
    content.text = _squash(root.text(deep=True, separator=" ")) if root is not None else ""
    return content
