"""`planner doctor [MODEL]`: what stands between this machine (or what-if hardware) and a running model."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.options import HardwareOptions, JsonOpt, OfflineOpt, QuantOpt, with_hardware_options
from planner.cli.output import emit

EPILOG = """Examples:

  planner doctor                                   check this machine

  planner doctor Qwen/Qwen1.5-14B-Chat-GGUF         also check what that model's plan needs (RAM, VRAM, disk)

  planner doctor --gpu "Tesla P4" --json           what a Tesla P4 can and cannot run, as JSON

Exit codes: 0 no errors (warnings allowed), 1 at least one error, 2 bad input.
"""


def register(app: typer.Typer) -> None:
    @app.command("doctor", epilog=EPILOG)
    @with_hardware_options
    def doctor(
        model: Annotated[
            str | None,
            typer.Argument(help="Also check this model's plan: owner/repo, owner/repo:QUANT, a .gguf path, an alias."),
        ] = None,
        quant: QuantOpt = None,
        offline: OfflineOpt = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details of passing checks.")] = False,
        json_output: JsonOpt = False,
        hardware: HardwareOptions | None = None,
    ) -> None:
        """Find what would stop a model from running well here (driver, image, GPU state, docker, RAM, disk)."""
        import planner
        from planner.rendering.findings import show_findings

        assert hardware is not None  # filled in by with_hardware_options
        findings = planner.doctor(model, hardware=hardware.hardware(container=True), quant=quant, offline=offline)
        emit(findings, json_output=json_output, show=lambda f: show_findings(f, verbose=verbose))
        raise typer.Exit(findings.exit_code)
