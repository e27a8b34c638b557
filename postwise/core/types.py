"""Shared value types of the inbound pipeline: symbols, verdicts and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["reject", "quarantine", "add_header", "no_action"]
MessageClass = Literal["ham", "spam", "phish"]
ACTIONS: tuple[Action, ...] = ("reject", "quarantine", "add_header", "no_action")
CLASSES: tuple[MessageClass, ...] = ("ham", "spam", "phish")


@dataclass(frozen=True, slots=True)
class Symbol:
    """A named finding of a check, with the evidence that produced it.

    ``factor`` scales the symbol's policy weight (1.0 = full weight); the ML check uses it to
    turn a probability into a graded score. Checks never set scores themselves.
    """

    name: str
    evidence: str = ""
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class ScoredSymbol:
    name: str
    score: float
    evidence: str
    group: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of scanning one message: what to do, why, and what produced it."""

    id: str
    action: Action
    score: float
    message_class: MessageClass
    probabilities: dict[str, float]
    symbols: tuple[ScoredSymbol, ...]
    message_sha256: str
    model_version: str
    policy_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The wire form shared by ``postwise scan --json`` and ``POST /v1/scan``."""
        return {
            "id": self.id,
            "action": self.action,
            "score": round(self.score, 3),
            "class": self.message_class,
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "symbols": [
                {"name": s.name, "score": round(s.score, 3), "evidence": s.evidence}
                for s in self.symbols
            ],
            "message_sha256": self.message_sha256,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            **self.extra,
        }
