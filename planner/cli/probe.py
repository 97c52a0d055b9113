"""`planner probe`: what this machine has, drawn with rich or printed as JSON, optionally saved for --hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ByteSize
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from planner.cli.options import JsonOpt
from planner.hardware.profile import Gpu, Hardware

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
        from planner.hardware.probe import probe_hardware, save_hardware

        hardware = probe_hardware()
        if save is not None:
            written = save_hardware(hardware, save, force=force)
        if json_output:
            print(hardware.model_dump_json(indent=2))
        else:
            console = Console()
            console.print(render_hardware(hardware))
            if save is not None:
                console.print(f"Saved to {written}; use it with --hardware {written}", markup=False)


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
