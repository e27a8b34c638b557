"""Guardrails on generated copy: the inbound classifier, limits, terms, brands, personal data,
sensitive segments, and the layered policy file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from postwise.content.copy import Candidate, CopyBrief
from postwise.content.guardrails import (
    CopyPolicyError,
    Guardrails,
    check,
    counted_length,
    load_copy_policy,
)
from postwise.content.pii import find_pii, iban_valid, luhn_valid

TOKEN = '{{ first_name | default("there") }}'
BRIEF = CopyBrief(
    "the new delivery dashboard",
    ("See bounces and complaints per provider", "Included in every plan"),
)


@pytest.fixture(scope="module")
def guardrails(scanner: Any) -> Guardrails:
    """The shipped copy policy and the scanner of the test model."""
    return Guardrails(load_copy_policy(), scanner)


def verdict_of(guardrails: Guardrails, subject: str, preheader: str = "", **brief: Any) -> Any:
    used = CopyBrief(**{"topic": BRIEF.topic, "facts": BRIEF.facts, **brief})
    return guardrails.check(Candidate(subject, preheader, "offline"), used)


def test_clean_copy_is_approved_with_a_low_score(guardrails: Guardrails) -> None:
    verdict = verdict_of(
        guardrails, f"Hi {TOKEN}, meet the new delivery dashboard", "Included in every plan."
    )
    assert verdict.status == "approved"
    assert verdict.reasons == []
    assert verdict.spam_score is not None
    assert verdict.spam_score < guardrails.policy.max_classifier_score


def test_spammy_copy_is_rejected_by_the_inbound_classifier_with_its_score(
    scanner: Any, tmp_path: Path
) -> None:
    # Only the classifier may object: terms, characters and capitals are allowed here.
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(
        "[terms]\nbanned = []\n[characters]\nmax_exclamation_marks = 9\nmax_emoji = 9\n"
        "max_all_caps_words = 9\nmax_currency_symbols = 9\n"
    )
    policy = load_copy_policy(lenient)
    candidate = Candidate(
        "FREE!!! CLICK NOW $$$ viagra",
        "Cheap viagra pills, no prescription, act now!!! $$$",
        "llm:test",
    )
    verdict = check(candidate, BRIEF, policy, scanner)
    assert verdict.status == "rejected"
    assert verdict.spam_score is not None and verdict.spam_score > policy.max_classifier_score
    classifier = [r for r in verdict.reasons if r.startswith("inbound classifier scores it")]
    assert len(classifier) == 1
    assert f"{verdict.spam_score:g}" in classifier[0]
    assert "ML_SPAM" in classifier[0]
    assert "over the limit of 10" in classifier[0]


def test_spammy_copy_under_the_shipped_policy_collects_every_reason(
    guardrails: Guardrails,
) -> None:
    verdict = verdict_of(guardrails, "FREE!!! CLICK NOW $$$ viagra", "act now!!!")
    assert verdict.status == "rejected"
    text = "\n".join(verdict.reasons)
    for expected in (
        "banned term 'viagra'",
        "banned term 'click now'",
        "banned term 'act now'",
        "subject has 3 exclamation marks (at most 1)",
        "subject repeats punctuation or symbols",
        "subject has 3 currency symbols",
        "subject has 3 words in capitals",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("Risk-free: the new delivery dashboard", "banned term 'risk-free'"),
        ("You are a winner of the dashboard", "banned term 'winner'"),
        ("Meet the new PostWise dashboard", "brand 'Postwise' written as 'PostWise'"),
        ("Meet the new postwise dashboard", "brand 'Postwise' written as 'postwise'"),
        ("Post Wise has a new dashboard", "brand 'Postwise' written as 'Post Wise'"),
    ],
)
def test_banned_terms_and_brand_misspellings_are_rejected(
    guardrails: Guardrails, subject: str, reason: str
) -> None:
    verdict = verdict_of(guardrails, subject, "Included in every plan.")
    assert verdict.status == "rejected"
    assert reason in verdict.reasons


def test_brand_spelt_right_and_banned_words_inside_others_pass(guardrails: Guardrails) -> None:
    # "winners" is not the banned word "winner"; "Postwise" is the brand as written.
    verdict = verdict_of(guardrails, "Postwise dashboard: pick the winners", "Every plan.")
    assert verdict.status == "approved", verdict.reasons


@pytest.mark.parametrize(
    ("subject", "preheader", "reason", "secret"),
    [
        (
            "Your dashboard, jane.doe@example.com",
            "",
            "subject contains personal data: email (j…@example.com)",
            "jane.doe@",
        ),
        (
            "Call us about the dashboard",
            "Ring +44 20 7946 0958 today.",
            "preheader contains personal data: phone (phone ending 958)",
            "7946 0958",
        ),
        (
            "Dashboard for card 4242 4242 4242 4242",
            "",
            "subject contains personal data: card (card ending 4242)",
            "4242 4242 4242 4242",
        ),
        (
            "Pay to DE89 3704 0044 0532 0130 00",
            "",
            "subject contains personal data: iban (IBAN DE…3000)",
            "3704 0044",
        ),
    ],
)
def test_personal_data_is_rejected(
    guardrails: Guardrails, subject: str, preheader: str, reason: str, secret: str
) -> None:
    verdict = verdict_of(guardrails, subject, preheader)
    assert verdict.status == "rejected"
    assert [r for r in verdict.reasons if "personal data" in r] == [reason]
    # The stored reason masks the value.
    assert secret not in " ".join(verdict.reasons)


def test_pii_detector_finds_each_kind_and_spares_dates_prices_and_invalid_numbers() -> None:
    text = (
        "mail ann@example.org, phone 0044 161 496 0000, card 4111-1111-1111-1111, "
        "IBAN GB82 WEST 1234 5698 7654 32"
    )
    assert [m.kind for m in find_pii(text)] == ["email", "phone", "card", "iban"]
    assert find_pii(text)[2].masked == "card ending 1111"
    harmless = "On 2026-11-22, 20% off orders over 1,000 (order 12345); card 4242 4242 4242 4241"
    assert find_pii(harmless) == []
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid(
        "GB82 WEST 1234 5698 7654 33"
    )


def test_lengths_count_the_personalisation_token_as_a_name(guardrails: Guardrails) -> None:
    assert counted_length(f"Hi {TOKEN}", 12) == len("Hi ") + 12
    assert counted_length('Hi {{ first_name | default("wonderful reader") }}', 12) == 19
    long_subject = "The new delivery dashboard shows bounces and complaints per provider today"
    assert len(long_subject) <= 78
    verdict = verdict_of(guardrails, f"{TOKEN}: {long_subject}")
    assert "subject is 88 characters, over the limit of 78" in verdict.reasons
    short = verdict_of(guardrails, "Hi", "x" * 111)
    assert "subject is 2 characters, under the minimum of 10" in short.reasons
    assert "preheader is 111 characters, over the limit of 110" in short.reasons


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("Dashboard news\r\nBcc: everyone@example.com", "subject contains control or invisible"),
        ("Dashboard news\u200b for you", "subject contains control or invisible"),
        ("Dashboard for {{ user.password }}", "subject contains template syntax"),
        ("Dashboard {% for x in y %}news", "subject contains template syntax"),
        ("Dashboard news \U0001f680\U0001f680\U0001f525", "subject has 3 emoji (at most 1)"),
    ],
)
def test_characters_and_template_syntax_are_rejected(
    guardrails: Guardrails, subject: str, reason: str
) -> None:
    verdict = verdict_of(guardrails, subject, "Included in every plan.")
    assert verdict.status == "rejected"
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


def test_sensitive_segment_needs_a_person(guardrails: Guardrails) -> None:
    subject = "An update on the new delivery dashboard"
    verdict = verdict_of(guardrails, subject, "Included in every plan.", segment="Health")
    assert verdict.status == "needs_approval"
    assert verdict.reasons == ["segment 'Health' is sensitive: a person must approve the copy"]
    ordinary = verdict_of(guardrails, subject, "Included in every plan.", segment="trial-users")
    assert ordinary.status == "approved"
    # Rejection wins over approval: a person is never asked to approve bad copy.
    bad = verdict_of(guardrails, "Meet PostWise", "Included in every plan.", segment="health")
    assert bad.status == "rejected"


def test_operator_policy_layers_over_the_shipped_one(scanner: Any, tmp_path: Path) -> None:
    override = tmp_path / "copy.toml"
    override.write_text(
        '[terms]\nbanned = ["dashboard"]\n[approval]\nllm_candidates = true\n'
        "[limits]\nsubject_max_chars = 40\n"
    )
    policy = load_copy_policy(override)
    assert policy.banned_terms == ("dashboard",)
    assert policy.subject_max_chars == 40
    assert policy.preheader_max_chars == 110  # untouched keys keep the shipped value
    assert "Postwise" in policy.brands
    rejected = check(Candidate("Meet the new dashboard", "", "offline"), BRIEF, policy, scanner)
    assert rejected.reasons[0] == "banned term 'dashboard'"
    model_written = check(Candidate("Meet the new reports", "", "llm:m"), BRIEF, policy, scanner)
    assert model_written.status == "needs_approval"
    # "winner" is banned by the shipped list only, which the operator's list replaced.
    shipped_only = check(Candidate("Meet the winner", "", "offline"), BRIEF, policy, scanner)
    assert shipped_only.status == "approved"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[limits]\nsubject_max_chars = -3\n", "limits.subject_max_chars: expected an integer"),
        ('[terms]\nbanned = "viagra"\n', "terms.banned: expected a list of non-empty strings"),
        ('[pii]\nkinds = ["email", "ssn"]\n', "pii.kinds: unknown kind(s) ['ssn']"),
        ("[limits\n", "not valid TOML"),
    ],
)
def test_bad_policy_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CopyPolicyError) as raised:
        load_copy_policy(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)
