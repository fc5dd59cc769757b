"""Tidy result rows shared by the benchmark scripts: one dict per run (benchopt's layout), the
provenance every row carries, and the CSV file they are written to.

A results file holds rows ``r_1, ..., r_N``; its columns are the union of the rows' keys in the
order they first appear, so a row that lacks a column (a regression set has no accuracy) leaves
that cell empty instead of failing the whole file. The file is replaced atomically: a run that
fails while writing leaves the previous results as they were.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import sklearn

import boostnet
from boostnet.io import atomic_write

try:  # the scripts also run against older boostnet versions (a comparison's "before" column)
    from boostnet.app.bench import blas_libraries
except ImportError:

    def blas_libraries():
        return []


try:
    from boostnet._threads import n_workers
    from boostnet.app.bench import cpu_name
except ImportError:

    def cpu_name():
        return platform.processor() or platform.machine()

    def n_workers():
        return os.cpu_count() or 1


def provenance(device: str = "cpu") -> dict:
    """What a figure depends on beyond its seed: versions, machine, CPU, BLAS kernels, device,
    date.

    The BLAS kernels decide absolute times (OpenBLAS on an unknown CPU falls back to AVX2): compare
    seconds only between rows with the same ``blas`` and ``cpu``. Ratios to a baseline fitted in
    the same process move with the CPU too (experiments/README.md, section 8, twenty-seventh part:
    the same code and trajectories, c26's ratio 3.29 on one 2-core VM, 2.48 on another).
    """
    return {
        "boostnet_version": boostnet.__version__,
        "commit": source_commit(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu": cpu_name(),
        "cores": n_workers(),  # the cores this process may run on
        "device": device,
        "blas": "; ".join(blas_libraries()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def source_commit() -> str:
    """The git commit of the boostnet source the figures came from (``git describe --always
    --dirty``: a ``-dirty`` suffix where the checkout has uncommitted changes), or ``""`` where
    boostnet is not imported from a git checkout (an installed wheel)."""
    where = Path(boostnet.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(where), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _cell(text: str):
    """A CSV cell as the value it was written from: int, float, None (empty) or the string."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rows(path) -> list[dict]:
    """The rows of a results file written by :func:`write_rows`, numbers parsed back (an empty
    cell is None). Raises ``ValueError`` naming the file when it is missing, not a CSV with a
    header, or holds no row."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            raw = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read results file {path}: {exc}") from None
    if not raw or any(None in row for row in raw):  # no data row, or more cells than the header
        raise ValueError(f"results file {path} holds no rows under a header")
    return [{k: _cell(v or "") for k, v in row.items()} for row in raw]


def write_rows(path, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts) to the CSV file ``path``, atomically; returns ``path``.

    Raises ``ValueError`` when there is no row (an empty results file would hide a failed run).
    """
    if not rows:
        raise ValueError(f"no results to write to {path}")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    data = buf.getvalue().encode()
    return atomic_write(path, lambda fh: fh.write(data), suffix=".csv")
