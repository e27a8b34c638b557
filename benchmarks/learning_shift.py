"""Learning from feedback under a shift: does the online model fix what a deployment reports?

A base model is trained on the *old* collection only: SpamAssassin 2002 ham and spam (its
train split, near-duplicate groups hashed with the seed, as ``postwise train inbound`` does),
plus a small seeded sample of the oldest phishing (Phishing Pot messages added in 2023), since
the model needs all three classes. The *shift* is the modern collection: mailing-list ham of
2019-2026 and Phishing Pot phishing added in 2024-2025 (groups already in the base sample
excluded). Its near-duplicate groups are split, seeded, into a *correction stream* and an
*unseen evaluation part*.

The stream is scanned in a seeded random order by a ``Scanner`` whose online model starts empty;
every message the scanner gets wrong *as a user sees it* (ham with any action, spam or phish
with ``no_action``) is reported with ``Scanner.learn`` (``--feed all`` reports every message).
The evaluation part, never reported, is scanned before and after. The old collection's
validation split is scanned before and after too: corrections must not break what worked.

``--tune`` instead splits the stream itself into a tuning-train and a tuning-dev part and
compares a few online-model settings there (the evaluation part is not read), which is how the
defaults of ``OnlineParameters`` were chosen.

    uv run python benchmarks/learning_shift.py [--data ../shared/data/mail] [--seed 0]
        [--feed mistakes|all] [--eval-share 0.5] [--base-phish 400] [--workers 2] [--json]
    uv run python benchmarks/learning_shift.py --tune
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import SGDClassifier

from postwise.core.types import CLASSES
from postwise.inbound.augment import synthetic_commercial_ham
from postwise.inbound.classifier import InboundModel, hash_matrix
from postwise.inbound.corpus import CorpusMessage, is_validation, read_corpus, sender_view
from postwise.inbound.features import FEATURE_VERSION
from postwise.inbound.learning import OnlineModel, OnlineParameters, base_idf
from postwise.inbound.policy import load_policy
from postwise.inbound.scanner import Scanner
from postwise.inbound.training import (
    HAM_WEIGHT,
    operating_point,
    sample_weights,
    tokenize_corpus,
)

LOG_LOSS_FLOOR = 1e-4  # = the online model's floor, so flooring alone changes nothing


@dataclass
class Parts:
    base_train: list[CorpusMessage]
    base_validation: list[CorpusMessage]
    stream: list[CorpusMessage]
    evaluation: list[CorpusMessage]


def _era(message: CorpusMessage) -> str:
    if message.subset.startswith("list_"):
        return "modern_ham"
    if message.subset.startswith("added-"):
        return "phish_" + message.subset[len("added-") : len("added-") + 4]
    return "spamassassin"


def _shuffled(items: Sequence[CorpusMessage], seed: int) -> list[CorpusMessage]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def split_parts(
    messages: list[CorpusMessage], seed: int, base_phish: int, eval_share: float, limit: int
) -> Parts:
    """Old collection -> base train / validation; the shift -> stream / evaluation, all by
    near-duplicate group so that no group is on two sides."""
    old = [m for m in messages if _era(m) == "spamassassin"]
    phish_2023 = [m for m in messages if _era(m) == "phish_2023"]
    base_groups: set[str] = set()
    base_phish_messages: list[CorpusMessage] = []
    for message in _shuffled(phish_2023, seed):
        if len(base_phish_messages) >= base_phish and message.group not in base_groups:
            continue
        base_groups.add(message.group)
        base_phish_messages.append(message)
    base_pool = old + base_phish_messages
    base_train = [m for m in base_pool if not is_validation(m.group, seed)]
    base_validation = [m for m in base_pool if is_validation(m.group, seed)]
    base_groups |= {m.group for m in old}
    shift = [
        m
        for m in messages
        if _era(m) in ("modern_ham", "phish_2024", "phish_2025") and m.group not in base_groups
    ]
    if limit and limit < len(shift):
        shift = _shuffled(shift, seed + 3)[:limit]
    evaluation = [m for m in shift if is_validation(m.group, seed + 1, eval_share)]
    stream = _shuffled([m for m in shift if not is_validation(m.group, seed + 1, eval_share)], seed)
    return Parts(base_train, base_validation, stream, evaluation)


def train_base(
    train: list[CorpusMessage],
    validation: list[CorpusMessage],
    seed: int,
    synthetic: int,
    workers: int,
) -> InboundModel:
    """The shipped recipe (SGD with modified Huber loss over tf-idf, ham and hard_ham weighted,
    synthetic commercial ham), fitted on the old collection only."""
    synthetic_messages = [
        CorpusMessage(id=f"synthetic-{i}", label="ham", raw=raw, group=f"synthetic-{i}")
        for i, raw in enumerate(synthetic_commercial_ham(synthetic, seed=seed))
    ]
    fitted_on = train + synthetic_messages
    counts = hash_matrix(tokenize_corpus(fitted_on, workers=workers))
    labels = np.array([m.label for m in fitted_on])
    weights = np.concatenate([sample_weights(train), np.full(len(synthetic_messages), HAM_WEIGHT)])
    tfidf = TfidfTransformer(sublinear_tf=True)
    estimator = SGDClassifier(loss="modified_huber", alpha=2e-5, max_iter=50, random_state=seed)
    estimator.fit(tfidf.fit_transform(counts), labels, sample_weight=weights)
    val_counts = hash_matrix(tokenize_corpus(validation, workers=workers))
    proba = np.asarray(estimator.predict_proba(tfidf.transform(sparse.csr_matrix(val_counts))))
    classes = [str(c) for c in estimator.classes_]
    p_bad = 1.0 - proba[:, classes.index("ham")]
    metrics = operating_point(p_bad, np.array([m.label for m in validation]))
    digest = hashlib.sha256(
        "".join(sorted(m.id for m in train)).encode() + f"{seed}:{synthetic}".encode()
    ).hexdigest()[:10]
    version = f"inbound-v{FEATURE_VERSION}-old-{digest}"
    return InboundModel(
        version=version,
        classes=tuple(classes),
        tfidf=tfidf,
        estimator=estimator,
        card={"version": version, "validation_metrics": metrics},
    )


def measure(scanner: Scanner, messages: Sequence[CorpusMessage]) -> dict[str, float]:
    """Ham FPR and spam / phish recall at the policy's action (flagged = any action), and the
    log loss of the verdicts' probabilities (clipped at LOG_LOSS_FLOOR)."""
    flagged: dict[str, list[bool]] = {label: [] for label in CLASSES}
    losses: list[float] = []
    for message in messages:
        verdict = scanner.scan(sender_view(message.raw))
        flagged[message.label].append(verdict.action != "no_action")
        losses.append(-np.log(max(verdict.probabilities[message.label], LOG_LOSS_FLOOR)))
    out: dict[str, float] = {"messages": float(len(messages))}
    for label, values in flagged.items():
        key = "ham_fpr" if label == "ham" else f"{label}_recall"
        out[key] = float(np.mean(values)) if values else float("nan")
        out[f"n_{label}"] = float(len(values))
    out["log_loss"] = float(np.mean(losses)) if losses else float("nan")
    return out


