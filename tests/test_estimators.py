"""The scikit-learn estimators: fitting, prediction, persistence, composition and bad input."""

import json
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification, make_friedman1, make_moons
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import boostnet
from boostnet import (
    BoostNetClassifier,
    BoostNetRegressor,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
)
from boostnet.samplers import FixedDictionary, RandomDirections

FAST = dict(n_candidates=256, random_state=0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "sign"])
def test_binary_classification_each_activation(activation):
    X, y = make_moons(300, noise=0.15, random_state=0)
    est = BoostNetClassifier(activation=activation, max_units=40, **FAST).fit(X, y)
    assert est.score(X, y) > 0.93
    assert est.coef_.shape == (est.n_units_, 1)
    P = est.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(est.predict(X), est.classes_[(P[:, 1] > 0.5).astype(int)])
    assert est.decision_function(X).shape == (300,)
    assert est.transform(X).shape == (300, est.n_units_)


def test_multiclass_string_labels_and_group_penalty():
    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[y]
    est = BoostNetClassifier(penalty="group_l1", max_units=30, **FAST).fit(X, labels)
    assert list(est.classes_) == ["ant", "bee", "cat"]
    assert est.score(X, labels) > 0.85
    D = est.decision_function(X)
    assert D.shape == (300, 3)
    # probabilities: rows sum to 1 and are the softmax of the decision function (by hand)
    P = est.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    E = np.exp(D - D.max(axis=1, keepdims=True))
    np.testing.assert_allclose(P, E / E.sum(axis=1, keepdims=True), rtol=1e-10, atol=1e-15)
    # group L1: a unit's output weights are all zero or all non-zero (generically)
    nz = (est.coef_ != 0).sum(axis=1)
    assert np.all(nz == 3)


def test_regression_single_and_multi_output():
    X, y = make_friedman1(300, noise=0.1, random_state=0)
    est = BoostNetRegressor(max_units=60, **FAST).fit(X, y)
    assert est.score(X, y) > 0.85
    assert est.predict(X).shape == (300,)
    Y = np.column_stack([y, -2 * y])
    est2 = BoostNetRegressor(max_units=60, **FAST).fit(X, Y)
    assert est2.predict(X).shape == (300, 2)
    assert est2.score(X, Y) > 0.85


@pytest.mark.slow
def test_default_classifier_on_digits_reaches_the_target(digits_split):
    """The documented default run (also the README's quick start and the benchmark's)."""
    Xtr, Xte, ytr, yte = digits_split
    est = BoostNetClassifier(random_state=0).fit(Xtr, ytr)
    assert est.stop_reason_ == "certificate"
    assert est.n_units_ <= 120
    assert est.score(Xte, yte) >= 0.975


def test_pipeline_and_grid_search():
    X, y = make_moons(200, noise=0.2, random_state=1)
    pipe = make_pipeline(StandardScaler(), BoostNetClassifier(max_units=15, **FAST))
    gs = GridSearchCV(pipe, {"boostnetclassifier__alpha_ratio": [0.3, 0.01]}, cv=3)
    gs.fit(X, y)
    assert gs.best_params_["boostnetclassifier__alpha_ratio"] == 0.01
    assert gs.score(X, y) > 0.9


