"""Append the non-CUDA rows of the research collection speeds-more.json to hardware_db/speed_calibration.yaml.

    python scripts/import_speeds_more.py /work/shared/research/speeds-more.json

Only rows planner can place as published are taken: a GPU the hardware database knows (named explicitly below, so
a 40-core M4 Max is not matched to the 32-core row), the Llama-2-7B Q4_0 file every llama-bench scoreboard uses
(its shape is in the calibration file), a full offload. Each row keeps its source, secondary flag, build, driver
and OS. Rows already present (same id) are skipped, so the script can be rerun.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CALIBRATION = ROOT / "hardware_db" / "speed_calibration.yaml"
# published GPU name (start of the research row's `gpu`) -> hardware_db/gpus row
GPU_DB = {
    "Apple M1 Ultra (64-core GPU)": "M1 Ultra",
    "Apple M3 Ultra (80-core GPU)": "M3 Ultra",
    "Apple M4 Pro (20-core GPU)": "M4 Pro",
    "Apple M4 Max (40-core GPU)": "M4 Max (40-core GPU)",
    "Apple M1 (7-core GPU)": "M1",
    "Apple M1 (8-core GPU)": "M1",
    "Apple M3 Pro (18-core GPU)": "M3 Pro",
    "AMD Radeon Instinct MI50 (gfx906)": "Instinct MI50 16GB",
    "AMD Instinct MI300X (gfx942)": "Instinct MI300X",
    "AMD Radeon RX 7900 XT (gfx1100)": "Radeon RX 7900 XT",
    "AMD Radeon Pro W7900 (gfx1100)": "Radeon PRO W7900",
    "Intel Arc B580 (Battlemage)": "Arc B580",
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _gpu_db(published: str) -> str | None:
    return next((db for name, db in GPU_DB.items() if published.startswith(name)), None)


def rows_from(research: Path) -> list[dict]:
    rows = []
    for i, m in enumerate(json.loads(research.read_text())["measurements"]):
        gpu_db = _gpu_db(m["gpu"])
        if gpu_db is None or not m["model"].startswith("Llama-2-7B") or not str(m["quant"]).startswith("Q4_0"):
            continue
        if m.get("ngl") not in (99, 100) or m.get("tg128") is None:
            continue
        backend = {"rocm": "ROCm", "metal": "Metal", "sycl": "SYCL", "vulkan": "Vulkan"}[m["backend"].lower()]
        notes = "; ".join(f"{k}: {m[k]}" for k in ("os", "driver", "build") if m.get(k))
        rows.append(
            {
                "id": f"{_slug(m['gpu'].split(' (')[0])}-{backend.lower()}-llama-2-7b-q4-0-{i}",
                "gpu": m["gpu"],
                "gpu_db": gpu_db,
                "gpu_count": 1,
                "model": "Llama-2-7B",
                "shape": "Llama-2-7B",
                "catalog": "llama-2-7b",
                "quant": "Q4_0",
                "size_gib": m.get("size_gib") or 3.56,
                "params_b": m.get("params_b") or 6.74,
                "pp": m.get("pp512"),
                "pp_test": "pp512",
                "tg": m["tg128"],
                "tg_test": "tg128",
                "context_fill": 64,
                "backend": backend,
                "flash_attn": m.get("flash_attn"),
                "date": str(m["date"]) if m.get("date") else None,
                "build": str(m["build"]) if m.get("build") else None,
                "cuda_graphs_build": False,
                "source": f"{m['source']} (shared research speeds-more.json row {i})",
                "source_type": "secondary" if m.get("secondary") else "primary",
                "notes": notes or None,
                "fit": True,
            }
        )
    return rows


def main(argv: list[str]) -> int:
    research = Path(argv[1]) if len(argv) > 1 else Path("/work/shared/research/speeds-more.json")
    text = CALIBRATION.read_text()
    present = set(re.findall(r"^- id: (\S+)$", text, re.MULTILINE))
    new = [r for r in rows_from(research) if r["id"] not in present]
    if new:
        block = yaml.safe_dump([{k: v for k, v in r.items() if v is not None} for r in new], sort_keys=False, width=120)
        CALIBRATION.write_text(text.rstrip("\n") + "\n" + block)
    print(f"{len(new)} rows appended to {CALIBRATION.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
