#!/usr/bin/env bash
# The GPU checks of issue 11 in one run (at most ~8 minutes on an H100/H200): the gpu-marked
# tests, then training (one seed vs an ensemble, fp32 vs bf16 + channels_last), readouts
# (a loop of heads vs decode_grid), extraction (cached vs a bare forward pass) and the RSA
# kernels on the device. Each benchmark prints its own table with ratios against its
# baseline; the script prints them one after another, with the time each took.
#
#     bash benchmarks/gpu_suite.sh            # needs the package installed (pip install -e .)
set -u
PY=${PYTHON:-python}
run() {
    local name=$1; shift
    local t0=$SECONDS
    echo "=== $name: $*"
    timeout "${LIMIT:-150}" "$PY" "$@" || echo "!!! $name exited with $?"
    echo "--- $name: $((SECONDS - t0)) s"
}
"$PY" - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
run gpu-tests -m pytest -q -p no:xdist -m gpu tests
run train benchmarks/bench_train.py --device cuda
run readout benchmarks/bench_readout.py --device cuda
run extract benchmarks/bench_extract.py
run rsa benchmarks/bench_rsa.py --part compare --compare-device cuda
