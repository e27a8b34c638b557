"""Propensity models: calibrated gradient boosting over the engage features.

Two data sets are known (see :mod:`postwise.engage.datasets`):

- ``online_retail``: will a customer with at least one purchase before a cut-off purchase again
  in the 30 days after it (target ``purchase``)? Or, target ``churn``: will a customer with a
  purchase in the 90 days before the cut-off make none in the 90 days after it? Trained on
  stacked monthly snapshots whose label windows end before the period scored; features come from
  :func:`postwise.engage.features.features_as_of`.
- ``bank_marketing``: will the client subscribe (``y``)? ``duration`` is never read.
- ``events`` (the platform's own event exports, :mod:`postwise.engage.propensity_events`):
  will a contact sent mail before a cut-off open (target ``open``), click (``click``) or buy
  (``purchase``) in the window after it (7 days for open and click, 30 for purchase)? Trained
  on stacked weekly snapshots, features with engagement.

The estimator is scikit-learn's ``HistGradientBoostingClassifier`` inside
``CalibratedClassifierCV``; the calibration method (isotonic or sigmoid) and the tree size are
chosen by measurement on the training data alone (the latest training snapshot for the retail
log, a stratified quarter for the bank), then the chosen candidate is refitted on all training
rows. Everything is seeded and single-threaded: the data are small, and OpenMP threads that
spin-wait on a busy shared machine made one fit a hundred times slower.

Protocols (:func:`evaluate_folder`): with a test folder, train on the first folder only and
score the second; without, an internal split (by time for the retail and event logs;
stratified random for the bank, whose hidden holdout is drawn the same way).

Raises :class:`postwise.engage.datasets.DatasetError` for unreadable data, and
:class:`postwise.core.errors.CorpusError` when a split leaves nothing to train or score.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from postwise.core.errors import CorpusError, ModelError
from postwise.engage.datasets import (
    DatasetName,
    RetailLog,
    data_files,
    detect_dataset,
    read_bank,
    read_retail,
)
from postwise.engage.drift import write_reference
from postwise.engage.features import DAY, FEATURE_VERSION
from postwise.engage.propensity_data import (
    ACTIVE_DAYS,
    TARGETS,
    BankEncoding,
    Design,
    Target,
    iso,
    label_days,
    next_midnight,
    retail_orders,
    retail_training,
    target_snapshot,
)
from postwise.engage.propensity_events import (
    EVENT_TARGETS,
    EventLog,
    engagement_data,
    engagement_snapshot,
    event_training,
    read_event_log,
    skipped_report,
    window_days_of,
)
from postwise.engage.propensity_metrics import propensity_metrics, ranking_metrics

MODEL_FILE = "model.joblib"
CARD_FILE = "model_card.json"
CALIBRATION_FOLDS = 3
BANK_VALIDATION_SHARE = 0.3
# Candidate tree sizes, simplest first (ties go to the earlier one).
CANDIDATES: dict[str, dict[str, Any]] = {
    "small": {"max_leaf_nodes": 7, "learning_rate": 0.05, "max_iter": 200, "min_samples_leaf": 80},
    "medium": {
        "max_leaf_nodes": 15,
        "learning_rate": 0.04,
        "max_iter": 250,
        "min_samples_leaf": 40,
    },
}
METHODS = ("sigmoid", "isotonic")
LICENCES = {
    "online_retail": "UCI Online Retail (Chen, Sain & Guo 2012), CC BY 4.0.",
    "bank_marketing": "UCI Bank Marketing (Moro, Cortez & Rita 2014), CC BY 4.0; cite Moro et "
    "al. 2014. The leaking `duration` column is never read.",
    "events": "The operator's own event log (no third-party licence). It describes people: keep "
    "the model folder under the same access rules as the events.",
}


@dataclass
class FittedPropensity:
    """A calibrated model, what it was chosen from and what it was fitted on."""

    estimator: CalibratedClassifierCV
    names: tuple[str, ...]
    candidate: str
    method: str
    selection: dict[str, dict[str, float]]
    extra: dict[str, Any] = field(default_factory=dict)

    def score(self, design: Design) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(design.features)[:, 1], dtype=np.float64)


def _booster(design: Design, candidate: str, seed: int) -> HistGradientBoostingClassifier:
    categorical = list(design.categorical) if any(design.categorical) else None
    return HistGradientBoostingClassifier(
        **CANDIDATES[candidate],
        l2_regularization=1.0,
        early_stopping=False,
        categorical_features=categorical,
        random_state=seed,
    )


def _folds(design: Design, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Calibration folds: grouped by contact for stacked snapshots (a customer is never on both
    sides), stratified otherwise."""
    if int(design.cutoff.max()) > 0:
        splitter = GroupKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
        return list(splitter.split(design.features, design.label, groups=design.ids))
    stratified = StratifiedKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    return list(stratified.split(design.features, design.label))


