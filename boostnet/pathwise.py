"""Regularisation paths: the certified networks for a decreasing grid of lambdas.

The path starts at lambda_max (the empty network is optimal there) and walks down a geometric grid.
Each lambda continues from the previous lambda's network (its units and output weights are the warm
start, as in glmnet's pathwise coordinate descent): the first re-fit at the new lambda drops the units
it no longer needs, then the greedy loop adds units until the certificate holds again. Units are
nested along the path, so the path stores the union of all units once and, per point, the indices of
its units and its output weights.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._backend import to_numpy
from ._greedy import GreedyConfig, _call, fit_greedy
from .exceptions import ConfigError
from .metrics import improves
from .network import NetworkState

#: Reasons that end a path early: a callback or Ctrl-C inside a point.
_PATH_STOPS = ("interrupted", "callback")
#: How a lambda is chosen from validation scores (:meth:`PathResult.best_index`).
SELECTIONS = ("best", "1se")


@dataclass
class PathPoint:
    """One lambda of the path.

    ``units`` indexes the path's union of units (``PathResult.W``); ``coef`` (n_units, K) and
    ``intercept`` (K,) are the output weights at this lambda. ``certificate_gap`` (best score minus
    lambda over the last searched pool) is None unless the point ended by certificate.
    """

    alpha: float
    ratio: float
    n_units: int
    objective: float
    loss: float
    penalty: float
    certificate_gap: float | None
    stop_reason: str
    n_steps: int
    n_added: int
    n_removed: int
    n_candidates: int
    fit_time: float
    train_score: float | None
    val_score: float | None
    units: np.ndarray = field(repr=False)
    coef: np.ndarray = field(repr=False)
    intercept: np.ndarray = field(repr=False)
    extra: dict = field(default_factory=dict)
    #: The evidence of the point's certificate (``Certificate.as_dict()``), if it has one.
    certificate: dict | None = field(default=None, repr=False)
    #: The standard error of ``val_score`` (from its per-row terms), where the validation gave
    #: them.
    val_se: float | None = None

    def as_row(self) -> dict:
        """The point's figures as a flat dict (no arrays); ``extra`` scores are merged in, and
        ``certificate_tol``: the tolerance its certificate was issued at (a path that only chooses
        lambda certifies its points more loosely than a fit does), None without a certificate."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("units", "coef", "intercept", "extra", "certificate"):
            d.pop(k)
        d["certificate_tol"] = None if self.certificate is None else self.certificate["tol"]
        d.update(self.extra)
        return d


@dataclass
class PathResult:
    """A computed path.

    Attributes
    ----------
    alphas : ndarray, shape (n_alphas,)
        The grid asked for, decreasing. ``points`` may be shorter (the path stopped early).
    lambda_max : float
    W : ndarray, shape (n_union, d)
        Every unit that appeared at some point, in order of first appearance.
    c : ndarray, shape (n_union,)
    points : list of PathPoint
    activation : str
    stop_reason : str
        ``complete``, ``patience`` (the validation score stopped improving), ``interrupted`` or
        ``callback``.
    """

    alphas: np.ndarray
    lambda_max: float
    W: np.ndarray
    c: np.ndarray
    points: list
    activation: str
    stop_reason: str = "complete"

    def network(self, i: int) -> NetworkState:
        """Rebuild point ``i``'s network (NumPy arrays)."""
        p = self.points[i]
        return NetworkState(self.W[p.units], self.c[p.units], p.coef, p.intercept)

    def rows(self) -> list:
        """One flat dict per point (for tables and CSV files)."""
        return [{"index": i, **p.as_row()} for i, p in enumerate(self.points)]

    @property
    def val_scores(self) -> np.ndarray:
        return np.array([np.nan if p.val_score is None else p.val_score for p in self.points])

    def best_index(self, selection: str = "best") -> int:
        """The chosen point: ``"best"``, the best validation score (ties go to the larger lambda,
        fewer units); ``"1se"``, the largest lambda whose score is within one standard error
        (``val_se``) of the best (glmnet's ``lambda.1se``: a sparser network that the held-out
        rows cannot tell from the best; without a standard error, the best).

        Raises
        ------
        ConfigError
            The path has no validation scores, or ``selection`` is unknown.
        """
        if selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        v = self.val_scores
        if v.size == 0 or np.all(np.isnan(v)):
            raise ConfigError("the path has no validation scores to choose a lambda from")
        best = int(np.nanargmax(v))
        se = self.points[best].val_se
        if selection == "best" or se is None:
            return best
        return within_one_se(v, best, se)


def within_one_se(scores, best: int, se: float) -> int:
    """The one-standard-error rule: the first index (the largest lambda of a decreasing grid) whose
    score (higher is better; NaN never qualifies) is at least ``scores[best] - se``."""
    return int(np.flatnonzero(np.asarray(scores) >= scores[best] - max(se, 0.0))[0])


