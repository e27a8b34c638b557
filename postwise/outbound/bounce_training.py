"""``postwise train bounces``: fit the bounce reason model and choose how it combines with rules.

Reproducible: the split hashes each near-duplicate group with the seed, the estimator is
deterministic, and the version is a hash of the training ids, parameters and fitted weights.
"""

from __future__ import annotations

import hashlib
import platform
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from postwise.core.errors import CorpusError
from postwise.outbound.bounce_evaluation import (
    VALIDATION_SHARE,
    LabelledBounce,
    aligned,
    evaluate,
    is_validation,
    read_bounces,
    read_extras,
)
from postwise.outbound.bounce_model import FEATURE_VERSION, BounceModel, reply_tokens
from postwise.outbound.bounce_rules import RuleMatch, is_hard, match_reply
from postwise.outbound.bounces import parse_bounce

STRATEGIES = (
    "model",
    "rules_then_model",
    "rules_unless_undecided",
    "rules_resolve_confusable",
    "rules_unless_confident",
)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
CANDIDATE_C = (3.0, 10.0, 30.0)
FOLDS = 5
MIN_DF = 1
# Silver-labelled extras (another Sisimai version's output) count for less than gold labels.
EXTRA_WEIGHT = 0.5


def _identity(tokens: list[str]) -> list[str]:
    return tokens


@dataclass(frozen=True)
class _Sample:
    """One labelled recipient as the classifier sees it: the model's tokens, the rules'
    answer, and ``fixed`` when the parser decided without a classifier (ARF, auto-reply,
    delivered) or made no record at all (``"none"``)."""

    tokens: list[str] | None
    rule: RuleMatch | None
    code: str
    enhanced: str
    fixed: str | None
    label: str
    hard: bool
    group: str
    weight: float


def _samples(bounce: LabelledBounce, weight: float = 1.0) -> list[_Sample]:
    """The samples of one mail, exactly as :func:`parse_bounce` passes them to a classifier."""
    calls: list[tuple[str, str, str, str]] = []

    def capture(code: str, enhanced: str, text: str, context: str) -> tuple[str, str]:
        calls.append((code, enhanced, text, context))
        return f"#call{len(calls) - 1}", "capture"

    records = parse_bounce(bounce.raw, capture)
    out: list[_Sample] = []
    for label in bounce.recipients:
        record = aligned(records, label.rcpt_index)
        tokens: list[str] | None = None
        rule: RuleMatch | None = None
        code = enhanced = ""
        fixed: str | None = "none"
        if record is not None and record.reason.startswith("#call"):
            code, enhanced, text, context = calls[int(record.reason.removeprefix("#call"))]
            tokens = reply_tokens(code, enhanced, text, context)
            rule, fixed = match_reply(code, enhanced, text, context), None
        elif record is not None:  # decided without a classifier: still a training sample
            tokens = reply_tokens("", "", record.reason, record.diagnostic)
            code, enhanced, fixed = record.reply_code, record.status, record.reason
        out.append(
            _Sample(
                tokens, rule, code, enhanced, fixed, label.reason, label.hard, bounce.group, weight
            )
        )
    return out


def _fit(samples: list[_Sample], c: float) -> BounceModel:
    """Logistic regression over sublinear tf-idf of the samples' tokens (strategy "model")."""
    usable = [s for s in samples if s.tokens is not None]
    vectorizer = TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, min_df=MIN_DF, lowercase=False
    )
    features = vectorizer.fit_transform([s.tokens for s in usable])
    estimator = LogisticRegression(C=c, max_iter=5000)
    estimator.fit(
        features, [s.label for s in usable], sample_weight=np.asarray([s.weight for s in usable])
    )
    vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
    weights = np.asarray(estimator.coef_, dtype=np.float64).T
    if weights.shape[1] == 1:  # two classes: scikit-learn stores one row
        weights = np.hstack([-weights, weights]) / 2
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    if intercept.shape[0] == 1:
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    return BounceModel(
        version="",
        classes=tuple(str(c) for c in estimator.classes_),
        vocabulary=vocabulary,
        idf=np.asarray(vectorizer.idf_, dtype=np.float32).astype(np.float64),
        weights=weights.astype(np.float32).astype(np.float64),
        intercept=intercept.astype(np.float32).astype(np.float64),
        strategy="model",
        card={},
    )


