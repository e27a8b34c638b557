"""Pure functions: symbols + policy -> scored symbols -> score -> action and class."""

from __future__ import annotations

from collections.abc import Iterable

from postwise.core.types import Action, MessageClass, ScoredSymbol, Symbol
from postwise.inbound.policy import Policy

UNKNOWN_GROUP = "unknown"


def score_symbols(symbols: Iterable[Symbol], policy: Policy) -> tuple[ScoredSymbol, ...]:
    """Weight each symbol by the policy. A symbol the policy does not know scores 0 but is
    kept, so that it still shows in the verdict's reasons."""
    scored = []
    for symbol in symbols:
        entry = policy.symbols.get(symbol.name)
        weight = entry.weight if entry else 0.0
        group = entry.group if entry else UNKNOWN_GROUP
        scored.append(ScoredSymbol(symbol.name, weight * symbol.factor, symbol.evidence, group))
    return tuple(sorted(scored, key=lambda s: (-abs(s.score), s.name)))


def total_score(scored: Iterable[ScoredSymbol]) -> float:
    return sum(s.score for s in scored)


def choose_action(score: float, policy: Policy) -> Action:
    """The strongest action whose threshold ``score`` reaches."""
    for action in ("reject", "quarantine", "add_header"):
        if score >= policy.thresholds[action]:  # type: ignore[index]
            return action  # type: ignore[return-value]
    return "no_action"


def choose_class(
    action: Action, scored: Iterable[ScoredSymbol], probabilities: dict[str, float]
) -> MessageClass:
    """``ham`` for mail left alone; otherwise phish or spam, whichever the evidence leans to:
    the model's probabilities plus the weight of phishing-group rule symbols."""
    if action == "no_action":
        return "ham"
    phish_rules = sum(s.score for s in scored if s.group == "phishing" and s.score > 0)
    lean = probabilities.get("phish", 0.0) - probabilities.get("spam", 0.0) + phish_rules / 10
    return "phish" if lean > 0 else "spam"
