"""``boostnet bench``: time one scoring step against the plain GEMM of the same shape.

Synthetic standardised data X (n, d), a gradient G (n, K) and a pool of M unit-norm candidates.
``scoring_s`` is the median over ``repeat`` timed runs (after one warm-up, synchronised on a GPU) of
the backend's full scoring step (screen, epilogue, exact top-k re-score). ``gemm_s`` is the median
time of the GEMMs alone that the step performs: ``X @ W[chunk].T`` into the same reused buffer, chunk
by chunk (the n x M product does not fit in memory at the reference shape: 15.7 GB in float32).
"""

from __future__ import annotations

import platform
import statistics
import time

import numpy as np

from ._backend import resolve_device, synchronize
from .activations import get_activation
from .penalties import L1
from .scoring import NumpyScorer


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_bench(device="cpu", n=60000, d=784, m=65536, k=10, activation="relu", repeat=5, seed=0):
    """Time the scoring step and the plain GEMM; return one result row (dict).

    Returns
    -------
    dict
        ``device``, ``device_name``, ``shape`` ({n, d, m, k}), ``activation``, ``repeat``,
        ``scoring_s``, ``gemm_s``, ``ratio`` (= scoring_s / gemm_s) and ``tflops`` (2 n d m flop of
        the scoring step per second, in TFLOP/s).
    """
    from ._backend import gpu_status  # noqa: PLC0415

    backend = resolve_device(device)
    xp = backend.xp
    rng = np.random.default_rng(seed)
    X = xp.asarray(rng.standard_normal((n, d), dtype=np.float32))
    G = xp.asarray(rng.standard_normal((n, k)) / n)
    W = rng.standard_normal((m, d), dtype=np.float32)
    W /= np.linalg.norm(W, axis=1, keepdims=True) * np.sqrt(2.0)
    W = xp.asarray(W, dtype=xp.float64)
    c = xp.asarray(rng.standard_normal(m) / np.sqrt(2.0))
    act = get_activation(activation)
    scorer = NumpyScorer(X)
    scorer.score(W, c, G, act, L1, k=32)  # warm-up (and buffer allocation)
    synchronize(xp)
    t_score = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scorer.score(W, c, G, act, L1, k=32)
        synchronize(xp)
        t_score.append(time.perf_counter() - t0)
    Ws = W.astype(scorer.dtype)
    mc = scorer.chunk
    t_gemm = []
    for _ in range(repeat + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        for j0 in range(0, m, mc):
            j1 = min(m, j0 + mc)
            xp.matmul(scorer.X, Ws[j0:j1].T, out=scorer._buf[:, : j1 - j0])
        synchronize(xp)
        t_gemm.append(time.perf_counter() - t0)
    scoring_s = statistics.median(t_score)
    gemm_s = statistics.median(t_gemm[1:])
    name = gpu_status()[1] if backend.name == "gpu" else _cpu_name()
    return {
        "device": backend.name,
        "device_name": name,
        "shape": {"n": n, "d": d, "m": m, "k": k},
        "activation": act.name,
        "repeat": repeat,
        "scoring_s": scoring_s,
        "gemm_s": gemm_s,
        "ratio": scoring_s / gemm_s,
        "tflops": 2.0 * n * d * m / scoring_s / 1e12,
    }
