"""Headline tests: the Upworthy reader, the group split, the replay of planted tests, the prior
learnt from training tests only, the CLI, and (when present) a slice of the shared file."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.engage.headlines import (
    ExploreThenCommit,
    HeadlineError,
    HeadlineTests,
    Thompson,
    fit_rate_prior,
    from_counts,
    oracle_clicks,
    prior_candidates,
    read_headline_tests,
    recentred,
    serving_policy,
    simulate,
    split_tests,
)
from postwise.engage.headlines_evaluation import choose_prior, evaluate_headlines

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization"
UPWORTHY = SHARED / "upworthy" / "upworthy_exploratory_dev.csv.gz"
HEADER = (
    "package_row_id,clickability_test_id,test_week,eyecatcher_id,headline,excerpt,lede,"
    "impressions,clicks,significance,first_place,winner"
)


def _planted(seed: int, tests: int, variants: int = 3, impressions: int = 4000) -> HeadlineTests:
    """Tests whose variants click at 2% except one planted best at 3% (clicks drawn as such)."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(tests):
        rates = np.full(variants, 0.02)
        rates[rng.integers(variants)] = 0.03
        shown = [impressions] * variants
        rows.append((f"{seed}-{t}", shown, [int(c) for c in rng.binomial(shown, rates)]))
    return from_counts(rows)


def _csv_lines(tests: HeadlineTests) -> list[str]:
    lines = []
    for t, name in enumerate(tests.test_ids):
        for i in range(tests.offsets[t], tests.offsets[t + 1]):
            lines.append(
                f'{i},{name},201446,img{i},"A headline, {i}",excerpt,"<p>lede\nline two</p>",'
                f"{tests.impressions[i]},{tests.clicks[i]},50.0,False,False"
            )
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join([HEADER, *lines]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_reader_groups_variants_by_test_across_gzipped_and_plain_files(tmp_path: Path) -> None:
    tests = _planted(1, 6)
    lines = _csv_lines(tests)
    _write(tmp_path / "part-a.csv.gz", lines[:9])
    _write(tmp_path / "b.csv", lines[9:])
    read = read_headline_tests(tmp_path)
    assert sorted(read.test_ids) == sorted(tests.test_ids)
    assert read.files == ("b.csv", "part-a.csv.gz")
    for name in tests.test_ids:
        t, u = read.test_ids.index(name), tests.test_ids.index(name)
        assert np.array_equal(read.test_rates(t), tests.test_rates(u))


def test_reader_drops_empty_variants_and_single_variant_tests(tmp_path: Path) -> None:
    lines = [
        "0,solo,201446,a,h,e,l,100,3,1,False,False",
        "1,pair,201446,a,h,e,l,100,3,1,False,False",
        "2,pair,201446,b,h,e,l,0,0,1,False,False",
        "3,pair,201446,c,h,e,l,200,9,1,False,False",
    ]
    read = read_headline_tests(_write(tmp_path / "x.csv", lines))
    assert read.test_ids == ("pair",)
    assert read.impressions.tolist() == [100, 200]
    assert read.single_variant_tests == 1


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "1,t,201446,a,h,e,l,100,abc,1,False,False",
            "line 3: column 'clicks' holds 'abc', not a number",
        ),
        ("1,t,201446,a,h,e,l,-5,0,1,False,False", "line 3: column 'impressions': '-5'"),
        ("1,t,201446,a,h,e,l,10,11,1,False,False", "line 3: column 'clicks': 11 clicks"),
        ("1,t,201446,a,h,e,l", "line 3: 7 fields"),
    ],
)
def test_malformed_file_names_file_line_and_column(tmp_path: Path, row: str, expected: str) -> None:
    path = _write(tmp_path / "bad.csv", ["0,t,201446,a,h,e,l,100,3,1,False,False", row])
    with pytest.raises(HeadlineError) as caught:
        read_headline_tests(tmp_path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_line_numbers_count_quoted_multi_line_fields(tmp_path: Path) -> None:
    good = '0,t,201446,a,h,e,"<p>one\ntwo</p>",100,3,1,False,False'
    path = _write(tmp_path / "bad.csv", [good, "1,t,201446,a,h,e,l,100,x,1,False,False"])
    with pytest.raises(HeadlineError, match="line 4: column 'clicks'"):
        read_headline_tests(path)


def test_other_layout_is_refused_with_the_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "other.csv").write_text("recency,history,visit\n1,2,0\n")
    with pytest.raises(HeadlineError, match=r"missing column.*clickability_test_id"):
        read_headline_tests(tmp_path)


def test_group_split_keeps_every_test_on_one_side() -> None:
    tests = _planted(2, 50)
    train, scored = split_tests(tests, 0.3)
    assert len(scored) == 15
    assert len(train) == 35
    assert not set(train.test_ids) & set(scored.test_ids)
    again_train, _ = split_tests(tests, 0.3)
    assert again_train.test_ids == train.test_ids
    for name in scored.test_ids:
        t, u = scored.test_ids.index(name), tests.test_ids.index(name)
        assert np.array_equal(scored.test_rates(t), tests.test_rates(u))


def test_thompson_loses_fewer_clicks_than_explore_then_commit_on_planted_tests() -> None:
    tests = _planted(3, 60)
    oracle = oracle_clicks(tests).sum()
    prior = prior_candidates(tests)[1]
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        thompson = simulate(tests, Thompson(prior), 10, rng).mean(axis=1).sum()
        ab_test = simulate(tests, ExploreThenCommit(0.2), 10, rng).mean(axis=1).sum()
        ab_half = simulate(tests, ExploreThenCommit(0.5), 10, rng).mean(axis=1).sum()
        assert 1 - thompson / oracle < 1 - ab_test / oracle
        assert 1 - thompson / oracle < 1 - ab_half / oracle
        assert thompson <= oracle


