"""The doctor's result: Findings, what `planner doctor` prints and `--json` dumps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from planner.types.engine import ImageChoice
from planner.types.hardware import Hardware

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
