"""Guardrails every generated subject line and preheader passes before anyone may send it.

Policy is data (``conf/copy_policy.toml``, with an operator's file layered over it: tables merge
key by key, lists replace the shipped ones). :meth:`Guardrails.check` applies it to one
candidate and returns a :class:`GuardrailVerdict`:

- **rejected** when any rule fails, with one reason per failure: lengths, control or
  template characters, emoji / ``!!!`` / capitals beyond the limits, banned terms, a brand
  spelt wrongly, personal data (:mod:`postwise.content.pii`), or Postwise's own inbound
  classifier scoring the copy (as a small message) above ``classifier.max_score``;
- **needs_approval** when it passes but the brief's segment is sensitive (or the policy asks a
  person to approve every model-written candidate);
- **approved** otherwise.

The only template syntax allowed in copy is the personalisation token
``{{ first_name | default("there") }}``; lengths count it as ``limits.personalisation_chars``
characters (or its default, if longer), and the classifier and PII checks read its default.

    PostwiseError
    └── PolicyError
        └── CopyPolicyError   a copy policy file, key or value is missing or malformed
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from postwise.content.pii import PII_KINDS, PiiKind, find_pii
from postwise.core.errors import PolicyError
from postwise.core.layered_toml import LayeredReader, merge_tables, read_toml

if TYPE_CHECKING:
    from postwise.core.settings import Settings
    from postwise.inbound.scanner import Scanner

_HERE = Path(__file__).resolve().parent.parent

Status = Literal["approved", "rejected", "needs_approval"]
STATUSES: tuple[Status, ...] = ("approved", "rejected", "needs_approval")

# The one template construct copy may carry; anything else in braces is refused.
PERSONALISATION_RE = re.compile(
    r"\{\{\s*first_name\s*(?:\|\s*default\(\s*(?P<q>[\"'])(?P<default>[^\"'{}]{0,40})(?P=q)\s*\)\s*)?\}\}"
)
_TEMPLATE_SYNTAX_RE = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
_WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_REPEATED_PUNCTUATION_RE = re.compile(r"([!?$€£*])\1+")
_CURRENCY = set("$€£¥₹")


class CopyPolicyError(PolicyError):
    """A copy policy file, key or value is missing or malformed."""


class CandidateLike(Protocol):
    """What the guardrails read of a candidate."""

    @property
    def subject(self) -> str: ...

    @property
    def preheader(self) -> str: ...

    @property
    def source(self) -> str: ...


class BriefLike(Protocol):
    """What the guardrails read of a brief."""

    @property
    def segment(self) -> str | None: ...

    @property
    def facts(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class CopyPolicy:
    """The limits and lists of ``conf/copy_policy.toml``; see that file for what each means."""

    version: str
    subject_min_chars: int
    subject_max_chars: int
    preheader_max_chars: int
    personalisation_chars: int
    max_exclamation_marks: int
    max_emoji: int
    max_all_caps_words: int
    max_currency_symbols: int
    banned_terms: tuple[str, ...]
    brands: dict[str, tuple[str, ...]]
    sensitive_segments: tuple[str, ...]
    approve_llm_candidates: bool
    max_classifier_score: float
    sender: str
    pii_kinds: tuple[PiiKind, ...]


@dataclass(frozen=True)
class GuardrailVerdict:
    """The outcome for one candidate: its status, why (every failed rule, or why a person must
    approve), and the inbound classifier's score of it."""

    status: Status
    reasons: list[str] = field(default_factory=list)
    spam_score: float | None = None


def shipped_copy_policy_path() -> Path:
    """The shipped copy policy: inside the package when installed from a wheel, else the
    repo's."""
    for candidate in (
        _HERE / "conf" / "copy_policy.toml",
        _HERE.parent / "conf" / "copy_policy.toml",
    ):
        if candidate.is_file():
            return candidate
    raise CopyPolicyError("the shipped conf/copy_policy.toml is missing: reinstall Postwise")


