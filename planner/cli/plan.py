"""`planner plan [MODEL]`: the quant, layers, context and flags for this (or what-if) hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli.options import JsonOpt, PlanOptions, with_plan_options
from planner.cli.output import emit
from planner.errors import NothingFits

EPILOG = """Examples:

  planner plan                                        best catalog model for this machine

  planner plan Qwen/Qwen1.5-14B-Chat-GGUF --gpu "Tesla P4" --ram 8GB --cpu-cores 4

  planner plan qwen1.5-14b-chat:Q2_K --ctx 2048 --json

  planner plan ./model.gguf --gpu "2x RTX 3090" --flash-attn on

  planner plan llama-3.3-70b --quant Q4_K_M --gpu "RTX 3090" --ram 32GB --upgrade
"""


def register(app: typer.Typer) -> None:
    @app.command("plan", epilog=EPILOG)
    @with_plan_options
    def plan(
        model: Annotated[
            str | None,
            typer.Argument(help="owner/repo, owner/repo:QUANT, hf.co/..., a .gguf path or a catalog alias."),
        ] = None,
        json_output: JsonOpt = False,
        upgrade: Annotated[
            bool,
            typer.Option(
                "--upgrade",
                help="When it does not fit or runs under --min-speed: the smallest changes that fix it (RAM, a "
                "second or another card, a smaller quant or model, less context), each re-planned.",
            ),
        ] = False,
        prices: Annotated[
            Path | None,
            typer.Option("--prices", help="With --upgrade: YAML/JSON of GPU name -> price, to rank cards by price."),
        ] = None,
        options: PlanOptions | None = None,
    ) -> None:
        """Plan how to run MODEL (or the best catalog model) on this machine or on what-if hardware."""
        import planner
        from planner.rendering.console import show_plan

        assert options is not None  # filled in by with_plan_options
        result = planner.plan_request(options.request(model), upgrade=upgrade, prices=prices)
        emit(result, json_output=json_output, show=show_plan)
        if not result.fits:  # the plan (stdout) says why; stderr gets the one line every failure gets
            shown = "see reasons and alternatives in the JSON" if json_output else "the plan above says why"
            raise NothingFits(f"{model or 'the model'} does not fit this hardware; {shown}")
