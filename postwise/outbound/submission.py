"""Submission: what the SMTP submission port, ``POST /v1/messages`` and ``postwise send``
share. A submission is checked (addresses, size, header fields, line lengths, the suppression
list), completed as a message submission agent does (RFC 6409 8: Message-ID and Date when
missing, a Received trace field), signed with DKIM when a key for the From domain is
configured, then queued durably.

    PostwiseError
    └── SubmissionError   the submission is refused; ``code`` is the SMTP reply to give and
                          ``str()`` says what was wrong and what to do
"""

from __future__ import annotations

import email.utils
import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from postwise.auth.dkim import sign_dkim, signing_key_for
from postwise.core.errors import PostwiseError
from postwise.core.settings import Settings
from postwise.outbound.queue import Enqueued, OutboundQueue, Prepared
from postwise.outbound.suppression import Suppression, SuppressionList, normalise_address

MAX_LINE = 998
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_LOCAL_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_POOL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENVELOPE_ID = re.compile(r"^[\x21-\x7e]{1,100}$")
# RFC 5322 3.6.8: a field name is printable ASCII but ':'; obsolete syntax allows WSP before ':'.
_FIELD = re.compile(rb"^[\x21-\x39\x3b-\x7e]+[ \t]*:")


class SubmissionError(PostwiseError):
    """A submission is refused. ``code`` is the SMTP reply code (and enhanced status) to
    give: 5xx for what a retry will not fix, 4xx for what it may."""

    def __init__(self, message: str, code: str = "550 5.6.0") -> None:
        super().__init__(message)
        self.code = code


def check_address(address: str, what: str = "recipient") -> str:
    """``address`` as the queue stores it (domain lower-cased, IDNA to A-labels). Raises
    SubmissionError saying what is wrong with it."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    if not text:
        raise SubmissionError(f"{what} is empty", "501 5.1.3")
    if len(text) > 254:
        raise SubmissionError(f"{what} {text[:60]!r}...: longer than 254 octets", "501 5.1.3")
    if _SPACE_OR_CONTROL.search(text):
        raise SubmissionError(f"{what} {text!r}: spaces or control characters", "501 5.1.3")
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise SubmissionError(f"{what} {text!r}: not local@domain", "501 5.1.3")
    if len(local) > 64:
        raise SubmissionError(f"{what} {text!r}: local part over 64 octets", "501 5.1.3")
    quoted = local.startswith('"') and local.endswith('"') and len(local) >= 2
    # Non-ASCII local parts (SMTPUTF8) are left to the receiving server to judge.
    dotted_badly = local.startswith(".") or local.endswith(".") or ".." in local
    if not quoted and local.isascii() and (not _LOCAL_ATOM.match(local) or dotted_badly):
        raise SubmissionError(f"{what} {text!r}: invalid local part", "501 5.1.3")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise SubmissionError(f"{what} {text!r}: invalid domain {domain!r}", "501 5.1.2") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise SubmissionError(
            f"{what} {text!r}: {domain!r} is not a fully qualified domain name", "501 5.1.2"
        )
    return f"{local}@{ascii_domain}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The queued message, and the recipients refused (suppressed) with why."""

    enqueued: Enqueued
    refused: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.enqueued.message_id,
            "duplicate": self.enqueued.duplicate,
            "recipients": list(self.enqueued.recipients),
            "refused": self.refused,
        }


