"""Writing data-set files for the engage tests: a header and lines, gzipped when named .gz."""

from __future__ import annotations

import gzip
from pathlib import Path


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    """``path`` holding ``header`` and ``lines`` (gzip-compressed for a ``.gz`` name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([header, *lines]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path
