"""The console views of `planner catalog list` and `planner catalog refresh`."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from planner.data.catalog import NO_FILES_NOTE, CatalogListing, RefreshResult
from planner.types.units import human_bytes


def show_catalog(listing: CatalogListing, console: Console | None = None) -> None:
    """One row per model: its name over its repo (both needed to type or find it), so 80 columns hold it."""
    table = Table(
        title=f"Offline model catalog ({len(listing.models)} models)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("model / repo", overflow="fold")
    table.add_column("params", justify="right")
    table.add_column("files", justify="right")
    table.add_column("sizes", justify="right")
    unnamed = False
    for row in listing.models:
        params = f"{row.n_params / 1e9:.1f}B" if row.n_params else "?"
        files = f"{len(row.files)}" if row.files else f"{len(row.quants)} est.*"
        unnamed = unnamed or not row.files
        sizes = f"{_gb(row.smallest_bytes)}-{_gb(row.largest_bytes)} GB"
        name = Text(row.name)  # names from the hub: never rich markup
        name.append(f"\n{row.repo}", style="dim")
        table.add_row(name, params, files, sizes)
    out = console or Console()
    out.print(table)
    if unnamed:
        out.print(f"* {NO_FILES_NOTE}", markup=False, highlight=False)
    out.print("files: quants offered by exact file name; `planner catalog list --json` lists them", highlight=False)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f}" if n < 100e9 else f"{n / 1e9:.0f}"


def show_refresh(result: RefreshResult, console: Console | None = None) -> None:
    verb = "added" if result.created else "updated"
    (console or Console()).print(
        f"{verb} {result.repo} in {result.file}: {', '.join(result.quants_read)} "
        f"({human_bytes(result.header_bytes_transferred)} of headers read)",
        markup=False,
        highlight=False,
    )
