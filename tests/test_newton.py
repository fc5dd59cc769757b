"""The re-fit's Newton steps on the active set (boostnet._newton): the exact Hessian of the datafit,
the penalties' smooth parts, the direction against a dense solve, and the endgame they buy."""

import numpy as np
import pytest

from boostnet import _newton
from boostnet import refit as refit_module
from boostnet._newton import _preconditioner, newton_direction
from boostnet.datafits import Logistic, SoftmaxCrossEntropy, SquaredError
from boostnet.penalties import L1, GroupL1, SmoothPart
from boostnet.refit import CurvatureModel, refit


def _softmax_problem(rng, n=400, m=24, K=6, noise=0.8):
    """Units ``H`` (n, m) and one-hot targets of K classes that the units explain in part."""
    X = rng.standard_normal((n, 4))
    H = np.maximum(X @ rng.standard_normal((4, m)) + 0.3 * rng.standard_normal(m), 0.0)
    logits = X @ rng.standard_normal((4, K)) + noise * rng.standard_normal((n, K))
    Y = np.eye(K)[logits.argmax(axis=1)]
    return H, Y, np.full(n, 1.0 / n)


def _curvature_model(rng):
    """A 4-output curvature model of 10 units (for the preconditioner's tests)."""
    H, Y, a = _softmax_problem(rng, n=300, m=10, K=4)
    C = rng.uniform(0.05, 0.25, Y.shape) * a[:, None]
    return CurvatureModel.build(H, C, constant=False)


