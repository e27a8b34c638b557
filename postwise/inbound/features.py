"""Features of the inbound classifier: one token list per message, hashed by the model.

Everything here reads what the *sender* wrote (author headers, MIME structure, body, links,
attachments). Trace headers, ``X-*`` fields and dates are never read, so the features are the
same for a message as received and for its sender view.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from zlib import crc32

import numpy as np

from postwise.core.types import Symbol
from postwise.mail.domains import registered_domain
from postwise.mail.message import ParsedMessage

FEATURE_VERSION = 5
MAX_BODY_CHARS = 20_000

_WORD_RE = re.compile(r"[^\W\d_]{2,24}|\d+|[$€£¥%!]", re.UNICODE)
_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_EMAIL_RE = re.compile(r"(?i)\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_UPPER_RE = re.compile(r"[A-Z]")
_LETTER_RE = re.compile(r"[A-Za-z]")


def _bucket(value: float) -> str:
    """log2 bucket, so counts generalise across magnitudes."""
    return str(int(math.log2(value + 1))) if value > 0 else "0"


_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def _normalise_word(word: str) -> str:
    return f"num{min(len(word), 6)}" if word.isdigit() else word


def _split_unspaced(words: list[str]) -> list[str]:
    """Scripts written without spaces (CJK) come out of the word pattern as whole runs;
    overlapping character pairs are their usable unit."""
    out: list[str] = []
    for word in words:
        if len(word) > 2 and _CJK_RE.search(word):
            out.extend(word[i : i + 2] for i in range(len(word) - 1))
        else:
            out.append(word)
    return out


def fold_accents(text: str) -> str:
    """Strip diacritics (``ḟeel sặd`` -> ``feel sad``): spam decorates letters to dodge word
    filters, and folded words still match what the model learned."""
    if text.isascii():
        return text
    return _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text))


def _words(text: str, prefix: str, limit: int) -> list[str]:
    """Unigrams and bigrams of ``text`` (links and addresses folded to placeholders)."""
    text = fold_accents(text[:limit])
    if "@" in text:
        text = _EMAIL_RE.sub(" emailaddr ", text)
    if "://" in text or "www." in text:
        text = _URL_RE.sub(" urltoken ", text)
    words = _split_unspaced([_normalise_word(w) for w in _WORD_RE.findall(text.lower())])
    tokens = [prefix + w for w in words]
    tokens.extend([f"{prefix}{a}_{b}" for a, b in itertools.pairwise(words)])
    return tokens


def hash_tokens(tokens: list[str], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature indices (CRC-32 of each token modulo ``n_features``, a power of two) and their
    counts. Stable across processes and platforms, unlike Python's ``hash``."""
    mask = n_features - 1
    counted = Counter(tokens)  # hash each distinct token once
    hashed = np.fromiter(
        (crc32(t.encode("utf-8", "surrogatepass")) & mask for t in counted),
        dtype=np.int64,
        count=len(counted),
    )
    weights = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
    indices, inverse = np.unique(hashed, return_inverse=True)
    counts = np.bincount(inverse, weights=weights, minlength=len(indices))
    return indices, counts.astype(np.float64)


def message_tokens(message: ParsedMessage, symbols: Iterable[Symbol] = ()) -> list[str]:
    """The token list the classifier hashes for ``message``; ``symbols`` are the findings of the
    rule checks, which the model may learn to weigh."""
    tokens: list[str] = []
    tokens.extend(_words(message.subject, "s:", 500))
    body = message.body_text
    tokens.extend(_words(body, "b:", MAX_BODY_CHARS))
    if message.hidden_html_text:
        tokens.extend(_words(message.hidden_html_text, "h:", 2000))
    sender = message.from_
    if sender is not None:
        tokens.extend(_words(sender.display_name, "fn:", 200))
        domain = registered_domain(sender.domain)
        tokens.append("ftld:" + domain.rpartition(".")[2])
        if sender.display_name and sender.address and sender.display_name.lower() in sender.address:
            tokens.append("f:name_in_address")
    else:
        tokens.append("f:none")
    tokens.extend("cs:" + charset for charset in message.charsets)
    tokens.append("ct:" + message.content_type)
    tokens.append(
        "html:"
        + (
            "only"
            if message.html and not message.text_plain.strip()
            else "alt"
            if message.html
            else "none"
        )
    )
    tokens.append("parts:" + _bucket(message.part_count))
    tokens.append("bodylen:" + _bucket(len(body) / 64))
    letters = len(_LETTER_RE.findall(body[:5000]))
    if letters:
        upper_share = len(_UPPER_RE.findall(body[:5000])) / letters
        tokens.append(f"upper:{int(upper_share * 10)}")
    subject_letters = _LETTER_RE.findall(message.subject)
    if len(subject_letters) >= 8 and message.subject.upper() == message.subject:
        tokens.append("s:ALLCAPS")
    hosts: set[str] = set()
    for url in message.urls[:200]:
        if not url.host:
            continue
        domain = registered_domain(url.host)
        hosts.add(domain)
        tokens.append("utld:" + domain.rpartition(".")[2])
        tokens.append("usrc:" + url.source)
        path = url.url.split("//", 1)[-1]
        tokens.append("upath:" + _bucket(len(path) / 8))
        if "?" in url.url:
            tokens.append("u:query")
    tokens.append("nurl:" + _bucket(len(message.urls)))
    tokens.append("ndom:" + _bucket(len(hosts)))
    for attachment in message.attachments[:50]:
        ext = (
            attachment.filename.rsplit(".", 1)[-1].lower()[:8] if "." in attachment.filename else ""
        )
        tokens.append("ax:" + ext)
        tokens.append("at:" + (attachment.sniffed_type or attachment.declared_type))
    for symbol in symbols:
        tokens.append("sym:" + symbol.name)
    return tokens
