"""Penalties on the output weights ``W`` (m x K: one row per hidden unit, one column per output).

``L1``: ``Omega(W) = sum_{j,k} |W_jk|`` (the objective's ``||w||_1``); its dual norm on a unit's
correlation ``r = h^T G`` (K,) is ``||r||_inf``.
``GroupL1``: ``Omega(W) = sum_j ||W_j||_2`` (one group per unit over its K outputs); dual norm
``||r||_2``. For K = 1 the two coincide.

A penalty owns the proximal operator, the dual norm (the reducer that turns a candidate's
correlations into its score), the optimality violation, ``lambda_max`` and its smooth part on the
active set (:meth:`Penalty.smooth_part`: where the weights are not zero both penalties are twice
differentiable, which the re-fit's Newton steps use). Arrays are NumPy or CuPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._backend import get_namespace
from .exceptions import ConfigError


@dataclass
class SmoothPart:
    """The penalty near ``W`` restricted to its active entries, where it is smooth.

    Attributes
    ----------
    mask : ndarray of bool, shape (m, K)
        The active entries (the variables of the restricted problem).
    grad : ndarray, shape (m, K)
        Gradient of ``alpha * Omega`` at ``W`` on the active entries, 0 elsewhere.
    hess_diag : ndarray, shape (m, K)
        Diagonal of its Hessian (0 off the mask).
    hess : callable
        ``D (m, K) -> Hessian times D`` (0 off the mask).
    lowrank : tuple of ndarray, optional
        ``(c, U)``, shapes (m,) and (m, K): the Hessian on row ``j`` is ``c_j (I - u_j u_j^T)``
        (group L1; ``c_j = 0`` on a zero row), so that a preconditioner can keep its rank-one parts
        exactly; None where the Hessian is diagonal.
    """

    mask: np.ndarray
    grad: np.ndarray
    hess_diag: np.ndarray
    hess: object
    lowrank: tuple | None = None


class Penalty:
    """``alpha * Omega(W)``; ``alpha`` is the objective's lambda."""

    name = "penalty"

    def __init__(self, alpha: float):
        self.alpha = float(alpha)

    def value(self, W):
        """``alpha * Omega(W)`` (0-d array). W: (m, K)."""
        raise NotImplementedError

    def prox(self, W, step):
        """``argmin_U ||U - W||^2 / 2 + step * alpha * Omega(U)`` (new array, (m, K))."""
        raise NotImplementedError

    @staticmethod
    def metric(D):
        """Reduce per-entry curvatures ``D`` (m, K) to the shape of step sizes this prox accepts."""
        return D

    @staticmethod
    def dual_norm(R):
        """Row-wise dual norm of the correlations ``R`` (q, K) -> scores (q,)."""
        raise NotImplementedError

    @staticmethod
    def dual_norm_grad(R):
        """A subgradient of each row's dual norm with respect to that row: (q, K)."""
        raise NotImplementedError

    @staticmethod
    def best_shift(W):
        """Per row ``v_j`` minimising ``Omega(W - v 1^T)`` (host NumPy, (m,)): the common shift of a
        unit's K weights that a shift-invariant loss (softmax) leaves to the penalty."""
        raise NotImplementedError

    def violation(self, W, grad):
        """Largest distance of ``-grad`` to ``alpha * dOmega(W)`` (0 iff optimal in W).

        ``grad`` is the datafit gradient with respect to ``W`` (m, K). Returns a 0-d array.
        """
        xp = get_namespace(W)
        if W.size == 0:
            return xp.asarray(0.0)
        return self.unit_violations(W, grad).max()

    def unit_violations(self, W, grad):
        """Each unit's (row's) share of :meth:`violation`, shape (m,): the distance of its
        ``-grad`` row to ``alpha`` times the penalty's subdifferential at its row of ``W``
        (group L1), or the largest over its entries (L1)."""
        raise NotImplementedError

    def smooth_part(self, W) -> SmoothPart:
        """The penalty's gradient and Hessian on the active entries of ``W`` (host NumPy, (m, K))."""
        raise NotImplementedError

    @staticmethod
    def crossing(W, D):
        """Where the step ``W -> W + D`` carries a block of weights through zero (host NumPy, both
        (m, K)): a boolean (m, K) mask of the entries of those blocks. The smooth part of the
        penalty (:meth:`smooth_part`) holds only while no block reaches zero."""
        raise NotImplementedError

    @classmethod
    def lambda_max(cls, R):
        """Smallest ``alpha`` for which ``W = 0`` is optimal, given correlations ``R`` (q, K) of
        every unit with the gradient at the intercept-only model."""
        return cls.dual_norm(R).max()


