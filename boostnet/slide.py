"""Sliding: move the active units downhill before the next re-fit.

With the output weights ``W`` (m, K) and intercept ``b`` held fixed, the objective is a smooth
function of the units ``u_j = (v_j, c_j)`` (differentiable activations):

    P(u) = loss(Y, sum_j act(X v_j + c_j) w_j^T + b) + lambda Omega(W),

    dP / dv_j = X^T (act'(z_j) * (G w_j)),   dP / dc_j = 1^T (act'(z_j) * (G w_j)),

with ``z_j = X v_j + c_j`` and ``G = dloss / dF`` (n, K), the same gradient the scores use. The
penalty does not depend on the units, so every step that lowers the loss lowers the objective.
:func:`slide` takes a few projected gradient steps on all active units at once (one step length,
backtracked until the loss decreases, then grown by 1.5; each unit projected back onto its
feasible set: the unit sphere for relu, the ball of radius ``unit_scale`` for sigmoid and tanh).
The projection multiplies each unit by a factor ``s_j``, so a trial's pre-activations are
``s_j (z_j - t d_j)`` with ``d_j = X g_j + g_cj``: one pass over the rows per direction (``D``),
none per trial; a step costs two passes (``D`` and the gradient), however often it backtracks.
With few features and many rows and units (c26: 15 000 x 16, ~550 units) those passes are bound
by memory traffic over n x m arrays; there the descent instead recomputes ``X W^T`` block by
block in the core's cache and keeps no n x m array (``_Blocks``).

Each unit's gradient is divided by the norm of its output weights, ``||w_j||``: unit ``j`` moves
along ``-X^T (act'(z_j) * (G w_j / ||w_j||))``, the gradient of the loss per unit of output mass.
This is the particle view of the network as a measure ``sum_j w_j delta_{u_j}``: a particle's
position follows the gradient of the first variation, whatever its mass (conic particle gradient
descent, Chizat 2022). With the plain gradient, which scales with ``||w_j||`` while the loss's
curvature along ``u_j`` scales with ``||w_j||^2``, one shared step length is set by the heaviest
units and the light ones barely move; those are the ones a later step then replaces. Measured
(experiments/README.md, section 8): 26 % fewer steps on friedman1, 19 % on c2-noisy, digits
unchanged; on c11 (11 classes) the re-fits after a slide take ~15 % more iterations (the units move
further from the positions their output weights were fitted for) and its fits are 10-20 % slower.

Why: a unit enters where the pool found it, scored against the gradient of the moment. As the
network grows, the best place for it drifts, and a purely greedy loop can only follow by adding a
nearby unit and letting the re-fit zero the old one: on digits 376 units entered and 304 left for
72 kept (159 steps). Letting the units slide, as in the sliding Frank-Wolfe algorithm for sparse
measures (Denoyelle, Duval, Peyre and Soubies 2019), they follow the optimum instead: 48 steps,
96 removals, a lower final objective (experiments/README.md, section 8).

**Whitened directions** (off by default: ``boostnet._greedy._WHITEN_SLIDE``). On correlated inputs
(Fashion-MNIST's pixels) the plain gradient crawls along the rows' dominant directions. With
``X~ = [X 1]`` and the a-weighted second moment ``M = X~^T diag(a) X~``, the whitened direction of
unit ``j`` is ``T_j P T_j g_j``, ``P = (M + r I)^{-1}`` (``r``: ``_WHITEN_RIDGE`` times the mean
eigenvalue of ``M``), ``T_j`` the projection onto the tangent space of the unit's sphere (relu;
without it the projected steps stall); ``P`` is positive definite, so it is still a descent
direction. Measured (experiments/README.md, section 8): Fashion-MNIST certifies 0.1-0.3 % lower
objectives with fewer units, in about the same time; not faster, hence not the default.

The certificate keeps its meaning: it is a statement about the searched pools at the final,
re-fitted weights, whichever way the active units got where they are. A fixed dictionary
(``FixedDictionary``) declares ``movable = False``: its units never slide, so the loop still solves
the L1 problem over the dictionary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ._backend import get_namespace, in_row_blocks, row_blocks, to_float, to_numpy
from ._threads import n_workers, run_parts
from .activations import COMPILED_CODES, Activation, chained, projection_scale
from .scoring import preactivations, rows_product, transform

#: The first trial step moves the unit with the largest gradient by this share of its radius.
_FIRST_MOVE = 0.05
#: Output-weight norms below this share of the largest count as this share (the scaling's floor).
_MASS_FLOOR = 1e-3
#: Halvings of a trial step before a slide gives up (the units are then where they started).
_MAX_HALVINGS = 20
#: Conjugate slide directions (``_conjugate``, nonlinear conjugate gradients) instead of the plain
#: scaled gradient: off, an experiment's switch. A 16-step slide of Fashion-MNIST's tail lowers the
#: loss 2-7 times as much, but whole fits certify lower objectives in more steps, not sooner
#: (experiments/README.md, section 8, fourteenth part).
_CONJUGATE = False
#: Ridge of the whitening metric, relative to the mean eigenvalue of the rows' second moment.
_WHITEN_RIDGE = 0.1


def whitening_metric(X, a):
    """``P = (X~^T diag(a) X~ + r I)^{-1}`` for the whitened slide (module doc), ``X~ = [X 1]``.

    Parameters
    ----------
    X : array, shape (n, d)
    a : array, shape (n,)
        Normalised sample weights.

    Returns
    -------
    array, shape (d + 1, d + 1), ``X``'s dtype, on its device
        Symmetric positive definite. The moment is formed on the device and inverted on the host
        (Cholesky): ``O(n d^2 + d^3)`` once per fit, ``(d + 1)^2`` numbers of memory.
    """
    xp = get_namespace(X)
    X64 = xp.asarray(X, dtype=xp.float64)
    Xa = X64 * a[:, None]
    M = np.empty((X64.shape[1] + 1,) * 2)
    M[:-1, :-1] = to_numpy(X64.T @ Xa)
    M[-1, :-1] = M[:-1, -1] = to_numpy(Xa.sum(axis=0))
    M[-1, -1] = to_float(a.sum())
    M[np.diag_indices_from(M)] += _WHITEN_RIDGE * np.trace(M) / M.shape[0]
    L = np.linalg.cholesky(M)
    Linv = np.linalg.solve(L, np.eye(M.shape[0]))
    return xp.asarray(Linv.T @ Linv, dtype=X.dtype)


@dataclass
class Slide:
    """The outcome of :func:`slide`.

    W : array, shape (m, d); c : array, shape (m,)
        The moved units.
    H : array, shape (n, m), or None
        Their activations on the training inputs (None when they did not move and
        :func:`slide` was not given them).
    F : array, shape (n, K)
        The network's predictions at the moved units (float64, ``H coef + intercept``).
    loss_before, loss_after : float
        The loss at the fixed output weights before and after (``loss_after <= loss_before``).
    n_steps : int
        Accepted steps.
    step : float or None
        The step length the descent ended with (None if it took no gradient): the next slide of
        the same fit may start from it.
    """

    W: object
    c: object
    H: object
    F: object
    loss_before: float
    loss_after: float
    n_steps: int
    step: float | None = None


def units_gradient(X, Z, G, coef, activation: Activation, XT=None):
    """Gradient of the loss with respect to the units at fixed output weights (module doc).

    Parameters
    ----------
    X : array, shape (n, d)
    Z : array, shape (n, m)
        Pre-activations ``X W^T + c``.
    G : array, shape (n, K)
        ``dloss / dF`` at the network's output.
    coef : array, shape (m, K)
    activation : Activation
    XT : array, shape (d, n), optional
        ``X`` transposed, contiguous (:func:`boostnet.scoring.rows_product`).

    Returns
    -------
    gW : array, shape (m, d); gc : array, shape (m,)
    """
    return backward(X, activation(Z), G, coef, activation, XT)


def backward(X, A, G, coef, activation: Activation, XT=None, out=None):
    """:func:`units_gradient` from the activations ``A = act(Z)`` (n, m), in the dtype of ``X``:
    ``M = (G coef^T) * act'``, ``act'`` taken from ``A`` (:meth:`Activation.derivative_at`), is
    written into ``out`` (n, m) if given; on NumPy arrays in one compiled pass that also sums
    the columns."""
    xp = get_namespace(X)
    dt = X.dtype
    M = xp.matmul(G.astype(dt, copy=False), coef.T.astype(dt, copy=False), out=out)
    if xp is np and activation.name in _CODES:
        gc = np.asarray(_chain_rows(M, A, _CODES[activation.name]), dtype=dt)
    else:
        M *= activation.derivative_at(A)
        gc = M.sum(axis=0)
    return rows_product(M.T, X, XT), gc


def slide(
    X,
    Y,
    a,
    datafit,
    W,
    c,
    coef,
    intercept,
    activation: Activation,
    unit_scale: float,
    steps: int,
    *,
    H=None,
    F=None,
    X_fast=None,
    XT_fast=None,
    step=None,
    metric=None,
    H_out=None,
) -> Slide:
    """Projected gradient descent (scaled per unit) on the active units at fixed output weights (module doc).

    Parameters
    ----------
    X : array, shape (n, d), float64
    Y : array, shape (n, K)
    a : array, shape (n,)
        Normalised sample weights.
    datafit : Datafit
    W : array, shape (m, d); c : array, shape (m,)
        The active units (not modified).
    coef : array, shape (m, K); intercept : array, shape (K,)
        Their output weights and the intercept, held fixed.
    activation : Activation
        Must be differentiable.
    unit_scale : float
    steps : int
        Most accepted steps.
    H : array, shape (n, m), optional
        The units' activations on ``X``, if already known.
    F : array, shape (n, K), optional
        The network's predictions ``H coef + intercept``, if already known (the last re-fit's):
        then ``H`` is not needed (nor computed) unless the units move.
    X_fast : array, shape (n, d), optional
        ``X`` in a cheaper dtype (the scorer's float32 copy): the descent runs on it. The moved
        units' activations and loss are then computed on ``X``, and the units stay where they
        were unless that loss is lower.
    XT_fast : array, shape (d, n), optional
        ``X_fast`` transposed, contiguous (the products' faster layout on the CPU: see
        :func:`units_gradient`).
    step : float, optional
        The first trial step length (a previous slide's ``Slide.step``); by default the one that
        moves the unit with the largest gradient by 5 % of its radius.
    metric : array, shape (d + 1, d + 1), optional
        :func:`whitening_metric` of ``X``: the units move along whitened directions (module doc).
    H_out : array, shape (n, m), float64, optional
        Where the moved units' activations are written (a view of a wider array serves: the
        greedy loop's array for the moved and the entering units); its contents are undefined
        when the units do not move.

    Returns
    -------
    Slide
        ``H`` and the losses are float64 figures on ``X``.
    """
    if F is None:
        if H is None:
            H, F = outputs(X, W, c, activation, coef, intercept)
        else:
            F = H @ coef + intercept
    loss0 = to_float(datafit.value(Y, F, a))
    if steps <= 0 or W.shape[0] == 0:
        return Slide(W, c, H, F, loss0, loss0, 0)
    if X_fast is None:
        W1, c1, n_steps, t = _descend(X, Y, a, datafit, W, c, coef, intercept, activation,
                                      unit_scale, steps, step, None, metric)  # fmt: skip
    else:
        dt = X_fast.dtype
        W1, c1, n_steps, t = _descend(
            X_fast, Y.astype(dt), a.astype(dt), datafit, W, c, coef.astype(dt),
            intercept.astype(dt), activation, unit_scale, steps, step, XT_fast,
            None if metric is None else metric.astype(dt),
        )  # fmt: skip
    if n_steps == 0:
        return Slide(W, c, H, F, loss0, loss0, 0, t)
    H1, F1 = outputs(X, W1, c1, activation, coef, intercept, out=H_out)
    loss1 = to_float(datafit.value(Y, F1, a))
    if not loss1 < loss0:
        return Slide(W, c, H, F, loss0, loss0, 0, t)
    return Slide(W1, c1, H1, F1, loss0, loss1, n_steps, t)


def outputs(X, W, c, activation: Activation, coef, intercept, out=None):
    """The units' activations ``H = act(X W^T + c)`` (n, m, the dtype of ``X``; into ``out`` if
    given) and the network's predictions ``F = H coef + intercept`` (n, K; the slide's are
    float64, as its ``X``).

    On NumPy arrays of at least two row blocks (``_BLOCK_BYTES``) each block's predictions are
    taken while its activations are in the core's cache: one pass over ``H`` instead of a write
    and a read. c26's shapes (15 000 x 500 float64 activations, 26 outputs, 3 entering units
    written beside them instead of concatenated), right after a threaded product: 36 -> 28 ms
    (experiments/README.md, section 8, twenty-third part); for relu :func:`transform` takes
    each block's bias and activation in one compiled pass (27-43 -> 25-29 ms, the same figures).
    """
    xp = get_namespace(X)
    n, m = X.shape[0], W.shape[0]
    if not in_row_blocks(xp, n * m * X.dtype.itemsize, _BLOCK_BYTES):
        H = transform(X, W, c, activation, out=out)
        return H, H @ coef + intercept
    H = np.empty((n, m), dtype=X.dtype) if out is None else out
    F = np.empty((n, coef.shape[1]), dtype=X.dtype)
    for r in row_blocks(n, m * X.dtype.itemsize, _BLOCK_BYTES):
        np.matmul(transform(X[r], W, c, activation, out=H[r]), coef, out=F[r])
        F[r] += intercept
    return H, F


# ---- the descent's passes over the rows on the CPU: one compiled loop each ------------------------
# With many units the descent's n x m arrays are large (c26: 15 000 x 590 float32, 35 MB) and this
# CPU moves 4-5 GB/s: the generic expressions' temporaries cost more than the products (a trial's
# ``act((Z - t D) s)`` 120 ms as three temporaries and an activation, 29 ms in one loop writing both
# arrays; the backward pass through the activation and its column sums 46 -> 26 ms).
_CODES = COMPILED_CODES
_RELU = _CODES["relu"]


@njit(cache=True, nogil=True)
def _trial_rows(Z, D, t, s, Zt, A, code):  # pragma: no cover - compiled
    """``Zt = (Z - t D) s`` (columns scaled by ``s``) and, for relu, ``A = max(Zt, 0)``."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            v = (Z[i, j] - t * D[i, j]) * s[j]
            Zt[i, j] = v
            if code == 0:
                A[i, j] = v if v > 0 else 0.0


