"""The greedy loop: grow a network a few hidden units at a time, with a totally corrective re-fit.

Phases (each a method of :class:`_Loop`; :func:`fit_greedy` runs them):

1. ``start``: the intercept-only model, or the warm start re-fitted at this lambda (units whose
   weights reach exactly zero leave).
2. ``search``: a fresh pool of candidate units from the sampler (``sample``); every candidate's
   ``dual_norm(h^T G)`` at the current gradient ``G``, the top-k re-scored exactly in float64
   (``score``); the best few improved by projected gradient ascent on their scores (``refine``).
   ``G`` is the last re-fit's gradient after one Newton step on the intercept
   (:func:`search_gradient`): its columns sum to zero, as they do at the optimum.
   A fit whose lambda is a share of lambda_max reads lambda_max from its first pool, searched as
   the tail searches (:func:`lambda_max_config`).
3. ``certify``: if the best score is ``<= alpha (1 + tol)``, no unit of the searched pool can lower
   the objective. One lucky pool is weak evidence in many dimensions, so the certificate needs
   ``certify_pools`` consecutive fresh pools that find nothing, searched at a re-fit solved to
   ``refit_tol``; from the first pool that finds nothing on, every pool searches harder (multi-start
   ascent from the 16 best distinct candidates, 30 steps), since the units still missing are the
   ones a plain pool rarely finds. Where that search costs less than a re-fit's curvature model,
   it starts earlier: once a pool offers a single unit (c26: 378 -> 289 steps). After a looser
   re-fit one harder pool is searched before the model is re-fitted tightly. The evidence is
   returned as a :class:`Certificate`.
4. ``grow``: the active units first slide (``slide_steps`` projected gradient steps at fixed output
   weights, ``boostnet.slide``: they follow the optimum instead of being replaced by nearby units);
   then up to ``units_per_step`` distinct candidates scoring above ``alpha (1 + tol)`` enter with
   weight 0 and every output weight is re-fitted (warm start); units whose weights are exactly zero
   leave. While the best score is far above lambda the re-fit only needs to be loose: its relative
   duality-gap tolerance is tied to the certificate gap, ``clip(0.01 (best - alpha) / alpha,
   refit_tol, 1e-3)``. In the tail, where a step adds a unit or two to more than 64 active units
   (softmax), only a working set is re-fitted: the entering units, the active units most
   correlated with them and those furthest from their optimality condition (``PartialRefit``,
   the others' predictions held as an offset); a certificate's re-fit is always totally
   corrective.

Other stops: ``max_units``, ``max_time``, ``early_stopping`` (validation metric), ``callback`` (a callback
asked to stop), ``interrupted`` (KeyboardInterrupt), ``stalled`` (the best unit is an active one even
after re-fitting to 1e-14, or the objective has not decreased for ``_STALL_WINDOW`` steps: only
rounding separates the best unit from lambda; or ``_FAILED_TIGHTENINGS`` tightenings in a row
ended short of ``refit_tol``: the re-fit cannot reach the certificate's tolerance; or twice in a
row the entering units all left at once and the second step's re-fit, continued, could neither
reach its tolerance nor take a unit in: the re-fit cannot make progress: a safety net, once hit
by a curvature model that gave an entering unit zero curvature, see
``boostnet.refit.CurvatureModel.build``). The model is only
replaced once a step has completed, so every stop leaves a complete, valid network. Library code
never prints; progress goes through callbacks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from ._backend import get_namespace, synchronize, to_float, to_numpy
from .activations import Activation
from .exceptions import DataError
from .metrics import improves
from .network import NetworkState
from .oracle import append_exact
from .penalties import PENALTIES, get_penalty
from .refine import refine_units
from .refit import (
    CurvatureModel,
    RefitResult,
    curvature,
    intercept_corrected,
    primal,
    refit,
    relative,
    tdot,
    within,
)
from .samplers import draw
from .scoring import transform
from .slide import slide, whitening_metric

#: Steps without any decrease of the objective after which the loop stops as ``stalled``.
_STALL_WINDOW = 50
#: Tightenings in a row (no unit entering between them) whose re-fit ends short of ``refit_tol``
#: after which the loop stops as ``stalled``: the re-fit cannot reach the certificate's tolerance
#: (features of ~1e-7 left unstandardised: each tightening lowered the objective by a hair, so
#: ``_STALL_WINDOW`` never ran out, and the fit ran until ``max_time``).
_FAILED_TIGHTENINGS = 3
#: Loosest re-fit tolerance (relative duality gap) while growing.
_LOOSE_REFIT_TOL = 1e-3
#: A loose re-fit (tolerance ``tol``) also stops after a step lowering the objective by less than
#: this share of ``tol`` (relative).
_DECREASE_SHARE = 1e-2
#: Pools after the first that found nothing (certification) draw this many times more candidates
#: and refine this many of the best distinct ones by this many ascent steps.
_CERTIFY_POOL_FACTOR = 1
_CERTIFY_REFINE = 16
_CERTIFY_REFINE_STEPS = 30
#: Once a step's pool offered at most this many distinct units above ``alpha (1 + tol)`` (the
#: plain pool thins out near the certificate), every later pool searches as the tail's do, where
#: the re-fit's curvature model costs at least ``_THIN_PAYS`` times the harder search's extra work
#: (``_Loop.harder_pays``); 0: only from the first pool that finds nothing.
_THIN_POOL = 1
_THIN_PAYS = 4
#: A loose re-fit is tightened after one clean pool instead of ``_LOOSE_POOLS`` where a tight
#: re-fit costs less than a search (:meth:`_Loop.loose_pools`).
_TIGHTEN_EARLY = True
_LOOSE_POOLS = 2
#: The share of random directions in a mixed pool follows how well they score
#: (:func:`next_random_share`): kept while they take at least ``_RANDOM_KEEP`` times their share
#: of the screen's top-k, else halved, down to ``_RANDOM_FLOOR`` of the sampler's share.
_ADAPT_RANDOM = True
_RANDOM_KEEP = 0.5
_RANDOM_FLOOR = 1 / 8
#: Candidates of one step whose centred activations are more correlated than this are one unit.
_DIVERSITY = 0.95
#: Most slide steps per step in the tail, and how many times a search's work beyond the curvature
#: model the slide may spend there (see ``_Loop.slide_budget``; measured on Fashion-MNIST:
#: experiments/README.md, section 8; share 1 -> 2, seeds 0-8: 41.8 -> 35.5 s, 114 -> 97 steps).
_TAIL_SLIDE_MAX = 16
_TAIL_SLIDE_SHARE = 2.0
#: Whitened slide directions (``boostnet.slide``, module doc): lower certified objectives on
#: Fashion-MNIST, not faster (experiments/README.md, section 8), hence off; an experiment's switch.
_WHITEN_SLIDE = False
#: In the tail, growing re-fits of more active units than ``_WORKING_SET`` (and at most
#: ``_WORKING_SET_UPTO``) re-fit only the entering units and the active ones most correlated with
#: them, ``_WORKING_SET`` in all (``PartialRefit``); softmax only (its K curvature matrices are
#: the re-fit's cost); 0: always totally corrective. Measured (experiments/README.md, section 8):
#: c11 (~170 units) 32 % faster. The upper bound (256, from one c26 seed 22 % slower without it)
#: is gone since the pools are scored against an intercept-corrected gradient: c26 (~550 units),
#: seeds 0-5, x0.79 without it (170 -> 133 s, certified objectives 0.05 % higher).
_WORKING_SET = 64
_WORKING_SET_UPTO = math.inf
#: The share of a working set's active units chosen by their optimality violation (at the warm
#: start, against the pools' gradient), the rest by correlation with the entering units; 0: by
#: correlation only (``PartialRefit``; c26 seeds 0-5 x0.88 with 0.5).
_WS_VIOLATION = 0.5
#: lambda_max (``alpha = alpha_ratio * lambda_max``) from a harder-searched first pool (the tail's
#: multi-start ascent, :func:`_harder`) rather than a plain one: see :func:`estimate_lambda_max`.
_EXACT_LAMBDA_MAX = True
#: Pools scored against the gradient after a Newton step on the intercept
#: (:func:`search_gradient`); off: the re-fit's gradient as it is (an experiment's switch).
_INTERCEPT_SCORES = True


@dataclass
class StepRecord:
    """What one step of the greedy loop did.

    ``best_score`` and ``certificate_gap`` describe the pool searched at the model *before* the step
    (with ``n_units_before`` units); the other figures describe the model *after* it. Step 0 is the
    starting model (intercept only, or the warm start). ``time_*`` are the seconds spent in each
    phase of the step (device work synchronised before each reading); ``slide_steps`` the steps
    the active units slid before the re-fit (``boostnet.slide``).
    """

    step: int
    n_units_before: int
    n_units: int
    objective: float
    loss: float
    penalty: float
    best_score: float
    certificate_gap: float
    added: bool
    n_removed: int
    refit_gap: float
    refit_violation: float
    refit_iter: int
    n_candidates: int
    total_candidates: int
    elapsed: float
    val_score: float | None = None
    n_added: int = 0
    refit_tol: float = math.nan
    time_sample: float = 0.0
    time_score: float = 0.0
    time_refine: float = 0.0
    time_slide: float = 0.0
    time_refit: float = 0.0
    slide_steps: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


#: The per-phase time fields of :class:`StepRecord`, in phase order.
PHASES = ("sample", "score", "refine", "slide", "refit")


def phase_times(history) -> dict:
    """Seconds spent in each phase over the steps of ``history`` (a list of :class:`StepRecord`)."""
    return {k: float(sum(getattr(r, f"time_{k}", 0.0) for r in history)) for k in PHASES}


@dataclass
class GreedyConfig:
    """Parameters of the loop, built only from an estimator's parameters (which validate them and
    hold their defaults: :meth:`boostnet.estimators._BaseBoostNet._config`)."""

    activation: Activation
    penalty: str
    alpha: float | None
    alpha_ratio: float
    n_candidates: int
    top_k: int
    refine: bool
    n_refine: int
    refine_steps: int
    unit_scale: float
    max_units: int
    max_time: float | None
    tol: float
    refit_tol: float
    refit_max_iter: int
    n_iter_no_change: int
    corrective: bool
    units_per_step: int
    certify_pools: int
    slide_steps: int
    oracle: str  # "auto", "sampled", "certify", "exact": see boostnet.oracle


@dataclass
class Certificate:
    """The evidence behind a ``"certificate"`` stop.

    ``pools`` consecutive fresh pools (``candidates`` candidates drawn in all, each pool's best
    refined by ascent), searched at the final network after a tight re-fit, found no unit scoring
    above ``alpha (1 + tol)``; ``best_score`` is the best score they found. ``kind`` is
    ``"sampled"`` (the pools are random: a certificate over what was searched) or ``"exact"``
    (the last pool included the exact search over all units, :mod:`boostnet.oracle`: a global
    certificate, for which one clean pool suffices); scores are taken against the re-fit's
    gradient after a Newton step on the intercept (:func:`search_gradient`; the same
    gradient at the optimum). ``refit_gap`` is
    the re-fit's relative duality gap, ``duality_gap`` its absolute value.
    """

    kind: str
    pools: int
    candidates: int
    best_score: float
    alpha: float
    tol: float
    refit_gap: float
    duality_gap: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GreedyResult:
    """Outcome of :func:`fit_greedy`; arrays of ``state`` are on the training device."""

    state: NetworkState
    alpha: float
    lambda_max: float | None
    stop_reason: str
    history: list = field(default_factory=list)
    total_candidates: int = 0
    certificate: Certificate | None = None


class Callback(Protocol):
    """The hooks of the loop; a callback may define any subset of them.

    ``on_step_end`` returning True stops the loop after the step (reason ``callback``); returning a
    string stops it with that string as the reason. ``on_fit_end`` gets the result, or None when the
    fit raised (the error then propagates). ``on_path_point`` is called by
    :func:`boostnet.pathwise.compute_path` after each lambda, with the same convention.
    """

    def on_fit_begin(self, info: dict) -> None: ...

    def on_step_network(self, record: StepRecord, network: NetworkState) -> None: ...

    def on_step_end(self, record: StepRecord) -> bool | str | None: ...

    def on_fit_end(self, result: GreedyResult | None) -> None: ...

    def on_path_point(self, point) -> bool | str | None: ...


def _call(callbacks, name, *args):
    """Call ``name(*args)`` on every callback that has it; return the stop request, if any.

    A callback asks to stop by returning True (reason ``"callback"``) or a string (the reason).
    """
    stop = None
    for cb in callbacks:
        fn = getattr(cb, name, None)
        if fn is None:
            continue
        ret = fn(*args)
        if ret and stop is None:
            stop = ret if isinstance(ret, str) else "callback"
    return stop


# ---- re-fits ------------------------------------------------------------------------------------
class CorrectiveRefit:
    """Totally corrective: every output weight (and the intercept) re-fitted, warm-started (from
    the predictions ``F`` at the warm start where the re-fit is loose: ``refit``'s ``F0``)."""

    name = "corrective"

    def __call__(
        self, H, Y, a, datafit, penalty, coef0, intercept, F, n_new, tol, max_iter, dtol, model=None,
        deadline=None,
    ):  # fmt: skip
        return refit(
            H,
            Y,
            a,
            datafit,
            penalty,
            coef0,
            intercept,
            tol=tol,
            max_iter=max_iter,
            decrease_tol=dtol,
            model=model,
            deadline=deadline,
            min_iter=1 if n_new > 0 else 0,
            F0=F,
        )


class PartialRefit:
    """Only a working set of units is re-fitted: the ``n_new`` entering units and ``extra`` active
    units, a share ``_WS_VIOLATION`` of them those with the largest optimality violation at the
    warm start (:meth:`~boostnet.penalties.Penalty.unit_violations` of ``H^T G``, ``G`` the
    pools' gradient :func:`search_gradient`), the rest those whose centred activations are most
    correlated with the entering units'; the other units' output weights stay, and their
    predictions enter the re-fit as a fixed offset. Chosen by correlation alone, a working set
    never moved the units it left out, and those the optimum drops piled up until the next
    totally corrective re-fit (c26, seed 0: 40 units left at one tightening); measured
    (experiments/README.md, section 8, twentieth part): c26 seeds 0-5 x0.88, c11 seeds 0-11
    x0.94.

    ``extra=0`` is plain stagewise boosting (the "no totally corrective re-fit" ablation,
    ``corrective=False``). In the certification tail, where a step adds a unit or two to hundreds,
    a working set of ``_WORKING_SET`` units makes the re-fit's curvature model and coordinate
    descent cost ``w^2 K`` instead of ``m^2 K``. The result is marked not converged (its gap is the
    working set's): the loop re-fits totally correctively before it certifies. It keeps no
    curvature model between steps.
    """

    def __init__(self, extra: int, name: str):
        self.extra, self.name = extra, name

    def __call__(
        self, H, Y, a, datafit, penalty, coef0, intercept, F, n_new, tol, max_iter, dtol, model=None,
        deadline=None,
    ):  # fmt: skip
        xp = get_namespace(H)
        m_old = H.shape[1] - n_new
        near = np.zeros(0, dtype=np.int64)
        if self.extra > 0 and m_old > 0:
            corr = abs_correlations(H[:, :m_old], H[:, m_old:]).max(axis=1)
            by_corr = np.argsort(-corr, kind="stable")
            n_viol = int(round(_WS_VIOLATION * self.extra)) if F is not None else 0
            near = by_corr[: self.extra - n_viol]
            if n_viol > 0:
                # the active units furthest from their optimality condition (those that should
                # leave among them): without them a working set never moves the units it leaves out
                G = search_gradient(datafit, Y, F, a, datafit.raw_grad(Y, F, a))
                R = to_numpy(tdot(H[:, :m_old], G))
                v = to_numpy(penalty.unit_violations(to_numpy(coef0[:m_old]), R))
                rest = np.argsort(-v, kind="stable")
                rest = rest[~np.isin(rest, near)][:n_viol]
                near = np.concatenate([near, rest])
        ws = np.sort(np.concatenate([near, np.arange(m_old, H.shape[1])]))
        wi = xp.asarray(ws)
        # the other units' predictions: one product with every column, the working set's weights
        # zeroed (gathering the others' columns first copied most of H: c26 22 -> 10 ms)
        fixed = xp.asarray(coef0, dtype=xp.float64).copy()
        fixed[wi] = 0.0
        r = refit(
            xp.take(H, wi, axis=1), Y, a, datafit, penalty, coef0[wi], intercept, tol=tol,
            max_iter=max_iter, offset=H @ fixed, decrease_tol=dtol,
            deadline=deadline, min_iter=1 if n_new > 0 else 0,
        )  # fmt: skip
        coef = xp.asarray(coef0, dtype=xp.float64).copy()
        coef[wi] = r.coef
        pen = to_float(penalty.value(coef))
        return RefitResult(
            coef, r.intercept, r.F, r.G, r.loss + pen, r.loss, pen, r.gap, r.violation,
            r.n_iter, False, r.n_sweeps,
        )  # fmt: skip


# ---- search -------------------------------------------------------------------------------------
@dataclass
class Pool:
    """The outcome of one search: the best candidates of a fresh pool.

    W : array, shape (k, d); c : array, shape (k,)
        The top-k candidates (the best ``n_refine`` distinct ones refined), on the device.
    scores : array, shape (k,)
        Their exact scores.
    n_drawn : int
        Candidates drawn.
    times : dict
        Seconds spent in ``sample``, ``score`` and ``refine``.
    exact : bool
        Whether the pool holds the best of all units (the exact search ran: ``boostnet.oracle``).
    random_top : float or None
        The share of random directions among the screen's top-k (None: the sampler did not say
        which units are data pairs).
    H : array, shape (n, k), float64, or None
        The candidates' activations on the training inputs, as their exact scores computed them
        (None where the scorer did not keep them, or the exact search added units): the step
        picks distinct units by them instead of another float64 pass over the rows.
    """

    W: object
    c: object
    scores: object
    n_drawn: int
    times: dict
    exact: bool = False
    random_top: float | None = None
    H: object = None


def _clock(xp, t0):
    synchronize(xp)
    t = time.perf_counter()
    return t, t - t0


def _harder(cfg: GreedyConfig) -> GreedyConfig:
    """The harder search of the tail (:meth:`_Loop.search_config`)."""
    return dataclasses.replace(
        cfg,
        n_candidates=cfg.n_candidates * _CERTIFY_POOL_FACTOR,
        top_k=max(cfg.top_k, _CERTIFY_REFINE),
        n_refine=max(cfg.n_refine, _CERTIFY_REFINE),
        refine_steps=max(cfg.refine_steps, _CERTIFY_REFINE_STEPS),
    )


def search_pool(
    scorer, G, sampler, config: GreedyConfig, rng, reducer, threshold=None, random_share=None
) -> Pool:
    """Phases ``sample``, ``score`` and ``refine`` of one step (see :class:`Pool`); ``threshold``
    (``alpha (1 + tol)``) tells ``oracle="certify"`` whether the pool would certify;
    ``random_share``: the share of random directions to draw (:func:`next_random_share`)."""
    X = scorer.X64
    xp = get_namespace(X)
    act = config.activation
    t = time.perf_counter()
    Wp, cp, pairs = draw(
        sampler, X, G, config.n_candidates, rng, act, config.unit_scale, random_share
    )
    t, t_sample = _clock(xp, t)
    res = scorer.score(Wp, cp, G, act, reducer, k=config.top_k, pairs=pairs)
    random_top = None
    if pairs is not None and len(res.top):
        random_top = 1.0 - float(np.isin(res.top, pairs.rows).mean())
    top = xp.asarray(res.top)
    Wt, ct, st = Wp[top], cp[top], xp.asarray(res.top_scores)
    H_top = getattr(res, "H_top", None)
    t, t_score = _clock(xp, t)
    if config.refine and config.n_refine > 0:
        # multi-start ascent from the best distinct candidates, batched (one n x q product per
        # ascent iteration)
        seeds = diverse(X, Wt, ct, st, -math.inf, config.n_refine, act, H_top)
        si = xp.asarray(seeds)
        refined = refine_units(
            X, G, Wt[si], ct[si], st[si], act, reducer, config.unit_scale, config.refine_steps,
            X_fast=getattr(scorer, "X_fast", None), XT_fast=getattr(scorer, "XT_fast", None),
            H=None if H_top is None else xp.take(H_top, si, axis=1),
        )  # fmt: skip
        Wr, cr, sr = refined[:3]
        Wt, ct, st = Wt.copy(), ct.copy(), st.copy()
        Wt[si], ct[si], st[si] = Wr, cr, sr
        if H_top is not None:  # the pool's own array (ScoreResult's, ordered for it)
            H_top[:, si] = refined[3]
    # the best unit of all joins the pool (d <= 2, sign or relu: boostnet.oracle)
    Wt, ct, st, exact = append_exact(X, G, config, reducer, Wt, ct, st, threshold)
    if H_top is not None and H_top.shape[1] != Wt.shape[0]:
        H_top = None  # units appended: their activations were not kept
    t, t_refine = _clock(xp, t)
    times = {"sample": t_sample, "score": t_score, "refine": t_refine}
    return Pool(Wt, ct, st, int(Wp.shape[0]), times, exact, random_top, H_top)


def next_random_share(share: float, random_top: float | None, cap: float) -> float:
    """The share of random directions in the next pool of a sampler that mixes them with data
    pairs: kept (or doubled back, up to the sampler's own share ``cap``) while they took at least
    ``_RANDOM_KEEP`` times their share of the last screen's top-k, halved otherwise, down to
    ``_RANDOM_FLOOR * cap``. On high-dimensional inputs random directions rarely place at all
    (Fashion-MNIST: none of the top 32 in any pool, their best screen a third of the pairs'),
    while there the pairs, screened from ``X X^T``, cost a fraction of a product with ``X``
    (experiments/README.md, section 8). The loop follows it only where the scorer screens pairs
    from ``X X^T`` (128 features or more), the case it pays for: in low dimensions random
    directions take ~60 % of the top-k (c11, friedman1), and where they did not (digits,
    diabetes) fewer of them gave higher certified objectives on diabetes (seeds 0-2: 2313 ->
    2469)."""
    if not _ADAPT_RANDOM or random_top is None or cap <= 0:
        return share
    if random_top >= _RANDOM_KEEP * share:
        return min(2.0 * share, cap)
    return max(0.5 * share, _RANDOM_FLOOR * cap)


def diverse(X, W, c, scores, threshold: float, limit: int, activation: Activation, H=None):
    """Indices of up to ``limit`` distinct units among ``(W, c)`` scoring above ``threshold``.

    Units are taken best first; one whose centred activations have a correlation above
    ``_DIVERSITY`` (in absolute value) with an already chosen one is skipped (it would enter as
    nearly the same feature). ``H`` (n, len(W)), optional: the units' activations on ``X``, where
    already computed (the exact scores' own: :attr:`boostnet.scoring.ScoreResult.H_top`).
    Returns a host array of indices, best first.
    """
    s = to_numpy(scores)
    order = [int(i) for i in np.argsort(-s, kind="stable") if s[i] > threshold]
    if limit <= 1 or len(order) <= 1:
        return np.asarray(order[:limit], dtype=np.int64)
    xp = get_namespace(X)
    idx = xp.asarray(np.asarray(order, dtype=np.int64))
    H = transform(X, W[idx], c[idx], activation) if H is None else xp.take(H, idx, axis=1)
    C = abs_correlations(H, H)
    chosen = []
    for p in range(len(order)):
        if all(C[p, q] <= _DIVERSITY for q in chosen):
            chosen.append(p)
            if len(chosen) == limit:
                break
    return np.asarray([order[p] for p in chosen], dtype=np.int64)


def abs_correlations(A, B):
    """``|corr(a_i, b_j)|`` between the columns of ``A`` (n, p) and ``B`` (n, q), centred; a
    constant column correlates 0 with everything. Returns a host array, shape (p, q).

    Only ``B`` is centred (``A^T B_c = A_c^T B_c`` since ``1^T B_c = 0``); ``A``'s centred norms
    follow from its column sums and sums of squares, taken in the same pass as the product and
    one more: two reads of ``A`` and no copy of it. The working set of the tail's re-fits reads
    every active unit's correlation with the entering ones (c26: 15 000 x 550 activations, 60 ->
    8 ms; centring ``A`` itself was half of that re-fit's time)."""
    xp = get_namespace(A)
    n = A.shape[0]
    Bc = B - B.mean(axis=0)
    nb = xp.sqrt((Bc * Bc).sum(axis=0))
    P = tdot(A, xp.concatenate([xp.ones((n, 1), dtype=Bc.dtype), Bc], axis=1))  # (p, 1 + q)
    sa, cross = P[:, 0], P[:, 1:]
    sq = xp.einsum("ij,ij->j", A, A)
    # (the difference leaves a constant column a rounding residue, ~sqrt(n eps) of its size: a
    # spread below 1e-5 of the column's size counts as none)
    na = xp.sqrt(xp.maximum(sq - sa * sa / n, 0.0))
    na = xp.where(na > 1e-5 * xp.sqrt(sq), na, 0.0)
    den = na[:, None] * nb[None, :]
    return to_numpy(xp.where(den > 0, abs(cross) / xp.where(den > 0, den, 1.0), 0.0))


def search_gradient(datafit, Y, F, a, G):
    """The gradient the pools are scored against: ``G`` (n, K), the datafit's gradient at ``F``,
    after one Newton step on the intercept (:func:`boostnet.refit.intercept_corrected`), whose
    columns sum to zero. A loose re-fit leaves ``1^T G`` nonzero, and every unit scores that residue
    through its curvature-weighted activations: at unit scale it moved the active units'
    scores by up to 9 % (digits), 14 % (c11) and 53 % (c26, median 3 %) of lambda, against a
    certificate tolerance of 1 %; with features of ~1e-8 the units' scores and lambda shrink
    with them while the residue does not, so nearly constant units out-scored every other and
    the fit stalled (moons: 1e-4 to 1e-12 now certify as at 1; wine at 1e-4: stalled after
    152 steps, now certified in 28). Squared error's intercept is exact: its fits are
    unchanged. Measured (experiments/README.md, section 8, nineteenth part)."""
    if not _INTERCEPT_SCORES:
        return G
    return intercept_corrected(G, curvature(datafit, Y, F, a))


def estimate_lambda_max(scorer, Y, a, datafit, sampler, config: GreedyConfig, rng) -> float:
    """lambda_max: the best score of one pool at the intercept-only model, searched as the tail
    searches (:func:`lambda_max_config`); for lambda at or above it the empty network is optimal
    over that pool. ``fit_greedy`` with ``config.alpha = None`` estimates it the same way, from its
    first pool."""
    xp = get_namespace(scorer.X64)
    n, K = Y.shape
    b = xp.asarray(datafit.intercept(Y, a), dtype=xp.float64)
    F = xp.zeros((n, K)) + b
    G = search_gradient(datafit, Y, F, a, datafit.raw_grad(Y, F, a))
    pool = search_pool(
        scorer, G, sampler, lambda_max_config(config), rng, PENALTIES[config.penalty]
    )
    return _lambda_max(to_float(pool.scores.max()))


def lambda_max_config(cfg: GreedyConfig) -> GreedyConfig:
    """The search of the pool lambda_max is read from: the tail's harder one (:func:`_harder`).

    lambda_max is the supremum of the score over all units at the intercept-only model, and a
    default lambda is a fixed share of it, so its estimate decides which problem is solved. A
    plain pool's best (one candidate refined by 10 ascent steps) fell short of it by a random
    amount: up to 11 % on c26 and c11, 2.3 % on digits, over seeds 0-5, so two seeds (or the CPU
    and the GPU, which draw other pools) solved problems with different lambdas. The multi-start
    ascent of the 16 best distinct candidates found the same value on every seed to 5 digits
    (and so did 8192 candidates with 100 ascent steps): experiments/README.md, section 8,
    seventeenth part. It costs one tail pool per fit.
    """
    return _harder(cfg) if _EXACT_LAMBDA_MAX else cfg


def _lambda_max(best: float) -> float:
    """The best score of a pool at the intercept-only model, as lambda_max: it must be positive
    (a lambda proportional to 0 would let units that fit nothing enter)."""
    if not best > 0.0:
        raise DataError(
            "no candidate unit correlates with the loss gradient of the intercept-only model "
            f"(lambda_max = {best:g}): the features carry nothing the targets depend on"
        )
    return best


# ---- the loop -----------------------------------------------------------------------------------
class _Loop:
    """State and phases of one run of the greedy loop (see the module docstring)."""

    def __init__(self, scorer, Y, a, datafit, sampler, config, rng, validation, callbacks):
        self.scorer, self.Y, self.a = scorer, Y, a
        self.datafit, self.sampler, self.config, self.rng = datafit, sampler, config, rng
        self.validation, self.callbacks = validation, callbacks
        self.X = scorer.X64
        self.xp = get_namespace(self.X)
        self.reducer = PENALTIES[config.penalty]  # its static dual_norm turns h^T G into a score
        # the share of random directions in the next pool (:func:`next_random_share`): followed
        # where the scorer screens data pairs from X X^T, at a fraction of random directions' cost
        mix = getattr(sampler, "pairs_fraction", None)
        adapt = mix is not None and getattr(scorer, "uses_gram", False)
        self.random_cap = 1.0 - float(mix) if adapt else None  # the sampler's own share
        self.random_share = self.random_cap
        self.refitter = CorrectiveRefit() if config.corrective else PartialRefit(0, "stagewise")
        # active units slide (boostnet.slide) only where they may move: a differentiable activation,
        # the totally corrective re-fit, and a sampler whose units are not a fixed dictionary
        self.slide_steps = (
            config.slide_steps
            if config.activation.differentiable
            and config.corrective
            and getattr(sampler, "movable", True)
            else 0
        )
        self.alpha = config.alpha
        self.penalty = get_penalty(config.penalty, self.alpha) if self.alpha is not None else None
        self.lambda_max = None
        self.t_start = time.perf_counter()
        # no re-fit iteration starts after max_time (the step then ends with what it has)
        self.deadline = None if config.max_time is None else self.t_start + config.max_time
        self.history = []
        self.total = 0
        self.step = 0
        self.refit_tol = config.refit_tol  # the tolerance the current model meets (see commit)
        self.requested_tol = config.refit_tol
        self.clean = []  # (drawn, best) of the consecutive pools that found nothing (certify)
        self.hard = False  # searching harder (see search): since the first pool found nothing
        self.thin = False  # searching harder since a pool offered at most _THIN_POOL units
        self.slide_step = None  # the last slide's step length, where the next one starts
        self.futile = False  # the last growing step's entering units all left, re-fit short
        self.stuck = False  # a growing step's re-fit could neither converge nor take a unit in
        self.failed_tightenings = 0  # tightenings in a row that ended short of refit_tol
        self._metric = None  # the slide's whitening metric (built at the first slide, if used)

    # ---- bookkeeping ------------------------------------------------------------------------
    def record(self, pool: Pool | None = None, best: float = math.nan, **kw) -> StepRecord:
        """The step's record: the model's figures from the current state; the searched ``pool``
        (its size and phase times) and its ``best`` score, if the step searched one. Keywords
        override."""
        r = self.fit
        kw.setdefault("n_units", self.state.n_units)
        kw.setdefault("best_score", best)
        kw.setdefault("certificate_gap", best - self.alpha if pool is not None else math.nan)
        if pool is not None:
            kw.setdefault("n_candidates", pool.n_drawn)
            for k, v in pool.times.items():
                kw.setdefault(f"time_{k}", v)
        rec = StepRecord(
            step=self.step,
            objective=r.objective,
            loss=r.loss,
            penalty=r.penalty,
            refit_gap=r.gap,
            refit_violation=r.violation,
            total_candidates=self.total,
            elapsed=time.perf_counter() - self.t_start,
            val_score=self.val,
            refit_tol=self.refit_tol,
            **kw,
        )
        self.history.append(rec)
        return rec

    def commit(self, W, c, r: RefitResult, H, tol: float):
        """Adopt a re-fit asked for relative gap ``tol``: units with an all-zero weight row leave.
        Returns how many left. ``refit_tol`` records the tolerance the model now meets: ``tol``,
        or the achieved relative gap when the re-fit stopped short of it (a certificate needs it
        at or below the configured ``refit_tol``)."""
        xp = self.xp
        self.requested_tol = tol
        self.refit_tol = tol if r.converged else max(tol, relative(r.gap, r.objective))
        keep = to_numpy((r.coef != 0).any(axis=1))
        model = r.model if r.model is not None and r.model.n_units == H.shape[1] else None
        # the activations and the curvature model of the active units, carried to the next
        # re-fit; where units left, their columns are dropped only once something reads them (a
        # slide that moves the units recomputes both: c26's gathers were 5 % of its fit)
        self._H, self._model, self._keep = H, model, None
        if keep.all():
            self.state = NetworkState(W, c, r.coef, r.intercept)
        else:
            self._keep = np.flatnonzero(keep)
            ki = xp.asarray(self._keep)
            self.state = NetworkState(W[ki], c[ki], r.coef[ki], r.intercept)
        self.fit = r
        self.val = self.validation(self.state) if self.validation is not None else None
        return int((~keep).sum())

    def _gather(self):
        if self._keep is not None:
            keep, self._keep = self._keep, None
            # (a gather along rows: 2.5x faster than H[:, keep])
            self._H = self.xp.take(self._H, self.xp.asarray(keep), axis=1)
            self._model = self._model.select(keep) if self._model is not None else None

    @property
    def H(self):
        """The active units' activations on ``X``, shape (n, m)."""
        self._gather()
        return self._H

    @property
    def model(self) -> CurvatureModel | None:
        """The curvature model of the active units (None: the next re-fit builds one)."""
        self._gather()
        return self._model

    # ---- phase: start -----------------------------------------------------------------------
    def start(self, init: NetworkState | None):
        xp, cfg = self.xp, self.config
        n, d = self.X.shape
        K = self.Y.shape[1]
        if init is not None and init.n_units > 0:
            H = transform(self.X, init.W, init.c, cfg.activation)
            r = refit(
                H, self.Y, self.a, self.datafit, self.penalty, init.coef, init.intercept,
                tol=cfg.refit_tol, max_iter=cfg.refit_max_iter, deadline=self.deadline,
            )  # fmt: skip
            n_removed = self.commit(init.W, init.c, r, H, cfg.refit_tol)
        else:
            b = self.datafit.intercept(self.Y, self.a) if init is None else init.intercept
            coef = xp.zeros((0, K))
            b = xp.asarray(b, dtype=xp.float64)
            H = xp.zeros((n, 0))
            pen0 = self.penalty or get_penalty(cfg.penalty, 0.0)
            F, loss, pen = primal(H, self.Y, self.a, coef, b, self.datafit, pen0)
            G = self.datafit.raw_grad(self.Y, F, self.a)
            viol = to_float(abs(G.sum(axis=0)).max())
            r = RefitResult(coef, b, F, G, loss + pen, loss, pen, 0.0, viol, 0, True)
            n_removed = self.commit(xp.zeros((0, d)), xp.zeros(0), r, H, cfg.refit_tol)
        _call(
            self.callbacks,
            "on_fit_begin",
            {"n_samples": n, "n_features": d, "n_outputs": K, "config": cfg},
        )
        self.record(
            n_units_before=self.state.n_units, added=False, n_removed=n_removed,
            refit_iter=self.fit.n_iter, n_candidates=0,
        )  # fmt: skip

    # ---- phase: search ----------------------------------------------------------------------
    def search_config(self) -> GreedyConfig:
        """The configuration of the next pool: in the tail (a pool has found nothing once), every
        pool searches harder (the units still missing are the ones a plain pool rarely finds);
        so does every pool after one that offered at most ``_THIN_POOL`` units, where the harder
        search costs less than the step it saves (:meth:`harder_pays`)."""
        cfg = self.config
        if self.penalty is None:  # the first pool, which lambda_max is read from
            return lambda_max_config(cfg)
        if not (self.hard or (self.thin and self.harder_pays())):
            return cfg
        return _harder(cfg)

    def search_work(self, cfg: GreedyConfig) -> float:
        """Work per row of ``X`` of one search under ``cfg``: ``w (d + 1 + K)``, ``w`` passes over
        the rows (one per candidate, and per refined unit 1.5 per ascent step and its exact
        score)."""
        w = cfg.n_candidates + cfg.n_refine * (1.5 * cfg.refine_steps + 1)
        return w * (self.X.shape[1] + 1 + self.Y.shape[1])

    def harder_pays(self) -> bool:
        """Whether a harder search's extra work is at most ``1 / _THIN_PAYS`` of the curvature
        model of a re-fit (``m^2 K`` per row, rebuilt at every step whose units slid): then a
        thin plain pool, which adds one unit per step where the harder one adds several, is not
        worth its step. Measured (experiments/README.md, section 8): c26 378 -> 289 steps,
        518 -> 353 s, c11 207 -> 157 steps (the model 7-30 times the extra search); digits,
        friedman1 and Fashion-MNIST (at most about as dear) no faster. Counted, not timed: a seed
        still gives one model."""
        m, K = self.state.n_units, self.Y.shape[1]
        extra = self.search_work(_harder(self.config)) - self.search_work(self.config)
        return _THIN_PAYS * extra <= m * m * K

    def search(self) -> tuple[Pool, float]:
        cfg = self.search_config()
        thr = self.alpha * (1.0 + cfg.tol) if self.alpha is not None else None
        pool = search_pool(
            self.scorer, search_gradient(self.datafit, self.Y, self.fit.F, self.a, self.fit.G),
            self.sampler, cfg, self.rng, self.reducer, thr, self.random_share,
        )  # fmt: skip
        self.total += pool.n_drawn
        if self.random_cap is not None:
            self.random_share = next_random_share(
                self.random_share, pool.random_top, self.random_cap
            )
        best = to_float(pool.scores.max())
        if not math.isfinite(best):  # never a "certificate" from NaN scores
            raise DataError(
                "candidate scores are not finite: the inputs or targets are too large for the "
                "float32 screen (standardise the features and targets)"
            )
        if self.penalty is None:  # lambda as a fraction of lambda_max (estimated from this pool)
            self.lambda_max = _lambda_max(best)
            self.alpha = self.config.alpha_ratio * best
            self.penalty = get_penalty(self.config.penalty, self.alpha)
        return pool, best

    # ---- phase: certify ---------------------------------------------------------------------
    def certify(self, pool: Pool, best: float) -> str | None:
        """What a pool's best score means for the fit.

        None: a unit scores above ``alpha (1 + tol)``: grow. Otherwise the pool is clean and
        counts towards the certificate: ``"certificate"`` once ``certify_pools`` consecutive clean
        pools were searched at a tight re-fit; ``"again"`` while more are needed (the next pools
        search harder, see :meth:`search`); after a loose re-fit, where a tight one is dear
        (:meth:`loose_pools`), one harder pool is searched first (``"again"``), and only if it
        finds nothing too is the model re-fitted tightly (``"tighten"``), after which the count
        starts again.
        """
        if best > self.alpha * (1.0 + self.config.tol):
            self.clean = []
            return None
        self.clean.append((pool.n_drawn, best, pool.exact))
        self.hard = True
        if self.refit_tol > self.config.refit_tol:
            if len(self.clean) < self.loose_pools():
                return "again"
            self.clean = []
            return "tighten"
        if pool.exact:  # the pool held the best of all units: one clean pool is global proof
            return "certificate"
        if len(self.clean) < self.config.certify_pools:
            return "again"
        return "certificate"

    def loose_pools(self) -> int:
        """Clean pools searched at a loose re-fit before it is tightened: one where the curvature
        model of a re-fit (``m^2 K`` per row, rebuilt every few of its iterations) costs at most a
        search (:meth:`search_work`), two elsewhere: a tight re-fit is then dear, and the second
        pool often finds a unit without it. Measured (experiments/README.md, section 8):
        Fashion-MNIST, digits and friedman1 faster with one; c26 (the model 75 times the search)
        99 -> 173 s with one; c11 with three (``_LOOSE_POOLS``) instead of two, seeds 0-5: x1.10,
        152 -> 186 steps (the extra pools find more units at the loose model). Counted, not timed:
        a seed still gives one model."""
        m, K = self.state.n_units, self.Y.shape[1]
        cheap = m * m * K <= self.search_work(self.search_config())
        return 1 if _TIGHTEN_EARLY and cheap else _LOOSE_POOLS

    def certificate(self) -> Certificate:
        r = self.fit
        return Certificate(
            kind="exact" if self.clean[-1][2] else "sampled",
            pools=len(self.clean),
            candidates=int(sum(n for n, _, _ in self.clean)),
            best_score=float(max(b for _, b, _ in self.clean)),
            alpha=float(self.alpha),
            tol=float(self.config.tol),
            refit_gap=float(relative(r.gap, r.objective)),
            duality_gap=float(r.gap),
        )

    # ---- phase: grow ------------------------------------------------------------------------
    def grow(self, pool: Pool, best: float, tighten: bool) -> StepRecord:
        xp, cfg = self.xp, self.config
        st = self.state
        K = self.Y.shape[1]
        threshold = self.alpha * (1.0 + cfg.tol)
        limit = min(cfg.units_per_step, cfg.max_units - st.n_units)  # never past max_units
        t0 = time.perf_counter()
        chosen = (
            np.zeros(0, dtype=np.int64)
            if tighten
            else diverse(
                self.X, pool.W, pool.c, pool.scores, threshold, limit, cfg.activation, pool.H
            )
        )
        if chosen.size and st.n_units > 0:  # drop candidates that are already active units
            sel = xp.asarray(chosen)
            Wc, cc = pool.W[sel], pool.c[sel]
            dist = abs(Wc[:, None, :] - st.W[None, :, :]).max(axis=2) + abs(cc[:, None] - st.c)
            chosen = chosen[to_numpy(dist.min(axis=1)) >= 1e-12]
        t_select = time.perf_counter() - t0
        if not tighten and chosen.size <= _THIN_POOL < limit:
            self.thin = True
        t_slide, moved = 0.0, None
        n_new = int(chosen.size)
        if n_new == 0:
            # tightening before a certificate, or the best units are already active: their score
            # exceeds lambda only because the last re-fit was inexact. Re-fit tighter.
            tol = (
                cfg.refit_tol
                if tighten
                else max(min(self.requested_tol, cfg.refit_tol) * 1e-2, 1e-14)
            )
            if not tighten and self.requested_tol <= 1e-14:
                return None
            W_all, c_all, coef0, H = st.W, st.c, st.coef, self.H
            refitter, model, F0 = CorrectiveRefit(), self.model, self.fit.F
        else:
            rel = (best - self.alpha) / self.alpha
            tol = min(max(0.01 * rel, cfg.refit_tol), max(_LOOSE_REFIT_TOL, cfg.refit_tol))
            sel = xp.asarray(chosen)
            Wn, cn = pool.W[sel], pool.c[sel]
            W_old, c_old = st.W, st.c
            m = st.n_units
            # the activations of the (moved) active units and of the entering ones, side by side:
            # the slide writes its units' columns in place, no concatenated copy (c26: 60 MB)
            H = xp.empty((self.X.shape[0], m + n_new), dtype=self.X.dtype)
            if self.slide_steps > 0 and m > 0:
                t_slide = time.perf_counter()
                moved = slide(
                    self.X, self.Y, self.a, self.datafit, st.W, st.c, st.coef, st.intercept,
                    cfg.activation, cfg.unit_scale, self.slide_budget(m), F=self.fit.F,
                    X_fast=getattr(self.scorer, "X_fast", None),
                    XT_fast=getattr(self.scorer, "XT_fast", None), step=self.slide_step,
                    metric=self.slide_metric(), H_out=H[:, :m],
                )  # fmt: skip
                self.slide_step = moved.step
                _, t_slide = _clock(xp, t_slide)
            if moved is not None and moved.n_steps > 0:
                # every column changed: the curvature model is rebuilt (keeping the one of the
                # units' positions before the slide: c26 6 % faster, Fashion-MNIST 9 % slower)
                W_old, c_old, model = moved.W, moved.c, None
            else:
                H[:, :m] = self.H
                model = self.model
            # the predictions at the warm start (the entering units' weights are zero)
            F0 = self.fit.F if moved is None else moved.F
            # computed again rather than taken from pool.H: equal to rounding, but a product's
            # last bits move with its width, and the re-fit (hence the trajectory) with them
            transform(self.X, Wn, cn, cfg.activation, out=H[:, m:])
            W_all = xp.concatenate([W_old, Wn])
            c_all = xp.concatenate([c_old, cn])
            coef0 = xp.concatenate([st.coef, xp.zeros((n_new, K))])
            refitter = self.refitter
            model = model.extend(H) if model is not None else None
            if (
                self.hard
                and _WORKING_SET > 0
                and self.config.corrective
                and self.datafit.coupled
                and _WORKING_SET < H.shape[1] - n_new <= _WORKING_SET_UPTO
            ):
                refitter = PartialRefit(_WORKING_SET - n_new, "working_set")
                model = None
        t1 = time.perf_counter()
        # a loose re-fit may also stop once its objective has settled (see refit's decrease_tol)
        dtol = _DECREASE_SHARE * tol if tol > cfg.refit_tol else 0.0
        r = refitter(
            H, self.Y, self.a, self.datafit, self.penalty, coef0, st.intercept, F0,
            n_new, tol, cfg.refit_max_iter, dtol, model, self.deadline,
        )  # fmt: skip
        futile = n_new > 0 and not self._reached(r, tol) and not self._entered(r, n_new)
        if futile and self.futile:
            # twice in a row a re-fit left every entering unit at zero before its tolerance
            # (loose re-fits settle, decrease_tol, before the units move off zero): they leave,
            # and the next pool finds them again (a near-separable iris at a tiny lambda cycled
            # so for 8000 steps, before the curvature model's emptied diagonal entries were
            # restored). Continue it to its tolerance; if it can neither reach it nor
            # take a unit in, the loop has no way forward: the step is kept, the run stops
            # (stalled)
            if dtol > 0:
                r = refitter(
                    H, self.Y, self.a, self.datafit, self.penalty, r.coef, r.intercept, r.F,
                    n_new, tol, cfg.refit_max_iter, 0.0, r.model, self.deadline,
                )  # fmt: skip
            futile = not self._reached(r, tol) and not self._entered(r, n_new)
            self.stuck = futile and (self.deadline is None or time.perf_counter() < self.deadline)
        self.futile = futile
        if n_new > 0:
            self.failed_tightenings = 0
        elif tighten:
            short = not self._reached(r, tol)
            self.failed_tightenings = self.failed_tightenings + 1 if short else 0
            if self.failed_tightenings >= _FAILED_TIGHTENINGS:
                self.stuck = True
        _, t_refit = _clock(xp, t1)
        n_before = st.n_units
        n_removed = self.commit(W_all, c_all, r, H, tol)
        return self.record(
            pool, best, n_units_before=n_before, added=n_new > 0, n_added=n_new,
            n_removed=n_removed, refit_iter=r.n_iter, time_refit=t_refit, time_slide=t_slide,
            slide_steps=0 if moved is None else moved.n_steps,
            time_refine=pool.times["refine"] + t_select,
        )  # fmt: skip

    @staticmethod
    def _reached(r: RefitResult, tol: float) -> bool:
        """Whether a re-fit's relative duality gap is within ``tol`` (a working set's re-fit is
        never marked converged: its gap is the working set's)."""
        return within(r.gap, tol, r.objective)

    @staticmethod
    def _entered(r: RefitResult, n_new: int) -> bool:
        """Whether a re-fit gave any of the ``n_new`` entering units (its last rows) a weight."""
        return bool((r.coef[-n_new:] != 0).any())

    def slide_metric(self):
        """The slide's whitening metric (``_WHITEN_SLIDE``), built once per fit; None: plain."""
        if _WHITEN_SLIDE and self._metric is None:
            self._metric = whitening_metric(self.X, self.a)
        return self._metric

    def slide_budget(self, m: int) -> int:
        """Most steps of the slide before a re-fit of ``m`` active units.

        ``slide_steps``, except in the tail (hard pools), where a search costs as much as many
        slide steps: there the slide may take as many steps as ``_TAIL_SLIDE_SHARE`` times the
        search's work beyond the curvature model that the next re-fit rebuilds because the units
        moved, at most ``_TAIL_SLIDE_MAX``: a tail step that slides further leaves fewer units
        for later steps to find (Fashion-MNIST's longest tails shortened most). Work per row of
        ``X`` (``d`` features, ``K`` outputs): the search :meth:`search_work`, the model
        ``m^2 K``, one slide step ``m (2 (d + 1) + K)`` (forward and backward). Counted, not
        timed: a seed still gives one model.
        """
        if not self.hard or self.slide_steps == 0:
            return self.slide_steps
        d, K = self.X.shape[1], self.Y.shape[1]
        spare = self.search_work(self.search_config()) - m * m * K
        extra = int(_TAIL_SLIDE_SHARE * spare // (m * (2 * (d + 1) + K)))
        return max(self.slide_steps, min(extra, _TAIL_SLIDE_MAX))

    # ---- the run ----------------------------------------------------------------------------
    def run(self, init) -> GreedyResult:
        # overflow in the float32 screen or the re-fit shows as non-finite scores, which search()
        # turns into a DataError: no RuntimeWarning from the way there
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                return self._run(init)
        except BaseException:
            # the fit raised: callbacks still get their ``on_fit_end`` (with None), so that what
            # they hold is released (StopOnInterrupt's signal handlers); the error propagates
            _call(self.callbacks, "on_fit_end", None)
            raise

    def _run(self, init) -> GreedyResult:
        cfg = self.config
        self.start(init)
        best_val, best_state, no_improve = self.val, self.state, 0
        best_obj, since_better = self.fit.objective, 0
        stop_reason = None
        try:
            while stop_reason is None:
                if self.state.n_units >= cfg.max_units:
                    stop_reason = "max_units"
                    break
                if cfg.max_time is not None and time.perf_counter() - self.t_start >= cfg.max_time:
                    stop_reason = "max_time"
                    break
                self.step += 1
                pool, best = self.search()
                verdict = self.certify(pool, best)
                if verdict in ("certificate", "again"):
                    rec = self.record(
                        pool, best, n_units_before=self.state.n_units, added=False,
                        n_removed=0, refit_iter=0,
                    )  # fmt: skip
                    if verdict == "certificate":
                        stop_reason = "certificate"
                        break
                    requested = _call(self.callbacks, "on_step_end", rec)
                    if requested:
                        stop_reason = requested
                    continue
                rec = self.grow(pool, best, tighten=verdict == "tighten")
                if rec is None:
                    stop_reason = "stalled"
                    break
                if self.stuck:
                    stop_reason = "stalled"
                _call(self.callbacks, "on_step_network", rec, self.state)
                requested = _call(self.callbacks, "on_step_end", rec)
                if requested:
                    stop_reason = requested
                if rec.objective < best_obj * (1 - 1e-12):
                    best_obj, since_better = rec.objective, 0
                else:
                    since_better += 1
                    if since_better >= _STALL_WINDOW and stop_reason is None:
                        stop_reason = "stalled"
                if self.validation is not None:
                    if best_val is None or improves(self.val, best_val):
                        best_val, best_state, no_improve = self.val, self.state, 0
                    else:
                        no_improve += 1
                        if no_improve >= cfg.n_iter_no_change:
                            self.state = best_state
                            stop_reason = "early_stopping"
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        alpha = float(self.alpha) if self.alpha is not None else math.nan
        result = GreedyResult(
            self.state, alpha, self.lambda_max, stop_reason, self.history, self.total,
            self.certificate() if stop_reason == "certificate" else None,
        )  # fmt: skip
        _call(self.callbacks, "on_fit_end", result)
        return result


def fit_greedy(
    scorer,
    Y,
    a,
    datafit,
    sampler,
    config: GreedyConfig,
    rng: np.random.Generator,
    *,
    init: NetworkState | None = None,
    validation=None,
    callbacks=(),
) -> GreedyResult:
    """Run the greedy loop.

    Parameters
    ----------
    scorer : NumpyScorer or a GPU scorer
        Holds the training inputs (``scorer.X64``: (n, d) float64 on the device).
    Y : array, shape (n, K)
        Encoded targets, float64 on the device.
    a : array, shape (n,)
        Normalised sample weights (sum 1).
    datafit : Datafit
    sampler : object with ``sample(X, G, m, rng, activation, unit_scale) -> (W, c)``
    config : GreedyConfig
    rng : numpy.random.Generator
    init : NetworkState, optional
        Starting network (warm start); ``config.alpha`` must then be set.
    validation : callable, optional
        ``validation(state) -> float`` (higher is better): enables early stopping.
    callbacks : sequence of :class:`Callback`
        ``on_step_end`` returning True stops the loop after the step (reason ``callback``);
        returning a string stops it with that string as the reason.
    """
    loop = _Loop(scorer, Y, a, datafit, sampler, config, rng, validation, callbacks)
    return loop.run(init)
