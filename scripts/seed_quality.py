#!/usr/bin/env python3
"""Write hardware_db/quality/leaderboards/public.yaml: public model-quality figures keyed to the catalog's models.

    python scripts/seed_quality.py ARENA_TEXT_JSON POLYGLOT_YML --arena-commit SHA --arena-date YYYY-MM-DD \
        --aider-commit SHA --aider-date YYYY-MM-DD

ARENA_TEXT_JSON is lmarena/arena-catalog data/leaderboard-text.json (Bradley-Terry ratings with 95 % intervals,
by category); POLYGLOT_YML is Aider-AI/aider aider/website/_data/polyglot_leaderboard.yml (percent of 225 coding
exercises passed). Only models named in MATCHES are copied: each is the same model (same size, same release) as
the catalog entry; a variant (a -2507 refresh, a -128k context, a fine-tune) is not a match.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# catalog name -> LMArena key (same weights as the catalog's GGUF files)
ARENA = {
    "gemma-2-2b-it": "gemma-2-2b-it",
    "gemma-2-9b-it": "gemma-2-9b-it",
    "gemma-2-27b-it": "gemma-2-27b-it",
    "gemma-3-4b-it": "gemma-3-4b-it",
    "gemma-3-12b-it": "gemma-3-12b-it",
    "gemma-3-27b-it": "gemma-3-27b-it",
    "gpt-oss-20b": "gpt-oss-20b",
    "gpt-oss-120b": "gpt-oss-120b",
    "Llama-2-7B-Chat": "llama-2-7b-chat",
    "Llama-2-13B-chat": "llama-2-13b-chat",
    "Llama-2-70B-Chat": "llama-2-70b-chat",
    "Meta-Llama-3.1-8B-Instruct": "llama-3.1-8b-instruct",
    "Meta-Llama-3.1-70B-Instruct": "llama-3.1-70b-instruct",
    "Meta-Llama-3.1-405B-Instruct": "llama-3.1-405b-instruct-bf16",
    "Llama-3.2-1B-Instruct": "llama-3.2-1b-instruct",
    "Llama-3.2-3B-Instruct": "llama-3.2-3b-instruct",
    "Llama-3.3-70B-Instruct": "llama-3.3-70b-instruct",
    "Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b-instruct-v0.1",
    "Mistral-Small-24B-Instruct-2501": "mistral-small-24b-instruct-2501",
    "phi-4": "phi-4",
    "Qwen1.5-4B-Chat": "qwen1.5-4b-chat",
    "Qwen1.5-7B-Chat": "qwen1.5-7b-chat",
    "Qwen1.5-14B-Chat": "qwen1.5-14b-chat",
    "Qwen1.5-32B-Chat": "qwen1.5-32b-chat",
    "Qwen1.5-72B-Chat": "qwen1.5-72b-chat",
    "Qwen1.5-110B-Chat": "qwen1.5-110b-chat",
    "Qwen2.5-72B-Instruct": "qwen2.5-72b-instruct",
    "Qwen2.5-Coder-32B-Instruct": "qwen2.5-coder-32b-instruct",
    "Qwen3-30B-A3B": "qwen3-30b-a3b",
    "Qwen3-235B-A22B": "qwen3-235b-a22b",
    "Qwen3-32B": "qwen3-32b",
    "QwQ-32B": "qwq-32b",
    "SmolLM2-1.7B-Instruct": "smollm2-1.7b-instruct",
}
# catalog name -> Aider polyglot `model` (the run of the same weights; the best-format run when several)
AIDER = {
    "Qwen2.5-Coder-32B-Instruct": "Qwen2.5-Coder-32B-Instruct",
    "QwQ-32B": "QwQ-32B",
    "gemma-3-27b-it": "gemma-3-27b-it",
    "Qwen3-32B": "Qwen3 32B",
    "gpt-oss-120b": "gpt-oss-120b (high)",
}
# use case -> LMArena category
CATEGORIES = {"chat": "full", "code": "coding", "reasoning": "math"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arena", type=Path)
    parser.add_argument("polyglot", type=Path)
    parser.add_argument("--arena-commit", required=True)
    parser.add_argument("--arena-date", required=True)
    parser.add_argument("--aider-commit", required=True)
    parser.add_argument("--aider-date", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "hardware_db" / "quality" / "leaderboards" / "public.yaml")
    args = parser.parse_args()
    arena = json.loads(args.arena.read_text())
    polyglot = yaml.safe_load(args.polyglot.read_text())

    models: dict[str, dict] = {}
    for name, key in ARENA.items():
        entry: dict = {"lmarena": {"key": key}}
        for use_case, category in CATEGORIES.items():
            row = arena[category].get(key)
            if row:
                entry["lmarena"][use_case] = {
                    "rating": round(row["rating"], 1),
                    "low": round(row["rating_q025"], 1),
                    "high": round(row["rating_q975"], 1),
                }
        models[name] = entry
    for name, label in AIDER.items():
        runs = [r for r in polyglot if r["model"] == label]
        if not runs:
            raise SystemExit(f"{label!r} is not in the polyglot leaderboard")
        best = max(runs, key=lambda r: r["pass_rate_2"])
        models.setdefault(name, {})["aider_polyglot"] = {
            "model": label,
            "pass_rate_2": best["pass_rate_2"],
            "edit_format": best["edit_format"],
            "date": str(best["date"]),
        }
    doc = {
        "sources": {
            "lmarena": {
                "name": "LMArena text leaderboard",
                "url": f"https://github.com/lmarena/arena-catalog/blob/{args.arena_commit}/data/leaderboard-text.json",
                "date": args.arena_date,
                "metric": "Bradley-Terry rating (Elo scale) from pairwise human votes; low/high = 95 % interval",
                "categories": {uc: cat for uc, cat in CATEGORIES.items()},
                "covers": "models served in the arena at full precision; not the small Qwen2.5/Qwen3 dense models, "
                "the R1 distills, Mistral-Nemo or Qwen2.5-Coder below 32B",
            },
            "aider_polyglot": {
                "name": "Aider polyglot coding leaderboard",
                "url": f"https://github.com/Aider-AI/aider/blob/{args.aider_commit}/aider/website/_data/polyglot_leaderboard.yml",
                "date": args.aider_date,
                "metric": "percent of 225 Exercism exercises passed in two tries (pass_rate_2)",
                "covers": "a handful of open models the catalog carries; most local models were never run",
            },
        },
        "models": models,
    }
    header = (
        "# Public model-quality figures keyed to hardware_db/models names. Generated by scripts/seed_quality.py\n"
        "# from the files named in `sources` (commit and date in each url); only exact model matches are copied.\n"
    )
    args.out.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True))
    print(f"{args.out}: {len(models)} models")


if __name__ == "__main__":
    main()
