"""Data loading for ``boostnet train --data SRC``: named data sets, synthetic sets and data files.

``SRC`` is first looked up among the named data sets (:data:`NAMED`), then treated as a path:

* ``digits`` (the default), ``iris``, ``wine``, ``breast-cancer``, ``diabetes`` (regression):
  scikit-learn's bundled data sets.
* ``moons``, ``circles``, ``xor``, ``double-moon``, ``friedman1`` (regression): synthetic data,
  reproducible from ``seed``, with ``n_samples`` points (default 500) and ``noise``.
* ``fashion-mnist``: the four IDX files of Fashion-MNIST, read from ``data_dir`` or from
  ``/usr/share/datasets/fashion-mnist/`` (Debian package ``dataset-fashion-mnist``), with its
  official 60000 / 10000 train / test split.
* a ``.csv``, ``.tsv`` or ``.txt`` file (optionally gzipped, e.g. ``data.csv.gz``): one row per
  sample; the target is the last column unless ``target`` names another one.
* a ``.npz`` file with arrays ``X`` (n, d) and ``y`` (n,) or (n, K) (and optionally ``X_test``,
  ``y_test``); pickled object arrays are never loaded.
* an svmlight / libsvm file (``.svm``, ``.svmlight``, ``.libsvm``, optionally gzipped), densified.
* a directory of MNIST-format IDX files (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]`` and optionally the ``t10k-`` pair, used as the test split).

Every problem with the data or the options raises :class:`~boostnet.exceptions.DataError` with a
one-line message naming the problem.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import math
import operator
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from ..targets import infer_task

__all__ = [
    "DEFAULT_DATA",
    "FASHION_MNIST_DIR",
    "NAMED",
    "Dataset",
    "dataset_table",
    "infer_task",
    "load_data",
    "read_idx",
]

#: Names :func:`load_data` knows, in the order :func:`dataset_table` lists them.
NAMED: tuple[str, ...] = (
    "digits",
    "iris",
    "wine",
    "breast-cancer",
    "diabetes",
    "moons",
    "circles",
    "xor",
    "double-moon",
    "friedman1",
    "fashion-mnist",
)

#: The data set the command line uses when ``--data`` is not given.
DEFAULT_DATA = "digits"

#: Where the Debian package ``dataset-fashion-mnist`` installs the Fashion-MNIST files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

TASKS = ("classification", "regression")

_SKLEARN = ("digits", "iris", "wine", "breast-cancer", "diabetes")
_SYNTHETIC = ("moons", "circles", "xor", "double-moon", "friedman1")
_SKLEARN_SOURCE = "scikit-learn (bundled)"

#: Default noise of each synthetic data set.
_DEFAULT_NOISE = {"moons": 0.2, "circles": 0.1, "xor": 0.0, "double-moon": 0.0, "friedman1": 1.0}
_DEFAULT_N_SAMPLES = 500

# name -> (task, samples, features, classes, source), with the default options.
_TABLE = {
    "digits": ("classification", 1797, 64, 10, _SKLEARN_SOURCE),
    "iris": ("classification", 150, 4, 3, _SKLEARN_SOURCE),
    "wine": ("classification", 178, 13, 3, _SKLEARN_SOURCE),
    "breast-cancer": ("classification", 569, 30, 2, _SKLEARN_SOURCE),
    "diabetes": ("regression", 442, 10, None, _SKLEARN_SOURCE),
    "moons": ("classification", 500, 2, 2, "synthetic (scikit-learn make_moons)"),
    "circles": ("classification", 500, 2, 2, "synthetic (scikit-learn make_circles)"),
    "xor": ("classification", 500, 2, 2, "synthetic (parity of the signs)"),
    "double-moon": ("classification", 500, 2, 2, "synthetic (Haykin's double moon)"),
    "friedman1": ("regression", 500, 10, None, "synthetic (scikit-learn make_friedman1)"),
    "fashion-mnist": (
        "classification",
        70000,
        784,
        10,
        f"IDX files in {FASHION_MNIST_DIR} (dataset-fashion-mnist)",
    ),
}

_TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
_SVMLIGHT_SUFFIXES = (".svm", ".svmlight", ".libsvm")
_SUPPORTED = ".csv, .tsv, .txt, .npz, .svm/.svmlight/.libsvm, or a directory of IDX files"

# IDX file stems; each may be spelt with "-" or "." before "idx" and may end in ".gz".
_IDX_STEMS = {
    "train_images": ("train-images", "idx3-ubyte"),
    "train_labels": ("train-labels", "idx1-ubyte"),
    "test_images": ("t10k-images", "idx3-ubyte"),
    "test_labels": ("t10k-labels", "idx1-ubyte"),
}
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(eq=False)
class Dataset:
    """A loaded data set: inputs, targets, the task and where they came from.

    Attributes
    ----------
    name : str
        Short name: the data set's name (``"digits"``) or the file / directory name.
    X : ndarray of shape (n_samples, n_features)
        Inputs, float64, finite.
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets: class labels (ints or strings) for classification, float64 for regression.
    task : {"classification", "regression"}
        What to fit.
    source : str
        Human-readable origin: ``"scikit-learn (bundled)"``, ``"synthetic (seed 0, noise 0.2)"``,
        a path, ...
    feature_names : list of str or None
        Column names, when the source has them.
    X_test : ndarray of shape (n_test, n_features) or None
        The source's official test inputs, when it defines a split (Fashion-MNIST, an IDX
        directory with ``t10k`` files, an ``.npz`` file with ``X_test`` and ``y_test``).
    y_test : ndarray of shape (n_test,) or (n_test, n_outputs) or None
        The official test targets.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    task: str
    source: str
    feature_names: list[str] | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def n_classes(self) -> int | None:
        """Number of distinct labels in ``y`` and ``y_test`` (classification), else None."""
        if self.task != "classification":
            return None
        labels = self.y if self.y_test is None else np.concatenate([self.y, self.y_test])
        return int(np.unique(labels).shape[0])

    def __eq__(self, other) -> bool:
        if not isinstance(other, Dataset):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # mutable, compared by value


