"""A CPU build of the GPU epilogue kernel's source, for tests on machines without a GPU.

The CUDA source (:data:`boostnet.gpu_scoring.EPILOGUE_SRC`) is compiled with g++ under a small
prelude: every CUDA thread of a block is a ``std::thread`` (one team walks the grid block by block),
``__syncthreads()`` is a ``std::barrier``, ``__shared__`` arrays are statics. Only the launch
differs from the GPU; the kernel's indexing, bounds, reductions and FP16 decoding are the ones that run
on the device.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from boostnet.gpu_scoring import BX, BY, EPILOGUE_SRC, grid_for

PRELUDE = r"""
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#define BN_EMULATE 1
struct bn_dim3 { int x, y, z; };
static thread_local bn_dim3 threadIdx, blockIdx;
static bn_dim3 blockDim, gridDim;
static std::barrier<>* bn_bar = nullptr;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() { bn_bar->arrive_and_wait(); }
static inline float bn_half_to_float(unsigned short h) {
    const uint32_t s = (h >> 15) & 1u, e = (h >> 10) & 0x1fu, f = h & 0x3ffu;
    float v;
    if (e == 0) v = std::ldexp((float)f, -24);
    else if (e == 31) v = f ? NAN : INFINITY;
    else v = std::ldexp((float)(f | 0x400u), (int)e - 25);
    return s ? -v : v;
}
"""

LAUNCHER = r"""
extern "C" void NAME(const void* Z, int n, int m, int ldz, const float* c, const float* G,
                     int rpb, float* P, int gx, int gy) {
    gridDim = {gx, gy, 1};
    blockDim = {BX_, BY_, 1};
    // one team of BX_ x BY_ threads walks the grid block by block; the barrier after each block
    // keeps the next block from writing the (static) shared memory while it is still being read
    std::barrier<> bar(BX_ * BY_);
    bn_bar = &bar;
    std::vector<std::thread> ts;
    for (int ty = 0; ty < BY_; ++ty)
        for (int tx = 0; tx < BX_; ++tx)
            ts.emplace_back([=, &bar] {
                threadIdx = {tx, ty, 0};
                for (int by = 0; by < gy; ++by)
                    for (int bx = 0; bx < gx; ++bx) {
                        blockIdx = {bx, by, 0};
                        bn_epilogue<ACT, K, CPT_, TYPE>((const TYPE*)Z, n, m, ldz, c, G, rpb, P);
                        bar.arrive_and_wait();
                    }
            });
    for (auto& t : ts) t.join();
}
"""

#: A template instance of the kernel: (activation code, K, candidates per thread, Z's C type).
_INSTANCE = re.compile(
    r"^\s*bn_epilogue\s*<\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(float|unsigned short)\s*>\s*$"
)


def parse_instance(name_expression: str) -> tuple[int, int, int, str]:
    """``"bn_epilogue<0, 10, 4, float>"`` -> ``(0, 10, 4, "float")`` (a name CuPy's RawModule
    gets)."""
    mt = _INSTANCE.match(name_expression)
    if mt is None:
        raise ValueError(f"not an instance of bn_epilogue: {name_expression!r}")
    return int(mt.group(1)), int(mt.group(2)), int(mt.group(3)), mt.group(4)


def build(code: str, instances, build_dir=None):
    """Compile kernel source ``code`` with a launcher per instance ``(act, K, cpt, ctype)``.

    Returns the loaded library and ``{instance: launcher name}``. Builds are cached by content.
    """
    parts = [PRELUDE, code]
    names = {}
    for act, K, cpt, typ in instances:
        name = f"launch_{act}_{K}_{cpt}_{'h' if typ != 'float' else 'f'}"
        parts.append(
            LAUNCHER.replace("NAME", name)
            .replace("BX_", str(BX))
            .replace("BY_", str(BY))
            .replace("CPT_", str(cpt))
            .replace("ACT", str(act))
            .replace("TYPE", typ)
            .replace("K,", f"{K},")
        )
        names[(act, K, cpt, typ)] = name
    src = "\n".join(parts)
    tag = hashlib.sha256(src.encode()).hexdigest()[:16]
    d = Path(build_dir or tempfile.gettempdir()) / "boostnet-kernel-emu"
    d.mkdir(parents=True, exist_ok=True)
    lib = d / f"epilogue-{tag}.so"
    if not lib.exists():
        cpp = d / f"epilogue-{tag}.cpp"
        cpp.write_text(src)
        tmp = d / f".epilogue-{tag}.{os.getpid()}.so.tmp"
        r = subprocess.run(
            ["g++", "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-o", tmp, cpp],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise RuntimeError(f"the kernel source does not build:\n{r.stderr[:4000]}")
        tmp.rename(lib)
    return ctypes.CDLL(str(lib)), names


def launch(fn, Z, n, m, ldz, c, G, rpb, P, gx, gy):
    """Call a launcher from :func:`build` on NumPy arrays (Z, c, G, P must be C-contiguous)."""
    ptr = ctypes.c_void_p
    for a in (Z, c, G, P):
        assert a.flags.c_contiguous, "kernel arguments must be C-contiguous"
    fn(
        ptr(Z.ctypes.data),
        ctypes.c_int(n),
        ctypes.c_int(m),
        ctypes.c_int(ldz),
        ptr(c.ctypes.data),
        ptr(G.ctypes.data),
        ctypes.c_int(rpb),
        ptr(P.ctypes.data),
        ctypes.c_int(gx),
        ctypes.c_int(gy),
    )


def available() -> str | None:
    """None if g++ builds C++20 with ``<barrier>`` here, else why not (a kernel source error is
    not a reason to skip: it fails the build in :class:`EmulatedEpilogue`)."""
    if shutil.which("g++") is None:
        return "g++ is not installed"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "probe.cpp"
        src.write_text("#include <barrier>\nint main() { std::barrier<> b(1); }\n")
        r = subprocess.run(
            ["g++", "-std=c++20", "-pthread", "-o", str(Path(d) / "probe"), str(src)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            return "g++ cannot build C++20 <barrier> code: " + (r.stderr.splitlines() or ["?"])[0]
    return None


class EmulatedEpilogue:
    """``epilogue(Z, c, G, P, act_code, rows_per_block, cpt)`` on NumPy arrays, running the kernel
    source on the CPU. Each template instance is built on first use (and cached on disk)."""

    def __init__(self, build_dir=None):
        self.build_dir = build_dir
        self._fns = {}
        self.calls = 0
        self.instances = []

    def __call__(self, Z, c, G, P, act_code, rows_per_block, cpt=1):
        n, m = Z.shape
        K = G.shape[1]
        inst = (act_code, K, cpt, "unsigned short" if Z.dtype == np.float16 else "float")
        if inst not in self._fns:
            lib, names = build(EPILOGUE_SRC, [inst], self.build_dir)
            self._fns[inst] = getattr(lib, names[inst])
        assert c.dtype == np.float32 and G.dtype == np.float32 and P.dtype == np.float32
        (gx, gy, _), _ = grid_for(n, m, rows_per_block, cpt)
        assert P.shape == (gy, m, K + 1)
        launch(
            self._fns[inst], Z, n, m, Z.strides[0] // Z.itemsize, np.ascontiguousarray(c),
            np.ascontiguousarray(G), rows_per_block, P, gx, gy,
        )  # fmt: skip
        self.calls += 1
        self.instances.append(inst)
