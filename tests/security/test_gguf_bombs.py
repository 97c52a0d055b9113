"""Hostile GGUF files that are small or cheap to write but claim huge work (issue #16, Medium 4 and Low).

Each file is real (written by gguf.GGUFWriter, or packed byte by byte where the writer would need the memory
the test is about), and each must end in one BadInput line (exit 2 from the CLI) or a correct result, within
MAX_SECONDS and a stated memory bound. Before the fix, block_count 10^6 took 45 s to plan and 10^7 never ended;
a 60 MB one-byte array took 611 MB.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from ggufgen import write_model

from planner.errors import BadInput
from planner.models.gguf_header import (
    LLAMA_MAX_LAYERS,
    MAX_ARRAY_STRINGS,
    MAX_NESTED_ARRAYS,
    GgufArray,
    facts_from_headers,
    read_local,
)

from .hostile_gguf import write_gguf

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_SECONDS = 2.0  # parse and facts of one hostile file, in this process
MAX_PEAK_BYTES = 32 * 2**20  # tracemalloc peak for the small files (the header fuzz test's bound)
CLI_SECONDS = 20.0  # a whole `planner plan` subprocess on a loaded 2-core machine, interpreter start included


def facts_of(path: Path) -> Any:
    return facts_from_headers([read_local(path)], source=str(path), files=[path.name])


def bounded(action: Any) -> tuple[Any, float, int]:
    """Run `action`; (its result or the BadInput it raised, seconds, tracemalloc peak)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        outcome = action()
    except BadInput as err:
        outcome = err
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, elapsed, peak


@pytest.mark.parametrize(
    ("block_count", "message"),
    [
        (0, "block_count is 0: a model has at least one block"),
        (10**6, "block_count is 1000000 but the tensor table holds tensors for only 1 block"),
        (10**7, "block_count is 10000000 but the tensor table holds tensors for only 1 block"),
        (2**32 - 1, "block_count is 4294967295 but"),
        (2**63, f"block_count is {2**63} but"),
    ],
)
def test_block_count_beyond_the_tensor_table_is_refused(tmp_path: Path, block_count: int, message: str) -> None:
    path = write_gguf(tmp_path / "m.gguf", block_count=block_count)
    assert path.stat().st_size < 4096  # a tiny file
    outcome, elapsed, peak = bounded(lambda: facts_of(path))
    assert isinstance(outcome, BadInput) and message in outcome.message
    assert elapsed < MAX_SECONDS and peak < MAX_PEAK_BYTES


def test_more_blocks_than_llama_cpp_loads_is_refused(tmp_path: Path) -> None:
    n = LLAMA_MAX_LAYERS + 1
    path = write_gguf(tmp_path / "deep.gguf", block_count=n, blocks_with_tensors=n)
    outcome, elapsed, peak = bounded(lambda: facts_of(path))
    assert isinstance(outcome, BadInput) and f"block_count is {n}, more than llama.cpp loads" in outcome.message
    assert elapsed < MAX_SECONDS and peak < MAX_PEAK_BYTES


def test_block_count_matching_its_tensors_still_plans(tmp_path: Path) -> None:
    """The bound is what the file holds, not a guess: LLAMA_MAX_LAYERS blocks, each with its tensor, is a model."""
    n = LLAMA_MAX_LAYERS
    path = write_gguf(tmp_path / "deep.gguf", block_count=n, blocks_with_tensors=n)
    facts, elapsed, _ = bounded(lambda: facts_of(path))
    assert not isinstance(facts, BadInput), facts
    assert facts.n_layer == n and len(facts.layer_bytes) == n and all(b == 64 * 4 for b in facts.layer_bytes)
    assert elapsed < MAX_SECONDS


@pytest.mark.parametrize(
    ("key", "values", "message"),
    [
        ("llama.attention.head_count_kv", [2, 2], "head_count_kv has 2 entries for 4 layers"),
        ("llama.feed_forward_length", [128] * 5, "feed_forward_length has 5 entries for 4 layers"),
        ("llama.attention.sliding_window_pattern", [True], "sliding_window_pattern has 1 entries for 4 layers"),
    ],
)
def test_per_layer_array_of_the_wrong_length_is_refused(
    tmp_path: Path, key: str, values: list[Any], message: str
) -> None:
    path = tmp_path / "m.gguf"
    if key == "llama.feed_forward_length":  # the writer refuses a duplicate key: write this one without the scalar
        path = _without_scalar_ff(path, values)
    else:
        write_gguf(path, block_count=4, blocks_with_tensors=4, arrays={key: values})
    outcome, elapsed, _ = bounded(lambda: facts_of(path))
    assert isinstance(outcome, BadInput) and message in outcome.message
    assert elapsed < MAX_SECONDS


