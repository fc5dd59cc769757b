"""A strict NumPy stand-in for CuPy: boostnet's device path, run on a machine without a GPU.

Put ``tests/support/fake_cupy`` (and ``tests/support``, for the kernel emulator) first on ``sys.path`` and
``import cupy`` finds this module; ``boostnet`` then takes its GPU branches. Device arrays are a
wrapper type, :class:`ndarray`, around a NumPy array, and the rules a real card enforces are
enforced here, so host/device mistakes fail on the CPU instead of on the first GPU run:

- no implicit conversion to NumPy: ``numpy.asarray(dev)`` raises ``TypeError`` (``.get()`` and
  :func:`asnumpy` copy explicitly);
- a NumPy array mixed into a device operation or index raises ``TypeError`` (Python and NumPy
  scalars are fine), and so does a NumPy array passed to a device function other than
  ``asarray`` / ``array``;
- host data is copied on the way in (``asarray`` of a NumPy array never aliases it);
- reductions return 0-d device arrays; ``float()``, ``int()``, ``bool()`` and ``.item()`` copy to the
  host, as on CuPy;
- float32 GEMMs round their inputs to TF32 (10 mantissa bits) while the float32 compute type is
  TF32 (``_core._routines_linalg``, as CuPy's), float16 GEMMs accumulate in float32;
- :class:`RawModule` compiles the CUDA source it is given with g++ (``tests/support/kernel_emu.py``) and
  launches the requested template instance on the given grid;
- an array larger than ``_fake.alloc_limit`` bytes raises ``cuda.memory.OutOfMemoryError``.

``_fake`` counts the bytes copied each way, kernel launches and synchronisations, so tests can check
that a fit keeps its data on the device. This is not CuPy: only what boostnet uses is here.
"""

from __future__ import annotations

import operator
import types

import numpy as _np

__version__ = "0.0.0+fake"


class _State:
    def __init__(self):
        self.reset()

    def reset(self):
        self.alloc_limit = None  # bytes; None: no limit
        self.free_bytes = 4 << 30
        self.h2d_bytes = 0
        self.d2h_bytes = 0
        self.launches = 0
        self.syncs = 0
        self.gemms = {"tf32": 0, "fp32": 0, "fp16": 0, "fp64": 0}
        _linalg._types = [0, 0, 0]


_NO_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)


def _check_alloc(a):
    lim = _fake.alloc_limit
    if lim is not None and isinstance(a, _np.ndarray) and a.base is None and a.nbytes > lim:
        raise cuda.memory.OutOfMemoryError(a.nbytes, lim)
    return a


