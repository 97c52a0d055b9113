"""`planner gpus [QUERY]`: the accelerators planner knows (hardware_db/gpus), as a table or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from planner.cli.options import JsonOpt
from planner.errors import BadInput

if TYPE_CHECKING:
    from planner.hardware.db import GpuSpec

EPILOG = """Examples:

  planner gpus                   # every card in the database

  planner gpus p4                # one card in detail, with its source

  planner gpus "rtx 40"          # a family;  planner gpus pascal  # an architecture

  planner gpus a100 --json       # all A100 variants as JSON
"""

GIB = 1 << 30


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
        from planner.hardware.db import GpuList, closest_names, search_gpus

        text = " ".join(query or []).strip()
        found = GpuList(search_gpus(text or None))
        if not found.root:
            close = closest_names(text)
            hint = f"; closest: {', '.join(close)}" if close else "; run `planner gpus` for the full list"
            raise BadInput(f"no GPU in planner's database matches {text!r}{hint}")
        if json_output:
            print(found.model_dump_json(indent=2))
            return
        console = Console()
        console.print(render_detail(found.root[0]) if len(found.root) == 1 else render_table(found.root))


def _gib(size: int) -> str:
    return f"{size / GIB:.1f}".removesuffix(".0") + " GiB"


def _memory(spec: GpuSpec, *, short: bool = False) -> str:
    if spec.memory_options_bytes:
        return (
            "/".join(_gib(size).removesuffix(" GiB") for size in spec.memory_sizes)
            + " GiB"
            + ("" if short else " unified")
        )
    text = _gib(spec.vram_bytes)
    if short:
        return text
    if spec.usable_vram_bytes is not None and spec.usable_vram_bytes != spec.vram_bytes:
        text += f" ({_gib(spec.usable_vram_bytes)} usable)"
    return text + (" unified" if spec.unified_memory else "")


def _fp16(spec: GpuSpec) -> str:
    if not spec.fp16:
        return "no"
    if spec.fp16_crippled:
        return "1/64 rate"
    return f"{spec.fp16_tflops:g} TFLOPS" if spec.fp16_tflops else "yes"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def render_table(specs: list[GpuSpec]) -> RenderableType:
    table = Table(title=f"{len(specs)} GPUs", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("GPU", no_wrap=True)
    table.add_column("Arch", no_wrap=True)
    table.add_column("CC/gfx", no_wrap=True)
    table.add_column("Memory", justify="right", no_wrap=True)
    table.add_column("GB/s", justify="right", no_wrap=True)
    table.add_column("FP16 TF", justify="right")
    table.add_column("TDP", justify="right", no_wrap=True)
    for spec in specs:
        boards = f" (x{spec.devices_per_board} per board)" if spec.devices_per_board > 1 else ""
        table.add_row(
            Text(spec.name + boards),  # Text: database names and notes may hold brackets, never markup
            Text(spec.chip or spec.architecture),
            spec.compute_capability or spec.gfx_target or "-",
            _memory(spec, short=True),
            f"{spec.memory_bandwidth_gbs:g}",
            _fp16_short(spec),
            f"{spec.tdp_watts} W" if spec.tdp_watts else "-",
        )
    note = "One card in detail, with its sources: planner gpus NAME.  Plan for one: planner plan MODEL --gpu NAME."
    return Group(table, Text(note, style="dim"))


def _fp16_short(spec: GpuSpec) -> str:
    if not spec.fp16:
        return "none"
    if spec.fp16_crippled:
        return "1/64 rate"
    return f"{spec.fp16_tflops:g}" if spec.fp16_tflops else "yes"


def render_detail(spec: GpuSpec) -> RenderableType:
    table = Table(title=Text(spec.name), title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | None]] = [
        ("Also known as", ", ".join(spec.aliases) or None),
        ("Vendor", f"{spec.vendor} ({spec.family})"),
        ("Architecture", spec.architecture + (f", {spec.chip}" if spec.chip else "")),
        ("Compute capability", spec.compute_capability),
        ("gfx target", spec.gfx_target),
        ("Memory", _memory(spec) + (f" {spec.memory_type}" if spec.memory_type else "")),
        ("Usable memory source", spec.usable_vram_source),
        ("Bandwidth", f"{spec.memory_bandwidth_gbs:g} GB/s"),
        ("FP16", _fp16(spec) + (" (llama.cpp computes in FP32 here)" if spec.fp16_crippled else "")),
        ("FP32", f"{spec.fp32_tflops:g} TFLOPS" if spec.fp32_tflops else None),
        ("BF16", _yes_no(spec.bf16)),
        ("INT8 (dp4a / matrix)", _yes_no(spec.int8)),
        ("FP8", _yes_no(spec.fp8)),
        ("Tensor / matrix cores", _yes_no(spec.tensor_cores)),
        ("TDP", f"{spec.tdp_watts} W" if spec.tdp_watts else None),
        ("Cooling", "passive: needs server airflow" if spec.passive_cooling else None),
        ("Devices per board", str(spec.devices_per_board) if spec.devices_per_board > 1 else None),
        ("Year", str(spec.year)),
        ("Notes", spec.notes),
        ("Source", spec.source),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, Text(value))
    return table