def test_sample_weight_equivalence_on_a_fixed_dictionary(rng):
    """Integer sample weights define the same objective as repeated rows."""
    X = rng.standard_normal((60, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
    W, c = RandomDirections().sample(
        X, None, 30, np.random.default_rng(0), None or boostnet.activations.ACTIVATIONS["relu"], 1.0
    )
    sw = rng.integers(1, 3, size=60)
    kw = dict(
        sampler=FixedDictionary(W, c),
        n_candidates=30,
        top_k=30,
        refine=False,
        refit_tol=1e-12,
        refit_max_iter=100000,
        tol=1e-9,
        dtype="float64",
        alpha=0.01,
    )
    a = BoostNetClassifier(**kw).fit(X, y, sample_weight=sw)
    b = BoostNetClassifier(**kw).fit(np.repeat(X, sw, axis=0), np.repeat(y, sw))
    assert a.history_[-1].objective == pytest.approx(b.history_[-1].objective, rel=1e-8)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


def test_save_load_round_trip(tmp_path, digits_split):
    Xtr, Xte, ytr, _ = digits_split
    est = BoostNetClassifier(max_units=10, **FAST).fit(Xtr, ytr)
    path = est.save(tmp_path / "model")
    assert path.name == "model.npz"
    back = boostnet.load(path)
    assert isinstance(back, BoostNetClassifier)
    np.testing.assert_array_equal(back.predict_proba(Xte), est.predict_proba(Xte))
    np.testing.assert_array_equal(back.classes_, est.classes_)
    assert back.stop_reason_ == est.stop_reason_ and back.alpha_ == est.alpha_
    assert len(back.history_) == len(est.history_)
    assert back.get_params()["max_units"] == 10
    # no pickle inside: every member loads with allow_pickle=False
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
    assert meta["format"] == "boostnet-model"


def test_the_certificate_travels_with_the_model(tmp_path):
    X, y = load_iris(return_X_y=True)
    est = BoostNetClassifier(random_state=0, n_candidates=256).fit(X, y)
    assert est.stop_reason_ == "certificate" and est.certificate_ is not None
    back = boostnet.load(est.save(tmp_path / "m"))
    assert back.certificate_ == est.certificate_
    capped = BoostNetClassifier(random_state=0, n_candidates=256, max_units=1).fit(X, y)
    assert (
        capped.certificate_ is None
        and boostnet.load(capped.save(tmp_path / "c")).certificate_ is None
    )


def test_save_load_regressor_and_string_classes(tmp_path):
    X, y = make_friedman1(100, random_state=0)
    est = BoostNetRegressor(max_units=5, **FAST).fit(X, y)
    back = boostnet.load(est.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    Xc, yc = make_moons(100, random_state=0)
    lab = np.array(["no", "yes"])[yc]
    clf = BoostNetClassifier(max_units=5, **FAST).fit(Xc, lab)
    back = boostnet.load(clf.save(tmp_path / "c.npz"))
    np.testing.assert_array_equal(back.predict(Xc), clf.predict(Xc))


def test_load_rejects_bad_files(tmp_path, digits_split):
    Xtr, _, ytr, _ = digits_split
    good = BoostNetClassifier(max_units=3, **FAST).fit(Xtr, ytr).save(tmp_path / "good.npz")
    with pytest.raises(ModelFileError, match="not found"):
        boostnet.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelFileError, match="cannot read"):
        boostnet.load(junk)
    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelFileError):
        boostnet.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, X=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a boostnet model"):
        boostnet.load(foreign)
    # a pickled object array is refused, never unpickled
    pick = tmp_path / "pickle.npz"
    np.savez(pick, __meta__=np.array([{"format": "boostnet-model"}], dtype=object))
    with pytest.raises(ModelFileError):
        boostnet.load(pick)
    # metadata edited to a wrong shape
    bad = tmp_path / "bad.npz"
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["n_features_in"] = 5
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="shapes"):
        boostnet.load(bad)
    meta["n_features_in"] = 64
    meta["format_version"] = 99
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="version"):
        boostnet.load(bad)
    assert zipfile.is_zipfile(good)


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path, digits_split, monkeypatch):
    Xtr, _, ytr, _ = digits_split
    est = BoostNetClassifier(max_units=3, **FAST).fit(Xtr, ytr)
    path = est.save(tmp_path / "m.npz")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError):
        est.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]]), [0, 1, 0], "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [2.0, 1.0]]), [0, 1, 0], "infinity"),
        (np.zeros((3, 2)), [0, 1], "inconsistent numbers of samples"),
        (np.array([["a", "b"], ["c", "d"]]), [0, 1], "could not convert"),
        (np.ones((4, 2)), [1, 1, 1, 1], "1 class"),
        (np.ones(4), [0, 1, 0, 1], "2D array"),
    ],
    ids=["nan", "inf", "lengths", "strings", "one-class", "1d"],
)
def test_bad_input_raises_clear_errors(X, y, match):
    with pytest.raises(ValueError, match=match):
        BoostNetClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"alpha": -1.0}, "alpha"),
        ({"activation": "softplus"}, "activation"),
        ({"penalty": "l2"}, "penalty"),
        ({"sampler": "grid"}, "sampler"),
        ({"alpha_ratio": 2.0}, "alpha_ratio"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_parameters_raise(params, match):
    X, y = make_moons(30, random_state=0)
    with pytest.raises(ValueError, match=match):
        BoostNetClassifier(**params).fit(X, y)


def test_feature_count_mismatch_at_predict(digits_split):
    Xtr, _, ytr, _ = digits_split
    est = BoostNetClassifier(max_units=3, **FAST).fit(Xtr, ytr)
    with pytest.raises(ValueError, match="features"):
        est.predict(Xtr[:, :10])


def test_negative_sample_weight_rejected():
    X, y = make_moons(30, random_state=0)
    with pytest.raises(DataError, match="non-negative"):
        BoostNetClassifier(**FAST).fit(X, y, sample_weight=-np.ones(30))


def test_device_selection(monkeypatch):
    from boostnet._backend import gpu_status, resolve_device

    assert resolve_device("cpu").name == "cpu"
    with pytest.raises(ConfigError):
        resolve_device("tpu")
    ok, why = gpu_status()
    if not ok:
        with pytest.raises(DeviceError, match="gpu"):
            resolve_device("gpu")
        assert resolve_device("auto").name == "cpu"
        monkeypatch.setenv("BOOSTNET_DEVICE", "gpu")
        with pytest.raises(DeviceError):
            resolve_device(None)
        X, y = make_moons(30, random_state=0)
        with pytest.raises(DeviceError):
            BoostNetClassifier(device="gpu").fit(X, y)


def _init_params(cls):
    import inspect

    return {
        k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"
    }


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_cv_signature_is_the_plain_one_plus_the_cv_keys(kind):
    from boostnet.cv import BoostNetClassifierCV, BoostNetRegressorCV, _CVMixin

    plain, cv = {
        "classifier": (BoostNetClassifier, BoostNetClassifierCV),
        "regressor": (BoostNetRegressor, BoostNetRegressorCV),
    }[kind]
    p, c = _init_params(plain), _init_params(cv)
    # what the CV estimator chooses or replaces itself: lambda and its validation split
    chosen = {"alpha", "alpha_ratio", "path_patience", "early_stopping", "validation_fraction",
              "n_iter_no_change", "warm_start"}  # fmt: skip
    assert set(c) == (set(p) - chosen) | set(_CVMixin._cv_constraints)
    # one default per parameter, except ``selection``: the CV estimator takes the standard error
    # over its folds (default "best", as LassoCV), alpha="auto" over one held-out part's rows
    # (None: per task, measured: docs/python-api.md, "Choosing lambda")
    for k in (set(c) & set(p)) - {"selection"}:
        assert c[k] == p[k], k
    assert (p["selection"], c["selection"]) == (None, "best")
    assert plain._default_selection == ("best" if kind == "classifier" else "1se")


@pytest.mark.parametrize("name", ["BoostNetClassifier", "BoostNetRegressor",
                                  "BoostNetClassifierCV", "BoostNetRegressorCV"])  # fmt: skip
def test_every_init_parameter_is_documented(name):
    import re

    import boostnet

    cls = getattr(boostnet, name)
    doc = cls.__doc__
    section = doc.split("Parameters\n    ----------\n", 1)[1].split("\n    Attributes\n", 1)[0]
    documented = set()
    for line in section.splitlines():
        m = re.match(r"^    ([\w, ]+) : ", line)
        if m:
            documented |= {n.strip() for n in m.group(1).split(",")}
    assert set(_init_params(cls)) <= documented, set(_init_params(cls)) - documented
