"""One training run: load, split, standardise, fit, evaluate (used by ``boostnet train``)."""

from __future__ import annotations

import time

from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from .datasets import load_dataset
from .estimators import BoostNetClassifier, BoostNetRegressor


def run_train(data="digits", test_size=0.25, seed=0, params=None, callbacks=None) -> dict:
    """Train on a named data set with a stratified split; return the metrics as a dict."""
    ds = load_dataset(data)
    clf = ds.task == "classification"
    Xtr, Xte, ytr, yte = train_test_split(
        ds.X, ds.y, test_size=test_size, random_state=seed, stratify=ds.y if clf else None
    )
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    cls = BoostNetClassifier if clf else BoostNetRegressor
    est = cls(random_state=seed, callbacks=callbacks, **(params or {}))
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    fit_time = time.perf_counter() - t0
    name = "accuracy" if clf else "r2"
    return {
        "data": data,
        f"train_{name}": float(est.score(Xtr, ytr)),
        f"test_{name}": float(est.score(Xte, yte)),
        "units": est.n_units_,
        "stop_reason": est.stop_reason_,
        "fit_time_s": fit_time,
        "alpha": est.alpha_,
        "device": est.device_,
    }
