"""How the default lambda was chosen: cross-validated score and units against alpha_ratio.

For each bundled scikit-learn data set (digits, iris, wine, breast-cancer: accuracy; diabetes: R^2)
and each alpha_ratio (lambda as a fraction of lambda_max), runs a stratified K-fold cross-validation
(standardised inside each fold, seed 0) and prints mean score, mean units and mean fit time.

    python experiments/choose_alpha.py [--folds 3] [--ratios 0.003,0.0075,0.01,0.03,0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from boostnet import BoostNetClassifier, BoostNetRegressor
from boostnet.app.datasets import load_data

DATASETS = ["digits", "iris", "wine", "breast-cancer", "diabetes"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--ratios", default="0.003,0.0075,0.01,0.03,0.1")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    args = ap.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    print(f"{'data':<14} {'alpha_ratio':>11} {'score':>14} {'units':>7} {'fit s':>7}")
    for name in args.datasets.split(","):
        ds = load_data(name)
        clf = ds.task == "classification"
        cv = (StratifiedKFold if clf else KFold)(args.folds, shuffle=True, random_state=0)
        for r in ratios:
            scores, units, times = [], [], []
            for tr, te in cv.split(ds.X, ds.y):
                est = (BoostNetClassifier if clf else BoostNetRegressor)(
                    alpha="ratio", alpha_ratio=r, random_state=0
                )
                pipe = make_pipeline(StandardScaler(), est)
                t0 = time.perf_counter()
                pipe.fit(ds.X[tr], ds.y[tr])
                times.append(time.perf_counter() - t0)
                scores.append(pipe.score(ds.X[te], ds.y[te]))
                units.append(est.n_units_)
            metric = "acc" if clf else "R2"
            print(
                f"{name:<14} {r:>11g} {metric} {np.mean(scores):.4f}+-{np.std(scores):.3f} "
                f"{np.mean(units):>7.1f} {np.mean(times):>7.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