def feed(
    scanner: Scanner, stream: Sequence[CorpusMessage], mode: str, progress: Callable[[], None]
) -> Counter[str]:
    """Report stream messages through ``Scanner.learn``; returns the corrections per label."""
    corrections: Counter[str] = Counter()
    for message in stream:
        raw = sender_view(message.raw)
        if mode == "mistakes":
            flagged = scanner.scan(raw).action != "no_action"
            if flagged == (message.label != "ham"):
                progress()
                continue
        scanner.learn(raw, message.label)
        corrections[message.label] += 1
        progress()
    return corrections


# Settings compared by --tune (on folds of the stream, never the evaluation part).
_DEFAULT = OnlineParameters()
TUNING_GRID: dict[str, OnlineParameters] = {
    "defaults": _DEFAULT,
    "idf power 0 (every token alike)": replace(_DEFAULT, idf_power=0.0),
    "idf power 1": replace(_DEFAULT, idf_power=1.0),
    "idf power 1.5": replace(_DEFAULT, idf_power=1.5),
    "idf power 3": replace(_DEFAULT, idf_power=3.0),
    "learned intercept (bias rate 0.05)": replace(_DEFAULT, bias_learning_rate=0.05),
    "idf power 0, learned intercept": replace(_DEFAULT, idf_power=0.0, bias_learning_rate=0.05),
    "learning rate 3": replace(_DEFAULT, learning_rate=3.0),
    "one step per correction": replace(_DEFAULT, max_steps=1),
    "target 0.97": replace(_DEFAULT, target=0.97),
    "L2 1e-3": replace(_DEFAULT, l2=1e-3),
    "floor 1e-3": replace(_DEFAULT, floor=1e-3),
}
TUNING_FOLDS = (2, 12, 22)  # seeds of the stream's own tuning splits (30% held out each)


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.2%} ({part:.0f}/{whole:.0f})" if whole else "n/a"


def _row(name: str, m: dict[str, float]) -> str:
    return (
        f"| {name} | {_pct(m['ham_fpr'] * m['n_ham'], m['n_ham'])} | "
        f"{_pct(m['phish_recall'] * m['n_phish'], m['n_phish'])} | "
        f"{_pct(m['spam_recall'] * m['n_spam'], m['n_spam'])} | {m['log_loss']:.3f} |"
    )


