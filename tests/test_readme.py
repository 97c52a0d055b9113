"""The README's Python API snippet runs as written and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _snippet() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's Python API section has no python block"
    return match.group(1)


def test_the_python_api_snippet_runs_and_prints_the_p4_story(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", _snippet()], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Q5_0 26 4096"  # the comments in the snippet
    assert lines[1] == "Q2_K 41 qwen1_5-14b-chat-q2_k.gguf"
    assert "compose.yml" in lines[3] and "('api-key', '0o600')" in lines[3]
    assert lines[-1].startswith("bad input: ")
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"])
