"""Fit time against the MLP a user would pick instead: boostnet and ``MLP(100)`` on the same split.

For every data set: a 75/25 split (stratified for classification; Fashion-MNIST: 10 000 training rows
and its official 10 000-row test set), standardised on the training part; then boostnet with its
defaults (plus ``--params``) and scikit-learn's ``MLPClassifier((100,), max_iter=1000,
random_state=0)`` (``MLPRegressor`` for regression) fitted in the same process. Printed per set:
accuracy or R^2, units, steps, stop reason, both fit times and their ratio; then the geometric mean
of the ratios, and issue 11's targets, each marked met or missed with its figures to three
decimals (a ratio of 3.004 prints as 3.00 in the table, and misses "no set above 3x"). Writes
``speed.csv`` (one tidy row per set, with provenance) and ``speed.png`` (fit time against the
metric, both methods) to ``--out``.

    python experiments/speed_suite.py                       # every set (~5-10 min on 2 cores)
    python experiments/speed_suite.py --sets digits wine    # some
    python experiments/speed_suite.py --params '{"units_per_step": 1}' --out runs/speed-ups1
    python experiments/speed_suite.py --ablation units_per_step=1,4,8,16 --sets digits c11

``--ablation NAME=V1,V2,...`` fits boostnet once per value (the MLP once per set) and also prints
the final objective, so settings can be compared at equal data (e.g. units per step: steps, units
and objective at the certificate).

A dotted NAME (in ``--ablation`` or ``--params``) is a module constant of boostnet, set for each
boostnet fit and restored after it: the loop's internal choices compared seed by seed in one
process (the variants of a seed are fitted back to back), e.g.

    python experiments/speed_suite.py --sets digits c11 --seeds 0,1,2 \
        --ablation boostnet._greedy._WORKING_SET=64,0

Names joined by ``+`` take each value together (two switches of one change, say):

    python experiments/speed_suite.py --sets c26 fashion-10k --params '{"device": "gpu"}' \
        --ablation boostnet.refit._DEVICE_BATCHED+boostnet.refine._DEVICE_NO_SYNC=false,true

``--seeds 0,1,2`` fits both methods once per seed (``random_state``; the split stays fixed) and
prints the means (the ratio is mean time over mean time) and the range of the seeds' own ratios;
the CSV keeps one row per seed. One boostnet fit's time moves by 10-30 % with its trajectory (which
units a pool happens to find; c26's seeds 2.8-5.2x), so a single seed cannot separate changes
smaller than that. With ``--ablation`` the tables are followed by each variant paired with the
first, seed by seed: the mean of the time quotients and their range, on how many seeds it was
faster, the certified objective's mean relative change and the steps:

    python experiments/speed_suite.py --sets digits c11 --seeds 0,1,2,3 --ablation slide_steps=1,3

The same code's ratios also move from one run to the next on a shared host (the MLP's clock as
much as boostnet's: c26's MLP took 37-58 s over five runs). ``--pool`` fits nothing: it reads
earlier runs' ``speed.csv`` files, checks that they share the CPU, names the source's commits
they ran (the ``commit`` column), and prints the table and the targets over all their fits (each
set's ratio is its mean time over all of them against the MLP's), then each run's own ratio per
set:

    python experiments/speed_suite.py --pool runs/a/speed.csv runs/b/speed.csv runs/c/speed.csv
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import sys
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _rows import provenance, read_rows, write_rows  # noqa: E402
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
    make_friedman1,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

from boostnet import BoostNetClassifier, BoostNetRegressor  # noqa: E402
from boostnet.app.datasets import load_data  # noqa: E402

try:  # the script also runs against older boostnet versions (a comparison's "before" column)
    from boostnet.app.bench import blas_hint
except ImportError:

    def blas_hint():
        return None


def _c11():
    return make_classification(
        n_samples=1000, n_features=10, n_informative=8, n_redundant=0, n_classes=11,
        n_clusters_per_class=1, class_sep=1.5, random_state=0,
    )  # fmt: skip


def _c2_noisy():
    return make_classification(
        n_samples=700, n_features=8, n_informative=5, flip_y=0.15, random_state=0
    )


def _c26():
    return make_classification(
        n_samples=20000, n_features=16, n_informative=12, n_redundant=2, n_classes=26,
        n_clusters_per_class=1, class_sep=1.5, random_state=0,
    )  # fmt: skip


def _fashion():
    ds = load_data("fashion-mnist")
    rng = np.random.default_rng(0)
    idx = rng.choice(ds.X.shape[0], 10000, replace=False)
    return ds.X[idx], ds.y[idx], ds.X_test, ds.y_test


#: name -> (task, loader). A loader returns (X, y) or (X_train, y_train, X_test, y_test).
SETS = {
    "digits": ("classification", lambda: load_digits(return_X_y=True)),
    "wine": ("classification", lambda: load_wine(return_X_y=True)),
    "breast-cancer": ("classification", lambda: load_breast_cancer(return_X_y=True)),
    "iris": ("classification", lambda: load_iris(return_X_y=True)),
    "diabetes": ("regression", lambda: load_diabetes(return_X_y=True)),
    "friedman1": (
        "regression",
        lambda: make_friedman1(n_samples=1000, noise=1.0, random_state=0),
    ),
    "c11": ("classification", _c11),
    "c2-noisy": ("classification", _c2_noisy),
    "c26": ("classification", _c26),
    "fashion-10k": ("classification", _fashion),
}


def split(name):
    task, loader = SETS[name]
    data = loader()
    if len(data) == 4:
        Xtr, ytr, Xte, yte = data
    else:
        X, y = data
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=0.25, random_state=0,
            stratify=y if task == "classification" else None,
        )  # fmt: skip
    Xtr, Xte = np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64)
    mean, scale = Xtr.mean(axis=0), Xtr.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return task, (Xtr - mean) / scale, ytr, (Xte - mean) / scale, yte


#: Rows of a set's training part that :func:`warm_up` fits, and the time it may take at most.
_WARM_ROWS, _WARM_S = 500, 20.0


def warm_up(name, params, seed=0):
    """An untimed boostnet fit (``random_state=seed``) on the first ``_WARM_ROWS`` training rows
    of set ``name``, to its certificate (at most ``_WARM_S`` seconds), before the set's timed fits:
    numba compiles a kernel at its first call where its cache is cold (a fresh checkout), and the
    kernels a fit calls depend on its task, its outputs and its path (one seed's fit may take
    Newton steps on a subset of its units where another's does not). Without it, in a fresh git
    worktree, digits' first fit took 2.21 s instead of 0.85-1.00, breast-cancer's 0.46 s instead
    of 0.10-0.12; warmed up with seed 0 only, iris's seed 1 still took 0.24 s instead of 0.04
    (compiling the Newton step's gathers). c26's warm-up takes ~4 s, Fashion-MNIST's ~3 s."""
    task, Xtr, ytr, _, _ = split(name)
    capped = {**params, "max_time": min(_WARM_S, params.get("max_time") or _WARM_S)}
    fit_boostnet(task, capped, seed, Xtr[:_WARM_ROWS], ytr[:_WARM_ROWS])


def fit_boostnet(task, params, seed, X, y):
    """boostnet fitted on ``(X, y)`` with ``params`` (a dotted name: a module constant, set for
    this fit only) and ``random_state=seed``: ``(estimator, seconds)``."""
    est_params = {k: v for k, v in params.items() if "." not in k}
    est = (BoostNetClassifier if task == "classification" else BoostNetRegressor)(
        random_state=seed, **est_params
    )
    with switched({k: v for k, v in params.items() if "." in k}):
        return est, fit_timed(est, X, y)


def fit_timed(est, X, y):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return time.perf_counter() - t0


def run_set(name, params, mlp_cache, seed=0):
    task, Xtr, ytr, Xte, yte = split(name)
    if (name, seed) not in mlp_cache:
        mlp = (MLPClassifier if task == "classification" else MLPRegressor)(
            hidden_layer_sizes=(100,), max_iter=1000, random_state=seed
        )
        t_mlp = fit_timed(mlp, Xtr, ytr)
        mlp_cache[name, seed] = (float(mlp.score(Xte, yte)), t_mlp)
    mlp_score, t_mlp = mlp_cache[name, seed]
    est, t_bn = fit_boostnet(task, params, seed, Xtr, ytr)
    # summed here rather than with boostnet._greedy.phase_times so that the script also runs
    # against older boostnet versions (the "before" column of a comparison)
    phases = {k: 0.0 for k in ("sample", "score", "refine", "slide", "refit")}
    for r in est.history_:
        for k in phases:
            phases[k] += getattr(r, f"time_{k}", 0.0)
    last = est.history_[-1] if est.history_ else None
    return {
        "data": name,
        "seed": seed,
        "task": task,
        "metric": "accuracy" if task == "classification" else "r2",
        "n_train": int(Xtr.shape[0]),
        "n_features": int(Xtr.shape[1]),
        "n_outputs": int(est.coef_.shape[1]),
        "params": json.dumps(params, sort_keys=True),
        "boostnet": float(est.score(Xte, yte)),
        "mlp": mlp_score,
        "units": int(est.n_units_),
        "steps": int(est.n_iter_),
        "stop": est.stop_reason_,
        "device": est.device_,
        "objective": float(last.objective) if last is not None else math.nan,
        "boostnet_s": t_bn,
        "mlp_s": t_mlp,
        "ratio": t_bn / t_mlp,
        **{f"{k}_s": v for k, v in phases.items()},
    }


def _switch_target(name: str):
    """``(module, attribute)`` of a dotted switch ``boostnet.<module>.<NAME>``; ValueError if there
    is no such module constant."""
    mod_name, _, attr = name.rpartition(".")
    if not mod_name.startswith("boostnet"):
        raise ValueError(f"a switch names a boostnet module constant, got {name!r}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError:
        raise ValueError(f"no module {mod_name!r} (switch {name!r})") from None
    if not hasattr(module, attr):
        raise ValueError(f"{mod_name} has no {attr!r} (switch {name!r})")
    return module, attr


@contextlib.contextmanager
def switched(switches: dict):
    """Set module constants (``{"boostnet._greedy._WORKING_SET": 0}``) for one fit, then restore
    them: A/B pairs of the loop's internal choices, fitted alternately in one process."""
    saved = []
    try:
        for name, value in switches.items():
            module, attr = _switch_target(name)
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, value)
        yield
    finally:
        for module, attr, value in reversed(saved):
            setattr(module, attr, value)


def summarise(rows):
    """One row per (data, params): the means over the seeds (the ratio of the mean times), the
    stop reason shared by every seed or ``"k/n certificate"``."""
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["params"]), []).append(r)
    out = []
    for rs in groups.values():
        if len(rs) == 1:
            out.append(rs[0])
            continue
        stops = {r["stop"] for r in rs}
        n_cert = sum(r["stop"] == "certificate" for r in rs)
        mean = {
            k: float(np.mean([r[k] for r in rs]))
            for k in ("boostnet", "mlp", "objective", "boostnet_s", "mlp_s")
        }
        out.append(
            {
                **rs[0],
                **mean,
                "units": round(float(np.mean([r["units"] for r in rs]))),
                "steps": round(float(np.mean([r["steps"] for r in rs]))),
                "stop": stops.pop() if len(stops) == 1 else f"{n_cert}/{len(rs)} certificate",
                "ratio": mean["boostnet_s"] / mean["mlp_s"],
                "ratio_lo": min(r["ratio"] for r in rs),
                "ratio_hi": max(r["ratio"] for r in rs),
                "seeds": len({r["seed"] for r in rs}),
                "runs": len({r.get("run") for r in rs}),  # pooled runs (--pool); else 1
                "fits": len(rs),
            }
        )
    return out


