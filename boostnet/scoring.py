"""Candidate scoring: the hot loop (CPU backend).

For candidate units ``(w_j, c_j)`` (rows of ``W``, shape (M, d)) the score is

    score_j = dual_norm(h_j^T G),    h_j = act(X w_j + c_j),

with ``G`` (n x K) the loss gradient at the current model. A unit can lower the objective iff its score
exceeds lambda.

:class:`NumpyScorer` screens all candidates in float32 (by default), chunked over candidates so that the
n x Mc activation buffer stays within a memory budget, applying bias and activation in place (one pass
over the chunk, see ``docs/design/gpu-scoring.md``, CPU section), then re-scores the top-k exactly in
float64 so that the chosen unit is the float64 argmax whenever the screen kept it in the top-k.
The GPU backend implements the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._backend import get_namespace, to_numpy
from .activations import Activation


@dataclass
class ScoreResult:
    """Scores of one pool.

    Attributes
    ----------
    scores : array, shape (M,)
        Screening scores of every candidate (scoring dtype, on the scorer's device).
    top : ndarray of int, shape (k,)
        Indices of the k best candidates, best first by exact score (host).
    top_scores : ndarray of float64, shape (k,)
        Their exact (float64) scores, in the same order (host).
    """

    scores: object
    top: np.ndarray
    top_scores: np.ndarray


def transform(X, W, c, activation: Activation):
    """Hidden activations ``H = act(X W^T + c)``.

    Parameters
    ----------
    X : array, shape (n, d)
    W : array, shape (m, d)
    c : array, shape (m,)
    activation : Activation

    Returns
    -------
    H : array, shape (n, m), dtype of ``X``.
    """
    Z = X @ W.T.astype(X.dtype, copy=False)
    Z += c.astype(X.dtype, copy=False)
    return activation(Z, out=Z)


def exact_scores(X, W, c, G, activation: Activation, penalty):
    """Scores of a few units, computed directly in the dtype of ``X`` (float64 for the reference).

    Returns an array of shape (q,) for ``W`` (q, d), ``c`` (q,), ``G`` (n, K).
    """
    H = transform(X, W, c, activation)
    return penalty.dual_norm(H.T @ G)


class NumpyScorer:
    """Chunked scorer in plain array operations (NumPy on the CPU; also runs on CuPy arrays).

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Training inputs (float64; ``[X | 1]`` in the screening dtype is kept as well).
    dtype : {"float32", "float64"}
        Screening precision.
    memory_budget : int
        Bytes allowed for the n x Mc activation buffer.
    max_chunk : int
        Largest chunk of candidates (the CPU design note found 512-1024 fastest).
    """

    device = "cpu"

    def __init__(self, X, dtype="float32", memory_budget=256 * 2**20, max_chunk=1024):
        xp = get_namespace(X)
        self.X64 = xp.ascontiguousarray(X, dtype=xp.float64)
        self.dtype = np.dtype(dtype)
        n, d = self.X64.shape
        # [X | 1]: the GEMM adds the biases (one column more), which saves a read-write pass over
        # each n x Mc chunk
        self.X1 = xp.empty((n, d + 1), dtype=self.dtype)
        self.X1[:, :d] = self.X64
        self.X1[:, d] = 1.0
        self.chunk = int(max(1, min(max_chunk, memory_budget // (n * self.dtype.itemsize))))
        self._buf = None
        #: X in the screening dtype where it is cheaper than float64 (the refinement's ascent runs
        #: on it; None: float64 screening)
        self.X_fast = self.X1[:, :d] if self.dtype.itemsize < 8 else None

    def score(self, W, c, G, activation: Activation, penalty, k: int = 32) -> ScoreResult:
        """Score every candidate and re-score the top ``k`` exactly.

        Parameters
        ----------
        W : ndarray, shape (M, d)
        c : ndarray, shape (M,)
        G : ndarray, shape (n, K), float64
        activation : Activation
        penalty : Penalty (its ``dual_norm`` reduces ``h^T G``)
        k : int
        """
        X1 = self.X1
        xp = get_namespace(X1)
        n, d1 = X1.shape
        M = W.shape[0]
        W1 = xp.empty((M, d1), dtype=self.dtype)  # [W | c]
        W1[:, : d1 - 1] = W
        W1[:, d1 - 1] = c
        Gt = xp.ascontiguousarray(G.T, dtype=self.dtype)  # (K, n)
        scores = xp.empty(M, dtype=self.dtype)
        mc = self.chunk
        if self._buf is None or self._buf.shape[1] < min(mc, M):
            self._buf = xp.empty((n, min(mc, max(M, 1))), dtype=self.dtype)
        for j0 in range(0, M, mc):
            j1 = min(M, j0 + mc)
            Z = self._buf[:, : j1 - j0]
            xp.matmul(X1, W1[j0:j1].T, out=Z)  # X w_j + c_j
            activation(Z, out=Z)
            scores[j0:j1] = penalty.dual_norm((Gt @ Z).T)
        return self._rescore(W, c, G, scores, activation, penalty, k)

    def _rescore(self, W, c, G, scores, activation, penalty, k):
        return rescore_top(self.X64, W, c, G, scores, activation, penalty, k)


def rescore_top(X64, W, c, G, scores, activation: Activation, penalty, k: int) -> ScoreResult:
    """Re-score the ``k`` best screened candidates exactly (float64) and order them, best first.

    Parameters
    ----------
    X64 : array, shape (n, d), float64
    W : array, shape (M, d)
    c : array, shape (M,)
    G : array, shape (n, K)
    scores : array, shape (M,)
        Screening scores.
    """
    xp = get_namespace(scores)
    k = int(min(k, scores.shape[0]))
    top = xp.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else xp.arange(k)
    exact = exact_scores(X64, W[top], c[top], G, activation, penalty)
    order = xp.argsort(-exact)
    return ScoreResult(scores, to_numpy(top[order]), to_numpy(exact[order]))


def reference_scores(X, W, c, G, activation: Activation, penalty):
    """Unchunked float64 scores of every candidate (the test reference; n x M memory)."""
    xp = get_namespace(X)
    return exact_scores(
        xp.asarray(X, dtype=xp.float64),
        xp.asarray(W, dtype=xp.float64),
        xp.asarray(c, dtype=xp.float64),
        xp.asarray(G, dtype=xp.float64),
        activation,
        penalty,
    )
