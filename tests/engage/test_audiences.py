"""Segments and audiences against a real SQLite store: every operator, the boolean forms,
event windows, scores, named segments, invalid definitions, and the exclusions of an
audience (consent, suppression, caps) counted by reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from postwise.core.db import open_database
from postwise.core.errors import PostwiseError
from postwise.engage.audiences import (
    delete_segment,
    evaluate_segment,
    list_segments,
    load_segment,
    preview,
    resolve_audience,
    save_segment,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.fatigue_policy import FrequencyPolicy, WindowCap
from postwise.engage.ingest import import_records
from postwise.engage.provenance import decisions_for, record_decision
from postwise.engage.segments import Segment, SegmentError, parse_segment
from postwise.outbound.suppression import SuppressionList

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
KEY = b"s" * 32
MODEL = "propensity:online_retail"

PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {"country": "UK", "age": "34", "vip": True, "tags": ["a", "b"], "plan": "pro"},
    "bob": {"country": "FR", "age": 51, "vip": "false", "plan": "Pro Plus"},
    "cat": {"country": "DE", "age": "n/a", "signup": "2025-03-01"},
    "dan": {"country": "UK", "signup": "2026-06-15"},
    "eve": {"age": 20},
}


def _days_ago(days: float) -> str:
    return (AT - timedelta(days=days)).isoformat()


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ContactStore, dict[str, str]]]:
    engine = open_database(f"sqlite:///{tmp_path_factory.mktemp('aud')}/postwise.db")
    store = ContactStore(engine, KEY)
    ids = {name: store.upsert(f"{name}@example.org", attrs) for name, attrs in PEOPLE.items()}
    events = [
        ("ann", "purchase", 10, {}),
        ("ann", "purchase", 100, {}),
        ("ann", "click", 5, {"campaign": "spring", "n": 2}),
        ("bob", "purchase", 60, {}),
        ("bob", "click", 40, {"campaign": "autumn"}),
        ("cat", "purchase", 200, {}),
        ("cat", "open", 1, {}),
        ("cat", "open", 2, {}),
        ("cat", "open", 3, {}),
        ("dan", "purchase", -1, {}),  # after the evaluation time: never counts
    ]
    report, _ = import_records(
        store,
        "events",
        [
            {
                "event_id": f"e{n}",
                "contact_id": ids[who],
                "type": kind,
                "occurred_at": _days_ago(days),
                "properties": props,
            }
            for n, (who, kind, days, props) in enumerate(events)
        ],
    )
    assert report.imported == len(events)
    scores = [
        ("ann", {"score": 0.1}, 30),
        ("ann", {"score": 0.5}, 2),
        ("bob", {"score": 0.6}, 2),
        ("bob", {"score": 0.2}, -1),  # recorded after the evaluation time
        ("cat", {"score": 0.9}, 100),
        ("dan", 0.4, 1),  # a bare number, as some callers record it
        ("eve", {"score": "high"}, 1),  # not a number: no score
    ]
    for who, decision, days in scores:
        record_decision(
            engine,
            ids[who],
            "propensity_score",
            decision,
            MODEL,
            "v1",
            {},
            "test",
            AT - timedelta(days=days),
        )
    record_decision(engine, ids["eve"], "propensity_score", 0.99, "other:model", "v1", {}, "t", AT)
    yield store, ids
    engine.dispose()


def _names(world: tuple[ContactStore, dict[str, str]], definition: Any) -> set[str]:
    store, ids = world
    found = evaluate_segment(store, definition, AT)
    by_id = {v: k for k, v in ids.items()}
    return {by_id[c] for c in found}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"eq": "UK"}, {"ann", "dan"}),
        ({"ne": "UK"}, {"bob", "cat"}),  # a missing attribute fails every comparison
        ({"in": ["UK", "FR"]}, {"ann", "bob", "dan"}),
        ({"not_in": ["UK", "FR"]}, {"cat"}),
        ({"exists": True}, {"ann", "bob", "cat", "dan"}),
        ({"exists": False}, {"eve"}),
        ({"contains": "k"}, {"ann", "dan"}),  # substring, case-insensitive
    ],
)
def test_attribute_operators_on_text(
    world: tuple[ContactStore, dict[str, str]], condition: dict[str, Any], expected: set[str]
) -> None:
    assert _names(world, {"attribute": "country", **condition}) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # Numbers compare with numbers and numeric strings (CSV imports store strings).
        ({"gte": 34}, {"ann", "bob"}),
        ({"gt": 34}, {"bob"}),
        ({"lte": 34}, {"ann", "eve"}),
        ({"lt": 34}, {"eve"}),
        ({"gte": 20, "lt": 51}, {"ann", "eve"}),
        ({"eq": 51.0}, {"bob"}),
        ({"eq": "34"}, {"ann"}),
    ],
)
def test_attribute_ordering_operators_on_numbers(
    world: tuple[ContactStore, dict[str, str]], condition: dict[str, Any], expected: set[str]
) -> None:
    assert _names(world, {"attribute": "age", **condition}) == expected


def test_attribute_booleans_lists_and_text_ordering(
    world: tuple[ContactStore, dict[str, str]],
) -> None:
    assert _names(world, {"attribute": "vip", "eq": True}) == {"ann"}
    assert _names(world, {"attribute": "vip", "eq": False}) == {"bob"}  # "false" as text
    assert _names(world, {"attribute": "tags", "contains": "b"}) == {"ann"}
    assert _names(world, {"attribute": "tags", "contains": "z"}) == set()
    assert _names(world, {"attribute": "plan", "contains": "PRO"}) == {"ann", "bob"}
    # A string operand compares as text: ISO dates order correctly.
    assert _names(world, {"attribute": "signup", "gte": "2026-01-01"}) == {"dan"}
    assert _names(world, {"attribute": "signup", "lt": "2026-01-01"}) == {"cat"}


def test_all_any_not(world: tuple[ContactStore, dict[str, str]]) -> None:
    uk = {"attribute": "country", "eq": "UK"}
    old = {"attribute": "age", "gte": 50}
    assert _names(world, {"any": [uk, old]}) == {"ann", "bob", "dan"}
    assert _names(world, {"all": [uk, {"attribute": "age", "exists": True}]}) == {"ann"}
    assert _names(world, {"not": uk}) == {"bob", "cat", "eve"}
    assert _names(world, {"not": {"not": uk}}) == {"ann", "dan"}
    assert _names(world, {"all": [{"any": [uk, old]}, {"not": old}]}) == {"ann", "dan"}


def test_event_windows_counts_and_properties(world: tuple[ContactStore, dict[str, str]]) -> None:
    assert _names(world, {"event": "purchase", "within_days": 90}) == {"ann", "bob"}
    assert _names(world, {"event": "purchase", "within_days": 30}) == {"ann"}
    # The purchase after the evaluation time never counts, whatever the window.
    assert _names(world, {"event": "purchase"}) == {"ann", "bob", "cat"}
    assert _names(world, {"event": "purchase", "min_count": 2}) == {"ann"}
    assert _names(world, {"event": "purchase", "max_count": 1}) == {"bob", "cat"}
    assert _names(world, {"event": "open", "within_days": 7, "min_count": 3}) == {"cat"}
    assert _names(world, {"event": "open", "within_days": 2, "min_count": 3}) == set()
    # min_count 0 includes contacts with no such event at all.
    assert _names(world, {"event": "click", "min_count": 0, "max_count": 0}) == {
        "cat",
        "dan",
        "eve",
    }
    since = {"event": "purchase", "since": _days_ago(150), "until": _days_ago(50)}
    assert _names(world, since) == {"ann", "bob"}
    assert _names(world, {"event": "purchase", "until": _days_ago(150)}) == {"cat"}
    assert _names(world, {"event": "click", "properties": {"campaign": "spring"}}) == {"ann"}
    assert _names(world, {"event": "click", "properties": {"n": 2}}) == {"ann"}
    assert _names(world, {"event": "click", "properties": {"campaign": "x"}}) == set()


def test_scores_latest_per_contact_with_max_age(
    world: tuple[ContactStore, dict[str, str]],
) -> None:
    # Latest: ann 0.5 (not her older 0.1), bob 0.6 (his later 0.2 is after the evaluation
    # time), cat 0.9 (100 days old), dan 0.4 (a bare number); eve's "high" is no score.
    assert _names(world, {"score": MODEL, "gte": 0.5}) == {"ann", "bob", "cat"}
    assert _names(world, {"score": MODEL, "gt": 0.5}) == {"bob", "cat"}
    assert _names(world, {"score": MODEL, "lt": 0.5}) == {"dan"}
    assert _names(world, {"score": MODEL, "lte": 0.5, "gte": 0.45}) == {"ann"}
    assert _names(world, {"score": MODEL, "gte": 0.5, "max_age_days": 30}) == {"ann", "bob"}
    assert _names(world, {"score": "other:model", "gte": 0.5}) == {"eve"}
    assert _names(world, {"score": MODEL, "kind": "uplift_score", "gte": 0}) == set()
    assert _names(world, {"not": {"score": MODEL, "gte": 0}}) == {"eve"}


def test_the_issue_example(world: tuple[ContactStore, dict[str, str]]) -> None:
    segment = {
        "all": [
            {"attribute": "country", "in": ["UK", "FR"]},
            {"event": "purchase", "within_days": 90, "min_count": 1},
            {"score": MODEL, "gte": 0.3},
            {"not": {"event": "click", "within_days": 30}},
        ]
    }
    assert _names(world, segment) == {"bob"}  # ann clicked 5 days ago


def test_named_segments_nest_and_cycles_are_refused(
    world: tuple[ContactStore, dict[str, str]],
) -> None:
    store, ids = world
    engine = store.engine
    save_segment(engine, "uk", {"attribute": "country", "eq": "UK"}, "UK contacts")
    save_segment(engine, "uk-buyers", {"all": [{"segment": "uk"}, {"event": "purchase"}]})
    save_segment(engine, "top", {"any": [{"segment": "uk-buyers"}, {"attribute": "age", "lt": 25}]})
    assert _names(world, "top") == {"ann", "eve"}
    assert _names(world, {"segment": "uk-buyers"}) == {"ann"}
    assert [s.name for s in list_segments(engine)] == ["top", "uk", "uk-buyers"]
    assert load_segment(engine, "uk").description == "UK contacts"
    with pytest.raises(SegmentError, match=r"cycle: uk → top → uk-buyers → uk"):
        save_segment(engine, "uk", {"segment": "top"})
    with pytest.raises(SegmentError, match="cycle: self → self"):
        save_segment(engine, "self", {"not": {"segment": "self"}})
    with pytest.raises(SegmentError, match="unknown segment 'nowhere'"):
        save_segment(engine, "lost", {"segment": "nowhere"})
    with pytest.raises(SegmentError, match="used by uk-buyers"):
        delete_segment(engine, "uk")
    # The caller's mapping is read before the table, and cycles through it are caught too.
    assert _names(world, "uk") == {"ann", "dan"}
    passed = {"a": {"segment": "b"}, "b": {"any": [{"segment": "a"}]}}
    with pytest.raises(SegmentError, match="cycle: a → b → a"):
        evaluate_segment(store, {"segment": "a"}, AT, segments=passed)
    shadow = {"uk": {"attribute": "country", "eq": "FR"}}
    found = evaluate_segment(store, {"segment": "uk-buyers"}, AT, segments=shadow)
    assert found == {ids["bob"]}
    assert delete_segment(engine, "top") and delete_segment(engine, "uk-buyers")
    assert delete_segment(engine, "uk") and not delete_segment(engine, "uk")
    with pytest.raises(SegmentError, match="unknown segment 'uk'"):
        load_segment(engine, "uk")


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], r"\$: expected a condition"),
        ({}, r"\$: a condition has exactly one of .* found none"),
        ({"all": [], "any": []}, r"found 'all' and 'any'"),
        ({"all": []}, r"\$\.all: expected a non-empty list"),
        ({"all": [{"attribute": "x", "eqq": 1}]}, r"\$\.all\[0\]\.eqq: unknown operator 'eqq'"),
        ({"attribute": "x"}, r"has no operator"),
        ({"attribute": 3, "eq": 1}, r"\$\.attribute: expected an attribute name"),
        ({"attribute": "x", "in": "UK"}, r"\$\.in: expected a non-empty list"),
        ({"attribute": "x", "in": ["UK", None]}, r"\$\.in\[1\]: expected a string"),
        ({"attribute": "x", "gte": True}, r"\$\.gte: expected a finite number"),
        ({"attribute": "x", "gte": float("nan")}, r"\$\.gte: expected a finite number"),
        ({"attribute": "x", "exists": "yes"}, r"\$\.exists: expected true or false"),
        ({"attribute": "x", "eq": {"a": 1}}, r"\$\.eq: expected a string"),
        ({"event": "buy"}, r"\$\.event: unknown event type 'buy'"),
        ({"event": "open", "within_days": 0}, r"within_days: expected a number of days"),
        ({"event": "open", "within_days": 10**9}, r"within_days: expected a number of days"),
        ({"event": "open", "within_days": 3, "since": "2026-01-01"}, "not both"),
        ({"event": "open", "since": "yesterday"}, r"\$\.since: expected an ISO 8601 time"),
        ({"event": "open", "since": "2026-02-01", "until": "2026-01-01"}, "is before 'since'"),
        ({"event": "open", "min_count": -1}, r"\$\.min_count: expected a whole number"),
        ({"event": "open", "min_count": 1.5}, r"\$\.min_count: expected a whole number"),
        ({"event": "open", "min_count": 3, "max_count": 2}, "below min_count 3"),
        ({"event": "open", "properties": []}, r"\$\.properties: expected a non-empty mapping"),
        ({"event": "open", "properties": {"a": [1]}}, r"\$\.properties\.a: expected a string"),
        ({"event": "open", "colour": "red"}, r"unknown key 'colour' in an event condition"),
        ({"score": MODEL}, "has no operator"),
        ({"score": MODEL, "above": 0.3}, r"\$\.above: unknown operator or key 'above'"),
        ({"score": MODEL, "gte": "high"}, r"\$\.gte: expected a finite number"),
        ({"score": "", "gte": 0.3}, r"\$\.score: expected a model name"),
        ({"score": MODEL, "gte": 0.3, "max_age_days": -1}, r"max_age_days: expected"),
        ({"segment": "Bad Name"}, r"\$\.segment: segment name 'Bad Name' is not valid"),
        ({"not": {"segment": "a"}, "extra": 1}, r"unknown key 'extra' in a 'not' condition"),
        ({"any": [{"not": {"event": "nope"}}]}, r"\$\.any\[0\]\.not\.event: unknown event"),
    ],
)
def test_invalid_definitions_name_the_place(definition: Any, message: str) -> None:
    with pytest.raises(SegmentError, match=message):
        parse_segment(definition)


def test_depth_limit_is_a_segment_error() -> None:
    deep: dict[str, Any] = {"attribute": "x", "exists": True}
    for _ in range(100):
        deep = {"not": deep}
    with pytest.raises(SegmentError, match="nested deeper than 32 levels"):
        parse_segment(deep)


_leaf_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["UK", "purchase", "2026-01-01", "propensity:x", "a", "", "open"]),
    st.text(max_size=8),
)
_keys = st.sampled_from(
    [
        "all",
        "any",
        "not",
        "attribute",
        "event",
        "score",
        "segment",
        "eq",
        "ne",
        "in",
        "not_in",
        "gte",
        "lte",
        "gt",
        "lt",
        "exists",
        "contains",
        "within_days",
        "since",
        "until",
        "min_count",
        "max_count",
        "properties",
        "kind",
        "max_age_days",
        "zzz",
    ]
)
_random_definitions = st.recursive(
    _leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_keys, inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(), st.text(max_size=3)), inner, max_size=2),
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_random_definitions)
def test_random_definitions_parse_or_raise_segment_error(definition: Any) -> None:
    try:
        segment = parse_segment(definition)
    except SegmentError as error:
        assert str(error)
        return
    assert isinstance(segment, Segment)
    assert isinstance(segment.references(), frozenset)


# --------------------------------------------------------------------------- audiences


@pytest.fixture()
def shop(tmp_path: Path) -> tuple[ContactStore, dict[str, str]]:
    engine: Engine = open_database(f"sqlite:///{tmp_path}/shop.db")
    store = ContactStore(engine, KEY)
    ids = {}
    for n in range(12):
        name = f"c{n:02d}"
        ids[name] = store.upsert(f"{name.upper()}@Example.org", {"country": "UK"})
    store.upsert("fr@example.org", {"country": "FR"})
    granted = AT - timedelta(days=60)
    for name in list(ids)[:10]:  # c10 and c11 never consented
        store.record_consent(ids[name], "marketing", "email", True, "form", granted)
    store.record_consent(
        ids["c09"], "marketing", "email", False, "preferences", AT - timedelta(days=1)
    )
    suppressions = SuppressionList(engine)
    suppressions.add("c08@example.org", "user unknown", "bounce")
    suppressions.add("C07@EXAMPLE.ORG", "complaint", "complaint")
    # c00 and c01 had three sends this week: over a per-contact cap of 3 a week.
    sends = [
        {
            "event_id": f"s-{who}-{k}",
            "contact_id": ids[who],
            "type": "sent",
            "occurred_at": (AT - timedelta(days=k + 1)).isoformat(),
        }
        for who in ("c00", "c01")
        for k in range(3)
    ]
    import_records(store, "events", sends)
    return store, ids


CAPS = FrequencyPolicy(per_contact=WindowCap(3, timedelta(days=7)))


def test_resolve_audience_counts_every_exclusion_by_reason(
    shop: tuple[ContactStore, dict[str, str]],
) -> None:
    store, ids = shop
    uk = {"attribute": "country", "eq": "UK"}
    counts_before = preview(store, uk, AT, caps=CAPS)
    assert decisions_for(store.engine, ids["c00"]) == []  # a preview records nothing
    result = resolve_audience(store, uk, AT, caps=CAPS)
    name = {v: k for k, v in ids.items()}
    assert sorted(name[c] for c in result.excluded["consent"]) == ["c09", "c10", "c11"]
    assert sorted(name[c] for c in result.excluded["suppressed"]) == ["c07", "c08"]
    assert sorted(name[c] for c in result.excluded["capped"]) == ["c00", "c01"]
    assert result.excluded["no_address"] == ()
    assert sorted(name[c] for c in result.included) == ["c02", "c03", "c04", "c05", "c06"]
    # Nothing is dropped silently: every member is included or excluded exactly once.
    everyone = [*result.included, *(c for ids_ in result.excluded.values() for c in ids_)]
    assert sorted(everyone) == sorted(result.members) and len(set(everyone)) == 12
    assert result.counts() == {
        "members": 12,
        "included": 5,
        "excluded_consent": 3,
        "excluded_no_address": 0,
        "excluded_suppressed": 2,
        "excluded_capped": 2,
        "downgraded": 0,
    }
    assert counts_before == result.counts()
    assert result.reasons[ids["c08"]] == "suppressed (bounce: user unknown)"
    assert result.reasons[ids["c00"]].startswith("per_contact: per-contact cap: 3 sends")
    # decide_send recorded the capped sends (and only those); preview recorded nothing.
    [capped] = decisions_for(store.engine, ids["c00"])
    assert capped.kind == "send_suppressed" and capped.decision["rule"] == "per_contact"
    assert decisions_for(store.engine, ids["c02"]) == []
    assert decisions_for(store.engine, ids["c09"]) == []  # no consent: nothing decided
    assert result.as_dict()["counts"]["included"] == 5


def test_resolve_audience_without_caps_and_on_another_channel(
    shop: tuple[ContactStore, dict[str, str]],
) -> None:
    store, ids = shop
    result = resolve_audience(store, {"attribute": "country", "eq": "UK"}, AT)
    assert len(result.included) == 7 and result.excluded["capped"] == ()
    # The suppression list holds e-mail addresses: it does not govern SMS. Consent is per
    # channel: nobody consented to SMS marketing.
    sms = resolve_audience(store, {"attribute": "country", "eq": "UK"}, AT, channel="sms")
    assert sms.included == () and len(sms.excluded["consent"]) == 12
    store.record_consent(ids["c08"], "marketing", "sms", True, "form", AT - timedelta(days=1))
    sms = resolve_audience(store, {"attribute": "country", "eq": "UK"}, AT, channel="sms")
    assert sms.included == (ids["c08"],) and sms.excluded["suppressed"] == ()


def test_resolve_audience_respects_a_given_suppression_list_and_consent_changes(
    shop: tuple[ContactStore, dict[str, str]], tmp_path: Path
) -> None:
    store, ids = shop
    other = SuppressionList(open_database(f"sqlite:///{tmp_path}/other.db"))
    other.add("c02@example.org", "operator said so", "operator")
    result = resolve_audience(store, {"attribute": "country", "eq": "UK"}, AT, suppressions=other)
    assert result.excluded["suppressed"] == (ids["c02"],)
    assert result.reasons[ids["c02"]] == "suppressed (operator: operator said so)"
    # An unsubscribe withdraws consent as of its time.
    import_records(
        store,
        "events",
        [
            {
                "event_id": "u1",
                "contact_id": ids["c03"],
                "type": "unsubscribe",
                "occurred_at": (AT - timedelta(hours=1)).isoformat(),
            }
        ],
    )
    again = resolve_audience(store, {"attribute": "country", "eq": "UK"}, AT)
    assert ids["c03"] in again.excluded["consent"] and ids["c03"] not in again.included


def test_unknown_segment_name_is_a_postwise_error(
    shop: tuple[ContactStore, dict[str, str]],
) -> None:
    store, _ = shop
    with pytest.raises(PostwiseError, match="unknown segment 'ghost'"):
        resolve_audience(store, "ghost", AT)
