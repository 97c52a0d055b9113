"""Hostile repo ids and hostile repos on the local hub (issue #16, Medium 4 and Low).

The real huggingface_hub client talks to tests/localhub.py on 127.0.0.1; nothing reaches the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ggufgen import write_model
from localhub import LocalHub, local_hub  # noqa: F401  (the fixture)
from typer.testing import CliRunner

from planner.cli.app import app
from planner.errors import BadInput
from planner.models.refresh import refresh_entry
from planner.models.sources import check_repo_id, facts_for, list_repo_ggufs, resolve_model

from .hostile_gguf import write_gguf

ROOT = Path(__file__).resolve().parent.parent.parent
BAD_REPO_IDS = [
    "owner/..",  # passes planner's own pattern, not the hub's
    "a--b/model",
    "owner/model--x",
    "owner/" + "x" * 97,  # the hub allows 96 characters per part
    "o" * 97 + "/model",
    "owner/.hidden",
    "owner/model.git",
]


@pytest.mark.parametrize("repo", BAD_REPO_IDS)
def test_bad_repo_ids_are_refused_before_any_request(local_hub: LocalHub, repo: str) -> None:  # noqa: F811
    local_hub.add_file("owner/model", "m.gguf", b"GGUF")
    with pytest.raises(BadInput, match="is not a valid Hugging Face repo id"):
        resolve_model(repo)
    with pytest.raises(BadInput, match="is not a valid Hugging Face repo id"):
        list_repo_ggufs(repo)
    assert local_hub.requests == []


@pytest.mark.parametrize("repo", ["owner/model", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "a/" + "x" * 96, "a_b/c.d-e"])
def test_good_repo_ids_pass(repo: str) -> None:
    check_repo_id(repo)


def _planner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("owner/..", "is not a valid Hugging Face repo id"),
        ("a--b/model", "is not a valid Hugging Face repo id"),
        ("owner/" + "x" * 300, "is not a valid Hugging Face repo id"),  # exit 4 from the hub before
        ("./" + "m" * 300 + ".gguf", "file name too long"),  # ENAMETOOLONG was an OSError: exit 4
    ],
)
def test_cli_names_are_bad_input(model: str, message: str) -> None:
    proc = _planner("plan", model, "--gpu", "RTX 3090")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: ") and message in lines[0], proc.stderr


def test_block_count_bomb_over_the_hub_is_refused_quickly(local_hub: LocalHub, tmp_path: Path) -> None:  # noqa: F811
    local_hub.add_file("owner/bomb-GGUF", "bomb-Q8_0.gguf", write_gguf(tmp_path / "b.gguf", block_count=10**7))
    start = time.perf_counter()
    with pytest.raises(BadInput, match="block_count is 10000000 but the tensor table holds tensors for only 1 block"):
        facts_for(resolve_model("owner/bomb-GGUF"))
    assert time.perf_counter() - start < 2.0


def test_refresh_of_a_bomb_is_one_line(local_hub: LocalHub, tmp_path: Path) -> None:  # noqa: F811
    local_hub.add_file("owner/bomb-GGUF", "bomb-Q8_0.gguf", write_gguf(tmp_path / "b.gguf", block_count=10**6))
    result = CliRunner().invoke(app, ["catalog", "refresh", "owner/bomb-GGUF", "--catalog-dir", str(tmp_path / "c")])
    assert isinstance(result.exception, BadInput) and "block_count is 1000000" in result.exception.message
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_refresh_of_quants_with_different_layer_counts_is_refused(local_hub: LocalHub, tmp_path: Path) -> None:  # noqa: F811
    """One repo holding two models (4 and 6 layers): one catalog entry cannot describe both; nothing is written."""
    repo = "owner/two-models-GGUF"
    local_hub.add_file(repo, "small-Q8_0.gguf", write_model(tmp_path / "a.gguf", "llama", n_layer=4, wtype="Q8_0"))
    local_hub.add_file(repo, "big-F16.gguf", write_model(tmp_path / "b.gguf", "llama", n_layer=6))
    folder = tmp_path / "catalog"
    with pytest.raises(BadInput, match=r"are different models \(n_layer 4 vs 6\)"):
        refresh_entry(repo, None, folder)
    assert not folder.exists() or not list(folder.iterdir())
    refresh_entry(repo, ["Q8_0"], folder)  # one model at a time still works
    assert len(list(folder.glob("*.yaml"))) == 1
