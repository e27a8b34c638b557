"""Reputation monitor: outcome rates per destination, pool and sending domain, judged by policy.

Every delivery outcome (delivered, deferred, bounced, complaint) is counted in time buckets for
three subjects at once: the destination budget (``provider:google``, ``domain:example.com``), the
egress pool and the sending domain. After each outcome the rules of ``conf/reputation.toml``
(layered under the operator's file) judge the subject's rates over sliding windows: an absolute
limit (Gmail's 0.3% complaint rate) or a spike against the recent baseline (the window's rate a
multiple of the baseline's and improbable under it, by a binomial z-score, so a few events at low
volume never fire). A rule that fires is turned into an ``AutomationAction`` whose reason states
the figures, and imposed on the shaping ``AutomationEngine``, which records it and lets it
expire by itself.

Where an action lands:

- destination budget: the action as written, for that budget and the outcome's pool;
- pool: budget key ``"*"`` (every destination) and that pool;
- sending domain: budget key ``"sending:<domain>"`` and pool ``"*"``; no destination matches it,
  so delivery asks ``suspended_sending_domains(now)`` and ``sending_domain_factor(...)``.

The monitor is pure apart from the policy file and the engine's ``on_action`` callback; the time
is an argument.

    PostwiseError
    └── PolicyError
        └── ReputationError   a reputation file, key or value is missing or malformed
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from postwise.core.errors import PolicyError
from postwise.core.layered_toml import LayeredReader, merge_tables, read_toml
from postwise.outbound.shaping import (
    ActionKind,
    AutomationAction,
    AutomationEngine,
    ShapingError,
    parse_duration,
)

_HERE = Path(__file__).resolve().parent.parent

Outcome = Literal["delivered", "deferred", "bounced", "complaint"]
OUTCOMES: tuple[Outcome, ...] = ("delivered", "deferred", "bounced", "complaint")
Metric = Literal["complaint", "bounce", "hard_bounce", "deferral"]
METRICS: tuple[Metric, ...] = ("complaint", "bounce", "hard_bounce", "deferral")
Test = Literal["limit", "spike"]
Dimension = Literal["provider", "pool", "sending_domain"]
DIMENSIONS: tuple[Dimension, ...] = ("provider", "pool", "sending_domain")
# Prefix of the rule name of every action the monitor imposes.
RULE_PREFIX = "reputation:"

# What each dimension's response may be ("suspend" of a sending domain is recorded as
# suspend_destination on its "sending:<domain>" key).
_ALLOWED: dict[Dimension, tuple[str, ...]] = {
    "provider": ("none", "slow_down", "suspend_destination", "suspend_pool", "move_pool"),
    "pool": ("none", "slow_down", "suspend_pool", "move_pool"),
    "sending_domain": ("none", "slow_down", "suspend"),
}
_SUBJECT_PREFIXES = ("provider:", "domain:", "pool:", "sending:")

# Counter slots of a bucket.
_DELIVERED, _DEFERRED, _BOUNCED, _HARD, _COMPLAINT = range(5)
_SLOTS = 5
_OUTCOME_SLOT = {
    "delivered": _DELIVERED,
    "deferred": _DEFERRED,
    "bounced": _BOUNCED,
    "complaint": _COMPLAINT,
}
# What a metric counts, and over what volume (for reasons: plural noun, volume noun).
_NOUNS: dict[Metric, tuple[str, str]] = {
    "complaint": ("complaints", "delivered"),
    "bounce": ("bounces", "delivered or bounced"),
    "hard_bounce": ("hard bounces", "delivered or bounced"),
    "deferral": ("deferrals", "attempts"),
}
# More buckets than this in the baseline is a typo (a 1s bucket over a week).
_MAX_BUCKETS = 100_000


class ReputationError(PolicyError):
    """A reputation file, key or value is missing or malformed."""


def shipped_reputation_path() -> Path:
    """The shipped reputation policy: inside the package when installed from a wheel, else the
    repo's."""
    for candidate in (
        _HERE / "conf" / "reputation.toml",
        _HERE.parent / "conf" / "reputation.toml",
    ):
        if candidate.is_file():
            return candidate
    raise ReputationError("the shipped conf/reputation.toml is missing: reinstall Postwise")


