"""The metrics every part of boostnet reports: one definition each.

R^2 of K outputs is the mean of the per-output coefficients of determination,

    R^2 = (1/K) sum_k [1 - sum_t (y_tk - f_tk)^2 / sum_t (y_tk - ybar_k)^2],

scikit-learn's ``r2_score`` with ``multioutput="uniform_average"`` (what ``score`` of a regressor
returns); an output whose targets are constant counts 1 when predicted exactly and 0 otherwise.
Accuracy is the share of exact label matches. The estimator's validation, the per-step curves, the
run's metrics.json, path.csv and compare's rows all use these.
"""

from __future__ import annotations

import numpy as np


def r2(y, pred) -> float:
    """Mean R^2 over the outputs.

    Parameters
    ----------
    y, pred : array-like, shape (n,) or (n, K)
    """
    return float(r2_rows(y, pred).mean())


def r2_rows(y, pred) -> np.ndarray:
    """R^2 as a mean over the rows: its per-row terms, shape (n,), whose mean is :func:`r2`.

    Row ``t`` contributes ``(1/K) sum_k [1 - n (y_tk - f_tk)^2 / sum_s (y_sk - ybar_k)^2]`` (an
    output with constant targets: its 0-or-1 value on every row); a held-out R^2's standard error
    is taken from these.
    """
    Y = np.asarray(y, dtype=np.float64)
    F = np.asarray(pred, dtype=np.float64)
    Y = Y.reshape(Y.shape[0], -1)
    F = F.reshape(Y.shape)
    R2 = (Y - F) ** 2
    ss_res = R2.sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    live = ss_tot > 0
    terms = np.where(
        live, 1.0 - Y.shape[0] * R2 / np.where(live, ss_tot, 1.0), (ss_res == 0).astype(float)
    )
    return terms.mean(axis=1)


def accuracy(y, labels) -> float:
    """Share of ``labels`` equal to ``y`` (both shape (n,))."""
    return float(np.mean(np.asarray(y) == np.asarray(labels)))


def improves(score: float, best: float) -> bool:
    """Whether a validation score (higher is better) beats ``best`` beyond rounding: by more than
    ``1e-12`` of its size, so at any scale of the targets (a held-out squared error of targets of
    ~1e-8 is ~1e-16: an absolute margin would count no point of a path as better). ``best`` may be
    ``-inf`` (nothing seen yet)."""
    margin = 1e-12 * abs(best) if np.isfinite(best) else 0.0
    return bool(score > best + margin)


__all__ = ["accuracy", "improves", "r2", "r2_rows"]
