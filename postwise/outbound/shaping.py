"""Outbound shaping policy: limits per destination, automation rules and egress warm-up, as data.

The shipped file (``conf/shaping.toml``) is layered under the operator's own file: tables are
merged key by key, lists (a provider's automation rules, a pool's addresses) are replaced whole.
A destination's limits come from its ``[domain."x"]`` table, else from the provider whose MX
suffix matches its MX hosts (so every domain hosted by Google shares the ``provider:google``
budget), else from ``[default]``.

``AutomationEngine`` turns SMTP replies into temporary actions (slow down, suspend the
destination, suspend a pool, move to another pool); it is pure apart from the optional
``on_action`` callback, and takes the time as an argument so tests drive the clock.

    PostwiseError
    └── PolicyError
        └── ShapingError   a shaping file, key, duration or rate is missing or malformed
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy.engine import Engine

from postwise.core.errors import PolicyError
from postwise.core.layered_toml import LayeredReader, merge_tables, read_toml

_HERE = Path(__file__).resolve().parent.parent

ActionKind = Literal["slow_down", "suspend_destination", "suspend_pool", "move_pool"]
ACTION_KINDS: tuple[ActionKind, ...] = (
    "slow_down",
    "suspend_destination",
    "suspend_pool",
    "move_pool",
)
LIMIT_KEYS = (
    "max_connections",
    "max_messages_per_connection",
    "messages_per_minute",
    "messages_per_hour",
)
# An address with no warm-up schedule has no daily cap.
UNLIMITED = sys.maxsize
SHAPING_EVENT = "shaping_action"


class ShapingError(PolicyError):
    """A shaping file, key, duration or rate is missing or malformed."""


def shipped_shaping_path() -> Path:
    """The shipped shaping policy: inside the package when installed from a wheel, else the
    repo's."""
    for candidate in (_HERE / "conf" / "shaping.toml", _HERE.parent / "conf" / "shaping.toml"):
        if candidate.is_file():
            return candidate
    raise ShapingError("the shipped conf/shaping.toml is missing: reinstall Postwise")


