"""Candidate scoring: the hot loop (CPU backend).

For candidate units ``(w_j, c_j)`` (rows of ``W``, shape (M, d)) the score is

    score_j = dual_norm(h_j^T G),    h_j = act(X w_j + c_j),

with ``G`` (n x K) the loss gradient at the current model. A unit can lower the objective iff its score
exceeds lambda.

:class:`NumpyScorer` screens all candidates in float32 (by default), chunked over candidates so that the
Mc x n activation buffer stays within a memory budget, applying bias and activation in place (one pass
over the chunk, see ``docs/design/gpu-scoring.md``, CPU section), then re-scores the top-k exactly in
float64 so that the chosen unit is the float64 argmax whenever the screen kept it in the top-k.
The chunk is laid out one candidate per row, ``Z^T = [W | c] [X | 1]^T`` (Mc x n): with few
features OpenBLAS runs that product, the activation and ``Z^T G`` faster than ``Z = [X | 1] [W | c]^T``
and ``G^T Z`` (one pool of 2048 candidates: c11's 750 x 10 rows 1.99 -> 1.46 ms, friedman1 1.45 ->
0.98, breast-cancer 1.06 -> 0.84, digits 4.81 -> 4.19, c26 65.5 -> 57.3; Fashion-MNIST 113 -> 114,
iris 0.30 -> 0.36: experiments/README.md, section 8), and the data-pair screen below writes the
same layout. The GPU backend implements the same interface.

Data-pair candidates (``w = s (x_i - x_j)``, :class:`boostnet.samplers.PairRows`) have

    X w + c = s (K[:, i] - K[:, j]) + c,    K = X X^T  (n x n),

so with ``K`` in memory their pre-activations are two rows of ``K`` read and subtracted (about 3 n
memory operations per candidate, :func:`_pair_preactivations`) instead of ``2 n (d + 1)`` flops of
the GEMM. That pays when ``d`` is large (Fashion-MNIST, d = 784: 1024 pair candidates on 10 000 rows
in ~7 ms instead of ~80 ms) and ``K`` fits in the memory budget; ``K`` is built (in the screening
dtype, once per scorer) at the first pool that has pair units. A pair whose points are so close that
the subtraction would lose the screen's precision (``s max(|x_i|, |x_j|) > 100``) goes through the
GEMM with the other candidates. Either way only the screen changes: the top-k are re-scored from
``W`` and ``c`` in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ._backend import get_namespace, to_numpy
from .activations import Activation

#: Fewest features for which the pair candidates are screened from ``K = X X^T`` (measured:
#: experiments/cost_per_step.py --sweep d; on the 2-core CPU a pool's screen is 0 % faster at d =
#: 32, 13 % at 64, 17 % at 128, 29-37 % from 192 on): below it the gain is not worth n^2 memory.
GRAM_MIN_FEATURES = 128
#: Largest ``s max(|x_i|, |x_j|)`` of a pair screened from ``K`` (its rounding grows with it).
_GRAM_MAX_LEVERAGE = 100.0
#: Candidates the activation buffer must still hold beside ``K`` for the scorer to use ``K``.
_GRAM_MIN_CHUNK = 256
#: Bytes of activations one chunk of the screen fills at most (half this CPU's 32 MB L3: the
#: product, the activation and ``Z^T G`` then pass over a chunk still in cache), and the fewest
#: candidates a chunk holds whatever ``n``. One pool of 2048 candidates: c26 (15 000 rows, chunks
#: of 279) 38.1 -> 32.6 ms; digits to c11 (at most 1 347 rows: one chunk of 2048 instead of two of
#: 1024) 2-10 % faster; Fashion-MNIST (419) unchanged (experiments/README.md, section 8).
_CHUNK_BYTES = 16 * 2**20
_MIN_CHUNK = 128


@njit(cache=True, nogil=True)
def _pair_preactivations(K, i, j, s, c, out, relu=False):  # pragma: no cover - compiled
    """``out[p] = s[p] (K[i[p]] - K[j[p]]) + c[p]``: pre-activations of pair units, (Mp, n);
    with ``relu``, their relu in the same pass (the figures of ``np.maximum(out, 0)`` as a second
    pass: Fashion-MNIST's 2048 pairs a pool, ~8 ms less)."""
    n = K.shape[1]
    for p in range(i.shape[0]):
        ki = K[i[p]]
        kj = K[j[p]]
        sp = s[p]
        cp = c[p]
        o = out[p]
        if relu:
            for t in range(n):
                z = sp * (ki[t] - kj[t]) + cp
                o[t] = 0 if z < 0 else z  # np.maximum(z, 0)'s: NaN and -0.0 kept
        else:
            for t in range(n):
                o[t] = sp * (ki[t] - kj[t]) + cp


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
    H_top : array, shape (n, k), float64, or None
        Their activations on the training inputs, in the same order (on the device), as the exact
        scores computed them: the loop's choice of distinct units among them reuses them
        (:func:`boostnet._greedy.diverse`) instead of a second float64 pass over the rows
        (Fashion-MNIST's 32 best: 17.9 -> 4.0 ms a hard pool).
    """

    scores: object
    top: np.ndarray
    top_scores: np.ndarray
    H_top: object = field(default=None, repr=False)


def transform(X, W, c, activation: Activation, out=None):
    """Hidden activations ``H = act(X W^T + c)``.

    Parameters
    ----------
    X : array, shape (n, d)
    W : array, shape (m, d)
    c : array, shape (m,)
    activation : Activation
    out : array, shape (n, m), dtype of ``X``, optional
        Written in place; a view of a wider array serves (the greedy loop's activations of the
        old and the entering units, side by side in one array, without a copy of the old ones).

    Returns
    -------
    H : array, shape (n, m), dtype of ``X`` (``out`` where given).
    """
    xp = get_namespace(X)
    if xp is np and activation.name == "relu":
        # the bias and the activation in one compiled pass: NumPy's two elementwise passes over
        # a strided view (the greedy loop's wider array) cost twice their contiguous time (c26:
        # 7-8 ms each); the same arithmetic, hence the same figures
        Z = np.matmul(X, W.T.astype(X.dtype, copy=False), out=out)
        _bias_relu(Z, c.astype(X.dtype, copy=False))
        return Z
    if out is None or xp is np:  # NumPy's products write into a strided view directly
        Z = preactivations(X, W, c, out=out)
        return activation(Z, out=Z)
    out[...] = transform(X, W, c, activation)
    return out


@njit(cache=True, nogil=True)
def _bias_relu(Z, c):  # pragma: no cover - compiled
    """``Z = max(Z + c, 0)`` in place (columns shifted by ``c``; NaN stays NaN, as NumPy's)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            v = Z[i, j] + c[j]
            Z[i, j] = 0.0 if v <= 0 else v


def preactivations(X, W, c, out=None):
    """``Z = X W^T + c`` (n, m) in the dtype of ``X``, written into ``out`` if given."""
    xp = get_namespace(X)
    Z = xp.matmul(X, W.T.astype(X.dtype, copy=False), out=out)
    Z += c.astype(X.dtype, copy=False)
    return Z


def exact_scores(X, W, c, G, activation: Activation, penalty):
    """Scores of a few units, computed directly in the dtype of ``X`` (float64 for the reference).

    Returns an array of shape (q,) for ``W`` (q, d), ``c`` (q,), ``G`` (n, K).
    """
    return scores_and_activations(X, W, c, G, activation, penalty)[0]


def scores_and_activations(X, W, c, G, activation: Activation, penalty):
    """:func:`exact_scores` (q,) and the activations they came from, ``H`` (n, q)."""
    H = transform(X, W, c, activation)
    return penalty.dual_norm(H.T @ G), H


def rows_product(M, X, XT=None):
    """``M X`` (q, d) for ``M`` (q, n) and the rows ``X`` (n, d); taken as ``(XT M^T)^T`` where
    ``XT``, a contiguous copy of ``X^T`` (:attr:`NumpyScorer.XT_fast`), is given: the layout in
    which OpenBLAS packs the rows faster for a thin ``M`` (the same product to rounding)."""
    return M @ X if XT is None else (XT @ M.T).T


class NumpyScorer:
    """Chunked scorer in plain array operations (NumPy on the CPU; also runs on CuPy arrays).

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Training inputs (float64; ``[X | 1]`` in the screening dtype is kept as well).
    dtype : {"float32", "float64"}
        Screening precision.
    memory_budget : int
        Bytes allowed for the Mc x n activation buffer and, where it is used, ``K`` (n x n).
    max_chunk : int
        Largest chunk of candidates; a chunk also fills at most about ``_CHUNK_BYTES`` of the
        buffer (at least ``_MIN_CHUNK`` candidates).
    gram : bool or None
        Screen data-pair candidates from ``K = X X^T`` (module doc). None: where it pays, on NumPy
        arrays with ``d >= GRAM_MIN_FEATURES`` and ``K`` (n x n) within ``memory_budget`` beside
        the activation buffer; False: never; True: whenever ``K`` fits (tests, benchmarks).
    """

    device = "cpu"

    def __init__(self, X, dtype="float32", memory_budget=512 * 2**20, max_chunk=2048, gram=None):
        xp = get_namespace(X)
        self.X64 = xp.ascontiguousarray(X, dtype=xp.float64)
        self.dtype = np.dtype(dtype)
        n, d = self.X64.shape
        # [X | 1]: the GEMM adds the biases (one column more), which saves a read-write pass over
        # each Mc x n chunk
        self.X1 = xp.empty((n, d + 1), dtype=self.dtype)
        self.X1[:, :d] = self.X64
        self.X1[:, d] = 1.0
        column = n * self.dtype.itemsize  # bytes per candidate in the buffer
        fits_cache = max(_MIN_CHUNK, _CHUNK_BYTES // column)
        self.chunk = int(max(1, min(max_chunk, memory_budget // column, fits_cache)))
        # K takes its share of the budget if the buffer keeps room for a chunk the GEMM runs well
        # on (any chunk when asked for K)
        room = (memory_budget - n * column) // column
        wanted = d >= GRAM_MIN_FEATURES if gram is None else bool(gram)
        fits = room >= (min(self.chunk, _GRAM_MIN_CHUNK) if gram is None else 1)
        #: whether pair candidates are screened from K (built at the first pool with pairs)
        self.uses_gram = xp is np and wanted and fits
        if self.uses_gram:
            self.chunk = int(min(self.chunk, room))
        self._buf = None
        #: X in the screening dtype where it is cheaper than float64 (the refinement's ascent runs
        #: on it; None: float64 screening)
        self.X_fast = self.X1[:, :d] if self.dtype.itemsize < 8 else None
        self._XT_fast = None
        self._K = None
        self._row_norms = None

    @property
    def XT_fast(self):
        """``X_fast`` transposed, as a contiguous (d, n) copy (built once, on first use; None
        where ``X_fast`` is). The ascent's and the slide's thin products ``M @ X`` (``M``: a few
        to a few hundred rows) are taken as ``(XT_fast @ M.T).T``, which OpenBLAS runs faster:
        on Fashion-MNIST's 10 000 x 784 rows, 16 units 6.8 -> 4.0 ms, 100 units 15.9 -> 12.6 ms
        (experiments/README.md, section 8)."""
        if self._XT_fast is None and self.X_fast is not None:
            self._XT_fast = get_namespace(self.X_fast).ascontiguousarray(self.X_fast.T)
        return self._XT_fast

    def _gram(self):
        """``K = X X^T`` in the screening dtype and the rows' norms; None if ``K`` overflows."""
        if self._K is None:
            Xs = np.ascontiguousarray(self.X1[:, :-1])
            with np.errstate(over="ignore", invalid="ignore"):  # checked below
                K = Xs @ Xs.T
            if not np.isfinite(np.diagonal(K)).all():  # |x|^2 beyond the screen's range
                self.uses_gram = False
                return None
            self._K = K
            self._row_norms = np.sqrt(np.diagonal(K).astype(np.float64))
        return self._K

    def score(
        self, W, c, G, activation: Activation, penalty, k: int = 32, pairs=None
    ) -> ScoreResult:
        """Score every candidate and re-score the top ``k`` exactly.

        Parameters
        ----------
        W : ndarray, shape (M, d)
        c : ndarray, shape (M,)
        G : ndarray, shape (n, K), float64
        activation : Activation
        penalty : Penalty (its ``dual_norm`` reduces ``h^T G``)
        k : int
        pairs : PairRows, optional
            Which rows of ``W`` are data-pair units (:func:`boostnet.samplers.draw`): screened from
            ``K = X X^T`` where the scorer uses it (module doc).
        """
        X1 = self.X1
        xp = get_namespace(X1)
        n, d1 = X1.shape
        M = W.shape[0]
        Gs = xp.ascontiguousarray(G, dtype=self.dtype)  # (n, K)
        scores = xp.empty(M, dtype=self.dtype)
        mc = self.chunk
        if self._buf is None or self._buf.size < n * min(mc, M):
            self._buf = xp.empty(n * min(mc, max(M, 1)), dtype=self.dtype)
        gram_rows = self._gram_rows(pairs) if pairs is not None and self.uses_gram else None
        if gram_rows is None:
            rows = None
        else:
            rows = np.setdiff1d(np.arange(M), pairs.rows[gram_rows], assume_unique=True)
            self._screen_pairs(pairs, gram_rows, c, Gs, scores, activation, penalty)
        m = M if rows is None else rows.size
        W1 = xp.empty((m, d1), dtype=self.dtype)  # [W | c] of the rows the GEMM screens
        W1[:, : d1 - 1] = W if rows is None else W[rows]
        W1[:, d1 - 1] = c if rows is None else c[rows]
        for j0 in range(0, m, mc):
            j1 = min(m, j0 + mc)
            Zt = self._chunk(j1 - j0)
            xp.matmul(W1[j0:j1], X1.T, out=Zt)  # row j: X w_j + c_j
            activation(Zt, out=Zt)
            s = penalty.dual_norm(Zt @ Gs)
            if rows is None:
                scores[j0:j1] = s
            else:
                scores[rows[j0:j1]] = s
        return self._rescore(W, c, G, scores, activation, penalty, k)

    def _gram_rows(self, pairs):
        """Indices into ``pairs`` of the pairs to screen from ``K`` (None: none)."""
        if pairs.rows.size == 0 or self._gram() is None:
            return None
        lev = to_numpy(pairs.scale) * np.maximum(self._row_norms[pairs.i], self._row_norms[pairs.j])
        ok = np.flatnonzero(lev <= _GRAM_MAX_LEVERAGE)
        return ok if ok.size else None

    def _chunk(self, rows: int):
        """The activation buffer as ``rows`` candidates' rows, shape (rows, n)."""
        n = self.X1.shape[0]
        return self._buf[: rows * n].reshape(rows, n)

    def _screen_pairs(self, pairs, sel, c, G, scores, activation, penalty):
        """Screening scores of the pairs ``sel`` from ``K``, in chunks of the activation buffer."""
        dt = self.dtype
        i = pairs.i[sel].astype(np.int64)
        j = pairs.j[sel].astype(np.int64)
        s = pairs.scale[sel].astype(dt)
        rows = pairs.rows[sel]
        cp = c[rows].astype(dt)
        mc = self.chunk
        for j0 in range(0, sel.size, mc):
            j1 = min(sel.size, j0 + mc)
            Zt = self._chunk(j1 - j0)
            relu = activation.name == "relu"
            _pair_preactivations(self._K, i[j0:j1], j[j0:j1], s[j0:j1], cp[j0:j1], Zt, relu)
            if not relu:
                activation(Zt, out=Zt)
            scores[rows[j0:j1]] = penalty.dual_norm(Zt @ G)

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
    exact, H = scores_and_activations(X64, W[top], c[top], G, activation, penalty)
    order = xp.argsort(-exact)
    return ScoreResult(scores, to_numpy(top[order]), to_numpy(exact[order]), H[:, order])


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