def _without_scalar_ff(path: Path, ff: list[int]) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    for key, value in (("block_count", 4), ("context_length", 2048), ("embedding_length", 64)):
        writer.add_uint32(f"llama.{key}", value)
    writer.add_uint32("llama.attention.head_count", 4)
    writer.add_array("llama.feed_forward_length", ff)
    writer.add_array("tokenizer.ggml.tokens", ["<unk>", "a"])
    for il in range(4):
        writer.add_tensor(f"blk.{il}.attn_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# --- large metadata arrays inside the 64 MiB header budget: packed by hand (the writer would need a list) ------

_UINT8, _UINT32, _STRING, _ARRAY = 0, 4, 8, 9


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


def _kv_array(name: str, item_type: int, count: int, payload: bytes) -> bytes:
    return _key(name) + struct.pack("<IIQ", _ARRAY, item_type, count) + payload


def _kv_str(name: str, value: str) -> bytes:
    return _key(name) + struct.pack("<IQ", _STRING, len(value)) + value.encode()


def _write_raw(path: Path, *kvs: bytes) -> Path:
    """A GGUF v3 header with these key/value records and no tensors."""
    with path.open("wb") as out:
        out.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs) + 1))
        out.write(_kv_str("general.architecture", "llama"))
        for kv in kvs:
            out.write(kv)
        out.write(bytes(-out.tell() % 32))  # the (empty) data section starts at the next 32-byte boundary
    return path


def _measure_in_child(path: Path) -> dict[str, Any]:
    """read_local in a fresh interpreter: its peak RSS, the time the read took and what came back."""
    # VmHWM, not ru_maxrss: Linux folds the parent's peak (pytest's) into ru_maxrss across fork and exec.
    script = f"""
import json, time
from planner.errors import BadInput
from planner.models.gguf_header import read_local
start = time.perf_counter()
try:
    header = read_local({str(path)!r})
    outcome = {{k: [type(v).__name__, len(v)] for k, v in header.metadata.items() if hasattr(v, "__len__")}}
except BadInput as err:
    outcome = "BadInput: " + err.message
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"seconds": seconds, "maxrss": peak, "outcome": outcome}}))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    return json.loads(proc.stdout)


def _baseline_rss(tmp_path: Path) -> int:
    return _measure_in_child(_write_raw(tmp_path / "small.gguf"))["maxrss"]


def test_a_60_mb_byte_array_stays_packed(tmp_path: Path) -> None:
    """60 M one-byte items (611 MB as a Python list before) are kept as the file's 60 MB, and only measured."""
    n = 60_000_000
    path = _write_raw(tmp_path / "bytes.gguf", _kv_array("junk.bytes", _UINT8, n, bytes(n)))
    baseline = _baseline_rss(tmp_path)
    run = _measure_in_child(path)
    assert run["outcome"]["junk.bytes"] == ["GgufArray", n]
    assert run["seconds"] < MAX_SECONDS
    # the packed bytes, and one transient copy while they are read: not 10 Python objects per byte
    assert run["maxrss"] - baseline < 2.5 * n, (run, baseline)


def test_long_string_arrays_are_walked_not_decoded(tmp_path: Path) -> None:
    """2^20 one-character strings (a vocabulary four times Gemma 3's) parse in bounded time and memory."""
    n = 2**20
    one = struct.pack("<Q", 1) + b"a"
    path = _write_raw(tmp_path / "vocab.gguf", _kv_array("tokenizer.ggml.tokens", _STRING, n, one * n))
    baseline = _baseline_rss(tmp_path)
    run = _measure_in_child(path)
    assert run["outcome"]["tokenizer.ggml.tokens"] == ["GgufArray", n]
    assert run["seconds"] < MAX_SECONDS
    assert run["maxrss"] - baseline < 4 * 9 * n, (run, baseline)  # 9 bytes a string in the file


def test_more_array_strings_than_any_model_are_refused_before_walking(tmp_path: Path) -> None:
    n = MAX_ARRAY_STRINGS + 1
    path = _write_raw(tmp_path / "strings.gguf", _kv_array("junk.strings", _STRING, n, bytes(8 * n)))
    run = _measure_in_child(path)
    assert run["outcome"].startswith("BadInput: ") and f"past {MAX_ARRAY_STRINGS}" in run["outcome"]
    assert run["seconds"] < MAX_SECONDS


