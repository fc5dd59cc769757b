"""Exceptions raised by boostnet.

Library code raises these; only the command-line layer turns them into a message and an exit code.
"""

from __future__ import annotations


class BoostNetError(Exception):
    """Base class of every error boostnet raises on purpose."""


class DataError(BoostNetError, ValueError):
    """The data given to boostnet cannot be used (NaN/inf, wrong shape, single class, ...)."""


class ConfigError(BoostNetError, ValueError):
    """A parameter or option has a value boostnet does not accept."""


class DeviceError(BoostNetError, RuntimeError):
    """The requested compute device is not usable (e.g. ``device="gpu"`` without CuPy or a GPU)."""


class ModelFileError(BoostNetError, ValueError):
    """A saved model file is missing, corrupted, or was not written by boostnet."""
