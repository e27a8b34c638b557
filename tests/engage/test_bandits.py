"""Bandit policies and their store: Thompson sampling finds the best arm, the contextual
policies learn a planted rule, states round-trip through JSON, the holdout is deterministic and
concurrent updates lose nothing (SQLite; PostgreSQL when its binaries are installed)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from postwise.core.db import DecisionRecord, open_database
from postwise.engage import bandit_store
from postwise.engage.bandit_store import BanditStoreError, create_bandit, load_bandit
from postwise.engage.bandits import BanditError, BetaThompson
from postwise.engage.contextual_bandits import LinUCB, LogisticThompson, policy_from_state
from postwise.engage.provenance import decisions_for

try:  # the PostgreSQL server fixture of tests/core (module-scoped, skips without binaries)
    from core.test_postgres import postgres_url  # noqa: F401

    HAS_POSTGRES_FIXTURE = True
except ImportError:  # pragma: no cover - another import mode
    HAS_POSTGRES_FIXTURE = False

KEY = b"bandit-test-key"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'bandits.sqlite'}")


def _segment_context(segment: int) -> np.ndarray:
    return np.array([1.0, float(segment == 0), float(segment == 1)])


def test_thompson_sampling_converges_on_the_best_planted_rate() -> None:
    rates = {"a": 0.05, "b": 0.10, "c": 0.20}
    policy = BetaThompson(list(rates))
    rng = np.random.default_rng(1)
    chosen = []
    for _ in range(3000):
        arm = policy.select(rng)
        policy.update(arm, float(rng.random() < rates[arm]))
        chosen.append(arm)
    assert chosen[-1000:].count("c") > 850
    alpha, beta = policy.posterior()
    assert abs(alpha[2] / (alpha[2] + beta[2]) - 0.20) < 0.03
    assert policy.probabilities(rng)[2] > 0.85


@pytest.mark.parametrize(
    "policy",
    [
        LinUCB(["x", "y"], 3, alpha=0.5),
        LogisticThompson(["x", "y"], 3),
    ],
    ids=["linucb", "logistic_thompson"],
)
def test_contextual_policies_learn_a_planted_rule(policy: LinUCB | LogisticThompson) -> None:
    # segment 0 clicks on x (30%) far more than y (5%); segment 1 the other way round
    rate = {(0, "x"): 0.30, (0, "y"): 0.05, (1, "x"): 0.05, (1, "y"): 0.30}
    rng = np.random.default_rng(2)
    for _ in range(3000):
        segment = int(rng.integers(0, 2))
        context = _segment_context(segment)
        arm = policy.select(rng, context)
        policy.update(arm, float(rng.random() < rate[(segment, arm)]), context)
    for segment, best in ((0, "x"), (1, "y")):
        probabilities = policy.probabilities(rng, _segment_context(segment))
        assert probabilities[policy.arms.index(best)] > 0.9


def test_shared_logistic_thompson_learns_from_per_arm_features() -> None:
    # one weight vector; each arm's row says whether the contact liked that item before
    policy = LogisticThompson(["p", "q", "r"], 2, shared=True)
    rng = np.random.default_rng(3)
    for _ in range(2000):
        liked = int(rng.integers(0, 3))
        context = np.array([[1.0, float(k == liked)] for k in range(3)])
        arm = str(rng.choice(["p", "q", "r"]))  # a uniform logging policy
        clicked = rng.random() < (0.4 if policy.arm_index(arm) == liked else 0.05)
        policy.update(arm, float(clicked), context)
    assert policy.mean[0, 1] > 1.5  # the affinity weight is learnt
    context = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    assert policy.probabilities(rng, context)[2] > 0.95


def test_states_round_trip_through_json() -> None:
    policies: list[BetaThompson | LinUCB | LogisticThompson] = [
        BetaThompson(["a", "b"], 2.0, 3.0),
        LinUCB(["a", "b"], 3, alpha=0.7, ridge=2.0),
        LogisticThompson(["a", "b"], 3, prior_precision=[1.0, 2.0, 3.0]),
    ]
    context = _segment_context(1)
    for policy in policies:
        for step in range(50):
            policy.update(("a", "b")[step % 2], float(step % 3 == 0), context)
        state = json.loads(json.dumps(policy.to_state()))
        restored = policy_from_state(state)
        assert type(restored) is type(policy)
        assert restored.to_state() == policy.to_state()
        first = policy.probabilities(np.random.default_rng(9), context)
        again = restored.probabilities(np.random.default_rng(9), context)
        assert np.allclose(first, again)


@pytest.mark.parametrize(
    ("policy", "key", "value", "expected"),
    [
        (BetaThompson(["a", "b"]), "successes", [1.0, -1.0], "negative counts"),
        (BetaThompson(["a", "b"]), "prior", "x", "malformed beta_thompson state"),
        (LinUCB(["a", "b"], 2), "alpha", None, "malformed linucb state"),
        (LogisticThompson(["a"], 1), "precision", [[0.0]], "non-positive precision"),
        (LogisticThompson(["a"], 1), "mean", [[float("nan")]], "'mean' is not a finite array"),
    ],
)
def test_every_policy_refuses_a_malformed_state(
    policy: BetaThompson | LinUCB | LogisticThompson, key: str, value: object, expected: str
) -> None:
    state = {**policy.to_state(), key: value}
    with pytest.raises(BanditError, match=expected):
        policy_from_state(state)
    del state[key]
    with pytest.raises(BanditError, match=f"malformed {state['kind']} state: '{key}'"):
        policy_from_state(state)


def test_malformed_states_and_inputs_are_refused() -> None:
    state = LinUCB(["a", "b"], 2).to_state()
    state["gram"] = [[1.0]]
    with pytest.raises(BanditError, match="gram"):
        LinUCB.from_state(state)
    with pytest.raises(BanditError, match="unknown bandit kind"):
        policy_from_state({"kind": "oracle"})
    with pytest.raises(BanditError, match="state of a 'linucb', not logistic_thompson"):
        LogisticThompson.from_state(LinUCB(["a", "b"], 2).to_state())
    with pytest.raises(BanditError, match="context"):
        LinUCB(["a", "b"], 2).select(np.random.default_rng(0), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(BanditError, match="not in"):
        LogisticThompson(["a"], 1).update("a", 1.5, np.array([1.0]))


def test_holdout_is_deterministic_and_gets_the_control_arm(engine: Engine) -> None:
    create_bandit(engine, "subject", BetaThompson(["s1", "s2"]), "control", 0.3)
    contacts = [f"contact-{i}" for i in range(150)]
    first = [
        bandit_store.select(engine, "subject", c, key=KEY, rng=np.random.default_rng(i))
        for i, c in enumerate(contacts)
    ]
    again = [bandit_store.select(engine, "subject", c, key=KEY) for c in contacts]
    assert [s.holdout for s in first] == [s.holdout for s in again]
    held = [s for s in first if s.holdout]
    assert 0.2 < len(held) / len(contacts) < 0.4
    assert {s.arm for s in held} == {"control"}
    assert all(s.probability == 1.0 for s in held)
    served = [s for s in first if not s.holdout]
    assert {s.arm for s in served} <= {"s1", "s2"}
    assert all(0.0 < s.probability <= 1.0 for s in served)
    # another key moves contacts between the groups: the key, not the id alone, decides
    other = [bandit_store.select(engine, "subject", c, key=b"another") for c in contacts]
    assert [s.holdout for s in other] != [s.holdout for s in first]
    # every selection is recorded for off-policy evaluation
    recorded = decisions_for(engine, contacts[0])
    assert len(recorded) == 3
    assert all(d.kind == "bandit_selection" for d in recorded)
    assert recorded[-1].decision["arm"] == first[0].arm
    assert recorded[-1].decision["probability"] == first[0].probability
    assert recorded[-1].model_name == "bandit:subject"


def test_store_updates_and_holdout_tallies(engine: Engine) -> None:
    create_bandit(engine, "ctx", LinUCB(["a", "b"], 3), "a", 0.1)
    with pytest.raises(BanditStoreError, match="already exists"):
        create_bandit(engine, "ctx", LinUCB(["a", "b"], 3))
    with pytest.raises(BanditStoreError, match="does not exist"):
        load_bandit(engine, "nope")
    assert bandit_store.update(engine, "ctx", "b", 1.0, [1.0, 0.0, 1.0]) == 1
    assert bandit_store.update(engine, "ctx", "a", 0.0, [1.0, 1.0, 0.0], holdout=True) == 2
    stored = load_bandit(engine, "ctx")
    assert stored.version == 2
    assert stored.holdout_stats == {"pulls": 1.0, "reward": 0.0}
    assert isinstance(stored.policy, LinUCB)
    assert np.allclose(stored.policy.moment[1], [1.0, 0.0, 1.0])
    assert np.allclose(stored.policy.moment[0], 0.0)  # the holdout reward did not train it
    selection = bandit_store.select(engine, "ctx", "someone", [1.0, 0.0, 1.0], key=KEY)
    with Session(engine) as session:
        row = session.scalars(
            sql_select(DecisionRecord).where(DecisionRecord.decision_id == selection.decision_id)
        ).one()
    assert row.features == {"context": [1.0, 0.0, 1.0]}
    assert row.model_version == "2"


def _hammer(engine: Engine, threads: int, updates: int) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for step in range(updates):
                bandit_store.update(engine, "busy", ("a", "b")[step % 2], float(worker % 2))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []


def _assert_nothing_lost(engine: Engine, threads: int, updates: int) -> None:
    stored = load_bandit(engine, "busy")
    assert isinstance(stored.policy, BetaThompson)
    total = stored.policy.successes.sum() + stored.policy.failures.sum()
    assert total == threads * updates
    assert stored.policy.successes.sum() == (threads // 2) * updates
    assert stored.version == threads * updates


def test_concurrent_updates_lose_nothing_on_sqlite(engine: Engine) -> None:
    create_bandit(engine, "busy", BetaThompson(["a", "b"]))
    _hammer(engine, threads=8, updates=25)
    _assert_nothing_lost(engine, 8, 25)


@pytest.mark.skipif(not HAS_POSTGRES_FIXTURE, reason="the PostgreSQL fixture is not importable")
def test_concurrent_updates_lose_nothing_on_postgresql(postgres_url: str) -> None:
    engine = open_database(postgres_url)
    try:
        create_bandit(engine, "busy", BetaThompson(["a", "b"]))
        _hammer(engine, threads=8, updates=25)
        _assert_nothing_lost(engine, 8, 25)
    finally:
        engine.dispose()


def test_many_rewards_are_learnt_in_one_write_that_commits_with_the_callers_transaction(
    engine: Engine,
) -> None:
    create_bandit(engine, "batch", BetaThompson(["a", "b"]))
    start = load_bandit(engine, "batch").version
    with engine.begin() as connection:
        version = bandit_store.update_many_in(
            connection, "batch", [("a", 1.0), ("a", 0.0), ("b", 1.0), ("a", 1.0)]
        )
    assert version == start + 1
    state = load_bandit(engine, "batch").policy.to_state()
    assert state["successes"] == [2.0, 1.0] and state["failures"] == [1.0, 0.0]

    # Rolled back with the caller's transaction: nothing was learnt.
    with engine.connect() as connection:
        transaction = connection.begin()
        assert bandit_store.update_many_in(connection, "batch", [("b", 0.0)]) == start + 2
        transaction.rollback()
    assert load_bandit(engine, "batch").version == start + 1
    state = load_bandit(engine, "batch").policy.to_state()
    assert state["successes"] == [2.0, 1.0] and state["failures"] == [1.0, 0.0]
    with engine.begin() as connection, pytest.raises(BanditError):
        bandit_store.update_many_in(connection, "batch", [("zzz", 1.0)])
    with engine.begin() as connection, pytest.raises(BanditStoreError):
        bandit_store.update_many_in(connection, "nope", [("a", 1.0)])
