"""Speed estimate: prompt and generation tokens/s of a placement, with a band and the basis shown.

Generation (batch 1) is memory-bound: every token reads all weights it uses once, plus the filled KV cache. Per
token:

    t = sum over GPUs of bytes_read(gpu) / (eta * bandwidth(gpu)) + host term + t0

with eta = ETA_BASE[GPU generation] x ETA_FAMILY[quant family], the fraction of spec bandwidth llama.cpp's kernels
reach, and t0 a fixed per-token cost (kernel launches, sampling; larger without CUDA graphs). Host-resident
weights are read from RAM at the CPU's bandwidth. Prompt processing is compute-bound: 2 x active parameters FLOPs
per token at an effective rate per GPU generation, plus the PCIe copy of host weights the GPU computes on.

Where bytes are read follows llama.cpp's scheduler (ggml/src/ggml-backend.cpp):
* `ggml_backend_sched_backend_id_from_cur`: an op whose weight lives in a host buffer runs on the CPU unless a
  higher-priority backend's `offload_op` accepts it (`sched->op_offload`, on by default); CUDA, SYCL and Metal
  accept MUL_MAT / MUL_MAT_ID with a batch (ne[1], MUL_MAT_ID: ne[2]) of at least 32 and never GET_ROWS
  (`get_op_batch_size` / `ggml_backend_cuda_device_offload_op`). So for a prompt ubatch >= 32 every host weight of
  a matmul (dense blocks left on the host, `--n-cpu-moe` experts) is copied to the first GPU as a split input, once
  per ubatch; token_embd (GET_ROWS) is never copied, and the output matmul of a prompt has one row per slot (below
  32) and stays on the CPU.
* `ggml_backend_sched_compute_splits`: for a MUL_MAT_ID weight in a host buffer only the experts the ubatch's ids
  use are copied (groups of consecutive experts). With uniform routing the expected share of a layer's experts a
  ubatch of U tokens touches is 1 - (1 - n_expert_used / n_expert)^U (~1 for U = 512 and 8 of 128).
* Generation (batch 1 < 32): host weights are computed by the CPU where they lie. A token reads, per MoE layer,
  n_expert_used of the n_expert experts (`build_moe_ffn` in src/llama-graph.cpp selects the top-k experts per
  token; MUL_MAT_ID reads only those rows), so expert tensors count at n_expert_used / n_expert of their bytes,
  each at its own tensor type; dense tensors (attention, shared experts, norms, the output layer) count whole.

The estimate is split in two: `speed_terms` (the bytes, FLOPs and bandwidths of one placement) and
`generation_seconds` / `prompt_seconds` (the same terms under a set of constants). bench/speed_vs_published.py fits
the constants on hardware_db/speed_calibration.yaml through exactly these functions and prints every row's error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.core.memory import OP_OFFLOAD_MIN_BATCH
from planner.types.hardware import Cpu, Gpu
from planner.types.model import ModelFacts
from planner.types.plan import MemoryUse, Settings, Speed

GB = 1e9

# --- fitted constants --------------------------------------------------------------------------------------
# Fitted by bench/speed_vs_published.py (least squares on log error) over the 47 generation / 40 prompt fitted rows of
# hardware_db/speed_calibration.yaml; generations and families without a published row keep the research priors
# noted beside them. Rerun `python bench/speed_vs_published.py --fit` after adding rows.
ETA_BASE: dict[str, float] = {
    "pascal": 0.715,
    "volta_turing": 0.95,  # 5 rows, all K-quant: the product with ETA_FAMILY["kquant"] is what was fitted
    "ampere_plus": 0.762,
    "hbm": 0.531,
    "maxwell": 0.50,  # prior: M40 Q4_0 at 0.50 of spec (research speeds-calibration utilization summary)
    # non-CUDA backends, by the backend llama.cpp runs on (gpu_generation)
    # non-CUDA backends, fitted on the Llama-2-7B Q4_0 rows imported from research speeds-more.json
    # (scripts/import_speeds_more.py): 7 Metal rows (M1, M1 Ultra, M3 Pro, M3 Ultra, M4 Pro, M4 Max), 5 ROCm rows
    # (MI50, MI300X, RX 7900 XT, W7900), 1 SYCL row (Arc B580)
    "metal": 0.893,
    "rocm": 0.706,
    "vulkan": 0.706,  # no fitted Vulkan row on a known GPU yet: ROCm's figure
    "sycl": 0.672,
    "cpu": 0.60,  # prior: CPU generation reaches ~60 % of RAM bandwidth
}
# Multiplier by quant family (legacy Q4_0/Q4_1/Q5_0 = 1).
# lowbit: Jan-2024 P40/3090 Q2_K/Q3_K_S rows read at ~0.27 of spec, the Mar-2024 P4 Q2_K story at ~0.5: the fit
# compromises (the story comes out 26 % slow; older K-quant kernels likely explain the gap).
ETA_FAMILY: dict[str, float] = {"legacy": 1.0, "float": 1.13, "q8": 1.11, "kquant": 0.956, "lowbit": 0.433}
# Fixed per-token seconds. CUDA graphs are used on Ampere and newer since May 2024 (PR #6766); Pascal and
# Volta/Turing run without them in these builds (Turing/Volta gained them in July 2026, PR #25749).
T0: dict[str, float] = {
    "pascal": 0.00275,
    "volta_turing": 0.00416,  # includes llama-server/llama-cpp-python sampling in two of its five rows
    "ampere_plus": 0.00083,
    "ampere_plus_no_graphs": 0.00233,  # Ampere+ builds before May 2024 (used by the calibration of old rows)
    "hbm": 0.00083,  # tied to ampere_plus: the same CUDA-graph launch path
    "maxwell": 0.004,  # prior: no graphs, slowest launches
    "metal": 0.00553,
    "rocm": 0.00345,
    "vulkan": 0.00345,  # no fitted row: ROCm's figure
    "sycl": 0.00345,  # one row fits its eta only: ROCm's figure
    "cpu": 0.001,  # prior
}
# Effective prompt rate as a fraction of the card's dense FP16 rate (tensor cores), or on Pascal/Maxwell of FP32
# (llama.cpp uses dp4a MMQ kernels there: FP16 is crippled).
PP_EFFICIENCY: dict[str, float] = {
    "pascal": 1.04,
    "volta_turing": 0.55,  # prior: no pp row for Turing in the calibration set
    "ampere_plus": 0.498,
    "hbm": 0.193,
    "maxwell": 0.6,  # prior
    "metal": 0.609,  # of the FP32 figure; 3 rows whose GPU row has one (M1 x2, M1 Ultra)
    "rocm": 0.367,
    "vulkan": 0.367,  # no fitted row: ROCm's figure
    "sycl": 1.067,  # one row (Arc B580); against its XMX FP16 figure
    "cpu": 0.5,  # prior
}
PP_LOWBIT: dict[str, float] = {"pascal": 0.629, "maxwell": 0.629}  # dp4a K-quant MMQ: P40 Q3_K_S 583 vs Q4_0 912
PP_FLOAT: float = 1.15  # F16 weights on tensor cores go through cuBLAS, faster than MMQ (4090 F16 9382 vs Q4_K_M 7139)
# +/- band on both speeds. Leave-one-out 80th percentile |error|: 13 % generation, 18 % prompt (in-sample 12 %);
# 30 % holds 45 of 47 leave-one-out generation rows and the Tesla P4 story (-26 %, the low-bit conflict below).
BAND = 0.30

# --- physical constants ------------------------------------------------------------------------------------
DEFAULT_HOST_BANDWIDTH_GBS = 38.4  # dual-channel DDR4-2400: the floor of current desktops (JEDEC)
PCIE_GBS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938}  # per lane, PCI-SIG
# CPU constants measured here with llama-cpp-python 0.3.36 on 2 AMD EPYC vCPUs (bench/cpu_speed.py): a 1.2B Q8_0
# llama generated 10.9 t/s (12.7 GB/s of weights read with 2 threads) and processed prompts at 46.6 t/s (93 GFLOP/s);
# SmolLM2-135M generated 72 t/s, i.e. ~0.2 ms per layer of fixed thread-synchronisation cost.
CPU_GFLOPS_PER_CORE = 45.0
CORE_DEQUANT_GBS = 6.5  # each core dequantises and dots ~6.5 GB/s of weights: few cores cannot saturate RAM
CPU_LAYER_SECONDS = 0.0002  # per host-resident layer and token
TENSOR_CORE_GENERATIONS = ("volta_turing", "ampere_plus", "hbm")


@dataclass(frozen=True)
class SpeedConstants:
    eta_base: dict[str, float] = field(default_factory=lambda: dict(ETA_BASE))
    eta_family: dict[str, float] = field(default_factory=lambda: dict(ETA_FAMILY))
    t0: dict[str, float] = field(default_factory=lambda: dict(T0))
    pp_efficiency: dict[str, float] = field(default_factory=lambda: dict(PP_EFFICIENCY))
    pp_lowbit: dict[str, float] = field(default_factory=lambda: dict(PP_LOWBIT))
    pp_float: float = PP_FLOAT

    def eta(self, gen: str, family: str) -> float:
        return min(0.95, self.eta_base[gen] * self.eta_family[family])


@dataclass(frozen=True)
class GpuRead:
    """One GPU's share of a token: what it reads and how fast it can read and compute."""

    name: str
    generation: str
    weight_bytes: float  # weights read per generated token (active experts only)
    kv_bytes: float  # KV cache read per generated token
    bandwidth: float  # bytes/s, spec
    layer_share: float  # share of the repeating layers (prompt FLOPs)
    peak_flops: float  # FP16 (or FP32 on Pascal/Maxwell) spec FLOP/s


