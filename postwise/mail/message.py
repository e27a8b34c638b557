"""The parsed form of one message, as every check sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Address:
    display_name: str
    address: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower() if "@" in self.address else ""


@dataclass(frozen=True, slots=True)
class Url:
    """A link found in the message. ``source`` says where: text, href, form, image or
    obfuscated (a defanged or spelled-out form such as ``hxxp://`` or ``example[.]com``)."""

    url: str
    host: str
    source: str
    anchor_text: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    declared_type: str
    sniffed_type: str
    size: int
    sha256: str
    archive_members: tuple[str, ...] = ()


@dataclass(slots=True)
class ParsedMessage:
    """Raw bytes made readable. Built by :func:`postwise.mail.parse.parse_message`, which never
    raises on bad mail: whatever was wrong is listed in ``defects``."""

    sha256: str
    size: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    from_: Address | None = None
    reply_to: Address | None = None
    return_path: str = ""
    sender: Address | None = None
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    message_id: str = ""
    date: datetime | None = None
    content_type: str = "text/plain"
    text_plain: str = ""
    html: str = ""
    html_text: str = ""
    hidden_html_text: str = ""
    urls: list[Url] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    charsets: list[str] = field(default_factory=list)
    part_count: int = 0
    max_depth: int = 0
    defects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def body_text(self) -> str:
        """The text a reader sees: the plain part, or the HTML rendered to text when there is
        no plain part or it is a stub far shorter than the HTML (a common sender mistake)."""
        plain = self.text_plain.strip()
        if plain and len(plain) >= 0.2 * len(self.html_text):
            return self.text_plain
        return self.html_text or self.text_plain

    def add_defect(self, name: str) -> None:
        if name not in self.defects:
            self.defects.append(name)
