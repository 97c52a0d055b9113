"""A deploy made from a hub plan downloads exactly what was planned: the commit the listing came from, checked
against the listing's own sha256, with no second metadata request for it. The plan comes from planner.plan
against the local hub (the real huggingface_hub client), not from a hand-built dict."""

from __future__ import annotations

from pathlib import Path

from localhub import LocalHub, local_hub  # noqa: F401 - the fixture

import planner
from planner.types.deploy import DeployOptions

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"


def test_a_hub_plan_pins_its_commit_and_the_listing_sha256_is_used(
    local_hub: LocalHub,  # noqa: F811
    smollm2_path: Path,
    tmp_path: Path,
) -> None:
    hub_file = local_hub.add_file(REPO, FILE, smollm2_path)
    commit = local_hub.add_repo(REPO).sha
    hw = planner.what_if(gpus=["Tesla P4"], ram="16GB", cpu_cores=4)
    plan = planner.plan(REPO, hardware=hw)
    assert plan.model.revision == commit and plan.model.name == REPO
    assert [(f.path, f.size_bytes, f.sha256) for f in plan.model.file_info] == [(FILE, hub_file.size, hub_file.sha256)]

    # (The local hub keeps no history, so a repo that moves on cannot be shown here; what deploy asks for can.)
    local_hub.reset_log()
    report = planner.deploy(plan, DeployOptions(out_dir=tmp_path / "out", target="command"))

    assert report.model.verified_sha256 and report.model.commit == commit
    paths = [r.path for r in local_hub.requests]
    assert not any("paths-info" in p for p in paths), paths  # the listing's sha256 was used, not asked again
    downloads = [r.path for r in local_hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert downloads and all(f"/resolve/{commit}/" in p for p in downloads), downloads  # not /resolve/main/
    assert Path(report.model_path).read_bytes() == smollm2_path.read_bytes()
