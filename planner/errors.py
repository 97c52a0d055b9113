"""The one place where failures become exit codes, with standard-library bases for library callers.

Bad input is a ValueError, an environment problem an OSError, the hub out of reach a ConnectionError, nothing
fitting a RuntimeError: `except ValueError` in a caller's code catches planner's bad-input errors too.

Exit codes (documented in the README):
  0  success / a plan fits / doctor found no error
  1  doctor found an error-severity finding; deploy verification failed; an internal error (a bug: one line,
     PLANNER_DEBUG=1 shows the traceback)
  2  bad input (unknown GPU, not a GGUF, missing repo, bad option value, unknown option)
  3  nothing fits (plan)
  4  environment problem (no network when it is required, download failed, server failed to start, a file
     system refusing a write)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations


class PlannerError(Exception):
    """An error with a one-line message meant for the user, and the exit code to leave with."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(PlannerError, ValueError):
    """What the user gave cannot be used (unknown GPU, not a GGUF, missing repo, bad option value)."""

    exit_code = 2


class DataFileError(BadInput):
    """A data file (hardware_db/, a --catalog-dir, a --hardware profile's database) is missing, not YAML, or holds
    an entry that does not validate: the message names the file and the entry."""


class NothingFits(PlannerError, RuntimeError):
    """Not even the smallest option fits the hardware."""

    exit_code = 3


class EnvironmentProblem(PlannerError, OSError):
    """The machine or the network is in the way (no access, download failed, a server that would not start)."""

    exit_code = 4

    def __str__(self) -> str:  # OSError would print its errno fields; the message is the whole story
        return self.message


class HubUnreachable(EnvironmentProblem, ConnectionError):
    """The hub could not be reached (no network, DNS, 5xx): callers may fall back to the catalog."""
