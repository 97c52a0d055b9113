"""Speed estimate: prompt and generation tokens/s of a placement, with a band and the basis shown.

Generation (batch 1) is memory-bound: every token reads all weights it uses once, plus the filled KV cache. Per
token:

    t = sum over GPUs of bytes_read(gpu) / (eta * bandwidth(gpu)) + host term + t0

with eta = ETA_BASE[GPU generation] x ETA_FAMILY[quant family], the fraction of spec bandwidth llama.cpp's kernels
reach, and t0 a fixed per-token cost (kernel launches, sampling; larger without CUDA graphs). Host-resident
weights are read from RAM at the CPU's bandwidth. Prompt processing is compute-bound: 2 x active parameters FLOPs
per token at an effective rate per GPU generation; host layers are op-offloaded to the GPU, paying a PCIe copy of
their weights per ubatch.

The estimate is split in two: `speed_terms` (the bytes, FLOPs and bandwidths of one placement) and
`generation_seconds` / `prompt_seconds` (the same terms under a set of constants). bench/speed_vs_published.py fits
the constants on hardware_db/speed_calibration.yaml through exactly these functions and prints every row's error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "apple": 0.65,  # prior: no Metal row in the calibration set
    "amd": 0.37,  # prior: MI50 Q4_0 at 0.37 (research utilization summary)
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
    "apple": 0.0015,  # prior
    "amd": 0.003,  # prior
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
    "apple": 0.6,  # prior
    "amd": 0.3,  # prior
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
    pcie_seconds_per_token: float  # prompt: host weights copied to the GPU once per ubatch
    offload_gpu: GpuRead | None  # the GPU op-offloaded host layers run on
    host_share: float  # share of the repeating layers on the host
    host_layers: int  # repeating layers on the host
    host_prompt_on_cpu: bool  # ubatch too small for op offload: host layers computed by the CPU
    # share of the layer bytes by quant family, from the real tensor types when the header is known: a Q2_K file
    # keeps ffn_down in Q4_0 when n_ff is not a multiple of 256, and that part reads at Q4_0's speed
    family_shares: tuple[tuple[str, float], ...] = ()


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


def gpu_generation(gpu: Gpu) -> str:
    if gpu.vendor == "apple" or gpu.unified_memory and gpu.vendor != "nvidia":
        return "apple"
    if gpu.vendor != "nvidia":
        return "amd"
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
    if gen in ("pascal", "maxwell"):
        return (gpu.fp32_tflops or 5.0) * 1e12
    return (gpu.fp16_tflops or (gpu.fp32_tflops or 10.0) * 2) * 1e12


def host_bandwidth(cpu: Cpu) -> float:
    return cpu.memory_bandwidth_gbs or DEFAULT_HOST_BANDWIDTH_GBS


def speed_terms(
    facts: ModelFacts,
    settings: Settings,
    memory: MemoryUse,
    gpus: list[Gpu],
    cpu: Cpu,
    *,
    context_fill: int = 512,
) -> SpeedTerms:
    """The bytes and FLOPs of one placement, independent of the fitted constants."""
    active = _active_fraction(facts)
    kv_read = _kv_bytes_per_cell(facts, settings) * min(context_fill, settings.ctx_size)
    total_layers = max(1, facts.n_layer)

    reads: list[GpuRead] = []
    for gpu, dev in zip(gpus, memory.devices):
        if dev.weights_bytes == 0 and dev.layers == 0:
            continue
        gen = gpu_generation(gpu)
        reads.append(
            GpuRead(
                name=gpu.name,
                generation=gen,
                weight_bytes=dev.weights_bytes * active,
                kv_bytes=kv_read * dev.layers / total_layers,
                bandwidth=(gpu.memory_bandwidth_gbs or 200.0) * GB,
                layer_share=dev.layers / total_layers,
                peak_flops=_peak_flops(gpu, gen),
            )
        )
    gpu_layers = sum(d.layers for d in memory.devices) if gpus else 0
    cpu_layers = total_layers - gpu_layers
    host_weights = max(0, memory.host.weights_bytes - facts.input_bytes)  # token_embd is a row lookup
    host_bytes = host_weights * active + kv_read * cpu_layers / total_layers

    offload_gpu = None
    pcie_seconds = 0.0
    on_cpu = True
    if cpu_layers > 0 and gpus and settings.ubatch_size >= 32:
        g = gpus[0]
        gen = gpu_generation(g)
        offload_gpu = GpuRead(g.name, gen, 0.0, 0.0, (g.memory_bandwidth_gbs or 200.0) * GB, 0.0, _peak_flops(g, gen))
        lanes = g.pcie_width_current or g.pcie_width_max or 16
        pcie = PCIE_GBS.get(g.pcie_gen_current or g.pcie_gen_max or 3, 0.985) * lanes * GB
        pcie_seconds = host_weights / pcie / max(1, settings.ubatch_size)
        on_cpu = False
    return SpeedTerms(
        family=quant_family(facts.quant),
        gpus=tuple(reads),
        host_bytes=host_bytes,
        host_bandwidth=host_bandwidth(cpu) * GB,
        host_cores=min(settings.threads, cpu.physical_cores) or 1,
        t0_key=reads[0].generation if reads else "cpu",
        flops_per_token=2 * max(facts.n_params, 1) * active,
        pcie_seconds_per_token=pcie_seconds,
        offload_gpu=offload_gpu,
        host_share=cpu_layers / total_layers,
        host_layers=cpu_layers,
        family_shares=_family_shares(facts),
        host_prompt_on_cpu=on_cpu,
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
    t = sum(terms.flops_per_token * g.layer_share / _gpu_prompt_rate(g, terms.family, c) for g in terms.gpus)
    if terms.host_share > 0:
        if terms.offload_gpu is not None:
            rate = _gpu_prompt_rate(terms.offload_gpu, terms.family, c)
            t += terms.pcie_seconds_per_token + terms.flops_per_token * terms.host_share / rate
        else:
            t += terms.flops_per_token * terms.host_share / (terms.host_cores * CPU_GFLOPS_PER_CORE * 1e9)
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
) -> Speed:
    """Tokens/s for a placement. `context_fill` is the context already in the KV cache while generating."""
    terms = speed_terms(facts, settings, memory, gpus, cpu, context_fill=context_fill)
    c = DEFAULT_CONSTANTS
    tg = 1.0 / generation_seconds(terms, c)
    pp_time = prompt_seconds(terms, c)
    pp = 1.0 / pp_time if pp_time > 0 else tg
    return Speed(
        prompt_tokens_per_s=round(pp, 1),
        generation_tokens_per_s=round(tg, 1),
        low=round(tg * (1 - BAND), 1),
        high=round(tg * (1 + BAND), 1),
        prompt_low=round(pp * (1 - BAND), 1),
        prompt_high=round(pp * (1 + BAND), 1),
        basis=_basis(terms, c),
    )


def _basis(terms: SpeedTerms, c: SpeedConstants) -> str:
    parts = [
        f"{g.name}: {(g.weight_bytes + g.kv_bytes) / GB:.2f} GB/token at "
        f"{c.eta(g.generation, terms.family):.2f} x {g.bandwidth / GB:.0f} GB/s"
        for g in terms.gpus
    ]
    if terms.host_bytes:
        parts.append(
            f"host RAM: {terms.host_bytes / GB:.2f} GB/token at {c.eta_base['cpu']:.2f} x "
            f"{terms.host_bandwidth / GB:.0f} GB/s"
        )
    return (
        "; ".join(parts)
        + f"; +{c.t0[terms.t0_key] * 1000:.1f} ms/token fixed; prompt: {terms.flops_per_token / 1e9:.1f} GFLOP/token"
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


def _family_shares(facts: ModelFacts) -> tuple[tuple[str, float], ...]:
    """Bytes of the repeating layers by quant family of their real tensor types (empty for catalog facts, which
    carry no tensor list: the file type's family then stands for all of them). Norms and biases (F32) are
    ignored: they are a rounding error of the bytes."""
    cached: tuple[tuple[str, float], ...] | None = facts._derived.get("family_shares")
    if cached is not None:
        return cached
    totals: dict[str, int] = {}
    for t in facts.tensors:
        if t.name.startswith("blk.") and t.ggml_type != "F32":
            fam = quant_family(t.ggml_type)
            totals[fam] = totals.get(fam, 0) + t.n_bytes
    whole = sum(totals.values())
    shares = tuple(sorted((fam, n / whole) for fam, n in totals.items())) if whole else ()
    facts._derived["family_shares"] = shares
    return shares


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
