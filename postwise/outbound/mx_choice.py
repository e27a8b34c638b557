"""Choosing among MX hosts: preference order first (RFC 5321 section 5.1), then learned quality.

RFC 5321 requires a sender to try MX hosts in increasing preference value, and leaves the order
among hosts of equal preference to the sender (it suggests random). ``MxSelector`` keeps the
preference order intact and, within each group of equal preference, ranks the hosts by a score
learned from past deliveries: a draw from the Beta posterior of the host's success rate
(Thompson sampling, so an uncertain host is still tried) scaled down by its latency. With
probability ``explore`` a group is shuffled instead, so even a host with a poor record gets the
odd first try. Evidence decays with a half-life, so a host that recovers gets traffic back, and
the number of hosts remembered is capped.

Every choice carries the figures behind it (``MxChoice``), and ``snapshot()`` gives them for
``queue show`` and the metrics.
"""

from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MxChoice:
    """One MX host in the chosen order, with the figures that placed it there."""

    host: str
    preference: int
    successes: float
    failures: float
    mean_latency: float | None
    sampled_success: float
    score: float
    explored: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "preference": self.preference,
            "successes": round(self.successes, 3),
            "failures": round(self.failures, 3),
            "mean_latency": self.mean_latency,
            "sampled_success": self.sampled_success,
            "score": self.score,
            "explored": self.explored,
        }


@dataclass(slots=True)
class _HostStats:
    successes: float = 0.0
    failures: float = 0.0
    mean_latency: float | None = None
    updated_at: float = 0.0


def _normalise(host: str) -> str:
    return host.strip().lower().rstrip(".")


class MxSelector:
    """Orders MX hosts by preference, then by learned success and latency within a preference.

    ``half_life`` (seconds): evidence loses half its weight in that time. ``latency_scale``
    (seconds): a host whose mean latency equals it has its score halved. ``latency_alpha``: the
    weight of a new latency in its moving average. ``explore``: the chance that a group of
    equal preference is shuffled instead of ranked. ``max_evidence``: successes plus failures
    are capped at it, so the posterior never becomes so sure that a host is never tried again.
    ``max_hosts``: hosts remembered (the least recently seen are forgotten). ``clock`` gives the
    time when ``now`` is not passed (monotonic by default). ``seed`` makes the draws
    reproducible.
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        half_life: float = 3600.0,
        latency_scale: float = 5.0,
        latency_alpha: float = 0.2,
        explore: float = 0.05,
        max_evidence: float = 200.0,
        max_hosts: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises ValueError for a setting out of range."""
        checks = (
            ("half_life", half_life > 0),
            ("latency_scale", latency_scale > 0),
            ("latency_alpha", 0 < latency_alpha <= 1),
            ("explore", 0 <= explore <= 1),
            ("max_evidence", max_evidence >= 1),
            ("max_hosts", max_hosts >= 1),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"MxSelector: {name} is out of range")
        self._random = random.Random(seed)
        self.half_life = half_life
        self.latency_scale = latency_scale
        self.latency_alpha = latency_alpha
        self.explore = explore
        self.max_evidence = max_evidence
        self.max_hosts = max_hosts
        self._clock = clock
        self._hosts: OrderedDict[str, _HostStats] = OrderedDict()

    def _now(self, now: float | None) -> float:
        return float(self._clock()) if now is None else now

    def _stats(self, host: str, now: float, create: bool) -> _HostStats | None:
        stats = self._hosts.get(host)
        if stats is None:
            if not create:
                return None
            stats = self._hosts[host] = _HostStats(updated_at=now)
            while len(self._hosts) > self.max_hosts:
                self._hosts.popitem(last=False)
        elif now > stats.updated_at:
            decay = 0.5 ** ((now - stats.updated_at) / self.half_life)
            stats.successes *= decay
            stats.failures *= decay
            stats.updated_at = now
        return stats

    def record(self, host: str, ok: bool, latency: float, now: float | None = None) -> None:
        """Learn one delivery attempt to ``host``: whether it succeeded and how long it took
        (seconds, failures included: a timeout is slow). Raises ValueError for an empty host or
        a negative or non-finite latency."""
        if not isinstance(host, str) or not _normalise(host):
            raise ValueError(f"host must be a non-empty name, found {host!r}")
        if isinstance(latency, bool) or not math.isfinite(latency) or latency < 0:
            raise ValueError(f"latency must be a finite number of seconds >= 0, found {latency!r}")
        at = self._now(now)
        name = _normalise(host)
        stats = self._stats(name, at, create=True)
        assert stats is not None
        self._hosts.move_to_end(name)
        if ok:
            stats.successes += 1
        else:
            stats.failures += 1
        total = stats.successes + stats.failures
        if total > self.max_evidence:
            stats.successes *= self.max_evidence / total
            stats.failures *= self.max_evidence / total
        if stats.mean_latency is None:
            stats.mean_latency = float(latency)
        else:
            stats.mean_latency += self.latency_alpha * (latency - stats.mean_latency)

    def order(self, mx: list[tuple[int, str]], now: float | None = None) -> list[MxChoice]:
        """Every host of ``mx`` (``(preference, host)`` pairs, any order) in the order to try:
        preference values never decrease; within one preference, the higher score first. A
        host listed twice keeps its lowest preference. Raises ValueError for a preference
        outside 0..65535 or an empty host."""
        at = self._now(now)
        best: dict[str, int] = {}
        for entry in mx:
            preference, host = entry
            if isinstance(preference, bool) or not isinstance(preference, int):
                raise ValueError(f"{entry!r}: the preference must be a whole number")
            if not 0 <= preference <= 65535:
                raise ValueError(f"{entry!r}: the preference must be within 0..65535")
            if not isinstance(host, str) or not _normalise(host):
                raise ValueError(f"{entry!r}: the host must be a non-empty name")
            name = _normalise(host)
            best[name] = min(best.get(name, preference), preference)
        groups: dict[int, list[str]] = {}
        for name, preference in best.items():
            groups.setdefault(preference, []).append(name)
        chosen: list[MxChoice] = []
        for preference in sorted(groups):
            explored = len(groups[preference]) > 1 and self._random.random() < self.explore
            scored = [self._choice(name, preference, at, explored) for name in groups[preference]]
            if explored:
                self._random.shuffle(scored)
            else:
                scored.sort(key=lambda c: (-c.score, c.host))
            chosen.extend(scored)
        return chosen

    def _choice(self, host: str, preference: int, now: float, explored: bool) -> MxChoice:
        stats = self._stats(host, now, create=False) or _HostStats()
        sampled = self._random.betavariate(1.0 + stats.successes, 1.0 + stats.failures)
        # An unmeasured host is not penalised: it deserves a first try.
        latency = stats.mean_latency or 0.0
        score = sampled * self.latency_scale / (self.latency_scale + latency)
        return MxChoice(
            host=host,
            preference=preference,
            successes=stats.successes,
            failures=stats.failures,
            mean_latency=stats.mean_latency,
            sampled_success=sampled,
            score=score,
            explored=explored,
        )

    def snapshot(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Per host: decayed successes and failures, the posterior mean success rate and the
        mean latency (for ``queue show`` and the metrics)."""
        at = self._now(now)
        result: dict[str, dict[str, Any]] = {}
        for host in list(self._hosts):
            stats = self._stats(host, at, create=False)
            assert stats is not None
            result[host] = {
                "successes": stats.successes,
                "failures": stats.failures,
                "expected_success": (1.0 + stats.successes)
                / (2.0 + stats.successes + stats.failures),
                "mean_latency": stats.mean_latency,
            }
        return result
