"""Contextual bandit policies behind :class:`~postwise.engage.bandits.BanditPolicy`.

The context is a float vector. Given as one vector (shape ``(dim,)``) it describes the contact
and every arm sees it; given as a matrix (shape ``(arms, dim)``) row k describes the contact
*with* arm k (for instance the contact's past affinity to that item), so arms can differ in
their features.

- :class:`LinUCB` (Li, Chu, Langford and Schapire 2010): a ridge regression of the reward on
  the context per arm; plays the largest upper confidence bound x·theta + alpha·sqrt(xᵀ A⁻¹ x).
  Deterministic: ``probabilities`` is 1 on the chosen arm (ties shared).
- :class:`LogisticThompson` (Chapelle and Li 2011): a Bayesian logistic regression of a 0/1
  reward with a diagonal Gaussian (Laplace) posterior; ``select`` draws weights from the
  posterior and plays the arm with the largest score. Each ``update`` is the exact one-row
  Laplace step: the posterior mode moves along x/q (a scalar Newton solve), the precision adds
  sigma(1-sigma)x².

With ``shared=True`` one parameter vector serves every arm (the context must then be a matrix,
whose rows tell the arms apart, e.g. with an arm one-hot); otherwise each arm has its own
("disjoint" models). States are JSON-able (``to_state`` / ``from_state``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from postwise.engage.bandits import (
    BanditError,
    BanditPolicy,
    BetaThompson,
    check_arms,
    check_reward,
    restoring_state,
)

FloatArray = NDArray[np.float64]


class _ContextualBase:
    kind = ""

    def __init__(self, arms: Sequence[str], dim: int, shared: bool) -> None:
        self._arms = check_arms(arms)
        if dim < 1:
            raise BanditError("a contextual bandit needs a context of at least one feature")
        self.dim = int(dim)
        self.shared = bool(shared)
        self._index = {arm: i for i, arm in enumerate(self._arms)}

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    @property
    def models(self) -> int:
        return 1 if self.shared else len(self._arms)

    def arm_index(self, arm: str) -> int:
        try:
            return self._index[arm]
        except KeyError:
            raise BanditError(f"unknown arm {arm!r}; arms are {list(self._arms)}") from None

    def contexts(self, context: FloatArray | None) -> FloatArray:
        """The context as one row per arm (shape ``(arms, dim)``); raises BanditError when it
        is missing, of the wrong shape or not finite."""
        if context is None:
            raise BanditError(f"{self.kind} needs a context")
        x = np.asarray(context, dtype=np.float64)
        if x.shape == (self.dim,):
            if self.shared:
                raise BanditError(
                    f"{self.kind} with shared parameters needs one context row per arm "
                    f"(shape ({len(self._arms)}, {self.dim}))"
                )
            x = np.broadcast_to(x, (len(self._arms), self.dim))
        if x.shape != (len(self._arms), self.dim):
            raise BanditError(
                f"context of shape {x.shape}; expected ({self.dim},) or "
                f"({len(self._arms)}, {self.dim})"
            )
        if not np.isfinite(x).all():
            raise BanditError("context holds NaN or infinite values")
        return x

    def model_of(self, arm_index: int) -> int:
        return 0 if self.shared else arm_index

    def _header(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "arms": list(self._arms),
            "dim": self.dim,
            "shared": self.shared,
        }


def _matrix(state: Mapping[str, Any], key: str, shape: tuple[int, ...], kind: str) -> FloatArray:
    value = np.asarray(state[key], dtype=np.float64)
    if value.shape != shape or not np.isfinite(value).all():
        raise BanditError(f"malformed {kind} state: {key!r} is not a finite array of {shape}")
    return value


class LinUCB(_ContextualBase):
    """Disjoint (or shared) linear UCB with ridge ``ridge`` and exploration ``alpha``."""

    kind = "linucb"

    def __init__(
        self,
        arms: Sequence[str],
        dim: int,
        alpha: float = 1.0,
        ridge: float = 1.0,
        shared: bool = False,
    ) -> None:
        super().__init__(arms, dim, shared)
        if alpha < 0 or ridge <= 0:
            raise BanditError("LinUCB needs alpha >= 0 and ridge > 0")
        self.alpha = float(alpha)
        self.ridge = float(ridge)
        self.gram = np.tile(np.eye(self.dim) * self.ridge, (self.models, 1, 1))
        self.moment = np.zeros((self.models, self.dim))

    def upper_bounds(self, context: FloatArray | None) -> FloatArray:
        """x·theta + alpha·sqrt(xᵀ A⁻¹ x) per arm."""
        x = self.contexts(context)
        bounds = np.empty(len(self._arms))
        for k in range(len(self._arms)):
            m = self.model_of(k)
            inverse = np.linalg.inv(self.gram[m])
            theta = inverse @ self.moment[m]
            bounds[k] = x[k] @ theta + self.alpha * np.sqrt(max(x[k] @ inverse @ x[k], 0.0))
        return bounds

    def probabilities(
        self, rng: np.random.Generator, context: FloatArray | None = None
    ) -> FloatArray:
        del rng
        bounds = self.upper_bounds(context)
        best = np.isclose(bounds, bounds.max(), rtol=0.0, atol=1e-12)
        return np.asarray(best / best.sum(), dtype=np.float64)

    def select(self, rng: np.random.Generator, context: FloatArray | None = None) -> str:
        probabilities = self.probabilities(rng, context)
        return self._arms[int(rng.choice(len(self._arms), p=probabilities))]

    def update(self, arm: str, reward: float, context: FloatArray | None = None) -> None:
        k = self.arm_index(arm)
        value = check_reward(reward)
        x = self.contexts(context)[k]
        m = self.model_of(k)
        self.gram[m] += np.outer(x, x)
        self.moment[m] += value * x

    def to_state(self) -> dict[str, Any]:
        return {
            **self._header(),
            "alpha": self.alpha,
            "ridge": self.ridge,
            "gram": self.gram.tolist(),
            "moment": self.moment.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state``; raises BanditError when the state is malformed."""
        with restoring_state(state, cls.kind):
            policy = cls(
                state["arms"], int(state["dim"]), state["alpha"], state["ridge"], state["shared"]
            )
            d, n = policy.dim, policy.models
            policy.gram = _matrix(state, "gram", (n, d, d), cls.kind)
            policy.moment = _matrix(state, "moment", (n, d), cls.kind)
        return policy


