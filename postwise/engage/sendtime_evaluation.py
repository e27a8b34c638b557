"""The send-time protocol on the online_retail log: choose the model by measurement, score it
against two baselines, and train / load a model folder.

Task at a cut-off: customers with at least ``MIN_INVOICES`` non-cancelled invoices before it and
one at or after it (before the end of the data scored); predict the hour-of-week (0-167, shop
time) of each one's **first** invoice at or after the cut-off from the invoices before it.

- ``hit_rate_1h``: share of customers whose predicted slot is within one hour (circularly) of
  the actual one; the model predicts the centre of the 3-hour window of maximum mass of its
  decision profile (own recency-weighted counts plus pseudo-counts of the model profile), folded
  into the distribution of the first purchase after the cut-off (``rate_multiplier``; see
  :func:`postwise.engage.sendtime.next_activity`), all tuned for hit rate on the selection
  cut-offs after the model is tuned for log-likelihood.
- ``log_likelihood``: mean natural log of the probability given to the actual slot.

Baselines: ``baseline_global`` predicts the most common slot of all invoices before the cut-off;
``baseline_mode`` each customer's own most common slot (ties: the slot of the most recent invoice
among the tied ones, the better of the simple tie-breaks on the selection cut-offs). Their
log-likelihoods use the empirical histogram (global, resp. the customer's) plus ``epsilon``
pseudo-counts per slot, ``epsilon`` chosen on the same training-internal cut-offs as the model.

Protocols: with a test folder, the model (variant and hyper-parameters) is chosen on the first
folder alone, the cut-off is the first timestamp of the test folder and the history before it
comes from both folders. Without, the cut-off is the last midnight ``INTERNAL_HOLDOUT_DAYS``
days before the end of the data (the length of the hidden Oct-Dec holdout), and the choice uses
the data before it only. Selection cut-offs: every ``SELECTION_STEP_DAYS`` days back from
``SELECTION_HORIZON_DAYS`` before the end of the training history (the scored horizon: each
cut-off's next invoice must fall within it), at least ``MIN_HISTORY_DAYS`` after its start.

``rolling_origin`` repeats the scored task at weekly cut-offs through the scored period (the
same chosen hyper-parameters, counts refitted on the history before each cut-off, next invoice
before the end): one cut-off's figure rests on a few hundred customers and moves by a couple of
points from one week to the next; the rolling figure says whether a gain is the rule.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from postwise.core.errors import CorpusError, ModelError
from postwise.engage.datasets import (
    DatasetError,
    RetailLog,
    detect_dataset,
    read_retail,
    read_retail_countries,
)
from postwise.engage.features import PURCHASE
from postwise.engage.propensity import fingerprint
from postwise.engage.propensity_data import iso, next_midnight, retail_orders
from postwise.engage.sendtime import (
    DAY,
    HOUR,
    INFINITE_BY_DEFAULT,
    SHOP_ZONE,
    SLOTS,
    PurchaseHistory,
    SendTimeModel,
    SendTimeParams,
    best_window,
    hour_of_week,
    zone_of,
    zone_offsets,
)

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1)
MIN_INVOICES = 3
INTERNAL_HOLDOUT_DAYS = 70
SELECTION_STEP_DAYS = 7
SELECTION_CUTOFFS = 30
SELECTION_HORIZON_DAYS = INTERNAL_HOLDOUT_DAYS
ROLLING_STEP_DAYS = 7
ROLLING_MIN_DAYS = 21
MIN_HISTORY_DAYS = 60
PROFILES_FILE = "sendtime_profiles.npz"
CARD_FILE = "model_card.json"
MODEL_VERSION = 3
EPSILONS = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
# Candidate values per hyper-parameter; coordinate ascent over them (two passes).
GRID: dict[str, tuple[float, ...]] = {
    "prior_strength": (1.0, 3.0, 10.0, 30.0, 60.0, 100.0),
    "cohort_strength": (10.0, 100.0, 300.0, 1000.0),
    "global_floor": (0.1, 0.5, 2.0),
    "hour_spread": (0.0, 0.2, 0.45, 0.6),
    "day_spread": (0.0, 0.1, 0.3),
    "half_life_days": (math.inf, 180.0, 60.0),
    "global_half_life_days": (math.inf, 365.0, 180.0, 90.0),
    "day_strength": (1.0, 5.0, 20.0, 50.0, 200.0),
    "hour_strength": (1.0, 5.0, 20.0, 50.0, 200.0),
}
# The decision profile's candidates (None: the model profile alone, tried first), by hit rate.
DECISION_HALF_LIVES = (math.inf, 365.0, 180.0, 90.0, 45.0)
DECISION_STRENGTHS: tuple[float | None, ...] = (None, 0.01, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
# The next-activity fold's rate multipliers (0: off, tried first), by hit rate.
RATE_MULTIPLIERS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
# The variants compared, simplest first (a tie keeps the simpler one), and what each tunes.
VARIANTS: dict[str, tuple[SendTimeParams, tuple[str, ...]]] = {
    "dirichlet_global": (
        SendTimeParams(variant="dirichlet_global", use_cohort=False),
        ("prior_strength", "global_floor"),
    ),
    "dirichlet_cohort": (
        SendTimeParams(variant="dirichlet_cohort", use_cohort=True),
        ("prior_strength", "cohort_strength", "global_floor"),
    ),
    "hierarchical_kernel": (
        SendTimeParams(variant="hierarchical_kernel", use_cohort=True),
        (
            "prior_strength",
            "cohort_strength",
            "global_floor",
            "hour_spread",
            "day_spread",
            "half_life_days",
            "global_half_life_days",
        ),
    ),
    "factorised_kernel": (
        SendTimeParams(variant="factorised_kernel", use_cohort=True, factorised=True),
        (
            "prior_strength",
            "day_strength",
            "hour_strength",
            "cohort_strength",
            "global_floor",
            "hour_spread",
            "day_spread",
            "half_life_days",
            "global_half_life_days",
        ),
    ),
}
LICENCE = "UCI Online Retail (Chen, Sain & Guo 2012), CC BY 4.0."


@dataclass(frozen=True)
class NextInvoiceTask:
    """Customers to score at ``cutoff`` (next invoice before ``end``), their actual next slot
    (shop time) and the hours to add to shop time to get their local time at the cut-off."""

    cutoff: int
    end: int
    contacts: np.ndarray
    target_slot: np.ndarray
    offset_hours: np.ndarray

    def __len__(self) -> int:
        return int(self.contacts.shape[0])

    @property
    def horizon_hours(self) -> int:
        return max(math.ceil((self.end - self.cutoff) / HOUR), 1)

    def local_start_slots(self) -> np.ndarray:
        """Each customer's local hour-of-week at the cut-off."""
        start = int(hour_of_week(np.array([self.cutoff]))[0])
        return np.asarray((start + self.offset_hours) % SLOTS, dtype=np.int64)


