"""Local refinement of the best candidates by projected gradient ascent on their score.

For a unit ``u = (v, c)`` with ``z = X v + c``, ``h = act(z)``, ``r = h^T G`` (K,):

    score(u) = dual_norm(r),
    d score / d u = sum_t act'(z_t) (G_t . g) [x_t, 1],   g = a subgradient of dual_norm at r,

and each step moves ``u`` along the normalised gradient and projects it back onto the feasible set
(unit sphere for relu, ball of radius ``unit_scale`` for sigmoid/tanh). A step is kept only if it raises
the score; its length grows by 1.5 after a success and halves after a failure, per unit. sign units
have a zero derivative almost everywhere and are returned unchanged.

Each iteration reads ``X`` twice: once for the trial units' scores (``W X^T``) and once for the
gradients, of the units whose step was accepted only (a rejected unit keeps its gradient; about
half the units are rejected in a hard search's ascent). On Fashion-MNIST's shapes (16 units, 30
steps, 10 000 x 784) the ascent took ~210 ms instead of ~280 ms. OpenBLAS packs the rows for
each of these thin products (a few units against 10 000 rows: ~5 ms where one unit's product
takes ~1 ms), and packs them faster from a contiguous ``X^T``: the CPU scorer keeps one
(``NumpyScorer.XT_fast``), and the gradients are taken as ``(X^T M^T)^T`` (8 units: 5.4 -> 3.0
ms; the ascent of a hard search ~19 % faster, experiments/README.md, section 8).
"""

from __future__ import annotations

from ._backend import get_namespace
from .activations import Activation, project_units
from .scoring import exact_scores, rows_product


def score_and_grad(X, G, W, c, activation: Activation, penalty, XT=None):
    """Scores of units ``(W, c)`` (q, d), (q,) and their gradients (``XT``: see
    :func:`refine_units`).

    Returns
    -------
    scores : (q,)
    gW : (q, d)
    gc : (q,)
    """
    Z, R = _forward(X, G, W, c, activation, XT)
    gW, gc = _backward(X, G, Z, R, activation, penalty, XT)
    return penalty.dual_norm(R), gW, gc


def _forward(X, G, W, c, activation: Activation, XT=None):
    """``Zt = W X^T + c`` (q, n) and ``R = act(Zt) G`` (q, K); the scores are ``dual_norm(R)``.
    Units in rows; the product is taken as ``W X^T`` on the device, as ``(X W^T)^T`` where ``XT``
    is given (the CPU scorer's layout: a little faster for OpenBLAS, 6.6-7.4 -> 6.0-6.1 ms for 16
    units on 10 000 x 784 rows)."""
    W = W.astype(X.dtype, copy=False)
    Zt = W @ X.T if XT is None else (X @ W.T).T
    Zt += c.astype(X.dtype, copy=False)[:, None]
    return Zt, activation(Zt) @ G


def _backward(X, G, Zt, R, activation: Activation, penalty, XT=None):
    """The scores' gradients ``(gW (q, d), gc (q,))`` from :func:`_forward`'s ``Zt`` and ``R``."""
    D = penalty.dual_norm_grad(R)  # (q, K)
    Mt = activation.chain(Zt, D @ G.T)  # (q, n)
    return rows_product(Mt, X, XT), Mt.sum(axis=1)


def refine_units(
    X, G, W, c, scores, activation: Activation, penalty, unit_scale=1.0, steps=10, X_fast=None,
    XT_fast=None,
):  # fmt: skip
    """Improve units by projected gradient ascent on their scores.

    Parameters
    ----------
    X : array, shape (n, d), float64
    G : array, shape (n, K), float64
    W : array, shape (q, d); c : array, shape (q,)
        Starting units (copied, not modified).
    scores : array, shape (q,)
        Their exact scores.
    activation : Activation
    penalty : Penalty
    unit_scale : float
    steps : int
    X_fast : array, shape (n, d), optional
        ``X`` in a cheaper dtype (the scorer's float32 copy): the ascent runs on it, and the
        refined units are then re-scored exactly on ``X``; a unit whose exact score did not rise
        is returned as it came.
    XT_fast : array, shape (d, n), optional
        ``X_fast`` transposed, contiguous (``NumpyScorer.XT_fast``): the products with the rows
        are then taken in the layouts OpenBLAS runs faster (the same figures up to rounding).

    Returns
    -------
    W, c, scores : the refined units and their exact scores (never lower than the inputs').
    """
    xp = get_namespace(X)
    W, c, best = W.copy(), c.copy(), xp.asarray(scores, dtype=X.dtype).copy()
    if not activation.differentiable or steps <= 0 or W.shape[0] == 0:
        return W, c, best
    if X_fast is not None:
        W_in, c_in, s_in = W, c, best
        Wr, cr, _ = _ascend(X_fast, G.astype(X_fast.dtype), W, c, activation, penalty,
                            unit_scale, steps, None, XT_fast)  # fmt: skip
        exact = exact_scores(X, Wr, cr, G, activation, penalty)
        up = exact > s_in
        return (
            xp.where(up[:, None], Wr, W_in),
            xp.where(up, cr, c_in),
            xp.where(up, exact, s_in),
        )
    return _ascend(X, G, W, c, activation, penalty, unit_scale, steps, best)


def _ascend(X, G, W, c, activation, penalty, unit_scale, steps, best, XT=None):
    """The ascent of :func:`refine_units` on ``X`` (scores in its dtype); ``best``: the starting
    scores, or None to compute them; ``XT``: ``X`` transposed, contiguous, or None."""
    xp = get_namespace(X)
    radius = 1.0 if activation.homogeneous else unit_scale
    eta = xp.full(W.shape[0], 0.1 * radius)
    s0, gW, gc = score_and_grad(X, G, W, c, activation, penalty, XT)
    if best is None:
        best = s0
    for _ in range(steps):
        gn = xp.sqrt((gW * gW).sum(axis=1) + gc * gc)
        gn = xp.where(gn > 0, gn, 1.0)
        W_new = W + (eta / gn)[:, None] * gW
        c_new = c + (eta / gn) * gc
        project_units(W_new, c_new, activation, unit_scale)
        Z, R = _forward(X, G, W_new, c_new, activation, XT)
        s_new = penalty.dual_norm(R)
        ok = s_new > best
        W = xp.where(ok[:, None], W_new, W)
        c = xp.where(ok, c_new, c)
        best = xp.where(ok, s_new, best)
        eta = xp.where(ok, eta * 1.5, eta * 0.5)
        # only the units that moved need a new gradient (about half of them: the backward
        # product is the other read of X per iteration)
        moved = xp.flatnonzero(ok)
        if moved.size:
            gW[moved], gc[moved] = _backward(X, G, Z[moved], R[moved], activation, penalty, XT)
    return W, c, best
