"""`planner plan [MODEL]`: the quant, layers, context and flags for this (or what-if) hardware."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.options import (
    BatchOpt,
    CacheKOpt,
    CacheVOpt,
    CpuCoresOpt,
    CtxOpt,
    FlashAttnOpt,
    GpuOpt,
    HardwareOpt,
    JsonOpt,
    MarginOpt,
    NCpuMoeOpt,
    NglOpt,
    OfflineOpt,
    ParallelOpt,
    QuantOpt,
    RamOpt,
    RuntimeOpt,
    TensorSplitOpt,
    ThreadsOpt,
    UbatchOpt,
)
from planner.errors import BadInput, NothingFits

if TYPE_CHECKING:
    from planner.types.plan import Overrides, PlanRequest

EPILOG = """Examples:

  planner plan                                        best catalog model for this machine

  planner plan Qwen/Qwen1.5-14B-Chat-GGUF --gpu "Tesla P4" --ram 8GB --cpu-cores 4

  planner plan qwen1.5-14b-chat:Q2_K --ctx 2048 --json

  planner plan ./model.gguf --gpu "2x RTX 3090" --flash-attn on
"""

KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


def overrides_from_options(
    *,
    quant: str | None = None,
    ctx: int | None = None,
    batch: int | None = None,
    ubatch: int | None = None,
    ngl: int | None = None,
    cache_type_k: str | None = None,
    cache_type_v: str | None = None,
    flash_attn: str | None = None,
    parallel: int | None = None,
    n_cpu_moe: int | None = None,
    tensor_split: str | None = None,
    threads: int | None = None,
) -> Overrides:
    """Validate the override options (one clear line for a bad value) into Overrides."""
    from planner.types.plan import Overrides

    for name, value in (("--cache-type-k", cache_type_k), ("--cache-type-v", cache_type_v)):
        if value is not None and value.lower() not in KV_TYPES:
            raise BadInput(f"{name} {value!r} is not a KV cache type (one of: {', '.join(KV_TYPES)})")
    if flash_attn is not None and flash_attn not in ("on", "off", "auto"):
        raise BadInput(f"--flash-attn {flash_attn!r}: expected on, off or auto")
    split = None
    if tensor_split:
        try:
            split = [float(x) for x in tensor_split.replace("/", ",").split(",") if x.strip()]
        except ValueError:
            raise BadInput(f"--tensor-split {tensor_split!r}: expected numbers such as 3,1") from None
        if not split or not all(math.isfinite(x) and x >= 0 for x in split) or sum(split) <= 0:
            raise BadInput(f"--tensor-split {tensor_split!r}: expected non-negative numbers with a positive sum")
    if batch and ubatch and ubatch > batch:
        raise BadInput(f"--ubatch {ubatch} is larger than --batch {batch}")
    return Overrides(
        quant=quant,
        ctx_size=ctx,
        batch_size=batch,
        ubatch_size=ubatch,
        n_gpu_layers=ngl,
        cache_type_k=cache_type_k.lower() if cache_type_k else None,
        cache_type_v=cache_type_v.lower() if cache_type_v else None,
        flash_attn=None if flash_attn in (None, "auto") else flash_attn,  # type: ignore[arg-type]
        parallel=parallel,
        n_cpu_moe=n_cpu_moe,
        tensor_split=split,
        threads=threads,
    )


def build_request(
    model: str | None,
    *,
    gpu: list[str] | None,
    ram: str | None,
    cpu_cores: int | None,
    hardware: object,
    runtime: str,
    margin: str | None,
    offline: bool,
    overrides: Overrides,
    container: bool = False,
) -> PlanRequest:
    from planner.hardware.whatif import parse_size, resolve_hardware
    from planner.types.plan import PlanRequest

    if runtime not in ("llama-server", "llama-cpp-python"):
        raise BadInput(f"--runtime {runtime!r}: expected llama-server or llama-cpp-python")
    hw = resolve_hardware(gpu, ram, cpu_cores, hardware, container=container)  # type: ignore[arg-type]
    if overrides.tensor_split is not None and len(overrides.tensor_split) != len(hw.gpus):
        raise BadInput(f"--tensor-split has {len(overrides.tensor_split)} values for {len(hw.gpus)} GPU(s)")
    return PlanRequest(
        model=model,
        hardware=hw,
        runtime=runtime,  # type: ignore[arg-type]
        overrides=overrides,
        margin_bytes=parse_size(margin) if margin else None,
        offline=offline,
    )


def register(app: typer.Typer) -> None:
    @app.command("plan", epilog=EPILOG)
    def plan(
        model: Annotated[
            str | None,
            typer.Argument(help="owner/repo, owner/repo:QUANT, hf.co/..., a .gguf path or a catalog alias."),
        ] = None,
        gpu: GpuOpt = None,
        ram: RamOpt = None,
        cpu_cores: CpuCoresOpt = None,
        hardware: HardwareOpt = None,
        quant: QuantOpt = None,
        ctx: CtxOpt = None,
        batch: BatchOpt = None,
        ubatch: UbatchOpt = None,
        ngl: NglOpt = None,
        cache_type_k: CacheKOpt = None,
        cache_type_v: CacheVOpt = None,
        flash_attn: FlashAttnOpt = None,
        parallel: ParallelOpt = None,
        n_cpu_moe: NCpuMoeOpt = None,
        tensor_split: TensorSplitOpt = None,
        threads: ThreadsOpt = None,
        runtime: RuntimeOpt = "llama-server",
        margin: MarginOpt = None,
        offline: OfflineOpt = False,
        json_output: JsonOpt = False,
    ) -> None:
        """Plan how to run MODEL (or the best catalog model) on this machine or on what-if hardware."""
        from planner.api import plan_request

        overrides = overrides_from_options(
            quant=quant,
            ctx=ctx,
            batch=batch,
            ubatch=ubatch,
            ngl=ngl,
            cache_type_k=cache_type_k,
            cache_type_v=cache_type_v,
            flash_attn=flash_attn,
            parallel=parallel,
            n_cpu_moe=n_cpu_moe,
            tensor_split=tensor_split,
            threads=threads,
        )
        request = build_request(
            model,
            gpu=gpu,
            ram=ram,
            cpu_cores=cpu_cores,
            hardware=hardware,
            runtime=runtime,
            margin=margin,
            offline=offline,
            overrides=overrides,
        )
        result = plan_request(request)
        if json_output:
            print(result.model_dump_json(indent=2))
        else:
            from planner.rendering.console import show_plan

            show_plan(result)
        if not result.fits:  # the plan (stdout) says why; stderr gets the one line every failure gets
            shown = "see reasons and alternatives in the JSON" if json_output else "the plan above says why"
            raise NothingFits(f"{model or 'the model'} does not fit this hardware; {shown}")
