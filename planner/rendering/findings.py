"""The rich view of Findings: grouped worst first, each with what was seen, why it matters and the fix."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from planner.types.findings import Finding, Findings, Severity

HEADINGS = (
    ("error", "Errors", "bold red", "✗"),
    ("warn", "Warnings", "bold yellow", "!"),
    ("info", "Notes", "bold blue", "i"),
    ("ok", "OK", "bold green", "✓"),
)


def _finding(finding: Finding, style: str, mark: str, verbose: bool) -> Group:
    # Text, not markup: titles and fixes name GPUs and paths from outside ("[/]" or ":smile:" stay as they are).
    parts: list[Text] = [Text.assemble((mark, style), " ", (finding.title, "bold"))]
    if finding.detail and (verbose or finding.severity != "ok"):
        parts.append(Text("  " + finding.detail, style="default"))
    if finding.fix:
        parts.append(Text.assemble("  ", ("Fix:", "bold"), f" {finding.fix}"))
    for command in finding.commands:
        parts.append(Text("    $ " + command, style="cyan"))
    if verbose:
        for source in finding.sources:
            parts.append(Text("  source: " + source, style="dim"))
    return Group(*parts)


def show_findings(findings: Findings, console: Console | None = None, verbose: bool = False) -> None:
    console = console or Console()
    hardware = findings.hardware
    gpus = ", ".join(gpu.name for gpu in hardware.gpus) or "no GPU"
    source = {"probe": "this machine", "what-if": "what-if hardware", "file": "saved profile"}.get(
        hardware.source, hardware.source
    )
    header = f"planner doctor: {source}: {gpus}"
    if findings.model:
        header += f"; model {findings.model}"
    if findings.image:
        header += f"\nimage: {findings.image.image}"
    console.print(Panel(Text(header), expand=False))
    for severity, heading, style, mark in HEADINGS:
        group = findings.by_severity(severity)  # type: ignore[arg-type]
        if not group:
            continue
        console.print(Text(f"{heading} ({len(group)})", style=style))
        for finding in group:
            console.print(_finding(finding, style, mark, verbose))
        console.print()
    severities: tuple[Severity, ...] = ("error", "warn")
    counts = {s: len(findings.by_severity(s)) for s in severities}
    if findings.has_errors:
        console.print(f"[bold red]{counts['error']} error(s)[/], {counts['warn']} warning(s): fix the errors first.")
    elif counts["warn"]:
        console.print(f"[bold yellow]No errors[/], {counts['warn']} warning(s).")
    else:
        console.print("[bold green]No problems found.[/]")
