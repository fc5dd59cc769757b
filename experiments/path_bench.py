"""Fixed default lambda vs alpha="auto" vs the CV estimator, and the cost of a whole path.

For each data set (digits, wine, breast-cancer, iris: accuracy; diabetes: R^2) runs an outer K-fold
cross-validation (stratified for classification, standardised inside each fold, seed 0) of:

- ``fixed``: the plain estimator with ``alpha="ratio"`` and the default ``alpha_ratio`` (0.0075);
- ``auto`` / ``auto-metric``: ``alpha="auto"`` (one path on 90 % of the fold's training part, chosen
  by the held-out loss / by the held-out accuracy or R^2; ``path_patience`` 5 unless --patience);
- ``cv``: ``BoostNetClassifierCV`` / ``BoostNetRegressorCV`` (inner 5-fold CV over the path).

and prints the mean test score, units and fit time. Then, on the first outer fold, it times a whole
path of ``n_alphas`` lambdas against one cold fit at the path's smallest lambda.

    python experiments/path_bench.py [--folds 5] [--datasets digits,wine,...] [--jobs 2]
        [--methods fixed,auto,auto-metric,cv] [--seed 0] [--out rows.csv]
"""

from __future__ import annotations

import argparse
import functools
import platform
import time

import numpy as np
from _rows import provenance, write_rows
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

import boostnet
from boostnet import (
    BoostNetClassifier,
    BoostNetClassifierCV,
    BoostNetRegressor,
    BoostNetRegressorCV,
)
from boostnet.app.datasets import load_data

DATASETS = ["digits", "wine", "breast-cancer", "iris", "diabetes"]
METHODS = ["fixed", "auto", "auto-metric", "cv"]


def make(method, clf, seed, jobs, patience=0):
    base = BoostNetClassifier if clf else BoostNetRegressor
    cv = BoostNetClassifierCV if clf else BoostNetRegressorCV
    if patience != 0:  # 0: the estimator's default
        base = functools.partial(base, path_patience=patience)
    if method == "fixed":
        return base(alpha="ratio", random_state=seed)
    if method == "auto":
        return base(alpha="auto", random_state=seed)
    if method == "auto-metric":
        return base(alpha="auto", val_criterion="metric", random_state=seed)
    if method == "cv":
        return cv(random_state=seed, n_jobs=jobs)
    raise SystemExit(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--methods", default=",".join(METHODS), help="empty: only the path cost")
    ap.add_argument(
        "--patience",
        type=int,
        default=0,
        help="path_patience of the auto methods (0: the default, -1: the whole grid)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="n_jobs of the CV estimator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-path-cost", action="store_true")
    ap.add_argument("--out", default=None, help="CSV file for the tidy rows (one per fit)")
    args = ap.parse_args()
    rows, prov = [], provenance()
    print(
        f"# boostnet {boostnet.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, seed {args.seed}, {args.folds}-fold outer CV"
    )
    print(f"{'data':<14} {'method':<12} {'score':>16} {'units':>7} {'fit s':>8} {'alpha/lmax':>11}")
    for name in args.datasets.split(","):
        ds = load_data(name)
        clf = ds.task == "classification"
        split = (StratifiedKFold if clf else KFold)(args.folds, shuffle=True, random_state=0)
        folds = list(split.split(ds.X, ds.y))
        for method in [m for m in args.methods.split(",") if m]:
            res = []
            for k, (tr, te) in enumerate(folds):
                sc = StandardScaler().fit(ds.X[tr])
                Xtr, Xte = sc.transform(ds.X[tr]), sc.transform(ds.X[te])
                pat = None if args.patience < 0 else args.patience
                est = make(method, clf, args.seed, args.jobs, pat)
                t0 = time.perf_counter()
                est.fit(Xtr, ds.y[tr])
                t = time.perf_counter() - t0
                ratio = est.alpha_ / est.lambda_max_ if est.lambda_max_ else float("nan")
                row = {
                    "data": name,
                    "method": method,
                    "fold": k,
                    "score": est.score(Xte, ds.y[te]),
                    "units": est.n_units_,
                    "fit_s": t,
                    "alpha": est.alpha_,
                    "ratio": ratio,
                    "seed": args.seed,
                    **prov,
                }
                res.append(row)
                rows.append(row)
            s = np.array([r["score"] for r in res])
            print(
                f"{name:<14} {method:<12} {s.mean():.4f} +- {s.std():.4f} "
                f"{np.mean([r['units'] for r in res]):>7.1f} "
                f"{np.mean([r['fit_s'] for r in res]):>8.2f} "
                f"{np.median([r['ratio'] for r in res]):>11.4g}",
                flush=True,
            )
        if not args.no_path_cost:
            tr, _ = folds[0]
            X = StandardScaler().fit_transform(ds.X[tr])
            base = BoostNetClassifier if clf else BoostNetRegressor
            est = base(alpha="ratio", random_state=args.seed)
            t0 = time.perf_counter()
            p = est.path(X, ds.y[tr])
            t_path = time.perf_counter() - t0
            cold = base(alpha=p.alphas[-1], random_state=args.seed)
            t0 = time.perf_counter()
            cold.fit(X, ds.y[tr])
            t_cold = time.perf_counter() - t0
            obj_cold = cold.history_[-1].objective
            print(
                f"{name:<14} path of {len(p.points)} lambdas: {t_path:.2f} s, "
                f"{p.points[-1].n_units} units, objective {p.points[-1].objective:.5g} | "
                f"one cold fit at the smallest lambda: {t_cold:.2f} s, {cold.n_units_} units, "
                f"objective {obj_cold:.5g} | ratio {t_path / t_cold:.2f}",
                flush=True,
            )
    if args.out and rows:
        write_rows(args.out, rows)


if __name__ == "__main__":
    main()
