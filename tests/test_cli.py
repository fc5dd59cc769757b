"""The command line, through typer's CliRunner and as the installed entry point."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from boostnet import BoostNetClassifier, __version__
from boostnet.app import bench
from boostnet.app.cli import app

runner = CliRunner()
FAST = ["--n-candidates", "256", "--no-progress"]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _is_png(path):
    import matplotlib.image as mpimg

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return True


def test_version_and_help():
    r = _run("--version")
    assert r.exit_code == 0 and __version__ in r.output
    r = _run("--help")
    assert r.exit_code == 0
    for cmd in ("train", "predict", "evaluate", "datasets", "info"):
        assert cmd in r.output
    r = _run("train", "--help")
    assert r.exit_code == 0 and "--alpha-ratio" in r.output and "--config" in r.output


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """`boostnet train` with no options but the output folder (digits, the defaults)."""
    out = tmp_path_factory.mktemp("runs") / "digits-run"
    r = _run("train", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_train_default_reaches_the_target_and_writes_the_run_dir(default_run):
    out, m = default_run
    assert m["data"] == "digits"
    assert m["test_accuracy"] >= 0.975
    assert m["stop_reason"] == "certificate"
    assert 0 < m["units"] <= 120
    # the certificate's evidence: the default number of clean pools, at a tight re-fit
    c = m["certificate"]
    assert c["kind"] == "sampled" and c["pools"] == BoostNetClassifier().certify_pools
    assert c["best_score"] <= c["alpha"] * (1 + c["tol"]) and c["refit_gap"] <= 1e-6
    for f in (
        "config.toml",
        "metrics.json",
        "history.csv",
        "model.npz",
        "objective.png",
        "metric.png",
        "summary.md",
    ):
        assert (out / f).exists(), f
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] == m["test_accuracy"]
    assert m["cpu"] == bench.cpu_name() and m["cpu"]  # the fit time's provenance names the CPU
    assert _is_png(out / "objective.png") and _is_png(out / "metric.png")
    # the per-phase profile: in metrics.json and, per step, in history.csv
    phases = m["phase_time_s"]
    assert set(phases) == {"sample", "score", "refine", "slide", "refit"}
    assert 0 < sum(phases.values()) <= m["fit_time_s"]
    rows = list(csv.DictReader(open(out / "history.csv")))
    for k in ("refit", "slide"):
        assert sum(float(r[f"time_{k}"]) for r in rows) == pytest.approx(phases[k], rel=1e-6)

    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == m["steps"] + 1
    assert int(rows[-1]["n_units"]) == m["units"]
    assert "boostnet" in (out / "summary.md").read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.parametrize("hint", [None, "OpenBLAS runs its Haswell (AVX2) kernels"])
def test_train_summary_shows_where_the_time_went(hint, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "blas_hint", lambda: hint)
    r = _run("train", "--data", "iris", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 0, r.output
    assert "where the fit's time went" in r.stdout
    assert re.search(r"certificate\s+.*sampled, \d+ pools", r.stdout)
    for phase in ("sample", "score", "refine", "slide", "refit", "other"):
        assert phase in r.stdout
    assert ("note: OpenBLAS runs its Haswell" in r.stdout) == (hint is not None)


def test_predict_and_evaluate_reproduce_the_saved_test_metric(default_run, tmp_path):
    out, m = default_run
    preds = tmp_path / "preds.csv"
    r = _run("predict", out, "--split", "test", "--out", preds)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(preds)))
    assert len(rows) == m["n_test"]
    acc = np.mean([row["prediction"] == row["target"] for row in rows])
    assert acc == pytest.approx(m["test_accuracy"], abs=1e-12)
    r = _run("evaluate", out / "model.npz", "--split", "test", "--json")
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout.strip().splitlines()[-1])
    assert ev["accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-12)
    assert ev["log_loss"] == pytest.approx(m["test_log_loss"], rel=1e-9)
    # on all of digits (standardised with the saved training statistics)
    r = _run("evaluate", out, "--data", "digits")
    assert r.exit_code == 0 and "accuracy" in r.output


def test_config_file_and_command_line_precedence(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "iris"\nmax_units = 2\nalpha_ratio = 0.001\nseed = 3\n')
    r = _run("train", "--config", cfg, "--max-units", "3", "--out", tmp_path / "r", "--json", *FAST)
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["data"] == "iris" and m["units"] == 3 and m["seed"] == 3
    saved = (tmp_path / "r" / "config.toml").read_text()
    assert "max_units = 3" in saved and 'data = "iris"' in saved
    # the saved config reproduces the run
    r2 = _run(
        "train",
        "--config",
        tmp_path / "r" / "config.toml",
        "--out",
        tmp_path / "r2",
        "--json",
        "--no-progress",
    )
    m2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert m2["test_accuracy"] == m["test_accuracy"] and m2["units"] == m["units"]


def test_train_and_compare_read_the_config_file_once(tmp_path, monkeypatch):
    """One merge (defaults < file < command line) serves both commands; the file is read once and
    a key it sets counts as given (an alpha_ratio in the file is a fixed lambda)."""
    import boostnet.app.experiment as experiment

    calls = []
    real = experiment.read_config

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(experiment, "read_config", counting)
    cfg = tmp_path / "run.toml"
    cfg.write_text('data = "iris"\nmax_units = 2\nalpha_ratio = 0.05\n')
    r = _run("train", "--config", cfg, "--out", tmp_path / "r", "--json", *FAST)
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["alpha"] == pytest.approx(0.05 * m["lambda_max"], rel=1e-9)  # a fixed ratio
    assert 'alpha = "ratio"' in (tmp_path / "r" / "config.toml").read_text()
    calls.clear()
    ccfg = tmp_path / "cmp.toml"
    ccfg.write_text('datasets = ["iris"]\nmethods = ["linear"]\nseeds = 1\n')
    r = _run("compare", "--config", ccfg, "--out", tmp_path / "c", "--seeds", "2")
    assert r.exit_code == 0, r.output
    assert len(calls) == 1
    rows = list(csv.DictReader(open(tmp_path / "c" / "rows.csv")))
    assert {int(row["seed"]) for row in rows} == {0, 1}  # the command line beat the file


def test_two_d_data_plots_decision_regions(tmp_path):
    r = _run(
        "train", "--data", "moons", "--n-samples", "300", "--out", tmp_path / "m", "--json", *FAST
    )
    assert r.exit_code == 0, r.output
    assert _is_png(tmp_path / "m" / "regions.png")
    assert json.loads(r.stdout.strip().splitlines()[-1])["test_accuracy"] > 0.9


@pytest.mark.slow
def test_regression_run(tmp_path):
    r = _run(
        "train",
        "--data",
        "friedman1",
        "--n-samples",
        "300",
        "--out",
        tmp_path / "f",
        "--json",
        *FAST,
    )
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["task"] == "regression" and m["test_r2"] > 0.7 and "test_rmse" in m
    # the regressor's default lambda is validated along the path
    assert m["path_points"] >= 2 and (tmp_path / "f" / "path.csv").exists()
    # an explicit --alpha-ratio is a fixed lambda
    r2 = _run(
        "train", "--data", "friedman1", "--n-samples", "300", "--alpha-ratio", "0.05",
        "--out", tmp_path / "g", "--json", *FAST,
    )  # fmt: skip
    assert r2.exit_code == 0, r2.output
    m2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert "path_points" not in m2 and m2["alpha"] == pytest.approx(0.05 * m2["lambda_max"])
    r = _run("evaluate", tmp_path / "f", "--split", "test", "--json")
    assert json.loads(r.stdout.strip().splitlines()[-1])["r2"] == pytest.approx(m["test_r2"])


def test_csv_training_and_predict(tmp_path):
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    path = tmp_path / "wine.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"f{i}" for i in range(X.shape[1])] + ["kind"])
        for row, t in zip(X, y, strict=True):
            w.writerow([*row, ["a", "b", "c"][t]])
    r = _run("train", "--data", path, "--target", "kind", "--out", tmp_path / "w", "--json", *FAST)
    assert r.exit_code == 0, r.output
    r = _run("predict", tmp_path / "w", "--data", path, "--target", "kind")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("prediction,target,p_a,p_b,p_c") and len(lines) == 179


def test_datasets_and_info():
    r = _run("datasets")
    assert r.exit_code == 0
    for name in (
        "digits",
        "iris",
        "wine",
        "breast-cancer",
        "diabetes",
        "moons",
        "circles",
        "xor",
        "double-moon",
        "friedman1",
        "fashion-mnist",
    ):
        assert name in r.output
    r = _run("info")
    assert r.exit_code == 0
    assert "numpy" in r.output and "GPU" in r.output and "CPU threads" in r.output
    assert "BLAS" in r.output


@pytest.mark.parametrize(
    "flags, arch, hinted",
    [({"avx2", "avx512f"}, "Haswell", True), ({"avx2", "avx512f"}, "SkylakeX", False),
     ({"avx2"}, "Haswell", False)],
)  # fmt: skip
def test_info_says_when_openblas_runs_avx2_kernels_on_an_avx512_cpu(
    flags, arch, hinted, monkeypatch
):
    import threadpoolctl

    lib = {"user_api": "blas", "internal_api": "openblas", "version": "0.3.31",
           "architecture": arch, "num_threads": 2, "filepath": "/x/libopenblas.so"}  # fmt: skip
    monkeypatch.setattr(bench, "_cpu_flags", lambda: flags)
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [lib])
    assert bench.blas_libraries() == [
        f"openblas 0.3.31, {arch} kernels, 2 threads (libopenblas.so)"
    ]
    assert (bench.blas_hint() is not None) == hinted
    r = _run("info")
    assert r.exit_code == 0 and ("OPENBLAS_CORETYPE" in r.output) == hinted


def _err(r):
    """The output of a failed command: exactly one non-empty line, no traceback. Returns it."""
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    return lines[0]


def _write(path, text):
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def _foreign_npz(path):
    np.savez(path, a=np.zeros(2))
    return path


#: name -> (command line built from the scratch folder and the default run, exit code, needle)
BAD_INPUT = {
    "missing-file": (lambda t, out: ("train", "--data", t / "missing.csv", *FAST), 1, "not found"),
    "garbage-npz": (
        lambda t, out: ("train", "--data", _write(t / "bad.npz", b"garbage"), *FAST),
        1,
        "bad.npz",
    ),
    "unknown-dataset": (lambda t, out: ("train", "--data", "no-such-set", *FAST), 1, "no-such-set"),
    "missing-target": (
        lambda t, out: (
            "train",
            "--data",
            _write(t / "d.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"),
            "--target",
            "label",
            *FAST,
        ),
        1,
        "label",
    ),
    "non-numeric": (
        lambda t, out: (
            "train",
            "--data",
            _write(t / "s.csv", "a,b,y\n1,x,0\n3,4,1\n5,6,0\n7,8,1\n"),
            *FAST,
        ),
        1,
        "non-numeric",
    ),
    "nan": (
        lambda t, out: (
            "train",
            "--data",
            _write(t / "n.csv", "a,b,y\n1,nan,0\n3,4,1\n5,6,0\n7,8,1\n"),
            *FAST,
        ),
        1,
        "NaN",
    ),
    "one-class": (
        lambda t, out: (
            "train",
            "--data",
            _write(t / "one.csv", "a,b,y\n1,2,k\n3,4,k\n5,6,k\n7,8,k\n"),
            *FAST,
        ),
        1,
        "1 class",
    ),
    "wrong-features": (lambda t, out: ("predict", out, "--data", "iris"), 1, "features"),
    "junk-model": (
        lambda t, out: (
            "evaluate",
            _write(t / "junk.npz", b"PK\x03\x04 not really"),
            "--data",
            "digits",
        ),
        1,
        "junk.npz",
    ),
    "foreign-npz": (
        lambda t, out: ("predict", _foreign_npz(t / "foreign.npz"), "--data", "digits"),
        1,
        "not a boostnet model",
    ),
    "unknown-activation": (lambda t, out: ("train", "--activation", "softplus"), 2, "softplus"),
    "alpha-ratio-above-1": (
        lambda t, out: ("train", "--alpha-ratio", "5", *FAST),
        2,
        "alpha_ratio",
    ),
    "unknown-config-key": (
        lambda t, out: ("train", "--config", _write(t / "bad.toml", "colour = 3\n"), *FAST),
        2,
        "colour",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gives_one_line_errors(case, tmp_path, default_run):
    """Each bad input on its own (one failing case does not hide the others)."""
    out, _ = default_run
    build, code, needle = BAD_INPUT[case]
    r = _run(*build(tmp_path, out))
    assert r.exit_code == code, (needle, r.output)
    assert needle in _err(r), (needle, r.output)


def test_existing_output_directory_is_never_overwritten(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = _run("train", "--data", "iris", "--out", out, *FAST)
    assert r.exit_code == 2 and "already exists" in r.output
    assert (out / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_interrupt_writes_the_model_so_far_and_exits_130(tmp_path, monkeypatch):
    from boostnet.callbacks import StopOnInterrupt

    def interrupt_at_step_3(self, record):
        return "interrupted" if record.step >= 3 else None

    monkeypatch.setattr(StopOnInterrupt, "on_step_end", interrupt_at_step_3)
    r = _run("train", "--out", tmp_path / "i", *FAST)
    assert r.exit_code == 130
    m = json.loads((tmp_path / "i" / "metrics.json").read_text())
    assert m["stop_reason"] == "interrupted" and m["units"] >= 1
    r = _run("evaluate", tmp_path / "i", "--split", "test", "--json")
    assert r.exit_code == 0


def _entry_point():
    exe = shutil.which("boostnet") or str(Path(sys.executable).with_name("boostnet"))
    if not Path(exe).exists():
        pytest.skip("the boostnet console script is not installed in this environment")
    return exe


def test_installed_entry_point_runs(tmp_path):
    out = subprocess.run(
        [_entry_point(), "train", "--data", "wine", "--json", "--out", str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["data"] == "wine"


def _wait_for(proc, pattern, deadline_s):
    """Read ``proc``'s stderr in a thread until ``pattern`` appears (True) or the deadline or the
    process's end comes first (False). The reader keeps draining stderr afterwards; returns the
    pattern's outcome and a function giving everything read so far."""
    import re
    import threading

    chunks, seen = [], threading.Event()
    regex = re.compile(pattern)

    def reader():
        while True:
            data = os.read(proc.stderr.fileno(), 4096)
            if not data:
                return
            chunks.append(data.decode(errors="replace"))
            if regex.search("".join(chunks[-4:])):
                seen.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    end = time.monotonic() + deadline_s
    while not seen.is_set() and proc.poll() is None and time.monotonic() < end:
        seen.wait(0.05)

    def text():
        thread.join(timeout=30)
        return "".join(chunks)

    return seen.is_set(), text