# --------------------------------------------------------------------------- public functions


def dataset_table() -> list[dict]:
    """Describe the named data sets (with their default options), without loading any.

    Returns
    -------
    list of dict
        One dict per name in :data:`NAMED`, with keys ``name``, ``task``, ``samples``,
        ``features``, ``classes`` (None for regression) and ``source``. Fashion-MNIST's
        ``samples`` counts its training and test parts together (60000 + 10000).
    """
    rows = []
    for name in NAMED:
        task, samples, features, classes, source = _TABLE[name]
        rows.append(
            {
                "name": name,
                "task": task,
                "samples": samples,
                "features": features,
                "classes": classes,
                "source": source,
            }
        )
    return rows


def load_data(
    src: str,
    *,
    target: str | None = None,
    task: str | None = None,
    n_samples: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    n_features: int | None = None,
    separation: float | None = None,
) -> Dataset:
    """Load a named data set, a synthetic one, or a data file / directory.

    Parameters
    ----------
    src : str or path-like
        A name from :data:`NAMED` (case-insensitive, ``_`` accepted for ``-``), else a path:
        ``.csv`` / ``.tsv`` / ``.txt`` (optionally ``.gz``), ``.npz``, ``.svm`` / ``.svmlight`` /
        ``.libsvm``, or a directory of MNIST-format IDX files.
    target : str or False, optional
        Text files only: the target column, by header name or 0-based index (negative counts
        from the end). Default: the last column. ``False``: the file has no target column
        (every column is a feature; ``y`` is None), for predictions on unlabeled data.
    task : {"classification", "regression"}, optional
        Force the task; by default :func:`infer_task` decides from ``y``.
    n_samples : int, optional
        Synthetic sets only: number of points (default 500).
    noise : float, optional
        Synthetic sets only: standard deviation of the gaussian noise. Defaults: moons 0.2,
        circles 0.1, xor 0.0, double-moon 0.0, friedman1 1.0. For ``xor`` and ``double-moon`` it
        is jitter added to the points after their labels are drawn; for ``friedman1`` it is
        added to ``y``.
    seed : int, default 0
        Seed of the synthetic sets (ignored by the others).
    data_dir : str, optional
        Fashion-MNIST only: directory holding its four IDX files (default
        ``/usr/share/datasets/fashion-mnist``).
    n_features : int, optional
        ``xor``: dimension (default 2); ``friedman1``: number of features, at least 5 (default
        10); svmlight files: number of columns (default: the largest feature index seen).
    separation : float, optional
        ``double-moon`` only: vertical gap ``d`` between the two moons (default 1: linearly
        separable without noise). ``d < 0`` makes the moons interlock; for ``d`` below about
        ``-3`` (with ``noise`` 0) no line separates them (Haykin uses ``d = -4``).

    Returns
    -------
    Dataset
        ``X`` of shape (n_samples, n_features) float64 and finite; ``y`` of shape (n_samples,)
        with class labels, or float64 of shape (n_samples,) or (n_samples, n_outputs) for
        regression.

    Raises
    ------
    DataError
        For an unknown name, a missing or unreadable file, an option that does not apply to the
        source, non-numeric or missing or non-finite features, a single-class ``y``, ...

    Notes
    -----
    ``double-moon`` is the two-moons benchmark of Haykin (*Neural Networks and Learning
    Machines*, ch. 1) also used by Bengio et al. (2005): two half rings of radius 10 and width 6,
    the upper one (label 0) centred at the origin, the lower one (label 1) flipped and shifted by
    +10 in x and -1 in y (separation d = 1). Radii and angles are drawn uniformly; the classes
    are balanced (the first class gets the extra point when ``n_samples`` is odd).

    ``xor`` draws ``X`` uniformly in [-1, 1]^d; the label is the parity of the number of positive
    coordinates (of the noise-free point).
    """
    if task is not None and task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected 'classification' or 'regression'")
    if isinstance(src, os.PathLike):
        src = os.fspath(src)
    if not isinstance(src, str) or not src.strip():
        raise DataError(f"data source must be a data set name or a path, got {src!r}")
    key = src.strip().lower().replace("_", "-")
    options = {
        "target": target,
        "n_samples": n_samples,
        "noise": noise,
        "data_dir": data_dir,
        "n_features": n_features,
        "separation": separation,
    }
    if key in NAMED:
        if key in _SKLEARN:
            _check_options(key, options, allowed=())
            ds = _load_sklearn(key)
        elif key in _SYNTHETIC:
            allowed = ("n_samples", "noise") + (
                ("n_features",) if key in ("xor", "friedman1") else ()
            )
            allowed += ("separation",) if key == "double-moon" else ()
            _check_options(key, options, allowed=allowed)
            ds = _load_synthetic(key, n_samples, noise, seed, n_features, separation)
        else:
            _check_options(key, options, allowed=("data_dir",))
            ds = _load_fashion_mnist(data_dir)
        return _finish(ds, task, key)

    path = Path(src).expanduser()
    if not path.exists():
        if os.sep in src or "/" in src or path.suffix:
            raise DataError(f"file not found: {src}")
        hint = difflib.get_close_matches(key, NAMED, n=1)
        did = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise DataError(
            f"unknown data set {src!r}{did}; known: {', '.join(NAMED)}; "
            "or give the path of a data file"
        )
    if path.is_dir():
        _check_options(src, options, allowed=())
        ds = _load_idx_dir(path, src)
        return _finish(ds, task, src)
    suffixes = [s.lower() for s in path.suffixes]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".gz" and len(suffixes) >= 2 and suffixes[-2] in _TEXT_SUFFIXES + _SVMLIGHT_SUFFIXES:
        kind = suffixes[-2]
    if kind in _TEXT_SUFFIXES:
        _check_options(src, options, allowed=("target",))
        ds = _load_text(path, src, kind, target)
    elif kind == ".npz":
        _check_options(src, options, allowed=())
        ds = _load_npz(path, src)
    elif kind in _SVMLIGHT_SUFFIXES:
        _check_options(src, options, allowed=("n_features",))
        ds = _load_svmlight(path, src, n_features)
    else:
        raise DataError(
            f"unsupported file type {path.suffix or '(none)'!r} for {src}; supported: {_SUPPORTED}"
        )
    return _finish(ds, task, src)


