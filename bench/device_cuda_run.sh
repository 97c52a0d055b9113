#!/usr/bin/env bash
# The GPU check, run once on a lent NVIDIA machine (the device tool): record a real `planner probe --json` and
# `planner doctor --json`, build llama-server with CUDA from the llama.cpp source vendored in llama-cpp-python's
# sdist (copied to .device/llama.cpp), and log its real CUDA buffers for several plans (bench/cuda_buffers.py).
# Everything lands in $OUT; bench/memory_vs_llamacpp.py --cuda compares it with planner's estimate.
set -u
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
start=$(date +%s)
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -m planner probe --json > "$OUT/probe.json" 2> "$OUT/probe.err"
python3 -m planner doctor --json > "$OUT/doctor.json" 2> "$OUT/doctor.err"
. bench/build_cuda_llama_server.sh
echo "built after $(( $(date +%s) - start )) s"
tail -c 4000 /tmp/build.log > "$OUT/build-tail.log"
cat /tmp/models.txt
[ "$build_rc" -eq 0 ] || exit 0
/tmp/b/bin/llama-server --version > "$OUT/llama-server-version.txt" 2>&1
mkdir -p /tmp/runs
timeout 150 python3 bench/cuda_buffers.py /tmp/b/bin/llama-server /tmp/models /tmp/runs
tar czf "$OUT/cuda-runs.tgz" -C /tmp runs
echo "done after $(( $(date +%s) - start )) s"
