"""``boostnet bench``: time one scoring step against the plain GEMM of the same shape.

Synthetic standardised data X (n, d), a gradient G (n, K) and a pool of M unit-norm candidates.
``scoring_s`` is the median over ``repeat`` timed runs (after one warm-up, synchronised on a GPU) of
the backend's full scoring step (screen, epilogue, exact top-k re-score). ``gemm_s`` is the median
time of float32 GEMMs ``X @ W[chunk].T`` over the same chunks into a reused buffer (TF32 tensor cores
on the GPU, whatever the screen's precision; the n x M product does not fit in memory at the
reference shape: 15.7 GB in float32).
"""

from __future__ import annotations

import contextlib
import platform
import statistics
import time

import numpy as np

from .._backend import resolve_device, synchronize
from ..activations import get_activation
from ..gpu_scoring import candidates_per_thread, check_cpt, tf32_scope
from ..penalties import L1
from ..scorers import make_scorer


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line of ``/proc/cpuinfo`` (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows. Fit
    times, and their ratios to another method's, depend on it: results files record it."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _cpu_flags() -> set:
    return set((_cpuinfo("flags") or "").split())


#: OpenBLAS kernel sets that use no AVX-512 (what it falls back to on a CPU it does not know).
_AVX2_KERNELS = {"haswell", "zen", "sandybridge", "nehalem", "prescott", "core2"}


def blas_libraries() -> list:
    """One line per BLAS library loaded in this process: API, version, kernel set, threads."""
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    rows = []
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            arch = lib.get("architecture")
            rows.append(
                f"{lib.get('internal_api')} {lib.get('version')}"
                + (f", {arch} kernels" if arch else "")
                + f", {lib.get('num_threads')} threads ({lib['filepath'].rsplit('/', 1)[-1]})"
            )
    return rows


def blas_hint() -> str | None:
    """A one-line hint when an OpenBLAS runs AVX2 kernels on a CPU with AVX-512, else None.

    OpenBLAS picks its kernels from the CPU model; one it does not know (seen: OpenBLAS 0.3.31 on
    AMD Zen 5) gets its AVX2 (Haswell) kernels, at half the speed of the AVX-512 ones on the same
    cores (float32 GEMM 206 -> 400 GFLOP/s on 2 Zen 5 cores; boostnet's Fashion-MNIST fit 101 ->
    62 s, the MLP's 10.9 -> 7.4 s). The kernels are chosen when the library loads, so the variable
    must be set before Python starts.
    """
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    if "avx512f" not in _cpu_flags():
        return None
    for lib in threadpool_info():
        arch = str(lib.get("architecture") or "").lower()
        if lib.get("internal_api") == "openblas" and arch in _AVX2_KERNELS:
            return (
                f"OpenBLAS runs its {lib.get('architecture')} (AVX2) kernels on this AVX-512 CPU: "
                "start Python with OPENBLAS_CORETYPE=SKYLAKEX for about twice the BLAS speed"
            )
    return None


def random_pool(n, d, M, K, seed, activation, unit_scale=3.0):
    """A random scoring problem: ``X`` (n, d), ``G`` (n, K), and M candidates ``W`` (M, d), ``c``
    (M,) whose hyperplanes pass through data points, normalised as the samplers do (unit norm for
    relu/sign, norm in (0.1 R, R] for sigmoid/tanh). Float64 NumPy arrays, reproducible from
    ``seed``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    G = rng.standard_normal((n, K)) / n
    W = rng.standard_normal((M, d))
    c = -(X[rng.integers(0, n, M)] * W).sum(axis=1)
    norm = np.sqrt((W * W).sum(axis=1) + c * c)
    act = get_activation(activation)
    scale = 1.0 if act.homogeneous else unit_scale * rng.uniform(0.1, 1.0, M)
    return X, G, W * (scale / norm)[:, None], c * scale / norm


def run_bench(
    device="cpu",
    n=60000,
    d=784,
    m=65536,
    k=10,
    activation="relu",
    repeat=5,
    seed=0,
    dtype="float32",
    cpt=None,
):
    """Time the scoring step and the plain GEMM; return one result row (dict).

    ``cpt`` sets the GPU epilogue's candidates per thread (default: chosen from ``k``).

    Returns
    -------
    dict
        ``device``, ``device_name``, ``shape`` ({n, d, m, k}), ``activation``, ``repeat``,
        ``scoring_s``, ``gemm_s``, ``ratio`` (= scoring_s / gemm_s) and ``tflops`` (2 n d m flop of
        the scoring step per second, in TFLOP/s).
    """
    from .._backend import gpu_status  # noqa: PLC0415

    check_cpt(cpt)
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
    scorer = make_scorer(X, dtype=dtype, cpt=cpt)
    scorer.score(W, c, G, act, L1, k=32)  # warm-up (kernel compilation, buffer allocation)
    synchronize(xp)
    t_score = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scorer.score(W, c, G, act, L1, k=32)
        synchronize(xp)
        t_score.append(time.perf_counter() - t0)
    # the baseline: float32 GEMMs of the same chunks (TF32 tensor cores on the GPU)
    X32 = X.astype(xp.float32)
    W32 = W.astype(xp.float32)
    mc = scorer.chunk
    buf = xp.empty((n, min(mc, m)), dtype=xp.float32)
    tf32 = backend.name == "gpu"
    t_gemm = []
    for _ in range(repeat + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        for j0 in range(0, m, mc):
            j1 = min(m, j0 + mc)
            out = (
                buf[:, : j1 - j0] if j1 - j0 == buf.shape[1] else xp.empty((n, j1 - j0), xp.float32)
            )
            with tf32_scope(xp) if tf32 else contextlib.nullcontext():
                xp.matmul(X32, W32[j0:j1].T, out=out)
        synchronize(xp)
        t_gemm.append(time.perf_counter() - t0)
    scoring_s = statistics.median(t_score)
    gemm_s = statistics.median(t_gemm[1:])
    name = gpu_status()[1] if backend.name == "gpu" else cpu_name()
    return {
        "device": backend.name,
        "device_name": name,
        "shape": {"n": n, "d": d, "m": m, "k": k},
        "activation": act.name,
        "screen": getattr(scorer, "screen", str(getattr(scorer, "dtype", dtype))),
        "cpt": (scorer.cpt or candidates_per_thread(k)) if hasattr(scorer, "cpt") else None,
        "repeat": repeat,
        "scoring_s": scoring_s,
        "gemm_s": gemm_s,
        "ratio": scoring_s / gemm_s,
        "tflops": 2.0 * n * d * m / scoring_s / 1e12,
    }
