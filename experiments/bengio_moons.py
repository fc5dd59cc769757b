"""Bengio et al. (2005), "Convex Neural Networks", double moon: exact against sampled search.

Setting of the paper: 100 training points, squared loss on +-1 labels, sign hidden units added one
at a time, lambda = 1 on the summed loss. boostnet minimises ``mean(0.5 (y - f)^2) + alpha ||w||_1``,
so lambda = 1 is ``alpha = 0.01`` if the paper's loss is ``0.5 sum (y - f)^2`` and ``alpha = 0.005``
if it is ``sum (y - f)^2``; the objective is printed on the paper's (summed) scale: 100 resp. 200
times boostnet's.

With the default separation (d = 1) and no noise the two moons are linearly separable and one unit
is optimal; the table runs non-separable versions (negative separation, gaussian noise) too. For
each setting: ``errors of the best line`` is the fewest training errors of one linear boundary,
found exactly by the 2-D exact search (``max |h^T y| = n - 2 errors``; 0: separable), then the
objective, the units and the test error (10000 test points) of a fit with the exact oracle (every
step adds the best of all sign units) and with sampled pools of 2048 and 64 candidates, mean over
the seeds.

    python experiments/bengio_moons.py [--seeds 10] [--n-test 10000] [--loss half|full]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.preprocessing import StandardScaler

from boostnet import BoostNetRegressor
from boostnet.app.datasets import load_data
from boostnet.oracle import exact_search
from boostnet.penalties import L1

#: (separation d, noise): the paper's data are not fully specified; d = 1, noise 0 is the default.
SETTINGS = [(1.0, 0.0), (-2.0, 0.0), (-4.0, 0.0), (-4.0, 1.0), (-6.0, 0.0), (0.0, 2.0)]
#: (name, estimator parameters)
METHODS = [
    ("exact", {"oracle": "exact"}),
    ("sampled-2048", {"oracle": "sampled", "n_candidates": 2048}),
    ("sampled-64", {"oracle": "sampled", "n_candidates": 64}),
]
PAPER = {"exact": (8.09, 3.0, 5.3), "approximate": (17.11, 5.5, 3.68)}


def _data(d, noise, seed, n_train, n_test):
    ds = load_data("double-moon", n_samples=n_train + n_test, noise=noise, seed=seed, separation=d)
    X, y = ds.X, 2.0 * ds.y - 1.0
    # the points come shuffled: the first n_train / 2 of each class are the training part
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y < 0)
    tr = np.concatenate([pos[: n_train // 2], neg[: n_train - n_train // 2]])
    te = np.setdiff1d(np.arange(y.size), tr)
    sc = StandardScaler().fit(X[tr])
    return sc.transform(X[tr]), y[tr], sc.transform(X[te]), y[te]


def _best_line_errors(X, y):
    """Fewest training errors of one linear boundary (exact: the best sign unit against y)."""
    _, _, s = exact_search(X, y[:, None], "sign", L1)
    return int(round((y.size - s[0]) / 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--n-train", type=int, default=100)
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument(
        "--loss",
        choices=["half", "full"],
        default="half",
        help="the paper's loss: 0.5 sum (y - f)^2 (half) or sum (y - f)^2 (full); lambda = 1",
    )
    args = ap.parse_args(argv)
    # boostnet's objective times `scale` is the paper's summed objective with lambda = 1
    scale = args.n_train * (1.0 if args.loss == "half" else 2.0)
    alpha = 1.0 / scale
    t0 = time.perf_counter()
    print(f"loss {args.loss}: alpha = {alpha:g}, objective x {scale:g}; {args.seeds} seeds; "
          f"{args.n_train} training / {args.n_test} test points")  # fmt: skip
    head = f"{'d':>5} {'noise':>5} {'line errs':>9}  {'method':<13} {'objective':>9} "
    print(head + f"{'units':>6} {'test err %':>10} {'steps':>6}")
    for d, noise in SETTINGS:
        rows = {name: [] for name, _ in METHODS}
        line = []
        for seed in range(args.seeds):
            Xtr, ytr, Xte, yte = _data(d, noise, seed, args.n_train, args.n_test)
            line.append(_best_line_errors(Xtr, ytr))
            for name, params in METHODS:
                est = BoostNetRegressor(
                    activation="sign", alpha=alpha, units_per_step=1, max_units=100,
                    random_state=seed, **params,
                )  # fmt: skip
                est.fit(Xtr, ytr)
                err = float(np.mean(np.where(est.predict(Xte) > 0, 1.0, -1.0) != yte))
                obj = est.history_[-1].objective * scale
                rows[name].append((obj, est.n_units_, 100 * err, len(est.history_) - 1))
        for k, (name, _) in enumerate(METHODS):
            o, u, e, st = np.mean(rows[name], axis=0)
            pre = f"{d:5g} {noise:5g} {np.mean(line):9.1f}" if k == 0 else " " * 21
            print(f"{pre}  {name:<13} {o:9.2f} {u:6.1f} {e:10.2f} {st:6.1f}")
    for name, (o, u, e) in PAPER.items():
        print(f"{'paper':>21}  {name:<13} {o:9.2f} {u:6.1f} {e:10.2f}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