class _Reader(LayeredReader):
    error = CopyPolicyError

    def integer(self, data: dict[str, Any], table: str, key: str, minimum: int = 0) -> int:
        value = self.table(data.get(table), (table,)).get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail((table, key), f"expected an integer >= {minimum}, found {value!r}")
        return value

    def strings(self, value: Any, key: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"expected a list of non-empty strings, found {value!r}")
        return tuple(value)


def load_copy_policy(path: Path | None = None) -> CopyPolicy:
    """The shipped copy policy with the operator's file at ``path`` layered on top.

    Raises CopyPolicyError naming the file and the key when a file is unreadable or a value is
    missing or of the wrong type."""
    shipped = shipped_copy_policy_path()
    data = read_toml(shipped, CopyPolicyError, "copy policy file")
    operator = read_toml(path, CopyPolicyError, "copy policy file") if path is not None else {}
    data = merge_tables(data, operator)
    reader = _Reader(shipped, operator, path)
    version = reader.table(data.get("policy"), ("policy",)).get("version")
    if not isinstance(version, str) or not version:
        raise reader.fail(("policy", "version"), "expected a non-empty string")
    brands_table = reader.table(data.get("brands", {}), ("brands",))
    brands = {
        name: reader.strings(
            reader.table(entry, ("brands", name)).get("forbidden", []),
            ("brands", name, "forbidden"),
        )
        for name, entry in brands_table.items()
    }
    approval = reader.table(data.get("approval"), ("approval",))
    llm = approval.get("llm_candidates")
    if not isinstance(llm, bool):
        raise reader.fail(("approval", "llm_candidates"), f"expected true or false, found {llm!r}")
    classifier = reader.table(data.get("classifier"), ("classifier",))
    max_score = classifier.get("max_score")
    if isinstance(max_score, bool) or not isinstance(max_score, int | float):
        raise reader.fail(("classifier", "max_score"), f"expected a number, found {max_score!r}")
    sender = classifier.get("sender")
    if not isinstance(sender, str) or "@" not in sender:
        raise reader.fail(("classifier", "sender"), f"expected an address, found {sender!r}")
    pii = reader.strings(reader.table(data.get("pii"), ("pii",)).get("kinds"), ("pii", "kinds"))
    unknown = [kind for kind in pii if kind not in PII_KINDS]
    if unknown:
        raise reader.fail(("pii", "kinds"), f"unknown kind(s) {unknown}; known: {list(PII_KINDS)}")
    policy = CopyPolicy(
        version=version,
        subject_min_chars=reader.integer(data, "limits", "subject_min_chars"),
        subject_max_chars=reader.integer(data, "limits", "subject_max_chars", 1),
        preheader_max_chars=reader.integer(data, "limits", "preheader_max_chars"),
        personalisation_chars=reader.integer(data, "limits", "personalisation_chars"),
        max_exclamation_marks=reader.integer(data, "characters", "max_exclamation_marks"),
        max_emoji=reader.integer(data, "characters", "max_emoji"),
        max_all_caps_words=reader.integer(data, "characters", "max_all_caps_words"),
        max_currency_symbols=reader.integer(data, "characters", "max_currency_symbols"),
        banned_terms=reader.strings(
            reader.table(data.get("terms"), ("terms",)).get("banned", []), ("terms", "banned")
        ),
        brands=brands,
        sensitive_segments=reader.strings(
            approval.get("sensitive_segments", []), ("approval", "sensitive_segments")
        ),
        approve_llm_candidates=llm,
        max_classifier_score=float(max_score),
        sender=sender,
        pii_kinds=tuple(kind for kind in PII_KINDS if kind in pii),
    )
    if policy.subject_min_chars > policy.subject_max_chars:
        raise reader.fail(
            ("limits", "subject_min_chars"), "must not be larger than subject_max_chars"
        )
    return policy


# ---------------------------------------------------------------- text helpers


def with_defaults(text: str) -> str:
    """``text`` with each personalisation token replaced by its default (``there``)."""
    return PERSONALISATION_RE.sub(lambda m: m.group("default") or "there", text)


