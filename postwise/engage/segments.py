"""Segment definitions: rules over contact attributes, events and model scores, as data.

A definition is a JSON-able mapping (it reads the same from JSON or TOML) whose every node has
exactly one of these forms (the full grammar with examples is in docs/audiences.md):

- ``{"all": [node, ...]}``, ``{"any": [node, ...]}``, ``{"not": node}``;
- ``{"attribute": NAME, OP: VALUE, ...}`` with OP among ``eq ne in not_in gte lte gt lt exists
  contains`` (several operators must all hold);
- ``{"event": TYPE, "within_days": N | "since": T, "until": T, "min_count": 1, "max_count": M,
  "properties": {KEY: VALUE}}``;
- ``{"score": MODEL_NAME, "gte" | "gt" | "lte" | "lt": X, "max_age_days": N, "kind":
  "propensity_score"}``;
- ``{"segment": NAME}``: another named segment.

:func:`parse_segment` validates a definition and returns a :class:`Segment`; anything wrong
raises :class:`SegmentError` naming the place (``$.all[2].within_days``), what was wrong and
what is expected. Nothing here touches the database: :mod:`postwise.engage.audiences`
evaluates segments against the store.

Errors::

    PostwiseError
     └── SegmentError   an invalid definition, an unknown or cyclic segment reference
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from postwise.core.errors import PostwiseError
from postwise.engage.ingest import EVENT_TYPES

ATTRIBUTE_OPERATORS = ("eq", "ne", "in", "not_in", "gte", "lte", "gt", "lt", "exists", "contains")
SCORE_OPERATORS = ("gte", "gt", "lte", "lt")
DEFAULT_SCORE_KIND = "propensity_score"
MAX_DEPTH = 32
MAX_NODES = 1000
MAX_LIST = 10_000
MAX_DAYS = 36_600  # a century: bigger windows overflow datetime arithmetic and mean nothing
MAX_COUNT = 1_000_000_000
SEGMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,127}$")
_PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

Scalar = str | int | float | bool


class SegmentError(PostwiseError):
    """A segment definition that is not valid, or a reference to a segment that is unknown or
    part of a cycle. The message names the place in the definition."""


# --------------------------------------------------------------------------- the parsed tree


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class AttributeCondition:
    """Every ``(operator, value)`` of ``tests`` must hold for the contact's attribute ``name``."""

    name: str
    tests: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class EventCondition:
    """Between ``min_count`` and ``max_count`` (None: no upper bound) events of ``type`` in the
    window, counting only those whose properties equal ``properties``. The window is either the
    ``within`` before the evaluation time or ``[since, until]``; never after the evaluation
    time."""

    type: str
    within: timedelta | None
    since: datetime | None
    until: datetime | None
    min_count: int
    max_count: int | None
    properties: tuple[tuple[str, Scalar], ...]


@dataclass(frozen=True)
class ScoreCondition:
    """The contact's latest score of ``model`` (decisions of ``kind``), at most ``max_age``
    old, passes every ``(operator, threshold)`` of ``tests``."""

    model: str
    kind: str
    tests: tuple[tuple[str, float], ...]
    max_age: timedelta | None


@dataclass(frozen=True)
class SegmentRef:
    name: str


Node = AllOf | AnyOf | Not | AttributeCondition | EventCondition | ScoreCondition | SegmentRef


@dataclass(frozen=True, eq=False)
class Segment:
    """A validated segment: its definition as given (JSON-able) and the parsed tree."""

    definition: Mapping[str, Any]
    root: Node

    def references(self) -> frozenset[str]:
        """The names of the segments this one refers to directly."""
        found: set[str] = set()
        _collect_refs(self.root, found)
        return frozenset(found)


def _collect_refs(node: Node, found: set[str]) -> None:
    if isinstance(node, SegmentRef):
        found.add(node.name)
    elif isinstance(node, AllOf | AnyOf):
        for child in node.children:
            _collect_refs(child, found)
    elif isinstance(node, Not):
        _collect_refs(node.child, found)


# --------------------------------------------------------------------------- parsing


def check_segment_name(name: object) -> str:
    """``name`` if it can name a stored segment; SegmentError otherwise."""
    if not isinstance(name, str) or not SEGMENT_NAME.match(name):
        raise SegmentError(
            f"segment name {str(name)[:80]!r} is not valid (lower-case letters, digits, "
            "'_', '.', ':', '-'; at most 128 characters; starting with a letter or digit)"
        )
    return name


