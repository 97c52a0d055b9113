"""deploy() without launching: download from the local hub, render, report (JSON and rich agree)."""

from __future__ import annotations

import json
from pathlib import Path

from localhub import LocalHub, local_hub  # noqa: F401 - the fixture
from rich.console import Console

from planner.rendering.deploy import show_deploy
from planner.serving.pipeline import deploy
from planner.types.deploy import DeployOptions

from .conftest import TESLA_P4, make_plan

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"


def hub_plan(smollm2_path: Path):  # noqa: ANN201
    plan = make_plan(smollm2_path, [TESLA_P4], repo=REPO)
    plan.model = plan.model.model_copy(update={"file": FILE, "files": [FILE]})
    return plan


def test_deploy_renders_compose_for_the_downloaded_file(
    local_hub: LocalHub,  # noqa: F811
    smollm2_path: Path,
    tmp_path: Path,
):
    local_hub.add_file(REPO, FILE, smollm2_path)
    report, launched = deploy(hub_plan(smollm2_path), DeployOptions(out_dir=tmp_path / "out"))
    assert launched is None
    data = json.loads(report.model_dump_json())
    assert data["launch"] is None and data["endpoint"] == "http://127.0.0.1:8080/v1"
    assert data["plan"]["settings"]["ctx_size"] == 2048
    assert data["api_key_file"] == str((tmp_path / "out" / "api-key").resolve())
    assert set(map(lambda f: Path(f).name, data["files"])) == {"api-key", ".env", "compose.yml"}
    compose = (tmp_path / "out" / "compose.yml").read_text()
    # The compose file mounts the real blob behind the cache's snapshot link, under the file's own name.
    assert str(Path(report.model_path).resolve()) in compose and f"/models/{FILE}" in compose
    assert any("driver" in note for note in report.notes)  # the P4's driver 535 is too old for the image

    console = Console(record=True, width=200)
    show_deploy(report, console)
    text = console.export_text()
    assert report.endpoint in text and "OpenAI(base_url=" in text and report.api_key_file in text


def test_no_download_renders_without_fetching(local_hub: LocalHub, smollm2_path: Path, tmp_path: Path):  # noqa: F811
    local_hub.add_file(REPO, FILE, smollm2_path)
    report, _ = deploy(hub_plan(smollm2_path), DeployOptions(out_dir=tmp_path, download=False, target="k8s"))
    assert not report.model.present and not Path(report.model_path).exists()
    assert local_hub.bytes_served() == 0
    assert (tmp_path / "k8s.yaml").is_file() and any("--no-download" in n for n in report.notes)
