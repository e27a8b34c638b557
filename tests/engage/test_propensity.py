"""Propensity: metrics, readers of malformed files, both protocols on small synthetic data,
the CLI, and (when present) a slice of the shared data."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from postwise.cli import app
from postwise.engage.datasets import DatasetError, detect_dataset, read_bank, read_retail
from postwise.engage.propensity import evaluate_folder, load_propensity, train_propensity
from postwise.engage.propensity_metrics import expected_calibration_error, top_decile_lift
from tests.engage.csv_files import write_csv

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "personalization"
RETAIL_HEADER = (
    "row_id,InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)
BANK_HEADER = (
    "row_id,age,job,marital,education,default,housing,loan,contact,month,day_of_week,duration,"
    "campaign,pdays,previous,poutcome,emp.var.rate,cons.price.idx,cons.conf.idx,euribor3m,"
    "nr.employed,y"
)


def _retail_lines(seed: int, start: datetime, days: int, customers: int = 150) -> list[str]:
    """Customers buying at their own rate (some stop half-way), so the future is predictable."""
    rng = np.random.default_rng(seed)
    lines = []
    invoice = 500000 + seed * 100000
    for customer in range(customers):
        rate = rng.choice([0.01, 0.05, 0.15])
        stop = days if rng.random() < 0.6 else days // 2
        for day in range(days):
            if day < stop and rng.random() < rate:
                invoice += 1
                when = start + timedelta(days=day, hours=int(rng.integers(8, 18)))
                lines.append(
                    f"{len(lines)},{invoice},85123A,THING,{rng.integers(1, 12)},"
                    f"{when:%Y-%m-%d %H:%M:%S},2.55,{12000 + customer},United Kingdom"
                )
    return lines


def _bank_lines(seed: int, rows: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        previous_success = rng.random() < 0.1
        cellular = rng.random() < 0.6
        p = 0.03 + 0.5 * previous_success + 0.08 * cellular
        y = "yes" if rng.random() < p else "no"
        lines.append(
            f"{i},{rng.integers(20, 70)},admin.,married,university.degree,no,yes,no,"
            f"{'cellular' if cellular else 'telephone'},may,mon,{rng.integers(10, 900)},"
            f"{rng.integers(1, 5)},{3 if previous_success else 999},{int(previous_success)},"
            f"{'success' if previous_success else 'nonexistent'},1.1,93.994,-36.4,4.857,5191.0,{y}"
        )
    return lines


def test_metrics() -> None:
    label = np.array([0, 0, 0, 0, 1] * 20)
    perfect = label.astype(np.float64)
    assert top_decile_lift(label, perfect) == pytest.approx(5.0)
    assert expected_calibration_error(label, np.full(100, 0.2)) == pytest.approx(0.0)
    assert expected_calibration_error(label, np.full(100, 0.7)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (RETAIL_HEADER.replace(",Quantity", ""), None, "lacks column(s) Quantity"),
        (RETAIL_HEADER, "0,536365,X,Y,six,2010-12-01 08:26:00,2.55,17850,UK", "'Quantity'"),
        (RETAIL_HEADER, "0,536365,X,Y,6,yesterday,2.55,17850,UK", "'InvoiceDate'"),
        (RETAIL_HEADER, "0,536365,X,Y,6,2010-12-01 08:26:00,2.55,abc,UK", "'CustomerID'"),
        ("", None, "empty file"),
        ("a,b,c", None, "unknown schema"),
    ],
)
def test_malformed_retail_files_name_file_and_column(
    tmp_path: Path, header: str, row: str | None, expected: str
) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(header + "\n" + (row + "\n" if row else "") if header else "")
    with pytest.raises(DatasetError) as caught:
        read_retail(tmp_path)
    assert "broken.csv" in str(caught.value)
    assert expected in str(caught.value)


def test_malformed_bank_file_names_line_and_column(tmp_path: Path) -> None:
    lines = _bank_lines(0, 3)
    lines[1] = lines[1].replace(",93.994,", ",n/a,")
    write_csv(tmp_path / "bank.csv.gz", BANK_HEADER, lines)
    with pytest.raises(DatasetError, match=r"bank\.csv\.gz line 3: column 'cons.price.idx'"):
        read_bank(tmp_path)
    assert detect_dataset(tmp_path) == "bank_marketing"


def test_retail_internal_split_and_test_folder(tmp_path: Path) -> None:
    start = datetime(2011, 1, 1)
    lines = _retail_lines(1, start, 300)
    split = start + timedelta(days=240)
    train = [x for x in lines if x.split(",")[5] < f"{split:%Y-%m-%d}"]
    test = [x for x in lines if x.split(",")[5] >= f"{split:%Y-%m-%d}"]
    write_csv(tmp_path / "train" / "a.csv.gz", RETAIL_HEADER, train)
    write_csv(tmp_path / "test" / "b.csv", RETAIL_HEADER, test)
    internal = evaluate_folder(tmp_path / "train")
    assert internal["dataset"] == "online_retail"
    assert internal["auc"] > 0.6
    assert internal["cutoff"] < f"{split:%Y-%m-%d}"
    scored = evaluate_folder(tmp_path / "train", tmp_path / "test")
    assert scored["cutoff"].startswith(f"{split:%Y-%m-%d}")
    assert {"auc", "log_loss", "ece", "top_decile_lift"} <= scored.keys()
    assert scored["rows"] > 50


def test_bank_train_save_load_and_cli(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "bank.csv", BANK_HEADER, _bank_lines(2, 1500))
    card = train_propensity(tmp_path / "data", tmp_path / "model")
    assert "duration" not in card["features"]
    _estimator, loaded = load_propensity(tmp_path / "model")
    assert loaded["version"] == card["version"]
    assert (tmp_path / "model" / "MODEL_CARD.md").is_file()
    result = CliRunner().invoke(
        app, ["engage", "eval", "propensity", "--train", str(tmp_path / "data"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dataset"] == "bank_marketing"
    assert report["auc"] > 0.6
    assert "logistic_regression" in report["baseline"]


def test_cli_reports_a_bad_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    result = CliRunner().invoke(app, ["engage", "eval", "propensity", "--train", str(tmp_path)])
    assert result.exit_code == 1
    assert "empty.csv" in result.output


@pytest.mark.skipif(not (SHARED / "bank_marketing").is_dir(), reason="shared data absent")
def test_cli_on_a_slice_of_the_shared_bank_data(tmp_path: Path) -> None:
    source = next((SHARED / "bank_marketing").glob("*.csv.gz"))
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    write_csv(tmp_path / "slice.csv", lines[0], lines[1::7])  # a slice over the whole period
    result = CliRunner().invoke(
        app, ["engage", "eval", "propensity", "--train", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.6 < report["auc"] <= 1.0
    assert report["rows"] == round(len(lines[1::7]) * 0.3)
