"""The llama.cpp server image chosen for a machine: what render writes, doctor explains and deploy launches."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Backend = Literal["cuda", "rocm", "vulkan", "intel", "cpu"]


class ImageChoice(BaseModel):
    """The official llama.cpp server image for a machine, and what it needs from the host."""

    image: str  # full pinned reference, e.g. ghcr.io/ggml-org/llama.cpp:server-cuda-b10470
    backend: Backend
    cuda_version: str | None = None
    min_driver: str | None = None  # minimum Linux driver for the image's CUDA toolkit
    reasons: list[str] = Field(default_factory=list)
    jit_warning: str | None = None
    tag: str = ""
    build: str = ""
    port: int = 8080
    healthcheck: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    jit_cache_dir: str | None = None  # mount a volume here when jit_warning is set
    runs_on_gpu: bool = True  # False: no code in the image for this GPU (or no GPU): it would run on the CPU
    sources: list[str] = Field(default_factory=list)
