"""Fatigue: the response curve and the cap on synthetic campaigns with a planted best cap, the
per-client hazard model, caps enforced from real engage_events in a SQLite store (suppressed
and downgraded sends recorded with their reason), the CLI and malformed files."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import open_database
from postwise.engage.contacts import ContactStore
from postwise.engage.fatigue import (
    NO_CAP,
    Allow,
    Downgrade,
    FrequencyPolicy,
    HazardModel,
    HistoryEvent,
    Suppress,
    WindowCap,
    cap_from_hazard,
    cap_outcome,
    decide_send,
    decide_sends,
    equal_budget_gain,
    evaluate_fatigue_folder,
    fatigue_score,
    personal_caps,
    response_curve,
    smooth_hazard,
    wilson,
)
from postwise.engage.ingest import import_records
from postwise.engage.provenance import decisions_for

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization"
BANK_HEADER = (
    "row_id,age,job,marital,education,default,housing,loan,contact,month,day_of_week,duration,"
    "campaign,pdays,previous,poutcome,emp.var.rate,cons.price.idx,cons.conf.idx,euribor3m,"
    "nr.employed,y"
)
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
KEY = b"fatigue-test-key"


def _campaigns(
    rng: np.random.Generator, clients: int, hazard: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Call each client until it responds (hazard[k-1] at contact k) or the caller's own limit
    (uniform 1..12) is reached: ``campaign`` = contacts made, ``y`` = responded."""
    limit = rng.integers(1, 13, size=clients)
    campaign = limit.copy()
    label = np.zeros(clients, dtype=np.int64)
    for i in range(clients):
        for k in range(1, limit[i] + 1):
            if rng.random() < hazard[min(k, len(hazard)) - 1]:
                campaign[i], label[i] = k, 1
                break
    return campaign, label


PLANTED = np.array([0.12, 0.11, 0.10, 0.09] + [0.01] * 8)  # contacts 1-4 pay, later ones do not


def test_curve_and_cap_find_the_planted_cap() -> None:
    campaign, label = _campaigns(np.random.default_rng(1), 12_000, PLANTED)
    curve = response_curve(campaign, label)
    assert len(curve) == 12
    assert int(curve.at_risk[0]) == 12_000
    assert np.allclose(curve.hazard[:4], PLANTED[:4], atol=0.02)
    assert np.all(curve.hazard[5:] < 0.03)
    smoothed = smooth_hazard(curve)
    assert np.all(np.diff(smoothed) <= 1e-12)  # non-increasing
    base = cap_outcome(campaign, label, None)
    break_even = base.responses / base.attempts
    assert 0.01 < break_even < 0.09
    upper = wilson(curve.responders, curve.at_risk)[1]
    assert cap_from_hazard(smoothed, break_even, upper) == 4
    gains = {cap: equal_budget_gain(campaign, label, cap) for cap in range(1, 13)}
    assert max(gains, key=lambda c: gains[c]) == 4
    assert gains[4] > 0 == equal_budget_gain(campaign, label, None)
    # a cap keeps the responders up to it and saves the attempts after it
    capped = cap_outcome(campaign, label, 4)
    assert capped.responses == int(label[campaign <= 4].sum())
    assert capped.attempts == int(np.minimum(campaign, 4).sum())


def test_cap_from_hazard_needs_evidence_and_may_be_none() -> None:
    hazard = np.array([0.1, 0.08, 0.05, 0.02])
    assert cap_from_hazard(hazard, 0.06) == 2
    # contact 3 is below break-even, but not significantly: it is kept
    assert cap_from_hazard(hazard, 0.06, upper=np.array([0.12, 0.1, 0.07, 0.03])) == 3
    assert cap_from_hazard(hazard, 0.01) is None
    assert cap_from_hazard(hazard, 0.5) == 1  # the first contact is always made


def test_hazard_model_caps_each_client_by_its_own_hazard() -> None:
    rng = np.random.default_rng(2)
    keen = rng.random(3000) < 0.5  # keen clients respond at 0.25 per contact, others at 0.02
    campaign = np.empty(3000, dtype=np.int64)
    label = np.empty(3000, dtype=np.int64)
    for segment, rate in ((keen, 0.25), (~keen, 0.02)):
        c, y = _campaigns(rng, int(segment.sum()), np.array([rate]))
        campaign[segment], label[segment] = c, y
    features = np.column_stack([keen.astype(float), rng.normal(size=3000)])
    model = HazardModel((False, False), seed=0).fit(features, campaign, label)
    hazards = model.hazards(features)
    assert np.all(np.diff(hazards, axis=1) <= 1e-9)  # non-increasing in k
    assert hazards[keen, 0].mean() > 0.15 > 0.05 > hazards[~keen, 0].mean()
    caps = personal_caps(hazards, 0.08)
    assert np.all(caps[keen] == NO_CAP)
    assert np.all(caps[~keen] == 1)
    assert equal_budget_gain(campaign, label, caps) > equal_budget_gain(campaign, label, 3)