def paired(rows, variants):
    """The ablation's variants against the first, set by set, seed by seed (the same seed's fits
    ran back to back): one dict per (data, variant) with the mean of the per-seed time quotients
    (variant / first), on how many seeds the variant was faster, the mean relative change of the
    certified objective, and the mean steps of both. A change smaller than the seeds' spread of
    these quotients is not a speed change (module doc)."""
    keys = [json.dumps(p, sort_keys=True) for p in variants]
    by = {(r["data"], r["params"], r["seed"]): r for r in rows}
    out = []
    for data in dict.fromkeys(r["data"] for r in rows):
        for key in keys[1:]:
            pairs = [
                (by[data, keys[0], seed], r)
                for (d, k, seed), r in by.items()
                if d == data and k == key and (data, keys[0], seed) in by
            ]
            if not pairs:
                continue
            q = [b["boostnet_s"] / a["boostnet_s"] for a, b in pairs]
            out.append(
                {
                    "data": data,
                    "params": key,
                    "time": float(np.mean(q)),
                    "time_lo": min(q),
                    "time_hi": max(q),
                    "faster": sum(x < 1.0 for x in q),
                    "seeds": len(pairs),
                    "objective": float(
                        np.mean(
                            [
                                (b["objective"] - a["objective"]) / abs(a["objective"])
                                for a, b in pairs
                            ]
                        )
                    ),  # fmt: skip
                    "steps": (
                        float(np.mean([a["steps"] for a, _ in pairs])),
                        float(np.mean([b["steps"] for _, b in pairs])),
                    ),
                }
            )
    return out


