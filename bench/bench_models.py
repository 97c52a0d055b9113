"""The generated GGUF models the memory benches load (llama.cpp's own buffers vs planner's estimate).

Shapes cover what changes memory: GQA, a large vocabulary (logits), sliding-window layers, experts, tied
embeddings. Written with tests/ggufgen.py (the gguf package's writer); weights are random or zero blocks, which is
fine: only sizes and shapes matter for memory.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ggufgen import MEMORY_MODELS_GPU, MEMORY_MODELS_SMALL, write_model  # noqa: E402

SMALL = MEMORY_MODELS_SMALL
GPU = MEMORY_MODELS_GPU


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