def _tune(base: InboundModel, parts: Parts, mode: str) -> None:
    """Each setting fed the tuning-train part of each fold, measured on its held-out part;
    counts summed over the folds."""
    policy = load_policy()
    idf = base_idf(base)
    print(f"tuning on {len(TUNING_FOLDS)} folds of the {len(parts.stream)}-message stream\n")
    print("| setting | ham FPR | phish recall | corrections | log loss |")
    print("|---|---:|---:|---:|---:|")
    for name, params in {"no online model": None, **TUNING_GRID}.items():
        false_alarms = hams = caught = phish = corrections = 0.0
        losses: list[float] = []
        for fold in TUNING_FOLDS:
            held_out = [m for m in parts.stream if is_validation(m.group, fold, 0.3)]
            fed = [m for m in parts.stream if not is_validation(m.group, fold, 0.3)]
            online = OnlineModel(None, params, idf) if params is not None else None
            scanner = Scanner(policy, base, online=online)
            if params is not None:
                corrections += sum(feed(scanner, fed, mode, lambda: None).values())
            m = measure(scanner, held_out)
            false_alarms += m["ham_fpr"] * m["n_ham"]
            hams += m["n_ham"]
            caught += m["phish_recall"] * m["n_phish"]
            phish += m["n_phish"]
            losses.append(m["log_loss"])
        print(
            f"| {name} | {_pct(false_alarms, hams)} | {_pct(caught, phish)} | "
            f"{corrections:.0f} | {np.mean(losses):.3f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mail"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feed", choices=("mistakes", "all"), default="mistakes")
    parser.add_argument("--eval-share", type=float, default=0.5)
    parser.add_argument("--base-phish", type=int, default=400)
    parser.add_argument("--synthetic", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=0, help="seeded subsample of the shift")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    parts = split_parts(
        list(read_corpus(args.data)), args.seed, args.base_phish, args.eval_share, args.limit
    )
    print(
        f"base train {dict(Counter(m.label for m in parts.base_train))}, "
        f"base validation {dict(Counter(m.label for m in parts.base_validation))}, "
        f"stream {dict(Counter(m.label for m in parts.stream))}, "
        f"evaluation {dict(Counter(m.label for m in parts.evaluation))}",
        file=sys.stderr,
    )
    base = train_base(
        parts.base_train, parts.base_validation, args.seed, args.synthetic, args.workers
    )
    print(f"base model {base.version} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    if args.tune:
        _tune(base, parts, args.feed)
        return

    policy = load_policy()
    with tempfile.TemporaryDirectory() as folder:
        online = OnlineModel.open(Path(folder) / "online-model.npz", idf=base_idf(base))
        scanner = Scanner(policy, base, online=online)
        before = measure(scanner, parts.evaluation)
        old_before = measure(scanner, parts.base_validation)
        learn_started = time.perf_counter()
        done = [0]

        def tick() -> None:
            done[0] += 1
            if done[0] % 500 == 0:
                print(f"  stream {done[0]}/{len(parts.stream)}", file=sys.stderr)

        corrections = feed(scanner, parts.stream, args.feed, tick)
        learn_seconds = time.perf_counter() - learn_started
        after = measure(scanner, parts.evaluation)
        old_after = measure(scanner, parts.base_validation)
        online_version = online.version
        file_bytes = online.path.stat().st_size if online.path and online.path.exists() else 0
    result: dict[str, Any] = {
        "base_model": base.version,
        "online_version": online_version,
        "online_file_bytes": file_bytes,
        "feed": args.feed,
        "seed": args.seed,
        "parts": {
            "base_train": dict(Counter(m.label for m in parts.base_train)),
            "base_validation": dict(Counter(m.label for m in parts.base_validation)),
            "stream": dict(Counter(m.label for m in parts.stream)),
            "evaluation": dict(Counter(m.label for m in parts.evaluation)),
        },
        "corrections": dict(corrections),
        "shift_before": before,
        "shift_after": after,
        "old_before": old_before,
        "old_after": old_after,
        "stream_seconds": round(learn_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "parameters": OnlineParameters().__dict__,
    }
    if args.json:
        print(json.dumps(result))
        return
    command = "uv run python benchmarks/learning_shift.py " + " ".join(sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(
        f"Base model `{base.version}`; {sum(corrections.values())} corrections "
        f"({dict(corrections)}) from a stream of {len(parts.stream)} messages "
        f"(feed: {args.feed}); online model after: `{online_version}`, {file_bytes:,} bytes.\n"
    )
    print("| part | online model | ham FPR | phish recall | spam recall | log loss |")
    print("|---|---|---:|---:|---:|---:|")
    for part, pair in (
        ("unseen shift", (before, after)),
        ("old validation", (old_before, old_after)),
    ):
        for name, m in zip(("empty (base only)", "after corrections"), pair, strict=True):
            print(_row(f"{part} | {name}", m))
    print(f"\nstream pass {learn_seconds:.0f} s, total {result['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
