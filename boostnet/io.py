"""Saving and loading fitted models: one ``.npz`` file with the arrays and a JSON metadata record.

No pickle is ever written or read (``numpy.load(..., allow_pickle=False)``). The metadata names the
format and its version, the estimator class, its parameters and the classes; loading checks all of
it and every array's shape, and raises :class:`~boostnet.exceptions.ModelFileError` with one line
naming the problem for a missing, corrupted or foreign file.

Tampering is caught too: the metadata holds ``sha256``, a digest of the four arrays (as float64,
with their names and shapes) and of the fields that give them meaning (estimator, parameters,
feature count, classes, output shape, the saved standardisation); a file whose digest does not
match is refused. Files written before the digest existed still load, and every field is checked
against the arrays (shapes, dtypes, class count and order, the standardisation's length). Before
any array is read, its header's declared size is checked against what the archive member can hold,
so a forged header cannot make the loader allocate more than the file's data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from sklearn.base import ClassifierMixin, is_classifier

from ._version import __version__
from .exceptions import ModelFileError

FORMAT = "boostnet-model"
FORMAT_VERSION = 1
_ARRAYS = ("hidden_weights", "hidden_bias", "coef", "intercept")
_SCALARS = (
    "alpha_",
    "lambda_max_",
    "stop_reason_",
    "n_candidates_searched_",
    "certificate_gap_",
    "certificate_",
    "device_",
    "fit_time_",
    "n_iter_",
)


#: The estimator classes a model file may name, by class name: each joins with
#: :func:`register_model` where it is defined (so this module imports no estimator).
MODEL_CLASSES: dict[str, type] = {}


def register_model(cls):
    """Class decorator: ``cls`` may be named by a model file's ``estimator`` record."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


#: Deflate expands at most ~1032:1; a member declaring more than this times its compressed size
#: (plus a header's worth) is forged.
_MAX_INFLATE = 1100


def current_umask() -> int:
    """The process's umask (files get ``0o666 & ~umask``, folders ``0o777 & ~umask``)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def npz_problem(path) -> str | None:
    """Why the ``.npz`` at ``path`` must not be loaded, or None.

    Reads only the archive's directory and each member's ``.npy`` header: a member whose declared
    shape needs more bytes than it holds, more than its compressed data can expand to, or whose
    dtype needs pickle, is refused before anything is allocated.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[:-4]
                limit = info.compress_size * (
                    1 if info.compress_type == zipfile.ZIP_STORED else _MAX_INFLATE
                )
                if info.file_size > limit + 4096:
                    return (
                        f"array {name!r} declares {info.file_size} bytes, more than its "
                        f"{info.compress_size} stored bytes can hold"
                    )
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        return f"array {name!r} has an unsupported .npy version {version}"
                if dtype.hasobject:
                    return (
                        f"array {name!r} holds object arrays, which need pickle and are not "
                        "loaded (allow_pickle=False)"
                    )
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes > info.file_size:
                    return (
                        f"array {name!r} declares shape {shape} ({nbytes} bytes) but holds "
                        f"{info.file_size} bytes"
                    )
    except Exception as exc:  # a forged header: SyntaxError, TokenError, BadZipFile, ...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _digest(meta: dict, arrays: dict) -> str:
    """sha256 of the arrays (float64, with names and shapes), the fields that interpret them and
    the certificate."""
    h = hashlib.sha256()
    for k in _ARRAYS:
        a = np.ascontiguousarray(arrays[k], dtype=np.float64)
        h.update(f"{k}{a.shape}".encode())
        h.update(a.tobytes())
    extra = meta.get("extra")
    fields = {k: meta.get(k) for k in _DIGESTED}
    fields["preprocessing"] = extra.get("preprocessing") if isinstance(extra, dict) else None
    # the certificate is evidence: digested where there is one (files written before it was kept
    # have none, and their digests stay what they were)
    attributes = meta.get("attributes")
    certificate = attributes.get("certificate_") if isinstance(attributes, dict) else None
    if certificate is not None:
        fields["certificate"] = certificate
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return h.hexdigest()


_DIGESTED = ("estimator", "params", "n_features_in", "classes", "classes_dtype", "y_ndim")


