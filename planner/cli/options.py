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
    typer.Option("--hardware", help="Hardware profile saved by `planner probe --save`.", rich_help_panel="Hardware"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

# --- plan overrides (plan, deploy, doctor MODEL): names as llama-server spells them ---------------------------
_P = "Plan overrides (fixed values are used as given)"
# llama.cpp reads these integer flags with std::stoi: a value past INT32_MAX makes llama-server refuse to start,
# so planner refuses it too rather than print a command that cannot run.
_INT_MAX = 2**31 - 1
QuantOpt = Annotated[str | None, typer.Option("--quant", help="Quant file type, e.g. Q4_K_M.", rich_help_panel=_P)]
CtxOpt = Annotated[
    int | None, typer.Option("--ctx", "--ctx-size", min=256, max=_INT_MAX, help="Context size.", rich_help_panel=_P)
]
BatchOpt = Annotated[
    int | None, typer.Option("--batch", "--batch-size", min=1, max=_INT_MAX, help="Logical batch.", rich_help_panel=_P)
]
UbatchOpt = Annotated[
    int | None,
    typer.Option("--ubatch", "--ubatch-size", min=1, max=_INT_MAX, help="Physical batch.", rich_help_panel=_P),
]
NglOpt = Annotated[
    int | None,
    typer.Option("--ngl", "--n-gpu-layers", min=0, max=_INT_MAX, help="Layers on the GPU.", rich_help_panel=_P),
]
CacheKOpt = Annotated[
    str | None, typer.Option("--cache-type-k", "-ctk", help="K cache type: f16, q8_0, q4_0 ...", rich_help_panel=_P)
]
CacheVOpt = Annotated[
    str | None, typer.Option("--cache-type-v", "-ctv", help="V cache type: f16, q8_0, q4_0 ...", rich_help_panel=_P)
]
FlashAttnOpt = Annotated[str | None, typer.Option("--flash-attn", "-fa", help="on, off or auto.", rich_help_panel=_P)]
ParallelOpt = Annotated[
    int | None,
    typer.Option("--parallel", "-np", min=1, max=_INT_MAX, help="Parallel slots (unified KV).", rich_help_panel=_P),
]
NCpuMoeOpt = Annotated[
    int | None,
    typer.Option(
        "--n-cpu-moe", min=0, max=_INT_MAX, help="Keep the experts of the first N layers in RAM.", rich_help_panel=_P
    ),
]
TensorSplitOpt = Annotated[
    str | None, typer.Option("--tensor-split", "-ts", help="GPU proportions, e.g. 3,1.", rich_help_panel=_P)
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", "-t", min=1, max=_INT_MAX, help="CPU threads.", rich_help_panel=_P)
]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="llama-server or llama-cpp-python.", rich_help_panel=_P)]
MarginOpt = Annotated[
    str | None,
    typer.Option("--margin", help="VRAM kept free per GPU (default: 256 MiB or 3 %).", rich_help_panel=_P),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Use only the offline catalog and local files.", rich_help_panel=_P)
]
