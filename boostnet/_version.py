"""The package version (its own module: the package and io.py read it without importing the rest)."""

__version__ = "0.1.0"
