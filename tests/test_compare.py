"""boostnet compare: methods, runs, rows, resume, parallel runs, the command."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from boostnet import BoostNetClassifier
from boostnet.app.cli import app
from boostnet.app.compare import (
    COLUMNS,
    METHODS,
    CompareConfig,
    MethodEntry,
    RandomFeaturesL1,
    RunSpec,
    build_estimator,
    compare,
    parse_methods,
    read_rows,
    run_one,
    summarize,
)
from boostnet.exceptions import ConfigError

runner = CliRunner()
SMALL = dict(datasets=["wine", "iris"], methods=["boostnet", "linear", "mlp-matched"], seeds=2)


def _key(r):
    return (r["dataset"], r["method"], int(r["seed"]), int(r["fold"]))


def test_method_registry_and_parsing():
    entries = parse_methods("boostnet,mlp")
    assert [e.name for e in entries] == ["boostnet", "mlp"]
    entries = parse_methods(
        ["hgb", {"name": "bn-tanh", "method": "boostnet", "activation": "tanh"}]
    )
    assert entries[1] == MethodEntry("bn-tanh", "boostnet", {"activation": "tanh"})
    with pytest.raises(ConfigError, match="unknown method"):
        parse_methods("boostnet,svm")
    with pytest.raises(ConfigError, match="unique"):
        parse_methods("mlp,mlp")
    for name in METHODS:
        task = "classification"
        est = build_estimator(MethodEntry(name, name), task, 0, matched_units=7)
        assert hasattr(est, "fit")
    assert build_estimator(
        MethodEntry("m", "mlp-matched"), "classification", 0, matched_units=7
    ).hidden_layer_sizes == (7,)
    assert (
        build_estimator(MethodEntry("a", "boostnet-stagewise"), "regression", 0).corrective is False
    )
    assert (
        build_estimator(MethodEntry("a", "boostnet-no-refine"), "classification", 0).refine is False
    )
    assert (
        build_estimator(MethodEntry("a", "boostnet-random-sampler"), "classification", 0).sampler
        == "random"
    )
    assert build_estimator(MethodEntry("a", "boostnet-auto"), "regression", 0).alpha == "auto"
    cv = build_estimator(MethodEntry("a", "boostnet-cv", {"cv": 3}), "classification", 4)
    assert type(cv).__name__ == "BoostNetClassifierCV" and cv.cv == 3 and cv.random_state == 4


def test_random_features_l1_solves_the_l1_problem_on_its_pool():
    from sklearn.datasets import make_moons

    X, y = make_moons(200, noise=0.2, random_state=0)
    est = RandomFeaturesL1(n_units=64, random_state=0).fit(X, y)
    assert est.score(X, y) > 0.85
    assert 0 < est.n_units_ < 64  # the L1 penalty zeroed some units of the pool
    # the pool comes from boostnet's candidate distribution: unit-norm relu units
    norms = np.sqrt((est.W_**2).sum(axis=1) + est.c_**2)
    np.testing.assert_allclose(norms, 1.0)


def test_rows_are_reproducible_from_the_seed():
    """The same (dataset, method, seed) gives the same metrics (saga's shuffling is seeded)."""
    spec = RunSpec("wine", {}, MethodEntry("rf", "random-features-l1"), 1, 0, None, 0.25)
    a, b = run_one(spec), run_one(spec)
    assert (a["log_loss"], a["units"]) == (b["log_loss"], b["units"])


def test_run_one_rows_and_error_rows():
    row = run_one(RunSpec("wine", {}, MethodEntry("boostnet", "boostnet"), 0, 0, None, 0.25))
    assert set(row) == set(COLUMNS)
    assert row["status"] == "ok" and row["task"] == "classification"
    assert 0.8 < row["accuracy"] <= 1 and row["log_loss"] > 0
    assert row["units"] >= 1 and row["model_size"] > row["units"]
    # certified: best score - lambda <= lambda tol, with lambda < 1e-2 here
    tol = BoostNetClassifier().tol
    assert row["stop_reason"] == "certificate" and row["certificate_gap"] < 1e-2 * tol
    bad = run_one(RunSpec("no-such-data", {}, MethodEntry("mlp", "mlp"), 0, 0, None, 0.25))
    assert bad["status"] == "error" and "no-such-data" in bad["error"]
    reg = run_one(RunSpec("diabetes", {}, MethodEntry("linear", "linear"), 1, 0, None, 0.25))
    assert reg["status"] == "ok" and reg["r2"] > 0.3 and reg["rmse"] > 0


def test_cross_validation_folds_cover_the_data():
    cfg = CompareConfig(datasets=["iris"], methods=["linear"], seeds=1, cv=3)
    res = compare(cfg)
    assert sorted(r["fold"] for r in res.rows) == [0, 1, 2]
    assert sum(r["n_test"] for r in res.rows) == 150


@pytest.mark.slow
def test_compare_writes_rows_resumes_and_matches_units(tmp_path):
    cfg = CompareConfig(**SMALL)
    res = compare(cfg, out=tmp_path / "c")
    rows = read_rows(tmp_path / "c" / "rows.csv")
    assert len(rows) == 2 * 3 * 2 and all(r["status"] == "ok" for r in rows)
    inv = json.loads((tmp_path / "c" / "invocation.json").read_text())
    assert "environment" in inv and inv["config"]["seeds"] == 2
    assert inv["cpu"]  # fit times depend on the CPU: its model is recorded
    # mlp-matched has as many hidden units as boostnet chose on the same split
    by = {_key(r): r for r in res.rows}
    for (ds, m, seed, fold), r in by.items():
        if m == "mlp-matched":
            assert r["units"] == by[(ds, "boostnet", seed, fold)]["units"]
    # an existing output is not overwritten without --resume
    with pytest.raises(ConfigError, match="resume"):
        compare(cfg, out=tmp_path / "c")
    # resume with one more seed runs only the new runs
    cfg3 = CompareConfig(**{**SMALL, "seeds": 3})
    seen = []
    compare(cfg3, out=tmp_path / "c", resume=True, progress=lambda d, t, r: seen.append(_key(r)))
    assert len(seen) == 2 * 3 and {k[2] for k in seen} == {2}
    rows = read_rows(tmp_path / "c" / "rows.csv")
    assert len(rows) == 18 and len({_key(r) for r in rows}) == 18


@pytest.mark.slow
def test_parallel_jobs_give_the_same_rows(tmp_path):
    cfg = CompareConfig(datasets=["wine"], methods=["boostnet", "linear"], seeds=2)
    a = compare(cfg, out=tmp_path / "a", jobs=1)
    b = compare(cfg, out=tmp_path / "b", jobs=2)
    skip = {"fit_time_s", "predict_time_s", "started"}
    ra = sorted(a.rows, key=_key)
    rb = sorted(b.rows, key=_key)
    assert [{k: v for k, v in r.items() if k not in skip} for r in ra] == [
        {k: v for k, v in r.items() if k not in skip} for r in rb
    ]


def test_interrupt_keeps_finished_rows(tmp_path, monkeypatch):
    import boostnet.app.compare as cmp

    calls = {"n": 0}
    real = cmp.run_one

    def flaky(spec):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(cmp, "run_one", flaky)
    res = compare(CompareConfig(datasets=["iris"], methods=["linear"], seeds=5), out=tmp_path / "i")
    assert res.interrupted
    assert len(read_rows(tmp_path / "i" / "rows.csv")) == 2


def test_summary_marks_the_best():
    rows = [
        {
            "dataset": "d",
            "method": "a",
            "status": "ok",
            "task": "classification",
            "accuracy": 0.9,
            "units": 3,
            "fit_time_s": 1.0,
        },
        {
            "dataset": "d",
            "method": "b",
            "status": "ok",
            "task": "classification",
            "accuracy": 0.95,
            "units": None,
            "fit_time_s": 2.0,
        },
        {"dataset": "d", "method": "b", "status": "error", "task": None, "fit_time_s": None},
    ]
    s = {x["method"]: x for x in summarize(rows)}
    assert s["b"]["best"] and not s["a"]["best"] and s["b"]["errors"] == 1


def test_cli_compare_small_and_errors(tmp_path):
    r = runner.invoke(
        app,
        [
            "compare",
            "--datasets",
            "iris",
            "--methods",
            "boostnet,linear",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "iris" in r.output and "boostnet" in r.output and "*" in r.output
    assert (tmp_path / "x" / "rows.csv").exists()
    r = runner.invoke(app, ["compare", "--methods", "boostnet,svm", "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "svm" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["compare", "--list-methods"])
    assert r.exit_code == 0 and "random-features-l1" in r.output
    r = runner.invoke(
        app,
        [
            "compare",
            "--datasets",
            "iris",
            "--methods",
            "linear",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert r.exit_code == 2 and "--resume" in r.output
