"""The ``boostnet`` command line: a thin typed layer over the library.

It parses options, calls the library (:mod:`boostnet.experiment`, :mod:`boostnet.datasets`,
:mod:`boostnet.io`) and renders with rich. Library errors, and click's own usage errors, become one
line on stderr (``error: ...``): exit code 2 for usage errors (bad option or configuration values,
unknown configuration keys, an unusable ``--out``), 1 for data and model-file errors, 130 after
Ctrl-C, 143 after SIGTERM (handled like Ctrl-C). No traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import sys
import tempfile
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

try:  # recent typer vendors click as typer._click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - typer on the external click
    from click import exceptions as _cx

from .._backend import AUTO_GPU_MIN_ROWS, DEVICES
from .._signals import exit_code, signum_of, terminate_as_interrupt
from .._version import __version__
from ..activations import ACTIVATIONS
from ..estimators import BoostNetClassifier
from ..exceptions import BoostNetError, ConfigError, DataError, ModelFileError
from ..oracle import ORACLES
from ..pathwise import SELECTIONS
from ..penalties import PENALTIES
from ..samplers import SAMPLERS

#: Option defaults are the estimator's own defaults.
_D = BoostNetClassifier().get_params()

err = Console(stderr=True)
out = Console()


def _error_line(msg: str) -> None:
    """The one line every error becomes: ``error: <message>`` on stderr."""
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True, markup=True)


class _OneLineGroup(TyperGroup):
    """The command group, with click's and typer's own usage errors as one line (exit 2) instead
    of a boxed panel, and SIGTERM treated like Ctrl-C (exit 143) for every command."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        no_args = getattr(_cx, "NoArgsIsHelpError", None)
        try:
            with terminate_as_interrupt():
                rv = super().main(
                    args=args,
                    prog_name=prog_name,
                    complete_var=complete_var,
                    standalone_mode=False,
                    **extra,
                )
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except _cx.UsageError as exc:
            if no_args is not None and isinstance(exc, no_args):
                exc.show()  # the help, as `no_args_is_help` promises
                code = 2
            else:
                path = exc.ctx.command_path if exc.ctx is not None else "boostnet"
                _error_line(f"{exc.format_message()} (see `{path} --help`)")
                code = 2
        except _cx.ClickException as exc:
            _error_line(exc.format_message())
            code = exc.exit_code
        except typer.Abort:
            code = 130
        except KeyboardInterrupt as exc:
            code = exit_code(signum_of(exc))
        except Exception as exc:  # a bug: still one line (BOOSTNET_DEBUG=1 shows the traceback)
            if os.environ.get("BOOSTNET_DEBUG"):
                raise
            first = str(exc).splitlines()[0] if str(exc) else ""
            _error_line(
                f"internal error ({type(exc).__name__}: {first}); please report it "
                "(BOOSTNET_DEBUG=1 shows the traceback)"
            )
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="boostnet",
    help="Grow single-hidden-layer networks by greedy hidden-unit selection with an L1 certificate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_OneLineGroup,
)


# Choices come from the library's registries.
Activation = Enum("Activation", {k: k for k in ACTIVATIONS}, type=str)
Penalty = Enum("Penalty", {k: k for k in [*PENALTIES, "auto"]}, type=str)
_DEFAULT_PENALTY = Penalty(_D["penalty"])
Sampler = Enum("Sampler", {k: k for k in SAMPLERS}, type=str)
Oracle = Enum("Oracle", {k: k for k in ORACLES}, type=str)
_DEFAULT_ORACLE = Oracle(_D["oracle"])
Device = Enum("Device", {k: k for k in DEVICES}, type=str)
Selection = Enum("Selection", {k: k for k in SELECTIONS}, type=str)


class Task(str, Enum):
    classification = "classification"
    regression = "regression"


class Dtype(str, Enum):
    float16 = "float16"
    float32 = "float32"
    float64 = "float64"


class SplitPart(str, Enum):
    all = "all"
    train = "train"
    test = "test"


def _version(value: bool):
    if value:
        print(f"boostnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
):
    """boostnet: greedy hidden-unit selection with an optimality certificate."""


def _fail(exc: BaseException) -> typer.Exit:
    """One line on stderr; exit 2 for usage errors, 1 for data and model-file errors."""
    from sklearn.utils._param_validation import InvalidParameterError  # noqa: PLC0415

    code = 2 if isinstance(exc, (ConfigError, InvalidParameterError)) else 1
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    _error_line(msg)  # text, not markup: "[onnx]" in `pip install "boostnet[onnx]"` survives
    return typer.Exit(code)


def _val(v):
    return v.value if isinstance(v, Enum) else v


# ---- train ---------------------------------------------------------------------------------------
_DATA = "Data"
_SPLIT = "Split and preprocessing"
_MODEL = "Estimator"
_OUT = "Output"
_PATH = "Regularisation path (--alpha auto)"


