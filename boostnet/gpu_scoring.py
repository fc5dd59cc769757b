"""Candidate scoring on the GPU: cuBLAS screen + one epilogue kernel per chunk, exact top-k re-score.

Design (measured facts in ``docs/design/gpu-scoring.md``):

1. Candidates are rows of ``W`` (M, d). Chunk over candidates: ``Z = X @ W[chunk].T`` with cuBLAS into
   a reused buffer, in TF32 (switched on only around this GEMM) or in FP16 (``screen="fp16"``:
   float16 inputs and output, half the bytes for the epilogue to read).
2. One epilogue kernel (:data:`EPILOGUE_SRC`, a RawModule) reads each chunk once: bias, activation,
   ``h^T G`` (K sums) and ``||h||^2`` per candidate, as deterministic per-row-block partial sums (no
   atomics: the same inputs give the same bits).
3. The top-k of the screen are re-scored exactly in float64 (:func:`boostnet.scoring.rescore_top`),
   so the chosen unit is the float64 argmax whenever the screen kept it in the top-k.

This module never imports CuPy: the array module comes from the inputs (``xp``), and the kernel is
compiled through ``xp.RawModule``. The launch is a plain callable, so the same chunk loop also runs on
NumPy arrays with a CPU build of the kernel source (the tests do that).
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np

from ._backend import get_namespace
from .activations import Activation
from .exceptions import ConfigError
from .scoring import NumpyScorer, ScoreResult, rescore_top

#: Threads per block: BX consecutive candidates (coalesced reads of a row of Z) x BY row lanes.
BX, BY = 32, 8
#: Largest number of outputs K the kernel is built for (K is a template constant).
MAX_K = 32
ACT_CODES = {"relu": 0, "sigmoid": 1, "tanh": 2, "sign": 3}

#: The epilogue kernel. Z: (n, ldz) row-major chunk of X W^T (first m columns used), c: (m,) biases,
#: G: (n, K) row-major, P: (gridDim.y, m, K + 1) partial sums over the block's rows of h * G[:, k]
#: (k < K) and h * h (k = K). T is float (TF32/FP32 screen) or unsigned short (FP16 bits). Each
#: thread handles CPT candidates (columns j0 + tx + 32 q, q < CPT: every warp load stays coalesced),
#: so each row of G it loads serves CPT activations: per Z element 1 + K / CPT loads instead of 1 + K.
EPILOGUE_SRC = r"""
#ifndef BN_EMULATE
__device__ __forceinline__ float bn_half_to_float(unsigned short u) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(u));
    return f;
}
#endif

template <typename T> __device__ __forceinline__ float bn_load(const T* p);
template <> __device__ __forceinline__ float bn_load<float>(const float* p) { return *p; }
template <> __device__ __forceinline__ float bn_load<unsigned short>(const unsigned short* p) {
    return bn_half_to_float(*p);
}

template <int ACT> __device__ __forceinline__ float bn_act(float z) {
    if (ACT == 0) return z > 0.0f ? z : 0.0f;
    if (ACT == 1) return 0.5f * (1.0f + tanhf(0.5f * z));
    if (ACT == 2) return tanhf(z);
    return z > 0.0f ? 1.0f : -1.0f;
}

template <int ACT, int K, int CPT, typename T>
__global__ void bn_epilogue(const T* __restrict__ Z, const int n, const int m, const int ldz,
                            const float* __restrict__ c, const float* __restrict__ G,
                            const int rows_per_block, float* __restrict__ P) {
    __shared__ float red[8][K + 1][32];
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int j0 = blockIdx.x * (32 * CPT) + tx;
    const int r0 = blockIdx.y * rows_per_block;
    int r1 = r0 + rows_per_block;
    if (r1 > n) r1 = n;
    float acc[CPT][K + 1];
    float cj[CPT];
    bool ok[CPT];
#pragma unroll
    for (int q = 0; q < CPT; ++q) {
        ok[q] = j0 + 32 * q < m;
        cj[q] = ok[q] ? c[j0 + 32 * q] : 0.0f;
#pragma unroll
        for (int k = 0; k <= K; ++k) acc[q][k] = 0.0f;
    }
    if (ok[0]) {
        for (int r = r0 + ty; r < r1; r += 8) {
            const float* g = G + (size_t)r * K;
            float gv[K];
#pragma unroll
            for (int k = 0; k < K; ++k) gv[k] = g[k];
            const T* zr = Z + (size_t)r * ldz + j0;
#pragma unroll
            for (int q = 0; q < CPT; ++q) {
                if (ok[q]) {
                    const float h = bn_act<ACT>(bn_load<T>(zr + 32 * q) + cj[q]);
#pragma unroll
                    for (int k = 0; k < K; ++k) acc[q][k] += h * gv[k];
                    acc[q][K] += h * h;
                }
            }
        }
    }
#pragma unroll
    for (int q = 0; q < CPT; ++q) {
#pragma unroll
        for (int k = 0; k <= K; ++k) red[ty][k][tx] = acc[q][k];
        __syncthreads();
        if (ty == 0 && ok[q]) {
            for (int k = 0; k <= K; ++k) {
                float s = 0.0f;
                for (int y = 0; y < 8; ++y) s += red[y][k][tx];
                P[((size_t)blockIdx.y * m + j0 + 32 * q) * (K + 1) + k] = s;
            }
        }
        __syncthreads();
    }
}
"""


def candidates_per_thread(K: int) -> int:
    """Default CPT for K outputs: more candidates per thread while their accumulators (CPT x (K + 1)
    registers) stay small."""
    return 4 if K <= 12 else 2 if K <= 24 else 1


def check_cpt(cpt):
    """Return ``cpt`` (``None``, 1, 2 or 4) or raise ConfigError."""
    if cpt not in (None, 1, 2, 4):
        raise ConfigError(f"cpt must be 1, 2 or 4 candidates per thread, got {cpt!r}")
    return cpt


def kernel_name(act_code: int, K: int, half: bool, cpt: int = 1) -> str:
    """The template instance of the epilogue for an activation code, K outputs, candidates per
    thread and Z's type."""
    return f"bn_epilogue<{act_code}, {K}, {cpt}, {'unsigned short' if half else 'float'}>"


