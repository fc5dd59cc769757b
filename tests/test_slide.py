"""Sliding the active units (boostnet.slide): the gradient, the descent, and the loop's use of it."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numdiff import central_difference

from boostnet import BoostNetClassifier, BoostNetRegressor, _greedy
from boostnet import slide as slide_module
from boostnet._greedy import _Loop
from boostnet.activations import ACTIVATIONS, project_units
from boostnet.datafits import DATAFITS, SquaredError
from boostnet.slide import _WHITEN_RIDGE, _conjugate, slide, units_gradient, whitening_metric


def get_datafit(name):
    return DATAFITS[name]()


def _problem(seed, n=60, d=3, m=5, K=3, datafit="softmax", activation="tanh"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((m, d))
    c = rng.standard_normal(m)
    coef = rng.standard_normal((m, K))
    b = rng.standard_normal(K)
    if datafit == "softmax":
        Y = np.eye(K)[rng.integers(0, K, n)]
    else:
        Y = rng.standard_normal((n, K))
    a = np.full(n, 1.0 / n)
    return X, Y, a, get_datafit(datafit), W, c, coef, b, ACTIVATIONS[activation]


def _loss(X, Y, a, df, W, c, coef, b, act):
    return float(df.value(Y, act(X @ W.T + c) @ coef + b, a))


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("datafit", ["softmax", "squared_error"])
def test_units_gradient_matches_finite_differences(activation, datafit):
    X, Y, a, df, W, c, coef, b, act = _problem(0, datafit=datafit, activation=activation)
    Z = X @ W.T + c
    _, G = df.value_grad(Y, act(Z) @ coef + b, a)
    gW, gc = units_gradient(X, Z, G, coef, act)
    num_W = central_difference(lambda Wx: _loss(X, Y, a, df, Wx, c, coef, b, act), W)
    num_c = central_difference(lambda cx: _loss(X, Y, a, df, W, cx, coef, b, act), c)
    np.testing.assert_allclose(gW, num_W, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(gc, num_c, rtol=1e-4, atol=1e-7)
    # the CPU scorer's transposed copy of the rows gives the same gradient
    gWt, gct = units_gradient(X, Z, G, coef, act, np.ascontiguousarray(X.T))
    np.testing.assert_allclose(gWt, gW, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gct, gc, rtol=1e-12, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    datafit=st.sampled_from(["softmax", "squared_error", "logistic"]),
    steps=st.integers(0, 6),
)
def test_slide_lowers_the_loss_and_keeps_units_feasible(seed, activation, datafit, steps):
    K = 1 if datafit == "logistic" else 3
    X, Y, a, df, W, c, coef, b, act = _problem(
        seed, K=K, datafit="squared_error", activation=activation
    )
    if datafit == "logistic":
        Y = (Y > 0).astype(float)
        df = get_datafit("logistic")
    elif datafit == "softmax":
        Y = np.eye(K)[np.argmax(Y, axis=1)]
        df = get_datafit("softmax")
    scale = 2.0
    W0, c0 = W.copy(), c.copy()
    project_units(W0, c0, act, scale)
    W_in, c_in = W0.copy(), c0.copy()
    s = slide(X, Y, a, df, W0, c0, coef, b, act, scale, steps)
    np.testing.assert_array_equal(W0, W_in)  # inputs untouched
    np.testing.assert_array_equal(c0, c_in)
    assert s.n_steps <= steps
    assert s.loss_before == pytest.approx(_loss(X, Y, a, df, W0, c0, coef, b, act), rel=1e-12)
    assert s.loss_after == pytest.approx(_loss(X, Y, a, df, s.W, s.c, coef, b, act), rel=1e-12)
    assert s.loss_after <= s.loss_before
    if s.n_steps:
        assert s.loss_after < s.loss_before
    else:
        np.testing.assert_array_equal(s.W, W0)
    np.testing.assert_allclose(s.H, act(X @ s.W.T + s.c), rtol=1e-12, atol=1e-12)
    # the predictions at the units it ends with (the next re-fit starts from them)
    np.testing.assert_allclose(s.F, s.H @ coef + b, rtol=1e-12, atol=1e-12)
    # given the predictions instead of the activations (the loop passes its last re-fit's): the
    # same slide, and the activations are computed only where the units moved
    F = act(X @ W0.T + c0) @ coef + b
    f = slide(X, Y, a, df, W0, c0, coef, b, act, scale, steps, F=F)
    assert f.n_steps == s.n_steps
    np.testing.assert_allclose(f.W, s.W, rtol=1e-12, atol=1e-12)
    assert f.loss_before == pytest.approx(s.loss_before, rel=1e-12)
    assert f.loss_after == pytest.approx(s.loss_after, rel=1e-12)
    np.testing.assert_allclose(f.F, s.F, rtol=1e-12, atol=1e-12)
    if s.n_steps:
        np.testing.assert_allclose(f.H, s.H, rtol=1e-12, atol=1e-12)
    else:
        assert f.H is None
    norms = np.sqrt((s.W**2).sum(axis=1) + s.c**2)
    if act.homogeneous:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-12)
    else:
        assert (norms <= scale * (1 + 1e-12)).all()


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("datafit", ["softmax", "squared_error", "logistic"])
def test_a_slide_in_row_blocks_takes_the_same_steps(activation, datafit, monkeypatch):
    # the descent on worker threads over row blocks (slide._Blocks, where it pays: many rows and
    # units, few features) against the stored n x m arrays (slide._Rows): the same slide to
    # rounding (float64 here, so the two summation orders agree to ~1e-12 over a few steps)
    K = 1 if datafit == "logistic" else 3
    X, Y, a, df, W, c, coef, b, act = _problem(7, n=90, K=K, datafit="squared_error",
                                               activation=activation)  # fmt: skip
    if datafit == "logistic":
        Y, df = (Y > 0).astype(float), get_datafit("logistic")
    elif datafit == "softmax":
        Y, df = np.eye(K)[np.argmax(Y, axis=1)], get_datafit("softmax")
    project_units(W, c, act, 2.0)
    monkeypatch.setattr(slide_module, "_BLOCK_BYTES", 8 * W.shape[0] * 20)  # 20 rows a block
    monkeypatch.setattr(slide_module, "n_workers", lambda: 2)
    out = {}
    for blocks in (False, True):
        monkeypatch.setattr(slide_module._Blocks, "pays", staticmethod(lambda X, m, b=blocks: b))
        out[blocks] = slide(X, Y, a, df, W, c, coef, b, act, 2.0, 5)
    assert out[True].n_steps == out[False].n_steps > 0
    np.testing.assert_allclose(out[True].W, out[False].W, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(out[True].c, out[False].c, rtol=1e-9, atol=1e-10)
    assert out[True].loss_after == pytest.approx(out[False].loss_after, rel=1e-10)
    assert out[True].step == pytest.approx(out[False].step, rel=1e-12)


def test_slide_moves_units_towards_a_planted_one():
    """One tanh unit, its output weight fixed at the planted value: sliding from a perturbed start
    recovers the planted unit's direction."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 2))
    act = ACTIVATIONS["tanh"]
    v, c = np.array([[1.5, -1.0]]), np.array([0.3])
    coef, b = np.array([[2.0]]), np.zeros(1)
    Y = act(X @ v.T + c) @ coef
    a = np.full(400, 1 / 400)
    df = get_datafit("squared_error")
    W0, c0 = v + 0.3, c - 0.2
    s = slide(X, Y, a, df, W0, c0, coef, b, act, 3.0, 200)
    assert s.loss_after < 1e-3 * s.loss_before
    assert np.abs(s.W - v).max() < 0.05 and abs(s.c[0] - c[0]) < 0.05


