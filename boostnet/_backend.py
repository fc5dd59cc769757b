"""Array-module selection: the only module of boostnet that imports CuPy.

Everything else takes the array module ``xp`` from its inputs with :func:`get_namespace`, so the same
code runs on NumPy and CuPy arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .exceptions import ConfigError, DeviceError

DEVICES = ("auto", "cpu", "gpu")
ENV_DEVICE = "BOOSTNET_DEVICE"
#: ``device="auto"`` takes the GPU from this many training rows; below it a step's arrays are too
#: small to pay for its kernel launches. Measured on an H200 with a 16-core host (experiments/README.md,
#: section 7): digits (1 347 rows) fitted in 4.8 s on the GPU and 1.7 s on the host's CPU;
#: Fashion-MNIST's 10 000 rows in 12.5 s and 33.3 s. The value lies between them, not tuned further.
AUTO_GPU_MIN_ROWS = 5000


def _import_cupy():
    """Return the ``cupy`` module and ``None``, or ``None`` and why it is unusable."""
    try:
        import cupy  # noqa: PLC0415  (the one place boostnet imports CuPy)
    except Exception as exc:  # ImportError, or a CUDA library load error
        return None, f"CuPy is not importable ({type(exc).__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, f"CuPy found no usable CUDA device ({type(exc).__name__}: {exc})"
    if n < 1:
        return None, "CuPy found no CUDA device"
    return cupy, None


def gpu_status() -> tuple[bool, str]:
    """Whether the GPU path is usable, and a one-line reason or device description."""
    cupy, why = _import_cupy()
    if cupy is None:
        return False, why
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return True, name


@dataclass(frozen=True)
class Backend:
    """The resolved compute device: its name and array module."""

    name: str  # "cpu" or "gpu"
    xp: Any


def resolve_device(device: str | None = "auto", n_rows: int | None = None) -> Backend:
    """Resolve ``"auto" | "cpu" | "gpu"`` (``None``: the ``BOOSTNET_DEVICE`` variable, else auto).

    ``"auto"`` is the GPU where CuPy finds one, unless ``n_rows`` (the training rows, where known)
    is below :data:`AUTO_GPU_MIN_ROWS`: then the CPU, without importing CuPy.

    Raises
    ------
    ConfigError
        If the name is not one of the known devices.
    DeviceError
        If ``"gpu"`` is asked for and CuPy or a CUDA device is missing.
    """
    if device is None:
        device = os.environ.get(ENV_DEVICE, "auto") or "auto"
    device = str(device).lower()
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device == "cpu" or (device == "auto" and n_rows is not None and n_rows < AUTO_GPU_MIN_ROWS):
        return Backend("cpu", np)
    cupy, why = _import_cupy()
    if cupy is None:
        if device == "gpu":
            raise DeviceError(f"device 'gpu' is not usable: {why}")
        return Backend("cpu", np)
    return Backend("gpu", cupy)


def get_namespace(*arrays) -> Any:
    """Return the array module (``numpy`` or ``cupy``) of the given arrays."""
    for a in arrays:
        mod = type(a).__module__
        if mod.startswith("cupy"):
            import cupy  # noqa: PLC0415

            return cupy
    return np


def synchronize(xp) -> None:
    """Wait for the device's queued work (no-op on the CPU); time GPU work only after this."""
    if xp is not np:
        xp.cuda.Device().synchronize()


def to_numpy(a) -> np.ndarray:
    """Return ``a`` as a NumPy array (copies from the GPU when needed)."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)


def in_row_blocks(xp, nbytes: int, block_bytes: int) -> bool:
    """Whether a pass over an n x m array of ``nbytes`` on the array module ``xp`` is taken in
    row blocks (:func:`row_blocks`): on NumPy, where it spans at least two blocks (a smaller one
    stays in the cache between passes anyway; a device has no such cache to keep it in)."""
    return xp is np and nbytes >= 2 * block_bytes


def row_blocks(n: int, row_bytes: int, block_bytes: int) -> list[slice]:
    """The rows ``0..n`` in consecutive blocks of about ``block_bytes`` (at least 64 rows) for a
    pass whose rows take ``row_bytes`` each: sized so that a block stays in a core's cache between
    the products that read it."""
    rows = max(64, block_bytes // max(row_bytes, 1))
    return [slice(i, min(n, i + rows)) for i in range(0, n, rows)]


def to_float(a) -> float:
    """Return a 0-d array (NumPy or CuPy) as a Python float."""
    return float(to_numpy(a))