# ---------------------------------------------------------------- durations and rates

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
_DURATION = re.compile(r"\s*([0-9]{1,9})\s*([a-z]+)\s*", re.ASCII)
_RATE = re.compile(r"\s*([0-9]{1,9})\s*/\s*([0-9]{0,9})\s*([a-z]+)\s*", re.ASCII)
# A year: longer windows or durations are certainly typos.
_MAX_SECONDS = 366 * 86400


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` events per ``per`` (a threshold such as ``5/h`` or a rate such as ``100/min``)."""

    count: int
    per: timedelta

    def __str__(self) -> str:
        return f"{self.count}/{_format_duration(self.per)}"


def _format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _unit_seconds(text: str, unit: str) -> int:
    if unit not in _UNITS:
        raise ShapingError(
            f"{text!r}: unknown unit {unit!r}; use s, m (or min), h or d, e.g. '30s', '2h'"
        )
    return _UNITS[unit]


def parse_duration(text: str) -> timedelta:
    """``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` as a timedelta.

    Raises ShapingError (and nothing else) when ``text`` is not a positive duration of at most
    a year."""
    if not isinstance(text, str):
        raise ShapingError(f"{text!r}: a duration is a string such as '30s', '5m', '2h' or '1d'")
    match = _DURATION.fullmatch(text.lower())
    if match is None:
        raise ShapingError(f"{text!r}: not a duration; write e.g. '30s', '5m', '2h' or '1d'")
    seconds = int(match.group(1)) * _unit_seconds(text, match.group(2))
    if not 0 < seconds <= _MAX_SECONDS:
        raise ShapingError(f"{text!r}: a duration must be above zero and at most 366d")
    return timedelta(seconds=seconds)


def parse_rate(text: str) -> Rate:
    """``"100/min"``, ``"5/h"``, ``"3/5m"`` as a Rate.

    Raises ShapingError (and nothing else) when ``text`` is not ``count/[n]unit`` with a
    positive count and a window of at most a year."""
    if not isinstance(text, str):
        raise ShapingError(f"{text!r}: a rate is a string such as '100/min', '5/h' or '3/5m'")
    match = _RATE.fullmatch(text.lower())
    if match is None:
        raise ShapingError(f"{text!r}: not a rate; write count/unit, e.g. '100/min' or '5/h'")
    count = int(match.group(1))
    multiple = int(match.group(2)) if match.group(2) else 1
    seconds = multiple * _unit_seconds(text, match.group(3))
    if count <= 0:
        raise ShapingError(f"{text!r}: the count of a rate must be above zero")
    if not 0 < seconds <= _MAX_SECONDS:
        raise ShapingError(f"{text!r}: a rate's window must be above zero and at most 366d")
    return Rate(count=count, per=timedelta(seconds=seconds))


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True, slots=True)
class Limits:
    """What one destination may receive. ``budget_key`` names the shared budget: every domain
    on one provider's MX gets ``provider:<name>``; a domain with its own table or no provider
    gets ``domain:<domain>``. Rates of ``None`` mean no limit."""

    budget_key: str
    source: str
    max_connections: int
    max_messages_per_connection: int
    messages_per_minute: int | None
    messages_per_hour: int | None
    suspended_until: datetime | None = None
    route_to_pool: str | None = None
    slow_down_factor: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_key": self.budget_key,
            "source": self.source,
            "max_connections": self.max_connections,
            "max_messages_per_connection": self.max_messages_per_connection,
            "messages_per_minute": self.messages_per_minute,
            "messages_per_hour": self.messages_per_hour,
            "suspended_until": self.suspended_until.isoformat() if self.suspended_until else None,
            "route_to_pool": self.route_to_pool,
            "slow_down_factor": self.slow_down_factor,
        }


@dataclass(frozen=True, slots=True)
class AutomationRule:
    """When ``regex`` matches a reply ``threshold.count`` times within ``threshold.per``, take
    ``action`` for ``duration``. Without a threshold the first match fires."""

    name: str
    scope: str
    regex: re.Pattern[str]
    action: ActionKind
    duration: timedelta
    threshold: Rate | None = None
    factor: float | None = None
    to_pool: str | None = None

    @property
    def window(self) -> timedelta:
        return self.threshold.per if self.threshold else self.duration

    @property
    def needed(self) -> int:
        return self.threshold.count if self.threshold else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "regex": self.regex.pattern,
            "threshold": str(self.threshold) if self.threshold else None,
            "action": self.action,
            "factor": self.factor,
            "to_pool": self.to_pool,
            "duration": _format_duration(self.duration),
        }


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    name: str
    description: str
    mx_suffixes: tuple[str, ...]
    limits: dict[str, int | None]


@dataclass(frozen=True, slots=True)
class WarmupSchedule:
    """Daily volume per address while it builds reputation: a list of figures per day (the
    last one holds afterwards), or ``start * growth**day`` capped at ``cap``."""

    name: str
    days: tuple[int, ...] = ()
    start: int = 0
    growth: float = 1.0
    cap: int = UNLIMITED

    def allowed_on(self, day_index: int) -> int:
        """Messages allowed on day ``day_index`` (0 = the first day); 0 before the start."""
        if day_index < 0:
            return 0
        if self.days:
            return self.days[min(day_index, len(self.days) - 1)]
        try:
            value = self.start * self.growth**day_index
        except OverflowError:
            return self.cap
        return self.cap if value >= self.cap else int(value)


@dataclass(frozen=True, slots=True)
class EgressAddress:
    ip: str
    weight: float
    warmup: str | None


@dataclass(frozen=True, slots=True)
class EgressPool:
    name: str
    addresses: tuple[EgressAddress, ...]


@dataclass(frozen=True, slots=True)
class ShapingPolicy:
    version: str
    default: dict[str, int | None]
    providers: dict[str, ProviderPolicy]
    domains: dict[str, dict[str, int | None]]
    rules: dict[str, tuple[AutomationRule, ...]]
    pools: dict[str, EgressPool] = field(default_factory=dict)
    warmups: dict[str, WarmupSchedule] = field(default_factory=dict)

    def provider_for(self, mx_hosts: Iterable[str]) -> str | None:
        """The provider of the first MX host (in the order given: by preference) that ends
        with one of a provider's ``mx_suffixes``; the longest matching suffix wins."""
        for raw in mx_hosts:
            host = "." + raw.strip().lower().rstrip(".")
            best: tuple[int, str] | None = None
            for provider in self.providers.values():
                for suffix in provider.mx_suffixes:
                    if host.endswith(suffix) and (best is None or len(suffix) > best[0]):
                        best = (len(suffix), provider.name)
            if best is not None:
                return best[1]
        return None

    def limits_for(self, domain: str, mx_hosts: list[str]) -> Limits:
        """Limits for mail to ``domain`` whose MX hosts are ``mx_hosts`` (by preference):
        ``[domain."x"]`` over the matching provider over ``[default]``, key by key."""
        domain = domain.strip().lower().rstrip(".")
        values = dict(self.default)
        provider = self.provider_for(mx_hosts)
        source = "default"
        budget_key = f"domain:{domain}"
        if provider is not None:
            values.update(self.providers[provider].limits)
            source = budget_key = f"provider:{provider}"
        if domain in self.domains:
            values.update(self.domains[domain])
            source = budget_key = f"domain:{domain}"
        return _limits(budget_key, source, values)

    def limits_for_key(self, budget_key: str) -> Limits:
        """Limits of a budget as ``limits_for`` would resolve them (a domain without MX
        knowledge gets its own table over the default)."""
        kind, _, name = budget_key.partition(":")
        values = dict(self.default)
        if kind == "provider" and name in self.providers:
            values.update(self.providers[name].limits)
        elif kind == "domain" and name in self.domains:
            values.update(self.domains[name])
        else:
            return _limits(budget_key, "default", values)
        return _limits(budget_key, budget_key, values)

    def rules_for(self, budget_key: str) -> tuple[AutomationRule, ...]:
        """The budget's own rules, then those of every destination."""
        return self.rules.get(budget_key, ()) + self.rules.get("*", ())

    def allowed_today(self, address: str, day_index: int) -> int:
        """Messages ``address`` may send on day ``day_index`` of its warm-up; UNLIMITED for an
        address with no schedule. Raises ShapingError for an address in no pool."""
        for pool in self.pools.values():
            for egress in pool.addresses:
                if egress.ip == address:
                    if egress.warmup is None:
                        return UNLIMITED
                    return self.warmups[egress.warmup].allowed_on(day_index)
        raise ShapingError(f"{address}: not an address of any [pool.<name>] in the shaping policy")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "default": self.default,
            "providers": {
                name: {
                    "description": p.description,
                    "mx_suffixes": list(p.mx_suffixes),
                    **self.limits_for_key(f"provider:{name}").to_json(),
                }
                for name, p in self.providers.items()
            },
            "domains": {
                name: self.limits_for_key(f"domain:{name}").to_json() for name in self.domains
            },
            "automation": {
                scope: [rule.to_json() for rule in rules] for scope, rules in self.rules.items()
            },
            "pools": {
                name: [{"ip": a.ip, "weight": a.weight, "warmup": a.warmup} for a in pool.addresses]
                for name, pool in self.pools.items()
            },
            "warmups": {
                name: {"days": list(w.days)}
                if w.days
                else {"start": w.start, "growth": w.growth, "cap": w.cap}
                for name, w in self.warmups.items()
            },
        }


