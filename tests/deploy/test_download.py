"""Downloads through the real huggingface_hub client from the local hub: cache layout, resume, sha256, tokens."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from localhub import LocalHub, local_hub  # noqa: F401 - the fixture

from planner.errors import BadInput, EnvironmentProblem
from planner.serving.download import ensure_model
from planner.types.model import PlannedModel

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model(file: str = FILE, **extra: object) -> PlannedModel:
    return PlannedModel.model_validate({"source": REPO, "repo": REPO, "file": file, "files": [file], **extra})


@pytest.fixture
def hub(local_hub: LocalHub, smollm2_path: Path) -> LocalHub:  # noqa: F811
    local_hub.add_file(REPO, FILE, smollm2_path)
    return local_hub


def gets(hub: LocalHub) -> list:
    return [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]


def test_download_into_the_hub_cache_is_verified_and_found_by_huggingface_hub(hub: LocalHub, smollm2_path: Path):
    from huggingface_hub import try_to_load_from_cache

    result = ensure_model(model())
    path = Path(result.path)
    assert path.is_symlink() and "/snapshots/" in str(path)
    assert sha256_of(path) == sha256_of(smollm2_path)
    assert result.verified_sha256 and result.downloaded_bytes == smollm2_path.stat().st_size
    # huggingface_hub's own lookup finds the file where planner put it: the standard cache layout.
    assert try_to_load_from_cache(REPO, FILE) == str(path)
    hub.reset_log()
    again = ensure_model(model())
    assert again.path == result.path and again.downloaded_bytes == 0
    assert gets(hub) == []


def test_an_interrupted_run_is_resumed_by_the_next_with_a_range_request(hub: LocalHub, smollm2_path: Path):
    size = smollm2_path.stat().st_size
    hub.drop_after(REPO, FILE, 3_000_000)
    with pytest.raises(EnvironmentProblem, match="run the same command again to resume"):
        ensure_model(model(), retries=0)
    partials = list(Path(os.environ["HF_HOME"]).rglob("*.partial"))
    assert len(partials) == 1
    kept = partials[0].stat().st_size
    assert 0 < kept <= 3_000_000

    hub.reset_log()
    result = ensure_model(model())
    (resumed,) = gets(hub)
    assert resumed.range == f"bytes={kept}-"
    assert resumed.status == 206 and resumed.bytes_sent == size - kept
    assert result.resumed_from_bytes == kept and result.downloaded_bytes == size - kept
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)
    assert not partials[0].exists()


def test_a_dropped_connection_is_resumed_within_the_run(hub: LocalHub, smollm2_path: Path):
    hub.drop_after(REPO, FILE, 1_000_000)
    result = ensure_model(model())
    first, second = gets(hub)
    assert first.range is None and first.bytes_sent == 1_000_000
    assert second.range is not None and second.range.startswith("bytes=")
    assert int(second.range[len("bytes=") : -1]) > 0
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)


def test_a_sha256_mismatch_deletes_the_file_and_fails_in_one_line(hub: LocalHub):
    bad = model(file_info=[{"path": FILE, "sha256": "0" * 64}])
    with pytest.raises(EnvironmentProblem, match="sha256") as info:
        ensure_model(bad)
    assert "\n" not in info.value.message
    home = Path(os.environ["HF_HOME"])
    assert not list(home.rglob("*.partial"))
    assert not [p for p in home.rglob("blobs/*") if p.is_file()]


def test_models_dir_layout_is_recognised_by_huggingface_hub(hub: LocalHub, tmp_path: Path, smollm2_path: Path):
    from huggingface_hub import hf_hub_download

    result = ensure_model(model(), models_dir=tmp_path / "models")
    assert Path(result.path) == tmp_path / "models" / FILE
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)
    hub.reset_log()
    assert hf_hub_download(REPO, FILE, local_dir=tmp_path / "models") == str(tmp_path / "models" / FILE)
    assert gets(hub) == []  # huggingface_hub sees the file as complete: nothing fetched again


def test_every_shard_of_a_split_model_is_fetched(local_hub: LocalHub, tmp_path: Path):  # noqa: F811
    shards = [f"big/Model-Q4_K_M-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    contents = [os.urandom(200_000 + i) for i in range(3)]
    for name, data in zip(shards, contents, strict=True):
        local_hub.add_file("org/split-GGUF", name, data)
    spec = PlannedModel(repo="org/split-GGUF", file=shards[0], files=shards)
    result = ensure_model(spec, models_dir=tmp_path)
    assert result.path == str(tmp_path / shards[0])
    assert [Path(p).read_bytes() for p in result.files] == contents
    assert result.size_bytes == sum(len(c) for c in contents)


def test_a_gated_repo_needs_hf_token(local_hub: LocalHub, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    local_hub.add_repo(REPO, gated=True)
    local_hub.add_file(REPO, FILE, smollm2_path)
    with pytest.raises(EnvironmentProblem, match="gated.*HF_TOKEN"):
        ensure_model(model())
    local_hub.grant(REPO, "hf_test_token")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    result = ensure_model(model())
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)
    assert all(r.authorization == "Bearer hf_test_token" for r in gets(local_hub))


def test_not_enough_disk_space_is_reported_before_downloading(hub: LocalHub, monkeypatch: pytest.MonkeyPatch):
    # A full disk cannot be made here: fake only what the OS reports, at the boundary.
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5_000_000, 5_000_000))
    with pytest.raises(EnvironmentProblem, match=r"needs 0\.09 GiB, 0\.00 GiB is free"):
        ensure_model(model())
    assert gets(hub) == []


def test_no_download_says_where_the_file_would_be(hub: LocalHub):
    result = ensure_model(model(), download=False)
    assert not result.present and "/snapshots/" in result.path and result.path.endswith(FILE)
    assert gets(hub) == []
    assert not Path(result.path).exists()


def test_unknown_repo_and_file_are_bad_input(hub: LocalHub):
    with pytest.raises(BadInput, match="no such model repo"):
        ensure_model(PlannedModel.model_validate({"repo": "nobody/nothing", "file": "x.gguf"}))
    with pytest.raises(BadInput, match="no such file"):
        ensure_model(model(file="missing.gguf"))


def test_local_files_are_used_in_place(smollm2_path: Path):
    result = ensure_model(
        PlannedModel.model_validate({"source": str(smollm2_path), "repo": None, "file": smollm2_path.name})
    )
    assert result.source == "local" and result.path == str(smollm2_path.resolve())
    with pytest.raises(BadInput, match="not found"):
        ensure_model(PlannedModel.model_validate({"source": "/nonexistent/x.gguf", "repo": None, "file": "x.gguf"}))


def test_offline_uses_what_an_earlier_run_downloaded(hub: LocalHub, monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants as hf_constants

    first = ensure_model(model())
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_log()
    again = ensure_model(model())
    assert again.path == first.path and again.present and again.downloaded_bytes == 0
    assert hub.requests == []
    with pytest.raises(EnvironmentProblem, match="HF_HUB_OFFLINE"):
        ensure_model(model(file="other.gguf"))
