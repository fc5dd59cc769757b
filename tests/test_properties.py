"""Property tests of the mathematical pieces against references written from the definitions.

Every reference here is plain NumPy from the formulas in ``docs/design/algorithm.md`` and the
module docstrings: none calls the function under test, nor a helper it shares (the penalties'
``dual_norm``, the datafits' ``raw_grad``), so a slip in one of them cannot agree with itself.
Hypothesis draws the inputs; examples are few and deadline-free to keep this file fast.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numdiff import central_difference
from scipy import stats

from boostnet import BoostNetClassifier
from boostnet.activations import ACTIVATIONS
from boostnet.datafits import Logistic, SoftmaxCrossEntropy, SquaredError
from boostnet.penalties import L1, GroupL1
from boostnet.refit import duality_gap
from boostnet.samplers import DataPairs

PROPS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

# zero or of magnitude 1e-6..10: squaring a magnitude below ~1e-154 underflows (group L1's dual
# norm of a row of such values is 0), a floating-point limit rather than the property under test
_magnitudes = st.floats(1e-6, 10.0, allow_nan=False, allow_infinity=False, width=64)
_finite = st.one_of(st.just(0.0), _magnitudes, _magnitudes.map(lambda v: -v))
_matrices = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=7), elements=_finite
)
_steps = st.floats(0.01, 5.0)
_alphas = st.floats(0.01, 3.0)


# --------------------------------------------------------------------------- proximal operators


@PROPS
@given(W=_matrices, step=_steps, alpha=_alphas)
def test_l1_prox_optimality_and_shrinkage(W, step, alpha):
    """``P = prox(W)`` iff ``W - P`` lies in ``t d||P||_1`` (t = step alpha), entry by entry."""
    t = step * alpha
    P = L1(alpha).prox(W, step)
    assert P.shape == W.shape
    on = P != 0
    # non-zero entries: W - P = t sign(P); zero entries: |W| <= t
    np.testing.assert_allclose((W - P)[on], t * np.sign(P[on]), rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(W[~on]) <= t * (1 + 1e-12) + 1e-15)
    # shrinkage: same sign, never larger, by exactly t where not zeroed
    assert np.all(np.abs(P) <= np.abs(W))
    assert np.all(np.sign(P[on]) == np.sign(W[on]))
    np.testing.assert_allclose(np.abs(P), np.maximum(np.abs(W) - t, 0.0), atol=1e-12)
    # prox of zero is zero; prox is monotone in t (a larger threshold shrinks more)
    np.testing.assert_array_equal(L1(alpha).prox(np.zeros_like(W), step), 0.0)
    assert np.all(np.abs(L1(alpha).prox(W, 2 * step)) <= np.abs(P) + 1e-15)


@PROPS
@given(W=_matrices, V=_matrices, step=_steps, alpha=_alphas)
def test_prox_is_firmly_nonexpansive(W, V, step, alpha):
    """A prox of a convex function is firmly non-expansive: ``||P-Q||^2 <= <P-Q, W-V>``."""
    m, K = min(W.shape[0], V.shape[0]), min(W.shape[1], V.shape[1])
    W, V = W[:m, :K], V[:m, :K]
    for pen in (L1(alpha), GroupL1(alpha)):
        D = pen.prox(W, step) - pen.prox(V, step)
        assert (D * D).sum() <= (D * (W - V)).sum() + 1e-10


@PROPS
@given(W=_matrices, step=_steps, alpha=_alphas)
def test_group_prox_optimality_and_shrinkage(W, step, alpha):
    """Block soft-thresholding: each row ``p`` satisfies ``w - p = t p / ||p||`` (``p != 0``) or
    ``||w|| <= t`` (``p = 0``); ``p`` is parallel to ``w`` with ``||p|| = max(||w|| - t, 0)``."""
    t = step * alpha
    P = GroupL1(alpha).prox(W, step)
    assert P.shape == W.shape
    for w, p in zip(W, P, strict=True):
        nw, npn = np.sqrt(w @ w), np.sqrt(p @ p)
        if npn > 0:
            np.testing.assert_allclose(w - p, t * p / npn, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(npn, nw - t, rtol=1e-10, atol=1e-12)
        else:
            assert nw <= t * (1 + 1e-12) + 1e-15
        # shrunk along w, never past zero
        assert npn <= nw + 1e-15
        np.testing.assert_allclose(p * nw, w * npn, atol=1e-10 * (1 + nw * nw))
    np.testing.assert_array_equal(GroupL1(alpha).prox(np.zeros_like(W), step), 0.0)
    if W.shape[1] > 1:
        # not elementwise: a row with every entry below t but a norm above t survives whole
        w = np.full((1, W.shape[1]), 0.9 * t)
        assert np.all(GroupL1(alpha).prox(w, step) != 0)


@PROPS
@given(W=_matrices, step=_steps, alpha=_alphas, seed=st.integers(0, 2**32 - 1))
def test_prox_minimises_its_objective(W, step, alpha, seed):
    """``prox(W)`` beats random nearby points on ``||U - W||^2 / 2 + t Omega(U)`` (Omega by hand)."""
    rng = np.random.default_rng(seed)
    t = step * alpha
    omegas = {
        "l1": lambda U: np.abs(U).sum(),
        "group_l1": lambda U: np.sqrt((U * U).sum(axis=1)).sum(),
    }
    for pen in (L1(alpha), GroupL1(alpha)):
        obj = omegas[pen.name]
        P = pen.prox(W, step)
        best = 0.5 * ((P - W) ** 2).sum() + t * obj(P)
        for scale in (1e-3, 1e-1, 1.0):
            U = P + scale * rng.standard_normal((8, *W.shape))
            vals = 0.5 * ((U - W) ** 2).sum(axis=(1, 2)) + t * np.array([obj(u) for u in U])
            assert np.all(vals >= best - 1e-10 * (1 + abs(best)))


# --------------------------------------------------------------------------- dual norms


@PROPS
@given(R=_matrices, seed=st.integers(0, 2**32 - 1))
def test_dual_norms_against_their_definition(R, seed):
    """``||r||_* = max_{Omega(w) <= 1} <w, r>``: attained at the maximiser built by hand, and an
    upper bound of ``<w, r>`` over random ``w`` of unit primal norm (Hoelder)."""
    rng = np.random.default_rng(seed)
    q, K = R.shape
    rows = np.arange(q)
    # L1 (primal ||w||_1): the maximiser puts all mass on the largest |r_k|
    k = np.abs(R).argmax(axis=1)
    Wstar = np.zeros_like(R)
    Wstar[rows, k] = np.sign(R[rows, k])
    np.testing.assert_allclose(L1.dual_norm(R), (Wstar * R).sum(axis=1), rtol=1e-14, atol=0)
    # group L1 (primal ||w||_2): the maximiser is r / ||r||
    n2 = np.sqrt((R * R).sum(axis=1))
    Wstar2 = R / np.where(n2 > 0, n2, 1.0)[:, None]
    np.testing.assert_allclose(GroupL1.dual_norm(R), (Wstar2 * R).sum(axis=1), rtol=1e-12, atol=0)
    # Hoelder for random directions w
    Wr = rng.standard_normal((16, q, K))
    for pen, primal in (
        (L1, lambda w: np.abs(w).sum(-1)),
        (GroupL1, lambda w: np.linalg.norm(w, axis=-1)),
    ):
        dn = pen.dual_norm(R)
        assert np.all(np.abs((Wr * R).sum(-1)) <= primal(Wr) * dn * (1 + 1e-12) + 1e-300)
        # the penalty's subgradient of the dual norm is a maximiser: primal norm <= 1, <g, r> = ||r||_*
        D = pen.dual_norm_grad(R)
        assert np.all(primal(D) <= 1 + 1e-12)
        np.testing.assert_allclose((D * R).sum(axis=1), dn, rtol=1e-12, atol=1e-300)
        # lambda_max is the largest dual norm
        assert pen.lambda_max(R) == pytest.approx(
            float(np.abs(R).max() if pen is L1 else n2.max()), rel=1e-14
        )
    # positive homogeneity and K = 1 agreement
    np.testing.assert_allclose(L1.dual_norm(3.0 * R), 3.0 * np.abs(R).max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(L1.dual_norm(R[:, :1]), GroupL1.dual_norm(R[:, :1]), rtol=1e-14)


@PROPS
@given(W=_matrices, G=_matrices, alpha=_alphas)
def test_violation_is_the_distance_to_the_subdifferential(W, G, alpha):
    """``violation`` = largest distance of ``-grad`` to ``alpha dOmega(W)`` (by hand, per entry / row);
    ``unit_violations`` the same per row (the largest over its entries for L1)."""
    m, K = min(W.shape[0], G.shape[0]), min(W.shape[1], G.shape[1])
    W, G = W[:m, :K], G[:m, :K]
    W[0] = 0.0  # at least one zero row: the "off" branch
    # L1: per entry, d(-g, alpha sign(w)) or max(|g| - alpha, 0) at w = 0
    d1 = np.where(W != 0, np.abs(-G - alpha * np.sign(W)), np.maximum(np.abs(G) - alpha, 0))
    assert float(L1(alpha).violation(W, G)) == pytest.approx(d1.max(), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(
        L1(alpha).unit_violations(W, G), d1.max(axis=1), rtol=1e-12, atol=1e-14
    )
    # group L1: per row, ||-g - alpha w/||w|| ||_2 or max(||g|| - alpha, 0) at w = 0
    dist = []
    for w, g in zip(W, G, strict=True):
        nw = np.linalg.norm(w)
        dist.append(
            np.linalg.norm(-g - alpha * w / nw) if nw > 0 else max(np.linalg.norm(g) - alpha, 0)
        )
    assert float(GroupL1(alpha).violation(W, G)) == pytest.approx(max(dist), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(GroupL1(alpha).unit_violations(W, G), dist, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- datafits


def _sigmoid(F):
    return 1.0 / (1.0 + np.exp(-F))


def _softmax(F):
    E = np.exp(F - F.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _loss_by_hand(name, Y, F, a):
    """``f(F) = sum_t a_t l(F_t, Y_t)`` from the definitions."""
    if name == "squared_error":
        return float(a @ (0.5 * ((F - Y) ** 2).sum(axis=1)))
    if name == "logistic":
        return float(a @ (np.logaddexp(0.0, F) - Y * F).sum(axis=1))
    mx = F.max(axis=1)
    lse = mx + np.log(np.exp(F - mx[:, None]).sum(axis=1))
    return float(a @ (lse - (Y * F).sum(axis=1)))


def _grad_by_hand(name, Y, F, a):
    link = {"squared_error": lambda F: F, "logistic": _sigmoid, "softmax": _softmax}[name]
    return a[:, None] * (link(F) - Y)


def _xlogx(q):
    return np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)


def _conj_by_hand(name, Y, Nu, a):
    """``f*(Nu) = sum_t a_t l*(Nu_t / a_t)``; ``inf`` outside the domain (a > 0 everywhere here)."""
    U = Nu / a[:, None]
    if name == "squared_error":
        return float(a @ (0.5 * U * U + U * Y).sum(axis=1))
    Q = U + Y
    if name == "logistic":
        if np.any(Q < -1e-12) or np.any(Q > 1 + 1e-12):
            return np.inf
        Q = np.clip(Q, 0, 1)
        return float(a @ (_xlogx(Q) + _xlogx(1 - Q)).sum(axis=1))
    if np.any(Q < -1e-12) or np.any(np.abs(Q.sum(axis=1) - 1) > 1e-9):
        return np.inf
    return float(a @ _xlogx(np.clip(Q, 0, None)).sum(axis=1))


DATAFITS = [SquaredError(), Logistic(), SoftmaxCrossEntropy()]


def _draw_problem(datafit, rng, n, K, scale):
    K = 1 if datafit.name == "logistic" else K
    F = scale * rng.standard_normal((n, K))
    if datafit.name == "squared_error":
        Y = rng.standard_normal((n, K))
    elif datafit.name == "logistic":
        Y = rng.integers(0, 2, size=(n, 1)).astype(float)
    else:
        Y = np.eye(K)[rng.integers(0, K, size=n)]
    a = rng.random(n) + 0.05
    return Y, F, a / a.sum()


def _random_dual(datafit, Y, a, rng):
    """A random point of the conjugate's domain: ``Nu = a (q - Y)`` with q a probability."""
    n, K = Y.shape
    if datafit.name == "squared_error":
        return rng.standard_normal((n, K)) * a[:, None]
    if datafit.name == "logistic":
        return a[:, None] * (rng.random((n, 1)) - Y)
    return a[:, None] * (rng.dirichlet(np.ones(K), size=n) - Y)


