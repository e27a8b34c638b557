"""Contact fatigue: the response curve against the number of contacts, and the cap it implies.

The curve is read from a log where each row is one client's campaign: ``campaign`` contacts were
made (including the last) and ``y`` says whether the client responded. A caller stops calling a
client who has responded, so a responder's ``campaign`` is the contact that worked and a
non-responder's is the contact after which the caller gave up. Two views:

- the **response rate** by number of contacts, P(y | campaign = k): descriptive only (the
  hardest prospects get the most calls);
- the **hazard**, h(k) = P(response at contact k | no response before) = responders at k /
  clients reached a k-th time. This is what a cap decision needs: it is the expected number of
  responses one more attempt buys at contact k.

**Gain of a cap, at equal attempts.** A cap C keeps every client with ``campaign <= C`` as it
was and stops the others after C contacts: the responders beyond C are lost and the attempts
beyond C are saved. The saved attempts are spent elsewhere at the campaign's average yield per
attempt (responses / attempts without a cap, ``break_even``). So

    gain(C) = (R(C) - R) + (A - A(C)) * R / A           (per 1000 clients below)

where R, A are responses and attempts without a cap and R(C), A(C) with it. gain(C) grows with C
as long as h(C+1) >= R / A: **the best cap is the number of leading contacts whose hazard is at
least the average yield per attempt** (the hazard is smoothed to be non-increasing first,
isotonic regression weighted by the clients at risk, so noise in the tail cannot move the cap).
It assumes what happened up to the cap would have happened with the cap too.

**Model-adjusted hazard.** :class:`HazardModel` is a discrete-time hazard model: one row per
client and contact k (up to ``HAZARD_MAX_K``), gradient boosting on the client's propensity
features and k, constrained to be non-increasing in k. It gives a curve standardised over the
clients (the average of h(k | x), free of "hard prospects get more calls") and a cap per client
(the leading contacts whose predicted hazard is at least the break-even; at least one contact,
so it caps follow-ups and never decides who is contacted at all).

The store-facing side (fatigue score, :class:`FrequencyPolicy`, :func:`decide_send`) lives in
:mod:`postwise.engage.fatigue_policy` and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from postwise.core.errors import CorpusError
from postwise.engage.datasets import (
    BANK_NUMERIC,
    BankTable,
    DatasetError,
    detect_dataset,
    read_bank,
)
from postwise.engage.fatigue_policy import (
    Allow,
    Downgrade,
    FrequencyPolicy,
    HistoryEvent,
    SendDecision,
    SendHistory,
    Suppress,
    WindowCap,
    decide_send,
    decide_sends,
    fatigue_score,
    read_histories,
)
from postwise.engage.propensity_data import BankEncoding

__all__ = [
    "Allow",
    "ContactCurve",
    "Downgrade",
    "FrequencyPolicy",
    "HazardModel",
    "HistoryEvent",
    "SendDecision",
    "SendHistory",
    "Suppress",
    "WindowCap",
    "cap_from_hazard",
    "cap_outcome",
    "decide_send",
    "decide_sends",
    "equal_budget_gain",
    "evaluate_fatigue_folder",
    "fatigue_score",
    "read_histories",
    "response_curve",
    "smooth_hazard",
]

Z95 = 1.959964
MAX_CURVE_K = 20  # contacts reported in the curve (the hazard is read up to the last with data)
MIN_AT_RISK = 30  # a contact number enters the curve when this many clients reached it
HAZARD_MAX_K = 15  # contacts the hazard model is fitted and asked about; later ones reuse it
FIXED_CAP = 3  # the rule-of-thumb baseline: three attempts per client and campaign
VALIDATION_SHARE = 0.25
TEST_SHARE = 0.3  # the internal split mirrors the hidden holdout (stratified random 30%)
BOOTSTRAP_DRAWS = 400
MIN_PER_CLASS = 20  # responders and non-responders a folder needs (splits of splits follow)
# Columns not used by the hazard model: ``campaign`` is the time axis itself, and the weekday is
# that of the last contact only (unknown when deciding an earlier one).
HAZARD_EXCLUDED = ("campaign", "day_of_week")
NO_CAP = np.iinfo(np.int64).max


def wilson(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of successes / trials (elementwise; [0, 1] when trials = 0)."""
    n = np.asarray(trials, dtype=np.float64)
    p = np.divide(successes, n, out=np.zeros_like(n), where=n > 0)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * np.maximum(n, 1))) / (1 + z2 / np.maximum(n, 1))
    half = (
        Z95
        * np.sqrt(p * (1 - p) / np.maximum(n, 1) + z2 / (4 * np.maximum(n, 1) ** 2))
        / (1 + z2 / np.maximum(n, 1))
    )
    low = np.where(n > 0, np.clip(centre - half, 0, 1), 0.0)
    high = np.where(n > 0, np.clip(centre + half, 0, 1), 1.0)
    return low, high


