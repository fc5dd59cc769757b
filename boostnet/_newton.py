"""Newton steps with the exact Hessian on the re-fit's active set (its endgame).

Once the re-fit's coordinate descent has found which output weights are not zero, the problem
restricted to them is smooth. With ``S`` the active units (rows of ``W`` that are not zero) and
``M`` the active entries (all K entries of an active row for group L1; the nonzero entries for L1,
their signs fixed), the restricted problem

    min_{W_M, b}  f(H_S W_S + 1 b^T) + alpha * Omega(W_S)

has gradient ``(H_S^T G + grad Omega, 1^T G)`` (masked to ``M``) and Hessian

    [H_S 1]^T  Hf  [H_S 1]  +  Hess Omega,

``Hf`` the datafit's Hessian in ``F``: for softmax ``a_t (diag(p_t) - p_t p_t^T)`` per row. The classes
interact, which the per-output curvature model of the coordinate descent leaves out
(:mod:`boostnet.refit`, step 1): that is why the re-fit converges only linearly on many-class data.
The Newton direction solves this system by preconditioned conjugate gradients (an inexact Newton
method, stopped at a relative residual ``eta``): each product with the Hessian costs two passes over
the rows, ``O(n |S| K)`` (in float32: the Hessian only steers the step), never a matrix in the
``|S| K`` space. The preconditioner is the per-output model the coordinate descent already holds
(block Jacobi over the outputs),

    P_k = [[B_k[S, S] + diag(Hess Omega)_k,  hc_k[S]], [hc_k[S]^T,  s_k]],

inverted once per model and active set (``O(K |S|^3)``, below the ``O(n |S|^2 K)`` of building it).

For group L1 the penalty's Hessian on unit ``j`` is ``c_j (I - u_j u_j^T)``, ``c_j = alpha /
||w_j||``, ``u_j = w_j / ||w_j||``: no curvature along ``u_j`` (scaling a unit's output weights,
along which the penalty is linear), ``c_j`` across it. Block Jacobi over the outputs holds only
its diagonal, ``c_j (1 - u_jk^2)``, so along each ``u_j`` it sees about ``c_j`` too much; where
``c_j`` is comparable to ``B_k[j, j]`` (c26: for half of the units) each unit adds an outlier
eigenvalue to the preconditioned system, and conjugate gradients took 60-100 iterations per
direction. The preconditioner keeps those rank-one parts exactly: with ``D`` the blocks above with
``c_j`` on the diagonal and ``V`` the |S| columns ``e_j (x) u_j``,

    P = D - V diag(c) V^T,   P^{-1} = D^{-1} + D^{-1} V Z^{-1} V^T D^{-1},
    Z = diag(1 / c) - V^T D^{-1} V   (|S| x |S|, positive definite since P is),

one more block product per application and one |S| x |S| Cholesky per model and active set (c26's
stored tight re-fits: 8-30 iterations per direction instead of 60-100).
Truncated CG started from zero returns a descent direction for any number of iterations; the caller
takes the step with its line search on the true objective, so the Newton step never raises it.
Near the optimum, with the active set identified, the steps converge quadratically where the
coordinate descent's converge linearly (measured on the 11-class table: a relative gap from 2.5e-3
to below 1e-6 in 2 Newton steps, against 51 outer iterations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ._backend import get_namespace, row_blocks, to_numpy
from ._lapack import spd_inverses

#: Relative residual (in the preconditioned norm) at which conjugate gradients stop.
_CG_TOL = 1e-2
#: Most conjugate-gradient iterations per Newton direction.
_CG_MAX = 100
#: Bytes of the activations' row block that each Hessian product takes at a time on the CPU.
_BLOCK_BYTES = 1 << 21
#: Ridge added to the preconditioner's diagonal, relative to its mean (collinear units).
_RIDGE = 1e-8


@njit(cache=True, nogil=True)
def _gather_cast(H, S, out):  # pragma: no cover - compiled
    """``out = H[:, S]`` in ``out``'s dtype, in one pass (a gather then a cast wrote and read an
    n x |S| float64 copy: c26's 15 000 x 550, 16 ms in isolation, up to ~80 ms inside a re-fit,
    against ~4 ms)."""
    for i in range(H.shape[0]):
        for k in range(S.size):
            out[i, k] = H[i, S[k]]


@njit(cache=True, nogil=True)
def _gather_blocks(B, S, out):  # pragma: no cover - compiled
    """``out[k, :|S|, :|S|] = B[k][S][:, S]`` for every block ``k``, in one pass (two ``take``s
    wrote a K x |S| x m intermediate: c26's 26 x 566 x 580, 13-78 ms in isolation and ~75 ms
    inside a re-fit, against ~3.5 ms)."""
    for k in range(B.shape[0]):
        for i in range(S.size):
            row = B[k, S[i]]
            for j in range(S.size):
                out[k, i, j] = row[S[j]]


def _active_rows(H, S, f32):
    """The activations of the active units ``S`` (sorted host indices) in dtype ``f32``."""
    xp = get_namespace(H)
    if S.size == H.shape[1]:
        return H.astype(f32)
    if xp is not np:
        return xp.take(H, xp.asarray(S), axis=1).astype(f32)
    out = np.empty((H.shape[0], S.size), dtype=f32)
    _gather_cast(H, S.astype(np.int64), out)
    return out


@dataclass
class NewtonDirection:
    """A Newton direction: ``dW`` (m, K) (zero off the active entries), ``db`` (K,), the
    objective's directional derivative along it (negative: CG from zero gives a descent direction)
    and the conjugate-gradient iterations it took."""

    dW: np.ndarray
    db: np.ndarray
    slope: float
    n_cg: int


@dataclass
class Preconditioner:
    """``z = P^{-1} r`` for the conjugate gradients (module doc): the per-output block inverses
    ``inv`` (K, |S|+1, |S|+1), float32; with the penalty's rank-one parts, their directions ``U``
    (|S|, K) and the inverse of the Woodbury core ``core`` (|S|, |S|)."""

    inv: np.ndarray
    U: np.ndarray | None = None
    core: np.ndarray | None = None
    #: The model's offsets of the active units ``o`` (|S|,) times the active entries' mask
    #: (|S|, K), where the model has offsets: its blocks are then those of ``[H_S - 1 o^T, 1]``,
    #: the Hessian in the variables ``(W, b + o^T W)``, and each application changes variables
    #: on the way in and out.
    shift: np.ndarray | None = None

    def _blocks(self, rW, rb):
        v = np.concatenate([rW, rb[None, :]]).T[:, :, None].astype(self.inv.dtype)
        return np.matmul(self.inv, v)[:, :, 0].T.astype(np.float64)  # (|S| + 1, K)

    def __call__(self, rW, rb):
        """``(zW (|S|, K), zb (K,))`` for the residual ``(rW, rb)``."""
        if self.shift is not None:
            rW = rW - self.shift * rb[None, :]
        z = self._blocks(rW, rb)
        if self.core is not None:
            t = self.core @ (self.U * z[:-1]).sum(axis=1)
            z += self._blocks(self.U * t[:, None], np.zeros_like(rb))
        if self.shift is not None:
            z[-1] -= (self.shift * z[:-1]).sum(axis=0)
        return z[:-1], z[-1]


def _preconditioner(model, S, mask, part) -> Preconditioner | None:
    """The preconditioner of the problem on the active units ``S`` (module doc) from the model's
    per-output blocks and the penalty's smooth part ``part``; masked entries get an identity row
    and column. None if a block is not numerically positive definite."""
    prec = _block_preconditioner(model, S, mask, part)
    if prec is not None and model.offset is not None:
        prec.shift = model.offset[S][:, None] * mask
    return prec


def _block_preconditioner(model, S, mask, part) -> Preconditioner | None:
    """:func:`_preconditioner` in the model's own variables."""
    nS, K = mask.shape
    # the blocks in float32, as the model holds them (c26's 26 blocks of 560^2: a build ~130 ->
    # ~105 ms): applied once per conjugate-gradient iteration, a pass over K (|S|+1)^2 numbers, the
    # inverses only steer CG (and stay positive definite); factored in float64 only where a float32
    # factor breaks down
    P = np.empty((K, nS + 1, nS + 1), dtype=np.float32)
    every = nS == model.n_units  # S is sorted: then every unit (no gather)
    if every:
        P[:, :nS, :nS] = model.B
    else:
        _gather_blocks(model.B, S.astype(np.int64), P)
    hc = model.hc[:, S]  # (K, nS)
    P[:, :nS, nS] = hc
    P[:, nS, :nS] = hc
    P[:, nS, nS] = model.s
    keep = np.concatenate([mask, np.ones((1, K), dtype=bool)]).T  # (K, nS + 1)
    if not keep.all():
        P *= keep[:, :, None] & keep[:, None, :]
    full, diag = np.arange(nS + 1), np.arange(nS)
    P[:, full, full] += ~keep
    base = P[:, full, full].copy()  # the diagonal without the penalty's curvature and the ridge

    def inverses(penalty_diag, single):
        Q = P if single else P.astype(np.float64)
        Q[:, diag, diag] += penalty_diag * mask.T
        Q[:, full, full] += _RIDGE * np.abs(Q[:, full, full]).mean(axis=1)[:, None]
        # each block is symmetric positive definite (a weighted Gram matrix of [H_S 1], the
        # penalty's curvature and a ridge): inverted from its Cholesky factor (boostnet._lapack)
        inv = spd_inverses(Q, np.float32, single)
        if Q is P:  # (a float64 attempt worked on a copy)
            P[:, full, full] = base
        return inv

    if part.lowrank is not None and (part.lowrank[0] > 0).all():
        c, U = part.lowrank
        U = U * mask
        # D = blocks + c_j I, factored in float32 first, in float64 if that breaks down; the core
        # Z = diag(1 / c) - V^T D^{-1} V accumulated in float64
        for single in (True, False):
            inv = inverses(c[None, :], single)
            if inv is None:
                continue
            M = np.zeros((nS, nS))
            for k in range(K):
                M += inv[k, :nS, :nS] * np.outer(U[:, k], U[:, k])
            core = spd_inverses((np.diag(1.0 / c) - M)[None])
            if core is not None:
                return Preconditioner(inv, U, core[0])
        # (not numerically positive definite: the rank-one parts left out, as below)
    inv = inverses(part.hess_diag.T, False)
    return None if inv is None else Preconditioner(inv)


