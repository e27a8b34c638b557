"""The outcome journal: every delivery outcome is appended to a file the moment it is known,
before the database has it, so that a process killed in between loses nothing.

Outcomes reach the database in batches (one transaction for many); between a remote server's
``250`` and that commit, a SIGKILL would otherwise forget the delivery and the message would be
sent again after the restart. An append with ``os.write`` is in the kernel as soon as the call
returns: it survives the death of the process (not a power cut — the batch commit is what
survives those). The journal is a series of numbered segments: the writer starts a new segment
when it takes a batch, and deletes the old one once the batch is committed. On start, the
worker replays what is left for the recipients it still had claimed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from postwise.outbound.queue import RecipientResult

_PREFIX = "outcomes."
_SUFFIX = ".journal"


class OutcomeJournal:
    """Segments ``outcomes.<n>.journal`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [self._number(path) for path in self.segments()]
        self.current = max(numbers, default=0) + 1
        self._fd = self._open(self.current)

    @staticmethod
    def _number(path: Path) -> int:
        return int(path.name[len(_PREFIX) : -len(_SUFFIX)])

    def _path(self, number: int) -> Path:
        return self.folder / f"{_PREFIX}{number:012d}{_SUFFIX}"

    def _open(self, number: int) -> int:
        return os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def segments(self) -> list[Path]:
        """Every segment on disk, oldest first."""
        found = []
        for path in self.folder.glob(f"{_PREFIX}*{_SUFFIX}"):
            with contextlib.suppress(ValueError):
                self._number(path)
                found.append(path)
        return sorted(found, key=self._number)

    def append(self, result: RecipientResult, context: dict[str, Any]) -> None:
        """Record one outcome (one line, one write: a kill leaves whole lines or a torn last
        one, which replay skips)."""
        line = json.dumps(
            {"result": dataclasses.asdict(result), "context": context},
            separators=(",", ":"),
            default=str,
        )
        os.write(self._fd, line.encode("utf-8") + b"\n")

    def rotate(self) -> int:
        """Start a new segment; returns the number of the one just closed (the batch the
        caller took holds exactly its outcomes)."""
        closed = self.current
        os.close(self._fd)
        self.current += 1
        self._fd = self._open(self.current)
        return closed

    def committed(self, number: int) -> None:
        """The outcomes of segment ``number`` are in the database: forget them."""
        self._path(number).unlink(missing_ok=True)

    def leftovers(self) -> list[tuple[RecipientResult, dict[str, Any]]]:
        """The outcomes of every closed-or-not segment but the current one (those a previous
        process wrote and did not commit), oldest first."""
        found: list[tuple[RecipientResult, dict[str, Any]]] = []
        for path in self.segments():
            if self._number(path) == self.current:
                continue
            for line in path.read_bytes().splitlines():
                try:
                    entry = json.loads(line)
                    result = RecipientResult(**entry["result"])
                except (ValueError, TypeError, KeyError):
                    continue  # a line torn by the kill
                found.append((result, dict(entry.get("context") or {})))
        return found

    def forget_leftovers(self) -> None:
        for path in self.segments():
            if self._number(path) != self.current:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
