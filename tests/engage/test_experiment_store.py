"""Stored experiments over a real SQLite store: deterministic, idempotent and consent-gated
assignment recorded as decisions, the global holdout kept out of every other experiment,
results from the store's events, and the ``engage experiment`` commands."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import EventRecord, ExperimentAssignmentRecord, open_database
from postwise.core.settings import get_settings
from postwise.engage.contacts import ContactStore
from postwise.engage.experiment_store import (
    DECISION_KIND,
    DuplicateExperimentError,
    ExperimentStoreError,
    UnknownExperimentError,
    all_contacts,
    assign,
    assignments,
    create_experiment,
    global_holdout,
    list_experiments,
    parse_arms,
    results,
    stop_experiment,
)
from postwise.engage.experiments import Experiment, HoldoutPlan
from postwise.engage.ingest import import_records
from postwise.engage.provenance import NewDecision, decisions_for, record_decisions

KEY = b"experiment-test-key-0123456789abcdef"
SIGNUP = datetime(2025, 12, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'experiments.sqlite'}")


def _contacts(engine: Engine, count: int, consent: bool = True, prefix: str = "user") -> list[str]:
    store = ContactStore(engine, KEY)
    ids: list[str] = []
    with engine.begin() as connection:
        for i in range(count):
            contact_id, _ = store.upsert_in(connection, f"{prefix}{i}@example.org")
            if consent:
                store.record_consent_in(
                    connection, contact_id, "marketing", "email", True, "form", SIGNUP
                )
            ids.append(contact_id)
    return ids


def _assignment_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count(ExperimentAssignmentRecord.id))).one()[0])


def test_assignment_is_deterministic_idempotent_and_recorded(engine: Engine) -> None:
    ids = _contacts(engine, 1200)
    create_experiment(engine, "subject-test", arms=parse_arms("a=0.3,b=0.7"))
    first = assign(engine, "subject-test", ids, T0, key=KEY)
    rule = Experiment("subject-test", (("a", 0.3), ("b", 0.7)), "subject-test")
    assert first.assigned == {c: rule.assign(c, KEY) for c in ids}
    share_a = sum(arm == "a" for arm in first.assigned.values()) / len(ids)
    assert 0.25 < share_a < 0.35

    again = assign(engine, "subject-test", ids, T0 + timedelta(days=3), key=KEY)
    assert again.assigned == {} and again.already_assigned == first.assigned
    assert _assignment_rows(engine) == len(ids)
    stored = assignments(engine, "subject-test")
    assert {at for _, at in stored.values()} == {T0}  # the first assignment stays

    [decision] = decisions_for(engine, ids[0])
    assert decision.kind == DECISION_KIND
    assert decision.decision == {"experiment": "subject-test", "arm": first.assigned[ids[0]]}
    assert decision.model_name is None and decision.model_version is None
    assert decision.policy["salt"] == "subject-test"
    assert decision.policy["fractions"] == {"a": 0.3, "b": 0.7}
    assert decision.decided_at == T0
    with engine.connect() as connection:
        events = connection.execute(
            select(func.count(EventRecord.id)).where(EventRecord.type == "decision")
        ).one()[0]
    assert events == len(ids)  # one decision event per assignment, none for the re-run

    # Another key (another deployment) draws other arms: the key makes assignment secret.
    assert {c: rule.assign(c, b"x" * 32) for c in ids} != first.assigned
    [(listed, counts)] = list_experiments(engine)
    assert listed.started_at == T0
    assert counts == {"a": sum(a == "a" for a in first.assigned.values()), "b": counts["b"]}
    assert sum(counts.values()) == len(ids)


def test_contacts_without_consent_are_not_assigned(engine: Engine) -> None:
    consenting = _contacts(engine, 20)
    silent = _contacts(engine, 10, consent=False, prefix="silent")
    store = ContactStore(engine, KEY)
    withdrawn = consenting[0]
    store.record_consent(withdrawn, "marketing", "email", False, "unsubscribe", T0)
    unknown = "f" * 64
    create_experiment(engine, "hold", holdout=0.5, campaign="spring")
    report = assign(engine, "hold", [*consenting, *silent, unknown], T0, key=KEY)
    assert set(report.assigned) == set(consenting[1:])
    assert set(report.skipped_consent) == {*silent, withdrawn, unknown}
    assert decisions_for(engine, silent[0]) == [] and decisions_for(engine, withdrawn) == []
    # Consent on another channel does not count either.
    report = assign(engine, "hold", silent, T0, key=KEY, channel="sms")
    assert report.assigned == {} and len(report.skipped_consent) == len(silent)
    # Once a contact consents, the next run assigns it.
    store.record_consent(silent[0], "marketing", "email", True, "form", T0)
    later = assign(engine, "hold", all_contacts(engine), T0 + timedelta(days=1), key=KEY)
    assert set(later.assigned) == {silent[0]}


def test_global_holdout_is_never_treated(engine: Engine) -> None:
    ids = _contacts(engine, 600)
    create_experiment(engine, "global", holdout=0.2)
    assert global_holdout(engine) is not None
    with pytest.raises(DuplicateExperimentError, match="global holdout already"):
        create_experiment(engine, "global-2", holdout=0.1)
    create_experiment(engine, "spring", holdout=0.1, campaign="spring")
    create_experiment(engine, "spring-subject", arms=(("a", 0.5), ("b", 0.5)), campaign="spring")

    plan = HoldoutPlan(KEY, 0.2)
    held = {c for c in ids if plan.in_global_holdout(c)}
    assert 0.15 < len(held) / len(ids) < 0.25
    campaign = assign(engine, "spring", ids, T0, key=KEY)
    subject = assign(engine, "spring-subject", ids, T0, key=KEY)
    for report in (campaign, subject):
        assert set(report.global_holdout) == held
        assert not held & set(report.assigned)
    assert decisions_for(engine, next(iter(held))) == []
    # The campaign holdout is HoldoutPlan's: the same contacts in the same groups.
    expected = {c: plan.assign(c, "spring", 0.1) for c in ids}
    names = {"control": "campaign_holdout", "treatment": "treatment"}
    assert {c: names[arm] for c, arm in campaign.assigned.items()} == {
        c: group for c, group in expected.items() if group != "global_holdout"
    }
    # The global holdout's own assignment puts exactly those contacts in its control arm.
    own = assign(engine, "global", ids, T0, key=KEY)
    assert {c for c, arm in own.assigned.items() if arm == "control"} == held
    # Stopped, it no longer holds anyone back from new experiments.
    stop_experiment(engine, "global")
    create_experiment(engine, "summer", holdout=0.1, campaign="summer")
    assert assign(engine, "summer", ids, T0, key=KEY).global_holdout == []
    with pytest.raises(ExperimentStoreError, match="stopped"):
        assign(engine, "global", ids, T0, key=KEY)


def _ci(treated: list[float], control: list[float]) -> tuple[float, float, float]:
    effect = statistics.fmean(treated) - statistics.fmean(control)
    se = math.sqrt(
        statistics.variance(treated) / len(treated) + statistics.variance(control) / len(control)
    )
    return effect, effect - 1.959963984540054 * se, effect + 1.959963984540054 * se


def test_results_match_a_hand_computed_difference_in_means(engine: Engine) -> None:
    ids = _contacts(engine, 60)
    create_experiment(engine, "promo", holdout=0.5, campaign="promo")
    report = assign(engine, "promo", ids, T0, key=KEY)
    arms = report.assigned
    store = ContactStore(engine, KEY)
    events: list[dict[str, object]] = []
    expected_rate: dict[str, float] = {}
    expected_value: dict[str, float] = {}
    for i, contact in enumerate(ids):
        hit = i % 3 == 0 or (arms[contact] == "treatment" and i % 3 == 1)
        spend = 0.0
        if hit:  # inside the 30-day window: counted
            spend = 10.0 + i
            events.append({"occurred_at": T0 + timedelta(days=2, hours=i), "value": spend})
            events[-1]["contact_id"] = contact
        if i % 4 == 0:  # a second purchase in the window adds to the value
            events.append(
                {"contact_id": contact, "occurred_at": T0 + timedelta(days=29), "value": 5.0}
            )
            hit, spend = True, spend + 5.0
        # Before the assignment and after the window: never counted.
        events.append(
            {"contact_id": contact, "occurred_at": T0 - timedelta(hours=1), "value": 99.0}
        )
        events.append(
            {"contact_id": contact, "occurred_at": T0 + timedelta(days=31), "value": 99.0}
        )
        expected_rate[contact] = 1.0 if hit else 0.0
        expected_value[contact] = spend
    records = [
        {
            "event_id": f"ev-{n}",
            "type": "purchase",
            "contact_id": event["contact_id"],
            "occurred_at": event["occurred_at"].isoformat(),  # type: ignore[attr-defined]
            "value": event["value"],
        }
        for n, event in enumerate(events)
    ]
    # Opens in the window are another outcome: they must not count as purchases.
    records.append(
        {
            "event_id": "open-1",
            "type": "open",
            "contact_id": ids[1],
            "occurred_at": (T0 + timedelta(days=1)).isoformat(),
        }
    )
    ingest, _ = import_records(store, "events", records)
    assert ingest.failed == 0

    def split(values: dict[str, float]) -> tuple[list[float], list[float]]:
        treated = [values[c] for c in ids if arms[c] == "treatment"]
        control = [values[c] for c in ids if arms[c] == "control"]
        return treated, control

    as_of = T0 + timedelta(days=60)
    for value, expected in ((False, expected_rate), (True, expected_value)):
        measured = results(engine, "promo", "purchase", 30, value=value, as_of=as_of)
        treated, control = split(expected)
        effect, low, high = _ci(treated, control)
        got = measured.effects["treatment"]
        assert got is not None
        assert got["ate"] == pytest.approx(effect)
        assert got["ate_ci"] == pytest.approx([low, high])
        assert measured.arms["treatment"].n == len(treated)
        assert measured.arms["control"].n == len(control)
        assert measured.arms["control"].mean == pytest.approx(statistics.fmean(control))
        assert measured.arms["treatment"].mean == pytest.approx(statistics.fmean(treated))
        assert measured.open_windows == 0
    opens = results(engine, "promo", "open", 30, as_of=as_of)
    assert opens.arms[arms[ids[1]]].mean == pytest.approx(1 / opens.arms[arms[ids[1]]].n)
    # A 1-day window sees none of the purchases (the first is on day 2).
    short = results(engine, "promo", "purchase", 1, as_of=as_of)
    assert all(outcome.mean == 0.0 for outcome in short.arms.values())
    # Asked on day 10, every 30-day window is still open: said so in the notes.
    early = results(engine, "promo", "purchase", 30, as_of=T0 + timedelta(days=10))
    assert early.open_windows == len(ids) and "still open" in early.notes[-1]


def test_results_refuse_bad_inputs_and_report_small_arms(engine: Engine) -> None:
    ids = _contacts(engine, 3)
    create_experiment(engine, "tiny", arms=parse_arms("control=0.5,variant=0.5"))
    with pytest.raises(UnknownExperimentError, match="no experiment named 'nope'"):
        results(engine, "nope", "purchase")
    with pytest.raises(ExperimentStoreError, match="not an event type"):
        results(engine, "tiny", "purchases")
    with pytest.raises(ExperimentStoreError, match="window of 0 days"):
        results(engine, "tiny", "purchase", 0)
    empty = results(engine, "tiny", "purchase")
    assert empty.effects == {"variant": None} and "at least 2" in empty.notes[0]
    assign(engine, "tiny", ids, T0, key=KEY)
    assert sum(o.n for o in results(engine, "tiny", "purchase").arms.values()) == 3


def test_definitions_are_checked(engine: Engine) -> None:
    with pytest.raises(ExperimentStoreError, match="sum to"):
        create_experiment(engine, "x", arms=parse_arms("a=0.5,b=0.6"))
    with pytest.raises(ExperimentStoreError, match="either a holdout fraction or the arms"):
        create_experiment(engine, "x", holdout=0.1, arms=(("a", 0.5), ("b", 0.5)))
    with pytest.raises(ExperimentStoreError, match="either a holdout fraction or the arms"):
        create_experiment(engine, "x")
    with pytest.raises(ExperimentStoreError, match="between 0 and 1"):
        create_experiment(engine, "x", holdout=1.0)
    with pytest.raises(ExperimentStoreError, match="at least two arms"):
        create_experiment(engine, "x", arms=(("a", 1.0),))
    with pytest.raises(ExperimentStoreError, match="arm 'A B'"):
        create_experiment(engine, "x", arms=(("A B", 0.5), ("b", 0.5)))
    with pytest.raises(ExperimentStoreError, match="not ARM=FRACTION"):
        parse_arms("a:0.5,b=0.5")
    with pytest.raises(ExperimentStoreError, match="'half' of arm 'a' is not a number"):
        parse_arms("a=half,b=0.5")
    with pytest.raises(ExperimentStoreError, match="experiment name"):
        create_experiment(engine, "no/slash", holdout=0.1)
    made = create_experiment(engine, "x", holdout=0.1, campaign="c1", salt="s1")
    assert (made.kind, made.salt, made.control, made.is_global_holdout) == (
        "holdout",
        "s1",
        "control",
        False,
    )
    with pytest.raises(DuplicateExperimentError, match="exists already"):
        create_experiment(engine, "x", holdout=0.2)
    with pytest.raises(UnknownExperimentError):
        assign(engine, "missing", [], key=KEY)


def test_record_decisions_is_a_batch_of_record_decision(engine: Engine) -> None:
    batch = [
        NewDecision("c1", "send", {"send": True}, None, None, {"x": 1}, "p", T0, decision_id="d1"),
        NewDecision("c2", "send", {"send": False}, "m", "v1", {"x": 2}, "p", T0, True, "d2"),
        NewDecision("c1", "send", {"send": True}, None, None, {"x": 1}, "p", T0, decision_id="d1"),
    ]
    assert record_decisions(engine, batch) == ["d1", "d2"]
    assert record_decisions(engine, batch) == []  # idempotent by id
    [c2] = decisions_for(engine, "c2")
    assert (c2.model_version, c2.features, c2.decided_at) == ("v1", {"x": 2}, T0)
    with engine.connect() as connection:
        ids = connection.execute(
            select(EventRecord.event_id).where(EventRecord.type == "decision")
        ).all()
    assert sorted(r[0] for r in ids) == ["decision:d1", "decision:d2"]


def test_cli_create_assign_results_and_errors(postwise_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    settings = get_settings()
    engine = open_database(settings.resolved_database_url)
    store = ContactStore.from_settings(settings, engine)
    ids = []
    for i in range(8):
        contact = store.upsert(f"cli{i}@example.org")
        store.record_consent(contact, "marketing", "email", True, "form", SIGNUP)
        ids.append(contact)

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["engage", "experiment", *args])
        assert not isinstance(result.exception, Exception) or isinstance(
            result.exception, SystemExit
        ), result.exception  # never a traceback
        return result.exit_code, result.stdout, result.stderr

    code, out, _ = run("create", "ab1", "--arms", "a=0.5,b=0.5", "--campaign", "c1")
    assert code == 0 and "created ab experiment of campaign c1 ab1" in out
    code, _, err = run("create", "ab2", "--arms", "a=0.5,b=0.7")
    assert code == 1 and "fractions sum to 1.2" in err
    code, _, err = run("create", "ab1", "--holdout", "0.1")
    assert code == 1 and "exists already" in err
    code, _, err = run("assign", "nope")
    assert code == 1 and "no experiment named 'nope'" in err
    code, _, err = run("results", "nope", "--outcome", "purchase")
    assert code == 1 and "no experiment named 'nope'" in err
    code, _, err = run("results", "ab1", "--outcome", "buy")
    assert code == 1 and "not an event type" in err
    bad = tmp_path / "contacts.txt"
    bad.write_text(f"# chosen\n{ids[0]}\nnot-an-id\n")
    code, _, err = run("assign", "ab1", "--contacts", str(bad))
    assert code == 1 and "contacts.txt line 3" in err

    good = tmp_path / "some.txt"
    good.write_text("\n".join(ids[:4]) + "\n")
    code, out, _ = run("assign", "ab1", "--contacts", str(good), "--json")
    assert code == 0 and json.loads(out)["assigned"] == 4
    code, out, _ = run("assign", "ab1", "--json")  # every contact of the store
    assert json.loads(out)["assigned"] == 4 and json.loads(out)["already_assigned"] == 4
    code, out, _ = run("results", "ab1", "--outcome", "purchase", "--window-days", "7", "--json")
    body = json.loads(out)
    assert code == 0 and body["control"] == "a" and body["measure"] == "rate"
    assert sum(arm["n"] for arm in body["arms"].values()) == 8
    code, out, _ = run("results", "ab1", "--outcome", "purchase", "--value")
    assert code == 0 and "sum of purchase value" in out
    code, out, _ = run("list", "--json")
    [listed] = json.loads(out)["experiments"]
    assert listed["name"] == "ab1" and sum(listed["assigned"].values()) == 8
    code, out, _ = run("stop", "ab1")
    assert code == 0 and "stopped" in out
    code, _, err = run("assign", "ab1")
    assert code == 1 and "was stopped" in err