def test_a_fixed_dictionary_never_slides(relu_dictionary):
    X, y, W, c, kw = relu_dictionary
    est = BoostNetClassifier(slide_steps=5, **kw).fit(X, y)
    assert est.stop_reason_ == "certificate"
    # every active unit is a member of the dictionary, exactly
    for w, b in zip(est.hidden_weights_, est.hidden_bias_, strict=True):
        assert (np.all(W == w, axis=1) & (c == b)).any()
    assert all(r.time_slide == 0.0 for r in est.history_)


def test_sliding_fits_are_deterministic_and_recorded(digits_split):
    Xtr, _, ytr, _ = digits_split
    kw = dict(random_state=0, n_candidates=256, max_units=20)
    a = BoostNetClassifier(**kw).fit(Xtr, ytr)
    b = BoostNetClassifier(**kw).fit(Xtr, ytr)
    np.testing.assert_array_equal(a.hidden_weights_, b.hidden_weights_)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    grown = [r for r in a.history_ if r.n_added and r.n_units_before > 0]
    assert grown and all(r.time_slide > 0 for r in grown)
    off = BoostNetClassifier(slide_steps=0, **kw).fit(Xtr, ytr)
    assert all(r.time_slide == 0.0 for r in off.history_)


@pytest.mark.parametrize("activation", ["sign"])
def test_sign_units_do_not_slide(activation, rng):
    X = rng.standard_normal((120, 2))
    y = X[:, 0] * X[:, 1]
    est = BoostNetRegressor(
        activation=activation, alpha=0.01, random_state=0, max_units=5, oracle="sampled"
    ).fit(X, y)
    assert all(r.time_slide == 0.0 for r in est.history_)


