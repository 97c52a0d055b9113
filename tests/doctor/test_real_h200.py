"""Doctor on a real recording: `planner probe --json` taken on a lent NVIDIA H200 (driver 580.159.04)."""

from __future__ import annotations

import json
from pathlib import Path

from planner.checks import run_checks
from planner.types.hardware import Hardware

PROBE = Path(__file__).resolve().parent.parent / "fixtures" / "probe-h200.json"


def test_healthy_h200_has_no_warning_or_error() -> None:
    hardware = Hardware.model_validate(json.loads(PROBE.read_text()))
    assert hardware.gpus[0].name == "NVIDIA H200" and hardware.gpus[0].compute_capability == "9.0"
    findings = run_checks(hardware)
    bad = [(f.id, f.severity, f.title) for f in findings.findings if f.severity in ("warn", "error")]
    assert bad == []
    ids = {f.id for f in findings.findings}
    assert "driver-ok" in ids and "engines-ok" in ids
