"""`planner gpus [QUERY]`: the accelerators planner knows (hardware_db/gpus), as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.cli.options import JsonOpt
from planner.cli.output import emit

EPILOG = """Examples:

  planner gpus                   # every card in the database

  planner gpus p4                # one card in detail, with its source

  planner gpus "rtx 40"          # a family;  planner gpus pascal  # an architecture

  planner gpus a100 --json       # all A100 variants as JSON
"""


def register(app: typer.Typer) -> None:
    @app.command("gpus", epilog=EPILOG)
    def gpus(
        query: Annotated[
            list[str] | None,
            typer.Argument(
                help="Name, family, architecture or vendor to look for (words are joined).", show_default=False
            ),
        ] = None,
        json_output: JsonOpt = False,
    ) -> None:
        """List the GPUs and accelerators planner knows: memory, bandwidth, FP16/BF16, compute capability."""
        import planner
        from planner.rendering.hardware import show_gpus

        emit(planner.gpus(" ".join(query or []).strip() or None), json_output=json_output, show=show_gpus)
