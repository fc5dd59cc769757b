"""The proximal Newton re-fit's parts, batched steps, loose re-fits and per-phase times."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from boostnet import BoostNetClassifier, BoostNetRegressor, DataError
from boostnet._cd import cd_group_l1, cd_l1, solve
from boostnet._greedy import PHASES, abs_correlations, diverse, phase_times
from boostnet.activations import ACTIVATIONS
from boostnet.datafits import Logistic, SoftmaxCrossEntropy, SquaredError
from boostnet.penalties import L1, GroupL1, resolve_penalty
from boostnet.refit import curvature, duality_gap, intercept_corrected, refit, tdot
from boostnet.samplers import FixedDictionary, RandomDirections
from boostnet.scoring import transform


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.mark.parametrize("shape", [(50, 7, 3), (400, 60, 26), (30, 0, 2)])
def test_tdot_is_the_transposed_product(shape, rng):
    n, m, K = shape
    H, M = rng.standard_normal((n, m)), rng.standard_normal((n, K))
    out = tdot(H, M)
    assert out.shape == (m, K)
    np.testing.assert_allclose(out, H.T @ M, rtol=1e-12, atol=1e-12)


def _spd(rng, m):
    L = rng.standard_normal((m + 5, m))
    A = L.T @ L / (m + 5)
    return L, A


def test_cd_l1_matches_sklearn_lasso_on_the_same_quadratic(rng):
    # q(w) = g.w + w^T A w / 2 + lam |w|_1 with A = L^T L / p is Lasso's objective on (L, y) with
    # -L^T y / p = g, up to a constant: an independent solver for the same problem
    m, lam = 12, 0.05
    L, A = _spd(rng, m)
    p = L.shape[0]
    y = rng.standard_normal(p)
    g = -(L.T @ y) / p
    W, _, sweeps, _ = cd_l1(A[None], g[:, None], np.zeros((m, 1)), lam, 1e-14, 10000)
    ref = Lasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(L, y)
    np.testing.assert_allclose(W[:, 0], ref.coef_, atol=1e-7)
    assert sweeps >= 2
    # the Anderson-accelerated driver reaches the same point
    Wa, _ = solve("l1", A[None], g[:, None], np.zeros((m, 1)), lam, 1e-14, 10000)
    np.testing.assert_allclose(Wa[:, 0], ref.coef_, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cd_group_l1_meets_its_optimality_conditions(dtype, rng):
    # float32: softmax's matrices (the re-fit's model); the conditions are those of the matrices
    # as stored, the model's gradient accumulated in float64 (Anderson's candidates are compared
    # by float32 products: their gradient to float32 rounding)
    m, K, lam = 10, 4, 1.5
    A = np.stack([_spd(rng, m)[1] for _ in range(K)]).astype(dtype)
    g = rng.standard_normal((m, K))
    W0 = rng.standard_normal((m, K))
    W1, R1, _, _ = cd_group_l1(A, g, W0, lam, 1e-13, 100000)
    W2, _ = solve("group_l1", A, g, W0, lam, 1e-13, 100000)
    A64 = A.astype(np.float64)
    atol = 1e-8 if dtype == np.float64 else 1e-5
    for W in (W1, W2):
        R = g + np.einsum("kij,jk->ik", A64, W - W0)  # the model's gradient at W
        norms = np.linalg.norm(W, axis=1)
        assert (norms == 0).any() and (norms > 0).any()  # both kinds of rows are checked
        for j in range(m):
            if norms[j] > 0:
                np.testing.assert_allclose(R[j], -lam * W[j] / norms[j], atol=atol)
            else:
                assert np.linalg.norm(R[j]) <= lam + atol
    np.testing.assert_allclose(R1, g + np.einsum("kij,jk->ik", A64, W1 - W0), atol=1e-10)


def _targets(datafit, n, rng):
    """Encoded targets (n, K) for ``datafit``: 2 real outputs, 1 binary, or 4 one-hot classes."""
    if datafit.name == "squared_error":
        return rng.standard_normal((n, 2))
    if datafit.name == "logistic":
        return (rng.random((n, 1)) < 0.3).astype(float)
    return np.eye(4)[rng.integers(0, 4, n)]


@pytest.mark.parametrize("datafit", [SquaredError(), Logistic(), SoftmaxCrossEntropy()])
def test_the_dual_point_is_feasible_away_from_the_optimum(datafit, rng):
    """Away from the optimum (intercept not fitted either) the gap is finite, nonnegative and at
    least the objective's distance to the optimum found by a tight re-fit."""
    n, m = 120, 8
    X = rng.standard_normal((n, 3))
    W, c = RandomDirections().sample(X, None, m, rng, ACTIVATIONS["relu"], 1.0)
    H = transform(X, W, c, ACTIVATIONS["relu"])
    Y = _targets(datafit, n, rng)
    K = Y.shape[1]
    a = np.full(n, 1.0 / n)
    pen = L1(0.01)
    coef, b = rng.standard_normal((m, K)), rng.standard_normal(K)
    F = H @ coef + b
    obj = float(datafit.value(Y, F, a)) + float(pen.value(coef))
    G = datafit.raw_grad(Y, F, a)
    assert abs(G.sum(axis=0)).max() > 1e-3  # the intercept is far from optimal here
    gap = duality_gap(H, Y, a, G, obj, datafit, pen)
    best = refit(H, Y, a, datafit, pen, coef, b, tol=1e-12).objective
    assert np.isfinite(gap) and gap >= obj - best - 1e-12