def purchase_history(log: RetailLog, countries: dict[int, str]) -> PurchaseHistory:
    """Non-cancelled invoices (one per invoice, at its first line's time) of a retail log."""
    events = retail_orders(log)
    bought = events.kind == PURCHASE
    order = np.argsort(events.time[bought], kind="stable")
    return PurchaseHistory(events.contact[bought][order], events.time[bought][order], countries)


def next_invoice_task(history: PurchaseHistory, cutoff: int, end: int) -> NextInvoiceTask:
    """The customers with ``MIN_INVOICES`` invoices before ``cutoff`` and one in
    ``[cutoff, end)``, with the slot of their first one there."""
    before = history.time < cutoff
    ids, counts = np.unique(history.contact[before], return_counts=True)
    regular = ids[counts >= MIN_INVOICES]
    after = (history.time >= cutoff) & (history.time < end) & np.isin(history.contact, regular)
    contact, time = history.contact[after], history.time[after]
    order = np.lexsort((time, contact))
    contact, time = contact[order], time[order]
    first = np.r_[True, contact[1:] != contact[:-1]] if contact.size else np.zeros(0, bool)
    contacts, times = contact[first], time[first]
    offsets = np.zeros(contacts.shape[0], dtype=np.int64)
    zones = [zone_of(history.country.get(int(c), "")) for c in contacts.tolist()]
    for zone in set(zones):
        rows = np.array([z == zone for z in zones], dtype=bool)
        at = np.full(int(rows.sum()), cutoff, dtype=np.int64)
        offsets[rows] = np.rint(zone_offsets(at, zone, SHOP_ZONE) / HOUR).astype(np.int64)
    return NextInvoiceTask(cutoff, end, contacts, hour_of_week(times), offsets)


