"""Policy files as data: read a TOML file, and layer an operator's file over a shipped one
(tables merge key by key; any other value, lists included, replaces the shipped one)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from postwise.core.errors import PostwiseError


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` layered over ``base``, recursively for tables; neither is modified."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path, error: type[PostwiseError], what: str) -> dict[str, Any]:
    """The TOML file at ``path``. Raises ``error`` naming the file (``what`` says which kind,
    e.g. "policy file") when it is missing, unreadable or not valid TOML."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as failure:
        raise error(f"{path}: {what} not found") from failure
    except OSError as failure:
        raise error(f"{path}: cannot read the {what}: {failure}") from failure
    except tomllib.TOMLDecodeError as failure:
        raise error(f"{path}: not valid TOML: {failure}") from failure