class _Progress:
    """Adapts the loop's callbacks to one live line on stderr."""

    def __init__(self, console: Console, enabled: bool):
        self.console = console
        self.enabled = enabled
        self.live = None
        self.t0 = time.perf_counter()

    def start(self):
        """Shown from the first step on: a failure while the data is read stays one line."""
        self.t0 = time.perf_counter()

    def _live(self):
        if self.live is None and self.enabled:
            self.live = Live(Text(""), console=self.console, transient=False, refresh_per_second=8)
            self.live.start()
        return self.live

    def update(self, rec, curve_row):
        if self._live() is None:
            return
        ratio = rec.best_score / (rec.best_score - rec.certificate_gap)
        parts = [
            f"step {rec.step}",
            f"units {rec.n_units}",
            f"objective {rec.objective:.5g}",
            f"best/lambda {ratio:.4f}",
        ]
        if rec.val_score is not None:
            parts.append(f"val {rec.val_score:.4f}")
        if curve_row is not None and "test" in curve_row:
            parts.append(f"test {curve_row['test']:.4f}")
        parts.append(f"{time.perf_counter() - self.t0:.1f} s")
        self.live.update(Text(" | ".join(parts)))

    def path_point(self, point):
        if self._live() is None:
            return
        parts = [
            f"path lambda {point.alpha:.4g} ({point.ratio:.3g} lambda_max)",
            f"units {point.n_units}",
        ]
        if point.val_score is not None:
            parts.append(f"val {point.val_score:.4f}")
        parts.append(f"{time.perf_counter() - self.t0:.1f} s")
        self.live.update(Text(" | ".join(parts)))

    def stop(self):
        if self.live is not None:
            self.live.stop()
            self.live = None


def _merge(ctx: typer.Context, config: Path | None, values: dict) -> tuple[dict, set]:
    """The one merge of ``train`` and ``compare``: defaults < config file < command line.

    The config file (TOML) is read once. Returns the merged values and the keys that were given
    (on the command line, in the environment or in the file) rather than left at their defaults.
    """
    from .experiment import read_config  # noqa: PLC0415

    merged = {}
    if config is not None:
        merged.update({k.replace("-", "_"): v for k, v in read_config(config).items()})
    given = set(merged)
    for k, v in values.items():
        src = getattr(ctx.get_parameter_source(k), "name", "DEFAULT")
        if src in ("COMMANDLINE", "ENVIRONMENT"):
            given.add(k)
        if src in ("COMMANDLINE", "ENVIRONMENT") or k not in merged:
            merged[k] = _val(v)
    return merged, given