@dataclass(frozen=True)
class ContactCurve:
    """Per contact number k = 1..len: clients whose campaign ended at k, responders among them,
    and clients reached a k-th time (at risk)."""

    clients: np.ndarray
    responders: np.ndarray
    at_risk: np.ndarray

    def __len__(self) -> int:
        return int(self.clients.shape[0])

    @property
    def hazard(self) -> np.ndarray:
        return np.asarray(
            np.divide(
                self.responders,
                self.at_risk,
                out=np.zeros(len(self), dtype=np.float64),
                where=self.at_risk > 0,
            )
        )

    @property
    def response_rate(self) -> np.ndarray:
        return np.asarray(
            np.divide(
                self.responders,
                self.clients,
                out=np.zeros(len(self), dtype=np.float64),
                where=self.clients > 0,
            )
        )

    def rows(
        self, smoothed: np.ndarray, adjusted: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """JSON-ready rows: counts, both rates with 95% Wilson intervals, the smoothed hazard
        and (when given) the model-adjusted one."""
        rate_low, rate_high = wilson(self.responders, self.clients)
        hazard_low, hazard_high = wilson(self.responders, self.at_risk)
        rate, hazard = self.response_rate, self.hazard
        out = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "contacts": i + 1,
                "clients": int(self.clients[i]),
                "responders": int(self.responders[i]),
                "response_rate": round(float(rate[i]), 5),
                "response_rate_ci": [round(float(rate_low[i]), 5), round(float(rate_high[i]), 5)],
                "at_risk": int(self.at_risk[i]),
                "hazard": round(float(hazard[i]), 5),
                "hazard_ci": [round(float(hazard_low[i]), 5), round(float(hazard_high[i]), 5)],
                "smoothed_hazard": round(float(smoothed[i]), 5),
            }
            if adjusted is not None:
                row["adjusted_hazard"] = round(float(adjusted[i]), 5)
            out.append(row)
        return out


