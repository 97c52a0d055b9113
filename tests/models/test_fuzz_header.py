"""Fuzz the GGUF header reader: mutated valid headers only ever raise BadInput, fast and in bounded memory."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
from pathlib import Path

import gguf
import numpy as np
import pytest
from ggufgen import write_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import BadInput
from planner.models.gguf_header import facts_from_headers, read_header

HOSTILE_U64 = [2**60, 2**61, 2**63, 2**64 - 1, 10**12, 2**32 + 7, 0xFFFFFFFF]
MAX_SECONDS = 1.0
MAX_PEAK_BYTES = 32 * 2**20


def _every_value_type(path: Path) -> bytes:
    """A small GGUF holding every value type (nested arrays too) and a few tensors."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_uint8("t.u8", 7)
    writer.add_int8("t.i8", -7)
    writer.add_uint16("t.u16", 700)
    writer.add_int16("t.i16", -700)
    writer.add_uint32("llama.block_count", 1)
    writer.add_int32("t.i32", -70000)
    writer.add_float32("t.f32", 0.5)
    writer.add_bool("t.bool", True)
    writer.add_string("t.str", "hello")
    writer.add_uint64("llama.context_length", 128)
    writer.add_int64("t.i64", -(2**40))
    writer.add_float64("t.f64", 0.25)
    writer.add_uint32("llama.embedding_length", 32)
    writer.add_uint32("llama.attention.head_count", 2)
    writer.add_array("t.ints", [1, 2, 3])
    writer.add_array("t.strs", ["a", "bb", "ccc"])
    writer.add_array("t.nested", [[1, 2], [3]])
    writer.add_array("tokenizer.ggml.tokens", ["<unk>", "a", "b", "c"])
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("fuzz")
    small = _every_value_type(folder / "types.gguf")
    model = write_model(folder / "m.gguf", "gemma2", n_layer=2, n_embd=64, n_ff=64).read_bytes()
    return [small, model]


def _check(data: bytes) -> None:
    """Parse `data` as a file of that size; only BadInput may escape, within time and memory bounds."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        header = read_header(io.BytesIO(data), file_size=len(data), name="fuzz.gguf")
        facts_from_headers([header], source="fuzz", files=["fuzz.gguf"])
    except BadInput as err:
        assert err.message and "\n" not in err.message
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES + 40 * len(data)


MUTATION = st.tuples(
    st.sampled_from(["flip", "byte", "u64", "u32", "truncate", "insert", "delete"]),
    st.integers(0, 4095),  # where: mutations land in the header, not the tensor data
    st.integers(0, 2**16),  # what: a bit, byte, index into the hostile values, or a length
    st.binary(min_size=1, max_size=16),
)
HOSTILE_U32 = [13, 99, 2**31, 0xFFFFFFFF, 9, 8, 5]


def _mutate(seed: bytes, mutations: list[tuple[str, int, int, bytes]]) -> bytes:
    data = bytearray(seed)
    for kind, where, what, blob in mutations:
        pos = where % max(len(data), 1)
        if kind == "flip" and data:
            data[pos] ^= 1 << (what % 8)
        elif kind == "byte" and data:
            data[pos] = what % 256
        elif kind == "u64":
            data[pos : pos + 8] = struct.pack("<Q", HOSTILE_U64[what % len(HOSTILE_U64)])
        elif kind == "u32":
            data[pos : pos + 4] = struct.pack("<I", HOSTILE_U32[what % len(HOSTILE_U32)])
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = blob
        elif kind == "delete":
            del data[pos : pos + 1 + what % 16]
    return bytes(data)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 1), mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_headers_raise_only_bad_input(
    seeds: list[bytes], which: int, mutations: list[tuple[str, int, int, bytes]]
) -> None:
    _check(_mutate(seeds[which], mutations))


@settings(max_examples=100, deadline=2000)
@given(blob=st.binary(max_size=256))
def test_random_bytes_after_magic(blob: bytes) -> None:
    _check(b"GGUF" + struct.pack("<I", 3) + blob)


def test_every_truncation_of_a_small_file(seeds: list[bytes]) -> None:
    small = seeds[0]
    for cut in range(len(small)):
        with pytest.raises(BadInput):
            read_header(io.BytesIO(small[:cut]), file_size=cut, name="cut.gguf")
