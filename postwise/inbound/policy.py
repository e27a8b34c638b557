"""Scoring policy: symbol weights, action thresholds and check settings, read from TOML.

The shipped file (``conf/policy.toml``) is layered under the operator's own file: tables are
merged key by key, so an operator overrides one weight without copying the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postwise.core.errors import PolicyError
from postwise.core.layered_toml import merge_tables, read_toml
from postwise.core.types import Action

_HERE = Path(__file__).resolve().parent.parent


def shipped_policy_path() -> Path:
    """The shipped policy: inside the package when installed from a wheel, else the repo's."""
    for candidate in (_HERE / "conf" / "policy.toml", _HERE.parent / "conf" / "policy.toml"):
        if candidate.is_file():
            return candidate
    raise PolicyError("the shipped conf/policy.toml is missing: reinstall Postwise")


@dataclass(frozen=True, slots=True)
class SymbolPolicy:
    weight: float
    group: str
    description: str


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    thresholds: dict[Action, float]
    symbols: dict[str, SymbolPolicy]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check_options(self, check: str) -> dict[str, Any]:
        return self.checks.get(check, {})

    @property
    def brands(self) -> dict[str, set[str]]:
        """Commonly impersonated brands and the registered domains that legitimately send
        for them (``[checks.brands]``), lower-cased."""
        return {
            brand.lower(): {domain.lower() for domain in domains}
            for brand, domains in self.check_options("brands").items()
        }


def load_policy(override: Path | None = None) -> Policy:
    """The shipped policy with ``override`` layered on top.

    Raises PolicyError naming the file and key when a value is missing or of the wrong type."""
    data = read_toml(shipped_policy_path(), PolicyError, "policy file")
    source = "shipped"
    if override is not None:
        data = merge_tables(data, read_toml(override, PolicyError, "policy file"))
        source = str(override.name)
    try:
        actions = data["actions"]
        thresholds: dict[Action, float] = {
            "reject": float(actions["reject"]),
            "quarantine": float(actions["quarantine"]),
            "add_header": float(actions["add_header"]),
        }
        symbols = {
            name: SymbolPolicy(
                weight=float(entry["weight"]),
                group=str(entry.get("group", "misc")),
                description=str(entry.get("description", "")),
            )
            for name, entry in data.get("symbols", {}).items()
        }
        version = str(data["policy"]["version"])
    except (KeyError, TypeError, ValueError) as error:
        raise PolicyError(f"policy ({source}): missing or invalid value: {error}") from error
    if not thresholds["add_header"] <= thresholds["quarantine"] <= thresholds["reject"]:
        raise PolicyError(
            f"policy ({source}): thresholds must rise add_header <= quarantine <= reject"
        )
    if source != "shipped":
        version = f"{version}+{source}"
    return Policy(
        version=version, thresholds=thresholds, symbols=symbols, checks=data.get("checks", {})
    )
