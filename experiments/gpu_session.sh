#!/bin/bash
# One GPU session's checks in one call, each stage capped so that a slow or failing one leaves time
# for the rest (experiments/README.md, section 7): a warm-up fit per device (the one-off numba and
# CuPy compiles, timed), gpu_check.py, the GPU tests, speed_suite.py on Fashion-MNIST (CPU and GPU)
# and c26 (GPU), then c26 on the GPU for 60 s under cProfile (the re-fit was 75 % of that fit).
# Results under $OUT (default runs/gpu-session).
#
#   bash experiments/gpu_session.sh [FOLDER_WITH_THE_FASHION_MNIST_IDX_FILES]
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
OUT=${OUT:-runs/gpu-session}
END=$((SECONDS + ${BUDGET_S:-570}))
left() { local l=$((END - SECONDS)); [ $l -gt $1 ] && l=$1; [ $l -lt 5 ] && l=5; echo $l; }
mkdir -p "$OUT"
if [ -n "$1" ]; then
    mkdir -p /usr/share/datasets/fashion-mnist && cp "$1"/*-ubyte.gz /usr/share/datasets/fashion-mnist/
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used,utilization.gpu --format=csv
python3 -c "import numpy, scipy, sklearn, numba, cupy; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'sklearn', sklearn.__version__, 'numba', numba.__version__, 'cupy', cupy.__version__)"
echo "== warm-up (numba and CuPy compiles, counted here once)"
timeout "$(left 120)" python3 - <<'PY'
import time
from sklearn.datasets import load_digits
from boostnet import BoostNetClassifier
X, y = load_digits(return_X_y=True)
for dev in ("cpu", "gpu"):
    t = time.perf_counter()
    est = BoostNetClassifier(random_state=0, device=dev).fit(X / 16, y)
    print(f"first {dev} fit in a fresh process (compiles included): "
          f"{time.perf_counter() - t:.1f} s, {est.n_units_} units, {est.stop_reason_}")
PY
echo "== gpu_check"
timeout "$(left 280)" python3 experiments/gpu_check.py --device gpu --out "$OUT/check" 2>&1 | tee "$OUT/check.log"
echo "== GPU tests"
timeout "$(left 90)" python3 -m pytest tests/test_gpu.py -q -o addopts="" -p no:cacheprovider --timeout 80 -ra 2>&1 | tail -15
echo "== speed_suite fashion-10k, device cpu and gpu, seed 0"
timeout "$(left 110)" python3 experiments/speed_suite.py --sets fashion-10k --seeds 0 --ablation device=cpu,gpu --out "$OUT/suite_f" 2>&1 | tail -25
echo "== speed_suite c26, gpu, seed 0 ($((END - SECONDS)) s left)"
timeout "$(left 200)" python3 experiments/speed_suite.py --sets c26 --seeds 0 --params '{"device": "gpu"}' --out "$OUT/suite_c26" 2>&1 | tail -15
echo "== where a GPU fit's time goes: c26, 60 s under cProfile ($((END - SECONDS)) s left)"
timeout "$(left 100)" python3 - "$OUT" <<'PY' 2>&1 | tail -45
import cProfile, pstats, sys
sys.path.insert(0, "experiments")
import speed_suite
from boostnet import BoostNetClassifier
_, Xtr, ytr, _, _ = speed_suite.split("c26")
est = BoostNetClassifier(random_state=0, device="gpu", max_time=60)
cProfile.run("est.fit(Xtr, ytr)", f"{sys.argv[1]}/c26_gpu.prof")
print(f"{est.n_iter_} steps, {est.n_units_} units, {est.stop_reason_}")
st = pstats.Stats(f"{sys.argv[1]}/c26_gpu.prof")
st.sort_stats("tottime").print_stats(20)
st.sort_stats("cumulative").print_stats(20)
PY
echo "done at $SECONDS s"
