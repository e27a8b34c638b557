"""From a verdict to what a mail server does with the message: the one place the SMTP gateway
and the milter share, so both act alike on the same verdict.

=============  =========================================================================
verdict        what the gateway / milter does
=============  =========================================================================
no_action      deliver, with ``X-Postwise-*`` headers added
add_header     deliver, with the headers (``X-Postwise-Action: add_header`` marks it)
quarantine     keep it out of the mailbox: the gateway's quarantine store, the MTA's hold
reject         refuse it in the session with ``550 5.7.1`` and the reason
=============  =========================================================================

Mail received over SMTP also gets the ``Authentication-Results`` of its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postwise.core.types import Verdict

Disposition = Literal["deliver", "quarantine", "reject"]

_DISPOSITIONS: dict[str, Disposition] = {
    "no_action": "deliver",
    "add_header": "deliver",
    "quarantine": "quarantine",
    "reject": "reject",
}
# An SMTP reply line is at most 512 octets; the reason is cut well before that.
_MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one message, and the words to do it with."""

    disposition: Disposition
    verdict: Verdict
    headers: tuple[tuple[str, str], ...]
    reason: str

    @property
    def reject_reply(self) -> str:
        """The in-session refusal: ``550 5.7.1`` and the reason."""
        return f"550 5.7.1 {self.reason}"


def verdict_reason(verdict: Verdict, top: int = 3) -> str:
    """A one-line, ASCII reason: the class, the score and the symbols that weighed most."""
    weighty = [s for s in verdict.symbols if s.score > 0][:top]
    named = ", ".join(f"{s.name}({s.score:+.1f})" for s in weighty) or "no positive symbols"
    reason = f"message judged {verdict.message_class} (score {verdict.score:.1f}: {named})"
    reason = reason.encode("ascii", "replace").decode("ascii")
    return reason[:_MAX_REASON]


def postwise_headers(verdict: Verdict) -> tuple[tuple[str, str], ...]:
    """The headers added to every delivered or quarantined message: ``X-Postwise-*``, then
    ``Authentication-Results`` when the verdict carries one (mail received over SMTP). It comes
    after ours so that :func:`without_postwise_headers` still finds them all on top."""
    symbols = ", ".join(f"{s.name}={s.score:.2f}" for s in verdict.symbols if s.score)
    headers = [
        ("X-Postwise-Score", f"{verdict.score:.2f}"),
        ("X-Postwise-Action", verdict.action),
        ("X-Postwise-Class", verdict.message_class),
        ("X-Postwise-Symbols", symbols or "none"),
    ]
    results = verdict.extra.get("authentication_results")
    if isinstance(results, str) and results:
        # One line here; fold_header (gateway) and the milter fold it at spaces.
        headers.append(("Authentication-Results", " ".join(results.split())))
    return tuple(headers)


def decide(verdict: Verdict) -> Decision:
    """The decision for ``verdict`` (a pure function of it)."""
    return Decision(
        disposition=_DISPOSITIONS[verdict.action],
        verdict=verdict,
        headers=postwise_headers(verdict),
        reason=verdict_reason(verdict),
    )


def fold_header(name: str, value: str, width: int = 78) -> bytes:
    """``Name: value`` folded at spaces so no line passes ``width``, CRLF-terminated."""
    words = value.split(" ")
    lines: list[str] = []
    current = f"{name}:"
    for word in words:
        if len(current) + 1 + len(word) > width and current.strip():
            lines.append(current)
            current = "\t" + word
        else:
            current = f"{current} {word}"
    lines.append(current)
    return ("\r\n".join(lines) + "\r\n").encode("ascii", "replace")


def with_headers(raw: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
    """``raw`` with ``headers`` prepended (the MTA convention for trace and filter headers)."""
    return b"".join(fold_header(name, value) for name, value in headers) + raw


def without_postwise_headers(raw: bytes) -> bytes:
    """``raw`` without the ``X-Postwise-*`` headers a gateway put on top (for learning from a
    released message as its sender wrote it)."""
    lines = raw.split(b"\r\n")
    index = 0
    while index < len(lines) and (
        lines[index][:11].lower() == b"x-postwise-"
        or (index > 0 and lines[index][:1] in (b" ", b"\t") and _is_postwise(lines, index))
    ):
        index += 1
    return b"\r\n".join(lines[index:])


def _is_postwise(lines: list[bytes], index: int) -> bool:
    """Whether the continuation line at ``index`` belongs to an X-Postwise-* header."""
    while index > 0 and lines[index][:1] in (b" ", b"\t"):
        index -= 1
    return lines[index][:11].lower() == b"x-postwise-"


def without_forged_results(raw: bytes, authserv_id: str) -> bytes:
    """``raw`` without the ``Authentication-Results`` header fields that claim to come from
    ``authserv_id`` (RFC 8601 5: a border MTA removes them, or a sender could forge our
    verdict). Other fields, the body and the bytes of everything kept are untouched."""
    end = raw.find(b"\r\n\r\n")
    head_end = end + 2 if end >= 0 else len(raw)
    lines = raw[:head_end].split(b"\r\n")
    claimed = authserv_id.strip().lower().encode("ascii", "replace")
    kept: list[bytes] = []
    dropping = False
    for line in lines:
        if line[:1] in (b" ", b"\t"):  # a continuation belongs to the field above
            if not dropping:
                kept.append(line)
            continue
        name, colon, value = line.partition(b":")
        dropping = bool(
            colon
            and name.strip().lower() == b"authentication-results"
            and value.split(b";", 1)[0].strip().lower().split(b" ", 1)[0] == claimed
        )
        if not dropping:
            kept.append(line)
    if len(kept) == len(lines):
        return raw
    return b"\r\n".join(kept) + raw[head_end:]
