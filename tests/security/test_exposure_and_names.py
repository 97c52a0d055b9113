"""A bind other machines can reach is said out loud; a file whose stem ends in a space can be planned and deployed."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def planner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT
    )


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ggufgen import write_model

    return write_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf", zeros=True)


# --- --host -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["compose", "command"])
def test_a_bind_on_every_interface_is_warned_about_with_the_key_still_required(
    tiny_gguf: Path, tmp_path: Path, target: str
):
    out = tmp_path / "out"
    proc = planner("deploy", str(tiny_gguf), "--gpu", "Tesla P4", "--out", str(out), "--target", target,
                   "--host", "0.0.0.0", "--port", "9123", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (note,) = [n for n in report["notes"] if "reachable from other machines" in n]
    assert "listens on every network interface" in note and "port 9123" in note
    assert f"needs the API key in {out.resolve() / 'api-key'}" in note
    # ... and the files do what the note says: bound on all interfaces, with the key required.
    if target == "compose":
        assert '"0.0.0.0"' in (out / "compose.yml").read_text()
    else:
        argv = shlex.split((out / "command.sh").read_text().splitlines()[-1])
        assert argv[argv.index("--host") + 1] == "0.0.0.0" and "--api-key-file" in argv

    shown = planner("deploy", str(tiny_gguf), "--gpu", "Tesla P4", "--out", str(out), "--target", target,
                    "--host", "0.0.0.0", "--port", "9123")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "note: --host 0.0.0.0: the server listens on every network interface" in shown.stdout


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("::1", False), ("localhost", False),
                                               ("::", True), ("192.0.2.7", True)])  # fmt: skip
def test_only_a_loopback_bind_goes_without_the_warning(tiny_gguf: Path, tmp_path: Path, host: str, warned: bool):
    from planner.serving.artifacts import render_artifacts

    from deploy.conftest import TESLA_P4, make_plan  # isort: skip

    rendered = render_artifacts(
        make_plan(tiny_gguf, [TESLA_P4]), model_files=[str(tiny_gguf)], out_dir=tmp_path, target="command", host=host
    )
    assert any("reachable from other machines" in n for n in rendered.notes) is warned


# --- a stem that ends in a space ---------------------------------------------------------------------------------


def test_a_file_named_with_a_trailing_space_in_its_stem_is_planned_and_deployed(tiny_gguf: Path, tmp_path: Path):
    model = tmp_path / "my model .gguf"
    model.write_bytes(tiny_gguf.read_bytes())
    plan = planner("plan", str(model), "--gpu", "Tesla P4", "--json")
    assert plan.returncode == 0, plan.stderr  # was: "has no quant my model (available: my model )", exit 2
    data = json.loads(plan.stdout)
    assert data["model"]["file"] == str(model) and data["command"][data["command"].index("--model") + 1] == str(model)

    out = tmp_path / "out"
    deployed = planner("deploy", str(model), "--gpu", "Tesla P4", "--out", str(out), "--target", "command")
    assert deployed.returncode == 0, deployed.stderr
    argv = shlex.split((out / "command.sh").read_text().splitlines()[-1])
    assert argv[argv.index("--model") + 1] == str(model)
