"""boostnet: shallow neural networks grown by greedy hidden-unit selection with an L1 certificate."""

__version__ = "0.1.0"

from ._greedy import StepRecord  # noqa: E402
from .estimators import BoostNetClassifier, BoostNetRegressor  # noqa: E402
from .exceptions import (  # noqa: E402
    BoostNetError,
    ConfigError,
    DataError,
    DeviceError,
    ModelFileError,
)
from .io import load  # noqa: E402

__all__ = [
    "BoostNetClassifier",
    "BoostNetError",
    "BoostNetRegressor",
    "ConfigError",
    "DataError",
    "DeviceError",
    "ModelFileError",
    "StepRecord",
    "load",
    "__version__",
]
