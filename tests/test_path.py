"""The regularisation path, alpha='auto' and the CV estimators."""

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification

import boostnet
from boostnet import (
    BoostNetClassifier,
    BoostNetClassifierCV,
    BoostNetRegressor,
    BoostNetRegressorCV,
    ConfigError,
    DataError,
)
from boostnet.activations import get_activation
from boostnet.estimators import PATH_TOL
from boostnet.samplers import FixedDictionary
from boostnet.scoring import transform


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(300, 5, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def clf_path(clf_data):
    X, y = clf_data
    est = BoostNetClassifier(random_state=0, n_alphas=10, alpha_min_ratio=0.005)
    return est, est.path(X[:240], y[:240], X_val=X[240:], y_val=y[240:])


@pytest.mark.slow
def test_every_point_is_certified(clf_path):
    est, p = clf_path
    assert len(p.points) == 10
    assert np.allclose([q.alpha for q in p.points], p.alphas)
    assert np.all(np.diff(p.alphas) < 0)
    for q in p.points:
        assert q.stop_reason == "certificate"
        assert q.certificate_gap <= q.alpha * est.tol
    assert p.points[0].n_units == 0  # lambda_max: the empty network
    assert p.points[-1].n_units > 5


def test_points_record_the_held_out_loss_and_its_standard_error(clf_data, clf_path):
    # the criterion is minus the held-out mean log-loss (sklearn's log_loss of the point's
    # network), and its standard error that of the per-row losses' mean
    from sklearn.metrics import log_loss

    X, y = clf_data
    est, p = clf_path
    for i in (3, len(p.points) - 1):
        est.use_point(i)
        losses = -np.log(est.predict_proba(X[240:])[np.arange(60), y[240:]])
        q = p.points[i]
        assert q.val_score == pytest.approx(-log_loss(y[240:], est.predict_proba(X[240:])))
        assert q.val_se == pytest.approx(losses.std(ddof=1) / np.sqrt(60), rel=1e-6)
    assert "val_se" in p.rows()[0]


def test_one_standard_error_rule_takes_the_largest_lambda_within_one_se(clf_path):
    import dataclasses

    _, p = clf_path
    scores = [-3.0, -1.2, -1.05, -1.0, -1.1, -0.98, -1.3, -1.4, -1.5, -1.6]
    pts = [
        dataclasses.replace(q, val_score=v, val_se=0.1)
        for q, v in zip(p.points, scores, strict=True)
    ]
    q = dataclasses.replace(p, points=pts)
    assert q.best_index() == q.best_index("best") == 5
    assert q.best_index("1se") == 2  # -1.05 >= -0.98 - 0.1 > -1.2
    # without a standard error at the best point: the best
    pts[5] = dataclasses.replace(pts[5], val_se=None)
    assert dataclasses.replace(p, points=pts).best_index("1se") == 5
    with pytest.raises(ConfigError, match="selection"):
        q.best_index("median")


def test_units_nested_up_to_removals(clf_path):
    _, p = clf_path
    prev = set()
    for q in p.points:
        cur = set(q.units.tolist())
        assert len(cur) == q.n_units == q.coef.shape[0]
        # the bookkeeping, recomputed from the union indices
        assert q.n_added == len(cur - prev)
        assert q.n_removed == len(prev - cur)
        # units only leave through the re-fit: every unit kept has a non-zero weight
        assert np.all((q.coef != 0).any(axis=1))
        assert q.n_units >= len(prev) - q.n_removed
        prev = cur
    # the path grows overall, and most units survive from one lambda to the next
    n = np.array([q.n_units for q in p.points])
    removed = sum(q.n_removed for q in p.points)
    added = sum(q.n_added for q in p.points)
    assert n[-1] == added - removed
    assert removed < added


def test_network_rebuilds_every_point(clf_data, clf_path):
    X, y = clf_data
    est, p = clf_path
    act = get_activation(est.activation)
    for i in (3, len(p.points) - 1):
        net = p.network(i)
        F = transform(X[240:], net.W, net.c, act) @ net.coef + net.intercept
        idx = np.searchsorted(est.classes_, y[240:])
        acc = np.mean(F.argmax(axis=1) == idx)
        assert acc == pytest.approx(p.points[i].extra["val_metric"])
        # the criterion that chooses lambda: minus the held-out mean log-loss
        Fs = F - F.max(axis=1, keepdims=True)
        logp = Fs - np.log(np.exp(Fs).sum(axis=1, keepdims=True))
        assert -np.mean(logp[np.arange(idx.size), idx]) == pytest.approx(-p.points[i].val_score)
    # the estimator is left at the last point, and use_point moves it
    assert est.alpha_ == p.points[-1].alpha
    assert est.score(X[240:], y[240:]) == pytest.approx(p.points[-1].extra["val_metric"])
    est.use_point(3)
    assert est.n_units_ == p.points[3].n_units
    assert est.score(X[240:], y[240:]) == pytest.approx(p.points[3].extra["val_metric"])
    est.use_point(len(p.points) - 1)
    # the union stores each unit once
    assert np.unique(np.column_stack([p.W, p.c]), axis=0).shape[0] == p.W.shape[0]


def _objective(est):
    return est.history_[-1].objective


def test_path_matches_cold_fits_sampled_1d():
    # In one dimension with biases through the data points and no refinement, every pool covers
    # all 2n distinct units, so the sampled problem is the finite one: path == cold fit.
    rng = np.random.default_rng(1)
    X = np.sort(rng.uniform(-2, 2, 30))[:, None]
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(30)
    # (oracle="sampled" and no sliding: both would solve the continuous problem instead)
    kw = dict(sampler="random", refine=False, tol=1e-6, refit_tol=1e-9, n_candidates=512)
    kw.update(refit_max_iter=20000, oracle="sampled", slide_steps=0)
    est = BoostNetRegressor(random_state=0, n_alphas=6, alpha_min_ratio=0.003, **kw)
    p = est.path(X, y)
    assert p.points[-1].n_units >= 5
    for i, q in enumerate(p.points):
        cold = BoostNetRegressor(alpha=q.alpha, random_state=100 + i, **kw).fit(X, y)
        assert q.objective == pytest.approx(_objective(cold), rel=1e-4)


def test_path_matches_cold_fits_finite_dictionary():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 3))
    y = np.sin(X[:, 0] * X[:, 1]) + 0.1 * rng.standard_normal(80)
    W = rng.standard_normal((60, 3))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    c = -(X[rng.integers(0, 80, 60)] * W).sum(axis=1)
    norm = np.sqrt((W * W).sum(axis=1) + c * c)
    W, c = W / norm[:, None], c / norm
    kw = dict(sampler=FixedDictionary(W, c), refine=False, tol=1e-8, refit_tol=1e-10)
    kw["refit_max_iter"] = 50000
    est = BoostNetRegressor(random_state=0, n_alphas=6, alpha_min_ratio=0.01, **kw)
    p = est.path(X, y)
    assert p.points[-1].n_units >= 10
    for q in p.points:
        cold = BoostNetRegressor(alpha=q.alpha, random_state=0, **kw).fit(X, y)
        assert q.objective == pytest.approx(_objective(cold), rel=1e-6)


