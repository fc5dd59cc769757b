"""boostnet: shallow neural networks grown by greedy hidden-unit selection with an L1 certificate."""

__version__ = "0.1.0"

from ._greedy import StepRecord  # noqa: E402
from .cv import BoostNetClassifierCV, BoostNetRegressorCV  # noqa: E402
from .estimators import BoostNetClassifier, BoostNetRegressor  # noqa: E402
from .exceptions import (  # noqa: E402
    BoostNetError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
)
from .io import load  # noqa: E402
from .pathwise import PathPoint, PathResult, alpha_grid  # noqa: E402
from .pathwise import path as path  # noqa: E402

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
