"""Record parsing shared by the checks: ``tag=value`` lists (DMARC, DKIM, MTA-STS, TLS-RPT,
BIMI), host name and selector patterns, and evidence shortening."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


class RecordError(ValueError):
    """A record does not parse; the message names the bad part."""


_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}\.?$)(?:{_LABEL}\.)+{_LABEL}\.?")
SELECTOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def parse_tag_list(record: str) -> list[tuple[str, str]]:
    """``tag=value; tag=value`` (RFC 6376 3.2, RFC 7489 6.4), in order, names lower-cased."""
    pairs: list[tuple[str, str]] = []
    for part in record.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise RecordError(f"{part!r} is not tag=value")
        if any(name == seen for seen, _ in pairs):
            raise RecordError(f"the tag {name!r} appears twice")
        pairs.append((name, value.strip()))
    return pairs


def _tag_record(pairs: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


def with_tag(pairs: Sequence[tuple[str, str]], name: str, value: str | None) -> str:
    """The record with ``name`` set to ``value`` (appended when absent; removed when None)."""
    if value is None:
        return _tag_record((n, v) for n, v in pairs if n != name)
    out = [(n, value if n == name else v) for n, v in pairs]
    if all(n != name for n, _ in pairs):
        out.append((name, value))
    return _tag_record(out)


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