@pytest.mark.parametrize("datafit", [SquaredError(), Logistic(), SoftmaxCrossEntropy()])
def test_the_hessian_product_is_the_derivative_of_the_gradient(datafit, rng):
    n, K = 30, 1 if isinstance(datafit, Logistic) else 4
    F = rng.standard_normal((n, K))
    Y = np.eye(K)[rng.integers(0, K, n)] if K > 1 else rng.integers(0, 2, (n, 1)).astype(float)
    a = rng.random(n)
    V = rng.standard_normal((n, K))
    h = 1e-6
    fd = (datafit.raw_grad(Y, F + h * V, a) - datafit.raw_grad(Y, F - h * V, a)) / (2 * h)
    np.testing.assert_allclose(datafit.hessian_product(Y, F, a)(V), fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("penalty", [L1(0.3), GroupL1(0.3)], ids=["l1", "group_l1"])
def test_the_smooth_part_is_the_penalty_on_its_active_entries(penalty, rng):
    W = rng.standard_normal((5, 3))
    W[1] = 0.0
    W[3, 0] = 0.0
    part = penalty.smooth_part(W)
    expected_mask = (
        W != 0 if penalty.name == "l1" else np.repeat((W != 0).any(axis=1)[:, None], 3, 1)
    )
    np.testing.assert_array_equal(part.mask, expected_mask)
    h = 1e-6
    D = rng.standard_normal(W.shape) * part.mask  # directions that keep the active entries
    # gradient: the derivative of the value along D
    fd = (float(penalty.value(W + h * D)) - float(penalty.value(W - h * D))) / (2 * h)
    assert (part.grad * D).sum() == pytest.approx(fd, rel=1e-6)
    # Hessian: the derivative of the gradient along D, and its diagonal
    fd_grad = (penalty.smooth_part(W + h * D).grad - penalty.smooth_part(W - h * D).grad) / (2 * h)
    np.testing.assert_allclose(part.hess(D), fd_grad * part.mask, rtol=1e-5, atol=1e-8)
    E = np.zeros_like(W)
    for j, k in zip(*np.nonzero(part.mask), strict=True):
        E[:] = 0.0
        E[j, k] = 1.0
        assert part.hess_diag[j, k] == pytest.approx(part.hess(E)[j, k], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("penalty", [L1(0.01), GroupL1(0.1)], ids=["l1", "group_l1"])
def test_the_newton_direction_solves_the_restricted_system(penalty, blocks, rng, monkeypatch):
    """With a tight CG tolerance the direction is the dense Newton solve of the problem on the
    active entries, up to the null directions of softmax (a common shift of a row's K outputs,
    which only the group penalty sees); the same when the Hessian products take the rows in
    blocks (here two: 64 + 56 rows)."""
    if blocks:
        monkeypatch.setattr(_newton, "_BLOCK_BYTES", 1)
    H, Y, a = _softmax_problem(rng, n=120, m=8, K=4)
    datafit = SoftmaxCrossEntropy()
    start = refit(H, Y, a, datafit, penalty, np.zeros((8, 4)), datafit.intercept(Y, a), tol=1e-3)
    W, b = np.asarray(start.coef), np.asarray(start.intercept)
    assert (W != 0).any() and not (W != 0).all()
    F = H @ W + b
    G = datafit.raw_grad(Y, F, a)
    model = CurvatureModel.build(H, datafit.hess_diag(Y, F, a), False)
    args = (H, Y, a, F, H.T @ G, G.sum(axis=0), W, datafit, penalty, model)
    d = newton_direction(*args, eta=1e-12, max_cg=1000, dtype="float64")
    assert d is not None
    # the dense system on the active entries and the intercept
    part = penalty.smooth_part(W)
    idx = [(j, k) for j, k in zip(*np.nonzero(part.mask), strict=True)]
    K = W.shape[1]
    n_var = len(idx) + K
    J = np.zeros((H.shape[0], K, n_var))  # dF / d(variables)
    for v, (j, k) in enumerate(idx):
        J[:, k, v] = H[:, j]
    for k in range(K):
        J[:, k, len(idx) + k] = 1.0
    P = datafit.inverse_link(F)
    Hf = a[:, None, None] * (P[:, :, None] * np.eye(K) - P[:, :, None] * P[:, None, :])
    Hess = np.einsum("tkv,tkl,tlu->vu", J, Hf, J)
    for v, (j, k) in enumerate(idx):
        for u, (i, l) in enumerate(idx):
            if i == j:
                E = np.zeros_like(W)
                E[i, l] = 1.0
                Hess[v, u] += part.hess(E)[j, k]
    grad = np.concatenate([[(H.T @ G)[j, k] + part.grad[j, k] for j, k in idx], G.sum(axis=0)])
    x = np.linalg.lstsq(Hess, -grad, rcond=1e-12)[0]
    dW = np.zeros_like(W)
    for v, (j, k) in enumerate(idx):
        dW[j, k] = x[v]
    db = x[len(idx) :]

    def centred(dW, db):  # the change of the predictions, each row's common shift removed
        dF = H @ dW + db
        return dF - dF.mean(axis=1, keepdims=True)

    expected = centred(dW, db)
    np.testing.assert_allclose(centred(d.dW, d.db), expected, atol=1e-6 * abs(expected).max())
    if penalty.name == "group_l1":
        np.testing.assert_allclose(d.dW, dW, rtol=1e-5, atol=1e-6 * abs(dW).max())
    assert (d.dW[~part.mask] == 0).all()
    assert d.slope == pytest.approx(grad @ x, rel=1e-6) and d.slope < 0
    # the default float32 products steer the step about as well
    d32 = newton_direction(*args, eta=1e-12, max_cg=1000)
    assert abs(centred(d32.dW, d32.db) - expected).max() <= 0.05 * abs(expected).max()


@pytest.mark.parametrize("penalty", [L1(0.002), GroupL1(0.002)], ids=["l1", "group_l1"])
def test_newton_steps_finish_a_tight_many_class_refit(penalty, rng, monkeypatch):
    """From a loose solution, the tight re-fit of a 6-class softmax model takes a handful of outer
    iterations with the Newton steps; the per-output model alone converges linearly (the classes
    interact) and needs many more. Both reach the same optimum."""
    H, Y, a = _softmax_problem(rng)
    datafit = SoftmaxCrossEntropy()
    m, K = H.shape[1], Y.shape[1]
    loose = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), datafit.intercept(Y, a), tol=1e-2)
    with_newton = refit(H, Y, a, datafit, penalty, loose.coef, loose.intercept, tol=1e-8)
    monkeypatch.setattr(refit_module, "_NEWTON_TOL", 0.0)
    without = refit(H, Y, a, datafit, penalty, loose.coef, loose.intercept, tol=1e-8)
    assert with_newton.converged and with_newton.gap <= 1e-8 * with_newton.objective
    # group L1: a handful; elementwise L1 from some loose starts alternates between Newton steps
    # and coordinate descent (entries crossing zero) for 20-40 iterations (this start: 21)
    assert with_newton.n_iter <= (8 if penalty.name == "group_l1" else 25)
    assert without.n_iter >= 2 * with_newton.n_iter
    # the same optimum (the linear solver may not even reach the gap in its 200 iterations)
    assert with_newton.objective <= without.objective * (1 + 1e-12)
    assert with_newton.objective == pytest.approx(without.objective, rel=1e-6)