def counted_length(text: str, personalisation_chars: int) -> int:
    """Characters of ``text`` as a reader sees them: each personalisation token counts as
    ``personalisation_chars`` or its default's length, whichever is larger."""
    length = 0
    position = 0
    for match in PERSONALISATION_RE.finditer(text):
        length += match.start() - position
        length += max(personalisation_chars, len(match.group("default") or "there"))
        position = match.end()
    return length + len(text) - position


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or unicodedata.category(char) == "So"
    )


def _term_pattern(term: str) -> re.Pattern[str]:
    """``term`` as a case-insensitive pattern, whole words where it starts / ends with one."""
    start = r"(?<!\w)" if term[:1].isalnum() else ""
    end = r"(?!\w)" if term[-1:].isalnum() else ""
    return re.compile(start + re.escape(term).replace(r"\ ", r"\s+") + end, re.IGNORECASE)


# ---------------------------------------------------------------- the rules


def _length_reasons(candidate: CandidateLike, policy: CopyPolicy) -> list[str]:
    reasons = []
    subject = counted_length(candidate.subject, policy.personalisation_chars)
    preheader = counted_length(candidate.preheader, policy.personalisation_chars)
    if subject < policy.subject_min_chars:
        reasons.append(
            f"subject is {subject} characters, under the minimum of {policy.subject_min_chars}"
        )
    if subject > policy.subject_max_chars:
        reasons.append(
            f"subject is {subject} characters, over the limit of {policy.subject_max_chars}"
        )
    if preheader > policy.preheader_max_chars:
        reasons.append(
            f"preheader is {preheader} characters, over the limit of {policy.preheader_max_chars}"
        )
    return reasons


def _character_reasons(field_name: str, text: str, policy: CopyPolicy) -> list[str]:
    reasons = []
    controls = sorted(
        {f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in {"Cc", "Cf", "Co", "Cs"}}
    )
    if controls:
        reasons.append(f"{field_name} contains control or invisible characters {controls}")
    if _TEMPLATE_SYNTAX_RE.search(PERSONALISATION_RE.sub("", text)):
        reasons.append(
            f"{field_name} contains template syntax other than "
            '{{ first_name | default("there") }}'
        )
    plain = with_defaults(text)
    exclamations = plain.count("!")
    if exclamations > policy.max_exclamation_marks:
        reasons.append(
            f"{field_name} has {exclamations} exclamation marks (at most "
            f"{policy.max_exclamation_marks})"
        )
    repeated = sorted({m.group() for m in _REPEATED_PUNCTUATION_RE.finditer(plain)})
    if repeated:
        reasons.append(f"{field_name} repeats punctuation or symbols {repeated}")
    emoji = sum(1 for char in plain if _is_emoji(char))
    if emoji > policy.max_emoji:
        reasons.append(f"{field_name} has {emoji} emoji (at most {policy.max_emoji})")
    currency = sum(1 for char in plain if char in _CURRENCY)
    if currency > policy.max_currency_symbols:
        reasons.append(
            f"{field_name} has {currency} currency symbols (at most {policy.max_currency_symbols})"
        )
    shouted = [w for w in _WORD_RE.findall(plain) if len(w) >= 3 and w.isupper()]
    if len(shouted) > policy.max_all_caps_words:
        reasons.append(
            f"{field_name} has {len(shouted)} words in capitals {shouted[:5]} (at most "
            f"{policy.max_all_caps_words})"
        )
    return reasons


def _term_reasons(text: str, policy: CopyPolicy) -> list[str]:
    reasons = []
    for term in policy.banned_terms:
        if _term_pattern(term).search(text):
            reasons.append(f"banned term {term!r}")
    for brand, forbidden in policy.brands.items():
        spellings = {m.group() for m in _term_pattern(brand).finditer(text)} - {brand}
        for variant in forbidden:
            spellings |= {
                m.group() for m in _term_pattern(variant).finditer(text) if m.group() != brand
            }
        for spelling in sorted(spellings):
            reasons.append(f"brand {brand!r} written as {spelling!r}")
    return reasons


def _pii_reasons(field_name: str, text: str, policy: CopyPolicy) -> list[str]:
    return [
        f"{field_name} contains personal data: {match.kind} ({match.masked})"
        for match in find_pii(text, policy.pii_kinds)
    ]