def test_sliding_lowers_the_objective_where_units_drift(rng):
    """At equal units and pools, a fit whose units slide ends at an objective no higher than one
    whose units stay (a tanh regression whose best units are not among the sampled ones)."""
    X = rng.standard_normal((300, 3))
    y = np.tanh(X @ np.array([1.0, -2.0, 0.5]) + 0.3) + 0.5 * np.tanh(X[:, 1] - X[:, 2])
    kw = dict(activation="tanh", alpha=1e-3, random_state=0, max_units=4, n_candidates=64,
              refine=False, units_per_step=1)  # fmt: skip
    on = BoostNetRegressor(slide_steps=10, **kw).fit(X, y)
    off = BoostNetRegressor(slide_steps=0, **kw).fit(X, y)
    assert on.history_[-1].objective < off.history_[-1].objective


def test_each_unit_moves_by_its_gradient_per_unit_of_output_mass():
    # one accepted step of length t moves unit j by t * grad_j / ||w_j||: a light unit moves as far
    # as a heavy one with the same shape gradient would (module doc), not 100x less
    X, Y, a, df, W, c, coef, b, act = _problem(3, m=4, K=2, datafit="squared_error")
    coef[1] *= 1e-2  # a light unit
    Z = X @ W.T + c
    _, G = df.value_grad(Y, act(Z) @ coef + b, a)
    gW, gc = units_gradient(X, Z, G, coef, act)
    t = 1e-4  # small: accepted at once, inside the tanh ball (no projection)
    out = slide(X, Y, a, df, W, c, coef, b, act, 100.0, 1, step=t)
    assert out.n_steps == 1
    mass = np.sqrt((coef * coef).sum(axis=1))
    np.testing.assert_allclose(out.W, W - t * gW / mass[:, None], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out.c, c - t * gc / mass, rtol=1e-12, atol=1e-15)
    moves = np.sqrt(((out.W - W) ** 2).sum(axis=1))
    assert moves[1] > 0.01 * moves.max()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_a_long_slide_is_its_steps_taken_one_at_a_time(activation):
    # the descent moves the pre-activations as s (Z - t D) instead of recomputing X W^T + c for
    # every trial (module doc); one step per call recomputes them from X: the same units
    X, Y, a, df, W, c, coef, b, act = _problem(5, m=6, K=3, activation=activation)
    if activation == "relu":
        project_units(W, c, act, 1.0)
    scale = 1.5  # tanh: a ball the steps run into (projections)
    long = slide(X, Y, a, df, W, c, coef, b, act, scale, 6)
    assert long.n_steps == 6
    Wi, ci, step = W, c, None
    for _ in range(6):
        one = slide(X, Y, a, df, Wi, ci, coef, b, act, scale, 1, step=step)
        assert one.n_steps == 1
        Wi, ci, step = one.W, one.c, 1.5 * one.step
    np.testing.assert_allclose(long.W, Wi, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(long.c, ci, rtol=1e-9, atol=1e-12)
    assert long.loss_after == pytest.approx(one.loss_after, rel=1e-12)
    norms = np.sqrt((long.W**2).sum(axis=1) + long.c**2)
    assert (norms <= scale + 1e-12).all() if activation == "tanh" else np.allclose(norms, 1.0)
    if activation == "tanh":
        assert np.isclose(norms, scale).any()  # a projection happened on the way


def _scaled_gradient(X, Y, a, df, W, c, coef, b, act):
    Z = X @ W.T + c
    loss, G = df.value_grad(Y, act(Z) @ coef + b, a)
    gW, gc = units_gradient(X, Z, G, coef, act)
    inv = 1.0 / np.sqrt((coef * coef).sum(axis=1))
    return float(loss), gW * inv[:, None], gc * inv, inv


@pytest.mark.parametrize(("activation", "seed"), [("relu", 4), ("tanh", 7)])
def test_a_conjugate_slide_moves_its_second_step_along_g_plus_beta_d(activation, seed, monkeypatch):
    # the _CONJUGATE experiment: step 2 moves along g2 + beta d1 (Polak-Ribiere+ in the metric
    # of the per-unit scaling), from 1.5 times the first step's length, halved until the loss drops
    monkeypatch.setattr(slide_module, "_CONJUGATE", True)
    X, Y, a, df, W, c, coef, b, act = _problem(seed, m=6, K=3, activation=activation)
    if activation == "relu":
        project_units(W, c, act, 1.0)
    scale = 1.5
    one = slide(X, Y, a, df, W, c, coef, b, act, scale, 1)
    two = slide(X, Y, a, df, W, c, coef, b, act, scale, 2)
    assert one.n_steps == 1 and two.n_steps == 2
    _, g1W, g1c, inv = _scaled_gradient(X, Y, a, df, W, c, coef, b, act)
    loss1, g2W, g2c, _ = _scaled_gradient(X, Y, a, df, one.W, one.c, coef, b, act)
    w = 1.0 / inv

    def ip(pW, pc, qW, qc):
        return float((w * ((pW * qW).sum(axis=1) + pc * qc)).sum())

    beta = (ip(g2W, g2c, g2W, g2c) - ip(g2W, g2c, g1W, g1c)) / ip(g1W, g1c, g1W, g1c)
    assert beta > 0  # the test's problem takes the conjugate branch
    dW, dc = g2W + beta * g1W, g2c + beta * g1c
    assert ip(dW, dc, g2W, g2c) > 0
    t = 1.5 * one.step
    for _ in range(20):
        Wt, ct = one.W - t * dW, one.c - t * dc
        project_units(Wt, ct, act, scale)
        if _loss(X, Y, a, df, Wt, ct, coef, b, act) < loss1:
            break
        t *= 0.5
    np.testing.assert_allclose(two.W, Wt, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(two.c, ct, rtol=1e-9, atol=1e-12)
    # off (the default): the second step is along the plain scaled gradient instead
    monkeypatch.setattr(slide_module, "_CONJUGATE", False)
    plain = slide(X, Y, a, df, W, c, coef, b, act, scale, 2)
    assert not np.allclose(plain.W, two.W, rtol=1e-6, atol=1e-9)


def test_conjugate_falls_back_to_the_gradient():
    rng = np.random.default_rng(0)
    gW, gc = rng.standard_normal((4, 3)), rng.standard_normal(4)
    inv = rng.uniform(0.5, 2.0, 4)
    # beta < 0 (the gradient shrank along the last one): plain gradient, the same arrays
    nW, nc = _conjugate(gW, gc, 2.0 * gW, 2.0 * gc, gW, gc, inv)
    assert nW is gW and nc is gc
    # g + beta d not a descent direction (d points against g): plain gradient
    pW, pc = 0.1 * rng.standard_normal((4, 3)), 0.1 * rng.standard_normal(4)
    nW, nc = _conjugate(gW, gc, pW, pc, -100.0 * gW, -100.0 * gc, inv)
    assert nW is gW and nc is gc
    # otherwise g + beta d, beta = grad . (g - g_prev) / (grad_prev . g_prev), grad = g / inv
    dW, dc = rng.standard_normal((4, 3)), rng.standard_normal(4)
    w = 1.0 / inv
    beta = float(
        (w * ((gW * (gW - pW)).sum(axis=1) + gc * (gc - pc))).sum()
        / (w * ((pW * pW).sum(axis=1) + pc * pc)).sum()
    )
    assert beta > 0
    nW, nc = _conjugate(gW, gc, pW, pc, 1e-3 * dW, 1e-3 * dc, inv)
    np.testing.assert_allclose(nW, gW + beta * 1e-3 * dW, rtol=1e-12)
    np.testing.assert_allclose(nc, gc + beta * 1e-3 * dc, rtol=1e-12)


def test_conjugate_slides_go_further_on_ill_conditioned_rows(monkeypatch):
    # features on scales 0.1 .. 10: in the same number of steps the conjugate directions lower
    # the loss more than the scaled gradient does (what the switch is for)
    X, Y, a, df, W, c, coef, b, act = _problem(11, n=200, d=6, m=8, K=3, activation="tanh")
    X = X * np.logspace(-1, 1, 6)
    losses = {}
    for conj in (False, True):
        monkeypatch.setattr(slide_module, "_CONJUGATE", conj)
        losses[conj] = slide(X, Y, a, df, W, c, coef, b, act, 3.0, 12).loss_after
    assert losses[True] < losses[False]


def _budget(hard, m, d, K, slide_steps=3):
    return _Loop.slide_budget(_fake_loop(hard, m, d, K, slide_steps), m)


def _fake_loop(hard, m, d, K, slide_steps=3, thin=False, penalty=True):
    # the default pools: 2048 candidates; in the tail 16 refined by 30 ascent steps, 2784 passes;
    # penalty None: lambda not yet known (the first pool, which lambda_max is read from)
    fields = [("n_candidates", int, 2048), ("top_k", int, 32), ("n_refine", int, 1),
              ("refine_steps", int, 10)]  # fmt: skip
    config = dataclasses.make_dataclass("Config", fields)()
    loop = SimpleNamespace(
        hard=hard, thin=thin, slide_steps=slide_steps, config=config, X=np.zeros((5, d)),
        Y=np.zeros((5, K)), state=SimpleNamespace(n_units=m), penalty=penalty or None,
    )  # fmt: skip
    for name in ("search_config", "search_work", "harder_pays"):
        setattr(loop, name, getattr(_Loop, name).__get__(loop))
    return loop


def test_a_thin_pool_searches_harder_where_that_costs_less_than_the_curvature_model():
    # the harder search's extra work per row: (2784 - 2064) passes x (d + 1 + K), at most a
    # quarter of the curvature model's m^2 K
    c26 = _fake_loop(False, 190, 16, 26, thin=True)  # 4 * 720 * 43 = 123 840 <= 190^2 * 26
    assert c26.harder_pays() and c26.search_config().n_refine == 16
    digits = _fake_loop(False, 28, 64, 10, thin=True)  # 4 * 720 * 75 > 28^2 * 10
    assert not digits.harder_pays() and digits.search_config().n_refine == 1
    friedman1 = _fake_loop(False, 126, 10, 1, thin=True)  # 4 * 720 * 12 = 34 560 > 126^2
    assert not friedman1.harder_pays()
    c11 = _fake_loop(False, 76, 10, 11, thin=True)  # 4 * 720 * 22 = 63 360 <= 76^2 * 11
    assert c11.harder_pays() and not _fake_loop(False, 75, 10, 11, thin=True).harder_pays()
    # not thin yet: the plain pool, whatever the costs; in the tail: the harder one
    assert _fake_loop(False, 190, 16, 26).search_config().n_refine == 1
    assert _fake_loop(True, 28, 64, 10).search_config().n_refine == 16
    # the first pool of a fit whose lambda is a share of lambda_max searches harder too
    assert _fake_loop(False, 0, 64, 10, penalty=False).search_config().n_refine == 16


def test_the_tail_slides_as_far_as_a_search_costs():
    # outside the tail: slide_steps, whatever the costs
    assert _budget(False, 10, 784, 10) == 3
    assert _budget(True, 10, 784, 10, slide_steps=0) == 0
    # Fashion-MNIST's shapes: a hard search costs ~4 slide steps of 240 units (784 features)
    # beyond the curvature model (240^2 x 10 per row): (2784 * 795 - 576000) // (240 * 1580),
    # and the slide may spend twice that
    assert _greedy._TAIL_SLIDE_SHARE == 2.0
    assert _budget(True, 240, 784, 10) == int(2 * (2784 * 795 - 576000)) // (240 * 1580) == 8
    assert _budget(True, 120, 784, 10) == _greedy._TAIL_SLIDE_MAX  # 21, capped
    assert _budget(True, 40, 784, 10) == _greedy._TAIL_SLIDE_MAX
    # 26 classes, 16 features, 300 units: the re-fit's model costs more than the search
    assert _budget(True, 300, 16, 26) == 3
    assert _budget(True, 300, 16, 26, slide_steps=5) == 5


def test_a_loose_refit_is_tightened_after_one_clean_pool_where_that_is_cheap(monkeypatch):
    # in the tail a hard pool is 2784 passes x (d + 1 + K) per row; a tight re-fit's curvature
    # model m^2 K per row
    fashion = _fake_loop(True, 110, 784, 10)  # 110^2 * 10 = 121 000 <= 2784 * 795
    digits = _fake_loop(True, 62, 64, 10)  # 38 440 <= 2784 * 75
    c11 = _fake_loop(True, 166, 10, 11)  # 303 116 > 2784 * 22
    c26 = _fake_loop(True, 590, 16, 26)  # 9.05e6 > 2784 * 43
    pools = [_Loop.loose_pools(loop) for loop in (fashion, digits, c11, c26)]
    assert pools == [1, 1, 2, 2]
    # the boundary: equal work still counts as cheap
    K = 1
    edge = _fake_loop(True, 1, 10, K)
    m = int(np.sqrt(edge.search_work(edge.search_config()) / K))
    assert _Loop.loose_pools(_fake_loop(True, m, 10, K)) == 1
    assert _Loop.loose_pools(_fake_loop(True, m + 1, 10, K)) == 2
    monkeypatch.setattr(_greedy, "_TIGHTEN_EARLY", False)
    assert _Loop.loose_pools(fashion) == 2


def test_fits_record_their_slide_steps_and_slide_further_in_the_tail(digits_split):
    Xtr, _, ytr, _ = digits_split
    est = BoostNetClassifier(random_state=0, slide_steps=2).fit(Xtr[:600], ytr[:600])
    assert est.stop_reason_ == "certificate"
    hist = est.history_
    # the tail starts after the first pool that found nothing
    first_clean = next(i for i, r in enumerate(hist) if r.best_score <= est.alpha_ * (1 + est.tol))
    before = [r.slide_steps for r in hist[1:first_clean]]
    after = [r.slide_steps for r in hist[first_clean + 1 :] if r.added]
    assert max(before) <= 2 and max(after) > 2
    assert all(r.slide_steps == 0 for r in hist if not r.added)


def test_whitening_metric_inverts_the_weighted_second_moment_with_its_ridge(rng):
    X = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 4))  # correlated columns
    a = rng.random(50)
    a /= a.sum()
    Xt = np.hstack([X, np.ones((50, 1))])
    M = Xt.T @ (a[:, None] * Xt)
    M += _WHITEN_RIDGE * np.trace(M) / 5 * np.eye(5)
    P = whitening_metric(X, a)
    np.testing.assert_allclose(P @ M, np.eye(5), atol=1e-10)
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    assert whitening_metric(X.astype(np.float32), a).dtype == np.float32


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    datafit=st.sampled_from(["softmax", "squared_error"]),
)
def test_whitened_slide_lowers_the_loss_and_keeps_units_feasible(seed, activation, datafit):
    X, Y, a, df, W, c, coef, b, act = _problem(seed, datafit=datafit, activation=activation)
    X = X @ np.array([[1.0, 0.9, 0.0], [0.0, 0.4, 0.0], [0.0, 0.0, 3.0]])  # correlated, scaled
    scale = 2.0
    project_units(W, c, act, scale)
    P = whitening_metric(X, a)
    s = slide(X, Y, a, df, W, c, coef, b, act, scale, 4, metric=P)
    assert s.loss_after <= s.loss_before
    assert s.loss_after == pytest.approx(_loss(X, Y, a, df, s.W, s.c, coef, b, act), rel=1e-12)
    norms = np.sqrt((s.W**2).sum(axis=1) + s.c**2)
    if act.homogeneous:
        np.testing.assert_allclose(norms, 1.0, rtol=1e-12)
    else:
        assert (norms <= scale * (1 + 1e-12)).all()
    # in the screening dtype (the loop's float32 copy of X) the same descent is taken there
    f = slide(X, Y, a, df, W, c, coef, b, act, scale, 4, metric=P, X_fast=X.astype(np.float32))
    assert f.loss_after <= f.loss_before


