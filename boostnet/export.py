"""Export a fitted network as a scikit-learn multi-layer perceptron, and through it as ONNX.

A boostnet network ``F(x) = act(x V^T + c) W + b`` (units ``V`` (m, d) and ``c`` (m,), output
weights ``W`` (m, K), intercept ``b`` (K,)) is a perceptron with one hidden layer of m units::

    coefs_ = [V^T (d, m), W (m, K)]        intercepts_ = [c (m,), b (K,)]

with the same hidden activation: boostnet's relu is ``max(z, 0)``, its sigmoid ``1 / (1 + e^-z)``
(computed as ``(1 + tanh(z / 2)) / 2``) and its tanh plain ``tanh``; the MLP's ``relu``, ``logistic``
and ``tanh`` are the same functions, so no scale has to be folded into the weights. ``sign`` units
have no MLP activation: :class:`~boostnet.exceptions.ConfigError`. The output layer is the inverse
link of boostnet's loss, which is the MLP's own output layer for the task:

- two classes: boostnet fits one logistic output (K = 1, ``P(classes_[1] | x) = 1 / (1 + e^-F)``),
  the MLP's binary form: ``out_activation_ = "logistic"``, ``n_outputs_ = 1``;
- more classes: K = n_classes softmax outputs, ``out_activation_ = "softmax"``, whichever the penalty
  (``l1`` and ``group_l1`` choose different weights, not a different network);
- regression: K identity outputs.

An MLP needs a hidden unit: a network with none (the intercept-only model) gets one unit with zero
input and output weights, so its outputs are still ``b``.

A run's model standardises its inputs (``(x - mean) / scale``, fitted on the run's training part and
stored with the model): :func:`to_pipeline` puts a :class:`~sklearn.preprocessing.StandardScaler`
with those statistics in front of the MLP, so the pipeline takes raw features. :func:`to_onnx`
converts a pipeline with skl2onnx (float32 inputs and weights; the ``onnx`` extra).
:func:`export_model` builds either file, checks it against boostnet on random inputs and writes it
atomically.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import is_classifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from .exceptions import ConfigError, ModelFileError
from .io import atomic_write

#: boostnet's hidden activations that an MLP has, and the MLP's names for them.
MLP_ACTIVATIONS = {"relu": "relu", "sigmoid": "logistic", "tanh": "tanh"}
#: Export formats of :func:`export_model`.
FORMATS = ("sklearn", "onnx")
#: Tolerance of the check of an export against boostnet: relative difference (see
#: :func:`relative_difference`) in float64 (sklearn) and through ONNX's float32.
RTOL = {"sklearn": 1e-6, "onnx": 1e-5}
#: The check's absolute floor, as a fraction of the largest magnitude (:func:`relative_difference`):
#: ``1 - p`` loses p's relative accuracy near p = 1 in any precision, and in float32 a logit carries
#: an absolute error of about 1e-7 times the sum of its terms' magnitudes, which a small probability
#: keeps relative to itself (measured on breast-cancer with tanh units: 1.1e-5 relative to
#: ``|p| + 0.01``, 1.3e-6 relative to ``|p| + 0.1``). So: ``|a - b| <= 1e-6 |b| + 1e-12 max|b|`` in
#: float64, ``|a - b| <= 1e-5 |b| + 1e-6 max|b|`` through ONNX.
FLOOR = {"sklearn": 1e-6, "onnx": 1e-1}


def to_mlp(estimator):
    """The fitted network as a fitted scikit-learn MLP.

    Parameters
    ----------
    estimator : BoostNetClassifier or BoostNetRegressor (or their CV variants), fitted, with
        ``relu``, ``tanh`` or ``sigmoid`` units.

    Returns
    -------
    MLPClassifier or MLPRegressor
        One hidden layer of ``max(n_units_, 1)`` units, ``coefs_`` (d, m) and (m, K),
        ``intercepts_`` (m,) and (K,), ``out_activation_`` ``logistic`` (two classes), ``softmax``
        (more) or ``identity`` (regression); ``predict``, ``predict_proba`` and ``score`` give
        boostnet's results up to rounding. ``solver="lbfgs"`` and ``alpha=0`` describe the state, not
        how it was trained; ``loss_`` is NaN (boostnet's objective is not the MLP's), ``n_iter_``
        boostnet's steps.

    Raises
    ------
    ConfigError
        Sign units (no MLP activation).
    """
    check_is_fitted(estimator)
    act = estimator.activation
    if act not in MLP_ACTIVATIONS:
        raise ConfigError(
            f"a network of {act} units has no scikit-learn MLP equivalent (an MLP has relu, tanh "
            "and logistic = sigmoid units); train with activation relu, tanh or sigmoid to export"
        )
    V = np.array(estimator.hidden_weights_, dtype=np.float64)
    c = np.array(estimator.hidden_bias_, dtype=np.float64)
    W = np.array(estimator.coef_, dtype=np.float64)
    b = np.array(estimator.intercept_, dtype=np.float64)
    d, K = V.shape[1], W.shape[1]
    if V.shape[0] == 0:
        V, c, W = np.zeros((1, d)), np.zeros(1), np.zeros((1, K))
    m = V.shape[0]
    common = dict(
        hidden_layer_sizes=(m,), activation=MLP_ACTIVATIONS[act], solver="lbfgs", alpha=0.0
    )
    if is_classifier(estimator):
        classes = np.asarray(estimator.classes_)
        mlp = MLPClassifier(**common)
        mlp._label_binarizer = LabelBinarizer().fit(classes)
        mlp.classes_ = mlp._label_binarizer.classes_
        n_out = 1 if len(classes) == 2 else len(classes)
        if not np.array_equal(mlp.classes_, classes) or K != n_out:
            raise ModelFileError("the model's classes do not match its output weights")
        mlp.out_activation_ = "logistic" if K == 1 else "softmax"
    else:
        mlp = MLPRegressor(**common)
        mlp.out_activation_ = "identity"
    mlp.coefs_ = [np.ascontiguousarray(V.T), W]
    mlp.intercepts_ = [c, b]
    mlp.n_features_in_ = int(d)
    if hasattr(estimator, "feature_names_in_"):
        mlp.feature_names_in_ = np.array(estimator.feature_names_in_, dtype=object)
    mlp.n_outputs_ = int(K)
    mlp.n_layers_ = 3
    steps = getattr(estimator, "n_iter_", None)
    mlp.n_iter_ = int(steps) if steps is not None else len(getattr(estimator, "history_", []))
    mlp.t_ = 0
    mlp.loss_ = float("nan")
    return mlp


def make_scaler(mean, scale, n_samples_seen=None) -> StandardScaler:
    """A fitted :class:`~sklearn.preprocessing.StandardScaler` computing ``(x - mean) / scale``.

    Parameters
    ----------
    mean, scale : array-like, shape (d,)
        ``scale`` > 0 (a run stores 1 for a constant feature, as scikit-learn does).
    n_samples_seen : int, optional
        Rows the statistics were computed on (0 if unknown).

    Returns
    -------
    StandardScaler
        ``mean_``, ``scale_``, ``var_ = scale_ ** 2`` (so 1, not 0, for a constant feature),
        ``n_features_in_``, ``n_samples_seen_``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if (
        mean.ndim != 1
        or scale.shape != mean.shape
        or not np.all(np.isfinite(mean))
        or not np.all(np.isfinite(scale) & (scale > 0))
    ):
        raise ModelFileError("the model's standardisation is malformed (mean / scale)")
    sc = StandardScaler()
    sc.mean_, sc.scale_, sc.var_ = mean.copy(), scale.copy(), scale * scale
    sc.n_features_in_ = int(mean.shape[0])
    sc.n_samples_seen_ = int(n_samples_seen or 0)
    return sc


