"""The GPU scorer's chunk loop and epilogue kernel source, run on the CPU.

The kernel source is built with g++ (``tests/support/kernel_emu.py``: CUDA threads as std::threads) and
plugged into :class:`boostnet.gpu_scoring.GpuScorer` on NumPy arrays; the scores must match the
float64 reference. What this cannot check (cuBLAS TF32, NVRTC compilation, speed) is in
``tests/test_gpu.py`` and ``experiments/gpu_check.py``, which need a GPU.
"""

import numpy as np
import pytest
from kernel_emu import EmulatedEpilogue, available
from score_ref import assert_sign_scores, scores_by_hand

from boostnet.activations import ACTIVATIONS
from boostnet.app.bench import random_pool
from boostnet.gpu_scoring import GpuScorer
from boostnet.penalties import L1, GroupL1

_WHY = available()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=str(_WHY))


@pytest.fixture(scope="module")
def emu():
    return EmulatedEpilogue()


@pytest.mark.parametrize("act_name", list(ACTIVATIONS))
@pytest.mark.parametrize(("n", "d", "M", "K"), [(37, 5, 45, 1), (301, 19, 100, 3), (77, 7, 70, 10)])
def test_fp32_screen_matches_the_reference(emu, act_name, n, d, M, K):
    act = ACTIVATIONS[act_name]
    X, G, W, c = random_pool(n, d, M, K, n + M, act)
    # chunks of 32 candidates and 16 rows per block: several chunks, a partial last chunk, a
    # partial last row block, candidates not a multiple of the 32-wide block
    scorer = GpuScorer(X, screen="fp32", chunk=32, epilogue=emu, rows_per_block=16)
    ref = scores_by_hand(X, W, c, G, act_name, L1)
    res = scorer.score(W, c, G, act, L1, k=8)
    assert emu.calls > 0
    if act_name == "sign":
        # each candidate's hyperplane passes through a data point (z = 0 there up to rounding):
        # either sign at the points within float32 error of it, every other point exact
        assert_sign_scores(res.scores, X, W, c, G, L1, "float32", rtol=1e-5)
    else:
        np.testing.assert_allclose(res.scores, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert res.top[0] == int(np.argmax(ref))
    assert res.top_scores[0] == pytest.approx(ref.max(), rel=1e-12)


@pytest.mark.parametrize("cpt", [1, 2, 4])
@pytest.mark.parametrize("act_name", ["relu", "sign"])
@pytest.mark.parametrize(("n", "d", "M", "K"), [(37, 5, 45, 1), (150, 9, 300, 10), (60, 4, 70, 32)])
def test_every_candidates_per_thread_matches_the_reference(emu, act_name, cpt, n, d, M, K):
    # chunks of 96 or 64 candidates: with 32 x cpt candidates per block, the last block of a chunk
    # is partial for some cpt and the last chunk is partial, so every bound check runs
    act = ACTIVATIONS[act_name]
    X, G, W, c = random_pool(n, d, M, K, 11 * n + M, act)
    scorer = GpuScorer(X, screen="fp32", chunk=96, epilogue=emu, rows_per_block=16, cpt=cpt)
    ref = scores_by_hand(X, W, c, G, act_name, L1)
    res = scorer.score(W, c, G, act, L1, k=8)
    assert emu.instances[-1][2] == cpt
    if act_name == "sign":
        assert_sign_scores(res.scores, X, W, c, G, L1, "float32", rtol=1e-5)
    else:
        np.testing.assert_allclose(res.scores, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert res.top[0] == int(np.argmax(ref))


@pytest.mark.parametrize("act_name", ["relu", "tanh", "sigmoid"])
def test_fp16_screen_keeps_the_best_unit(emu, act_name):
    act = ACTIVATIONS[act_name]
    X, G, W, c = random_pool(200, 12, 96, 10, 5, act)
    scorer = GpuScorer(X, screen="fp16", chunk=64, epilogue=emu, rows_per_block=64)
    ref = scores_by_hand(X, W, c, G, act_name, GroupL1)
    res = scorer.score(W, c, G, act, GroupL1, k=16)
    # float16 inputs and Z: ~1e-3 relative error on z, so on the scores too
    np.testing.assert_allclose(res.scores, ref, rtol=0, atol=3e-3 * np.abs(ref).max())
    assert res.top[0] == int(np.argmax(ref))


def test_k32_and_every_output_reduced(emu):
    act = ACTIVATIONS["relu"]
    X, G, W, c = random_pool(50, 4, 40, 32, 9, act)
    G[:, :31] = 0.0  # only the last output carries signal: a K indexing slip would lose it
    scorer = GpuScorer(X, screen="fp32", chunk=32, epilogue=emu, rows_per_block=8)
    ref = scores_by_hand(X, W, c, G, "relu", L1)
    res = scorer.score(W, c, G, act, L1, k=4)
    np.testing.assert_allclose(res.scores, ref, rtol=1e-5, atol=1e-12)
    assert res.top[0] == int(np.argmax(ref))


def test_out_of_memory_retries_with_smaller_chunks(emu):
    act = ACTIVATIONS["relu"]
    X, G, W, c = random_pool(60, 4, 200, 3, 2, act)

    class Flaky:
        """Fails like an allocator would on the first big buffer."""

        def __init__(self):
            self.failed = False

        def __call__(self, Z, *args):
            if Z.shape[1] > 64 and not self.failed:
                self.failed = True
                raise MemoryError("out of memory (simulated)")
            return emu(Z, *args)

    flaky = Flaky()
    scorer = GpuScorer(X, screen="fp32", chunk=256, epilogue=flaky, rows_per_block=16)
    res = scorer.score(W, c, G, act, L1, k=4)
    assert flaky.failed and scorer.chunk == 128
    ref = scores_by_hand(X, W, c, G, "relu", L1)
    np.testing.assert_allclose(res.scores, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_fp16_screen_falls_back_when_z_could_overflow(emu):
    act = ACTIVATIONS["relu"]
    X, G, W, c = random_pool(50, 4, 40, 3, 3, act)
    X = X * 3e4  # ||x|| ~ 6e4: float16 would overflow
    scorer = GpuScorer(X, screen="fp16", chunk=32, epilogue=emu, rows_per_block=16)
    calls = []

    def spy(Z, *args):
        calls.append(Z.dtype)
        return emu(Z, *args)

    scorer._epilogue = spy
    res = scorer.score(W, c, G, act, L1, k=4)
    assert calls and all(dt == np.float32 for dt in calls)
    ref = scores_by_hand(X, W, c, G, "relu", L1)
    np.testing.assert_allclose(res.scores, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
