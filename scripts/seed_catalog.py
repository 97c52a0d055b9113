#!/usr/bin/env python3
"""Seed the offline model catalog (hardware_db/models/*.yaml) from the research notes, reproducibly.

    python scripts/seed_catalog.py /work/shared/research [--out hardware_db/models]

Reads models.json (architecture shapes, per-quant size estimates, GGUF repos, how each was verified) and
quants.json (the official Qwen1.5 file names and sizes, Qwen's perplexity table). Every entry records its
`origin` (the research note it came from) and every quant its `basis` (published bytes or the research
estimator). The byte layout is derived here, from llama.cpp's per-tensor type rules (src/llama-quant.cpp):

  input  = token_embd: n_vocab x n_embd at the type llama-quantize gives it for the file type
  output = output.weight at its type (tied embeddings: no output.weight in the file; llama.cpp duplicates
           token_embd, which then takes the output's type) + output_norm (F32)
  layer  = (size - input - stored output) / n_layer, one average value for every layer

Entries made this way are a starting point: `planner catalog refresh REPO` replaces one with real headers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType  # noqa: E402

from planner.data.catalog import (  # noqa: E402
    CatalogModel,
    CatalogQuant,
    CatalogShape,
    QualityFigure,
    write_catalog_file,
)

QK_K = 256
ESTIMATE_BASIS = "estimate: research size estimator (llama-quant.cpp rules; ~0.3% on files checked), tensors only"
LAYOUT_BASIS = "layout derived from llama-quant.cpp tensor types (see file header)"

# File type -> the ggml type of its 2-D weights (llama_ftype -> default_type in llama-quant.cpp).
BASE_TYPE = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_1": "Q5_1",
    "Q5_0": "Q5_0",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_1": "Q4_1",
    "Q4_0": "Q4_0",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "Q2_K": "Q2_K",
    "IQ4_XS": "IQ4_XS",
    "IQ4_NL": "IQ4_NL",
    "MXFP4_MOE": "Q8_0",  # everything but the experts is Q8_0
}
EXPERT_TYPE = {"MXFP4_MOE": "MXFP4"}
# Row length not a multiple of 256: K-quants fall back (quant_models.md 1.1; same sizes as llama.cpp's IQ4_NL).
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "IQ4_XS": "IQ4_NL"}
UNQUANTIZED = {"F32", "F16", "BF16"}


def type_bytes(type_name: str, n_elements: int) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return n_elements // block * size


def fit_row(type_name: str, row: int) -> str:
    block, _ = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
    return FALLBACK.get(type_name, "Q8_0") if row % block else type_name


def output_type(ftype: str, n_embd: int) -> str:
    """llama-quant.cpp: output.weight is Q6_K unless the file is Q8_0/unquantized or the row isn't 256-aligned."""
    if ftype in UNQUANTIZED:
        return BASE_TYPE[ftype]
    if ftype in ("Q8_0", "MXFP4_MOE") or n_embd % QK_K:
        return "Q8_0"
    return "Q6_K"


def token_embd_type(ftype: str, n_embd: int, tied: bool) -> str:
    if tied:  # the file has no output.weight: token_embd is quantized as the output tensor
        return output_type(ftype, n_embd)
    return BASE_TYPE[ftype] if ftype in UNQUANTIZED else fit_row(BASE_TYPE[ftype], n_embd)


def layout(
    ftype: str, size: int, shape: CatalogShape, *, size_is_tied_estimate: bool = False
) -> tuple[int, int, int, int, int]:
    """(size, layer_bytes, input_bytes, output_bytes, layer_expert_bytes) for one quant of one model.

    size_is_tied_estimate: the estimate assumed tied embeddings but the repo's files carry an output tensor
    (Qwen2.5 0.5B-3B official GGUFs): keep the layers, rebuild input/output as untied.
    """
    elems = shape.n_vocab * shape.n_embd
    norm = shape.n_embd * 4
    tied = shape.tied_embeddings

    def io(tied_now: bool) -> tuple[int, int]:
        tok = type_bytes(token_embd_type(ftype, shape.n_embd, tied_now), elems)
        out = 0 if tied_now else type_bytes(output_type(ftype, shape.n_embd), elems)
        return tok, out

    if size_is_tied_estimate:
        tok_t, _ = io(True)
        layers_total = size - tok_t - norm
        tok, out = io(False)
        size = layers_total + tok + out + norm
    else:
        tok, out = io(tied)
        layers_total = size - tok - out - norm
    if layers_total <= 0:
        raise SystemExit(f"{shape.arch} {ftype}: size {size} leaves no room for layers")
    layer = layers_total // shape.n_layer
    output_bytes = (tok if tied else out) + norm
    expert = 0
    if shape.n_expert:
        etype = EXPERT_TYPE.get(ftype, BASE_TYPE[ftype])
        expert = min(layer, type_bytes(etype, 3 * shape.n_expert * shape.n_embd * shape.expert_ff))
    return size, layer, tok, output_bytes, expert


