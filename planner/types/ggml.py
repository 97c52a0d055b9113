"""The gguf package's type tables (GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType), without numpy.

`import gguf` runs the package's __init__, which imports numpy and the writer: a quarter of a second that
`planner plan` does not need. The tables live in `gguf/constants.py`, which imports only the standard library, so
it is loaded on its own unless the whole package is already imported (then its own module is used, so enum members
compare equal everywhere). No table is copied into planner.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

# llama.cpp's ceiling on layers (src/llama-hparams.h: LLAMA_MAX_LAYERS): per-layer hyperparameters live in fixed
# arrays of this size, so a model with more cannot load. Counts read from files are bounded by it.
LLAMA_MAX_LAYERS = 512


@cache
def constants() -> ModuleType:
    if "gguf.constants" in sys.modules:
        return sys.modules["gguf.constants"]
    spec = importlib.util.find_spec("gguf")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the gguf package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "constants.py"
    module_spec = importlib.util.spec_from_file_location("planner._gguf_constants", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module