def newton_direction(H, Y, a, F, HtG, gb, W, datafit, penalty, model, store: dict | None = None,
                     eta: float = _CG_TOL, max_cg: int = _CG_MAX,
                     dtype: str = "float32") -> NewtonDirection | None:  # fmt: skip
    """The inexact Newton direction of the problem restricted to the active entries of ``W``.

    Parameters
    ----------
    H : array, shape (n, m)
        Activations of the units (NumPy or CuPy).
    Y : array, shape (n, K)
    a : array, shape (n,)
    F : array, shape (n, K)
        Raw predictions at ``(W, b)``.
    HtG : array, shape (m, K)
        ``H^T G``, ``G`` the datafit gradient at ``F``.
    gb : array, shape (K,)
        ``1^T G``.
    W : ndarray, shape (m, K)
        Output weights (host).
    datafit, penalty
    model : CurvatureModel
        The per-output curvature model of the same units (the preconditioner).
    store : dict, optional
        Keeps the inverted preconditioner between calls with the same model and active entries,
        and the active units' activations in ``dtype`` between calls with the same ``H`` and
        active units.
    eta, max_cg : float, int
        Conjugate gradients stop at this relative residual or after this many iterations.
    dtype : {"float32", "float64"}
        Precision of the Hessian products (the gradient is float64 either way).

    Returns
    -------
    NewtonDirection, or None when no unit is active or the preconditioner is singular.
    """
    xp = get_namespace(H)
    S = np.flatnonzero((W != 0).any(axis=1))
    if S.size == 0:
        return None
    part = penalty.smooth_part(W[S])
    mask = np.asarray(part.mask)
    key = (S.tobytes(), mask.tobytes())
    if store is not None and store.get("model") is model and store.get("key") == key:
        prec = store["prec"]
    else:
        prec = _preconditioner(model, S, mask, part)
        if prec is None:
            return None
        if store is not None:
            store.update(model=model, key=key, prec=prec)
    K = W.shape[1]
    # float32 products by default: the Hessian only steers the step (the gradient, the line search
    # and the duality gap stay float64), and these passes over the rows are bound by memory traffic
    f32 = getattr(xp, dtype)
    # the active units' activations in the products' dtype, kept between the directions of one
    # re-fit while the active units stay (a gather and a cast of the n x m activations: c26's
    # 36 ms, once per re-fit instead of once per direction); all units: a cast only
    rows_key = (S.tobytes(), dtype)
    if store is not None and store.get("H") is H and store.get("rows_key") == rows_key:
        Hs = store["Hs"]
    else:
        Hs = _active_rows(H, S, f32)
        if store is not None:
            store.update(H=H, rows_key=rows_key, Hs=Hs)
    Y32, F32, a32 = Y.astype(f32), F.astype(f32), a.astype(f32)
    # each Hessian product reads Hs twice (Hs D, then Hs^T Q): on the CPU in row blocks of about
    # _BLOCK_BYTES, so that the second read finds the block in the core's cache (c26-sized, 15 000
    # x 550 x 26: ~10 -> ~7.5 ms per CG iteration); one block on a GPU
    n = H.shape[0]
    spans = [slice(0, n)] if xp is not np else row_blocks(n, Hs.itemsize * S.size, _BLOCK_BYTES)
    blocks = [(r, datafit.hessian_product(Y32[r], F32[r], a32[r])) for r in spans]
    maskf = mask.astype(np.float64)

    def hess(D, db):
        D32, db32 = xp.asarray(D, dtype=f32), xp.asarray(db, dtype=f32)
        HtQ, qb = 0.0, 0.0
        for r, product in blocks:
            Q = product(Hs[r] @ D32 + db32)
            HtQ = HtQ + Hs[r].T @ Q
            qb = qb + Q.sum(axis=0)
        HtQ = to_numpy(HtQ).astype(np.float64)
        return HtQ * maskf + part.hess(D), to_numpy(qb).astype(np.float64)

    def precondition(rW, rb):
        zW, zb = prec(rW, rb)
        return zW * maskf, zb

    def dot(x, y):
        return float((x[0] * y[0]).sum() + x[1] @ y[1])

    # conjugate gradients on H x = -g from x = 0
    rW = -(to_numpy(HtG)[S] + part.grad) * maskf
    rb = -np.asarray(to_numpy(gb), dtype=np.float64)
    xW, xb = np.zeros_like(rW), np.zeros(K)
    zW, zb = precondition(rW, rb)
    pW, pb = zW, zb
    rz = dot((rW, rb), (zW, zb))
    rz0 = rz
    gW, gb0 = -rW, -rb
    it = 0
    while it < max_cg and rz > eta * eta * rz0:
        qW, qb = hess(pW, pb)
        curv = dot((pW, pb), (qW, qb))
        if not curv > 0:  # the shift null space of softmax, or rounding: stop here
            break
        step = rz / curv
        xW += step * pW
        xb += step * pb
        rW -= step * qW
        rb -= step * qb
        zW, zb = precondition(rW, rb)
        rz_new = dot((rW, rb), (zW, zb))
        pW = zW + (rz_new / rz) * pW
        pb = zb + (rz_new / rz) * pb
        rz = rz_new
        it += 1
    if it == 0:
        return None
    dW = np.zeros_like(W)
    dW[S] = xW
    return NewtonDirection(dW, xb, float((gW * xW).sum() + gb0 @ xb), it)
