"""Structural defects of the MIME tree, as recorded by the parser."""

from __future__ import annotations

from postwise.core.types import Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.mail.message import ParsedMessage

# Parser defects that deserve their own symbol; every other defect counts as MIME_MALFORMED.
_OWN_SYMBOL = {
    "MIME_TOO_DEEP": "MIME_TOO_DEEP",
    "MIME_TOO_MANY_PARTS": "MIME_TOO_MANY_PARTS",
    "MIME_UNKNOWN_CHARSET": "MIME_BAD_CHARSET",
    "MIME_BAD_CHARSET_DATA": "MIME_BAD_CHARSET",
    "HEADER_BAD_ENCODING": "HEADER_BAD_ENCODING",
    "MIME_UNPARSEABLE": "MIME_UNPARSEABLE",
    "MIME_BAD_TRANSFER_ENCODING": "MIME_BAD_TRANSFER_ENCODING",
    "MIME_INVALID_BASE64_PADDING": "MIME_BAD_TRANSFER_ENCODING",
    "MIME_INVALID_BASE64_CHARACTERS": "MIME_BAD_TRANSFER_ENCODING",
    "MIME_INVALID_BASE64_LENGTH": "MIME_BAD_TRANSFER_ENCODING",
}


class MimeStructureCheck:
    name = "mime"

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        found: dict[str, list[str]] = {}
        for defect in message.defects:
            if not defect.startswith(("MIME_", "HEADER_BAD_ENCODING")):
                continue
            found.setdefault(_OWN_SYMBOL.get(defect, "MIME_MALFORMED"), []).append(defect)
        symbols = [Symbol(name, ", ".join(defects)) for name, defects in found.items()]
        return symbols
