"""Body presentation: HTML-only mail, hidden text, bodies with no readable text."""

from __future__ import annotations

import re

from postwise.core.types import Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.mail.message import ParsedMessage

# Latin letters with stacked or unusual diacritics (Latin Extended Additional, most of Latin
# Extended-B, combining marks): spam decorates words with them to slip past word filters.
_DECORATED_LATIN_RE = re.compile("[\u1e00-\u1eff\u0180-\u024f\u0300-\u036f]")


class ContentCheck:
    name = "content"

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        symbols: list[Symbol] = []
        decorated = len(_DECORATED_LATIN_RE.findall(message.body_text[:20_000]))
        if decorated >= 8:
            letters = sum(1 for char in message.body_text[:20_000] if char.isalpha())
            if decorated >= 0.03 * letters:
                symbols.append(
                    Symbol("TEXT_DECORATED_LETTERS", f"{decorated} of {letters} letters decorated")
                )
        if message.html and not message.text_plain.strip():
            symbols.append(Symbol("HTML_ONLY", "no text/plain part"))
        hidden = len(message.hidden_html_text)
        visible = len(message.html_text)
        if hidden >= 200 or (hidden >= 40 and hidden > 0.25 * max(visible, 1)):
            symbols.append(Symbol("HTML_HIDDEN_TEXT", f"{hidden} hidden of {visible} characters"))
        if not message.body_text.strip() and not message.attachments:
            symbols.append(Symbol("EMPTY_BODY", "no readable text"))
        elif (
            message.html
            and len(message.html_text.strip()) < 40
            and message.html.lower().count("<img") >= 1
        ):
            symbols.append(Symbol("HTML_IMAGE_ONLY", "HTML with images and almost no text"))
        return symbols