def _unwrap(x):
    """Device values to NumPy for the computation; host arrays are an error."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise TypeError(f"Unsupported type {type(x)}")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, slice):
        return slice(_unwrap(x.start), _unwrap(x.stop), _unwrap(x.step))
    return x


def _wrap(r):
    if isinstance(r, _np.ndarray):
        return ndarray(_check_alloc(r))
    if isinstance(r, _np.generic):
        return ndarray(_np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _call(fn, args, kwargs):
    return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


def _tf32(a):
    """Round float32 values to TF32 (10 explicit mantissa bits, round half away from zero)."""
    u = _np.ascontiguousarray(a).view(_np.uint32)
    return ((u + _np.uint32(0x1000)) & _np.uint32(0xFFFFE000)).view(_np.float32)


def _gemm(a, b, out=None):
    """``a @ b`` as cuBLAS computes it under the current compute type."""
    if a.dtype == _np.float32 and b.dtype == _np.float32:
        if _linalg.get_compute_type(_np.float32) == _linalg.COMPUTE_TYPE_TF32:
            _fake.gemms["tf32"] += 1
            return _np.matmul(_tf32(a), _tf32(b), out=out)
        _fake.gemms["fp32"] += 1
        return _np.matmul(a, b, out=out)
    if a.dtype == _np.float16 and b.dtype == _np.float16:
        _fake.gemms["fp16"] += 1
        r = _np.matmul(a.astype(_np.float32), b.astype(_np.float32)).astype(_np.float16)
        if out is None:
            return r
        out[...] = r
        return out
    _fake.gemms["fp64"] += 1
    return _np.matmul(a, b, out=out)


class ndarray:
    """A device array (a NumPy array that refuses to mix with host arrays)."""

    __slots__ = ("_a",)
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, a):
        object.__setattr__(self, "_a", a)

    # -- conversion -------------------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(_NO_IMPLICIT)

    def get(self, stream=None, order="C", out=None):
        _fake.d2h_bytes += self._a.nbytes
        if out is not None:  # CuPy copies into a given host array of the same shape and dtype
            if out.shape != self._a.shape or out.dtype != self._a.dtype:
                raise ValueError("Shape or dtype mismatch between out and the array")
            if not out.flags.c_contiguous:
                raise RuntimeError("Non-contiguous out arrays are not supported")
            out[...] = self._a
            return out
        return _np.array(self._a, order=order, copy=True)

    def _host_scalar(self):
        if self._a.size != 1:
            raise TypeError("only size-1 device arrays can be converted to Python scalars")
        _fake.d2h_bytes += self._a.itemsize
        return self._a.reshape(()).item()

    def __float__(self):
        return float(self._host_scalar())

    def __int__(self):
        return int(self._host_scalar())

    def __bool__(self):
        return bool(self._host_scalar())

    def __index__(self):
        if self._a.ndim != 0 or self._a.dtype.kind not in "iu":
            raise TypeError("only 0-d integer device arrays can be used as an index")
        return int(self._host_scalar())

    def item(self):
        return self._host_scalar()

    def tolist(self):
        _fake.d2h_bytes += self._a.nbytes
        return self._a.tolist()

    def __repr__(self):
        return "fakecupy." + repr(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self._a)):
            yield ndarray(self._a[i])

    # -- attributes -------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: cuda.Device(0))

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self._a.ctypes.data)

    def __getattr__(self, name):
        if name.startswith("__"):  # never __array_interface__ & co.: NumPy would read the memory
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _call(attr, args, kwargs)
        return _wrap(attr)

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot set {name!r} on a device array in this stand-in")

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    def dot(self, other, out=None):
        return _wrap(_gemm(self._a, _unwrap(other), _unwrap(out)))

    def __matmul__(self, other):
        return _wrap(_gemm(self._a, _unwrap(other)))

    def __rmatmul__(self, other):
        return _wrap(_gemm(_unwrap(other), self._a))


def _binop(op):
    def fwd(self, other):
        return _wrap(op(self._a, _unwrap(other)))

    def rev(self, other):
        return _wrap(op(_unwrap(other), self._a))

    def inplace(self, other):
        self._a[...] = op(self._a, _unwrap(other))
        return self

    return fwd, rev, inplace


for _name in [
    "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor", "lshift", "rshift",
]:  # fmt: skip
    _op = getattr(operator, _name + ("_" if _name in ("and", "or") else ""))
    _f, _r, _i = _binop(_op)
    setattr(ndarray, f"__{_name}__", _f)
    setattr(ndarray, f"__r{_name}__", _r)
    setattr(ndarray, f"__i{_name}__", _i)
for _name in ["lt", "le", "gt", "ge", "eq", "ne"]:
    setattr(ndarray, f"__{_name}__", _binop(getattr(operator, _name))[0])
for _name in ["neg", "pos", "abs", "invert"]:
    setattr(
        ndarray,
        f"__{_name}__",
        (lambda op: lambda self: _wrap(op(self._a)))(getattr(operator, _name)),
    )


# -- creation and transfer ------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        if dtype is None or _np.dtype(dtype) == a.dtype:
            return a
        return _wrap(a._a.astype(dtype))
    host = _np.asarray(a, dtype=dtype, order=order)  # a NumPy array, list or scalar: a copy in
    _fake.h2d_bytes += host.nbytes
    return ndarray(_check_alloc(_np.array(host, copy=True, order=order or "K")))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return _wrap(_np.array(a._a, dtype=dtype, copy=copy, order=order))
    return asarray(_np.array(a, dtype=dtype, order=order), order=None)


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return _np.asarray(a, order=order)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Argument 'a' has incorrect type (expected cupy.ndarray, got {type(a)})")
    return _wrap(_np.ascontiguousarray(a._a, dtype=dtype))


def matmul(a, b, out=None, **kwargs):
    r = _gemm(_unwrap(a), _unwrap(b), None if out is None else _unwrap(out))
    return out if out is not None else _wrap(r)


def dot(a, b, out=None):
    return matmul(a, b, out=out)


def get_array_module(*args):
    import sys  # noqa: PLC0415

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def __getattr__(name):
    obj = getattr(_np, name)  # AttributeError for names NumPy lacks too
    if isinstance(obj, type) or not callable(obj):
        return obj  # dtypes (float32, ...), constants (inf, pi, newaxis)
    return lambda *args, **kwargs: _call(obj, args, kwargs)


class _Namespace(types.SimpleNamespace):
    """A NumPy submodule whose functions take and return device arrays."""

    def __init__(self, mod, **extra):
        super().__init__(**extra)
        object.__setattr__(self, "_mod", mod)

    def __getattr__(self, name):
        obj = getattr(self._mod, name)
        if isinstance(obj, type) or not callable(obj):
            return obj
        return lambda *args, **kwargs: _call(obj, args, kwargs)


linalg = _Namespace(_np.linalg)


# -- random: a Generator per seed, drawing on the "device" ----------------------------------
class _Generator:
    def __init__(self, seed):
        # not NumPy's stream for the same seed: CuPy's generator differs from NumPy's too
        self._g = _np.random.default_rng([0xC0DA, 0 if seed is None else int(seed)])

    def __getattr__(self, name):
        fn = getattr(self._g, name)
        return lambda *args, **kwargs: _call(fn, args, kwargs)


random = _Namespace(_np.random, default_rng=_Generator, Generator=_Generator)


# -- CUDA runtime, memory pool, compute types -----------------------------------------------
class OutOfMemoryError(MemoryError):
    def __init__(self, size=0, limit=0):
        super().__init__(f"Out of memory allocating {size:,} bytes (fake limit {limit:,} bytes)")


class _Device:
    def __init__(self, device=0):
        self.id = int(device)
        self.compute_capability = "90"

    def synchronize(self):
        _fake.syncs += 1

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _get_device_count():
    return 1


def _get_device_properties(i):
    return {"name": b"FakeCuPy (NumPy stand-in)", "totalGlobalMem": 8 << 30, "major": 9, "minor": 0}


def _mem_get_info():
    return _fake.free_bytes, 8 << 30


class CompileException(Exception):
    pass


cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(
        getDeviceCount=_get_device_count,
        getDeviceProperties=_get_device_properties,
        memGetInfo=_mem_get_info,
        CUDARuntimeError=RuntimeError,
    ),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
    compiler=types.SimpleNamespace(CompileException=CompileException),
)


class _MemoryPool:
    def free_bytes(self):
        return 0

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass

    def set_limit(self, size=None, fraction=None):
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return _POOL


class _Linalg:
    """CuPy's ``_core._routines_linalg`` compute-type switch (index 0: float16, 1: float32, 2: float64)."""

    COMPUTE_TYPE_TBD = 0
    COMPUTE_TYPE_DEFAULT = 1
    COMPUTE_TYPE_PEDANTIC = 2
    COMPUTE_TYPE_FP16 = 3
    COMPUTE_TYPE_FP32 = 4
    COMPUTE_TYPE_FP64 = 5
    COMPUTE_TYPE_BF16 = 6
    COMPUTE_TYPE_TF32 = 7

    def __init__(self):
        self._types = [0, 0, 0]

    @staticmethod
    def to_compute_type_index(dtype):
        ch = _np.dtype(dtype).char
        if ch == "e":
            return 0
        if ch in "fF":
            return 1
        if ch in "dD":
            return 2
        raise TypeError(f"dtype is not supported: {dtype}")

    def get_compute_type(self, dtype):
        i = self.to_compute_type_index(dtype)
        if self._types[i] == self.COMPUTE_TYPE_TBD:
            self._types[i] = self.COMPUTE_TYPE_DEFAULT
        return self._types[i]

    def set_compute_type(self, dtype, compute_type):
        self._types[self.to_compute_type_index(dtype)] = int(compute_type)


