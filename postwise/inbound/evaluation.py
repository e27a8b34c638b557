"""``postwise eval inbound``: confusion matrix, FPR and recall of the whole pipeline (checks,
model and policy), throughput and peak memory, on a labelled corpus."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postwise.core.types import CLASSES
from postwise.inbound.corpus import CorpusMessage, is_validation, read_corpus, sender_view
from postwise.inbound.scanner import Scanner


@dataclass
class EvalReport:
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: {p: 0 for p in CLASSES} for t in CLASSES}
    )
    flagged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    false_positives: list[str] = field(default_factory=list)

    def _share(self, label: str) -> float:
        return self.flagged[label] / self.totals[label] if self.totals[label] else 0.0

    def to_json(self) -> dict[str, Any]:
        total = sum(self.totals.values())
        return {
            "messages": total,
            "counts": dict(self.totals),
            "confusion_matrix": self.confusion,
            "ham_fpr": round(self._share("ham"), 5),
            "spam_recall": round(self._share("spam"), 5),
            "phish_recall": round(self._share("phish"), 5),
            "messages_per_second": round(total / self.seconds, 1) if self.seconds else 0.0,
            "peak_memory_mb": round(self.peak_memory_mb, 1),
            "false_positives": self.false_positives[:50],
        }


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def select_messages(data: Path, split: str, seed: int = 0) -> list[CorpusMessage]:
    """The messages of ``data`` to evaluate. The shared corpus layout has a train/validation
    split (``split`` = validation, train or all); a plain ham/spam/phish folder is used whole."""
    messages = list(read_corpus(data))
    if split == "all" or not (data / "manifest.csv").is_file():
        return messages
    want_validation = split == "validation"
    return [m for m in messages if is_validation(m.group, seed) == want_validation]


def evaluate(
    scanner: Scanner,
    messages: list[CorpusMessage],
    view: Callable[[bytes], bytes] = sender_view,
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Scan each message (in ``view``) and count outcomes. A message is *flagged* when its
    action is anything but ``no_action``; its class is the verdict's class."""
    report = EvalReport()
    inputs = [(m, view(m.raw)) for m in messages]
    start = time.perf_counter()
    for message, raw in inputs:
        verdict = scanner.scan(raw, message_id=message.id)
        report.totals[message.label] += 1
        report.confusion[message.label][verdict.message_class] += 1
        if verdict.action != "no_action":
            report.flagged[message.label] += 1
            if message.label == "ham":
                report.false_positives.append(message.id)
        if progress:
            progress(1)
    report.seconds = time.perf_counter() - start
    report.peak_memory_mb = _peak_rss_mb()
    return report