class L1(Penalty):
    """Elementwise L1: ``alpha * sum |W_jk|``; prox is soft-thresholding; dual norm ``||r||_inf``."""

    name = "l1"

    def value(self, W):
        return self.alpha * abs(W).sum()

    def prox(self, W, step):
        xp = get_namespace(W)
        t = step * self.alpha
        return xp.sign(W) * xp.maximum(abs(W) - t, 0.0)

    @staticmethod
    def dual_norm(R):
        return abs(R).max(axis=1)

    @staticmethod
    def dual_norm_grad(R):
        xp = get_namespace(R)
        k = abs(R).argmax(axis=1)
        D = xp.zeros_like(R)
        rows = xp.arange(R.shape[0])
        D[rows, k] = xp.sign(R[rows, k])
        return D

    @staticmethod
    def best_shift(W):
        return np.median(W, axis=1)

    @staticmethod
    def crossing(W, D):
        return W * (W + D) < 0

    def unit_violations(self, W, grad):
        xp = get_namespace(W)
        on = abs(grad + self.alpha * xp.sign(W))
        off = xp.maximum(abs(grad) - self.alpha, 0.0)
        return xp.where(W != 0, on, off).max(axis=1)

    def smooth_part(self, W) -> SmoothPart:
        # on the nonzero entries with their signs fixed the penalty is linear
        mask = W != 0
        zero = np.zeros_like(W)
        return SmoothPart(mask, self.alpha * np.sign(W), zero, lambda D: np.zeros_like(D))


class GroupL1(Penalty):
    """Group L1 over each unit's K outputs: ``alpha * sum_j ||W_j||_2``; block soft-thresholding;
    dual norm ``||r||_2``."""

    name = "group_l1"

    @staticmethod
    def metric(D):
        # the block prox needs one step per unit: the largest curvature of its K entries
        return D.max(axis=1, keepdims=True)

    def value(self, W):
        xp = get_namespace(W)
        return self.alpha * xp.sqrt((W * W).sum(axis=1)).sum()

    def prox(self, W, step):
        xp = get_namespace(W)
        t = step * self.alpha
        n = xp.sqrt((W * W).sum(axis=1, keepdims=True))
        return W * xp.maximum(1.0 - t / xp.where(n > 0, n, 1.0), 0.0)

    @staticmethod
    def dual_norm(R):
        xp = get_namespace(R)
        return xp.sqrt((R * R).sum(axis=1))

    @staticmethod
    def dual_norm_grad(R):
        xp = get_namespace(R)
        n = xp.sqrt((R * R).sum(axis=1, keepdims=True))
        return R / xp.where(n > 0, n, 1.0)

    @staticmethod
    def best_shift(W):
        return W.mean(axis=1)

    @staticmethod
    def crossing(W, D):
        rows = (W * (W + D)).sum(axis=1) < 0  # the group's direction reversed
        return np.broadcast_to(rows[:, None], W.shape)

    def unit_violations(self, W, grad):
        xp = get_namespace(W)
        wn = xp.sqrt((W * W).sum(axis=1, keepdims=True))
        on = grad + self.alpha * W / xp.where(wn > 0, wn, 1.0)
        on = xp.sqrt((on * on).sum(axis=1))
        off = xp.maximum(xp.sqrt((grad * grad).sum(axis=1)) - self.alpha, 0.0)
        return xp.where(wn[:, 0] > 0, on, off)

    def smooth_part(self, W) -> SmoothPart:
        # on a nonzero row: gradient alpha u, Hessian alpha (I - u u^T) / ||w||, u = w / ||w||
        norms = np.sqrt((W * W).sum(axis=1, keepdims=True))
        active = norms > 0
        inv = np.where(active, 1.0 / np.where(active, norms, 1.0), 0.0)
        U = W * inv
        mask = np.broadcast_to(active, W.shape)

        def hess(D):
            return self.alpha * inv * (D - U * (U * D).sum(axis=1, keepdims=True))

        return SmoothPart(
            mask,
            self.alpha * U,
            self.alpha * inv * (1.0 - U * U),
            hess,
            (self.alpha * inv[:, 0], U),
        )


PENALTIES = {"l1": L1, "group_l1": GroupL1}


#: ``penalty="auto"``: group L1 (units shared by the K outputs) for a multiclass softmax fit, else
#: elementwise L1. Measured: experiments/speed_suite.py (docs/python-api.md, "Parameters that matter most").
AUTO_MULTICLASS = "group_l1"


def resolve_penalty(name: str, multiclass: bool) -> str:
    """The penalty a fit uses: ``name``, or for ``"auto"`` :data:`AUTO_MULTICLASS` when the
    outputs are the classes of one softmax (K > 2), else ``"l1"``."""
    if name != "auto":
        return name
    return AUTO_MULTICLASS if multiclass else "l1"


def get_penalty(name: str, alpha: float) -> Penalty:
    """Build a penalty by name (``"l1"`` or ``"group_l1"``)."""
    try:
        cls = PENALTIES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown penalty {name!r}; expected one of {', '.join(PENALTIES)}"
        ) from None
    return cls(alpha)
