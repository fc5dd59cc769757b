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
  majorises the block's curvature ``diag(A_k[j, j])`` by its largest entry and applies block
  soft-thresholding (a proximal-gradient step on the block, which decreases ``q`` monotonically).

``A`` may hold one matrix shared by every output (shape (1, m, m): squared error) or one per output
(shape (K, m, m)). Both stop when the largest change of a sweep, in gradient units
(``A_jj |delta|``), is at most ``tol``, or after ``max_sweeps`` sweeps. They return the new ``W`` and
the number of sweeps.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cd_l1(A, g, W0, alpha, tol, max_sweeps):  # pragma: no cover - compiled
    m, K = W0.shape
    W = W0.copy()
    shared = A.shape[0] == 1
    sweeps_max = 0
    r = np.empty(m)
    for k in range(K):
        Ak = A[0] if shared else A[k]
        for i in range(m):
            r[i] = g[i, k]
        sweeps = 0
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
                    for i in range(m):
                        r[i] += Ak[i, j] * d
                    c = ajj * abs(d)
                    if c > change:
                        change = c
            if change <= tol:
                break
        if sweeps > sweeps_max:
            sweeps_max = sweeps
    return W, sweeps_max


@njit(cache=True, nogil=True)
def cd_group_l1(A, g, W0, alpha, tol, max_sweeps):  # pragma: no cover - compiled
    m, K = W0.shape
    W = W0.copy()
    shared = A.shape[0] == 1
    R = g.copy()
    z = np.empty(K)
    d = np.empty(K)
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        change = 0.0
        for j in range(m):
            L = 0.0
            for k in range(K):
                ajj = A[0, j, j] if shared else A[k, j, j]
                if ajj > L:
                    L = ajj
            if L <= 0.0:
                continue
            nz = 0.0
            for k in range(K):
                z[k] = W[j, k] - R[j, k] / L
                nz += z[k] * z[k]
            nz = np.sqrt(nz)
            scale = 0.0
            if nz > 0.0:
                scale = 1.0 - alpha / (L * nz)
                if scale < 0.0:
                    scale = 0.0
            moved = False
            for k in range(K):
                d[k] = scale * z[k] - W[j, k]
                if d[k] != 0.0:
                    moved = True
            if not moved:
                continue
            for k in range(K):
                if d[k] == 0.0:
                    continue
                W[j, k] += d[k]
                Ak = A[0] if shared else A[k]
                for i in range(m):
                    R[i, k] += Ak[i, j] * d[k]
                c = L * abs(d[k])
                if c > change:
                    change = c
        if change <= tol:
            break
    return W, sweeps


SOLVERS = {"l1": cd_l1, "group_l1": cd_group_l1}
