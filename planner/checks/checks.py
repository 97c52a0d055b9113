"""The doctor's registry: every check is a small function `(ctx) -> Finding | list[Finding] | None`.

run_checks() runs them in order (driver first, then engines, GPU state, host) and returns one Findings object
that `planner doctor` prints and dumps. Checks read only the Hardware (and the Plan when a MODEL was given), so
they run the same on a live probe, a saved profile or a what-if machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from planner.checks import driver_checks, engine_checks, gpu_checks, host_checks
from planner.checks.context import SEVERITY_ORDER, CheckContext, Finding, Findings
from planner.types.hardware import Hardware
from planner.types.plan import Plan

Check = Callable[[CheckContext], "Finding | list[Finding] | None"]

CHECKS: list[Check] = [
    *driver_checks.CHECKS,
    *engine_checks.CHECKS,
    *gpu_checks.CHECKS,
    *host_checks.CHECKS,
]


def _as_list(result: Finding | Iterable[Finding] | None) -> list[Finding]:
    if result is None:
        return []
    if isinstance(result, Finding):
        return [result]
    return list(result)


def run_checks(
    hardware: Hardware,
    plan: Plan | None = None,
    model: str | None = None,
    checks: list[Check] | None = None,
    model_on_disk: bool = False,
) -> Findings:
    """Run every check; findings come back worst first (errors, warnings, notes, passes), stable within a level.

    `model_on_disk`: the plan's model files are already local (a path, or in the cache): no download to fit.
    """
    ctx = CheckContext(hardware=hardware, plan=plan, model_on_disk=model_on_disk)
    found: list[Finding] = []
    for check in checks if checks is not None else CHECKS:
        found.extend(_as_list(check(ctx)))
    found.sort(key=lambda finding: SEVERITY_ORDER[finding.severity])
    image = ctx.image if hardware.gpus or plan is not None else None
    return Findings(findings=found, hardware=hardware, model=model, image=image)
