#!/usr/bin/env python3
"""Seed the offline model catalog (hardware_db/models/*.yaml) from the research notes, reproducibly.

    python scripts/seed_catalog.py /work/shared/research [--out hardware_db/models]

Reads models.json (architecture shapes, per-quant size estimates, GGUF repos, how each was verified),
quants.json (the official Qwen1.5 file names and sizes, Qwen's perplexity table) and gguf-files.json (the real
file lists of 78 GGUF repos, each with its source). A quant is offered with file names only when its repo's
listing has that file (every shard of a split set); its size is the listed one, else a same-shape model's listed
file, the research estimator, or the nearest listed type scaled by effective bpw (the basis says which). Listed
files the catalog can't plan are kept in `not_offered` with the reason; a model with no listing keeps its
research sizes and offers no file names. Every entry records its `origin` and every quant its `basis`. The byte
layout is derived here, from llama.cpp's per-tensor type rules (src/llama-quant.cpp):

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
    NO_FILES_NOTE,
    SUPERSEDED,
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
    "IQ3_M": "IQ3_S",
    "IQ3_S": "IQ3_S",
    "IQ3_XS": "IQ3_S",
    "IQ3_XXS": "IQ3_XXS",
    "IQ2_M": "IQ2_S",
    "IQ2_S": "IQ2_XS",
    "IQ2_XS": "IQ2_XS",
    "IQ2_XXS": "IQ2_XXS",
    "IQ1_M": "IQ1_M",
    "IQ1_S": "IQ1_S",
    "MXFP4_MOE": "Q8_0",  # everything but the experts is Q8_0
}
# llama-quant.cpp special-cases token_embd and output for the low-bit file types (quant_models.md §1.2 table).
TOKEN_EMBD_TYPE = {
    "IQ2_XXS": "Q2_K",
    "IQ2_XS": "Q2_K",
    "IQ1_S": "Q2_K",
    "IQ1_M": "Q2_K",
    "IQ2_S": "IQ3_S",
    "IQ2_M": "IQ3_S",
}
OUTPUT_Q5_K = {"IQ3_XXS", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S"}
EXPERT_TYPE = {"MXFP4_MOE": "MXFP4"}
# Row length not a multiple of 256: K-quants fall back (quant_models.md 1.1; same sizes as llama.cpp's IQ4_NL).
# The I-quants fall back to IQ4_NL, which has Q4_0's size (18 bytes per 32 weights).
FALLBACK = {
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
    "IQ4_XS": "IQ4_NL",
    **dict.fromkeys(("IQ3_S", "IQ3_XXS", "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S"), "Q4_0"),
}
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
    return "Q5_K" if ftype in OUTPUT_Q5_K else "Q6_K"


def token_embd_type(ftype: str, n_embd: int, tied: bool) -> str:
    if tied:  # the file has no output.weight: token_embd is quantized as the output tensor
        return output_type(ftype, n_embd)
    if ftype in UNQUANTIZED:
        return BASE_TYPE[ftype]
    return fit_row(TOKEN_EMBD_TYPE.get(ftype, BASE_TYPE[ftype]), n_embd)


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


# --- the real file lists (gguf-files.json) ---------------------------------------------------------------------

# (NO_FILES_NOTE comes from planner.data.catalog: the same words in the files and in the errors)
HF_FILE_LIMIT = 50e9  # huggingface.co's per-file limit (gguf-files.md): bigger "single files" are mislisted
# Listing labels that name a llama.cpp file type by another name: quantize.cpp QUANT_OPTIONS makes Q3_K/Q4_K/Q5_K
# aliases of the _M types (microsoft/phi-4-gguf's names); ggml-org's gpt-oss "MXFP4" files are MOSTLY_MXFP4_MOE.
LABEL_ALIASES = {"FP16": "F16", "MXFP4": "MXFP4_MOE", "Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}
# Effective bits per weight can't fall much below the file type's nominal bpw (every tensor is at least that
# type, bar the F32 norms): a listed size that implies less is a listing error (e.g. TheBloke's 70B Q5_K_S card
# row, 30.57 GB, flagged in gguf-files.md).
MIN_BPW_FRACTION = 0.85


def file_type_of(row: dict, known: set[str]) -> tuple[str | None, str]:
    """(llama.cpp file type of a listed file, or None and why the catalog can't offer it)."""
    label = str(row.get("quant") or "")
    if label in ("", "None"):
        m = re.search(r"[-_.](fp16|f16|bf16|f32)\.gguf$", row["file"].lower())
        label = m.group(1) if m else ""
    up = label.upper()
    if up.startswith("UD-"):
        return None, "unsloth dynamic quant: its own per-tensor mix, no llama.cpp file type to lay it out by"
    if up.startswith("MMPROJ"):
        return None, "vision projector, not a model file"
    if re.fullmatch(r"Q4_0_\d_\d", up):
        return (
            None,
            "Q4_0_4_4/4_8/8_8 were removed from llama.cpp (quants.yaml removed_types): current builds refuse them",
        )
    up = LABEL_ALIASES.get(up, up)
    if up in ("TQ1_0", "TQ2_0"):
        return None, "ternary type, only meaningful for ternary-trained models (quant_models.md)"
    if up not in known:
        return None, "not a llama.cpp file type (a publisher's variant such as bartowski's _L/_XL with Q8_0 embeddings)"
    return up, ""


def files_of(row: dict) -> tuple[list[str], str]:
    """The exact names to download for one listed row (the shards of a split set), or [] and why not."""
    if row.get("split_kind"):
        return [], "byte split (joined with cat), not a gguf-split set llama.cpp loads"
    if row.get("split"):
        shards = row.get("shards") or []
        return (list(shards), "") if shards else ([], "split set whose shard names were not listed")
    if not row["file"].endswith(".gguf"):
        return [], "not a .gguf file"
    size = row.get("size_bytes") or (row.get("size_gb") or 0) * 1e9
    if size > HF_FILE_LIMIT:
        return [], "a single file over Hugging Face's 50 GB limit: the listed name is doubtful (gguf-files.md)"
    return [row["file"]], ""


def listed_size(row: dict) -> tuple[int | None, str]:
    if row.get("size_bytes"):
        return int(row["size_bytes"]), f"published: {row['size_bytes']} bytes ({row.get('size_basis') or 'listing'})"
    if row.get("size_gb"):
        unit = f"{row['size_gib']} GiB" if row.get("size_gib") else f"{row['size_gb']} GB"
        return round(row["size_gb"] * 1e9), f"published: {unit} ({row.get('size_basis') or 'listing'}; rounded)"
    return None, ""


def listing_source(listing: dict) -> str:
    return f"file listed by {listing['source']} ({listing.get('date') or 'undated'})"


def pick_listing(repo: str, files_json: dict, known: set[str]) -> tuple[str, dict | None]:
    """The listing for the catalog's repo; else the listed repo that stands in for it (most usable files)."""
    if repo in files_json:
        return repo, files_json[repo]
    stand_ins = [
        r
        for r, v in files_json.items()
        if any(f"catalog repo {repo} not found" in a for a in v.get("catalog_alternative_for") or [])
    ]
    if not stand_ins:
        return repo, None

    def usable(r: str) -> int:
        return sum(1 for row in files_json[r]["files"] if file_type_of(row, known)[0] and files_of(row)[0])

    best = max(stand_ins, key=lambda r: (usable(r), r.startswith("bartowski/")))
    return best, files_json[best]


class Sizer:
    """Sizes for a listing's files: published, else the research estimator, else scaled from a listed sibling."""

    def __init__(self, bpw8b: dict[str, float], nominal: dict[str, float]) -> None:
        self.bpw8b = bpw8b  # Llama-3.1-8B effective bpw per file type (quants.yaml, quantize README)
        self.nominal = nominal

    def plausible(self, ftype: str, size: int, n_params: int) -> bool:
        if not n_params or ftype not in self.nominal:
            return True
        return size * 8 / n_params >= MIN_BPW_FRACTION * self.nominal[ftype]

    def scaled(self, ftype: str, sized: dict[str, int]) -> tuple[int, str] | None:
        """Scale the listed file of the nearest type by the two types' effective bpw on Llama-3.1-8B."""
        mine = self.bpw8b.get(ftype) or self.nominal.get(ftype)
        refs = [q for q in sized if (self.bpw8b.get(q) or self.nominal.get(q))]
        if not mine or not refs:
            return None
        ref = min(refs, key=lambda q: abs((self.bpw8b.get(q) or self.nominal[q]) - mine))
        theirs = self.bpw8b.get(ref) or self.nominal[ref]
        size = round(sized[ref] * mine / theirs)
        return size, (
            f"estimate: no size listed; the listed {ref} ({sized[ref]} bytes) x effective bpw {mine}/{theirs} "
            "(Llama-3.1-8B, quantize README via quants.yaml)"
        )


def shape_key(shape: CatalogShape) -> tuple:
    return tuple(shape.model_dump(exclude={"context_length", "n_params"}).values())


def sibling_sizes(listings: list[tuple[str, dict]], known: set[str]) -> dict[str, tuple[int, str]]:
    """Published sizes of same-shape models' files, per file type: same tensors at the same types, same bytes."""
    out: dict[str, tuple[int, str]] = {}
    for repo, listing in listings:
        for row in listing["files"]:
            ftype, _ = file_type_of(row, known)
            size, basis = listed_size(row)
            if ftype and size and ftype not in out:
                out[ftype] = (
                    size,
                    f"estimate: no size listed; same-shape {repo}'s {ftype} file, {basis[len('published: ') :]}",
                )
    return out


def quants_from_listing(
    m: dict,
    shape: CatalogShape,
    listing: dict,
    known: set[str],
    sizer: Sizer,
    skipped: list[str],
    siblings: dict[str, tuple[int, str]] | None = None,
    not_offered: dict[str, str] | None = None,
    exact: dict[str, tuple[int, str]] | None = None,
) -> list[CatalogQuant]:
    """Exactly the listing's files the catalog can plan, each with its exact names, size and the size's source.

    A file listed without a size gets, in order: a same-shape model's published size for that type, the research
    estimator's, or the nearest listed type's scaled by effective bpw.
    """
    untied_fix = bool(m.get("tied_embeddings")) and "untied output" in (m.get("verification") or "")
    estimates = dict(m.get("size_bytes_est") or {})
    if m.get("q4_k_m_bytes_est"):
        estimates.setdefault("Q4_K_M", m["q4_k_m_bytes_est"])
    rows: dict[str, tuple[list[str], int | None, str]] = {}
    for row in listing["files"]:
        ftype, why = file_type_of(row, known)
        files, why_files = files_of(row) if ftype else ([], "")
        if not ftype or not files:
            skipped.append(f"{row['file']}: {why or why_files}")
            label = ftype or str(row.get("quant") or row["file"]).upper()
            if not_offered is not None and label not in not_offered:
                not_offered[label] = f"{row['file']}: {why or why_files}"
            continue
        if ftype in rows:
            skipped.append(f"{row['file']}: a second {ftype} file (the first listed is offered)")
            continue
        size, basis = (exact or {}).get(row["file"]) or listed_size(row)
        if size and not sizer.plausible(ftype, size, shape.n_params):
            skipped.append(f"{row['file']}: listed size {size} is below {ftype}'s nominal bpw; size estimated")
            size, basis = None, ""
        rows[ftype] = (files, size, basis)
    sized = {q: s for q, (_, s, _) in rows.items() if s}
    source = listing_source(listing)
    out = []
    for ftype, (files, size, basis) in rows.items():
        tied_estimate = False
        if size is None and ftype in (siblings or {}):
            size, basis = (siblings or {})[ftype]
        if size is None and ftype in estimates:
            size, basis, tied_estimate = estimates[ftype], ESTIMATE_BASIS + " (no size listed)", untied_fix
        if size is None:
            scaled = sizer.scaled(ftype, sized)
            if scaled is None:
                skipped.append(f"{files[0]}: no size listed and nothing to estimate it from")
                continue
            size, basis = scaled
        out.append(make_quant(ftype, size, f"{basis}; {source}", files, shape, tied_estimate=tied_estimate))
    return sorted(out, key=lambda q: q.size_bytes)


def make_quant(
    quant: str, size: int, basis: str, files: list[str], shape: CatalogShape, *, tied_estimate: bool = False
) -> CatalogQuant:
    size, layer, tok, output, expert = layout(quant, size, shape, size_is_tied_estimate=tied_estimate)
    return CatalogQuant(
        quant=quant,
        files=files,
        size_bytes=size,
        layer_bytes=layer,
        input_bytes=tok,
        output_bytes=output,
        layer_expert_bytes=expert,
        basis=f"{basis}; {LAYOUT_BASIS}",
    )


def quants_without_listing(m: dict, shape: CatalogShape, other_bytes: dict, repo: str) -> list[CatalogQuant]:
    """No file list for the repo: the research's sizes, and no file names (nothing offered as if it existed)."""
    untied_fix = bool(m.get("tied_embeddings")) and "untied output" in (m.get("verification") or "")
    out: dict[str, CatalogQuant] = {}
    for quant, size in (m.get("size_bytes_est") or {}).items():
        out[quant] = make_quant(quant, size, ESTIMATE_BASIS, [], shape, tied_estimate=untied_fix)
    published_q4 = m.get("q4_k_m_bytes_published")
    if published_q4:
        src = m.get("q4_k_m_published_source") or "published"
        out["Q4_K_M"] = make_quant("Q4_K_M", published_q4, f"published: {src}", [], shape)
    elif m.get("q4_k_m_bytes_est"):
        out["Q4_K_M"] = make_quant("Q4_K_M", m["q4_k_m_bytes_est"], ESTIMATE_BASIS, [], shape, tied_estimate=untied_fix)
    for label, size in (other_bytes or {}).items():
        model, _, quant = label.rpartition(" ")
        if repo.split("/")[-1].lower().startswith(model.lower()):
            basis = f"published: official {label} is {size} bytes (quants.json)"
            out[quant.upper()] = make_quant(quant.upper(), size, basis, [], shape)
    for label, size in (m.get("file_bytes_published") or {}).items():
        out["MXFP4_MOE"] = make_quant("MXFP4_MOE", size, f"published: {label} = {size} bytes", [], shape)
    return sorted(out.values(), key=lambda q: q.size_bytes)


def quants_from_qwen15(listing: dict, shape: CatalogShape) -> list[CatalogQuant]:
    """Qwen1.5's official file lists (quants.json, read from the Gitee mirror of the HF repos)."""
    gib = listing["unit"].startswith("GiB")
    out = []
    for name, value in listing["files"].items():
        if not name.endswith(".gguf"):
            continue  # e.g. a third-party fp16 noted beside the official files
        exact = listing.get("exact_bytes", {}).get(name)
        if exact:
            size, basis = exact, f"published: {name} is {exact} bytes (quants.json qwen1_5_gguf_files)"
        else:
            size = round(value * (2**30 if gib else 1e9))
            basis = f"published listing {value} {'GiB' if gib else 'GB'} (rounded; quants.json qwen1_5_gguf_files)"
        out.append(make_quant(quant_of_filename(name), size, basis, [name], shape))
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


# Listed repos that are not in models.json but share a models.json shape; the script checks the claim by size:
# the listing's Q4_K_M must match the sibling's published/estimated Q4_K_M bytes within SAME_SHAPE_TOLERANCE.
SAME_SHAPE = {
    "Qwen/Qwen2.5-Coder-7B-Instruct-GGUF": ("Qwen2.5-7B", "Qwen2.5-Coder-7B-Instruct", "Qwen2.5-Coder"),
    "bartowski/Qwen2.5-Coder-14B-Instruct-GGUF": ("Qwen2.5-14B", "Qwen2.5-Coder-14B-Instruct", "Qwen2.5-Coder"),
    "Qwen/Qwen2.5-Coder-32B-Instruct-GGUF": ("Qwen2.5-32B", "Qwen2.5-Coder-32B-Instruct", "Qwen2.5-Coder"),
    "bartowski/Qwen_QwQ-32B-GGUF": ("Qwen2.5-32B", "QwQ-32B", "QwQ"),
}
SAME_SHAPE_TOLERANCE = 0.005


def q4_bytes(listing: dict) -> int | None:
    for row in listing["files"]:
        if str(row.get("quant")).upper() == "Q4_K_M":
            return listed_size(row)[0]
    return None


def same_shape_entries(models: dict, files_json: dict, known: set[str], sizer: Sizer, skipped: list[str]):
    for repo, (sibling, name, family) in SAME_SHAPE.items():
        listing = files_json[repo]
        unplannable: dict[str, str] = {}
        m = models[sibling]
        ref = m.get("q4_k_m_bytes_published") or m.get("q4_k_m_bytes_est")
        mine = q4_bytes(listing)
        if not (ref and mine) or abs(mine - ref) / ref > SAME_SHAPE_TOLERANCE:
            raise SystemExit(f"{repo}: Q4_K_M {mine} does not match {sibling}'s {ref}: not the same shape")
        shape, basis = shape_of(sibling, m)
        basis += f"; {name} shares it: its Q4_K_M is {mine} bytes against {sibling}'s {ref} ({repo} listing)"
        yield (
            family,
            CatalogModel(
                name=name,
                aliases=[name.lower().removesuffix("-instruct")],
                repo=repo,
                family=family,
                origin=f"research: gguf-files.json {repo}; shape of models.json {sibling!r} (size match)",
                shape=shape,
                shape_basis=basis,
                quants=quants_from_listing(m, shape, listing, known, sizer, skipped, not_offered=unplannable),
                files_listed=listing_source(listing),
                not_offered=unplannable,
            ),
        )


# DeepSeek-V3-0324 (bartowski, quantized with llama.cpp b4944 per its card): before b5137's MLA conversion, so
# llama.cpp caches full K (128 heads x 192) and V (128 x 128) per layer for these files, not the 576-wide latent
# (models.json kv_note). The card lists every quant as a folder of shards whose names were not read: sizes are
# published, file names unknown.
DEEPSEEK_REPO = "bartowski/deepseek-ai_DeepSeek-V3-0324-GGUF"


def deepseek_params(m: dict) -> tuple[int, list[int], list[int]]:
    """(embedding parameters, per-layer parameters, per-layer routed-expert parameters) from the config facts:
    MLA attention (q_lora 1536, kv_lora 512, rope 64, nope 128, v 128), 3 dense FFN layers, then 256 routed
    experts + 1 shared expert + router per layer."""
    d, heads, ff, eff = m["hidden"], m["n_head"], m["ffn_dim"], m["expert_ffn_dim"]
    q_lora, kv_lora, rope, nope, v = 1536, 512, 64, 128, 128  # models.json "attention" line
    attn = d * q_lora + q_lora * heads * (nope + rope) + d * (kv_lora + rope) + kv_lora * heads * (nope + v)
    attn += heads * v * d
    routed = m["n_expert"] * 3 * d * eff
    moe = routed + m["n_shared_expert"] * 3 * d * eff + d * m["n_expert"]
    dense = m["first_dense_layers"]
    layers = [attn + (3 * d * ff if il < dense else moe) for il in range(m["n_layer"])]
    experts = [0 if il < dense else routed for il in range(m["n_layer"])]
    return m["vocab"] * d, layers, experts


def deepseek_entry(models: dict, files_json: dict, known: set[str], skipped: list[str]) -> CatalogModel:
    m = models["DeepSeek-V3/R1"]
    listing = files_json[DEEPSEEK_REPO]
    embed, layers, experts = deepseek_params(m)
    total = 2 * embed + sum(layers)
    shape = CatalogShape(
        arch=m["gguf_arch"],
        n_layer=m["n_layer"],
        n_embd=m["hidden"],
        n_head=m["n_head"],
        n_head_kv=m["n_kv_head"],
        head_dim_k=128 + 64,  # nope + rope: the pre-MLA K head
        head_dim_v=128,
        n_ff=m["ffn_dim"],
        n_vocab=m["vocab"],
        context_length=m["max_context"],
        n_expert=m["n_expert"],
        n_expert_used=m["n_expert_used"],
        expert_ff=m["expert_ffn_dim"],
        n_params=total,
    )
    quants: list[CatalogQuant] = []
    not_offered: dict[str, str] = {}
    for row in listing["files"]:
        ftype, why = file_type_of(row, known)
        if not ftype:
            skipped.append(f"{row['file']}: {why}")
            not_offered.setdefault(str(row["quant"]).upper(), f"{row['file']}: {why}")
            continue
        if row["file"].rstrip("/").endswith("-V2"):
            skipped.append(f"{row['file']}: a re-quantized second {ftype} (-V2); the first is offered")
            continue
        size, basis = listed_size(row)
        if not size:
            continue
        share = size / total  # bytes per parameter at the file's average
        quants.append(
            CatalogQuant(
                quant=ftype,
                files=[],  # the folder's shard names were not listed
                size_bytes=size,
                layer_bytes=[round(n * share) for n in layers],
                input_bytes=round(embed * share),
                output_bytes=round(embed * share),
                layer_expert_bytes=[round(n * share) for n in experts],
                basis=f"{basis}; {listing_source(listing)}; layout: the size split over the tensors in proportion "
                "to their parameter counts (one average bpw; shard names not listed)",
            )
        )
    return CatalogModel(
        name="DeepSeek-V3-0324",
        aliases=["deepseek-v3", "deepseek-v3-0324"],
        repo=DEEPSEEK_REPO,
        family=m["family"],
        origin=f"research: models.json 'DeepSeek-V3/R1' ({m['verification']}); gguf-files.json {DEEPSEEK_REPO}",
        shape=shape,
        shape_basis=f"models.json 'DeepSeek-V3/R1': {m['attention']}; {m['first_dense_layers']} dense layers, "
        f"{m['n_expert']} routed + {m['n_shared_expert']} shared experts; files quantized with b4944, before MLA "
        f"GGUFs (b5137): KV is full K 192 / V 128 per head ({m['kv_note']})",
        quants=sorted(quants, key=lambda q: q.size_bytes),
        recommend=False,  # no file names to download
        not_offered=not_offered,
    )


def load_quant_table() -> tuple[set[str], Sizer]:
    import yaml

    table = yaml.safe_load((ROOT / "hardware_db" / "quants.yaml").read_text())["file_types"]
    bpw8b = {k: v["bpw_llama31_8b"]["value"] for k, v in table.items() if v.get("bpw_llama31_8b")}
    nominal = {k: v["nominal_bpw"] for k, v in table.items() if v.get("nominal_bpw")}
    return set(table), Sizer(bpw8b, nominal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("research", type=Path, help="folder holding models.json, quants.json and gguf-files.json")
    parser.add_argument("--out", type=Path, default=ROOT / "hardware_db" / "models")
    args = parser.parse_args()
    models = json.loads((args.research / "models.json").read_text())["models"]
    quants = json.loads((args.research / "quants.json").read_text())
    files_json = json.loads((args.research / "gguf-files.json").read_text())
    qwen_files = {k: v for k, v in quants["qwen1_5_gguf_files"].items() if "/" in k}
    other_bytes = quants["qwen1_5_gguf_files"]["other_official_bytes"]
    ppl = quants["qwen1_5_gguf_perplexity"]
    known, sizer = load_quant_table()

    by_file: dict[str, list[CatalogModel]] = {}
    not_offered: list[str] = []
    plannable = {
        k: m
        for k, m in models.items()
        if m.get("head_dim") and (m.get("size_bytes_est") or m.get("file_bytes_published"))
    }
    skipped = sorted(set(models) - set(plannable))  # e.g. DeepSeek-V3 (MLA, only published dynamic-quant sizes)
    by_shape: dict[tuple, list[tuple[str, dict]]] = {}
    for key, m in plannable.items():
        repo, listing = pick_listing(repo_of(m["gguf_repo"]), files_json, known)
        if listing:
            by_shape.setdefault(shape_key(shape_of(key, m)[0]), []).append((repo, listing))
    for key, m in plannable.items():
        shape, shape_basis = shape_of(key, m)
        repo, listing = pick_listing(repo_of(m["gguf_repo"]), files_json, known)
        quants_list: list[CatalogQuant] = []
        files_listed = ""
        unplannable: dict[str, str] = {}
        if listing:
            others = [(r, v) for r, v in by_shape.get(shape_key(shape), []) if r != repo]
            siblings = sibling_sizes(others, known)
            exact = {
                name: (b, f"published: {name} is {b} bytes (quants.json qwen1_5_gguf_files)")
                for name, b in qwen_files.get(repo, {}).get("exact_bytes", {}).items()
            }
            quants_list = quants_from_listing(
                m, shape, listing, known, sizer, not_offered, siblings, unplannable, exact
            )
            files_listed = listing_source(listing)
        elif repo in qwen_files:
            quants_list = quants_from_qwen15(qwen_files[repo], shape)
            files_listed = "quants.json qwen1_5_gguf_files (Gitee AI mirror of the HF repo)"
        if not quants_list:
            quants_list, files_listed = quants_without_listing(m, shape, other_bytes, repo), ""
        name = (listing or {}).get("model") or name_of(repo_of(m["gguf_repo"]))
        entry = CatalogModel(
            name=name,
            aliases=[key.lower()],
            repo=repo,
            family=m["family"],
            origin=f"research: models.json, {m.get('verification')}",
            shape=shape,
            shape_basis=shape_basis,
            quants=quants_list,
            quality=quality_for(key, ppl),
            # a model whose file names are unknown can't be deployed offline: planned by name, not offered
            recommend=m["family"] not in SUPERSEDED and bool(files_listed),
            files_listed=files_listed,
            not_offered={k: v for k, v in unplannable.items() if k not in {q.quant for q in quants_list}},
        )
        by_file.setdefault(slug(m["family"]), []).append(entry)
    for family, entry in same_shape_entries(models, files_json, known, sizer, not_offered):
        by_file.setdefault(slug(family), []).append(entry)
    by_file.setdefault("deepseek-v3", []).append(deepseek_entry(models, files_json, known, not_offered))

    header = (
        "planner offline model catalog. Generated by scripts/seed_catalog.py from the research notes\n"
        "(models.json, quants.json, gguf-files.json); `planner catalog refresh REPO` rewrites entries from real\n"
        "GGUF headers. Every quant offered with `files` is a file its repo has (exact names; every shard of a\n"
        "split set), with its size's source in `basis`; `files_listed` names the listing. An entry without a\n"
        f"listing offers no file names ({NO_FILES_NOTE}).\n"
        "Sizes are bytes; every entry says where it came from (origin) and every quant how (basis).\n"
        "Byte layout (llama.cpp src/llama-quant.cpp tensor types): input = token_embd, n_vocab x n_embd at the\n"
        "type llama-quantize gives it for the file type; output = output.weight at its type (Q6_K; Q5_K for\n"
        "IQ3_XXS and the IQ2/IQ1 types; Q8_0 when the row is not 256-aligned or the file is Q8_0) + output_norm;\n"
        "tied embeddings store no output.weight and llama.cpp duplicates token_embd (then typed as the output);\n"
        "layer = (size - input - stored output) / n_layer, one average for every layer; MoE expert bytes =\n"
        "3 x n_expert x n_embd x expert_ff at the base type (MXFP4 for MXFP4_MOE)."
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, entries in sorted(by_file.items()):
        write_catalog_file(args.out / f"{stem}.yaml", entries, header=header)
        print(f"{stem}.yaml: {', '.join(e.name for e in entries)}")
    if skipped:
        print(f"skipped (no per-quant sizes or head_dim in the research): {', '.join(skipped)}")
    print(f"{len(not_offered)} listed files not offered:")
    for line in not_offered:
        print(f"  {line}")


if __name__ == "__main__":
    main()