@pytest.mark.parametrize("datafit", [SquaredError(), Logistic(), SoftmaxCrossEntropy()])
def test_the_intercept_corrected_gradient(datafit, rng):
    """Its columns sum to zero, so a constant unit scores 0; at an intercept that is already
    optimal it is the gradient itself; for squared error (whose Newton step on the intercept is
    exact) a unit's score against it is the derivative of the objective minimised over the
    intercept (central differences)."""
    n = 150
    X = rng.standard_normal((n, 3))
    Y = _targets(datafit, n, rng)
    K = Y.shape[1]
    a = rng.random(n)
    a /= a.sum()
    F = X @ rng.standard_normal((3, K)) + rng.standard_normal(K)
    G = datafit.raw_grad(Y, F, a)
    assert abs(G.sum(axis=0)).max() > 1e-3
    Gc = intercept_corrected(G, curvature(datafit, Y, F, a))
    np.testing.assert_allclose(Gc.sum(axis=0), 0.0, atol=1e-15)
    assert abs(np.full(n, 0.7) @ Gc).max() < 1e-15
    if datafit.name == "squared_error":
        b_opt = (a @ (Y - F)) / a.sum()  # the intercept's optimum at F
        G0 = datafit.raw_grad(Y, F + b_opt, a)
        C0 = curvature(datafit, Y, F + b_opt, a)
        np.testing.assert_allclose(intercept_corrected(G0, C0), G0, atol=1e-15)
        h, eps = np.maximum(X[:, 0] - 0.2, 0.0), 1e-6

        def profiled(w):  # min over the intercept of the loss at F + h w
            Fw = F + w * h[:, None]
            return float(datafit.value(Y, Fw + (a @ (Y - Fw)) / a.sum(), a))

        for k in range(K):
            w = np.zeros(K)
            w[k] = eps
            slope = (profiled(w) - profiled(-w)) / (2 * eps)
            assert slope == pytest.approx(h @ Gc[:, k], rel=1e-6)


@pytest.mark.parametrize("penalty", [L1(0.004), GroupL1(0.004)], ids=["l1", "group_l1"])
def test_softmax_refit_uses_the_shift_null_space(penalty, rng):
    """Adding one value to a unit's K softmax weights changes no prediction: at the solution the
    penalty cannot be lowered by such a shift (median / mean of each row is zero)."""
    n, m, K = 200, 10, 4
    X = rng.standard_normal((n, 3))
    W, c = RandomDirections().sample(X, None, m, rng, ACTIVATIONS["relu"], 1.0)
    H = transform(X, W, c, ACTIVATIONS["relu"])
    Y = np.eye(K)[np.argmax(X @ rng.standard_normal((3, K)), axis=1)]
    a = np.full(n, 1.0 / n)
    sm = SoftmaxCrossEntropy()
    r = refit(H, Y, a, sm, penalty, np.zeros((m, K)), sm.intercept(Y, a), tol=1e-10)
    assert r.converged and r.gap <= 1e-10 * r.objective
    for v in np.linspace(-0.05, 0.05, 11):
        assert float(penalty.value(r.coef - v)) >= float(penalty.value(r.coef)) - 1e-12


def test_penalty_auto_is_group_l1_for_more_than_two_classes(iris):
    assert resolve_penalty("auto", True) == "group_l1"
    assert resolve_penalty("auto", False) == "l1"
    assert resolve_penalty("l1", True) == "l1"
    X, y = iris
    est = BoostNetClassifier(penalty="auto", random_state=0, n_candidates=256).fit(X, y)
    assert est.penalty_ == "group_l1"
    est = BoostNetClassifier(penalty="auto", random_state=0, n_candidates=256).fit(X, y == 0)
    assert est.penalty_ == "l1"
    reg = BoostNetRegressor(penalty="auto", alpha="ratio", random_state=0, n_candidates=256)
    assert reg.fit(X, X[:, 0] ** 2).penalty_ == "l1"


def test_diverse_skips_near_copies(rng):
    X = rng.standard_normal((300, 4))
    act = ACTIVATIONS["relu"]
    W, c = RandomDirections().sample(X, None, 4, rng, act, 1.0)
    Wd = np.vstack([W[0], W[0] * (1 + 1e-6), W[1], W[2], W[3]])
    cd = np.array([c[0], c[0], c[1], c[2], c[3]])
    scores = np.array([5.0, 4.9, 4.0, 3.0, 0.5])
    chosen = diverse(X, Wd, cd, scores, threshold=1.0, limit=3, activation=act)
    assert list(chosen) == [0, 2, 3]  # the copy of the best (index 1) is skipped; 4 is below 1.0
    assert list(diverse(X, Wd, cd, scores, 1.0, 1, act)) == [0]
    assert list(diverse(X, Wd, cd, scores, 10.0, 8, act)) == []
    # given the units' activations, the same choice from them (no pass over the rows): the copy is
    # told apart by its activations, so swapping its column for another unit's keeps it
    H = transform(X, Wd, cd, act)
    assert list(diverse(X, Wd, cd, scores, 1.0, 3, act, H)) == [0, 2, 3]
    H[:, 1] = H[:, 3]  # now index 1 looks like 3, not like 0: 1 is chosen, 3 skipped
    assert list(diverse(X, Wd, cd, scores, 1.0, 3, act, H)) == [0, 1, 2]


def test_abs_correlations_match_numpys(rng):
    """``|corr|`` from column sums and squares (no centred copy of ``A``) equals NumPy's, also
    for a column far from zero (mean 1e3, spread 1), and a constant column correlates 0."""
    n = 500
    A = rng.standard_normal((n, 6)) @ rng.standard_normal((6, 6))
    A[:, 2] += 1e3
    A[:, 4] = 7.0  # constant
    B = np.column_stack([A[:, 0] + 0.1 * rng.standard_normal(n), rng.standard_normal(n)])
    B = np.column_stack([B, np.full(n, -2.0)])
    with np.errstate(invalid="ignore", divide="ignore"):  # (NumPy's: NaN for the constants)
        R = np.abs(np.corrcoef(A, B, rowvar=False)[:6, 6:])
    R[4, :] = 0.0
    R[:, 2] = 0.0
    got = abs_correlations(A, B)
    assert got.shape == (6, 3)
    np.testing.assert_allclose(got, R, atol=1e-9)
    assert got[0, 0] > 0.9  # B's first column is a noisy copy of A's first
    same = abs_correlations(A, A)
    np.testing.assert_allclose(np.diag(same)[[0, 1, 2, 3, 5]], 1.0, atol=1e-9)
    assert same[4, 4] == 0.0