@dataclass(frozen=True, slots=True)
class Submission:
    """One message of :meth:`Submitter.submit_many`: the arguments of :meth:`Submitter.submit`."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    source: str
    submitted_by: str
    idempotency_key: str | None = None
    pool: str = "default"
    envelope_id: str | None = None
    not_before: float | None = None


def _check_lines(raw: bytes) -> bytes:
    """CRLF line ends (bare LF is normalised, as submission agents do); refuses lines over
    998 octets, bare CR and NUL."""
    crlf = raw.count(b"\r\n")
    if raw.count(b"\r") != crlf:  # a CR that does not start a CRLF
        raise SubmissionError(
            "the message contains a bare CR: end lines with CRLF (or LF only)", "554 5.6.0"
        )
    nul = raw.find(b"\0")
    if nul >= 0:
        where = raw.count(b"\n", 0, nul) + 1
        raise SubmissionError(
            f"the message contains a NUL byte (line {where}); RFC 5322 forbids it: encode "
            "binary content as base64",
            "554 5.6.0",
        )
    # Every LF ending a CRLF already, the text needs no normalising copy.
    normal = raw.count(b"\n") == crlf
    text = raw if normal else raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    lines = text.split(b"\r\n")
    if max(map(len, lines)) <= MAX_LINE:  # the common case; the loop below names the line
        return text
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE:
            raise SubmissionError(
                f"line {number} is {len(line)} octets; RFC 5322 2.1.1 allows {MAX_LINE}: encode "
                "the body as quoted-printable or base64",
                "554 5.6.0",
            )
    return text


def _header_end(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 2


def _check_header_lines(header: bytes) -> None:
    """Refuses a header section with a line that is neither a field (``name:``) nor the
    continuation of one; Python's parser would take an mbox ``From `` line or a leading
    continuation in silence, and they would go out as they are."""
    for number, line in enumerate(header.split(b"\r\n"), start=1):
        if not line:
            continue
        continuation = line[:1] in (b" ", b"\t")
        if (continuation and number == 1) or (not continuation and not _FIELD.match(line)):
            raise SubmissionError(
                f"the header section is malformed (line {number}: {line[:60]!r} is neither a "
                "field nor a continuation); put a blank line between header fields and body",
                "554 5.6.0",
            )


@functools.lru_cache(maxsize=256)
def _from_addresses(value: str) -> tuple[str, ...]:
    """The addresses of a From field (a batch repeats the same sender)."""
    return tuple(a for _, a in email.utils.getaddresses([value]) if "@" in a)


class Submitter:
    """Checks, completes, signs and queues submissions for one process."""

    def __init__(self, settings: Settings, queue: OutboundQueue, suppressions: SuppressionList):
        self.settings = settings
        self.queue = queue
        self.suppressions = suppressions

    def submit(
        self,
        mail_from: str,
        recipients: list[str],
        raw: bytes,
        *,
        source: str,
        submitted_by: str,
        idempotency_key: str | None = None,
        pool: str = "default",
        envelope_id: str | None = None,
        not_before: float | None = None,
    ) -> Accepted:
        """Queue one message. Suppressed recipients are refused (listed in ``refused``) and
        the others queued; raises SubmissionError when the message or every recipient is
        refused, with the reason. ``not_before`` (Unix seconds) holds delivery until then."""
        [answer] = self.submit_many(
            [
                Submission(
                    mail_from,
                    tuple(recipients),
                    raw,
                    source,
                    submitted_by,
                    idempotency_key,
                    pool,
                    envelope_id,
                    not_before,
                )
            ]
        )
        if isinstance(answer, SubmissionError):
            raise answer
        return answer

    def submit_many(self, items: Sequence[Submission]) -> list[Accepted | SubmissionError]:
        """Queue many messages in one durable batch (:meth:`OutboundQueue.submit_many`): the
        answer for each item, in order, is what :meth:`submit` would return, or the
        SubmissionError it would raise (a refused item does not stop the others). Raises
        OSError or a database error when the batch cannot be queued (then nothing is)."""
        answers: list[Accepted | SubmissionError | None] = []
        pending: list[tuple[int, Prepared, float | None, dict[str, str]]] = []
        # What submit() asks per message, asked once for the batch.
        earlier = self.queue.find_idempotent_many(
            [i.idempotency_key for i in items if i.idempotency_key]
        )
        addresses: list[str] = []
        for item in items:
            for recipient in item.recipients:
                try:
                    addresses.append(check_address(recipient))
                except SubmissionError:
                    continue  # refused below, item by item
        listed = self.suppressions.find(addresses)
        for item in items:
            try:
                checked = self._checked(item, earlier, listed)
            except SubmissionError as error:
                answers.append(error)
                continue
            if isinstance(checked, Accepted):
                answers.append(checked)
                continue
            prepared, refused = checked
            pending.append((len(answers), prepared, item.not_before, refused))
            answers.append(None)
        queued = self.queue.submit_many([(p, not_before) for _, p, not_before, _ in pending])
        for (index, _, _, refused), enqueued in zip(pending, queued, strict=True):
            answers[index] = Accepted(enqueued, refused)
        return [answer for answer in answers if answer is not None]

    def _checked(
        self, item: Submission, earlier: dict[str, Enqueued], listed: dict[str, Suppression]
    ) -> Accepted | tuple[Prepared, dict[str, str]]:
        """The earlier submission of the item's idempotency key, or the prepared message and
        the refused recipients. Raises SubmissionError as :meth:`submit` does. ``earlier`` and
        ``listed`` are the batch's earlier submissions and suppression entries, read in bulk
        beforehand."""
        mail_from, recipients, raw = item.mail_from, list(item.recipients), item.raw
        idempotency_key, pool, envelope_id = item.idempotency_key, item.pool, item.envelope_id
        if idempotency_key is not None:
            if not _IDEMPOTENCY_KEY.match(idempotency_key):
                raise SubmissionError(
                    "an idempotency key is 1-255 printable ASCII characters without spaces",
                    "501 5.5.4",
                )
            if idempotency_key in earlier:
                return Accepted(earlier[idempotency_key])
        if envelope_id is not None and not _ENVELOPE_ID.match(envelope_id):
            raise SubmissionError(
                f"envelope id {envelope_id[:40]!r}: an RFC 3461 ENVID is 1-100 printable ASCII "
                "characters without spaces",
                "501 5.5.4",
            )
        if not _POOL.match(pool):
            raise SubmissionError(f"pool {pool!r}: use letters, digits, '.', '_' or '-'")
        sender = check_address(mail_from, "sender") if mail_from.strip("<> ") else ""
        if not recipients:
            raise SubmissionError("no recipients", "554 5.5.1")
        if len(recipients) > self.settings.submission_max_recipients:
            raise SubmissionError(
                f"{len(recipients)} recipients; at most {self.settings.submission_max_recipients} "
                "per message (split the list, or raise submission_max_recipients)",
                "452 4.5.3",
            )
        checked = list(dict.fromkeys(check_address(r) for r in recipients))
        if len(raw) > self.settings.max_message_bytes:
            raise SubmissionError(
                f"the message is {len(raw)} bytes; the limit is {self.settings.max_message_bytes}",
                "552 5.3.4",
            )
        refused = {
            r: f"suppressed ({entry.source}: {entry.reason})"
            for r in checked
            if (entry := listed.get(normalise_address(r))) is not None
        }
        allowed = [r for r in checked if r not in refused]
        if not allowed:
            raise SubmissionError(
                "every recipient is on the suppression list: "
                + "; ".join(f"{r} {why}" for r, why in refused.items()),
                "550 5.7.1",
            )
        prepared = self.prepare(
            sender, allowed, raw, item.source, item.submitted_by, idempotency_key, pool, envelope_id
        )
        return prepared, refused

    def prepare(
        self,
        sender: str,
        recipients: list[str],
        raw: bytes,
        source: str,
        submitted_by: str,
        idempotency_key: str | None = None,
        pool: str = "default",
        envelope_id: str | None = None,
    ) -> Prepared:
        """The message as it will be queued: checked, completed and signed."""
        text = _check_lines(raw)
        end = _header_end(text)
        _check_header_lines(text[:end])
        headers = BytesHeaderParser(policy=compat32).parsebytes(text[:end])
        if headers.defects or not headers.keys():
            raise SubmissionError(
                "the header section is malformed (a line that is neither a field nor a "
                "continuation); put a blank line between header fields and body",
                "554 5.6.0",
            )
        from_values = headers.get_all("From") or []
        if len(from_values) != 1:
            raise SubmissionError(
                f"the message has {len(from_values)} From fields; RFC 5322 3.6 needs exactly one",
                "554 5.6.0",
            )
        addresses = _from_addresses(str(from_values[0]))
        if not addresses:
            raise SubmissionError(f"From {str(from_values[0])[:80]!r} has no address", "554 5.6.0")
        from_domain = addresses[0].rpartition("@")[2].lower().rstrip(">")
        added: list[bytes] = []
        hostname = self.settings.resolved_delivery_hostname
        message_id = str(headers.get("Message-ID", "")).strip()
        if not message_id:
            message_id = email.utils.make_msgid(domain=from_domain or hostname)
            added.append(f"Message-ID: {message_id}\r\n".encode())
        if headers.get("Date") is None:
            added.append(f"Date: {email.utils.formatdate(localtime=False)}\r\n".encode())
        received = (
            f"Received: from {submitted_by[:100]} by {hostname} (Postwise) with "
            f"{'ESMTPSA' if source == 'smtp' else source.upper()}; "
            f"{email.utils.formatdate(time.time())}\r\n"
        )
        message = received.encode("utf-8", "replace") + b"".join(added) + text
        key = signing_key_for(from_domain, self.settings)
        if key is not None:
            message = sign_dkim(message, key.domain, key.selector, key.key_file.read_bytes())
        subject = str(headers.get("Subject", ""))
        sending_domain = from_domain or (sender.rpartition("@")[2] if sender else hostname)
        return Prepared(
            mail_from=sender,
            recipients=tuple(recipients),
            raw=message,
            sending_domain=sending_domain,
            subject=subject,
            header_message_id=message_id,
            source=source,
            submitted_by=submitted_by,
            pool=pool,
            idempotency_key=idempotency_key,
            envelope_id=envelope_id,
        )
