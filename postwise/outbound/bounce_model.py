"""The trained bounce reason classifier, combined with the rules.

Features are word unigrams and bigrams of the diagnostic text plus the reply code, the enhanced
status (whole, and its class.subject prefix) and the rules' own answer. The model is a
multinomial logistic regression stored as plain arrays in ``model.npz`` (vocabulary, idf,
weights, intercepts) and applied with numpy alone. ``strategy`` (chosen on validation by
``postwise train bounces``) says how model and rules combine.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from postwise.core.errors import ModelError
from postwise.outbound.bounce_rules import RuleMatch, failed_command, match_reply, reporting_mta

FEATURE_VERSION = 3
# Reasons whose wording is shared and whose label depends on the engine that wrote the report
# (Sisimai decides these per engine): under "rules_resolve_confusable" the model chooses within
# the group the rules' answer belongs to, and leaves every other answer to the rules.
CONFUSABLE_GROUPS: tuple[frozenset[str], ...] = (frozenset({"userunknown", "filtered"}),)
MODEL_FILE = "model.npz"
_WORD = re.compile(r"[a-z][a-z']+")
_HEADERS = re.compile(r"^\[report-headers: ([^\]]*)\] ?")
_HEADER_FIELD = re.compile(r"(sender|domain|display|subject|x-mailer|x)=((?:(?!\b[a-z-]+=).)*)")
_NOISE = re.compile(r"\S+@\S+|https?://\S+|\b[\w-]+(\.[\w-]+){2,}\b|\d+")


def _words(text: str) -> list[str]:
    words = _WORD.findall(_NOISE.sub(" ", text.lower()[:3000]))
    return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]


def header_tokens(summary: str) -> list[str]:
    """Tokens (prefixed ``h:``) of a report's header summary (see
    :func:`postwise.outbound.bounces.report_headers`): which software wrote the report."""
    tokens: list[str] = []
    for field, value in _HEADER_FIELD.findall(summary):
        value = value.strip()
        if field == "domain":
            labels = [p for p in value.split(".")[:-1] if len(p) > 3 and not p.isdigit()]
            tokens += [f"h:domain:{p}" for p in labels]
        elif field in ("sender", "x"):
            tokens += [f"h:{field}:{re.sub(r'[0-9]+', '', v)}" for v in value.split()]
        else:
            words = _WORD.findall(_NOISE.sub(" ", value))
            tokens += [f"h:{field}:{w}" for w in words]
            if field == "subject" and words:
                tokens.append("h:subject=" + "_".join(words[:8]))
    return tokens


def reply_tokens(code: str, enhanced: str, text: str, context: str = "") -> list[str]:
    """The model's inputs for one reply: words and word pairs of the diagnostic text, and of
    the whole report (prefixed ``c:``); addresses, host names and numbers are dropped; the
    report's header summary (``h:``), alone and crossed with the rules' answer."""
    summary = _HEADERS.match(context)
    if summary:
        context = context[summary.end() :]
    tokens = _words(text) + [f"c:{w}" for w in _words(context)]
    rule = match_reply(code, enhanced, text, context)
    engine = header_tokens(summary.group(1)) if summary else []
    tokens += engine + [f"#rule_{t}:{rule.reason}" for t in engine]
    tokens += [f"#code:{code or 'none'}", f"#class:{code[:1] or 'none'}"]
    tokens += [f"#status:{enhanced or 'none'}", f"#status2:{enhanced[2:5] or 'none'}"]
    tokens += [f"#rule:{rule.reason}", f"#rule_source:{rule.source}"]
    # Sisimai's semantics depend on the refused command and the engine that wrote the report
    command = failed_command(text, context) or "none"
    mta = reporting_mta(context) or "none"
    tokens += [f"#command:{command}", f"#mta:{mta}", f"#rule_command:{rule.reason}:{command}"]
    tokens += [f"#rule_mta:{rule.reason}:{mta}", f"#x1x:{enhanced[1:4] == '.1.'}"]
    return tokens


@dataclass
class BounceModel:
    """Vocabulary -> tf-idf -> softmax over Sisimai reasons."""

    version: str
    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: np.ndarray
    weights: np.ndarray  # n_features x n_classes
    intercept: np.ndarray
    # "model", "rules", "rules_then_model" (model when no text rule matched),
    # "rules_unless_undecided" (model only when no rule at all matched) or
    # "rules_unless_confident" (model when it is at least ``threshold`` sure) or
    # "rules_resolve_confusable" (model within CONFUSABLE_GROUPS, and when no rule matched)
    strategy: str
    card: dict[str, Any]
    threshold: float = 1.0  # model probability that overrides a text rule

    def proba(self, tokens: list[str]) -> np.ndarray:
        counts: dict[int, int] = {}
        for token in tokens:
            index = self.vocabulary.get(token)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        decision = self.intercept.copy()
        if counts:
            indices = np.fromiter(counts, dtype=np.int64)
            values = (np.log(np.fromiter(counts.values(), dtype=np.float64)) + 1.0) * self.idf[
                indices
            ]
            values /= float(np.sqrt(values @ values)) or 1.0
            decision = decision + values @ self.weights[indices]
        shifted = np.exp(decision - decision.max())
        return np.asarray(shifted / shifted.sum())

    def uses_model(self, rule: RuleMatch) -> bool:
        """Whether the strategy consults the model at all for this rules' answer."""
        if self.strategy == "rules_resolve_confusable":
            return rule.source == "none" or any(rule.reason in g for g in CONFUSABLE_GROUPS)
        return not (
            self.strategy == "rules"
            or (self.strategy == "rules_then_model" and rule.source in ("text", "context"))
            or (self.strategy == "rules_unless_undecided" and rule.source != "none")
        )

    def combine(self, rule: RuleMatch, row: np.ndarray) -> tuple[str, str]:
        """(reason, how it was decided) from the rules' answer and the model's probabilities
        under the model's combination strategy."""
        if not self.uses_model(rule):
            return rule.reason, f"rules:{rule.source}"
        if self.strategy == "rules_resolve_confusable" and rule.source != "none":
            group = next(g for g in CONFUSABLE_GROUPS if rule.reason in g)
            allowed = [i for i, name in enumerate(self.classes) if name in group]
            if not allowed:
                return rule.reason, f"rules:{rule.source}"
            best = max(allowed, key=lambda i: float(row[i]))
            return self.classes[best], "model" if self.classes[best] != rule.reason else (
                f"rules:{rule.source}"
            )
        best = int(row.argmax())
        if (
            self.strategy == "rules_unless_confident"
            and rule.source in ("text", "context")
            and row[best] < self.threshold
        ):
            return rule.reason, f"rules:{rule.source}"
        return self.classes[best], "model"

    def classify(self, code: str, enhanced: str, text: str, context: str = "") -> tuple[str, str]:
        """(reason, how it was decided) under the model's combination strategy."""
        rule = match_reply(code, enhanced, text, context)
        if not self.uses_model(rule):
            return rule.reason, f"rules:{rule.source}"
        return self.combine(rule, self.proba(reply_tokens(code, enhanced, text, context)))

    def save(self, folder: Path) -> Path:
        """Write ``model.npz`` and ``card.json`` into ``folder``; returns the model file."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "feature_version": FEATURE_VERSION,
            "version": self.version,
            "classes": list(self.classes),
            "strategy": self.strategy,
            "threshold": self.threshold,
        }
        vocabulary = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        target = folder / MODEL_FILE
        with target.open("wb") as handle:
            np.savez_compressed(
                handle,
                meta=np.array(json.dumps(meta)),
                vocabulary=np.array(vocabulary),
                idf=self.idf.astype(np.float32),
                weights=self.weights.astype(np.float32),
                intercept=self.intercept.astype(np.float32),
            )
        (folder / "card.json").write_text(json.dumps(self.card, indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, folder: Path) -> BounceModel:
        """Load a model folder. Raises ModelError naming the folder and what is wrong."""
        path = folder / MODEL_FILE
        if not path.is_file():
            raise ModelError(
                f"{folder}: no {MODEL_FILE}; train one with 'postwise train bounces --data DIR'"
            )
        try:
            card_path = folder / "card.json"
            card = json.loads(card_path.read_text()) if card_path.is_file() else {}
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                vocabulary = [str(t) for t in stored["vocabulary"]]
                idf = stored["idf"].astype(np.float64)
                weights = np.ascontiguousarray(stored["weights"].astype(np.float64))
                intercept = stored["intercept"].astype(np.float64)
        except Exception as error:
            raise ModelError(f"{path}: unreadable bounce model ({error})") from error
        if meta.get("feature_version") != FEATURE_VERSION:
            raise ModelError(
                f"{path}: feature version {meta.get('feature_version')!r}, this Postwise uses "
                f"{FEATURE_VERSION}; retrain with 'postwise train bounces'"
            )
        return cls(
            version=str(meta["version"]),
            classes=tuple(meta["classes"]),
            vocabulary={t: i for i, t in enumerate(vocabulary)},
            idf=idf,
            weights=weights,
            intercept=intercept,
            strategy=str(meta.get("strategy", "model")),
            card=card,
            threshold=float(meta.get("threshold", 1.0)),
        )
