"""Send-time optimisation: planted hours, shrinkage, seeded exploration, time zones, the cut-off,
the CLI on synthetic data and (when present) a slice of the shared retail log."""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.errors import ModelError
from postwise.engage.sendtime import (
    SLOTS,
    PurchaseHistory,
    SendTimeModel,
    SendTimeParams,
    hour_of_week,
    next_activity,
    next_send_time,
    zone_offsets,
)
from postwise.engage.sendtime_evaluation import (
    BaselineInputs,
    evaluate_sendtime,
    next_invoice_task,
)
from tests.engage.csv_files import write_csv

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization"
RETAIL_HEADER = (
    "row_id,InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)
EPOCH = datetime(1970, 1, 1)
START = datetime(2011, 1, 3)  # a Monday


def _seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _planted(contacts: int, events: int, seed: int) -> tuple[PurchaseHistory, dict[int, int]]:
    """Each contact buys at its own hour-of-week (shop = local time: UK), now and then an hour
    off, on a random week."""
    rng = np.random.default_rng(seed)
    planted = {
        c: int(rng.choice([d * 24 + h for d in (0, 1, 2, 3, 4) for h in range(8, 18)]))
        for c in range(contacts)
    }
    ids, times = [], []
    for contact, slot in planted.items():
        for _ in range(events):
            jitter = int(rng.choice([-1, 0, 0, 0, 1]))
            week = int(rng.integers(0, 30))
            ids.append(contact)
            times.append(_seconds(START) + week * 7 * 86_400 + (slot + jitter) * 3600 + 600)
    order = np.argsort(times)
    return (
        PurchaseHistory(
            np.asarray(ids, np.int64)[order],
            np.asarray(times, np.int64)[order],
            dict.fromkeys(planted, "United Kingdom"),
        ),
        planted,
    )


def test_planted_hours_are_recovered() -> None:
    history, planted = _planted(contacts=40, events=12, seed=1)
    cutoff = int(history.time.max()) + 1
    params = SendTimeParams(prior_strength=3.0, hour_spread=0.2, factorised=True)
    model = SendTimeModel.fit(history, cutoff, params)
    hits = 0
    for contact, slot in planted.items():
        chosen = model.best_hour(contact)
        assert not chosen.explored and chosen.zone == "Europe/London"
        gap = abs(chosen.local_slot - slot) % SLOTS
        hits += min(gap, SLOTS - gap) <= 1
    assert hits == len(planted)


def test_shrinkage_toward_cohort_and_own_profile() -> None:
    history, planted = _planted(contacts=30, events=200, seed=2)
    cutoff = int(history.time.max()) + 1
    model = SendTimeModel.fit(history, cutoff, SendTimeParams(prior_strength=10.0))
    # no history: exactly the cohort profile (its country's), or the global one without cohort
    newcomer = model.predict_proba(np.array([999_999]), {999_999: "United Kingdom"})[0]
    assert np.allclose(newcomer, model.cohort_profiles["United Kingdom"])
    stranger = model.predict_proba(np.array([999_998]), {999_998: "Atlantis"})[0]
    assert np.allclose(stranger, model.global_profile)
    # many events: close to its own histogram, far from the prior
    own = model.predict_proba(np.array([0]))[0]
    empirical = model.counts[0] / model.counts[0].sum()
    prior = model.cohort_profiles["United Kingdom"]
    assert np.abs(own - empirical).sum() < 0.1 < np.abs(own - prior).sum()
    assert abs(own.sum() - 1.0) < 1e-9
    assert int(np.argmax(own)) in {planted[0] - 1, planted[0], planted[0] + 1}


def test_decision_profile_follows_own_recent_history() -> None:
    # contact 1 bought 6 times on Tuesdays at 10h long ago, then 3 times on Thursdays at 15h
    day = 86_400
    old = [_seconds(START) + w * 7 * day + (24 + 10) * 3600 for w in range(6)]
    new = [_seconds(START) + (20 + w) * 7 * day + (3 * 24 + 15) * 3600 for w in range(3)]
    others = [_seconds(START) + w * 7 * day + (2 * 24 + 12) * 3600 for w in range(30)]
    history = PurchaseHistory(
        np.array([1] * 9 + [2] * 30, np.int64),
        np.array(old + new + others, np.int64),
        {1: "United Kingdom", 2: "United Kingdom"},
    )
    cutoff = new[-1] + day
    base = SendTimeParams(prior_strength=20.0, hour_spread=0.2)
    # without a decision profile: the model profile's window (old habit plus the crowd's hour)
    model = SendTimeModel.fit(history, cutoff, base)
    assert np.allclose(model.decision_profiles(np.array([1])), model.predict_proba(np.array([1])))
    # own counts with a long memory: the old habit; with a short one: the recent hour
    remember = replace(base, decision_strength=1.0)
    assert SendTimeModel.fit(history, cutoff, remember).best_hour(1).local_slot == 24 + 10
    recent = replace(base, decision_strength=1.0, decision_half_life_days=30.0)
    fitted = SendTimeModel.fit(history, cutoff, recent)
    assert fitted.decision_counts is not None
    assert fitted.best_hour(1).local_slot == 3 * 24 + 15
    # the likelihood profile does not depend on the decision parameters
    assert np.allclose(fitted.predict_proba(np.array([1])), model.predict_proba(np.array([1])))


def _first_event_reference(
    profiles: np.ndarray, rates: np.ndarray, start: int, hours: int
) -> np.ndarray:
    """The first-event distribution over slots, hour by hour (no shortcut)."""
    p = profiles / profiles.sum(axis=1, keepdims=True)
    out, alive = np.zeros_like(p), np.ones(p.shape[0])
    for hour in range(hours):
        slot = (start + hour) % SLOTS
        chance = -np.expm1(-rates * p[:, slot])
        out[:, slot] += alive * chance
        alive = alive * (1.0 - chance)
    return np.asarray(out / out.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("hours", [1, 5, 167, 168, 1000, 70 * 24])
def test_next_activity_is_the_first_event_distribution(hours: int) -> None:
    rng = np.random.default_rng(hours)
    profiles = rng.dirichlet(np.full(SLOTS, 0.3), size=20) * rng.uniform(0.5, 3.0, (20, 1))
    rates = rng.gamma(1.0, 2.0, size=20)
    got = next_activity(profiles, rates, np.full(20, 37), hours)
    assert np.allclose(got, _first_event_reference(profiles, rates, 37, hours), atol=1e-12)
    assert np.allclose(got.sum(axis=1), 1.0)
    if hours < SLOTS:  # nothing beyond the horizon
        assert got[:, (37 + np.arange(hours, SLOTS)) % SLOTS].sum() == pytest.approx(0.0)


def test_next_activity_edges() -> None:
    profile = np.zeros((3, SLOTS))
    profile[:, [10, 100]] = 1.0  # Monday 10h and Friday 04h, equally likely
    # no rate: the (normalised) profile itself
    still = next_activity(profile, np.zeros(3), np.zeros(3, np.int64), 70 * 24)
    assert np.allclose(still, profile / 2)
    # a frequent customer is most likely back at the first of its slots after the moment
    busy = next_activity(profile, np.full(3, 20.0), np.array([0, 50, 120]), 70 * 24)
    assert [int(np.argmax(row)) for row in busy] == [10, 100, 10]
    # a rare one: nearly the profile (the horizon holds both slots ten times)
    rare = next_activity(profile, np.full(3, 0.01), np.array([0, 50, 120]), 70 * 24)
    assert np.abs(rare - profile / 2).max() < 0.01
    # a slot the horizon never reaches, or an empty profile: no crash, rows still sum to one
    assert np.allclose(next_activity(np.zeros((1, SLOTS)), [1.0], [0], 24).sum(), 1.0)
    assert next_activity(profile[:1], [5.0], [11], 24)[0].sum() == pytest.approx(1.0)


def test_best_hour_after_a_moment_picks_the_next_active_slot() -> None:
    # contact 1 buys every week on Monday 10h and on Thursday 15h (as often)
    day = 86_400
    times = sorted(
        _seconds(START) + w * 7 * day + offset
        for w in range(20)
        for offset in (10 * 3600, (3 * 24 + 15) * 3600)
    )
    history = PurchaseHistory(
        np.ones(len(times), np.int64), np.array(times, np.int64), {1: "United Kingdom"}
    )
    cutoff = times[-1] + day
    params = SendTimeParams(decision_strength=1.0, rate_multiplier=1.0)
    model = SendTimeModel.fit(history, cutoff, params)
    weeks = (cutoff - times[0]) / (7 * day)  # purchases per week: (40 + 1) / (weeks + 4)
    assert model.contact_rates(np.array([1, 2]))[0] == pytest.approx(41 / (weeks + 4))
    assert model.contact_rates(np.array([2]))[0] == pytest.approx(1 / 4)  # no history
    tuesday = datetime(2011, 6, 7, 12, tzinfo=UTC)  # 13h in London (summer time)
    friday = datetime(2011, 6, 10, 12, tzinfo=UTC)
    # (the centre of the best 3-hour window: within an hour of the habit)
    assert abs(model.best_hour(1, after=tuesday).local_slot - (3 * 24 + 15)) <= 1
    assert abs(model.best_hour(1, after=friday).local_slot - 10) <= 1
    # without a moment, or with the fold off, the stationary decision (same either way)
    off = replace(model, params=replace(params, rate_multiplier=0.0))
    assert off.best_hour(1, after=tuesday) == off.best_hour(1, after=friday) == model.best_hour(1)
    with pytest.raises(ValueError, match="timezone-aware"):
        model.best_hour(1, after=datetime(2011, 6, 7, 12))


def test_global_and_cohort_profiles_can_follow_the_recent_crowd() -> None:
    # 40 customers bought at Monday 10h in the first weeks, 20 at Wednesday 15h lately
    day, week = 86_400, 7 * 86_400
    old = [(c, _seconds(START) + (c % 8) * week + 10 * 3600) for c in range(40)]
    new = [
        (100 + c, _seconds(START) + (20 + c % 4) * week + (2 * 24 + 15) * 3600) for c in range(20)
    ]
    rows = sorted(old + new, key=lambda pair: pair[1])
    history = PurchaseHistory(
        np.array([c for c, _ in rows], np.int64),
        np.array([t for _, t in rows], np.int64),
        dict.fromkeys([c for c, _ in rows], "United Kingdom"),
    )
    cutoff = rows[-1][1] + day
    every = SendTimeModel.fit(history, cutoff, SendTimeParams())
    recent = SendTimeModel.fit(history, cutoff, SendTimeParams(global_half_life_days=30.0))
    for model, slot in ((every, 10), (recent, 2 * 24 + 15)):
        assert int(np.argmax(model.global_profile)) == slot
        assert int(np.argmax(model.cohort_profiles["United Kingdom"])) == slot
    # a contact's own counts are not reweighted by it (that is half_life_days)
    assert np.array_equal(every.counts, recent.counts)
    # the knob survives the JSON of a model card (None = no weighting)
    assert SendTimeParams.from_json(SendTimeParams().as_json()).global_half_life_days == math.inf
    assert SendTimeParams().as_json()["global_half_life_days"] is None


def test_own_mode_baseline_breaks_ties_by_the_most_recent_invoice() -> None:
    hour = 3600
    week = 7 * 86_400
    t0 = _seconds(START)
    # customer 1: twice at slot 10, twice at slot 40 (the later ones), then one after the cut-off
    times = [t0 + 10 * hour, t0 + week + 10 * hour, t0 + 2 * week + 40 * hour]
    times += [t0 + 3 * week + 40 * hour, t0 + 5 * week + 70 * hour]
    history = PurchaseHistory(
        np.ones(5, np.int64), np.array(times, np.int64), {1: "United Kingdom"}
    )
    cutoff = t0 + 4 * week
    task = next_invoice_task(history, cutoff, t0 + 6 * week)
    assert task.target_slot.tolist() == [70]
    assert BaselineInputs.of(history, task).mode.tolist() == [40]


def test_exploration_is_seeded_and_follows_the_prior() -> None:
    history, _ = _planted(contacts=20, events=10, seed=3)
    cutoff = int(history.time.max()) + 1
    params = SendTimeParams(prior_strength=5.0, global_floor=0.02)
    model = SendTimeModel.fit(history, cutoff, params, seed=7)
    again = SendTimeModel.fit(history, cutoff, params, seed=7)
    other = SendTimeModel.fit(history, cutoff, params, seed=8)
    newcomers = range(10_000, 10_040)
    first = [model.best_hour(c, "United Kingdom") for c in newcomers]
    assert all(s.explored for s in first)
    assert first == [again.best_hour(c, "United Kingdom") for c in newcomers]
    assert [s.local_slot for s in first] != [
        other.best_hour(c, "United Kingdom").local_slot for c in newcomers
    ]
    assert len({s.local_slot for s in first}) > 3  # it explores, not one fixed hour
    # draws land where the prior has mass (weekday business hours), never at 3 a.m.
    assert all(8 <= s.local_slot % 24 <= 18 for s in first)
    assert not model.best_hour(10_000, "United Kingdom", explore=False).explored


def test_time_zones() -> None:
    winter = np.array([_seconds(datetime(2011, 1, 10, 1, 0))])  # Monday 01:00 in London
    summer = np.array([_seconds(datetime(2011, 7, 11, 1, 0))])
    assert zone_offsets(winter, "Asia/Tokyo")[0] == 9 * 3600
    assert zone_offsets(summer, "Asia/Tokyo")[0] == 8 * 3600  # London on BST, Tokyo has no DST
    assert zone_offsets(winter, "Australia/Sydney")[0] == 11 * 3600
    # a Japanese customer buying at 01:00 London time buys at 10:00 Tokyo time, Monday
    history = PurchaseHistory(
        np.array([5, 5, 5]),
        np.array([winter[0], winter[0] + 7 * 86_400, winter[0] + 14 * 86_400]),
        {5: "Japan"},
    )
    assert hour_of_week(history.local_times()).tolist() == [10, 10, 10]
    model = SendTimeModel.fit(
        history, int(history.time.max()) + 1, SendTimeParams(prior_strength=1.0)
    )
    chosen = model.best_hour(5)
    assert (chosen.local_slot, chosen.zone) == (10, "Asia/Tokyo")
    # Monday 10:00 in Tokyo is Monday 01:00 UTC
    after = datetime(2011, 2, 1, tzinfo=UTC)  # a Tuesday
    assert chosen.send_at(after) == datetime(2011, 2, 7, 1, 0, tzinfo=UTC)
    # New York in summer (UTC-4): Wednesday 09:00 local = 13:00 UTC
    assert next_send_time(2 * 24 + 9, "America/New_York", datetime(2011, 7, 4, tzinfo=UTC)) == (
        datetime(2011, 7, 6, 13, 0, tzinfo=UTC)
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(0, "Europe/London", datetime(2011, 1, 1))


def test_nothing_after_the_cutoff_is_read() -> None:
    history, _ = _planted(contacts=25, events=8, seed=4)
    cutoff = _seconds(START + timedelta(weeks=20))
    end = int(history.time.max()) + 1
    params = SendTimeParams(factorised=True, hour_spread=0.2, half_life_days=60.0)
    model = SendTimeModel.fit(history, cutoff, params)
    task = next_invoice_task(history, cutoff, end)
    baseline = BaselineInputs.of(history, task)
    # the same history with a flood of later purchases (at 3 a.m. Sunday) at and after the cut-off
    extra = np.arange(25).repeat(20)
    late = cutoff + (np.arange(extra.shape[0]) % 5) * 86_400 * 7 + 6 * 86_400 + 3 * 3600
    flooded = PurchaseHistory(
        np.concatenate([history.contact, extra]),
        np.concatenate([history.time, late]),
        history.country,
    )
    again = SendTimeModel.fit(flooded, cutoff, params)
    assert np.array_equal(model.counts, again.counts)
    assert np.allclose(model.global_profile, again.global_profile)
    probe = np.arange(25)
    assert np.allclose(model.predict_proba(probe), again.predict_proba(probe))
    flooded_baseline = BaselineInputs.of(flooded, task)
    assert np.array_equal(baseline.counts, flooded_baseline.counts)
    assert np.array_equal(baseline.global_counts, flooded_baseline.global_counts)


def _retail_lines(seed: int, start: datetime, days: int, customers: int) -> list[str]:
    """Customers buying every few days at their own hour (Mon-Fri), a quarter abroad."""
    rng = np.random.default_rng(seed)
    countries = ["United Kingdom"] * 3 + ["Germany"]
    lines: list[str] = []
    invoice = 500000 + seed * 100000
    for customer in range(customers):
        hour = int(rng.integers(8, 18))
        country = countries[customer % 4]
        for day in range(days):
            when = start + timedelta(days=day)
            if when.weekday() < 5 and rng.random() < 0.12:
                invoice += 1
                at = when + timedelta(hours=hour + int(rng.choice([-1, 0, 0, 1])), minutes=5)
                for _ in range(2):  # two lines per invoice
                    lines.append(
                        f"{len(lines)},{invoice},85123A,THING,2,{at:%Y-%m-%d %H:%M:%S},2.55,"
                        f"{12000 + customer},{country}"
                    )
    return lines


def test_protocol_and_cli_on_synthetic_log(tmp_path: Path) -> None:
    lines = _retail_lines(0, datetime(2011, 1, 3), 300, customers=120)
    earlier = [line for line in lines if line.split(",")[5] < "2011-08-31"]
    later = [line for line in lines if line.split(",")[5] >= "2011-08-31"]
    write_csv(tmp_path / "train" / "a.csv.gz", RETAIL_HEADER, earlier)
    write_csv(tmp_path / "test" / "b.csv", RETAIL_HEADER, later)
    result = evaluate_sendtime(tmp_path / "train", tmp_path / "test")
    assert result["cutoff"] >= "2011-08-31"
    assert result["customers"] > 20
    # planted hours (random weekdays, so the first weekdays after a cut-off are the likeliest:
    # the next-activity fold is chosen): at least the own mode's hits, more than the global
    # hour's, and a better likelihood than both
    assert result["params"]["rate_multiplier"] > 0
    assert result["hit_rate_1h"] > result["baseline_global"]["hit_rate_1h"]
    assert result["hit_rate_1h"] >= result["baseline_mode"]["hit_rate_1h"]
    rolling = result["rolling_origin"]
    assert rolling["cutoffs"] >= 5 and rolling["per_cutoff"][0]["cutoff"] == result["cutoff"]
    assert rolling["per_cutoff"][0]["postwise"] == pytest.approx(result["hit_rate_1h"])
    assert rolling["hit_rate_1h"] > rolling["baseline_mode"] > rolling["baseline_global"]
    assert rolling["cutoffs_above_mode"] > rolling["cutoffs_below_mode"]
    for baseline in ("baseline_global", "baseline_mode"):
        assert result["log_likelihood"] > result[baseline]["log_likelihood"]
    cli = CliRunner().invoke(
        app, ["engage", "eval", "sendtime", "--train", str(tmp_path / "train"), "--json"]
    )
    assert cli.exit_code == 0, cli.output
    internal = json.loads(cli.stdout)
    assert internal["protocol"].startswith("internal split")
    at = ["engage", "eval", "sendtime", "--train", str(tmp_path / "train"), "--cutoff"]
    chosen = CliRunner().invoke(app, [*at, "2011-06-20", "--json"])
    assert chosen.exit_code == 0, chosen.output
    given = json.loads(chosen.stdout)
    assert given["cutoff"] == "2011-06-20 00:00:00" and given["end"] <= "2011-08-29 00:00:00"
    assert all(cutoff < "2011-06-20" for cutoff in given["selection_cutoffs"])
    both = CliRunner().invoke(app, [*at, "2011-06-20", "--test", str(tmp_path / "test")])
    assert both.exit_code == 1 and "--cutoff applies to the internal split" in both.output
    assert CliRunner().invoke(app, [*at, "June"]).exit_code == 2  # not a date: usage error
    assert {"hit_rate_1h", "log_likelihood", "customers", "cutoff", "model"} <= set(internal)
    trained = CliRunner().invoke(
        app,
        [
            "engage", "train", "sendtime",
            "--data", str(tmp_path / "train"), "--out", str(tmp_path / "model"),
        ],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["name"] == "sendtime:online_retail"
    from postwise.engage.sendtime_evaluation import load_sendtime

    loaded = load_sendtime(tmp_path / "model")
    assert loaded.params == SendTimeParams.from_json(
        {k: v for k, v in card["params"].items() if k not in ("seed", "model_version")}
    )
    assert loaded.decision_counts is not None and loaded.rates is not None
    assert "decision_grid" in card["selection"]["postwise"]
    assert loaded.best_hour(12003).zone == "Europe/Berlin"
    moment = datetime(2011, 10, 3, 9, tzinfo=UTC)
    assert loaded.best_hour(12003, after=moment).zone == "Europe/Berlin"
    # a folder without the rates (an older or damaged model): a clear error, not a crash
    with np.load(tmp_path / "model" / "sendtime_profiles.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "rates"}
    np.savez_compressed(tmp_path / "model" / "sendtime_profiles.npz", **arrays)
    with pytest.raises(ModelError, match="lacks rates"):
        load_sendtime(tmp_path / "model")


def test_malformed_file_names_file_line_and_column(tmp_path: Path) -> None:
    lines = _retail_lines(1, datetime(2011, 1, 3), 30, customers=3)
    fields = lines[2].split(",")
    fields[5] = "yesterday"
    lines[2] = ",".join(fields)
    write_csv(tmp_path / "broken.csv", RETAIL_HEADER, lines)
    result = CliRunner().invoke(app, ["engage", "eval", "sendtime", "--train", str(tmp_path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "broken.csv line 4: column 'InvoiceDate' holds 'yesterday'" in message


@pytest.mark.skipif(not (SHARED / "online_retail").is_dir(), reason="shared data absent")
def test_cli_on_a_slice_of_the_shared_retail_log(tmp_path: Path) -> None:
    source = next((SHARED / "online_retail").glob("*.csv.gz"))
    lines = gzip.decompress(source.read_bytes()).decode("utf-8").splitlines()
    # every line of one customer in ten, so invoices stay whole
    kept = [line for line in lines[1:] if line.rsplit(",", 2)[-2].split(".")[0][-1:] == "5"]
    write_csv(tmp_path / "slice.csv", lines[0], kept)
    result = CliRunner().invoke(
        app, ["engage", "eval", "sendtime", "--train", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("hit_rate_1h", "log_likelihood", "customers", "cutoff"):
        assert key in out
    for baseline in ("baseline_global", "baseline_mode"):
        assert {"hit_rate_1h", "log_likelihood", "epsilon"} <= set(out[baseline])
    assert out["customers"] > 20
    assert 0.0 <= out["hit_rate_1h"] <= 1.0 and out["log_likelihood"] < 0
