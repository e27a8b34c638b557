"""Body presentation: HTML-only mail, hidden text, bodies with no readable text."""

from __future__ import annotations

from postwise.core.types import Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.mail.message import ParsedMessage


class ContentCheck:
    name = "content"

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        symbols: list[Symbol] = []
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
