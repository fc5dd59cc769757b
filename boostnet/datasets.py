"""Named data sets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exceptions import DataError


@dataclass
class Dataset:
    """A loaded data set: inputs (n, d), targets (n,) or (n, K), and what they are."""

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    source: str


def load_dataset(name: str) -> Dataset:
    """Load a data set by name (scikit-learn's bundled sets)."""
    from sklearn import datasets as skd  # noqa: PLC0415

    loaders = {
        "digits": (skd.load_digits, "classification"),
        "iris": (skd.load_iris, "classification"),
        "wine": (skd.load_wine, "classification"),
        "breast-cancer": (skd.load_breast_cancer, "classification"),
        "diabetes": (skd.load_diabetes, "regression"),
    }
    if name not in loaders:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(loaders)}")
    fn, task = loaders[name]
    X, y = fn(return_X_y=True)
    return Dataset(name, np.asarray(X, dtype=np.float64), y, task, "scikit-learn (bundled)")
