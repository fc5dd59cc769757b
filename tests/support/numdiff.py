"""Central differences: the one finite-difference reference of the tests."""

from __future__ import annotations

import numpy as np


def central_difference(f, x, eps: float = 1e-6, at=None) -> np.ndarray:
    """``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every index ``i`` of ``x`` (or only the
    indices in ``at``, the others left 0).

    Parameters
    ----------
    f : callable
        ``f(array shaped like x) -> float`` (or an array, for a Jacobian column per index).
    x : ndarray
        The point (not modified).
    eps : float
    at : iterable of index tuples, optional

    Returns
    -------
    ndarray shaped like ``x`` (scalar ``f``) or ``x.shape + f(x).shape``.
    """
    x = np.asarray(x, dtype=np.float64)
    out = None
    for idx in np.ndindex(x.shape) if at is None else at:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        d = (np.asarray(f(xp), dtype=np.float64) - np.asarray(f(xm), dtype=np.float64)) / (2 * eps)
        if out is None:
            out = np.zeros(x.shape + d.shape)
        out[idx] = d
    return out