def _measure(metric: Metric, counts: list[int]) -> tuple[int, int]:
    """(events, volume) of ``metric`` in a bucket sum."""
    delivered, deferred, bounced = counts[_DELIVERED], counts[_DEFERRED], counts[_BOUNCED]
    if metric == "complaint":
        return counts[_COMPLAINT], delivered
    if metric == "bounce":
        return bounced, delivered + bounced
    if metric == "hard_bounce":
        return counts[_HARD], delivered + bounced
    return deferred, delivered + deferred + bounced


def _format_duration(value: timedelta) -> str:
    """``1d``, ``1h30m``, ``23h45m``, ``90s`` -> ``1m30s``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class Response:
    """What a rule does on one dimension: an action (``none`` = only watch) for ``duration``."""

    action: str
    duration: timedelta | None = None
    factor: float | None = None
    to_pool: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "duration": _format_duration(self.duration) if self.duration else None,
            "factor": self.factor,
            "to_pool": self.to_pool,
        }


@dataclass(frozen=True, slots=True)
class ReputationRule:
    """One judgement of one metric over ``window``: ``limit`` fires when the rate is above
    ``rate``; ``spike`` when it is ``min_ratio`` times the baseline's and its binomial z-score
    against the baseline is at least ``min_z``. Neither judges below ``min_volume`` messages or
    ``min_events`` events in the window (nor a spike below ``min_baseline_volume``)."""

    name: str
    metric: Metric
    test: Test
    window: timedelta
    min_volume: int
    min_events: int
    responses: dict[Dimension, Response]
    rate: float | None = None
    min_ratio: float | None = None
    min_z: float | None = None
    min_baseline_volume: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "test": self.test,
            "window": _format_duration(self.window),
            "min_volume": self.min_volume,
            "min_events": self.min_events,
            "rate": self.rate,
            "min_ratio": self.min_ratio,
            "min_z": self.min_z,
            "min_baseline_volume": self.min_baseline_volume,
            **{f"on_{d}": r.to_json() for d, r in self.responses.items()},
        }


@dataclass(frozen=True, slots=True)
class ReputationPolicy:
    version: str
    bucket: timedelta
    short_window: timedelta
    baseline_window: timedelta
    rules: dict[str, ReputationRule]
    overrides: dict[str, dict[str, ReputationRule]]

    def rules_for(self, subject: str) -> list[ReputationRule]:
        """Every rule, with ``subject``'s overrides (``provider:google``, ``pool:bulk``,
        ``sending:news.example.com``) in place of the shipped ones."""
        own = self.overrides.get(subject, {})
        return [own.get(name, rule) for name, rule in self.rules.items()]

    def windows(self) -> set[timedelta]:
        found = {self.short_window, self.baseline_window}
        found |= {rule.window for rule in self.rules.values()}
        for rules in self.overrides.values():
            found |= {rule.window for rule in rules.values()}
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "bucket": _format_duration(self.bucket),
            "short_window": _format_duration(self.short_window),
            "baseline_window": _format_duration(self.baseline_window),
            "rules": {name: rule.to_json() for name, rule in self.rules.items()},
            "overrides": {
                subject: {name: rule.to_json() for name, rule in rules.items()}
                for subject, rules in self.overrides.items()
            },
        }


class _Reader(LayeredReader):
    """Validates the merged reputation tables (errors are ReputationErrors naming file and
    key)."""

    error = ReputationError

    def known(self, table: dict[str, Any], key: tuple[str, ...], allowed: set[str]) -> None:
        # A misspelt key would silently keep the shipped value: refuse it.
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail((*key, unknown[0]), f"unknown key; expected one of {sorted(allowed)}")

    def duration(self, value: Any, key: tuple[str, ...]) -> timedelta:
        try:
            return parse_duration(value)
        except ShapingError as error:
            raise self.fail(key, str(error)) from None

    def number(self, value: Any, key: tuple[str, ...], low: float, high: float | None) -> float:
        """A number with ``low < value`` (and ``value <= high`` when given)."""
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        if ok and math.isfinite(value) and value > low and (high is None or value <= high):
            return float(value)
        bound = f"above {low:g}" + (f" and at most {high:g}" if high is not None else "")
        raise self.fail(key, f"expected a number {bound}, found {value!r}")

    def count(self, value: Any, key: tuple[str, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"expected a whole number >= 1, found {value!r}")
        return value

    def response(self, value: Any, key: tuple[str, ...], dimension: Dimension) -> Response:
        table = self.table(value, key)
        self.known(table, key, {"action", "duration", "factor", "to_pool"})
        action = table.get("action")
        allowed = _ALLOWED[dimension]
        if action not in allowed:
            raise self.fail((*key, "action"), f"{action!r} is not one of {list(allowed)}")
        if action == "none":
            return Response(action="none")
        duration = self.duration(table.get("duration"), (*key, "duration"))
        factor: float | None = None
        to_pool: str | None = None
        if action == "slow_down":
            raw = table.get("factor")
            factor = self.number(raw, (*key, "factor"), 0.0, 1.0)
            if factor >= 1.0:
                raise self.fail(
                    (*key, "factor"), f"slow_down needs a factor below 1, found {raw!r}"
                )
        if action == "move_pool":
            to_pool = table.get("to_pool")
            if not isinstance(to_pool, str) or not to_pool:
                raise self.fail((*key, "to_pool"), f"expected a pool name, found {to_pool!r}")
        return Response(action=action, duration=duration, factor=factor, to_pool=to_pool)

    def rule(
        self, name: str, table: dict[str, Any], key: tuple[str, ...], policy: _Windows
    ) -> ReputationRule:
        common = {"metric", "test", "window", "min_volume", "min_events"}
        responses = {f"on_{d}" for d in DIMENSIONS}
        metric = table.get("metric")
        if metric not in METRICS:
            raise self.fail((*key, "metric"), f"{metric!r} is not one of {list(METRICS)}")
        test = table.get("test")
        if test == "limit":
            self.known(table, key, common | responses | {"rate"})
        elif test == "spike":
            extra = {"min_ratio", "min_z", "min_baseline_volume"}
            self.known(table, key, common | responses | extra)
        else:
            raise self.fail((*key, "test"), f"{test!r} is not one of ['limit', 'spike']")
        window = policy.short
        if "window" in table:
            window = self.duration(table["window"], (*key, "window"))
        if (
            window < policy.bucket
            or window > policy.baseline
            or (test == "spike" and window >= policy.baseline)
        ):
            raise self.fail(
                (*key, "window"),
                f"{_format_duration(window)} must be at least the bucket and "
                + ("shorter than" if test == "spike" else "at most")
                + f" the baseline window ({_format_duration(policy.baseline)})",
            )
        rule = ReputationRule(
            name=name,
            metric=cast(Metric, metric),
            test=cast(Test, test),
            window=window,
            min_volume=self.count(table.get("min_volume", 1), (*key, "min_volume")),
            min_events=self.count(table.get("min_events", 1), (*key, "min_events")),
            responses={
                d: self.response(table.get(f"on_{d}", {"action": "none"}), (*key, f"on_{d}"), d)
                for d in DIMENSIONS
            },
        )
        if test == "limit":
            rate = self.number(table.get("rate"), (*key, "rate"), 0.0, 1.0)
            return _with(rule, rate=rate)
        return _with(
            rule,
            min_ratio=self.number(table.get("min_ratio"), (*key, "min_ratio"), 1.0, None),
            min_z=self.number(table.get("min_z"), (*key, "min_z"), 0.0, None),
            min_baseline_volume=self.count(
                table.get("min_baseline_volume", 1), (*key, "min_baseline_volume")
            ),
        )


@dataclass(frozen=True, slots=True)
class _Windows:
    bucket: timedelta
    short: timedelta
    baseline: timedelta


def _with(rule: ReputationRule, **changes: Any) -> ReputationRule:
    return replace(rule, **changes)


def load_reputation(path: Path | None = None) -> ReputationPolicy:
    """The shipped reputation policy with the operator's file at ``path`` layered on top.

    Raises ReputationError naming the file, the key and the problem when a file is missing, not
    TOML, or a value is missing or malformed."""
    shipped = shipped_reputation_path()
    data = read_toml(shipped, ReputationError, "reputation file")
    operator = read_toml(path, ReputationError, "reputation file") if path is not None else {}
    data = merge_tables(data, operator)
    reader = _Reader(shipped, operator, path)
    reader.known(data, (), {"reputation", "rule", "override"})
    head = reader.table(data.get("reputation", {}), ("reputation",))
    reader.known(head, ("reputation",), {"version", "bucket", "short_window", "baseline_window"})
    version = str(head.get("version", "0"))
    if path is not None:
        version = f"{version}+{path.name}"
    windows = _Windows(
        bucket=reader.duration(head.get("bucket", "1m"), ("reputation", "bucket")),
        short=reader.duration(head.get("short_window", "15m"), ("reputation", "short_window")),
        baseline=reader.duration(
            head.get("baseline_window", "24h"), ("reputation", "baseline_window")
        ),
    )
    if not windows.bucket <= windows.short < windows.baseline:
        raise reader.fail(
            ("reputation", "short_window"),
            "need bucket <= short_window < baseline_window",
        )
    if windows.baseline / windows.bucket > _MAX_BUCKETS:
        raise reader.fail(
            ("reputation", "bucket"),
            f"the baseline window would hold over {_MAX_BUCKETS} buckets; use a longer bucket",
        )
    raw_rules = reader.table(data.get("rule", {}), ("rule",))
    rules = {
        name: reader.rule(name, reader.table(raw, ("rule", name)), ("rule", name), windows)
        for name, raw in raw_rules.items()
    }
    overrides: dict[str, dict[str, ReputationRule]] = {}
    for subject, raw in reader.table(data.get("override", {}), ("override",)).items():
        key = ("override", subject)
        if not subject.startswith(_SUBJECT_PREFIXES) or subject.endswith(":"):
            raise reader.fail(
                key, f"a subject is one of {[p + '<name>' for p in _SUBJECT_PREFIXES]}"
            )
        own: dict[str, ReputationRule] = {}
        for name, changes in reader.table(raw, key).items():
            if name not in raw_rules:
                raise reader.fail((*key, name), f"no [rule.{name}] to override")
            changes = reader.table(changes, (*key, name))
            fixed = sorted({"metric", "test"} & set(changes))
            if fixed:
                raise reader.fail((*key, name, fixed[0]), "an override cannot change it")
            merged = merge_tables(raw_rules[name], changes)
            own[name] = reader.rule(name, merged, (*key, name), windows)
        overrides[subject] = own
    return ReputationPolicy(
        version=version,
        bucket=windows.bucket,
        short_window=windows.short,
        baseline_window=windows.baseline,
        rules=rules,
        overrides=overrides,
    )


# ---------------------------------------------------------------- counting


class _Series:
    """Bucketed counters of one subject, with running sums over each window (in buckets) so a
    judgement costs no walk over the baseline. Buckets older than the longest window go."""

    __slots__ = ("buckets", "newest", "sums")

    def __init__(self, spans: tuple[int, ...]) -> None:
        self.buckets: dict[int, list[int]] = {}
        self.newest: int | None = None
        self.sums: dict[int, list[int]] = {span: [0] * _SLOTS for span in spans}

    def advance(self, index: int, keep: int) -> None:
        old = self.newest
        if old is not None and index <= old:
            return
        self.newest = index
        if old is None:
            return
        for span, total in self.sums.items():
            # Window (old - span, old] becomes (index - span, index]: these buckets leave it.
            low, high = old - span + 1, index - span
            if high < low:
                continue
            if high - low + 1 > len(self.buckets):
                leaving = [c for i, c in self.buckets.items() if low <= i <= high]
            else:
                leaving = [self.buckets[i] for i in range(low, high + 1) if i in self.buckets]
            for counts in leaving:
                for slot in range(_SLOTS):
                    total[slot] -= counts[slot]
        # Buckets are created in increasing order, so the oldest come first.
        cutoff = index - keep
        while self.buckets:
            first = next(iter(self.buckets))
            if first > cutoff:
                break
            del self.buckets[first]

    def add(self, slot: int) -> None:
        assert self.newest is not None
        self.buckets.setdefault(self.newest, [0] * _SLOTS)[slot] += 1
        for total in self.sums.values():
            total[slot] += 1


# ---------------------------------------------------------------- the monitor


class ReputationMonitor:
    """Counts outcomes per (dimension, key) and imposes the actions the policy's rules call for.

    Memory is bounded by time: buckets older than the baseline window are dropped, and so is a
    subject with no outcome within it."""

    def __init__(self, policy: ReputationPolicy, automation: AutomationEngine) -> None:
        """Raises ReputationError when a rule moves traffic to a pool the shaping policy of
        ``automation`` does not declare."""
        self.policy = policy
        self.automation = automation
        self._bucket_seconds = policy.bucket.total_seconds()
        self._keep = self._span(policy.baseline_window)
        self._spans = tuple(sorted({self._span(w) for w in policy.windows()}))
        self._series: dict[tuple[Dimension, str], _Series] = {}
        self._newest: int | None = None
        every = [("rule", r) for r in policy.rules.values()] + [
            (f'override."{s}"', r) for s, own in policy.overrides.items() for r in own.values()
        ]
        for where, rule in every:
            for dimension, response in rule.responses.items():
                pool = response.to_pool
                if pool is not None and pool not in automation.policy.pools:
                    raise ReputationError(
                        f"{where}.{rule.name}.on_{dimension}.to_pool: {pool!r} is not a "
                        "[pool.<name>] of the shaping policy"
                    )

    def _span(self, window: timedelta) -> int:
        return max(1, math.ceil(window.total_seconds() / self._bucket_seconds))

    def _index(self, now: datetime) -> int:
        if not isinstance(now, datetime):
            raise TypeError(f"now must be a datetime, found {type(now).__name__}")
        index = math.floor(now.timestamp() / self._bucket_seconds)
        # A late outcome (a clock step back, a complaint about an old message) counts in the
        # newest bucket: windows only move forward.
        if self._newest is None or index > self._newest:
            self._newest = index
            stale = [k for k, s in self._series.items() if (s.newest or 0) <= index - self._keep]
            for k in stale:
                del self._series[k]
        return self._newest

    def observe(
        self,
        outcome: Outcome,
        *,
        provider_key: str,
        pool: str,
        sending_domain: str,
        now: datetime,
        hard: bool = False,
    ) -> list[AutomationAction]:
        """Count one outcome of a message sent through ``pool`` from ``sending_domain`` to the
        budget ``provider_key``; judge the three subjects and return the actions imposed (an
        action already in force is not imposed twice).

        Raises ValueError for an unknown outcome, an empty key, or ``hard`` on anything but a
        bounce."""
        if outcome not in OUTCOMES:
            raise ValueError(f"{outcome!r} is not an outcome; expected one of {list(OUTCOMES)}")
        if hard and outcome != "bounced":
            raise ValueError(f"hard=True applies to 'bounced' only, not {outcome!r}")
        for name, value in (
            ("provider_key", provider_key),
            ("pool", pool),
            ("sending_domain", sending_domain),
        ):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string, found {value!r}")
        if ":" not in provider_key:
            raise ValueError(
                f"provider_key {provider_key!r} is not a budget key such as 'provider:google' "
                "or 'domain:example.com'"
            )
        domain = sending_domain.strip().lower().rstrip(".")
        index = self._index(now)
        slots = [_OUTCOME_SLOT[outcome], *([_HARD] if hard else [])]
        fired: list[AutomationAction] = []
        keys: tuple[tuple[Dimension, str], ...] = (
            ("provider", provider_key),
            ("pool", pool),
            ("sending_domain", domain),
        )
        for dimension, key in keys:
            series = self._series.get((dimension, key))
            if series is None:
                series = self._series[(dimension, key)] = _Series(self._spans)
            series.advance(index, self._keep)
            for slot in slots:
                series.add(slot)
            fired += self._judge(dimension, key, series, pool, now)
        return fired

    def _judge(
        self, dimension: Dimension, key: str, series: _Series, pool: str, now: datetime
    ) -> list[AutomationAction]:
        subject = _subject(dimension, key)
        imposed: list[AutomationAction] = []
        for rule in self.policy.rules_for(subject):
            response = rule.responses[dimension]
            if response.action == "none" or response.duration is None:
                continue
            finding = self._finding(rule, series, subject)
            if finding is None:
                continue
            reason, count = finding
            if dimension == "provider":
                budget_key, target_pool = key, pool
            elif dimension == "pool":
                budget_key, target_pool = "*", key
            else:
                budget_key, target_pool = f"sending:{key}", "*"
            kind = "suspend_destination" if response.action == "suspend" else response.action
            action = AutomationAction(
                rule=RULE_PREFIX + rule.name,
                action=cast(ActionKind, kind),
                budget_key=budget_key,
                pool=target_pool,
                reason=reason,
                count=count,
                window=rule.window,
                started_at=now,
                expires_at=now + response.duration,
                factor=response.factor,
                to_pool=response.to_pool,
            )
            if self.automation.impose(action):
                imposed.append(action)
        return imposed

    def _figures(
        self, metric: Metric, series: _Series, window: timedelta
    ) -> tuple[int, int, int, int]:
        """(events, volume) over ``window`` and over the baseline before it."""
        recent = series.sums[self._span(window)]
        whole = series.sums[self._keep]
        before = [w - r for w, r in zip(whole, recent, strict=True)]
        return (*_measure(metric, recent), *_measure(metric, before))

    def _finding(
        self, rule: ReputationRule, series: _Series, subject: str
    ) -> tuple[str, int] | None:
        """The reason (with every figure) and event count when ``rule`` fires, else None."""
        events, volume, base_events, base_volume = self._figures(rule.metric, series, rule.window)
        if volume < rule.min_volume or events < rule.min_events:
            return None
        rate = events / volume
        noun, volume_noun = _NOUNS[rule.metric]
        label = rule.metric.replace("_", " ")
        base_window = _format_duration(self.policy.baseline_window - rule.window)
        base_rate = f"{base_events / base_volume:.3%}" if base_volume else "n/a"
        figures = (
            f"{label} rate {rate:.3%} ({events} {noun} / {volume} {volume_noun} over "
            f"{_format_duration(rule.window)}) at {subject}"
        )
        baseline = f"baseline {base_rate} ({base_events} / {base_volume} over {base_window})"
        if rule.test == "limit":
            assert rule.rate is not None
            if rate <= rule.rate:
                return None
            return f"{figures} above the limit {rule.rate:.3%}; {baseline}", events
        assert rule.min_ratio is not None and rule.min_z is not None
        if base_volume < (rule.min_baseline_volume or 1):
            return None
        # Smoothed so an empty baseline is a small rate, not zero (no division by zero, and a
        # clean history still needs several events to call a spike).
        expected = (base_events + 0.5) / (base_volume + 1)
        ratio = rate / expected
        z = (events - volume * expected) / math.sqrt(volume * expected * (1 - expected))
        if ratio < rule.min_ratio or z < rule.min_z:
            return None
        return (
            f"{figures} is a spike: {ratio:.1f}x the {baseline}, z={z:.1f} "
            f"(threshold {rule.min_ratio:g}x and z>={rule.min_z:g})",
            events,
        )

    # ------------------------------------------------------------ queries

    def _reputation_actions(self, now: datetime) -> list[AutomationAction]:
        return [a for a in self.automation.active_actions(now) if a.rule.startswith(RULE_PREFIX)]

    def suspended_sending_domains(self, now: datetime) -> dict[str, datetime]:
        """Sending domains suspended at ``now``, each with the end of its longest suspension."""
        found: dict[str, datetime] = {}
        for action in self._reputation_actions(now):
            kind, _, domain = action.budget_key.partition(":")
            if kind == "sending" and action.action == "suspend_destination":
                found[domain] = max(found.get(domain, action.expires_at), action.expires_at)
        return found

    def sending_domain_factor(self, sending_domain: str, now: datetime) -> float:
        """The strongest slow-down factor in force for ``sending_domain`` (1.0 = none)."""
        key = "sending:" + sending_domain.strip().lower().rstrip(".")
        factors = [
            a.factor
            for a in self._reputation_actions(now)
            if a.budget_key == key and a.action == "slow_down" and a.factor is not None
        ]
        return min(factors, default=1.0)

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """Current counts and rates per dimension and key over the short window, with the
        baseline rate before it, and the reputation actions in force (for ``queue show`` and
        the metrics). Rates are None at zero volume."""
        index = self._index(now)
        short = self._span(self.policy.short_window)
        result: dict[str, Any] = {
            "version": self.policy.version,
            "short_window_seconds": int(self.policy.short_window.total_seconds()),
            "baseline_window_seconds": int(self.policy.baseline_window.total_seconds()),
            **{dimension: {} for dimension in DIMENSIONS},
        }
        for (dimension, key), series in sorted(self._series.items()):
            series.advance(index, self._keep)
            recent = series.sums[short]
            before = [w - r for w, r in zip(series.sums[self._keep], recent, strict=True)]
            rates: dict[str, Any] = {}
            for metric in METRICS:
                events, volume = _measure(metric, recent)
                base_events, base_volume = _measure(metric, before)
                rates[metric] = {
                    "events": events,
                    "volume": volume,
                    "rate": events / volume if volume else None,
                    "baseline_events": base_events,
                    "baseline_volume": base_volume,
                    "baseline_rate": base_events / base_volume if base_volume else None,
                }
            result[dimension][key] = {
                "delivered": recent[_DELIVERED],
                "deferred": recent[_DEFERRED],
                "bounced": recent[_BOUNCED],
                "hard_bounced": recent[_HARD],
                "complaints": recent[_COMPLAINT],
                "rates": rates,
            }
        result["actions"] = [a.to_json() for a in self._reputation_actions(now)]
        return result


def _subject(dimension: Dimension, key: str) -> str:
    if dimension == "provider":
        return key
    return ("pool:" if dimension == "pool" else "sending:") + key
