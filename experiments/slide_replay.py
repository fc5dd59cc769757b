"""How far a slide goes: the slides of one fit, replayed with plain and conjugate directions.

A slide (``boostnet.slide``) moves the active units downhill at fixed output weights before the
re-fit. This script fits boostnet (defaults, ``--seed``) on a set of ``experiments/speed_suite.py``,
keeps every ``--every``-th slide whose step budget is at least ``--min-steps`` (the tail's slides:
up to 16 steps on Fashion-MNIST), then replays each from the same units, output weights and first
step length with ``boostnet.slide._CONJUGATE`` off (the scaled gradient, the default) and on
(nonlinear conjugate gradients), and prints the loss each lowers after 4, 8 and all of its steps:

    python experiments/slide_replay.py --set fashion-10k --min-steps 10 --every 6

The figures are loss decreases on the training rows (float64, the slide's own check), times 1e4.
They measure the descent alone: what a stronger slide does to a whole fit is
``speed_suite.py --ablation boostnet.slide._CONJUGATE=false,true``'s question
(experiments/README.md, section 8, fourteenth part).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boostnet import BoostNetClassifier, BoostNetRegressor, _greedy
from boostnet import slide as slide_module

sys.path.insert(0, str(Path(__file__).parent))
import speed_suite  # noqa: E402


def capture(name: str, seed: int, min_steps: int, every: int) -> list[dict]:
    """The slides of one fit with a budget of at least ``min_steps``, every ``every``-th one."""
    original = _greedy.slide
    kept, seen = [], [0]

    def keeping(X, Y, a, datafit, W, c, coef, intercept, activation, unit_scale, steps, **kw):
        if steps >= min_steps:
            seen[0] += 1
            if (seen[0] - 1) % every == 0:
                kept.append(
                    dict(args=(X, Y, a, datafit, W.copy(), c.copy(), coef.copy(),
                               intercept.copy(), activation, unit_scale, steps),
                         kw={k: kw.get(k) for k in ("X_fast", "XT_fast", "step")})
                )  # fmt: skip
        return original(X, Y, a, datafit, W, c, coef, intercept, activation, unit_scale, steps,
                        **kw)  # fmt: skip

    task, Xtr, ytr, _, _ = speed_suite.split(name)
    cls = BoostNetClassifier if task == "classification" else BoostNetRegressor
    _greedy.slide = keeping
    try:
        cls(random_state=seed).fit(Xtr, ytr)
    finally:
        _greedy.slide = original
    return kept


def drops(problem: dict, conjugate: bool) -> list[float]:
    """Loss decreases (x 1e4) after 4, 8 and all steps of the slide, with or without conjugate
    directions."""
    old = slide_module._CONJUGATE
    slide_module._CONJUGATE = conjugate
    try:
        *head, steps = problem["args"]
        out = []
        for n in (4, 8, steps):
            s = slide_module.slide(*head, min(n, steps), **problem["kw"])
            out.append(1e4 * (s.loss_before - s.loss_after))
        return out
    finally:
        slide_module._CONJUGATE = old


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True, choices=sorted(speed_suite.SETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-steps", type=int, default=10)
    ap.add_argument("--every", type=int, default=6)
    args = ap.parse_args(argv)
    problems = capture(args.set, args.seed, args.min_steps, args.every)
    if not problems:
        sys.exit(f"slide_replay: no slide of {args.set} had {args.min_steps} steps or more")
    print("| slide | units | steps | plain: 4 / 8 / all | conjugate: 4 / 8 / all | all: ratio |")
    print("|---|---|---|---|---|---|")
    ratios = []
    for i, p in enumerate(problems):
        plain, conj = drops(p, False), drops(p, True)
        ratio = conj[-1] / plain[-1] if plain[-1] > 0 else float("nan")
        ratios.append(ratio)
        print(
            f"| {i} | {p['args'][4].shape[0]} | {p['args'][-1]} | "
            + " / ".join(f"{v:.2f}" for v in plain) + " | "
            + " / ".join(f"{v:.2f}" for v in conj) + f" | {ratio:.2f} |"
        )  # fmt: skip
    finite = [r for r in ratios if r == r]
    if finite:
        print(
            f"loss decrease of whole slides, conjugate / plain: {min(finite):.2f} to {max(finite):.2f}"
        )


if __name__ == "__main__":
    main()
