"""`planner gpus`: the table, the JSON, and one clean line for an unknown name."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from planner.cli.app import app

GIB = 1 << 30
runner = CliRunner()


def test_gpus_p4_json() -> None:
    result = runner.invoke(app, ["gpus", "p4", "--json"])
    assert result.exit_code == 0, result.output
    (card,) = json.loads(result.stdout)
    for key in ("name", "aliases", "vendor", "architecture", "compute_capability", "vram_bytes",
                "memory_bandwidth_gbs", "fp16", "bf16", "source"):  # fmt: skip
        assert key in card
    assert card["name"] == "Tesla P4" and card["compute_capability"] == "6.1"
    assert card["vram_bytes"] == 8 * GIB and card["memory_bandwidth_gbs"] == 192
    assert card["fp16_crippled"] is True and card["bf16"] is False and card["passive_cooling"] is True
    assert "Tesla P4" in card["aliases"] or "NVIDIA Tesla P4" in card["aliases"]


def test_gpus_json_lists_the_whole_database() -> None:
    result = runner.invoke(app, ["gpus", "--json"])
    cards = json.loads(result.stdout)
    assert len(cards) >= 80
    amd = [card for card in cards if card["vendor"] == "amd"]
    assert amd and all(card["compute_capability"] is None and card["gfx_target"] for card in amd)


def test_gpus_table_and_detail() -> None:
    table = runner.invoke(app, ["gpus", "a100"], env={"COLUMNS": "160"})
    assert table.exit_code == 0
    for name in ("A100 SXM4 80GB", "A100 SXM4 40GB", "A100 PCIe 80GB", "A100 PCIe 40GB"):
        assert name in table.stdout
    detail = runner.invoke(app, ["gpus", "Tesla", "P40"], env={"COLUMNS": "200"})
    assert detail.exit_code == 0
    assert "Source" in detail.stdout and "346 GB/s" in detail.stdout and "1/64 rate" in detail.stdout


def test_unknown_gpu_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "planner", "gpus", "RTX 3099"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "planner: error: no GPU in planner's database matches 'RTX 3099'; closest: RTX 3090, RTX 3090 Ti, RTX 3050"
    ]
