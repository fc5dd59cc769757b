"""boostnet's GPU branches on the CPU, through a strict NumPy stand-in for CuPy (tests/support/fake_cupy).

The stand-in refuses what a card refuses (implicit device-to-host conversion, host arrays in device
operations), rounds float32 GEMM inputs to TF32 while that compute type is on, builds the epilogue
kernel's CUDA source with g++ for ``RawModule``, and counts bytes copied each way. So the
device-resident loop, the scorer's RawModule launch, ``--device gpu`` on the command line and
``boostnet bench`` all run here, and a host/device slip fails here rather than on the first GPU run.
What it cannot check (NVRTC, cuBLAS, speed) is in tests/test_gpu.py and experiments/gpu_check.py.
"""

import json

import numpy as np
import pytest
from score_ref import assert_sign_scores, scores_by_hand

from boostnet.activations import ACTIVATIONS
from boostnet.app.bench import random_pool
from boostnet.penalties import L1, GroupL1
from boostnet.scoring import reference_scores

#: Screening error allowed, as a share of the best score (same as tests/test_gpu.py).
TOL = {"tf32": 5e-3, "fp16": 1e-2}


@pytest.fixture(scope="module")
def small_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-9)
    return X, y


def test_the_stand_in_refuses_what_a_gpu_refuses(fake_cupy):
    cp = fake_cupy
    a = cp.asarray(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Unsupported type"):
        a + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        a[np.array([0])]
    with pytest.raises(TypeError, match="incorrect type"):
        cp.ascontiguousarray(np.ones(3))
    s = a.sum()
    assert isinstance(s, cp.ndarray) and float(s) == 15.0
    assert cp._fake.h2d_bytes == 48 and cp._fake.d2h_bytes == 8
    host = np.ones(3)
    b = cp.asarray(host)
    host[0] = 5.0  # the device copy is not an alias of the host array
    assert float(b[0]) == 1.0


def test_gpu_device_resolves_to_the_stand_in(fake_cupy, monkeypatch):
    from boostnet._backend import gpu_status, resolve_device

    assert resolve_device("gpu").name == "gpu"
    monkeypatch.setenv("BOOSTNET_DEVICE", "gpu")
    assert resolve_device(None).xp is fake_cupy
    ok, name = gpu_status()
    assert ok and "FakeCuPy" in name


def test_auto_takes_the_gpu_only_from_enough_training_rows(fake_cupy, monkeypatch, small_digits):
    from boostnet import BoostNetClassifier, _backend
    from boostnet._backend import AUTO_GPU_MIN_ROWS, resolve_device

    assert resolve_device("auto", n_rows=AUTO_GPU_MIN_ROWS).name == "gpu"
    assert resolve_device("auto").name == "gpu"  # rows unknown
    assert resolve_device("gpu", n_rows=10).name == "gpu"  # an explicit GPU is kept
    imports = []
    real = _backend._import_cupy
    monkeypatch.setattr(_backend, "_import_cupy", lambda: imports.append(1) or real())
    assert resolve_device("auto", n_rows=AUTO_GPU_MIN_ROWS - 1).name == "cpu"
    assert not imports  # the CPU chosen without importing CuPy
    X, y = small_digits  # 600 rows
    kw = dict(max_units=2, n_candidates=64, random_state=0)
    assert BoostNetClassifier(**kw).fit(X, y).device_ == "cpu"
    monkeypatch.setattr(_backend, "AUTO_GPU_MIN_ROWS", 600)
    assert BoostNetClassifier(**kw).fit(X, y).device_ == "gpu"
    assert BoostNetClassifier(**kw).fit(X[:599], y[:599]).device_ == "cpu"


@pytest.mark.parametrize("screen", ["tf32", "fp16"])
@pytest.mark.parametrize(
    ("act_name", "K"), [("relu", 1), ("tanh", 10), ("sigmoid", 3), ("sign", 32)]
)
def test_rawmodule_scorer_matches_the_float64_reference(fake_cupy, screen, act_name, K):
    from boostnet.gpu_scoring import GpuScorer

    cp = fake_cupy
    act = ACTIVATIONS[act_name]
    X, G, W, c = random_pool(211, 19, 333, K, 7 * K, act)
    pen = GroupL1 if K == 3 else L1
    ref = scores_by_hand(X, W, c, G, act_name, pen)
    rl = cp._core._routines_linalg
    before = rl.get_compute_type(np.float32)
    scorer = GpuScorer(cp.asarray(X), screen=screen, chunk=128, rows_per_block=64)
    res = scorer.score(cp.asarray(W), cp.asarray(c), cp.asarray(G), act, pen, k=32)
    assert rl.get_compute_type(np.float32) == before  # TF32 only around the screening GEMM
    assert cp._fake.launches == 3  # 333 candidates in chunks of 128, one kernel launch each
    assert cp._fake.gemms["tf32" if screen == "tf32" else "fp16"] == 3
    scores = cp.asnumpy(res.scores)
    if act_name != "sign":
        np.testing.assert_allclose(scores, ref, rtol=0, atol=TOL[screen] * np.abs(ref).max())
        if screen == "tf32":  # from the TF32-rounded inputs: only float32 accumulation is left
            ref32 = scores_by_hand(X, W, c, G, act_name, pen, rounding="tf32")
            np.testing.assert_allclose(scores, ref32, rtol=0, atol=1e-5 * np.abs(ref).max())
    else:
        # sign: the pre-activations from the inputs as the screen rounds them (TF32, or float16
        # inputs with a float16 product); either sign only at points within that rounding of z = 0
        rounding = "tf32" if screen == "tf32" else "float16"
        mag = np.abs(X) @ np.abs(W).T
        z_eps = 1e-5 * (mag + np.abs(c)) if screen == "tf32" else 2e-3 * mag
        assert_sign_scores(scores, X, W, c, G, pen, rounding, rtol=1e-5, z_eps=z_eps)
    assert int(res.top[0]) == int(np.argmax(ref))
    assert res.top_scores[0] == pytest.approx(ref.max(), rel=1e-10)


def test_out_of_memory_from_the_allocator_halves_the_chunk(fake_cupy):
    from boostnet.gpu_scoring import GpuScorer

    cp = fake_cupy
    act = ACTIVATIONS["relu"]
    X, G, W, c = random_pool(100, 6, 700, 2, 3, act)
    scorer = GpuScorer(cp.asarray(X), screen="tf32", chunk=512, rows_per_block=32)
    cp._fake.alloc_limit = 100 * 200 * 4  # a 512- or 256-candidate buffer does not fit; 128 does
    res = scorer.score(cp.asarray(W), cp.asarray(c), cp.asarray(G), act, L1, k=8)
    assert scorer.chunk == 128
    ref = reference_scores(X, W, c, G, act, L1)
    np.testing.assert_allclose(cp.asnumpy(res.scores), ref, rtol=0, atol=5e-3 * np.abs(ref).max())
    assert int(res.top[0]) == int(np.argmax(ref))


def test_pairs_sampler_picks_the_same_units_on_both_devices(fake_cupy, small_digits):
    # pairs are index-based, drawn on the host from the same generator: both devices see the same
    # candidates, and the exact re-score of the screen's top-k picks the same unit each step
    from boostnet import BoostNetClassifier

    X, y = small_digits
    kw = dict(random_state=0, sampler="pairs", refine=False, max_units=8, n_candidates=512)
    cpu = BoostNetClassifier(device="cpu", **kw).fit(X, y)
    gpu = BoostNetClassifier(device="gpu", **kw).fit(X, y)
    assert gpu.device_ == "gpu" and isinstance(gpu.coef_, np.ndarray)
    assert gpu.n_units_ == cpu.n_units_ == 8
    np.testing.assert_allclose(gpu.hidden_weights_, cpu.hidden_weights_, atol=1e-9)
    # the same re-fit problems, solved to the re-fit's tolerance: the device forms its curvature
    # models in other sums (batched over the outputs), so the iterates agree to that, not bitwise
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=1e-6, atol=1e-6 * abs(cpu.coef_).max())
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_the_fit_stays_on_the_device(fake_cupy, small_digits):
    # per step only scalars, the top-k, the re-fit's small curvature matrices (K x m x m per
    # Newton iteration) and (for the gradient-weighted pairs) one n-vector come back; candidates
    # are built on the device, so no M x d block goes over per step
    from boostnet import BoostNetClassifier

    cp = fake_cupy
    X, y = small_digits
    n, d = X.shape
    M = 1024
    est = BoostNetClassifier(
        device="gpu", random_state=1, n_candidates=M, max_units=10, units_per_step=1
    )
    est.fit(X, y)
    steps = len(est.history_)
    assert est.n_units_ >= 8 and steps >= 8
    K = est.coef_.shape[1]
    one_off = 8 * (n * d + n * K + n) + 8 * (est.n_units_ + 1) * (d + 1 + K)  # data in, model out
    assert cp._fake.d2h_bytes <= one_off + steps * (8 * n + 64 * 1024)
    assert cp._fake.h2d_bytes <= one_off + steps * 32 * M  # a few M-vectors, never M x d
    assert 32 * M < 8 * M * d  # ... which is what the bound rules out
    assert cp._fake.launches >= est.n_units_  # one screen (one chunk of 1024) per unit added


