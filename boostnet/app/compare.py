"""``boostnet compare``: boostnet against standard baselines on the same splits and seeds.

Methods form a registry of scikit-learn estimators with names. A comparison runs every
(dataset, method, seed, fold) and makes one tidy row per run (metrics, units or model size, times,
stop reason and certificate gap where they apply, device, versions, host). Rows are appended to
``rows.csv`` as they finish, so an interrupted sweep keeps every finished row and ``--resume`` skips
them. Runs are independent and can go through joblib (``jobs``) or a Dask cluster (``scheduler``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning

from .._signals import deferred_signals
from .._version import __version__
from ..activations import get_activation
from ..exceptions import ConfigError
from ..metrics import r2
from ..penalties import L1
from ..samplers import get_sampler
from ..scoring import transform
from .bench import cpu_name

# ---- methods -------------------------------------------------------------------------------------

#: name -> (description, builder key)
METHODS = {
    "boostnet": "BoostNetClassifier / BoostNetRegressor (any estimator parameter can be set)",
    "mlp": "scikit-learn MLPClassifier / MLPRegressor, 100 hidden units",
    "mlp-matched": "MLP with as many hidden units as boostnet chose on the same split",
    "random-features-l1": "a fixed pool of random units drawn once from boostnet's candidate "
    "distribution, then an L1 linear model on them",
    "hgb": "HistGradientBoostingClassifier / Regressor",
    "linear": "LogisticRegression / Ridge",
    "boostnet-no-refine": "ablation: boostnet without local refinement",
    "boostnet-stagewise": "ablation: no totally corrective re-fit (stagewise; <= 200 units)",
    "boostnet-random-sampler": "ablation: random-direction sampler only",
    "boostnet-squared": "boostnet with the squared loss on +-1 labels (binary; Bengio et al. 2005)",
    "boostnet-auto": "boostnet with alpha='auto' (lambda validated along the path)",
    "boostnet-cv": "BoostNetClassifierCV / BoostNetRegressorCV (5-fold CV over the path)",
}
_ABLATIONS = {
    "boostnet-auto": {"alpha": "auto"},
    "boostnet-no-refine": {"refine": False},
    "boostnet-stagewise": {"corrective": False, "max_units": 200},
    "boostnet-random-sampler": {"sampler": "random"},
}
DEFAULT_METHODS = ("boostnet", "mlp", "random-features-l1", "hgb")
DEFAULT_DATASETS = ("digits", "breast-cancer", "wine")


@dataclass
class MethodEntry:
    """One method of a comparison: a display name, a registry key and its parameters."""

    name: str
    method: str
    params: dict = field(default_factory=dict)


def parse_methods(spec) -> list[MethodEntry]:
    """Methods from ``"a,b"``, a list of names, or a list of ``{name, method, **params}`` tables."""
    items = [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else spec
    out = []
    for item in items:
        if isinstance(item, str):
            entry = MethodEntry(item, item)
        elif isinstance(item, dict):
            item = dict(item)
            method = item.pop("method", None) or item.get("name")
            name = item.pop("name", None) or method
            entry = MethodEntry(str(name), str(method), item)
        else:
            raise ConfigError(f"bad method entry {item!r}")
        if entry.method not in METHODS:
            raise ConfigError(f"unknown method {entry.method!r}; known: {', '.join(METHODS)}")
        out.append(entry)
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"method names must be unique: {names}")
    if not out:
        raise ConfigError("no methods given")
    return out


class RandomFeaturesL1(BaseEstimator):
    """The fixed-pool convex alternative: random units drawn once, then an L1 linear model.

    The pool comes from boostnet's candidate distribution (its sampler, drawn once with a uniform
    gradient); lambda is ``alpha_ratio * lambda_max`` of that pool, as for boostnet, and the L1
    model is scikit-learn's LogisticRegression (``l1_ratio=1``, saga; ``C = 1 / (lambda n)``) or
    Lasso (``alpha = lambda``), which minimise the same objective over the fixed pool.
    """

    def __init__(
        self,
        n_units=512,
        activation="relu",
        sampler="mixture",
        alpha_ratio=0.0075,
        unit_scale=3.0,
        max_iter=300,
        tol=1e-3,
        random_state=None,
        task="classification",
    ):
        self.n_units = n_units
        self.activation = activation
        self.sampler = sampler
        self.alpha_ratio = alpha_ratio
        self.unit_scale = unit_scale
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.task = task

    def fit(self, X, y):
        from sklearn.linear_model import Lasso, LogisticRegression  # noqa: PLC0415

        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        rng = np.random.default_rng(self.random_state)
        act = get_activation(self.activation)
        G1 = np.ones((n, 1)) / n
        W, c = get_sampler(self.sampler).sample(X, G1, self.n_units, rng, act, self.unit_scale)
        self.W_, self.c_, self._act = W, c, act
        H = transform(X, W, c, act)
        if self.task == "classification":
            self.classes_ = np.unique(y)
            Y = (y[:, None] == self.classes_[None, :]).astype(float)
            if Y.shape[1] == 2:
                Y = Y[:, 1:]
        else:
            Y = np.asarray(y, dtype=float).reshape(n, -1)
        G0 = (Y.mean(axis=0) - Y) / n  # gradient at the best constant (squared / logistic family)
        Hc = H - H.mean(axis=0)
        lam = self.alpha_ratio * float(L1.lambda_max(Hc.T @ G0))
        lam = max(lam, 1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.task == "classification":
                self.model_ = LogisticRegression(
                    C=1.0 / (lam * n),
                    l1_ratio=1.0,
                    solver="saga",
                    max_iter=self.max_iter,
                    tol=self.tol,
                    random_state=self.random_state,  # saga shuffles: seed it for reproducible rows
                )
            else:
                self.model_ = Lasso(alpha=lam, max_iter=10 * self.max_iter, tol=self.tol)
            self.model_.fit(H, y)
        coef = np.atleast_2d(self.model_.coef_)
        self.n_units_ = int((coef != 0).any(axis=0).sum())
        return self

    def _h(self, X):

        return transform(np.asarray(X, dtype=np.float64), self.W_, self.c_, self._act)

    def predict(self, X):
        return self.model_.predict(self._h(X))

    def predict_proba(self, X):
        return self.model_.predict_proba(self._h(X))

    def score(self, X, y):
        return self.model_.score(self._h(X), y)


class SquaredLossClassifier(ClassifierMixin, BaseEstimator):
    """Binary classification by boostnet regression on +-1 labels (sign of the output)."""

    def __init__(self, **params):
        self.params = params

    def get_params(self, deep=True):
        return dict(self.params)

    def set_params(self, **p):
        self.params.update(p)
        return self

    def fit(self, X, y):
        from ..estimators import BoostNetRegressor  # noqa: PLC0415

        self.classes_ = np.unique(y)
        if self.classes_.shape[0] != 2:
            raise ConfigError("boostnet-squared handles two classes only")
        t = np.where(y == self.classes_[1], 1.0, -1.0)
        # a classifier: lambda follows the classifier's default rule unless given
        self.reg_ = BoostNetRegressor(**{"alpha": "ratio", **self.params}).fit(X, t)
        for k in ("n_units_", "stop_reason_", "certificate_gap_", "device_"):
            setattr(self, k, getattr(self.reg_, k))
        return self

    def predict(self, X):
        return self.classes_[(self.reg_.predict(X) > 0).astype(int)]

    def predict_proba(self, X):
        p = np.clip((self.reg_.predict(X) + 1) / 2, 1e-6, 1 - 1e-6)
        return np.column_stack([1 - p, p])


def build_estimator(entry: MethodEntry, task: str, seed: int, matched_units: int | None = None):
    """A fresh estimator for one run."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression, Ridge  # noqa: PLC0415
    from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: PLC0415

    from ..estimators import BoostNetClassifier, BoostNetRegressor  # noqa: PLC0415

    clf = task == "classification"
    p = dict(entry.params)
    m = entry.method
    if m == "boostnet" or m in _ABLATIONS:
        cls = BoostNetClassifier if clf else BoostNetRegressor
        return cls(**{"random_state": seed, **_ABLATIONS.get(m, {}), **p})
    if m == "boostnet-cv":
        from ..cv import BoostNetClassifierCV, BoostNetRegressorCV  # noqa: PLC0415

        cls = BoostNetClassifierCV if clf else BoostNetRegressorCV
        return cls(**{"random_state": seed, **p})
    if m == "boostnet-squared":
        if not clf:
            raise ConfigError("boostnet-squared is for classification")
        return SquaredLossClassifier(**{"random_state": seed, **p})
    if m in ("mlp", "mlp-matched"):
        units = p.pop("hidden_units", 100)
        if m == "mlp-matched":
            units = max(1, int(matched_units or 1))
        cls = MLPClassifier if clf else MLPRegressor
        return cls(**{"hidden_layer_sizes": (units,), "max_iter": 500, "random_state": seed, **p})
    if m == "random-features-l1":
        return RandomFeaturesL1(**{"random_state": seed, "task": task, **p})
    if m == "hgb":
        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        return cls(**{"random_state": seed, **p})
    if m == "linear":
        if clf:
            return LogisticRegression(**{"max_iter": 1000, **p})
        return Ridge(**p)
    raise ConfigError(f"unknown method {m!r}")


