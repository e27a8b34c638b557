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


class LayeredReader:
    """Validates merged policy tables; each error names the file the bad key came from (the
    operator's file when it holds the key, or the table that lacks it; else the shipped one)
    and the key in TOML's dotted form. Subclasses set ``error`` to their own error class."""

    error: type[PostwiseError] = PostwiseError

    def __init__(self, shipped: Path, operator: dict[str, Any], operator_path: Path | None):
        self.shipped = shipped
        self.operator = operator
        self.operator_path = operator_path

    def fail(self, key: tuple[str, ...], problem: str) -> PostwiseError:
        node: Any = self.operator
        depth = 0
        for part in key:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                break
            depth += 1
        in_operator = depth >= max(len(key) - 1, 1)
        origin = self.operator_path if in_operator and self.operator_path else self.shipped
        dotted = ""
        for part in key:
            if part.isdigit():
                dotted += f"[{part}]"
            else:
                quoted = f'"{part}"' if "." in part or ":" in part else part
                dotted += ("." if dotted else "") + quoted
        return self.error(f"{origin}: {dotted}: {problem}")

    def table(self, value: Any, key: tuple[str, ...]) -> dict[str, Any]:
        """``value`` when it is a table; else the error naming ``key``."""
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, found {type(value).__name__}")
        return value
