"""Experiments with randomised holdout groups: who is held out, and what the send achieved.

Assignment is a pure function of (key, experiment salt, contact id): a keyed hash (HMAC-SHA256)
maps the contact to a point in [0, 1), and the experiment's arms own consecutive slices of that
interval in their given fractions. The same contact therefore lands in the same arm in every run
and every process, while two experiments with different salts assign independently of each
other. The key keeps the assignment unpredictable to anyone who knows the contact ids.

Holdouts come in two layers (``HoldoutPlan``): a global holdout that never receives campaign
mail, then per campaign a campaign holdout drawn among the remaining contacts.

The analysis is the difference in means between an arm and the control group, with a normal
approximation confidence interval (unequal variances); it serves binary outcomes (visit,
conversion) and continuous ones (spend) alike.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

CONTROL = "control"
TREATMENT = "treatment"
GLOBAL_HOLDOUT = "global_holdout"
CAMPAIGN_HOLDOUT = "campaign_holdout"


class ExperimentError(ValueError):
    """An experiment is ill-defined (fractions, arm names) or an analysis has no data."""


def hash_unit(key: bytes, salt: str, contact_id: str) -> float:
    """The contact's point in [0, 1) for this salt: HMAC-SHA256 keyed by ``key``."""
    message = f"{salt}\x00{contact_id}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Experiment:
    """Arms with their fractions (summing to 1) and the salt that makes assignment independent
    of every other experiment. Raises ExperimentError when the fractions are invalid."""

    name: str
    arms: tuple[tuple[str, float], ...]
    salt: str = ""

    def __post_init__(self) -> None:
        if not self.arms:
            raise ExperimentError(f"experiment {self.name!r}: no arms")
        names = [arm for arm, _ in self.arms]
        if len(set(names)) != len(names):
            raise ExperimentError(f"experiment {self.name!r}: arm names repeat: {names}")
        if any(not 0.0 <= share <= 1.0 for _, share in self.arms):
            raise ExperimentError(f"experiment {self.name!r}: fractions must be in [0, 1]")
        total = sum(share for _, share in self.arms)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ExperimentError(f"experiment {self.name!r}: fractions sum to {total}, not 1")

    @classmethod
    def with_holdout(cls, name: str, holdout: float, salt: str = "") -> Experiment:
        """Two arms: ``control`` (the holdout, in the given fraction) and ``treatment``."""
        return cls(name, ((CONTROL, holdout), (TREATMENT, 1.0 - holdout)), salt)

    @property
    def effective_salt(self) -> str:
        return self.salt or self.name

    def assign(self, contact_id: str, key: bytes) -> str:
        """The contact's arm; deterministic for (key, salt, contact id)."""
        point = hash_unit(key, self.effective_salt, contact_id)
        upper = 0.0
        for arm, share in self.arms:
            upper += share
            if point < upper:
                return arm
        return self.arms[-1][0]  # rounding of the fractions' sum


@dataclass(frozen=True)
class HoldoutPlan:
    """The global holdout (kept out of every campaign) and per-campaign holdouts."""

    key: bytes
    global_fraction: float
    global_salt: str = "postwise-global-holdout"

    def __post_init__(self) -> None:
        if not 0.0 <= self.global_fraction < 1.0:
            raise ExperimentError("the global holdout fraction must be in [0, 1)")

    def in_global_holdout(self, contact_id: str) -> bool:
        return hash_unit(self.key, self.global_salt, contact_id) < self.global_fraction

    def assign(self, contact_id: str, campaign: str, campaign_fraction: float) -> str:
        """``global_holdout``, ``campaign_holdout`` or ``treatment``. The campaign holdout is
        ``campaign_fraction`` of the contacts outside the global holdout, salted by campaign."""
        if not 0.0 <= campaign_fraction < 1.0:
            raise ExperimentError(f"campaign {campaign!r}: holdout fraction must be in [0, 1)")
        if self.in_global_holdout(contact_id):
            return GLOBAL_HOLDOUT
        experiment = Experiment.with_holdout(campaign, campaign_fraction, f"campaign:{campaign}")
        arm = experiment.assign(contact_id, self.key)
        return CAMPAIGN_HOLDOUT if arm == CONTROL else TREATMENT


@dataclass(frozen=True)
class EffectEstimate:
    """Difference in means (treated minus control) and its confidence interval."""

    effect: float
    ci_low: float
    ci_high: float
    std_error: float
    treated_mean: float
    control_mean: float
    treated_n: int
    control_n: int
    confidence: float

    def as_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "ate": self.effect,
            "ate_ci": [self.ci_low, self.ci_high],
            "std_error": self.std_error,
            "treated_mean": self.treated_mean,
            "control_mean": self.control_mean,
            "treated_n": self.treated_n,
            "control_n": self.control_n,
        }


def average_effect(
    treated: ArrayLike, control: ArrayLike, confidence: float = 0.95
) -> EffectEstimate:
    """Average treatment effect as a difference in means with a normal-approximation interval
    (standard error sqrt(s_t²/n_t + s_c²/n_c), sample variances). Works for 0/1 and continuous
    outcomes. Raises ExperimentError when either group has fewer than two observations."""
    y_t = np.asarray(treated, dtype=float)
    y_c = np.asarray(control, dtype=float)
    if y_t.size < 2 or y_c.size < 2:
        raise ExperimentError(
            f"need at least two outcomes per group (treated {y_t.size}, control {y_c.size})"
        )
    if not 0.0 < confidence < 1.0:
        raise ExperimentError("confidence must be in (0, 1)")
    mean_t, mean_c = float(y_t.mean()), float(y_c.mean())
    se = math.sqrt(float(y_t.var(ddof=1)) / y_t.size + float(y_c.var(ddof=1)) / y_c.size)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    effect = mean_t - mean_c
    return EffectEstimate(
        effect, effect - z * se, effect + z * se, se, mean_t, mean_c, y_t.size, y_c.size, confidence
    )


def analyse_experiment(
    arms: Sequence[str],
    outcomes: ArrayLike,
    control: str = CONTROL,
    confidence: float = 0.95,
) -> Mapping[str, EffectEstimate]:
    """Per arm other than ``control``: its effect against the control group. ``arms`` and
    ``outcomes`` are aligned per contact. Raises ExperimentError when the control is absent."""
    labels = np.asarray(arms, dtype=object)
    values = np.asarray(outcomes, dtype=float)
    if labels.shape[0] != values.shape[0]:
        raise ExperimentError("arms and outcomes differ in length")
    if not np.any(labels == control):
        raise ExperimentError(f"no contact is in the control arm {control!r}")
    baseline = values[labels == control]
    names = sorted({str(a) for a in labels.tolist()} - {control})
    return {name: average_effect(values[labels == name], baseline, confidence) for name in names}
