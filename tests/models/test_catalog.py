"""The offline catalog: every entry loads, validates and names its sources; refresh writes entries from real headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_repos import SMOLLM2_REPO, TINY_REPO, HubModels
from typer.testing import CliRunner

from planner.cli.app import app
from planner.data import catalog
from planner.errors import BadInput
from planner.models.sources import facts_for, resolve_model


def test_every_entry_loads_and_names_its_sources() -> None:
    models = catalog.load_catalog()
    assert len(models) >= 40
    for m in models:
        assert m.origin.strip() and m.file.endswith(".yaml")
        for q in m.quants:
            assert q.basis.strip(), f"{m.name} {q.quant}"
            layers = q.layer_bytes if isinstance(q.layer_bytes, int) else sum(q.layer_bytes) / m.shape.n_layer
            assert layers > 0
            # the layout adds back up to the size (tied: the output duplicate is not stored in the file)
            stored_output = q.output_bytes - (q.input_bytes if m.shape.tied_embeddings else 0)
            total = layers * m.shape.n_layer + q.input_bytes + stored_output
            assert abs(total - q.size_bytes) <= m.shape.n_layer, f"{m.name} {q.quant}"


def test_qwen15_14b_chat_has_its_official_files_and_sizes() -> None:
    m = catalog.find("qwen1.5-14b-chat")
    assert m is not None and m.repo == "Qwen/Qwen1.5-14B-Chat-GGUF"
    assert catalog.find("Qwen/Qwen1.5-14B-Chat-GGUF") is m
    assert catalog.find("hf.co/qwen/qwen1.5-14b-chat-gguf:Q4_K_M") is m
    q4 = m.quant("q4_k_m")
    assert q4.files == ["qwen1_5-14b-chat-q4_k_m.gguf"] and q4.size_bytes == 9191034336
    assert {q.quant for q in m.quants} == {"Q2_K", "Q3_K_M", "Q4_0", "Q4_K_M", "Q5_0", "Q5_K_M", "Q6_K", "Q8_0"}
    assert any(f.quant == "Q4_K_M" and f.value == 10.92 for f in m.quality)
    with pytest.raises(BadInput, match=r"has no IQ4_XS \(quants it has: Q2_K, "):
        m.quant("IQ4_XS")


def test_facts_from_catalog() -> None:
    facts = catalog.facts_from_catalog(catalog.find("qwen1.5-7b-chat"), "Q4_K_M")
    assert facts.origin == "catalog" and facts.size_bytes == 4767104224
    assert len(facts.layer_bytes) == facts.n_layer == 32
    assert facts.n_head_kv == 32 and facts.head_dim_k == 128 and facts.n_vocab == 151936
    gemma = catalog.facts_from_catalog(catalog.find("gemma-3-27b-it"), "Q4_K_M")
    assert sum(gemma.swa_layers) == 52 and gemma.sliding_window == 1024  # 10 global layers of 62
    moe = catalog.facts_from_catalog(catalog.find("Qwen3-30B-A3B"), "Q4_K_M")
    assert moe.n_expert == 128 and all(0 < e <= lb for e, lb in zip(moe.layer_expert_bytes, moe.layer_bytes))


def test_small_models_are_recommendable() -> None:
    names = {m.name for m in catalog.recommendable()}
    for small in ("SmolLM2-360M-Instruct", "Qwen2.5-0.5B-Instruct", "Llama-3.2-1B-Instruct", "Qwen3-0.6B"):
        assert small in names


def test_bad_entry_names_file_and_entry(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "models:\n- name: Broken-7B\n  repo: a/b\n  family: x\n  origin: test\n  shape: {arch: llama}\n  quants: []\n"
    )
    with pytest.raises(BadInput, match=r"broken\.yaml, entry Broken-7B: shape\.n_layer"):
        catalog.load_catalog(tmp_path)
    (tmp_path / "broken.yaml").write_text("models: [\n")
    catalog.clear_cache()
    with pytest.raises(BadInput, match="is not valid YAML"):
        catalog.load_catalog(tmp_path)


def test_catalog_list_json() -> None:
    result = CliRunner().invoke(app, ["catalog", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["models"]
    assert any(r["repo"] == "Qwen/Qwen1.5-14B-Chat-GGUF" and "Q4_K_M" in r["quants"] for r in rows)


def test_refresh_writes_an_entry_from_real_headers(hub_models: HubModels, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "refresh", SMOLLM2_REPO, "--catalog-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["created"] and out["quants_read"] == ["Q4_1"]
    assert 0 < out["header_bytes_transferred"] < 3 * 2**20
    [entry] = catalog.load_catalog(tmp_path)
    assert entry.repo == SMOLLM2_REPO and "gguf headers read from http://127.0.0.1" in entry.origin
    from_catalog = catalog.facts_from_catalog(entry, "Q4_1")
    from_header = facts_for(resolve_model(SMOLLM2_REPO))
    for field in ("n_layer", "n_embd", "n_head_kv", "n_vocab", "layer_bytes", "input_bytes", "output_bytes"):
        assert getattr(from_catalog, field) == getattr(from_header, field), field
    sha = hub_models.hub.repos[SMOLLM2_REPO].files["SmolLM2-135M-Instruct.Q4_1.gguf"].sha256
    assert entry.quants[0].sha256 == [sha]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_refresh_updates_an_entry_and_keeps_its_names(hub_models: HubModels, tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["catalog", "refresh", TINY_REPO, "--quant", "Q8_0", "--catalog-dir", str(tmp_path)]
        ).exit_code
        == 0
    )
    path = next(tmp_path.glob("*.yaml"))
    text = path.read_text().replace("aliases: []", "aliases: [tiny]")
    if "aliases" not in text:
        text = text.replace(f"repo: {TINY_REPO}", f"repo: {TINY_REPO}\n  aliases: [tiny]")
    path.write_text(text)
    catalog.clear_cache()
    result = runner.invoke(app, ["catalog", "refresh", TINY_REPO, "--catalog-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [entry] = catalog.load_catalog(tmp_path)
    assert entry.aliases == ["tiny"]
    assert [q.quant for q in entry.quants] == ["Q8_0", "F16"]
    assert catalog.find("tiny", tmp_path) is not None
