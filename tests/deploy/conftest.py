"""Plans for the deploy tests, built by hand from the fixtures (the solver's own plans are used end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.types.hardware import Cpu, Gpu, Hardware, Memory
from planner.types.plan import DeviceMemory, HostMemory, MemoryUse, Plan, Settings, Speed

GIB = 2**30

# A Tesla P4 as nvidia-smi reports it on driver 535 (shared/fixtures/nvidia-smi: 7680 MiB, CUDA 12.2).
TESLA_P4 = Gpu(
    index=0,
    name="Tesla P4",
    vendor="nvidia",
    architecture="Pascal",
    compute_capability="6.1",
    memory_total_bytes=7680 * 2**20,
    memory_free_bytes=7611 * 2**20,
    driver_version="535.104.05",
    cuda_driver_version="12.2",
)


def hardware(gpus: list[Gpu]) -> Hardware:
    return Hardware(
        gpus=gpus,
        cpu=Cpu(model="12th Gen Intel(R) Core(TM) i3-12100", physical_cores=4, logical_cores=8),
        memory=Memory(total_bytes=8 * GIB, available_bytes=6 * GIB),
    )


def make_plan(model_path: Path, gpus: list[Gpu], *, repo: str | None = None, runtime: str = "llama-server") -> Plan:
    """A plan for the real SmolLM2 GGUF: all 31 layers (30 + output) on the first GPU when there is one."""
    size = model_path.stat().st_size
    on_gpu = bool(gpus)
    settings = Settings(
        n_gpu_layers=31 if on_gpu else 0,
        ctx_size=2048,
        batch_size=512,
        ubatch_size=256,
        flash_attn="on" if on_gpu else "off",
        cache_type_k="q8_0" if on_gpu else "f16",
        cache_type_v="q8_0" if on_gpu else "f16",
        threads=4,
        parallel=1,
    )
    devices = [DeviceMemory(name=g.name, index=g.index, layers=30, output_layer=True, weights_bytes=size) for g in gpus]
    return Plan(
        model={
            "source": repo or str(model_path),
            "repo": repo,
            "file": model_path.name,
            "files": [model_path.name],
            "quant": "Q4_1",
            "size_bytes": size,
        },
        hardware=hardware(gpus),
        runtime=runtime,
        where="GPU" if on_gpu else "CPU",
        settings=settings,
        memory=MemoryUse(devices=devices, host=HostMemory(total_bytes=300 * 2**20)),
        speed=Speed(prompt_tokens_per_s=400.0, generation_tokens_per_s=40.0, low=30.0, high=50.0, basis="test"),
        llama_cpp_build="b10470",
    )


@pytest.fixture
def p4_plan(smollm2_path: Path) -> Plan:
    return make_plan(smollm2_path, [TESLA_P4])
