"""Exact search for the best hidden unit in one and two dimensions.

The greedy loop needs ``max_u score(u)`` over every unit ``u = (v, c)`` of the normalised family,

    score(u) = dual_norm(h(u)^T G),    h(u) = act(X~ u),    X~ = [X | 1] (n, d + 1),

with ``||u||_2 = 1`` for relu and sign (see :mod:`boostnet.activations`). A sampled pool only gives
a lower bound on that maximum; for ``d <= 2`` and sign or relu units the maximum can be computed
exactly, which makes the loop's certificate global.

Activation patterns
    A unit's pattern is ``S(u) = {i : x~_i . u > 0}``. The hyperplanes ``x~_i^perp`` cut the sphere
    into cells on which the pattern is constant; in 2-D they are the lines through the data points.
    A sign unit's correlation ``h^T G = 2 P_S - T`` (``P_S`` = sum of the rows of ``G`` in ``S``,
    ``T`` = sum of all rows) depends on the pattern only. A relu unit's ``h^T G = M_S u`` with
    ``M_S = sum_{i in S} G_i x~_i^T`` (K, d + 1) is *linear* in ``u`` on a cell (and continuous
    across cell walls, where the points on the wall contribute 0).

Enumerating the patterns in 2-D (pivot sweep)
    Every pattern is an open half-plane ``{x . v > t}``. Turning ``v``, the pattern set changes
    only at the O(n^2) directions where ``v`` is orthogonal to a line through two (or more) points;
    the patterns that appear there are "the open side of a line L through a pivot point ``x_i``,
    plus the points of L on one side of a cut at ``x_i``" (four per pivot and ray: cut just
    before or just after ``x_i``, towards either end of L). For each pivot the other points are
    sorted by angle around it (``O(n log n)``); with prefix sums of the rows to be summed over the
    angular order (tripled, so that every half-turn window is contiguous), the sum over the open
    half-plane to the left of the ray to point ``j``, over the ray, and over the opposite ray are
    differences of prefix sums found by binary search: all ``O(n^2)`` patterns in ``O(n^2 log n
    + n^2 K)``. Points closer than ``1e-9`` rad in angle around a pivot count as collinear.

Sign units
    The score of each enumerated pattern is exact; the best few patterns are turned into units (a
    line slightly moved and turned off the critical line) and re-scored on the data.

Relu units
    On a closed cell the dual norm of the linear map ``u -> M_S u`` is maximised over the sphere
    either inside the cell, at its unconstrained maximiser (``+-m_k / ||m_k||`` per output for
    the max-abs dual norm of elementwise L1; ``+-`` the top right singular vector of ``M_S`` for
    the Euclidean one of group L1), or on the cell's boundary. A boundary arc lies on one great
    circle ``x~_i^perp`` (the lines through pivot ``x_i``), where the same holds one dimension
    lower (maximiser of ``M_S B_i w`` over ``||w|| = 1``, ``B_i`` an orthonormal basis of
    ``x~_i^perp``), or ends in a vertex (a line through two points), whose score the sweep gives
    exactly. The candidates of all cells, arcs and vertices come with an upper bound (their value
    if they lie inside their cell or arc, which is then their true score); evaluated best bound
    first, the search stops when the next bound is not above the best true score found: that
    score is the maximum. In 1-D the cells are arcs of the circle between the 2n kinks
    ``u ~ +-(1, -x_i)`` and the same argument runs over suffix and prefix sums.

Duplicate points are merged first (their rows of ``G`` summed). Exactness is up to float64
rounding and the 1e-9 rad collinearity tolerance (two patterns separated only by a point closer
than that to a line through two others could be missed). Measured (one core, n = 500, 2-D): sign
about 0.1-0.3 s per search, relu 1-2.5 s; the cost grows as n^2.

In the loop (:func:`append_exact`, called by ``search_pool``): ``oracle="exact"`` adds the best unit
of all to every step's pool (exact greedy steps); ``"certify"`` (what ``"auto"`` gives for sign or
relu units, at most 2 features and 1000 points) only where the sampled pool alone would certify, so
that every certificate is global at the cost of a few searches per fit; ``Pool.exact`` records
whether a pool holds the global best.
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import get_namespace, to_float, to_numpy
from .activations import Activation, get_activation
from .exceptions import ConfigError
from .scoring import exact_scores

#: Values of the estimators' ``oracle`` parameter.
ORACLES = ("auto", "sampled", "certify", "exact")
#: Activations with an exact search.
EXACT_ACTIVATIONS = ("sign", "relu")
#: Largest input dimension with an exact search.
EXACT_MAX_DIM = 2
#: ``oracle="auto"`` uses the exact search (as ``"certify"``) up to this many training points; the
#: sweep costs O(n^2 log n) per search (relu, n = 1000: seconds).
AUTO_MAX_SAMPLES = 1000
#: Points whose angles around a pivot differ by less than this (radians) are collinear with it.
_ANGLE_TOL = 1e-9
#: Elements of the per-chunk prefix-sum arrays of the sweep (sets the pivot chunk size).
_CHUNK_ELEMENTS = 1_500_000
_TWO_PI = 2.0 * math.pi
#: Sides of the pivot's and the ray point's lines (sign of ``x~ . u``) of the four cells at a vertex.
_CELL_SIDES = np.array([[-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])


def supports_exact(n_features: int, activation) -> bool:
    """Whether :func:`exact_search` handles ``n_features``-dimensional inputs and ``activation``."""
    return n_features <= EXACT_MAX_DIM and get_activation(activation).name in EXACT_ACTIVATIONS


def resolve_oracle(oracle: str, n_features: int, activation, n_samples: int | None = None) -> str:
    """The oracle a fit uses: ``"exact"``, ``"certify"`` or ``"sampled"``.

    ``"exact"``: every step's pool also holds the best of all units (exact greedy steps; raises
    :class:`ConfigError` where :func:`supports_exact` does not hold). ``"certify"``: the exact
    search runs only where the sampled pool alone would end the fit with a certificate (its best
    score at or below ``alpha (1 + tol)``), and at the first search of a fit whose lambda is a
    ratio of lambda_max: growing steps cost what sampled ones do, and every certificate is global.
    ``"auto"`` resolves to ``"certify"`` where :func:`supports_exact` holds and there are at most
    :data:`AUTO_MAX_SAMPLES` points (``n_samples``; None: not checked), else ``"sampled"``.
    """
    if oracle not in ORACLES:
        raise ConfigError(f"unknown oracle {oracle!r}; expected one of {', '.join(ORACLES)}")
    ok = supports_exact(n_features, activation)
    if oracle == "auto":
        small = n_samples is None or n_samples <= AUTO_MAX_SAMPLES
        return "certify" if ok and small else "sampled"
    if oracle == "exact" and not ok:
        raise ConfigError(
            "oracle='exact' needs sign or relu units and at most 2 input features (got "
            f"activation={get_activation(activation).name!r}, {n_features} features)"
        )
    return oracle


def _dual_kind(reducer) -> str:
    """``"max"`` (elementwise L1: max-abs) or ``"l2"`` (group L1: Euclidean), found by probing."""
    v = float(np.asarray(reducer.dual_norm(np.array([[3.0, -4.0]])))[0])
    if abs(v - 4.0) < 1e-12:
        return "max"
    if abs(v - 5.0) < 1e-12:
        return "l2"
    raise ConfigError("exact search needs the max-abs (L1) or Euclidean (group L1) dual norm")


def _dual(R, kind):
    """Dual norm over the last axis."""
    return np.abs(R).max(axis=-1) if kind == "max" else np.sqrt((R * R).sum(axis=-1))


def _top_dirs(M, kind):
    """Maximisers of ``dual_norm(M u)`` over the unit sphere, both signs.

    Parameters
    ----------
    M : ndarray, shape (..., K, D)

    Returns
    -------
    U : ndarray, shape (..., J, D)
        Candidate directions (``J = 2 K`` for ``"max"``: ``+-m_k / ||m_k||``; ``J = 2`` for
        ``"l2"``: ``+-`` the top right singular vector).
    bounds : ndarray, shape (..., J)
        ``max_{||u|| = 1} dual_norm(M u)`` restricted to each candidate's ``k`` (an upper bound
        of the score anywhere on the cell or arc that ``M`` belongs to).
    """
    if kind == "max" or M.shape[-2] == 1:
        nrm = np.sqrt((M * M).sum(axis=-1))  # (..., K)
        U = M / np.where(nrm > 0, nrm, 1.0)[..., None]
        return np.concatenate([U, -U], axis=-2), np.concatenate([nrm, nrm], axis=-1)
    Q = np.swapaxes(M, -1, -2) @ M  # (..., D, D)
    if Q.shape[-1] == 2:  # closed form of the top eigenpair of a symmetric 2 x 2 matrix
        a, b, c = Q[..., 0, 0], Q[..., 0, 1], Q[..., 1, 1]
        lam = 0.5 * (a + c) + np.sqrt(0.25 * (a - c) ** 2 + b * b)
        v1 = np.stack([lam - c, b], axis=-1)
        v2 = np.stack([b, lam - a], axis=-1)
        n1, n2 = (v1 * v1).sum(axis=-1), (v2 * v2).sum(axis=-1)
        v = np.where((n1 >= n2)[..., None], v1, v2)
        nv = np.sqrt(np.maximum(n1, n2))
        v = np.where((nv > 0)[..., None], v / np.where(nv > 0, nv, 1.0)[..., None], [1.0, 0.0])
        bnd = np.sqrt(np.maximum(lam, 0.0))
        return np.stack([v, -v], axis=-2), np.stack([bnd, bnd], axis=-1)
    w, V = np.linalg.eigh(Q)
    v1 = V[..., :, -1]
    b = np.sqrt(np.maximum(w[..., -1], 0.0))
    return np.stack([v1, -v1], axis=-2), np.stack([b, b], axis=-1)


def _top_singular_3(M):
    """Largest singular value and its right singular vector of each ``M`` (q, K, 3), by the
    closed form of the eigenvalues of the symmetric 3 x 3 ``M^T M`` (trigonometric) and the
    largest cross product of two rows of ``M^T M - lambda I``. Returns ``(sigma (q,), v (q, 3))``;
    ``sigma`` is accurate to ~1e-8 (relative), ``v`` is a candidate direction (scored exactly by
    the caller)."""
    Q = np.swapaxes(M, -1, -2) @ M
    p1 = Q[..., 0, 1] ** 2 + Q[..., 0, 2] ** 2 + Q[..., 1, 2] ** 2
    q = np.trace(Q, axis1=-2, axis2=-1) / 3.0
    d = np.diagonal(Q, axis1=-2, axis2=-1) - q[..., None]
    p = np.sqrt(((d * d).sum(axis=-1) + 2.0 * p1) / 6.0)
    safe = np.where(p > 0, p, 1.0)
    B = (Q - q[..., None, None] * np.eye(3)) / safe[..., None, None]
    r = np.clip(np.linalg.det(B) / 2.0, -1.0, 1.0)
    lam = q + 2.0 * p * np.cos(np.arccos(r) / 3.0)
    R = Q - lam[..., None, None] * np.eye(3)
    C = np.stack(
        [np.cross(R[:, 0], R[:, 1]), np.cross(R[:, 0], R[:, 2]), np.cross(R[:, 1], R[:, 2])], axis=1
    )  # (q, 3, 3)
    nc = (C * C).sum(axis=-1)
    j = np.argmax(nc, axis=1)
    v = C[np.arange(C.shape[0]), j]
    nv = np.sqrt(nc[np.arange(C.shape[0]), j])
    v = np.where((nv > 0)[:, None], v / np.where(nv > 0, nv, 1.0)[:, None], [0.0, 0.0, 1.0])
    return np.sqrt(np.maximum(lam, 0.0)), v


class _Best:
    """The best units found so far, by true score (at most ``k`` kept)."""

    def __init__(self, k, lower_bound):
        self.k = k
        self.U = np.zeros((0, 0))
        self.s = np.zeros(0)
        self.floor = lower_bound

    @property
    def value(self):
        top = self.s[0] if self.s.size else -math.inf
        return max(top, self.floor)

    def add(self, U, s):
        if U.shape[0] == 0:
            return
        if self.U.size == 0:
            self.U = np.zeros((0, U.shape[1]))
        allU = np.concatenate([self.U, U])
        alls = np.concatenate([self.s, s])
        order = np.argsort(-alls, kind="stable")[: self.k]
        self.U, self.s = allU[order], alls[order]


def _evaluate(Xu, Gu, act, reducer, U, bounds, best: _Best, batch=512):
    """Score candidates ``U`` (q, d + 1) in decreasing ``bounds`` order until no bound is above
    the best true score."""
    bounds = bounds.reshape(-1)
    U = U.reshape(-1, Xu.shape[1] + 1)
    keep = bounds > best.value
    if not keep.any():
        return
    U, bounds = U[keep], bounds[keep]
    order = np.argsort(-bounds, kind="stable")
    U, bounds = U[order], bounds[order]
    d = Xu.shape[1]
    for j0 in range(0, U.shape[0], batch):
        if bounds[j0] <= best.value and best.s.size >= best.k:
            break
        Ub = U[j0 : j0 + batch]
        s = exact_scores(Xu, Ub[:, :d], Ub[:, d], Gu, act, reducer)
        best.add(Ub, s)


# ---- the pivot sweep ----------------------------------------------------------------------------
def _sweep(Xu, F):
    """For chunks of pivots, the sums of the rows of ``F`` over the angular regions around them.

    Yields ``(I, J, phi, Lsum, Ray, Opp)``: pivots ``I`` (b,), the other points ``J`` (b, m - 1)
    sorted by the angles ``phi`` (b, m - 1) of the rays from the pivot to them, and for each ray
    the sums (b, m - 1, P) of ``F`` over the open half-plane to the left of the ray's line, over
    the points on the ray, and over the points on the opposite ray.
    """
    m, P = F.shape
    L = m - 1
    b_max = max(1, _CHUNK_ELEMENTS // max(1, 3 * L * P))
    for i0 in range(0, m, b_max):
        I = np.arange(i0, min(m, i0 + b_max))
        b = I.size
        D = Xu[None, :, :] - Xu[I, None, :]
        ang = np.arctan2(D[..., 1], D[..., 0])
        ang[np.arange(b), I] = np.inf  # the pivot itself sorts last and is dropped
        order = np.argsort(ang, axis=1)[:, :L]
        a = np.take_along_axis(ang, order, axis=1)
        Fs = F[order]  # (b, L, P)
        a3 = np.concatenate([a - _TWO_PI, a, a + _TWO_PI], axis=1)  # (b, 3L), sorted rows
        C = np.zeros((b, 3 * L + 1, P))
        np.cumsum(np.concatenate([Fs, Fs, Fs], axis=1), axis=1, out=C[:, 1:])
        off = 20.0 * np.arange(b)[:, None]  # rows apart: one searchsorted for all of them
        flat = (a3 + off).ravel()
        base = 3 * L * np.arange(b)[:, None]

        def pos(q, side, flat=flat, off=off, base=base):
            return np.searchsorted(flat, (q + off).ravel(), side=side).reshape(q.shape) - base

        def rsum(lo, hi, C=C):
            return np.take_along_axis(C, hi[..., None], 1) - np.take_along_axis(C, lo[..., None], 1)

        t = _ANGLE_TOL
        ray = rsum(pos(a - t, "left"), pos(a + t, "right"))
        opp = rsum(pos(a + math.pi - t, "left"), pos(a + math.pi + t, "right"))
        left = rsum(pos(a + t, "right"), pos(a + math.pi - t, "left"))
        yield I, order, a, left, ray, opp


def _normals(phi):
    """Unit direction ``e`` and left normal ``n`` of rays at angles ``phi``: (..., 2) each."""
    e = np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    return e, np.stack([-e[..., 1], e[..., 0]], axis=-1)


def _sign_unit_2d(Xu, i, phi, kind):
    """A unit whose pattern is pattern ``kind`` (1-4) of pivot ``i`` and ray angle ``phi``.

    With ``s`` the coordinate along the ray and ``z0`` the signed distance to its line: 1: left
    side and ``s > 0``; 2: left and ``s >= 0``; 3: left and ``s < 0``; 4: left and ``s <= 0``
    (``s`` over the points on the line). Returns ``u`` (3,) with ``||u|| = 1``.
    """
    e, nv = _normals(np.asarray(phi))
    Dx = Xu - Xu[i]
    z0 = Dx @ nv
    s = Dx @ e
    r = np.sqrt((Dx * Dx).sum(axis=1))
    on = np.abs(z0) <= 2 * _ANGLE_TOL * r
    on[i] = True
    sn = np.abs(s[on])
    g = sn[sn > 0].min() if (sn > 0).any() else 1.0
    sigma, thr = {1: (1.0, 0.5 * g), 2: (1.0, -0.5 * g), 3: (-1.0, -0.5 * g), 4: (-1.0, 0.5 * g)}[
        kind
    ]
    off = np.abs(z0[~on])
    span = np.abs(s - thr).max()
    eps = 0.5 * off.min() / span if off.size else 1.0
    v = nv + sigma * eps * e
    c = -v @ Xu[i] - sigma * eps * thr
    u = np.append(v, c)
    return u / np.sqrt(u @ u)


def _sign_2d(Xu, Gu, kind, k):
    T = Gu.sum(axis=0)
    recs = []  # (score, pivot, phi, kind)
    for I, _, phi, left, ray, opp in _sweep(Xu, Gu):
        own = Gu[I][:, None, :]
        S = np.stack([left + ray, left + ray + own, left + opp, left + opp + own], axis=2)
        sc = _dual(2.0 * S - T, kind)  # (b, L, 4)
        flat = sc.ravel()
        q = min(4 * k, flat.size)
        top = np.argpartition(-flat, q - 1)[:q]
        bi, li, ti = np.unravel_index(top, sc.shape)
        recs += zip(flat[top], I[bi], phi[bi, li], ti + 1, strict=True)
    recs.sort(key=lambda r: -r[0])
    U = [np.array([0.0, 0.0, 1.0])]  # the constant unit (all points on one side)
    U += [_sign_unit_2d(Xu, int(i), p, int(t)) for _, i, p, t in recs[: 4 * k]]
    return np.array(U)


def _next_critical(phi, starts):
    """Length of the arc from each angle of ``starts`` (b, L, 2) counterclockwise to the next
    critical direction (a line through the pivot and another point: ``phi`` or ``phi + pi``)."""
    b, L = phi.shape
    crit = np.sort(np.concatenate([phi, phi + math.pi], axis=1) % _TWO_PI, axis=1)  # (b, 2L)
    crit = np.concatenate([crit, crit[:, :1] + _TWO_PI], axis=1)
    off = 10.0 * np.arange(b)[:, None]
    s0 = starts % _TWO_PI
    idx = np.searchsorted(
        (crit + off).ravel(), (s0 + _ANGLE_TOL + off[:, :, None]).ravel(), "right"
    )
    idx = idx.reshape(s0.shape) - (2 * L + 1) * np.arange(b)[:, None, None]
    idx = np.minimum(idx, 2 * L)
    return np.take_along_axis(crit, idx.reshape(b, -1), 1).reshape(s0.shape) - s0


def _relu_2d(Xu, Gu, act, reducer, kind, best: _Best):
    m = Xu.shape[0]
    K = Gu.shape[1]
    X1 = np.column_stack([Xu, np.ones(m)])
    F = (Gu[:, :, None] * X1[:, None, :]).reshape(m, K * 3)  # rows G_i x~_i^T
    T = F.sum(axis=0)
    # global candidates: the cell holding every point, and units pointing at each point
    U0, b0 = _top_dirs(T.reshape(K, 3), kind)
    P = X1 / np.sqrt((X1 * X1).sum(axis=1, keepdims=True))
    _evaluate(Xu, Gu, act, reducer, np.concatenate([U0, P, -P]),
              np.concatenate([b0, np.full(2 * m, np.inf)]), best)  # fmt: skip
    if m < 2:
        return
    # orthonormal bases of x~_i^perp (the great circle of lines through x_i)
    A = np.zeros((m, 3, 2))
    A[:, 0, 0] = A[:, 1, 1] = 1.0
    A[:, 2, :] = -Xu
    B = np.linalg.qr(A)[0]  # (m, 3, 2)
    # two sweeps: the cells' stationary points are pruned against the best score on all cell
    # boundaries (vertices and arcs: the first sweep), which is often the maximum itself
    for I, _, phi, left, ray, opp in _sweep(Xu, F):
        b, L = phi.shape
        own = F[I][:, None, :]
        # vertices: the line through the pivot and the ray's point, positive side on its left;
        # the points on the line contribute 0, so the open side's sum gives the exact score
        e, nv = _normals(phi)
        uv = np.concatenate([nv, -(nv * Xu[I][:, None, :]).sum(axis=-1, keepdims=True)], axis=-1)
        uv /= np.sqrt((uv * uv).sum(axis=-1, keepdims=True))
        vals = _dual((left.reshape(b, L, K, 3) @ uv[..., None])[..., 0], kind)  # (b, L)
        j = int(np.argmax(vals))
        _evaluate(Xu, Gu, act, reducer, uv.reshape(-1, 3)[j : j + 1], vals.reshape(-1)[j : j + 1],
                  best)  # fmt: skip
        # arcs of the pivot's great circle starting at the ray's line (direction phi, then
        # phi + pi), turning counterclockwise; their stationary points count if inside the arc
        right = T - left - ray - opp - own
        arcs = np.stack([left + opp, right + ray], axis=2).reshape(b, L, 2, K, 3)
        Bi = B[I][:, None, None]  # (b, 1, 1, 3, 2)
        Wa, ba = _top_dirs(arcs @ Bi, kind)  # (b, L, 2, J, 2), (b, L, 2, J)
        start = np.stack([phi, phi + math.pi], axis=2)  # (b, L, 2)
        length = _next_critical(phi, start)
        nu = (Bi[:, :, :, None, :2] @ Wa[..., None])[..., 0]  # (b, L, 2, J, 2): the unit's v
        theta = np.arctan2(-nu[..., 0], nu[..., 1])  # direction of the unit's line
        delta = (theta - start[..., None]) % _TWO_PI
        inside = (delta <= length[..., None] + _ANGLE_TOL) | (delta >= _TWO_PI - _ANGLE_TOL)
        ba = np.where(inside, ba, -np.inf)
        j = np.unravel_index(int(np.argmax(ba)), ba.shape)
        ua = B[I[j[0]]] @ Wa[j]
        _evaluate(Xu, Gu, act, reducer, ua[None], ba[j][None], best)
    for I, J, phi, left, ray, opp in _sweep(Xu, F):
        b, L = phi.shape
        own = F[I][:, None, :]
        # cells next to the vertex: the open side plus the points of the line past a cut; their
        # stationary points count only if inside the cell, which evaluation decides (bound first)
        cells = np.stack([left + ray, left + ray + own, left + opp, left + opp + own], axis=2)
        Mc = cells.reshape(b, L, 4, K, 3)
        lb = best.value
        if kind == "max" or K == 1:
            nrm = np.sqrt((Mc * Mc).sum(axis=-1))  # (b, L, 4, K)
            idx = np.nonzero(nrm > lb)
            Uc, bc = Mc[idx] / nrm[idx][:, None], nrm[idx]
            Uc, bc = np.concatenate([Uc, -Uc]), np.concatenate([bc, bc])
            idx = tuple(np.concatenate([t, t]) for t in idx[:3])
        else:
            fro = np.sqrt((Mc * Mc).sum(axis=(-1, -2)))  # >= the top singular value
            idx = np.nonzero(fro > lb)
            sv, v = _top_singular_3(Mc[idx])
            sv *= 1 + 1e-6  # a margin for the closed form's rounding: a bound stays a bound
            keep = sv > lb
            idx = tuple(t[keep] for t in idx)
            Uc, bc = np.concatenate([v[keep], -v[keep]]), np.concatenate([sv[keep], sv[keep]])
            idx = tuple(np.concatenate([t, t]) for t in idx)
        # a cell's closure lies on the given sides of the pivot's and the ray point's lines
        zi = (Uc * X1[I[idx[0]]]).sum(axis=1) * _CELL_SIDES[idx[2], 0]
        zj = (Uc * X1[J[idx[0], idx[1]]]).sum(axis=1) * _CELL_SIDES[idx[2], 1]
        ok = (zi >= -1e-9) & (zj >= -1e-9)
        Uc, bc = Uc[ok], bc[ok]
        _evaluate(Xu, Gu, act, reducer, Uc, bc, best)


# ---- 1-D ----------------------------------------------------------------------------------------
def _sign_1d(Xu, Gu, kind, k):
    x = Xu[:, 0]  # sorted (np.unique)
    T = Gu.sum(axis=0)
    suffix = np.cumsum(Gu[::-1], axis=0)[::-1]  # suffix[s] = sum_{i >= s}
    sc = _dual(2.0 * suffix[1:] - T, kind)  # patterns {x > t}, t between x[s-1] and x[s]
    top = np.argsort(-sc, kind="stable")[: 4 * k] + 1
    t = 0.5 * (x[top - 1] + x[top])
    U = np.column_stack([np.ones(top.size), -t])
    U = np.concatenate([[[0.0, 1.0]], U])
    return U / np.sqrt((U * U).sum(axis=1, keepdims=True))


def _relu_1d(Xu, Gu, act, reducer, kind, best: _Best):
    m, K = Gu.shape
    X1 = np.column_stack([Xu[:, 0], np.ones(m)])
    F = Gu[:, :, None] * X1[:, None, :]  # (m, K, 2)
    pre = np.concatenate([np.zeros((1, K, 2)), np.cumsum(F, axis=0)])  # pre[s] = sum_{i < s}
    suf = pre[-1] - pre  # suf[s] = sum_{i >= s}
    # cells: v > 0 gives suffixes {x > t}, v < 0 prefixes {x < t}
    Uc, bc = _top_dirs(np.concatenate([suf, pre]), kind)
    # vertices u ~ (1, -x_i) (pattern {x > x_i}) and (-1, x_i) (pattern {x < x_i}): exact
    uv = X1[:, ::-1] * np.array([1.0, -1.0])
    uv /= np.sqrt((uv * uv).sum(axis=1, keepdims=True))
    vp = _dual((suf[1:] @ uv[:, :, None])[..., 0], kind)
    vn = _dual((pre[:-1] @ -uv[:, :, None])[..., 0], kind)
    U = np.concatenate([Uc.reshape(-1, 2), uv, -uv])
    bnd = np.concatenate([bc.ravel(), vp, vn])
    _evaluate(Xu, Gu, act, reducer, U, bnd, best)


# ---- entry point --------------------------------------------------------------------------------
def exact_search(X, G, activation, reducer, k: int = 1, lower_bound: float = -math.inf):
    """The best unit(s) over every unit of the normalised family (``||(v, c)||_2 = 1``).

    Parameters
    ----------
    X : array, shape (n, d), d <= 2
        Inputs (NumPy or CuPy; the search runs on the host in float64).
    G : array, shape (n, K)
        Loss gradient at the current model.
    activation : str or Activation
        ``"sign"`` or ``"relu"``.
    reducer : Penalty class or instance
        Its static ``dual_norm`` turns ``h^T G`` into the score (max-abs or Euclidean).
    k : int, default 1
        Units to return; the first is a global maximiser, the others are the best of those the
        search evaluated (not necessarily the k best units, nor distinct patterns).
    lower_bound : float, optional
        A score known to be attained (a sampled pool's best): relu candidates whose bound is not
        above it are skipped. When nothing beats it, fewer than ``k`` units may come back.

    Returns
    -------
    W : ndarray, shape (k', d); c : ndarray, shape (k',)
        Unit-norm units, best first (``k' <= k``; at least one unless ``lower_bound`` prunes all).
    scores : ndarray, shape (k',)
        Their exact float64 scores on ``(X, G)``.

    Raises
    ------
    ConfigError
        For another activation, ``d > 2``, or a dual norm other than max-abs or Euclidean.
    """
    act: Activation = get_activation(activation)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    G = np.asarray(to_numpy(G), dtype=np.float64)
    if G.ndim == 1:
        G = G[:, None]
    n, d = X.shape
    if not supports_exact(d, act):
        raise ConfigError(
            "exact search needs sign or relu units and at most 2 input features (got "
            f"activation={act.name!r}, {d} features)"
        )
    kind = _dual_kind(reducer)
    Xu, inv = np.unique(X, axis=0, return_inverse=True)
    Gu = np.zeros((Xu.shape[0], G.shape[1]))
    np.add.at(Gu, inv.reshape(-1), G)
    if act.name == "sign":
        if d == 1:
            U = _sign_1d(Xu, Gu, kind, k)
        elif Xu.shape[0] >= 2:
            U = _sign_2d(Xu, Gu, kind, k)
        else:
            U = np.array([[0.0, 0.0, 1.0]])
        s = exact_scores(X, U[:, :d], U[:, d], G, act, reducer)
        keep = s > lower_bound
        U, s = U[keep], s[keep]
    else:
        best = _Best(k, lower_bound)
        if d == 1:
            _relu_1d(Xu, Gu, act, reducer, kind, best)
        else:
            _relu_2d(Xu, Gu, act, reducer, kind, best)
        U = best.U.reshape(-1, d + 1)
        s = exact_scores(X, U[:, :d], U[:, d], G, act, reducer) if U.shape[0] else np.zeros(0)
    order = np.argsort(-s, kind="stable")[:k]
    U, s = U[order], s[order]
    return np.ascontiguousarray(U[:, :d]), np.ascontiguousarray(U[:, d]), s


def append_exact(X, G, config, reducer, W, c, scores, threshold=None):
    """Add the exact search's units to a searched pool where ``config.oracle`` asks for it.

    Parameters
    ----------
    X : array, shape (n, d); G : array, shape (n, K)
    config : GreedyConfig
        Its ``oracle`` (resolved by :func:`resolve_oracle`), ``activation``, ``units_per_step``.
    reducer : Penalty class
    W : array, shape (k, d); c : array, shape (k,); scores : array, shape (k,)
        The pool's top units and their exact scores (device arrays).
    threshold : float, optional
        ``alpha (1 + tol)``: with ``"certify"`` the search runs only when no score is above it
        (or when it is None).

    Returns
    -------
    W, c, scores : the pool's units, with the exact search's units that beat them appended (up to
        ``config.units_per_step``): the pool's best score is then the best over all units.
    searched : bool
        Whether the exact search ran.
    """
    mode = resolve_oracle(config.oracle, X.shape[1], config.activation, X.shape[0])
    xp = get_namespace(X)
    lb = to_float(scores.max()) if scores.shape[0] else -math.inf
    if mode == "sampled" or (mode == "certify" and threshold is not None and lb > threshold):
        return W, c, scores, False
    We, ce, se = exact_search(X, G, config.activation, reducer, config.units_per_step, lb)
    if We.shape[0] == 0:
        return W, c, scores, True
    return (
        xp.concatenate([W, xp.asarray(We, dtype=W.dtype)]),
        xp.concatenate([c, xp.asarray(ce, dtype=c.dtype)]),
        xp.concatenate([xp.asarray(scores), xp.asarray(se, dtype=scores.dtype)]),
        True,
    )


__all__ = [
    "append_exact",
    "EXACT_ACTIVATIONS",
    "ORACLES",
    "exact_search",
    "resolve_oracle",
    "supports_exact",
]
