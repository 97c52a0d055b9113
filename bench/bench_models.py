"""The generated GGUF models the memory benches load (llama.cpp's own buffers vs planner's estimate).

Shapes cover what changes memory: GQA, a large vocabulary (logits), sliding-window layers, experts, tied
embeddings. Written with tests/ggufgen.py (the gguf package's writer); weights are random or zero blocks, which is
fine: only sizes and shapes matter for memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ggufgen import write_model  # noqa: E402

# name -> (arch, shape). "small" models run on the CPU here in seconds; "gpu" models are sized for a real card.
SMALL = {
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
GPU = {
    "llama-1b": ("llama", dict(n_layer=16, n_embd=2048, n_head=32, n_head_kv=8, n_ff=8192, n_vocab=32000,
                               context_length=16384, wtype="Q8_0", zeros=True)),
    "qwen2-vocab": ("qwen2", dict(n_layer=8, n_embd=1024, n_head=16, n_head_kv=4, n_ff=2816, n_vocab=152064,
                                  context_length=32768, wtype="Q8_0", zeros=True)),
    "gemma2-swa": ("gemma2", dict(n_layer=8, n_embd=1024, n_head=8, n_head_kv=4, n_ff=4096, n_vocab=32000,
                                  sliding_window=1024, context_length=16384, wtype="Q8_0", zeros=True)),
    "llama-moe": ("llama", dict(n_layer=8, n_embd=1024, n_head=16, n_head_kv=4, n_ff=1024, n_vocab=32000,
                                n_expert=8, n_expert_used=2, context_length=16384, wtype="Q8_0", zeros=True)),
}  # fmt: skip


def make(folder: Path, which: dict[str, tuple[str, dict]]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (arch, shape) in which.items():
        path = folder / f"{name}.gguf"
        if not path.exists():
            write_model(path, arch=arch, **shape)
        out[name] = path
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1])
    kind = sys.argv[2] if len(sys.argv) > 2 else "small"
    for name, path in make(target, GPU if kind == "gpu" else SMALL).items():
        print(name, path, path.stat().st_size)
