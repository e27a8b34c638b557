"""What every check is: a name and a pure function of a parsed message to symbols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from postwise.auth.results import (
    ArcResult,
    DkimResult,
    DmarcResult,
    SpfResult,
    authentication_results,
)
from postwise.core.types import Symbol
from postwise.mail.message import ParsedMessage


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the SMTP session said about a message; empty when scanning files."""

    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    client_ip: str = ""
    helo: str = ""


@dataclass(frozen=True, slots=True)
class AuthenticationOutcome:
    """What the authentication check found (None / empty: not evaluated), reported by the
    verdict as an ``Authentication-Results`` value in the name of ``authserv_id``."""

    authserv_id: str
    spf: SpfResult | None = None
    dkim: tuple[DkimResult, ...] = ()
    dmarc: DmarcResult | None = None
    arc: ArcResult | None = None

    def header_value(self) -> str:
        """The ``Authentication-Results`` value (RFC 8601), folded after each ``;``."""
        return authentication_results(self.authserv_id, self.spf, self.dkim, self.dmarc, self.arc)


@dataclass(slots=True)
class ScanContext:
    envelope: Envelope = field(default_factory=Envelope)
    probabilities: dict[str, float] = field(default_factory=dict)
    """Filled by the ML check so the verdict can report them."""
    raw: bytes = b""
    """The message as received (DKIM and ARC verify the bytes, not the parsed form)."""
    authentication: AuthenticationOutcome | None = None
    """Filled by the authentication check so the verdict can report it."""


class Check(Protocol):
    """A check reads a message and returns named symbols with evidence; never a verdict."""

    name: str

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        """Symbols found in ``message``. Must not raise on any parsed message."""
        ...
