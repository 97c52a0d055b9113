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

from planner.hardware.profile import Gpu
from planner.models.facts import ModelFacts
from planner.plan import DeviceMemory, HostMemory, MemoryUse, Settings

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

# VRAM the CUDA runtime uses outside every llama.cpp buffer (context, cuBLAS handle and workspace, the ggml pool).
# Measured: 183 MiB on an RTX 3070 (llama.cpp issue #822 in cuda-buffers.jsonl: nvidia-smi 4972 MiB vs 4789 MiB of
# buffers); 451-456 MiB per RTX 4090 (llama.cpp PR #15860). Hopper adds a 32 MiB cuBLAS workspace. The larger
# figure is used: an estimate that runs out of memory is worse than one that leaves 200 MiB unused.
CUDA_RUNTIME_OVERHEAD = 450 * MiB
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
    facts: ModelFacts, settings: Settings, geo: Geometry, *, holds_output: bool, holds_layers: bool
) -> dict[str, int]:
    """Peak live bytes of each stage of the worst-case graph on one backend.

    The peak of the graph is the largest stage (ggml-alloc reuses memory across layers). Coefficients were fitted
    on llama.cpp's reported compute buffers (bench/memory_vs_llamacpp.py) and agree with the published logs in
    shared research cuda-buffers.jsonl (e.g. Llama-3-8B ctx 512 ub 512 FA off: 258.5 MiB).
    """
    u = geo.n_ubatch
    e = facts.n_embd
    n_kv = geo.n_ctx_seq  # the attention of one stream spans its cells
    h = facts.n_head
    q_width = h * facts.head_dim_k
    kv_width = max(wk + wv for wk, wv, _swa in facts.layer_kv_shapes())
    stages: dict[str, int] = {}
    if holds_output:
        # final norm output + logits for the reserved outputs
        stages["logits"] = 4 * facts.n_vocab * geo.n_outputs + 4 * e * u * 2
    if holds_layers:
        base = 4 * u * (2 * e + q_width + kv_width)  # residual, normed input, Q, K/V views
        if settings.flash_attn == "on":
            attn = base + 4 * u * q_width + 2 * n_kv * u
        else:
            attn = base + 4 * n_kv * u * h + 4 * u * q_width + 4 * n_kv * u
        stages["attention"] = attn
        if facts.is_moe:
            ffn = 4 * u * facts.n_expert_used * (2 * facts.expert_ff + e) + 4 * u * facts.n_expert + 4 * u * 2 * e
        else:
            ffn = 4 * u * (2 * facts.ff(0) + 2 * e)
        stages["ffn"] = ffn
    return stages


def _peak(stages: dict[str, int]) -> int:
    return max(stages.values(), default=0)


# ---------------------------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------------------------
def _device_overhead(gpu: Gpu) -> int:
    if gpu.unified_memory or gpu.vendor == "apple":
        return METAL_RUNTIME_OVERHEAD
    return CUDA_RUNTIME_OVERHEAD


def _unit_padding(facts: ModelFacts) -> list[int]:
    """Extra GPU bytes per unit (blocks, then output): CUDA pads each quantized tensor by the remainder of one
    512-element row (MATRIX_ROW_PADDING) and aligns every tensor to 128 bytes. Zero for catalog facts."""
    cached = facts._derived.get("unit_padding")
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
            overhead_bytes=_device_overhead(g),
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
    for i, dev in enumerate(devices):
        stages = compute_stages(facts, settings, geo, holds_output=dev.output_layer, holds_layers=dev.layers > 0)
        peak = _peak(stages)
        if i == 0 and (cpu_layers or largest_cpu_expert_tensor) and geo.n_ubatch >= 32:
            # op offload: host-resident weights are copied into the first GPU's compute buffer for big batches
            host_tensor = largest_cpu_expert_tensor or (max(layer_bytes) // 7 if cpu_layers else 0)
            peak = max(peak, host_tensor + 4 * geo.n_ubatch * 2 * facts.n_embd)
        dev.compute_bytes = peak
        if facts.mmproj_bytes and dev.output_layer:
            dev.mmproj_bytes = facts.mmproj_bytes

    host_stages = compute_stages(
        facts,
        settings,
        geo,
        holds_output=out_dev is None,
        holds_layers=cpu_layers or not gpus,
    )
    inputs = 4 * facts.n_embd * geo.n_ubatch  # token embedding rows (GET_ROWS output) stay on the host
    mask_bytes = (2 if settings.flash_attn == "on" else 4) * geo.n_ctx_seq * geo.n_ubatch
    n_masks = 2 if facts.sliding_window and facts.swa_layers and any(facts.swa_layers) else 1
    host.compute_bytes = _peak(host_stages) + inputs + mask_bytes * n_masks
    host.output_bytes = 4 * facts.n_vocab * max(settings.parallel, 1)
    host.runtime_bytes = HOST_PROCESS_BASELINE
    if runtime == "llama-cpp-python":
        # llama-cpp-python keeps its own numpy scores array of n_batch x n_vocab float32 (llama_cpp/llama.py)
        host.runtime_bytes += 4 * geo.n_batch * facts.n_vocab
    if not gpus and facts.mmproj_bytes:
        host.weights_bytes += facts.mmproj_bytes

    for dev in devices:
        dev.total_bytes = (
            dev.weights_bytes + dev.kv_cache_bytes + dev.compute_bytes + dev.overhead_bytes + dev.mmproj_bytes
        )
    host.total_bytes = (
        host.weights_bytes + host.kv_cache_bytes + host.compute_bytes + host.output_bytes + host.runtime_bytes
    )
    return MemoryUse(devices=devices, host=host, margin_bytes=margin_bytes)
