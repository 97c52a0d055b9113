"""Doctor's findings about a model's plan: a model that fits nowhere, or only on disk, is a finding, not a crash."""

from __future__ import annotations

from pathlib import Path

from planner.types.findings import Finding
from planner.types.plan import Plan


def nothing_fits_finding(model: str, message: str) -> Finding:
    """Not even the smallest file of `model` could be placed on this hardware."""
    return Finding(
        id="plan-nothing-fits",
        severity="error",
        title=f"{model} does not fit this hardware in any configuration",
        detail=message,
        fix="Try a smaller model or quant (`planner plan` recommends one), or more RAM/VRAM.",
        commands=["planner plan"],
    )


def plan_findings(model: str, plan: Plan) -> list[Finding]:
    """A plan that does not fit is an error finding with the plan's own reasons."""
    if plan.fits:
        return []
    return [
        Finding(
            id="plan-does-not-fit",
            severity="error",
            title=f"{model} does not fit: {plan.where}",
            detail="; ".join(plan.reasons + plan.warnings),
            fix="See `planner plan MODEL` for the alternatives.",
            commands=[f"planner plan {model}"],
        )
    ]


def model_on_disk(plan: Plan | None) -> bool:
    """True when every file of the planned model is already a local file (a path, or the download cache)."""
    files = plan.model.files if plan is not None else []
    return bool(files) and all(Path(name).is_file() for name in files)
