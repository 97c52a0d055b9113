"""planner.models.gguf_header against gguf.GGUFReader, on the real SmolLM2 GGUF and generated models."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from ggufgen import write_model, write_split_model

from planner.errors import BadInput
from planner.models.gguf_header import (
    GgufHeader,
    facts_from_headers,
    human_bytes,
    read_header,
    read_local,
)

GENERATED = {
    "llama-gqa": ("llama", {}),
    "qwen2-bias": ("qwen2", {}),
    "gemma2-swa": ("gemma2", {"n_layer": 6}),
    "moe": ("llama", {"n_expert": 8, "n_expert_used": 2}),
    "tied-q8_0": ("llama", {"tied": True, "wtype": "Q8_0"}),
    "q4_k": ("llama", {"wtype": "Q4_K", "n_embd": 256, "n_ff": 512, "n_layer": 2}),
}


@pytest.fixture(scope="module")
def smollm2_reader(smollm2_path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(smollm2_path)  # slow (seconds): it builds numpy views of every field


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    return {key: write_model(folder / f"{key}.gguf", arch, **shape) for key, (arch, shape) in GENERATED.items()}


def _same_as_gguf_reader(path: Path, reader: gguf.GGUFReader | None = None) -> GgufHeader:
    ours = read_local(path)
    reader = reader or gguf.GGUFReader(path)
    assert ours.data_offset == reader.data_offset
    assert len(ours.tensors) == len(reader.tensors)
    for mine, theirs in zip(ours.tensors, reader.tensors, strict=True):
        assert mine.name == theirs.name
        assert mine.ggml_type == theirs.tensor_type.name
        assert mine.shape == [int(d) for d in theirs.shape]
        assert mine.n_bytes == int(theirs.n_bytes)
        assert mine.offset == int(theirs.data_offset)
    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert list(ours.metadata) == list(fields)
    for key, field in fields.items():
        assert ours.metadata[key] == field.contents(), key
        assert ours.value_types[key] == field.types[0].value, key
    return ours


def test_smollm2_matches_gguf_reader(smollm2_path: Path, smollm2_reader: gguf.GGUFReader) -> None:
    header = _same_as_gguf_reader(smollm2_path, smollm2_reader)
    assert header.version == 3
    assert header.file_size == smollm2_path.stat().st_size
    assert header.metadata["general.architecture"] == "llama"
    assert len(header.tensors) == 272


@pytest.mark.parametrize("key", sorted(GENERATED))
def test_generated_models_match_gguf_reader(models: dict[str, Path], key: str) -> None:
    _same_as_gguf_reader(models[key])


def test_split_parts_match_gguf_reader(tmp_path: Path) -> None:
    for part in write_split_model(tmp_path, n_split=3):
        _same_as_gguf_reader(part)


def test_big_endian_file(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_uint32("llama.block_count", 2)
    writer.add_array("some.ints", [1, 2, 300000])
    writer.add_array("some.strings", ["a", "bc"])
    writer.add_tensor("t.weight", np.ones((4, 32), dtype=np.float32), tensor_endianess=gguf.GGUFEndian.BIG)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = _same_as_gguf_reader(path)
    assert header.metadata["some.ints"] == [1, 2, 300000]


def test_header_read_transfers_only_the_header(smollm2_path: Path) -> None:
    """bytes_read is the header (dominated by the 49k-token vocabulary and merges) plus one read chunk."""
    header = read_local(smollm2_path)
    assert header.data_offset == 1_785_664
    assert header.data_offset <= header.bytes_read <= header.data_offset + 64 * 1024
    assert header.bytes_read < 0.02 * smollm2_path.stat().st_size


class _Trickle(io.RawIOBase):
    """A non-seekable stream that hands out at most 1000 bytes per read, like a slow network body."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.requested = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(n, 1000)
        self.requested += n
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


def test_stream_with_short_reads_equals_local(models: dict[str, Path]) -> None:
    path = models["gemma2-swa"]
    data = path.read_bytes()
    stream = _Trickle(data)
    header = read_header(stream, file_size=len(data), name=path.name)
    local = read_local(path)
    assert header.metadata == local.metadata
    assert header.tensors == local.tensors
    assert header.bytes_read < local.data_offset + 64 * 1024
    assert header.file_size == len(data)


def test_unknown_size_stream_uses_budget(models: dict[str, Path]) -> None:
    data = models["llama-gqa"].read_bytes()
    header = read_header(_Trickle(data))
    assert header.file_size is None
    assert header.tensors == read_local(models["llama-gqa"]).tensors