@njit(cache=True, nogil=True)
def _chain_rows(M, A, code):  # pragma: no cover - compiled
    """``M *= act'`` from the activations ``A`` (relu: ``A > 0``; tanh ``1 - A^2``; sigmoid
    ``A (1 - A)``), in place; returns the column sums (float64)."""
    n, m = M.shape
    g = np.zeros(m)
    for i in range(n):
        for j in range(m):
            v = chained(M[i, j], A[i, j], code)
            M[i, j] = v
            g[j] += v
    return g


class _Rows:
    """The descent's n x m arrays (pre-activations ``Z``, a trial's ``Zt``, activations ``A``,
    the backward pass ``M``, the direction ``D``), allocated once per slide, and its passes over
    them: compiled loops on NumPy arrays, array expressions on any other module.

    The interface the descent uses (:class:`_Blocks` has the same): ``start(W, c)`` and
    ``trial(t, s, W, c)`` return ``(loss, G)`` at the units ``(W, c)`` (a trial: the current units
    moved by ``t`` along the direction given to ``direction`` and scaled by ``s``), ``accept()``
    makes the last trial current, ``gradient(G)`` is the units' gradient at the current point."""

    def __init__(self, X, m, activation: Activation, XT, at):
        xp = get_namespace(X)
        self.X, self.XT, self.act, self.xp, self.at = X, XT, activation, xp, at
        self.code = _CODES.get(activation.name) if xp is np else None
        n, dt = X.shape[0], X.dtype
        self.Z, self.Zt, self.A, self.M, self.D = (xp.empty((n, m), dtype=dt) for _ in range(5))

    def start(self, W, c):
        """``Z``, ``A`` and the loss at the units ``(W, c)``."""
        return self.at(self.act(preactivations(self.X, W, c, out=self.Z), out=self.A))

    def direction(self, dW, dc):
        """``D = X dW^T + dc`` (one pass over the rows per direction, none per trial)."""
        preactivations(self.X, dW, dc, out=self.D)

    def trial(self, t: float, s, W, c):
        """``Zt = (Z - t D) s``, ``A = act(Zt)`` and the loss there (``W, c``: the same units)."""
        dt = self.X.dtype
        s = s.astype(dt, copy=False)
        if self.code is not None:
            _trial_rows(self.Z, self.D, dt.type(t), s, self.Zt, self.A, self.code)
            if self.code == _RELU:
                return self.at(self.A)
        else:
            self.xp.multiply(self.D, -t, out=self.Zt)
            self.Zt += self.Z
            self.Zt *= s
        return self.at(self.act(self.Zt, out=self.A))

    def accept(self):
        """The trial point becomes the current one."""
        self.Z, self.Zt = self.Zt, self.Z

    def gradient(self, G, coef):
        """The units' gradient at the current point (:func:`backward`, from ``A``)."""
        return backward(self.X, self.A, G, coef, self.act, self.XT, out=self.M)


