"""Rate limits of one shaping budget: messages per minute and per hour, as GCRA token
buckets (a steady rate with a bounded burst), and the count of open connections.

A limit of N per minute lets a message go every 60/N seconds on average with bursts of at most
a tenth of N (at least one); N per hour bursts at most a sixtieth of N. The rates come from the
effective limits on every call, so a slow-down takes effect on the next message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from postwise.outbound.shaping import Limits


@dataclass(slots=True)
class _Gcra:
    """Generic cell rate algorithm: ``tat`` is the theoretical arrival time of the next
    message at the steady rate."""

    tat: float = 0.0

    def delay(self, now: float, per_second: float, burst: float) -> float:
        """Seconds to wait before one more message conforms (0 when it may go now)."""
        interval = 1.0 / per_second
        tolerance = (burst - 1.0) * interval
        earliest = self.tat - tolerance
        return max(0.0, earliest - now)

    def take(self, now: float, per_second: float) -> None:
        self.tat = max(self.tat, now) + 1.0 / per_second


@dataclass(slots=True)
class Budget:
    """The live state of one budget key: open connections and the two rate buckets."""

    key: str
    connections: int = 0
    _minute: _Gcra = field(default_factory=_Gcra)
    _hour: _Gcra = field(default_factory=_Gcra)

    def delay(self, now: float, limits: Limits) -> float:
        """Seconds until the next message may be sent under ``limits``."""
        wait = 0.0
        if limits.messages_per_minute:
            rate = limits.messages_per_minute / 60.0
            wait = self._minute.delay(now, rate, max(1.0, limits.messages_per_minute / 10.0))
        if limits.messages_per_hour:
            rate = limits.messages_per_hour / 3600.0
            burst = max(1.0, limits.messages_per_hour / 60.0)
            wait = max(wait, self._hour.delay(now, rate, burst))
        return wait

    def take(self, now: float, limits: Limits) -> None:
        """Count one message sent at ``now``."""
        if limits.messages_per_minute:
            self._minute.take(now, limits.messages_per_minute / 60.0)
        if limits.messages_per_hour:
            self._hour.take(now, limits.messages_per_hour / 3600.0)
