"""The CPU screen of one pool against the SGEMM of the same pool, on the speed suite's sets.

For each set (its training split, standardised as in ``speed_suite.py``) one pool of
``--candidates`` units is drawn by the default sampler (seeded) against a random gradient with the
set's number of outputs, and timed two ways, interleaved, median of the repetitions:

- ``SGEMM``: the product ``[X | 1] [W | c]^T`` of the whole pool in float32, in the faster of its
  two layouts (``(n, M)`` or ``(M, n)``): the arithmetic floor of a screen that multiplies by ``X``;
- ``screen``: ``NumpyScorer.score`` (chunked product, activation, ``h^T G``, data pairs from
  ``X X^T`` where the scorer uses it, exact re-scoring of the top 32).

The ratio screen / SGEMM is the figure to compare across machines: below 1 where the data pairs
are read from ``X X^T`` instead of multiplied (Fashion-MNIST), a few times 1 where the screen's
passes over the chunk cost more than the product of few features.

    python experiments/screen_vs_sgemm.py                        # every set but Fashion: ~20 s
    python experiments/screen_vs_sgemm.py --sets c26 fashion-10k
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed_suite  # noqa: E402

from boostnet.activations import get_activation  # noqa: E402
from boostnet.penalties import get_penalty  # noqa: E402
from boostnet.samplers import draw, get_sampler  # noqa: E402
from boostnet.scoring import NumpyScorer  # noqa: E402


def _median_ms(fns: dict, reps: int) -> dict:
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            f()  # (a warm call: each timing follows one of its own kind)
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def measure(name: str, candidates: int, seed: int) -> dict:
    task, Xtr, ytr, _, _ = speed_suite.split(name)
    X = np.asarray(Xtr, dtype=np.float64)
    n, d = X.shape
    classes = len(np.unique(ytr)) if task == "classification" else 1
    K = classes if classes > 2 else 1
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, K))
    scorer = NumpyScorer(X)
    act = get_activation("relu")
    pen = get_penalty("group_l1" if K > 2 else "l1", 0.1)
    W, c, pairs = draw(get_sampler("mixture"), X, G, candidates, rng, act, 1.0)
    W1 = np.ascontiguousarray(np.concatenate([W, c[:, None]], axis=1), dtype=np.float32)
    Z = np.empty((n, candidates), dtype=np.float32)
    Zt = np.empty((candidates, n), dtype=np.float32)
    fns = {
        "gemm_rows": lambda: np.matmul(scorer.X1, W1.T, out=Z),
        "gemm_units": lambda: np.matmul(W1, scorer.X1.T, out=Zt),
        "screen": lambda: scorer.score(W, c, G, act, pen, k=32, pairs=pairs),
    }
    reps = max(5, int(3000 / (n * d / 1000 + 50)))
    ms = _median_ms(fns, reps)
    gemm = min(ms["gemm_rows"], ms["gemm_units"])
    return {"data": name, "n": n, "d": d, "K": K, "sgemm_ms": gemm, "screen_ms": ms["screen"],
            "ratio": ms["screen"] / gemm, "pairs_from_gram": scorer.uses_gram}  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = [s for s in speed_suite.SETS if s != "fashion-10k"]
    parser.add_argument("--sets", nargs="*", default=default, choices=list(speed_suite.SETS))
    parser.add_argument("--candidates", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"BLAS: {speed_suite.provenance()['blas']}")
    print("| data (n x d, K) | SGEMM of the pool, ms | screen, ms | screen / SGEMM |")
    print("|---|---|---|---|")
    for name in args.sets:
        r = measure(name, args.candidates, args.seed)
        pairs = ", pairs from X X^T" if r["pairs_from_gram"] else ""
        print(
            f"| {name} ({r['n']} x {r['d']}, {r['K']}{pairs}) | {r['sgemm_ms']:.2f} | "
            f"{r['screen_ms']:.2f} | {r['ratio']:.2f} |"
        )


if __name__ == "__main__":
    main()
