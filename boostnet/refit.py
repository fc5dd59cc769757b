"""Totally corrective re-fit: the finite L1 problem over the active units' output weights.

Given the hidden activations ``H`` (n x m) of the active units, solve

    min_{W, b}  f(H W + 1 b^T) + alpha * Omega(W),      W: (m, K), b: (K,) unpenalised,

by a proximal Newton method (glmnet's IRLS + coordinate descent; skglm's ``ProxNewton``), warm-started
from the previous solution. Each outer iteration

1. takes the loss curvature ``C = diag Hessian of f in F`` (n x K: ``a`` for squared error,
   ``a p (1 - p)`` for logistic and, per class, for softmax: the class-diagonal part of the softmax
   Hessian, as glmnet does); the model (:class:`CurvatureModel`, float32 products) is rebuilt every
   few iterations from at most 2048 evenly strided rows (squared error: exactly, once; for
   softmax each class's matrix leaves out the lightest rows that carry 1 % of its weight where
   they are at least half of the rows: with many classes most rows are far from most classes),
   carried by the greedy loop from one re-fit to the next (leaving units dropped, entering ones
   added in ``O(n m K)``), and damped Levenberg-Marquardt style in between (its curvature doubled
   after a shortened step, halved back towards 1 after a full one);
2. builds one curvature matrix per output in the m x m space, with the intercept eliminated exactly:
   with ``s_k = sum_t C_tk``, ``mu_k = H^T C_k / s_k``,

       A_k = H^T diag(C_k) H - s_k mu_k mu_k^T,      g_k = H^T G_k - mu_k (1^T G_k),

   (the quadratic model minimised over ``b_k`` for fixed ``w_k``: ``db_k = -(1^T G_k) / s_k -
   mu_k . dw_k``). These are the only products with the n rows: ``O(n m^2 K)`` once per outer
   iteration, plus ``O(n m K)`` for the gradient. ``A_k`` does not change when a unit's
   activations move by a constant: a nearly constant unit (a relu unit whose bias dominates, on
   inputs of ~1e-7) has its mean taken off before the float32 products, whose rounding would
   otherwise swallow its curvature (:func:`_offsets`); for softmax, the intercepts' common part,
   which the loss does not see, is taken off where it drifts far (:func:`_recentred`);
3. minimises the quadratic model plus the penalty by coordinate descent in the m x K space
   (:mod:`boostnet._cd`, compiled; for softmax on float32 matrices, which halves the sweeps' memory
   traffic), to an inner tolerance tied to the current optimality violation;
4. takes the step with a backtracking (Armijo) line search on the true objective, so the objective
   decreases monotonically whatever the quality of the curvature model;
5. for softmax, moves each unit's K weights by the common shift that minimises the penalty (the loss
   cannot see it: a step along its null space, exact), and every few iterations tries an Anderson
   extrapolation of the iterates, kept when it lowers the objective.

6. for softmax, in a tight re-fit (the certificate's), once a full step leaves the active set
   unchanged and the relative gap is below 1e-2: Newton steps with the exact Hessian on the active
   set (:mod:`boostnet._newton`; the class-diagonal model converges only linearly, and on some
   models not within 200 iterations), for as long as each halves the duality gap; the same line
   search takes them, within a trust region of 4 logits per prediction. After a slow one, Newton
   steps resume once the gap is ten times smaller, or as soon as coordinate descent has changed
   the active set that made it slow. The restricted problem cannot set a weight to zero: where the
   full Newton step would carry a block of weights through zero (a unit's K weights reversed for
   group L1, an entry's sign flipped for L1: :meth:`~boostnet.penalties.Penalty.crossing`), the
   step takes that block to zero instead, the line search judges it with the proximal bound of
   step 4, and the next iteration is a Newton step on the smaller active set (the units that must
   leave before the certificate left one coordinate-descent iteration at a time: c26's stored
   tight re-fits 244 -> 115 outer iterations, 31 -> 19 s). Where coordinate descent then takes a
   dropped block back from zero, the drop was wrong: that block is not dropped again in the same
   re-fit. Without this, a re-fit could cycle (a Newton step dropping a unit and raising the gap,
   coordinate descent restoring it, the next Newton step dropping it again): of another c26 fit's
   eleven stored tightenings one took 87 outer iterations and 13.4 s, now 31 and 3.9 s (the
   eleven 230 -> 161 iterations, 38.7 -> 25.6 s; the twelve above 115 -> 118, the same objectives).

In a loose re-fit (the greedy loop's, far from the certificate) of large activations, the
gradient's and the step's products with the rows are taken in float32 and the steps accumulated
into float64 predictions (``_FAST_ENTRIES``); a tight re-fit, whose duality gap is the certificate's,
computes everything in float64 from its weights.

For squared error the model is exact, so one outer iteration solves the problem up to the inner
tolerance. The solver stops when the relative duality gap is below ``tol``:

    gap = P(W, b) - D(nu),   D(nu) = -f*(nu),
    nu = s * nu0,   s = min(1, alpha / max_j dual_norm(h_j^T nu0)),

with ``nu0`` the datafit's :meth:`~boostnet.datafits.Datafit.dual_point` of the gradient ``G``: it
satisfies ``1^T nu0 = 0`` (the dual constraint of the unpenalised intercept) and stays inside the
conjugate's domain (centring for squared error; for logistic and softmax the model's probabilities
mixed with one constant distribution, which keeps them probabilities), and it is scaled into the
dual-feasible set, hence ``gap >= 0`` always and ``gap = 0`` at the optimum. The loop's loose re-fits
may also stop once the objective has settled (``decrease_tol``), before the gap certifies them.

Written against the array module of its inputs: on CuPy the n-dependent products stay on the device
and only the small ``A`` (K x m x m) and ``g`` (m x K) come to the host, where the coordinate descent
runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import _cd, _newton
from ._backend import get_namespace, in_row_blocks, row_blocks, to_float, to_numpy
from .datafits import affine_point

#: Armijo constant and the most halvings of the line search.
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
_ROUNDING = 4 * np.finfo(np.float64).eps
#: The floor of the objective in relative tests (a gap or a decrease relative to it): only a
#: guard against an objective of exactly 0, never binding at any scale of the targets (an
#: absolute floor such as 1e-12 turned relative tests absolute for targets of ~1e-8: re-fits
#: stopped at once and the fit went wrong).
_TINY = np.finfo(np.float64).tiny
#: Inner coordinate descent: stop when a sweep changes the model's gradient by less than this share
#: of the current optimality violation, or after this many sweeps (the outer iteration goes on
#: from wherever it stopped: the line search keeps every step a descent step).
_INNER_TOL = 1e-1
#: Floor of the sweeps' tolerance, relative to lambda (see :func:`refit`).
_SWEEP_FLOOR = 1e-12
_MAX_SWEEPS = 100
#: The same share in a loose re-fit (a relative gap above ``_NEWTON_TOL``: the greedy loop's, far
#: from the certificate) of a softmax, whose class-diagonal model leaves out the classes'
#: interactions: solving it closely buys little (experiments/README.md, section 8).
_INNER_TOL_LOOSE = 3e-1
#: Rows the curvature model of a non-quadratic loss is built from at most (sub-sampled Newton).
#: 4096 -> 2048 (experiments/README.md, section 8): c26 476 -> 415 s, Fashion-MNIST 109 -> 92 s.
_MODEL_ROWS = 2048
#: Share of each output's curvature weight the model may leave out, on its lightest rows.
_MODEL_SHED = 1e-2
#: Outer iterations between rebuilds of the curvature model (for a non-quadratic loss).
_MODEL_EVERY = 5
#: Iterates combined by each Anderson extrapolation.
_ANDERSON = 5
#: Outer iterations between duality-gap evaluations while the objective still drops by more
#: than ``tol``.
_GAP_EVERY = 4
#: Newton steps serve re-fits asked for a relative gap at most this (the certificate's); looser
#: ones stop after a few coordinate-descent iterations anyway.
_NEWTON_TOL = 1e-4
#: Relative duality gap below which Newton steps are first tried, and the factor by which that
#: threshold drops below the gap where a Newton step did not converge fast.
_NEWTON_GAP = 1e-2
_NEWTON_BACKOFF = 0.1
#: After a slow Newton iteration, try the next one as soon as the support has changed (not only
#: once the gap is below the lowered threshold): c26's stored tight re-fits 81 -> 64 iterations.
_NEWTON_RETRY = True
#: A Newton iteration is followed by another only when it cut the duality gap by this factor.
_NEWTON_RATE = 0.5
#: A Newton step takes the weights it would carry through zero to zero (``Penalty.crossing``;
#: module doc, step 6).
_NEWTON_DROP = True
#: ... and not again, in the same re-fit, the entries that coordinate descent has taken back from
#: zero after a Newton step dropped them (module doc, step 6).
_DROP_REVIVED_BAN = True
#: Largest change of a prediction (in logits) one Newton step may make.
_NEWTON_SPAN = 4.0
#: A loose re-fit (relative gap above ``_NEWTON_TOL``) of activations with at least this many
#: entries takes its products with the rows in float32 (the gradient's ``H^T G``, the step's
#: ``H dW``), accumulated into float64 predictions: the increments' rounding (~1e-7 of a step's
#: change of the logits) is far below what a loose re-fit resolves, and single-precision products
#: run at twice the rate (c26's 15 000 x 550 activations: 7.2 -> 3.4 ms and 7.7 -> 4.3 ms). A tight
#: re-fit (a certificate's) stays in float64 and recomputes its predictions from the weights.
_FAST_ENTRIES = 1 << 21
#: A unit whose activations over the model's rows spread by at most this share of their size is
#: modelled with its mean taken off (:func:`_offsets`). Float32 keeps 24 bits; a unit's centred
#: curvature is about its spread squared over 12 times its size squared, so at 1/2 the difference
#: of ``A_k = B_k - s_k mu_k mu_k^T`` loses ~6 of them, at 1e-2 ~17 (a 5-class table at 1e-6:
#: a unit of spread 0.011 made the model indefinite, and coordinate descent stepped 1e20). No
#: unit of the speed suite's ten sets spreads by less than 0.9 (each is zero on some rows).
_OFFSET_SPREAD = 0.5
#: Rows :func:`_offsets` looks at first (a unit that spreads on them spreads on all the rows).
_OFFSET_ROWS = 128
#: Largest common part of a shift-invariant loss's intercepts (softmax) left in place
#: (:func:`_recentred`): logits of 1e3 keep ~2e-13 of the loss's precision.
_DRIFT = 1e3
#: Curvature floor, relative to the sample weights: keeps every model strictly convex where the
#: loss is flat (probabilities at 0 or 1), so the coordinate steps stay finite.
_CURVATURE_FLOOR = 1e-10


@dataclass
class RefitResult:
    """Outcome of one re-fit.

    Attributes
    ----------
    coef : array, shape (m, K)
    intercept : array, shape (K,)
    F : array, shape (n, K)
        Raw predictions at the solution.
    G : array, shape (n, K)
        Datafit gradient at the solution.
    objective, loss, penalty : float
    gap : float
        Duality gap at the solution (``inf`` if the dual point left the conjugate's domain).
    violation : float
        Optimality violation in ``coef`` and ``intercept``.
    n_iter : int
        Outer (proximal Newton) iterations.
    converged : bool
    n_sweeps : int
        Coordinate-descent sweeps over all outer iterations.
    model : CurvatureModel or None
        The last curvature model (for the next re-fit of the same units).
    """

    coef: object
    intercept: object
    F: object
    G: object
    objective: float
    loss: float
    penalty: float
    gap: float
    violation: float
    n_iter: int
    converged: bool
    n_sweeps: int = 0
    model: CurvatureModel | None = field(default=None, repr=False)


def within(gap: float, tol: float, objective: float) -> bool:
    """Whether ``gap`` is at most ``tol`` relative to the objective, at any scale of the targets
    (``_TINY`` only guards an objective of exactly 0)."""
    return gap <= tol * max(abs(objective), _TINY)


#: Bytes of one row block of the activations in :func:`_full_step` (this CPU's L2 per core).
_ROW_BLOCK_BYTES = 1 << 21


def _fuses(Hp) -> bool:
    """Whether the re-fit takes a full step's products in one pass (:func:`_full_step`): NumPy
    activations of at least two row blocks (smaller ones stay in the cache between passes)."""
    return in_row_blocks(get_namespace(Hp), Hp.nbytes, _ROW_BLOCK_BYTES)


@dataclass
class _FullStep:
    """A full step's products: ``dF = H dW + 1 db^T`` and ``F1 = F + dF`` (n, K), the loss at
    ``F1``, its gradient ``G`` (n, K) and ``H^T G`` (m, K); float64."""

    dF: np.ndarray
    F: np.ndarray
    loss: float
    G: np.ndarray
    HtG: np.ndarray


def _full_step(Hp, F, dW, db, Y, a, datafit) -> _FullStep:
    """The products of the full step ``(dW, db)`` from ``F``, in one pass over the rows of ``Hp``
    (n, m; NumPy).

    A coordinate-descent iteration reads the activations three times: ``H dW`` for the line
    search, ``H v`` for the shift that follows it (softmax), ``H^T G`` at the new point. The
    shift is taken into the step (:func:`refit`) and, as the line search takes the full step
    almost always, the other two are taken together in row blocks: each block's ``H_r dW``, the
    loss and gradient of its rows, then ``H_r^T G_r`` while the block is still in the core's
    cache. Where the line search shortens the step, ``dF`` still serves and the rest is
    recomputed. Measured on c26's
    shapes (15 000 x 550 float32 activations, 26 outputs; right after a threaded product, as in
    a re-fit): 15.0-15.6 -> 11.6-12.2 ms an iteration. (The blocks shared out to worker threads
    instead, one BLAS thread each: 18.3 ms, as OpenBLAS's own threads keep spinning for ~0.1 s
    after each product and take the second core.)
    """
    n, m = Hp.shape
    D = np.ascontiguousarray(dW, dtype=Hp.dtype)
    dF, F1, G = (np.empty(F.shape) for _ in range(3))
    loss, HtG = 0.0, np.zeros((m, F.shape[1]))
    for r in row_blocks(n, Hp.itemsize * m, _ROW_BLOCK_BYTES):
        np.add(Hp[r] @ D, db, out=dF[r])
        np.add(F[r], dF[r], out=F1[r])
        value, G[r] = datafit.value_grad(Y[r], F1[r], a[r])
        loss += to_float(value)
        HtG += tdot(Hp[r], G[r].astype(Hp.dtype, copy=False))
    return _FullStep(dF, F1, loss, G, HtG)


def relative(value: float, objective: float) -> float:
    """``value`` (a gap, a decrease) relative to the objective, at any scale of the targets."""
    return value / max(abs(objective), _TINY)


def tdot(H, M):
    """``H^T M`` for a tall ``H`` (n, m) and a thin ``M`` (n, K), shape (m, K) (a transposed view).

    Taken as ``(M^T H)^T``: the same product, in the operand order OpenBLAS runs faster on these
    shapes (c26's 15 000 x 500 activations against 26 outputs: 21 -> 12 ms; c11's 750 x 160
    against 11: 0.15 -> 0.11 ms; small or narrow ones within 10 %).
    """
    return (M.T @ H).T


def duality_gap(H, Y, a, G, objective, datafit, penalty, products=None, offset=None) -> float:
    """Duality gap of ``(W, b)`` given its gradient ``G`` and primal objective (see module doc).

    The dual point is the datafit's :meth:`~boostnet.datafits.Datafit.dual_point` of ``G``, scaled
    into the penalty's dual ball. ``products``, optional: ``(H^T G, H^T a, H^T diag(a) Y)``, from
    which ``H^T Nu`` follows without another pass over the rows (the dual point is affine in ``G``
    and ``Y``). ``offset`` (n, K), optional: fixed predictions added to ``H W + b`` (the primal is
    ``loss(Y, H W + b + O) + Omega(W)``); the dual objective then gains ``<Nu, O>``, since
    ``loss(Y, F + O) >= <Nu, F + O> - f*(Nu)`` (Fenchel-Young).
    """
    s, r, u = datafit.dual_point_affine(Y, G, a)
    scale = 1.0
    # the unscaled dual point itself (n x K) only where a product with it is needed
    Nu = affine_point(Y, G, a, s, r, u) if products is None or offset is not None else None
    if H.shape[1] > 0:
        if products is None:
            HtNu = tdot(H, Nu)
        else:
            HtG, Hta, HtaY = products
            HtNu = s * HtG + Hta[:, None] * r
            if u != 0.0:
                HtNu = HtNu + u * (tdot(H, a[:, None] * Y) if HtaY is None else HtaY)
        dmax = to_float(penalty.dual_norm(HtNu).max())
        if dmax > penalty.alpha:
            scale = penalty.alpha / dmax
    # f*(Nu) row by row where the datafit can (Nu, n x K, is not formed: c26-sized gaps 15 -> 8 ms)
    conj = to_float(datafit.conjugate_affine(Y, G, a, scale * s, scale * r, scale * u))
    if offset is not None:
        conj -= scale * to_float((Nu * offset).sum())
    return objective + conj if math.isfinite(conj) else math.inf


def curvature(datafit, Y, F, a):
    """The curvature weights ``C`` (n, K) of the quadratic models: the datafit's Hessian diagonal
    in ``F``, floored at ``_CURVATURE_FLOOR`` times the sample weights (every column's sum is
    positive wherever some weight is)."""
    return datafit.hess_diag(Y, F, a) + _CURVATURE_FLOOR * a[:, None]


def _recentred(datafit, b, F):
    """``(b, F)`` with the intercepts' common part taken off where it exceeds ``_DRIFT`` (a
    shift-invariant loss, softmax: the same model); as they were elsewhere.

    The intercept's step eliminates it from each output's model (``mu_k . dw_k``); for a unit
    that is nearly constant (bias-dominated relu units on inputs of ~1e-8) ``mu_k`` is its
    constant, and a step of its weights by a common amount ``v`` (which the penalty's best
    shift then takes back, along the loss's null space) moved every intercept by ``~ mu v``:
    an 11-unit re-fit of a 4-class table took the intercepts from 6 to 1.6e6, where the
    predictions keep ~1e-10 of their size and the loss ~1e-10 of its value. The re-fits that
    followed could not bring the relative duality gap below ~2e-6 (200 iterations each), and
    the fit ended ``stalled``. Logits below ``_DRIFT`` are left as they are, so that other fits
    keep their arithmetic."""
    if not datafit.shift_invariant or b.shape[0] < 2:
        return b, F
    drift = to_float(b.mean())
    if abs(drift) <= _DRIFT:
        return b, F
    return b - drift, F - drift


def intercept_corrected(G, C):
    """``G - C diag(1^T G / 1^T C)`` (n, K): the gradient after one Newton step on the intercept
    alone (per output, curvature weights ``C``); its columns sum to zero, the intercept's
    optimality condition, which ``G`` meets only up to the re-fit's tolerance. Equal to ``G`` at
    an exact optimum. A unit's score against it, ``dual_norm(h^T G - (h^T C) (1^T G) / (1^T C))``,
    is to first order its score once the intercept has moved with it."""
    return G - C * (G.sum(axis=0) / C.sum(axis=0))


def primal(H, Y, a, coef, intercept, datafit, penalty):
    """Return ``F, loss, penalty value`` at ``(coef, intercept)``."""
    F = H @ coef + intercept
    return F, to_float(datafit.value(Y, F, a)), to_float(penalty.value(coef))


@dataclass
class CurvatureModel:
    """The per-output curvature matrices of the quadratic model, kept on the host.

    Built from curvature weights ``C`` (the datafit's Hessian diagonal, floored; n x K) on at most
    ``max_rows`` evenly strided rows, scaled to the whole (a sub-sampled Newton model: the line
    search and the duality gap still use every row, so only the step's quality depends on it). It
    stores the uncentred parts, so that the greedy loop can carry it from one re-fit to the next:
    columns of leaving units are dropped (:meth:`select`) and the entering units' rows and columns
    are added with the same weights ``C`` (:meth:`extend`, ``O(n m K)`` per new unit instead of
    ``O(n m^2 K)`` for a rebuild). For squared error the weights never change (one matrix, exact);
    otherwise the model ages and is rebuilt every ``_MODEL_EVERY`` outer iterations.

    Attributes
    ----------
    B : ndarray, shape (1 or K, m, m), float32
        ``H^T diag(C_k) H`` (one matrix when the columns of ``C`` are equal).
    hc : ndarray, shape (K, m)
        ``H^T C_k``.
    s : ndarray, shape (K,)
        ``sum_t C_tk``.
    C : array, shape (n_rows, K)
        The weights on the strided rows (device, float32), for :meth:`extend`.
    stride : int
    scale : float
        ``n / n_rows``.
    age : int
        Outer iterations since the weights were taken.
    lost : array, shape (n_rows, K), or None
        The weights shed from ``C`` (:meth:`build`; float32, device), for the diagonal entries
        they carried most of; None where none were shed.
    offset : ndarray, shape (m,), float64, or None
        Per unit, the constant ``o_j`` taken off its activations before the float32 products:
        ``B`` and ``hc`` are those of ``H - 1 o^T`` (:func:`_offsets`); None: no unit has one
        (``o = 0``, the usual case).
    """

    B: np.ndarray
    hc: np.ndarray
    s: np.ndarray
    C: object
    stride: int
    scale: float
    age: int = 0
    lost: object = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    _centred: tuple | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls, H, C, constant: bool, max_rows: int | None = None, shed: float = 0.0
    ) -> CurvatureModel:
        """The model of ``H`` (n, m) under weights ``C`` (n, K); ``constant``: equal columns.

        ``shed``: per output, the rows of smallest weight that together carry at most this share
        of the output's total weight get weight 0 when they are at least half of the rows (the
        model of slightly smaller weights: still positive semi-definite, and consistent between
        ``B``, ``hc`` and ``s``). With many classes most rows are far from most classes'
        boundaries (``p_tk (1 - p_tk)`` near 0), so each output's matrix is formed from a fraction
        of the rows. Where that took most of a diagonal entry (``B_k[j, j]`` below the shed rows'
        share ``sum_shed C_tk h_tj^2``), the share is added back (``O(n m K)``; still positive
        semi-definite): a unit active only on an output's shed rows would otherwise have zero
        curvature there, and coordinate descent, which skips a coordinate of zero curvature, could
        never move it (on near-separable iris a unit that should enter stayed out for 2000
        iterations, and the loop cycled). Adding the share to every entry instead made c11's
        fits 40 % slower (178 steps instead of 141, seeds 0-2): the models' steps shorter.
        """
        xp = get_namespace(C)
        n = H.shape[0]
        stride = 1
        if max_rows is not None and n > max_rows:
            stride = -(-n // max_rows)
            H, C = H[::stride], C[::stride]
        scale = n / H.shape[0]
        cols = 1 if constant else C.shape[1]
        offset = _offsets(H)
        if offset is not None:
            H = H - xp.asarray(offset)
        # the model only steers the step (the line search and the gap are exact): float32
        # products halve its cost, the largest of a re-fit with many units and outputs. Each
        # matrix is formed as ``S^T S`` with ``S = sqrt(C_k) H``: one operand seen twice, which
        # NumPy hands to BLAS's symmetric rank-k update (half the work of a general product)
        H32, C32 = H.astype(np.float32), C.astype(np.float32)
        rows = [slice(None)] * cols  # per output: the rows its matrix is formed from
        shedding = shed > 0 and not constant
        lost = None  # the weights shed, (n_rows, K), where any were
        device = xp is not np and _DEVICE_BATCHED
        if shedding:
            full, (C32, keep) = C32, _shed_columns(C32, shed)
            cut = to_numpy(~keep.all(axis=0))  # (K,): the outputs that shed rows
            if cut.any():
                lost = full - C32
            if not device:  # (a device's products take every row: a shed one has weight 0)
                for k in np.flatnonzero(cut):
                    rows[k] = xp.flatnonzero(keep[:, k])
        root = xp.sqrt(C32)
        # stored as the products come, float32: the matrices are read again by every centring,
        # carry (select, extend) and preconditioner, and float64 would only hold float32 figures
        B = np.empty((cols, H.shape[1], H.shape[1]), dtype=np.float32)
        if device:
            # on a device the outputs' matrices are batched products over every row (a shed row
            # has weight 0): a few launches and one copy to the host instead of K gathers,
            # products and copies, each waiting for the card (c26 on an H200: 22 ms per build)
            _device_grams(H32, root[:, :cols], scale, B)
        else:
            for k in range(cols):
                S = H32[rows[k]] * root[rows[k], k : k + 1]
                np.multiply(to_numpy(S.T @ S), scale, out=B[k])
        if lost is not None:
            _restore_diagonal(B, scale * to_numpy(tdot(H32 * H32, lost)).T)
        C64 = C32.astype(np.float64) if shedding else C  # the weights the matrices were built with
        hc = scale * to_numpy(tdot(H, C64)).T.astype(np.float64)
        s = scale * to_numpy(C64.sum(axis=0)).astype(np.float64)
        return cls(B, hc, np.maximum(s, 1e-300), C32, stride, scale, lost=lost, offset=offset)

    @property
    def n_units(self) -> int:
        return int(self.B.shape[1])

    def select(self, keep) -> CurvatureModel:
        """The model of the units ``keep`` (host indices) only."""
        ix = np.ix_(np.arange(self.B.shape[0]), keep, keep)
        offset = None if self.offset is None else self.offset[keep]
        if offset is not None and not offset.any():
            offset = None
        return CurvatureModel(
            self.B[ix], self.hc[:, keep], self.s, self.C, self.stride, self.scale, self.age,
            self.lost, offset,
        )  # fmt: skip

    def extend(self, H) -> CurvatureModel:
        """The model of ``H`` (n, m_old + m_new), whose first ``m_old`` columns are this model's
        units, under the same weights."""
        m_old = self.n_units
        xp = get_namespace(H)
        Hs = H[:: self.stride]
        new = _offsets(Hs[:, m_old:])
        if new is None and self.offset is None:
            offset = None
        else:
            offset = np.concatenate([
                np.zeros(m_old) if self.offset is None else self.offset,
                np.zeros(H.shape[1] - m_old) if new is None else new,
            ])  # fmt: skip
            Hs = Hs - xp.asarray(offset)
        Hn64 = Hs[:, m_old:]  # the entering units' (shifted) activations, float64, for hc
        Hs = Hs.astype(np.float32)
        Hn = Hs[:, m_old:]
        cols = self.B.shape[0]
        m = H.shape[1]
        B = np.empty((cols, m, m), dtype=np.float32)
        B[:, :m_old, :m_old] = self.B
        for k in range(cols):
            cross = self.scale * to_numpy((Hn * self.C[:, k : k + 1]).T @ Hs)  # (m_new, m)
            B[k, m_old:, :] = cross
            B[k, :, m_old:] = cross.T
        if self.lost is not None:  # the new diagonal entries shedding emptied (build)
            _restore_diagonal(
                B[:, m_old:, m_old:], self.scale * to_numpy(tdot(Hn * Hn, self.lost)).T
            )
        hc_new = self.scale * to_numpy(Hn64.T @ self.C).T
        hc = np.concatenate([self.hc, hc_new.astype(np.float64)], axis=1)
        return CurvatureModel(
            B, hc, self.s, self.C, self.stride, self.scale, self.age, self.lost, offset
        )

    def centred(self, dtype=np.float64):
        """``A_k = B_k - s_k mu_k mu_k^T`` (stored as ``dtype``), ``s`` and ``mu_k = hc_k / s_k``:
        the model with the intercept eliminated (computed once per model). ``A_k`` is the same
        for activations shifted by constants, so the offsets' matrices give it directly; the
        means returned are the activations' own, ``mu_k + o``."""
        if self._centred is None or self._centred[0].dtype != dtype:
            mu = self.hc / self.s[:, None]
            A = np.empty(self.B.shape, dtype=dtype)  # one pass over B (c26: 0.19 -> 0.08 s)
            u = mu.astype(dtype)  # the rank-one parts in A's dtype: no mixed-type subtraction
            v = (self.s[:, None] * mu).astype(dtype)  # (26 blocks of 502^2: 8.8 -> 2.5 ms)
            for k in range(A.shape[0]):
                np.subtract(self.B[k], np.outer(v[k], u[k]), out=A[k], casting="same_kind")
            self._centred = (A, mu if self.offset is None else mu + self.offset)
        A, mu = self._centred
        return A, self.s, mu


def _offsets(H):
    """The constants taken off the activations ``H`` (rows, m) before the model's float32
    products: a unit's mean over the rows where its activations vary by at most
    ``_OFFSET_SPREAD`` of their size, 0 elsewhere; None where no unit does.

    The model keeps ``H^T diag(C_k) H`` and ``H^T C_k`` and takes the intercept out by a
    difference, ``A_k = B_k - s_k mu_k mu_k^T`` (:meth:`CurvatureModel.centred`). For a unit
    that is nearly constant over the rows (a relu unit ``max(0, x . v + c)`` whose bias
    dominates: inputs of ~1e-7 left unstandardised) the difference is its spread squared, below
    float32's rounding of ``B``: its curvature came out as rounding noise, up to 1e9 times too
    large, coordinate descent hardly moved its weight, and fits ended ``stalled`` with a
    network that had learnt nothing (a binary table at 1e-7: accuracy 0.51). ``A`` is the same
    for ``H - 1 o^T`` whatever ``o``: with the unit's mean taken off first, the products hold its
    spread itself. Where no unit is nearly constant (standardised inputs) the products are the
    usual ones, to the last bit."""
    xp = get_namespace(H)
    if H.shape[0] < 2 or H.shape[1] == 0:
        return None

    def flat(rows):  # (columns,): spread within _OFFSET_SPREAD of the size on these rows
        hi, lo = rows.max(axis=0), rows.min(axis=0)
        size = xp.maximum(abs(hi), abs(lo))
        return to_numpy(((hi - lo) <= _OFFSET_SPREAD * size) & (size > 0))

    # a unit that spreads on the first rows spreads on all of them: those rows first (c26's
    # ~550 units on 2048 rows: ~1 ms a build on all of them)
    cols = np.flatnonzero(flat(H[:_OFFSET_ROWS]))
    if cols.size and H.shape[0] > _OFFSET_ROWS:
        cols = cols[flat(H[:, xp.asarray(cols)])]
    if not cols.size:
        return None
    offset = np.zeros(H.shape[1])
    offset[cols] = to_numpy(H[:, xp.asarray(cols)].mean(axis=0))
    return offset


#: On a device, the curvature model's products batched over the outputs (:func:`_device_grams`)
#: instead of one output at a time.
_DEVICE_BATCHED = True
#: Bytes of the weighted activations one batched product of :func:`_device_grams` may hold.
_DEVICE_GRAM_BYTES = 1 << 28


def _device_grams(H, root, scale: float, out) -> None:
    """``out[k] = scale * S_k^T S_k`` with ``S_k = root[:, k:k+1] * H`` for every column of
    ``root`` (n, K), as batched products of a few outputs at a time (device arrays; ``out``: host,
    (K, m, m))."""
    xp = get_namespace(H)
    n, m = H.shape
    K = root.shape[1]
    step = max(1, _DEVICE_GRAM_BYTES // max(1, n * m * H.itemsize))
    for k0 in range(0, K, step):
        S = root[:, k0 : k0 + step].T[:, :, None] * H[None]  # (k, n, m)
        P = xp.matmul(S.transpose(0, 2, 1), S)
        P *= scale
        P.get(out=out[k0 : k0 + step])  # straight into the host's array: no second pass


def _shed_columns(C, shed: float):
    """:meth:`CurvatureModel.build`'s shedding: per column of ``C`` (n, K), the lightest rows that
    together carry at most ``shed`` of the column's total, where they are at least half of the rows
    (only then does leaving them out halve the work). All columns at once (on a device: a few sorts
    instead of one sort and one host sync per column). Returns ``C`` with those entries set to 0,
    and the mask of the entries kept (n, K)."""
    xp = get_namespace(C)
    n = C.shape[0]
    order = xp.argsort(C, axis=0)
    light = (xp.cumsum(xp.take_along_axis(C, order, axis=0), axis=0) <= shed * C.sum(axis=0)).sum(
        axis=0
    )
    light = xp.where(2 * light >= n, light, 0)
    # each row's place in its column's order: the inverse permutation, scattered (a second sort
    # of the order cost as much as the first)
    place = xp.empty_like(order)
    place[order, xp.arange(C.shape[1])[None, :]] = xp.arange(n)[:, None]
    keep = place >= light[None, :]
    return xp.where(keep, C, xp.zeros((), dtype=C.dtype)), keep


def _restore_diagonal(B, lost):
    """Add the shed rows' share ``lost[k]`` (K, m) to the diagonal entries of ``B[k]`` (K, m, m)
    that kept less than it (:meth:`CurvatureModel.build`), in place."""
    i = np.arange(B.shape[1])
    kept = B[:, i, i]
    B[:, i, i] += np.where(kept < lost, lost, 0.0)


def refit(
    H,
    Y,
    a,
    datafit,
    penalty,
    coef0,
    intercept0,
    *,
    tol=1e-6,
    max_iter=200,
    offset=None,
    decrease_tol=0.0,
    model: CurvatureModel | None = None,
    deadline: float | None = None,
    min_iter: int = 0,
    F0=None,
) -> RefitResult:
    """Solve the finite L1 problem on fixed features by proximal Newton (see the module doc).

    Parameters
    ----------
    H : array, shape (n, m)
        Hidden activations of the active units (float64).
    Y : array, shape (n, K)
    a : array, shape (n,)
        Normalised sample weights (sum 1).
    datafit : Datafit
    penalty : Penalty
    coef0 : array, shape (m, K)
        Warm start.
    intercept0 : array, shape (K,)
    tol : float
        Stop when ``gap <= tol * objective`` (relative, at any scale of the targets).
    max_iter : int
        Most outer (proximal Newton) iterations.
    offset : array, shape (n, K), optional
        Fixed predictions added to ``H W + b`` (the other units' output in a stagewise step).
    decrease_tol : float
        Also stop (not ``converged``) after a full step that lowered the objective by at most this
        much, relative: the greedy loop's loose re-fits while far from a certificate, where the
        objective settles well before the duality gap certifies it.
    deadline : float, optional
        A ``time.perf_counter()`` reading after which no further outer iteration starts (the
        loop's ``max_time``); the result is then the last iterate, not converged.
    model : CurvatureModel, optional
        The curvature model to start from (the previous re-fit's, carried over to these units by
        the loop); rebuilt here when it has aged ``_MODEL_EVERY`` outer iterations.
    min_iter : int
        Outer iterations taken even if the warm start already meets ``tol``: the loop asks for one
        when units enter, since a unit scoring above ``alpha`` cannot stay at zero at the optimum,
        while a loose tolerance may accept the warm start with it there (the unit would leave and
        the next pool find it again, step after step).
    F0 : array, shape (n, K), optional
        The predictions at the warm start (``H coef0 + intercept0`` plus ``offset``), where the
        caller has them: a loose re-fit starts from them instead of a product with the rows (a
        tight one always recomputes them, so that its duality gap is exact).

    Returns
    -------
    RefitResult
        The last iterate; the line search makes the objective non-increasing, so it is never worse
        than the warm start.
    """
    xp = get_namespace(H)
    m = H.shape[1]
    constant = datafit.constant_curvature
    loose = tol > _NEWTON_TOL  # the greedy loop's re-fits far from the certificate
    W = xp.asarray(coef0, dtype=xp.float64).copy()
    b = xp.asarray(intercept0, dtype=xp.float64).copy()
    if F0 is not None and loose:
        F = xp.asarray(F0, dtype=xp.float64)
    else:
        F = H @ W + b
        if offset is not None:
            F = F + offset
    b, F = _recentred(datafit, b, F)
    # the operand of the products with the rows: float32 in a large loose re-fit (_FAST_ENTRIES)
    Hp = H.astype(xp.float32) if loose and H.size >= _FAST_ENTRIES else H

    def times(D):  # H D (n, K), float64
        return (Hp @ xp.asarray(D, dtype=Hp.dtype)).astype(xp.float64, copy=False)

    def ttimes(M):  # H^T M (m, K), float64
        return tdot(Hp, M.astype(Hp.dtype, copy=False)).astype(xp.float64, copy=False)

    # (m,) the a-weighted feature means, for the dual point (no copies in float64)
    mu_a = (a.astype(Hp.dtype, copy=False) @ Hp).astype(xp.float64, copy=False)
    W_host = to_numpy(W).astype(np.float64)

    def evaluate(F, W_host):
        loss, G = datafit.value_grad(Y, F, a)
        loss = to_float(loss)
        pen = to_float(penalty.value(W_host))
        return loss, pen, G, ttimes(G), G.sum(axis=0)

    # for the dual point's products (see duality_gap); squared error's dual point never uses Y
    HtaY = None if constant else ttimes(a[:, None] * Y)

    def gap_at(obj):
        return duality_gap(H, Y, a, G, obj, datafit, penalty, (HtG, mu_a, HtaY), offset)

    loss, pen, G, HtG, gb = evaluate(F, W_host)
    obj = loss + pen
    # the warm start's gap only decides whether to iterate at all: where an iteration is taken
    # anyway (units entered), it is computed only if the result falls back to the warm start
    # (a dual evaluation per growing re-fit saved: c26 ~3 ms)
    gap = gap_at(obj) if min_iter <= 0 else math.inf
    obj_start, start = obj, (W_host, b, F, loss, pen, G, HtG, gb, obj, gap)
    n_iter, sweeps = 0, 0
    converged = within(gap, tol, obj) and min_iter <= 0
    stalled = False  # stopped by decrease_tol, before the gap reached tol
    # a model carried over from the previous re-fit (same units), if any
    cache = model if model is not None and m > 0 and model.n_units == m else None
    t, t_cd, iterates, rho = 1.0, 1.0, [], 1.0
    # Newton steps with the exact Hessian on the active set (boostnet._newton), once coordinate
    # descent has stopped changing it: softmax only (its classes interact; for the other losses
    # the per-output model is the Hessian)
    newton_ok = m > 0 and datafit.coupled and not loose
    inner = _INNER_TOL_LOOSE if datafit.coupled and loose else _INNER_TOL
    newton, store = False, {}
    # Newton steps are tried once the relative gap is below ``reach``, which drops below the gap
    # where a Newton step did not converge fast (still too far from the optimum)
    reach = _NEWTON_GAP
    failed = None  # the support where the last Newton direction failed
    was_dropped = np.zeros(W_host.shape, dtype=bool)  # entries some Newton step took to zero
    banned = np.zeros(W_host.shape, dtype=bool)  # dropped, then revived: not dropped again
    while not converged and not stalled and n_iter < max_iter and math.isfinite(obj):
        if deadline is not None and n_iter > 0 and time.perf_counter() >= deadline:
            break
        n_iter += 1
        # ---- the quadratic model: rebuilt after a shortened step and every few iterations;
        # in between the last one serves (the per-output model is an approximation anyway) ----
        if not constant and n_iter > 1 and not newton:
            # Levenberg-Marquardt-like damping of the per-output model: a shortened step means the
            # model's curvature was too low (the softmax's cross-class terms are left out)
            rho = min(2.0 * rho, 1e6) if t_cd < 1.0 else max(0.5 * rho, 1.0)
        if m > 0 and (cache is None or (not constant and cache.age >= _MODEL_EVERY)):
            C = curvature(datafit, Y, F, a)
            rows = None if constant else _MODEL_ROWS  # squared error: exact, once
            # with many classes most rows are far from most classes (shed); a binary or
            # regression output's matrix is cheap and its weights spread over the rows
            shed = _MODEL_SHED if datafit.coupled else 0.0
            cache = CurvatureModel.build(H, C, constant, rows, shed)
        gb_h = to_numpy(gb).astype(np.float64)
        direction = None
        if newton:
            direction = _newton.newton_direction(
                H, Y, a, F, HtG, gb, W_host, datafit, penalty, cache, store
            )
            newton = direction is not None
        dropped = False
        if newton:
            cache.age += 1
            dW_h, db_h = direction.dW, direction.db
            if _NEWTON_DROP:
                # weights the full step would carry through zero (a group's direction reversed;
                # an L1 entry's sign flipped): the restricted problem cannot zero them, and they
                # are the ones whose optimum is zero. The step takes them to zero instead
                cross = penalty.crossing(W_host, dW_h)
                if _DROP_REVIVED_BAN:
                    cross = cross & ~banned
                if cross.any():
                    was_dropped |= cross
                    dW_h = np.where(cross, -W_host, dW_h)
                    dropped = True
            W_new = W_host + dW_h
        elif m > 0:
            cache.age += 1
            # softmax's class-diagonal model only approximates the Hessian anyway, and its K
            # matrices are the sweeps' memory traffic: float32 (c11's re-fit iterations 15 %
            # faster; a binary or regression model is one small matrix, kept float64)
            A, s, mu = cache.centred(np.float32 if datafit.coupled else np.float64)
            g = to_numpy(HtG).astype(np.float64) - mu.T * gb_h  # (m, K), centred per output
            viol = to_float(penalty.violation(W_host, g))
            # the model with curvature rho A has the minimiser of g / rho, A and alpha / rho (and
            # the sweeps' changes, in gradient units, scale by 1 / rho): A is never copied. The
            # sweeps' tolerance has a floor in gradient units, whose scale is lambda's (an
            # active unit's gradient is lambda at the optimum): an absolute floor (1e-15) stopped
            # the tight re-fits of targets of ~1e-8 short of their gap
            W_new, nsw = _cd.solve(
                penalty.name,
                A,
                g / rho,
                W_host,
                penalty.alpha / rho,
                max(inner * viol, _SWEEP_FLOOR * penalty.alpha) / rho,
                _MAX_SWEEPS,
            )
            sweeps += int(nsw)
            dW_h = W_new - W_host
            db_h = -gb_h / (rho * s) - (mu * dW_h.T).sum(axis=1)
        else:
            s = np.maximum(to_numpy(datafit.hess_diag(Y, F, a).sum(axis=0)), 1e-300)
            dW_h, W_new = np.zeros((0, gb_h.shape[0])), W_host
            db_h = -gb_h / s
        # ---- line search on the true objective --------------------------------------------
        full = None  # the full step's products, from one pass over the rows (_full_step)
        if not newton and m > 0 and _fuses(Hp):
            if datafit.shift_invariant:
                # the shift taken after the step (below) taken into it instead: the same loss,
                # a penalty no higher at the full step, and no pass over the rows of its own
                v = penalty.best_shift(W_new)
                if v.any():
                    dW_h = dW_h - v[:, None]
                    W_new = W_host + dW_h
            full = _full_step(Hp, F, dW_h, db_h, Y, a, datafit)
        dW, db = xp.asarray(dW_h), xp.asarray(db_h)
        dF = times(dW_h) + db if full is None else full.dF
        if newton:
            # a trust region in the predictions: far from the optimum (a near-separable model at a
            # tiny lambda) the Newton step can be huge, and only its direction is worth keeping
            span = to_float(abs(dF).max())
            if not math.isfinite(span):
                newton = False
                continue
            shrink = 1.0
            if span > _NEWTON_SPAN:
                shrink = _NEWTON_SPAN / span
                dW_h, db_h, dW, db, dF = (shrink * v for v in (dW_h, db_h, dW, db, dF))
                W_new = W_host + dW_h
        pen_new = to_float(penalty.value(W_new))
        if newton and not dropped:  # the derivative of the (smooth) restricted objective
            slope = direction.slope * shrink
        else:  # the proximal Newton bound (the penalty is convex)
            slope = to_float((HtG * dW).sum()) + float(gb_h @ db_h) + pen_new - pen
        if slope > _ROUNDING * abs(obj) or not (dW_h.any() or db_h.any()):
            if newton:  # back to coordinate descent, which may still change the active set
                newton = False
                continue
            break  # no descent direction: optimal to the model's accuracy
        t, accepted = 1.0, False
        for _ in range(_MAX_HALVINGS):
            W_t = W_host + t * dW_h
            if full is not None and t == 1.0:
                F_t, loss_t = full.F, full.loss
            else:
                F_t = F + t * dF
                loss_t = to_float(datafit.value(Y, F_t, a))
            obj_t = loss_t + to_float(penalty.value(W_t))
            # near the optimum the decrease is below rounding: a full step that does not raise the
            # objective beyond it is taken (the duality gap, not the objective, decides the stop)
            if obj_t <= obj + _ARMIJO * t * slope or (
                t == 1.0 and obj_t <= obj + _ROUNDING * abs(obj)
            ):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            if newton:
                newton = False
                continue
            break
        support = W_host != 0 if newton_ok else None  # to see whether the step changes it
        W_host, b, F = W_t, b + t * db, F_t
        if _DROP_REVIVED_BAN and not newton and was_dropped.any():
            # (taken back by coordinate descent's step itself, not by the shift below)
            banned |= was_dropped & (W_host != 0)
        reuse = full is not None and t == 1.0  # the full step's loss and gradient stand
        if datafit.shift_invariant and m > 0 and not reuse:
            # the loss does not change when a unit's K weights move by a common shift v_j: take
            # the shift that minimises the penalty (exactly: a median for L1, the mean for group
            # L1), a step along the loss's null space that the per-output model cannot see
            v = penalty.best_shift(W_host)
            if v.any():
                W_host = W_host - v[:, None]
                F = F - times(v[:, None])
        b_old = b
        b, F = _recentred(datafit, b, F)
        if b is not b_old:
            iterates.clear()  # (the iterates' intercepts are the old ones)
        # ---- Anderson extrapolation of the last iterates (the outer iterations converge
        # linearly for softmax; skglm's AndersonCD does the same over CD epochs) -------------
        if newton:
            iterates.clear()  # Anderson combines the coordinate-descent iterates only
        elif not constant:
            iterates.append(np.concatenate([W_host.ravel(), to_numpy(b)]))
            if len(iterates) > _ANDERSON:
                x = _cd.anderson(iterates)
                iterates.clear()
                if x is not None:
                    W_x = x[: W_host.size].reshape(W_host.shape)
                    b_x = xp.asarray(x[W_host.size :])
                    F_x = H @ xp.asarray(W_x) + b_x
                    if offset is not None:
                        F_x = F_x + offset
                    obj_x = to_float(datafit.value(Y, F_x, a)) + to_float(penalty.value(W_x))
                    if obj_x < loss_t + to_float(penalty.value(W_host)):
                        W_host, b, F = W_x, b_x, F_x
                        reuse = False
        obj_before, gap_before = obj, gap
        if reuse:
            loss, pen, G, HtG = full.loss, to_float(penalty.value(W_host)), full.G, full.HtG
            gb = G.sum(axis=0)
        else:
            loss, pen, G, HtG, gb = evaluate(F, W_host)
        obj = loss + pen
        decrease = relative(obj_before - obj, obj)
        if newton:
            # keep to Newton steps while they converge fast; a slow one means the active set is
            # still wrong (a unit that should enter, which only coordinate descent can add)
            gap = gap_at(obj)
            # (a step that dropped weights changed the active set: the next one is a Newton step
            # on the new one, whatever the gap did meanwhile)
            newton = (t == 1.0 and gap <= _NEWTON_RATE * gap_before) or dropped
            if not newton:
                reach = min(reach, relative(_NEWTON_BACKOFF * gap_before, obj_before))
                failed = W_host != 0
        else:
            t_cd = t
            # once a full coordinate-descent step leaves the active set as it was, the next
            # iteration is a Newton step
            newton = newton_ok and t == 1.0 and bool(((W_host != 0) == support).all())
            # the gap (a dual evaluation) is only worth computing once the objective has settled
            due = newton or decrease <= tol or n_iter % _GAP_EVERY == 0
            gap = gap_at(obj) if due else math.inf
            # (or once coordinate descent has changed the support where a Newton direction
            # failed: a slow Newton step means a wrong active set, and that one is gone)
            moved = _NEWTON_RETRY and failed is not None and not np.array_equal(W_host != 0, failed)
            newton = newton and within(gap, _NEWTON_GAP if moved else reach, obj)
        converged = within(gap, tol, obj) and n_iter >= min_iter
        stalled = decrease_tol > 0 and t == 1.0 and decrease <= decrease_tol
    if not math.isfinite(gap):
        gap = gap_at(obj)
    if obj > obj_start:
        # full steps within rounding of the objective are taken (see the line search): never
        # return an iterate above the warm start, even by rounding
        W_host, b, F, loss, pen, G, HtG, gb, obj, gap = start
        if not math.isfinite(gap):
            gap = gap_at(obj)
        converged = within(gap, tol, obj)
    R = to_numpy(HtG - mu_a[:, None] * gb)  # the gradient in W with the intercept's centring
    viol = max(
        to_float(penalty.violation(W_host, R)) if m > 0 else 0.0,
        to_float(xp.abs(gb).max()),
    )
    W = xp.asarray(W_host)
    return RefitResult(
        W, b, F, G, obj, loss, pen, gap, viol, n_iter, bool(converged), sweeps, cache
    )