_linalg = _Linalg()
_core = types.SimpleNamespace(_routines_linalg=_linalg)
_fake = _State()


# -- RawModule: the CUDA source built for the CPU -------------------------------------------
class _RawKernel:
    def __init__(self, lib, fn_name, instance):
        self._fn = getattr(lib, fn_name)
        self.instance = instance

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        from kernel_emu import BX, BY, launch  # noqa: PLC0415

        if tuple(block) != (BX, BY, 1):
            raise ValueError(
                f"the emulated kernel is built for blocks of {(BX, BY, 1)}, got {block}"
            )
        if len(args) != 8:
            raise TypeError(f"bn_epilogue takes 8 arguments, got {len(args)}")
        Z, n, m, ldz, c, G, rpb, P = args
        for name, a, want in [
            ("Z", Z, None),
            ("c", c, _np.float32),
            ("G", G, _np.float32),
            ("P", P, _np.float32),
        ]:
            if not isinstance(a, ndarray):
                raise TypeError(f"kernel argument {name} must be a device array, got {type(a)}")
            if want is not None and a.dtype != want:
                raise TypeError(f"kernel argument {name} must be {_np.dtype(want)}, got {a.dtype}")
        want_z = _np.float32 if self.instance[3] == "float" else _np.uint16
        if Z.dtype != want_z:
            raise TypeError(f"kernel argument Z must be {_np.dtype(want_z)}, got {Z.dtype}")
        for name, v in [("n", n), ("m", m), ("ldz", ldz), ("rows_per_block", rpb)]:
            if not isinstance(v, _np.int32):
                raise TypeError(f"kernel argument {name} must be numpy.int32, got {type(v)}")
        K = self.instance[1]
        if G.shape[1] != K or tuple(P.shape) != (grid[1], int(m), K + 1):
            raise ValueError(f"bn_epilogue<K={K}> launched with G {G.shape} and P {P.shape}")
        if grid[0] * BX * self.instance[2] < int(m):
            raise ValueError(f"grid {grid} does not cover {int(m)} candidates")
        _fake.launches += 1
        launch(
            self._fn, Z._a, int(n), int(m), int(ldz), c._a, G._a, int(rpb), P._a, grid[0], grid[1]
        )


class RawModule:
    """Compiles ``code`` for the CPU with one launcher per name expression (bn_epilogue only)."""

    def __init__(self, code=None, options=(), name_expressions=None, **kwargs):
        from kernel_emu import build, parse_instance  # noqa: PLC0415

        self._inst = {name: parse_instance(name) for name in name_expressions or []}
        try:
            self._lib, self._names = build(code, list(self._inst.values()))
        except RuntimeError as exc:
            raise CompileException(str(exc)) from None

    def get_function(self, name):
        if name not in self._inst:
            raise KeyError(f"{name!r} was not among the name expressions of this module")
        inst = self._inst[name]
        return _RawKernel(self._lib, self._names[inst], inst)