def _json_safe(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


def _params(est) -> dict:
    """JSON-serialisable constructor parameters (callbacks, generators and objects are dropped)."""
    out = {}
    for k, v in est.get_params(deep=False).items():
        if k == "callbacks":
            continue
        if v is None or isinstance(v, (bool, int, float, str, np.integer, np.floating)):
            out[k] = _json_safe(v)
    return out


def save_model(est, path, extra: dict | None = None) -> Path:
    """Write a fitted estimator to ``path`` (``.npz`` is appended if missing), atomically.

    ``extra`` is any JSON-serialisable dict stored beside the model (the command line keeps the
    preprocessing and the run's data options there); :func:`load_bundle` returns it.

    Returns
    -------
    Path
        The file written.
    """
    from sklearn.utils.validation import check_is_fitted  # noqa: PLC0415

    check_is_fitted(est)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "boostnet_version": __version__,
        "estimator": type(est).__name__,
        "params": _params(est),
        "n_features_in": int(est.n_features_in_),
        "attributes": {k: _json_safe(getattr(est, k, None)) for k in _SCALARS},
        "history": [{k: _json_safe(v) for k, v in r.as_dict().items()} for r in est.history_],
    }
    if extra:
        meta["extra"] = extra
    if hasattr(est, "classes_"):
        meta["classes"] = est.classes_.tolist()
        meta["classes_dtype"] = est.classes_.dtype.kind
    if hasattr(est, "_y_ndim"):
        meta["y_ndim"] = int(est._y_ndim)
    arrays = {
        "hidden_weights": est.hidden_weights_,
        "hidden_bias": est.hidden_bias_,
        "coef": est.coef_,
        "intercept": est.intercept_,
    }
    meta = json.loads(json.dumps(meta))  # the digest sees what a reader will see
    meta["sha256"] = _digest(meta, arrays)
    return _atomic_savez(path, {"__meta__": np.array(json.dumps(meta)), **arrays})


def load(path):
    """Load a model written by :meth:`save`.

    Raises
    ------
    ModelFileError
        The file is missing, unreadable, corrupted, or not a boostnet model.
    """
    return load_bundle(path)[0]


def load_bundle(path):
    """Load a model and the ``extra`` dict saved with it (empty if none): ``(estimator, extra)``."""
    from ._greedy import StepRecord  # noqa: PLC0415

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"cannot read model file {path}: not a boostnet model (not an .npz archive)"
        )
    problem = npz_problem(path)
    if problem is not None:
        raise ModelFileError(f"cannot read model file {path}: {problem}")
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
                raise ModelFileError(
                    f"cannot read model file {path}: not a boostnet model (not an .npz archive)"
                )
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "__meta__" not in files:
                raise ModelFileError(f"{path} is not a boostnet model (no metadata record)")
            raw = z["__meta__"]
            if raw.dtype.kind not in "US" or raw.ndim != 0:
                raise ModelFileError(f"{path}: bad metadata record")
            meta = json.loads(str(raw))
            missing = [k for k in _ARRAYS if k not in files]
            if missing:
                raise ModelFileError(f"{path}: model file lacks array(s) {', '.join(missing)}")
            arrays = {}
            for k in _ARRAYS:
                a = z[k]
                if a.dtype.kind not in "fiu":
                    raise ModelFileError(f"{path}: array {k} has dtype {a.dtype}, not numbers")
                arrays[k] = np.asarray(a, dtype=np.float64)
    except ModelFileError:
        raise
    except MemoryError:
        raise ModelFileError(
            f"cannot read model file {path}: its arrays do not fit in memory"
        ) from None
    except Exception as exc:  # a corrupted archive: BadZipFile, CRC, zlib, JSON, ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"cannot read model file {path}: {msg}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path} is not a boostnet model (format {meta.get('format')!r})"
            if isinstance(meta, dict)
            else f"{path}: bad metadata record"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta.get('format_version')!r} is not supported "
            f"(this boostnet reads version {FORMAT_VERSION})"
        )
    cls = MODEL_CLASSES.get(meta.get("estimator"))
    if cls is None:  # the package imports lazily: the estimators may not have registered yet
        import boostnet  # noqa: PLC0415

        boostnet.register_models()
        cls = MODEL_CLASSES.get(meta.get("estimator"))
    if cls is None:
        raise ModelFileError(f"{path}: unknown estimator {meta.get('estimator')!r}")
    _check_fields(path, meta, cls, arrays)
    try:
        est = cls(**meta["params"])
        est._validate_params()
        d = int(meta["n_features_in"])
        W, c, coef, b = (arrays[k] for k in _ARRAYS)
        m = W.shape[0]
        if (
            W.ndim != 2
            or W.shape[1] != d
            or c.shape != (m,)
            or coef.ndim != 2
            or coef.shape[0] != m
            or b.shape != (coef.shape[1],)
        ):
            raise ModelFileError(f"{path}: array shapes do not fit together")
        if not all(np.all(np.isfinite(x)) for x in (W, c, coef, b)):
            raise ModelFileError(f"{path}: model arrays hold NaN or infinite values")
        est.hidden_weights_, est.hidden_bias_, est.coef_, est.intercept_ = W, c, coef, b
        est.n_units_ = m
        est.n_features_in_ = d
        est.certificate_ = None  # (files written before it was saved: no evidence kept)
        for k, v in meta.get("attributes", {}).items():
            if k in _SCALARS:
                setattr(est, k, v)
        est.history_ = [
            StepRecord(
                **{
                    k: (math.nan if v is None and k not in ("val_score",) else v)
                    for k, v in r.items()
                }
            )
            for r in meta.get("history", [])
        ]
        if is_classifier(est):
            kind = meta.get("classes_dtype", "O")
            est.classes_ = np.asarray(meta["classes"], dtype=None if kind in "OU" else kind)
            K = 1 if len(est.classes_) == 2 else len(est.classes_)
            if len(est.classes_) < 2 or coef.shape[1] != K:
                raise ModelFileError(f"{path}: classes do not match the output weights")
        else:
            est._y_ndim = int(meta.get("y_ndim", 1 if coef.shape[1] == 1 else 2))
    except ModelFileError:
        raise
    except Exception as exc:  # malformed metadata of any kind
        raise ModelFileError(
            f"{path}: malformed model metadata ({type(exc).__name__}: {exc})"
        ) from None
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise ModelFileError(f"{path}: malformed model metadata (extra is not a record)")
    # last: an inconsistent field is named above; a consistent edit is caught here
    if "sha256" in meta and meta["sha256"] != _digest(meta, arrays):
        raise ModelFileError(
            f"{path}: checksum mismatch: the arrays or metadata were changed after saving"
        )
    return est, extra