def test_whitened_direction_is_a_descent_direction_in_the_tangent_space():
    """T P T g: orthogonal to each (relu) unit, and a descent direction (g . T P T g > 0)."""
    X, Y, a, df, W, c, coef, b, act = _problem(3, d=4, activation="relu")
    project_units(W, c, act, 1.0)
    Z = X @ W.T + c
    _, G = df.value_grad(Y, act(Z) @ coef + b, a)
    gW, gc = units_gradient(X, Z, G, coef, act)
    g = np.hstack([gW, gc[:, None]])
    U = np.hstack([W, c[:, None]])
    T = g - (g * U).sum(axis=1, keepdims=True) * U
    P = whitening_metric(X, a)
    d = T @ P
    d -= (d * U).sum(axis=1, keepdims=True) * U
    np.testing.assert_allclose((d * U).sum(axis=1), 0.0, atol=1e-12)
    assert ((g * d).sum(axis=1) > 0).all()  # per unit: P is positive definite on the tangent


def test_the_loop_slides_whitened_when_switched_on(digits_split, monkeypatch):
    Xtr, _, ytr, _ = digits_split
    kw = dict(random_state=0, n_candidates=256, max_units=15)
    plain = BoostNetClassifier(**kw).fit(Xtr, ytr)
    calls = []
    real = _greedy.whitening_metric
    monkeypatch.setattr(_greedy, "whitening_metric", lambda X, a: calls.append(1) or real(X, a))
    monkeypatch.setattr(_greedy, "_WHITEN_SLIDE", True)
    white = BoostNetClassifier(**kw).fit(Xtr, ytr)
    again = BoostNetClassifier(**kw).fit(Xtr, ytr)
    assert len(calls) == 2  # once per fit
    assert not np.array_equal(white.hidden_weights_, plain.hidden_weights_)
    np.testing.assert_array_equal(white.hidden_weights_, again.hidden_weights_)
    assert all(np.isfinite(r.objective) for r in white.history_)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_the_row_passes_give_the_same_losses_and_gradients(activation, rng, monkeypatch):
    # the descent's passes over the rows: _Rows' compiled loops (NumPy arrays), its array
    # expressions (any other array module), and _Blocks (row blocks shared by worker threads,
    # nothing n x m kept): the same trial loss and gradient as the direct float64 formulas
    from boostnet import slide as S

    act = ACTIVATIONS[activation]
    n, d, m, K = 70, 4, 9, 3
    monkeypatch.setattr(S, "_BLOCK_BYTES", 16 * m * 4)  # blocks of 16 rows: 5 blocks
    monkeypatch.setattr(S, "n_workers", lambda: 2)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W, c = rng.standard_normal((m, d)), rng.standard_normal(m)
    gW, gc = rng.standard_normal((m, d)), rng.standard_normal(m)
    coef = rng.standard_normal((m, K)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    Y, a = rng.standard_normal((n, K)), np.full(n, 1.0 / n)
    s = rng.random(m) + 0.5
    W_t, c_t = (W - 0.3 * gW) * s[:, None], (c - 0.3 * gc) * s
    fit = SquaredError()

    def at(A, F=None):
        loss, G = fit.value_grad(Y, A @ coef + b if F is None else F, a)
        return float(loss), G

    assert S._Blocks.pays(np.zeros((n, d), np.float32), m)
    out = []
    for kind in ("compiled", "expressions", "blocks"):
        if kind == "blocks":
            rows = S._Blocks(X, m, act, None, at, coef, b, K)
            assert len(rows.shares) == 2
        else:
            rows = S._Rows(X, m, act, None, at)
            rows.code = rows.code if kind == "compiled" else None
        loss0, _ = rows.start(W, c)
        rows.direction(gW, gc)
        loss_t, G_t = rows.trial(0.3, s, W_t, c_t)
        rows.accept()
        out.append((loss0, loss_t, *rows.gradient(G_t, coef)))
    X64 = X.astype(float)
    Z_ref = X64 @ W_t.T + c_t
    loss_ref, G_ref = fit.value_grad(Y, act(Z_ref) @ coef + b, a)
    ref_gW, ref_gc = units_gradient(X64, Z_ref, G_ref, coef.astype(float), act)
    loss0_ref = fit.value(Y, act(X64 @ W.T + c) @ coef + b, a)
    for loss0, loss_t, gW_, gc_ in out:
        assert loss0 == pytest.approx(loss0_ref, rel=1e-5)
        assert loss_t == pytest.approx(loss_ref, rel=1e-5)
        np.testing.assert_allclose(gW_, ref_gW, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gc_, ref_gc, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "sign"])
