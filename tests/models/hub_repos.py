"""Names of the repos the model-source tests serve from the local hub (imported by tests/models/*)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from localhub import LocalHub

SMOLLM2_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_REPO = "planner-test/tiny-llama-GGUF"
SPLIT_REPO = "planner-test/tiny-split-GGUF"
GEMMA_REPO = "planner-test/tiny-gemma2-GGUF"
GATED_REPO = "meta-llama/Llama-Gated-GGUF"
NO_GGUF_REPO = "planner-test/safetensors-only"


@dataclass
class HubModels:
    hub: LocalHub
    files: dict[str, Path]  # path in TINY_REPO etc. -> the local file served