@dataclass(frozen=True)
class SpeedTerms:
    """Everything about a placement the speed constants multiply: bytes, FLOPs, bandwidths."""

    family: str
    gpus: tuple[GpuRead, ...]
    host_bytes: float  # weights + KV read from RAM per generated token
    host_bandwidth: float
    host_cores: int
    t0_key: str
    flops_per_token: float
    pcie_seconds_per_token: float  # prompt: pcie_seconds_per_ubatch spread over the ubatch's tokens
    offload_gpu: GpuRead | None  # the GPU op-offloaded host layers run on
    host_share: float  # share of the repeating layers on the host
    host_layers: int  # repeating layers on the host
    host_prompt_on_cpu: bool  # ubatch too small for op offload: host layers computed by the CPU
    # share of the layer bytes by quant family, from the real tensor types when the header is known: a Q2_K file
    # keeps ffn_down in Q4_0 when n_ff is not a multiple of 256, and that part reads at Q4_0's speed
    family_shares: tuple[tuple[str, float], ...] = ()
    gpu_bytes: tuple[float, ...] = ()  # per device (all of them, in order): weights + KV read per generated token
    pcie_seconds_per_ubatch: float = 0.0  # host weights the GPU computes on, copied once per prompt ubatch
    cpu_moe_flops_per_token: float = 0.0  # --n-cpu-moe expert FLOPs (on the CPU when the ubatch is below 32)
    pcie_link: str = ""  # e.g. "PCIe 4.0 x16", "PCIe 3.0 x16 assumed"
    pcie_bytes_per_ubatch: float = 0.0


