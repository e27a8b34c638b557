"""Bandit policies behind one interface: ``select`` an arm, ``update`` it with the reward.

``BanditPolicy`` is the interface every policy follows (the non-contextual Thompson sampler
here, the contextual ones beside it); a policy's whole learnt state is a JSON-able mapping
(``to_state`` / ``from_state``) so it can be stored and reloaded between decisions and
processes.

``BetaThompson`` is Bernoulli Thompson sampling: each arm's click (or open, or conversion) rate
has a Beta(alpha, beta) posterior, starting from a Beta(1, 1) prior; ``select`` draws one rate
per arm and plays the largest, ``update`` adds the reward (in [0, 1]) to alpha and its
complement to beta. ``probabilities`` estimates the chance that each arm is chosen (the
policy's action distribution, which off-policy evaluation needs) by Monte Carlo draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray


class BanditError(ValueError):
    """A policy was given an unknown arm, a reward out of range or an invalid state."""


class BanditPolicy(Protocol):
    """What every bandit policy offers; ``context`` is None for non-contextual policies."""

    @property
    def arms(self) -> tuple[str, ...]: ...

    def select(self, rng: np.random.Generator, context: NDArray[np.float64] | None = None) -> str:
        """The arm to play now."""
        ...

    def update(self, arm: str, reward: float, context: NDArray[np.float64] | None = None) -> None:
        """Learn from the reward observed after playing ``arm``."""
        ...

    def probabilities(
        self, rng: np.random.Generator, context: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """The chance of choosing each arm (in ``arms`` order) for this context."""
        ...

    def to_state(self) -> dict[str, Any]:
        """The learnt state as JSON-able data (see ``from_state``)."""
        ...


def check_arms(arms: Sequence[str]) -> tuple[str, ...]:
    """The arms as a tuple; raises BanditError when there are none or names repeat."""
    names = tuple(arms)
    if not names:
        raise BanditError("a bandit needs at least one arm")
    if len(set(names)) != len(names):
        raise BanditError(f"arm names repeat: {list(names)}")
    return names


@contextmanager
def restoring_state(state: Mapping[str, Any], kind: str) -> Iterator[None]:
    """Guards a ``from_state``: raises BanditError when ``state`` is of another kind, and turns
    a missing key or a value of the wrong type or shape met inside the block into BanditError."""
    try:
        if state["kind"] != kind:
            raise BanditError(f"state of a {state['kind']!r}, not {kind}")
        yield
    except BanditError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise BanditError(f"malformed {kind} state: {error}") from error


def check_reward(reward: float) -> float:
    """The reward as a float in [0, 1]; raises BanditError otherwise (NaN included)."""
    value = float(reward)
    if not 0.0 <= value <= 1.0:
        raise BanditError(f"reward {reward!r} is not in [0, 1]")
    return value


class BetaThompson:
    """Bernoulli Thompson sampling with Beta(prior_alpha, prior_beta) priors per arm."""

    def __init__(
        self,
        arms: Sequence[str],
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
    ) -> None:
        self._arms = check_arms(arms)
        if prior_alpha <= 0 or prior_beta <= 0:
            raise BanditError("Beta prior parameters must be positive")
        self.prior = (float(prior_alpha), float(prior_beta))
        self.successes = np.zeros(len(self._arms))
        self.failures = np.zeros(len(self._arms))
        self._index = {arm: i for i, arm in enumerate(self._arms)}

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    def arm_index(self, arm: str) -> int:
        try:
            return self._index[arm]
        except KeyError:
            raise BanditError(f"unknown arm {arm!r}; arms are {list(self._arms)}") from None

    def posterior(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Alpha and beta of every arm's posterior."""
        return self.successes + self.prior[0], self.failures + self.prior[1]

    def select(self, rng: np.random.Generator, context: NDArray[np.float64] | None = None) -> str:
        del context
        alpha, beta = self.posterior()
        return self._arms[int(np.argmax(rng.beta(alpha, beta)))]

    def update(self, arm: str, reward: float, context: NDArray[np.float64] | None = None) -> None:
        del context
        index = self.arm_index(arm)
        value = check_reward(reward)
        self.successes[index] += value
        self.failures[index] += 1.0 - value

    def probabilities(
        self,
        rng: np.random.Generator,
        context: NDArray[np.float64] | None = None,
        draws: int = 2000,
    ) -> NDArray[np.float64]:
        del context
        alpha, beta = self.posterior()
        samples = rng.beta(alpha, beta, size=(draws, len(self._arms)))
        counts = np.bincount(np.argmax(samples, axis=1), minlength=len(self._arms))
        return np.asarray(counts / draws, dtype=np.float64)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "beta_thompson",
            "arms": list(self._arms),
            "prior": list(self.prior),
            "successes": self.successes.tolist(),
            "failures": self.failures.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a policy from ``to_state``; raises BanditError when the state is malformed."""
        with restoring_state(state, "beta_thompson"):
            policy = cls(state["arms"], *state["prior"])
            successes = np.asarray(state["successes"], dtype=np.float64)
            failures = np.asarray(state["failures"], dtype=np.float64)
        shape = (len(policy.arms),)
        if successes.shape != shape or failures.shape != shape:
            raise BanditError("malformed beta_thompson state: counts do not match the arms")
        if (successes < 0).any() or (failures < 0).any():
            raise BanditError("malformed beta_thompson state: negative counts")
        policy.successes, policy.failures = successes, failures
        return policy
