"""Speed estimate: prompt and generation tokens/s of a placement, with a band and the basis shown.

Generation (batch 1) is memory-bound: every token reads all weights it uses once. Per token:

    t = sum over devices of bytes_read(device) / (eta * bandwidth(device)) + t0

with eta the fraction of spec bandwidth llama.cpp's kernels reach for that GPU generation and quant family, and t0
a fixed per-token cost (kernel launches, sampling; larger without CUDA graphs). Host-resident layers read from RAM
at the CPU's bandwidth. Prompt processing is compute-bound: 2 x active parameters FLOPs per token at an effective
rate per GPU generation; host layers are op-offloaded to the GPU, paying a PCIe copy of their weights per ubatch.

Constants are fitted to the published llama-bench rows in hardware_db/speed_calibration.yaml (sources there);
`bench/speed_vs_published.py` prints every row's prediction error.
"""

from __future__ import annotations

from planner.hardware.profile import Cpu, Gpu
from planner.models.facts import ModelFacts
from planner.plan import MemoryUse, Settings, Speed

GB = 1e9

# Fraction of spec memory bandwidth reached in token generation, by GPU generation and quant family.
# Fitted on hardware_db/speed_calibration.yaml (bench/speed_vs_published.py prints the residuals):
# Pascal P40 Q4_0 0.60-0.63 and Q8_0 0.72, but Q2_K/Q3_K_S only 0.26 (compute-bound dp4a K-quant kernels);
# Ampere/Ada Q4 0.62-0.85, F16 0.75-0.87; HBM datacenter cards 0.38-0.55 on 7B (launch-bound).
ETA: dict[str, dict[str, float]] = {
    "maxwell": {"float": 0.45, "q8": 0.45, "legacy": 0.45, "kquant": 0.35, "lowbit": 0.22},
    "pascal": {"float": 0.55, "q8": 0.70, "legacy": 0.62, "kquant": 0.58, "lowbit": 0.33},
    "volta_turing": {"float": 0.70, "q8": 0.68, "legacy": 0.62, "kquant": 0.60, "lowbit": 0.45},
    "ampere_plus": {"float": 0.80, "q8": 0.75, "legacy": 0.72, "kquant": 0.70, "lowbit": 0.55},
    "hbm": {"float": 0.60, "q8": 0.55, "legacy": 0.50, "kquant": 0.48, "lowbit": 0.40},
    "apple": {"float": 0.70, "q8": 0.68, "legacy": 0.65, "kquant": 0.62, "lowbit": 0.50},
    "amd": {"float": 0.55, "q8": 0.55, "legacy": 0.50, "kquant": 0.45, "lowbit": 0.38},
    "cpu": {"float": 0.65, "q8": 0.65, "legacy": 0.60, "kquant": 0.55, "lowbit": 0.45},
}
# Fixed per-token time in seconds: CUDA graphs exist only from Ampere on in these builds (disabled below Volta;
# Turing/Volta gained them in July 2026, PR #25749); without them launches cost ~2-3 ms per token.
T0 = {
    "maxwell": 0.004,
    "pascal": 0.0025,
    "volta_turing": 0.0015,
    "ampere_plus": 0.0008,
    "hbm": 0.0025,
    "apple": 0.0015,
    "amd": 0.003,
    "cpu": 0.001,
}
# Effective prompt throughput as a fraction of the card's dense FP16 rate (tensor cores) or, on Pascal, of FP32
# (MMQ via dp4a). From pp512 rows: RTX 4090 ~1.0 x 165 TF, RTX 3090 ~1.0 x 71 TF, P40 ~1.1 x 11.8 TF (FP32),
# A100 0.21 x 312 TF, H100 0.13 x 756 TF (HBM cards are launch-bound on 7B prompts).
PP_EFFICIENCY = {
    "maxwell": 0.6,
    "pascal": 1.1,
    "volta_turing": 0.55,
    "ampere_plus": 0.95,
    "hbm": 0.18,
    "apple": 0.6,
    "amd": 0.3,
    "cpu": 0.5,
}
PP_LOWBIT_PENALTY = {"pascal": 0.64, "maxwell": 0.6}  # P40 Q3_K_S pp 583 vs Q4_0 912 (PR #4766)
DEFAULT_HOST_BANDWIDTH_GBS = 38.4  # dual-channel DDR4-2400: the floor of current desktops (JEDEC)
PCIE_GBS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938}  # per lane, PCI-SIG
CPU_GFLOPS_PER_CORE = 60.0  # AVX2 FMA at ~3.5 GHz, llama.cpp Q4 GEMM reaches about half of 2x8x2x3.5 GFLOP/s
BAND = 0.30  # +/- band: the spread of residuals in bench/speed_vs_published.py (most rows within 30 %)


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


def _gpu_compute_tflops(gpu: Gpu, gen: str) -> float:
    if gen in ("pascal", "maxwell"):
        base = gpu.fp32_tflops or 5.0
    else:
        base = gpu.fp16_tflops or (gpu.fp32_tflops or 10.0) * 2
    return base * PP_EFFICIENCY[gen]