def quant_family(quant: str) -> str:
    q = quant.upper()
    if q in ("F32", "F16", "BF16"):
        return "float"
    if q.startswith("Q8"):
        return "q8"
    if q.startswith(("Q2", "Q3", "IQ1", "IQ2", "IQ3", "TQ")):
        return "lowbit"
    if "_K" in q or q.startswith("IQ4"):
        return "kquant"
    return "legacy"


GPU_BACKENDS = ("cuda", "rocm", "vulkan", "metal", "sycl")
BACKEND_LABELS = {"rocm": "ROCm", "vulkan": "Vulkan (ROCm's until fitted)", "metal": "Metal", "sycl": "SYCL"}


def gpu_generation(gpu: Gpu, backend: str | None = None) -> str:
    """The constants key of a GPU: its llama.cpp backend (metal, rocm, vulkan, sycl), and for CUDA the generation.
    `backend` None: the backend planner deploys for the vendor (Metal on Apple, ROCm on AMD, SYCL on Intel)."""
    chosen = (backend or "").lower()
    if chosen in ("rocm", "vulkan", "metal", "sycl"):
        return chosen
    if gpu.vendor == "apple" or gpu.unified_memory and gpu.vendor != "nvidia":
        return "metal"
    if gpu.vendor == "amd":
        return "rocm"
    if gpu.vendor == "intel":
        return "sycl"
    if gpu.vendor != "nvidia":
        return "vulkan"
    cc = gpu.cc_tuple() or (8, 0)
    name = gpu.name.upper()
    if cc < (6, 0):
        return "maxwell"
    if cc < (7, 0):
        return "pascal"
    if any(tag in name for tag in ("A100", "H100", "H200", "H800", "A800", "GH200", "B200", "A30", "V100")):
        return "hbm"
    if cc < (8, 0):
        return "volta_turing"
    return "ampere_plus"


