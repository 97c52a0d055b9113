"""ModelFacts: everything the estimator needs to know about one GGUF model file (or split set).

Built from a real GGUF header (models.gguf_header) or from an offline catalog entry (models.catalog), which is
itself produced from real headers by `planner catalog refresh`. Per-layer byte totals are derived from the
tensor list, so the estimator never guesses how a quant mixes tensor types.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, PrivateAttr

_BLOCK_RE = re.compile(r"^blk\.(\d+)\.")
_EXPERT_RE = re.compile(r"\.ffn_(up|down|gate|gate_up)_(ch|)exps")
# Tensors llama.cpp counts as the "output layer" (src/llama-arch.cpp): they follow -ngl's output unit.
OUTPUT_TENSORS = ("output_norm.weight", "output_norm.bias", "output.weight", "output.bias", "cls.weight")
# Input tensors always stay on the CPU (used through GET_ROWS), whatever -ngl says.
INPUT_PREFIXES = ("token_embd", "pos_embd", "token_types", "per_layer_token_embd")


class TensorInfo(BaseModel):
    name: str
    ggml_type: str  # gguf.GGMLQuantizationType name, e.g. "Q4_K"
    shape: list[int]  # GGUF order: ne[0] (row length) first
    n_bytes: int
    offset: int = 0  # absolute offset in its file
    file_index: int = 0  # which shard of a split model holds it


class ModelFacts(BaseModel):
    source: str = ""  # what the user typed: repo, repo:quant, path or alias
    repo: str | None = None
    file: str = ""  # the (first) file name
    files: list[str] = Field(default_factory=list)  # every shard, in order
    quant: str = "unknown"  # llama.cpp file type name, e.g. "Q4_K_M"
    arch: str
    name: str | None = None
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int | list[int]
    head_dim_k: int
    head_dim_v: int
    n_ff: int | list[int] = 0
    n_vocab: int
    context_length: int
    sliding_window: int | None = None
    swa_layers: list[bool] = Field(default_factory=list)  # per layer: True when the layer uses sliding-window KV
    n_expert: int = 0
    n_expert_used: int = 0
    expert_ff: int = 0
    kv_lora_rank: int | None = None  # MLA models store a compressed latent KV
    n_params: int = 0
    size_bytes: int = 0  # sum of tensor data (the GGUF file(s) minus headers)
    tensors: list[TensorInfo] = Field(default_factory=list)
    # Derived byte totals (filled by `derive_layout`; stored directly in catalog entries).
    layer_bytes: list[int] = Field(default_factory=list)  # per repeating block
    layer_expert_bytes: list[int] = Field(default_factory=list)  # per block, the ffn_*_exps tensors
    input_bytes: int = 0  # token embedding and friends: always host-side
    output_bytes: int = 0  # output norm + lm_head (with tied embeddings: the duplicate of token_embd)
    tied_embeddings: bool = False
    mmproj_file: str | None = None
    mmproj_bytes: int = 0
    header_bytes_read: int | None = None  # bytes transferred to learn this (remote reads)
    origin: str = "gguf"  # gguf | catalog
    _kv_shapes: list[tuple[int, int, bool]] | None = PrivateAttr(default=None)
    _derived: dict = PrivateAttr(default_factory=dict)  # memo for estimators (per-unit padding, ...)

    def layer_kv_shapes(self) -> list[tuple[int, int, bool]]:
        """(K width, V width, is SWA) per layer, computed once: the solver asks thousands of times."""
        if self._kv_shapes is None:
            self._kv_shapes = [
                (self.kv_width_k(il), self.kv_width_v(il), self.is_swa(il)) for il in range(self.n_layer)
            ]
        return self._kv_shapes

    # --- per-layer attention shape -------------------------------------------------------------
    def head_kv(self, il: int) -> int:
        return self.n_head_kv[il] if isinstance(self.n_head_kv, list) else self.n_head_kv

    def kv_width_k(self, il: int) -> int:
        if self.kv_lora_rank:  # MLA: one latent row of kv_lora_rank + rope dims (head_dim_k holds the total)
            return self.head_dim_k
        return self.head_dim_k * self.head_kv(il)

    def kv_width_v(self, il: int) -> int:
        if self.kv_lora_rank:
            return 0  # since b7832 V is a view of K for MLA
        return self.head_dim_v * self.head_kv(il)

    def is_swa(self, il: int) -> bool:
        return bool(self.swa_layers) and il < len(self.swa_layers) and self.swa_layers[il]

    def ff(self, il: int = 0) -> int:
        return self.n_ff[il] if isinstance(self.n_ff, list) else self.n_ff

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0

    # --- byte layout -----------------------------------------------------------------------------
    def derive_layout(self) -> ModelFacts:
        """Fill layer/input/output byte totals from the tensor list (no-op for catalog entries)."""
        if not self.tensors:
            return self
        layers = [0] * self.n_layer
        experts = [0] * self.n_layer
        input_bytes = output_bytes = other = 0
        names = {t.name for t in self.tensors}
        for t in self.tensors:
            m = _BLOCK_RE.match(t.name)
            if m and int(m.group(1)) < self.n_layer:
                il = int(m.group(1))
                layers[il] += t.n_bytes
                if _EXPERT_RE.search(t.name):
                    experts[il] += t.n_bytes
            elif t.name.startswith(INPUT_PREFIXES):
                input_bytes += t.n_bytes
            elif t.name in OUTPUT_TENSORS:
                output_bytes += t.n_bytes
            else:
                other += t.n_bytes  # e.g. rope_freqs: small, placed with the output layer by llama.cpp
        tied = "output.weight" not in names
        if tied:
            # No lm_head: llama.cpp duplicates token_embd for the output layer (loaded twice when offloaded).
            output_bytes += sum(t.n_bytes for t in self.tensors if t.name == "token_embd.weight")
        self.layer_bytes = layers
        self.layer_expert_bytes = experts
        self.input_bytes = input_bytes
        self.output_bytes = output_bytes + other
        self.tied_embeddings = tied
        if not self.size_bytes:
            self.size_bytes = sum(t.n_bytes for t in self.tensors)
        return self

    def tensor(self, name: str) -> TensorInfo | None:
        return next((t for t in self.tensors if t.name == name), None)

    def summary(self) -> dict[str, object]:
        """The shape fields of PlannedModel (the `model` section of plan --json)."""
        return {
            "source": self.source,
            "repo": self.repo,
            "file": self.file,
            "files": self.files,
            "quant": self.quant,
            "arch": self.arch,
            "n_layer": self.n_layer,
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "n_head_kv": self.n_head_kv,
            "n_vocab": self.n_vocab,
            "context_length": self.context_length,
            "n_params": self.n_params,
            "size_bytes": self.size_bytes,
            "sliding_window": self.sliding_window,
            "n_expert": self.n_expert,
            "n_expert_used": self.n_expert_used,
            "mmproj_bytes": self.mmproj_bytes,
            "origin": self.origin,
        }


class ModelFile(BaseModel):
    """One file of a planned model: its path in the repo (or on disk), size, and the hub's LFS sha256."""

    path: str
    size_bytes: int = 0
    sha256: str | None = None


