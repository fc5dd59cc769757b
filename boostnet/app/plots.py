"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math

import numpy as np


def _plt():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def plot_objective(history, alpha, path):
    """Objective and certificate gap (best score - lambda) against the number of units.

    Parameters
    ----------
    history : list of StepRecord
    alpha : float
        lambda.
    path : path-like
        PNG file to write.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    units = [r.n_units for r in history]
    ax1.plot(units, [r.objective for r in history], ".-", label="objective")
    ax1.plot(units, [r.loss for r in history], ".-", alpha=0.6, label="loss")
    ax1.set_xlabel("hidden units")
    ax1.set_ylabel("value")
    ax1.set_title("objective = loss + lambda ||w||_1")
    ax1.legend()
    # the gap of a record is measured at the model before its step
    pts = [
        (r.n_units_before, r.best_score - alpha) for r in history if not math.isnan(r.best_score)
    ]
    if pts:
        u, g = zip(*pts, strict=True)
        g = np.asarray(g)
        ax2.semilogy(u, np.where(g > 0, g, np.nan), ".", label="best score - lambda > 0")
        neg = g <= 0
        if neg.any():
            ax2.semilogy(
                np.asarray(u)[neg],
                np.maximum(-g[neg], 1e-16),
                "x",
                color="green",
                label="certified (best score <= lambda)",
            )
        ax2.legend()
    ax2.set_xlabel("hidden units")
    ax2.set_ylabel("certificate gap")
    ax2.set_title(f"certificate gap (lambda = {alpha:.3g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_metric_curve(rows, metric_name, path):
    """Train and test metric against the number of units (rows from :class:`MetricCurve`)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    units = [r["n_units"] for r in rows]
    for key in ("train", "test", "validation"):
        if rows and key in rows[0]:
            ax.plot(units, [r[key] for r in rows], ".-", label=key)
    ax.set_xlabel("hidden units")
    ax.set_ylabel(metric_name)
    ax.set_title(f"{metric_name} vs units")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_decision_regions(est, X, y, path, resolution=300):
    """2-D classification: predicted regions, the training points, and each unit's hyperplane.

    Parameters
    ----------
    est : fitted BoostNetClassifier on 2 features
    X : ndarray, shape (n, 2)
        Points (in the coordinates the model was trained on).
    y : ndarray, shape (n,)
    """
    plt = _plt()
    pad = 0.1 * (X.max(axis=0) - X.min(axis=0) + 1e-9)
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    classes = est.classes_
    pred = np.searchsorted(classes, est.predict(grid)).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.contourf(gx, gy, pred, levels=np.arange(len(classes) + 1) - 0.5, cmap="Pastel1", alpha=0.8)
    yi = np.searchsorted(classes, y)
    ax.scatter(X[:, 0], X[:, 1], c=yi, cmap="Set1", s=12, edgecolors="k", linewidths=0.3)
    for (v1, v2), c in zip(est.hidden_weights_, est.hidden_bias_, strict=True):
        # the unit's hyperplane v1 x + v2 y + c = 0
        if abs(v2) > abs(v1):
            xs = np.array([lo[0], hi[0]])
            ax.plot(xs, -(v1 * xs + c) / v2, "k-", lw=0.6, alpha=0.5)
        elif abs(v1) > 0:
            ys = np.array([lo[1], hi[1]])
            ax.plot(-(v2 * ys + c) / v1, ys, "k-", lw=0.6, alpha=0.5)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("feature 1 (as trained: standardised by default)")
    ax.set_ylabel("feature 2")
    ax.set_title(f"decision regions and the {est.n_units_} units' hyperplanes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_path(rows, chosen_alpha, metric_name, path):
    """Metric (validation, and test when present) and units against lambda along a path.

    Parameters
    ----------
    rows : list of dict
        One per point, with ``alpha``, ``n_units`` and any of ``val_score``, ``test``, ``train``.
    chosen_alpha : float or None
        Marked with a vertical line.
    metric_name : str
    path : path-like
        PNG file to write.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    alphas = [r["alpha"] for r in rows]
    for key, label, style in (
        ("train", "train", ".:"),
        ("val_score", "validation", "o-"),
        ("test", "test", ".--"),
    ):
        vals = [r.get(key) for r in rows]
        if any(v is not None for v in vals):
            ax.plot(alphas, [np.nan if v is None else v for v in vals], style, label=label)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("lambda (decreasing)")
    ax.set_ylabel(metric_name)
    ax2 = ax.twinx()
    ax2.plot(alphas, [r["n_units"] for r in rows], "s-", color="gray", alpha=0.5, label="units")
    ax2.set_ylabel("hidden units")
    if chosen_alpha is not None:
        ax.axvline(chosen_alpha, color="red", lw=1, label=f"chosen lambda = {chosen_alpha:.3g}")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    ax.set_title("regularisation path")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