def test_auto_alpha_path_runs_on_the_device(fake_cupy):
    from sklearn.datasets import load_diabetes

    from boostnet import BoostNetRegressor

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    est = BoostNetRegressor(
        device="gpu", alpha="auto", n_alphas=4, n_candidates=256, random_state=0, max_units=30
    ).fit(X[:250], y[:250])
    assert est.device_ == "gpu"
    assert len(est.path_.points) >= 2
    assert all(np.isfinite(p.val_score) for p in est.path_.points)
    # the held-out per-row losses come back from the device: each point has its standard error
    assert all(p.val_se is not None and p.val_se > 0 for p in est.path_.points)
    assert est.alpha_ == est.path_.points[est.path_.best_index("1se")].alpha
    assert est.score(X[250:], y[250:]) > 0.2


def test_cli_train_and_bench_on_the_device(fake_cupy, tmp_path):
    from typer.testing import CliRunner

    from boostnet.app.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--device",
            "gpu",
            "--max-units",
            "4",
            "--n-candidates",
            "256",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["device"] == "gpu"
    r = runner.invoke(
        app,
        [
            "bench",
            "--device",
            "gpu",
            "--n",
            "300",
            "--d",
            "20",
            "--m",
            "500",
            "--repeat",
            "1",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)
    assert row["device"] == "gpu" and "FakeCuPy" in row["device_name"]
    assert row["screen"] == "tf32" and row["scoring_s"] > 0 and row["gemm_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(900)  # the subprocess has its own 600 s limit; ~20 s alone, 110 s loaded
def test_the_gpu_test_file_passes_on_the_stand_in():
    # tests/test_gpu.py skips here without a GPU; on the stand-in it runs, so its own mistakes show
    # up now, not in the few minutes a GPU machine is lent
    import os
    import subprocess
    import sys
    from pathlib import Path

    from kernel_emu import available

    if available() is not None:
        pytest.skip(available())
    tests = Path(__file__).parent
    support = tests / "support"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(support / "fake_cupy"), str(support)]))
    env.pop("BOOSTNET_DEVICE", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-cov",  # (the coverage table would print "skipped" for fully covered files)
            str(tests / "test_gpu.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tests.parent,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-1000:]


@pytest.mark.parametrize(
    "kind,penalty", [("softmax", GroupL1(0.004)), ("softmax", L1(0.004)), ("squared", L1(0.02))]
)
def test_the_refit_runs_on_the_device_with_small_transfers(fake_cupy, kind, penalty):
    """The proximal Newton re-fit on device arrays: the same solution as on the host, and only
    the small model (K x m x m per rebuild, m x K, scalars) crosses, never an n x m block."""
    from boostnet.datafits import SoftmaxCrossEntropy, SquaredError
    from boostnet.refit import refit
    from boostnet.samplers import RandomDirections
    from boostnet.scoring import transform

    cp = fake_cupy
    rng = np.random.default_rng(0)
    n, m, K = 2000, 12, 4
    X = rng.standard_normal((n, 3))
    act = ACTIVATIONS["relu"]
    W, c = RandomDirections().sample(X, None, m, rng, act, 1.0)
    H = transform(X, W, c, act)
    if kind == "softmax":
        datafit = SoftmaxCrossEntropy()
        Y = np.eye(K)[np.argmax(X @ rng.standard_normal((3, K)), axis=1)]
    else:
        datafit = SquaredError()
        Y = np.sin(X[:, :K].repeat(2, axis=1)[:, :K])
    a = np.full(n, 1.0 / n)
    b0 = datafit.intercept(Y, a)
    host = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), b0, tol=1e-9)
    Hd, Yd, ad = cp.asarray(H), cp.asarray(Y), cp.asarray(a)
    cp._fake.reset()
    dev = refit(Hd, Yd, ad, datafit, penalty, cp.zeros((m, K)), cp.asarray(b0), tol=1e-9)
    assert dev.converged and host.converged
    assert isinstance(dev.coef, cp.ndarray) and isinstance(dev.F, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(dev.coef), host.coef, rtol=1e-6, atol=1e-8)
    assert dev.objective == pytest.approx(host.objective, rel=1e-10)
    per_iter = 8 * (K * m * m + 4 * m * K + 16 * K) + 4096  # the model, W, gradients, scalars
    assert cp._fake.d2h_bytes <= (dev.n_iter + 2) * per_iter
    assert cp._fake.d2h_bytes < 8 * n * m  # ... which is less than one copy of H