def test_a_huge_newton_step_is_held_to_the_trust_region(rng):
    """A near-separable model at a tiny lambda: the Newton steps are cut to a bounded change of
    the predictions, the objective never rises and no overflow reaches the loss."""
    H, Y, a = _softmax_problem(rng, n=200, m=30, K=3, noise=0.0)
    datafit, penalty = SoftmaxCrossEntropy(), GroupL1(1e-7)
    m, K = H.shape[1], Y.shape[1]
    loose = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), datafit.intercept(Y, a), tol=1e-2)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        r = refit(H, Y, a, datafit, penalty, loose.coef, loose.intercept, tol=1e-10, max_iter=30)
    assert np.isfinite(r.objective) and r.objective <= loose.objective


def test_the_preconditioner_inverts_each_output_block(rng):
    """Block k of the preconditioner is the inverse of ``[[B_k[S, S] + diag, hc_k[S]], [hc_k[S]^T,
    s_k]]`` with an identity row and column for each masked entry, exactly symmetric; a block that
    is not positive definite gives None (no Newton step) rather than a wrong inverse."""
    model = _curvature_model(rng)
    S = np.array([0, 2, 3, 7, 9])
    mask = np.ones((S.size, 4), dtype=bool)
    mask[1, 2] = False
    hess_diag = rng.uniform(0.0, 0.1, (S.size, 4)) * mask
    part = SmoothPart(mask, np.zeros(mask.shape), hess_diag, None)
    inv = _preconditioner(model, S, mask, part).inv
    assert inv.shape == (4, S.size + 1, S.size + 1) and inv.dtype == np.float32
    for k in range(4):
        P = np.empty((S.size + 1, S.size + 1))
        P[:-1, :-1] = model.B[k][np.ix_(S, S)] + np.diag(hess_diag[:, k])
        P[:-1, -1] = P[-1, :-1] = model.hc[k, S]
        P[-1, -1] = model.s[k]
        keep = np.append(mask[:, k], True)
        P[~keep, :] = 0.0
        P[:, ~keep] = 0.0
        P[~keep, ~keep] = 1.0
        np.testing.assert_array_equal(inv[k], inv[k].T)
        np.testing.assert_allclose(inv[k] @ P, np.eye(S.size + 1), atol=1e-4)
    bad = CurvatureModel(-model.B, model.hc, model.s, model.C, model.stride, model.scale)
    assert _preconditioner(bad, S, mask, part) is None


def test_the_group_preconditioner_keeps_the_penalty_blocks_whole(rng):
    """For group L1 the preconditioner is the inverse of the per-output blocks plus each unit's
    whole penalty block ``c_j (I - u_j u_j^T)`` (coupling its K outputs), not only its diagonal:
    applied to a residual it solves that dense system. With a heavy penalty (lambda large against
    the curvature) conjugate gradients then need far fewer iterations than with the diagonal."""
    model = _curvature_model(rng)
    S = np.array([0, 2, 3, 7, 9])
    nS, K = S.size, 4
    W = rng.standard_normal((nS, K)) * rng.uniform(0.01, 1.0, (nS, 1))
    part = GroupL1(0.05).smooth_part(W)
    prec = _preconditioner(model, S, part.mask, part)
    assert prec.core is not None
    # the dense matrix on (W_S, b), entries ordered (unit, output) then the K intercepts
    n_var = nS * K + K
    P = np.zeros((n_var, n_var))
    for k in range(K):
        idx = np.append(np.arange(nS) * K + k, nS * K + k)
        block = np.empty((nS + 1, nS + 1))
        block[:-1, :-1] = model.B[k][np.ix_(S, S)]
        block[:-1, -1] = block[-1, :-1] = model.hc[k, S]
        block[-1, -1] = model.s[k]
        P[np.ix_(idx, idx)] += block
    for j in range(nS):
        E = np.zeros((nS, K))
        for k in range(K):
            E[:] = 0.0
            E[j, k] = 1.0
            P[j * K : (j + 1) * K, j * K + k] += part.hess(E)[j]
    r = rng.standard_normal(n_var)
    zW, zb = prec(r[: nS * K].reshape(nS, K), r[nS * K :])
    z = np.concatenate([zW.ravel(), zb])
    np.testing.assert_allclose(P @ z, r, atol=1e-3 * abs(r).max())
    # against the block-Jacobi preconditioner with the penalty's diagonal only
    diagonal = _preconditioner(model, S, part.mask, SmoothPart(part.mask, part.grad, part.hess_diag,
                                                               None))  # fmt: skip
    assert diagonal.core is None

    def cg_iterations(apply):
        x, res = np.zeros(n_var), r.copy()
        zz = np.concatenate([v.ravel() for v in apply(res[: nS * K].reshape(nS, K), res[nS * K :])])
        p, rz = zz.copy(), res @ zz
        for it in range(1, 200):
            q = P @ p
            step = rz / (p @ q)
            x, res = x + step * p, res - step * q
            if np.linalg.norm(res) <= 1e-6 * np.linalg.norm(r):
                return it
            zz = np.concatenate(
                [v.ravel() for v in apply(res[: nS * K].reshape(nS, K), res[nS * K :])]
            )
            rz, rz_old = res @ zz, rz
            p = zz + (rz / rz_old) * p
        return 200

    assert cg_iterations(prec) <= 2 < cg_iterations(diagonal)  # exact here: one iteration


