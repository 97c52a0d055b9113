"""Memory estimate for llama.cpp: per GPU and for the host, from the model's real tensor bytes.

Pure functions of (ModelFacts, Settings, GPUs, runtime). The rules follow llama.cpp's own source (vendored build
of llama-cpp-python 0.3.36, >= b10454; line references in shared research `llamacpp-memory.md`):

* weights: `-ngl N` offloads the output layer plus the last N-1 blocks (src/llama-model.cpp, since b7467); the
  token embedding always stays on the host; tied embeddings are duplicated for an offloaded output layer;
  `--n-cpu-moe N` keeps the expert tensors of blocks 0..N-1 on the host; several GPUs split the offloaded units
  by cumulative `--tensor-split` fractions, the last GPU taking the output layer.
* KV cache: n_ctx padded to 256; cells x (row(type_k, k width) + row(type_v, v width)) per layer, on the layer's
  device; sliding-window layers hold min(n_ctx_seq, n_swa * streams + n_ubatch) cells unless swa_full.
* compute buffers: the peak of the live tensors of the worst-case graph (n_tokens = min(n_ctx, n_ubatch)); see
  `compute_stages`. Constants were fitted on llama.cpp's own reported buffers (bench/memory_vs_llamacpp.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.types.hardware import Gpu
from planner.types.model import ModelFacts
from planner.types.plan import DeviceMemory, HostMemory, MemoryUse, Settings

MiB = 1024 * 1024

# ggml block sizes for KV cache types (ggml/src/ggml-common.h): (elements per block, bytes per block).
KV_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q5_1": (32, 24),
    "q5_0": (32, 22),
    "q4_1": (32, 20),
    "q4_0": (32, 18),
    "iq4_nl": (32, 18),
}
# CUDA's default FA kernels accept only these K/V pairs (ggml-cuda/fattn.cu without GGML_CUDA_FA_ALL_QUANTS).
CUDA_FA_PAIRS = {("f16", "f16"), ("q8_0", "q8_0"), ("q4_0", "q4_0"), ("bf16", "bf16")}

CTX_PAD = 256  # n_ctx is rounded up to a multiple of 256 (src/llama-context.cpp, since b6975)
CUDA_ROW_PADDING = 512  # MATRIX_ROW_PADDING: quantized rows padded for the last row read (ggml-cuda/common.cuh)
TENSOR_ALIGN = 128  # per-tensor alignment in backend buffers

# VRAM the CUDA runtime uses outside every llama.cpp buffer (CUDA context, cuBLAS handle and workspace, loaded
# modules), by compute capability. Measured as nvidia-smi's per-process VRAM minus llama.cpp's logged buffers:
# 588 MiB on an H200 (cc 9.0; 10 runs in tests/fixtures/cuda-buffers/h200, all within 587-589 MiB);
# 451-456 MiB per RTX 4090 (cc 8.9; llama.cpp PR #15860); 183 MiB on an RTX 3070 (cc 8.6; llama.cpp issue #822 in
# shared research cuda-buffers.jsonl). No Pascal/Turing measurement exists: they take the Ampere figure plus 50 %.
CUDA_CONTEXT_BY_CC = ((9, 0, 600 * MiB), (8, 9, 460 * MiB), (7, 0, 280 * MiB), (0, 0, 280 * MiB))
# The ggml CUDA pool grows during the first prompt and never shrinks (temporaries, cuBLAS copies). Measured growth
# after a 3500-token prompt on the H200: 14-22 MiB with flash attention, 140-198 MiB without (cuBLAS KQ path),
# +108 MiB for MoE (expert routing buffers). Allowances round those up.
POOL_ALLOWANCE_FA = 32 * MiB
POOL_ALLOWANCE_NO_FA = 256 * MiB
POOL_ALLOWANCE_MOE = 128 * MiB
METAL_RUNTIME_OVERHEAD = 64 * MiB
# llama-server's process baseline on the host (binary, libraries, HTTP threads): measured RSS of an idle
# llama-server on CPU with a 98 MB model minus its buffers (bench/memory_vs_llamacpp.py).
HOST_PROCESS_BASELINE = 120 * MiB


def pad(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def row_bytes(kv_type: str, width: int) -> int:
    elems, size = KV_TYPES[kv_type]
    return (width // elems) * size if width % elems == 0 else math.ceil(width / elems) * size


# ---------------------------------------------------------------------------------------------------------------
# Context geometry
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    n_ctx: int  # total cells (padded)
    n_ctx_seq: int  # cells one sequence can use
    n_stream: int  # KV streams: 1 when unified, else one per slot
    n_ubatch: int
    n_batch: int
    n_outputs: int  # logits rows reserved in the worst-case graph


def geometry(settings: Settings, runtime: str) -> Geometry:
    n_ctx = pad(max(settings.ctx_size, 1), CTX_PAD)
    n_seq = max(settings.parallel, 1)
    if settings.kv_unified or n_seq == 1:
        n_stream, n_ctx_seq = 1, n_ctx
    else:
        n_stream = n_seq
        n_ctx_seq = pad(n_ctx // n_seq, CTX_PAD)
        n_ctx = n_ctx_seq * n_seq
    n_batch = min(settings.batch_size, n_ctx)
    n_ubatch = min(settings.ubatch_size, n_batch)
    # llama-server reserves logits for one output per slot (b9460); the library default (llama-cpp-python)
    # reserves them for every token of the ubatch (n_outputs_max = n_batch).
    n_outputs = min(n_ubatch, n_seq) if runtime == "llama-server" else n_ubatch
    return Geometry(n_ctx, n_ctx_seq, n_stream, n_ubatch, n_batch, max(n_outputs, 1))


def swa_cells(facts: ModelFacts, settings: Settings, geo: Geometry) -> int:
    """Cells per stream of a sliding-window layer (src/llama-kv-cache-iswa.cpp)."""
    if settings.swa_full or not facts.sliding_window:
        return geo.n_ctx_seq
    seqs = max(settings.parallel, 1) if (settings.kv_unified and geo.n_stream == 1) else 1
    return min(geo.n_ctx_seq, pad(facts.sliding_window * seqs + geo.n_ubatch, CTX_PAD))


def kv_layer_bytes(facts: ModelFacts, settings: Settings, geo: Geometry) -> list[int]:
    """KV bytes of every layer (K and V rows times its cells, all streams)."""
    full_cells = geo.n_ctx_seq * geo.n_stream
    swa = swa_cells(facts, settings, geo) * geo.n_stream
    memo: dict[tuple[int, int, bool], int] = {}
    out = []
    for shape in facts.layer_kv_shapes():
        if shape not in memo:
            wk, wv, is_swa = shape
            row = row_bytes(settings.cache_type_k, wk) + (row_bytes(settings.cache_type_v, wv) if wv else 0)
            memo[shape] = (swa if is_swa else full_cells) * row
        out.append(memo[shape])
    return out


def kv_bytes_per_token(facts: ModelFacts, cache_type_k: str = "f16", cache_type_v: str = "f16") -> int:
    """KV bytes one token of context costs over all full-attention layers (for display and the solver)."""
    return sum(
        row_bytes(cache_type_k, wk) + (row_bytes(cache_type_v, wv) if wv else 0)
        for wk, wv, _swa in facts.layer_kv_shapes()
    )


# ---------------------------------------------------------------------------------------------------------------
# Layer placement
# ---------------------------------------------------------------------------------------------------------------
def place_units(n_layer: int, n_gpu_layers: int, fractions: list[float]) -> list[int | None]:
    """Device index of each unit (blocks 0..n_layer-1, then the output layer), None for the host.

    llama.cpp (src/llama-model.cpp): i_gpu_start = max(n_layer + 1 - N, 0); offloaded unit u (0-based) goes to
    the first device whose cumulative split fraction exceeds u / n_offloaded.
    """
    units = n_layer + 1
    n = max(0, min(n_gpu_layers, units))
    start = units - n
    placement: list[int | None] = [None] * units
    if n == 0 or not fractions:
        return placement
    total = sum(fractions) or 1.0
    cumulative, acc = [], 0.0
    for f in fractions:
        acc += f / total
        cumulative.append(acc)
    cumulative[-1] = 1.0
    for unit in range(start, units):
        u = unit - start
        ratio = u / n
        placement[unit] = next(i for i, c in enumerate(cumulative) if ratio < c)
    return placement


# ---------------------------------------------------------------------------------------------------------------
# Compute buffers
# ---------------------------------------------------------------------------------------------------------------
def compute_stages(
    facts: ModelFacts,
    settings: Settings,
    geo: Geometry,
    *,
    holds_output: bool,
    holds_layers: bool,
    cpu_backend: bool = False,
) -> dict[str, int]:
    """Peak live bytes of each stage of the worst-case graph on one GPU backend (ggml-alloc reuses memory
    across layers, so the buffer is the largest stage, independent of the layer count).

    Fitted on llama-server's own CUDA buffers (bench/memory_vs_llamacpp.py --cuda, 10 runs on an H200) and
    consistent with the published logs in shared research cuda-buffers.jsonl:
    * layers, flash attention on: 4*U*(3*ff + 3*E) + the F16 mask copy 2*N_kv*U (plus the SWA mask); with a
      quantized KV cache on CUDA also a stage converting one layer's K/V to F16, 2*N_kv*(K+V width) + 4*U*(2E + 2q);
    * layers, flash attention off: the larger of that FFN stage with an F32 mask, and the attention stage
      4*N_kv*U*H (KQ) + 4*N_kv*U (mask) + 4*U*(2E + q + kv + q) (Q, K, V, KQV);
    * the output layer: logits 4*V*n_outputs + 4*E*U;
    with U = n_ubatch, N_kv = cells of one stream, ff = n_ff (MoE: n_expert_used * expert ff).
    """
    u = geo.n_ubatch
    e = facts.n_embd
    n_kv = geo.n_ctx_seq
    h = facts.n_head
    q_width = h * facts.head_dim_k
    kv_width = max(wk + wv for wk, wv, _swa in facts.layer_kv_shapes())
    ff = facts.n_expert_used * (facts.expert_ff or facts.ff(0)) if facts.is_moe else facts.ff(0)
    # on the CPU backend an MoE graph keeps one more E-wide tensor (the router input) alive beside the experts
    e_live = 4 * e if (facts.is_moe and cpu_backend) else 3 * e
    has_swa = any(swa for _wk, _wv, swa in facts.layer_kv_shapes())
    swa_kv = swa_cells(facts, settings, geo) if has_swa else 0
    stages: dict[str, int] = {}
    if holds_output:
        stages["logits"] = 4 * facts.n_vocab * geo.n_outputs + 4 * e * u
    if holds_layers:
        ffn = 4 * u * (3 * ff + e_live)
        stages["ffn"] = ffn
        if settings.flash_attn == "on":
            mask = 2 * (n_kv + swa_kv) * u
            stages["attention"] = ffn + mask
            if not cpu_backend and settings.cache_type_k not in ("f16", "bf16", "f32"):
                # CUDA converts one layer's quantized K/V to F16 inside the compute buffer (since b9489); that
                # stage peaks beside Q/K/V/KQV (H200, qwen2 q8_0 KV at 16k, ub 256: 28.04 MiB logged)
                stages["kv_convert"] = mask + 2 * n_kv * kv_width + 4 * u * (2 * e + 2 * q_width)
        else:
            mask = 4 * (n_kv + swa_kv) * u
            kq = 4 * n_kv * u * h + mask + 4 * u * (2 * e + 2 * q_width + kv_width)
            stages["attention"] = max(ffn + mask, kq)
    return stages


# Extra compute on the first GPU when some layers stay on the host (fitted: llama-1b -ngl 9 of 17 on the H200 adds
# 5.24 MiB = 1.31 x 4*E*U over the full-offload buffer).
PARTIAL_OFFLOAD_EXTRA = 1.31
OP_OFFLOAD_MIN_BATCH = 32  # GGML_OP_OFFLOAD_MIN_BATCH in ggml-cuda.cu


def cpu_compute_bytes(facts: ModelFacts, settings: Settings, geo: Geometry, runtime: str = "llama-server") -> int:
    """The single CPU compute buffer of a CPU-only run: its largest stage.

    Fitted on llama-cpp-python 0.3.36's CPU buffers (bench/memory_vs_llamacpp.py): the same layer stages as on a
    GPU, and a logits stage of 4*V*n_outputs + 12*E*U (the embedding rows, the final norm and the residual live
    beside the logits when everything shares one buffer). llama-server, whose logits stage is small (one output per
    slot), keeps one more E x U tensor in some of its layer stages (16 real runs in
    tests/estimate/test_llama_server_cpu.py: SmolLM2 with flash attention and an f16 V cache logs 15.51 MiB for
    14.38 without it): counted always for it, at most 4*E*U too much.
    """
    stages = compute_stages(facts, settings, geo, holds_output=True, holds_layers=True, cpu_backend=True)
    e_u = 4 * facts.n_embd * geo.n_ubatch
    if runtime == "llama-server":
        for name in ("ffn", "attention"):
            if name in stages:
                stages[name] += e_u
    stages["logits"] = 4 * facts.n_vocab * geo.n_outputs + 3 * e_u
    return _peak(stages)


def host_compute_bytes(facts: ModelFacts, settings: Settings, geo: Geometry) -> int:
    """The CUDA_Host compute buffer: token-embedding rows and the masks llama.cpp builds on the host.

    Fitted on the H200 runs: flash attention on 8*E*U + 2*N_kv*U per mask, off 10*E*U + 4*N_kv*U per mask (the
    SWA mask spans its own cells). Unchanged by CPU-resident layers: their matmuls are op-offloaded to the GPU.
    """
    u = geo.n_ubatch
    has_swa = any(swa for _wk, _wv, swa in facts.layer_kv_shapes())
    cells = geo.n_ctx_seq + (swa_cells(facts, settings, geo) if has_swa else 0)
    if settings.flash_attn == "on":
        return 8 * facts.n_embd * u + 2 * cells * u
    return 10 * facts.n_embd * u + 4 * cells * u


def _peak(stages: dict[str, int]) -> int:
    return max(stages.values(), default=0)


# ---------------------------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------------------------
def _device_overhead(gpu: Gpu, settings: Settings, facts: ModelFacts) -> int:
    """Runtime memory outside llama.cpp's buffers: the CUDA context and the pool's growth under load."""
    if gpu.unified_memory or gpu.vendor == "apple":
        return METAL_RUNTIME_OVERHEAD
    cc = gpu.cc_tuple() or (8, 0)
    context = next(size for major, minor, size in CUDA_CONTEXT_BY_CC if cc >= (major, minor))
    pool = POOL_ALLOWANCE_FA if settings.flash_attn == "on" else POOL_ALLOWANCE_NO_FA
    if facts.is_moe:
        pool += POOL_ALLOWANCE_MOE
    return context + pool


def _unit_padding(facts: ModelFacts) -> list[int]:
    """Extra GPU bytes per unit (blocks, then output): CUDA pads each quantized tensor by the remainder of one
    512-element row (MATRIX_ROW_PADDING) and aligns every tensor to 128 bytes. Zero for catalog facts."""
    cached: list[int] | None = facts._derived.get("unit_padding")
    if cached is not None:
        return cached
    pad_per_unit = [0] * (facts.n_layer + 1)
    for t in facts.tensors:
        if t.name.startswith("blk."):
            unit = int(t.name.split(".")[1])
        elif t.name.startswith(("output", "cls")):
            unit = facts.n_layer
        else:
            continue
        if unit > facts.n_layer:
            continue
        extra = TENSOR_ALIGN
        if t.ggml_type not in ("F32", "F16", "BF16") and t.shape and t.shape[0] % CUDA_ROW_PADDING:
            missing = CUDA_ROW_PADDING - t.shape[0] % CUDA_ROW_PADDING
            extra += int(missing * t.n_bytes / max(1, math.prod(t.shape)))
        pad_per_unit[unit] += extra
    facts._derived["unit_padding"] = pad_per_unit
    return pad_per_unit


def estimate_memory(
    facts: ModelFacts,
    settings: Settings,
    gpus: list[Gpu],
    runtime: str = "llama-server",
    *,
    margin_bytes: int = 0,
) -> MemoryUse:
    """Per-device and host memory of running `facts` with `settings` on `gpus` (empty = CPU only)."""
    geo = geometry(settings, runtime)
    n_layer = facts.n_layer
    fractions = settings.tensor_split or [float(g.usable_bytes) for g in gpus]
    placement = place_units(n_layer, settings.n_gpu_layers if gpus else 0, fractions if gpus else [])

    devices = [
        DeviceMemory(
            name=g.name,
            index=g.index,
            capacity_bytes=max(0, g.usable_bytes - margin_bytes),
            overhead_bytes=_device_overhead(g, settings, facts),
        )
        for g in gpus
    ]
    host = HostMemory(weights_mapped=settings.mmap, capacity_bytes=0)
    host.weights_bytes = facts.input_bytes

    layer_bytes = facts.layer_bytes or [0] * n_layer
    expert_bytes = facts.layer_expert_bytes or [0] * n_layer
    cpu_moe = min(settings.n_cpu_moe, n_layer)
    largest_cpu_expert_tensor = 0

    kv_per_layer = kv_layer_bytes(facts, settings, geo)
    for il in range(n_layer):
        dev = placement[il]
        kv = kv_per_layer[il]
        if dev is None:
            host.weights_bytes += layer_bytes[il]
            host.kv_cache_bytes += kv
            continue
        weights = layer_bytes[il]
        if il < cpu_moe and expert_bytes[il]:
            weights -= expert_bytes[il]
            host.weights_bytes += expert_bytes[il]
            # op offload copies one expert tensor (a third of the layer's experts) into the compute buffer
            largest_cpu_expert_tensor = max(largest_cpu_expert_tensor, expert_bytes[il] // 3)
        devices[dev].weights_bytes += weights
        devices[dev].layers += 1
        devices[dev].kv_cache_bytes += kv

    out_dev = placement[n_layer]
    if out_dev is None:
        # with tied embeddings the host reuses token_embd for the lm_head: only the norm is extra
        dup = facts.input_bytes if facts.tied_embeddings else 0
        host.weights_bytes += max(0, facts.output_bytes - dup)
    else:
        devices[out_dev].weights_bytes += facts.output_bytes
        devices[out_dev].output_layer = True

    padding = _unit_padding(facts)
    for unit, dev_index in enumerate(placement):
        if dev_index is not None:
            devices[dev_index].weights_bytes += padding[unit]

    # compute buffers
    cpu_layers = any(d is None for d in placement[:n_layer])
    op_offload = cpu_layers and geo.n_ubatch >= OP_OFFLOAD_MIN_BATCH
    for i, device in enumerate(devices):
        # with op offload the first GPU also runs the host layers' matmuls, so it needs their stages even when it
        # holds no layer itself (H200: -ngl 1 of 17 logs the same 69.25 MiB as -ngl 9)
        runs_layers = device.layers > 0 or (i == 0 and op_offload)
        stages = compute_stages(facts, settings, geo, holds_output=device.output_layer, holds_layers=runs_layers)
        peak = _peak(stages)
        if i == 0 and geo.n_ubatch >= OP_OFFLOAD_MIN_BATCH:
            # op offload: for big batches the first GPU runs the matmuls of host-resident weights too
            if op_offload:
                peak += int(PARTIAL_OFFLOAD_EXTRA * 4 * facts.n_embd * geo.n_ubatch)
            if largest_cpu_expert_tensor:
                # the expert tensor is copied into the compute buffer as a split input
                peak = max(peak, stages.get("ffn", 0) + largest_cpu_expert_tensor)
        device.compute_bytes = peak
        if facts.mmproj_bytes and device.output_layer:
            device.mmproj_bytes = facts.mmproj_bytes

    if gpus:
        host.compute_bytes = host_compute_bytes(facts, settings, geo)
        if out_dev is None:
            host.compute_bytes += 4 * facts.n_vocab * geo.n_outputs
    else:
        host.compute_bytes = cpu_compute_bytes(facts, settings, geo, runtime)
    host.output_bytes = 4 * facts.n_vocab * max(settings.parallel, 1)
    host.runtime_bytes = HOST_PROCESS_BASELINE
    if runtime == "llama-cpp-python":
        # llama-cpp-python keeps its own numpy scores array of n_batch x n_vocab float32 (llama_cpp/llama.py)
        host.runtime_bytes += 4 * geo.n_batch * facts.n_vocab
    if not gpus and facts.mmproj_bytes:
        host.weights_bytes += facts.mmproj_bytes

    for device in devices:
        device.total_bytes = (
            device.weights_bytes
            + device.kv_cache_bytes
            + device.compute_bytes
            + device.overhead_bytes
            + device.mmproj_bytes
        )
    host.total_bytes = (
        host.weights_bytes + host.kv_cache_bytes + host.compute_bytes + host.output_bytes + host.runtime_bytes
    )
    return MemoryUse(devices=devices, host=host, margin_bytes=margin_bytes)
