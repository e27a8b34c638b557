"""SPF verification (RFC 7208): pyspf evaluates the record, every DNS query goes through the one
:class:`~postwise.auth.dns.Resolver`.

pyspf resolves through a module-level function of its own; :class:`_ResolverQuery` replaces the
query method that calls it, so pyspf's caching, its lookup limit (10 terms that cause DNS
queries) and its void-lookup limit (2, RFC 7208 4.6.4) stay pyspf's, while the DNS itself is
ours: a lookup that fails (timeout, SERVFAIL) raises pyspf's ``TempError`` and the result is
``temperror``, never "no record". Whatever else pyspf raises on a hostile record (it has raised
AssertionError, RecursionError and ValueError in the past) becomes ``permerror`` with the reason,
so one bad record never crashes a scan.

Only TXT records are read (RFC 7208 3.1 and 4.4 retired the SPF RR type).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any, Literal

import spf as pyspf
import structlog

from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.auth.results import SpfResult, SpfWord

log = structlog.get_logger("postwise.auth.spf")

# RFC 7208 4.6.4: an evaluation may be given up after "at least 20 seconds".
EVALUATION_SECONDS = 20.0
# What a ``fail`` says when the domain gives no ``exp=`` explanation.
DEFAULT_FAIL_EXPLANATION: str = pyspf.EXPLANATIONS["fail"]
_WORDS: dict[str, SpfWord] = {
    "pass": "pass",
    "fail": "fail",
    "softfail": "softfail",
    "neutral": "neutral",
    "none": "none",
    "permerror": "permerror",
    "temperror": "temperror",
}


class _ResolverQuery(pyspf.query):  # type: ignore[misc]
    """pyspf's evaluation with its DNS answered by a :class:`Resolver`."""

    def __init__(self, resolver: Resolver, seconds: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resolver = resolver
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._answers: dict[tuple[str, str], list[Any]] = {}

    def dns(
        self,
        name: str,
        qtype: str,
        cnames: dict[str, str] | None = None,
        ignore_void: bool = False,
    ) -> list[Any]:
        """The records of ``qtype`` at ``name`` in pyspf's shapes (TXT: a list of byte
        strings; MX: (preference, host); A/AAAA/PTR: text). Counts void lookups as pyspf does;
        CNAMEs are followed by the resolver."""
        name = str(name or "")
        if name.endswith("."):
            name = name[:-1]
        # RFC 1035 limits: an invalid name matches nothing (RFC 7208 4.3, 4.8), no query.
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []
        key = (name.lower(), qtype)
        if key not in self._answers:
            self._answers[key] = self._lookup(key[0], qtype)
        result = self._answers[key]
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > pyspf.MAX_VOID_LOOKUPS:
                raise pyspf.PermError(
                    f"void lookup limit of {pyspf.MAX_VOID_LOOKUPS} exceeded at {name}"
                )
        return result

    def _lookup(self, name: str, qtype: str) -> list[Any]:
        if time.monotonic() > self._deadline:
            raise pyspf.TempError(f"SPF evaluation took over {self._seconds:g} s")
        try:
            lookup = self._resolver.query(name, qtype)
        except DnsTemporaryError as error:
            raise pyspf.TempError(str(error)) from error
        records: list[Any] = []
        for record in lookup.records:
            if qtype in ("TXT", "SPF"):
                # Already one record's strings joined; back to the bytes pyspf checks for ASCII.
                records.append([record.encode("utf-8", "surrogateescape")])
            elif qtype == "MX":
                preference, _, exchange = record.partition(" ")
                records.append((int(preference), exchange.rstrip(".")))
            elif qtype == "PTR":
                records.append(record.rstrip("."))
            else:
                records.append(record)
        return records


def _domain_of(mail_from: str, helo: str) -> tuple[Literal["mailfrom", "helo"], str]:
    """(scope, domain) of the identity checked: MAIL FROM's domain, or HELO's for the null
    sender (RFC 7208 2.4)."""
    if not mail_from:
        return "helo", helo.strip().rstrip(".").lower()
    domain = mail_from.rpartition("@")[2] if "@" in mail_from else helo
    return "mailfrom", domain.strip().rstrip(".").lower()


def check_spf(
    ip: str,
    mail_from: str,
    helo: str,
    resolver: Resolver,
    receiver: str = "unknown",
    evaluation_seconds: float = EVALUATION_SECONDS,
) -> SpfResult:
    """The SPF result for a client at ``ip`` sending ``mail_from`` (``""``: the null sender,
    then the HELO identity is checked, as ``postmaster@<helo>``) after greeting with ``helo``.
    ``receiver`` is what the ``%{r}`` macro expands to.

    Never raises: DNS failures give ``temperror``, broken records and anything pyspf raises
    give ``permerror``, each with the reason in ``explanation``."""
    scope, domain = _domain_of(mail_from, helo)
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return SpfResult("permerror", domain, scope, f"client address {ip!r} is not an IP")
    try:
        query = _ResolverQuery(
            resolver,
            evaluation_seconds,
            str(address),
            mail_from,
            helo,
            receiver=receiver,
            strict=True,
        )
        result, _code, explanation = query.check()
    except pyspf.TempError as error:
        return SpfResult("temperror", domain, scope, f"SPF temporary error: {error}")
    except pyspf.PermError as error:
        return SpfResult("permerror", domain, scope, f"SPF permanent error: {error}")
    except RecursionError:
        return SpfResult("permerror", domain, scope, "SPF records nest too deeply")
    except Exception as error:  # pyspf on a hostile record: a permanent failure, not a crash
        log.warning("spf.evaluation_failed", domain=domain, error=repr(error))
        return SpfResult(
            "permerror", domain, scope, f"SPF evaluation failed: {type(error).__name__}: {error}"
        )
    word = _WORDS.get(str(result))
    if word is None:
        return SpfResult("permerror", domain, scope, f"unexpected SPF result {result!r}")
    return SpfResult(word, domain, scope, str(explanation or ""))
