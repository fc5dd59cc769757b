"""``boostnet.app.report.write_report`` and the comparison configs under ``experiments/configs``."""

import csv
from pathlib import Path

import matplotlib.image
import pytest

from boostnet.app.compare import COLUMNS, CompareConfig, parse_methods, plan, read_rows
from boostnet.app.experiment import read_config
from boostnet.app.report import BARS_PNG, TIME_PNG, UNITS_PNG, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONFIGS = sorted((Path(__file__).resolve().parents[1] / "experiments" / "configs").glob("*.toml"))


def _row(dataset, method, seed, **kw):
    row = {c: None for c in COLUMNS}
    task = "classification" if dataset == "digits" else "regression"
    row.update(
        dataset=dataset,
        method=method,
        seed=seed,
        fold=0,
        status="ok",
        task=task,
        fit_time_s=0.01 * (seed + 1),
        predict_time_s=0.001,
        n_train=100,
        n_test=50,
        n_features=8,
        device="cpu",
        boostnet="0.0.test",
    )
    row.update(kw)
    return row


def synthetic_rows():
    """digits (classification) and diabetes (regression); boostnet is best on digits, hgb on
    diabetes; linear has no units; one error row."""
    rows = []
    for seed in range(3):
        rows.append(_row("digits", "boostnet", seed, accuracy=0.97 + 0.005 * seed, units=40 + seed))
        rows.append(_row("digits", "mlp", seed, accuracy=0.95 + 0.004 * seed, units=100))
        rows.append(_row("digits", "linear", seed, accuracy=0.93 + 0.002 * seed))
        rows.append(_row("diabetes", "boostnet", seed, r2=0.40 + 0.01 * seed, rmse=55.0, units=7))
        rows.append(_row("diabetes", "mlp", seed, r2=0.30 + 0.02 * seed, rmse=60.0, units=100))
        rows.append(_row("diabetes", "linear", seed, r2=0.45 + 0.01 * seed, rmse=53.0))
    rows[-1] = _row(
        "diabetes", "linear", 2, status="error", task=None, error="ValueError: boom @ fit"
    )
    return rows


def _check_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100 and img.shape[2] in (3, 4)


def _check_report(path):
    assert path.name == "report.md"
    text = path.read_text()
    assert text.startswith("# ")
    for m in ("boostnet", "mlp", "linear"):
        assert f"| {m} |" in text or f"| **{m}** |" in text
    # best per data set in bold: boostnet on digits, linear on diabetes
    assert "| digits | **boostnet** | accuracy | **0.9750 +- 0.0050** |" in text
    assert "| diabetes | **linear** | r2 | **0.4550 +- 0.0071** |" in text
    assert "| digits | mlp |" in text
    # the error row, the methods without units, the row count, the images
    assert "| diabetes | linear | 2 | 0 | `ValueError: boom @ fit` |" in text
    assert "left out of this plot: linear." in text
    assert "18 rows: 17 ok, 1 failed" in text
    for name in (UNITS_PNG, TIME_PNG, BARS_PNG):
        assert f"]({name})" in text
        _check_png(path.parent / name)
    return text


def test_write_report_typed_rows(tmp_path):
    path = write_report(synthetic_rows(), tmp_path)
    _check_report(path)
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_report_rows_from_csv(tmp_path):
    csv_path = tmp_path / "rows.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in synthetic_rows():
            w.writerow(r)
    rows = read_rows(csv_path)
    assert isinstance(rows[0]["accuracy"], str)
    out = tmp_path / "report"
    _check_report(write_report(rows, out))
    # csv.DictReader rows keep '' for missing values: the same report
    with open(csv_path, newline="") as fh:
        raw = list(csv.DictReader(fh))
    assert raw[0]["r2"] == ""
    assert write_report(raw, out).read_text() == (out / "report.md").read_text()


def test_write_report_no_errors_no_units(tmp_path):
    rows = [_row("digits", "hgb", s, accuracy=0.9) for s in range(2)]
    text = write_report(rows, tmp_path).read_text()
    assert "No failed runs." in text
    assert "2 rows: 2 ok, 0 failed" in text
    assert "| digits | **hgb** | accuracy | **0.9000 +- 0.0000** |" in text
    # a single successful run has no sd
    one = write_report([_row("digits", "hgb", 0, accuracy=0.9)], tmp_path / "one").read_text()
    assert "| digits | **hgb** | accuracy | **0.9000** |" in one
    assert "left out of this plot: hgb." in text
    assert not (tmp_path / UNITS_PNG).exists()
    _check_png(tmp_path / TIME_PNG)
    _check_png(tmp_path / BARS_PNG)


def test_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {
        "classics.toml",
        "fashion_mnist.toml",
        "bengio2005_double_moon.toml",
        "ablations.toml",
    } <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates(path):
    cfg = CompareConfig.from_mapping(read_config(path))
    cfg.validate()
    first, second = plan(cfg)
    assert first or second
    # a dataset_options table must name a data set of the config (a typo would be ignored)
    assert set(cfg.dataset_options) <= set(cfg.datasets)
    assert parse_methods(cfg.methods)


def test_double_moon_config_split():
    """The Bengio et al. (2005) config keeps 100 training points and a 10000-point test set."""
    from boostnet.app.compare import _split

    path = next(p for p in CONFIGS if p.name == "bengio2005_double_moon.toml")
    cfg = CompareConfig.from_mapping(read_config(path))
    spec = plan(cfg)[0][0]
    task, Xtr, ytr, Xte, yte = _split(spec)
    assert task == "classification"
    assert Xtr.shape == (100, 2) and Xte.shape == (10000, 2)
    assert (ytr == 1).sum() == 50