def repo_of(gguf_repo: str) -> str:
    m = re.match(r"\s*([\w.-]+/[\w.-]+)", gguf_repo)
    if not m:
        raise SystemExit(f"no repo in {gguf_repo!r}")
    return m.group(1)


# Families whose own vendor released a successor in the same sizes: still planned by name, never recommended
# (Qwen1.5 -> Qwen2.5 (Sept 2024), Llama 2 -> Llama 3.x (Apr 2024)).
SUPERSEDED = {"Qwen1.5", "Llama 2"}


def slug(family: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", family.lower()).strip("-")


def quant_of_filename(name: str) -> str:
    m = re.search(r"-(q\d_k_[sml]|q\d_k|q\d_\d|fp16|f16)\.gguf$", name.lower())
    if not m:
        raise SystemExit(f"no quant in {name}")
    return {"fp16": "F16"}.get(m.group(1), m.group(1).upper())


def shape_of(key: str, m: dict) -> tuple[CatalogShape, str]:
    untied_official = bool(m.get("tied_embeddings")) and "untied output" in (m.get("verification") or "")
    params_b = m.get("params_total_B") or m.get("params_est_B") or 0
    swa_period = m.get("swa_period") if m.get("sliding_window") else None
    shape = CatalogShape(
        arch=m["gguf_arch"],
        n_layer=m["n_layer"],
        n_embd=m["hidden"],
        n_head=m["n_head"],
        n_head_kv=m["n_kv_head"],
        head_dim_k=m["head_dim"],
        head_dim_v=m["head_dim"],
        n_ff=m.get("ffn_dim") or 0,
        n_vocab=m["vocab"],
        context_length=m["max_context"],
        sliding_window=m.get("sliding_window"),
        swa_period=swa_period,
        n_expert=m.get("n_expert") or 0,
        n_expert_used=m.get("n_expert_used") or 0,
        expert_ff=m.get("expert_ffn_dim") or 0,
        tied_embeddings=bool(m.get("tied_embeddings")) and not untied_official,
        n_params=round(params_b * 1e9),
    )
    basis = f"research models.json {key!r}: {m.get('verification')}"
    if untied_official:
        basis += " (catalog: untied, as the repo's GGUF files are)"
    return shape, basis


def quants_for(key: str, m: dict, shape: CatalogShape, qwen_files: dict, other_bytes: dict) -> list[CatalogQuant]:
    repo = repo_of(m["gguf_repo"])
    # models.json ties these (HF config) but notes the official GGUF carries an output tensor: estimates were tied
    untied_fix = bool(m.get("tied_embeddings")) and "untied output" in (m.get("verification") or "")
    out: list[CatalogQuant] = []

    def add(quant: str, size: int, basis: str, files: list[str], tied_estimate: bool = False) -> None:
        size, layer, tok, output, expert = layout(quant, size, shape, size_is_tied_estimate=tied_estimate)
        out.append(
            CatalogQuant(
                quant=quant,
                files=files,
                size_bytes=size,
                layer_bytes=layer,
                input_bytes=tok,
                output_bytes=output,
                layer_expert_bytes=expert,
                basis=f"{basis}; {LAYOUT_BASIS}",
            )
        )

    if repo in qwen_files:  # the official file list is known: exactly those files
        listing = qwen_files[repo]
        gib = listing["unit"].startswith("GiB")
        for name, value in listing["files"].items():
            if not name.endswith(".gguf"):
                continue  # e.g. a third-party fp16 noted beside the official files
            exact = listing.get("exact_bytes", {}).get(name)
            if exact:
                size, basis = exact, f"published: {name} is {exact} bytes (quants.json qwen1_5_gguf_files)"
            else:
                size = round(value * (2**30 if gib else 1e9))
                basis = f"published listing {value} {'GiB' if gib else 'GB'} (rounded; quants.json qwen1_5_gguf_files)"
            add(quant_of_filename(name), size, basis, [name])
        return sorted(out, key=lambda q: q.size_bytes)

    published_q4 = m.get("q4_k_m_bytes_published")
    for quant, size in (m.get("size_bytes_est") or {}).items():
        add(quant, size, ESTIMATE_BASIS, [], tied_estimate=untied_fix)
    if m.get("q4_k_m_bytes_est") or published_q4:
        if published_q4:
            src = m.get("q4_k_m_published_source") or "published"
            add("Q4_K_M", published_q4, f"published: {src}", [])
        else:
            add("Q4_K_M", m["q4_k_m_bytes_est"], ESTIMATE_BASIS, [], tied_estimate=untied_fix)
    for label, size in (other_bytes or {}).items():
        model, _, quant = label.rpartition(" ")
        if repo.split("/")[-1].lower().startswith(model.lower()):
            out = [q for q in out if q.quant != quant.upper()]
            add(quant.upper(), size, f"published: official {label} is {size} bytes (quants.json)", [])
    for label, size in (m.get("file_bytes_published") or {}).items():
        files = re.findall(r"\(([^)]+\.gguf)\)", label)
        add("MXFP4_MOE", size, f"published: {label} = {size} bytes ({m.get('verification')})", files)
    return sorted(out, key=lambda q: q.size_bytes)


def name_of(repo: str) -> str:
    name = repo.split("/")[-1]
    return name[: -len("-GGUF")] if name.upper().endswith("-GGUF") else name


def quality_for(key: str, ppl: dict) -> list[QualityFigure]:
    if not key.startswith("Qwen1.5-"):
        return []
    row = ppl["rows"].get(key.removeprefix("Qwen1.5-"))
    if not row:
        return []
    metric = "perplexity (Qwen, llama.cpp perplexity tool, wikitext; lower is better)"
    cols = [{"fp16": "F16"}.get(c, c.upper()) for c in ppl["columns"]]
    return [QualityFigure(metric=metric, quant=q, value=v, source=ppl["source"]) for q, v in zip(cols, row)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("research", type=Path, help="folder holding models.json and quants.json")
    parser.add_argument("--out", type=Path, default=ROOT / "hardware_db" / "models")
    args = parser.parse_args()
    models = json.loads((args.research / "models.json").read_text())["models"]
    quants = json.loads((args.research / "quants.json").read_text())
    qwen_files = {k: v for k, v in quants["qwen1_5_gguf_files"].items() if "/" in k}
    other_bytes = quants["qwen1_5_gguf_files"]["other_official_bytes"]
    ppl = quants["qwen1_5_gguf_perplexity"]

    by_file: dict[str, list[CatalogModel]] = {}
    skipped = []
    for key, m in models.items():
        if not m.get("head_dim") or not (m.get("size_bytes_est") or m.get("file_bytes_published")):
            skipped.append(key)  # e.g. DeepSeek-V3 (MLA, only published dynamic-quant sizes in GB)
            continue
        shape, shape_basis = shape_of(key, m)
        repo = repo_of(m["gguf_repo"])
        entry = CatalogModel(
            name=name_of(repo),
            aliases=sorted({key.lower()}),
            repo=repo,
            family=m["family"],
            origin=f"research: models.json, {m.get('verification')}",
            shape=shape,
            shape_basis=shape_basis,
            quants=quants_for(key, m, shape, qwen_files, other_bytes),
            quality=quality_for(key, ppl),
            recommend=m["family"] not in SUPERSEDED,
        )
        by_file.setdefault(slug(m["family"]), []).append(entry)

    header = (
        "planner offline model catalog. Generated by scripts/seed_catalog.py from the research notes\n"
        "(models.json, quants.json); `planner catalog refresh REPO` rewrites entries from real GGUF headers.\n"
        "Sizes are bytes; every entry says where it came from (origin) and every quant how (basis).\n"
        "Byte layout (llama.cpp src/llama-quant.cpp tensor types): input = token_embd, n_vocab x n_embd at the\n"
        "type llama-quantize gives it for the file type; output = output.weight at its type (Q6_K; Q8_0 when the\n"
        "row is not 256-aligned or the file is Q8_0) + output_norm; tied embeddings store no output.weight and\n"
        "llama.cpp duplicates token_embd (then typed as the output); layer = (size - input - stored output) /\n"
        "n_layer, one average for every layer; MoE expert bytes = 3 x n_expert x n_embd x expert_ff at the base\n"
        "type (MXFP4 for MXFP4_MOE)."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, entries in sorted(by_file.items()):
        write_catalog_file(args.out / f"{stem}.yaml", entries, header=header)
        print(f"{stem}.yaml: {', '.join(e.name for e in entries)}")
    if skipped:
        print(f"skipped (no per-quant sizes or head_dim in the research): {', '.join(skipped)}")


if __name__ == "__main__":
    main()