def _limits(budget_key: str, source: str, values: dict[str, int | None]) -> Limits:
    return Limits(
        budget_key=budget_key,
        source=source,
        max_connections=values.get("max_connections") or 1,
        max_messages_per_connection=values.get("max_messages_per_connection") or 1,
        messages_per_minute=values.get("messages_per_minute"),
        messages_per_hour=values.get("messages_per_hour"),
    )


# ---------------------------------------------------------------- loading


class _Reader(LayeredReader):
    """Reads the merged shaping tables (errors are ShapingErrors naming file and key)."""

    error = ShapingError

    def limits(
        self, table: dict[str, Any], key: tuple[str, ...], extra: tuple[str, ...] = ()
    ) -> dict[str, int | None]:
        # A misspelt limit would silently fall back to a laxer level: refuse it.
        known = (*LIMIT_KEYS, *extra)
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.fail((*key, unknown[0]), f"unknown key; expected one of {list(known)}")
        values: dict[str, int | None] = {}
        for name in LIMIT_KEYS:
            if name not in table:
                continue
            value = table[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.fail((*key, name), f"expected a whole number >= 0, found {value!r}")
            rate = name.startswith("messages_per_") and name != "messages_per_connection"
            if value == 0 and not rate:
                raise self.fail((*key, name), "must be at least 1")
            values[name] = None if value == 0 else value
        return values

    def string(self, table: dict[str, Any], name: str, key: tuple[str, ...]) -> str:
        value = table.get(name)
        if not isinstance(value, str) or not value:
            raise self.fail((*key, name), f"expected a non-empty string, found {value!r}")
        return value

    def rules(self, value: Any, key: tuple[str, ...], scope: str) -> tuple[AutomationRule, ...]:
        if not isinstance(value, list):
            raise self.fail(key, "expected a list of tables ([[...automation]])")
        return tuple(
            self.rule(self.table(entry, (*key, str(i))), (*key, str(i)), scope)
            for i, entry in enumerate(value)
        )

    def rule(self, table: dict[str, Any], key: tuple[str, ...], scope: str) -> AutomationRule:
        known = {"name", "regex", "threshold", "action", "factor", "to_pool", "duration"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise self.fail((*key, unknown[0]), f"unknown key; expected one of {sorted(known)}")
        name = str(table.get("name") or f"{scope}#{key[-1]}")
        pattern = self.string(table, "regex", key)
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise self.fail((*key, "regex"), f"not a valid regular expression: {error}") from None
        action = table.get("action")
        if action not in ACTION_KINDS:
            raise self.fail((*key, "action"), f"{action!r} is not one of {list(ACTION_KINDS)}")
        try:
            duration = parse_duration(self.string(table, "duration", key))
        except ShapingError as error:
            raise self.fail((*key, "duration"), str(error)) from None
        try:
            threshold = parse_rate(table["threshold"]) if "threshold" in table else None
        except ShapingError as error:
            raise self.fail((*key, "threshold"), str(error)) from None
        factor: float | None = None
        to_pool: str | None = None
        if action == "slow_down":
            raw = table.get("factor")
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw < 1:
                raise self.fail(
                    (*key, "factor"), f"slow_down needs a factor between 0 and 1, found {raw!r}"
                )
            factor = float(raw)
        if action == "move_pool":
            to_pool = self.string(table, "to_pool", key)
        return AutomationRule(
            name=name,
            scope=scope,
            regex=regex,
            action=cast(ActionKind, action),
            duration=duration,
            threshold=threshold,
            factor=factor,
            to_pool=to_pool,
        )

    def warmup(self, name: str, table: dict[str, Any]) -> WarmupSchedule:
        key = ("warmup", name)
        if "days" in table:
            days = table["days"]
            if (
                not isinstance(days, list)
                or not days
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in days)
            ):
                raise self.fail((*key, "days"), "expected a non-empty list of whole numbers >= 0")
            return WarmupSchedule(name=name, days=tuple(days))
        start, growth, cap = table.get("start"), table.get("growth"), table.get("cap", UNLIMITED)
        if not isinstance(start, int) or isinstance(start, bool) or start < 1:
            raise self.fail((*key, "start"), "give either days = [...] or start (>= 1) and growth")
        if isinstance(growth, bool) or not isinstance(growth, int | float) or growth < 1:
            raise self.fail((*key, "growth"), f"expected a number >= 1, found {growth!r}")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < start:
            raise self.fail((*key, "cap"), f"expected a whole number >= start, found {cap!r}")
        return WarmupSchedule(name=name, start=start, growth=float(growth), cap=cap)


def _validate_suffixes(reader: _Reader, name: str, value: Any) -> tuple[str, ...]:
    key = ("provider", name, "mx_suffixes")
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise reader.fail(key, "expected a non-empty list of host suffixes like '.google.com'")
    return tuple("." + s.strip().lower().strip(".") for s in value)


def load_shaping(path: Path | None = None) -> ShapingPolicy:
    """The shipped shaping policy with the operator's file at ``path`` layered on top.

    Raises ShapingError naming the file, the key and the problem when a file is missing, not
    TOML, or a value is missing or malformed."""
    shipped = shipped_shaping_path()
    data = read_toml(shipped, ShapingError, "shaping file")
    operator = read_toml(path, ShapingError, "shaping file") if path is not None else {}
    data = merge_tables(data, operator)
    reader = _Reader(shipped, operator, path)
    version = str(reader.table(data.get("shaping", {}), ("shaping",)).get("version", "0"))
    if path is not None:
        version = f"{version}+{path.name}"
    default_table = reader.table(data.get("default", {}), ("default",))
    default = reader.limits(default_table, ("default",))
    rules: dict[str, tuple[AutomationRule, ...]] = {}
    if "automation" in data:
        rules["*"] = reader.rules(data["automation"], ("automation",), "*")
    providers: dict[str, ProviderPolicy] = {}
    for name, raw in reader.table(data.get("provider", {}), ("provider",)).items():
        table = reader.table(raw, ("provider", name))
        providers[name] = ProviderPolicy(
            name=name,
            description=str(table.get("description", "")),
            mx_suffixes=_validate_suffixes(reader, name, table.get("mx_suffixes")),
            limits=reader.limits(
                table, ("provider", name), ("description", "mx_suffixes", "automation")
            ),
        )
        if "automation" in table:
            scope = f"provider:{name}"
            rules[scope] = reader.rules(
                table["automation"], ("provider", name, "automation"), scope
            )
    domains: dict[str, dict[str, int | None]] = {}
    for name, raw in reader.table(data.get("domain", {}), ("domain",)).items():
        table = reader.table(raw, ("domain", name))
        domain = name.strip().lower().rstrip(".")
        domains[domain] = reader.limits(table, ("domain", name), ("description", "automation"))
        if "automation" in table:
            scope = f"domain:{domain}"
            rules[scope] = reader.rules(table["automation"], ("domain", name, "automation"), scope)
    warmups = {
        name: reader.warmup(name, reader.table(raw, ("warmup", name)))
        for name, raw in reader.table(data.get("warmup", {}), ("warmup",)).items()
    }
    pools: dict[str, EgressPool] = {}
    for name, raw in reader.table(data.get("pool", {}), ("pool",)).items():
        table = reader.table(raw, ("pool", name))
        addresses = table.get("addresses", [])
        if not isinstance(addresses, list):
            raise reader.fail(("pool", name, "addresses"), "expected a list of {ip = ...} tables")
        egress: list[EgressAddress] = []
        for i, entry in enumerate(addresses):
            key = ("pool", name, "addresses", str(i))
            entry = reader.table(entry, key)
            ip = reader.string(entry, "ip", key)
            weight = entry.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise reader.fail((*key, "weight"), f"expected a number > 0, found {weight!r}")
            warmup = entry.get("warmup")
            if warmup is not None and warmup not in warmups:
                raise reader.fail((*key, "warmup"), f"{warmup!r} is not a [warmup.<name>] table")
            egress.append(EgressAddress(ip=ip, weight=float(weight), warmup=warmup))
        pools[name] = EgressPool(name=name, addresses=tuple(egress))
    for scope, scoped in rules.items():
        for i, rule in enumerate(scoped):
            if rule.to_pool is not None and rule.to_pool not in pools:
                kind, _, owner = scope.partition(":")
                where: tuple[str, ...] = (kind, owner) if owner else ()
                raise reader.fail(
                    (*where, "automation", str(i), "to_pool"),
                    f"{rule.to_pool!r} is not a [pool.<name>] table",
                )
    return ShapingPolicy(
        version=version,
        default=default,
        providers=providers,
        domains=domains,
        rules=rules,
        pools=pools,
        warmups=warmups,
    )


# ---------------------------------------------------------------- automation


@dataclass(frozen=True, slots=True)
class AutomationAction:
    """A rule that fired: what to do, to whom, why (the reply and the figures) and until when."""

    rule: str
    action: ActionKind
    budget_key: str
    pool: str
    reason: str
    count: int
    window: timedelta
    started_at: datetime
    expires_at: datetime
    factor: float | None = None
    to_pool: str | None = None

    @property
    def event_id(self) -> str:
        return f"shaping:{self.budget_key}:{self.pool}:{self.rule}:{self.started_at.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "action": self.action,
            "budget_key": self.budget_key,
            "pool": self.pool,
            "reason": self.reason,
            "count": self.count,
            "window_seconds": int(self.window.total_seconds()),
            "started_at": self.started_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "factor": self.factor,
            "to_pool": self.to_pool,
        }


