"""planner: plan, deploy and diagnose local LLM serving with llama.cpp.

    import planner
    hw = planner.what_if(gpus=["Tesla P4"], ram="8GB", cpu_cores=4)
    p = planner.plan("qwen1.5-14b-chat", hardware=hw, offline=True)
    print(p.model.quant, p.settings.n_gpu_layers, p.speed.generation_tokens_per_s)

The names below load on first use, so `import planner` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from planner.types.version import VERSION as __version__

# name -> the module that defines it
_EXPORTS = {
    # use cases
    "probe": "planner.api",
    "what_if": "planner.api",
    "plan": "planner.api",
    "recommend": "planner.api",
    "doctor": "planner.api",
    "plan_request": "planner.api",
    "stop": "planner.api",
    "bench": "planner.api",
    "render": "planner.api",
    "deploy": "planner.api",
    "save_profile": "planner.api",
    "catalog_refresh": "planner.api",
    "catalog_list": "planner.api",
    "gpus": "planner.api",
    # result types
    "Plan": "planner.types.plan",
    "Settings": "planner.types.plan",
    "MemoryUse": "planner.types.plan",
    "DeviceMemory": "planner.types.plan",
    "HostMemory": "planner.types.plan",
    "Speed": "planner.types.plan",
    "Quality": "planner.types.plan",
    "Alternative": "planner.types.plan",
    "Upgrade": "planner.types.plan",
    "Overrides": "planner.types.plan",
    "PlanRequest": "planner.types.plan",
    "Hardware": "planner.types.hardware",
    "Gpu": "planner.types.hardware",
    "Cpu": "planner.types.hardware",
    "ModelFacts": "planner.types.model",
    "Finding": "planner.types.findings",
    "RenderedFiles": "planner.rendering.artifacts",
    "ModelFile": "planner.types.model",
    "PlannedModel": "planner.types.model",
    "StopResult": "planner.types.deploy",
    "BenchReport": "planner.types.deploy",
    "DeployReport": "planner.types.deploy",
    "DeployOptions": "planner.types.deploy",
    "Findings": "planner.types.findings",
    # errors
    "PlannerError": "planner.errors",
    "BadInput": "planner.errors",
    "NothingFits": "planner.errors",
    "EnvironmentProblem": "planner.errors",
    "HubUnreachable": "planner.errors",
}

__all__ = [
    "__version__",
    "probe",
    "what_if",
    "plan",
    "recommend",
    "doctor",
    "plan_request",
    "stop",
    "bench",
    "render",
    "deploy",
    "save_profile",
    "catalog_refresh",
    "catalog_list",
    "gpus",
    "Plan",
    "Settings",
    "MemoryUse",
    "DeviceMemory",
    "HostMemory",
    "Speed",
    "Quality",
    "Alternative",
    "Upgrade",
    "Overrides",
    "PlanRequest",
    "Hardware",
    "Gpu",
    "Cpu",
    "ModelFacts",
    "Finding",
    "RenderedFiles",
    "ModelFile",
    "PlannedModel",
    "StopResult",
    "BenchReport",
    "DeployReport",
    "DeployOptions",
    "Findings",
    "PlannerError",
    "BadInput",
    "NothingFits",
    "EnvironmentProblem",
    "HubUnreachable",
]

if TYPE_CHECKING:
    from planner.api import (
        bench,
        catalog_list,
        catalog_refresh,
        deploy,
        doctor,
        gpus,
        plan,
        plan_request,
        probe,
        recommend,
        render,
        save_profile,
        stop,
        what_if,
    )
    from planner.errors import BadInput, EnvironmentProblem, HubUnreachable, NothingFits, PlannerError
    from planner.rendering.artifacts import RenderedFiles
    from planner.types.deploy import BenchReport, DeployOptions, DeployReport, StopResult
    from planner.types.findings import Finding, Findings
    from planner.types.hardware import Cpu, Gpu, Hardware
    from planner.types.model import ModelFacts, ModelFile, PlannedModel
    from planner.types.plan import (
        Alternative,
        DeviceMemory,
        HostMemory,
        MemoryUse,
        Overrides,
        Plan,
        PlanRequest,
        Quality,
        Settings,
        Speed,
        Upgrade,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time, no lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
