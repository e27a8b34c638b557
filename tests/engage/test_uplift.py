"""Uplift metrics by hand, models on a planted effect, the Hillstrom reader and the CLI."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.errors import CorpusError
from postwise.engage.hillstrom import read_hillstrom
from postwise.engage.uplift import CANDIDATES, make_model, select_model
from postwise.engage.uplift_metrics import (
    auuc_score,
    qini_curve,
    qini_score,
    uplift_at_k,
    uplift_curve,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization" / "hillstrom"
HEADER = (
    "row_id,recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,"
    "visit,conversion,spend"
)
GOOD_ROW = "0,10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0.0"

# y, t, score of the hand-worked example: ranked 4 > 3 > 2 > 1.
Y, T, S = [1, 0, 1, 0], [1, 1, 0, 0], [4.0, 3.0, 2.0, 1.0]


def test_qini_curve_by_hand() -> None:
    x, q = qini_curve(Y, T, S)
    assert x.tolist() == [0, 0.25, 0.5, 0.75, 1]
    # k=1: y_t=1, no control yet; k=3: 1 - 1*2/1 = -1; k=4: 1 - 1*2/2 = 0 (all over N=4)
    assert q.tolist() == pytest.approx([0, 0.25, 0.25, -0.25, 0])
    # trapezoids 0.25*(0.125+0.25+0-0.125) = 0.0625, diagonal to Q(N)=0 has area 0
    assert qini_score(Y, T, S) == pytest.approx(0.0625)


def test_uplift_curve_and_auuc_by_hand() -> None:
    _, u = uplift_curve(Y, T, S)
    # k=2: (1/2 - 0)*2/4; k=3: (1/2 - 1)*3/4; k=4: (1/2 - 1/2)
    assert u.tolist() == pytest.approx([0, 0.25, 0.25, -0.375, 0])
    assert auuc_score(Y, T, S) == pytest.approx(0.25 * (0.125 + 0.25 - 0.0625 - 0.1875))


def test_ties_enter_together() -> None:
    # One tie group holding everything: the curve goes straight from (0,0) to the end point.
    x, _ = qini_curve(Y, T, [1.0, 1.0, 1.0, 1.0])
    assert x.tolist() == [0, 1]
    assert qini_score(Y, T, [1.0] * 4) == pytest.approx(0.0)


def test_uplift_at_k_overall_strategy() -> None:
    y = [1, 0, 1, 0, 0, 1, 0, 0, 1, 0]
    t = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    score = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    # top int(10*0.3)=3 rows: treated outcomes 1, 1; control outcome 0
    assert uplift_at_k(y, t, score, 0.3) == pytest.approx(1.0)
    # top 5: treated 1,1,0 -> 2/3; control 0,0 -> 0
    assert uplift_at_k(y, t, score, 0.5) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="lack"):
        uplift_at_k(y, t, score, 0.1)


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Effect +0.3 on visit probability where x0 > 0, none elsewhere; x1 drives the base rate."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    t = (rng.random(n) < 0.5).astype(float)
    tau = np.where(X[:, 0] > 0, 0.3, 0.0)
    base = 0.2 + 0.1 * (X[:, 1] > 0)
    y = (rng.random(n) < base + t * tau).astype(float)
    return X, y, t, tau


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_models_recover_a_planted_effect(candidate: str) -> None:
    X, y, t, _ = _planted(3000, 1)
    X_test, y_test, t_test, tau = _planted(3000, 2)
    score = make_model(candidate, seed=0).fit(X, y, t).predict(X_test)
    assert np.corrcoef(score, tau)[0, 1] > 0.5
    assert uplift_at_k(y_test, t_test, score, 0.3) > 0.15  # the effect is 0.3 in the top half
    assert qini_score(y_test, t_test, score) > 0.01


def test_continuous_outcome_and_selection() -> None:
    X, y, t, tau = _planted(3000, 3)
    spend = y * (20 + 5 * X[:, 2].clip(-2, 2))
    selection = select_model(X, spend, t, ("two_model/linear", "x_learner/hgb"), folds=2)
    assert selection.best in ("two_model/linear", "x_learner/hgb")
    assert set(selection.validation_qini) == {"two_model/linear", "x_learner/hgb"}
    model = make_model("transformed_outcome/linear").fit(X, spend, t)
    assert np.corrcoef(model.predict(X), tau)[0, 1] > 0.5


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    return path


def test_reader_reads_gzip_and_plain_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.csv.gz", [HEADER, GOOD_ROW])
    (tmp_path / "b.csv").write_text(HEADER + "\n" + GOOD_ROW.replace("Womens", "No") + "\n")
    (tmp_path / "README.md").write_text("not data")
    data = read_hillstrom(tmp_path)
    assert len(data) == 2
    assert data.arms.tolist() == ["Womens", "control"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (GOOD_ROW.replace("Womens E-Mail", "Kids E-Mail"), "column 'segment': unknown arm"),
        (GOOD_ROW.replace("142.44", "lots"), "column 'history': 'lots' is not a number"),
        (GOOD_ROW.replace(",0,0,0.0", ",2,0,0.0"), "column 'visit': 2.0 is not 0 or 1"),
        (GOOD_ROW.replace("0,0.0", "0,-3"), "column 'spend'"),
    ],
)
def test_reader_names_file_line_and_column(tmp_path: Path, line: str, message: str) -> None:
    _write(tmp_path, "bad.csv.gz", [HEADER, GOOD_ROW, line])
    with pytest.raises(CorpusError, match=message) as caught:
        read_hillstrom(tmp_path)
    assert "bad.csv.gz: line 3" in str(caught.value)


def test_reader_names_missing_columns(tmp_path: Path) -> None:
    _write(tmp_path, "short.csv.gz", [HEADER.replace(",spend", ""), GOOD_ROW.rsplit(",", 1)[0]])
    with pytest.raises(CorpusError, match=r"short\.csv\.gz: missing column.*spend"):
        read_hillstrom(tmp_path)


def test_cli_reports_a_malformed_folder(tmp_path: Path) -> None:
    _write(tmp_path, "bad.csv.gz", [HEADER, GOOD_ROW.replace("142.44", "x")])
    result = CliRunner().invoke(app, ["engage", "eval", "uplift", "--train", str(tmp_path)])
    assert result.exit_code == 1
    assert "bad.csv.gz" in result.output and "history" in result.output


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared hillstrom data absent")
def test_cli_json_on_a_slice_of_the_real_data(tmp_path: Path) -> None:
    with gzip.open(next(SHARED.glob("*.csv.gz")), "rt") as handle:
        lines = [next(handle).rstrip("\n") for _ in range(3001)]
    _write(tmp_path / "train", "train.csv.gz", lines[:2001])
    _write(tmp_path / "test", "test.csv", [lines[0], *lines[2001:]])
    result = CliRunner().invoke(
        app,
        [
            "engage", "eval", "uplift", "--train", str(tmp_path / "train"),
            "--test", str(tmp_path / "test"), "--json", "--folds", "2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["arms"]) == {"Womens", "Mens"}
    for arm in report["arms"].values():
        assert set(arm) == {"visit", "conversion", "spend"}
        for metrics in arm.values():
            assert {"qini", "auuc", "uplift_at_30", "ate", "ate_ci", "model"} <= set(metrics)
            low, high = metrics["ate_ci"]
            assert low <= metrics["ate"] <= high
            assert metrics["model"] in CANDIDATES
    assert report["test_rows"] == 1000