OnAction = Callable[[AutomationAction], None]


class AutomationEngine:
    """Counts rule matches per (rule, budget, pool) in a sliding window and fires actions.

    While a rule's action is in force for a budget and pool, further matches of that rule are
    not counted: the action already answers them, and it expires by itself."""

    def __init__(self, policy: ShapingPolicy, on_action: OnAction | None = None) -> None:
        self.policy = policy
        self.on_action = on_action
        self._hits: dict[tuple[str, str, str], deque[datetime]] = {}
        self._active: list[AutomationAction] = []

    def observe(
        self, budget_key: str, pool: str, reply_text: str, now: datetime
    ) -> list[AutomationAction]:
        """Record one SMTP reply from ``budget_key`` to ``pool``; returns the actions it fired."""
        fired: list[AutomationAction] = []
        active = {(a.rule, a.budget_key, a.pool) for a in self.active_actions(now)}
        for rule in self.policy.rules_for(budget_key):
            slot = (rule.name, budget_key, pool)
            if slot in active or not rule.regex.search(reply_text):
                continue
            hits = self._hits.setdefault(slot, deque())
            hits.append(now)
            while hits and hits[0] <= now - rule.window:
                hits.popleft()
            if len(hits) < rule.needed:
                continue
            count = len(hits)
            hits.clear()
            action = AutomationAction(
                rule=rule.name,
                action=rule.action,
                budget_key=budget_key,
                pool=pool,
                reason=reply_text.strip()[:500],
                count=count,
                window=rule.window,
                started_at=now,
                expires_at=now + rule.duration,
                factor=rule.factor,
                to_pool=rule.to_pool,
            )
            self._active.append(action)
            fired.append(action)
            if self.on_action is not None:
                self.on_action(action)
        return fired

    def impose(self, action: AutomationAction) -> bool:
        """Put an action decided elsewhere (the reputation monitor) in force, with the same
        bookkeeping as a fired rule. Returns False, doing nothing, while an action of the same
        rule for the same budget and pool is still in force."""
        active = {(a.rule, a.budget_key, a.pool) for a in self.active_actions(action.started_at)}
        if (action.rule, action.budget_key, action.pool) in active:
            return False
        self._active.append(action)
        if self.on_action is not None:
            self.on_action(action)
        return True

    def restore(self, actions: Iterable[AutomationAction]) -> None:
        """Put back actions taken before a restart (already recorded: ``on_action`` is not
        called again)."""
        known = {(a.rule, a.budget_key, a.pool, a.started_at) for a in self._active}
        for action in actions:
            if (action.rule, action.budget_key, action.pool, action.started_at) not in known:
                self._active.append(action)

    def active_actions(self, now: datetime) -> list[AutomationAction]:
        """Actions still in force at ``now``; expired ones are dropped."""
        self._active = [a for a in self._active if a.expires_at > now]
        return list(self._active)

    def effective_limits(
        self, budget_key: str, pool: str, now: datetime, base: Limits | None = None
    ) -> Limits:
        """``base`` (default: the policy's limits for ``budget_key``) with the actions in force:
        slow-downs multiply rates and connections by the strongest factor, suspensions set
        ``suspended_until`` (the destination for every pool, or this pool only), a move names
        the pool to route through. An action whose budget key is ``"*"`` (the reputation
        monitor's verdict on a pool) applies to every destination."""
        limits = base if base is not None else self.policy.limits_for_key(budget_key)
        factor = 1.0
        suspended_until: datetime | None = None
        route: tuple[datetime, str] | None = None
        for action in self.active_actions(now):
            if action.budget_key not in (budget_key, "*"):
                continue
            if action.action == "suspend_destination" or (
                action.action == "suspend_pool" and action.pool == pool
            ):
                suspended_until = max(suspended_until or action.expires_at, action.expires_at)
            elif action.pool != pool:
                continue
            elif action.action == "slow_down" and action.factor is not None:
                factor = min(factor, action.factor)
            elif (
                action.action == "move_pool"
                and action.to_pool is not None
                and (route is None or action.started_at > route[0])
            ):
                route = (action.started_at, action.to_pool)

        def scaled(value: int | None) -> int | None:
            return None if value is None else max(1, int(value * factor))

        return replace(
            limits,
            max_connections=max(1, int(limits.max_connections * factor)),
            messages_per_minute=scaled(limits.messages_per_minute),
            messages_per_hour=scaled(limits.messages_per_hour),
            suspended_until=suspended_until,
            route_to_pool=route[1] if route else None,
            slow_down_factor=factor,
        )


