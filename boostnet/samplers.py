"""Candidate samplers: a *fresh* pool of hidden units at every step.

No candidate list survives across steps: the searched pool is unbounded. Every sampler takes the
step's ``numpy.random.Generator`` (seeded from the estimator's ``random_state``) and returns units as
rows ``W`` (M, d) with biases ``c`` (M,), projected onto the activation's feasible set (unit norm for
relu and sign, norm <= ``unit_scale`` for sigmoid and tanh).

- :class:`RandomDirections`: ``v`` uniform on the sphere; the bias puts the hyperplane ``x . v + c = 0``
  through a training point drawn uniformly, so the unit's kink lies inside the data.
- :class:`DataPairs`: ``v = x_i - x_j`` for two training points drawn with probability proportional to
  the current ``|G|`` (SWIM-style data-dependent units); the hyperplane goes through a uniformly drawn
  point of the segment between them.
- :class:`Mixture`: a share of each (the default: half and half).

Indices are drawn on the host from the Generator; units are built from them on the device of ``X``.
Bulk normal draws happen where they are used (on a GPU from a seed drawn from the Generator).

``draw`` (:func:`draw`) returns the same units as ``sample`` together with :class:`PairRows`: which
rows are data-pair units, ``w_p = s_p (x_i - x_j)``. For those ``X w_p + c_p = s_p (K[:, i] - K[:, j])
+ c_p`` with ``K = X X^T``, which a scorer holding ``K`` reads instead of multiplying by ``X``
(:class:`boostnet.scoring.NumpyScorer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._backend import get_namespace, to_numpy
from .activations import Activation
from .exceptions import ConfigError


def _standard_normal(xp, rng: np.random.Generator, shape, dtype):
    if xp is np:
        return rng.standard_normal(shape).astype(dtype, copy=False)
    seed = int(rng.integers(2**63 - 1))
    return xp.random.default_rng(seed).standard_normal(shape, dtype=xp.float32).astype(dtype)


def _finish(W, c, activation: Activation, unit_scale: float, rng, xp, sq=None):
    """Normalise each ``(v, c)`` to unit norm; bounded activations get a norm drawn in (0.1 R, R].
    ``sq``: the rows' ``|v|^2``, where the caller has them. Returns ``W, c`` (scaled in place) and
    the scale of each row."""
    if sq is None:
        sq = xp.einsum("ij,ij->i", W, W)
    norms = xp.sqrt(sq + c * c)
    inv = 1.0 / xp.where(norms > 0, norms, 1.0)
    if not activation.homogeneous:
        inv = inv * xp.asarray(rng.uniform(0.1, 1.0, size=W.shape[0]) * unit_scale)
    W *= inv[:, None]
    c *= inv
    return W, c, inv


@dataclass
class PairRows:
    """The data-pair units of a pool: row ``rows[p]`` of ``W`` is ``scale[p] * (x_i - x_j)`` with
    ``i = i[p]``, ``j = j[p]`` (rows of the training inputs).

    Attributes
    ----------
    rows, i, j : ndarray of int, shape (Mp,)
        Host arrays.
    scale : array, shape (Mp,)
        float64, on the device of ``X``.
    """

    rows: np.ndarray
    i: np.ndarray
    j: np.ndarray
    scale: object


def draw(sampler, X, G, m: int, rng, activation: Activation, unit_scale: float, random_share=None):
    """``W, c, pairs``: the sampler's units (``sample``) and their :class:`PairRows` (None for a
    sampler without ``draw``, or with no pair units). ``random_share``: the share of random
    directions in this pool, for a sampler that mixes them with pairs (:class:`Mixture`; ignored
    by the others); None: the sampler's own."""
    if random_share is not None and hasattr(sampler, "pairs_fraction"):
        return sampler.draw(X, G, m, rng, activation, unit_scale, random_share=random_share)
    if hasattr(sampler, "draw"):
        return sampler.draw(X, G, m, rng, activation, unit_scale)
    W, c = sampler.sample(X, G, m, rng, activation, unit_scale)
    return W, c, None


@dataclass
class RandomDirections:
    """Random directions with biases through a uniformly drawn training point."""

    name = "random"

    def sample(self, X, G, m: int, rng, activation: Activation, unit_scale: float):
        """Return ``W`` (m, d) and ``c`` (m,) in float64 on the device of ``X``."""
        xp = get_namespace(X)
        n, d = X.shape
        W = _standard_normal(xp, rng, (m, d), xp.float64)
        W /= xp.sqrt((W * W).sum(axis=1, keepdims=True))
        idx = xp.asarray(rng.integers(0, n, size=m))
        c = -(X[idx] * W).sum(axis=1)
        return _finish(W, c, activation, unit_scale, rng, xp)[:2]


