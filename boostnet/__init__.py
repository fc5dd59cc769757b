"""boostnet: shallow neural networks grown by greedy hidden-unit selection with an L1 certificate."""

from ._greedy import StepRecord
from ._version import __version__
from .cv import BoostNetClassifierCV, BoostNetRegressorCV
from .estimators import BoostNetClassifier, BoostNetRegressor, path
from .exceptions import (
    BoostNetError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
)
from .io import load
from .pathwise import PathPoint, PathResult, alpha_grid

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