#: Bytes of one row block's n x m array in :class:`_Blocks` (this CPU's L2 share per core).
_BLOCK_BYTES = 1 << 21
#: Most features for :class:`_Blocks`: it computes ``X W^T`` once more per step (``O(n m d)``)
#: to keep no n x m array (measured break-even between 64 and 128 features).
_BLOCKS_MAX_FEATURES = 64


class _Blocks:
    """The descent's passes in row blocks on the CPU, with nothing n x m kept (:class:`_Rows`'
    interface): a trial computes each block's pre-activations from the trial units themselves
    (the projection scales units, so ``(Z - t D) s = X W_t^T + c_t``), their activations and the
    block's predictions; the gradient recomputes them block by block and reduces the backward
    pass at once. Each block's arrays stay in the core's cache, where :class:`_Rows` streams five
    n x m arrays through memory per step (c26: 15 000 x 550 float32, 33 MB each); the row shares
    run on the cores in parallel, BLAS on one thread each (:mod:`boostnet._threads`).

    Measured (8 steps of a 15 000 x 16 problem with 550 units, 26 classes; medians): 220-297 ->
    137-146 ms; with 300 units 134-150 -> 92-97 ms; timed right after a threaded product, as in
    a fit (OpenBLAS's threads still spinning), 240-279 -> 184-191 ms. Where it does not pay
    (arrays of less than two blocks; many features: Fashion-MNIST's 784, 482-491 -> 672-764 ms)
    the descent keeps :class:`_Rows`."""

    def __init__(self, X, m, activation: Activation, XT, at, coef, intercept, n_classes):
        self.X, self.act, self.at = X, activation, at
        self.coef, self.intercept = coef, intercept
        self.coefT = np.ascontiguousarray(coef.T)
        self.code = _CODES[activation.name]
        n, dt = X.shape[0], X.dtype
        blocks = row_blocks(n, dt.itemsize * m, _BLOCK_BYTES)
        rows = blocks[0].stop - blocks[0].start
        workers = min(n_workers(), len(blocks))
        self.shares = [(blocks[w::workers], np.empty((rows, m), dtype=dt),
                        np.empty((rows, m), dtype=dt)) for w in range(workers)]  # fmt: skip
        self.F = np.empty((n, n_classes), dtype=dt)
        self.current = self.pending = None

    @staticmethod
    def pays(X, m) -> bool:
        """Whether :class:`_Blocks` beats :class:`_Rows` for ``X`` (n, d) and ``m`` units."""
        nbytes = X.shape[0] * m * X.dtype.itemsize
        return X.shape[1] <= _BLOCKS_MAX_FEATURES and in_row_blocks(
            get_namespace(X), nbytes, _BLOCK_BYTES
        )

    def _activations(self, r, Z, WT, c):
        """Block ``r``'s activations ``act(X_r W^T + c)``, written into the buffer ``Z``."""
        return transform(self.X[r], WT.T, c, self.act, out=Z[: r.stop - r.start])

    def _units(self, W, c):
        dt = self.X.dtype
        return np.ascontiguousarray(W.T, dtype=dt), c.astype(dt)

    def _evaluate(self, W, c):
        WT, cc = self._units(W, c)

        def forward(share):
            blocks, Z, _ = share
            for r in blocks:
                np.matmul(self._activations(r, Z, WT, cc), self.coef, out=self.F[r])

        run_parts(forward, self.shares)
        self.F += self.intercept
        return self.at(None, self.F)

    def start(self, W, c):
        self.current = (W, c)
        return self._evaluate(W, c)

    def direction(self, dW, dc):
        pass  # a trial starts from its units

    def trial(self, t: float, s, W, c):
        self.pending = (W, c)
        return self._evaluate(W, c)

    def accept(self):
        self.current = self.pending

    def gradient(self, G, coef):
        WT, cc = self._units(*self.current)
        G = G.astype(self.X.dtype, copy=False)
        d, m = self.X.shape[1], WT.shape[1]

        def backward_share(share):
            blocks, Z, M = share
            gW, gc = np.zeros((m, d), dtype=self.X.dtype), np.zeros(m)
            for r in blocks:
                A = self._activations(r, Z, WT, cc)
                Mb = np.matmul(G[r], self.coefT, out=M[: r.stop - r.start])
                gc += _chain_rows(Mb, A, self.code)
                gW += Mb.T @ self.X[r]
            return gW, gc

        parts = run_parts(backward_share, self.shares)
        return sum(p[0] for p in parts), sum(p[1] for p in parts).astype(self.X.dtype)