@dataclass
class DataPairs:
    """Units through pairs of training points, drawn with probability weighted by ``|G|``.

    Parameters
    ----------
    uniform_share : float
        Share of the sampling probability spread uniformly over the points, so that points with a
        zero gradient can still be drawn.
    """

    uniform_share: float = 0.1
    name = "pairs"

    def sample(self, X, G, m: int, rng, activation: Activation, unit_scale: float):
        """Return ``W`` (m, d) and ``c`` (m,) in float64 on the device of ``X``."""
        return self.draw(X, G, m, rng, activation, unit_scale)[:2]

    def draw(self, X, G, m: int, rng, activation: Activation, unit_scale: float):
        """``sample``'s ``W, c`` and their :class:`PairRows` (every row)."""
        xp = get_namespace(X)
        n = X.shape[0]
        w = to_numpy(abs(G).sum(axis=1)).astype(np.float64)
        tot = w.sum()
        p = np.full(n, 1.0 / n)
        if tot > 0 and np.isfinite(tot):
            p = (1 - self.uniform_share) * w / tot + self.uniform_share / n
            p /= p.sum()
        i = rng.choice(n, size=m, p=p)
        j = rng.choice(n, size=m, p=p)
        for _ in range(10):  # redraw the second point of pairs that drew one point twice
            same = i == j
            if not same.any():
                break
            j[same] = rng.choice(n, size=int(same.sum()), p=p)
        # (a pair left with one point gives v = 0: a constant unit, which scores ~0 and is harmless)
        t = xp.asarray(rng.uniform(0.0, 1.0, size=m))
        # W = x_i - x_j through x0 = x_j + t W: c = -(x_j . W + t |W|^2), without forming x0 (the
        # pool's m x d temporaries were most of a draw: Fashion-MNIST's 784 features, 21 -> 10 ms)
        Xj = X[xp.asarray(j)].astype(xp.float64, copy=False)
        # (a gather is a fresh array, never a view of X: written in place)
        W = X[xp.asarray(i)].astype(xp.float64, copy=False)
        W -= Xj
        sq = xp.einsum("ij,ij->i", W, W)
        c = -(xp.einsum("ij,ij->i", Xj, W) + t * sq)
        W, c, scale = _finish(W, c, activation, unit_scale, rng, xp, sq)
        return W, c, PairRows(np.arange(m), i, j, scale)


@dataclass
class Mixture:
    """A share ``pairs_fraction`` of :class:`DataPairs` units, the rest :class:`RandomDirections`."""

    pairs_fraction: float = 0.5
    name = "mixture"

    def sample(self, X, G, m: int, rng, activation: Activation, unit_scale: float):
        """Return ``W`` (m, d) and ``c`` (m,) in float64 on the device of ``X``."""
        return self.draw(X, G, m, rng, activation, unit_scale)[:2]

    def draw(self, X, G, m: int, rng, activation: Activation, unit_scale: float, random_share=None):
        """``sample``'s ``W, c`` and the :class:`PairRows` of its pair units (the last rows);
        ``random_share``: the share of random directions instead of ``1 - pairs_fraction`` (the
        greedy loop's, which follows how well they score: ``boostnet._greedy.next_random_share``)."""
        xp = get_namespace(X)
        if random_share is None:
            mp = int(round(m * self.pairs_fraction))
        else:
            mp = m - int(round(m * random_share))
        parts, pairs = [], None
        if m - mp > 0:
            parts.append(RandomDirections().sample(X, G, m - mp, rng, activation, unit_scale))
        if mp > 0:
            *part, pairs = DataPairs().draw(X, G, mp, rng, activation, unit_scale)
            pairs.rows = pairs.rows + (m - mp)
            parts.append(part)
        W = xp.concatenate([p[0] for p in parts])
        c = xp.concatenate([p[1] for p in parts])
        return W, c, pairs


@dataclass
class FixedDictionary:
    """A fixed, finite dictionary of units, scored exhaustively at every step (for studies and
    tests: with it the greedy loop solves the L1 problem over the whole dictionary)."""

    W: object
    c: object
    name = "dictionary"
    #: Its units never slide (``boostnet.slide``): the loop solves the L1 problem over the dictionary.
    movable = False

    def sample(self, X, G, m: int, rng, activation: Activation, unit_scale: float):
        xp = get_namespace(X)
        return xp.asarray(self.W, dtype=xp.float64), xp.asarray(self.c, dtype=xp.float64)


SAMPLERS = {"mixture": Mixture, "random": RandomDirections, "pairs": DataPairs}


def get_sampler(sampler):
    """Build a sampler from a name (``"mixture"``, ``"random"``, ``"pairs"``) or pass one through."""
    if hasattr(sampler, "sample"):
        return sampler
    try:
        return SAMPLERS[sampler]()
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}"
        ) from None
