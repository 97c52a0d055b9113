"""hardware_db/quants.yaml and quality tables, cross-checked against the gguf package's own tables."""

from __future__ import annotations

import gguf
import pytest

from planner.data.quants import (
    file_type,
    generic_quality,
    ggml_type,
    hardware_caveats,
    load_quality_tables,
    load_quants,
    quality_for,
    quant_from_filename,
)
from planner.errors import BadInput
from planner.types.plan import Quality


def test_every_ggml_type_is_listed() -> None:
    table = load_quants()
    assert set(table.ggml_types) == {t.name for t in gguf.GGMLQuantizationType}


def test_every_file_type_is_listed_with_its_id() -> None:
    table = load_quants()
    expected = {
        t.name.removeprefix("MOSTLY_").removeprefix("ALL_"): t.value
        for t in gguf.LlamaFileType
        if t is not gguf.LlamaFileType.GUESSED
    }
    assert {name: row.id for name, row in table.file_types.items()} == expected


@pytest.mark.parametrize("name", sorted(load_quants().file_types))
def test_nominal_bpw_matches_gguf_block_sizes(name: str) -> None:
    info = file_type(name)
    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[info.base_type]]
    assert info.nominal_bpw == pytest.approx(type_size * 8 / block)
    # A real file mixes in bigger types for some tensors: never below nominal (F32 is all F32).
    assert info.bpw >= info.nominal_bpw - 1e-9


def test_every_figure_names_a_known_source() -> None:
    table = load_quants()
    used = set(table.ggml_type_sources.values()) | set(table.file_type_sources.values())
    for info in table.file_types.values():
        used.update(m.source for m in info.quality)
        if info.bpw_llama31_8b:
            used.add(info.bpw_llama31_8b.source)
    used.update(c.source for c in table.hardware_caveats)
    assert used <= set(table.sources), used - set(table.sources)


def test_known_values() -> None:
    q4km = file_type("q4_k_m")
    assert (q4km.id, q4km.base_type, q4km.bpw) == (15, "Q4_K", 4.8944)
    kld = [m for m in q4km.quality if m.metric == "kld" and m.imatrix is False]
    assert kld and kld[0].value == 0.031273 and kld[0].model == "Llama-3-8B"
    assert file_type("fp16").name == "F16"
    assert file_type("IQ2_XXS").imatrix_required and not file_type("Q4_K_M").imatrix_required
    assert ggml_type("iq3_xxs").requires_imatrix and ggml_type("q4_k").cuda_mmq
    assert not ggml_type("IQ1_M").cuda_mmq


def test_quality_gets_worse_with_fewer_bits() -> None:
    """Llama-3-8B scoreboard: perplexity increase grows as the K-quant ladder goes down."""
    ladder = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"]
    values = [generic_quality(q).value for q in ladder]
    assert values == sorted(values)


def test_unknown_quant() -> None:
    with pytest.raises(BadInput, match="unknown quantization 'Q4_K_XL'"):
        file_type("Q4_K_XL")
    with pytest.raises(BadInput, match="unknown ggml type"):
        ggml_type("Q9_9")
    assert generic_quality("Q4_K_XL") is None


@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("qwen1_5-14b-chat-q2_k.gguf", "Q2_K"),
        ("qwen1_5-14b-chat-q4_k_m.gguf", "Q4_K_M"),
        ("Llama-3-8B.IQ4_XS.gguf", "IQ4_XS"),
        ("Meta-Llama-3.1-70B-Instruct-Q4_K_M-00001-of-00002.gguf", "Q4_K_M"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
        ("gemma-2-2b-it-f16.gguf", "F16"),
        ("model-BF16.gguf", "BF16"),
        ("phi-3-fp16.gguf", "F16"),
        ("gpt-oss-20b-mxfp4.gguf", "MXFP4_MOE"),
        ("llama-2-7b.Q4_0_4_4.gguf", "Q4_0_4_4"),
        ("Qwen3-30B-A3B-UD-Q4_K_XL.gguf", "Q4_K_XL"),
        ("bitnet-tq2_0.gguf", "TQ2_0"),
        ("Qwen2-7B-Instruct.gguf", None),
        ("Q2-model.gguf", None),
        ("mmproj-model.gguf", None),
    ],
)
def test_quant_from_filename(filename: str, quant: str | None) -> None:
    assert quant_from_filename(filename) == quant


