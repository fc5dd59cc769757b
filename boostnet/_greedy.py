"""The greedy loop: grow a network one hidden unit at a time, with a totally corrective re-fit.

Phases of one step (from the intercept-only model):

1. ``gradient``: ``G = df/dF`` at the current model (kept from the last re-fit).
2. ``sample``: a fresh pool of candidate units from the sampler and the step's generator.
3. ``score``: every candidate's ``dual_norm(h^T G)``; the top-k re-scored exactly (float64).
4. ``refine``: the best few improved by projected gradient ascent on their scores.
5. ``certify``: if the best score is ``<= alpha (1 + tol)``, no unit of the searched pool can lower the
   objective: stop with reason ``certificate``.
6. ``add + re-fit``: append the best unit with weight 0 and re-fit every output weight (warm start);
   units whose weights are exactly zero leave the model.

Other stops: ``max_units``, ``max_time``, ``early_stopping`` (validation metric), ``callback`` (a callback
asked to stop), ``interrupted`` (KeyboardInterrupt), ``stalled`` (the best unit is an active one even
after re-fitting to 1e-14: only rounding separates it from lambda). The model is only replaced once a step has
completed, so every stop leaves a complete, valid network. Library code never prints; progress goes
through callbacks.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ._backend import get_namespace, to_float, to_numpy
from .activations import Activation
from .penalties import PENALTIES, get_penalty
from .refine import refine_units
from .refit import primal, refit
from .scoring import transform


@dataclass
class StepRecord:
    """What one step of the greedy loop did.

    ``best_score`` and ``certificate_gap`` describe the pool searched at the model *before* the step
    (with ``n_units_before`` units); the other figures describe the model *after* it. Step 0 is the
    starting model (intercept only, or the warm start).
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GreedyConfig:
    """Parameters of the loop (validated by the estimators)."""

    activation: Activation
    penalty: str = "l1"
    alpha: float | None = None
    alpha_ratio: float = 0.0075
    n_candidates: int = 2048
    top_k: int = 32
    refine: bool = True
    n_refine: int = 1
    refine_steps: int = 10
    unit_scale: float = 3.0
    max_units: int = 1000
    max_time: float | None = None
    tol: float = 1e-3
    refit_tol: float = 1e-6
    refit_max_iter: int = 2000
    n_iter_no_change: int = 10
    corrective: bool = True


@dataclass
class NetworkState:
    """A complete network: ``F(X) = act(X W^T + c) coef + intercept``.

    W: (m, d); c: (m,); coef: (m, K); intercept: (K,). Arrays on the training device.
    """

    W: object
    c: object
    coef: object
    intercept: object

    @property
    def n_units(self) -> int:
        return int(self.W.shape[0])


@dataclass
class GreedyResult:
    """Outcome of :func:`fit_greedy`; arrays of ``state`` are on the training device."""

    state: NetworkState
    alpha: float
    lambda_max: float | None
    stop_reason: str
    history: list = field(default_factory=list)
    total_candidates: int = 0


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


def _stagewise(H, Y, a, datafit, penalty, state, F, tol, config):
    """Fit only the new unit's weights and the intercept; the other units stay fixed (plain
    stagewise boosting, the "no totally corrective re-fit" ablation)."""
    from .refit import RefitResult  # noqa: PLC0415

    xp = get_namespace(H)
    h = H[:, -1:]
    offset = F - state.intercept
    r = refit(
        h,
        Y,
        a,
        datafit,
        penalty,
        xp.zeros((1, Y.shape[1])),
        state.intercept,
        tol=tol,
        max_iter=config.refit_max_iter,
        offset=offset,
    )
    coef = xp.concatenate([state.coef, r.coef])
    pen = to_float(penalty.value(coef))
    return RefitResult(
        coef,
        r.intercept,
        r.F,
        r.G,
        r.loss + pen,
        r.loss,
        pen,
        r.gap,
        r.violation,
        r.n_iter,
        r.converged,
    )