def host_bandwidth(cpu: Cpu) -> float:
    return cpu.memory_bandwidth_gbs or DEFAULT_HOST_BANDWIDTH_GBS


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
    family = quant_family(facts.quant)
    active = _active_fraction(facts)
    kv_per_token = _kv_bytes_per_cell(facts, settings)
    kv_read = kv_per_token * min(context_fill, settings.ctx_size)
    total_layers = max(1, facts.n_layer)

    # --- generation -----------------------------------------------------------------------------------
    t = 0.0
    basis: list[str] = []
    gen0 = "cpu"
    for gpu, dev in zip(gpus, memory.devices):
        if dev.weights_bytes == 0:
            continue
        gen = gpu_generation(gpu)
        gen0 = gen if gen0 == "cpu" else gen0
        bw = (gpu.memory_bandwidth_gbs or 200.0) * GB
        eta = ETA[gen][family]
        read = dev.weights_bytes * active + kv_read * dev.layers / total_layers
        t += read / (eta * bw)
        basis.append(f"{gpu.name}: {read / GB:.2f} GB/token at {eta:.2f} x {bw / GB:.0f} GB/s")
    host_layers_bytes = max(0, memory.host.weights_bytes - facts.input_bytes)
    cpu_layers = total_layers - sum(d.layers for d in memory.devices)
    if host_layers_bytes or not gpus:
        bw = host_bandwidth(cpu) * GB
        eta = ETA["cpu"][family]
        read = host_layers_bytes * active + kv_read * cpu_layers / total_layers
        if not gpus:
            read = (memory.host.weights_bytes - facts.input_bytes) * active + kv_read
        t += read / (eta * bw)
        basis.append(f"host RAM: {read / GB:.2f} GB/token at {eta:.2f} x {bw / GB:.0f} GB/s")
        # few cores cannot saturate RAM: llama.cpp needs ~1 core per 8 GB/s of Q4 dequantisation
        cores = min(settings.threads, cpu.physical_cores) or 1
        t = max(t, read / (cores * 8 * GB))
    t += T0[gen0]
    tg = 1.0 / t

    # --- prompt ---------------------------------------------------------------------------------------
    flops_per_token = 2 * max(facts.n_params, 1) * active
    pp_time = 0.0
    gpu_share = 0.0
    for gpu, dev in zip(gpus, memory.devices):
        if dev.layers == 0:
            continue
        gen = gpu_generation(gpu)
        rate = _gpu_compute_tflops(gpu, gen) * 1e12
        if family == "lowbit":
            rate *= PP_LOWBIT_PENALTY.get(gen, 1.0)
        share = dev.layers / total_layers
        gpu_share += share
        pp_time += flops_per_token * share / rate
    if cpu_layers > 0:
        share = cpu_layers / total_layers
        if gpus and settings.ubatch_size >= 32:
            # op offload: host weights cross PCIe once per ubatch, then run on the first GPU
            g = gpus[0]
            lanes = g.pcie_width_current or g.pcie_width_max or 16
            pcie = PCIE_GBS.get(g.pcie_gen_current or g.pcie_gen_max or 3, 0.985) * lanes * GB
            pp_time += host_layers_bytes / pcie / max(1, settings.ubatch_size)
            pp_time += flops_per_token * share / (_gpu_compute_tflops(g, gpu_generation(g)) * 1e12)
        else:
            cores = min(settings.threads, cpu.physical_cores) or 1
            pp_time += flops_per_token * share / (cores * CPU_GFLOPS_PER_CORE * 1e9)
    pp = 1.0 / pp_time if pp_time > 0 else tg

    basis_text = "; ".join(basis) + (
        f"; +{T0[gen0] * 1000:.1f} ms/token fixed; prompt: {flops_per_token / 1e9:.1f} GFLOP/token"
        " (fitted on hardware_db/speed_calibration.yaml, see bench/speed_vs_published.py)"
    )
    return Speed(
        prompt_tokens_per_s=round(pp, 1),
        generation_tokens_per_s=round(tg, 1),
        low=round(tg * (1 - BAND), 1),
        high=round(tg * (1 + BAND), 1),
        prompt_low=round(pp * (1 - BAND), 1),
        prompt_high=round(pp * (1 + BAND), 1),
        basis=basis_text,
    )


def disk_seconds_per_token(facts: ModelFacts, host_capacity: int, disk_gbs: float | None) -> float:
    """Streaming from mmap when the model exceeds RAM: the part that does not stay cached is re-read per token."""
    active_bytes = facts.size_bytes * _active_fraction(facts)
    uncached = max(0.0, active_bytes - max(0, host_capacity) * 0.9)
    bandwidth = (disk_gbs or 0.5) * GB  # 0.5 GB/s: a SATA SSD's sequential read (conservative default)
    return uncached / bandwidth


def _active_fraction(facts: ModelFacts) -> float:
    """Share of the weights read per token (MoE: shared part + used experts only)."""
    if not facts.is_moe or not facts.layer_expert_bytes or not facts.size_bytes:
        return 1.0
    experts = sum(facts.layer_expert_bytes)
    used = experts * facts.n_expert_used / max(1, facts.n_expert)
    return (facts.size_bytes - experts + used) / facts.size_bytes


def _kv_bytes_per_cell(facts: ModelFacts, settings: Settings) -> int:
    from planner.estimate.memory import kv_bytes_per_token

    return kv_bytes_per_token(facts, settings.cache_type_k, settings.cache_type_v)
