"""``boostnet compare --report``: a Markdown report with PNG plots of a comparison's rows.

:func:`write_report` takes the tidy rows of :func:`boostnet.compare.compare` (typed, or read back
from ``rows.csv`` with every value a string) and writes into a folder:

* ``report.md``: the summary table (mean +- sd of the main metric per data set and method, best
  per data set in bold), the plots, the failed runs and the number of rows;
* ``metric_vs_units.png``: main metric against hidden units (methods with units only);
* ``metric_vs_fit_time.png``: main metric against fit time (log scale);
* ``metric_bars.png``: mean +- sd of the main metric per method, one panel per data set.

The main metric is accuracy for classification and r2 for regression (higher is better for both).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .compare import FLOAT_COLUMNS, INT_COLUMNS

__all__ = ["write_report"]

REPORT_NAME = "report.md"
UNITS_PNG = "metric_vs_units.png"
TIME_PNG = "metric_vs_fit_time.png"
BARS_PNG = "metric_bars.png"

_MIN_TIME = 1e-4  # fit times are clipped to this for the log axis


# ---- rows ----------------------------------------------------------------------------------------
def _num(v) -> float | None:
    """A finite float from a number or a string; None for None, '', non-numbers and non-finite."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        v = v.strip()
        if not v:
            return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _text(v) -> str | None:
    """A stripped string; None for None and ''."""
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def _normalize(rows) -> list[dict]:
    """Copies of the rows with numbers as int / float (None where missing) and strings stripped.

    Parameters
    ----------
    rows : iterable of dict
        Rows as :func:`boostnet.compare.compare` makes them, or as :func:`csv.DictReader` /
        :func:`boostnet.compare.read_rows` read them back (strings, '' or None for missing).

    Returns
    -------
    list of dict
        Each with at least the keys ``dataset``, ``method``, ``status``, ``task``, ``error`` and
        the numeric columns of :data:`boostnet.compare.COLUMNS`.
    """
    out = []
    for r in rows:
        r = dict(r)
        for k in ("dataset", "method", "status", "task", "error", "stop_reason"):
            r[k] = _text(r.get(k))
        r["dataset"] = r["dataset"] or "?"
        r["method"] = r["method"] or "?"
        for k in INT_COLUMNS:
            x = _num(r.get(k))
            r[k] = None if x is None else int(x)
        for k in FLOAT_COLUMNS:
            r[k] = _num(r.get(k))
        out.append(r)
    # a data set's task from its successful rows (error rows may lack it)
    tasks = {}
    for r in out:
        if r["status"] == "ok" and r["task"]:
            tasks.setdefault(r["dataset"], r["task"])
    for r in out:
        if not r["task"]:
            r["task"] = tasks.get(r["dataset"])
    return out


def _metric_name(task: str | None) -> str:
    """The main metric of a task: accuracy for classification, r2 otherwise."""
    return "accuracy" if task == "classification" else "r2"


def _points(rows, dataset, method, xkey):
    """(x, metric) of the successful rows of one data set and method where both are known."""
    pts = []
    for r in rows:
        if r["dataset"] != dataset or r["method"] != method or r["status"] != "ok":
            continue
        y = r.get(_metric_name(r["task"]))
        x = r.get(xkey)
        if x is not None and y is not None:
            pts.append((x, y))
    return pts


def _ordered(values) -> list:
    """Distinct values in order of first appearance."""
    seen = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


