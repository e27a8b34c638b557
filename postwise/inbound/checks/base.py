"""What every check is: a name and a pure function of a parsed message to symbols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from postwise.core.types import Symbol
from postwise.mail.message import ParsedMessage


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the SMTP session said about a message; empty when scanning files."""

    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    client_ip: str = ""
    helo: str = ""


@dataclass(slots=True)
class ScanContext:
    envelope: Envelope = field(default_factory=Envelope)
    probabilities: dict[str, float] = field(default_factory=dict)
    """Filled by the ML check so the verdict can report them."""


class Check(Protocol):
    """A check reads a message and returns named symbols with evidence; never a verdict."""

    name: str

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        """Symbols found in ``message``. Must not raise on any parsed message."""
        ...