def _peak_flops(gpu: Gpu, gen: str) -> float:
    # Pascal/Maxwell run dp4a/FP32 kernels; Apple publishes no FP16 rate, so Metal's fitted efficiency is against
    # the FP32 figure rather than an assumed 2 x FP32
    # 0 when the database row has no FLOP figure: the prompt speed is then not estimated (no number is invented)
    if gen in ("pascal", "maxwell", "metal"):
        return (gpu.fp32_tflops or 0.0) * 1e12
    return (gpu.fp16_tflops or (gpu.fp32_tflops or 0.0) * 2) * 1e12


def host_bandwidth(cpu: Cpu) -> float:
    return cpu.memory_bandwidth_gbs or DEFAULT_HOST_BANDWIDTH_GBS


@dataclass(frozen=True)
class Layout:
    """Where the weight bytes of a placement live, split by what a token reads of them."""

    gpu_expert_bytes: tuple[int, ...]  # per device: expert tensors of its blocks (read at n_used / n_expert)
    host_dense_bytes: int  # non-expert tensors of blocks left on the host (read whole)
    host_expert_bytes: int  # expert tensors in RAM: host blocks' and --n-cpu-moe blocks'
    host_output_bytes: int  # the output layer when it stays on the host (lm_head; tied: the token_embd copy)
    host_layers: int  # repeating blocks on the host


def weight_layout(facts: ModelFacts, settings: Settings, memory: MemoryUse) -> Layout:
    """The byte layout of a placement, read off the memory estimate itself: the host holds the first blocks (both
    -ngl rules offload from the end), the devices the following ones in order, and the output layer stays on the
    host when no device holds it (so a calibration row's older -ngl placement is followed too)."""
    n_layer = facts.n_layer
    layer_bytes = facts.layer_bytes or [0] * n_layer
    expert_bytes = facts.layer_expert_bytes or [0] * n_layer
    host_layers = max(0, n_layer - sum(d.layers for d in memory.devices))
    host_dense = sum(layer_bytes[il] - expert_bytes[il] for il in range(host_layers))
    host_experts = sum(expert_bytes[il] for il in range(host_layers))
    gpu_experts = []
    il = host_layers
    for dev in memory.devices:
        on_device = 0
        for block in range(il, min(n_layer, il + dev.layers)):
            if block < settings.n_cpu_moe:
                host_experts += expert_bytes[block]  # --n-cpu-moe: the block's experts stay in RAM
            else:
                on_device += expert_bytes[block]
        gpu_experts.append(on_device)
        il += dev.layers
    output_on_gpu = any(d.output_layer for d in memory.devices)
    host_output = 0 if output_on_gpu else facts.output_bytes
    return Layout(tuple(gpu_experts), host_dense, host_experts, host_output, host_layers)