@pytest.mark.slow
def test_real_ctrl_c_stops_at_the_end_of_a_step(tmp_path):
    """SIGINT to the running command: the run directory is written and the exit code is 130."""
    proc = subprocess.Popen(
        [
            _entry_point(),
            "train",
            # a fit that runs far longer than it takes to reach step 3 (20 s measured to reach
            # 300 units)
            "--data",
            "friedman1",
            "--n-samples",
            "20000",
            "--alpha-ratio",
            "0.00001",
            "--units-per-step",
            "1",
            "--max-time",
            "120",
            "--out",
            str(tmp_path / "c"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # FORCE_COLOR: rich draws the live progress line on the pipe too (the readiness signal)
        env={**os.environ, "PYTHONUNBUFFERED": "1", "FORCE_COLOR": "1"},
    )
    try:
        # interrupt once a few steps are done (the handler is installed), not after a fixed sleep
        ready, stderr = _wait_for(proc, r"step [3-9]|step \d\d", deadline_s=120)
        assert ready, f"no progress line 'step 3' within 120 s (exit {proc.poll()})"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert m["stop_reason"] == "interrupted" and m["units"] >= 3


@pytest.mark.skipif(
    not FASHION.exists(),
    reason="Debian package dataset-fashion-mnist not "
    "installed (apt-get install dataset-fashion-mnist)",
)
@pytest.mark.slow
@pytest.mark.timeout(1200)  # ~70 s alone; several times that on a loaded machine
def test_fashion_mnist_end_to_end(tmp_path):
    r = _run(
        "train",
        "--data",
        "fashion-mnist",
        "--train-size",
        "10000",
        "--out",
        tmp_path / "fm",
        "--json",
        "--no-progress",
        # a certified fit at 10 000 x 784 takes minutes on 2 cores; the end-to-end path is what
        # is tested here (experiments/speed_suite.py measures the fit)
        "--max-time",
        "60",
    )
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["n_train"] == 10000 and m["n_test"] == 10000 and m["official_split"]
    assert m["test_accuracy"] > 0.8
    print(
        f"\nfashion-mnist --train-size 10000: test accuracy {m['test_accuracy']:.4f}, "
        f"{m['units']} units, stop {m['stop_reason']}, fit {m['fit_time_s']:.1f} s"
    )


def test_bench_json_on_cpu():
    r = _run(
        "bench",
        "--device",
        "cpu",
        "--n",
        "500",
        "--d",
        "20",
        "--m",
        "300",
        "--repeat",
        "2",
        "--json",
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["device"] == "cpu" and res["shape"] == {"n": 500, "d": 20, "m": 300, "k": 10}
    assert res["scoring_s"] > 0 and res["gemm_s"] > 0
    assert res["ratio"] == pytest.approx(res["scoring_s"] / res["gemm_s"])
    assert res["tflops"] == pytest.approx(2 * 500 * 20 * 300 / res["scoring_s"] / 1e12)
    r = _run("bench", "--activation", "softplus")
    assert r.exit_code == 2
    r = _run("bench", "--n", "50", "--d", "3", "--m", "40", "--cpt", "3")
    assert r.exit_code == 2 and "cpt must be 1, 2 or 4" in r.output  # a usage error


def test_train_alpha_auto_writes_the_path(tmp_path):
    out = tmp_path / "auto"
    r = _run(
        "train",
        "--data",
        "wine",
        "--path",
        "--n-alphas",
        "6",
        "--alpha-min-ratio",
        "0.01",
        "--out",
        out,
        *FAST,
    )
    assert r.exit_code == 0, r.output
    assert "regularisation path" in r.output
    rows = list(csv.DictReader(open(out / "path.csv")))
    assert len(rows) == 6
    assert sum(row["chosen"] == "True" for row in rows) == 1
    chosen = next(row for row in rows if row["chosen"] == "True")
    m = json.loads((out / "metrics.json").read_text())
    assert float(chosen["alpha"]) == pytest.approx(m["alpha"])
    assert m["path_points"] == 6
    # the chosen lambda has the best held-out criterion (the classifier's default selection);
    # the test metric is only reported
    val = [float(row["val_score"]) for row in rows]
    best = int(np.argmax(val))
    assert rows.index(chosen) == best
    assert _is_png(out / "path.png")
    from boostnet.io import load_path

    saved = load_path(out / "path.npz")
    assert [p.n_units for p in saved.points] == [int(row["n_units"]) for row in rows]
    assert 'alpha = "auto"' in (out / "config.toml").read_text()
    # the saved configuration re-runs it
    r2 = _run("train", "--config", out / "config.toml", "--out", tmp_path / "again", "--json")
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout.strip().splitlines()[-1])["alpha"] == m["alpha"]
    # --selection 1se: the largest lambda within one standard error of the best
    r3 = _run("train", "--config", out / "config.toml", "--selection", "1se", "--json",
              "--out", tmp_path / "1se")  # fmt: skip
    assert r3.exit_code == 0, r3.output
    within = [v >= val[best] - float(rows[best]["val_se"]) for v in val]
    alpha_1se = float(rows[within.index(True)]["alpha"])
    assert json.loads(r3.stdout.strip().splitlines()[-1])["alpha"] == pytest.approx(alpha_1se)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "inf"])
