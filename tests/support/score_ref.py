"""Independent references for candidate scores (plain NumPy from the definitions).

``score_j = dual_norm(act(X w_j + c_j)^T G)`` with the activations and dual norms written out here
(``||r||_inf`` = ``abs().max()``, ``||r||_2`` = ``norm``): nothing calls ``boostnet.scoring`` or a
penalty's ``dual_norm``, so a slip there cannot agree with itself.

Sign units: each candidate's hyperplane passes through a data point (``z = 0`` up to rounding), where
a screen may see either sign. :func:`assert_sign_scores` takes the pre-activations from the inputs
*as the screen rounded them* (float32, TF32 or float16) and, for the few points whose ``|z|`` is
within the screen's accumulation error of 0, accepts either sign: every other point's sign is exact,
so the scores are held to ~1e-5 of the best score, not to a slack of whole points.
"""

import itertools

import numpy as np


def act_by_hand(name, Z):
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-Z))
    if name == "tanh":
        return np.tanh(Z)
    if name == "sign":
        return np.where(Z > 0, 1.0, -1.0)
    raise AssertionError(name)


def dual_by_hand(pen, R):
    """Row-wise dual norm of ``R`` (q, K) for the penalty named ``pen`` (or a penalty class)."""
    name = getattr(pen, "name", pen)
    if name == "l1":
        return np.abs(R).max(axis=1)
    if name == "group_l1":
        return np.linalg.norm(R, axis=1)
    raise AssertionError(name)


def round_tf32(a):
    """float32 -> TF32 (10 explicit mantissa bits, round half away from zero), as tensor cores."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


def pre_activations(X, W, c, rounding="float64"):
    """``Z = X W^T + c`` in float64 from the inputs rounded as the screen rounds them."""
    if rounding == "float64":
        return np.asarray(X, np.float64) @ np.asarray(W, np.float64).T + np.asarray(c, np.float64)
    r32 = {"float32": lambda a: np.float32(a), "tf32": round_tf32, "float16": np.float16}[rounding]
    Xr = r32(np.asarray(X, np.float32)).astype(np.float64)
    Wr = r32(np.asarray(W, np.float32)).astype(np.float64)
    cr = np.asarray(c, np.float32).astype(np.float64)  # the bias: float32 (in the GEMM or after it)
    return Xr @ Wr.T + cr


def scores_by_hand(X, W, c, G, act_name, pen, rounding="float64"):
    H = act_by_hand(act_name, pre_activations(X, W, c, rounding))
    return dual_by_hand(pen, H.T @ np.asarray(G, np.float64))


def assert_sign_scores(scores, X, W, c, G, pen, rounding, rtol=1e-5, z_eps=None, max_ambiguous=8):
    """Sign-unit screen scores within ``rtol`` of the best score, each against a reference that
    takes either sign only at the points within ``z_eps`` of its hyperplane."""
    Z = pre_activations(X, W, c, rounding)
    if z_eps is None:
        # float32 accumulation of d + 1 products: a few ulps of sum |x_i w_i|
        mag = np.abs(np.asarray(X, np.float64)) @ np.abs(np.asarray(W, np.float64)).T + np.abs(c)
        z_eps = 1e-5 * mag
    else:
        z_eps = np.broadcast_to(z_eps, Z.shape)
    G = np.asarray(G, np.float64)
    amb = np.abs(Z) <= z_eps
    H = np.where(Z > 0, 1.0, -1.0)
    H[amb] = 0.0
    base = H.T @ G  # (M, K) without the ambiguous points
    best = np.zeros(len(scores))
    top = 0.0
    for j in range(len(scores)):
        pts = np.flatnonzero(amb[:, j])
        assert len(pts) <= max_ambiguous, (j, len(pts))
        opts = []
        for signs in itertools.product((-1.0, 1.0), repeat=len(pts)):
            r = base[j] + np.asarray(signs) @ G[pts] if len(pts) else base[j]
            opts.append(float(dual_by_hand(pen, r[None, :])[0]))
        opts = np.asarray(opts)
        best[j] = opts[np.argmin(np.abs(opts - float(scores[j])))]
        top = max(top, opts.max())
    assert np.any(amb), "expected candidates with a data point on their hyperplane"
    np.testing.assert_allclose(np.asarray(scores, np.float64), best, rtol=0, atol=rtol * top)
    return amb