def test_the_group_preconditioner_falls_back_to_the_diagonal(rng, monkeypatch):
    """Where the Woodbury core is not numerically positive definite (in float32, then in float64)
    the preconditioner leaves the rank-one parts out: the block-Jacobi one with the penalty's
    diagonal, as for a penalty without them."""
    model = _curvature_model(rng)
    S = np.arange(10)
    W = rng.standard_normal((10, 4))
    part = GroupL1(0.05).smooth_part(W)
    calls = []
    real = _newton.spd_inverses

    def no_core(P, *args, **kw):
        calls.append(P.shape[0])
        return None if P.shape[0] == 1 else real(P, *args, **kw)

    monkeypatch.setattr(_newton, "spd_inverses", no_core)
    prec = _preconditioner(model, S, part.mask, part)
    assert calls == [4, 1, 4, 1, 4]  # float32 blocks and core, float64 ones, then the diagonal
    plain = SmoothPart(part.mask, part.grad, part.hess_diag, None)
    expected = _preconditioner(model, S, part.mask, plain)
    assert prec.core is None
    np.testing.assert_allclose(
        prec.inv, expected.inv, rtol=1e-5, atol=1e-6 * abs(expected.inv).max()
    )


def test_a_slow_newton_step_is_retried_once_the_support_has_changed(rng, monkeypatch):
    """A Newton step that does not halve the gap means a wrong active set; once coordinate descent
    has changed the support, the next Newton step is tried at once (not only after the gap has
    dropped ten times below the failed step's): the same optimum in fewer outer iterations, here
    a 10-class model with 80 units on 300 rows."""
    H, Y, a = _softmax_problem(np.random.default_rng(3), n=300, m=80, K=10, noise=1.5)
    datafit, penalty = SoftmaxCrossEntropy(), GroupL1(0.003)
    m, K = H.shape[1], Y.shape[1]
    loose = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), datafit.intercept(Y, a), tol=1e-2)
    calls = []
    real = _newton.newton_direction

    def counting(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(_newton, "newton_direction", counting)
    # the retry alone (a Newton step that drops the weights it would carry through zero, below,
    # also repairs a wrong active set, and here equals the retry)
    monkeypatch.setattr(refit_module, "_NEWTON_DROP", False)
    results = {}
    for retry in (True, False):
        monkeypatch.setattr(refit_module, "_NEWTON_RETRY", retry)
        calls.clear()
        r = refit(H, Y, a, datafit, penalty, loose.coef, loose.intercept, tol=1e-10)
        results[retry] = (r, len(calls))
    (fast, n_fast), (slow, n_slow) = results[True], results[False]
    assert fast.converged and slow.converged
    assert fast.objective == pytest.approx(slow.objective, rel=1e-10)
    assert n_fast >= 2 and n_slow >= 2  # Newton steps in both runs
    assert fast.n_iter < slow.n_iter  # (8 against 11 when written)


def test_crossing_marks_the_blocks_a_step_carries_through_zero():
    W = np.array([[1.0, -2.0], [0.5, 0.5], [0.0, 0.0], [3.0, 1.0]])
    D = np.array([[-1.5, 1.0], [-0.25, -0.25], [1.0, 1.0], [-3.0, -2.0]])
    # L1, per entry: 1 -> -0.5 flips, -2 -> -1 does not, 0.5 -> 0.25 does not, a zero entry never
    # counts, 3 -> 0 reaches zero without crossing, 1 -> -1 flips
    np.testing.assert_array_equal(
        L1.crossing(W, D), [[True, False], [False, False], [False, False], [False, True]]
    )
    # group L1, per row: the row's direction reversed (W_j . (W_j + D_j) < 0): (1, -2) -> (-0.5,
    # -1) keeps it (1.5 > 0), (3, 1) -> (0, -1) reverses it (-1)
    np.testing.assert_array_equal(
        GroupL1.crossing(W, D), [[False, False], [False, False], [False, False], [True, True]]
    )


def _switched(monkeypatch, switch, problem, start, tol):
    """The re-fits of ``problem`` (H, Y, a, datafit, penalty) from ``start`` to ``tol`` with the
    module switch ``boostnet.refit.<switch>`` on and off: both converge to the same objective."""
    results = {}
    for on in (True, False):
        monkeypatch.setattr(refit_module, switch, on)
        results[on] = refit(*problem, start.coef, start.intercept, tol=tol)
    on, off = results[True], results[False]
    assert on.converged and off.converged
    assert on.objective == pytest.approx(off.objective, rel=tol)
    return on, off


@pytest.mark.parametrize(
    ("penalty", "seed", "shape", "warm"),
    [
        # a 12-class model whose tightening has a unit to lose that the class-diagonal model keeps
        (GroupL1(0.002), 6, (600, 150, 12, 1.5), "loose"),
        # elementwise L1, re-fitted at 1.3 lambda from the optimum at lambda: entries leave
        (L1(0.003 * 1.3), 3, (300, 80, 10, 1.5), "optimum"),
    ],
)
def test_newton_steps_drop_the_weights_they_carry_through_zero(
    penalty, seed, shape, warm, monkeypatch
):
    """The restricted problem of a Newton step cannot set weights to zero: where its step carries a
    block through zero (``Penalty.crossing``), the step takes the block to zero instead. The same
    optimum in fewer outer iterations (on c26's stored tightenings 244 -> 115, experiments/README.md,
    section 8)."""
    n, m, K, noise = shape
    H, Y, a = _softmax_problem(np.random.default_rng(seed), n=n, m=m, K=K, noise=noise)
    datafit = SoftmaxCrossEntropy()
    b0 = datafit.intercept(Y, a)
    if warm == "loose":
        start = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), b0, tol=1e-2)
    else:
        start = refit(H, Y, a, datafit, L1(0.003), np.zeros((m, K)), b0, tol=1e-10)
    crossed = []
    real = type(penalty).crossing

    def spying(W, D):
        c = real(W, D)
        crossed.append(bool(c.any()))
        return c

    monkeypatch.setattr(type(penalty), "crossing", staticmethod(spying))
    on, off = _switched(monkeypatch, "_NEWTON_DROP", (H, Y, a, datafit, penalty), start, 1e-10)
    np.testing.assert_array_equal(on.coef != 0, off.coef != 0)
    assert any(crossed)  # a Newton step did carry weights through zero
    assert on.n_iter < off.n_iter  # (11 against 19 and 29 against 40 when written)


