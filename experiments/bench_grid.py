"""The scoring bench over a grid of shapes: time vs the pool size M and vs the samples n.

Runs ``boostnet bench`` (:func:`boostnet.app.bench.run_bench`) for every (n, M) of the grid at fixed d and
K, writes the tidy rows (with device and versions) to ``OUT/bench_grid.csv`` and plots scoring and
GEMM time against M (one line per n) and against n (one line per M) to ``OUT/bench_grid.png``.

    python experiments/bench_grid.py [--device gpu] [--dtype float32|float16]
        [--n 10000,30000,60000] [--m 4096,16384,65536] [--d 784] [--k 10] [--out bench-grid]

The default grid is the GPU's; on a 2-core CPU pass smaller values (e.g. --n 5000,20000 --m 1024,4096).
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from _rows import write_rows

import boostnet
from boostnet.app.bench import run_bench


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    ap.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    ap.add_argument("--n", default="10000,30000,60000")
    ap.add_argument("--m", default="4096,16384,65536")
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="bench-grid")
    args = ap.parse_args()
    ns = [int(v) for v in args.n.split(",")]
    ms = [int(v) for v in args.m.split(",")]
    rows = []
    print(f"{'n':>7} {'M':>7} {'scoring ms':>11} {'GEMM ms':>9} {'ratio':>6} {'TFLOP/s':>8}")
    for n in ns:
        for m in ms:
            r = run_bench(
                args.device, n=n, d=args.d, m=m, k=args.k, repeat=args.repeat, dtype=args.dtype
            )
            row = {
                "device": r["device"],
                "device_name": r["device_name"],
                "screen": r["screen"],
                "n": n,
                "d": args.d,
                "m": m,
                "k": args.k,
                "scoring_s": r["scoring_s"],
                "gemm_s": r["gemm_s"],
                "ratio": r["ratio"],
                "tflops": r["tflops"],
                "boostnet": boostnet.__version__,
                "python": platform.python_version(),
            }
            rows.append(row)
            print(
                f"{n:>7} {m:>7} {r['scoring_s'] * 1e3:>11.2f} {r['gemm_s'] * 1e3:>9.2f} "
                f"{r['ratio']:>6.3f} {r['tflops']:>8.3f}",
                flush=True,
            )
    out = Path(args.out)
    write_rows(out / "bench_grid.csv", rows)
    plot(rows, ns, ms, out / "bench_grid.png")
    print(f"wrote {out / 'bench_grid.csv'} and {out / 'bench_grid.png'}")


def plot(rows, ns, ms, path):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    _lines(a1, rows, "n", ns, "m")
    _lines(a2, rows, "m", ms, "n")
    dev = f"{rows[0]['device_name']} ({rows[0]['screen']} screen)"
    a1.set(
        xlabel="candidates M", ylabel="seconds", title=f"time vs M: scoring (o) and GEMM (x)\n{dev}"
    )
    a2.set(
        xlabel="samples n", ylabel="seconds", title=f"time vs n: scoring (o) and GEMM (x)\n{dev}"
    )
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _lines(ax, rows, by, values, x):
    """Scoring (o) and GEMM (x) time against ``x``, one colour per value of ``by``."""
    for v in values:
        sel = [r for r in rows if r[by] == v]
        xs = [r[x] for r in sel]
        (line,) = ax.loglog(xs, [r["scoring_s"] for r in sel], "o-", label=f"{by}={v}")
        ax.loglog(xs, [r["gemm_s"] for r in sel], "x--", color=line.get_color(), alpha=0.6)


if __name__ == "__main__":
    main()
