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
    Y = np.asarray(y, dtype=np.float64)
    F = np.asarray(pred, dtype=np.float64)
    Y = Y.reshape(Y.shape[0], -1)
    F = F.reshape(Y.shape)
    ss_res = ((Y - F) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    per = np.where(
        ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), (ss_res == 0).astype(float)
    )
    return float(per.mean())


def accuracy(y, labels) -> float:
    """Share of ``labels`` equal to ``y`` (both shape (n,))."""
    return float(np.mean(np.asarray(y) == np.asarray(labels)))


__all__ = ["accuracy", "r2"]
