"""Scoring: pure functions from symbols and a policy to scores, an action and a class."""

from __future__ import annotations

import pytest

from postwise.core.types import ScoredSymbol, Symbol
from postwise.inbound.policy import Policy, SymbolPolicy
from postwise.inbound.scoring import (
    UNKNOWN_GROUP,
    choose_action,
    choose_class,
    score_symbols,
    total_score,
)

POLICY = Policy(
    version="test-1",
    thresholds={"reject": 15.0, "quarantine": 10.0, "add_header": 6.0},
    symbols={
        "BAD_LINK": SymbolPolicy(weight=3.0, group="phishing", description=""),
        "BIG_RISK": SymbolPolicy(weight=8.0, group="attachments", description=""),
        "ML_SPAM": SymbolPolicy(weight=12.0, group="ml", description=""),
        "ML_HAM": SymbolPolicy(weight=-3.0, group="ml", description=""),
        "NOISE": SymbolPolicy(weight=0.5, group="headers", description=""),
    },
)


def test_score_is_weight_times_factor_with_group_and_evidence() -> None:
    scored = score_symbols(
        [Symbol("BAD_LINK", "text shows a.com"), Symbol("ML_SPAM", "p=0.9", factor=0.5)], POLICY
    )
    assert scored == (
        ScoredSymbol("ML_SPAM", 6.0, "p=0.9", "ml"),
        ScoredSymbol("BAD_LINK", 3.0, "text shows a.com", "phishing"),
    )


def test_unknown_symbol_is_kept_with_zero_score() -> None:
    (scored,) = score_symbols([Symbol("NOT_IN_POLICY", "why")], POLICY)
    assert scored == ScoredSymbol("NOT_IN_POLICY", 0.0, "why", UNKNOWN_GROUP)


def test_symbols_sorted_by_absolute_score_then_name() -> None:
    scored = score_symbols(
        [Symbol("NOISE"), Symbol("ML_HAM"), Symbol("BIG_RISK"), Symbol("BAD_LINK"), Symbol("X")],
        POLICY,
    )
    assert [s.name for s in scored] == ["BIG_RISK", "BAD_LINK", "ML_HAM", "NOISE", "X"]


def test_negative_factor_and_weights_sum() -> None:
    scored = score_symbols([Symbol("ML_HAM", factor=0.5), Symbol("BAD_LINK")], POLICY)
    assert total_score(scored) == pytest.approx(1.5)
    assert total_score(()) == 0


def test_no_symbols_score_nothing() -> None:
    assert score_symbols([], POLICY) == ()


@pytest.mark.parametrize(
    ("score", "action"),
    [
        (-3.0, "no_action"),
        (0.0, "no_action"),
        (5.999, "no_action"),
        (6.0, "add_header"),
        (9.99, "add_header"),
        (10.0, "quarantine"),
        (14.999, "quarantine"),
        (15.0, "reject"),
        (120.0, "reject"),
    ],
)
def test_action_is_the_strongest_threshold_reached(score: float, action: str) -> None:
    assert choose_action(score, POLICY) == action


def test_equal_thresholds_choose_the_strongest_action() -> None:
    flat = Policy("flat", {"reject": 5.0, "quarantine": 5.0, "add_header": 5.0}, {})
    assert choose_action(5.0, flat) == "reject"
    assert choose_action(4.9, flat) == "no_action"


def _scored(*pairs: tuple[str, float, str]) -> tuple[ScoredSymbol, ...]:
    return tuple(ScoredSymbol(name, score, "", group) for name, score, group in pairs)


def test_mail_left_alone_is_ham_whatever_the_evidence() -> None:
    scored = _scored(("BAD_LINK", 3.0, "phishing"))
    assert choose_class("no_action", scored, {"ham": 0.1, "spam": 0.1, "phish": 0.8}) == "ham"


@pytest.mark.parametrize(
    ("probabilities", "scored", "expected"),
    [
        ({"ham": 0.1, "spam": 0.2, "phish": 0.7}, (), "phish"),
        ({"ham": 0.1, "spam": 0.7, "phish": 0.2}, (), "spam"),
        # phishing rules tip a spam-leaning model: 0.4 - 0.6 + 3/10 > 0
        ({"ham": 0.0, "spam": 0.6, "phish": 0.4}, (("BAD_LINK", 3.0, "phishing"),), "phish"),
        # ...but not a strongly spam-leaning one: 0.05 - 0.95 + 3/10 < 0
        ({"ham": 0.0, "spam": 0.95, "phish": 0.05}, (("BAD_LINK", 3.0, "phishing"),), "spam"),
        # only positive phishing-group scores count, and other groups not at all
        ({"ham": 0.0, "spam": 0.6, "phish": 0.4}, (("X", -5.0, "phishing"),), "spam"),
        ({"ham": 0.0, "spam": 0.6, "phish": 0.4}, (("BIG_RISK", 8.0, "attachments"),), "spam"),
        # no model: the rules decide, and a dead heat is spam
        ({"ham": 1.0, "spam": 0.0, "phish": 0.0}, (("BAD_LINK", 3.0, "phishing"),), "phish"),
        ({"ham": 1.0, "spam": 0.0, "phish": 0.0}, (("BIG_RISK", 8.0, "attachments"),), "spam"),
        ({}, (), "spam"),
    ],
)
def test_flagged_mail_is_phish_or_spam_by_lean(
    probabilities: dict[str, float], scored: tuple[tuple[str, float, str], ...], expected: str
) -> None:
    assert choose_class("quarantine", _scored(*scored), probabilities) == expected