def event_recorder(engine: Engine) -> OnAction:
    """An ``on_action`` callback appending each action as a ``shaping_action`` event (once:
    the event id is the rule, budget, pool and start time)."""
    from postwise.core.events import append_event

    def record(action: AutomationAction) -> None:
        append_event(engine, action.event_id, SHAPING_EVENT, action.to_json())

    return record


def actions_in_force(engine: Engine, now: datetime) -> list[AutomationAction]:
    """The actions recorded as ``shaping_action`` events that have not expired at ``now``:
    what a restarted worker puts back in force (an action outlives the process that took it).
    Events that cannot be read back are skipped."""
    from sqlalchemy import select

    from postwise.core.db import EventRecord

    found: list[AutomationAction] = []
    with engine.connect() as connection:
        rows = connection.execute(
            select(EventRecord.payload)
            .where(EventRecord.type == SHAPING_EVENT)
            .where(EventRecord.created_at >= now - timedelta(seconds=_MAX_SECONDS))
            .order_by(EventRecord.id)
        ).scalars()
        for payload in rows:
            try:
                action = AutomationAction(
                    rule=str(payload["rule"]),
                    action=cast(ActionKind, payload["action"]),
                    budget_key=str(payload["budget_key"]),
                    pool=str(payload["pool"]),
                    reason=str(payload["reason"]),
                    count=int(payload["count"]),
                    window=timedelta(seconds=int(payload["window_seconds"])),
                    started_at=datetime.fromisoformat(payload["started_at"]),
                    expires_at=datetime.fromisoformat(payload["expires_at"]),
                    factor=payload.get("factor"),
                    to_pool=payload.get("to_pool"),
                )
            except (KeyError, TypeError, ValueError):
                continue
            if action.action in ACTION_KINDS and action.expires_at > now:
                found.append(action)
    return found
