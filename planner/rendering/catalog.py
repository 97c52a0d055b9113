"""The console views of `planner catalog list` and `planner catalog refresh`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from planner.data.catalog import CatalogListing, RefreshResult
from planner.types.units import human_bytes


def show_catalog(listing: CatalogListing, console: Console | None = None) -> None:
    table = Table(title=f"Offline model catalog ({len(listing.models)} models)")
    for col in ("model", "repo", "arch", "params", "quants", "sizes"):
        table.add_column(col)
    for row in listing.models:
        params = f"{row.n_params / 1e9:.1f}B" if row.n_params else "?"
        sizes = f"{human_bytes(row.smallest_bytes)} - {human_bytes(row.largest_bytes)}"
        cells = (row.name, row.repo, row.arch, params, str(len(row.quants)), sizes)
        table.add_row(*(Text(cell) for cell in cells))  # names from the hub: never rich markup
    (console or Console()).print(table)


def show_refresh(result: RefreshResult, console: Console | None = None) -> None:
    verb = "added" if result.created else "updated"
    (console or Console()).print(
        f"{verb} {result.repo} in {result.file}: {', '.join(result.quants_read)} "
        f"({human_bytes(result.header_bytes_transferred)} of headers read)",
        markup=False,
        highlight=False,
    )
