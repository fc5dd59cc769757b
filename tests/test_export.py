"""Export to a scikit-learn MLP (``to_mlp``, ``boostnet export --format sklearn``) and to ONNX.

The same classes, and probabilities / predictions within 1e-6 relative between boostnet and the MLP
(float64), within 1e-5 relative through ONNX's float32 (with an absolute floor of 1e-6 of the largest
magnitude: a probability near 0 has no relative float32 accuracy left).
"""

import csv
import json
import pickle
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from typer.testing import CliRunner

import boostnet
from boostnet.app.cli import app
from boostnet.exceptions import ConfigError
from boostnet.export import export_model, run_onnx, to_onnx, to_pipeline

runner = CliRunner()
FAST = dict(n_candidates=512, max_units=15, random_state=0)
DATA = {"digits": load_digits, "breast-cancer": load_breast_cancer, "diabetes": load_diabetes}
# (data, estimator, parameters): 10 classes under both penalties, binary, regression, tanh, sigmoid
CASES = {
    "digits-l1": ("digits", boostnet.BoostNetClassifier, dict(penalty="l1")),
    "digits-group_l1": ("digits", boostnet.BoostNetClassifier, dict(penalty="group_l1")),
    "breast-cancer": ("breast-cancer", boostnet.BoostNetClassifier, {}),
    "diabetes": ("diabetes", boostnet.BoostNetRegressor, dict(alpha="ratio", alpha_ratio=0.03)),
    "breast-cancer-tanh": ("breast-cancer", boostnet.BoostNetClassifier, dict(activation="tanh")),
    "diabetes-sigmoid": (
        "diabetes",
        boostnet.BoostNetRegressor,
        dict(activation="sigmoid", alpha="ratio", alpha_ratio=0.03),
    ),
}


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def fitted():
    """Each case fitted once on standardised features: ``{case: (est, scaler, X_raw, y)}``."""
    out = {}
    for name, (data, cls, params) in CASES.items():
        X, y = DATA[data](return_X_y=True)
        sc = StandardScaler().fit(X)
        out[name] = (cls(**FAST, **params).fit(sc.transform(X), y), sc, X, y)
    return out


def _outputs(model, X):
    """``(labels, probabilities)`` of a classifier, ``(None, predictions)`` of a regressor."""
    if hasattr(model, "predict_proba"):
        return model.predict(X), model.predict_proba(X)
    return None, model.predict(X)


def _close(got, ref, rtol, floor):
    """``|got - ref| <= rtol |ref| + rtol * floor * max|ref|``, elementwise."""
    ref = np.asarray(ref, dtype=np.float64)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * floor * np.abs(ref).max())


def _same_labels(got, ref, proba, margin):
    """Equal labels, except where boostnet's two best probabilities are within ``margin``."""
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > margin
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(np.asarray(got)[clear], np.asarray(ref)[clear])


