"""Small GGUF files whose metadata lies about what they hold, written with gguf.GGUFWriter (tests/security)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np


def write_gguf(
    path: Path,
    *,
    block_count: int,
    blocks_with_tensors: int = 1,
    arrays: dict[str, list[Any]] | None = None,
    tensors: bool = True,
) -> Path:
    """A small llama-arch GGUF whose block_count need not match its tensor table."""
    writer = gguf.GGUFWriter(path, "llama")
    if block_count >= 2**32:
        writer.add_uint64("llama.block_count", block_count)
    else:
        writer.add_uint32("llama.block_count", block_count)
    writer.add_uint32("llama.context_length", 2048)
    writer.add_uint32("llama.embedding_length", 64)
    writer.add_uint32("llama.feed_forward_length", 128)
    writer.add_uint32("llama.attention.head_count", 4)
    for key, values in (arrays or {}).items():
        writer.add_array(key, values)
    writer.add_array("tokenizer.ggml.tokens", ["<unk>", "a", "b", "c"])
    if tensors:
        writer.add_tensor("token_embd.weight", np.zeros((4, 64), dtype=np.float32))
        for il in range(blocks_with_tensors):
            writer.add_tensor(f"blk.{il}.attn_norm.weight", np.ones(64, dtype=np.float32))
        writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
