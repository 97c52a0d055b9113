"""Fixtures for the model-source tests: a local hub holding real and generated GGUF repos."""

from __future__ import annotations

from pathlib import Path

import pytest
from ggufgen import write_model, write_split_model
from hub_repos import (
    GATED_REPO,
    GEMMA_REPO,
    NO_GGUF_REPO,
    SMOLLM2_FILE,
    SMOLLM2_REPO,
    SPLIT_REPO,
    TINY_REPO,
    HubModels,
)
from localhub import LocalHub, local_hub  # noqa: F401  (the fixture, until tests/conftest.py imports it)


@pytest.fixture(autouse=True)
def _no_real_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach huggingface.co: point the endpoint at a closed local port unless a hub replaces it."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture(scope="session")
def generated_ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small generated GGUFs (tests/ggufgen.py), written once per session."""
    root = tmp_path_factory.mktemp("generated")
    out = {
        "tiny-llama-F16.gguf": write_model(root / "tiny-llama-F16.gguf", "llama"),
        "tiny-llama-Q8_0.gguf": write_model(root / "tiny-llama-Q8_0.gguf", "llama", wtype="Q8_0"),
        "mmproj-tiny-llama-f16.gguf": write_model(root / "mmproj-tiny-llama-f16.gguf", "llama", n_layer=1),
        "tiny-gemma2-Q8_0.gguf": write_model(root / "tiny-gemma2-Q8_0.gguf", "gemma2", n_layer=6, wtype="Q8_0"),
    }
    split_dir = root / "split"
    split_dir.mkdir()
    for part in write_split_model(split_dir, 3, "llama", name="tiny-Q8_0", wtype="Q8_0"):
        out[f"split/{part.name}"] = part
    return out


@pytest.fixture
def hub_models(local_hub: LocalHub, generated_ggufs: dict[str, Path], smollm2_path: Path) -> HubModels:  # noqa: F811
    """The local hub with: the real SmolLM2 GGUF, generated llama/gemma2 repos (with an mmproj and an imatrix),
    a 3-part split set, a gated repo and a repo with no GGUF."""
    hub = local_hub
    hub.add_file(SMOLLM2_REPO, SMOLLM2_FILE, smollm2_path)
    hub.add_file(SMOLLM2_REPO, "README.md", b"# SmolLM2\n")
    for name in ("tiny-llama-F16.gguf", "tiny-llama-Q8_0.gguf", "mmproj-tiny-llama-f16.gguf"):
        hub.add_file(TINY_REPO, name, generated_ggufs[name])
    hub.add_file(TINY_REPO, "imatrix.gguf", b"GGUF" + bytes(2000))
    hub.add_file(GEMMA_REPO, "tiny-gemma2-Q8_0.gguf", generated_ggufs["tiny-gemma2-Q8_0.gguf"])
    for key, path in generated_ggufs.items():
        if key.startswith("split/"):
            hub.add_file(SPLIT_REPO, path.name, path)
    hub.add_repo(GATED_REPO, gated=True)
    hub.add_file(GATED_REPO, "llama-gated-Q8_0.gguf", generated_ggufs["tiny-llama-Q8_0.gguf"])
    hub.add_file(NO_GGUF_REPO, "config.json", b'{"model_type": "llama"}')
    hub.add_file(NO_GGUF_REPO, "model.safetensors", bytes(4096))
    return HubModels(hub, generated_ggufs)
