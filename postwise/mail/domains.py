"""Registered domains (public-suffix aware, offline) and lookalike tests."""

from __future__ import annotations

from functools import lru_cache

import tldextract

# The bundled public-suffix snapshot only: Postwise never fetches the list at scan time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str:
    """``mail.example.co.uk`` -> ``example.co.uk``; an IP or a bare name is returned as is."""
    host = host.strip(".").lower()
    if not host:
        return ""
    parts = _EXTRACT(host)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    labels = host.split(".")
    if len(labels) >= 2 and not labels[-1].isdigit():
        # A suffix the bundled list does not know (.example, .test, a new gTLD): treat the
        # last label as the suffix, as browsers do for unlisted TLDs.
        return ".".join(labels[-2:])
    return host


@lru_cache(maxsize=65536)
def domain_label(host: str) -> str:
    """The registrable label alone: ``login.paypal.com`` -> ``paypal``."""
    return registered_domain(host).split(".", 1)[0]


def within_one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one substitution, insertion or deletion."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    shorter, longer = (a, b) if len(a) < len(b) else (b, a)
    return any(longer[:index] + longer[index + 1 :] == shorter for index in range(len(longer)))