def alpha_grid(lambda_max: float, n_alphas: int = 20, min_ratio: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``lambda_max`` down to ``min_ratio * lambda_max``, shape (n_alphas,)."""
    if not lambda_max > 0 or not math.isfinite(lambda_max):
        raise ConfigError(f"lambda_max must be positive and finite, got {lambda_max}")
    if n_alphas < 1:
        raise ConfigError(f"n_alphas must be at least 1, got {n_alphas}")
    if not 0 < min_ratio <= 1:
        raise ConfigError(f"alpha_min_ratio must be in (0, 1], got {min_ratio}")
    if n_alphas == 1:
        return np.array([lambda_max * min_ratio])
    return lambda_max * np.geomspace(1.0, min_ratio, n_alphas)


def check_alphas(alphas) -> np.ndarray:
    """A user grid as a decreasing float array (it is sorted); positive, finite, not empty."""
    a = np.asarray(alphas, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ConfigError("alphas must be a non-empty list of positive finite numbers")
    return np.sort(a)[::-1].copy()


class _Union:
    """The union of units met along the path (rows compared exactly: units never change once
    added)."""

    def __init__(self, d):
        self.index = {}
        self.W, self.c = [], []
        self.d = d

    def indices(self, W, c) -> np.ndarray:
        out = np.empty(W.shape[0], dtype=np.int64)
        for i in range(W.shape[0]):
            key = W[i].tobytes() + c[i : i + 1].tobytes()
            j = self.index.get(key)
            if j is None:
                j = self.index[key] = len(self.W)
                self.W.append(W[i].copy())
                self.c.append(c[i])
            out[i] = j
        return out

    def arrays(self):
        W = np.array(self.W).reshape(-1, self.d)
        return W, np.array(self.c, dtype=np.float64)


def compute_path(
    scorer,
    Y,
    a,
    datafit,
    sampler,
    config: GreedyConfig,
    rng: np.random.Generator,
    alphas,
    *,
    lambda_max: float | None = None,
    validation=None,
    train_score=None,
    scores=None,
    patience: int | None = None,
    callbacks=(),
) -> PathResult:
    """Compute the path over ``alphas`` (decreasing), each lambda warm-started from the previous.

    Parameters
    ----------
    scorer, Y, a, datafit, sampler, config, rng
        As for :func:`boostnet._greedy.fit_greedy`; ``config.alpha`` is replaced by each lambda.
    alphas : array, shape (n_alphas,)
        Decreasing lambdas (see :func:`alpha_grid`).
    lambda_max : float, optional
        Recorded, and used for each point's ``ratio``; defaults to ``alphas[0]``.
    validation : callable, optional
        ``validation(state)`` (higher is better): a float, or per-row terms (n,) whose mean is
        stored as ``val_score`` and their standard error as ``val_se``.
    train_score : callable, optional
        ``train_score(state) -> float``, stored as ``train_score``.
    scores : dict, optional
        ``name -> callable(state)``: more figures per point (e.g. a test metric), in ``extra``.
    patience : int, optional
        With ``validation``: stop once the validation score has not improved for this many
        consecutive lambdas (reason ``patience``).
    callbacks : sequence
        Passed to every point's greedy loop; a callback's ``on_path_point(point)`` is called after
        each point and may stop the path by returning True or a reason.

    Returns
    -------
    PathResult
    """
    alphas = check_alphas(alphas)
    d = scorer.X64.shape[1]
    lam_max = float(alphas[0]) if lambda_max is None else float(lambda_max)
    union = _Union(d)
    points = []
    state = None
    prev_units = np.zeros(0, dtype=np.int64)
    best_val, no_improve = -math.inf, 0
    stop = "complete"
    for alpha in alphas:
        cfg = dataclasses.replace(config, alpha=float(alpha))
        t0 = time.perf_counter()
        res = fit_greedy(scorer, Y, a, datafit, sampler, cfg, rng, init=state, callbacks=callbacks)
        fit_time = time.perf_counter() - t0
        state = res.state
        Wn, cn = to_numpy(state.W), to_numpy(state.c)
        units = union.indices(Wn, cn)
        host = NetworkState(Wn, cn, to_numpy(state.coef), to_numpy(state.intercept))
        last = res.history[-1]
        kept = np.isin(prev_units, units)
        val, se = _mean_se(validation(host)) if validation is not None else (None, None)
        point = PathPoint(
            alpha=float(alpha),
            ratio=float(alpha) / lam_max,
            n_units=int(units.shape[0]),
            objective=float(last.objective),
            loss=float(last.loss),
            penalty=float(last.penalty),
            certificate_gap=(
                float(last.certificate_gap) if res.stop_reason == "certificate" else None
            ),
            stop_reason=res.stop_reason,
            n_steps=len(res.history) - 1,
            n_added=int((~np.isin(units, prev_units)).sum()),
            n_removed=int((~kept).sum()),
            n_candidates=int(res.total_candidates),
            fit_time=fit_time,
            train_score=None if train_score is None else float(train_score(host)),
            val_score=val,
            units=units,
            coef=host.coef,
            intercept=host.intercept,
            extra={k: float(f(host)) for k, f in (scores or {}).items()},
            certificate=res.certificate.as_dict() if res.certificate else None,
            val_se=se,
        )
        points.append(point)
        prev_units = units
        requested = _call(callbacks, "on_path_point", point)
        if res.stop_reason in _PATH_STOPS:
            stop = res.stop_reason
            break
        if requested:
            stop = requested if isinstance(requested, str) else "callback"
            break
        if validation is not None and patience is not None:
            if improves(point.val_score, best_val):
                best_val, no_improve = point.val_score, 0
            else:
                no_improve += 1
                if no_improve >= patience:
                    stop = "patience"
                    break
    W, c = union.arrays()
    return PathResult(alphas, lam_max, W, c, points, config.activation.name, stop)


def _mean_se(score) -> tuple[float, float | None]:
    """``(mean, standard error)`` of a validation's per-row terms; a plain float has no standard
    error."""
    v = np.asarray(score, dtype=np.float64).ravel()
    if v.size < 2:
        return float(v.mean()), None
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))
