"""Write small but real GGUF models for tests, with gguf.GGUFWriter.

Each model has the keys and tensors llama.cpp's loader requires for its architecture (src/models/<arch>.cpp in
the llama.cpp vendored by llama-cpp-python 0.3.36) and a minimal valid SentencePiece-style vocabulary
(<unk>, <s>, </s>, the 256 byte tokens and a few word pieces), so llama-cpp-python can load it: the memory
benches use these to compare planner's estimate with what llama.cpp allocates.

Weights: F32/F16 hold small random values; types the `gguf` package can quantize (Q8_0, Q4_0, ...) hold
real quantized random values; every other type (K- and I-quants) holds all-zero blocks, which decode to zero
weights, with the exact byte size of that type. Outputs are then meaningless but memory is exact.

    write_model(tmp_path / "m.gguf", arch="gemma2", n_layer=6)
    write_split_model(tmp_path, n_split=3)          # -> [...-00001-of-00003.gguf, ...]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

ARCHS = ("llama", "qwen2", "gemma2")
N_SPECIAL = 3  # <unk>, <s>, </s>
N_BYTE_TOKENS = 256


@dataclass
class ModelShape:
    """The hyperparameters of a generated model; defaults are tiny and GQA (8 query heads, 2 KV heads)."""

    arch: str = "llama"
    n_layer: int = 4
    n_embd: int = 128
    n_head: int = 8
    n_head_kv: int = 2
    head_dim: int | None = None  # default n_embd // n_head; gemma2 writes it as key_length/value_length
    n_ff: int = 256
    n_vocab: int = 320
    context_length: int = 2048
    wtype: str = "F16"  # ggml type of the 2-D weights (embeddings and matrices)
    tied: bool | None = None  # no output.weight; default: gemma2 tied, others untied
    n_expert: int = 0  # > 0: Mixtral-style MoE (llama arch, ffn_*_exps tensors)
    n_expert_used: int = 0
    sliding_window: int = 64  # gemma2 only
    name: str = "planner test model"
    extra_kv: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    zeros: bool = False  # all-zero weights: valid for every type and fast to write (memory benches)
    # per-tensor types as llama-quantize mixes them, by name part: {"ffn_down_exps": "Q6_K"} (default: wtype)
    tensor_types: dict[str, str] = field(default_factory=dict)

    @property
    def head_dim_(self) -> int:
        return self.head_dim or self.n_embd // self.n_head

    @property
    def is_tied(self) -> bool:
        return self.arch == "gemma2" if self.tied is None else self.tied


def write_model(path: str | Path, arch: str = "llama", **shape: Any) -> Path:
    """Write one GGUF file at `path` and return it. `shape` holds ModelShape fields."""
    spec = ModelShape(arch=arch, **shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, spec.arch)
    _fill(writer, spec)
    _write(writer)
    return path


def write_split_model(directory: str | Path, n_split: int = 3, arch: str = "llama", **shape: Any) -> list[Path]:
    """Write a split set `<stem>-0000i-of-0000n.gguf` (split.* keys, metadata in the first part)."""
    spec = ModelShape(arch=arch, **shape)
    stem = shape.get("name", "split-model").replace(" ", "-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    base = Path(directory) / f"{stem}.gguf"
    n_tensors = sum(1 for _ in _tensor_specs(spec))
    if not 2 <= n_split <= n_tensors:
        raise ValueError(f"n_split must be between 2 and the tensor count {n_tensors}, got {n_split}")
    # GGUFWriter opens a new part when the current one holds split_max_tensors tensors.
    per_part = math.ceil(n_tensors / n_split)
    while math.ceil(n_tensors / per_part) != n_split:
        per_part -= 1
    writer = gguf.GGUFWriter(base, spec.arch, split_max_tensors=per_part)
    _fill(writer, spec)
    paths = writer.format_shard_names(base)
    _write(writer)
    return paths


def vocabulary(n_vocab: int) -> tuple[list[str], list[float], list[int]]:
    """A valid SPM vocabulary: special tokens, the 256 byte-fallback tokens, then word pieces."""
    if n_vocab < N_SPECIAL + N_BYTE_TOKENS + 1:
        raise ValueError(f"n_vocab must be at least {N_SPECIAL + N_BYTE_TOKENS + 1}")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(N_BYTE_TOKENS)]
    types = [2, 3, 3] + [6] * N_BYTE_TOKENS  # unknown, control, control, byte (llama_token_type)
    pieces = _pieces()
    while len(tokens) < n_vocab:
        tokens.append(next(pieces))
        types.append(1)  # normal
    scores = [0.0] * (N_SPECIAL + N_BYTE_TOKENS) + [-float(i) for i in range(n_vocab - N_SPECIAL - N_BYTE_TOKENS)]
    return tokens, scores, types


def _pieces() -> Iterator[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    yield "\u2581"
    for a in letters:
        yield "\u2581" + a
        yield a
    for a in letters:
        for b in letters:
            yield "\u2581" + a + b
            yield a + b
    for a in letters:
        for b in letters:
            for c in letters:
                yield "\u2581" + a + b + c
                yield a + b + c
    for a in letters:  # enough pieces for a 152k vocabulary (Qwen-sized logits)
        for b in letters:
            for c in letters:
                for d in letters:
                    yield a + b + c + d


def _fill(writer: gguf.GGUFWriter, spec: ModelShape) -> None:
    if spec.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {spec.arch!r}")
    if spec.n_expert and spec.arch != "llama":
        raise ValueError("MoE models are generated with arch='llama' (Mixtral layout)")
    if spec.n_head % spec.n_head_kv:
        raise ValueError("n_head must be a multiple of n_head_kv")
    writer.add_name(spec.name)
    writer.add_context_length(spec.context_length)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(spec.head_dim_)
    if spec.head_dim is not None or spec.arch == "gemma2":
        writer.add_key_length(spec.head_dim_)
        writer.add_value_length(spec.head_dim_)
    if spec.arch == "gemma2":
        writer.add_sliding_window(spec.sliding_window)
        writer.add_attn_logit_softcapping(50.0)
        writer.add_final_logit_softcapping(30.0)
    if spec.n_expert:
        writer.add_expert_count(spec.n_expert)
        writer.add_expert_used_count(spec.n_expert_used or 2)
    writer.add_file_type(_file_type(spec.wtype))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tokens, scores, types = vocabulary(spec.n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    for key, value in spec.extra_kv.items():
        _add_any(writer, key, value)

    rng = np.random.default_rng(spec.seed)
    for name, ne, kind in _tensor_specs(spec):
        wtype = next((t for part, t in spec.tensor_types.items() if part in name), spec.wtype)
        _add_tensor(writer, rng, name, ne, wtype if kind == "weight" else "F32", kind, zeros=spec.zeros)


def _tensor_specs(spec: ModelShape) -> Iterator[tuple[str, list[int], str]]:
    """(name, GGUF shape ne[0] first, kind) for every tensor llama.cpp requires (plus qwen2's biases)."""
    e, v, ff = spec.n_embd, spec.n_vocab, spec.n_ff
    q = spec.head_dim_ * spec.n_head
    kv = spec.head_dim_ * spec.n_head_kv
    yield "token_embd.weight", [e, v], "weight"
    yield "output_norm.weight", [e], "norm"
    if not spec.is_tied:
        yield "output.weight", [e, v], "weight"
    for i in range(spec.n_layer):
        b = f"blk.{i}"
        yield f"{b}.attn_norm.weight", [e], "norm"
        yield f"{b}.attn_q.weight", [e, q], "weight"
        yield f"{b}.attn_k.weight", [e, kv], "weight"
        yield f"{b}.attn_v.weight", [e, kv], "weight"
        if spec.arch == "qwen2":
            yield f"{b}.attn_q.bias", [q], "bias"
            yield f"{b}.attn_k.bias", [kv], "bias"
            yield f"{b}.attn_v.bias", [kv], "bias"
        yield f"{b}.attn_output.weight", [q, e], "weight"
        if spec.arch == "gemma2":
            yield f"{b}.post_attention_norm.weight", [e], "norm"
        yield f"{b}.ffn_norm.weight", [e], "norm"
        if spec.n_expert:
            n = spec.n_expert
            yield f"{b}.ffn_gate_inp.weight", [e, n], "router"
            yield f"{b}.ffn_gate_exps.weight", [e, ff, n], "weight"
            yield f"{b}.ffn_down_exps.weight", [ff, e, n], "weight"
            yield f"{b}.ffn_up_exps.weight", [e, ff, n], "weight"
        else:
            yield f"{b}.ffn_gate.weight", [e, ff], "weight"
            yield f"{b}.ffn_down.weight", [ff, e], "weight"
            yield f"{b}.ffn_up.weight", [e, ff], "weight"
        if spec.arch == "gemma2":
            yield f"{b}.post_ffw_norm.weight", [e], "norm"


def _add_tensor(
    writer: gguf.GGUFWriter,
    rng: np.random.Generator,
    name: str,
    ne: list[int],
    wtype: str,
    kind: str,
    *,
    zeros: bool = False,
) -> None:
    qtype = gguf.GGMLQuantizationType[wtype]
    np_shape = tuple(reversed(ne))  # numpy is row-major: ne[0] is the last axis
    if zeros and kind != "norm" and qtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        data = np.zeros((*np_shape[:-1], ne[0] // block * type_size), dtype=np.uint8)
        writer.add_tensor(name, data, raw_dtype=qtype)
        return
    if kind == "norm":
        values = np.ones(np_shape, dtype=np.float32)
    else:
        values = (rng.standard_normal(np_shape) * 0.02).astype(np.float32)
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, values)
        return
    if qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, values.astype(np.float16))
        return
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    if ne[0] % block:
        raise ValueError(f"{name}: row of {ne[0]} is not a multiple of the {wtype} block size {block}")
    try:
        data = gguf.quants.quantize(values, qtype)
    except (NotImplementedError, gguf.quants.QuantError):
        # No numpy quantizer for this type: all-zero blocks are valid (scale 0) and have the exact size.
        data = np.zeros((*np_shape[:-1], ne[0] // block * type_size), dtype=np.uint8)
    writer.add_tensor(name, data, raw_dtype=qtype)


def _file_type(wtype: str) -> int:
    """general.file_type for a model whose weights are all `wtype` (K-quants: the _M mix name)."""
    for name in ("ALL_" + wtype, "MOSTLY_" + wtype, "MOSTLY_" + wtype + "_M"):
        if name in gguf.LlamaFileType.__members__:
            return gguf.LlamaFileType[name].value
    raise ValueError(f"no llama.cpp file type for weights of type {wtype}")


def _add_any(writer: gguf.GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_array(key, list(value))


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- the models the memory benches and tests load (bench/bench_models.py, tests/estimate) ------------------
# name -> (arch, shape). "small" models run on the CPU here in seconds; "gpu" models are sized for a real card.
MEMORY_MODELS_SMALL = {
    "llama-gqa": ("llama", dict(n_layer=6, n_embd=256, n_head=8, n_head_kv=2, n_ff=512, n_vocab=2000, wtype="Q8_0")),
    "qwen2-bias": ("qwen2", dict(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=768, n_vocab=3000, wtype="F16")),
    "gemma2-swa": (
        "gemma2",
        dict(n_layer=6, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_vocab=2000, sliding_window=256, wtype="F16"),
    ),
    "llama-moe": (
        "llama",
        dict(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=256, n_vocab=2000, n_expert=4, n_expert_used=2,
             wtype="Q8_0"),
    ),
}  # fmt: skip
MEMORY_MODELS_GPU = {
    "llama-1b": ("llama", dict(n_layer=16, n_embd=2048, n_head=32, n_head_kv=8, n_ff=8192, n_vocab=32000,
                               context_length=16384, wtype="Q8_0", zeros=True)),
    "qwen2-vocab": ("qwen2", dict(n_layer=8, n_embd=1024, n_head=16, n_head_kv=4, n_ff=2816, n_vocab=152064,
                                  context_length=32768, wtype="Q8_0", zeros=True)),
    "gemma2-swa": ("gemma2", dict(n_layer=8, n_embd=1024, n_head=8, n_head_kv=4, n_ff=4096, n_vocab=32000,
                                  sliding_window=1024, context_length=16384, wtype="Q8_0", zeros=True)),
    "llama-moe": ("llama", dict(n_layer=8, n_embd=1024, n_head=16, n_head_kv=4, n_ff=1024, n_vocab=32000,
                                n_expert=8, n_expert_used=2, context_length=16384, wtype="Q8_0", zeros=True)),
}  # fmt: skip