def test_qwen15_matrix_is_complete() -> None:
    (table,) = [t for t in load_quality_tables() if t.family == "Qwen1.5"]
    assert list(table.rows) == ["0.5B", "1.8B", "4B", "7B", "14B", "32B", "72B"]
    assert all(len(row) == len(table.columns) == 9 for row in table.rows.values())
    for column in table.columns:
        file_type(column)  # every column is a real llama.cpp file type
    assert table.source.startswith("Qwen/Qwen1.5-{size}-Chat-GGUF model cards")


@pytest.mark.parametrize(
    ("model", "size", "quant", "value"),
    [
        ("Qwen/Qwen1.5-14B-Chat-GGUF", None, "q4_k_m", 10.92),
        ("qwen1_5-14b-chat-q2_k.gguf", None, "Q2_K", 12.27),
        ("qwen1.5", "7b", "F16", 14.21),
        ("Qwen1.5", "0.5B", "q8_0", 34.22),
        ("Qwen1.5-72B-Chat", None, "Q3_K_M", 8.06),
    ],
)
def test_quality_for_qwen15(model: str, size: str | None, quant: str, value: float) -> None:
    quality = quality_for(model, size, quant)
    assert isinstance(quality, Quality)
    assert (quality.metric, quality.value) == ("perplexity", value)
    assert "Qwen1.5" in quality.source and quality.note


def test_quality_for_the_canonical_user_choice() -> None:
    """Qwen1.5: 14B at Q2_K still beats 7B at F16 (the table's own caveat), so a bigger model at low bits wins."""
    assert quality_for("qwen1.5", "14B", "Q2_K").value < quality_for("qwen1.5", "7B", "F16").value
    assert "F16 10.91" in quality_for("qwen1.5", "14B", "Q4_K_M").note


@pytest.mark.parametrize(
    ("model", "size", "quant"),
    [
        ("llama-3", "8B", "Q4_K_M"),  # no family table
        ("qwen1.5", "110B", "Q4_K_M"),  # size not in the table
        ("qwen1.5", "14B", "IQ4_XS"),  # quant not in the table
        ("qwen1.5-chat", None, "Q4_K_M"),  # no size anywhere
    ],
)
def test_quality_for_unknown(model: str, size: str | None, quant: str) -> None:
    assert quality_for(model, size, quant) is None


def test_generic_quality_uses_the_imatrix_row_when_required() -> None:
    q = generic_quality("IQ2_XXS")
    assert q.metric == "ppl_increase" and q.value == 7.8601 and "with imatrix" in q.note
    q = generic_quality("Q4_K_M")
    assert q.value == 0.1755 and "without imatrix" in q.note and "LLaMA 3 8b Scoreboard" in q.source


def test_hardware_caveats_tesla_p4() -> None:
    """The canonical user's Tesla P4 (cc 6.1): F16 is slow, K-quants are fine, BF16 is doubly bad."""
    assert hardware_caveats("Q4_K_M", 6.1) == []
    assert hardware_caveats("Q2_K", "6.1") == []
    (f16,) = hardware_caveats("F16", 6.1)
    assert "1/64" in f16
    assert len(hardware_caveats("BF16", 6.1)) == 2


@pytest.mark.parametrize(
    ("quant", "cc", "fragment"),
    [
        ("BF16", 7.5, "before Ampere"),
        ("Q4_K_M", 6.0, "no dp4a"),
        ("IQ1_M", 8.6, "No CUDA MMQ kernel"),
        ("MXFP4_MOE", 8.9, "only on Blackwell"),
        ("IQ4_XS", None, "I-quants are compute-heavier"),
        ("Q4_0", None, "repacks"),
        ("Q4_0_4_4", 8.0, "no longer loads"),
    ],
)
def test_hardware_caveats(quant: str, cc: float | None, fragment: str) -> None:
    assert any(fragment in text for text in hardware_caveats(quant, cc))


@pytest.mark.parametrize(("quant", "cc"), [("BF16", 8.0), ("MXFP4_MOE", 12.0), ("IQ4_XS", 8.6), ("F16", 7.0)])
def test_no_caveat_on_capable_hardware(quant: str, cc: float) -> None:
    assert hardware_caveats(quant, cc) == []


def test_bad_compute_capability() -> None:
    with pytest.raises(BadInput, match="compute capability should look like 6.1"):
        hardware_caveats("Q4_K_M", "pascal")
