"""The mathematical pieces: datafits, penalties, activations, samplers, scoring, refinement."""

import numpy as np
import pytest
from numdiff import central_difference
from score_ref import assert_sign_scores, scores_by_hand

from boostnet import refine as refine_module
from boostnet.activations import ACTIVATIONS, get_activation, project_units
from boostnet.datafits import Logistic, SoftmaxCrossEntropy, SquaredError
from boostnet.exceptions import ConfigError
from boostnet.penalties import L1, GroupL1, get_penalty
from boostnet.refine import refine_units, score_and_grad
from boostnet.samplers import DataPairs, Mixture, PairRows, RandomDirections, draw, get_sampler
from boostnet.scoring import GRAM_MIN_FEATURES, NumpyScorer, reference_scores, transform


def _problem(datafit, rng, n=40, K=3):
    F = rng.standard_normal((n, K))
    if isinstance(datafit, SquaredError):
        Y = rng.standard_normal((n, K))
    elif isinstance(datafit, Logistic):
        F = F[:, :1]
        Y = rng.integers(0, 2, size=(n, 1)).astype(float)
    else:
        Y = np.eye(K)[rng.integers(0, K, size=n)]
    a = rng.random(n)
    a /= a.sum()
    return Y, F, a


DATAFITS = [SquaredError(), Logistic(), SoftmaxCrossEntropy()]


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
def test_raw_grad_matches_finite_differences(datafit, rng):
    Y, F, a = _problem(datafit, rng)
    G = datafit.raw_grad(Y, F, a)
    num = central_difference(lambda Fx: datafit.value(Y, Fx, a), F)
    np.testing.assert_allclose(G, num, rtol=1e-6, atol=1e-9)
    # value_grad (softmax has its own) against the differences too, not against raw_grad
    v, G2 = datafit.value_grad(Y, F, a)
    np.testing.assert_allclose(v, datafit.value(Y, F, a), rtol=1e-12)
    np.testing.assert_allclose(G2, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
def test_hessian_bound_and_diagonal(datafit, rng):
    """The Hessian diagonal matches finite differences of the gradient and stays below the bound."""
    Y, F, a = _problem(datafit, rng)
    D = datafit.hess_diag(Y, F, a)
    at = [(0, 0), (5, F.shape[1] - 1)]
    jac = central_difference(lambda Fx: datafit.raw_grad(Y, Fx, a), F, at=at)
    for idx in at:
        np.testing.assert_allclose(D[idx], jac[idx][idx], rtol=1e-5)
    assert np.all(D <= datafit.lipschitz * a[:, None] + 1e-15)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
def test_row_values_are_the_per_sample_losses(datafit, rng):
    # value is the weighted sum of row_values, and each row is the loss of that sample alone
    # (by definition: l(F_t, Y_t), checked against the formulas of the class docstrings)
    Y, F, a = _problem(datafit, rng)
    rows = datafit.row_values(Y, F)
    assert rows.shape == (Y.shape[0],)
    assert float(datafit.value(Y, F, a)) == pytest.approx(float(a @ rows), rel=1e-12)
    if isinstance(datafit, SquaredError):
        expected = 0.5 * ((Y - F) ** 2).sum(axis=1)
    elif isinstance(datafit, Logistic):
        expected = (np.log1p(np.exp(F)) - Y * F)[:, 0]
    else:
        expected = np.log(np.exp(F).sum(axis=1)) - (Y * F).sum(axis=1)
    np.testing.assert_allclose(rows, expected, rtol=1e-12)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
def test_intercept_is_the_best_constant(datafit, rng):
    Y, _, a = _problem(datafit, rng)
    b = datafit.intercept(Y, a)
    n = Y.shape[0]
    G = datafit.raw_grad(Y, np.tile(b, (n, 1)), a)
    np.testing.assert_allclose(G.sum(axis=0), 0, atol=1e-10)


@pytest.mark.parametrize("datafit", DATAFITS, ids=lambda d: d.name)
def test_fenchel_young_equality_at_the_gradient(datafit, rng):
    """f(F) + f*(G) = <G, F> when G is the gradient at F (the conjugate is right)."""
    Y, F, a = _problem(datafit, rng)
    G = datafit.raw_grad(Y, F, a)
    lhs = datafit.value(Y, F, a) + datafit.conjugate(Y, G, a)
    np.testing.assert_allclose(lhs, (G * F).sum(), rtol=1e-10, atol=1e-12)
    # and the Fenchel-Young inequality elsewhere
    G2 = datafit.raw_grad(Y, F + rng.standard_normal(F.shape), a)
    assert datafit.value(Y, F, a) + datafit.conjugate(Y, G2, a) >= (G2 * F).sum() - 1e-12


def test_inverse_links(rng):
    F = rng.standard_normal((5, 4))
    P = SoftmaxCrossEntropy().inverse_link(F)
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(P, np.exp(F) / np.exp(F).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(Logistic().inverse_link(F), 1 / (1 + np.exp(-F)))
    # extreme raw predictions stay finite
    assert np.isfinite(
        SoftmaxCrossEntropy().value(
            np.eye(2)[[0, 1]], np.array([[1e4, -1e4], [-1e4, 1e4]]), np.array([0.5, 0.5])
        )
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_softmax_matches_the_generic_expressions(dtype, rng):
    # on NumPy arrays softmax's value, gradient, probabilities and conjugate are compiled row
    # loops; the generic expressions (CuPy's path) are the reference. Hard rows included: one far
    # below the others (the generic path's global shift underflows there and falls back to the
    # per-row maximum), a zero sample weight, a near-certain prediction
    from boostnet import datafits

    n, K = 40, 5
    F = (4.0 * rng.standard_normal((n, K))).astype(dtype)
    F[0] -= 900.0 if dtype == np.float64 else 90.0
    F[1, 2] = 60.0
    Y = np.eye(K)[rng.integers(0, K, n)].astype(dtype)
    a = rng.random(n).astype(dtype)
    a[3] = 0.0
    a /= a.sum()
    df = SoftmaxCrossEntropy()
    E, s, shift = datafits._softmax_parts(F, np)
    value = a @ (shift + np.log(s) - (Y * F).sum(axis=1))
    G = (a / s)[:, None] * E - a[:, None] * Y
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    got_value, got_G = df.value_grad(Y, F, a)
    assert got_G.dtype == dtype
    np.testing.assert_allclose(float(got_value), float(value), rtol=rtol)
    np.testing.assert_allclose(float(df.value(Y, F, a)), float(value), rtol=rtol)
    np.testing.assert_allclose(got_G, G, rtol=rtol, atol=rtol * abs(G).max())
    np.testing.assert_allclose(df.inverse_link(F), E / s[:, None], rtol=rtol, atol=1e-30)
    # the conjugate at a dual point inside its domain, and outside it (a probability below 0)
    Q = G.astype(np.float64) / np.where(a > 0, a, 1.0)[:, None] + Y
    Q[a == 0] = Y[a == 0]
    q = Q / Q.sum(axis=1, keepdims=True)
    ref = a @ np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(axis=1)
    Nu = G.astype(np.float64)
    np.testing.assert_allclose(float(df.conjugate(Y, Nu, a)), float(ref), rtol=1e-5)
    out = Nu.copy()
    out[5] = -2.0 * a[5] * (Y[5] + 0.1)
    assert float(df.conjugate(Y, out, a)) == np.inf


@pytest.mark.parametrize("pen", [L1(0.3), GroupL1(0.3)], ids=["l1", "group_l1"])
@pytest.mark.parametrize("step", [0.5, 2.0])
def test_prox_satisfies_its_optimality_condition(pen, step, rng):
    """p = prox(W) iff (W - p) / step is in alpha * dOmega(p): zero violation with grad (p-W)/step."""
    W = rng.standard_normal((20, 4)) * 0.5
    W[:5] *= 0.01  # small rows: thresholded to exactly zero by both penalties
    P = pen.prox(W, step)
    assert (P == 0).any()  # some entries (or groups) were thresholded to exactly zero
    assert float(pen.violation(P, (P - W) / step)) < 1e-12
    # and any other point violates it
    Q = P + 0.01 * rng.standard_normal(P.shape)
    assert float(pen.violation(Q, (Q - W) / step)) > 1e-4


def test_dual_norms_and_lambda_max(rng):
    R = rng.standard_normal((7, 3))
    np.testing.assert_allclose(L1.dual_norm(R), np.abs(R).max(axis=1))
    np.testing.assert_allclose(GroupL1.dual_norm(R), np.linalg.norm(R, axis=1))
    assert L1.lambda_max(R) == np.abs(R).max()
    # K = 1: both penalties coincide
    r = R[:, :1]
    np.testing.assert_allclose(L1.dual_norm(r), GroupL1.dual_norm(r))
    W = rng.standard_normal((7, 1))
    np.testing.assert_allclose(L1(0.2).prox(W, 1.0), GroupL1(0.2).prox(W, 1.0))
    with pytest.raises(ConfigError):
        get_penalty("l2", 1.0)


def test_activations(rng):
    z = np.array([-2.0, -0.1, 0.0, 0.3, 4.0])
    np.testing.assert_allclose(ACTIVATIONS["relu"](z.copy()), np.maximum(z, 0))
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"](z.copy()), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(ACTIVATIONS["tanh"](z.copy()), np.tanh(z))
    np.testing.assert_allclose(ACTIVATIONS["sign"](z.copy()), [-1, -1, -1, 1, 1])
    for name in ("relu", "sigmoid", "tanh"):
        act = ACTIVATIONS[name]
        zz = np.array([-1.3, 0.2, 2.1])
        eps = 1e-6
        num = (act(zz + eps) - act(zz - eps)) / (2 * eps)
        np.testing.assert_allclose(act.derivative(zz), num, rtol=1e-5)
    # chain: upstream * act'(z), in place; for every activation, float32 and float64
    for act in ACTIVATIONS.values():
        for dt in (np.float32, np.float64):
            zz = rng.standard_normal((4, 5)).astype(dt)
            up = rng.standard_normal((4, 5)).astype(dt)
            expected = up * act.derivative(zz)
            out = act.chain(zz, up)
            assert out is up and out.dtype == dt
            np.testing.assert_allclose(out, expected, rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown activation"):
        get_activation("softplus")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize(
    "sampler", [RandomDirections(), DataPairs(), Mixture()], ids=["random", "pairs", "mixture"]
)
def test_samplers_respect_the_units_feasible_set(name, sampler, rng):
    X = rng.standard_normal((50, 6))
    G = rng.standard_normal((50, 2))
    act = ACTIVATIONS[name]
    W, c = sampler.sample(X, G, 64, np.random.default_rng(0), act, 3.0)
    assert W.shape == (64, 6) and c.shape == (64,)
    norms = np.sqrt((W * W).sum(axis=1) + c * c)
    if act.homogeneous:
        np.testing.assert_allclose(norms, 1.0)
    else:
        assert np.all(norms <= 3.0 + 1e-12) and np.all(norms > 0)
    # the same generator state gives the same pool; the next step's pool is fresh
    W2, _ = sampler.sample(X, G, 64, np.random.default_rng(0), act, 3.0)
    np.testing.assert_array_equal(W, W2)
    g = np.random.default_rng(0)
    Wa, _ = sampler.sample(X, G, 64, g, act, 3.0)
    Wb, _ = sampler.sample(X, G, 64, g, act, 3.0)
    assert not np.allclose(Wa, Wb)


def test_random_direction_hyperplanes_cut_the_data(rng):
    """Every random-direction unit's hyperplane passes through a training point."""
    X = rng.standard_normal((30, 4)) + 5.0
    W, c = RandomDirections().sample(
        X, None, 100, np.random.default_rng(1), ACTIVATIONS["relu"], 1.0
    )
    Z = X @ W.T + c
    assert np.all(np.abs(Z).min(axis=0) < 1e-9)  # some point sits on each hyperplane
    assert np.all((Z > 1e-9).any(axis=0) | (Z < -1e-9).any(axis=0))


def test_pair_hyperplanes_cut_the_segment_between_their_points(rng):
    """A data-pair unit is ``v = s (x_i - x_j)`` through a point of the segment from ``x_j`` to
    ``x_i``: its pre-activations at the two points have opposite signs, their gap is
    ``s |x_i - x_j|^2``."""
    X = rng.standard_normal((40, 5)) * 3.0 + 1.0
    G = rng.standard_normal((40, 2))
    W, c, pairs = DataPairs().draw(X, G, 200, np.random.default_rng(2), ACTIVATIONS["tanh"], 2.0)
    zi = (X[pairs.i] * W).sum(axis=1) + c
    zj = (X[pairs.j] * W).sum(axis=1) + c
    assert np.all(zi * zj <= 1e-12)
    D = X[pairs.i] - X[pairs.j]
    np.testing.assert_allclose(W, pairs.scale[:, None] * D, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(zi - zj, pairs.scale * (D * D).sum(axis=1), rtol=1e-9, atol=1e-12)


def test_pairs_sampler_follows_the_gradient(rng):
    """Points with zero gradient are drawn only through the uniform share."""
    X = rng.standard_normal((200, 3))
    G = np.zeros((200, 1))
    G[:10] = 1.0  # only the first ten points carry gradient
    s = DataPairs(uniform_share=0.0)
    W, c = s.sample(X, G, 500, np.random.default_rng(0), ACTIVATIONS["relu"], 1.0)
    # every unit's direction is a difference of two of the first ten points
    D = X[:10, None, :] - X[None, :10, :]
    D = D.reshape(-1, 3)
    D /= np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    assert np.all(np.abs(Wn @ D.T).max(axis=1) > 1 - 1e-9)
    with pytest.raises(ConfigError):
        get_sampler("grid")


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("pen", [L1, GroupL1], ids=["l1", "group_l1"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_chunked_scorer_matches_the_float64_reference(name, pen, dtype, rng):
    n, d, M, K = 173, 11, 301, 3
    X = rng.standard_normal((n, d))
    G = rng.standard_normal((n, K)) / n
    act = ACTIVATIONS[name]
    W, c = Mixture().sample(X, G, M, np.random.default_rng(3), act, 3.0)
    # a tiny memory budget forces many chunks (and a last partial one)
    scorer = NumpyScorer(X, dtype=dtype, memory_budget=n * 4 * 37)
    assert scorer.chunk < M
    res = scorer.score(W, c, G, act, pen, k=16)
    # the reference: activations and dual norm by hand (abs().max(), norm), not the penalty's
    ref = scores_by_hand(X, W, c, G, name, pen)
    np.testing.assert_allclose(reference_scores(X, W, c, G, act, pen), ref, rtol=1e-12)
    tol = 1e-5 if dtype == "float32" else 1e-12
    if name == "sign":
        # each hyperplane passes through a data point: either sign there, every other point exact
        z_eps = None if dtype == "float32" else 1e-12
        assert_sign_scores(res.scores, X, W, c, G, pen, dtype, rtol=tol, z_eps=z_eps)
    else:
        np.testing.assert_allclose(res.scores, ref, rtol=tol, atol=tol * ref.max())
    # the exact re-score of the top-k is the float64 score, and the argmax is the reference's
    np.testing.assert_allclose(res.top_scores, ref[res.top], rtol=1e-12)
    assert res.top[0] == int(np.argmax(ref))
    assert np.all(np.diff(res.top_scores) <= 0)
    # the activations the exact scores came from, in the same order (reused by the loop's
    # choice of distinct units)
    np.testing.assert_array_equal(res.H_top, transform(X, W[res.top], c[res.top], act))


def test_a_screen_chunk_fills_at_most_the_cache_share_and_the_budget():
    # a chunk of candidates holds at most _CHUNK_BYTES of activations (at least _MIN_CHUNK
    # candidates), at most max_chunk, and never more than the memory budget allows
    from boostnet import scoring

    def chunk(n, **kw):
        return NumpyScorer(np.zeros((n, 3)), **kw).chunk

    assert chunk(200) == 2048  # small n: max_chunk binds
    per = scoring._CHUNK_BYTES // (15000 * 4)
    assert scoring._MIN_CHUNK < per < 2048
    assert chunk(15000) == per  # the cache share binds
    assert chunk(400_000) == scoring._MIN_CHUNK  # huge n: the floor
    assert chunk(400_000, memory_budget=400_000 * 4 * 37) == 37  # the budget binds below it
    assert chunk(200, max_chunk=100) == 100


@pytest.mark.parametrize(
    "sampler", [Mixture(), DataPairs(), RandomDirections()], ids=lambda s: s.name
)
@pytest.mark.parametrize("name", ["relu", "sigmoid"])
def test_draw_is_sample_with_the_pair_rows(sampler, name, rng):
    X = rng.standard_normal((50, 7))
    G = rng.standard_normal((50, 2)) / 50
    act = ACTIVATIONS[name]
    W, c, pairs = draw(sampler, X, G, 41, np.random.default_rng(5), act, 2.0)
    W0, c0 = sampler.sample(X, G, 41, np.random.default_rng(5), act, 2.0)
    # the same units from the same stream of draws
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(c, c0)
    if sampler.name == "random":
        assert pairs is None
        return
    expected = {"mixture": np.arange(21, 41), "pairs": np.arange(41)}[sampler.name]  # 21 random
    np.testing.assert_array_equal(pairs.rows, expected)
    np.testing.assert_allclose(
        W[pairs.rows], pairs.scale[:, None] * (X[pairs.i] - X[pairs.j]), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("share", [0.0, 0.125, 0.5, 1.0])
def test_a_mixed_pool_draws_the_share_of_random_directions_it_is_given(share, rng):
    X = rng.standard_normal((50, 7))
    G = rng.standard_normal((50, 2)) / 50
    act = ACTIVATIONS["relu"]
    W, c, pairs = draw(Mixture(), X, G, 64, np.random.default_rng(5), act, 1.0, share)
    n_random = int(round(64 * share))
    assert W.shape == (64, 7) and c.shape == (64,)
    if n_random == 64:
        assert pairs is None
        return
    np.testing.assert_array_equal(pairs.rows, np.arange(n_random, 64))
    np.testing.assert_allclose(
        W[pairs.rows], pairs.scale[:, None] * (X[pairs.i] - X[pairs.j]), rtol=1e-12, atol=1e-15
    )
    # samplers that do not mix ignore it: the same units as without it
    for other in (DataPairs(), RandomDirections()):
        W1, c1, _ = draw(other, X, G, 64, np.random.default_rng(5), act, 1.0, share)
        W0, c0, _ = draw(other, X, G, 64, np.random.default_rng(5), act, 1.0)
        np.testing.assert_array_equal(W1, W0)
        np.testing.assert_array_equal(c1, c0)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("pen", [L1, GroupL1], ids=["l1", "group_l1"])
def test_pairs_screened_from_the_gram_matrix_score_as_the_gemm(name, pen, rng):
    n, d, M, K = 211, GRAM_MIN_FEATURES, 300, 3
    X = rng.standard_normal((n, d))
    G = rng.standard_normal((n, K)) / n
    act = ACTIVATIONS[name]
    W, c, pairs = draw(Mixture(), X, G, M, np.random.default_rng(3), act, 3.0)
    # a small budget: K fits beside a buffer of 37 candidates, so both paths run in chunks
    budget = n * n * 4 + n * 4 * 37
    gram = NumpyScorer(X, memory_budget=budget, gram=True)
    assert gram.uses_gram and gram.chunk == 37
    assert not NumpyScorer(X, memory_budget=n * n * 4 + n * 4 - 1, gram=True).uses_gram
    # by default K needs room for a chunk of 256 candidates beside it
    assert not NumpyScorer(X, memory_budget=budget).uses_gram
    assert NumpyScorer(X, memory_budget=n * n * 4 + n * 4 * 256).uses_gram
    res = gram.score(W, c, G, act, pen, k=16, pairs=pairs)
    ref = scores_by_hand(X, W, c, G, name, pen)
    if name == "sign":
        assert_sign_scores(res.scores, X, W, c, G, pen, "float32", rtol=1e-5, z_eps=None)
    else:
        np.testing.assert_allclose(res.scores, ref, rtol=1e-5, atol=1e-5 * ref.max())
    np.testing.assert_allclose(res.top_scores, ref[res.top], rtol=1e-12)
    assert res.top[0] == int(np.argmax(ref))


def test_pair_preactivations_with_relu_are_numpys_maximum_bit_for_bit(rng):
    # the screen's relu taken in the pass that forms the pairs' pre-activations: the same bits as
    # np.maximum(z, 0) after it, NaN and the sign of zero included
    from boostnet.scoring import _pair_preactivations

    K = rng.standard_normal((50, 300)).astype(np.float32)
    K[3, 7] = np.nan
    K[5, :] = K[6, :]  # the pairs (5, 6) and (6, 5) with c = 0: pre-activations exactly 0
    i, j = np.r_[rng.integers(0, 50, 40), 5, 6], np.r_[rng.integers(0, 50, 40), 6, 5]
    s = rng.random(42).astype(np.float32)
    c = np.r_[rng.standard_normal(40), 0.0, 0.0].astype(np.float32)
    two_passes, fused = np.empty((42, 300), np.float32), np.empty((42, 300), np.float32)
    _pair_preactivations(K, i, j, s, c, two_passes)
    np.maximum(two_passes, 0, out=two_passes)
    _pair_preactivations(K, i, j, s, c, fused, True)
    assert np.isnan(fused).any() and (fused == 0).any()
    np.testing.assert_array_equal(fused, two_passes)
    np.testing.assert_array_equal(np.signbit(fused), np.signbit(two_passes))


def test_gram_screen_is_used_where_it_pays(rng):
    G = rng.standard_normal((30, 2))
    narrow = rng.standard_normal((30, GRAM_MIN_FEATURES - 1))
    assert not NumpyScorer(narrow).uses_gram
    assert NumpyScorer(narrow, gram=True).uses_gram
    wide = rng.standard_normal((30, GRAM_MIN_FEATURES))
    assert NumpyScorer(wide).uses_gram
    assert not NumpyScorer(wide, gram=False).uses_gram
    # |x|^2 beyond float32: the Gram matrix is refused at the first pool, the GEMM scores
    huge = wide * 1e19
    act = ACTIVATIONS["relu"]
    W, c, pairs = draw(DataPairs(), huge, G, 20, np.random.default_rng(0), act, 1.0)
    scorer = NumpyScorer(huge)
    res = scorer.score(W, c, G, act, L1, k=4, pairs=pairs)
    assert not scorer.uses_gram
    ref = reference_scores(huge, W, c, G, act, L1)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-5, atol=1e-5 * ref.max())


def test_close_pairs_are_screened_by_the_gemm(rng):
    # two nearly equal rows: K's rounding, scaled by 1 / |x_i - x_j|, would swamp that unit's
    # screen, so it goes through the GEMM (the other pairs through K)
    n, d = 60, GRAM_MIN_FEATURES
    X = rng.standard_normal((n, d)) * 3.0
    X[1] = X[0] + 1e-6 * rng.standard_normal(d)
    G = rng.standard_normal((n, 2)) / n
    act = ACTIVATIONS["relu"]
    i, j = np.array([0, 2, 4]), np.array([1, 3, 5])
    V = X[i] - X[j]
    c = -(X[j] * V).sum(axis=1) - 0.5 * (V * V).sum(axis=1)  # through the segments' midpoints
    s = 1.0 / np.sqrt((V * V).sum(axis=1) + c * c)
    W, c = V * s[:, None], c * s
    pairs = PairRows(np.arange(3), i, j, s)
    scorer = NumpyScorer(X)
    np.testing.assert_array_equal(scorer._gram_rows(pairs), [1, 2])
    res = scorer.score(W, c, G, act, GroupL1, k=3, pairs=pairs)
    ref = reference_scores(X, W, c, G, act, GroupL1)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-5, atol=1e-6 * ref.max())


def test_transform_shapes(rng):
    X = rng.standard_normal((9, 4))
    W = rng.standard_normal((3, 4))
    c = rng.standard_normal(3)
    H = transform(X, W, c, ACTIVATIONS["relu"])
    np.testing.assert_allclose(H, np.maximum(X @ W.T + c, 0))


def _refinement_problem(rng, name, pen, n, d, K, q, seed):
    """``X, G, act, W, c, s0``: q random units (radius 2) and their exact scores."""
    X = rng.standard_normal((n, d))
    G = rng.standard_normal((n, K)) / n
    act = ACTIVATIONS[name]
    W, c = RandomDirections().sample(X, G, q, np.random.default_rng(seed), act, 2.0)
    return X, G, act, W, c, reference_scores(X, W, c, G, act, pen)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_refinement_raises_scores_and_stays_feasible(name, rng):
    X, G, act, W, c, s0 = _refinement_problem(rng, name, L1, n=120, d=5, K=2, q=6, seed=0)
    W1, c1, s1 = refine_units(X, G, W, c, s0, act, L1, unit_scale=2.0, steps=20)
    np.testing.assert_allclose(s1, reference_scores(X, W1, c1, G, act, L1), rtol=1e-10)
    assert np.all(s1 >= s0) and np.any(s1 > s0 * 1.01)
    norms = np.sqrt((W1 * W1).sum(axis=1) + c1 * c1)
    if act.homogeneous:
        np.testing.assert_allclose(norms, 1.0)
    else:
        assert np.all(norms <= 2.0 + 1e-9)


@pytest.mark.parametrize("compiled", [False, True], ids=["arrays", "compiled"])
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("pen", [L1, GroupL1], ids=["l1", "group_l1"])
def test_refinement_is_the_plain_ascent(name, pen, compiled, rng, monkeypatch):
    # the ascent recomputes the gradients of the accepted units only: the same iterates as the
    # plain loop that recomputes every gradient (written out here from score_and_grad); on small
    # shapes it runs as one compiled loop, unit by unit (boostnet.refine._COMPILED_WORK)
    monkeypatch.setattr(refine_module, "_COMPILED_WORK", 1 << 30 if compiled else 0)
    X, G, act, W, c, s0 = _refinement_problem(rng, name, pen, n=90, d=6, K=3, q=7, seed=1)
    # each sampled unit passes through a training point, whose pre-activation is then zero up to
    # rounding: where a product rounds it to the other side of relu's kink, the gradient jumps.
    # Moved off the points, the two ways of computing the products take the same steps
    W, c = project_units(W.copy(), c + 0.05, act, 2.0)
    s0 = reference_scores(X, W, c, G, act, pen)
    W_in, c_in = W.copy(), c.copy()
    W1, c1, s1 = refine_units(X, G, W, c, s0, act, pen, unit_scale=2.0, steps=25)
    np.testing.assert_array_equal(W, W_in)  # the inputs are not modified
    np.testing.assert_array_equal(c, c_in)
    Wp, cp, best = W.copy(), c.copy(), s0.copy()
    eta = np.full(7, 0.1 * (1.0 if act.homogeneous else 2.0))
    _, gW, gc = score_and_grad(X, G, Wp, cp, act, pen)
    for _ in range(25):
        gn = np.sqrt((gW * gW).sum(axis=1) + gc * gc)
        Wn, cn = Wp + (eta / gn)[:, None] * gW, cp + (eta / gn) * gc
        project_units(Wn, cn, act, 2.0)
        sn, gWn, gcn = score_and_grad(X, G, Wn, cn, act, pen)
        ok = sn > best
        Wp[ok], cp[ok], gW[ok], gc[ok], best[ok] = Wn[ok], cn[ok], gWn[ok], gcn[ok], sn[ok]
        eta = np.where(ok, eta * 1.5, eta * 0.5)
    np.testing.assert_allclose(W1, Wp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c1, cp, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s1, best, rtol=1e-12)
    assert np.any(s1 > s0 * 1.01)


@pytest.mark.parametrize("name", ["relu", "tanh"])
def test_the_device_ascent_takes_the_host_ascents_steps_without_asking_which_moved(
    fake_cupy, name, monkeypatch
):
    # on a device the ascent takes every unit's gradient each iteration and keeps it where the
    # unit moved: no iteration waits for the card to say which units moved (no nonzero), and the
    # iterates are the host's, whose loop recomputes the moved units' gradients only
    monkeypatch.setattr(refine_module, "_COMPILED_WORK", 0)  # the host's array loop
    X, G, act, W, c, _ = _refinement_problem(
        np.random.default_rng(5), name, GroupL1, n=200, d=6, K=3, q=9, seed=6
    )
    c = c + 0.05  # off the training points (relu's kink: see the test above)
    s0 = reference_scores(X, W, c, G, act, GroupL1)
    host = refine_units(X, G, W, c, s0, act, GroupL1, 2.0, steps=20)

    def no_nonzero(*a, **k):
        raise AssertionError("the device ascent asked which units moved")

    cp = fake_cupy
    monkeypatch.setattr(cp, "flatnonzero", no_nonzero, raising=False)
    monkeypatch.setattr(cp, "nonzero", no_nonzero, raising=False)
    dev = refine_units(
        cp.asarray(X), cp.asarray(G), cp.asarray(W), cp.asarray(c), cp.asarray(s0), act,
        GroupL1, 2.0, steps=20,
    )  # fmt: skip
    for h, d in zip(host, dev, strict=True):
        np.testing.assert_allclose(cp.asnumpy(d), h, rtol=1e-9, atol=1e-12)
    assert np.any(host[2] > s0 * 1.01)


@pytest.mark.parametrize("name", ["relu", "sigmoid"])
def test_refinement_in_the_transposed_layout_is_the_same_ascent(name, rng):
    # XT_fast only changes the layout of the products with the rows (the CPU scorer's faster
    # one): in float64 the ascent takes the same steps to rounding
    X, G, act, W, c, s0 = _refinement_problem(rng, name, GroupL1, n=150, d=7, K=3, q=9, seed=2)
    plain = refine_units(X, G, W, c, s0, act, GroupL1, 2.0, steps=20, X_fast=X)
    moved = refine_units(
        X, G, W, c, s0, act, GroupL1, 2.0, steps=20, X_fast=X, XT_fast=np.ascontiguousarray(X.T)
    )
    for a, b in zip(plain, moved, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    assert np.any(moved[2] > s0 * 1.01)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "sign"])
def test_refinement_returns_the_activations_of_the_units_it_returns(name, rng):
    # given the starting units' activations, refine_units returns the returned units' own: the
    # exact re-score's where a unit moved, the given column where it did not (sign: none moves)
    X, G, act, W, c, s0 = _refinement_problem(rng, name, GroupL1, n=150, d=7, K=3, q=9, seed=4)
    H0 = transform(X, W, c, act)
    X32 = X.astype(np.float32)
    for fast in (None, X32):
        W1, c1, s1, H1 = refine_units(X, G, W, c, s0, act, GroupL1, 2.0, 20, X_fast=fast, H=H0)
        np.testing.assert_allclose(H1, transform(X, W1, c1, act), rtol=1e-12, atol=1e-13)
        # the same units and scores as without H
        for a, b in zip(refine_units(X, G, W, c, s0, act, GroupL1, 2.0, 20, X_fast=fast),
                        (W1, c1, s1), strict=True):  # fmt: skip
            np.testing.assert_array_equal(b, a)
        kept = np.all(W1 == W, axis=1)
        np.testing.assert_array_equal(H1[:, kept], H0[:, kept])
        if name != "sign":
            assert not kept.all()


def test_a_searched_pool_keeps_its_candidates_activations(rng):
    # the pool's activations: its units' own, the refined ones included (the step picks distinct
    # entering units by them); None where the exact search appended units (d <= 2)
    import math

    from boostnet import BoostNetClassifier, _greedy

    est = BoostNetClassifier(random_state=0, n_candidates=256)
    for d, exact in ((5, False), (2, True)):
        X = rng.standard_normal((120, d))
        G = rng.standard_normal((120, 3)) / 120
        cfg = _greedy._harder(est._config(0.01, SoftmaxCrossEntropy()))
        pool = _greedy.search_pool(
            NumpyScorer(X), G, get_sampler("mixture"), cfg, np.random.default_rng(0), GroupL1,
            threshold=math.inf,
        )  # fmt: skip
        assert pool.exact == exact  # the exact search runs in 2-D only
        if pool.W.shape[0] > cfg.top_k:  # the exact search appended units
            assert exact and pool.H is None
            continue
        np.testing.assert_allclose(
            pool.H, transform(X, pool.W, pool.c, cfg.activation), rtol=1e-12, atol=1e-13
        )


def test_scorer_keeps_the_transposed_copy_of_its_fast_rows(rng):
    X = rng.standard_normal((40, 6))
    scorer = NumpyScorer(X)
    XT = scorer.XT_fast
    assert XT.flags.c_contiguous and XT.dtype == np.float32
    np.testing.assert_array_equal(XT, scorer.X_fast.T)
    assert scorer.XT_fast is XT  # built once
    assert NumpyScorer(X, dtype="float64").XT_fast is None


def test_project_units(rng):
    W = rng.standard_normal((4, 3)) * 10
    c = rng.standard_normal(4) * 10
    project_units(W, c, ACTIVATIONS["tanh"], 2.0)
    np.testing.assert_allclose(np.sqrt((W * W).sum(1) + c * c), 2.0)
