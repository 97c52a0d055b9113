"""Speed model: physical orderings, the Tesla P4 story, and the error over the published calibration rows."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from planner.core.memory import estimate_memory
from planner.core.speed import (
    BAND,
    DEFAULT_CONSTANTS,
    estimate_speed,
    generation_seconds,
    prompt_seconds,
    speed_terms,
)
from planner.data.calibration import build_case, load_rows, terms_for
from planner.data.catalog import facts_from_catalog, find
from planner.data.gpus import gpu_from_spec, match_gpu
from planner.types.hardware import Cpu
from planner.types.plan import Settings

STORY_ID = "tesla-p4-qwen1-5-14b-chat-q2-k-2024-03-story"
CPU = Cpu(model="8-core desktop", physical_cores=8, logical_cores=16, memory_bandwidth_gbs=51.2)


def _gpu(name: str):
    spec = match_gpu(name)
    assert spec is not None
    return gpu_from_spec(spec, 0)


def _tg(model: str, quant: str, gpu_name: str, ngl: int = 999) -> float:
    facts = facts_from_catalog(find(model), quant)
    settings = Settings(n_gpu_layers=ngl, ctx_size=4096, threads=8)
    gpus = [_gpu(gpu_name)]
    memory = estimate_memory(facts, settings, gpus)
    return estimate_speed(facts, settings, memory, gpus, CPU).generation_tokens_per_s


def test_bigger_quant_generates_slower_on_the_same_gpu() -> None:
    # qwen2.5-7b: its repo has all three files (bartowski's Llama-3.1-8B listing has no F16)
    q4, q8, f16 = (_tg("qwen2.5-7b", q, "RTX 3090") for q in ("Q4_K_M", "Q8_0", "F16"))
    assert q4 > q8 > f16


def test_partial_offload_is_slower_than_full() -> None:
    full = _tg("qwen2.5-7b", "Q4_K_M", "RTX 3060 12GB")
    partial = _tg("qwen2.5-7b", "Q4_K_M", "RTX 3060 12GB", ngl=15)
    assert partial < full / 2  # half the blocks read from RAM at a twentieth of the bandwidth


def test_moe_generates_faster_than_a_dense_model_of_the_same_size() -> None:
    moe = facts_from_catalog(find("qwen3-30b-a3b"), "Q4_K_M")
    dense = facts_from_catalog(find("qwen3-32b"), "Q4_K_M")
    assert abs(moe.size_bytes / dense.size_bytes - 1) < 0.1
    assert _tg("qwen3-30b-a3b", "Q4_K_M", "H100 PCIe") > 2 * _tg("qwen3-32b", "Q4_K_M", "H100 PCIe")


def test_p4_story_within_the_band() -> None:
    row = next(r for r in load_rows() if r.id == STORY_ID)
    case = build_case(row)
    assert case.memory.devices[0].layers == 40 and not case.memory.devices[0].output_layer
    terms = terms_for(case)
    tg = 1 / generation_seconds(terms, DEFAULT_CONSTANTS)
    pp = 1 / prompt_seconds(terms, DEFAULT_CONSTANTS)
    assert abs(tg / 11.31 - 1) <= BAND, tg
    assert abs(pp / 124.46 - 1) <= BAND, pp


def _fitted_errors(which: str) -> list[float]:
    errors = []
    for row in load_rows():
        measured = row.tg if which == "tg" else row.pp
        if not row.fit or measured is None:
            continue
        case = build_case(row)
        if which == "pp" and not all(g.fp32_tflops or g.fp16_tflops for g in case.gpus):
            continue  # the GPU row has no FLOP figure (M3/M4 Pro, Max, Ultra): the prompt speed is a placeholder
        terms = terms_for(case)
        seconds = (
            generation_seconds(terms, DEFAULT_CONSTANTS) if which == "tg" else prompt_seconds(terms, DEFAULT_CONSTANTS)
        )
        predicted = 1 / seconds
        if which == "pp" and terms.t0_key == "ampere_plus_no_graphs":
            continue  # pre-May-2024 Ampere prompt rows: slower builds, measured by the bench's nuisance factor
        errors.append(math.log(predicted / measured))
    return errors


@pytest.mark.parametrize("which", ["tg", "pp"])
def test_error_over_the_calibration_set_stays_small(which: str) -> None:
    errors = _fitted_errors(which)
    assert len(errors) >= 25
    median_abs = statistics.median(abs(math.exp(e) - 1) for e in errors)
    within = sum(1 for e in errors if abs(math.exp(e) - 1) <= BAND) / len(errors)
    # bench/speed_vs_published.py measured: median 7-8 %; all generation rows, 26 of 29 prompt rows in the band
    assert median_abs < 0.10
    assert within >= 0.85


def test_every_calibration_row_names_its_source() -> None:
    rows = load_rows()
    assert len(rows) >= 50
    assert all(len(r.source) > 20 for r in rows)


def test_real_headers_read_each_tensor_at_its_own_quant_speed(smollm2_path: Path) -> None:
    """A file's tensors need not share its type (a Q2_K file keeps ffn_down in Q4_0 when n_ff is not 256-aligned):
    with a real header the generation estimate weighs each quant family by its share of the layer bytes."""
    from planner.core.speed import _family_shares
    from planner.models.gguf_header import facts_from_headers, read_local

    facts = facts_from_headers([read_local(smollm2_path)], source="s", files=["s"])
    shares = dict(_family_shares(facts))
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares == {"legacy": pytest.approx(1.0)}  # SmolLM2's block tensors are all Q4_1


@pytest.mark.parametrize(("backend", "gpu"), [("Metal", "M1 Ultra"), ("ROCm", "Radeon RX 7900 XT")])
def test_non_cuda_backends_use_their_own_fitted_constants(backend: str, gpu: str) -> None:
    """The Metal and ROCm rows are predicted through their own backend's constants (fitted on published rows), and
    a plan for that GPU uses the same ones: the seed's single ROCm prior put the RX 7900 XTX 58 % slow."""
    rows = [r for r in load_rows() if r.backend == backend and r.fit and r.tg]
    assert len(rows) >= 5
    for row in rows:
        terms = terms_for(build_case(row))
        assert {g.generation for g in terms.gpus} == {backend.lower()}
        assert abs(1 / generation_seconds(terms, DEFAULT_CONSTANTS) / row.tg - 1) < 0.30, row.id
    facts = facts_from_catalog(find("llama-2-7b"), "Q4_0")
    settings = Settings(n_gpu_layers=999, ctx_size=2048, threads=8)
    gpus = [_gpu(gpu)]
    plan_terms = speed_terms(facts, settings, estimate_memory(facts, settings, gpus), gpus, CPU)
    assert {g.generation for g in plan_terms.gpus} == {backend.lower()}


def test_catalog_q2k_reads_the_fallback_ffn_down_at_its_own_speed() -> None:
    """Qwen1.5-14B's ffn_down rows (13696) are not 256-aligned, so llama-quant stores them as Q4_0 in a Q2_K file
    (research quant_models.md): a catalog plan weighs that share at Q4_0's speed, as a real header would."""
    from planner.core.speed import _family_shares

    qwen = facts_from_catalog(find("qwen1.5-14b-chat"), "Q2_K")
    shares = dict(_family_shares(qwen))
    expected = qwen.n_ff * qwen.n_embd * 4.5 / 8 / qwen.layer_bytes[0]
    assert shares["legacy"] == pytest.approx(expected) and shares["lowbit"] == pytest.approx(1 - expected)
    assert _family_shares(facts_from_catalog(find("llama-2-7b"), "Q2_K")) == ()  # 11008 = 43 x 256: no fallback
