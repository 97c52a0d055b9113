"""The planned Settings as server command lines: llama-server's flags and llama-cpp-python's server flags.

Every knob is written out explicitly, so a server built with different defaults runs the plan, not its own guess.
Pure functions: no I/O, so the plan, the rendered files and the launched process all share one argv.
"""

from __future__ import annotations

import re

from planner.types.plan import Settings

# llama.cpp b10105 replaced --mmap/--no-mmap with --load-mode; recent builds no longer accept the old flags.
LOAD_MODE_SINCE_BUILD = 10105

_BUILD_IN_TAG = re.compile(r"-b(\d+)$")


def build_from_image(image: str) -> int | None:
    """The llama.cpp build number in a pinned image tag like ghcr.io/ggml-org/llama.cpp:server-cuda-b10470."""
    match = _BUILD_IN_TAG.search(image.rpartition(":")[2])
    return int(match.group(1)) if match else None


def _load_mode_args(mmap: bool, llama_build: int | None) -> list[str]:
    if llama_build is not None and llama_build < LOAD_MODE_SINCE_BUILD:
        return ["--mmap"] if mmap else ["--no-mmap"]
    return ["--load-mode", "mmap" if mmap else "none"]


def _number(value: float) -> str:
    return f"{value:g}"


def llama_server_args(
    settings: Settings,
    *,
    model_path: str,
    alias: str,
    host: str,
    port: int,
    fit: bool = False,
    api_key_file: str | None = None,
    llama_build: int | None = None,
) -> list[str]:
    """llama-server's arguments (without the program name) for `settings`.

    `--fit off` unless asked: with fit on, llama.cpp would silently re-plan the layers and context it was given.
    The API key is never an argument (it would show in `ps`); pass a key file or the LLAMA_API_KEY environment.
    """
    s = settings
    args = [
        "--model", model_path,
        "--alias", alias,
        "--host", host,
        "--port", str(port),
        "--n-gpu-layers", str(s.n_gpu_layers),
        "--ctx-size", str(s.ctx_size),
        "--batch-size", str(s.batch_size),
        "--ubatch-size", str(s.ubatch_size),
        "--flash-attn", s.flash_attn,
        "--cache-type-k", s.cache_type_k,
        "--cache-type-v", s.cache_type_v,
        "--threads", str(s.threads),
        "--parallel", str(s.parallel),
        "--kv-unified" if s.kv_unified else "--no-kv-unified",
        "--split-mode", s.split_mode,
        "--n-cpu-moe", str(s.n_cpu_moe),
        *_load_mode_args(s.mmap, llama_build),
    ]  # fmt: skip
    if s.tensor_split:
        args += ["--tensor-split", ",".join(_number(x) for x in s.tensor_split)]
    if s.swa_full:
        args.append("--swa-full")
    if s.gpu_off:
        # even -ngl 0 creates a CUDA context and an op-offload compute buffer on the first GPU
        args += ["--device", "none"]
    args += ["--fit", "on" if fit else "off"]
    if api_key_file:
        args += ["--api-key-file", api_key_file]
    return args


_SPLIT_MODE_IDS = {"none": 0, "layer": 1}  # llama_split_mode in llama.h


def _ggml_type_id(name: str) -> int:
    from planner.types.ggml import constants

    GGMLQuantizationType = constants().GGMLQuantizationType  # noqa: N806

    try:
        return int(GGMLQuantizationType[name.upper()].value)
    except KeyError:
        from planner.errors import BadInput

        raise BadInput(f"unknown KV cache type {name!r} (expected f16, q8_0, q4_0, ...)") from None


def llama_cpp_python_args(
    settings: Settings, *, model_path: str, alias: str, host: str, port: int
) -> tuple[list[str], list[str]]:
    """`python -m llama_cpp.server` arguments for `settings`, and the knobs that server cannot honour.

    The API key goes in the API_KEY environment variable (its pydantic settings read it), not on the command line.
    """
    s = settings
    args = [
        "--model", model_path,
        "--model_alias", alias,
        "--host", host,
        "--port", str(port),
        "--n_gpu_layers", str(s.n_gpu_layers),
        "--n_ctx", str(s.ctx_size),
        "--n_batch", str(s.batch_size),
        "--n_ubatch", str(s.ubatch_size),
        "--n_threads", str(s.threads),
        "--flash_attn", "true" if s.flash_attn == "on" else "false",
        "--type_k", str(_ggml_type_id(s.cache_type_k)),
        "--type_v", str(_ggml_type_id(s.cache_type_v)),
        "--use_mmap", "true" if s.mmap else "false",
        "--split_mode", str(_SPLIT_MODE_IDS[s.split_mode]),
        # Its default cancels a running request when another arrives; an API serving several clients must queue.
        "--interrupt_requests", "false",
    ]  # fmt: skip
    if s.tensor_split:
        args += ["--tensor_split", *(_number(x) for x in s.tensor_split)]
    ignored = []
    if s.parallel > 1:
        ignored.append(f"parallel={s.parallel} (llama-cpp-python serves one sequence at a time)")
    if s.n_cpu_moe:
        ignored.append(f"n_cpu_moe={s.n_cpu_moe} (no such option in llama-cpp-python's server)")
    if s.swa_full:
        ignored.append("swa_full (no such option in llama-cpp-python's server)")
    if s.gpu_off:
        ignored.append("gpu_off (llama-cpp-python cannot keep off a GPU: start it with CUDA_VISIBLE_DEVICES='')")
    return args, ignored
