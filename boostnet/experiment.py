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

from ._greedy import StepRecord, phase_times
from ._version import __version__
from .callbacks import MetricCurve
from .datasets import Dataset, load_data
from .estimators import BoostNetClassifier, BoostNetRegressor
from .exceptions import ConfigError, DataError
from .io import save_model, save_path
from .metrics import r2
from .network import raw_output

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
        run, params = {}, dict(d.get("params", {}) or {})
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
        return cls(**run, params=params)

    def to_flat(self) -> dict:
        """Flat mapping (run keys and estimator parameters), without unset (None) values."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "params"}
        d.update(self.params)
        return {k: v for k, v in d.items() if v is not None}


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
    except (OSError, tomllib.TOMLDecodeError) as exc:
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
        mean = Xtr.mean(axis=0)
        scale = Xtr.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Xtr, Xte = (Xtr - mean) / scale, (Xte - mean) / scale
    return Split(Xtr, ytr, Xte, yte, mean, scale, official, stratified)


def preprocess(X, extra: dict) -> np.ndarray:
    """Apply a saved standardisation (``extra["preprocessing"]``) to raw inputs."""
    pre = extra.get("preprocessing") or {}
    if pre.get("mean") is None:
        return X
    return (X - np.asarray(pre["mean"])) / np.asarray(pre["scale"])


# ---- the run ------------------------------------------------------------------------------------
def path_rows(est, split: Split, metric) -> list:
    """One row per point of ``est.path_``: the point's figures plus its train and test metric.

    ``val_score`` is the metric on the held-out part of the training data that chose lambda; the
    test metric is only reported, never used for the choice.
    """
    from .activations import get_activation  # noqa: PLC0415

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


def _provenance(est) -> dict:
    import scipy  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    return {
        "boostnet": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "host": platform.node(),
        "machine": platform.machine(),
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
        Run directory to create (must not exist). None writes nothing.
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
    if out is not None:
        out = Path(out)
        if out.exists():
            raise ConfigError(f"output directory already exists: {out} (choose another --out)")
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
    if out is not None:
        run_dir = write_run_dir(
            out, cfg, est, metrics, curve.rows, split, metric_name, command, prows
        )
    return RunResult(metrics, est, run_dir, curve.rows, split, prows)


def write_run_dir(
    out: Path, cfg, est, metrics, curve_rows, split, metric_name, command=None, path_rows=None
):
    """Write the run directory atomically (temporary folder, then rename)."""
    from . import plots  # noqa: PLC0415

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
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
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


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
