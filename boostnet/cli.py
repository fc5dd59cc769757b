"""The ``boostnet`` command line: a thin typed layer over the library.

It parses options, calls the library, and renders with rich. Library errors
(:class:`~boostnet.exceptions.BoostNetError`) become one line on stderr and exit code 1 (data) or
2 (usage); no traceback.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .estimators import DEFAULT_ALPHA_RATIO
from .exceptions import BoostNetError, ConfigError

app = typer.Typer(
    name="boostnet",
    help="Grow single-hidden-layer networks by greedy hidden-unit selection with an L1 certificate.",
    no_args_is_help=True,
    add_completion=True,
)
err = Console(stderr=True)
out = Console()


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
    """boostnet command line."""


def _fail(exc: Exception) -> typer.Exit:
    """One line on stderr; exit 2 for usage errors (bad option values), 1 for data errors."""
    from sklearn.utils._param_validation import InvalidParameterError  # noqa: PLC0415

    code = 2 if isinstance(exc, (ConfigError, InvalidParameterError)) else 1
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def train(
    data: Annotated[str, typer.Option(help="Data set name.")] = "digits",
    test_size: Annotated[float, typer.Option(help="Share of samples held out for testing.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the training.")] = 0,
    alpha_ratio: Annotated[
        float, typer.Option(help="lambda as a fraction of lambda_max.")
    ] = DEFAULT_ALPHA_RATIO,
    max_units: Annotated[int, typer.Option(help="Largest number of hidden units.")] = 1000,
    activation: Annotated[str, typer.Option(help="relu, sigmoid, tanh or sign.")] = "relu",
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
):
    """Train a network on a data set and print its test metric, units, stop reason and time."""
    from .experiment import run_train  # noqa: PLC0415  (keeps `boostnet --help` fast)

    try:
        metrics = run_train(
            data=data,
            test_size=test_size,
            seed=seed,
            params={
                "alpha_ratio": alpha_ratio,
                "max_units": max_units,
                "activation": activation,
                "device": device,
            },
        )
    except (BoostNetError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table(title=f"boostnet on {data}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    out.print(table)


def main():
    """Console-script entry point."""
    app()