# ---- runs ----------------------------------------------------------------------------------------
COLUMNS = [
    "dataset", "method", "seed", "fold", "status", "error", "task", "accuracy", "log_loss", "r2",
    "rmse", "units", "model_size", "fit_time_s", "predict_time_s", "stop_reason",
    "certificate_gap", "n_train", "n_test", "n_features", "device", "boostnet", "numpy",
    "scikit_learn", "python", "host", "started",
]  # fmt: skip


@dataclass
class RunSpec:
    """One run of a comparison."""

    dataset: str
    data_options: dict
    entry: MethodEntry
    seed: int
    fold: int
    cv: int | None
    test_size: float
    matched_units: int | None = None

    @property
    def key(self):
        return (self.dataset, self.entry.name, self.seed, self.fold)


def _env() -> dict:
    import sklearn  # noqa: PLC0415

    return {
        "boostnet": __version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def _split(spec: RunSpec):
    """The run's standardised train/test parts: ``boostnet train``'s split (official, or stratified
    random with ``test_size``; ``train_size`` subset), or fold ``spec.fold`` of a K-fold split."""
    import dataclasses  # noqa: PLC0415

    from sklearn.model_selection import KFold, StratifiedKFold  # noqa: PLC0415

    from .experiment import RunConfig, load_for, make_split  # noqa: PLC0415

    opts = dict(spec.data_options)
    test_size = opts.pop("test_size", spec.test_size)
    cfg = RunConfig(data=spec.dataset, seed=spec.seed, test_size=test_size, **opts)
    ds = load_for(cfg)
    if spec.cv:
        clf = ds.task == "classification"
        strat = clf and np.unique(ds.y, return_counts=True)[1].min() >= 2
        kf = (StratifiedKFold if strat else KFold)(spec.cv, shuffle=True, random_state=spec.seed)
        tr, te = list(kf.split(ds.X, ds.y))[spec.fold]
        # the fold plays the part of an official split
        ds = dataclasses.replace(ds, X=ds.X[tr], y=ds.y[tr], X_test=ds.X[te], y_test=ds.y[te])
    s = make_split(ds, cfg)
    return ds.task, s.X_train, s.y_train, s.X_test, s.y_test


def _model_size(est) -> int | None:
    """Number of fitted parameters (weights and biases) where it is defined."""
    if hasattr(est, "hidden_weights_"):
        return int(
            est.hidden_weights_.size + est.hidden_bias_.size + est.coef_.size + est.intercept_.size
        )
    if hasattr(est, "reg_"):
        return _model_size(est.reg_)
    if hasattr(est, "coefs_"):
        return int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
    if hasattr(est, "model_") and hasattr(est, "W_"):
        nz = (np.atleast_2d(est.model_.coef_) != 0).any(axis=0)
        return int(est.W_[nz].size + nz.sum() + (np.atleast_2d(est.model_.coef_) != 0).sum())
    if hasattr(est, "coef_"):
        return int(np.size(est.coef_) + np.size(getattr(est, "intercept_", 0)))
    if hasattr(est, "_predictors"):
        return int(sum(p.nodes.shape[0] for it in est._predictors for p in it))
    return None


def run_one(spec: RunSpec) -> dict:
    """Run one (dataset, method, seed, fold); a failure becomes an error row."""
    row = {c: None for c in COLUMNS}
    row.update(
        dataset=spec.dataset,
        method=spec.entry.name,
        seed=spec.seed,
        fold=spec.fold,
        started=time.strftime("%Y-%m-%dT%H:%M:%S"),
        **_env(),
    )
    try:
        task, Xtr, ytr, Xte, yte = _split(spec)
        est = build_estimator(spec.entry, task, spec.seed, spec.matched_units)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # baselines stopped by their iteration caps say so in a warning; the row is the record
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(Xtr, ytr)
        row["fit_time_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = est.predict(Xte)
        row["predict_time_s"] = time.perf_counter() - t1
        row.update(
            task=task,
            n_train=int(Xtr.shape[0]),
            n_test=int(Xte.shape[0]),
            n_features=int(Xtr.shape[1]),
        )
        if task == "classification":
            from sklearn.metrics import log_loss  # noqa: PLC0415

            row["accuracy"] = float(np.mean(pred == yte))
            if hasattr(est, "predict_proba"):
                row["log_loss"] = float(log_loss(yte, est.predict_proba(Xte), labels=est.classes_))
        else:
            row["r2"] = r2(yte, pred)
            row["rmse"] = float(np.sqrt(np.mean((yte - pred) ** 2)))
        units = getattr(est, "n_units_", None)
        if units is None and hasattr(est, "hidden_layer_sizes"):
            units = int(est.hidden_layer_sizes[0])
        row["units"] = units
        row["model_size"] = _model_size(est)
        row["stop_reason"] = getattr(est, "stop_reason_", None)
        gap = getattr(est, "certificate_gap_", None)
        row["certificate_gap"] = None if gap is None or not math.isfinite(gap) else float(gap)
        row["device"] = getattr(est, "device_", "cpu")
        row["status"] = "ok"
    except Exception as exc:  # a failing run becomes an error row; the sweep goes on
        row["status"] = "error"
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        row["error"] += " @ " + traceback.extract_tb(exc.__traceback__)[-1].name
    return row


# ---- the sweep -----------------------------------------------------------------------------------
@dataclass
class CompareConfig:
    """What to compare (the command line's options or a TOML file's keys)."""

    datasets: list = field(default_factory=lambda: list(DEFAULT_DATASETS))
    methods: list = field(default_factory=lambda: list(DEFAULT_METHODS))
    seeds: int = 3
    cv: int | None = None
    test_size: float = 0.25
    dataset_options: dict = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, d: dict) -> CompareConfig:
        d = dict(d)
        extra = d.pop("method", None)  # [[method]] tables
        known = {"datasets", "methods", "seeds", "cv", "test_size", "dataset_options"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        cfg = cls(**d)
        if isinstance(cfg.datasets, str):
            cfg.datasets = [s.strip() for s in cfg.datasets.split(",") if s.strip()]
        if isinstance(cfg.methods, str):
            cfg.methods = [s.strip() for s in cfg.methods.split(",") if s.strip()]
        if extra:
            cfg.methods = list(cfg.methods) + list(extra)
        return cfg

    def validate(self):
        if not isinstance(self.methods, (list, tuple)):
            raise ConfigError(f"methods must be a list of names or tables, got {self.methods!r}")
        parse_methods(self.methods)
        if not self.datasets:
            raise ConfigError("no datasets given")
        if not isinstance(self.datasets, (list, tuple)) or not all(
            isinstance(d, str) for d in self.datasets
        ):
            raise ConfigError(f"datasets must be a list of names or paths, got {self.datasets!r}")
        for name in self.datasets:
            _check_dataset_name(name)
        for k in ("seeds", "cv"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ConfigError(f"{k} must be an integer, got {v!r}")
        if isinstance(self.test_size, bool) or not isinstance(self.test_size, (int, float)):
            raise ConfigError(f"test_size must be a number, got {self.test_size!r}")
        if not isinstance(self.dataset_options or {}, dict) or not all(
            isinstance(v, dict) for v in (self.dataset_options or {}).values()
        ):
            raise ConfigError("dataset_options must be a table of tables, one per data set")
        if int(self.seeds) < 1:
            raise ConfigError(f"seeds must be at least 1, got {self.seeds}")
        if self.cv is not None and self.cv != 0 and int(self.cv) < 2:
            raise ConfigError(f"cv must be at least 2 (or 0 for one split), got {self.cv}")
        if not 0 < self.test_size < 1:
            raise ConfigError(f"test_size must be between 0 and 1, got {self.test_size}")
        allowed = {
            "n_samples",
            "noise",
            "n_features",
            "train_size",
            "test_size",
            "target",
            "task",
            "data_dir",
        }
        for name, opts in (self.dataset_options or {}).items():
            if name not in self.datasets:
                raise ConfigError(f"dataset_options for {name!r}, which is not in datasets")
            bad = set(opts) - allowed
            if bad:
                raise ConfigError(
                    f"unknown dataset option(s) for {name!r}: {', '.join(sorted(bad))}"
                )


def _check_dataset_name(name: str) -> None:
    """A data set must be a known name or an existing path: checked before any run, so a
    misspelt name is one usage error, not a sweep of error rows."""
    import difflib  # noqa: PLC0415

    from .datasets import NAMED  # noqa: PLC0415

    key = name.strip().lower().replace("_", "-")
    if key in NAMED or Path(name).expanduser().exists():
        return
    hint = difflib.get_close_matches(key, NAMED, n=1)
    did = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ConfigError(
        f"unknown data set {name!r}{did}; known: {', '.join(NAMED)}; or give the path of a "
        "data file"
    )


def plan(cfg: CompareConfig) -> tuple[list[RunSpec], list[RunSpec]]:
    """The runs: first every method but mlp-matched, then mlp-matched (it needs boostnet's units)."""
    entries = parse_methods(cfg.methods)
    cv = int(cfg.cv) if cfg.cv else None
    first, second = [], []
    for ds in cfg.datasets:
        opts = dict(cfg.dataset_options.get(ds, {}))
        for seed in range(int(cfg.seeds)):
            for fold in range(cv or 1):
                for e in entries:
                    spec = RunSpec(ds, opts, e, seed, fold, cv, cfg.test_size)
                    (second if e.method == "mlp-matched" else first).append(spec)
    return first, second


def read_rows(path) -> list[dict]:
    """Complete rows of a ``rows.csv`` (values as strings, empty as None).

    A row cut short by a kill during its write (no final newline, or fewer fields than the
    header) is not a row: it is left out.
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        text = fh.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the torn last line
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return []
    return [
        {k: (v if v != "" else None) for k, v in zip(header, r, strict=True)}
        for r in reader
        if len(r) == len(header)
    ]


def _rewrite_rows(path: Path, rows: list[dict]) -> None:
    """Replace ``rows.csv`` by its header and ``rows`` (atomically: temporary file, rename)."""
    import tempfile  # noqa: PLC0415

    from ..io import current_umask  # noqa: PLC0415

    fd, tmp = tempfile.mkstemp(prefix=".rows.csv.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k) for k in COLUMNS})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RowWriter:
    """Appends rows to ``rows.csv`` as they finish (flushed: an interrupt keeps every row)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.fh = open(self.path, "a", newline="")  # noqa: SIM115
        self.w = csv.DictWriter(self.fh, fieldnames=COLUMNS)
        if new:
            self.w.writeheader()
            self.fh.flush()

    def write(self, row):
        self.w.writerow({k: row.get(k) for k in COLUMNS})
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self):
        self.fh.close()


def _connect(scheduler):
    """A Dask client for ``scheduler`` (None for none), made before anything is written."""
    if scheduler is None:
        return None
    try:
        from dask.distributed import Client  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "--scheduler needs dask.distributed: pip install 'boostnet[distributed]'"
        ) from None
    try:
        return Client(scheduler, timeout=10)
    except (OSError, ValueError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {msg}") from None


def _execute(specs, jobs, client, on_row):
    """Run specs sequentially, with joblib processes, or on a Dask cluster; call on_row per row."""
    if not specs:
        return
    if client is None and jobs == 1:
        for s in specs:
            on_row(run_one(s))
        return
    from joblib import Parallel, delayed  # noqa: PLC0415

    if client is not None:
        from dask.distributed import as_completed  # noqa: PLC0415

        # one task per run, submitted directly: joblib's Dask backend would run everything in
        # this process when the cluster has a single thread
        futures = [client.submit(run_one, s, pure=False) for s in specs]
        try:
            for fut in as_completed(futures):
                on_row(fut.result())
        finally:
            client.cancel(futures)
        return
    for row in Parallel(n_jobs=jobs, return_as="generator_unordered")(
        delayed(run_one)(s) for s in specs
    ):
        on_row(row)


@dataclass
class CompareResult:
    rows: list
    out: Path | None
    interrupted: bool = False


def compare(
    cfg: CompareConfig,
    *,
    out=None,
    resume=False,
    jobs=1,
    scheduler=None,
    progress=None,
    invocation=None,
) -> CompareResult:
    """Run a comparison; rows go to ``out/rows.csv`` as they finish.

    Parameters
    ----------
    cfg : CompareConfig
    out : path, optional
        Output folder. Without ``resume`` it must not hold rows already.
    resume : bool
        Skip the runs whose rows are already in ``out/rows.csv`` with status ok.
    jobs : int
        Parallel processes (joblib).
    scheduler : str, optional
        Address of a Dask distributed scheduler: one task per run, submitted to it directly (not
        through joblib's Dask backend, which may run everything in this process).
    progress : callable, optional
        ``progress(done, total, row)`` after each run.
    """
    cfg.validate()
    first, second = plan(cfg)
    rows_path = None
    if out is not None:
        out = Path(out)
        rows_path = out / "rows.csv"
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file, not a folder; choose another --out")
        if rows_path.exists() and not resume:
            raise ConfigError(f"{rows_path} exists; use --resume to continue it or another --out")
    client = _connect(scheduler)
    try:
        return _compare(
            cfg, first, second, out, rows_path, resume, jobs, client, progress, invocation
        )
    finally:
        if client is not None:
            client.close()


def _compare(cfg, first, second, out, rows_path, resume, jobs, client, progress, invocation):
    done_rows = []
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the output folder {out}: {exc.strerror or exc}"
            ) from None
        # the rows to keep: complete ones with status ok; error rows and a torn last row are
        # dropped from the file, so their runs are done again and counted once
        all_rows = read_rows(rows_path)
        done_rows = [r for r in all_rows if r.get("status") == "ok"]
        if rows_path.exists() and (
            len(done_rows) != len(all_rows) or not rows_path.read_bytes().endswith(b"\n")
        ):
            _rewrite_rows(rows_path, done_rows)
        env = {
            "invocation": invocation,
            "config": _jsonable(cfg),
            "environment": _env(),
            "cpu_threads": os.cpu_count(),
            "machine": platform.machine(),
            "cpu": cpu_name(),  # fit times depend on it (the rows keep their columns: resumable)
        }
        (out / "invocation.json").write_text(json.dumps(env, indent=2, default=str) + "\n")
    done_keys = {(r["dataset"], r["method"], int(r["seed"]), int(r["fold"])) for r in done_rows}
    rows = [_typed(r) for r in done_rows]
    todo_first = [s for s in first if s.key not in done_keys]
    total = len(first) + len(second)
    writer = RowWriter(rows_path) if rows_path is not None else None
    count = [len(rows)]

    def on_row(row):
        if writer is not None:
            with deferred_signals() as received:  # a Ctrl-C never tears a row
                writer.write(row)
        rows.append(row)
        count[0] += 1
        if progress is not None:
            progress(count[0], total, row)
        if writer is not None and received:
            raise KeyboardInterrupt

    interrupted = False
    try:
        _execute(todo_first, jobs, client, on_row)
        units = {}
        for r in rows:
            if r.get("method") == "boostnet" and r.get("status") == "ok" and r.get("units"):
                units[(r["dataset"], int(r["seed"]), int(r["fold"]))] = int(r["units"])
        todo_second = []
        for s in second:
            if s.key in done_keys:
                continue
            s.matched_units = units.get((s.dataset, s.seed, s.fold))
            if s.matched_units is None:
                # no boostnet row to match: fit the default boostnet on the same split first
                ref = run_one(
                    RunSpec(
                        s.dataset,
                        s.data_options,
                        MethodEntry("boostnet", "boostnet"),
                        s.seed,
                        s.fold,
                        s.cv,
                        s.test_size,
                    )
                )
                s.matched_units = ref.get("units")
            todo_second.append(s)
        _execute(todo_second, jobs, client, on_row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if writer is not None:
            writer.close()
    if out is not None:
        _write_parquet(out, rows)
    return CompareResult(rows, out, interrupted)


def _jsonable(cfg):
    from dataclasses import asdict  # noqa: PLC0415

    return asdict(cfg)


#: Columns holding integers and floats (everything else is text).
INT_COLUMNS = ("seed", "fold", "units", "model_size", "n_train", "n_test", "n_features")
FLOAT_COLUMNS = ("accuracy", "log_loss", "r2", "rmse", "fit_time_s", "predict_time_s",
                 "certificate_gap")  # fmt: skip


def _typed(r: dict) -> dict:
    """Convert a CSV row's strings back to numbers."""
    out = dict(r)
    for k in INT_COLUMNS:
        if out.get(k) is not None:
            out[k] = int(float(out[k]))
    for k in FLOAT_COLUMNS:
        if out.get(k) is not None:
            out[k] = float(out[k])
    return out


def _write_parquet(out: Path, rows):
    try:
        import pyarrow  # noqa: PLC0415, F401
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:
        return None
    table = pyarrow.Table.from_pylist([{k: r.get(k) for k in COLUMNS} for r in rows])
    pq.write_table(table, out / "rows.parquet")
    return out / "rows.parquet"


# ---- summaries -----------------------------------------------------------------------------------
def summarize(rows) -> list[dict]:
    """Mean and sd per (dataset, method) of the main metric, units and fit time; best marked."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"]), []).append(r)
    out = []
    for (ds, m), rs in groups.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        task = ok[0]["task"] if ok else None
        metric = "accuracy" if task == "classification" else "r2"
        vals = np.array([r[metric] for r in ok if r.get(metric) is not None], dtype=float)
        units = np.array([r["units"] for r in ok if r.get("units") is not None], dtype=float)
        times = np.array([r["fit_time_s"] for r in ok], dtype=float)
        out.append({
            "dataset": ds, "method": m, "metric": metric, "runs": len(rs),
            "errors": len(rs) - len(ok),
            "mean": float(vals.mean()) if vals.size else math.nan,
            "sd": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
            "units": float(units.mean()) if units.size else math.nan,
            "fit_time_s": float(times.mean()) if times.size else math.nan,
        })  # fmt: skip
    for ds in {s["dataset"] for s in out}:
        group = [s for s in out if s["dataset"] == ds and not math.isnan(s["mean"])]
        best = max(group, key=lambda s: s["mean"], default=None)
        for s in out:
            s.setdefault("best", False)
        if best is not None:
            best["best"] = True
    return out


__all__ = [
    "COLUMNS", "CompareConfig", "MethodEntry", "METHODS", "RandomFeaturesL1",
    "build_estimator", "compare", "parse_methods", "read_rows", "run_one", "summarize",
]  # fmt: skip