def to_pipeline(estimator, preprocessing: dict | None = None) -> Pipeline:
    """The network, with its standardisation, as a pipeline that takes raw features.

    Parameters
    ----------
    estimator : fitted boostnet estimator (see :func:`to_mlp`).
    preprocessing : dict, optional
        A run's ``{"mean": (d,), "scale": (d,), "n_samples": int}`` (a model file's
        ``extra["preprocessing"]``); None or a None mean: no standardisation.

    Returns
    -------
    Pipeline
        ``[("scaler", StandardScaler), ("mlp", MLP)]``, or ``[("mlp", MLP)]`` without
        standardisation: the MLP is always ``pipeline[-1]``.
    """
    mlp = to_mlp(estimator)
    pre = preprocessing or {}
    if pre.get("mean") is None:
        return Pipeline([("mlp", mlp)])
    scaler = make_scaler(pre["mean"], pre.get("scale"), pre.get("n_samples"))
    if scaler.n_features_in_ != mlp.n_features_in_:
        raise ModelFileError(
            f"the model's standardisation has {scaler.n_features_in_} features, its network "
            f"{mlp.n_features_in_}"
        )
    return Pipeline([("scaler", scaler), ("mlp", mlp)])


def to_onnx(model, n_features: int):
    """Convert an exported MLP or pipeline to ONNX with skl2onnx.

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor or a Pipeline ending in one (:func:`to_pipeline`)
    n_features : int

    Returns
    -------
    onnx.ModelProto
        Input ``X`` float32 (n, d). Outputs: classifier ``label`` (n,) and ``probabilities``
        (n, n_classes), plain tensors (no ZipMap); regressor ``variable`` (n, K).

    Raises
    ------
    ConfigError
        skl2onnx is not installed.
    """
    try:
        from skl2onnx import convert_sklearn  # noqa: PLC0415
        from skl2onnx.common.data_types import FloatTensorType  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            'ONNX export needs skl2onnx and onnxruntime: pip install "boostnet[onnx]"'
        ) from None
    mlp = model[-1] if isinstance(model, Pipeline) else model
    # skl2onnx casts float class labels to integers: a boostnet classifier's float labels are
    # integer-valued (scikit-learn calls other floats continuous and refuses them)
    options = {id(mlp): {"zipmap": False}} if isinstance(mlp, MLPClassifier) else None
    onx = convert_sklearn(
        model, initial_types=[("X", FloatTensorType([None, int(n_features)]))], options=options
    )
    if isinstance(mlp, MLPRegressor) and mlp.n_outputs_ > 1:
        _fix_regressor_shape(onx, mlp.n_outputs_)
    return onx


