#!/usr/bin/env bash
# The one command for the device `run` tool (see benchmarks/gpu_benchmark.py's docstring):
#   run(command="bash benchmarks/gpu_benchmark.sh", carry=[".gpu-bench"], timeout_s=600)
# Uses the machine's python3 (its JAX with CUDA), installs the carried wheels of the
# missing dependencies into /tmp/site, runs templearn from src/, logs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if compgen -G ".gpu-bench/whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu-bench/whl/*.whl || exit
else
  echo "gpu_benchmark.sh: no .gpu-bench/whl: run 'python benchmarks/gpu_benchmark.py --prepare' and carry .gpu-bench" >&2
fi
export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
timeout 580 "$PY" benchmarks/gpu_benchmark.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_benchmark.log"
