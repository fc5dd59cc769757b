"""Totally corrective re-fit: the finite L1 problem over the active units' output weights.

Given the hidden activations ``H`` (n x m) of the active units, solve

    min_{W, b}  f(H W + 1 b^T) + alpha * Omega(W),      W: (m, K), b: (K,) unpenalised,

with FISTA (constant step ``1 / L``) and gradient-based adaptive restart (O'Donoghue & Candes 2015),
warm-started from the previous solution. It stops when the relative duality gap is below ``tol``:

    gap = P(W, b) - D(nu),   D(nu) = -f*(nu),
    nu = s * (G - a (1^T G)),   s = min(1, alpha / max_j dual_norm(h_j^T nu)),

``G`` the datafit gradient at the iterate: ``nu`` is centred so that ``1^T nu = 0`` (the dual constraint
of the unpenalised intercept) and scaled into the dual-feasible set, hence ``gap >= 0`` always and
``gap = 0`` at the optimum. Written against the array module of its inputs (NumPy or CuPy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._backend import get_namespace, to_float


@dataclass
class RefitResult:
    """Outcome of one re-fit.

    Attributes
    ----------
    coef : array, shape (m, K)
    intercept : array, shape (K,)
    F : array, shape (n, K)
        Raw predictions at the solution.
    G : array, shape (n, K)
        Datafit gradient at the solution.
    objective, loss, penalty : float
    gap : float
        Duality gap at the solution (``inf`` if the dual point left the conjugate's domain).
    violation : float
        Optimality violation in ``coef`` and ``intercept``.
    n_iter : int
    converged : bool
    """

    coef: object
    intercept: object
    F: object
    G: object
    objective: float
    loss: float
    penalty: float
    gap: float
    violation: float
    n_iter: int
    converged: bool


def lipschitz_constant(H, a, datafit) -> float:
    """Lipschitz constant of the gradient of ``(W, b) -> f(H W + 1 b^T)``.

    ``datafit.lipschitz * lambda_max([H 1]^T diag(a) [H 1])``; H: (n, m), a: (n,).
    """
    xp = get_namespace(H)
    A = xp.concatenate([H, xp.ones((H.shape[0], 1), dtype=H.dtype)], axis=1)
    gram = (A * a[:, None]).T @ A
    lmax = to_float(xp.linalg.eigvalsh(gram)[-1])
    return max(datafit.lipschitz * lmax, 1e-12)


def duality_gap(H, Y, a, G, objective, datafit, penalty) -> float:
    """Duality gap of ``(W, b)`` given its gradient ``G`` and primal objective (see module doc)."""
    Nu = G - a[:, None] * G.sum(axis=0)
    if H.shape[1] > 0:
        dmax = to_float(penalty.dual_norm(H.T @ Nu).max())
        if dmax > penalty.alpha:
            Nu = Nu * (penalty.alpha / dmax)
    conj = to_float(datafit.conjugate(Y, Nu, a))
    return objective + conj if math.isfinite(conj) else math.inf


def primal(H, Y, a, coef, intercept, datafit, penalty):
    """Return ``F, loss, penalty value`` at ``(coef, intercept)``."""
    F = H @ coef + intercept
    return F, to_float(datafit.value(Y, F, a)), to_float(penalty.value(coef))


def refit(
    H,
    Y,
    a,
    datafit,
    penalty,
    coef0,
    intercept0,
    *,
    tol=1e-6,
    max_iter=2000,
    check_every=10,
    offset=None,
) -> RefitResult:
    """Solve the finite L1 problem on fixed features by FISTA with adaptive restart.

    The step is ``1 / L_k`` with ``L_k`` found by backtracking (doubling until the quadratic upper
    bound holds at the new point) and lowered by 10 % after each accepted step, so it follows the
    local curvature, which for a well-fitted logistic or softmax model is far below the global bound
    :func:`lipschitz_constant` (used as the cap). Predictions are carried along linearly
    (``F(y) = F(x_k) + beta (F(x_k) - F(x_{k-1}))``): each iteration costs two products with ``H``.

    Parameters
    ----------
    H : array, shape (n, m)
        Hidden activations of the active units (float64).
    Y : array, shape (n, K)
    a : array, shape (n,)
        Normalised sample weights (sum 1).
    datafit : Datafit
    penalty : Penalty
    coef0 : array, shape (m, K)
        Warm start.
    intercept0 : array, shape (K,)
    tol : float
        Stop when ``gap <= tol * max(objective, 1e-12)``.
    max_iter : int
    check_every : int
        Iterations between duality-gap evaluations.
    offset : array, shape (n, K), optional
        Fixed predictions added to ``H W + b`` (the other units' output in a stagewise step).

    Returns
    -------
    RefitResult
        The evaluated iterate with the lowest objective: never worse than the warm start.
    """
    # Centre the features (weights a): F = H w + b = Hc w + (b + mu w). Exact, and far better
    # conditioned for nonnegative units (relu, sigmoid, sign), whose mean is close to the intercept's
    # direction. H^T nu = Hc^T nu for every dual point with 1^T nu = 0, so the gap is unchanged.
    mu = a @ H
    H = H - mu
    L_max = lipschitz_constant(H, a, datafit)
    x_w, x_b = coef0.copy(), intercept0 + mu @ coef0
    F_x = H @ x_w + x_b
    if offset is not None:
        F_x = F_x + offset
    y_w, y_b, F_y = x_w, x_b, F_x
    t = 1.0
    # diagonal metric: the curvature of each coordinate at the warm start
    xp = get_namespace(H)
    ones = xp.ones(H.shape[0])
    C = datafit.hess_diag(Y, F_x, a)
    D_w = penalty.metric((H * H).T @ C)
    D_b = C.sum(axis=0)
    top = max(to_float(D_w.max()) if D_w.size else 0.0, to_float(D_b.max()), 1e-300)
    D_w = xp.maximum(D_w, 1e-10 * top)
    D_b = xp.maximum(D_b, 1e-10 * top)
    d_min = min(to_float(D_w.min()) if D_w.size else top, to_float(D_b.min()))
    sigma_max = max(L_max / d_min, 1.0)
    sigma = 1.0

    def state_at(w, b, F):
        loss, G = datafit.value_grad(Y, F, a)
        loss = to_float(loss)
        pen = to_float(penalty.value(w))
        gap = duality_gap(H, Y, a, G, loss + pen, datafit, penalty)
        return (w, b, F, G, loss, pen, gap)

    best = state_at(x_w, x_b, F_x)
    start_obj = best[4] + best[5]
    n_iter = 0
    converged = best[6] <= tol * max(best[4] + best[5], 1e-12)
    while not converged and n_iter < max_iter:
        f_y, G_y = datafit.value_grad(Y, F_y, a)
        f_y = to_float(f_y)
        g_w, g_b = H.T @ G_y, ones @ G_y
        while True:  # backtracking on sigma
            s_w, s_b = 1.0 / (sigma * D_w), 1.0 / (sigma * D_b)
            new_w = penalty.prox(y_w - s_w * g_w, s_w)
            new_b = y_b - s_b * g_b
            dw, db = new_w - y_w, new_b - y_b
            F_new = H @ new_w + new_b
            if offset is not None:
                F_new = F_new + offset
            f_new = to_float(datafit.value(Y, F_new, a))
            quad = to_float((g_w * dw).sum() + (g_b * db).sum()) + 0.5 * sigma * to_float(
                (D_w * dw * dw).sum() + (D_b * db * db).sum()
            )
            if f_new <= f_y + quad + 1e-12 * abs(f_y) or sigma >= sigma_max:
                break
            sigma = min(2.0 * sigma, sigma_max)
        n_iter += 1
        dw, db = new_w - x_w, new_b - x_b
        if to_float((D_w * (y_w - new_w) * dw).sum() + (D_b * (y_b - new_b) * db).sum()) > 0:
            # gradient-based restart: the momentum points uphill
            t = 1.0
            y_w, y_b, F_y = new_w, new_b, F_new
        else:
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_new
            y_w, y_b = new_w + beta * dw, new_b + beta * db
            F_y = F_new + beta * (F_new - F_x)
            t = t_new
        x_w, x_b, F_x = new_w, new_b, F_new
        sigma = max(0.9 * sigma, 1e-3)
        if n_iter % check_every == 0 or n_iter == max_iter:
            cur = state_at(x_w, x_b, F_x)
            converged = cur[6] <= tol * max(cur[4] + cur[5], 1e-12)
            # keep the lowest objective, but a certified iterate wins over rounding-level
            # differences as long as it is no worse than the warm start
            if cur[4] + cur[5] <= best[4] + best[5] or (converged and cur[4] + cur[5] <= start_obj):
                best = cur
    x_w, x_b, F, G, loss, pen, gap = best
    x_b = x_b - mu @ x_w
    viol = max(
        to_float(penalty.violation(x_w, H.T @ G)),
        to_float(xp.abs(G.sum(axis=0)).max()),
    )
    return RefitResult(x_w, x_b, F, G, loss + pen, loss, pen, gap, viol, n_iter, bool(converged))
