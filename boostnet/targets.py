"""What kind of targets: class labels or real values (the library's one rule, also used by the
command line's data loading)."""

from __future__ import annotations

import numpy as np


def infer_task(y) -> str:
    """Guess whether targets are class labels or real values.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.

    Returns
    -------
    str
        ``"classification"`` for non-float labels (ints, bools, strings) and for float values
        that are all integers with at most 20 distinct values (or at most 5% of ``n_samples``
        distinct values, whichever is larger); ``"regression"`` otherwise (including a 2-D ``y``
        with several columns).
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return "regression"
    if y.dtype.kind not in "fc":
        return "classification"
    if y.dtype.kind == "c" or y.size == 0 or not np.all(np.isfinite(y)):
        return "regression"
    if not np.all(y == np.round(y)):
        return "regression"
    n_distinct = np.unique(y).shape[0]
    return "classification" if n_distinct <= max(20, 0.05 * y.shape[0]) else "regression"


__all__ = ["infer_task"]