@pytest.mark.parametrize("units_per_step", [1, 4, 16])
def test_batched_steps_reach_the_dictionary_optimum(units_per_step, relu_dictionary):
    """On a finite dictionary scored exhaustively, every batch size ends at the same certified
    objective: the re-fit, not the order of entry, decides the network."""
    X, y, _, _, kw = relu_dictionary
    est = BoostNetClassifier(units_per_step=units_per_step, **kw).fit(X, y)
    ref = BoostNetClassifier(units_per_step=1, **kw).fit(X, y)
    assert est.stop_reason_ == ref.stop_reason_ == "certificate"
    assert est.history_[-1].objective == pytest.approx(ref.history_[-1].objective, rel=1e-7)
    if units_per_step > 1:
        assert max(r.n_added for r in est.history_) > 1
        assert est.n_iter_ < ref.n_iter_


@pytest.mark.slow
def test_the_certificate_is_issued_at_a_tight_refit(digits_split):
    Xtr, _, ytr, _ = digits_split
    est = BoostNetClassifier(random_state=0, n_candidates=512).fit(Xtr, ytr)
    h = est.history_
    assert est.stop_reason_ == "certificate"
    loose = [r for r in h[1:] if r.refit_tol > est.refit_tol]
    assert loose  # far from the certificate the re-fits were loose ...
    last = h[-2]  # ... but the model that was certified was re-fitted to refit_tol
    assert last.refit_tol == est.refit_tol
    assert last.refit_gap <= est.refit_tol * last.objective * (1 + 1e-9)


def test_phase_times_are_recorded(digits_split, tmp_path):
    Xtr, _, ytr, _ = digits_split
    est = BoostNetClassifier(random_state=0, n_candidates=256, max_units=12).fit(Xtr, ytr)
    for r in est.history_[1:]:
        times = [getattr(r, f"time_{k}") for k in PHASES]
        assert all(t >= 0 for t in times)
        assert r.time_score > 0 and r.time_refit > 0
    total = phase_times(est.history_)
    assert set(total) == set(PHASES)
    assert 0 < sum(total.values()) <= est.history_[-1].elapsed


@pytest.mark.parametrize(
    "scale,dtype", [(1e154, "float32"), (1e300, "float64"), (1e200, "float64")]
)
def test_inputs_beyond_the_screen_are_refused_up_front(scale, dtype, rng):
    """Overflowing inputs once gave a "certified" model with no unit, at chance."""
    X = rng.standard_normal((60, 2)) * scale
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(DataError, match="beyond what the"):
        BoostNetClassifier(random_state=0, dtype=dtype).fit(X, y)