def print_paired(pairs, first: str):
    """The lines of :func:`paired`, after the tables."""
    print(f"\npaired against {first} (same seed, fitted back to back):")
    for c in pairs:
        print(
            f"  {c['data']:<14} {c['params']}: time x{c['time']:.2f} "
            f"(x{c['time_lo']:.2f}-x{c['time_hi']:.2f}; faster on {c['faster']}/{c['seeds']} "
            f"seeds), objective {100 * c['objective']:+.3f} %, steps {c['steps'][0]:.0f} -> "
            f"{c['steps'][1]:.0f}"
        )


def print_table(rows):
    spread = any("ratio_lo" in r for r in rows)  # several seeds: their ratios' range too
    head = (
        f"| {'data':<14}| {'metric':<8}| {'boostnet':>9}| {'MLP':>7}| {'units':>5}| {'steps':>5}| "
        f"{'stop':<12}| {'objective':>10}| {'boostnet s':>10}| {'MLP s':>7}| {'ratio':>6}|"
        + (f" {'per seed':>11}|" if spread else "")
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        lo_hi = f"{r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}" if "ratio_lo" in r else ""
        print(
            f"| {r['data']:<14}| {r['metric']:<8}| {r['boostnet']:>9.4f}| {r['mlp']:>7.4f}| "
            f"{r['units']:>5}| {r['steps']:>5}| {r['stop']:<12}| {r['objective']:>10.5f}| "
            f"{r['boostnet_s']:>10.2f}| {r['mlp_s']:>7.2f}| {r['ratio']:>6.2f}|"
            + (f" {lo_hi:>11}|" if spread else "")
        )
    gm, diff, certified = overall(rows)
    seeds = max(r.get("seeds", 1) for r in rows)
    runs = max(r.get("runs", 1) for r in rows)
    over = f" (means over {seeds} seeds)" if seeds > 1 else ""
    if runs > 1:  # pooled (--pool)
        fits = max(r["fits"] for r in rows)
        over = f" (means over {fits} fits: {runs} runs, {seeds} seeds)"
    print(
        f"\ngeometric mean of the fit-time ratios: {gm:.2f} "
        f"(max {max(r['ratio'] for r in rows):.2f}); "
        f"metric minus MLP's: mean {np.mean(list(diff.values())):+.4f}, "
        f"worst {min(diff.values()):+.4f}; certificates {certified}/{len(rows)}" + over
    )
    return gm


def overall(rows):
    """The figures over the sets that the summary line and :func:`targets` both read: the
    geometric mean of the ratios, each set's metric minus the MLP's (a dict by set) and how many
    sets ended by certificate."""
    gm = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
    diff = {r["data"]: r["boostnet"] - r["mlp"] for r in rows}
    return gm, diff, sum(r["stop"] == "certificate" for r in rows)


#: Issue 11's targets: the geometric mean of the ratios, the largest ratio, how far below the
#: MLP's metric a set may end (one point of accuracy or R^2), digits' metric and time.
TARGET_GEOMEAN, TARGET_MAX_RATIO, TARGET_WORST = 1.0, 3.0, -0.01
TARGET_DIGITS, TARGET_DIGITS_S = 0.98, 1.5


def targets(rows, params: dict) -> list[tuple[str, str, bool]]:
    """Issue 11's targets checked on :func:`summarise`'s rows of one parameter set: ``(target,
    the figures, met)`` per target. The figures carry three decimals, so that a ratio of 3.004
    does not read as the 3.00 of the table. A set's figures are its means over the seeds; "every
    set certified" needs every seed's stop to be a certificate, and no ``max_time``."""
    gm, diff, certified = overall(rows)
    ratios = [r["ratio"] for r in rows]
    over = [r for r in rows if r["ratio"] > TARGET_MAX_RATIO]
    worst = min(diff, key=diff.get)
    mean_diff = float(np.mean(list(diff.values())))
    out = [
        (f"geometric mean of the ratios <= {TARGET_GEOMEAN:g}", f"{gm:.3f}", gm <= TARGET_GEOMEAN),
        (
            f"no set above {TARGET_MAX_RATIO:g}x",
            ", ".join(f"{r['data']} {r['ratio']:.3f}" for r in over)
            or f"largest {max(rows, key=lambda r: r['ratio'])['data']} {max(ratios):.3f}",
            not over,
        ),
        ("metric at least the MLP's on average", f"{mean_diff:+.4f}", mean_diff >= 0.0),
        (
            f"no set more than {-TARGET_WORST:g} below the MLP's metric",
            f"worst {worst} {diff[worst]:+.4f}",
            diff[worst] >= TARGET_WORST,
        ),
    ]
    digits = [r for r in rows if r["data"] == "digits"]
    if digits:
        d = digits[0]
        out.append(
            (
                f"digits >= {TARGET_DIGITS:g} with a certificate in <= {TARGET_DIGITS_S:g} s",
                f"{d['boostnet']:.4f} in {d['boostnet_s']:.3f} s, {d['stop']}",
                d["boostnet"] >= TARGET_DIGITS
                and d["boostnet_s"] <= TARGET_DIGITS_S
                and d["stop"] == "certificate",
            )
        )
    capped = params.get("max_time") is not None
    out.append(
        (
            "every set ends by certificate, without max_time",
            f"{certified}/{len(rows)}" + (", max_time set" if capped else ""),
            certified == len(rows) and not capped,
        )
    )
    return out


def print_targets(rows, params: dict):
    print("\nissue 11's targets:")
    for what, figures, met in targets(rows, params):
        print(f"  {'met   ' if met else 'MISSED'} {what}: {figures}")


#: The columns a pooled results file must have (:func:`pooled`).
_POOLED = ("data", "params", "seed", "boostnet", "mlp", "units", "steps", "stop", "objective",
           "boostnet_s", "mlp_s", "ratio")  # fmt: skip


def pooled(paths) -> list[dict]:
    """The rows of several runs' ``speed.csv`` files, each tagged with its run (``"run"``: the
    file's index), for ``--pool``. Raises ``ValueError`` naming the problem when a file cannot be
    read or lacks a column, or when the runs differ in CPU: their ratios do not pool (section 8,
    twenty-seventh part). Runs of different commits pool (a commit may change only the
    documentation); ``--pool`` names them."""
    rows = []
    for i, path in enumerate(paths):
        got = read_rows(path)
        missing = [k for k in _POOLED if k not in got[0]]
        if missing:
            raise ValueError(
                f"{path} is not a speed suite's results file (no {', '.join(missing)})"
            )
        rows += [{**r, "params": str(r["params"]), "run": i} for r in got]
    cpus = {str(r["cpu"]) for r in rows if r.get("cpu") is not None}
    if len(cpus) > 1:
        raise ValueError(f"the runs differ in cpu ({', '.join(sorted(cpus))}): not pooled")
    return rows


def runs_line(rows, params: str) -> list[str]:
    """Per set, the ratio of each pooled run (:func:`summarise` of that run's rows)."""
    mine = [r for r in rows if r["params"] == params]
    runs = [
        {s["data"]: s["ratio"] for s in summarise([r for r in mine if r["run"] == run])}
        for run in dict.fromkeys(r["run"] for r in mine)
    ]
    return [
        f"  {data:<14} {' '.join(f'{run[data]:.3f}' for run in runs if data in run)}"
        for data in dict.fromkeys(r["data"] for r in mine)
    ]


def plot(rows, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.plot([r["mlp_s"], r["boostnet_s"]], [r["mlp"], r["boostnet"]], color="0.8", zorder=1)
        ax.annotate(r["data"], (r["boostnet_s"], r["boostnet"]), fontsize=7)
    ax.scatter([r["boostnet_s"] for r in rows], [r["boostnet"] for r in rows], label="boostnet")
    ax.scatter([r["mlp_s"] for r in rows], [r["mlp"] for r in rows], marker="s", label="MLP(100)")
    ax.set_xscale("log")
    ax.set_xlabel("fit time (s, log scale)")
    ax.set_ylabel("test accuracy / R^2")
    ax.legend()
    ax.set_title("fit time against test metric, same split")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _value(text: str):
    """An ``--ablation`` value: JSON (numbers, true, null, "quoted"), else the bare string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("--params", default="{}", help="boostnet parameters as a JSON object")
    ap.add_argument("--ablation", default=None, help="NAME=V1,V2,...: one boostnet fit per value")
    ap.add_argument("--out", default="runs/speed-suite")
    ap.add_argument(
        "--max-time", type=float, default=None, help="boostnet's max_time (s) on every set"
    )
    ap.add_argument(
        "--seeds", default="0", help="comma-separated random_state values (both methods); means"
    )
    ap.add_argument(
        "--pool", nargs="+", metavar="CSV", default=None,
        help="fit nothing: pool earlier runs' speed.csv files (one CPU) and print "
        "their table and targets",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.pool:
        try:
            rows = pooled(args.pool)
        except ValueError as exc:
            ap.error(f"--pool: {exc}")
        summary = summarise(rows)
        commits = sorted({str(r["commit"]) for r in rows if r.get("commit") is not None})
        unnamed = len({r["run"] for r in rows if r.get("commit") is None})  # older files
        source = [f"commits {', '.join(commits)}"] if commits else []
        source += [f"{unnamed} run(s) without a recorded commit"] if unnamed else []
        for params in dict.fromkeys(r["params"] for r in summary):
            sel = [r for r in summary if r["params"] == params]
            print(
                f"\nboostnet parameters: {params}; {len(args.pool)} runs pooled"
                + (f" ({'; '.join(source)})" if source else "")
            )
            print_table(sel)
            print("\neach run's ratio, by set:")
            print("\n".join(runs_line(rows, params)))
            print_targets(sel, json.loads(params))
        return
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        ap.error(f"--params must be a JSON object: {exc}")
    if not isinstance(params, dict):
        ap.error(f"--params must be a JSON object, got {args.params!r}")
    if args.max_time is not None:
        params["max_time"] = args.max_time
    variants = [params]
    if args.ablation:
        key, eq, vals = args.ablation.partition("=")
        if not eq or not key or not vals:
            ap.error(f"--ablation takes NAME=V1,V2,..., got {args.ablation!r}")
        keys = key.split("+")  # NAME+NAME=...: the names take each value together
        if not all(keys):
            ap.error(f"--ablation takes NAME[+NAME...]=V1,V2,..., got {args.ablation!r}")
        variants = [{**params, **{k: _value(v) for k in keys}} for v in vals.split(",")]
    for name in {k for p in variants for k in p if "." in k}:
        try:
            _switch_target(name)
        except ValueError as exc:
            ap.error(str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    print(f"BLAS: {prov['blas']}")
    if blas_hint():
        print(f"note: {blas_hint()} (both methods use the same BLAS: the ratios move less)")
    rows, mlp_cache = [], {}
    for name in args.sets:
        for seed in seeds:
            warm_up(name, variants[0], seed)
        # the variants of one seed run back to back: pairs close in time (the host's speed drifts)
        for seed in seeds:
            for p in variants:
                row = run_set(name, p, mlp_cache, seed)
                rows.append({**row, **prov, "device": row["device"]})  # the fit's own device
                print(
                    f"{name} {json.dumps(p)} seed {seed}: {row['boostnet']:.4f} vs "
                    f"{row['mlp']:.4f}, {row['boostnet_s']:.2f} s vs {row['mlp_s']:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
    write_rows(out / "speed.csv", rows)
    summary = summarise(rows)
    for p in variants:
        sel = [r for r in summary if r["params"] == json.dumps(p, sort_keys=True)]
        print(f"\nboostnet parameters: {json.dumps(p, sort_keys=True)}")
        print_table(sel)
        print_targets(sel, p)
    if len(variants) > 1:
        print_paired(paired(rows, variants), json.dumps(variants[0], sort_keys=True))
    plot([r for r in summary if r["params"] == summary[0]["params"]], out / "speed.png")
    print(f"\nwrote {out / 'speed.csv'} and {out / 'speed.png'}")


if __name__ == "__main__":
    main()
