"""Which software wrote a plain-text bounce report, and what it says per recipient.

Most MTAs that send no RFC 3464 ``message/delivery-status`` part still write their reports in
a fixed layout: Postfix ``<addr>: host X said: ... (in reply to RCPT TO command)``, Exim's
``The following address(es) failed:`` block, qmail's ``<addr>:`` paragraphs, Sendmail's
``----- Transcript of session follows -----``, Exchange's ``Remote Server returned '...'``,
Gmail's ``The error that the other server returned was:``. :func:`read_report` recognises
the layout and reads, per failed recipient, the reply code, the enhanced status (RFC 3463), the
diagnostic sentence and the SMTP command that was refused (RFC 5321), so the classifier sees
the recipient's own sentence instead of the whole report. An unrecognised layout gives no
findings and the caller falls back to its generic heuristics. Never raises on odd text.

The layouts were written from the RFCs and from the reports in the training split; each
extractor is a small function over the decoded report text (the returned original cut off).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# The local part starts where a run of its characters starts and is never given back
# (possessive): a long run without "@" is read once, not once per starting position.
_ADDRESS = (
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]++@"
    r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
ADDRESS = re.compile(_ADDRESS)
ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
REPLY = re.compile(r"(?<![\d.#\[-])([245][0-7]\d)(?:[ -]|$)", re.MULTILINE)


@dataclass(frozen=True)
class EngineFinding:
    """What one report says about one failed recipient."""

    recipient: str
    reply_code: str
    status: str
    diagnostic: str
    command: str  # the refused SMTP command: RCPT, DATA, MAIL, CONN, or "" when not said


# (engine, regex over the report text). Ordered: the more specific layouts first.
ENGINE_MARKERS: tuple[tuple[str, str], ...] = (
    ("gmail", r"the error that the other server returned was|google tried to deliver"),
    ("exchange", r"remote server returned '|diagnostic information for administrators"),
    ("qmail", r"this is the qmail-send program|qmail-send"),
    ("exim", r"the following address\(es\) failed|smtp error from remote mail server after"),
    # three layouts that pass the remote server's words on without a reply code of their own
    # (Sisimai's X1, X2 and Zoho decoders): "addr [text]" after "---The following addresses
    # had delivery errors---"; "Message from X. Unable to deliver message to the following
    # address(es)." then "<addr>:" paragraphs; Zoho's "addr text, ERROR_CODE :NNN, ..."
    ("bracket_list", r"^-{3}the following addresses had delivery errors-{3}\s*$"),
    ("zoho", r"^\S+@\S+ .*, error_code :"),
    ("plain_list", r"^unable to deliver message to the following address\(es\)\.\s*$"),
    ("postfix", r"this is the (postfix|mail system) program|\(in reply to [a-z ]+command\)"),
    (
        "sendmail",
        r"-{3,} ?transcript of session follows|-{3,} ?the following addresses had "
        r"(permanent fatal|delivery) (errors|problems)",
    ),
    ("opensmtpd", r"this is the mailer-daemon, please do not reply"),
    ("dragonfly", r"did not like our (rcpt to|data)|dragonfly mail agent"),
    ("colon_list", r"^<?" + _ADDRESS + r">?:\s*$"),
)
_COMPILED_MARKERS = tuple(
    (name, re.compile(pattern, re.IGNORECASE | re.MULTILINE)) for name, pattern in ENGINE_MARKERS
)

# The refused command, as the engines write it (RFC 5321 command names).
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("DATA", r"end of data|\bdata\b|message body"),
    ("RCPT", r"rcpt|recipient"),
    ("MAIL", r"mail from|\bmail\b"),
    ("CONN", r"connect|greeting|banner|helo|ehlo|initial"),
)


def _command_of(phrase: str) -> str:
    lowered = phrase.lower()
    for name, pattern in _COMMANDS:
        if re.search(pattern, lowered):
            return name
    return ""


def _codes(text: str) -> tuple[str, str]:
    reply = REPLY.search(text)
    enhanced = ENHANCED.search(text)
    return (reply.group(1) if reply else ""), (enhanced.group(1) if enhanced else "")


def _clean(text: str) -> str:
    return " ".join(text.split())[:1000]


def _finding(recipient: str, diagnostic: str, command: str = "") -> EngineFinding:
    diagnostic = _clean(diagnostic)
    code, status = _codes(diagnostic)
    return EngineFinding(recipient.strip(".").lower(), code, status, diagnostic, command)


# --- Postfix, qmail, OpenSMTPD, Yahoo and other "<address>: sentence" layouts -------------

_COLON_BLOCK = re.compile(
    r"^[ \t]*<?(" + _ADDRESS + r")>?(?:[ \t]*\(expanded from[^)]*\))?:[ \t]*(.*?)"
    r"(?=^[ \t]*$|^<?" + _ADDRESS + r">?(?:[ \t]*\(expanded from[^)]*\))?:|^-{2,}|\Z)",
    re.MULTILINE | re.DOTALL,
)
_POSTFIX_COMMAND = re.compile(r"\(in\s+reply\s+to\s+([a-z\s]+?)(?:\s+command)?\)", re.IGNORECASE)
_HOST_SAID = re.compile(r"^host \S+(?: \[[^\]]*\])? said:\s*", re.IGNORECASE)


def _colon_blocks(text: str) -> list[EngineFinding]:
    findings = []
    for match in _COLON_BLOCK.finditer(text):
        diagnostic = match.group(2).strip()
        if not diagnostic:
            continue
        command = ""
        said = _POSTFIX_COMMAND.search(diagnostic)
        if said:
            command = _command_of(said.group(1))
        elif re.search(r"does not like recipient|did not like our rcpt", diagnostic, re.I):
            command = "RCPT"
        diagnostic = _HOST_SAID.sub("", diagnostic)
        findings.append(_finding(match.group(1), diagnostic, command))
    return findings


# --- Exim (and Mail.Ru, which wraps Exim's text) --------------------------------------------

_EXIM_BLOCK = re.compile(
    r"^([ \t]+)<?(" + _ADDRESS + r")>?[^\n]*\n((?:\1[ \t]+\S[^\n]*(?:\n|\Z))*)", re.MULTILINE
)
_EXIM_AFTER = re.compile(r"smtp error from remote (?:mail server|server) after ([^:\n]+)", re.I)


def _exim(text: str) -> list[EngineFinding]:
    start = re.search(r"address\(es\) failed:|one or more of its recipients", text, re.I)
    region = text[start.end() :] if start else text
    findings = []
    seen: set[str] = set()
    for match in _EXIM_BLOCK.finditer(region):
        address = match.group(2).lower()
        lines = [
            line.strip()
            for line in match.group(3).splitlines()
            if line.strip() and not line.strip().startswith("(ultimately generated from")
        ]
        if address in seen:
            continue
        seen.add(address)
        body = " ".join(lines)
        after = _EXIM_AFTER.search(body)
        command = _command_of(after.group(1)) if after else ""
        # the reply itself follows "host NAME [IP]:" after the command
        reply = re.search(r"host \S+ \[[^\]]*\]:?\s*(.*)", body)
        findings.append(_finding(address, reply.group(1) if reply else body, command))
    return findings


# --- Sendmail ----------------------------------------------------------------------------

_SENDMAIL_FATAL = re.compile(
    r"-{3,} ?the following addresses had (?:permanent fatal errors|delivery problems) ?-+\s*\n"
    r"(.*?)(?=\n\s*-{3,}|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_SENDMAIL_TRANSCRIPT = re.compile(
    r"-{3,} ?transcript of session follows ?-+\s*\n(.*?)(?=\n\s*-{3,}|\Z)",
    re.IGNORECASE | re.DOTALL,
)


# A failed recipient starts its own line in Sendmail's list ("<addr>" or "addr").
_SENDMAIL_RECIPIENT = re.compile(r"^[ \t]*<?(" + _ADDRESS + r")>?", re.MULTILINE)


# Sendmail's own verdict line per recipient in a transcript: "550 <addr>... User unknown".
_SENDMAIL_VERDICT = re.compile(r"^[245]\d\d <?(" + _ADDRESS + r")>?\.\.\. ")


def _sendmail_transcript(lines: list[str]) -> list[EngineFinding]:
    """Recipients of a transcript without a "following addresses" list (older Sendmail): each
    verdict line ``NNN <addr>... text`` with the replies and the command (the last ``>>>``)
    of the conversation it closes; a transcript may hold several conversations."""
    findings = []
    command = ""
    replies: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(">>>"):
            command, replies = _command_of(stripped[3:].split(":")[0]), []
        elif stripped.startswith("<<<"):
            replies.append(stripped.lstrip("<").strip())
        elif verdict := _SENDMAIL_VERDICT.match(stripped):
            findings.append(_finding(verdict.group(1), " ".join([*replies, stripped]), command))
    return findings


def _sendmail(text: str) -> list[EngineFinding]:
    fatal = _SENDMAIL_FATAL.search(text)
    transcript = _SENDMAIL_TRANSCRIPT.search(text)
    lines = transcript.group(1).splitlines() if transcript else []
    if not fatal:
        return _sendmail_transcript(lines)
    command = ""
    replies: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(">>>") and not replies:
            command = _command_of(stripped[3:].split(":")[0])
        elif stripped.startswith("<<<") or re.match(r"[245]\d\d[ -]", stripped):
            replies.append(stripped.lstrip("<").strip())
        elif re.search(r"\.\.\. ", stripped) and not stripped.startswith("... while talking"):
            replies.append(stripped)
    recipients: list[tuple[str, str]] = []
    if fatal:
        block = fatal.group(1)
        starts = list(_SENDMAIL_RECIPIENT.finditer(block))
        for index, match in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(block)
            said = re.search(r"\(reason: ([^)]*)\)", block[match.end() : end])
            recipients.append((match.group(1), said.group(1) if said else ""))
    if fatal and not replies and not any(said for _, said in recipients):
        # no transcript: the report's next section (e.g. "Non-delivered information") says why
        following = re.search(
            r"-{3,}[^\n]*-{3,}\s*\n(.*?)(?=\n\s*-{3,}|\Z)", text[fatal.end() :], re.S
        )
        if following:
            replies = [following.group(1)]
    findings = []
    for address, reason in recipients:
        own_replies = [r for r in replies if address.lower() in r.lower()]
        diagnostic = " ".join(own_replies or replies) or reason
        if reason and not _codes(diagnostic)[0] and _codes(reason)[0]:
            diagnostic = reason
        findings.append(_finding(address, diagnostic or reason, command))
    return findings


# --- Exchange / Outlook NDRs ----------------------------------------------------------------

_EXCHANGE_REPLY = re.compile(
    r"(?:remote server returned '([^']*)'|#([245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^#\n]*)#*)",
    re.IGNORECASE,
)


def _exchange(text: str) -> list[EngineFinding]:
    findings = []
    seen: set[str] = set()
    for match in _EXCHANGE_REPLY.finditer(text):
        before = list(ADDRESS.finditer(text[max(0, match.start() - 400) : match.start()]))
        if not before:
            continue
        address = before[-1].group(0).lower()
        if address in seen:
            continue
        seen.add(address)
        findings.append(_finding(address, match.group(1) or match.group(2) or ""))
    return findings


# --- Gmail ------------------------------------------------------------------------------------

_GMAIL_REPLY = re.compile(
    r"the error that the other server returned was:\s*(.*?)(?=\n\s*\n|-{3,}|\Z)",
    re.IGNORECASE | re.DOTALL,
)


def _gmail(text: str) -> list[EngineFinding]:
    reply = _GMAIL_REPLY.search(text)
    head = text[: reply.start()] if reply else text
    addresses = [a.lower() for a in ADDRESS.findall(head)]
    if not addresses or not reply:
        return []
    return [_finding(addresses[0], reply.group(1))]


# --- Layouts that quote the remote server's words with nothing else -------------------------

_BRACKET_LINE = re.compile(r"^[ \t]*<?(" + _ADDRESS + r")>?[ \t]+\[([^\]\n]+)\]", re.MULTILINE)
_ZOHO_LINE = re.compile(r"^[ \t]*(" + _ADDRESS + r") ([^\n]*?error_code :[^\n]*)", re.I | re.M)
_ZOHO_FIELD = re.compile(r"error_code :\s*([^,]*)", re.I)


def _bracket_list(text: str) -> list[EngineFinding]:
    """``addr [the remote's words]`` lines: no code, no status, no command."""
    return [_finding(m.group(1), m.group(2)) for m in _BRACKET_LINE.finditer(text)]


def _zoho(text: str) -> list[EngineFinding]:
    """``addr Invalid Address, ERROR_CODE :550, ERROR_CODE :<the remote's words>``: the
    fields after ``ERROR_CODE :`` are the reply code and the reply (which may start with a
    status); quoted-printable soft breaks are already decoded."""
    findings = []
    for match in _ZOHO_LINE.finditer(text):
        fields = [f.strip() for f in _ZOHO_FIELD.findall(match.group(2))]
        code = next((f for f in fields if re.fullmatch(r"[245]\d\d", f)), "")
        reply = " ".join(f for f in fields if f != code)
        found = _finding(match.group(1), reply or match.group(2))
        findings.append(
            EngineFinding(
                found.recipient, code or found.reply_code, found.status, found.diagnostic, ""
            )
        )
    return findings


# Layouts whose writers add no reply code, status or command to the remote server's words,
# and (as Sisimai's decoders for them) no reason of their own: an unknown-user sentence then
# reaches the classifier with nothing that says the recipient was refused at RCPT.
PASS_THROUGH_ENGINES = frozenset({"bracket_list", "zoho", "plain_list"})


EXTRACTORS: dict[str, Callable[[str], list[EngineFinding]]] = {
    "bracket_list": _bracket_list,
    "zoho": _zoho,
    "plain_list": _colon_blocks,
    "gmail": _gmail,
    "exchange": _exchange,
    "qmail": _colon_blocks,
    "exim": _exim,
    "postfix": _colon_blocks,
    "sendmail": _sendmail,
    "opensmtpd": _colon_blocks,
    "dragonfly": _colon_blocks,
    "colon_list": _colon_blocks,
}


def detect_engine(text: str) -> str:
    """The layout the report is written in (:data:`ENGINE_MARKERS`); ``""`` when unknown."""
    for name, pattern in _COMPILED_MARKERS:
        if pattern.search(text[:20000]):
            return name
    return ""


def read_report(text: str, excluded: set[str] | None = None) -> tuple[str, list[EngineFinding]]:
    """(engine, one finding per failed recipient) of a plain-text report; ``("", [])`` or
    ``(engine, [])`` when the layout is unknown or its blocks cannot be read. Addresses in
    ``excluded`` (the report's own sender, the original sender) are never recipients."""
    try:
        engine = detect_engine(text)
        if not engine:
            return "", []
        findings = [
            f
            for f in EXTRACTORS[engine](text)
            if f.recipient and f.recipient not in (excluded or set())
        ]
        return engine, findings
    except Exception:  # a reader of hostile input: the caller falls back to its heuristics
        return "", []
