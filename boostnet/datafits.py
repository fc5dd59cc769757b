"""Datafits: losses on raw predictions ``F`` (n x K), after skglm's split of datafit and penalty.

Every datafit works on the weighted mean loss

    f(F) = sum_t a_t l(F_t, Y_t),        a_t >= 0,  sum_t a_t = 1,

where ``a`` are the normalised sample weights (``1/n`` each without sample weights). Arrays:

- ``Y``: targets, shape (n, K): real values (squared error), 0/1 (logistic, K = 1), one-hot (softmax).
- ``F``: raw predictions, shape (n, K).
- ``a``: normalised sample weights, shape (n,).

Methods take the array module from their inputs, so they run on NumPy and CuPy arrays alike. On
NumPy arrays softmax's value, gradient, probabilities and conjugate run as compiled loops over the
rows (numba; one pass each instead of a chain of n x K temporaries).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._backend import get_namespace

#: Dual points are built from the gradient with the intercept's constraint enforced by centring,
#: which can push a probability of ~1e-13 a hair below 0. Within this slack the point is clipped
#: back into the conjugate's domain (the gap changes by about the slack); beyond it ``f*`` is inf.
_DOMAIN_SLACK = 1e-8


def _xlogx(p, xp):
    """``p log p`` with ``0 log 0 = 0`` (``p`` >= 0)."""
    safe = xp.where(p > 0, p, 1.0)
    return xp.where(p > 0, p * xp.log(safe), 0.0)


def _rowsum(A, xp):
    """Sum over the (short) last axis: a matrix-vector product is much faster than ``sum(axis=1)``."""
    return A @ xp.ones(A.shape[1], dtype=A.dtype)


def _softmax_parts(F, xp):
    """Return ``E, s, shift`` with ``E = exp(F - shift)``, ``s`` = row sums of E (n,).

    One global shift (the largest entry) keeps every exp <= 1; a row whose entries all lie far
    below it (~700 in float64, ~80 in float32) would underflow, and only then is the per-row
    maximum used.
    """
    shift = F.max()
    E = xp.exp(F - shift)
    s = _rowsum(E, xp)
    if bool((s < np.finfo(s.dtype).tiny ** 0.9).any()):
        shift = F.max(axis=1, keepdims=True)
        E = xp.exp(F - shift)
        s = _rowsum(E, xp)
        shift = shift[:, 0]
    return E, s, shift


# ---- softmax on the CPU: compiled row loops around NumPy's vectorised exp and log ---------------
# The generic expressions below take ten or so passes over the n x K arrays, each a temporary; on
# many classes (c26: 15 000 x 26) these evaluations were 15 % of a fit. Here each row is shifted by
# its own maximum (never an underflow) and the sums accumulate in float64, in compiled loops; the
# exponentials and logarithms are NumPy's (SIMD: a compiled loop's scalar exp took ~8 ns each, 3.6
# of 4 ms on 15 000 x 26).


@njit(cache=True, nogil=True)
def _row_max(F):  # pragma: no cover - compiled
    n, K = F.shape
    mx = np.empty(n, dtype=F.dtype)
    for t in range(n):
        m = F[t, 0]
        for k in range(1, K):
            if F[t, k] > m:
                m = F[t, k]
        mx[t] = m
    return mx


def _row_exp(F):
    """``E = exp(F_t - max F_t)`` (n, K) and the row maxima (n,)."""
    mx = _row_max(F)
    E = np.subtract(F, mx[:, None])
    np.exp(E, out=E)
    return E, mx


@njit(cache=True, nogil=True)
def _value_grad_rows(Y, F, E, mx, a, grad):  # pragma: no cover - compiled
    """The loss from ``E, mx`` (:func:`_row_exp`); with ``grad`` E becomes the gradient."""
    n, K = F.shape
    total = 0.0
    for t in range(n):
        s = 0.0
        yf = 0.0
        for k in range(K):
            s += E[t, k]
            yf += Y[t, k] * F[t, k]
        total += a[t] * (mx[t] + np.log(s) - yf)
        if grad:
            w = a[t] / s
            for k in range(K):
                E[t, k] = w * E[t, k] - a[t] * Y[t, k]
    return total


def _softmax_value_grad(Y, F, a, grad):
    """``(loss, gradient (n, K) or None)``."""
    E, mx = _row_exp(F)
    total = _value_grad_rows(Y, F, E, mx, a, grad)
    return total, E if grad else None


@njit(cache=True, nogil=True)
def _normalise_rows(E):  # pragma: no cover - compiled
    n, K = E.shape
    for t in range(n):
        s = 0.0
        for k in range(K):
            s += E[t, k]
        for k in range(K):
            E[t, k] /= s
    return E


def _softmax_proba(F):
    return _normalise_rows(_row_exp(F)[0])


@njit(cache=True, nogil=True)
def _conjugate_rows(Y, G, a, c, r, u, slack, P):  # pragma: no cover - compiled
    """``P``: each row's ``q = max(Nu_t / a_t + Y_t, 0)`` normalised (0 where ``a_t = 0``), with
    ``Nu = c G + a r^T + u diag(a) Y`` (``c = 1, r = 0, u = 0``: ``Nu = G``), formed row by row;
    False if an entry lies below ``-slack`` (outside the conjugate's domain)."""
    n, K = G.shape
    for t in range(n):
        if not a[t] > 0:
            for k in range(K):
                P[t, k] = 0.0
            continue
        s = 0.0
        for k in range(K):
            v = (c * G[t, k] + a[t] * (r[k] + u * Y[t, k])) / a[t] + Y[t, k]
            if v < -slack:
                return False
            P[t, k] = v if v > 0.0 else 0.0
            s += P[t, k]
        for k in range(K):
            P[t, k] /= s
    return True


@njit(cache=True, nogil=True)
def _weighted_xlogx(P, L, a):  # pragma: no cover - compiled
    n, K = P.shape
    total = 0.0
    for t in range(n):
        row = 0.0
        for k in range(K):
            row += P[t, k] * L[t, k]
        total += a[t] * row
    return total


def _softmax_conjugate(Y, G, a, slack, c=1.0, r=None, u=0.0):
    """``f*(Nu)``, ``Nu = c G + a r^T + u diag(a) Y`` (by default ``Nu = G``), without forming
    ``Nu``."""
    r = np.zeros(G.shape[1]) if r is None else np.asarray(r, dtype=np.float64)
    P = np.empty(G.shape)  # float64 whatever G's dtype: q log q as the sums, in float64
    if not _conjugate_rows(Y, G, a, float(c), r, float(u), slack, P):
        return np.inf
    L = np.zeros_like(P)
    np.log(P, out=L, where=P > 0.0)
    return _weighted_xlogx(P, L, a)


class Datafit:
    """Interface of a datafit (see the module docstring for the array conventions).

    Attributes
    ----------
    name : str
    lipschitz : float
        Bound on the largest eigenvalue of the Hessian of ``l(., Y_t)`` with respect to ``F_t``;
        the gradient of ``f`` is then Lipschitz with constant ``lipschitz * ||diag(a)^(1/2) A||_2^2``
        for ``F = A x``.
    """

    name = "datafit"
    lipschitz = 1.0
    #: ``f(F + v 1^T) = f(F)`` for every ``v`` (n,): adding one value to all K outputs of a
    #: sample changes nothing (softmax).
    shift_invariant = False
    #: The Hessian in ``F`` couples a sample's K outputs (softmax), so ``hess_diag`` is only its
    #: diagonal; :meth:`hessian_product` applies the whole of it.
    coupled = False
    #: The Hessian in ``F`` is ``diag(a)`` for every output whatever ``F`` (squared error): the
    #: re-fit's curvature model is then exact, built once from every row and never rebuilt.
    constant_curvature = False

    def value(self, Y, F, a) -> float:
        """Return ``f(F) = sum_t a_t l(F_t, Y_t)`` (a 0-d array)."""
        return a @ self.row_values(Y, F)

    def row_values(self, Y, F):
        """Return the per-sample losses ``l(F_t, Y_t)``, shape (n,) (``value`` is their weighted
        sum; a held-out score's standard error is taken from them)."""
        raise NotImplementedError

    def raw_grad(self, Y, F, a):
        """Return ``G = df/dF``, shape (n, K): ``G_t = a_t grad l(F_t, Y_t)``."""
        raise NotImplementedError

    def value_grad(self, Y, F, a):
        """Return ``(value(Y, F, a), raw_grad(Y, F, a))``, sharing work where possible."""
        return self.value(Y, F, a), self.raw_grad(Y, F, a)

    def hess_diag(self, Y, F, a):
        """Diagonal of the Hessian of ``f`` in ``F``, per sample and output: (n, K)."""
        raise NotImplementedError

    def hessian_product(self, Y, F, a):
        """The Hessian of ``f`` in ``F`` at ``F`` as an operator: a function ``V (n, K) -> (n, K)``,
        row ``t`` of the result the Hessian of ``a_t l(., Y_t)`` times ``V_t``. Here (outputs that
        do not interact): ``hess_diag * V``."""
        C = self.hess_diag(Y, F, a)
        return lambda V: C * V

    def inverse_link(self, F):
        """Map raw predictions to the mean of the target (identity, sigmoid, softmax). (n, K)."""
        raise NotImplementedError

    def intercept(self, Y, a):
        """The best constant prediction ``argmin_b f(1 b^T)``, shape (K,)."""
        raise NotImplementedError

    def conjugate(self, Y, Nu, a):
        """Return ``f*(Nu) = sum_t a_t l*(Nu_t / a_t, Y_t)`` (``inf`` outside its domain).

        ``Nu`` has shape (n, K). Rows with ``a_t = 0`` must be zero and contribute nothing.
        """
        raise NotImplementedError

    def conjugate_affine(self, Y, G, a, s, r, u):
        """``f*(Nu)`` at ``Nu = s G + a r^T + u diag(a) Y`` (:func:`affine_point`; the dual
        point's form, :meth:`dual_point_affine`, possibly scaled). Softmax evaluates it row by row
        on the CPU without forming ``Nu``."""
        return self.conjugate(Y, affine_point(Y, G, a, s, r, u), a)

    def dual_point(self, Y, G, a):
        """A dual point built from the gradient ``G`` (n, K): ``Nu`` with ``1^T Nu = 0`` (the
        unpenalised intercept's constraint) and ``f*(Nu)`` finite, equal to ``G`` when the intercept
        is optimal (``1^T G = 0``). It is affine in ``G`` and ``Y`` (see :meth:`dual_point_affine`).
        """
        return affine_point(Y, G, a, *self.dual_point_affine(Y, G, a))

    def dual_point_affine(self, Y, G, a):
        """The dual point's coefficients: ``Nu = s G + a r^T + u diag(a) Y``, ``s``, ``u`` floats and
        ``r`` (K,), so that ``H^T Nu`` follows from ``H^T G``, ``H^T a`` and ``H^T diag(a) Y``
        without another pass over the rows. Here: centring, ``s = 1``, ``r = -1^T G``, ``u = 0``."""
        return 1.0, -G.sum(axis=0), 0.0


def affine_point(Y, G, a, s, r, u):
    """``Nu = s G + a r^T + u diag(a) Y`` (n, K) for floats ``s``, ``u`` and ``r`` (K,)."""
    Nu = G if s == 1.0 else s * G
    Nu = Nu + a[:, None] * r
    return Nu if u == 0.0 else Nu + u * (a[:, None] * Y)


class SquaredError(Datafit):
    """Squared error ``l(F_t, Y_t) = ||Y_t - F_t||^2 / 2`` (regression, any number of outputs K).

    ``grad l = F_t - Y_t``; Hessian ``I`` (lipschitz 1); ``l*(u) = ||u||^2 / 2 + u . Y_t``.
    """

    name = "squared_error"
    lipschitz = 1.0
    constant_curvature = True

    def row_values(self, Y, F):
        R = F - Y
        return 0.5 * (R * R).sum(axis=1)

    def raw_grad(self, Y, F, a):
        return a[:, None] * (F - Y)

    def hess_diag(self, Y, F, a):
        xp = get_namespace(F)
        return xp.broadcast_to(a[:, None], F.shape)

    def inverse_link(self, F):
        return F

    def intercept(self, Y, a):
        return (a[:, None] * Y).sum(axis=0)

    def conjugate(self, Y, Nu, a):
        xp = get_namespace(Nu)
        inv = xp.where(a > 0, 1.0 / xp.where(a > 0, a, 1.0), 0.0)
        U = Nu * inv[:, None]
        return (a[:, None] * (0.5 * U * U + U * Y)).sum()


class Logistic(Datafit):
    """Binary logistic loss ``l(F_t, y_t) = log(1 + exp(F_t)) - y_t F_t``, ``y_t`` in {0, 1}, K = 1.

    ``grad l = sigmoid(F_t) - y_t``; Hessian ``p(1 - p) <= 1/4``;
    ``l*(u) = q log q + (1 - q) log(1 - q)`` with ``q = u + y_t`` in [0, 1].
    """

    name = "logistic"
    lipschitz = 0.25

    def row_values(self, Y, F):
        xp = get_namespace(F)
        return (xp.logaddexp(0.0, F) - Y * F).sum(axis=1)

    def raw_grad(self, Y, F, a):
        return a[:, None] * (self.inverse_link(F) - Y)

    def hess_diag(self, Y, F, a):
        P = self.inverse_link(F)
        return a[:, None] * P * (1.0 - P)

    def inverse_link(self, F):
        xp = get_namespace(F)
        return 0.5 * (1.0 + xp.tanh(0.5 * F))

    def intercept(self, Y, a):
        xp = get_namespace(Y)
        p = xp.clip((a[:, None] * Y).sum(axis=0), 1e-12, 1 - 1e-12)
        return xp.log(p) - xp.log1p(-p)

    def conjugate(self, Y, Nu, a):
        xp = get_namespace(Nu)
        inv = xp.where(a > 0, 1.0 / xp.where(a > 0, a, 1.0), 0.0)
        Q = Nu * inv[:, None] + Y
        mask = a[:, None] > 0
        if bool(((Q < -_DOMAIN_SLACK) & mask).any() or ((Q > 1 + _DOMAIN_SLACK) & mask).any()):
            return xp.asarray(float("inf"))
        Q = xp.clip(Q, 0.0, 1.0)
        return (a[:, None] * (_xlogx(Q, xp) + _xlogx(1.0 - Q, xp))).sum()

    def dual_point_affine(self, Y, G, a):
        return _mixed_dual_point(Y, G, a, two_sided=True)


def _mixed_dual_point(Y, G, a, two_sided):
    """``Nu = a (q - Y)`` with ``q_t = (1 - theta) p_t + theta c``: the model's probabilities
    ``p_t = G_t / a_t + Y_t`` mixed with one constant distribution ``c`` so that the weighted mean
    of ``q`` equals the targets' (``1^T Nu = 0``), with the smallest ``theta`` that keeps ``c``, and
    so every ``q_t``, inside the probability simplex (or [0, 1] for one logistic output,
    ``two_sided``). ``theta = 0`` when the intercept is optimal: then ``Nu = G``. Returned as the
    affine coefficients of :meth:`Datafit.dual_point_affine`: ``Nu = (1 - theta) G + theta a c^T -
    theta diag(a) Y``."""
    xp = get_namespace(G)
    gb = G.sum(axis=0)  # = pbar - ybar
    ybar = a @ Y
    pbar = ybar + gb
    ratios = [xp.where(pbar > 0, gb / xp.where(pbar > 0, pbar, 1.0), 0.0)]
    if two_sided:  # the other class of a logistic output: 1 - p
        ratios.append(xp.where(pbar < 1, -gb / xp.where(pbar < 1, 1.0 - pbar, 1.0), 0.0))
    theta = max(0.0, *(float(r.max()) for r in ratios))
    if theta <= 0.0:
        return 1.0, xp.zeros_like(gb), 0.0
    theta = min(theta, 1.0)
    c = xp.clip((ybar - (1.0 - theta) * pbar) / theta, 0.0, 1.0)
    return 1.0 - theta, theta * c, -theta


class SoftmaxCrossEntropy(Datafit):
    """Multinomial loss ``l(F_t, Y_t) = logsumexp(F_t) - Y_t . F_t``, ``Y_t`` one-hot over K classes.

    ``grad l = softmax(F_t) - Y_t``; Hessian ``diag(p) - p p^T``, largest eigenvalue <= 1/2;
    ``l*(u) = sum_k q_k log q_k`` with ``q = u + Y_t`` in the probability simplex.
    """

    name = "softmax"
    lipschitz = 0.5
    shift_invariant = True
    coupled = True

    def value(self, Y, F, a):
        xp = get_namespace(F)
        if xp is np:
            return np.asarray(_softmax_value_grad(Y, F, a, False)[0])
        return super().value(Y, F, a)  # the weighted sum of row_values (CuPy's path)

    def row_values(self, Y, F):
        xp = get_namespace(F)
        _, s, shift = _softmax_parts(F, xp)
        return shift + xp.log(s) - _rowsum(Y * F, xp)

    def value_grad(self, Y, F, a):
        xp = get_namespace(F)
        if xp is np:
            value, G = _softmax_value_grad(Y, F, a, True)
            return np.asarray(value), G
        E, s, shift = _softmax_parts(F, xp)
        value = a @ (shift + xp.log(s) - _rowsum(Y * F, xp))
        return value, (a / s)[:, None] * E - a[:, None] * Y

    def raw_grad(self, Y, F, a):
        return a[:, None] * (self.inverse_link(F) - Y)

    def hess_diag(self, Y, F, a):
        P = self.inverse_link(F)
        return a[:, None] * P * (1.0 - P)

    def hessian_product(self, Y, F, a):
        # the full Hessian a_t (diag(p_t) - p_t p_t^T): the classes interact
        xp = get_namespace(F)
        P = self.inverse_link(F)

        def product(V):
            Q = P * V
            return a[:, None] * (Q - P * _rowsum(Q, xp)[:, None])

        return product

    def inverse_link(self, F):
        xp = get_namespace(F)
        if xp is np:
            return _softmax_proba(F)
        E, s, _ = _softmax_parts(F, xp)
        return E / s[:, None]

    def intercept(self, Y, a):
        xp = get_namespace(Y)
        p = xp.clip((a[:, None] * Y).sum(axis=0), 1e-12, None)
        b = xp.log(p)
        return b - b.mean()

    def conjugate(self, Y, Nu, a):
        xp = get_namespace(Nu)
        if xp is np:
            return np.asarray(_softmax_conjugate(Y, Nu, a, _DOMAIN_SLACK))
        inv = xp.where(a > 0, 1.0 / xp.where(a > 0, a, 1.0), 0.0)
        Q = Nu * inv[:, None] + Y
        mask = a[:, None] > 0
        if bool(((Q < -_DOMAIN_SLACK) & mask).any()):
            return xp.asarray(float("inf"))
        Q = xp.clip(Q, 0.0, None)
        Q = Q / _rowsum(Q, xp)[:, None]
        return a @ _rowsum(_xlogx(Q, xp), xp)

    def conjugate_affine(self, Y, G, a, s, r, u):
        if get_namespace(G) is np:
            return np.asarray(_softmax_conjugate(Y, G, a, _DOMAIN_SLACK, s, r, u))
        return super().conjugate_affine(Y, G, a, s, r, u)

    def dual_point_affine(self, Y, G, a):
        return _mixed_dual_point(Y, G, a, two_sided=False)


DATAFITS = {
    "squared_error": SquaredError,
    "logistic": Logistic,
    "softmax": SoftmaxCrossEntropy,
}
