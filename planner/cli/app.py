"""The `planner` command: mounts the verbs and turns PlannerError into one line and an exit code."""

from __future__ import annotations

import sys

import typer

from planner import __version__
from planner.cli import catalog, deploy, doctor, gpus, plan, probe
from planner.errors import PlannerError

app = typer.Typer(
    name="planner",
    help="Plan, deploy and diagnose local LLM serving with llama.cpp: the right quant, layers, context and "
    "flags for your hardware (or hardware you are about to buy).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

probe.register(app)
gpus.register(app)
plan.register(app)
deploy.register(app)
doctor.register(app)
catalog.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"planner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """planner: how to run a large language model on the hardware you have, then run it."""


def main() -> None:
    try:
        app()
    except PlannerError as err:
        print(f"planner: error: {err.message}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("planner: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
