"""``postwise engage eval bandit`` on slices of the shared Open Bandit sample, and the reader's
errors on malformed files (file, line and column named)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.engage.bandit_evaluation import Bootstrapped, pooled_ratio

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization"
OPEN_BANDIT = SHARED / "open_bandit"


def _slice(target: Path, step: int, part: slice = slice(None)) -> None:
    """Every ``step``-th row of the men campaign of both logs (the ``part`` of them)."""
    for policy in ("random", "bts"):
        lines = gzip.decompress((OPEN_BANDIT / policy / "men" / "men.csv.gz").read_bytes()).decode()
        header, *rows = lines.splitlines()
        folder = target / policy / "men"
        folder.mkdir(parents=True)
        (folder / "men.csv").write_text("\n".join([header, *rows[::step][part]]) + "\n")


def _run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["engage", "eval", "bandit", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.skipif(not OPEN_BANDIT.is_dir(), reason="shared data absent")
def test_eval_bandit_json_on_a_slice_of_the_shared_data(tmp_path: Path) -> None:
    _slice(tmp_path, 2)
    report = _run("--train", str(tmp_path), "--bootstrap", "20")
    assert report["dataset"] == "open_bandit"
    headline = report["ts_over_random"]
    assert headline["campaign"] == "men"
    for name in ("ipw", "snipw", "dr"):
        low, high = headline[name]["ci"]
        assert low <= headline[name]["estimate"] <= high
        assert headline[name]["estimate"] > 0
    men = report["campaigns"]["men"]
    assert men["ts_over_random"]["random_rows"] == 3500
    policies = men["policies"]
    assert policies["eval_rows"] == 1050  # the latest 30% of the random slice
    assert set(policies["policies"]) == {"bts", "postwise", "beta_thompson", "logistic_thompson"}
    logistic = policies["policies"]["logistic_thompson"]
    assert {"value", "over_random", "over_bts", "minus_random", "minus_bts"} <= set(logistic["dr"])
    assert isinstance(logistic["beats_random"], bool)
    assert logistic["item_prior_precision"] in (1.0, 10.0, 100.0)
    # the postwise candidate is chosen on training rows and named in the report
    choice = report["postwise_choice"]
    names = [c["name"] for c in choice["candidates"]]
    assert policies["policies"]["postwise"]["chosen"] == choice["main"] in names
    # a paired difference and its ratio agree in sign (same resample, random CTR > 0)
    postwise = policies["policies"]["postwise"]["dr"]
    assert (postwise["minus_random"]["estimate"] > 0) == (postwise["over_random"]["estimate"] > 1)
    # cross-fitting in time evaluates every random row, each by a policy not trained on it
    crossed = men["cross_fitted"]
    assert crossed["eval_rows"] == 3500
    assert set(crossed["policies"]) == {"bts", "postwise"}
    bts_distribution = men["ts_over_random"]["bts_distribution"]
    assert bts_distribution["used"] == "impression_share"
    # pooled over one campaign: that campaign's figures, intervals included
    pooled = report["pooled"]
    assert pooled["ts_over_random"]["campaigns"] == ["men"]
    for got, want in [
        (pooled["ts_over_random"]["dr"], men["ts_over_random"]["dr"]),
        (pooled["policies"]["postwise"]["dr"], postwise["over_random"]),
    ]:
        assert got["estimate"] == pytest.approx(want["estimate"])
        assert got["ci"] == pytest.approx(want["ci"])
    assert pooled["cross_fitted"]["rows"] == 3500
    assert headline["pooled_over_campaigns"]["dr"] == pooled["ts_over_random"]["dr"]
    assert "_samples" not in json.dumps(report)


def test_pooled_ratio_weights_campaigns_and_pairs_their_replicates() -> None:
    rng = np.random.default_rng(0)
    a = Bootstrapped(
        {"value": 0.02, "ctr": 0.01},
        {"value": rng.uniform(0.01, 0.03, 500), "ctr": rng.uniform(0.005, 0.015, 500)},
    )
    b = Bootstrapped(
        {"value": 0.006, "ctr": 0.006},
        {"value": rng.uniform(0.004, 0.008, 500), "ctr": rng.uniform(0.004, 0.008, 500)},
    )
    pooled = pooled_ratio([a, b], [3000, 1000], "value", "ctr", 0.9)
    assert pooled["estimate"] == pytest.approx(
        (0.75 * 0.02 + 0.25 * 0.006) / (0.75 * 0.01 + 0.25 * 0.006)
    )
    replicates = (0.75 * a.draws["value"] + 0.25 * b.draws["value"]) / (
        0.75 * a.draws["ctr"] + 0.25 * b.draws["ctr"]
    )
    assert pooled["ci"] == pytest.approx(list(np.quantile(replicates, [0.05, 0.95])))
    # a replicate without clicks in the base is left out, not a division by zero
    empty = Bootstrapped({"value": 0.0, "ctr": 0.0}, {"value": np.zeros(500), "ctr": np.zeros(500)})
    assert np.isnan(pooled_ratio([empty], [1], "value", "ctr", 0.9)["estimate"])
    assert all(np.isnan(pooled_ratio([empty], [1], "value", "ctr", 0.9)["ci"]))


@pytest.mark.skipif(not OPEN_BANDIT.is_dir(), reason="shared data absent")
def test_eval_bandit_with_a_test_folder(tmp_path: Path) -> None:
    _slice(tmp_path / "train", 3, slice(0, 1500))
    _slice(tmp_path / "test", 3, slice(1500, None))
    report = _run(
        "--train", str(tmp_path / "train"), "--test", str(tmp_path / "test"), "--bootstrap", "10"
    )
    men = report["campaigns"]["men"]
    assert "--test" in report["protocol"]
    assert men["ts_over_random"]["random_rows"] == 834  # the test folder's random rows
    assert men["policies"]["eval_rows"] == 834
    assert men["policies"]["train_rows"] == 3000
    assert "cross_fitted" not in men  # the --test rows are the only evaluation rows
    assert set(report["pooled"]) == {"ts_over_random", "policies"}


HEADER = "," + ",".join(
    [
        "timestamp",
        "item_id",
        "position",
        "click",
        "propensity_score",
        "user_feature_0",
        "user_feature_1",
        "user_feature_2",
        "user_feature_3",
        "user-item_affinity_0",
        "user-item_affinity_1",
    ]
)


def _row(index: int, click: str = "0", position: str = "1") -> str:
    stamp = f"2019-11-24 00:00:{index:02d}.000000+00:00"
    return f"{index},{stamp},{index % 2},{position},{click},0.5,a,b,c,d,0.0,0.0"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (_row(3, click="yes"), "line 4: column 'click' holds 'yes', not a number"),
        (_row(3, click="2"), "line 4: column 'click' holds '2', expected 0 or 1"),
        (_row(3, position="4"), "line 4: column 'position' holds '4', expected 1, 2 or 3"),
        (_row(3).replace(",0.5,", ",0,"), "line 4: column 'propensity_score' holds '0'"),
        (_row(3).replace("+00:00", ""), "line 4: column 'timestamp'"),
        (_row(3) + ",extra", "line 4: 13 fields, expected 12"),
    ],
    ids=["click-text", "click-2", "position", "pscore-0", "naive-time", "extra-field"],
)
def test_malformed_files_name_the_file_line_and_column(
    tmp_path: Path, bad_row: str, message: str
) -> None:
    folder = tmp_path / "random" / "all"
    folder.mkdir(parents=True)
    path = folder / "all.csv"
    path.write_text("\n".join([HEADER, _row(1), _row(2), bad_row]) + "\n")
    result = CliRunner().invoke(app, ["engage", "eval", "bandit", "--train", str(tmp_path)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"all.csv {message}" in text


def test_a_folder_without_logs_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["engage", "eval", "bandit", "--train", str(tmp_path)])
    assert result.exit_code == 1
    assert "no open_bandit logs" in " ".join(result.output.split())


def test_harmonic_mean_of_logged_propensities_recovers_the_time_averaged_distribution() -> None:
    # an item logged with probability 0.8 half the time and 0.2 the other half has a
    # time-averaged probability 0.5: the arithmetic mean of its logged propensities is
    # size-biased (0.68), the harmonic mean and the impression share are not
    from postwise.engage.bandit_evaluation import position_distribution, pscore_distribution
    from postwise.engage.open_bandit import BanditLog

    rng = np.random.default_rng(0)
    rows = 40000
    early = np.arange(rows) < rows // 2
    p_item0 = np.where(early, 0.8, 0.2)
    item = (rng.random(rows) >= p_item0).astype(np.int64)
    pscore = np.where(item == 0, p_item0, 1.0 - p_item0)
    log = BanditLog(
        "bts",
        "synthetic",
        np.arange(rows, dtype=np.float64),
        item,
        np.zeros(rows, dtype=np.int64),
        np.zeros(rows),
        pscore,
        np.full((rows, 4), "a"),
        np.zeros((rows, 2)),
        (),
    )
    assert abs(pscore_distribution(log, "harmonic")[0, 0] - 0.5) < 0.02
    assert abs(position_distribution(log)[0, 0] - 0.5) < 0.02
    arithmetic_mean = float(pscore[item == 0].mean())
    assert arithmetic_mean > 0.65