_problems = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(1, 30),
    st.integers(2, 6),
    st.sampled_from([0.1, 1.0, 8.0]),
)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
@PROPS
@given(problem=_problems)
def test_value_and_conjugate_match_their_formulas(datafit, problem):
    seed, n, K, scale = problem
    rng = np.random.default_rng(seed)
    Y, F, a = _draw_problem(datafit, rng, n, K, scale)
    ref = _loss_by_hand(datafit.name, Y, F, a)
    assert float(datafit.value(Y, F, a)) == pytest.approx(ref, rel=1e-12, abs=1e-14)
    Nu = _random_dual(datafit, Y, a, rng)
    assert float(datafit.conjugate(Y, Nu, a)) == pytest.approx(
        _conj_by_hand(datafit.name, Y, Nu, a), rel=1e-10, abs=1e-14
    )


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
@PROPS
@given(problem=_problems)
def test_fenchel_young(datafit, problem):
    """``f(F) + f*(Nu) >= <Nu, F>`` for every ``Nu`` of the domain, with equality exactly at the
    gradient ``Nu = df/dF`` (the gradient by hand; the duality gap's sign convention:
    gap = P + f*(Nu))."""
    seed, n, K, scale = problem
    rng = np.random.default_rng(seed)
    Y, F, a = _draw_problem(datafit, rng, n, K, scale)
    f = float(datafit.value(Y, F, a))
    Nu = _random_dual(datafit, Y, a, rng)
    assert f + float(datafit.conjugate(Y, Nu, a)) >= (Nu * F).sum() - 1e-10 * (1 + abs(f))
    G = _grad_by_hand(datafit.name, Y, F, a)
    np.testing.assert_allclose(
        f + float(datafit.conjugate(Y, G, a)), (G * F).sum(), rtol=1e-9, atol=1e-10
    )
    # strictly above at a point of the domain away from the gradient
    Nu2 = 0.5 * (G + Nu)
    if np.abs(Nu2 - G).max() > 1e-3 * a.max():
        assert f + float(datafit.conjugate(Y, Nu2, a)) > (Nu2 * F).sum()


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
@PROPS
@given(problem=_problems, shrink=st.sampled_from([1.0, 0.7, 0.05]))
def test_the_conjugate_at_the_dual_point_s_affine_form(datafit, problem, shrink):
    """``conjugate_affine`` (softmax: row by row, ``Nu`` never formed) equals the conjugate of the
    point it describes, ``Nu = s G + a r^T + u diag(a) Y``: the dual point of any gradient
    (intercept not optimal, so ``r`` and ``u`` are not zero), scaled as the duality gap scales it;
    and it is infinite where that point leaves the domain."""
    from boostnet.datafits import affine_point

    seed, n, K, scale = problem
    rng = np.random.default_rng(seed)
    Y, F, a = _draw_problem(datafit, rng, n, K, scale)
    G = _grad_by_hand(datafit.name, Y, F, a)
    s, r, u = datafit.dual_point_affine(Y, G, a)
    coefs = (shrink * s, shrink * r, shrink * u)
    ref = float(datafit.conjugate(Y, affine_point(Y, G, a, *coefs), a))
    got = float(datafit.conjugate_affine(Y, G, a, *coefs))
    assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert np.isfinite(got)
    if datafit.name != "squared_error":  # a probability below 0 in the first row
        bad = G.copy()
        bad[0] = -a[0] * (Y[0] + 0.5)
        assert float(datafit.conjugate_affine(Y, bad, a, 1.0, np.zeros(Y.shape[1]), 0.0)) == np.inf