@pytest.mark.slow
def test_explicit_alphas_and_function_form(clf_data):
    X, y = clf_data
    p = boostnet.path(X, y, alphas=[0.01, 0.1, 0.03], random_state=0)
    assert np.allclose(p.alphas, [0.1, 0.03, 0.01])
    assert [q.val_score for q in p.points] == [None] * 3
    assert all(q.train_score > 0.5 for q in p.points)
    with pytest.raises(ConfigError, match="validation scores"):
        p.best_index()
    with pytest.raises(ConfigError, match="alphas"):
        boostnet.path(X, y, alphas=[0.1, -1.0])
    with pytest.raises(DataError, match="X_val and y_val"):
        BoostNetClassifier().path(X, y, X_val=X)
    with pytest.raises(ConfigError, match="task"):
        boostnet.path(X, y, task="ranking")


@pytest.mark.slow
def test_path_is_reproducible(clf_data):
    X, y = clf_data
    kw = dict(random_state=3, n_alphas=5, alpha_min_ratio=0.02)
    a = boostnet.path(X, y, **kw)
    b = boostnet.path(X, y, **kw)
    assert [q.objective for q in a.points] == [q.objective for q in b.points]
    assert np.array_equal(a.W, b.W)


def test_path_stops_on_callback_and_patience(clf_data):
    X, y = clf_data

    class StopAfter2:
        n = 0

        def on_path_point(self, point):
            self.n += 1
            return self.n >= 2

    est = BoostNetClassifier(random_state=0, n_alphas=8, callbacks=[StopAfter2()])
    p = est.path(X, y)
    assert len(p.points) == 2 and p.stop_reason == "callback"

    # patience 1 on a validation set equal to... the training data's own labels shuffled:
    # nothing generalises, so the path stops soon after its first points
    rng = np.random.default_rng(0)
    est = BoostNetClassifier(random_state=0, n_alphas=12, path_patience=1, alpha="auto")
    est.fit(X, rng.permutation(y))
    assert est.path_.stop_reason == "patience"
    assert len(est.path_.points) < 12


