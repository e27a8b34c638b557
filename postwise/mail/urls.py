"""Find links in text, including defanged and spelled-out forms, and normalise their hosts."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from postwise.mail.message import Url

# Plain links: a scheme or a leading "www.", up to whitespace or a closing bracket / quote.
_URL_RE = re.compile(r"""(?i)\b(?:https?://|www\.)[^\s<>"'()\[\]{}]{2,2000}""")
# Defanged links: hxxp://, http[:]//, example[.]com, example(dot)com.
_OBFUSCATED_RE = re.compile(
    r"""(?i)\b(?:h[xX]{2}ps?|https?)\s*(?:\[:\]|:)\s*//[^\s<>"']{2,2000}"""
    r"""|\b[a-z0-9-]{1,63}(?:\s*(?:\[\.\]|\(\.\)|\[dot\]|\(dot\))\s*[a-z0-9-]{1,63})+\b"""
    r"""(?:/[^\s<>"']{0,2000})?"""
)
_DEFANG_REPLACEMENTS = (
    (re.compile(r"(?i)\bh[xX]{2}p|\bhttp(?=s?\s*(?:\[:\]|:))", re.I), "http"),
    (re.compile(r"\s*(?:\[\.\]|\(\.\)|\[dot\]|\(dot\))\s*", re.I), "."),
    (re.compile(r"\[:\]"), ":"),
)
_TRAILING_PUNCT = ".,;:!?*'\""
MAX_URLS = 1000


def host_of(url: str) -> str:
    """The lower-case host of ``url`` (IDNA-decoded to Unicode where it is punycode kept as is),
    or "" when there is none. Never raises."""
    candidate = url.strip()
    if candidate.lower().startswith("www."):
        candidate = "http://" + candidate
    try:
        parts = urlsplit(candidate)
        host = parts.hostname or ""
    except ValueError:
        return ""
    host = unquote(host).strip(".").lower()
    if len(host) > 253:
        host = host[:253]
    return host


def _clean(url: str) -> str:
    return url.rstrip(_TRAILING_PUNCT)


def urls_in_text(text: str, source: str = "text") -> list[Url]:
    """Links written out in ``text``, plain and defanged, at most ``MAX_URLS``."""
    found: list[Url] = []
    seen: set[str] = set()
    for match in _URL_RE.finditer(text):
        url = _clean(match.group(0))
        if url in seen:
            continue
        seen.add(url)
        found.append(Url(url=url, host=host_of(url), source=source))
        if len(found) >= MAX_URLS:
            return found
    for match in _OBFUSCATED_RE.finditer(text):
        raw = match.group(0)
        if raw.lower().startswith(("http://", "https://")) and "[" not in raw:
            continue  # a plain link, already found above
        url = raw
        for pattern, replacement in _DEFANG_REPLACEMENTS:
            url = pattern.sub(replacement, url)
        url = _clean(url)
        if "://" in url:
            scheme, rest = url.split("://", 1)
            url = scheme.strip().lower() + "://" + rest.lstrip()
        else:
            url = "http://" + url
        if url in seen:
            continue
        seen.add(url)
        found.append(Url(url=url, host=host_of(url), source="obfuscated"))
        if len(found) >= MAX_URLS:
            break
    return found
