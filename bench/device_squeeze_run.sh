#!/usr/bin/env bash
# Second GPU check (device tool): build llama-server with CUDA as bench/device_cuda_run.sh does, then
# bench/squeeze_runs.py: plans made for a card with little free memory must load and leave little idle.
set -u
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
start=$(date +%s)
BUILD_TIMEOUT_S=280 . bench/build_cuda_llama_server.sh
echo "built after $(( $(date +%s) - start )) s"
[ "$build_rc" -eq 0 ] || { tail -c 3000 /tmp/build.log; exit 0; }
timeout 150 python3 bench/squeeze_runs.py /tmp/b/bin/llama-server /tmp/models "$OUT"
echo "done after $(( $(date +%s) - start )) s"