def test_train_bad_alpha_is_a_usage_error(value, tmp_path):
    r = _run("train", "--data", "iris", "--alpha", value, "--out", tmp_path / "x", *FAST)
    assert r.exit_code == 2
    assert "--alpha must be a positive number, 'auto' or 'ratio'" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "x").exists()


def test_train_numeric_alpha(tmp_path):
    r = _run("train", "--data", "iris", "--alpha", "0.01", "--out", tmp_path / "a", "--json", *FAST)
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["alpha"] == 0.01 and "path_points" not in m
    assert not (tmp_path / "a" / "path.csv").exists()


def test_every_train_default_is_the_estimators():
    """One source of defaults: an option left out means the estimator's own default (a `None`
    here once made `--alpha auto` walk the whole lambda grid: path_patience)."""
    import inspect
    from enum import Enum

    from boostnet import BoostNetClassifier
    from boostnet.app.cli import train

    est = BoostNetClassifier().get_params()
    # options whose None means "the estimator decides" (alpha, selection: per task; max_time:
    # none)
    deferred = {"alpha", "max_time", "selection"}
    checked = 0
    for name, p in inspect.signature(train).parameters.items():
        if name not in est or name in deferred or name == "callbacks":
            continue
        default = p.default.value if isinstance(p.default, Enum) else p.default
        assert default == est[name], name
        checked += 1
    assert checked >= 20


def test_inputs_too_large_for_the_screen_are_one_line_and_write_nothing(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 2)) * 1e154
    data = tmp_path / "huge.csv"
    np.savetxt(data, np.column_stack([X, X[:, 0] > 0]), delimiter=",", header="a,b,y", comments="")
    r = _run("train", "--data", data, "--no-standardize", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "standardise the features" in lines[0], r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "r").exists()
