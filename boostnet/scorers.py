"""The scorer for the device of the inputs: the one module that knows both scorers.

:mod:`boostnet.scoring` (NumPy, and the generic chain every device shares) and
:mod:`boostnet.gpu_scoring` (the CuPy kernels, built on the former) never import each other's
caller; :func:`make_scorer` picks between them and refuses inputs that no screen can represent.
"""

from __future__ import annotations

import numpy as np

from ._backend import get_namespace, to_numpy
from .exceptions import DataError
from .gpu_scoring import GpuScorer
from .scoring import NumpyScorer


def make_scorer(X, dtype="float32", memory_budget=512 * 2**20, cpt=None):
    """The scorer for the device of ``X``.

    NumPy: :class:`NumpyScorer` screening in ``dtype`` (``float16`` screens in float32 there: the
    CPU has no fast half-precision GEMM). CuPy: :class:`boostnet.gpu_scoring.GpuScorer` with a TF32
    (``float32``) or FP16 (``float16``) screen; ``float64`` runs the plain float64 chain. ``cpt``
    (candidates per kernel thread) is passed to the GpuScorer; the default picks it from K.
    """
    xp = get_namespace(X)
    # X w + c must stay finite in the screen, and the samplers' squared norms of data points (and
    # their differences) in float64: beyond that units overflow to zero and the fit would end
    # "certified" with no unit
    top = float(to_numpy(abs(X).max())) if X.size else 0.0
    d1 = X.shape[1] + 1
    screen = np.float64 if dtype == "float64" else np.float32
    limit = min(float(np.finfo(screen).max) / d1, np.sqrt(float(np.finfo(np.float64).max) / d1) / 2)
    if not top < limit:
        raise DataError(
            f"the inputs hold values up to {top:.3g}, beyond what the {dtype} screen can score: "
            "standardise the features"
        )
    if xp is np or dtype == "float64":
        dt = "float32" if dtype == "float16" else dtype
        return NumpyScorer(X, dtype=dt, memory_budget=memory_budget)
    return GpuScorer(X, screen="fp16" if dtype == "float16" else "tf32", cpt=cpt)


__all__ = ["make_scorer"]
