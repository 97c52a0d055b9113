"""The offline catalog offers only files its repos really have: checked against the copied listings.

tests/fixtures/gguf-files/catalog-repos.json is the research's file lists (gguf-files.json, each repo with its
source and date) for the repos the catalog names. Every check runs over every entry and every quant.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli.app import app
from planner.data import catalog

LISTINGS = json.loads((Path(__file__).parent.parent / "fixtures" / "gguf-files" / "catalog-repos.json").read_text())
REPOS = LISTINGS["repos"]
# labels the listings use for llama.cpp file types under another name (quantize.cpp aliases; ggml-org's MXFP4)
ALIASES = {"FP16": "F16", "MXFP4": "MXFP4_MOE", "Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}
MODELS = catalog.load_catalog()
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def planner(*args: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess: exit codes and the one-line error come from its entry point."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, cwd=ROOT, env=env)


def rows_of(repo: str) -> list[dict]:
    return REPOS[repo]["files"]


def row_names(row: dict) -> list[str]:
    return list(row.get("shards") or [row["file"]])


def label(row: dict) -> str:
    text = str(row.get("quant") or "")
    if text in ("", "None"):  # Qwen1.5's Gitee listing: the type is in the lower-case file name
        m = re.search(r"-(q\d_k_[sml]|q\d_k|q\d_\d|fp16|f16)\.gguf$", row["file"].lower())
        text = m.group(1) if m else ""
    return ALIASES.get(text.upper(), text.upper())


def offered() -> list[tuple[catalog.CatalogModel, catalog.CatalogQuant]]:
    return [(m, q) for m in MODELS for q in m.quants if q.files]


def test_every_offered_file_is_a_listed_file_of_its_repo_with_every_shard() -> None:
    assert len(offered()) > 400  # the catalog really offers files (53+ entries, most with a listing)
    for m, q in offered():
        assert m.repo in REPOS, f"{m.name}: files offered for {m.repo}, which has no listing"
        matches = [row for row in rows_of(m.repo) if row_names(row) == q.files]
        assert len(matches) == 1, f"{m.repo} {q.quant}: {q.files} is not exactly one listed file or split set"
        assert label(matches[0]) == q.quant, f"{m.repo}: {q.files[0]} is listed as {matches[0].get('quant')}"
        assert not matches[0].get("split_kind"), f"{m.repo} {q.quant}: a byte split llama.cpp can't load"


def test_offered_sizes_are_the_listed_sizes_or_say_they_are_estimates() -> None:
    for m, q in offered():
        row = next(r for r in rows_of(m.repo) if row_names(r) == q.files)
        exact = REPOS[m.repo].get("exact_bytes", {}).get(row["file"]) or row.get("size_bytes")
        if exact:
            assert q.size_bytes == exact and q.basis.startswith("published"), f"{m.repo} {q.quant}"
        elif row.get("size_gb") and "published" in q.basis.split(";")[0]:
            assert q.size_bytes == round(row["size_gb"] * 1e9), f"{m.repo} {q.quant}"
        elif row.get("size_gib"):
            assert abs(q.size_bytes - row["size_gib"] * 2**30) <= 0.006 * 2**30, f"{m.repo} {q.quant}"
        else:  # no size listed, or a listed size below the type's nominal bits per weight
            assert q.basis.startswith("estimate"), f"{m.repo} {q.quant}: {q.basis}"
        assert REPOS[m.repo]["source"] in q.basis or "quants.json" in q.basis, f"{m.repo} {q.quant}: no listing"


def test_every_listed_file_is_offered_or_says_why_not() -> None:
    """Low-bit files included: IQ1_M..IQ3_M are offered wherever a repo lists them (none is dropped silently)."""
    for m in MODELS:
        if m.repo not in REPOS or "quants.json" in m.files_listed:
            continue
        quants = {q.quant for q in m.quants}
        for row in rows_of(m.repo):
            name = label(row) or row["file"].upper()
            assert name in quants or name in m.not_offered, f"{m.repo}: {row['file']} ({name}) dropped silently"
        assert not quants & set(m.not_offered)


def test_a_model_without_a_listing_offers_no_file_names_and_is_not_recommended() -> None:
    unlisted = [m for m in MODELS if not m.files_listed]
    assert unlisted  # e.g. Mistral-Nemo, Phi-3-medium, Llama-3.1-405B: not found by the research
    for m in unlisted:
        assert all(not q.files for q in m.quants), m.name
        assert not m.recommend, m.name
    for m in MODELS:
        if m.files_listed:
            assert any(q.files for q in m.quants), m.name


def test_low_bit_quants_are_real_options_for_70b_models() -> None:
    for alias in ("llama-3.3-70b", "llama-3.1-70b", "qwen2.5-72b"):
        m = catalog.find(alias)
        assert m is not None
        assert {"IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_M", "IQ3_M"} <= {q.quant for q in m.quants if q.files}, alias


def test_70b_at_iq2_xs_fits_entirely_on_one_24gb_card() -> None:
    result = runner.invoke(app, ["plan", "llama-3.3-70b:IQ2_XS", "--gpu", "RTX 3090", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["model"]["file"] == "Llama-3.3-70B-Instruct-IQ2_XS.gguf"
    assert plan["settings"]["n_gpu_layers"] == plan["model"]["n_layer"] + 1  # every block and the output layer
    assert "Llama-3.3-70B-Instruct-IQ2_XS.gguf" in plan["command"]


@pytest.mark.parametrize(
    "source, quant",
    [
        ("qwen2.5-7b", "Q4_K_M"),  # Qwen's shards in the repo root
        ("llama-3.3-70b", "Q6_K"),  # bartowski's split folder
        ("phi-4", "Q4_K_M"),  # microsoft's phi-4-Q4_K.gguf
        ("gpt-oss-20b", "MXFP4_MOE"),
    ],
)
def test_offline_plan_names_the_real_file(source: str, quant: str) -> None:
    m = catalog.find(source)
    assert m is not None
    files = m.quant(quant).files
    result = runner.invoke(app, ["plan", source, "--quant", quant, "--gpu", "H200", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["model"]["file"] == files[0]
    assert plan["model"]["files"] == files
    assert files[0] in plan["command"]


def test_a_quant_the_repo_lacks_is_one_line_naming_what_it_has() -> None:
    proc = planner("plan", "Qwen/Qwen3-8B-GGUF:IQ2_XS", "--offline")
    assert proc.returncode == 2 and not proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error: ")
    assert "Q4_K_M, Q5_0, Q5_K_M, Q6_K, Q8_0" in lines[0]
    # a file the repo has but the catalog can't plan says so, rather than claiming the repo lacks it
    proc = planner("plan", "llama-3.3-70b:Q8_0", "--offline")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "has Q8_0 (" in proc.stderr and "shard names were not listed" in proc.stderr


@pytest.mark.parametrize("target", ["compose", "command", "systemd", "k8s"])
def test_deploy_offline_writes_run_files_naming_the_split_set(target: str, tmp_path: Path) -> None:
    shards = catalog.find("llama-3.3-70b").quant("Q6_K").files  # bartowski's folder of two shards
    proc = planner(
        "deploy", "llama-3.3-70b", "--quant", "Q6_K", "--no-download", "--offline", "--gpu", "2x H100",
        "--out", str(tmp_path), "--target", target,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = "".join(p.read_text() for p in tmp_path.iterdir() if p.is_file() and p.name != "api-key")
    assert shards[0] in text  # llama-server is given the first shard and loads the rest


def test_catalog_list_json_gives_aliases_and_every_known_file() -> None:
    proc = planner("catalog", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["repo"]: r for r in json.loads(proc.stdout)["models"]}
    assert set(rows) == {m.repo for m in MODELS}
    for m in MODELS:
        row = rows[m.repo]
        assert set(row["aliases"]) >= {a.lower() for a in m.aliases}
        assert [(f["quant"], f["shards"], f["size_bytes"]) for f in row["files"]] == [
            (q.quant, q.files, q.size_bytes) for q in m.quants if q.files
        ]
        assert all(f["file"] == f["shards"][0] and f["source"] for f in row["files"])
        assert bool(row["note"]) == (not row["files"])  # "sizes estimated, file names unknown until ..."


def test_catalog_list_is_readable_at_80_columns() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "catalog", "list"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for m in MODELS:  # every name and repo whole, on a line of its own (nothing cut with an ellipsis)
        assert any(line.strip().startswith(m.name + " ") or line.strip() == m.name for line in lines), m.name
        assert any(line.strip() == m.repo for line in lines), m.repo
    assert "file names unknown until `planner catalog refresh`" in proc.stdout.replace("\n", " ")


@pytest.mark.parametrize(
    "typed, meant",
    [("lama-3.3-70b", "Llama-3.3-70B-Instruct"), ("qwen3-32", "Qwen3-32B"), ("gema-3-27b", "gemma-3-27b-it")],
)
def test_a_mistyped_model_name_gets_did_you_mean(typed: str, meant: str) -> None:
    assert catalog.closest_names(typed)[0] == meant
    proc = planner("plan", typed, "--offline")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert f"did you mean {meant}" in proc.stderr


def test_a_repo_missing_offline_suggests_the_entry_by_its_name() -> None:
    proc = planner("plan", "Qwen/Qwen3-32B-GGUF", "--offline")
    assert proc.returncode == 4 and "did you mean Qwen3-32B" in proc.stderr
    assert catalog.closest_names("xyzzy") == []


def test_deploy_offline_writes_a_command_for_every_catalog_model_with_a_listed_file(tmp_path: Path) -> None:
    """Every entry with files, at its largest listed file (split sets included): the run file names it."""
    for m in MODELS:
        listed = [q for q in m.quants if q.files]
        if not listed:
            continue
        out = tmp_path / m.name
        args = ["deploy", m.name, "--quant", listed[-1].quant, "--no-download", "--offline", "--gpu", "8x H200"]
        result = runner.invoke(app, [*args, "--ram", "2TB", "--out", str(out), "--target", "command"])
        assert result.exit_code == 0, f"{m.name}: {result.output}"
        assert listed[-1].files[0] in (out / "command.sh").read_text(), m.name


def test_every_low_bit_quant_carries_a_cited_measured_loss_in_one_unit_per_model() -> None:
    from planner.hardware.whatif import resolve_hardware
    from planner.models.candidates import catalog_candidates

    hw = resolve_hardware(["H200"], "64GB", 8, None)
    low_bit = {"IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_M", "Q2_K"}
    seen = 0
    for m in MODELS:
        cands = catalog_candidates(m, hw)
        metrics = {c.quality.metric for c in cands if c.quality}
        assert len(metrics) <= 1, f"{m.name}: {metrics}"  # comparable across the alternatives table
        for c in cands:
            if c.quant in low_bit:
                seen += 1
                assert c.quality is not None and c.quality.source, f"{m.name} {c.quant}"
                if c.quality.metric != "perplexity":  # the model's own figures, or a named model's measurement
                    assert "Llama-3" in (c.quality.note or ""), f"{m.name} {c.quant}"
    assert seen > 100
