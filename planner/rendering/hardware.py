"""The console views of hardware: a machine (`planner probe`) and the GPU database (`planner gpus`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ByteSize
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from planner.data.gpus import GpuList, GpuSpec
from planner.types.hardware import Gpu, Hardware

GIB = 1 << 30


def show_hardware(hardware: Hardware, console: Console | None = None) -> None:
    (console or Console()).print(render_hardware(hardware))


def show_saved_profile(path: Path, console: Console | None = None) -> None:
    (console or Console()).print(f"Saved to {path}; use it with --hardware {path}", markup=False, highlight=False)


def show_gpus(found: GpuList, console: Console | None = None) -> None:
    (console or Console()).print(render_detail(found.root[0]) if len(found.root) == 1 else render_table(found.root))


def render_hardware(hardware: Hardware) -> RenderableType:
    """The rich view of a Hardware object (probe, and anything else that shows a machine)."""
    parts: list[RenderableType] = [Text(f"Machine: {hardware.os_release or hardware.os}", style="bold")]
    parts.append(_gpu_table(hardware) if hardware.gpus else Text("GPUs: none found (CPU only)", style="yellow"))
    parts.append(_host_table(hardware))
    for warning in hardware.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Group(*parts)


def _gpu_table(hardware: Hardware) -> Table:
    table = Table(title="GPUs", title_justify="left", show_lines=False)
    for column in ("#", "GPU", "Memory used", "", "Compute", "PCIe", "Power", "Temp", "Clocks held back"):
        table.add_column(column)
    for gpu in hardware.gpus:
        _add_row(
            table,
            str(gpu.index),
            _gpu_name(gpu),
            _memory_text(gpu),
            _memory_bar(gpu),
            gpu.compute_capability or gpu.gfx_target or "-",
            _pcie_text(gpu),
            _power_text(gpu),
            f"{gpu.temperature_c} C" if gpu.temperature_c is not None else "-",
            ", ".join(r for r in gpu.throttle_reasons if r != "gpu_idle") or "-",
        )
    return table


def _add_row(table: Table, *cells: str | Text) -> None:
    """A row whose text (CPU and GPU names, paths, driver messages: all from the machine) is never rich markup."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def _gpu_name(gpu: Gpu) -> Text:
    text = Text(gpu.name, style="bold")
    details = [d for d in (gpu.architecture, "unified memory" if gpu.unified_memory else None) if d]
    if gpu.processes:
        holders = ", ".join(f"{p.name.rsplit('/', 1)[-1]} ({_size(p.used_memory_bytes)})" for p in gpu.processes)
        details.append(f"in use by {holders}")
    if details:
        text.append("\n" + "; ".join(details), style="dim")
    return text


def _memory_text(gpu: Gpu) -> str:
    if gpu.memory_used_bytes is None:
        return f"? / {_size(gpu.memory_total_bytes)}"
    return f"{_size(gpu.memory_used_bytes)} / {_size(gpu.memory_total_bytes)}"


def _memory_bar(gpu: Gpu, width: int = 16) -> Text:
    # Drawn with two characters rather than rich's ProgressBar, whose halves differ only by colour and vanish
    # when output is piped or NO_COLOR is set.
    if gpu.memory_used_bytes is None or not gpu.memory_total_bytes:
        return Text("")
    filled = round(width * min(gpu.memory_used_bytes / gpu.memory_total_bytes, 1.0))
    return Text("█" * filled, style="magenta") + Text("░" * (width - filled), style="dim")


def _pcie_text(gpu: Gpu) -> str:
    if gpu.pcie_gen_current is None and gpu.pcie_width_current is None:
        return "-"
    text = f"Gen{gpu.pcie_gen_current or '?'} x{gpu.pcie_width_current or '?'}"
    if (gpu.pcie_gen_max, gpu.pcie_width_max) != (gpu.pcie_gen_current, gpu.pcie_width_current):
        text += f" (max Gen{gpu.pcie_gen_max or '?'} x{gpu.pcie_width_max or '?'})"
    return text


def _power_text(gpu: Gpu) -> str:
    if gpu.power_draw_watts is None and gpu.power_limit_watts is None:
        return "-"
    draw = f"{gpu.power_draw_watts:.0f}" if gpu.power_draw_watts is not None else "?"
    limit = f"{gpu.power_limit_watts:.0f}" if gpu.power_limit_watts is not None else "?"
    return f"{draw} / {limit} W"


def _host_table(hardware: Hardware) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    cpu = hardware.cpu
    _add_row(
        table,
        "CPU",
        f"{cpu.model} ({cpu.architecture}), {cpu.physical_cores} cores / {cpu.logical_cores} threads"
        + (f"\nfeatures: {' '.join(cpu.flags)}" if cpu.flags else ""),
    )
    memory = hardware.memory
    swap = f", swap {_size(memory.swap_free_bytes)} free of {_size(memory.swap_total_bytes)}"
    _add_row(
        table,
        "RAM",
        f"{_size(memory.available_bytes)} available of {_size(memory.total_bytes)}"
        + (swap if memory.swap_total_bytes else ", no swap"),
    )
    disk = hardware.disk
    _add_row(table, "Disk", f"{_size(disk.free_bytes)} free of {_size(disk.total_bytes)} at {disk.path} (models)")
    container = hardware.container
    if container.docker_client:
        docker = f"docker {container.docker_version or '?'}, engine " + (
            "reachable" if container.engine_reachable else "NOT reachable"
        )
    else:
        docker = "docker not installed"
    _add_row(table, "Container", docker + (f"\n{container.detail}" if container.detail else ""))
    driver = hardware.driver
    if driver.nvml_available:
        status = f"NVIDIA driver {driver.driver_version or '?'}, CUDA {driver.cuda_driver_version or '?'} (NVML ok)"
    else:
        status = f"NVML unavailable: {driver.error or 'unknown reason'}"
    _add_row(table, "GPU driver", status)
    return table


def _size(value: int | None) -> str:
    return ByteSize(value).human_readable() if value is not None else "?"


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
