"""Labelled mail corpora for training and evaluation.

Two layouts are read:

* the shared corpus layout: ``manifest.csv`` beside ``*.tar.gz`` archives of ``<id>.eml``
  members (see the data README for the columns);
* a plain folder with ``ham/``, ``spam/`` and ``phish/`` sub-folders of ``.eml`` files.

Also here: the *sender view* (collection artefacts removed, so that a model learns mail and not
the corpus it came from) and the near-duplicate-aware train/validation split.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from postwise.core.errors import CorpusError
from postwise.core.types import CLASSES

LABELS = CLASSES


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    id: str
    label: str
    raw: bytes
    group: str
    """Near-duplicate group: messages sharing a group must land on the same side of a split."""
    subset: str = ""


# ---------------------------------------------------------------------------- sender view

_TRACE_FIELDS = {
    "received",
    "return-path",
    "delivered-to",
    "authentication-results",
    "received-spf",
    "dkim-signature",
    "domainkey-signature",
}
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_FIELD_START_RE = re.compile(rb"^[!-9;-~]+:")
_HONEYPOT_RE = re.compile(rb"phishing@pot", re.I)
_NEUTRAL_RECIPIENTS = (
    b"alex.morgan@example.com",
    b"j.schmidt@example.net",
    b"maria.rossi@example.org",
    b"info@example.com",
    b"sam.lee@example.net",
    b"office@example.org",
)


def _is_collection_field(name: bytes) -> bool:
    lowered = name.strip().lower().decode("latin-1")
    return lowered in _TRACE_FIELDS or lowered.startswith(("x-", "arc-"))


def _neutral_date(digest: bytes) -> bytes:
    day = 1 + digest[0] % 28
    hour, minute, second = digest[1] % 24, digest[2] % 60, digest[3] % 60
    weekday = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")[(day - 1 + 0) % 7]
    # 1 March 2026 is a Sunday, so the weekday follows the day of the month.
    return f"{weekday}, {day:02d} Mar 2026 {hour:02d}:{minute:02d}:{second:02d} +0000".encode()


def sender_view(raw: bytes) -> bytes:
    """What the sender wrote: ``raw`` with the mbox ``From `` line, the top-level trace and
    ``X-*`` / ``ARC-*`` / authentication fields removed, ``Date`` replaced by a neutral date in
    March 2026 (derived from the message hash, so the spread is the same for every class), and
    the honeypot address ``phishing@pot`` replaced by ordinary addresses. Body bytes are kept
    except for that address."""
    digest = hashlib.sha256(raw).digest()
    if raw.startswith(b"From "):
        newline = raw.find(b"\n")
        raw = raw[newline + 1 :] if newline >= 0 else b""
    end = _HEADER_END_RE.search(raw)
    head, body = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    lines = head.splitlines(keepends=True)
    fields: list[list[bytes]] = []
    for line in lines:
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
        elif _FIELD_START_RE.match(line):
            fields.append([line])
        else:
            fields.append([line])  # a malformed line: keep it, it is part of what was sent
    kept: list[bytes] = []
    date_written = False
    for field_lines in fields:
        name = field_lines[0].split(b":", 1)[0] if b":" in field_lines[0] else b""
        if name and _is_collection_field(name):
            continue
        if name.strip().lower() == b"date":
            ending = b"\r\n" if field_lines[-1].endswith(b"\r\n") else b"\n"
            kept.append(b"Date: " + _neutral_date(digest) + ending)
            date_written = True
            continue
        kept.extend(field_lines)
    if not date_written and kept:
        ending = b"\r\n" if kept[0].endswith(b"\r\n") else b"\n"
        kept.insert(0, b"Date: " + _neutral_date(digest) + ending)
    if kept and not kept[-1].endswith(b"\n"):
        kept[-1] += b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    result = b"".join(kept)
    if body:
        result = result.rstrip(b"\r\n") + body
    replacement = _NEUTRAL_RECIPIENTS[digest[4] % len(_NEUTRAL_RECIPIENTS)]
    return _HONEYPOT_RE.sub(replacement, result)


# ---------------------------------------------------------------------------- loading


def _read_shared_layout(root: Path) -> Iterator[CorpusMessage]:
    manifest = root / "manifest.csv"
    rows: dict[tuple[str, str], dict[str, str]] = {}
    with manifest.open(newline="", encoding="utf-8") as manifest_file:
        for entry in csv.DictReader(manifest_file):
            if entry.get("label") not in LABELS:
                raise CorpusError(f"{manifest}: row {entry.get('id')!r} has unknown label")
            rows[(entry["archive"], entry["member"])] = entry
    archives = sorted({archive for archive, _ in rows})
    for archive in archives:
        path = root / archive
        if not path.is_file():
            raise CorpusError(f"{manifest} names {archive}, which is missing from {root}")
        with tarfile.open(path) as tar:
            for member in tar:
                row = rows.get((archive, member.name))
                if row is None or not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                group = row.get("text_sha256") or row.get("body_sha256") or row["id"]
                yield CorpusMessage(
                    id=row["id"],
                    label=row["label"],
                    raw=handle.read(),
                    group=group,
                    subset=row.get("subset", ""),
                )


def _read_folder_layout(root: Path) -> Iterator[CorpusMessage]:
    for label in LABELS:
        folder = root / label
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            raw = path.read_bytes()
            yield CorpusMessage(
                id=f"{label}/{path.relative_to(folder)}",
                label=label,
                raw=raw,
                group=hashlib.sha256(raw).hexdigest(),
            )


def read_corpus(root: Path) -> Iterator[CorpusMessage]:
    """Every labelled message under ``root``, in a stable order.

    Raises CorpusError when ``root`` is in neither known layout."""
    if (root / "manifest.csv").is_file():
        return _read_shared_layout(root)
    if any((root / label).is_dir() for label in LABELS):
        return _read_folder_layout(root)
    raise CorpusError(
        f"{root}: expected manifest.csv with .tar.gz archives, or ham/ spam/ phish/ folders"
    )


def is_validation(group: str, seed: int = 0, share: float = 0.2) -> bool:
    """Whether a near-duplicate group belongs to the validation split (stable for a seed)."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share