def expert_read_share(facts: ModelFacts) -> float:
    """Share of an MoE layer's expert bytes one token reads: n_expert_used of n_expert (1 for dense models)."""
    if not facts.is_moe or not facts.n_expert:
        return 1.0
    return min(1.0, facts.n_expert_used / facts.n_expert)


def expert_copy_share(facts: ModelFacts, n_ubatch: int) -> float:
    """Expected share of a layer's experts a ubatch of n_ubatch tokens uses, assuming uniform routing: only those
    are copied to the GPU (ggml_backend_sched_compute_splits)."""
    r = expert_read_share(facts)
    return 1.0 - (1.0 - r) ** max(1, n_ubatch) if r < 1.0 else 1.0


DEFAULT_PCIE = (3, 16)  # a link not probed and not in the GPU's row: PCIe 3.0 x16, the slowest full slot in use


def pcie_link(gpu: Gpu) -> tuple[int, int, bool]:
    """(generation, lanes, known) of the GPU's link: the current link when probed, else the assumed default."""
    gen = gpu.pcie_gen_current or gpu.pcie_gen_max
    lanes = gpu.pcie_width_current or gpu.pcie_width_max
    known = bool(gen and lanes)
    return (gen or DEFAULT_PCIE[0], lanes or DEFAULT_PCIE[1], known)


def pcie_bandwidth(gpu: Gpu) -> float:
    """Bytes/s of the GPU's link at its spec rate per lane (PCI-SIG): an upper bound of the host-to-device copy."""
    gen, lanes, _known = pcie_link(gpu)
    return PCIE_GBS.get(gen, PCIE_GBS[3]) * lanes * GB


