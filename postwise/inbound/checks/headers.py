"""Header anomalies: missing or malformed Date / Message-ID, sender mismatches, display names
that impersonate a domain or a brand."""

from __future__ import annotations

import re

from postwise.core.types import Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.inbound.policy import Policy
from postwise.mail.domains import domain_label, registered_domain
from postwise.mail.message import ParsedMessage

_MESSAGE_ID_RE = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
_DOMAIN_IN_TEXT_RE = re.compile(r"(?i)\b((?:[a-z0-9-]+\.)+(?:com|net|org|[a-z]{2,6}))\b")
_WORD_RE = re.compile(r"[a-z0-9]+")
_DIGITS_RE = re.compile(r"\d")


class HeaderAnomalyCheck:
    name = "headers"

    def __init__(self, policy: Policy) -> None:
        options = policy.check_options("headers")
        self.brands = policy.brands
        self.freemail: set[str] = {d.lower() for d in options.get("freemail_domains", [])}

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        symbols: list[Symbol] = []
        date_header = message.header("Date")
        if date_header is None:
            symbols.append(Symbol("MISSING_DATE", "no Date header"))
        elif message.date is None:
            symbols.append(Symbol("INVALID_DATE", f"Date: {date_header[:80]}"))
        if not message.message_id:
            symbols.append(Symbol("MISSING_MID", "no Message-ID header"))
        elif not _MESSAGE_ID_RE.match(message.message_id):
            symbols.append(Symbol("INVALID_MID", f"Message-ID: {message.message_id[:80]}"))
        sender = message.from_
        if sender is None or "@" not in sender.address:
            symbols.append(Symbol("MISSING_FROM", "no usable From address"))
            return symbols
        from_domain = registered_domain(sender.domain)
        if from_domain in self.freemail:
            symbols.append(Symbol("FROM_FREEMAIL", from_domain))
        local = sender.address.rpartition("@")[0]
        if len(_DIGITS_RE.findall(local)) >= 5 or (
            len(local) > 24 and any(c.isdigit() for c in local)
        ):
            symbols.append(Symbol("FROM_LOCALPART_GENERATED", local[:64]))
        if not message.to and not message.cc:
            symbols.append(Symbol("MISSING_TO", "no To or Cc recipients"))
        if message.reply_to and "@" in message.reply_to.address:
            reply_domain = registered_domain(message.reply_to.domain)
            if reply_domain and reply_domain != from_domain:
                evidence = f"From {from_domain}, Reply-To {reply_domain}"
                if reply_domain in self.freemail and from_domain not in self.freemail:
                    symbols.append(Symbol("REPLYTO_FREEMAIL_MISMATCH", evidence))
                else:
                    symbols.append(Symbol("REPLYTO_DOMAIN_MISMATCH", evidence))
        if message.return_path and "@" in message.return_path:
            path_domain = registered_domain(message.return_path.rpartition("@")[2])
            if path_domain and path_domain != from_domain:
                symbols.append(
                    Symbol("RETURNPATH_MISMATCH", f"From {from_domain}, Return-Path {path_domain}")
                )
        symbols.extend(self._display_name(sender.display_name, sender.address, from_domain))
        symbols.extend(self._subject_brand(message, from_domain))
        return symbols

    def _subject_brand(self, message: ParsedMessage, from_domain: str) -> list[Symbol]:
        """A subject naming a brand whose domains neither sent the message nor are linked."""
        words = set(_WORD_RE.findall(message.subject.lower()))
        named = [brand for brand in self.brands if brand in words]
        if not named:
            return []
        linked = {registered_domain(url.host) for url in message.urls[:200] if url.host}
        for brand in named:
            domains = self.brands[brand]
            if from_domain not in domains and not domains & linked:
                return [
                    Symbol(
                        "SUBJECT_BRAND_FOREIGN", f"subject names {brand}, sent from {from_domain}"
                    )
                ]
        return []

    def _display_name(self, display: str, address: str, from_domain: str) -> list[Symbol]:
        if not display:
            return []
        symbols: list[Symbol] = []
        lowered = display.lower()
        if "@" in lowered:
            shown = lowered.split("@")[-1].strip(" >'\"")
            if shown and registered_domain(shown) != from_domain:
                symbols.append(
                    Symbol(
                        "FROM_NAME_HAS_ADDRESS", f"name shows {display[:60]!r}, sent from {address}"
                    )
                )
        else:
            for match in _DOMAIN_IN_TEXT_RE.finditer(lowered):
                shown_domain = registered_domain(match.group(1))
                if "." in shown_domain and shown_domain != from_domain:
                    symbols.append(
                        Symbol(
                            "FROM_NAME_IMPERSONATES_DOMAIN",
                            f"name shows {match.group(1)}, sent from {from_domain}",
                        )
                    )
                    break
        words = set(_WORD_RE.findall(lowered))
        label = domain_label(from_domain)
        for brand, domains in self.brands.items():
            if brand in words and from_domain not in domains and label != brand:
                symbols.append(
                    Symbol(
                        "FROM_NAME_BRAND_MISMATCH", f"name says {brand}, sent from {from_domain}"
                    )
                )
                break
        return symbols