def _fix_regressor_shape(onx, k: int):
    """skl2onnx (1.20) reshapes an MLPRegressor's output to (-1, 1), which turns K outputs into
    n K rows; reshape to (-1, K) instead."""
    from onnx import numpy_helper  # noqa: PLC0415

    inits = {t.name: i for i, t in enumerate(onx.graph.initializer)}
    for out in onx.graph.output:
        for node in onx.graph.node:
            if node.op_type == "Reshape" and out.name in node.output and node.input[1] in inits:
                i = inits[node.input[1]]
                shape = numpy_helper.to_array(onx.graph.initializer[i])
                if shape.tolist() == [-1, 1]:
                    new = numpy_helper.from_array(np.array([-1, k], dtype=np.int64), node.input[1])
                    onx.graph.initializer[i].CopyFrom(new)
                    dims = out.type.tensor_type.shape.dim
                    if len(dims) == 2:
                        dims[1].Clear()
                        dims[1].dim_value = k


def run_onnx(model_bytes: bytes, X):
    """Run an exported ONNX model with onnxruntime on the CPU.

    Parameters
    ----------
    model_bytes : bytes
        A serialised model from :func:`to_onnx`.
    X : array-like, shape (n, d)
        Cast to float32.

    Returns
    -------
    list of ndarray
        The model's outputs: ``[labels (n,), probabilities (n, n_classes)]`` or ``[values (n, K)]``.
    """
    import onnxruntime as ort  # noqa: PLC0415

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: np.asarray(X, dtype=np.float32)})


def relative_difference(a, ref, floor: float) -> float:
    """``max_i |a_i - ref_i| / (|ref_i| + floor * max_j |ref_j|)``: the largest relative
    difference, with an absolute floor for entries much smaller than the largest (``a`` is within
    ``rtol`` of ``ref`` as ``numpy.allclose(a, ref, rtol, atol=rtol * floor * max|ref|)`` has it
    when this is at most ``rtol``)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if a.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    top = float(np.max(np.abs(ref)))
    den = np.abs(ref) + (floor * top if top > 0 else 1.0)
    return float(np.max(np.abs(a - ref) / den))


def clear_label_mismatches(labels, ref_labels, ref_proba, margin: float) -> int:
    """Rows whose labels differ although boostnet's top two probabilities are more than
    ``margin`` apart (a near-tie may go either way after rounding)."""
    labels, ref_labels = np.asarray(labels), np.asarray(ref_labels)
    if labels.shape != ref_labels.shape:
        return int(ref_labels.shape[0])
    differ = labels != ref_labels
    if ref_proba.shape[1] >= 2:
        top2 = np.sort(ref_proba, axis=1)[:, -2:]
        differ &= (top2[:, 1] - top2[:, 0]) > margin
    return int(differ.sum())


@dataclass
class ExportReport:
    """What :func:`export_model` wrote.

    Attributes
    ----------
    path : Path
    format : str
        ``sklearn`` or ``onnx``.
    what : str
        E.g. ``Pipeline(StandardScaler, MLPClassifier)``.
    n_units : int
        Hidden units of the exported MLP (at least 1).
    activation : str
        The MLP's hidden activation.
    max_rel_diff : float or None
        Largest relative difference of the export's probabilities or predictions to boostnet's on
        the check's inputs (None: not checked, onnxruntime missing).
    n_checked : int
        Rows of the check (0: not checked): standard normal in standardised units, mapped to raw
        features through the standardisation.
    """

    path: Path
    format: str
    what: str
    n_units: int
    activation: str
    max_rel_diff: float | None
    n_checked: int


def _outputs(est, X):
    """boostnet's reference on standardised ``X``: ``(labels, proba)`` or ``(None, pred (n, K))``."""
    if is_classifier(est):
        return est.predict(X), est.predict_proba(X)
    pred = est.predict(X)
    return None, pred.reshape(pred.shape[0], -1)