def speed_terms(
    facts: ModelFacts,
    settings: Settings,
    memory: MemoryUse,
    gpus: list[Gpu],
    cpu: Cpu,
    *,
    context_fill: int = 512,
    backend: str | None = None,
) -> SpeedTerms:
    """The bytes and FLOPs of one placement, independent of the fitted constants; `backend` as in gpu_generation."""
    active = _active_fraction(facts)
    read_share = expert_read_share(facts)
    kv_read = _kv_bytes_per_cell(facts, settings) * min(context_fill, settings.ctx_size)
    total_layers = max(1, facts.n_layer)
    layout = weight_layout(facts, settings, memory)

    reads: list[GpuRead] = []
    gpu_bytes: list[float] = []
    for gpu, dev, experts in zip(gpus, memory.devices, layout.gpu_expert_bytes):
        # the device's weights (with padding) minus the experts a token does not use
        weight_read = max(0.0, dev.weights_bytes - experts * (1.0 - read_share))
        kv = kv_read * dev.layers / total_layers
        gpu_bytes.append(weight_read + kv)
        if dev.weights_bytes == 0 and dev.layers == 0:
            continue
        gen = gpu_generation(gpu, backend)
        reads.append(
            GpuRead(
                name=gpu.name,
                generation=gen,
                weight_bytes=weight_read,
                kv_bytes=kv,
                bandwidth=(gpu.memory_bandwidth_gbs or 200.0) * GB,
                layer_share=dev.layers / total_layers,
                peak_flops=_peak_flops(gpu, gen),
            )
        )
    cpu_layers = layout.host_layers
    host_weights = layout.host_dense_bytes + layout.host_expert_bytes * read_share + layout.host_output_bytes
    host_bytes = host_weights + kv_read * cpu_layers / total_layers
    # FLOPs of the --n-cpu-moe experts: their share of the active bytes (the blocks' other FLOPs run on the GPU)
    cpu_moe_experts = layout.host_expert_bytes - sum(
        (facts.layer_expert_bytes or [0] * total_layers)[il] for il in range(total_layers) if il < cpu_layers
    )
    flops = 2 * max(facts.n_params, 1) * active
    active_bytes = max(1.0, facts.size_bytes * active)
    cpu_moe_flops = flops * cpu_moe_experts * read_share / active_bytes

    offload_gpu = None
    pcie_ubatch = 0.0
    link = ""
    on_cpu = True
    copied = layout.host_dense_bytes + layout.host_expert_bytes * expert_copy_share(facts, settings.ubatch_size)
    offloads = bool(gpus) and not settings.gpu_off and settings.ubatch_size >= OP_OFFLOAD_MIN_BATCH
    if offloads and copied > 0:
        g = gpus[0]  # the highest-priority backend that accepts the op: the first GPU
        gen = gpu_generation(g, backend)
        offload_gpu = GpuRead(g.name, gen, 0.0, 0.0, (g.memory_bandwidth_gbs or 200.0) * GB, 0.0, _peak_flops(g, gen))
        pcie_ubatch = copied / pcie_bandwidth(g)
        gen_, lanes, known = pcie_link(g)
        link = f"PCIe {gen_}.0 x{lanes}" + ("" if known else " assumed")
        on_cpu = False
    return SpeedTerms(
        family=quant_family(facts.quant),
        gpus=tuple(reads),
        host_bytes=host_bytes,
        host_bandwidth=host_bandwidth(cpu) * GB,
        host_cores=min(settings.threads, cpu.physical_cores) or 1,
        t0_key=reads[0].generation if reads else "cpu",
        flops_per_token=flops,
        pcie_seconds_per_token=pcie_ubatch / max(1, settings.ubatch_size),
        offload_gpu=offload_gpu,
        host_share=cpu_layers / total_layers,
        host_layers=cpu_layers,
        family_shares=_family_shares(facts),
        host_prompt_on_cpu=on_cpu,
        gpu_bytes=tuple(gpu_bytes),
        pcie_seconds_per_ubatch=pcie_ubatch,
        cpu_moe_flops_per_token=cpu_moe_flops,
        pcie_link=link,
        pcie_bytes_per_ubatch=copied if offload_gpu is not None else 0.0,
    )


def generation_seconds(terms: SpeedTerms, c: SpeedConstants) -> float:
    """Seconds per generated token."""
    t = 0.0
    shares = terms.family_shares or ((terms.family, 1.0),)
    for g in terms.gpus:
        t += sum(g.weight_bytes * share / (c.eta(g.generation, fam) * g.bandwidth) for fam, share in shares)
        t += g.kv_bytes / (c.eta(g.generation, "float") * g.bandwidth)  # the KV cache is f16/q8_0 rows
    if terms.host_bytes:
        ram = terms.host_bytes / (c.eta_base["cpu"] * terms.host_bandwidth)
        t += max(ram, terms.host_bytes / (terms.host_cores * CORE_DEQUANT_GBS * GB))
        t += terms.host_layers * CPU_LAYER_SECONDS
    return t + c.t0[terms.t0_key]


def _gpu_prompt_rate(g: GpuRead, family: str, c: SpeedConstants) -> float:
    rate = g.peak_flops * c.pp_efficiency[g.generation]
    if family == "lowbit":
        rate *= c.pp_lowbit.get(g.generation, 1.0)
    if family == "float" and g.generation in TENSOR_CORE_GENERATIONS:
        rate *= c.pp_float
    return rate


def prompt_seconds(terms: SpeedTerms, c: SpeedConstants) -> float:
    """Seconds per prompt token (large batches)."""
    if unrated_gpus(terms):  # no FLOP figure: the time is unknown, never guessed
        return math.inf
    t = sum(terms.flops_per_token * g.layer_share / _gpu_prompt_rate(g, terms.family, c) for g in terms.gpus)
    if terms.offload_gpu is not None:
        # the copy and the matmul it feeds run one after the other (compute_splits waits for its inputs)
        rate = _gpu_prompt_rate(terms.offload_gpu, terms.family, c)
        t += terms.pcie_seconds_per_token + terms.flops_per_token * terms.host_share / rate
    elif terms.host_share > 0 or terms.cpu_moe_flops_per_token > 0:
        host_flops = terms.flops_per_token * terms.host_share + terms.cpu_moe_flops_per_token
        t += host_flops / (terms.host_cores * CPU_GFLOPS_PER_CORE * 1e9)
    return t