def search_pool(scorer, G, sampler, config: GreedyConfig, rng, reducer):
    """Phases ``sample``, ``score`` and ``refine`` of one step.

    Returns
    -------
    W : array, shape (k, d)
        The top-k candidates (the first ``n_refine`` of them refined), on the device.
    c : array, shape (k,)
    scores : array, shape (k,)
        Their exact scores.
    m_pool : int
        Candidates drawn.
    """
    X = scorer.X64
    xp = get_namespace(X)
    act = config.activation
    Wp, cp = sampler.sample(X, G, config.n_candidates, rng, act, config.unit_scale)
    res = scorer.score(Wp, cp, G, act, reducer, k=config.top_k)
    top = xp.asarray(res.top)
    Wt, ct, st = Wp[top], cp[top], xp.asarray(res.top_scores)
    if config.refine and config.n_refine > 0:
        q = min(config.n_refine, Wt.shape[0])
        Wr, cr, sr = refine_units(
            X, G, Wt[:q], ct[:q], st[:q], act, reducer, config.unit_scale, config.refine_steps
        )
        Wt = xp.concatenate([Wr, Wt[q:]])
        ct = xp.concatenate([cr, ct[q:]])
        st = xp.concatenate([sr, st[q:]])
    return Wt, ct, st, int(Wp.shape[0])