def _candidates() -> list[tuple[str, str, float]]:
    """(name, strategy, threshold) of every combination compared, simplest first."""
    out = [("rules", "rules", 1.0)]
    for strategy in STRATEGIES:
        for threshold in THRESHOLDS if strategy == "rules_unless_confident" else (1.0,):
            name = strategy if threshold == 1.0 else f"{strategy}@{threshold}"
            out.append((name, strategy, threshold))
    return out


def _predict(model: BounceModel, sample: _Sample) -> tuple[str, bool]:
    if sample.fixed is not None or sample.rule is None or sample.tokens is None:
        reason = sample.fixed or "none"
        return reason, is_hard(reason, sample.code, sample.enhanced)
    reason, _ = model.combine(sample.rule, model.proba(sample.tokens))
    return reason, is_hard(reason, sample.code, sample.enhanced)


def _fold(group: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:fold:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % FOLDS


def grouped_cross_validation(
    train: list[_Sample], extras: list[_Sample], seed: int
) -> dict[str, dict[str, Any]]:
    """Reason and hard/soft accuracy of every (C, combination) candidate over ``FOLDS`` folds
    of the train split, a near-duplicate group always on one side; extras only ever train."""
    counts: dict[str, list[int]] = {}
    for fold in range(FOLDS):
        held = [s for s in train if _fold(s.group, seed) == fold]
        fit_on = [s for s in train + extras if _fold(s.group, seed) != fold]
        for c in CANDIDATE_C:
            model = _fit(fit_on, c)
            for name, strategy, threshold in _candidates():
                model.strategy, model.threshold = strategy, threshold
                key = f"C={c:g} {name}" if strategy != "rules" else "rules"
                tally = counts.setdefault(key, [0, 0, 0])
                if strategy == "rules" and c != CANDIDATE_C[0]:
                    continue
                for sample in held:
                    reason, hard = _predict(model, sample)
                    tally[0] += reason == sample.label
                    tally[1] += hard == sample.hard
                    tally[2] += 1
    return {
        key: {
            "reason_accuracy": round(ok / total, 4),
            "hardbounce_accuracy": round(hard / total, 4),
            "recipients": total,
        }
        for key, (ok, hard, total) in counts.items()
    }


def train_bounces(data: Path, seed: int = 0) -> BounceModel:
    """Choose C and the combination with the rules by grouped cross-validation on the train
    split, fit on the whole train split, and measure (only measure) on validation.
    Raises CorpusError for an unknown layout or empty split."""
    bounces = read_bounces(data)
    train = [b for b in bounces if not is_validation(b.group, seed)]
    validation = [b for b in bounces if is_validation(b.group, seed)]
    if not train or not validation:
        raise CorpusError(
            f"{data}: the split leaves {len(train)} train / {len(validation)} "
            "validation mails; both need some"
        )
    # extras are never scored; any whose near-duplicate group falls in validation is dropped
    extras = [b for b in read_extras(data) if not is_validation(b.group, seed)]
    train_samples = [s for b in train for s in _samples(b)]
    extra_samples = [s for b in extras for s in _samples(b, EXTRA_WEIGHT)]
    cv = grouped_cross_validation(train_samples, extra_samples, seed)
    # Ties go to the earlier candidate: the smaller C, then the simpler combination.
    chosen = max(cv, key=lambda n: (cv[n]["reason_accuracy"], cv[n]["hardbounce_accuracy"]))
    c = CANDIDATE_C[0]
    strategy, threshold = "rules", 1.0
    if chosen != "rules":
        c_text, name = chosen.split(" ", 1)
        c = float(c_text.removeprefix("C="))
        strategy, threshold = next((s, t) for n, s, t in _candidates() if n == name)
    model = _fit(train_samples + extra_samples, c)
    comparison: dict[str, dict[str, Any]] = {"rules": evaluate(validation)}
    for name, candidate, candidate_threshold in _candidates()[1:]:
        model.strategy, model.threshold = candidate, candidate_threshold
        comparison[name] = evaluate(validation, model.classify)
    model.strategy, model.threshold = strategy, threshold
    labels = [s.label for s in train_samples + extra_samples if s.tokens is not None]
    params = {
        "C": c,
        "min_df": MIN_DF,
        "extra_weight": EXTRA_WEIGHT,
        "seed": seed,
        "folds": FOLDS,
        "strategy": model.strategy,
        "threshold": model.threshold,
    }
    digest = hashlib.sha256()
    for bounce in sorted(train + extras, key=lambda b: b.id):
        digest.update(bounce.id.encode() + b"\n")
    digest.update(repr(sorted(params.items())).encode())
    digest.update(np.round(model.weights, 6).tobytes())
    model.version = f"bounces-v{FEATURE_VERSION}-{digest.hexdigest()[:10]}"
    model.card = {
        "version": model.version,
        "family": "multinomial logistic regression over tf-idf of reply tokens",
        "feature_version": FEATURE_VERSION,
        "strategy": model.strategy,
        "threshold": model.threshold,
        "chosen": chosen,
        "chosen_by": f"{FOLDS}-fold cross-validation on the train split, grouped by near-duplicate",
        "seed": seed,
        "params": params,
        "split": (
            f"by near-duplicate group (hash of the mail with addresses, host names, numbers and "
            f"white space removed) hashed with the seed; validation share {VALIDATION_SHARE}"
        ),
        "data": {
            "path_name": data.name,
            "train_mails": len(train),
            "validation_mails": len(validation),
            "silver_extra_mails": len(extras),
            "train_reasons": dict(sorted(Counter(labels).items())),
        },
        "licence_notes": (
            "Trained on the Sisimai set-of-emails bounce samples and their test labels "
            "(BSD 2-Clause, azumakuniyuki and the sisimai development team)."
        ),
        "cross_validation_metrics": cv,
        "validation_metrics": {
            name: {k: v for k, v in m.items() if k not in ("confusions", "per_reason")}
            for name, m in comparison.items()
        },
        "environment": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
    }
    return model


def model_card_markdown(card: dict[str, Any]) -> str:
    """The human-readable model card written beside the model."""
    lines = [
        f"# Model card: {card['version']}",
        "",
        "Postwise bounce reason classifier: Sisimai reason of a bounced recipient from the",
        "SMTP reply code, enhanced status code and diagnostic text.",
        "",
        f"- family: {card['family']}",
        f"- combination with the rules: `{card['strategy']}`, C={card['params']['C']:g} "
        f"(`{card['chosen']}`, chosen by {card.get('chosen_by', 'validation')})",
        f"- split: {card['split']}",
        f"- data: {card['data']['train_mails']} train mails, "
        f"{card['data']['validation_mails']} validation mails, "
        f"{card['data'].get('silver_extra_mails', 0)} silver-labelled extra mails (train only, "
        f"weight {card['params'].get('extra_weight', 1.0)})",
        "- features: words and word pairs of the reply and the report, reply code, enhanced "
        "status, the rules' answer, the refused SMTP command and the reporting MTA, and the",
        "  report's own headers (From, Subject, X-Mailer, X- header names) alone and crossed with",
        "  the rules' answer (per-engine evidence)",
        "",
        "## Grouped cross-validation on the train split (best candidates, and the rules)",
        "",
        "| candidate | reason | hard/soft | recipients |",
        "|---|---:|---:|---:|",
    ]
    cv = card.get("cross_validation_metrics", {})
    ranked = sorted(cv, key=lambda n: (-cv[n]["reason_accuracy"], -cv[n]["hardbounce_accuracy"]))
    for name in ranked[:5] + [n for n in ("rules",) if n in cv and n not in ranked[:5]]:
        m = cv[name]
        lines.append(
            f"| {name} | {m['reason_accuracy']:.4f} | {m['hardbounce_accuracy']:.4f} | "
            f"{m['recipients']} |"
        )
    lines += [
        "",
        "## Validation metrics (measured after the choice, not used for it)",
        "",
        "| classifier | reason | hard/soft | recipient | recipients |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in card["validation_metrics"].items():
        lines.append(
            f"| {name} | {m['reason_accuracy']:.4f} | {m['hardbounce_accuracy']:.4f} | "
            f"{m['recipient_accuracy']:.4f} | {m['recipients']} |"
        )
    lines += [
        "",
        "## Licence notes",
        "",
        card["licence_notes"],
        "",
        "## Limits",
        "",
        "About 300 training mails over 35 reasons: rare reasons (one to five samples) are",
        "learnt poorly; the rules remain the fallback for unseen wording.",
        "",
        f"Reproduce: `uv run postwise train bounces --data ../shared/data/bounces --seed "
        f"{card['seed']}`",
        "",
    ]
    return "\n".join(lines)
