"""House rules checked as tests: lint, types, and documentation that keeps up with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from postwise.core.settings import Settings
from postwise.inbound.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", "postwise", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in Settings.model_fields if f"POSTWISE_{name.upper()}" not in text]
    assert not missing, f"docs/configuration.md lacks {missing}"


def test_every_emitted_symbol_has_a_policy_entry_and_description() -> None:
    policy = load_policy()
    source = "\n".join(p.read_text() for p in (ROOT / "postwise").rglob("*.py"))
    emitted = set(re.findall(r'Symbol\(\s*"([A-Z][A-Z0-9_]+)"', source))
    emitted |= set(re.findall(r'"([A-Z][A-Z0-9_]{3,})":\s*f?"', source)) & set(policy.symbols)
    emitted |= set(re.findall(r'setdefault\(\s*"([A-Z][A-Z0-9_]+)"', source))
    emitted |= {"ML_HAM", "ML_SPAM", "ML_PHISH"}
    missing = sorted(name for name in emitted if name not in policy.symbols)
    assert not missing, f"conf/policy.toml lacks {missing}"
    undocumented = sorted(n for n, entry in policy.symbols.items() if not entry.description)
    assert not undocumented
    symbols_doc = (ROOT / "docs" / "inbound.md").read_text()
    not_in_docs = sorted(name for name in policy.symbols if name not in symbols_doc)
    assert not not_in_docs, f"docs/inbound.md lacks {not_in_docs}"


def test_every_postwise_error_is_in_the_tree_of_errors_py() -> None:
    import importlib
    import pkgutil

    import postwise
    from postwise.core import errors

    for module in pkgutil.walk_packages(postwise.__path__, "postwise."):
        if ".migrations" in module.name or module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)

    def subclasses(cls: type) -> list[type]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    tree = errors.__doc__ or ""
    missing = sorted(
        {c.__name__ for c in subclasses(errors.PostwiseError) if c.__name__ not in tree}
    )
    assert not missing, f"add to the tree in postwise/core/errors.py: {missing}"