def parse_segment(definition: object) -> Segment:
    """Validate ``definition`` (see the module docstring) and return the Segment. Raises
    SegmentError, naming the path into the definition, for anything else; never another
    exception."""
    if isinstance(definition, Segment):
        return definition
    parser = _Parser()
    root = parser.node(definition, "$", 0)
    if not isinstance(definition, Mapping):  # pragma: no cover - node() already refused it
        raise SegmentError("$: a segment definition is a mapping")
    return Segment(dict(definition), root)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), f"a {type(value).__name__}")


def _shown(value: object) -> str:
    """The value itself when short and simple, else its kind."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)[:40]
    return _kind(value)


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
        and abs(float(value)) < 1e300
    )


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def node(self, value: object, path: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SegmentError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SegmentError(f"{path}: more than {MAX_NODES} conditions in one segment")
        if not isinstance(value, Mapping):
            raise SegmentError(
                f"{path}: expected a condition (a mapping such as {{'all': [...]}} or "
                f"{{'attribute': 'country', 'eq': 'UK'}}), got {_kind(value)}"
            )
        for key in value:
            if not isinstance(key, str):
                raise SegmentError(f"{path}: keys are strings, got {_kind(key)} {key!r:.40}")
        heads = [
            k for k in ("all", "any", "not", "attribute", "event", "score", "segment") if k in value
        ]
        if len(heads) != 1:
            what = "none" if not heads else " and ".join(repr(h) for h in heads)
            raise SegmentError(
                f"{path}: a condition has exactly one of 'all', 'any', 'not', 'attribute', "
                f"'event', 'score', 'segment'; found {what}"
                + ("" if heads else f" (keys: {', '.join(sorted(map(str, value)))[:120]})")
            )
        head = heads[0]
        if head in ("all", "any"):
            self._only(value, {head}, path, f"an {head!r} condition")
            items = value[head]
            if not isinstance(items, list | tuple) or not items:
                raise SegmentError(
                    f"{path}.{head}: expected a non-empty list of conditions, got "
                    f"{_kind(items) if not isinstance(items, list | tuple) else 'an empty list'}"
                )
            children = tuple(
                self.node(item, f"{path}.{head}[{i}]", depth + 1) for i, item in enumerate(items)
            )
            return AllOf(children) if head == "all" else AnyOf(children)
        if head == "not":
            self._only(value, {"not"}, path, "a 'not' condition")
            return Not(self.node(value["not"], f"{path}.not", depth + 1))
        if head == "segment":
            self._only(value, {"segment"}, path, "a segment reference")
            try:
                return SegmentRef(check_segment_name(value["segment"]))
            except SegmentError as error:
                raise SegmentError(f"{path}.segment: {error}") from None
        if head == "attribute":
            return self._attribute(value, path)
        if head == "event":
            return self._event(value, path)
        return self._score(value, path)

    @staticmethod
    def _only(value: Mapping[str, Any], allowed: set[str], path: str, what: str) -> None:
        extra = sorted(set(value) - allowed)
        if extra:
            raise SegmentError(
                f"{path}: unknown key {extra[0]!r} in {what} "
                f"(allowed: {', '.join(sorted(allowed))})"
            )

    def _attribute(self, value: Mapping[str, Any], path: str) -> AttributeCondition:
        name = value["attribute"]
        if not isinstance(name, str) or not name or len(name) > 128:
            raise SegmentError(
                f"{path}.attribute: expected an attribute name (1 to 128 characters), "
                f"got {_kind(name)}"
            )
        tests: list[tuple[str, Any]] = []
        for key, operand in value.items():
            if key == "attribute":
                continue
            where = f"{path}.{key}"
            if key not in ATTRIBUTE_OPERATORS:
                raise SegmentError(
                    f"{where}: unknown operator {key!r} for attribute {name!r:.60} "
                    f"(expected one of {', '.join(ATTRIBUTE_OPERATORS)})"
                )
            if key == "exists":
                if not isinstance(operand, bool):
                    raise SegmentError(f"{where}: expected true or false, got {_kind(operand)}")
            elif key in ("in", "not_in"):
                if not isinstance(operand, list | tuple) or not operand:
                    raise SegmentError(
                        f"{where}: expected a non-empty list of strings, numbers or booleans, "
                        f"got {_kind(operand) if operand else 'an empty list'}"
                    )
                if len(operand) > MAX_LIST:
                    raise SegmentError(f"{where}: at most {MAX_LIST} values, got {len(operand)}")
                for i, item in enumerate(operand):
                    if not _is_scalar(item):
                        raise SegmentError(
                            f"{where}[{i}]: expected a string, a finite number or a boolean, "
                            f"got {_kind(item)}"
                        )
                operand = tuple(operand)
            elif key in ("gte", "lte", "gt", "lt"):
                if not (isinstance(operand, str) or _is_number(operand)):
                    raise SegmentError(
                        f"{where}: expected a finite number (or a string, compared as text, "
                        f"e.g. an ISO date), got {_kind(operand)}"
                    )
            elif not _is_scalar(operand):
                raise SegmentError(
                    f"{where}: expected a string, a finite number or a boolean, "
                    f"got {_kind(operand)}"
                )
            tests.append((key, operand))
        if not tests:
            raise SegmentError(
                f"{path}: attribute {name!r:.60} has no operator "
                f"(add one of {', '.join(ATTRIBUTE_OPERATORS)})"
            )
        return AttributeCondition(name, tuple(tests))

    def _event(self, value: Mapping[str, Any], path: str) -> EventCondition:
        allowed = {"event", "within_days", "since", "until", "min_count", "max_count", "properties"}
        self._only(value, allowed, path, "an event condition")
        kind = value["event"]
        if kind not in EVENT_TYPES or not isinstance(kind, str):
            raise SegmentError(
                f"{path}.event: unknown event type {str(kind)[:32]!r} "
                f"(expected one of {', '.join(EVENT_TYPES)})"
            )
        within = None
        if "within_days" in value:
            within = _days(value["within_days"], f"{path}.within_days")
            if "since" in value or "until" in value:
                raise SegmentError(
                    f"{path}: give either 'within_days' or 'since'/'until', not both"
                )
        since = _moment(value["since"], f"{path}.since") if "since" in value else None
        until = _moment(value["until"], f"{path}.until") if "until" in value else None
        if since is not None and until is not None and until < since:
            raise SegmentError(f"{path}: 'until' ({until.isoformat()}) is before 'since'")
        min_count = _count(value.get("min_count", 1), f"{path}.min_count")
        max_count = None
        if "max_count" in value:
            max_count = _count(value["max_count"], f"{path}.max_count")
            if max_count < min_count:
                raise SegmentError(f"{path}.max_count: {max_count} is below min_count {min_count}")
        properties: list[tuple[str, Scalar]] = []
        if "properties" in value:
            given = value["properties"]
            if not isinstance(given, Mapping) or not given:
                raise SegmentError(
                    f"{path}.properties: expected a non-empty mapping of property to value, "
                    f"got {_kind(given)}"
                )
            for key, wanted in given.items():
                if not isinstance(key, str) or not _PROPERTY_KEY.match(key):
                    raise SegmentError(
                        f"{path}.properties: {str(key)[:40]!r} is not a property name "
                        "(letters, digits, '_', '.', '-'; at most 64 characters)"
                    )
                if not _is_scalar(wanted):
                    raise SegmentError(
                        f"{path}.properties.{key}: expected a string, a finite number or a "
                        f"boolean, got {_kind(wanted)}"
                    )
                properties.append((key, wanted))
        return EventCondition(
            kind, within, since, until, min_count, max_count, tuple(sorted(properties))
        )

    def _score(self, value: Mapping[str, Any], path: str) -> ScoreCondition:
        allowed = {"score", "kind", "max_age_days", *SCORE_OPERATORS}
        model = value["score"]
        if not isinstance(model, str) or not _MODEL_NAME.match(model):
            raise SegmentError(
                f"{path}.score: expected a model name such as 'propensity:online_retail', "
                f"got {_kind(model) if not isinstance(model, str) else repr(model[:60])}"
            )
        for key in value:
            if key not in allowed:
                raise SegmentError(
                    f"{path}.{key}: unknown operator or key {key!r} for score {model!r} "
                    f"(operators: {', '.join(SCORE_OPERATORS)}; keys: kind, max_age_days)"
                )
        kind = value.get("kind", DEFAULT_SCORE_KIND)
        if not isinstance(kind, str) or not kind or len(kind) > 64:
            raise SegmentError(f"{path}.kind: expected a decision kind, got {_kind(kind)}")
        tests: list[tuple[str, float]] = []
        for key in SCORE_OPERATORS:
            if key in value:
                if not _is_number(value[key]):
                    raise SegmentError(
                        f"{path}.{key}: expected a finite number, got {_kind(value[key])}"
                    )
                tests.append((key, float(value[key])))
        if not tests:
            raise SegmentError(
                f"{path}: score {model!r} has no operator (add one of {', '.join(SCORE_OPERATORS)})"
            )
        max_age = (
            _days(value["max_age_days"], f"{path}.max_age_days")
            if "max_age_days" in value
            else None
        )
        return ScoreCondition(model, kind, tuple(tests), max_age)


def _days(value: object, where: str) -> timedelta:
    if not _is_number(value) or not 0 < float(value) <= MAX_DAYS:  # type: ignore[arg-type]
        raise SegmentError(
            f"{where}: expected a number of days above 0 and at most {MAX_DAYS}, "
            f"got {_kind(value) if not _is_number(value) else value}"
        )
    return timedelta(days=float(value))  # type: ignore[arg-type]


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise SegmentError(
            f"{where}: expected a whole number from 0 to {MAX_COUNT}, got {_shown(value)}"
        )
    return value


def _moment(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise SegmentError(
        f"{where}: expected an ISO 8601 time such as '2026-01-31T00:00:00Z' "
        f"(no zone means UTC), got {_shown(value)}"
    )


# --------------------------------------------------------------------------- attribute tests
# Contact attributes often come from CSV imports, where every value is a string: a numeric
# operand compares numerically with a numeric string, a boolean one with "true"/"false".


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


def scalar_equals(actual: object, wanted: Scalar) -> bool:
    """Equality as segments define it: booleans match booleans (or "true"/"false"), numbers
    match numbers (or numeric strings), strings match strings exactly."""
    if isinstance(wanted, bool):
        return _as_bool(actual) is wanted
    if isinstance(wanted, int | float):
        number = _as_number(actual)
        return number is not None and number == float(wanted)
    return isinstance(actual, str) and actual == wanted


def _ordered(actual: object, operator: str, wanted: Any) -> bool:
    left: Any
    right: Any
    if isinstance(wanted, str):
        if not isinstance(actual, str):
            return False
        left, right = actual, wanted
    else:
        number = _as_number(actual)
        if number is None:
            return False
        left, right = number, float(wanted)
    if operator == "gte":
        return bool(left >= right)
    if operator == "gt":
        return bool(left > right)
    if operator == "lte":
        return bool(left <= right)
    return bool(left < right)


def attribute_matches(condition: AttributeCondition, attributes: Mapping[str, Any]) -> bool:
    """True when every test of ``condition`` holds for ``attributes``. A missing (or null)
    attribute fails every operator but ``exists: false``."""
    present = attributes.get(condition.name) is not None
    actual = attributes.get(condition.name)
    for operator, operand in condition.tests:
        if operator == "exists":
            if present is not operand:
                return False
            continue
        if not present:
            return False
        if operator == "eq":
            ok = scalar_equals(actual, operand)
        elif operator == "ne":
            ok = not scalar_equals(actual, operand)
        elif operator == "in":
            ok = any(scalar_equals(actual, item) for item in operand)
        elif operator == "not_in":
            ok = not any(scalar_equals(actual, item) for item in operand)
        elif operator == "contains":
            if isinstance(actual, list):
                ok = any(scalar_equals(item, operand) for item in actual)
            elif isinstance(actual, str):
                ok = str(operand).lower() in actual.lower() if isinstance(operand, str) else False
            else:
                ok = False
        else:
            ok = _ordered(actual, operator, operand)
        if not ok:
            return False
    return True


def properties_match(
    wanted: tuple[tuple[str, Scalar], ...], properties: Mapping[str, Any] | None
) -> bool:
    """True when every wanted property equals the event's (see :func:`scalar_equals`)."""
    given = properties or {}
    return all(scalar_equals(given.get(key), value) for key, value in wanted)
