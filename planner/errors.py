"""The one place where failures become exit codes.

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


class BadInput(PlannerError):
    exit_code = 2


class NothingFits(PlannerError):
    exit_code = 3


class EnvironmentProblem(PlannerError):
    exit_code = 4