#: Backwards-compatible name of :func:`load_data`.


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip compression is detected from the content, not the name.

    Returns
    -------
    ndarray of shape dims
        The array with the dimensions the header gives, in native byte order (e.g. uint8 of
        shape (n, 28, 28) for MNIST images, (n,) for labels).

    Raises
    ------
    DataError
        The file cannot be read, is not an IDX file, or is truncated or has trailing bytes.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {_os_reason(exc)}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"cannot read {path}: gzip data is truncated or corrupted ({exc})"
            ) from None
    if len(raw) < 4:
        raise DataError(f"cannot read {path}: truncated IDX file ({len(raw)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"cannot read {path}: not an IDX file (magic number 0x{raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"cannot read {path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataError(
            f"cannot read {path}: truncated IDX file (dimensions {'x'.join(map(str, dims))} "
            f"need {expected} data bytes, found {found})"
        )
    if found > expected:
        raise DataError(
            f"cannot read {path}: IDX file has {found - expected} bytes beyond its "
            f"dimensions {'x'.join(map(str, dims))}"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


# --------------------------------------------------------------------------- options and checks


def _check_options(what: str, options: dict, allowed: tuple[str, ...]) -> None:
    """Refuse options that do not apply to the source ``what``."""
    applies = {
        "target": "CSV/TSV/text files",
        "n_samples": "synthetic data sets (" + ", ".join(_SYNTHETIC) + ")",
        "noise": "synthetic data sets (" + ", ".join(_SYNTHETIC) + ")",
        "data_dir": "fashion-mnist",
        "n_features": "xor, friedman1 and svmlight files",
        "separation": "double-moon",
    }
    for opt, value in options.items():
        if value is not None and opt not in allowed:
            raise DataError(f"{opt} applies only to {applies[opt]}, not to {what!r}")


def _int_option(name: str, value, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        v = operator.index(value)
    except TypeError:
        raise DataError(f"{name} must be an integer, got {value!r}") from None
    if v < minimum:
        raise DataError(f"{name} must be at least {minimum}, got {v}")
    return v


def _number_option(name: str, value, minimum: float | None = None) -> float:
    """A finite float option (``noise``, ``separation``), at least ``minimum`` if given."""
    try:
        if isinstance(value, bool):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise DataError(f"{name} must be a finite number{bound}, got {value!r}")
    return v


def _finish(ds: Dataset, task: str | None, where: str) -> Dataset:
    """Validate ``X`` / ``y`` (and the test split), settle the task and the label types.

    ``where`` names the source in messages (a data set name or the path as given).
    """
    X = _check_X(ds.X, f"features of {where}")
    if X.shape[0] == 0:
        raise DataError(f"no samples in {where}")
    if ds.y is None:  # read without a target column (predict --no-target)
        return Dataset(
            name=ds.name,
            X=X,
            y=None,
            task=task or "",
            source=ds.source,
            feature_names=ds.feature_names,
        )
    y = np.asarray(ds.y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise DataError(
            f"X and y of {where} do not match: X has {X.shape[0]} rows, y has shape {y.shape}"
        )
    if task is None:
        task = infer_task(y)
    y = _check_y(y, task, f"y of {where}")
    if task == "classification":
        n = np.unique(y).shape[0]
        if n < 2:
            only = repr(y[0].item() if hasattr(y[0], "item") else y[0])
            raise DataError(
                f"y has only 1 class ({only}) in {where}; classification needs at least 2"
            )
        if n > max(20, y.shape[0] // 2):
            frac = y.dtype.kind == "f" and not np.all(y == np.round(y))
            example = y[np.argmax(y != np.round(y))] if frac else y[0]
            raise DataError(
                f"classification with {n} classes in {y.shape[0]} samples of {where} (labels "
                f"such as {str(example)!r}): fewer than 2 samples per class; for real-valued "
                "targets use --task regression (or leave --task out)"
            )
    X_test = y_test = None
    if ds.X_test is not None:
        X_test = _check_X(ds.X_test, f"test features of {where}")
        if X_test.shape[1] != X.shape[1]:
            raise DataError(
                f"test features of {where} have {X_test.shape[1]} columns, "
                f"training features {X.shape[1]}"
            )
        y_test = np.asarray(ds.y_test)
        if y_test.ndim == 2 and y_test.shape[1] == 1:
            y_test = y_test[:, 0]
        if (
            y_test.ndim != y.ndim
            or y_test.shape[0] != X_test.shape[0]
            or (y.ndim == 2 and y_test.shape[1] != y.shape[1])
        ):
            raise DataError(
                f"test part of {where} does not match: X_test has {X_test.shape[0]} rows, "
                f"y_test has shape {y_test.shape} (y has shape {y.shape})"
            )
        y_test = _check_y(y_test, task, f"y_test of {where}")
        if task == "classification" and y_test.dtype.kind != y.dtype.kind:
            # e.g. integral float labels in one part, non-integral in the other
            y, y_test = (
                y.astype(np.result_type(y, y_test)),
                y_test.astype(np.result_type(y, y_test)),
            )
    return Dataset(
        name=ds.name,
        X=X,
        y=y,
        task=task,
        source=ds.source,
        feature_names=ds.feature_names,
        X_test=X_test,
        y_test=y_test,
    )


def _check_X(X, what: str) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"non-numeric values in {what} (dtype {X.dtype})")
    if X.ndim != 2:
        raise DataError(f"{what} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] == 0:
        raise DataError(f"no feature columns in {what}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataError(
            f"NaN or infinite values in {what} (first at sample {bad[0]}, feature {bad[1]})"
        )
    return X


def _check_y(y: np.ndarray, task: str, what: str) -> np.ndarray:
    if y.size and y.dtype.kind not in "biufUSO":
        raise DataError(f"unsupported dtype {y.dtype} for {what}")
    if task == "regression":
        if y.dtype.kind not in "biuf":
            example = y.ravel()[0] if y.size else ""
            raise DataError(
                f"regression needs numeric targets, but {what} holds labels such as {str(example)!r}"
            )
        y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise DataError(f"NaN or infinite values in {what}")
        return y
    if y.ndim != 1:
        raise DataError(f"classification needs 1-D labels, but {what} has shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"NaN or infinite values in {what}")
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
    elif y.dtype.kind == "S":
        y = np.char.decode(y, "utf-8", errors="replace")
    elif y.dtype.kind == "O":
        y = y.astype(str)
    return y


# --------------------------------------------------------------------------- named sources


def _load_sklearn(name: str) -> Dataset:
    from sklearn import datasets as skd  # noqa: PLC0415

    loaders = {
        "digits": skd.load_digits,
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast-cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }
    try:
        bunch = loaders[name]()
    except OSError as exc:  # a broken scikit-learn installation
        raise DataError(f"cannot load {name} from scikit-learn: {_os_reason(exc)}") from None
    y = np.asarray(bunch.target)
    if name == "diabetes":
        y = y.astype(np.float64)
    return Dataset(
        name=name,
        X=np.asarray(bunch.data, dtype=np.float64),
        y=y,
        task=_TABLE[name][0],
        source=_SKLEARN_SOURCE,
        feature_names=[str(f) for f in bunch.feature_names],
    )


def _load_synthetic(name, n_samples, noise, seed, n_features, separation=None) -> Dataset:
    from sklearn import datasets as skd  # noqa: PLC0415

    n = _DEFAULT_N_SAMPLES if n_samples is None else _int_option("n_samples", n_samples, 1)
    noise = _DEFAULT_NOISE[name] if noise is None else _number_option("noise", noise, 0)
    seed = _int_option("seed", seed, 0)
    if seed >= 2**32:
        raise DataError(f"seed must be below 2**32, got {seed}")
    if name == "moons":
        X, y = skd.make_moons(n_samples=n, noise=noise, random_state=seed)
    elif name == "circles":
        X, y = skd.make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
    elif name == "xor":
        d = 2 if n_features is None else _int_option("n_features", n_features, 1)
        X, y = _xor(n, d, noise, np.random.default_rng(seed))
    elif name == "double-moon":
        sep = 1.0 if separation is None else _number_option("separation", separation)
        X, y = _double_moon(n, noise, np.random.default_rng(seed), d_sep=sep)
    else:
        d = 10 if n_features is None else _int_option("n_features", n_features, 5)
        X, y = skd.make_friedman1(n_samples=n, n_features=d, noise=noise, random_state=seed)
    return Dataset(
        name=name,
        X=X,
        y=y,
        task=_TABLE[name][0],
        source=f"synthetic (seed {seed}, noise {noise:g})",
    )


def _xor(n: int, d: int, noise: float, rng: np.random.Generator):
    """Parity problem: X (n, d) uniform in [-1, 1]^d, y (n,) parity of the positive coordinates."""
    X = rng.uniform(-1.0, 1.0, size=(n, d))
    y = (np.count_nonzero(X > 0, axis=1) % 2).astype(np.int64)
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y


def _double_moon(
    n: int,
    noise: float,
    rng: np.random.Generator,
    radius: float = 10.0,
    width: float = 6.0,
    d_sep: float = 1.0,
):
    """Haykin's double moon: X (n, 2), y (n,) in {0, 1}, balanced, in shuffled order."""
    y = np.zeros(n, dtype=np.int64)
    y[(n + 1) // 2 :] = 1
    r = rng.uniform(radius - width / 2, radius + width / 2, size=n)
    theta = rng.uniform(0.0, np.pi, size=n)
    x1 = r * np.cos(theta)
    x2 = r * np.sin(theta)
    lower = y == 1
    x1[lower] += radius
    x2[lower] = -x2[lower] - d_sep
    X = np.column_stack([x1, x2])
    if noise > 0:
        X = X + rng.normal(scale=noise, size=X.shape)
    perm = rng.permutation(n)
    return X[perm], y[perm]


def _load_fashion_mnist(data_dir: str | None) -> Dataset:
    directory = Path(FASHION_MNIST_DIR if data_dir is None else data_dir).expanduser()
    files = _find_idx_files(directory) if directory.is_dir() else {}
    missing = [k for k in _IDX_STEMS if k not in files]
    if missing:
        names = ", ".join(f"{_IDX_STEMS[k][0]}-{_IDX_STEMS[k][1]}[.gz]" for k in missing)
        raise DataError(
            f"fashion-mnist files not found in {directory} (missing {names}); "
            "`apt-get install dataset-fashion-mnist` provides them, or point --data-dir at a "
            "directory holding them"
        )
    ds = _read_idx_files(files, "fashion-mnist", str(directory))
    return ds


# --------------------------------------------------------------------------- IDX directories


def _find_idx_files(directory: Path) -> dict[str, Path]:
    found = {}
    for key, (stem, kind) in _IDX_STEMS.items():
        for sep in ("-", "."):
            for ext in (".gz", ""):
                p = directory / f"{stem}{sep}{kind}{ext}"
                if p.is_file():
                    found[key] = p
                    break
            if key in found:
                break
    return found


def _load_idx_dir(path: Path, src: str) -> Dataset:
    files = _find_idx_files(path)
    if "train_images" not in files or "train_labels" not in files:
        raise DataError(
            f"{src} is a directory without MNIST-format IDX files; expected "
            "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] "
            "(and optionally the t10k- pair)"
        )
    if ("test_images" in files) != ("test_labels" in files):
        have, lack = (
            ("t10k-images", "t10k-labels")
            if "test_images" in files
            else ("t10k-labels", "t10k-images")
        )
        raise DataError(f"{src} has {have} but no {lack} IDX file")
    return _read_idx_files(files, path.resolve().name or str(path), src)


def _read_idx_files(files: dict[str, Path], name: str, source: str) -> Dataset:
    def images(key):
        a = read_idx(files[key])
        if a.ndim < 2:
            raise DataError(f"{files[key]} holds a 1-D array, not images (n, rows, cols)")
        return a.reshape(a.shape[0], -1)

    def labels(key, n_images):
        a = read_idx(files[key])
        if a.ndim != 1:
            raise DataError(f"{files[key]} holds an array of shape {a.shape}, not labels (n,)")
        if a.shape[0] != n_images:
            raise DataError(
                f"{files[key]} has {a.shape[0]} labels but its images file has {n_images} images"
            )
        return a.astype(np.int64) if a.dtype.kind in "iu" else a

    X = images("train_images")
    y = labels("train_labels", X.shape[0])
    X_test = y_test = None
    if "test_images" in files:
        X_test = images("test_images")
        y_test = labels("test_labels", X_test.shape[0])
    return Dataset(
        name=name,
        X=X,
        y=y,
        task="classification",
        source=source,
        X_test=X_test,
        y_test=y_test,
    )


# --------------------------------------------------------------------------- files


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _read_text(path: Path, src: str) -> str:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {src}: corrupted gzip data ({exc})") from None
    except OSError as exc:
        raise DataError(f"cannot read {src}: {_os_reason(exc)}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read {src}: not UTF-8 text (byte {exc.start})") from None


def _split_rows(text: str, src: str, kind: str) -> list[tuple[int, list[str]]]:
    """Rows of a delimited text file as (line number, stripped fields), blank lines skipped."""
    if kind == ".csv":
        delimiter = ","
    elif kind == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",\t;| ").delimiter
        except csv.Error:
            delimiter = " "
    rows = []
    if delimiter == " ":  # runs of blanks separate fields
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                rows.append((i, line.split()))
        return rows
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for row in reader:
            if len(row) <= 1 and not "".join(row).strip():
                continue
            rows.append((reader.line_num, [f.strip() for f in row]))
    except csv.Error as exc:
        raise DataError(f"cannot read {src}: {exc}") from None
    return rows


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _load_text(path: Path, src: str, kind: str, target: str | None) -> Dataset:
    rows = _split_rows(_read_text(path, src), src, kind)
    if not rows:
        raise DataError(f"no data in {src} (the file is empty)")
    # Header: the first row has a non-numeric field in a column whose next value is numeric or
    # empty (a first row whose only non-numeric fields are labels, like "5.1,3.5,setosa", is data).
    first = rows[0][1]
    has_header = any(not _is_number(f) and f != "" for f in first)
    if has_header and len(rows) > 1:
        second = rows[1][1]
        has_header = any(
            not _is_number(f)
            and f != ""
            and (j >= len(second) or second[j] == "" or _is_number(second[j]))
            for j, f in enumerate(first)
        )
    header = first if has_header else None
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"no data rows in {src} (only a header)")
    n_cols = len(header) if header is not None else len(body[0][1])
    for line, fields_ in body:
        if len(fields_) != n_cols:
            raise DataError(
                f"row at line {line} of {src} has {len(fields_)} fields, expected {n_cols}"
            )
    if n_cols < 2 and target is not False:
        raise DataError(
            f"{src} has only {n_cols} column; need at least one feature column and a target column"
        )

    def col_name(j: int) -> str:
        return repr(header[j]) if header is not None else f"{j} (0-based)"

    if header is None and len(body) > 2 and n_cols >= 3 and target is not False:
        _refuse_numbered_header(body, n_cols, target, src)
    if target is False:  # no target column: every column is a feature
        t = n_cols
        n_cols += 1
        body = [(line, [*f, ""]) for line, f in body]
    else:
        t = _target_index(target, header, n_cols, src)
    cells = np.array([f for _, f in body], dtype=object)
    lines = [line for line, _ in body]
    X = np.empty((len(body), n_cols - 1), dtype=np.float64)
    feature_cols = [j for j in range(n_cols) if j != t]
    for k, j in enumerate(feature_cols):
        col = cells[:, j]
        try:
            X[:, k] = col.astype(np.float64)
        except ValueError:
            for i, v in enumerate(col):
                if v == "":
                    raise DataError(
                        f"missing value (empty field) in feature column {col_name(j)} of {src} "
                        f"at line {lines[i]}"
                    ) from None
                if not _is_number(v):
                    raise DataError(
                        f"non-numeric values in feature column {col_name(j)} of {src} "
                        f"(e.g. {v!r} at line {lines[i]})"
                    ) from None
            raise DataError(f"cannot parse feature column {col_name(j)} of {src}") from None
        bad = ~np.isfinite(X[:, k])
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"NaN or infinite values in features of {src} "
                f"(column {col_name(j)}, line {lines[i]})"
            )
    ycol = cells[:, t]
    if target is False:
        return Dataset(
            name=path.name,
            X=X,
            y=None,
            task="",
            source=src,
            feature_names=[header[j] for j in feature_cols] if header is not None else None,
        )
    empty = ycol == ""
    if empty.any():
        i = int(np.argmax(empty))
        raise DataError(
            f"missing value (empty field) in target column {col_name(t)} of {src} "
            f"at line {lines[i]}"
        )
    try:
        y = ycol.astype(np.float64)
    except ValueError:
        y = ycol.astype(str)
    return Dataset(
        name=path.name,
        X=X,
        y=y,
        task="",
        source=src,
        feature_names=[header[j] for j in feature_cols] if header is not None else None,
    )


def _refuse_numbered_header(body, n_cols: int, target, src: str) -> None:
    """A first row ``1,2,3`` (or ``0,1,2``) whose target value appears nowhere else is a header of
    column numbers, not a sample: taken as data it would add a sample and a class of its own."""
    first = body[0][1]
    try:
        values = [float(f) for f in first]
    except ValueError:
        return
    if values not in ([float(j) for j in range(n_cols)], [float(j + 1) for j in range(n_cols)]):
        return
    try:
        t = _target_index(target, None, n_cols, src)
    except DataError:
        return
    if all(row[t] != first[t] for _, row in body[1:]):
        raise DataError(
            f"the first line of {src} ({','.join(first)}) looks like a header of column numbers, "
            "not a sample (its target value appears nowhere else); remove it or give the columns "
            "names"
        )


def _target_index(target: str | None, header: list[str] | None, n_cols: int, src: str) -> int:
    if target is None:
        return n_cols - 1
    target = str(target).strip()
    if header is not None and target in header:
        where = [j for j, h in enumerate(header) if h == target]
        if len(where) > 1:
            raise DataError(
                f"column name {target!r} appears {len(where)} times in the header of {src} "
                f"(columns {', '.join(map(str, where))}); rename the columns or give the "
                "target as a 0-based index"
            )
        return where[0]
    try:
        t = int(target)
    except ValueError:
        if header is None:
            raise DataError(
                f"column {target!r} not found in {src}: it has no header row; give a 0-based "
                f"column index (0..{n_cols - 1})"
            ) from None
        raise DataError(
            f"column {target!r} not found in {src}; columns: {', '.join(header)}"
        ) from None
    if not -n_cols <= t < n_cols:
        raise DataError(
            f"column index {t} out of range for {src} ({n_cols} columns: 0..{n_cols - 1})"
        )
    return t % n_cols


def _load_npz(path: Path, src: str) -> Dataset:
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise DataError(f"cannot read {src}: {_os_reason(exc)}") from None
    if not is_zip:
        raise DataError(f"cannot read {src}: not an .npz archive (as written by numpy.savez)")
    from ..io import npz_problem  # noqa: PLC0415

    problem = npz_problem(path)
    if problem is not None:
        raise DataError(f"cannot read {src}: {problem}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            for k in ("X", "y"):
                if k not in keys:
                    raise DataError(
                        f"{src} has no array {k!r} (arrays: {', '.join(keys) or 'none'}); "
                        "expected 'X' (n, d) and 'y' (n,)"
                    )
            has_test = "X_test" in keys and "y_test" in keys
            arrays = {
                k: npz[k] for k in (("X", "y", "X_test", "y_test") if has_test else ("X", "y"))
            }
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"cannot read {src}: it holds object arrays, which need pickle and are not "
                "loaded (allow_pickle=False)"
            ) from None
        raise DataError(f"cannot read {src}: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read {src}: {_os_reason(exc)}") from None
    except MemoryError:
        raise DataError(f"cannot read {src}: its arrays do not fit in memory") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ... from a corrupted archive
        raise DataError(f"cannot read {src}: {type(exc).__name__}: {exc}") from None
    X = arrays["X"]
    if X.ndim != 2:
        raise DataError(f"X in {src} must be 2-D (n_samples, n_features), got shape {X.shape}")
    return Dataset(
        name=path.name,
        X=X,
        y=arrays["y"],
        task="",
        source=src,
        X_test=arrays.get("X_test"),
        y_test=arrays.get("y_test"),
    )


def _load_svmlight(path: Path, src: str, n_features) -> Dataset:
    from sklearn.datasets import load_svmlight_file  # noqa: PLC0415

    if n_features is not None:
        n_features = _int_option("n_features", n_features, 1)
    try:
        X, y = load_svmlight_file(str(path), n_features=n_features)
    except (ValueError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {src}: {str(exc).splitlines()[0]}") from None
    except (OverflowError, MemoryError):
        raise DataError(
            f"cannot read {src}: a feature index is too large to represent (at most "
            f"{_MAX_DENSE_BYTES // 8} values fit the dense array boostnet trains on)"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {src}: {_os_reason(exc)}") from None
    n, d = X.shape
    if n * d * 8 > _MAX_DENSE_BYTES:
        raise DataError(
            f"{src} has {n} rows and feature indices up to {d - 1}: as the dense array boostnet "
            f"trains on that is {n * d * 8 / 2**30:.1f} GiB (at most "
            f"{_MAX_DENSE_BYTES / 2**30:.0f} GiB); renumber the features compactly"
        )
    return Dataset(name=path.name, X=X.toarray(), y=y, task="", source=src)


#: The largest dense array an svmlight file is expanded to (its feature indices set the width).
_MAX_DENSE_BYTES = 2**30
