"""The gateway's spool: every message is on disk, fsynced, before the pipeline sees it, and
leaves the spool only once it is relayed, quarantined, stored or refused.

If the process dies in between (SIGKILL, power loss), :meth:`Spool.pending` lists what is left,
and the gateway finishes each one on its next start. A message may then reach the next hop twice
(relayed just before the crash, again on resume) but never zero times.

A spool file is one JSON line (the envelope) followed by the raw message.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from postwise.core.durable import remove_durably, write_durably
from postwise.inbound.checks.base import Envelope


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    path: Path
    spool_id: str
    envelope: Envelope
    received_at: float
    raw: bytes


class SpoolError(ValueError):
    """A spool file cannot be read back (named in the message); it is kept aside."""


class Spool:
    """Spool files under ``folder`` (``incoming/`` holds them; ``corrupt/`` what cannot be read)."""

    def __init__(self, folder: Path) -> None:
        self.incoming = folder / "incoming"
        self.corrupt = folder / "corrupt"
        self.staging = folder / "tmp"
        for sub in (self.incoming, self.corrupt, self.staging):
            sub.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        """A fresh spool id; ids sort by age (milliseconds since the epoch, then random)."""
        return f"{int(time.time() * 1000):013d}-{secrets.token_hex(6)}"

    def put(self, raw: bytes, envelope: Envelope, spool_id: str | None = None) -> SpooledMessage:
        """Write one message durably under ``spool_id`` (a fresh one when None); returns its
        handle. Raises OSError when the disk refuses."""
        received_at = time.time()
        spool_id = spool_id or self.new_id()
        head = {
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_to),
            "client_ip": envelope.client_ip,
            "helo": envelope.helo,
            "received_at": received_at,
        }
        path = self.incoming / f"{spool_id}.msg"
        line = json.dumps(head, ensure_ascii=True).encode("ascii") + b"\n"
        write_durably(path, [line, raw], self.staging)
        return SpooledMessage(path, spool_id, envelope, received_at, raw)

    def done(self, message: SpooledMessage) -> None:
        """The message is relayed, stored or refused: forget it (durably)."""
        remove_durably(message.path)

    def read(self, path: Path) -> SpooledMessage:
        """Read a spool file back. Raises SpoolError naming it when it is damaged."""
        data = path.read_bytes()
        head_line, newline, raw = data.partition(b"\n")
        try:
            if not newline:
                raise ValueError("no envelope line")
            head = json.loads(head_line)
            envelope = Envelope(
                str(head["mail_from"]),
                tuple(str(r) for r in head["rcpt_to"]),
                str(head["client_ip"]),
                str(head["helo"]),
            )
            received_at = float(head["received_at"])
        except (ValueError, KeyError, TypeError) as error:
            raise SpoolError(f"{path}: damaged spool file ({error})") from error
        return SpooledMessage(path, path.stem, envelope, received_at, raw)

    def pending(self) -> Iterator[SpooledMessage]:
        """Messages left in the spool, oldest first. Damaged files are moved to ``corrupt/``
        (kept for the operator, never deleted) and skipped."""
        for path in sorted(self.incoming.glob("*.msg")):
            try:
                yield self.read(path)
            except FileNotFoundError:  # finished meanwhile
                continue
            except SpoolError:
                os.replace(path, self.corrupt / path.name)

    def count(self) -> int:
        return sum(1 for _ in self.incoming.glob("*.msg"))