@app.command()
def train(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            help="Data set name or path (see `boostnet datasets`).", rich_help_panel=_DATA
        ),
    ] = "digits",
    target: Annotated[
        str | None,
        typer.Option(
            help="Target column of a CSV/TSV (name or index; default: the last).",
            rich_help_panel=_DATA,
        ),
    ] = None,
    task: Annotated[
        Task | None, typer.Option(help="Force the task (default: inferred).", rich_help_panel=_DATA)
    ] = None,
    n_samples: Annotated[
        int | None, typer.Option(help="Samples of a synthetic set.", min=2, rich_help_panel=_DATA)
    ] = None,
    noise: Annotated[
        float | None, typer.Option(help="Noise of a synthetic set.", min=0.0, rich_help_panel=_DATA)
    ] = None,
    n_features: Annotated[
        int | None,
        typer.Option(help="Dimensions of xor / friedman1.", min=1, rich_help_panel=_DATA),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(help="Folder of the fashion-mnist IDX files.", rich_help_panel=_DATA),
    ] = None,
    test_size: Annotated[
        float, typer.Option(help="Share held out for testing (stratified).", rich_help_panel=_SPLIT)
    ] = 0.25,
    train_size: Annotated[
        int | None,
        typer.Option(
            help="Train on a subset of this many training samples.", rich_help_panel=_SPLIT
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the split, the subset and the training.", rich_help_panel=_SPLIT
        ),
    ] = 0,
    standardize: Annotated[
        bool,
        typer.Option(
            help="Standardise features (fitted on the training part).", rich_help_panel=_SPLIT
        ),
    ] = True,
    activation: Annotated[
        Activation, typer.Option(help="Hidden-unit activation.", rich_help_panel=_MODEL)
    ] = Activation.relu,
    penalty: Annotated[
        Penalty,
        typer.Option(
            help="l1 (elementwise), group_l1 (per unit) or auto (group_l1 for more than two "
            "classes, else l1).",
            rich_help_panel=_MODEL,
        ),
    ] = _DEFAULT_PENALTY,
    alpha: Annotated[
        str | None,
        typer.Option(
            help="lambda: a number (absolute), 'ratio' (--alpha-ratio x lambda_max) or 'auto' "
            "(chosen on a held-out part along the regularisation path). Default: 'ratio' for "
            "classification, 'auto' for regression.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    alpha_ratio: Annotated[
        float, typer.Option(help="lambda as a fraction of lambda_max.", rich_help_panel=_MODEL)
    ] = _D["alpha_ratio"],
    n_alphas: Annotated[
        int, typer.Option(help="Path: lambdas on the grid.", min=1, rich_help_panel=_PATH)
    ] = _D["n_alphas"],
    alpha_min_ratio: Annotated[
        float,
        typer.Option(help="Path: smallest lambda / lambda_max.", rich_help_panel=_PATH),
    ] = _D["alpha_min_ratio"],
    path_patience: Annotated[
        int | None,
        typer.Option(
            help="Path: stop after this many lambdas without a better validation score.",
            min=1,
            rich_help_panel=_PATH,
        ),
    ] = _D["path_patience"],
    selection: Annotated[
        Selection | None,
        typer.Option(
            help="Path: the lambda --alpha auto keeps: best (the best held-out loss) or 1se (the "
            "largest within one standard error of it: sparser). Default: best for "
            "classification, 1se for regression.",
            rich_help_panel=_PATH,
        ),
    ] = None,
    show_path: Annotated[
        bool,
        typer.Option(
            "--path",
            help="Same as --alpha auto, and print the path's table.",
            rich_help_panel=_PATH,
        ),
    ] = False,
    sampler: Annotated[
        Sampler,
        typer.Option(
            help="Candidate pool: random directions, data pairs, or a mixture.",
            rich_help_panel=_MODEL,
        ),
    ] = Sampler.mixture,
    oracle: Annotated[
        Oracle,
        typer.Option(
            help="Best-unit search: the sampled pool, or also the exact best unit (sign/relu, "
            "at most 2 features: a global certificate); auto: exact where it applies.",
            rich_help_panel=_MODEL,
        ),
    ] = _DEFAULT_ORACLE,
    n_candidates: Annotated[
        int, typer.Option(help="Candidates per step.", rich_help_panel=_MODEL)
    ] = _D["n_candidates"],
    top_k: Annotated[
        int, typer.Option(help="Candidates re-scored exactly per step.", rich_help_panel=_MODEL)
    ] = _D["top_k"],
    refine: Annotated[
        bool,
        typer.Option(help="Refine the best candidate by gradient ascent.", rich_help_panel=_MODEL),
    ] = _D["refine"],
    n_refine: Annotated[
        int, typer.Option(help="Candidates refined per step.", rich_help_panel=_MODEL)
    ] = _D["n_refine"],
    refine_steps: Annotated[
        int, typer.Option(help="Ascent steps per refined candidate.", rich_help_panel=_MODEL)
    ] = _D["refine_steps"],
    units_per_step: Annotated[
        int,
        typer.Option(help="Distinct units added per step at most.", min=1, rich_help_panel=_MODEL),
    ] = _D["units_per_step"],
    certify_pools: Annotated[
        int,
        typer.Option(
            help="Consecutive fresh pools that must find nothing above lambda to certify.",
            min=1,
            rich_help_panel=_MODEL,
        ),
    ] = _D["certify_pools"],
    slide_steps: Annotated[
        int,
        typer.Option(
            help="Gradient steps of the active units before each growing re-fit (0: none; more in the "
            "certification tail where a search costs more).",
            min=0,
            rich_help_panel=_MODEL,
        ),
    ] = _D["slide_steps"],
    unit_scale: Annotated[
        float, typer.Option(help="Norm bound of sigmoid/tanh units.", rich_help_panel=_MODEL)
    ] = _D["unit_scale"],
    max_units: Annotated[
        int, typer.Option(help="Stop at this many units.", rich_help_panel=_MODEL)
    ] = _D["max_units"],
    max_time: Annotated[
        float | None, typer.Option(help="Stop after this many seconds.", rich_help_panel=_MODEL)
    ] = None,
    tol: Annotated[
        float,
        typer.Option(
            help="Certificate tolerance: stop when best score <= lambda (1 + tol).",
            rich_help_panel=_MODEL,
        ),
    ] = _D["tol"],
    refit_tol: Annotated[
        float, typer.Option(help="Relative duality gap of the re-fit.", rich_help_panel=_MODEL)
    ] = _D["refit_tol"],
    refit_max_iter: Annotated[
        int,
        typer.Option(help="Proximal Newton iterations per re-fit at most.", rich_help_panel=_MODEL),
    ] = _D["refit_max_iter"],
    early_stopping: Annotated[
        bool, typer.Option(help="Stop on a validation split's metric.", rich_help_panel=_MODEL)
    ] = _D["early_stopping"],
    validation_fraction: Annotated[
        float,
        typer.Option(
            help="Share of the training part held out for early stopping.", rich_help_panel=_MODEL
        ),
    ] = _D["validation_fraction"],
    n_iter_no_change: Annotated[
        int, typer.Option(help="Early-stopping patience in steps.", rich_help_panel=_MODEL)
    ] = _D["n_iter_no_change"],
    dtype: Annotated[
        Dtype,
        typer.Option(
            help="Screening precision (GPU: float32 = TF32, float16 = FP16 tensor cores).",
            rich_help_panel=_MODEL,
        ),
    ] = Dtype.float32,
    memory_budget_mb: Annotated[
        float,
        typer.Option(
            help="CPU scorer memory (MiB): activation buffer, and X X^T where it fits.",
            rich_help_panel=_MODEL,
        ),
    ] = _D["memory_budget_mb"],
    device: Annotated[
        Device,
        typer.Option(
            help=f"auto (the GPU where CuPy finds one and there are >= {AUTO_GPU_MIN_ROWS} "
            "training rows), cpu or gpu.",
            envvar="BOOSTNET_DEVICE",
            rich_help_panel=_MODEL,
        ),
    ] = Device.auto,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file with any of these options (the command line wins).",
            rich_help_panel=_OUT,
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Run directory (default runs/<timestamp>-<data>).", rich_help_panel=_OUT
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the final metrics as one JSON object on stdout.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show live progress on stderr.", rich_help_panel=_OUT)
    ] = True,
):
    """Train a network and write a run directory (config, metrics, history, model, plots)."""
    from ..callbacks import StopOnInterrupt  # noqa: PLC0415
    from .experiment import RunConfig, default_run_dir, run_train  # noqa: PLC0415

    values = {
        k: v
        for k, v in ctx.params.items()
        if k not in ("config", "out_dir", "as_json", "progress", "show_path")
    }
    bar = _Progress(err, progress)
    stopper = StopOnInterrupt()
    try:
        resolved, given = _merge(ctx, config, values)
        if show_path:
            resolved["alpha"] = "auto"
        resolved["alpha"] = _parse_alpha(resolved.get("alpha"))
        if resolved["alpha"] is None and "alpha_ratio" in given:
            resolved["alpha"] = "ratio"  # an explicit --alpha-ratio is a fixed lambda
        cfg = RunConfig.from_mapping(resolved)
        target_dir = out_dir if out_dir is not None else default_run_dir(cfg.data)
        bar.start()
        result = run_train(
            cfg,
            out=target_dir,
            unique=out_dir is None,
            callbacks=[stopper],
            progress=bar.update,
            path_progress=bar.path_point,
            command=shlex.join(["boostnet", *sys.argv[1:]]) if sys.argv else None,
        )
    except KeyboardInterrupt as exc:
        bar.stop()
        err.print("interrupted before training finished; nothing written")
        raise typer.Exit(exit_code(signum_of(exc))) from None
    except (BoostNetError, ValueError, MemoryError) as exc:
        bar.stop()
        raise _fail(exc) from None
    finally:
        bar.stop()
        stopper.on_fit_end(None)  # handlers back even if the fit raised
    m = result.metrics
    if as_json:
        print(json.dumps(m))
    else:
        if show_path and result.path:
            _print_path(result.path, result.metrics)
        _print_summary(m, result.run_dir)
    if m["stop_reason"] == "interrupted":
        err.print(f"interrupted: the model of the last step is saved in {result.run_dir}")
        raise typer.Exit(exit_code(stopper.signum))
    if result.signals:
        err.print(f"interrupted while the run was written; it is complete in {result.run_dir}")
        raise typer.Exit(exit_code(result.signals[0]))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}"
    return "-" if v is None else str(v)