def test_the_derivative_from_the_activation_equals_the_derivative(activation, rng):
    act = ACTIVATIONS[activation]
    z = rng.standard_normal(200) * 3
    np.testing.assert_allclose(act.derivative_at(act(z.copy())), act.derivative(z), atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "sign"])
@pytest.mark.parametrize("blocks", [False, True])
def test_outputs_write_the_activations_into_a_wider_array(activation, blocks, rng, monkeypatch):
    # the moved units' activations go into the first columns of the greedy loop's array (the
    # entering units' beside them) and the predictions come with them, in row blocks or not:
    # the same figures as the direct formulas, the other columns untouched
    from boostnet import slide as S

    act = ACTIVATIONS[activation]
    n, d, m, K = 70, 4, 9, 3
    if blocks:
        monkeypatch.setattr(S, "_BLOCK_BYTES", 16 * m * 8)  # blocks of 16 rows: 5 blocks
    X = rng.standard_normal((n, d))
    W, c = rng.standard_normal((m, d)), rng.standard_normal(m)
    coef, b = rng.standard_normal((m, K)), rng.standard_normal(K)
    wide = np.full((n, m + 2), 7.0)
    H, F = S.outputs(X, W, c, act, coef, b, out=wide[:, :m])
    H_ref = act(X @ W.T + c)
    np.testing.assert_allclose(wide[:, :m], H_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F, H_ref @ coef + b, rtol=1e-12, atol=1e-12)
    assert np.shares_memory(H, wide) and (wide[:, m:] == 7.0).all()
    H2, F2 = S.outputs(X, W, c, act, coef, b)  # no array given: a new one
    np.testing.assert_array_equal(H2, wide[:, :m])
    np.testing.assert_array_equal(F2, F)


def test_outputs_on_a_device_write_into_the_view(fake_cupy):
    from boostnet import slide as S
    from boostnet.scoring import transform

    cp = fake_cupy
    rng = np.random.default_rng(0)
    act = ACTIVATIONS["relu"]
    X = rng.standard_normal((40, 3))
    W, c = rng.standard_normal((5, 3)), rng.standard_normal(5)
    coef, b = rng.standard_normal((5, 2)), rng.standard_normal(2)
    wide = cp.zeros((40, 7))
    Xd, Wd, cd = cp.asarray(X), cp.asarray(W), cp.asarray(c)
    H, F = S.outputs(Xd, Wd, cd, act, cp.asarray(coef), cp.asarray(b), out=wide[:, :5])
    transform(Xd, Wd[:2], cd[:2], act, out=wide[:, 5:])
    H_ref = np.maximum(X @ W.T + c, 0)
    np.testing.assert_allclose(cp.asnumpy(wide), np.hstack([H_ref, H_ref[:, :2]]), atol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(F), H_ref @ coef + b, atol=1e-12)
