"""The `planner` command: mounts the verbs and turns PlannerError into one line and an exit code."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

try:  # Ctrl-C while the CLI is still importing gets the same one line and exit code as one later on
    import typer

    from planner import __version__
    from planner.cli import catalog, deploy, doctor, gpus, plan, probe
    from planner.config import debug
    from planner.errors import PlannerError
except KeyboardInterrupt:
    sys.stderr.write("planner: interrupted\n")
    raise SystemExit(130) from None

if TYPE_CHECKING:
    from types import ModuleType

app = typer.Typer(
    name="planner",
    help="Plan, deploy and diagnose local LLM serving with llama.cpp: the right quant, layers, context and "
    "flags for your hardware (or hardware you are about to buy).",
    no_args_is_help=True,
    add_completion=True,  # planner --install-completion (bash, zsh, fish, PowerShell)
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
    """Run the CLI; every failure leaves as one `planner: error: ...` line on stderr and a documented exit code.

    Click runs in non-standalone mode so that its usage errors (unknown option, bad value) come back here as
    exceptions instead of typer's multi-line rich panel, and Ctrl-C reaches us instead of a silent exit 130.
    """
    from planner.cli.interrupt import exit_on_interrupt

    exit_on_interrupt()
    click = _click_exceptions()
    no_args_help = getattr(click, "NoArgsIsHelpError", ())  # click >= 8.2 only
    try:
        code = app(standalone_mode=False)
    except PlannerError as err:
        _fail(err.message, err.exit_code)
    except no_args_help:
        sys.exit(2)  # the help text has been printed already; exit as click does for a missing command
    except click.UsageError as err:
        _fail(f"{err.format_message()} (see `{_command_path(err.ctx)} --help`)", err.exit_code)
    except click.ClickException as err:
        _fail(err.format_message(), err.exit_code)
    except typer.Abort:  # end of input at a prompt
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130, prefix="planner")
    except OSError as err:  # a disk that filled up, a folder that vanished: the system's words, one line
        if debug():
            raise
        where = f": {err.filename}" if err.filename else ""
        _fail(f"{err.strerror or err}{where}", 4)
    except Exception as err:  # a bug: still one line (the contract), with the way to see the traceback
        if debug():
            raise
        _fail(f"internal error ({type(err).__name__}: {err}); please report it (PLANNER_DEBUG=1 shows details)", 1)
    if code == 130:  # typer turns a Ctrl-C inside a command into a bare Exit(130)
        _fail("interrupted", 130, prefix="planner")
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> ModuleType:
    """The click exceptions module typer uses: typer >= 0.20 vendors click as typer._click, older ones import
    click itself; typer.BadParameter is one of them either way, so its module is the right one."""
    import importlib

    return importlib.import_module(typer.BadParameter.__module__)


def _fail(message: str, exit_code: int, *, prefix: str = "planner: error") -> None:
    # One line, whatever the message held: a path or a server reply with a newline must not add lines.
    print(f"{prefix}: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(exit_code)


def _command_path(ctx: object) -> str:
    """`planner plan`, not `python -m planner plan` or a full path to the script."""
    names = []
    while ctx is not None and getattr(ctx, "parent", None) is not None:  # a click Context, typer's or click's
        names.append(getattr(ctx, "info_name", None) or "")
        ctx = getattr(ctx, "parent", None)
    return " ".join(["planner", *reversed(names)])


if __name__ == "__main__":
    main()