def to_shop_time(local_profiles: np.ndarray, offset_hours: np.ndarray) -> np.ndarray:
    """Distributions over local slots re-indexed to shop slots (local = shop + offset)."""
    index = (np.arange(SLOTS)[None, :] + offset_hours[:, None]) % SLOTS
    return np.asarray(np.take_along_axis(local_profiles, index, axis=1), dtype=np.float64)


def within_one_hour(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    gap = np.abs(predicted - actual) % SLOTS
    return np.asarray(np.minimum(gap, SLOTS - gap) <= 1, dtype=bool)


def _score(profiles: tuple[np.ndarray, np.ndarray], task: NextInvoiceTask) -> dict[str, float]:
    """Hit rate of the decision profiles' best windows, log-likelihood of the model profiles."""
    model, decision = profiles
    rows = np.arange(len(task))
    return {
        "hit_rate_1h": float(within_one_hour(best_window(decision), task.target_slot).mean()),
        "log_likelihood": float(np.log(model[rows, task.target_slot]).mean()),
    }


def paired_gain(
    hits: np.ndarray, other: np.ndarray, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Hit-rate difference of two predictions on the same customers with a 95% paired
    bootstrap interval (customers resampled, seeded)."""
    gain = hits.astype(np.float64) - other.astype(np.float64)
    rng = np.random.default_rng(seed)
    means = gain[rng.integers(0, gain.shape[0], size=(resamples, gain.shape[0]))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"difference": float(gain.mean()), "ci95": [float(low), float(high)]}


def task_profiles(
    model: SendTimeModel, task: NextInvoiceTask, local_model: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shop-time profiles (the model's, the decision's: folded from the cut-off over the task's
    horizon when the model has a rate multiplier) of the task's customers; ``local_model`` may
    pass the model's local-time profiles when already computed."""
    local = model.predict_proba(task.contacts) if local_model is None else local_model
    decision = model.next_profiles(
        task.contacts,
        task.local_start_slots(),
        task.horizon_hours,
        model.decision_profiles(task.contacts, model_profiles=local),
    )
    return to_shop_time(local, task.offset_hours), to_shop_time(decision, task.offset_hours)


def _customer_counts_and_modes(
    history: PurchaseHistory, task: NextInvoiceTask
) -> tuple[np.ndarray, np.ndarray]:
    """Each task customer's invoice counts per slot before the cut-off, and its most common
    slot (ties go to the slot of the most recent invoice)."""
    before = history.time < task.cutoff
    ids, times = history.contact[before], history.time[before]
    keep = np.isin(ids, task.contacts)
    row, slot, time = (
        np.searchsorted(task.contacts, ids[keep]),
        hour_of_week(times[keep]),
        times[keep],
    )
    counts = (
        np.bincount(row * SLOTS + slot, minlength=len(task) * SLOTS)
        .reshape(len(task), SLOTS)
        .astype(np.float64)
    )
    latest = np.full((len(task), SLOTS), np.iinfo(np.int64).min)
    np.maximum.at(latest, (row, slot), time)
    top = counts == counts.max(axis=1, keepdims=True)
    mode = np.argmax(np.where(top, latest, np.iinfo(np.int64).min), axis=1)
    return counts, np.asarray(mode, np.int64)


@dataclass(frozen=True)
class BaselineInputs:
    """What the baselines need for one task: global counts and each customer's counts/mode."""

    task: NextInvoiceTask
    global_counts: np.ndarray
    counts: np.ndarray
    mode: np.ndarray

    @staticmethod
    def of(history: PurchaseHistory, task: NextInvoiceTask) -> BaselineInputs:
        before = history.time < task.cutoff
        global_counts = np.bincount(hour_of_week(history.time[before]), minlength=SLOTS)
        counts, mode = _customer_counts_and_modes(history, task)
        return BaselineInputs(task, global_counts.astype(np.float64), counts, mode)

    def global_score(self, epsilon: float) -> dict[str, float]:
        p = (self.global_counts + epsilon) / (self.global_counts.sum() + SLOTS * epsilon)
        slot = int(np.argmax(self.global_counts))
        return {
            "hit_rate_1h": float(
                within_one_hour(np.full(len(self.task), slot), self.task.target_slot).mean()
            ),
            "log_likelihood": float(np.log(p[self.task.target_slot]).mean()),
            "slot": slot,
        }

    def mode_score(self, epsilon: float) -> dict[str, float]:
        rows = np.arange(len(self.task))
        p = (self.counts + epsilon) / (self.counts.sum(axis=1, keepdims=True) + SLOTS * epsilon)
        return {
            "hit_rate_1h": float(within_one_hour(self.mode, self.task.target_slot).mean()),
            "log_likelihood": float(np.log(p[rows, self.task.target_slot]).mean()),
        }


def selection_tasks(history: PurchaseHistory, history_end: int) -> list[NextInvoiceTask]:
    """Training-internal tasks: cut-offs every ``SELECTION_STEP_DAYS`` back from
    ``SELECTION_HORIZON_DAYS`` before ``history_end`` (latest first), next invoices within
    ``SELECTION_HORIZON_DAYS`` of the cut-off."""
    if history.time.size == 0:
        return []
    start = int(history.time.min())
    tasks: list[NextInvoiceTask] = []
    cutoff = next_midnight(history_end) - SELECTION_HORIZON_DAYS * DAY
    while cutoff - start >= MIN_HISTORY_DAYS * DAY and len(tasks) < SELECTION_CUTOFFS:
        task = next_invoice_task(history, cutoff, cutoff + SELECTION_HORIZON_DAYS * DAY)
        if len(task):
            tasks.append(task)
        cutoff -= SELECTION_STEP_DAYS * DAY
    return tasks


def _pooled(scores: list[dict[str, float]], tasks: list[NextInvoiceTask]) -> dict[str, float]:
    """Customer-weighted mean of per-task scores."""
    sizes = np.array([len(t) for t in tasks], dtype=np.float64)
    return {
        key: float(np.dot([s[key] for s in scores], sizes) / sizes.sum())
        for key in ("hit_rate_1h", "log_likelihood")
    }


def _with(params: SendTimeParams, knob: str, value: float) -> SendTimeParams:
    values = params.as_json()
    values[knob] = None if knob in INFINITE_BY_DEFAULT and math.isinf(value) else value
    return SendTimeParams.from_json(values)


def choose_epsilon(score: Callable[[float], float]) -> float:
    """The add-epsilon pseudo-count with the best training log-likelihood."""
    return max(EPSILONS, key=score)


@dataclass(frozen=True)
class Selection:
    """The chosen parameters, every candidate's pooled figures and the baselines' epsilons."""

    params: SendTimeParams
    variants: dict[str, dict[str, Any]]
    epsilon_global: float
    epsilon_mode: float
    cutoffs: list[str]


class _Recent(Generic[T]):
    """A dict that keeps its ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable) -> T | None:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        return None

    def put(self, key: Hashable, value: T) -> T:
        self.entries[key] = value
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return value


def select_model(history: PurchaseHistory, local: np.ndarray, history_end: int) -> Selection:
    """Tune every variant by coordinate ascent on the pooled log-likelihood of the selection
    tasks and keep the best (the simpler on a tie); then choose its decision profile by pooled
    hit rate there; choose the baselines' epsilons there too. Raises CorpusError when the
    training history yields no selection task."""
    tasks = selection_tasks(history, history_end)
    if not tasks:
        raise CorpusError(
            f"no training-internal cut-off has customers with {MIN_INVOICES} invoices before it "
            f"and one after it (needs more than {MIN_HISTORY_DAYS + SELECTION_HORIZON_DAYS} "
            "days of history before the cut-off)"
        )
    cache: dict[tuple[int, SendTimeParams], dict[str, float]] = {}
    # fits and profiles are large (contacts x 168): only the latest few are kept, which is
    # all the search revisits (a knob that does not change the fit reuses the current one)
    fits: _Recent[SendTimeModel] = _Recent(3 * len(tasks))
    local_profiles: _Recent[np.ndarray] = _Recent(2 * len(tasks))

    def measure(params: SendTimeParams) -> dict[str, float]:
        per_task = []
        for i, task in enumerate(tasks):
            key = (i, params)
            if key not in cache:
                # only these parameters change the fit; the others act at prediction time
                fit_key = (
                    i,
                    params.use_cohort,
                    params.cohort_strength,
                    params.half_life_days,
                    params.global_half_life_days,
                    params.global_floor,
                    params.decision_half_life_days,
                )
                fit = fits.get(fit_key) or fits.put(
                    fit_key, SendTimeModel.fit(history, task.cutoff, params, local=local)
                )
                model = replace(fit, params=params)
                # the model profile does not depend on the decision parameters
                profile_key = (
                    i,
                    replace(
                        params,
                        decision_strength=None,
                        decision_half_life_days=math.inf,
                        rate_multiplier=0.0,
                    ),
                )
                profile = local_profiles.get(profile_key)
                if profile is None:
                    profile = local_profiles.put(profile_key, model.predict_proba(task.contacts))
                cache[key] = _score(task_profiles(model, task, profile), task)
            per_task.append(cache[key])
        return _pooled(per_task, tasks)

    variants: dict[str, dict[str, Any]] = {}
    best: tuple[float, SendTimeParams] | None = None
    for name, (start, tuned) in VARIANTS.items():
        params, current = start, measure(start)
        for _ in range(2):
            for knob in tuned:
                for value in GRID[knob]:
                    candidate = _with(params, knob, value)
                    if candidate.hour_spread + candidate.day_spread > 0.9:
                        continue
                    result = measure(candidate)
                    if result["log_likelihood"] > current["log_likelihood"] + 1e-9:
                        params, current = candidate, result
        variants[name] = {**current, "params": params.as_json()}
        if best is None or current["log_likelihood"] > best[0] + 1e-4:
            best = (current["log_likelihood"], params)
    assert best is not None
    # The send time is the best window of a decision profile tuned for hits (the likelihood
    # does not change): own recency-weighted counts plus pseudo-counts of the model profile,
    # folded into the first purchase after the cut-off with a rate multiplier. The two interact
    # (a smooth profile wants no fold, own counts a strong one): a joint grid.
    chosen, figures = best[1], measure(best[1])
    decisions: list[dict[str, Any]] = []
    for half_life in DECISION_HALF_LIVES:
        for strength in DECISION_STRENGTHS:
            if strength is None and not math.isinf(half_life):
                continue  # the half-life only acts on own counts
            for multiplier in RATE_MULTIPLIERS:
                candidate = replace(
                    best[1],
                    decision_strength=strength,
                    decision_half_life_days=half_life,
                    rate_multiplier=multiplier,
                )
                result = measure(candidate)
                decisions.append(
                    {
                        "decision_half_life_days": None if math.isinf(half_life) else half_life,
                        "decision_strength": strength,
                        "rate_multiplier": multiplier,
                        "hit_rate_1h": result["hit_rate_1h"],
                    }
                )
                if result["hit_rate_1h"] > figures["hit_rate_1h"] + 1e-9:
                    chosen, figures = candidate, result
    variants["postwise"] = {**figures, "params": chosen.as_json(), "decision_grid": decisions}
    baselines = [BaselineInputs.of(history, task) for task in tasks]
    eps_global = choose_epsilon(
        lambda e: _pooled([b.global_score(e) for b in baselines], tasks)["log_likelihood"]
    )
    eps_mode = choose_epsilon(
        lambda e: _pooled([b.mode_score(e) for b in baselines], tasks)["log_likelihood"]
    )
    variants["baseline_global"] = {
        **_pooled([b.global_score(eps_global) for b in baselines], tasks),
        "epsilon": eps_global,
    }
    variants["baseline_mode"] = {
        **_pooled([b.mode_score(eps_mode) for b in baselines], tasks),
        "epsilon": eps_mode,
    }
    return Selection(chosen, variants, eps_global, eps_mode, [iso(t.cutoff) for t in tasks])


def _read(folder: Path) -> RetailLog:
    if detect_dataset(folder) != "online_retail":
        raise DatasetError(
            f"{folder}: send-time optimisation needs an online_retail purchase log "
            "(InvoiceNo, InvoiceDate, CustomerID, ...)"
        )
    return read_retail(folder)


def read_history(folders: list[Path]) -> tuple[PurchaseHistory, RetailLog]:
    """The purchases and countries of one or more online_retail folders."""
    logs: list[RetailLog] = []
    countries: dict[int, str] = {}
    for folder in folders:
        logs.append(_read(folder))
        countries.update(read_retail_countries(folder))
    log = logs[0] if len(logs) == 1 else RetailLog.concat(logs[0], logs[1])
    return purchase_history(log, countries), logs[0]


def rolling_origin(
    history: PurchaseHistory, params: SendTimeParams, cutoff: int, end: int
) -> dict[str, Any]:
    """The scored task repeated every ``ROLLING_STEP_DAYS`` from ``cutoff`` while at least
    ``ROLLING_MIN_DAYS`` remain before ``end``: fixed ``params``, counts refitted on the history
    before each cut-off. Pooled hit rates of Postwise and both baselines, and per cut-off."""
    local = history.local_times()
    per_cutoff: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {"postwise": [], "baseline_mode": [], "global": []}
    at = cutoff
    while at + ROLLING_MIN_DAYS * DAY <= end:
        task = next_invoice_task(history, at, end)
        if len(task):
            model = SendTimeModel.fit(history, at, params, local=local)
            baseline = BaselineInputs.of(history, task)
            hits = {
                "postwise": within_one_hour(
                    best_window(task_profiles(model, task)[1]), task.target_slot
                ),
                "baseline_mode": within_one_hour(baseline.mode, task.target_slot),
                "global": within_one_hour(
                    np.full(len(task), int(np.argmax(baseline.global_counts))), task.target_slot
                ),
            }
            for name, row in hits.items():
                pooled[name].append(row)
            per_cutoff.append(
                {
                    "cutoff": iso(at),
                    "customers": len(task),
                    **{name: float(row.mean()) for name, row in hits.items()},
                }
            )
        at += ROLLING_STEP_DAYS * DAY
    if not per_cutoff:
        return {"cutoffs": 0}
    rates = {name: float(np.concatenate(rows).mean()) for name, rows in pooled.items()}
    return {
        "cutoffs": len(per_cutoff),
        "customer_cutoffs": int(sum(row["customers"] for row in per_cutoff)),
        "hit_rate_1h": rates["postwise"],
        "baseline_mode": rates["baseline_mode"],
        "baseline_global": rates["global"],
        "cutoffs_above_mode": sum(r["postwise"] > r["baseline_mode"] for r in per_cutoff),
        "cutoffs_below_mode": sum(r["postwise"] < r["baseline_mode"] for r in per_cutoff),
        "per_cutoff": per_cutoff,
    }


def evaluate_sendtime(
    train_folder: Path, test_folder: Path | None = None, cutoff_at: datetime | None = None
) -> dict[str, Any]:
    """Choose the model on ``train_folder`` and score it and the baselines on ``test_folder``
    (or the internal split: ``INTERNAL_HOLDOUT_DAYS`` before the end, or from ``cutoff_at``,
    shop time, for ``INTERNAL_HOLDOUT_DAYS``). Raises DatasetError / CorpusError, ValueError
    for a cut-off with a test folder."""
    if cutoff_at is not None and test_folder is not None:
        raise ValueError("--cutoff applies to the internal split; --test sets its own cut-off")
    train_history, train_log = read_history([train_folder])
    train_end = int(train_log.time.max()) + 1
    if test_folder is None:
        if cutoff_at is None:
            cutoff, end = next_midnight(train_end) - INTERNAL_HOLDOUT_DAYS * DAY, train_end
            protocol = f"internal split: cut-off {INTERNAL_HOLDOUT_DAYS} days before the end"
        else:
            cutoff = int((cutoff_at.replace(tzinfo=None) - _EPOCH).total_seconds())
            end = min(cutoff + INTERNAL_HOLDOUT_DAYS * DAY, train_end)
            protocol = (
                f"internal split: cut-off given, next invoice within {INTERNAL_HOLDOUT_DAYS} days"
            )
        history, history_end = train_history, cutoff
    else:
        history, _ = read_history([train_folder, test_folder])
        test_log = _read(test_folder)
        cutoff, end = int(test_log.time.min()), int(test_log.time.max()) + 1
        history_end = train_end
        protocol = "train on --train, score --test"
    selection_history = train_history.before(history_end)
    selection = select_model(selection_history, selection_history.local_times(), history_end)
    task = next_invoice_task(history, cutoff, end)
    if not len(task):
        raise CorpusError(
            f"{test_folder or train_folder}: no customer with {MIN_INVOICES} invoices before "
            f"{iso(cutoff)} and one after it"
        )
    model = SendTimeModel.fit(history, cutoff, selection.params, local=history.local_times())
    profiles = task_profiles(model, task)
    scored = _score(profiles, task)
    baseline = BaselineInputs.of(history, task)
    hits = within_one_hour(best_window(profiles[1]), task.target_slot)
    global_slot = np.full(len(task), int(np.argmax(baseline.global_counts)))
    return {
        "dataset": "online_retail",
        "protocol": protocol,
        "cutoff": iso(cutoff),
        "end": iso(end),
        "customers": len(task),
        **scored,
        "model": selection.params.variant,
        "params": selection.params.as_json(),
        "baseline_global": {
            **baseline.global_score(selection.epsilon_global),
            "epsilon": selection.epsilon_global,
        },
        "baseline_mode": {
            **baseline.mode_score(selection.epsilon_mode),
            "epsilon": selection.epsilon_mode,
        },
        "hit_rate_gain": {
            "over_mode": paired_gain(hits, within_one_hour(baseline.mode, task.target_slot)),
            "over_global": paired_gain(hits, within_one_hour(global_slot, task.target_slot)),
        },
        "rolling_origin": rolling_origin(history, selection.params, cutoff, end),
        "selection": selection.variants,
        "selection_cutoffs": selection.cutoffs,
    }


def train_sendtime(data: Path, out: Path, seed: int = 0) -> dict[str, Any]:
    """Measure on the internal split, choose the model on the whole folder, fit it as of the end
    of the data and write ``out/sendtime_profiles.npz`` and its model card. Returns the card."""
    validation = evaluate_sendtime(data)
    history, log = read_history([data])
    end = int(log.time.max()) + 1
    local = history.local_times()
    selection = select_model(history, local, end)
    model = SendTimeModel.fit(history, end, selection.params, seed=seed, local=local)
    params = {**selection.params.as_json(), "seed": seed, "model_version": MODEL_VERSION}
    prints = fingerprint(data)
    digest = hashlib.sha256(json.dumps([prints, params], sort_keys=True).encode()).hexdigest()
    card = {
        "name": "sendtime:online_retail",
        "version": f"sendtime-online_retail-v{MODEL_VERSION}-{digest[:10]}",
        "dataset": "online_retail",
        "task": "hour-of-week (local time) of a customer's next invoice",
        "family": "Dirichlet-multinomial hierarchy (global -> country -> contact)",
        "params": params,
        "fitted_as_of": iso(end),
        "selection": selection.variants,
        "selection_cutoffs": selection.cutoffs,
        "data": {"folder": data.name, "sha256": prints, "contacts": int(model.contacts.shape[0])},
        "internal_split_metrics": validation,
        "licence_notes": LICENCE,
        "environment": {"python": platform.python_version(), "numpy": np.__version__},
    }
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(model.cohort_profiles)
    np.savez_compressed(
        out / PROFILES_FILE,
        global_profile=model.global_profile,
        cohort_names=np.array(names, dtype=str),
        cohort_profiles=np.array([model.cohort_profiles[n] for n in names]).reshape(-1, SLOTS),
        contacts=model.contacts,
        counts=model.counts,
        decision_counts=model.counts if model.decision_counts is None else model.decision_counts,
        rates=model.contact_rates(model.contacts),
        contact_cohorts=np.array([model.cohort[int(c)] for c in model.contacts], dtype=str),
        cutoff=np.array([end], dtype=np.int64),
    )
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card))
    return card


_ARRAYS = (
    "global_profile",
    "cohort_names",
    "cohort_profiles",
    "contacts",
    "counts",
    "decision_counts",
    "rates",
    "contact_cohorts",
    "cutoff",
)


def load_sendtime(folder: Path) -> SendTimeModel:
    """The model :func:`train_sendtime` wrote (plain arrays, no pickle). Raises ModelError."""
    try:
        card = json.loads((folder / CARD_FILE).read_text())
        with np.load(folder / PROFILES_FILE, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"{folder}: no readable send-time model ({error})") from error
    params = dict(card.get("params", {}))
    if params.pop("model_version", None) != MODEL_VERSION:
        raise ModelError(f"{folder}: not a send-time model of version {MODEL_VERSION}; retrain it")
    seed = int(params.pop("seed", 0))
    missing = sorted(set(_ARRAYS) - set(arrays))
    if missing:
        raise ModelError(f"{folder}: send-time model lacks {', '.join(missing)}; retrain it")
    contacts = arrays["contacts"].astype(np.int64)
    return SendTimeModel(
        params=SendTimeParams.from_json(params),
        cutoff=int(arrays["cutoff"][0]),
        global_profile=arrays["global_profile"],
        cohort_profiles={
            str(n): p
            for n, p in zip(arrays["cohort_names"], arrays["cohort_profiles"], strict=True)
        },
        contacts=contacts,
        counts=arrays["counts"],
        cohort={int(c): str(n) for c, n in zip(contacts, arrays["contact_cohorts"], strict=True)},
        seed=seed,
        decision_counts=arrays["decision_counts"],
        rates=arrays["rates"],
    )


def _rolling_lines(rolling: dict[str, Any]) -> list[str]:
    if not rolling.get("cutoffs"):
        return []
    return [
        f"Rolling origin ({rolling['cutoffs']} weekly cut-offs through the scored period, "
        f"{rolling['customer_cutoffs']} customer-cut-offs): hit rate {rolling['hit_rate_1h']:.4f}"
        f", own most common hour {rolling['baseline_mode']:.4f}, global "
        f"{rolling['baseline_global']:.4f}; above the own hour at {rolling['cutoffs_above_mode']}"
        f", below at {rolling['cutoffs_below_mode']}.",
        "",
    ]


def model_card_markdown(card: dict[str, Any]) -> str:
    """The human-readable card written beside the profiles."""
    m = card["internal_split_metrics"]
    rows = [
        ("this model", m),
        ("global most common hour", m["baseline_global"]),
        ("own most common hour", m["baseline_mode"]),
    ]
    lines = [
        f"# Model card: {card['version']}",
        "",
        f"Postwise send-time model — {card['task']}.",
        "",
        f"- family: {card['family']}; variant `{card['params']['variant']}` chosen by held-out "
        "log-likelihood on training-internal cut-offs, the decision profile and the "
        "next-activity fold by hit rate there",
        f"- parameters: `{json.dumps(card['params'], sort_keys=True)}`",
        f"- fitted as of {card['fitted_as_of']} on `{card['data']['folder']}` "
        f"({card['data']['contacts']} contacts)",
        "",
        f"## Internal split ({m['protocol']}, cut-off {m['cutoff']}, {m['customers']} customers)",
        "",
        "| model | hit rate ±1 h | log-likelihood |",
        "|---|---:|---:|",
        *(f"| {n} | {r['hit_rate_1h']:.4f} | {r['log_likelihood']:.4f} |" for n, r in rows),
        "",
        *_rolling_lines(m.get("rolling_origin", {})),
        "## Licence notes",
        "",
        card["licence_notes"],
        "",
    ]
    return "\n".join(lines)