DEFAULT_CONSTANTS = SpeedConstants()


def estimate_speed(
    facts: ModelFacts,
    settings: Settings,
    memory: MemoryUse,
    gpus: list[Gpu],
    cpu: Cpu,
    *,
    context_fill: int = 512,
    backend: str | None = None,
) -> Speed:
    """Tokens/s for a placement. `context_fill` is the context already in the KV cache while generating;
    `backend` the llama.cpp backend (None: the vendor's default, see gpu_generation)."""
    terms = speed_terms(facts, settings, memory, gpus, cpu, context_fill=context_fill, backend=backend)
    c = DEFAULT_CONSTANTS
    tg = 1.0 / generation_seconds(terms, c)
    unrated = unrated_gpus(terms)
    pp: float | None = None
    if not unrated:
        pp_time = prompt_seconds(terms, c)
        pp = 1.0 / pp_time if pp_time > 0 else tg
    return Speed(
        prompt_tokens_per_s=round(pp, 1) if pp is not None else None,
        generation_tokens_per_s=round(tg, 1),
        low=round(tg * (1 - BAND), 1),
        high=round(tg * (1 + BAND), 1),
        prompt_low=round(pp * (1 - BAND), 1) if pp is not None else None,
        prompt_high=round(pp * (1 + BAND), 1) if pp is not None else None,
        basis=_basis(terms, c, unrated),
        gpu_bytes_per_token=[int(b) for b in terms.gpu_bytes],
        host_bytes_per_token=int(terms.host_bytes),
        pcie_seconds_per_ubatch=round(terms.pcie_seconds_per_ubatch, 4) if terms.offload_gpu is not None else None,
    )


def unrated_gpus(terms: SpeedTerms) -> list[str]:
    """GPUs doing prompt work whose database row has no FLOP figure: their prompt speed cannot be derived."""
    doing = [*terms.gpus, *([terms.offload_gpu] if terms.offload_gpu is not None else [])]
    return list(dict.fromkeys(g.name for g in doing if g.peak_flops <= 0))


def _basis(terms: SpeedTerms, c: SpeedConstants, unrated: list[str] | None = None) -> str:
    parts = [
        f"{g.name}: {(g.weight_bytes + g.kv_bytes) / GB:.2f} GB/token at "
        f"{c.eta(g.generation, terms.family):.2f} x {g.bandwidth / GB:.0f} GB/s "
        f"({BACKEND_LABELS.get(g.generation, 'CUDA ' + g.generation)} constants)"
        for g in terms.gpus
    ]
    if terms.host_bytes:
        parts.append(
            f"host RAM: {terms.host_bytes / GB:.2f} GB/token at {c.eta_base['cpu']:.2f} x "
            f"{terms.host_bandwidth / GB:.0f} GB/s"
        )
    prompt = f"prompt: {terms.flops_per_token / 1e9:.1f} GFLOP/token"
    if unrated:
        prompt += f", not estimated: hardware_db has no FLOP figure for {', '.join(unrated)}"
    if terms.offload_gpu is not None:
        prompt += (
            f" + copy of {terms.pcie_bytes_per_ubatch / GB:.2f} GB of host weights per ubatch over "
            f"{terms.pcie_link} = {terms.pcie_seconds_per_ubatch:.3f} s"
        )
    return (
        "; ".join(parts) + f"; +{c.t0[terms.t0_key] * 1000:.1f} ms/token fixed; {prompt}"
        f" (fitted on hardware_db/speed_calibration.yaml, +/-{BAND:.0%}; see bench/speed_vs_published.py)"
    )


