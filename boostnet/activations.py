"""Hidden-unit activations ``act(z)`` with ``z = x . v + c``.

relu and sign are positively homogeneous (``act(s z) = s^p act(z)`` for ``s > 0``), so a unit's scale
can move into its output weight: their units are normalised to ``||(v, c)||_2 = 1``. sigmoid and tanh
are not; their units are kept in the ball ``||(v, c)||_2 <= R`` (``R`` = the estimator's
``unit_scale``), without which the L1 problem over all units would not be well posed (a steep sigmoid
approaches a sign unit; scaling the argument changes the feature).

All functions work in place on the array they are given where that is safe, and take the array
module from their input.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from ._backend import get_namespace
from .exceptions import ConfigError


@dataclass(frozen=True)
class Activation:
    """A hidden-unit nonlinearity.

    Attributes
    ----------
    name : str
    homogeneous : bool
        True for relu and sign: units are normalised to unit norm. False for sigmoid and tanh: units
        are bounded by ``unit_scale``.
    differentiable : bool
        False for sign (its derivative is 0 almost everywhere): local refinement is skipped.
    """

    name: str
    homogeneous: bool
    differentiable: bool

    def __call__(self, z, out=None):
        """Return ``act(z)``; with ``out=z`` the result is written in place. Shape preserved."""
        xp = get_namespace(z)
        if self.name == "relu":
            return xp.maximum(z, 0, out=out)
        if self.name == "sigmoid":
            # 1 / (1 + exp(-z)) = (1 + tanh(z/2)) / 2: stable for any z
            r = xp.multiply(z, 0.5, out=out)
            xp.tanh(r, out=r)
            r += 1
            r *= 0.5
            return r
        if self.name == "tanh":
            return xp.tanh(z, out=out)
        if self.name == "sign":
            pos = z > 0
            if out is None:
                out = xp.empty_like(z)
            out[...] = -1
            out[pos] = 1
            return out
        raise AssertionError(self.name)

    def chain(self, z, upstream):
        """Return ``upstream * act'(z)``, written into ``upstream`` (same shape as ``z``): the
        backward pass through the activation without an array of derivatives (for relu one pass
        with the mask ``z > 0``)."""
        xp = get_namespace(z)
        if self.name == "relu":
            return xp.multiply(upstream, z > 0, out=upstream)
        if self.name == "sign":
            upstream[...] = 0
            return upstream
        upstream *= self.derivative(z)
        return upstream

    def derivative_at(self, h):
        """Return ``act'(z)`` from ``h = act(z)`` (a new array, same shape): relu ``h > 0``, tanh
        ``1 - h^2``, sigmoid ``h (1 - h)``; zero for sign."""
        xp = get_namespace(h)
        if self.name == "relu":
            return (h > 0).astype(h.dtype)
        if self.name == "sigmoid":
            return h * (1 - h)
        if self.name == "tanh":
            return 1 - h * h
        return xp.zeros_like(h)

    def derivative(self, z):
        """Return ``act'(z)`` (a new array, same shape as ``z``); zero a.e. for sign."""
        return self.derivative_at(self(z))


#: The differentiable activations' codes in the CPU's compiled loops (``boostnet.slide``,
#: ``boostnet.refine``), which branch on them: relu 0, tanh 1, sigmoid 2.
COMPILED_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2}


@njit(cache=True, nogil=True, inline="always")
def chained(u, h, code):  # pragma: no cover - compiled
    """``u act'(z)`` from ``h = act(z)`` for one entry (``code`` from ``COMPILED_CODES``: relu
    ``h > 0``, tanh ``1 - h^2``, sigmoid ``h (1 - h)``): :meth:`Activation.chain` inside the
    compiled loops."""
    if code == 0:
        return u if h > 0 else 0.0
    if code == 1:
        return u * (1.0 - h * h)
    return u * (h * (1.0 - h))


ACTIVATIONS = {
    "relu": Activation("relu", homogeneous=True, differentiable=True),
    "sign": Activation("sign", homogeneous=True, differentiable=False),
    "sigmoid": Activation("sigmoid", homogeneous=False, differentiable=True),
    "tanh": Activation("tanh", homogeneous=False, differentiable=True),
}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name."""
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None


def project_units(W, c, activation: Activation, unit_scale: float):
    """Project units onto their feasible set, in place.

    Parameters
    ----------
    W : array, shape (M, d)
        Input weights, one row per unit.
    c : array, shape (M,)
        Biases.
    activation : Activation
    unit_scale : float
        ``R``: the bound on ``||(v, c)||_2`` for sigmoid and tanh.

    Returns
    -------
    W, c : the same arrays, with each ``(v, c)`` on the unit sphere (relu, sign) or in the ball of
        radius ``R`` (sigmoid, tanh). A zero row stays zero.
    """
    scale = projection_scale(W, c, activation, unit_scale)
    W *= scale[:, None]
    c *= scale
    return W, c


def projection_scale(W, c, activation: Activation, unit_scale: float):
    """The factor, per unit, by which :func:`project_units` multiplies ``(v, c)``: shape (M,).

    The projection is a scaling of each unit, so a unit's pre-activations ``X v + c`` scale by the
    same factor (``boostnet.slide`` moves them without a pass over the rows).
    """
    xp = get_namespace(W)
    norms = xp.sqrt((W * W).sum(axis=1) + c * c)
    if activation.homogeneous:
        return 1.0 / xp.where(norms > 0, norms, 1)
    return xp.minimum(1.0, unit_scale / xp.where(norms > 0, norms, 1))


__all__ = [
    "ACTIVATIONS",
    "COMPILED_CODES",
    "Activation",
    "chained",
    "get_activation",
    "project_units",
    "projection_scale",
]