def _bank_file(path: Path, rows: int, seed: int) -> Path:
    """Bank rows whose campaigns follow the planted hazard (cellular clients twice as keen)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        cellular = rng.random() < 0.5
        c, y = _campaigns(rng, 1, PLANTED * (1.4 if cellular else 0.6))
        lines.append(
            f"{i},{rng.integers(20, 70)},admin.,married,university.degree,no,yes,no,"
            f"{'cellular' if cellular else 'telephone'},may,mon,{rng.integers(10, 900)},"
            f"{int(c[0])},999,0,nonexistent,1.1,93.994,-36.4,4.857,5191.0,"
            f"{'yes' if y[0] else 'no'}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([BANK_HEADER, *lines]) + "\n")
    return path


def test_evaluation_on_synthetic_bank_data(tmp_path: Path) -> None:
    _bank_file(tmp_path / "train" / "bank.csv", 5000, 3)
    _bank_file(tmp_path / "test" / "bank.csv", 2000, 4)
    report = evaluate_fatigue_folder(tmp_path / "train", tmp_path / "test")
    assert report["best_cap"] == 4
    assert report["rows"] == 2000 and report["train_rows"] == 5000
    chosen = report["policies"][report["policy"]]
    assert report["expected_gain"] == chosen["gain_per_1000"] > 0
    low, high = report["expected_gain_ci"]
    assert low <= report["expected_gain"] <= high
    assert report["policies"]["no_cap"]["gain_per_1000"] == 0
    assert report["policies"]["global_cap"]["gain_per_1000"] > 0
    assert set(report["selection"]["gain_per_1000"]) == {
        "global_cap",
        "adjusted_global_cap",
        "per_contact_cap",
    }
    for row in report["curve"][:4]:
        assert row["response_rate"] == round(row["responders"] / row["clients"], 5)
        assert row["hazard"] == round(row["responders"] / row["at_risk"], 5)
    first = report["curve"][0]
    assert first["response_rate_ci"][0] <= first["response_rate"] <= first["response_rate_ci"][1]
    assert first["hazard_ci"][0] <= first["hazard"] <= first["hazard_ci"][1]


def _text(result: Any) -> str:
    """The command's output with Rich's line wrapping undone."""
    return " ".join(str(result.output).split()).replace("/ ", "/")


def test_malformed_bank_files_name_file_line_and_column(tmp_path: Path) -> None:
    good = _bank_file(tmp_path / "a" / "bank.csv", 40, 5).read_text().splitlines()
    broken = good[3].split(",")
    broken[12] = "many"
    (tmp_path / "a" / "bank.csv").write_text("\n".join([*good[:3], ",".join(broken)]) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["engage", "eval", "fatigue", "--train", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "bank.csv line 4: column 'campaign' holds 'many', not a number" in _text(result)
    zero = good[2].split(",")
    zero[12] = "0"
    (tmp_path / "a" / "bank.csv").write_text(
        "\n".join([*good[:2], ",".join(zero), *good[3:]]) + "\n"
    )
    result = runner.invoke(app, ["engage", "eval", "fatigue", "--train", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert "bank.csv line 3: column 'campaign' holds 0" in _text(result)
    retail = tmp_path / "r" / "log.csv"
    retail.parent.mkdir()
    retail.write_text("InvoiceNo,Quantity,InvoiceDate,UnitPrice,CustomerID\n1,1,2011-01-01,1,2\n")
    result = runner.invoke(app, ["engage", "eval", "fatigue", "--train", str(retail.parent)])
    assert result.exit_code == 1
    assert "bank_marketing" in _text(result)
    few = _bank_file(tmp_path / "few" / "bank.csv", 30, 6).parent
    result = runner.invoke(app, ["engage", "eval", "fatigue", "--train", str(few)])
    assert result.exit_code == 1
    assert "at least 20 of each are needed" in _text(result)


def test_fatigue_score_decays_and_engagement_answers_sends() -> None:
    sends = [HistoryEvent(NOW - timedelta(days=d), "sent") for d in (0.0001, 7, 14, 40)]
    score, unanswered = fatigue_score(sends, NOW)
    assert unanswered == 3  # the send 40 days ago is outside the 30-day window
    assert score == pytest.approx(1 + 0.5 + 0.25, abs=1e-3)
    opened = [*sends, HistoryEvent(NOW - timedelta(days=10), "open")]
    score, unanswered = fatigue_score(opened, NOW)
    assert unanswered == 2 and score == pytest.approx(1.5, abs=1e-3)
    assert fatigue_score([*sends, HistoryEvent(NOW - timedelta(seconds=1), "click")], NOW) == (0, 0)
    # a send at or after the decision time is not history
    assert fatigue_score([HistoryEvent(NOW, "sent")], NOW) == (0.0, 0)


def _event(name: str, contact: str, kind: str, days_ago: float, channel: str = "email") -> Any:
    return {
        "event_id": name,
        "contact_id": contact,
        "type": kind,
        "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
        "properties": {"channel": channel},
    }


@pytest.fixture
def store(tmp_path: Path) -> ContactStore:
    return ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), KEY)


def _consenting(store: ContactStore, address: str) -> str:
    """A contact who consents to marketing by e-mail and by SMS."""
    contact = store.upsert(address)
    for channel in ("email", "sms"):
        store.record_consent(contact, "marketing", channel, True, "test", NOW - timedelta(days=90))
    return contact


def test_a_contact_without_consent_is_suppressed_and_nothing_is_recorded(
    store: ContactStore,
) -> None:
    silent = store.upsert("silent@example.test")
    withdrawn = _consenting(store, "withdrawn@example.test")
    store.record_consent(withdrawn, "marketing", "email", False, "test", NOW - timedelta(days=1))
    roomy = FrequencyPolicy(per_contact=WindowCap(100, timedelta(days=7)))
    for contact in (silent, withdrawn):
        decision = decide_send(store, contact, "email", NOW, roomy)
        assert isinstance(decision, Suppress) and decision.rule == "consent"
        assert "marketing" in decision.reason
        assert decisions_for(store.engine, contact) == []
    # SMS consent still stands for the contact who withdrew e-mail only.
    assert isinstance(decide_send(store, withdrawn, "sms", NOW, roomy), Allow)


def test_caps_are_enforced_from_engage_events_and_suppressions_recorded(
    store: ContactStore,
) -> None:
    tired = _consenting(store, "tired@example.test")
    engaged = _consenting(store, "engaged@example.test")
    texted = _consenting(store, "texted@example.test")
    fresh = _consenting(store, "fresh@example.test")
    events = [
        *(_event(f"t{i}", tired, "sent", d) for i, d in enumerate((1, 5, 12, 20))),
        *(_event(f"e{i}", engaged, "sent", d) for i, d in enumerate((2, 9, 16, 23))),
        _event("e-open", engaged, "open", 5.5),
        _event("x-sms", texted, "sent", 0.5, channel="sms"),
        _event("old", fresh, "sent", 45),
    ]
    report, _ = import_records(store, "events", events)
    assert not report.errors
    engine = store.engine
    policy = FrequencyPolicy.from_learnt_cap(
        3,
        per_contact=WindowCap(5, timedelta(days=7)),
        per_channel={"sms": WindowCap(1, timedelta(days=1))},
    )
    assert policy.max_unanswered == 3 and policy.downgrade_at == 2.0

    decision = decide_send(store, tired, "email", NOW, policy)
    assert isinstance(decision, Suppress)
    assert decision.rule == "unanswered" and decision.count == 4 and decision.limit == 3
    recorded = decisions_for(engine, tired)
    assert len(recorded) == 1
    assert recorded[0].kind == "send_suppressed"
    assert recorded[0].decision["reason"] == decision.reason
    assert "4 sends without an open, click or purchase" in recorded[0].decision["reason"]
    assert recorded[0].policy == policy.as_dict()
    assert recorded[0].model_name is None

    # the open 5.5 days ago answered three of its four sends: one unanswered send, allowed
    allowed = decide_send(store, engaged, "email", NOW, policy)
    assert isinstance(allowed, Allow) and allowed.unanswered == 1
    assert decisions_for(engine, engaged) == []  # an allowed send is recorded by its sent event

    # channel cap: one sms in the last day blocks sms, not email
    sms = decide_send(store, texted, "sms", NOW, policy)
    assert isinstance(sms, Suppress) and sms.rule == "channel:sms"
    assert isinstance(decide_send(store, texted, "email", NOW, policy), Allow)
    assert decisions_for(engine, texted)[0].decision["channel"] == "sms"

    # history stops at the decision time: two days earlier three sends (3, 10 and 18 days old)
    # were unanswered, still at the cap; thirteen days earlier only one (7 days old)
    earlier = decide_send(store, tired, "email", NOW - timedelta(days=2), policy)
    assert isinstance(earlier, Suppress) and earlier.count == 3
    earliest = decide_send(store, tired, "email", NOW - timedelta(days=13), policy)
    assert isinstance(earliest, Allow) and earliest.unanswered == 1
    assert isinstance(decide_send(store, fresh, "email", NOW, policy), Allow)


def test_global_cap_and_downgrades_are_recorded(store: ContactStore) -> None:
    contacts = [_consenting(store, f"p{i}@example.test") for i in range(4)]
    events = [_event(f"g{i}", c, "sent", 0.2) for i, c in enumerate(contacts[:3])]
    events.append(_event("g-old", contacts[0], "sent", 3))
    report, _ = import_records(store, "events", events)
    assert not report.errors
    engine = store.engine
    policy = FrequencyPolicy(global_cap=WindowCap(3, timedelta(days=1)))
    blocked = decide_send(store, contacts[3], "email", NOW, policy)
    assert isinstance(blocked, Suppress) and blocked.rule == "global"
    assert blocked.count == 3  # the send three days ago is outside the global window
    assert decisions_for(engine, contacts[3])[0].decision["rule"] == "global"
    roomy = FrequencyPolicy(global_cap=WindowCap(4, timedelta(days=1)))
    assert isinstance(decide_send(store, contacts[3], "email", NOW, roomy), Allow)

    soft = FrequencyPolicy(
        per_contact=WindowCap(1, timedelta(days=7), action="downgrade"), downgrade_at=5.0
    )
    downgraded = decide_send(store, contacts[0], "email", NOW, soft)
    assert isinstance(downgraded, Downgrade) and downgraded.rule == "per_contact"
    entry = decisions_for(engine, contacts[0])[0]
    assert entry.kind == "send_downgraded"
    assert entry.decision["action"] == "downgrade"
    assert entry.features == {"fatigue": downgraded.fatigue, "unanswered": 2, "channel": "email"}
    # a suppression wins over a downgrade
    both = FrequencyPolicy(
        per_contact=WindowCap(1, timedelta(days=7), action="downgrade"), max_unanswered=1
    )
    assert isinstance(decide_send(store, contacts[0], "email", NOW, both), Suppress)
    fatigued = FrequencyPolicy(downgrade_at=1.5)
    tired = decide_send(store, contacts[0], "email", NOW, fatigued)
    assert isinstance(tired, Downgrade) and tired.rule == "fatigue"


def test_policy_refuses_nonsense_caps() -> None:
    with pytest.raises(ValueError, match="limit"):
        WindowCap(-1, timedelta(days=1))
    with pytest.raises(ValueError, match="window"):
        WindowCap(1, timedelta(0))
    with pytest.raises(ValueError, match="at least 1"):
        FrequencyPolicy.from_learnt_cap(0)


@pytest.mark.skipif(not (SHARED / "bank_marketing").is_dir(), reason="shared data absent")
def test_cli_json_on_a_slice_of_the_shared_bank_data(tmp_path: Path) -> None:
    source = next((SHARED / "bank_marketing").glob("*.csv.gz"))
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    (tmp_path / "slice.csv").write_text("\n".join([lines[0], *lines[1::5]]) + "\n")
    result = CliRunner().invoke(
        app, ["engage", "eval", "fatigue", "--train", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("best_cap", "expected_gain", "expected_gain_ci", "curve", "policies", "policy"):
        assert key in report
    assert abs(report["rows"] - len(lines[1::5]) * 0.3) <= 1
    assert 1 <= report["best_cap"] <= 6
    assert {"no_cap", "fixed_cap_3", "global_cap", "per_contact_cap"} <= set(report["policies"])
    assert report["policies"]["no_cap"]["attempts"] > report["policies"]["fixed_cap_3"]["attempts"]
    curve = report["curve"]
    assert curve[0]["contacts"] == 1 and curve[0]["hazard"] < curve[0]["response_rate"]
    assert all(r["hazard_ci"][0] <= r["hazard"] <= r["hazard_ci"][1] for r in curve)
    assert report["expected_gain"] > 0


def test_decide_sends_gives_each_contact_what_decide_send_gives(store: ContactStore) -> None:
    contacts = [_consenting(store, f"b{i}@example.test") for i in range(6)]
    silent = store.upsert("b-silent@example.test")
    events = [
        _event(f"b{i}-{k}", contact, "sent", 1 + k)
        for i, contact in enumerate(contacts)
        for k in range(i)  # contact i has i recent unanswered sends
    ]
    report, _ = import_records(store, "events", events)
    assert not report.errors
    policy = FrequencyPolicy.from_learnt_cap(3)
    batch = decide_sends(store, [*contacts, silent], "email", NOW, policy)
    assert set(batch) == {*contacts, silent}
    assert isinstance(batch[silent], Suppress) and batch[silent].rule == "consent"
    recorded = {c: decisions_for(store.engine, c) for c in contacts}
    for contact in contacts:
        single = decide_send(store, contact, "email", NOW, policy)
        assert single == batch[contact]
    kinds = [type(batch[c]).__name__ for c in contacts]
    assert kinds[:2] == ["Allow", "Allow"] and kinds[-1] == "Suppress"
    # Each capped contact's batch decision was recorded once, like the single call records it.
    for contact in contacts:
        expected = 0 if isinstance(batch[contact], Allow) else 1
        assert len(recorded[contact]) == expected