def _parse_alpha(v):
    """``--alpha``: a positive number, ``auto`` or ``ratio`` (None: the estimator's default)."""
    if v is None or isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if str(v).strip().lower() in ("auto", "ratio"):
        return str(v).strip().lower()
    try:
        x = float(v)
    except ValueError:
        x = float("nan")
    if not x > 0 or x == float("inf"):
        raise ConfigError(f"--alpha must be a positive number, 'auto' or 'ratio', got {v!r}")
    return x


def _print_path(rows, m):
    metric = next((k[5:] for k in m if k.startswith("test_")), "score")
    table = Table(title="regularisation path (validation chooses; test only reported)")
    for col in ("lambda", "lambda/max", "units", "certificate", "val", f"train {metric}"):
        table.add_column(col, justify="right")
    table.add_column(f"test {metric}", justify="right")
    for r in rows:
        style = "bold green" if r["chosen"] else None
        table.add_row(
            f"{r['alpha']:.4g}",
            f"{r['ratio']:.4g}",
            str(r["n_units"]),
            "yes" if r["stop_reason"] == "certificate" else r["stop_reason"],
            _fmt(r["val_score"]),
            _fmt(r["train"]),
            _fmt(r["test"]),
            style=style,
        )
    out.print(table)


def _print_pairs(title, rows, head="metric", justify="right"):
    """Print (name, value) rows as a two-column table."""
    table = Table(title=title)
    table.add_column(head)
    table.add_column("value", justify=justify)
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)


def _fmt_certificate(c) -> str:
    """One line for a ``certificate_`` record (``-`` without one)."""
    if not c:
        return "-"
    return (
        f"{c['kind']}, {c['pools']} pools ({c['candidates']} units): best "
        f"{c['best_score'] / c['alpha']:.4f} lambda, gap {c['refit_gap']:.0e}"
    )


