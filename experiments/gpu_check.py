"""One script for the GPU checks: scorer parity, a digits fit on both devices, the bench, Fashion-MNIST.

Prints markdown tables headed by the card's name:

1. bench: the scoring step against the TF32 GEMM of the same shape (reference shape by default), for
   the TF32 and FP16 screens and each epilogue variant (candidates per thread 1, 2, 4);
2. parity: the GPU scorer (TF32 and FP16 screens) against the NumPy float64 reference on random
   shapes that are multiples of no tile (all activations, K in {1, 3, 10, 32}): max screening error
   as a share of the best score, and whether the chosen (re-scored) unit is the float64 argmax;
3. digits: the default classifier with the same seed on CPU and GPU (accuracy, units, time), and with
   the index-based pairs sampler (no refinement) whether both devices chose the same units;
4. Fashion-MNIST, full 60k training set, official test set (when the files are installed).

Without a GPU (or with ``--device cpu``) it runs the CPU parts only, on smaller shapes, so the
script itself stays tested.

    python experiments/gpu_check.py [--device gpu|cpu] [--quick] [--skip-fashion] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import boostnet
from boostnet import BoostNetClassifier
from boostnet._backend import gpu_status, resolve_device, synchronize
from boostnet.activations import ACTIVATIONS
from boostnet.app.bench import random_pool, run_bench
from boostnet.penalties import L1, GroupL1
from boostnet.scoring import NumpyScorer, reference_scores

CASES = [(1001, 37, 3001, 1), (517, 785, 1025, 3), (2049, 63, 999, 10), (333, 5, 4097, 32)]


def parity(xp, gpu: bool, quick: bool):
    rows = []
    cases = CASES[:2] if quick else CASES
    screens = ["tf32", "fp16"] if gpu else ["float32 (CPU)"]
    for n, d, M, K in cases:
        for name, act in ACTIVATIONS.items():
            X, G, W, c = random_pool(n, d, M, K, n + d + M + K, act)
            pen = GroupL1 if K == 3 else L1
            ref = reference_scores(X, W, c, G, act, pen)
            for screen in screens:
                if gpu:
                    from boostnet.gpu_scoring import GpuScorer  # noqa: PLC0415

                    scorer = GpuScorer(xp.asarray(X), screen=screen, chunk=1024)
                else:
                    scorer = NumpyScorer(X)
                res = scorer.score(xp.asarray(W), xp.asarray(c), xp.asarray(G), act, pen, k=64)
                s = np.asarray(res.scores.get() if hasattr(res.scores, "get") else res.scores)
                err = float(np.abs(s - ref).max() / np.abs(ref).max())
                screen_top = int(np.argmax(s)) == int(np.argmax(ref))
                rows.append(
                    {
                        "n": n, "d": d, "M": M, "K": K, "activation": name, "screen": screen,
                        "max_err_rel": err, "screen_top1": screen_top,
                        "top1_after_rescore": int(res.top[0]) == int(np.argmax(ref)),
                    }
                )  # fmt: skip
    return rows


def digits(gpu: bool):
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
    rows, models = [], {}
    for dev in ["cpu", "gpu"] if gpu else ["cpu"]:
        for label, kw in (
            ("default", {}),
            ("pairs, no refine, 20 units", dict(sampler="pairs", refine=False, max_units=20)),
        ):
            t0 = time.perf_counter()
            est = BoostNetClassifier(random_state=0, device=dev, **kw).fit(Xtr, ytr)
            rows.append(
                {
                    "device": dev, "setting": label, "accuracy": est.score(Xte, yte),
                    "units": est.n_units_, "stop": est.stop_reason_,
                    "fit_s": time.perf_counter() - t0,
                }
            )  # fmt: skip
            models[(dev, label)] = est
    same = None
    if gpu:
        a, b = (
            models[("cpu", "pairs, no refine, 20 units")],
            models[("gpu", "pairs, no refine, 20 units")],
        )
        k = min(a.n_units_, b.n_units_)
        same = {
            "units_cpu": a.n_units_,
            "units_gpu": b.n_units_,
            "max_abs_dW_first_units": float(
                np.abs(a.hidden_weights_[:k] - b.hidden_weights_[:k]).max()
            )
            if k
            else None,
        }
    return rows, same


def fashion(device: str):
    from boostnet.app.datasets import load_data  # noqa: PLC0415

    try:
        ds = load_data("fashion-mnist")
    except boostnet.BoostNetError as exc:
        return {"skipped": str(exc)}
    mean, scale = ds.X.mean(axis=0), ds.X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Xtr, Xte = (ds.X - mean) / scale, (ds.X_test - mean) / scale
    est = BoostNetClassifier(random_state=0, device=device, n_candidates=16384, max_time=110)
    t0 = time.perf_counter()
    est.fit(Xtr, ds.y)
    fit_s = time.perf_counter() - t0
    return {
        "n_train": int(Xtr.shape[0]),
        "accuracy": float(est.score(Xte, ds.y_test)),
        "units": est.n_units_,
        "stop": est.stop_reason_,
        "fit_s": fit_s,
        "candidates_searched": est.n_candidates_searched_,
    }


def table(rows, keys=None):
    if not rows:
        return ""
    keys = keys or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def bench(backend, gpu: bool, quick: bool):
    """The scoring step against the GEMM; on a GPU for each screen and each epilogue CPT."""
    shape = (
        dict(n=60000, d=784, m=65536, k=10)
        if gpu and not quick
        else dict(n=20000, d=784, m=4096, k=10)
    )
    rows = []
    for dtype in ["float32", "float16"] if gpu else ["float32"]:
        for cpt in [1, 2, 4] if gpu else [None]:
            r = run_bench(backend.name, repeat=5, dtype=dtype, cpt=cpt, **shape)
            rows.append(
                {
                    "screen": r["screen"], "cpt": r["cpt"], "n": shape["n"], "d": shape["d"],
                    "M": shape["m"], "K": shape["k"], "scoring_ms": r["scoring_s"] * 1e3,
                    "gemm_ms": r["gemm_s"] * 1e3, "ratio": r["ratio"], "TFLOP/s": r["tflops"],
                }
            )  # fmt: skip
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    synchronize(backend.xp)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "gpu", "cpu"])
    ap.add_argument("--quick", action="store_true", help="fewer parity cases, small bench")
    ap.add_argument("--skip-fashion", action="store_true")
    ap.add_argument(
        "--out", default=None, help="folder for results.json (rewritten after each part)"
    )
    args = ap.parse_args()
    backend = resolve_device(args.device)
    gpu = backend.name == "gpu"
    xp = backend.xp
    ok, name = gpu_status()
    card = name if gpu else f"CPU {platform.machine()} (GPU: {name})"
    print(f"# boostnet {boostnet.__version__} GPU check on {card}\n", flush=True)
    results = {"card": card, "device": backend.name}

    def save():  # after each part, so a run cut short keeps what it measured
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")

    print("## Bench: scoring step vs the TF32 (GPU) / float32 (CPU) GEMM of the same chunks\n")
    print("(cpt: epilogue candidates per thread; the default for K = 10 is 4)\n", flush=True)
    results["bench"] = bench(backend, gpu, args.quick)
    print("\n" + table(results["bench"]) + "\n", flush=True)
    save()

    t0 = time.perf_counter()
    prow = parity(xp, gpu, args.quick)
    results["parity"] = prow
    worst = {}
    for r in prow:
        key = (r["screen"], r["activation"])
        w = worst.setdefault(key, {"screen": r["screen"], "activation": r["activation"],
                                   "cases": 0, "max_err_rel": 0.0, "screen_top1": 0,
                                   "top1_after_rescore": 0})  # fmt: skip
        w["cases"] += 1
        w["max_err_rel"] = max(w["max_err_rel"], r["max_err_rel"])
        w["screen_top1"] += r["screen_top1"]
        w["top1_after_rescore"] += r["top1_after_rescore"]
    print(f"## Parity vs float64 ({time.perf_counter() - t0:.1f} s)\n")
    print(table(list(worst.values())) + "\n", flush=True)
    save()

    drows, same = digits(gpu)
    results["digits"], results["pairs_same_units"] = drows, same
    print("## Digits (stratified 75/25, seed 0, standardised)\n")
    print(table(drows))
    if same is not None:
        print(f"\npairs sampler, CPU vs GPU: {json.dumps(same)}")
    print(flush=True)
    save()

    if not args.skip_fashion:
        f = fashion(backend.name)
        results["fashion_mnist"] = f
        print("## Fashion-MNIST, full training set (target: >= 0.88 test accuracy in <= 120 s)\n")
        print(table([f]) + "\n", flush=True)
        save()


if __name__ == "__main__":
    main()