def grid_for(n: int, m: int, rows_per_block: int, cpt: int = 1) -> tuple:
    """Launch grid (blocks over candidates, blocks over rows) and block shape."""
    return (math.ceil(m / (BX * cpt)), math.ceil(n / rows_per_block), 1), (BX, BY, 1)


class CupyEpilogue:
    """The epilogue compiled with ``xp.RawModule``, one module per (activation, K, CPT, Z type)."""

    def __init__(self, xp):
        self.xp = xp
        self._fns = {}

    def __call__(self, Z, c, G, P, act_code: int, rows_per_block: int, cpt: int = 1):
        xp = self.xp
        n, m = Z.shape[0], Z.shape[1]
        K = G.shape[1]
        half = Z.dtype == xp.float16
        key = (act_code, K, half, cpt)
        fn = self._fns.get(key)
        if fn is None:
            name = kernel_name(act_code, K, half, cpt)
            mod = xp.RawModule(code=EPILOGUE_SRC, options=("-std=c++14",), name_expressions=[name])
            fn = self._fns[key] = mod.get_function(name)
        grid, block = grid_for(n, m, rows_per_block, cpt)
        Zv = Z.view(xp.uint16) if half else Z
        fn(
            grid,
            block,
            (
                Zv,
                np.int32(n),
                np.int32(m),
                np.int32(Z.strides[0] // Z.itemsize),
                c,
                G,
                np.int32(rows_per_block),
                P,
            ),
        )


_TF32_LOCK = threading.Lock()


@contextlib.contextmanager
def tf32_scope(xp):
    """TF32 compute type for float32 GEMMs inside, the previous one restored after (CuPy reads
    ``CUPY_TF32`` once per process; this goes through its process-wide compute-type setting, so
    the scope holds a lock). No-op on NumPy."""
    if xp is np:
        yield
        return
    rl = xp._core._routines_linalg
    with _TF32_LOCK:
        old = rl.get_compute_type(np.float32)
        rl.set_compute_type(np.float32, getattr(rl, "COMPUTE_TYPE_TF32", 7))
        try:
            yield
        finally:
            rl.set_compute_type(np.float32, old)


def _row_norm_max(A, xp, rows=8192) -> float:
    """Largest row norm of A (n, d), in float32 blocks of rows (no n x d temporary)."""
    best = 0.0
    for i in range(0, A.shape[0], rows):
        B = xp.asarray(A[i : i + rows], dtype=xp.float32)
        best = max(best, float(xp.sqrt((B * B).sum(axis=1)).max()))
    return best


def _free_bytes(xp) -> int:
    if xp is np:
        return 1 << 30
    free, _ = xp.cuda.runtime.memGetInfo()
    return int(free + xp.get_default_memory_pool().free_bytes())


def _is_oom(xp, exc) -> bool:
    if xp is np:
        return isinstance(exc, MemoryError)
    return isinstance(exc, (xp.cuda.memory.OutOfMemoryError, MemoryError))


class GpuScorer:
    """Chunked GEMM + epilogue scorer (CuPy arrays; NumPy arrays with an emulated epilogue).

    Parameters
    ----------
    X : array, shape (n, d)
        Training inputs (float64 on the device; float32 and, for FP16 screening, float16 copies are
        kept).
    screen : {"tf32", "fp16", "fp32"}
        Precision of the screening GEMM. FP16 falls back to TF32 for a pool whose inputs or
        ``|z| <= ||x|| ||w||`` could exceed 60000 (float16's range ends at 65504).
    chunk : int, optional
        Candidates per chunk; default: from free device memory (a quarter of it for the buffer),
        a multiple of 32 between 256 and 16384.
    epilogue : callable, optional
        ``epilogue(Z, c, G, P, act_code, rows_per_block, cpt)``; default: the CuPy RawModule kernel.
    rows_per_block : int
        Rows of Z each thread block reduces (partials P: ``ceil(n / rows_per_block)`` per candidate).
    cpt : {1, 2, 4}, optional
        Candidates per kernel thread; default :func:`candidates_per_thread` of K.
    """

    device = "gpu"

    def __init__(self, X, screen="tf32", chunk=None, epilogue=None, rows_per_block=2048, cpt=None):
        xp = get_namespace(X)
        if screen not in ("tf32", "fp16", "fp32"):
            raise ConfigError(f"screen must be 'tf32', 'fp16' or 'fp32', got {screen!r}")
        self.cpt = check_cpt(cpt)
        self.xp = xp
        self.X64 = xp.ascontiguousarray(X, dtype=xp.float64)
        self.X = self.X64.astype(xp.float32)
        self.screen = screen
        self._X16 = None
        self.x_norm_max = _row_norm_max(self.X, xp)
        self.rows_per_block = int(rows_per_block)
        self._epilogue = epilogue if epilogue is not None else CupyEpilogue(xp)
        n = self.X.shape[0]
        if chunk is None:
            chunk = min(16384, max(256, _free_bytes(xp) // 4 // max(n * 4, 1)))
        self.chunk = int(max(BX, chunk // BX * BX))
        self._buf = None
        self._fallback = None
        self.X_fast = self.X  # the refinement's ascent runs in float32 (see NumpyScorer.X_fast)

    @property
    def X16(self):
        if self._X16 is None:
            self._X16 = self.X.astype(self.xp.float16)
        return self._X16

    def _buffer(self, size: int, dtype):
        xp = self.xp
        if self._buf is None or self._buf.size < size or self._buf.dtype != dtype:
            self._buf = None
            self._buf = xp.empty(size, dtype=dtype)
        return self._buf

    def score(
        self, W, c, G, activation: Activation, penalty, k: int = 32, pairs=None
    ) -> ScoreResult:
        """Score every candidate (screen) and re-score the top ``k`` exactly (float64).

        Parameters
        ----------
        W : array, shape (M, d)
        c : array, shape (M,)
        G : array, shape (n, K), float64
        activation : Activation
        penalty : Penalty (its ``dual_norm`` reduces ``h^T G``)
        k : int
        pairs : PairRows, optional
            Not used: on the card the GEMM screens data-pair candidates as fast as ``K = X X^T``
            would (the CPU scorer reads them from ``K``).
        """
        xp = self.xp
        if G.shape[1] > MAX_K:  # the kernel is built for K <= 32: the plain chain does the rest
            if self._fallback is None:
                self._fallback = NumpyScorer(self.X64, dtype="float32")
            return self._fallback.score(W, c, G, activation, penalty, k)
        while True:
            oom = False
            try:
                scores = self._screen(W, c, G, activation, penalty)
                break
            except Exception as exc:
                if not _is_oom(xp, exc) or self.chunk <= BX:
                    raise
                oom = True
            if oom:  # outside the except block: the failed frame's arrays are released by now
                self._buf = None
                if xp is not np:
                    xp.get_default_memory_pool().free_all_blocks()
                self.chunk = max(BX, self.chunk // 2 // BX * BX)
        return rescore_top(self.X64, W, c, G, scores, activation, penalty, k)

    def _screen(self, W, c, G, activation, penalty):
        xp = self.xp
        n = self.X.shape[0]
        M = W.shape[0]
        K = G.shape[1]
        code = ACT_CODES[activation.name]
        half = self.screen == "fp16"
        if half:  # float16 ends at 65504: inputs and every z = x . w must stay below it
            w_max = _row_norm_max(W, xp)
            half = max(self.x_norm_max, w_max, self.x_norm_max * w_max) < 60000.0
        X = self.X16 if half else self.X
        dt = xp.float16 if half else xp.float32
        Ws = xp.ascontiguousarray(W, dtype=dt)
        cs = xp.ascontiguousarray(c, dtype=xp.float32)
        G32 = xp.ascontiguousarray(G, dtype=xp.float32)
        mc = min(self.chunk, max(M, 1))
        buf = self._buffer(n * mc, dt)
        nb = math.ceil(n / self.rows_per_block)
        P = xp.empty((nb, mc, K + 1), dtype=xp.float32)
        S = xp.empty((M, K + 1), dtype=xp.float32)
        tf32 = self.screen != "fp32" and not half  # FP16 falls back to TF32
        cpt = self.cpt or candidates_per_thread(K)
        for j0 in range(0, M, mc):
            j1 = min(M, j0 + mc)
            Z = buf[: n * (j1 - j0)].reshape(n, j1 - j0)
            with tf32_scope(xp) if tf32 else contextlib.nullcontext():
                xp.matmul(X, Ws[j0:j1].T, out=Z)
            Pj = P if j1 - j0 == mc else xp.empty((nb, j1 - j0, K + 1), dtype=xp.float32)
            self._epilogue(Z, cs[j0:j1], G32, Pj, code, self.rows_per_block, cpt)
            S[j0:j1] = Pj.sum(axis=0)
        return penalty.dual_norm(S[:, :K])