@pytest.mark.slow
def test_alpha_auto(clf_data):
    X, y = clf_data
    kw = dict(alpha="auto", random_state=0, n_alphas=6, alpha_min_ratio=0.01, n_candidates=512)
    est = BoostNetClassifier(**kw).fit(X[:240], y[:240])  # the classifier's default: "best"
    p = est.path_
    best = p.best_index()
    assert est.alpha_ == p.points[best].alpha
    assert p.val_scores[best] == np.nanmax(p.val_scores)
    # the one-standard-error rule continues from a larger lambda of the same path
    ose = BoostNetClassifier(selection="1se", **kw).fit(X[:240], y[:240])
    assert len(ose.path_.points) == len(p.points)
    i = p.best_index("1se")
    assert ose.alpha_ == p.points[i].alpha >= est.alpha_
    assert p.val_scores[i] >= p.val_scores[best] - p.points[best].val_se
    assert est.stop_reason_ == "certificate"
    assert est.score(X[240:], y[240:]) > 0.7
    assert np.allclose(est.alphas_, p.alphas)
    # the path's points are certified at the looser PATH_TOL, one pool each; the final fit at tol
    certified = [q.certificate for q in p.points if q.certificate is not None]
    assert certified and all(c["tol"] == PATH_TOL and c["pools"] == 1 for c in certified)
    assert est.certificate_["tol"] == est.tol < PATH_TOL
    assert est.certificate_["pools"] == est.certify_pools
    # reproducible from the seed
    est2 = BoostNetClassifier(**kw).fit(X[:240], y[:240])
    assert np.array_equal(est.coef_, est2.coef_)
    with pytest.raises(ConfigError, match="early_stopping"):
        BoostNetClassifier(alpha="auto", early_stopping=True).fit(X, y)


@pytest.mark.slow
def test_alpha_auto_model_saves(tmp_path, clf_data):
    X, y = clf_data
    est = BoostNetClassifier(alpha="auto", random_state=0, n_alphas=5, alpha_min_ratio=0.02)
    est.fit(X, y)
    back = boostnet.load(est.save(tmp_path / "m.npz"))
    assert back.alpha == "auto" and back.alpha_ == est.alpha_
    assert np.array_equal(back.predict(X), est.predict(X))


@pytest.mark.slow
def test_cv_same_choice_with_one_or_two_jobs():
    X, y = load_iris(return_X_y=True)
    kw = dict(n_alphas=6, alpha_min_ratio=0.01, cv=3, random_state=0, n_candidates=512)
    a = BoostNetClassifierCV(n_jobs=1, **kw).fit(X, y)
    b = BoostNetClassifierCV(n_jobs=2, **kw).fit(X, y)
    assert a.alpha_ == b.alpha_
    assert np.array_equal(a.cv_scores_, b.cv_scores_)
    assert np.array_equal(a.coef_, b.coef_)
    assert a.cv_scores_.shape == (3, 6)
    assert a.alpha_ == a.alphas_[a.best_index_]
    assert a.best_index_ == int(np.argmax(a.cv_scores_.mean(axis=0)))
    assert len(a.path_.points) == a.best_index_ + 1
    assert a.score(X, y) > 0.9


def test_cv_one_standard_error_rule_picks_a_larger_lambda():
    X, y = load_iris(return_X_y=True)
    kw = dict(n_alphas=6, alpha_min_ratio=0.01, cv=3, random_state=0, n_candidates=512)
    best = BoostNetClassifierCV(**kw).fit(X, y)
    ose = BoostNetClassifierCV(selection="1se", **kw).fit(X, y)
    assert ose.alpha_ >= best.alpha_
    m, s = best.cv_scores_.mean(axis=0), best.cv_scores_.std(axis=0, ddof=1) / np.sqrt(3)
    i = best.best_index_
    assert m[ose.best_index_] >= m[i] - s[i] - 1e-12
    assert np.all(m[: ose.best_index_] < m[i] - s[i])