def test_millions_of_nested_arrays_are_refused(tmp_path: Path) -> None:
    n = 4_000_000  # each an empty uint8 array: 12 bytes, 48 MB in all (20 s of Python calls before)
    inner = struct.pack("<IQ", _UINT8, 0)
    path = _write_raw(tmp_path / "nested.gguf", _kv_array("junk.nested", _ARRAY, n, inner * n))
    run = _measure_in_child(path)
    assert run["outcome"].startswith("BadInput: ") and f"past {MAX_NESTED_ARRAYS}" in run["outcome"]
    assert run["seconds"] < MAX_SECONDS


def test_packed_arrays_equal_their_items(tmp_path: Path) -> None:
    """A packed array still compares equal to the list gguf.GGUFReader reads (the real-file tests rely on it)."""
    tokens = [f"t{i}" for i in range(5000)]
    scores = [float(-i) for i in range(5000)]
    path = write_model(tmp_path / "m.gguf", "llama", n_vocab=5000)
    header = read_local(path)
    packed = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(packed, GgufArray) and len(packed) == 5000
    reader = gguf.GGUFReader(path)
    assert packed == reader.fields["tokenizer.ggml.tokens"].contents()
    assert header.metadata["tokenizer.ggml.scores"] == reader.fields["tokenizer.ggml.scores"].contents()
    assert packed != tokens and header.metadata["tokenizer.ggml.scores"] != scores  # really compared
    assert facts_of(path).n_vocab == 5000


def test_real_vocabulary_is_packed_and_counted(smollm2_path: Path) -> None:
    header, elapsed, _ = bounded(lambda: read_local(smollm2_path))
    assert isinstance(header.metadata["tokenizer.ggml.tokens"], GgufArray)
    assert isinstance(header.metadata["tokenizer.ggml.merges"], GgufArray)
    assert facts_from_headers([header], source="smol", files=[smollm2_path.name]).n_vocab == 49152
    assert elapsed < MAX_SECONDS


# --- the CLI: one line, exit 2, in bounded wall time -----------------------------------------------------------


def planner(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "120", "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_DEBUG", None)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
    )
    return proc, time.monotonic() - start


def assert_one_error(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-400:], proc.stderr[-800:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: "), proc.stderr
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("command", ["plan", "doctor"])
def test_cli_refuses_ten_million_blocks_quickly(tmp_path: Path, command: str) -> None:
    path = write_gguf(tmp_path / "bomb.gguf", block_count=10**7)
    args = [command, str(path), "--gpu", "RTX 3090"]
    proc, seconds = planner(*args)
    assert_one_error(proc, 2, "block_count is 10000000 but the tensor table holds tensors for only 1 block")
    assert seconds < CLI_SECONDS


def test_cli_refuses_a_file_without_tensors(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "vocab-only.gguf", block_count=4, tensors=False)
    proc, _ = planner("plan", str(path), "--gpu", "RTX 3090")
    assert_one_error(proc, 2, "holds no tensors")


def test_a_catalog_entry_cannot_claim_a_billion_layers(tmp_path: Path) -> None:
    """Catalog entries (--catalog-dir is the user's) build per-layer lists from n_layer: bounded as headers are."""
    from planner.data import catalog

    shape = "{arch: llama, n_layer: 1000000000, n_embd: 64, n_head: 4, n_head_kv: 4, head_dim_k: 16, "
    shape += "head_dim_v: 16, n_vocab: 100, context_length: 2048}"
    quant = "{quant: Q8_0, files: [a.gguf], size_bytes: 100, layer_bytes: 1, input_bytes: 1, output_bytes: 1, basis: x}"
    (tmp_path / "deep.yaml").write_text(
        f"models:\n- name: Deep\n  repo: a/b\n  family: x\n  origin: test\n  shape: {shape}\n  quants: [{quant}]\n"
    )
    catalog.clear_cache()
    outcome, elapsed, peak = bounded(lambda: catalog.load_catalog(tmp_path))
    catalog.clear_cache()
    assert isinstance(outcome, BadInput) and "shape.n_layer" in outcome.message and "512" in outcome.message
    assert elapsed < MAX_SECONDS and peak < MAX_PEAK_BYTES
