"""Where messages to scan come from: ``.eml`` files, folders of them, mbox files, Maildirs."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SourcedMessage:
    """One message and a name a person can find it by (file, or mbox file and index)."""

    name: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A path that could not be read; reported, never silently skipped."""

    name: str
    error: str


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _mbox_messages(path: Path) -> Iterator[SourcedMessage]:
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield SourcedMessage(f"{path}#{index}", box.get_bytes(key))
    finally:
        box.close()


def _maildir_messages(path: Path) -> Iterator[SourcedMessage]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield SourcedMessage(f"{path}/{key}", box.get_bytes(key))


def iter_messages(paths: list[Path]) -> Iterator[SourcedMessage | SourceProblem]:
    """Every message under ``paths``, in a stable order. Folders are walked (a Maildir is read
    as one), files starting with ``From `` are read as mbox, any other file as one message."""
    for path in paths:
        try:
            if path.is_dir():
                if _is_maildir(path):
                    yield from _maildir_messages(path)
                    continue
                children = sorted(p for p in path.iterdir() if not p.name.startswith("."))
                yield from iter_messages(children)
            elif path.is_file():
                with path.open("rb") as handle:  # one open: the head decides, the rest follows
                    head = handle.read(5)
                    is_mbox = head == b"From " and path.suffix.lower() != ".eml"
                    raw = b"" if is_mbox else head + handle.read()
                if is_mbox:
                    yield from _mbox_messages(path)
                else:
                    yield SourcedMessage(str(path), raw)
            else:
                yield SourceProblem(str(path), "no such file or folder")
        except OSError as error:
            yield SourceProblem(str(path), f"unreadable: {error.strerror or error}")