@pytest.mark.parametrize("datafit", [Logistic(), SoftmaxCrossEntropy()], ids=lambda d: d.name)
def test_conjugate_is_infinite_outside_its_domain(datafit, rng):
    Y, _, a = _draw_problem(datafit, rng, 12, 3, 1.0)
    Nu = a[:, None] * (np.full(Y.shape, 0.5) - Y)
    Nu[0] = a[0] * (-0.5 - Y[0])  # q = -0.5 < 0
    assert not np.isfinite(float(datafit.conjugate(Y, Nu, a)))


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
@PROPS
@given(problem=_problems)
def test_value_grad_against_finite_differences(datafit, problem):
    """``value_grad`` (its own implementation for softmax) against the loss by hand and central
    differences of it: independent of ``value`` and ``raw_grad``."""
    seed, n, K, scale = problem
    rng = np.random.default_rng(seed)
    Y, F, a = _draw_problem(datafit, rng, min(n, 8), K, min(scale, 1.0))
    v, G = datafit.value_grad(Y, F, a)
    assert float(v) == pytest.approx(_loss_by_hand(datafit.name, Y, F, a), rel=1e-12, abs=1e-14)
    num = central_difference(lambda Fx: _loss_by_hand(datafit.name, Y, Fx, a), F)
    np.testing.assert_allclose(G, num, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(datafit.raw_grad(Y, F, a), num, rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------- duality gap


def _gap_by_hand(H, Y, a, W, b, alpha, name, group=False):
    """Primal minus dual at ``(W, b)``, squared error only: ``Nu`` = the centred gradient scaled
    into the dual ball; ``D = -f*(Nu)``."""
    F = H @ W + b
    omega = np.sqrt((W * W).sum(axis=1)).sum() if group else np.abs(W).sum()
    P = _loss_by_hand(name, Y, F, a) + alpha * omega
    G = _grad_by_hand(name, Y, F, a)
    Nu = G - a[:, None] * G.sum(axis=0)
    R = H.T @ Nu
    dmax = (np.sqrt((R * R).sum(axis=1)) if group else np.abs(R).max(axis=1)).max()
    Nu = Nu * min(1.0, alpha / dmax)
    return P + _conj_by_hand(name, Y, Nu, a), P


def _lasso_problem(seed, n=60, m=8, K=1):
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((n, m))
    Y = H[:, :3] @ rng.standard_normal((3, K)) + 0.3 * rng.standard_normal((n, K)) + 1.5
    return H, Y


@PROPS
@given(
    seed=st.integers(0, 2**32 - 1), K=st.integers(1, 3), group=st.booleans(), far=st.floats(0.01, 3)
)
def test_duality_gap_away_from_the_optimum(seed, K, group, far):
    """At arbitrary ``(W, b)`` the gap is non-negative and equals primal minus dual by hand."""
    H, Y = _lasso_problem(seed, n=30, m=5, K=K)
    rng = np.random.default_rng(seed + 1)
    a = rng.random(30) + 0.1
    a /= a.sum()
    W = far * rng.standard_normal((5, K))
    b = rng.standard_normal(K)
    alpha = 0.05
    pen = GroupL1(alpha) if group else L1(alpha)
    df = SquaredError()
    F = H @ W + b
    objective = float(df.value(Y, F, a) + pen.value(W))
    gap = duality_gap(H, Y, a, df.raw_grad(Y, F, a), objective, df, pen)
    ref, P = _gap_by_hand(H, Y, a, W, b, alpha, "squared_error", group)
    assert gap >= 0
    assert gap == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert objective == pytest.approx(P, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_duality_gap_with_fixed_predictions_vanishes_at_the_lasso_solution(alpha):
    """With fixed predictions ``O`` added (the stagewise and working-set re-fits), the problem is the
    Lasso of ``Y - O``: the gap is ~0 at its solution and bounds the suboptimality elsewhere.
    (Without the ``<Nu, O>`` term the "gap" went negative and those re-fits stopped at once.)"""
    from sklearn.linear_model import Lasso

    H, Y = _lasso_problem(3)
    n = H.shape[0]
    a = np.full(n, 1.0 / n)
    O = 2.0 * np.random.default_rng(7).standard_normal((n, 1))
    las = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(H, (Y - O)[:, 0])
    W, b = las.coef_[:, None], np.array([las.intercept_])
    df, pen = SquaredError(), L1(alpha)

    def gap_at(W, b):
        F = H @ W + b + O
        obj = float(df.value(Y, F, a) + pen.value(W))
        return duality_gap(H, Y, a, df.raw_grad(Y, F, a), obj, df, pen, offset=O), obj

    g0, p0 = gap_at(W, b)
    assert 0 <= g0 < 1e-10
    rng = np.random.default_rng(2)
    for _ in range(5):
        g, p = gap_at(W + 0.05 * rng.standard_normal(W.shape), b + 0.05 * rng.standard_normal(1))
        assert g >= p - p0 - 1e-12 and g > 1e-6


@PROPS
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(2, 4), scale=st.floats(0.1, 3.0))
def test_refits_with_fixed_predictions_certify_the_same_optimum(seed, K, scale):
    """A softmax re-fit with fixed predictions added: the gap is non-negative (to rounding) at
    any point, and tight re-fits from two different starts certify the same optimum."""
    from boostnet.refit import refit

    rng = np.random.default_rng(seed)
    n, m = 50, 4
    H = rng.standard_normal((n, m))
    Y = np.eye(K)[rng.integers(0, K, n)]
    a = np.full(n, 1.0 / n)
    O = scale * rng.standard_normal((n, K))
    df, pen = SoftmaxCrossEntropy(), GroupL1(0.02)
    W0 = rng.standard_normal((m, K))
    for W_start in (np.zeros((m, K)), W0):
        F = H @ W_start + O
        obj = float(df.value(Y, F, a) + pen.value(W_start))
        assert duality_gap(H, Y, a, df.raw_grad(Y, F, a), obj, df, pen, offset=O) >= -1e-12
    r1 = refit(H, Y, a, df, pen, np.zeros((m, K)), np.zeros(K), tol=1e-10, offset=O, max_iter=500)
    r2 = refit(H, Y, a, df, pen, W0, np.ones(K), tol=1e-10, offset=O, max_iter=500)
    assert r1.converged and r2.converged
    assert r1.gap >= -1e-12 and r2.gap >= -1e-12
    assert r1.objective == pytest.approx(r2.objective, rel=1e-8)


@pytest.mark.parametrize("alpha", [0.01, 0.1])
def test_duality_gap_vanishes_at_the_lasso_solution(alpha):
    """scikit-learn's Lasso (same objective for a = 1/n) solves the problem independently: the gap
    is ~0 there, grows away from it, and bounds the primal suboptimality."""
    from sklearn.linear_model import Lasso

    H, Y = _lasso_problem(0)
    n = H.shape[0]
    a = np.full(n, 1.0 / n)
    las = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(H, Y[:, 0])
    W, b = las.coef_[:, None], np.array([las.intercept_])
    df, pen = SquaredError(), L1(alpha)

    def gap_at(W, b):
        F = H @ W + b
        obj = float(df.value(Y, F, a) + pen.value(W))
        return duality_gap(H, Y, a, df.raw_grad(Y, F, a), obj, df, pen), obj

    g0, p0 = gap_at(W, b)
    assert 0 <= g0 < 1e-10
    rng = np.random.default_rng(1)
    for _ in range(5):
        g, p = gap_at(W + 0.05 * rng.standard_normal(W.shape), b + 0.05 * rng.standard_normal(1))
        assert g >= p - p0 - 1e-12  # the gap bounds the suboptimality
        assert g > 1e-6
    # the intercept alone off its optimum (towards 0 and away): 1^T G != 0, so the dual point must
    # be corrected (centred) to stay feasible, or the "gap" drops below the suboptimality
    for shift in (-0.5 * b, 0.5 * b, np.array([1.0])):
        g, p = gap_at(W, b + shift)
        assert p - p0 > 1e-3 and g >= p - p0 - 1e-12


@pytest.mark.parametrize("n_classes", [2, 3])
def test_duality_gap_bounds_the_logistic_suboptimality(n_classes):
    """Logistic (2 classes) and softmax (3): the gap at any point bounds ``P - P*`` with ``P*``
    from scikit-learn's L1 logistic regression (objective ``||W||_1 + C sum_t log-loss_t``, i.e.
    alpha = 1 / (C n); multinomial for 3 classes), and is small at its solution."""
    from sklearn.linear_model import LogisticRegression

    H, Yr = _lasso_problem(3, n=80, m=6)
    # unbalanced classes: the optimal intercept is far from 0
    y = np.searchsorted(np.quantile(Yr[:, 0], [0.2, 0.5][: n_classes - 1]), Yr[:, 0])
    n = len(y)
    a = np.full(n, 1.0 / n)
    alpha = 0.02
    clf = LogisticRegression(
        l1_ratio=1.0, C=1.0 / (alpha * n), solver="saga", tol=1e-12, max_iter=100_000
    ).fit(H, y)
    if n_classes == 2:
        df, Y = Logistic(), y[:, None].astype(float)
    else:
        df, Y = SoftmaxCrossEntropy(), np.eye(n_classes)[y]
    pen = L1(alpha)

    def gap_at(W, b):
        F = H @ W + b
        obj = float(df.value(Y, F, a) + pen.value(W))
        return duality_gap(H, Y, a, df.raw_grad(Y, F, a), obj, df, pen), obj

    Ws, bs = clf.coef_.T, clf.intercept_
    g0, p0 = gap_at(Ws, bs)
    assert 0 <= g0 < 1e-6
    rng = np.random.default_rng(2)
    for far in (0.01, 0.3, 3.0):
        g, p = gap_at(
            Ws + far * rng.standard_normal(Ws.shape), bs + far * rng.standard_normal(bs.shape)
        )
        assert g >= p - p0 - 1e-9 and g > 0
    # the intercept alone off its optimum (towards 0 and away): the dual point must be fixed up
    # to satisfy 1^T Nu = 0, or the "gap" drops below the suboptimality
    assert np.ptp(bs) > 0.5 if n_classes > 2 else abs(bs[0]) > 0.5
    for shift in (-0.5 * bs, 0.5 * bs, np.linspace(2.0, -1.0, len(bs))):
        g, p = gap_at(Ws, bs + shift)
        assert p - p0 > 1e-3 and np.isfinite(g) and g >= p - p0 - 1e-9


# --------------------------------------------------------------------------- pairs sampler


def _recover_pairs(X, W, c):
    """The ordered pair ``(i, j)`` behind each pairs unit (``v`` parallel to ``x_i - x_j``) and the
    position ``t`` of its hyperplane on the segment ``x_j + t (x_i - x_j)``."""
    n = X.shape[0]
    D = (X[:, None, :] - X[None, :, :]).reshape(n * n, -1)
    nd = np.linalg.norm(D, axis=1)
    Dn = D / np.where(nd > 0, nd, 1.0)[:, None]
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    cos = Wn @ Dn.T
    best = cos.argmax(axis=1)
    assert np.all(cos[np.arange(len(W)), best] > 1 - 1e-9)
    i, j = np.divmod(best, n)
    # x0 . v + c = 0 with x0 = x_j + t (x_i - x_j)  =>  t = -(c + x_j . v) / ((x_i - x_j) . v)
    t = -(c + (X[j] * W).sum(axis=1)) / ((X[i] - X[j]) * W).sum(axis=1)
    return i, j, t


def test_pairs_are_drawn_in_proportion_to_the_gradient():
    """Each point of a pair is drawn with ``p = (1 - u) |G|_1 / sum |G|_1 + u / n`` (u the uniform
    share; ``|G|`` summed over the K outputs), the second redrawn if equal to the first, so
    ``P(i, j) = p_i p_j / (1 - p_i)``: chi-square tests of the first point, the second point and
    the segment position, at a fixed seed with a large sample."""
    rng = np.random.default_rng(7)
    n, d, m = 12, 6, 30_000
    X = rng.standard_normal((n, d))
    G = np.zeros((n, 2))
    G[:, 0] = np.arange(n) / 10.0  # point 0 carries no gradient: drawn only through the share
    G[::3, 1] = -0.7  # the second output matters too
    u = 0.1
    w = np.abs(G).sum(axis=1)
    p = (1 - u) * w / w.sum() + u / n
    W, c = DataPairs(uniform_share=u).sample(
        X, G, m, np.random.default_rng(11), ACTIVATIONS["relu"], 1.0
    )
    i, j, t = _recover_pairs(X, W, c)
    assert np.all(i != j)
    obs_i = np.bincount(i, minlength=n)
    assert stats.chisquare(obs_i, m * p).pvalue > 1e-3
    pj = (p[:, None] * p[None, :] / (1 - p)[:, None]) * (1 - np.eye(n))
    pj = pj.sum(axis=0)
    obs_j = np.bincount(j, minlength=n)
    assert stats.chisquare(obs_j, m * pj / pj.sum()).pvalue > 1e-3
    # uniform draws would be rejected outright
    assert stats.chisquare(obs_i, np.full(n, m / n)).pvalue < 1e-20
    # the hyperplane crosses the segment at a uniform position
    assert np.all((t > -1e-9) & (t < 1 + 1e-9))
    assert stats.kstest(t, "uniform").pvalue > 1e-3


# --------------------------------------------------------------------------- probabilities


def _blobs(n_classes, seed, n_per=25, d=4):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((n_classes, d))
    y = np.repeat(np.arange(n_classes), n_per)
    X = centres[y] + rng.standard_normal((len(y), d))
    return X, y


@pytest.mark.parametrize("penalty", ["l1", "group_l1"])
@pytest.mark.parametrize("n_classes", [2, 3, 5, 10])
def test_predict_proba_is_the_softmax_of_the_decision_function(n_classes, penalty):
    """Rows of ``predict_proba`` are probabilities, equal to softmax (sigmoid for two classes) of
    ``decision_function`` computed by hand; ``predict`` is their argmax; log-proba is their log."""
    X, y = _blobs(n_classes, seed=n_classes)
    est = BoostNetClassifier(
        penalty=penalty, max_units=8, n_candidates=128, refine=False, random_state=0
    ).fit(X, y)
    Xq = np.vstack([X, 3 * np.random.default_rng(0).standard_normal((40, X.shape[1]))])
    P = est.predict_proba(Xq)
    D = est.decision_function(Xq)
    assert P.shape == (len(Xq), n_classes)
    assert np.all(P >= 0) and np.all(P <= 1)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    if n_classes == 2:
        assert D.shape == (len(Xq),)
        np.testing.assert_allclose(P[:, 1], 1.0 / (1.0 + np.exp(-D)), rtol=1e-12, atol=1e-15)
    else:
        E = np.exp(D - D.max(axis=1, keepdims=True))
        np.testing.assert_allclose(P, E / E.sum(axis=1, keepdims=True), rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(est.predict(Xq), est.classes_[P.argmax(axis=1)])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(est.predict_log_proba(Xq), np.log(P))
