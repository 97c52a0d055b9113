"""Options shared by several verbs, declared once (names as in llama-server and docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

GpuOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--gpu",
        help='What-if GPU, repeatable: "Tesla P4", "2x RTX 3090", "none" for CPU only. Default: probe this machine.',
        rich_help_panel="Hardware",
    ),
]
RamOpt = Annotated[
    str | None,
    typer.Option("--ram", help="What-if host RAM, e.g. 8GB, 16GiB.", rich_help_panel="Hardware"),
]
CpuCoresOpt = Annotated[
    int | None,
    typer.Option("--cpu-cores", min=1, help="What-if physical CPU cores.", rich_help_panel="Hardware"),
]
HardwareOpt = Annotated[
    Path | None,
    typer.Option(
        "--hardware", help="Hardware profile saved by `planner probe --save`.", rich_help_panel="Hardware"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
