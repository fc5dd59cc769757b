"""Symmetric positive definite systems on the host, by Cholesky (LAPACK ``potrf``, ``potrs``, ``potri``).

The re-fit's small dense systems are Gram-type matrices, symmetric positive semi-definite: the
curvature on an active set (:func:`boostnet._cd.support_newton`, ``|S| x |S|``) and the Newton
steps' preconditioner blocks (:mod:`boostnet._newton`). A Cholesky factor costs half the work of
the LU factorisation behind ``numpy.linalg.solve`` / ``inv`` (measured on 390 x 390: a solve 1.13
-> 0.67 ms; 26 inverses of ~550^2: 0.85 -> 0.44 s).

SciPy's LAPACK runs on its own OpenBLAS, whose worker threads keep spinning for a while after a
call and slow NumPy's products that follow to about half speed (60 conjugate-gradient-sized
products: 5.0 ms before a SciPy call, 8.9-12.2 ms right after, 5.0 ms half a second later). The
calls here run on one thread, which wakes none of them; these matrices are small enough that one
thread loses little.

Every function returns None when the matrix is not numerically positive definite (Cholesky
breaks down) or the result is not finite: the callers then take another way (a general solve, or
no Newton step).
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_thread():
    """Context manager: BLAS and LAPACK on one thread while it is open."""
    return _controller().limit(limits=1, user_api="blas")


def spd_solve(M: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``M^{-1} b`` for symmetric positive definite ``M`` (m, m) and ``b`` (m,) (float64), or
    None."""
    with single_thread():
        factor, info = lapack.dpotrf(M, lower=1)
        if info != 0:
            return None
        x, info = lapack.dpotrs(factor, b, lower=1)
    return x if info == 0 and np.isfinite(x).all() else None


def spd_inverses(P: np.ndarray, dtype=np.float64, single: bool = False) -> np.ndarray | None:
    """The inverses of the symmetric positive definite blocks ``P`` (K, m, m), exactly symmetric,
    stored as ``dtype``; or None if one block is not positive definite. ``single``: factor and
    invert in float32 (``spotrf``, ``spotri``: 26 blocks of 600^2 in 117 instead of 210 ms), for
    inverses that only steer an iteration."""
    inv = np.empty(P.shape, dtype=dtype)
    lower = np.tril(np.ones(P.shape[1:], dtype=bool))
    potrf, potri = (lapack.spotrf, lapack.spotri) if single else (lapack.dpotrf, lapack.dpotri)
    work = np.float32 if single else np.float64
    with single_thread():
        for k in range(P.shape[0]):
            factor, info = potrf(P[k].astype(work, copy=False), lower=1)
            if info == 0:
                Pk, info = potri(factor, lower=1)
            if info != 0 or not np.isfinite(Pk).all():
                return None
            inv[k] = np.where(lower, Pk, Pk.T)  # potri fills the lower triangle only
    return inv