def response_curve(
    campaign: np.ndarray, label: np.ndarray, max_k: int = MAX_CURVE_K
) -> ContactCurve:
    """The curve of contact numbers 1..K, K the last (at most ``max_k``) that at least
    ``MIN_AT_RISK`` clients reached (at least 1). Raises ValueError on a contact count below 1."""
    campaign = np.asarray(campaign, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    if campaign.size == 0:
        raise ValueError("no clients to draw a response curve from")
    if int(campaign.min()) < 1:
        raise ValueError("the number of contacts must be at least 1 (it includes the last)")
    top = int(campaign.max())
    clients = np.bincount(campaign, minlength=top + 1)[1:]
    responders = np.bincount(campaign, weights=label, minlength=top + 1)[1:].astype(np.int64)
    at_risk = clients[::-1].cumsum()[::-1]
    reached = np.flatnonzero(at_risk >= MIN_AT_RISK)
    size = max(1, min(max_k, int(reached[-1]) + 1 if reached.size else 1))
    return ContactCurve(clients[:size], responders[:size], at_risk[:size])


def smooth_hazard(curve: ContactCurve) -> np.ndarray:
    """The hazard fitted non-increasing in k (isotonic regression weighted by the at-risk
    counts): more attempts never make a response likelier, and a noisy bump in the thin tail
    cannot move the cap."""
    ks = np.arange(1, len(curve) + 1, dtype=np.float64)
    weights = np.maximum(curve.at_risk, 1).astype(np.float64)
    model = IsotonicRegression(increasing=False)
    return np.asarray(model.fit_transform(ks, curve.hazard, sample_weight=weights), dtype=float)


def cap_from_hazard(
    hazard: np.ndarray, break_even: float, upper: np.ndarray | None = None
) -> int | None:
    """The contacts before the first one that does not pay (at least 1): whose hazard is
    below ``break_even`` and, when ``upper`` (95% upper bounds of the hazard) is given, whose
    upper bound is too, so a contact is only cut when the data show it pays less than the
    break-even. None when every contact of the curve pays (no cap)."""
    short = np.asarray(hazard) < break_even
    if upper is not None:
        short &= np.asarray(upper) < break_even
    below = np.flatnonzero(short)
    if below.size == 0:
        return None
    return max(1, int(below[0]))


def _caps_array(caps: int | np.ndarray | None, rows: int) -> np.ndarray:
    if caps is None:
        return np.full(rows, NO_CAP, dtype=np.int64)
    return np.broadcast_to(np.asarray(caps, dtype=np.int64), (rows,))


@dataclass(frozen=True)
class CapOutcome:
    """What a cap leaves of a campaign: clients, responses kept and attempts made."""

    clients: int
    responses: int
    attempts: int


def cap_outcome(
    campaign: np.ndarray, label: np.ndarray, caps: int | np.ndarray | None
) -> CapOutcome:
    """Responses and attempts when each client is stopped after ``caps`` contacts (one cap for
    all, one per client, or None for no cap)."""
    campaign = np.asarray(campaign, dtype=np.int64)
    cap = _caps_array(caps, campaign.shape[0])
    kept = campaign <= cap
    return CapOutcome(
        int(campaign.shape[0]),
        int(np.asarray(label)[kept].sum()),
        int(np.minimum(campaign, cap).sum()),
    )


def equal_budget_gain(
    campaign: np.ndarray, label: np.ndarray, caps: int | np.ndarray | None
) -> float:
    """Responses gained per 1000 clients by ``caps`` at equal attempts: the responses lost
    beyond the cap, plus the saved attempts spent at the uncapped yield per attempt."""
    base = cap_outcome(campaign, label, None)
    capped = cap_outcome(campaign, label, caps)
    yield_per_attempt = base.responses / max(base.attempts, 1)
    gain = capped.responses - base.responses + (base.attempts - capped.attempts) * yield_per_attempt
    return 1000.0 * gain / max(base.clients, 1)


def bootstrap_gains(
    campaign: np.ndarray,
    label: np.ndarray,
    policies: dict[str, int | np.ndarray | None],
    seed: int,
    draws: int = BOOTSTRAP_DRAWS,
) -> dict[str, np.ndarray]:
    """``draws`` bootstrap replicates (Poisson weights, the same draws for every policy, so
    differences are paired) of :func:`equal_budget_gain` per policy."""
    campaign = np.asarray(campaign, dtype=np.int64)
    label = np.asarray(label, dtype=np.float64)
    rows = campaign.shape[0]
    weights = np.random.default_rng(seed).poisson(1.0, size=(draws, rows)).astype(np.float64)
    clients = weights.sum(axis=1)
    responses = weights @ label
    attempts = weights @ campaign.astype(np.float64)
    yield_per_attempt = responses / np.maximum(attempts, 1)
    out = {}
    for name, caps in policies.items():
        cap = _caps_array(caps, rows)
        kept = weights @ (label * (campaign <= cap))
        used = weights @ np.minimum(campaign, cap).astype(np.float64)
        gain = kept - responses + (attempts - used) * yield_per_attempt
        out[name] = 1000.0 * gain / np.maximum(clients, 1)
    return out


def _interval(values: np.ndarray) -> list[float]:
    return [
        round(float(np.quantile(values, 0.025)), 3),
        round(float(np.quantile(values, 0.975)), 3),
    ]


class HazardModel:
    """Discrete-time hazard h(k | x): gradient boosting on (x, k) over one row per client and
    contact up to ``HAZARD_MAX_K``, non-increasing in k. Seeded and single-threaded."""

    def __init__(self, categorical: tuple[bool, ...], seed: int = 0) -> None:
        self.categorical = categorical
        self.seed = seed
        self.model = HistGradientBoostingClassifier(
            max_leaf_nodes=15,
            learning_rate=0.05,
            max_iter=200,
            min_samples_leaf=80,
            l2_regularization=1.0,
            early_stopping=False,
            categorical_features=[*categorical, False] if any(categorical) else None,
            monotonic_cst=[0] * len(categorical) + [-1],
            random_state=seed,
        )

    @staticmethod
    def person_periods(
        features: np.ndarray, campaign: np.ndarray, label: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One row per client and contact k <= min(campaign, HAZARD_MAX_K): (x, k), and 1 at
        the contact where a responder responded."""
        campaign = np.asarray(campaign, dtype=np.int64)
        reps = np.minimum(campaign, HAZARD_MAX_K)
        client = np.repeat(np.arange(campaign.shape[0]), reps)
        starts = np.repeat(np.cumsum(reps) - reps, reps)
        k = np.arange(client.shape[0]) - starts + 1
        event = ((k == campaign[client]) & (np.asarray(label)[client] == 1)).astype(np.int8)
        return np.hstack([features[client], k[:, None].astype(np.float64)]), event

    def fit(self, features: np.ndarray, campaign: np.ndarray, label: np.ndarray) -> HazardModel:
        rows, event = self.person_periods(features, campaign, label)
        if len(np.unique(event)) < 2:
            raise CorpusError("the training rows need responders and non-responders")
        with threadpool_limits(1):
            self.model.fit(rows, event)
        return self

    def hazards(self, features: np.ndarray) -> np.ndarray:
        """h(k | x) for k = 1..HAZARD_MAX_K, shape (clients, HAZARD_MAX_K)."""
        columns = []
        with threadpool_limits(1):
            for k in range(1, HAZARD_MAX_K + 1):
                rows = np.hstack([features, np.full((features.shape[0], 1), float(k))])
                columns.append(self.model.predict_proba(rows)[:, 1])
        return np.column_stack(columns)

    def log_loss(self, features: np.ndarray, campaign: np.ndarray, label: np.ndarray) -> float:
        rows, event = self.person_periods(features, campaign, label)
        with threadpool_limits(1):
            score = self.model.predict_proba(rows)[:, 1]
        return float(log_loss(event, score, labels=[0, 1]))


def personal_caps(hazards: np.ndarray, break_even: float) -> np.ndarray:
    """Per client, the leading contacts whose predicted hazard is at least ``break_even``
    (at least 1; no cap when all ``HAZARD_MAX_K`` do)."""
    paying = np.cumprod(hazards >= break_even, axis=1).sum(axis=1)
    caps = np.maximum(paying, 1).astype(np.int64)
    return np.where(paying >= hazards.shape[1], NO_CAP, caps)


def empirical_log_loss(hazard: np.ndarray, campaign: np.ndarray, label: np.ndarray) -> float:
    """Log loss of a per-k hazard (the last value reused beyond it) on person-period rows."""
    rows, event = HazardModel.person_periods(np.zeros((len(campaign), 0)), campaign, label)
    k = rows[:, -1].astype(np.int64)
    score = np.clip(hazard[np.minimum(k, len(hazard)) - 1], 1e-6, 1 - 1e-6)
    return float(log_loss(event, score, labels=[0, 1]))


@dataclass
class _Fitted:
    curve: ContactCurve
    smoothed: np.ndarray
    break_even: float
    global_cap: int | None
    model: HazardModel
    adjusted: np.ndarray
    adjusted_cap: int | None

    def caps(self, policy: str, features: np.ndarray) -> int | np.ndarray | None:
        if policy == "global_cap":
            return self.global_cap
        if policy == "adjusted_global_cap":
            return self.adjusted_cap
        return personal_caps(self.model.hazards(features), self.break_even)


POLICIES = ("global_cap", "adjusted_global_cap", "per_contact_cap")


def _fit(
    features: np.ndarray,
    categorical: tuple[bool, ...],
    campaign: np.ndarray,
    label: np.ndarray,
    seed: int,
) -> _Fitted:
    curve = response_curve(campaign, label)
    smoothed = smooth_hazard(curve)
    base = cap_outcome(campaign, label, None)
    break_even = base.responses / max(base.attempts, 1)
    model = HazardModel(categorical, seed).fit(features, campaign, label)
    # standardised: the average predicted hazard over all clients at each k (the model's last
    # contact number stands for the later ones)
    mean = model.hazards(features).mean(axis=0)
    adjusted = mean[np.minimum(np.arange(len(curve)), mean.shape[0] - 1)]
    return _Fitted(
        curve,
        smoothed,
        break_even,
        cap_from_hazard(smoothed, break_even, wilson(curve.responders, curve.at_risk)[1]),
        model,
        adjusted,
        cap_from_hazard(adjusted, break_even),
    )


def _hazard_features(
    table: BankTable, encoding: BankEncoding, rows: np.ndarray
) -> tuple[np.ndarray, tuple[bool, ...]]:
    design = encoding.design(table, rows)
    keep = [i for i, name in enumerate(design.names) if name not in HAZARD_EXCLUDED]
    return design.features[:, keep], tuple(design.categorical[i] for i in keep)


def _split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(labels.shape[0])
    first, second = train_test_split(rows, test_size=share, stratify=labels, random_state=seed)
    return np.sort(first), np.sort(second)


def _cap_json(cap: int | np.ndarray | None) -> Any:
    if cap is None:
        return None
    if isinstance(cap, np.ndarray):
        return "per contact"
    return int(cap)


def _policy_report(
    campaign: np.ndarray,
    label: np.ndarray,
    caps: int | np.ndarray | None,
    replicates: np.ndarray,
) -> dict[str, Any]:
    base = cap_outcome(campaign, label, None)
    out = cap_outcome(campaign, label, caps)
    gain = equal_budget_gain(campaign, label, caps)
    return {
        "cap": _cap_json(caps),
        "responses": out.responses,
        "attempts": out.attempts,
        "responses_per_attempt": round(out.responses / max(out.attempts, 1), 5),
        "responses_lost": base.responses - out.responses,
        "attempts_saved": base.attempts - out.attempts,
        "gain_per_1000": round(gain, 3),
        "gain_ci": _interval(replicates),
        "relative_gain": round(gain / (1000.0 * base.responses / max(base.clients, 1)), 4),
    }


def _campaign(table: BankTable, rows: np.ndarray) -> np.ndarray:
    values = table.numeric[rows, BANK_NUMERIC.index("campaign")]
    bad = np.flatnonzero((values < 1) | (values != np.round(values)))
    if bad.size:
        row = int(rows[bad[0]])
        # one file: its data rows start on line 2 (several files: name the row instead)
        where = (
            f"{table.files[0]} line {row + 2}"
            if len(table.files) == 1
            else f"{', '.join(table.files)} data row {row + 1}"
        )
        raise DatasetError(
            f"{where}: column 'campaign' holds {values[bad[0]]:g}, not a whole number of "
            "contacts of at least 1"
        )
    return np.asarray(values, dtype=np.int64)


def evaluate_fatigue_folder(
    train_folder: Path, test_folder: Path | None = None, seed: int = 0
) -> dict[str, Any]:
    """Estimate the response curve and caps on ``train_folder`` (bank_marketing) and measure
    the caps' equal-budget gain on ``test_folder`` (default: a stratified random 30% of the
    training folder, as the hidden holdout is drawn). The cap policy (empirical global cap,
    model-adjusted global cap or per-client cap) is chosen by its gain on a stratified quarter
    of the training rows, fitting on the rest. Raises DatasetError for unreadable data or
    another data set, CorpusError when the rows cannot fit a model."""
    for folder in (train_folder, test_folder):
        if folder is not None and detect_dataset(folder) != "bank_marketing":
            raise DatasetError(
                f"{folder}: fatigue caps are estimated on bank_marketing (clients with a "
                "number of contacts); this folder holds another data set"
            )
    table = read_bank(train_folder)
    _campaign(table, np.arange(len(table)))  # a malformed count stops here, before any split
    counts = np.bincount(table.label, minlength=2)
    if int(counts.min()) < MIN_PER_CLASS:
        raise CorpusError(
            f"{train_folder}: {int(counts[1])} responders and {int(counts[0])} non-responders; "
            f"at least {MIN_PER_CLASS} of each are needed to estimate a cap"
        )
    if test_folder is None:
        train_rows, test_rows = _split(table.label, TEST_SHARE, seed)
        test_table = table
        protocol = f"internal stratified random split ({TEST_SHARE:.0%} scored)"
    else:
        train_rows = np.arange(len(table))
        test_table = read_bank(test_folder)
        test_rows = np.arange(len(test_table))
        _campaign(test_table, test_rows)
        protocol = "train on --train, score --test"
    encoding = BankEncoding.learn(table, train_rows)
    features, categorical = _hazard_features(table, encoding, train_rows)
    campaign, label = _campaign(table, train_rows), table.label[train_rows].astype(np.int64)

    # choose the policy on training rows only: fit on three quarters, measure on the fourth
    fit_rows, check_rows = _split(label, VALIDATION_SHARE, seed)
    trial = _fit(features[fit_rows], categorical, campaign[fit_rows], label[fit_rows], seed)
    selection: dict[str, Any] = {}
    for policy in POLICIES:
        caps = trial.caps(policy, features[check_rows])
        selection[policy] = round(
            equal_budget_gain(campaign[check_rows], label[check_rows], caps), 3
        )
    chosen = max(POLICIES, key=lambda name: (selection[name], -POLICIES.index(name)))
    hazard_log_loss = {
        "empirical": round(
            empirical_log_loss(trial.smoothed, campaign[check_rows], label[check_rows]), 5
        ),
        "model": round(
            trial.model.log_loss(features[check_rows], campaign[check_rows], label[check_rows]), 5
        ),
    }

    fitted = _fit(features, categorical, campaign, label, seed)
    test_features, _ = _hazard_features(test_table, encoding, test_rows)
    test_campaign = _campaign(test_table, test_rows)
    test_label = test_table.label[test_rows].astype(np.int64)
    policies: dict[str, int | np.ndarray | None] = {
        "no_cap": None,
        f"fixed_cap_{FIXED_CAP}": FIXED_CAP,
        **{name: fitted.caps(name, test_features) for name in POLICIES},
    }
    replicates = bootstrap_gains(test_campaign, test_label, policies, seed)
    report = {
        name: _policy_report(test_campaign, test_label, caps, replicates[name])
        for name, caps in policies.items()
    }
    per_contact = policies["per_contact_cap"]
    assert isinstance(per_contact, np.ndarray)
    capped = per_contact[per_contact != NO_CAP]
    report["per_contact_cap"]["cap_distribution"] = {
        "median": int(np.median(capped)) if capped.size else None,
        "share_capped_at_1": round(float(np.mean(per_contact == 1)), 4),
        "share_uncapped": round(float(np.mean(per_contact == NO_CAP)), 4),
    }
    fixed = f"fixed_cap_{FIXED_CAP}"
    best_cap = fitted.adjusted_cap if chosen == "adjusted_global_cap" else fitted.global_cap
    test_curve = response_curve(test_campaign, test_label)
    return {
        "dataset": "bank_marketing",
        "protocol": protocol,
        "rows": int(test_rows.shape[0]),
        "train_rows": int(train_rows.shape[0]),
        "best_cap": best_cap,
        "policy": chosen,
        "expected_gain": report[chosen]["gain_per_1000"],
        "expected_gain_ci": report[chosen]["gain_ci"],
        "best_cap_expected_gain": report["global_cap"]["gain_per_1000"],
        "best_cap_expected_gain_ci": report["global_cap"]["gain_ci"],
        "expected_gain_vs_fixed_cap": round(
            report[chosen]["gain_per_1000"] - report[fixed]["gain_per_1000"], 3
        ),
        "expected_gain_vs_fixed_cap_ci": _interval(replicates[chosen] - replicates[fixed]),
        "gain_definition": (
            "responses gained per 1000 clients of the scored rows at equal attempts: responses "
            "lost by stopping clients after the cap, plus the attempts saved spent at the "
            "uncapped yield per attempt (scored rows); 0 = no cap; 95% bootstrap intervals"
        ),
        "break_even_hazard": round(fitted.break_even, 5),
        "policies": report,
        "curve": fitted.curve.rows(fitted.smoothed, fitted.adjusted),
        "test_hazard": [round(float(h), 5) for h in test_curve.hazard],
        "selection": {
            "measured_on": "a stratified quarter of the training rows (fit on the rest)",
            "gain_per_1000": selection,
            "hazard_log_loss": hazard_log_loss,
            "chosen": chosen,
        },
        "curve_caps": {"empirical": fitted.global_cap, "model_adjusted": fitted.adjusted_cap},
    }
