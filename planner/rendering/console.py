"""Rich views of a Plan: file, flags, a memory bar per device, speed, reasons, command, alternatives."""

from __future__ import annotations

import shlex

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from planner.types.plan import Plan

GiB = 1024**3
BAR_WIDTH = 30


def gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB"


def memory_bar(parts: list[tuple[str, int, str]], capacity: int) -> Text:
    """A stacked bar: each (label, bytes, colour) share of `capacity`, then the free rest."""
    bar = Text()
    used = 0
    total = max(capacity, sum(p[1] for p in parts), 1)
    for _label, size, colour in parts:
        cells = round(BAR_WIDTH * size / total)
        bar.append("█" * cells, style=colour)
        used += cells
    bar.append("░" * max(0, BAR_WIDTH - used), style="dim")
    return bar


def _device_line(label: str, parts: list[tuple[str, int, str]], capacity: int) -> Text:
    """One device: its name, a stacked bar with used / capacity, and the parts in words."""
    used = sum(p[1] for p in parts)
    line = Text(f"{label}\n", style="bold")
    line.append("  ")
    line.append_text(memory_bar(parts, capacity))
    line.append(f" {gib(used)} / {gib(capacity)}\n", style="red" if used > capacity else "green")
    line.append("  ")
    for i, (name, size, colour) in enumerate(p for p in parts if p[1]):
        line.append(" · " if i else "")
        line.append(name, style=colour)
        line.append(f" {gib(size)}")
    return line


def _device_rows(plan: Plan) -> list[Text]:
    rows = []
    for dev in plan.memory.devices:
        parts = [
            ("weights", dev.weights_bytes, "cyan"),
            ("KV", dev.kv_cache_bytes, "magenta"),
            ("compute", dev.compute_bytes, "yellow"),
            ("runtime", dev.overhead_bytes + dev.mmproj_bytes, "white"),
        ]
        layers = f"{dev.layers} layers{' + output' if dev.output_layer else ''}"
        rows.append(_device_line(f"GPU{dev.index} {dev.name} ({layers})", parts, dev.capacity_bytes))
    host = plan.memory.host
    parts = [
        ("weights" + (" (mmap)" if host.weights_mapped else ""), host.weights_bytes, "cyan"),
        ("KV", host.kv_cache_bytes, "magenta"),
        ("compute", host.compute_bytes + host.output_bytes, "yellow"),
        ("runtime", host.runtime_bytes, "white"),
    ]
    rows.append(_device_line("host RAM", parts, host.capacity_bytes))
    return rows


def _alternatives(plan: Plan) -> Table:
    table = Table(title="Alternatives (why not)", header_style="bold", title_justify="left")
    one_model = all(alt.model == plan.model.name for alt in plan.alternatives)
    columns = ("quant", "where", "-ngl", "ctx", "KV", "gen t/s", "quality", "why not")
    for col in columns if one_model else ("model", *columns):
        table.add_column(col, justify="right" if col in ("-ngl", "ctx", "gen t/s") else "left",
                         ratio=4 if col == "why not" else None)  # fmt: skip
    for alt in plan.alternatives[:16]:
        quality = ""
        if alt.quality:
            quality = f"{'PPL' if alt.quality.metric == 'perplexity' else alt.quality.metric} {alt.quality.value:g}"
        where = alt.where + (f" (moe {alt.n_cpu_moe})" if alt.n_cpu_moe else "") if alt.fits else "no fit"
        cells: tuple[str, ...] = (
            alt.quant,
            where,
            str(alt.n_gpu_layers) if alt.fits else "-",
            str(alt.ctx_size) if alt.fits else "-",
            f"{alt.cache_type_k}/{alt.cache_type_v}" if alt.cache_type_k else "-",
            f"{alt.generation_tokens_per_s:g}" if alt.generation_tokens_per_s else "-",
            quality,
            alt.why,
        )
        if not one_model:
            cells = (alt.model, *cells)
        table.add_row(*(Text(cell) for cell in cells))  # Text: a name is never read as rich markup
    return table


