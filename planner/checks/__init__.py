"""`planner doctor`: what on this machine stands between the user and a running model, and how to fix it."""

from planner.checks.checks import CHECKS, run_checks
from planner.checks.context import CheckContext, Finding, Findings, Severity

__all__ = ["CHECKS", "CheckContext", "Finding", "Findings", "Severity", "run_checks"]
