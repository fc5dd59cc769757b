"""Coordinate descent on the re-fit's quadratic model, in the small (m, K) space (compiled by numba).

Each outer iteration of :func:`boostnet.refit.refit` minimises a quadratic model of the loss plus the
penalty over the output weights ``W`` (m, K), with one curvature matrix per output:

    q(W) = sum_k [ g_k . (w_k - w0_k) + (w_k - w0_k)^T A_k (w_k - w0_k) / 2 ] + alpha * Omega(W),

``A_k`` (m, m) symmetric positive semi-definite, ``g_k`` the gradient at ``W0``. The solvers keep the
model's gradient ``R = g + A (W - W0)`` up to date column by column (``O(m)`` per changed coordinate),
so a sweep costs ``O(m^2 K)`` and never touches the n rows.

- :func:`cd_l1` (elementwise L1): exact coordinate minimisation, a soft-threshold per entry; the
  outputs decouple, so each column is solved on its own.
- :func:`cd_group_l1` (group L1 over a unit's K outputs): block coordinate descent; each block step
  minimises the model exactly over the block with its curvature ``D = diag(A_k[j, j])``: zero when
  ``||D z|| <= alpha`` (``z`` the block's unpenalised minimiser), else ``w_k = D_k z_k / (D_k +
  alpha / ||w||)`` with ``||w||`` the root of a monotone scalar equation (Newton).

``A`` may hold one matrix shared by every output (shape (1, m, m): squared error) or one per output
(shape (K, m, m)), in float64 or float32 (softmax's models: a sweep is a pass over the K matrices,
and float32 halves that traffic; the model's gradient is accumulated in float64 either way). Both
stop when the largest change of a sweep, in gradient units (``A_jj |delta|``), is at most ``tol``,
or after ``max_sweeps`` sweeps. They return the new ``W``, the model's gradient there, the number
of sweeps and the last sweep's largest change.

:func:`solve` runs them a few sweeps at a time with Anderson extrapolation of the sweeps' iterates
(skglm's ``AndersonCD``) and a Newton step on the active units: for elementwise L1 an exact solve on
the current support and signs (:func:`support_newton`), for group L1 a damped Newton step on the
(smooth) model restricted to the active units (:func:`group_newton`, small systems only).
Coordinate descent on the correlated features of a network converges linearly, and on the
ill-conditioned models of near-separable data it crawls; each candidate, kept only when it lowers
the model, cuts the number of sweeps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._lapack import spd_solve
from .penalties import GroupL1


@njit(cache=True, nogil=True)
def cd_l1(A, g, W0, alpha, tol, max_sweeps):  # pragma: no cover - compiled
    m, K = W0.shape
    W = W0.copy()
    R = g.copy()
    shared = A.shape[0] == 1
    sweeps_max = 0
    change_max = 0.0
    r = np.empty(m)
    for k in range(K):
        Ak = A[0] if shared else A[k]
        for i in range(m):
            r[i] = R[i, k]
        sweeps = 0
        change = 0.0
        while sweeps < max_sweeps:
            sweeps += 1
            change = 0.0
            for j in range(m):
                ajj = Ak[j, j]
                if ajj <= 0.0:
                    continue
                wj = W[j, k]
                z = wj - r[j] / ajj
                t = alpha / ajj
                if z > t:
                    new = z - t
                elif z < -t:
                    new = z + t
                else:
                    new = 0.0
                d = new - wj
                if d != 0.0:
                    W[j, k] = new
                    for i in range(m):  # row j of the symmetric A_k: contiguous
                        r[i] += Ak[j, i] * d
                    c = ajj * abs(d)
                    if c > change:
                        change = c
            if change <= tol:
                break
        for i in range(m):
            R[i, k] = r[i]
        if sweeps > sweeps_max:
            sweeps_max = sweeps
        if change > change_max:
            change_max = change
    return W, R, sweeps_max, change_max


@njit(cache=True, nogil=True)
def _block_norm(Dz, D, alpha, hi, start):  # pragma: no cover - compiled
    """``nu = ||w||`` of the exact block step: the root of ``sum_k (Dz_k / (D_k nu + alpha))^2 = 1``
    (decreasing and convex in nu), by Newton from ``start`` (the block's current norm), kept inside
    [0, hi]. From the right of the root a Newton step of a convex decreasing function lands at or
    left of it (the tangent lies below the function), and from the left the iterates rise
    monotonically: warm-started, 5 iterations instead of 16 from 0 (a third of a sweep's time)."""
    nu = min(start, hi)
    for _ in range(50):
        psi = 0.0
        dpsi = 0.0
        for k in range(D.shape[0]):
            q = D[k] * nu + alpha
            t = Dz[k] / q
            psi += t * t
            dpsi -= 2.0 * t * t * D[k] / q
        if dpsi == 0.0:
            break
        step = (psi - 1.0) / dpsi
        nu_new = nu - step
        if nu_new > hi:
            nu_new = hi
        if nu_new < 0.0:  # psi(0) > 1 whenever the block is not zero: 0 is left of the root
            nu_new = 0.0
        if abs(nu_new - nu) <= 1e-15 * max(nu_new, 1e-300):
            nu = nu_new
            break
        nu = nu_new
    return nu


@njit(cache=True, nogil=True)
def cd_group_l1(A, g, W0, alpha, tol, max_sweeps):  # pragma: no cover - compiled
    m, K = W0.shape
    W = W0.copy()
    shared = A.shape[0] == 1
    Rt = g.T.copy()  # (K, m): each output's gradient contiguous
    z = np.empty(K)
    Dz = np.empty(K)
    D = np.empty(K)
    d = np.empty(K)
    sweeps = 0
    change = 0.0
    while sweeps < max_sweeps:
        sweeps += 1
        change = 0.0
        for j in range(m):
            ok = True
            nDz = 0.0
            nz = 0.0
            nw = 0.0
            for k in range(K):
                D[k] = A[0, j, j] if shared else A[k, j, j]
                if D[k] <= 0.0:
                    ok = False
                    break
                z[k] = W[j, k] - Rt[k, j] / D[k]
                Dz[k] = D[k] * z[k]
                nDz += Dz[k] * Dz[k]
                nz += z[k] * z[k]
                nw += W[j, k] * W[j, k]
            if not ok:
                continue
            if np.sqrt(nDz) <= alpha:
                for k in range(K):
                    d[k] = -W[j, k]
            else:
                # exact minimiser of the block's model: w_k = D_k z_k / (D_k + alpha / ||w||)
                nu = _block_norm(Dz, D, alpha, np.sqrt(nz), np.sqrt(nw))
                for k in range(K):
                    d[k] = Dz[k] * nu / (D[k] * nu + alpha) - W[j, k]
            for k in range(K):
                if d[k] == 0.0:
                    continue
                W[j, k] += d[k]
                Ak = A[0] if shared else A[k]
                dk = d[k]
                for i in range(m):  # row j of the symmetric A_k: contiguous
                    Rt[k, i] += Ak[j, i] * dk
                c = D[k] * abs(dk)
                if c > change:
                    change = c
        if change <= tol:
            break
    return W, Rt.T.copy(), sweeps, change


SOLVERS = {"l1": cd_l1, "group_l1": cd_group_l1}

#: Sweeps between Anderson extrapolations, and iterates combined by each.
_ANDERSON_EVERY = 5
#: Plain sweeps before the extrapolation starts.
_PLAIN_SWEEPS = 10
#: Largest system (active units x outputs) :func:`group_newton` solves: its O((|S| K)^3) solve
#: must stay cheaper than the sweeps it saves (measured: 2048 made c11 4x slower).
_GROUP_NEWTON_MAX = 256
#: Halvings of the Newton step before :func:`group_newton` gives up.
_GROUP_NEWTON_HALVINGS = 12


def _model_value(A, g, W0, W, alpha, group):
    D = W - W0
    Dc = D.astype(A.dtype, copy=False)  # float32 matrices: products in float32, not a copy of A
    AD = np.matmul(A, Dc.T[:, :, None])[:, :, 0].T if A.shape[0] > 1 else A[0] @ Dc
    AD = AD.astype(np.float64, copy=False)
    pen = np.sqrt((W * W).sum(axis=1)).sum() if group else np.abs(W).sum()
    return float((g * D).sum() + 0.5 * (D * AD).sum() + alpha * pen), AD


def anderson(iterates):
    """Anderson extrapolation ``sum_i c_i x_{i+1}`` with ``sum c = 1`` minimising
    ``||sum_i c_i (x_{i+1} - x_i)||``; None if the system is degenerate."""
    X = np.asarray(iterates)
    U = np.diff(X, axis=0)
    C = U @ U.T
    scale = np.trace(C)
    if not scale > 0:
        return None
    try:
        z = np.linalg.solve(C + 1e-10 * scale * np.eye(C.shape[0]), np.ones(C.shape[0]))
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(z).all() or z.sum() == 0:
        return None
    return (z / z.sum()) @ X[1:]


def support_newton(A, g, W0, W, alpha):
    """Elementwise L1: a step towards the exact minimiser of the model on the current support with
    the current signs (one linear solve per output, ``|S| x |S|``); None if it cannot move.

    Coordinate descent finds the support and the signs quickly but converges slowly on the
    strongly correlated units of a network; once they are right, this one solve finishes it. Where
    the solve would change a sign, the step stops where the first weight reaches zero (an
    active-set step, as in the feature-sign search): on the segment the model is a convex
    quadratic decreasing towards the solve's point, so the step still lowers it, and the weight
    leaves the support.
    """
    return _support_step(A, g, W0, W, alpha)[0]


def _support_step(A, g, W0, W, alpha):
    """:func:`support_newton`'s step, and whether it depends on ``W`` only through its support and
    signs (every output solved, no sign flipped: then it is the exact minimiser on them)."""
    out = W.copy()
    moved, exact = False, True
    for k in range(W.shape[1]):
        S = np.flatnonzero(W[:, k])
        if S.size == 0:
            continue
        Ak = A[0] if A.shape[0] == 1 else A[k]
        w = W[S, k]
        sgn = np.sign(w)
        # gradient on S at W: g_S + A_S. (W - W0) = -alpha sgn, with W_N = 0 off the support
        rhs = -alpha * sgn - g[S, k] + Ak[S] @ W0[:, k]
        AS = Ak[np.ix_(S, S)]
        wS = spd_solve(AS, rhs)  # Cholesky: half the work of LU (the matrix is a Gram matrix)
        if wS is None:  # not numerically positive definite (collinear units): a general solve
            try:
                wS = np.linalg.solve(AS, rhs)
            except np.linalg.LinAlgError:
                exact = False
                continue
        if not np.isfinite(wS).all():
            exact = False
            continue
        flip = np.sign(wS) != sgn
        if flip.any():
            exact = False
            # the first crossing of zero along w -> wS
            ratios = w[flip] / (w[flip] - wS[flip])
            i = int(np.argmin(ratios))
            t = float(ratios[i])
            if not t > 0.0:
                continue
            new = w + t * (wS - w)
            new[np.flatnonzero(flip)[i]] = 0.0
            new[np.sign(new) != sgn] = 0.0  # rounding at the crossing
            out[S, k] = new
        else:
            out[S, k] = wS
        moved = True
    return (out if moved else None), exact


def group_newton(A, g, W0, W, alpha):
    """Group L1: one Newton step on the model restricted to the active units (the rows of ``W``
    that are not zero); None if there are none, too many (``|S| K > _GROUP_NEWTON_MAX``) or the
    system is singular.

    On the active units the model plus ``alpha sum_j ||w_j||`` is smooth, with gradient
    ``R_S + alpha w_j / ||w_j||`` (``R = g + A (W - W0)``) and Hessian ``A_k[S, S]`` per output plus,
    per unit, ``alpha (I - w_j w_j^T / ||w_j||^2) / ||w_j||``; the step solves that ``|S| K``
    system. Block coordinate descent stalls on the ill-conditioned models of near-separable data
    (100 sweeps per outer iteration on iris, the relative gap stuck near 2e-6); the Newton step,
    like :func:`support_newton`, is a candidate the caller keeps only when it lowers the model.
    """
    S = np.flatnonzero((W != 0).any(axis=1))
    K = W.shape[1]
    n = S.size * K
    if S.size == 0 or n > _GROUP_NEWTON_MAX:
        return None
    shared = A.shape[0] == 1
    D = W - W0
    Hm = np.zeros((n, n))
    grad = np.empty((S.size, K))
    for k in range(K):
        Ak = A[0] if shared else A[k]
        AS = Ak[S]
        grad[:, k] = g[S, k] + AS @ D[:, k]
        Hm[k::K, k::K] = AS[:, S]
    # the penalty's part (boostnet.penalties.GroupL1.smooth_part): its Hessian is block diagonal,
    # one K x K block per unit; applied to the k-th unit vector of every unit at once, it gives
    # column k of every block
    part = GroupL1(alpha).smooth_part(W[S])
    grad += part.grad
    # its K x K blocks c_j (I - u_j u_j^T) (part.lowrank: every row of W[S] is active), added at
    # once rather than by applying part.hess to each of the K unit vectors (the same matrix)
    c, U = part.lowrank
    blocks = c[:, None, None] * (np.eye(K) - U[:, :, None] * U[:, None, :])
    rows = np.arange(S.size)[:, None] * K + np.arange(K)  # (|S|, K): each unit's indices
    Hm[rows[:, :, None], rows[:, None, :]] += blocks
    try:
        step = np.linalg.solve(Hm, -grad.ravel())
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(step).all():
        return None
    # the penalty's curvature is only local: damp the step until the model decreases
    step = step.reshape(S.size, K)
    value, _ = _model_value(A, g, W0, W, alpha, True)
    t = 1.0
    for _ in range(_GROUP_NEWTON_HALVINGS):
        out = W.copy()
        out[S] += t * step
        if _model_value(A, g, W0, out, alpha, True)[0] < value:
            return out
        t *= 0.5
    return None


def solve(penalty: str, A, g, W0, alpha: float, tol: float, max_sweeps: int):
    """Minimise the quadratic model plus ``alpha * Omega`` from ``W0`` (see the module doc).

    Returns ``W`` (m, K) and the number of sweeps.
    """
    kernel = SOLVERS[penalty]
    group = penalty == "group_l1"
    # one memory layout for the kernels: each layout is a compilation of its own (~1 s)
    g, W0 = np.ascontiguousarray(g), np.ascontiguousarray(W0)
    # most warm-started models converge in a few plain sweeps; Anderson only for the rest
    W, R, sweeps, change = kernel(A, g, W0, alpha, tol, min(_PLAIN_SWEEPS, max_sweeps))
    if change <= tol:
        return W, sweeps
    iterates = [W.ravel()]
    solved = None  # the signs of the last support step that was the exact minimiser on them
    while sweeps < max_sweeps:
        W, R, done, change = kernel(A, R, W, alpha, tol, 1)
        sweeps += done
        if change <= tol:
            break
        iterates.append(W.ravel())
        if len(iterates) > _ANDERSON_EVERY:
            x = anderson(iterates)
            iterates = [W.ravel()]
            tries = [] if x is None else [x.reshape(W.shape)]
            if group:
                Wn = group_newton(A, g, W0, W, alpha)
            else:
                # with the same support and signs the step is the same point as last time, whose
                # model value is at least the current one (it was taken or refused, and the
                # sweeps since only lowered the value, up to rounding): not solved again
                # (friedman1: 22 % of the solves)
                signs = np.sign(W).tobytes()
                Wn, exact = (None, True) if signs == solved else _support_step(A, g, W0, W, alpha)
                solved = signs if exact else None
            if Wn is not None:
                tries.append(Wn)
            value, _ = _model_value(A, g, W0, W, alpha, group)
            for Wx in tries:
                vx, ADx = _model_value(A, g, W0, Wx, alpha, group)
                if vx < value:
                    W, R, value = Wx, g + ADx, vx
                    iterates = [W.ravel()]
    return W, sweeps
