"""`planner catalog`: list the offline model catalog, or refresh an entry from a repo's real GGUF headers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli.options import JsonOpt
from planner.cli.output import emit

CatalogDirOpt = Annotated[
    Path | None,
    typer.Option("--catalog-dir", help="Catalog folder to use instead of the built-in hardware_db/models."),
]


def register(app: typer.Typer) -> None:
    catalog_app = typer.Typer(
        name="catalog",
        help="The offline model catalog: what planner knows about popular GGUF models without the network.",
        no_args_is_help=True,
    )

    @catalog_app.command("list", epilog="Example: planner catalog list --json")
    def list_cmd(json_out: JsonOpt = False, catalog_dir: CatalogDirOpt = None) -> None:
        """List the models in the offline catalog."""
        import planner
        from planner.rendering.catalog import show_catalog

        emit(planner.catalog_list(catalog_dir), json_output=json_out, show=show_catalog)

    @catalog_app.command(
        "refresh",
        epilog="Example: planner catalog refresh Qwen/Qwen1.5-14B-Chat-GGUF --quant Q4_K_M --quant Q2_K",
    )
    def refresh_cmd(
        repo: Annotated[str, typer.Argument(help="Hugging Face repo holding GGUF files, e.g. owner/name-GGUF.")],
        quant: Annotated[
            list[str] | None, typer.Option("--quant", help="Quant to read (repeatable). Default: every quant.")
        ] = None,
        json_out: JsonOpt = False,
        catalog_dir: CatalogDirOpt = None,
    ) -> None:
        """Create or update a catalog entry from the repo's real GGUF headers (reads headers, not weights)."""
        import planner
        from planner.rendering.catalog import show_refresh

        emit(planner.catalog_refresh(repo, quant or None, catalog_dir), json_output=json_out, show=show_refresh)

    app.add_typer(catalog_app)
