"""The outcomes of SPF, DKIM, ARC and DMARC evaluation, and the ``Authentication-Results``
header (RFC 8601) that reports them.

Result words are the RFCs' own: SPF (RFC 7208 2.6), DKIM (RFC 8601 2.7.1), ARC (RFC 8617 4.4),
DMARC (RFC 7489 11.2). ``temperror`` means "try again" (DNS failed), ``permerror`` "this will
not work" (a broken record); neither is ever reported as ``none``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SpfWord = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"]
DkimWord = Literal["pass", "fail", "neutral", "none", "policy", "permerror", "temperror"]
ArcWord = Literal["pass", "fail", "none"]
DmarcWord = Literal["pass", "fail", "none", "permerror", "temperror"]
DmarcPolicy = Literal["none", "quarantine", "reject"]


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: SpfWord
    domain: str  # the domain checked: MAIL FROM's, or HELO's for the null sender
    scope: Literal["mailfrom", "helo"] = "mailfrom"
    explanation: str = ""


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: DkimWord
    domain: str = ""  # d=
    selector: str = ""  # s=
    algorithm: str = ""  # a=
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ArcResult:
    result: ArcWord
    instances: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: DmarcWord
    from_domain: str = ""
    policy: DmarcPolicy | None = None  # the policy that applies (p= or sp=), None without one
    disposition: DmarcPolicy = "none"  # what the policy asks for this message (pct applied)
    spf_aligned: bool = False
    dkim_aligned: bool = False
    reason: str = ""


def _clean(value: str) -> str:
    """A value safe inside a header comment or property: ASCII, no parentheses or controls."""
    cleaned = "".join(c if 32 <= ord(c) < 127 and c not in "()" else "?" for c in value)
    return cleaned[:200]


def authentication_results(
    authserv_id: str,
    spf: SpfResult | None = None,
    dkim: Sequence[DkimResult] = (),
    dmarc: DmarcResult | None = None,
    arc: ArcResult | None = None,
) -> str:
    """The value of an ``Authentication-Results`` header (without the name)."""
    parts = [_clean(authserv_id)]
    if spf is not None:
        prop = "smtp.mailfrom" if spf.scope == "mailfrom" else "smtp.helo"
        parts.append(f"spf={spf.result} {prop}={_clean(spf.domain) or 'unknown'}")
    for signature in dkim:
        text = f"dkim={signature.result}"
        if signature.reason:
            text += f" ({_clean(signature.reason)})"
        if signature.domain:
            text += f" header.d={_clean(signature.domain)}"
        if signature.selector:
            text += f" header.s={_clean(signature.selector)}"
        parts.append(text)
    if dmarc is not None:
        text = f"dmarc={dmarc.result}"
        if dmarc.policy is not None:
            text += f" (p={dmarc.policy} dis={dmarc.disposition})"
        parts.append(text + f" header.from={_clean(dmarc.from_domain) or 'unknown'}")
    if arc is not None:
        parts.append(f"arc={arc.result}")
    if len(parts) == 1:
        parts.append("none")
    return ";\r\n\t".join(parts)
