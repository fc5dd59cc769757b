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

On small shapes (units x rows x (features + outputs) up to ``_COMPILED_WORK``) the array calls
cost more than their arithmetic: an ascent step of one unit on wine's 133 x 13 rows took ~35 us,
of which the products are under 1 us. There the CPU runs the same ascent as one compiled loop,
unit by unit (each unit has its own step length, so the units never interact): one unit's
10-step ascent 0.33 -> 0.014 ms (wine), 0.38 -> 0.06 ms (c11's 750 x 10 rows, 11 outputs); 16
units x 30 steps on wine 1.2 -> 0.34 ms, on c2-noisy's 525 x 8 rows 1.6 -> 0.63 ms. Its sums run
in four interleaved partial sums, a fixed order (reassociated, vectorised sums would depend on the
arrays' alignment, and a seed must give one model in any process). Larger shapes keep BLAS's
products: 16 units x 30 steps on c11 1.9 ms with BLAS, 2.2 compiled; on digits 3.3 against 11.8.
Whole fits (seeds 0-5, experiments/README.md, section 8): wine 57 -> 41 ms, iris 43 -> 29 ms,
c2-noisy 488 -> 383 ms. The two agree to rounding, except where a pre-activation sits on relu's
kink (a sampled unit passes through a training point, ``z = 0`` up to rounding): there either may
round to the other side, as two BLAS products may.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._backend import get_namespace
from .activations import COMPILED_CODES, Activation, chained, project_units
from .scoring import rows_product, scores_and_activations, transform

#: Largest ``units x rows x (features + outputs)`` whose ascent runs as one compiled loop on the
#: CPU (:func:`_ascend_rows`): below it the generic path's ~20 array calls per iteration cost more
#: than the arithmetic (module doc); above it BLAS's products are faster (breast-cancer's 16 x 426
#: x 31 about even, c11's 16 x 750 x 21 15 % slower compiled).
_COMPILED_WORK = 1 << 17
#: On a device, the generic ascent takes every unit's gradient each iteration (no copy to the host
#: of which units moved; see :func:`_ascend`).
_DEVICE_NO_SYNC = True
_NORM_CODES = {"l1": 0, "group_l1": 1}  # the dual norm: max |r_k| (l1), ||r||_2 (group_l1)


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
    XT_fast=None, H=None,
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
    H : array, shape (n, q), optional
        The starting units' activations on ``X`` (the exact scores' own,
        :attr:`boostnet.scoring.ScoreResult.H_top`). Given, the returned units' activations are
        returned too: with ``X_fast``, the exact re-score's own where a unit moved and ``H``'s
        column where it did not, so that the loop needs no other pass over the rows for them.

    Returns
    -------
    W, c, scores : the refined units and their exact scores (never lower than the inputs').
    H : array, shape (n, q), ``X``'s dtype; only where ``H`` was given
        Their activations on ``X``.
    """
    xp = get_namespace(X)
    W, c, best = W.copy(), c.copy(), xp.asarray(scores, dtype=X.dtype).copy()
    if not activation.differentiable or steps <= 0 or W.shape[0] == 0:
        return (W, c, best) if H is None else (W, c, best, H)
    if X_fast is not None:
        W_in, c_in, s_in = W, c, best
        Wr, cr, _ = _ascend(X_fast, G.astype(X_fast.dtype), W, c, activation, penalty,
                            unit_scale, steps, None, XT_fast)  # fmt: skip
        exact, Hr = scores_and_activations(X, Wr, cr, G, activation, penalty)
        up = exact > s_in
        out = (xp.where(up[:, None], Wr, W_in), xp.where(up, cr, c_in), xp.where(up, exact, s_in))
        return out if H is None else (*out, xp.where(up[None, :], Hr, H))
    W, c, best = _ascend(X, G, W, c, activation, penalty, unit_scale, steps, best)
    return (W, c, best) if H is None else (W, c, best, transform(X, W, c, activation))


def _ascend(X, G, W, c, activation, penalty, unit_scale, steps, best, XT=None):
    """The ascent of :func:`refine_units` on ``X`` (scores in its dtype); ``best``: the starting
    scores, or None to compute them; ``XT``: ``X`` transposed, contiguous, or None."""
    xp = get_namespace(X)
    radius = 1.0 if activation.homogeneous else unit_scale
    n, d = X.shape
    act = COMPILED_CODES.get(activation.name)
    norm = _NORM_CODES.get(getattr(penalty, "name", None))
    if (
        xp is np
        and act is not None
        and norm is not None
        and W.shape[0] * n * (d + G.shape[1]) <= _COMPILED_WORK
    ):
        # small shapes: the whole ascent as one compiled loop, unit by unit (the units do not
        # interact: each has its own step length), the same rule as below
        XT = np.ascontiguousarray(X.T) if XT is None else XT
        dt = W.dtype
        W, c = np.array(W, dtype=np.float64), np.array(c, dtype=np.float64)  # copies: in place
        start = np.full(W.shape[0], np.nan) if best is None else np.asarray(best, np.float64)
        GT = np.ascontiguousarray(G.T, dtype=XT.dtype)
        s = _ascend_rows(XT, GT, W, c, start, 0.1 * radius, steps, act, norm,
                         activation.homogeneous, float(unit_scale))  # fmt: skip
        return W.astype(dt, copy=False), c.astype(dt, copy=False), s.astype(X.dtype)
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
        if xp is np or not _DEVICE_NO_SYNC:
            # only the units that moved need a new gradient (about half of them: the backward
            # product is the other read of X per iteration)
            moved = xp.flatnonzero(ok)
            if moved.size:
                gW[moved], gc[moved] = _backward(X, G, Z[moved], R[moved], activation, penalty, XT)
        else:
            # on a device, every unit's gradient, kept where the unit moved: the subset's size
            # would be a copy to the host per iteration, each waiting for the card (c26 on an
            # H200: 34 ms per ascent of 16 units x 30 steps), while the card's work is small
            gW_all, gc_all = _backward(X, G, Z, R, activation, penalty, XT)
            gW = xp.where(ok[:, None], gW_all, gW)
            gc = xp.where(ok, gc_all, gc)
    return W, c, best


# ---- the ascent of small shapes on the CPU: one compiled loop ------------------------------------
@njit(cache=True, nogil=True)
def _unit_forward(XT, GT, w, cu, act, norm, z, h, r):  # pragma: no cover - compiled
    """``z = X w + cu`` and ``h = act(z)`` (n,), ``r = G^T h`` (K,), ``GT`` = ``G^T`` (K, n);
    returns the score ``dual_norm(r)``."""
    d, n = XT.shape
    K = GT.shape[0]
    for t in range(n):
        z[t] = cu
    for j in range(d):
        wj = w[j]
        for t in range(n):
            z[t] += wj * XT[j, t]
    for t in range(n):
        v = z[t]
        if act == 0:
            h[t] = v if v > 0.0 else 0.0
        elif act == 1:
            h[t] = math.tanh(v)
        else:
            h[t] = 0.5 * (1.0 + math.tanh(0.5 * v))
    for k in range(K):
        r[k] = _dot4(h, GT[k])
    if norm == 0:
        s = 0.0
        for k in range(K):
            s = max(s, abs(r[k]))
        return s
    s = 0.0
    for k in range(K):
        s += r[k] * r[k]
    return math.sqrt(s)


@njit(cache=True, nogil=True)
def _unit_backward(XT, GT, h, r, act, norm, m, gw):  # pragma: no cover - compiled
    """The score's gradient at the unit of :func:`_unit_forward` (``h``, ``r``): ``gw`` (d,)
    written (``m``, (n,): scratch), ``gc`` returned."""
    d, n = XT.shape
    K = GT.shape[0]
    D = np.zeros(K)
    if norm == 0:
        k = 0
        for i in range(1, K):
            if abs(r[i]) > abs(r[k]):
                k = i
        D[k] = 1.0 if r[k] > 0 else (-1.0 if r[k] < 0 else 0.0)
    else:
        s = 0.0
        for i in range(K):
            s += r[i] * r[i]
        s = math.sqrt(s)
        for i in range(K):
            D[i] = r[i] / s if s > 0 else r[i]
    for t in range(n):
        m[t] = 0.0
    for k in range(K):  # m = G D
        Dk = D[k]
        if Dk != 0.0:
            for t in range(n):
                m[t] += Dk * GT[k, t]
    for t in range(n):  # times act'(z), from h = act(z)
        m[t] = chained(m[t], h[t], act)
    for j in range(d):
        gw[j] = _dot4(m, XT[j])
    return _sum4(m)


@njit(cache=True, nogil=True)
def _dot4(u, v):  # pragma: no cover - compiled
    """``u . v`` in four interleaved partial sums (a fixed order, whatever the arrays' alignment:
    four independent chains instead of one)."""
    n = u.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    t = 0
    while t + 4 <= n:
        s0 += u[t] * v[t]
        s1 += u[t + 1] * v[t + 1]
        s2 += u[t + 2] * v[t + 2]
        s3 += u[t + 3] * v[t + 3]
        t += 4
    while t < n:
        s0 += u[t] * v[t]
        t += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, nogil=True)
def _sum4(u):  # pragma: no cover - compiled
    """``sum(u)`` in four interleaved partial sums (see :func:`_dot4`)."""
    n = u.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    t = 0
    while t + 4 <= n:
        s0 += u[t]
        s1 += u[t + 1]
        s2 += u[t + 2]
        s3 += u[t + 3]
        t += 4
    while t < n:
        s0 += u[t]
        t += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, nogil=True)
def _ascend_rows(
    XT, GT, W, c, best, eta0, steps, act, norm, homogeneous, unit_scale
):  # pragma: no cover - compiled
    """:func:`_ascend` unit by unit, in place on ``W`` (q, d) and ``c`` (q,), from ``X^T`` (d, n)
    and ``G^T`` (K, n); ``best`` (q,): the starting scores (NaN: computed here). Returns the final
    scores (q,)."""
    q, d = W.shape
    n = XT.shape[1]
    K = GT.shape[0]
    z, h, hn, m = np.empty(n), np.empty(n), np.empty(n), np.empty(n)  # z: scratch
    r, rn = np.empty(K), np.empty(K)
    gw, wn = np.empty(d), np.empty(d)
    out = np.empty(q)
    for u in range(q):
        w = W[u]
        cu = c[u]
        s0 = _unit_forward(XT, GT, w, cu, act, norm, z, h, r)
        b = s0 if math.isnan(best[u]) else best[u]
        gc = _unit_backward(XT, GT, h, r, act, norm, m, gw)
        eta = eta0
        for _ in range(steps):
            gn = gc * gc
            for j in range(d):
                gn += gw[j] * gw[j]
            gn = math.sqrt(gn)
            if not gn > 0:
                gn = 1.0
            f = eta / gn
            cn = cu + f * gc
            nn = cn * cn
            for j in range(d):
                wn[j] = w[j] + f * gw[j]
                nn += wn[j] * wn[j]
            nn = math.sqrt(nn)
            sc = 1.0
            if nn > 0:
                sc = 1.0 / nn if homogeneous else min(1.0, unit_scale / nn)
            cn *= sc
            for j in range(d):
                wn[j] *= sc
            sn = _unit_forward(XT, GT, wn, cn, act, norm, z, hn, rn)
            if sn > b:
                for j in range(d):  # not ``w[:] = wn``: its shape check compiles error
                    w[j] = wn[j]  # formatting, seconds of a fresh install's first fit
                cu = cn
                b = sn
                eta *= 1.5
                h, hn = hn, h
                r, rn = rn, r
                gc = _unit_backward(XT, GT, h, r, act, norm, m, gw)
            else:
                eta *= 0.5
        c[u] = cu
        out[u] = b
    return out