# ---- plots ---------------------------------------------------------------------------------------
def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _colors(methods) -> dict:
    """One colour per method, the same in every plot."""
    from matplotlib import colormaps  # noqa: PLC0415

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _grid(plt, n_panels, width=4.6, height=3.6):
    """A figure with one axes per panel (at most 3 per row); the unused axes hidden."""
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _save(plt, fig, path: Path) -> Path:
    """Write a figure to ``path`` as PNG through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path


def _scatter_plot(rows, datasets, methods, colors, xkey, xlabel, path, logx=False):
    """Main metric against ``xkey``, one panel per data set, one colour per method.

    Returns the path written, or None when no row has both values.
    """
    panels = [d for d in datasets if any(_points(rows, d, m, xkey) for m in methods)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = _grid(plt, len(panels))
    for ax, d in zip(axes, panels, strict=True):
        task = next((r["task"] for r in rows if r["dataset"] == d and r["task"]), None)
        for m in methods:
            pts = _points(rows, d, m, xkey)
            if not pts:
                continue
            x = [max(p[0], _MIN_TIME) if logx else p[0] for p in pts]
            ax.scatter(x, [p[1] for p in pts], color=colors[m], label=m, alpha=0.8, s=28)
        if logx:
            ax.set_xscale("log")
        ax.set_title(d)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_metric_name(task))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return _save(plt, fig, path)


def _bars_plot(summary, datasets, colors, path):
    """Mean +- sd of the main metric per method, one panel per data set.

    Returns the path written, or None when no group has a mean.
    """
    panels = [d for d in datasets if any(s["dataset"] == d for s in summary)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = _grid(plt, len(panels), width=max(4.6, 1.0 + 0.9 * len(colors)))
    for ax, d in zip(axes, panels, strict=True):
        group = [s for s in summary if s["dataset"] == d]
        xs = range(len(group))
        means = [s["mean"] for s in group]
        sds = [s["sd"] for s in group]
        ax.bar(
            xs,
            means,
            yerr=sds,
            capsize=4,
            color=[colors[s["method"]] for s in group],
            edgecolor=["black" if s["best"] else "none" for s in group],
            linewidth=2,
        )
        ax.set_xticks(list(xs))
        ax.set_xticklabels([s["method"] for s in group], rotation=30, ha="right")
        lo = min(m - s for m, s in zip(means, sds, strict=True))
        hi = max(m + s for m, s in zip(means, sds, strict=True))
        pad = max(0.15 * (hi - lo), 0.01)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(d)
        ax.set_ylabel(f"{group[0]['metric']} (mean +- sd)")
        ax.grid(True, axis="y", alpha=0.3)
    return _save(plt, fig, path)


# ---- markdown ------------------------------------------------------------------------------------
def _cell(v) -> str:
    """Text for a Markdown table cell (pipes escaped, one line)."""
    return str(v).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(v) -> str:
    """Inline code for a Markdown table cell."""
    return "`" + _cell(v).replace("`", "'") + "`"


def _fmt(x, spec) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _summary(rows, datasets, methods) -> list[dict]:
    """:func:`boostnet.compare.summarize` in data set then method order, metrics fixed up.

    A group whose runs all failed gets its data set's metric (summarize falls back to r2).
    """
    from .compare import summarize  # noqa: PLC0415

    summary = summarize(rows)
    tasks = {r["dataset"]: r["task"] for r in rows if r["task"]}
    for s in summary:
        s["metric"] = _metric_name(tasks.get(s["dataset"]))
    summary.sort(key=lambda s: (datasets.index(s["dataset"]), methods.index(s["method"])))
    return summary


def _markdown(rows, summary, methods, images, no_units) -> str:
    n_ok = sum(r["status"] == "ok" for r in rows)
    failed = [r for r in rows if r["status"] != "ok"]
    datasets = _ordered(r["dataset"] for r in rows)
    lines = ["# boostnet compare report", ""]
    lines += [
        f"{len(rows)} rows: {n_ok} ok, {len(failed)} failed, over {len(datasets)} data set(s) "
        f"and {len(methods)} method(s).",
        "",
    ]
    env = next((r for r in rows if r.get("boostnet")), None)
    if env is not None:
        parts = [
            f"{k.replace('_', '-')} {env[k]}"
            for k in ("boostnet", "numpy", "scikit_learn", "python")
            if env.get(k)
        ]
        host = f" on {env['host']}" if env.get("host") else ""
        lines += [f"Environment: {', '.join(parts)}{host}.", ""]
    lines += [
        "## Summary",
        "",
        "Main metric: accuracy for classification, r2 for regression (higher is better); mean +- "
        "sd over seeds and folds of the successful runs (no sd for a single run); units and fit "
        "time are means. The best method per data set is in **bold**.",
        "",
        "| dataset | method | metric | mean +- sd | units | fit s | runs | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        if math.isnan(s["mean"]):
            value = "-"
        elif s["runs"] - s["errors"] > 1:
            value = f"{s['mean']:.4f} +- {s['sd']:.4f}"
        else:  # one successful run: no sd
            value = f"{s['mean']:.4f}"
        method = _cell(s["method"])
        if s["best"]:
            value, method = f"**{value}**", f"**{method}**"
        lines.append(
            f"| {_cell(s['dataset'])} | {method} | {s['metric']} | {value} | "
            f"{_fmt(s['units'], '.1f')} | {_fmt(s['fit_time_s'], '.2f')} | {s['runs']} | "
            f"{s['errors']} |"
        )
    lines += ["", "## Plots", ""]
    plots = (
        (UNITS_PNG, "metric vs units", "Main metric against hidden units, per run"),
        (TIME_PNG, "metric vs fit time", "Main metric against fit time (log scale), per run"),
        (
            BARS_PNG,
            "mean +- sd per method",
            "Mean +- sd of the main metric (best bar outlined; the y axis is zoomed to the "
            "values, it does not start at 0)",
        ),
    )
    for name, alt, caption in plots:
        if name in images:
            lines += [f"{caption}:", "", f"![{alt}]({name})", ""]
        else:
            lines += [f"{caption}: no successful run has the values to plot.", ""]
        if name == UNITS_PNG and no_units:
            lines += [
                "Methods without units, left out of this plot: "
                + ", ".join(_cell(m) for m in no_units)
                + ".",
                "",
            ]
    lines += ["## Errors", ""]
    if failed:
        lines += ["| dataset | method | seed | fold | error |", "|---|---|---:|---:|---|"]
        for r in failed:
            lines.append(
                f"| {_cell(r['dataset'])} | {_cell(r['method'])} | {_fmt(r['seed'], 'd')} | "
                f"{_fmt(r['fold'], 'd')} | {_code(r['error'] or r['status'] or 'no status')} |"
            )
    else:
        lines.append("No failed runs.")
    lines.append("")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---- entry point ---------------------------------------------------------------------------------
def write_report(rows, out_dir) -> Path:
    """Write ``report.md`` and its PNG plots for the rows of a comparison.

    Parameters
    ----------
    rows : iterable of dict
        Tidy rows with the keys of :data:`boostnet.compare.COLUMNS`, as
        :func:`boostnet.compare.compare` returns them or as :func:`boostnet.compare.read_rows`
        reads them back from ``rows.csv`` (numbers as strings; None or '' for missing values).
    out_dir : path-like
        Folder to write into (created if needed). Existing report files are replaced.

    Returns
    -------
    pathlib.Path
        The path of ``report.md``.

    Notes
    -----
    The plots are ``metric_vs_units.png`` (main metric against hidden units; methods with no units,
    such as hgb and linear, are left out and named in the report), ``metric_vs_fit_time.png``
    (against fit time, log scale) and ``metric_bars.png`` (mean +- sd per method). A plot with
    nothing to show is not written and the report says so. Each file is written to a temporary
    name and then renamed, so a reader never sees a half-written file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _normalize(rows)
    datasets = _ordered(r["dataset"] for r in rows)
    methods = _ordered(r["method"] for r in rows)
    colors = _colors(methods)
    summary = _summary(rows, datasets, methods) if rows else []

    ok_methods = _ordered(r["method"] for r in rows if r["status"] == "ok")
    with_units = {r["method"] for r in rows if r["status"] == "ok" and r["units"] is not None}
    no_units = [m for m in ok_methods if m not in with_units]

    written = (
        _scatter_plot(
            rows, datasets, [m for m in methods if m in with_units], colors, "units",
            "hidden units", out_dir / UNITS_PNG,
        ),
        _scatter_plot(
            rows, datasets, methods, colors, "fit_time_s", "fit time (s, log scale)",
            out_dir / TIME_PNG, logx=True,
        ),
        _bars_plot(
            [s for s in summary if not math.isnan(s["mean"])], datasets, colors,
            out_dir / BARS_PNG,
        ),
    )  # fmt: skip
    images = [p.name for p in written if p is not None]
    return _write_text(out_dir / REPORT_NAME, _markdown(rows, summary, methods, images, no_units))