def test_weights_taken_back_from_zero_are_not_dropped_again(monkeypatch):
    """Where coordinate descent takes back from zero a block that a Newton step dropped, the drop
    was wrong, and the next Newton steps leave that block alone: without this a re-fit could cycle
    (a Newton step dropping it, coordinate descent restoring it). The problem below is one such,
    found by scanning small problems (elementwise L1, a loose warm start tightened to 1e-6); on
    a stored c26 tightening (group L1) 87 -> 31 outer iterations (experiments/README.md, section 8)."""
    m, K = 80, 8
    H, Y, a = _softmax_problem(np.random.default_rng(9), n=800, m=m, K=K, noise=0.3)
    datafit, penalty = SoftmaxCrossEntropy(), L1(0.002)
    start = refit(H, Y, a, datafit, penalty, np.zeros((m, K)), datafit.intercept(Y, a), tol=1e-2)
    on, off = _switched(monkeypatch, "_DROP_REVIVED_BAN", (H, Y, a, datafit, penalty), start, 1e-6)
    assert on.n_iter < 0.8 * off.n_iter  # (86 against 160 when written)


def test_the_active_units_rows_are_gathered_and_cast_exactly(rng):
    """``_active_rows``: the active units' activations in float32, as ``H[:, S]`` cast (the
    compiled gather on NumPy; every unit: a cast)."""
    from boostnet._newton import _active_rows

    H = rng.standard_normal((37, 9))
    S = np.array([0, 2, 3, 7])
    got = _active_rows(H, S, np.float32)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, H[:, S].astype(np.float32))
    np.testing.assert_array_equal(_active_rows(H, np.arange(9), np.float32), H.astype(np.float32))
