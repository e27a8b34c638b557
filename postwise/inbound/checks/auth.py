"""Email authentication as a check: SPF, DKIM, ARC and DMARC results become symbols, and the
results themselves go on the scan context for the verdict's ``Authentication-Results``.

Authentication is a property of the SMTP transaction: without a client address (a file being
scanned, the scan API) the check emits nothing and looks nothing up. DNS failures are
``*_TEMPERROR`` symbols (weight 0), never "no record".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

import structlog

from postwise.auth.dmarc import check_dmarc
from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.auth.results import ArcResult, DkimResult, DmarcResult, SpfResult
from postwise.auth.spf import check_spf
from postwise.core.types import Symbol
from postwise.inbound.checks.base import AuthenticationOutcome, ScanContext
from postwise.mail.message import ParsedMessage

log = structlog.get_logger("postwise.inbound.auth")

DkimVerifier = Callable[[bytes, Resolver], list[DkimResult]]
ArcVerifier = Callable[[bytes, Resolver], ArcResult]

SPF_SYMBOLS = {
    "pass": "SPF_PASS",
    "fail": "SPF_FAIL",
    "softfail": "SPF_SOFTFAIL",
    "neutral": "SPF_NEUTRAL",
    "none": "SPF_NONE",
    "permerror": "SPF_PERMERROR",
    "temperror": "SPF_TEMPERROR",
}
# A DKIM signature's result -> its symbol (fail, neutral and policy all mean "did not verify").
DKIM_SYMBOLS = {
    "pass": "DKIM_VALID",
    "fail": "DKIM_INVALID",
    "neutral": "DKIM_INVALID",
    "policy": "DKIM_INVALID",
    "permerror": "DKIM_PERMERROR",
    "temperror": "DKIM_TEMPERROR",
}
ARC_SYMBOLS = {"pass": "ARC_PASS", "fail": "ARC_FAIL", "none": "ARC_NONE"}
AUTH_SYMBOLS = frozenset(
    {
        *SPF_SYMBOLS.values(),
        *DKIM_SYMBOLS.values(),
        "DKIM_NONE",
        *ARC_SYMBOLS.values(),
        "DMARC_PASS",
        "DMARC_POLICY_REJECT",
        "DMARC_POLICY_QUARANTINE",
        "DMARC_POLICY_NONE",
        "DMARC_NONE",
        "DMARC_TEMPERROR",
        "DMARC_PERMERROR",
    }
)


def _optional_verifier(module: str, function: str) -> Callable[..., Any] | None:
    """``module.function`` when it exists (DKIM and ARC verification live in their own
    modules); None otherwise, and that part of authentication is not evaluated."""
    try:
        found = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError):
        log.warning("auth.verifier_missing", module=module, function=function)
        return None
    return cast(Callable[..., Any], found)


class AuthenticationCheck:
    """SPF (the envelope's client address, MAIL FROM and HELO), DKIM and ARC (the raw
    message), then DMARC on the RFC5322.From domain with those results.

    ``dkim_verify`` / ``arc_verify`` default to :func:`postwise.auth.dkim.verify_dkim` and
    :func:`postwise.auth.arc.verify_arc`. ``authserv_id`` names this host in the
    ``Authentication-Results`` value (the ``smtp_hostname`` setting)."""

    name = "auth"

    def __init__(
        self,
        resolver: Resolver,
        dkim_verify: DkimVerifier | None = None,
        arc_verify: ArcVerifier | None = None,
        authserv_id: str = "postwise.localhost",
    ) -> None:
        self.resolver = resolver
        self.authserv_id = authserv_id
        self.dkim_verify: DkimVerifier | None = dkim_verify or cast(
            "DkimVerifier | None", _optional_verifier("postwise.auth.dkim", "verify_dkim")
        )
        self.arc_verify: ArcVerifier | None = arc_verify or cast(
            "ArcVerifier | None", _optional_verifier("postwise.auth.arc", "verify_arc")
        )

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        envelope = context.envelope
        if not envelope.client_ip:
            return []
        spf = check_spf(
            envelope.client_ip, envelope.mail_from, envelope.helo, self.resolver, self.authserv_id
        )
        dkim = self._dkim(context.raw)
        arc = self._arc(context.raw)
        from_domain = message.from_.domain if message.from_ is not None else ""
        dmarc = check_dmarc(from_domain, spf, dkim or (), self.resolver, message.sha256)
        context.authentication = AuthenticationOutcome(
            self.authserv_id, spf, tuple(dkim or ()), dmarc, arc
        )
        symbols = [_spf_symbol(spf)]
        if dkim is not None:
            symbols += _dkim_symbols(dkim)
        if arc is not None:
            symbols.append(Symbol(ARC_SYMBOLS[arc.result], _arc_evidence(arc)))
        symbols.append(_dmarc_symbol(dmarc))
        return symbols

    def _dkim(self, raw: bytes) -> list[DkimResult] | None:
        if self.dkim_verify is None:
            return None
        try:
            return list(self.dkim_verify(raw, self.resolver))
        except DnsTemporaryError as error:
            return [DkimResult("temperror", reason=str(error))]
        except Exception as error:  # a verifier's bug must not cost the scan
            log.exception("auth.dkim_failed")
            return [DkimResult("permerror", reason=f"verification failed: {error!r}")]

    def _arc(self, raw: bytes) -> ArcResult | None:
        if self.arc_verify is None:
            return None
        try:
            return self.arc_verify(raw, self.resolver)
        except DnsTemporaryError as error:
            # RFC 8617 has no temperror: the chain could not be validated now.
            return ArcResult("fail", reason=f"DNS failed: {error}")
        except Exception as error:
            log.exception("auth.arc_failed")
            return ArcResult("fail", reason=f"verification failed: {error!r}")


def _spf_symbol(spf: SpfResult) -> Symbol:
    identity = f"{'MAIL FROM' if spf.scope == 'mailfrom' else 'HELO'} {spf.domain or '?'}"
    evidence = f"{identity}: {spf.result}"
    if spf.result not in ("pass", "none") and spf.explanation:
        evidence += f" ({spf.explanation[:160]})"
    return Symbol(SPF_SYMBOLS[spf.result], evidence)


def _dkim_symbols(results: list[DkimResult]) -> list[Symbol]:
    """One symbol per kind of outcome, naming the signing domains; DKIM_NONE without any."""
    by_symbol: dict[str, list[str]] = {}
    for signature in results:
        name = DKIM_SYMBOLS.get(signature.result)
        if name is None:  # "none": no signature
            continue
        label = signature.domain or "?"
        if signature.selector:
            label += f" s={signature.selector}"
        if signature.result != "pass" and signature.reason:
            label += f" ({signature.reason[:100]})"
        by_symbol.setdefault(name, []).append(label)
    if not by_symbol:
        return [Symbol("DKIM_NONE", "no DKIM signature")]
    return [Symbol(name, "; ".join(labels)[:300]) for name, labels in by_symbol.items()]


def _arc_evidence(arc: ArcResult) -> str:
    text = f"{arc.instances} ARC set(s)" if arc.instances else "no ARC sets"
    return f"{text} ({arc.reason[:160]})" if arc.reason else text


def _dmarc_symbol(dmarc: DmarcResult) -> Symbol:
    domain = dmarc.from_domain or "?"
    if dmarc.result == "pass":
        via = [n for n, ok in (("SPF", dmarc.spf_aligned), ("DKIM", dmarc.dkim_aligned)) if ok]
        return Symbol("DMARC_PASS", f"{domain}: aligned {' and '.join(via)}")
    if dmarc.result == "fail":
        name = {
            "reject": "DMARC_POLICY_REJECT",
            "quarantine": "DMARC_POLICY_QUARANTINE",
            "none": "DMARC_POLICY_NONE",
        }[dmarc.disposition]
        evidence = f"{domain}: no aligned SPF or DKIM pass; p={dmarc.policy}"
        return Symbol(name, f"{evidence} ({dmarc.reason[:160]})" if dmarc.reason else evidence)
    name = {
        "none": "DMARC_NONE",
        "temperror": "DMARC_TEMPERROR",
        "permerror": "DMARC_PERMERROR",
    }[dmarc.result]
    return Symbol(name, f"{domain}: {dmarc.reason[:200]}")