def test_replay_serves_every_impression_of_the_test() -> None:
    tests = from_counts([("a", [1000, 1000], [0, 0]), ("b", [500, 700, 800], [0, 0, 0])])
    rates = np.ones(tests.impressions.shape[0])  # every impression clicks: clicks = served
    rng = np.random.default_rng(0)
    for policy in (Thompson(rounds=7), Thompson(uniform_share=0.3), ExploreThenCommit(0.2)):
        clicks = simulate(tests, policy, 3, rng, rates)
        assert np.array_equal(clicks, np.array([[2000.0] * 3, [2000.0] * 3]))


def test_report_oracle_has_zero_regret_and_thompson_beats_the_ab_test() -> None:
    train, scored = _planted(4, 40), _planted(5, 30)
    report = evaluate_headlines(train, scored, replications=8, seed=0)
    regret = report["regret_vs_oracle"]
    assert regret["oracle"] == 0.0
    assert 0 < regret["thompson"] < regret["ab_test"] < regret["equal_split"]
    gain = report["clicks_vs_ab_test"]
    assert gain["absolute"] > 0
    assert gain["absolute_ci"][0] <= gain["absolute"] <= gain["absolute_ci"][1]
    assert gain["relative_ci"][0] <= gain["relative"] <= gain["relative_ci"][1]
    assert report["clicks"]["oracle"] == pytest.approx(float(oracle_clicks(scored).sum()))
    assert report["test_tests"] == 30


def test_empirical_bayes_prior_is_learnt_from_training_tests_only() -> None:
    train, scored = _planted(6, 40), _planted(7, 20)
    mean, across, _ = fit_rate_prior(train)
    assert mean == pytest.approx(train.clicks.sum() / train.impressions.sum())
    assert across > 0
    # scored tests with very different click rates leave the prior and its choice unchanged
    doubled = dataclasses.replace(scored, clicks=np.minimum(scored.clicks * 5, scored.impressions))
    first = evaluate_headlines(train, scored, replications=4, seed=0)
    second = evaluate_headlines(train, doubled, replications=4, seed=0)
    assert first["policy"]["prior"] == second["policy"]["prior"]
    assert first["prior_selection_regret"] == second["prior_selection_regret"]
    assert first["policy"]["prior"]["mean"] == pytest.approx(mean)
    chosen, _ = choose_prior(train, 4, 50, 0)
    assert chosen.as_dict() == first["policy"]["prior"]


def test_serving_policy_is_a_beta_thompson_with_the_learnt_prior() -> None:
    train = _planted(8, 20)
    fixed, centred = prior_candidates(train)[1], prior_candidates(train)[2]
    policy = serving_policy(["a", "b"], fixed)
    assert policy.prior == pytest.approx((fixed.alpha, fixed.beta))
    policy = serving_policy(["a", "b"], centred)
    for _ in range(100):
        policy.update("a", 1.0)
    moved = recentred(policy, centred)
    alpha, beta = moved.prior
    assert alpha / (alpha + beta) > centred.mean  # the test's rate so far pulls the centre up
    assert moved.successes.tolist() == [100.0, 0.0]


def test_cli_json_with_train_and_test_folders(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "t.csv", _csv_lines(_planted(9, 30)))
    _write(tmp_path / "test" / "s.csv.gz", _csv_lines(_planted(10, 20)))
    result = CliRunner().invoke(
        app,
        [
            "engage", "eval", "headlines", "--train", str(tmp_path / "train"),
            "--test", str(tmp_path / "test"), "--replications", "4", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "prior learnt on --train, replayed on --test"
    assert (report["train_tests"], report["test_tests"]) == (30, 20)
    assert report["clicks_vs_ab_test"]["absolute"] > 0


def test_cli_refuses_a_test_on_both_sides(tmp_path: Path) -> None:
    lines = _csv_lines(_planted(11, 5))
    _write(tmp_path / "train" / "t.csv", lines)
    _write(tmp_path / "test" / "t.csv", lines[:6])
    result = CliRunner().invoke(
        app, ["engage", "eval", "headlines", "--train", str(tmp_path / "train"),
              "--test", str(tmp_path / "test")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "in both --train and --test" in result.output


def test_cli_reports_a_malformed_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.csv", ["0,t,201446,a,h,e,l,100,lots,1,False,False"])
    result = CliRunner().invoke(app, ["engage", "eval", "headlines", "--train", str(tmp_path)])
    assert result.exit_code == 1
    assert path.name in result.output
    assert "line 2" in result.output
    assert "'clicks'" in result.output


@pytest.mark.skipif(not UPWORTHY.exists(), reason="shared upworthy data absent")
def test_cli_json_on_a_slice_of_the_shared_file(tmp_path: Path) -> None:
    text = gzip.decompress(UPWORTHY.read_bytes()).decode("utf-8")
    header, *rest = text.splitlines(keepends=True)
    # the first 2,000 physical lines; cut at a line that starts a new package row
    cut = next(i for i in range(2000, len(rest)) if rest[i][:1].isdigit())
    (tmp_path / "slice.csv").write_text(header + "".join(rest[:cut]))
    result = CliRunner().invoke(
        app,
        ["engage", "eval", "headlines", "--train", str(tmp_path), "--replications", "4", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("clicks", "clicks_vs_ab_test", "regret_vs_oracle", "policy", "protocol"):
        assert key in report
    assert report["regret_vs_oracle"]["oracle"] == 0.0
    assert report["train_tests"] > report["test_tests"] > 0
    assert 0 < report["regret_vs_oracle"]["thompson"] < report["regret_vs_oracle"]["equal_split"]