def _print_summary(m, run_dir):
    keys = [k for k in m if k.startswith(("train_", "test_"))] + [
        "units",
        "stop_reason",
        "certificate_gap",
        "alpha",
        "steps",
        "fit_time_s",
        "device",
    ]
    rows = [(k, _fmt(m.get(k))) for k in keys]
    rows.insert(
        keys.index("stop_reason") + 1, ("certificate", _fmt_certificate(m.get("certificate")))
    )
    _print_pairs(f"boostnet on {m['data']}", rows)
    phases = m.get("phase_time_s") or {}
    total = m.get("fit_time_s") or 0.0
    if phases and total > 0:
        other = max(total - sum(phases.values()), 0.0)
        rows = [*phases.items(), ("other", other)]
        _print_pairs(
            "where the fit's time went",
            [(k, f"{v:.3f} s ({100 * v / total:.0f} %)") for k, v in rows],
            head="phase",
        )
    from .bench import blas_hint  # noqa: PLC0415

    hint = blas_hint() if m.get("device") == "cpu" else None
    if hint:
        out.print(f"note: {hint}", highlight=False)
    if run_dir is not None:
        out.print(f"run directory: {run_dir}", highlight=False)


# ---- predict / evaluate --------------------------------------------------------------------------
def _model_path(model: Path) -> Path:
    if model.is_dir():
        p = model / "model.npz"
        if not p.exists():
            raise ModelFileError(f"no model.npz in run directory {model}")
        return p
    return model


def _load_eval_data(
    model: Path, data, target, task, data_dir, n_samples, noise, n_features, seed, split: SplitPart
):
    """Load the model and the data to apply it to (the run's split when asked)."""
    from ..io import load_bundle  # noqa: PLC0415
    from .experiment import RunConfig, load_for, make_split, preprocess  # noqa: PLC0415

    est, extra = load_bundle(_model_path(model))
    run = dict(extra.get("run") or {})
    if split != SplitPart.all:
        if not run:
            raise DataError(
                "this model has no run record; --split train/test needs a model "
                "written by `boostnet train`"
            )
        given = {
            "data": data,
            "target": target,
            "task": _val(task),
            "data_dir": data_dir,
            "n_samples": n_samples,
            "noise": noise,
            "n_features": n_features,
            "seed": seed,
        }
        for k, v in given.items():
            if v is not None and run.get(k) is not None and str(run[k]) != str(v):
                raise DataError(
                    f"--split {split.value} re-creates the run's split, but --{k} "
                    f"{v} differs from the run's {run[k]}"
                )
            if v is not None:
                run[k] = v
        cfg = RunConfig.from_mapping({**run, "standardize": False})
        s = make_split(load_for(cfg), cfg)
        X, y = (s.X_train, s.y_train) if split == SplitPart.train else (s.X_test, s.y_test)
    else:
        if data is None:
            raise ConfigError("--data is required (or use --split test with a run's model)")
        cfg = RunConfig(
            data=data,
            target=target if target is not _NO_TARGET else False,
            task=_val(task),
            data_dir=data_dir,
            n_samples=n_samples,
            noise=noise,
            n_features=n_features,
            seed=0 if seed is None else seed,
        )
        ds = load_for(cfg)
        X, y = ds.X, ds.y
        if y is None:
            target = _NO_TARGET
        elif ds.X_test is not None:
            import numpy as np  # noqa: PLC0415

            X, y = np.concatenate([ds.X, ds.X_test]), np.concatenate([ds.y, ds.y_test])
    d = est.n_features_in_
    if X.shape[1] != d:
        if target is None and X.shape[1] == d - 1 and split == SplitPart.all:
            raise DataError(
                f"the data has {X.shape[1]} features after its last column was taken as the "
                f"target; the model expects {d}: if the data has no target column, pass "
                "--no-target"
            )
        raise DataError(f"the data has {X.shape[1]} features; the model expects {d}")
    if y is not None and not hasattr(est, "classes_") and y.dtype.kind not in "biuf":
        example = str(y.ravel()[0]) if y.size else ""
        raise DataError(
            f"the model is a regressor, but the data's target holds labels such as {example!r}; "
            "give numeric targets (or --no-target to predict without one)"
        )
    return est, preprocess(X, extra), y


#: ``target`` value of predict's ``--no-target``: every column of the file is a feature.
_NO_TARGET = False

_DataOpt = Annotated[str | None, typer.Option(help="Data set name or path.")]
_TargetOpt = Annotated[str | None, typer.Option(help="Target column of a CSV/TSV.")]
_TaskOpt = Annotated[Task | None, typer.Option(help="Force the task.")]
_DirOpt = Annotated[str | None, typer.Option(help="Folder of IDX files (fashion-mnist).")]
_NOpt = Annotated[int | None, typer.Option(help="Samples of a synthetic set.")]
_NoiseOpt = Annotated[float | None, typer.Option(help="Noise of a synthetic set.")]
_NfOpt = Annotated[int | None, typer.Option(help="Dimensions of xor / friedman1.")]
_SeedOpt = Annotated[int | None, typer.Option(help="Seed of a synthetic set (default: the run's).")]
_SplitOpt = Annotated[SplitPart, typer.Option(help="all the data, or the run's train/test part.")]
_ModelArg = Annotated[Path, typer.Argument(help="Run directory or model .npz file.")]


