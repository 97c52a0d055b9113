"""What this GPU generation can and cannot do for LLMs: engines (vLLM and its kernels), bf16, fast fp16."""

from __future__ import annotations

from planner.checks.context import CheckContext, Finding
from planner.data.engines import cc_version, engine_support, load_engines, parse_version
from planner.types.hardware import Gpu

BF16_TYPES = ("bf16",)
FLOAT_QUANTS = ("F16", "BF16", "F32")


def _distinct_ccs(ctx: CheckContext) -> list[tuple[tuple[int, ...], list[Gpu]]]:
    groups: dict[tuple[int, ...], list[Gpu]] = {}
    for gpu in ctx.nvidia_gpus:
        cc = cc_version(gpu.compute_capability)
        if cc is not None:
            groups.setdefault(cc[:2], []).append(gpu)
    return sorted(groups.items())


def _names(gpus: list[Gpu]) -> str:
    return ", ".join(sorted({gpu.name for gpu in gpus}))


def _plan_quant(ctx: CheckContext) -> str:
    if ctx.plan is None:
        return ""
    return ctx.plan.model.quant.upper()


def check_engines(ctx: CheckContext) -> list[Finding]:
    """vLLM (and GPTQ/AWQ/Marlin), TabbyAPI, TensorRT-LLM gate on compute capability; llama.cpp does not."""
    findings = []
    for cc, gpus in _distinct_ccs(ctx):
        support = engine_support(cc)
        refused = [s for s in support if not s.supported]
        works = [s.name for s in support if s.supported]
        cc_text = f"{cc[0]}.{cc[1]}"
        if not refused:
            findings.append(
                Finding(
                    id="engines-ok",
                    severity="ok",
                    title=f"{_names(gpus)} (compute capability {cc_text}) runs every engine planner knows",
                    detail=", ".join(works),
                )
            )
            continue
        vllm_refused = any(s.engine == "vllm" for s in refused)
        lines = [f"{s.name} (needs {s.min_cc})" for s in refused]
        sources = sorted({s.source for s in refused})
        detail = (
            f"{_names(gpus)} has compute capability {cc_text}. Refused: " + "; ".join(lines) + ". Works: "
            f"{', '.join(works)}."
        )
        if vllm_refused:
            findings.append(
                Finding(
                    id="vllm-unsupported",
                    severity="warn",
                    title=f"vLLM and its GPTQ/AWQ kernels refuse compute capability {cc_text} (they need 7.5)",
                    detail=detail
                    + " GPTQ and AWQ checkpoints need those kernels, so on this card use GGUF files with llama.cpp.",
                    fix="Serve a GGUF quant with llama.cpp: `planner plan MODEL`, then `planner deploy MODEL`.",
                    commands=["planner plan MODEL", "planner deploy MODEL"],
                    gpu_index=gpus[0].index,
                    sources=sources,
                )
            )
        else:
            findings.append(
                Finding(
                    id="ampere-only-engines",
                    severity="info",
                    title=f"Some engines need Ampere (8.0+): not available on compute capability {cc_text}",
                    detail=detail,
                    gpu_index=gpus[0].index,
                    sources=sources,
                )
            )
    return findings


def check_bf16(ctx: CheckContext) -> list[Finding]:
    """No BF16 before Ampere: BF16 GGUFs and a bf16 KV cache are converted or slow there."""
    facts = load_engines().llamacpp_cuda
    floor = parse_version(facts.bf16_min_cc) or (8, 0)
    findings = []
    plan_uses_bf16 = _plan_quant(ctx) == "BF16" or (
        ctx.plan is not None
        and (ctx.plan.settings.cache_type_k in BF16_TYPES or ctx.plan.settings.cache_type_v in BF16_TYPES)
    )
    for cc, gpus in _distinct_ccs(ctx):
        if cc >= floor[:2]:
            continue
        findings.append(
            Finding(
                id="no-bf16",
                severity="warn" if plan_uses_bf16 else "info",
                title=f"No BF16 hardware on compute capability {cc[0]}.{cc[1]}: avoid BF16 weights and bf16 KV cache",
                detail=(
                    f"{_names(gpus)}: BF16 tensor cores arrived with Ampere (8.0); here BF16 weights are converted "
                    "and run slowly. vLLM's FlashAttention-2 backend also needs 8.0."
                    + (" The plan uses BF16." if plan_uses_bf16 else "")
                ),
                fix="Use F16 or a quantized GGUF (Q8_0, Q4_K_M) and the default f16 (or q8_0) KV cache.",
                gpu_index=gpus[0].index,
                sources=[facts.bf16_source],
            )
        )
    return findings


def check_slow_fp16(ctx: CheckContext) -> list[Finding]:
    """Pascal GP10x (cc 6.1) runs FP16 at 1/64 rate: quantized GGUFs are the fast path there."""
    engines = load_engines()
    slow = {version[:2] for cc in engines.slow_fp16_cc if (version := parse_version(cc))}
    findings = []
    quant = _plan_quant(ctx)
    for cc, gpus in _distinct_ccs(ctx):
        if cc not in slow:
            continue
        plan_float = quant in FLOAT_QUANTS
        findings.append(
            Finding(
                id="slow-fp16",
                severity="warn" if plan_float else "info",
                title="FP16 runs at 1/64 rate on this Pascal chip: use quantized GGUF files",
                detail=(
                    f"{_names(gpus)} (GP102/GP104/GP106 class, not the P100) does FP16 math at 1/64 of its FP32 "
                    "rate. llama.cpp avoids it here: quantized weights use the int8 dp4a MMQ kernels and attention "
                    "uses the FP32 tile/vec kernels (flash attention works), while F16/BF16 weights go through FP32 "
                    "cuBLAS with extra pool memory. CUDA graphs are off below Volta."
                    + (f" The plan uses {quant} weights." if plan_float else "")
                ),
                fix="Prefer Q4_K_M, Q5_K_M or Q8_0 GGUF files over F16/BF16.",
                gpu_index=gpus[0].index,
                sources=[engines.slow_fp16_source, engines.llamacpp_cuda.cuda_graphs_source],
            )
        )
    return findings


def check_no_dp4a(ctx: CheckContext) -> list[Finding]:
    """Below 6.1 (Maxwell, P100) llama.cpp has no int8 MMQ path: quantized prompts dequantize through cuBLAS."""
    facts = load_engines().llamacpp_cuda
    floor = parse_version(facts.mmq_min_cc) or (6, 1)
    findings = []
    for cc, gpus in _distinct_ccs(ctx):
        if cc >= floor[:2]:
            continue
        findings.append(
            Finding(
                id="no-mmq",
                severity="info",
                title=f"Compute capability {cc[0]}.{cc[1]}: no int8 (dp4a) kernels, quantized prompts are slower",
                detail=(
                    f"{_names(gpus)}: llama.cpp's MMQ kernels need dp4a (6.1); here prompt processing dequantizes "
                    "to FP16/FP32 and uses cuBLAS, with more pool memory."
                ),
                gpu_index=gpus[0].index,
                sources=[facts.mmq_source],
            )
        )
    return findings


CHECKS = [check_engines, check_bf16, check_slow_fp16, check_no_dp4a]