def _fit(design: Design, candidate: str, method: str, seed: int) -> CalibratedClassifierCV:
    folds = _folds(design, seed)
    model = CalibratedClassifierCV(_booster(design, candidate, seed), method=method, cv=folds)
    # a column with no value at all (e.g. no customer has two purchases yet) cannot be binned,
    # nor one without a value in the training part of a calibration fold (rare purchases in an
    # event log)
    empty = np.isnan(design.features).all(axis=0)
    for fold_rows, _ in folds:
        empty |= np.isnan(design.features[fold_rows]).all(axis=0)
    model.fit(np.where(empty, 0.0, design.features), design.label)
    return model


def fit_propensity(train: Design, select_on: tuple[Design, Design], seed: int) -> FittedPropensity:
    """Choose tree size and calibration by log loss of ``select_on`` (fit, measure), both
    carved from training data only, then refit the choice on ``train``."""
    fit_part, measure_part = select_on
    if len(np.unique(fit_part.label)) < 2 or len(np.unique(measure_part.label)) < 2:
        raise CorpusError("the training data needs both outcomes to fit a propensity model")
    selection: dict[str, dict[str, float]] = {}
    for candidate in CANDIDATES:
        for method in METHODS:
            model = _fit(fit_part, candidate, method, seed)
            score = model.predict_proba(measure_part.features)[:, 1]
            selection[f"{candidate}/{method}"] = propensity_metrics(measure_part.label, score)
    chosen = min(selection, key=lambda name: selection[name]["log_loss"])
    candidate, method = chosen.split("/")
    return FittedPropensity(
        _fit(train, candidate, method, seed), train.names, candidate, method, selection
    )


def _baseline(
    train: Design, test: Design, seed: int, target: Target = "purchase"
) -> dict[str, Any]:
    """Logistic regression on the same columns (median-imputed and standardised numbers,
    one-hot categories); for the retail log the recency-only ranking (recent buyers rank first
    for purchase, last for churn); for event logs the recency of engagement (the most recent
    opener or clicker first, never engaged last)."""
    numeric = [i for i, c in enumerate(train.categorical) if not c]
    categorical = [i for i, c in enumerate(train.categorical) if c]
    steps: list[tuple[str, Any, list[int]]] = [
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
    ]
    if categorical:
        steps.append(
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            )
        )
    model = make_pipeline(
        ColumnTransformer(steps), LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    )
    model.fit(train.features, train.label)
    out: dict[str, Any] = {
        "logistic_regression": propensity_metrics(
            test.label, model.predict_proba(test.features)[:, 1]
        )
    }
    if "recency_days" in test.names and target in ("purchase", "churn"):
        recency = test.features[:, test.names.index("recency_days")]
        out["recency_only"] = ranking_metrics(test.label, _recent_first(recency, target != "churn"))
    if "engagement_recency_days" in test.names:
        engaged = test.features[:, test.names.index("engagement_recency_days")]
        out["engagement_recency_only"] = ranking_metrics(test.label, _recent_first(engaged))
    return out


def _recent_first(days: np.ndarray, recent_first: bool = True) -> np.ndarray:
    """A ranking score from days since something: fewer days rank higher (lower when not
    ``recent_first``); undefined (NaN: never happened) ranks as the least recent."""
    score = -days if recent_first else days.copy()
    finite = score[np.isfinite(score)]
    floor = float(finite.min()) - 1.0 if finite.size else 0.0
    if not recent_first:
        floor = float(finite.max()) + 1.0 if finite.size else 0.0
    return np.where(np.isnan(score), floor, score)


