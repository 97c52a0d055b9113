#!/usr/bin/env bash
# Second GPU check (device tool): build llama-server with CUDA as bench/device_cuda_run.sh does, then
# bench/squeeze_runs.py: plans made for a card with little free memory must load and leave little idle.
set -u
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
start=$(date +%s)
python3 bench/bench_models.py /tmp/models gpu > /tmp/models.txt 2>&1 &
cmake -S .device/llama.cpp -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90-real -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF > /tmp/build.log 2>&1
timeout 280 cmake --build /tmp/b --target llama-server -j 16 >> /tmp/build.log 2>&1
rc=$?
echo "build rc=$rc after $(( $(date +%s) - start )) s"
wait
[ $rc -eq 0 ] || { tail -c 3000 /tmp/build.log; exit 0; }
timeout 150 python3 bench/squeeze_runs.py /tmp/b/bin/llama-server /tmp/models "$OUT"
echo "done after $(( $(date +%s) - start )) s"
