import signal
import sys
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    # the tests of Ctrl-C send SIGINT to this process or to commands it starts; a shell starts a
    # background job (`pytest &` in a script) with SIGINT ignored, which boostnet rightly keeps
    # (tests/test_bad_input.py::test_an_inherited_sig_ign_is_respected), so those tests saw no
    # signal there. The suite runs as a foreground process would.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


FAKE_CUPY = Path(__file__).parent / "support" / "fake_cupy"


@pytest.fixture
def fake_cupy(monkeypatch):
    """``import cupy`` gives the strict NumPy stand-in (tests/support/fake_cupy) for the test's duration.

    boostnet then takes its GPU branches on this machine: the device-resident loop, the GpuScorer
    with the kernel source built by g++, the CLI's ``--device gpu``. A real CuPy, if one was
    imported, is put back afterwards.
    """
    from kernel_emu import available

    why = available()
    if why is not None:
        pytest.skip(why)
    saved = {
        k: sys.modules.pop(k) for k in list(sys.modules) if k == "cupy" or k.startswith("cupy.")
    }
    monkeypatch.syspath_prepend(str(FAKE_CUPY))
    monkeypatch.delenv("BOOSTNET_DEVICE", raising=False)
    import cupy

    assert cupy.__version__.endswith("+fake"), cupy.__file__
    cupy._fake.reset()
    try:
        yield cupy
    finally:
        for k in [k for k in sys.modules if k == "cupy" or k.startswith("cupy.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="session")
def eleven_classes():
    """300 x 10 standardised rows, 11 classes (``make_classification``): many classes, where a
    plain first pool's best falls short of lambda_max by a seed's luck."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        n_samples=300, n_features=10, n_informative=8, n_redundant=0, n_classes=11,
        n_clusters_per_class=1, class_sep=1.5, random_state=0,
    )  # fmt: skip
    return StandardScaler().fit_transform(X), y


@pytest.fixture
def relu_dictionary(rng):
    """A finite relu dictionary scored exhaustively (60 units; 150 points in 3-D, 3 classes):
    ``(X, y, W, c, kw)``, with the estimator keywords that make the loop solve the L1 problem over
    the dictionary."""
    from boostnet.activations import ACTIVATIONS
    from boostnet.samplers import FixedDictionary, RandomDirections

    n, d, M = 150, 3, 60
    X = rng.standard_normal((n, d))
    act = ACTIVATIONS["relu"]
    W, c = RandomDirections().sample(X, None, M, np.random.default_rng(3), act, 1.0)
    kw = dict(
        alpha_ratio=0.03, refine=False, tol=1e-9, refit_tol=1e-10, n_candidates=M, top_k=M,
        dtype="float64", sampler=FixedDictionary(W, c), random_state=0,
    )  # fmt: skip
    return X, np.argmax(X, axis=1), W, c, kw