def estimate_lambda_max(scorer, Y, a, datafit, sampler, config: GreedyConfig, rng) -> float:
    """lambda_max: the best score of one searched pool at the intercept-only model (for lambda at
    or above it the empty network is optimal over that pool). ``fit_greedy`` with
    ``config.alpha = None`` estimates it the same way."""
    xp = get_namespace(scorer.X64)
    n, K = Y.shape
    b = xp.asarray(datafit.intercept(Y, a), dtype=xp.float64)
    F = xp.zeros((n, K)) + b
    G = datafit.raw_grad(Y, F, a)
    _, _, st, _ = search_pool(scorer, G, sampler, config, rng, PENALTIES[config.penalty])
    return to_float(st.max())


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
    callbacks : sequence
        Objects with any of ``on_fit_begin(info)``, ``on_step_network(record, network)`` (the
        :class:`NetworkState` after the step, arrays on the training device), ``on_step_end(record)``
        and ``on_fit_end(result)``. ``on_step_end`` returning True stops the loop after the step
        (reason ``callback``); returning a string stops it with that string as the reason.
    """
    X = scorer.X64
    xp = get_namespace(X)
    act = config.activation
    n, d = X.shape
    K = Y.shape[1]
    t_start = time.perf_counter()

    alpha = config.alpha
    penalty = get_penalty(config.penalty, alpha) if alpha is not None else None
    lambda_max = None
    reducer = PENALTIES[config.penalty]  # its static dual_norm turns h^T G into a score

    # ---- phase: initial model ---------------------------------------------------------------
    if init is not None and init.n_units > 0:
        state = init
        H = transform(X, state.W, state.c, act)
        r = refit(
            H,
            Y,
            a,
            datafit,
            penalty,
            state.coef,
            state.intercept,
            tol=config.refit_tol,
            max_iter=config.refit_max_iter,
        )
        keep = to_numpy((r.coef != 0).any(axis=1))
        ki = xp.asarray(np.flatnonzero(keep))
        state = NetworkState(state.W[ki], state.c[ki], r.coef[ki], r.intercept)
        H = H[:, ki]
        n_removed0 = int((~keep).sum())
        F, G = r.F, r.G
        loss, pen, refit_gap, refit_viol, refit_iter = (
            r.loss,
            r.penalty,
            r.gap,
            r.violation,
            r.n_iter,
        )
    else:
        b = datafit.intercept(Y, a) if init is None else init.intercept
        state = NetworkState(
            xp.zeros((0, d)), xp.zeros(0), xp.zeros((0, K)), xp.asarray(b, dtype=xp.float64)
        )
        H = xp.zeros((n, 0))
        F, loss, pen = primal(
            H,
            Y,
            a,
            state.coef,
            state.intercept,
            datafit,
            penalty or get_penalty(config.penalty, 0.0),
        )
        G = datafit.raw_grad(Y, F, a)
        refit_gap, refit_viol, refit_iter = 0.0, to_float(abs(G.sum(axis=0)).max()), 0
        n_removed0 = 0

    _call(
        callbacks,
        "on_fit_begin",
        {"n_samples": n, "n_features": d, "n_outputs": K, "config": config},
    )
    total = 0
    refit_tol = config.refit_tol
    history = []
    val = validation(state) if validation is not None else None
    history.append(
        StepRecord(
            0,
            state.n_units,
            state.n_units,
            loss + pen,
            loss,
            pen,
            math.nan,
            math.nan,
            False,
            n_removed0,
            refit_gap,
            refit_viol,
            refit_iter,
            0,
            0,
            time.perf_counter() - t_start,
            val,
        )
    )
    best_val, best_state, no_improve = val, state, 0
    stop_reason = None
    step = 0
    try:
        while stop_reason is None:
            if state.n_units >= config.max_units:
                stop_reason = "max_units"
                break
            if config.max_time is not None and time.perf_counter() - t_start >= config.max_time:
                stop_reason = "max_time"
                break
            step += 1
            # ---- phases: sample, score, refine --------------------------------------------
            Wt, ct, st, m_pool = search_pool(scorer, G, sampler, config, rng, reducer)
            total += m_pool
            j = int(to_numpy(st.argmax()))
            best = to_float(st[j])
            if penalty is None:  # lambda as a fraction of lambda_max (estimated from this pool)
                lambda_max = best
                alpha = config.alpha_ratio * lambda_max
                penalty = get_penalty(config.penalty, alpha)
            # ---- phase: certify ---------------------------------------------------------------
            if best <= alpha * (1.0 + config.tol):
                history.append(
                    StepRecord(
                        step,
                        state.n_units,
                        state.n_units,
                        loss + pen,
                        loss,
                        pen,
                        best,
                        best - alpha,
                        False,
                        0,
                        refit_gap,
                        refit_viol,
                        0,
                        m_pool,
                        total,
                        time.perf_counter() - t_start,
                        val,
                    )
                )
                stop_reason = "certificate"
                break
            # ---- phase: add + re-fit ----------------------------------------------------------
            w_new, c_new = Wt[j : j + 1], ct[j : j + 1]
            dup = (
                state.n_units > 0
                and to_float((abs(state.W - w_new).max(axis=1) + abs(state.c - c_new)).min())
                < 1e-12
            )
            n_before = state.n_units
            if dup:
                # the best unit is already active: its score exceeds lambda only because the
                # last re-fit was inexact. Re-fit tighter instead of adding a copy.
                if refit_tol <= 1e-14:
                    stop_reason = "stalled"
                    break
                refit_tol = max(refit_tol * 1e-2, 1e-14)
                W_all, c_all, coef0 = state.W, state.c, state.coef
            else:
                H = xp.concatenate([H, transform(X, w_new, c_new, act)], axis=1)
                W_all = xp.concatenate([state.W, w_new])
                c_all = xp.concatenate([state.c, c_new])
                coef0 = xp.concatenate([state.coef, xp.zeros((1, K))])
            if config.corrective or dup:
                r = refit(
                    H,
                    Y,
                    a,
                    datafit,
                    penalty,
                    coef0,
                    state.intercept,
                    tol=refit_tol,
                    max_iter=config.refit_max_iter,
                )
            else:
                r = _stagewise(H, Y, a, datafit, penalty, state, F, refit_tol, config)
            keep = to_numpy((r.coef != 0).any(axis=1))
            if keep.all():
                new_state = NetworkState(W_all, c_all, r.coef, r.intercept)
            else:
                ki = xp.asarray(np.flatnonzero(keep))
                new_state = NetworkState(W_all[ki], c_all[ki], r.coef[ki], r.intercept)
                H = H[:, ki]
            # the step is complete: commit
            state, F, G = new_state, r.F, r.G
            loss, pen, refit_gap, refit_viol = r.loss, r.penalty, r.gap, r.violation
            val = validation(state) if validation is not None else None
            rec = StepRecord(
                step,
                n_before,
                state.n_units,
                r.objective,
                loss,
                pen,
                best,
                best - alpha,
                not dup,
                int((~keep).sum()),
                refit_gap,
                refit_viol,
                r.n_iter,
                m_pool,
                total,
                time.perf_counter() - t_start,
                val,
            )
            history.append(rec)
            _call(callbacks, "on_step_network", rec, state)
            requested = _call(callbacks, "on_step_end", rec)
            if requested:
                stop_reason = requested
            if validation is not None:
                if best_val is None or val > best_val + 1e-12:
                    best_val, best_state, no_improve = val, state, 0
                else:
                    no_improve += 1
                    if no_improve >= config.n_iter_no_change:
                        state = best_state
                        stop_reason = "early_stopping"
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    result = GreedyResult(
        state,
        float(alpha) if alpha is not None else math.nan,
        lambda_max,
        stop_reason,
        history,
        total,
    )
    _call(callbacks, "on_fit_end", result)
    return result
