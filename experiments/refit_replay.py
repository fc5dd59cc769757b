"""The re-fit's speed without the trajectory: capture one fit's re-fit problems, replay them.

A fit's time follows its trajectory: which units a pool happens to find decides how many steps the
certification tail takes, and any change of rounding gives another trajectory (c26, one seed: 260
to 431 steps for code that differed only in rounding). A re-fit change of 10-20 % cannot be read
from whole fits there. This script fixes the problems instead:

    python experiments/refit_replay.py capture --set c26 --max-time 150 --out replay/c26
    python experiments/refit_replay.py replay replay/c26            # with the code under test

``capture`` fits boostnet (defaults, ``--seed``) on a set of ``experiments/speed_suite.py`` and
stores the re-fits with at least ``--min-units`` units, every ``--every``-th growing one and every
tight one (a certificate's), each as ``NNN.npz`` (activations, targets, weights, warm start, the
carried curvature model) and ``NNN.json`` (datafit, penalty, lambda, tolerances). ``replay`` solves
every stored problem ``--repeat`` times with the ``boostnet`` that Python imports (put another
version first on ``PYTHONPATH`` to compare) and prints, per problem, the best time, the outer
iterations, the objective and the relative duality gap reached, then the totals per kind; the same
problems, hence the same work asked, for every version. Files are plain ``.npz`` + JSON (no
pickles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import boostnet
from boostnet import BoostNetClassifier, BoostNetRegressor, _greedy
from boostnet.datafits import DATAFITS
from boostnet.penalties import get_penalty
from boostnet.refit import CurvatureModel, refit

sys.path.insert(0, str(Path(__file__).parent))
import speed_suite  # noqa: E402

_MODEL = ("B", "hc", "s", "C")


def capture(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    original = _greedy.refit
    seen = {"growing": 0, "stored": 0}

    def storing(H, Y, a, datafit, penalty, coef0, intercept0, **kw):
        tight = kw.get("decrease_tol", 0.0) == 0.0
        if H.shape[1] >= args.min_units and kw.get("offset") is None:
            seen["growing"] += not tight
            if tight or seen["growing"] % args.every == 0:
                _store(out / f"{seen['stored']:03d}", H, Y, a, datafit, penalty, coef0,
                       intercept0, kw, tight)  # fmt: skip
                seen["stored"] += 1
        return original(H, Y, a, datafit, penalty, coef0, intercept0, **kw)

    task, Xtr, ytr, _, _ = speed_suite.split(args.set)
    cls = BoostNetClassifier if task == "classification" else BoostNetRegressor
    _greedy.refit = storing
    try:
        cls(random_state=args.seed, max_time=args.max_time).fit(Xtr, ytr)
    finally:
        _greedy.refit = original
    print(f"stored {seen['stored']} re-fit problems in {out}")


def _store(stem, H, Y, a, datafit, penalty, coef0, intercept0, kw, tight) -> None:
    arrays = {"H": H, "Y": Y, "a": a, "coef0": coef0, "intercept0": intercept0}
    model = kw.get("model")
    meta = {
        "datafit": datafit.name,
        "penalty": penalty.name,
        "alpha": float(penalty.alpha),
        "tol": float(kw["tol"]),
        "max_iter": int(kw["max_iter"]),
        "decrease_tol": float(kw.get("decrease_tol", 0.0)),
        "kind": "tight" if tight else "growing",
        "units": int(H.shape[1]),
        "model": None,
    }
    if model is not None:
        arrays.update({f"model_{k}": np.asarray(getattr(model, k)) for k in _MODEL})
        meta["model"] = {"stride": model.stride, "scale": model.scale, "age": model.age}
    np.savez(f"{stem}.npz", **{k: np.asarray(v) for k, v in arrays.items()})
    Path(f"{stem}.json").write_text(json.dumps(meta))


def _load(stem):
    meta = json.loads(Path(f"{stem}.json").read_text())
    with np.load(f"{stem}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def _solve(meta, arrays):
    model = None
    if meta["model"] is not None:
        m = meta["model"]
        model = CurvatureModel(
            *(arrays[f"model_{k}"].copy() for k in _MODEL), m["stride"], m["scale"], m["age"]
        )
    t = time.perf_counter()
    r = refit(
        arrays["H"], arrays["Y"], arrays["a"], DATAFITS[meta["datafit"]](),
        get_penalty(meta["penalty"], meta["alpha"]), arrays["coef0"], arrays["intercept0"],
        tol=meta["tol"], max_iter=meta["max_iter"], decrease_tol=meta["decrease_tol"],
        model=model,
    )  # fmt: skip
    return time.perf_counter() - t, r


def replay(args) -> None:
    stems = sorted(p.with_suffix("") for p in Path(args.dir).glob("*.json"))
    if not stems:
        sys.exit(f"refit_replay: no stored problems in {args.dir}")
    print(f"boostnet {boostnet.__version__} from {Path(boostnet.__file__).parent}")
    print("| problem | kind | units | outputs | seconds | iterations | objective | rel. gap |")
    print("|---|---|---|---|---|---|---|---|")
    totals = {}
    problems = [(stem, *_load(stem)) for stem in stems]
    _solve(*problems[0][1:])  # warm-up: compiled kernels load once per process
    for stem, meta, arrays in problems:
        best, r = min((_solve(meta, arrays) for _ in range(args.repeat)), key=lambda x: x[0])
        gap = r.gap / max(abs(r.objective), 1e-12)
        print(
            f"| {stem.name} | {meta['kind']} | {meta['units']} | {arrays['Y'].shape[1]} | "
            f"{best:.3f} | {r.n_iter} | {r.objective:.10f} | {gap:.1e} |"
        )
        t, n = totals.get(meta["kind"], (0.0, 0))
        totals[meta["kind"]] = (t + best, n + r.n_iter)
    for kind, (t, n) in totals.items():
        print(f"{kind}: {t:.2f} s for {n} outer iterations ({1e3 * t / max(n, 1):.1f} ms each)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="fit once and store its re-fit problems")
    cap.add_argument("--set", required=True, choices=sorted(speed_suite.SETS))
    cap.add_argument("--seed", type=int, default=0)
    cap.add_argument("--max-time", type=float, default=None)
    cap.add_argument("--min-units", type=int, default=1)
    cap.add_argument("--every", type=int, default=10)
    cap.add_argument("--out", required=True)
    rep = sub.add_parser("replay", help="solve the stored problems with the installed code")
    rep.add_argument("dir")
    rep.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    capture(args) if args.command == "capture" else replay(args)


if __name__ == "__main__":
    main()