def _descend(
    X, Y, a, datafit, W, c, coef, intercept, activation, unit_scale, steps, step, XT, metric=None
):  # fmt: skip
    """The descent of :func:`slide` in the dtype of ``X`` (``XT``: ``X`` transposed, contiguous,
    or None; ``metric``: the whitening metric or None); returns ``(W, c, accepted steps, the last
    step length)``."""
    xp = get_namespace(X)
    radius = 1.0 if activation.homogeneous else unit_scale
    dt = X.dtype

    def at(A, F=None):  # the loss and its gradient at the activations A, or the predictions F
        loss, G = datafit.value_grad(Y, A @ coef + intercept if F is None else F, a)
        return to_float(loss), G

    m = W.shape[0]
    if _Blocks.pays(X, m):
        rows = _Blocks(X, m, activation, XT, at, coef, intercept, Y.shape[1])
    else:
        rows = _Rows(X, m, activation, XT, at)

    # per-unit scaling by 1 / ||w_j|| (module doc); every active unit has a nonzero weight row,
    # the floor only guards the division. With targets of ~1e-30 the weights' squares vanish in
    # float32, with ~1e30 they overflow: the norms are then taken in float64, and where even
    # those are not finite and nonzero, the units stay where they are
    wn = xp.sqrt((coef * coef).sum(axis=1))
    top = to_float(wn.max())
    if not (0.0 < top < math.inf):
        wn = xp.sqrt((coef.astype(xp.float64) ** 2).sum(axis=1))
        top = to_float(wn.max())
        if not (0.0 < top < math.inf):
            return W, c, 0, step
    inv = (1.0 / xp.maximum(wn, _MASS_FLOOR * wn.max())).astype(dt, copy=False)

    def direction(G, W, c):
        gW, gc = rows.gradient(G, coef)
        gW, gc = gW * inv[:, None], gc * inv
        if metric is None:
            return gW, gc
        g = xp.concatenate([gW, gc[:, None]], axis=1)
        if activation.homogeneous:  # T P T g: P whitens, T keeps to the sphere's tangent space
            U = xp.concatenate([W, c[:, None]], axis=1).astype(dt, copy=False)
            g = _tangent(g, U) @ metric
            g = _tangent(g, U)
        else:
            g = g @ metric
        return g[:, :-1], g[:, -1]

    loss, G = rows.start(W, c)
    gW, gc = direction(G, W, c)
    largest = to_float(xp.sqrt((gW * gW).sum(axis=1) + gc * gc).max())
    if not largest > 0.0:
        return W, c, 0, step
    n_steps = 0
    t = step if step is not None and step > 0 else _FIRST_MOVE * radius / largest
    dW, dc = gW, gc  # the search direction: the scaled gradient (conjugate: see _CONJUGATE)
    while n_steps < steps:
        # the projection scales each unit, so the trial units' pre-activations are
        # s (Z - t D) with D = X dW^T + dc: _Rows takes one pass over the rows per direction and
        # none per trial; _Blocks computes each block's from the trial units, in the core's cache
        rows.direction(dW, dc)
        for _ in range(_MAX_HALVINGS):
            W_new, c_new = W - t * dW, c - t * dc
            s = projection_scale(W_new, c_new, activation, unit_scale)
            W_new *= s[:, None]
            c_new *= s
            trial = rows.trial(t, s, W_new, c_new)
            if trial[0] < loss:
                break
            t *= 0.5
        else:
            # no decrease along this direction: the length handed to the next slide is the one
            # the halvings ended at, on purpose. Where the slides stall (at the float32 loss's
            # resolution) the next ones then take tiny steps and cost little; handing on the first
            # length instead made every stalled slide repeat its 20 halvings (c2-noisy seed 1:
            # slide 0.09 -> 0.44 s, experiments/README.md, section 8)
            break
        rows.accept()
        W, c, n_steps = W_new, c_new, n_steps + 1
        loss, G = trial
        if n_steps < steps:
            last = (gW, gc)
            gW, gc = direction(G, W, c)
            if _CONJUGATE and metric is None:
                dW, dc = _conjugate(gW, gc, *last, dW, dc, inv)
            else:
                dW, dc = gW, gc
            t *= 1.5
    return W, c, n_steps, t


