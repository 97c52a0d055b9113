"""`planner doctor [MODEL]`: what stands between this machine (or what-if hardware) and a running model."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.options import CpuCoresOpt, GpuOpt, HardwareOpt, JsonOpt, OfflineOpt, QuantOpt, RamOpt

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
        import planner

        hw = planner.what_if(gpu, ram, cpu_cores, hardware_file=hardware, container=True)
        findings = planner.doctor(model, hardware=hw, quant=quant, offline=offline)
        if json_output:
            print(findings.model_dump_json(indent=2))
        else:
            from planner.checks.render import show_findings

            show_findings(findings, verbose=verbose)
        raise typer.Exit(findings.exit_code)