#: A certificate record's fields (``boostnet._greedy.Certificate``) and their JSON types.
_CERTIFICATE = {
    "kind": str, "pools": int, "candidates": int, "best_score": float, "alpha": float,
    "tol": float, "refit_gap": float, "duality_gap": float,
}  # fmt: skip


def _is_certificate(rec) -> bool:
    """Whether ``rec`` (from JSON) is a certificate record: its fields, typed, a known kind."""
    if not isinstance(rec, dict) or set(rec) != set(_CERTIFICATE):
        return False
    for k, t in _CERTIFICATE.items():
        v = rec[k]
        if isinstance(v, bool) or not (
            isinstance(v, t) or (t is float and (v is None or isinstance(v, int)))
        ):
            return False
    return rec["kind"] in ("sampled", "exact") and rec["pools"] >= 1 and rec["candidates"] >= 0


def _check_fields(path, meta: dict, cls, arrays: dict) -> None:
    """Every metadata field that gives the arrays meaning, checked against them."""

    def bad(what):
        return ModelFileError(f"{path}: {what} (edited or corrupted metadata)")

    if not isinstance(meta.get("params"), dict):
        raise bad("params is not a record")
    d = meta.get("n_features_in")
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise bad(f"n_features_in is {d!r}")
    coef = arrays["coef"]
    K = coef.shape[1] if coef.ndim == 2 else None
    clf = issubclass(cls, ClassifierMixin)
    classes = meta.get("classes")
    if clf:
        if not isinstance(classes, list) or len(classes) < 2:
            raise bad(f"a {cls.__name__} needs a list of at least 2 classes, got {classes!r}")
        kinds = {type(c) for c in classes}
        if len(kinds) != 1 or not kinds <= {int, float, str, bool}:
            raise bad("classes mix types or hold records")
        if len(set(classes)) != len(classes) or classes != sorted(classes):
            raise bad("classes are not distinct and sorted")
        if meta.get("classes_dtype", "O") not in ("i", "u", "f", "b", "O", "U", "S"):
            raise bad(f"classes_dtype {meta.get('classes_dtype')!r}")
        if K is not None and K != (1 if len(classes) == 2 else len(classes)):
            raise bad(f"{len(classes)} classes do not match {K} output columns")
    else:
        if classes is not None:
            raise bad(f"a {cls.__name__} holds classes")
        y_ndim = meta.get("y_ndim", 1 if K == 1 else 2)
        if y_ndim not in (1, 2) or (y_ndim == 1 and K not in (None, 1)):
            raise bad(f"y_ndim {y_ndim!r} with {K} output columns")
    if not isinstance(meta.get("attributes", {}), dict):
        raise bad("attributes is not a record")
    cert = meta.get("attributes", {}).get("certificate_")
    if cert is not None and not _is_certificate(cert):
        raise bad("certificate_ is not a certificate record")
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise bad("extra is not a record")
    pre = extra.get("preprocessing") or {}
    if not isinstance(pre, dict):
        raise bad("preprocessing is not a record")
    if pre.get("mean") is not None or pre.get("scale") is not None:
        for k in ("mean", "scale"):
            v = pre.get(k)
            if not isinstance(v, list) or len(v) != d:
                n = len(v) if isinstance(v, list) else type(v).__name__
                raise bad(f"preprocessing {k} has {n} values; the model has {d} features")
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise bad(f"preprocessing {k} holds non-numbers")
            if not all(math.isfinite(x) for x in v):
                raise bad(f"preprocessing {k} holds NaN or infinite values")
        if not all(x > 0 for x in pre["scale"]):
            raise bad("preprocessing scale holds values <= 0")


