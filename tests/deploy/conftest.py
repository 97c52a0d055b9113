"""Plans for the deploy tests: the solver's own (planner.plan_request) for the real SmolLM2 GGUF, knobs fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.types.hardware import Cpu, Gpu, Hardware, Memory
from planner.types.plan import Plan

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
    """The solver's plan (planner.plan_request) for a real GGUF file, with the knobs fixed so the rendered flags are
    known: all 31 units of SmolLM2 (30 layers + output) on the first GPU when there is one. With `repo`, the plan
    names the file as a hub plan does (repo, file name in the repo) without a hub to ask."""
    import planner
    from planner.types.plan import Overrides, PlanRequest

    on_gpu = bool(gpus)
    overrides = Overrides(
        n_gpu_layers=31 if on_gpu else 0, ctx_size=2048, batch_size=512, ubatch_size=256,
        flash_attn="on" if on_gpu else "off", cache_type_k="q8_0" if on_gpu else "f16",
        cache_type_v="q8_0" if on_gpu else "f16", threads=4, parallel=1,
    )  # fmt: skip
    request = PlanRequest(
        model=str(model_path), hardware=hardware(gpus), overrides=overrides,
        runtime="llama-cpp-python" if runtime == "llama-cpp-python" else "llama-server",
    )  # fmt: skip
    plan = planner.plan_request(request)
    assert plan.fits, plan.reasons
    if repo is not None:
        name = model_path.name
        plan.model = plan.model.model_copy(
            update={"source": repo, "repo": repo, "name": repo, "file": name, "files": [name],
                    "file_info": [f.model_copy(update={"path": name}) for f in plan.model.file_info]}
        )  # fmt: skip
        plan.command = [name if part == str(model_path) else part for part in plan.command]
    return plan


@pytest.fixture
def p4_plan(smollm2_path: Path) -> Plan:
    return make_plan(smollm2_path, [TESLA_P4])