def test_cv_fold_paths_certify_at_path_tol_and_the_final_path_at_tol(monkeypatch):
    import boostnet.cv as cvmod

    seen = []
    real = cvmod._fold_path

    def spy(est, *args):
        seen.append((est.tol, est.certify_pools))
        return real(est, *args)

    monkeypatch.setattr(cvmod, "_fold_path", spy)
    X, y = load_iris(return_X_y=True)
    kw = dict(n_alphas=4, alpha_min_ratio=0.05, cv=3, random_state=0, n_candidates=256)
    est = BoostNetClassifierCV(n_jobs=1, **kw).fit(X, y)
    assert seen == [(PATH_TOL, 1)] * 3
    assert est.stop_reason_ == "certificate"
    assert est.certificate_["tol"] == est.tol < PATH_TOL


@pytest.mark.slow
def test_regressor_cv():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.standard_normal(200)
    est = BoostNetRegressorCV(
        n_alphas=5, alpha_min_ratio=0.01, cv=3, random_state=0, n_candidates=512
    )
    est.fit(X, y)
    assert est.cv_scores_.shape == (3, 5)
    assert est.score(X, y) > 0.8
    assert est.predict(X).shape == (200,)


def test_path_file_round_trip(tmp_path, clf_path):
    from boostnet.io import load_path, save_path

    est, p = clf_path
    back = load_path(save_path(p, tmp_path / "p"))
    assert back.rows() == p.rows()
    assert np.array_equal(back.W, p.W) and np.array_equal(back.alphas, p.alphas)
    for i in range(len(p.points)):
        a, b = back.network(i), p.network(i)
        assert np.array_equal(a.W, b.W) and np.array_equal(a.coef, b.coef)
    # each point's certificate travels too
    certified = [q.certificate for q in p.points if q.stop_reason == "certificate"]
    assert certified and all(c is not None for c in certified)
    assert [q.certificate for q in back.points] == [q.certificate for q in p.points]
    # the table says at which tolerance each point was certified; it is derived, not an extra score
    for row, q in zip(back.rows(), p.points, strict=True):
        expected = None if q.certificate is None else est.tol
        assert row["certificate_tol"] == expected
    assert not any("certificate_tol" in q.extra for q in back.points)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(boostnet.ModelFileError, match="cannot read path file"):
        load_path(tmp_path / "bad.npz")
    with pytest.raises(boostnet.ModelFileError, match="not found"):
        load_path(tmp_path / "missing.npz")


def test_cv_model_saves_and_loads(tmp_path):
    X, y = load_iris(return_X_y=True)
    est = BoostNetClassifierCV(n_alphas=4, alpha_min_ratio=0.05, cv=3, random_state=0).fit(X, y)
    back = boostnet.load(est.save(tmp_path / "cv.npz"))
    assert type(back) is BoostNetClassifierCV and back.alpha_ == est.alpha_
    assert np.array_equal(back.predict(X), est.predict(X))


def test_alpha_grid_is_the_grid_path_walks():
    X, y = load_iris(return_X_y=True)
    est = BoostNetClassifier(random_state=0, n_alphas=5, alpha_min_ratio=0.05, max_units=10)
    lam, grid = est.alpha_grid(X, y)
    assert grid.shape == (5,) and grid[0] == pytest.approx(lam)
    assert np.all(np.diff(grid) < 0) and grid[-1] == pytest.approx(0.05 * lam)
    p = BoostNetClassifier(random_state=0, n_alphas=5, alpha_min_ratio=0.05, max_units=10).path(
        X, y
    )
    np.testing.assert_allclose(p.alphas, grid)


def test_path_with_given_classes_keeps_an_output_for_a_missing_class():
    X, y = load_iris(return_X_y=True)
    part = y != 2  # class 2 absent from this part (as in a cross-validation fold)
    est = BoostNetClassifier(random_state=0, n_alphas=3, alpha_min_ratio=0.1, max_units=5)
    est.path(X[part], y[part], alphas=[1.0, 0.3], X_val=X, y_val=y, classes=[0, 1, 2])
    assert list(est.classes_) == [0, 1, 2] and est.coef_.shape[1] == 3
    assert est.predict_proba(X).shape == (150, 3)
    with pytest.raises(boostnet.DataError, match="not among the given classes"):
        est.path(X, y, alphas=[1.0], classes=[0, 1])
    with pytest.raises(boostnet.ConfigError, match="classes is for classifiers"):
        BoostNetRegressor().path(X, X[:, 0], classes=[0, 1])
