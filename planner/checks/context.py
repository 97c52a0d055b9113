"""What every doctor check reads: the hardware, the plan when a MODEL was given, and facts derived once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from planner.data.engines import server_image_for
from planner.types.engine import ImageChoice
from planner.types.findings import SEVERITY_ORDER, Finding, Findings, Severity
from planner.types.hardware import Gpu, Hardware
from planner.types.plan import Plan

__all__ = ["SEVERITY_ORDER", "CheckContext", "Finding", "Findings", "Severity"]


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