def _upgrades(plan: Plan) -> Table:
    """`--upgrade`: each change with the plan planner makes after it; a price column only when prices were given."""
    table = Table(title="Upgrades (each change re-planned)", header_style="bold", title_justify="left")
    priced = any(u.price is not None for u in plan.upgrades)
    columns = ("change", "fixes it", "where", "quant", "ctx", "gen t/s", *(("price",) if priced else ()), "options")
    for col in columns:
        table.add_column(col, justify="right" if col in ("ctx", "gen t/s", "price") else "left")
    for u in plan.upgrades:
        cells = [
            u.change,
            "yes" if u.fixes else "no",
            u.where if u.fits else "no fit",
            u.quant or "-",
            str(u.ctx_size) if u.fits else "-",
            f"{u.generation_tokens_per_s:g}" if u.generation_tokens_per_s is not None else "-",
            *((f"{u.price:g}" if u.price is not None else "-",) if priced else ()),
            shlex.join(u.options),
        ]
        table.add_row(*(Text(cell) for cell in cells))
    return table


def show_plan(plan: Plan, console: Console | None = None) -> None:
    console = console or Console()
    m = plan.model
    s = plan.settings
    title = f"{m.name or m.source} · {m.quant} · {m.file or '(file name from the hub)'}"
    head = Text()
    verdict = (
        ("fits on the GPU", "green")
        if plan.where == "GPU"
        else ("fits with part of the model in RAM", "yellow")
        if plan.where == "GPU+CPU"
        else ("runs on the CPU", "yellow")
        if plan.where == "CPU"
        else ("does not fit", "red")
    )
    head.append(f"{verdict[0]}\n", style=f"bold {verdict[1]}")
    head.append(
        f"{m.arch}, {m.n_layer} layers, {m.n_params / 1e9:.2f}B parameters, "
        f"{m.size_bytes / 1e9:.2f} GB, trained context {m.context_length}\n"
    )
    head.append(
        f"-ngl {s.n_gpu_layers}/{m.n_layer + 1} · ctx {s.ctx_size} · batch {s.batch_size}/{s.ubatch_size} · "
        f"KV {s.cache_type_k}/{s.cache_type_v} · flash-attn {s.flash_attn} · threads {s.threads} · "
        f"parallel {s.parallel}"
        + (f" · tensor-split {','.join(f'{x:g}' for x in s.tensor_split)}" if s.tensor_split else "")
        + (f" · n-cpu-moe {s.n_cpu_moe}" if s.n_cpu_moe else "")
    )
    console.print(Panel(head, title=Text(title), title_align="left"))
    for row in _device_rows(plan):
        console.print(row)
    sp = plan.speed
    # Everything below that holds a name, a path or a reason is a Text: printed as it is, never as rich markup
    # (a path with "[/]" crashed the view, one with "[wip]" lost those characters).
    if sp.generation_tokens_per_s is not None:  # a plan that does not fit has no tokens/s
        console.print(
            Text.assemble(
                "\n",
                ("speed", "bold"),
                f": prompt ≈ {sp.prompt_tokens_per_s:g} tokens/s ({sp.prompt_low:g}–{sp.prompt_high:g})"
                if sp.prompt_tokens_per_s is not None
                else ": prompt not estimated (see basis)",
                f", generation ≈ {sp.generation_tokens_per_s:g} tokens/s ({sp.low:g}–{sp.high:g})",
            )
        )
    if sp.disk_bound_seconds_per_token:
        console.print(f"[bold]from disk[/]: about {sp.disk_bound_seconds_per_token:g} s per token (mmap streaming)")
    console.print(Text(f"basis: {sp.basis}", style="dim"))
    if plan.quality:
        source = plan.quality.source.split(";")[0].split(" (")[0]
        console.print(Text.assemble(("quality", "bold"), f": {plan.quality.metric} {plan.quality.value:g} ({source})"))
    console.print("\n[bold]why[/]")
    for reason in plan.reasons:
        console.print(Text(f"  • {reason}"))
    for warning in plan.warnings:
        console.print(Text(f"  ! {warning}", style="yellow"))
    console.print("\n[bold]command[/]")
    console.print(Text(shlex.join(plan.command)), soft_wrap=True)
    if plan.alternatives:
        console.print()
        console.print(_alternatives(plan))
    if plan.upgrades:
        console.print()
        console.print(_upgrades(plan))
    for note in plan.upgrade_notes:
        console.print(Text(f"  · {note}", style="dim"))