@pytest.mark.parametrize("gram_bytes", [1 << 28, 300 * 6 * 4], ids=["one-batch", "per-output"])
def test_a_shed_curvature_model_builds_on_the_device(fake_cupy, gram_bytes, monkeypatch):
    # the re-fit's model drops each output's lightest rows with device sorts, all outputs at once,
    # and forms the matrices in batched products over the outputs (a few at a time where the
    # batch would be large): the same matrices as on the host
    from boostnet import refit as refit_module
    from boostnet.refit import CurvatureModel

    monkeypatch.setattr(refit_module, "_DEVICE_GRAM_BYTES", gram_bytes)
    rng = np.random.default_rng(3)
    H = rng.standard_normal((300, 6))
    C = np.where(rng.random((300, 4)) < 0.2, 1.0, 1e-6) * rng.random((300, 4))
    host = CurvatureModel.build(H, C, False, shed=1e-2)
    dev = CurvatureModel.build(fake_cupy.asarray(H), fake_cupy.asarray(C), False, shed=1e-2)
    assert (host.C == 0).sum() >= 4 * 150
    np.testing.assert_allclose(dev.B, host.B, rtol=1e-6, atol=1e-6 * abs(host.B).max())
    np.testing.assert_allclose(dev.hc, host.hc, rtol=1e-6)
    np.testing.assert_allclose(dev.s, host.s, rtol=1e-6)


