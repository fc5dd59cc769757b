"""Worker threads on the host, and BLAS held to one thread while they run.

Some passes split into independent parts that each call compiled code or BLAS without the GIL:
the Newton preconditioner's block inverses (:mod:`boostnet._lapack`) and the slide's row blocks
(:mod:`boostnet.slide`). Each part runs on one core with BLAS on one thread (``single_thread``):
many small products threaded by OpenBLAS wait on each other whenever the host takes a core away
for a moment (measured on the 2-core VM: a c26-sized slide with 2-thread products alternates
between 175 and 330 ms from one run to the next; one thread per row share, 137-146 ms).

Where it does not pay: OpenBLAS's worker threads keep spinning for ~0.1 s after each threaded
product, so inside a fit (where one product follows another) a worker thread shares its core
with a spinning one. Measured right after a threaded product (experiments/README.md, section 8):
the slide's row shares 240-279 -> 184-191 ms (8 steps, c26), the 26 inverses 130 -> ~90 ms; but
the Newton Hessian product 10 -> 17 ms, a re-fit step's one pass 11.7 -> 18.3 ms, the curvature
model's per-output matrices 19 -> 26 ms (Fashion-MNIST's shapes) and the refinement's ascent
(c11: no change in a fit) lose or gain nothing, so those stay on the calling thread.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_thread():
    """Context manager: BLAS and LAPACK on one thread while it is open."""
    return _controller().limit(limits=1, user_api="blas")


def n_workers() -> int:
    """The cores this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


@cache
def _pool(pid: int) -> ThreadPoolExecutor:
    """The worker threads of process ``pid`` (a forked child gets its own: the parent's threads
    are not copied, and its pool would never run the work)."""
    return ThreadPoolExecutor(n_workers(), "boostnet")


def run_parts(work, parts) -> list:
    """``[work(p) for p in parts]``, the parts on the worker threads (one part: on this thread),
    with BLAS on one thread meanwhile."""
    with single_thread():
        if len(parts) == 1:
            return [work(parts[0])]
        return list(_pool(os.getpid()).map(work, parts))
