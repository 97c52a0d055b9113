"""`python -m planner` and the `planner` command: Ctrl-C handling first, then the (slower) CLI imports."""

from __future__ import annotations


def run() -> None:
    from planner.cli.interrupt import exit_on_interrupt

    exit_on_interrupt()  # before importing the CLI: a Ctrl-C while typer and rich load is one line too
    from planner.cli.app import main

    main()


if __name__ == "__main__":
    run()