@app.command()
def predict(
    model: _ModelArg,
    data: _DataOpt = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="CSV file to write (default: stdout).")
    ] = None,
    split: _SplitOpt = SplitPart.all,
    target: _TargetOpt = None,
    task: _TaskOpt = None,
    data_dir: _DirOpt = None,
    n_samples: _NOpt = None,
    noise: _NoiseOpt = None,
    n_features: _NfOpt = None,
    seed: _SeedOpt = None,
    no_target: Annotated[
        bool,
        typer.Option(
            "--no-target",
            help="The CSV/TSV has no target column: every column is a feature.",
        ),
    ] = False,
):
    """Write predictions (and class probabilities) of a saved model as CSV."""
    try:
        if no_target and target is not None:
            raise ConfigError("--no-target and --target exclude each other")
        if out_file is not None:
            _check_out_file(out_file, model)
        est, X, y = _load_eval_data(
            model,
            data,
            _NO_TARGET if no_target else target,
            task,
            data_dir,
            n_samples,
            noise,
            n_features,
            seed,
            split,
        )
        pred = est.predict(X)
        buf = io.StringIO()
        w = csv.writer(buf)
        if hasattr(est, "classes_"):
            P = est.predict_proba(X)
            w.writerow(
                [
                    "prediction",
                    *(["target"] if y is not None else []),
                    *[f"p_{c}" for c in est.classes_],
                ]
            )
            for i, (p, row) in enumerate(zip(pred, P, strict=True)):
                w.writerow([p, *([y[i]] if y is not None else []), *[f"{v:.6g}" for v in row]])
        else:
            pred2 = pred.reshape(len(pred), -1)
            y2 = y.reshape(len(y), -1) if y is not None else None
            k = pred2.shape[1]
            head = ["prediction"] if k == 1 else [f"prediction_{i}" for i in range(k)]
            if y2 is not None:
                head += ["target"] if y2.shape[1] == 1 else [f"target_{i}" for i in range(k)]
            w.writerow(head)
            for i, p in enumerate(pred2):
                t = [f"{v:.8g}" for v in y2[i]] if y2 is not None else []
                w.writerow([*[f"{v:.8g}" for v in p], *t])
    except (BoostNetError, ValueError, MemoryError) as exc:
        raise _fail(exc) from None
    if out_file is None:
        sys.stdout.write(buf.getvalue())
        return
    from .._signals import deferred_signals  # noqa: PLC0415

    with deferred_signals() as received:  # a Ctrl-C here leaves no temporary file
        _atomic_write(out_file, buf.getvalue())
    err.print(f"wrote {len(pred)} predictions to {out_file}", highlight=False)
    if received:
        raise typer.Exit(exit_code(received[0]))


def _check_out_file(path: Path, model: Path) -> None:
    """``predict --out``: a file we may (re)write. Never the model, nor a file of its run
    directory, nor a folder; its folder must be a folder (checked before any work)."""
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise ConfigError(f"--out {path} is a directory; give the name of a CSV file")
    run_dir = model if model.is_dir() else model.parent
    target = path.resolve()
    if target == Path(model).resolve() or (
        model.is_dir() and target.parent == run_dir.resolve() and target.exists()
    ):
        raise ConfigError(
            f"--out {path} would overwrite a file of the model's run; choose another file"
        )
    if path.exists() and _is_zip(path):
        raise ConfigError(f"--out {path} is an .npz archive (a model?); choose another file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write --out {path}: {parent} is not a folder")


def _is_zip(path: Path) -> bool:
    import zipfile  # noqa: PLC0415

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _atomic_write(path: Path, text: str):
    """Write ``text`` to ``path`` through a temporary file and a rename (no partial file; the
    temporary file is removed on failure; the file gets the usual ``0o666 & ~umask``)."""
    from ..io import current_umask  # noqa: PLC0415

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.tmp-", dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise _fail(ConfigError(f"cannot write {path}: {exc.strerror or exc}")) from None


@app.command()
def evaluate(
    model: _ModelArg,
    data: _DataOpt = None,
    split: _SplitOpt = SplitPart.all,
    target: _TargetOpt = None,
    task: _TaskOpt = None,
    data_dir: _DirOpt = None,
    n_samples: _NOpt = None,
    noise: _NoiseOpt = None,
    n_features: _NfOpt = None,
    seed: _SeedOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
):
    """Evaluate a saved model on data (accuracy and log-loss, or R^2 and RMSE)."""
    from .experiment import metrics_for  # noqa: PLC0415

    try:
        est, X, y = _load_eval_data(
            model, data, target, task, data_dir, n_samples, noise, n_features, seed, split
        )
        if hasattr(est, "classes_"):
            import numpy as np  # noqa: PLC0415

            unseen = set(np.unique(y).tolist()) - set(est.classes_.tolist())
            if unseen:
                raise DataError(f"labels not seen in training: {sorted(map(str, unseen))[:5]}")
        m = {"n_samples": int(X.shape[0]), **metrics_for(est, X, y)}
    except (BoostNetError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(m))
        return
    _print_pairs(
        f"{model} on {data or 'the run data'} ({split.value})", [(k, _fmt(v)) for k, v in m.items()]
    )


# ---- export --------------------------------------------------------------------------------------
class ExportFormat(str, Enum):
    sklearn = "sklearn"
    onnx = "onnx"


