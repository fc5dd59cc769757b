"""Question 5: the cost of one greedy step as n, d and the pool size M grow (CPU).

One step = scoring a pool of M candidates (chunked float32 screen + exact top-k re-score) and the
totally corrective re-fit after adding a unit (softmax, K outputs, m active units). The script varies
one of n, d, M at a time around a base shape, on synthetic standardised data with a fixed seed, and
prints one tidy row per shape: seconds (median of --repeat) and the scoring rate in GFLOP/s
(2 n d M flop for the GEMM that dominates). ``gram s``: the same pool with its data-pair half
screened from ``K = X X^T`` (``NumpyScorer(gram=True)``, see ``boostnet.scoring``); ``--sweep d``
varies only d (with ``--n``) to find where that starts to pay (``GRAM_MIN_FEATURES``).

    python experiments/cost_per_step.py [--repeat 3] [--json]
    python experiments/cost_per_step.py --sweep d --n 1500
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from boostnet.activations import ACTIVATIONS
from boostnet.datafits import SoftmaxCrossEntropy
from boostnet.penalties import L1
from boostnet.refit import refit
from boostnet.samplers import Mixture, draw
from boostnet.scoring import NumpyScorer, transform

BASE = {"n": 4000, "d": 256, "M": 2048}
GRID = {"n": [1000, 4000, 16000], "d": [64, 256, 784], "M": [512, 2048, 8192]}
SWEEP_D = [16, 32, 64, 96, 128, 192, 256, 512]


def _median_seconds(f, repeat):
    f()  # warm-up (compilation, buffers; K for the Gram scorer)
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return float(np.median(t))


def measure(n, d, M, K=10, m=50, repeat=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, K, n)
    Y = np.eye(K)[y]
    a = np.full(n, 1.0 / n)
    act = ACTIVATIONS["relu"]
    datafit = SoftmaxCrossEntropy()
    G = datafit.raw_grad(Y, np.zeros((n, K)), a)
    scorer = NumpyScorer(X, gram=False)
    W, c, pairs = draw(Mixture(), X, G, M, rng, act, 1.0)
    s = _median_seconds(lambda: scorer.score(W, c, G, act, L1, k=32), repeat)
    gram = NumpyScorer(X, memory_budget=2**33, gram=True)
    s_gram = _median_seconds(lambda: gram.score(W, c, G, act, L1, k=32, pairs=pairs), repeat)
    # m - 1 active units, then the pool's best unit is added (as a step does)
    res = scorer.score(W, c, G, act, L1, k=32)
    Wu, cu = Mixture().sample(X, G, m - 1, rng, act, 1.0)
    Wu = np.vstack([Wu, W[res.top[:1]]])
    cu = np.concatenate([cu, c[res.top[:1]]])
    H = transform(X, Wu, cu, act)
    pen = L1(0.01 * float(L1.lambda_max(H.T @ G)))
    base = refit(H[:, :-1], Y, a, datafit, pen, np.zeros((m - 1, K)), datafit.intercept(Y, a))
    t_refit = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = refit(H, Y, a, datafit, pen, np.vstack([base.coef, np.zeros((1, K))]), base.intercept)
        t_refit.append(time.perf_counter() - t0)
    return {
        "n": n, "d": d, "M": M, "K": K, "active_units": m,
        "score_s": s, "score_gflops": 2.0 * n * d * M / s / 1e9, "score_gram_s": s_gram,
        "refit_s": float(np.median(t_refit)), "refit_iter": r.n_iter,
    }  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON row per shape")
    ap.add_argument("--sweep", choices=["grid", "d"], default="grid")
    ap.add_argument("--n", type=int, default=1500, help="rows for --sweep d")
    args = ap.parse_args()
    shapes = []
    if args.sweep == "d":
        shapes = [{**BASE, "n": args.n, "d": d} for d in SWEEP_D]
    for key, values in GRID.items() if args.sweep == "grid" else ():
        for v in values:
            shape = {**BASE, key: v}
            if shape not in shapes:
                shapes.append(shape)
    if not args.json:
        print(
            f"{'n':>6} {'d':>5} {'M':>6} {'score s':>9} {'GFLOP/s':>8} {'gram s':>8} "
            f"{'refit s':>8} {'iters':>6}"
        )
    for sh in shapes:
        row = measure(sh["n"], sh["d"], sh["M"], repeat=args.repeat)
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{row['n']:>6} {row['d']:>5} {row['M']:>6} {row['score_s']:>9.4f} "
                f"{row['score_gflops']:>8.1f} {row['score_gram_s']:>8.4f} {row['refit_s']:>8.4f} "
                f"{row['refit_iter']:>6}",
                flush=True,
            )


if __name__ == "__main__":
    main()
