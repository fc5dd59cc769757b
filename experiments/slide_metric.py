"""Plain against whitened slide directions (``boostnet.slide``), whole fits over seeds.

    python experiments/slide_metric.py --sets fashion-10k --seeds 0,1,2
    python experiments/slide_metric.py --sets digits c2-noisy c11 --seeds 0,1,2,3,4,5

Each set of ``experiments/speed_suite.py`` (same split, same standardisation) is fitted with the
defaults, once per seed with the plain slide and once with whitened directions
(``boostnet._greedy._WHITEN_SLIDE``), the two alternating so that a drift of the host's speed
falls on both. It prints one row per fit (seconds, steps, units, final objective, test metric, stop
reason), the means per set and variant, and writes ``slide_metric.csv`` (tidy rows with the seed,
versions, machine and date) to ``--out``. A set's fit time follows its trajectory (which units
the pools happen to find), so read the objectives and units beside the seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from boostnet import BoostNetClassifier, BoostNetRegressor, _greedy

sys.path.insert(0, str(Path(__file__).parent))
import speed_suite  # noqa: E402
from _rows import provenance, write_rows  # noqa: E402

VARIANTS = {"plain": False, "whitened": True}


def fit_one(name: str, seed: int, whiten: bool) -> dict:
    task, Xtr, ytr, Xte, yte = speed_suite.split(name)
    est = (BoostNetClassifier if task == "classification" else BoostNetRegressor)(random_state=seed)
    _greedy._WHITEN_SLIDE = whiten
    try:
        t0 = time.perf_counter()
        est.fit(Xtr, ytr)
        seconds = time.perf_counter() - t0
    finally:
        _greedy._WHITEN_SLIDE = False
    last = est.history_[-1] if est.history_ else None  # (alpha="auto": the final fit's)
    return {
        "set": name,
        "seed": seed,
        "slide": "whitened" if whiten else "plain",
        "seconds": round(seconds, 3),
        "steps": max(len(est.history_) - 1, 0),
        "units": est.n_units_,
        "objective": float(last.objective) if last is not None else float("nan"),
        "metric": float(est.score(Xte, yte)),
        "stop": est.stop_reason_,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=["fashion-10k"], choices=sorted(speed_suite.SETS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=".")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    # the first fit in a process sets up numba's kernels (0.4-0.7 s): not inside a timed fit
    X, y = np.random.default_rng(0).standard_normal((60, 3)), np.arange(60) % 2
    BoostNetClassifier(random_state=0, max_time=1.0).fit(X, y)
    prov = provenance()
    rows = []
    print("| set | seed | slide | seconds | steps | units | objective | metric | stop |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        for seed in seeds:
            for variant, whiten in VARIANTS.items():
                row = fit_one(name, seed, whiten) | prov
                rows.append(row)
                print(
                    f"| {name} | {seed} | {variant} | {row['seconds']:.2f} | {row['steps']} | "
                    f"{row['units']} | {row['objective']:.5f} | {row['metric']:.4f} | "
                    f"{row['stop']} |",
                    flush=True,
                )
    print()
    for name in args.sets:
        for variant in VARIANTS:
            sel = [r for r in rows if r["set"] == name and r["slide"] == variant]
            mean = {k: float(np.mean([r[k] for r in sel])) for k in ("seconds", "steps", "units")}
            obj = float(np.mean([r["objective"] for r in sel]))
            print(
                f"{name} {variant}: {mean['seconds']:.2f} s, {mean['steps']:.1f} steps, "
                f"{mean['units']:.1f} units, objective {obj:.5f} (mean of {len(sel)} seeds)"
            )
    write_rows(Path(args.out) / "slide_metric.csv", rows)


if __name__ == "__main__":
    main()
