"""``postwise train bounces``: fit the bounce reason model and choose how it combines with rules.

Reproducible: the split hashes each near-duplicate group with the seed, the estimator is
deterministic, and the version is a hash of the training ids, parameters and fitted weights.
"""

from __future__ import annotations

import hashlib
import platform
from collections import Counter
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
from postwise.outbound.bounces import parse_bounce

STRATEGIES = ("model", "rules_then_model", "rules_unless_undecided", "rules_unless_confident")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
C = 10.0
MIN_DF = 1
# Silver-labelled extras (another Sisimai version's output) count for less than gold labels.
EXTRA_WEIGHT = 0.5


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _recipient_tokens(bounce: LabelledBounce) -> list[list[str] | None]:
    """The model's inputs for each labelled recipient, exactly as :func:`parse_bounce` would
    pass them to a classifier (None where the parser made no record or decided without one)."""
    calls: list[list[str]] = []

    def capture(code: str, enhanced: str, text: str, context: str) -> tuple[str, str]:
        calls.append(reply_tokens(code, enhanced, text, context))
        return f"#call{len(calls) - 1}", "capture"

    records = parse_bounce(bounce.raw, capture)
    out: list[list[str] | None] = []
    for label in bounce.recipients:
        record = aligned(records, label.rcpt_index)
        if record is None:
            out.append(None)
        elif record.reason.startswith("#call"):
            out.append(calls[int(record.reason.removeprefix("#call"))])
        else:  # decided without a classifier (ARF, auto-reply, delivered): still a sample
            out.append(reply_tokens("", "", record.reason, record.diagnostic))
    return out


def train_bounces(data: Path, seed: int = 0) -> BounceModel:
    """Fit on the train split, compare strategies on validation, refit nothing: the shipped
    model is the one measured. Raises CorpusError for an unknown layout or empty split."""
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
    documents: list[list[str]] = []
    labels: list[str] = []
    sample_weight: list[float] = []
    for bounce, weight in [(b, 1.0) for b in train] + [(b, EXTRA_WEIGHT) for b in extras]:
        for label, tokens in zip(bounce.recipients, _recipient_tokens(bounce), strict=True):
            if tokens is not None:
                documents.append(tokens)
                labels.append(label.reason)
                sample_weight.append(weight)
    vectorizer = TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, min_df=MIN_DF, lowercase=False
    )
    features = vectorizer.fit_transform(documents)
    estimator = LogisticRegression(C=C, max_iter=5000)
    estimator.fit(features, labels, sample_weight=np.asarray(sample_weight))
    vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
    weights = np.asarray(estimator.coef_, dtype=np.float64).T
    if weights.shape[1] == 1:  # two classes: scikit-learn stores one row
        weights = np.hstack([-weights, weights]) / 2
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    if intercept.shape[0] == 1:
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    model = BounceModel(
        version="",
        classes=tuple(str(c) for c in estimator.classes_),
        vocabulary=vocabulary,
        idf=np.asarray(vectorizer.idf_, dtype=np.float32).astype(np.float64),
        weights=weights.astype(np.float32).astype(np.float64),
        intercept=intercept.astype(np.float32).astype(np.float64),
        strategy="model",
        card={},
    )
    comparison: dict[str, dict[str, Any]] = {"rules": evaluate(validation)}
    candidates: dict[str, tuple[str, float]] = {}
    for strategy in STRATEGIES:
        for threshold in THRESHOLDS if strategy == "rules_unless_confident" else (1.0,):
            name = strategy if threshold == 1.0 else f"{strategy}@{threshold}"
            model.strategy, model.threshold = strategy, threshold
            comparison[name] = evaluate(validation, model.classify)
            candidates[name] = (strategy, threshold)
    # Ties go to the earlier candidate: the simpler combination.
    chosen = max(
        candidates,
        key=lambda n: (comparison[n]["reason_accuracy"], comparison[n]["hardbounce_accuracy"]),
    )
    model.strategy, model.threshold = candidates[chosen]
    params = {
        "C": C,
        "min_df": MIN_DF,
        "extra_weight": EXTRA_WEIGHT,
        "seed": seed,
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
        "validation_metrics": {
            name: {k: v for k, v in m.items() if k != "confusions"}
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
        f"- combination with the rules: `{card['strategy']}` (chosen on validation)",
        f"- split: {card['split']}",
        f"- data: {card['data']['train_mails']} train mails, "
        f"{card['data']['validation_mails']} validation mails, "
        f"{card['data'].get('silver_extra_mails', 0)} silver-labelled extra mails (train only, "
        f"weight {card['params'].get('extra_weight', 1.0)})",
        "- features: words and word pairs of the reply and the report, reply code, enhanced "
        "status, the rules' answer, the refused SMTP command and the reporting MTA",
        "",
        "## Validation metrics",
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