class _RemoteFile(_Trickle):
    """Like an fsspec/HfFileSystem file: not seekable here, but it knows the remote size."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self.size = size


def test_remote_size_attribute_is_used(models: dict[str, Path]) -> None:
    data = models["moe"].read_bytes()
    header = read_header(_RemoteFile(data, len(data)), name="moe.gguf")
    assert header.file_size == len(data)
    # A remote file shorter than its tensor table says is reported, not half-planned.
    with pytest.raises(BadInput, match="moe.gguf is truncated"):
        read_header(_RemoteFile(data, len(data) - 1), name="moe.gguf")


def test_truncated_download_detected(smollm2_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "model.gguf"
    with smollm2_path.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(40_000_000))
    with pytest.raises(BadInput) as err:
        read_local(cut)
    full = read_local(smollm2_path).data_end
    assert err.value.message == (f"model.gguf is truncated: 40.0 MB of {human_bytes(full)} (interrupted download?)")
    assert human_bytes(full) == "98.4 MB"


def test_header_cut_short_is_truncated_header(models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    shutil.copyfile(models["llama-gqa"], path)
    with path.open("r+b") as fh:
        fh.truncate(3000)  # inside the vocabulary
    with pytest.raises(BadInput, match="truncated header"):
        read_local(path)


# --- hostile and broken input ----------------------------------------------------------------------


def _gguf(
    kv: bytes = b"",
    n_kv: int = 0,
    tensors: bytes = b"",
    n_tensors: int = 0,
    version: int = 3,
    pad: int = 0,
) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + kv + tensors + b"\0" * pad


def _str(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv_str(key: str, value: str) -> bytes:
    return _str(key) + struct.pack("<I", 8) + _str(value)


def _parse(tmp_path: Path, data: bytes, name: str = "bad.gguf") -> GgufHeader:
    path = tmp_path / name
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        return read_local(path)
    finally:
        assert time.perf_counter() - start < 1.0


BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "bad.gguf is empty, not a GGUF file"),
    "zip": (b"PK\x03\x04" + b"\0" * 100, r"bad.gguf is not a GGUF file \(magic b'PK\\x03\\x04'\)"),
    "tiny": (b"GG", r"not a GGUF file \(magic b'GG'\)"),
    "version 7": (_gguf(version=7), "unsupported GGUF version 7"),
    "version 1": (_gguf(version=1), "unsupported GGUF version 1 .*re-convert"),
    "no counts": (b"GGUF" + struct.pack("<I", 3) + b"\0" * 5, "truncated header"),
    "string of 2^60 bytes": (
        _gguf(struct.pack("<Q", 2**60) + b"k" * 64, n_kv=1),
        "claims a string of 1152921504606846976 bytes",
    ),
    "10^12 tensors": (
        _gguf(n_tensors=10**12),
        "header claims 1000000000000 tensors, more than any real model",
    ),
    "2^20 tensors in a tiny file": (
        _gguf(n_tensors=2**16),
        "header claims 65536 tensors, more than a 24 B file",
    ),
    "10^9 keys": (_gguf(n_kv=10**9), "header claims 1000000000 metadata keys"),
    "array of 2^61 items": (
        _gguf(_str("a") + struct.pack("<IIQ", 9, 4, 2**61), n_kv=1),
        "array of 2305843009213693952 items exceeds",
    ),
    "array of 2^61 strings": (
        _gguf(_str("a") + struct.pack("<IIQ", 9, 8, 2**61), n_kv=1),
        "array of 2305843009213693952 items exceeds",
    ),
    "unknown value type": (
        _gguf(_str("k") + struct.pack("<I", 13) + b"\0" * 8, n_kv=1),
        "unknown value type 13",
    ),
    "unknown array item type": (
        _gguf(_str("k") + struct.pack("<IIQ", 9, 99, 1) + b"\0" * 8, n_kv=1),
        "array of unknown value type 99",
    ),
    "deeply nested arrays": (
        _gguf(_str("k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 6 + b"\0" * 64, n_kv=1),
        "nests arrays deeper than 4",
    ),
    "duplicate key": (_gguf(_kv_str("a", "x") + _kv_str("a", "y"), n_kv=2), "duplicate metadata key 'a'"),
    "bad alignment": (
        _gguf(_str("general.alignment") + struct.pack("<II", 4, 24), n_kv=1),
        "general.alignment must be a power-of-two uint32, got 24",
    ),
    "unknown ggml type": (
        _gguf(tensors=_str("t") + struct.pack("<IQiQ", 1, 32, 99, 0), n_tensors=1, pad=64),
        "tensor 't' has unknown ggml type 99",
    ),
    "removed ARM type": (
        _gguf(tensors=_str("t") + struct.pack("<IQiQ", 1, 32, 31, 0), n_tensors=1, pad=64),
        r"tensor 't' uses Q4_0_4_4, which llama.cpp no longer loads \(use a Q4_0 file",
    ),
    "too many dims": (
        _gguf(tensors=_str("t") + struct.pack("<I", 9) + b"\0" * 100, n_tensors=1),
        "tensor 't' has 9 dimensions",
    ),
    "dims overflow": (
        _gguf(tensors=_str("t") + struct.pack("<I4QiQ", 4, 2**40, 2**40, 2**40, 2**40, 0, 0), n_tensors=1),
        r"tensor 't' has an impossible shape",
    ),
    "row not a block multiple": (
        _gguf(tensors=_str("t") + struct.pack("<IQiQ", 1, 33, 8, 0), n_tensors=1, pad=64),
        "row of 33 is not a multiple of the Q8_0 block",
    ),
    "unaligned offset": (
        _gguf(tensors=_str("t") + struct.pack("<IQiQ", 1, 32, 0, 5), n_tensors=1, pad=256),
        "data offset 5 is not aligned to 32",
    ),
    "duplicate tensor": (
        _gguf(tensors=(_str("t") + struct.pack("<IQiQ", 1, 32, 0, 0)) * 2, n_tensors=2, pad=256),
        "duplicate tensor 't'",
    ),
    "tensor data past the end": (
        _gguf(tensors=_str("t") + struct.pack("<IQiQ", 1, 1024, 0, 0), n_tensors=1, pad=64),
        r"bad.gguf is truncated: 121 B of 4.2 KB \(interrupted download\?\)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line(tmp_path: Path, case: str) -> None:
    data, message = BAD_INPUTS[case]
    with pytest.raises(BadInput, match=message) as err:
        _parse(tmp_path, data)
    assert "\n" not in err.value.message


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        read_local(tmp_path / "nope.gguf")
    with pytest.raises(BadInput, match="is a folder"):
        read_local(tmp_path)


def test_header_budget(models: dict[str, Path]) -> None:
    data = models["llama-gqa"].read_bytes()
    with pytest.raises(BadInput, match="array of 320 items exceeds the 1347 bytes left in the header budget"):
        read_header(io.BytesIO(data), file_size=len(data), name="m.gguf", max_header_bytes=2000)
    with pytest.raises(BadInput, match="the GGUF header is larger than 20 B"):
        read_header(io.BytesIO(data), file_size=len(data), name="m.gguf", max_header_bytes=20)


def test_huge_string_without_known_size_is_bounded() -> None:
    data = _gguf(struct.pack("<Q", 2**40) + b"k" * 64, n_kv=1)
    with pytest.raises(BadInput, match="claims a string of 1099511627776 bytes"):
        read_header(_Trickle(data))


# --- ModelFacts ------------------------------------------------------------------------------------


def _facts(path: Path) -> Any:
    return facts_from_headers([read_local(path)], source=str(path), files=[path.name])


def test_smollm2_facts(smollm2_path: Path, smollm2_reader: gguf.GGUFReader) -> None:
    facts = _facts(smollm2_path)
    assert (facts.arch, facts.quant, facts.n_layer, facts.n_embd) == ("llama", "Q4_1", 30, 576)
    assert (facts.n_head, facts.n_head_kv, facts.head_dim_k, facts.head_dim_v) == (9, 3, 64, 64)
    assert (facts.n_ff, facts.n_vocab, facts.context_length) == (1536, 49152, 8192)
    assert facts.tied_embeddings and facts.swa_layers == [] and facts.sliding_window is None
    assert facts.n_params == 134_515_008  # SmolLM2-135M
    reader = smollm2_reader
    assert facts.size_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert facts.n_params == sum(int(t.n_elements) for t in reader.tensors)
    assert sum(facts.layer_bytes) + facts.input_bytes + facts.output_bytes - facts.size_bytes == int(
        reader.tensors[0].n_bytes
    )  # tied: the output layer counts token_embd a second time
    assert facts.header_bytes_read == read_local(smollm2_path).bytes_read


def test_llama_gqa_facts(models: dict[str, Path]) -> None:
    facts = _facts(models["llama-gqa"])
    assert (facts.arch, facts.quant, facts.n_layer, facts.n_embd) == ("llama", "F16", 4, 128)
    assert (facts.n_head, facts.n_head_kv, facts.head_dim_k, facts.head_dim_v) == (8, 2, 16, 16)
    assert facts.kv_width_k(0) == 32
    assert (facts.n_ff, facts.n_vocab, facts.context_length) == (256, 320, 2048)
    assert not facts.tied_embeddings
    assert facts.output_bytes == 128 * 320 * 2 + 128 * 4  # lm_head F16 + output_norm F32
    assert facts.input_bytes == 128 * 320 * 2
    assert facts.name == "planner test model"


def test_qwen2_biases_count_in_layers(models: dict[str, Path]) -> None:
    facts = _facts(models["qwen2-bias"])
    llama = _facts(models["llama-gqa"])
    assert facts.arch == "qwen2"
    assert facts.tensor("blk.0.attn_q.bias") is not None
    assert facts.layer_bytes[0] - llama.layer_bytes[0] == (128 + 32 + 32) * 4


def test_gemma2_sliding_window(models: dict[str, Path]) -> None:
    facts = _facts(models["gemma2-swa"])
    assert facts.arch == "gemma2" and facts.sliding_window == 64
    assert facts.swa_layers == [True, False, True, False, True, False]
    assert facts.tied_embeddings and facts.tensor("output.weight") is None


def test_moe_facts(models: dict[str, Path]) -> None:
    facts = _facts(models["moe"])
    assert (facts.n_expert, facts.n_expert_used) == (8, 2)
    assert facts.is_moe
    per_expert_tensor = 128 * 256 * 8 * 2
    assert facts.layer_expert_bytes == [3 * per_expert_tensor] * 4
    assert facts.tensor("blk.0.ffn_down_exps.weight").shape == [256, 128, 8]


def test_tied_vs_untied_output(models: dict[str, Path]) -> None:
    tied = _facts(models["tied-q8_0"])
    assert tied.quant == "Q8_0" and tied.tied_embeddings
    embd = tied.tensor("token_embd.weight")
    assert embd.n_bytes == 320 * 128 // 32 * 34
    assert tied.output_bytes == embd.n_bytes + 128 * 4


def test_k_quant_file_type(models: dict[str, Path]) -> None:
    facts = _facts(models["q4_k"])
    assert facts.quant == "Q4_K_M"
    assert facts.tensor("blk.0.attn_q.weight").n_bytes == 256 * 256 // 256 * 144


def test_split_model_facts(tmp_path: Path) -> None:
    parts = write_split_model(tmp_path / "split", n_split=3)
    whole = _facts(write_model(tmp_path / "whole.gguf"))
    assert [p.name for p in parts] == [f"split-model-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    headers = [read_local(p) for p in parts]
    assert [h.metadata["split.no"] for h in headers] == [0, 1, 2]
    # Shard order does not matter: split.no decides.
    facts = facts_from_headers(headers[::-1], source="split", files=[p.name for p in parts][::-1], repo="someone/model")
    assert facts.files == [p.name for p in parts] and facts.file == parts[0].name
    assert facts.repo == "someone/model"
    assert sorted({t.file_index for t in facts.tensors}) == [0, 1, 2]
    assert [t.name for t in facts.tensors] == [t.name for t in whole.tensors]
    assert facts.size_bytes == whole.size_bytes and facts.n_params == whole.n_params
    assert facts.layer_bytes == whole.layer_bytes
    assert facts.header_bytes_read == sum(h.bytes_read for h in headers)
    for t in facts.tensors:
        h = headers[t.file_index]
        assert t.offset + t.n_bytes <= h.file_size


def test_split_model_missing_part(tmp_path: Path) -> None:
    parts = write_split_model(tmp_path, n_split=3)
    headers = [read_local(p) for p in parts[:2]]
    with pytest.raises(BadInput, match="split model has 3 parts, got 2"):
        facts_from_headers(headers, source="x", files=[p.name for p in parts[:2]])


def _synthetic(metadata: dict[str, Any]) -> GgufHeader:
    return GgufHeader(version=3, metadata=metadata, tensors=[], data_offset=0)


def _base(arch: str, n_layer: int, **extra: Any) -> dict[str, Any]:
    md = {
        "general.architecture": arch,
        f"{arch}.block_count": n_layer,
        f"{arch}.embedding_length": 64,
        f"{arch}.attention.head_count": 4,
        f"{arch}.context_length": 1024,
        f"{arch}.vocab_size": 100,
    }
    md.update({k if k.startswith(("general.", "tokenizer.")) else f"{arch}.{k}": v for k, v in extra.items()})
    return md


@pytest.mark.parametrize(
    ("arch", "n_layer", "extra", "swa", "window"),
    [
        ("gemma2", 4, {}, [True, False, True, False], 4096),  # gemma2's built-in default window
        ("gemma3", 7, {"attention.sliding_window": 512}, [True] * 5 + [False, True], 512),
        ("gemma3", 6, {}, [], None),  # no window key: gemma3 runs without SWA
        ("gpt-oss", 4, {"attention.sliding_window": 128}, [True, False, True, False], 128),
        ("cohere2", 8, {"attention.sliding_window": 4096}, [True, True, True, False] * 2, 4096),
        (
            "gemma3",
            4,
            {"attention.sliding_window": 512, "attention.sliding_window_pattern": [False, True, True, False]},
            [False, True, True, False],
            512,
        ),
        ("llama", 4, {"attention.sliding_window": 512}, [], None),  # llama has no SWA
    ],
)
def test_swa_layer_patterns(
    arch: str, n_layer: int, extra: dict[str, Any], swa: list[bool], window: int | None
) -> None:
    facts = facts_from_headers([_synthetic(_base(arch, n_layer, **extra))], source="x", files=["x.gguf"])
    assert facts.swa_layers == swa
    assert facts.sliding_window == window


def test_per_layer_arrays_and_mla() -> None:
    md = _base(
        "deepseek2",
        3,
        **{
            "attention.head_count_kv": [1, 1, 1],
            "feed_forward_length": [1024, 256, 256],
            "attention.key_length": 576,
            "attention.value_length": 512,
            "attention.key_length_mla": 192,
            "attention.kv_lora_rank": 512,
            "expert_count": 64,
            "expert_used_count": 6,
            "expert_feed_forward_length": 256,
            "general.file_type": 15,
        },
    )
    facts = facts_from_headers([_synthetic(md)], source="x", files=["x.gguf"])
    assert facts.n_head_kv == 1 and facts.n_ff == [1024, 256, 256]
    assert facts.kv_lora_rank == 512 and facts.head_dim_k == 576 and facts.kv_width_v(0) == 0
    assert (facts.n_expert, facts.n_expert_used, facts.expert_ff) == (64, 6, 256)
    assert facts.quant == "Q4_K_M"


def test_old_mla_file_without_key_length_mla_is_plain_attention() -> None:
    md = _base("deepseek2", 2, **{"attention.kv_lora_rank": 512, "attention.head_count_kv": 4})
    facts = facts_from_headers([_synthetic(md)], source="x", files=["x.gguf"])
    assert facts.kv_lora_rank is None and facts.kv_width_k(0) == 4 * 16


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"general.name": "x"}, "x.gguf has no general.architecture"),
        ({"general.architecture": 5}, "x.gguf has no general.architecture"),
        ({"general.architecture": "llama"}, "x.gguf has no llama.block_count"),
        (
            {**_base("llama", 2), "llama.block_count": -1},
            "llama.block_count should be a non-negative integer",
        ),
        ({**_base("llama", 2), "llama.attention.head_count_kv": ["a"]}, "head_count_kv should be integers"),
        ({**_base("llama", 2), "llama.vocab_size": None}, "has no vocabulary"),
    ],
)
def test_facts_bad_metadata(metadata: dict[str, Any], message: str) -> None:
    metadata = {k: v for k, v in metadata.items() if v is not None}
    with pytest.raises(BadInput, match=message):
        facts_from_headers([_synthetic(metadata)], source="x", files=["x.gguf"])


def test_quant_falls_back_to_dominant_tensor_type(models: dict[str, Path]) -> None:
    header = read_local(models["tied-q8_0"])
    del header.metadata["general.file_type"]
    facts = facts_from_headers([header], source="x", files=["x.gguf"])
    assert facts.quant == "Q8_0"


@pytest.mark.slow
@pytest.mark.parametrize("key", [*sorted(GENERATED), "split"])
def test_llama_cpp_loads_generated_models(models: dict[str, Path], tmp_path: Path, key: str) -> None:
    """The generated files are real models: llama.cpp loads them (split sets too), tokenizes and decodes.

    In a child process: a crash inside llama.cpp (a signal) fails this test with its signal, instead of taking
    the whole test session down with it."""
    pytest.importorskip("llama_cpp")
    path = write_split_model(tmp_path, n_split=3)[0] if key == "split" else models[key]
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_DECODE, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"llama.cpp exited {done.returncode} on {key}: {done.stderr[-2000:]}"


_LOAD_AND_DECODE = """
import sys
import llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_batch=32, n_gpu_layers=0, verbose=False)
try:
    tokens = llm.tokenize(b"hello world")
    assert tokens[0] == 1 and all(0 <= t < 320 for t in tokens), tokens  # BOS, then in-vocabulary pieces
    llm.eval(tokens)
    assert llm.n_tokens == len(tokens)
    out = llm.create_completion("hello", max_tokens=2)
    assert out["usage"]["completion_tokens"] >= 1
finally:
    llm.close()
"""
