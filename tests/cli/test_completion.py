"""Shell completion is on: `planner --show-completion` prints a script that completes planner's verbs (typer
detects the shell from the parent process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_show_completion_prints_planners_completion_script() -> None:
    planner_script = Path(sys.executable).parent / "planner"  # the console script pip installed
    done = subprocess.run([str(planner_script), "--show-completion"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "_PLANNER_COMPLETE=complete_" in done.stdout  # the hook the shell calls back into planner with
