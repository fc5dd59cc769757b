"""boostnet: shallow neural networks grown by greedy hidden-unit selection with an L1 certificate.

The public names are imported on first use (PEP 562), so that ``import boostnet`` and the command
line's entry point (:mod:`boostnet._entry`) start without NumPy, scikit-learn and numba: a Ctrl-C
while those load is then a one-line "interrupted" (exit 130), not a traceback.
"""

from __future__ import annotations

import importlib

from ._version import __version__

#: public name -> the submodule that defines it
_PUBLIC = {
    "StepRecord": "_greedy",
    "BoostNetClassifierCV": "cv",
    "BoostNetRegressorCV": "cv",
    "BoostNetClassifier": "estimators",
    "BoostNetRegressor": "estimators",
    "path": "estimators",
    "BoostNetError": "exceptions",
    "ConfigError": "exceptions",
    "DataError": "exceptions",
    "DeviceError": "exceptions",
    "ModelFileError": "exceptions",
    "load": "io",
    "PathPoint": "pathwise",
    "PathResult": "pathwise",
    "alpha_grid": "pathwise",
}

__all__ = [
    "BoostNetClassifier",
    "BoostNetClassifierCV",
    "BoostNetError",
    "BoostNetRegressor",
    "BoostNetRegressorCV",
    "ConfigError",
    "DataError",
    "DeviceError",
    "ModelFileError",
    "PathPoint",
    "PathResult",
    "StepRecord",
    "alpha_grid",
    "path",
    "load",
    "__version__",
]


def register_models() -> None:
    """Import the modules whose estimator classes join io's model registry (``register_model``),
    so that a model file may name any of them."""
    for module in ("estimators", "cv"):
        importlib.import_module(f".{module}", __name__)


def __getattr__(name: str):
    if name in _PUBLIC:
        register_models()
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule, as `boostnet.io` was reachable once `boostnet` was imported
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