class PlannedModel(BaseModel):
    """The `model` section of a Plan: which model, which file(s) at which revision, and its shape.

    The field names are the JSON contract of `plan --json` (issue #4): add fields, never rename.
    """

    name: str = ""  # the model's name (catalog name, repo or file stem), not what the user typed
    source: str = ""  # what the user typed: repo, repo:quant, path or alias
    repo: str | None = None
    revision: str | None = None  # the commit the hub listing came from: deploy downloads exactly that
    file: str = ""  # the (first) file
    files: list[str] = Field(default_factory=list)  # every shard, in order
    file_info: list[ModelFile] = Field(default_factory=list)  # the same files with size and sha256
    quant: str = "unknown"
    arch: str = ""
    n_layer: int = 0
    n_embd: int = 0
    n_head: int = 0
    n_head_kv: int | list[int] = 0
    n_vocab: int = 0
    context_length: int = 0
    n_params: int = 0
    size_bytes: int = 0
    sliding_window: int | None = None
    n_expert: int = 0
    n_expert_used: int = 0
    mmproj: ModelFile | None = None
    mmproj_bytes: int = 0
    origin: str = "gguf"  # gguf | catalog

    def known_sha256(self) -> dict[str, str]:
        """path -> sha256 for the files whose checksum the hub's listing gave."""
        return {f.path: f.sha256 for f in self.file_info if f.sha256}

    def file_names(self) -> list[str]:
        return list(self.files) or ([self.file] if self.file else [])