def disk_seconds_per_token(
    facts: ModelFacts, host_capacity: int, disk_gbs: float | None, *, gpu_bytes: int = 0
) -> float:
    """Streaming from mmap when the model exceeds RAM: the part that does not stay cached is re-read per token.
    `gpu_bytes` of weights sit on the GPUs and are never read from disk."""
    active_bytes = max(0, facts.size_bytes - gpu_bytes) * _active_fraction(facts)
    uncached = max(0.0, active_bytes - max(0, host_capacity) * 0.9)
    bandwidth = (disk_gbs or 0.5) * GB  # 0.5 GB/s: a SATA SSD's sequential read (conservative default)
    return uncached / bandwidth


# llama-quant.cpp's row-alignment fallback (research quant_models.md 1.1): a 256-block type needs rows that are a
# multiple of 256; ffn_down's rows are n_ff long, and where n_ff is not (Qwen1.5-14B: 13696) its intended type is
# replaced. File types whose ffn_down has one intended type (the research table) -> the substitute's family and bits
# per weight: Q2_K (ffn_down Q3_K -> Q4_0), Q3_K_M (Q4_K -> Q5_0), Q3_K_L (Q5_K -> Q5_1), Q4_K_S (Q4_K -> Q5_0).
FFN_DOWN_FALLBACK: dict[str, tuple[str, float]] = {
    "Q2_K": ("legacy", 4.5),
    "Q3_K_M": ("legacy", 5.5),
    "Q3_K_L": ("legacy", 6.0),
    "Q4_K_S": ("legacy", 5.5),
}


def _family_shares(facts: ModelFacts) -> tuple[tuple[str, float], ...]:
    """Bytes of the repeating layers by quant family of their real tensor types. Catalog facts carry no tensor list:
    the file type's family stands for all of them, except the ffn_down that llama-quant's alignment fallback
    moves to another family (FFN_DOWN_FALLBACK). Norms and biases (F32) are ignored: a rounding error of the
    bytes."""
    cached: tuple[tuple[str, float], ...] | None = facts._derived.get("family_shares")
    if cached is not None:
        return cached
    if not facts.tensors:
        shares = _catalog_family_shares(facts)
        facts._derived["family_shares"] = shares
        return shares
    totals: dict[str, int] = {}
    for t in facts.tensors:
        if t.name.startswith("blk.") and t.ggml_type != "F32":
            fam = quant_family(t.ggml_type)
            totals[fam] = totals.get(fam, 0) + t.n_bytes
    whole = sum(totals.values())
    shares = tuple(sorted((fam, n / whole) for fam, n in totals.items())) if whole else ()
    facts._derived["family_shares"] = shares
    return shares


def _catalog_family_shares(facts: ModelFacts) -> tuple[tuple[str, float], ...]:
    fallback = FFN_DOWN_FALLBACK.get(facts.quant.upper())
    ff = facts.ff(0)
    if fallback is None or facts.is_moe or not ff or ff % 256 == 0 or not facts.layer_bytes:
        return ()
    family, bpw = fallback
    layer = sum(facts.layer_bytes) / len(facts.layer_bytes)
    share = min(1.0, ff * facts.n_embd * bpw / 8 / layer) if layer else 0.0
    return tuple(sorted(((family, share), (quant_family(facts.quant), 1.0 - share))))


def _active_fraction(facts: ModelFacts) -> float:
    """Share of the weights read per token (MoE: shared part + used experts only)."""
    if not facts.is_moe or not facts.layer_expert_bytes or not facts.size_bytes:
        return 1.0
    experts = sum(facts.layer_expert_bytes)
    used = experts * facts.n_expert_used / max(1, facts.n_expert)
    return (facts.size_bytes - experts + used) / facts.size_bytes


def _kv_bytes_per_cell(facts: ModelFacts, settings: Settings) -> int:
    from planner.core.memory import kv_bytes_per_token

    return kv_bytes_per_token(facts, settings.cache_type_k, settings.cache_type_v)