def test_non_finite_scores_are_an_error_not_a_certificate(rng):
    X = rng.standard_normal((60, 2))
    y = (X[:, 0] > 0).astype(int)
    W = np.array([[np.nan, 0.0], [1.0, 0.0]])
    sampler = FixedDictionary(W, np.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly: no RuntimeWarning on the way
        with pytest.raises(DataError, match="not finite"):
            BoostNetClassifier(random_state=0, sampler=sampler, refine=False).fit(X, y)


@pytest.mark.slow
def test_a_cycling_fit_at_a_tiny_lambda_ends(rng):
    """Separable data and lambda = 1e-8: units used to enter and leave forever (issue 13, item 9)."""
    X = np.random.default_rng(0).standard_normal((100, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = BoostNetClassifier(alpha=1e-8, random_state=0).fit(X, y)
    assert est.stop_reason_ in ("certificate", "stalled")
    assert est.n_iter_ < 500


@pytest.mark.parametrize("max_iter", [1, 3, 200])
def test_no_certificate_without_a_converged_refit(max_iter, iris):
    """A re-fit cut short (refit_max_iter) never counts as tight: a certificate is only issued
    when the certified model's duality gap meets refit_tol."""
    X, y = iris
    est = BoostNetClassifier(
        refit_max_iter=max_iter, n_candidates=256, random_state=0, max_units=60
    ).fit(X, y)
    if est.stop_reason_ == "certificate":
        last = est.history_[-2]
        assert last.refit_gap <= est.refit_tol * last.objective * (1 + 1e-9)
    assert est.stop_reason_ in ("certificate", "stalled", "max_units")
    if max_iter == 200:
        assert est.stop_reason_ == "certificate"


@pytest.mark.parametrize("K, constant", [(1, True), (4, False)])
def test_the_carried_curvature_model_equals_a_fresh_one(K, constant, rng):
    # the loop keeps the model from one re-fit to the next: units leave (select) and enter
    # (extend) under the same weights; the result must be the model built from scratch
    from boostnet.refit import CurvatureModel

    n, m = 300, 9
    H = rng.standard_normal((n, m))
    C = rng.random((n, K)) + 0.1
    if constant:
        C = np.repeat(C[:, :1], K, axis=1)
    full = CurvatureModel.build(H, C, constant, max_rows=128)
    keep = np.array([0, 2, 3, 5, 8])
    carried = CurvatureModel.build(H[:, :6], C, constant, max_rows=128).select(keep[:4])
    carried = carried.extend(H[:, np.r_[keep[:4], 6, 7, 8]])
    ref = full.select(np.r_[keep[:4], 6, 7, 8])
    # an independent reference: the strided rows' weighted Gram, written out
    Hs, Cs = H[::3][:, np.r_[keep[:4], 6, 7, 8]], C[::3]
    scale = n / Hs.shape[0]
    for k in range(1 if constant else K):
        direct = scale * (Hs * Cs[:, k : k + 1]).T @ Hs
        np.testing.assert_allclose(carried.B[k], direct, rtol=1e-5, atol=1e-5 * abs(direct).max())
        np.testing.assert_allclose(ref.B[k], direct, rtol=1e-5, atol=1e-5 * abs(direct).max())
    np.testing.assert_allclose(carried.hc, scale * (Hs.T @ Cs).T, rtol=1e-5)
    A, s, mu = carried.centred()
    np.testing.assert_allclose(mu, (Hs.T @ Cs).T / Cs.sum(axis=0)[:, None], rtol=1e-5)
    np.testing.assert_allclose(A[0], A[0].T, atol=1e-5 * abs(A[0]).max())


def _centred_exactly(H, C, k):
    """The intercept-eliminated matrix of output ``k``, formed from centred columns in float64."""
    mu = H.T @ C[:, k] / C[:, k].sum()
    Hc = H - mu
    return (Hc * C[:, k : k + 1]).T @ Hc


@pytest.mark.parametrize("K", [1, 3])
def test_a_nearly_constant_unit_keeps_its_curvature(K, rng):
    # a relu unit whose bias dominates (inputs of ~1e-7 left unstandardised) varies by a hair
    # around its constant: its centred curvature is the spread squared, below float32's rounding
    # of H^T diag(C) H. The model takes the unit's mean off first (refit._offsets), so the centred
    # matrices match the ones formed from centred columns in float64; built or carried
    from boostnet import refit as R
    from boostnet.refit import CurvatureModel

    n = 400
    z = rng.standard_normal((n, 3))
    H = np.column_stack([
        np.maximum(z[:, 0], 0.0),  # an ordinary relu unit (zero on half of the rows)
        0.6 + 1e-7 * z[:, 1],  # bias-dominated: spread ~1e-6 of its size
        0.3 + 2e-3 * z[:, 2],  # spread ~1e-2 of its size
    ])  # fmt: skip
    C = rng.random((n, K)) + 0.2
    built = CurvatureModel.build(H, C, K == 1)
    carried = CurvatureModel.build(H[:, :1], C, K == 1).extend(H)
    assert built.offset is not None and built.offset[0] == 0 and built.offset[1] != 0
    for model in (built, carried):
        A, _, mu = model.centred()
        for k in range(A.shape[0]):
            exact = _centred_exactly(H, C, k)
            np.testing.assert_allclose(np.diag(A[k]), np.diag(exact), rtol=1e-3)
            np.testing.assert_allclose(A[k], exact, rtol=1e-3, atol=1e-3 * abs(exact).max())
            np.testing.assert_allclose(mu[k], H.T @ C[:, k] / C[:, k].sum(), rtol=1e-6)
    # without the offsets the bias-dominated unit's curvature is rounding noise
    old = R._OFFSET_SPREAD
    try:
        R._OFFSET_SPREAD = 0.0
        A, _, _ = CurvatureModel.build(H, C, K == 1).centred()
    finally:
        R._OFFSET_SPREAD = old
    exact = _centred_exactly(H, C, 0)
    assert not np.isclose(A[0, 1, 1], exact[1, 1], rtol=0.5)
    # leaving units keep the others' offsets; with no offset left, none is kept
    assert CurvatureModel.build(H, C, K == 1).select(np.array([0])).offset is None


def test_a_model_with_offsets_preconditions_as_the_plain_one(rng):
    # the Newton preconditioner from a model whose units' means were taken off (the Hessian in
    # the variables (W, b + o^T W)) changes variables on the way in and out: it must apply the
    # same operator as the plain model's, whatever entries are masked
    from boostnet import refit as R
    from boostnet._newton import _preconditioner
    from boostnet.penalties import get_penalty
    from boostnet.refit import CurvatureModel

    n, m, K = 300, 5, 3
    H = np.maximum(rng.standard_normal((n, m)) + 1.0, 0.0)
    C = rng.random((n, K)) + 0.2
    W = rng.standard_normal((m, K))
    W[1, 2] = 0.0
    for name in ("group_l1", "l1"):
        penalty = get_penalty(name, 0.05)
        S = np.arange(m)
        part = penalty.smooth_part(W[S])
        mask = np.asarray(part.mask)
        plain = _preconditioner(CurvatureModel.build(H, C, False), S, mask, part)
        old = R._OFFSET_SPREAD
        try:
            R._OFFSET_SPREAD = 1.5  # every unit gets an offset
            model = CurvatureModel.build(H, C, False)
        finally:
            R._OFFSET_SPREAD = old
        assert model.offset is not None and (model.offset > 0).all()
        shifted = _preconditioner(model, S, mask, part)
        for _ in range(3):
            rW, rb = rng.standard_normal((m, K)) * mask, rng.standard_normal(K)
            zW0, zb0 = plain(rW, rb)
            zW1, zb1 = shifted(rW, rb)
            np.testing.assert_allclose(
                zW1 * mask, zW0 * mask, rtol=2e-3, atol=2e-3 * abs(zW0).max()
            )
            np.testing.assert_allclose(zb1, zb0, rtol=2e-3, atol=2e-3 * abs(zb0).max())


def test_a_softmax_refit_takes_the_intercepts_common_part_off(rng):
    # softmax does not see a common shift of the intercepts; a warm start carrying one of 1e6
    # (where nearly constant units had pushed it) leaves the predictions ~1e-10 of precision,
    # and the re-fit could not reach its gap. Re-centred, the re-fit is the one from the centred
    # warm start: the same objective and probabilities
    from boostnet import refit as R
    from boostnet.datafits import DATAFITS
    from boostnet.penalties import get_penalty

    n, m, K = 200, 6, 3
    H = np.maximum(rng.standard_normal((n, m)), 0.0)
    y = rng.integers(0, K, n)
    Y = np.eye(K)[y]
    a = np.full(n, 1.0 / n)
    df, pen = DATAFITS["softmax"](), get_penalty("group_l1", 1e-3)
    W0, b0 = 0.1 * rng.standard_normal((m, K)), 0.1 * rng.standard_normal(K)
    ref = R.refit(H, Y, a, df, pen, W0, b0, tol=1e-8)
    far = R.refit(H, Y, a, df, pen, W0, b0 + 1e6, tol=1e-8)
    assert ref.converged and far.converged
    assert abs(np.mean(far.intercept)) <= R._DRIFT
    assert far.objective == pytest.approx(ref.objective, rel=1e-9)
    np.testing.assert_allclose(df.inverse_link(far.F), df.inverse_link(ref.F), atol=1e-6)


def test_a_unit_on_an_output_s_shed_rows_keeps_its_curvature(rng):
    # unit 1 is active only on rows that output 0's shed model leaves out: its diagonal there
    # must stay positive, carried (extend) as built. With a zero diagonal, coordinate descent
    # skipped the unit for good (a re-fit stuck for 2000 iterations on iris: tests/test_greedy.py)
    from boostnet.refit import CurvatureModel

    n, K = 400, 3
    heavy = np.arange(n) < 40
    C = np.where(heavy[:, None], 1.0, 1e-5) * (0.5 + rng.random((n, K)))
    C[:, 1:] = 0.5 + rng.random((n, K - 1))
    H = np.column_stack([rng.standard_normal(n), np.where(heavy, 0.0, rng.random(n))])
    built = CurvatureModel.build(H, C, False, shed=1e-2)
    assert (np.asarray(built.C)[~heavy, 0] == 0).all()  # output 0's light rows are shed
    carried = CurvatureModel.build(H[:, :1], C, False, shed=1e-2).extend(H)
    np.testing.assert_allclose(carried.B, built.B, rtol=1e-5)
    A, _, _ = built.centred()
    assert A[0, 1, 1] > 0


@pytest.mark.parametrize("start", [0.0, 0.3, 1.0, 5.0, 1e6])
def test_the_block_norm_is_the_same_root_from_any_warm_start(start, rng):
    # the group step's ||w||: the root of sum_k (Dz_k / (D_k nu + alpha))^2 = 1, found by Newton
    # from the block's current norm; from either side of the root (or beyond the bound) the same
    from boostnet._cd import _block_norm

    for _ in range(20):
        K = int(rng.integers(1, 12))
        D = rng.random(K) + 0.05
        Dz = rng.standard_normal(K)
        alpha = 0.5 * np.linalg.norm(Dz)  # the block is not zero: ||Dz|| > alpha
        hi = np.linalg.norm(Dz / D)
        nu = _block_norm(Dz, D, alpha, hi, start)
        assert 0.0 < nu <= hi
        np.testing.assert_allclose(((Dz / (D * nu + alpha)) ** 2).sum(), 1.0, rtol=1e-12)
        np.testing.assert_allclose(nu, _block_norm(Dz, D, alpha, hi, 0.0), rtol=1e-13)


def test_a_shed_curvature_model_is_the_model_of_the_kept_weights(rng):
    # per output, the lightest rows carrying at most `shed` of the weight get weight 0, but only
    # where they are at least half of the rows; the model is then the one of those weights (B,
    # hc and s consistent, A_k positive semi-definite), except that a diagonal entry whose weight
    # was mostly shed gets the shed share back
    from boostnet.refit import CurvatureModel

    n, m, K, shed = 400, 7, 3, 1e-2
    H = rng.standard_normal((n, m))
    C = np.empty((n, K))
    C[:, 0] = np.where(rng.random(n) < 0.2, 1.0, 1e-6) * rng.random(n)  # concentrated: shed
    C[:, 1] = 0.5 + rng.random(n)  # spread: the lightest 1 % are few rows, kept exact
    C[:, 2] = rng.random(n) ** 8  # a long light tail
    H[C[:, 0] > 1e-5, -1] = 0.0  # the last unit lives on output 0's light rows only
    model = CurvatureModel.build(H, C, False, shed=shed)
    kept = np.asarray(model.C, dtype=np.float64)
    for k in range(K):
        dropped = kept[:, k] == 0
        assert C[dropped, k].sum() <= shed * C[:, k].sum() * (1 + 1e-6)
        if dropped.any():
            assert 2 * dropped.sum() >= n
            # the dropped rows are the lightest ones
            assert C[dropped, k].max() <= C[~dropped, k].min()
    assert (kept[:, 0] == 0).sum() >= n // 2
    assert (kept[:, 1] == 0).sum() == 0
    ref = CurvatureModel.build(H, kept, False)
    off = ~np.eye(m, dtype=bool)
    tol = 1e-5 * abs(ref.B).max()
    np.testing.assert_allclose(model.B[:, off], ref.B[:, off], rtol=1e-5, atol=tol)
    kept_diag, lost_diag = ((H * H).T @ kept).T, ((H * H).T @ (C - kept)).T
    restored = kept_diag < lost_diag
    assert restored[0, -1] and not restored[:, :-1].any()  # that unit's entry only
    expected = np.where(restored, kept_diag + lost_diag, kept_diag)
    np.testing.assert_allclose(
        np.stack([np.diag(b) for b in model.B]), expected, rtol=1e-5, atol=tol
    )
    np.testing.assert_allclose(model.hc, ref.hc, rtol=1e-6)
    np.testing.assert_allclose(model.s, ref.s, rtol=1e-6)
    A, _, _ = model.centred()
    for k in range(K):
        assert np.linalg.eigvalsh(A[k]).min() >= -1e-5 * abs(A[k]).max()
    # shedding nothing: the exact model
    exact = CurvatureModel.build(H, C, False)
    np.testing.assert_allclose(
        exact.B[1], ((H * C[:, 1:2]).T @ H), rtol=1e-5, atol=1e-5 * abs(exact.B[1]).max()
    )


def test_the_support_step_lowers_the_model_even_when_a_sign_would_flip(rng):
    # strongly correlated columns: the solve on the support flips a sign; the step then stops at
    # the first zero crossing, which still lowers the model and leaves that weight at 0
    from boostnet._cd import _model_value, support_newton

    m = 6
    base = rng.standard_normal((40, 1))
    L = base + 0.05 * rng.standard_normal((40, m))
    A = (L.T @ L / 40)[None]
    g = rng.standard_normal((m, 1))
    W0 = np.zeros((m, 1))
    W = np.array([[0.3], [-0.2], [0.25], [0.1], [-0.15], [0.2]])
    alpha = 0.01
    before, _ = _model_value(A, g, W0, W, alpha, False)
    Wn = support_newton(A, g, W0, W, alpha)
    assert Wn is not None
    after, _ = _model_value(A, g, W0, Wn, alpha, False)
    assert after < before
    # a weight reached zero (the solve alone flips a sign); no sign ever flips
    assert (Wn == 0).any()
    assert np.all((Wn == 0) | (np.sign(Wn) == np.sign(W)))


def test_a_support_step_is_not_solved_again_for_the_same_signs(rng, monkeypatch):
    """solve() skips the support step when the support and signs are those of its last exact one
    (the same point, never below the current model value): the same minimum, to rounding, with
    fewer solves. Sweeps to a tolerance below rounding keep it trying."""
    from boostnet import _cd

    m, alpha = 30, 0.002
    L = rng.standard_normal((60, 3)) @ rng.standard_normal((3, m))
    L += 0.3 * rng.standard_normal((60, m))
    A = (L.T @ L / 60)[None]
    g = 0.1 * rng.standard_normal((m, 1))
    W0 = np.zeros((m, 1))
    step, calls = _cd._support_step, []

    def counted(*args):
        calls.append(1)
        return step(*args)

    monkeypatch.setattr(_cd, "_support_step", counted)
    W1, _ = _cd.solve("l1", A, g, W0, alpha, 1e-18, 100)
    with_memo = len(calls)
    calls.clear()
    monkeypatch.setattr(_cd, "_support_step", lambda *a: (counted(*a)[0], False))  # never "exact"
    W2, _ = _cd.solve("l1", A, g, W0, alpha, 1e-18, 100)
    assert 0 < with_memo < len(calls)
    v1, v2 = (_cd._model_value(A, g, W0, W, alpha, False)[0] for W in (W1, W2))
    assert v1 == pytest.approx(v2, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(W1, W2, rtol=0, atol=1e-10)


def test_the_spd_helpers_solve_and_refuse(rng):
    from boostnet._lapack import spd_inverses, spd_solve

    L = rng.standard_normal((12, 8))
    M = L.T @ L
    b = rng.standard_normal(8)
    np.testing.assert_allclose(spd_solve(M, b), np.linalg.solve(M, b), rtol=1e-10)
    P = np.stack([M, M + np.eye(8)])
    inv = spd_inverses(P, np.float32)
    assert inv.dtype == np.float32 and np.array_equal(inv, inv.transpose(0, 2, 1))
    np.testing.assert_allclose(inv[1] @ P[1], np.eye(8), atol=1e-4)
    # factored in float32 (the Newton preconditioner's blocks): the same inverses to its rounding
    single = spd_inverses(P, np.float32, single=True)
    assert single.dtype == np.float32 and np.array_equal(single, single.transpose(0, 2, 1))
    np.testing.assert_allclose(single[1] @ P[1], np.eye(8), atol=1e-4)
    assert not np.array_equal(single, inv)  # another computation, not the float64 one cast
    indefinite = M - 2 * np.linalg.eigvalsh(M).max() * np.eye(8)
    assert spd_solve(indefinite, b) is None
    assert spd_inverses(np.stack([M, indefinite])) is None
    assert spd_inverses(np.stack([M, indefinite]), single=True) is None


@pytest.mark.parametrize("single", [False, True])
def test_large_spd_stacks_split_over_threads_give_each_blocks_inverse(rng, monkeypatch, single):
    from boostnet import _lapack

    monkeypatch.setattr(_lapack, "_THREADS_FROM", 0)  # every stack goes to the worker threads
    monkeypatch.setattr(_lapack, "n_workers", lambda: 3)
    L = rng.standard_normal((7, 30, 40))
    P = L @ L.transpose(0, 2, 1) + np.eye(30)
    inv = _lapack.spd_inverses(P, np.float64, single)
    assert inv.dtype == np.float64 and np.array_equal(inv, inv.transpose(0, 2, 1))
    tol = 1e-4 if single else 1e-10
    np.testing.assert_allclose(inv, np.linalg.inv(P), rtol=tol, atol=tol * np.abs(inv).max())
    # a block that is not positive definite in the last worker's share: refused as a whole
    bad = P.copy()
    bad[6] -= 2 * np.linalg.eigvalsh(bad[6]).max() * np.eye(30)
    assert _lapack.spd_inverses(bad, np.float64, single) is None
    bad[6] = np.nan
    assert _lapack.spd_inverses(bad, np.float64, single) is None


@pytest.mark.parametrize(
    "datafit, penalty",
    [(SoftmaxCrossEntropy(), GroupL1(0.02)), (SoftmaxCrossEntropy(), L1(0.01)),
     (Logistic(), L1(0.01)), (SquaredError(), L1(0.05))],
    ids=["softmax-group_l1", "softmax-l1", "logistic", "squared_error"],
)  # fmt: skip
@pytest.mark.parametrize("tol", [3e-2, 1e-9], ids=["loose", "tight"])
def test_a_refit_with_the_full_steps_in_one_pass_reaches_the_same_point(
    datafit, penalty, tol, rng, monkeypatch
):
    # refit._full_step (the full step's H dW, loss, gradient and H^T G in one pass over row
    # blocks; the softmax shift taken into the step) against the separate
    # passes: every re-fit reaches its tolerance, the tight ones the same optimum
    from boostnet import refit as refit_module

    n, m, K = 300, 12, (4 if datafit.coupled else 1)
    X = rng.standard_normal((n, 5))
    H = np.maximum(X @ rng.standard_normal((5, m)) + 0.3, 0.0)
    logits = X @ rng.standard_normal((5, K)) + 0.5 * rng.standard_normal((n, K))
    if datafit.coupled:
        Y = np.eye(K)[logits.argmax(axis=1)]
    elif isinstance(datafit, Logistic):
        Y = (logits > 0).astype(float)
    else:
        Y = logits
    a = np.full(n, 1.0 / n)
    monkeypatch.setattr(refit_module, "_ROW_BLOCK_BYTES", 40 * m * 8)  # 8 blocks of 40 rows
    calls = []
    real = refit_module._full_step
    monkeypatch.setattr(refit_module, "_full_step", lambda *args: calls.append(1) or real(*args))
    out = {}
    for fused in (False, True):
        monkeypatch.setattr(refit_module, "_fuses", lambda Hp, fused=fused: fused)
        out[fused] = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), datafit.intercept(Y, a),
                           tol=tol, max_iter=5000)  # fmt: skip
        assert out[fused].converged
        np.testing.assert_allclose(out[fused].F, H @ out[fused].coef + out[fused].intercept,
                                   rtol=1e-10, atol=1e-12)  # fmt: skip
    assert calls  # the fused path ran
    if tol < 1e-6:
        assert out[True].objective == pytest.approx(out[False].objective, rel=1e-8)
        np.testing.assert_allclose(out[True].coef, out[False].coef, atol=1e-4)


@pytest.mark.parametrize("pools", [1, 3])
def test_the_certificate_needs_consecutive_clean_pools(pools, iris):
    X, y = iris
    est = BoostNetClassifier(random_state=0, certify_pools=pools).fit(X, y)
    assert est.stop_reason_ == "certificate"
    c = est.certificate_
    assert c["kind"] == "sampled" and c["pools"] == pools
    tail = est.history_[-pools:]
    # the last `pools` steps searched the final network and found nothing above lambda (1 + tol)
    assert all(not r.added and r.n_units == est.n_units_ for r in tail)
    assert all(r.best_score <= est.alpha_ * (1 + est.tol) for r in tail)
    assert c["candidates"] == sum(r.n_candidates for r in tail)
    assert c["best_score"] == pytest.approx(max(r.best_score for r in tail))
    assert c["alpha"] == pytest.approx(est.alpha_)
    assert c["refit_gap"] <= est.refit_tol


def test_no_certificate_record_without_a_certificate(iris):
    X, y = iris
    est = BoostNetClassifier(random_state=0, max_units=2).fit(X, y)
    assert est.stop_reason_ == "max_units"
    assert est.certificate_ is None


def test_a_refit_past_its_deadline_stops_after_one_iteration(rng):
    # the loop passes max_time down: no re-fit iteration starts after it (issue: a long re-fit
    # ignored max_time)
    import time

    n, m, K = 300, 12, 3
    H = np.maximum(rng.standard_normal((n, m)), 0)
    Y = np.eye(K)[rng.integers(0, K, n)]
    a = np.full(n, 1.0 / n)
    args = (H, Y, a, SoftmaxCrossEntropy(), GroupL1(1e-4), np.zeros((m, K)), np.zeros(K))
    free = refit(*args, tol=1e-10, max_iter=50)
    late = refit(*args, tol=1e-10, max_iter=50, deadline=time.perf_counter() - 1.0)
    assert free.n_iter > 1
    assert late.n_iter == 1 and not late.converged
    assert np.isfinite(late.objective) and late.objective >= free.objective - 1e-12


def test_the_group_newton_step_finishes_an_ill_conditioned_model():
    # near-separable softmax: most rows' curvature is at the floor, so each output's model has
    # eigenvalues ~1e-4 of its largest and block coordinate descent crawls (seed 0: 2000 sweeps, the
    # optimality residual still 4e-3 alpha); the damped Newton step on the active units finishes it
    from boostnet._cd import _model_value, cd_group_l1, group_newton, solve

    rng = np.random.default_rng(0)
    m, K, n = 6, 3, 80
    H = np.tanh(
        rng.standard_normal((n, 3)) @ rng.standard_normal((3, m)) + 0.3 * rng.standard_normal(m)
    )
    C = np.full((K, n), 1e-10)
    for k in range(K):
        C[k, rng.choice(n, 8, replace=False)] = 0.1 * rng.random(8)
    A = np.stack([(H * C[k][:, None]).T @ H / n for k in range(K)])
    g = 1e-3 * rng.standard_normal((m, K))
    W0 = np.zeros((m, K))
    alpha = 1e-4
    W1, _, _, _ = cd_group_l1(A, g, W0, alpha, 0.0, 20)
    Wn = group_newton(A, g, W0, W1, alpha)
    assert Wn is not None
    assert _model_value(A, g, W0, Wn, alpha, True)[0] < _model_value(A, g, W0, W1, alpha, True)[0]
    W, sweeps = solve("group_l1", A, g, W0, alpha, 1e-14, 2000)
    assert sweeps < 500
    # optimality: R_j = -alpha w_j / ||w_j|| on the support, ||R_j|| <= alpha off it
    R = g + np.einsum("kij,jk->ik", A, W - W0)
    norms = np.sqrt((W * W).sum(axis=1))
    on = norms > 0
    assert on.any()
    np.testing.assert_allclose(R[on], -alpha * W[on] / norms[on, None], atol=1e-9 * alpha)
    assert np.all(np.sqrt((R[~on] ** 2).sum(axis=1)) <= alpha * (1 + 1e-9))


def test_group_newton_declines_what_it_cannot_solve():
    from boostnet._cd import _GROUP_NEWTON_MAX, group_newton

    K = 4
    m = _GROUP_NEWTON_MAX // K + 1
    A = np.tile(np.eye(m), (K, 1, 1))
    W = np.ones((m, K))
    assert group_newton(A, np.zeros((m, K)), W, W, 0.1) is None  # too large
    assert group_newton(A[:, :3, :3], np.zeros((3, K)), W[:3], np.zeros((3, K)), 0.1) is None


def test_only_a_loose_softmax_refit_solves_its_model_loosely(rng, monkeypatch):
    # the coordinate descent's inner tolerance is looser (_INNER_TOL_LOOSE) only in a loose re-fit
    # of a softmax, whose class-diagonal model is an approximation anyway: a tight re-fit (the
    # certificate's) and the re-fits of the other losses do not depend on it
    import boostnet.refit as refit_module

    n, m, K = 400, 30, 5
    H = np.maximum(rng.standard_normal((n, m)), 0)
    Y = np.eye(K)[np.argmax(H[:, :K] + 0.5 * rng.standard_normal((n, K)), axis=1)]
    a = np.full(n, 1.0 / n)
    y = Y[:, :1] - 0.5

    def fits(share):
        monkeypatch.setattr(refit_module, "_INNER_TOL_LOOSE", share)
        sm = (H, Y, a, SoftmaxCrossEntropy(), GroupL1(2e-3), np.zeros((m, K)), np.zeros(K))
        sq = (H, y, a, SquaredError(), L1(2e-3), np.zeros((m, 1)), np.zeros(1))
        return [refit(*sm, tol=1e-3), refit(*sm, tol=1e-8), refit(*sq, tol=1e-3)]

    loose, tight, square = fits(refit_module._INNER_TOL)
    loose2, tight2, square2 = fits(0.9)
    for r in (loose, loose2, tight, tight2, square, square2):
        assert r.converged
    assert loose2.n_sweeps < loose.n_sweeps  # the loose softmax re-fit used it
    for a_, b_ in ((tight, tight2), (square, square2)):
        assert b_.n_sweeps == a_.n_sweeps
        np.testing.assert_array_equal(b_.coef, a_.coef)


def _softmax_problem(rng, n=600, m=40, K=5):
    H = np.maximum(rng.standard_normal((n, m)), 0)
    Y = np.eye(K)[np.argmax(H[:, :K] + 0.5 * rng.standard_normal((n, K)), axis=1)]
    return H, Y, np.full(n, 1.0 / n)


def test_a_large_loose_refit_takes_single_precision_products(rng, monkeypatch):
    # above _FAST_ENTRIES a loose re-fit's products with the rows are float32, accumulated into
    # float64 predictions: the same problem solved as closely as in float64, predictions that are
    # the weights' to rounding; a tight re-fit never takes them
    import boostnet.refit as refit_module

    H, Y, a = _softmax_problem(rng)
    m, K = H.shape[1], Y.shape[1]
    args = (H, Y, a, SoftmaxCrossEntropy(), GroupL1(2e-3), np.zeros((m, K)), np.zeros(K))
    solved = {}
    for entries in (H.size + 1, H.size):  # below, then at the threshold
        monkeypatch.setattr(refit_module, "_FAST_ENTRIES", entries)
        solved[entries] = [refit(*args, tol=1e-3), refit(*args, tol=1e-8)]
    (loose64, tight64), (loose32, tight32) = solved[H.size + 1], solved[H.size]
    assert loose32.converged and loose64.converged
    assert loose32.objective == pytest.approx(loose64.objective, rel=1e-3)
    assert loose32.gap <= 1e-3 * loose32.objective
    exact = H @ loose32.coef + loose32.intercept
    assert np.abs(loose32.F - exact).max() < 1e-5  # float32 increments, float64 sum
    assert not np.array_equal(loose32.F, exact) or not np.array_equal(loose32.coef, loose64.coef)
    np.testing.assert_array_equal(tight32.coef, tight64.coef)  # tight: float64 throughout
    assert tight32.objective == tight64.objective


def test_a_loose_refit_starts_from_the_given_predictions_a_tight_one_does_not(rng):
    H, Y, a = _softmax_problem(rng)
    m, K = H.shape[1], Y.shape[1]
    args = (H, Y, a, SoftmaxCrossEntropy(), GroupL1(2e-3), np.zeros((m, K)), np.zeros(K))
    exact = np.zeros((H.shape[0], K))
    plain, given = refit(*args, tol=1e-3), refit(*args, tol=1e-3, F0=exact)
    np.testing.assert_array_equal(given.coef, plain.coef)
    wrong = exact + rng.standard_normal(exact.shape)  # predictions of other weights
    moved = refit(*args, tol=1e-3, F0=wrong)
    assert moved.objective != plain.objective  # a loose re-fit trusted them
    tight, tight_wrong = refit(*args, tol=1e-8), refit(*args, tol=1e-8, F0=wrong)
    np.testing.assert_array_equal(tight_wrong.coef, tight.coef)  # a tight one recomputed them


@pytest.mark.parametrize("max_iter", [0, 1, 50])
def test_a_refit_that_must_iterate_reports_the_gap_of_its_result(max_iter, rng):
    """Where units entered (``min_iter=1``) the warm start's duality gap is not taken up front;
    whatever the re-fit returns, its gap is the duality gap of the weights it returns (the warm
    start's where no iteration ran)."""
    n, m, K = 200, 6, 3
    H = np.tanh(rng.standard_normal((n, m)))
    Y = np.eye(K)[rng.integers(0, K, n)]
    a = np.full(n, 1.0 / n)
    df, pen = SoftmaxCrossEntropy(), GroupL1(0.02)
    coef0 = np.vstack([0.5 * rng.standard_normal((m - 1, K)), np.zeros((1, K))])
    r = refit(H, Y, a, df, pen, coef0, np.zeros(K), tol=1e-3, max_iter=max_iter, min_iter=1)
    F = H @ r.coef + r.intercept
    _, G = df.value_grad(Y, F, a)
    expected = duality_gap(H, Y, a, G, r.objective, df, pen)
    assert np.isfinite(r.gap) and r.gap >= 0
    assert r.gap == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert r.n_iter == min(max_iter, r.n_iter) and (max_iter == 0) == (r.n_iter == 0)
