"""Egress pools: which source address a connection binds to.

A message names a pool (``default`` unless the submitter chose one; an automation ``move_pool``
action may route it through another). Each address of the pool is drawn with its weight, among
those whose warm-up schedule still allows a message today; the day's counters live in
``egress_daily`` (an address's first day there is its day 0), so a restart does not reset them.
A pool with no addresses sends from the host's default address, without warm-up.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from postwise.core.db import EgressDailyRecord
from postwise.outbound.shaping import UNLIMITED, ShapingPolicy


@dataclass(frozen=True, slots=True)
class EgressChoice:
    """Bind to ``ip`` (None: the host's default address) for ``pool``."""

    pool: str
    ip: str | None


class WarmupExhausted(Exception):
    """Every address of the pool has sent its warm-up allowance today; ``until`` is the next
    UTC midnight (Unix seconds)."""

    def __init__(self, pool: str, until: float) -> None:
        super().__init__(f"pool {pool!r}: every address has reached today's warm-up volume")
        self.pool = pool
        self.until = until


def _day(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


def _next_midnight(now: float) -> float:
    day = _day(now)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + 86400


class EgressSelector:
    """Chooses source addresses and counts what each sent today."""

    def __init__(self, policy: ShapingPolicy, engine: Engine, seed: int | None = None) -> None:
        self.policy = policy
        self.engine = engine
        self._rng = random.Random(seed)
        self._first_day: dict[str, date] = {}
        self._today: date | None = None
        self._sent: Counter[str] = Counter()
        self._unsaved: Counter[str] = Counter()
        self._load()

    def _load(self) -> None:
        with self.engine.connect() as connection:
            for ip, first in connection.execute(
                select(EgressDailyRecord.ip, func.min(EgressDailyRecord.day)).group_by(
                    EgressDailyRecord.ip
                )
            ):
                self._first_day[ip] = first

    def _roll(self, now: float) -> date:
        today = _day(now)
        if today != self._today:
            self._today = today
            self._sent = Counter()
            with self.engine.connect() as connection:
                for ip, sent in connection.execute(
                    select(EgressDailyRecord.ip, EgressDailyRecord.sent).where(
                        EgressDailyRecord.day == today
                    )
                ):
                    self._sent[ip] = sent
        return today

    def allowance(self, ip: str, now: float) -> int:
        """Messages ``ip`` may still send today."""
        today = self._roll(now)
        first = self._first_day.get(ip, today)
        allowed = self.policy.allowed_today(ip, (today - first).days)
        return UNLIMITED if allowed == UNLIMITED else max(0, allowed - self._sent[ip])

    def choose(self, pool: str, now: float) -> EgressChoice:
        """A source address of ``pool`` with allowance left, drawn by weight. Raises
        WarmupExhausted when none has any; KeyError-free: an unknown pool sends from the
        default address."""
        definition = self.policy.pools.get(pool)
        if definition is None or not definition.addresses:
            return EgressChoice(pool, None)
        candidates = [a for a in definition.addresses if self.allowance(a.ip, now) > 0]
        if not candidates:
            raise WarmupExhausted(pool, _next_midnight(now))
        weights = [max(a.weight, 0.0) for a in candidates]
        if sum(weights) <= 0:
            weights = [1.0] * len(candidates)
        chosen = self._rng.choices(candidates, weights=weights)[0]
        return EgressChoice(pool, chosen.ip)

    def count(self, ip: str | None, now: float) -> None:
        """One message sent from ``ip`` (saved by :meth:`flush`)."""
        if ip is None:
            return
        today = self._roll(now)
        self._first_day.setdefault(ip, today)
        self._sent[ip] += 1
        self._unsaved[ip] += 1

    def flush(self) -> None:
        """Add the counts since the last flush to ``egress_daily``."""
        if not self._unsaved or self._today is None:
            return
        unsaved, self._unsaved = self._unsaved, Counter()
        with self.engine.begin() as connection:
            insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
            for ip, count in unsaved.items():
                statement = insert(EgressDailyRecord).values(ip=ip, day=self._today, sent=count)
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=["ip", "day"],
                        set_={"sent": EgressDailyRecord.sent + count},
                    )
                )

    def snapshot(self, now: float) -> dict[str, dict[str, int]]:
        """Per address of every pool: sent today and the allowance left."""
        out: dict[str, dict[str, int]] = {}
        for pool in self.policy.pools.values():
            for address in pool.addresses:
                self._roll(now)
                out[address.ip] = {
                    "sent_today": self._sent[address.ip],
                    "allowance_left": self.allowance(address.ip, now),
                }
        return out
