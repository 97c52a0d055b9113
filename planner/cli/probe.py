"""`planner probe`: what this machine has, drawn with rich or printed as JSON, optionally saved for --hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli.options import JsonOpt
from planner.cli.output import emit

EPILOG = """Examples:

  planner probe                      # GPUs, CPU, RAM, disk, docker, driver status

  planner probe --json               # the same as JSON (the --hardware file format)

  planner probe --save p4-box.json   # keep it; later: planner plan MODEL --hardware p4-box.json
"""


def register(app: typer.Typer) -> None:
    @app.command(epilog=EPILOG)
    def probe(
        json_output: JsonOpt = False,
        save: Annotated[
            Path | None,
            typer.Option("--save", help="Write the profile to FILE (JSON) for `--hardware FILE` elsewhere."),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace the --save file if it exists.")] = False,
    ) -> None:
        """Show this machine's GPUs, CPU, RAM, disk, container runtime and GPU driver status."""
        import planner
        from planner.rendering.hardware import show_hardware, show_saved_profile

        hardware = planner.probe()
        written = planner.save_profile(hardware, save, force=force) if save is not None else None
        emit(hardware, json_output=json_output, show=show_hardware)
        if written is not None and not json_output:
            show_saved_profile(written)