def _retail_select(snapshots: list[Design], days: int) -> tuple[Design, Design]:
    """Select on the latest snapshot, fitting on the earlier ones (time-honest)."""
    if len(snapshots) < 2:
        raise CorpusError(
            f"the retail history gives {len(snapshots)} training snapshot(s); at least 2 are "
            f"needed ({days}-day label windows, monthly cut-offs)"
        )
    return Design.stack(snapshots[1:]), snapshots[0]


def _bank_split(
    rows: np.ndarray, labels: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    first, second = train_test_split(rows, test_size=share, stratify=labels, random_state=seed)
    return np.sort(first), np.sort(second)


def _retail_protocol(
    train_log: RetailLog, test_log: RetailLog | None, seed: int, target: Target = "purchase"
) -> tuple[FittedPropensity, Design, Design, dict[str, Any]]:
    """(model, training design, scored design, description) for the retail log."""
    days = label_days(target)
    train_events = retail_orders(train_log)
    train_end = next_midnight(int(train_log.time.max()) + 1)
    note = None
    if test_log is None:
        cutoff = train_end - days * DAY  # the latest cut-off whose window fits
        label_end = train_end
        all_events = train_events
        training = retail_training(train_events, cutoff, target)
        protocol = "internal split by time"
    else:
        cutoff = int(test_log.time.min())
        label_end = cutoff + days * DAY
        test_end = int(test_log.time.max()) + 1
        if target == "churn" and test_end < label_end:
            # a churn label needs the whole window: use what the test folder covers, and say so
            label_end = test_end
            note = (
                f"the test folder covers only {(test_end - cutoff) / DAY:.1f} of the "
                f"{days} label-window days; churn = no purchase until {iso(test_end)}"
            )
        all_events = retail_orders(RetailLog.concat(train_log, test_log))
        training = retail_training(train_events, train_end, target)
        protocol = "train on --train, score --test"
    scored = target_snapshot(target, all_events, cutoff, label_end)
    train = Design.stack(training)
    model = _fit_and_select(train, _retail_select(training, days), seed)
    about: dict[str, Any] = {
        "protocol": protocol,
        "cutoff": iso(cutoff),
        "label_window_days": days,
        "training_cutoffs": [iso(int(d.cutoff[0])) for d in training],
    }
    if target == "churn":
        about["label_window"] = [iso(cutoff), iso(label_end)]
        span = (label_end - cutoff) / DAY
        about["label_window_days"] = days if span == days else round(span, 2)
    if note is not None:
        about["note"] = note
    return model, train, scored, about


def _fit_and_select(train: Design, select_on: tuple[Design, Design], seed: int) -> FittedPropensity:
    return fit_propensity(train, select_on, seed)


def _events_protocol(
    train_folder: Path, test_folder: Path | None, seed: int, target: Target, window: int
) -> tuple[FittedPropensity, Design, Design, dict[str, Any]]:
    """(model, training design, scored design, description) for an event log."""
    train_log = read_event_log(train_folder)
    train_data = engagement_data(train_log)
    train_end = next_midnight(train_log.last + 1)
    note = None
    if test_folder is None:
        cutoff = train_end - window * DAY  # the latest cut-off whose window fits
        label_end = train_end
        scored_data = train_data
        training = event_training(train_data, cutoff, target, window)
        protocol = "internal split by time"
        skipped = skipped_report(train_log)
    else:
        test_log = read_event_log(test_folder)
        cutoff = test_log.first
        label_end = cutoff + window * DAY
        test_end = test_log.last + 1
        if test_end < label_end:
            label_end = test_end
            note = (
                f"the test folder covers only {(test_end - cutoff) / DAY:.1f} of the {window} "
                f"label-window days; the label is a {target} until {iso(test_end)}"
            )
        scored_data = engagement_data(EventLog.concat(train_log, test_log))
        training = event_training(train_data, train_end, target, window)
        protocol = "train on --train, score --test"
        skipped = skipped_report(EventLog.concat(train_log, test_log))
    scored = engagement_snapshot(scored_data, target, cutoff, label_end)
    train = Design.stack(training)
    model = fit_propensity(train, (Design.stack(training[1:]), training[0]), seed)
    span = (label_end - cutoff) / DAY
    about: dict[str, Any] = {
        "protocol": protocol,
        "cutoff": iso(cutoff),
        "label_window_days": window if span == window else round(span, 2),
        "label_window": [iso(cutoff), iso(label_end)],
        "training_cutoffs": [iso(int(d.cutoff[0])) for d in training],
        "population": "contacts sent a message before the cut-off, without an unsubscribe or "
        "complaint before it",
        **skipped,
    }
    if note is not None:
        about["note"] = note
    return model, train, scored, about


def _bank_protocol(
    train_folder: Path, test_folder: Path | None, seed: int
) -> tuple[FittedPropensity, Design, Design, dict[str, Any]]:
    table = read_bank(train_folder)
    rows = np.arange(len(table))
    if test_folder is None:
        train_rows, test_rows = _bank_split(rows, table.label, BANK_VALIDATION_SHARE, seed)
        test_table = table
        protocol = f"internal stratified random split ({BANK_VALIDATION_SHARE:.0%} scored)"
    else:
        train_rows = rows
        test_table = read_bank(test_folder)
        test_rows = np.arange(len(test_table))
        protocol = "train on --train, score --test"
    encoding = BankEncoding.learn(table, train_rows)
    train = encoding.design(table, train_rows)
    fit_rows, measure_rows = _bank_split(np.arange(len(train)), train.label, 0.25, seed)
    select_on = (_subset(train, fit_rows), _subset(train, measure_rows))
    model = fit_propensity(train, select_on, seed)
    model.extra["categories"] = encoding.categories
    return model, train, encoding.design(test_table, test_rows), {"protocol": protocol}


def _subset(design: Design, rows: np.ndarray) -> Design:
    return Design(
        design.features[rows],
        design.label[rows],
        design.ids[rows],
        design.cutoff[rows],
        design.names,
        design.categorical,
    )


def check_target(target: str) -> Target:
    """``target`` if known, else a CorpusError naming the known ones."""
    for known in TARGETS:
        if target == known:
            return known
    raise CorpusError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")


def evaluate_folder(
    train_folder: Path,
    test_folder: Path | None = None,
    seed: int = 0,
    target: str = "purchase",
    window_days: int | None = None,
) -> dict[str, Any]:
    """Train on ``train_folder`` and measure on ``test_folder`` (or an internal split): one
    flat dictionary with ``auc``, ``log_loss``, ``ece``, ``top_decile_lift`` and context.
    ``target`` is ``purchase`` (default), ``churn`` (online_retail only), ``open`` or ``click``
    (event logs only); ``window_days`` sets an event log's label window."""
    checked = check_target(target)
    with threadpool_limits(limits=1):
        return _evaluate(train_folder, test_folder, seed, checked, window_days)


def _evaluate(
    train_folder: Path,
    test_folder: Path | None,
    seed: int,
    target: Target = "purchase",
    window_days: int | None = None,
) -> dict[str, Any]:
    model, train, scored, about, dataset = _run(
        train_folder, test_folder, seed, target, window_days
    )
    if len(scored) == 0:
        raise CorpusError(f"{test_folder or train_folder}: no rows to score")
    metrics = propensity_metrics(scored.label, model.score(scored))
    return {
        "dataset": dataset,
        "target": target,
        **metrics,
        "rows": len(scored),
        "train_rows": len(train),
        **about,
        "model": f"{model.candidate} gradient boosting, {model.method} calibration",
        "selection_log_loss": {k: v["log_loss"] for k, v in model.selection.items()},
        "baseline": _baseline(train, scored, seed, target),
        "seed": seed,
    }


def _require_target(dataset: DatasetName, target: Target, window_days: int | None) -> None:
    if target == "churn" and dataset == "events":
        raise CorpusError(
            "--target churn is measured on the online_retail purchase log (90-day windows); "
            "for an event log use --target open, click or purchase"
        )
    if target == "churn" and dataset != "online_retail":
        raise CorpusError(
            f"--target churn needs a purchase history (online_retail); {dataset} has none "
            "(its only target is the subscription y: use --target purchase)"
        )
    if target in ("open", "click") and dataset != "events":
        raise CorpusError(
            f"--target {target} needs an event log with opens and clicks (files as `postwise "
            f"engage import events` reads them: event_id, type, occurred_at, contact_id or "
            f"email); {dataset} has none (use --target purchase"
            + (" or churn)" if dataset == "online_retail" else ")")
        )
    if window_days is not None and dataset != "events":
        raise CorpusError(
            f"--window-days applies to event logs only; {dataset} has fixed label windows"
        )
    assert dataset != "events" or target in EVENT_TARGETS


def _run(
    train_folder: Path,
    test_folder: Path | None,
    seed: int,
    target: Target = "purchase",
    window_days: int | None = None,
) -> tuple[FittedPropensity, Design, Design, dict[str, Any], DatasetName]:
    dataset = detect_dataset(train_folder)
    _require_target(dataset, target, window_days)
    if test_folder is not None and detect_dataset(test_folder) != dataset:
        raise CorpusError(f"{test_folder}: not the same data set as {train_folder} ({dataset})")
    if dataset == "events":
        window = window_days_of(target, window_days)
        return (*_events_protocol(train_folder, test_folder, seed, target, window), dataset)
    if dataset == "online_retail":
        test_log = read_retail(test_folder) if test_folder is not None else None
        return (*_retail_protocol(read_retail(train_folder), test_log, seed, target), dataset)
    return (*_bank_protocol(train_folder, test_folder, seed), dataset)


def fingerprint(folder: Path) -> dict[str, str]:
    """SHA-256 of every data file of a folder, by name."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_files(folder)}


def train_propensity(
    data: Path,
    out: Path,
    seed: int = 0,
    target: str = "purchase",
    window_days: int | None = None,
) -> dict[str, Any]:
    """Measure on the internal split, refit on the whole folder, and write ``out/model.joblib``
    and its model card (``model_card.json``, ``MODEL_CARD.md``). Returns the card. The churn
    target's card carries the registry name ``propensity:online_retail:churn``; an event log's
    ``propensity:events:<target>``."""
    checked = check_target(target)
    with threadpool_limits(limits=1):
        return _train(data, out, seed, checked, window_days)


def _train(
    data: Path,
    out: Path,
    seed: int,
    target: Target = "purchase",
    window_days: int | None = None,
) -> dict[str, Any]:
    validation = _evaluate(data, None, seed, target, window_days)
    dataset = validation["dataset"]
    window = None
    if dataset == "events":
        window = window_days_of(target, window_days)
        event_log = read_event_log(data)
        history_end = next_midnight(event_log.last + 1)
        training = event_training(engagement_data(event_log), history_end, target, window)
        train = Design.stack(training)
        model = fit_propensity(train, (Design.stack(training[1:]), training[0]), seed)
        trained_on: dict[str, Any] = {
            "training_cutoffs": [iso(int(d.cutoff[0])) for d in training],
            **skipped_report(event_log),
        }
    elif dataset == "online_retail":
        log = read_retail(data)
        events = retail_orders(log)
        training = retail_training(events, next_midnight(int(log.time.max()) + 1), target)
        train = Design.stack(training)
        model = fit_propensity(train, _retail_select(training, label_days(target)), seed)
        trained_on = {"training_cutoffs": [iso(int(d.cutoff[0])) for d in training]}
    else:
        table = read_bank(data)
        rows = np.arange(len(table))
        encoding = BankEncoding.learn(table, rows)
        train = encoding.design(table, rows)
        fit_rows, measure_rows = _bank_split(rows, table.label, 0.25, seed)
        model = fit_propensity(
            train, (_subset(train, fit_rows), _subset(train, measure_rows)), seed
        )
        trained_on = {"categories": encoding.categories}
    params = {
        "candidate": model.candidate,
        "booster": CANDIDATES[model.candidate],
        "calibration": model.method,
        "calibration_folds": CALIBRATION_FOLDS,
        "seed": seed,
        "feature_version": FEATURE_VERSION,
    }
    if target == "churn" or dataset == "events":  # (retail purchase versions stay as they were)
        params["target"] = target
    if window is not None:
        params["window_days"] = window
    prints = fingerprint(data)
    digest = hashlib.sha256(json.dumps([prints, params], sort_keys=True).encode()).hexdigest()
    suffix = f"-{target}" if target == "churn" or dataset == "events" else ""
    version = f"propensity-{dataset}{suffix}-v{FEATURE_VERSION}-{digest[:10]}"
    card = {
        "version": version,
        "dataset": dataset,
        "target": target,
        "task": _task(dataset, target, window),
        "family": "HistGradientBoostingClassifier in CalibratedClassifierCV",
        "features": list(model.names),
        "params": params,
        "selection_log_loss": {k: v["log_loss"] for k, v in model.selection.items()},
        "data": {"folder": data.name, "sha256": prints, "rows": len(train), **trained_on},
        "internal_split_metrics": validation,
        "licence_notes": LICENCES[dataset],
        "environment": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
    }
    if target == "churn" or dataset == "events":
        card["name"] = f"propensity:{dataset}:{target}"  # the registry name (default_name)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.estimator, out / MODEL_FILE)
    # The training distribution, for drift checks once the model is registered.
    write_reference(out, dict(zip(model.names, train.features.T, strict=True)), model.score(train))
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, default=str) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card))
    return card


def _task(dataset: DatasetName, target: Target, window: int | None = None) -> str:
    if dataset == "events":
        return (
            f"{target} in the {window} days after a cut-off, contacts sent a message before it "
            "and not unsubscribed (own event log)"
        )
    if dataset != "online_retail":
        return "term-deposit subscription (y) of a called client"
    days = label_days(target)
    if target == "churn":
        return (
            f"churn: no purchase in the {days} days after a cut-off, customers with a purchase "
            f"in the {ACTIVE_DAYS} days before it"
        )
    return f"purchase in the {days} days after a cut-off, customers with a past purchase"


def load_propensity(folder: Path) -> tuple[CalibratedClassifierCV, dict[str, Any]]:
    """The estimator and card written by :func:`train_propensity`. The estimator is a joblib
    pickle: load only folders you wrote yourself. Raises ModelError if absent or of another
    feature version."""
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        estimator = joblib.load(folder / MODEL_FILE)
    except (OSError, ValueError) as error:
        raise ModelError(f"{folder}: no readable propensity model ({error})") from error
    if card.get("params", {}).get("feature_version") != FEATURE_VERSION:
        raise ModelError(
            f"{folder}: model of feature version {card.get('params', {}).get('feature_version')}, "
            f"this Postwise computes version {FEATURE_VERSION}; retrain it"
        )
    return estimator, card


def model_card_markdown(card: dict[str, Any]) -> str:
    """The human-readable model card written beside the model."""
    m = card["internal_split_metrics"]
    lines = [
        f"# Model card: {card['version']}",
        "",
        f"Postwise propensity model — {card['task']}.",
        "",
        f"- family: {card['family']} ({card['params']['candidate']} trees, "
        f"{card['params']['calibration']} calibration, chosen by log loss on training data)",
        f"- target: {card.get('target', 'purchase')}",
        f"- seed: {card['params']['seed']}; feature version {card['params']['feature_version']}",
        f"- data: `{card['data']['folder']}`, {card['data']['rows']} training rows; sha256 "
        + ", ".join(f"`{n}` {h[:16]}…" for n, h in card["data"]["sha256"].items()),
        "",
        f"## Internal split ({m['protocol']})",
        "",
        "| model | AUC | log loss | ECE | top-decile lift |",
        "|---|---:|---:|---:|---:|",
        f"| this model | {m['auc']} | {m['log_loss']} | {m['ece']} | {m['top_decile_lift']} |",
    ]
    lr = m["baseline"]["logistic_regression"]
    lines.append(
        f"| logistic regression | {lr['auc']} | {lr['log_loss']} | {lr['ece']} | "
        f"{lr['top_decile_lift']} |"
    )
    for key, label in (
        ("recency_only", "recency only"),
        ("engagement_recency_only", "engagement recency only"),
    ):
        if key in m["baseline"]:
            r = m["baseline"][key]
            lines.append(f"| {label} | {r['auc']} | | | {r['top_decile_lift']} |")
    lines += [
        "",
        f"{m['rows']} rows scored, positive rate {m['positive_rate']}.",
        "",
        "## Licence notes",
        "",
        card["licence_notes"],
        "",
        "The estimator is stored with joblib (a pickle): load it only from a folder you trust.",
        "",
    ]
    return "\n".join(lines)