def export_model(
    estimator, path, fmt: str = "sklearn", preprocessing: dict | None = None, *, n_check=256, seed=0
) -> ExportReport:
    """Export a fitted network (with its standardisation) to a file, checked, written atomically.

    ``sklearn``: the :func:`to_pipeline` pipeline, pickled (for scikit-learn users to load;
    boostnet itself never loads pickles). ``onnx``: the same pipeline through :func:`to_onnx`.
    Before writing, the export is run on ``n_check`` random raw inputs (standard normal, mapped
    through the standardisation's inverse) next to boostnet: the labels must agree (except where
    boostnet's top two probabilities are within the tolerance) and the probabilities or predictions
    agree within :data:`RTOL` (:func:`relative_difference`). The ONNX check needs onnxruntime and
    is skipped without it.

    Parameters
    ----------
    estimator : fitted boostnet estimator (relu, tanh or sigmoid units)
    path : str or Path
        The file to write (replaced if it exists).
    fmt : {"sklearn", "onnx"}
    preprocessing : dict, optional
        The run's standardisation (see :func:`to_pipeline`).
    n_check : int
    seed : int
        Seed of the check's inputs.

    Returns
    -------
    ExportReport

    Raises
    ------
    ConfigError
        Unknown format, sign units, skl2onnx missing.
    ModelFileError
        Malformed standardisation, or the export does not reproduce the model (nothing written).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    pipe = to_pipeline(estimator, preprocessing)
    mlp = pipe[-1]
    d = mlp.n_features_in_
    Z = np.random.default_rng(seed).standard_normal((n_check, d))
    if "scaler" in pipe.named_steps:
        sc = pipe.named_steps["scaler"]
        X_raw = sc.mean_ + Z * sc.scale_
    else:
        sc, X_raw = None, Z
    if fmt == "onnx":
        X_raw = X_raw.astype(np.float32).astype(np.float64)  # what ONNX will see
    ref_labels, ref = _outputs(estimator, X_raw if sc is None else (X_raw - sc.mean_) / sc.scale_)
    rtol, floor = RTOL[fmt], FLOOR[fmt]
    if fmt == "sklearn":
        payload = pickle.dumps(pipe, protocol=pickle.HIGHEST_PROTOCOL)
        if ref_labels is not None:
            labels, got = pipe.predict(X_raw), pipe.predict_proba(X_raw)
        else:
            labels, got = None, pipe.predict(X_raw).reshape(n_check, -1)
        checked = True
    else:
        payload = to_onnx(pipe, d).SerializeToString()
        try:
            outs = run_onnx(payload, X_raw)
        except ImportError:
            checked, labels, got = False, None, None
        else:
            checked = True
            if ref_labels is not None:
                labels, got = outs[0].ravel(), outs[1]
            else:
                labels, got = None, outs[0].reshape(n_check, -1)
    diff = None
    if checked:
        diff = relative_difference(got, ref, floor)
        bad = 0
        if ref_labels is not None:
            bad = clear_label_mismatches(labels.astype(ref_labels.dtype), ref_labels, ref, rtol)
        if not diff <= rtol or bad:
            raise ModelFileError(
                f"the {fmt} export does not reproduce the model (relative difference {diff:.3g}, "
                f"tolerance {rtol:g}; {bad} labels differ); nothing written"
            )
    atomic_write(path, lambda fh: fh.write(payload), suffix=Path(path).suffix)
    names = [type(s).__name__ for _, s in pipe.steps]
    return ExportReport(
        path=Path(path),
        format=fmt,
        what=f"Pipeline({', '.join(names)})",
        n_units=int(mlp.hidden_layer_sizes[0]),
        activation=mlp.activation,
        max_rel_diff=diff,
        n_checked=n_check if checked else 0,
    )


__all__ = [
    "ExportReport",
    "FORMATS",
    "MLP_ACTIVATIONS",
    "export_model",
    "make_scaler",
    "relative_difference",
    "run_onnx",
    "to_mlp",
    "to_onnx",
    "to_pipeline",
]