def test_a_nearly_constant_unit_s_offset_is_taken_on_the_device(fake_cupy):
    # the model's offsets (refit._offsets: a bias-dominated unit's mean taken off before the
    # float32 products) are found from device arrays, built and carried as on the host
    from boostnet.refit import CurvatureModel

    rng = np.random.default_rng(4)
    H = np.column_stack([rng.standard_normal(300), 0.4 + 1e-7 * rng.standard_normal(300)])
    C = rng.random((300, 3)) + 0.2
    host = CurvatureModel.build(H, C, False)
    dH, dC = fake_cupy.asarray(H), fake_cupy.asarray(C)
    for dev in (
        CurvatureModel.build(dH, dC, False),
        CurvatureModel.build(dH[:, :1], dC, False).extend(dH),
    ):
        assert dev.offset is not None and dev.offset[1] == pytest.approx(0.4)
        np.testing.assert_allclose(dev.offset, host.offset, rtol=1e-12)
        np.testing.assert_allclose(dev.B, host.B, rtol=1e-5, atol=1e-6 * abs(host.B).max())
        np.testing.assert_allclose(dev.centred()[0], host.centred()[0], rtol=1e-4)


def test_the_whitened_slide_runs_on_the_device(fake_cupy, small_digits, monkeypatch):
    # the whitening metric's moment is formed on the device, inverted on the host, and sent back
    # once per fit: the same descent as on the CPU
    from boostnet import BoostNetClassifier, _greedy

    monkeypatch.setattr(_greedy, "_WHITEN_SLIDE", True)
    X, y = small_digits
    gpu = BoostNetClassifier(device="gpu", random_state=1, n_candidates=512, max_units=10).fit(X, y)
    assert gpu.device_ == "gpu"
    assert any(r.slide_steps > 0 for r in gpu.history_)
    assert all(np.isfinite(r.objective) for r in gpu.history_)
    assert gpu.score(X, y) > 0.8


def test_working_set_refits_run_on_the_device(fake_cupy, small_digits, monkeypatch):
    # the tail's partial re-fits (boostnet._greedy.PartialRefit) gather the working set's columns
    # and form the others' predictions on the device: the fit stays there and still certifies
    from refit_spy import spy_partial_refits

    from boostnet import BoostNetClassifier

    names = spy_partial_refits(monkeypatch, 4)
    X, y = small_digits
    gpu = BoostNetClassifier(device="gpu", random_state=1, n_candidates=512, max_units=40).fit(X, y)
    assert gpu.device_ == "gpu"
    assert "working_set" in names
    assert gpu.stop_reason_ in ("certificate", "max_units")
    assert all(np.isfinite(r.objective) for r in gpu.history_)


def test_both_devices_read_the_same_lambda_max(fake_cupy, eleven_classes):
    # each device draws its own pools, yet lambda_max (the supremum of the score at the
    # intercept-only model) comes from a harder-searched first pool, found on both: the default
    # lambda names one problem on either device (with _EXACT_LAMBDA_MAX off: 0.2005-0.2022)
    from boostnet import BoostNetClassifier

    X, y = eleven_classes
    lm = {
        dev: [
            BoostNetClassifier(device=dev, max_units=1, random_state=s).fit(X, y).lambda_max_
            for s in range(2)
        ]
        for dev in ("cpu", "gpu")
    }
    ref = lm["cpu"][0]
    assert all(abs(v - ref) <= 1e-5 * ref for v in lm["cpu"] + lm["gpu"]), lm
