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

The blocks of :func:`spd_inverses` are independent: a compiled loop calls LAPACK's ``potrf`` and
``potri`` through SciPy's Cython LAPACK (no Python wrapper, no GIL), so the blocks split over the
cores, each factored on one thread (c26's 26 blocks of 567^2 in float32: ~130 -> ~57 ms on 2 idle
cores; ~90 ms right after a large NumPy product, whose BLAS threads keep spinning a while).

Every function returns None when the matrix is not numerically positive definite (Cholesky
breaks down) or the result is not finite: the callers then take another way (a general solve, or
no Newton step).
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np
from numba import njit
from numba.extending import get_cython_function_address
from scipy.linalg import lapack

from ._threads import n_workers, run_parts, single_thread

#: Fewest multiply-adds (blocks x size^3) for which the blocks are shared out to the cores:
#: right after a threaded product (as in a re-fit) smaller stacks gain nothing (11 blocks of 170^2
#: 3.5 / 3.7 ms on the calling thread / shared out, 26 of 300^2 26.9 / 27.2 ms; 26 of 566^2 111 / 88)
_THREADS_FROM = 1 << 30


def spd_solve(M: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``M^{-1} b`` for symmetric positive definite ``M`` (m, m) and ``b`` (m,) (float64), or
    None."""
    with single_thread():
        factor, info = lapack.dpotrf(M, lower=1)
        if info != 0:
            return None
        x, info = lapack.dpotrs(factor, b, lower=1)
    return x if info == 0 and np.isfinite(x).all() else None


@cache
def _routines(single: bool):
    """LAPACK's ``potrf`` and ``potri`` (float32 if ``single``) as C function pointers."""
    kind = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 5)  # (uplo, n, a, lda, info), all pointers
    prefix = "s" if single else "d"
    return tuple(
        kind(get_cython_function_address("scipy.linalg.cython_lapack", prefix + name))
        for name in ("potrf", "potri")
    )


@njit(nogil=True, cache=True)
def _invert_blocks(P, A, lo, hi, potrf, potri, args):  # pragma: no cover - compiled
    """``A[k] = P[k]^{-1}`` for ``k`` in ``[lo, hi)``, in ``A``'s dtype (the routines'); False
    when a block is not numerically positive definite or its inverse is not finite. ``args``
    (int32): ``'U'``, ``m``, the info slot. The arrays are row-major, so LAPACK's upper triangle
    is their lower one: ``potri`` fills it, and it is mirrored."""
    m = P.shape[1]
    for k in range(lo, hi):
        a = A[k]
        for i in range(m):  # explicit loops: an array assignment costs seconds of compilation
            for j in range(m):
                a[i, j] = P[k, i, j]
        potrf(args[0:].ctypes, args[1:].ctypes, a.ctypes, args[1:].ctypes, args[2:].ctypes)
        if args[2] != 0:
            return False
        potri(args[0:].ctypes, args[1:].ctypes, a.ctypes, args[1:].ctypes, args[2:].ctypes)
        if args[2] != 0:
            return False
        for i in range(m):
            for j in range(i + 1):
                v = a[i, j]
                if not np.isfinite(v):
                    return False
                a[j, i] = v
    return True


def spd_inverses(P: np.ndarray, dtype=np.float64, single: bool = False) -> np.ndarray | None:
    """The inverses of the symmetric positive definite blocks ``P`` (K, m, m), exactly symmetric,
    stored as ``dtype``; or None if one block is not positive definite. ``single``: factor and
    invert in float32 (26 blocks of 600^2 in 117 instead of 210 ms on one core), for inverses
    that only steer an iteration. Large stacks split over the cores (module doc)."""
    K, m = P.shape[0], P.shape[1]
    A = np.empty(P.shape, dtype=np.float32 if single else np.float64)
    potrf, potri = _routines(single)
    workers = min(K, n_workers()) if K * m**3 >= _THREADS_FROM else 1
    bounds = np.linspace(0, K, workers + 1).astype(int)
    parts = [
        (P, A, int(lo), int(hi), potrf, potri, np.array([ord("U"), m, 0], dtype=np.int32))
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    ok = run_parts(lambda part: _invert_blocks(*part), parts)
    return A.astype(dtype, copy=False) if all(ok) else None