@pytest.mark.parametrize("case", list(CASES))
def test_to_mlp_reproduces_the_network(fitted, case):
    est, sc, X, y = fitted[case]
    Xs = sc.transform(X)
    mlp = est.to_mlp()
    check_is_fitted(mlp)
    clf = isinstance(est, boostnet.BoostNetClassifier)
    assert isinstance(mlp, MLPClassifier if clf else MLPRegressor)
    m, d = max(est.n_units_, 1), X.shape[1]
    assert mlp.n_layers_ == 3 and mlp.hidden_layer_sizes == (m,) and mlp.n_features_in_ == d
    assert [c.shape for c in mlp.coefs_] == [(d, m), (m, est.coef_.shape[1])]
    assert mlp.activation == {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}[est.activation]
    labels, ref = _outputs(est, Xs)
    got_labels, got = _outputs(mlp, Xs)
    if clf:
        k = len(est.classes_)
        assert mlp.out_activation_ == ("logistic" if k == 2 else "softmax")
        assert mlp.n_outputs_ == (1 if k == 2 else k)
        np.testing.assert_array_equal(mlp.classes_, est.classes_)
        np.testing.assert_array_equal(got_labels, labels)
        assert got.shape == ref.shape == (X.shape[0], k)
    else:
        assert mlp.out_activation_ == "identity" and mlp.n_outputs_ == 1
        assert got.shape == ref.shape == (X.shape[0],)
    _close(got, ref, rtol=1e-6, floor=1e-6)
    assert mlp.score(Xs, y) == pytest.approx(est.score(Xs, y), rel=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_pipeline_takes_raw_features(fitted, case):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    est, sc, X, _ = fitted[case]
    pre = {"mean": sc.mean_.tolist(), "scale": sc.scale_.tolist(), "n_samples": X.shape[0]}
    pipe = to_pipeline(est, pre)
    assert [type(s) for _, s in pipe.steps][0] is StandardScaler
    assert pipe[0].n_samples_seen_ == X.shape[0]
    # the pipeline on raw features is the network on standardised ones (float64)
    labels, ref = _outputs(est, sc.transform(X))
    got_labels, got = _outputs(pipe, X)
    _close(got, ref, rtol=1e-6, floor=1e-6)
    if labels is not None:
        np.testing.assert_array_equal(got_labels, labels)
    # through ONNX (float32): compared with boostnet on the same float32-rounded inputs
    X32 = X.astype(np.float32)
    outs = run_onnx(to_onnx(pipe, X.shape[1]).SerializeToString(), X32)
    labels, ref = _outputs(est, sc.transform(X32.astype(np.float64)))
    if labels is not None:
        assert outs[1].shape == ref.shape
        _close(outs[1], ref, rtol=1e-5, floor=0.1)
        _same_labels(outs[0], labels, ref, margin=1e-5)
    else:
        assert outs[0].shape == (X.shape[0], 1)
        _close(outs[0][:, 0], ref, rtol=1e-5, floor=0.1)


def test_multi_output_regression_and_the_onnx_output_shape(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Y = np.column_stack([y, 50 * X[:, 0] + 30 * X[:, 1] ** 2])
    est = boostnet.BoostNetRegressor(alpha="ratio", alpha_ratio=0.05, **FAST).fit(X, Y)
    mlp = est.to_mlp()
    assert mlp.n_outputs_ == 2 and mlp.predict(X).shape == (X.shape[0], 2)
    _close(mlp.predict(X), est.predict(X), rtol=1e-6, floor=1e-6)
    pytest.importorskip("onnxruntime")
    # skl2onnx reshapes an MLPRegressor's output to (-1, 1); the export keeps the K columns
    (out,) = run_onnx(to_onnx(mlp, X.shape[1]).SerializeToString(), X)
    assert out.shape == (X.shape[0], 2)
    _close(out, est.predict(X.astype(np.float32).astype(np.float64)), rtol=1e-5, floor=0.1)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_network_without_units_exports_one_zero_unit(kind, tmp_path):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if kind == "regression":
        est = boostnet.BoostNetRegressor(alpha="ratio", max_units=0).fit(X, y)
    else:
        yc = (y > 140).astype(int) if kind == "binary" else np.digitize(y, [100, 200])
        est = boostnet.BoostNetClassifier(max_units=0).fit(X, yc)
    assert est.n_units_ == 0
    mlp = est.to_mlp()
    assert mlp.hidden_layer_sizes == (1,)
    assert not np.any(mlp.coefs_[0]) and not np.any(mlp.coefs_[1])
    labels, ref = _outputs(est, X)
    got_labels, got = _outputs(mlp, X)
    _close(got, ref, rtol=1e-6, floor=1e-6)
    if labels is not None:
        np.testing.assert_array_equal(got_labels, labels)
    report = export_model(est, tmp_path / "m.pkl", "sklearn")
    assert report.n_units == 1 and report.max_rel_diff <= 1e-6


def test_sign_units_have_no_mlp_equivalent(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    est = boostnet.BoostNetClassifier(activation="sign", n_candidates=256, max_units=4).fit(
        StandardScaler().fit_transform(X), y
    )
    with pytest.raises(ConfigError, match="sign units"):
        est.to_mlp()
    with pytest.raises(ConfigError, match="sign units"):
        export_model(est, tmp_path / "m.pkl", "sklearn")
    assert not (tmp_path / "m.pkl").exists()


def _read_predictions(path):
    rows = list(csv.DictReader(open(path)))
    return rows, [k for k in rows[0] if k.startswith("p_")]


def test_cli_export_of_a_classification_run(tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--data", "digits", "--max-units", "12", "--n-candidates", "256",
             "--no-progress", "--out", run, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    n_train = json.loads(r.stdout.strip().splitlines()[-1])["n_train"]
    r = _cli("export", run, "--format", "sklearn", "--out", tmp_path / "digits.pkl")
    assert r.exit_code == 0, r.output
    assert "StandardScaler, MLPClassifier" in r.output and "relative difference" in r.output
    with open(tmp_path / "digits.pkl", "rb") as fh:  # the test's own file
        pipe = pickle.load(fh)
    assert isinstance(pipe, Pipeline) and isinstance(pipe[-1], MLPClassifier)
    assert pipe[0].n_samples_seen_ == n_train
    # the pipeline on raw features against `boostnet predict` (probabilities printed to 6 digits)
    r = _cli("predict", run, "--data", "digits", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    rows, cols = _read_predictions(tmp_path / "p.csv")
    X, _ = load_digits(return_X_y=True)
    assert [c[2:] for c in cols] == [str(c) for c in pipe.classes_]
    np.testing.assert_array_equal(pipe.predict(X).astype(str), [row["prediction"] for row in rows])
    P = np.array([[float(row[c]) for c in cols] for row in rows])
    np.testing.assert_allclose(pipe.predict_proba(X), P, rtol=5e-6, atol=1e-12)
    # and at full precision against the saved model
    est, extra = boostnet.io.load_bundle(run / "model.npz")
    Xs = (X - np.array(extra["preprocessing"]["mean"])) / np.array(extra["preprocessing"]["scale"])
    _close(pipe.predict_proba(X), est.predict_proba(Xs), rtol=1e-6, floor=1e-6)
    # ONNX
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    r = _cli("export", run / "model.npz", "--format", "onnx", "--out", tmp_path / "digits.onnx")
    assert r.exit_code == 0, r.output
    labels, proba = run_onnx((tmp_path / "digits.onnx").read_bytes(), X)
    ref = est.predict_proba(Xs)
    _close(proba, ref, rtol=1e-5, floor=0.1)
    _same_labels(labels, est.predict(Xs), ref, margin=1e-5)


def test_cli_export_of_a_regression_run_without_standardisation(tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--data", "diabetes", "--alpha-ratio", "0.03", "--max-units", "10",
             "--n-candidates", "256", "--no-standardize", "--no-progress", "--out", run)  # fmt: skip
    assert r.exit_code == 0, r.output
    out = tmp_path / "diabetes.pkl"
    out.write_text("an older export")  # replaced, as `predict --out` replaces its file
    r = _cli("export", run, "--out", out)
    assert r.exit_code == 0, r.output
    with open(out, "rb") as fh:
        pipe = pickle.load(fh)
    assert [name for name, _ in pipe.steps] == ["mlp"]
    r = _cli("predict", run, "--data", "diabetes", "--out", tmp_path / "p.csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    X, _ = load_diabetes(return_X_y=True)
    ref = np.array([float(row["prediction"]) for row in rows])  # printed to 8 digits
    np.testing.assert_allclose(pipe.predict(X), ref, rtol=1e-7)
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    r = _cli("export", run, "--format", "onnx", "--out", tmp_path / "d.onnx")
    assert r.exit_code == 0, r.output
    (got,) = run_onnx((tmp_path / "d.onnx").read_bytes(), X)
    est = boostnet.load(run / "model.npz")
    _close(got[:, 0], est.predict(X.astype(np.float32).astype(np.float64)), rtol=1e-5, floor=0.1)


def _one_line_error(r, code, needle):
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("error:") and needle in lines[0], r.output


def test_cli_export_errors_are_one_line(tmp_path, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    foreign = tmp_path / "arrays.npz"
    np.savez(foreign, a=np.zeros(3))
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    sign = tmp_path / "sign.npz"
    boostnet.BoostNetClassifier(activation="sign", n_candidates=256, max_units=3).fit(X, y).save(
        sign
    )
    relu = tmp_path / "relu.npz"
    boostnet.BoostNetClassifier(n_candidates=256, max_units=3).fit(X, y).save(relu)
    target = tmp_path / "out.pkl"
    target.write_text("keep")
    _one_line_error(_cli("export", text, "--out", target), 1, "not a boostnet model")
    _one_line_error(_cli("export", foreign, "--out", target), 1, "not a boostnet model")
    _one_line_error(_cli("export", tmp_path / "missing.npz", "--out", target), 1, "not found")
    _one_line_error(_cli("export", tmp_path, "--out", target), 1, "no model.npz")
    _one_line_error(_cli("export", sign, "--out", target), 2, "sign units")
    _one_line_error(_cli("export", sign, "--format", "onnx", "--out", target), 2, "sign units")
    _one_line_error(_cli("export", relu, "--out", tmp_path), 2, "is a directory")
    _one_line_error(_cli("export", relu, "--out", relu), 2, "the model file itself")
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if the onnx extra were missing
    _one_line_error(
        _cli("export", relu, "--format", "onnx", "--out", target), 2, 'pip install "boostnet[onnx]"'
    )
    assert target.read_text() == "keep"  # a failed export writes nothing
    assert boostnet.load(relu).n_units_ >= 1


def test_cli_export_help_names_the_extra():
    r = _cli("export", "--help")
    assert r.exit_code == 0 and "--format" in r.output and "boostnet[onnx]" in r.output
