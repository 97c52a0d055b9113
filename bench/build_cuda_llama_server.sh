#!/usr/bin/env bash
# Build llama-server with CUDA for Hopper (sm_90) from .device/llama.cpp (the llama.cpp vendored in llama-cpp-python's
# sdist) into /tmp/b, on a lent GPU machine; the GGUFs of bench/bench_models.py GPU are written to /tmp/models
# meanwhile. Sourced by bench/device_cuda_run.sh and bench/device_squeeze_run.sh; sets build_rc.
python3 bench/bench_models.py /tmp/models gpu > /tmp/models.txt 2>&1 &
models_job=$!
cmake -S .device/llama.cpp -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90-real -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF > /tmp/build.log 2>&1
timeout "${BUILD_TIMEOUT_S:-420}" cmake --build /tmp/b --target llama-server -j 16 >> /tmp/build.log 2>&1
build_rc=$?
wait "$models_job"
echo "build rc=$build_rc"
