"""The doctor's result: Findings (what `planner doctor` prints and `--json` dumps) and the context checks read."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, Field

from planner.hardware.engines import ImageChoice, server_image_for
from planner.hardware.profile import Gpu, Hardware
from planner.plan import Plan

Severity = Literal["ok", "info", "warn", "error"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warn": 1, "info": 2, "ok": 3}


class Finding(BaseModel):
    id: str  # stable, for scripts: "driver-too-old-for-image", "vram-held-by-other-processes" ...
    severity: Severity
    title: str
    detail: str  # what was seen, and why it matters for running an LLM
    fix: str | None = None  # what to do, in words
    commands: list[str] = Field(default_factory=list)  # the commands that do it, where there are any
    gpu_index: int | None = None
    sources: list[str] = Field(default_factory=list)  # where the facts behind this finding come from


class Findings(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    hardware: Hardware
    model: str | None = None  # the MODEL argument, when doctor checked a plan
    image: ImageChoice | None = None  # the llama.cpp server image a deployment would use

    @property
    def has_errors(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.has_errors else 0

    def by_severity(self, severity: Severity) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == severity]

    def ids(self) -> list[str]:
        return [finding.id for finding in self.findings]


@dataclass
class CheckContext:
    """What every check reads: the hardware, the plan when a MODEL was given, and derived facts computed once."""

    hardware: Hardware
    plan: Plan | None = None
    model_on_disk: bool = False  # the plan's model files are already local: nothing to download

    @cached_property
    def image(self) -> ImageChoice:
        return server_image_for(self.hardware)

    @property
    def nvidia_gpus(self) -> list[Gpu]:
        return [gpu for gpu in self.hardware.gpus if gpu.vendor == "nvidia"]

    @property
    def driver_is_real(self) -> bool:
        """False when the GPUs are what-if (--gpu): the driver status then describes no GPU of this plan."""
        if self.hardware.gpus:
            return any(gpu.source != "what-if" for gpu in self.hardware.gpus)
        return self.hardware.source != "what-if"

    @property
    def probed(self) -> bool:
        """True when the hardware was measured on this machine (not --gpu what-if, not a saved file)."""
        return self.hardware.source == "probe"