def copy_message(subject: str, preheader: str, body: str, sender: str) -> bytes:
    """The candidate as the small, well-formed message the inbound classifier scores: the
    subject, then the preheader and ``body`` as the text part."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "reader@example.org"
    message["Date"] = "Mon, 02 Nov 2026 09:00:00 +0000"
    message["Message-ID"] = f"<copy-check@{sender.rpartition('@')[2].rstrip('>')}>"
    # A subject the header folding refuses (a line break) is already rejected by the
    # character rules; score what a reader would see.
    message["Subject"] = " ".join(subject.split())
    message.set_content("\n\n".join(part for part in (preheader, body) if part) or subject)
    return message.as_bytes()


class Guardrails:
    """The copy policy and the inbound scanner that scores candidates. Build once; ``check``
    holds no state, so threads may share one."""

    def __init__(self, policy: CopyPolicy, scanner: Scanner) -> None:
        self.policy = policy
        self.scanner = scanner

    @classmethod
    def from_settings(
        cls, policy_path: Path | None = None, settings: Settings | None = None
    ) -> Guardrails:
        """The copy policy (shipped, with ``policy_path`` over it, else the
        ``copy_policy_path`` setting) and the configured inbound scanner. Raises
        CopyPolicyError, PolicyError or ModelError when one cannot load."""
        from postwise.core.settings import get_settings
        from postwise.inbound.scanner import Scanner

        settings = settings or get_settings()
        policy = load_copy_policy(policy_path or settings.copy_policy_path)
        return cls(policy, Scanner.from_settings(settings))

    def classifier_score(self, candidate: CandidateLike, body: str = "") -> tuple[float, str]:
        """The inbound score of the candidate (as a message with ``body``) and the symbols
        behind it (``ML_SPAM 11.6``)."""
        raw = copy_message(
            with_defaults(candidate.subject),
            with_defaults(candidate.preheader),
            body,
            self.policy.sender,
        )
        verdict = self.scanner.scan(raw)
        symbols = ", ".join(f"{s.name} {s.score:.1f}" for s in verdict.symbols if s.score)
        return round(verdict.score, 2), symbols or "no symbols"

    def check(self, candidate: CandidateLike, brief: BriefLike) -> GuardrailVerdict:
        """The verdict on ``candidate`` written for ``brief``: every rule runs, so a rejected
        candidate carries all its reasons."""
        policy = self.policy
        reasons = _length_reasons(candidate, policy)
        for field_name, text in (
            ("subject", candidate.subject),
            ("preheader", candidate.preheader),
        ):
            reasons += _character_reasons(field_name, text, policy)
        reasons += _term_reasons(f"{candidate.subject}\n{candidate.preheader}", policy)
        for field_name, text in (
            ("subject", candidate.subject),
            ("preheader", candidate.preheader),
        ):
            reasons += _pii_reasons(field_name, with_defaults(text), policy)
        score, symbols = self.classifier_score(candidate, " ".join(brief.facts))
        if score > policy.max_classifier_score:
            reasons.append(
                f"inbound classifier scores it {score:g} ({symbols}), over the limit of "
                f"{policy.max_classifier_score:g}"
            )
        if reasons:
            return GuardrailVerdict("rejected", reasons, score)
        segment = (brief.segment or "").strip().lower()
        sensitive = {s.lower() for s in policy.sensitive_segments}
        if segment and segment in sensitive:
            return GuardrailVerdict(
                "needs_approval",
                [f"segment {brief.segment!r} is sensitive: a person must approve the copy"],
                score,
            )
        if policy.approve_llm_candidates and candidate.source.startswith("llm:"):
            return GuardrailVerdict(
                "needs_approval",
                ["policy asks a person to approve every model-written candidate"],
                score,
            )
        return GuardrailVerdict("approved", [], score)


def check(
    candidate: CandidateLike, brief: BriefLike, policy: CopyPolicy, scanner: Scanner
) -> GuardrailVerdict:
    """:meth:`Guardrails.check` of ``policy`` and ``scanner``, for one-off use."""
    return Guardrails(policy, scanner).check(candidate, brief)
