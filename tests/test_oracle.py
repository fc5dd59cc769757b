"""The exact best-unit search (boostnet.oracle) against brute force, and the fit's oracle."""

import numpy as np
import pytest

from boostnet import BoostNetRegressor
from boostnet.activations import get_activation
from boostnet.exceptions import ConfigError
from boostnet.oracle import exact_search, resolve_oracle
from boostnet.penalties import L1, GroupL1
from boostnet.refine import refine_units
from boostnet.samplers import Mixture
from boostnet.scoring import exact_scores

CASES = [(L1, 1), (L1, 3), (GroupL1, 3)]


def _scores(X, U, G, act, red):
    d = X.shape[1]
    return exact_scores(X, U[:, :d], U[:, d], G, get_activation(act), red)


def _sampled_best(X, G, act, red, total, rng, batch=100_000, refine_steps=60):
    """Best of ``total`` units of the package's sampler, the 32 best refined by ascent."""
    a = get_activation(act)
    keepW, keepc, keeps = [], [], []
    for _ in range(total // batch):
        W, c = Mixture().sample(X, G, batch, rng, a, 1.0)
        s = exact_scores(X, W, c, G, a, red)
        top = np.argsort(-s)[:32]
        keepW.append(W[top]), keepc.append(c[top]), keeps.append(s[top])
    W, c, s = np.concatenate(keepW), np.concatenate(keepc), np.concatenate(keeps)
    top = np.argsort(-s)[:32]
    _, _, s2 = refine_units(X, G, W[top], c[top], s[top], a, red, 1.0, refine_steps)
    return max(s.max(), s2.max())


@pytest.mark.parametrize("red,K", CASES)
def test_1d_sign_matches_brute_force_over_all_kinks(rng, red, K):
    X = rng.standard_normal((40, 1))
    X[5] = X[7]  # a duplicate
    G = rng.standard_normal((40, K))
    xs = np.sort(np.unique(X[:, 0]))
    cuts = np.concatenate([[xs[0] - 1], 0.5 * (xs[1:] + xs[:-1]), [xs[-1] + 1]])
    U = np.concatenate([np.column_stack([np.ones_like(cuts), -cuts]),
                        np.column_stack([-np.ones_like(cuts), cuts])])  # fmt: skip
    brute = _scores(X, U, G, "sign", red).max()
    W, c, s = exact_search(X, G, "sign", red)
    assert s[0] == pytest.approx(brute, rel=1e-12)
    assert np.linalg.norm(np.append(W[0], c[0])) == pytest.approx(1.0)
    assert _scores(X, np.column_stack([W, c]), G, "sign", red)[0] == pytest.approx(s[0])


@pytest.mark.parametrize("red,K", CASES)
def test_1d_relu_matches_brute_force(rng, red, K):
    """The best relu unit on the circle ||(v, c)|| = 1: at one of the 2n kinks
    +-(1, -x_i) or inside an arc between them; brute force: the kinks and a dense grid of the
    circle, refined by ascent."""
    n = 30
    X = rng.standard_normal((n, 1))
    G = rng.standard_normal((n, K))
    kinks = np.column_stack([np.ones(n), -X[:, 0]])
    kinks = np.concatenate([kinks, -kinks])
    kinks /= np.linalg.norm(kinks, axis=1, keepdims=True)
    t = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    grid = np.column_stack([np.cos(t), np.sin(t)])
    U = np.concatenate([kinks, grid])
    s = _scores(X, U, G, "relu", red)
    top = np.argsort(-s)[:16]
    _, _, sr = refine_units(X, G, U[top, :1], U[top, 1], s[top], get_activation("relu"), red,
                            1.0, 200)  # fmt: skip
    brute = max(s.max(), sr.max())
    W, c, se = exact_search(X, G, "relu", red)
    assert se[0] >= brute - 1e-12
    assert se[0] <= brute * (1 + 1e-6)
    assert se[0] >= _scores(X, kinks, G, "relu", red).max() - 1e-12


def test_1d_relu_optimum_inside_an_arc():
    """One point with a positive gradient: the best unit points at (x, 1), between kinks."""
    X = np.array([[0.0], [2.0]])
    G = np.array([[0.0], [1.0]])
    W, c, s = exact_search(X, G, "relu", L1)
    assert s[0] == pytest.approx(np.sqrt(5.0))
    assert np.allclose(np.append(W[0], c[0]), np.array([2.0, 1.0]) / np.sqrt(5.0))


@pytest.mark.parametrize("act", ["sign", "relu"])
@pytest.mark.parametrize("red,K", CASES)
def test_2d_exact_beats_a_million_sampled_and_refined_units(act, red, K):
    rng = np.random.default_rng(7 + K)
    n = 80
    X = rng.standard_normal((n, 2))
    G = rng.standard_normal((n, K))
    G -= G.mean(axis=0)  # as at a fitted intercept
    W, c, s = exact_search(X, G, act, red)
    sampled = _sampled_best(X, G, act, red, 1_000_000, rng)
    assert s[0] >= sampled - 1e-9 * abs(sampled)
    assert _scores(X, np.column_stack([W, c]), G, act, red)[0] == pytest.approx(s[0], rel=1e-12)


@pytest.mark.parametrize("act", ["sign", "relu"])
def test_2d_collinear_and_duplicate_points(act):
    """A 4 x 4 grid (many collinear points) with repeated points: every pattern is still found."""
    rng = np.random.default_rng(3)
    g = np.arange(4.0)
    X = np.array([(a, b) for a in g for b in g])
    X = np.concatenate([X, X[:5]])
    G = rng.standard_normal((X.shape[0], 2))
    W, c, s = exact_search(X, G, act, L1)
    # brute force: a dense fan of directions, every threshold between projections
    t = np.linspace(0, np.pi, 4001)
    best = -np.inf
    for v in np.column_stack([np.cos(t), np.sin(t)]) @ np.array([[1.0, 0.3], [-0.3, 1.0]]):
        p = np.unique(X @ v)
        cuts = np.concatenate([[p[0] - 1], 0.5 * (p[1:] + p[:-1]), [p[-1] + 1]])
        U = np.column_stack([np.tile(v, (cuts.size, 1)), -cuts])
        U = np.concatenate([U, -U])
        if act == "relu":  # the best relu unit may be off these lines; ascend from the best
            sc = _scores(X, U / np.linalg.norm(U, axis=1, keepdims=True), G, act, L1)
        else:
            sc = _scores(X, U, G, act, L1)
        best = max(best, sc.max())
    assert s[0] >= best - 1e-9
    if act == "sign":
        assert s[0] == pytest.approx(best, rel=1e-12)
    else:
        assert s[0] >= _sampled_best(X, G, act, L1, 200_000, rng) - 1e-9


def test_resolve_oracle_and_refusals():
    assert resolve_oracle("auto", 2, "relu") == "certify"
    assert resolve_oracle("auto", 1, "sign") == "certify"
    assert resolve_oracle("auto", 3, "relu") == "sampled"
    assert resolve_oracle("auto", 2, "relu", n_samples=100_000) == "sampled"  # O(n^2) per search
    assert resolve_oracle("auto", 2, "tanh") == "sampled"
    assert resolve_oracle("exact", 2, "sign") == "exact"
    with pytest.raises(ConfigError, match="sign or relu"):
        resolve_oracle("exact", 2, "sigmoid")
    with pytest.raises(ConfigError, match="at most 2"):
        resolve_oracle("exact", 3, "relu")
    with pytest.raises(ConfigError, match="sign or relu"):
        exact_search(np.zeros((5, 2)), np.ones((5, 1)), "tanh", L1)
    with pytest.raises(ConfigError, match="unknown oracle"):
        resolve_oracle("best", 2, "relu")


def test_exact_fit_is_not_improved_by_a_large_sampled_search():
    """The target: after a fit with the exact oracle, a continued search with 65 536 sampled
    candidates per step lowers the objective by at most 1e-6 (relative)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(150, 2))
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.1 * rng.standard_normal(150)
    est = BoostNetRegressor(alpha=0.003, oracle="exact", random_state=0, max_units=200)
    est.fit(X, y)
    assert est.oracle_ == "exact" and est.stop_reason_ == "certificate"
    obj = est.history_[-1].objective
    est.set_params(warm_start=True, oracle="sampled", n_candidates=65536)
    est.fit(X, y)
    assert est.oracle_ == "sampled"
    assert est.history_[-1].objective >= obj * (1 - 1e-6)


def test_auto_oracle_certificate_is_from_an_exact_pool():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 2))
    y = X[:, 0] * X[:, 1] + 0.1 * rng.standard_normal(100)
    est = BoostNetRegressor(alpha=0.01, random_state=0).fit(X, y)
    assert est.oracle_ == "certify" and est.stop_reason_ == "certificate"
    # the certifying pool held the exact search: a global certificate, one pool suffices
    assert est.certificate_["kind"] == "exact" and est.certificate_["pools"] == 1
    est3 = BoostNetRegressor(alpha=0.01, random_state=0).fit(np.column_stack([X, X[:, 0]]), y)
    assert est3.oracle_ == "sampled"
    assert (
        est3.certificate_["kind"] == "sampled" and est3.certificate_["pools"] == est3.certify_pools
    )