def _conjugate(gW, gc, pW, pc, dW, dc, inv):
    """The next search direction of :func:`_descend` by nonlinear conjugate gradients
    (Polak-Ribiere+, preconditioned; the ``_CONJUGATE`` experiment): ``g + beta d`` from the
    scaled gradients ``g = inv * grad`` (now: ``gW, gc``; before: ``pW, pc``) and the last
    direction ``d = (dW, dc)``, with

        beta = max(0, grad . (g - g_prev) / (grad_prev . g_prev)),

    ``grad = g / inv`` (the preconditioner is the per-unit scaling, the same at every step of a
    slide). Falls back to ``g`` where ``g + beta d`` would not be a descent direction."""
    xp = get_namespace(gW)
    w = 1.0 / inv  # grad = w * g, per unit

    def dot(aW, ac, bW, bc):  # grad-weighted inner product over all units, float64
        return to_float((w * ((aW * bW).sum(axis=1) + ac * bc)).sum(dtype=xp.float64))

    den = dot(pW, pc, pW, pc)
    beta = max(0.0, (dot(gW, gc, gW, gc) - dot(gW, gc, pW, pc)) / den) if den > 0 else 0.0
    if beta == 0.0:
        return gW, gc
    nW, nc = gW + beta * dW, gc + beta * dc
    if not dot(nW, nc, gW, gc) > 0.0:
        return gW, gc
    return nW, nc


def _tangent(g, U):
    """``g`` (m, d + 1) without its component along each unit's direction ``U`` (unit rows)."""
    return g - (g * U).sum(axis=1, keepdims=True) * U
