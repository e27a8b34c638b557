"""The labelled bounce dataset (shared layout) and accuracy of a bounce classifier on it.

Layout: ``manifest.csv`` (one row per bounced recipient: eml_path, rcpt_index, reason,
hardbounce, recipient) and ``bounces.tar.gz`` holding ``eml/<id>.eml`` (or an ``eml/`` folder).
The train/validation split keeps near-duplicate mails together: a mail's group is the hash of
its text with addresses, host names, numbers and white space removed, and a group is in
validation when the hash of (group, seed) falls in the validation share.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postwise.core.errors import CorpusError
from postwise.outbound.bounce_rules import is_hard
from postwise.outbound.bounces import BounceRecord, ReasonClassifier, parse_bounce

VALIDATION_SHARE = 0.25
_NOISE = re.compile(rb"[\w.+-]+@[\w.-]+|\b[\w-]+(\.[\w-]+){2,}\b|\d+|\s+")


@dataclass(frozen=True)
class LabelledRecipient:
    rcpt_index: int
    reason: str
    hard: bool
    recipient: str


@dataclass(frozen=True)
class LabelledBounce:
    id: str
    raw: bytes
    group: str
    recipients: tuple[LabelledRecipient, ...]


def near_duplicate_group(raw: bytes) -> str:
    """Mails equal once addresses, host names, numbers and white space are removed."""
    return hashlib.sha256(_NOISE.sub(b"", raw.lower())).hexdigest()[:16]


def is_validation(group: str, seed: int, share: float = VALIDATION_SHARE) -> bool:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def read_bounces(data: Path) -> list[LabelledBounce]:
    """Every labelled mail of the shared layout, in manifest order. Raises CorpusError."""
    manifest = data / "manifest.csv"
    if not manifest.is_file():
        raise CorpusError(f"{data}: no manifest.csv; expected the shared bounce layout")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    blobs = _archive_members(data / "bounces.tar.gz")
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault(row["eml_path"], []).append(row)
    bounces = []
    for path, recipient_rows in grouped.items():
        raw = blobs.get(path)
        if raw is None and (data / path).is_file():
            raw = (data / path).read_bytes()
        if raw is None:
            raise CorpusError(f"{data}: {path} is in manifest.csv but not in bounces.tar.gz")
        labels = tuple(
            LabelledRecipient(
                rcpt_index=int(r.get("rcpt_index") or 1),
                reason=r["reason"],
                hard=r.get("hardbounce", "").lower() == "true",
                recipient=r.get("recipient", "").lower(),
            )
            for r in recipient_rows
        )
        sample_id = recipient_rows[0].get("sample_id", path)
        bounces.append(LabelledBounce(sample_id, raw, near_duplicate_group(raw), labels))
    return bounces


def _archive_members(archive: Path) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    if archive.is_file():
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    blobs[member.name.removeprefix("./")] = handle.read()
    return blobs


def read_extras(data: Path) -> list[LabelledBounce]:
    """The unlabelled extra mails (``extras.csv`` + ``extras.tar.gz``) with their *silver*
    labels (another Sisimai version's output, not test expectations): training material only,
    never scored. Mails without a silver reason are skipped; a missing file gives []."""
    listing = data / "extras.csv"
    if not listing.is_file():
        return []
    with listing.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    blobs = _archive_members(data / "extras.tar.gz")
    bounces = []
    for row in rows:
        raw = blobs.get(row.get("eml_path", ""))
        reasons = [r for r in row.get("silver_reasons", "").split() if r]
        if raw is None or row.get("kind") != "unlabelled" or len(reasons) != 1:
            continue
        status = row.get("silver_statuses", "").strip("-")
        label = LabelledRecipient(
            rcpt_index=1,
            reason=reasons[0],
            hard=is_hard(reasons[0], "", status),
            recipient=row.get("silver_recipients", "").lower(),
        )
        group = near_duplicate_group(raw)
        bounces.append(LabelledBounce(row.get("sample_id", ""), raw, group, (label,)))
    return bounces


def select(bounces: list[LabelledBounce], split: str, seed: int) -> list[LabelledBounce]:
    if split == "all":
        return bounces
    want = split == "validation"
    return [b for b in bounces if is_validation(b.group, seed) == want]


def aligned(records: list[BounceRecord], rcpt_index: int) -> BounceRecord | None:
    """The parsed record for a labelled recipient: same position, else the first one."""
    if 0 < rcpt_index <= len(records):
        return records[rcpt_index - 1]
    return records[0] if records else None


def evaluate(
    bounces: list[LabelledBounce],
    classify: ReasonClassifier | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Reason, hard/soft and recipient accuracy over every labelled recipient, the most
    frequent confusions (truth -> predicted), and per true reason its count, its correct
    answers and what was predicted for it (``per_reason``)."""
    total = reason_ok = hard_ok = recipient_ok = recipient_total = 0
    confusion: Counter[tuple[str, str]] = Counter()
    answers: Counter[tuple[str, str]] = Counter()
    for bounce in bounces:
        records = parse_bounce(bounce.raw, classify)
        for label in bounce.recipients:
            record = aligned(records, label.rcpt_index)
            predicted = record.reason if record else "none"
            total += 1
            reason_ok += predicted == label.reason
            hard_ok += (record.hard if record else False) == label.hard
            if label.recipient:
                recipient_total += 1
                recipient_ok += (record.recipient if record else "") == label.recipient
            answers[(label.reason, predicted)] += 1
            if predicted != label.reason:
                confusion[(label.reason, predicted)] += 1
        if progress:
            progress(1)
    return {
        "mails": len(bounces),
        "recipients": total,
        "reason_accuracy": round(reason_ok / total, 4) if total else 0.0,
        "hardbounce_accuracy": round(hard_ok / total, 4) if total else 0.0,
        "recipient_accuracy": round(recipient_ok / recipient_total, 4) if recipient_total else 0.0,
        "confusions": [
            {"truth": t, "predicted": p, "count": c} for (t, p), c in confusion.most_common(15)
        ],
        "per_reason": {
            truth: {
                "recipients": sum(c for (t, _), c in answers.items() if t == truth),
                "correct": answers[(truth, truth)],
                "predicted": {p: c for (t, p), c in sorted(answers.items()) if t == truth},
            }
            for truth in sorted({t for t, _ in answers})
        },
    }