def _sigmoid(z: FloatArray | float) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))


class LogisticThompson(_ContextualBase):
    """Thompson sampling on a Bayesian logistic regression with prior N(0, 1/prior_precision)
    per weight (one precision for all, or one per feature); ``draws`` Monte Carlo samples
    estimate ``probabilities``."""

    kind = "logistic_thompson"

    def __init__(
        self,
        arms: Sequence[str],
        dim: int,
        prior_precision: float | Sequence[float] | FloatArray = 1.0,
        shared: bool = False,
        draws: int = 1000,
    ) -> None:
        super().__init__(arms, dim, shared)
        try:
            prior = np.broadcast_to(np.asarray(prior_precision, dtype=np.float64), (self.dim,))
        except ValueError:
            raise BanditError(
                f"logistic Thompson: prior precision is neither one value nor {self.dim}"
            ) from None
        if not (np.isfinite(prior).all() and (prior > 0).all()) or draws < 1:
            raise BanditError(
                f"logistic Thompson needs {self.dim} positive prior precisions and draws >= 1"
            )
        self.prior_precision = prior.copy()
        self.draws = int(draws)
        self.mean = np.zeros((self.models, self.dim))
        self.precision = np.tile(self.prior_precision, (self.models, 1))

    def sample_scores(
        self, rng: np.random.Generator, contexts: FloatArray, draws: int
    ) -> FloatArray:
        """Posterior draws of every arm's score x_k·w_k for a batch of contexts of shape
        ``(rows, arms, dim)``: an array of shape ``(rows, draws, arms)`` (the same weight draws
        for every row)."""
        noise = rng.standard_normal((draws, self.models, self.dim))
        weights = self.mean[None] + noise / np.sqrt(self.precision)[None]
        if self.shared:
            return np.asarray(np.einsum("rad,sd->rsa", contexts, weights[:, 0, :]))
        return np.asarray(np.einsum("rad,sad->rsa", contexts, weights))

    def probabilities(
        self, rng: np.random.Generator, context: FloatArray | None = None
    ) -> FloatArray:
        x = self.contexts(context)
        scores = self.sample_scores(rng, x[None], self.draws)[0]
        counts = np.bincount(np.argmax(scores, axis=1), minlength=len(self._arms))
        return np.asarray(counts / self.draws, dtype=np.float64)

    def select(self, rng: np.random.Generator, context: FloatArray | None = None) -> str:
        x = self.contexts(context)
        scores = self.sample_scores(rng, x[None], 1)[0, 0]
        return self._arms[int(np.argmax(scores))]

    def update(self, arm: str, reward: float, context: FloatArray | None = None) -> None:
        k = self.arm_index(arm)
        value = check_reward(reward)
        x = self.contexts(context)[k]
        m = self.model_of(k)
        mean, precision = self.mean[m], self.precision[m]
        # The posterior mode w solves q(w - m) = (r - sigma(w·x)) x, so w = m + c·x/q with
        # c = r - sigma(s) and s = w·x: a monotone scalar equation in s, solved by Newton.
        base = float(x @ mean)
        spread = float(np.sum(x * x / precision))
        s = base
        for _ in range(50):
            p = float(_sigmoid(s))
            step = (s - base - (value - p) * spread) / (1.0 + p * (1.0 - p) * spread)
            s -= step
            if abs(step) < 1e-12:
                break
        p = float(_sigmoid(s))
        self.mean[m] = mean + (value - p) * x / precision
        self.precision[m] = precision + p * (1.0 - p) * x * x

    def to_state(self) -> dict[str, Any]:
        return {
            **self._header(),
            "prior_precision": self.prior_precision.tolist(),
            "draws": self.draws,
            "mean": self.mean.tolist(),
            "precision": self.precision.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_state``; raises BanditError when the state is malformed."""
        with restoring_state(state, cls.kind):
            policy = cls(
                state["arms"],
                int(state["dim"]),
                state["prior_precision"],
                state["shared"],
                int(state["draws"]),
            )
            shape = (policy.models, policy.dim)
            policy.mean = _matrix(state, "mean", shape, cls.kind)
            policy.precision = _matrix(state, "precision", shape, cls.kind)
        if (policy.precision <= 0).any():
            raise BanditError(f"malformed {cls.kind} state: non-positive precision")
        return policy


def policy_from_state(state: Mapping[str, Any]) -> BanditPolicy:
    """Any policy of this package from its ``to_state``; raises BanditError for an unknown
    kind."""
    kinds: dict[str, type[BetaThompson] | type[LinUCB] | type[LogisticThompson]] = {
        "beta_thompson": BetaThompson,
        LinUCB.kind: LinUCB,
        LogisticThompson.kind: LogisticThompson,
    }
    kind = state.get("kind") if isinstance(state, Mapping) else None
    if kind not in kinds:
        raise BanditError(f"unknown bandit kind {kind!r}; known: {', '.join(kinds)}")
    return kinds[str(kind)].from_state(state)
