"""Progress bars for the long steps (downloads, the wait for a model to load, a bench run), drawn by rich.

Off when the console is not a terminal (a log, a pipe): rich would print only a final frame there, a blank line
before an error. Task descriptions are file names and URLs from outside: never read as markup.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class _BytesOnly(ProgressColumn):
    """A byte column for download tasks only (the wait-for-the-server task has no bytes)."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column.render(task) if task.fields.get("bytes") else Text("")


def deploy_progress(console: Console) -> Progress:
    columns = (
        TextColumn("{task.description}", markup=False), BarColumn(), _BytesOnly(DownloadColumn()),
        _BytesOnly(TransferSpeedColumn()), _BytesOnly(TimeRemainingColumn()),
    )  # fmt: skip
    return Progress(*columns, console=console, transient=False, disable=not console.is_terminal)


def bench_progress(console: Console) -> Progress:
    columns = (TextColumn("{task.description}", markup=False), *Progress.get_default_columns()[1:])
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


def console_for(json_output: bool) -> Console:
    """stderr when stdout carries JSON (stdout then holds valid JSON or nothing)."""
    return Console(stderr=json_output)
