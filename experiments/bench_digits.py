"""Benchmark: the default BoostNetClassifier against MLPClassifier(100) on scikit-learn's digits.

Split: stratified 75/25, random_state 0, standardised on the training part. Prints test accuracy,
units, stop reason and fit time for both (and, with --seeds N, the spread over estimator seeds
0..N-1 on the same split). Target (issue 2): >= 0.98 test accuracy with <= 120 units, stopped by
certificate, fit <= 10 s on a 2-core machine.

    python experiments/bench_digits.py [--seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import boostnet
from boostnet import BoostNetClassifier


def split():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def run(name, est, Xtr, Xte, ytr, yte, seed):
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    fit = time.perf_counter() - t0
    units = getattr(est, "n_units_", None)
    if units is None:
        units = est.hidden_layer_sizes[0]
    return {
        "method": name,
        "seed": seed,
        "test_accuracy": float(est.score(Xte, yte)),
        "units": int(units),
        "stop_reason": getattr(est, "stop_reason_", f"{est.n_iter_} epochs"),
        "fit_time_s": round(fit, 3),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1, help="estimator seeds 0..N-1")
    ap.add_argument("--json", action="store_true", help="one JSON row per run")
    args = ap.parse_args()
    Xtr, Xte, ytr, yte = split()
    rows = []
    for seed in range(args.seeds):
        rows.append(
            run("boostnet", BoostNetClassifier(random_state=seed), Xtr, Xte, ytr, yte, seed)
        )
        rows.append(
            run(
                "mlp-100",
                MLPClassifier((100,), max_iter=500, random_state=seed),
                Xtr,
                Xte,
                ytr,
                yte,
                seed,
            )
        )
    env = {
        "boostnet": boostnet.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    if args.json:
        for r in rows:
            print(json.dumps({**r, **env}))
        return
    print(f"digits 75/25 stratified split (random_state 0), standardised; {env}")
    print(f"{'method':<10} {'seed':>4} {'test acc':>9} {'units':>6} {'fit s':>7}  stop")
    for r in rows:
        print(
            f"{r['method']:<10} {r['seed']:>4} {r['test_accuracy']:>9.4f} {r['units']:>6} "
            f"{r['fit_time_s']:>7.2f}  {r['stop_reason']}"
        )
    if args.seeds > 1:
        for m in ("boostnet", "mlp-100"):
            acc = np.array([r["test_accuracy"] for r in rows if r["method"] == m])
            t = np.array([r["fit_time_s"] for r in rows if r["method"] == m])
            print(
                f"{m:<10} mean acc {acc.mean():.4f} +- {acc.std(ddof=1):.4f}, "
                f"mean fit {t.mean():.2f} s (max {t.max():.2f})"
            )


if __name__ == "__main__":
    main()