@app.command()
def export(
    model: _ModelArg,
    out_file: Annotated[
        Path,
        typer.Option(
            "--out", help="File to write (an existing file is replaced, never the model itself)."
        ),
    ],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="sklearn: a pickled Pipeline(StandardScaler, MLP) on raw features; onnx: the "
            'same pipeline as ONNX, float32 (pip install "boostnet\\[onnx]").',
        ),
    ] = ExportFormat.sklearn,
):
    """Export a saved model (with its standardisation) as a scikit-learn MLP pipeline or ONNX."""
    from ..export import export_model  # noqa: PLC0415
    from ..io import load_bundle  # noqa: PLC0415

    try:
        src = _model_path(model)
        est, extra = load_bundle(src)
        if out_file.is_dir():
            raise ConfigError(f"--out {out_file} is a directory; give a file name")
        if out_file.exists() and out_file.resolve() == src.resolve():
            raise ConfigError(f"--out {out_file} is the model file itself; choose another name")
        report = export_model(est, out_file, _val(fmt), preprocessing=extra.get("preprocessing"))
    except (BoostNetError, ValueError) as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(DataError(f"cannot write {out_file}: {exc}")) from None
    check = (
        f"checked on {report.n_checked} random inputs: largest relative difference to boostnet "
        f"{report.max_rel_diff:.2g}"
        if report.max_rel_diff is not None
        else "not checked: onnxruntime is not installed"
    )
    err.print(
        f"wrote {report.what} with {report.n_units} {report.activation} units to {report.path} "
        f"({check})",
        highlight=False,
        soft_wrap=True,
    )


