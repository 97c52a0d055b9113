"""`planner doctor [MODEL]`: what stands between this machine (or what-if hardware) and a running model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.options import CpuCoresOpt, GpuOpt, HardwareOpt, JsonOpt, OfflineOpt, QuantOpt, RamOpt

if TYPE_CHECKING:
    from planner.doctor import Finding
    from planner.hardware.profile import Hardware
    from planner.plan import Plan

EPILOG = """Examples:

  planner doctor                                   check this machine

  planner doctor Qwen/Qwen1.5-14B-Chat-GGUF         also check what that model's plan needs (RAM, VRAM, disk)

  planner doctor --gpu "Tesla P4" --json           what a Tesla P4 can and cannot run, as JSON

Exit codes: 0 no errors (warnings allowed), 1 at least one error, 2 bad input.
"""


def register(app: typer.Typer) -> None:
    @app.command("doctor", epilog=EPILOG)
    def doctor(
        model: Annotated[
            str | None,
            typer.Argument(help="Also check this model's plan: owner/repo, owner/repo:QUANT, a .gguf path, an alias."),
        ] = None,
        gpu: GpuOpt = None,
        ram: RamOpt = None,
        cpu_cores: CpuCoresOpt = None,
        hardware: HardwareOpt = None,
        quant: QuantOpt = None,
        offline: OfflineOpt = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details of passing checks.")] = False,
        json_output: JsonOpt = False,
    ) -> None:
        """Find what would stop a model from running well here (driver, image, GPU state, docker, RAM, disk)."""
        from planner.doctor import run_checks
        from planner.hardware.whatif import resolve_hardware

        hw = resolve_hardware(gpu, ram, cpu_cores, hardware)
        plan, extra = None, []
        if model is not None:
            plan, extra = _plan_for(model, hw, quant, offline)
        findings = run_checks(hw, plan, model=model, model_on_disk=_on_disk(plan))
        if extra:
            findings.findings[:0] = extra
        if json_output:
            print(findings.model_dump_json(indent=2))
        else:
            from planner.doctor.render import show_findings

            show_findings(findings, verbose=verbose)
        raise typer.Exit(findings.exit_code)


def _on_disk(plan: Plan | None) -> bool:
    """True when every file of the planned model is already a local file (a path, or the download cache)."""
    from pathlib import Path

    files = plan.model.get("files") if plan is not None else None
    return bool(files) and all(Path(str(name)).is_file() for name in files)


def _plan_for(model: str, hw: Hardware, quant: str | None, offline: bool) -> tuple[Plan | None, list[Finding]]:
    """Plan MODEL on this hardware; a model that fits nowhere is a finding, not a crash."""
    from planner.doctor import Finding
    from planner.errors import NothingFits
    from planner.plan import Overrides, PlanRequest
    from planner.solve import plan_model

    request = PlanRequest(model=model, hardware=hw, overrides=Overrides(quant=quant), offline=offline)
    try:
        plan = plan_model(request)
    except NothingFits as err:
        return None, [
            Finding(
                id="plan-nothing-fits",
                severity="error",
                title=f"{model} does not fit this hardware in any configuration",
                detail=err.message,
                fix="Try a smaller model or quant (`planner plan` recommends one), or more RAM/VRAM.",
                commands=["planner plan"],
            )
        ]
    if plan.fits:
        return plan, []
    return plan, [
        Finding(
            id="plan-does-not-fit",
            severity="error",
            title=f"{model} does not fit: {plan.where}",
            detail="; ".join(plan.reasons + plan.warnings),
            fix="See `planner plan MODEL` for the alternatives.",
            commands=[f"planner plan {model}"],
        )
    ]
