"""Personal data in short copy: email addresses, phone numbers, payment card numbers (Luhn-valid)
and IBANs (mod-97-valid).

Built for subject lines and preheaders, where any of these is a leak (a model that copies a
customer's address into a subject, a test card number left in a draft), so the patterns favour
catching over sparing: a run of 9 to 15 digits is read as a phone number. Dates (``2026-11-22``),
prices and percentages are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PiiKind = Literal["email", "phone", "card", "iban"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "phone", "card", "iban")

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d \-./()]{6,}\d(?![\w])")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data: its kind, where it is in the text, and a masked form safe
    to log or store (``card ending 4242``)."""

    kind: PiiKind
    start: int
    end: int
    masked: str


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check that every card number carries."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """Whether ``text`` (spaces allowed) is an IBAN whose ISO 13616 mod-97 check holds."""
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def find_pii(text: str, kinds: Iterable[PiiKind] = PII_KINDS) -> list[PiiMatch]:
    """Every piece of personal data of ``kinds`` in ``text``, in order of position. A span
    matched as a card or IBAN is not matched again as a phone number."""
    wanted = set(kinds)
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    if "email" in wanted:
        for match in _EMAIL_RE.finditer(text):
            local, _, domain = match.group().partition("@")
            found.append(PiiMatch("email", match.start(), match.end(), f"{local[:1]}…@{domain}"))
            taken.append(match.span())
    if "iban" in wanted:
        for match in _IBAN_RE.finditer(text):
            if free(*match.span()) and iban_valid(match.group()):
                compact = match.group().replace(" ", "")
                found.append(
                    PiiMatch(
                        "iban", match.start(), match.end(), f"IBAN {compact[:2]}…{compact[-4:]}"
                    )
                )
                taken.append(match.span())
    for match in _CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if free(*match.span()) and 13 <= len(digits) <= 19 and luhn_valid(digits):
            if "card" in wanted:
                found.append(
                    PiiMatch("card", match.start(), match.end(), f"card ending {digits[-4:]}")
                )
            taken.append(match.span())
    if "phone" in wanted:
        for match in _PHONE_RE.finditer(text):
            value = match.group().strip()
            digits = re.sub(r"\D", "", value)
            international = value.startswith(("+", "00"))
            long_enough = 8 <= len(digits) <= 15 if international else 9 <= len(digits) <= 15
            if free(*match.span()) and long_enough and not _ISO_DATE_RE.match(value):
                found.append(
                    PiiMatch("phone", match.start(), match.end(), f"phone ending {digits[-3:]}")
                )
                taken.append(match.span())
    return sorted(found, key=lambda item: item.start)
