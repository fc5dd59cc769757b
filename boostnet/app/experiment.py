"""Training runs as the command line makes them: data, split, preprocessing, fit, metrics, run directory.

A run directory holds ``config.toml`` (the resolved configuration, readable by ``--config``),
``metrics.json``, ``history.csv`` (one row per step), ``model.npz`` (arrays + JSON metadata, with the
standardisation and the data options), PNG plots and ``summary.md``. It is written into a temporary
folder beside its final place and renamed at the end, so it is never left half-written, and an
existing folder is never overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._greedy import StepRecord, phase_times
from .._signals import deferred_signals
from .._version import __version__
from ..callbacks import MetricCurve
from ..estimators import BoostNetClassifier, BoostNetRegressor
from ..exceptions import ConfigError, DataError
from ..io import current_umask, save_model, save_path
from ..metrics import r2
from ..network import raw_output
from .datasets import Dataset, load_data

#: Estimator parameters a run may set (``random_state`` comes from ``seed``).
ESTIMATOR_PARAMS = tuple(
    k
    for k in BoostNetClassifier().get_params()
    if k not in ("random_state", "callbacks", "warm_start")
)


@dataclass
class RunConfig:
    """Everything that defines a training run (the command line's options, or a TOML file's keys).

    Data keys: ``data`` (name or path), ``target``, ``task``, ``n_samples``, ``noise``,
    ``n_features``, ``data_dir``. Split: ``test_size``, ``train_size`` (a subset of the training
    part), ``seed`` (split, subset and training). ``standardize``: fit a standardisation on the
    training part. ``params``: estimator parameters.
    """

    data: str = "digits"
    target: str | None = None
    task: str | None = None
    n_samples: int | None = None
    noise: float | None = None
    n_features: int | None = None
    data_dir: str | None = None
    test_size: float = 0.25
    train_size: int | None = None
    seed: int = 0
    standardize: bool = True
    params: dict = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, d: dict) -> RunConfig:
        """Build from a flat mapping of run keys and estimator parameters (e.g. a TOML file).

        Raises
        ------
        ConfigError
            For a key that is neither a run key nor an estimator parameter.
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"params"}
        given = d.get("params", {})
        if given is not None and not isinstance(given, dict):
            raise ConfigError(
                f"params must be a table of estimator parameters, got {type(given).__name__} "
                f"{given!r}"
            )
        run, params = {}, dict(given or {})
        for k, v in d.items():
            key = k.replace("-", "_")
            if key == "params":
                continue
            if key in names:
                run[key] = v
            elif key in ESTIMATOR_PARAMS:
                params[key] = v
            else:
                raise ConfigError(f"unknown configuration key {k!r}")
        for k in params:
            if k not in ESTIMATOR_PARAMS:
                raise ConfigError(f"unknown estimator parameter {k!r}")
        for k, v in run.items():
            run[k] = _check_run_value(k, v)
        _check_params(params)
        return cls(**run, params=params)

    def to_flat(self) -> dict:
        """Flat mapping (run keys and estimator parameters), without unset (None) values."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "params"}
        d.update(self.params)
        return {k: v for k, v in d.items() if v is not None}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return _is_int(v) or isinstance(v, (float, np.floating))


def _check_run_value(key: str, v):
    """The command line's checks for a run key, whatever its source (option or TOML value).

    Raises
    ------
    ConfigError
        A value of the wrong type (``standardize = "no"``, ``test_size = "0.3"``) or range.
    """

    def bad(what):
        return ConfigError(f"{key} must be {what}, got {v!r}")

    if v is None:
        if key in ("data", "test_size", "seed", "standardize"):
            raise bad("set (it has no 'none' value)")
        return None

    if key in ("data", "data_dir"):
        if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
            raise bad("a non-empty string")
        return str(v)
    if key == "target":
        if _is_int(v):
            return str(int(v))
        if not isinstance(v, str) or not v.strip():
            raise bad("a column name or index")
        return v
    if key == "task":
        if v not in ("classification", "regression"):
            raise bad("'classification' or 'regression'")
        return v
    if key == "standardize":
        if not isinstance(v, (bool, np.bool_)):
            raise bad("true or false")
        return bool(v)
    if key in ("n_samples", "n_features", "train_size", "seed"):
        if not _is_int(v):
            raise bad("an integer")
        low = {"n_samples": 2, "n_features": 1, "train_size": 2, "seed": 0}[key]
        if v < low:
            raise bad(f"at least {low}")
        if key == "seed" and v >= 2**32:
            raise bad("below 2**32")
        return int(v)
    if key == "noise":
        if not _is_number(v) or not math.isfinite(v) or v < 0:
            raise bad("a finite number >= 0")
        return float(v)
    if key == "test_size":
        if _is_int(v) and v >= 1:
            return int(v)
        if not _is_number(v) or not 0.0 < float(v) < 1.0:
            raise bad("a share between 0 and 1 or a count of samples")
        return float(v)
    return v


def _check_params(params: dict) -> None:
    """Estimator parameters, checked as the estimator will check them, before any data is read."""
    from sklearn.utils._param_validation import InvalidParameterError  # noqa: PLC0415

    try:
        BoostNetClassifier(**params)._validate_params()
    except InvalidParameterError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def read_config(path) -> dict:
    """Read a TOML configuration file into a flat mapping.

    Raises
    ------
    ConfigError
        The file is missing or is not valid TOML.
    """
    try:
        import tomllib  # noqa: PLC0415
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # noqa: PLC0415
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"cannot read config file {path}: it is a directory") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read config file {path}: not UTF-8 text (byte {exc.start})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return json.dumps(str(v))


def to_toml(flat: dict) -> str:
    """Write a flat mapping of scalars as TOML."""
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in flat.items() if v is not None)


# ---- metrics -------------------------------------------------------------------------------------
def classification_metrics(est, X, y) -> dict:
    """Accuracy and log-loss."""
    from sklearn.metrics import log_loss  # noqa: PLC0415

    P = est.predict_proba(X)
    return {
        "accuracy": float(np.mean(est.predict(X) == y)),
        "log_loss": float(log_loss(y, P, labels=est.classes_)),
    }


def regression_metrics(est, X, y) -> dict:
    """R^2 and RMSE."""
    pred = est.predict(X)
    return {
        "r2": r2(y, pred),
        "rmse": float(np.sqrt(np.mean((np.asarray(y) - pred) ** 2))),
    }


def metrics_for(est, X, y) -> dict:
    """The task's metrics of a fitted estimator on (X, y)."""
    if isinstance(est, BoostNetClassifier):
        return classification_metrics(est, X, y)
    return regression_metrics(est, X, y)


