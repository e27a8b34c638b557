"""Attachments: executables, macro documents, double extensions, archives holding executables,
HTML attachments, and files whose content contradicts their name."""

from __future__ import annotations

from postwise.core.types import Symbol
from postwise.inbound.checks.base import ScanContext
from postwise.inbound.policy import Policy
from postwise.mail.message import ParsedMessage

_EXECUTABLE_TYPES = {
    "application/x-msdownload",
    "application/x-dosexec",
    "application/x-executable",
    "application/x-elf",
    "application/x-mach-binary",
    "application/vnd.microsoft.portable-executable",
}


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


class AttachmentCheck:
    name = "attachments"

    def __init__(self, policy: Policy) -> None:
        options = policy.check_options("attachments")
        self.executable_ext = {e.lower() for e in options.get("executable_extensions", [])}
        self.macro_ext = {e.lower() for e in options.get("macro_extensions", [])}
        self.archive_ext = {e.lower() for e in options.get("archive_extensions", [])}
        self.document_ext = {e.lower() for e in options.get("document_extensions", [])}

    def run(self, message: ParsedMessage, context: ScanContext) -> list[Symbol]:
        found: dict[str, str] = {}
        for attachment in message.attachments:
            name = attachment.filename.strip().lower()
            ext = _extension(name)
            if ext in self.executable_ext or attachment.sniffed_type in _EXECUTABLE_TYPES:
                found.setdefault(
                    "ATTACH_EXECUTABLE", attachment.filename or attachment.sniffed_type
                )
            if ext in self.macro_ext:
                found.setdefault("ATTACH_MACRO_DOC", attachment.filename)
            parts = name.split(".")
            if (
                len(parts) >= 3
                and parts[-2] in self.document_ext
                and (
                    ext in self.executable_ext or ext in self.archive_ext or ext in {"htm", "html"}
                )
            ):
                found.setdefault("ATTACH_DOUBLE_EXT", attachment.filename)
            if ext in {"htm", "html", "shtml", "svg"} or attachment.declared_type == "text/html":
                found.setdefault("ATTACH_HTML", attachment.filename or attachment.declared_type)
            for member in attachment.archive_members:
                if _extension(member) in self.executable_ext | self.macro_ext:
                    found.setdefault(
                        "ATTACH_ARCHIVE_EXECUTABLE", f"{attachment.filename}: {member}"
                    )
                    break
            if (
                ext in self.document_ext
                and attachment.sniffed_type in _EXECUTABLE_TYPES | {"application/zip"}
                and ext not in {"docx", "xlsx", "pptx", "odt", "ods"}
            ):
                found.setdefault(
                    "ATTACH_TYPE_MISMATCH", f"{attachment.filename} is {attachment.sniffed_type}"
                )
        return [Symbol(name, evidence) for name, evidence in found.items()]