PATH_FORMAT = "boostnet-path"


def atomic_write(path, write, suffix: str = "") -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary binary file in ``path``'s folder,
    which then replaces ``path`` (a reader sees the old file or the whole new one, never half).

    Parameters
    ----------
    path : str or Path
    write : callable
        Called with the open binary file handle.
    suffix : str
        Suffix of the temporary file's name.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.tmp-", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _atomic_savez(path: Path, arrays: dict) -> Path:
    return atomic_write(path, lambda fh: np.savez(fh, **arrays), suffix=".npz")


def save_path(result, path) -> Path:
    """Write a :class:`~boostnet.pathwise.PathResult` as one ``.npz``: the union of units once, each
    point's unit indices and output weights, and its figures as a JSON record (no pickle)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    rows = [{k: _json_safe(v) for k, v in r.items()} for r in result.rows()]
    meta = {
        "format": PATH_FORMAT,
        "format_version": FORMAT_VERSION,
        "boostnet_version": __version__,
        "activation": result.activation,
        "lambda_max": _json_safe(result.lambda_max),
        "stop_reason": result.stop_reason,
        "rows": rows,
        # each point's certificate record (None where the point did not stop by one)
        "certificates": [p.certificate for p in result.points],
    }
    arrays = {"__meta__": np.array(json.dumps(meta)), "W": result.W, "c": result.c}
    arrays["alphas"] = np.asarray(result.alphas, dtype=np.float64)
    for i, p in enumerate(result.points):
        arrays[f"units_{i}"] = p.units
        arrays[f"coef_{i}"] = p.coef
        arrays[f"intercept_{i}"] = p.intercept
    return _atomic_savez(path, arrays)


def load_path(path):
    """Read a path written by :func:`save_path`.

    Raises
    ------
    ModelFileError
        The file is missing, unreadable or not a boostnet path.
    """
    from .pathwise import PathPoint, PathResult  # noqa: PLC0415

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"path file not found: {path}")
    problem = npz_problem(path) if zipfile.is_zipfile(path) else "not an .npz archive"
    if problem is not None:
        raise ModelFileError(f"cannot read path file {path}: {problem}")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            if not isinstance(meta, dict) or meta.get("format") != PATH_FORMAT:
                raise ModelFileError(f"{path} is not a boostnet path file")
            W, c = np.asarray(z["W"], dtype=np.float64), np.asarray(z["c"], dtype=np.float64)
            points = []
            names = {f.name for f in dataclasses.fields(PathPoint)}
            certificates = meta.get("certificates") or [None] * len(meta["rows"])
            if len(certificates) != len(meta["rows"]) or not all(
                c is None or _is_certificate(c) for c in certificates
            ):
                raise ModelFileError(
                    f"{path}: the points' certificates are not certificate records"
                )
            for i, row in enumerate(meta["rows"]):
                units = np.asarray(z[f"units_{i}"], dtype=np.int64)
                if units.size and (units.min() < 0 or units.max() >= W.shape[0]):
                    raise ModelFileError(f"{path}: point {i} names units outside the union")
                fields = {
                    k: v for k, v in row.items() if k in names and k not in ("extra", "certificate")
                }
                # as_row's derived columns are not extra scores
                derived = ("index", "certificate_tol")
                extra = {k: v for k, v in row.items() if k not in names and k not in derived}
                points.append(
                    PathPoint(
                        **fields,
                        units=units,
                        coef=np.asarray(z[f"coef_{i}"], dtype=np.float64),
                        intercept=np.asarray(z[f"intercept_{i}"], dtype=np.float64),
                        extra=extra,
                        certificate=certificates[i],
                    )
                )
            alphas = np.asarray(z["alphas"], dtype=np.float64)
    except ModelFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, TypeError) as exc:
        raise ModelFileError(f"cannot read path file {path}: {exc}") from None
    return PathResult(
        alphas, meta["lambda_max"], W, c, points, meta["activation"], meta["stop_reason"]
    )