# ---- compare -------------------------------------------------------------------------------------
@app.command()
def compare(
    ctx: typer.Context,
    datasets: Annotated[str, typer.Option(help="Comma-separated data set names or paths.")] = (
        "digits,breast-cancer,wine"
    ),
    methods: Annotated[str, typer.Option(help="Comma-separated methods (see --list-methods).")] = (
        "boostnet,mlp,random-features-l1,hgb"
    ),
    seeds: Annotated[int, typer.Option(help="Seeds 0..N-1 (split and training).", min=1)] = 3,
    cv: Annotated[
        int | None, typer.Option(help="K-fold cross-validation instead of one split.", min=2)
    ] = None,
    test_size: Annotated[float, typer.Option(help="Held-out share of the single split.")] = 0.25,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/compare-<timestamp>).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Parallel runs (joblib processes).", min=1)] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://127.0.0.1:8786.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file (the command line wins).")] = None,
    resume: Annotated[bool, typer.Option(help="Skip runs already in the output folder.")] = False,
    report: Annotated[bool, typer.Option(help="Write report.md with PNG plots.")] = False,
    list_methods: Annotated[
        bool, typer.Option("--list-methods", help="List the methods and exit.")
    ] = False,
):
    """Compare boostnet with baselines: one row per (dataset, method, seed, fold)."""
    from . import compare as cmp  # noqa: PLC0415

    if list_methods:
        table = Table(title="methods")
        table.add_column("name")
        table.add_column("what")
        for k, v in cmp.METHODS.items():
            table.add_row(k, v)
        out.print(table)
        return
    values = {
        "datasets": datasets,
        "methods": methods,
        "seeds": seeds,
        "cv": cv,
        "test_size": test_size,
    }
    try:
        merged, given = _merge(ctx, config, values)
        if "method" in merged and "methods" not in given:
            merged["methods"] = []  # the file lists its methods as [[method]] tables only
        cfg = cmp.CompareConfig.from_mapping(merged)
        cfg.validate()
        target = out_dir or Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    except (BoostNetError, ValueError) as exc:
        raise _fail(exc) from None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        console=err,
        transient=False,
    )
    task_id = None

    def progress(done, total, row):
        nonlocal task_id
        if task_id is None:
            task_id = bar.add_task("runs", total=total, last="")
        status = row["status"] if row["status"] != "ok" else "ok"
        bar.update(
            task_id,
            completed=done,
            last=f"{row['dataset']} {row['method']} seed {row['seed']} fold "
            f"{row['fold']}: {status}",
        )

    try:
        with bar:
            res = cmp.compare(
                cfg,
                out=target,
                resume=resume,
                jobs=jobs,
                scheduler=scheduler,
                progress=progress,
                invocation=shlex.join(["boostnet", *sys.argv[1:]]),
            )
    except KeyboardInterrupt as exc:
        err.print(f"interrupted; finished rows are in {target / 'rows.csv'}")
        raise typer.Exit(exit_code(signum_of(exc))) from None
    except (BoostNetError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    _print_compare_table(cmp.summarize(res.rows))
    errors = [r for r in res.rows if r.get("status") == "error"]
    for r in errors[:5]:
        err.print(
            f"error row: {r['dataset']} {r['method']} seed {r['seed']}: {r['error']}",
            highlight=False,
        )
    if report:
        from .report import write_report  # noqa: PLC0415

        path = write_report(res.rows, target)
        out.print(f"report: {path}", highlight=False)
    out.print(f"rows: {target / 'rows.csv'}", highlight=False)
    if res.interrupted:
        err.print("interrupted; the finished rows are kept")
        raise typer.Exit(130)


def _print_compare_table(summary):
    table = Table(title="mean +- sd over seeds and folds (best per data set marked *)")
    for col in ("dataset", "method", "metric", "mean +- sd", "units", "fit s", "runs"):
        table.add_column(col, justify="left" if col in ("dataset", "method", "metric") else "right")
    for s in sorted(
        summary, key=lambda s: (s["dataset"], -(s["mean"] if s["mean"] == s["mean"] else -1e9))
    ):
        mark = " *" if s["best"] else ""
        val = "-" if s["mean"] != s["mean"] else f"{s['mean']:.4f} +- {s['sd']:.4f}{mark}"
        units = "-" if s["units"] != s["units"] else f"{s['units']:.0f}"
        runs = f"{s['runs']}" + (f" ({s['errors']} failed)" if s["errors"] else "")
        table.add_row(
            s["dataset"], s["method"], s["metric"], val, units, f"{s['fit_time_s']:.2f}", runs
        )
    out.print(table)


# ---- datasets / info -----------------------------------------------------------------------------
@app.command()
def datasets():
    """List the named data sets."""
    from .datasets import dataset_table  # noqa: PLC0415

    table = Table(title="named data sets (--data NAME); paths: CSV/TSV, .npz, svmlight, IDX folder")
    for col in ("name", "task", "samples", "features", "classes", "source"):
        table.add_column(
            col, justify="right" if col in ("samples", "features", "classes") else "left"
        )
    for row in dataset_table():
        table.add_row(
            *[_fmt(row[c]) for c in ("name", "task", "samples", "features", "classes", "source")]
        )
    out.print(table)


@app.command()
def info():
    """Versions and the compute devices found (and why the GPU path is unavailable, if it is)."""
    import platform  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import rich  # noqa: PLC0415, F401
    import scipy  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    from .._backend import gpu_status  # noqa: PLC0415
    from .bench import blas_hint, blas_libraries  # noqa: PLC0415

    rows = [
        ("boostnet", __version__),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("scikit-learn", sklearn.__version__),
        ("typer", getattr(typer, "__version__", "?")),
        ("matplotlib", matplotlib.__version__),
        ("platform", platform.platform()),
        ("CPU threads", str(os.cpu_count())),
    ]
    rows += [("BLAS", line) for line in blas_libraries()]
    hint = blas_hint()
    if hint:
        rows.append(("BLAS hint", hint))
    ok, what = gpu_status()
    rows.append(("GPU", what if ok else f"unavailable: {what}"))
    rows.append(
        ("default device", f"gpu from {AUTO_GPU_MIN_ROWS} training rows, else cpu" if ok else "cpu")
    )
    _print_pairs("boostnet info", rows, head="item", justify="left")


@app.command()
def bench(
    device: Annotated[Device, typer.Option(help="auto, cpu or gpu.")] = Device.cpu,
    n: Annotated[int, typer.Option("--n", help="Samples.", min=1)] = 60000,
    d: Annotated[int, typer.Option("--d", help="Features.", min=1)] = 784,
    m: Annotated[int, typer.Option("--m", help="Candidates in the pool.", min=1)] = 65536,
    k: Annotated[int, typer.Option("--k", help="Outputs (columns of G).", min=1)] = 10,
    activation: Annotated[Activation, typer.Option(help="Hidden-unit activation.")] = (
        Activation.relu
    ),
    repeat: Annotated[int, typer.Option(help="Timed repeats (median).", min=1)] = 5,
    dtype: Annotated[
        Dtype, typer.Option(help="Screening precision (GPU: float32 = TF32, float16 = FP16).")
    ] = Dtype.float32,
    cpt: Annotated[
        int | None,
        typer.Option(
            help="GPU epilogue: candidates per thread (1, 2 or 4; default from --k).", min=1, max=4
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Time one scoring step against the plain GEMM of the same shape (synthetic data).

    On a 2-core CPU the default (reference) shape takes minutes: pass a smaller --m.
    """
    from .bench import run_bench  # noqa: PLC0415

    try:
        res = run_bench(
            _val(device),
            n=n,
            d=d,
            m=m,
            k=k,
            activation=_val(activation),
            repeat=repeat,
            dtype=_val(dtype),
            cpt=cpt,
        )
    except (BoostNetError, ValueError, MemoryError) as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(res))
        return
    sh = res["shape"]
    rows = [
        ("shape (n, d, m, k)", f"{sh['n']}, {sh['d']}, {sh['m']}, {sh['k']}"),
        ("activation", res["activation"]),
        ("screen", res["screen"]),
    ]
    if res.get("cpt") is not None:
        rows.append(("epilogue candidates / thread", str(res["cpt"])))
    rows += [
        ("scoring step (median)", f"{res['scoring_s'] * 1e3:.2f} ms"),
        ("plain GEMM (median)", f"{res['gemm_s'] * 1e3:.2f} ms"),
        ("ratio scoring / GEMM", f"{res['ratio']:.3f}"),
        ("scoring rate", f"{res['tflops'] * 1e3:.1f} GFLOP/s"),
    ]
    _print_pairs(f"scoring bench on {res['device']} ({res['device_name']})", rows, head="item")


def main():
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