def _curve_metric(task, classes):
    """Metric on raw outputs for the per-step curve: accuracy or R^2."""
    if task == "classification":

        def acc(F, y):
            idx = (F[:, 0] > 0).astype(int) if F.shape[1] == 1 else F.argmax(axis=1)
            return np.mean(classes[idx] == y)

        return acc, "accuracy"

    def r2_of(F, y):
        return r2(y, F)

    return r2_of, "r2"


# ---- data and split ------------------------------------------------------------------------------
@dataclass
class Split:
    """Train and test parts, standardised with the training part's statistics."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray | None
    scale: np.ndarray | None
    official: bool
    stratified: bool


def load_for(cfg: RunConfig) -> Dataset:
    """Load the data a configuration names."""
    return load_data(
        cfg.data,
        target=cfg.target,
        task=cfg.task,
        n_samples=cfg.n_samples,
        noise=cfg.noise,
        seed=cfg.seed,
        data_dir=cfg.data_dir,
        n_features=cfg.n_features,
    )


def make_split(ds: Dataset, cfg: RunConfig) -> Split:
    """The run's split: the source's official one if it has one, else a (stratified) random split;
    then the training subset (``train_size``) and the standardisation. Reproducible from ``seed``."""
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    clf = ds.task == "classification"

    def strat_ok(y, parts=2):
        if not clf:
            return False
        _, counts = np.unique(y, return_counts=True)
        return counts.min() >= parts

    stratified = False
    if ds.X_test is not None:
        Xtr, ytr, Xte, yte, official = ds.X, ds.y, ds.X_test, ds.y_test, True
    else:
        t = cfg.test_size
        if not (0.0 < t < 1.0 or (isinstance(t, int) and not isinstance(t, bool) and t >= 1)):
            raise ConfigError(
                f"test_size must be a share between 0 and 1 or a count of samples, got {t}"
            )
        stratified = strat_ok(ds.y)
        try:
            Xtr, Xte, ytr, yte = train_test_split(
                ds.X,
                ds.y,
                test_size=cfg.test_size,
                random_state=cfg.seed,
                stratify=ds.y if stratified else None,
            )
        except ValueError as exc:
            raise DataError(f"cannot split {ds.name}: {exc}") from None
        official = False
    if cfg.train_size is not None:
        if cfg.train_size < 2:
            raise ConfigError(f"train_size must be at least 2, got {cfg.train_size}")
        if cfg.train_size > Xtr.shape[0]:
            raise ConfigError(
                f"train_size {cfg.train_size} is more than the {Xtr.shape[0]} samples of the "
                f"training part of {ds.name}; give at most {Xtr.shape[0]} (or leave it out)"
            )
        if cfg.train_size < Xtr.shape[0]:
            strat = ytr if strat_ok(ytr) else None
            try:
                Xtr, _, ytr, _ = train_test_split(
                    Xtr, ytr, train_size=cfg.train_size, random_state=cfg.seed, stratify=strat
                )
            except ValueError as exc:
                raise DataError(f"cannot take {cfg.train_size} training samples: {exc}") from None
    if clf and np.unique(ytr).shape[0] < 2:
        raise DataError("the training part has only 1 class")
    mean = scale = None
    if cfg.standardize:
        mean, scale = standardisation(Xtr)
        names = ds.feature_names
        Xtr = standardise(Xtr, mean, scale, names)
        Xte = standardise(Xte, mean, scale, names)
    return Split(Xtr, ytr, Xte, yte, mean, scale, official, stratified)


def standardisation(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean ``mu_j`` and scale ``s_j`` (the standard deviation, 1 where it is 0).

    Where the plain sums overflow they are computed on ``X_j / max_t |x_tj|`` and scaled back,
    ``mu_j = m_j * max|x_j|``, ``s_j = sd_j * max|x_j|``: the sum of squares of features near
    1e200 overflows to inf (every standardised feature then became 0, and the fit a 'certified'
    empty model); this way both stay finite for any finite input.
    """
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, scale = X.mean(axis=0), X.std(axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
        top = np.max(np.abs(X), axis=0)
        top = np.where(top > 0, top, 1.0)
        Z = X / top
        mean, scale = Z.mean(axis=0) * top, Z.std(axis=0) * top
    return mean, np.where(scale > 0, scale, 1.0)


def standardise(X, mean, scale, names=None) -> np.ndarray:
    """``(X - mu) / s``, refusing a result that is not finite (inputs near the float64 limit).

    Raises
    ------
    DataError
        Naming the first feature whose standardised values overflow.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (np.asarray(X, dtype=np.float64) - mean) / scale
    bad = ~np.isfinite(Z)
    if bad.any():
        j = int(np.argwhere(bad)[0][1])
        name = repr(names[j]) if names is not None and j < len(names) else str(j)
        top = float(np.max(np.abs(X[:, j])))
        raise DataError(
            f"feature {name} holds values up to {top:.3g}, too large to standardise in float64; "
            "rescale it"
        )
    return Z


def preprocess(X, extra: dict) -> np.ndarray:
    """Apply a saved standardisation (``extra["preprocessing"]``) to raw inputs."""
    pre = extra.get("preprocessing") or {}
    if pre.get("mean") is None:
        return X
    return standardise(X, np.asarray(pre["mean"]), np.asarray(pre["scale"]))


# ---- the run ------------------------------------------------------------------------------------
def path_rows(est, split: Split, metric) -> list:
    """One row per point of ``est.path_``: the point's figures plus its train and test metric.

    ``val_score`` is the metric on the held-out part of the training data that chose lambda; the
    test metric is only reported, never used for the choice.
    """
    from ..activations import get_activation  # noqa: PLC0415

    act = get_activation(est.activation)
    rows = []
    for i, row in enumerate(est.path_.rows()):
        net = est.path_.network(i)
        for name, X, y in (
            ("train", split.X_train, split.y_train),
            ("test", split.X_test, split.y_test),
        ):
            F = raw_output(X, net, act)
            row[name] = float(metric(F, y))
        row["chosen"] = bool(np.isclose(row["alpha"], est.alpha_, rtol=1e-12, atol=0))
        rows.append(row)
    return rows


@dataclass
class RunResult:
    """What :func:`run_train` produced."""

    metrics: dict
    estimator: object
    run_dir: Path | None
    curve: list
    split: Split
    path: list | None = None
    #: SIGINT / SIGTERM received while the finished model was written (held back until then)
    signals: list = field(default_factory=list)


def _provenance(est) -> dict:
    import scipy  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    from .bench import cpu_name  # noqa: PLC0415

    return {
        "boostnet": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "host": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_threads": os.cpu_count(),
        "device": getattr(est, "device_", None),
    }


class _ProgressAdapter:
    def __init__(self, fn, curve, path_fn=None):
        self.fn, self.curve, self.path_fn = fn, curve, path_fn

    def on_step_end(self, record):
        self.fn(record, self.curve.rows[-1] if self.curve.rows else None)

    def on_path_point(self, point):
        if self.path_fn is not None:
            self.path_fn(point)


def run_train(
    cfg: RunConfig,
    *,
    out: str | Path | None = None,
    unique: bool = False,
    callbacks=(),
    progress=None,
    path_progress=None,
    command=None,
):
    """Run one training: load, split, standardise, fit, evaluate; write the run directory.

    Parameters
    ----------
    cfg : RunConfig
    out : path, optional
        Run directory to create (must not exist). None writes nothing. It is created (empty)
        with its temporary sibling before any data is read, so an unwritable or taken place fails
        at once, not after the fit.
    unique : bool
        If ``out`` is taken, use ``out-2``, ``out-3``, ... instead of failing (the default run
        directory: two runs started in the same second get different folders).
    callbacks : sequence
        Extra callbacks for the estimator (e.g. interrupt handling).
    progress : callable, optional
        ``progress(record, curve_row)`` after every step; ``curve_row`` has the step's train and
        test metric.
    path_progress : callable, optional
        ``path_progress(point)`` after every point of the path (``alpha="auto"``).
    command : str, optional
        The command line, recorded in ``summary.md``.

    Returns
    -------
    RunResult
    """
    reservation = reserve_run_dir(out, unique=unique) if out is not None else None
    try:
        return _run_train(cfg, reservation, callbacks, progress, path_progress, command)
    except BaseException:
        if reservation is not None:
            reservation.release()
        raise


def _run_train(cfg, reservation, callbacks, progress, path_progress, command) -> RunResult:
    ds = load_for(cfg)
    split = make_split(ds, cfg)
    clf = ds.task == "classification"
    params = dict(cfg.params)
    cls = BoostNetClassifier if clf else BoostNetRegressor
    probe = cls(**params)
    curve_metric, metric_name = _curve_metric(ds.task, np.unique(split.y_train) if clf else None)
    curve = MetricCurve(
        curve_metric,
        probe.activation,
        {"train": (split.X_train, split.y_train), "test": (split.X_test, split.y_test)},
        seed=cfg.seed,
    )
    cbs = [curve, *callbacks]
    if progress is not None:
        cbs.append(_ProgressAdapter(progress, curve, path_progress))
    est = cls(random_state=cfg.seed, callbacks=cbs, **params)
    t0 = time.perf_counter()
    est.fit(split.X_train, split.y_train)
    fit_time = time.perf_counter() - t0
    # the model is finished: a Ctrl-C or SIGTERM from here on waits until it is written
    with deferred_signals() as received:
        result = _finish_run(
            cfg, ds, split, est, curve, curve_metric, metric_name, fit_time, reservation, command
        )
    result.signals = list(received)
    return result


def _finish_run(
    cfg, ds, split, est, curve, curve_metric, metric_name, fit_time, reservation, command
) -> RunResult:
    t1 = time.perf_counter()
    train_m = metrics_for(est, split.X_train, split.y_train)
    test_m = metrics_for(est, split.X_test, split.y_test)
    predict_time = time.perf_counter() - t1
    metrics = {
        "data": ds.name,
        "task": ds.task,
        **{f"train_{k}": v for k, v in train_m.items()},
        **{f"test_{k}": v for k, v in test_m.items()},
        "units": est.n_units_,
        "stop_reason": est.stop_reason_,
        "certificate_gap": est.certificate_gap_,
        "certificate": getattr(est, "certificate_", None),
        "alpha": est.alpha_,
        "lambda_max": est.lambda_max_,
        "steps": est.n_iter_,
        "candidates_searched": est.n_candidates_searched_,
        "fit_time_s": fit_time,
        "phase_time_s": phase_times(est.history_),
        "predict_time_s": predict_time,
        "n_train": int(split.X_train.shape[0]),
        "n_test": int(split.X_test.shape[0]),
        "n_features": int(split.X_train.shape[1]),
        "official_split": split.official,
        "seed": cfg.seed,
        **_provenance(est),
    }
    metrics = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }
    prows = path_rows(est, split, curve_metric) if hasattr(est, "path_") else None
    if prows is not None:
        metrics["path_points"] = len(prows)
        metrics["path_stop_reason"] = est.path_.stop_reason
    run_dir = None
    if reservation is not None:
        run_dir = write_run_dir(
            reservation.path,
            cfg,
            est,
            metrics,
            curve.rows,
            split,
            metric_name,
            command,
            prows,
            tmp=reservation.tmp,
        )
    return RunResult(metrics, est, run_dir, curve.rows, split, prows)


class Reservation:
    """A run directory claimed before training: the empty final folder and its temporary sibling.

    ``release()`` removes both (and the parent folders the reservation created) if the run fails.
    """

    def __init__(self, path: Path, tmp: Path, created: list):
        self.path, self.tmp, self.created = path, tmp, created

    def release(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        for p in [self.path, *self.created]:
            try:
                p.rmdir()  # only if still empty: never anything a user put there
            except OSError:
                pass


def _tmp_prefix(out: Path) -> str:
    return f".{out.name[:80]}.tmp-"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def reserve_run_dir(out, unique: bool = False) -> Reservation:
    """Create the run directory ``out`` (empty) and its temporary sibling, up front.

    ``mkdir`` is atomic: of two runs reserving the same name, one gets it; the other fails
    (:class:`ConfigError`) or, with ``unique``, takes ``out-2``, ``out-3``, ...

    Raises
    ------
    ConfigError
        ``out`` exists (without ``unique``), or it cannot be created or written (a parent is a
        file, a read-only place, a name too long, ...).
    """
    out = Path(out)
    created = []
    for p in reversed(out.parents):
        if not p.exists():
            created.insert(0, p)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory {out}: {_reason(exc)}") from None
    reservation = None
    try:
        base, i = out, 1
        while True:
            try:
                out.mkdir()
                break
            except FileExistsError:
                if not unique:
                    raise ConfigError(
                        f"output directory already exists: {out} (choose another --out)"
                    ) from None
                i += 1
                out = base.with_name(f"{base.name}-{i}")
        reservation = Reservation(out, out, created)  # released below if the tmp fails
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(out), dir=out.parent))
        os.chmod(tmp, 0o777 & ~current_umask())
        reservation.tmp = tmp
        return reservation
    except OSError as exc:
        if reservation is not None:
            reservation.release()
        else:
            Reservation(out, out / ".none", created).release()
        raise ConfigError(f"cannot create the run directory {out}: {_reason(exc)}") from None


def write_run_dir(
    out: Path,
    cfg,
    est,
    metrics,
    curve_rows,
    split,
    metric_name,
    command=None,
    path_rows=None,
    tmp=None,
):
    """Write the run directory atomically (temporary folder, then rename).

    ``tmp`` is the temporary folder reserved beside ``out`` (:func:`reserve_run_dir`); without
    it one is made here. ``out`` may exist as an empty folder (the reservation), which the rename
    replaces; if something else took ``out`` meanwhile, the run goes to ``out-2``, ... rather than
    being lost. Returns the folder written.
    """
    from . import plots  # noqa: PLC0415

    out = Path(out)
    if tmp is None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(out), dir=out.parent))
        os.chmod(tmp, 0o777 & ~current_umask())
    tmp = Path(tmp)
    try:
        (tmp / "config.toml").write_text(to_toml(cfg.to_flat()))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        by_step = {r["step"]: r for r in curve_rows}
        fields = [f.name for f in dataclasses.fields(StepRecord)] + [
            f"train_{metric_name}",
            f"test_{metric_name}",
        ]
        with open(tmp / "history.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(fields)
            for r in est.history_:
                row = [getattr(r, f) for f in fields[:-2]]
                c = by_step.get(r.step, {})
                w.writerow(row + [c.get("train", ""), c.get("test", "")])
        extra = {
            "preprocessing": {
                "mean": None if split.mean is None else split.mean.tolist(),
                "scale": None if split.scale is None else split.scale.tolist(),
                "n_samples": int(split.X_train.shape[0]),
            },
            "run": cfg.to_flat(),
        }
        save_model(est, tmp / "model.npz", extra=extra)
        files = ["config.toml", "metrics.json", "history.csv", "model.npz"]
        plots.plot_objective(est.history_, est.alpha_, tmp / "objective.png")
        files.append("objective.png")
        if curve_rows:
            plots.plot_metric_curve(curve_rows, metric_name, tmp / "metric.png")
            files.append("metric.png")
        if split.X_train.shape[1] == 2 and isinstance(est, BoostNetClassifier):
            plots.plot_decision_regions(est, split.X_train, split.y_train, tmp / "regions.png")
            files.append("regions.png")
        if path_rows:
            with open(tmp / "path.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(path_rows[0]))
                w.writeheader()
                w.writerows(path_rows)
            plots.plot_path(path_rows, est.alpha_, metric_name, tmp / "path.png")
            save_path(est.path_, tmp / "path.npz")
            files += ["path.csv", "path.png", "path.npz"]
        (tmp / "summary.md").write_text(_summary(metrics, files, command, metric_name))
        out = _rename_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _rename_into_place(tmp: Path, out: Path) -> Path:
    """Rename ``tmp`` to ``out`` (absent or an empty folder); if ``out`` was taken meanwhile,
    to the first free ``out-2``, ``out-3``, ...: a finished run is never dropped."""
    base, i = out, 1
    while True:
        try:
            os.rename(tmp, out)
            return out
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR) or i > 1000:
                raise
            i += 1
            out = base.with_name(f"{base.name}-{i}")


_DESCRIPTIONS = {
    "config.toml": "the resolved configuration (`boostnet train --config` reads it)",
    "metrics.json": "final metrics with provenance (versions, host, device, seed)",
    "history.csv": "one row per step: units, objective, loss, penalty, best score, certificate "
    "gap, re-fit gap and iterations, candidates, time, train/test metric",
    "model.npz": "the model: arrays + JSON metadata, with the standardisation "
    "(`boostnet predict`/`evaluate` read it)",
    "objective.png": "objective and certificate gap vs units",
    "metric.png": "train/test metric vs units",
    "regions.png": "decision regions with the units' hyperplanes",
    "path.csv": "the regularisation path (alpha='auto'): one row per lambda with units, objective, "
    "certificate gap, train, validation and test metric; `chosen` marks the selected lambda",
    "path.png": "validation/test metric and units vs lambda, the chosen lambda marked",
    "path.npz": "every point's network (`boostnet.io.load_path`; the union of units stored once)",
}


def _summary(metrics, files, command, metric_name) -> str:
    lines = [f"# boostnet run on {metrics['data']}", ""]
    if command:
        lines += ["Made by:", "", f"    {command}", ""]
    lines += [
        f"- test {metric_name}: {metrics.get(f'test_{metric_name}'):.4f}",
        f"- units: {metrics['units']}, stop reason: {metrics['stop_reason']}",
        f"- fit time: {metrics['fit_time_s']:.2f} s on {metrics['device']}",
        "",
        "Files:",
        "",
    ]
    lines += [f"- `{f}`: {_DESCRIPTIONS[f]}" for f in files]
    return "\n".join(lines) + "\n"


def default_run_dir(data: str, root="runs") -> Path:
    """``runs/<timestamp>-<data>``, made unique with a counter if needed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in Path(data).name)
    p = Path(root) / f"{stamp}-{base}"
    i = 1
    while p.exists():
        i += 1
        p = Path(root) / f"{stamp}-{base}-{i}"
    return p
